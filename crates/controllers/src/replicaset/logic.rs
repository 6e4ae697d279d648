//! ReplicaSet decisions as pure functions: which pods to delete first, the pod a template
//! makes, and the status counts.

use std::cmp::Ordering;
use std::collections::HashMap;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use podway_api::selector::LabelSelector as Selector;

use crate::podutil::{controller_ref, created, is_pod_available, is_pod_ready, phase, ready_since};

/// Annotation lowering a pod's cost of deletion (`controller.kubernetes.io/pod-deletion-cost`).
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

fn phase_rank(p: &Pod) -> u8 {
    match phase(p) {
        "Pending" | "" => 0,
        "Unknown" => 1,
        _ => 2,
    }
}

fn restarts(p: &Pod) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

fn deletion_cost(p: &Pod) -> i32 {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn node(p: &Pod) -> &str {
    p.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("")
}

/// `getPodsToDelete`: the `n` pods to delete, cheapest first (`ActivePodsWithRanks`):
/// unscheduled before scheduled, Pending before Unknown before Running, not-ready before
/// ready, lower deletion cost first, pods doubled up on a node (counting `related`, the
/// pods of sibling ReplicaSets too) first, ready more recently first, more restarts first,
/// newer first.
pub fn pods_to_delete<'a>(pods: &[&'a Pod], related: &[&Pod], n: usize) -> Vec<&'a Pod> {
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for p in related {
        if !node(p).is_empty() {
            *per_node.entry(node(p)).or_default() += 1;
        }
    }
    let rank = |p: &Pod| {
        if node(p).is_empty() {
            0
        } else {
            per_node.get(node(p)).copied().unwrap_or(0)
        }
    };
    let mut sorted: Vec<&Pod> = pods.to_vec();
    sorted.sort_by(|a, b| {
        let assigned = |p: &Pod| !node(p).is_empty();
        assigned(a)
            .cmp(&assigned(b))
            .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
            .then_with(|| is_pod_ready(a).cmp(&is_pod_ready(b)))
            .then_with(|| deletion_cost(a).cmp(&deletion_cost(b)))
            .then_with(|| rank(b).cmp(&rank(a)))
            .then_with(|| match (is_pod_ready(a), is_pod_ready(b)) {
                (true, true) => ready_since(b).cmp(&ready_since(a)),
                _ => Ordering::Equal,
            })
            .then_with(|| restarts(b).cmp(&restarts(a)))
            .then_with(|| created(&b.metadata).cmp(&created(&a.metadata)))
    });
    sorted.truncate(n);
    sorted
}

/// `GetPodFromTemplate`: a pod `<rs>-<random>` (via `generateName`) with the template's
/// labels, annotations and spec, controlled by the ReplicaSet.
pub fn pod_from_template(rs: &ReplicaSet) -> Pod {
    let template = rs.spec.as_ref().and_then(|s| s.template.clone()).unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    let name = rs.metadata.name.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: rs.metadata.namespace.clone(),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![controller_ref(rs)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// `calculateStatus`: counts over the ReplicaSet's active pods.
pub fn calculate_status(rs: &ReplicaSet, pods: &[&Pod], now: jiff::Timestamp) -> ReplicaSetStatus {
    let template_labels = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let fully = Selector::from_map(&template_labels);
    let min_ready = rs.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let old = rs.status.clone().unwrap_or_default();
    let count = |f: &dyn Fn(&Pod) -> bool| pods.iter().filter(|p| f(p)).count() as i32;
    ReplicaSetStatus {
        replicas: pods.len() as i32,
        fully_labeled_replicas: Some(count(&|p| {
            template_labels.is_empty() || fully.matches(&p.metadata.labels.clone().unwrap_or_default())
        })),
        ready_replicas: Some(count(&|p| is_pod_ready(p))),
        available_replicas: Some(count(&|p| is_pod_available(p, min_ready, now))),
        observed_generation: rs.metadata.generation,
        conditions: old.conditions,
        terminating_replicas: None,
    }
}

/// Status equality the way the server round-trips it (zero counts may be dropped).
pub fn same_status(a: &ReplicaSetStatus, b: &ReplicaSetStatus) -> bool {
    let z = |v: Option<i32>| v.filter(|n| *n != 0);
    a.replicas == b.replicas
        && z(a.fully_labeled_replicas) == z(b.fully_labeled_replicas)
        && z(a.ready_replicas) == z(b.ready_replicas)
        && z(a.available_replicas) == z(b.available_replicas)
        && a.observed_generation == b.observed_generation
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::podutil::testing::pod;
    use k8s_openapi::api::apps::v1::ReplicaSetSpec;
    use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};

    fn on(mut p: Pod, node: &str) -> Pod {
        p.spec = Some(PodSpec {
            node_name: Some(node.into()),
            ..Default::default()
        });
        p
    }

    #[test]
    fn unscheduled_then_not_ready_pods_are_deleted_first() {
        let t = jiff::Timestamp::from_second(1_000).unwrap();
        let ready = on(pod("ready", "Running", Some(t)), "n1");
        let unready = on(pod("unready", "Running", None), "n1");
        let pending = pod("pending", "Pending", None);
        let all = [&ready, &unready, &pending];
        let names: Vec<_> = pods_to_delete(&all, &all, 2)
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, vec!["pending", "unready"]);
    }

    #[test]
    fn among_ready_pods_doubled_up_nodes_and_recent_readiness_go_first() {
        let t = jiff::Timestamp::from_second(1_000).unwrap();
        let alone = on(pod("alone", "Running", Some(t)), "n1");
        let crowded = on(pod("crowded", "Running", Some(t)), "n2");
        let other = on(pod("other", "Running", Some(t)), "n2");
        let names: Vec<_> = pods_to_delete(&[&alone, &crowded], &[&alone, &crowded, &other], 1)
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, vec!["crowded"]);
        let old = on(pod("old", "Running", Some(t)), "n1");
        let fresh = on(
            pod("fresh", "Running", Some(t + jiff::SignedDuration::from_secs(60))),
            "n3",
        );
        let names: Vec<_> = pods_to_delete(&[&old, &fresh], &[], 1)
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, vec!["fresh"]);
    }

    fn rs() -> ReplicaSet {
        let mut r = ReplicaSet {
            spec: Some(ReplicaSetSpec {
                replicas: Some(2),
                template: Some(PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some([("app".to_string(), "web".to_string())].into()),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec::default()),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        r.metadata.name = Some("web-abc".into());
        r.metadata.namespace = Some("default".into());
        r.metadata.uid = Some("rs-uid".into());
        r.metadata.generation = Some(4);
        r
    }

    #[test]
    fn a_pod_from_the_template_is_generated_under_the_replica_set_name_and_owned_by_it() {
        let p = pod_from_template(&rs());
        assert_eq!(p.metadata.generate_name.as_deref(), Some("web-abc-"));
        assert_eq!(p.metadata.labels.unwrap()["app"], "web");
        let owner = &p.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("ReplicaSet", "rs-uid", Some(true))
        );
    }

    #[test]
    fn status_counts_ready_available_and_fully_labeled_pods() {
        let t = jiff::Timestamp::from_second(1_000).unwrap();
        let mut a = pod("a", "Running", Some(t));
        a.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
        let b = pod("b", "Pending", None);
        let s = calculate_status(&rs(), &[&a, &b], t + jiff::SignedDuration::from_secs(1));
        assert_eq!(s.replicas, 2);
        assert_eq!(s.ready_replicas, Some(1));
        assert_eq!(s.available_replicas, Some(1));
        assert_eq!(s.fully_labeled_replicas, Some(1));
        assert_eq!(s.observed_generation, Some(4));
    }
}
