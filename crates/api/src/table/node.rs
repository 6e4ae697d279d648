//! Nodes and Namespaces: `printNode`, `printNamespace`.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::Value;

use super::fields::{age, age_col, arr_at, bool_at, col, name, name_col, str_at, string_map};
use super::ColumnDefinition;

const ROLE_LABEL_PREFIX: &str = "node-role.kubernetes.io/";
const ROLE_LABEL: &str = "kubernetes.io/role";

pub(super) fn node_columns() -> Vec<ColumnDefinition> {
    let addresses = "List of addresses reachable to the node.";
    vec![
        name_col(),
        col("Status", "string", "The status of the node"),
        col("Roles", "string", "The roles of the node"),
        age_col(),
        col("Version", "string", "Kubelet Version reported by the node."),
        col("Internal-IP", "string", addresses).wide(),
        col("External-IP", "string", addresses).wide(),
        col(
            "OS-Image",
            "string",
            "OS Image reported by the node from /etc/os-release.",
        )
        .wide(),
        col(
            "Kernel-Version",
            "string",
            "Kernel Version reported by the node from 'uname -r'.",
        )
        .wide(),
        col(
            "Container-Runtime",
            "string",
            "ContainerRuntime Version reported by the node through runtime remote API.",
        )
        .wide(),
    ]
}

pub(super) fn node_cells(node: &Value, now: Timestamp) -> Vec<Value> {
    // Only the Ready condition is shown; the last one listed wins, as Go's map keeps it.
    let mut status: Vec<&str> = match arr_at(node, "/status/conditions")
        .iter()
        .rfind(|c| str_at(c, "/type") == "Ready")
    {
        Some(c) if str_at(c, "/status") == "True" => vec!["Ready"],
        Some(_) => vec!["NotReady"],
        None => vec!["Unknown"],
    };
    if bool_at(node, "/spec/unschedulable") {
        status.push("SchedulingDisabled");
    }
    let roles = roles(node);
    let info = |field: &str| match str_at(node, &format!("/status/nodeInfo/{field}")) {
        "" => "<unknown>".to_string(),
        s => s.to_string(),
    };
    vec![
        name(node).into(),
        status.join(",").into(),
        if roles.is_empty() {
            "<none>".to_string()
        } else {
            roles.join(",")
        }
        .into(),
        age(node, now),
        str_at(node, "/status/nodeInfo/kubeletVersion").into(),
        address(node, "InternalIP").into(),
        address(node, "ExternalIP").into(),
        info("osImage").into(),
        info("kernelVersion").into(),
        info("containerRuntimeVersion").into(),
    ]
}

/// `findNodeRoles`: suffixes of `node-role.kubernetes.io/<role>` labels and the value of
/// `kubernetes.io/role`, sorted and distinct.
fn roles(node: &Value) -> Vec<String> {
    let mut roles = BTreeSet::new();
    for (key, value) in string_map(node, "/metadata/labels") {
        if let Some(role) = key.strip_prefix(ROLE_LABEL_PREFIX) {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if key == ROLE_LABEL && !value.is_empty() {
            roles.insert(value.to_string());
        }
    }
    roles.into_iter().collect()
}

/// The first address of `type_`, or `<none>`.
fn address(node: &Value, type_: &str) -> String {
    arr_at(node, "/status/addresses")
        .iter()
        .find(|a| str_at(a, "/type") == type_)
        .map_or_else(|| "<none>".to_string(), |a| str_at(a, "/address").to_string())
}

pub(super) fn namespace_columns() -> Vec<ColumnDefinition> {
    vec![
        name_col(),
        col("Status", "string", "The status of the namespace"),
        age_col(),
    ]
}

pub(super) fn namespace_cells(ns: &Value, now: Timestamp) -> Vec<Value> {
    // Defaulting fills the phase with Active.
    let phase = match str_at(ns, "/status/phase") {
        "" => "Active",
        p => p,
    };
    vec![name(ns).into(), phase.into(), age(ns, now)]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap()
    }

    fn node() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "node-1", "creationTimestamp": "2024-05-01T11:59:55Z",
                         "labels": {"kubernetes.io/hostname": "node-1", "node-role.kubernetes.io/control-plane": ""}},
            "spec": {"podCIDR": "10.244.0.0/24"},
            "status": {
                "conditions": [
                    {"type": "MemoryPressure", "status": "False"},
                    {"type": "Ready", "status": "True", "reason": "KubeletReady"}
                ],
                "addresses": [{"type": "InternalIP", "address": "192.168.49.2"}, {"type": "Hostname", "address": "node-1"}],
                "nodeInfo": {"kubeletVersion": "v1.32.4", "osImage": "Fake OS 1.0", "kernelVersion": "6.1.0",
                             "containerRuntimeVersion": "containerd://1.7.0"}
            }
        })
    }

    #[test]
    fn node_matches_the_recorded_wide_row() {
        assert_eq!(
            node_cells(&node(), now()),
            [
                json!("node-1"),
                json!("Ready"),
                json!("control-plane"),
                json!("5s"),
                json!("v1.32.4"),
                json!("192.168.49.2"),
                json!("<none>"),
                json!("Fake OS 1.0"),
                json!("6.1.0"),
                json!("containerd://1.7.0")
            ]
        );
    }

    #[test]
    fn cordoned_not_ready_node_shows_both_states() {
        let mut n = node();
        n["status"]["conditions"][1]["status"] = json!("False");
        n["spec"]["unschedulable"] = json!(true);
        assert_eq!(node_cells(&n, now())[1], json!("NotReady,SchedulingDisabled"));
        n["status"]["conditions"][1]["status"] = json!("Unknown");
        assert_eq!(node_cells(&n, now())[1], json!("NotReady,SchedulingDisabled"));
    }

    #[test]
    fn node_without_ready_condition_is_unknown() {
        let mut n = node();
        n["status"]["conditions"] = json!([{"type": "DiskPressure", "status": "False"}]);
        assert_eq!(node_cells(&n, now())[1], json!("Unknown"));
    }

    #[test]
    fn roles_come_sorted_from_both_label_styles() {
        let mut n = node();
        n["metadata"]["labels"] = json!({
            "node-role.kubernetes.io/worker": "",
            "node-role.kubernetes.io/": "",
            "kubernetes.io/role": "ingress",
            "node-role.kubernetes.io/control-plane": "true"
        });
        assert_eq!(node_cells(&n, now())[2], json!("control-plane,ingress,worker"));
        n["metadata"]["labels"] = json!({"kubernetes.io/role": ""});
        assert_eq!(node_cells(&n, now())[2], json!("<none>"));
    }

    #[test]
    fn node_with_external_ip_and_no_system_info() {
        let mut n = node();
        n["status"]["addresses"] =
            json!([{"type": "ExternalIP", "address": "203.0.113.4"}, {"type": "ExternalIP", "address": "203.0.113.5"}]);
        n["status"]["nodeInfo"] = json!({});
        let c = node_cells(&n, now());
        assert_eq!(c[4], json!(""), "an empty kubelet version prints empty");
        assert_eq!(
            c[5..],
            [
                json!("<none>"),
                json!("203.0.113.4"),
                json!("<unknown>"),
                json!("<unknown>"),
                json!("<unknown>")
            ]
        );
    }

    #[test]
    fn namespace_shows_its_phase() {
        let ns = |phase: Value| json!({"metadata": {"name": "shop", "creationTimestamp": "2024-04-20T12:00:00Z"}, "status": {"phase": phase}});
        assert_eq!(
            namespace_cells(&ns(json!("Active")), now()),
            [json!("shop"), json!("Active"), json!("11d")]
        );
        assert_eq!(
            namespace_cells(&ns(json!("Terminating")), now())[1],
            json!("Terminating")
        );
        assert_eq!(namespace_cells(&ns(json!(null)), now())[1], json!("Active"));
    }
}
