//! Pod garbage collection, the part of upstream's `podgc` controller that matters here: a pod
//! bound to a node that does not exist (never did, or was deleted) has nobody to stop it, so
//! after a quarantine it is deleted at once (grace period 0), as upstream's `gcOrphaned` does.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Preconditions};
use kube::Client;

use crate::informers::Informers;

/// How long a pod's node must stay missing before the pod goes (upstream: 40 s).
const QUARANTINE: Duration = Duration::from_secs(40);
/// How often the check runs (upstream: every 20 s).
const PERIOD: Duration = Duration::from_secs(10);

/// The pods (namespace, name, uid) bound to a node not in `nodes`.
pub fn orphaned(pods: &[std::sync::Arc<Pod>], nodes: &HashSet<String>) -> Vec<(String, String, String)> {
    pods.iter()
        .filter_map(|p| {
            let node = p.spec.as_ref()?.node_name.as_deref().filter(|n| !n.is_empty())?;
            (!nodes.contains(node)).then(|| {
                (
                    p.metadata.namespace.clone().unwrap_or_default(),
                    p.metadata.name.clone().unwrap_or_default(),
                    p.metadata.uid.clone().unwrap_or_default(),
                )
            })
        })
        .collect()
}

/// Runs until dropped.
pub async fn run(client: Client, inf: Informers) -> anyhow::Result<()> {
    inf.pods.ready().await;
    inf.nodes.ready().await;
    // When each orphan was first seen; it goes once it has been one for the whole quarantine.
    let mut first_seen: HashMap<String, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(PERIOD);
    loop {
        tick.tick().await;
        let nodes: HashSet<String> = inf
            .nodes
            .store()
            .state()
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        let orphans = orphaned(&inf.pods.store().state(), &nodes);
        let now = Instant::now();
        first_seen.retain(|uid, _| orphans.iter().any(|(_, _, u)| u == uid));
        for (namespace, name, uid) in orphans {
            let since = *first_seen.entry(uid.clone()).or_insert(now);
            if now.duration_since(since) < QUARANTINE {
                continue;
            }
            let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(uid.clone()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api.delete(&name, &params).await {
                Ok(_) => tracing::info!(pod = %name, namespace = %namespace, "deleted a pod bound to a missing node"),
                Err(e) => tracing::debug!(pod = %name, "podgc: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: Option<&str>) -> std::sync::Arc<Pod> {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.namespace = Some("default".into());
        p.metadata.uid = Some(format!("uid-{name}"));
        p.spec = Some(k8s_openapi::api::core::v1::PodSpec {
            node_name: node.map(str::to_string),
            ..Default::default()
        });
        std::sync::Arc::new(p)
    }

    #[test]
    fn only_pods_bound_to_missing_nodes_are_orphans() {
        let pods = vec![
            pod("on-node", Some("n1")),
            pod("unbound", None),
            pod("lost", Some("gone")),
        ];
        let nodes: HashSet<String> = ["n1".to_string()].into();
        let orphans = orphaned(&pods, &nodes);
        assert_eq!(
            orphans,
            vec![("default".to_string(), "lost".to_string(), "uid-lost".to_string())]
        );
    }
}
