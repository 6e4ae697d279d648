//! A `podway up` process under measurement, the clients that talk to it, and `kubectl`.
//!
//! Every podway runs in its own directory under the work directory, so the pid file it writes
//! (`DIR/data/podway.pid`) lets `bench/run.sh` stop it even if this program is killed. Dropping
//! a [`Podway`] kills the process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::sync::mpsc;

/// How long a podway may take to print its address or become ready before the run fails.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// A running (or starting) `podway up`.
pub struct Podway {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    /// The directory holding `data/`, `kubeconfig` and `home/`.
    pub dir: PathBuf,
    /// When the process was spawned.
    pub spawned: Instant,
    /// `https://127.0.0.1:PORT`, once known.
    pub server: Option<String>,
}

impl Podway {
    /// Spawn `podway up` in a fresh directory `dir` with `extra` flags (e.g. `--datastore`).
    /// Without `--nodes` in `extra` it runs the control plane alone (`--nodes 0`).
    /// Returns as soon as the process exists; see [`Podway::server_url`] and [`Podway::ready`].
    pub fn spawn(bin: &Path, dir: &Path, extra: &[String]) -> Result<Podway> {
        std::fs::create_dir_all(dir.join("home")).with_context(|| format!("creating {}", dir.display()))?;
        // The control plane alone unless nodes are asked for: the control-plane numbers are
        // the API server's and the store's (nodes are measured by `nodes.rs` and `pods.rs`).
        let nodes: &[&str] = if extra.iter().any(|a| a == "--nodes") {
            &[]
        } else {
            &["--nodes", "0"]
        };
        let spawned = Instant::now();
        let mut child = Command::new(bin)
            .arg("up")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--api-port")
            .arg("0")
            .arg("--listen-address")
            .arg("127.0.0.1")
            .arg("--kubeconfig-path")
            .arg(dir.join("kubeconfig"))
            .args(nodes)
            .args(extra)
            .env("HOME", dir.join("home"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        let stdout = child.stdout.take().context("podway stdout")?;
        let (tx, lines) = mpsc::unbounded_channel();
        // A thread, not a task: it blocks on the pipe, and it keeps draining after we stop
        // listening so podway never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                let _ = tx.send(line);
            }
        });
        Ok(Podway {
            child,
            lines,
            dir: dir.to_path_buf(),
            spawned,
            server: None,
        })
    }

    /// The process id (for `/proc/PID/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The kubeconfig podway writes.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// The next stdout line, failing when podway exits or takes too long.
    async fn next_line(&mut self) -> Result<String> {
        match tokio::time::timeout(START_DEADLINE, self.lines.recv()).await {
            Ok(Some(line)) => Ok(line),
            Ok(None) => bail!("podway exited during startup ({:?})", self.child.try_wait()),
            Err(_) => bail!("podway printed nothing for {START_DEADLINE:?}"),
        }
    }

    /// Wait for the `  api server     https://...` line and return the URL.
    pub async fn server_url(&mut self) -> Result<String> {
        while self.server.is_none() {
            let line = self.next_line().await?;
            if let Some(url) = line.trim().strip_prefix("api server") {
                self.server = Some(url.trim().to_string());
            }
        }
        Ok(self.server.clone().expect("set above"))
    }

    /// Wait for `ready in 0.21s. ...` and return podway's own startup figure in seconds.
    pub async fn ready(&mut self) -> Result<f64> {
        loop {
            let line = self.next_line().await?;
            if let Some(secs) = parse_ready_line(&line) {
                return Ok(secs);
            }
            if let Some(url) = line.trim().strip_prefix("api server") {
                self.server = Some(url.trim().to_string());
            }
        }
    }

    /// Start podway and wait until it says it is ready; returns it with a client.
    pub async fn start(bin: &Path, dir: &Path, extra: &[String]) -> Result<(Podway, kube::Client)> {
        let mut p = Podway::spawn(bin, dir, extra)?;
        p.ready().await?;
        let client = client(&p.kubeconfig()).await?;
        Ok((p, client))
    }
}

impl Drop for Podway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The seconds in podway's `ready in 0.21s. Try: ...` line.
pub fn parse_ready_line(line: &str) -> Option<f64> {
    line.strip_prefix("ready in ")?.split('s').next()?.parse().ok()
}

/// A kube-rs client for `kubeconfig` (the admin client certificate), with kube-rs's own retry
/// turned off so every measured request is exactly one request.
pub async fn client(kubeconfig: &Path) -> Result<kube::Client> {
    let kc =
        kube::config::Kubeconfig::read_from(kubeconfig).with_context(|| format!("reading {}", kubeconfig.display()))?;
    let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    config.default_retry = false;
    config.read_timeout = Some(Duration::from_secs(120));
    Ok(kube::Client::try_from(config)?)
}

/// One request with a JSON (or empty) body; returns the status and the whole response body.
pub async fn call(
    client: &kube::Client,
    method: http::Method,
    uri: &str,
    body: Option<bytes::Bytes>,
) -> Result<(http::StatusCode, bytes::Bytes)> {
    let mut req = http::Request::builder().method(method).uri(uri);
    if body.is_some() {
        req = req.header(http::header::CONTENT_TYPE, "application/json");
    }
    let req = req.body(
        body.map(kube::client::Body::from)
            .unwrap_or_else(kube::client::Body::empty),
    )?;
    let resp = client.send(req).await?;
    let status = resp.status();
    let bytes = resp.into_body().collect_bytes().await?;
    Ok((status, bytes))
}

/// Create namespace `name`; an existing one is fine.
pub async fn ensure_namespace(client: &kube::Client, name: &str) -> Result<()> {
    let body = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    let (status, text) = call(
        client,
        http::Method::POST,
        "/api/v1/namespaces",
        Some(serde_json::to_vec(&body)?.into()),
    )
    .await?;
    if !status.is_success() && status != http::StatusCode::CONFLICT {
        bail!("creating namespace {name}: {status} {}", String::from_utf8_lossy(&text));
    }
    Ok(())
}

/// `kubectl ARGS` against `kubeconfig` with `home` as HOME (kubectl caches discovery there);
/// output is discarded. Returns how long it ran, or its stderr when it failed.
pub fn kubectl(kubeconfig: &Path, home: &Path, args: &[&str]) -> Result<Duration> {
    std::fs::create_dir_all(home)?;
    let started = Instant::now();
    let out = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("running kubectl; is it installed?")?;
    let took = started.elapsed();
    if !out.status.success() {
        bail!(
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(took)
}

/// `kubectl ARGS` as [`kubectl`] does, returning what it printed on stdout.
pub fn kubectl_stdout(kubeconfig: &Path, home: &Path, args: &[&str]) -> Result<String> {
    std::fs::create_dir_all(home)?;
    let out = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", home)
        .stdin(Stdio::null())
        .output()
        .context("running kubectl; is it installed?")?;
    if !out.status.success() {
        bail!(
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_gives_podways_own_seconds() {
        assert_eq!(parse_ready_line("ready in 0.21s. Try:"), Some(0.21));
        assert_eq!(parse_ready_line("  api server     https://127.0.0.1:1"), None);
    }
}
