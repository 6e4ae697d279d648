//! `SetDefaults_Service` (pkg/apis/core/v1/defaults.go), applied when a Service is decoded.

use k8s_openapi::api::core::v1::{ClientIPConfig, LoadBalancerStatus, Service, ServiceStatus, SessionAffinityConfig};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::externally_accessible;

/// Seconds a ClientIP affinity lasts unless told otherwise (`DefaultClientIPServiceAffinitySeconds`).
pub const DEFAULT_CLIENT_IP_AFFINITY_SECONDS: i32 = 10800;

/// Fills what Kubernetes fills when it decodes a Service: `type: ClusterIP`,
/// `sessionAffinity: None` (dropping any config) or a ClientIP config with 10800 s,
/// port `protocol: TCP` and `targetPort` = `port`, `externalTrafficPolicy: Cluster` for
/// externally reachable Services, `internalTrafficPolicy: Cluster` (not for ExternalName),
/// `allocateLoadBalancerNodePorts: true` for LoadBalancer, `ipMode: VIP` on LoadBalancer
/// ingress IPs, and an empty `status.loadBalancer`.
///
/// Not done here, because the real server does them in the allocator, which knows the
/// cluster's IP families: `clusterIPs` from `clusterIP`, `ipFamilies` and
/// `ipFamilyPolicy`. Idempotent.
pub fn default_service(svc: &mut Service) {
    let spec = svc.spec.get_or_insert_with(Default::default);

    if spec.session_affinity.as_deref().unwrap_or("").is_empty() {
        spec.session_affinity = Some("None".into());
    }
    match spec.session_affinity.as_deref() {
        Some("None") => spec.session_affinity_config = None,
        Some("ClientIP") => {
            let has_timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .is_some();
            if !has_timeout {
                spec.session_affinity_config = Some(SessionAffinityConfig {
                    client_ip: Some(ClientIPConfig {
                        timeout_seconds: Some(DEFAULT_CLIENT_IP_AFFINITY_SECONDS),
                    }),
                });
            }
        }
        _ => {}
    }

    if spec.type_.as_deref().unwrap_or("").is_empty() {
        spec.type_ = Some("ClusterIP".into());
    }

    for port in spec.ports.iter_mut().flatten() {
        if port.protocol.as_deref().unwrap_or("").is_empty() {
            port.protocol = Some("TCP".into());
        }
        let unset = match &port.target_port {
            None => true,
            Some(IntOrString::Int(0)) => true,
            Some(IntOrString::String(s)) => s.is_empty(),
            Some(IntOrString::Int(_)) => false,
        };
        if unset {
            port.target_port = Some(IntOrString::Int(port.port));
        }
    }

    let ty = spec.type_.clone().unwrap_or_default();
    if externally_accessible(svc) {
        let spec = svc.spec.as_mut().expect("spec was just set");
        if spec.external_traffic_policy.as_deref().unwrap_or("").is_empty() {
            spec.external_traffic_policy = Some("Cluster".into());
        }
    }
    let spec = svc.spec.as_mut().expect("spec was just set");

    // A pointer in Go: only an absent value is defaulted; an explicit "" stays and is
    // rejected by validation, as in Kubernetes.
    if spec.internal_traffic_policy.is_none() && matches!(ty.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
        spec.internal_traffic_policy = Some("Cluster".into());
    }

    if ty == "LoadBalancer" && spec.allocate_load_balancer_node_ports.is_none() {
        spec.allocate_load_balancer_node_ports = Some(true);
    }

    let status = svc.status.get_or_insert_with(ServiceStatus::default);
    let lb = status.load_balancer.get_or_insert_with(LoadBalancerStatus::default);
    if ty == "LoadBalancer" {
        for ingress in lb.ingress.iter_mut().flatten() {
            if ingress.ip.as_deref().is_some_and(|ip| !ip.is_empty()) && ingress.ip_mode.is_none() {
                ingress.ip_mode = Some("VIP".into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn bare_service_becomes_cluster_ip_with_tcp_and_target_port() {
        let mut s =
            svc(json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}}}));
        default_service(&mut s);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["spec"]["type"], "ClusterIP");
        assert_eq!(v["spec"]["sessionAffinity"], "None");
        assert_eq!(v["spec"]["internalTrafficPolicy"], "Cluster");
        assert_eq!(v["spec"]["ports"][0]["protocol"], "TCP");
        assert_eq!(v["spec"]["ports"][0]["targetPort"], 80);
        assert!(v["spec"].get("externalTrafficPolicy").is_none());
        assert_eq!(v["status"], json!({"loadBalancer": {}}));
    }

    #[test]
    fn load_balancer_gets_external_policy_and_node_port_allocation() {
        let mut s = svc(json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80, "targetPort": "http"}]}}));
        default_service(&mut s);
        let spec = s.spec.as_ref().unwrap();
        assert_eq!(spec.external_traffic_policy.as_deref(), Some("Cluster"));
        assert_eq!(spec.allocate_load_balancer_node_ports, Some(true));
        assert_eq!(
            spec.ports.as_ref().unwrap()[0].target_port,
            Some(IntOrString::String("http".into()))
        );
    }

    #[test]
    fn external_name_gets_no_internal_traffic_policy() {
        let mut s = svc(json!({"spec": {"type": "ExternalName", "externalName": "example.com"}}));
        default_service(&mut s);
        let spec = s.spec.as_ref().unwrap();
        assert_eq!(spec.internal_traffic_policy, None);
        assert_eq!(spec.external_traffic_policy, None);
    }

    #[test]
    fn client_ip_affinity_gets_three_hour_timeout() {
        let mut s = svc(json!({"spec": {"sessionAffinity": "ClientIP", "ports": [{"port": 80}]}}));
        default_service(&mut s);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v["spec"]["sessionAffinityConfig"],
            json!({"clientIP": {"timeoutSeconds": 10800}})
        );
    }

    #[test]
    fn none_affinity_drops_its_config() {
        let mut s = svc(json!({"spec": {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}}}));
        default_service(&mut s);
        assert!(s.spec.unwrap().session_affinity_config.is_none());
    }

    #[test]
    fn cluster_ip_with_external_ips_gets_external_policy() {
        let mut s = svc(json!({"spec": {"externalIPs": ["192.0.2.1"], "ports": [{"port": 80}]}}));
        default_service(&mut s);
        assert_eq!(s.spec.unwrap().external_traffic_policy.as_deref(), Some("Cluster"));
    }
}
