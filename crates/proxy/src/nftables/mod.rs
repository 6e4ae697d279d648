//! The nftables backend: the service table rendered into one `ip podway` table.
//!
//! The theory (hooks, chains, who may touch the table) is in this folder's README.md.
//! [`script`] renders pure `nft -f` text, [`service`] the rules of one Service port, [`names`]
//! every chain, set, map and counter name, [`apply`] runs a script through `nft`, and
//! [`counters`] reads the per-endpoint connection and byte counters back, which [`metrics`]
//! serves to Prometheus.

pub mod apply;
pub mod counters;
pub mod metrics;
pub mod names;
pub mod script;
pub mod service;

pub use apply::{nftables_usable, Nft, NftCommand, NftError};
pub use service::RenderConfig;
