//! Item 1: how long `podway up` takes, from spawning the process in a fresh data directory
//! until `/readyz` answers `ok`, and until a `kubectl get nodes` (fresh HOME, so kubectl does
//! its discovery as a new user's would) succeeds.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::cluster::{self, Podway};

/// How often `/readyz` is polled while podway starts.
const POLL: Duration = Duration::from_millis(2);

/// The samples of all startup runs.
#[derive(Debug, Default)]
pub struct Startup {
    /// Spawn to the first `/readyz` answering 200 `ok`.
    pub to_readyz: Vec<Duration>,
    /// Spawn to `kubectl get nodes` exiting 0 (started right after `/readyz` was ok).
    pub to_kubectl: Vec<Duration>,
    /// podway's own `ready in` figure.
    pub self_reported: Vec<Duration>,
    /// `kubectl get nodes` alone against the already-running cluster, fresh HOME: the part of
    /// `to_kubectl` that is kubectl's own process start and discovery.
    pub kubectl_alone: Vec<Duration>,
}

/// Run `runs` cold starts, each in a new directory under `work`, one after another.
pub async fn measure(bin: &Path, work: &Path, runs: usize) -> Result<Startup> {
    let mut out = Startup::default();
    for i in 0..runs {
        let dir = work.join(format!("startup-{i}"));
        one(bin, &dir, &mut out).await?;
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(out)
}

async fn one(bin: &Path, dir: &Path, out: &mut Startup) -> Result<()> {
    let mut p = Podway::spawn(bin, dir, &[])?;
    p.server_url().await?;
    let deadline = p.spawned + Duration::from_secs(60);
    // The kubeconfig is written (atomically) just after the address is printed.
    let client = loop {
        if let Ok(c) = cluster::client(&p.kubeconfig()).await {
            break c;
        }
        wait_or_fail(deadline, "the kubeconfig").await?;
    };
    loop {
        if let Ok((status, body)) = cluster::call(&client, http::Method::GET, "/readyz", None).await {
            if status.is_success() && body.as_ref() == b"ok" {
                break;
            }
        }
        wait_or_fail(deadline, "/readyz").await?;
    }
    out.to_readyz.push(p.spawned.elapsed());
    let kubeconfig = p.kubeconfig();
    let home = dir.join("home-first");
    let spawned = p.spawned;
    tokio::task::spawn_blocking(move || cluster::kubectl(&kubeconfig, &home, &["get", "nodes"])).await??;
    out.to_kubectl.push(spawned.elapsed());
    out.self_reported.push(Duration::from_secs_f64(p.ready().await?));
    let kubeconfig = p.kubeconfig();
    let home = dir.join("home-second");
    out.kubectl_alone
        .push(tokio::task::spawn_blocking(move || cluster::kubectl(&kubeconfig, &home, &["get", "nodes"])).await??);
    Ok(())
}

async fn wait_or_fail(deadline: Instant, what: &str) -> Result<()> {
    if Instant::now() > deadline {
        bail!("podway did not serve {what} within 60s");
    }
    tokio::time::sleep(POLL).await;
    Ok(())
}
