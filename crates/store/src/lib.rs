//! A revisioned key-value store with watch: the only thing podway's API server persists to.
//!
//! Every write gets the next store-wide **revision** (a positive, strictly increasing
//! integer); Kubernetes' `resourceVersion` is that revision as a string. A watch from revision
//! `r` delivers every change with a revision above `r`, in order, exactly once. History older
//! than the last compaction is gone: a watch from before it fails with [`StoreError::Compacted`].
//!
//! Backends: [`sqlite::SqliteStore`] (embedded, the default) and [`etcd::EtcdStore`]. Both pass
//! the one battery in `tests/battery.rs`.
#![warn(missing_docs)]

use async_trait::async_trait;
use futures::stream::BoxStream;

pub mod etcd;
mod keys;
pub mod sqlite;

/// A store-wide revision. Revision 0 means "nothing written yet".
pub type Revision = i64;

/// A stored value with its revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key, e.g. `/registry/services/default/web`.
    pub key: String,
    /// The stored bytes (podway stores JSON).
    pub value: Vec<u8>,
    /// Revision of the write that created this key.
    pub create_revision: Revision,
    /// Revision of the last write to this key.
    pub mod_revision: Revision,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A key was created or updated; `kv.mod_revision` is the change's revision.
    Put {
        /// The new value.
        kv: KeyValue,
        /// The value before, if the key existed.
        prev: Option<KeyValue>,
    },
    /// A key was deleted at `revision`; `prev` is its last value.
    Delete {
        /// The value the key had before deletion.
        prev: KeyValue,
        /// The revision of the delete.
        revision: Revision,
    },
}

impl Event {
    /// The revision at which this change happened.
    pub fn revision(&self) -> Revision {
        match self {
            Event::Put { kv, .. } => kv.mod_revision,
            Event::Delete { revision, .. } => *revision,
        }
    }

    /// The key that changed.
    pub fn key(&self) -> &str {
        match self {
            Event::Put { kv, .. } => &kv.key,
            Event::Delete { prev, .. } => &prev.key,
        }
    }
}

/// What can go wrong talking to a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `create` of a key that exists. Retrying will not help.
    #[error("key {0} already exists")]
    AlreadyExists(String),
    /// `update`/`delete` of a key that does not exist. Retrying will not help.
    #[error("key {0} not found")]
    NotFound(String),
    /// The key's `mod_revision` is not the expected one: someone else wrote it first.
    /// Re-read and retry.
    #[error("key {key} was modified: expected revision {expected}, found {actual}")]
    Conflict {
        /// The key.
        key: String,
        /// The revision the caller expected.
        expected: Revision,
        /// The revision found.
        actual: Revision,
    },
    /// The requested revision is older than the oldest history kept. Relist, then watch again.
    #[error("revision {requested} has been compacted (oldest kept: {compacted})")]
    Compacted {
        /// The revision asked for.
        requested: Revision,
        /// The compaction revision.
        compacted: Revision,
    },
    /// The backend failed (I/O, SQLite, etcd connection). May help to retry.
    #[error("store backend: {0}")]
    Backend(String),
}

/// Result of a store operation.
pub type Result<T> = std::result::Result<T, StoreError>;

/// A stream of watch events, in revision order. It ends when the store shuts down, or after
/// an error item (history the watcher still needed was compacted, the backend failed): the
/// caller then relists. A slow watcher is not an error by itself: the SQLite backend catches
/// it up from its log, etcd buffers it server-side.
pub type WatchStream = BoxStream<'static, Result<Event>>;

/// The revisioned key-value store.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The value of `key`, if present.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Every key under `prefix`, sorted by key, and the store's current revision at the time
    /// of the read (a watch from that revision misses nothing).
    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision)>;

    /// Create `key`; fails with `AlreadyExists` if present. Returns the new revision.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision>;

    /// Replace `key` only if its `mod_revision` equals `expected`. Returns the new revision.
    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<Revision>;

    /// Delete `key`, only if its `mod_revision` equals `expected` when given. Returns the
    /// value it had and the revision of the delete.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)>;

    /// Changes under `prefix` with a revision strictly above `after`, then live changes.
    /// Fails with `Compacted` if `after` is older than the kept history.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream>;

    /// The current (newest) revision.
    async fn current_revision(&self) -> Result<Revision>;

    /// Forget history at and below `revision` (values of live keys are kept).
    async fn compact(&self, revision: Revision) -> Result<()>;
}
