//! Queries over the log, and the pool of read connections that runs them.
//!
//! WAL mode lets readers run beside the single writer; each multi-query read opens a
//! transaction so everything it returns comes from one snapshot.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension};

use super::schema::{self, COMPACT_REVISION};
use super::{sql_err, Durability};
use crate::keys::prefix_end;
use crate::{Event, KeyValue, Result, Revision, StoreError};

/// Idle read connections kept open; more may exist briefly under load.
const MAX_IDLE_READERS: usize = 8;

/// Read connections to one database file.
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(crate) fn new(path: PathBuf) -> Self {
        Readers {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` on a pooled connection, on the blocking thread pool (SQLite calls block).
    pub(crate) async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let readers = Arc::clone(self);
        tokio::task::spawn_blocking(move || readers.with(f))
            .await
            .map_err(|e| StoreError::Backend(format!("sqlite read task failed: {e}")))?
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(conn) => conn,
            // Readers never write, so their `synchronous` setting is irrelevant.
            None => schema::connect(&self.path, Durability::ProcessCrash)?,
        };
        let out = f(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        out
    }
}

/// The newest row of a key, tombstone or not.
#[derive(Debug, Clone)]
pub(crate) struct Latest {
    pub(crate) kv: KeyValue,
    pub(crate) deleted: bool,
}

/// The newest row of `key`, if the key was ever written (and not compacted away).
pub(crate) fn latest(conn: &Connection, key: &str) -> rusqlite::Result<Option<Latest>> {
    let mut stmt = conn.prepare_cached(
        "SELECT revision, value, create_revision, deleted FROM log WHERE key = ?1 ORDER BY revision DESC LIMIT 1",
    )?;
    stmt.query_row([key.as_bytes()], |row| {
        Ok(Latest {
            kv: KeyValue {
                key: key.to_owned(),
                value: row.get(1)?,
                create_revision: row.get(2)?,
                mod_revision: row.get(0)?,
            },
            deleted: row.get(3)?,
        })
    })
    .optional()
}

/// The live value of `key`.
pub(crate) fn get(conn: &Connection, key: &str) -> Result<Option<KeyValue>> {
    let latest = latest(conn, key).map_err(sql_err)?;
    Ok(latest.filter(|l| !l.deleted).map(|l| l.kv))
}

/// The compaction revision (0 if never compacted).
pub(crate) fn compact_revision(conn: &Connection) -> rusqlite::Result<Revision> {
    let mut stmt = conn.prepare_cached("SELECT value FROM meta WHERE name = ?1")?;
    Ok(stmt
        .query_row([COMPACT_REVISION], |row| row.get(0))
        .optional()?
        .unwrap_or(0))
}

/// The newest revision. Compaction may remove the newest row (a tombstone), but never above
/// its own revision, so the larger of the two is the revision of the last write.
pub(crate) fn current_revision(conn: &Connection) -> rusqlite::Result<Revision> {
    let mut stmt = conn.prepare_cached("SELECT IFNULL(MAX(revision), 0) FROM log")?;
    let newest: Revision = stmt.query_row([], |row| row.get(0))?;
    Ok(newest.max(compact_revision(conn)?))
}

/// `key >= prefix [AND key < end]` for a column, and its bound parameters.
fn range_clause(column: &str, prefix: &str, first_param: usize) -> (String, Vec<Vec<u8>>) {
    match prefix_end(prefix.as_bytes()) {
        Some(end) => (
            format!("{column} >= ?{first_param} AND {column} < ?{}", first_param + 1),
            vec![prefix.as_bytes().to_vec(), end],
        ),
        None => (format!("{column} >= ?{first_param}"), vec![prefix.as_bytes().to_vec()]),
    }
}

fn utf8_key(bytes: Vec<u8>) -> rusqlite::Result<String> {
    String::from_utf8(bytes)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, e.into()))
}

/// Live keys under `prefix`, sorted by key, with the revision of the snapshot read.
pub(crate) fn list(conn: &Connection, prefix: &str) -> Result<(Vec<KeyValue>, Revision)> {
    let tx = conn.unchecked_transaction().map_err(sql_err)?;
    let (range, bounds) = range_clause("key", prefix, 1);
    // SQLite fills bare columns from the row holding MAX(revision): the newest row per key.
    let sql = format!(
        "SELECT key, value, create_revision, revision FROM (
             SELECT key, value, create_revision, MAX(revision) AS revision, deleted
             FROM log WHERE {range} GROUP BY key
         ) WHERE deleted = 0 ORDER BY key"
    );
    let kvs = {
        let mut stmt = tx.prepare_cached(&sql).map_err(sql_err)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(bounds.iter()), |row| {
            Ok(KeyValue {
                key: utf8_key(row.get(0)?)?,
                value: row.get(1)?,
                create_revision: row.get(2)?,
                mod_revision: row.get(3)?,
            })
        });
        rows.and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(sql_err)?
    };
    let revision = current_revision(&tx).map_err(sql_err)?;
    tx.finish().map_err(sql_err)?;
    Ok((kvs, revision))
}

/// One page of history read by a watch.
#[derive(Debug)]
pub(crate) struct Page {
    /// Changes under the prefix, in revision order.
    pub(crate) events: Vec<Event>,
    /// Every change at or below this revision has been read (or filtered out).
    pub(crate) covered: Revision,
    /// True when the page reached the newest revision of its snapshot.
    pub(crate) complete: bool,
}

/// Changes under `prefix` with revision above `after`, at most `limit` of them.
///
/// Fails with `Compacted` when `after` is below the compaction revision: the rows between
/// may be gone, so the page could silently skip changes.
pub(crate) fn events_after(conn: &Connection, prefix: &str, after: Revision, limit: usize) -> Result<Page> {
    let tx = conn.unchecked_transaction().map_err(sql_err)?;
    let compacted = compact_revision(&tx).map_err(sql_err)?;
    if after < compacted {
        return Err(StoreError::Compacted {
            requested: after,
            compacted,
        });
    }
    let (range, bounds) = range_clause("l.key", prefix, 3);
    let sql = format!(
        "SELECT l.revision, l.key, l.value, l.create_revision, l.deleted,
                p.revision, p.value, p.create_revision
         FROM log AS l LEFT JOIN log AS p ON p.revision = l.prev_revision AND l.prev_revision != 0
         WHERE l.revision > ?1 AND {range}
         ORDER BY l.revision LIMIT ?2"
    );
    let limit_param = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows: Vec<(Revision, Result<Event>)> = {
        let mut stmt = tx.prepare_cached(&sql).map_err(sql_err)?;
        let mut values: Vec<&dyn rusqlite::ToSql> = vec![&after, &limit_param];
        values.extend(bounds.iter().map(|b| b as &dyn rusqlite::ToSql));
        let rows = stmt.query_map(values.as_slice(), |row| {
            let revision: Revision = row.get(0)?;
            let key = utf8_key(row.get(1)?)?;
            let prev = match row.get::<_, Option<Revision>>(5)? {
                Some(mod_revision) => Some(KeyValue {
                    key: key.clone(),
                    value: row.get(6)?,
                    create_revision: row.get(7)?,
                    mod_revision,
                }),
                None => None,
            };
            let event = if row.get::<_, bool>(4)? {
                match prev {
                    Some(prev) => Ok(Event::Delete { prev, revision }),
                    None => Err(StoreError::Backend(format!(
                        "log row {revision} deletes {key} but the row it replaced is missing"
                    ))),
                }
            } else {
                let kv = KeyValue {
                    key,
                    value: row.get(2)?,
                    create_revision: row.get(3)?,
                    mod_revision: revision,
                };
                Ok(Event::Put { kv, prev })
            };
            Ok((revision, event))
        });
        rows.and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(sql_err)?
    };
    let complete = rows.len() < limit;
    let covered = if complete {
        // A watch from the future waits for revisions above `after`, not above `current`.
        current_revision(&tx).map_err(sql_err)?.max(after)
    } else {
        rows.last().map_or(after, |(revision, _)| *revision)
    };
    tx.finish().map_err(sql_err)?;
    let events = rows.into_iter().map(|(_, event)| event).collect::<Result<Vec<_>>>()?;
    Ok(Page {
        events,
        covered,
        complete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log of `(revision, key, deleted, prev_revision)` rows with value = the key.
    fn log(rows: &[(Revision, &str, bool, Revision)]) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        schema::migrate(&conn).unwrap();
        for &(revision, key, deleted, prev) in rows {
            conn.execute(
                "INSERT INTO log (revision, key, value, create_revision, prev_revision, deleted)
                 VALUES (?1, ?2, ?2, ?1, ?3, ?4)",
                rusqlite::params![revision, key.as_bytes(), prev, deleted],
            )
            .unwrap();
        }
        conn
    }

    fn revisions(page: &Page) -> Vec<Revision> {
        page.events.iter().map(Event::revision).collect()
    }

    #[test]
    fn a_full_page_covers_only_up_to_its_last_row() {
        let conn = log(&[
            (1, "/a/x", false, 0),
            (2, "/b/y", false, 0),
            (3, "/a/z", false, 0),
            (4, "/b/w", false, 0),
        ]);
        let first = events_after(&conn, "/a/", 0, 1).unwrap();
        assert_eq!((revisions(&first), first.covered, first.complete), (vec![1], 1, false));
        let second = events_after(&conn, "/a/", first.covered, 1).unwrap();
        assert_eq!(
            (revisions(&second), second.covered, second.complete),
            (vec![3], 3, false)
        );
        let last = events_after(&conn, "/a/", second.covered, 1).unwrap();
        assert_eq!((revisions(&last), last.covered, last.complete), (vec![], 4, true));
    }

    #[test]
    fn a_page_from_the_future_covers_up_to_the_requested_revision() {
        let conn = log(&[(1, "/a", false, 0)]);
        let page = events_after(&conn, "", 10, 5).unwrap();
        assert_eq!((revisions(&page), page.covered, page.complete), (vec![], 10, true));
    }

    #[test]
    fn a_tombstone_replays_as_a_delete_of_the_row_it_replaced() {
        let conn = log(&[(1, "/a", false, 0), (2, "/a", true, 1)]);
        let page = events_after(&conn, "", 1, 5).unwrap();
        let prev = KeyValue {
            key: "/a".into(),
            value: b"/a".to_vec(),
            create_revision: 1,
            mod_revision: 1,
        };
        assert_eq!(page.events, vec![Event::Delete { prev, revision: 2 }]);
    }

    #[test]
    fn list_skips_keys_whose_newest_row_is_a_tombstone() {
        let conn = log(&[(1, "/a", false, 0), (2, "/b", false, 0), (3, "/a", true, 1)]);
        let (kvs, revision) = list(&conn, "/").unwrap();
        assert_eq!(kvs.iter().map(|kv| kv.key.as_str()).collect::<Vec<_>>(), ["/b"]);
        assert_eq!(revision, 3);
    }
}
