//! The nftables bars: Services and EndpointSlices go through podway-proxy's model
//! ([`ChangeTracker`]) and renderer into the bench's node namespace, exactly as the node
//! agent's proxy does, and the client measures through them beside a direct connection.
//!
//! Programming is timed from the caches' objects to `nft -f` returning: observe (the model),
//! render, apply. `nft` runs from a thread inside the node's namespace, as in the agent.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use podway_proxy::nftables::{script, Nft, NftCommand, RenderConfig};
use podway_proxy::{ChangeTracker, NodeContext};
use serde_json::json;

use crate::services_net::{self as net, at, NsWorker, ECHO_PORT, ENDPOINTS, NODE_IP, SINK_PORT};

/// The measured Service's cluster IP.
pub const CLUSTER_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
/// Its NodePorts: echo, sink.
pub const NODE_PORTS: [u16; 2] = [30080, 30081];
/// Its ports: echo, sink.
pub const SERVICE_PORTS: [u16; 2] = [80, 81];

/// The Service everything is measured through: NodePort, two ports, both endpoints.
fn web() -> (Service, EndpointSlice) {
    let svc = json!({"metadata": {"name": "web", "namespace": "default", "resourceVersion": "1"},
        "spec": {"type": "NodePort", "clusterIP": CLUSTER_IP.to_string(), "clusterIPs": [CLUSTER_IP.to_string()],
            "ports": [
                {"name": "echo", "port": SERVICE_PORTS[0], "targetPort": ECHO_PORT, "nodePort": NODE_PORTS[0], "protocol": "TCP"},
                {"name": "sink", "port": SERVICE_PORTS[1], "targetPort": SINK_PORT, "nodePort": NODE_PORTS[1], "protocol": "TCP"}]}});
    let eps: Vec<_> = ENDPOINTS
        .iter()
        .map(|ip| json!({"addresses": [ip.to_string()], "nodeName": "node", "conditions": {"ready": true}}))
        .collect();
    let slice = json!({"metadata": {"name": "web-x", "namespace": "default", "resourceVersion": "1",
            "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"name": "echo", "port": ECHO_PORT, "protocol": "TCP"},
                  {"name": "sink", "port": SINK_PORT, "protocol": "TCP"}],
        "endpoints": eps});
    (from(svc), from(slice))
}

/// Filler Service `i` (≥ 1): a ClusterIP Service with two endpoints that nothing connects to,
/// as in kube-proxy's published 10,000-Service measurement.
fn filler(i: usize) -> (Service, EndpointSlice) {
    let name = format!("svc-{i}");
    let ip = format!("10.97.{}.{}", i / 250, i % 250 + 1);
    let svc = json!({"metadata": {"name": name, "namespace": "default", "resourceVersion": "1"},
        "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}});
    let eps: Vec<_> = (0..2)
        .map(|e| {
            json!({"addresses": [format!("10.{}.{}.{}", 128 + e, i / 250, i % 250 + 1)],
                        "nodeName": "node", "conditions": {"ready": true}})
        })
        .collect();
    let slice = json!({"metadata": {"name": format!("{name}-x"), "namespace": "default", "resourceVersion": "1",
            "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": eps});
    (from(svc), from(slice))
}

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("the bench's own objects are valid")
}

/// The objects of `n` Services (the measured one first) as the watch caches hold them.
pub fn objects(n: usize) -> (Vec<Arc<Service>>, Vec<Arc<EndpointSlice>>) {
    (0..n)
        .map(|i| if i == 0 { web() } else { filler(i) })
        .map(|(s, e)| (Arc::new(s), Arc::new(e)))
        .unzip()
}

/// The first-packet latency with `services` Services programmed.
#[derive(Debug, Clone, Default)]
pub struct FirstPacket {
    /// Services in the table.
    pub services: usize,
    /// `connect()` to the endpoint directly.
    pub direct: Vec<Duration>,
    /// `connect()` to the cluster IP.
    pub cluster_ip: Vec<Duration>,
}

/// Per target (direct, cluster IP, NodePort), samples of one measure.
pub type ByTarget = [Vec<Duration>; 3];

/// What the nftables data path measured (with the full Service count programmed).
#[derive(Debug, Clone, Default)]
pub struct DataPath {
    /// Bytes per bulk run.
    pub bytes: u64,
    /// Each bulk run's time.
    pub bulk: ByTarget,
    /// Request/response on a kept connection.
    pub kept: ByTarget,
    /// A new connection carrying one request/response.
    pub fresh: ByTarget,
}

/// What programming measured.
#[derive(Debug, Clone, Default)]
pub struct Programming {
    /// Services (× 2 endpoints) in the table.
    pub services: usize,
    /// Full syncs (observe + render + `nft -f`), each replacing the table.
    pub full: Vec<Duration>,
    /// Of which observe + render alone.
    pub render: Vec<Duration>,
    /// The full script's size.
    pub script_bytes: usize,
    /// Adding one Service live (observe + incremental render + `nft -f`), one at a time.
    pub add_one: Vec<Duration>,
}

/// Everything the nftables part measured.
#[derive(Debug, Clone, Default)]
pub struct NftResults {
    /// First-packet latency per table size.
    pub first_packet: Vec<FirstPacket>,
    /// Throughput and latency through the big table.
    pub data_path: DataPath,
    /// Programming the big table.
    pub programming: Programming,
}

/// The knobs of the nftables part.
#[derive(Debug, Clone)]
pub struct NftLoad {
    /// The big table's Service count.
    pub services: usize,
    /// Full syncs of the big table.
    pub full_runs: usize,
    /// Services added live, one at a time.
    pub adds: usize,
    /// Bytes per bulk run, and runs per target.
    pub bytes: u64,
    /// Bulk runs per target.
    pub bulk_runs: usize,
    /// Round trips per target on a kept connection; a quarter of it on new connections, and
    /// as many `connect()`s per table size.
    pub requests: usize,
}

/// Applies scripts from a thread inside the node's namespace.
struct NodeNft<'a>(&'a NsWorker);

impl NodeNft<'_> {
    /// Applies `script`; the time `nft -f` took.
    fn apply(&self, script: String) -> Result<Duration> {
        self.0.run(move || -> Result<Duration> {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let start = Instant::now();
            rt.block_on(NftCommand::new().apply(&script))?;
            Ok(start.elapsed())
        })?
    }
}

fn tracker() -> ChangeTracker {
    ChangeTracker::new(NodeContext {
        node_name: "node".into(),
        node_ips: vec![NODE_IP],
    })
}

fn render_config() -> RenderConfig {
    RenderConfig {
        pod_cidr: net::POD_CIDR.parse().expect("a valid CIDR"),
    }
}

/// A full sync of the first `n` objects from a fresh tracker: (tracker, total, observe+render,
/// script bytes).
fn full_sync(
    nft: &NodeNft,
    svcs: &[Arc<Service>],
    slices: &[Arc<EndpointSlice>],
) -> Result<(ChangeTracker, Duration, Duration, usize)> {
    let start = Instant::now();
    let mut t = tracker();
    t.observe(svcs, slices);
    let s = script::full(t.table(), &render_config());
    let rendered = start.elapsed();
    let bytes = s.len();
    let applied = nft.apply(s).context("applying the full script")?;
    Ok((t, rendered + applied, rendered, bytes))
}

/// Runs the nftables part. `node` and `client` are threads in those namespaces.
pub fn measure(node: &NsWorker, client: &NsWorker, load: &NftLoad, progress: &dyn Fn(&str)) -> Result<NftResults> {
    let nft = NodeNft(node);
    let result = measure_inner(&nft, client, load, progress);
    // The namespace goes at the end anyway; removing the table first keeps later parts clean.
    let removed = nft.apply(script::removal());
    let r = result?;
    removed.context("removing the podway table")?;
    Ok(r)
}

fn measure_inner(nft: &NodeNft, client: &NsWorker, load: &NftLoad, progress: &dyn Fn(&str)) -> Result<NftResults> {
    let (mut svcs, mut slices) = objects(load.services + load.adds);
    let extra_svcs = svcs.split_off(load.services);
    let extra_slices = slices.split_off(load.services);
    let mut out = NftResults::default();
    let echo = [at(ENDPOINTS[0], ECHO_PORT), at(CLUSTER_IP, SERVICE_PORTS[0])];
    let first_packet = |n: usize| -> Result<FirstPacket> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let connects = load.requests / 4;
        let mut got = client.run(move || net::fresh_round_trips(&echo, connects, false, deadline))??;
        Ok(FirstPacket {
            services: n,
            cluster_ip: got.pop().unwrap_or_default(),
            direct: got.pop().unwrap_or_default(),
        })
    };
    let mut sizes: Vec<usize> = [1, 1000].into_iter().filter(|&s| s < load.services).collect();
    sizes.push(load.services);
    let mut last = None;
    for &n in &sizes {
        progress(&format!("  nftables: {n} Services programmed, first-packet latency"));
        let runs = if n == load.services { load.full_runs.max(1) } else { 1 };
        for _ in 0..runs {
            let (t, total, render, bytes) = full_sync(nft, &svcs[..n], &slices[..n])?;
            if n == load.services {
                out.programming.full.push(total);
                out.programming.render.push(render);
                out.programming.script_bytes = bytes;
            }
            last = Some(t);
        }
        client.run(|| net::until_echoes(at(CLUSTER_IP, SERVICE_PORTS[0]), Duration::from_secs(5)))??;
        out.first_packet.push(first_packet(n)?);
    }
    out.programming.services = load.services;

    progress(&format!(
        "  nftables: throughput ({} x {} MB per target) and request latency",
        load.bulk_runs,
        load.bytes / 1_000_000
    ));
    out.data_path = data_path(client, load)?;

    progress(&format!(
        "  nftables: adding {} Services live, one at a time",
        load.adds
    ));
    let mut t = last.context("no full sync ran")?;
    for (svc, slice) in extra_svcs.into_iter().zip(extra_slices) {
        svcs.push(svc);
        slices.push(slice);
        let start = Instant::now();
        let changes = t.observe(&svcs, &slices);
        let s = script::incremental(&changes, &render_config());
        let rendered = start.elapsed();
        let applied = nft.apply(s).context("applying an incremental script")?;
        out.programming.add_one.push(rendered + applied);
    }
    Ok(out)
}

fn data_path(client: &NsWorker, load: &NftLoad) -> Result<DataPath> {
    let sink: [SocketAddr; 3] = [
        at(ENDPOINTS[0], SINK_PORT),
        at(CLUSTER_IP, SERVICE_PORTS[1]),
        at(NODE_IP, NODE_PORTS[1]),
    ];
    let echo: [SocketAddr; 3] = [
        at(ENDPOINTS[0], ECHO_PORT),
        at(CLUSTER_IP, SERVICE_PORTS[0]),
        at(NODE_IP, NODE_PORTS[0]),
    ];
    let mut out = DataPath {
        bytes: load.bytes,
        ..DataPath::default()
    };
    // Runs alternate between targets so a busy moment of the machine hits all of them.
    for _ in 0..load.bulk_runs {
        for (i, dst) in sink.into_iter().enumerate() {
            let bytes = load.bytes;
            out.bulk[i].push(client.run(move || net::send_bulk(dst, bytes))??);
        }
    }
    let (requests, deadline) = (load.requests, Instant::now() + Duration::from_secs(120));
    let kept = client.run(move || net::kept_round_trips(&echo, requests, deadline))??;
    let fresh = client.run(move || net::fresh_round_trips(&echo, requests / 4, true, deadline))??;
    out.kept = to_targets(kept);
    out.fresh = to_targets(fresh);
    Ok(out)
}

fn to_targets(mut v: Vec<Vec<Duration>>) -> ByTarget {
    let c = v.pop().unwrap_or_default();
    let b = v.pop().unwrap_or_default();
    let a = v.pop().unwrap_or_default();
    [a, b, c]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_measured_service_comes_first_and_every_service_has_its_own_cluster_ip() {
        let (svcs, slices) = objects(600);
        assert_eq!(svcs[0].metadata.name.as_deref(), Some("web"));
        let ips: std::collections::BTreeSet<_> = svcs
            .iter()
            .map(|s| s.spec.as_ref().unwrap().cluster_ip.clone().unwrap())
            .collect();
        assert_eq!(ips.len(), 600);
        assert_eq!(slices.len(), 600);
    }

    #[test]
    fn the_model_sees_two_endpoints_per_port_of_every_service() {
        let (svcs, slices) = objects(3);
        let mut t = tracker();
        t.observe(&svcs, &slices);
        // web has two ports, each filler one.
        assert_eq!(t.table().len(), 4);
        assert!(t.table().ports().all(|p| p.endpoints.len() == 2));
    }
}
