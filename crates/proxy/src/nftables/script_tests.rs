use super::*;
use crate::model::{Endpoint, Protocol, ServicePortName, ServiceRef, TrafficPolicy};
use std::net::Ipv4Addr;

fn config() -> RenderConfig {
    RenderConfig {
        pod_cidr: "10.244.0.0/16".parse().unwrap(),
    }
}

fn port(name: &str, cluster_ip: u8, endpoints: &[u8]) -> ServicePort {
    ServicePort {
        name: ServicePortName {
            service: ServiceRef::new("ns", name),
            port_name: String::new(),
            protocol: Protocol::Tcp,
        },
        cluster_ips: vec![Ipv4Addr::new(10, 96, 0, cluster_ip)],
        port: 80,
        node_port: None,
        load_balancer_ips: vec![],
        external_ips: vec![],
        affinity_timeout: None,
        external_policy: TrafficPolicy::Cluster,
        internal_policy: TrafficPolicy::Cluster,
        health_check_node_port: None,
        endpoints: endpoints
            .iter()
            .map(|last| Endpoint {
                ip: Ipv4Addr::new(10, 244, 0, *last),
                port: 8080,
                ready: true,
                serving: true,
                terminating: false,
                node_name: None,
                is_local: false,
            })
            .collect(),
    }
}

fn change(previous: Vec<ServicePort>, current: Vec<ServicePort>) -> ServiceChange {
    let service = previous.iter().chain(&current).next().unwrap().name.service.clone();
    ServiceChange {
        service,
        previous,
        current,
    }
}

fn table(ports: Vec<ServicePort>) -> ServiceTable {
    let mut t = ServiceTable::new();
    for p in ports {
        let s = p.name.service.clone();
        let mut all: Vec<ServicePort> = t.service(&s).into_iter().cloned().collect();
        all.push(p);
        t.replace_service(&s, all);
    }
    t
}

fn line_of(script: &str, needle: &str) -> usize {
    script
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in:\n{script}"))
}

#[test]
fn a_full_script_replaces_the_table_and_declares_chains_before_elements_use_them() {
    let s = full(&table(vec![port("a", 1, &[5, 6]), port("b", 2, &[])]), &config());
    assert!(s.starts_with("add table ip podway\ndelete table ip podway\nadd table ip podway\n"));
    assert!(
        s.contains("add chain ip podway nat-prerouting { type nat hook prerouting priority -100 ; policy accept ; }")
    );
    assert!(
        s.contains("add chain ip podway nat-postrouting { type nat hook postrouting priority 100 ; policy accept ; }")
    );
    assert!(line_of(&s, "add chain ip podway service-ns/a/tcp/") < line_of(&s, "add element ip podway service-ips"));
    assert!(s.contains("add element ip podway service-ips { 10.96.0.1 . tcp . 80 : goto service-ns/a/tcp/ }"));
    assert!(s.contains("add element ip podway no-endpoint-services { 10.96.0.2 . tcp . 80 : goto reject-chain }"));
}

#[test]
fn a_full_script_keeps_the_first_claim_when_two_services_share_an_address_and_port() {
    let mut a = port("a", 1, &[5]);
    a.external_ips = vec![Ipv4Addr::new(192, 0, 2, 9)];
    let mut b = port("b", 2, &[6]);
    b.external_ips = vec![Ipv4Addr::new(192, 0, 2, 9)];
    let s = full(&table(vec![a, b]), &config());
    assert_eq!(s.matches("192.0.2.9 . tcp . 80").count(), 1, "{s}");
    assert!(s.contains("192.0.2.9 . tcp . 80 : goto external-ns/a/tcp/"));
}

#[test]
fn adding_an_endpoint_refills_only_that_service_chain_and_leaves_its_map_element() {
    let s = incremental(
        &[change(vec![port("a", 1, &[5])], vec![port("a", 1, &[5, 6])])],
        &config(),
    );
    assert!(
        !s.contains("element ip podway service-ips"),
        "the cluster IP still points at the same chain:\n{s}"
    );
    assert!(s.contains("flush chain ip podway service-ns/a/tcp/\n"));
    assert!(s.contains("add chain ip podway endpoint-ns/a/tcp/__10.244.0.6/8080\n"));
    assert!(
        !s.contains("add chain ip podway endpoint-ns/a/tcp/__10.244.0.5/8080\n"),
        "existing chains are flushed, not added"
    );
    assert!(s.contains("numgen random mod 2"));
    assert!(!s.contains("/b/"));
}

#[test]
fn deleting_a_service_removes_its_elements_then_its_chains() {
    let s = incremental(&[change(vec![port("a", 1, &[5])], vec![])], &config());
    let element = line_of(&s, "delete element ip podway service-ips { 10.96.0.1 . tcp . 80 }");
    let flush = line_of(&s, "flush chain ip podway endpoint-ns/a/tcp/__10.244.0.5/8080");
    let delete = line_of(&s, "delete chain ip podway endpoint-ns/a/tcp/__10.244.0.5/8080");
    assert!(element < delete && flush < delete);
    assert!(!s.contains("add "), "{s}");
}

#[test]
fn a_service_gaining_its_first_endpoint_swaps_reject_for_its_chain() {
    let s = incremental(&[change(vec![port("a", 1, &[])], vec![port("a", 1, &[5])])], &config());
    assert!(
        line_of(
            &s,
            "delete element ip podway no-endpoint-services { 10.96.0.1 . tcp . 80 }"
        ) < line_of(&s, "add chain")
    );
    assert!(s.ends_with("add element ip podway service-ips { 10.96.0.1 . tcp . 80 : goto service-ns/a/tcp/ }\n"));
}

#[test]
fn a_changed_affinity_timeout_recreates_the_set_after_its_users_are_flushed() {
    let mut before = port("a", 1, &[5]);
    before.affinity_timeout = Some(60);
    let mut after = before.clone();
    after.affinity_timeout = Some(120);
    let s = incremental(&[change(vec![before], vec![after])], &config());
    let set = "affinity-ns/a/tcp/__10.244.0.5/8080";
    assert!(
        line_of(&s, "flush chain ip podway service-ns/a/tcp/") < line_of(&s, &format!("delete set ip podway {set}"))
    );
    assert!(line_of(&s, &format!("delete set ip podway {set}")) < line_of(&s, "timeout 120s"));
}

#[test]
fn a_change_that_renders_the_same_produces_an_empty_script() {
    let mut before = port("a", 1, &[5]);
    before.health_check_node_port = Some(32000);
    assert_eq!(
        incremental(&[change(vec![before], vec![port("a", 1, &[5])])], &config()),
        ""
    );
}

#[test]
fn removal_succeeds_whether_or_not_the_table_exists() {
    assert_eq!(removal(), "add table ip podway\ndelete table ip podway\n");
}

#[test]
fn an_update_keeps_the_counters_of_staying_endpoints_and_deletes_vanished_ones() {
    let s = incremental(
        &[change(vec![port("a", 1, &[5, 6])], vec![port("a", 1, &[5, 7])])],
        &config(),
    );
    // The staying endpoint's elements (and with them their counts) are not touched.
    assert!(!s.contains("ns/a/tcp/__10.244.0.5/8080\""), "{s}");
    assert!(s.contains("comment \"ns/a/tcp/__10.244.0.7/8080\" }\n"), "{s}");
    for set in ["endpoint-connections", "endpoint-bytes"] {
        let added: Vec<&str> = s
            .lines()
            .filter(|l| l.starts_with(&format!("add element ip podway {set} ")))
            .collect();
        assert_eq!(added.len(), 1, "{s}");
        assert!(added[0].ends_with("comment \"ns/a/tcp/__10.244.0.7/8080\" }"), "{s}");
        let deleted = s
            .lines()
            .filter(|l| l.starts_with(&format!("delete element ip podway {set} ")))
            .count();
        assert_eq!(deleted, 1, "{s}");
    }
    assert!(!s.contains("counter"), "no named counters: {s}");
}

#[test]
fn a_full_script_declares_the_counter_sets_and_counts_bytes_in_every_filter_hook() {
    let s = full(&table(vec![port("a", 1, &[5])]), &config());
    let declared = line_of(&s, "add set ip podway endpoint-bytes { type mark ; counter ; }");
    assert!(declared < line_of(&s, "add element ip podway endpoint-bytes"));
    assert!(
        line_of(&s, "add set ip podway endpoint-connections { type mark ; counter ; }")
            < line_of(&s, "add element ip podway endpoint-connections")
    );
    assert!(s.contains("comment \"ns/a/tcp/__10.244.0.5/8080\""), "{s}");
    for hook in ["filter-input", "filter-forward", "filter-output"] {
        assert!(
            s.contains(&format!(
                "add rule ip podway {hook} ct mark != 0 ct mark @endpoint-bytes\n"
            )),
            "{hook}"
        );
    }
    assert!(!s.contains("add counter"), "no named counters: {s}");
}
