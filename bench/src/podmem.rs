//! What running pods cost in memory: the node agent (`podway agent`), one `podway pod-shim` per
//! pod (it holds the pod's namespaces and reaps its processes), and the pods' own processes
//! (here `podway builtin-image echo-hname`), found in `/proc` by their arguments.
//!
//! What counts as podway's overhead per pod: the agent's growth from 0 to N pods divided by N,
//! plus one shim. The agent's growth is taken from its private pages (USS): its PSS also falls
//! as N shims and N pod processes, all the same `podway` binary, take their shares of the pages
//! it maps, which would hide its growth. The pod's own processes are the workload, not overhead; they are reported
//! beside it with the same program started directly, for comparison. The control plane's growth
//! (the API server holding N more Pod objects) is reported too but is not the agent's.
//!
//! RSS counts every resident page, including the `podway` binary's pages that all these
//! processes share, once per process; PSS divides each shared page among the processes mapping
//! it, so PSS summed over processes is what they cost the machine; USS counts only pages no
//! other process maps (what ending the process would give back).

use std::path::Path;

use anyhow::{bail, Result};

use crate::host::{self, Memory, Process};

/// The memory of a node's podway processes at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The node agent.
    pub agent: Memory,
    /// The `podway up` process (API server, store, controllers).
    pub up: Memory,
    /// One per pod shim.
    pub shims: Vec<Memory>,
    /// One per process of a pod (the shims' children).
    pub containers: Vec<Memory>,
}

/// Memory with no pods and with the burst running.
#[derive(Debug, Clone, Default)]
pub struct PodMemory {
    /// Once the node settled, before any pod.
    pub idle: Snapshot,
    /// With the burst's pods Running, settled.
    pub loaded: Snapshot,
    /// The pod's program started directly (no pod around it), once it answered.
    pub direct: Option<Memory>,
}

/// The processes of the cluster whose data directory is `data`: its agents, shims, and the
/// shims' children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Found {
    /// `podway agent` pids.
    pub agents: Vec<u32>,
    /// `podway pod-shim` pids.
    pub shims: Vec<u32>,
    /// Pids whose parent is a shim.
    pub containers: Vec<u32>,
}

/// The value following `flag` in `argv`.
fn flag_value<'a>(argv: &'a [String], flag: &str) -> Option<&'a str> {
    argv.iter()
        .position(|a| a == flag)
        .and_then(|i| argv.get(i + 1))
        .map(String::as_str)
}

/// Pick the cluster's processes out of `all`: an agent's `--state-dir` and a shim's `--dir` lie
/// under `data`, so another cluster's never count.
pub fn find(all: &[Process], data: &Path) -> Found {
    let under = |p: Option<&str>| p.is_some_and(|p| Path::new(p).starts_with(data));
    fn word(p: &Process) -> Option<&str> {
        p.argv.get(1).map(String::as_str)
    }
    let mut found = Found::default();
    for p in all {
        match word(p) {
            Some("agent") if under(flag_value(&p.argv, "--state-dir")) => found.agents.push(p.pid),
            Some("pod-shim") if under(flag_value(&p.argv, "--dir")) => found.shims.push(p.pid),
            _ => {}
        }
    }
    found.containers = all
        .iter()
        .filter(|p| found.shims.contains(&p.ppid))
        .map(|p| p.pid)
        .collect();
    found
}

/// Read the memory of the one-node cluster in `data` whose `podway up` is `up`.
pub fn snapshot(data: &Path, up: u32) -> Result<Snapshot> {
    let found = find(&host::processes(), data);
    let [agent] = found.agents[..] else {
        bail!(
            "expected one podway agent under {}, found {:?}",
            data.display(),
            found.agents
        );
    };
    let read = |pids: &[u32]| pids.iter().filter_map(|p| host::memory(*p).ok()).collect::<Vec<_>>();
    Ok(Snapshot {
        agent: host::memory(agent)?,
        up: host::memory(up)?,
        shims: read(&found.shims),
        containers: read(&found.containers),
    })
}

/// Per-pod figures, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Overhead {
    /// Pods running at the loaded snapshot (shims found).
    pub pods: usize,
    /// Agent RSS growth ÷ pods.
    pub agent_rss: f64,
    /// Agent PSS growth ÷ pods (understated: see the module doc).
    pub agent_pss: Option<f64>,
    /// Agent USS growth ÷ pods.
    pub agent_uss: Option<f64>,
    /// Mean shim RSS.
    pub shim_rss: f64,
    /// Mean shim PSS.
    pub shim_pss: Option<f64>,
    /// Mean shim USS.
    pub shim_uss: Option<f64>,
    /// Mean RSS of a pod's own process.
    pub container_rss: f64,
    /// Mean PSS of a pod's own process.
    pub container_pss: Option<f64>,
    /// Mean USS of a pod's own process.
    pub container_uss: Option<f64>,
    /// `podway up` RSS growth ÷ pods (the control plane, not counted as overhead).
    pub up_rss: f64,
}

impl Overhead {
    /// The bar's figure: the agent's private growth per pod + a shim's PSS (its private pages
    /// and its share of the pages it maps with the other podway processes).
    pub fn per_pod(&self) -> Option<f64> {
        Some(self.agent_uss? + self.shim_pss?)
    }

    /// Private pages only (agent USS growth per pod + shim USS): what one more pod adds, with
    /// the binary's shared pages, paid once whatever the number of pods, left out.
    pub fn per_pod_private(&self) -> Option<f64> {
        Some(self.agent_uss? + self.shim_uss?)
    }

    /// The same with RSS (shared binary pages counted in full in every shim: an upper bound).
    pub fn per_pod_rss(&self) -> f64 {
        self.agent_rss + self.shim_rss
    }
}

fn mean(values: impl Iterator<Item = u64>) -> Option<f64> {
    let (sum, n) = values.fold((0u64, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum as f64 / n as f64)
}

fn mean_of(values: &[Memory], f: fn(&Memory) -> Option<u64>) -> Option<f64> {
    // A figure the kernel gave for only some processes would average a different set.
    let all: Option<Vec<u64>> = values.iter().map(f).collect();
    mean(all?.into_iter())
}

/// The per-pod figures of `m`.
pub fn overhead(m: &PodMemory) -> Overhead {
    let pods = m.loaded.shims.len();
    let per = |before: u64, after: u64| (after as f64 - before as f64) / pods.max(1) as f64;
    let (i, l) = (&m.idle, &m.loaded);
    Overhead {
        pods,
        agent_rss: per(i.agent.rss_kib, l.agent.rss_kib),
        agent_pss: i.agent.pss_kib.zip(l.agent.pss_kib).map(|(a, b)| per(a, b)),
        agent_uss: i.agent.uss_kib.zip(l.agent.uss_kib).map(|(a, b)| per(a, b)),
        shim_rss: mean_of(&l.shims, |m| Some(m.rss_kib)).unwrap_or(0.0),
        shim_pss: mean_of(&l.shims, |m| m.pss_kib),
        shim_uss: mean_of(&l.shims, |m| m.uss_kib),
        container_rss: mean_of(&l.containers, |m| Some(m.rss_kib)).unwrap_or(0.0),
        container_pss: mean_of(&l.containers, |m| m.pss_kib),
        container_uss: mean_of(&l.containers, |m| m.uss_kib),
        up_rss: per(i.up.rss_kib, l.up.rss_kib),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(pid: u32, ppid: u32, argv: &str) -> Process {
        Process {
            pid,
            ppid,
            argv: argv.split(' ').map(str::to_string).collect(),
        }
    }

    #[test]
    fn only_this_clusters_agent_shims_and_their_children_are_found() {
        let all = vec![
            proc(
                10,
                1,
                "/bin/podway agent --server x --state-dir /w/pods/data/nodes/n-control-plane",
            ),
            proc(
                11,
                1,
                "/bin/podway agent --server x --state-dir /other/data/nodes/n-control-plane",
            ),
            proc(
                20,
                1,
                "/bin/podway pod-shim --dir /w/pods/data/nodes/n/pods/a --hostname a",
            ),
            proc(
                21,
                1,
                "/bin/podway pod-shim --dir /other/data/nodes/n/pods/b --hostname b",
            ),
            proc(30, 20, "/bin/podway builtin-image echo-hname"),
            proc(31, 21, "/bin/podway builtin-image echo-hname"),
            proc(40, 1, "/bin/podway up --data-dir /w/pods/data"),
        ];
        let found = find(&all, Path::new("/w/pods/data"));
        assert_eq!(
            found,
            Found {
                agents: vec![10],
                shims: vec![20],
                containers: vec![30]
            }
        );
    }

    fn mem(rss: u64, pss: u64) -> Memory {
        Memory {
            rss_kib: rss,
            pss_kib: Some(pss),
            peak_rss_kib: rss,
            uss_kib: Some(pss / 2),
        }
    }

    #[test]
    fn overhead_is_agent_growth_per_pod_plus_a_shim() {
        let idle = Snapshot {
            agent: mem(40_000, 30_000),
            up: mem(50_000, 45_000),
            ..Snapshot::default()
        };
        let loaded = Snapshot {
            agent: mem(60_000, 40_000),
            up: mem(70_000, 60_000),
            shims: vec![mem(3_000, 500), mem(3_000, 700)],
            containers: vec![mem(8_000, 2_000), mem(8_000, 2_000)],
        };
        let o = overhead(&PodMemory {
            idle,
            loaded,
            direct: None,
        });
        assert_eq!(o.pods, 2);
        assert_eq!(o.agent_rss, 10_000.0);
        assert_eq!(o.agent_pss, Some(5_000.0));
        assert_eq!(o.agent_uss, Some(2_500.0));
        assert_eq!(o.shim_pss, Some(600.0));
        assert_eq!(o.per_pod(), Some(3_100.0));
        assert_eq!(o.per_pod_private(), Some(2_800.0));
        assert_eq!(o.per_pod_rss(), 13_000.0);
        assert_eq!(o.container_pss, Some(2_000.0));
        assert_eq!(o.up_rss, 10_000.0);
    }

    #[test]
    fn pss_missing_for_one_shim_gives_no_mean_rather_than_a_partial_one() {
        let mut shims = vec![mem(3_000, 500), mem(3_000, 700)];
        shims[1].pss_kib = None;
        assert_eq!(mean_of(&shims, |m| m.pss_kib), None);
        assert_eq!(mean_of(&shims, |m| Some(m.rss_kib)), Some(3_000.0));
    }
}
