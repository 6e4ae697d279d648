//! The battery's cases: plain async fns over `dyn Store`, run once per backend.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use podway_store::{Event, KeyValue, Revision, Store, StoreError, WatchStream};

/// Longest wait for one watch event; a deadline, not a pause: events normally arrive in ms.
const EVENT_DEADLINE: Duration = Duration::from_secs(10);

pub async fn next_event(watch: &mut WatchStream) -> Event {
    match tokio::time::timeout(EVENT_DEADLINE, watch.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no watch event within {EVENT_DEADLINE:?}"),
    }
}

pub fn kv(key: &str, value: &str, create_revision: Revision, mod_revision: Revision) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: value.into(),
        create_revision,
        mod_revision,
    }
}

pub async fn created_keys_are_readable_and_listed_sorted_with_the_current_revision(store: Arc<dyn Store>) {
    let b = store.create("/reg/pods/b", b"bee".to_vec()).await.unwrap();
    let a = store.create("/reg/pods/a", b"ay".to_vec()).await.unwrap();
    let outside = store
        .create("/reg/podsx", b"not under /reg/pods/".to_vec())
        .await
        .unwrap();
    let c = store.create("/reg/pods/c", b"sea".to_vec()).await.unwrap();

    assert_eq!(
        store.get("/reg/pods/a").await.unwrap(),
        Some(kv("/reg/pods/a", "ay", a, a))
    );
    assert_eq!(store.get("/reg/pods/zzz").await.unwrap(), None);

    let (items, revision) = store.list("/reg/pods/").await.unwrap();
    assert_eq!(
        items,
        vec![
            kv("/reg/pods/a", "ay", a, a),
            kv("/reg/pods/b", "bee", b, b),
            kv("/reg/pods/c", "sea", c, c)
        ]
    );
    assert_eq!(
        revision, c,
        "list reports the newest revision, including writes outside the prefix"
    );
    assert_eq!(store.current_revision().await.unwrap(), c);
    assert!(outside < c);

    let (everything, _) = store.list("").await.unwrap();
    let keys: Vec<_> = everything.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/reg/pods/a", "/reg/pods/b", "/reg/pods/c", "/reg/podsx"]);
}

pub async fn create_of_an_existing_key_fails_with_already_exists(store: Arc<dyn Store>) {
    let first = store.create("/k", b"one".to_vec()).await.unwrap();
    match store.create("/k", b"two".to_vec()).await {
        Err(StoreError::AlreadyExists(key)) => assert_eq!(key, "/k"),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(store.get("/k").await.unwrap(), Some(kv("/k", "one", first, first)));
    assert_eq!(
        store.current_revision().await.unwrap(),
        first,
        "a refused create takes no revision"
    );
}

pub async fn update_succeeds_only_at_the_expected_revision(store: Arc<dyn Store>) {
    let created = store.create("/k", b"v1".to_vec()).await.unwrap();
    let updated = store.update("/k", b"v2".to_vec(), created).await.unwrap();
    assert!(updated > created);
    assert_eq!(store.get("/k").await.unwrap(), Some(kv("/k", "v2", created, updated)));

    match store.update("/k", b"stale".to_vec(), created).await {
        Err(StoreError::Conflict { key, expected, actual }) => {
            assert_eq!((key.as_str(), expected, actual), ("/k", created, updated));
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    match store.update("/missing", b"x".to_vec(), created).await {
        Err(StoreError::NotFound(key)) => assert_eq!(key, "/missing"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    // Expected revision 0 must not act as "create if absent".
    assert!(matches!(
        store.update("/missing", b"x".to_vec(), 0).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.get("/missing").await.unwrap(), None);
    assert_eq!(store.get("/k").await.unwrap(), Some(kv("/k", "v2", created, updated)));
}

pub async fn delete_checks_the_expected_revision_when_given(store: Arc<dyn Store>) {
    let a1 = store.create("/a", b"a1".to_vec()).await.unwrap();
    let a2 = store.update("/a", b"a2".to_vec(), a1).await.unwrap();

    match store.delete("/a", Some(a1)).await {
        Err(StoreError::Conflict { key, expected, actual }) => {
            assert_eq!((key.as_str(), expected, actual), ("/a", a1, a2))
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    let (prev, deleted_at) = store.delete("/a", Some(a2)).await.unwrap();
    assert_eq!(prev, kv("/a", "a2", a1, a2));
    assert!(deleted_at > a2);
    assert_eq!(store.get("/a").await.unwrap(), None);
    assert!(matches!(store.delete("/a", None).await, Err(StoreError::NotFound(k)) if k == "/a"));
    assert!(matches!(
        store.delete("/a", Some(a2)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete("/a", Some(0)).await,
        Err(StoreError::NotFound(_))
    ));

    let b = store.create("/b", b"b".to_vec()).await.unwrap();
    let (prev, b_deleted) = store.delete("/b", None).await.unwrap();
    assert_eq!(prev, kv("/b", "b", b, b));
    assert_eq!(store.current_revision().await.unwrap(), b_deleted);

    // A deleted key can be created again, with a new create revision.
    let again = store.create("/a", b"again".to_vec()).await.unwrap();
    assert_eq!(store.get("/a").await.unwrap(), Some(kv("/a", "again", again, again)));
    assert_eq!(store.list("").await.unwrap().0, vec![kv("/a", "again", again, again)]);
}

pub async fn revisions_strictly_increase_across_keys(store: Arc<dyn Store>) {
    let mut seen = vec![store.current_revision().await.unwrap()];
    for i in 0..5 {
        let x = store.create(&format!("/x/{i}"), vec![i]).await.unwrap();
        let y = store.create(&format!("/y/{i}"), vec![i]).await.unwrap();
        let x2 = store.update(&format!("/x/{i}"), vec![i, i], x).await.unwrap();
        let (_, y_gone) = store.delete(&format!("/y/{i}"), None).await.unwrap();
        seen.extend([x, y, x2, y_gone]);
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "revisions must strictly increase: {seen:?}"
    );
    assert_eq!(store.current_revision().await.unwrap(), *seen.last().unwrap());
}

pub async fn watch_replays_later_changes_in_order_then_live_ones(store: Arc<dyn Store>) {
    let a1 = store.create("/w/a", b"a1".to_vec()).await.unwrap();
    let a2 = store.update("/w/a", b"a2".to_vec(), a1).await.unwrap();
    let b1 = store.create("/w/b", b"b1".to_vec()).await.unwrap();
    let (_, a_gone) = store.delete("/w/a", None).await.unwrap();

    let mut watch = store.watch("/w/", a1).await.unwrap();
    assert_eq!(
        next_event(&mut watch).await,
        Event::Put {
            kv: kv("/w/a", "a2", a1, a2),
            prev: Some(kv("/w/a", "a1", a1, a1))
        }
    );
    assert_eq!(
        next_event(&mut watch).await,
        Event::Put {
            kv: kv("/w/b", "b1", b1, b1),
            prev: None
        }
    );
    assert_eq!(
        next_event(&mut watch).await,
        Event::Delete {
            prev: kv("/w/a", "a2", a1, a2),
            revision: a_gone
        }
    );

    let b2 = store.update("/w/b", b"b2".to_vec(), b1).await.unwrap();
    assert_eq!(
        next_event(&mut watch).await,
        Event::Put {
            kv: kv("/w/b", "b2", b1, b2),
            prev: Some(kv("/w/b", "b1", b1, b1))
        }
    );
    let (_, b_gone) = store.delete("/w/b", Some(b2)).await.unwrap();
    assert_eq!(
        next_event(&mut watch).await,
        Event::Delete {
            prev: kv("/w/b", "b2", b1, b2),
            revision: b_gone
        }
    );
    let a3 = store.create("/w/a", b"a3".to_vec()).await.unwrap();
    assert_eq!(
        next_event(&mut watch).await,
        Event::Put {
            kv: kv("/w/a", "a3", a3, a3),
            prev: None
        }
    );

    // A watch from the newest revision sees only what comes after.
    let mut from_now = store.watch("/w/", a3).await.unwrap();
    let a4 = store.update("/w/a", b"a4".to_vec(), a3).await.unwrap();
    assert_eq!(next_event(&mut from_now).await.revision(), a4);
}

pub async fn watch_with_a_prefix_sees_only_that_prefix(store: Arc<dyn Store>) {
    let start = store.current_revision().await.unwrap();
    store.create("/p/a/early", b"1".to_vec()).await.unwrap();
    let mut watch = store.watch("/p/a/", start).await.unwrap();
    store.create("/p/b/x", b"2".to_vec()).await.unwrap();
    store.create("/p/ab", b"3".to_vec()).await.unwrap();
    store.create("/p/a/x", b"4".to_vec()).await.unwrap();
    store.create("/p/", b"5".to_vec()).await.unwrap();
    store.create("/p/a/y", b"6".to_vec()).await.unwrap();

    let mut keys = Vec::new();
    for _ in 0..3 {
        keys.push(next_event(&mut watch).await.key().to_owned());
    }
    assert_eq!(keys, ["/p/a/early", "/p/a/x", "/p/a/y"]);
}

pub async fn watch_from_a_compacted_revision_fails_with_compacted(store: Arc<dyn Store>) {
    let r1 = store.create("/c", b"1".to_vec()).await.unwrap();
    let r2 = store.update("/c", b"2".to_vec(), r1).await.unwrap();
    let r3 = store.update("/c", b"3".to_vec(), r2).await.unwrap();
    let r4 = store.update("/c", b"4".to_vec(), r3).await.unwrap();
    store.compact(r3).await.unwrap();

    for after in [0, r1, r2] {
        match store.watch("/c", after).await {
            Err(StoreError::Compacted { requested, compacted }) => assert_eq!((requested, compacted), (after, r3)),
            Err(e) => panic!("expected Compacted, got {e}"),
            Ok(_) => panic!("a watch from {after} must fail after compacting at {r3}"),
        }
    }
    // From the compaction revision itself the history is whole, prev included.
    let mut watch = store.watch("/c", r3).await.unwrap();
    assert_eq!(
        next_event(&mut watch).await,
        Event::Put {
            kv: kv("/c", "4", r1, r4),
            prev: Some(kv("/c", "3", r1, r3))
        }
    );
    // Compacting again at or below the last compaction is a no-op.
    store.compact(r2).await.unwrap();
    store.compact(r3).await.unwrap();
}

pub async fn list_after_compaction_returns_the_live_keys(store: Arc<dyn Store>) {
    let a = store.create("/l/a", b"a1".to_vec()).await.unwrap();
    let b = store.create("/l/b", b"b1".to_vec()).await.unwrap();
    let c = store.create("/l/c", b"c1".to_vec()).await.unwrap();
    let a2 = store.update("/l/a", b"a2".to_vec(), a).await.unwrap();
    store.delete("/l/b", Some(b)).await.unwrap();
    let c2 = store.update("/l/c", b"c2".to_vec(), c).await.unwrap();
    let (_, last) = store.delete("/l/c", None).await.unwrap();
    let d = store.create("/l/c", b"c3".to_vec()).await.unwrap();
    assert!(c2 < last && last < d);

    store.compact(d).await.unwrap();
    let (items, revision) = store.list("/l/").await.unwrap();
    assert_eq!(items, vec![kv("/l/a", "a2", a, a2), kv("/l/c", "c3", d, d)]);
    assert_eq!(revision, d);
    assert_eq!(store.get("/l/b").await.unwrap(), None);

    // Compaction never moves the revision back, even when it removes the newest row.
    let (_, gone) = store.delete("/l/c", None).await.unwrap();
    store.compact(gone).await.unwrap();
    assert_eq!(store.current_revision().await.unwrap(), gone);
    assert_eq!(store.list("/l/").await.unwrap(), (vec![kv("/l/a", "a2", a, a2)], gone));
    assert!(store.create("/l/e", b"e".to_vec()).await.unwrap() > gone);
}

pub async fn concurrent_creates_of_one_key_have_exactly_one_winner(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..32u8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { (i, store.create("/race", vec![i]).await) })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (i, Ok(revision)) => winners.push((i, revision)),
            (_, Err(StoreError::AlreadyExists(_))) => {}
            (_, Err(e)) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one create wins: {winners:?}");
    let (value, revision) = winners[0];
    let stored = store.get("/race").await.unwrap().unwrap();
    assert_eq!((stored.value, stored.mod_revision), (vec![value], revision));
}

pub async fn concurrent_creates_of_distinct_keys_all_succeed_with_distinct_revisions(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let key = format!("/many/{i:02}");
                let revision = store.create(&key, key.clone().into_bytes()).await.unwrap();
                (key, revision)
            })
        })
        .collect();
    let mut created = Vec::new();
    for task in tasks {
        created.push(task.await.unwrap());
    }
    let revisions: BTreeSet<_> = created.iter().map(|(_, r)| *r).collect();
    assert_eq!(revisions.len(), created.len(), "every create gets its own revision");
    created.sort();
    let (items, revision) = store.list("/many/").await.unwrap();
    let listed: Vec<_> = items.iter().map(|kv| (kv.key.clone(), kv.mod_revision)).collect();
    assert_eq!(listed, created);
    assert_eq!(revision, *revisions.last().unwrap());
}

/// The switch from history to live events, raced by a writer: nothing lost or repeated.
pub async fn watch_started_during_writes_sees_each_change_once_in_order(store: Arc<dyn Store>) {
    let start = store.current_revision().await.unwrap();
    let writer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let mut revisions = Vec::new();
            for i in 0..300 {
                revisions.push(store.create(&format!("/stream/{i:03}"), vec![1]).await.unwrap());
            }
            revisions
        })
    };
    // Start the watch once some writes are in history and others are still to come.
    while store.current_revision().await.unwrap() < start + 50 {
        tokio::task::yield_now().await;
    }
    let mut watch = store.watch("/stream/", start).await.unwrap();
    let written = writer.await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < written.len() {
        seen.push(next_event(&mut watch).await.revision());
    }
    assert_eq!(seen, written, "every change exactly once, in revision order");
    let marker = store.create("/stream/marker", vec![]).await.unwrap();
    assert_eq!(
        next_event(&mut watch).await.revision(),
        marker,
        "no duplicate after the last write"
    );
}

pub async fn compacting_past_the_newest_revision_is_refused(store: Arc<dyn Store>) {
    let r = store.create("/k", vec![]).await.unwrap();
    assert!(matches!(store.compact(r + 1).await, Err(StoreError::Backend(_))));
    let mut watch = store.watch("", r - 1).await.unwrap();
    assert_eq!(
        next_event(&mut watch).await.revision(),
        r,
        "the refused compaction removed nothing"
    );
}
