//! The machinery every controller shares: informers (watch + cache + change feed), a
//! coalescing work queue, and object keys.

mod informer;
mod queue;

pub use informer::{forward, Change, Informer};
pub use queue::Queue;

use kube::Resource;

/// Identifies one object: namespace ("" for cluster-scoped) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// Namespace, or "" for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl Key {
    /// A key from its parts.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Key {
        Key {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of an object.
    pub fn of<K: Resource>(obj: &K) -> Key {
        Key::new(
            obj.meta().namespace.clone().unwrap_or_default(),
            obj.meta().name.clone().unwrap_or_default(),
        )
    }

    /// The cache lookup reference for this key.
    pub fn object_ref<K: Resource<DynamicType = ()>>(&self) -> kube::runtime::reflector::ObjectRef<K> {
        let r = kube::runtime::reflector::ObjectRef::new(&self.name);
        if self.namespace.is_empty() {
            r
        } else {
            r.within(&self.namespace)
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}", self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// Runs `reconcile` for every key the queue hands out, one at a time, forever.
/// `Ok(Some(d))` requeues the key after `d`; `Err` retries with per-key backoff.
pub async fn work<Q, F, Fut, E>(controller: &'static str, queue: std::sync::Arc<Queue<Q>>, mut reconcile: F)
where
    Q: Clone + Eq + std::hash::Hash + std::fmt::Display,
    F: FnMut(Q) -> Fut,
    Fut: std::future::Future<Output = Result<Option<std::time::Duration>, E>>,
    E: std::fmt::Display + Transient,
{
    loop {
        let key = queue.next().await;
        tracing::trace!(controller, key = %key, "reconcile");
        match reconcile(key.clone()).await {
            Ok(requeue) => {
                queue.forget(&key);
                if let Some(after) = requeue {
                    queue.add_after(key, after);
                }
            }
            Err(e) if e.is_transient() => {
                tracing::debug!(controller, key = %key, error = %e, "reconcile raced another writer; retrying");
                queue.retry(key);
            }
            Err(e) => {
                tracing::warn!(controller, key = %key, error = %e, "reconcile failed; retrying");
                queue.retry(key);
            }
        }
    }
}

/// Errors that are an expected part of optimistic concurrency (a 409 because our cache was
/// a step behind) and are logged quietly before the retry.
pub trait Transient {
    /// Whether this error only means "try again with fresher data".
    fn is_transient(&self) -> bool;
}

impl Transient for kube::Error {
    fn is_transient(&self) -> bool {
        matches!(self, kube::Error::Api(s) if s.code == 409)
    }
}
