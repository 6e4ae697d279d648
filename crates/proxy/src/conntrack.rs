//! Clearing stale UDP conntrack entries.
//!
//! NAT is decided on a flow's first packet; conntrack then rewrites every later packet the
//! same way. UDP has no close, so a client that keeps sending from one port keeps reaching an
//! endpoint that is gone (or keeps being refused after the Service gained endpoints) until the
//! entry times out. kube-proxy deletes those entries; so does this module, with the `conntrack`
//! tool (Debian package `conntrack`).

use std::net::Ipv4Addr;
use std::process::Stdio;

use async_trait::async_trait;
use tokio::process::Command;

use crate::model::select::categorize;
use crate::model::tracker::ServiceChange;
use crate::model::{Protocol, ServicePort};

/// Which UDP conntrack entries to delete.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowFilter {
    /// The original destination address; `None` for NodePorts (any local address).
    pub orig_dst: Option<Ipv4Addr>,
    /// The original destination port.
    pub orig_port: u16,
    /// Only flows NATed to this endpoint; `None` for every flow to the destination.
    pub dst_nat: Option<Ipv4Addr>,
}

impl FlowFilter {
    /// The `conntrack` arguments that delete the matching entries.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec!["-D".into(), "-p".into(), "udp".into()];
        if let Some(dst) = self.orig_dst {
            args.extend(["--orig-dst".into(), dst.to_string()]);
        }
        args.extend(["--orig-port-dst".into(), self.orig_port.to_string()]);
        if let Some(ep) = self.dst_nat {
            args.extend(["--dst-nat".into(), ep.to_string()]);
        }
        args
    }
}

/// The UDP flows that `changes` made stale: flows to an endpoint that is no longer used, and
/// flows refused while a Service had no endpoints once it has some.
pub fn stale_udp_flows(changes: &[ServiceChange]) -> Vec<FlowFilter> {
    let mut out = Vec::new();
    for change in changes {
        for old in change.previous.iter().filter(|p| p.name.protocol == Protocol::Udp) {
            let new = change.current.iter().find(|p| p.name == old.name);
            let old_eps: Vec<Ipv4Addr> = categorize(old).reachable().iter().map(|e| e.ip).collect();
            let new_eps: Vec<Ipv4Addr> = new
                .map(|n| categorize(n).reachable().iter().map(|e| e.ip).collect())
                .unwrap_or_default();
            for gone in old_eps.iter().filter(|ip| !new_eps.contains(ip)) {
                push_all(&mut out, old, Some(*gone));
            }
            if old_eps.is_empty() && !new_eps.is_empty() {
                push_all(&mut out, new.unwrap_or(old), None);
            }
        }
        // A UDP port that is new to the Service may also have been refused before (a port
        // added with endpoints at once): nothing was NATed to it, so nothing is stale.
    }
    out.sort();
    out.dedup();
    out
}

fn push_all(out: &mut Vec<FlowFilter>, port: &ServicePort, dst_nat: Option<Ipv4Addr>) {
    let vips = port
        .cluster_ips
        .iter()
        .chain(&port.external_ips)
        .chain(&port.load_balancer_ips);
    for vip in vips {
        out.push(FlowFilter {
            orig_dst: Some(*vip),
            orig_port: port.port,
            dst_nat,
        });
    }
    if let Some(node_port) = port.node_port {
        out.push(FlowFilter {
            orig_dst: None,
            orig_port: node_port,
            dst_nat,
        });
    }
}

/// Something that deletes conntrack entries.
#[async_trait]
pub trait Conntrack: Send + Sync {
    /// Deletes the entries `filter` matches; matching none is success.
    async fn delete(&self, filter: &FlowFilter) -> Result<(), String>;
}

/// The `conntrack` program, run in the current network namespace.
#[derive(Debug, Clone, Default)]
pub struct ConntrackCommand;

#[async_trait]
impl Conntrack for ConntrackCommand {
    async fn delete(&self, filter: &FlowFilter) -> Result<(), String> {
        let out = Command::new("conntrack")
            .args(filter.args())
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| format!("cannot run conntrack: {e}; install the conntrack package"))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        // conntrack exits 1 when nothing matched; that is the common, healthy case.
        if out.status.success() || stderr.contains("0 flow entries have been deleted") {
            Ok(())
        } else {
            Err(format!("conntrack {}: {}", filter.args().join(" "), stderr.trim()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, ServicePortName, ServiceRef, TrafficPolicy};

    fn udp(endpoints: &[u8], node_port: Option<u16>) -> ServicePort {
        ServicePort {
            name: ServicePortName {
                service: ServiceRef::new("ns", "dns"),
                port_name: "dns".into(),
                protocol: Protocol::Udp,
            },
            cluster_ips: vec![Ipv4Addr::new(10, 96, 0, 10)],
            port: 53,
            node_port,
            load_balancer_ips: vec![],
            external_ips: vec![],
            affinity_timeout: None,
            external_policy: TrafficPolicy::Cluster,
            internal_policy: TrafficPolicy::Cluster,
            health_check_node_port: None,
            endpoints: endpoints
                .iter()
                .map(|l| Endpoint {
                    ip: Ipv4Addr::new(10, 244, 0, *l),
                    port: 5353,
                    ready: true,
                    serving: true,
                    terminating: false,
                    node_name: None,
                    is_local: false,
                })
                .collect(),
        }
    }

    fn change(previous: Vec<ServicePort>, current: Vec<ServicePort>) -> ServiceChange {
        ServiceChange {
            service: ServiceRef::new("ns", "dns"),
            previous,
            current,
        }
    }

    #[test]
    fn a_removed_udp_endpoint_clears_its_flows_on_every_service_address() {
        let flows = stale_udp_flows(&[change(vec![udp(&[5, 6], Some(30053))], vec![udp(&[6], Some(30053))])]);
        let args: Vec<String> = flows.iter().map(|f| f.args().join(" ")).collect();
        assert_eq!(
            args,
            vec![
                "-D -p udp --orig-port-dst 30053 --dst-nat 10.244.0.5",
                "-D -p udp --orig-dst 10.96.0.10 --orig-port-dst 53 --dst-nat 10.244.0.5",
            ]
        );
    }

    #[test]
    fn a_udp_service_gaining_endpoints_clears_the_refused_flows() {
        let flows = stale_udp_flows(&[change(vec![udp(&[], None)], vec![udp(&[5], None)])]);
        assert_eq!(
            flows,
            vec![FlowFilter {
                orig_dst: Some(Ipv4Addr::new(10, 96, 0, 10)),
                orig_port: 53,
                dst_nat: None
            }]
        );
    }

    #[test]
    fn tcp_changes_and_added_udp_endpoints_clear_nothing() {
        let mut tcp = udp(&[5], None);
        tcp.name.protocol = Protocol::Tcp;
        assert!(stale_udp_flows(&[change(vec![tcp], vec![])]).is_empty());
        assert!(stale_udp_flows(&[change(vec![udp(&[5], None)], vec![udp(&[5, 6], None)])]).is_empty());
    }

    #[test]
    fn a_deleted_udp_service_clears_flows_to_all_its_endpoints() {
        assert_eq!(stale_udp_flows(&[change(vec![udp(&[5, 6], None)], vec![])]).len(), 2);
    }
}
