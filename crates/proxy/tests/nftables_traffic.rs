//! Real packets through the nftables backend: Services and EndpointSlices go through the
//! model and the renderer into a node namespace of our own, and a client namespace proves
//! the flows. Needs root (CI runs as root); fails, never skips, without it.

mod netns;

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use netns::{collect_until, Net, CLIENT_IP};
use podway_proxy::nftables::{script, Nft, NftError, RenderConfig};
use podway_proxy::{ChangeTracker, NodeContext};
use serde_json::{json, Value};

/// Applies scripts inside the test's node namespace.
struct NodeNft(String);

#[async_trait]
impl Nft for NodeNft {
    async fn apply(&self, script: &str) -> Result<(), NftError> {
        podway_proxy::nftables::NftCommand::with_prefix("ip", ["netns", "exec", self.0.as_str(), "nft"])
            .apply(script)
            .await
    }
}

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

/// Which endpoint answered and which source it saw, from `"ep1 192.0.2.2"`.
fn parse(answer: &str) -> (String, String) {
    let (ep, peer) = answer
        .split_once(' ')
        .unwrap_or_else(|| panic!("bad answer {answer:?}"));
    (ep.to_string(), peer.to_string())
}

fn endpoints_seen(answers: &[(String, String)]) -> BTreeSet<String> {
    answers.iter().map(|(ep, _)| ep.clone()).collect()
}

struct Cluster {
    net: Net,
    tracker: ChangeTracker,
    nft: NodeNft,
    config: RenderConfig,
}

impl Cluster {
    fn new(tag: &str) -> Cluster {
        let net = Net::new(tag);
        net.serve("ep1", 8080);
        net.serve("ep2", 8080);
        let nft = NodeNft(net.ns("node"));
        Cluster {
            net,
            tracker: ChangeTracker::new(NodeContext {
                node_name: "node".into(),
                node_ips: vec![netns::NODE_IP],
            }),
            nft,
            config: RenderConfig {
                pod_cidr: "10.250.0.0/16".parse().unwrap(),
            },
        }
    }

    async fn full(&mut self, services: &[Arc<Service>], slices: &[Arc<EndpointSlice>]) {
        self.tracker.observe(services, slices);
        self.nft
            .apply(&script::full(self.tracker.table(), &self.config))
            .await
            .expect("full script applies");
    }

    async fn update(&mut self, services: &[Arc<Service>], slices: &[Arc<EndpointSlice>]) -> String {
        let changes = self.tracker.observe(services, slices);
        let s = script::incremental(&changes, &self.config);
        self.nft
            .apply(&s)
            .await
            .unwrap_or_else(|e| panic!("incremental script fails: {e}\n{s}"));
        s
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

#[tokio::test(flavor = "multi_thread")]
async fn service_flows_reach_the_expected_endpoints_with_the_expected_source() {
    let mut c = Cluster::new("flows");
    let (services, slices) = base_objects();
    c.full(&services, &slices).await;
    let node_side = |ep: &str| if ep == "ep1" { "10.250.1.1" } else { "10.250.2.1" };

    // The flow battery: source, destination, endpoints that must all answer, what source they see.
    struct Flow {
        what: &'static str,
        from: &'static str,
        dst: &'static str,
        endpoints: &'static [&'static str],
        masquerade: bool,
    }
    let flows = [
        Flow {
            what: "cluster IP from outside the pod network",
            from: "client",
            dst: "10.251.0.10:80",
            endpoints: &["ep1", "ep2"],
            masquerade: true,
        },
        Flow {
            what: "NodePort with policy Cluster",
            from: "client",
            dst: "192.0.2.1:30080",
            endpoints: &["ep1", "ep2"],
            masquerade: true,
        },
        Flow {
            what: "NodePort with policy Local",
            from: "client",
            dst: "192.0.2.1:30082",
            endpoints: &["ep1"],
            masquerade: false,
        },
        Flow {
            what: "cluster IP from a pod keeps the pod's source",
            from: "ep2",
            dst: "10.251.0.15:80",
            endpoints: &["ep1"],
            masquerade: false,
        },
        Flow {
            what: "a pod reaching itself through its Service (hairpin)",
            from: "ep1",
            dst: "10.251.0.15:80",
            endpoints: &["ep1"],
            masquerade: true,
        },
    ];
    for f in &flows {
        let answers = c.tcp_spread(f.from, f.dst, f.endpoints.len());
        let want: BTreeSet<String> = f.endpoints.iter().map(|s| s.to_string()).collect();
        assert_eq!(endpoints_seen(&answers), want, "{}: endpoints", f.what);
        for (ep, peer) in &answers {
            let client_ip = match f.from {
                "client" => CLIENT_IP.to_string(),
                "ep1" => EP1.to_string(),
                _ => EP2.to_string(),
            };
            let expected = if f.masquerade {
                node_side(ep).to_string()
            } else {
                client_ip
            };
            assert_eq!(peer, &expected, "{}: source seen by {ep}", f.what);
        }
    }
    for _ in 0..20 {
        let (ep, _) = parse(&c.net.tcp("client", addr("192.0.2.1:30082")).unwrap());
        assert_eq!(ep, "ep1", "externalTrafficPolicy Local never picks the remote endpoint");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_without_endpoints_refuses_at_once_on_cluster_ip_and_node_port() {
    let mut c = Cluster::new("refuse");
    let (services, slices) = base_objects();
    c.full(&services, &slices).await;
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

#[tokio::test(flavor = "multi_thread")]
async fn udp_reaches_both_endpoints_and_affinity_sticks_to_one() {
    let mut c = Cluster::new("udpaff");
    let (services, slices) = base_objects();
    c.full(&services, &slices).await;
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

#[tokio::test(flavor = "multi_thread")]
async fn incremental_updates_move_traffic_without_touching_other_services() {
    let mut c = Cluster::new("incr");
    let (mut services, mut slices) = base_objects();
    services.push(service("later", "10.251.0.16", json!({})));
    c.full(&services, &slices).await;
    let err = c.net.tcp("client", addr("10.251.0.16:80")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);

    // The Service gains an endpoint: reject gives way to its chain.
    slices.push(slice("later", "TCP", 8080, &[(EP2, "other")]));
    let s = c.update(&services, &slices).await;
    assert!(!s.contains("default/web/"), "only the changed Service is touched:\n{s}");
    assert_eq!(parse(&c.net.tcp("client", addr("10.251.0.16:80")).unwrap()).0, "ep2");

    // web loses ep2: every new connection lands on ep1.
    slices[0] = slice("web", "TCP", 8080, &[(EP1, "node")]);
    c.update(&services, &slices).await;
    for _ in 0..20 {
        assert_eq!(parse(&c.net.tcp("client", addr("10.251.0.10:80")).unwrap()).0, "ep1");
    }

    // The Service goes away: its address no longer answers, the rest still does.
    services.retain(|s| s.metadata.name.as_deref() != Some("later"));
    slices.retain(|s| s.metadata.name.as_deref() != Some("later-x"));
    let s = c.update(&services, &slices).await;
    assert!(s.contains("delete chain"), "{s}");
    let listing = c.net.exec("node", &["nft", "list", "table", "ip", "podway"]);
    assert!(
        !listing.contains("default/later/"),
        "no chain of a deleted Service remains:\n{listing}"
    );
    assert!(c.net.tcp("client", addr("10.251.0.16:80")).is_err());
    assert_eq!(c.tcp_spread("client", "10.251.0.13:80", 1).len(), 1);

    // Removal leaves no podway table behind.
    c.nft.apply(&script::removal()).await.unwrap();
    let tables = c.net.exec("node", &["nft", "list", "tables"]);
    assert!(!tables.contains("podway"), "{tables}");
}

/// The counter rows of the node's table, as `podway traffic` and the metrics read them.
fn counted(c: &Cluster, service_port: &str) -> podway_proxy::nftables::counters::EndpointTraffic {
    let argv = podway_proxy::nftables::counters::list_command();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let json = c.net.exec("node", &argv);
    let rows = podway_proxy::nftables::counters::parse(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    rows.into_iter()
        .find(|r| r.service_port == service_port && r.ip.to_string() == EP1)
        .unwrap_or_else(|| panic!("no row for {service_port} in {json}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn each_endpoint_counts_its_connections_and_bytes_and_keeps_them_across_updates() {
    let mut c = Cluster::new("count");
    let (mut services, mut slices) = base_objects();
    c.full(&services, &slices).await;
    for _ in 0..10 {
        assert_eq!(parse(&c.net.tcp("client", addr("10.251.0.15:80")).unwrap()).0, "ep1");
    }
    let row = counted(&c, "default/self/tcp/p");
    assert_eq!(row.connections, 10, "{row:?}");
    // Each connection carries at least its handshake, request, answer and close both ways.
    assert!(row.bytes >= 10 * 6 * 40, "{row:?}");

    // Another Service changes: this endpoint's counts are left as they were and go on.
    services.push(service("later", "10.251.0.16", json!({})));
    slices.push(slice("later", "TCP", 8080, &[(EP2, "other")]));
    c.update(&services, &slices).await;
    for _ in 0..5 {
        c.net.tcp("client", addr("10.251.0.15:80")).unwrap();
    }
    let after = counted(&c, "default/self/tcp/p");
    assert_eq!(after.connections, 15, "{after:?}");
    assert!(after.bytes > row.bytes, "{after:?} after {row:?}");
}
