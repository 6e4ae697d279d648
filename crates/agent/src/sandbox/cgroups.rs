//! Container resource limits through cgroups, where the host offers them: `limits.memory`
//! becomes the memory limit, `limits.cpu` a CFS quota and `requests.cpu` the CPU weight, as
//! kubelet's cgroup manager sets them. Works with the v1 controllers mounted per controller
//! (`/sys/fs/cgroup/memory`, ...) and with a pure v2 hierarchy (`/sys/fs/cgroup` with
//! `cgroup.controllers`). Where neither is writable, containers simply run without limits.
//!
//! Layout: `<controller root>/podway/<node key>/pod<uid>/<container>`; the node key is a digest
//! of the node's state directory, so clusters and nodes on one machine never share a cgroup.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::ResourceRequirements;

/// The CFS period kubelet uses (100 ms).
const CFS_PERIOD_US: u64 = 100_000;

/// One controller hierarchy podway can write to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hierarchy {
    /// cgroup v1: a directory per controller.
    V1 {
        memory: Option<PathBuf>,
        cpu: Option<PathBuf>,
    },
    /// cgroup v2: one tree.
    V2(PathBuf),
}

/// The limits of one container, in the units the kernel files take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Bytes.
    pub memory: Option<u64>,
    /// CFS quota in microseconds per [`CFS_PERIOD_US`].
    pub cpu_quota_us: Option<u64>,
    /// v1 `cpu.shares` (2..262144), from `requests.cpu`.
    pub cpu_shares: Option<u64>,
}

/// A Kubernetes quantity as a number (`128Mi`, `1G`, `500m`, `2`, `1.5`), in base units; CPU
/// is returned in millicores when `milli` is set.
pub fn parse_quantity(q: &str, milli: bool) -> Option<u64> {
    let q = q.trim();
    let split = q.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let n: f64 = num.parse().ok()?;
    let factor: f64 = match suffix {
        "" => 1.0,
        "m" => 0.001,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0f64.powi(4),
        _ => return None,
    };
    let v = n * factor * if milli { 1000.0 } else { 1.0 };
    (v >= 0.0).then_some(v.round() as u64)
}

/// The limits a container's `resources` ask for.
pub fn limits_of(resources: Option<&ResourceRequirements>) -> Limits {
    let get =
        |m: Option<&std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
         k: &str,
         milli: bool| { m.and_then(|m| m.get(k)).and_then(|q| parse_quantity(&q.0, milli)) };
    let limits = resources.and_then(|r| r.limits.as_ref());
    let requests = resources.and_then(|r| r.requests.as_ref());
    let cpu_limit = get(limits, "cpu", true);
    // Kubernetes defaults a missing request to the limit.
    let cpu_request = get(requests, "cpu", true).or(cpu_limit);
    Limits {
        memory: get(limits, "memory", false),
        // kubelet: quota = milliCPU * period / 1000, at least 1 ms.
        cpu_quota_us: cpu_limit.map(|m| (m * CFS_PERIOD_US / 1000).max(1000)),
        // kubelet: shares = milliCPU * 1024 / 1000, within [2, 262144].
        cpu_shares: cpu_request.map(|m| (m * 1024 / 1000).clamp(2, 262_144)),
    }
}

/// The cgroups of one node's pods.
#[derive(Debug, Clone)]
pub struct Cgroups {
    hierarchy: Option<Hierarchy>,
    key: String,
}

/// A controller directory this process may create cgroups in (root may, though the mode
/// bits say 0555).
fn writable(dir: &Path) -> bool {
    dir.join("cgroup.procs").exists() && rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).is_ok()
}

impl Cgroups {
    /// Detect what the host offers, for the node whose state is in `state_dir`. An agent that
    /// `podway up` starts with `ip netns exec` sees a fresh sysfs without the cgroup mounts, so
    /// the host's hierarchy is also looked for through pid 1's root.
    pub fn detect(state_dir: &Path) -> Cgroups {
        for root in ["/sys/fs/cgroup", "/proc/1/root/sys/fs/cgroup"] {
            let c = Cgroups::detect_under(Path::new(root), state_dir);
            if c.available() {
                return c;
            }
        }
        Cgroups::detect_under(Path::new("/sys/fs/cgroup"), state_dir)
    }

    fn detect_under(root: &Path, state_dir: &Path) -> Cgroups {
        use sha2::Digest;
        let d = sha2::Sha256::digest(state_dir.as_os_str().as_encoded_bytes());
        let key: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
        let v2 = std::fs::read_to_string(root.join("cgroup.controllers")).ok();
        let hierarchy = match v2 {
            Some(c) if c.contains("memory") || c.contains("cpu") => Some(Hierarchy::V2(root.to_path_buf())),
            _ => {
                let memory = Some(root.join("memory")).filter(|d| writable(d));
                let cpu = [root.join("cpu"), root.join("cpu,cpuacct")]
                    .into_iter()
                    .find(|d| writable(d));
                (memory.is_some() || cpu.is_some()).then_some(Hierarchy::V1 { memory, cpu })
            }
        };
        Cgroups { hierarchy, key }
    }

    /// Whether the host lets podway set limits at all.
    pub fn available(&self) -> bool {
        self.hierarchy.is_some()
    }

    fn node_dirs(&self) -> Vec<PathBuf> {
        let base = Path::new("podway").join(&self.key);
        match &self.hierarchy {
            None => vec![],
            Some(Hierarchy::V2(root)) => vec![root.join(base)],
            Some(Hierarchy::V1 { memory, cpu }) => memory.iter().chain(cpu.iter()).map(|c| c.join(&base)).collect(),
        }
    }

    /// Create the container's cgroups with its limits; returns the directories whose
    /// `cgroup.procs` the container's process joins. Best effort: a file the kernel refuses is
    /// logged and skipped.
    pub fn create_container(&self, pod_uid: &str, container: &str, limits: Limits) -> Vec<PathBuf> {
        let rel = Path::new(&format!("pod{pod_uid}")).join(container);
        let mut dirs = vec![];
        match &self.hierarchy {
            None => {}
            Some(Hierarchy::V2(root)) => {
                let dir = root.join("podway").join(&self.key).join(&rel);
                if std::fs::create_dir_all(&dir).is_err() {
                    return dirs;
                }
                // Controllers must be enabled on every ancestor for the leaf to have them.
                let mut anc = dir.parent();
                let mut chain = vec![];
                while let Some(a) = anc {
                    if a == root.as_path() || !a.starts_with(root) {
                        chain.push(a.to_path_buf());
                        break;
                    }
                    chain.push(a.to_path_buf());
                    anc = a.parent();
                }
                for a in chain.iter().rev() {
                    let _ = std::fs::write(a.join("cgroup.subtree_control"), "+memory +cpu");
                }
                write(&dir, "memory.max", limits.memory.map(|m| m.to_string()));
                write(
                    &dir,
                    "cpu.max",
                    limits.cpu_quota_us.map(|q| format!("{q} {CFS_PERIOD_US}")),
                );
                // v2 weight from v1 shares, as kubelet/runc convert it.
                write(
                    &dir,
                    "cpu.weight",
                    limits.cpu_shares.map(|s| (1 + ((s - 2) * 9999) / 262_142).to_string()),
                );
                dirs.push(dir);
            }
            Some(Hierarchy::V1 { memory, cpu }) => {
                if let Some(m) = memory {
                    let dir = m.join("podway").join(&self.key).join(&rel);
                    if std::fs::create_dir_all(&dir).is_ok() {
                        write(&dir, "memory.limit_in_bytes", limits.memory.map(|m| m.to_string()));
                        dirs.push(dir);
                    }
                }
                if let Some(c) = cpu {
                    let dir = c.join("podway").join(&self.key).join(&rel);
                    if std::fs::create_dir_all(&dir).is_ok() {
                        write(
                            &dir,
                            "cpu.cfs_period_us",
                            limits.cpu_quota_us.map(|_| CFS_PERIOD_US.to_string()),
                        );
                        write(&dir, "cpu.cfs_quota_us", limits.cpu_quota_us.map(|q| q.to_string()));
                        write(&dir, "cpu.shares", limits.cpu_shares.map(|s| s.to_string()));
                        dirs.push(dir);
                    }
                }
            }
        }
        dirs
    }

    /// Remove a pod's cgroups (its processes are gone).
    pub fn remove_pod(&self, pod_uid: &str) {
        for node in self.node_dirs() {
            remove_tree(&node.join(format!("pod{pod_uid}")));
        }
    }

    /// Remove every cgroup of this node (for `podway down` and stale state), and the shared
    /// `podway` parent once no node uses it.
    pub fn remove_all(&self) {
        for node in self.node_dirs() {
            remove_tree(&node);
            if let Some(parent) = node.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
}

fn write(dir: &Path, file: &str, value: Option<String>) {
    if let Some(v) = value {
        if let Err(e) = std::fs::write(dir.join(file), &v) {
            tracing::warn!("cgroup {}/{file} = {v}: {e}", dir.display());
        }
    }
}

/// cgroup directories are removed with rmdir, children first (their files cannot be deleted),
/// once the processes in them are gone: a process killed a moment ago may still be exiting,
/// so wait a little (bounded) for `cgroup.procs` to empty.
fn remove_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path());
            }
        }
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|p| !p.trim().is_empty())
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = std::fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_parse_in_kubernetes_units() {
        assert_eq!(parse_quantity("128Mi", false), Some(134_217_728));
        assert_eq!(parse_quantity("1G", false), Some(1_000_000_000));
        assert_eq!(parse_quantity("500m", true), Some(500));
        assert_eq!(parse_quantity("2", true), Some(2000));
        assert_eq!(parse_quantity("1.5", true), Some(1500));
        assert_eq!(parse_quantity("lots", false), None);
    }

    #[test]
    fn limits_follow_kubelets_conversions() {
        let r: ResourceRequirements =
            serde_json::from_value(json!({"limits": {"cpu": "250m", "memory": "64Mi"}})).unwrap();
        let l = limits_of(Some(&r));
        assert_eq!(l.memory, Some(67_108_864));
        assert_eq!(l.cpu_quota_us, Some(25_000));
        // The request defaults to the limit: 250m → 256 shares.
        assert_eq!(l.cpu_shares, Some(256));
        assert_eq!(limits_of(None), Limits::default());
        let tiny: ResourceRequirements = serde_json::from_value(json!({"limits": {"cpu": "1m"}})).unwrap();
        assert_eq!(limits_of(Some(&tiny)).cpu_quota_us, Some(1000));
        assert_eq!(limits_of(Some(&tiny)).cpu_shares, Some(2));
    }

    #[test]
    fn a_host_without_cgroup_files_offers_no_limits() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cgroups::detect_under(dir.path(), Path::new("/state"));
        assert!(!c.available());
        assert!(c.create_container("u", "c", Limits::default()).is_empty());
    }
}
