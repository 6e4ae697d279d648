//! Label and field selectors, as the API server parses and applies them.
//!
//! - [`LabelSelector`] reads `?labelSelector=app=web,tier in (db,cache)`, a `metav1.LabelSelector`
//!   (`spec.selector` of Deployments and ReplicaSets), or a plain map (`spec.selector` of a
//!   Service). It matches a `BTreeMap` of labels, the shape [`crate::meta::labels`] returns.
//! - [`FieldSelector`] reads `?fieldSelector=metadata.name=web,involvedObject.kind=Pod`.
//!
//! Parsing follows apimachinery's `labels.Parse` and `fields.ParseSelector` token for token,
//! and the errors carry Kubernetes' wording, because kubectl prints them verbatim after
//! `Error from server (BadRequest): `.

mod field;
mod label;
mod label_parse;

/// Label key and value rules live with the other name rules in [`crate::validation`].
pub use crate::validation::{is_qualified_name as label_key_errors, is_valid_label_value as label_value_errors};
pub use field::{FieldOperator, FieldRequirement, FieldSelector};
pub use label::{LabelSelector, Operator, Requirement};

/// Why a selector was rejected. The message is the one Kubernetes sends; the API server
/// answers every variant with 400 BadRequest, and retrying the same selector never helps.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A label selector string or `metav1.LabelSelector` is malformed or holds an invalid
    /// key, value or operator, e.g. `unable to parse requirement: values[0][app]: Invalid
    /// value: "-x": a valid label must be ...`.
    #[error("{0}")]
    Label(String),
    /// A field selector string is malformed, e.g. `invalid selector: 'a'; can't understand 'a'`.
    #[error("{0}")]
    Field(String),
}

#[cfg(test)]
mod label_tests;
