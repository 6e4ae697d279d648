//! Pod sandboxes: the namespaces a pod's containers share.
//!
//! A sandbox is one [`shim`] process started in fresh network, UTS, IPC and mount namespaces,
//! with the pod's hostname and its own `/etc/resolv.conf` and `/etc/hosts` ([`files`]),
//! attached to the node's pod network by CNI plugins ([`cni`]). Its record (`sandbox.json` in
//! the pod's directory) lets a restarted agent find and adopt it.
//!
//! ```text
//! <state-dir>/pods/<namespace>_<pod>_<uid>/
//!     sandbox.json        shim pid and start time, pod IP
//!     etc/resolv.conf     bind-mounted over /etc/resolv.conf inside the pod
//!     etc/hosts, etc/hostname
//!     <container>/<restartCount>.log
//! ```

pub mod cgroups;
pub mod cni;
pub mod files;
pub mod shim;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use cni::{Attachment, CniSetup};

/// What a sandbox needs from the node.
#[derive(Debug, Clone)]
pub struct SandboxSetup {
    /// The `podway` executable (run as `podway pod-shim`).
    pub exe: PathBuf,
    /// CNI plugins and configuration.
    pub cni: CniSetup,
    /// The node's state directory.
    pub state_dir: PathBuf,
    /// Resource limits, where the host offers cgroups.
    pub cgroups: cgroups::Cgroups,
}

/// A running sandbox, as recorded in `sandbox.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sandbox {
    /// Sandbox id (`CNI_CONTAINERID`).
    pub id: String,
    /// The pod's directory.
    pub dir: PathBuf,
    /// The shim's pid.
    pub pid: i32,
    /// The shim's start time (field 22 of `/proc/<pid>/stat`), so a reused pid is not mistaken
    /// for the shim.
    pub start_ticks: u64,
    /// The pod's IP.
    pub ip: String,
    /// Pod namespace, name and uid.
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// Pod uid.
    pub uid: String,
}

const RECORD: &str = "sandbox.json";

/// The directory of a pod, as kubelet names its log directories.
pub fn pod_dir(state_dir: &Path, namespace: &str, name: &str, uid: &str) -> PathBuf {
    state_dir.join("pods").join(format!("{namespace}_{name}_{uid}"))
}

/// The start time of a process (clock ticks since boot), if it runs.
pub fn process_start_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after its closing parenthesis are fixed.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 2..].starts_with(['Z', 'X'])))
        .unwrap_or(true)
}

impl Sandbox {
    /// Whether the shim still runs (same pid, same start time).
    pub fn alive(&self) -> bool {
        process_start_ticks(self.pid) == Some(self.start_ticks) && !is_zombie(self.pid)
    }

    /// The network namespace path CNI plugins enter.
    pub fn netns(&self) -> String {
        format!("/proc/{}/ns/net", self.pid)
    }

    fn attachment(&self, netns: String) -> Attachment {
        Attachment {
            id: self.id.clone(),
            netns,
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
        }
    }

    /// Read the record a (possibly previous) agent left in `dir`.
    pub fn load(dir: &Path) -> Option<Sandbox> {
        serde_json::from_slice(&std::fs::read(dir.join(RECORD)).ok()?).ok()
    }

    fn save(&self) -> Result<()> {
        let tmp = self.dir.join(".sandbox.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, self.dir.join(RECORD))?;
        Ok(())
    }
}

/// What a new sandbox is for.
#[derive(Debug, Clone)]
pub struct SandboxRequest {
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// Pod uid.
    pub uid: String,
    /// Hostname inside the pod.
    pub hostname: String,
    /// `/etc/resolv.conf` content, or `None` to keep the host's.
    pub resolv_conf: Option<String>,
    /// `/etc/hosts` content before the IP is known; [`SandboxSetup::create`] calls
    /// `hosts_with_ip` to write the final one.
    pub hosts_without_ip: String,
}

impl SandboxSetup {
    /// Create a sandbox: pod files, shim, network. Blocking (run it off the async threads).
    /// On failure nothing is left running.
    pub fn create(&self, req: &SandboxRequest, hosts_with_ip: impl Fn(&str) -> String) -> Result<Sandbox> {
        let dir = pod_dir(&self.state_dir, &req.namespace, &req.name, &req.uid);
        let etc = dir.join("etc");
        std::fs::create_dir_all(&etc).with_context(|| format!("creating {}", etc.display()))?;
        std::fs::write(etc.join("hostname"), format!("{}\n", req.hostname))?;
        std::fs::write(etc.join("hosts"), &req.hosts_without_ip)?;
        match &req.resolv_conf {
            Some(r) => std::fs::write(etc.join("resolv.conf"), r)?,
            None => {
                let _ = std::fs::remove_file(etc.join("resolv.conf"));
            }
        }
        let args = shim::ShimArgs {
            dir: dir.clone(),
            hostname: req.hostname.clone(),
        };
        let mut child = Command::new("unshare")
            .args(["--net", "--uts", "--ipc", "--mount", "--propagation", "private", "--"])
            .arg(&self.exe)
            .arg("pod-shim")
            .args(args.to_args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("shim.log"))?,
            ))
            .spawn()
            .context("starting the pod shim (unshare from util-linux)")?;
        let pid = child.id() as i32;
        let mut line = String::new();
        let ready = BufReader::new(child.stdout.take().context("shim stdout")?)
            .read_line(&mut line)
            .is_ok()
            && line.trim() == "ready";
        if !ready {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.join("shim.log")).unwrap_or_default();
            bail!("the pod shim did not start: {}", log.trim());
        }
        // The shim runs on its own from here (new session). This agent stays its parent, so it
        // keeps the handle to collect the exit status (no zombie); after an agent restart the
        // shim's new parent does that.
        reap_exited_shims();
        SHIMS.lock().expect("shim list").push(child);
        let mut sandbox = Sandbox {
            id: format!("{:x}", sha2_hex(&format!("{}-{}", req.uid, pid))),
            dir: dir.clone(),
            pid,
            start_ticks: process_start_ticks(pid).unwrap_or(0),
            ip: String::new(),
            namespace: req.namespace.clone(),
            name: req.name.clone(),
            uid: req.uid.clone(),
        };
        let result = match self.cni.add(&sandbox.attachment(sandbox.netns())) {
            Ok(r) => r,
            Err(e) => {
                let _ = shim::call(&dir, &shim::Request::Exit, Duration::from_secs(5));
                let _ = self.cni.del(&sandbox.attachment(String::new()));
                return Err(e);
            }
        };
        sandbox.ip = cni::pod_ip(&result).unwrap_or_default();
        // Rewrite in place: the shim bind-mounted this very inode.
        std::fs::write(etc.join("hosts"), hosts_with_ip(&sandbox.ip))?;
        sandbox.save()?;
        Ok(sandbox)
    }

    /// Tear a sandbox down: detach its network while the namespace still exists, then tell the
    /// shim to kill what is left and exit. Blocking.
    pub fn destroy(&self, sandbox: &Sandbox) -> Result<()> {
        let netns = if sandbox.alive() {
            sandbox.netns()
        } else {
            String::new()
        };
        let del = self.cni.del(&sandbox.attachment(netns));
        if sandbox.alive() {
            let _ = shim::call(&sandbox.dir, &shim::Request::Exit, Duration::from_secs(5));
            kill_namespace_processes(sandbox.pid);
        }
        reap_exited_shims();
        let _ = std::fs::remove_file(sandbox.dir.join(RECORD));
        let _ = std::fs::remove_file(shim::socket_path(&sandbox.dir));
        self.cgroups.remove_pod(&sandbox.uid);
        del
    }
}

/// Shims this agent started, kept to collect their exit status.
static SHIMS: std::sync::Mutex<Vec<std::process::Child>> = std::sync::Mutex::new(Vec::new());

/// Collect the exit status of shims that ended.
pub fn reap_exited_shims() {
    SHIMS
        .lock()
        .expect("shim list")
        .retain_mut(|c| matches!(c.try_wait(), Ok(None)));
}

fn sha2_hex(s: &str) -> u128 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(s.as_bytes());
    u128::from_be_bytes(d[..16].try_into().expect("16 bytes"))
}

/// Kill every process in the network namespace of `pid` (the pod's processes, wherever they
/// moved in the process tree), then `pid` itself.
pub fn kill_namespace_processes(pid: i32) {
    let Ok(target) = std::fs::read_link(format!("/proc/{pid}/ns/net")) else {
        return;
    };
    for p in all_pids() {
        if p != pid && std::fs::read_link(format!("/proc/{p}/ns/net")).ok().as_ref() == Some(&target) {
            kill9(p);
        }
    }
    kill9(pid);
}

fn kill9(pid: i32) {
    if let Some(p) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
    }
}

fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// Kill every pod of every node whose state lives under `root` (a cluster's `nodes`
/// directory): the shims and all processes in their namespaces, then the nodes' cgroups. For
/// `podway down` and crash cleanup. Returns how many pods were killed.
pub fn kill_pods_under(root: &Path) -> usize {
    let mut killed = 0;
    let root_text = root.display().to_string();
    for pid in all_pids() {
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_shim = args.iter().any(|a| a == "pod-shim");
        let dir = args
            .windows(2)
            .find(|w| w[0] == "--dir" && w[1].starts_with(&root_text))
            .map(|w| PathBuf::from(&w[1]));
        if let (true, Some(dir)) = (is_shim, dir) {
            kill_namespace_processes(pid);
            let _ = std::fs::remove_file(shim::socket_path(&dir));
            killed += 1;
        }
    }
    for node in std::fs::read_dir(root).into_iter().flatten().flatten() {
        cgroups::Cgroups::detect(&node.path()).remove_all();
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_ticks_of_this_process_are_stable_and_of_a_missing_one_absent() {
        let me = std::process::id() as i32;
        let a = process_start_ticks(me).unwrap();
        assert_eq!(process_start_ticks(me), Some(a));
        assert_eq!(process_start_ticks(i32::MAX), None);
    }

    #[test]
    fn pod_dirs_are_named_like_kubelets_log_dirs() {
        assert_eq!(
            pod_dir(Path::new("/s"), "default", "web", "u-1"),
            PathBuf::from("/s/pods/default_web_u-1")
        );
    }
}
