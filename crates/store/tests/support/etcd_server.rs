//! A throwaway etcd server for tests: Debian's real `/usr/bin/etcd` on loopback ports, with
//! its data in a temp dir. Dropping it (also while unwinding from a failed assertion) kills
//! the process and removes the directory.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use podway_store::etcd::EtcdStore;
use podway_store::Store;

const ETCD: &str = "/usr/bin/etcd";

/// How long etcd gets to answer its first request.
const READY_DEADLINE: Duration = Duration::from_secs(30);

/// A running etcd; killed and its data removed on drop.
pub struct EtcdServer {
    child: Child,
    /// Client URL, e.g. `http://127.0.0.1:40123`.
    pub endpoint: String,
    dir: tempfile::TempDir,
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port the kernel just handed out on 127.0.0.1. Another process could take it before
/// etcd binds it; `start` retries with fresh ports when etcd exits early.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

impl EtcdServer {
    /// Starts etcd and returns it with a connected store, once it answers requests.
    pub async fn start() -> (EtcdServer, EtcdStore) {
        assert!(
            std::path::Path::new(ETCD).exists(),
            "{ETCD} is missing: install Debian's etcd-server (scripts/install-deps.sh test)"
        );
        let mut last_failure = String::new();
        for _attempt in 0..3 {
            let mut server = Self::spawn();
            match server.wait_ready().await {
                Ok(store) => return (server, store),
                Err(why) => last_failure = why,
            }
        }
        panic!("etcd did not start: {last_failure}");
    }

    fn spawn() -> EtcdServer {
        let dir = tempfile::tempdir().expect("temp dir for etcd");
        let (client_port, peer_port) = (free_port(), free_port());
        let endpoint = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).expect("etcd log file");
        let child = Command::new(ETCD)
            .arg("--name=podway-test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={endpoint}"))
            .arg(format!("--advertise-client-urls={endpoint}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=podway-test={peer}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {ETCD}: {e}"));
        EtcdServer { child, endpoint, dir }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    /// Retries a request until etcd answers, it exits, or the deadline passes.
    async fn wait_ready(&mut self) -> Result<EtcdStore, String> {
        let deadline = Instant::now() + READY_DEADLINE;
        let store = EtcdStore::connect(&self.endpoint).await.map_err(|e| e.to_string())?;
        loop {
            if store.current_revision().await.is_ok() {
                return Ok(store);
            }
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(15)..].join("\n");
                return Err(format!(
                    "etcd at {} not ready (exit: {exited:?}); log tail:\n{tail}",
                    self.endpoint
                ));
            }
            // Poll interval of the readiness retry, bounded by the deadline above.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
