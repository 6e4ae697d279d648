//! Plan + observation → `ip` commands. Pure, so every repair path is a unit test.
//!
//! Bringing the network up is idempotent by construction: objects that cannot be "replaced"
//! (namespaces, links) are created only when the observation lacks them, and everything else
//! uses iproute2's `replace` or `set`, which succeed whether or not the state is already there.
//! Tearing down deletes only what the observation shows, and tolerates it vanishing meanwhile.

use std::collections::BTreeSet;

use super::names::{self, NODE_IFNAME};
use super::observe::Observed;
use super::plan::NetworkPlan;

/// One `ip` invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpCommand {
    /// The arguments after `ip`.
    pub args: Vec<String>,
    /// Whether "it is already gone" counts as success (deletions).
    pub missing_ok: bool,
}

impl IpCommand {
    fn new(args: &[&str]) -> Self {
        Self {
            args: args.iter().map(|a| a.to_string()).collect(),
            missing_ok: false,
        }
    }

    fn delete(args: &[&str]) -> Self {
        Self {
            missing_ok: true,
            ..Self::new(args)
        }
    }
}

/// The kernel setting each node namespace gets: nodes route pod traffic (their pods' bridge to
/// other nodes), so they forward IPv4. Per namespace; the host's own setting is never touched.
pub const NODE_SYSCTLS: &[&str] = &["net.ipv4.ip_forward=1"];

/// The commands that make the machine match `plan`, given what `seen` shows. Also removes the
/// cluster's nodes and blackhole routes the plan no longer has (a smaller `--nodes`, a changed
/// range), so the result is exactly the plan.
pub fn render_up(plan: &NetworkPlan, seen: &Observed) -> Vec<IpCommand> {
    let bridge = plan.bridge();
    let host = format!("{}/{}", plan.host_ip(), plan.node_cidr().prefix());
    let metric = plan.blackhole_metric().to_string();
    let mut cmds = Vec::new();

    // Leftovers of this cluster that the plan does not have.
    let planned_netns: BTreeSet<&str> = plan.nodes().iter().map(|n| n.netns.as_str()).collect();
    let planned_links: BTreeSet<&str> = plan
        .nodes()
        .iter()
        .map(|n| n.host_veth.as_str())
        .chain([plan.bridge()])
        .collect();
    let planned_blackholes: BTreeSet<_> = plan.blackholes().map(|c| (c, plan.blackhole_metric())).into();
    for link in seen.links.iter().filter(|l| names::is_cluster_link(plan.cluster(), l)) {
        if !planned_links.contains(link.as_str()) {
            cmds.push(IpCommand::delete(&["link", "del", link]));
        }
    }
    for ns in seen.netns.iter().filter(|n| names::is_cluster_netns(plan.cluster(), n)) {
        if !planned_netns.contains(ns.as_str()) {
            cmds.push(IpCommand::delete(&["netns", "del", ns]));
        }
    }
    for (cidr, m) in &seen.blackholes {
        if *m == plan.blackhole_metric() && !planned_blackholes.contains(&(*cidr, *m)) {
            cmds.push(IpCommand::delete(&[
                "route",
                "del",
                "blackhole",
                &cidr.to_string(),
                "metric",
                &metric,
            ]));
        }
    }

    // The host side: the bridge, its address, and the blackholes.
    if !seen.links.contains(bridge) {
        cmds.push(IpCommand::new(&["link", "add", bridge, "type", "bridge"]));
    }
    cmds.push(IpCommand::new(&["addr", "replace", &host, "dev", bridge]));
    cmds.push(IpCommand::new(&["link", "set", bridge, "up"]));
    for cidr in plan.blackholes() {
        cmds.push(IpCommand::new(&[
            "route",
            "replace",
            "blackhole",
            &cidr.to_string(),
            "metric",
            &metric,
        ]));
    }

    for node in plan.nodes() {
        let ns = node.netns.as_str();
        let veth = node.host_veth.as_str();
        let listed = seen.netns.contains(ns);
        let inside = seen.netns_links.get(ns);
        if listed && inside.is_none() {
            // The file exists but is no namespace (a crash inside `ip netns add`): start over.
            cmds.push(IpCommand::delete(&["netns", "del", ns]));
        }
        if inside.is_none() {
            cmds.push(IpCommand::new(&["netns", "add", ns]));
        }
        let has_eth0 = inside.is_some_and(|links| links.contains(NODE_IFNAME));
        let has_veth = seen.links.contains(veth);
        if !(has_eth0 && has_veth) {
            // Half a pair cannot be trusted to be the other half's peer: a namespace deleted
            // moments ago takes its veth with it only when the kernel gets round to freeing it.
            if has_veth {
                cmds.push(IpCommand::delete(&["link", "del", veth]));
            }
            if has_eth0 {
                cmds.push(IpCommand::delete(&["-netns", ns, "link", "del", NODE_IFNAME]));
            }
            // Creating the peer straight inside the namespace, under its final name, leaves no
            // stray `eth0` on the host if we crash between steps.
            cmds.push(IpCommand::new(&[
                "link",
                "add",
                veth,
                "type",
                "veth",
                "peer",
                "name",
                NODE_IFNAME,
                "netns",
                ns,
            ]));
        }
        cmds.push(IpCommand::new(&["link", "set", veth, "master", bridge, "up"]));
        let addr = format!("{}/{}", node.ip, plan.node_cidr().prefix());
        cmds.push(IpCommand::new(&[
            "-netns",
            ns,
            "addr",
            "replace",
            &addr,
            "dev",
            NODE_IFNAME,
        ]));
        cmds.push(IpCommand::new(&["-netns", ns, "link", "set", "lo", "up"]));
        cmds.push(IpCommand::new(&["-netns", ns, "link", "set", NODE_IFNAME, "up"]));
        let gateway = plan.host_ip().to_string();
        cmds.push(IpCommand::new(&[
            "-netns", ns, "route", "replace", "default", "via", &gateway,
        ]));
        for sysctl in NODE_SYSCTLS {
            cmds.push(IpCommand::new(&["netns", "exec", ns, "sysctl", "-q", "-w", sysctl]));
        }
        for other in plan.nodes().iter().filter(|o| o.index != node.index) {
            let (dst, via) = (other.pod_cidr.to_string(), other.ip.to_string());
            cmds.push(IpCommand::new(&["-netns", ns, "route", "replace", &dst, "via", &via]));
        }
    }
    cmds
}

/// The commands that remove everything of `cluster` that `seen` shows, recognised by name
/// (namespaces, links) and by metric (blackhole routes), so they also clean up after a crash
/// without knowing the node count or ranges. Veths go first: deleting one removes its peer at
/// once, whereas a deleted namespace's links linger until the kernel frees it.
pub fn render_teardown(cluster: &str, seen: &Observed) -> Vec<IpCommand> {
    let bridge = names::bridge_name(cluster);
    let metric = names::blackhole_metric(cluster);
    let ours = |l: &&String| names::is_cluster_link(cluster, l);
    let veths = seen.links.iter().filter(ours).filter(|l| **l != bridge);
    let mut cmds: Vec<IpCommand> = veths.map(|l| IpCommand::delete(&["link", "del", l])).collect();
    for ns in seen.netns.iter().filter(|n| names::is_cluster_netns(cluster, n)) {
        cmds.push(IpCommand::delete(&["netns", "del", ns]));
    }
    if seen.links.contains(&bridge) {
        cmds.push(IpCommand::delete(&["link", "del", &bridge]));
    }
    for (cidr, m) in seen.blackholes.iter().filter(|(_, m)| *m == metric) {
        cmds.push(IpCommand::delete(&[
            "route",
            "del",
            "blackhole",
            &cidr.to_string(),
            "metric",
            &m.to_string(),
        ]));
    }
    cmds
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
