//! Service, Endpoints and EndpointSlice rows, checked against the `printers.go` rules and the
//! rows recorded from kubectl in kubectl-wire.md §6.2.

use serde_json::{json, Value};

use super::*;

fn now() -> Timestamp {
    "2024-05-01T12:00:00Z".parse().unwrap()
}

fn svc(spec: Value, status: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web-svc", "namespace": "default", "creationTimestamp": "2024-05-01T11:59:55Z"},
        "spec": spec, "status": status,
    })
}

#[test]
fn default_kubernetes_service_matches_the_recorded_row() {
    let s = json!({
        "metadata": {"name": "kubernetes", "namespace": "default", "creationTimestamp": "2024-05-01T11:59:54Z"},
        "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
        "status": {"loadBalancer": {}}
    });
    assert_eq!(
        service_cells(&s, now()),
        [
            json!("kubernetes"),
            json!("ClusterIP"),
            json!("10.96.0.1"),
            json!("<none>"),
            json!("443/TCP"),
            json!("6s"),
            json!("<none>")
        ]
    );
}

#[test]
fn node_port_service_shows_port_and_node_port_and_selector() {
    let s = svc(
        json!({"type": "NodePort", "clusterIP": "10.96.0.11", "clusterIPs": ["10.96.0.11"],
               "selector": {"app": "web", "tier": "front"},
               "ports": [{"port": 80, "nodePort": 30830, "protocol": "TCP", "targetPort": 80}]}),
        json!({}),
    );
    let c = service_cells(&s, now());
    assert_eq!(
        c[1..5],
        [
            json!("NodePort"),
            json!("10.96.0.11"),
            json!("<none>"),
            json!("80:30830/TCP")
        ]
    );
    assert_eq!(c[6], json!("app=web,tier=front"));
}

#[test]
fn load_balancer_without_ingress_is_pending() {
    let s = svc(
        json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"],
               "ports": [{"port": 8080, "nodePort": 31582, "protocol": "TCP"}]}),
        json!({"loadBalancer": {}}),
    );
    assert_eq!(
        service_cells(&s, now())[3..5],
        [json!("<pending>"), json!("8080:31582/TCP")]
    );
}

#[test]
fn load_balancer_lists_sorted_distinct_ingress_then_external_ips_uncut() {
    let s = svc(
        json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"], "externalIPs": ["198.51.100.9"],
               "ports": [{"port": 80, "nodePort": 31000, "protocol": "TCP"}]}),
        json!({"loadBalancer": {"ingress": [
            {"ip": "203.0.113.20"},
            {"hostname": "a-very-long-load-balancer-name.example.com"},
            {"ip": "203.0.113.10"},
            {"ip": "203.0.113.10"}
        ]}}),
    );
    assert_eq!(
        service_cells(&s, now())[3],
        json!("203.0.113.10,203.0.113.20,a-very-long-load-balancer-name.example.com,198.51.100.9")
    );
}

#[test]
fn cluster_ip_service_with_external_ips_lists_them() {
    let s = svc(
        json!({"clusterIPs": ["10.96.0.5"], "externalIPs": ["192.0.2.1", "192.0.2.2"]}),
        json!({}),
    );
    let c = service_cells(&s, now());
    assert_eq!(c[1], json!("ClusterIP"), "type defaults to ClusterIP");
    assert_eq!(c[3], json!("192.0.2.1,192.0.2.2"));
    assert_eq!(c[4], json!("<none>"), "no ports");
}

#[test]
fn external_name_service_shows_the_name_and_no_cluster_ip() {
    let s = svc(
        json!({"type": "ExternalName", "externalName": "db.example.com"}),
        json!({}),
    );
    assert_eq!(
        service_cells(&s, now())[1..4],
        [json!("ExternalName"), json!("<none>"), json!("db.example.com")]
    );
}

#[test]
fn headless_service_shows_none_as_cluster_ip() {
    let s = svc(
        json!({"clusterIP": "None", "ports": [{"port": 5432, "protocol": "TCP"}]}),
        json!({}),
    );
    assert_eq!(service_cells(&s, now())[2], json!("None"));
}

#[test]
fn ports_join_with_commas_and_default_to_tcp() {
    let s = svc(
        json!({"type": "NodePort", "clusterIPs": ["10.96.0.9"], "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "nodePort": 30053},
            {"name": "metrics", "port": 9153, "protocol": "SCTP"}
        ]}),
        json!({}),
    );
    assert_eq!(service_cells(&s, now())[4], json!("53/UDP,53:30053/TCP,9153/SCTP"));
}

fn endpoints(subsets: Value) -> Value {
    json!({"metadata": {"name": "web-svc", "creationTimestamp": "2024-05-01T11:59:59Z"}, "subsets": subsets})
}

#[test]
fn endpoints_match_the_recorded_row() {
    let e = endpoints(json!([{
        "addresses": [{"ip": "10.244.0.190", "nodeName": "node-1"}, {"ip": "10.244.0.194", "nodeName": "node-1"}],
        "ports": [{"port": 80, "protocol": "TCP"}]
    }]));
    assert_eq!(
        endpoints_cells(&e, now()),
        [json!("web-svc"), json!("10.244.0.190:80,10.244.0.194:80"), json!("1s")]
    );
}

#[test]
fn endpoints_show_three_then_count_the_rest_across_ports() {
    let e = endpoints(json!([{
        "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
        "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]
    }]));
    assert_eq!(
        endpoints_cells(&e, now())[1],
        json!("10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...")
    );
}

#[test]
fn endpoints_with_exactly_three_entries_have_no_more_suffix() {
    let e = endpoints(json!([
        {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}]},
        {"addresses": [{"ip": "10.0.0.3"}], "ports": [{"port": 8080}]}
    ]));
    assert_eq!(
        endpoints_cells(&e, now())[1],
        json!("10.0.0.1:80,10.0.0.2:80,10.0.0.3:8080")
    );
}

#[test]
fn headless_endpoints_without_ports_show_bare_ips_and_ipv6_gets_brackets_with_ports() {
    let bare = endpoints(
        json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}, {"ip": "10.0.0.5"}]}]),
    );
    assert_eq!(
        endpoints_cells(&bare, now())[1],
        json!("10.0.0.1,10.0.0.2,10.0.0.3 + 2 more...")
    );
    let v6 = endpoints(json!([{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]));
    assert_eq!(endpoints_cells(&v6, now())[1], json!("[fd00::1]:80"));
}

#[test]
fn endpoints_without_subsets_or_with_only_not_ready_addresses() {
    assert_eq!(endpoints_cells(&endpoints(json!(null)), now())[1], json!("<none>"));
    let not_ready = endpoints(json!([{"notReadyAddresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]));
    assert_eq!(endpoints_cells(&not_ready, now())[1], json!(""));
}

fn slice(ports: Value, endpoints: Value) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-svc-abcde", "creationTimestamp": "2024-05-01T11:59:59Z",
                     "labels": {"kubernetes.io/service-name": "web-svc"}},
        "addressType": "IPv4", "ports": ports, "endpoints": endpoints,
    })
}

#[test]
fn endpoint_slice_matches_the_recorded_row() {
    let s = slice(
        json!([{"name": "", "port": 80, "protocol": "TCP"}]),
        json!([
            {"addresses": ["10.244.0.190"], "conditions": {"ready": true}, "nodeName": "node-1"},
            {"addresses": ["10.244.0.194"], "conditions": {"ready": true}, "nodeName": "node-1"}
        ]),
    );
    assert_eq!(
        endpoint_slice_cells(&s, now()),
        [
            json!("web-svc-abcde"),
            json!("IPv4"),
            json!("80"),
            json!("10.244.0.190,10.244.0.194"),
            json!("1s")
        ]
    );
}

#[test]
fn endpoint_slice_ports_fall_back_to_name_then_star_and_cap_at_three() {
    let s = slice(
        json!([{"port": 80}, {"name": "metrics"}, {}, {"port": 443}, {"port": 8443}]),
        json!([]),
    );
    assert_eq!(endpoint_slice_cells(&s, now())[2], json!("80,metrics,* + 2 more..."));
}

#[test]
fn endpoint_slice_without_ports_or_endpoints_is_unset() {
    let s = slice(json!(null), json!(null));
    assert_eq!(
        endpoint_slice_cells(&s, now())[2..4],
        [json!("<unset>"), json!("<unset>")]
    );
}

#[test]
fn endpoint_slice_endpoints_flatten_addresses_and_cap_at_three() {
    let s = slice(
        json!([{"port": 80}]),
        json!([{"addresses": ["10.0.0.1", "10.0.0.2"]}, {"addresses": ["10.0.0.3", "10.0.0.4"]}]),
    );
    assert_eq!(
        endpoint_slice_cells(&s, now())[3],
        json!("10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...")
    );
}

#[test]
fn service_columns_match_the_recorded_headers() {
    let names: Vec<_> = service_columns().into_iter().map(|c| (c.name, c.priority)).collect();
    let expected = [
        ("Name", 0),
        ("Type", 0),
        ("Cluster-IP", 0),
        ("External-IP", 0),
        ("Port(s)", 0),
        ("Age", 0),
        ("Selector", 1),
    ];
    assert_eq!(names, expected.map(|(n, p)| (n.to_string(), p)));
}
