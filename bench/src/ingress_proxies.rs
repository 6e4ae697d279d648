//! The Ingress bar: podway's Ingress server beside nginx and HAProxy (`mode http`) as reverse
//! proxies, all three in the node namespace in front of the same two endpoints, measured in
//! alternating rounds so a busy moment hits all of them.
//!
//! The endpoints are nginx answering `200 ok` from a `return` (the cheapest HTTP server at hand,
//! the same for every proxy). Each proxy gets two cores' worth of workers (podway's runtime with
//! 2 threads, `nbthread 2`, `worker_processes 2`), balances round-robin and keeps connections to
//! the endpoints alive. The client namespace drives them: h2load for HTTP/1.1 keep-alive and
//! HTTP/2 (prior knowledge) throughput, and the bench's own HTTP/1.1 client for latencies, with
//! kept connections and with a new connection per request.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;

use crate::services_net::{at, closed_loop_of, http_get, Exchange, Load, Net, NsWorker, ENDPOINTS, NODE_IP};
use crate::services_proxies::{display, nginx_command, Proxy};

/// The endpoints' HTTP port.
const ENDPOINT_PORT: u16 = 80;

/// The proxies in table order: name, HTTP/1.1 port, HTTP/2 (prior knowledge) port.
pub const PROXIES: [(&str, u16, u16); 3] = [
    ("podway ingress", 8081, 8081),
    ("nginx", 8082, 8083),
    ("HAProxy (http)", 8084, 8085),
];

/// What one proxy (or the direct path) measured.
#[derive(Debug, Clone, Default)]
pub struct IngressResult {
    /// h2load's HTTP/1.1 keep-alive requests/s, one per round.
    pub h1_rps: Vec<f64>,
    /// h2load's HTTP/2 requests/s, one per round.
    pub h2_rps: Vec<f64>,
    /// The bench client on kept connections.
    pub kept: Load,
    /// The bench client with a new connection per request.
    pub fresh: Load,
}

/// Everything this part measured: one result per [`PROXIES`] entry, then the direct path.
#[derive(Debug, Clone, Default)]
pub struct IngressResults {
    /// Per proxy, then direct (client to one endpoint).
    pub results: Vec<IngressResult>,
}

/// The knobs of this part.
#[derive(Debug, Clone)]
pub struct IngressLoad {
    /// Rounds (each measures every proxy once).
    pub rounds: usize,
    /// Each run's length.
    pub seconds: u64,
    /// h2load's connections (HTTP/2: 10 streams each).
    pub connections: usize,
    /// The bench client's connections in flight.
    pub concurrency: usize,
    /// Each bench-client run's request cap.
    pub max_requests: usize,
}

/// Runs this part in a network of its own, writing configs under `work`.
pub fn measure(work: &Path, load: &IngressLoad, progress: &dyn Fn(&str)) -> Result<IngressResults> {
    std::fs::create_dir_all(work)?;
    let net = Net::new()?;
    let client = NsWorker::enter(&net, "client")?;
    let _upstreams = [
        Proxy::start_in(&net, "ep1", "nginx", &endpoint_args(&work.join("ep1"), ENDPOINTS[0])?)?,
        Proxy::start_in(&net, "ep2", "nginx", &endpoint_args(&work.join("ep2"), ENDPOINTS[1])?)?,
    ];
    let _podway = PodwayIngress::start(&net)?;
    let _nginx = Proxy::start_in(&net, "node", "nginx", &nginx_args(&work.join("nginx"))?)?;
    let _haproxy = Proxy::start_in(&net, "node", "haproxy", &haproxy_args(work)?)?;
    let mut targets: Vec<(SocketAddr, SocketAddr)> = PROXIES
        .iter()
        .map(|(_, h1, h2)| (at(NODE_IP, *h1), at(NODE_IP, *h2)))
        .collect();
    targets.push((at(ENDPOINTS[0], ENDPOINT_PORT), at(ENDPOINTS[0], ENDPOINT_PORT)));
    for (i, (h1, _)) in targets.iter().copied().enumerate() {
        client
            .run(move || until_answers(h1, Duration::from_secs(10)))?
            .with_context(|| format!("target {i} ({h1}) does not answer"))?;
    }
    let mut out = IngressResults {
        results: vec![IngressResult::default(); targets.len()],
    };
    let (c, secs, max) = (load.concurrency, Duration::from_secs(load.seconds), load.max_requests);
    for round in 0..load.rounds {
        progress(&format!("  ingress proxies: round {} of {}", round + 1, load.rounds));
        for (i, (h1, h2)) in targets.iter().copied().enumerate() {
            let r = &mut out.results[i];
            r.h1_rps
                .push(h2load(&net, h1, load.connections, 1, load.seconds, true)?);
            // The endpoints' nginx speaks HTTP/1.1 only: the direct path has no HTTP/2 figure.
            if i < PROXIES.len() {
                r.h2_rps
                    .push(h2load(&net, h2, load.connections, 10, load.seconds, false)?);
            }
            let kept = client.run(move || closed_loop_of(Exchange::HttpGet, h1, c, false, max, secs))??;
            let fresh = client.run(move || closed_loop_of(Exchange::HttpGet, h1, c, true, max, secs))??;
            r.kept.merge(kept);
            r.fresh.merge(fresh);
        }
    }
    Ok(out)
}

/// h2load against `dst` from the client namespace: requests/s. `h1` forces HTTP/1.1 (one
/// request in flight per connection, kept alive); otherwise HTTP/2 with `streams` per connection.
fn h2load(net: &Net, dst: SocketAddr, connections: usize, streams: usize, seconds: u64, h1: bool) -> Result<f64> {
    let (c, m, d) = (connections.to_string(), streams.to_string(), seconds.to_string());
    let url = format!("http://{dst}/");
    let mut args = vec!["h2load", "-c", &c, "-m", &m, "-D", &d, "-t", "1"];
    if h1 {
        args.push("--h1");
    }
    args.push(&url);
    let out = net
        .exec("client", &args)
        .context("h2load (scripts/install-deps.sh test installs nghttp2-client)")?;
    parse_h2load(&out).with_context(|| format!("h2load against {dst} printed:\n{out}"))
}

/// The requests/s of an h2load report, refusing a run with failed or errored requests.
pub fn parse_h2load(out: &str) -> Result<f64> {
    let requests = out
        .lines()
        .find(|l| l.starts_with("requests:"))
        .context("no requests line")?;
    let count = |word: &str| -> Option<u64> {
        let words: Vec<&str> = requests.split_whitespace().collect();
        let at = words.iter().position(|w| w.trim_end_matches(',') == word)?;
        words.get(at.checked_sub(1)?)?.parse().ok()
    };
    let (failed, errored) = (count("failed").unwrap_or(1), count("errored").unwrap_or(1));
    if failed > 0 || errored > 0 {
        bail!("{failed} failed and {errored} errored requests");
    }
    let finished = out
        .lines()
        .find(|l| l.starts_with("finished in"))
        .context("no finished line")?;
    let rps = finished
        .split(',')
        .find_map(|part| part.trim().strip_suffix(" req/s"))
        .context("no req/s")?;
    Ok(rps.trim().parse()?)
}

/// GET / until a 200 comes back.
fn until_answers(dst: SocketAddr, wait: Duration) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let deadline = Instant::now() + wait;
    rt.block_on(async {
        loop {
            let tried = async {
                let mut s = tokio::net::TcpStream::connect(dst).await?;
                http_get(&mut s).await
            };
            match tokio::time::timeout(Duration::from_secs(1), tried).await {
                Ok(Ok(())) => return Ok(()),
                _ if Instant::now() > deadline => bail!("{dst} did not answer 200 within {wait:?}"),
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
}

/// podway's Ingress server on a runtime of 2 worker threads inside the node namespace, routing
/// every request to both endpoints through a routing table built from one Ingress, as the
/// controller builds it; stopped when dropped.
struct PodwayIngress {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PodwayIngress {
    fn start(net: &Net) -> Result<PodwayIngress> {
        let path = net.path("node");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready) = std::sync::mpsc::channel::<Result<()>>();
        // Threads the runtime spawns inherit the namespace of the thread that builds it.
        let thread = std::thread::spawn(move || {
            let setup = || -> Result<(tokio::runtime::Runtime, std::net::TcpListener, std::net::TcpListener)> {
                crate::services_net::enter(&path)?;
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()?;
                let http = std::net::TcpListener::bind(at(NODE_IP, PROXIES[0].1))?;
                let https = std::net::TcpListener::bind(at(NODE_IP, 8441))?;
                http.set_nonblocking(true)?;
                https.set_nonblocking(true)?;
                Ok((rt, http, https))
            };
            let (rt, http, https) = match setup() {
                Ok(s) => s,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            rt.block_on(async move {
                let (table, findings) = routing_table();
                if !findings.is_empty() {
                    let _ = ready_tx.send(Err(anyhow::anyhow!("the bench's Ingress has findings: {findings:?}")));
                    return;
                }
                let handle = podway_ingress::server::RouterHandle::new(Arc::new(table));
                let http = tokio::net::TcpListener::from_std(http).expect("inside a runtime");
                let https = tokio::net::TcpListener::from_std(https).expect("inside a runtime");
                let _ = ready_tx.send(Ok(()));
                let served = podway_ingress::server::serve(http, https, handle, async move {
                    let _ = stopped.await;
                })
                .await;
                if let Err(e) = served {
                    eprintln!("podway-bench: the podway Ingress server failed: {e:#}");
                }
            });
        });
        ready.recv().context("the podway Ingress thread ended")??;
        Ok(PodwayIngress {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for PodwayIngress {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One Ingress sending everything to Service `web`, whose EndpointSlice lists both endpoints.
fn routing_table() -> (
    podway_ingress::routing::RouteTable,
    Vec<podway_ingress::routing::Finding>,
) {
    let ingress: Ingress = from(serde_json::json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"ingressClassName": "podway", "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}
    }));
    let service: Service = from(serde_json::json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"clusterIP": "10.96.0.80", "ports": [{"port": 80, "targetPort": ENDPOINT_PORT}]}
    }));
    let endpoints: Vec<serde_json::Value> = ENDPOINTS
        .iter()
        .map(|ip| serde_json::json!({"addresses": [ip.to_string()], "conditions": {"ready": true}}))
        .collect();
    let slice: EndpointSlice = from(serde_json::json!({
        "metadata": {"name": "web-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"port": ENDPOINT_PORT, "protocol": "TCP"}]
    }));
    let class = podway_ingress::routing::ClassFilter::new("podway", true);
    let secrets: [Secret; 0] = [];
    podway_ingress::routing::RouteTable::build(&[ingress], &[service], &[slice], &secrets, &class)
}

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("a valid object")
}

/// nginx answering `200 ok` on `ip`:80, its config under `work`.
fn endpoint_args(work: &Path, ip: Ipv4Addr) -> Result<Vec<String>> {
    let server = format!("server {{ listen {ip}:{ENDPOINT_PORT}; location / {{ return 200 \"ok\\n\"; }} }}");
    nginx_with(work, 1, &server)
}

/// nginx as the reverse proxy ingress-nginx configures: round-robin over both endpoints with
/// kept connections, the forwarded headers set.
fn nginx_args(work: &Path) -> Result<Vec<String>> {
    let (_, h1, h2) = PROXIES[1];
    let servers: Vec<String> = ENDPOINTS
        .iter()
        .map(|ip| format!("server {ip}:{ENDPOINT_PORT};"))
        .collect();
    let http = format!(
        "upstream web {{ {} keepalive 64; }}\n\
         server {{ listen {NODE_IP}:{h1}; listen {NODE_IP}:{h2} http2;\n\
         location / {{ proxy_pass http://web; proxy_http_version 1.1; proxy_set_header Connection \"\";\n\
         proxy_set_header Host $host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         proxy_set_header X-Forwarded-Proto $scheme; proxy_set_header X-Request-ID $request_id; }} }}",
        servers.join(" ")
    );
    nginx_with(work, 2, &http)
}

/// An nginx command line with `workers` worker processes and `http` as its http block,
/// logging nothing per request.
fn nginx_with(work: &Path, workers: usize, http: &str) -> Result<Vec<String>> {
    std::fs::create_dir_all(work)?;
    let log = display(&work.join("error.log"));
    let cfg = format!(
        "worker_processes {workers};\npid {};\nerror_log {log} warn;\nevents {{ worker_connections 8192; }}\n\
         http {{ access_log off; keepalive_requests 1000000;\n{http}\n}}\n",
        display(&work.join("nginx.pid")),
    );
    nginx_command(work, &cfg, log)
}

/// HAProxy in `mode http`: round-robin over both endpoints, forwarded-for added.
fn haproxy_args(work: &Path) -> Result<Vec<String>> {
    let (_, h1, h2) = PROXIES[2];
    let servers: Vec<String> = ENDPOINTS
        .iter()
        .enumerate()
        .map(|(i, ip)| format!("  server ep{i} {ip}:{ENDPOINT_PORT}"))
        .collect();
    let cfg = format!(
        "global\n  nbthread 2\n  maxconn 8192\n\ndefaults\n  mode http\n  option forwardfor\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n\n\
         frontend web\n  bind {NODE_IP}:{h1}\n  bind {NODE_IP}:{h2} proto h2\n  default_backend web\n\n\
         backend web\n  balance roundrobin\n  http-reuse always\n{}\n",
        servers.join("\n")
    );
    let path = work.join("haproxy-http.cfg");
    std::fs::write(&path, cfg)?;
    Ok(vec!["haproxy".into(), "-db".into(), "-f".into(), display(&path)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_h2load_report_gives_its_requests_per_second() {
        let out = "finished in 3.00s, 41234.50 req/s, 4.10MB/s\nrequests: 123703 total, 123703 started, 123703 done, 123703 succeeded, 0 failed, 0 errored, 0 timeout\n";
        assert_eq!(parse_h2load(out).unwrap(), 41234.5);
    }

    #[test]
    fn an_h2load_report_with_failed_requests_is_refused() {
        let out = "finished in 3.00s, 41234.50 req/s, 4.10MB/s\nrequests: 100 total, 100 started, 100 done, 90 succeeded, 10 failed, 0 errored, 0 timeout\n";
        assert!(parse_h2load(out).unwrap_err().to_string().contains("10 failed"));
    }

    #[test]
    fn the_bench_ingress_routes_to_both_endpoints_without_findings() {
        let (table, findings) = routing_table();
        assert!(findings.is_empty(), "{findings:?}");
        let headers = http::HeaderMap::new();
        let request = podway_ingress::RequestView {
            host: "bench.example.com",
            path: "/",
            query: None,
            method: "GET",
            headers: &headers,
            client_ip: std::net::IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
            tls: false,
        };
        use podway_ingress::Router;
        match table.decide(&request) {
            podway_ingress::Decision::Proxy(up) => {
                let want: Vec<SocketAddr> = ENDPOINTS.iter().map(|ip| at(*ip, ENDPOINT_PORT)).collect();
                assert_eq!(&up.endpoints[..], &want[..]);
            }
            other => panic!("{other:?}"),
        }
    }
}
