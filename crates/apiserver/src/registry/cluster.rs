//! Cluster bookkeeping kinds: `coordination.k8s.io/v1` Leases and `events.k8s.io/v1` Events.

use std::sync::Arc;

use k8s_openapi::api::coordination::v1 as coordination;
use k8s_openapi::api::events::v1 as events;

use serde_json::Value;

use super::core::{info, no_defaults, no_fields, Basic};
use super::{check_typed, FieldCheck, ResourceInfo, Strategy};

pub(super) fn strategies() -> Vec<Arc<dyn Strategy>> {
    vec![
        Arc::new(Basic {
            info: info("coordination.k8s.io", "Lease", "leases", "lease"),
            check: check_typed::<coordination::Lease>,
            default: no_defaults,
            fields: no_fields,
        }),
        Arc::new(EventsView),
    ]
}

/// events.k8s.io/v1 Events: the core Events, seen with the newer field names.
struct EventsView;

const EVENTS_INFO: ResourceInfo = ResourceInfo {
    short_names: &["ev"],
    storage_group: "core",
    ..info("events.k8s.io", "Event", "events", "event")
};

impl Strategy for EventsView {
    fn info(&self) -> &ResourceInfo {
        &EVENTS_INFO
    }
    fn check_fields(&self, obj: &Value) -> FieldCheck {
        check_typed::<events::Event>(obj)
    }
    fn view_to_storage(&self, obj: Value) -> Value {
        podway_api::events::events_to_core(&obj)
    }
    fn storage_to_view(&self, obj: Value) -> Value {
        podway_api::events::core_to_events(&obj)
    }
    fn field(&self, obj: &Value, f: &str) -> Option<String> {
        let pointer = format!("/{}", f.replace('.', "/"));
        match f {
            "regarding.kind"
            | "regarding.name"
            | "regarding.namespace"
            | "regarding.uid"
            | "reason"
            | "type"
            | "reportingController" => Some(obj.pointer(&pointer).and_then(Value::as_str).unwrap_or("").to_string()),
            _ => None,
        }
    }
}
