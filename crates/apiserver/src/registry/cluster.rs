//! Cluster bookkeeping kinds: `coordination.k8s.io/v1` Leases and `events.k8s.io/v1` Events.

use std::sync::Arc;

use k8s_openapi::api::coordination::v1 as coordination;
use k8s_openapi::api::events::v1 as events;

use super::core::{info, no_defaults, no_fields, Basic};
use super::{check_typed, ResourceInfo, Strategy};

pub(super) fn strategies() -> Vec<Arc<dyn Strategy>> {
    vec![
        Arc::new(Basic {
            info: info("coordination.k8s.io", "Lease", "leases", "lease"),
            check: check_typed::<coordination::Lease>,
            default: no_defaults,
            fields: no_fields,
        }),
        Arc::new(Basic {
            info: ResourceInfo { short_names: &["ev"], ..info("events.k8s.io", "Event", "events", "event") },
            check: check_typed::<events::Event>,
            default: no_defaults,
            fields: no_fields,
        }),
    ]
}
