//! The ReplicaSet controller's edge: keeps `spec.replicas` pods per ReplicaSet and writes
//! the status the Deployment controller and `kubectl get rs` read.
//!
//! Caches lag behind our own writes, so like upstream we remember what we just created and
//! deleted ("expectations") and do not act again on a ReplicaSet until the pod cache has
//! seen those changes, or a minute has passed; otherwise a burst of events would create
//! pods twice.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::logic;
use crate::events::{EventType, Recorder};
use crate::informers::Informers;
use crate::podutil::{self, controller_of, controller_ref, is_controlled_by, is_pod_active};
use crate::runtime::{forward, work, Change, Key, Queue};

/// How many pods one sync creates at most (upstream `BurstReplicas`).
const BURST: usize = 500;
/// How long unobserved creations and deletions hold a ReplicaSet back.
const EXPECTATION_TTL: Duration = Duration::from_secs(60);

struct Expectation {
    created: HashSet<String>,
    deleted: HashSet<String>,
    at: Instant,
}

struct Ctl {
    client: Client,
    replicasets: Store<ReplicaSet>,
    pods: Store<Pod>,
    recorder: Recorder,
    expectations: Mutex<HashMap<Key, Expectation>>,
}

/// Runs the controller until dropped.
pub async fn run(client: Client, inf: Informers) -> anyhow::Result<()> {
    let queue = Arc::new(Queue::default());
    let mut feeds = JoinSet::new();
    let all_rs = {
        let store = inf.replicasets.store().clone();
        move || store.state().iter().map(|r| Key::of(r.as_ref())).collect::<Vec<_>>()
    };
    let all = all_rs.clone();
    feeds.spawn(forward(inf.replicasets.subscribe(), queue.clone(), move |c| match c {
        Change::Applied(r) | Change::Deleted(r) => vec![Key::of(r.as_ref())],
        Change::Resynced => all(),
    }));
    let all = all_rs.clone();
    let rss = inf.replicasets.store().clone();
    feeds.spawn(forward(inf.pods.subscribe(), queue.clone(), move |c| match c {
        Change::Applied(p) | Change::Deleted(p) => owners_of_pod(p, &rss),
        Change::Resynced => all(),
    }));
    inf.replicasets.ready().await;
    inf.pods.ready().await;
    for k in all_rs() {
        queue.add(k);
    }
    let ctl = Ctl {
        client: client.clone(),
        replicasets: inf.replicasets.store().clone(),
        pods: inf.pods.store().clone(),
        recorder: Recorder::new(client, "replicaset-controller"),
        expectations: Mutex::new(HashMap::new()),
    };
    work("replicaset", queue, |key| ctl.reconcile(key)).await;
    Ok(())
}

/// The controlling ReplicaSet, or for an orphan pod every ReplicaSet that could adopt it.
fn owners_of_pod(p: &Pod, rss: &Store<ReplicaSet>) -> Vec<Key> {
    let ns = p.namespace().unwrap_or_default();
    if let Some(owner) = controller_of(&p.metadata) {
        return if owner.kind == "ReplicaSet" {
            vec![Key::new(ns, owner.name.clone())]
        } else {
            vec![]
        };
    }
    let labels = podutil::labels(&p.metadata);
    rss.state()
        .iter()
        .filter(|r| r.namespace().as_deref() == Some(ns.as_str()))
        .filter(|r| podutil::selector(r.spec.as_ref().map(|s| &s.selector)).matches(&labels))
        .map(|r| Key::of(r.as_ref()))
        .collect()
}

impl Ctl {
    /// Whether the pod cache has caught up with our last writes for `key`; if not, how long
    /// until we stop waiting.
    fn expectations_pending(&self, key: &Key) -> Option<Duration> {
        let mut exp = self.expectations.lock().expect("expectations lock poisoned");
        let e = exp.get(key)?;
        let elapsed = e.at.elapsed();
        if elapsed >= EXPECTATION_TTL {
            exp.remove(key);
            return None;
        }
        let pods = self.pods.state();
        let created_seen = e
            .created
            .iter()
            .all(|n| pods.iter().any(|p| p.metadata.name.as_deref() == Some(n.as_str())));
        let deleted_seen = e.deleted.iter().all(|uid| {
            pods.iter()
                .all(|p| p.metadata.uid.as_deref() != Some(uid.as_str()) || p.metadata.deletion_timestamp.is_some())
        });
        if created_seen && deleted_seen {
            exp.remove(key);
            return None;
        }
        Some(EXPECTATION_TTL - elapsed)
    }

    fn expect(&self, key: &Key, created: HashSet<String>, deleted: HashSet<String>) {
        if created.is_empty() && deleted.is_empty() {
            return;
        }
        self.expectations.lock().expect("expectations lock poisoned").insert(
            key.clone(),
            Expectation {
                created,
                deleted,
                at: Instant::now(),
            },
        );
    }

    async fn reconcile(&self, key: Key) -> Result<Option<Duration>, kube::Error> {
        let Some(rs) = self.replicasets.get(&key.object_ref()) else {
            self.expectations
                .lock()
                .expect("expectations lock poisoned")
                .remove(&key);
            return Ok(None);
        };
        let uid = rs.uid().unwrap_or_default();
        let sel = podutil::selector(rs.spec.as_ref().map(|s| &s.selector));
        let pod_api: Api<Pod> = Api::namespaced(self.client.clone(), &key.namespace);
        let mut owned: Vec<Pod> = Vec::new();
        for p in self.pods.state() {
            if p.namespace().as_deref() != Some(key.namespace.as_str()) {
                continue;
            }
            if is_controlled_by(&p.metadata, &uid) {
                owned.push((*p).clone());
            } else if controller_of(&p.metadata).is_none()
                && is_pod_active(&p)
                && rs.metadata.deletion_timestamp.is_none()
                && sel.matches(&podutil::labels(&p.metadata))
            {
                let mut refs = p.metadata.owner_references.clone().unwrap_or_default();
                refs.push(controller_ref(rs.as_ref()));
                let patch =
                    serde_json::json!({"metadata": {"ownerReferences": refs, "resourceVersion": p.resource_version()}});
                owned.push(
                    pod_api
                        .patch(&p.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
                        .await?,
                );
            }
        }
        let active: Vec<&Pod> = owned.iter().filter(|p| is_pod_active(p)).collect();
        let pending = self.expectations_pending(&key);
        if pending.is_none() && rs.metadata.deletion_timestamp.is_none() {
            self.manage(&key, &rs, &active, &pod_api).await?;
        }
        let now = jiff::Timestamp::now();
        let status = logic::calculate_status(&rs, &active, now);
        let old = rs.status.clone().unwrap_or_default();
        if !logic::same_status(&old, &status) {
            let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &key.namespace);
            let mut copy = (*rs).clone();
            copy.status = Some(status.clone());
            api.replace_status(&key.name, &PostParams::default(), &copy).await?;
        }
        let replicas = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let min_ready = rs.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0);
        let wait_available =
            (min_ready > 0 && status.ready_replicas == Some(replicas) && status.available_replicas != Some(replicas))
                .then(|| Duration::from_secs(min_ready as u64));
        Ok(match (pending, wait_available) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// `manageReplicas`: create or delete the difference.
    async fn manage(&self, key: &Key, rs: &ReplicaSet, active: &[&Pod], api: &Api<Pod>) -> Result<(), kube::Error> {
        let want = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0) as usize;
        if active.len() < want {
            let missing = (want - active.len()).min(BURST);
            let template = logic::pod_from_template(rs);
            let pp = PostParams::default();
            let mut created = HashSet::new();
            let mut batch = 1;
            let mut remaining = missing;
            let mut failure = None;
            // Slow start: 1, 2, 4, ... so a failing template costs one error, not hundreds.
            while remaining > 0 && failure.is_none() {
                let n = batch.min(remaining);
                let results = futures::future::join_all((0..n).map(|_| api.create(&pp, &template))).await;
                for r in results {
                    match r {
                        Ok(p) => {
                            let name = p.name_any();
                            self.recorder
                                .publish(
                                    rs,
                                    EventType::Normal,
                                    "SuccessfulCreate",
                                    &format!("Created pod: {name}"),
                                )
                                .await;
                            created.insert(name);
                        }
                        Err(e) => {
                            self.recorder
                                .publish(rs, EventType::Warning, "FailedCreate", &format!("Error creating: {e}"))
                                .await;
                            failure = Some(e);
                        }
                    }
                }
                remaining -= n;
                batch *= 2;
            }
            self.expect(key, created, HashSet::new());
            if let Some(e) = failure {
                return Err(e);
            }
        } else if active.len() > want {
            let related = self.related_pods(rs);
            let related: Vec<&Pod> = related.iter().map(|p| p.as_ref()).collect();
            let victims = logic::pods_to_delete(active, &related, (active.len() - want).min(BURST));
            let mut deleted = HashSet::new();
            let mut failure = None;
            for p in victims {
                let dp = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: p.uid(),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                match api.delete(&p.name_any(), &dp).await {
                    Ok(_) => {
                        let msg = format!("Deleted pod: {}", p.name_any());
                        self.recorder
                            .publish(rs, EventType::Normal, "SuccessfulDelete", &msg)
                            .await;
                        deleted.insert(p.uid().unwrap_or_default());
                    }
                    Err(e) if podutil::is_not_found(&e) => {}
                    Err(e) => {
                        let msg = format!("Error deleting: {e}");
                        self.recorder
                            .publish(rs, EventType::Warning, "FailedDelete", &msg)
                            .await;
                        failure = Some(e);
                    }
                }
            }
            self.expect(key, HashSet::new(), deleted);
            if let Some(e) = failure {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Active pods of this ReplicaSet and its siblings (same controller), for spreading
    /// deletions across nodes.
    fn related_pods(&self, rs: &ReplicaSet) -> Vec<Arc<Pod>> {
        let ns = rs.namespace().unwrap_or_default();
        let mut uids: HashSet<String> = rs.uid().into_iter().collect();
        if let Some(owner) = controller_of(&rs.metadata) {
            for sib in self.replicasets.state() {
                if sib.namespace().as_deref() == Some(ns.as_str())
                    && controller_of(&sib.metadata).is_some_and(|o| o.uid == owner.uid)
                {
                    uids.extend(sib.uid());
                }
            }
        }
        self.pods
            .state()
            .into_iter()
            .filter(|p| is_pod_active(p) && controller_of(&p.metadata).is_some_and(|o| uids.contains(&o.uid)))
            .collect()
    }
}
