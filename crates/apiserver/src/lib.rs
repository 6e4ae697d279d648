//! The podway API server: one generic REST engine over a [`podway_store::Store`], with one
//! strategy per kind (see `registry/`).
//!
//! - [`start`] wires it: PKI, store, watch cache, registry, discovery, OpenAPI, bootstrap
//!   objects, and the TLS listener.
//! - `handlers/`: the REST engine (get, list, watch, create, update, patch, delete,
//!   subresources).
//! - `registry/`: one strategy per kind; `alloc/`: ClusterIP and NodePort allocators.
//! - `kubelet/`: logs, exec, attach and port-forward, proxied to the pod's node agent.
//! - `cache.rs`: the watch cache; `discovery.rs`, `openapi.rs`: what clients learn the API from.
#![warn(missing_docs)]

pub mod alloc;
pub mod body;
pub mod bootstrap;
pub mod cache;
pub mod discovery;
pub mod handlers;
pub mod kubelet;
pub mod openapi;
pub mod pki;
pub mod registry;
pub mod request;
pub mod response;
pub mod server;

mod engine;
pub use engine::*;
