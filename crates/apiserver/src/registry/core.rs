//! Core (`v1`) kinds other than Services: namespaces, nodes, pods, endpoints, configmaps,
//! secrets, serviceaccounts, events.

use std::sync::Arc;

use k8s_openapi::api::core::v1 as core;
use podway_api::validation::FieldError;
use podway_api::workload;
use serde_json::{json, Value};

use super::{check_typed, FieldCheck, ResourceInfo, Strategy, Subresource};

/// A kind with no behaviour beyond the engine's: typed decoding and optional extra fields.
pub(super) struct Basic {
    pub info: ResourceInfo,
    pub check: fn(&Value) -> FieldCheck,
    pub default: fn(&mut Value),
    pub fields: fn(&Value, &str) -> Option<String>,
}

impl Strategy for Basic {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }
    fn check_fields(&self, obj: &Value) -> FieldCheck {
        (self.check)(obj)
    }
    fn default(&self, obj: &mut Value) {
        (self.default)(obj)
    }
    fn field(&self, obj: &Value, field: &str) -> Option<String> {
        (self.fields)(obj, field)
    }
}

/// No defaults.
pub(super) fn no_defaults(_: &mut Value) {}

/// No extra selectable fields.
pub(super) fn no_fields(_: &Value, _: &str) -> Option<String> {
    None
}

/// A `ResourceInfo` with the usual defaults; callers override what differs.
pub(super) const fn info(
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
) -> ResourceInfo {
    ResourceInfo {
        group,
        version: "v1",
        kind,
        plural,
        singular,
        short_names: &[],
        categories: &[],
        namespaced: true,
        subresources: &[],
        uses_generation: false,
        storage_group: "",
    }
}

/// The field at `pointer` as a field selector compares it: "" when absent. Always `Some`, so
/// a strategy that lists a field answers for it on any object.
fn str_at(obj: &Value, pointer: &str) -> Option<String> {
    Some(match obj.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    })
}

pub(super) fn strategies() -> Vec<Arc<dyn Strategy>> {
    vec![
        Arc::new(NamespaceStrategy),
        Arc::new(Basic {
            info: ResourceInfo {
                short_names: &["no"],
                namespaced: false,
                subresources: &[Subresource::Status],
                ..info("", "Node", "nodes", "node")
            },
            check: check_typed::<core::Node>,
            default: no_defaults,
            fields: |o, f| match f {
                "spec.unschedulable" => Some(
                    o.pointer("/spec/unschedulable")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                        .to_string(),
                ),
                _ => None,
            },
        }),
        Arc::new(PodStrategy),
        Arc::new(Basic {
            info: ResourceInfo {
                short_names: &["ep"],
                ..info("", "Endpoints", "endpoints", "endpoints")
            },
            check: check_typed::<core::Endpoints>,
            default: |o| {
                for subset in o.get_mut("subsets").and_then(Value::as_array_mut).into_iter().flatten() {
                    for p in subset
                        .get_mut("ports")
                        .and_then(Value::as_array_mut)
                        .into_iter()
                        .flatten()
                    {
                        if p.get("protocol").is_none() {
                            p["protocol"] = json!("TCP");
                        }
                    }
                }
            },
            fields: no_fields,
        }),
        Arc::new(Basic {
            info: ResourceInfo {
                short_names: &["cm"],
                ..info("", "ConfigMap", "configmaps", "configmap")
            },
            check: check_typed::<core::ConfigMap>,
            default: no_defaults,
            fields: no_fields,
        }),
        Arc::new(Basic {
            info: info("", "Secret", "secrets", "secret"),
            check: check_typed::<core::Secret>,
            default: |o| {
                if o.get("type").is_none_or(Value::is_null) {
                    o["type"] = json!("Opaque");
                }
            },
            fields: |o, f| match f {
                "type" => str_at(o, "/type"),
                _ => None,
            },
        }),
        Arc::new(Basic {
            info: ResourceInfo {
                short_names: &["sa"],
                ..info("", "ServiceAccount", "serviceaccounts", "serviceaccount")
            },
            check: check_typed::<core::ServiceAccount>,
            default: no_defaults,
            fields: no_fields,
        }),
        Arc::new(Basic {
            info: ResourceInfo {
                short_names: &["ev"],
                ..info("", "Event", "events", "event")
            },
            check: check_typed::<core::Event>,
            default: no_defaults,
            fields: event_fields,
        }),
    ]
}

/// Field selectors on events, as `kubectl describe` uses them.
fn event_fields(o: &Value, f: &str) -> Option<String> {
    match f {
        "involvedObject.kind"
        | "involvedObject.namespace"
        | "involvedObject.name"
        | "involvedObject.uid"
        | "involvedObject.apiVersion"
        | "involvedObject.resourceVersion"
        | "involvedObject.fieldPath"
        | "reason"
        | "type"
        | "source"
        | "reportingComponent" => {
            let pointer = format!("/{}", f.replace('.', "/"));
            str_at(o, &pointer)
        }
        _ => None,
    }
}

/// Namespaces: cluster-scoped, phase Active, the `kubernetes` finalizer.
struct NamespaceStrategy;

const NAMESPACE_INFO: ResourceInfo = ResourceInfo {
    short_names: &["ns"],
    namespaced: false,
    subresources: &[Subresource::Status, Subresource::Finalize],
    ..info("", "Namespace", "namespaces", "namespace")
};

impl Strategy for NamespaceStrategy {
    fn info(&self) -> &ResourceInfo {
        &NAMESPACE_INFO
    }
    fn check_fields(&self, obj: &Value) -> FieldCheck {
        check_typed::<core::Namespace>(obj)
    }
    fn default(&self, obj: &mut Value) {
        let name = podway_api::meta::name(obj).to_string();
        let meta = podway_api::meta::metadata_mut(obj);
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if labels.is_object() && !name.is_empty() {
            labels["kubernetes.io/metadata.name"] = json!(name);
        }
    }
    fn prepare_create(&self, obj: &mut Value) {
        obj["status"] = json!({"phase": "Active"});
        obj["spec"] = json!({"finalizers": ["kubernetes"]});
    }
    fn field(&self, obj: &Value, f: &str) -> Option<String> {
        match f {
            "status.phase" => str_at(obj, "/status/phase"),
            _ => None,
        }
    }
}

/// Pods: admission defaults, status on create, node and phase field selectors.
struct PodStrategy;

const POD_INFO: ResourceInfo = ResourceInfo {
    short_names: &["po"],
    categories: &["all"],
    subresources: &[
        Subresource::Status,
        Subresource::Log,
        Subresource::Exec,
        Subresource::PortForward,
        Subresource::Attach,
        Subresource::Binding,
        Subresource::Eviction,
    ],
    ..info("", "Pod", "pods", "pod")
};

impl Strategy for PodStrategy {
    fn info(&self) -> &ResourceInfo {
        &POD_INFO
    }
    fn check_fields(&self, obj: &Value) -> FieldCheck {
        check_typed::<core::Pod>(obj)
    }
    fn default(&self, obj: &mut Value) {
        workload::default_pod(obj);
    }
    fn prepare_create(&self, obj: &mut Value) {
        // A new pod's status is the registry's, not the client's.
        obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
    }
    fn validate_create(&self, obj: &Value) -> Vec<FieldError> {
        match obj.get("spec") {
            Some(spec) => workload::validate_pod_spec(spec, "spec"),
            None => vec![FieldError::required("spec.containers", "")],
        }
    }
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        // Only a few spec fields may change on a running pod (images, activeDeadlineSeconds,
        // tolerations additions); kubectl's flows here never change anything else.
        let strip = |v: &Value| {
            let mut s = v.get("spec").cloned().unwrap_or(Value::Null);
            for c in s
                .get_mut("containers")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(m) = c.as_object_mut() {
                    m.remove("image");
                }
            }
            if let Some(m) = s.as_object_mut() {
                m.remove("activeDeadlineSeconds");
                m.remove("tolerations");
                if old.pointer("/spec/nodeName").is_none_or(|n| n.as_str() == Some("")) {
                    m.remove("nodeName");
                }
            }
            s
        };
        if strip(new) != strip(old) {
            return vec![FieldError::forbidden(
                "spec",
                "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
            )];
        }
        Vec::new()
    }
    fn field(&self, obj: &Value, f: &str) -> Option<String> {
        match f {
            "spec.nodeName" => Some(str_at(obj, "/spec/nodeName").unwrap_or_default()),
            "spec.restartPolicy" => str_at(obj, "/spec/restartPolicy"),
            "spec.schedulerName" => str_at(obj, "/spec/schedulerName"),
            "spec.serviceAccountName" => str_at(obj, "/spec/serviceAccountName"),
            "status.phase" => Some(str_at(obj, "/status/phase").unwrap_or_default()),
            "status.podIP" => Some(str_at(obj, "/status/podIP").unwrap_or_default()),
            "status.nominatedNodeName" => Some(str_at(obj, "/status/nominatedNodeName").unwrap_or_default()),
            _ => None,
        }
    }
}
