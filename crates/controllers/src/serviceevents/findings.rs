//! What is wrong with a Service's wiring to its pods, as plain data (pure).
//!
//! Upstream has no Event for either condition: the endpoints and EndpointSlice controllers
//! only log (`klog`) a named targetPort they cannot find, and a selector that matches nothing
//! silently yields empty Endpoints. The reasons below are podway's own, named in upstream's
//! UpperCamelCase style so `kubectl describe svc` reads like the rest of Kubernetes.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use podway_api::selector::LabelSelector as Selector;

use crate::endpoints::compute::find_port;
use crate::events::EventType;
use crate::podutil;

/// `reason` when a Service's selector selects no pod.
pub const NO_MATCHING_PODS: &str = "NoMatchingPods";
/// `reason` when a Service port's targetPort is not among the selected pods' container ports.
pub const TARGET_PORT_NOT_DECLARED: &str = "TargetPortNotDeclared";

/// One condition worth an Event. Two findings are the same condition when they are equal, so
/// a changed message (say, a different selector) counts as a new condition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Finding {
    /// Warning when traffic cannot flow, Normal when it flows but is probably not meant to.
    pub type_: EventType,
    /// [`NO_MATCHING_PODS`] or [`TARGET_PORT_NOT_DECLARED`].
    pub reason: &'static str,
    /// What is wrong and what follows from it.
    pub message: String,
}

/// The findings for `svc` given the pods of its namespace (any order; pods of other
/// namespaces are ignored). Services without a selector (their Endpoints are the user's) and
/// ExternalName Services (no endpoints at all) have none.
pub fn findings(svc: &Service, pods: &[&Pod]) -> Vec<Finding> {
    let Some(spec) = svc.spec.as_ref() else {
        return Vec::new();
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        return Vec::new();
    }
    let Some(selector) = spec.selector.as_ref().filter(|s| !s.is_empty()) else {
        return Vec::new();
    };
    let namespace = svc.metadata.namespace.as_deref().unwrap_or_default();
    let matcher = Selector::from_map(selector);
    // Pending pods count: a pod that is still starting will become an endpoint, and warning
    // about it would be noise. Finished pods never will.
    let selected: Vec<&Pod> = pods
        .iter()
        .copied()
        .filter(|p| p.metadata.namespace.as_deref().unwrap_or_default() == namespace)
        .filter(|p| !matches!(podutil::phase(p), "Succeeded" | "Failed"))
        .filter(|p| matcher.matches(&podutil::labels(&p.metadata)))
        .collect();
    if selected.is_empty() {
        return vec![Finding {
            type_: EventType::Warning,
            reason: NO_MATCHING_PODS,
            message: format!(
                "No pods in namespace {namespace} match selector {}; the Service has no endpoints",
                selector_string(selector)
            ),
        }];
    }
    spec.ports
        .iter()
        .flatten()
        .filter_map(|sp| target_port_finding(sp, &selected))
        .collect()
}

fn target_port_finding(sp: &ServicePort, selected: &[&Pod]) -> Option<Finding> {
    let protocol = sp.protocol.as_deref().unwrap_or("TCP");
    let port = match sp.name.as_deref().filter(|n| !n.is_empty()) {
        Some(name) => format!("port {name} ({}/{protocol})", sp.port),
        None => format!("port {}/{protocol}", sp.port),
    };
    match target(sp) {
        Target::Named(name) => {
            // A name is resolved per pod exactly as the endpoints controller does; a pod that
            // does not declare it is left out of the Service, so nothing declaring it means
            // this port has no endpoints at all: a Warning.
            if selected.iter().any(|p| find_port(p, sp).is_some()) {
                return None;
            }
            Some(Finding {
                type_: EventType::Warning,
                reason: TARGET_PORT_NOT_DECLARED,
                message: format!(
                    "targetPort \"{name}\" of {port} is not declared by any selected pod's containers; \
                     this port has no endpoints"
                ),
            })
        }
        Target::Number(n) => {
            // A number is used as is: `containerPort` is informational, and traffic reaches
            // whatever listens on it whether declared or not. So this is Normal, not Warning,
            // and only when the pods declare other ports (a likely typo, such as targetPort 8080
            // beside a declared 80). Pods declaring no ports at all are the common, legal case
            // (`kubectl create deployment` without `--port`) and get no Event.
            let declared: Vec<(i32, String)> = selected.iter().flat_map(|p| declared_ports(p)).collect();
            if declared.is_empty() || declared.iter().any(|(p, proto)| *p == n && proto == protocol) {
                return None;
            }
            let mut list: Vec<String> = declared.iter().map(|(p, proto)| format!("{p}/{proto}")).collect();
            list.sort();
            list.dedup();
            Some(Finding {
                type_: EventType::Normal,
                reason: TARGET_PORT_NOT_DECLARED,
                message: format!(
                    "targetPort {n} of {port} is not declared by any selected pod's containers (they declare {}); \
                     traffic is still sent to port {n}",
                    list.join(", ")
                ),
            })
        }
    }
}

enum Target {
    Named(String),
    Number(i32),
}

/// The targetPort as upstream reads it: unset or 0 means `port`, a numeric string a number.
fn target(sp: &ServicePort) -> Target {
    match sp.target_port.as_ref() {
        None | Some(IntOrString::Int(0)) => Target::Number(sp.port),
        Some(IntOrString::Int(n)) => Target::Number(*n),
        Some(IntOrString::String(s)) => match s.parse::<i32>() {
            Ok(n) => Target::Number(n),
            Err(_) => Target::Named(s.clone()),
        },
    }
}

/// Container ports of the pod's containers and sidecars (init containers that keep running).
fn declared_ports(pod: &Pod) -> Vec<(i32, String)> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c: &Container| c.ports.iter().flatten())
        .map(|p| (p.container_port, p.protocol.clone().unwrap_or_else(|| "TCP".into())))
        .collect()
}

/// `k=v,k2=v2`, sorted by key, as `kubectl describe` prints a selector.
fn selector_string(selector: &BTreeMap<String, String>) -> String {
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
#[path = "findings_tests.rs"]
mod tests;
