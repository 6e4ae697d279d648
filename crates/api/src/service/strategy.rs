//! What the Service registry does to an object between decoding and validation: the
//! strategy's `PrepareForCreate`/`PrepareForUpdate` (pkg/registry/core/service/strategy.go)
//! and the storage layer's `normalizeClusterIPs`/`patchAllocatedValues`
//! (pkg/registry/core/service/storage/storage.go).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{LoadBalancerStatus, Service, ServiceStatus};

use super::{cluster_ip, cluster_ips, externally_accessible, health_check_node_port, needs_health_check, service_type};

/// A create starts with an empty status: `status: {loadBalancer: {}}`.
pub fn prepare_for_create(svc: &mut Service) {
    svc.status = Some(ServiceStatus {
        load_balancer: Some(LoadBalancerStatus::default()),
        ..Default::default()
    });
}

/// An update keeps the stored status, and wipes fields that the type change makes
/// meaningless when the user left them as they were (`dropTypeDependentFields`): cluster
/// IPs and families when becoming ExternalName, node ports when leaving NodePort and
/// LoadBalancer, the health-check port, `allocateLoadBalancerNodePorts`,
/// `loadBalancerClass`, `externalTrafficPolicy`, and the load-balancer status.
pub fn prepare_for_update(new: &mut Service, old: &Service) {
    new.status = old.status.clone();
    drop_type_dependent_fields(new, old);
}

fn needs_cluster_ip(svc: &Service) -> bool {
    service_type(svc) != "ExternalName"
}

fn needs_node_port(svc: &Service) -> bool {
    matches!(service_type(svc), "NodePort" | "LoadBalancer")
}

fn same_node_ports(old: &Service, new: &Service) -> bool {
    let bag = |svc: &Service| -> BTreeMap<String, i32> {
        svc.spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    format!("{}/{}", p.protocol.as_deref().unwrap_or(""), p.port),
                    p.node_port.unwrap_or(0),
                )
            })
            .collect()
    };
    let (old_ports, new_ports) = (bag(old), bag(new));
    new_ports.iter().all(|(key, np)| match old_ports.get(key) {
        Some(old_np) => old_np == np,
        None => *np == 0,
    })
}

fn drop_type_dependent_fields(new: &mut Service, old: &Service) {
    let old_spec = old.spec.clone().unwrap_or_default();
    let same_ips = cluster_ips(old) == cluster_ips(new);
    let drop_ips = needs_cluster_ip(old) && !needs_cluster_ip(new);
    let drop_node_ports = needs_node_port(old) && !needs_node_port(new) && same_node_ports(old, new);
    let drop_hc = needs_health_check(old)
        && !needs_health_check(new)
        && health_check_node_port(old) == health_check_node_port(new);
    let was_lb = service_type(old) == "LoadBalancer";
    let is_lb = service_type(new) == "LoadBalancer";
    let drop_etp = externally_accessible(old) && !externally_accessible(new);

    let spec = new.spec.get_or_insert_with(Default::default);
    if drop_ips {
        if same_ips {
            spec.cluster_ip = None;
            spec.cluster_ips = None;
        }
        if spec.ip_families.as_deref().unwrap_or(&[]) == old_spec.ip_families.as_deref().unwrap_or(&[]) {
            spec.ip_families = None;
        }
        if spec.ip_family_policy == old_spec.ip_family_policy {
            spec.ip_family_policy = None;
        }
    }
    if drop_node_ports {
        for p in spec.ports.iter_mut().flatten() {
            p.node_port = None;
        }
    }
    if drop_hc {
        spec.health_check_node_port = None;
    }
    if was_lb && !is_lb {
        if spec.allocate_load_balancer_node_ports.is_some()
            && spec.allocate_load_balancer_node_ports == old_spec.allocate_load_balancer_node_ports
        {
            spec.allocate_load_balancer_node_ports = None;
        }
        if spec.load_balancer_class == old_spec.load_balancer_class {
            spec.load_balancer_class = None;
        }
    }
    if drop_etp && spec.external_traffic_policy == old_spec.external_traffic_policy {
        spec.external_traffic_policy = None;
    }
    if !is_lb {
        new.status.get_or_insert_with(Default::default).load_balancer = Some(LoadBalancerStatus::default());
    }
}

/// Keeps `clusterIP` and `clusterIPs` in step (`normalizeClusterIPs`). On create (`old` is
/// `None`) a lone `clusterIP` is copied into `clusterIPs`. On update, an old client that
/// dropped `clusterIPs` gets them back, clearing `clusterIP` clears `clusterIPs` too, and a
/// changed `clusterIP` with untouched `clusterIPs` replaces them (validation then says the
/// IP may not change).
pub fn normalize_cluster_ips(new: &mut Service, old: Option<&Service>) {
    let new_ip = cluster_ip(new).to_string();
    let new_ips = cluster_ips(new).to_vec();
    let spec = new.spec.get_or_insert_with(Default::default);
    let Some(old) = old else {
        if !new_ip.is_empty() && new_ips.is_empty() {
            spec.cluster_ips = Some(vec![new_ip]);
        }
        return;
    };
    let old_ip = cluster_ip(old);
    let old_ips = cluster_ips(old);
    if !old_ips.is_empty() && new_ips.is_empty() && old_ip == new_ip {
        spec.cluster_ips = Some(old_ips.to_vec());
    }
    let current: Vec<String> = spec.cluster_ips.clone().unwrap_or_default();
    if old_ip != new_ip {
        let same = current.as_slice() == old_ips;
        if !old_ip.is_empty() && new_ip.is_empty() {
            if same {
                spec.cluster_ips = None;
            }
        } else if same {
            spec.cluster_ips = Some(vec![new_ip]);
        }
    }
}

/// Fills values the server allocated that a full replace (PUT) left out, so that
/// re-sending a manifest does not change them (`patchAllocatedValues`): the cluster IPs,
/// node ports matched by port name (unless another port now uses them), and the
/// health-check port.
pub fn patch_allocated_values(new: &mut Service, old: &Service) {
    let both_ip = needs_cluster_ip(old) && needs_cluster_ip(new);
    let both_np = needs_node_port(old) && needs_node_port(new);
    let both_hc = needs_health_check(old) && needs_health_check(new);
    let old_spec = old.spec.clone().unwrap_or_default();
    let spec = new.spec.get_or_insert_with(Default::default);

    if both_ip {
        if spec.cluster_ip.as_deref().unwrap_or("").is_empty() {
            spec.cluster_ip = old_spec.cluster_ip.clone();
        }
        if spec.cluster_ips.as_deref().unwrap_or(&[]).is_empty()
            && !old_spec.cluster_ips.as_deref().unwrap_or(&[]).is_empty()
        {
            spec.cluster_ips = old_spec.cluster_ips.clone();
        }
    }

    if both_np {
        let used = |ports: &Option<Vec<k8s_openapi::api::core::v1::ServicePort>>| -> BTreeSet<i32> {
            ports
                .iter()
                .flatten()
                .filter_map(|p| p.node_port.filter(|n| *n != 0))
                .collect()
        };
        let old_used = used(&old_spec.ports);
        let new_used = used(&spec.ports);
        let in_both: BTreeSet<i32> = old_used.intersection(&new_used).copied().collect();
        let by_name: BTreeMap<String, i32> = old_spec
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.clone().unwrap_or_default(), p.node_port.unwrap_or(0)))
            .collect();
        for p in spec.ports.iter_mut().flatten() {
            if p.node_port.unwrap_or(0) == 0 {
                let old_val = by_name.get(p.name.as_deref().unwrap_or("")).copied().unwrap_or(0);
                if !in_both.contains(&old_val) && old_val != 0 {
                    p.node_port = Some(old_val);
                }
            }
        }
    }

    if both_hc && spec.health_check_node_port.unwrap_or(0) == 0 {
        spec.health_check_node_port = old_spec.health_check_node_port;
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
    fn create_copies_cluster_ip_into_cluster_ips() {
        let mut s = svc(json!({"spec": {"clusterIP": "10.96.0.10"}}));
        normalize_cluster_ips(&mut s, None);
        assert_eq!(s.spec.unwrap().cluster_ips, Some(vec!["10.96.0.10".to_string()]));
    }

    #[test]
    fn update_restores_cluster_ips_an_old_client_dropped() {
        let old = svc(json!({"spec": {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"]}}));
        let mut new = svc(json!({"spec": {"clusterIP": "10.96.0.10"}}));
        normalize_cluster_ips(&mut new, Some(&old));
        assert_eq!(cluster_ips(&new), ["10.96.0.10".to_string()]);
    }

    #[test]
    fn update_with_changed_cluster_ip_replaces_untouched_cluster_ips() {
        let old = svc(json!({"spec": {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"]}}));
        let mut new = svc(json!({"spec": {"clusterIP": "10.96.0.11", "clusterIPs": ["10.96.0.10"]}}));
        normalize_cluster_ips(&mut new, Some(&old));
        assert_eq!(cluster_ips(&new), ["10.96.0.11".to_string()]);
    }

    #[test]
    fn replace_without_allocated_values_keeps_them() {
        let old = svc(
            json!({"spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
            "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}}),
        );
        let mut new = svc(json!({"spec": {"type": "NodePort", "ports": [{"name": "http", "port": 80}]}}));
        patch_allocated_values(&mut new, &old);
        let spec = new.spec.unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("10.96.0.10"));
        assert_eq!(spec.ports.unwrap()[0].node_port, Some(30080));
    }

    #[test]
    fn becoming_cluster_ip_drops_unchanged_node_ports_and_policy() {
        let old = svc(json!({"spec": {"type": "NodePort", "externalTrafficPolicy": "Cluster",
            "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}}));
        let mut new = old.clone();
        new.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
        prepare_for_update(&mut new, &old);
        let spec = new.spec.unwrap();
        assert_eq!(spec.ports.unwrap()[0].node_port, None);
        assert_eq!(spec.external_traffic_policy, None);
    }

    #[test]
    fn becoming_external_name_drops_unchanged_cluster_ips() {
        let old = svc(
            json!({"spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}}),
        );
        let mut new = old.clone();
        let spec = new.spec.as_mut().unwrap();
        spec.type_ = Some("ExternalName".into());
        spec.external_name = Some("example.com".into());
        prepare_for_update(&mut new, &old);
        let spec = new.spec.unwrap();
        assert_eq!(
            (
                spec.cluster_ip,
                spec.cluster_ips,
                spec.ip_families,
                spec.ip_family_policy
            ),
            (None, None, None, None)
        );
    }
}
