//! A write the SQLite store acknowledged survives `kill -9` of the process.
//!
//! The parent test re-runs this test binary as a child that runs only the ignored
//! `kill9_child_writes_until_killed`: it creates keys from several tasks (so group commit is
//! in play) and prints `ACK <key> <revision>` after each create returned Ok. The parent reads
//! acknowledgements, SIGKILLs the child mid-stream, reopens the file and finds every
//! acknowledged key.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use podway_store::sqlite::SqliteStore;
use podway_store::Store;

/// Tells the child where the database is; unset, the child test does nothing.
const DB_ENV: &str = "PODWAY_STORE_KILL9_DB";
const CHILD_TEST: &str = "kill9_child_writes_until_killed";
/// Acknowledgements to collect before the kill.
const ACKS_BEFORE_KILL: usize = 1500;

#[test]
#[ignore = "child process of acknowledged_writes_survive_kill_9; does nothing without its env var"]
fn kill9_child_writes_until_killed() {
    let Some(path) = std::env::var_os(DB_ENV) else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = std::sync::Arc::new(SqliteStore::open(Path::new(&path)).unwrap());
        let writers: Vec<_> = (0..4)
            .map(|writer| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0u64.. {
                        let key = format!("/acked/{writer}/{i:08}");
                        let revision = store.create(&key, key.clone().into_bytes()).await.unwrap();
                        // stdout is line-buffered: the line leaves the process as printed.
                        println!("ACK {key} {revision}");
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
    });
}

/// Kills the child if the test fails before it does.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn parse_ack(line: &str) -> Option<(String, i64)> {
    let mut parts = line.strip_prefix("ACK ")?.split(' ');
    Some((parts.next()?.to_owned(), parts.next()?.parse().ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args([CHILD_TEST, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(DB_ENV, &path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );

    // Lines arrive on a thread so the wait for them has a deadline.
    let stdout = child.0.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut acked = Vec::new();
    while acked.len() < ACKS_BEFORE_KILL {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("child stopped acknowledging ({e})"));
        acked.extend(parse_ack(&line));
    }
    // SIGKILL: no destructor, no flush, no WAL checkpoint in the child.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    // Acknowledgements printed before the kill but not yet read count too.
    reader.join().unwrap();
    acked.extend(lines.try_iter().filter_map(|line| parse_ack(&line)));

    let store = SqliteStore::open(&path).unwrap();
    for (key, revision) in &acked {
        let stored = store
            .get(key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged {key} was lost"));
        assert_eq!(stored.mod_revision, *revision, "{key}");
        assert_eq!(stored.value, key.as_bytes());
    }
    let newest = acked.iter().map(|(_, r)| *r).max().unwrap();
    assert!(store.current_revision().await.unwrap() >= newest);
    assert!(store.create("/after-restart", vec![]).await.unwrap() > newest);
}
