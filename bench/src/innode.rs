//! Work done from inside a node: a thread that has entered the node's network namespace, where
//! pod IPs are routed (the host blackholes the pod range, as kind's host does not route to pods
//! either). It probes pods over HTTP and runs the direct baseline, a built-in image started by
//! fork/exec with no podway around it.
//!
//! A network namespace belongs to a thread (`setns` moves only the caller), and a process
//! spawned from that thread starts in it, so the baseline server listens inside the node, on
//! the same port a pod's would, without touching the host's port 80.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::host::{self, Memory};

/// How long one connection attempt may take: a listener on the node answers in microseconds.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);
/// Pause between probes of a server that does not answer yet.
const PROBE_GAP: Duration = Duration::from_millis(1);

type Job = Box<dyn FnOnce() + Send>;

/// A thread inside a node's network namespace that runs jobs one at a time.
pub struct InNode {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InNode {
    /// Start a thread in the network namespace at `netns` (`/run/netns/NAME`).
    pub fn enter(netns: &Path) -> Result<InNode> {
        let file = std::fs::File::open(netns).with_context(|| format!("opening {}", netns.display()))?;
        let (jobs, rx) = mpsc::channel::<Job>();
        let (entered_tx, entered) = mpsc::channel();
        let thread = std::thread::Builder::new().name("in-node".into()).spawn(move || {
            let moved = rustix::thread::move_into_link_name_space(
                file.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            );
            let ok = moved.is_ok();
            let _ = entered_tx.send(moved);
            if ok {
                while let Ok(job) = rx.recv() {
                    job();
                }
            }
        })?;
        entered
            .recv()
            .context("the in-node thread ended")?
            .with_context(|| format!("entering {} (needs root)", netns.display()))?;
        Ok(InNode {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Run `f` on the in-node thread and wait for its result without blocking the runtime.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.jobs
            .as_ref()
            .context("in-node thread stopped")?
            .send(job)
            .map_err(|_| anyhow::anyhow!("the in-node thread ended"))?;
        rx.await.context("an in-node job panicked")
    }
}

impl Drop for InNode {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Whether the first line of an HTTP response is a 200.
pub fn is_http_ok(status_line: &[u8]) -> bool {
    status_line.starts_with(b"HTTP/1.1 200 ") || status_line.starts_with(b"HTTP/1.0 200 ")
}

/// One `GET /` to `addr`: whether it answered 200. Blocking; call it on the in-node thread.
pub fn http_ok(addr: SocketAddr) -> bool {
    let attempt = || -> std::io::Result<bool> {
        let mut s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.set_write_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
        let mut head = [0u8; 16];
        let mut got = 0;
        while got < head.len() {
            match s.read(&mut head[got..])? {
                0 => break,
                n => got += n,
            }
        }
        Ok(is_http_ok(&head[..got]))
    };
    attempt().unwrap_or(false)
}

/// Probe `addr` every [`PROBE_GAP`] until it answers 200; returns when it did, or `None` at
/// `deadline`. Blocking; call it on the in-node thread.
pub fn until_answers(addr: SocketAddr, deadline: Instant) -> Option<Instant> {
    loop {
        if http_ok(addr) {
            return Some(Instant::now());
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(PROBE_GAP);
    }
}

/// What the direct baseline measured.
#[derive(Debug, Default)]
pub struct Direct {
    /// fork/exec of `podway builtin-image echo-hname` → it answers `GET /` with 200.
    pub to_answer: Vec<Duration>,
    /// The process's memory once it answered (the last run's): the pod's own process, without
    /// a pod around it.
    pub memory: Option<Memory>,
}

/// `runs` times: start `BIN builtin-image IMAGE` on this thread's node, probe `port` on the
/// node's loopback until it answers, stop it. Blocking; call it on the in-node thread.
pub fn direct_baseline(bin: &Path, image: &str, port: u16, runs: usize) -> Result<Direct> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    if http_ok(addr) {
        bail!("something already answers on {addr} inside the node; the baseline needs the port");
    }
    let mut out = Direct::default();
    for _ in 0..runs {
        let started = Instant::now();
        let mut child = Command::new(bin)
            .args(["builtin-image", image])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("spawning {} builtin-image {image}", bin.display()))?;
        let answered = until_answers(addr, started + Duration::from_secs(10));
        let memory = host::memory(child.id()).ok();
        let _ = child.kill();
        let _ = child.wait();
        match answered {
            Some(at) => out.to_answer.push(at - started),
            None => bail!("builtin-image {image} did not answer on {addr} within 10s"),
        }
        out.memory = memory;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_200_status_line_is_an_answer() {
        assert!(is_http_ok(b"HTTP/1.1 200 OK\r\n"));
        assert!(is_http_ok(b"HTTP/1.0 200 OK"));
        assert!(!is_http_ok(b"HTTP/1.1 503 Service"));
        assert!(!is_http_ok(b"HTTP/1.1 2000"));
        assert!(!is_http_ok(b""));
    }

    #[test]
    fn a_loopback_server_answering_200_is_seen_and_a_closed_port_is_not() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 256];
            let _ = s.read(&mut buf);
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
        });
        assert!(until_answers(addr, Instant::now() + Duration::from_secs(5)).is_some());
        server.join().unwrap();
        // Nothing listens there any more: refused at once, so the deadline decides.
        assert_eq!(until_answers(addr, Instant::now()), None);
    }
}
