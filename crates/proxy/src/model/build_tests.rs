use super::*;
use crate::model::fixtures::{node, ready, service, slice};
use serde_json::json;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn a_cluster_ip_service_becomes_one_entry_per_port_with_its_endpoints() {
    let svc = service(
        "web",
        json!({"ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
                         {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353}]}),
    );
    let s = slice(
        "web",
        "x1",
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "dns", "port": 5353, "protocol": "UDP"}]),
        json!([ready("10.244.1.5", "node-a"), ready("10.244.2.5", "node-b")]),
    );
    let ports = service_ports(&svc, &[&s], &node());
    assert_eq!(ports.len(), 2);
    let http = ports.iter().find(|p| p.name.port_name == "http").unwrap();
    assert_eq!(http.name.protocol, Protocol::Tcp);
    assert_eq!(http.cluster_ips, vec![ip("10.96.0.10")]);
    assert_eq!(http.port, 80);
    assert_eq!(http.node_port, None);
    let eps: Vec<(Ipv4Addr, u16, bool)> = http.endpoints.iter().map(|e| (e.ip, e.port, e.is_local)).collect();
    assert_eq!(
        eps,
        vec![(ip("10.244.1.5"), 8080, true), (ip("10.244.2.5"), 8080, false)]
    );
    let dns = ports.iter().find(|p| p.name.port_name == "dns").unwrap();
    assert_eq!(dns.name.protocol, Protocol::Udp);
    assert!(dns.endpoints.iter().all(|e| e.port == 5353));
}

#[test]
fn a_named_target_port_resolves_through_the_slice_port_of_the_same_name() {
    // targetPort "web" is a container port name; pods of two versions declare it differently, and
    // the controller writes one slice per resolved number under the Service port's name.
    let svc = service(
        "web",
        json!({"ports": [{"name": "http", "port": 80, "targetPort": "web"}]}),
    );
    let old = slice(
        "web",
        "a",
        json!([{"name": "http", "port": 8080}]),
        json!([ready("10.244.1.5", "node-a")]),
    );
    let new = slice(
        "web",
        "b",
        json!([{"name": "http", "port": 9090}]),
        json!([ready("10.244.1.6", "node-a")]),
    );
    let other = slice(
        "web",
        "c",
        json!([{"name": "metrics", "port": 9100}]),
        json!([ready("10.244.1.7", "node-a")]),
    );
    let ports = service_ports(&svc, &[&old, &new, &other], &node());
    let eps: Vec<(Ipv4Addr, u16)> = ports[0].endpoints.iter().map(|e| (e.ip, e.port)).collect();
    assert_eq!(eps, vec![(ip("10.244.1.5"), 8080), (ip("10.244.1.6"), 9090)]);
}

#[test]
fn headless_and_external_name_services_have_no_entries() {
    let headless = service("h", json!({"clusterIP": "None", "clusterIPs": ["None"]}));
    let external = service(
        "e",
        json!({"type": "ExternalName", "externalName": "example.com", "clusterIP": null, "clusterIPs": null}),
    );
    assert!(service_ports(&headless, &[], &node()).is_empty());
    assert!(service_ports(&external, &[], &node()).is_empty());
}

#[test]
fn a_load_balancer_service_carries_node_port_ingress_ips_external_ips_and_policies() {
    let mut svc = service(
        "lb",
        json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "internalTrafficPolicy": "Local",
               "healthCheckNodePort": 32000, "externalIPs": ["192.0.2.7"],
               "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}),
    );
    svc.status = serde_json::from_value(json!({"loadBalancer": {"ingress": [
        {"ip": "172.30.0.200"}, {"ip": "172.30.0.201", "ipMode": "Proxy"}, {"hostname": "lb.example"}]}}))
    .unwrap();
    let p = &service_ports(&svc, &[], &node())[0];
    assert_eq!(p.node_port, Some(30080));
    assert_eq!(p.load_balancer_ips, vec![ip("172.30.0.200")]);
    assert_eq!(p.external_ips, vec![ip("192.0.2.7")]);
    assert_eq!(p.external_policy, TrafficPolicy::Local);
    assert_eq!(p.internal_policy, TrafficPolicy::Local);
    assert_eq!(p.health_check_node_port, Some(32000));
}

#[test]
fn a_cluster_ip_service_ignores_a_node_port_left_in_its_spec() {
    let svc = service(
        "web",
        json!({"ports": [{"name": "http", "port": 80, "nodePort": 30080}]}),
    );
    assert_eq!(service_ports(&svc, &[], &node())[0].node_port, None);
}

#[test]
fn client_ip_affinity_uses_the_configured_timeout_or_three_hours() {
    let with = service(
        "a",
        json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}),
    );
    let without = service("b", json!({"sessionAffinity": "ClientIP"}));
    let none = service("c", json!({"sessionAffinity": "None"}));
    assert_eq!(service_ports(&with, &[], &node())[0].affinity_timeout, Some(60));
    assert_eq!(service_ports(&without, &[], &node())[0].affinity_timeout, Some(10800));
    assert_eq!(service_ports(&none, &[], &node())[0].affinity_timeout, None);
}

#[test]
fn endpoint_conditions_default_as_upstream_and_duplicates_keep_the_ready_copy() {
    let svc = service("web", json!({}));
    let a = slice(
        "web",
        "a",
        json!([{"name": "http", "port": 8080}]),
        json!([{"addresses": ["10.244.1.5"]},
               {"addresses": ["10.244.1.6"], "conditions": {"ready": false}},
               {"addresses": ["10.244.1.7"], "conditions": {"ready": false, "serving": true, "terminating": true}}]),
    );
    let b = slice(
        "web",
        "b",
        json!([{"name": "http", "port": 8080}]),
        json!([ready("10.244.1.6", "node-b")]),
    );
    let p = &service_ports(&svc, &[&a, &b], &node())[0];
    let conds: Vec<(u8, bool, bool, bool)> = p
        .endpoints
        .iter()
        .map(|e| (e.ip.octets()[3], e.ready, e.serving, e.terminating))
        .collect();
    assert_eq!(
        conds,
        vec![(5, true, true, false), (6, true, true, false), (7, false, true, true)]
    );
}

#[test]
fn slices_of_another_address_type_or_protocol_contribute_nothing() {
    let svc = service("web", json!({}));
    let mut v6 = slice(
        "web",
        "v6",
        json!([{"name": "http", "port": 8080}]),
        json!([{"addresses": ["fd00::5"]}]),
    );
    v6.address_type = "IPv6".into();
    let udp = slice(
        "web",
        "u",
        json!([{"name": "http", "port": 8080, "protocol": "UDP"}]),
        json!([ready("10.244.1.9", "node-a")]),
    );
    assert!(service_ports(&svc, &[&v6, &udp], &node())[0].endpoints.is_empty());
}
