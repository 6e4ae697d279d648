//! Reading and writing `metadata` of untyped objects (`serde_json::Value`).
//!
//! The API server stores and serves objects as JSON; these helpers keep the path spelling in
//! one place.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// `metadata.name`, or "" if absent.
pub fn name(obj: &Value) -> &str {
    str_at(obj, "name")
}

/// `metadata.namespace`, or "" if absent.
pub fn namespace(obj: &Value) -> &str {
    str_at(obj, "namespace")
}

/// `metadata.generateName`, or "".
pub fn generate_name(obj: &Value) -> &str {
    str_at(obj, "generateName")
}

/// `metadata.uid`, or "".
pub fn uid(obj: &Value) -> &str {
    str_at(obj, "uid")
}

/// `metadata.resourceVersion`, or "".
pub fn resource_version(obj: &Value) -> &str {
    str_at(obj, "resourceVersion")
}

/// `metadata.deletionTimestamp` is set.
pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null())
}

/// `metadata.labels` as a map (empty if absent).
pub fn labels(obj: &Value) -> BTreeMap<String, String> {
    string_map(obj.pointer("/metadata/labels"))
}

/// `metadata.annotations` as a map (empty if absent).
pub fn annotations(obj: &Value) -> BTreeMap<String, String> {
    string_map(obj.pointer("/metadata/annotations"))
}

/// `metadata.finalizers` (empty if absent).
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// `metadata.ownerReferences` (empty if absent).
pub fn owner_references(obj: &Value) -> Vec<Value> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// A JSON object of strings as a map; non-string values are skipped.
pub fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// `metadata` as a mutable object, created if absent or not an object.
pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let root = obj.as_object_mut().expect("object");
    let meta = root.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().expect("object")
}

/// Set `metadata.<field>`; `Value::Null` removes it.
pub fn set(obj: &mut Value, field: &str, value: Value) {
    let meta = metadata_mut(obj);
    if value.is_null() {
        meta.remove(field);
    } else {
        meta.insert(field.to_string(), value);
    }
}

fn str_at<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_metadata_fields_and_tolerates_absence() {
        let o = json!({"metadata": {"name": "web", "labels": {"app": "web"}}});
        assert_eq!(name(&o), "web");
        assert_eq!(namespace(&o), "");
        assert_eq!(labels(&o).get("app").map(String::as_str), Some("web"));
        assert!(!is_deleting(&o));
    }

    #[test]
    fn set_null_removes_the_field() {
        let mut o = json!({});
        set(&mut o, "name", json!("a"));
        assert_eq!(name(&o), "a");
        set(&mut o, "name", Value::Null);
        assert_eq!(o, json!({"metadata": {}}));
    }
}
