//! The garbage collector: objects whose owners are gone are deleted; owners deleted in the
//! foreground wait for their dependents; owners deleted with orphaning release them.
//! Generic over every served kind.
//!
//! - [`graph`]: the ownership graph and decisions (pure).
//! - [`controller`]: discovery, dynamic watches and API writes.

pub mod controller;
pub mod graph;

pub use controller::run;
