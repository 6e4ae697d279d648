//! IPv4 CIDR ranges: the node, pod and service networks are each one.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network in CIDR notation (`10.244.0.0/16`). The address is always the network
/// address: parsing rejects host bits, so two equal ranges always compare equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Cidr {
    network: Ipv4Addr,
    prefix: u8,
}

/// Why a string is not an IPv4 CIDR; the message names the value and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CIDR {value:?}: {reason}")]
pub struct CidrParseError {
    value: String,
    reason: String,
}

impl Ipv4Cidr {
    /// The range `network/prefix`. `None` when the prefix is over 32 or `network` has bits set
    /// beyond the prefix.
    pub fn new(network: Ipv4Addr, prefix: u8) -> Option<Self> {
        if prefix > 32 || u32::from(network) & !mask(prefix) != 0 {
            return None;
        }
        Some(Self { network, prefix })
    }

    /// The network address (host bits all zero).
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// How many addresses the range spans, network and broadcast included.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// The `n`th address of the range (0 is the network address), or `None` past its end.
    pub fn nth(&self, n: u64) -> Option<Ipv4Addr> {
        (n < self.size()).then(|| Ipv4Addr::from(u32::from(self.network) + n as u32))
    }

    /// The `n`th sub-range of length `prefix` (`10.244.0.0/16`, 24, 3 → `10.244.3.0/24`), or
    /// `None` when `prefix` is shorter than this range's or `n` is past its end.
    pub fn subnet(&self, prefix: u8, n: u64) -> Option<Ipv4Cidr> {
        if prefix < self.prefix || prefix > 32 || n >= 1u64 << (prefix - self.prefix) {
            return None;
        }
        let step = 1u64 << (32 - u32::from(prefix));
        Ipv4Cidr::new(Ipv4Addr::from(u32::from(self.network) + (n * step) as u32), prefix)
    }

    /// Whether `ip` lies in the range.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.network)
    }

    /// Whether the two ranges share any address (one then contains the other).
    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| CidrParseError {
            value: s.to_string(),
            reason,
        };
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| err("expected ADDRESS/PREFIX, e.g. 10.244.0.0/16".into()))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| err(format!("{addr:?} is not an IPv4 address")))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| err(format!("prefix {prefix:?} is not a number from 0 to 32")))?;
        Ipv4Cidr::new(addr, prefix).ok_or_else(|| {
            let network = Ipv4Addr::from(u32::from(addr) & mask(prefix));
            err(format!("host bits are set; the network is {network}/{prefix}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_display_round_trip() {
        assert_eq!(cidr("10.244.0.0/16").to_string(), "10.244.0.0/16");
        assert_eq!(cidr("0.0.0.0/0").size(), 1 << 32);
    }

    #[test]
    fn host_bits_are_rejected_with_the_network_in_the_message() {
        let err = "10.244.1.0/16".parse::<Ipv4Cidr>().unwrap_err().to_string();
        assert!(err.contains("10.244.0.0/16"), "{err}");
    }

    #[test]
    fn malformed_values_are_rejected() {
        for bad in ["10.244.0.0", "10.244.0.0/33", "10.244.0/16", "x/8", "10.0.0.0/-1"] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn nth_address_stops_at_the_end_of_the_range() {
        let c = cidr("172.30.0.0/24");
        assert_eq!(c.nth(1), Some(Ipv4Addr::new(172, 30, 0, 1)));
        assert_eq!(c.nth(255), Some(Ipv4Addr::new(172, 30, 0, 255)));
        assert_eq!(c.nth(256), None);
    }

    #[test]
    fn subnet_counts_sub_ranges_of_the_given_length() {
        let c = cidr("10.244.0.0/16");
        assert_eq!(c.subnet(24, 3), Some(cidr("10.244.3.0/24")));
        assert_eq!(c.subnet(24, 255), Some(cidr("10.244.255.0/24")));
        assert_eq!(c.subnet(24, 256), None);
        assert_eq!(c.subnet(8, 0), None);
    }

    #[test]
    fn overlap_holds_when_one_range_contains_the_other() {
        assert!(cidr("10.96.0.0/12").overlaps(&cidr("10.100.0.0/16")));
        assert!(cidr("10.100.0.0/16").overlaps(&cidr("10.96.0.0/12")));
        assert!(!cidr("10.96.0.0/12").overlaps(&cidr("10.244.0.0/16")));
        assert!(cidr("10.96.0.0/12").contains(Ipv4Addr::new(10, 111, 255, 255)));
        assert!(!cidr("10.96.0.0/12").contains(Ipv4Addr::new(10, 112, 0, 0)));
    }
}
