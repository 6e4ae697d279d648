//! exec and attach over WebSocket: the remote-command channel protocol, `v5.channel.k8s.io`
//! and `v4.channel.k8s.io`.
//!
//! Every message is binary; its first byte is the channel:
//! 0 stdin (client→server), 1 stdout, 2 stderr, 3 error (one `metav1.Status` JSON at the end),
//! 4 resize (client→server, `{"Width":W,"Height":H}`), and in v5 only 255 = close:
//! `[255, channel]` half-closes that channel (kubectl sends `[255, 0]` at stdin EOF).
//!
//! The sequence follows upstream's server: after the 101, one empty message on the lowest
//! channel the server writes (stdout, else stderr, else error) tells the client the streams
//! are up; output flows until the process exits and its pipes drain; then the Status on
//! channel 3 and a close frame (1000). Pings are answered with pongs (client-go pings every
//! few seconds and gives up without answers).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::websocket::{self, Message, MessageReader, MessageSender, CLOSE_NORMAL};
use super::{Exit, IoRequest, OutputPipe, Spawned};

/// The v5 subprotocol: v4 plus the close signal.
pub const V5: &str = "v5.channel.k8s.io";
/// The v4 subprotocol: JSON Status on the error channel.
pub const V4: &str = "v4.channel.k8s.io";
/// What the endpoint accepts, most preferred first.
pub const PROTOCOLS: [&str; 2] = [V5, V4];

/// Channel numbers (the first byte of each message).
pub mod channel {
    /// Client → process standard input.
    pub const STDIN: u8 = 0;
    /// Process standard output → client.
    pub const STDOUT: u8 = 1;
    /// Process standard error → client.
    pub const STDERR: u8 = 2;
    /// The final Status → client.
    pub const ERROR: u8 = 3;
    /// Terminal size changes, client → server.
    pub const RESIZE: u8 = 4;
    /// v5: `[CLOSE, channel]` half-closes `channel`.
    pub const CLOSE: u8 = 255;
}

/// After the process exits, its pipes are read until they end; a pipe a background child
/// still holds open is given up after this long without output (so `sh -c 'sleep 100 &'`
/// returns at once, as it does with containerd).
const DRAIN_IDLE: Duration = Duration::from_secs(1);
/// How long to wait for the client's answer to our close frame before dropping the connection.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// What the connection runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A new process; its exit code is reported.
    Exec {
        /// The command line, for the non-zero exit message.
        command: Vec<String>,
    },
    /// The container's main process; the Status is Success unless attaching failed.
    Attach,
}

/// The streams a request asks for, from `input`/`output`/`error`/`tty` (the kubelet's names;
/// `stdin`/`stdout`/`stderr` are accepted too). Values parse as Go booleans (`1`, `true`).
/// With `tty`, stderr is dropped (the terminal merges it), as the kubelet does.
pub fn io_request(query: &[(String, String)]) -> Result<IoRequest, String> {
    let on = |names: [&str; 2]| {
        query
            .iter()
            .rev()
            .find(|(k, _)| names.contains(&k.as_str()))
            .is_some_and(|(_, v)| super::logs::parse_go_bool(v).unwrap_or(false))
    };
    let tty = on(["tty", "tty"]);
    let request = IoRequest {
        stdin: on(["input", "stdin"]),
        stdout: on(["output", "stdout"]),
        stderr: on(["error", "stderr"]) && !tty,
        tty,
    };
    if !request.stdin && !request.stdout && !request.stderr {
        return Err("you must specify at least 1 of stdin, stdout, stderr".into());
    }
    Ok(request)
}

/// The Status JSON sent on the error channel at the end, exactly as upstream marshals it.
pub fn status_json(kind: &Kind, exit: &Exit) -> String {
    let internal = |err: String| {
        json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("Internal error occurred: {err}"),
            "reason": "InternalError",
            "details": {"causes": [{"message": err}]},
            "code": 500,
        })
    };
    let status = match (kind, exit) {
        (Kind::Exec { .. }, Exit::Code(0)) | (Kind::Attach, Exit::Code(_)) => {
            json!({"metadata": {}, "status": "Success"})
        }
        (Kind::Exec { command }, Exit::Code(code)) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!(
                "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
                command.join(" ")
            ),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        (Kind::Exec { .. }, Exit::Failed(e)) => internal(format!("error executing command in container: {e}")),
        (Kind::Attach, Exit::Failed(e)) => internal(format!("error attaching to container: {e}")),
    };
    status.to_string()
}

/// Terminal sizes in a resize message: one or more `{"Width":W,"Height":H}` objects (Go's
/// decoder matches the names case-insensitively, so `width` works too).
pub fn parse_resize(data: &[u8]) -> Vec<(u16, u16)> {
    serde_json::Deserializer::from_slice(data)
        .into_iter::<serde_json::Value>()
        .map_while(Result::ok)
        .filter_map(|v| {
            let obj = v.as_object()?;
            let get = |name: &str| {
                obj.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .and_then(|(_, v)| v.as_u64())
                    .map(|n| n.min(u64::from(u16::MAX)) as u16)
            };
            Some((get("width")?, get("height")?))
        })
        .collect()
}

/// Runs one upgraded exec/attach connection to its end. `spawned` is dropped early when the
/// client goes away first.
pub async fn serve<IO>(io: IO, protocol: &str, request: IoRequest, kind: Kind, spawned: Spawned)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read_half, write_half) = tokio::io::split(io);
    let (tx, writer) = websocket::spawn_writer(write_half, false);
    let first = if request.stdout {
        channel::STDOUT
    } else if request.stderr {
        channel::STDERR
    } else {
        channel::ERROR
    };
    tx.binary(vec![first]).await;

    let Spawned {
        stdin,
        stdout,
        stderr,
        resize,
        exit,
    } = spawned;
    let progress = Arc::new(AtomicU64::new(0));
    let mut pumps = tokio::task::JoinSet::new();
    for (pipe, ch) in [(stdout, channel::STDOUT), (stderr, channel::STDERR)] {
        if let Some(pipe) = pipe {
            pumps.spawn(pump(pipe, ch, tx.clone(), progress.clone()));
        }
    }
    // Stdin gets its own task so a process that does not read cannot stall pings.
    let stdin_tx = stdin.map(|pipe| {
        let (chunks, rx) = mpsc::channel::<Vec<u8>>(64);
        tokio::spawn(feed_stdin(pipe, rx));
        chunks
    });
    let reader = read_client(
        MessageReader::new(read_half, Vec::new()),
        tx.clone(),
        protocol == V5,
        stdin_tx,
        resize,
    );
    tokio::pin!(reader, exit);

    let exit = tokio::select! {
        exit = &mut exit => exit,
        _ = &mut reader => {
            // The client left first: dropping `exit` and the pipes lets the runtime kill it.
            pumps.abort_all();
            return;
        }
    };
    let mut seen = progress.load(Ordering::Relaxed);
    loop {
        tokio::select! {
            done = pumps.join_next() => if done.is_none() { break },
            _ = &mut reader => { pumps.abort_all(); return; }
            _ = tokio::time::sleep(DRAIN_IDLE) => {
                let now = progress.load(Ordering::Relaxed);
                if now == seen { break }
                seen = now;
            }
        }
    }
    pumps.abort_all();
    let mut status = vec![channel::ERROR];
    status.extend_from_slice(status_json(&kind, &exit).as_bytes());
    tx.binary(status).await;
    tx.send(Message::Close(Some(CLOSE_NORMAL))).await;
    drop(tx);
    let _ = tokio::time::timeout(CLOSE_WAIT, &mut reader).await;
    let _ = writer.await;
}

/// Copies a process pipe to the client as messages on `ch`.
async fn pump(mut pipe: OutputPipe, ch: u8, tx: MessageSender, progress: Arc<AtomicU64>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut message = Vec::with_capacity(n + 1);
        message.push(ch);
        message.extend_from_slice(&buf[..n]);
        if !tx.binary(message).await {
            return;
        }
        progress.fetch_add(1, Ordering::Relaxed);
    }
}

/// Writes client chunks to the process's stdin; dropping the pipe closes it.
async fn feed_stdin(mut pipe: super::StdinPipe, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(chunk) = rx.recv().await {
        if pipe.write_all(&chunk).await.is_err() || pipe.flush().await.is_err() {
            return;
        }
    }
    let _ = pipe.shutdown().await;
}

/// Reads the client's messages until it closes or goes away.
async fn read_client<R: AsyncRead + Unpin>(
    mut reader: MessageReader<R>,
    tx: MessageSender,
    v5: bool,
    mut stdin: Option<mpsc::Sender<Vec<u8>>>,
    resize: Option<super::ResizeFn>,
) {
    loop {
        let message = match reader.next().await {
            Ok(Some(m)) => m,
            Ok(None) | Err(_) => return,
        };
        match message {
            Message::Ping(payload) => {
                tx.send(Message::Pong(payload)).await;
            }
            Message::Close(_) => {
                tx.send(Message::Close(Some(CLOSE_NORMAL))).await;
                return;
            }
            Message::Binary(data) | Message::Text(data) => match data.split_first() {
                Some((&channel::STDIN, rest)) if !rest.is_empty() => {
                    if let Some(chunks) = &stdin {
                        // A process that closed its stdin just loses the input, as with a pipe.
                        let _ = chunks.send(rest.to_vec()).await;
                    }
                }
                Some((&channel::RESIZE, rest)) => {
                    if let Some(resize) = &resize {
                        for (width, height) in parse_resize(rest) {
                            resize(width, height);
                        }
                    }
                }
                Some((&channel::CLOSE, [ch])) if v5 && *ch == channel::STDIN => stdin = None,
                _ => {}
            },
            Message::Pong(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn success_status_is_the_minimal_json_kubectl_reads() {
        let exec = Kind::Exec {
            command: vec!["true".into()],
        };
        assert_eq!(
            status_json(&exec, &Exit::Code(0)),
            r#"{"metadata":{},"status":"Success"}"#
        );
        assert_eq!(
            status_json(&Kind::Attach, &Exit::Code(3)),
            r#"{"metadata":{},"status":"Success"}"#
        );
    }

    #[test]
    fn non_zero_exit_carries_the_code_as_an_exit_code_cause() {
        let exec = Kind::Exec {
            command: vec!["sh".into(), "-c".into(), "exit 3".into()],
        };
        assert_eq!(
            status_json(&exec, &Exit::Code(3)),
            concat!(
                r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: "#,
                r#"error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","#,
                r#""details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#
            )
        );
    }

    #[test]
    fn a_command_that_cannot_run_is_an_internal_error_status() {
        let exec = Kind::Exec {
            command: vec!["nope".into()],
        };
        let v: serde_json::Value =
            serde_json::from_str(&status_json(&exec, &Exit::Failed("no such file".into()))).unwrap();
        assert_eq!(v["reason"], "InternalError");
        assert_eq!(v["code"], 500);
        assert_eq!(
            v["message"],
            "Internal error occurred: error executing command in container: no such file"
        );
    }

    #[test]
    fn resize_messages_parse_any_case_and_several_objects() {
        assert_eq!(parse_resize(br#"{"Width":80,"Height":24}"#), vec![(80, 24)]);
        assert_eq!(
            parse_resize(br#"{"width":100,"height":30}{"Width":1,"Height":2}"#),
            vec![(100, 30), (1, 2)]
        );
        assert_eq!(parse_resize(b"garbage"), vec![]);
    }

    #[test]
    fn io_request_reads_the_kubelet_names_and_drops_stderr_with_a_tty() {
        let r = io_request(&q(&[("input", "1"), ("output", "1"), ("error", "1")])).unwrap();
        assert_eq!(
            r,
            IoRequest {
                stdin: true,
                stdout: true,
                stderr: true,
                tty: false
            }
        );
        let r = io_request(&q(&[("stdout", "true"), ("stderr", "true"), ("tty", "true")])).unwrap();
        assert_eq!(
            r,
            IoRequest {
                stdin: false,
                stdout: true,
                stderr: false,
                tty: true
            }
        );
        assert_eq!(
            io_request(&q(&[("tty", "1")])).unwrap_err(),
            "you must specify at least 1 of stdin, stdout, stderr"
        );
    }
}
