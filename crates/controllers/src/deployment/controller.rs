//! The Deployment controller's edge: watches Deployments, ReplicaSets and Pods, and applies
//! the plans of [`super::rollout`] and [`super::status`] through the API, the way upstream's
//! `syncDeployment` does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use tokio::task::JoinSet;

use super::hash::{equal_ignore_hash, pod_template_hash, POD_TEMPLATE_HASH_LABEL};
use super::rollout::{self as ro, Resize, DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION, REVISION_ANNOTATION};
use super::status as st;
use crate::events::{EventType, Recorder};
use crate::informers::Informers;
use crate::podutil::{self, controller_of, controller_ref, is_controlled_by};
use crate::runtime::{forward, work, Change, Key, Queue};

/// Why a Deployment sync failed; every variant is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed (conflicts from a stale cache land here and resolve on retry).
    #[error("{0}")]
    Api(#[from] kube::Error),
    /// The new ReplicaSet's name is taken by a ReplicaSet with another template; the
    /// collision count was bumped so the next try uses another hash.
    #[error("hash collision for ReplicaSet {0}")]
    Collision(String),
}

impl crate::runtime::Transient for Error {
    fn is_transient(&self) -> bool {
        match self {
            Error::Api(e) => e.is_transient(),
            Error::Collision(_) => true,
        }
    }
}

/// Annotations never copied from a Deployment to its ReplicaSets.
const ANNOTATIONS_TO_SKIP: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION_ANNOTATION,
    "deployment.kubernetes.io/revision-history",
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    "deprecated.deployment.rollback.to",
];

struct Ctl {
    client: Client,
    deployments: Store<Deployment>,
    replicasets: Store<ReplicaSet>,
    pods: Store<Pod>,
    recorder: Recorder,
}

/// Runs the controller until dropped.
pub async fn run(client: Client, inf: Informers) -> anyhow::Result<()> {
    let queue = Arc::new(Queue::default());
    let mut feeds = JoinSet::new();
    let all_deploys = {
        let store = inf.deployments.store().clone();
        move || store.state().iter().map(|d| Key::of(d.as_ref())).collect::<Vec<_>>()
    };
    let all = all_deploys.clone();
    feeds.spawn(forward(inf.deployments.subscribe(), queue.clone(), move |c| match c {
        Change::Applied(d) | Change::Deleted(d) => vec![Key::of(d.as_ref())],
        Change::Resynced => all(),
    }));
    let all = all_deploys.clone();
    let deploys = inf.deployments.store().clone();
    feeds.spawn(forward(inf.replicasets.subscribe(), queue.clone(), move |c| match c {
        Change::Applied(rs) | Change::Deleted(rs) => owners_of_rs(rs, &deploys),
        Change::Resynced => all(),
    }));
    // Pods matter only to Recreate, which waits for old pods to be gone.
    let rss = inf.replicasets.store().clone();
    feeds.spawn(forward(inf.pods.subscribe(), queue.clone(), move |c| match c {
        Change::Deleted(p) => {
            let Some(owner) = controller_of(&p.metadata).filter(|r| r.kind == "ReplicaSet") else {
                return vec![];
            };
            let key = Key::new(p.namespace().unwrap_or_default(), owner.name.clone());
            match rss.get(&key.object_ref()) {
                Some(rs) => controller_of(&rs.metadata)
                    .filter(|r| r.kind == "Deployment")
                    .map(|r| vec![Key::new(key.namespace.clone(), r.name.clone())])
                    .unwrap_or_default(),
                None => vec![],
            }
        }
        _ => vec![],
    }));
    inf.deployments.ready().await;
    inf.replicasets.ready().await;
    inf.pods.ready().await;
    for k in all_deploys() {
        queue.add(k);
    }
    let ctl = Ctl {
        client: client.clone(),
        deployments: inf.deployments.store().clone(),
        replicasets: inf.replicasets.store().clone(),
        pods: inf.pods.store().clone(),
        recorder: Recorder::new(client, "deployment-controller"),
    };
    work("deployment", queue, |key| ctl.reconcile(key)).await;
    Ok(())
}

/// The Deployment controlling this ReplicaSet, or for an orphan every Deployment in its
/// namespace whose selector matches (one of them may adopt it).
fn owners_of_rs(rs: &ReplicaSet, deploys: &Store<Deployment>) -> Vec<Key> {
    let ns = rs.namespace().unwrap_or_default();
    if let Some(owner) = controller_of(&rs.metadata) {
        return if owner.kind == "Deployment" {
            vec![Key::new(ns, owner.name.clone())]
        } else {
            vec![]
        };
    }
    let labels = podutil::labels(&rs.metadata);
    deploys
        .state()
        .iter()
        .filter(|d| d.namespace().as_deref() == Some(ns.as_str()))
        .filter(|d| podutil::selector(d.spec.as_ref().map(|s| &s.selector)).matches(&labels))
        .map(|d| Key::of(d.as_ref()))
        .collect()
}

fn now() -> jiff::Timestamp {
    // Whole seconds: that is what the server stores, so unchanged conditions compare equal.
    jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

impl Ctl {
    async fn reconcile(&self, key: Key) -> Result<Option<Duration>, Error> {
        let Some(d) = self.deployments.get(&key.object_ref()) else {
            return Ok(None);
        };
        let mut d = (*d).clone();
        let selector = d.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default();
        if selector == LabelSelector::default() {
            self.recorder
                .publish(
                    &d,
                    EventType::Warning,
                    "SelectingAll",
                    "This deployment is selecting all pods. A non-empty selector is required.",
                )
                .await;
            let mut s = d.status.clone().unwrap_or_default();
            if s.observed_generation < d.metadata.generation {
                s.observed_generation = d.metadata.generation;
                self.write_status(&mut d, s).await?;
            }
            return Ok(None);
        }
        let mut rss = self.replica_sets_for(&d).await?;
        if d.metadata.deletion_timestamp.is_some() {
            let (new, old) = self.sync_revision(&mut d, &mut rss, false).await?;
            let status = st::calculate_status(&d, &refs(&rss, &old, new), new.map(|i| &rss[i]), now());
            self.write_status_if_changed(&mut d, status).await?;
            return Ok(None);
        }
        self.check_paused_conditions(&mut d).await?;
        let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        if paused || self.is_scaling_event(&d, &rss) {
            return self.sync(&mut d, &mut rss, paused).await;
        }
        if ro::is_rolling_update(&d) {
            self.rollout_rolling(&mut d, &mut rss).await
        } else {
            self.rollout_recreate(&mut d, &mut rss).await
        }
    }

    /// ReplicaSets this Deployment controls, adopting matching orphans
    /// (`getReplicaSetsForDeployment`).
    async fn replica_sets_for(&self, d: &Deployment) -> Result<Vec<ReplicaSet>, Error> {
        let ns = d.namespace().unwrap_or_default();
        let uid = d.uid().unwrap_or_default();
        let sel = podutil::selector(d.spec.as_ref().map(|s| &s.selector));
        let mut out = Vec::new();
        for rs in self.replicasets.state() {
            if rs.namespace().as_deref() != Some(ns.as_str()) {
                continue;
            }
            if is_controlled_by(&rs.metadata, &uid) {
                out.push((*rs).clone());
            } else if controller_of(&rs.metadata).is_none()
                && rs.metadata.deletion_timestamp.is_none()
                && d.metadata.deletion_timestamp.is_none()
                && sel.matches(&podutil::labels(&rs.metadata))
            {
                let mut refs = rs.metadata.owner_references.clone().unwrap_or_default();
                refs.push(controller_ref(d));
                let patch = serde_json::json!({"metadata": {"ownerReferences": refs, "resourceVersion": rs.resource_version()}});
                let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &ns);
                out.push(
                    api.patch(&rs.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
                        .await?,
                );
            }
        }
        Ok(out)
    }

    fn is_scaling_event(&self, d: &Deployment, rss: &[ReplicaSet]) -> bool {
        let replicas = ro::deployment_replicas(d);
        rss.iter()
            .filter(|rs| ro::rs_replicas(rs) > 0)
            .filter_map(|rs| ro::int_annotation(rs, DESIRED_REPLICAS_ANNOTATION))
            .any(|desired| desired != replicas)
    }

    async fn check_paused_conditions(&self, d: &mut Deployment) -> Result<(), Error> {
        let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        let mut s = d.status.clone().unwrap_or_default();
        let reason = st::get_condition(&s, "Progressing").and_then(|c| c.reason.clone());
        let cond = if paused && reason.as_deref() != Some(st::PAUSED_REASON) {
            st::condition(
                "Progressing",
                "Unknown",
                st::PAUSED_REASON,
                "Deployment is paused".into(),
                now(),
            )
        } else if !paused && reason.as_deref() == Some(st::PAUSED_REASON) {
            st::condition(
                "Progressing",
                "Unknown",
                st::RESUMED_REASON,
                "Deployment is resumed".into(),
                now(),
            )
        } else {
            return Ok(());
        };
        st::set_condition(&mut s, cond);
        self.write_status(d, s).await
    }

    /// `dc.sync`: scale (no rollout), clean up history when paused, update status.
    async fn sync(
        &self,
        d: &mut Deployment,
        rss: &mut Vec<ReplicaSet>,
        paused: bool,
    ) -> Result<Option<Duration>, Error> {
        let (new, old) = self.sync_revision(d, rss, false).await?;
        let plan = ro::scale_plan(
            d,
            new.map(|i| &rss[i]),
            &old.iter().map(|i| &rss[*i]).collect::<Vec<_>>(),
        );
        self.apply(d, rss, plan).await?;
        if paused {
            self.cleanup(d, rss, &old).await?;
        }
        let status = st::calculate_status(d, &refs(rss, &old, new), new.map(|i| &rss[i]), now());
        self.write_status_if_changed(d, status).await?;
        Ok(None)
    }

    async fn rollout_rolling(&self, d: &mut Deployment, rss: &mut Vec<ReplicaSet>) -> Result<Option<Duration>, Error> {
        let (new, old) = self.sync_revision(d, rss, true).await?;
        let new = new.expect("created when missing");
        let all_idx: Vec<usize> = old.iter().copied().chain([new]).collect();
        // Scale the new ReplicaSet up (or down to spec.replicas).
        let replicas = ro::deployment_replicas(d);
        let new_size = ro::rs_replicas(&rss[new]);
        let target = if new_size > replicas {
            replicas
        } else {
            ro::new_rs_new_replicas(d, &all_idx.iter().map(|i| &rss[*i]).collect::<Vec<_>>(), &rss[new])
        };
        let scaled_up = new_size != replicas && target != new_size;
        if scaled_up {
            let name = rss[new].name_any();
            self.apply(d, rss, vec![(name, target)]).await?;
            return self.sync_rollout_status(d, rss, &old, Some(new)).await;
        }
        let plan = ro::old_replica_sets_plan(
            d,
            &ro::active(&old.iter().map(|i| &rss[*i]).collect::<Vec<_>>()),
            Some(&rss[new]),
        );
        if !plan.is_empty() {
            self.apply(d, rss, plan).await?;
            return self.sync_rollout_status(d, rss, &old, Some(new)).await;
        }
        let status = st::calculate_status(d, &refs(rss, &old, Some(new)), Some(&rss[new]), now());
        if st::deployment_complete(d, &status) {
            self.cleanup(d, rss, &old).await?;
        }
        self.sync_rollout_status(d, rss, &old, Some(new)).await
    }

    async fn rollout_recreate(&self, d: &mut Deployment, rss: &mut Vec<ReplicaSet>) -> Result<Option<Duration>, Error> {
        let (mut new, mut old) = self.sync_revision(d, rss, false).await?;
        let plan: Vec<Resize> = old
            .iter()
            .map(|i| &rss[*i])
            .filter(|rs| ro::rs_replicas(rs) > 0)
            .map(|rs| (rs.name_any(), 0))
            .collect();
        if !plan.is_empty() {
            self.apply(d, rss, plan).await?;
            return self.sync_rollout_status(d, rss, &old, new).await;
        }
        if self.old_pods_running(rss, new, &old) {
            return self.sync_rollout_status(d, rss, &old, new).await;
        }
        if new.is_none() {
            (new, old) = self.sync_revision(d, rss, true).await?;
        }
        let n = new.expect("created when missing");
        let name = rss[n].name_any();
        self.apply(d, rss, vec![(name, ro::deployment_replicas(d))]).await?;
        let status = st::calculate_status(d, &refs(rss, &old, new), new.map(|i| &rss[i]), now());
        if st::deployment_complete(d, &status) {
            self.cleanup(d, rss, &old).await?;
        }
        self.sync_rollout_status(d, rss, &old, new).await
    }

    /// `oldPodsRunning`: any old ReplicaSet still reports pods, or a pod of one is not finished.
    fn old_pods_running(&self, rss: &[ReplicaSet], new: Option<usize>, old: &[usize]) -> bool {
        if old
            .iter()
            .any(|i| rss[*i].status.as_ref().map(|s| s.replicas).unwrap_or(0) > 0)
        {
            return true;
        }
        let new_uid = new.and_then(|i| rss[i].uid());
        let old_uids: Vec<String> = old.iter().filter_map(|i| rss[*i].uid()).collect();
        self.pods.state().iter().any(|p| {
            controller_of(&p.metadata).is_some_and(|r| old_uids.contains(&r.uid) && Some(&r.uid) != new_uid.as_ref())
                && !matches!(podutil::phase(p), "Succeeded" | "Failed")
        })
    }

    async fn sync_rollout_status(
        &self,
        d: &mut Deployment,
        rss: &[ReplicaSet],
        old: &[usize],
        new: Option<usize>,
    ) -> Result<Option<Duration>, Error> {
        let t = now();
        let status = st::rollout_status(d, &refs(rss, old, new), new.map(|i| &rss[i]), t);
        let requeue = st::requeue_stuck(d, &status, t);
        self.write_status_if_changed(d, status).await?;
        // Pods become available minReadySeconds after Ready without any event: look again.
        let min_ready = d.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0);
        let again = (min_ready > 0).then(|| Duration::from_secs(min_ready as u64 + 1));
        Ok(match (requeue, again) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// `getAllReplicaSetsAndSyncRevision`: finds (or, with `create`, creates) the new
    /// ReplicaSet and brings revisions up to date. Returns (new index, old indexes).
    async fn sync_revision(
        &self,
        d: &mut Deployment,
        rss: &mut Vec<ReplicaSet>,
        create: bool,
    ) -> Result<(Option<usize>, Vec<usize>), Error> {
        let template = d.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
        let mut order: Vec<usize> = (0..rss.len()).collect();
        order.sort_by(|a, b| ro::by_creation(&rss[*a], &rss[*b]));
        let new = order.iter().copied().find(|i| {
            rss[*i]
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .is_some_and(|t| equal_ignore_hash(t, &template))
        });
        let old: Vec<usize> = (0..rss.len()).filter(|i| Some(*i) != new).collect();
        let max_old = old.iter().map(|i| ro::revision(&rss[*i].metadata)).max().unwrap_or(0);
        let new_revision = max_old + 1;
        let ns = d.namespace().unwrap_or_default();
        let rs_api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &ns);
        if let Some(i) = new {
            let mut rs = rss[i].clone();
            let mut changed = set_new_rs_annotations(d, &mut rs.metadata, new_revision, true);
            let min_ready = d.spec.as_ref().and_then(|s| s.min_ready_seconds);
            if let Some(spec) = rs.spec.as_mut() {
                if spec.min_ready_seconds != min_ready {
                    spec.min_ready_seconds = min_ready;
                    changed = true;
                }
            }
            if changed {
                rss[i] = rs_api.replace(&rs.name_any(), &PostParams::default(), &rs).await?;
            }
            let rev = ro::revision(&rss[i].metadata);
            self.set_deployment_revision(d, rev).await?;
            let mut s = d.status.clone().unwrap_or_default();
            if st::get_condition(&s, "Progressing").is_none() {
                let msg = format!("Found new replica set \"{}\"", rss[i].name_any());
                st::set_condition(
                    &mut s,
                    st::condition("Progressing", "True", st::FOUND_NEW_RS_REASON, msg, now()),
                );
                self.write_status(d, s).await?;
            }
            return Ok((Some(i), old));
        }
        if !create {
            return Ok((None, old));
        }
        let collision = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = pod_template_hash(&template, collision);
        let mut new_template = template.clone();
        new_template
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(Default::default)
            .insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
        let mut selector = d.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default();
        selector
            .match_labels
            .get_or_insert_with(Default::default)
            .insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
        let name = format!("{}-{}", d.name_any(), hash);
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                labels: new_template.metadata.as_ref().and_then(|m| m.labels.clone()),
                owner_references: Some(vec![controller_ref(d)]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: d.spec.as_ref().and_then(|s| s.min_ready_seconds),
                selector,
                template: Some(new_template),
            }),
            status: None,
        };
        let all: Vec<&ReplicaSet> = old.iter().map(|i| &rss[*i]).chain([&rs]).collect();
        let size = ro::new_rs_new_replicas(d, &all, &rs);
        rs.spec.as_mut().expect("set above").replicas = Some(size);
        set_new_rs_annotations(d, &mut rs.metadata, new_revision, false);
        let (created, already_existed) = match rs_api.create(&PostParams::default(), &rs).await {
            Ok(c) => (c, false),
            Err(e) if podutil::is_conflict(&e) => {
                let existing = rs_api.get(&name).await?;
                let same = is_controlled_by(&existing.metadata, &d.uid().unwrap_or_default())
                    && existing
                        .spec
                        .as_ref()
                        .and_then(|s| s.template.as_ref())
                        .is_some_and(|t| equal_ignore_hash(t, &template));
                if !same {
                    let mut s = d.status.clone().unwrap_or_default();
                    s.collision_count = Some(s.collision_count.unwrap_or(0) + 1);
                    self.write_status(d, s).await?;
                    return Err(Error::Collision(name));
                }
                (existing, true)
            }
            Err(e) => return Err(e.into()),
        };
        if !already_existed && size > 0 {
            let msg = format!("Scaled up replica set {name} from 0 to {size}");
            self.recorder
                .publish(d, EventType::Normal, "ScalingReplicaSet", &msg)
                .await;
        }
        self.set_deployment_revision(d, new_revision).await?;
        if !already_existed {
            let mut s = d.status.clone().unwrap_or_default();
            let msg = format!("Created new replica set \"{name}\"");
            st::set_condition(
                &mut s,
                st::condition("Progressing", "True", st::NEW_RS_REASON, msg, now()),
            );
            self.write_status(d, s).await?;
        }
        rss.push(created);
        Ok((Some(rss.len() - 1), old))
    }

    async fn set_deployment_revision(&self, d: &mut Deployment, revision: i64) -> Result<(), Error> {
        if ro::revision(&d.metadata) == revision || revision == 0 {
            return Ok(());
        }
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &d.namespace().unwrap_or_default());
        let patch = serde_json::json!({"metadata": {"annotations": {REVISION_ANNOTATION: revision.to_string()}}});
        *d = api
            .patch(&d.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    /// Resizes ReplicaSets (`scaleReplicaSetAndRecordEvent`), refreshing the replica
    /// annotations, and records `ScalingReplicaSet` events.
    async fn apply(&self, d: &Deployment, rss: &mut [ReplicaSet], plan: Vec<Resize>) -> Result<(), Error> {
        let replicas = ro::deployment_replicas(d);
        let max = replicas + ro::max_surge(d);
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &d.namespace().unwrap_or_default());
        for (name, size) in plan {
            let Some(rs) = rss
                .iter_mut()
                .find(|rs| rs.metadata.name.as_deref() == Some(name.as_str()))
            else {
                continue;
            };
            let from = ro::rs_replicas(rs);
            let annotations_ok = ro::int_annotation(rs, DESIRED_REPLICAS_ANNOTATION) == Some(replicas)
                && ro::int_annotation(rs, MAX_REPLICAS_ANNOTATION) == Some(max);
            if from == size && annotations_ok {
                continue;
            }
            let mut copy = rs.clone();
            copy.spec.get_or_insert_with(Default::default).replicas = Some(size);
            let ann = copy.metadata.annotations.get_or_insert_with(BTreeMap::new);
            ann.insert(DESIRED_REPLICAS_ANNOTATION.into(), replicas.to_string());
            ann.insert(MAX_REPLICAS_ANNOTATION.into(), max.to_string());
            *rs = api.replace(&name, &PostParams::default(), &copy).await?;
            if from != size {
                let op = if size > from { "up" } else { "down" };
                let msg = format!("Scaled {op} replica set {name} from {from} to {size}");
                self.recorder
                    .publish(d, EventType::Normal, "ScalingReplicaSet", &msg)
                    .await;
            }
        }
        Ok(())
    }

    /// `cleanupDeployment`: keeps at most `revisionHistoryLimit` (default 10) old, empty
    /// ReplicaSets, deleting the oldest revisions first.
    async fn cleanup(&self, d: &Deployment, rss: &[ReplicaSet], old: &[usize]) -> Result<(), Error> {
        let limit = d.spec.as_ref().and_then(|s| s.revision_history_limit).unwrap_or(10);
        let mut alive: Vec<&ReplicaSet> = old
            .iter()
            .map(|i| &rss[*i])
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        let diff = alive.len() as i32 - limit;
        if diff <= 0 {
            return Ok(());
        }
        alive.sort_by(|a, b| {
            ro::revision(&a.metadata)
                .cmp(&ro::revision(&b.metadata))
                .then_with(|| ro::by_creation(a, b))
        });
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &d.namespace().unwrap_or_default());
        for rs in alive.into_iter().take(diff as usize) {
            let status = rs.status.clone().unwrap_or_default();
            if status.replicas != 0 || ro::rs_replicas(rs) != 0 || rs.metadata.generation > status.observed_generation {
                continue;
            }
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: rs.uid(),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api.delete(&rs.name_any(), &dp).await {
                Ok(_) => {}
                Err(e) if podutil::is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn write_status_if_changed(&self, d: &mut Deployment, status: DeploymentStatus) -> Result<(), Error> {
        if st::same_status(&d.status.clone().unwrap_or_default(), &status) {
            return Ok(());
        }
        self.write_status(d, status).await
    }

    async fn write_status(&self, d: &mut Deployment, status: DeploymentStatus) -> Result<(), Error> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &d.namespace().unwrap_or_default());
        let mut copy = d.clone();
        copy.status = Some(status);
        *d = api.replace_status(&d.name_any(), &PostParams::default(), &copy).await?;
        Ok(())
    }
}

fn refs<'a>(rss: &'a [ReplicaSet], old: &[usize], new: Option<usize>) -> Vec<&'a ReplicaSet> {
    old.iter().copied().chain(new).map(|i| &rss[i]).collect()
}

/// `SetNewReplicaSetAnnotations`: copies the Deployment's annotations, raises the revision
/// (remembering the previous one in `revision-history` when a ReplicaSet is reused, as by
/// `kubectl rollout undo`), and on creation records desired/max replicas.
pub fn set_new_rs_annotations(d: &Deployment, meta: &mut ObjectMeta, new_revision: i64, exists: bool) -> bool {
    let mut changed = false;
    let ann = meta.annotations.get_or_insert_with(BTreeMap::new);
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if ANNOTATIONS_TO_SKIP.contains(&k.as_str()) || ann.get(k) == Some(v) {
            continue;
        }
        ann.insert(k.clone(), v.clone());
        changed = true;
    }
    let old: Option<i64> = ann.get(REVISION_ANNOTATION).and_then(|v| v.parse().ok());
    if old.unwrap_or(0) < new_revision {
        ann.insert(REVISION_ANNOTATION.into(), new_revision.to_string());
        changed = true;
        if let Some(old) = old {
            let key = "deployment.kubernetes.io/revision-history";
            let history = match ann.get(key) {
                Some(h) if !h.is_empty() => format!("{h},{old}"),
                _ => old.to_string(),
            };
            ann.insert(key.into(), history);
        }
    }
    if !exists {
        let replicas = ro::deployment_replicas(d);
        ann.insert(DESIRED_REPLICAS_ANNOTATION.into(), replicas.to_string());
        ann.insert(
            MAX_REPLICAS_ANNOTATION.into(),
            (replicas + ro::max_surge(d)).to_string(),
        );
        changed = true;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_replica_set_gets_the_next_revision_and_remembers_the_old_one() {
        let mut d = Deployment::default();
        d.metadata.annotations = Some(
            [
                ("team".to_string(), "a".to_string()),
                (
                    "kubectl.kubernetes.io/last-applied-configuration".to_string(),
                    "{}".to_string(),
                ),
            ]
            .into(),
        );
        let mut meta = ObjectMeta {
            annotations: Some([(REVISION_ANNOTATION.to_string(), "1".to_string())].into()),
            ..Default::default()
        };
        assert!(set_new_rs_annotations(&d, &mut meta, 3, true));
        let ann = meta.annotations.unwrap();
        assert_eq!(ann[REVISION_ANNOTATION], "3");
        assert_eq!(ann["deployment.kubernetes.io/revision-history"], "1");
        assert_eq!(ann["team"], "a");
        assert!(!ann.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
        assert!(!ann.contains_key(DESIRED_REPLICAS_ANNOTATION));
    }

    #[test]
    fn a_new_replica_set_records_desired_and_max_replicas() {
        let d = Deployment {
            spec: Some(k8s_openapi::api::apps::v1::DeploymentSpec {
                replicas: Some(4),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut meta = ObjectMeta::default();
        set_new_rs_annotations(&d, &mut meta, 1, false);
        let ann = meta.annotations.unwrap();
        assert_eq!(ann[DESIRED_REPLICAS_ANNOTATION], "4");
        assert_eq!(ann[MAX_REPLICAS_ANNOTATION], "5");
        assert_eq!(ann[REVISION_ANNOTATION], "1");
    }
}
