//! `ValidateServiceClusterIPsRelatedFields`: the checks on `clusterIP`, `clusterIPs`,
//! `ipFamilies` and `ipFamilyPolicy` that both validation and the allocator run.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Service;

use super::validate::{go_invalid, ips_go, text};
use super::{cluster_ip, cluster_ips, is_headless, service_type, CLUSTER_IP_NONE};
use crate::validation::{parse_ip_sloppy, validate_ip, FieldError};

/// `ValidateServiceClusterIPsRelatedFields`: `clusterIP` agrees with `clusterIPs[0]`, the IPs
/// parse, at most one per family, families and policy have known values, and each IP
/// matches its family. The allocator runs it before allocating, as Kubernetes does.
pub fn validate_cluster_ips_related_fields(svc: &Service) -> Vec<FieldError> {
    if service_type(svc) == "ExternalName" {
        return Vec::new();
    }
    let spec = svc.spec.clone().unwrap_or_default();
    let ips = cluster_ips(svc);
    let families = spec.ip_families.clone().unwrap_or_default();
    let mut errs = Vec::new();

    if !cluster_ip(svc).is_empty() {
        if ips.is_empty() {
            errs.push(FieldError::required("spec.clusterIPs", ""));
        } else if ips[0] != cluster_ip(svc) {
            errs.push(go_invalid(
                "spec.clusterIPs",
                ips_go(svc),
                "first value must match `clusterIP`",
            ));
        }
    } else if !ips.is_empty() {
        errs.push(go_invalid(
            "spec.clusterIPs",
            ips_go(svc),
            "must be empty when `clusterIP` is not specified",
        ));
    }

    let mut seen = BTreeSet::new();
    for (i, family) in families.iter().enumerate() {
        if !matches!(family.as_str(), "IPv4" | "IPv6") {
            errs.push(FieldError::not_supported(
                format!("spec.ipFamilies[{i}]"),
                text(family),
                &["IPv4", "IPv6"],
            ));
        }
        if !seen.insert(family.clone()) {
            errs.push(FieldError::duplicate(format!("spec.ipFamilies[{i}]"), text(family)));
        }
    }

    if let Some(policy) = &spec.ip_family_policy {
        if !matches!(policy.as_str(), "PreferDualStack" | "RequireDualStack" | "SingleStack") {
            errs.push(FieldError::not_supported(
                "spec.ipFamilyPolicy",
                text(policy),
                &["PreferDualStack", "RequireDualStack", "SingleStack"],
            ));
        }
    }

    let mut invalid_ips = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == CLUSTER_IP_NONE {
            if ips.len() > 1 {
                invalid_ips = true;
                errs.push(go_invalid(
                    "spec.clusterIPs",
                    ips_go(svc),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        let bad = validate_ip(&format!("spec.clusterIPs[{i}]"), ip);
        invalid_ips |= !bad.is_empty();
        errs.extend(bad);
    }
    if ips.len() > 2 {
        errs.push(go_invalid(
            "spec.clusterIPs",
            ips_go(svc),
            "may only hold up to 2 values",
        ));
    }
    // Further checks would only repeat what a malformed IP already says.
    if invalid_ips {
        return errs;
    }

    if ips.len() > 1 {
        let v6: Vec<bool> = ips
            .iter()
            .map(|ip| parse_ip_sloppy(ip).is_some_and(|a| a.is_ipv6()))
            .collect();
        let dual = ips.len() == 2 && v6[0] != v6[1];
        if !dual {
            errs.push(go_invalid(
                "spec.clusterIPs",
                ips_go(svc),
                "may specify no more than one IP for each IP family",
            ));
        }
    }

    if !is_headless(svc) && !ips.is_empty() && !families.is_empty() {
        for (i, ip) in ips.iter().enumerate().take(families.len()) {
            let is_v6 = parse_ip_sloppy(ip).is_some_and(|a| a.is_ipv6());
            if families[i] == "IPv4" && is_v6 {
                errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    text(ip),
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if families[i] == "IPv6" && !is_v6 {
                errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    text(ip),
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    errs
}
