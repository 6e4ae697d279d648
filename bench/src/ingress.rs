//! The Ingress phase (`BENCH_PHASES=ingress`, root only): issue 5's bars side by side in one run.
//!
//! 1. podway's Ingress server beside nginx and HAProxy as reverse proxies in front of the same
//!    endpoints ([`crate::ingress_proxies`]);
//! 2. on a real one-node cluster: how long after the API write a changed Ingress routes (each
//!    change is a new path, polled on the node's port 80 until it answers), and the node agent's
//!    memory before and after 1,000 Ingresses.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::host::Memory;
use crate::ingress_proxies::{self, IngressLoad, IngressResults, PROXIES};
use crate::nodes;
use crate::stats::{rate, Summary};

/// The phase's knobs, from `BENCH_ING_*` environment variables.
#[derive(Debug, Clone)]
pub struct Knobs {
    /// `BENCH_ING_ROUNDS`: rounds over the proxies (3).
    pub rounds: usize,
    /// `BENCH_ING_SECONDS`: each load run's length (3).
    pub seconds: u64,
    /// `BENCH_ING_CONNECTIONS`: h2load's connections (64).
    pub connections: usize,
    /// `BENCH_ING_CONCURRENCY`: the bench client's connections in flight (16).
    pub concurrency: usize,
    /// `BENCH_ING_CHANGES`: Ingress changes timed (50).
    pub changes: usize,
    /// `BENCH_ING_COUNT`: Ingresses for the memory figure (1,000).
    pub ingresses: usize,
}

impl Knobs {
    /// The knobs from the environment, defaults where unset.
    pub fn from_env() -> Knobs {
        fn get<T: std::str::FromStr>(name: &str, default: T) -> T {
            std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
        }
        Knobs {
            rounds: get("BENCH_ING_ROUNDS", 3).clamp(1, 20),
            seconds: get("BENCH_ING_SECONDS", 3).clamp(1, 60),
            connections: get("BENCH_ING_CONNECTIONS", 64).clamp(1, 1000),
            concurrency: get("BENCH_ING_CONCURRENCY", 16).clamp(1, 1000),
            changes: get("BENCH_ING_CHANGES", 50).clamp(1, 1000),
            ingresses: get("BENCH_ING_COUNT", 1000).clamp(1, 10_000),
        }
    }
}

/// What the phase measured.
#[derive(Debug, Default)]
pub struct IngressPhase {
    /// The proxies side by side.
    pub proxies: Option<IngressResults>,
    /// API write → the change routes, per change.
    pub changes: Vec<Duration>,
    /// The node agent with one Ingress, and with [`Knobs::ingresses`] more.
    pub memory: Option<(Memory, Memory)>,
}

/// Runs the phase with `bin` (podway) in `work` (the bench's work dir: the cluster's data dir is
/// `work/ingress-cluster/data`, where bench/run.sh looks for clusters to `podway down`).
pub async fn measure(bin: &Path, work: &Path, k: &Knobs) -> Result<IngressPhase> {
    let mut out = IngressPhase::default();
    let load = IngressLoad {
        rounds: k.rounds,
        seconds: k.seconds,
        connections: k.connections,
        concurrency: k.concurrency,
        max_requests: 2_000_000,
    };
    let proxies_work = work.join("ingress-proxies");
    out.proxies = Some(
        tokio::task::spawn_blocking(move || ingress_proxies::measure(&proxies_work, &load, &crate::progress)).await??,
    );

    crate::progress("  Ingress changes and memory on a 1-node cluster");
    let layout = nodes::Layout::bench(2, "ingress");
    let dir = work.join("ingress-cluster");
    let (c, client) = nodes::start(bin, &dir, &layout, 1).await?;
    let measured = live(&client, &c.data_dir(), c.podway.pid(), k, &mut out).await;
    drop(client);
    let (_, left) = c.down()?;
    if !left.is_empty() {
        bail!("podway down left network namespaces behind: {left:?}");
    }
    measured?;
    Ok(out)
}

/// The live part on a running cluster.
async fn live(client: &kube::Client, data: &Path, up: u32, k: &Knobs, out: &mut IngressPhase) -> Result<()> {
    let node_ip = nodes::node_ip(client).await?;
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), "default");
    deployments
        .create(
            &PostParams::default(),
            &from(serde_json::json!({
                "metadata": {"name": "web"},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}},
                                      "spec": {"containers": [{"name": "web", "image": "traefik/whoami"}]}}}
            })),
        )
        .await?;
    let services: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(client.clone(), "default");
    services
        .create(
            &PostParams::default(),
            &from(serde_json::json!({
                "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}
            })),
        )
        .await?;
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), "default");
    ingresses
        .create(&PostParams::default(), &ingress("live", None, "/v-0"))
        .await?;
    let target = SocketAddr::from((node_ip, 80));
    until_status(target, "bench.example.com", "/v-0", 200, Duration::from_secs(60)).await?;

    crate::progress(&format!("  {} Ingress changes", k.changes));
    for i in 1..=k.changes {
        let path = format!("/v-{i}");
        let patch = serde_json::json!({"spec": {"rules": [{"host": "bench.example.com", "http": {"paths": [
            {"path": path, "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}});
        ingresses
            .patch("live", &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        let written = Instant::now();
        until_status(target, "bench.example.com", &path, 200, Duration::from_secs(10)).await?;
        out.changes.push(written.elapsed());
    }

    crate::progress(&format!("  {} Ingresses", k.ingresses));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = crate::podmem::snapshot(data, up)?.agent;
    for i in 0..k.ingresses {
        let name = format!("many-{i}");
        ingresses
            .create(
                &PostParams::default(),
                &ingress(&name, Some(&format!("h{i}.example.com")), "/"),
            )
            .await?;
    }
    let last = format!("h{}.example.com", k.ingresses - 1);
    until_status(target, &last, "/", 200, Duration::from_secs(120)).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = crate::podmem::snapshot(data, up)?.agent;
    out.memory = Some((before, after));
    Ok(())
}

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("a valid object")
}

/// An Ingress `name` routing `path` (Prefix) on `host` to Service web.
fn ingress(name: &str, host: Option<&str>, path: &str) -> Ingress {
    let host = host.unwrap_or("bench.example.com");
    from(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"rules": [{"host": host, "http": {"paths": [
            {"path": path, "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}
    }))
}

/// GET `path` with `Host: host` on new connections until the status is `want` (polled
/// every millisecond, bounded by `wait`).
async fn until_status(target: SocketAddr, host: &str, path: &str, want: u16, wait: Duration) -> Result<()> {
    let deadline = Instant::now() + wait;
    loop {
        if status(target, host, path).await.ok() == Some(want) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("http://{host}{path} via {target} did not answer {want} within {wait:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// One request's status code.
async fn status(target: SocketAddr, host: &str, path: &str) -> Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(target)).await??;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut head = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(1), s.read_exact(&mut head)).await??;
    Ok(std::str::from_utf8(&head[9..12])?.parse()?)
}

/// Prints the phase's tables.
pub fn print(p: &IngressPhase, k: &Knobs) {
    println!("\n## Ingress\n");
    println!(
        "- proxies: all in the node namespace with 2 threads/workers each, round-robin over the same 2 endpoints (nginx answering `200 ok`), {} rounds of {} s per load; h2load with {} connections (HTTP/2: 10 streams each), the bench's client with {} connections in flight",
        k.rounds, k.seconds, k.connections, k.concurrency
    );
    println!("- live: a 1-node cluster; {} changes, each a new path polled every millisecond on the node's port 80 until it answers; the node agent's memory (it also runs the Service proxy and DNS) before and after {} Ingresses\n", k.changes, k.ingresses);
    if let Some(r) = &p.proxies {
        print!("{}", proxy_table(r));
    }
    println!();
    println!("| Measure | podway | Bar: met? |\n|---|---:|---|");
    if let Some(s) = Summary::of(&p.changes) {
        println!(
            "| Ingress change routes after the API write, p50 / p99 | {} / {} | under 100 ms: {} |",
            crate::report::ms(s.p50),
            crate::report::ms(s.p99),
            if s.p99 < Duration::from_millis(100) {
                "yes"
            } else {
                "no"
            }
        );
    }
    if let Some((before, after)) = &p.memory {
        let mb = |kib: u64| kib as f64 / 1024.0;
        println!(
            "| node agent RSS with {} Ingresses (growth) | {:.1} MB (+{:.1} MB) | under 100 MB: {} |",
            k.ingresses,
            mb(after.rss_kib),
            mb(after.rss_kib.saturating_sub(before.rss_kib)),
            crate::report::yes(mb(after.rss_kib) < 100.0)
        );
    }
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The proxies' table: a column per proxy and the direct path, the bars judged against nginx
/// and HAProxy from the numbers beside them.
pub fn proxy_table(r: &IngressResults) -> String {
    let cell = |v: Option<f64>| v.map_or("—".to_string(), |x| format!("{x:.0}"));
    let mut names: Vec<&str> = PROXIES.iter().map(|p| p.0).collect();
    names.push("direct");
    let mut out = format!(
        "| Measure | {} | Bar: met? |\n|---|{}---|\n",
        names.join(" | "),
        "---:|".repeat(names.len())
    );
    type Pick = fn(&ingress_proxies::IngressResult) -> Option<f64>;
    let rows: [(&str, Pick); 4] = [
        ("HTTP/1.1 keep-alive req/s (h2load)", |x| mean(&x.h1_rps)),
        ("HTTP/2 req/s (h2load)", |x| mean(&x.h2_rps)),
        ("HTTP/1.1 keep-alive req/s (bench client)", |x| {
            Some(rate(x.kept.requests, x.kept.elapsed))
        }),
        ("HTTP/1.1 new connection req/s (bench client)", |x| {
            Some(rate(x.fresh.requests, x.fresh.elapsed))
        }),
    ];
    for (what, pick) in rows {
        let v: Vec<Option<f64>> = r.results.iter().map(pick).collect();
        let bar = match (v[0], v[1], v[2]) {
            (Some(p), Some(n), Some(h)) => format!(
                "≥1.2× nginx and ≥ HAProxy: {} ({:.2}× nginx, {:.2}× HAProxy)",
                crate::report::yes(p >= 1.2 * n && p >= h),
                p / n,
                p / h
            ),
            _ => String::new(),
        };
        out += &format!(
            "| {what} | {} | {bar} |\n",
            v.into_iter().map(cell).collect::<Vec<_>>().join(" | ")
        );
    }
    for (what, fresh) in [("keep-alive", false), ("new connection", true)] {
        let p99: Vec<Option<Duration>> = r
            .results
            .iter()
            .map(|x| Summary::of(if fresh { &x.fresh.latencies } else { &x.kept.latencies }).map(|s| s.p99))
            .collect();
        let bar = match (p99[0], p99[1]) {
            (Some(p), Some(n)) => format!("no worse than nginx: {}", crate::report::yes(p <= n)),
            _ => String::new(),
        };
        let cells: Vec<String> = p99
            .iter()
            .map(|d| d.map_or("—".to_string(), |d| format!("{:.0} µs", d.as_secs_f64() * 1e6)))
            .collect();
        out += &format!("| HTTP/1.1 {what} p99 | {} | {bar} |\n", cells.join(" | "));
    }
    out
}
