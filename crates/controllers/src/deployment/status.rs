//! Deployment status and conditions, as pure functions (upstream `calculateStatus`,
//! `syncRolloutStatus` and the condition helpers). `kubectl rollout status` finishes on
//! these numbers, and `kubectl describe deploy` prints the conditions verbatim.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::rollout::{deployment_replicas, max_unavailable, rs_replicas};

/// Reason of `Progressing` when a new ReplicaSet was created.
pub const NEW_RS_REASON: &str = "NewReplicaSetCreated";
/// Reason of `Progressing` when an existing ReplicaSet became the new one.
pub const FOUND_NEW_RS_REASON: &str = "FoundNewReplicaSet";
/// Reason of `Progressing` while pods are being replaced.
pub const RS_UPDATED_REASON: &str = "ReplicaSetUpdated";
/// Reason of `Progressing` once the rollout is complete.
pub const NEW_RS_AVAILABLE_REASON: &str = "NewReplicaSetAvailable";
/// Reason of `Progressing=False` after `progressDeadlineSeconds` without progress.
pub const TIMED_OUT_REASON: &str = "ProgressDeadlineExceeded";
/// Reason of `Progressing=Unknown` while paused.
pub const PAUSED_REASON: &str = "DeploymentPaused";
/// Reason of `Progressing=Unknown` after resuming.
pub const RESUMED_REASON: &str = "DeploymentResumed";

fn sum(rss: &[&ReplicaSet], f: impl Fn(&ReplicaSet) -> i32) -> i32 {
    rss.iter().map(|rs| f(rs)).sum()
}

fn st(rs: &ReplicaSet) -> k8s_openapi::api::apps::v1::ReplicaSetStatus {
    rs.status.clone().unwrap_or_default()
}

/// A condition stamped `now` for both update and transition times.
pub fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: jiff::Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// The condition of `type_`, if present.
pub fn get_condition<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

/// `SetDeploymentCondition`: unchanged if status and reason are the same; keeps the
/// transition time if only the reason changed; the changed condition moves to the end.
pub fn set_condition(status: &mut DeploymentStatus, mut cond: DeploymentCondition) {
    if let Some(cur) = get_condition(status, &cond.type_) {
        if cur.status == cond.status && cur.reason == cond.reason {
            return;
        }
        if cur.status == cond.status {
            cond.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove_condition(status, &cond.type_);
    status.conditions.get_or_insert_with(Vec::new).push(cond);
}

/// Drops the condition of `type_`.
pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(c) = status.conditions.as_mut() {
        c.retain(|c| c.type_ != type_);
    }
}

/// `calculateStatus`: counts from the ReplicaSets' status, and the `Available` condition.
pub fn calculate_status(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    now: jiff::Timestamp,
) -> DeploymentStatus {
    let available = sum(all, |rs| st(rs).available_replicas.unwrap_or(0));
    let total_spec = sum(all, rs_replicas);
    let old = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(sum(all, |rs| st(rs).replicas)),
        updated_replicas: Some(new_rs.map(|rs| st(rs).replicas).unwrap_or(0)),
        ready_replicas: Some(sum(all, |rs| st(rs).ready_replicas.unwrap_or(0))),
        available_replicas: Some(available),
        unavailable_replicas: Some((total_spec - available).max(0)),
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
        terminating_replicas: None,
    };
    if available >= deployment_replicas(d) - max_unavailable(d) {
        set_condition(
            &mut status,
            condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
                now,
            ),
        );
    } else {
        set_condition(
            &mut status,
            condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
                now,
            ),
        );
    }
    status
}

/// `DeploymentComplete`: every replica updated and available, and the spec observed.
pub fn deployment_complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let r = deployment_replicas(d);
    s.updated_replicas.unwrap_or(0) == r
        && s.replicas.unwrap_or(0) == r
        && s.available_replicas.unwrap_or(0) == r
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// `DeploymentProgressing`: more updated, ready or available pods, or fewer old ones.
fn deployment_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let old_old = old.replicas.unwrap_or(0) - old.updated_replicas.unwrap_or(0);
    let new_old = new.replicas.unwrap_or(0) - new.updated_replicas.unwrap_or(0);
    new.updated_replicas.unwrap_or(0) > old.updated_replicas.unwrap_or(0)
        || new_old < old_old
        || new.ready_replicas.unwrap_or(0) > old.ready_replicas.unwrap_or(0)
        || new.available_replicas.unwrap_or(0) > old.available_replicas.unwrap_or(0)
}

fn progress_deadline(d: &Deployment) -> Option<i32> {
    // Unset means the API default, 600s; validation keeps it positive.
    Some(d.spec.as_ref().and_then(|s| s.progress_deadline_seconds).unwrap_or(600))
}

/// `DeploymentTimedOut`: the last progress is older than `progressDeadlineSeconds`.
fn deployment_timed_out(d: &Deployment, s: &DeploymentStatus, now: jiff::Timestamp) -> bool {
    let Some(deadline) = progress_deadline(d) else {
        return false;
    };
    let Some(cond) = get_condition(s, "Progressing") else {
        return false;
    };
    if cond.reason.as_deref() == Some(NEW_RS_AVAILABLE_REASON) || cond.reason.as_deref() == Some(TIMED_OUT_REASON) {
        return false;
    }
    let Some(from) = cond.last_update_time.as_ref() else {
        return false;
    };
    from.0 + jiff::SignedDuration::from_secs(deadline.into()) < now
}

/// `syncRolloutStatus` without the write: the new status including the `Progressing`
/// condition with upstream's messages.
pub fn rollout_status(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    now: jiff::Timestamp,
) -> DeploymentStatus {
    let mut s = calculate_status(d, all, new_rs, now);
    let cur = d
        .status
        .as_ref()
        .and_then(|st| get_condition(st, "Progressing"))
        .cloned();
    let complete_before = s.replicas == s.updated_replicas
        && cur.as_ref().and_then(|c| c.reason.as_deref()) == Some(NEW_RS_AVAILABLE_REASON);
    if complete_before {
        return s;
    }
    let name = d.metadata.name.clone().unwrap_or_default();
    let subject = |what: &str| match new_rs.and_then(|rs| rs.metadata.name.as_deref()) {
        Some(rs) => format!("ReplicaSet \"{rs}\" {what}"),
        None => format!("Deployment \"{name}\" {what}"),
    };
    if deployment_complete(d, &s) {
        set_condition(
            &mut s,
            condition(
                "Progressing",
                "True",
                NEW_RS_AVAILABLE_REASON,
                subject("has successfully progressed."),
                now,
            ),
        );
    } else if deployment_progressing(d, &s) {
        let mut c = condition(
            "Progressing",
            "True",
            RS_UPDATED_REASON,
            subject("is progressing."),
            now,
        );
        if let Some(cur) = &cur {
            if cur.status == "True" {
                c.last_transition_time = cur.last_transition_time.clone();
            }
            remove_condition(&mut s, "Progressing");
        }
        set_condition(&mut s, c);
    } else if deployment_timed_out(d, &s, now) {
        set_condition(
            &mut s,
            condition(
                "Progressing",
                "False",
                TIMED_OUT_REASON,
                subject("has timed out progressing."),
                now,
            ),
        );
    }
    s
}

/// When to look again so a stuck rollout times out on time (`requeueStuckDeployment`).
pub fn requeue_stuck(d: &Deployment, s: &DeploymentStatus, now: jiff::Timestamp) -> Option<Duration> {
    let deadline = progress_deadline(d)?;
    let cond = get_condition(s, "Progressing")?;
    if deployment_complete(d, s) || cond.reason.as_deref() == Some(TIMED_OUT_REASON) {
        return None;
    }
    let from = cond.last_update_time.as_ref()?.0;
    let after = (from + jiff::SignedDuration::from_secs(deadline.into())).duration_since(now);
    Some(Duration::from_secs(after.as_secs().max(1) as u64))
}

/// Status equality the way the server round-trips it: zero counts and absent counts are
/// the same (they are `omitempty` upstream).
pub fn same_status(a: &DeploymentStatus, b: &DeploymentStatus) -> bool {
    fn norm(s: &DeploymentStatus) -> DeploymentStatus {
        let z = |v: Option<i32>| v.filter(|n| *n != 0);
        DeploymentStatus {
            replicas: z(s.replicas),
            updated_replicas: z(s.updated_replicas),
            ready_replicas: z(s.ready_replicas),
            available_replicas: z(s.available_replicas),
            unavailable_replicas: z(s.unavailable_replicas),
            collision_count: z(s.collision_count),
            terminating_replicas: None,
            conditions: s.conditions.clone().filter(|c| !c.is_empty()),
            observed_generation: s.observed_generation,
        }
    }
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, ReplicaSetSpec, ReplicaSetStatus};

    fn deploy(replicas: i32, generation: i64) -> Deployment {
        let mut d = Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                ..Default::default()
            }),
            ..Default::default()
        };
        d.metadata.name = Some("web".into());
        d.metadata.generation = Some(generation);
        d
    }

    fn rs(name: &str, replicas: i32, ready: i32) -> ReplicaSet {
        let mut r = ReplicaSet {
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                ..Default::default()
            }),
            status: Some(ReplicaSetStatus {
                replicas,
                ready_replicas: Some(ready),
                available_replicas: Some(ready),
                ..Default::default()
            }),
            ..Default::default()
        };
        r.metadata.name = Some(name.into());
        r
    }

    fn now() -> jiff::Timestamp {
        jiff::Timestamp::from_second(2_000_000).unwrap()
    }

    #[test]
    fn a_fully_available_rollout_is_complete_with_upstream_messages() {
        let d = deploy(3, 1);
        let new = rs("web-abc", 3, 3);
        let s = rollout_status(&d, &[&new], Some(&new), now());
        assert_eq!(s.updated_replicas, Some(3));
        assert_eq!(s.available_replicas, Some(3));
        assert_eq!(s.unavailable_replicas, Some(0));
        assert_eq!(s.observed_generation, Some(1));
        let avail = get_condition(&s, "Available").unwrap();
        assert_eq!(
            (avail.status.as_str(), avail.reason.as_deref()),
            ("True", Some("MinimumReplicasAvailable"))
        );
        assert_eq!(avail.message.as_deref(), Some("Deployment has minimum availability."));
        let prog = get_condition(&s, "Progressing").unwrap();
        assert_eq!(prog.reason.as_deref(), Some(NEW_RS_AVAILABLE_REASON));
        assert_eq!(
            prog.message.as_deref(),
            Some("ReplicaSet \"web-abc\" has successfully progressed.")
        );
    }

    #[test]
    fn a_rollout_in_flight_is_progressing_and_short_of_availability() {
        let mut d = deploy(3, 2);
        d.status = Some(DeploymentStatus {
            replicas: Some(3),
            updated_replicas: Some(0),
            ..Default::default()
        });
        let old = rs("web-old", 3, 3);
        let new = rs("web-new", 1, 0);
        let s = rollout_status(&d, &[&old, &new], Some(&new), now());
        assert_eq!(s.replicas, Some(4));
        assert_eq!(s.updated_replicas, Some(1));
        assert_eq!(s.unavailable_replicas, Some(1));
        let prog = get_condition(&s, "Progressing").unwrap();
        assert_eq!(prog.reason.as_deref(), Some(RS_UPDATED_REASON));
        assert_eq!(prog.message.as_deref(), Some("ReplicaSet \"web-new\" is progressing."));
        assert!(!deployment_complete(&d, &s));
    }

    #[test]
    fn too_few_available_pods_make_available_false() {
        let d = deploy(4, 1);
        let new = rs("web-new", 4, 1);
        let s = calculate_status(&d, &[&new], Some(&new), now());
        let avail = get_condition(&s, "Available").unwrap();
        assert_eq!(avail.reason.as_deref(), Some("MinimumReplicasUnavailable"));
        assert_eq!(
            avail.message.as_deref(),
            Some("Deployment does not have minimum availability.")
        );
    }

    #[test]
    fn no_progress_past_the_deadline_times_out() {
        let mut d = deploy(1, 1);
        d.spec.as_mut().unwrap().progress_deadline_seconds = Some(10);
        let mut st = DeploymentStatus {
            replicas: Some(1),
            updated_replicas: Some(1),
            observed_generation: Some(1),
            ..Default::default()
        };
        let earlier = now() - jiff::SignedDuration::from_secs(60);
        set_condition(
            &mut st,
            condition("Progressing", "True", RS_UPDATED_REASON, "x".into(), earlier),
        );
        d.status = Some(st);
        let new = rs("web-new", 1, 0);
        let s = rollout_status(&d, &[&new], Some(&new), now());
        let prog = get_condition(&s, "Progressing").unwrap();
        assert_eq!(
            (prog.status.as_str(), prog.reason.as_deref()),
            ("False", Some(TIMED_OUT_REASON))
        );
        assert_eq!(
            prog.message.as_deref(),
            Some("ReplicaSet \"web-new\" has timed out progressing.")
        );
    }

    #[test]
    fn setting_a_condition_with_the_same_reason_keeps_the_old_one() {
        let mut s = DeploymentStatus::default();
        let t0 = now();
        set_condition(&mut s, condition("Available", "True", "A", "m".into(), t0));
        set_condition(
            &mut s,
            condition(
                "Available",
                "True",
                "A",
                "m2".into(),
                t0 + jiff::SignedDuration::from_secs(5),
            ),
        );
        assert_eq!(get_condition(&s, "Available").unwrap().message.as_deref(), Some("m"));
        set_condition(
            &mut s,
            condition(
                "Available",
                "True",
                "B",
                "m3".into(),
                t0 + jiff::SignedDuration::from_secs(9),
            ),
        );
        let c = get_condition(&s, "Available").unwrap();
        assert_eq!(c.reason.as_deref(), Some("B"));
        assert_eq!(c.last_transition_time, Some(Time(t0)));
    }

    #[test]
    fn zero_and_absent_counts_compare_equal() {
        let a = DeploymentStatus {
            replicas: Some(0),
            ..Default::default()
        };
        assert!(same_status(&a, &DeploymentStatus::default()));
        let b = DeploymentStatus {
            replicas: Some(1),
            ..Default::default()
        };
        assert!(!same_status(&b, &DeploymentStatus::default()));
    }
}
