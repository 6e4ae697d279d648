//! The scheduler's edge: pending pods of `default-scheduler` are bound to a node with
//! `POST pods/<name>/binding`, or get a `FailedScheduling` event and `PodScheduled=False`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use tokio::task::JoinSet;

use super::choose::{schedule, Outcome};
use crate::events::{EventType, Recorder};
use crate::informers::Informers;
use crate::podutil;
use crate::runtime::{forward, work, Change, Key, Queue};

/// The scheduler name pods get by default.
pub const DEFAULT_SCHEDULER: &str = "default-scheduler";
/// How long an unschedulable pod waits before another attempt without any node change
/// (upstream retries unschedulable pods at the latest after 5 minutes; we are cheaper).
const UNSCHEDULABLE_RETRY: Duration = Duration::from_secs(60);

fn wants_scheduling(p: &Pod) -> bool {
    let spec = p.spec.as_ref();
    spec.and_then(|s| s.node_name.as_deref()).is_none_or(str::is_empty)
        && spec
            .and_then(|s| s.scheduler_name.as_deref())
            .is_none_or(|n| n.is_empty() || n == DEFAULT_SCHEDULER)
        && p.metadata.deletion_timestamp.is_none()
        && !matches!(podutil::phase(p), "Succeeded" | "Failed")
}

struct Ctl {
    client: Client,
    pods: Store<Pod>,
    nodes: Store<Node>,
    recorder: Recorder,
    /// Bindings made but not yet seen in the pod cache, so a burst spreads across nodes.
    assumed: std::sync::Arc<Mutex<HashMap<String, String>>>,
}

/// Runs the scheduler until dropped.
pub async fn run(client: Client, inf: Informers) -> anyhow::Result<()> {
    let queue = Arc::new(Queue::default());
    let mut feeds = JoinSet::new();
    let pending = {
        let pods = inf.pods.store().clone();
        move || {
            pods.state()
                .iter()
                .filter(|p| wants_scheduling(p))
                .map(|p| Key::of(p.as_ref()))
                .collect::<Vec<_>>()
        }
    };
    let all = pending.clone();
    feeds.spawn(forward(inf.pods.subscribe(), queue.clone(), move |c| match c {
        Change::Applied(p) if wants_scheduling(p) => vec![Key::of(p.as_ref())],
        Change::Applied(_) | Change::Deleted(_) => vec![],
        Change::Resynced => all(),
    }));
    // Any node change may make pending pods schedulable.
    let all = pending.clone();
    feeds.spawn(forward(inf.nodes.subscribe(), queue.clone(), move |_| all()));
    inf.pods.ready().await;
    inf.nodes.ready().await;
    for k in pending() {
        queue.add(k);
    }
    let ctl = Ctl {
        client: client.clone(),
        pods: inf.pods.store().clone(),
        nodes: inf.nodes.store().clone(),
        recorder: Recorder::new(client, DEFAULT_SCHEDULER),
        assumed: std::sync::Arc::new(Mutex::new(HashMap::new())),
    };
    work("scheduler", queue, |key| ctl.reconcile(key)).await;
    Ok(())
}

impl Ctl {
    fn load(&self) -> HashMap<String, usize> {
        let mut load: HashMap<String, usize> = HashMap::new();
        let mut assumed = self.assumed.lock().expect("lock poisoned");
        let pods = self.pods.state();
        for p in &pods {
            let node = p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
            if !node.is_empty() && !matches!(podutil::phase(p), "Succeeded" | "Failed") {
                *load.entry(node).or_default() += 1;
            }
        }
        // Forget assumptions the cache has caught up with (or whose pod is gone).
        assumed.retain(|uid, _| {
            pods.iter()
                .any(|p| p.uid().as_deref() == Some(uid.as_str()) && wants_scheduling(p))
        });
        for node in assumed.values() {
            *load.entry(node.clone()).or_default() += 1;
        }
        load
    }

    async fn reconcile(&self, key: Key) -> Result<Option<Duration>, kube::Error> {
        let Some(pod) = self.pods.get(&key.object_ref()) else {
            return Ok(None);
        };
        let uid = pod.uid().unwrap_or_default();
        if !wants_scheduling(&pod) || self.assumed.lock().expect("lock poisoned").contains_key(&uid) {
            return Ok(None);
        }
        let nodes = self.nodes.state();
        let nodes: Vec<&Node> = nodes.iter().map(|n| n.as_ref()).collect();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.namespace);
        match schedule(&pod, &nodes, &self.load()) {
            Outcome::Bind(node) => {
                let binding = Binding {
                    metadata: ObjectMeta {
                        name: Some(key.name.clone()),
                        namespace: Some(key.namespace.clone()),
                        uid: Some(uid.clone()),
                        ..Default::default()
                    },
                    target: ObjectReference {
                        api_version: Some("v1".into()),
                        kind: Some("Node".into()),
                        name: Some(node.clone()),
                        ..Default::default()
                    },
                };
                // Assume the placement at once and bind in the background, as kube-scheduler's
                // binding cycle does: the next pod is placed while this binding is in flight
                // (a burst of pods is not bound one round trip at a time).
                self.assumed
                    .lock()
                    .expect("lock poisoned")
                    .insert(uid.clone(), node.clone());
                let assumed = self.assumed.clone();
                let recorder = self.recorder.clone();
                tokio::spawn(async move {
                    match api
                        .create_subresource::<_, serde_json::Value>(
                            "binding",
                            &key.name,
                            &PostParams::default(),
                            &binding,
                        )
                        .await
                    {
                        Ok(_) => {
                            let msg = format!("Successfully assigned {}/{} to {node}", key.namespace, key.name);
                            recorder
                                .publish(pod.as_ref(), EventType::Normal, "Scheduled", &msg)
                                .await;
                        }
                        // Already bound (by us a moment ago, or someone else), or gone.
                        Err(e) if podutil::is_conflict(&e) || podutil::is_not_found(&e) => {}
                        Err(e) => {
                            // Forget the assumption: the pod is placed again on its next change
                            // or resync.
                            tracing::warn!(pod = %key.name, error = %e, "binding failed");
                            assumed.lock().expect("lock poisoned").remove(&uid);
                        }
                    }
                });
                Ok(None)
            }
            Outcome::Unschedulable(msg) => {
                self.recorder
                    .publish(pod.as_ref(), EventType::Warning, "FailedScheduling", &msg)
                    .await;
                self.mark_unschedulable(&api, &pod, &msg).await?;
                Ok(Some(UNSCHEDULABLE_RETRY))
            }
        }
    }

    /// Sets `PodScheduled=False` with reason `Unschedulable`, as `kubectl describe pod` shows.
    async fn mark_unschedulable(&self, api: &Api<Pod>, pod: &Pod, msg: &str) -> Result<(), kube::Error> {
        let current = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
        if current.is_some_and(|c| c.status == "False" && c.message.as_deref() == Some(msg)) {
            return Ok(());
        }
        let cond = PodCondition {
            type_: "PodScheduled".into(),
            status: "False".into(),
            reason: Some("Unschedulable".into()),
            message: Some(msg.to_string()),
            last_transition_time: Some(Time(jiff::Timestamp::now())),
            ..Default::default()
        };
        // A strategic merge keyed by condition type: the other conditions (the node agent's,
        // maybe newer than our cache) stay as they are.
        let patch = serde_json::json!({"status": {"conditions": [cond]}});
        match api
            .patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Strategic(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if podutil::is_not_found(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
