//! create, update, patch and delete: every write goes through the same admission steps
//! (decode, field validation, defaulting, validation, allocation) and a compare-and-swap on the
//! store, then waits until the watch cache has seen it so the client reads its own write.

use http::Response;
use podway_api::meta;
use podway_api::patch;
use podway_api::status::ApiError;
use podway_api::validation::FieldError;
use podway_store::StoreError;
use rand::Rng;
use serde_json::{json, Value};

use super::object::{check_namespace, current, key, not_found, now, now_plus, store_error, stored_bytes, with_type};
use super::{Api, Call};
use crate::body::{self, FieldValidation};
use crate::registry::{drop_fields, Reservation, Strategy};
use crate::request::ResourcePath;
use crate::response::{self, Body};

/// How a write's body came: decides the words of a strict-decoding error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// POST or PUT: a whole object.
    Object,
    /// A PATCH merged into the live object.
    Patch,
    /// Server-side apply.
    Apply,
}

/// Decode-time checks on a candidate object: type, unknown fields. Returns the warnings to send.
pub fn check_fields(
    s: &dyn Strategy,
    obj: &mut Value,
    validation: FieldValidation,
    origin: Origin,
    namespace: &str,
) -> Result<Vec<String>, ApiError> {
    let info = s.info();
    if !obj.is_object() {
        return Err(ApiError::bad_request(format!(
            "Object '{}' is not a JSON object",
            info.kind
        )));
    }
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    // A missing apiVersion or kind is taken from the URL, as the real decoder's defaults do
    // (the Python client sends neither).
    if !kind.is_empty() && kind != info.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            info.kind
        )));
    }
    if !api_version.is_empty() && api_version != info.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            info.api_version()
        )));
    }
    obj["apiVersion"] = json!(info.api_version());
    obj["kind"] = json!(info.kind);
    let check = s.check_fields(obj);
    if let Some(err) = check.type_error {
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {err}",
            info.kind, info.version, info.kind
        )));
    }
    let mut warnings = Vec::new();
    if !check.unknown.is_empty() {
        let listed: Vec<String> = check.unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
        match validation {
            FieldValidation::Strict => {
                return Err(match origin {
                    Origin::Object => ApiError::bad_request(format!(
                        "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                        info.kind,
                        info.version,
                        info.kind,
                        listed.join(", ")
                    )),
                    Origin::Patch => ApiError::invalid_patch(&format!(
                        "\"{}\": strict decoding error: {}",
                        obj.to_string().replace('"', "\\\""),
                        listed.join(", ")
                    )),
                    Origin::Apply => {
                        let ns = if namespace.is_empty() {
                            String::new()
                        } else {
                            format!("{namespace}/")
                        };
                        let gv = if info.group.is_empty() {
                            format!("/{}", info.version)
                        } else {
                            info.api_version()
                        };
                        ApiError {
                            code: 500,
                            reason: String::new(),
                            message: format!(
                                "failed to create typed patch object ({ns}{}; {gv}, Kind={}): .{}: field not declared in schema",
                                meta::name(obj),
                                info.kind,
                                check.unknown[0]
                            ),
                            details: None,
                        }
                    }
                })
            }
            FieldValidation::Warn => warnings = listed,
            FieldValidation::Ignore => {}
        }
        drop_fields(obj, &check.unknown);
    }
    Ok(warnings)
}

/// Whether the request asks for `dryRun=All`.
pub fn dry_run(call: &Call) -> bool {
    call.query.all("dryRun").iter().any(|v| v == "All")
}

/// Letters the real server uses for generated name suffixes (no vowels, no look-alikes).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `prefix` plus five random letters, as `generateName` asks.
pub fn generated_name(prefix: &str) -> String {
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

/// POST: create an object.
pub async fn create(api: &Api, s: &dyn Strategy, rp: &ResourcePath, call: &Call) -> Result<Response<Body>, ApiError> {
    let mut obj = body::decode(&call.content_type, &call.body)?;
    let validation = FieldValidation::parse(call.query.get("fieldValidation"))?;
    let ns = rp.namespace.clone();
    let warnings = check_fields(s, &mut obj, validation, Origin::Object, &ns)?;
    let created = create_object(api, s, &ns, obj, dry_run(call)).await?;
    Ok(response::with_warnings(
        response::json(201, &with_type(s, &created)),
        &warnings,
    ))
}

/// The create steps after decoding: names, namespace, defaults, validation, allocation, store.
pub async fn create_object(
    api: &Api,
    s: &dyn Strategy,
    path_namespace: &str,
    mut obj: Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let info = s.info();
    if info.namespaced {
        let body_ns = meta::namespace(&obj).to_string();
        if !body_ns.is_empty() && !path_namespace.is_empty() && body_ns != path_namespace {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let ns = if path_namespace.is_empty() {
            body_ns
        } else {
            path_namespace.to_string()
        };
        if ns.is_empty() {
            return Err(ApiError::bad_request("the namespace of the object is required"));
        }
        meta::set(&mut obj, "namespace", json!(ns));
    } else {
        meta::set(&mut obj, "namespace", Value::Null);
    }
    if meta::name(&obj).is_empty() && !meta::generate_name(&obj).is_empty() {
        let name = generated_name(meta::generate_name(&obj));
        meta::set(&mut obj, "name", json!(name));
    }
    let name = meta::name(&obj).to_string();
    let namespace = meta::namespace(&obj).to_string();

    // System-owned metadata.
    for f in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
        "managedFields",
    ] {
        meta::set(&mut obj, f, Value::Null);
    }
    meta::set(&mut obj, "uid", json!(uuid::Uuid::new_v4().to_string()));
    meta::set(&mut obj, "creationTimestamp", json!(now()));
    meta::set(
        &mut obj,
        "generation",
        if info.uses_generation { json!(1) } else { Value::Null },
    );

    s.default(&mut obj);
    s.admit_create(&mut obj, &api.cache);
    s.prepare_create(&mut obj);
    // Allocation comes before validation, as in the real registry (BeginCreate runs before
    // BeforeCreate): validation then sees the assigned cluster IPs and node ports.
    if info.namespaced {
        check_namespace(api, s, &namespace, &name)?;
    }
    let rollback = s.allocate_create(&mut obj)?;
    let mut errors = podway_api::validation::validate_object_meta(
        obj.get("metadata").unwrap_or(&Value::Null),
        info.namespaced,
        name_rule(info.kind),
    );
    errors.extend(s.validate_create(&obj));
    if !errors.is_empty() {
        undo(rollback);
        return Err(ApiError::invalid(info.group, info.kind, &name, &errors));
    }
    if dry_run {
        undo(rollback);
        return Ok(obj);
    }
    let key = info.key(&namespace, &name);
    match api.store.create(&key, stored_bytes(s, &obj)).await {
        Ok(rev) => {
            keep(rollback);
            api.cache.wait_for(rev).await;
            meta::set(&mut obj, "resourceVersion", json!(rev.to_string()));
            Ok(obj)
        }
        Err(e) => {
            undo(rollback);
            Err(match e {
                StoreError::AlreadyExists(_) => ApiError::already_exists(info.group, info.plural, &name),
                other => store_error(other),
            })
        }
    }
}

/// The name rule of a kind (`ValidateObjectMeta`'s name function).
fn name_rule(kind: &str) -> podway_api::validation::NameRule {
    use podway_api::validation::NameRule;
    match kind {
        "Service" => NameRule::Dns1035Label,
        "Namespace" => NameRule::Dns1123Label,
        _ => NameRule::Dns1123Subdomain,
    }
}

fn undo(reservation: Option<Reservation>) {
    if let Some(r) = reservation {
        r.rollback();
    }
}

fn keep(reservation: Option<Reservation>) {
    if let Some(r) = reservation {
        r.commit();
    }
}

/// What part of the object an update writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The main resource: status is kept.
    Main,
    /// The status subresource: only status changes.
    Status,
    /// `namespaces/finalize`: only `spec.finalizers` changes.
    Finalize,
}

/// PUT: replace an object (or its status).
pub async fn update(
    api: &Api,
    s: &dyn Strategy,
    rp: &ResourcePath,
    call: &Call,
    status: bool,
) -> Result<Response<Body>, ApiError> {
    let mut obj = body::decode(&call.content_type, &call.body)?;
    let validation = FieldValidation::parse(call.query.get("fieldValidation"))?;
    let warnings = check_fields(s, &mut obj, validation, Origin::Object, &rp.namespace)?;
    let body_name = meta::name(&obj);
    if !body_name.is_empty() && body_name != rp.name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({})",
            rp.name
        )));
    }
    let precondition = Some(meta::resource_version(&obj).to_string()).filter(|r| !r.is_empty());
    let part = if status { Part::Status } else { Part::Main };
    let (code, out) = write_with(api, s, rp, part, precondition, dry_run(call), |_old| Ok(obj.clone())).await?;
    Ok(response::with_warnings(
        response::json(code, &with_type(s, &out)),
        &warnings,
    ))
}

/// PATCH: merge a patch into the live object (or create it, for server-side apply).
pub async fn patch(
    api: &Api,
    s: &dyn Strategy,
    rp: &ResourcePath,
    call: &Call,
    status: bool,
) -> Result<Response<Body>, ApiError> {
    let media = call.content_type.split(';').next().unwrap_or("").trim().to_string();
    let validation = FieldValidation::parse(call.query.get("fieldValidation"))?;
    let info = s.info();
    let patch_doc: Value = match media.as_str() {
        "application/apply-patch+yaml" | "application/apply-patch+cbor" => body::parse_yaml(&call.body)?,
        "application/json-patch+json" | "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            body::parse_json(&call.body)?
        }
        other => {
            return Err(ApiError::unsupported_media_type(
                other,
                "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json",
            ))
        }
    };
    let apply = media == "application/apply-patch+yaml";
    if apply && current(api, s, rp).await?.is_none() {
        // Server-side apply of an object that does not exist creates it.
        let mut obj = patch_doc.clone();
        let warnings = check_fields(s, &mut obj, validation, Origin::Apply, &rp.namespace)?;
        if meta::name(&obj).is_empty() {
            meta::set(&mut obj, "name", json!(rp.name));
        }
        let created = create_object(api, s, &rp.namespace, obj, dry_run(call)).await?;
        return Ok(response::with_warnings(
            response::json(201, &with_type(s, &created)),
            &warnings,
        ));
    }
    let precondition = patch_doc
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_string)
        .filter(|r| !r.is_empty());
    let origin = if apply { Origin::Apply } else { Origin::Patch };
    let warnings = std::sync::Mutex::new(Vec::new());
    let namespace = rp.namespace.clone();
    let part = if status { Part::Status } else { Part::Main };
    let (code, out) = write_with(api, s, rp, part, precondition, dry_run(call), |old| {
        let mut patched = match media.as_str() {
            "application/json-patch+json" => {
                patch::json_patch(old, &patch_doc).map_err(|e| ApiError::invalid_patch(&e.to_string()))?
            }
            "application/merge-patch+json" => {
                let mut v = old.clone();
                patch::merge_patch(&mut v, &patch_doc);
                v
            }
            _ => patch::strategic_merge_patch(old, &patch_doc, &info.api_version(), info.kind)
                .map_err(|e| ApiError::invalid_patch(&e.to_string()))?,
        };
        *warnings.lock().expect("lock") = check_fields(s, &mut patched, validation, origin, &namespace)?;
        Ok(patched)
    })
    .await?;
    let warnings = warnings.into_inner().expect("lock");
    Ok(response::with_warnings(
        response::json(code, &with_type(s, &out)),
        &warnings,
    ))
}

/// Read, change, validate and compare-and-swap, retrying on conflicts unless the caller gave
/// a resourceVersion precondition. Returns the HTTP code and the object written.
async fn write_with(
    api: &Api,
    s: &dyn Strategy,
    rp: &ResourcePath,
    part: Part,
    precondition: Option<String>,
    dry_run: bool,
    change: impl Fn(&Value) -> Result<Value, ApiError>,
) -> Result<(u16, Value), ApiError> {
    let info = s.info();
    for _attempt in 0..16 {
        let (old, kv) = current(api, s, rp).await?.ok_or_else(|| not_found(s, rp))?;
        if let Some(rv) = &precondition {
            if *rv != kv.mod_revision.to_string() {
                return Err(ApiError::conflict(info.group, info.plural, &rp.name));
            }
        }
        let mut new = change(&old)?;
        // Identity and system metadata always come from the stored object.
        for f in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            let v = old.pointer(&format!("/metadata/{f}")).cloned().unwrap_or(Value::Null);
            meta::set(&mut new, f, v);
        }
        meta::set(&mut new, "resourceVersion", json!(kv.mod_revision.to_string()));
        match part {
            Part::Main => {
                s.default(&mut new);
                s.prepare_update(&mut new, &old);
            }
            Part::Status => s.prepare_status_update(&mut new, &old),
            Part::Finalize => {
                let finalizers = new.pointer("/spec/finalizers").cloned().unwrap_or(json!([]));
                new = old.clone();
                new["spec"]["finalizers"] = finalizers;
            }
        }
        if info.uses_generation && new.get("spec") != old.get("spec") {
            let g = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
            meta::set(&mut new, "generation", json!(g + 1));
        }
        let rollback = match part {
            Part::Main => s.allocate_update(&mut new, &old)?,
            Part::Status | Part::Finalize => None,
        };
        // Metadata rules hold on every write, as upstream's ValidateObjectMetaUpdate.
        let mut errors = podway_api::validation::validate_object_meta(
            new.get("metadata").unwrap_or(&Value::Null),
            info.namespaced,
            name_rule(info.kind),
        );
        errors.extend(s.validate_update(&new, &old));
        if !errors.is_empty() {
            undo(rollback);
            return Err(ApiError::invalid(info.group, info.kind, &rp.name, &errors));
        }
        if new == old {
            undo(rollback);
            return Ok((200, old)); // a no-op update writes nothing, as upstream
        }
        if dry_run {
            undo(rollback);
            return Ok((200, new));
        }
        if meta::is_deleting(&new) && !has_finalizers(&new) {
            // The last finalizer is gone: the object goes.
            undo(rollback);
            return remove(api, s, &key(s, rp), &new, kv.mod_revision)
                .await
                .map(|o| (200, o));
        }
        match api
            .store
            .update(&key(s, rp), stored_bytes(s, &new), kv.mod_revision)
            .await
        {
            Ok(rev) => {
                keep(rollback);
                api.cache.wait_for(rev).await;
                meta::set(&mut new, "resourceVersion", json!(rev.to_string()));
                return Ok((200, new));
            }
            Err(StoreError::Conflict { .. }) => {
                undo(rollback);
                if precondition.is_some() {
                    return Err(ApiError::conflict(info.group, info.plural, &rp.name));
                }
            }
            Err(StoreError::NotFound(_)) => {
                undo(rollback);
                return Err(not_found(s, rp));
            }
            Err(e) => {
                undo(rollback);
                return Err(store_error(e));
            }
        }
    }
    Err(ApiError::conflict(info.group, info.plural, &rp.name))
}

fn has_finalizers(obj: &Value) -> bool {
    !meta::finalizers(obj).is_empty()
        || obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
}

/// Delete from the store and release what the object held. Returns the last state.
async fn remove(api: &Api, s: &dyn Strategy, key: &str, old: &Value, expected: i64) -> Result<Value, ApiError> {
    match api.store.delete(key, Some(expected)).await {
        Ok((_, rev)) => {
            api.cache.wait_for(rev).await;
            s.release(old);
            let mut out = old.clone();
            meta::set(&mut out, "resourceVersion", json!(rev.to_string()));
            Ok(out)
        }
        Err(StoreError::Conflict { .. }) => Err(ApiError::conflict(s.info().group, s.info().plural, meta::name(old))),
        Err(StoreError::NotFound(_)) => Err(ApiError::not_found(s.info().group, s.info().plural, meta::name(old))),
        Err(e) => Err(store_error(e)),
    }
}

/// DeleteOptions, from the body or the query.
struct DeleteOptions {
    propagation: String,
    grace: Option<i64>,
    uid: Option<String>,
    resource_version: Option<String>,
    dry_run: bool,
}

fn delete_options(call: &Call) -> Result<DeleteOptions, ApiError> {
    let body: Value = if call.body.is_empty() {
        json!({})
    } else {
        body::decode(&call.content_type, &call.body)?
    };
    let q = |k: &str| call.query.get(k).map(str::to_string);
    let propagation = body
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| q("propagationPolicy"))
        .or_else(|| {
            match body
                .get("orphanDependents")
                .and_then(Value::as_bool)
                .or(q("orphanDependents").map(|v| v == "true"))
            {
                Some(true) => Some("Orphan".into()),
                _ => None,
            }
        })
        .unwrap_or_else(|| "Background".into());
    if !matches!(propagation.as_str(), "Background" | "Foreground" | "Orphan") {
        return Err(ApiError::invalid(
            "",
            "DeleteOptions",
            "",
            &[FieldError::not_supported(
                "propagationPolicy",
                json!(propagation),
                &["Foreground", "Background", "Orphan", "nil"],
            )],
        ));
    }
    let grace = body
        .get("gracePeriodSeconds")
        .and_then(Value::as_i64)
        .or_else(|| q("gracePeriodSeconds").and_then(|g| g.parse().ok()));
    let dry = body
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|v| v == "All"))
        || call.query.all("dryRun").iter().any(|v| v == "All");
    Ok(DeleteOptions {
        propagation,
        grace,
        uid: body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string),
        resource_version: body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string),
        dry_run: dry,
    })
}

/// DELETE of one object.
pub async fn delete(api: &Api, s: &dyn Strategy, rp: &ResourcePath, call: &Call) -> Result<Response<Body>, ApiError> {
    let opts = delete_options(call)?;
    let out = delete_one(api, s, rp, &opts).await?;
    Ok(response::json(200, &with_type(s, &out)))
}

async fn delete_one(api: &Api, s: &dyn Strategy, rp: &ResourcePath, opts: &DeleteOptions) -> Result<Value, ApiError> {
    let info = s.info();
    for _attempt in 0..16 {
        let (old, kv) = current(api, s, rp).await?.ok_or_else(|| not_found(s, rp))?;
        if opts.uid.as_deref().is_some_and(|u| u != meta::uid(&old)) {
            return Err(ApiError::conflict_message(
                info.group,
                info.plural,
                &rp.name,
                format!(
                    "Precondition failed: UID in precondition: {}, UID in object meta: {}",
                    opts.uid.as_deref().unwrap_or(""),
                    meta::uid(&old)
                ),
            ));
        }
        if opts
            .resource_version
            .as_deref()
            .is_some_and(|r| r != kv.mod_revision.to_string())
        {
            return Err(ApiError::conflict(info.group, info.plural, &rp.name));
        }
        let mut finalizers = meta::finalizers(&old);
        match opts.propagation.as_str() {
            "Foreground" if !finalizers.iter().any(|f| f == "foregroundDeletion") => {
                finalizers.push("foregroundDeletion".into())
            }
            "Orphan" if !finalizers.iter().any(|f| f == "orphan") => finalizers.push("orphan".into()),
            _ => {}
        }
        let graceful_pod = info.kind == "Pod"
            && old
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty())
            && opts.grace != Some(0)
            && old
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .is_none_or(|p| p != "Succeeded" && p != "Failed");
        let namespace = info.kind == "Namespace";
        if namespace && matches!(rp.name.as_str(), "default" | "kube-system" | "kube-public") {
            return Err(ApiError::forbidden(
                info.group,
                info.plural,
                &rp.name,
                "this namespace may not be deleted",
            ));
        }
        if finalizers.is_empty() && !graceful_pod && !namespace {
            if opts.dry_run {
                return Ok(old);
            }
            match remove(api, s, &key(s, rp), &old, kv.mod_revision).await {
                Err(e) if e.code == 409 && opts.resource_version.is_none() => continue,
                other => return other,
            }
        }
        // Graceful or finalized deletion: mark the object; its owner finishes the job.
        if meta::is_deleting(&old) {
            return Ok(old);
        }
        let mut new = old.clone();
        let grace = if graceful_pod {
            opts.grace
                .or_else(|| {
                    old.pointer("/spec/terminationGracePeriodSeconds")
                        .and_then(Value::as_i64)
                })
                .unwrap_or(30)
        } else {
            0
        };
        meta::set(&mut new, "deletionTimestamp", json!(now_plus(grace)));
        meta::set(&mut new, "deletionGracePeriodSeconds", json!(grace));
        if !finalizers.is_empty() {
            meta::set(&mut new, "finalizers", json!(finalizers));
        }
        if namespace {
            new["status"] = json!({"phase": "Terminating"});
        }
        if opts.dry_run {
            return Ok(new);
        }
        match api
            .store
            .update(&key(s, rp), stored_bytes(s, &new), kv.mod_revision)
            .await
        {
            Ok(rev) => {
                api.cache.wait_for(rev).await;
                meta::set(&mut new, "resourceVersion", json!(rev.to_string()));
                return Ok(new);
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(StoreError::NotFound(_)) => return Err(not_found(s, rp)),
            Err(e) => return Err(store_error(e)),
        }
    }
    Err(ApiError::conflict(info.group, info.plural, &rp.name))
}

/// DELETE of a collection: every selected object, one by one.
pub async fn delete_collection(
    api: &Api,
    s: &dyn Strategy,
    rp: &ResourcePath,
    call: &Call,
) -> Result<Response<Body>, ApiError> {
    let opts = delete_options(call)?;
    let filter = super::read::Filter::from_query(s, call)?;
    let (items, _) = api.cache.list(&s.info().namespace_prefix(&rp.namespace));
    let mut deleted = Vec::new();
    for o in items.iter().filter(|o| filter.matches(s, o)) {
        let one = ResourcePath {
            namespace: meta::namespace(o).to_string(),
            name: meta::name(o).to_string(),
            ..rp.clone()
        };
        match delete_one(api, s, &one, &opts).await {
            Ok(v) => deleted.push(with_type(s, &v)),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let list = json!({
        "kind": s.info().list_kind(),
        "apiVersion": s.info().api_version(),
        "metadata": {"resourceVersion": api.cache.revision().to_string()},
        "items": deleted,
    });
    Ok(response::json(200, &list))
}

/// Change an object (or, with `part`, its status or finalizers) with a function, retrying on
/// conflicts: the write path of subresources and of the server's own bootstrap objects.
pub async fn change_object(
    api: &Api,
    s: &dyn Strategy,
    rp: &ResourcePath,
    part: Part,
    precondition: Option<String>,
    dry_run: bool,
    change: impl Fn(&Value) -> Result<Value, ApiError>,
) -> Result<Value, ApiError> {
    write_with(api, s, rp, part, precondition, dry_run, change)
        .await
        .map(|(_, v)| v)
}
