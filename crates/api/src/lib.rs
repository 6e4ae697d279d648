//! Kubernetes API knowledge for podway, as pure functions over plain data.
//!
//! Nothing here does I/O. The API server, the controllers and the tests all call into it.
//!
//! - [`status`]: the `metav1.Status` errors every failure becomes.
//! - [`validation`]: field errors with Kubernetes' wording, name rules.
//! - [`meta`]: reading and writing `metadata` on untyped objects.
//! - [`selector`]: label and field selectors.
//! - [`patch`]: JSON merge patch, JSON patch, strategic merge patch.
//! - [`protobuf`]: Kubernetes protobuf request bodies decoded to JSON.
//! - [`table`]: server-side printing (`meta.k8s.io/v1 Table`) with kubectl's columns.
//! - [`events`]: the events.k8s.io/v1 view of core Events.
//! - [`conversion`]: kinds served in several versions (legacy Ingress), deprecation warnings.
//! - [`duration`]: Go's `HumanDuration`, the AGE column.
//! - [`service`]: Service defaulting and validation.
//! - [`workload`]: Pod, Deployment and ReplicaSet defaulting and validation.
#![warn(missing_docs)]

pub mod conversion;
pub mod duration;
pub mod events;
pub mod expansion;
pub mod meta;
pub mod patch;
pub mod protobuf;
pub mod selector;
pub mod service;
pub mod status;
pub mod table;
pub mod validation;
pub mod workload;
