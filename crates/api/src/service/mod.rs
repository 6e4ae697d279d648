//! Services as the real API server treats them: defaulting (`SetDefaults_Service`), the
//! registry strategy's preparation of creates and updates, and validation with Kubernetes'
//! exact messages.
//!
//! Allocation of cluster IPs and node ports lives in the API server (`alloc`); it relies on
//! the helpers here. The order a create follows, as in kube-apiserver:
//! [`default_service`], [`prepare_for_create`], allocation (which also normalizes
//! `clusterIPs` and fills `ipFamilies`/`ipFamilyPolicy`), then [`validate_service`].
//! An update: [`default_service`], [`prepare_for_update`], allocation, then
//! [`validate_service_update`].

use k8s_openapi::api::core::v1::Service;

mod cluster_ips;
mod defaults;
mod strategy;
mod update;
mod validate;

pub use cluster_ips::validate_cluster_ips_related_fields;
pub use defaults::default_service;
pub use strategy::{normalize_cluster_ips, patch_allocated_values, prepare_for_create, prepare_for_update};
pub use update::validate_service_update;
pub use validate::validate_service;

/// The `clusterIP` of a headless Service.
pub const CLUSTER_IP_NONE: &str = "None";

/// `spec.type`, or `""` when unset (Go's zero value).
pub fn service_type(svc: &Service) -> &str {
    svc.spec.as_ref().and_then(|s| s.type_.as_deref()).unwrap_or("")
}

/// `spec.clusterIPs`, empty when unset.
pub fn cluster_ips(svc: &Service) -> &[String] {
    svc.spec.as_ref().and_then(|s| s.cluster_ips.as_deref()).unwrap_or(&[])
}

/// `spec.clusterIP`, or `""`.
pub fn cluster_ip(svc: &Service) -> &str {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()).unwrap_or("")
}

/// Headless: `clusterIPs` is exactly `["None"]`.
pub fn is_headless(svc: &Service) -> bool {
    matches!(cluster_ips(svc), [only] if only == CLUSTER_IP_NONE)
}

/// Reachable from outside the cluster: NodePort, LoadBalancer, or ClusterIP with
/// `externalIPs` (`ExternallyAccessible` in Kubernetes).
pub fn externally_accessible(svc: &Service) -> bool {
    match service_type(svc) {
        "NodePort" | "LoadBalancer" => true,
        "ClusterIP" => svc
            .spec
            .as_ref()
            .and_then(|s| s.external_ips.as_ref())
            .is_some_and(|ips| !ips.is_empty()),
        _ => false,
    }
}

/// A LoadBalancer with `externalTrafficPolicy: Local` needs a `healthCheckNodePort`.
pub fn needs_health_check(svc: &Service) -> bool {
    service_type(svc) == "LoadBalancer"
        && svc.spec.as_ref().and_then(|s| s.external_traffic_policy.as_deref()) == Some("Local")
}

/// The nonzero `nodePort`s of `spec.ports`, in port order (duplicates kept).
pub fn node_ports(svc: &Service) -> Vec<i32> {
    svc.spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .map(|ports| ports.iter().filter_map(|p| p.node_port.filter(|n| *n != 0)).collect())
        .unwrap_or_default()
}

/// `spec.healthCheckNodePort`, 0 when unset.
pub fn health_check_node_port(svc: &Service) -> i32 {
    svc.spec.as_ref().and_then(|s| s.health_check_node_port).unwrap_or(0)
}
