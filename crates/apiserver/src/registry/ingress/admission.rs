//! Upstream's `DefaultIngressClass` admission plugin: a new Ingress that names no class (neither
//! `spec.ingressClassName` nor the old `kubernetes.io/ingress.class` annotation) gets the default
//! IngressClass, the one annotated `ingressclass.kubernetes.io/is-default-class: "true"`. With
//! several defaults the newest wins (ties: the first name), as since Kubernetes 1.28. Only
//! creates are defaulted; an update never changes the class.

use std::sync::Arc;

use podway_api::meta;
use serde_json::{json, Value};

/// The annotation marking an IngressClass as the cluster's default.
pub const IS_DEFAULT_CLASS: &str = "ingressclass.kubernetes.io/is-default-class";
/// The annotation that named an Ingress's class before `spec.ingressClassName`.
pub const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// The name of the default IngressClass among `classes`, if any.
pub fn default_class(classes: &[Arc<Value>]) -> Option<String> {
    let mut defaults: Vec<&Value> = classes
        .iter()
        .map(|c| c.as_ref())
        .filter(|c| meta::annotations(c).get(IS_DEFAULT_CLASS).map(String::as_str) == Some("true"))
        .collect();
    // RFC 3339 timestamps in one format order as strings do.
    let created = |c: &Value| {
        c.pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    defaults.sort_by(|a, b| {
        created(b)
            .cmp(&created(a))
            .then_with(|| meta::name(a).cmp(meta::name(b)))
    });
    defaults.first().map(|c| meta::name(c).to_string())
}

/// Sets `spec.ingressClassName` of a new Ingress that names no class to the default class.
pub fn admit(ingress: &mut Value, classes: &[Arc<Value>]) {
    let named = ingress.pointer("/spec/ingressClassName").is_some_and(|v| !v.is_null());
    if named || meta::annotations(ingress).contains_key(CLASS_ANNOTATION) {
        return;
    }
    let Some(class) = default_class(classes) else { return };
    match ingress.get_mut("spec").and_then(Value::as_object_mut) {
        Some(spec) => {
            spec.insert("ingressClassName".into(), json!(class));
        }
        None => ingress["spec"] = json!({"ingressClassName": class}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, default: bool, created: &str) -> Arc<Value> {
        let mut c = json!({"metadata": {"name": name, "creationTimestamp": created}, "spec": {"controller": "x/y"}});
        if default {
            c["metadata"]["annotations"] = json!({IS_DEFAULT_CLASS: "true"});
        }
        Arc::new(c)
    }

    #[test]
    fn ingress_without_class_gets_the_default_class() {
        let classes = [
            class("other", false, "2026-01-01T00:00:00Z"),
            class("podway", true, "2026-01-01T00:00:00Z"),
        ];
        let mut ing = json!({"metadata": {"name": "i"}, "spec": {"rules": []}});
        admit(&mut ing, &classes);
        assert_eq!(ing["spec"]["ingressClassName"], "podway");
    }

    #[test]
    fn named_class_or_class_annotation_is_left_alone() {
        let classes = [class("podway", true, "2026-01-01T00:00:00Z")];
        let mut named = json!({"metadata": {"name": "i"}, "spec": {"ingressClassName": "nginx"}});
        admit(&mut named, &classes);
        assert_eq!(named["spec"]["ingressClassName"], "nginx");
        let mut annotated = json!({"metadata": {"name": "i", "annotations": {CLASS_ANNOTATION: "nginx"}}, "spec": {}});
        admit(&mut annotated, &classes);
        assert_eq!(annotated["spec"].get("ingressClassName"), None);
    }

    #[test]
    fn without_a_default_class_nothing_is_set() {
        let mut ing = json!({"metadata": {"name": "i"}});
        admit(&mut ing, &[class("podway", false, "2026-01-01T00:00:00Z")]);
        assert_eq!(ing.get("spec"), None);
    }

    #[test]
    fn of_several_defaults_the_newest_then_the_first_name_wins() {
        let classes = [
            class("b-old", true, "2025-01-01T00:00:00Z"),
            class("d-new", true, "2026-02-01T00:00:00Z"),
            class("c-new", true, "2026-02-01T00:00:00Z"),
        ];
        assert_eq!(default_class(&classes).as_deref(), Some("c-new"));
    }
}
