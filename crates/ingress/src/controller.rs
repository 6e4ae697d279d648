//! The controller loop: watch Ingresses, Services, EndpointSlices, Secrets and IngressClasses,
//! rebuild the routing table on every change (coalesced), swap it into the running server
//! without a reload, and report what is wrong with an Ingress as Events on it.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use podway_events::{EventType, Recorder};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::routing::{ClassFilter, Finding, RouteTable};
use crate::server::{serve, RouterHandle};

/// The name of podway's IngressClass.
pub const CLASS: &str = "podway";

/// Changes closer together than this are built into one table.
const COALESCE: Duration = Duration::from_millis(5);

/// Where one node's Ingress controller listens.
#[derive(Debug, Clone)]
pub struct IngressConfig {
    /// The node's IP: ports 80 and 443 open there.
    pub node_ip: Ipv4Addr,
    /// The HTTP port (80).
    pub http_port: u16,
    /// The HTTPS port (443).
    pub https_port: u16,
}

/// Serve Ingresses until `shutdown`.
pub async fn run(
    client: kube::Client,
    config: IngressConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let bind = |port: u16| {
        let addr = SocketAddr::from((config.node_ip, port));
        async move {
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("the Ingress controller listening on {addr}"))
        }
    };
    let (http, https) = (bind(config.http_port).await?, bind(config.https_port).await?);

    let dirty = Arc::new(Notify::new());
    let mut tasks = JoinSet::new();
    let ingresses = reflect::<Ingress>(&client, &dirty, &mut tasks);
    let services = reflect::<Service>(&client, &dirty, &mut tasks);
    let slices = reflect::<EndpointSlice>(&client, &dirty, &mut tasks);
    let secrets = reflect::<Secret>(&client, &dirty, &mut tasks);
    let classes = reflect::<IngressClass>(&client, &dirty, &mut tasks);

    let handle = RouterHandle::new(Arc::new(RouteTable::default()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(serve(http, https, handle.clone(), async move {
        let _ = server_stop.wait_for(|s| *s).await;
    }));

    let mut shutdown = pin!(shutdown);
    tokio::select! {
        _ = &mut shutdown => {
            let _ = stop_tx.send(true);
            let _ = server.await;
            return Ok(());
        }
        ready = async {
            ingresses.wait_until_ready().await?;
            services.wait_until_ready().await?;
            slices.wait_until_ready().await?;
            secrets.wait_until_ready().await?;
            classes.wait_until_ready().await
        } => ready.context("the Ingress controller's caches closed before they synced")?,
    }

    let recorder = Recorder::new(client.clone(), "podway-ingress-controller");
    let mut reported: BTreeSet<Finding> = BTreeSet::new();
    loop {
        let class = ClassFilter::new(CLASS, is_default_class(&classes.state()));
        let (table, findings) = RouteTable::build(
            &owned(&ingresses),
            &owned(&services),
            &owned(&slices),
            &owned(&secrets),
            &class,
        );
        handle.store(Arc::new(table));
        // Each finding is reported once, when it first appears.
        let now: BTreeSet<Finding> = findings.into_iter().collect();
        for f in now.difference(&reported) {
            report(&recorder, &ingresses, f).await;
        }
        reported = now;

        tokio::select! {
            _ = &mut shutdown => break,
            _ = dirty.notified() => tokio::time::sleep(COALESCE).await,
        }
    }
    let _ = stop_tx.send(true);
    let _ = server.await;
    tasks.shutdown().await;
    Ok(())
}

/// Whether the `podway` IngressClass is marked default (Ingresses without a class are then
/// ours).
fn is_default_class(classes: &[Arc<IngressClass>]) -> bool {
    classes.iter().any(|c| {
        c.metadata.name.as_deref() == Some(CLASS)
            && c.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("ingressclass.kubernetes.io/is-default-class"))
                .is_some_and(|v| v == "true")
    })
}

fn owned<K>(store: &Store<K>) -> Vec<K>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store.state().iter().map(|k| (**k).clone()).collect()
}

/// Record `finding` on its Ingress.
async fn report(recorder: &Recorder, ingresses: &Store<Ingress>, finding: &Finding) {
    let found = ingresses.state().into_iter().find(|i| {
        i.metadata.namespace.as_deref() == Some(finding.namespace.as_str())
            && i.metadata.name.as_deref() == Some(finding.ingress.as_str())
    });
    if let Some(ingress) = found {
        let type_ = if finding.warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        recorder
            .publish(ingress.as_ref(), type_, &finding.reason, &finding.message)
            .await;
    }
}

/// A reflector over every `K`, marking `dirty` on each change.
fn reflect<K>(client: &kube::Client, dirty: &Arc<Notify>, tasks: &mut JoinSet<()>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let stream = reflector::reflector(
        writer,
        watcher(Api::<K>::all(client.clone()), watcher::Config::default()),
    );
    tasks.spawn(mark_dirty(stream.default_backoff(), dirty.clone()));
    store
}

async fn mark_dirty<K>(stream: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>>, dirty: Arc<Notify>) {
    let mut stream = pin!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(_) => dirty.notify_one(),
            Err(e) => tracing::debug!("ingress controller watch: {e}"),
        }
    }
}
