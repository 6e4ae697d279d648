//! Watch: catch up from the log, then follow the in-process broadcast of committed writes.
//!
//! The switch between the two loses and repeats nothing because:
//! 1. the watch subscribes to the broadcast BEFORE its first log read, so every write
//!    committed after that read is also queued on the subscription;
//! 2. `covered` is the revision up to which every change has been handled (sent, or
//!    skipped for its key), and live events at or below it are dropped as duplicates;
//! 3. the writer hands out revisions without holes and broadcasts them in order, so a live
//!    event above `covered + 1` proves something was missed (the subscriber lagged past the
//!    buffer). The watch then goes back to reading the log from `covered`, which holds
//!    every change not yet compacted.
//!
//! So a slow watcher never loses events to the broadcast buffer; it only fails, with
//! `Compacted`, if the history it still needs has been compacted meanwhile. The stream ends
//! when the store is dropped (the broadcast closes).

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError};

use super::read::{self, Readers};
use crate::{Event, Result, Revision, WatchStream};

/// Log rows read per catch-up query: bounds memory per watcher and the time a read
/// transaction pins the WAL.
const PAGE: usize = 512;

struct Watch {
    readers: Arc<Readers>,
    prefix: String,
    live: broadcast::Receiver<Arc<Event>>,
    /// Every change at or below this revision was delivered or did not match the prefix.
    covered: Revision,
    /// Read from the log, not yet delivered.
    pending: VecDeque<Event>,
    /// Whether to follow the broadcast (true) or read the log (false).
    following: bool,
    ended: bool,
}

/// Starts a watch of `prefix` after `after`. Reads the first page before returning so that
/// a compacted `after` fails here rather than in the stream.
pub(crate) async fn start(
    readers: Arc<Readers>,
    live: broadcast::Receiver<Arc<Event>>,
    prefix: &str,
    after: Revision,
) -> Result<WatchStream> {
    let mut watch = Watch {
        readers,
        prefix: prefix.to_owned(),
        live,
        covered: after,
        pending: VecDeque::new(),
        following: false,
        ended: false,
    };
    watch.read_page().await?;
    Ok(Box::pin(futures::stream::unfold(watch, |mut watch| async move {
        let item = watch.next().await?;
        Some((item, watch))
    })))
}

impl Watch {
    async fn read_page(&mut self) -> Result<()> {
        let (prefix, after) = (self.prefix.clone(), self.covered);
        let page = self
            .readers
            .run(move |conn| read::events_after(conn, &prefix, after, PAGE))
            .await?;
        self.pending.extend(page.events);
        self.covered = page.covered;
        self.following = page.complete;
        Ok(())
    }

    async fn next(&mut self) -> Option<Result<Event>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.ended {
                return None;
            }
            if !self.following {
                if let Err(e) = self.read_page().await {
                    self.ended = true;
                    return Some(Err(e));
                }
                continue;
            }
            match self.live.recv().await {
                Ok(event) => {
                    let revision = event.revision();
                    if revision <= self.covered {
                        continue;
                    }
                    if revision > self.covered + 1 {
                        // A hole: the broadcast dropped events we needed. The log has them.
                        self.following = false;
                        continue;
                    }
                    self.covered = revision;
                    if event.key().starts_with(&self.prefix) {
                        return Some(Ok(Arc::unwrap_or_clone(event)));
                    }
                }
                // The receiver skips to the oldest buffered event; the hole check above (or
                // re-reading now) recovers what was skipped. Re-read now: it is cheaper than
                // draining a buffer of events we will mostly drop.
                Err(RecvError::Lagged(skipped)) => {
                    tracing::debug!(
                        skipped,
                        covered = self.covered,
                        "sqlite watcher lagged; reading the log"
                    );
                    self.following = false;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}
