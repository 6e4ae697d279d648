//! The endpoints controllers' edge: for each Service with a selector, writes its Endpoints
//! and EndpointSlices from the pods it selects; deletes the Endpoints when the Service goes
//! (the slices go by garbage collection through their owner reference).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use podway_api::selector::LabelSelector as Selector;
use tokio::task::JoinSet;

use super::compute::{
    endpoints_labels, endpoints_subsets, slice_groups, MANAGED_BY, MANAGED_BY_LABEL, SERVICE_NAME_LABEL,
};
use super::slices::plan_slices;
use crate::informers::Informers;
use crate::podutil;
use crate::runtime::{forward, work, Change, Key, Queue};

/// Slices we created whose names our cache has not shown yet, per Service: until it does,
/// planning again would create them twice.
type Created = std::sync::Mutex<std::collections::HashMap<Key, (Vec<String>, tokio::time::Instant)>>;

/// How long created-but-unseen slices hold a Service's slice sync back.
const CREATED_TTL: Duration = Duration::from_secs(60);

struct Ctl {
    created: Created,
    client: Client,
    services: Store<Service>,
    pods: Store<Pod>,
    endpoints: Store<Endpoints>,
    slices: Store<EndpointSlice>,
}

fn service_selector(svc: &Service) -> Option<Selector> {
    let sel = svc.spec.as_ref()?.selector.as_ref()?;
    (!sel.is_empty()).then(|| Selector::from_map(sel))
}

/// Runs the controller until dropped.
pub async fn run(client: Client, inf: Informers) -> anyhow::Result<()> {
    let queue = Arc::new(Queue::default());
    let mut feeds = JoinSet::new();
    let all_keys = {
        let services = inf.services.store().clone();
        let endpoints = inf.endpoints.store().clone();
        // Endpoints too: one whose Service vanished while we were not watching must go.
        move || {
            let mut keys: Vec<Key> = services.state().iter().map(|s| Key::of(s.as_ref())).collect();
            keys.extend(endpoints.state().iter().map(|e| Key::of(e.as_ref())));
            keys
        }
    };
    let all = all_keys.clone();
    feeds.spawn(forward(inf.services.subscribe(), queue.clone(), move |c| match c {
        Change::Applied(s) | Change::Deleted(s) => vec![Key::of(s.as_ref())],
        Change::Resynced => all(),
    }));
    let all = all_keys.clone();
    feeds.spawn(forward(inf.endpoints.subscribe(), queue.clone(), move |c| match c {
        Change::Applied(e) | Change::Deleted(e) => vec![Key::of(e.as_ref())],
        Change::Resynced => all(),
    }));
    let all = all_keys.clone();
    feeds.spawn(forward(inf.slices.subscribe(), queue.clone(), move |c| match c {
        Change::Applied(s) | Change::Deleted(s) => s
            .labels()
            .get(SERVICE_NAME_LABEL)
            .map(|svc| vec![Key::new(s.namespace().unwrap_or_default(), svc.clone())])
            .unwrap_or_default(),
        Change::Resynced => all(),
    }));
    let all = all_keys.clone();
    let services = inf.services.store().clone();
    let endpoints = inf.endpoints.store().clone();
    feeds.spawn(forward(inf.pods.subscribe(), queue.clone(), move |c| match c {
        Change::Applied(p) | Change::Deleted(p) => services_for_pod(p, &services, &endpoints),
        Change::Resynced => all(),
    }));
    inf.services.ready().await;
    inf.pods.ready().await;
    inf.endpoints.ready().await;
    inf.slices.ready().await;
    for k in all_keys() {
        queue.add(k);
    }
    let ctl = Ctl {
        created: Default::default(),
        client,
        services: inf.services.store().clone(),
        pods: inf.pods.store().clone(),
        endpoints: inf.endpoints.store().clone(),
        slices: inf.slices.store().clone(),
    };
    work("endpoints", queue, |key| ctl.reconcile(key)).await;
    Ok(())
}

/// Services that select the pod now, plus those whose Endpoints list it (it may have
/// stopped matching: we only see its new labels).
fn services_for_pod(p: &Pod, services: &Store<Service>, endpoints: &Store<Endpoints>) -> Vec<Key> {
    let ns = p.namespace().unwrap_or_default();
    let name = p.name_any();
    let labels = podutil::labels(&p.metadata);
    let mut keys: Vec<Key> = services
        .state()
        .iter()
        .filter(|s| s.namespace().as_deref() == Some(ns.as_str()))
        .filter(|s| service_selector(s).is_some_and(|sel| sel.matches(&labels)))
        .map(|s| Key::of(s.as_ref()))
        .collect();
    for e in endpoints.state() {
        if e.namespace().as_deref() != Some(ns.as_str()) {
            continue;
        }
        let lists = e.subsets.iter().flatten().flat_map(|s| {
            s.addresses
                .iter()
                .flatten()
                .chain(s.not_ready_addresses.iter().flatten())
        });
        if lists
            .into_iter()
            .any(|a| a.target_ref.as_ref().and_then(|r| r.name.as_deref()) == Some(name.as_str()))
        {
            keys.push(Key::of(e.as_ref()));
        }
    }
    keys
}

impl Ctl {
    async fn reconcile(&self, key: Key) -> Result<Option<Duration>, kube::Error> {
        let ep_api: Api<Endpoints> = Api::namespaced(self.client.clone(), &key.namespace);
        let Some(svc) = self.services.get(&key.object_ref()) else {
            if self.endpoints.get(&key.object_ref()).is_some() {
                match ep_api.delete(&key.name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(e) if podutil::is_not_found(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            return Ok(None);
        };
        // Without a selector someone else owns the endpoints.
        let Some(sel) = service_selector(&svc) else {
            return Ok(None);
        };
        if svc.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let pods: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| {
                p.namespace().as_deref() == Some(key.namespace.as_str()) && sel.matches(&podutil::labels(&p.metadata))
            })
            .collect();
        let pods: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
        self.sync_endpoints(&key, &svc, &pods, &ep_api).await?;
        if let Some(wait) = self.slices_pending(&key) {
            return Ok(Some(wait));
        }
        self.sync_slices(&key, &svc, &pods).await?;
        Ok(None)
    }

    /// Whether slices we created for `key` are still missing from the cache; if so, how
    /// long to wait at most.
    fn slices_pending(&self, key: &Key) -> Option<Duration> {
        let mut created = self.created.lock().expect("lock poisoned");
        let (names, at) = created.get(key)?;
        let seen = names.iter().all(|n| {
            self.slices
                .get(&Key::new(key.namespace.clone(), n.clone()).object_ref())
                .is_some()
        });
        if seen || at.elapsed() >= CREATED_TTL {
            created.remove(key);
            return None;
        }
        // The watch event for the new slice requeues us sooner.
        Some(CREATED_TTL - at.elapsed())
    }

    async fn sync_endpoints(
        &self,
        key: &Key,
        svc: &Service,
        pods: &[&Pod],
        api: &Api<Endpoints>,
    ) -> Result<(), kube::Error> {
        let subsets = endpoints_subsets(svc, pods);
        let labels = endpoints_labels(svc);
        let subsets_opt = (!subsets.is_empty()).then_some(subsets);
        match self.endpoints.get(&key.object_ref()) {
            Some(cur) => {
                let cur_subsets = cur.subsets.clone().filter(|s| !s.is_empty());
                if cur_subsets == subsets_opt && cur.metadata.labels.clone().unwrap_or_default() == labels {
                    return Ok(());
                }
                let mut e = (*cur).clone();
                e.subsets = subsets_opt;
                e.metadata.labels = Some(labels);
                api.replace(&key.name, &PostParams::default(), &e).await?;
            }
            None => {
                let e = Endpoints {
                    metadata: ObjectMeta {
                        name: Some(key.name.clone()),
                        namespace: Some(key.namespace.clone()),
                        labels: Some(labels),
                        ..Default::default()
                    },
                    subsets: subsets_opt,
                };
                match api.create(&PostParams::default(), &e).await {
                    Ok(_) => {}
                    // Our cache is behind: the next event brings it and we compare again.
                    Err(e) if podutil::is_conflict(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    async fn sync_slices(&self, key: &Key, svc: &Service, pods: &[&Pod]) -> Result<(), kube::Error> {
        let existing: Vec<Arc<EndpointSlice>> = self
            .slices
            .state()
            .into_iter()
            .filter(|s| {
                s.namespace().as_deref() == Some(key.namespace.as_str())
                    && s.labels().get(SERVICE_NAME_LABEL) == Some(&key.name)
                    && s.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)
                    && s.metadata.deletion_timestamp.is_none()
            })
            .collect();
        let existing: Vec<&EndpointSlice> = existing.iter().map(|s| s.as_ref()).collect();
        let plan = plan_slices(svc, &slice_groups(svc, pods), &existing);
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &key.namespace);
        for s in &plan.update {
            api.replace(&s.name_any(), &PostParams::default(), s).await?;
        }
        let mut names = Vec::new();
        for s in &plan.create {
            let made = api.create(&PostParams::default(), s).await;
            if let Ok(m) = &made {
                names.push(m.name_any());
            }
            if !names.is_empty() {
                self.created
                    .lock()
                    .expect("lock poisoned")
                    .insert(key.clone(), (names.clone(), tokio::time::Instant::now()));
            }
            made?;
        }
        for name in &plan.delete {
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if podutil::is_not_found(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
