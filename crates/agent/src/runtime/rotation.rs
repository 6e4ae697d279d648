//! A deleted pod leaves every Service's rotation before its containers get SIGTERM.
//!
//! In Kubernetes the kubelet signals a deleted pod's containers while the endpoints controller
//! and every node's kube-proxy are still taking its address out of the data path, so for a
//! moment new connections still reach a process that is exiting; users paper over it with a
//! `preStop: sleep`. podway orders it instead: the agent first waits until no EndpointSlice
//! lists the pod as ready (the endpoints controller marks a terminating pod's endpoint not
//! ready, and terminating endpoints get new connections only when nothing else serves), then
//! gives the proxies on every node one propagation window to apply that, and only then runs
//! preStop and SIGTERM. Established connections keep flowing meanwhile (conntrack), so the
//! process drains what it was serving. Both waits count against the grace period.

use std::time::Duration;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};

/// How long the proxies are given to apply an EndpointSlice change once it is in the API:
/// they see it through a watch within milliseconds and apply it in one transaction after at
/// most a few milliseconds of coalescing; this leaves room for a loaded machine.
pub const PROPAGATION: Duration = Duration::from_millis(250);

/// How often the slices are read while waiting.
const POLL: Duration = Duration::from_millis(10);

/// Where the pod with `uid` stands in `slices`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// No slice has an endpoint of it.
    Absent,
    /// Listed, but nowhere ready.
    NotReady,
    /// Listed ready somewhere (an endpoint without a ready condition counts as ready, as the
    /// API defines it).
    Ready,
}

/// Where the pod with `uid` stands in `slices`.
pub fn listing(slices: &[EndpointSlice], uid: &str) -> Listing {
    let ours = slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| e.target_ref.as_ref().and_then(|r| r.uid.as_deref()) == Some(uid));
    let mut found = Listing::Absent;
    for e in ours {
        if e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true) {
            return Listing::Ready;
        }
        found = Listing::NotReady;
    }
    found
}

/// Wait, at most `budget`, until the pod `uid` in `namespace` is out of every Service's
/// rotation. A pod no Service lists is not waited for.
pub async fn leave(client: &kube::Client, namespace: &str, uid: &str, budget: Duration) {
    let deadline = tokio::time::Instant::now() + budget;
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    loop {
        let now = match api.list(&ListParams::default()).await {
            Ok(list) => listing(&list.items, uid),
            Err(e) => {
                tracing::debug!("reading EndpointSlices before stopping a pod: {e}");
                Listing::Absent
            }
        };
        match now {
            Listing::Absent => return,
            Listing::NotReady => break,
            Listing::Ready if tokio::time::Instant::now() + POLL >= deadline => return,
            Listing::Ready => tokio::time::sleep(POLL).await,
        }
    }
    // The slices say it is out; the proxies apply that a moment later (also when the slices
    // said so at the first look: the endpoints controller can be faster than their watches).
    let window = PROPAGATION.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
    tokio::time::sleep(window).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slice(endpoints: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(json!({"metadata": {"name": "s"}, "addressType": "IPv4", "endpoints": endpoints}))
            .unwrap()
    }

    #[test]
    fn a_pod_is_in_rotation_while_any_endpoint_of_it_is_ready_or_has_no_ready_condition() {
        let ours = |ready: serde_json::Value| json!({"addresses": ["10.244.0.5"], "targetRef": {"kind": "Pod", "uid": "u1"}, "conditions": {"ready": ready}});
        assert_eq!(listing(&[slice(json!([ours(json!(true))]))], "u1"), Listing::Ready);
        assert_eq!(listing(&[slice(json!([ours(json!(null))]))], "u1"), Listing::Ready);
        assert_eq!(listing(&[slice(json!([ours(json!(false))]))], "u1"), Listing::NotReady);
        let both = slice(json!([ours(json!(false)), ours(json!(true))]));
        assert_eq!(
            listing(&[both], "u1"),
            Listing::Ready,
            "ready in one slice is in rotation"
        );
        assert_eq!(listing(&[slice(json!([ours(json!(true))]))], "u2"), Listing::Absent);
        assert_eq!(listing(&[], "u1"), Listing::Absent);
    }
}
