//! The server on loopback, asked by the real `dig` (Debian `dnsutils`): cluster answers over
//! UDP and TCP, truncation, forwarding to an upstream (a second podway-dns server on another
//! loopback port), ExternalName chasing through it, and SERVFAIL when upstream is gone.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use podway_dns::{serve_on, Listeners, Records, RecordsHandle, Upstream};
use tokio::sync::oneshot;

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(ns.into()),
        name: Some(name.into()),
        ..ObjectMeta::default()
    }
}

fn service(ns: &str, name: &str, ip: &str, ports: &[(&str, i32)]) -> Service {
    Service {
        metadata: meta(ns, name),
        spec: Some(ServiceSpec {
            cluster_ip: Some(ip.into()),
            cluster_ips: Some(vec![ip.into()]),
            ports: Some(
                ports
                    .iter()
                    .map(|(n, p)| ServicePort {
                        name: Some(n.to_string()),
                        port: *p,
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn external(ns: &str, name: &str, target: &str) -> Service {
    Service {
        metadata: meta(ns, name),
        spec: Some(ServiceSpec {
            type_: Some("ExternalName".into()),
            external_name: Some(target.into()),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn slice(ns: &str, svc: &str, eps: &[(String, Option<&str>)], ports: &[(&str, i32)]) -> EndpointSlice {
    let mut m = meta(ns, &format!("{svc}-abc"));
    m.labels = Some(BTreeMap::from([(
        "kubernetes.io/service-name".to_string(),
        svc.to_string(),
    )]));
    EndpointSlice {
        metadata: m,
        address_type: "IPv4".into(),
        endpoints: eps
            .iter()
            .map(|(ip, host)| Endpoint {
                addresses: vec![ip.clone()],
                hostname: host.map(str::to_string),
                conditions: Some(EndpointConditions {
                    ready: Some(true),
                    ..EndpointConditions::default()
                }),
                ..Endpoint::default()
            })
            .collect(),
        ports: Some(
            ports
                .iter()
                .map(|(n, p)| EndpointPort {
                    name: Some(n.to_string()),
                    port: Some(*p),
                    ..EndpointPort::default()
                })
                .collect(),
        ),
    }
}

fn cluster_records(extra: Vec<Service>) -> Records {
    let mut services = vec![
        service("default", "web", "10.96.0.5", &[("http", 80)]),
        service("default", "db", "None", &[("pg", 5432)]),
        service("default", "big", "None", &[]),
        external("default", "search", "web.default.svc.upstream.test"),
    ];
    services.extend(extra);
    let db = vec![
        ("10.244.1.10".to_string(), Some("db-0")),
        ("10.244.2.11".to_string(), Some("db-1")),
    ];
    let big: Vec<(String, Option<&str>)> = (0..60).map(|i| (format!("10.244.9.{i}"), None)).collect();
    let slices = vec![
        slice("default", "db", &db, &[("pg", 5432)]),
        slice("default", "big", &big, &[]),
    ];
    Records::build(&services, &slices, "cluster.local")
}

/// A server running until dropped.
struct Server {
    addr: SocketAddr,
    handle: RecordsHandle,
    _stop: oneshot::Sender<()>,
}

async fn start(records: Records, upstream: Upstream) -> Server {
    let listeners = Listeners::bind(&["127.0.0.1:0".parse().unwrap()])
        .await
        .expect("bind loopback");
    let addr = listeners.local_addrs()[0];
    let handle = RecordsHandle::new(records);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve_on(listeners, handle.clone(), upstream, async move {
        let _ = stopped.await;
    }));
    Server {
        addr,
        handle,
        _stop: stop,
    }
}

/// What dig printed, picked apart.
#[derive(Debug)]
struct Dig {
    status: String,
    flags: Vec<String>,
    answers: Vec<String>,
}

impl Dig {
    /// Answer lines as "name ttl type data" with single spaces.
    fn answer_data(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .answers
            .iter()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                format!("{} {} {} {}", f[0], f[1], f[3], f[4..].join(" "))
            })
            .collect();
        v.sort();
        v
    }
}

async fn dig(server: SocketAddr, args: &[&str]) -> Dig {
    let out = tokio::process::Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "+time=3", "+tries=1"])
        .args(args)
        .output()
        .await
        .expect("dig runs (Debian package dnsutils; scripts/install-deps.sh test installs it)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let status = text
        .lines()
        .find_map(|l| l.split("status: ").nth(1))
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("no status in dig output:\n{text}"))
        .to_string();
    let flags = text
        .lines()
        .find_map(|l| l.strip_prefix(";; flags: "))
        .and_then(|s| s.split(';').next())
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let answers = text
        .split(";; ANSWER SECTION:\n")
        .nth(1)
        .map(|s| {
            s.lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Dig { status, flags, answers }
}

#[tokio::test]
async fn dig_gets_a_service_address_over_udp_and_tcp() {
    let server = start(cluster_records(vec![]), Upstream::new(vec![])).await;
    for transport in ["+notcp", "+tcp"] {
        let d = dig(server.addr, &[transport, "web.default.svc.cluster.local", "A"]).await;
        assert_eq!(d.status, "NOERROR", "{transport}");
        assert!(d.flags.contains(&"aa".to_string()), "{transport}: {:?}", d.flags);
        assert_eq!(
            d.answer_data(),
            ["web.default.svc.cluster.local. 5 A 10.96.0.5"],
            "{transport}"
        );
    }
}

#[tokio::test]
async fn dig_gets_every_endpoint_of_a_headless_service_and_each_by_hostname() {
    let server = start(cluster_records(vec![]), Upstream::new(vec![])).await;
    let d = dig(server.addr, &["db.default.svc.cluster.local", "A"]).await;
    assert_eq!(
        d.answer_data(),
        [
            "db.default.svc.cluster.local. 5 A 10.244.1.10",
            "db.default.svc.cluster.local. 5 A 10.244.2.11"
        ]
    );
    let one = dig(server.addr, &["db-1.db.default.svc.cluster.local", "A"]).await;
    assert_eq!(
        one.answer_data(),
        ["db-1.db.default.svc.cluster.local. 5 A 10.244.2.11"]
    );
}

#[tokio::test]
async fn dig_gets_srv_for_named_ports() {
    let server = start(cluster_records(vec![]), Upstream::new(vec![])).await;
    let d = dig(server.addr, &["_http._tcp.web.default.svc.cluster.local", "SRV"]).await;
    assert_eq!(
        d.answer_data(),
        ["_http._tcp.web.default.svc.cluster.local. 5 SRV 0 100 80 web.default.svc.cluster.local."]
    );
    let headless = dig(server.addr, &["_pg._tcp.db.default.svc.cluster.local", "SRV"]).await;
    assert_eq!(
        headless.answer_data(),
        [
            "_pg._tcp.db.default.svc.cluster.local. 5 SRV 0 50 5432 db-0.db.default.svc.cluster.local.",
            "_pg._tcp.db.default.svc.cluster.local. 5 SRV 0 50 5432 db-1.db.default.svc.cluster.local.",
        ]
    );
}

#[tokio::test]
async fn dig_gets_ptr_for_service_and_endpoint_addresses() {
    let server = start(cluster_records(vec![]), Upstream::new(vec![])).await;
    let svc = dig(server.addr, &["-x", "10.96.0.5"]).await;
    assert_eq!(
        svc.answer_data(),
        ["5.0.96.10.in-addr.arpa. 5 PTR web.default.svc.cluster.local."]
    );
    let ep = dig(server.addr, &["-x", "10.244.1.10"]).await;
    assert_eq!(
        ep.answer_data(),
        ["10.1.244.10.in-addr.arpa. 5 PTR db-0.db.default.svc.cluster.local."]
    );
}

#[tokio::test]
async fn dig_gets_nxdomain_for_a_missing_service_and_nodata_for_a_missing_type() {
    let server = start(cluster_records(vec![]), Upstream::new(vec![])).await;
    let nx = dig(server.addr, &["nope.default.svc.cluster.local", "A"]).await;
    assert_eq!((nx.status.as_str(), nx.answers.len()), ("NXDOMAIN", 0));
    let nodata = dig(server.addr, &["web.default.svc.cluster.local", "AAAA"]).await;
    assert_eq!((nodata.status.as_str(), nodata.answers.len()), ("NOERROR", 0));
}

#[tokio::test]
async fn a_large_udp_answer_is_truncated_and_dig_retries_over_tcp() {
    let server = start(cluster_records(vec![]), Upstream::new(vec![])).await;
    let cut = dig(
        server.addr,
        &["+noedns", "+ignore", "big.default.svc.cluster.local", "A"],
    )
    .await;
    assert!(cut.flags.contains(&"tc".to_string()), "{:?}", cut.flags);
    let full = dig(server.addr, &["+noedns", "big.default.svc.cluster.local", "A"]).await;
    assert_eq!(full.answers.len(), 60);
}

#[tokio::test]
async fn a_service_stored_in_a_new_snapshot_resolves_on_the_next_query() {
    let server = start(cluster_records(vec![]), Upstream::new(vec![])).await;
    let before = dig(server.addr, &["fresh.default.svc.cluster.local", "A"]).await;
    assert_eq!(before.status, "NXDOMAIN");
    server.handle.store(cluster_records(vec![service(
        "default",
        "fresh",
        "10.96.0.77",
        &[("http", 80)],
    )]));
    let after = dig(server.addr, &["fresh.default.svc.cluster.local", "A"]).await;
    assert_eq!(after.answer_data(), ["fresh.default.svc.cluster.local. 5 A 10.96.0.77"]);
}

/// An upstream that knows `web.default.svc.upstream.test`.
async fn upstream_server() -> Server {
    let svc = service("default", "web", "192.0.2.80", &[("http", 80)]);
    start(Records::build(&[svc], &[], "upstream.test"), Upstream::new(vec![])).await
}

#[tokio::test]
async fn names_outside_the_cluster_are_forwarded_upstream_over_udp_and_tcp() {
    let up = upstream_server().await;
    let server = start(cluster_records(vec![]), Upstream::new(vec![up.addr])).await;
    for transport in ["+notcp", "+tcp"] {
        let d = dig(server.addr, &[transport, "web.default.svc.upstream.test", "A"]).await;
        assert_eq!(
            d.answer_data(),
            ["web.default.svc.upstream.test. 5 A 192.0.2.80"],
            "{transport}"
        );
    }
    // Cluster names are never forwarded, even when the upstream would answer them.
    let nx = dig(server.addr, &["web.default.svc.upstream.test.cluster.local", "A"]).await;
    assert_eq!(nx.status, "NXDOMAIN");
}

#[tokio::test]
async fn an_external_name_outside_the_cluster_is_followed_through_upstream() {
    let up = upstream_server().await;
    let server = start(cluster_records(vec![]), Upstream::new(vec![up.addr])).await;
    let cname = dig(server.addr, &["search.default.svc.cluster.local", "CNAME"]).await;
    assert_eq!(
        cname.answer_data(),
        ["search.default.svc.cluster.local. 5 CNAME web.default.svc.upstream.test."]
    );
    let a = dig(server.addr, &["search.default.svc.cluster.local", "A"]).await;
    assert_eq!(
        a.answer_data(),
        [
            "search.default.svc.cluster.local. 5 CNAME web.default.svc.upstream.test.",
            "web.default.svc.upstream.test. 5 A 192.0.2.80",
        ]
    );
}

#[tokio::test]
async fn no_answering_upstream_gives_servfail_quickly() {
    // A port nobody listens on: the refusal comes back at once.
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    // A socket that never answers: the try timeout applies.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut upstream = Upstream::new(vec![closed, silent.local_addr().unwrap()]);
    upstream.try_timeout = Duration::from_millis(300);
    let server = start(cluster_records(vec![]), upstream).await;
    let started = Instant::now();
    let d = dig(server.addr, &["example.invalid", "A"]).await;
    assert_eq!(d.status, "SERVFAIL");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn parallel_a_and_aaaa_queries_from_one_socket_are_both_answered() {
    let server = start(cluster_records(vec![]), Upstream::new(vec![])).await;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.connect(server.addr).await.unwrap();
    // What glibc sends: the A and AAAA questions back to back from one port, different ids.
    for (id, qtype) in [(0x0101u16, 1u16), (0x0202, 28)] {
        let mut q = id.to_be_bytes().to_vec();
        q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        for label in "web.default.svc.cluster.local".split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        sock.send(&q).await.unwrap();
    }
    let mut ids = Vec::new();
    let mut buf = [0u8; 512];
    for _ in 0..2 {
        let n = tokio::time::timeout(Duration::from_secs(1), sock.recv(&mut buf))
            .await
            .expect("answer")
            .unwrap();
        assert!(n >= 12);
        ids.push(u16::from_be_bytes([buf[0], buf[1]]));
    }
    ids.sort();
    assert_eq!(ids, [0x0101, 0x0202]);
}
