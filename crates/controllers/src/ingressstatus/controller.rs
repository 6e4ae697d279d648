//! The Ingress status controller's edge: watches Ingresses, IngressClasses and Nodes, and sets
//! `status.loadBalancer.ingress` of each of our Ingresses to the Ready nodes' addresses when it
//! shows anything else.
//!
//! Every change re-checks every Ingress (one queue key): the comparison is cheap and node
//! changes (a node joining, going NotReady, leaving) touch every Ingress anyway. Writes happen
//! only where the shown addresses differ, so node heartbeats cost no writes.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use tokio::task::JoinSet;

use super::address::{is_ours, node_addresses, shown_addresses};
use crate::informers::Informers;
use crate::podutil;
use crate::runtime::{forward, work, Informer, Key, Queue};

/// The queue's one key: every change re-checks every Ingress.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Everything;

impl std::fmt::Display for Everything {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("every Ingress")
    }
}

/// Runs the controller until dropped.
pub async fn run(client: Client, inf: Informers) -> anyhow::Result<()> {
    // Only this controller reads Ingresses and IngressClasses: watches of its own.
    let (ingresses, drive_ingresses) = Informer::<Ingress>::new(Api::all(client.clone()));
    let (classes, drive_classes) = Informer::<IngressClass>::new(Api::all(client.clone()));
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        if let Err(e) = drive_ingresses.await {
            tracing::warn!(error = %e, "Ingress watch ended");
        }
    });
    tasks.spawn(async move {
        if let Err(e) = drive_classes.await {
            tracing::warn!(error = %e, "IngressClass watch ended");
        }
    });
    let queue = Arc::new(Queue::default());
    tasks.spawn(forward(ingresses.subscribe(), queue.clone(), |_| vec![Everything]));
    tasks.spawn(forward(classes.subscribe(), queue.clone(), |_| vec![Everything]));
    tasks.spawn(forward(inf.nodes.subscribe(), queue.clone(), |_| vec![Everything]));
    ingresses.ready().await;
    classes.ready().await;
    inf.nodes.ready().await;
    queue.add(Everything);
    let nodes = inf.nodes.store().clone();
    work("ingressstatus", queue, |_| {
        let (client, ingresses, classes, nodes) = (
            client.clone(),
            ingresses.store().clone(),
            classes.store().clone(),
            nodes.clone(),
        );
        async move {
            sync(
                &client,
                &ingresses.state(),
                &classes.state(),
                &node_addresses(&nodes.state()),
            )
            .await
        }
    })
    .await;
    Ok(())
}

/// Brings every Ingress of ours to show `want`.
async fn sync(
    client: &Client,
    ingresses: &[Arc<Ingress>],
    classes: &[Arc<IngressClass>],
    want: &[String],
) -> Result<Option<Duration>, kube::Error> {
    let mut failed = None;
    for ing in ingresses.iter().filter(|i| is_ours(i, classes)) {
        if shown_addresses(ing) == want {
            continue;
        }
        if let Err(e) = write_status(client, ing, want).await {
            failed = Some(e);
        }
    }
    failed.map_or(Ok(None), Err)
}

/// Sets `status.loadBalancer.ingress` to `ips` (cleared when there are none).
async fn write_status(client: &Client, ing: &Ingress, ips: &[String]) -> Result<(), kube::Error> {
    let api: Api<Ingress> = Api::namespaced(client.clone(), &ing.namespace().unwrap_or_default());
    let entries: Vec<serde_json::Value> = ips.iter().map(|ip| serde_json::json!({"ip": ip})).collect();
    let ingress = if entries.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::Value::Array(entries)
    };
    let patch = serde_json::json!({"status": {"loadBalancer": {"ingress": ingress}}});
    match api
        .patch_status(&ing.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {
            tracing::debug!(ingress = %Key::of(ing), ?ips, "Ingress status written");
            Ok(())
        }
        Err(e) if podutil::is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}
