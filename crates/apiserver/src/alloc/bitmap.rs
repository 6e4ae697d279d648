//! The allocation bitmap both allocators share, with Kubernetes' two bands
//! (`randomScanStrategyWithOffset`, KEP-3070 and KEP-3668).
//!
//! Offsets below `offset` form the lower, "static" band; dynamic allocation picks a random
//! free offset from the upper band first and touches the lower band only when the upper one
//! is full. Users who pick fixed values (the `kubernetes` Service's 10.96.0.1, kube-dns's
//! 10.96.0.10, a chosen nodePort) are then unlikely to collide with generated ones.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A fixed-size set of offsets `0..max`, allocated one by one.
#[derive(Debug, Clone)]
pub(crate) struct Bitmap {
    words: Vec<u64>,
    max: usize,
    count: usize,
    offset: usize,
    rng: StdRng,
}

impl Bitmap {
    /// `max` offsets, the first `offset` of them (the static band) chosen last by
    /// [`allocate_next`](Bitmap::allocate_next).
    pub(crate) fn new(max: usize, offset: usize) -> Self {
        Bitmap {
            words: vec![0; max.div_ceil(64)],
            max,
            count: 0,
            offset: offset.min(max),
            rng: StdRng::from_os_rng(),
        }
    }

    /// Makes dynamic choices repeatable (tests).
    pub(crate) fn reseed(&mut self, seed: u64) {
        self.rng = StdRng::seed_from_u64(seed);
    }

    pub(crate) fn has(&self, i: usize) -> bool {
        i < self.max && self.words[i / 64] & (1 << (i % 64)) != 0
    }

    /// Takes `i`; false if it was taken already. `i` must be below `max`.
    pub(crate) fn allocate(&mut self, i: usize) -> bool {
        if self.has(i) {
            return false;
        }
        self.words[i / 64] |= 1 << (i % 64);
        self.count += 1;
        true
    }

    /// Gives `i` back; a free or out-of-range `i` is ignored.
    pub(crate) fn release(&mut self, i: usize) {
        if self.has(i) {
            self.words[i / 64] &= !(1 << (i % 64));
            self.count -= 1;
        }
    }

    /// A random free offset, from the upper band if it has one; `None` when full.
    pub(crate) fn allocate_next(&mut self) -> Option<usize> {
        if self.count >= self.max {
            return None;
        }
        let upper = self.max - self.offset;
        let found = self.scan(self.offset, upper).or_else(|| self.scan(0, self.offset))?;
        self.allocate(found);
        Some(found)
    }

    /// The first free offset in `from..from + len`, starting at a random point and wrapping.
    fn scan(&mut self, from: usize, len: usize) -> Option<usize> {
        if len == 0 {
            return None;
        }
        let start = self.rng.random_range(0..len);
        (0..len).map(|i| from + (start + i) % len).find(|&at| !self.has(at))
    }

    pub(crate) fn free(&self) -> usize {
        self.max - self.count
    }

    pub(crate) fn clear(&mut self) {
        self.words.iter_mut().for_each(|w| *w = 0);
        self.count = 0;
    }
}

/// Kubernetes' band size: `min(max(lo, size / step), hi)`, or no band at all for ranges of
/// `lo` or fewer.
pub(crate) fn band_offset(size: u64, lo: u64, hi: u64, step: u64) -> usize {
    if size <= lo {
        return 0;
    }
    (size / step).clamp(lo, hi) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_allocation_fills_the_upper_band_before_the_lower_one() {
        let mut b = Bitmap::new(100, 20);
        b.reseed(7);
        let first: Vec<usize> = (0..80).map(|_| b.allocate_next().unwrap()).collect();
        assert!(first.iter().all(|&i| i >= 20), "upper band first: {first:?}");
        let rest: Vec<usize> = (0..20).map(|_| b.allocate_next().unwrap()).collect();
        assert!(rest.iter().all(|&i| i < 20));
        assert_eq!(b.allocate_next(), None);
        assert_eq!(b.free(), 0);
    }

    #[test]
    fn release_makes_an_offset_available_again() {
        let mut b = Bitmap::new(2, 0);
        assert!(b.allocate(0));
        assert!(!b.allocate(0));
        b.release(0);
        assert!(!b.has(0));
        assert_eq!(b.free(), 2);
    }

    #[test]
    fn band_offset_follows_kubernetes_formula() {
        assert_eq!(band_offset(1 << 20, 16, 256, 16), 256);
        assert_eq!(band_offset(256, 16, 256, 16), 16);
        assert_eq!(band_offset(16, 16, 256, 16), 0);
        assert_eq!(band_offset(2768, 16, 128, 32), 86);
    }
}
