use super::*;
use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus, PodSpec, Toleration};
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

#[test]
fn pods_are_evicted_after_their_toleration_or_the_default_timeout() {
    let mut n = node("Unknown", 0);
    n.spec.as_mut().unwrap().taints = desired_taints(&n, t(100));
    let plain = Pod {
        spec: Some(PodSpec::default()),
        ..Default::default()
    };
    assert_eq!(eviction_time(&n, &plain, Duration::from_secs(300)), Some(t(400)));
    let mut short = plain.clone();
    short.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
        key: Some(UNREACHABLE.into()),
        operator: Some("Exists".into()),
        effect: Some("NoExecute".into()),
        toleration_seconds: Some(30),
        ..Default::default()
    }]);
    assert_eq!(eviction_time(&n, &short, Duration::from_secs(300)), Some(t(130)));
    let mut forever = plain.clone();
    forever.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
        operator: Some("Exists".into()),
        ..Default::default()
    }]);
    assert_eq!(eviction_time(&n, &forever, Duration::from_secs(300)), None);
}
