//! NodePorts out of one port range (`portallocator.PortAllocator` in Kubernetes).

use std::fmt;

use super::bitmap::{band_offset, Bitmap};

/// Why a port could not be allocated; `Display` prints Kubernetes' words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The port is outside the range. Fix the manifest; retrying does not help.
    #[error("provided port is not in the valid range. The range of valid ports is {range}")]
    NotInRange {
        /// The range, as `30000-32767`.
        range: String,
    },
    /// Another Service (or another port of this one) holds the port.
    #[error("provided port is already allocated")]
    Allocated,
    /// Every port is taken; only deleting NodePort Services helps.
    #[error("range is full")]
    Full,
}

/// The configured range is not `BASE-LAST` (or a single port) within 1-65535.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid node port range {0:?}: expected BASE-LAST such as 30000-32767")]
pub struct PortRangeError(pub String);

/// Hands out ports of a range. Explicit requests may take any free port;
/// [`allocate_next`](PortAllocator::allocate_next) picks a random free one, keeping the
/// lowest `min(max(16, size/32), 128)` ports (30000-30085 by default) for explicit
/// requests as long as it can.
#[derive(Debug, Clone)]
pub struct PortAllocator {
    base: u16,
    size: u32,
    bits: Bitmap,
}

impl PortAllocator {
    /// The range `spec`: `30000-32767`, or a single port.
    pub fn new(spec: &str) -> Result<Self, PortRangeError> {
        let err = || PortRangeError(spec.to_string());
        let (lo, hi) = spec.split_once('-').unwrap_or((spec, spec));
        let lo: u16 = lo.trim().parse().map_err(|_| err())?;
        let hi: u16 = hi.trim().parse().map_err(|_| err())?;
        if lo == 0 || hi < lo {
            return Err(err());
        }
        let size = u32::from(hi - lo) + 1;
        Ok(PortAllocator {
            base: lo,
            size,
            bits: Bitmap::new(size as usize, band_offset(size.into(), 16, 128, 32)),
        })
    }

    /// The same range with repeatable random choices, for tests.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.bits.reseed(seed);
        self
    }

    /// The range as `30000-32767`.
    pub fn range(&self) -> String {
        format!("{}-{}", self.base, u32::from(self.base) + self.size - 1)
    }

    /// Whether `port` lies in the range.
    pub fn contains(&self, port: i32) -> bool {
        port >= i32::from(self.base) && (port - i32::from(self.base)) < self.size as i32
    }

    /// Reserves `port`.
    pub fn allocate(&mut self, port: i32) -> Result<(), PortError> {
        if !self.contains(port) {
            return Err(PortError::NotInRange { range: self.range() });
        }
        if self.bits.allocate((port - i32::from(self.base)) as usize) {
            Ok(())
        } else {
            Err(PortError::Allocated)
        }
    }

    /// Reserves a random free port.
    pub fn allocate_next(&mut self) -> Result<i32, PortError> {
        let off = self.bits.allocate_next().ok_or(PortError::Full)?;
        Ok(i32::from(self.base) + off as i32)
    }

    /// Frees `port`; freeing a free or foreign port does nothing.
    pub fn release(&mut self, port: i32) {
        if self.contains(port) {
            self.bits.release((port - i32::from(self.base)) as usize);
        }
    }

    /// Whether `port` is reserved.
    pub fn is_allocated(&self, port: i32) -> bool {
        self.contains(port) && self.bits.has((port - i32::from(self.base)) as usize)
    }

    /// How many ports are still free.
    pub fn free(&self) -> usize {
        self.bits.free()
    }

    /// Frees everything.
    pub fn clear(&mut self) {
        self.bits.clear();
    }
}

impl fmt::Display for PortAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.range())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_outside_range_is_rejected_with_range_in_message() {
        let mut p = PortAllocator::new("30000-32767").unwrap();
        assert_eq!(
            p.allocate(80).unwrap_err().to_string(),
            "provided port is not in the valid range. The range of valid ports is 30000-32767"
        );
        assert!(p.allocate(32768).is_err());
        p.allocate(32767).unwrap();
    }

    #[test]
    fn used_port_is_already_allocated() {
        let mut p = PortAllocator::new("30000-32767").unwrap();
        p.allocate(30080).unwrap();
        assert_eq!(
            p.allocate(30080).unwrap_err().to_string(),
            "provided port is already allocated"
        );
        p.release(30080);
        assert!(!p.is_allocated(30080));
    }

    #[test]
    fn dynamic_ports_skip_the_static_band_and_run_out() {
        let mut p = PortAllocator::new("30000-30099").unwrap().with_seed(3);
        // 100 ports: the band is max(16, 100/32) = 16 ports, 30000-30015.
        for _ in 0..84 {
            assert!(p.allocate_next().unwrap() >= 30016);
        }
        for _ in 0..16 {
            assert!(p.allocate_next().unwrap() < 30016);
        }
        assert_eq!(p.allocate_next().unwrap_err().to_string(), "range is full");
    }

    #[test]
    fn bad_ranges_are_refused() {
        assert!(PortAllocator::new("32767-30000").is_err());
        assert!(PortAllocator::new("abc").is_err());
        assert_eq!(PortAllocator::new("30000").unwrap().range(), "30000-30000");
    }
}
