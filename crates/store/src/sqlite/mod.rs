//! SQLite backend: one database file in WAL mode, history kept as a log of revisions.
//!
//! - `schema`: the `log` table (one row per write; newest row per key is the live value,
//!   deletes are tombstones) and connection pragmas.
//! - `writer`: the one writer thread, with group commit.
//! - `read`: queries and the pool of read connections.
//! - `watch`: catch-up from the log, then the in-process broadcast.
//!
//! Revisions survive restarts: on open the writer resumes from the newest revision in the
//! file (or the compaction revision, if compaction removed the newest row), so they never go
//! backwards. Only one process may open a file at a time; nothing enforces this yet.

mod read;
mod schema;
mod watch;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::{Event, KeyValue, Result, Revision, Store, StoreError, WatchStream};
use read::Readers;
use writer::{Done, Op, Request, Writer};

/// How much an acknowledged write survives. Either way the file is never corrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Survives the process dying (`kill -9`, panic, OOM), not the machine losing power.
    /// SQLite `synchronous=NORMAL`: in WAL mode a commit has written its frames to the WAL
    /// with `write()` before returning, so they sit in the OS page cache and reach the disk
    /// whatever happens to the process; the fsync waits for checkpoints. This is the default
    /// because power loss takes a single-machine cluster's pods down with it anyway, while an
    /// fsync per commit costs ~6x here (`examples/sqlite_latency.rs`: a sequential create
    /// takes ~0.05 ms, ~0.3 ms with FULL) and far more on slow disks.
    #[default]
    ProcessCrash,
    /// Also survives power loss and kernel crashes: `synchronous=FULL`, an fsync of the WAL
    /// per commit (group commit shares one fsync among concurrent writes).
    PowerLoss,
}

/// Tuning for [`SqliteStore::open_with`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// See [`Durability`]; default [`Durability::ProcessCrash`].
    pub durability: Durability,
    /// Committed events buffered for live watchers. A watcher further behind than this
    /// re-reads the log (it does not lose events); default 1024.
    pub watch_buffer: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            durability: Durability::default(),
            watch_buffer: 1024,
        }
    }
}

/// The embedded store: one SQLite file. See the module docs for the layout.
pub struct SqliteStore {
    /// `None` only while dropping, so the writer thread sees its queue close.
    requests: Option<mpsc::Sender<Request>>,
    /// Kept only to `subscribe` watchers; the writer thread holds the clone that sends.
    events: broadcast::Sender<Arc<Event>>,
    readers: Arc<Readers>,
    current: Arc<AtomicI64>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("current", &self.current.load(Ordering::Acquire))
            .finish()
    }
}

fn sql_err(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("sqlite: {e}"))
}

impl SqliteStore {
    /// Opens (creating if missing) the store at `path` with default options.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens (creating if missing) the store at `path`.
    pub fn open_with(path: &Path, options: SqliteOptions) -> Result<Self> {
        let conn = schema::connect(path, options.durability)?;
        schema::migrate(&conn)?;
        let current = read::current_revision(&conn).map_err(sql_err)?;
        let published = Arc::new(AtomicI64::new(current));
        let (events, _) = broadcast::channel(options.watch_buffer.max(1));
        // Bounded so a flood of writers waits instead of queueing without limit.
        let (requests, queue) = mpsc::channel(4096);
        let writer = Writer {
            conn,
            current,
            published: Arc::clone(&published),
            events: events.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("podway-sqlite-writer".into())
            .spawn(move || writer.run(queue))
            .map_err(|e| StoreError::Backend(format!("cannot start the sqlite writer thread: {e}")))?;
        Ok(SqliteStore {
            requests: Some(requests),
            events,
            readers: Arc::new(Readers::new(path.to_path_buf())),
            current: published,
            writer: Some(handle),
        })
    }

    async fn write(&self, op: Op) -> Result<Done> {
        let closed = || StoreError::Backend("the sqlite writer has stopped".into());
        let (reply, done) = oneshot::channel();
        let requests = self.requests.as_ref().ok_or_else(closed)?;
        requests.send(Request { op, reply }).await.map_err(|_| closed())?;
        done.await.map_err(|_| closed())?
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the queue stops the writer after the batch in hand; joining means a reopen
        // of the same file right after the drop never races the old write connection.
        self.requests.take();
        if let Some(handle) = self.writer.take() {
            let _ = handle.join();
        }
    }
}

fn unexpected(done: Done) -> StoreError {
    StoreError::Backend(format!("sqlite writer answered with an unexpected outcome: {done:?}"))
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_owned();
        self.readers.run(move |conn| read::get(conn, &key)).await
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision)> {
        let prefix = prefix.to_owned();
        self.readers.run(move |conn| read::list(conn, &prefix)).await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision> {
        match self
            .write(Op::Create {
                key: key.to_owned(),
                value,
            })
            .await?
        {
            Done::Written(revision) => Ok(revision),
            other => Err(unexpected(other)),
        }
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<Revision> {
        match self
            .write(Op::Update {
                key: key.to_owned(),
                value,
                expected,
            })
            .await?
        {
            Done::Written(revision) => Ok(revision),
            other => Err(unexpected(other)),
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)> {
        match self
            .write(Op::Delete {
                key: key.to_owned(),
                expected,
            })
            .await?
        {
            Done::Deleted(prev, revision) => Ok((prev, revision)),
            other => Err(unexpected(other)),
        }
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        watch::start(Arc::clone(&self.readers), self.events.subscribe(), prefix, after).await
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.current.load(Ordering::Acquire))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        match self.write(Op::Compact { revision }).await? {
            Done::Compacted => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}
