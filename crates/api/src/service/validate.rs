//! `ValidateService` and `ValidateServiceUpdate` (pkg/apis/core/validation/validation.go),
//! message for message.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Service, ServicePort, SessionAffinityConfig};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::{cluster_ips, externally_accessible, is_headless, needs_health_check, service_type, CLUSTER_IP_NONE};
use crate::validation::{
    go_slice, is_dns1123_label, is_dns1123_subdomain, is_valid_port_name, is_valid_port_num, parse_ip_sloppy,
    validate_cidr, validate_ip, validate_labels, validate_object_meta, validate_qualified_name, FieldError,
    FieldErrorKind, NameRule,
};

/// Longest ClientIP affinity (`MaxClientIPServiceAffinitySeconds`): one day.
const MAX_CLIENT_IP_AFFINITY_SECONDS: i32 = 86400;
const TOPOLOGY_HINTS_ANNOTATION: &str = "service.kubernetes.io/topology-aware-hints";
const TOPOLOGY_MODE_ANNOTATION: &str = "service.kubernetes.io/topology-mode";
const LB_SOURCE_RANGES_ANNOTATION: &str = "service.beta.kubernetes.io/load-balancer-source-ranges";

pub(super) fn s(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

pub(super) fn text(v: &str) -> Value {
    Value::String(v.to_string())
}

/// `[]string{"10.0.10.10"}`, how Kubernetes prints `clusterIPs` in errors.
pub(super) fn ips_go(svc: &Service) -> String {
    go_slice("string", svc.spec.as_ref().and_then(|s| s.cluster_ips.as_deref()))
}

pub(super) fn go_invalid(field: impl Into<String>, go_value: String, detail: &str) -> FieldError {
    FieldError::with_go_value(FieldErrorKind::Invalid, field, go_value, detail)
}

/// Checks a Service the way `ValidateService` does. Run after defaulting and allocation:
/// an unallocated Service (no `ipFamilies`, no `clusterIPs`) passes the IP checks, as in
/// Kubernetes, but one that skipped defaulting fails on `type`, `sessionAffinity` and the
/// traffic policies. Node port ranges are the allocator's business, not checked here.
pub fn validate_service(svc: &Service) -> Vec<FieldError> {
    let meta = serde_json::to_value(&svc.metadata).unwrap_or(Value::Null);
    let mut errs = validate_object_meta(&meta, true, NameRule::Dns1035Label);
    let spec = svc.spec.clone().unwrap_or_default();
    let annotations = svc.metadata.annotations.clone().unwrap_or_default();
    let ty = service_type(svc);
    let headless = is_headless(svc);
    let ports: Vec<ServicePort> = spec.ports.clone().unwrap_or_default();

    if let (Some(mode), Some(hints)) = (
        annotations.get(TOPOLOGY_MODE_ANNOTATION),
        annotations.get(TOPOLOGY_HINTS_ANNOTATION),
    ) {
        if mode != hints {
            errs.push(FieldError::invalid(
                format!("metadata.annotations[{TOPOLOGY_MODE_ANNOTATION}]"),
                text(mode),
                format!("must match annotations[{TOPOLOGY_HINTS_ANNOTATION}] when both are specified"),
            ));
        }
    }

    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    match ty {
        "LoadBalancer" | "NodePort" if headless => {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                text(CLUSTER_IP_NONE),
                format!("may not be set to 'None' for {ty} services"),
            ));
        }
        "ExternalName" => {
            if !cluster_ips(svc).is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                ));
            }
            if !spec.ip_families.as_deref().unwrap_or(&[]).is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_family_policy.is_some() {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                ));
            }
            // A CNAME target may end with a dot to say it is fully qualified.
            let cname = s(&spec.external_name)
                .strip_suffix('.')
                .unwrap_or(s(&spec.external_name));
            if cname.is_empty() {
                errs.push(FieldError::required("spec.externalName", ""));
            } else {
                for m in is_dns1123_subdomain(cname) {
                    errs.push(FieldError::invalid("spec.externalName", text(cname), m));
                }
            }
        }
        _ => {}
    }

    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        errs.extend(validate_service_port(
            port,
            ports.len() > 1,
            &mut names,
            &format!("spec.ports[{i}]"),
        ));
    }

    if let Some(selector) = &spec.selector {
        errs.extend(validate_labels("spec.selector", selector));
    }

    let affinity = s(&spec.session_affinity);
    if affinity.is_empty() {
        errs.push(FieldError::required("spec.sessionAffinity", ""));
    } else if !matches!(affinity, "ClientIP" | "None") {
        errs.push(FieldError::not_supported(
            "spec.sessionAffinity",
            text(affinity),
            &["ClientIP", "None"],
        ));
    }
    if affinity == "ClientIP" {
        errs.extend(validate_client_ip_affinity(spec.session_affinity_config.as_ref()));
    } else if affinity == "None" && spec.session_affinity_config.is_some() {
        errs.push(FieldError::forbidden(
            "spec.sessionAffinityConfig",
            "must not be set when session affinity is None",
        ));
    }

    errs.extend(super::cluster_ips::validate_cluster_ips_related_fields(svc));

    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        let field = format!("spec.externalIPs[{i}]");
        let bad = validate_ip(&field, ip);
        if bad.is_empty() {
            errs.extend(validate_non_special_ip(&field, ip));
        } else {
            errs.extend(bad);
        }
    }

    if ty.is_empty() {
        errs.push(FieldError::required("spec.type", ""));
    } else if !matches!(ty, "ClusterIP" | "ExternalName" | "LoadBalancer" | "NodePort") {
        errs.push(FieldError::not_supported(
            "spec.type",
            text(ty),
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ));
    }

    if ty == "ClusterIP" {
        for (i, port) in ports.iter().enumerate() {
            if port.node_port.unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    format!("spec.ports[{i}].nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }

    // One nodePort per protocol: TCP and UDP may share a number.
    let mut seen_node_ports = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let np = port.node_port.unwrap_or(0);
        if np == 0 {
            continue;
        }
        if !seen_node_ports.insert((s(&port.protocol).to_string(), np)) {
            errs.push(FieldError::duplicate(
                format!("spec.ports[{i}].nodePort"),
                Value::from(np),
            ));
        }
    }

    let mut seen_ports = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let protocol = s(&port.protocol).to_string();
        if !seen_ports.insert((protocol.clone(), port.port)) {
            // Kubernetes prints the internal key struct with Go's %#v.
            let key = format!(
                "core.ServicePort{{Name:\"\", Protocol:{protocol:?}, AppProtocol:(*string)(nil), Port:{}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                port.port
            );
            errs.push(FieldError::with_go_value(
                FieldErrorKind::Duplicate,
                format!("spec.ports[{i}]"),
                key,
                "",
            ));
        }
    }

    let ranges = spec.load_balancer_source_ranges.clone().unwrap_or_default();
    if !ranges.is_empty() {
        // The capital L is Kubernetes' own.
        let field = "spec.LoadBalancerSourceRanges";
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                field,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        for (i, value) in ranges.iter().enumerate() {
            errs.extend(validate_cidr(&format!("{field}[{i}]"), value.trim()));
        }
    } else if let Some(value) = annotations.get(LB_SOURCE_RANGES_ANNOTATION) {
        let field = format!("metadata.annotations[{LB_SOURCE_RANGES_ANNOTATION}]");
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                &field,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        let value = value.trim();
        if !value.is_empty() {
            for cidr in value.split(',') {
                errs.extend(validate_cidr(&field, cidr.trim()));
            }
        }
    }

    if spec.allocate_load_balancer_node_ports.is_some() && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if ty == "LoadBalancer" && spec.allocate_load_balancer_node_ports.is_none() {
        // Kubernetes reports this one without the `spec.` prefix.
        errs.push(FieldError::required("allocateLoadBalancerNodePorts", ""));
    }

    errs.extend(validate_load_balancer_class(None, svc));
    errs.extend(validate_external_traffic_policy(svc));
    errs.extend(validate_internal_traffic_policy(svc));

    if let Some(td) = &spec.traffic_distribution {
        if td != "PreferClose" {
            errs.push(FieldError::not_supported(
                "spec.trafficDistribution",
                text(td),
                &["PreferClose"],
            ));
        }
    }
    errs
}

fn validate_service_port(
    port: &ServicePort,
    require_name: bool,
    names: &mut BTreeSet<String>,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = s(&port.name);
    if require_name && name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    } else if !name.is_empty() {
        for m in is_dns1123_label(name) {
            errs.push(FieldError::invalid(format!("{path}.name"), text(name), m));
        }
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(format!("{path}.name"), text(name)));
        }
    }
    for m in is_valid_port_num(port.port.into()) {
        errs.push(FieldError::invalid(format!("{path}.port"), Value::from(port.port), m));
    }
    let protocol = s(&port.protocol);
    if protocol.is_empty() {
        errs.push(FieldError::required(format!("{path}.protocol"), ""));
    } else if !matches!(protocol, "SCTP" | "TCP" | "UDP") {
        errs.push(FieldError::not_supported(
            format!("{path}.protocol"),
            text(protocol),
            &["SCTP", "TCP", "UDP"],
        ));
    }
    let target = format!("{path}.targetPort");
    match &port.target_port {
        Some(IntOrString::String(name)) => {
            for m in is_valid_port_name(name) {
                errs.push(FieldError::invalid(&target, text(name), m));
            }
        }
        Some(IntOrString::Int(n)) => {
            for m in is_valid_port_num((*n).into()) {
                errs.push(FieldError::invalid(&target, Value::from(*n), m));
            }
        }
        None => {
            for m in is_valid_port_num(0) {
                errs.push(FieldError::invalid(&target, Value::from(0), m));
            }
        }
    }
    if let Some(app) = &port.app_protocol {
        errs.extend(validate_qualified_name(&format!("{path}.appProtocol"), app));
    }
    errs
}

fn validate_client_ip_affinity(config: Option<&SessionAffinityConfig>) -> Vec<FieldError> {
    let why = "when session affinity type is ClientIP";
    let Some(config) = config else {
        return vec![FieldError::required("spec.sessionAffinityConfig", why)];
    };
    let Some(client_ip) = &config.client_ip else {
        return vec![FieldError::required("spec.sessionAffinityConfig.clientIP", why)];
    };
    let field = "spec.sessionAffinityConfig.clientIP.timeoutSeconds";
    match client_ip.timeout_seconds {
        None => vec![FieldError::required(field, why)],
        Some(t) if t <= 0 || t > MAX_CLIENT_IP_AFFINITY_SECONDS => vec![FieldError::invalid(
            field,
            Value::from(t),
            format!("must be greater than 0 and less than {MAX_CLIENT_IP_AFFINITY_SECONDS}"),
        )],
        Some(_) => Vec::new(),
    }
}

fn validate_non_special_ip(field: &str, value: &str) -> Vec<FieldError> {
    let Some(ip) = parse_ip_sloppy(value) else {
        return vec![FieldError::invalid(field, text(value), "must be a valid IP address")];
    };
    let mut errs = Vec::new();
    let (unspecified, loopback, link_local, link_local_multicast) = match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            (
                v4.is_unspecified(),
                v4.is_loopback(),
                v4.is_link_local(),
                o[0] == 224 && o[1] == 0 && o[2] == 0,
            )
        }
        std::net::IpAddr::V6(v6) => {
            let seg = v6.segments();
            (
                v6.is_unspecified(),
                v6.is_loopback(),
                seg[0] & 0xffc0 == 0xfe80,
                seg[0] & 0xff0f == 0xff02,
            )
        }
    };
    if unspecified {
        errs.push(FieldError::invalid(
            field,
            text(value),
            format!("may not be unspecified ({value})"),
        ));
    }
    if loopback {
        errs.push(FieldError::invalid(
            field,
            text(value),
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    if link_local {
        errs.push(FieldError::invalid(
            field,
            text(value),
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    if link_local_multicast {
        errs.push(FieldError::invalid(
            field,
            text(value),
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
    errs
}

pub(super) fn validate_load_balancer_class(old: Option<&Service>, svc: &Service) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let class = svc.spec.as_ref().and_then(|s| s.load_balancer_class.clone());
    if let Some(old) = old {
        let old_class = old.spec.as_ref().and_then(|s| s.load_balancer_class.clone());
        if service_type(old) == "LoadBalancer" && service_type(svc) == "LoadBalancer" && old_class != class {
            let value = class.clone().map(Value::String).unwrap_or_else(|| text("null"));
            errs.push(FieldError::invalid(
                "spec.loadBalancerClass",
                value,
                "may not change once set",
            ));
        }
    }
    if service_type(svc) == "LoadBalancer" {
        if let Some(class) = &class {
            errs.extend(validate_qualified_name("spec.loadBalancerClass", class));
        }
    } else if class.is_some() {
        errs.push(FieldError::forbidden(
            "spec.loadBalancerClass",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    errs
}

fn validate_external_traffic_policy(svc: &Service) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = svc.spec.clone().unwrap_or_default();
    let etp = s(&spec.external_traffic_policy);
    if !externally_accessible(svc) {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                "spec.externalTrafficPolicy",
                text(etp),
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required("spec.externalTrafficPolicy", ""));
    } else if !matches!(etp, "Cluster" | "Local") {
        errs.push(FieldError::not_supported(
            "spec.externalTrafficPolicy",
            text(etp),
            &["Cluster", "Local"],
        ));
    }
    let hc = spec.health_check_node_port.unwrap_or(0);
    if !needs_health_check(svc) {
        if hc != 0 {
            errs.push(FieldError::invalid(
                "spec.healthCheckNodePort",
                Value::from(hc),
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if hc == 0 {
        errs.push(FieldError::required("spec.healthCheckNodePort", ""));
    } else {
        for m in is_valid_port_num(hc.into()) {
            errs.push(FieldError::invalid("spec.healthCheckNodePort", Value::from(hc), m));
        }
    }
    errs
}

fn validate_internal_traffic_policy(svc: &Service) -> Vec<FieldError> {
    let itp = svc.spec.as_ref().and_then(|s| s.internal_traffic_policy.clone());
    match itp {
        None if matches!(service_type(svc), "NodePort" | "LoadBalancer" | "ClusterIP") => {
            vec![FieldError::required("spec.internalTrafficPolicy", "")]
        }
        Some(p) if !matches!(p.as_str(), "Cluster" | "Local") => {
            vec![FieldError::not_supported(
                "spec.internalTrafficPolicy",
                text(&p),
                &["Cluster", "Local"],
            )]
        }
        _ => Vec::new(),
    }
}

/// Every error's `field: message` line, handy in tests and logs.
#[cfg(test)]
pub(crate) fn lines(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(|e| e.to_string()).collect()
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
