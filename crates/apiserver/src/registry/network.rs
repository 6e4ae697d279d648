//! `networking.k8s.io/v1` IngressClasses and `discovery.k8s.io/v1` EndpointSlices; Ingresses, in
//! all their versions, have `ingress/`.

use std::sync::Arc;

use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::api::networking::v1 as networking;
use serde_json::{json, Value};

use super::core::{info, no_defaults, no_fields, Basic};
use super::{check_typed, ResourceInfo, Strategy};

pub(super) fn strategies() -> Vec<Arc<dyn Strategy>> {
    vec![
        Arc::new(Basic {
            info: ResourceInfo {
                ..info("discovery.k8s.io", "EndpointSlice", "endpointslices", "endpointslice")
            },
            check: check_typed::<discovery::EndpointSlice>,
            default: |o| {
                // Every port carries a name ("" included): kubectl describe dereferences it.
                for p in o.get_mut("ports").and_then(Value::as_array_mut).into_iter().flatten() {
                    if p.get("name").is_none() {
                        p["name"] = json!("");
                    }
                    if p.get("protocol").is_none() {
                        p["protocol"] = json!("TCP");
                    }
                }
            },
            fields: no_fields,
        }),
        super::ingress::v1(),
        Arc::new(Basic {
            info: ResourceInfo {
                namespaced: false,
                uses_generation: true,
                ..info("networking.k8s.io", "IngressClass", "ingressclasses", "ingressclass")
            },
            check: check_typed::<networking::IngressClass>,
            default: no_defaults,
            fields: no_fields,
        }),
    ]
}
