//! Lifecycle hooks: `preStop` (exec, httpGet, sleep), run before a container is signalled.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Container;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Runtime;
use crate::sandbox::Sandbox;

/// Run the container's `preStop` hook, giving up at `deadline` (the grace period).
pub async fn pre_stop(
    rt: &Runtime,
    sandbox: &Sandbox,
    c: &Container,
    env: &[(String, String)],
    cwd: &str,
    deadline: Instant,
) {
    let Some(hook) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) else {
        return;
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let work = async {
        if let Some(exec) = &hook.exec {
            let argv = exec.command.clone().unwrap_or_default();
            if let Ok(mut cmd) = super::streams::enter_command(sandbox.pid, &argv, env, cwd) {
                let _ = cmd.status().await;
            }
        } else if let Some(get) = &hook.http_get {
            let port = match &get.port {
                IntOrString::Int(p) => *p as u16,
                IntOrString::String(name) => c
                    .ports
                    .iter()
                    .flatten()
                    .find(|p| p.name.as_deref() == Some(name))
                    .map(|p| p.container_port as u16)
                    .unwrap_or(80),
            };
            let host = get.host.clone().unwrap_or_else(|| sandbox.ip.clone());
            let path = get.path.clone().unwrap_or_else(|| "/".into());
            if let Ok(mut s) = tokio::net::TcpStream::connect((host.as_str(), port)).await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let req = format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-lifecycle/1.32\r\nConnection: close\r\n\r\n");
                let _ = s.write_all(req.as_bytes()).await;
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink).await;
            }
        } else if let Some(sleep) = &hook.sleep {
            tokio::time::sleep(Duration::from_secs(sleep.seconds.max(0) as u64)).await;
        }
    };
    if tokio::time::timeout(left, work).await.is_err() {
        tracing::info!(container = %c.name, "preStop hook did not finish within the grace period");
    }
    let _ = rt;
}
