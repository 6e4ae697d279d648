//! The ReplicaSet controller: ReplicaSets → Pods `<rs>-<5 random chars>`.
//!
//! - [`logic`]: which pods to delete, the pod a template makes, status (pure).
//! - [`controller`]: watches, expectations and API writes.

pub mod controller;
pub mod logic;

pub use controller::run;
