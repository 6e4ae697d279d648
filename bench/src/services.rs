//! The Services phase (`BENCH_PHASES=services`): issue 4's bars side by side in one run.
//!
//! 1. the nftables data path ([`crate::services_nft`]): client namespace → node namespace
//!    (podway's rules) → endpoint namespaces, beside a direct connection over the same hops;
//! 2. programming 10,000 Services × 2 endpoints through the proxy's model and renderer;
//! 3. the userspace backend beside HAProxy and nginx ([`crate::services_proxies`]);
//! 4. cluster DNS on loopback ([`crate::services_dns`]).
//!
//! 1–3 need root (namespaces, veths, nft) and are skipped with a note without it. Everything
//! they start lives in the bench's own namespaces (`pwbench-svc-<pid>-*`) and is stopped and
//! removed when this returns, also on failure.

use std::path::Path;

use anyhow::Result;

use crate::services_dns::{self, DnsLoad, DnsResults};
use crate::services_net::{Net, NsWorker, Servers};
use crate::services_nft::{self, NftLoad, NftResults};
use crate::services_proxies::{self, ProxyLoad, ProxyResults};
use crate::services_report as report;

/// The phase's knobs, from `BENCH_SVC_*` environment variables.
#[derive(Debug, Clone)]
pub struct Knobs {
    /// `BENCH_SVC_COUNT`: Services in the big table and the DNS snapshot (10,000).
    pub services: usize,
    /// `BENCH_SVC_MB`: megabytes per bulk run (1,000).
    pub megabytes: u64,
    /// `BENCH_SVC_REQUESTS`: round trips per target on kept connections (20,000; a quarter of
    /// it on new connections and as `connect()`s per table size).
    pub requests: usize,
    /// `BENCH_SVC_CONCURRENCY`: connections in flight against the proxies (16).
    pub concurrency: usize,
    /// `BENCH_SVC_SECONDS`: length of each closed-loop run (3).
    pub seconds: u64,
    /// `BENCH_SVC_ROUNDS`: rounds over the proxies, and bulk runs per nftables target (3).
    pub rounds: usize,
    /// `BENCH_SVC_DNS_ONLY=1`: only the DNS part (no namespaces, quick to rerun).
    pub dns_only: bool,
}

impl Knobs {
    /// The knobs from the environment, defaults where unset.
    pub fn from_env() -> Knobs {
        fn get<T: std::str::FromStr>(name: &str, default: T) -> T {
            std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
        }
        Knobs {
            services: get("BENCH_SVC_COUNT", 10_000).max(1),
            megabytes: get("BENCH_SVC_MB", 1000).max(1),
            requests: get("BENCH_SVC_REQUESTS", 20_000).max(4),
            concurrency: get("BENCH_SVC_CONCURRENCY", 16).max(1),
            seconds: get("BENCH_SVC_SECONDS", 3).clamp(1, 60),
            rounds: get("BENCH_SVC_ROUNDS", 3).clamp(1, 20),
            dns_only: get("BENCH_SVC_DNS_ONLY", 0) == 1,
        }
    }
}

/// What the phase measured; parts that could not run are `None` with a note.
#[derive(Debug, Default)]
pub struct Services {
    /// The nftables data path and programming.
    pub nft: Option<NftResults>,
    /// The userspace backend against HAProxy and nginx.
    pub proxies: Option<ProxyResults>,
    /// Cluster DNS.
    pub dns: Option<DnsResults>,
    /// Why a part did not run.
    pub notes: Vec<String>,
}

fn progress(msg: &str) {
    eprintln!("podway-bench: {msg}");
}

/// Runs the phase (blocking: call it from a blocking thread). `work` holds the proxies'
/// configs.
pub fn measure(work: &Path, k: &Knobs) -> Result<Services> {
    let mut out = Services::default();
    if k.dns_only {
        out.notes
            .push("nftables and proxies skipped: BENCH_SVC_DNS_ONLY=1".into());
    } else if crate::host::is_root() {
        let (nft, proxies) = in_namespaces(work, k)?;
        out.nft = Some(nft);
        out.proxies = Some(proxies);
    } else {
        out.notes
            .push("nftables and proxies skipped: they need root (network namespaces, veths, nft)".into());
    }
    let dns = DnsLoad {
        services: k.services,
        seconds: k.seconds.max(3),
        creates: 20,
    };
    out.dns = Some(services_dns::measure(&dns, &progress)?);
    Ok(out)
}

fn in_namespaces(work: &Path, k: &Knobs) -> Result<(NftResults, ProxyResults)> {
    progress("services: namespaces client → node → ep1, ep2");
    let net = Net::new()?;
    let servers = Servers::start(&net)?;
    let node = NsWorker::enter(&net, "node")?;
    let client = NsWorker::enter(&net, "client")?;
    let nft_load = NftLoad {
        services: k.services,
        full_runs: 3,
        adds: 20,
        bytes: k.megabytes * 1_000_000,
        bulk_runs: k.rounds,
        requests: k.requests,
    };
    let nft = services_nft::measure(&node, &client, &nft_load, &progress)?;
    let proxy_load = ProxyLoad {
        bytes: k.megabytes * 1_000_000,
        rounds: k.rounds,
        concurrency: k.concurrency,
        seconds: k.seconds,
        max_requests: 2_000_000,
    };
    let proxies = services_proxies::measure(&net, &client, &work.join("proxies"), &proxy_load, &progress)?;
    // Threads and servers first: a namespace is only gone when nothing holds it.
    drop(client);
    drop(node);
    drop(servers);
    drop(net);
    Ok((nft, proxies))
}

/// The phase's section of the report.
pub fn print(s: &Services, k: &Knobs) {
    println!("\n## Services\n");
    println!(
        "- nftables: one Service (NodePort, 2 endpoints) measured in a table of 1, 1,000 and {} Services × 2 endpoints; client, node and the 2 endpoints in namespaces of their own joined by veths; \"direct\" is the client connecting to the endpoint's IP over the same hops",
        k.services
    );
    println!(
        "- proxies: all in the node namespace with 2 threads/workers each, round-robin over the same 2 endpoints, {} rounds of {} s per load, {} connections in flight",
        k.rounds, k.seconds, k.concurrency
    );
    for n in &s.notes {
        println!("- {n}");
    }
    println!();
    println!(
        "{}",
        report::render(
            &["podway", "baseline"],
            &report::podway_rows(s.nft.as_ref(), s.dns.as_ref())
        )
    );
    if let Some(p) = &s.proxies {
        println!("{}", report::render(&report::proxy_columns(), &report::proxy_rows(p)));
    }
}
