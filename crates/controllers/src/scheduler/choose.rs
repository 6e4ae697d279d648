//! The scheduling decision as a pure function: filter nodes the way the default plugins
//! do (NodeUnschedulable, TaintToleration, NodeAffinity), spread by fewest pods, and word
//! failures exactly like kube-scheduler's `FitError`.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, Pod, Taint, Toleration};

/// Upstream `ErrNoNodesAvailable`, the message when the cluster has no nodes at all.
pub const NO_NODES: &str = "no nodes available to schedule pods";

/// Where the pod goes, or why it cannot go anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Bind to this node.
    Bind(String),
    /// No node fits; the message for the `FailedScheduling` event and `PodScheduled`.
    Unschedulable(String),
}

/// Whether `t` tolerates `taint` (`Toleration.ToleratesTaint`).
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    let effect_ok = t.effect.as_deref().is_none_or(|e| e.is_empty() || e == taint.effect);
    let key = t.key.as_deref().unwrap_or("");
    let op = t.operator.as_deref().unwrap_or("Equal");
    if !effect_ok {
        return false;
    }
    if key.is_empty() {
        return op == "Exists";
    }
    if key != taint.key {
        return false;
    }
    match op {
        "Exists" => true,
        _ => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
    }
}

fn ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The node's taints, plus the not-ready taint the node lifecycle controller puts on a node
/// that is not Ready (so a node created a moment ago without status is not used).
fn effective_taints(node: &Node) -> Vec<Taint> {
    let mut taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    if !ready(node)
        && !taints
            .iter()
            .any(|t| t.key.starts_with("node.kubernetes.io/not-ready") || t.key == "node.kubernetes.io/unreachable")
    {
        taints.push(Taint {
            key: "node.kubernetes.io/not-ready".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        });
    }
    taints
}

fn requirement_matches(r: &NodeSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let v = labels.get(&r.key);
    let values = r.values.clone().unwrap_or_default();
    match r.operator.as_str() {
        "In" => v.is_some_and(|v| values.contains(v)),
        "NotIn" => v.is_none_or(|v| !values.contains(v)),
        "Exists" => v.is_some(),
        "DoesNotExist" => v.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                v.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// `nodeSelector` and required node affinity (terms OR'ed, expressions AND'ed).
fn affinity_matches(pod: &Pod, node: &Node) -> bool {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    if let Some(sel) = &spec.node_selector {
        if sel.iter().any(|(k, v)| labels.get(k) != Some(v)) {
            return false;
        }
    }
    let required = spec
        .affinity
        .and_then(|a| a.node_affinity)
        .and_then(|n| n.required_during_scheduling_ignored_during_execution);
    match required {
        None => true,
        Some(r) => r.node_selector_terms.iter().any(|term| {
            let exprs = term.match_expressions.clone().unwrap_or_default();
            let fields = term.match_fields.clone().unwrap_or_default();
            let name = BTreeMap::from([(
                "metadata.name".to_string(),
                node.metadata.name.clone().unwrap_or_default(),
            )]);
            (!exprs.is_empty() || !fields.is_empty())
                && exprs.iter().all(|e| requirement_matches(e, &labels))
                && fields.iter().all(|f| requirement_matches(f, &name))
        }),
    }
}

/// Why `node` does not fit `pod`, in kube-scheduler's words, or `None` when it fits.
pub fn misfit(pod: &Pod, node: &Node) -> Option<String> {
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    if node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false) {
        let t = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        if !tolerations.iter().any(|tol| tolerates(tol, &t)) {
            return Some("node(s) were unschedulable".into());
        }
    }
    for taint in effective_taints(node) {
        if taint.effect != "NoSchedule" && taint.effect != "NoExecute" {
            continue;
        }
        if !tolerations.iter().any(|t| tolerates(t, &taint)) {
            return Some(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                taint.key,
                taint.value.as_deref().unwrap_or("")
            ));
        }
    }
    if !affinity_matches(pod, node) {
        return Some("node(s) didn't match Pod's node affinity/selector".into());
    }
    None
}

/// Picks the fitting node with the fewest pods (ties by name), or explains the failure as
/// `0/N nodes are available: <count> <reason>, .... preemption: ...`.
pub fn schedule(pod: &Pod, nodes: &[&Node], pods_per_node: &HashMap<String, usize>) -> Outcome {
    if nodes.is_empty() {
        return Outcome::Unschedulable(NO_NODES.into());
    }
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut best: Option<(usize, String)> = None;
    for node in nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        match misfit(pod, node) {
            Some(r) => *reasons.entry(r).or_default() += 1,
            None => {
                let load = pods_per_node.get(&name).copied().unwrap_or(0);
                if best.as_ref().is_none_or(|(l, n)| (load, &name) < (*l, n)) {
                    best = Some((load, name));
                }
            }
        }
    }
    if let Some((_, name)) = best {
        return Outcome::Bind(name);
    }
    let n = nodes.len();
    let mut parts: Vec<String> = reasons.into_iter().map(|(r, c)| format!("{c} {r}")).collect();
    parts.sort();
    Outcome::Unschedulable(format!(
        "0/{n} nodes are available: {}. preemption: 0/{n} nodes are available: {n} Preemption is not helpful for scheduling.",
        parts.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeSpec, NodeStatus, PodSpec};

    fn node(name: &str, ready: bool) -> Node {
        let mut n = Node {
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        n.metadata.name = Some(name.into());
        n
    }

    fn pod() -> Pod {
        Pod {
            spec: Some(PodSpec::default()),
            ..Default::default()
        }
    }

    #[test]
    fn no_nodes_reads_like_upstream() {
        assert_eq!(
            schedule(&pod(), &[], &HashMap::new()),
            Outcome::Unschedulable(NO_NODES.into())
        );
    }

    #[test]
    fn the_least_loaded_fitting_node_wins() {
        let (a, b) = (node("a", true), node("b", true));
        let load = HashMap::from([("a".to_string(), 3), ("b".to_string(), 1)]);
        assert_eq!(schedule(&pod(), &[&a, &b], &load), Outcome::Bind("b".into()));
        assert_eq!(schedule(&pod(), &[&a, &b], &HashMap::new()), Outcome::Bind("a".into()));
    }

    #[test]
    fn failures_are_counted_per_reason_in_fit_error_wording() {
        let mut tainted = node("cp", true);
        tainted.spec.as_mut().unwrap().taints = Some(vec![Taint {
            key: "node-role.kubernetes.io/control-plane".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        }]);
        let mut cordoned = node("c", true);
        cordoned.spec.as_mut().unwrap().unschedulable = Some(true);
        let not_ready = node("nr", false);
        let out = schedule(&pod(), &[&tainted, &cordoned, &not_ready], &HashMap::new());
        assert_eq!(
            out,
            Outcome::Unschedulable(
                "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, \
                 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 1 node(s) were unschedulable. \
                 preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
                    .into()
            )
        );
    }

    #[test]
    fn a_toleration_lets_a_pod_onto_a_tainted_node() {
        let mut n = node("a", true);
        n.spec.as_mut().unwrap().taints = Some(vec![Taint {
            key: "dedicated".into(),
            value: Some("gpu".into()),
            effect: "NoSchedule".into(),
            ..Default::default()
        }]);
        let mut p = pod();
        p.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
            key: Some("dedicated".into()),
            operator: Some("Equal".into()),
            value: Some("gpu".into()),
            effect: Some("NoSchedule".into()),
            ..Default::default()
        }]);
        assert_eq!(schedule(&p, &[&n], &HashMap::new()), Outcome::Bind("a".into()));
        assert!(tolerates(
            &Toleration {
                operator: Some("Exists".into()),
                ..Default::default()
            },
            &n.spec.unwrap().taints.unwrap()[0]
        ));
    }

    #[test]
    fn a_node_selector_must_match_the_node_labels() {
        let mut n = node("a", true);
        n.metadata.labels = Some([("disk".to_string(), "ssd".to_string())].into());
        let mut p = pod();
        p.spec.as_mut().unwrap().node_selector = Some([("disk".to_string(), "hdd".to_string())].into());
        assert!(
            matches!(schedule(&p, &[&n], &HashMap::new()), Outcome::Unschedulable(m) if m.contains("1 node(s) didn't match Pod's node affinity/selector"))
        );
    }
}
