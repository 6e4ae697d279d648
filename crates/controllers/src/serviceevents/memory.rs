//! Which findings have been told already, so each condition gets one Event per occurrence
//! rather than one per reconcile (pure: the caller passes the time).
//!
//! The recorder would fold repeats into one Event with a rising `count`, but a Service is
//! reconciled on every change of any pod in its namespace, so the count would measure pod
//! churn, not the problem. Here a condition is told once when it has lasted [`GRACE`]; when it
//! clears and comes back, that is a new occurrence and is told again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::findings::Finding;

/// How long a condition must last before it is told. Applying a Service and its Deployment
/// together creates the Service first, and a Recreate rollout briefly has no pods: neither
/// is a problem, and a few seconds is below anyone's `kubectl describe` latency.
pub const GRACE: Duration = Duration::from_secs(3);

#[derive(Debug)]
struct Seen {
    since: Instant,
    told: bool,
}

/// Per Service uid, the conditions currently holding.
#[derive(Debug, Default)]
pub struct Memory {
    services: HashMap<String, HashMap<Finding, Seen>>,
}

/// What to do after observing a Service.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Findings to record now.
    pub tell: Vec<Finding>,
    /// When to look again because a finding has not lasted [`GRACE`] yet.
    pub recheck_after: Option<Duration>,
}

impl Memory {
    /// Records that Service `uid` has exactly `findings` at `now`.
    pub fn observe(&mut self, uid: &str, findings: Vec<Finding>, now: Instant) -> Verdict {
        let old = self.services.remove(uid).unwrap_or_default();
        let mut current: HashMap<Finding, Seen> = HashMap::new();
        let mut verdict = Verdict::default();
        for f in findings {
            let mut seen = match old.get(&f) {
                Some(s) => Seen {
                    since: s.since,
                    told: s.told,
                },
                None => Seen {
                    since: now,
                    told: false,
                },
            };
            if !seen.told {
                let age = now.saturating_duration_since(seen.since);
                if age >= GRACE {
                    seen.told = true;
                    verdict.tell.push(f.clone());
                } else {
                    let left = GRACE - age;
                    verdict.recheck_after = Some(verdict.recheck_after.map_or(left, |d| d.min(left)));
                }
            }
            current.insert(f, seen);
        }
        if !current.is_empty() {
            self.services.insert(uid.to_string(), current);
        }
        verdict
    }

    /// Forgets a deleted Service.
    pub fn forget(&mut self, uid: &str) {
        self.services.remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventType;

    fn finding(msg: &str) -> Finding {
        Finding {
            type_: EventType::Warning,
            reason: "NoMatchingPods",
            message: msg.into(),
        }
    }

    #[test]
    fn a_new_condition_waits_out_the_grace_then_is_told_once() {
        let mut m = Memory::default();
        let t0 = Instant::now();
        let v = m.observe("u", vec![finding("a")], t0);
        assert!(v.tell.is_empty());
        assert_eq!(v.recheck_after, Some(GRACE));
        let v = m.observe("u", vec![finding("a")], t0 + GRACE);
        assert_eq!(v.tell, vec![finding("a")]);
        assert_eq!(v.recheck_after, None);
        for i in 1..10 {
            assert_eq!(
                m.observe("u", vec![finding("a")], t0 + GRACE * (i + 1)),
                Verdict::default()
            );
        }
    }

    #[test]
    fn a_condition_that_clears_within_the_grace_is_never_told() {
        let mut m = Memory::default();
        let t0 = Instant::now();
        m.observe("u", vec![finding("a")], t0);
        assert_eq!(m.observe("u", vec![], t0 + GRACE / 2), Verdict::default());
        let v = m.observe("u", vec![finding("a")], t0 + GRACE);
        assert!(v.tell.is_empty(), "the grace restarts with the new occurrence");
    }

    #[test]
    fn a_condition_that_returns_after_clearing_is_told_again() {
        let mut m = Memory::default();
        let t0 = Instant::now();
        m.observe("u", vec![finding("a")], t0);
        assert_eq!(m.observe("u", vec![finding("a")], t0 + GRACE).tell.len(), 1);
        m.observe("u", vec![], t0 + GRACE * 2);
        m.observe("u", vec![finding("a")], t0 + GRACE * 3);
        assert_eq!(m.observe("u", vec![finding("a")], t0 + GRACE * 4).tell.len(), 1);
    }

    #[test]
    fn a_changed_message_is_a_new_condition_and_services_are_kept_apart() {
        let mut m = Memory::default();
        let t0 = Instant::now();
        m.observe("u", vec![finding("a")], t0);
        m.observe("v", vec![finding("a")], t0);
        assert_eq!(m.observe("u", vec![finding("a")], t0 + GRACE).tell.len(), 1);
        let v = m.observe("u", vec![finding("b")], t0 + GRACE);
        assert!(v.tell.is_empty());
        assert_eq!(m.observe("v", vec![finding("a")], t0 + GRACE).tell.len(), 1);
    }
}
