//! The userspace backend: Services carried by tokio TCP and UDP listeners, for nodes without
//! usable nftables (`--proxy-mode userspace`).
//!
//! The theory (why service addresses live on `lo`, what differs from nftables) is in this
//! folder's README.md. [`plan`] decides listeners and endpoint choice as pure data, [`listen`]
//! binds sockets and forwards TCP, [`splice`] copies TCP bytes in the kernel, [`udp`] keeps UDP
//! sessions, and [`addresses`] makes service addresses local.

pub mod addresses;
pub mod listen;
pub mod plan;
pub mod splice;
pub mod udp;

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use addresses::{LoopbackAddresses, NoAddresses, ServiceAddresses};
pub use plan::{Balance, Entry, ListenKey};
pub use splice::CopyMode;

use crate::backend::{Backend, SyncError};
use crate::config::Ipv4Cidr;
use crate::model::tracker::ServiceChange;
use crate::model::{Protocol, ServicePortName, ServiceTable};
use listen::{Context, PortShared};
use plan::{Chooser, Route};

/// What the userspace backend is told at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserspaceConfig {
    /// The node's addresses: NodePorts listen on each.
    pub node_ips: Vec<Ipv4Addr>,
    /// The pod network: its clients reach external addresses without `externalTrafficPolicy:
    /// Local` narrowing their endpoints.
    pub pod_cidr: Ipv4Cidr,
    /// How new connections spread over endpoints.
    pub balance: Balance,
    /// How TCP bytes are copied.
    pub copy: CopyMode,
    /// How long a UDP session lives without traffic. 30 s, conntrack's timeout for a UDP flow
    /// that has not become a stream, so both backends forget a client equally fast.
    pub udp_idle_timeout: Duration,
}

impl UserspaceConfig {
    /// The defaults: round-robin, splice, 30 s UDP sessions.
    pub fn new(node_ips: Vec<Ipv4Addr>, pod_cidr: Ipv4Cidr) -> Self {
        UserspaceConfig {
            node_ips,
            pod_cidr,
            balance: Balance::RoundRobin,
            copy: CopyMode::Splice,
            udp_idle_timeout: Duration::from_secs(30),
        }
    }
}

struct Listener {
    owner: ServicePortName,
    entry: Entry,
    port: Arc<PortShared>,
    task: JoinHandle<()>,
}

/// Carries Services with sockets in this process. Must be used inside a tokio runtime whose
/// threads are in the node's network namespace (sockets belong to the namespace of the thread
/// that creates them).
pub struct UserspaceBackend {
    config: UserspaceConfig,
    addresses: Box<dyn ServiceAddresses>,
    /// Addresses on `lo` that this backend put there (or found from an earlier run).
    held: BTreeSet<Ipv4Addr>,
    ports: HashMap<ServicePortName, Arc<PortShared>>,
    listeners: HashMap<ListenKey, Listener>,
    shutdown: watch::Sender<bool>,
}

impl UserspaceBackend {
    /// A backend that puts service addresses on `lo` with the `ip` tool.
    pub fn new(config: UserspaceConfig) -> Self {
        UserspaceBackend::with_addresses(config, Box::new(LoopbackAddresses))
    }

    /// A backend with the given address manager ([`NoAddresses`] when the addresses are local
    /// already, as `127.0.0.0/8` in a bench).
    pub fn with_addresses(config: UserspaceConfig, addresses: Box<dyn ServiceAddresses>) -> Self {
        UserspaceBackend {
            config,
            addresses,
            held: BTreeSet::new(),
            ports: HashMap::new(),
            listeners: HashMap::new(),
            shutdown: watch::channel(false).0,
        }
    }

    /// The sockets open now, sorted.
    pub fn listening(&self) -> Vec<ListenKey> {
        let mut keys: Vec<ListenKey> = self.listeners.keys().copied().collect();
        keys.sort();
        keys
    }

    fn context(&self) -> Context {
        Context {
            pod_cidr: self.config.pod_cidr,
            node_ips: self.config.node_ips.clone().into(),
            copy: self.config.copy,
            udp_idle: self.config.udp_idle_timeout,
            shutdown: self.shutdown.subscribe(),
        }
    }

    /// Makes the sockets and addresses match `table`. `changed` limits route updates to the
    /// ports given (None: all); the listener set is always compared in full, which is cheap
    /// next to a socket operation and needs no bookkeeping of contested addresses.
    async fn reconcile(
        &mut self,
        table: &ServiceTable,
        changed: Option<Vec<&crate::model::ServicePort>>,
    ) -> Result<(), SyncError> {
        let want_addrs = plan::service_addresses(table);
        let add: Vec<Ipv4Addr> = want_addrs.difference(&self.held).copied().collect();
        let remove: Vec<Ipv4Addr> = self.held.difference(&want_addrs).copied().collect();
        self.addresses.change(&add, &[]).await?;
        self.held.extend(add);

        self.ports.retain(|name, _| table.get(name).is_some());
        let updated: Vec<&crate::model::ServicePort> = changed.unwrap_or_else(|| table.ports().collect());
        for port in updated {
            let route = Route::from_port(port);
            match self.ports.get(&port.name) {
                Some(shared) => shared.set_route(route),
                None => {
                    let shared = PortShared::new(route, Chooser::new(self.config.balance));
                    self.ports.insert(port.name.clone(), Arc::new(shared));
                }
            }
        }

        let desired = plan::all_bindings(table, &self.config.node_ips);
        let stale: Vec<ListenKey> = self
            .listeners
            .iter()
            .filter(|(key, l)| match (desired.get(key), self.ports.get(&l.owner)) {
                (Some((owner, entry)), Some(port)) => {
                    *owner != l.owner || *entry != l.entry || !Arc::ptr_eq(port, &l.port)
                }
                _ => true,
            })
            .map(|(key, _)| *key)
            .collect();
        for key in &stale {
            if let Some(l) = self.listeners.remove(key) {
                l.task.abort();
                // Awaiting the aborted task drops its socket now, so the address refuses (or
                // can be bound again) before this sync returns.
                let _ = l.task.await;
            }
        }

        let mut failed = Vec::new();
        for (key, (owner, entry)) in desired {
            if self.listeners.contains_key(&key) {
                continue;
            }
            let Some(port) = self.ports.get(&owner).cloned() else {
                continue;
            };
            match self.open(key, entry, port.clone()) {
                Ok(task) => {
                    self.listeners.insert(
                        key,
                        Listener {
                            owner,
                            entry,
                            port,
                            task,
                        },
                    );
                }
                Err(e) => failed.push(format!("{} {}: {e}", key.protocol.as_str(), key.addr)),
            }
        }

        self.addresses.change(&[], &remove).await?;
        for ip in remove {
            self.held.remove(&ip);
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(format!("cannot listen on {}", failed.join(", ")).into())
        }
    }

    fn open(&self, key: ListenKey, entry: Entry, port: Arc<PortShared>) -> std::io::Result<JoinHandle<()>> {
        let fd = listen::bind(key)?;
        let ctx = self.context();
        Ok(match key.protocol {
            Protocol::Tcp => {
                let l = tokio::net::TcpListener::from_std(std::net::TcpListener::from(fd))?;
                tokio::spawn(listen::serve_tcp(l, key.addr, entry, port, ctx))
            }
            _ => {
                let s = tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(fd))?;
                tokio::spawn(udp::serve_udp(s, key.addr, entry, port, ctx))
            }
        })
    }

    async fn close_all(&mut self) {
        for (_, l) in self.listeners.drain() {
            l.task.abort();
            let _ = l.task.await;
        }
        self.ports.clear();
    }
}

#[async_trait]
impl Backend for UserspaceBackend {
    async fn sync_full(&mut self, table: &ServiceTable) -> Result<(), SyncError> {
        // Addresses an earlier run left behind are found by their label and reconciled too.
        self.held.extend(self.addresses.list().await?);
        self.reconcile(table, None).await
    }

    async fn sync_changes(&mut self, table: &ServiceTable, changes: &[ServiceChange]) -> Result<(), SyncError> {
        let changed = changes.iter().flat_map(|c| c.current.iter()).collect();
        self.reconcile(table, Some(changed)).await
    }

    async fn cleanup(&mut self) -> Result<(), SyncError> {
        self.close_all().await;
        let _ = self.shutdown.send(true);
        self.held.extend(self.addresses.list().await?);
        let all: Vec<Ipv4Addr> = std::mem::take(&mut self.held).into_iter().collect();
        self.addresses.change(&[], &all).await
    }
}

impl Drop for UserspaceBackend {
    fn drop(&mut self) {
        // Without cleanup (a panic, a test): stop serving; the addresses stay until the next
        // full sync or cleanup finds them by their label.
        for l in self.listeners.values() {
            l.task.abort();
        }
        let _ = self.shutdown.send(true);
    }
}

#[cfg(test)]
#[path = "backend_tests.rs"]
mod tests;
