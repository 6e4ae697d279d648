//! The cluster's nodes on this machine: the node network (one network namespace per node on a
//! host bridge) and one agent process per node, started inside its namespace and restarted if
//! it dies. `podway node list|ip|ssh` read the layout back from the data directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use podway_agent::network::{teardown_stale, Network, NetworkConfig, NetworkPlan, SystemIp};
use serde_json::json;

/// The file in the data directory that records the cluster's layout.
const LAYOUT: &str = "cluster.json";

/// Save the layout so `podway node` and `podway down` can find the network again.
pub fn save_layout(dir: &Path, config: &NetworkConfig) -> Result<()> {
    let layout = json!({
        "name": config.cluster, "nodes": config.nodes,
        "nodeCIDR": config.node_cidr.to_string(), "podCIDR": config.pod_cidr.to_string(), "serviceCIDR": config.service_cidr.to_string(),
    });
    std::fs::write(dir.join(LAYOUT), serde_json::to_vec_pretty(&layout)?)?;
    Ok(())
}

/// The layout of the cluster in `dir`.
pub fn load_layout(dir: &Path) -> Result<NetworkConfig> {
    let path = dir.join(LAYOUT);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{}: no cluster was started from {}; run `podway up` first",
            path.display(),
            dir.display()
        )
    })?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    let field = |k: &str| {
        v[k].as_str()
            .map(str::to_string)
            .with_context(|| format!("{} lacks {k}", path.display()))
    };
    Ok(NetworkConfig {
        cluster: field("name")?,
        nodes: v["nodes"].as_u64().unwrap_or(0) as usize,
        node_cidr: field("nodeCIDR")?.parse().map_err(|e| anyhow::anyhow!("{e}"))?,
        pod_cidr: field("podCIDR")?.parse().map_err(|e| anyhow::anyhow!("{e}"))?,
        service_cidr: field("serviceCIDR")?.parse().map_err(|e| anyhow::anyhow!("{e}"))?,
    })
}

/// Create (or repair) the node network.
pub fn network_up(config: &NetworkConfig) -> Result<Network<SystemIp>> {
    if !is_root() {
        bail!("nodes are network namespaces, which need root: run podway as root, or pass --nodes 0 for the control plane alone");
    }
    let plan = NetworkPlan::new(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let network = Network::system(plan);
    network
        .up()
        .map_err(|e| anyhow::anyhow!("creating the node network: {e}"))?;
    Ok(network)
}

/// Kill the pods of the cluster in `dir` (their shims outlive agents on purpose, so a
/// restarted agent adopts them; stopping the cluster must end them).
pub fn kill_pods(dir: &Path) -> usize {
    podway_agent::sandbox::kill_pods_under(&dir.join("nodes"))
}

/// Remove whatever a cluster of this name left behind (after a crash, say).
pub fn network_down_stale(cluster: &str) -> Result<()> {
    teardown_stale(&SystemIp, cluster).map_err(|e| anyhow::anyhow!("removing the node network of {cluster}: {e}"))
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|u| u.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}

/// How an agent reaches the API server.
#[derive(Debug, Clone)]
pub struct AgentLink {
    /// `https://<host ip on the node network>:<port>`.
    pub server: String,
    /// The cluster CA certificate file.
    pub ca_file: PathBuf,
    /// The bearer token file.
    pub token_file: PathBuf,
    /// The cluster's data directory (each node's state is in `nodes/<node>` under it).
    pub data_dir: PathBuf,
}

/// One supervised agent per node, each in its node's namespace.
pub struct Agents {
    children: Vec<(String, Child)>,
}

impl Agents {
    /// Start an agent for every node of `network`.
    pub fn start(network: &Network<SystemIp>, link: &AgentLink, log_dir: &Path) -> Result<Agents> {
        let mut children = Vec::new();
        for node in network.plan().nodes() {
            children.push((node.name.clone(), spawn(network, link, &node.name, log_dir)?));
        }
        Ok(Agents { children })
    }

    /// Restart any agent that exited (called periodically by `podway up`).
    pub fn restart_exited(&mut self, network: &Network<SystemIp>, link: &AgentLink, log_dir: &Path) {
        for (name, child) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                eprintln!("agent of {name} exited ({status}); restarting it");
                match spawn(network, link, name, log_dir) {
                    Ok(c) => *child = c,
                    Err(e) => eprintln!("restarting the agent of {name}: {e:#}"),
                }
            }
        }
    }

    /// Stop every agent: SIGTERM, then SIGKILL after a grace period.
    pub fn stop(mut self) {
        for (_, child) in &self.children {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        for (_, child) in &mut self.children {
            while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Agents {
    /// An early return of `podway up` must not leave agents behind: kill what still runs.
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn spawn(network: &Network<SystemIp>, link: &AgentLink, node: &str, log_dir: &Path) -> Result<Child> {
    let plan = network.plan();
    let n = plan.node(node).with_context(|| format!("unknown node {node}"))?;
    let exe = std::env::current_exe()?;
    let mut argv: Vec<String> = vec![
        exe.display().to_string(),
        "agent".into(),
        "--server".into(),
        link.server.clone(),
        "--ca-file".into(),
        link.ca_file.display().to_string(),
        "--token-file".into(),
        link.token_file.display().to_string(),
        "--node-name".into(),
        node.to_string(),
        "--node-ip".into(),
        n.ip.to_string(),
        "--pod-cidr".into(),
        n.pod_cidr.to_string(),
        "--exit-with-parent".into(),
        "--state-dir".into(),
        link.data_dir.join("nodes").join(node).display().to_string(),
        "--image-catalog".into(),
        link.data_dir.join("images.yaml").display().to_string(),
    ];
    if n.index == 0 {
        argv.push("--control-plane".into());
    }
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut cmd = network.node_command(node, &args).map_err(|e| anyhow::anyhow!("{e}"))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_dir.join(format!("agent-{node}.log")))?;
    cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    cmd.spawn().with_context(|| format!("starting the agent of {node}"))
}
