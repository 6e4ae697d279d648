//! Summaries of latency samples: nearest-rank percentiles, the way most load tools report them.

use std::time::Duration;

/// The summary of a set of duration samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// How many samples there were.
    pub count: usize,
    /// The median (nearest-rank 50th percentile).
    pub p50: Duration,
    /// The nearest-rank 99th percentile.
    pub p99: Duration,
    /// The largest sample.
    pub max: Duration,
}

impl Summary {
    /// Summarise `samples`; `None` when there are none (a failed phase reports nothing rather
    /// than zeros that would read as "instant").
    pub fn of(samples: &[Duration]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        Some(Summary {
            count: sorted.len(),
            p50: percentile(&sorted, 50.0),
            p99: percentile(&sorted, 99.0),
            max: *sorted.last().expect("non-empty"),
        })
    }
}

/// The nearest-rank `p`th percentile of `sorted` (ascending, non-empty): the smallest sample
/// with at least `p`% of the samples at or below it. Nearest-rank never interpolates, so every
/// reported value is one that was really measured.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// Samples per second for `count` operations that took `elapsed` in all.
pub fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|m| Duration::from_millis(*m)).collect()
    }

    #[test]
    fn median_of_an_odd_count_is_the_middle_sample() {
        let s = Summary::of(&ms(&[5, 1, 3])).unwrap();
        assert_eq!(s.p50, Duration::from_millis(3));
        assert_eq!(s.max, Duration::from_millis(5));
        assert_eq!(s.count, 3);
    }

    #[test]
    fn p99_of_a_hundred_samples_is_the_ninety_ninth_smallest() {
        let samples: Vec<u64> = (1..=100).rev().collect();
        let s = Summary::of(&ms(&samples)).unwrap();
        assert_eq!(s.p99, Duration::from_millis(99));
        assert_eq!(s.p50, Duration::from_millis(50));
    }

    #[test]
    fn p99_of_few_samples_is_the_largest() {
        let s = Summary::of(&ms(&[1, 2, 10])).unwrap();
        assert_eq!(s.p99, Duration::from_millis(10));
    }

    #[test]
    fn no_samples_give_no_summary() {
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn rate_counts_per_second() {
        assert_eq!(rate(500, Duration::from_millis(250)), 2000.0);
    }
}
