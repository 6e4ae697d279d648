//! Probes of the pod's containers (readiness, liveness, startup), wired to the worker: the
//! worker reports each run's start and end, copies `ready`/`started` into the status, kills a
//! container whose liveness or startup probe failed, and records the probes' events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use podway_events::EventType;
use tokio::io::AsyncReadExt;

use super::worker::Worker;
use super::PodView;
use crate::probe::{kill_message, ContainerProbes, ExecError, ExecOutput, ExecRequest, ProbeExec, ProbeUpdate};

/// The probes of one container, and the run last reported to them.
pub struct Probes {
    probes: ContainerProbes,
    reported: Option<(u64, bool)>,
}

impl Probes {
    /// (ready, started) as the probes say.
    pub fn ready_started(&self) -> (bool, bool) {
        let s = self.probes.status();
        (s.ready, s.started)
    }
}

/// Runs probe commands inside the pod, with the container's environment.
struct PodExec {
    view: Arc<Mutex<PodView>>,
}

impl ProbeExec for PodExec {
    fn exec(&self, request: ExecRequest) -> BoxFuture<'_, Result<ExecOutput, ExecError>> {
        async move {
            let (pid, env, cwd) = {
                let v = self.view.lock().expect("view lock");
                let c = v.containers.get(&request.container).cloned().unwrap_or_default();
                (v.shim_pid, c.env, c.cwd)
            };
            if pid == 0 {
                return Err(ExecError::Failed("the pod has no sandbox".into()));
            }
            let mut cmd = super::streams::enter_command(pid, &request.command, &env, &cwd)
                .map_err(|e| ExecError::Failed(e.to_string()))?;
            cmd.kill_on_drop(true)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = cmd.spawn().map_err(|e| ExecError::Failed(e.to_string()))?;
            let run = async {
                let mut out = Vec::new();
                let mut err = Vec::new();
                let (mut so, mut se) = (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
                let _ = tokio::join!(so.read_to_end(&mut out), se.read_to_end(&mut err));
                out.extend(err);
                let status = child.wait().await.map_err(|e| ExecError::Failed(e.to_string()))?;
                Ok(ExecOutput {
                    exit_code: status.code().unwrap_or(137),
                    output: out,
                })
            };
            tokio::time::timeout(request.timeout, run)
                .await
                .map_err(|_| ExecError::TimedOut)?
        }
        .boxed()
    }
}

/// Start probes for containers that have some, report runs to them, and act on a failed
/// liveness or startup probe.
pub async fn refresh(w: &mut Worker) {
    // Kubernetes probes regular containers only.
    let containers = w.pod.spec.clone().unwrap_or_default().containers;
    let pod_ip = w.sandbox.as_ref().map(|s| s.ip.clone()).unwrap_or_default();
    for c in &containers {
        if c.readiness_probe.is_none() && c.liveness_probe.is_none() && c.startup_probe.is_none() {
            continue;
        }
        if pod_ip.is_empty() {
            continue;
        }
        let runs: Vec<_> = w.processes.iter().filter(|p| p.name == c.name).cloned().collect();
        let base = w.containers.get(&c.name).map(|s| s.base_restarts).unwrap_or(0);
        let view = w.view.clone();
        let tx = w.probe_tx.clone();
        let st = w.containers.entry(c.name.clone()).or_default();
        let probes = st.probes.get_or_insert_with(|| Probes {
            probes: ContainerProbes::spawn(c, &pod_ip, Arc::new(PodExec { view }), tx),
            reported: None,
        });
        let Some(latest) = runs.last() else { continue };
        let instance = (base as u64) + runs.len() as u64 - 1;
        let running = latest.exit.is_none();
        if probes.reported != Some((instance, running)) {
            if running {
                let age = Duration::from_millis(
                    jiff::Timestamp::now()
                        .as_millisecond()
                        .saturating_sub(latest.started_ms as i64) as u64,
                );
                probes
                    .probes
                    .container_running(instance, tokio::time::Instant::now() - age);
            } else {
                probes.probes.container_exited(instance);
            }
            probes.reported = Some((instance, running));
        }
        if let (true, Some(kind)) = (running, probes.probes.status().restart) {
            let policy = w
                .pod
                .spec
                .as_ref()
                .and_then(|s| s.restart_policy.clone())
                .unwrap_or_else(|| "Always".into());
            let grace = w
                .pod
                .spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
                .unwrap_or(30);
            let msg = kill_message(&c.name, kind, policy != "Never");
            let pid = latest.pid;
            let dir = w.dir();
            w.container_event(&c.name, EventType::Normal, "Killing", &msg).await;
            let _ = super::shim_client::signal(&dir, pid, 15).await;
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(grace.max(0) as u64)).await;
                let _ = super::shim_client::signal(&dir, pid, 9).await;
            });
        }
    }
}

/// Record what a probe reported (events); status changes are picked up by the next sync.
pub async fn handle(w: &Worker, update: ProbeUpdate) {
    if let ProbeUpdate::Event(e) = update {
        w.container_event(&e.container, EventType::Warning, e.reason, &e.message)
            .await;
    }
}
