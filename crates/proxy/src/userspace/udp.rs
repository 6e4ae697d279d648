//! UDP forwarding: one session per client address, each with a socket of its own towards the
//! endpoint it picked. Replies go back through the listening socket, so they come from the
//! service address the client sent to (a connected client socket accepts nothing else).
//!
//! The listener task is the only owner of the listening socket: when a sync closes the listener
//! the socket is gone at once, and the kernel answers further datagrams with ICMP port
//! unreachable. Session tasks hand replies to it over a channel.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};

use super::listen::{peer_ip, Context, PortShared};
use super::plan::{self, Entry, Route};

/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;

struct Session {
    id: u64,
    endpoint: SocketAddrV4,
    /// The route the endpoint was checked against; a different `Arc` means a sync happened.
    route: Arc<Route>,
    upstream: Arc<UdpSocket>,
    /// Milliseconds since the listener started, at the last datagram either way.
    last: Arc<AtomicU64>,
    task: AbortHandle,
}

/// The sessions of one listener, owned by its task.
struct Sessions {
    local: SocketAddrV4,
    entry: Entry,
    port: Arc<PortShared>,
    ctx: Context,
    start: Instant,
    by_client: HashMap<SocketAddr, Session>,
    tasks: JoinSet<(SocketAddr, u64)>,
    replies: mpsc::Sender<(SocketAddr, Vec<u8>)>,
    next_id: u64,
}

impl Sessions {
    /// The socket towards `client`'s endpoint: its session's, or a new session's. None when
    /// there is no endpoint for this client (the datagram is dropped).
    async fn upstream(&mut self, client: SocketAddr) -> Option<Arc<UdpSocket>> {
        let now = self.start.elapsed().as_millis() as u64;
        let route = self.port.route();
        let in_cluster = plan::in_cluster(peer_ip(client), self.ctx.pod_cidr, &self.ctx.node_ips, *self.local.ip());
        let candidates = route.candidates(self.entry, in_cluster);
        // A sync that removed a session's endpoint ends the session, so this datagram picks
        // afresh (the nftables backend deletes the conntrack entries instead).
        if let Some(s) = self.by_client.get_mut(&client) {
            if Arc::ptr_eq(&s.route, &route) || candidates.contains(&s.endpoint) {
                s.route = route.clone();
                s.last.store(now, Ordering::Relaxed);
                return Some(s.upstream.clone());
            }
            s.task.abort();
            self.by_client.remove(&client);
        }
        let ep = self
            .port
            .chooser
            .choose(candidates, peer_ip(client), route.affinity, Instant::now(), &[])?;
        let upstream = Arc::new(connect(ep).await.ok()?);
        let last = Arc::new(AtomicU64::new(now));
        self.next_id += 1;
        let task = self.tasks.spawn(session(
            client,
            self.next_id,
            upstream.clone(),
            last.clone(),
            self.replies.clone(),
            self.start,
            self.ctx.udp_idle,
        ));
        let s = Session {
            id: self.next_id,
            endpoint: ep,
            route: route.clone(),
            upstream: upstream.clone(),
            last,
            task,
        };
        self.by_client.insert(client, s);
        Some(upstream)
    }

    /// Forgets a session whose task ended (idle), unless a newer one took its client.
    fn ended(&mut self, client: SocketAddr, id: u64) {
        if self.by_client.get(&client).is_some_and(|s| s.id == id) {
            self.by_client.remove(&client);
        }
    }
}

/// Serves one UDP listener until the task is dropped.
pub async fn serve_udp(socket: UdpSocket, local: SocketAddrV4, entry: Entry, port: Arc<PortShared>, ctx: Context) {
    let (replies_tx, mut replies) = mpsc::channel::<(SocketAddr, Vec<u8>)>(1024);
    let mut sessions = Sessions {
        local,
        entry,
        port,
        ctx,
        start: Instant::now(),
        by_client: HashMap::new(),
        tasks: JoinSet::new(),
        replies: replies_tx,
        next_id: 0,
    };
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let Ok((n, client)) = received else { continue };
                if let Some(upstream) = sessions.upstream(client).await {
                    // An endpoint that went away answers with ICMP; the error comes back on a
                    // later call and means nothing for this datagram. (`try_send` would fail on
                    // a new socket whose writability the reactor has not seen yet.)
                    let _ = upstream.send(&buf[..n]).await;
                }
            }
            Some((client, data)) = replies.recv() => {
                let _ = socket.send_to(&data, client).await;
            }
            Some(Ok((client, id))) = sessions.tasks.join_next(), if !sessions.tasks.is_empty() => {
                sessions.ended(client, id);
            }
        }
    }
}

async fn connect(ep: SocketAddrV4) -> std::io::Result<UdpSocket> {
    let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await?;
    s.connect(ep).await?;
    Ok(s)
}

/// Carries the endpoint's replies back until the session is idle for `idle`.
async fn session(
    client: SocketAddr,
    id: u64,
    upstream: Arc<UdpSocket>,
    last: Arc<AtomicU64>,
    replies: mpsc::Sender<(SocketAddr, Vec<u8>)>,
    start: Instant,
    idle: Duration,
) -> (SocketAddr, u64) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let since = start
            .elapsed()
            .saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
        let Some(left) = idle.checked_sub(since).filter(|d| !d.is_zero()) else {
            return (client, id);
        };
        tokio::select! {
            // An error is ICMP unreachable from the endpoint: the session stays until it
            // idles out.
            got = upstream.recv(&mut buf) => if let Ok(n) = got {
                last.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
                if replies.send((client, buf[..n].to_vec())).await.is_err() {
                    return (client, id);
                }
            },
            _ = tokio::time::sleep(left) => {}
        }
    }
}
