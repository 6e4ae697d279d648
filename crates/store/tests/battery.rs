//! The one behaviour battery every store backend passes: each case in `cases` runs against
//! SQLite (a temp file) and against a real etcd server started for the test.

#[path = "support/etcd_server.rs"]
mod etcd_server;

use std::any::Any;
use std::sync::Arc;

use podway_store::sqlite::SqliteStore;
use podway_store::Store;

/// A store under test and what must outlive it (temp dir, etcd process). Fields drop in
/// order, so the store closes before its files or server go away.
pub struct Backend {
    pub store: Arc<dyn Store>,
    _guard: Box<dyn Any + Send>,
}

pub async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("store.db")).expect("open sqlite store");
    Backend {
        store: Arc::new(store),
        _guard: Box::new(dir),
    }
}

pub async fn etcd() -> Backend {
    let (server, store) = etcd_server::EtcdServer::start().await;
    Backend {
        store: Arc::new(store),
        _guard: Box::new(server),
    }
}

/// Runs every named case against one backend, each in its own test with a fresh store.
macro_rules! battery {
    ($backend:ident: $($case:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let backend = super::$backend().await;
                    super::cases::$case(backend.store.clone()).await;
                }
            )*
        }
    };
}

macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        battery!(sqlite: $($case),*);
        battery!(etcd: $($case),*);
    };
}

both_backends!(
    created_keys_are_readable_and_listed_sorted_with_the_current_revision,
    create_of_an_existing_key_fails_with_already_exists,
    update_succeeds_only_at_the_expected_revision,
    delete_checks_the_expected_revision_when_given,
    revisions_strictly_increase_across_keys,
    watch_replays_later_changes_in_order_then_live_ones,
    watch_with_a_prefix_sees_only_that_prefix,
    watch_from_a_compacted_revision_fails_with_compacted,
    list_after_compaction_returns_the_live_keys,
    concurrent_creates_of_one_key_have_exactly_one_winner,
    concurrent_creates_of_distinct_keys_all_succeed_with_distinct_revisions,
    watch_started_during_writes_sees_each_change_once_in_order,
    compacting_past_the_newest_revision_is_refused,
);

#[path = "battery/cases.rs"]
mod cases;

#[path = "battery/sqlite_only.rs"]
mod sqlite_only;

#[path = "battery/etcd_only.rs"]
mod etcd_only;
