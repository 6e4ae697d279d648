//! Queries per second of the cluster DNS server on loopback, CoreDNS-style: the server on one
//! thread (one core), a load generator on another keeping N queries in flight over UDP.
//!
//! ```text
//! cargo run --release -p podway-dns --example dns_qps -- [--services 1000] [--inflight 64]
//!     [--seconds 5] [--max-queries 2000000]
//! ```
//!
//! Prints one line of `key=value` pairs: qps, latency p50/p99 in microseconds, lost queries,
//! the time one snapshot build takes (Services with two endpoints each: how soon a change
//! can be answered), and the server thread's CPU use, from which `qps_per_core` (queries per CPU-second of the
//! server thread) is computed; CoreDNS publishes about 17k per vCPU. Bounded in time and
//! count; only 127.0.0.1 is used.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use podway_dns::{serve_on, Listeners, Records, RecordsHandle, Upstream};

struct Args {
    services: usize,
    inflight: usize,
    seconds: u64,
    max_queries: u64,
}

fn args() -> Args {
    let mut a = Args {
        services: 1000,
        inflight: 64,
        seconds: 5,
        max_queries: 2_000_000,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let value = pair
            .get(1)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| usage());
        match pair[0].as_str() {
            "--services" => a.services = value as usize,
            "--inflight" => a.inflight = value.max(1) as usize,
            "--seconds" => a.seconds = value.clamp(1, 120),
            "--max-queries" => a.max_queries = value,
            _ => usage(),
        }
    }
    a
}

fn usage() -> ! {
    eprintln!("usage: dns_qps [--services N] [--inflight N] [--seconds S] [--max-queries N]");
    std::process::exit(2)
}

fn services(n: usize) -> Vec<Service> {
    (0..n)
        .map(|i| Service {
            metadata: ObjectMeta {
                namespace: Some("default".into()),
                name: Some(format!("svc-{i}")),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some(format!("10.96.{}.{}", i / 250, i % 250 + 1)),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: 80,
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        })
        .collect()
}

/// Two ready endpoints per Service, as the bars' "10,000 Services x 2 endpoints".
fn slices(n: usize) -> Vec<EndpointSlice> {
    (0..n)
        .map(|i| EndpointSlice {
            metadata: ObjectMeta {
                namespace: Some("default".into()),
                name: Some(format!("svc-{i}-x")),
                labels: Some([("kubernetes.io/service-name".to_string(), format!("svc-{i}"))].into()),
                ..ObjectMeta::default()
            },
            address_type: "IPv4".into(),
            endpoints: (0..2)
                .map(|e| Endpoint {
                    addresses: vec![format!("10.{}.{}.{}", 128 + e, i / 250, i % 250 + 1)],
                    ..Endpoint::default()
                })
                .collect(),
            ports: Some(vec![EndpointPort {
                name: Some("http".into()),
                port: Some(8080),
                ..EndpointPort::default()
            }]),
        })
        .collect()
}

fn query(name: &str) -> Vec<u8> {
    let mut q = vec![0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// CPU seconds (user + system) the calling thread has used.
fn thread_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let a = args();
    let (svcs, eps) = (services(a.services), slices(a.services));
    let build_started = Instant::now();
    let records = Records::build(&svcs, &eps, "cluster.local");
    let build_ms = build_started.elapsed().as_secs_f64() * 1000.0;
    let (addr_tx, addr_rx) = std::sync::mpsc::channel::<SocketAddr>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listeners = Listeners::bind(&["127.0.0.1:0".parse().unwrap()]).await.expect("bind");
            addr_tx.send(listeners.local_addrs()[0]).unwrap();
            let cpu_start = thread_cpu_seconds();
            serve_on(
                listeners,
                RecordsHandle::new(records),
                Upstream::new(vec![]),
                async move {
                    let _ = stop_rx.await;
                },
            )
            .await;
            thread_cpu_seconds() - cpu_start
        })
    });
    let addr = addr_rx.recv().expect("server address");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(a.seconds);
    let (latencies, lost) = rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..a.inflight {
            let sent = sent.clone();
            let names: Vec<Vec<u8>> = (0..a.services.max(1))
                .map(|i| query(&format!("svc-{i}.default.svc.cluster.local")))
                .collect();
            let max = a.max_queries;
            tasks.spawn(async move {
                let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("client socket");
                sock.connect(addr).await.expect("connect");
                let mut lat = Vec::new();
                let mut lost = 0u64;
                let mut buf = [0u8; 512];
                let mut i = c;
                while Instant::now() < deadline && sent.fetch_add(1, Ordering::Relaxed) < max {
                    let mut q = names[i % names.len()].clone();
                    let id = (i as u16).wrapping_mul(7919);
                    q[0..2].copy_from_slice(&id.to_be_bytes());
                    i += a.inflight;
                    let t = Instant::now();
                    sock.send(&q).await.expect("send");
                    loop {
                        match tokio::time::timeout(Duration::from_millis(500), sock.recv(&mut buf)).await {
                            Ok(Ok(n)) if n >= 2 && buf[0..2] == id.to_be_bytes() => {
                                lat.push(t.elapsed().as_micros() as u32);
                                break;
                            }
                            Ok(_) => continue,
                            Err(_) => {
                                lost += 1;
                                break;
                            }
                        }
                    }
                }
                (lat, lost)
            });
        }
        let mut all = Vec::new();
        let mut lost = 0;
        while let Some(r) = tasks.join_next().await {
            let (lat, l) = r.expect("client task");
            all.extend(lat);
            lost += l;
        }
        (all, lost)
    });
    let elapsed = started.elapsed().as_secs_f64();
    let _ = stop_tx.send(());
    let server_cpu = server.join().expect("server thread");

    let mut lat = latencies;
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let answered = lat.len() as f64;
    println!(
        "dns_qps services={} inflight={} answered={} lost={} seconds={:.2} qps={:.0} p50_us={} p99_us={} \
         server_cpu_s={:.2} qps_per_core={:.0} build_ms={:.1}",
        a.services,
        a.inflight,
        lat.len(),
        lost,
        elapsed,
        answered / elapsed,
        pct(0.50),
        pct(0.99),
        server_cpu,
        if server_cpu > 0.0 { answered / server_cpu } else { 0.0 },
        build_ms,
    );
}
