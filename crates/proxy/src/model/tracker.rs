//! Change tracking: from snapshots of the watched caches to "which Services changed".
//!
//! The tracker is level-triggered: each sync hands it everything the caches hold, and it
//! compares object by object with what it saw last time (the same `Arc`, then
//! `resourceVersion`, then the content). Relists, missed deletes and bursts therefore need no
//! special case; only Services whose realised ports differ are reported.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::build::{service_ports, slice_service};
use super::{NodeContext, ServicePort, ServiceRef, ServiceTable};

/// How one Service's ports changed between two syncs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceChange {
    /// The Service.
    pub service: ServiceRef,
    /// Its ports before (empty when it is new or had no virtual IP).
    pub previous: Vec<ServicePort>,
    /// Its ports now (empty when it is gone or has no virtual IP).
    pub current: Vec<ServicePort>,
}

struct SeenSlice {
    object: Arc<EndpointSlice>,
    service: Option<ServiceRef>,
}

/// Keeps the [`ServiceTable`] for this node and reports what each sync changed.
pub struct ChangeTracker {
    node: NodeContext,
    table: ServiceTable,
    services: HashMap<ServiceRef, Arc<Service>>,
    slices: HashMap<(String, String), SeenSlice>,
    slices_by_service: HashMap<ServiceRef, BTreeSet<(String, String)>>,
    recompute_all: bool,
}

impl ChangeTracker {
    /// A tracker that has seen nothing yet.
    pub fn new(node: NodeContext) -> Self {
        ChangeTracker {
            node,
            table: ServiceTable::new(),
            services: HashMap::new(),
            slices: HashMap::new(),
            slices_by_service: HashMap::new(),
            recompute_all: false,
        }
    }

    /// The table as of the last [`ChangeTracker::observe`].
    pub fn table(&self) -> &ServiceTable {
        &self.table
    }

    /// Changes who this node is (its name decides which endpoints are local); every Service is
    /// recomputed at the next observe.
    pub fn set_node(&mut self, node: NodeContext) {
        if node != self.node {
            self.node = node;
            self.recompute_all = true;
        }
    }

    /// Takes everything the caches hold now, updates the table and returns the Services whose
    /// ports changed since the previous call, ordered by Service.
    pub fn observe(&mut self, services: &[Arc<Service>], slices: &[Arc<EndpointSlice>]) -> Vec<ServiceChange> {
        let mut dirty = BTreeSet::new();
        let mut next_services = HashMap::with_capacity(services.len());
        for service in services {
            let key = ServiceRef::new(
                service.metadata.namespace.clone().unwrap_or_default(),
                service.metadata.name.clone().unwrap_or_default(),
            );
            match self.services.get(&key) {
                Some(old) if same_object(old, service, |s| s.metadata.resource_version.as_deref()) => {}
                _ => {
                    dirty.insert(key.clone());
                }
            }
            next_services.insert(key, service.clone());
        }
        dirty.extend(
            self.services
                .keys()
                .filter(|k| !next_services.contains_key(*k))
                .cloned(),
        );

        let mut next_slices = HashMap::with_capacity(slices.len());
        for slice in slices {
            let key = (
                slice.metadata.namespace.clone().unwrap_or_default(),
                slice.metadata.name.clone().unwrap_or_default(),
            );
            let service = slice_service(slice);
            match self.slices.get(&key) {
                Some(old) if same_object(&old.object, slice, |s| s.metadata.resource_version.as_deref()) => {}
                old => {
                    dirty.extend(old.and_then(|o| o.service.clone()));
                    dirty.extend(service.clone());
                }
            }
            next_slices.insert(
                key,
                SeenSlice {
                    object: slice.clone(),
                    service,
                },
            );
        }
        for (key, old) in &self.slices {
            if !next_slices.contains_key(key) {
                dirty.extend(old.service.clone());
            }
        }

        self.services = next_services;
        self.slices = next_slices;
        self.slices_by_service.clear();
        for (key, seen) in &self.slices {
            if let Some(service) = &seen.service {
                self.slices_by_service
                    .entry(service.clone())
                    .or_default()
                    .insert(key.clone());
            }
        }
        if std::mem::take(&mut self.recompute_all) {
            dirty.extend(self.services.keys().cloned());
            dirty.extend(self.table.ports().map(|p| p.name.service.clone()));
        }

        let mut changes = Vec::new();
        for service in dirty {
            let current = match self.services.get(&service) {
                Some(object) => {
                    let slices: Vec<&EndpointSlice> = self
                        .slices_by_service
                        .get(&service)
                        .into_iter()
                        .flatten()
                        .filter_map(|k| self.slices.get(k).map(|s| s.object.as_ref()))
                        .collect();
                    service_ports(object, &slices, &self.node)
                }
                None => Vec::new(),
            };
            let previous = self.table.replace_service(&service, current.clone());
            if previous != current {
                changes.push(ServiceChange {
                    service,
                    previous,
                    current,
                });
            }
        }
        changes
    }
}

/// Whether two snapshots of one object are the same version: the same allocation, the same
/// resourceVersion, or (objects built without one, as in tests) equal content.
fn same_object<K: PartialEq>(old: &Arc<K>, new: &Arc<K>, version: impl Fn(&K) -> Option<&str>) -> bool {
    if Arc::ptr_eq(old, new) {
        return true;
    }
    match (version(old), version(new)) {
        (Some(a), Some(b)) => a == b,
        _ => old == new,
    }
}

#[cfg(test)]
#[path = "tracker_tests.rs"]
mod tests;
