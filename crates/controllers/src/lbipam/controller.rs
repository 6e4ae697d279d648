//! The LoadBalancer IP controller's edge: watches Services and the pools ConfigMap, plans every
//! address at once ([`plan`]), writes the statuses that differ through the status subresource
//! and records the Events the plan asks for.
//!
//! Every change re-plans the whole cluster (one queue key): the plan is cheap, and deciding
//! from all Services at once is what keeps two new Services from being handed one address.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::allocate::{plan, Note};
use super::claim::{claim, ingress_ips, is_managed, needs_clearing};
use super::pool::{IpRange, Pools};
use crate::events::{EventType, Recorder};
use crate::informers::Informers;
use crate::podutil;
use crate::runtime::{forward, work, Change, Informer, Key, Queue};

/// The namespace of the pools ConfigMap. The controller creates neither it nor the ConfigMap:
/// without them only the `--lb-pool` pool is in force.
pub const POOLS_NAMESPACE: &str = "podway-system";
/// The name of the pools ConfigMap: one entry per pool (see `docs/load-balancer.md`).
pub const POOLS_CONFIG_MAP: &str = "podway-lb-pools";

/// `source.component` of our Events.
const COMPONENT: &str = "lb-ipam-controller";
/// `reason` of the Warning Event on the ConfigMap when an entry is refused.
const INVALID_POOL: &str = "InvalidPool";
/// How long a status we wrote overrides what the cache shows (the watch event normally
/// arrives within milliseconds; this only bounds a lost one).
const WRITTEN_TTL: Duration = Duration::from_secs(30);

/// The queue's one key: every change re-plans every Service.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Everything;

impl std::fmt::Display for Everything {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("every LoadBalancer Service")
    }
}

/// A status write the cache may not show yet.
struct Written {
    ips: Vec<Ipv4Addr>,
    at: Instant,
}

struct Ctl {
    client: Client,
    services: Store<Service>,
    config_maps: Store<ConfigMap>,
    default_pool: Vec<IpRange>,
    recorder: Recorder,
    /// Per Service uid: the status we last wrote. Until the cache shows it, planning from the
    /// cache alone could hand the same address to a second Service.
    written: Mutex<HashMap<String, Written>>,
    /// Per Service uid: the Events last recorded, so a pending Service gets one Event when
    /// its reason changes rather than one per sync.
    told: Mutex<HashMap<String, Vec<Note>>>,
    /// The ConfigMap problems last reported.
    problems: Mutex<Vec<String>>,
}

/// Runs the controller until dropped. `default_pool` is the `--lb-pool` pool (empty: none).
pub async fn run(client: Client, inf: Informers, default_pool: Vec<IpRange>) -> anyhow::Result<()> {
    // Only this controller reads ConfigMaps, and only in one namespace: a watch of its own.
    let (pools, drive) = Informer::<ConfigMap>::new(Api::namespaced(client.clone(), POOLS_NAMESPACE));
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        if let Err(e) = drive.await {
            tracing::warn!(error = %e, "pools ConfigMap watch ended");
        }
    });
    let queue = Arc::new(Queue::default());
    tasks.spawn(forward(inf.services.subscribe(), queue.clone(), |_| vec![Everything]));
    tasks.spawn(forward(pools.subscribe(), queue.clone(), |c| match c {
        Change::Applied(cm) | Change::Deleted(cm) if cm.name_any() != POOLS_CONFIG_MAP => vec![],
        _ => vec![Everything],
    }));
    inf.services.ready().await;
    pools.ready().await;
    queue.add(Everything);
    let ctl = Ctl {
        recorder: Recorder::new(client.clone(), COMPONENT),
        client,
        services: inf.services.store().clone(),
        config_maps: pools.store().clone(),
        default_pool,
        written: Default::default(),
        told: Default::default(),
        problems: Default::default(),
    };
    work("lbipam", queue, |_| ctl.sync()).await;
    Ok(())
}

fn uid(svc: &Service) -> String {
    svc.metadata.uid.clone().unwrap_or_default()
}

impl Ctl {
    async fn sync(&self) -> Result<Option<Duration>, kube::Error> {
        let pools = self.pools().await;
        let mut services: Vec<Arc<Service>> = self.services.state();
        // Oldest first: of two Services after one address, the older keeps it.
        services.sort_by(|a, b| {
            let created = |s: &Service| s.metadata.creation_timestamp.as_ref().map(|t| t.0);
            created(a)
                .cmp(&created(b))
                .then_with(|| Key::of(a.as_ref()).cmp(&Key::of(b.as_ref())))
        });
        self.forget_gone(&services);
        let managed: Vec<&Arc<Service>> = services.iter().filter(|s| is_managed(s)).collect();
        let claims: Vec<_> = managed.iter().map(|s| claim(s, self.current(s))).collect();
        let decisions = plan(&pools, &claims);

        let mut failed = None;
        for ((svc, c), d) in managed.iter().zip(&claims).zip(&decisions) {
            let want: Vec<Ipv4Addr> = d.ip.into_iter().collect();
            if want != c.current {
                if let Err(e) = self.write_status(svc, d.ip).await {
                    failed = Some(e);
                    continue;
                }
            }
            self.tell(svc, &d.notes).await;
        }
        for svc in services.iter().filter(|s| needs_clearing(s)) {
            if self.current(svc).is_empty() {
                continue;
            }
            if let Err(e) = self.write_status(svc, None).await {
                failed = Some(e);
            }
        }
        failed.map_or(Ok(None), Err)
    }

    /// The pools in force, reporting refused ConfigMap entries once per change.
    async fn pools(&self) -> Pools {
        let cm = self
            .config_maps
            .get(&Key::new(POOLS_NAMESPACE, POOLS_CONFIG_MAP).object_ref());
        let data: Option<BTreeMap<String, String>> = cm.as_ref().map(|c| c.data.clone().unwrap_or_default());
        let (pools, problems) = Pools::build(&self.default_pool, data.as_ref());
        let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let changed = {
            let mut last = self.problems.lock().expect("lock poisoned");
            let changed = *last != problems;
            last.clone_from(&problems);
            changed
        };
        if let (true, Some(cm)) = (changed, cm) {
            for p in &problems {
                tracing::warn!(problem = %p, "LoadBalancer pool refused");
                self.recorder
                    .publish(
                        cm.as_ref(),
                        EventType::Warning,
                        INVALID_POOL,
                        &format!("{p}; this pool is ignored"),
                    )
                    .await;
            }
        }
        pools
    }

    /// The addresses the Service shows, counting a status we wrote that the cache lags behind.
    fn current(&self, svc: &Service) -> Vec<Ipv4Addr> {
        let cached = ingress_ips(svc);
        let mut written = self.written.lock().expect("lock poisoned");
        match written.get(&uid(svc)) {
            Some(w) if w.ips != cached && w.at.elapsed() < WRITTEN_TTL => w.ips.clone(),
            Some(_) => {
                written.remove(&uid(svc));
                cached
            }
            None => cached,
        }
    }

    /// Drops the memory of Services that are gone.
    fn forget_gone(&self, services: &[Arc<Service>]) {
        let present: HashSet<String> = services.iter().map(|s| uid(s)).collect();
        self.written
            .lock()
            .expect("lock poisoned")
            .retain(|u, _| present.contains(u));
        self.told
            .lock()
            .expect("lock poisoned")
            .retain(|u, _| present.contains(u));
    }

    /// Sets `status.loadBalancer.ingress` to `ip` (VIP mode: the address is delivered to the
    /// nodes as is), or clears it. The resourceVersion makes the write conditional: if the
    /// Service changed since our cache saw it, the write fails with 409 and the next sync
    /// plans again from fresher data.
    async fn write_status(&self, svc: &Service, ip: Option<Ipv4Addr>) -> Result<(), kube::Error> {
        let ns = svc.namespace().unwrap_or_default();
        let api: Api<Service> = Api::namespaced(self.client.clone(), &ns);
        let ingress = match ip {
            Some(ip) => serde_json::json!([{"ip": ip.to_string(), "ipMode": "VIP"}]),
            None => serde_json::Value::Null,
        };
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": svc.metadata.resource_version},
            "status": {"loadBalancer": {"ingress": ingress}},
        });
        match api
            .patch_status(&svc.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(e) if podutil::is_not_found(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
        tracing::debug!(service = %Key::of(svc), ip = ?ip, "LoadBalancer status written");
        self.written.lock().expect("lock poisoned").insert(
            uid(svc),
            Written {
                ips: ip.into_iter().collect(),
                at: Instant::now(),
            },
        );
        Ok(())
    }

    /// Records the decision's Events unless they are the ones recorded last for this Service.
    async fn tell(&self, svc: &Service, notes: &[Note]) {
        let fresh = {
            let mut told = self.told.lock().expect("lock poisoned");
            if notes.is_empty() {
                told.remove(&uid(svc));
                false
            } else if told.get(&uid(svc)).map(Vec::as_slice) == Some(notes) {
                false
            } else {
                told.insert(uid(svc), notes.to_vec());
                true
            }
        };
        if !fresh {
            return;
        }
        for n in notes {
            let type_ = if n.warning {
                EventType::Warning
            } else {
                EventType::Normal
            };
            self.recorder.publish(svc, type_, n.reason, &n.message).await;
        }
    }
}
