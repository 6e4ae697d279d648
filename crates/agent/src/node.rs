//! The agent's side of the API: it registers its Node and keeps its Lease fresh.
//!
//! [`run`] is the agent: it also serves the kubelet endpoint ([`crate::kubelet`]) and runs the
//! node's pods ([`crate::runtime`]).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

/// The version the node reports as its kubelet's, matching the API server.
pub const KUBELET_VERSION: &str = "v1.32.4";

/// How often the Lease is renewed (the kubelet's default, 10s) and how long it lasts (40s).
const LEASE_RENEW: Duration = Duration::from_secs(10);
const LEASE_DURATION_SECONDS: i32 = 40;

/// Who this node is.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    /// Node name, e.g. `podway-control-plane`.
    pub name: String,
    /// Its address on the node network.
    pub internal_ip: String,
    /// The pod range it hands out, e.g. `10.244.0.0/24`.
    pub pod_cidr: String,
    /// Whether it carries the control-plane role label.
    pub control_plane: bool,
}

/// The Node object this agent registers: addresses, capacity, conditions and node info as a
/// kubelet reports them.
pub fn node_object(id: &NodeIdentity, host: &HostFacts, now: &str) -> serde_json::Value {
    let mut labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), id.name.clone()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("kubernetes.io/arch".to_string(), host.arch.clone()),
        ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
        ("beta.kubernetes.io/arch".to_string(), host.arch.clone()),
    ]);
    if id.control_plane {
        labels.insert("node-role.kubernetes.io/control-plane".into(), String::new());
    }
    let capacity = json!({"cpu": host.cpus.to_string(), "memory": format!("{}Ki", host.memory_kib), "pods": "110", "ephemeral-storage": "0"});
    let condition = |t: &str, status: &str, reason: &str, message: &str| json!({"type": t, "status": status, "reason": reason, "message": message, "lastHeartbeatTime": now, "lastTransitionTime": now});
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": id.name, "labels": labels},
        "spec": {"podCIDR": id.pod_cidr, "podCIDRs": [id.pod_cidr]},
        "status": {
            "addresses": [{"type": "InternalIP", "address": id.internal_ip}, {"type": "Hostname", "address": id.name}],
            "capacity": capacity, "allocatable": capacity,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "nodeInfo": {
                "machineID": host.machine_id, "systemUUID": host.machine_id, "bootID": host.boot_id,
                "kernelVersion": host.kernel, "osImage": host.os_image, "containerRuntimeVersion": format!("podway://{}", env!("CARGO_PKG_VERSION")),
                "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION, "operatingSystem": "linux", "architecture": host.arch,
            },
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        }
    })
}

/// What the machine says about itself, read once at start.
#[derive(Debug, Clone)]
pub struct HostFacts {
    /// CPUs available.
    pub cpus: usize,
    /// Total memory in KiB.
    pub memory_kib: u64,
    /// `uname -r`.
    pub kernel: String,
    /// `PRETTY_NAME` of /etc/os-release.
    pub os_image: String,
    /// `amd64`, `arm64`, ...
    pub arch: String,
    /// /etc/machine-id.
    pub machine_id: String,
    /// The kernel's boot id.
    pub boot_id: String,
}

impl HostFacts {
    /// Read them from /proc and /etc; anything unreadable is left empty.
    pub fn read() -> HostFacts {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default().trim().to_string();
        let memory_kib = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        let os_image = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| "Linux".into());
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        }
        .to_string();
        HostFacts {
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            memory_kib,
            kernel: read("/proc/sys/kernel/osrelease"),
            os_image,
            arch,
            machine_id: read("/etc/machine-id"),
            boot_id: read("/proc/sys/kernel/random/boot_id"),
        }
    }
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Register the node (create, or update if it exists).
pub async fn register(
    client: &kube::Client,
    id: &NodeIdentity,
    host: &HostFacts,
    kubelet_port: u16,
) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut desired = node_object(id, host, &now_rfc3339());
    desired["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] = json!(kubelet_port);
    let node: Node = serde_json::from_value(desired.clone())?;
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let spec = json!({"metadata": {"labels": desired["metadata"]["labels"]}, "spec": desired["spec"]});
            nodes
                .patch(&id.name, &PatchParams::default(), &Patch::Merge(&spec))
                .await?;
        }
        Err(e) => return Err(e.into()),
    }
    let status = json!({"status": desired["status"]});
    nodes
        .patch_status(&id.name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

/// Renew the node's Lease in `kube-node-lease`, creating it if needed.
pub async fn renew_lease(client: &kube::Client, id: &NodeIdentity) -> anyhow::Result<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let now = MicroTime(jiff::Timestamp::now());
    let body = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": id.name},
        "spec": {"holderIdentity": id.name, "leaseDurationSeconds": LEASE_DURATION_SECONDS, "renewTime": now},
    });
    match leases.get_opt(&id.name).await? {
        None => {
            let lease: Lease = serde_json::from_value(body)?;
            leases.create(&PostParams::default(), &lease).await?;
        }
        Some(_) => {
            leases
                .patch(
                    &id.name,
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"spec": body["spec"]})),
                )
                .await?;
        }
    }
    Ok(())
}

/// Post the node's status again if its Ready condition is not True.
async fn restore_ready(
    client: &kube::Client,
    id: &NodeIdentity,
    host: &HostFacts,
    kubelet_port: u16,
) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = nodes.get(&id.name).await?;
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    if !ready {
        register(client, id, host, kubelet_port).await?;
    }
    Ok(())
}

/// Everything the agent runs on its node besides the heartbeat.
#[derive(Debug, Clone)]
pub struct AgentSetup {
    /// Where pods' state, logs and CNI files live.
    pub state_dir: std::path::PathBuf,
    /// The `podway` executable (for pod shims and built-in images).
    pub exe: std::path::PathBuf,
    /// Directories searched for CNI plugins.
    pub cni_bin_dirs: Vec<std::path::PathBuf>,
    /// Directory of the CNI network configuration (a default one is written if empty).
    pub cni_conf_dir: std::path::PathBuf,
    /// The user's image catalog.
    pub image_catalog: std::path::PathBuf,
    /// The cluster CA (PEM): the kubelet endpoint admits only the API server's certificate.
    pub ca_pem: String,
    /// Port of the kubelet endpoint on the node IP.
    pub kubelet_port: u16,
    /// The node's DNS mirror pod, when this agent serves cluster DNS ([`crate::mirror`]).
    pub dns_mirror: Option<crate::mirror::DnsMirror>,
}

/// The kube-dns ClusterIP, for pods' resolv.conf (the bootstrap creates it; wait for it).
async fn cluster_dns(client: &kube::Client) -> String {
    let api: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(client.clone(), "kube-system");
    for _ in 0..50 {
        if let Ok(Some(svc)) = api.get_opt("kube-dns").await {
            if let Some(ip) = svc
                .spec
                .and_then(|s| s.cluster_ip)
                .filter(|ip| !ip.is_empty() && ip != "None")
            {
                return ip;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tracing::warn!("no kube-dns Service in kube-system; pods get no cluster DNS server");
    String::new()
}

/// Re-create the node's mirror pod if it is gone, and mark it Running and Ready again.
async fn keep_mirror(client: &kube::Client, setup: &AgentSetup) {
    if let Some(m) = &setup.dns_mirror {
        if let Err(e) = crate::mirror::ensure(client, m).await {
            tracing::warn!(node = %m.node, "keeping the DNS mirror pod: {e:#}");
        }
    }
}

/// Run the node: register, serve the kubelet endpoint, run the pods bound to it and keep the
/// heartbeat, until `shutdown`. Pods keep running after the agent stops.
pub async fn run(
    client: kube::Client,
    id: NodeIdentity,
    setup: AgentSetup,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let host = HostFacts::read();
    std::fs::create_dir_all(&setup.state_dir)?;
    crate::sandbox::cni::ensure_default_config(&setup.cni_conf_dir, &id.pod_cidr, &setup.state_dir.join("cni/ipam"))?;
    let tls = crate::kubelet::KubeletTls::new(&setup.ca_pem, &[id.internal_ip.clone(), id.name.clone()])
        .map_err(|e| anyhow::anyhow!("kubelet endpoint TLS: {e}"))?;
    let listener = tokio::net::TcpListener::bind((id.internal_ip.as_str(), setup.kubelet_port))
        .await
        .map_err(|e| anyhow::anyhow!("listening on {}:{}: {e}", id.internal_ip, setup.kubelet_port))?;
    register(&client, &id, &host, setup.kubelet_port).await?;
    renew_lease(&client, &id).await?;
    keep_mirror(&client, &setup).await;
    let dns = cluster_dns(&client).await;
    let runtime = crate::runtime::Runtime::new(
        client.clone(),
        crate::runtime::RuntimeConfig {
            node_name: id.name.clone(),
            node_ip: id.internal_ip.clone(),
            sandbox: crate::sandbox::SandboxSetup {
                exe: setup.exe.clone(),
                cni: crate::sandbox::cni::CniSetup {
                    bin_dirs: setup.cni_bin_dirs.clone(),
                    conf_dir: setup.cni_conf_dir.clone(),
                },
                state_dir: setup.state_dir.clone(),
                cgroups: crate::sandbox::cgroups::Cgroups::detect(&setup.state_dir),
            },
            dns: crate::sandbox::files::ClusterDns {
                server: dns,
                domain: "cluster.local".into(),
            },
            image_catalog: setup.image_catalog.clone(),
        },
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let streams = std::sync::Arc::new(crate::runtime::streams::RuntimeStreams(runtime.clone()));
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(crate::kubelet::serve(listener, tls, streams, async move {
        let _ = server_stop.wait_for(|s| *s).await;
    }));
    let mut runtime_stop = stop_rx.clone();
    let pods = tokio::spawn(runtime.run(async move {
        let _ = runtime_stop.wait_for(|s| *s).await;
    }));
    let mut tick = tokio::time::interval(LEASE_RENEW);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => {
                crate::sandbox::reap_exited_shims();
                if let Err(e) = renew_lease(&client, &id).await {
                    tracing::warn!(node = %id.name, "renewing the node lease: {e:#}");
                }
                // Like the kubelet, post status again when the node lifecycle controller has
                // marked it not Ready (after a stall): heartbeats alone do not clear that.
                if let Err(e) = restore_ready(&client, &id, &host, setup.kubelet_port).await {
                    tracing::warn!(node = %id.name, "posting node status: {e:#}");
                }
                keep_mirror(&client, &setup).await;
            }
        }
    }
    let _ = stop_tx.send(true);
    let _ = pods.await;
    let _ = server.await;
    Ok(())
}
