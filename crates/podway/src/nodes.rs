//! The cluster's nodes on this machine: the node network (one network namespace per node on a
//! host bridge) and one agent process per node, started inside its namespace and restarted if
//! it dies. `podway node list|ip|ssh` read the layout back from the data directory;
//! `podway node stop|start` stop a node (its agent and pods die, the Node stays, like
//! `docker stop` of a kind node) and start it again.

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
    /// How Services carry traffic on the nodes (`podway agent --proxy-mode`).
    pub proxy_mode: String,
}

/// One supervised agent per node, each in its node's namespace.
pub struct Agents {
    children: Vec<(String, Child)>,
    /// Nodes whose agent exited while the node is stopped: not restarted until started.
    held: std::collections::HashSet<String>,
}

impl Agents {
    /// Start an agent for every node of `network`. `podway up` starts every node, so marks
    /// left by `podway node stop` in an earlier run are removed.
    pub fn start(network: &Network<SystemIp>, link: &AgentLink, log_dir: &Path) -> Result<Agents> {
        let mut children = Vec::new();
        for node in network.plan().nodes() {
            let _ = std::fs::remove_file(stopped_mark(&link.data_dir, &node.name));
            children.push((node.name.clone(), spawn(network, link, &node.name, log_dir)?));
        }
        Ok(Agents {
            children,
            held: Default::default(),
        })
    }

    /// Restart any agent that exited (called periodically by `podway up`), except those of
    /// nodes stopped with `podway node stop`: theirs start again once the mark is gone.
    pub fn restart_exited(&mut self, network: &Network<SystemIp>, link: &AgentLink, log_dir: &Path) {
        for (name, child) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                if is_stopped(&link.data_dir, name) {
                    if self.held.insert(name.clone()) {
                        eprintln!("node {name} stopped; `podway node start {name}` starts it again");
                    }
                    continue;
                }
                if self.held.remove(name) {
                    eprintln!("node {name} started; starting its agent");
                } else {
                    eprintln!("agent of {name} exited ({status}); restarting it");
                }
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
    // Our own image through /proc: it stays valid when the file on disk is replaced by a
    // rebuild, so a restarted agent runs the same program as the cluster.
    let exe = std::path::PathBuf::from(format!("/proc/{}/exe", std::process::id()));
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
        "--cluster-cidr".into(),
        plan.pod_cidr().to_string(),
        "--node-interface".into(),
        podway_agent::network::names::NODE_IFNAME.into(),
        // Nodes on this machine have no way out (the host does not forward for them), so their
        // DNS forwards nowhere: names outside the cluster fail at once instead of sending
        // queries toward the host's resolver that the host would drop.
        "--upstream-resolv-conf".into(),
        "/dev/null".into(),
        "--proxy-mode".into(),
        link.proxy_mode.clone(),
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
    let mut cmd = network.agent_command(node, &args).map_err(|e| anyhow::anyhow!("{e}"))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_dir.join(format!("agent-{node}.log")))?;
    cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    cmd.spawn().with_context(|| format!("starting the agent of {node}"))
}

/// The file whose presence marks a node stopped with `podway node stop`.
fn stopped_mark(dir: &Path, node: &str) -> PathBuf {
    dir.join("nodes").join(node).join("stopped")
}

/// Whether `node` of the cluster in `dir` is stopped (`podway node stop`): `podway up` then
/// leaves its agent down.
pub fn is_stopped(dir: &Path, node: &str) -> bool {
    stopped_mark(dir, node).exists()
}

/// What `podway node stop` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// Whether an agent was running and was ended.
    pub agent: bool,
    /// How many pods were killed.
    pub pods: usize,
}

/// Stop `node` of the cluster in `dir`, as `docker stop` stops a kind node: mark it stopped (so
/// `podway up` does not restart its agent), end its agent (SIGTERM, SIGKILL after a grace
/// period) and kill its pods. The Node object stays; the node lifecycle controller notices
/// the silence and evicts its pods.
pub fn stop_node(dir: &Path, node: &str) -> Result<Stopped> {
    let mark = stopped_mark(dir, node);
    if let Some(parent) = mark.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // The mark first: the supervisor checks it when it sees the agent exit.
    std::fs::write(&mark, "").with_context(|| format!("marking {node} stopped"))?;
    let pids = agent_pids(dir, node);
    signal(&pids, "-TERM");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !agent_pids(dir, node).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&agent_pids(dir, node), "-KILL");
    // The agent is gone, so nothing starts a pod anymore. The trailing separator keeps the
    // prefix match from reaching a node whose name extends this one (`worker2`).
    let node_dir = absolute(dir).join("nodes").join(node).join("");
    let pods = podway_agent::sandbox::kill_pods_under(&node_dir);
    Ok(Stopped {
        agent: !pids.is_empty(),
        pods,
    })
}

/// Start `node` again after `podway node stop`: remove the mark, and the running `podway up`
/// restarts its agent within a second. Returns whether the node was stopped.
pub fn start_node(dir: &Path, node: &str) -> Result<bool> {
    match std::fs::remove_file(stopped_mark(dir, node)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(anyhow::anyhow!("starting {node}: {e}")),
    }
}

/// The live (not zombie) agent processes of `node` of the cluster in `dir`.
pub fn agent_pids(dir: &Path, node: &str) -> Vec<u32> {
    let state_dir = absolute(dir).join("nodes").join(node);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
            is_agent_of(&args, node, &state_dir, cwd.as_deref()) && !is_zombie(*pid)
        })
        .collect()
}

/// Whether `args` is the command line of the agent of `node` keeping its state in `state_dir`
/// (a relative `--state-dir` is taken from the process's working directory `cwd`).
fn is_agent_of(args: &[String], node: &str, state_dir: &Path, cwd: Option<&Path>) -> bool {
    let value = |flag: &str| args.windows(2).find(|w| w[0] == flag).map(|w| w[1].as_str());
    let is_agent = args.get(1).map(String::as_str) == Some("agent");
    let its_state = value("--state-dir").is_some_and(|d| {
        let d = Path::new(d);
        let d = match cwd {
            Some(cwd) if d.is_relative() => cwd.join(d),
            _ => d.to_path_buf(),
        };
        absolute(&d) == state_dir
    });
    is_agent && value("--node-name") == Some(node) && its_state
}

/// `path` made absolute and free of symlinks where it exists (as the kernel reports a
/// process's paths), unchanged where it cannot be resolved.
fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        // The state follows the parenthesised command name: `123 (podway) Z ...`.
        .map(|s| s.rsplit_once(") ").is_none_or(|(_, rest)| rest.starts_with('Z')))
        .unwrap_or(true)
}

fn signal(pids: &[u32], sig: &str) {
    for pid in pids {
        let _ = std::process::Command::new("kill")
            .arg(sig)
            .arg(pid.to_string())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(node: &str, state_dir: &str) -> Vec<String> {
        [
            "/usr/bin/podway",
            "agent",
            "--node-name",
            node,
            "--state-dir",
            state_dir,
            "--exit-with-parent",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    #[test]
    fn an_agent_is_recognised_by_its_node_name_and_state_dir() {
        let state = Path::new("/nonexistent/data/nodes/c-worker");
        assert!(is_agent_of(
            &argv("c-worker", "/nonexistent/data/nodes/c-worker"),
            "c-worker",
            state,
            None
        ));
        // Another node, another cluster's data directory, or not an agent at all.
        assert!(!is_agent_of(
            &argv("c-worker2", "/nonexistent/data/nodes/c-worker2"),
            "c-worker",
            state,
            None
        ));
        assert!(!is_agent_of(
            &argv("c-worker", "/elsewhere/nodes/c-worker"),
            "c-worker",
            state,
            None
        ));
        let mut shim = argv("c-worker", "/nonexistent/data/nodes/c-worker");
        shim[1] = "pod-shim".into();
        assert!(!is_agent_of(&shim, "c-worker", state, None));
    }

    #[test]
    fn a_relative_state_dir_is_read_from_the_agents_working_directory() {
        let state = Path::new("/nonexistent/data/nodes/c-worker");
        let args = argv("c-worker", "data/nodes/c-worker");
        assert!(is_agent_of(&args, "c-worker", state, Some(Path::new("/nonexistent"))));
        assert!(!is_agent_of(&args, "c-worker", state, Some(Path::new("/other"))));
    }

    #[test]
    fn stop_marks_the_node_and_start_clears_the_mark() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_stopped(dir.path(), "n1"));
        let done = stop_node(dir.path(), "n1").unwrap();
        assert_eq!(done, Stopped { agent: false, pods: 0 });
        assert!(is_stopped(dir.path(), "n1"));
        assert!(!is_stopped(dir.path(), "n2"));
        assert!(start_node(dir.path(), "n1").unwrap());
        assert!(!is_stopped(dir.path(), "n1"));
        assert!(
            !start_node(dir.path(), "n1").unwrap(),
            "starting a running node changes nothing"
        );
    }
}
