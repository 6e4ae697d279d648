//! Readiness, liveness and startup probes, run the way the kubelet runs them.
//!
//! The kubelet keeps one worker per container and probe kind (`pkg/kubelet/prober/worker.go`).
//! Each worker wakes every `periodSeconds` (and when the pod syncs, for readiness), skips the
//! container until `initialDelaySeconds` have passed since it started, runs the probe action and
//! only changes the published result once `successThreshold` successes or `failureThreshold`
//! failures came in a row. This module does the same:
//!
//! - [`settings`]: a [`Probe`] with the API defaults applied ([`ProbeSettings`]).
//! - [`state`]: the worker's pure state machine: initial results, hold after a liveness or
//!   startup failure, reset on a new container instance, the startup gate, result counting.
//! - [`action`]: one probe attempt: `httpGet` ([`http`]), `tcpSocket`, `exec` (through the
//!   runtime's [`ProbeExec`]) with the kubelet's retries and its messages.
//! - [`worker`]: [`ContainerProbes`], the tasks that probe one container and publish its
//!   `started` and `ready` state, the restart verdict and the `Unhealthy` events.
//!
//! The caller (the container runtime) owns the container's lifecycle: it reports each start and
//! exit to [`ContainerProbes`], restarts the container when [`ContainerProbeStatus::restart`]
//! says so, copies `started`/`ready` into the container status (and so the pod's Ready
//! condition and the EndpointSlices) and records each [`ProbeEvent`] as a Kubernetes Event.
//!
//! [`Probe`]: k8s_openapi::api::core::v1::Probe

pub mod action;
mod expand;
pub mod http;
pub mod settings;
pub mod state;
pub mod worker;

pub use action::{Attempt, ExecError, ExecOutput, ExecRequest, ProbeExec, ProbeTarget};
pub use settings::ProbeSettings;
pub use state::ContainerView;
pub use worker::{ContainerProbeStatus, ContainerProbes, ProbeEvent, ProbeUpdate};

/// The three probe kinds of a container, named as the kubelet names them in its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// `readinessProbe`: whether the container takes traffic (its `ready` status).
    Readiness,
    /// `livenessProbe`: whether the container must be killed and restarted.
    Liveness,
    /// `startupProbe`: whether the container has started; holds back the other two until then.
    Startup,
}

impl ProbeKind {
    /// All kinds, in a fixed order (the index order of [`ProbeKind::index`]).
    pub const ALL: [ProbeKind; 3] = [ProbeKind::Readiness, ProbeKind::Liveness, ProbeKind::Startup];

    /// The kubelet's name, which starts its event messages: `Readiness probe failed: ...`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Startup => "Startup",
        }
    }

    /// The result a worker publishes for a new container before its first verdict: readiness
    /// starts failed (not ready), liveness succeeded (not killed), startup unknown (not
    /// started), as in the kubelet's `newWorker`.
    pub fn initial_result(self) -> ProbeResult {
        match self {
            ProbeKind::Readiness => ProbeResult::Failure,
            ProbeKind::Liveness => ProbeResult::Success,
            ProbeKind::Startup => ProbeResult::Unknown,
        }
    }

    /// A stable index 0..3, for per-kind arrays.
    pub fn index(self) -> usize {
        match self {
            ProbeKind::Readiness => 0,
            ProbeKind::Liveness => 1,
            ProbeKind::Startup => 2,
        }
    }

    /// The probe of this kind in a container spec, if any.
    pub fn probe_of(
        self,
        container: &k8s_openapi::api::core::v1::Container,
    ) -> Option<&k8s_openapi::api::core::v1::Probe> {
        match self {
            ProbeKind::Readiness => container.readiness_probe.as_ref(),
            ProbeKind::Liveness => container.liveness_probe.as_ref(),
            ProbeKind::Startup => container.startup_probe.as_ref(),
        }
    }
}

impl std::fmt::Display for ProbeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A published probe result (the kubelet's `results.Result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeResult {
    /// No verdict yet (only a startup probe starts here).
    Unknown,
    /// The probe passed `successThreshold` times in a row.
    Success,
    /// The probe failed `failureThreshold` times in a row (or the container is not running).
    Failure,
}

/// The message of the `Killing` event when a liveness or startup probe failed, as the kubelet
/// words it (`computePodActions`: "Container %s failed %s probe", plus ", will be restarted"
/// when the restart policy restarts it).
pub fn kill_message(container: &str, kind: ProbeKind, will_restart: bool) -> String {
    let kind = match kind {
        ProbeKind::Readiness => "readiness",
        ProbeKind::Liveness => "liveness",
        ProbeKind::Startup => "startup",
    };
    let restart = if will_restart { ", will be restarted" } else { "" };
    format!("Container {container} failed {kind} probe{restart}")
}
