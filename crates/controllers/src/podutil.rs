//! Small readings of Pods, owner references and selectors that several controllers share
//! (upstream's `podutil` and `controller` helper packages).

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::Resource;
use podway_api::selector::LabelSelector as Selector;

/// The Pod's `Ready` condition status is `True`.
pub fn is_pod_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// When the Pod's Ready condition last changed, if it has one.
pub fn ready_since(pod: &Pod) -> Option<jiff::Timestamp> {
    ready_condition(pod)
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
}

fn ready_condition(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// Ready for at least `min_ready_seconds` (`podutil.IsPodAvailable`).
pub fn is_pod_available(pod: &Pod, min_ready_seconds: i32, now: jiff::Timestamp) -> bool {
    if !is_pod_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    match ready_since(pod) {
        Some(since) => since + jiff::SignedDuration::from_secs(min_ready_seconds.into()) < now,
        None => false,
    }
}

/// The Pod's phase, "" when unset.
pub fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

/// Not finished (`Succeeded`/`Failed`) and not being deleted (`controller.IsPodActive`).
pub fn is_pod_active(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && pod.metadata.deletion_timestamp.is_none()
}

/// The owner reference with `controller: true`, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// Whether `meta` is controlled by the object with this uid.
pub fn is_controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == uid)
}

/// The owner reference a controller puts on what it creates: `controller` and
/// `blockOwnerDeletion` true, so foreground deletion of the owner waits for it.
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).to_string(),
        kind: K::kind(&()).to_string(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A `metav1.LabelSelector` as a matcher: absent or malformed matches nothing, `{}`
/// matches everything (as `metav1.LabelSelectorAsSelector`).
pub fn selector(sel: Option<&LabelSelector>) -> Selector {
    let Some(sel) = sel else { return Selector::nothing() };
    serde_json::to_value(sel)
        .ok()
        .and_then(|v| Selector::from_json(&v).ok())
        .unwrap_or_else(Selector::nothing)
}

/// The object's labels (empty when unset).
pub fn labels(meta: &ObjectMeta) -> std::collections::BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

/// The creation time, or the epoch when unset (sorts first, like Go's zero time).
pub fn created(meta: &ObjectMeta) -> jiff::Timestamp {
    meta.creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// Whether a kube error is the API server's 404.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Whether a kube error is the API server's 409 (AlreadyExists or Conflict).
pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Builders for test fixtures.
    use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    /// A pod named `name` with the given phase and Ready condition since `ready_at`.
    pub fn pod(name: &str, phase: &str, ready_at: Option<jiff::Timestamp>) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.to_string());
        p.metadata.namespace = Some("default".to_string());
        p.metadata.uid = Some(format!("uid-{name}"));
        p.status = Some(PodStatus {
            phase: Some(phase.to_string()),
            conditions: ready_at.map(|t| {
                vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(Time(t)),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        });
        p
    }
}

#[cfg(test)]
mod tests {
    use super::testing::pod;
    use super::*;

    #[test]
    fn a_pod_is_available_only_after_min_ready_seconds_have_passed() {
        let t0 = jiff::Timestamp::from_second(1_000).unwrap();
        let p = pod("a", "Running", Some(t0));
        assert!(is_pod_available(&p, 0, t0));
        assert!(!is_pod_available(&p, 10, t0 + jiff::SignedDuration::from_secs(10)));
        assert!(is_pod_available(&p, 10, t0 + jiff::SignedDuration::from_secs(11)));
        assert!(!is_pod_available(&pod("b", "Running", None), 0, t0));
    }

    #[test]
    fn finished_and_deleting_pods_are_not_active() {
        assert!(is_pod_active(&pod("a", "Pending", None)));
        assert!(!is_pod_active(&pod("a", "Succeeded", None)));
        let mut p = pod("a", "Running", None);
        p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::now(),
        ));
        assert!(!is_pod_active(&p));
    }

    #[test]
    fn an_empty_label_selector_matches_everything_and_a_missing_one_nothing() {
        let l = [("app".to_string(), "web".to_string())].into();
        assert!(selector(Some(&LabelSelector::default())).matches(&l));
        assert!(!selector(None).matches(&l));
        let sel = LabelSelector {
            match_labels: Some([("app".to_string(), "db".to_string())].into()),
            ..Default::default()
        };
        assert!(!selector(Some(&sel)).matches(&l));
    }
}
