//! What the proxy is told when it starts.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network such as `10.244.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    /// The network address (host bits are cleared by [`Ipv4Cidr::new`]).
    pub addr: Ipv4Addr,
    /// The prefix length, 0 to 32.
    pub prefix: u8,
}

impl Ipv4Cidr {
    /// The network `addr/prefix`, host bits cleared; `None` when `prefix` exceeds 32.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Self> {
        (prefix <= 32).then(|| Ipv4Cidr {
            addr: Ipv4Addr::from(u32::from(addr) & Self::mask(prefix)),
            prefix,
        })
    }

    /// Whether `ip` lies inside this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & Self::mask(self.prefix) == u32::from(self.addr)
    }

    fn mask(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        }
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Why a string is not an IPv4 network.
#[derive(Debug, thiserror::Error)]
#[error("invalid IPv4 CIDR {0:?}: expected ADDRESS/PREFIX such as 10.244.0.0/16")]
pub struct CidrParseError(String);

impl FromStr for Ipv4Cidr {
    type Err = CidrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || CidrParseError(s.to_string());
        let (addr, prefix) = s.split_once('/').ok_or_else(err)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| err())?;
        let prefix: u8 = prefix.parse().map_err(|_| err())?;
        Ipv4Cidr::new(addr, prefix).ok_or_else(err)
    }
}

/// Which data plane realises Services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyMode {
    /// nftables where usable, otherwise userspace (the default).
    #[default]
    Auto,
    /// nftables only; fails when the kernel or the `nft` tool cannot be used.
    Nftables,
    /// Userspace forwarding (`--proxy-mode userspace`).
    Userspace,
}

/// What one node's proxy needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// The Node's name: endpoints with this `nodeName` are local.
    pub node_name: String,
    /// The node's IPv4 addresses.
    pub node_ips: Vec<Ipv4Addr>,
    /// The cluster-wide pod network. Traffic from outside it to a cluster IP is masqueraded so
    /// replies come back through this node; traffic from pods keeps its source.
    pub pod_cidr: Ipv4Cidr,
    /// Which data plane to use.
    pub mode: ProxyMode,
    /// The interface on the node network that answers for this node's LoadBalancer IPs
    /// ([`crate::announce`]), e.g. `eth0`; None announces nothing.
    pub announce_interface: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cidr_parses_clears_host_bits_and_contains_its_addresses() {
        let c: Ipv4Cidr = "10.244.3.7/16".parse().unwrap();
        assert_eq!(c.to_string(), "10.244.0.0/16");
        assert!(c.contains("10.244.255.1".parse().unwrap()));
        assert!(!c.contains("10.245.0.1".parse().unwrap()));
    }

    #[test]
    fn a_cidr_without_prefix_or_with_a_long_prefix_is_rejected_with_the_expected_form() {
        let err = "10.244.0.0".parse::<Ipv4Cidr>().unwrap_err().to_string();
        assert!(err.contains("ADDRESS/PREFIX"), "{err}");
        assert!("10.244.0.0/33".parse::<Ipv4Cidr>().is_err());
    }
}
