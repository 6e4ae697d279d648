//! Small shared steps of the handlers: keys, reading the current object, output shaping.

use std::sync::Arc;

use podway_api::meta;
use podway_api::status::ApiError;
use podway_store::KeyValue;
use serde_json::{json, Value};

use super::Api;
use crate::cache::decode;
use crate::registry::Strategy;
use crate::request::ResourcePath;

/// The store key for the object a path names.
pub fn key(s: &dyn Strategy, rp: &ResourcePath) -> String {
    s.info().key(&rp.namespace, &rp.name)
}

/// The current object, read from the store (not the cache) so that a write decides on the
/// latest state.
pub async fn current(api: &Api, s: &dyn Strategy, rp: &ResourcePath) -> Result<Option<(Value, KeyValue)>, ApiError> {
    let kv = api.store.get(&key(s, rp)).await.map_err(store_error)?;
    Ok(kv.and_then(|kv| decode(&kv.value, kv.mod_revision).map(|v| (s.storage_to_view(v), kv))))
}

/// 404 for the path's object.
pub fn not_found(s: &dyn Strategy, rp: &ResourcePath) -> ApiError {
    ApiError::not_found(s.info().group, s.info().plural, &rp.name)
}

/// A store failure as an API error.
pub fn store_error(e: podway_store::StoreError) -> ApiError {
    ApiError::internal(e.to_string())
}

/// Make sure `obj` carries its apiVersion and kind, as single objects must.
pub fn with_type(s: &dyn Strategy, obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.insert("apiVersion".into(), json!(s.info().api_version()));
        m.insert("kind".into(), json!(s.info().kind));
    }
    o
}

/// A cached (stored-form) object as this kind shows it; no copy for kinds with their own storage.
pub fn view(s: &dyn Strategy, obj: Arc<Value>) -> Arc<Value> {
    if s.info().storage_group.is_empty() {
        obj
    } else {
        Arc::new(s.storage_to_view((*obj).clone()))
    }
}

/// The bytes stored for an object: its stored form, without the resourceVersion, which the
/// store keeps.
pub fn stored_bytes(s: &dyn Strategy, obj: &Value) -> Vec<u8> {
    let mut o = s.view_to_storage(obj.clone());
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    serde_json::to_vec(&o).unwrap_or_default()
}

/// The namespace of a new namespaced object must exist and not be terminating.
pub fn check_namespace(api: &Api, s: &dyn Strategy, namespace: &str, name: &str) -> Result<(), ApiError> {
    let ns = api.cache.get(&format!("/registry/core/namespaces/{namespace}"));
    match ns {
        None => Err(ApiError::not_found("", "namespaces", namespace)),
        Some(ns) if meta::is_deleting(&ns) => Err(ApiError::forbidden(
            s.info().group,
            s.info().plural,
            name,
            &format!("unable to create new content in namespace {namespace} because it is being terminated"),
        )),
        Some(_) => Ok(()),
    }
}

/// The current time as Kubernetes writes timestamps: RFC 3339, seconds, UTC.
pub fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A timestamp `secs` from now.
pub fn now_plus(secs: i64) -> String {
    let t = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(secs);
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
