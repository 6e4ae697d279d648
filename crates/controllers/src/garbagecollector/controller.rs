//! The garbage collector's edge: watches every deletable kind (from discovery, re-checked
//! every minute for new kinds), keeps the ownership [`Graph`], and deletes or patches
//! objects as [`decide`] says. Owners missing from the graph are confirmed with a live GET
//! before anything is deleted, since watches of different kinds are not ordered.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::graph::{blocks, decide, state_in_graph, Decision, Graph, Node, OwnerState, Policy, FOREGROUND, ORPHAN};
use crate::discovery::{deletable, Served};
use crate::podutil;
use crate::runtime::{work, Queue};

/// How often discovery is re-run to pick up new kinds (CRDs).
const REDISCOVERY: Duration = Duration::from_secs(60);

struct Resource {
    served: Served,
    synced: AtomicBool,
}

struct State {
    client: Client,
    graph: Mutex<Graph>,
    resources: Mutex<Vec<Arc<Resource>>>,
    queue: Arc<Queue<String>>,
    synced: Notify,
}

/// Runs the collector until dropped.
pub async fn run(client: Client) -> anyhow::Result<()> {
    let state = Arc::new(State {
        client: client.clone(),
        graph: Mutex::new(Graph::default()),
        resources: Mutex::new(Vec::new()),
        queue: Arc::new(Queue::default()),
        synced: Notify::new(),
    });
    let mut watchers = JoinSet::new();
    discover(&state, &mut watchers).await;
    // Never act on a partial graph.
    loop {
        let notified = state.synced.notified();
        let all = state
            .resources
            .lock()
            .expect("lock")
            .iter()
            .all(|r| r.synced.load(Ordering::SeqCst));
        if all && !state.resources.lock().expect("lock").is_empty() {
            break;
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if state.resources.lock().expect("lock").is_empty() {
            discover(&state, &mut watchers).await;
        }
    }
    let worker = work("garbagecollector", state.queue.clone(), |uid| process(&state, uid));
    let rediscover = async {
        loop {
            tokio::time::sleep(REDISCOVERY).await;
            discover(&state, &mut watchers).await;
        }
    };
    tokio::join!(worker, rediscover);
    Ok(())
}

/// Starts watchers for kinds not watched yet.
async fn discover(state: &Arc<State>, watchers: &mut JoinSet<()>) {
    let served = match deletable(&state.client).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "garbage collector discovery failed; retrying later");
            return;
        }
    };
    let mut resources = state.resources.lock().expect("lock");
    let known: HashSet<(String, String)> = resources
        .iter()
        .map(|r| (r.served.resource.group.clone(), r.served.resource.kind.clone()))
        .collect();
    for s in served {
        if known.contains(&(s.resource.group.clone(), s.resource.kind.clone())) {
            continue;
        }
        let index = resources.len();
        let r = Arc::new(Resource {
            served: s,
            synced: AtomicBool::new(false),
        });
        resources.push(r.clone());
        watchers.spawn(watch(state.clone(), r, index));
    }
}

fn node_of(obj: &DynamicObject, resource: usize) -> Option<Node> {
    Some(Node {
        uid: obj.metadata.uid.clone()?,
        resource,
        namespace: obj.metadata.namespace.clone().unwrap_or_default(),
        name: obj.metadata.name.clone().unwrap_or_default(),
        owners: obj.metadata.owner_references.clone().unwrap_or_default(),
        deleting: obj.metadata.deletion_timestamp.is_some(),
        finalizers: obj.metadata.finalizers.clone().unwrap_or_default(),
    })
}

async fn watch(state: Arc<State>, r: Arc<Resource>, index: usize) {
    let api: Api<DynamicObject> = Api::all_with(state.client.clone(), &r.served.resource);
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    let mut listing: Option<HashSet<String>> = None;
    while let Some(event) = stream.next().await {
        let touched = match event {
            Ok(watcher::Event::Init) => {
                listing = Some(HashSet::new());
                continue;
            }
            Ok(watcher::Event::InitApply(o)) | Ok(watcher::Event::Apply(o)) => {
                let Some(node) = node_of(&o, index) else { continue };
                if let Some(seen) = listing.as_mut() {
                    seen.insert(node.uid.clone());
                }
                state.graph.lock().expect("lock").upsert(node)
            }
            Ok(watcher::Event::Delete(o)) => match o.metadata.uid.as_deref() {
                Some(uid) => state.graph.lock().expect("lock").remove(uid),
                None => continue,
            },
            Ok(watcher::Event::InitDone) => {
                // Objects deleted while we were not watching vanish without an event.
                let seen = listing.take().unwrap_or_default();
                let mut graph = state.graph.lock().expect("lock");
                let gone: Vec<String> = graph
                    .uids_of_resource(index)
                    .into_iter()
                    .filter(|u| !seen.contains(u))
                    .collect();
                let touched: Vec<String> = gone.iter().flat_map(|u| graph.remove(u)).collect();
                drop(graph);
                r.synced.store(true, Ordering::SeqCst);
                state.synced.notify_waiters();
                touched.into_iter().chain(seen).collect()
            }
            Err(e) => {
                tracing::debug!(kind = %r.served.resource.kind, error = %e, "garbage collector watch failed; retrying");
                continue;
            }
        };
        for uid in touched {
            state.queue.add(uid);
        }
    }
}

impl State {
    fn resource(&self, index: usize) -> Option<Arc<Resource>> {
        self.resources.lock().expect("lock").get(index).cloned()
    }

    fn resource_for(&self, api_version: &str, kind: &str) -> Option<(usize, Arc<Resource>)> {
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        let resources = self.resources.lock().expect("lock");
        resources
            .iter()
            .enumerate()
            .find(|(_, r)| r.served.resource.group == group && r.served.resource.kind == kind)
            .map(|(i, r)| (i, r.clone()))
    }

    fn api(&self, r: &Resource, namespace: &str) -> Api<DynamicObject> {
        if r.served.namespaced {
            Api::namespaced_with(self.client.clone(), namespace, &r.served.resource)
        } else {
            Api::all_with(self.client.clone(), &r.served.resource)
        }
    }
}

/// Looks at one object: finishes its foreground/orphan deletion, or collects it if its
/// owners are gone.
async fn process(state: &State, uid: String) -> Result<Option<Duration>, kube::Error> {
    let (node, dependents) = {
        let graph = state.graph.lock().expect("lock");
        let Some(node) = graph.get(&uid).cloned() else {
            return Ok(None);
        };
        let deps: Vec<Node> = graph.dependents_of(&uid).into_iter().cloned().collect();
        (node, deps)
    };
    let Some(res) = state.resource(node.resource) else {
        return Ok(None);
    };
    let api = state.api(&res, &node.namespace);
    if node.deleting {
        if node.finalizers.iter().any(|f| f == ORPHAN) {
            for dep in &dependents {
                let Some(dres) = state.resource(dep.resource) else {
                    continue;
                };
                remove_owner_refs(&state.api(&dres, &dep.namespace), dep, std::slice::from_ref(&uid)).await?;
            }
            remove_finalizer(&api, &node, ORPHAN).await?;
        } else if node.finalizers.iter().any(|f| f == FOREGROUND) {
            // Dependents see this owner as waiting and delete themselves.
            for dep in dependents.iter().filter(|d| !d.deleting) {
                state.queue.add(dep.uid.clone());
            }
            if !dependents.iter().any(|d| blocks(d, &uid)) {
                remove_finalizer(&api, &node, FOREGROUND).await?;
            }
        }
        return Ok(None);
    }
    if node.owners.is_empty() {
        return Ok(None);
    }
    let mut states = Vec::new();
    for owner in &node.owners {
        states.push((owner.uid.clone(), owner_state(state, &node, owner).await?));
    }
    match decide(&node, &states, !dependents.is_empty()) {
        Decision::Keep => {}
        Decision::RemoveOwners(uids) => remove_owner_refs(&api, &node, &uids).await?,
        Decision::Delete(policy) => {
            let dp = DeleteParams {
                propagation_policy: Some(match policy {
                    Policy::Background => PropagationPolicy::Background,
                    Policy::Foreground => PropagationPolicy::Foreground,
                    Policy::Orphan => PropagationPolicy::Orphan,
                }),
                preconditions: Some(Preconditions {
                    uid: Some(node.uid.clone()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api.delete(&node.name, &dp).await {
                Ok(_) => {}
                Err(e) if podutil::is_not_found(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(None)
}

/// The owner's state: from the graph, else confirmed by a live GET.
async fn owner_state(
    state: &State,
    node: &Node,
    owner: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> Result<OwnerState, kube::Error> {
    if let Some(o) = state.graph.lock().expect("lock").get(&owner.uid) {
        return Ok(state_in_graph(o));
    }
    let Some((_, res)) = state.resource_for(&owner.api_version, &owner.kind) else {
        // A kind we cannot look up is never assumed gone.
        return Ok(OwnerState::Solid);
    };
    if res.served.namespaced && node.namespace.is_empty() {
        return Ok(OwnerState::Solid);
    }
    match state.api(&res, &node.namespace).get_opt(&owner.name).await? {
        None => Ok(OwnerState::Dangling),
        Some(o) if o.metadata.uid.as_deref() != Some(owner.uid.as_str()) => Ok(OwnerState::Dangling),
        Some(o) => Ok(node_of(&o, 0).map(|n| state_in_graph(&n)).unwrap_or(OwnerState::Solid)),
    }
}

/// Drops references to `owners` from the object, guarded by its resourceVersion.
async fn remove_owner_refs(api: &Api<DynamicObject>, node: &Node, owners: &[String]) -> Result<(), kube::Error> {
    let Some(cur) = api.get_opt(&node.name).await? else {
        return Ok(());
    };
    if cur.metadata.uid.as_deref() != Some(node.uid.as_str()) {
        return Ok(());
    }
    let refs = cur.metadata.owner_references.clone().unwrap_or_default();
    let remaining: Vec<_> = refs.iter().filter(|r| !owners.contains(&r.uid)).cloned().collect();
    if remaining.len() == refs.len() {
        return Ok(());
    }
    let patch =
        serde_json::json!({"metadata": {"ownerReferences": remaining, "resourceVersion": cur.resource_version()}});
    api.patch(&node.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Drops one finalizer, guarded by the resourceVersion.
async fn remove_finalizer(api: &Api<DynamicObject>, node: &Node, finalizer: &str) -> Result<(), kube::Error> {
    let Some(cur) = api.get_opt(&node.name).await? else {
        return Ok(());
    };
    let finalizers = cur.metadata.finalizers.clone().unwrap_or_default();
    if !finalizers.iter().any(|f| f == finalizer) {
        return Ok(());
    }
    let remaining: Vec<String> = finalizers.into_iter().filter(|f| f != finalizer).collect();
    let patch = serde_json::json!({"metadata": {"finalizers": remaining, "resourceVersion": cur.resource_version()}});
    api.patch(&node.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}
