//! `podway up` and `podway down`.

use std::net::{IpAddr, SocketAddr};

use podway_agent::network::{Network, NetworkConfig, SystemIp};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use podway_apiserver::{Config, ServiceSettings};
use podway_store::Store;

use crate::{kubeconfig, nodes};

/// Options of `podway up`.
#[derive(Args, Debug)]
pub struct UpArgs {
    /// Where the cluster keeps its state (database, certificates, kubeconfig).
    #[arg(long, env = "PODWAY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// API server port; 0 picks a free one.
    #[arg(long, default_value_t = 6443)]
    api_port: u16,
    /// Address the API server listens on.
    #[arg(long, default_value = "127.0.0.1")]
    listen_address: IpAddr,
    /// Write the kubeconfig here instead of merging a `podway` context into ~/.kube/config.
    #[arg(long)]
    kubeconfig_path: Option<PathBuf>,
    /// The store: `sqlite` (a file in the data directory) or `etcd://HOST:PORT`.
    #[arg(long, default_value = "sqlite")]
    datastore: String,
    /// The ClusterIP range.
    #[arg(long, default_value = "10.96.0.0/12")]
    service_cidr: String,
    /// The NodePort range, `FROM-TO`.
    #[arg(long, default_value = "30000-32767")]
    node_port_range: String,
    /// The cluster's name: names its nodes (`<name>-control-plane`, `<name>-worker`, ...) and
    /// network, so two clusters can run side by side.
    #[arg(long, default_value = "podway")]
    name: String,
    /// How many nodes (network namespaces with an agent each); 0 runs the control plane alone.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// The node network: the host is .1, nodes .2 up.
    #[arg(long, default_value = "172.30.0.0/24")]
    node_cidr: String,
    /// The pod range; each node gets a /24 of it.
    #[arg(long, default_value = "10.244.0.0/16")]
    pod_cidr: String,
    /// LoadBalancer addresses: ranges (`FROM-TO`) or CIDRs, comma-separated. Default: the node
    /// network's upper range (.200-.254 of a /24). More pools: the `podway-lb-pools` ConfigMap.
    #[arg(long)]
    lb_pool: Option<String>,
    /// Run the API server without the controllers (for developing or testing controllers
    /// against it, the way they run against any cluster).
    #[arg(long)]
    no_controllers: bool,
    /// How Services carry traffic on the nodes: `nftables`, `userspace`, or `auto` (nftables
    /// where usable, else userspace).
    #[arg(long, default_value = "auto", value_parser = ["auto", "nftables", "userspace"])]
    proxy_mode: String,
}

/// The data directory: the flag, else `$XDG_DATA_HOME/podway`, else `~/.local/share/podway`.
pub fn data_dir(flag: Option<PathBuf>) -> PathBuf {
    if let Some(d) = flag {
        return d;
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("podway");
    }
    home().join(".local/share/podway")
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

fn parse_port_range(s: &str) -> Result<(u16, u16)> {
    let (a, b) = s
        .split_once('-')
        .context("--node-port-range must look like 30000-32767")?;
    let (a, b): (u16, u16) = (a.trim().parse()?, b.trim().parse()?);
    if a == 0 || a > b {
        bail!("--node-port-range {s}: the first port must be at least 1 and not above the last");
    }
    Ok((a, b))
}

async fn open_store(datastore: &str, dir: &Path) -> Result<Arc<dyn Store>> {
    if datastore == "sqlite" {
        let path = dir.join("state.db");
        let store =
            podway_store::sqlite::SqliteStore::open(&path).with_context(|| format!("opening {}", path.display()))?;
        return Ok(Arc::new(store));
    }
    if let Some(rest) = datastore.strip_prefix("etcd://") {
        let endpoint = format!("http://{rest}");
        let store = podway_store::etcd::EtcdStore::connect(&endpoint)
            .await
            .with_context(|| format!("connecting to etcd at {endpoint}; is it running?"))?;
        return Ok(Arc::new(store));
    }
    bail!("--datastore {datastore}: use `sqlite` or `etcd://HOST:PORT`")
}

/// Start everything, print how to use it, and wait for Ctrl-C or `podway down`.
pub async fn run(args: UpArgs) -> Result<()> {
    let started = Instant::now();
    let dir = data_dir(args.data_dir.clone());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let pid_file = dir.join("podway.pid");
    if let Some(pid) = running_pid(&pid_file) {
        bail!(
            "a cluster is already running from {} (pid {pid}); stop it with `podway down`",
            dir.display()
        );
    }
    println!(
        "podway {}: starting a cluster in {}",
        env!("CARGO_PKG_VERSION"),
        dir.display()
    );

    // The node network comes first: the API server also listens on the host's address on it.
    let network = if args.nodes > 0 {
        let config = NetworkConfig {
            cluster: args.name.clone(),
            nodes: args.nodes,
            node_cidr: args
                .node_cidr
                .parse()
                .map_err(|e| anyhow::anyhow!("--node-cidr {}: {e}", args.node_cidr))?,
            pod_cidr: args
                .pod_cidr
                .parse()
                .map_err(|e| anyhow::anyhow!("--pod-cidr {}: {e}", args.pod_cidr))?,
            service_cidr: args
                .service_cidr
                .parse()
                .map_err(|e| anyhow::anyhow!("--service-cidr {}: {e}", args.service_cidr))?,
        };
        // Recorded before anything is created, so `podway down` can clean up even a failed start.
        nodes::save_layout(&dir, &config)?;
        let network = tokio::task::spawn_blocking(move || nodes::network_up(&config)).await??;
        println!(
            "  node network   {} on bridge {} (host {})",
            args.node_cidr,
            network.plan().bridge(),
            network.plan().host_ip()
        );
        Some(network)
    } else {
        let _ = std::fs::remove_file(dir.join("cluster.json"));
        None
    };
    let outcome = serve(&args, &dir, network.as_ref(), started).await;
    // Whatever happened, the pods and the node network go with the cluster.
    nodes::kill_pods(&dir);
    if let Some(net) = network {
        if let Err(e) = tokio::task::spawn_blocking(move || net.down()).await? {
            eprintln!("removing the node network: {e}");
        }
    }
    let _ = std::fs::remove_file(dir.join("podway.pid"));
    outcome
}

/// Run the cluster on its (already created) node network until a signal or a failure.
async fn serve(args: &UpArgs, dir: &Path, network: Option<&Network<SystemIp>>, started: Instant) -> Result<()> {
    let dir = dir.to_path_buf();
    let pid_file = dir.join("podway.pid");
    let host_ip = network.map(|n| IpAddr::V4(n.plan().host_ip()));

    let store = open_store(&args.datastore, &dir).await?;
    println!(
        "  store          {}",
        if args.datastore == "sqlite" {
            format!("sqlite {}", dir.join("state.db").display())
        } else {
            args.datastore.clone()
        }
    );

    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let mut api_shutdown = shutdown_rx.clone();
    let config = Config {
        listen: SocketAddr::new(args.listen_address, args.api_port),
        advertise: host_ip,
        pki_dir: dir.join("pki"),
        extra_names: std::iter::once(args.listen_address.to_string())
            .chain(host_ip.map(|ip| ip.to_string()))
            .collect(),
        store,
        services: ServiceSettings {
            cluster_ip_range: args.service_cidr.clone(),
            node_port_range: parse_port_range(&args.node_port_range)?,
        },
    };
    let running = podway_apiserver::start(config, async move {
        let _ = api_shutdown.wait_for(|s| *s).await;
    })
    .await?;
    let server = format!("https://{}", running.addr);
    println!("  api server     {server}");

    let own = kubeconfig::render(&server, &running.pki);
    kubeconfig::write(&dir.join("kubeconfig"), &own)?;
    let kubeconfig_note = match &args.kubeconfig_path {
        Some(p) => {
            kubeconfig::write(p, &own)?;
            format!("kubectl --kubeconfig {} get nodes", p.display())
        }
        None => {
            let path = std::env::var_os("KUBECONFIG")
                .and_then(|k| std::env::split_paths(&k).next())
                .unwrap_or_else(|| home().join(".kube/config"));
            kubeconfig::merge_into(&path, &own)?;
            println!("  kubeconfig     context \"podway\" in {}", path.display());
            "kubectl get all -A".to_string()
        }
    };
    let controllers = if args.no_controllers {
        println!("  controllers    not started (--no-controllers)");
        None
    } else {
        let client = controller_client(&dir.join("kubeconfig")).await?;
        let mut controllers_shutdown = shutdown_rx.clone();
        let lb_pool = match &args.lb_pool {
            Some(p) => podway_controllers::lbipam::parse_ranges(p).map_err(|e| anyhow::anyhow!("--lb-pool: {e}"))?,
            None => podway_controllers::lbipam::default_pool(&args.node_cidr)
                .map_err(|e| anyhow::anyhow!("--node-cidr: {e}"))?,
        };
        let config = podway_controllers::ControllerConfig {
            lb_pool,
            ..Default::default()
        };
        println!("  controllers    started");
        Some(tokio::spawn(podway_controllers::run(client, config, async move {
            let _ = controllers_shutdown.wait_for(|s| *s).await;
        })))
    };
    let link = host_ip.map(|ip| nodes::AgentLink {
        server: format!("https://{ip}:{}", running.addr.port()),
        ca_file: dir.join("pki/ca.crt"),
        token_file: dir.join("pki/token"),
        data_dir: dir.clone(),
        proxy_mode: args.proxy_mode.clone(),
    });
    let mut agents = match (network, &link) {
        (Some(net), Some(link)) => {
            let agents = nodes::Agents::start(net, link, &dir)?;
            println!("  nodes          {}", net.plan().node_names().join(", "));
            Some(agents)
        }
        _ => None,
    };
    std::fs::write(&pid_file, std::process::id().to_string())?;
    // With nodes, every node's port 80 serves Ingresses: show the shortest way to one.
    let ingress_hint = match (network, agents.is_some()) {
        (Some(net), true) => net
            .plan()
            .nodes()
            .first()
            .map(|n| {
                format!(
                    "\n  kubectl create ingress web --rule=\"/*=web:80\"\n  curl http://{}/",
                    n.ip
                )
            })
            .unwrap_or_default(),
        _ => String::new(),
    };
    println!("ready in {:.2}s. Try:\n  {kubeconfig_note}\n  kubectl create deployment web --image=nginx --replicas=2 --port=80\n  kubectl expose deployment web --type=NodePort --port=80{ingress_hint}\nStop with Ctrl-C or `podway down`.", started.elapsed().as_secs_f64());

    let controllers_ended = async {
        match controllers {
            Some(handle) => match handle.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("controllers stopped: {e:#}"),
                Err(e) => eprintln!("controllers crashed: {e}"),
            },
            None => std::future::pending().await,
        }
    };
    let supervise = async {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            if let (Some(a), Some(net), Some(link)) = (agents.as_mut(), network, link.as_ref()) {
                a.restart_exited(net, link, &dir);
            }
        }
    };
    tokio::select! {
        _ = wait_for_signal() => {}
        _ = controllers_ended => {}
        _ = supervise => {}
    }
    println!("stopping");
    let _ = shutdown_tx.send(true);
    if let Some(a) = agents.take() {
        tokio::task::spawn_blocking(move || a.stop()).await?;
    }
    Ok(())
}

/// A client for the controllers: the admin kubeconfig podway just wrote. They reach the API
/// over HTTPS like any other client (ARCHITECTURE.md §1), never through shortcuts.
async fn controller_client(kubeconfig: &Path) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// The pid in `pid_file` if that process is alive and is podway (a pid left by a killed
/// cluster may have been reused by another program, which must never get our signal).
fn running_pid(pid_file: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()?;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let ours = std::env::current_exe().ok()?;
    let is_podway = exe == ours
        || exe
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("podway"));
    (alive(pid) && is_podway).then_some(pid)
}

/// Whether `pid` is a live process: it exists and is not a zombie waiting for its parent.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name: `123 (podway) S ...`.
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Stop the cluster running from `dir` and wait until it is gone.
pub fn down(dir: &Path) -> Result<()> {
    let pid_file = dir.join("podway.pid");
    let Some(pid) = running_pid(&pid_file) else {
        // Nothing runs, but a killed cluster may have left its node network behind.
        if let Ok(layout) = nodes::load_layout(dir) {
            nodes::kill_pods(dir);
            nodes::network_down_stale(&layout.cluster)?;
            println!("removed the node network the cluster in {} left behind", dir.display());
        } else {
            println!("no cluster is running from {}", dir.display());
        }
        let _ = std::fs::remove_file(&pid_file);
        return Ok(());
    };
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()?;
    if !status.success() {
        bail!("could not signal pid {pid}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive(pid) {
        if Instant::now() > deadline {
            bail!("pid {pid} did not stop within 30s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("stopped the cluster in {}", dir.display());
    Ok(())
}
