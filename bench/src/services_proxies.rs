//! The userspace bar: podway's userspace backend beside HAProxy (`mode tcp`) and nginx
//! (`stream`), all three in the node's namespace in front of the same two endpoints, each on
//! ports of its own, measured in alternating rounds so a busy moment hits all of them.
//!
//! Each proxy gets two cores' worth of workers (the runtime's 2 threads, `nbthread 2`,
//! `worker_processes 2`) and balances round-robin. HAProxy and nginx run with configs written
//! into the bench's work dir and are stopped (TERM, then KILL) when dropped.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use podway_proxy::{Backend, ChangeTracker, NodeContext, UserspaceBackend, UserspaceConfig};

use crate::services_net::{self as net, at, Load, Net, NsWorker, ECHO_PORT, ENDPOINTS, NODE_IP, SINK_PORT};
use crate::services_nft::{self as nft, CLUSTER_IP, NODE_PORTS};

/// The proxies in table order, and the front ports (echo, sink) each listens on.
pub const PROXIES: [(&str, [u16; 2]); 3] = [
    ("podway userspace", NODE_PORTS),
    ("HAProxy (tcp)", [31080, 31081]),
    ("nginx (stream)", [32080, 32081]),
];

/// What one proxy (or the direct path) measured.
#[derive(Debug, Clone, Default)]
pub struct ProxyResult {
    /// Bulk runs' times.
    pub bulk: Vec<Duration>,
    /// Closed-loop load on kept connections.
    pub kept: Load,
    /// Closed-loop load with a new connection per request.
    pub fresh: Load,
}

/// Everything this part measured: one result per [`PROXIES`] entry, then the direct path.
#[derive(Debug, Clone, Default)]
pub struct ProxyResults {
    /// Bytes per bulk run.
    pub bytes: u64,
    /// Connections in flight.
    pub concurrency: usize,
    /// Per proxy, then direct (client to one endpoint, no proxy).
    pub results: Vec<ProxyResult>,
}

/// The knobs of this part.
#[derive(Debug, Clone)]
pub struct ProxyLoad {
    /// Bytes per bulk run.
    pub bytes: u64,
    /// Rounds (each measures every proxy once).
    pub rounds: usize,
    /// Connections in flight.
    pub concurrency: usize,
    /// Each closed-loop run's length.
    pub seconds: u64,
    /// Each closed-loop run's request cap.
    pub max_requests: usize,
}

/// Runs this part in `net` (servers running, no nftables table), writing configs under `work`.
pub fn measure(
    net: &Net,
    client: &NsWorker,
    work: &Path,
    load: &ProxyLoad,
    progress: &dyn Fn(&str),
) -> Result<ProxyResults> {
    std::fs::create_dir_all(work)?;
    // The userspace backend binds the cluster IP too; with nftables it is never local.
    net.exec("node", &["ip", "addr", "add", &format!("{CLUSTER_IP}/32"), "dev", "lo"])?;
    let _userspace = Userspace::start(net)?;
    let _haproxy = Proxy::start(net, "haproxy", &haproxy_args(work)?)?;
    let _nginx = Proxy::start(net, "nginx", &nginx_args(work)?)?;
    for (name, [echo, _]) in PROXIES {
        client
            .run(move || net::until_echoes(at(NODE_IP, echo), Duration::from_secs(10)))?
            .with_context(|| format!("{name} does not answer"))?;
    }
    let mut targets: Vec<[SocketAddr; 2]> = PROXIES
        .iter()
        .map(|(_, [e, s])| [at(NODE_IP, *e), at(NODE_IP, *s)])
        .collect();
    targets.push([at(ENDPOINTS[0], ECHO_PORT), at(ENDPOINTS[0], SINK_PORT)]);
    let mut out = ProxyResults {
        bytes: load.bytes,
        concurrency: load.concurrency,
        results: vec![ProxyResult::default(); targets.len()],
    };
    let (c, secs, max) = (load.concurrency, Duration::from_secs(load.seconds), load.max_requests);
    for round in 0..load.rounds {
        progress(&format!("  proxies: round {} of {}", round + 1, load.rounds));
        for (i, [echo, sink]) in targets.iter().copied().enumerate() {
            let bytes = load.bytes;
            let r = &mut out.results[i];
            r.bulk.push(client.run(move || net::send_bulk(sink, bytes))??);
            let kept = client.run(move || net::closed_loop(echo, c, false, max, secs))??;
            let fresh = client.run(move || net::closed_loop(echo, c, true, max, secs))??;
            r.kept.merge(kept);
            r.fresh.merge(fresh);
        }
    }
    Ok(out)
}

/// podway's userspace backend on a runtime whose two worker threads live in the node's
/// namespace (sockets belong to the namespace of the thread that creates them).
struct Userspace {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Userspace {
    fn start(net: &Net) -> Result<Userspace> {
        let path = net.path("node");
        let failed = Arc::new(AtomicBool::new(false));
        let flag = failed.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || {
                if net::enter(&path).is_err() {
                    flag.store(true, Ordering::SeqCst);
                }
            })
            .build()?;
        let (svcs, slices) = nft::objects(1);
        let mut t = ChangeTracker::new(NodeContext {
            node_name: "node".into(),
            node_ips: vec![NODE_IP],
        });
        t.observe(&svcs, &slices);
        let table = t.table().clone();
        let config = UserspaceConfig::new(vec![NODE_IP], net::POD_CIDR.parse().context("pod CIDR")?);
        let (ready_tx, ready) = std::sync::mpsc::channel::<Result<(), String>>();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(async move {
            let mut backend = UserspaceBackend::with_addresses(config, Box::new(podway_proxy::userspace::NoAddresses));
            let synced = backend.sync_full(&table).await.map_err(|e| e.to_string());
            let ok = synced.is_ok();
            let _ = ready_tx.send(synced);
            if ok {
                let _ = stopped.await;
            }
            let _ = backend.cleanup().await;
        });
        let us = Userspace {
            stop: Some(stop),
            rt: Some(rt),
        };
        match ready.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) if !failed.load(Ordering::SeqCst) => Ok(us),
            Ok(Ok(())) => bail!("a userspace runtime thread could not enter the node's namespace"),
            Ok(Err(e)) => bail!("the userspace backend's sync failed: {e}"),
            Err(_) => bail!("the userspace backend did not sync within 10 s"),
        }
    }
}

impl Drop for Userspace {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// A server process (a proxy, or an endpoint's nginx) in one of the namespaces, stopped when
/// dropped.
pub struct Proxy {
    name: &'static str,
    child: Child,
}

impl Proxy {
    fn start(net: &Net, name: &'static str, args: &[String]) -> Result<Proxy> {
        Proxy::start_in(net, "node", name, args)
    }

    /// Starts `args` (whose first word is `name`) in namespace `short` of `net`.
    pub fn start_in(net: &Net, short: &str, name: &'static str, args: &[String]) -> Result<Proxy> {
        let child = Command::new("ip")
            .args(["netns", "exec", &net.ns(short)])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {name} (scripts/install-deps.sh test installs it)"))?;
        Ok(Proxy { name, child })
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // TERM: nginx's master stops its workers, HAProxy exits; KILL only if that hangs.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("podway-bench: {} did not stop on TERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn upstreams(port: u16, line: impl Fn(usize, Ipv4Addr, u16) -> String) -> String {
    ENDPOINTS
        .iter()
        .enumerate()
        .map(|(i, ip)| line(i, *ip, port))
        .collect::<Vec<_>>()
        .join("\n")
}

/// HAProxy's command line, its config written to `work/haproxy.cfg`.
fn haproxy_args(work: &Path) -> Result<Vec<String>> {
    let [echo, sink] = PROXIES[1].1;
    let backend = |name: &str, port: u16| {
        format!(
            "backend {name}\n  balance roundrobin\n{}\n",
            upstreams(port, |i, ip, p| format!("  server ep{i} {ip}:{p}"))
        )
    };
    let cfg = format!(
        "global\n  nbthread 2\n  maxconn 4096\n\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n\n\
         frontend echo\n  bind {NODE_IP}:{echo}\n  default_backend echo\n\n\
         frontend sink\n  bind {NODE_IP}:{sink}\n  default_backend sink\n\n{}\n{}",
        backend("echo", ECHO_PORT),
        backend("sink", SINK_PORT)
    );
    let path = work.join("haproxy.cfg");
    std::fs::write(&path, cfg)?;
    // -db: stay in the foreground, so the child is HAProxy itself.
    Ok(vec!["haproxy".into(), "-db".into(), "-f".into(), display(&path)])
}

/// nginx's command line, its config written to `work/nginx.conf`.
fn nginx_args(work: &Path) -> Result<Vec<String>> {
    let module = [
        "/usr/lib/nginx/modules/ngx_stream_module.so",
        "/usr/share/nginx/modules/ngx_stream_module.so",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .context("nginx's stream module is missing (scripts/install-deps.sh test installs libnginx-mod-stream)")?;
    let [echo, sink] = PROXIES[2].1;
    let upstream = |name: &str, port: u16| {
        format!(
            "  upstream {name} {{\n{}\n  }}\n",
            upstreams(port, |_, ip, p| format!("    server {ip}:{p};"))
        )
    };
    let log = display(&work.join("nginx-error.log"));
    let cfg = format!(
        "load_module {};\nworker_processes 2;\npid {};\nerror_log {log} warn;\n\
         events {{ worker_connections 8192; }}\n\nstream {{\n{}{}\
         \x20 server {{ listen {NODE_IP}:{echo}; proxy_pass echo; }}\n\
         \x20 server {{ listen {NODE_IP}:{sink}; proxy_pass sink; }}\n}}\n",
        module.display(),
        display(&work.join("nginx.pid")),
        upstream("echo", ECHO_PORT),
        upstream("sink", SINK_PORT),
    );
    nginx_command(work, &cfg, log)
}

/// nginx in the foreground with `cfg` written to `work/nginx.conf`, logging errors to `log`.
pub fn nginx_command(work: &Path, cfg: &str, log: String) -> Result<Vec<String>> {
    let path = work.join("nginx.conf");
    std::fs::write(&path, cfg)?;
    Ok(vec![
        "nginx".into(),
        "-p".into(),
        display(work),
        "-e".into(),
        log,
        "-c".into(),
        display(&path),
        "-g".into(),
        "daemon off;".into(),
    ])
}

/// A path as a config file or command line spells it.
pub fn display(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haproxy_balances_both_endpoints_on_its_own_ports() {
        let dir = std::env::temp_dir().join(format!("pwbench-haproxy-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let args = haproxy_args(&dir).unwrap();
        let cfg = std::fs::read_to_string(dir.join("haproxy.cfg")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(args[0], "haproxy");
        assert!(cfg.contains("bind 192.0.2.1:31080"), "{cfg}");
        assert!(cfg.contains("server ep0 10.250.1.2:8080"), "{cfg}");
        assert!(cfg.contains("server ep1 10.250.2.2:9000"), "{cfg}");
        assert!(cfg.contains("mode tcp"), "{cfg}");
    }
}
