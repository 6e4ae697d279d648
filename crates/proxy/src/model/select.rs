//! Which endpoints a packet may reach (kube-proxy's `CategorizeEndpoints`, without topology hints).
//!
//! "Usable" means ready; when no endpoint is ready, endpoints that are serving while terminating
//! are used instead, so a rollout's last pods keep answering. The fallback is decided separately
//! for the Cluster set and the Local set.

use super::{Endpoint, ServicePort};

/// The endpoints one Service port uses on this node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Categorized<'a> {
    /// Endpoints for Cluster traffic policy; empty when the port never uses Cluster policy.
    pub cluster: Vec<&'a Endpoint>,
    /// Endpoints on this node for Local traffic policy; empty when the port never uses Local policy.
    pub local: Vec<&'a Endpoint>,
    /// Whether any usable endpoint exists anywhere in the cluster (a Local-only port may have
    /// usable endpoints elsewhere yet none here: its traffic is dropped, not rejected).
    pub has_any: bool,
}

impl Categorized<'_> {
    /// The union of `cluster` and `local`: every endpoint this node may forward to.
    pub fn reachable(&self) -> Vec<&Endpoint> {
        let mut all: Vec<&Endpoint> = self.cluster.iter().chain(self.local.iter()).copied().collect();
        all.sort();
        all.dedup();
        all
    }
}

/// Whether this port sends some traffic to endpoints on any node.
pub fn uses_cluster_endpoints(port: &ServicePort) -> bool {
    !port.internal_policy_local() || (port.externally_accessible() && !port.external_policy_local())
}

/// Whether this port sends some traffic only to endpoints on this node.
pub fn uses_local_endpoints(port: &ServicePort) -> bool {
    port.internal_policy_local() || port.external_policy_local()
}

/// Splits `port.endpoints` into the Cluster and Local sets.
pub fn categorize(port: &ServicePort) -> Categorized<'_> {
    let endpoints = &port.endpoints;
    let mut out = Categorized::default();
    if endpoints.is_empty() {
        return out;
    }
    if uses_cluster_endpoints(port) {
        out.cluster = endpoints.iter().filter(|e| e.ready).collect();
        if out.cluster.is_empty() {
            out.cluster = endpoints.iter().filter(|e| serving_terminating(e)).collect();
        }
        out.has_any = !out.cluster.is_empty();
    }
    if !uses_local_endpoints(port) {
        return out;
    }
    out.has_any |= endpoints.iter().any(|e| e.ready || serving_terminating(e));
    out.local = endpoints.iter().filter(|e| e.is_local && e.ready).collect();
    if out.local.is_empty() {
        out.local = endpoints
            .iter()
            .filter(|e| e.is_local && serving_terminating(e))
            .collect();
    }
    out
}

fn serving_terminating(endpoint: &Endpoint) -> bool {
    endpoint.serving && endpoint.terminating
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Protocol, ServicePortName, ServiceRef, TrafficPolicy};
    use std::net::Ipv4Addr;

    fn ep(last: u8, ready: bool, serving: bool, terminating: bool, local: bool) -> Endpoint {
        Endpoint {
            ip: Ipv4Addr::new(10, 244, 0, last),
            port: 80,
            ready,
            serving,
            terminating,
            node_name: Some(if local { "here" } else { "there" }.into()),
            is_local: local,
        }
    }

    fn port(endpoints: Vec<Endpoint>, itp: TrafficPolicy, etp: TrafficPolicy, node_port: bool) -> ServicePort {
        ServicePort {
            name: ServicePortName {
                service: ServiceRef::new("ns", "svc"),
                port_name: String::new(),
                protocol: Protocol::Tcp,
            },
            cluster_ips: vec![Ipv4Addr::new(10, 96, 0, 5)],
            port: 80,
            node_port: node_port.then_some(30080),
            load_balancer_ips: vec![],
            external_ips: vec![],
            affinity_timeout: None,
            external_policy: etp,
            internal_policy: itp,
            health_check_node_port: None,
            endpoints,
        }
    }

    fn ips(eps: &[&Endpoint]) -> Vec<u8> {
        eps.iter().map(|e| e.ip.octets()[3]).collect()
    }

    #[test]
    fn ready_endpoints_are_used_and_terminating_ones_are_ignored_while_any_is_ready() {
        let p = port(
            vec![ep(1, true, true, false, false), ep(2, false, true, true, true)],
            TrafficPolicy::Cluster,
            TrafficPolicy::Cluster,
            false,
        );
        let c = categorize(&p);
        assert_eq!(ips(&c.cluster), vec![1]);
        assert!(c.local.is_empty());
        assert!(c.has_any);
    }

    #[test]
    fn serving_terminating_endpoints_are_the_fallback_when_none_is_ready() {
        let p = port(
            vec![
                ep(1, false, false, true, false),
                ep(2, false, true, true, false),
                ep(3, false, false, false, false),
            ],
            TrafficPolicy::Cluster,
            TrafficPolicy::Cluster,
            false,
        );
        assert_eq!(ips(&categorize(&p).cluster), vec![2]);
    }

    #[test]
    fn a_port_whose_endpoints_are_all_unready_has_none_at_all() {
        let p = port(
            vec![ep(1, false, false, false, true)],
            TrafficPolicy::Cluster,
            TrafficPolicy::Cluster,
            true,
        );
        let c = categorize(&p);
        assert!(c.cluster.is_empty() && c.local.is_empty() && !c.has_any);
    }

    #[test]
    fn external_policy_local_keeps_only_endpoints_on_this_node_and_cluster_ip_still_uses_all() {
        let p = port(
            vec![ep(1, true, true, false, true), ep(2, true, true, false, false)],
            TrafficPolicy::Cluster,
            TrafficPolicy::Local,
            true,
        );
        let c = categorize(&p);
        assert_eq!(ips(&c.cluster), vec![1, 2]);
        assert_eq!(ips(&c.local), vec![1]);
        assert_eq!(ips(&c.reachable()), vec![1, 2]);
    }

    #[test]
    fn internal_policy_local_without_external_access_never_uses_cluster_endpoints() {
        let p = port(
            vec![ep(1, true, true, false, false)],
            TrafficPolicy::Local,
            TrafficPolicy::Cluster,
            false,
        );
        let c = categorize(&p);
        assert!(c.cluster.is_empty());
        assert!(c.local.is_empty());
        assert!(
            c.has_any,
            "a remote ready endpoint exists, so traffic is dropped rather than rejected"
        );
    }

    #[test]
    fn local_fallback_to_serving_terminating_is_decided_apart_from_cluster() {
        let p = port(
            vec![ep(1, false, true, true, true), ep(2, true, true, false, false)],
            TrafficPolicy::Cluster,
            TrafficPolicy::Local,
            true,
        );
        let c = categorize(&p);
        assert_eq!(ips(&c.cluster), vec![2]);
        assert_eq!(ips(&c.local), vec![1]);
        assert_eq!(ips(&c.reachable()), vec![1, 2]);
    }

    #[test]
    fn external_policy_local_is_ignored_for_a_port_without_external_addresses() {
        let p = port(
            vec![ep(2, true, true, false, false)],
            TrafficPolicy::Cluster,
            TrafficPolicy::Local,
            false,
        );
        assert!(!uses_local_endpoints(&p));
        assert_eq!(ips(&categorize(&p).cluster), vec![2]);
    }
}
