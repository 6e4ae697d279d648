//! The on-disk layout and connection setup.
//!
//! One table, `log`, holds every write as a row keyed by its revision (kine's design). The
//! newest row of a key is its live value, or a tombstone if the key was deleted. Each row
//! points at the row it replaced (`prev_revision`), which is how a watch replays `prev` for
//! both puts and deletes without storing old values twice. `meta` records the compaction
//! revision.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use super::{sql_err, Durability};
use crate::{Result, StoreError};

/// Bumped whenever the layout changes; `open` refuses files from a newer podway.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// `meta.name` of the compaction revision: history at and below it is gone.
pub(crate) const COMPACT_REVISION: &str = "compact_revision";

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS log (
    -- The write's store-wide revision; the rowid, so revision order is storage order.
    revision        INTEGER PRIMARY KEY,
    -- UTF-8 key bytes, stored as a BLOB so range bounds may be any bytes (memcmp order).
    key             BLOB    NOT NULL,
    -- The value; empty for tombstones.
    value           BLOB    NOT NULL,
    create_revision INTEGER NOT NULL,
    -- The row this one replaced, 0 for a create. Compaction keeps the rows this points at
    -- while this row is still replayable.
    prev_revision   INTEGER NOT NULL,
    -- 1 for a delete (tombstone).
    deleted         INTEGER NOT NULL
);
-- Newest row per key (get, list, write checks) and compaction's 'superseded' test.
CREATE INDEX IF NOT EXISTS log_by_key ON log (key, revision);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Opens a connection with the pragmas every podway connection needs.
///
/// `busy_timeout` matters only for readers racing a WAL checkpoint, and for a second process
/// opening the same file by mistake: there is one writer connection per store.
pub(crate) fn connect(path: &Path, durability: Durability) -> Result<Connection> {
    let conn = Connection::open(path).map_err(sql_err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(sql_err)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(sql_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "cannot switch {} to WAL mode (got {mode})",
            path.display()
        )));
    }
    // See `Durability` for why NORMAL is enough for kill -9 in WAL mode.
    let sync = match durability {
        Durability::ProcessCrash => "NORMAL",
        Durability::PowerLoss => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync).map_err(sql_err)?;
    Ok(conn)
}

/// Creates the tables if missing and checks the file's schema version.
pub(crate) fn migrate(conn: &Connection) -> Result<()> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(sql_err)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Backend(format!(
            "database schema version {version} is newer than this podway understands ({SCHEMA_VERSION})"
        )));
    }
    conn.execute_batch(CREATE).map_err(sql_err)?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(sql_err)?;
    Ok(())
}
