//! Cluster IPs out of one IPv4 CIDR (`ipallocator.Range` in Kubernetes).

use std::fmt;
use std::net::Ipv4Addr;

use super::bitmap::{band_offset, Bitmap};

/// Why an IP could not be allocated; `Display` prints Kubernetes' words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpError {
    /// The IP is outside the range, or is its network or broadcast address. Fix the
    /// manifest; retrying does not help.
    #[error("the provided IP ({ip}) is not in the valid range. The range of valid IPs is {range}")]
    NotInRange {
        /// The IP asked for.
        ip: Ipv4Addr,
        /// The range, as `10.96.0.0/12`.
        range: String,
    },
    /// Another Service holds the IP. Pick another or delete that Service.
    #[error("provided IP is already allocated")]
    Allocated,
    /// Every IP is taken; only deleting Services helps.
    #[error("range is full")]
    Full,
}

/// The configured range is not an IPv4 CIDR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid service IP range {0:?}: expected an IPv4 CIDR such as 10.96.0.0/12")]
pub struct CidrError(pub String);

/// Hands out IPv4 addresses from a CIDR, never its network or broadcast address.
///
/// Explicit requests ([`allocate`](IpAllocator::allocate)) may take any free address;
/// [`allocate_next`](IpAllocator::allocate_next) picks a random free one, preferring the
/// upper part of the range so that the first `min(max(16, size/16), 256)` addresses stay
/// free for explicit requests, as Kubernetes does.
#[derive(Debug, Clone)]
pub struct IpAllocator {
    network: u32,
    prefix: u8,
    /// First usable address (network + 1); offset 0 of the bitmap.
    base: u32,
    bits: Bitmap,
}

impl IpAllocator {
    /// The range `cidr` (`10.96.0.0/12`; host bits are ignored).
    pub fn new(cidr: &str) -> Result<Self, CidrError> {
        let err = || CidrError(cidr.to_string());
        let (ip, bits) = cidr.split_once('/').ok_or_else(err)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| err())?;
        let prefix: u8 = bits.parse().ok().filter(|p| *p <= 32).ok_or_else(err)?;
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
        let network = u32::from(ip) & mask;
        let size: u64 = 1u64 << (32 - prefix);
        // Neither the network address nor the broadcast address is ever handed out.
        let max = size.saturating_sub(2) as usize;
        Ok(IpAllocator {
            network,
            prefix,
            base: network.wrapping_add(1),
            bits: Bitmap::new(max, band_offset(size, 16, 256, 16)),
        })
    }

    /// The same range with repeatable random choices, for tests.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.bits.reseed(seed);
        self
    }

    /// The range as `10.96.0.0/12`.
    pub fn cidr(&self) -> String {
        format!("{}/{}", Ipv4Addr::from(self.network), self.prefix)
    }

    fn offset(&self, ip: Ipv4Addr) -> Option<usize> {
        let ip = u32::from(ip);
        let off = ip.checked_sub(self.base)? as usize;
        (off < self.total()).then_some(off)
    }

    /// Reserves `ip`.
    pub fn allocate(&mut self, ip: Ipv4Addr) -> Result<(), IpError> {
        let Some(off) = self.offset(ip) else {
            return Err(IpError::NotInRange { ip, range: self.cidr() });
        };
        if self.bits.allocate(off) {
            Ok(())
        } else {
            Err(IpError::Allocated)
        }
    }

    /// Reserves a random free IP.
    pub fn allocate_next(&mut self) -> Result<Ipv4Addr, IpError> {
        let off = self.bits.allocate_next().ok_or(IpError::Full)?;
        Ok(Ipv4Addr::from(self.base + off as u32))
    }

    /// Frees `ip`; freeing a free or foreign IP does nothing.
    pub fn release(&mut self, ip: Ipv4Addr) {
        if let Some(off) = self.offset(ip) {
            self.bits.release(off);
        }
    }

    /// Whether `ip` is reserved.
    pub fn is_allocated(&self, ip: Ipv4Addr) -> bool {
        self.offset(ip).is_some_and(|off| self.bits.has(off))
    }

    /// How many IPs are still free.
    pub fn free(&self) -> usize {
        self.bits.free()
    }

    /// How many IPs are reserved.
    pub fn used(&self) -> usize {
        self.total() - self.bits.free()
    }

    fn total(&self) -> usize {
        let size: u64 = 1u64 << (32 - self.prefix);
        size.saturating_sub(2) as usize
    }

    /// Frees everything.
    pub fn clear(&mut self) {
        self.bits.clear();
    }
}

impl fmt::Display for IpAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.cidr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn network_and_broadcast_addresses_are_never_handed_out() {
        let mut a = IpAllocator::new("10.0.0.0/29").unwrap();
        let got: BTreeSet<Ipv4Addr> = (0..6).map(|_| a.allocate_next().unwrap()).collect();
        assert_eq!(got.len(), 6);
        assert!(!got.contains(&ip("10.0.0.0")) && !got.contains(&ip("10.0.0.7")));
        assert_eq!(a.allocate_next(), Err(IpError::Full));
        assert_eq!(
            a.allocate(ip("10.0.0.0")).unwrap_err().to_string(),
            "the provided IP (10.0.0.0) is not in the valid range. The range of valid IPs is 10.0.0.0/29"
        );
    }

    #[test]
    fn out_of_range_ip_names_the_range() {
        let mut a = IpAllocator::new("10.96.0.0/12").unwrap();
        assert_eq!(
            a.allocate(ip("10.0.10.10")).unwrap_err().to_string(),
            "the provided IP (10.0.10.10) is not in the valid range. The range of valid IPs is 10.96.0.0/12"
        );
        assert_eq!(
            a.allocate(ip("10.111.255.255")).unwrap_err(),
            IpError::NotInRange {
                ip: ip("10.111.255.255"),
                range: "10.96.0.0/12".into()
            }
        );
    }

    #[test]
    fn an_ip_is_allocated_once_until_released() {
        let mut a = IpAllocator::new("10.96.0.0/12").unwrap();
        a.allocate(ip("10.96.0.10")).unwrap();
        assert!(a.is_allocated(ip("10.96.0.10")));
        assert_eq!(
            a.allocate(ip("10.96.0.10")).unwrap_err().to_string(),
            "provided IP is already allocated"
        );
        a.release(ip("10.96.0.10"));
        assert!(!a.is_allocated(ip("10.96.0.10")));
        a.allocate(ip("10.96.0.10")).unwrap();
    }

    #[test]
    fn dynamic_ips_avoid_the_static_band() {
        let mut a = IpAllocator::new("10.96.0.0/12").unwrap().with_seed(1);
        for _ in 0..200 {
            let got = u32::from(a.allocate_next().unwrap());
            // Offsets 0..256 (10.96.0.1-10.96.1.0) are the static band.
            assert!(got > u32::from(ip("10.96.1.0")), "{}", Ipv4Addr::from(got));
        }
    }

    #[test]
    fn host_bits_in_the_configured_cidr_are_ignored() {
        assert_eq!(IpAllocator::new("10.96.3.4/12").unwrap().cidr(), "10.96.0.0/12");
        assert!(IpAllocator::new("fd00::/108").is_err());
        assert!(IpAllocator::new("10.96.0.0").is_err());
    }
}
