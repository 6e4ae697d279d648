//! `apps/v1`: Deployments and ReplicaSets.

use std::sync::Arc;

use k8s_openapi::api::apps::v1 as apps;
use podway_api::validation::FieldError;
use podway_api::workload;
use serde_json::Value;

use super::core::info;
use super::{check_typed, FieldCheck, ResourceInfo, Strategy, Subresource};

struct Replicated {
    info: ResourceInfo,
    check: fn(&Value) -> FieldCheck,
    default: fn(&mut Value),
}

impl Strategy for Replicated {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }
    fn check_fields(&self, obj: &Value) -> FieldCheck {
        (self.check)(obj)
    }
    fn default(&self, obj: &mut Value) {
        (self.default)(obj)
    }
    fn validate_create(&self, obj: &Value) -> Vec<FieldError> {
        workload::validate_replicated(obj)
    }
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = workload::validate_replicated(new);
        if new.pointer("/spec/selector") != old.pointer("/spec/selector") {
            errs.push(FieldError::invalid(
                "spec.selector",
                new.pointer("/spec/selector").cloned().unwrap_or(Value::Null),
                "field is immutable",
            ));
        }
        errs
    }
}

pub(super) fn strategies() -> Vec<Arc<dyn Strategy>> {
    vec![
        Arc::new(Replicated {
            info: ResourceInfo {
                short_names: &["deploy"],
                categories: &["all"],
                subresources: &[Subresource::Status, Subresource::Scale],
                uses_generation: true,
                ..info("apps", "Deployment", "deployments", "deployment")
            },
            check: check_typed::<apps::Deployment>,
            default: workload::default_deployment,
        }),
        Arc::new(Replicated {
            info: ResourceInfo {
                short_names: &["rs"],
                categories: &["all"],
                subresources: &[Subresource::Status, Subresource::Scale],
                uses_generation: true,
                ..info("apps", "ReplicaSet", "replicasets", "replicaset")
            },
            check: check_typed::<apps::ReplicaSet>,
            default: workload::default_replicaset,
        }),
    ]
}
