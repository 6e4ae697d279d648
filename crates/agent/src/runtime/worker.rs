//! One pod's life on this node: sandbox, init containers in order, containers, restarts with
//! back-off, graceful termination, and the status it reports. Each pass of [`Worker::sync`]
//! compares what the spec wants with what the shim reports and acts on the difference, like
//! kubelet's `SyncPod`; the worker then sleeps until the pod changes, a process starts or
//! ends, or a back-off expires.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, ObjectReference, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use podway_events::EventType;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::backoff::{go_duration, Backoff};
use super::status::{self, ContainerView as StatusView, Ended, Instance, PodFacts};
use super::{shim_client, PodView, Runtime};
use crate::sandbox::files;
use crate::sandbox::shim::Process;
use crate::sandbox::{pod_dir, Sandbox, SandboxRequest};

/// Per-container memory of the worker.
#[derive(Default)]
pub(super) struct ContainerState {
    pub(super) restart_backoff: Backoff,
    pub(super) image_backoff: Backoff,
    pub(super) image_retry_at: Option<Instant>,
    pub(super) retry_at: Option<Instant>,
    pub(super) waiting: Option<(String, String)>,
    pub(super) base_restarts: i32,
    pub(super) env: Vec<(String, String)>,
    /// The working directory of its runs (exec starts there too).
    pub(super) cwd: String,
    /// Exits already acted on (by pid), so each is handled once.
    pub(super) seen_exits: Vec<i32>,
    pub(super) probes: Option<super::probes::Probes>,
}

/// The worker of one pod.
pub struct Worker {
    pub(super) rt: Arc<Runtime>,
    pub(super) pod: Pod,
    pub(super) view: Arc<Mutex<PodView>>,
    pub(super) sandbox: Option<Sandbox>,
    pub(super) containers: HashMap<String, ContainerState>,
    pub(super) processes: Vec<Process>,
    pub(super) shim_version: u64,
    pub(super) last_status: Option<Value>,
    pub(super) start_time: String,
    /// The pod ended for good (Succeeded or Failed): nothing more runs.
    pub(super) finished: bool,
    /// Probe workers report here.
    pub(super) probe_tx: tokio::sync::mpsc::UnboundedSender<crate::probe::ProbeUpdate>,
    probe_rx: tokio::sync::mpsc::UnboundedReceiver<crate::probe::ProbeUpdate>,
    events: tokio::sync::mpsc::UnboundedSender<(ObjectReference, EventType, String, String)>,
}

fn rfc3339_ms(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(ms as i64)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub(super) fn now_ms() -> u64 {
    jiff::Timestamp::now().as_millisecond() as u64
}

/// The `Instant` of a wall-clock time in the past.
fn instant_of(ms: u64) -> Instant {
    Instant::now() - Duration::from_millis(now_ms().saturating_sub(ms))
}

impl Worker {
    /// A worker for `pod`, sharing `view` with the streams.
    pub fn new(rt: Arc<Runtime>, pod: Pod, view: Arc<Mutex<PodView>>) -> Worker {
        let start_time = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_else(now_rfc3339);
        let (probe_tx, probe_rx) = tokio::sync::mpsc::unbounded_channel();
        let (events, mut pending) =
            tokio::sync::mpsc::unbounded_channel::<(ObjectReference, EventType, String, String)>();
        let recorder = rt.recorder.clone();
        tokio::spawn(async move {
            while let Some((r, type_, reason, message)) = pending.recv().await {
                recorder.publish_ref(&r, type_, &reason, &message).await;
            }
        });
        Worker {
            rt,
            pod,
            view,
            sandbox: None,
            containers: HashMap::new(),
            processes: Vec::new(),
            shim_version: 0,
            last_status: None,
            start_time,
            finished: false,
            probe_tx,
            probe_rx,
            events,
        }
    }

    pub(super) fn ns(&self) -> String {
        self.pod.metadata.namespace.clone().unwrap_or_default()
    }

    pub(super) fn name(&self) -> String {
        self.pod.metadata.name.clone().unwrap_or_default()
    }

    pub(super) fn uid(&self) -> String {
        self.pod.metadata.uid.clone().unwrap_or_default()
    }

    pub(super) fn dir(&self) -> std::path::PathBuf {
        pod_dir(&self.rt.cfg.sandbox.state_dir, &self.ns(), &self.name(), &self.uid())
    }

    fn spec_containers(&self) -> (Vec<Container>, Vec<Container>) {
        let spec = self.pod.spec.clone().unwrap_or_default();
        (spec.init_containers.unwrap_or_default(), spec.containers)
    }

    fn restart_policy(&self) -> String {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.clone())
            .unwrap_or_else(|| "Always".into())
    }

    fn reference(&self) -> ObjectReference {
        podway_events::object_reference(&self.pod)
    }

    /// Events are written in order by a task of their own, off the path that starts
    /// containers and reports status.
    async fn event(&self, type_: EventType, reason: &str, message: &str) {
        let _ = self
            .events
            .send((self.reference(), type_, reason.to_string(), message.to_string()));
    }

    pub(super) async fn container_event(&self, c: &str, type_: EventType, reason: &str, message: &str) {
        let mut r = self.reference();
        r.field_path = Some(format!("spec.containers{{{c}}}"));
        let _ = self.events.send((r, type_, reason.to_string(), message.to_string()));
    }

    /// Run until the pod is gone.
    pub async fn run(mut self, mut rx: watch::Receiver<Option<Pod>>) {
        loop {
            let latest = rx.borrow_and_update().clone();
            let Some(pod) = latest else {
                // Gone from the API: stop everything at once.
                self.terminate(Duration::ZERO).await;
                self.remove_files();
                return;
            };
            self.pod = pod;
            if self.pod.metadata.deletion_timestamp.is_some() {
                let grace = self
                    .pod
                    .metadata
                    .deletion_grace_period_seconds
                    .or_else(|| self.pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds))
                    .unwrap_or(30);
                let grace = Duration::from_secs(grace.max(0) as u64);
                // Out of every Service's rotation first; that wait counts against the grace.
                let started = Instant::now();
                let uid = self.pod.metadata.uid.clone().unwrap_or_default();
                super::rotation::leave(&self.rt.client, &self.ns(), &uid, grace / 2).await;
                self.terminate(grace.saturating_sub(started.elapsed())).await;
                self.finish_deletion().await;
                self.remove_files();
                return;
            }
            let next = self.sync().await;
            let dir = self.dir();
            let version = self.shim_version;
            let has_sandbox = self.sandbox.is_some() && !self.finished;
            let mut probe_update = None;
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                _ = async {
                    if has_sandbox {
                        let _ = shim_client::wait(&dir, version, Duration::from_secs(60)).await;
                    } else {
                        std::future::pending::<()>().await
                    }
                } => {}
                _ = tokio::time::sleep(next.unwrap_or(Duration::from_secs(60))) => {}
                u = self.probe_rx.recv() => probe_update = u,
            }
            if let Some(u) = probe_update {
                super::probes::handle(&self, u).await;
                // Take every other pending update too: one status pass covers them all.
                while let Ok(u) = self.probe_rx.try_recv() {
                    super::probes::handle(&self, u).await;
                }
            }
        }
    }

    /// One pass: make what runs match the spec, then report the status.
    async fn sync(&mut self) -> Option<Duration> {
        if self.finished {
            return None;
        }
        let mut wake: Option<Instant> = None;
        let began = Instant::now();
        if let Err(e) = self.ensure_sandbox().await {
            let msg = format!("Failed to create pod sandbox: {e:#}");
            tracing::warn!(pod = %self.name(), "{msg}");
            self.event(EventType::Warning, "FailedCreatePodSandBox", &msg).await;
            self.report_status().await;
            return Some(Duration::from_secs(5));
        }
        let sandbox_ready = began.elapsed();
        let dir = self.dir();
        match shim_client::state(&dir).await {
            Ok((version, processes)) => {
                self.shim_version = version;
                self.processes = processes;
            }
            Err(e) => {
                tracing::warn!(pod = %self.name(), "the pod shim is gone ({e:#}); recreating the sandbox");
                self.sandbox_lost();
                return Some(Duration::from_millis(100));
            }
        }
        let (init, containers) = self.spec_containers();
        let policy = self.restart_policy();
        // Init containers, one at a time, in order.
        let mut initialized = true;
        for c in &init {
            let latest = self.latest(&c.name);
            match latest.as_ref().map(|p| p.exit) {
                Some(None) => {
                    initialized = false;
                    break;
                }
                Some(Some(e)) if e.code == 0 => continue,
                Some(Some(e)) => {
                    initialized = false;
                    if policy != "Never" {
                        self.restart_or_wait(c, e.finished_ms, &mut wake).await;
                    }
                    break;
                }
                None => {
                    initialized = false;
                    self.start(c, &mut wake).await;
                    break;
                }
            }
        }
        if initialized {
            for c in &containers {
                let latest = self.latest(&c.name);
                match latest.as_ref().map(|p| p.exit) {
                    Some(None) => {}
                    Some(Some(e)) => {
                        let restart = policy == "Always" || (policy == "OnFailure" && e.code != 0);
                        if restart {
                            self.restart_or_wait(c, e.finished_ms, &mut wake).await;
                        } else if let Some(st) = self.containers.get_mut(&c.name) {
                            st.waiting = None;
                        }
                    }
                    None => self.start(c, &mut wake).await,
                }
            }
        }
        super::probes::refresh(self).await;
        // The streams must know a run before the API says it happened (`kubectl run -i`
        // reads the logs the moment the pod is Succeeded).
        self.publish_view();
        let started = began.elapsed();
        let phase = self.report_status().await;
        tracing::debug!(pod = %self.name(), ?sandbox_ready, ?started, reported = ?began.elapsed(), "sync");
        if phase == "Succeeded" || phase == "Failed" {
            // Like kubelet, a pod that ended for good gives back its sandbox (and address).
            self.finished = true;
            self.stop_probes();
            if let Some(sb) = self.sandbox.take() {
                let setup = self.rt.cfg.sandbox.clone();
                let _ = tokio::task::spawn_blocking(move || setup.destroy(&sb)).await;
            }
        }
        self.publish_view();
        wake.map(|w| w.saturating_duration_since(Instant::now()))
    }

    fn latest(&self, name: &str) -> Option<Process> {
        self.processes.iter().rev().find(|p| p.name == name).cloned()
    }

    pub(super) fn runs_of(&self, name: &str) -> usize {
        self.processes.iter().filter(|p| p.name == name).count()
    }

    /// The sandbox exists and runs: adopt the one on disk, or create one.
    async fn ensure_sandbox(&mut self) -> anyhow::Result<()> {
        if let Some(sb) = &self.sandbox {
            if sb.alive() {
                return Ok(());
            }
            self.sandbox_lost();
        }
        let dir = self.dir();
        if let Some(sb) = Sandbox::load(&dir) {
            if sb.alive() {
                self.sandbox = Some(sb);
                return Ok(());
            }
            let setup = self.rt.cfg.sandbox.clone();
            let _ = tokio::task::spawn_blocking(move || setup.destroy(&sb)).await;
        }
        let dns = &self.rt.cfg.dns;
        let req = SandboxRequest {
            namespace: self.ns(),
            name: self.name(),
            uid: self.uid(),
            hostname: files::hostname(&self.pod),
            resolv_conf: files::resolv_conf(&self.pod, dns),
            hosts_without_ip: files::hosts(&self.pod, "", &dns.domain),
        };
        let pod = self.pod.clone();
        let domain = dns.domain.clone();
        let setup = self.rt.cfg.sandbox.clone();
        // A burst of pods is set up a few at a time: the machine's cores finish the first pods
        // early instead of every pod late.
        let _slot = self.rt.sandbox_slots.acquire().await?;
        let sb =
            tokio::task::spawn_blocking(move || setup.create(&req, |ip| files::hosts(&pod, ip, &domain))).await??;
        self.sandbox = Some(sb);
        self.shim_version = 0;
        Ok(())
    }

    /// The shim died: its containers died with it. Count their runs as restarts, as kubelet
    /// does when it recreates a sandbox.
    fn sandbox_lost(&mut self) {
        for p in std::mem::take(&mut self.processes) {
            self.containers.entry(p.name.clone()).or_default().base_restarts += 1;
        }
        for st in self.containers.values_mut() {
            st.seen_exits.clear();
        }
        self.sandbox = None;
    }

    async fn restart_or_wait(&mut self, c: &Container, finished_ms: u64, wake: &mut Option<Instant>) {
        let now = Instant::now();
        let pod_ref = format!("{}_{}({})", self.name(), self.ns(), self.uid());
        let st = self.containers.entry(c.name.clone()).or_default();
        if let Some(until) = st.restart_backoff.wait_until(instant_of(finished_ms), now) {
            let delay = go_duration(st.restart_backoff.delay());
            let msg = format!("back-off {delay} restarting failed container={} pod={pod_ref}", c.name);
            let first = st.waiting.as_ref().map(|w| w.0.as_str()) != Some("CrashLoopBackOff");
            st.waiting = Some(("CrashLoopBackOff".into(), msg));
            *wake = Some(wake.map_or(until, |w| w.min(until)));
            if first {
                let text = format!("Back-off restarting failed container {} in pod {pod_ref}", c.name);
                self.container_event(&c.name, EventType::Warning, "BackOff", &text)
                    .await;
            }
            return;
        }
        st.restart_backoff.step(now);
        self.start(c, wake).await;
    }

    fn container_id(&self, p: &Process) -> String {
        use sha2::Digest;
        let sid = self.sandbox.as_ref().map(|s| s.id.as_str()).unwrap_or("");
        let d = sha2::Sha256::digest(format!("{sid}/{}/{}", p.name, p.pid).as_bytes());
        format!("podway://{}", d.iter().map(|b| format!("{b:02x}")).collect::<String>())
    }

    fn status_view(&self, c: &Container) -> StatusView {
        let st = self.containers.get(&c.name);
        let instances = self
            .processes
            .iter()
            .filter(|p| p.name == c.name)
            .map(|p| Instance {
                container_id: self.container_id(p),
                started_at: rfc3339_ms(p.started_ms),
                ended: p.exit.map(|e| Ended {
                    code: e.code,
                    signal: e.signal,
                    finished_at: rfc3339_ms(e.finished_ms),
                }),
            })
            .collect();
        let (ready, started) = self.probe_state(c);
        StatusView {
            name: c.name.clone(),
            image: c.image.clone().unwrap_or_default(),
            instances,
            base_restarts: st.map(|s| s.base_restarts).unwrap_or(0),
            waiting: st.and_then(|s| s.waiting.clone()),
            ready,
            started,
        }
    }

    /// Compute the status and write it if it changed; returns the phase.
    async fn report_status(&mut self) -> String {
        let (init, containers) = self.spec_containers();
        let init_views: Vec<StatusView> = init.iter().map(|c| self.status_view(c)).collect();
        let views: Vec<StatusView> = containers.iter().map(|c| self.status_view(c)).collect();
        let old = serde_json::to_value(self.pod.status.clone().unwrap_or_default()).unwrap_or(json!({}));
        let policy = self.restart_policy();
        let now = now_rfc3339();
        let ip = self.sandbox.as_ref().map(|s| s.ip.clone()).unwrap_or_default();
        let facts = PodFacts {
            old: &old,
            restart_policy: &policy,
            host_ip: &self.rt.cfg.node_ip,
            pod_ip: &ip,
            sandbox_ready: self.sandbox.is_some(),
            now: &now,
            start_time: &self.start_time,
        };
        let image_id = |image: &str| super::images_glue::image_id(image);
        let new = status::pod_status(&facts, &init_views, &views, &image_id);
        let phase = new["phase"].as_str().unwrap_or("Pending").to_string();
        if self.last_status.as_ref() != Some(&new) {
            let api: Api<Pod> = Api::namespaced(self.rt.client.clone(), &self.ns());
            match api
                .patch_status(
                    &self.name(),
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"status": new})),
                )
                .await
            {
                Ok(p) => {
                    self.pod.status = p.status;
                    self.last_status = Some(new);
                }
                Err(e) => tracing::debug!(pod = %self.name(), "writing pod status: {e}"),
            }
        }
        phase
    }

    /// Share what the streams need (shim pid, log files, environments).
    fn publish_view(&self) {
        let (init, containers) = self.spec_containers();
        let mut view = self.view.lock().expect("view lock");
        view.shim_pid = self.sandbox.as_ref().map(|s| s.pid).unwrap_or(0);
        view.ip = self.sandbox.as_ref().map(|s| s.ip.clone()).unwrap_or_default();
        view.dir = self.dir();
        for c in init.iter().chain(containers.iter()) {
            let st = self.containers.get(&c.name);
            let runs = self.runs_of(&c.name) as i32;
            let base = st.map(|s| s.base_restarts).unwrap_or(0);
            let latest = self.latest(&c.name);
            let entry = view.containers.entry(c.name.clone()).or_default();
            let running = latest.as_ref().is_some_and(|p| p.exit.is_none());
            if entry.running != running || entry.log_index != base + runs - 1 {
                entry.generation += 1;
            }
            entry.running = running;
            entry.ever_started = runs > 0 || base > 0;
            entry.log_index = (base + runs - 1).max(0);
            entry.waiting_reason = st
                .and_then(|s| s.waiting.as_ref().map(|w| w.0.clone()))
                .unwrap_or_else(|| "ContainerCreating".into());
            entry.stdin = c.stdin.unwrap_or(false);
            if let Some(s) = st.filter(|s| !s.env.is_empty()) {
                entry.env = s.env.clone();
                entry.cwd = s.cwd.clone();
            }
        }
        drop(view);
        self.rt.notify();
    }

    /// Stop every container (preStop hook, SIGTERM, SIGKILL after `grace`) and the sandbox.
    async fn terminate(&mut self, grace: Duration) {
        self.stop_probes();
        let dir = self.dir();
        if self.sandbox.is_none() {
            if let Some(sb) = Sandbox::load(&dir).filter(|s| s.alive()) {
                self.sandbox = Some(sb);
            }
        }
        let Some(sb) = self.sandbox.clone() else { return };
        if let Ok((_, processes)) = shim_client::state(&dir).await {
            self.processes = processes;
        }
        let deadline = Instant::now() + grace;
        let running: Vec<Process> = self.processes.iter().filter(|p| p.exit.is_none()).cloned().collect();
        let (init, containers) = self.spec_containers();
        for p in &running {
            self.container_event(
                &p.name,
                EventType::Normal,
                "Killing",
                &format!("Stopping container {}", p.name),
            )
            .await;
            if let Some(c) = containers.iter().chain(init.iter()).find(|c| c.name == p.name) {
                let cwd = self.containers.get(&c.name).map(|s| s.cwd.clone()).unwrap_or_default();
                super::hooks::pre_stop(&sb, c, &self.env_of(&c.name), &cwd, deadline).await;
            }
            let _ = shim_client::signal(&dir, p.pid, 15).await;
        }
        loop {
            let Ok((version, processes)) = shim_client::state(&dir).await else {
                break;
            };
            if processes.iter().all(|p| p.exit.is_some()) {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                for p in processes.iter().filter(|p| p.exit.is_none()) {
                    let _ = shim_client::signal(&dir, p.pid, 9).await;
                }
                break;
            }
            let _ = shim_client::wait(&dir, version, left).await;
        }
        let setup = self.rt.cfg.sandbox.clone();
        let _ = tokio::task::spawn_blocking(move || setup.destroy(&sb)).await;
        self.sandbox = None;
    }

    fn env_of(&self, name: &str) -> Vec<(String, String)> {
        self.containers.get(name).map(|s| s.env.clone()).unwrap_or_default()
    }

    /// The containers are stopped: remove the pod object, as kubelet does.
    async fn finish_deletion(&self) {
        let api: Api<Pod> = Api::namespaced(self.rt.client.clone(), &self.ns());
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: self.pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        if let Err(e) = api.delete(&self.name(), &params).await {
            tracing::debug!(pod = %self.name(), "finishing deletion: {e}");
        }
    }

    fn remove_files(&self) {
        let _ = std::fs::remove_dir_all(self.dir());
    }

    // Probes: see super::probes.

    fn stop_probes(&mut self) {
        for st in self.containers.values_mut() {
            st.probes = None;
        }
    }

    fn probe_state(&self, c: &Container) -> (bool, bool) {
        match self.containers.get(&c.name).and_then(|s| s.probes.as_ref()) {
            Some(p) => p.ready_started(),
            None => (true, true),
        }
    }
}
