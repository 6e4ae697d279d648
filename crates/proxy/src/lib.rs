//! podway's Service proxy: makes Services carry traffic on one node.
//!
//! - [`model`]: Services and EndpointSlices become a plain-data [`ServiceTable`] with change
//!   tracking ([`ChangeTracker`]).
//! - [`nftables`]: the table rendered into one atomic `nft -f` transaction, full or incremental.
//! - [`announce`]: LoadBalancer IPs answered on the node network by one node each.
//! - [`backend`]: the [`Backend`] trait every data plane implements, and [`NftablesBackend`].
//! - [`healthcheck`]: `healthCheckNodePort` answers for `externalTrafficPolicy: Local`.
//! - [`conntrack`]: stale UDP flows deleted when their endpoint goes.
//! - [`runner`]: the control loop ([`run`]): watch, wait for sync, coalesce, retry.
//! - [`userspace`]: the [`UserspaceBackend`]: tokio listeners, splice for bulk TCP.
//! - [`config`]: what the proxy is told at start ([`ProxyConfig`]).
#![warn(missing_docs)]

pub mod announce;
pub mod backend;
pub mod config;
pub mod conntrack;
pub mod healthcheck;
pub mod model;
pub mod nftables;
pub mod runner;
pub mod userspace;

pub use backend::{Backend, NftablesBackend, SyncError};
pub use runner::{run, run_with_backend, Timing};
pub use userspace::{UserspaceBackend, UserspaceConfig};

pub use config::{Ipv4Cidr, ProxyConfig, ProxyMode};
pub use model::tracker::{ChangeTracker, ServiceChange};
pub use model::{
    Endpoint, NodeContext, Protocol, ServicePort, ServicePortName, ServiceRef, ServiceTable, TrafficPolicy,
};
