//! What the images report about where they run: the hostname (in a pod, the pod's name) and the
//! addresses of the network interfaces, read from /proc as Go's `net.Interfaces` would list them.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The hostname of this UTS namespace.
pub(crate) fn hostname() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

/// Every interface address, interface by interface (in ifindex order), IPv4 before IPv6 within
/// an interface: what traefik/whoami prints as `IP:` lines.
pub(crate) fn interface_ips() -> Vec<IpAddr> {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let mut indexes = BTreeMap::new();
    if let Ok(dir) = std::fs::read_dir("/sys/class/net") {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Ok(i) = read(&format!("/sys/class/net/{name}/ifindex")).trim().parse::<u32>() {
                indexes.insert(name, i);
            }
        }
    }
    order_addresses(
        &indexes,
        &parse_fib_trie_locals(&read("/proc/net/fib_trie")),
        &parse_routes(&read("/proc/net/route")),
        &parse_if_inet6(&read("/proc/net/if_inet6")),
    )
}

/// The local IPv4 addresses in /proc/net/fib_trie: the `/32 host LOCAL` leaves.
pub(crate) fn parse_fib_trie_locals(text: &str) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(addr) = trimmed.strip_prefix("|-- ") {
            last = addr.parse().ok();
        } else if trimmed.starts_with("/32 host LOCAL") {
            if let Some(addr) = last {
                if !out.contains(&addr) {
                    out.push(addr);
                }
            }
        }
    }
    out
}

/// (interface, destination, mask) from /proc/net/route (addresses in little-endian hex).
pub(crate) fn parse_routes(text: &str) -> Vec<(String, Ipv4Addr, Ipv4Addr)> {
    let hex = |s: &str| u32::from_str_radix(s, 16).ok().map(|n| Ipv4Addr::from(n.swap_bytes()));
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() >= 8).then_some(())?;
            Some((f[0].to_string(), hex(f[1])?, hex(f[7])?))
        })
        .collect()
}

/// (ifindex, address) from /proc/net/if_inet6.
pub(crate) fn parse_if_inet6(text: &str) -> Vec<(u32, Ipv6Addr)> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() >= 6 && f[0].len() == 32).then_some(())?;
            let n = u128::from_str_radix(f[0], 16).ok()?;
            Some((u32::from_str_radix(f[1], 16).ok()?, Ipv6Addr::from(n)))
        })
        .collect()
}

/// Group the addresses by interface: an IPv4 address belongs to the interface whose connected
/// route covers it (loopback addresses to `lo`); ones with no such route come last.
pub(crate) fn order_addresses(
    indexes: &BTreeMap<String, u32>,
    v4: &[Ipv4Addr],
    routes: &[(String, Ipv4Addr, Ipv4Addr)],
    v6: &[(u32, Ipv6Addr)],
) -> Vec<IpAddr> {
    let interface_of = |addr: Ipv4Addr| -> u32 {
        if addr.is_loopback() {
            return indexes.get("lo").copied().unwrap_or(1);
        }
        routes
            .iter()
            .filter(|(_, dest, mask)| u32::from(*mask) != 0 && u32::from(addr) & u32::from(*mask) == u32::from(*dest))
            .max_by_key(|(_, _, mask)| u32::from(*mask))
            .and_then(|(iface, _, _)| indexes.get(iface).copied())
            .unwrap_or(u32::MAX)
    };
    let mut all: Vec<(u32, u8, usize, IpAddr)> = Vec::new();
    for (i, addr) in v4.iter().enumerate() {
        all.push((interface_of(*addr), 4, i, IpAddr::V4(*addr)));
    }
    for (i, (index, addr)) in v6.iter().enumerate() {
        all.push((*index, 6, i, IpAddr::V6(*addr)));
    }
    all.sort();
    all.into_iter().map(|(_, _, _, addr)| addr).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIB_TRIE: &str = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     +-- 10.244.1.0/24 2 0 2\n        |-- 10.244.1.0\n           /24 link UNICAST\n        |-- 10.244.1.7\n           /32 host LOCAL\n     +-- 127.0.0.0/8 2 0 2\n        |-- 127.0.0.0\n           /8 host LOCAL\n        |-- 127.0.0.1\n           /32 host LOCAL\nLocal:\n        |-- 127.0.0.1\n           /32 host LOCAL\n";
    const ROUTE: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth0\t00000000\t0101F40A\t0003\t0\t0\t0\t00000000\t0\t0\t0\neth0\t0001F40A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
    const IF_INET6: &str = "fe800000000000000000000000000001 02 40 20 80     eth0\n00000000000000000000000000000001 01 80 10 80       lo\n";

    #[test]
    fn addresses_are_listed_per_interface_like_go_does() {
        let indexes: BTreeMap<String, u32> = [("lo".to_string(), 1), ("eth0".to_string(), 2)].into();
        let ips = order_addresses(
            &indexes,
            &parse_fib_trie_locals(FIB_TRIE),
            &parse_routes(ROUTE),
            &parse_if_inet6(IF_INET6),
        );
        let text: Vec<String> = ips.iter().map(ToString::to_string).collect();
        assert_eq!(text, ["127.0.0.1", "::1", "10.244.1.7", "fe80::1"]);
    }

    #[test]
    fn only_host_local_leaves_count_as_addresses() {
        assert_eq!(
            parse_fib_trie_locals(FIB_TRIE),
            vec![Ipv4Addr::new(10, 244, 1, 7), Ipv4Addr::LOCALHOST]
        );
    }

    #[test]
    fn this_hosts_hostname_and_loopback_address_are_found() {
        assert_eq!(
            hostname(),
            std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim()
        );
        assert!(interface_ips().contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }
}
