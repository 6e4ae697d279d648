//! The DNS bars, with podway-dns's public API as the node agent uses it, on 127.0.0.1 only:
//! queries per second per core (the server on one thread of its own, whose CPU time is read
//! from `/proc`, as in `crates/dns/examples/dns_qps.rs`), latency at a moderate number in
//! flight, and how soon a new Service resolves: the snapshot rebuilt with it, swapped in, and
//! its name queried until it answers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use podway_dns::{serve_on, Listeners, Records, RecordsHandle, Upstream};

use crate::services_nft;

const DOMAIN: &str = "cluster.local";

/// One closed-loop run against the server.
#[derive(Debug, Clone, Default)]
pub struct Qps {
    /// Queries in flight.
    pub inflight: usize,
    /// Answers received.
    pub answered: usize,
    /// Queries with no answer within 500 ms.
    pub lost: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// CPU time (user + system) of the server's thread.
    pub server_cpu: Duration,
    /// Per answered query.
    pub latencies: Vec<Duration>,
}

/// How soon a new Service resolved with `services` others present.
#[derive(Debug, Clone, Default)]
pub struct NewService {
    /// Services already present.
    pub services: usize,
    /// `Records::layered` alone.
    pub build: Vec<Duration>,
    /// Build start → the new name's first positive answer.
    pub resolvable: Vec<Duration>,
}

/// Everything the DNS part measured.
#[derive(Debug, Clone, Default)]
pub struct DnsResults {
    /// Services in the served snapshot.
    pub services: usize,
    /// Saturating run (many in flight): queries per core.
    pub saturated: Qps,
    /// Moderate run: latency.
    pub moderate: Qps,
    /// New-Service runs per snapshot size.
    pub new_service: Vec<NewService>,
}

/// The knobs of the DNS part.
#[derive(Debug, Clone)]
pub struct DnsLoad {
    /// Services in the served snapshot (and the largest new-Service size).
    pub services: usize,
    /// Seconds per qps run.
    pub seconds: u64,
    /// New Services created (and timed) per size.
    pub creates: usize,
}

fn objects(n: usize) -> (Vec<Service>, Vec<EndpointSlice>) {
    let (s, e) = services_nft::objects(n);
    (
        s.into_iter().map(Arc::unwrap_or_clone).collect(),
        e.into_iter().map(Arc::unwrap_or_clone).collect(),
    )
}

/// An A query for `name` with id `id`.
fn query(name: &str, id: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// Whether `answer` answers query `id` with NOERROR and at least one record.
fn positive(answer: &[u8], id: u16) -> bool {
    answer.len() >= 12 && answer[0..2] == id.to_be_bytes() && answer[3] & 0x0f == 0 && answer[6..8] != [0, 0]
}

/// CPU time (user + system) the calling thread has used.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command; 100 Hz.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// A DNS server on one thread of its own, stopped and joined when dropped.
struct Server {
    addr: SocketAddr,
    handle: RecordsHandle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    cpu: std::sync::mpsc::Receiver<Duration>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(records: Records) -> Result<Server> {
        let handle = RecordsHandle::new(records);
        let served = handle.clone();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel::<Result<SocketAddr, String>>();
        let (cpu_tx, cpu) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => return drop(addr_tx.send(Err(e.to_string()))),
            };
            rt.block_on(async move {
                let listeners = match Listeners::bind(&["127.0.0.1:0".parse().expect("an address")]).await {
                    Ok(l) => l,
                    Err(e) => return drop(addr_tx.send(Err(e.to_string()))),
                };
                let _ = addr_tx.send(Ok(listeners.local_addrs()[0]));
                let start = thread_cpu();
                serve_on(listeners, served, Upstream::new(vec![]), async move {
                    let _ = stopped.await;
                })
                .await;
                let _ = cpu_tx.send(thread_cpu().saturating_sub(start));
            });
        });
        let addr = addr_rx
            .recv()
            .context("the DNS server thread ended")?
            .map_err(anyhow::Error::msg)?;
        Ok(Server {
            addr,
            handle,
            stop: Some(stop),
            cpu,
            thread: Some(thread),
        })
    }

    /// Stops the server; the CPU time its thread used while serving.
    fn stop(mut self) -> Result<Duration> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join()
                .map_err(|_| anyhow::anyhow!("the DNS server thread panicked"))?;
        }
        self.cpu.recv().context("the DNS server reported no CPU time")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `inflight` clients (tasks of one current-thread runtime on this thread) querying Service
/// names one after another for `seconds`.
fn load(addr: SocketAddr, services: usize, inflight: usize, seconds: u64) -> Result<(Vec<Duration>, u64, Duration)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let names: Arc<Vec<String>> = Arc::new(
        (0..services.max(1))
            .map(|i| {
                let name = if i == 0 { "web".to_string() } else { format!("svc-{i}") };
                format!("{name}.default.svc.{DOMAIN}")
            })
            .collect(),
    );
    rt.block_on(async move {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(seconds);
        let lost = Arc::new(AtomicU64::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..inflight {
            let (names, lost) = (names.clone(), lost.clone());
            tasks.spawn(async move {
                let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
                sock.connect(addr).await?;
                let mut lat = Vec::new();
                let mut buf = [0u8; 512];
                let mut i = c;
                while Instant::now() < deadline {
                    let id = (i as u16).wrapping_mul(7919);
                    let q = query(&names[i % names.len()], id);
                    i += inflight;
                    let t = Instant::now();
                    sock.send(&q).await?;
                    loop {
                        match tokio::time::timeout(Duration::from_millis(500), sock.recv(&mut buf)).await {
                            Ok(Ok(n)) if n >= 2 && buf[0..2] == id.to_be_bytes() => {
                                lat.push(t.elapsed());
                                break;
                            }
                            Ok(Ok(_)) => continue,
                            Ok(Err(e)) => return Err(anyhow::Error::from(e)),
                            Err(_) => {
                                lost.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                        }
                    }
                }
                anyhow::Ok(lat)
            });
        }
        let mut all = Vec::new();
        while let Some(r) = tasks.join_next().await {
            all.extend(r.context("a DNS client task panicked")??);
        }
        Ok((all, lost.load(Ordering::Relaxed), start.elapsed()))
    })
}

fn qps_run(records: Records, services: usize, inflight: usize, seconds: u64) -> Result<Qps> {
    let server = Server::start(records)?;
    let (latencies, lost, elapsed) = load(server.addr, services, inflight, seconds)?;
    let server_cpu = server.stop()?;
    Ok(Qps {
        inflight,
        answered: latencies.len(),
        lost,
        elapsed,
        server_cpu,
        latencies,
    })
}

/// How soon `creates` new Services resolve, one after another, with `n` present.
fn new_services(n: usize, creates: usize) -> Result<NewService> {
    let (mut svcs, mut slices) = objects(n + creates);
    let new_svcs = svcs.split_off(n);
    let new_slices = slices.split_off(n);
    let base = std::sync::Arc::new(Records::build(&svcs, &slices, DOMAIN));
    let server = Server::start(Records::layered(
        base.clone(),
        ["default"],
        [],
        [],
        Default::default(),
        DOMAIN,
    ))?;
    // As the watch loop does: each change is answered by a snapshot layered over the last full
    // one, holding every Service changed since (the full rebuild runs off the loop).
    let mut changed = std::collections::HashSet::new();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
    sock.connect(server.addr)?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut out = NewService {
        services: n,
        ..NewService::default()
    };
    for (k, (svc, slice)) in new_svcs.into_iter().zip(new_slices).enumerate() {
        let svc_name = svc.metadata.name.clone().unwrap_or_default();
        let name = format!("{svc_name}.default.svc.{DOMAIN}");
        changed.insert(("default".to_string(), svc_name));
        svcs.push(svc);
        slices.push(slice);
        let start = Instant::now();
        let records = Records::layered(base.clone(), ["default"], &svcs, &slices, changed.clone(), DOMAIN);
        out.build.push(start.elapsed());
        server.handle.store(records);
        let mut buf = [0u8; 512];
        let mut tries = 0u16;
        loop {
            tries += 1;
            if tries > 50 {
                bail!("{name} did not resolve after 50 queries");
            }
            let id = (k as u16).wrapping_mul(31).wrapping_add(tries);
            sock.send(&query(&name, id))?;
            match sock.recv(&mut buf) {
                Ok(got) if positive(&buf[..got], id) => break,
                _ => continue,
            }
        }
        out.resolvable.push(start.elapsed());
    }
    server.stop()?;
    Ok(out)
}

/// Runs the DNS part.
pub fn measure(load: &DnsLoad, progress: &dyn Fn(&str)) -> Result<DnsResults> {
    let (svcs, slices) = objects(load.services);
    let records = || Records::build(&svcs, &slices, DOMAIN);
    progress(&format!(
        "  DNS: {} s at 64 in flight, {} s at 16",
        load.seconds, load.seconds
    ));
    let saturated = qps_run(records(), load.services, 64, load.seconds)?;
    let moderate = qps_run(records(), load.services, 16, load.seconds)?;
    let mut sizes: Vec<usize> = [1000].into_iter().filter(|&s| s < load.services).collect();
    sizes.push(load.services);
    let mut new_service = Vec::new();
    for n in sizes {
        progress(&format!("  DNS: {} new Services beside {n}", load.creates));
        new_service.push(new_services(n, load.creates)?);
    }
    Ok(DnsResults {
        services: load.services,
        saturated,
        moderate,
        new_service,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_service_answers_positively_only_from_the_snapshot_that_has_it() {
        let (svcs, slices) = objects(3);
        let without = Server::start(Records::build(&svcs[..2], &slices[..2], DOMAIN)).unwrap();
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.connect(without.addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let ask = |id| {
            sock.send(&query("svc-2.default.svc.cluster.local", id)).unwrap();
            let mut buf = [0u8; 512];
            let n = sock.recv(&mut buf).unwrap();
            positive(&buf[..n], id)
        };
        assert!(!ask(1));
        without.handle.store(Records::build(&svcs, &slices, DOMAIN));
        assert!(ask(2));
        assert!(without.stop().is_ok());
    }
}
