//! The service account controller: every active namespace has a `default` ServiceAccount
//! (recreated if deleted), as pods without `serviceAccountName` use it.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use tokio::task::JoinSet;

use crate::informers::Informers;
use crate::podutil;
use crate::runtime::{forward, work, Change, Key, Queue};

/// The ServiceAccount every namespace gets.
pub const DEFAULT: &str = "default";

/// Whether a namespace may receive new objects (not terminating).
fn active(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_none()
        && ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating")
}

/// Runs the controller until dropped. Queue keys are namespace names.
pub async fn run(client: Client, inf: Informers) -> anyhow::Result<()> {
    let queue = Arc::new(Queue::default());
    let mut feeds = JoinSet::new();
    let all = {
        let store = inf.namespaces.store().clone();
        move || {
            store
                .state()
                .iter()
                .map(|n| Key::new("", n.name_any()))
                .collect::<Vec<_>>()
        }
    };
    let all2 = all.clone();
    feeds.spawn(forward(inf.namespaces.subscribe(), queue.clone(), move |c| match c {
        Change::Applied(n) => vec![Key::new("", n.name_any())],
        Change::Deleted(_) => vec![],
        Change::Resynced => all2(),
    }));
    let all3 = all.clone();
    feeds.spawn(forward(
        inf.serviceaccounts.subscribe(),
        queue.clone(),
        move |c| match c {
            Change::Deleted(sa) if sa.name_any() == DEFAULT => vec![Key::new("", sa.namespace().unwrap_or_default())],
            Change::Resynced => all3(),
            _ => vec![],
        },
    ));
    inf.namespaces.ready().await;
    inf.serviceaccounts.ready().await;
    for k in all() {
        queue.add(k);
    }
    let namespaces = inf.namespaces.store().clone();
    let accounts = inf.serviceaccounts.store().clone();
    work("serviceaccount", queue, |key| {
        reconcile(&client, &namespaces, &accounts, key)
    })
    .await;
    Ok(())
}

async fn reconcile(
    client: &Client,
    namespaces: &Store<Namespace>,
    accounts: &Store<ServiceAccount>,
    key: Key,
) -> Result<Option<Duration>, kube::Error> {
    let Some(ns) = namespaces.get(&key.object_ref()) else {
        return Ok(None);
    };
    if !active(&ns)
        || accounts
            .get(&Key::new(key.name.clone(), DEFAULT).object_ref())
            .is_some()
    {
        return Ok(None);
    }
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(DEFAULT.into()),
            namespace: Some(key.name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &key.name);
    match api.create(&PostParams::default(), &sa).await {
        Ok(_) => Ok(None),
        // Already there (our cache was behind), or the namespace began terminating.
        Err(e) if podutil::is_conflict(&e) || matches!(&e, kube::Error::Api(s) if s.code == 403) => Ok(None),
        Err(e) => Err(e),
    }
}
