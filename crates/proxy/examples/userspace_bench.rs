//! Requests/s, latency and MB/s through the userspace backend on loopback, beside a direct
//! connection to the same server, with splice and with buffered copying.
//!
//! ```text
//! cargo run --release -p podway-proxy --example userspace_bench -- [--seconds 3] [--conns 16] [--bulk-mib 2048]
//!     [--target NAME=HOST:PORT,HOST:PORT ...]
//! ```
//! Servers listen on 127.0.0.1:19000 (request/response: a 64-byte request gets a 64-byte
//! answer; a request starting with `C` gets its answer and then a close) and 127.0.0.1:19001
//! (bulk: sends until the client closes). `--target` adds another proxy in front of those two
//! (HAProxy, nginx) by its request/response and bulk addresses. Each run stops at its time or
//! count bound, whichever comes first. The proxy has a runtime of its own (`--proxy-threads`,
//! default 2); clients and servers share another. Service addresses are in 127.0.0.0/8, local
//! already, so no root is needed.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use podway_proxy::model::{Endpoint, Protocol, ServicePort, ServicePortName, ServiceRef, TrafficPolicy};
use podway_proxy::userspace::{CopyMode, NoAddresses};
use podway_proxy::{Backend, ServiceTable, UserspaceBackend, UserspaceConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const RR_PORT: u16 = 19000;
const BULK_PORT: u16 = 19001;
const MSG: usize = 64;
/// Bound on requests per run, whatever the time bound.
const MAX_REQUESTS: u64 = 2_000_000;

struct Args {
    seconds: f64,
    conns: usize,
    bulk_bytes: u64,
    proxy_threads: usize,
    targets: Vec<(String, SocketAddr, SocketAddr)>,
}

fn args() -> Args {
    let mut a = Args {
        seconds: 3.0,
        conns: 16,
        bulk_bytes: 2048 << 20,
        proxy_threads: 2,
        targets: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--seconds" => a.seconds = value.parse().expect("--seconds"),
            "--conns" => a.conns = value.parse().expect("--conns"),
            "--bulk-mib" => a.bulk_bytes = value.parse::<u64>().expect("--bulk-mib") << 20,
            "--proxy-threads" => a.proxy_threads = value.parse().expect("--proxy-threads"),
            "--target" => {
                let (name, addrs) = value.split_once('=').expect("--target NAME=RR,BULK");
                let (rr, bulk) = addrs.split_once(',').expect("--target NAME=RR,BULK");
                a.targets.push((
                    name.into(),
                    rr.parse().expect("rr addr"),
                    bulk.parse().expect("bulk addr"),
                ));
            }
            _ => panic!("unknown flag {flag}"),
        }
    }
    a
}

fn service_port(vip: Ipv4Addr, name: &str, port: u16, target: u16) -> ServicePort {
    ServicePort {
        name: ServicePortName {
            service: ServiceRef::new("bench", vip.to_string()),
            port_name: name.into(),
            protocol: Protocol::Tcp,
        },
        cluster_ips: vec![vip],
        port,
        node_port: None,
        load_balancer_ips: vec![],
        external_ips: vec![],
        affinity_timeout: None,
        external_policy: TrafficPolicy::Cluster,
        internal_policy: TrafficPolicy::Cluster,
        health_check_node_port: None,
        endpoints: vec![Endpoint {
            ip: Ipv4Addr::LOCALHOST,
            port: target,
            ready: true,
            serving: true,
            terminating: false,
            node_name: None,
            is_local: true,
        }],
    }
}

/// Starts a userspace backend for `vip` (ports 80 → rr, 81 → bulk) on `rt`.
fn proxy(rt: &tokio::runtime::Runtime, vip: Ipv4Addr, copy: CopyMode) -> UserspaceBackend {
    let mut config = UserspaceConfig::new(vec![], "10.244.0.0/16".parse().unwrap());
    config.copy = copy;
    let mut table = ServiceTable::new();
    let svc = ServiceRef::new("bench", vip.to_string());
    table.replace_service(
        &svc,
        vec![
            service_port(vip, "rr", 18080, RR_PORT),
            service_port(vip, "bulk", 18081, BULK_PORT),
        ],
    );
    rt.block_on(async move {
        let mut b = UserspaceBackend::with_addresses(config, Box::new(NoAddresses));
        b.sync_full(&table).await.expect("proxy listens");
        b
    })
}

async fn serve() {
    let rr = TcpListener::bind(("127.0.0.1", RR_PORT)).await.expect("rr port free");
    let bulk = TcpListener::bind(("127.0.0.1", BULK_PORT))
        .await
        .expect("bulk port free");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = rr.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = [0u8; MSG];
                while s.read_exact(&mut buf).await.is_ok() {
                    if s.write_all(&buf).await.is_err() || buf[0] == b'C' {
                        break;
                    }
                }
            });
        }
    });
    tokio::spawn(async move {
        while let Ok((mut s, _)) = bulk.accept().await {
            tokio::spawn(async move {
                let chunk = vec![7u8; 256 << 10];
                while s.write_all(&chunk).await.is_ok() {}
            });
        }
    });
}

struct Rr {
    requests: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

/// `conns` clients in a closed loop; `fresh` opens a new connection per request.
async fn request_response(target: SocketAddr, conns: usize, seconds: f64, fresh: bool) -> Rr {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let per_conn = MAX_REQUESTS / conns as u64;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..conns {
        tasks.spawn(async move {
            let mut lat = Vec::new();
            let mut req = [b'K'; MSG];
            let mut buf = [0u8; MSG];
            let mut kept: Option<TcpStream> = None;
            while Instant::now() < deadline && (lat.len() as u64) < per_conn {
                let t = Instant::now();
                let mut s = match kept.take() {
                    Some(s) => s,
                    None => {
                        let s = TcpStream::connect(target).await.expect("connect");
                        s.set_nodelay(true).unwrap();
                        s
                    }
                };
                req[0] = if fresh { b'C' } else { b'K' };
                s.write_all(&req).await.expect("request");
                s.read_exact(&mut buf).await.expect("answer");
                if fresh {
                    // The server closes first, so TIME_WAIT stays on its side, not on the
                    // client's ephemeral ports.
                    let _ = s.read(&mut buf).await;
                } else {
                    kept = Some(s);
                }
                lat.push(t.elapsed());
            }
            lat
        });
    }
    let mut latencies = Vec::new();
    while let Some(l) = tasks.join_next().await {
        latencies.extend(l.expect("client task"));
    }
    latencies.sort();
    Rr {
        requests: latencies.len() as u64,
        elapsed: start.elapsed(),
        latencies,
    }
}

/// One connection reading `bytes` (or until the time bound); MB/s.
async fn bulk(target: SocketAddr, bytes: u64, seconds: f64) -> f64 {
    let mut s = TcpStream::connect(target).await.expect("connect");
    let mut buf = vec![0u8; 1 << 20];
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut got = 0u64;
    while got < bytes && Instant::now() < deadline {
        let n = s.read(&mut buf).await.expect("bulk read");
        assert!(n > 0, "bulk server closed early");
        got += n as u64;
    }
    got as f64 / 1e6 / start.elapsed().as_secs_f64()
}

fn pct(l: &[Duration], p: f64) -> f64 {
    if l.is_empty() {
        return f64::NAN;
    }
    l[((l.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e6
}

fn main() {
    let a = args();
    let proxy_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.proxy_threads)
        .enable_all()
        .build()
        .unwrap();
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    client_rt.block_on(serve());
    let splice_vip = Ipv4Addr::new(127, 0, 9, 1);
    let buffered_vip = Ipv4Addr::new(127, 0, 9, 2);
    let _splice = proxy(&proxy_rt, splice_vip, CopyMode::Splice);
    let _buffered = proxy(&proxy_rt, buffered_vip, CopyMode::Buffered);

    let at = |ip: Ipv4Addr, port: u16| SocketAddr::V4(SocketAddrV4::new(ip, port));
    let mut targets = vec![
        (
            "direct".to_string(),
            at(Ipv4Addr::LOCALHOST, RR_PORT),
            at(Ipv4Addr::LOCALHOST, BULK_PORT),
        ),
        (
            "userspace splice".to_string(),
            at(splice_vip, 18080),
            at(splice_vip, 18081),
        ),
        (
            "userspace buffered".to_string(),
            at(buffered_vip, 18080),
            at(buffered_vip, 18081),
        ),
    ];
    targets.extend(a.targets.iter().cloned());

    println!(
        "{} s per run (or {MAX_REQUESTS} requests), {} connections in flight, {} MiB bulk on one connection, proxy threads {}",
        a.seconds,
        a.conns,
        a.bulk_bytes >> 20,
        a.proxy_threads
    );
    println!(
        "| path | kept req/s | p50 µs | p99 µs | new-conn req/s | p50 µs | p99 µs | bulk MB/s |\n|---|---|---|---|---|---|---|---|"
    );
    for (name, rr, bk) in &targets {
        let (rr, bk) = (*rr, *bk);
        let (kept, fresh, mbps) = client_rt.block_on(async {
            let kept = request_response(rr, a.conns, a.seconds, false).await;
            let fresh = request_response(rr, a.conns, a.seconds, true).await;
            let mbps = bulk(bk, a.bulk_bytes, a.seconds).await;
            (kept, fresh, mbps)
        });
        let rate = |r: &Rr| r.requests as f64 / r.elapsed.as_secs_f64();
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
            rate(&kept),
            pct(&kept.latencies, 0.5),
            pct(&kept.latencies, 0.99),
            rate(&fresh),
            pct(&fresh.latencies, 0.5),
            pct(&fresh.latencies, 0.99),
            mbps
        );
    }
}
