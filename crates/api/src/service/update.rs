//! `ValidateServiceUpdate`: what may not change between the stored Service and its update.

use k8s_openapi::api::core::v1::Service;
use serde_json::Value;

use super::validate::{go_invalid, ips_go, text, validate_load_balancer_class, validate_service};
use super::{cluster_ips, is_headless, needs_health_check, service_type};
use crate::validation::{go_slice, FieldError};

/// `ValidateServiceUpdate`: cluster IPs and IP families may not change (except to, from or
/// on ExternalName, and when adding or dropping a secondary family), `loadBalancerClass`
/// and `healthCheckNodePort` are fixed while they apply; then everything
/// [`validate_service`] checks. Metadata update rules (immutable name, uid, ...) are the
/// generic REST layer's and are not checked here.
pub fn validate_service_update(new: &Service, old: &Service) -> Vec<FieldError> {
    let mut errs = validate_upgrade_downgrade_cluster_ips(old, new);
    errs.extend(validate_upgrade_downgrade_ip_families(old, new));
    errs.extend(validate_load_balancer_class(Some(old), new));
    let old_hc = old.spec.as_ref().and_then(|s| s.health_check_node_port).unwrap_or(0);
    let new_hc = new.spec.as_ref().and_then(|s| s.health_check_node_port).unwrap_or(0);
    if needs_health_check(old) && needs_health_check(new) && old_hc != new_hc {
        errs.push(FieldError::forbidden("spec.healthCheckNodePort", "field is immutable"));
    }
    errs.extend(validate_service(new));
    errs
}

fn policy_value(svc: &Service) -> Value {
    // A nil pointer prints as the quoted string "null" in Kubernetes' messages.
    text(
        svc.spec
            .as_ref()
            .and_then(|s| s.ip_family_policy.as_deref())
            .unwrap_or("null"),
    )
}

fn is_single_stack(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.ip_family_policy.as_deref()) == Some("SingleStack")
}

fn validate_upgrade_downgrade_cluster_ips(old: &Service, new: &Service) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if service_type(new) == "ExternalName" || service_type(old) == "ExternalName" {
        return errs;
    }
    if is_headless(old) && is_headless(new) {
        return errs;
    }
    let (old_ips, new_ips) = (cluster_ips(old), cluster_ips(new));
    let changed = || go_invalid("spec.clusterIPs[0]", ips_go(new), "may not change once set");
    match old_ips.len().cmp(&new_ips.len()) {
        std::cmp::Ordering::Equal => {
            for (i, ip) in old_ips.iter().enumerate() {
                if ip != &new_ips[i] {
                    errs.push(go_invalid(
                        format!("spec.clusterIPs[{i}]"),
                        ips_go(new),
                        "may not change once set",
                    ));
                }
            }
        }
        std::cmp::Ordering::Greater => {
            if new_ips.is_empty() {
                errs.push(go_invalid(
                    "spec.clusterIPs[0]",
                    ips_go(new),
                    "primary clusterIP can not be unset",
                ));
            }
            if !old_ips.is_empty() && !new_ips.is_empty() && new_ips[0] != old_ips[0] {
                errs.push(changed());
            }
            if new_ips.len() == 1 && !is_single_stack(new) {
                errs.push(FieldError::invalid(
                    "spec.ipFamilyPolicy",
                    policy_value(new),
                    "must be set to 'SingleStack' when releasing the secondary clusterIP",
                ));
            }
        }
        std::cmp::Ordering::Less => {
            if !old_ips.is_empty() && new_ips[0] != old_ips[0] {
                errs.push(changed());
            }
        }
    }
    errs
}

fn validate_upgrade_downgrade_ip_families(old: &Service, new: &Service) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if service_type(new) == "ExternalName" || service_type(old) == "ExternalName" {
        return errs;
    }
    if is_headless(old) || is_headless(new) {
        return errs;
    }
    let fam = |svc: &Service| {
        svc.spec
            .as_ref()
            .and_then(|s| s.ip_families.clone())
            .unwrap_or_default()
    };
    let (old_f, new_f) = (fam(old), fam(new));
    let families_go = go_slice(
        "core.IPFamily",
        new.spec.as_ref().and_then(|s| s.ip_families.as_deref()),
    );
    match old_f.len().cmp(&new_f.len()) {
        std::cmp::Ordering::Equal => {
            for (i, f) in old_f.iter().enumerate() {
                if f != &new_f[i] {
                    errs.push(go_invalid(
                        "spec.ipFamilies[0]",
                        families_go.clone(),
                        "may not change once set",
                    ));
                }
            }
        }
        std::cmp::Ordering::Greater => {
            if cluster_ips(new).is_empty() {
                errs.push(go_invalid(
                    "spec.ipFamilies[0]",
                    families_go.clone(),
                    "primary ipFamily can not be unset",
                ));
            }
            if !new_f.is_empty() && new_f[0] != old_f[0] {
                errs.push(go_invalid("spec.ipFamilies[0]", ips_go(new), "may not change once set"));
            }
            if new_f.len() == 1 && !is_single_stack(new) {
                errs.push(FieldError::invalid(
                    "spec.ipFamilyPolicy",
                    policy_value(new),
                    "must be set to 'SingleStack' when releasing the secondary ipFamily",
                ));
            }
        }
        std::cmp::Ordering::Less => {
            if !old_f.is_empty() && !new_f.is_empty() && new_f[0] != old_f[0] {
                errs.push(go_invalid("spec.ipFamilies[0]", ips_go(new), "may not change once set"));
            }
        }
    }
    errs
}
