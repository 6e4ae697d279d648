//! Rollout arithmetic, as pure functions over the Deployment and its ReplicaSets
//! (upstream `deployment/util` and `rolling.go`/`sync.go`): how far to surge, how many
//! may be unavailable, how big the new ReplicaSet may grow, which old ones shrink and by how
//! much, and how a resize spreads across ReplicaSets mid-rollout.
//!
//! Functions return plans (`(ReplicaSet name, new size)`); the controller applies them.

use std::cmp::Ordering;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::podutil::created;

/// Annotation: the Deployment's `spec.replicas` when this ReplicaSet was last sized.
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
/// Annotation: `spec.replicas + maxSurge` when this ReplicaSet was last sized.
pub const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
/// Annotation on Deployments and ReplicaSets: the rollout revision.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// A resize: ReplicaSet name and its new `spec.replicas`.
pub type Resize = (String, i32);

/// `spec.replicas` of a Deployment (default 1).
pub fn deployment_replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// `spec.replicas` of a ReplicaSet (default 1).
pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// `status.availableReplicas` of a ReplicaSet.
pub fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0)
}

/// An integer annotation of a ReplicaSet.
pub fn int_annotation(rs: &ReplicaSet, key: &str) -> Option<i32> {
    rs.metadata.annotations.as_ref()?.get(key)?.parse().ok()
}

/// The revision annotation (0 when absent or malformed).
pub fn revision(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> i64 {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Whether the strategy is RollingUpdate (the default) rather than Recreate.
pub fn is_rolling_update(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        != Some("Recreate")
}

/// `GetScaledValueFromIntOrPercent`: an int as is, or `N%` of `total`, rounded up or down.
/// A malformed percentage counts as 0 (validation rejects it before it gets here).
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> i32 {
    match v {
        IntOrString::Int(i) => *i,
        IntOrString::String(s) => {
            let Some(p) = s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) else {
                return 0;
            };
            let x = p * i64::from(total);
            let v = if round_up {
                (x + 99).div_euclid(100)
            } else {
                x.div_euclid(100)
            };
            v as i32
        }
    }
}

/// `ResolveFenceposts`: (maxSurge, maxUnavailable) as pod counts; both zero would stall a
/// rollout, so maxUnavailable becomes 1 then. Defaults are 25% each.
pub fn resolve_fenceposts(surge: Option<&IntOrString>, unavailable: Option<&IntOrString>, desired: i32) -> (i32, i32) {
    let quarter = IntOrString::String("25%".into());
    let s = scaled_value(surge.unwrap_or(&quarter), desired, true);
    let u = scaled_value(unavailable.unwrap_or(&quarter), desired, false);
    if s == 0 && u == 0 {
        (0, 1)
    } else {
        (s, u)
    }
}

fn fenceposts(d: &Deployment) -> (i32, i32) {
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    resolve_fenceposts(
        ru.and_then(|r| r.max_surge.as_ref()),
        ru.and_then(|r| r.max_unavailable.as_ref()),
        deployment_replicas(d),
    )
}

/// Pods the rollout may run above `spec.replicas` (0 for Recreate).
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling_update(d) {
        return 0;
    }
    fenceposts(d).0
}

/// Pods that may be unavailable during the rollout, at most `spec.replicas` (0 for Recreate).
pub fn max_unavailable(d: &Deployment) -> i32 {
    let replicas = deployment_replicas(d);
    if !is_rolling_update(d) || replicas == 0 {
        return 0;
    }
    fenceposts(d).1.min(replicas)
}

/// Oldest first, by creation time then name (`ReplicaSetsByCreationTimestamp`).
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    created(&a.metadata)
        .cmp(&created(&b.metadata))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// `NewRSNewReplicas`: the size the new ReplicaSet may have now.
pub fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new_rs: &ReplicaSet) -> i32 {
    let replicas = deployment_replicas(d);
    if !is_rolling_update(d) {
        return replicas;
    }
    let current: i32 = all.iter().map(|rs| rs_replicas(rs)).sum();
    let max_total = replicas + max_surge(d);
    if current >= max_total {
        return rs_replicas(new_rs);
    }
    let up = (max_total - current).min(replicas - rs_replicas(new_rs));
    rs_replicas(new_rs) + up.max(0)
}

/// `reconcileOldReplicaSets`' plan: first shrink old ReplicaSets' unavailable pods, then
/// scale old ones down while enough pods stay available. `new_rs` is `None` only while a
/// Recreate-less edge case has no new ReplicaSet yet.
pub fn old_replica_sets_plan(d: &Deployment, old: &[&ReplicaSet], new_rs: Option<&ReplicaSet>) -> Vec<Resize> {
    let old_pods: i32 = old.iter().map(|rs| rs_replicas(rs)).sum();
    if old_pods == 0 {
        return Vec::new();
    }
    let new_replicas = new_rs.map(rs_replicas).unwrap_or(0);
    let all_pods = old_pods + new_replicas;
    let min_available = deployment_replicas(d) - max_unavailable(d);
    let new_unavailable = new_rs.map(|rs| rs_replicas(rs) - rs_available(rs)).unwrap_or(0);
    let max_scaled_down = all_pods - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return Vec::new();
    }
    let mut sorted: Vec<&ReplicaSet> = old.to_vec();
    sorted.sort_by(|a, b| by_creation(a, b));

    // Step 1: unhealthy replicas go first; they cost no availability.
    let mut sizes: Vec<(String, i32, i32)> = sorted
        .iter()
        .map(|rs| {
            (
                rs.metadata.name.clone().unwrap_or_default(),
                rs_replicas(rs),
                rs_available(rs),
            )
        })
        .collect();
    let mut cleaned = 0;
    for (_, size, available) in sizes.iter_mut() {
        if cleaned >= max_scaled_down {
            break;
        }
        if *size == 0 || *size == *available {
            continue;
        }
        let down = (max_scaled_down - cleaned).min(*size - *available);
        *size -= down;
        cleaned += down;
    }

    // Step 2: scale down healthy old replicas as far as availability allows.
    let available_all: i32 = sizes.iter().map(|(_, _, a)| *a).sum::<i32>() + new_rs.map(rs_available).unwrap_or(0);
    if available_all > min_available {
        let total = available_all - min_available;
        let mut done = 0;
        for (_, size, _) in sizes.iter_mut() {
            if done >= total {
                break;
            }
            if *size == 0 {
                continue;
            }
            let down = (*size).min(total - done);
            *size -= down;
            done += down;
        }
    }
    sizes
        .into_iter()
        .zip(sorted)
        .filter(|((_, size, _), rs)| *size != rs_replicas(rs))
        .map(|((name, size, _), _)| (name, size))
        .collect()
}

/// ReplicaSets with `spec.replicas > 0`.
pub fn active<'a>(rss: &[&'a ReplicaSet]) -> Vec<&'a ReplicaSet> {
    rss.iter().copied().filter(|rs| rs_replicas(rs) > 0).collect()
}

/// `FindActiveOrLatest`: the only active ReplicaSet, or the newest if none is active; `None`
/// when several are active (then a resize must be spread proportionally).
pub fn active_or_latest<'a>(new_rs: Option<&'a ReplicaSet>, old: &[&'a ReplicaSet]) -> Option<&'a ReplicaSet> {
    let mut old: Vec<&ReplicaSet> = old.to_vec();
    old.sort_by(|a, b| by_creation(b, a));
    let mut all = old.clone();
    all.extend(new_rs);
    let act = active(&all);
    match act.len() {
        0 => new_rs.or_else(|| old.first().copied()),
        1 => Some(act[0]),
        _ => None,
    }
}

/// `IsSaturated`: the new ReplicaSet is fully sized and fully available.
pub fn is_saturated(d: &Deployment, new_rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = new_rs else { return false };
    let replicas = deployment_replicas(d);
    rs_replicas(rs) == replicas
        && int_annotation(rs, DESIRED_REPLICAS_ANNOTATION) == Some(replicas)
        && rs_available(rs) == replicas
}

/// `dc.scale`: how a change of `spec.replicas` resizes the ReplicaSets. With one active
/// ReplicaSet it takes the new size; mid-rollout the difference is spread in proportion to
/// each ReplicaSet's share (from its max-replicas annotation), the remainder going to the
/// largest.
pub fn scale_plan(d: &Deployment, new_rs: Option<&ReplicaSet>, old: &[&ReplicaSet]) -> Vec<Resize> {
    let replicas = deployment_replicas(d);
    if let Some(rs) = active_or_latest(new_rs, old) {
        if rs_replicas(rs) == replicas {
            return Vec::new();
        }
        return vec![(rs.metadata.name.clone().unwrap_or_default(), replicas)];
    }
    if is_saturated(d, new_rs) {
        return active(old)
            .into_iter()
            .map(|rs| (rs.metadata.name.clone().unwrap_or_default(), 0))
            .collect();
    }
    if !is_rolling_update(d) {
        return Vec::new();
    }
    let mut all: Vec<&ReplicaSet> = old.to_vec();
    all.extend(new_rs);
    let mut all = active(&all);
    let current: i32 = all.iter().map(|rs| rs_replicas(rs)).sum();
    let allowed = if replicas > 0 { replicas + max_surge(d) } else { 0 };
    let to_add = allowed - current;
    if to_add > 0 {
        // Largest first; among equals the newer first.
        all.sort_by(|a, b| rs_replicas(b).cmp(&rs_replicas(a)).then_with(|| by_creation(b, a)));
    } else {
        // Largest first; among equals the older first.
        all.sort_by(|a, b| rs_replicas(b).cmp(&rs_replicas(a)).then_with(|| by_creation(a, b)));
    }
    let status_replicas = d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let mut added = 0;
    let mut sizes: Vec<i32> = Vec::with_capacity(all.len());
    for rs in &all {
        let mut size = rs_replicas(rs);
        if to_add != 0 {
            let p = proportion(rs, d, to_add, added, status_replicas);
            size += p;
            added += p;
        }
        sizes.push(size);
    }
    if to_add != 0 && !sizes.is_empty() {
        sizes[0] = (sizes[0] + to_add - added).max(0);
    }
    all.iter()
        .zip(sizes)
        .filter(|(rs, size)| rs_replicas(rs) != *size)
        .map(|(rs, size)| (rs.metadata.name.clone().unwrap_or_default(), size))
        .collect()
}

/// `GetProportion`: this ReplicaSet's share of `to_add`, capped by what is left.
fn proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32, status_replicas: i32) -> i32 {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = fraction(rs, d, status_replicas);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// `getReplicaSetFraction`: how much this ReplicaSet should grow (or shrink) to keep its
/// share of the Deployment's new maximum size.
fn fraction(rs: &ReplicaSet, d: &Deployment, status_replicas: i32) -> i32 {
    let replicas = deployment_replicas(d);
    if replicas == 0 {
        return -rs_replicas(rs);
    }
    let max_now = replicas + max_surge(d);
    let before = match int_annotation(rs, MAX_REPLICAS_ANNOTATION) {
        Some(v) if v != 0 => v,
        _ => status_replicas,
    };
    if before == 0 {
        return 0;
    }
    let size = f64::from(rs_replicas(rs)) * f64::from(max_now) / f64::from(before);
    size.round() as i32 - rs_replicas(rs)
}

#[cfg(test)]
#[path = "rollout_tests.rs"]
mod tests;
