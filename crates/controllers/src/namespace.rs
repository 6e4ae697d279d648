//! The namespace controller: a namespace with a `deletionTimestamp` is emptied of every
//! namespaced object of every served kind, then finalized (`PUT namespaces/<ns>/finalize`
//! with `spec.finalizers` emptied) and deleted.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, DynamicObject, ListParams, PostParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client};
use tokio::task::JoinSet;

use crate::informers::Informers;
use crate::podutil;
use crate::runtime::{forward, work, Change, Key, Queue};

/// How soon to look again while content remains (upstream re-checks after a few seconds).
const CONTENT_REMAINING_RECHECK: Duration = Duration::from_secs(2);

fn deleting(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_some()
}

/// Runs the controller until dropped.
pub async fn run(client: Client, inf: Informers) -> anyhow::Result<()> {
    let queue = Arc::new(Queue::default());
    let mut feeds = JoinSet::new();
    let all = {
        let store = inf.namespaces.store().clone();
        move || {
            store
                .state()
                .iter()
                .filter(|n| deleting(n))
                .map(|n| Key::of(n.as_ref()))
                .collect::<Vec<_>>()
        }
    };
    let all2 = all.clone();
    feeds.spawn(forward(inf.namespaces.subscribe(), queue.clone(), move |c| match c {
        Change::Applied(n) if deleting(n) => vec![Key::of(n.as_ref())],
        Change::Applied(_) | Change::Deleted(_) => vec![],
        Change::Resynced => all2(),
    }));
    inf.namespaces.ready().await;
    for k in all() {
        queue.add(k);
    }
    let store = inf.namespaces.store().clone();
    work("namespace", queue, |key| reconcile(&client, &store, key)).await;
    Ok(())
}

async fn reconcile(client: &Client, store: &Store<Namespace>, key: Key) -> Result<Option<Duration>, kube::Error> {
    let Some(ns) = store.get(&key.object_ref()) else {
        return Ok(None);
    };
    if !deleting(&ns) {
        return Ok(None);
    }
    let name = key.name.as_str();
    let served = crate::discovery::deletable(client).await?;
    let mut remaining = 0usize;
    for s in served.iter().filter(|s| s.namespaced) {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), name, &s.resource);
        let items = match api.list(&ListParams::default()).await {
            Ok(l) => l.items,
            Err(e) if podutil::is_not_found(&e) => continue,
            Err(e) => return Err(e),
        };
        if items.is_empty() {
            continue;
        }
        remaining += items.len();
        for o in items.iter().filter(|o| o.metadata.deletion_timestamp.is_none()) {
            let Some(obj) = o.metadata.name.as_deref() else {
                continue;
            };
            match api.delete(obj, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(e) if podutil::is_not_found(&e) || podutil::is_conflict(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }
    if remaining > 0 {
        tracing::debug!(namespace = name, remaining, "namespace content remaining");
        return Ok(Some(CONTENT_REMAINING_RECHECK));
    }
    let api: Api<Namespace> = Api::all(client.clone());
    let mut finalized = (*ns).clone();
    if finalized
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.as_ref())
        .is_some_and(|f| !f.is_empty())
    {
        finalized.spec.get_or_insert_with(Default::default).finalizers = Some(Vec::new());
        match api
            .replace_subresource("finalize", name, &PostParams::default(), &finalized)
            .await
        {
            Ok(_) => {}
            Err(e) if podutil::is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(None),
        Err(e) if podutil::is_not_found(&e) || podutil::is_conflict(&e) => Ok(None),
        Err(e) => Err(e),
    }
}
