//! Deployments and ReplicaSets: `printDeployment`, `printReplicaSet`.

use jiff::Timestamp;
use serde_json::Value;

use super::fields::{
    age, age_col, arr_at, col, container_cells, format_label_selector, int_at, label_selector_string, name, name_col,
    opt_int, CONTAINERS_DESCRIPTION, IMAGES_DESCRIPTION,
};
use super::ColumnDefinition;

pub(super) fn deployment_columns() -> Vec<ColumnDefinition> {
    // Up-to-date and Available are declared `string` upstream although their cells are integers.
    vec![
        name_col(),
        col("Ready", "string", "Number of the pod with ready state"),
        col("Up-to-date", "string", "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
        col("Available", "string", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
        age_col(),
        col("Containers", "string", CONTAINERS_DESCRIPTION).wide(),
        col("Images", "string", IMAGES_DESCRIPTION).wide(),
        col("Selector", "string", "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.").wide(),
    ]
}

/// `spec.replicas`, which defaulting sets to 1 when a stored object lacks it.
fn desired_replicas(obj: &Value) -> i64 {
    opt_int(obj, "/spec/replicas").unwrap_or(1)
}

pub(super) fn deployment_cells(d: &Value, now: Timestamp) -> Vec<Value> {
    let (containers, images) = container_cells(arr_at(d, "/spec/template/spec/containers"));
    // A Deployment prints the raw selector string: empty when there is none, not `<none>`.
    let selector = label_selector_string(d.pointer("/spec/selector")).unwrap_or_else(|()| "<invalid>".to_string());
    vec![
        name(d).into(),
        format!("{}/{}", int_at(d, "/status/readyReplicas"), desired_replicas(d)).into(),
        int_at(d, "/status/updatedReplicas").into(),
        int_at(d, "/status/availableReplicas").into(),
        age(d, now),
        containers.into(),
        images.into(),
        selector.into(),
    ]
}

pub(super) fn replica_set_columns() -> Vec<ColumnDefinition> {
    vec![
        name_col(),
        col("Desired", "integer", "Replicas is the number of desired replicas."),
        col(
            "Current",
            "integer",
            "Replicas is the most recently observed number of replicas.",
        ),
        col("Ready", "integer", "The number of ready replicas for this replica set."),
        age_col(),
        col("Containers", "string", CONTAINERS_DESCRIPTION).wide(),
        col("Images", "string", IMAGES_DESCRIPTION).wide(),
        col(
            "Selector",
            "string",
            "Selector is a label query over pods that should match the replica count.",
        )
        .wide(),
    ]
}

pub(super) fn replica_set_cells(rs: &Value, now: Timestamp) -> Vec<Value> {
    let (containers, images) = container_cells(arr_at(rs, "/spec/template/spec/containers"));
    vec![
        name(rs).into(),
        desired_replicas(rs).into(),
        int_at(rs, "/status/replicas").into(),
        int_at(rs, "/status/readyReplicas").into(),
        age(rs, now),
        containers.into(),
        images.into(),
        format_label_selector(rs.pointer("/spec/selector")).into(),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap()
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2024-05-01T11:59:54Z"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}}
            },
            "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}
        })
    }

    #[test]
    fn deployment_matches_the_recorded_wide_row_with_integer_counts() {
        assert_eq!(
            deployment_cells(&deployment(), now()),
            [
                json!("web"),
                json!("3/3"),
                json!(3),
                json!(3),
                json!("6s"),
                json!("nginx"),
                json!("nginx:1.25"),
                json!("app=web")
            ]
        );
    }

    #[test]
    fn fresh_deployment_without_status_reads_zero_of_desired() {
        let mut d = deployment();
        d.as_object_mut().unwrap().remove("status");
        assert_eq!(deployment_cells(&d, now())[1..4], [json!("0/3"), json!(0), json!(0)]);
    }

    #[test]
    fn deployment_without_replicas_wants_one() {
        let mut d = deployment();
        d["spec"].as_object_mut().unwrap().remove("replicas");
        assert_eq!(deployment_cells(&d, now())[1], json!("3/1"));
    }

    #[test]
    fn deployment_with_several_containers_and_expressions() {
        let mut d = deployment();
        d["spec"]["template"]["spec"]["containers"] =
            json!([{"name": "app", "image": "shop:2"}, {"name": "proxy", "image": "envoy:1.30"}]);
        d["spec"]["selector"] = json!({"matchLabels": {"app": "shop"},
            "matchExpressions": [{"key": "track", "operator": "In", "values": ["stable", "canary"]}]});
        let c = deployment_cells(&d, now());
        assert_eq!(
            c[5..],
            [
                json!("app,proxy"),
                json!("shop:2,envoy:1.30"),
                json!("app=shop,track in (canary,stable)")
            ]
        );
    }

    #[test]
    fn deployment_selector_is_empty_when_absent_and_invalid_when_malformed() {
        let mut d = deployment();
        d["spec"].as_object_mut().unwrap().remove("selector");
        assert_eq!(deployment_cells(&d, now())[7], json!(""));
        d["spec"]["selector"] = json!({"matchExpressions": [{"key": "a", "operator": "Maybe"}]});
        assert_eq!(deployment_cells(&d, now())[7], json!("<invalid>"));
    }

    fn replica_set() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-5d8f7c9b6d", "creationTimestamp": "2024-05-01T11:57:00Z"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d8f7c9b6d"}},
                "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}}
            },
            "status": {"replicas": 3, "readyReplicas": 2, "availableReplicas": 2}
        })
    }

    #[test]
    fn replica_set_prints_desired_current_ready_as_integers() {
        assert_eq!(
            replica_set_cells(&replica_set(), now()),
            [
                json!("web-5d8f7c9b6d"),
                json!(3),
                json!(3),
                json!(2),
                json!("3m"),
                json!("nginx"),
                json!("nginx:1.25"),
                json!("app=web,pod-template-hash=5d8f7c9b6d")
            ]
        );
    }

    #[test]
    fn scaled_down_replica_set_reads_zeros_and_empty_selector_is_none() {
        let mut rs = replica_set();
        rs["spec"]["replicas"] = json!(0);
        rs["status"] = json!({"replicas": 0});
        rs["spec"]["selector"] = json!({});
        let c = replica_set_cells(&rs, now());
        assert_eq!(c[1..4], [json!(0), json!(0), json!(0)]);
        assert_eq!(c[7], json!("<none>"));
    }

    #[test]
    fn column_types_follow_upstream() {
        let types: Vec<_> = replica_set_columns().into_iter().map(|c| c.type_).collect();
        assert_eq!(types[1..4], ["integer", "integer", "integer"]);
        let d: Vec<_> = deployment_columns().into_iter().map(|c| (c.name, c.priority)).collect();
        assert_eq!(
            d.iter()
                .filter(|(_, p)| *p == 1)
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>(),
            ["Containers", "Images", "Selector"]
        );
    }
}
