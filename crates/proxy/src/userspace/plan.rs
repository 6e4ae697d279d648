//! What the userspace backend listens on and where a connection goes, as plain data.
//!
//! [`bindings`] lists the sockets one Service port needs (cluster IPs, external and
//! load-balancer IPs, the NodePort on every node IP), [`Route`] is the endpoint sets a listener
//! picks from, and [`Chooser`] picks one per connection (round-robin or random, with
//! `sessionAffinity: ClientIP`). Nothing here touches a socket.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::Ipv4Cidr;
use crate::model::select::categorize;
use crate::model::{Protocol, ServicePort, ServicePortName, ServiceTable};

/// One socket the backend holds: an address, a port and a transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListenKey {
    /// The local address and port.
    pub addr: SocketAddrV4,
    /// TCP or UDP (SCTP is not forwarded in userspace).
    pub protocol: Protocol,
}

/// How traffic reached a listener, which decides the traffic policy that applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Entry {
    /// A cluster IP: `internalTrafficPolicy`.
    ClusterIp,
    /// A NodePort, external IP or load-balancer IP: `externalTrafficPolicy`.
    External,
}

/// The sockets one Service port needs, with how traffic arrives on each.
///
/// A listener exists only when the traffic it receives has an endpoint to go to: a Service
/// without endpoints has no socket, so the kernel refuses its connections at once (TCP RST,
/// ICMP port unreachable for UDP).
pub fn bindings(port: &ServicePort, node_ips: &[Ipv4Addr]) -> Vec<(ListenKey, Entry)> {
    if port.name.protocol == Protocol::Sctp {
        return Vec::new();
    }
    let route = Route::from_port(port);
    let key = |ip: Ipv4Addr, p: u16| ListenKey {
        addr: SocketAddrV4::new(ip, p),
        protocol: port.name.protocol,
    };
    let mut out = Vec::new();
    if route.serves(Entry::ClusterIp) {
        out.extend(
            port.cluster_ips
                .iter()
                .map(|ip| (key(*ip, port.port), Entry::ClusterIp)),
        );
    }
    if route.serves(Entry::External) {
        for ip in port.external_ips.iter().chain(&port.load_balancer_ips) {
            out.push((key(*ip, port.port), Entry::External));
        }
        if let Some(node_port) = port.node_port {
            out.extend(node_ips.iter().map(|ip| (key(*ip, node_port), Entry::External)));
        }
    }
    out
}

/// Every listener of `table`, with the Service port that owns it. When two ports claim one
/// key, the first by name wins, as in the nftables backend.
pub fn all_bindings(table: &ServiceTable, node_ips: &[Ipv4Addr]) -> BTreeMap<ListenKey, (ServicePortName, Entry)> {
    let mut out = BTreeMap::new();
    for port in table.ports() {
        for (key, entry) in bindings(port, node_ips) {
            out.entry(key).or_insert_with(|| (port.name.clone(), entry));
        }
    }
    out
}

/// The addresses that must be local for packets to reach the listeners: cluster IPs and
/// external IPs. Load-balancer IPs are left to the announcer (one node answers for each);
/// node IPs are local already.
pub fn service_addresses(table: &ServiceTable) -> std::collections::BTreeSet<Ipv4Addr> {
    table
        .ports()
        .filter(|p| p.name.protocol != Protocol::Sctp)
        .flat_map(|p| p.cluster_ips.iter().chain(&p.external_ips).copied())
        .collect()
}

/// The endpoints one Service port forwards to, as its listeners see them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Route {
    /// Endpoints for Cluster traffic policy.
    pub cluster: Vec<SocketAddrV4>,
    /// This node's endpoints, for Local traffic policy.
    pub local: Vec<SocketAddrV4>,
    /// `internalTrafficPolicy: Local`.
    pub internal_local: bool,
    /// `externalTrafficPolicy: Local` (on a port with external addresses).
    pub external_local: bool,
    /// `sessionAffinity: ClientIP` timeout.
    pub affinity: Option<Duration>,
}

impl Route {
    /// The route of `port`, from kube-proxy's endpoint categories ([`categorize`]).
    pub fn from_port(port: &ServicePort) -> Route {
        let eps = categorize(port);
        let addrs = |v: &[&crate::model::Endpoint]| v.iter().map(|e| SocketAddrV4::new(e.ip, e.port)).collect();
        Route {
            cluster: addrs(&eps.cluster),
            local: addrs(&eps.local),
            internal_local: port.internal_policy_local(),
            external_local: port.external_policy_local(),
            affinity: port.affinity_timeout.map(|s| Duration::from_secs(u64::from(s))),
        }
    }

    /// Whether some client arriving through `entry` has an endpoint to go to.
    pub fn serves(&self, entry: Entry) -> bool {
        !self.candidates(entry, true).is_empty() || !self.candidates(entry, false).is_empty()
    }

    /// The endpoints a connection may reach. `in_cluster` says the client is a pod or the node
    /// itself: such clients reach external addresses as if through the load balancer and back,
    /// so `externalTrafficPolicy: Local` does not narrow their choice (as in nftables).
    pub fn candidates(&self, entry: Entry, in_cluster: bool) -> &[SocketAddrV4] {
        match entry {
            Entry::ClusterIp if self.internal_local => &self.local,
            Entry::ClusterIp => &self.cluster,
            Entry::External if !self.external_local => &self.cluster,
            Entry::External if in_cluster && !self.cluster.is_empty() => &self.cluster,
            Entry::External => &self.local,
        }
    }
}

/// Whether `client` counts as inside the cluster: a pod, or this node itself.
pub fn in_cluster(client: Ipv4Addr, pod_cidr: Ipv4Cidr, node_ips: &[Ipv4Addr], listener: Ipv4Addr) -> bool {
    pod_cidr.contains(client) || client.is_loopback() || client == listener || node_ips.contains(&client)
}

/// How a listener spreads new connections over its endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Balance {
    /// In turn (kube-proxy's userspace mode; the fairest spread for few connections).
    #[default]
    RoundRobin,
    /// Uniformly at random (as the nftables backend's `numgen random`).
    Random,
}

/// Picks endpoints for one Service port. It outlives route changes, so a client's affinity
/// survives an update that keeps its endpoint, as the nftables per-endpoint sets do.
#[derive(Debug, Default)]
pub struct Chooser {
    balance: Balance,
    next: AtomicUsize,
    /// Client address → (endpoint, last connection). Held only for a lookup and an insert.
    affinity: Mutex<HashMap<Ipv4Addr, (SocketAddrV4, Instant)>>,
}

/// Affinity entries are swept for expiry every this many picks (a power of two), so the map stays bounded
/// by the clients of one timeout window without a timer task.
const SWEEP_EVERY: usize = 1024;

impl Chooser {
    /// A chooser spreading with `balance`.
    pub fn new(balance: Balance) -> Self {
        Chooser {
            balance,
            ..Chooser::default()
        }
    }

    /// Picks an endpoint of `candidates` for `client`, skipping `tried` (endpoints that failed
    /// to answer this connection). With `affinity`, a client that connected within the timeout
    /// returns to its endpoint while that endpoint is still a candidate; every connection
    /// refreshes the timeout (the nftables `update @set` does the same).
    pub fn choose(
        &self,
        candidates: &[SocketAddrV4],
        client: Ipv4Addr,
        affinity: Option<Duration>,
        now: Instant,
        tried: &[SocketAddrV4],
    ) -> Option<SocketAddrV4> {
        let usable: Vec<SocketAddrV4> = candidates.iter().filter(|c| !tried.contains(c)).copied().collect();
        if usable.is_empty() {
            return None;
        }
        let Some(timeout) = affinity else {
            return Some(self.spread(&usable));
        };
        let mut map = self.affinity.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((ep, last)) = map.get(&client) {
            if now.saturating_duration_since(*last) <= timeout && usable.contains(ep) {
                let ep = *ep;
                map.insert(client, (ep, now));
                return Some(ep);
            }
        }
        let ep = self.spread(&usable);
        map.insert(client, (ep, now));
        if self.next.load(Ordering::Relaxed) & (SWEEP_EVERY - 1) == 0 {
            map.retain(|_, (_, last)| now.saturating_duration_since(*last) <= timeout);
        }
        Some(ep)
    }

    fn spread(&self, usable: &[SocketAddrV4]) -> SocketAddrV4 {
        let i = match self.balance {
            Balance::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed),
            Balance::Random => {
                self.next.fetch_add(1, Ordering::Relaxed);
                rand::random_range(0..usable.len())
            }
        };
        usable[i % usable.len()]
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
