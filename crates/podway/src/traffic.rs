//! `podway traffic svc/NAME [-n NS] [--watch]`: which endpoint of a Service served how many
//! connections and bytes, and the path a request takes to get there.
//!
//! Every node's nftables proxy counts what it sent to each endpoint (see the nftables README in
//! the proxy crate); this reads those counters inside every node's network namespace (as
//! `podway node ssh` runs commands there), sums them per endpoint, and joins them with the
//! Service's EndpointSlices for pod and node names. Nodes on the userspace proxy count nothing.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::ListParams;
use kube::Api;
use podway_proxy::nftables::counters::{self, EndpointTraffic};
use podway_proxy::nftables::names::service_port_base;
use podway_proxy::{Protocol, ServicePortName, ServiceRef};

/// `podway traffic`'s arguments.
#[derive(clap::Args)]
pub struct TrafficArgs {
    /// The Service: `svc/NAME`, `service/NAME`, `services/NAME` or `NAME`.
    pub service: String,
    /// Its namespace.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Refresh every second until Ctrl-C.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// The cluster's data directory.
    #[arg(long, env = "PODWAY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: TrafficArgs) -> Result<()> {
    let name = service_name(&args.service)?;
    let dir = crate::up::data_dir(args.data_dir.clone());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let client = client(&dir.join("kubeconfig")).await?;
        if !args.watch {
            print!("{}", snapshot(&client, &dir, &args.namespace, &name).await?);
            return Ok(());
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(()),
                _ = tick.tick() => {
                    let text = snapshot(&client, &dir, &args.namespace, &name).await?;
                    // Home and clear, then the new table: a steady picture like `watch`.
                    print!("\x1b[H\x1b[2J{text}");
                }
            }
        }
    })
}

fn service_name(arg: &str) -> Result<String> {
    let name = match arg.split_once('/') {
        Some(("svc" | "service" | "services", name)) => name,
        Some((kind, _)) => return Err(anyhow!("podway traffic reads Services, not {kind}; use svc/NAME")),
        None => arg,
    };
    if name.is_empty() {
        return Err(anyhow!("a Service name is required: podway traffic svc/NAME"));
    }
    Ok(name.to_string())
}

async fn client(kubeconfig: &Path) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).with_context(|| {
        format!(
            "{}: is a cluster running there? Run `podway up` first",
            kubeconfig.display()
        )
    })?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

async fn snapshot(client: &kube::Client, dir: &Path, namespace: &str, name: &str) -> Result<String> {
    let svc = Api::<Service>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await?
        .ok_or_else(|| anyhow!("services \"{name}\" not found in namespace \"{namespace}\""))?;
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={name}")))
        .await?
        .items;
    let (node_ips, counted) = read_nodes(dir)?;
    Ok(render(&svc, &slices, &counted, &node_ips))
}

/// The node IPs, and the counters of every node summed per endpoint. A node whose counters
/// cannot be read (stopped, or on the userspace proxy) is reported on stderr and skipped.
fn read_nodes(dir: &Path) -> Result<(Vec<Ipv4Addr>, Vec<EndpointTraffic>)> {
    let layout = crate::nodes::load_layout(dir)?;
    let plan = podway_agent::network::NetworkPlan::new(&layout).map_err(|e| anyhow!("{e}"))?;
    let node_ips: Vec<Ipv4Addr> = plan.nodes().iter().map(|n| n.ip).collect();
    let network = podway_agent::network::Network::system(plan.clone());
    let mut all = Vec::new();
    for node in plan.nodes() {
        let out = network
            .node_command(&node.name, &counters::list_command())
            .map_err(|e| anyhow!("{e}"))?
            .output();
        match out {
            Ok(out) if out.status.success() => match counters::parse(&String::from_utf8_lossy(&out.stdout)) {
                Ok(rows) => all.extend(rows),
                Err(e) => eprintln!("node {}: {e}", node.name),
            },
            Ok(out) => eprintln!(
                "node {}: no nftables counters ({})",
                node.name,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => eprintln!("node {}: cannot run nft: {e}", node.name),
        }
    }
    Ok((node_ips, sum(all)))
}

/// One row per endpoint, the counts of every node added up.
fn sum(rows: Vec<EndpointTraffic>) -> Vec<EndpointTraffic> {
    let mut by: BTreeMap<(String, Ipv4Addr, u16), EndpointTraffic> = BTreeMap::new();
    for r in rows {
        let e = by
            .entry((r.service_port.clone(), r.ip, r.port))
            .or_insert_with(|| EndpointTraffic {
                connections: 0,
                bytes: 0,
                ..r.clone()
            });
        e.connections += r.connections;
        e.bytes += r.bytes;
    }
    by.into_values().collect()
}

/// One line of the table.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    port: String,
    endpoint: String,
    pod: String,
    node: String,
    connections: u64,
    bytes: u64,
}

/// The Service port as the proxy names it, and as people read it (`http 80/TCP`).
struct Port {
    base: String,
    label: String,
    name: String,
    protocol: String,
    port: i32,
    node_port: Option<i32>,
}

fn ports(svc: &Service) -> Vec<Port> {
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    svc.spec
        .iter()
        .flat_map(|s| s.ports.iter().flatten())
        .map(|sp| {
            let protocol = sp.protocol.clone().unwrap_or_else(|| "TCP".into());
            let port_name = sp.name.clone().unwrap_or_default();
            let base = service_port_base(&ServicePortName {
                service: ServiceRef::new(ns.clone(), name.clone()),
                port_name: port_name.clone(),
                protocol: Protocol::parse(Some(&protocol)).unwrap_or(Protocol::Tcp),
            });
            let label = if port_name.is_empty() {
                format!("{}/{protocol}", sp.port)
            } else {
                format!("{port_name} {}/{protocol}", sp.port)
            };
            Port {
                base,
                label,
                name: port_name,
                protocol,
                port: sp.port,
                node_port: sp.node_port,
            }
        })
        .collect()
}

/// The table rows: every endpoint the slices list (with zero counts if nothing reached it),
/// then endpoints that were counted but are gone from the slices.
fn rows(svc: &Service, slices: &[EndpointSlice], counted: &[EndpointTraffic]) -> Vec<Row> {
    let mut out = Vec::new();
    for port in ports(svc) {
        let mut listed: BTreeMap<(Ipv4Addr, u16), (String, String)> = BTreeMap::new();
        for slice in slices {
            let Some(target) = slice.ports.iter().flatten().find(|p| {
                p.name.clone().unwrap_or_default() == port.name
                    && p.protocol.clone().unwrap_or_else(|| "TCP".into()) == port.protocol
            }) else {
                continue;
            };
            let Some(tp) = target.port.and_then(|p| u16::try_from(p).ok()) else {
                continue;
            };
            for ep in &slice.endpoints {
                let pod = ep
                    .target_ref
                    .as_ref()
                    .and_then(|r| r.name.clone())
                    .unwrap_or_else(|| "-".into());
                let node = ep.node_name.clone().unwrap_or_else(|| "-".into());
                for addr in &ep.addresses {
                    if let Ok(ip) = addr.parse::<Ipv4Addr>() {
                        listed.insert((ip, tp), (pod.clone(), node.clone()));
                    }
                }
            }
        }
        let mut counts: BTreeMap<(Ipv4Addr, u16), (u64, u64)> = BTreeMap::new();
        for c in counted.iter().filter(|c| c.service_port == port.base) {
            counts.insert((c.ip, c.port), (c.connections, c.bytes));
        }
        let mut keys: Vec<(Ipv4Addr, u16)> = listed.keys().chain(counts.keys()).copied().collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let (pod, node) = listed
                .get(&key)
                .cloned()
                .unwrap_or_else(|| ("(gone)".into(), "-".into()));
            let (connections, bytes) = counts.get(&key).copied().unwrap_or((0, 0));
            out.push(Row {
                port: port.label.clone(),
                endpoint: format!("{}:{}", key.0, key.1),
                pod,
                node,
                connections,
                bytes,
            });
        }
    }
    out
}

/// The whole picture: the table, then the path.
fn render(svc: &Service, slices: &[EndpointSlice], counted: &[EndpointTraffic], node_ips: &[Ipv4Addr]) -> String {
    let rows = rows(svc, slices, counted);
    let mut out = String::new();
    let multi_port = ports(svc).len() > 1;
    let header = ["ENDPOINT", "POD", "NODE", "CONNECTIONS", "BYTES"];
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    if multi_port {
        lines[0].insert(0, "PORT".into());
    }
    for r in &rows {
        let mut l = vec![
            r.endpoint.clone(),
            r.pod.clone(),
            r.node.clone(),
            r.connections.to_string(),
            r.bytes.to_string(),
        ];
        if multi_port {
            l.insert(0, r.port.clone());
        }
        lines.push(l);
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|i| lines.iter().map(|l| l[i].len()).max().unwrap_or(0))
        .collect();
    for l in &lines {
        let cells: Vec<String> = l.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(out, "{}", cells.join("   ").trim_end());
    }
    if rows.is_empty() {
        let _ = writeln!(out, "(no endpoints)");
    }
    out.push('\n');
    out.push_str(&path(svc, &rows, node_ips));
    out
}

/// The way in, as the tutorials draw it: client → NodePort → ClusterIP → endpoints.
fn path(svc: &Service, rows: &[Row], node_ips: &[Ipv4Addr]) -> String {
    let mut out = String::new();
    let spec = svc.spec.clone().unwrap_or_default();
    let cluster_ip = spec.cluster_ip.clone().filter(|ip| !ip.is_empty() && ip != "None");
    let lb_ips: Vec<String> = svc
        .status
        .iter()
        .flat_map(|s| s.load_balancer.iter())
        .flat_map(|lb| lb.ingress.iter().flatten())
        .filter_map(|i| i.ip.clone())
        .collect();
    let nodes: Vec<String> = node_ips.iter().map(|ip| ip.to_string()).collect();
    let name = svc.metadata.name.clone().unwrap_or_default();
    for port in ports(svc) {
        let _ = writeln!(out, "Path of svc/{name} port {}:", port.label);
        let _ = writeln!(out, "  client");
        for ip in &lb_ips {
            let _ = writeln!(out, "    ─► {ip}:{}   LoadBalancer IP", port.port);
        }
        if let Some(np) = port.node_port {
            let _ = writeln!(
                out,
                "    ─► <node-ip>:{np}   NodePort, on every node ({})",
                nodes.join(", ")
            );
        }
        match &cluster_ip {
            Some(ip) => {
                let _ = writeln!(out, "    ─► {ip}:{}   ClusterIP", port.port);
            }
            None => {
                let _ = writeln!(out, "    ─► (headless: DNS names the pods, no virtual IP)");
            }
        }
        let mine: Vec<&Row> = rows.iter().filter(|r| r.port == port.label).collect();
        let total: u64 = mine.iter().map(|r| r.connections).sum();
        if mine.is_empty() {
            let _ = writeln!(out, "    ─► no endpoints: connections are refused");
        }
        for (i, r) in mine.iter().enumerate() {
            let branch = if i + 1 == mine.len() { "└─►" } else { "├─►" };
            let share = (r.connections * 100)
                .checked_div(total)
                .map(|p| format!(", {p}%"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "       {branch} {}   pod {} on {} ({} connections{share})",
                r.endpoint, r.pod, r.node, r.connections
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc() -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"type": "NodePort", "clusterIP": "10.96.0.50",
                     "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]},
        }))
        .unwrap()
    }

    fn slice() -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": "web-abc", "namespace": "shop"},
            "addressType": "IPv4",
            "ports": [{"name": "", "port": 8080, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.244.1.5"], "nodeName": "n1", "targetRef": {"kind": "Pod", "name": "web-1"}},
                {"addresses": ["10.244.1.6"], "nodeName": "n1", "targetRef": {"kind": "Pod", "name": "web-2"}},
            ],
        }))
        .unwrap()
    }

    fn counted(ip: [u8; 4], connections: u64, bytes: u64) -> EndpointTraffic {
        EndpointTraffic {
            service_port: "shop/web/tcp/".into(),
            ip: ip.into(),
            port: 8080,
            connections,
            bytes,
        }
    }

    #[test]
    fn counts_of_every_node_add_up_per_endpoint_and_join_the_slices_pod_and_node() {
        let summed = sum(vec![counted([10, 244, 1, 5], 3, 300), counted([10, 244, 1, 5], 4, 400)]);
        let r = rows(&svc(), &[slice()], &summed);
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0],
            Row {
                port: "80/TCP".into(),
                endpoint: "10.244.1.5:8080".into(),
                pod: "web-1".into(),
                node: "n1".into(),
                connections: 7,
                bytes: 700,
            }
        );
        assert_eq!((r[1].pod.as_str(), r[1].connections), ("web-2", 0));
    }

    #[test]
    fn an_endpoint_counted_but_gone_from_the_slices_still_shows() {
        let r = rows(&svc(), &[], &[counted([10, 244, 9, 9], 2, 10)]);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].pod, "(gone)");
    }

    #[test]
    fn the_path_runs_from_the_node_port_through_the_cluster_ip_to_each_endpoint() {
        let text = render(
            &svc(),
            &[slice()],
            &[counted([10, 244, 1, 5], 3, 300), counted([10, 244, 1, 6], 1, 100)],
            &["172.30.0.2".parse().unwrap()],
        );
        let nodeport = text.find("<node-ip>:30080").expect(&text);
        let cluster = text.find("10.96.0.50:80").expect(&text);
        let endpoint = text.find("├─► 10.244.1.5:8080").expect(&text);
        assert!(nodeport < cluster && cluster < endpoint, "{text}");
        assert!(text.contains("172.30.0.2"));
        assert!(text.contains("(3 connections, 75%)"), "{text}");
        assert!(text.starts_with("ENDPOINT"), "{text}");
    }

    #[test]
    fn the_service_argument_takes_kubectl_forms_and_refuses_other_kinds() {
        assert_eq!(service_name("svc/web").unwrap(), "web");
        assert_eq!(service_name("services/web").unwrap(), "web");
        assert_eq!(service_name("web").unwrap(), "web");
        assert!(service_name("deploy/web").is_err());
        assert!(service_name("svc/").is_err());
    }
}
