//! Behaviour only the etcd backend has: a key prefix that lets stores share one etcd.

use podway_store::etcd::EtcdStore;
use podway_store::{Event, Store};

use super::cases::{kv, next_event};
use super::etcd_server::EtcdServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_with_different_key_prefixes_share_an_etcd_without_seeing_each_other() {
    let (server, plain) = EtcdServer::start().await;
    let a = EtcdStore::connect(&server.endpoint)
        .await
        .unwrap()
        .with_key_prefix("/cluster-a");
    let b = EtcdStore::connect(&server.endpoint)
        .await
        .unwrap()
        .with_key_prefix("/cluster-b");
    let start = a.current_revision().await.unwrap();
    let mut watch_a = a.watch("/", start).await.unwrap();

    let in_b = b.create("/pods/web", b"b".to_vec()).await.unwrap();
    let in_a = a.create("/pods/web", b"a".to_vec()).await.unwrap();

    assert_eq!(
        a.get("/pods/web").await.unwrap(),
        Some(kv("/pods/web", "a", in_a, in_a))
    );
    assert_eq!(
        b.get("/pods/web").await.unwrap(),
        Some(kv("/pods/web", "b", in_b, in_b))
    );
    assert_eq!(
        a.list("/").await.unwrap(),
        (vec![kv("/pods/web", "a", in_a, in_a)], in_a)
    );
    assert_eq!(
        next_event(&mut watch_a).await,
        Event::Put {
            kv: kv("/pods/web", "a", in_a, in_a),
            prev: None
        }
    );
    // Without a prefix the raw keys show where each store put its data.
    let raw: Vec<_> = plain.list("").await.unwrap().0.into_iter().map(|kv| kv.key).collect();
    assert_eq!(raw, ["/cluster-a/pods/web", "/cluster-b/pods/web"]);

    let (prev, _) = b.delete("/pods/web", Some(in_b)).await.unwrap();
    assert_eq!(prev.key, "/pods/web");
    assert!(a.get("/pods/web").await.unwrap().is_some());
}
