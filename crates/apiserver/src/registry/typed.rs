//! Strict decoding: does a JSON object fit the kind's typed schema?
//!
//! The real API server decodes bodies into Go structs and reports fields the struct does not
//! have. We get the same answer from k8s-openapi's typed structs: decode, encode again, and
//! every input field missing from the re-encoded object is unknown. Type errors and missing
//! required fields come from the decoder with their path.

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

/// What decoding found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FieldCheck {
    /// Unknown fields, as paths like `spec.ports[0].nordPort`, in input order.
    pub unknown: Vec<String>,
    /// A value of the wrong type, as the decoder words it (with its path).
    pub type_error: Option<String>,
}

/// Decode `obj` as `K`, the typed kind, and report unknown fields and type errors. Absent
/// required fields are not errors here: like Go, k8s-openapi decodes them as zero values and
/// validation reports them.
pub fn check_typed<K: DeserializeOwned + Serialize>(obj: &Value) -> FieldCheck {
    let mut check = FieldCheck::default();
    match serde_path_to_error::deserialize::<_, K>(obj) {
        Ok(typed) => {
            let again = serde_json::to_value(&typed).unwrap_or(Value::Null);
            find_unknown(obj, &again, String::new(), &mut check.unknown);
        }
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            check.type_error = Some(if path == "." { inner } else { format!("{path}: {inner}") });
        }
    }
    check
}

enum Seg {
    Key(String),
    Index(usize),
}

fn split_path(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(b) = rest.find('[') {
            out.push(Seg::Key(rest[..b].to_string()));
            rest = &rest[b..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let end = stripped.find(']').unwrap_or(stripped.len());
                if let Ok(i) = stripped[..end].parse() {
                    out.push(Seg::Index(i));
                }
                rest = stripped.get(end + 1..).unwrap_or("");
            }
        } else {
            out.push(Seg::Key(rest.to_string()));
        }
    }
    out
}

fn find_unknown(input: &Value, decoded: &Value, path: String, out: &mut Vec<String>) {
    match (input, decoded) {
        (Value::Object(i), Value::Object(d)) => {
            for (k, v) in i {
                if v.is_null() {
                    continue;
                }
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match d.get(k) {
                    Some(dv) => find_unknown(v, dv, p, out),
                    None => out.push(p),
                }
            }
        }
        (Value::Array(i), Value::Array(d)) => {
            for (n, (iv, dv)) in i.iter().zip(d.iter()).enumerate() {
                find_unknown(iv, dv, format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

/// Remove the fields at `paths` (as found by [`check_typed`]) from `obj`: what Ignore and
/// Warn field validation do.
pub fn drop_fields(obj: &mut Value, paths: &[String]) {
    for p in paths {
        let mut segs = split_path(p);
        let Some(Seg::Key(last)) = segs.pop() else { continue };
        let pointer: String = segs
            .iter()
            .map(|s| match s {
                Seg::Key(k) => format!("/{}", k.replace('~', "~0").replace('/', "~1")),
                Seg::Index(i) => format!("/{i}"),
            })
            .collect();
        if let Some(m) = obj.pointer_mut(&pointer).and_then(Value::as_object_mut) {
            m.remove(&last);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Service;
    use serde_json::json;

    #[test]
    fn unknown_nested_field_is_reported_with_its_path() {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "creationTimestamp": null},
            "spec": {"type": "NodePort", "ports": [{"port": 8080, "targetPort": 8080, "nordPort": 30000}]}});
        let c = check_typed::<Service>(&svc);
        assert_eq!(c.unknown, vec!["spec.ports[0].nordPort".to_string()]);
        assert_eq!(c.type_error, None);
    }

    #[test]
    fn wrong_type_is_a_type_error_with_path() {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"ports": [{"port": "eighty"}]}});
        let c = check_typed::<Service>(&svc);
        assert!(c.type_error.unwrap().starts_with("spec.ports[0].port"));
    }

    #[test]
    fn missing_required_fields_decode_as_zero_values_like_go() {
        // k8s-openapi defaults absent required strings, as Go decodes zero values; validation,
        // not decoding, then reports `spec.template.spec.containers[0].name: Required value`.
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"image": "nginx"}]}}}});
        let c = check_typed::<Deployment>(&d);
        assert_eq!(c, FieldCheck::default());
    }

    #[test]
    fn drop_fields_removes_only_the_named_paths() {
        let mut v = json!({"spec": {"ports": [{"port": 1, "nordPort": 2}]}});
        drop_fields(&mut v, &["spec.ports[0].nordPort".to_string()]);
        assert_eq!(v, json!({"spec": {"ports": [{"port": 1}]}}));
    }
}
