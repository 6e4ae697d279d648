//! podway's node agent.
//!
//! - [`network`]: the node network of a cluster on one machine: a host bridge, one network
//!   namespace per node with a veth on it, routes between the nodes' pod ranges, and host
//!   blackhole routes so pod and service addresses never leave the machine.
//! - [`mirror`]: the pods the API shows for what the agent serves itself (cluster DNS).
//! - [`node`]: the agent's API side: it registers its Node, renews its Lease and finishes the
//!   deletion of the pods bound to it.
//! - [`images`]: an image name → the program that runs (catalog, built-in test images, host
//!   programs).
//! - [`kubelet`]: the HTTPS endpoint the API server streams logs, exec, attach and port-forward
//!   through.
//! - [`probe`]: readiness, liveness and startup probes.
//! - [`sandbox`]: pod sandboxes: a shim per pod in its own namespaces, networked by CNI.
//! - [`runtime`]: the pods bound to this node: containers as processes, restarts, status.
#![warn(missing_docs)]

pub mod images;
pub mod kubelet;
pub mod mirror;
pub mod network;
pub mod node;
pub mod probe;
pub mod runtime;
pub mod sandbox;
