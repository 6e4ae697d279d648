//! LoadBalancer IPs answer on the node network, as MetalLB's layer-2 mode does it.
//!
//! A LoadBalancer IP is an address on the node network that no machine owns. For a packet to it
//! to arrive, one node must answer ARP for it: that node adds the IP to its node interface (as
//! a /32), the kernel then answers ARP and takes the packets in, and the data plane forwards
//! them as for any service address (the nftables prerouting DNAT runs before the packet is
//! delivered locally). Exactly one node announces each IP, so the neighbours' ARP caches agree:
//! every node computes the same choice from the same table, the first (by name) of the nodes
//! that hold a ready endpoint of the Service. That node is valid for both traffic policies
//! (with `externalTrafficPolicy: Local` only nodes with a local endpoint may answer).
//!
//! [`Announcer`] wraps any [`Backend`] and, after each successful sync, makes the interface hold
//! exactly the IPs this node announces. On shutdown it withdraws them. The addresses carry the
//! label `<interface>:pw`, so an agent restarted after a crash finds and withdraws the ones it
//! no longer announces, and never touches an address someone else put there.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use async_trait::async_trait;

use crate::backend::{Backend, SyncError};
use crate::model::tracker::ServiceChange;
use crate::model::{ServicePort, ServiceTable};

/// The node that announces `port`'s LoadBalancer IPs: the first, by name, of the nodes holding
/// a ready endpoint. None when no endpoint is ready (nobody answers, as with MetalLB).
pub fn announcing_node(port: &ServicePort) -> Option<&str> {
    port.endpoints
        .iter()
        .filter(|e| e.ready)
        .filter_map(|e| e.node_name.as_deref())
        .min()
}

/// The LoadBalancer IPs that `node` announces, over every Service port of `table`.
pub fn announced_by(table: &ServiceTable, node: &str) -> BTreeSet<Ipv4Addr> {
    table
        .ports()
        .filter(|p| !p.load_balancer_ips.is_empty() && announcing_node(p) == Some(node))
        .flat_map(|p| p.load_balancer_ips.iter().copied())
        .collect()
}

/// Adds and removes /32 addresses on one interface (a trait so tests need no root).
#[async_trait]
pub trait Addresses: Send {
    /// The addresses an earlier run left (the labelled ones).
    async fn list(&mut self) -> Result<BTreeSet<Ipv4Addr>, SyncError>;
    /// Add `ip`/32 to the interface.
    async fn add(&mut self, ip: Ipv4Addr) -> Result<(), SyncError>;
    /// Remove `ip`/32 from the interface.
    async fn remove(&mut self, ip: Ipv4Addr) -> Result<(), SyncError>;
}

/// [`Addresses`] through the `ip` tool, in the current network namespace.
pub struct IpCommand {
    /// The interface on the node network, e.g. `eth0`.
    pub interface: String,
}

impl IpCommand {
    /// The label podway's addresses carry: `<interface>:pw` (labels hold at most 15 bytes).
    fn label(&self) -> Option<String> {
        Some(format!("{}:pw", self.interface)).filter(|l| l.len() <= 15)
    }

    async fn ip(&self, verb: &str, ip: Ipv4Addr) -> Result<(), SyncError> {
        let mut args = vec![
            "-4".to_string(),
            "addr".into(),
            verb.into(),
            format!("{ip}/32"),
            "dev".into(),
        ];
        args.push(self.interface.clone());
        if let (Some(label), "add") = (self.label(), verb) {
            args.extend(["label".to_string(), label]);
        }
        let out = tokio::process::Command::new("ip").args(&args).output().await?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Adding an address that is there, or removing one that is not, is already done.
        if out.status.success() || stderr.contains("File exists") || stderr.contains("Cannot assign") {
            Ok(())
        } else {
            Err(format!("ip addr {verb} {ip}/32 dev {}: {}", self.interface, stderr.trim()).into())
        }
    }
}

#[async_trait]
impl Addresses for IpCommand {
    async fn list(&mut self) -> Result<BTreeSet<Ipv4Addr>, SyncError> {
        let Some(label) = self.label() else {
            return Ok(BTreeSet::new());
        };
        let out = tokio::process::Command::new("ip")
            .args(["-4", "-o", "addr", "show", "dev", &self.interface, "label", &label])
            .output()
            .await?;
        if !out.status.success() {
            return Err(format!(
                "ip addr show dev {}: {}",
                self.interface,
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        Ok(labelled_addresses(&String::from_utf8_lossy(&out.stdout)))
    }

    async fn add(&mut self, ip: Ipv4Addr) -> Result<(), SyncError> {
        self.ip("add", ip).await
    }

    async fn remove(&mut self, ip: Ipv4Addr) -> Result<(), SyncError> {
        self.ip("del", ip).await
    }
}

/// The /32 addresses in `ip -o addr show` output.
fn labelled_addresses(out: &str) -> BTreeSet<Ipv4Addr> {
    out.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next()?.strip_suffix("/32")?.parse().ok()
        })
        .collect()
}

/// A backend that also announces this node's LoadBalancer IPs.
pub struct Announcer {
    inner: Box<dyn Backend>,
    node: String,
    addresses: Box<dyn Addresses>,
    /// What the interface holds now (as far as this process put it there).
    held: BTreeSet<Ipv4Addr>,
}

impl Announcer {
    /// Wrap `inner`; `node` is this node's name.
    pub fn new(inner: Box<dyn Backend>, node: String, addresses: Box<dyn Addresses>) -> Self {
        Announcer {
            inner,
            node,
            addresses,
            held: BTreeSet::new(),
        }
    }

    /// Make the interface hold exactly `want`.
    async fn converge(&mut self, want: BTreeSet<Ipv4Addr>) -> Result<(), SyncError> {
        for ip in want.difference(&self.held).copied().collect::<Vec<_>>() {
            self.addresses.add(ip).await?;
            self.held.insert(ip);
        }
        for ip in self.held.difference(&want).copied().collect::<Vec<_>>() {
            self.addresses.remove(ip).await?;
            self.held.remove(&ip);
        }
        Ok(())
    }
}

#[async_trait]
impl Backend for Announcer {
    async fn sync_full(&mut self, table: &ServiceTable) -> Result<(), SyncError> {
        self.inner.sync_full(table).await?;
        // Whatever an earlier run left is ours to keep or withdraw.
        self.held = self.addresses.list().await?;
        self.converge(announced_by(table, &self.node)).await
    }

    async fn sync_changes(&mut self, table: &ServiceTable, changes: &[ServiceChange]) -> Result<(), SyncError> {
        self.inner.sync_changes(table, changes).await?;
        self.converge(announced_by(table, &self.node)).await
    }

    async fn cleanup(&mut self) -> Result<(), SyncError> {
        let withdrawn = self.converge(BTreeSet::new()).await;
        self.inner.cleanup().await?;
        withdrawn
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{ready, service, slice};
    use crate::model::tracker::ChangeTracker;
    use crate::model::NodeContext;
    use serde_json::{json, Value};
    use std::sync::{Arc, Mutex};

    /// A table of LoadBalancer Services `(name, LB IP, endpoints)`, as node `n1` sees it.
    fn table(services: &[(&str, &str, Value)]) -> ServiceTable {
        let mut svcs = Vec::new();
        let mut slices = Vec::new();
        for (i, (name, ip, endpoints)) in services.iter().enumerate() {
            let cluster_ip = format!("10.96.0.{}", 20 + i);
            let mut svc = service(
                name,
                json!({"type": "LoadBalancer", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip]}),
            );
            svc.status = serde_json::from_value(json!({"loadBalancer": {"ingress": [{"ip": ip}]}})).unwrap();
            svcs.push(Arc::new(svc));
            let ports = json!([{"name": "http", "port": 8080, "protocol": "TCP"}]);
            slices.push(Arc::new(slice(name, "a", ports, endpoints.clone())));
        }
        let mut tracker = ChangeTracker::new(NodeContext {
            node_name: "n1".into(),
            node_ips: vec![Ipv4Addr::new(172, 30, 0, 2)],
        });
        tracker.observe(&svcs, &slices);
        tracker.table().clone()
    }

    fn not_ready(ip: &str, node: &str) -> Value {
        json!({"addresses": [ip], "nodeName": node, "conditions": {"ready": false, "serving": false, "terminating": false}})
    }

    #[test]
    fn the_first_node_with_a_ready_endpoint_announces_and_no_other() {
        let t = table(&[(
            "web",
            "172.30.0.200",
            json!([
                ready("10.244.2.5", "kind-worker2"),
                ready("10.244.1.5", "kind-worker"),
                not_ready("10.244.0.5", "kind-control-plane"),
            ]),
        )]);
        let ip: BTreeSet<Ipv4Addr> = [Ipv4Addr::new(172, 30, 0, 200)].into();
        assert_eq!(announced_by(&t, "kind-worker"), ip);
        assert!(announced_by(&t, "kind-worker2").is_empty());
        assert!(
            announced_by(&t, "kind-control-plane").is_empty(),
            "its endpoint is not ready"
        );
    }

    #[test]
    fn a_service_without_ready_endpoints_is_announced_by_nobody() {
        let t = table(&[("web", "172.30.0.201", json!([not_ready("10.244.1.5", "n1")]))]);
        assert!(announced_by(&t, "n1").is_empty());
    }

    /// An interface that starts with one address a crashed run left, and logs every change.
    #[derive(Clone)]
    struct Recorded(Arc<Mutex<(Vec<String>, BTreeSet<Ipv4Addr>)>>);

    impl Recorded {
        fn left_by_a_crash() -> Self {
            Recorded(Arc::new(Mutex::new((vec![], [Ipv4Addr::new(172, 30, 0, 250)].into()))))
        }
    }

    #[async_trait]
    impl Addresses for Recorded {
        async fn list(&mut self) -> Result<BTreeSet<Ipv4Addr>, SyncError> {
            Ok(self.0.lock().unwrap().1.clone())
        }
        async fn add(&mut self, ip: Ipv4Addr) -> Result<(), SyncError> {
            let mut g = self.0.lock().unwrap();
            g.0.push(format!("add {ip}"));
            g.1.insert(ip);
            Ok(())
        }
        async fn remove(&mut self, ip: Ipv4Addr) -> Result<(), SyncError> {
            let mut g = self.0.lock().unwrap();
            g.0.push(format!("del {ip}"));
            g.1.remove(&ip);
            Ok(())
        }
    }

    struct Nothing;

    #[async_trait]
    impl Backend for Nothing {
        async fn sync_full(&mut self, _: &ServiceTable) -> Result<(), SyncError> {
            Ok(())
        }
        async fn sync_changes(&mut self, _: &ServiceTable, _: &[ServiceChange]) -> Result<(), SyncError> {
            Ok(())
        }
        async fn cleanup(&mut self) -> Result<(), SyncError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_announcer_adds_what_is_new_removes_what_went_or_a_crash_left_and_withdraws_all_on_cleanup() {
        let log = Recorded::left_by_a_crash();
        let mut a = Announcer::new(Box::new(Nothing), "n1".into(), Box::new(log.clone()));
        let one = ("a", "172.30.0.200", json!([ready("10.244.0.2", "n1")]));
        let two = ("b", "172.30.0.201", json!([ready("10.244.0.3", "n1")]));
        a.sync_full(&table(&[one.clone(), two])).await.unwrap();
        a.sync_full(&table(&[one])).await.unwrap();
        a.cleanup().await.unwrap();
        assert_eq!(
            log.0.lock().unwrap().0,
            [
                "add 172.30.0.200",
                "add 172.30.0.201",
                "del 172.30.0.250",
                "del 172.30.0.201",
                "del 172.30.0.200"
            ]
        );
    }

    #[test]
    fn only_slash_32_addresses_of_the_listing_are_taken() {
        let out =
            "2: eth0    inet 172.30.0.200/32 scope global eth0:pw\\       valid_lft forever preferred_lft forever\n\
                   2: eth0    inet 172.30.0.2/24 brd 172.30.0.255 scope global eth0\n";
        assert_eq!(labelled_addresses(out), [Ipv4Addr::new(172, 30, 0, 200)].into());
    }
}
