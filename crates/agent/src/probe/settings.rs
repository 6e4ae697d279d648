//! A probe's timing fields with the API defaults applied.

use std::time::Duration;

use k8s_openapi::api::core::v1::Probe;

use super::ProbeKind;

/// `periodSeconds` when unset: 10 (the API's `SetDefaults_Probe`).
pub const DEFAULT_PERIOD_SECONDS: i32 = 10;
/// `timeoutSeconds` when unset: 1.
pub const DEFAULT_TIMEOUT_SECONDS: i32 = 1;
/// `successThreshold` when unset: 1.
pub const DEFAULT_SUCCESS_THRESHOLD: i32 = 1;
/// `failureThreshold` when unset: 3.
pub const DEFAULT_FAILURE_THRESHOLD: i32 = 3;

/// The timing of one probe, defaulted.
///
/// The API server normally stores the defaults already; applying them again here keeps a probe
/// written without them (or with a zero, which validation rejects upstream) from spinning with a
/// zero period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSettings {
    /// `initialDelaySeconds`: whole seconds after the container started before the first probe.
    /// Kept in seconds because the kubelet compares truncated whole seconds.
    pub initial_delay_seconds: i64,
    /// `periodSeconds`: how often the worker wakes.
    pub period: Duration,
    /// `timeoutSeconds`: how long one attempt may take.
    pub timeout: Duration,
    /// `successThreshold`: successes in a row before the result becomes Success. Always 1 for
    /// liveness and startup probes (API validation demands it; the kubelet relies on it).
    pub success_threshold: u32,
    /// `failureThreshold`: failures in a row before the result becomes Failure.
    pub failure_threshold: u32,
    /// `terminationGracePeriodSeconds` of the probe: the grace period to use when this probe's
    /// failure kills the container (liveness and startup only), instead of the pod's.
    pub termination_grace_period_seconds: Option<i64>,
}

impl ProbeSettings {
    /// The settings of `probe` used as a `kind` probe.
    pub fn from_probe(kind: ProbeKind, probe: &Probe) -> ProbeSettings {
        let positive = |value: Option<i32>, default: i32| value.filter(|v| *v > 0).unwrap_or(default);
        let success_threshold = match kind {
            ProbeKind::Readiness => positive(probe.success_threshold, DEFAULT_SUCCESS_THRESHOLD),
            ProbeKind::Liveness | ProbeKind::Startup => 1,
        };
        ProbeSettings {
            initial_delay_seconds: i64::from(probe.initial_delay_seconds.unwrap_or(0).max(0)),
            period: secs(positive(probe.period_seconds, DEFAULT_PERIOD_SECONDS)),
            timeout: secs(positive(probe.timeout_seconds, DEFAULT_TIMEOUT_SECONDS)),
            success_threshold: success_threshold as u32,
            failure_threshold: positive(probe.failure_threshold, DEFAULT_FAILURE_THRESHOLD) as u32,
            termination_grace_period_seconds: match kind {
                ProbeKind::Readiness => None,
                ProbeKind::Liveness | ProbeKind::Startup => probe.termination_grace_period_seconds,
            },
        }
    }
}

fn secs(seconds: i32) -> Duration {
    Duration::from_secs(seconds as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_probe_gets_the_api_defaults() {
        let s = ProbeSettings::from_probe(ProbeKind::Readiness, &Probe::default());
        assert_eq!(s.initial_delay_seconds, 0);
        assert_eq!(s.period, Duration::from_secs(10));
        assert_eq!(s.timeout, Duration::from_secs(1));
        assert_eq!(s.success_threshold, 1);
        assert_eq!(s.failure_threshold, 3);
    }

    #[test]
    fn given_fields_are_kept() {
        let probe = Probe {
            initial_delay_seconds: Some(5),
            period_seconds: Some(2),
            timeout_seconds: Some(3),
            success_threshold: Some(4),
            failure_threshold: Some(6),
            ..Probe::default()
        };
        let s = ProbeSettings::from_probe(ProbeKind::Readiness, &probe);
        assert_eq!(
            (
                s.initial_delay_seconds,
                s.period,
                s.timeout,
                s.success_threshold,
                s.failure_threshold
            ),
            (5, Duration::from_secs(2), Duration::from_secs(3), 4, 6)
        );
    }

    #[test]
    fn liveness_and_startup_success_threshold_is_always_one() {
        let probe = Probe {
            success_threshold: Some(3),
            termination_grace_period_seconds: Some(7),
            ..Probe::default()
        };
        for kind in [ProbeKind::Liveness, ProbeKind::Startup] {
            let s = ProbeSettings::from_probe(kind, &probe);
            assert_eq!(s.success_threshold, 1, "{kind}");
            assert_eq!(s.termination_grace_period_seconds, Some(7), "{kind}");
        }
        assert_eq!(
            ProbeSettings::from_probe(ProbeKind::Readiness, &probe).termination_grace_period_seconds,
            None
        );
    }

    #[test]
    fn zero_or_negative_period_falls_back_to_the_default_instead_of_spinning() {
        let probe = Probe {
            period_seconds: Some(0),
            timeout_seconds: Some(-1),
            ..Probe::default()
        };
        let s = ProbeSettings::from_probe(ProbeKind::Liveness, &probe);
        assert_eq!((s.period, s.timeout), (Duration::from_secs(10), Duration::from_secs(1)));
    }
}
