//! Behaviour only the embedded backend has: its file outlives the process, and its watchers
//! are fed from an in-process buffer.

use futures::StreamExt;
use podway_store::sqlite::{SqliteOptions, SqliteStore};
use podway_store::{Event, Store};

use super::cases::{kv, next_event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_and_reopen_keeps_data_revisions_and_watch_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path).unwrap();
    let a1 = store.create("/r/a", b"a1".to_vec()).await.unwrap();
    let a2 = store.update("/r/a", b"a2".to_vec(), a1).await.unwrap();
    let b1 = store.create("/r/b", b"b1".to_vec()).await.unwrap();
    let (_, b_gone) = store.delete("/r/b", None).await.unwrap();
    let before = store.list("/r/").await.unwrap();
    drop(store);

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.list("/r/").await.unwrap(), before);
    assert_eq!(before, (vec![kv("/r/a", "a2", a1, a2)], b_gone));
    assert_eq!(store.current_revision().await.unwrap(), b_gone);

    // A watch from before the restart replays the old history, then sees new writes.
    let mut watch = store.watch("/r/", a1).await.unwrap();
    let a3 = store.update("/r/a", b"a3".to_vec(), a2).await.unwrap();
    assert!(a3 > b_gone, "revisions continue after a restart");
    let expected = [
        Event::Put {
            kv: kv("/r/a", "a2", a1, a2),
            prev: Some(kv("/r/a", "a1", a1, a1)),
        },
        Event::Put {
            kv: kv("/r/b", "b1", b1, b1),
            prev: None,
        },
        Event::Delete {
            prev: kv("/r/b", "b1", b1, b1),
            revision: b_gone,
        },
        Event::Put {
            kv: kv("/r/a", "a3", a1, a3),
            prev: Some(kv("/r/a", "a2", a1, a2)),
        },
    ];
    for event in expected {
        assert_eq!(next_event(&mut watch).await, event);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revision_survives_a_restart_after_compacting_away_the_newest_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path).unwrap();
    store.create("/k", b"v".to_vec()).await.unwrap();
    let (_, gone) = store.delete("/k", None).await.unwrap();
    store.compact(gone).await.unwrap();
    drop(store);

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), gone);
    assert_eq!(store.create("/k", b"again".to_vec()).await.unwrap(), gone + 1);
    assert!(matches!(
        store.watch("", gone - 1).await,
        Err(podway_store::StoreError::Compacted { requested, compacted }) if requested == gone - 1 && compacted == gone
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_behind_the_broadcast_buffer_still_gets_every_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        watch_buffer: 4,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(&dir.path().join("store.db"), options).unwrap();
    let start = store.current_revision().await.unwrap();
    let mut watch = store.watch("/lag/", start).await.unwrap();
    // Not polled while 100 changes pass through a 4-slot buffer.
    let mut written = Vec::new();
    for i in 0..100 {
        let key = format!("/lag/{}", i % 7);
        let revision = match store.get(&key).await.unwrap() {
            Some(current) => store.update(&key, vec![i], current.mod_revision).await.unwrap(),
            None => store.create(&key, vec![i]).await.unwrap(),
        };
        written.push(revision);
    }
    let mut seen = Vec::new();
    while seen.len() < written.len() {
        seen.push(next_event(&mut watch).await.revision());
    }
    assert_eq!(seen, written);
    let marker = store.create("/lag/marker", vec![]).await.unwrap();
    assert_eq!(next_event(&mut watch).await.revision(), marker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_stream_ends_when_the_store_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let mut watch = store.watch("", 0).await.unwrap();
    drop(store);
    let end = tokio::time::timeout(std::time::Duration::from_secs(10), watch.next()).await;
    assert!(matches!(end, Ok(None)), "expected the stream to end, got {end:?}");
}
