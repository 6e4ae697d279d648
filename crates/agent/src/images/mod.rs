//! Images: how an image name becomes a program to run.
//!
//! An image resolves, in this order, to:
//! 1. an entry of the user's image [`catalog`] (`<data-dir>/images.yaml`, docs/images.md);
//! 2. a [`builtin`] test image: the hostname and request echo servers tutorials use, served by
//!    `podway builtin-image <name>`;
//! 3. a program installed on the host: nginx (with a generated configuration), busybox, curl,
//!    python3.
//!
//! Anything else fails as Kubernetes does, `ErrImagePull` then `ImagePullBackOff`, with a
//! message that says how to map the image in the catalog ([`ImageError`]).
//!
//! - [`reference`]: image reference parsing and normalisation.
//! - [`catalog`]: the user's catalog file.
//! - [`command`]: Kubernetes' command/args semantics against ENTRYPOINT/CMD.
//! - [`resolve()`]: image + container → [`Launch`].
//! - [`builtin`]: the built-in test images' servers ([`run_builtin`]).

pub mod builtin;
pub mod catalog;
pub mod command;
mod error;
mod known;
mod launch;
mod nginx;
pub mod reference;
mod resolve;

pub use builtin::{run_builtin, BuiltinExit};
pub use catalog::{load_catalog, Catalog, CatalogEntry, CatalogError, CATALOG_FILE_NAME};
pub use command::{effective_argv, expand_references};
pub use error::ImageError;
pub use known::BUILTIN_NAMES;
pub use launch::{GeneratedFile, HostPrograms, Launch, ResolveContext, DEFAULT_PATH};
pub use reference::{ImageRef, ReferenceError};
pub use resolve::{resolve, BUILTIN_SUBCOMMAND};
