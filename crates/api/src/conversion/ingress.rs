//! Ingress between `networking.k8s.io/v1` (the storage version) and the two removed beta
//! versions that old manifests still name: `networking.k8s.io/v1beta1` and
//! `extensions/v1beta1`. Both betas have the same shape, so one pair of functions serves both.
//!
//! What differs, as upstream's `pkg/apis/networking/v1beta1/conversion.go` (and its twin in
//! `pkg/apis/extensions/v1beta1`) converts it:
//!
//! - `spec.backend` is v1's `spec.defaultBackend`.
//! - A backend's `serviceName` and `servicePort` (int or string) are v1's `service.name` and
//!   `service.port.number` or `service.port.name`. A backend has a service in v1 as soon as the
//!   beta names a service, a non-zero port number, or any port string.
//! - `pathType` is optional in the betas; their defaulting makes it `ImplementationSpecific`
//!   before conversion (see [`default_path_types`]), as v1's does.
//!
//! Everything else (rules, hosts, paths, tls, ingressClassName, status, metadata) is the same.

use serde_json::{json, Map, Value};

/// The storage version.
pub const V1: &str = "networking.k8s.io/v1";
/// `networking.k8s.io/v1beta1`: deprecated in 1.19, removed upstream in 1.22.
pub const NETWORKING_V1BETA1: &str = "networking.k8s.io/v1beta1";
/// `extensions/v1beta1`: deprecated in 1.14, removed upstream in 1.22.
pub const EXTENSIONS_V1BETA1: &str = "extensions/v1beta1";

/// A beta Ingress (either group) in its v1 form, with `apiVersion` set to [`V1`].
pub fn to_v1(obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(m) = out.as_object_mut() {
        m.insert("apiVersion".into(), json!(V1));
    }
    if let Some(spec) = out.get_mut("spec").and_then(Value::as_object_mut) {
        if let Some(b) = spec.remove("backend") {
            if !b.is_null() {
                spec.insert("defaultBackend".into(), backend_to_v1(&b));
            }
        }
        for_each_path_backend(spec, backend_to_v1);
    }
    out
}

/// A v1 Ingress as the beta `api_version` ([`NETWORKING_V1BETA1`] or [`EXTENSIONS_V1BETA1`])
/// shows it, with `apiVersion` set to it.
pub fn from_v1(obj: &Value, api_version: &str) -> Value {
    let mut out = obj.clone();
    if let Some(m) = out.as_object_mut() {
        m.insert("apiVersion".into(), json!(api_version));
    }
    if let Some(spec) = out.get_mut("spec").and_then(Value::as_object_mut) {
        if let Some(b) = spec.remove("defaultBackend") {
            if !b.is_null() {
                spec.insert("backend".into(), backend_from_v1(&b));
            }
        }
        for_each_path_backend(spec, backend_from_v1);
    }
    out
}

/// Every `spec.rules[].http.paths[].backend`, replaced by `convert(backend)`.
fn for_each_path_backend(spec: &mut Map<String, Value>, convert: fn(&Value) -> Value) {
    let rules = spec.get_mut("rules").and_then(Value::as_array_mut);
    for rule in rules.into_iter().flatten() {
        let paths = rule.pointer_mut("/http/paths").and_then(Value::as_array_mut);
        for path in paths.into_iter().flatten() {
            if let Some(b) = path.get_mut("backend") {
                *b = convert(b);
            }
        }
    }
}

/// A beta backend (`serviceName`, `servicePort`, `resource`) as v1's (`service`, `resource`).
pub fn backend_to_v1(b: &Value) -> Value {
    let mut out = b.as_object().cloned().unwrap_or_default();
    let name = out.remove("serviceName");
    let port = out.remove("servicePort");
    let name = name.as_ref().and_then(Value::as_str).unwrap_or("");
    // Go's IntOrString: a JSON string is a string (even "" or "80"), a number is a number.
    let (port_name, port_number) = match &port {
        Some(Value::String(s)) => (Some(s.as_str()), 0),
        Some(Value::Number(n)) => (None, n.as_i64().unwrap_or(0)),
        _ => (None, 0),
    };
    if !name.is_empty() || port_number != 0 || port_name.is_some() {
        let mut p = Map::new();
        if let Some(s) = port_name.filter(|s| !s.is_empty()) {
            p.insert("name".into(), json!(s));
        }
        if port_number != 0 {
            p.insert("number".into(), json!(port_number));
        }
        out.insert("service".into(), json!({"name": name, "port": p}));
    }
    Value::Object(out)
}

/// A v1 backend as the betas show it: a service becomes `serviceName` and `servicePort` (the
/// port's name if it has one, else its number).
pub fn backend_from_v1(b: &Value) -> Value {
    let mut out = b.as_object().cloned().unwrap_or_default();
    let service = out.remove("service");
    if let Some(svc) = service.filter(|s| s.is_object()) {
        let name = svc.get("name").and_then(Value::as_str).unwrap_or("");
        if !name.is_empty() {
            out.insert("serviceName".into(), json!(name));
        }
        let port_name = svc.pointer("/port/name").and_then(Value::as_str).unwrap_or("");
        let port = if port_name.is_empty() {
            json!(svc.pointer("/port/number").and_then(Value::as_i64).unwrap_or(0))
        } else {
            json!(port_name)
        };
        out.insert("servicePort".into(), port);
    } else {
        // The betas' servicePort is a Go struct without omitempty effect: always written.
        out.insert("servicePort".into(), json!(0));
    }
    Value::Object(out)
}

/// The betas' `SetDefaults_HTTPIngressPath` (and v1's): a path without `pathType` is
/// `ImplementationSpecific`. Applies to either form, since paths sit at the same place.
pub fn default_path_types(obj: &mut Value) {
    let rules = obj.pointer_mut("/spec/rules").and_then(Value::as_array_mut);
    for rule in rules.into_iter().flatten() {
        let paths = rule.pointer_mut("/http/paths").and_then(Value::as_array_mut);
        for path in paths.into_iter().flatten() {
            if path.get("pathType").is_none_or(Value::is_null) {
                path["pathType"] = json!("ImplementationSpecific");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seed 001's manifest: an empty path, a numeric servicePort.
    fn seed() -> Value {
        json!({"apiVersion": NETWORKING_V1BETA1, "kind": "Ingress",
               "metadata": {"name": "ingress-nginx", "annotations": {"nginx.ingress.kubernetes.io/rewrite-target": "/"}},
               "spec": {"rules": [{"http": {"paths": [{"path": null, "backend": {"serviceName": "hname-svc-default", "servicePort": 80}}]}}]}})
    }

    #[test]
    fn seed_manifest_becomes_v1_with_service_name_and_port_number() {
        let mut beta = seed();
        default_path_types(&mut beta);
        let v1 = to_v1(&beta);
        assert_eq!(v1["apiVersion"], V1);
        let path = &v1["spec"]["rules"][0]["http"]["paths"][0];
        assert_eq!(
            path["backend"],
            json!({"service": {"name": "hname-svc-default", "port": {"number": 80}}})
        );
        assert_eq!(path["pathType"], "ImplementationSpecific");
        assert_eq!(v1["metadata"], beta["metadata"]);
    }

    #[test]
    fn named_service_port_becomes_port_name() {
        let b = backend_to_v1(&json!({"serviceName": "web", "servicePort": "http"}));
        assert_eq!(b, json!({"service": {"name": "web", "port": {"name": "http"}}}));
    }

    #[test]
    fn default_backend_is_spec_backend_in_the_betas() {
        let beta = json!({"apiVersion": EXTENSIONS_V1BETA1, "kind": "Ingress", "metadata": {"name": "x"},
                          "spec": {"backend": {"serviceName": "fallback", "servicePort": 8080}}});
        let v1 = to_v1(&beta);
        assert_eq!(v1["spec"].get("backend"), None);
        assert_eq!(
            v1["spec"]["defaultBackend"],
            json!({"service": {"name": "fallback", "port": {"number": 8080}}})
        );
        let back = from_v1(&v1, EXTENSIONS_V1BETA1);
        assert_eq!(back, beta);
    }

    #[test]
    fn resource_backend_is_carried_both_ways_without_a_service() {
        let resource = json!({"apiGroup": "k8s.example.com", "kind": "StorageBucket", "name": "static"});
        let v1 = backend_to_v1(&json!({"resource": resource}));
        assert_eq!(v1, json!({"resource": resource}));
        // The betas always write servicePort (a Go struct field), zero without a service.
        assert_eq!(backend_from_v1(&v1), json!({"resource": resource, "servicePort": 0}));
    }

    #[test]
    fn v1_object_reads_back_in_the_beta_asked_for() {
        let v1 = json!({"apiVersion": V1, "kind": "Ingress", "metadata": {"name": "x"},
            "spec": {"ingressClassName": "podway", "tls": [{"hosts": ["a.test"], "secretName": "s"}],
                     "rules": [{"host": "a.test", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "a", "port": {"number": 80}}}},
                        {"path": "/b", "pathType": "Exact", "backend": {"service": {"name": "b", "port": {"name": "web"}}}}]}}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "172.30.0.2"}]}}});
        let beta = from_v1(&v1, NETWORKING_V1BETA1);
        assert_eq!(beta["apiVersion"], NETWORKING_V1BETA1);
        let paths = &beta["spec"]["rules"][0]["http"]["paths"];
        assert_eq!(paths[0]["backend"], json!({"serviceName": "a", "servicePort": 80}));
        assert_eq!(paths[1]["backend"], json!({"serviceName": "b", "servicePort": "web"}));
        assert_eq!(paths[1]["pathType"], "Exact");
        assert_eq!(beta["spec"]["tls"], v1["spec"]["tls"]);
        assert_eq!(beta["status"], v1["status"]);
        // And back again, unchanged.
        assert_eq!(to_v1(&beta), v1);
    }

    #[test]
    fn string_port_counts_as_a_service_even_without_a_name() {
        // Upstream converts when the IntOrString is of string type, whatever its value.
        let b = backend_to_v1(&json!({"servicePort": ""}));
        assert_eq!(b, json!({"service": {"name": "", "port": {}}}));
        assert_eq!(backend_to_v1(&json!({"servicePort": 0})), json!({}));
    }

    #[test]
    fn explicit_path_type_is_kept_by_defaulting() {
        let mut o =
            json!({"spec": {"rules": [{"http": {"paths": [{"path": "/a", "pathType": "Exact"}, {"path": "/b"}]}}]}});
        default_path_types(&mut o);
        assert_eq!(o["spec"]["rules"][0]["http"]["paths"][0]["pathType"], "Exact");
        assert_eq!(
            o["spec"]["rules"][0]["http"]["paths"][1]["pathType"],
            "ImplementationSpecific"
        );
    }
}
