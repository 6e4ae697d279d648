//! A real `podway up` per test, with the controllers started against it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kube::Client;

/// A podway API server in a temp dir, killed on drop; controllers run until drop too.
pub struct Cluster {
    child: Child,
    _dir: tempfile::TempDir,
    pub client: Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub controllers: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

fn podway_bin() -> PathBuf {
    if let Ok(p) = std::env::var("PODWAY_BIN") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/podway")
}

impl Cluster {
    /// Starts podway and the controllers with `config`.
    pub async fn start_with(config: podway_controllers::ControllerConfig) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        let bin = podway_bin();
        assert!(
            bin.exists(),
            "{} missing: run `cargo build -p podway` or set PODWAY_BIN",
            bin.display()
        );
        let mut child = Command::new(bin)
            .args(["up", "--data-dir"])
            .arg(dir.path())
            .args(["--api-port", "0", "--kubeconfig-path"])
            .arg(&kubeconfig)
            // The control plane alone: these tests make the Node objects they need.
            .args(["--nodes", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start podway");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut embedded = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                embedded |= line.trim_start().starts_with("controllers ");
                if line.starts_with("ready in") {
                    let _ = tx.send(embedded);
                }
            }
        });
        let Ok(embedded) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!("podway did not become ready");
        };
        let kc = kube::config::Kubeconfig::read_from(&kubeconfig).expect("kubeconfig");
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .expect("config");
        let client = Client::try_from(cfg).expect("client");
        let (stop, stopped) = tokio::sync::oneshot::channel();
        // `podway up` now runs these same controllers itself; a second set would race it.
        // Then the binary's (build it first: `cargo build -p podway`) are the ones tested.
        let controllers = (!embedded).then(|| {
            tokio::spawn(podway_controllers::run(client.clone(), config, async move {
                let _ = stopped.await;
            }))
        });
        Cluster {
            child,
            _dir: dir,
            client,
            stop: Some(stop),
            controllers,
        }
    }

    /// Starts podway and the controllers with default settings.
    pub async fn start() -> Cluster {
        Cluster::start_with(Default::default()).await
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.controllers.take() {
            h.abort();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 100ms until it returns `Some`, failing after `secs` seconds with
/// the last state described by `what`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Plays the node agent: marks a pod Running and Ready with an IP, via pods/status.
pub async fn make_pod_ready(client: &Client, ns: &str, name: &str, ip: &str, node: &str) {
    use k8s_openapi::api::core::v1::Pod;
    let api: kube::Api<Pod> = kube::Api::namespaced(client.clone(), ns);
    let now = jiff::Timestamp::now().to_string();
    let now = format!("{}Z", &now[..19]);
    let patch = serde_json::json!({"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "172.30.0.2",
        "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now}
        ]
    }});
    let _ = node;
    api.patch_status(
        name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .unwrap_or_else(|e| panic!("set status of pod {ns}/{name}: {e}"));
}

/// A stand-in node agent: every 100ms marks each pending pod in `ns` Running and Ready
/// with a fresh IP. Abort the handle to stop it.
pub fn fake_agent(client: Client, ns: &str) -> tokio::task::JoinHandle<()> {
    use k8s_openapi::api::core::v1::Pod;
    let ns = ns.to_string();
    tokio::spawn(async move {
        let api: kube::Api<Pod> = kube::Api::namespaced(client.clone(), &ns);
        let mut next = 10u32;
        loop {
            if let Ok(list) = api.list(&Default::default()).await {
                for p in list.items {
                    let has_ip = p.status.as_ref().and_then(|s| s.pod_ip.as_ref()).is_some();
                    if !has_ip && p.metadata.deletion_timestamp.is_none() {
                        next += 1;
                        let ip = format!("10.244.{}.{}", next / 250, next % 250 + 2);
                        make_pod_ready(&client, &ns, p.metadata.name.as_deref().unwrap_or(""), &ip, "node-1").await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}
