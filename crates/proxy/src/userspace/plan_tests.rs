use super::*;
use crate::model::{Endpoint, ServiceRef, TrafficPolicy};

fn ep(last: u8, local: bool, ready: bool) -> Endpoint {
    Endpoint {
        ip: Ipv4Addr::new(10, 244, 0, last),
        port: 8080,
        ready,
        serving: ready,
        terminating: false,
        node_name: Some(if local { "here" } else { "there" }.into()),
        is_local: local,
    }
}

fn port(protocol: Protocol, endpoints: Vec<Endpoint>) -> ServicePort {
    ServicePort {
        name: ServicePortName {
            service: ServiceRef::new("ns", "svc"),
            port_name: "http".into(),
            protocol,
        },
        cluster_ips: vec![Ipv4Addr::new(10, 96, 0, 5)],
        port: 80,
        node_port: Some(30080),
        load_balancer_ips: vec![Ipv4Addr::new(172, 30, 0, 200)],
        external_ips: vec![Ipv4Addr::new(198, 51, 100, 1)],
        affinity_timeout: None,
        external_policy: TrafficPolicy::Cluster,
        internal_policy: TrafficPolicy::Cluster,
        health_check_node_port: None,
        endpoints,
    }
}

fn sa(s: &str) -> SocketAddrV4 {
    s.parse().unwrap()
}

const NODES: [Ipv4Addr; 2] = [Ipv4Addr::new(172, 30, 0, 2), Ipv4Addr::new(192, 168, 1, 2)];

#[test]
fn a_port_with_endpoints_listens_on_cluster_external_and_load_balancer_ips_and_its_node_port_on_every_node_ip() {
    let b = bindings(&port(Protocol::Udp, vec![ep(1, false, true)]), &NODES);
    let got: Vec<(String, Entry)> = b.iter().map(|(k, e)| (k.addr.to_string(), *e)).collect();
    assert_eq!(
        got,
        vec![
            ("10.96.0.5:80".to_string(), Entry::ClusterIp),
            ("198.51.100.1:80".to_string(), Entry::External),
            ("172.30.0.200:80".to_string(), Entry::External),
            ("172.30.0.2:30080".to_string(), Entry::External),
            ("192.168.1.2:30080".to_string(), Entry::External),
        ]
    );
    assert!(b.iter().all(|(k, _)| k.protocol == Protocol::Udp));
}

#[test]
fn a_port_without_usable_endpoints_has_no_listener_so_the_kernel_refuses() {
    assert!(bindings(&port(Protocol::Tcp, vec![]), &NODES).is_empty());
    assert!(bindings(&port(Protocol::Tcp, vec![ep(1, true, false)]), &NODES).is_empty());
}

#[test]
fn sctp_ports_are_left_to_nftables() {
    assert!(bindings(&port(Protocol::Sctp, vec![ep(1, true, true)]), &NODES).is_empty());
}

#[test]
fn internal_policy_local_without_a_local_endpoint_closes_only_the_cluster_ip() {
    let mut p = port(Protocol::Tcp, vec![ep(1, false, true)]);
    p.internal_policy = TrafficPolicy::Local;
    let b = bindings(&p, &NODES);
    assert!(b.iter().all(|(_, e)| *e == Entry::External), "{b:?}");
    assert_eq!(b.len(), 4);
}

#[test]
fn external_policy_local_sends_outside_clients_to_local_endpoints_and_pods_anywhere() {
    let mut p = port(Protocol::Tcp, vec![ep(1, true, true), ep(2, false, true)]);
    p.external_policy = TrafficPolicy::Local;
    let r = Route::from_port(&p);
    assert_eq!(r.candidates(Entry::External, false), &[sa("10.244.0.1:8080")]);
    assert_eq!(r.candidates(Entry::External, true).len(), 2);
    assert_eq!(r.candidates(Entry::ClusterIp, false).len(), 2);
}

#[test]
fn external_policy_local_with_no_local_endpoint_still_serves_pods_on_external_addresses() {
    let mut p = port(Protocol::Tcp, vec![ep(2, false, true)]);
    p.external_policy = TrafficPolicy::Local;
    let r = Route::from_port(&p);
    assert!(r.candidates(Entry::External, false).is_empty());
    assert!(r.serves(Entry::External));
}

#[test]
fn the_first_service_port_by_name_keeps_a_contested_address() {
    let mut a = port(Protocol::Tcp, vec![ep(1, true, true)]);
    a.name.service = ServiceRef::new("ns", "a");
    let mut b = a.clone();
    b.name.service = ServiceRef::new("ns", "b");
    b.cluster_ips = vec![Ipv4Addr::new(10, 96, 0, 6)];
    let mut table = ServiceTable::new();
    table.replace_service(&b.name.service.clone(), vec![b]);
    table.replace_service(&a.name.service.clone(), vec![a]);
    let all = all_bindings(&table, &NODES);
    let owner = |s: &str| {
        all[&ListenKey {
            addr: sa(s),
            protocol: Protocol::Tcp,
        }]
            .0
            .service
            .name
            .clone()
    };
    assert_eq!(owner("198.51.100.1:80"), "a");
    assert_eq!(owner("10.96.0.6:80"), "b");
    assert_eq!(
        service_addresses(&table).len(),
        3,
        "two cluster IPs and one shared external IP"
    );
}

#[test]
fn round_robin_takes_endpoints_in_turn_and_skips_the_ones_that_failed() {
    let c = Chooser::new(Balance::RoundRobin);
    let eps = [sa("10.0.0.1:1"), sa("10.0.0.2:1"), sa("10.0.0.3:1")];
    let client = Ipv4Addr::new(1, 2, 3, 4);
    let now = Instant::now();
    let picks: Vec<_> = (0..6)
        .map(|_| c.choose(&eps, client, None, now, &[]).unwrap())
        .collect();
    assert_eq!(picks, [eps, eps].concat());
    assert_eq!(c.choose(&eps, client, None, now, &eps[..2]), Some(eps[2]));
    assert_eq!(c.choose(&eps, client, None, now, &eps), None);
}

#[test]
fn random_balance_reaches_every_endpoint() {
    let c = Chooser::new(Balance::Random);
    let eps = [sa("10.0.0.1:1"), sa("10.0.0.2:1")];
    let now = Instant::now();
    let seen: std::collections::BTreeSet<_> = (0..200)
        .map(|_| c.choose(&eps, Ipv4Addr::LOCALHOST, None, now, &[]).unwrap())
        .collect();
    assert_eq!(seen.len(), 2);
}

#[test]
fn affinity_returns_a_client_to_its_endpoint_until_the_timeout_passes_without_a_connection() {
    let c = Chooser::new(Balance::RoundRobin);
    let eps = [sa("10.0.0.1:1"), sa("10.0.0.2:1")];
    let client = Ipv4Addr::new(1, 2, 3, 4);
    let other = Ipv4Addr::new(1, 2, 3, 5);
    let t = Some(Duration::from_secs(10));
    let start = Instant::now();
    let first = c.choose(&eps, client, t, start, &[]).unwrap();
    assert_ne!(c.choose(&eps, other, t, start, &[]).unwrap(), first);
    // Each connection refreshes the timeout: 9 s steps never expire it.
    for i in 1..5 {
        let at = start + Duration::from_secs(9 * i);
        assert_eq!(c.choose(&eps, client, t, at, &[]), Some(first));
    }
    assert_eq!(first, eps[0]);
    let late = start + Duration::from_secs(36 + 11);
    // Another pick advances the turn, so a fresh choice for `client` is eps[1], not its old one.
    c.choose(&eps, other, None, late, &[]);
    assert_eq!(
        c.choose(&eps, client, t, late, &[]),
        Some(eps[1]),
        "an expired entry is chosen afresh"
    );
}

#[test]
fn affinity_to_an_endpoint_that_left_or_failed_picks_another() {
    let c = Chooser::new(Balance::RoundRobin);
    let eps = [sa("10.0.0.1:1"), sa("10.0.0.2:1")];
    let client = Ipv4Addr::new(1, 2, 3, 4);
    let t = Some(Duration::from_secs(10));
    let now = Instant::now();
    let first = c.choose(&eps, client, t, now, &[]).unwrap();
    let remaining: Vec<_> = eps.iter().copied().filter(|e| *e != first).collect();
    assert_eq!(c.choose(&remaining, client, t, now, &[]), Some(remaining[0]));
    assert_eq!(
        c.choose(&eps, client, t, now, &[]),
        Some(remaining[0]),
        "the new choice sticks"
    );
    assert_eq!(c.choose(&eps, client, t, now, &[remaining[0]]), Some(first));
}

#[test]
fn the_node_itself_pods_and_loopback_count_as_in_cluster() {
    let cidr: Ipv4Cidr = "10.244.0.0/16".parse().unwrap();
    let listener = Ipv4Addr::new(10, 96, 0, 5);
    assert!(in_cluster(Ipv4Addr::new(10, 244, 3, 3), cidr, &NODES, listener));
    assert!(in_cluster(NODES[1], cidr, &NODES, listener));
    assert!(in_cluster(listener, cidr, &NODES, listener));
    assert!(in_cluster(Ipv4Addr::LOCALHOST, cidr, &NODES, listener));
    assert!(!in_cluster(Ipv4Addr::new(172, 30, 0, 1), cidr, &NODES, listener));
}
