//! The node lifecycle controller's edge: every `node_monitor_period` each node's heartbeat
//! (Lease in `kube-node-lease`, or its Ready condition) is checked; a silent node goes
//! `Unknown` and is tainted unreachable, and its pods are marked not ready. Pods on any node
//! with `NoExecute` taints (these, or a user's) are deleted once their toleration runs out
//! (upstream's taint eviction controller).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use tokio::task::JoinSet;

use super::health::{
    desired_taints, disruption_target, eviction_time, is_silent, last_heartbeat, no_execute_taints, ready_status,
    unknown_conditions,
};
use crate::events::{EventType, Recorder};
use crate::informers::Informers;
use crate::podutil;
use crate::runtime::{forward, work, Change, Key, Queue};
use crate::ControllerConfig;

/// The namespace of node heartbeat Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

struct Ctl {
    client: Client,
    nodes: Store<Node>,
    leases: Store<Lease>,
    pods: Store<Pod>,
    config: ControllerConfig,
    node_events: Recorder,
    evictions: Recorder,
    /// Node name → when it was first seen with NoExecute taints.
    tainted_since: Mutex<HashMap<String, jiff::Timestamp>>,
}

/// Runs the controller until dropped. Queue keys are node names.
pub async fn run(client: Client, inf: Informers, config: ControllerConfig) -> anyhow::Result<()> {
    let queue = Arc::new(Queue::default());
    let mut feeds = JoinSet::new();
    let all = {
        let nodes = inf.nodes.store().clone();
        move || {
            nodes
                .state()
                .iter()
                .map(|n| Key::new("", n.name_any()))
                .collect::<Vec<_>>()
        }
    };
    let all2 = all.clone();
    feeds.spawn(forward(inf.nodes.subscribe(), queue.clone(), move |c| match c {
        Change::Applied(n) => vec![Key::new("", n.name_any())],
        Change::Deleted(_) => vec![],
        Change::Resynced => all2(),
    }));
    let all3 = all.clone();
    feeds.spawn(forward(inf.leases.subscribe(), queue.clone(), move |c| match c {
        Change::Applied(l) => vec![Key::new("", l.name_any())],
        Change::Deleted(_) => vec![],
        Change::Resynced => all3(),
    }));
    // A pod landing on (or changing its tolerations on) a tainted node is judged at once.
    let all4 = all.clone();
    feeds.spawn(forward(inf.pods.subscribe(), queue.clone(), move |c| match c {
        Change::Applied(p) => p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .map(|n| Key::new("", n))
            .into_iter()
            .collect(),
        Change::Deleted(_) => vec![],
        Change::Resynced => all4(),
    }));
    inf.nodes.ready().await;
    inf.leases.ready().await;
    inf.pods.ready().await;
    for k in all() {
        queue.add(k);
    }
    let ctl = Ctl {
        client: client.clone(),
        nodes: inf.nodes.store().clone(),
        leases: inf.leases.store().clone(),
        pods: inf.pods.store().clone(),
        config,
        node_events: Recorder::new(client.clone(), "node-controller"),
        evictions: Recorder::new(client, "taint-eviction-controller"),
        tainted_since: Mutex::new(HashMap::new()),
    };
    work("nodelifecycle", queue, |key| ctl.reconcile(key)).await;
    Ok(())
}

impl Ctl {
    async fn reconcile(&self, key: Key) -> Result<Option<Duration>, kube::Error> {
        let Some(node) = self.nodes.get(&key.object_ref()) else {
            return Ok(None);
        };
        let mut node = (*node).clone();
        let name = key.name.clone();
        let now = jiff::Timestamp::now();
        let lease = self.leases.get(&Key::new(LEASE_NAMESPACE, name.clone()).object_ref());
        let api: Api<Node> = Api::all(self.client.clone());
        if is_silent(
            last_heartbeat(&node, lease.as_deref()),
            now,
            self.config.node_monitor_grace,
        ) {
            if let Some(conds) = unknown_conditions(&node, now) {
                node.status.get_or_insert_with(Default::default).conditions = Some(conds);
                node = api.replace_status(&name, &PostParams::default(), &node).await?;
                let msg = format!("Node {name} status is now: NodeNotReady");
                self.node_events
                    .publish(&node, EventType::Normal, "NodeNotReady", &msg)
                    .await;
            }
        }
        if let Some(taints) = desired_taints(&node, now) {
            let patch = serde_json::json!({"spec": {"taints": taints}, "metadata": {"resourceVersion": node.resource_version()}});
            node = api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        }
        let mut next = self.config.node_monitor_period;
        let on_node: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name.as_str()))
            .collect();
        if ready_status(&node) != "True" && !ready_status(&node).is_empty() {
            for pod in on_node
                .iter()
                .filter(|p| podutil::is_pod_active(p) && podutil::is_pod_ready(p))
            {
                let pod_api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
                self.mark_not_ready(&pod_api, pod).await?;
            }
        }
        // Taint-based eviction: any NoExecute taint, whoever set it.
        let noticed = self.noticed(&name, !no_execute_taints(&node).is_empty(), now);
        if let Some(noticed) = noticed {
            for pod in on_node.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
                match eviction_time(&node, pod, noticed) {
                    Some(at) if at <= now => self.evict(pod).await?,
                    Some(at) => {
                        let wait = Duration::from_millis(at.duration_since(now).as_millis().max(100) as u64);
                        next = next.min(wait);
                    }
                    None => {}
                }
            }
        }
        Ok(Some(next))
    }

    /// When this controller first saw `node` with NoExecute taints (the clock of taints that
    /// carry no `timeAdded`); forgotten once the node has none.
    fn noticed(&self, node: &str, tainted: bool, now: jiff::Timestamp) -> Option<jiff::Timestamp> {
        let mut seen = self.tainted_since.lock().unwrap_or_else(|e| e.into_inner());
        if tainted {
            Some(*seen.entry(node.to_string()).or_insert(now))
        } else {
            seen.remove(node);
            None
        }
    }

    /// Delete a pod whose toleration of the node's NoExecute taints ran out, as upstream's
    /// taint eviction controller does: an Event, the `DisruptionTarget` condition, then the
    /// delete (with the pod's own grace period).
    async fn evict(&self, pod: &Pod) -> Result<(), kube::Error> {
        let (ns, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let msg = format!("Marking for deletion Pod {ns}/{name}");
        self.evictions
            .publish(pod, EventType::Normal, "TaintManagerEviction", &msg)
            .await;
        let patch = serde_json::json!({"status": {"conditions": [disruption_target(jiff::Timestamp::now())]}});
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
        {
            Ok(_) => {}
            Err(e) if podutil::is_not_found(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(e) if podutil::is_not_found(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `MarkPodsNotReady`: the pod's Ready condition becomes False.
    async fn mark_not_ready(&self, api: &Api<Pod>, pod: &Pod) -> Result<(), kube::Error> {
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
        let Some(mut ready) = ready.cloned() else { return Ok(()) };
        ready.status = "False".into();
        ready.last_transition_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::now(),
        ));
        // Strategic merge keyed by condition type: only Ready changes.
        let patch = serde_json::json!({"status": {"conditions": [ready]}});
        match api
            .patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Strategic(&patch))
            .await
        {
            Ok(_) => {}
            Err(e) if podutil::is_not_found(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
        self.node_events
            .publish(pod, EventType::Warning, "NodeNotReady", "Node is not ready")
            .await;
        Ok(())
    }
}
