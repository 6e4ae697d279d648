//! podway's Ingress controller, one per node: Ingresses, Services, EndpointSlices and Secrets
//! become a routing table, and an HTTP(S) server on the node's ports 80 and 443 serves it.
//!
//! - [`decision`]: the one interface between routing and serving: a request's [`RequestView`]
//!   in, a [`Decision`] out (forward to these endpoints, redirect, or answer directly).
#![warn(missing_docs)]

pub mod decision;

pub use decision::{Affinity, Decision, Protocol, RequestView, Router, Timeouts, Upstream};
