//! Every name the node network gives a kernel object, built in one place that knows the limits.
//!
//! Linux interface names hold at most 15 bytes (`IFNAMSIZ` is 16 with the NUL), far too few for
//! a cluster name, so links carry a short stable hash of it instead: the bridge is `pw<tag>`,
//! node `i`'s host-side veth end `pw<tag>n<i>`. Namespace names are files under `/run/netns`
//! (at most `NAME_MAX` = 255 bytes) and do carry the node's name, so `ip netns list` reads like
//! `podway node list`. Routes have no name; host blackhole routes are marked by a metric derived
//! from the same tag, which also lets two clusters blackhole the same range side by side.
//!
//! The inverse functions ([`is_cluster_netns`], [`is_cluster_link`]) recognise a cluster's
//! leftovers without knowing how many nodes it had, for [`super::teardown_stale`].

use sha2::{Digest, Sha256};

/// Longest cluster name: node names (`<cluster>-control-plane`) must stay within 63 bytes, the
/// limit of the `kubernetes.io/hostname` label value they become, with room for
/// `-worker99999`.
pub const MAX_CLUSTER_NAME_LEN: usize = 63 - "-control-plane".len();

/// Longest Linux interface name (`IFNAMSIZ` minus the terminating NUL).
pub const MAX_IFNAME_LEN: usize = 15;

/// Longest network namespace name: a file name under `/run/netns` (`NAME_MAX` is 255).
pub const MAX_NETNS_NAME_LEN: usize = 254;

/// The name of a node's interface on the node network, inside its namespace, as on a real
/// machine (and as kind's node containers have it).
pub const NODE_IFNAME: &str = "eth0";

/// Prefix of every podway network namespace.
pub const NETNS_PREFIX: &str = "podway-";

/// Prefix of every podway link on the host.
pub const LINK_PREFIX: &str = "pw";

/// Base of the metric of a cluster's host blackhole routes; the cluster's tag is added to it.
/// Chosen far above the metrics that DHCP clients and NetworkManager use (below 1,000,000) so
/// a podway route is recognisable at a glance and never mistaken for the machine's own.
pub const BLACKHOLE_METRIC_BASE: u32 = 0x0100_0000;

/// A short stable hash of the cluster name: 6 lowercase hex digits (24 bits), the same on every
/// run and every machine, so a crashed cluster's links can be found again by name.
pub fn cluster_tag(cluster: &str) -> String {
    let digest = Sha256::digest(cluster.as_bytes());
    format!("{:02x}{:02x}{:02x}", digest[0], digest[1], digest[2])
}

/// The name of node `index` (0-based) of `cluster`, as kind names them: `<cluster>-control-plane`,
/// then `<cluster>-worker`, `<cluster>-worker2`, `<cluster>-worker3`, ...
pub fn node_name(cluster: &str, index: usize) -> String {
    match index {
        0 => format!("{cluster}-control-plane"),
        1 => format!("{cluster}-worker"),
        i => format!("{cluster}-worker{i}"),
    }
}

/// The host bridge of `cluster`'s node network: `pw<tag>` (8 bytes).
pub fn bridge_name(cluster: &str) -> String {
    format!("{LINK_PREFIX}{}", cluster_tag(cluster))
}

/// The host-side end of node `index`'s veth pair: `pw<tag>n<index>` (at most 15 bytes for
/// indices below a million; [`super::NetworkPlan::new`] checks).
pub fn host_veth_name(cluster: &str, index: usize) -> String {
    format!("{LINK_PREFIX}{}n{index}", cluster_tag(cluster))
}

/// The network namespace of node `node`: `podway-<node>`, e.g. `podway-podway-control-plane`.
/// The node name already starts with the cluster name, so this is `podway-<cluster>-<role>`.
pub fn netns_name(node: &str) -> String {
    format!("{NETNS_PREFIX}{node}")
}

/// The metric that marks `cluster`'s host blackhole routes: [`BLACKHOLE_METRIC_BASE`] plus the
/// 24-bit tag.
pub fn blackhole_metric(cluster: &str) -> u32 {
    let tag = u32::from_str_radix(&cluster_tag(cluster), 16).expect("the tag is 6 hex digits");
    BLACKHOLE_METRIC_BASE + tag
}

/// Whether `name` is a node namespace of `cluster`, whatever its node count: exactly
/// `podway-<cluster>-` followed by a role (`control-plane`, `worker`, `worker<N>` with N >= 2).
/// Unambiguous between clusters: `podway-a-worker-control-plane` belongs to cluster `a-worker`,
/// not to `a`, because `worker-control-plane` is no role.
pub fn is_cluster_netns(cluster: &str, name: &str) -> bool {
    name.strip_prefix(NETNS_PREFIX)
        .and_then(|rest| rest.strip_prefix(cluster))
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(is_role)
}

fn is_role(role: &str) -> bool {
    if role == "control-plane" {
        return true;
    }
    match role.strip_prefix("worker") {
        Some("") => true,
        Some(n) => n.parse::<usize>().is_ok_and(|i| i >= 2 && n == i.to_string()),
        None => false,
    }
}

/// Whether the host link `name` belongs to `cluster`: its bridge or one of its host veth ends.
pub fn is_cluster_link(cluster: &str, name: &str) -> bool {
    let bridge = bridge_name(cluster);
    match name.strip_prefix(&bridge) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('n')
            .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit())),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_follow_kind() {
        let names: Vec<String> = (0..4).map(|i| node_name("podway", i)).collect();
        assert_eq!(
            names,
            [
                "podway-control-plane",
                "podway-worker",
                "podway-worker2",
                "podway-worker3"
            ]
        );
    }

    #[test]
    fn the_tag_is_stable_six_hex_digits_and_differs_between_clusters() {
        let tag = cluster_tag("podway");
        assert_eq!(tag.len(), 6);
        assert!(tag.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(tag, cluster_tag("podway"));
        assert_ne!(tag, cluster_tag("podway2"));
    }

    #[test]
    fn link_names_fit_ifnamsiz_for_the_longest_cluster_name_and_a_large_index() {
        let long = "a".repeat(MAX_CLUSTER_NAME_LEN);
        assert_eq!(bridge_name(&long).len(), 8);
        assert!(host_veth_name(&long, 999_999).len() <= MAX_IFNAME_LEN);
    }

    #[test]
    fn netns_name_reads_as_podway_cluster_role() {
        assert_eq!(netns_name(&node_name("podway", 2)), "podway-podway-worker2");
    }

    #[test]
    fn a_cluster_recognises_its_own_namespaces_only() {
        for i in [0, 1, 2, 17] {
            assert!(is_cluster_netns("a", &netns_name(&node_name("a", i))), "{i}");
            assert!(!is_cluster_netns("a", &netns_name(&node_name("a-worker", i))), "{i}");
            assert!(!is_cluster_netns("a-worker", &netns_name(&node_name("a", i))), "{i}");
        }
        for other in [
            "podway-a-worker1",
            "podway-a-worker02",
            "podway-a-",
            "a-worker",
            "podway-a-workerx",
        ] {
            assert!(!is_cluster_netns("a", other), "{other}");
        }
    }

    #[test]
    fn a_cluster_recognises_its_bridge_and_veths_only() {
        assert!(is_cluster_link("a", &bridge_name("a")));
        assert!(is_cluster_link("a", &host_veth_name("a", 12)));
        assert!(!is_cluster_link("a", &bridge_name("b")));
        assert!(!is_cluster_link("a", &format!("{}n", bridge_name("a"))));
        assert!(!is_cluster_link("a", &format!("{}x1", bridge_name("a"))));
        assert!(!is_cluster_link("a", "eth0"));
    }

    #[test]
    fn blackhole_metrics_are_above_the_base_and_differ_between_clusters() {
        assert!(blackhole_metric("a") > BLACKHOLE_METRIC_BASE || cluster_tag("a") == "000000");
        assert!(blackhole_metric("a") < BLACKHOLE_METRIC_BASE + (1 << 24));
        assert_ne!(blackhole_metric("a"), blackhole_metric("b"));
    }
}
