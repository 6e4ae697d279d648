//! Address pools: what `--lb-pool` and the `podway-lb-pools` ConfigMap say, parsed (pure).
//!
//! A pool is a named list of IPv4 ranges (`FROM-TO`, a CIDR, or one address), with MetalLB's
//! two per-pool switches: `autoAssign` (may a Service that asked for nothing get an address
//! from it?) and `avoidBuggyIPs` (skip addresses ending in .0 and .255, which some home
//! routers drop as smurf attacks).

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// The name of the pool `podway up --lb-pool` fills, and that a ConfigMap entry of the same
/// name replaces.
pub const DEFAULT_POOL: &str = "default";

/// Why an address range or pool was refused. Never transient: the text must change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// An entry that is neither `FROM-TO`, a CIDR, nor one IPv4 address.
    #[error("invalid address range {entry:?}: {why}")]
    Range {
        /// The entry as written.
        entry: String,
        /// What is wrong with it.
        why: String,
    },
    /// An option (`key=value`) this controller does not know, or a value that is not a bool.
    #[error("pool {pool:?}: invalid option {option:?}: expected autoAssign=true|false or avoidBuggyIPs=true|false")]
    Option {
        /// The pool.
        pool: String,
        /// The option as written.
        option: String,
    },
    /// A pool without a single address range.
    #[error("pool {pool:?} has no address ranges")]
    Empty {
        /// The pool.
        pool: String,
    },
    /// A pool whose range overlaps one of an earlier pool (MetalLB refuses overlapping
    /// pools too: an address must belong to exactly one pool).
    #[error("pool {pool:?}: range {range} overlaps pool {other:?}")]
    Overlap {
        /// The refused pool.
        pool: String,
        /// Its overlapping range.
        range: IpRange,
        /// The pool kept.
        other: String,
    },
    /// An error in a range of a named pool.
    #[error("pool {pool:?}: {source}")]
    InPool {
        /// The pool.
        pool: String,
        /// The range error.
        source: Box<PoolError>,
    },
}

/// An inclusive range of IPv4 addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpRange {
    /// The first address.
    pub first: Ipv4Addr,
    /// The last address (not below `first`).
    pub last: Ipv4Addr,
}

impl IpRange {
    /// Whether `ip` lies in the range.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.first <= ip && ip <= self.last
    }

    /// Whether the two ranges share an address.
    pub fn overlaps(&self, other: &IpRange) -> bool {
        self.first <= other.last && other.first <= self.last
    }

    /// The addresses, lowest first.
    pub fn addresses(&self) -> impl Iterator<Item = Ipv4Addr> {
        (u32::from(self.first)..=u32::from(self.last)).map(Ipv4Addr::from)
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

fn parse_ip(entry: &str, s: &str) -> Result<Ipv4Addr, PoolError> {
    s.trim().parse().map_err(|_| PoolError::Range {
        entry: entry.to_string(),
        why: format!("{:?} is not an IPv4 address (podway's node network is IPv4)", s.trim()),
    })
}

impl FromStr for IpRange {
    type Err = PoolError;

    /// `172.30.0.200-172.30.0.254`, `172.30.0.192/26` (every address of it, as MetalLB counts
    /// a CIDR), or `172.30.0.7`.
    fn from_str(s: &str) -> Result<IpRange, PoolError> {
        let bad = |why: String| PoolError::Range {
            entry: s.to_string(),
            why,
        };
        if let Some((a, b)) = s.split_once('-') {
            let (first, last) = (parse_ip(s, a)?, parse_ip(s, b)?);
            if first > last {
                return Err(bad(format!("{first} comes after {last}")));
            }
            return Ok(IpRange { first, last });
        }
        if let Some((a, len)) = s.split_once('/') {
            let ip = parse_ip(s, a)?;
            let len: u32 = len
                .trim()
                .parse()
                .ok()
                .filter(|l| *l <= 32)
                .ok_or_else(|| bad(format!("{len:?} is not a prefix length from 0 to 32")))?;
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            let first = u32::from(ip) & mask;
            return Ok(IpRange {
                first: Ipv4Addr::from(first),
                last: Ipv4Addr::from(first | !mask),
            });
        }
        let ip = parse_ip(s, s)?;
        Ok(IpRange { first: ip, last: ip })
    }
}

/// Parses a comma- or whitespace-separated list of ranges, as `--lb-pool` takes it.
/// An empty list is allowed: no default pool.
pub fn parse_ranges(s: &str) -> Result<Vec<IpRange>, PoolError> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(str::parse)
        .collect()
}

/// The default pool for a node network: its upper range, as for a /24 `.200` to `.254`
/// (the top 56/256 of the network minus its broadcast address), so that node addresses,
/// handed out from `.2` up, meet it only in a cluster of about 200 nodes.
pub fn default_pool(node_cidr: &str) -> Result<Vec<IpRange>, PoolError> {
    let net: IpRange = node_cidr.parse()?;
    let (start, end) = (u64::from(u32::from(net.first)), u64::from(u32::from(net.last)));
    let size = end - start + 1;
    let first = start + size * 200 / 256;
    // Leave out the broadcast address, unless the network is too small to have one.
    let last = if size > 2 { end - 1 } else { end };
    Ok(vec![IpRange {
        first: Ipv4Addr::from(first.min(last) as u32),
        last: Ipv4Addr::from(last as u32),
    }])
}

/// One address pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// Its name (`default`, or the ConfigMap key), what `metallb.universe.tf/address-pool` names.
    pub name: String,
    /// Its addresses.
    pub ranges: Vec<IpRange>,
    /// Whether Services that ask for no address or pool may get one from it (MetalLB's
    /// `autoAssign`, default true). A pool with `false` serves only explicit requests.
    pub auto_assign: bool,
    /// Whether addresses ending in .0 or .255 are skipped (MetalLB's `avoidBuggyIPs`,
    /// default false).
    pub avoid_buggy_ips: bool,
}

/// Whether `ip` is one that buggy consumer routers drop (last octet 0 or 255).
fn confuses_buggy_firmware(ip: Ipv4Addr) -> bool {
    matches!(ip.octets()[3], 0 | 255)
}

impl Pool {
    /// A pool with MetalLB's default options.
    pub fn new(name: &str, ranges: Vec<IpRange>) -> Pool {
        Pool {
            name: name.to_string(),
            ranges,
            auto_assign: true,
            avoid_buggy_ips: false,
        }
    }

    /// Whether the pool may hand out `ip`.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        !(self.avoid_buggy_ips && confuses_buggy_firmware(ip)) && self.ranges.iter().any(|r| r.contains(ip))
    }

    /// The addresses it may hand out, in order: ranges as written, lowest first within each.
    pub fn addresses(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        let avoid = self.avoid_buggy_ips;
        self.ranges
            .iter()
            .flat_map(|r| r.addresses())
            .filter(move |ip| !(avoid && confuses_buggy_firmware(*ip)))
    }

    /// Parses one ConfigMap entry: ranges and `key=value` options separated by commas,
    /// spaces or newlines, e.g. `172.30.0.100-172.30.0.120, 10.50.0.0/28 autoAssign=false`.
    pub fn parse(name: &str, value: &str) -> Result<Pool, PoolError> {
        let mut pool = Pool::new(name, Vec::new());
        for token in value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|t| !t.is_empty())
        {
            if let Some((k, v)) = token.split_once('=') {
                let flag: Option<bool> = v.parse().ok();
                match (k, flag) {
                    ("autoAssign", Some(f)) => pool.auto_assign = f,
                    ("avoidBuggyIPs", Some(f)) => pool.avoid_buggy_ips = f,
                    _ => {
                        return Err(PoolError::Option {
                            pool: name.to_string(),
                            option: token.to_string(),
                        })
                    }
                }
                continue;
            }
            let range = token.parse().map_err(|e| PoolError::InPool {
                pool: name.to_string(),
                source: Box::new(e),
            })?;
            pool.ranges.push(range);
        }
        if pool.ranges.is_empty() {
            return Err(PoolError::Empty { pool: name.to_string() });
        }
        Ok(pool)
    }
}

/// Every pool in force, in the order automatic allocation tries them: `default` first, then
/// the others by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pools {
    /// The pools; no two overlap.
    pub pools: Vec<Pool>,
}

impl Pools {
    /// The pools from the `--lb-pool` ranges and the ConfigMap's data (if it exists), plus
    /// what was refused and why. A ConfigMap entry named `default` replaces the flag's pool;
    /// a refused entry leaves the others in force (one typo must not take every pool away).
    pub fn build(default: &[IpRange], config: Option<&BTreeMap<String, String>>) -> (Pools, Vec<PoolError>) {
        let mut problems = Vec::new();
        let mut candidates: Vec<Pool> = Vec::new();
        let overrides_default = config.is_some_and(|c| c.contains_key(DEFAULT_POOL));
        if !default.is_empty() && !overrides_default {
            candidates.push(Pool::new(DEFAULT_POOL, default.to_vec()));
        }
        let mut entries: Vec<(&String, &String)> = config.into_iter().flatten().collect();
        // `default` first, then by name (BTreeMap order).
        entries.sort_by_key(|(k, _)| (k.as_str() != DEFAULT_POOL, k.as_str()));
        for (name, value) in entries {
            match Pool::parse(name, value) {
                Ok(p) => candidates.push(p),
                Err(e) => problems.push(e),
            }
        }
        let mut pools: Vec<Pool> = Vec::new();
        'next: for p in candidates {
            for r in &p.ranges {
                if let Some(other) = pools.iter().find(|o| o.ranges.iter().any(|o| o.overlaps(r))) {
                    problems.push(PoolError::Overlap {
                        pool: p.name.clone(),
                        range: *r,
                        other: other.name.clone(),
                    });
                    continue 'next;
                }
            }
            pools.push(p);
        }
        (Pools { pools }, problems)
    }

    /// The pool named `name`.
    pub fn get(&self, name: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.name == name)
    }

    /// The pool that may hand out `ip`.
    pub fn pool_for(&self, ip: Ipv4Addr) -> Option<&Pool> {
        self.pools.iter().find(|p| p.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn range(s: &str) -> IpRange {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_cidrs_and_single_addresses_parse_to_inclusive_ranges() {
        let cases = [
            ("172.30.0.200-172.30.0.254", "172.30.0.200", "172.30.0.254"),
            ("10.0.0.5 - 10.0.0.9", "10.0.0.5", "10.0.0.9"),
            ("172.30.0.192/26", "172.30.0.192", "172.30.0.255"),
            ("172.30.0.77/30", "172.30.0.76", "172.30.0.79"),
            ("10.0.0.7", "10.0.0.7", "10.0.0.7"),
            ("10.0.0.7/32", "10.0.0.7", "10.0.0.7"),
        ];
        for (text, first, last) in cases {
            assert_eq!(
                range(text),
                IpRange {
                    first: ip(first),
                    last: ip(last)
                },
                "{text}"
            );
        }
    }

    #[test]
    fn malformed_ranges_are_refused_with_the_entry_in_the_message() {
        for text in ["10.0.0.9-10.0.0.1", "10.0.0.0/33", "fd00::1", "nonsense", "10.0.0.1-"] {
            let err = text.parse::<IpRange>().unwrap_err().to_string();
            assert!(err.contains(&format!("{text:?}")), "{text}: {err}");
        }
    }

    #[test]
    fn the_flag_takes_a_comma_separated_list_and_may_be_empty() {
        assert_eq!(
            parse_ranges("10.0.0.1-10.0.0.2,10.0.1.0/31").unwrap(),
            vec![range("10.0.0.1-10.0.0.2"), range("10.0.1.0/31")]
        );
        assert_eq!(parse_ranges("").unwrap(), vec![]);
    }

    #[test]
    fn the_default_pool_is_the_upper_range_of_the_node_network() {
        assert_eq!(
            default_pool("172.30.0.0/24").unwrap(),
            vec![range("172.30.0.200-172.30.0.254")]
        );
        assert_eq!(
            default_pool("172.31.45.0/24").unwrap(),
            vec![range("172.31.45.200-172.31.45.254")]
        );
        assert_eq!(
            default_pool("10.9.0.0/16").unwrap(),
            vec![range("10.9.200.0-10.9.255.254")]
        );
        assert_eq!(
            default_pool("10.9.0.16/28").unwrap(),
            vec![range("10.9.0.28-10.9.0.30")]
        );
    }

    #[test]
    fn a_config_map_entry_holds_ranges_and_options() {
        let p = Pool::parse(
            "lab",
            "10.0.0.1-10.0.0.3,\n10.0.1.0/30 autoAssign=false avoidBuggyIPs=true",
        )
        .unwrap();
        assert_eq!(p.ranges, vec![range("10.0.0.1-10.0.0.3"), range("10.0.1.0/30")]);
        assert!(!p.auto_assign);
        assert!(p.avoid_buggy_ips);
        assert_eq!(
            p.addresses().map(|a| a.to_string()).collect::<Vec<_>>(),
            ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.1.1", "10.0.1.2", "10.0.1.3"]
        );
        assert!(!p.contains(ip("10.0.1.0")), "avoidBuggyIPs keeps .0 out");
    }

    #[test]
    fn unknown_options_and_empty_pools_are_refused() {
        assert!(matches!(
            Pool::parse("p", "10.0.0.1 autoAssign=maybe"),
            Err(PoolError::Option { .. })
        ));
        assert!(matches!(
            Pool::parse("p", "10.0.0.1 colour=blue"),
            Err(PoolError::Option { .. })
        ));
        assert!(matches!(Pool::parse("p", " \n"), Err(PoolError::Empty { .. })));
    }

    #[test]
    fn config_map_pools_come_after_the_default_and_one_bad_entry_leaves_the_others() {
        let data: BTreeMap<String, String> = [
            ("zeta", "10.1.0.0/30"),
            ("alpha", "10.2.0.1-10.2.0.2"),
            ("broken", "10.3.0.1-nope"),
            ("clash", "172.30.0.250-172.30.1.10"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (pools, problems) = Pools::build(&[range("172.30.0.200-172.30.0.254")], Some(&data));
        let names: Vec<&str> = pools.pools.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["default", "alpha", "zeta"]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|p| p.to_string().contains("\"broken\"")));
        assert!(problems
            .iter()
            .any(|p| matches!(p, PoolError::Overlap { pool, other, .. } if pool == "clash" && other == "default")));
        assert_eq!(pools.pool_for(ip("10.2.0.2")).map(|p| p.name.as_str()), Some("alpha"));
        assert_eq!(pools.pool_for(ip("10.2.0.3")), None);
    }

    #[test]
    fn a_config_map_entry_named_default_replaces_the_flag_pool() {
        let data: BTreeMap<String, String> = [("default".to_string(), "10.5.0.1-10.5.0.2".to_string())].into();
        let (pools, problems) = Pools::build(&[range("172.30.0.200-172.30.0.254")], Some(&data));
        assert!(problems.is_empty());
        assert_eq!(
            pools.pools,
            vec![Pool::new("default", vec![range("10.5.0.1-10.5.0.2")])]
        );
    }

    #[test]
    fn without_a_config_map_or_flag_there_are_no_pools() {
        let (pools, problems) = Pools::build(&[], None);
        assert!(pools.pools.is_empty() && problems.is_empty());
    }
}
