//! Informal latency check of the SQLite store: sequential creates (one per commit) and
//! concurrent creates (group commit). `cargo run --release -p podway-store --example
//! sqlite_latency [durable]`; `durable` selects `Durability::PowerLoss`.

use std::sync::Arc;
use std::time::Instant;

use podway_store::sqlite::{Durability, SqliteOptions, SqliteStore};
use podway_store::Store;

#[tokio::main]
async fn main() {
    let durability = match std::env::args().nth(1).as_deref() {
        Some("durable") => Durability::PowerLoss,
        _ => Durability::ProcessCrash,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let options = SqliteOptions {
        durability,
        ..SqliteOptions::default()
    };
    let store = Arc::new(SqliteStore::open_with(&dir.path().join("bench.db"), options).expect("open"));
    let value = vec![b'x'; 1024];

    let n = 2000;
    let started = Instant::now();
    for i in 0..n {
        store.create(&format!("/seq/{i}"), value.clone()).await.expect("create");
    }
    let per = started.elapsed() / n;
    println!("{durability:?}: sequential create {per:?} each ({n} creates, 1 KiB values)");

    let (tasks, per_task) = (64, 100);
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (store, value) = (store.clone(), value.clone());
            tokio::spawn(async move {
                for i in 0..per_task {
                    store
                        .create(&format!("/par/{t}/{i}"), value.clone())
                        .await
                        .expect("create");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("task");
    }
    let elapsed = started.elapsed();
    let total = tasks * per_task;
    println!(
        "{durability:?}: {total} concurrent creates from {tasks} tasks in {elapsed:?} ({:.0}/s)",
        total as f64 / elapsed.as_secs_f64()
    );

    let started = Instant::now();
    let (items, _) = store.list("/par/").await.expect("list");
    println!("list of {} keys: {:?}", items.len(), started.elapsed());
}
