//! podway's Service proxy: makes Services carry traffic on one node.
//!
//! - [`model`]: Services and EndpointSlices become a plain-data [`ServiceTable`] with change
//!   tracking ([`ChangeTracker`]).
#![warn(missing_docs)]

pub mod model;

pub use model::tracker::{ChangeTracker, ServiceChange};
pub use model::{
    Endpoint, NodeContext, Protocol, ServicePort, ServicePortName, ServiceRef, ServiceTable, TrafficPolicy,
};
