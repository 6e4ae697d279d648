//! Conversion between the versions of one kind, and what the API server says about versions
//! it still serves but has deprecated.
//!
//! Objects are stored in one version (the storage version) and served in whichever version a
//! request names; each kind with several versions has a file here with the two directions as
//! pure functions over JSON, following upstream's hand-written `conversion.go` for the kind.
//!
//! - [`ingress`]: `networking.k8s.io/v1beta1` and `extensions/v1beta1` Ingress ⇄ `networking.k8s.io/v1`.
//! - [`lifecycle`]: the deprecation `Warning` kube-apiserver sends for an old version.

pub mod ingress;
pub mod lifecycle;
