//! The Service events controller's edge: reconciles a Service when it or a pod of its
//! namespace changes, and records the Events [`Memory`] lets through.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};
use tokio::task::JoinSet;

use super::findings::findings;
use super::memory::Memory;
use crate::events::Recorder;
use crate::informers::Informers;
use crate::runtime::{forward, work, Change, Key, Queue};

/// `source.component` of the Events (kubectl describe's "From" column).
pub const COMPONENT: &str = "service-diagnostics";

struct Ctl {
    recorder: Recorder,
    services: Store<Service>,
    pods: Store<Pod>,
    memory: Arc<Mutex<Memory>>,
}

/// Runs the controller until dropped.
pub async fn run(client: Client, inf: Informers) -> anyhow::Result<()> {
    let queue = Arc::new(Queue::default());
    let mut feeds = JoinSet::new();
    let services = inf.services.store().clone();
    let all = {
        let services = services.clone();
        move || -> Vec<Key> { services.state().iter().map(|s| Key::of(s.as_ref())).collect() }
    };
    let memory = Arc::new(Mutex::new(Memory::default()));
    let every = all.clone();
    let forgets = memory.clone();
    feeds.spawn(forward(inf.services.subscribe(), queue.clone(), move |c| match c {
        Change::Applied(s) => vec![Key::of(s.as_ref())],
        Change::Deleted(s) => {
            // Only the feed still knows the deleted Service's uid.
            forgets
                .lock()
                .expect("memory lock poisoned")
                .forget(&s.uid().unwrap_or_default());
            Vec::new()
        }
        Change::Resynced => every(),
    }));
    let every = all.clone();
    let in_namespace = services.clone();
    // Any pod change may start or stop a match (labels are not known before the change), so
    // every Service of the pod's namespace is looked at again; only changed findings cost more.
    feeds.spawn(forward(inf.pods.subscribe(), queue.clone(), move |c| match c {
        Change::Applied(p) | Change::Deleted(p) => {
            let ns = p.namespace().unwrap_or_default();
            in_namespace
                .state()
                .iter()
                .filter(|s| s.namespace().as_deref() == Some(ns.as_str()))
                .map(|s| Key::of(s.as_ref()))
                .collect()
        }
        Change::Resynced => every(),
    }));
    inf.services.ready().await;
    inf.pods.ready().await;
    for k in all() {
        queue.add(k);
    }
    let ctl = Ctl {
        recorder: Recorder::new(client, COMPONENT),
        services,
        pods: inf.pods.store().clone(),
        memory,
    };
    work("serviceevents", queue, |key| ctl.reconcile(key)).await;
    Ok(())
}

/// Never fails: Events are best effort (the recorder logs its own failures).
#[derive(Debug, thiserror::Error)]
#[error("unreachable")]
enum Never {}

impl crate::runtime::Transient for Never {
    fn is_transient(&self) -> bool {
        false
    }
}

impl Ctl {
    async fn reconcile(&self, key: Key) -> Result<Option<Duration>, Never> {
        let Some(svc) = self.services.get(&key.object_ref()) else {
            // The uid is gone with the object; a Service of the same name later has another.
            return Ok(None);
        };
        let uid = svc.uid().unwrap_or_default();
        if svc.metadata.deletion_timestamp.is_some() {
            self.memory.lock().expect("memory lock poisoned").forget(&uid);
            return Ok(None);
        }
        let pods = self.pods.state();
        let in_namespace: Vec<&Pod> = pods
            .iter()
            .map(|p| p.as_ref())
            .filter(|p| p.metadata.namespace.as_deref() == Some(key.namespace.as_str()))
            .collect();
        let found = findings(&svc, &in_namespace);
        let verdict = self
            .memory
            .lock()
            .expect("memory lock poisoned")
            .observe(&uid, found, Instant::now());
        for f in &verdict.tell {
            self.recorder.publish(svc.as_ref(), f.type_, f.reason, &f.message).await;
        }
        Ok(verdict.recheck_after)
    }
}
