//! Keeping the snapshot current: reflectors on Namespaces, Services and EndpointSlices record
//! which Services each change touches; one loop answers a burst of changes at once with a
//! layered snapshot and rebuilds the full one off the loop.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::records::{Records, RecordsHandle, ServiceKey};
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
/// arrived, then answers from a snapshot that follows every change (a layered one at once, the
/// full one rebuilt off the loop).
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
    let changes = SharedChanges::default();
    let mut tasks = JoinSet::new();
    let caches = Caches {
        namespaces: reflect::<Namespace>(&client, &dirty, &changes, |_| Touches::Everything, &mut tasks),
        services: reflect::<Service>(&client, &dirty, &changes, service_touches, &mut tasks),
        slices: reflect::<EndpointSlice>(&client, &dirty, &changes, slice_touches, &mut tasks),
    };
    tasks.spawn(rebuild(caches, changes, records.clone(), dirty, config.domain.clone()));
    tasks.spawn(async move {
        serve_on(listeners, records, upstream, std::future::pending()).await;
    });
    shutdown.await;
    tasks.shutdown().await;
    Ok(())
}

/// What changed since the rebuild loop last looked.
#[derive(Debug, Default)]
struct Changes {
    /// Services whose names may answer differently.
    keys: HashSet<ServiceKey>,
    /// Something that needs a full rebuild (a Namespace, a watch restarting).
    full: bool,
}

/// The changes, shared by the reflectors (writers) and the rebuild loop (taker).
type SharedChanges = Arc<Mutex<Changes>>;

/// What one object's change touches.
enum Touches {
    /// This Service's names.
    Service(ServiceKey),
    /// Every name.
    Everything,
    /// No name.
    Nothing,
}

fn service_touches(s: &Service) -> Touches {
    let m = &s.metadata;
    Touches::Service(key(m.namespace.as_deref(), m.name.as_deref()))
}

fn slice_touches(e: &EndpointSlice) -> Touches {
    let m = &e.metadata;
    match m.labels.as_ref().and_then(|l| l.get("kubernetes.io/service-name")) {
        Some(owner) => Touches::Service(key(m.namespace.as_deref(), Some(owner))),
        None => Touches::Nothing,
    }
}

fn key(ns: Option<&str>, name: Option<&str>) -> ServiceKey {
    (
        ns.unwrap_or("").to_ascii_lowercase(),
        name.unwrap_or("").to_ascii_lowercase(),
    )
}

/// Starts a reflector for `K` that records what each event touches and wakes `dirty`.
fn reflect<K>(
    client: &Client,
    dirty: &Arc<Notify>,
    changes: &SharedChanges,
    touches: fn(&K) -> Touches,
    tasks: &mut JoinSet<()>,
) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(Api::<K>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff();
    let (dirty, changes) = (dirty.clone(), changes.clone());
    tasks.spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            // The store applies the event before yielding it, so the rebuild sees it.
            let touched = match &event {
                Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o)) => touches(o),
                Ok(_) => Touches::Everything,
                Err(e) => {
                    tracing::warn!(kind = %K::kind(&()), error = %e, "dns watch failed; retrying");
                    continue;
                }
            };
            {
                let mut c = changes.lock().unwrap_or_else(|p| p.into_inner());
                match touched {
                    Touches::Service(k) => {
                        c.keys.insert(k);
                    }
                    Touches::Everything => c.full = true,
                    Touches::Nothing => continue,
                }
            }
            dirty.notify_one();
        }
    });
    store
}

/// The three caches the snapshot is built from.
#[derive(Clone)]
struct Caches {
    namespaces: Store<Namespace>,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
}

impl Caches {
    fn namespace_names(&self) -> Vec<String> {
        self.namespaces
            .state()
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect()
    }

    fn full(&self, domain: &str) -> Records {
        let (svcs, eps) = (self.services.state(), self.slices.state());
        let built = Records::build_with_namespaces(
            self.namespace_names(),
            svcs.iter().map(|s| &**s),
            eps.iter().map(|s| &**s),
            domain,
        );
        tracing::debug!(names = built.len(), "dns snapshot rebuilt");
        built
    }

    fn layered(&self, base: Arc<Records>, changed: HashSet<ServiceKey>, domain: &str) -> Records {
        let (svcs, eps) = (self.services.state(), self.slices.state());
        Records::layered(
            base,
            self.namespace_names(),
            svcs.iter().map(|s| &**s),
            eps.iter().map(|s| &**s),
            changed,
            domain,
        )
    }
}

/// A full rebuild running off the loop, and the Services changed since it read the caches.
struct Building {
    task: tokio::task::JoinHandle<Records>,
    since: HashSet<ServiceKey>,
    started: Instant,
}

impl Building {
    fn start(caches: &Caches, domain: &str) -> Building {
        let (caches, domain) = (caches.clone(), domain.to_string());
        Building {
            task: tokio::task::spawn_blocking(move || caches.full(&domain)),
            since: HashSet::new(),
            started: Instant::now(),
        }
    }
}

/// After a full rebuild that took `d`, the next one waits this many times `d`: under steady
/// churn the rebuilds take at most a fifth of a core (150 ms per rebuild beside 10,000
/// Services), while the layered snapshot answers every change at once meanwhile.
const REBUILD_PAUSE_FACTOR: u32 = 4;

/// A layer this large is rebuilt in full without waiting: each change builds every Service
/// of the layer again, so its cost grows with the layer.
const LAYER_LIMIT: usize = 256;

/// When the next full rebuild may start, given when the last one started and finished.
fn next_rebuild(started: Instant, finished: Instant) -> Instant {
    finished + finished.saturating_duration_since(started) * REBUILD_PAUSE_FACTOR
}

/// Keeps the snapshot current once all three caches are synced. A change to some Services is
/// answered at once by a layered snapshot (the changed Services built alone, over the last
/// full snapshot) while a full rebuild runs off the loop, paced by [`next_rebuild`]; a change
/// to everything (a Namespace, a watch restarting) is rebuilt in full first.
async fn rebuild(caches: Caches, changes: SharedChanges, records: RecordsHandle, dirty: Arc<Notify>, domain: String) {
    for ready in [
        caches.namespaces.wait_until_ready().await,
        caches.services.wait_until_ready().await,
        caches.slices.wait_until_ready().await,
    ] {
        if ready.is_err() {
            return;
        }
    }
    let take = || std::mem::take(&mut *changes.lock().unwrap_or_else(|p| p.into_inner()));
    take();
    let mut base = Arc::new(caches.full(&domain));
    records.store_arc(base.clone());
    // Services changed since `base` read the caches.
    let mut pending: HashSet<ServiceKey> = HashSet::new();
    let mut building: Option<Building> = None;
    // The earliest start of the next full rebuild.
    let mut next_full = Instant::now();
    loop {
        tokio::select! {
            _ = dirty.notified() => {
                let changed = take();
                if changed.full {
                    building = None;
                    let (c, d) = (caches.clone(), domain.clone());
                    let Ok(full) = tokio::task::spawn_blocking(move || c.full(&d)).await else { return };
                    base = Arc::new(full);
                    pending.clear();
                    records.store_arc(base.clone());
                    continue;
                }
                if changed.keys.is_empty() {
                    continue;
                }
                if let Some(b) = &mut building {
                    b.since.extend(changed.keys.iter().cloned());
                }
                pending.extend(changed.keys);
                records.store(caches.layered(base.clone(), pending.clone(), &domain));
                if building.is_none() && (Instant::now() >= next_full || pending.len() > LAYER_LIMIT) {
                    building = Some(Building::start(&caches, &domain));
                }
            }
            _ = tokio::time::sleep_until(next_full), if building.is_none() && !pending.is_empty() => {
                building = Some(Building::start(&caches, &domain));
            }
            done = async { (&mut building.as_mut().expect("guarded").task).await }, if building.is_some() => {
                let Some(b) = building.take() else { continue };
                let Ok(full) = done else { return };
                next_full = next_rebuild(b.started, Instant::now());
                base = Arc::new(full);
                pending = b.since;
                if pending.is_empty() {
                    records.store_arc(base.clone());
                } else {
                    records.store(caches.layered(base.clone(), pending.clone(), &domain));
                }
            }
        }
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

    #[test]
    fn a_full_rebuild_waits_four_times_as_long_as_the_last_one_took() {
        let started = Instant::now();
        let finished = started + Duration::from_millis(150);
        assert_eq!(next_rebuild(started, finished), finished + Duration::from_millis(600));
        // A clock that went nowhere (or back) never delays the next one.
        assert_eq!(next_rebuild(finished, started), started);
    }

    #[tokio::test]
    async fn snapshot_waits_for_every_cache_then_follows_each_change() {
        let (ns, mut ns_w) = reflector::store::<Namespace>();
        let (svcs, mut svc_w) = reflector::store::<Service>();
        let (eps, mut eps_w) = reflector::store::<EndpointSlice>();
        let records = RecordsHandle::new(Records::unsynced("cluster.local"));
        let dirty = Arc::new(Notify::new());
        let changes = SharedChanges::default();
        let caches = Caches {
            namespaces: ns,
            services: svcs,
            slices: eps,
        };
        let task = tokio::spawn(rebuild(
            caches,
            changes.clone(),
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

        // A change to one Service answers from a layered snapshot first...
        svc_w.apply_watcher_event(&Event::Apply(svc("new", "10.96.0.9")));
        changes.lock().unwrap().keys.insert(("default".into(), "new".into()));
        dirty.notify_one();
        until("the new Service", || {
            rcode_of(&records, "new.default.svc.cluster.local") == 0
        })
        .await;
        assert_eq!(
            rcode_of(&records, "web.default.svc.cluster.local"),
            0,
            "the others still answer"
        );
        // ...then from the full rebuild, which replaces it.
        until("the full snapshot", || !records.load().is_layered()).await;
        assert_eq!(rcode_of(&records, "new.default.svc.cluster.local"), 0);

        // A deleted Service is gone at once.
        svc_w.apply_watcher_event(&Event::Delete(svc("web", "10.96.0.5")));
        changes.lock().unwrap().keys.insert(("default".into(), "web".into()));
        dirty.notify_one();
        until("web gone", || rcode_of(&records, "web.default.svc.cluster.local") == 3).await;
        task.abort();
    }
}
