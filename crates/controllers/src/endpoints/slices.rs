//! Which EndpointSlices to create, update and delete so a Service's slices hold the
//! desired groups: pure, given the Service, the groups and the slices we manage today.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::compute::{
    SliceGroup, HEADLESS_LABEL, MANAGED_BY, MANAGED_BY_LABEL, MAX_ENDPOINTS_PER_SLICE, SERVICE_NAME_LABEL,
};
use crate::podutil::controller_ref;

/// The writes that bring a Service's slices to the desired state.
#[derive(Debug, Default)]
pub struct SlicePlan {
    /// New slices (named by `generateName: <service>-`).
    pub create: Vec<EndpointSlice>,
    /// Existing slices with new content (carrying their resourceVersion).
    pub update: Vec<EndpointSlice>,
    /// Names of slices to delete.
    pub delete: Vec<String>,
}

/// Labels of the Service's slices: the Service's own, plus the service name, our
/// managed-by marker and the headless marker.
pub fn slice_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut l = svc.metadata.labels.clone().unwrap_or_default();
    l.remove(SERVICE_NAME_LABEL);
    l.remove(MANAGED_BY_LABEL);
    l.remove(HEADLESS_LABEL);
    l.insert(SERVICE_NAME_LABEL.into(), svc.metadata.name.clone().unwrap_or_default());
    l.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    if svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
        l.insert(HEADLESS_LABEL.into(), String::new());
    }
    l
}

fn ports_key(s: &EndpointSlice) -> (String, Vec<k8s_openapi::api::discovery::v1::EndpointPort>) {
    (s.address_type.clone(), s.ports.clone().unwrap_or_default())
}

/// Plans the slices: each group is cut into slices of at most 100 endpoints; each chunk
/// reuses a managed slice with the same address type and ports when one is free. A Service
/// with no endpoints keeps one empty placeholder slice, as upstream does.
pub fn plan_slices(svc: &Service, groups: &[SliceGroup], existing: &[&EndpointSlice]) -> SlicePlan {
    let labels = slice_labels(svc);
    let owner = controller_ref(svc);
    let mut chunks: Vec<(String, Vec<_>, Vec<_>)> = Vec::new();
    for g in groups {
        for c in g.endpoints.chunks(MAX_ENDPOINTS_PER_SLICE) {
            chunks.push((g.address_type.clone(), g.ports.clone(), c.to_vec()));
        }
    }
    if chunks.is_empty() {
        let family = svc
            .spec
            .as_ref()
            .and_then(|s| s.ip_families.as_ref())
            .and_then(|f| f.first().cloned())
            .unwrap_or_else(|| "IPv4".into());
        chunks.push((family, Vec::new(), Vec::new()));
    }
    let mut free: Vec<&EndpointSlice> = existing.to_vec();
    free.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut plan = SlicePlan::default();
    for (address_type, ports, endpoints) in chunks {
        let key = (address_type.clone(), ports.clone());
        if let Some(pos) = free.iter().position(|s| ports_key(s) == key) {
            let cur = free.remove(pos);
            let owned = cur
                .metadata
                .owner_references
                .as_ref()
                .is_some_and(|r| r.iter().any(|r| r.uid == owner.uid));
            if cur.endpoints != endpoints || cur.metadata.labels.as_ref() != Some(&labels) || !owned {
                let mut s = cur.clone();
                s.endpoints = endpoints;
                s.ports = Some(ports);
                s.metadata.labels = Some(labels.clone());
                if !owned {
                    s.metadata.owner_references = Some(vec![owner.clone()]);
                }
                plan.update.push(s);
            }
            continue;
        }
        plan.create.push(EndpointSlice {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-", svc.metadata.name.clone().unwrap_or_default())),
                namespace: svc.metadata.namespace.clone(),
                labels: Some(labels.clone()),
                owner_references: Some(vec![owner.clone()]),
                ..Default::default()
            },
            address_type,
            endpoints,
            ports: Some(ports),
        });
    }
    plan.delete = free.into_iter().filter_map(|s| s.metadata.name.clone()).collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort};

    fn svc() -> Service {
        let mut s = Service::default();
        s.metadata.name = Some("web".into());
        s.metadata.namespace = Some("default".into());
        s.metadata.uid = Some("svc-uid".into());
        s.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
        s
    }

    fn group(ips: &[&str]) -> SliceGroup {
        SliceGroup {
            address_type: "IPv4".into(),
            ports: vec![EndpointPort {
                name: Some(String::new()),
                port: Some(80),
                protocol: Some("TCP".into()),
                app_protocol: None,
            }],
            endpoints: ips
                .iter()
                .map(|ip| Endpoint {
                    addresses: vec![ip.to_string()],
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[test]
    fn a_new_service_gets_one_slice_named_after_it_with_the_standard_labels() {
        let plan = plan_slices(&svc(), &[group(&["10.0.0.1"])], &[]);
        assert_eq!(plan.create.len(), 1);
        let s = &plan.create[0];
        assert_eq!(s.metadata.generate_name.as_deref(), Some("web-"));
        let l = s.metadata.labels.as_ref().unwrap();
        assert_eq!(l[SERVICE_NAME_LABEL], "web");
        assert_eq!(l[MANAGED_BY_LABEL], "endpointslice-controller.k8s.io");
        assert_eq!(l["app"], "web");
        assert_eq!(s.ports.as_ref().unwrap()[0].name.as_deref(), Some(""));
        assert_eq!(s.metadata.owner_references.as_ref().unwrap()[0].uid, "svc-uid");
    }

    #[test]
    fn an_unchanged_slice_is_left_alone_and_a_changed_one_updated_in_place() {
        let first = plan_slices(&svc(), &[group(&["10.0.0.1"])], &[]);
        let mut existing = first.create[0].clone();
        existing.metadata.name = Some("web-abcde".into());
        let same = plan_slices(&svc(), &[group(&["10.0.0.1"])], &[&existing]);
        assert!(same.create.is_empty() && same.update.is_empty() && same.delete.is_empty());
        let changed = plan_slices(&svc(), &[group(&["10.0.0.1", "10.0.0.2"])], &[&existing]);
        assert_eq!(changed.update.len(), 1);
        assert_eq!(changed.update[0].metadata.name.as_deref(), Some("web-abcde"));
        assert_eq!(changed.update[0].endpoints.len(), 2);
    }

    #[test]
    fn more_than_a_hundred_endpoints_spill_into_a_second_slice() {
        let ips: Vec<String> = (0..150).map(|i| format!("10.0.{}.{}", i / 200, i % 200)).collect();
        let refs: Vec<&str> = ips.iter().map(String::as_str).collect();
        let plan = plan_slices(&svc(), &[group(&refs)], &[]);
        let sizes: Vec<usize> = plan.create.iter().map(|s| s.endpoints.len()).collect();
        assert_eq!(sizes, vec![100, 50]);
    }

    #[test]
    fn no_endpoints_leave_one_empty_placeholder_and_delete_the_rest() {
        let first = plan_slices(&svc(), &[group(&["10.0.0.1"])], &[]);
        let mut existing = first.create[0].clone();
        existing.metadata.name = Some("web-abcde".into());
        let plan = plan_slices(&svc(), &[], &[&existing]);
        assert_eq!(plan.create.len(), 1);
        assert!(plan.create[0].endpoints.is_empty());
        assert_eq!(plan.delete, vec!["web-abcde".to_string()]);
    }
}
