use super::*;
use crate::model::fixtures::{node, ready, service, slice};
use serde_json::json;

fn svc(name: &str) -> Arc<Service> {
    Arc::new(service(name, json!({})))
}

fn eps(name: &str, suffix: &str, ips: &[&str]) -> Arc<EndpointSlice> {
    let endpoints: Vec<_> = ips.iter().map(|ip| ready(ip, "node-a")).collect();
    Arc::new(slice(
        name,
        suffix,
        json!([{"name": "http", "port": 8080}]),
        json!(endpoints),
    ))
}

fn names(changes: &[ServiceChange]) -> Vec<String> {
    changes.iter().map(|c| c.service.name.clone()).collect()
}

#[test]
fn the_first_observe_reports_every_service_with_a_virtual_ip() {
    let mut t = ChangeTracker::new(node());
    let headless = Arc::new(service("h", json!({"clusterIP": "None", "clusterIPs": ["None"]})));
    let changes = t.observe(&[svc("a"), svc("b"), headless], &[eps("a", "1", &["10.244.0.5"])]);
    assert_eq!(names(&changes), vec!["a", "b"]);
    assert!(changes.iter().all(|c| c.previous.is_empty()));
    assert_eq!(t.table().len(), 2);
}

#[test]
fn an_unchanged_snapshot_reports_nothing() {
    let mut t = ChangeTracker::new(node());
    let services = [svc("a"), svc("b")];
    let slices = [eps("a", "1", &["10.244.0.5"])];
    t.observe(&services, &slices);
    // Fresh allocations with equal content (a relist) are not changes either.
    assert!(t
        .observe(&[svc("a"), svc("b")], &[eps("a", "1", &["10.244.0.5"])])
        .is_empty());
}

#[test]
fn a_slice_update_reports_only_its_service_with_previous_and_current_ports() {
    let mut t = ChangeTracker::new(node());
    let services = [svc("a"), svc("b")];
    t.observe(
        &services,
        &[eps("a", "1", &["10.244.0.5"]), eps("b", "1", &["10.244.0.6"])],
    );
    let changes = t.observe(
        &services,
        &[
            eps("a", "1", &["10.244.0.5", "10.244.0.7"]),
            eps("b", "1", &["10.244.0.6"]),
        ],
    );
    assert_eq!(names(&changes), vec!["a"]);
    assert_eq!(changes[0].previous[0].endpoints.len(), 1);
    assert_eq!(changes[0].current[0].endpoints.len(), 2);
}

#[test]
fn a_deleted_slice_or_service_is_reported_even_though_no_event_is_replayed() {
    let mut t = ChangeTracker::new(node());
    t.observe(&[svc("a"), svc("b")], &[eps("a", "1", &["10.244.0.5"])]);
    let changes = t.observe(&[svc("a"), svc("b")], &[]);
    assert_eq!(names(&changes), vec!["a"]);
    assert!(changes[0].current[0].endpoints.is_empty());
    let changes = t.observe(&[svc("a")], &[]);
    assert_eq!(names(&changes), vec!["b"]);
    assert!(changes[0].current.is_empty());
    assert!(t.table().service(&ServiceRef::new("default", "b")).is_empty());
}

#[test]
fn a_service_edit_that_does_not_change_its_ports_is_not_reported() {
    let mut t = ChangeTracker::new(node());
    t.observe(&[svc("a")], &[]);
    let mut relabelled = service("a", json!({}));
    relabelled.metadata.labels = Some([("team".to_string(), "x".to_string())].into());
    assert!(t.observe(&[Arc::new(relabelled)], &[]).is_empty());
}

#[test]
fn a_new_node_name_recomputes_locality_of_every_service() {
    let mut t = ChangeTracker::new(node());
    t.observe(&[svc("a")], &[eps("a", "1", &["10.244.0.5"])]);
    t.set_node(NodeContext {
        node_name: "node-b".into(),
        node_ips: vec![],
    });
    let changes = t.observe(&[svc("a")], &[eps("a", "1", &["10.244.0.5"])]);
    assert_eq!(names(&changes), vec!["a"]);
    assert!(!changes[0].current[0].endpoints[0].is_local);
}
