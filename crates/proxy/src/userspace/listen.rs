//! Listening sockets and TCP forwarding: one task per listener accepts, one task per
//! connection picks an endpoint, dials it and copies bytes until both sides are done.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::OwnedFd;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rustix::net::{sockopt, AddressFamily, SocketFlags, SocketType};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::plan::{self, Chooser, Entry, ListenKey, Route};
use super::splice::{splice_bidirectional, CopyMode};
use crate::config::Ipv4Cidr;
use crate::model::Protocol;

/// What every listener of one Service port shares: its current route, swapped in place by a
/// sync (so listeners and established connections are untouched), and its endpoint chooser.
#[derive(Debug)]
pub struct PortShared {
    route: RwLock<Arc<Route>>,
    /// Picks endpoints; lives as long as the Service port, across route changes.
    pub chooser: Chooser,
}

impl PortShared {
    /// Shared state starting with `route`.
    pub fn new(route: Route, chooser: Chooser) -> Self {
        PortShared {
            route: RwLock::new(Arc::new(route)),
            chooser,
        }
    }

    /// The route now.
    pub fn route(&self) -> Arc<Route> {
        self.route.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the route when it differs (keeping the same `Arc` tells UDP sessions nothing
    /// changed).
    pub fn set_route(&self, route: Route) {
        let mut cur = self.route.write().unwrap_or_else(|e| e.into_inner());
        if **cur != route {
            *cur = Arc::new(route);
        }
    }
}

/// What every listener needs besides its port.
#[derive(Debug, Clone)]
pub struct Context {
    /// The pod network (clients from it count as in-cluster).
    pub pod_cidr: Ipv4Cidr,
    /// The node's addresses (clients from them count as in-cluster).
    pub node_ips: Arc<[Ipv4Addr]>,
    /// How TCP bytes are copied.
    pub copy: CopyMode,
    /// How long a UDP session lives without a datagram either way.
    pub udp_idle: Duration,
    /// Becomes true when the backend is cleaned up: established connections end.
    pub shutdown: watch::Receiver<bool>,
}

/// How long to wait for an endpoint to accept, per attempt; a failed attempt moves on to
/// another endpoint (kube-proxy's userspace mode used the same schedule).
const DIAL_TIMEOUTS: [Duration; 4] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// A socket bound to `key`, non-blocking, listening when TCP. `IP_FREEBIND` lets it bind an
/// address that is not (yet) local: a load-balancer IP appears only when this node announces
/// it, and binding must not depend on the order of address and socket changes.
pub fn bind(key: ListenKey) -> io::Result<OwnedFd> {
    let ty = match key.protocol {
        Protocol::Tcp => SocketType::STREAM,
        Protocol::Udp => SocketType::DGRAM,
        Protocol::Sctp => return Err(io::Error::new(io::ErrorKind::Unsupported, "SCTP is not proxied")),
    };
    let fd = rustix::net::socket_with(
        AddressFamily::INET,
        ty,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    sockopt::set_ip_freebind(&fd, true)?;
    rustix::net::bind(&fd, &key.addr)?;
    if key.protocol == Protocol::Tcp {
        rustix::net::listen(&fd, 4096)?;
    }
    Ok(fd)
}

/// Accepts connections on `listener` forever; each is forwarded by a task of its own, which
/// outlives the listener (a Service update closing the listener keeps established connections,
/// as conntrack keeps them in nftables).
pub async fn serve_tcp(
    listener: tokio::net::TcpListener,
    local: SocketAddrV4,
    entry: Entry,
    port: Arc<PortShared>,
    ctx: Context,
) {
    loop {
        match listener.accept().await {
            Ok((client, peer)) => {
                tokio::spawn(connection(client, peer, local, entry, port.clone(), ctx.clone()));
            }
            Err(error) => {
                // Out of file descriptors, mostly: back off instead of spinning.
                tracing::warn!(%error, %local, "proxy accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// The IPv4 address of a peer (listeners are IPv4; a mapped address is unwrapped).
pub fn peer_ip(peer: SocketAddr) -> Ipv4Addr {
    match peer {
        SocketAddr::V4(a) => *a.ip(),
        SocketAddr::V6(a) => a.ip().to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
    }
}

async fn connection(
    client: TcpStream,
    peer: SocketAddr,
    local: SocketAddrV4,
    entry: Entry,
    port: Arc<PortShared>,
    mut ctx: Context,
) {
    let client_ip = peer_ip(peer);
    let route = port.route();
    let in_cluster = plan::in_cluster(client_ip, ctx.pod_cidr, &ctx.node_ips, *local.ip());
    let candidates = route.candidates(entry, in_cluster);
    let mut tried = Vec::new();
    let mut upstream = None;
    for timeout in DIAL_TIMEOUTS {
        let Some(ep) = port
            .chooser
            .choose(candidates, client_ip, route.affinity, Instant::now(), &tried)
        else {
            break;
        };
        match tokio::time::timeout(timeout, TcpStream::connect(ep)).await {
            Ok(Ok(stream)) => {
                upstream = Some(stream);
                break;
            }
            Ok(Err(error)) => tracing::debug!(%error, endpoint = %ep, "proxy cannot reach endpoint"),
            Err(_) => tracing::debug!(endpoint = %ep, ?timeout, "proxy endpoint did not answer"),
        }
        tried.push(ep);
    }
    let Some(upstream) = upstream else {
        // Nothing to forward to (an outside client of an externalTrafficPolicy Local Service
        // on a node without local endpoints, or no endpoint answered): reset, never hang.
        reset(&client);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    tokio::select! {
        _ = forward(client, upstream, ctx.copy) => {}
        _ = ctx.shutdown.wait_for(|down| *down) => {}
    }
}

async fn forward(mut client: TcpStream, mut upstream: TcpStream, copy: CopyMode) {
    let result = match copy {
        CopyMode::Splice => splice_bidirectional(&client, &upstream).await.map(|_| ()),
        CopyMode::Buffered => tokio::io::copy_bidirectional(&mut client, &mut upstream)
            .await
            .map(|_| ()),
    };
    if let Err(error) = result {
        // A reset on one side is passed on as a reset on the other.
        tracing::debug!(%error, "proxied connection ended with an error");
        reset(&client);
        reset(&upstream);
    }
}

/// Makes the coming close send a reset instead of a FIN. A zero linger never blocks the close
/// (tokio deprecates `set_linger` for the blocking case only).
fn reset(stream: &TcpStream) {
    let _ = sockopt::set_socket_linger(stream, Some(Duration::ZERO));
}
