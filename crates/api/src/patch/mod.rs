//! The three PATCH body types the API server accepts, applied to untyped JSON objects.
//!
//! | Content-Type | Function | Sent by |
//! |---|---|---|
//! | `application/merge-patch+json` | [`merge_patch`] (RFC 7386) | `kubectl label`, `kubectl scale` |
//! | `application/json-patch+json` | [`json_patch`] (RFC 6902) | `kubectl patch --type=json` |
//! | `application/strategic-merge-patch+json` | [`strategic_merge_patch`] | `kubectl apply`, `edit`, `rollout restart` |
//!
//! Strategic merge patch needs to know, per field, whether a list merges and by which key;
//! [`schema`] holds that table for the built-in kinds podway serves.
//!
//! None of these check `metadata.resourceVersion` preconditions, validate or default the
//! result: the caller does that to the patched object as to any update.

mod gofmt;
mod json_patch;
pub mod schema;
mod strategic;

#[cfg(test)]
mod strategic_tests;

use serde_json::{Map, Value};

pub use json_patch::json_patch;
pub use strategic::strategic_merge_patch;

/// Why a patch could not be applied. The message is Kubernetes' where one exists; use
/// [`PatchError::status_code`] for the HTTP answer. Resending the same patch never helps,
/// except after a JSON-patch `test` failed because the object changed in between.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The body is not the shape its patch type requires: not a JSON object (or, for JSON
    /// patch, not an array of operations), or a malformed `$retainKeys`,
    /// `$setElementOrder` or `$deleteFromPrimitiveList` directive. 400 BadRequest.
    #[error("{0}")]
    BadRequest(String),
    /// The body is well-formed but does not apply to this object: a JSON-patch path that does
    /// not exist or a failed `test`, a list element without its merge key, an unknown
    /// `$patch` value, a list of lists. 422 (Kubernetes answers some of these with a 500;
    /// they are the client's fault, so we do not).
    #[error("{0}")]
    Unprocessable(String),
}

impl PatchError {
    /// The HTTP status to answer with: 400 or 422.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::BadRequest(_) => 400,
            PatchError::Unprocessable(_) => 422,
        }
    }
}

/// Applies an RFC 7386 JSON merge patch in place: objects merge recursively, `null` deletes
/// a key, anything else (arrays included) replaces. A patch that is not an object replaces
/// the whole target; the caller should reject a result that is no longer an object.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target) = target else {
        unreachable!("made an object above")
    };
    for (key, value) in patch {
        if value.is_null() {
            target.shift_remove(key);
        } else {
            merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// JSON equality as Go and JSON see it: numbers compare by value, so `80` equals `80.0`
/// (serde_json keeps integers and floats apart; Go decodes both to float64).
pub(crate) fn values_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| values_eq(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| values_eq(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_add_merges_into_existing_labels() {
        // kubectl label deploy web tier=db
        let mut obj = json!({"metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {"replicas": 1}});
        merge_patch(&mut obj, &json!({"metadata": {"labels": {"tier": "db"}}}));
        assert_eq!(
            obj,
            json!({"metadata": {"name": "web", "labels": {"app": "web", "tier": "db"}}, "spec": {"replicas": 1}})
        );
    }

    #[test]
    fn label_removal_with_null_deletes_the_key() {
        // kubectl label deploy web tier-
        let mut obj = json!({"metadata": {"labels": {"app": "web", "tier": "db"}}});
        merge_patch(&mut obj, &json!({"metadata": {"labels": {"tier": null}}}));
        assert_eq!(obj, json!({"metadata": {"labels": {"app": "web"}}}));
    }

    #[test]
    fn scale_patch_changes_only_replicas() {
        let mut scale =
            json!({"kind": "Scale", "spec": {"replicas": 1}, "status": {"replicas": 1, "selector": "app=web"}});
        merge_patch(&mut scale, &json!({"spec": {"replicas": 3}}));
        assert_eq!(scale["spec"]["replicas"], 3);
        assert_eq!(scale["status"], json!({"replicas": 1, "selector": "app=web"}));
    }

    #[test]
    fn merge_patch_replaces_arrays_and_drops_nulls_in_new_objects() {
        let mut obj = json!({"a": [1, 2], "b": "x"});
        merge_patch(&mut obj, &json!({"a": [3], "c": {"d": null, "e": 1}}));
        assert_eq!(obj, json!({"a": [3], "b": "x", "c": {"e": 1}}));
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(values_eq(&json!({"p": [80]}), &json!({"p": [80.0]})));
        assert!(!values_eq(&json!(80), &json!("80")));
    }

    #[test]
    fn status_codes_follow_the_variant() {
        assert_eq!(PatchError::BadRequest("x".into()).status_code(), 400);
        assert_eq!(PatchError::Unprocessable("x".into()).status_code(), 422);
    }
}
