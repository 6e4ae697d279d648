//! Subresources: status, scale, binding, eviction, finalize, and the node-agent streams
//! (`streams.rs`).

use std::sync::Arc;

use http::{Method, Response};
use podway_api::selector::LabelSelector;
use podway_api::status::{success_status, ApiError};
use serde_json::{json, Value};

use super::object::{key, not_found, with_type};
use super::write::{self, change_object, Part};
use super::{streams, Api, Call};
use crate::body;
use crate::kubelet::location::Stream;
use crate::registry::{Strategy, Subresource};
use crate::request::ResourcePath;
use crate::response::{self, Body};

/// Serve `rp.subresource` of a kind that has it.
pub async fn serve(
    api: &Arc<Api>,
    s: &Arc<dyn Strategy>,
    rp: &ResourcePath,
    call: Call,
) -> Result<Response<Body>, ApiError> {
    let s = s.as_ref();
    let sub = s
        .info()
        .subresources
        .iter()
        .copied()
        .find(|x| x.name() == rp.subresource)
        .ok_or_else(ApiError::path_not_found)?;
    match (sub, &call.method) {
        (Subresource::Status, &Method::GET) => {
            let obj = api.cache.get(&key(s, rp)).ok_or_else(|| not_found(s, rp))?;
            Ok(response::json(200, &with_type(s, &obj)))
        }
        (Subresource::Status, &Method::PUT) => write::update(api, s, rp, &call, true).await,
        (Subresource::Status, &Method::PATCH) => write::patch(api, s, rp, &call, true).await,
        (Subresource::Scale, &Method::GET) => {
            let obj = api.cache.get(&key(s, rp)).ok_or_else(|| not_found(s, rp))?;
            Ok(response::json(200, &scale_of(&obj)))
        }
        (Subresource::Scale, &Method::PUT | &Method::PATCH) => scale(api, s, rp, &call).await,
        (Subresource::Binding, &Method::POST) => bind(api, s, rp, &call).await,
        (Subresource::Eviction, &Method::POST) => {
            // An Eviction carries its DeleteOptions (dryRun, grace period, preconditions).
            let eviction = if call.body.is_empty() {
                json!({})
            } else {
                body::decode(&call.content_type, &call.body)?
            };
            let options = eviction.get("deleteOptions").cloned().unwrap_or(json!({}));
            let call = Call {
                body: bytes::Bytes::from(serde_json::to_vec(&options).unwrap_or_default()),
                content_type: "application/json".into(),
                ..call
            };
            write::delete(api, s, rp, &call).await?;
            Ok(response::json(201, &success_status(None)))
        }
        (Subresource::Finalize, &Method::PUT) => {
            let obj = body::decode(&call.content_type, &call.body)?;
            let finalizers = obj.pointer("/spec/finalizers").cloned().unwrap_or(json!([]));
            let out = change_object(api, s, rp, Part::Finalize, None, write::dry_run(&call), |old| {
                let mut new = old.clone();
                new["spec"]["finalizers"] = finalizers.clone();
                Ok(new)
            })
            .await?;
            Ok(response::json(200, &with_type(s, &out)))
        }
        (Subresource::Log, &Method::GET) => streams::log(api, s, rp, &call).await,
        (Subresource::Exec, &Method::GET | &Method::POST) => streams::upgrade(api, s, rp, Stream::Exec, call).await,
        (Subresource::Attach, &Method::GET | &Method::POST) => streams::upgrade(api, s, rp, Stream::Attach, call).await,
        (Subresource::PortForward, &Method::GET | &Method::POST) => {
            streams::upgrade(api, s, rp, Stream::PortForward, call).await
        }
        (_, m) => Err(ApiError::method_not_allowed(
            m.as_str(),
            &format!("{}/{}", rp.resource, rp.subresource),
        )),
    }
}

/// The `autoscaling/v1 Scale` view of a Deployment or ReplicaSet.
fn scale_of(obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector")
        .and_then(|s| LabelSelector::from_json(s).ok())
        .map(|s| s.to_string())
        .unwrap_or_default();
    let m = obj.get("metadata").cloned().unwrap_or(json!({}));
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m.get("name"), "namespace": m.get("namespace"), "uid": m.get("uid"),
            "resourceVersion": m.get("resourceVersion"), "creationTimestamp": m.get("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

async fn scale(api: &Api, s: &dyn Strategy, rp: &ResourcePath, call: &Call) -> Result<Response<Body>, ApiError> {
    let current = api.cache.get(&key(s, rp)).ok_or_else(|| not_found(s, rp))?;
    let old_scale = scale_of(&current);
    let new_scale = if call.method == Method::PUT {
        body::decode(&call.content_type, &call.body)?
    } else {
        let p = body::parse_json(&call.body)?;
        let media = call.content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/json-patch+json" => {
                podway_api::patch::json_patch(&old_scale, &p).map_err(|e| ApiError::invalid_patch(&e.to_string()))?
            }
            _ => {
                let mut v = old_scale.clone();
                podway_api::patch::merge_patch(&mut v, &p);
                v
            }
        }
    };
    let replicas = new_scale.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0);
    if replicas < 0 {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            &rp.name,
            &[podway_api::validation::FieldError::invalid(
                "spec.replicas",
                json!(replicas),
                "must be greater than or equal to 0",
            )],
        ));
    }
    let precondition = new_scale
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    // The precondition is checked against the store in the write, not against the cache.
    let precondition = Some(precondition).filter(|p| !p.is_empty());
    let out = change_object(api, s, rp, Part::Main, precondition, write::dry_run(call), |old| {
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(replicas);
        Ok(new)
    })
    .await?;
    Ok(response::json(200, &scale_of(&out)))
}

async fn bind(api: &Api, s: &dyn Strategy, rp: &ResourcePath, call: &Call) -> Result<Response<Body>, ApiError> {
    let binding = body::decode(&call.content_type, &call.body)?;
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if node.is_empty() {
        return Err(ApiError::invalid(
            "",
            "Binding",
            &rp.name,
            &[podway_api::validation::FieldError::required("target.name", "")],
        ));
    }
    change_object(api, s, rp, Part::Main, None, write::dry_run(call), |old| {
        let assigned = old.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
        if !assigned.is_empty() {
            return Err(ApiError::conflict_message(
                "",
                "pods",
                &rp.name,
                format!("Operation cannot be fulfilled on pods/binding \"{}\": pod {} is already assigned to node \"{assigned}\"", rp.name, rp.name),
            ));
        }
        let mut new = old.clone();
        new["spec"]["nodeName"] = json!(node);
        Ok(new)
    })
    .await?;
    Ok(response::json(201, &success_status(None)))
}
