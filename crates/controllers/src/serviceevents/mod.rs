//! Events that say why a Service carries no traffic, or not the traffic meant: its selector
//! matches no pod (`NoMatchingPods`, Warning), or a targetPort is not among the selected pods'
//! container ports (`TargetPortNotDeclared`: Warning for a name, which leaves the port without
//! endpoints; Normal for a number, which still works). `kubectl describe svc` lists them.
//!
//! - [`findings`]: what is wrong with one Service, given its namespace's pods (pure).
//! - [`memory`]: which conditions were told already, so each gets one Event (pure).
//! - [`controller`]: watches Services and Pods and records the Events.

pub mod controller;
pub mod findings;
pub mod memory;

pub use controller::run;
