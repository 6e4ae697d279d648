//! The sockets: UDP and TCP on each listen address, answering from the current snapshot and
//! forwarding the rest.
//!
//! Each UDP socket has one receive loop that answers in place with a reused buffer; only
//! forwarded queries become tasks, so a slow upstream never delays cluster answers, and
//! queries that arrive together (a stub's parallel A and AAAA) are answered independently.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinSet;

use crate::answer::{answer_into, finish_chase, Chase, Outcome, Transport};
use crate::records::RecordsHandle;
use crate::upstream::Upstream;
use crate::wire::{self, rcode};

/// A TCP connection idle this long is closed (RFC 7766 suggests seconds, not minutes).
const TCP_IDLE: Duration = Duration::from_secs(10);

/// Forwarded queries in flight per socket, CoreDNS's `max_concurrent 1000`: past it,
/// REFUSED at once instead of queueing behind a dead upstream.
const MAX_FORWARDS: usize = 1000;

/// Bound sockets, UDP and TCP on the same port of each address.
#[derive(Debug)]
pub struct Listeners {
    udp: Vec<UdpSocket>,
    tcp: Vec<TcpListener>,
}

impl Listeners {
    /// Binds UDP and TCP on each address. Port 0 picks a free port that both protocols
    /// share (retried a few times when TCP finds it taken).
    pub async fn bind(addrs: &[SocketAddr]) -> std::io::Result<Listeners> {
        let mut listeners = Listeners {
            udp: Vec::new(),
            tcp: Vec::new(),
        };
        for addr in addrs {
            let mut attempts = 0;
            loop {
                let udp = UdpSocket::bind(addr).await?;
                let bound = udp.local_addr()?;
                match TcpListener::bind(bound).await {
                    Ok(tcp) => {
                        listeners.udp.push(udp);
                        listeners.tcp.push(tcp);
                        break;
                    }
                    Err(e) if addr.port() == 0 && attempts < 8 => {
                        attempts += 1;
                        tracing::debug!(%bound, error = %e, "tcp port taken; picking another");
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(listeners)
    }

    /// The addresses bound, one per requested address.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.udp.iter().filter_map(|s| s.local_addr().ok()).collect()
    }
}

/// Binds `listen` and serves until `shutdown` completes; see [`serve_on`].
pub async fn serve(
    listen: Vec<SocketAddr>,
    records: RecordsHandle,
    upstream: Upstream,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listeners = Listeners::bind(&listen).await?;
    serve_on(listeners, records, upstream, shutdown).await;
    Ok(())
}

/// Serves DNS on bound sockets until `shutdown` completes: cluster names from `records`
/// (read afresh for every query, so a swapped snapshot answers at once), everything else
/// through `upstream`.
pub async fn serve_on(
    listeners: Listeners,
    records: RecordsHandle,
    upstream: Upstream,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let upstream = Arc::new(upstream);
    let mut tasks = JoinSet::new();
    for sock in listeners.udp {
        tasks.spawn(udp_loop(Arc::new(sock), records.clone(), upstream.clone()));
    }
    for listener in listeners.tcp {
        tasks.spawn(tcp_accept(listener, records.clone(), upstream.clone()));
    }
    shutdown.await;
    tasks.shutdown().await;
}

async fn udp_loop(sock: Arc<UdpSocket>, records: RecordsHandle, upstream: Arc<Upstream>) {
    let mut buf = vec![0u8; 65535];
    let mut out = Vec::with_capacity(4096);
    // Forward tasks live here so they end with the loop.
    let mut forwards = JoinSet::new();
    loop {
        let (n, peer) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    // ICMP errors from earlier sends surface on the next receive; keep going.
                    tracing::debug!(error = %e, "udp receive failed");
                    continue;
                }
            },
            Some(_) = forwards.join_next(), if !forwards.is_empty() => continue,
        };
        let query = &buf[..n];
        let outcome = answer_into(&records.load(), query, Transport::Udp, &mut out);
        match outcome {
            Outcome::Answered => {
                if let Err(e) = sock.send_to(&out, peer).await {
                    tracing::debug!(%peer, error = %e, "udp send failed");
                }
            }
            Outcome::Ignored => {}
            Outcome::Forward | Outcome::Chase(_) if forwards.len() >= MAX_FORWARDS => {
                wire::error_response(&mut out, query, rcode::REFUSED, true);
                let _ = sock.send_to(&out, peer).await;
            }
            Outcome::Forward => {
                let (sock, upstream, query) = (sock.clone(), upstream.clone(), query.to_vec());
                forwards.spawn(async move {
                    let resp = forward(&upstream, &query, Transport::Udp).await;
                    let _ = sock.send_to(&resp, peer).await;
                });
            }
            Outcome::Chase(chase) => {
                let (sock, upstream, query, partial) = (sock.clone(), upstream.clone(), query.to_vec(), out.clone());
                let records = records.clone();
                forwards.spawn(async move {
                    let resp = chase_upstream(&records, &upstream, &query, &partial, chase, Transport::Udp).await;
                    let _ = sock.send_to(&resp, peer).await;
                });
            }
        }
    }
}

/// Relays a query upstream; SERVFAIL when no server answers.
async fn forward(upstream: &Upstream, query: &[u8], transport: Transport) -> Vec<u8> {
    let resp = match transport {
        Transport::Udp => upstream.query_udp(query).await,
        Transport::Tcp => upstream.query_tcp(query).await,
    };
    resp.unwrap_or_else(|| {
        let mut out = Vec::new();
        wire::error_response(&mut out, query, rcode::SERVFAIL, true);
        out
    })
}

async fn chase_upstream(
    records: &RecordsHandle,
    upstream: &Upstream,
    query: &[u8],
    partial: &[u8],
    chase: Chase,
    transport: Transport,
) -> Vec<u8> {
    let found = upstream.lookup(&chase.target, chase.qtype).await;
    let mut out = Vec::new();
    let found = found.as_ref().map(|(bytes, n)| (bytes.as_slice(), *n));
    finish_chase(&records.load(), query, partial, found, transport, &mut out);
    out
}

async fn tcp_accept(listener: TcpListener, records: RecordsHandle, upstream: Arc<Upstream>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    conns.spawn(tcp_conn(stream, records.clone(), upstream.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "dns tcp accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Answers length-prefixed queries on one connection, in order, until it closes or idles.
async fn tcp_conn(mut stream: TcpStream, records: RecordsHandle, upstream: Arc<Upstream>) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    let mut out = Vec::with_capacity(4096);
    loop {
        let Ok(Ok(len)) = tokio::time::timeout(TCP_IDLE, stream.read_u16()).await else {
            return;
        };
        buf.resize(len as usize, 0);
        if stream.read_exact(&mut buf).await.is_err() {
            return;
        }
        let outcome = answer_into(&records.load(), &buf, Transport::Tcp, &mut out);
        let resp = match outcome {
            Outcome::Answered => std::mem::take(&mut out),
            Outcome::Ignored => continue,
            Outcome::Forward => forward(&upstream, &buf, Transport::Tcp).await,
            Outcome::Chase(chase) => chase_upstream(&records, &upstream, &buf, &out, chase, Transport::Tcp).await,
        };
        let mut framed = Vec::with_capacity(resp.len() + 2);
        framed.extend_from_slice(&(resp.len() as u16).to_be_bytes());
        framed.extend_from_slice(&resp);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
        out = resp;
    }
}
