//! Shared informers: one watch per kind feeds a reflector cache and broadcasts changes to
//! every controller that cares, so five controllers reading pods cost one pod watch.

use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::broadcast;

/// What a subscriber hears about one kind.
pub enum Change<K> {
    /// An object was created or modified (the new state).
    Applied(Arc<K>),
    /// An object was deleted (its last known state).
    Deleted(Arc<K>),
    /// The cache was (re)listed or the subscriber fell behind: every object may have
    /// changed and deletions may have been missed, so subscribers re-check everything.
    Resynced,
}

/// A kind's cache plus its change feed. Cloning shares both.
pub struct Informer<K: Resource<DynamicType = ()> + 'static> {
    store: Store<K>,
    tx: broadcast::Sender<Arc<Change<K>>>,
    // Our own readiness flag: kube-runtime's `Store::wait_until_ready` keeps only the last
    // waiter's waker (a futures oneshot polled from several tasks), so with several
    // controllers waiting on one store all but one could hang forever.
    synced: tokio::sync::watch::Receiver<bool>,
}

impl<K: Resource<DynamicType = ()> + 'static> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Informer {
            store: self.store.clone(),
            tx: self.tx.clone(),
            synced: self.synced.clone(),
        }
    }
}

/// Change events buffered per subscriber before it is told to resync instead.
const FEED_CAPACITY: usize = 4096;

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// Creates the informer and the future that drives its watch; the caller spawns the
    /// future (in its `JoinSet`). The watch retries with backoff forever, so the future only
    /// ends when dropped.
    pub fn new(
        api: Api<K>,
    ) -> (
        Informer<K>,
        impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        let (store, mut writer) = reflector::store();
        let (tx, _) = broadcast::channel(FEED_CAPACITY);
        let feed = tx.clone();
        let (synced_tx, synced) = tokio::sync::watch::channel(false);
        let kind = K::kind(&()).to_string();
        let drive = async move {
            let stream = watcher(api, watcher::Config::default()).default_backoff();
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(event) => {
                        writer.apply_watcher_event(&event);
                        if matches!(event, watcher::Event::InitDone) {
                            synced_tx.send_replace(true);
                        }
                        if let watcher::Event::Apply(o) | watcher::Event::Delete(o) = &event {
                            tracing::trace!(kind = %kind, name = ?o.meta().name, "watch event");
                        }
                        let change = match event {
                            watcher::Event::Apply(k) => Change::Applied(Arc::new(k)),
                            watcher::Event::Delete(k) => Change::Deleted(Arc::new(k)),
                            watcher::Event::InitDone => Change::Resynced,
                            watcher::Event::Init | watcher::Event::InitApply(_) => continue,
                        };
                        // No subscriber is not an error: controllers may not have started yet.
                        let _ = feed.send(Arc::new(change));
                    }
                    Err(e) => tracing::warn!(kind = %kind, error = %e, "watch failed; retrying with backoff"),
                }
            }
            Ok(())
        };
        (Informer { store, tx, synced }, drive)
    }

    /// The cache. Read it only after [`Informer::ready`].
    pub fn store(&self) -> &Store<K> {
        &self.store
    }

    /// Waits until the first full list has landed in the cache.
    pub async fn ready(&self) {
        // The sender lives as long as the informer task; if it is gone we are shutting down.
        let _ = self.synced.clone().wait_for(|s| *s).await;
    }

    /// A new feed of changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change<K>>> {
        self.tx.subscribe()
    }
}

/// Turns a change feed into queue keys with `map`, forever. A subscriber that falls behind
/// gets `Change::Resynced`, so nothing is lost, only coalesced.
pub async fn forward<K, Q>(
    mut rx: broadcast::Receiver<Arc<Change<K>>>,
    queue: Arc<super::Queue<Q>>,
    map: impl Fn(&Change<K>) -> Vec<Q> + Send + 'static,
) where
    Q: Clone + Eq + std::hash::Hash,
{
    loop {
        let keys = match rx.recv().await {
            Ok(change) => map(&change),
            Err(broadcast::error::RecvError::Lagged(_)) => map(&Change::Resynced),
            Err(broadcast::error::RecvError::Closed) => return,
        };
        for k in keys {
            queue.add(k);
        }
    }
}
