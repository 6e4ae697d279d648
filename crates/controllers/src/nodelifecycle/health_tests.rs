use super::*;
use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus, PodSpec, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

fn t(secs: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_000_000 + secs).unwrap()
}

fn node(ready: &str, heartbeat: i64) -> Node {
    let mut n = Node {
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: ready.into(),
                reason: Some("KubeletReady".into()),
                last_heartbeat_time: Some(Time(t(heartbeat))),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    n.metadata.creation_timestamp = Some(Time(t(0)));
    n
}

#[test]
fn the_newest_of_lease_and_heartbeat_counts() {
    let n = node("True", 10);
    let lease = Lease {
        spec: Some(LeaseSpec {
            renew_time: Some(MicroTime(t(30))),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(last_heartbeat(&n, Some(&lease)), t(30));
    assert_eq!(last_heartbeat(&n, None), t(10));
    let mut silent_since_birth = n.clone();
    silent_since_birth.status = None;
    assert_eq!(last_heartbeat(&silent_since_birth, None), t(0));
    assert!(is_silent(t(10), t(51), Duration::from_secs(40)));
    assert!(!is_silent(t(10), t(50), Duration::from_secs(40)));
}

#[test]
fn a_silent_node_goes_unknown_with_upstream_reason_and_message() {
    let n = node("True", 0);
    let conds = unknown_conditions(&n, t(100)).unwrap();
    let ready = conds.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_deref()),
        ("Unknown", Some(NODE_STATUS_UNKNOWN))
    );
    assert_eq!(ready.message.as_deref(), Some(STOPPED_POSTING));
    assert_eq!(ready.last_transition_time, Some(Time(t(100))));
    assert!(conds
        .iter()
        .any(|c| c.type_ == "MemoryPressure" && c.status == "Unknown"));
    let mut already = n.clone();
    already.status.as_mut().unwrap().conditions = Some(conds);
    assert!(unknown_conditions(&already, t(200)).is_none());
}

#[test]
fn an_unknown_node_is_tainted_unreachable_and_a_ready_one_untainted() {
    let n = node("Unknown", 0);
    let taints = desired_taints(&n, t(5)).unwrap();
    let keys: Vec<_> = taints.iter().map(|t| (t.key.as_str(), t.effect.as_str())).collect();
    assert_eq!(keys, vec![(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")]);
    let mut healed = node("True", 10);
    healed.spec.as_mut().unwrap().taints = Some(taints);
    assert_eq!(desired_taints(&healed, t(20)), Some(vec![]));
    assert_eq!(desired_taints(&node("True", 10), t(20)), None);
}

fn toleration(key: &str, effect: &str, seconds: Option<i64>) -> Toleration {
    Toleration {
        key: (!key.is_empty()).then(|| key.to_string()),
        operator: Some("Exists".into()),
        effect: (!effect.is_empty()).then(|| effect.to_string()),
        toleration_seconds: seconds,
        ..Default::default()
    }
}

fn pod_tolerating(tolerations: Vec<Toleration>) -> Pod {
    Pod {
        spec: Some(PodSpec {
            tolerations: Some(tolerations),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A silent node tainted unreachable at `t(100)`.
fn unreachable_node() -> Node {
    let mut n = node("Unknown", 0);
    n.spec.as_mut().unwrap().taints = desired_taints(&n, t(100));
    n
}

#[test]
fn pods_are_evicted_when_their_toleration_of_the_taint_runs_out() {
    let n = unreachable_node();
    // What DefaultTolerationSeconds admission gives every pod: 300s.
    let defaults = pod_tolerating(vec![
        toleration(NOT_READY, "NoExecute", Some(300)),
        toleration(UNREACHABLE, "NoExecute", Some(300)),
    ]);
    assert_eq!(eviction_time(&n, &defaults, t(500)), Some(t(400)));
    let short = pod_tolerating(vec![toleration(UNREACHABLE, "NoExecute", Some(2))]);
    assert_eq!(eviction_time(&n, &short, t(500)), Some(t(102)));
    let negative = pod_tolerating(vec![toleration(UNREACHABLE, "NoExecute", Some(-5))]);
    assert_eq!(
        eviction_time(&n, &negative, t(500)),
        Some(t(100)),
        "zero or less: at once"
    );
}

#[test]
fn a_pod_that_does_not_tolerate_a_no_execute_taint_is_evicted_at_once() {
    let n = unreachable_node();
    let none = pod_tolerating(vec![]);
    assert_eq!(eviction_time(&n, &none, t(500)), Some(t(100)));
    // Tolerating the other lifecycle taint, or only NoSchedule, is not tolerating this one.
    let other = pod_tolerating(vec![
        toleration(NOT_READY, "NoExecute", None),
        toleration(UNREACHABLE, "NoSchedule", None),
    ]);
    assert_eq!(eviction_time(&n, &other, t(500)), Some(t(100)));
}

#[test]
fn a_pod_whose_first_matching_toleration_has_no_seconds_stays_forever() {
    let n = unreachable_node();
    let forever = pod_tolerating(vec![
        toleration("", "", None),
        toleration(UNREACHABLE, "NoExecute", Some(300)),
    ]);
    assert_eq!(eviction_time(&n, &forever, t(500)), None);
    // The first toleration that matches decides, as upstream's GetMatchingTolerations.
    let bounded_first = pod_tolerating(vec![
        toleration(UNREACHABLE, "NoExecute", Some(30)),
        toleration("", "", None),
    ]);
    assert_eq!(eviction_time(&n, &bounded_first, t(500)), Some(t(130)));
}

#[test]
fn any_no_execute_taint_evicts_not_only_the_lifecycle_ones() {
    // A Ready node a user tainted with `kubectl taint nodes n dedicated=db:NoExecute`.
    let mut n = node("True", 0);
    n.spec.as_mut().unwrap().taints = Some(vec![
        Taint {
            key: "dedicated".into(),
            value: Some("db".into()),
            effect: "NoExecute".into(),
            time_added: Some(Time(t(50))),
        },
        Taint {
            key: "soft".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        },
    ]);
    assert_eq!(no_execute_taints(&n).len(), 1);
    assert_eq!(eviction_time(&n, &pod_tolerating(vec![]), t(500)), Some(t(50)));
    let tolerant = pod_tolerating(vec![Toleration {
        key: Some("dedicated".into()),
        operator: Some("Equal".into()),
        value: Some("db".into()),
        effect: Some("NoExecute".into()),
        toleration_seconds: Some(60),
    }]);
    assert_eq!(eviction_time(&n, &tolerant, t(500)), Some(t(110)));
    // Without timeAdded the clock starts when the controller noticed the taint.
    n.spec.as_mut().unwrap().taints.as_mut().unwrap()[0].time_added = None;
    assert_eq!(eviction_time(&n, &tolerant, t(500)), Some(t(560)));
    // An untainted node evicts nothing.
    assert_eq!(eviction_time(&node("True", 0), &pod_tolerating(vec![]), t(500)), None);
}

#[test]
fn the_shortest_toleration_across_taints_counts() {
    let mut n = unreachable_node();
    n.spec.as_mut().unwrap().taints.as_mut().unwrap().push(Taint {
        key: "maintenance".into(),
        effect: "NoExecute".into(),
        time_added: Some(Time(t(120))),
        value: None,
    });
    let p = pod_tolerating(vec![
        toleration(UNREACHABLE, "NoExecute", Some(300)),
        toleration("maintenance", "NoExecute", Some(10)),
    ]);
    assert_eq!(eviction_time(&n, &p, t(500)), Some(t(110)));
    // A taint tolerated forever does not start the clock.
    let p = pod_tolerating(vec![
        toleration(UNREACHABLE, "NoExecute", None),
        toleration("maintenance", "NoExecute", Some(10)),
    ]);
    assert_eq!(eviction_time(&n, &p, t(500)), Some(t(130)));
}

#[test]
fn an_evicted_pod_is_marked_as_a_disruption_target_in_upstreams_words() {
    let c = disruption_target(t(7));
    assert_eq!((c.type_.as_str(), c.status.as_str()), ("DisruptionTarget", "True"));
    assert_eq!(c.reason.as_deref(), Some("DeletionByTaintManager"));
    assert_eq!(
        c.message.as_deref(),
        Some("Taint manager: deleting due to NoExecute taint")
    );
    assert_eq!(c.last_transition_time, Some(Time(t(7))));
}
