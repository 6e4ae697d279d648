//! Clusters with nodes, and the node bar: `podway up --nodes 3` until the API shows all three
//! Nodes Ready.
//!
//! Nodes are network namespaces with an agent each, and pods are processes that outlive their
//! agent on purpose, so a node cluster is never killed: [`NodeCluster`] always ends with
//! `podway down`, which stops the agents and pods and removes the namespaces, bridge and routes
//! (and cleans up after a `podway up` that died). `bench/run.sh` runs `podway down` on every data
//! directory again if this program is killed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cluster::{self, Podway};

/// How long a node cluster may take to have all its nodes Ready before the run fails.
const READY_DEADLINE: Duration = Duration::from_secs(60);
/// How often the Node list is polled while nodes start.
const POLL: Duration = Duration::from_millis(5);

/// A cluster name and ranges of the bench's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The cluster name (`NAME-control-plane`, `NAME-worker`, ... and the namespaces'
    /// `podway-NODE`).
    pub name: String,
    /// The node network.
    pub node_cidr: String,
    /// The pod range.
    pub pod_cidr: String,
}

impl Layout {
    /// The bench's `slot`th layout (0–9): `pwbench-LABEL`, 172.31.(230+slot).0/24 and
    /// 10.(230+slot).0.0/16. Tests use 172.31.20–219 and 10.112–211 (`Layout::unique` in
    /// tests/common), a user's `podway up` 172.30.0.0/24 and 10.244.0.0/16, and Services
    /// 10.96.0.0/12, so a bench never meets any of them.
    pub fn bench(slot: u8, label: &str) -> Layout {
        let n = 230 + u16::from(slot.min(9));
        Layout {
            name: format!("pwbench-{label}"),
            node_cidr: format!("172.31.{n}.0/24"),
            pod_cidr: format!("10.{n}.0.0/16"),
        }
    }

    /// The first node's name, the one the cluster's pods go to when it has one node.
    pub fn control_plane(&self) -> String {
        format!("{}-control-plane", self.name)
    }

    /// The network namespace of `node`, as `ip netns` names it.
    pub fn netns_path(node: &str) -> PathBuf {
        Path::new("/run/netns").join(format!("podway-{node}"))
    }

    /// `podway up` flags for `nodes` nodes on this layout.
    fn flags(&self, nodes: usize) -> Vec<String> {
        [
            "--nodes",
            &nodes.to_string(),
            "--name",
            &self.name,
            "--node-cidr",
            &self.node_cidr,
            "--pod-cidr",
            &self.pod_cidr,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

/// A `podway up` with nodes; dropping it runs `podway down`.
pub struct NodeCluster {
    /// The `podway up` process (its own Drop SIGKILLs it, which `podway down` makes a no-op).
    pub podway: Podway,
    bin: PathBuf,
    layout: Layout,
    down: bool,
}

impl NodeCluster {
    /// Spawn `podway up` with `nodes` nodes in a fresh directory `dir`; returns at once.
    pub fn spawn(bin: &Path, dir: &Path, layout: &Layout, nodes: usize) -> Result<NodeCluster> {
        if let Some(stale) = leftover_namespaces(&layout.name).first() {
            bail!("network namespace {stale} already exists: another bench of cluster {} is running or left it; `podway down --data-dir` its data dir", layout.name);
        }
        let podway = Podway::spawn(bin, dir, &layout.flags(nodes))?;
        Ok(NodeCluster {
            podway,
            bin: bin.to_path_buf(),
            layout: layout.clone(),
            down: false,
        })
    }

    /// The data directory (`podway down --data-dir`).
    pub fn data_dir(&self) -> PathBuf {
        self.podway.dir.join("data")
    }

    /// `podway down`; returns how long it took and the namespaces of this cluster still there
    /// afterwards (there should be none).
    pub fn down(mut self) -> Result<(Duration, Vec<String>)> {
        self.down = true;
        let took = podway_down(&self.bin, &self.data_dir())?;
        Ok((took, leftover_namespaces(&self.layout.name)))
    }
}

impl Drop for NodeCluster {
    fn drop(&mut self) {
        if !self.down {
            if let Err(e) = podway_down(&self.bin, &self.data_dir()) {
                eprintln!("podway-bench: {e:#}");
            }
        }
    }
}

/// Run `podway down --data-dir DIR` and return its wall time.
fn podway_down(bin: &Path, data: &Path) -> Result<Duration> {
    let started = Instant::now();
    let out = Command::new(bin)
        .arg("down")
        .arg("--data-dir")
        .arg(data)
        .stdin(Stdio::null())
        .output()
        .context("running podway down")?;
    let took = started.elapsed();
    if !out.status.success() {
        bail!(
            "podway down --data-dir {} failed: {}",
            data.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(took)
}

/// The network namespaces of cluster `name` on this machine.
pub fn leftover_namespaces(name: &str) -> Vec<String> {
    let prefix = format!("podway-{name}-");
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return Vec::new();
    };
    let mut found: Vec<String> = dir
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    found.sort();
    found
}

/// How many Nodes of a `GET /api/v1/nodes` body have condition Ready=True.
pub fn ready_nodes(list: &serde_json::Value) -> usize {
    let items = list["items"].as_array().map(Vec::as_slice).unwrap_or_default();
    items
        .iter()
        .filter(|node| {
            let conditions = node["status"]["conditions"].as_array();
            conditions
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .count()
}

/// Wait until `client`'s cluster has `nodes` Ready Nodes, polling every [`POLL`].
pub async fn wait_ready(client: &kube::Client, nodes: usize, deadline: Instant) -> Result<()> {
    loop {
        if let Ok((status, body)) = cluster::call(client, http::Method::GET, "/api/v1/nodes", None).await {
            if status.is_success() && ready_nodes(&serde_json::from_slice(&body)?) >= nodes {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("{nodes} nodes were not Ready within {READY_DEADLINE:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A client for a cluster that is starting: waits for the address line and the kubeconfig.
pub async fn client_when_served(p: &mut Podway, deadline: Instant) -> Result<kube::Client> {
    p.server_url().await?;
    loop {
        // The kubeconfig is written (atomically) just after the address is printed.
        if let Ok(c) = cluster::client(&p.kubeconfig()).await {
            return Ok(c);
        }
        if Instant::now() > deadline {
            bail!("podway wrote no usable kubeconfig within {READY_DEADLINE:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Start `podway up --nodes N` and wait until all nodes are Ready.
pub async fn start(bin: &Path, dir: &Path, layout: &Layout, nodes: usize) -> Result<(NodeCluster, kube::Client)> {
    let mut c = NodeCluster::spawn(bin, dir, layout, nodes)?;
    let deadline = c.podway.spawned + READY_DEADLINE;
    let client = client_when_served(&mut c.podway, deadline).await?;
    wait_ready(&client, nodes, deadline).await?;
    Ok((c, client))
}

/// The samples of the node bar's runs.
#[derive(Debug, Default)]
pub struct NodesUp {
    /// How many nodes each cluster had.
    pub nodes: usize,
    /// Spawn → the API lists `nodes` Nodes with Ready=True.
    pub to_ready: Vec<Duration>,
    /// Spawn → a `kubectl get nodes` (fresh HOME, started once the API showed them Ready)
    /// printed `nodes` Ready rows and exited.
    pub to_kubectl: Vec<Duration>,
    /// podway's own `ready in` figure (printed once the agents are started, not Ready).
    pub self_reported: Vec<Duration>,
    /// `podway down` wall time.
    pub down: Vec<Duration>,
    /// Namespaces of the cluster left after `podway down`, over all runs.
    pub leftovers: Vec<String>,
}

/// `runs` times: `podway up --nodes NODES` in a new directory until the nodes are Ready, then
/// `podway down`.
pub async fn measure_up(bin: &Path, work: &Path, layout: &Layout, nodes: usize, runs: usize) -> Result<NodesUp> {
    let mut out = NodesUp {
        nodes,
        ..NodesUp::default()
    };
    for i in 0..runs {
        let dir = work.join(format!("nodes-up-{i}"));
        let mut c = NodeCluster::spawn(bin, &dir, layout, nodes)?;
        let spawned = c.podway.spawned;
        let deadline = spawned + READY_DEADLINE;
        let client = client_when_served(&mut c.podway, deadline).await?;
        wait_ready(&client, nodes, deadline).await?;
        out.to_ready.push(spawned.elapsed());
        let kubeconfig = c.podway.kubeconfig();
        let home = dir.join("home-kubectl");
        let shown = tokio::task::spawn_blocking(move || {
            cluster::kubectl_stdout(&kubeconfig, &home, &["get", "nodes", "--no-headers"])
        })
        .await??;
        out.to_kubectl.push(spawned.elapsed());
        let ready_rows = shown
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("Ready"))
            .count();
        if ready_rows != nodes {
            bail!("kubectl get nodes showed {ready_rows} Ready nodes, not {nodes}:\n{shown}");
        }
        out.self_reported.push(Duration::from_secs_f64(c.podway.ready().await?));
        drop(client);
        let (took, left) = c.down()?;
        out.down.push(took);
        out.leftovers.extend(left);
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(out)
}

/// The first node's InternalIP.
pub async fn node_ip(client: &kube::Client) -> Result<std::net::Ipv4Addr> {
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.clone());
    let list = nodes.list(&Default::default()).await?;
    let ip = list
        .items
        .iter()
        .flat_map(|n| n.status.iter().flat_map(|s| s.addresses.iter().flatten()))
        .find(|a| a.type_ == "InternalIP")
        .context("no node InternalIP")?;
    Ok(ip.address.parse()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_layouts_stay_clear_of_test_user_and_service_ranges() {
        for slot in 0..10 {
            let l = Layout::bench(slot, "x");
            let third: u16 = l.node_cidr.split('.').nth(2).unwrap().parse().unwrap();
            let second: u16 = l.pod_cidr.split('.').nth(1).unwrap().parse().unwrap();
            assert!(third > 219, "{l:?} meets the tests' node ranges");
            assert!(
                second > 211 && second != 244,
                "{l:?} meets the tests' or the user's pod range"
            );
            assert!(!(96..=111).contains(&second), "{l:?} meets the Service range");
        }
        assert_ne!(Layout::bench(0, "a").pod_cidr, Layout::bench(1, "a").pod_cidr);
    }

    #[test]
    fn only_nodes_with_ready_true_count() {
        let list = serde_json::json!({"items": [
            {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
            {"status": {"conditions": [{"type": "MemoryPressure", "status": "True"}, {"type": "Ready", "status": "False"}]}},
            {"status": {}},
            {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
        ]});
        assert_eq!(ready_nodes(&list), 2);
        assert_eq!(ready_nodes(&serde_json::json!({"kind": "Status"})), 0);
    }

    #[test]
    fn flags_name_the_layout_and_node_count() {
        let l = Layout::bench(1, "up");
        assert_eq!(
            l.flags(3).join(" "),
            "--nodes 3 --name pwbench-up --node-cidr 172.31.231.0/24 --pod-cidr 10.231.0.0/16"
        );
        assert_eq!(l.control_plane(), "pwbench-up-control-plane");
    }
}
