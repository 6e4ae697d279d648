//! Node health as pure functions (upstream `node_lifecycle_controller` and its taint-based
//! eviction): when a node counts as silent, what its conditions and taints become, and
//! when a pod on it is due for eviction.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint};
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

/// When a pod on the node must be evicted because of the node's NoExecute taints: at once
/// if it does not tolerate one, after `tolerationSeconds` from the taint's `timeAdded` if
/// it tolerates it for a while, never if it tolerates it forever. Pods without a matching
/// toleration get `default_timeout` (what upstream's DefaultTolerationSeconds admission adds,
/// 300s).
pub fn eviction_time(node: &Node, pod: &Pod, default_timeout: Duration) -> Option<jiff::Timestamp> {
    let taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let mut due: Option<jiff::Timestamp> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let added = taint
            .time_added
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let matching: Vec<_> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        let after = if matching.is_empty() {
            if taint.key == UNREACHABLE || taint.key == NOT_READY {
                Some(default_timeout.as_secs() as i64)
            } else {
                Some(0)
            }
        } else if matching.iter().any(|t| t.toleration_seconds.is_none()) {
            None
        } else {
            matching
                .iter()
                .filter_map(|t| t.toleration_seconds)
                .min()
                .map(|s| s.max(0))
        };
        if let Some(secs) = after {
            let at = added + jiff::SignedDuration::from_secs(secs);
            due = Some(due.map_or(at, |d| d.min(at)));
        }
    }
    due
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
