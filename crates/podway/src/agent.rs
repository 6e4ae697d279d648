//! `podway agent`: the node agent, run inside its node (by `podway up`) or on another machine
//! that joins a cluster over the network.

use std::path::PathBuf;

use anyhow::{Context, Result};
use base64::Engine;
use clap::Args;
use podway_agent::node::NodeIdentity;

/// Where the agent serves Prometheus metrics of the Service proxy (kube-proxy's port).
const METRICS_PORT: u16 = 10249;

/// Options of `podway agent`.
#[derive(Args, Debug)]
pub struct AgentArgs {
    /// The API server, e.g. `https://172.30.0.1:6443`.
    #[arg(long)]
    server: String,
    /// A bearer token that authenticates to the API server.
    #[arg(long, env = "PODWAY_TOKEN", conflicts_with = "token_file")]
    token: Option<String>,
    /// A file holding the token.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// The cluster CA certificate (PEM).
    #[arg(long)]
    ca_file: PathBuf,
    /// This node's name.
    #[arg(long)]
    node_name: String,
    /// This node's address, as other nodes and the API server reach it.
    #[arg(long)]
    node_ip: String,
    /// The pod range of this node, e.g. `10.244.1.0/24`.
    #[arg(long)]
    pod_cidr: String,
    /// The whole pod network of the cluster, e.g. `10.244.0.0/16`: traffic from outside it to
    /// a Service is masqueraded so replies return through this node [default: --pod-cidr].
    #[arg(long)]
    cluster_cidr: Option<String>,
    /// How Services carry traffic on this node: `nftables`, `userspace`, or `auto` (nftables
    /// where usable, else userspace).
    #[arg(long, default_value = "auto", value_parser = parse_proxy_mode)]
    proxy_mode: podway_proxy::ProxyMode,
    /// The interface on the node network that answers ARP for the LoadBalancer IPs this node
    /// announces (none: LoadBalancer IPs are not announced).
    #[arg(long)]
    node_interface: Option<String>,
    /// The cluster domain served by cluster DNS.
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
    /// Where cluster DNS forwards names outside the cluster (its `nameserver` lines).
    #[arg(long, default_value = "/etc/resolv.conf")]
    upstream_resolv_conf: PathBuf,
    /// Label the node as the control plane.
    #[arg(long)]
    control_plane: bool,
    /// Where pods' state and logs live.
    #[arg(long, default_value = "/var/lib/podway-agent")]
    state_dir: PathBuf,
    /// Directories with the CNI plugins (`:`-separated).
    #[arg(long, default_value = "/usr/lib/cni:/opt/cni/bin")]
    cni_bin_dir: String,
    /// The CNI network configuration directory [default: STATE_DIR/cni/net.d; a bridge +
    /// host-local configuration over the pod range is written there if it is empty].
    #[arg(long)]
    cni_conf_dir: Option<PathBuf>,
    /// The image catalog: image names or patterns mapped to programs (see docs/images.md)
    /// [default: STATE_DIR/images.yaml].
    #[arg(long)]
    image_catalog: Option<PathBuf>,
    /// Port of the kubelet endpoint (logs, exec, port-forward) on the node IP.
    #[arg(long, default_value_t = 10250)]
    kubelet_port: u16,
    /// Exit when the process that started the agent goes away (set by `podway up`, so an
    /// agent never outlives a killed cluster).
    #[arg(long)]
    exit_with_parent: bool,
}

fn parse_proxy_mode(s: &str) -> Result<podway_proxy::ProxyMode, String> {
    match s {
        "auto" => Ok(podway_proxy::ProxyMode::Auto),
        "nftables" => Ok(podway_proxy::ProxyMode::Nftables),
        "userspace" => Ok(podway_proxy::ProxyMode::Userspace),
        other => Err(format!("unknown proxy mode {other:?}: use auto, nftables or userspace")),
    }
}

/// Run the agent until SIGTERM (or until its parent goes, with `--exit-with-parent`).
pub async fn run(args: AgentArgs) -> Result<()> {
    let token = match (&args.token, &args.token_file) {
        (Some(t), _) => t.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("reading {}", f.display()))?
            .trim()
            .to_string(),
        (None, None) => {
            anyhow::bail!("give --token or --token-file: the agent authenticates to the API server with a token")
        }
    };
    let ca = std::fs::read(&args.ca_file).with_context(|| format!("reading {}", args.ca_file.display()))?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&ca);
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority-data: {b64}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n",
        args.server
    );
    let kc = kube::config::Kubeconfig::from_yaml(&kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    let client = kube::Client::try_from(config)?;
    let id = NodeIdentity {
        name: args.node_name.clone(),
        internal_ip: args.node_ip.clone(),
        pod_cidr: args.pod_cidr.clone(),
        control_plane: args.control_plane,
    };
    let parent = std::os::unix::process::parent_id();
    let exit_with_parent = args.exit_with_parent;
    let stop = async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = term.recv() => return,
                _ = tokio::signal::ctrl_c() => return,
                _ = tick.tick() => {
                    // Reparented: whoever started us is gone.
                    if exit_with_parent && std::os::unix::process::parent_id() != parent {
                        return;
                    }
                }
            }
        }
    };
    let setup = podway_agent::node::AgentSetup {
        cni_conf_dir: args
            .cni_conf_dir
            .clone()
            .unwrap_or_else(|| args.state_dir.join("cni/net.d")),
        image_catalog: args
            .image_catalog
            .clone()
            .unwrap_or_else(|| args.state_dir.join("images.yaml")),
        state_dir: args.state_dir.clone(),
        exe: std::env::current_exe()?,
        cni_bin_dirs: std::env::split_paths(&args.cni_bin_dir).collect(),
        ca_pem: String::from_utf8_lossy(&ca).into_owned(),
        kubelet_port: args.kubelet_port,
        dns_mirror: Some(podway_agent::mirror::DnsMirror {
            node: args.node_name.clone(),
            node_ip: args.node_ip.clone(),
        }),
    };
    let node_ip: std::net::Ipv4Addr = args
        .node_ip
        .parse()
        .with_context(|| format!("--node-ip {}: not an IPv4 address", args.node_ip))?;
    let cluster_cidr = args.cluster_cidr.as_deref().unwrap_or(&args.pod_cidr);
    let proxy_config = podway_proxy::ProxyConfig {
        node_name: args.node_name.clone(),
        node_ips: vec![node_ip],
        pod_cidr: cluster_cidr
            .parse()
            .map_err(|e| anyhow::anyhow!("--cluster-cidr {cluster_cidr}: {e}"))?,
        mode: args.proxy_mode,
        announce_interface: args.node_interface.clone(),
    };
    let dns_config = podway_dns::DnsConfig {
        listen: vec![std::net::SocketAddr::from((node_ip, 53))],
        domain: args.cluster_domain.clone(),
        upstream_resolv_conf: args.upstream_resolv_conf.clone(),
    };
    // The node agent, the Service proxy, cluster DNS and the Ingress controller share one stop: each gets a future
    // that completes when `stop` has.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut proxy = tokio::spawn(podway_proxy::run(client.clone(), proxy_config, stopped()));
    let mut dns = tokio::spawn(podway_dns::run(client.clone(), dns_config, stopped()));
    // The Ingress controller: the node IP's ports 80 and 443, reached from the host.
    let ingress_config = podway_ingress::IngressConfig {
        node_ip,
        http_port: 80,
        https_port: 443,
    };
    let mut ingress = tokio::spawn(podway_ingress::run(client.clone(), ingress_config, stopped()));
    // Per-endpoint connection and byte counters, kube-proxy's metrics port (nftables only).
    let metrics_addr = std::net::SocketAddr::from((node_ip, METRICS_PORT));
    match tokio::net::TcpListener::bind(metrics_addr).await {
        Ok(listener) => {
            tokio::spawn(podway_proxy::nftables::metrics::serve(
                listener,
                podway_proxy::nftables::metrics::NftCounters,
                stopped(),
            ));
        }
        Err(e) => tracing::warn!("no Service metrics on {metrics_addr}: {e}"),
    }
    let node = podway_agent::node::run(client, id, setup, stopped());
    tokio::pin!(node);
    tokio::pin!(stop);
    // The first component to fail ends the agent (`podway up` restarts it); a stop ends them
    // all, and each removes what it must (the proxy its table and announced addresses).
    let (result, node_done) = tokio::select! {
        r = &mut node => (r, true),
        _ = &mut stop => (Ok(()), false),
        r = wait_component("Service proxy", &mut proxy) => (r, false),
        r = wait_component("cluster DNS", &mut dns) => (r, false),
        r = wait_component("Ingress controller", &mut ingress) => (r, false),
    };
    let _ = stop_tx.send(true);
    if !node_done {
        node.await?;
    }
    for task in [proxy, dns, ingress] {
        if !task.is_finished() {
            let _ = task.await;
        }
    }
    result
}

/// Wait for a component task; its end is an error, since it should run until stopped.
async fn wait_component(name: &str, task: &mut tokio::task::JoinHandle<anyhow::Result<()>>) -> Result<()> {
    match task.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.context(format!("the {name} failed"))),
        Err(e) => Err(anyhow::anyhow!("the {name} panicked: {e}")),
    }
}
