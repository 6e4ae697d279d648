//! podway's node agent.
//!
//! - [`network`]: the node network of a cluster on one machine: a host bridge, one network
//!   namespace per node with a veth on it, routes between the nodes' pod ranges, and host
//!   blackhole routes so pod and service addresses never leave the machine.
#![warn(missing_docs)]

pub mod network;
