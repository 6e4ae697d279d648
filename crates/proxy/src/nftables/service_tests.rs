use super::*;
use crate::model::{Protocol, ServicePortName, ServiceRef, TrafficPolicy};
use std::net::Ipv4Addr;

const SVC: &str = "service-ns/web/tcp/http";
const LOCAL: &str = "local-ns/web/tcp/http";
const EXT: &str = "external-ns/web/tcp/http";
const EP1: &str = "endpoint-ns/web/tcp/http__10.244.1.5/8080";
const EP2: &str = "endpoint-ns/web/tcp/http__10.244.2.5/8080";

fn config() -> RenderConfig {
    RenderConfig {
        pod_cidr: "10.244.0.0/16".parse().unwrap(),
    }
}

/// An endpoint 10.244.<node>.5:8080; node 1 is this node.
fn ep(node: u8, ready: bool, terminating: bool) -> Endpoint {
    Endpoint {
        ip: Ipv4Addr::new(10, 244, node, 5),
        port: 8080,
        ready,
        serving: ready || terminating,
        terminating,
        node_name: Some(format!("node-{node}")),
        is_local: node == 1,
    }
}

fn web(endpoints: Vec<Endpoint>) -> ServicePort {
    ServicePort {
        name: ServicePortName {
            service: ServiceRef::new("ns", "web"),
            port_name: "http".into(),
            protocol: Protocol::Tcp,
        },
        cluster_ips: vec![Ipv4Addr::new(10, 96, 0, 10)],
        port: 80,
        node_port: None,
        load_balancer_ips: vec![],
        external_ips: vec![],
        affinity_timeout: None,
        external_policy: TrafficPolicy::Cluster,
        internal_policy: TrafficPolicy::Cluster,
        health_check_node_port: None,
        endpoints,
    }
}

fn node_port(mut p: ServicePort, policy: TrafficPolicy) -> ServicePort {
    p.node_port = Some(30080);
    p.external_policy = policy;
    p
}

fn elements(r: &PortRules) -> Vec<String> {
    r.elements
        .iter()
        .map(|e| format!("{} {} : {}", e.map, e.key, e.verdict))
        .collect()
}

fn chain<'a>(r: &'a PortRules, name: &str) -> &'a [String] {
    r.chains
        .get(name)
        .unwrap_or_else(|| panic!("no chain {name} in {:?}", r.chains.keys()))
}

#[test]
fn a_cluster_ip_spreads_over_every_ready_endpoint_and_masquerades_only_non_pod_sources() {
    let r = port_rules(&web(vec![ep(1, true, false), ep(2, true, false)]), &config());
    assert_eq!(
        elements(&r),
        vec![format!("service-ips 10.96.0.10 . tcp . 80 : goto {SVC}")]
    );
    assert_eq!(
        chain(&r, SVC),
        [
            "ip daddr 10.96.0.10 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade".to_string(),
            format!("numgen random mod 2 == 0 goto {EP1}"),
            format!("goto {EP2}"),
        ]
    );
    assert_eq!(
        chain(&r, EP2),
        [
            "ip saddr 10.244.2.5 jump mark-for-masquerade".to_string(),
            format!(
                "ct mark set {:#010x} ct mark @endpoint-connections",
                crate::nftables::names::endpoint_mark(&web(vec![]).name, "10.244.2.5".parse().unwrap(), 8080)
            ),
            "meta l4proto tcp dnat to 10.244.2.5:8080".to_string()
        ],
        "an endpoint chain masquerades the endpoint reaching itself (hairpin), counts the connection, then DNATs"
    );
    assert!(r.sets.is_empty());
}

#[test]
fn a_service_without_endpoints_is_rejected_on_every_address_and_gets_no_chain() {
    let mut p = node_port(web(vec![ep(1, false, false)]), TrafficPolicy::Cluster);
    p.external_ips = vec![Ipv4Addr::new(192, 0, 2, 7)];
    let r = port_rules(&p, &config());
    assert!(r.chains.is_empty());
    assert_eq!(
        elements(&r),
        vec![
            "no-endpoint-services 10.96.0.10 . tcp . 80 : goto reject-chain",
            "no-endpoint-services 192.0.2.7 . tcp . 80 : goto reject-chain",
            "no-endpoint-nodeports tcp . 30080 : goto reject-chain",
        ]
    );
}

#[test]
fn the_table_of_external_traffic_cases_renders_as_kube_proxy_does() {
    struct Case {
        what: &'static str,
        port: ServicePort,
        external_chain: Option<Vec<String>>,
        elements: Vec<String>,
    }
    let mut lb = web(vec![ep(2, true, false)]);
    lb.load_balancer_ips = vec![Ipv4Addr::new(172, 30, 0, 200)];
    lb.node_port = Some(30080);
    let cases = vec![
        Case {
            what: "NodePort with policy Cluster masquerades and uses every endpoint",
            port: node_port(
                web(vec![ep(1, true, false), ep(2, true, false)]),
                TrafficPolicy::Cluster,
            ),
            external_chain: Some(vec!["jump mark-for-masquerade".into(), format!("goto {SVC}")]),
            elements: vec![
                format!("service-ips 10.96.0.10 . tcp . 80 : goto {SVC}"),
                format!("service-nodeports tcp . 30080 : goto {EXT}"),
            ],
        },
        Case {
            what: "NodePort with policy Local keeps the source and uses the local endpoint",
            port: node_port(web(vec![ep(1, true, false), ep(2, true, false)]), TrafficPolicy::Local),
            external_chain: Some(vec![
                format!("ip saddr 10.244.0.0/16 goto {SVC}"),
                "fib saddr type local jump mark-for-masquerade".into(),
                format!("fib saddr type local goto {SVC}"),
                format!("goto {LOCAL}"),
            ]),
            elements: vec![
                format!("service-ips 10.96.0.10 . tcp . 80 : goto {SVC}"),
                format!("service-nodeports tcp . 30080 : goto {EXT}"),
            ],
        },
        Case {
            what: "NodePort with policy Local and no local endpoint drops outside traffic but serves pods",
            port: node_port(web(vec![ep(2, true, false)]), TrafficPolicy::Local),
            external_chain: Some(vec![
                format!("ip saddr 10.244.0.0/16 goto {SVC}"),
                "fib saddr type local jump mark-for-masquerade".into(),
                format!("fib saddr type local goto {SVC}"),
            ]),
            elements: vec![
                format!("service-ips 10.96.0.10 . tcp . 80 : goto {SVC}"),
                format!("service-nodeports tcp . 30080 : goto {EXT}"),
                "no-endpoint-nodeports tcp . 30080 : drop".into(),
            ],
        },
        Case {
            what: "a load-balancer IP enters the external chain like the NodePort",
            port: lb,
            external_chain: Some(vec!["jump mark-for-masquerade".into(), format!("goto {SVC}")]),
            elements: vec![
                format!("service-ips 10.96.0.10 . tcp . 80 : goto {SVC}"),
                format!("service-ips 172.30.0.200 . tcp . 80 : goto {EXT}"),
                format!("service-nodeports tcp . 30080 : goto {EXT}"),
            ],
        },
        Case {
            what: "internalTrafficPolicy Local without a local endpoint drops cluster-IP traffic",
            port: {
                let mut p = web(vec![ep(2, true, false)]);
                p.internal_policy = TrafficPolicy::Local;
                p
            },
            external_chain: None,
            elements: vec!["no-endpoint-services 10.96.0.10 . tcp . 80 : drop".into()],
        },
        Case {
            what: "internalTrafficPolicy Local with a local endpoint sends cluster-IP traffic to the local chain",
            port: {
                let mut p = web(vec![ep(1, true, false), ep(2, true, false)]);
                p.internal_policy = TrafficPolicy::Local;
                p
            },
            external_chain: None,
            elements: vec![format!("service-ips 10.96.0.10 . tcp . 80 : goto {LOCAL}")],
        },
    ];
    for case in cases {
        let r = port_rules(&case.port, &config());
        assert_eq!(r.chains.get(EXT).cloned(), case.external_chain, "{}", case.what);
        assert_eq!(elements(&r), case.elements, "{}", case.what);
        for e in &r.elements {
            if let Some(target) = e.verdict.strip_prefix("goto ").filter(|t| *t != "reject-chain") {
                assert!(
                    r.chains.contains_key(target),
                    "{}: element points at missing chain {target}",
                    case.what
                );
            }
        }
    }
}

#[test]
fn local_chain_lists_only_endpoints_on_this_node() {
    let r = port_rules(
        &node_port(web(vec![ep(1, true, false), ep(2, true, false)]), TrafficPolicy::Local),
        &config(),
    );
    assert_eq!(chain(&r, LOCAL), [format!("goto {EP1}")]);
}

#[test]
fn client_ip_affinity_checks_each_endpoint_set_before_the_random_pick_and_refreshes_it() {
    let mut p = web(vec![ep(1, true, false), ep(2, true, false)]);
    p.affinity_timeout = Some(60);
    let r = port_rules(&p, &config());
    let set1 = "affinity-ns/web/tcp/http__10.244.1.5/8080";
    assert_eq!(r.sets.get(set1), Some(&60));
    assert_eq!(r.sets.len(), 2);
    let svc = chain(&r, SVC);
    assert_eq!(svc[1], format!("ip saddr @{set1} goto {EP1}"));
    assert_eq!(svc[3], format!("numgen random mod 2 == 0 goto {EP1}"));
    assert_eq!(svc[4], format!("goto {EP2}"));
    assert_eq!(chain(&r, EP1)[1], format!("update @{set1} {{ ip saddr }}"));
}

#[test]
fn terminating_serving_endpoints_carry_traffic_only_when_nothing_is_ready() {
    let r = port_rules(&web(vec![ep(1, false, true), ep(2, true, false)]), &config());
    assert!(!r.chains.contains_key(EP1));
    let r = port_rules(&web(vec![ep(1, false, true)]), &config());
    assert!(r.chains.contains_key(EP1));
    assert_eq!(
        elements(&r),
        vec![format!("service-ips 10.96.0.10 . tcp . 80 : goto {SVC}")]
    );
}

#[test]
fn a_udp_port_dnats_udp() {
    let mut p = web(vec![ep(1, true, false)]);
    p.name.protocol = Protocol::Udp;
    let r = port_rules(&p, &config());
    assert_eq!(
        chain(&r, "endpoint-ns/web/udp/http__10.244.1.5/8080").last().unwrap(),
        "meta l4proto udp dnat to 10.244.1.5:8080"
    );
    assert_eq!(r.elements[0].key, "10.96.0.10 . udp . 80");
}

#[test]
fn each_endpoint_counts_connections_in_its_chain_and_bytes_through_its_mark() {
    let p = web(vec![ep(1, true, false), ep(2, true, false)]);
    let r = port_rules(&p, &config());
    let ip = "10.244.1.5".parse().unwrap();
    let mark = crate::nftables::names::endpoint_mark(&p.name, ip, 8080);
    assert_eq!(
        r.endpoint_marks.get(&mark).map(String::as_str),
        Some("ns/web/tcp/http__10.244.1.5/8080")
    );
    assert_eq!(r.endpoint_marks.len(), 2);
    let counted: Vec<String> = r
        .all_elements()
        .filter(|e| e.key == format!("{mark:#010x}"))
        .map(|e| format!("{} {}", e.map, e.body()))
        .collect();
    assert_eq!(
        counted,
        [
            format!("endpoint-connections {mark:#010x} comment \"ns/web/tcp/http__10.244.1.5/8080\""),
            format!("endpoint-bytes {mark:#010x} comment \"ns/web/tcp/http__10.244.1.5/8080\""),
        ]
    );
    let counting = format!("ct mark set {mark:#010x} ct mark @endpoint-connections");
    let rules = chain(&r, "endpoint-ns/web/tcp/http__10.244.1.5/8080");
    let at = rules.iter().position(|l| *l == counting).expect("the counting rule");
    assert!(at < rules.len() - 1, "counted before the DNAT, which ends the chain");
}

#[test]
fn the_cascade_gives_each_of_n_endpoints_one_nth_of_the_flows() {
    let eps: Vec<_> = (1..=4).map(|i| ep(i, true, false)).collect();
    let r = port_rules(&web(eps), &config());
    let svc = chain(&r, SVC);
    let picks: Vec<&String> = svc.iter().filter(|r| r.contains("goto endpoint-")).collect();
    // 1/4, then 1/3 of the rest, then 1/2 of the rest, then everything left: 1/4 each.
    assert!(picks[0].starts_with("numgen random mod 4 == 0 goto "), "{picks:?}");
    assert!(picks[1].starts_with("numgen random mod 3 == 0 goto "), "{picks:?}");
    assert!(picks[2].starts_with("numgen random mod 2 == 0 goto "), "{picks:?}");
    assert!(picks[3].starts_with("goto "), "{picks:?}");
    let share = |i: u32| (0..i).fold(1.0, |left, k| left * (1.0 - 1.0 / f64::from(4 - k))) / f64::from(4 - i);
    for i in 0..4 {
        assert!((share(i) - 0.25).abs() < 1e-12, "endpoint {i} gets {}", share(i));
    }
}
