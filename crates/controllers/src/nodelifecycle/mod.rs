//! The node lifecycle controller: silent nodes become `Unknown` and tainted unreachable;
//! their pods are marked not ready and evicted after the toleration runs out.
//!
//! - [`health`]: heartbeats, conditions, taints, eviction times (pure).
//! - [`controller`]: the periodic check and API writes.

pub mod controller;
pub mod health;

pub use controller::run;
