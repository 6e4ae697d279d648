//! The pure part of the Ingress status controller: whose status we own, and what it should say.

use std::borrow::Borrow;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};

/// The IngressClass podway creates at bootstrap.
pub const CLASS: &str = "podway";
/// `spec.controller` of the classes podway's Ingress controller serves.
pub const CONTROLLER: &str = "podway.dev/ingress-controller";
/// The annotation that named an Ingress's class before `spec.ingressClassName`.
const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// The annotation marking the default IngressClass.
const IS_DEFAULT_CLASS: &str = "ingressclass.kubernetes.io/is-default-class";

/// Whether `ingress` is served by podway's controller: its class (by `spec.ingressClassName`,
/// else the old annotation) is one whose controller is [`CONTROLLER`]; or it names no class
/// and one of ours is the default (Ingresses made before the default existed).
pub fn is_ours(ingress: &Ingress, classes: &[impl Borrow<IngressClass>]) -> bool {
    let ours = |name: &str| {
        classes.iter().map(Borrow::<IngressClass>::borrow).any(|c| {
            c.metadata.name.as_deref() == Some(name)
                && c.spec.as_ref().and_then(|s| s.controller.as_deref()) == Some(CONTROLLER)
        })
    };
    let named = ingress.spec.as_ref().and_then(|s| s.ingress_class_name.as_deref());
    let annotated = ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CLASS_ANNOTATION))
        .map(String::as_str);
    match named.or(annotated) {
        Some(name) => ours(name),
        None => classes.iter().map(Borrow::<IngressClass>::borrow).any(|c| {
            let default = c.metadata.annotations.as_ref().and_then(|a| a.get(IS_DEFAULT_CLASS));
            default.is_some_and(|v| v == "true") && ours(c.metadata.name.as_deref().unwrap_or(""))
        }),
    }
}

/// The InternalIPs of the Ready nodes, sorted (numerically) and without repeats: where every
/// node's Ingress listener answers.
pub fn node_addresses(nodes: &[impl Borrow<Node>]) -> Vec<String> {
    let mut ips: Vec<IpAddr> = nodes
        .iter()
        .map(Borrow::<Node>::borrow)
        .filter(|n| is_ready(n))
        .flat_map(|n| {
            let addresses = n.status.as_ref().and_then(|s| s.addresses.as_ref());
            addresses
                .into_iter()
                .flatten()
                .filter(|a| a.type_ == "InternalIP")
                .filter_map(|a| a.address.parse::<IpAddr>().ok())
        })
        .collect();
    ips.sort();
    ips.dedup();
    ips.iter().map(ToString::to_string).collect()
}

fn is_ready(node: &Node) -> bool {
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// The addresses an Ingress's status shows now (IPs, in order; hostnames are ignored).
pub fn shown_addresses(ingress: &Ingress) -> Vec<String> {
    let lb = ingress.status.as_ref().and_then(|s| s.load_balancer.as_ref());
    let entries = lb.and_then(|l| l.ingress.as_ref());
    entries.into_iter().flatten().filter_map(|e| e.ip.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, ip: &str, ready: &str) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name}, "status": {
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": ready}]}}))
        .unwrap()
    }

    fn class(name: &str, controller: &str, default: bool) -> IngressClass {
        let mut c = json!({"metadata": {"name": name}, "spec": {"controller": controller}});
        if default {
            c["metadata"]["annotations"] = json!({IS_DEFAULT_CLASS: "true"});
        }
        serde_json::from_value(c).unwrap()
    }

    fn ingress(class: Option<&str>, annotation: Option<&str>) -> Ingress {
        let mut i = json!({"metadata": {"name": "i", "namespace": "default"}, "spec": {}});
        if let Some(c) = class {
            i["spec"]["ingressClassName"] = json!(c);
        }
        if let Some(a) = annotation {
            i["metadata"]["annotations"] = json!({CLASS_ANNOTATION: a});
        }
        serde_json::from_value(i).unwrap()
    }

    #[test]
    fn ready_nodes_internal_ips_are_sorted_numerically() {
        let nodes = vec![
            node("c", "172.30.0.10", "True"),
            node("a", "172.30.0.9", "True"),
            node("b", "172.30.0.3", "False"),
        ];
        assert_eq!(node_addresses(&nodes), ["172.30.0.9", "172.30.0.10"]);
    }

    #[test]
    fn no_ready_node_means_no_address() {
        assert!(node_addresses(&[node("a", "172.30.0.2", "Unknown")]).is_empty());
    }

    #[test]
    fn class_podway_by_name_or_annotation_is_ours_and_another_class_is_not() {
        let classes = vec![
            class(CLASS, CONTROLLER, true),
            class("nginx", "k8s.io/ingress-nginx", false),
        ];
        assert!(is_ours(&ingress(Some(CLASS), None), &classes));
        assert!(is_ours(&ingress(None, Some(CLASS)), &classes));
        assert!(!is_ours(&ingress(Some("nginx"), None), &classes));
        assert!(!is_ours(&ingress(Some("missing"), None), &classes));
    }

    #[test]
    fn classless_ingress_is_ours_only_while_our_class_is_default() {
        let default = vec![class(CLASS, CONTROLLER, true)];
        let not_default = vec![class(CLASS, CONTROLLER, false)];
        assert!(is_ours(&ingress(None, None), &default));
        assert!(!is_ours(&ingress(None, None), &not_default));
    }

    #[test]
    fn shown_addresses_reads_the_status_ips() {
        let i: Ingress = serde_json::from_value(json!({"metadata": {"name": "i"},
            "status": {"loadBalancer": {"ingress": [{"ip": "172.30.0.2"}, {"hostname": "x"}]}}}))
        .unwrap();
        assert_eq!(shown_addresses(&i), ["172.30.0.2"]);
    }
}
