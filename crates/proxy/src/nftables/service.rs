//! The rules of one Service port, as data: its chains, affinity sets and map elements.
//!
//! Both the full and the incremental script are built from these, so a port renders the same
//! way whichever path programs it, and an update can delete exactly what the previous render
//! added.

use std::collections::BTreeMap;

use super::names::{
    self, MARK_FOR_MASQUERADE, NO_ENDPOINT_NODEPORTS, NO_ENDPOINT_SERVICES, REJECT, SERVICE_IPS, SERVICE_NODEPORTS,
};
use crate::config::Ipv4Cidr;
use crate::model::select::{categorize, uses_cluster_endpoints};
use crate::model::{Endpoint, ServicePort};

/// What the renderer needs besides the Service table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderConfig {
    /// The cluster-wide pod network: traffic from outside it is masqueraded on its way to a
    /// cluster IP, and pods reaching external addresses count as in-cluster.
    pub pod_cidr: Ipv4Cidr,
}

/// One element of a verdict map, or of a counter set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Element {
    /// The map's (or set's) name.
    pub map: &'static str,
    /// The key, in nft syntax (`10.96.0.10 . tcp . 80`).
    pub key: String,
    /// The verdict (`goto service-...`, `goto reject-chain`, `drop`); for an element of a
    /// counter set, its comment instead (`comment "..."`).
    pub verdict: String,
}

impl Element {
    /// The element as `add element` writes it: `key : verdict` in a map, `key comment "..."`
    /// in a counter set.
    pub fn body(&self) -> String {
        if self.map == names::ENDPOINT_BYTES || self.map == names::ENDPOINT_CONNECTIONS {
            format!("{} {}", self.key, self.verdict)
        } else {
            format!("{} : {}", self.key, self.verdict)
        }
    }
}

/// Everything one Service port owns in the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortRules {
    /// Chains by name, each with its rules in order.
    pub chains: BTreeMap<String, Vec<String>>,
    /// Affinity sets by name, with their timeout in seconds.
    pub sets: BTreeMap<String, u32>,
    /// Verdict map elements.
    pub elements: Vec<Element>,
    /// Each endpoint's conntrack mark and label: one element in each counter set
    /// (`endpoint-connections`, `endpoint-bytes`). Kept apart from `elements`, which are all
    /// verdicts.
    pub endpoint_marks: BTreeMap<u32, String>,
}

/// Renders one Service port (kube-proxy's per-service-port logic in nftables mode).
pub fn port_rules(port: &ServicePort, config: &RenderConfig) -> PortRules {
    let mut out = PortRules::default();
    let name = &port.name;
    let proto = name.protocol.as_str();
    let eps = categorize(port);

    let cluster_chain = names::service_chain(name);
    let local_chain = names::local_chain(name);
    let external_chain = names::external_chain(name);
    let has_cluster_chain = !eps.cluster.is_empty() && uses_cluster_endpoints(port);
    let has_local_chain = !eps.local.is_empty() && (port.internal_policy_local() || port.external_policy_local());

    let (internal_chain, has_internal) = if port.internal_policy_local() {
        (&local_chain, has_local_chain)
    } else {
        (&cluster_chain, eps.has_any)
    };
    let (external_policy_chain, has_external) = if port.external_policy_local() {
        (&local_chain, has_local_chain)
    } else {
        (&cluster_chain, eps.has_any)
    };
    // The external chain exists whenever anything is usable: with externalTrafficPolicy Local it
    // still carries pod and host traffic to the Cluster chain even when no endpoint is local.
    let uses_external_chain = eps.has_any && port.externally_accessible();
    // No endpoint anywhere refuses the connection at once; endpoints only elsewhere (Local
    // policy) drop what did not short-circuit, as upstream does.
    let no_endpoint_verdict = |usable_somewhere: bool| {
        if usable_somewhere {
            "drop".to_string()
        } else {
            format!("goto {REJECT}")
        }
    };

    for ep in eps.reachable() {
        endpoint_rules(&mut out, port, ep);
    }
    if has_cluster_chain {
        let mut rules = Vec::new();
        for ip in &port.cluster_ips {
            rules.push(format!(
                "ip daddr {ip} {proto} dport {} ip saddr != {} jump {MARK_FOR_MASQUERADE}",
                port.port, config.pod_cidr
            ));
        }
        rules.extend(spread(port, &eps.cluster));
        out.chains.insert(cluster_chain.clone(), rules);
    }
    if has_local_chain {
        out.chains.insert(local_chain.clone(), spread(port, &eps.local));
    }
    if uses_external_chain {
        let mut rules = Vec::new();
        if !port.external_policy_local() {
            // The endpoint may be on another node: masquerade so the reply comes back here.
            rules.push(format!("jump {MARK_FOR_MASQUERADE}"));
        } else if has_cluster_chain {
            // Pods and the node itself reach external addresses as if through the load balancer
            // and back: neither traffic policy applies. Host traffic needs masquerade because its
            // source is the node's own (possibly the external) address.
            rules.push(format!("ip saddr {} goto {cluster_chain}", config.pod_cidr));
            rules.push(format!("fib saddr type local jump {MARK_FOR_MASQUERADE}"));
            rules.push(format!("fib saddr type local goto {cluster_chain}"));
        }
        if has_external {
            rules.push(format!("goto {external_policy_chain}"));
        }
        out.chains.insert(external_chain.clone(), rules);
    }

    for ip in &port.cluster_ips {
        let key = format!("{ip} . {proto} . {}", port.port);
        if has_internal {
            out.elements
                .push(element(SERVICE_IPS, key, format!("goto {internal_chain}")));
        } else {
            out.elements
                .push(element(NO_ENDPOINT_SERVICES, key, no_endpoint_verdict(eps.has_any)));
        }
    }
    for ip in port.external_ips.iter().chain(&port.load_balancer_ips) {
        let key = format!("{ip} . {proto} . {}", port.port);
        if uses_external_chain {
            out.elements
                .push(element(SERVICE_IPS, key.clone(), format!("goto {external_chain}")));
        }
        if !has_external {
            out.elements
                .push(element(NO_ENDPOINT_SERVICES, key, no_endpoint_verdict(eps.has_any)));
        }
    }
    if let Some(node_port) = port.node_port {
        let key = format!("{proto} . {node_port}");
        if uses_external_chain {
            out.elements.push(element(
                SERVICE_NODEPORTS,
                key.clone(),
                format!("goto {external_chain}"),
            ));
        }
        if !has_external {
            out.elements
                .push(element(NO_ENDPOINT_NODEPORTS, key, no_endpoint_verdict(eps.has_any)));
        }
    }
    out
}

/// The rules that pick one endpoint: an affinity hit first, then a random choice.
///
/// The random choice is a cascade, as kube-proxy's iptables mode spreads: the first of N
/// endpoints takes 1/N of the flows, the next 1/(N-1) of the rest, ..., the last all that is
/// left, so each gets 1/N. A `numgen random mod N vmap { ... }` says the same in one rule, but
/// every such rule creates an anonymous map, and the kernel's cost of adding thousands of sets
/// to a table grows with the square of their number (10,000 Services: 141 s to load the table
/// with vmaps, under 4 s with cascades).
fn spread(port: &ServicePort, endpoints: &[&Endpoint]) -> Vec<String> {
    let mut rules = Vec::new();
    if port.affinity_timeout.is_some() {
        for ep in endpoints {
            rules.push(format!(
                "ip saddr @{} goto {}",
                names::affinity_set(&port.name, ep.ip, ep.port),
                names::endpoint_chain(&port.name, ep.ip, ep.port)
            ));
        }
    }
    let n = endpoints.len();
    for (i, ep) in endpoints.iter().enumerate() {
        let chain = names::endpoint_chain(&port.name, ep.ip, ep.port);
        let left = n - i;
        rules.push(if left > 1 {
            format!("numgen random mod {left} == 0 goto {chain}")
        } else {
            format!("goto {chain}")
        });
    }
    rules
}

fn endpoint_rules(out: &mut PortRules, port: &ServicePort, ep: &Endpoint) {
    let chain = names::endpoint_chain(&port.name, ep.ip, ep.port);
    // Hairpin: a pod reaching itself through its Service must see the reply come from the
    // Service, so its own packets are masqueraded.
    let mut rules = vec![format!("ip saddr {} jump {MARK_FOR_MASQUERADE}", ep.ip)];
    if let Some(timeout) = port.affinity_timeout {
        let set = names::affinity_set(&port.name, ep.ip, ep.port);
        rules.push(format!("update @{set} {{ ip saddr }}"));
        out.sets.insert(set, timeout);
    }
    // Only a flow's first packet traverses a NAT chain, so the lookup counts connections on the
    // mark's element in the connections set; the mark lets every later packet of the flow find
    // its element in the bytes set. Counters on set elements instead of named counter objects:
    // nft reads every object of the table before each transaction, which made an update beside
    // 10,000 Services take 130 ms longer, and loading them doubled a full sync.
    let mark = names::endpoint_mark(&port.name, ep.ip, ep.port);
    rules.push(format!(
        "ct mark set {mark:#010x} ct mark @{}",
        names::ENDPOINT_CONNECTIONS
    ));
    out.endpoint_marks
        .insert(mark, names::endpoint_label(&port.name, ep.ip, ep.port));
    rules.push(format!(
        "meta l4proto {} dnat to {}:{}",
        port.name.protocol.as_str(),
        ep.ip,
        ep.port
    ));
    out.chains.insert(chain, rules);
}

impl PortRules {
    /// Every element: the counter sets' (connections, then bytes, per endpoint), then the
    /// verdicts.
    pub fn all_elements(&self) -> impl Iterator<Item = Element> + '_ {
        let marks = self.endpoint_marks.iter().flat_map(|(mark, label)| {
            [names::ENDPOINT_CONNECTIONS, names::ENDPOINT_BYTES].map(|set| Element {
                map: set,
                key: format!("{mark:#010x}"),
                verdict: format!("comment \"{label}\""),
            })
        });
        marks.chain(self.elements.iter().cloned())
    }
}

fn element(map: &'static str, key: String, verdict: String) -> Element {
    Element { map, key, verdict }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
