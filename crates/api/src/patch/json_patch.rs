//! RFC 6902 JSON patch: `[{"op":"add","path":"/metadata/labels/tier","value":"db"}, ...]`.
//!
//! Operations apply in order to a copy; the first failure aborts the whole patch, so the
//! target is never half-patched. Messages follow the evanphx/json-patch library the API
//! server uses (`replace operation does not apply: doc is missing key: /spec/x: missing value`).

use serde_json::{Map, Value};

use super::{values_eq, PatchError};

/// Applies `ops` (a JSON array of operations) to a copy of `target` and returns it.
/// Supports `add`, `remove`, `replace`, `move`, `copy` and `test`, JSON pointers with `~0`
/// and `~1` escapes, and `-` for "after the last element" in `add`, `move` and `copy`.
pub fn json_patch(target: &Value, ops: &Value) -> Result<Value, PatchError> {
    let Value::Array(ops) = ops else {
        return Err(PatchError::BadRequest(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
            json_kind(ops)
        )));
    };
    let mut doc = target.clone();
    for op in ops {
        let Value::Object(op) = op else {
            return Err(PatchError::BadRequest(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
                json_kind(op)
            )));
        };
        apply(&mut doc, op).map_err(PatchError::Unprocessable)?;
    }
    Ok(doc)
}

fn apply(doc: &mut Value, op: &Map<String, Value>) -> Result<(), String> {
    let kind = op.get("op").and_then(Value::as_str).unwrap_or("unknown");
    let path = || pointer(op, "path");
    let value = || {
        op.get("value")
            .cloned()
            .ok_or_else(|| format!("{kind} operation has no value"))
    };
    match kind {
        "add" => add(doc, &path()?, value()?).map_err(|e| {
            format!(
                "add operation does not apply: doc is missing path: \"{}\": {e}",
                raw(op, "path")
            )
        }),
        "remove" => remove(doc, &path()?).map(drop).map_err(|e| {
            format!(
                "remove operation does not apply: doc is missing path: \"{}\": {e}",
                raw(op, "path")
            )
        }),
        "replace" => {
            let target = get_mut(doc, &path()?).ok_or_else(|| {
                format!(
                    "replace operation does not apply: doc is missing key: {}: missing value",
                    raw(op, "path")
                )
            })?;
            *target = value()?;
            Ok(())
        }
        "move" => {
            let (from, to) = (pointer(op, "from")?, path()?);
            if to.len() > from.len() && to.starts_with(&from) {
                return Err(format!(
                    "Unable to move {} into its own child {}",
                    raw(op, "from"),
                    raw(op, "path")
                ));
            }
            let moved = remove(doc, &from).map_err(|_| {
                format!(
                    "move operation does not apply: doc is missing from path: {}: missing value",
                    raw(op, "from")
                )
            })?;
            add(doc, &to, moved).map_err(|e| {
                format!(
                    "move operation does not apply: doc is missing destination path: {}: {e}",
                    raw(op, "path")
                )
            })
        }
        "copy" => {
            let copied = get_mut(doc, &pointer(op, "from")?).map(|v| v.clone()).ok_or_else(|| {
                format!(
                    "copy operation does not apply: doc is missing from path: {}: missing value",
                    raw(op, "from")
                )
            })?;
            add(doc, &path()?, copied).map_err(|e| {
                format!(
                    "copy operation does not apply: doc is missing destination path: {}: {e}",
                    raw(op, "path")
                )
            })
        }
        "test" => {
            let want = value()?;
            match get_mut(doc, &path()?) {
                Some(have) if values_eq(have, &want) => Ok(()),
                _ => Err(format!("testing value {} failed: test failed", raw(op, "path"))),
            }
        }
        other => Err(format!("Unexpected kind: {other}")),
    }
}

/// A JSON pointer's reference tokens, unescaped (`~1` is `/`, `~0` is `~`).
fn pointer(op: &Map<String, Value>, field: &str) -> Result<Vec<String>, String> {
    let p = op
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("operation missing {field} field"))?;
    if p.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = p.strip_prefix('/') else {
        return Err(format!("invalid JSON pointer {p:?}: must start with '/'"));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn raw<'a>(op: &'a Map<String, Value>, field: &str) -> &'a str {
    op.get(field).and_then(Value::as_str).unwrap_or("")
}

fn get_mut<'a>(doc: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(doc, |cur, token| match cur {
        Value::Object(m) => m.get_mut(token),
        Value::Array(a) => array_index(token, a.len()).ok().and_then(|i| a.get_mut(i)),
        _ => None,
    })
}

/// An existing element's index; `-` and leading zeros are not indexes of existing elements.
fn array_index(token: &str, len: usize) -> Result<usize, String> {
    let valid =
        !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) && (token == "0" || !token.starts_with('0'));
    match token.parse::<usize>() {
        Ok(i) if valid && i < len => Ok(i),
        _ => Err(format!(
            "Unable to access invalid index: {token}: invalid index referenced"
        )),
    }
}

fn add(doc: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parent)) = path.split_last() else {
        *doc = value;
        return Ok(());
    };
    match get_mut(doc, parent) {
        Some(Value::Object(m)) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Some(Value::Array(a)) => {
            let at = if last == "-" {
                a.len()
            } else {
                array_index(last, a.len() + 1)?
            };
            a.insert(at, value);
            Ok(())
        }
        _ => Err("missing value".to_string()),
    }
}

fn remove(doc: &mut Value, path: &[String]) -> Result<Value, String> {
    let Some((last, parent)) = path.split_last() else {
        return Ok(std::mem::take(doc));
    };
    match get_mut(doc, parent) {
        Some(Value::Object(m)) => m.shift_remove(last).ok_or_else(|| "missing value".to_string()),
        Some(Value::Array(a)) => {
            let i = array_index(last, a.len())?;
            Ok(a.remove(i))
        }
        _ => Err("missing value".to_string()),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(doc: Value, ops: Value) -> Result<Value, PatchError> {
        json_patch(&doc, &ops)
    }

    #[test]
    fn add_sets_keys_inserts_and_appends_with_dash() {
        let out = patch(
            json!({"metadata": {"labels": {}}, "spec": {"args": ["a", "c"]}}),
            json!([
                {"op": "add", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "web"},
                {"op": "add", "path": "/spec/args/1", "value": "b"},
                {"op": "add", "path": "/spec/args/-", "value": "d"}
            ]),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"app.kubernetes.io/name": "web"}}, "spec": {"args": ["a", "b", "c", "d"]}})
        );
    }

    #[test]
    fn remove_and_replace_require_the_target_to_exist() {
        let doc = json!({"spec": {"replicas": 1, "ports": [80, 443]}});
        let out = patch(
            doc.clone(),
            json!([{"op": "remove", "path": "/spec/ports/0"}, {"op": "replace", "path": "/spec/replicas", "value": 3}]),
        )
        .unwrap();
        assert_eq!(out, json!({"spec": {"replicas": 3, "ports": [443]}}));
        let err = patch(
            doc.clone(),
            json!([{"op": "replace", "path": "/spec/paused", "value": true}]),
        )
        .unwrap_err();
        assert_eq!(
            err,
            PatchError::Unprocessable(
                "replace operation does not apply: doc is missing key: /spec/paused: missing value".into()
            )
        );
        assert_eq!(err.status_code(), 422);
        assert!(patch(doc, json!([{"op": "remove", "path": "/spec/ports/5"}])).is_err());
    }

    #[test]
    fn move_and_copy_relocate_values() {
        let out = patch(
            json!({"a": {"x": 1}, "b": {}}),
            json!([{"op": "copy", "from": "/a/x", "path": "/b/y"}, {"op": "move", "from": "/a", "path": "/c"}]),
        )
        .unwrap();
        assert_eq!(out, json!({"b": {"y": 1}, "c": {"x": 1}}));
        assert!(patch(json!({"a": {}}), json!([{"op": "move", "from": "/a", "path": "/a/b"}])).is_err());
    }

    #[test]
    fn failed_test_aborts_the_whole_patch() {
        let doc = json!({"metadata": {"resourceVersion": "5"}, "spec": {"replicas": 1}});
        let ops = json!([
            {"op": "replace", "path": "/spec/replicas", "value": 2},
            {"op": "test", "path": "/metadata/resourceVersion", "value": "4"}
        ]);
        assert_eq!(
            patch(doc.clone(), ops).unwrap_err().to_string(),
            "testing value /metadata/resourceVersion failed: test failed"
        );
        let ok = json!([{"op": "test", "path": "/spec/replicas", "value": 1.0}]);
        assert_eq!(patch(doc.clone(), ok).unwrap(), doc);
    }

    #[test]
    fn malformed_patches_are_bad_requests_and_unknown_ops_unprocessable() {
        let err = patch(json!({}), json!({"op": "add"})).unwrap_err();
        assert_eq!(err.status_code(), 400);
        assert_eq!(
            err.to_string(),
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        );
        let err = patch(json!({}), json!([{"op": "frobnicate", "path": "/a"}])).unwrap_err();
        assert_eq!(err.to_string(), "Unexpected kind: frobnicate");
    }

    #[test]
    fn empty_path_replaces_the_whole_document() {
        assert_eq!(
            patch(json!({"a": 1}), json!([{"op": "add", "path": "", "value": {"b": 2}}])).unwrap(),
            json!({"b": 2})
        );
    }
}
