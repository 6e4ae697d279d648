//! The podway API server: one generic REST engine over a [`podway_store::Store`], with one
//! strategy per kind (see `registry/`).
#![warn(missing_docs)]

pub mod alloc;
pub mod openapi;
