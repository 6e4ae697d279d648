//! Services: defaulting, validation and ClusterIP / NodePort allocation.
//!
//! Allocation state lives in memory behind a mutex and is rebuilt from the stored Services at
//! start ([`Strategy::restore`]), so it survives restarts without a separate record. Every
//! create reserves under the lock before the store write and rolls back if the write fails;
//! two concurrent creates can never get the same IP or port.

use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Service;
use podway_api::service;
use podway_api::status::ApiError;
use podway_api::validation::FieldError;
use serde_json::Value;

use super::core::info;
use super::{check_typed, FieldCheck, Reservation, ResourceInfo, Strategy, Subresource};
use crate::alloc::ServiceAllocator;

/// The service network and the NodePort range.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// The ClusterIP range, e.g. `10.96.0.0/12`.
    pub cluster_ip_range: String,
    /// The NodePort range, inclusive, e.g. `(30000, 32767)`.
    pub node_port_range: (u16, u16),
}

impl Default for ServiceSettings {
    fn default() -> Self {
        ServiceSettings {
            cluster_ip_range: "10.96.0.0/12".into(),
            node_port_range: (30000, 32767),
        }
    }
}

pub(super) struct ServiceStrategy {
    alloc: Arc<Mutex<ServiceAllocator>>,
}

const SERVICE_INFO: ResourceInfo = ResourceInfo {
    short_names: &["svc"],
    categories: &["all"],
    subresources: &[Subresource::Status],
    ..info("", "Service", "services", "service")
};

impl ServiceStrategy {
    pub(super) fn new(settings: ServiceSettings) -> Self {
        let ports = format!("{}-{}", settings.node_port_range.0, settings.node_port_range.1);
        let alloc = ServiceAllocator::new(&settings.cluster_ip_range, &ports)
            .expect("service settings are checked by the caller");
        ServiceStrategy {
            alloc: Arc::new(Mutex::new(alloc)),
        }
    }
}

fn typed(obj: &Value) -> Result<Service, ApiError> {
    serde_json::from_value(obj.clone()).map_err(|e| ApiError::bad_request(format!("Service cannot be decoded: {e}")))
}

fn write_back(obj: &mut Value, svc: &Service) {
    if let Ok(v) = serde_json::to_value(svc) {
        *obj = v;
    }
}

impl Strategy for ServiceStrategy {
    fn info(&self) -> &ResourceInfo {
        &SERVICE_INFO
    }
    fn check_fields(&self, obj: &Value) -> FieldCheck {
        check_typed::<Service>(obj)
    }
    fn default(&self, obj: &mut Value) {
        if let Ok(mut svc) = typed(obj) {
            service::default_service(&mut svc);
            write_back(obj, &svc);
        }
    }
    fn prepare_create(&self, obj: &mut Value) {
        if let Ok(mut svc) = typed(obj) {
            service::prepare_for_create(&mut svc);
            write_back(obj, &svc);
        }
        obj["status"] = serde_json::json!({"loadBalancer": {}});
    }
    fn prepare_update(&self, new: &mut Value, old: &Value) {
        if let (Ok(mut n), Ok(o)) = (typed(new), typed(old)) {
            service::prepare_for_update(&mut n, &o);
            write_back(new, &n);
        }
    }
    fn validate_create(&self, obj: &Value) -> Vec<FieldError> {
        typed(obj).map(|s| service::validate_service(&s)).unwrap_or_default()
    }
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        match (typed(new), typed(old)) {
            (Ok(n), Ok(o)) => service::validate_service_update(&n, &o),
            _ => Vec::new(),
        }
    }
    fn allocate_create(&self, obj: &mut Value) -> Result<Option<Reservation>, ApiError> {
        let mut svc = typed(obj)?;
        let name = podway_api::meta::name(obj).to_string();
        let allocated = {
            let mut alloc = self.alloc.lock().expect("allocator lock");
            alloc.allocate_create(&mut svc).map_err(|e| e.into_api_error(&name))?
        };
        write_back(obj, &svc);
        let alloc = self.alloc.clone();
        Ok(Some(Reservation::new(
            || {},
            move || alloc.lock().expect("allocator lock").release(&allocated),
        )))
    }
    fn allocate_update(&self, new: &mut Value, old: &Value) -> Result<Option<Reservation>, ApiError> {
        let mut svc = typed(new)?;
        let old_svc = typed(old)?;
        let name = podway_api::meta::name(new).to_string();
        let pending = {
            let mut alloc = self.alloc.lock().expect("allocator lock");
            alloc
                .allocate_update(&old_svc, &mut svc)
                .map_err(|e| e.into_api_error(&name))?
        };
        write_back(new, &svc);
        let (on_commit, on_rollback) = (self.alloc.clone(), self.alloc.clone());
        let (p1, p2) = (pending.clone(), pending);
        Ok(Some(Reservation::new(
            move || on_commit.lock().expect("allocator lock").commit(p1),
            move || on_rollback.lock().expect("allocator lock").rollback(p2),
        )))
    }
    fn release(&self, obj: &Value) {
        if let Ok(old) = typed(obj) {
            self.alloc.lock().expect("allocator lock").release_service(&old);
        }
    }
    fn restore(&self, objects: &[Value]) {
        let services: Vec<Service> = objects.iter().filter_map(|o| typed(o).ok()).collect();
        self.alloc.lock().expect("allocator lock").restore(&services);
    }
    fn field(&self, obj: &Value, f: &str) -> Option<String> {
        match f {
            "spec.clusterIP" => Some(
                obj.pointer("/spec/clusterIP")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            ),
            "spec.type" => Some(
                obj.pointer("/spec/type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            ),
            _ => None,
        }
    }
}
