//! Every DNS name of the Kubernetes DNS schema is built or read here, in one place
//! (kubernetes/dns `docs/specification.md`, as CoreDNS's kubernetes plugin implements it).
//!
//! Text names are dotted, without the trailing dot, and lowercase when they are lookup keys
//! (DNS names compare case-insensitively; Kubernetes object names are lowercase anyway).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The label that marks Service names: `<svc>.<ns>.svc.<zone>`.
pub const SVC: &str = "svc";
/// The label that marks pod names: `<a-b-c-d>.<ns>.pod.<zone>`.
pub const POD: &str = "pod";
/// The one name answering TXT with the schema version (`dns-version.<zone>`).
pub const DNS_VERSION: &str = "dns-version";
/// The schema version CoreDNS reports in `dns-version.<zone>` TXT.
pub const SCHEMA_VERSION: &str = "1.1.0";

/// Normalizes a configured cluster domain: lowercase, no leading or trailing dot.
pub fn zone(domain: &str) -> String {
    domain.trim_matches('.').to_ascii_lowercase()
}

/// `<svc>.<ns>.svc.<zone>`.
pub fn service(name: &str, namespace: &str, zone: &str) -> String {
    format!("{name}.{namespace}.{SVC}.{zone}").to_ascii_lowercase()
}

/// `_<port>._<proto>.<service fqdn>` for a named port, with the protocol lowercase as SRV
/// names are written (`_http._tcp`).
pub fn srv(port_name: &str, protocol: &str, service_fqdn: &str) -> String {
    format!("_{port_name}._{protocol}.{service_fqdn}").to_ascii_lowercase()
}

/// `<label>.<service fqdn>`: an endpoint's own name.
pub fn endpoint(label: &str, service_fqdn: &str) -> String {
    format!("{label}.{service_fqdn}").to_ascii_lowercase()
}

/// The first label of an endpoint's name: its `hostname` when set (StatefulSet pods with
/// `subdomain`), else its address with dots (IPv4) or colons (IPv6) turned into dashes, as
/// CoreDNS's `endpointHostname` does.
pub fn endpoint_label(hostname: Option<&str>, address: &str) -> String {
    match hostname.filter(|h| !h.is_empty()) {
        Some(h) => h.to_ascii_lowercase(),
        None if address.contains('.') => address.replace('.', "-"),
        None => address.replace(':', "-").to_ascii_lowercase(),
    }
}

/// The address a pod label names (`10-244-1-5`, `fd00--5`), as CoreDNS reads it: three
/// dashes and no double dash is IPv4, anything else is IPv6 with dashes for colons.
pub fn pod_address(label: &str) -> Option<IpAddr> {
    if label.bytes().filter(|&b| b == b'-').count() == 3 && !label.contains("--") {
        label.replace('-', ".").parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    } else {
        label.replace('-', ":").parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    }
}

/// The address a reverse name (`4.3.2.1.in-addr.arpa`, 32 nibbles `.ip6.arpa`) stands for;
/// `None` for names that are not a whole address (`10.in-addr.arpa`).
pub fn reverse_address(name: &str) -> Option<IpAddr> {
    if let Some(rest) = name.strip_suffix(".in-addr.arpa") {
        let mut octets = [0u8; 4];
        let mut n = 0;
        for part in rest.split('.') {
            if n == 4 || part.is_empty() || part.len() > 3 || (part.len() > 1 && part.starts_with('0')) {
                return None;
            }
            octets[3 - n] = part.parse().ok()?;
            n += 1;
        }
        return (n == 4).then(|| IpAddr::V4(Ipv4Addr::from(octets)));
    }
    let rest = name.strip_suffix(".ip6.arpa")?;
    let mut value: u128 = 0;
    let mut n = 0;
    for part in rest.split('.') {
        if n == 32 || part.len() != 1 {
            return None;
        }
        let nibble = u128::from(part.chars().next()?.to_digit(16)?);
        value |= nibble << (4 * n);
        n += 1;
    }
    (n == 32).then(|| IpAddr::V6(Ipv6Addr::from(value)))
}

/// The part of `name` in front of `zone` (`Some("")` for the apex), or `None` when `name`
/// is outside the zone.
pub fn in_zone<'a>(name: &'a str, zone: &str) -> Option<&'a str> {
    if name == zone {
        return Some("");
    }
    let rest = name.strip_suffix(zone)?;
    rest.strip_suffix('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_without_hostname_is_named_by_its_dashed_address() {
        assert_eq!(endpoint_label(None, "10.244.1.5"), "10-244-1-5");
        assert_eq!(endpoint_label(Some(""), "fd00::5"), "fd00--5");
        assert_eq!(endpoint_label(Some("web-0"), "10.244.1.5"), "web-0");
    }

    #[test]
    fn pod_labels_read_back_as_addresses() {
        assert_eq!(pod_address("10-244-1-5"), Some("10.244.1.5".parse().unwrap()));
        assert_eq!(pod_address("fd00--5"), Some("fd00::5".parse().unwrap()));
        assert_eq!(pod_address("10-244-1"), None);
        assert_eq!(pod_address("web"), None);
    }

    #[test]
    fn reverse_names_read_back_as_addresses() {
        assert_eq!(
            reverse_address("10.0.96.10.in-addr.arpa"),
            Some("10.96.0.10".parse().unwrap())
        );
        assert_eq!(reverse_address("96.10.in-addr.arpa"), None);
        assert_eq!(reverse_address("010.0.96.10.in-addr.arpa"), None);
        let v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa";
        assert_eq!(reverse_address(v6), Some("fd00::1".parse().unwrap()));
        assert_eq!(reverse_address("0.d.f.ip6.arpa"), None);
    }

    #[test]
    fn in_zone_splits_off_the_part_before_the_zone() {
        assert_eq!(
            in_zone("web.default.svc.cluster.local", "cluster.local"),
            Some("web.default.svc")
        );
        assert_eq!(in_zone("cluster.local", "cluster.local"), Some(""));
        assert_eq!(in_zone("notcluster.local", "cluster.local"), None);
        assert_eq!(in_zone("example.com", "cluster.local"), None);
    }

    #[test]
    fn srv_names_lowercase_the_protocol() {
        assert_eq!(
            srv("http", "TCP", "web.default.svc.cluster.local"),
            "_http._tcp.web.default.svc.cluster.local"
        );
    }
}
