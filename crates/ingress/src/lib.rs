//! podway's Ingress controller, one per node: Ingresses, Services, EndpointSlices and Secrets
//! become a routing table, and an HTTP(S) server on the node's ports 80 and 443 serves it.
//!
//! - [`decision`]: the one interface between routing and serving: a request's [`RequestView`]
//!   in, a [`Decision`] out (forward to these endpoints, redirect, or answer directly).
//! - [`routing`]: Ingresses, Services, EndpointSlices and Secrets built into a routing table
//!   (hosts, paths, the nginx annotations), and what is wrong with them as findings.
//! - [`server`]: HTTP/1.1, HTTP/2 and TLS by SNI on ports 80 and 443, carrying decisions out.
//! - [`controller`]: the watch loop that rebuilds the table on every change and swaps it in.
#![warn(missing_docs)]

pub mod controller;
pub mod decision;
pub mod routing;
pub mod server;

pub use controller::{run, IngressConfig, CLASS};
pub use decision::{Affinity, Decision, Protocol, RequestView, Router, Timeouts, Upstream};
