//! `kubectl get pods`: READY, STATUS, RESTARTS, AGE and the wide IP, NODE, NOMINATED NODE,
//! READINESS GATES (`printPod`).

use std::collections::HashSet;

use jiff::Timestamp;
use serde_json::Value;

use super::fields::{age, age_col, arr_at, bool_at, col, int_at, name, name_col, obj_at, since, str_at, time_at};
use super::ColumnDefinition;

pub(super) fn columns() -> Vec<ColumnDefinition> {
    vec![
        name_col(),
        col(
            "Ready",
            "string",
            "The aggregate readiness state of this pod for accepting traffic.",
        ),
        col(
            "Status",
            "string",
            "The aggregate status of the containers in this pod.",
        ),
        col(
            "Restarts",
            "string",
            "The number of times the containers in this pod have been restarted and when the last container \
             in this pod has restarted.",
        ),
        age_col(),
        col("IP", "string", "IP address allocated to the pod.").wide(),
        col("Node", "string", "The node the pod is scheduled onto.").wide(),
        col(
            "Nominated Node",
            "string",
            "The node a preempting pod is nominated to run on.",
        )
        .wide(),
        col(
            "Readiness Gates",
            "string",
            "Pod readiness gates that are true, of all gates.",
        )
        .wide(),
    ]
}

/// Restart bookkeeping: the count and the latest `lastState.terminated.finishedAt`.
#[derive(Default, Clone, Copy)]
struct Restarts {
    count: i64,
    last: Option<Timestamp>,
}

impl Restarts {
    fn add(&mut self, status: &Value) {
        self.count += int_at(status, "/restartCount");
        // Go compares against a zero time, so a terminated state without finishedAt adds nothing.
        if let Some(finished) = time_at(status, "/lastState/terminated/finishedAt") {
            if self.last.is_none_or(|last| last < finished) {
                self.last = Some(finished);
            }
        }
    }
}

pub(super) fn cells(pod: &Value, now: Timestamp) -> Vec<Value> {
    let conditions = arr_at(pod, "/status/conditions");
    let phase = str_at(pod, "/status/phase");
    let mut reason = match str_at(pod, "/status/reason") {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    if conditions
        .iter()
        .any(|c| str_at(c, "/type") == "PodScheduled" && str_at(c, "/reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }

    let init_specs = arr_at(pod, "/spec/initContainers");
    // Sidecars (init containers that restart always) count as containers of the pod.
    let sidecars: HashSet<&str> = init_specs
        .iter()
        .filter(|c| str_at(c, "/restartPolicy") == "Always")
        .map(|c| str_at(c, "/name"))
        .collect();
    let total = arr_at(pod, "/spec/containers").len()
        + init_specs
            .iter()
            .filter(|c| str_at(c, "/restartPolicy") == "Always")
            .count();
    let mut ready = 0;

    let mut all_restarts = Restarts::default();
    let mut sidecar_restarts = Restarts::default();
    let mut initializing = false;
    for (i, status) in arr_at(pod, "/status/initContainerStatuses").iter().enumerate() {
        let is_sidecar = sidecars.contains(str_at(status, "/name"));
        all_restarts.add(status);
        if is_sidecar {
            sidecar_restarts.add(status);
        }
        let terminated = obj_at(status, "/state/terminated");
        let waiting_reason = str_at(status, "/state/waiting/reason");
        if terminated.is_some_and(|t| int_at(t, "/exitCode") == 0) {
            continue;
        }
        if is_sidecar && bool_at(status, "/started") {
            if bool_at(status, "/ready") {
                ready += 1;
            }
            continue;
        }
        reason = if let Some(t) = terminated {
            match str_at(t, "/reason") {
                "" if int_at(t, "/signal") != 0 => format!("Init:Signal:{}", int_at(t, "/signal")),
                "" => format!("Init:ExitCode:{}", int_at(t, "/exitCode")),
                r => format!("Init:{r}"),
            }
        } else if obj_at(status, "/state/waiting").is_some()
            && !waiting_reason.is_empty()
            && waiting_reason != "PodInitializing"
        {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    let mut restarts = all_restarts;
    if !initializing || condition_is_true(conditions, "Initialized") {
        restarts = sidecar_restarts;
        let mut has_running = false;
        // Go walks the statuses backwards, so the first container's state has the last word.
        for status in arr_at(pod, "/status/containerStatuses").iter().rev() {
            restarts.add(status);
            let waiting_reason = str_at(status, "/state/waiting/reason");
            if obj_at(status, "/state/waiting").is_some() && !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = obj_at(status, "/state/terminated") {
                reason = match str_at(t, "/reason") {
                    "" if int_at(t, "/signal") != 0 => format!("Signal:{}", int_at(t, "/signal")),
                    "" => format!("ExitCode:{}", int_at(t, "/exitCode")),
                    r => r.to_string(),
                };
            } else if bool_at(status, "/ready") && obj_at(status, "/state/running").is_some() {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose last word is "Completed" but that still runs a container is not done.
        if reason == "Completed" && has_running {
            reason = if conditions
                .iter()
                .any(|c| str_at(c, "/type") == "Ready" && str_at(c, "/status") == "True")
            {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    let deleting = pod.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null());
    if deleting && str_at(pod, "/status/reason") == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    let restarts_cell = match restarts.last {
        Some(last) if restarts.count != 0 => format!("{} ({} ago)", restarts.count, since(Some(last), now)),
        _ => restarts.count.to_string(),
    };

    vec![
        name(pod).into(),
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts_cell.into(),
        age(pod, now),
        or_none(pod_ip(pod)).into(),
        or_none(str_at(pod, "/spec/nodeName")).into(),
        or_none(str_at(pod, "/status/nominatedNodeName")).into(),
        readiness_gates(pod, conditions).into(),
    ]
}

/// `status.podIPs[0].ip`; objects written with only the singular `podIP` convert to the same.
fn pod_ip(pod: &Value) -> &str {
    match arr_at(pod, "/status/podIPs").first() {
        Some(first) => str_at(first, "/ip"),
        None => str_at(pod, "/status/podIP"),
    }
}

/// `"x/y"`: of the `y` readiness gates, how many have a condition whose status is True.
fn readiness_gates(pod: &Value, conditions: &[Value]) -> String {
    let gates = arr_at(pod, "/spec/readinessGates");
    if gates.is_empty() {
        return "<none>".to_string();
    }
    let true_gates = gates
        .iter()
        .filter(|gate| {
            let wanted = str_at(gate, "/conditionType");
            // Only the first condition of the gate's type counts, as in Go.
            conditions
                .iter()
                .find(|c| str_at(c, "/type") == wanted)
                .is_some_and(|c| str_at(c, "/status") == "True")
        })
        .count();
    format!("{true_gates}/{}", gates.len())
}

/// The first condition of `type_` decides (`isPodInitializedConditionTrue`).
fn condition_is_true(conditions: &[Value], type_: &str) -> bool {
    conditions
        .iter()
        .find(|c| str_at(c, "/type") == type_)
        .is_some_and(|c| str_at(c, "/status") == "True")
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
#[path = "pod_tests.rs"]
mod tests;
