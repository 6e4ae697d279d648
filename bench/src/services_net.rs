//! The services phase's own network: four namespaces wired with veths, as the proxy's traffic
//! tests build them, with two endpoints serving echo and sink on TCP, and the client side's
//! measuring loops.
//!
//! ```text
//!  client 192.0.2.2 ── 192.0.2.1 node 10.250.1.1 ── 10.250.1.2 ep1
//!                                     10.250.2.1 ── 10.250.2.2 ep2
//! ```
//!
//! Every address lives inside these namespaces (`pwbench-svc-<pid>-*`); nothing is routed to
//! the host. The namespaces go in `Drop`, also when a step fails; bench/run.sh removes any a
//! killed run left, together with the processes inside them.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The node's address on the client's link: NodePorts and the proxies listen here.
pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The two endpoints ("pods").
pub const ENDPOINTS: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 250, 1, 2), Ipv4Addr::new(10, 250, 2, 2)];
/// The pod network the endpoints live in (clients outside it are masqueraded).
pub const POD_CIDR: &str = "10.250.0.0/16";
/// The endpoints' echo port: every byte read is written back.
pub const ECHO_PORT: u16 = 8080;
/// The endpoints' sink port: an 8-byte big-endian length, that many bytes, then one byte back.
pub const SINK_PORT: u16 = 9000;
/// The size of one request (and its echoed response).
pub const REQUEST_BYTES: usize = 64;
/// The namespaces' name before the pid; bench/run.sh removes any left by a killed run.
pub const PREFIX: &str = "pwbench-svc-";
/// How long one socket operation may block before the run fails.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The namespaces of one run, deleted when dropped.
pub struct Net {
    prefix: String,
}

impl Net {
    /// Builds the network (needs root).
    pub fn new() -> Result<Net> {
        let net = Net {
            prefix: format!("{PREFIX}{}", std::process::id()),
        };
        for short in ["client", "node", "ep1", "ep2"] {
            if net.path(short).exists() {
                bail!("network namespace {} exists already", net.ns(short));
            }
        }
        // From here on, Drop removes whatever was made.
        for short in ["client", "node", "ep1", "ep2"] {
            sh(&["ip", "netns", "add", &net.ns(short)])?;
            net.exec(short, &["ip", "link", "set", "lo", "up"])?;
        }
        net.link(0, "client", "c0", "192.0.2.2/24", "node", "n0", "192.0.2.1/24")?;
        net.link(1, "ep1", "e0", "10.250.1.2/24", "node", "n1", "10.250.1.1/24")?;
        net.link(2, "ep2", "e0", "10.250.2.2/24", "node", "n2", "10.250.2.1/24")?;
        net.exec("client", &["ip", "route", "add", "default", "via", "192.0.2.1"])?;
        net.exec("ep1", &["ip", "route", "add", "default", "via", "10.250.1.1"])?;
        net.exec("ep2", &["ip", "route", "add", "default", "via", "10.250.2.1"])?;
        // As on a real node everything not local leaves through the uplink, which here is the
        // client's namespace: nothing can reach the host.
        net.exec("node", &["ip", "route", "add", "default", "via", "192.0.2.2"])?;
        net.exec("node", &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        // Tens of thousands of short connections per run: let TIME_WAIT ports be reused (these
        // sysctls are per namespace and go with it).
        for short in ["client", "node"] {
            net.exec(short, &["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"])?;
            net.exec(short, &["sysctl", "-qw", "net.ipv4.ip_local_port_range=10000 65000"])?;
        }
        Ok(net)
    }

    /// The full name of namespace `short`.
    pub fn ns(&self, short: &str) -> String {
        format!("{}-{short}", self.prefix)
    }

    /// The namespace's bind mount, for `setns`.
    pub fn path(&self, short: &str) -> PathBuf {
        PathBuf::from("/run/netns").join(self.ns(short))
    }

    /// Runs a command inside namespace `short`.
    pub fn exec(&self, short: &str, args: &[&str]) -> Result<String> {
        let ns = self.ns(short);
        let mut all = vec!["ip", "netns", "exec", ns.as_str()];
        all.extend_from_slice(args);
        sh(&all)
    }

    #[allow(clippy::too_many_arguments)]
    fn link(&self, n: usize, a: &str, a_if: &str, a_ip: &str, b: &str, b_if: &str, b_ip: &str) -> Result<()> {
        // Host-side names exist for a moment before they move; unique per run, under 16 bytes.
        let tmp_a = format!("pwbsv{}x{n}", std::process::id() % 100_000);
        let tmp_b = format!("{tmp_a}p");
        sh(&["ip", "link", "add", &tmp_a, "type", "veth", "peer", "name", &tmp_b])?;
        sh(&["ip", "link", "set", &tmp_a, "netns", &self.ns(a)])?;
        sh(&["ip", "link", "set", &tmp_b, "netns", &self.ns(b)])?;
        self.exec(a, &["ip", "link", "set", &tmp_a, "name", a_if])?;
        self.exec(b, &["ip", "link", "set", &tmp_b, "name", b_if])?;
        self.exec(a, &["ip", "addr", "add", a_ip, "dev", a_if])?;
        self.exec(b, &["ip", "addr", "add", b_ip, "dev", b_if])?;
        self.exec(a, &["ip", "link", "set", a_if, "up"])?;
        self.exec(b, &["ip", "link", "set", b_if, "up"])?;
        Ok(())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace takes its veths and the node's nft table with it.
        for short in ["client", "node", "ep1", "ep2"] {
            let _ = Command::new("ip").args(["netns", "del", &self.ns(short)]).status();
        }
        // A veth whose move failed would still be on the host under its temporary name.
        for n in 0..3 {
            let tmp = format!("pwbsv{}x{n}", std::process::id() % 100_000);
            if Path::new("/sys/class/net").join(&tmp).exists() {
                let _ = Command::new("ip").args(["link", "del", &tmp]).status();
            }
        }
    }
}

/// Moves the calling thread into the network namespace at `path`.
pub fn enter(path: &std::path::Path) -> Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    rustix::thread::move_into_link_name_space(file.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))
        .with_context(|| format!("entering {}", path.display()))
}

/// Runs a host command; its stderr is the error.
pub fn sh(args: &[&str]) -> Result<String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("running {args:?}"))?;
    if !out.status.success() {
        bail!("{args:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The echo and sink servers of both endpoints, one thread (a current-thread runtime) each,
/// stopped and joined when dropped.
pub struct Servers {
    stop: tokio::sync::watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Servers {
    /// Starts both endpoints' servers; returns once they listen.
    pub fn start(net: &Net) -> Result<Servers> {
        let (stop, _) = tokio::sync::watch::channel(false);
        let mut servers = Servers {
            stop,
            threads: Vec::new(),
        };
        for short in ["ep1", "ep2"] {
            let path = net.path(short);
            let mut stopped = servers.stop.subscribe();
            let (ready_tx, ready) = std::sync::mpsc::channel::<Result<()>>();
            servers.threads.push(std::thread::spawn(move || {
                let setup = || -> Result<(tokio::runtime::Runtime, std::net::TcpListener, std::net::TcpListener)> {
                    enter(&path)?;
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                    let any = |p| SocketAddr::from((Ipv4Addr::UNSPECIFIED, p));
                    let echo = std::net::TcpListener::bind(any(ECHO_PORT))?;
                    let sink = std::net::TcpListener::bind(any(SINK_PORT))?;
                    echo.set_nonblocking(true)?;
                    sink.set_nonblocking(true)?;
                    Ok((rt, echo, sink))
                };
                let (rt, echo, sink) = match setup() {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let echo = tokio::net::TcpListener::from_std(echo).expect("inside a runtime");
                    let sink = tokio::net::TcpListener::from_std(sink).expect("inside a runtime");
                    let _ = ready_tx.send(Ok(()));
                    loop {
                        tokio::select! {
                            _ = stopped.changed() => break,
                            Ok((s, _)) = echo.accept() => { tokio::spawn(serve_echo(s)); }
                            Ok((s, _)) = sink.accept() => { tokio::spawn(serve_sink(s)); }
                        }
                    }
                });
            }));
            ready.recv().context("an endpoint server thread ended")??;
        }
        Ok(servers)
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

async fn serve_echo(mut s: tokio::net::TcpStream) {
    let _ = s.set_nodelay(true);
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn serve_sink(mut s: tokio::net::TcpStream) {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let mut header = [0u8; 8];
        if s.read_exact(&mut header).await.is_err() {
            return;
        }
        let mut left = u64::from_be_bytes(header);
        while left > 0 {
            let want = buf.len().min(left as usize);
            match s.read(&mut buf[..want]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left -= n as u64,
            }
        }
        if s.write_all(&[1]).await.is_err() {
            return;
        }
    }
}

/// A socket address from an IPv4 address and a port.
pub fn at(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(ip, port))
}

fn connect(dst: SocketAddr) -> Result<TcpStream> {
    let s = TcpStream::connect_timeout(&dst, IO_TIMEOUT).with_context(|| format!("connecting to {dst}"))?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Closes with a reset instead of a FIN, so tens of thousands of measured connections leave no
/// TIME_WAIT behind.
fn abort(s: TcpStream) {
    let _ = rustix::net::sockopt::set_socket_linger(&s, Some(Duration::ZERO));
}

fn round_trip(s: &mut TcpStream) -> Result<()> {
    let mut buf = [0u8; REQUEST_BYTES];
    s.write_all(&[7u8; REQUEST_BYTES])?;
    s.read_exact(&mut buf)?;
    Ok(())
}

/// Blocking, on a thread in the client's namespace: sends `bytes` to `dst`'s sink over one TCP
/// stream; the time from connected to the sink's acknowledgement of the last byte.
pub fn send_bulk(dst: SocketAddr, bytes: u64) -> Result<Duration> {
    let mut s = connect(dst)?;
    let chunk = vec![0x5au8; 256 * 1024];
    let start = Instant::now();
    s.write_all(&bytes.to_be_bytes())?;
    let mut left = bytes;
    while left > 0 {
        let n = chunk.len().min(left as usize);
        s.write_all(&chunk[..n]).with_context(|| format!("sending to {dst}"))?;
        left -= n as u64;
    }
    let mut ack = [0u8; 1];
    s.read_exact(&mut ack)
        .with_context(|| format!("waiting for {dst}'s acknowledgement"))?;
    Ok(start.elapsed())
}

/// Blocking, in the client's namespace: one kept connection to each target, then `n` rounds of
/// one request/response on each in turn (so every target sees the same machine conditions).
/// Stops early at `deadline`. Per target, the round-trip times.
pub fn kept_round_trips(targets: &[SocketAddr], n: usize, deadline: Instant) -> Result<Vec<Vec<Duration>>> {
    let mut conns: Vec<TcpStream> = targets.iter().map(|t| connect(*t)).collect::<Result<_>>()?;
    let mut out = vec![Vec::with_capacity(n); targets.len()];
    for s in &mut conns {
        round_trip(s)?; // warm-up: the connection's first packets took the NAT path.
    }
    for _ in 0..n {
        if Instant::now() > deadline {
            break;
        }
        for (i, s) in conns.iter_mut().enumerate() {
            let t = Instant::now();
            round_trip(s)?;
            out[i].push(t.elapsed());
        }
    }
    conns.into_iter().for_each(abort);
    Ok(out)
}

/// Blocking, in the client's namespace: `n` rounds of, per target, a new connection carrying
/// one request/response. With `request` false only `connect()` is timed (SYN out to SYN-ACK
/// back: the first packet's trip through the rules). Per target, the times.
pub fn fresh_round_trips(
    targets: &[SocketAddr],
    n: usize,
    request: bool,
    deadline: Instant,
) -> Result<Vec<Vec<Duration>>> {
    let mut out = vec![Vec::with_capacity(n); targets.len()];
    for _ in 0..n {
        if Instant::now() > deadline {
            break;
        }
        for (i, t) in targets.iter().enumerate() {
            let start = Instant::now();
            let mut s = connect(*t)?;
            if request {
                round_trip(&mut s)?;
            }
            out[i].push(start.elapsed());
            abort(s);
        }
    }
    Ok(out)
}

/// Whether `dst` accepts a connection and echoes, tried for up to `wait`.
pub fn until_echoes(dst: SocketAddr, wait: Duration) -> Result<()> {
    let deadline = Instant::now() + wait;
    loop {
        let attempt = connect(dst).and_then(|mut s| {
            round_trip(&mut s)?;
            abort(s);
            Ok(())
        });
        match attempt {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e.context(format!("{dst} never echoed"))),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// What a closed-loop load measured.
#[derive(Debug, Clone, Default)]
pub struct Load {
    /// Requests answered.
    pub requests: usize,
    /// From the first request to the last answer.
    pub elapsed: Duration,
    /// Each request's time (with a new connection, connect included).
    pub latencies: Vec<Duration>,
}

impl Load {
    /// Adds another run's figures (runs of one target across rounds).
    pub fn merge(&mut self, more: Load) {
        self.requests += more.requests;
        self.elapsed += more.elapsed;
        self.latencies.extend(more.latencies);
    }
}

/// What one request of a closed loop is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    /// [`REQUEST_BYTES`] bytes out, the same echoed back.
    Echo,
    /// `GET /` over HTTP/1.1, the whole answer read (it must be a 200 with Content-Length).
    HttpGet,
}

/// Blocking, in the client's namespace: `concurrency` clients (tasks of one current-thread
/// runtime) each sending echo requests to `dst` one after another, on one kept connection each
/// or on a new connection per request, until `max` requests or `duration`.
pub fn closed_loop(dst: SocketAddr, concurrency: usize, fresh: bool, max: usize, duration: Duration) -> Result<Load> {
    closed_loop_of(Exchange::Echo, dst, concurrency, fresh, max, duration)
}

/// [`closed_loop`] with requests of kind `exchange`.
pub fn closed_loop_of(
    exchange: Exchange,
    dst: SocketAddr,
    concurrency: usize,
    fresh: bool,
    max: usize,
    duration: Duration,
) -> Result<Load> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let start = Instant::now();
        let deadline = start + duration;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let sent = sent.clone();
            tasks.spawn(async move {
                let mut lat = Vec::new();
                let mut kept: Option<tokio::net::TcpStream> = None;
                while Instant::now() < deadline && sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < max {
                    let t = Instant::now();
                    let mut s = match kept.take() {
                        Some(s) => s,
                        None => {
                            let s = tokio::time::timeout(IO_TIMEOUT, tokio::net::TcpStream::connect(dst))
                                .await
                                .context("connect timed out")??;
                            s.set_nodelay(true)?;
                            s
                        }
                    };
                    let one = async {
                        match exchange {
                            Exchange::Echo => {
                                let mut buf = [0u8; REQUEST_BYTES];
                                s.write_all(&[7u8; REQUEST_BYTES]).await?;
                                s.read_exact(&mut buf).await?;
                                Ok(())
                            }
                            Exchange::HttpGet => http_get(&mut s).await,
                        }
                    };
                    tokio::time::timeout(IO_TIMEOUT, one)
                        .await
                        .context("request timed out")??;
                    lat.push(t.elapsed());
                    if fresh {
                        let _ = rustix::net::sockopt::set_socket_linger(&s, Some(Duration::ZERO));
                    } else {
                        kept = Some(s);
                    }
                }
                anyhow::Ok(lat)
            });
        }
        let mut load = Load::default();
        while let Some(r) = tasks.join_next().await {
            load.latencies.extend(r.context("a load task panicked")??);
        }
        load.elapsed = start.elapsed();
        load.requests = load.latencies.len();
        Ok(load)
    })
}

/// One `GET /` on `s`, reading the whole answer; an error unless it is a 200 with a
/// Content-Length.
pub async fn http_get(s: &mut tokio::net::TcpStream) -> Result<()> {
    s.write_all(b"GET / HTTP/1.1\r\nHost: bench.example.com\r\nUser-Agent: podway-bench\r\n\r\n")
        .await?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed mid-answer");
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end])?;
            if !head.starts_with("HTTP/1.1 200") {
                bail!("answer: {}", head.lines().next().unwrap_or(""));
            }
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .context("the bench expects Content-Length answers")?;
            while buf.len() < end + 4 + length {
                let n = s.read(&mut chunk).await?;
                if n == 0 {
                    bail!("connection closed mid-body");
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok(());
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A thread inside one of the namespaces that runs jobs one at a time (sockets and processes
/// it creates live in that namespace), joined when dropped.
pub struct NsWorker {
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NsWorker {
    /// Starts a thread in namespace `short` of `net`.
    pub fn enter(net: &Net, short: &str) -> Result<NsWorker> {
        let path = net.path(short);
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new().name(format!("in-{short}")).spawn(move || {
            let moved = enter(&path);
            let ok = moved.is_ok();
            let _ = entered_tx.send(moved);
            if ok {
                while let Ok(job) = rx.recv() {
                    job();
                }
            }
        })?;
        entered.recv().context("the namespace thread ended")??;
        Ok(NsWorker {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `f` on the thread and waits for its result.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let (tx, rx) = std::sync::mpsc::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.jobs
            .as_ref()
            .context("namespace thread stopped")?
            .send(job)
            .map_err(|_| anyhow::anyhow!("the namespace thread ended"))?;
        rx.recv().context("a namespace job panicked")
    }
}

impl Drop for NsWorker {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
