use super::*;
use serde_json::json;

fn service(spec: serde_json::Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "shop", "uid": "u1"},
        "spec": spec,
    }))
    .unwrap()
}

fn pod(name: &str, labels: serde_json::Value, ports: serde_json::Value, phase: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "shop", "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "nginx", "ports": ports}]},
        "status": {"phase": phase},
    }))
    .unwrap()
}

fn reasons(f: &[Finding]) -> Vec<(EventType, &'static str)> {
    f.iter().map(|f| (f.type_, f.reason)).collect()
}

#[test]
fn a_selector_matching_no_pod_is_a_warning_naming_the_selector() {
    let svc = service(json!({"selector": {"app": "web", "tier": "fe"}, "ports": [{"port": 80}]}));
    let other = pod("db", json!({"app": "db"}), json!([]), "Running");
    let f = findings(&svc, &[&other]);
    assert_eq!(reasons(&f), vec![(EventType::Warning, NO_MATCHING_PODS)]);
    assert!(f[0].message.contains("app=web,tier=fe"), "{}", f[0].message);
    assert!(f[0].message.contains("namespace shop"), "{}", f[0].message);
}

#[test]
fn pods_of_other_namespaces_and_finished_pods_do_not_count_as_matches() {
    let svc = service(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}));
    let mut elsewhere = pod("a", json!({"app": "web"}), json!([]), "Running");
    elsewhere.metadata.namespace = Some("other".into());
    let done = pod("b", json!({"app": "web"}), json!([]), "Succeeded");
    assert_eq!(
        reasons(&findings(&svc, &[&elsewhere, &done])),
        vec![(EventType::Warning, NO_MATCHING_PODS)]
    );
}

#[test]
fn a_pending_pod_that_matches_is_enough() {
    let svc = service(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}));
    let p = pod("a", json!({"app": "web"}), json!([]), "Pending");
    assert!(findings(&svc, &[&p]).is_empty());
}

#[test]
fn services_without_selector_and_external_names_have_no_findings() {
    let manual = service(json!({"ports": [{"port": 80}]}));
    let empty = service(json!({"selector": {}, "ports": [{"port": 80}]}));
    let external = service(json!({"type": "ExternalName", "externalName": "example.com", "selector": {"app": "x"}}));
    for svc in [manual, empty, external] {
        assert!(findings(&svc, &[]).is_empty());
    }
}

#[test]
fn a_named_target_port_no_selected_pod_declares_is_a_warning() {
    let svc = service(json!({"selector": {"app": "web"},
        "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}));
    let p = pod(
        "a",
        json!({"app": "web"}),
        json!([{"name": "metrics", "containerPort": 9090}]),
        "Running",
    );
    let f = findings(&svc, &[&p]);
    assert_eq!(reasons(&f), vec![(EventType::Warning, TARGET_PORT_NOT_DECLARED)]);
    assert!(f[0].message.contains("\"http\""), "{}", f[0].message);
    assert!(f[0].message.contains("port web (80/TCP)"), "{}", f[0].message);
}

#[test]
fn a_named_target_port_one_pod_declares_is_fine() {
    let svc = service(json!({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}));
    let without = pod("a", json!({"app": "web"}), json!([]), "Running");
    let with = pod(
        "b",
        json!({"app": "web"}),
        json!([{"name": "http", "containerPort": 8080}]),
        "Running",
    );
    assert!(findings(&svc, &[&without, &with]).is_empty());
}

#[test]
fn a_named_target_port_declared_for_another_protocol_does_not_count() {
    let svc = service(json!({"selector": {"app": "dns"},
        "ports": [{"port": 53, "protocol": "UDP", "targetPort": "dns"}]}));
    let p = pod(
        "a",
        json!({"app": "dns"}),
        json!([{"name": "dns", "containerPort": 53, "protocol": "TCP"}]),
        "Running",
    );
    assert_eq!(
        reasons(&findings(&svc, &[&p])),
        vec![(EventType::Warning, TARGET_PORT_NOT_DECLARED)]
    );
}

#[test]
fn a_numeric_target_port_beside_other_declared_ports_is_normal_and_lists_them() {
    let svc = service(json!({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}));
    let p = pod("a", json!({"app": "web"}), json!([{"containerPort": 80}]), "Running");
    let f = findings(&svc, &[&p]);
    assert_eq!(reasons(&f), vec![(EventType::Normal, TARGET_PORT_NOT_DECLARED)]);
    assert!(
        f[0].message.contains("targetPort 8080 of port 80/TCP"),
        "{}",
        f[0].message
    );
    assert!(f[0].message.contains("they declare 80/TCP"), "{}", f[0].message);
}

#[test]
fn a_numeric_target_port_is_quiet_when_pods_declare_no_ports_or_declare_it() {
    let svc = service(json!({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "8080"}]}));
    let none = pod("a", json!({"app": "web"}), json!([]), "Running");
    assert!(findings(&svc, &[&none]).is_empty());
    let declared = pod("b", json!({"app": "web"}), json!([{"containerPort": 8080}]), "Running");
    assert!(findings(&svc, &[&declared]).is_empty());
}

#[test]
fn an_unset_target_port_means_the_service_port() {
    let svc = service(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}));
    let p = pod("a", json!({"app": "web"}), json!([{"containerPort": 80}]), "Running");
    assert!(findings(&svc, &[&p]).is_empty());
    let q = pod("b", json!({"app": "web"}), json!([{"containerPort": 81}]), "Running");
    assert_eq!(
        reasons(&findings(&svc, &[&q])),
        vec![(EventType::Normal, TARGET_PORT_NOT_DECLARED)]
    );
}

#[test]
fn each_port_of_a_multi_port_service_is_judged_alone() {
    let svc = service(json!({"selector": {"app": "web"}, "ports": [
        {"name": "a", "port": 80, "targetPort": "http"},
        {"name": "b", "port": 443, "targetPort": "https"},
    ]}));
    let p = pod(
        "a",
        json!({"app": "web"}),
        json!([{"name": "http", "containerPort": 8080}]),
        "Running",
    );
    let f = findings(&svc, &[&p]);
    assert_eq!(f.len(), 1);
    assert!(f[0].message.contains("\"https\""), "{}", f[0].message);
}
