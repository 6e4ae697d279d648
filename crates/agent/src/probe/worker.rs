//! The probe workers of one container and what they publish.
//!
//! One task per probe kind, as the kubelet has one worker per container and kind. A worker
//! wakes on its `periodSeconds` ticker (the phase starts when it is spawned, not when the
//! container starts), and a readiness worker also when the container's state changes (the
//! kubelet's pod sync triggers a readiness run whenever the container has started but is not
//! ready yet, which is why a pod turns Ready right after its container starts).

use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::api::core::v1::{Container, Probe};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::action::{run_probe, ProbeExec, ProbeTarget};
use super::state::{ContainerView, WorkerState};
use super::{ProbeKind, ProbeResult, ProbeSettings};

/// A Kubernetes Event the kubelet would record on the container for one probe attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeEvent {
    /// The container's name (the event's `involvedObject.fieldPath` is
    /// `spec.containers{<name>}`).
    pub container: String,
    /// The probe that produced it.
    pub kind: ProbeKind,
    /// The container run that was probed.
    pub instance: u64,
    /// `Unhealthy` (failed or errored) or `ProbeWarning`; the event type is always Warning.
    pub reason: &'static str,
    /// E.g. `Readiness probe failed: HTTP probe failed with statuscode: 503`.
    pub message: String,
}

/// What the probes of a container tell the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeUpdate {
    /// Record this event.
    Event(ProbeEvent),
    /// The container's [`ContainerProbeStatus`] changed; read it with
    /// [`ContainerProbes::status`] (level-triggered: only the latest status matters).
    Status {
        /// The container's name.
        container: String,
    },
}

/// The probe-derived part of a container's status, for the container's current run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerProbeStatus {
    /// The run these fields describe (`None` before the first start).
    pub instance: Option<u64>,
    /// `containerStatuses[].started`: running, and its startup probe succeeded (or it has
    /// none).
    pub started: bool,
    /// `containerStatuses[].ready`: started, and its readiness probe succeeded (or it has
    /// none). The pod is Ready when all its containers are.
    pub ready: bool,
    /// Set while the running container failed its liveness (checked first) or startup probe:
    /// kill it and start it again as the restart policy says (see [`super::kill_message`]).
    pub restart: Option<ProbeKind>,
    /// The published readiness result for this run, if any.
    pub readiness: Option<ProbeResult>,
    /// The published liveness result for this run, if any.
    pub liveness: Option<ProbeResult>,
    /// The published startup result for this run, if any.
    pub startup: Option<ProbeResult>,
}

/// What the workers share: the container as the runtime last reported it and the results.
#[derive(Debug, Clone)]
struct Shared {
    view: ContainerView,
    /// Per kind: the result and the run it is about (the kubelet's results manager).
    results: [Option<(u64, ProbeResult)>; 3],
    /// Per kind: whether a worker runs.
    workers: [bool; 3],
}

impl Shared {
    fn result(&self, kind: ProbeKind) -> Option<ProbeResult> {
        let current = self.view.instance()?;
        self.results[kind.index()]
            .filter(|(instance, _)| *instance == current)
            .map(|(_, result)| result)
    }

    /// The kubelet's `isContainerStarted` and readiness rule from `UpdatePodStatus`.
    fn status(&self) -> ContainerProbeStatus {
        let running = matches!(self.view, ContainerView::Running { .. });
        let passed = |kind: ProbeKind| match self.result(kind) {
            Some(result) => result == ProbeResult::Success,
            None => !self.workers[kind.index()],
        };
        let started = running && passed(ProbeKind::Startup);
        let ready = started && (self.result(ProbeKind::Readiness) == Some(ProbeResult::Success) || !self.workers[0]);
        let failed = |kind: ProbeKind| running && self.result(kind) == Some(ProbeResult::Failure);
        let restart = [ProbeKind::Liveness, ProbeKind::Startup]
            .into_iter()
            .find(|kind| failed(*kind));
        ContainerProbeStatus {
            instance: self.view.instance(),
            started,
            ready,
            restart,
            readiness: self.result(ProbeKind::Readiness),
            liveness: self.result(ProbeKind::Liveness),
            startup: self.result(ProbeKind::Startup),
        }
    }
}

struct Inner {
    target: ProbeTarget,
    exec: Arc<dyn ProbeExec>,
    shared: Mutex<Shared>,
    status: watch::Sender<ContainerProbeStatus>,
    updates: mpsc::UnboundedSender<ProbeUpdate>,
    readiness_trigger: Notify,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding the lock leaves plain data behind; keep going with it.
        self.shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Store a result (the kubelet's `resultsManager.Set`). A change that would make the kubelet
    /// sync the pod (any change, but for liveness only a change to Failure) may trigger a
    /// readiness run.
    fn set_result(&self, kind: ProbeKind, instance: u64, result: ProbeResult) {
        let mut shared = self.lock();
        let changed = shared.results[kind.index()] != Some((instance, result));
        shared.results[kind.index()] = Some((instance, result));
        let sync = changed && (kind != ProbeKind::Liveness || result == ProbeResult::Failure);
        self.publish(&shared, sync);
    }

    /// Publish the status if it changed; on a pod sync, run readiness now when the container
    /// has started but is not ready (`UpdatePodStatus`'s manual trigger).
    fn publish(&self, shared: &Shared, sync: bool) {
        let status = shared.status();
        let trigger = sync && status.started && shared.workers[0] && status.readiness != Some(ProbeResult::Success);
        let changed = self.status.send_if_modified(|old| {
            let changed = *old != status;
            *old = status;
            changed
        });
        if changed {
            let _ = self.updates.send(ProbeUpdate::Status {
                container: self.target.container.clone(),
            });
        }
        if trigger {
            self.readiness_trigger.notify_one();
        }
    }

    /// One wake-up of a worker (the kubelet's `doProbe`).
    async fn do_probe(&self, state: &mut WorkerState, kind: ProbeKind, probe: &Probe) {
        let (view, started) = {
            let shared = self.lock();
            (shared.view, shared.status().started)
        };
        let before = state.before_probe(&view, started, Instant::now());
        let Some(instance) = state.instance() else { return };
        if let Some(result) = before.set {
            self.set_result(kind, instance, result);
        }
        if !before.probe {
            return;
        }
        let attempt = run_probe(probe, &self.target, instance, state.settings().timeout, &*self.exec).await;
        tracing::debug!(container = %self.target.container, %kind, instance, ?attempt, "probe attempt");
        if let Some((reason, message)) = attempt.event(kind) {
            let event = ProbeEvent {
                container: self.target.container.clone(),
                kind,
                instance,
                reason,
                message,
            };
            let _ = self.updates.send(ProbeUpdate::Event(event));
        }
        if let Some(set) = attempt.counted().and_then(|result| state.after_probe(result)) {
            self.set_result(kind, instance, set);
        }
    }
}

async fn run_worker(inner: Arc<Inner>, kind: ProbeKind, probe: Probe) {
    let settings = ProbeSettings::from_probe(kind, &probe);
    let mut ticker = tokio::time::interval(settings.period);
    // Like Go's ticker: a tick missed during a slow probe fires once, then the phase holds.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    ticker.tick().await;
    let mut state = WorkerState::new(kind, settings);
    loop {
        inner.do_probe(&mut state, kind, &probe).await;
        if kind == ProbeKind::Readiness {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = inner.readiness_trigger.notified() => {}
            }
        } else {
            ticker.tick().await;
        }
    }
}

/// The probes of one container: up to three worker tasks and the status they publish.
///
/// Spawn it when the pod's containers are set up (inside a tokio runtime), report every start
/// and exit of the container, and drop it (or let the pod's task end) when the container will
/// not run again: dropping stops the workers. A container without probes gets no tasks; its
/// status still follows the rules (started and ready while running).
pub struct ContainerProbes {
    inner: Arc<Inner>,
    tasks: [Option<JoinHandle<()>>; 3],
    settings: [Option<ProbeSettings>; 3],
}

impl ContainerProbes {
    /// Start the workers for `container`'s probes in a pod with IP `pod_ip`. Exec probes run
    /// through `exec`; events and status changes go to `updates`.
    pub fn spawn(
        container: &Container,
        pod_ip: &str,
        exec: Arc<dyn ProbeExec>,
        updates: mpsc::UnboundedSender<ProbeUpdate>,
    ) -> ContainerProbes {
        let probes = ProbeKind::ALL.map(|kind| kind.probe_of(container).cloned());
        let shared = Shared {
            view: ContainerView::NotCreated,
            results: [None; 3],
            workers: [probes[0].is_some(), probes[1].is_some(), probes[2].is_some()],
        };
        let (status, _) = watch::channel(shared.status());
        let inner = Arc::new(Inner {
            target: ProbeTarget::new(pod_ip, container),
            exec,
            shared: Mutex::new(shared),
            status,
            updates,
            readiness_trigger: Notify::new(),
        });
        let settings = ProbeKind::ALL.map(|kind| {
            probes[kind.index()]
                .as_ref()
                .map(|p| ProbeSettings::from_probe(kind, p))
        });
        let tasks = ProbeKind::ALL.map(|kind| {
            let probe = probes[kind.index()].clone()?;
            Some(tokio::spawn(run_worker(inner.clone(), kind, probe)))
        });
        ContainerProbes { inner, tasks, settings }
    }

    /// The container's run `instance` started at `started_at` (a new instance for every
    /// restart; `initialDelaySeconds` counts from `started_at`).
    pub fn container_running(&self, instance: u64, started_at: Instant) {
        self.set_view(ContainerView::Running { instance, started_at });
    }

    /// The container's run `instance` exited.
    pub fn container_exited(&self, instance: u64) {
        self.set_view(ContainerView::Exited { instance });
    }

    fn set_view(&self, view: ContainerView) {
        let mut shared = self.inner.lock();
        shared.view = view;
        // A container event makes the kubelet sync the pod.
        self.inner.publish(&shared, true);
    }

    /// The current status.
    pub fn status(&self) -> ContainerProbeStatus {
        self.inner.status.borrow().clone()
    }

    /// A receiver of the status, for waiting on a change.
    pub fn subscribe(&self) -> watch::Receiver<ContainerProbeStatus> {
        self.inner.status.subscribe()
    }

    /// The settings of the container's `kind` probe, if it has one (e.g. for the probe's
    /// `terminationGracePeriodSeconds` when its failure kills the container).
    pub fn settings(&self, kind: ProbeKind) -> Option<&ProbeSettings> {
        self.settings[kind.index()].as_ref()
    }

    /// Stop the liveness and startup workers, as the kubelet does once the pod is being
    /// deleted: a container shutting down must not be restarted for failing them. Their
    /// results are forgotten, so the container counts as started.
    pub fn stop_liveness_and_startup(&mut self) {
        let mut shared = self.inner.lock();
        for kind in [ProbeKind::Liveness, ProbeKind::Startup] {
            if let Some(task) = self.tasks[kind.index()].take() {
                task.abort();
            }
            shared.workers[kind.index()] = false;
            shared.results[kind.index()] = None;
        }
        // The terminating pod syncs, which runs readiness if the container now counts as
        // started but is not ready.
        self.inner.publish(&shared, true);
    }
}

impl Drop for ContainerProbes {
    fn drop(&mut self) {
        for task in self.tasks.iter_mut().filter_map(Option::take) {
            task.abort();
        }
    }
}

impl std::fmt::Debug for ContainerProbes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerProbes")
            .field("container", &self.inner.target.container)
            .field("status", &self.status())
            .finish()
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
