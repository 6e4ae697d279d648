//! The scheduler: binds pending pods to Ready, schedulable nodes whose taints they
//! tolerate, spreading by fewest pods.
//!
//! - [`choose`]: filtering, scoring and failure messages (pure).
//! - [`controller`]: watches, bindings, events.

pub mod choose;
pub mod controller;

pub use controller::run;
