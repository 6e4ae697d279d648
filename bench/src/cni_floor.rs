//! The floor under the pod burst: N pod networks set up at once by the same CNI plugins the
//! agent uses (a new network namespace, then `loopback` and `bridge` with `host-local` IPAM),
//! with nothing of podway around them: no API server, no scheduler, no agent, no container.
//!
//! A pod cannot be Running before its network exists, so this is a lower bound for the burst
//! row. It runs in a scratch network namespace of its own (`pwbench-cnifloor-<pid>`, with
//! its own bridge and a documentation-free test subnet inside it), which is deleted afterwards
//! together with everything in it, also when a step fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::innode::InNode;

/// The subnet the scratch bridge hands out; it exists only inside the scratch namespace.
const SUBNET: &str = "10.250.0.0/16";
/// The scratch namespace's name before the pid; bench/run.sh removes any left by a killed run.
const SCRATCH_PREFIX: &str = "pwbench-cnifloor-";
/// How long one sandbox may take before the run fails.
const DEADLINE: Duration = Duration::from_secs(60);

/// The directory that holds the CNI plugins, as the agent finds it.
pub fn cni_bin_dir() -> Result<PathBuf> {
    ["/usr/lib/cni", "/opt/cni/bin"]
        .into_iter()
        .map(PathBuf::from)
        .find(|d| d.join("bridge").exists())
        .context("no CNI plugins (install Debian's containernetworking-plugins)")
}

/// Network `n` sandboxes at once; per sandbox, the time from its start to its `bridge` ADD
/// returning.
pub async fn measure(n: usize) -> Result<Vec<Duration>> {
    let cni = cni_bin_dir()?;
    let scratch = Scratch::create()?;
    let node = InNode::enter(&scratch.path())?;
    let ipam = scratch.ipam_dir.clone();
    node.run(move || burst(&cni, &ipam, n)).await?
}

/// Run `n` sandboxes in threads of the calling thread's network namespace (threads and the
/// processes they spawn inherit it).
fn burst(cni: &Path, ipam: &Path, n: usize) -> Result<Vec<Duration>> {
    let conf = serde_json::json!({
        "cniVersion": "1.0.0", "name": "cnifloor", "type": "bridge", "bridge": "cnifloor0",
        "isGateway": true, "hairpinMode": true,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": SUBNET}]],
                 "routes": [{"dst": "0.0.0.0/0"}], "dataDir": ipam},
    })
    .to_string();
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..n)
            .map(|i| {
                let conf = conf.as_str();
                scope.spawn(move || one_sandbox(cni, conf, i))
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().map_err(|_| anyhow::anyhow!("a sandbox thread panicked"))?)
            .collect()
    })
}

/// One sandbox: a process holding a new network namespace, networked by `loopback` then
/// `bridge`, as the agent does it. The holder is killed before returning.
fn one_sandbox(cni: &Path, conf: &str, i: usize) -> Result<Duration> {
    let start = Instant::now();
    let mut holder = Holder(
        Command::new("unshare")
            .args(["--net", "--", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .context("spawning unshare")?,
    );
    let netns = format!("/proc/{}/ns/net", holder.0.id());
    let ours = std::fs::read_link("/proc/thread-self/ns/net")?;
    while std::fs::read_link(&netns).ok().is_none_or(|ns| ns == ours) {
        if start.elapsed() > DEADLINE {
            bail!("sandbox {i}: unshare did not make a namespace");
        }
        std::thread::yield_now();
    }
    let id = format!("cnifloor-{i}");
    cni_add(
        cni,
        "loopback",
        r#"{"cniVersion":"1.0.0","name":"lo","type":"loopback"}"#,
        &netns,
        &id,
        "lo",
    )?;
    cni_add(cni, "bridge", conf, &netns, &id, "eth0")?;
    let took = start.elapsed();
    let _ = holder.0.kill();
    Ok(took)
}

/// One CNI ADD, per the spec: the config on stdin, the rest in `CNI_*` variables.
fn cni_add(cni: &Path, plugin: &str, conf: &str, netns: &str, id: &str, ifname: &str) -> Result<()> {
    use std::io::Write;
    let mut child = Command::new(cni.join(plugin))
        .env("CNI_COMMAND", "ADD")
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", ifname)
        .env("CNI_PATH", cni)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running the {plugin} plugin"))?;
    child.stdin.take().expect("piped").write_all(conf.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("{plugin} ADD for {id}: {}", String::from_utf8_lossy(&out.stdout));
    }
    Ok(())
}

/// A namespace-holding process, killed and reaped when dropped.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The scratch network namespace and the IPAM directory, removed when dropped.
struct Scratch {
    name: String,
    ipam_dir: PathBuf,
}

impl Scratch {
    fn create() -> Result<Scratch> {
        let name = format!("{SCRATCH_PREFIX}{}", std::process::id());
        let ok = Command::new("ip").args(["netns", "add", &name]).status()?.success();
        if !ok {
            bail!("ip netns add {name} failed (needs root)");
        }
        let ipam_dir = std::env::temp_dir().join(&name);
        Ok(Scratch { name, ipam_dir })
    }

    fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
        let _ = std::fs::remove_dir_all(&self.ipam_dir);
    }
}
