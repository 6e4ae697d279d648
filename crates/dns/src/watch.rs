//! Keeping the snapshot current: reflectors on Namespaces, Services and EndpointSlices mark
//! it dirty; one rebuild loop turns each burst of changes into one new snapshot.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::records::{Records, RecordsHandle};
use crate::server::{serve_on, Listeners};
use crate::upstream::Upstream;

/// What the cluster DNS server needs to run.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// Addresses to serve UDP and TCP on (a node's IP, port 53).
    pub listen: Vec<SocketAddr>,
    /// The cluster domain (`cluster.local`).
    pub domain: String,
    /// The resolv.conf whose `nameserver`s answer every other name (the host's).
    pub upstream_resolv_conf: PathBuf,
}

/// Serves cluster DNS until `shutdown` completes: binds `config.listen`, answers SERVFAIL for
/// cluster names until the first full list of Namespaces, Services and EndpointSlices has
/// arrived, then answers from a snapshot rebuilt on every change.
pub async fn run(
    client: Client,
    config: DnsConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listeners = Listeners::bind(&config.listen).await?;
    let upstream = Upstream::load(&config.upstream_resolv_conf, &listeners.local_addrs())?;
    if upstream.servers.is_empty() {
        tracing::warn!(path = %config.upstream_resolv_conf.display(), "no upstream nameserver; names outside the cluster will SERVFAIL");
    }
    let records = RecordsHandle::new(Records::unsynced(&config.domain));
    let dirty = Arc::new(Notify::new());
    let mut tasks = JoinSet::new();
    let namespaces = reflect::<Namespace>(&client, &dirty, &mut tasks);
    let services = reflect::<Service>(&client, &dirty, &mut tasks);
    let slices = reflect::<EndpointSlice>(&client, &dirty, &mut tasks);
    tasks.spawn(rebuild(
        namespaces,
        services,
        slices,
        records.clone(),
        dirty,
        config.domain.clone(),
    ));
    tasks.spawn(async move {
        serve_on(listeners, records, upstream, std::future::pending()).await;
    });
    shutdown.await;
    tasks.shutdown().await;
    Ok(())
}

/// Starts a reflector for `K` that wakes `dirty` on every event.
fn reflect<K>(client: &Client, dirty: &Arc<Notify>, tasks: &mut JoinSet<()>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(Api::<K>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff();
    let dirty = dirty.clone();
    tasks.spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                // The store applies the event before yielding it, so the rebuild sees it.
                Ok(_) => dirty.notify_one(),
                Err(e) => tracing::warn!(kind = %K::kind(&()), error = %e, "dns watch failed; retrying"),
            }
        }
    });
    store
}

/// Rebuilds the snapshot after each burst of changes, once all three caches are synced.
/// `Notify` keeps one pending wake-up, so changes during a rebuild cause exactly one more.
async fn rebuild(
    namespaces: Store<Namespace>,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    records: RecordsHandle,
    dirty: Arc<Notify>,
    domain: String,
) {
    for ready in [
        namespaces.wait_until_ready().await,
        services.wait_until_ready().await,
        slices.wait_until_ready().await,
    ] {
        if ready.is_err() {
            return;
        }
    }
    loop {
        let ns = namespaces.state();
        let svcs = services.state();
        let eps = slices.state();
        let names = ns.iter().filter_map(|n| n.metadata.name.clone());
        let built = Records::build_with_namespaces(names, svcs.iter().map(|s| &**s), eps.iter().map(|s| &**s), &domain);
        tracing::debug!(names = built.len(), "dns snapshot rebuilt");
        records.store(built);
        dirty.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::{answer, Answer, Transport};
    use k8s_openapi::api::core::v1::ServiceSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use kube::runtime::watcher::Event;
    use std::time::Duration;

    fn svc(name: &str, ip: &str) -> Service {
        Service {
            metadata: ObjectMeta {
                namespace: Some("default".into()),
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some(ip.into()),
                ports: Some(vec![k8s_openapi::api::core::v1::ServicePort {
                    port: 80,
                    ..Default::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    fn a_query(name: &str) -> Vec<u8> {
        let mut q = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        crate::wire::push_name(&mut q, name);
        q.extend_from_slice(&[0, 1, 0, 1]);
        q
    }

    /// The response code of an A query for `name`.
    fn rcode_of(records: &RecordsHandle, name: &str) -> u8 {
        match answer(&records.load(), &a_query(name), Transport::Udp) {
            Answer::Reply(r) => r[3] & 0x0F,
            other => panic!("{other:?}"),
        }
    }

    async fn until(what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !ok() {
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test]
    async fn snapshot_waits_for_every_cache_then_follows_each_change() {
        let (ns, mut ns_w) = reflector::store::<Namespace>();
        let (svcs, mut svc_w) = reflector::store::<Service>();
        let (eps, mut eps_w) = reflector::store::<EndpointSlice>();
        let records = RecordsHandle::new(Records::unsynced("cluster.local"));
        let dirty = Arc::new(Notify::new());
        let task = tokio::spawn(rebuild(
            ns,
            svcs,
            eps,
            records.clone(),
            dirty.clone(),
            "cluster.local".into(),
        ));

        svc_w.apply_watcher_event(&Event::Init);
        svc_w.apply_watcher_event(&Event::InitApply(svc("web", "10.96.0.5")));
        svc_w.apply_watcher_event(&Event::InitDone);
        ns_w.apply_watcher_event(&Event::Init);
        ns_w.apply_watcher_event(&Event::InitDone);
        // Let the rebuild task run as far as it can (single-threaded test runtime).
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        // Slices have not synced: still the cold-start snapshot (SERVFAIL, not NXDOMAIN).
        assert_eq!(rcode_of(&records, "web.default.svc.cluster.local"), 2);

        eps_w.apply_watcher_event(&Event::Init);
        eps_w.apply_watcher_event(&Event::InitDone);
        until("the first snapshot", || {
            rcode_of(&records, "web.default.svc.cluster.local") == 0
        })
        .await;
        assert_eq!(rcode_of(&records, "new.default.svc.cluster.local"), 3);

        svc_w.apply_watcher_event(&Event::Apply(svc("new", "10.96.0.9")));
        dirty.notify_one();
        until("the new Service", || {
            rcode_of(&records, "new.default.svc.cluster.local") == 0
        })
        .await;
        task.abort();
    }
}
