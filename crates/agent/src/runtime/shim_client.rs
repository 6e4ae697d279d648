//! Talking to a pod's shim from async code (one request per connection).

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::sandbox::shim::socket_path;
use crate::sandbox::shim::{Process, Reply, Request, StartRequest};

/// Send one request and read the reply, giving up after `timeout`.
pub async fn call(dir: &Path, req: &Request, timeout: Duration) -> Result<Reply> {
    let socket = socket_path(dir);
    let work = async {
        let mut conn = tokio::net::UnixStream::connect(&socket)
            .await
            .with_context(|| format!("connecting to the pod shim at {}", socket.display()))?;
        let mut line = serde_json::to_string(req)?;
        line.push('\n');
        conn.write_all(line.as_bytes()).await?;
        let mut reply = String::new();
        BufReader::new(conn).read_line(&mut reply).await?;
        if reply.is_empty() {
            bail!("the pod shim closed the connection");
        }
        Ok(serde_json::from_str::<Reply>(&reply)?)
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| anyhow::anyhow!("the pod shim did not answer within {timeout:?}"))?
}

/// The shim's processes and state version.
pub async fn state(dir: &Path) -> Result<(u64, Vec<Process>)> {
    match call(dir, &Request::State, Duration::from_secs(5)).await? {
        Reply::State { version, processes } => Ok((version, processes)),
        other => bail!("unexpected shim reply {other:?}"),
    }
}

/// Wait until the state changes past `after` (or `max` passes); returns the new version.
pub async fn wait(dir: &Path, after: u64, max: Duration) -> Result<u64> {
    let req = Request::Wait {
        after,
        timeout_ms: max.as_millis() as u64,
    };
    match call(dir, &req, max + Duration::from_secs(5)).await? {
        Reply::State { version, .. } => Ok(version),
        other => bail!("unexpected shim reply {other:?}"),
    }
}

/// Start a process; returns its pid.
pub async fn start(dir: &Path, req: StartRequest) -> Result<i32> {
    match call(dir, &Request::Start(req), Duration::from_secs(10)).await? {
        Reply::Started { pid } => Ok(pid),
        Reply::Error { message } => bail!("{message}"),
        other => bail!("unexpected shim reply {other:?}"),
    }
}

/// Signal a process group.
pub async fn signal(dir: &Path, pid: i32, signal: i32) -> Result<()> {
    match call(dir, &Request::Signal { pid, signal }, Duration::from_secs(5)).await? {
        Reply::Ok => Ok(()),
        Reply::Error { message } => bail!("{message}"),
        other => bail!("unexpected shim reply {other:?}"),
    }
}
