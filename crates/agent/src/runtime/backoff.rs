//! Restart back-off, as kubelet's `flowcontrol.Backoff` does it: the first restart is
//! immediate, then 10 s doubling to 5 minutes; an entry untouched for twice the maximum starts
//! over.

use std::time::{Duration, Instant};

/// First delay.
pub const INITIAL: Duration = Duration::from_secs(10);
/// Longest delay.
pub const MAX: Duration = Duration::from_secs(300);

/// The back-off of one container (or one image pull).
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    entry: Option<(Duration, Instant)>,
}

impl Backoff {
    /// When a restart after an exit at `finished` may happen, if it must wait (`None`: now).
    pub fn wait_until(&self, finished: Instant, now: Instant) -> Option<Instant> {
        let (delay, last) = self.entry?;
        if now.saturating_duration_since(last) > MAX * 2 {
            return None;
        }
        let until = finished + delay;
        (now < until).then_some(until)
    }

    /// Record a restart (or pull attempt) now, growing the next delay.
    pub fn step(&mut self, now: Instant) {
        let delay = match self.entry {
            Some((d, last)) if now.saturating_duration_since(last) <= MAX * 2 => (d * 2).min(MAX),
            _ => INITIAL,
        };
        self.entry = Some((delay, now));
    }

    /// The current delay, for messages like `back-off 20s restarting failed container`.
    pub fn delay(&self) -> Duration {
        self.entry.map(|(d, _)| d).unwrap_or(Duration::ZERO)
    }
}

/// Go's duration format for whole seconds and minutes: `10s`, `1m20s`, `5m0s`.
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_restart_is_immediate_then_ten_seconds_doubling_to_five_minutes() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert_eq!(b.wait_until(t0, t0), None);
        b.step(t0);
        assert_eq!(b.wait_until(t0, t0), Some(t0 + INITIAL));
        let mut delays = vec![];
        for _ in 0..7 {
            b.step(t0);
            delays.push(go_duration(b.delay()));
        }
        assert_eq!(delays, ["20s", "40s", "1m20s", "2m40s", "5m0s", "5m0s", "5m0s"]);
    }

    #[test]
    fn a_container_that_ran_longer_than_its_delay_restarts_at_once() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        b.step(t0);
        let finished = t0 + Duration::from_secs(60);
        assert_eq!(b.wait_until(finished - Duration::from_secs(60), finished), None);
    }

    #[test]
    fn back_off_starts_over_after_ten_quiet_minutes() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        b.step(t0);
        b.step(t0);
        let later = t0 + Duration::from_secs(601);
        b.step(later);
        assert_eq!(b.delay(), INITIAL);
    }
}
