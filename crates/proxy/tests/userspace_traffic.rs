//! Real packets through the userspace backend, in the same throw-away namespaces as the
//! nftables tests (`netns`): Services and EndpointSlices go through the model into a backend
//! whose runtime lives in the node namespace, and a client namespace proves the flows. Needs
//! root (CI runs as root); fails, never skips, without it.
//!
//! The flow table is the nftables one with one difference: a userspace proxy opens its own
//! connection to the endpoint, so every endpoint sees the node's address (the nftables
//! backend keeps pod sources and, with `externalTrafficPolicy: Local`, the client's).

mod netns;

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use netns::{collect_until, Net, CLIENT_IP};
use podway_proxy::{Backend, ChangeTracker, NodeContext, UserspaceBackend, UserspaceConfig};
use serde_json::{json, Value};

fn service(name: &str, cluster_ip: &str, spec: Value) -> Arc<Service> {
    let mut full = json!({"metadata": {"name": name, "namespace": "default"},
        "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                 "ports": [{"name": "p", "port": 80, "protocol": "TCP"}]}});
    for (k, v) in spec.as_object().unwrap() {
        full["spec"][k] = v.clone();
    }
    Arc::new(serde_json::from_value(full).unwrap())
}

/// A slice with endpoints `(ip, nodeName)` on target port `port`.
fn slice(service: &str, protocol: &str, port: u16, endpoints: &[(&str, &str)]) -> Arc<EndpointSlice> {
    let eps: Vec<Value> = endpoints
        .iter()
        .map(|(ip, node)| json!({"addresses": [ip], "nodeName": node, "conditions": {"ready": true}}))
        .collect();
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": format!("{service}-x"), "namespace": "default",
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "ports": [{"name": "p", "port": port, "protocol": protocol}],
            "endpoints": eps,
        }))
        .unwrap(),
    )
}

const EP1: &str = "10.250.1.2";
const EP2: &str = "10.250.2.2";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Which endpoint answered and which source it saw, from `"ep1 10.250.1.1"`.
fn parse(answer: &str) -> (String, String) {
    let (ep, peer) = answer
        .split_once(' ')
        .unwrap_or_else(|| panic!("bad answer {answer:?}"));
    (ep.to_string(), peer.to_string())
}

fn endpoints_seen(answers: &[(String, String)]) -> BTreeSet<String> {
    answers.iter().map(|(ep, _)| ep.clone()).collect()
}

/// The node's side of each endpoint's link: the address a proxied connection comes from.
fn node_side(ep: &str) -> &'static str {
    if ep == "ep1" {
        "10.250.1.1"
    } else {
        "10.250.2.1"
    }
}

/// The backend, driven from the test thread but running on a runtime whose threads live in
/// the node namespace (sockets and `ip` commands belong to the namespace of their thread).
struct Cluster {
    net: Net,
    tracker: ChangeTracker,
    backend: Arc<tokio::sync::Mutex<UserspaceBackend>>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Cluster {
    fn new(tag: &str) -> Cluster {
        let net = Net::new(&format!("us{tag}"));
        net.serve("ep1", 8080);
        net.serve("ep2", 8080);
        let rt = net.inside("node", || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime in the node namespace")
        });
        let config = UserspaceConfig::new(vec![netns::NODE_IP], "10.250.0.0/16".parse().unwrap());
        let backend = Arc::new(tokio::sync::Mutex::new(UserspaceBackend::new(config)));
        Cluster {
            net,
            tracker: ChangeTracker::new(NodeContext {
                node_name: "node".into(),
                node_ips: vec![netns::NODE_IP],
            }),
            backend,
            rt: Some(rt),
        }
    }

    fn run<T: Send + 'static>(&self, f: impl std::future::Future<Output = T> + Send + 'static) -> T {
        let rt = self.rt.as_ref().unwrap();
        rt.block_on(rt.spawn(f)).expect("node task")
    }

    fn full(&mut self, services: &[Arc<Service>], slices: &[Arc<EndpointSlice>]) {
        self.tracker.observe(services, slices);
        let (backend, table) = (self.backend.clone(), self.tracker.table().clone());
        self.run(async move { backend.lock().await.sync_full(&table).await.map_err(|e| e.to_string()) })
            .expect("full sync");
    }

    fn update(&mut self, services: &[Arc<Service>], slices: &[Arc<EndpointSlice>]) {
        let changes = self.tracker.observe(services, slices);
        assert!(!changes.is_empty(), "the update changes something");
        let (backend, table) = (self.backend.clone(), self.tracker.table().clone());
        self.run(async move {
            backend
                .lock()
                .await
                .sync_changes(&table, &changes)
                .await
                .map_err(|e| e.to_string())
        })
        .expect("incremental sync");
    }

    fn cleanup(&self) {
        let backend = self.backend.clone();
        self.run(async move { backend.lock().await.cleanup().await.map_err(|e| e.to_string()) })
            .expect("cleanup");
    }

    /// The service addresses on the node's `lo`.
    fn lo_addresses(&self) -> String {
        self.net.exec(
            "node",
            &["ip", "-4", "-o", "addr", "show", "dev", "lo", "label", "lo:pwsvc"],
        )
    }

    /// TCP answers from `from` to `dst` until every one of `want` answered (at most 200 tries).
    fn tcp_spread(&self, from: &str, dst: &str, want: usize) -> Vec<(String, String)> {
        collect_until(
            200,
            || {
                parse(
                    &self
                        .net
                        .tcp(from, addr(dst))
                        .unwrap_or_else(|e| panic!("{from} -> {dst}: {e}")),
                )
            },
            |seen| endpoints_seen(seen).len() >= want,
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The runtime goes first, closing every socket; the namespaces (and `lo` with its
        // addresses) go with `net`.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn base_objects() -> (Vec<Arc<Service>>, Vec<Arc<EndpointSlice>>) {
    let both = [(EP1, "node"), (EP2, "other")];
    let services = vec![
        service(
            "web",
            "10.251.0.10",
            json!({"type": "NodePort", "ports": [{"name": "p", "port": 80, "nodePort": 30080}]}),
        ),
        service(
            "empty",
            "10.251.0.11",
            json!({"type": "NodePort", "ports": [{"name": "p", "port": 80, "nodePort": 30081}]}),
        ),
        service(
            "dns",
            "10.251.0.12",
            json!({"ports": [{"name": "p", "port": 53, "protocol": "UDP"}]}),
        ),
        service("sticky", "10.251.0.13", json!({"sessionAffinity": "ClientIP"})),
        service(
            "local",
            "10.251.0.14",
            json!({"type": "NodePort", "externalTrafficPolicy": "Local", "ports": [{"name": "p", "port": 80, "nodePort": 30082}]}),
        ),
        service("self", "10.251.0.15", json!({})),
    ];
    let slices = vec![
        slice("web", "TCP", 8080, &both),
        slice("dns", "UDP", 8080, &both),
        slice("sticky", "TCP", 8080, &both),
        slice("local", "TCP", 8080, &both),
        slice("self", "TCP", 8080, &[(EP1, "node")]),
    ];
    (services, slices)
}

#[test]
fn service_flows_reach_the_expected_endpoints_from_the_node() {
    let mut c = Cluster::new("flows");
    let (services, slices) = base_objects();
    c.full(&services, &slices);

    // The flow battery: source, destination, endpoints that must all answer. Every endpoint
    // sees the node's side of its link (see the file comment).
    let flows: [(&str, &str, &str, &[&str]); 5] = [
        (
            "cluster IP from outside the pod network",
            "client",
            "10.251.0.10:80",
            &["ep1", "ep2"],
        ),
        (
            "NodePort with policy Cluster",
            "client",
            "192.0.2.1:30080",
            &["ep1", "ep2"],
        ),
        ("NodePort with policy Local", "client", "192.0.2.1:30082", &["ep1"]),
        ("cluster IP from a pod", "ep2", "10.251.0.15:80", &["ep1"]),
        (
            "a pod reaching itself through its Service (hairpin)",
            "ep1",
            "10.251.0.15:80",
            &["ep1"],
        ),
    ];
    for (what, from, dst, endpoints) in flows {
        let answers = c.tcp_spread(from, dst, endpoints.len());
        let want: BTreeSet<String> = endpoints.iter().map(|s| s.to_string()).collect();
        assert_eq!(endpoints_seen(&answers), want, "{what}: endpoints");
        for (ep, peer) in &answers {
            assert_eq!(peer, node_side(ep), "{what}: source seen by {ep}");
            assert_ne!(
                peer,
                &CLIENT_IP.to_string(),
                "{what}: no TPROXY, so never the client's own"
            );
        }
    }
    for _ in 0..20 {
        let (ep, _) = parse(&c.net.tcp("client", addr("192.0.2.1:30082")).unwrap());
        assert_eq!(ep, "ep1", "externalTrafficPolicy Local never picks the remote endpoint");
    }
    // Round-robin: ten connections split five and five.
    let answers: Vec<String> = (0..10)
        .map(|_| parse(&c.net.tcp("client", addr("10.251.0.10:80")).unwrap()).0)
        .collect();
    assert_eq!(answers.iter().filter(|e| *e == "ep1").count(), 5, "{answers:?}");
}

#[test]
fn a_service_without_endpoints_refuses_at_once_on_cluster_ip_and_node_port() {
    let mut c = Cluster::new("refuse");
    let (services, slices) = base_objects();
    c.full(&services, &slices);
    for dst in ["10.251.0.11:80", "192.0.2.1:30081"] {
        let start = Instant::now();
        let err = c.net.tcp("client", addr(dst)).expect_err("no endpoints must refuse");
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{dst}: {err}");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{dst} refused only after {:?}",
            start.elapsed()
        );
    }
}

#[test]
fn udp_reaches_both_endpoints_and_affinity_sticks_to_one() {
    let mut c = Cluster::new("udpaff");
    let (services, slices) = base_objects();
    c.full(&services, &slices);
    // Net::udp reads through a connected socket: an answer proves it came from the service IP.
    let answers = collect_until(
        200,
        || parse(&c.net.udp("client", addr("10.251.0.12:53")).expect("udp answer")),
        |seen| endpoints_seen(seen).len() == 2,
    );
    assert_eq!(endpoints_seen(&answers).len(), 2, "UDP spreads over both endpoints");

    let first = parse(&c.net.tcp("client", addr("10.251.0.13:80")).unwrap()).0;
    for _ in 0..30 {
        assert_eq!(
            parse(&c.net.tcp("client", addr("10.251.0.13:80")).unwrap()).0,
            first,
            "ClientIP affinity sticks"
        );
    }
}

/// A TCP server in `ns` that echoes every connection until it closes.
fn serve_echo(net: &Net, ns: &str, port: u16) {
    let l = net.inside(ns, move || TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).unwrap());
    thread::spawn(move || {
        for mut conn in l.incoming().flatten() {
            thread::spawn(move || {
                let mut buf = [0u8; 256];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
}

fn echo(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).unwrap();
    let mut buf = vec![0u8; msg.len()];
    s.read_exact(&mut buf).unwrap();
    buf
}

#[test]
fn incremental_updates_move_traffic_and_keep_established_connections() {
    let mut c = Cluster::new("incr");
    serve_echo(&c.net, "ep1", 9000);
    let (mut services, mut slices) = base_objects();
    services.push(service("later", "10.251.0.16", json!({})));
    services.push(service("echo", "10.251.0.17", json!({})));
    slices.push(slice("echo", "TCP", 9000, &[(EP1, "node")]));
    c.full(&services, &slices);
    let err = c.net.tcp("client", addr("10.251.0.16:80")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    let mut open = c.net.inside("client", || {
        let s = TcpStream::connect_timeout(&addr("10.251.0.17:80"), Duration::from_secs(2)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s
    });
    assert_eq!(echo(&mut open, b"before"), b"before");

    // The Service gains an endpoint: its listener opens.
    slices.push(slice("later", "TCP", 8080, &[(EP2, "other")]));
    c.update(&services, &slices);
    assert_eq!(parse(&c.net.tcp("client", addr("10.251.0.16:80")).unwrap()).0, "ep2");

    // web loses ep2: every new connection lands on ep1.
    slices[0] = slice("web", "TCP", 8080, &[(EP1, "node")]);
    c.update(&services, &slices);
    for _ in 0..20 {
        assert_eq!(parse(&c.net.tcp("client", addr("10.251.0.10:80")).unwrap()).0, "ep1");
    }

    // echo itself changes (a second endpoint); its established connection keeps running.
    let echo_slice = slices
        .iter()
        .position(|s| s.metadata.name.as_deref() == Some("echo-x"))
        .unwrap();
    slices[echo_slice] = slice("echo", "TCP", 9000, &[(EP1, "node"), (EP2, "other")]);
    c.update(&services, &slices);
    assert_eq!(echo(&mut open, b"after"), b"after");

    // The Service goes away: its address leaves lo and no longer answers; the rest still does.
    services.retain(|s| s.metadata.name.as_deref() != Some("later"));
    slices.retain(|s| s.metadata.name.as_deref() != Some("later-x"));
    c.update(&services, &slices);
    assert!(!c.lo_addresses().contains("10.251.0.16/32"), "{}", c.lo_addresses());
    assert!(c.net.tcp("client", addr("10.251.0.16:80")).is_err());
    assert_eq!(c.tcp_spread("client", "10.251.0.13:80", 1).len(), 1);

    // Cleanup leaves no service address and no listener behind.
    c.cleanup();
    assert_eq!(c.lo_addresses().trim(), "");
    let err = c.net.tcp("client", addr("192.0.2.1:30080")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn a_udp_client_whose_endpoint_leaves_is_answered_by_another_on_its_next_datagram() {
    let mut c = Cluster::new("udpgone");
    let (services, mut slices) = base_objects();
    c.full(&services, &slices);
    let client = c.net.inside("client", || {
        let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        s.connect("10.251.0.12:53").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s
    });
    let ask = || {
        client.send(b"ping").unwrap();
        let mut buf = [0u8; 64];
        let n = client.recv(&mut buf).unwrap();
        parse(&String::from_utf8_lossy(&buf[..n])).0
    };
    let first = ask();
    assert_eq!(ask(), first, "one client address keeps its session");
    let (keep, other) = if first == "ep1" { (EP2, "ep2") } else { (EP1, "ep1") };
    slices[1] = slice("dns", "UDP", 8080, &[(keep, "node")]);
    c.update(&services, &slices);
    assert_eq!(ask(), other);
}
