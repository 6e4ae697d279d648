//! Pod networking through CNI plugins, invoked as the CNI spec says (environment variables in,
//! network configuration on stdin, result JSON on stdout), so any plugin chain can be
//! configured. The default chain is Debian's `bridge` + `host-local`, plus `loopback` for `lo`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// Where the CNI plugins and the network configuration are.
#[derive(Debug, Clone)]
pub struct CniSetup {
    /// Directories searched for plugin binaries (`CNI_PATH`).
    pub bin_dirs: Vec<PathBuf>,
    /// Directory of `*.conflist` / `*.conf` files; the first by name is used, as kubelet's
    /// container runtimes do.
    pub conf_dir: PathBuf,
}

/// The network configuration list the agent writes when the configuration directory has none:
/// a bridge `cni0` whose gateway is the node's first pod address, host-local IPAM over the
/// node's pod range, and a default route (without it the pod could not reach ClusterIPs
/// through its node).
pub fn default_conflist(pod_cidr: &str, ipam_dir: &Path) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": "podway",
        "plugins": [{
            "type": "bridge",
            "bridge": "cni0",
            "isGateway": true,
            "ipMasq": false,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": pod_cidr}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": ipam_dir.display().to_string(),
            },
        }],
    })
}

/// Write [`default_conflist`] into `conf_dir` unless a configuration is there already.
pub fn ensure_default_config(conf_dir: &Path, pod_cidr: &str, ipam_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(conf_dir)?;
    if find_config(conf_dir)?.is_some() {
        return Ok(());
    }
    let path = conf_dir.join("10-podway.conflist");
    std::fs::write(&path, serde_json::to_vec_pretty(&default_conflist(pod_cidr, ipam_dir))?)?;
    Ok(())
}

fn find_config(conf_dir: &Path) -> Result<Option<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(conf_dir)
        .with_context(|| format!("reading {}", conf_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("conflist" | "conf" | "json")
            )
        })
        .collect();
    files.sort();
    Ok(files.into_iter().next())
}

/// A configuration list: the `.conflist` as is, or a single `.conf` wrapped as a list of one.
pub fn load_config(conf_dir: &Path) -> Result<Value> {
    let path =
        find_config(conf_dir)?.with_context(|| format!("no CNI network configuration in {}", conf_dir.display()))?;
    let v: Value = serde_json::from_slice(&std::fs::read(&path)?)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    if v.get("plugins").is_some() {
        Ok(v)
    } else {
        Ok(json!({"cniVersion": v["cniVersion"], "name": v["name"], "plugins": [v]}))
    }
}

/// The pod a CNI call is for.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The sandbox id (`CNI_CONTAINERID`).
    pub id: String,
    /// The network namespace path, e.g. `/proc/<shim pid>/ns/net`; empty for a DEL after the
    /// namespace is gone.
    pub netns: String,
    /// `K8S_POD_NAMESPACE`, `K8S_POD_NAME`, `K8S_POD_UID`.
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// Pod uid.
    pub uid: String,
}

impl CniSetup {
    /// Attach the pod: loopback up, then the configured chain on `eth0`. Returns the chain's
    /// final result (its `ips` carry the pod's address).
    pub fn add(&self, pod: &Attachment) -> Result<Value> {
        if self.plugin("loopback").is_some() {
            let lo = json!({"cniVersion": "1.0.0", "name": "loopback", "type": "loopback"});
            self.exec("ADD", "lo", &lo, pod)?;
        }
        let list = load_config(&self.conf_dir)?;
        let mut prev: Option<Value> = None;
        for plugin in list["plugins"].as_array().into_iter().flatten() {
            let conf = plugin_conf(&list, plugin, prev.as_ref());
            prev = Some(self.exec("ADD", "eth0", &conf, pod)?);
        }
        prev.context("the CNI configuration lists no plugins")
    }

    /// Detach the pod (plugins in reverse order). Errors are reported but a DEL of something
    /// already gone succeeds, per the spec.
    pub fn del(&self, pod: &Attachment) -> Result<()> {
        let list = load_config(&self.conf_dir)?;
        let mut first_error = None;
        for plugin in list["plugins"].as_array().into_iter().flatten().rev() {
            let conf = plugin_conf(&list, plugin, None);
            if let Err(e) = self.exec("DEL", "eth0", &conf, pod) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn plugin(&self, kind: &str) -> Option<PathBuf> {
        self.bin_dirs.iter().map(|d| d.join(kind)).find(|p| p.is_file())
    }

    fn exec(&self, command: &str, ifname: &str, conf: &Value, pod: &Attachment) -> Result<Value> {
        let kind = conf["type"]
            .as_str()
            .context("a CNI plugin configuration lacks \"type\"")?;
        let program = self.plugin(kind).with_context(|| {
            format!(
                "CNI plugin {kind:?} not found in {}; install Debian's containernetworking-plugins",
                self.bin_dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":")
            )
        })?;
        let path = std::env::join_paths(&self.bin_dirs)?;
        let args = format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={}",
            pod.namespace, pod.name, pod.id, pod.uid
        );
        let mut child = Command::new(&program)
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", &pod.id)
            .env("CNI_NETNS", &pod.netns)
            .env("CNI_IFNAME", ifname)
            .env("CNI_PATH", path)
            .env("CNI_ARGS", args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {}", program.display()))?;
        child
            .stdin
            .take()
            .context("plugin stdin")?
            .write_all(&serde_json::to_vec(conf)?)?;
        let out = child.wait_with_output()?;
        let stdout: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if !out.status.success() {
            let msg = stdout["msg"].as_str().map(str::to_string).unwrap_or_else(|| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
            });
            bail!("CNI {command} with plugin {kind:?} failed: {}", msg.trim());
        }
        Ok(stdout)
    }
}

/// One plugin's stdin: its own configuration plus the list's name and version and the previous
/// plugin's result, as the spec's conflist execution requires.
fn plugin_conf(list: &Value, plugin: &Value, prev: Option<&Value>) -> Value {
    let mut conf = plugin.clone();
    conf["name"] = list["name"].clone();
    conf["cniVersion"] = list["cniVersion"].clone();
    if let Some(prev) = prev {
        conf["prevResult"] = prev.clone();
    }
    conf
}

/// The first IPv4 address of a CNI result, without its prefix length.
pub fn pod_ip(result: &Value) -> Option<String> {
    result["ips"]
        .as_array()?
        .iter()
        .filter_map(|ip| ip["address"].as_str())
        .map(|a| a.split('/').next().unwrap_or(a).to_string())
        .find(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_chain_routes_everything_through_the_bridge_gateway() {
        let c = default_conflist("10.244.1.0/24", Path::new("/var/lib/x/ipam"));
        let bridge = &c["plugins"][0];
        assert_eq!(bridge["type"], "bridge");
        assert_eq!(bridge["isGateway"], true);
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "10.244.1.0/24");
        assert_eq!(bridge["ipam"]["routes"][0]["dst"], "0.0.0.0/0");
        assert_eq!(bridge["ipam"]["dataDir"], "/var/lib/x/ipam");
    }

    #[test]
    fn each_plugin_gets_the_list_name_version_and_previous_result() {
        let list = json!({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "a"}]});
        let prev = json!({"ips": []});
        let conf = plugin_conf(&list, &list["plugins"][0], Some(&prev));
        assert_eq!(
            conf,
            json!({"type": "a", "name": "n", "cniVersion": "1.0.0", "prevResult": {"ips": []}})
        );
    }

    #[test]
    fn pod_ip_is_the_first_ipv4_address_without_prefix() {
        let r = json!({"ips": [{"address": "fd00::5/64"}, {"address": "10.244.0.7/24", "gateway": "10.244.0.1"}]});
        assert_eq!(pod_ip(&r).as_deref(), Some("10.244.0.7"));
        assert_eq!(pod_ip(&json!({})), None);
    }

    #[test]
    fn a_single_conf_file_is_used_as_a_list_of_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("50-x.conf"),
            r#"{"cniVersion":"1.0.0","name":"x","type":"ptp"}"#,
        )
        .unwrap();
        let list = load_config(dir.path()).unwrap();
        assert_eq!(list["plugins"][0]["type"], "ptp");
        assert_eq!(list["name"], "x");
        // An existing configuration is never overwritten by the default.
        ensure_default_config(dir.path(), "10.0.0.0/24", dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
