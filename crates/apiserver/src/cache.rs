//! The watch cache: every stored object in memory, kept current by one store watch.
//!
//! Lists and watches are served from here, never from the store. Writes go to the store, then
//! wait until the cache has seen their revision ([`WatchCache::wait_for`]), so a client reads
//! its own writes. A bounded history of recent events lets a watch start from an older
//! resourceVersion; older than that gets 410 Expired, as from the real server.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use podway_store::{Event, Revision, Store, StoreError};
use serde_json::Value;
use tokio::sync::{broadcast, watch};

/// How many recent events a watch can start behind. The real server keeps a similar window.
const HISTORY: usize = 20_000;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Deleted.
    Deleted,
    /// The cache was refilled from a fresh list (it fell behind the store's compaction):
    /// changes in between are unknown, so every live watch must end and its client relist.
    Relisted,
}

impl ChangeType {
    /// The watch event type: `ADDED`, `MODIFIED`, `DELETED`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
            ChangeType::Relisted => "ERROR",
        }
    }
}

/// One change, with the object after it (the last state for deletes) and before it.
#[derive(Debug, Clone)]
pub struct Change {
    /// What happened.
    pub kind: ChangeType,
    /// The store key.
    pub key: String,
    /// The object after the change (for deletes: its last state, at the delete's revision).
    pub object: Arc<Value>,
    /// The object before the change, if any.
    pub prev: Option<Arc<Value>>,
    /// The change's revision.
    pub revision: Revision,
}

struct State {
    objects: BTreeMap<String, Arc<Value>>,
    history: VecDeque<Arc<Change>>,
    /// Changes at or below this revision are not in `history`.
    oldest: Revision,
    /// The newest revision applied.
    revision: Revision,
}

impl State {
    /// The objects whose keys start with `prefix`, in key order.
    fn under(&self, prefix: &str) -> Vec<Arc<Value>> {
        self.objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// See the module docs.
pub struct WatchCache {
    state: RwLock<State>,
    changes: broadcast::Sender<Arc<Change>>,
    revision: watch::Sender<Revision>,
}

/// A watch's starting point: the changes after it that are still in history, and the live feed.
pub struct Subscription {
    /// Changes after the requested revision, already past.
    pub backlog: Vec<Arc<Change>>,
    /// Live changes; skip those at or below the last backlog revision.
    pub live: broadcast::Receiver<Arc<Change>>,
}

/// Decode a stored value and stamp its resourceVersion.
pub fn decode(bytes: &[u8], revision: Revision) -> Option<Value> {
    let mut v: Value = serde_json::from_slice(bytes).ok()?;
    podway_api::meta::set(&mut v, "resourceVersion", Value::String(revision.to_string()));
    Some(v)
}

impl WatchCache {
    /// Fill the cache from the store and keep it current. Returns once the initial list is in.
    pub async fn start(store: Arc<dyn Store>) -> Result<Arc<WatchCache>, StoreError> {
        let (items, revision) = store.list("/registry/").await?;
        let mut objects = BTreeMap::new();
        for kv in items {
            if let Some(v) = decode(&kv.value, kv.mod_revision) {
                objects.insert(kv.key, Arc::new(v));
            }
        }
        let (changes, _) = broadcast::channel(4096);
        let (rev_tx, _) = watch::channel(revision);
        let cache = Arc::new(WatchCache {
            state: RwLock::new(State {
                objects,
                history: VecDeque::new(),
                oldest: revision,
                revision,
            }),
            changes,
            revision: rev_tx,
        });
        let feed = cache.clone();
        tokio::spawn(async move { feed.follow(store, revision).await });
        Ok(cache)
    }

    async fn follow(self: Arc<Self>, store: Arc<dyn Store>, mut after: Revision) {
        loop {
            match store.watch("/registry/", after).await {
                Ok(mut stream) => {
                    while let Some(ev) = stream.next().await {
                        match ev {
                            Ok(ev) => {
                                after = ev.revision();
                                self.apply(ev);
                            }
                            Err(e) => {
                                tracing::warn!("store watch ended: {e}; resuming");
                                break;
                            }
                        }
                    }
                }
                Err(StoreError::Compacted { .. }) => {
                    // Fell behind compaction: the cache would miss changes. Relist.
                    if let Ok((items, rev)) = store.list("/registry/").await {
                        self.replace_all(items, rev);
                        after = rev;
                    }
                }
                Err(e) => tracing::warn!("store watch failed: {e}; retrying"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn replace_all(&self, items: Vec<podway_store::KeyValue>, revision: Revision) {
        let mut st = self.state.write().expect("cache lock");
        st.objects = items
            .into_iter()
            .filter_map(|kv| decode(&kv.value, kv.mod_revision).map(|v| (kv.key, Arc::new(v))))
            .collect();
        st.history.clear();
        st.oldest = revision;
        st.revision = revision;
        let relisted = Change {
            kind: ChangeType::Relisted,
            key: String::new(),
            object: Arc::new(Value::Null),
            prev: None,
            revision,
        };
        // Sent under the lock, like every change: no watcher can miss it.
        let _ = self.changes.send(Arc::new(relisted));
        drop(st);
        self.revision.send_replace(revision);
    }

    fn apply(&self, ev: Event) {
        let revision = ev.revision();
        let change = {
            let mut st = self.state.write().expect("cache lock");
            let change = match ev {
                Event::Put { kv, .. } => {
                    let Some(obj) = decode(&kv.value, kv.mod_revision) else {
                        return;
                    };
                    let obj = Arc::new(obj);
                    let prev = st.objects.insert(kv.key.clone(), obj.clone());
                    let kind = if prev.is_some() {
                        ChangeType::Modified
                    } else {
                        ChangeType::Added
                    };
                    Change {
                        kind,
                        key: kv.key,
                        object: obj,
                        prev,
                        revision,
                    }
                }
                Event::Delete { prev, revision } => {
                    let last = st.objects.remove(&prev.key);
                    let mut obj = match &last {
                        Some(o) => (**o).clone(),
                        None => decode(&prev.value, prev.mod_revision).unwrap_or(Value::Null),
                    };
                    podway_api::meta::set(&mut obj, "resourceVersion", Value::String(revision.to_string()));
                    Change {
                        kind: ChangeType::Deleted,
                        key: prev.key,
                        object: Arc::new(obj),
                        prev: last,
                        revision,
                    }
                }
            };
            let change = Arc::new(change);
            st.revision = revision;
            st.history.push_back(change.clone());
            while st.history.len() > HISTORY {
                if let Some(old) = st.history.pop_front() {
                    st.oldest = old.revision;
                }
            }
            // Sending under the lock keeps subscribe() race-free: a subscriber either sees
            // this change in its backlog or receives it live, never neither.
            let _ = self.changes.send(change.clone());
            change
        };
        self.revision.send_replace(change.revision);
    }

    /// The newest revision the cache has applied.
    pub fn revision(&self) -> Revision {
        *self.revision.borrow()
    }

    /// Wait until the cache has applied `revision` (bounded; returns false on timeout).
    pub async fn wait_for(&self, revision: Revision) -> bool {
        let mut rx = self.revision.subscribe();
        tokio::time::timeout(Duration::from_secs(10), async move {
            rx.wait_for(|r| *r >= revision).await.is_ok()
        })
        .await
        .unwrap_or(false)
    }

    /// One object.
    pub fn get(&self, key: &str) -> Option<Arc<Value>> {
        self.state.read().expect("cache lock").objects.get(key).cloned()
    }

    /// Every object under `prefix`, sorted by key, and the cache's revision.
    pub fn list(&self, prefix: &str) -> (Vec<Arc<Value>>, Revision) {
        let st = self.state.read().expect("cache lock");
        (st.under(prefix), st.revision)
    }

    /// Every object under `prefix` and a subscription to every change after them, taken
    /// atomically: what a watch from "now" (resourceVersion "" or "0") starts with.
    pub fn list_and_subscribe(&self, prefix: &str) -> (Vec<Arc<Value>>, Revision, broadcast::Receiver<Arc<Change>>) {
        let st = self.state.read().expect("cache lock");
        (st.under(prefix), st.revision, self.changes.subscribe())
    }

    /// Subscribe to changes after `after`; `Err(oldest)` if that is older than the history.
    pub fn subscribe(&self, after: Revision) -> Result<Subscription, Revision> {
        let st = self.state.read().expect("cache lock");
        if after < st.oldest {
            return Err(st.oldest);
        }
        let live = self.changes.subscribe();
        let backlog = st.history.iter().filter(|c| c.revision > after).cloned().collect();
        Ok(Subscription { backlog, live })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_relist_tells_live_watchers_to_end() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(podway_store::sqlite::SqliteStore::open(&dir.path().join("db")).unwrap());
        let cache = WatchCache::start(store).await.unwrap();
        let (_, revision, mut live) = cache.list_and_subscribe("/registry/");
        cache.replace_all(Vec::new(), revision);
        let change = live.recv().await.unwrap();
        assert_eq!(change.kind, ChangeType::Relisted);
        // And a watch from before the relist is too old now.
        assert!(cache.subscribe(revision - 1).is_err());
    }
}
