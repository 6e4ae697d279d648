//! Node health as pure functions (upstream `node_lifecycle_controller` and the taint
//! eviction controller): when a node counts as silent, what its conditions and taints
//! become, and when a pod on a node with `NoExecute` taints is due for deletion.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, PodCondition, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::scheduler::choose::tolerates;

/// Taint of a node whose agent stopped reporting.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// Taint of a node whose agent reports NotReady.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
/// Reason on conditions the controller sets to Unknown.
pub const NODE_STATUS_UNKNOWN: &str = "NodeStatusUnknown";
/// Message on Ready when the agent went silent.
pub const STOPPED_POSTING: &str = "Kubelet stopped posting node status.";

fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// The node's Ready status: "True", "False", "Unknown", or "" without a condition.
pub fn ready_status(node: &Node) -> &str {
    condition(node, "Ready").map(|c| c.status.as_str()).unwrap_or("")
}

/// The latest sign of life: Lease renewal or Ready heartbeat, or for a node that never
/// reported, its creation (so a new node gets the full grace period to start reporting).
pub fn last_heartbeat(node: &Node, lease: Option<&Lease>) -> jiff::Timestamp {
    let created = node
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let beat = condition(node, "Ready")
        .and_then(|c| c.last_heartbeat_time.as_ref())
        .map(|t| t.0);
    let renewed = lease
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.renew_time.as_ref())
        .map(|t| t.0);
    beat.into_iter().chain(renewed).max().unwrap_or(created)
}

/// Whether the node has been silent longer than `grace`.
pub fn is_silent(heartbeat: jiff::Timestamp, now: jiff::Timestamp, grace: Duration) -> bool {
    now.duration_since(heartbeat) > jiff::SignedDuration::try_from(grace).unwrap_or(jiff::SignedDuration::MAX)
}

/// The node's conditions after it went silent: Ready and the pressure conditions become
/// Unknown with reason `NodeStatusUnknown` (those never reported are added). `None` when
/// they already are.
pub fn unknown_conditions(node: &Node, now: jiff::Timestamp) -> Option<Vec<NodeCondition>> {
    let mut conds = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    // Which conditions the agent ever reported decides the message, as upstream words it.
    let mut changed = false;
    for type_ in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
        let message = if condition(node, type_).is_some() {
            STOPPED_POSTING.to_string()
        } else {
            "Kubelet never posted node status.".to_string()
        };
        match conds.iter_mut().find(|c| c.type_ == type_) {
            Some(c) if c.status == "Unknown" => {}
            Some(c) => {
                c.status = "Unknown".into();
                c.reason = Some(NODE_STATUS_UNKNOWN.into());
                c.message = Some(message);
                c.last_transition_time = Some(Time(now));
                changed = true;
            }
            None => {
                conds.push(NodeCondition {
                    type_: type_.into(),
                    status: "Unknown".into(),
                    reason: Some(NODE_STATUS_UNKNOWN.into()),
                    message: Some(message),
                    last_transition_time: Some(Time(now)),
                    last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                });
                changed = true;
            }
        }
    }
    changed.then_some(conds)
}

/// The node's taints for its Ready status: unreachable (Unknown) or not-ready (False)
/// with both NoSchedule and NoExecute, none when Ready; existing taints keep their
/// `timeAdded`, other taints are untouched. `None` when nothing changes.
pub fn desired_taints(node: &Node, now: jiff::Timestamp) -> Option<Vec<Taint>> {
    let current = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    let want_key = match ready_status(node) {
        "Unknown" => Some(UNREACHABLE),
        "False" => Some(NOT_READY),
        _ => None,
    };
    let mut out: Vec<Taint> = current
        .iter()
        .filter(|t| !((t.key == UNREACHABLE || t.key == NOT_READY) && Some(t.key.as_str()) != want_key))
        .cloned()
        .collect();
    if let Some(key) = want_key {
        for effect in ["NoSchedule", "NoExecute"] {
            if !out.iter().any(|t| t.key == key && t.effect == effect) {
                out.push(Taint {
                    key: key.into(),
                    effect: effect.into(),
                    time_added: (effect == "NoExecute").then_some(Time(now)),
                    value: None,
                });
            }
        }
    }
    (out != current).then_some(out)
}

/// The node's `NoExecute` taints: those that evict pods (the taint eviction controller acts
/// on these alone, whoever set them).
pub fn no_execute_taints(node: &Node) -> Vec<Taint> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|ts| ts.iter().filter(|t| t.effect == "NoExecute").cloned().collect())
        .unwrap_or_default()
}

/// When a pod on the node is due for deletion because of the node's `NoExecute` taints, as
/// upstream's taint eviction controller decides: each taint is matched by the pod's first
/// toleration of it; a taint no toleration matches evicts at once; otherwise the shortest
/// `tolerationSeconds` among the matching tolerations counts (zero or less: at once), and a
/// pod whose matching tolerations all lack `tolerationSeconds` stays forever (`None`).
///
/// Upstream starts the clock when it first sees the pod on the tainted node; here it starts
/// at the earliest `timeAdded` of the taints that are not tolerated forever (set by the node
/// lifecycle controller and by `kubectl taint`), or at `noticed` (when this controller first
/// saw the node's NoExecute taints) for a taint without one.
pub fn eviction_time(node: &Node, pod: &Pod, noticed: jiff::Timestamp) -> Option<jiff::Timestamp> {
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let mut start: Option<jiff::Timestamp> = None;
    let mut seconds: Option<i64> = None;
    for taint in no_execute_taints(node) {
        let since = taint.time_added.as_ref().map(|t| t.0).unwrap_or(noticed);
        match tolerations.iter().find(|t| tolerates(t, &taint)) {
            None => return Some(since),
            Some(t) => {
                if let Some(secs) = t.toleration_seconds {
                    seconds = Some(seconds.map_or(secs, |s| s.min(secs)).max(0));
                    start = Some(start.map_or(since, |s| s.min(since)));
                }
            }
        }
    }
    // An overflowing time is one that never comes.
    start?.checked_add(jiff::SignedDuration::from_secs(seconds?)).ok()
}

/// The pod condition upstream's taint eviction controller adds before it deletes a pod.
pub fn disruption_target(now: jiff::Timestamp) -> PodCondition {
    PodCondition {
        type_: "DisruptionTarget".into(),
        status: "True".into(),
        reason: Some("DeletionByTaintManager".into()),
        message: Some("Taint manager: deleting due to NoExecute taint".into()),
        last_transition_time: Some(Time(now)),
        ..Default::default()
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
