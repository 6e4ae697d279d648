//! From a Service to the plain [`Claim`] the allocator reads (pure): which Services this
//! controller manages, and what their annotations ask for.

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;

use super::allocate::{Claim, Port, Requested};

/// The `spec.loadBalancerClass` this controller answers to, besides no class at all.
/// Services naming another class belong to another load balancer and are left alone.
pub const LOAD_BALANCER_CLASS: &str = "podway.dev/lb";

/// The annotations MetalLB reads, current prefix first: MetalLB reads `metallb.io/` before
/// the older `metallb.universe.tf/`, and so do we.
const PREFIXES: [&str; 2] = ["metallb.io/", "metallb.universe.tf/"];

/// Asks for these addresses (comma-separated; podway is IPv4-only, so one).
pub const LOAD_BALANCER_IPS: &str = "metallb.universe.tf/loadBalancerIPs";
/// Asks for an address from this pool.
pub const ADDRESS_POOL: &str = "metallb.universe.tf/address-pool";
/// Lets Services with the same key share an address.
pub const ALLOW_SHARED_IP: &str = "metallb.universe.tf/allow-shared-ip";

/// The annotation `name` (given with the `metallb.universe.tf/` prefix) under either prefix,
/// with the name actually used.
fn annotation<'a>(svc: &'a Service, name: &str) -> Option<(String, &'a str)> {
    let suffix = name.split_once('/').map_or(name, |(_, s)| s);
    let annotations = svc.metadata.annotations.as_ref()?;
    PREFIXES.iter().find_map(|prefix| {
        let key = format!("{prefix}{suffix}");
        annotations.get(&key).map(|v| (key, v.as_str()))
    })
}

fn service_type(svc: &Service) -> &str {
    svc.spec
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("ClusterIP")
}

/// Whether the Service's class is ours: none, or [`LOAD_BALANCER_CLASS`].
fn our_class(svc: &Service) -> bool {
    match svc.spec.as_ref().and_then(|s| s.load_balancer_class.as_deref()) {
        None => true,
        Some(class) => class == LOAD_BALANCER_CLASS,
    }
}

/// Whether this controller hands the Service an address.
pub fn is_managed(svc: &Service) -> bool {
    service_type(svc) == "LoadBalancer" && our_class(svc)
}

/// The addresses the Service's status shows; empty when any entry is not an IPv4 address
/// (then the status is rewritten whole).
pub fn ingress_ips(svc: &Service) -> Vec<Ipv4Addr> {
    let entries = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref());
    let mut ips = Vec::new();
    for e in entries.into_iter().flatten() {
        match e.ip.as_deref().and_then(|ip| ip.parse().ok()) {
            Some(ip) => ips.push(ip),
            None => return Vec::new(),
        }
    }
    ips
}

/// Whether the Service is no LoadBalancer (any more) but still shows an ingress address that
/// can only be ours: its status must be cleared.
pub fn needs_clearing(svc: &Service) -> bool {
    service_type(svc) != "LoadBalancer"
        && our_class(svc)
        && svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .is_some_and(|i| !i.is_empty())
}

/// What the Service asks for: the annotation or `spec.loadBalancerIP`, not both (MetalLB's
/// `getDesiredLbIPs`, with its messages).
fn requested(svc: &Service) -> Requested {
    let spec_ip = svc
        .spec
        .as_ref()
        .and_then(|s| s.load_balancer_ip.as_deref())
        .filter(|s| !s.is_empty());
    let ann = annotation(svc, LOAD_BALANCER_IPS).filter(|(_, v)| !v.is_empty());
    match (ann, spec_ip) {
        (None, None) => Requested::Any,
        (Some((key, _)), Some(_)) => {
            Requested::Invalid(format!("service can not have both {key} and svc.Spec.LoadBalancerIP"))
        }
        (Some((key, value)), None) => {
            let mut ips = Vec::new();
            for part in value.split(',') {
                match part.trim().parse::<std::net::IpAddr>() {
                    Ok(ip) => ips.push(ip),
                    Err(_) => return Requested::Invalid(format!("invalid {key}: {value:?}")),
                }
            }
            one_v4(&ips)
        }
        (None, Some(ip)) => match ip.parse::<std::net::IpAddr>() {
            Ok(ip) => one_v4(&[ip]),
            Err(_) => Requested::Invalid(format!("invalid spec.loadBalancerIP {ip:?}")),
        },
    }
}

/// One IPv4 address, or why the request does not fit a single-stack IPv4 Service.
fn one_v4(ips: &[std::net::IpAddr]) -> Requested {
    match ips {
        [std::net::IpAddr::V4(ip)] => Requested::Ip(*ip),
        _ => {
            let quoted: Vec<String> = ips.iter().map(|ip| format!("{:?}", ip.to_string())).collect();
            Requested::Invalid(format!(
                "requested loadBalancer IP(s) [{}] does not match the ipFamily of the service",
                quoted.join(" ")
            ))
        }
    }
}

/// The backend key: the selector (`k=v,...`, keys sorted) when `externalTrafficPolicy` is
/// `Local`, since one node answers for a shared address and must hold every Service's pods.
fn backend_key(svc: &Service) -> String {
    let Some(spec) = svc.spec.as_ref() else {
        return String::new();
    };
    if spec.external_traffic_policy.as_deref() != Some("Local") {
        return String::new();
    }
    let selector: Vec<String> = spec
        .selector
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    selector.join(",")
}

/// The claim of a Service [`is_managed`] says is ours, with `current` its status addresses.
pub fn claim(svc: &Service, current: Vec<Ipv4Addr>) -> Claim {
    let ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
        .map(|p| Port {
            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_string()),
            port: p.port,
        })
        .collect();
    Claim {
        key: format!(
            "{}/{}",
            svc.metadata.namespace.as_deref().unwrap_or_default(),
            svc.metadata.name.as_deref().unwrap_or_default()
        ),
        current,
        requested: requested(svc),
        pool: annotation(svc, ADDRESS_POOL)
            .map(|(_, v)| v.to_string())
            .filter(|v| !v.is_empty()),
        sharing_key: annotation(svc, ALLOW_SHARED_IP)
            .map(|(_, v)| v.to_string())
            .unwrap_or_default(),
        backend_key: backend_key(svc),
        ports,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(spec: serde_json::Value, annotations: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "annotations": annotations},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn only_load_balancers_without_a_class_or_with_ours_are_managed() {
        let cases = [
            (json!({"type": "LoadBalancer"}), true),
            (
                json!({"type": "LoadBalancer", "loadBalancerClass": "podway.dev/lb"}),
                true,
            ),
            (
                json!({"type": "LoadBalancer", "loadBalancerClass": "example.com/other"}),
                false,
            ),
            (json!({"type": "NodePort"}), false),
            (json!({}), false),
        ];
        for (spec, managed) in cases {
            assert_eq!(is_managed(&svc(spec.clone(), json!({}))), managed, "{spec}");
        }
    }

    #[test]
    fn the_requested_address_comes_from_the_spec_or_either_annotation_prefix() {
        let cases = [
            (json!({}), json!({}), Requested::Any),
            (json!({"loadBalancerIP": ""}), json!({}), Requested::Any),
            (
                json!({"loadBalancerIP": "10.0.0.5"}),
                json!({}),
                Requested::Ip("10.0.0.5".parse().unwrap()),
            ),
            (
                json!({}),
                json!({"metallb.universe.tf/loadBalancerIPs": "10.0.0.6"}),
                Requested::Ip("10.0.0.6".parse().unwrap()),
            ),
            (
                json!({}),
                json!({"metallb.io/loadBalancerIPs": " 10.0.0.7 "}),
                Requested::Ip("10.0.0.7".parse().unwrap()),
            ),
            (
                json!({"loadBalancerIP": "10.0.0.5"}),
                json!({"metallb.universe.tf/loadBalancerIPs": "10.0.0.6"}),
                Requested::Invalid(
                    "service can not have both metallb.universe.tf/loadBalancerIPs and svc.Spec.LoadBalancerIP".into(),
                ),
            ),
            (
                json!({"loadBalancerIP": "ten"}),
                json!({}),
                Requested::Invalid("invalid spec.loadBalancerIP \"ten\"".into()),
            ),
            (
                json!({}),
                json!({"metallb.universe.tf/loadBalancerIPs": "10.0.0.1,fd00::1"}),
                Requested::Invalid(
                    "requested loadBalancer IP(s) [\"10.0.0.1\" \"fd00::1\"] does not match the ipFamily of the service"
                        .into(),
                ),
            ),
        ];
        for (spec, annotations, want) in cases {
            let mut spec = spec;
            spec["type"] = json!("LoadBalancer");
            assert_eq!(
                claim(&svc(spec.clone(), annotations.clone()), vec![]).requested,
                want,
                "{spec} {annotations}"
            );
        }
    }

    #[test]
    fn a_local_service_is_keyed_by_its_selector_and_a_cluster_one_by_nothing() {
        let spec = json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
            "selector": {"tier": "web", "app": "shop"},
            "ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]});
        let c = claim(
            &svc(
                spec,
                json!({"metallb.universe.tf/allow-shared-ip": "k", "metallb.io/address-pool": "lab"}),
            ),
            vec![],
        );
        assert_eq!(c.key, "shop/web");
        assert_eq!(c.backend_key, "app=shop,tier=web");
        assert_eq!(c.sharing_key, "k");
        assert_eq!(c.pool.as_deref(), Some("lab"));
        assert_eq!(c.ports[0].to_string(), "TCP/80");
        assert_eq!(c.ports[1].to_string(), "UDP/53");
        let cluster = claim(
            &svc(json!({"type": "LoadBalancer", "selector": {"a": "b"}}), json!({})),
            vec![],
        );
        assert_eq!(cluster.backend_key, "");
    }

    #[test]
    fn a_service_that_stopped_being_a_load_balancer_but_shows_an_address_is_cleared() {
        let mut s = svc(json!({"type": "ClusterIP"}), json!({}));
        s.status = serde_json::from_value(json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}})).unwrap();
        assert!(needs_clearing(&s));
        assert_eq!(ingress_ips(&s), vec!["10.0.0.1".parse::<Ipv4Addr>().unwrap()]);
        s.status = serde_json::from_value(json!({"loadBalancer": {}})).unwrap();
        assert!(!needs_clearing(&s));
    }
}
