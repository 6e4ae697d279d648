//! The probe worker's state machine, free of clocks and sockets.
//!
//! It follows the kubelet's `worker.doProbe`: one call of [`WorkerState::before_probe`] per
//! wake-up says whether to probe (and what to publish first), one call of
//! [`WorkerState::after_probe`] per counted attempt says what to publish after.

use tokio::time::Instant;

use super::{ProbeKind, ProbeResult, ProbeSettings};

/// What the runtime knows about the probed container right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerView {
    /// Not created yet (or gone): nothing to probe, nothing to publish.
    NotCreated,
    /// Running since `started_at`.
    Running {
        /// Identifies this run of the container; it must change on every restart (the restart
        /// count does). The kubelet keys results by container ID for the same reason.
        instance: u64,
        /// When this run started; `initialDelaySeconds` counts from here.
        started_at: Instant,
    },
    /// This run exited (it may be restarted as a new instance).
    Exited {
        /// The run that exited.
        instance: u64,
    },
}

impl ContainerView {
    /// The instance this view is about, if any.
    pub fn instance(&self) -> Option<u64> {
        match self {
            ContainerView::NotCreated => None,
            ContainerView::Running { instance, .. } | ContainerView::Exited { instance } => Some(*instance),
        }
    }
}

/// What a wake-up decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Before {
    /// A result to publish for [`WorkerState::instance`] now (the kubelet's `resultsManager.Set`).
    pub set: Option<ProbeResult>,
    /// Whether to run the probe action now.
    pub probe: bool,
}

/// One worker's memory between wake-ups (the kubelet's `worker` fields).
#[derive(Debug, Clone)]
pub struct WorkerState {
    kind: ProbeKind,
    settings: ProbeSettings,
    instance: Option<u64>,
    last_result: Option<ProbeResult>,
    result_run: u32,
    on_hold: bool,
}

impl WorkerState {
    /// A worker that has seen no container yet.
    pub fn new(kind: ProbeKind, settings: ProbeSettings) -> WorkerState {
        WorkerState {
            kind,
            settings,
            instance: None,
            last_result: None,
            result_run: 0,
            on_hold: false,
        }
    }

    /// The container instance the worker's results are about.
    pub fn instance(&self) -> Option<u64> {
        self.instance
    }

    /// The worker's settings.
    pub fn settings(&self) -> &ProbeSettings {
        &self.settings
    }

    /// Decide at a wake-up at `now`, given the container and whether it has `started` (its
    /// startup probe succeeded, or it has none).
    ///
    /// A new instance resets the published result to the kind's initial one and lifts the hold
    /// a liveness or startup failure put on the worker; the run counters are deliberately kept,
    /// as the kubelet keeps them. A container that is not running is published as Failure.
    /// Readiness and liveness wait until the container started; startup stops once it has.
    pub fn before_probe(&mut self, view: &ContainerView, started: bool, now: Instant) -> Before {
        let Some(instance) = view.instance() else {
            return Before {
                set: None,
                probe: false,
            };
        };
        let mut set = None;
        if self.instance != Some(instance) {
            self.instance = Some(instance);
            self.on_hold = false;
            set = Some(self.kind.initial_result());
        }
        if self.on_hold {
            return Before { set, probe: false };
        }
        let ContainerView::Running { started_at, .. } = view else {
            return Before {
                set: Some(ProbeResult::Failure),
                probe: false,
            };
        };
        // The kubelet truncates the elapsed time to whole seconds before comparing.
        let elapsed = now.saturating_duration_since(*started_at).as_secs() as i64;
        if elapsed < self.settings.initial_delay_seconds {
            return Before { set, probe: false };
        }
        let probe = match self.kind {
            ProbeKind::Startup => !started,
            ProbeKind::Readiness | ProbeKind::Liveness => started,
        };
        Before { set, probe }
    }

    /// Count one attempt's verdict (`Success` or `Failure`; an errored attempt is not counted)
    /// and return the result to publish once a threshold is reached.
    ///
    /// After a liveness or startup Failure is published the worker holds until a new instance:
    /// the container is about to be killed, and probing it meanwhile only adds noise.
    pub fn after_probe(&mut self, result: ProbeResult) -> Option<ProbeResult> {
        if self.last_result == Some(result) {
            self.result_run = self.result_run.saturating_add(1);
        } else {
            self.last_result = Some(result);
            self.result_run = 1;
        }
        let below = match result {
            ProbeResult::Failure => self.result_run < self.settings.failure_threshold,
            ProbeResult::Success => self.result_run < self.settings.success_threshold,
            ProbeResult::Unknown => false,
        };
        if below {
            return None;
        }
        if result == ProbeResult::Failure && matches!(self.kind, ProbeKind::Liveness | ProbeKind::Startup) {
            self.on_hold = true;
            self.result_run = 0;
        }
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use k8s_openapi::api::core::v1::Probe;

    use super::*;

    fn settings(kind: ProbeKind, delay: i32, success: i32, failure: i32) -> ProbeSettings {
        let probe = Probe {
            initial_delay_seconds: Some(delay),
            success_threshold: Some(success),
            failure_threshold: Some(failure),
            ..Probe::default()
        };
        ProbeSettings::from_probe(kind, &probe)
    }

    fn running(instance: u64, started_at: Instant) -> ContainerView {
        ContainerView::Running { instance, started_at }
    }

    #[test]
    fn a_new_container_publishes_the_kinds_initial_result() {
        let t0 = Instant::now();
        for (kind, initial) in [
            (ProbeKind::Readiness, ProbeResult::Failure),
            (ProbeKind::Liveness, ProbeResult::Success),
            (ProbeKind::Startup, ProbeResult::Unknown),
        ] {
            let mut w = WorkerState::new(kind, settings(kind, 0, 1, 3));
            let started = kind != ProbeKind::Startup;
            assert_eq!(
                w.before_probe(&running(0, t0), started, t0),
                Before {
                    set: Some(initial),
                    probe: true
                }
            );
            // Seen before: nothing new to publish.
            assert_eq!(w.before_probe(&running(0, t0), started, t0).set, None);
        }
    }

    #[test]
    fn nothing_happens_before_the_container_exists() {
        let mut w = WorkerState::new(ProbeKind::Readiness, settings(ProbeKind::Readiness, 0, 1, 3));
        assert_eq!(
            w.before_probe(&ContainerView::NotCreated, true, Instant::now()),
            Before {
                set: None,
                probe: false
            }
        );
        assert_eq!(w.instance(), None);
    }

    #[test]
    fn initial_delay_counts_whole_seconds_since_the_container_started() {
        let t0 = Instant::now();
        let mut w = WorkerState::new(ProbeKind::Liveness, settings(ProbeKind::Liveness, 5, 1, 3));
        assert!(!w.before_probe(&running(0, t0), true, t0).probe);
        assert!(
            !w.before_probe(&running(0, t0), true, t0 + Duration::from_millis(4999))
                .probe
        );
        assert!(w.before_probe(&running(0, t0), true, t0 + Duration::from_secs(5)).probe);
    }

    #[test]
    fn readiness_and_liveness_wait_for_startup_and_startup_stops_after_it() {
        let t0 = Instant::now();
        let view = running(0, t0);
        let mut readiness = WorkerState::new(ProbeKind::Readiness, settings(ProbeKind::Readiness, 0, 1, 3));
        let mut liveness = WorkerState::new(ProbeKind::Liveness, settings(ProbeKind::Liveness, 0, 1, 3));
        let mut startup = WorkerState::new(ProbeKind::Startup, settings(ProbeKind::Startup, 0, 1, 3));
        assert!(!readiness.before_probe(&view, false, t0).probe);
        assert!(!liveness.before_probe(&view, false, t0).probe);
        assert!(startup.before_probe(&view, false, t0).probe);
        assert!(readiness.before_probe(&view, true, t0).probe);
        assert!(liveness.before_probe(&view, true, t0).probe);
        assert!(!startup.before_probe(&view, true, t0).probe);
    }

    #[test]
    fn failure_is_published_only_after_failure_threshold_in_a_row() {
        let mut w = WorkerState::new(ProbeKind::Readiness, settings(ProbeKind::Readiness, 0, 1, 3));
        assert_eq!(w.after_probe(ProbeResult::Failure), None);
        assert_eq!(w.after_probe(ProbeResult::Failure), None);
        // A success in between restarts the count.
        assert_eq!(w.after_probe(ProbeResult::Success), Some(ProbeResult::Success));
        assert_eq!(w.after_probe(ProbeResult::Failure), None);
        assert_eq!(w.after_probe(ProbeResult::Failure), None);
        assert_eq!(w.after_probe(ProbeResult::Failure), Some(ProbeResult::Failure));
        // Readiness keeps probing and keeps publishing Failure.
        assert_eq!(w.after_probe(ProbeResult::Failure), Some(ProbeResult::Failure));
    }

    #[test]
    fn readiness_success_needs_success_threshold_in_a_row() {
        let mut w = WorkerState::new(ProbeKind::Readiness, settings(ProbeKind::Readiness, 0, 2, 3));
        assert_eq!(w.after_probe(ProbeResult::Success), None);
        assert_eq!(w.after_probe(ProbeResult::Success), Some(ProbeResult::Success));
    }

    #[test]
    fn liveness_failure_holds_the_worker_until_a_new_instance() {
        let t0 = Instant::now();
        let mut w = WorkerState::new(ProbeKind::Liveness, settings(ProbeKind::Liveness, 0, 1, 1));
        assert!(w.before_probe(&running(0, t0), true, t0).probe);
        assert_eq!(w.after_probe(ProbeResult::Failure), Some(ProbeResult::Failure));
        assert_eq!(
            w.before_probe(&running(0, t0), true, t0),
            Before {
                set: None,
                probe: false
            }
        );
        // The runtime restarted the container: back to the initial Success, probing again.
        assert_eq!(
            w.before_probe(&running(1, t0), true, t0),
            Before {
                set: Some(ProbeResult::Success),
                probe: true
            }
        );
        assert_eq!(w.instance(), Some(1));
    }

    #[test]
    fn the_hold_resets_the_failure_count_so_a_restarted_container_gets_the_full_threshold() {
        let t0 = Instant::now();
        let mut w = WorkerState::new(ProbeKind::Startup, settings(ProbeKind::Startup, 0, 1, 2));
        w.before_probe(&running(0, t0), false, t0);
        assert_eq!(w.after_probe(ProbeResult::Failure), None);
        assert_eq!(w.after_probe(ProbeResult::Failure), Some(ProbeResult::Failure));
        w.before_probe(&running(1, t0), false, t0);
        assert_eq!(w.after_probe(ProbeResult::Failure), None);
        assert_eq!(w.after_probe(ProbeResult::Failure), Some(ProbeResult::Failure));
    }

    #[test]
    fn an_exited_container_is_published_as_failure_and_not_probed() {
        let t0 = Instant::now();
        let mut w = WorkerState::new(ProbeKind::Readiness, settings(ProbeKind::Readiness, 0, 1, 3));
        w.before_probe(&running(0, t0), true, t0);
        assert_eq!(w.after_probe(ProbeResult::Success), Some(ProbeResult::Success));
        let exited = ContainerView::Exited { instance: 0 };
        assert_eq!(
            w.before_probe(&exited, true, t0),
            Before {
                set: Some(ProbeResult::Failure),
                probe: false
            }
        );
    }

    #[test]
    fn run_counts_survive_a_new_instance_as_in_the_kubelet() {
        // The kubelet resets lastResult/resultRun only when it puts a worker on hold, so a
        // readiness streak carries over a restart.
        let t0 = Instant::now();
        let mut w = WorkerState::new(ProbeKind::Readiness, settings(ProbeKind::Readiness, 0, 2, 3));
        w.before_probe(&running(0, t0), true, t0);
        w.after_probe(ProbeResult::Success);
        assert_eq!(w.after_probe(ProbeResult::Success), Some(ProbeResult::Success));
        assert_eq!(
            w.before_probe(&running(1, t0), true, t0).set,
            Some(ProbeResult::Failure)
        );
        assert_eq!(w.after_probe(ProbeResult::Success), Some(ProbeResult::Success));
    }
}
