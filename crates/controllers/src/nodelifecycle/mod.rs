//! The node lifecycle controller: silent nodes become `Unknown` and tainted unreachable;
//! their pods are marked not ready; pods on a node with `NoExecute` taints are deleted once
//! their toleration runs out (upstream's taint eviction controller).
//!
//! - [`health`]: heartbeats, conditions, taints, eviction times (pure).
//! - [`controller`]: the periodic check and API writes.

pub mod controller;
pub mod health;

pub use controller::run;
