//! The podway API server: one generic REST engine over a [`podway_store::Store`], with one
//! strategy per kind (see `registry/`).
//!
//! - [`start`] wires it: PKI, store, watch cache, registry, discovery, OpenAPI, bootstrap
//!   objects, and the TLS listener.
//! - `handlers/`: the REST engine (get, list, watch, create, update, patch, delete,
//!   subresources).
//! - `registry/`: one strategy per kind; `alloc/`: ClusterIP and NodePort allocators.
//! - `cache.rs`: the watch cache; `discovery.rs`, `openapi.rs`: what clients learn the API from.
#![warn(missing_docs)]

pub mod alloc;
#[cfg(feature = "engine")]
pub mod body;
#[cfg(feature = "engine")]
pub mod bootstrap;
#[cfg(feature = "engine")]
pub mod cache;
#[cfg(feature = "engine")]
pub mod discovery;
#[cfg(feature = "engine")]
pub mod handlers;
pub mod openapi;
#[cfg(feature = "engine")]
pub mod pki;
#[cfg(feature = "engine")]
pub mod registry;
#[cfg(feature = "engine")]
pub mod request;
#[cfg(feature = "engine")]
pub mod response;
#[cfg(feature = "engine")]
pub mod server;

#[cfg(feature = "engine")]
mod engine;
#[cfg(feature = "engine")]
pub use engine::*;
