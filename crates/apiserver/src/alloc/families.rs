//! `ipFamilies` and `ipFamilyPolicy` filled and checked against what the cluster serves
//! (`initIPFamilyFields` in pkg/registry/core/service/storage/alloc.go). podway's service
//! network is IPv4 only, so this is the single-stack half of Kubernetes' rules.

use k8s_openapi::api::core::v1::Service;
use podway_api::service::{
    cluster_ip, cluster_ips, service_type, validate_cluster_ips_related_fields, CLUSTER_IP_NONE,
};
use podway_api::validation::{go_slice, parse_ip_sloppy, FieldError, FieldErrorKind};
use serde_json::Value;

fn policy(svc: &Service) -> Option<&str> {
    svc.spec.as_ref().and_then(|s| s.ip_family_policy.as_deref())
}

fn families(svc: &Service) -> &[String] {
    svc.spec.as_ref().and_then(|s| s.ip_families.as_deref()).unwrap_or(&[])
}

fn selectorless(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .is_none_or(|s| s.is_empty())
}

fn policy_invalid(svc: &Service, detail: &str) -> FieldError {
    FieldError::invalid(
        "spec.ipFamilyPolicy",
        Value::String(policy(svc).unwrap_or("null").to_string()),
        detail,
    )
}

/// A PreferDualStack Service whose type, IPs and families did not change is left alone, so
/// it is never silently upgraded or downgraded when the cluster's stacks change.
pub(crate) fn is_matching_prefer_dual_stack(new: &Service, old: Option<&Service>) -> bool {
    let Some(old) = old else { return false };
    policy(new) == Some("PreferDualStack")
        && policy(old).is_none_or(|p| p == "PreferDualStack")
        && service_type(old) == service_type(new)
        && matches!(service_type(new), "ClusterIP" | "NodePort" | "LoadBalancer")
        && cluster_ips(old) == cluster_ips(new)
        && families(old) == families(new)
}

/// Fills `ipFamilyPolicy` (kept from `old` on update; RequireDualStack for a headless
/// Service without selector, else SingleStack) and `ipFamilies` (`[IPv4]`, plus `IPv6` for
/// a selectorless headless Service that is not SingleStack), and refuses what this
/// IPv4-only cluster cannot serve.
pub(crate) fn init_ip_family_fields(svc: &mut Service, old: Option<&Service>) -> Result<(), Vec<FieldError>> {
    if service_type(svc) == "ExternalName" || is_matching_prefer_dual_stack(svc, old) {
        return Ok(());
    }
    let headless_selectorless = cluster_ip(svc) == CLUSTER_IP_NONE && selectorless(svc);
    if policy(svc).is_none() {
        let inherited = old.and_then(policy).map(str::to_string);
        let chosen = inherited.unwrap_or_else(|| {
            if headless_selectorless {
                "RequireDualStack"
            } else {
                "SingleStack"
            }
            .to_string()
        });
        svc.spec.get_or_insert_with(Default::default).ip_family_policy = Some(chosen);
    }

    let errs = validate_cluster_ips_related_fields(svc);
    if !errs.is_empty() {
        return Err(errs);
    }

    let mut errs = Vec::new();
    let single = policy(svc) == Some("SingleStack");
    if let Some(old) = old {
        let spec = svc.spec.get_or_insert_with(Default::default);
        if single {
            // Single-stack on update is a clear wish to drop the secondary IP and family.
            if spec.cluster_ips.as_deref().unwrap_or(&[]) == cluster_ips(old) {
                if let Some(ips) = spec.cluster_ips.as_mut() {
                    ips.truncate(1);
                }
            }
            if spec.ip_families.as_deref().unwrap_or(&[]) == families(old) {
                if let Some(f) = spec.ip_families.as_mut() {
                    f.truncate(1);
                }
            }
        } else {
            if !cluster_ips(svc).is_empty() && cluster_ips(svc).len() < cluster_ips(old).len() {
                errs.push(policy_invalid(
                    svc,
                    "must be 'SingleStack' to release the secondary cluster IP",
                ));
            }
            if !families(svc).is_empty() && families(svc).len() < families(old).len() {
                errs.push(policy_invalid(
                    svc,
                    "must be 'SingleStack' to release the secondary IP family",
                ));
            }
        }
    }
    if single {
        if cluster_ips(svc).len() == 2 {
            errs.push(policy_invalid(
                svc,
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
            ));
        }
        if families(svc).len() == 2 {
            errs.push(policy_invalid(
                svc,
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
            ));
        }
    }

    // Families follow from explicit IPs.
    let ips = cluster_ips(svc).to_vec();
    for (i, ip) in ips.iter().enumerate() {
        if ip == CLUSTER_IP_NONE {
            break;
        }
        if i < families(svc).len() {
            continue;
        }
        match parse_ip_sloppy(ip) {
            Some(std::net::IpAddr::V4(_)) => {
                let spec = svc.spec.get_or_insert_with(Default::default);
                spec.ip_families.get_or_insert_with(Vec::new).push("IPv4".into());
            }
            other => {
                let family = if other.is_some() { "IPv6" } else { "unknown" };
                errs.push(FieldError::with_go_value(
                    FieldErrorKind::Invalid,
                    format!("spec.clusterIPs[{i}]"),
                    go_slice("string", Some(&ips)),
                    format!("{family} is not configured on this cluster"),
                ));
            }
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }

    if headless_selectorless {
        // Headless, selectorless Services may name families the cluster does not serve.
        let spec = svc.spec.get_or_insert_with(Default::default);
        let fams = spec.ip_families.get_or_insert_with(Vec::new);
        if fams.is_empty() {
            fams.push("IPv4".into());
        }
        if fams.len() < 2 && spec.ip_family_policy.as_deref() != Some("SingleStack") {
            let other = if fams[0] == "IPv4" { "IPv6" } else { "IPv4" };
            fams.push(other.into());
        }
        return Ok(());
    }

    if policy(svc) == Some("RequireDualStack") {
        errs.push(policy_invalid(
            svc,
            "this cluster is not configured for dual-stack services",
        ));
    }
    for (i, family) in families(svc).iter().enumerate() {
        if family != "IPv4" {
            errs.push(FieldError::invalid(
                format!("spec.ipFamilies[{i}]"),
                Value::String(family.clone()),
                "not configured on this cluster",
            ));
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let spec = svc.spec.get_or_insert_with(Default::default);
    if spec.ip_families.as_deref().unwrap_or(&[]).is_empty() {
        spec.ip_families = Some(vec!["IPv4".into()]);
    }
    Ok(())
}
