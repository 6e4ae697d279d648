//! A deduplicating work queue with delayed re-adds, in the spirit of client-go's
//! `workqueue` and kube-runtime's scheduler.
//!
//! Events only mark keys dirty; a key added many times before a worker takes it is handed
//! out once, which is how bursts coalesce. A key can also be scheduled for later
//! (`add_after`), which is how reconcilers "requeue after" instead of sleeping.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Dirty keys waiting for a worker, plus keys scheduled for later.
pub struct Queue<K> {
    state: Mutex<State<K>>,
    notify: Notify,
}

struct State<K> {
    ready: VecDeque<K>,
    queued: HashSet<K>,
    delayed: HashMap<K, Instant>,
    failures: HashMap<K, u32>,
}

impl<K: Clone + Eq + Hash> Default for Queue<K> {
    fn default() -> Self {
        Queue {
            state: Mutex::new(State {
                ready: VecDeque::new(),
                queued: HashSet::new(),
                delayed: HashMap::new(),
                failures: HashMap::new(),
            }),
            notify: Notify::new(),
        }
    }
}

impl<K: Clone + Eq + Hash> Queue<K> {
    /// Marks `key` dirty now. A key already waiting is not added twice.
    pub fn add(&self, key: K) {
        let mut s = self.state.lock().expect("queue lock poisoned");
        s.delayed.remove(&key);
        if s.queued.insert(key.clone()) {
            s.ready.push_back(key);
        }
        drop(s);
        self.notify.notify_one();
    }

    /// Marks `key` dirty after `delay`. An earlier pending schedule wins; a key already
    /// dirty now is left as is.
    pub fn add_after(&self, key: K, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let at = Instant::now() + delay;
        let mut s = self.state.lock().expect("queue lock poisoned");
        if s.queued.contains(&key) {
            return;
        }
        let entry = s.delayed.entry(key).or_insert(at);
        if at < *entry {
            *entry = at;
        }
        drop(s);
        self.notify.notify_one();
    }

    /// Schedules a retry after a failure, backing off exponentially per key
    /// (200ms doubling up to 30s) until [`Queue::forget`] is called.
    pub fn retry(&self, key: K) {
        let n = {
            let mut s = self.state.lock().expect("queue lock poisoned");
            let n = s.failures.entry(key.clone()).or_insert(0);
            *n = (*n + 1).min(16);
            *n
        };
        let delay = Duration::from_millis(200u64.saturating_mul(1 << (n - 1))).min(Duration::from_secs(30));
        self.add_after(key, delay);
    }

    /// Clears the failure count of `key` after a successful reconcile.
    pub fn forget(&self, key: &K) {
        self.state.lock().expect("queue lock poisoned").failures.remove(key);
    }

    /// Waits for the next dirty key. Keys whose delay has passed become dirty first.
    pub async fn next(&self) -> K {
        loop {
            let wake_at = {
                let mut s = self.state.lock().expect("queue lock poisoned");
                let now = Instant::now();
                let due: Vec<K> = s
                    .delayed
                    .iter()
                    .filter(|(_, at)| **at <= now)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in due {
                    s.delayed.remove(&k);
                    if s.queued.insert(k.clone()) {
                        s.ready.push_back(k);
                    }
                }
                if let Some(k) = s.ready.pop_front() {
                    s.queued.remove(&k);
                    return k;
                }
                s.delayed.values().min().copied()
            };
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        _ = self.notify.notified() => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => self.notify.notified().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_added_twice_before_it_is_taken_is_handed_out_once() {
        let q = Queue::default();
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.next().await, "a");
        assert_eq!(q.next().await, "b");
        q.add("c");
        assert_eq!(q.next().await, "c");
    }

    #[tokio::test(start_paused = true)]
    async fn a_delayed_key_comes_out_after_its_delay_and_not_before() {
        let q = Queue::default();
        q.add_after("late", Duration::from_secs(5));
        q.add("now");
        let start = Instant::now();
        assert_eq!(q.next().await, "now");
        assert_eq!(q.next().await, "late");
        assert!(start.elapsed() >= Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn adding_a_delayed_key_now_overrides_the_delay() {
        let q = Queue::default();
        q.add_after("k", Duration::from_secs(60));
        q.add("k");
        let start = Instant::now();
        assert_eq!(q.next().await, "k");
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_back_off_and_forget_resets_them() {
        let q = Queue::default();
        q.retry("k");
        let t0 = Instant::now();
        q.next().await;
        assert_eq!(t0.elapsed(), Duration::from_millis(200));
        q.retry("k");
        let t1 = Instant::now();
        q.next().await;
        assert_eq!(t1.elapsed(), Duration::from_millis(400));
        q.forget(&"k");
        q.retry("k");
        let t2 = Instant::now();
        q.next().await;
        assert_eq!(t2.elapsed(), Duration::from_millis(200));
    }
}
