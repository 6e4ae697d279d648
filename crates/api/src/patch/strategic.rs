//! Strategic merge patch as the API server applies it to built-in kinds (apimachinery's
//! `strategicpatch.StrategicMergeMapPatch` with `MergeParallelList` and
//! `IgnoreUnmatchedNulls`), step for step, so that kubectl's computed patches land the way
//! they would on a real cluster.
//!
//! - Maps merge recursively; `null` deletes; `{"$patch": "replace"}` takes the patch map as
//!   is; `{"$patch": "delete"}` empties it.
//! - Lists with a merge key ([`super::schema`]) merge element by element; an element
//!   `{"<key>": v, "$patch": "delete"}` removes it, a `{"$patch": "replace"}` element makes
//!   the rest of the patch list the new list. Primitive merge lists (finalizers) are unions.
//!   Other lists are replaced.
//! - `$setElementOrder/<list>` orders the merged list: listed items first in that order,
//!   live-only items slotted in where they stood. `$retainKeys` drops keys it does not
//!   list. `$deleteFromPrimitiveList/<list>` removes those values.
//!
//! One deliberate difference: the result never carries a directive. Kubernetes leaves a few
//! in values it copies in whole (and relies on decoding into Go structs to drop them); we
//! store the JSON as is, so new values are cleaned like merged ones.

use serde_json::{Map, Value};

use super::schema::{self, PatchMeta};
use super::{gofmt, values_eq, PatchError};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder";
const DELETE_FROM: &str = "$deleteFromPrimitiveList";

/// Applies a strategic merge patch to `original` for an object of `api_version`/`kind`,
/// returning the merged object. Both must be JSON objects (`null` counts as `{}`).
/// Kinds podway has no table for merge as if only ObjectMeta had tags
/// ([`schema::has_schema`] tells them apart).
pub fn strategic_merge_patch(
    original: &Value,
    patch: &Value,
    api_version: &str,
    kind: &str,
) -> Result<Value, PatchError> {
    let as_map = |v: &Value| match v {
        Value::Object(m) => Ok(m.clone()),
        Value::Null => Ok(Map::new()),
        _ => Err(bad_request("invalid JSON document")),
    };
    let ctx = Ctx { api_version, kind };
    merge_map(as_map(original)?, as_map(patch)?, &ctx, "").map(Value::Object)
}

/// The kind being patched, to look up field strategies by path.
struct Ctx<'a> {
    api_version: &'a str,
    kind: &'a str,
}

impl Ctx<'_> {
    fn meta(&self, path: &str) -> PatchMeta {
        schema::lookup(self.api_version, self.kind, path)
    }
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    ctx: &Ctx,
    path: &str,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => {
                patch.shift_remove(DIRECTIVE);
                Ok(clean_map(patch))
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(bad_patch_type(directive, &patch)),
        };
    }
    apply_retain_keys(&mut original, &mut patch)?;
    merge_ordered_lists(&mut original, &mut patch, ctx, path)?;

    for (patch_key, patch_value) in patch {
        let (key, delete_list) = if patch_key.starts_with(DELETE_FROM) {
            (extract_key(&patch_key, DELETE_FROM)?, true)
        } else {
            (patch_key, false)
        };
        if patch_value.is_null() {
            original.shift_remove(&key);
            continue;
        }
        let field_path = child(path, &key);
        let merged = match original.get_mut(&key) {
            None if delete_list => continue,
            None => clean(patch_value),
            Some(Value::Object(o)) if patch_value.is_object() => {
                let Value::Object(p) = patch_value else {
                    unreachable!("checked is_object")
                };
                Some(Value::Object(merge_map(std::mem::take(o), p, ctx, &field_path)?))
            }
            Some(Value::Array(o)) if patch_value.is_array() => {
                let Value::Array(p) = patch_value else {
                    unreachable!("checked is_array")
                };
                let meta = ctx.meta(&field_path);
                Some(Value::Array(merge_list_field(
                    std::mem::take(o),
                    p,
                    meta,
                    delete_list,
                    ctx,
                    &field_path,
                )?))
            }
            // A parallel deletion list only ever deletes, even from a value of another type.
            Some(o) if delete_list && json_type(o) != json_type(&patch_value) => continue,
            Some(_) => clean(patch_value),
        };
        match merged {
            Some(v) => {
                original.insert(key, v);
            }
            None => {
                original.shift_remove(&key);
            }
        }
    }
    Ok(original)
}

/// `mergeSliceHandler`: merge lists merge, delete lists delete, others are replaced.
fn merge_list_field(
    original: Vec<Value>,
    patch: Vec<Value>,
    meta: PatchMeta,
    delete_list: bool,
    ctx: &Ctx,
    path: &str,
) -> Result<Vec<Value>, PatchError> {
    if meta.merge || delete_list {
        merge_list(original, patch, meta.merge_key, delete_list, ctx, path)
    } else {
        Ok(clean_list(patch))
    }
}

fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    key: Option<&str>,
    delete_list: bool,
    ctx: &Ctx,
    path: &str,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    if element_type(&original, &patch)? != "object" {
        if delete_list {
            return Ok(original
                .into_iter()
                .filter(|v| !patch.iter().any(|d| values_eq(v, d)))
                .collect());
        }
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for v in original.iter().chain(&patch) {
            if !merged.iter().any(|m| values_eq(m, v)) {
                merged.push(v.clone());
            }
        }
        let (in_patch, server_only) = merged.into_iter().partition(|v| patch.iter().any(|p| values_eq(p, v)));
        return normalize_order(in_patch, server_only, &patch, &original, None);
    }
    let Some(key) = key else {
        return Err(unprocessable(format!(
            "cannot merge lists without merge key for {path}"
        )));
    };
    let (original, patch) = apply_list_directives(original, patch, key)?;
    let mut merged = original.clone();
    for element in &patch {
        let Value::Object(p) = element else {
            unreachable!("element_type checked")
        };
        let key_value = p.get(key).ok_or_else(|| no_merge_key(element, key))?;
        match merged
            .iter()
            .position(|o| o.get(key).is_some_and(|v| values_eq(v, key_value)))
        {
            Some(i) => {
                let Value::Object(o) = std::mem::take(&mut merged[i]) else {
                    unreachable!("element_type checked")
                };
                merged[i] = Value::Object(merge_map(o, p.clone(), ctx, path)?);
            }
            None => merged.extend(clean(element.clone())),
        }
    }
    let (in_patch, server_only) = partition_by_key(merged, &patch, key)?;
    normalize_order(in_patch, server_only, &patch, &original, Some(key))
}

/// Handles `$patch` elements of a merge list: deletions come out of `original`, a
/// `replace` marker makes the remaining patch elements the new original. Returns the
/// updated original and the patch without directive elements.
fn apply_list_directives(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut rest = Vec::with_capacity(patch.len());
    let mut replace = false;
    for element in patch {
        let Some(directive) = element.get(DIRECTIVE) else {
            rest.push(element);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let key_value = element.get(key).ok_or_else(|| no_merge_key(&element, key))?;
                original.retain(|o| !o.get(key).is_some_and(|v| values_eq(v, key_value)));
            }
            Some("replace") => replace = true,
            Some("merge") => return Err(unprocessable("merging lists cannot yet be specified in the patch")),
            _ => {
                let Value::Object(m) = &element else {
                    unreachable!("has a $patch key")
                };
                return Err(bad_patch_type(directive, m));
            }
        }
    }
    Ok(if replace { (rest, Vec::new()) } else { (original, rest) })
}

/// `$retainKeys: [..]` clears every key of `original` it does not list; the patch itself
/// may only set listed keys.
fn apply_retain_keys(original: &mut Map<String, Value>, patch: &mut Map<String, Value>) -> Result<(), PatchError> {
    let Some(retain) = patch.shift_remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(bad_request("invalid patch format of retainKeys"));
    };
    let listed = |k: &str| retain.iter().any(|r| r.as_str() == Some(k));
    let stray = patch
        .iter()
        .any(|(k, v)| !v.is_null() && !k.starts_with(DELETE_FROM) && !k.starts_with(SET_ORDER) && !listed(k));
    if stray {
        return Err(bad_request("invalid patch format of retainKeys"));
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// Merges every list named by a `$setElementOrder/<list>` directive together with its patch
/// list, then orders it: patch items in directive order, live-only items where they were.
fn merge_ordered_lists(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    ctx: &Ctx,
    path: &str,
) -> Result<(), PatchError> {
    let directives: Vec<String> = patch.keys().filter(|k| k.starts_with(SET_ORDER)).cloned().collect();
    for directive in directives {
        let order = patch.shift_remove(&directive).unwrap_or_default();
        let Value::Array(order) = order else {
            return Err(bad_arg_type(A_LIST, &order));
        };
        let field = extract_key(&directive, SET_ORDER)?;
        let list_at = |m: &Map<String, Value>| match m.get(&field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a.clone())),
            Some(other) => Err(bad_arg_type(A_LIST, other)),
        };
        let (live, patched) = (list_at(original)?, list_at(patch)?);
        let field_path = child(path, &field);
        let meta = ctx.meta(&field_path);
        check_order_matches_patch(patched.as_deref().unwrap_or_default(), &order, meta.merge_key)?;
        let merged = match (&live, patched) {
            (Some(live), None) => live.clone(),
            (None, Some(patched)) => clean_list(patched),
            (Some(live), Some(patched)) => merge_list_field(live.clone(), patched, meta, false, ctx, &field_path)?,
            (None, None) => continue,
        };
        let live = live.unwrap_or_default();
        let patched = patch
            .get(&field)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let kind = element_type(&live, patched)?;
        let (in_order, server_only) = match meta.merge_key {
            Some(key) if kind == "object" => partition_by_key(merged, &order, key)?,
            _ => merged.into_iter().partition(|v| order.iter().any(|o| values_eq(o, v))),
        };
        let key = meta.merge_key.filter(|_| kind == "object");
        let ordered = normalize_order(in_order, server_only, &order, &live, key)?;
        original.insert(field.clone(), Value::Array(ordered));
        patch.shift_remove(&field);
    }
    Ok(())
}

/// `validatePatchWithSetOrderList`: the patch list must follow the directive's order.
fn check_order_matches_patch(patch: &[Value], order: &[Value], key: Option<&str>) -> Result<(), PatchError> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let items: Vec<&Value> = match key {
        Some(_) => {
            if let Some(bad) = patch.iter().find(|v| !v.is_object()) {
                return Err(bad_arg_type(A_MAP, bad));
            }
            patch
                .iter()
                .filter(|v| v.get(DIRECTIVE).and_then(Value::as_str) != Some("delete"))
                .collect()
        }
        None => patch.iter().collect(),
    };
    let (mut i, mut j) = (0, 0);
    while i < items.len() && j < order.len() {
        if items[i].get(DIRECTIVE).is_some() {
            i += 1;
            continue;
        }
        if same_item(items[i], &order[j], key)? {
            i += 1;
        }
        j += 1;
    }
    if i < items.len() && j >= order.len() {
        return Err(unprocessable(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ORDER} list:\n{}\n",
            gofmt::value(&Value::Array(patch.to_vec())),
            gofmt::value(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

fn same_item(a: &Value, b: &Value, key: Option<&str>) -> Result<bool, PatchError> {
    let Some(key) = key else { return Ok(values_eq(a, b)) };
    let ka = a
        .as_object()
        .ok_or_else(|| bad_arg_type(A_MAP, a))?
        .get(key)
        .ok_or_else(|| no_merge_key(a, key))?;
    let kb = b
        .as_object()
        .ok_or_else(|| bad_arg_type(A_MAP, b))?
        .get(key)
        .ok_or_else(|| no_merge_key(b, key))?;
    Ok(values_eq(ka, kb))
}

/// Splits `items` into those whose merge key appears in `by` and the rest.
fn partition_by_key(items: Vec<Value>, by: &[Value], key: &str) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    if let Some(bad) = by.iter().find(|v| !v.is_object()) {
        return Err(bad_arg_type(A_MAP, bad));
    }
    let mut inside = Vec::new();
    let mut outside = Vec::new();
    for item in items {
        let k = item.get(key).ok_or_else(|| no_merge_key(&item, key))?;
        if by.iter().any(|b| b.get(key).is_some_and(|v| values_eq(v, k))) {
            inside.push(item);
        } else {
            outside.push(item);
        }
    }
    Ok((inside, outside))
}

/// `normalizeElementOrder`: sorts patch items by `patch_order`, live-only items by
/// `server_order`, then interleaves them, a live item going before a patch item when it
/// stood before it in the live list.
fn normalize_order(
    mut in_patch: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Result<Vec<Value>, PatchError> {
    if let Some(key) = key {
        for v in in_patch
            .iter()
            .chain(&server_only)
            .chain(patch_order)
            .chain(server_order)
        {
            if !v.is_object() {
                return Err(bad_arg_type(A_MAP, v));
            }
            if v.get(key).is_none() {
                return Err(no_merge_key(v, key));
            }
        }
    }
    let index = |list: &[Value], v: &Value| -> Option<usize> {
        let id = |x: &Value| match key {
            Some(k) => x.get(k).cloned(),
            None => Some(x.clone()),
        };
        let want = id(v);
        list.iter().position(|x| match (id(x), &want) {
            (Some(a), Some(b)) => values_eq(&a, b),
            (a, b) => a.is_none() && b.is_none(),
        })
    };
    in_patch.sort_by_key(|v| index(patch_order, v).unwrap_or(usize::MAX));
    server_only.sort_by_key(|v| index(server_order, v).unwrap_or(usize::MAX));

    let mut out = Vec::with_capacity(in_patch.len() + server_only.len());
    let (mut left, mut right) = (server_only.into_iter().peekable(), in_patch.into_iter().peekable());
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                matches!((index(server_order, l), index(server_order, r)), (Some(li), Some(ri)) if li < ri)
            }
        };
        out.extend(if take_left { left.next() } else { right.next() });
    }
    Ok(out)
}

/// The common element type of both lists (`sliceElementType`): "object", "string", ...
fn element_type(a: &[Value], b: &[Value]) -> Result<&'static str, PatchError> {
    let mut seen: Option<&'static str> = None;
    for v in a.iter().chain(b) {
        let t = json_type(v);
        match seen {
            None if t == "array" => return Err(unprocessable("lists of lists are not supported")),
            None => seen = Some(t),
            Some(s) if s != t => {
                return Err(unprocessable(format!(
                    "list element types are not identical: [{} {}]",
                    gofmt::value(&Value::Array(a.to_vec())),
                    gofmt::value(&Value::Array(b.to_vec()))
                )))
            }
            Some(_) => {}
        }
    }
    seen.ok_or_else(|| unprocessable("no elements in any of the given slices"))
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A patch value copied in whole: nulls dropped (nothing to delete in a new value), maps
/// resolved as if merged into nothing (`$patch: delete` drops them, `$patch: replace`
/// keeps their contents), directive keys and list directive elements removed.
fn clean(v: Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Object(mut m) => match m.get(DIRECTIVE).map(|d| d.as_str() == Some("delete")) {
            Some(true) => None,
            Some(false) => {
                m.shift_remove(DIRECTIVE);
                Some(Value::Object(clean_map(m)))
            }
            None => Some(Value::Object(clean_map(m))),
        },
        Value::Array(a) => Some(Value::Array(clean_list(a))),
        other => Some(other),
    }
}

fn clean_map(m: Map<String, Value>) -> Map<String, Value> {
    m.into_iter()
        .filter(|(k, _)| !is_directive_key(k))
        .filter_map(|(k, v)| clean(v).map(|v| (k, v)))
        .collect()
}

fn clean_list(a: Vec<Value>) -> Vec<Value> {
    a.into_iter()
        .filter(|v| v.get(DIRECTIVE).is_none())
        .filter_map(clean)
        .collect()
}

fn is_directive_key(k: &str) -> bool {
    k == DIRECTIVE || k == RETAIN_KEYS || k.starts_with(SET_ORDER) || k.starts_with(DELETE_FROM)
}

/// `$setElementOrder/containers` -> `containers`.
fn extract_key(directive: &str, prefix: &str) -> Result<String, PatchError> {
    match directive.split_once('/') {
        Some((p, key)) if p == prefix => Ok(key.to_string()),
        _ if prefix == DELETE_FROM => Err(bad_request("invalid patch format of primitive list")),
        _ => Err(bad_request("invalid patch format of setElementOrder list")),
    }
}

fn bad_request(msg: impl Into<String>) -> PatchError {
    PatchError::BadRequest(msg.into())
}

fn unprocessable(msg: impl Into<String>) -> PatchError {
    PatchError::Unprocessable(msg.into())
}

fn no_merge_key(m: &Value, key: &str) -> PatchError {
    unprocessable(format!(
        "map: {} does not contain declared merge key: {key}",
        gofmt::value(m)
    ))
}

fn bad_patch_type(directive: &Value, m: &Map<String, Value>) -> PatchError {
    unprocessable(format!(
        "unknown patch type: {} in map: {}",
        gofmt::value(directive),
        gofmt::value(&Value::Object(m.clone()))
    ))
}

/// `mergepatch.ErrBadArgType`: a list where a map was needed or the other way round.
fn bad_arg_type(expected: &str, actual: &Value) -> PatchError {
    unprocessable(format!(
        "expected a {expected}, but received a {}",
        gofmt::type_name(actual)
    ))
}

const A_LIST: &str = "[]interface {}";
const A_MAP: &str = "map[string]interface {}";
