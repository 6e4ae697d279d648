//! podway's Service proxy: makes Services carry traffic on one node.
//!
//! - [`model`]: Services and EndpointSlices become a plain-data [`ServiceTable`] with change
//!   tracking ([`ChangeTracker`]).
//! - [`nftables`]: the table rendered into one atomic `nft -f` transaction, full or incremental.
//! - [`config`]: what the proxy is told at start ([`ProxyConfig`]).
#![warn(missing_docs)]

pub mod config;
pub mod model;
pub mod nftables;

pub use config::{Ipv4Cidr, ProxyConfig, ProxyMode};
pub use model::tracker::{ChangeTracker, ServiceChange};
pub use model::{
    Endpoint, NodeContext, Protocol, ServicePort, ServicePortName, ServiceRef, ServiceTable, TrafficPolicy,
};
