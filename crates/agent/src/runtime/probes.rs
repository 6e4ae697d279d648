//! Probes of the pod's containers (readiness, liveness, startup), wired to the worker.

use futures::future::BoxFuture;

use super::worker::Worker;

/// The probes of one container run.
pub struct Probes {}

impl Probes {
    /// (ready, started) as the probes say.
    pub fn ready_started(&self) -> (bool, bool) {
        (true, true)
    }
}

/// Start, restart or stop probes to match the containers' runs.
pub fn refresh(_w: &mut Worker) {}

/// Resolves when any probe result changes.
pub fn changes<'a>(_probes: impl Iterator<Item = &'a Probes>) -> BoxFuture<'static, ()> {
    Box::pin(std::future::pending())
}
