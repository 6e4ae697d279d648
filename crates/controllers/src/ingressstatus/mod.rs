//! Ingress status: every Ingress served by podway's built-in controller (class `podway`) shows
//! the Ready nodes' InternalIPs in `status.loadBalancer.ingress`, since every node answers on
//! ports 80 and 443 (as ingress-nginx on the host network with
//! `--report-node-internal-ip-address` reports). `kubectl get ingress` prints them as ADDRESS.
//!
//! - [`address`]: which Ingresses are ours and which addresses they should show (pure).
//! - [`controller`]: watches Ingresses, IngressClasses and Nodes; writes statuses that differ.

pub mod address;
pub mod controller;

pub use address::{is_ours, node_addresses, CLASS, CONTROLLER};
pub use controller::run;
