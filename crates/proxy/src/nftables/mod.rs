//! The nftables backend: the service table rendered into one `ip podway` table.
//!
//! The theory (hooks, chains, who may touch the table) is in this folder's README.md.
//! [`script`] renders pure `nft -f` text, [`service`] the rules of one Service port, [`names`]
//! every chain, set and map name, and [`apply`] runs a script through `nft`.

pub mod apply;
pub mod names;
pub mod script;
pub mod service;

pub use apply::{nftables_usable, Nft, NftCommand, NftError};
pub use service::RenderConfig;
