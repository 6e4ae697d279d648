//! etcd backend: the store over an etcd v3 server, for control planes that outgrow one
//! machine.
//!
//! The mapping is the one the Kubernetes apiserver uses:
//! - create: a txn that puts only if the key's `create_revision` is 0 (absent);
//! - update and delete with an expected revision: a txn on `mod_revision`, with a get in the
//!   else branch to tell `NotFound` from `Conflict`;
//! - list: a paginated prefix range, every page read at the first page's header revision;
//! - watch: an etcd watch from `after + 1` with `prev_kv`;
//! - compact: etcd compaction, physical (the call returns once history is really gone).
//!
//! Revisions are etcd's own, so they are shared with anything else writing to the same
//! cluster. Keys may carry a prefix (see [`EtcdStore::with_key_prefix`]) so several podway
//! clusters can share one etcd; compaction is still cluster-wide.

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions, Txn, TxnOp,
    TxnOpResponse, WatchOptions,
};

use crate::keys::prefix_end;
use crate::{Event, KeyValue, Result, Revision, Store, StoreError, WatchStream};

/// Keys per list request: keeps each response far below gRPC's 4 MiB message limit for
/// typical objects, and etcd's per-request work bounded.
const LIST_PAGE: i64 = 500;

/// The store over an etcd v3 server.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    /// Prepended to every key on the wire, stripped from every key returned.
    prefix: String,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn backend(e: etcd_client::Error) -> StoreError {
    StoreError::Backend(format!("etcd: {e}"))
}

/// etcd's `ErrCompacted`: the revision asked for is below the compaction revision.
fn is_compacted(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::GRpcStatus(s) if s.message().contains("required revision has been compacted"))
}

/// etcd's `ErrFutureRev`: the revision asked for is newer than the store.
fn is_future(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::GRpcStatus(s) if s.message().contains("required revision is a future revision"))
}

impl EtcdStore {
    /// Connects to the etcd server at `endpoint`, e.g. `http://127.0.0.1:2379`.
    ///
    /// The connection is made lazily: this succeeds even if the server is not up yet, and
    /// the first request fails with `Backend` until it is.
    pub async fn connect(endpoint: &str) -> Result<Self> {
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let client = Client::connect([endpoint], Some(options)).await.map_err(backend)?;
        Ok(EtcdStore {
            client,
            prefix: String::new(),
        })
    }

    /// Stores every key under `prefix` in etcd (e.g. `/podway-a`); keys given to and
    /// returned from the store never include it. Default: no prefix.
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    fn full_key(&self, key: &str) -> Vec<u8> {
        format!("{}{key}", self.prefix).into_bytes()
    }

    /// The etcd range `[start, end)` covering the keys under `prefix`.
    fn range(&self, prefix: &str) -> (Vec<u8>, Vec<u8>) {
        let start = self.full_key(prefix);
        // "\0" as the end means "to the last key"; as the start, "from the first key".
        let end = prefix_end(&start).unwrap_or_else(|| vec![0]);
        let start = if start.is_empty() { vec![0] } else { start };
        (start, end)
    }

    fn kv(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue> {
        let key = std::str::from_utf8(kv.key())
            .ok()
            .and_then(|key| key.strip_prefix(self.prefix.as_str()))
            .ok_or_else(|| {
                StoreError::Backend(format!(
                    "etcd returned key {:?} outside prefix {:?}",
                    kv.key(),
                    self.prefix
                ))
            })?;
        Ok(KeyValue {
            key: key.to_owned(),
            value: kv.value().to_vec(),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
        })
    }

    fn event(&self, event: &etcd_client::Event) -> Result<Event> {
        let kv = event
            .kv()
            .ok_or_else(|| StoreError::Backend("etcd watch event without a key-value".into()))?;
        let prev = event.prev_kv().map(|prev| self.kv(prev)).transpose()?;
        match event.event_type() {
            EventType::Put => Ok(Event::Put { kv: self.kv(kv)?, prev }),
            // etcd leaves prev_kv out when the previous revision is compacted; Kubernetes
            // refuses such events too, since a delete without its object cannot be decoded.
            EventType::Delete => match prev {
                Some(prev) => Ok(Event::Delete {
                    prev,
                    revision: kv.mod_revision(),
                }),
                None => Err(StoreError::Backend(format!(
                    "etcd delete event at revision {} without the previous value",
                    kv.mod_revision()
                ))),
            },
        }
    }

    /// Whether a range read at `revision` succeeds, i.e. history at `revision` is kept.
    async fn revision_kept(&self, revision: Revision) -> Result<bool> {
        let (start, end) = self.range("");
        let options = GetOptions::new()
            .with_range(end)
            .with_revision(revision)
            .with_count_only()
            .with_limit(1);
        match self.client.kv_client().get(start, Some(options)).await {
            Ok(_) => Ok(true),
            Err(e) if is_compacted(&e) => Ok(false),
            Err(e) if is_future(&e) => Ok(true),
            Err(e) => Err(backend(e)),
        }
    }

    /// The compaction revision, found by bisection (etcd reports it only on watches): the
    /// smallest revision in `(below, newest]` still readable. Only used to fill in
    /// `StoreError::Compacted`, so its cost (~log2(newest) reads) is paid on that path alone.
    async fn compaction_revision(&self, below: Revision) -> Result<Revision> {
        let (mut low, mut high) = (below, self.current_revision().await?);
        while high - low > 1 {
            let mid = low + (high - low) / 2;
            if self.revision_kept(mid).await? {
                high = mid;
            } else {
                low = mid;
            }
        }
        Ok(high)
    }

    /// The txn's else-branch get: the key's current value, if any.
    fn else_get(&self, response: &etcd_client::TxnResponse) -> Result<Option<KeyValue>> {
        for op in response.op_responses() {
            if let TxnOpResponse::Get(get) = op {
                return get.kvs().first().map(|kv| self.kv(kv)).transpose();
            }
        }
        Ok(None)
    }

    /// The etcd-side refusal of a guarded update or delete: absent, or modified since.
    fn refused(&self, key: &str, expected: Revision, response: &etcd_client::TxnResponse) -> Result<StoreError> {
        Ok(match self.else_get(response)? {
            None => StoreError::NotFound(key.to_owned()),
            Some(found) => StoreError::Conflict {
                key: key.to_owned(),
                expected,
                actual: found.mod_revision,
            },
        })
    }
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<Revision> {
    header
        .map(|h| h.revision())
        .ok_or_else(|| StoreError::Backend("etcd response without a header".into()))
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let response = self
            .client
            .kv_client()
            .get(self.full_key(key), None)
            .await
            .map_err(backend)?;
        response.kvs().first().map(|kv| self.kv(kv)).transpose()
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision)> {
        let (mut start, end) = self.range(prefix);
        let mut kv_client = self.client.kv_client();
        let mut kvs = Vec::new();
        let mut revision = 0;
        loop {
            let mut options = GetOptions::new().with_range(end.clone()).with_limit(LIST_PAGE);
            if revision > 0 {
                options = options.with_revision(revision);
            }
            let response = kv_client.get(start, Some(options)).await.map_err(|e| {
                if is_compacted(&e) {
                    // Compacted between pages; a retry lists at a newer revision.
                    StoreError::Backend(format!("etcd list of {prefix} raced a compaction, retry: {e}"))
                } else {
                    backend(e)
                }
            })?;
            if revision == 0 {
                revision = header_revision(response.header())?;
            }
            for kv in response.kvs() {
                kvs.push(self.kv(kv)?);
            }
            match response.kvs().last() {
                // The next page starts just after the last key (etcd ranges are key-sorted).
                Some(last) if response.more() => start = [last.key(), &[0]].concat(),
                _ => break,
            }
        }
        Ok((kvs, revision))
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision> {
        let full = self.full_key(key);
        let txn = Txn::new()
            .when([Compare::create_revision(full.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(full, value, None)]);
        let response = self.client.kv_client().txn(txn).await.map_err(backend)?;
        if !response.succeeded() {
            return Err(StoreError::AlreadyExists(key.to_owned()));
        }
        header_revision(response.header())
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<Revision> {
        let full = self.full_key(key);
        // create_revision > 0 keeps `expected == 0` from creating an absent key (its
        // mod_revision compares as 0).
        let txn = Txn::new()
            .when([
                Compare::mod_revision(full.clone(), CompareOp::Equal, expected),
                Compare::create_revision(full.clone(), CompareOp::Greater, 0),
            ])
            .and_then([TxnOp::put(full.clone(), value, None)])
            .or_else([TxnOp::get(full, None)]);
        let response = self.client.kv_client().txn(txn).await.map_err(backend)?;
        if !response.succeeded() {
            return Err(self.refused(key, expected, &response)?);
        }
        header_revision(response.header())
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)> {
        let full = self.full_key(key);
        let mut guards = vec![Compare::create_revision(full.clone(), CompareOp::Greater, 0)];
        if let Some(expected) = expected {
            guards.push(Compare::mod_revision(full.clone(), CompareOp::Equal, expected));
        }
        let txn = Txn::new()
            .when(guards)
            .and_then([TxnOp::delete(full.clone(), Some(DeleteOptions::new().with_prev_key()))])
            .or_else([TxnOp::get(full, None)]);
        let response = self.client.kv_client().txn(txn).await.map_err(backend)?;
        if !response.succeeded() {
            return Err(match expected {
                Some(expected) => self.refused(key, expected, &response)?,
                None => StoreError::NotFound(key.to_owned()),
            });
        }
        let prev = response.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Delete(delete) => delete.prev_kvs().first().cloned(),
            _ => None,
        });
        let prev = prev.ok_or_else(|| StoreError::NotFound(key.to_owned()))?;
        Ok((self.kv(&prev)?, header_revision(response.header())?))
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        // etcd accepts a watch from `after + 1` when `after + 1` equals the compaction
        // revision, and reports other compactions only inside the stream. A read at `after`
        // fails exactly when `after` is below the compaction revision, which is this
        // store's contract, so check that first and fail here like the SQLite backend.
        // `after == 0` (from the beginning) is checked at revision 1, so a compaction at
        // exactly revision 1 goes unreported; etcd still replays everything from 1 then.
        if !self.revision_kept(after.max(1)).await? {
            let compacted = self.compaction_revision(after).await?;
            return Err(StoreError::Compacted {
                requested: after,
                compacted,
            });
        }
        let (start, end) = self.range(prefix);
        let options = WatchOptions::new()
            .with_range(end)
            .with_start_revision(after + 1)
            .with_prev_key();
        let stream = self
            .client
            .watch_client()
            .watch(start, Some(options))
            .await
            .map_err(backend)?;
        let state = WatchState {
            store: self.clone(),
            stream,
            pending: VecDeque::new(),
            last: after,
            ended: false,
        };
        Ok(Box::pin(futures::stream::unfold(state, |mut state| async move {
            let item = state.next().await?;
            Some((item, state))
        })))
    }

    async fn current_revision(&self) -> Result<Revision> {
        let (start, end) = self.range("");
        let options = GetOptions::new().with_range(end).with_count_only();
        let response = self
            .client
            .kv_client()
            .get(start, Some(options))
            .await
            .map_err(backend)?;
        header_revision(response.header())
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let options = CompactionOptions::new().with_physical();
        match self.client.kv_client().compact(revision, Some(options)).await {
            Ok(_) => Ok(()),
            // Already compacted at or past `revision`: nothing to do, as with SQLite.
            Err(e) if is_compacted(&e) => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }
}

/// An etcd watch turned into a stream of single events.
struct WatchState {
    store: EtcdStore,
    /// Owns the request side too: dropping it cancels the watch on the server.
    stream: etcd_client::WatchStream,
    pending: VecDeque<Result<Event>>,
    /// Revision of the last event delivered.
    last: Revision,
    ended: bool,
}

impl WatchState {
    async fn next(&mut self) -> Option<Result<Event>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                match &item {
                    Ok(event) => self.last = event.revision(),
                    Err(_) => {
                        self.ended = true;
                        self.pending.clear();
                    }
                }
                return Some(item);
            }
            if self.ended {
                return None;
            }
            let response = match self.stream.message().await {
                Ok(Some(response)) => response,
                Ok(None) => return None,
                Err(e) => {
                    self.ended = true;
                    return Some(Err(backend(e)));
                }
            };
            if response.compact_revision() > 0 {
                self.ended = true;
                return Some(Err(StoreError::Compacted {
                    requested: self.last,
                    compacted: response.compact_revision(),
                }));
            }
            if response.canceled() {
                self.ended = true;
                let reason = response.cancel_reason();
                return Some(Err(StoreError::Backend(format!("etcd canceled the watch: {reason}"))));
            }
            self.pending
                .extend(response.events().iter().map(|event| self.store.event(event)));
        }
    }
}
