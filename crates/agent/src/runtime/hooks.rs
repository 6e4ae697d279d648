//! Lifecycle hooks: `preStop` (exec, httpGet, sleep), run before a container is signalled.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Container;

use crate::probe::{Attempt, ProbeTarget};
use crate::sandbox::Sandbox;

/// Run the container's `preStop` hook, giving up at `deadline` (the grace period). A failed
/// hook is logged; the container is stopped either way, as kubelet does.
pub async fn pre_stop(sandbox: &Sandbox, c: &Container, env: &[(String, String)], cwd: &str, deadline: Instant) {
    let Some(hook) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) else {
        return;
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let work = async {
        if let Some(exec) = &hook.exec {
            let argv = exec.command.clone().unwrap_or_default();
            if let Ok(mut cmd) = super::streams::enter_command(sandbox.pid, &argv, env, cwd) {
                let _ = cmd.kill_on_drop(true).status().await;
            }
        } else if let Some(get) = &hook.http_get {
            // kubelet's lifecycle handler makes the same request as an httpGet probe (named
            // ports, scheme, headers), and only logs the outcome.
            let target = ProbeTarget::new(sandbox.ip.clone(), c);
            if let Attempt::Failure(why) | Attempt::Errored { error: why, .. } =
                crate::probe::http::http_get_probe(get, &target, left).await
            {
                tracing::info!(container = %c.name, "preStop httpGet failed: {why}");
            }
        } else if let Some(sleep) = &hook.sleep {
            tokio::time::sleep(Duration::from_secs(sleep.seconds.max(0) as u64)).await;
        }
    };
    if tokio::time::timeout(left, work).await.is_err() {
        tracing::info!(container = %c.name, "preStop hook did not finish within the grace period");
    }
}
