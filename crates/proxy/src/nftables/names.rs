//! Every name in the podway table comes from here.
//!
//! Per-Service names embed `namespace/name/protocol/portName` so `nft list table ip podway`
//! reads like the Service list. The longest name built on a base is an endpoint's label (base
//! plus `__255.255.255.255/65535`), which is a set element's comment, and nft allows comments of
//! 128 bytes at most; a base that would not fit (rare: long namespace and Service names) is
//! replaced by its hash, keeping names unique.

use std::net::Ipv4Addr;

use sha2::{Digest, Sha256};

use crate::model::ServicePortName;

/// The table: one per node network namespace; nothing else may touch it.
pub const TABLE: &str = "podway";
/// Family of the table: this proxy is IPv4 only.
pub const FAMILY: &str = "ip";

/// Map `ip . proto . port : verdict` for cluster IPs, external IPs and load-balancer IPs.
pub const SERVICE_IPS: &str = "service-ips";
/// Map `proto . port : verdict` for NodePorts on local addresses.
pub const SERVICE_NODEPORTS: &str = "service-nodeports";
/// Map `ip . proto . port : verdict` rejecting or dropping Services without usable endpoints.
pub const NO_ENDPOINT_SERVICES: &str = "no-endpoint-services";
/// Map `proto . port : verdict` rejecting or dropping NodePorts without usable endpoints.
pub const NO_ENDPOINT_NODEPORTS: &str = "no-endpoint-nodeports";
/// Set of endpoint marks (conntrack marks) with a counter per element: the bytes of every
/// packet of the flows sent to that endpoint. Each element's comment is the endpoint's label.
pub const ENDPOINT_BYTES: &str = "endpoint-bytes";
/// Set of endpoint marks with a counter per element whose packets are the connections (flows)
/// sent to that endpoint. Each element's comment is the endpoint's label.
pub const ENDPOINT_CONNECTIONS: &str = "endpoint-connections";
/// Chain marking a packet for masquerade in postrouting.
pub const MARK_FOR_MASQUERADE: &str = "mark-for-masquerade";
/// Chain that masquerades marked packets.
pub const MASQUERADING: &str = "masquerading";
/// Chain that refuses a connection (TCP reset, ICMP port unreachable otherwise).
pub const REJECT: &str = "reject-chain";
/// Chain dispatching by destination through the service maps (from prerouting and output).
pub const SERVICES: &str = "services";
/// Chain checking `@no-endpoint-services` (from input, forward and output).
pub const SERVICE_ENDPOINTS_CHECK: &str = "service-endpoints-check";
/// Chain checking `@no-endpoint-nodeports` (from input).
pub const NODEPORT_ENDPOINTS_CHECK: &str = "nodeport-endpoints-check";

/// The packet mark bit that asks for masquerade (kube-proxy's bit, so tools read it alike).
pub const MASQUERADE_MARK: u32 = 0x4000;

/// nft's limit on a comment (an endpoint label), less the widest `__IP/PORT` suffix.
const MAX_BASE: usize = 128 - "__255.255.255.255/65535".len();

/// `namespace/name/protocol/portName`, or a hash of it when it would be too long.
pub fn service_port_base(name: &ServicePortName) -> String {
    let base = format!(
        "{}/{}/{}/{}",
        name.service.namespace,
        name.service.name,
        name.protocol.as_str(),
        name.port_name
    );
    if base.len() <= MAX_BASE {
        return base;
    }
    let digest = Sha256::digest(base.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The chain spreading Cluster-policy traffic over all usable endpoints.
pub fn service_chain(name: &ServicePortName) -> String {
    format!("service-{}", service_port_base(name))
}

/// The chain spreading Local-policy traffic over this node's endpoints.
pub fn local_chain(name: &ServicePortName) -> String {
    format!("local-{}", service_port_base(name))
}

/// The chain external traffic (NodePort, load-balancer IP, external IP) enters first.
pub fn external_chain(name: &ServicePortName) -> String {
    format!("external-{}", service_port_base(name))
}

/// The chain that DNATs to one endpoint.
pub fn endpoint_chain(name: &ServicePortName, ip: Ipv4Addr, port: u16) -> String {
    format!("endpoint-{}__{ip}/{port}", service_port_base(name))
}

/// An endpoint's label, `<base>__<ip>/<port>`: the comment of its elements in the counter sets
/// ([`ENDPOINT_CONNECTIONS`], [`ENDPOINT_BYTES`]), by which their counts are read back.
pub fn endpoint_label(name: &ServicePortName, ip: Ipv4Addr, port: u16) -> String {
    format!("{}__{ip}/{port}", service_port_base(name))
}

/// The conntrack mark the endpoint chain sets on each flow it sends to the endpoint, so later
/// packets (both directions) find the endpoint's element in the bytes set. Derived from the endpoint
/// chain's name (never 0, which means "no endpoint"), so renders need no allocation state;
/// two endpoints hashing alike (about one in 2^32 per pair) would share a map key, which the
/// full script resolves by first name and an incremental update by falling back to a full one.
pub fn endpoint_mark(name: &ServicePortName, ip: Ipv4Addr, port: u16) -> u32 {
    let digest = Sha256::digest(endpoint_chain(name, ip, port).as_bytes());
    let mark = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    mark.max(1)
}

/// The set of client addresses stuck to one endpoint (sessionAffinity ClientIP).
pub fn affinity_set(name: &ServicePortName, ip: Ipv4Addr, port: u16) -> String {
    format!("affinity-{}__{ip}/{port}", service_port_base(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Protocol, ServiceRef};

    #[test]
    fn names_read_like_the_service_port_they_belong_to() {
        let n = ServicePortName {
            service: ServiceRef::new("shop", "web"),
            port_name: "http".into(),
            protocol: Protocol::Udp,
        };
        assert_eq!(service_chain(&n), "service-shop/web/udp/http");
        assert_eq!(
            endpoint_chain(&n, Ipv4Addr::new(10, 244, 0, 5), 8080),
            "endpoint-shop/web/udp/http__10.244.0.5/8080"
        );
    }

    #[test]
    fn an_overlong_base_becomes_a_hash_and_different_ports_keep_different_names() {
        let long = "x".repeat(250);
        let a = ServicePortName {
            service: ServiceRef::new("ns", long.clone()),
            port_name: "a".into(),
            protocol: Protocol::Tcp,
        };
        let b = ServicePortName {
            service: ServiceRef::new("ns", long),
            port_name: "b".into(),
            protocol: Protocol::Tcp,
        };
        assert_eq!(service_port_base(&a).len(), 32);
        assert_ne!(service_port_base(&a), service_port_base(&b));
        let widest = Ipv4Addr::new(255, 255, 255, 255);
        assert!(endpoint_chain(&a, widest, 65535).len() < 256);
        assert!(endpoint_label(&a, widest, 65535).len() <= 128);
    }

    #[test]
    fn the_widest_base_that_is_kept_still_makes_a_label_nft_accepts_as_a_comment() {
        let n = ServicePortName {
            service: ServiceRef::new("n".repeat(63), "s".repeat(MAX_BASE - 63 - 3 - "sctp".len() - 1)),
            port_name: "p".into(),
            protocol: Protocol::Sctp,
        };
        assert_eq!(service_port_base(&n).len(), MAX_BASE);
        assert!(service_port_base(&n).starts_with("nnn"));
        assert_eq!(endpoint_label(&n, Ipv4Addr::new(255, 255, 255, 255), 65535).len(), 128);
    }

    #[test]
    fn endpoint_marks_differ_per_endpoint_and_are_never_zero() {
        let n = ServicePortName {
            service: ServiceRef::new("shop", "web"),
            port_name: "http".into(),
            protocol: Protocol::Tcp,
        };
        let a = endpoint_mark(&n, Ipv4Addr::new(10, 244, 0, 5), 8080);
        let b = endpoint_mark(&n, Ipv4Addr::new(10, 244, 0, 6), 8080);
        assert_ne!(a, b);
        assert_ne!(a, 0);
        assert_eq!(a, endpoint_mark(&n, Ipv4Addr::new(10, 244, 0, 5), 8080));
        assert_eq!(
            endpoint_label(&n, Ipv4Addr::new(10, 244, 0, 5), 8080),
            "shop/web/tcp/http__10.244.0.5/8080"
        );
    }
}
