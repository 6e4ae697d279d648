//! The single writer: a dedicated thread that owns the one write connection.
//!
//! Every write goes through here, so revisions are handed out in commit order without locks
//! and SQLite never sees two writers. The thread takes whatever requests are queued (up to
//! `MAX_BATCH`) and commits them in ONE transaction: group commit. Under concurrency this
//! turns N commits (and, with `Durability::PowerLoss`, N fsyncs) into one; a lone request
//! still commits alone, with no waiting for company.
//!
//! Order of effects per batch: commit, then publish the new revision and broadcast events,
//! then reply. So a caller whose write returned Ok finds it in every later read, and a watch
//! started later replays it from the log.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use rusqlite::{params, Connection, TransactionBehavior};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::read::{self, Latest};
use crate::{Event, KeyValue, Result, Revision, StoreError};

/// Most requests committed in one transaction; bounds the latency a batch adds to its first
/// request and the work lost to a failed commit.
const MAX_BATCH: usize = 256;

/// A write asked of the writer thread.
#[derive(Debug)]
pub(crate) enum Op {
    Create {
        key: String,
        value: Vec<u8>,
    },
    Update {
        key: String,
        value: Vec<u8>,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
    Compact {
        revision: Revision,
    },
}

/// What a successful write returns.
#[derive(Debug)]
pub(crate) enum Done {
    Written(Revision),
    Deleted(KeyValue, Revision),
    Compacted,
}

/// A write and where to send its outcome.
pub(crate) struct Request {
    pub(crate) op: Op,
    pub(crate) reply: oneshot::Sender<Result<Done>>,
}

type Reply = oneshot::Sender<Result<Done>>;

/// State owned by the writer thread.
pub(crate) struct Writer {
    pub(crate) conn: Connection,
    /// The newest committed revision (only this thread writes it).
    pub(crate) current: Revision,
    /// Mirror of `current` for `Store::current_revision` without a query.
    pub(crate) published: Arc<AtomicI64>,
    pub(crate) events: broadcast::Sender<Arc<Event>>,
}

impl Writer {
    /// Serves requests until every sender is gone (the store was dropped).
    pub(crate) fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        while let Some(first) = requests.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match requests.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            self.serve(batch);
        }
    }

    /// Commits the writes of a batch together; a compaction runs in its own transaction,
    /// in queue order, because it may be long and is not worth holding writes back for.
    fn serve(&mut self, batch: Vec<Request>) {
        let mut writes = Vec::new();
        for Request { op, reply } in batch {
            match op {
                Op::Compact { revision } => {
                    self.commit_writes(std::mem::take(&mut writes));
                    let _ = reply.send(self.compact(revision).map(|()| Done::Compacted));
                }
                op => writes.push((op, reply)),
            }
        }
        self.commit_writes(writes);
    }

    fn commit_writes(&mut self, writes: Vec<(Op, Reply)>) {
        if writes.is_empty() {
            return;
        }
        let (ops, replies): (Vec<Op>, Vec<Reply>) = writes.into_iter().unzip();
        let start = self.current;
        let current = &mut self.current;
        let conn = &mut self.conn;
        let committed = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut outcomes = Vec::with_capacity(ops.len());
            let mut events = Vec::with_capacity(ops.len());
            for op in ops {
                match apply(&tx, current, op)? {
                    Ok((done, event)) => {
                        events.push(event);
                        outcomes.push(Ok(done));
                    }
                    Err(refused) => outcomes.push(Err(refused)),
                }
            }
            tx.commit()?;
            Ok::<_, rusqlite::Error>((outcomes, events))
        })();
        match committed {
            Ok((outcomes, events)) => {
                self.published.store(self.current, Ordering::Release);
                for event in events {
                    // No receivers is fine: nobody is watching.
                    let _ = self.events.send(Arc::new(event));
                }
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(e) => {
                // The transaction rolled back: none of the batch happened, so its revisions
                // are handed out again.
                self.current = start;
                tracing::error!(error = %e, "sqlite write batch failed");
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Backend(format!("sqlite write failed: {e}"))));
                }
            }
        }
    }

    /// Deletes history at and below `revision` but keeps, for every key, its newest row at or
    /// below it unless that row is a tombstone: that row is the key's live value or the
    /// `prev` of a change that a watch from `revision` still replays.
    fn compact(&mut self, revision: Revision) -> Result<()> {
        let mut run = || -> rusqlite::Result<Result<usize>> {
            let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if revision <= read::compact_revision(&tx)? {
                return Ok(Ok(0));
            }
            if revision > self.current {
                return Ok(Err(StoreError::Backend(format!(
                    "cannot compact to revision {revision}: the newest revision is {}",
                    self.current
                ))));
            }
            let removed = tx.execute(
                "DELETE FROM log WHERE revision <= ?1 AND (deleted = 1 OR EXISTS (
                     SELECT 1 FROM log AS newer
                     WHERE newer.key = log.key AND newer.revision > log.revision AND newer.revision <= ?1))",
                [revision],
            )?;
            tx.execute(
                "INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                params![super::schema::COMPACT_REVISION, revision],
            )?;
            tx.commit()?;
            Ok(Ok(removed))
        };
        let removed = run().map_err(|e| StoreError::Backend(format!("sqlite compaction failed: {e}")))??;
        tracing::debug!(revision, removed, "compacted sqlite log");
        Ok(())
    }
}

/// Applies one write inside the batch's transaction. The outer error is SQLite failing (the
/// batch is lost); the inner one is the write being refused (the batch goes on).
fn apply(conn: &Connection, current: &mut Revision, op: Op) -> rusqlite::Result<Result<(Done, Event)>> {
    let revision = *current + 1;
    let outcome = match op {
        Op::Create { key, value } => match read::latest(conn, &key)? {
            Some(Latest { deleted: false, .. }) => Err(StoreError::AlreadyExists(key)),
            // A create after a delete starts a new life: no `prev`, new create_revision.
            _ => {
                insert(conn, revision, &key, &value, revision, 0, false)?;
                let kv = KeyValue {
                    key,
                    value,
                    create_revision: revision,
                    mod_revision: revision,
                };
                Ok((Done::Written(revision), Event::Put { kv, prev: None }))
            }
        },
        Op::Update { key, value, expected } => match live(conn, &key)? {
            None => Err(StoreError::NotFound(key)),
            Some(prev) if prev.mod_revision != expected => Err(StoreError::Conflict {
                key,
                expected,
                actual: prev.mod_revision,
            }),
            Some(prev) => {
                insert(
                    conn,
                    revision,
                    &key,
                    &value,
                    prev.create_revision,
                    prev.mod_revision,
                    false,
                )?;
                let kv = KeyValue {
                    key,
                    value,
                    create_revision: prev.create_revision,
                    mod_revision: revision,
                };
                Ok((Done::Written(revision), Event::Put { kv, prev: Some(prev) }))
            }
        },
        Op::Delete { key, expected } => match live(conn, &key)? {
            None => Err(StoreError::NotFound(key)),
            Some(prev) if expected.is_some_and(|e| e != prev.mod_revision) => Err(StoreError::Conflict {
                key,
                expected: expected.unwrap_or_default(),
                actual: prev.mod_revision,
            }),
            Some(prev) => {
                insert(conn, revision, &key, &[], prev.create_revision, prev.mod_revision, true)?;
                Ok((Done::Deleted(prev.clone(), revision), Event::Delete { prev, revision }))
            }
        },
        // `serve` never batches a compaction; refuse rather than panic on the writer thread.
        Op::Compact { revision } => Err(StoreError::Backend(format!(
            "compaction to {revision} reached a write batch"
        ))),
    };
    if outcome.is_ok() {
        *current = revision;
    }
    Ok(outcome)
}

/// The live value of `key` (its newest row unless that is a tombstone).
fn live(conn: &Connection, key: &str) -> rusqlite::Result<Option<KeyValue>> {
    Ok(read::latest(conn, key)?.filter(|l| !l.deleted).map(|l| l.kv))
}

fn insert(
    conn: &Connection,
    revision: Revision,
    key: &str,
    value: &[u8],
    create_revision: Revision,
    prev_revision: Revision,
    deleted: bool,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO log (revision, key, value, create_revision, prev_revision, deleted)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    stmt.execute(params![
        revision,
        key.as_bytes(),
        value,
        create_revision,
        prev_revision,
        deleted
    ])?;
    Ok(())
}
