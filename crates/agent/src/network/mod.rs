//! The node network: one cluster's nodes as real network hosts on this machine.
//!
//! ```text
//!   host namespace                                   node namespaces
//!   +--------------------------------------+        +------------------------------------+
//!   | bridge pw<tag>  172.30.0.1/24        |        | podway-<cluster>-control-plane     |
//!   |   port pw<tag>n0 ---------- veth ---------->  |   eth0 172.30.0.2/24               |
//!   |   port pw<tag>n1 ---------- veth ------+      |   default via 172.30.0.1           |
//!   |                                      | |      |   10.244.1.0/24 via 172.30.0.3     |
//!   | blackhole 10.244.0.0/16 metric M     | |      |   net.ipv4.ip_forward=1            |
//!   | blackhole 10.96.0.0/12  metric M     | |      +------------------------------------+
//!   +--------------------------------------+ +--->  | podway-<cluster>-worker  .3, ...   |
//!                                                   +------------------------------------+
//! ```
//!
//! The host reaches every node directly on the bridge (node IPs, NodePorts and LoadBalancer
//! IPs need no tunnel). Pod and service ranges are blackholed on the host, so `curl <pod-IP>`
//! from the host fails at once and nothing leaves the machine; inside a node, pods of other
//! nodes are reached via that node's IP. The host's own `net.ipv4.ip_forward` is never changed:
//! node-to-node traffic is bridged, not routed by the host.
//!
//! - [`plan`]: [`NetworkConfig`] → [`NetworkPlan`], pure.
//! - [`names`]: every interface, namespace and metric name, with their limits.
//! - [`render`]: plan + [`observe`]d state → `ip` commands, pure.
//! - [`executor`]: [`Network::up`], [`Network::down`], [`teardown_stale`], and running
//!   commands in a node ([`Network::exec_in_node`], [`Network::node_command`]).
//! - [`ip`]: the narrow [`Ip`] trait, [`SystemIp`] and the [`FakeIp`] for tests.

pub mod cidr;
pub mod executor;
pub mod ip;
pub mod names;
pub mod observe;
pub mod plan;
pub mod render;

pub use cidr::Ipv4Cidr;
pub use executor::{teardown_stale, Network};
pub use ip::{FakeIp, Ip, IpError, SystemIp};
pub use plan::{NetworkConfig, NetworkPlan, NodePlan, PlanError};

/// Why a node network operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// The configuration cannot be planned; change it (retrying does not help).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// An `ip` command failed. Retrying helps only when the cause was transient; running
    /// without root (`Operation not permitted`) is not.
    #[error(transparent)]
    Ip(IpError),
    /// Reading the machine's state failed.
    #[error(transparent)]
    Observe(#[from] observe::ObserveError),
    /// No node of that name in the cluster.
    #[error("node {node:?} not found; the cluster's nodes are: {known}")]
    UnknownNode {
        /// The name asked for.
        node: String,
        /// The cluster's node names, comma-separated.
        known: String,
    },
}
