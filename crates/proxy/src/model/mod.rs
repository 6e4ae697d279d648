//! The service model: what every proxy backend must realise on this node, as plain data.
//!
//! [`build::service_ports`] turns one Service and its EndpointSlices into [`ServicePort`]s (one per
//! `spec.ports[]` entry), [`select`] picks the endpoints a packet may reach (kube-proxy's
//! `CategorizeEndpoints`), and [`tracker::ChangeTracker`] keeps a [`ServiceTable`] up to date and
//! says which Services changed since the last sync, so backends can touch only those.

pub mod build;
pub mod select;
pub mod tracker;

#[cfg(test)]
pub(crate) mod fixtures;

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

/// A Service by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceRef {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl ServiceRef {
    /// A reference to `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ServiceRef {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One port of one Service: `namespace/name:portName` (kube-proxy's `ServicePortName`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServicePortName {
    /// The Service.
    pub service: ServiceRef,
    /// `spec.ports[].name`; empty for a single unnamed port.
    pub port_name: String,
    /// `spec.ports[].protocol`: a Service may use one port number for TCP and UDP under one name.
    pub protocol: Protocol,
}

impl fmt::Display for ServicePortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.service, self.port_name, self.protocol.as_str())
    }
}

/// A transport protocol a Service port can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP, the default.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP (nftables backend only).
    Sctp,
}

impl Protocol {
    /// Parses `spec.ports[].protocol`; absent means TCP, as the apiserver defaults it.
    pub fn parse(protocol: Option<&str>) -> Option<Protocol> {
        match protocol.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The lower-case name nftables and conntrack use (`tcp`, `udp`, `sctp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// `externalTrafficPolicy` / `internalTrafficPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrafficPolicy {
    /// Any ready endpoint in the cluster (the default).
    #[default]
    Cluster,
    /// Only endpoints on this node; for external traffic the client source IP is kept.
    Local,
}

/// One endpoint of a Service port, as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    /// The endpoint's address.
    pub ip: Ipv4Addr,
    /// The resolved target port (the EndpointSlice port with the Service port's name).
    pub port: u16,
    /// `conditions.ready` (absent counts as ready, as upstream).
    pub ready: bool,
    /// `conditions.serving` (absent falls back to `ready`).
    pub serving: bool,
    /// `conditions.terminating` (absent counts as not terminating).
    pub terminating: bool,
    /// `nodeName`, when the slice says.
    pub node_name: Option<String>,
    /// Whether `nodeName` is this node.
    pub is_local: bool,
}

/// Everything a backend needs to realise one Service port on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// Which Service port this is.
    pub name: ServicePortName,
    /// The IPv4 cluster IP(s) (`spec.clusterIPs`); never empty.
    pub cluster_ips: Vec<Ipv4Addr>,
    /// `spec.ports[].port`.
    pub port: u16,
    /// `spec.ports[].nodePort`, for NodePort and LoadBalancer Services.
    pub node_port: Option<u16>,
    /// `status.loadBalancer.ingress[].ip` of a LoadBalancer Service (VIP mode only).
    pub load_balancer_ips: Vec<Ipv4Addr>,
    /// `spec.externalIPs`.
    pub external_ips: Vec<Ipv4Addr>,
    /// `sessionAffinity: ClientIP` timeout in seconds; `None` without affinity.
    pub affinity_timeout: Option<u32>,
    /// `spec.externalTrafficPolicy` (only meaningful when [`ServicePort::externally_accessible`]).
    pub external_policy: TrafficPolicy,
    /// `spec.internalTrafficPolicy`.
    pub internal_policy: TrafficPolicy,
    /// `spec.healthCheckNodePort` (LoadBalancer with externalTrafficPolicy Local).
    pub health_check_node_port: Option<u16>,
    /// Every endpoint of this port (sorted, deduplicated), whatever its condition.
    pub endpoints: Vec<Endpoint>,
}

impl ServicePort {
    /// Whether traffic can reach this port other than through its cluster IP.
    pub fn externally_accessible(&self) -> bool {
        self.node_port.is_some() || !self.load_balancer_ips.is_empty() || !self.external_ips.is_empty()
    }

    /// Whether external traffic keeps its source and uses only local endpoints.
    pub fn external_policy_local(&self) -> bool {
        self.externally_accessible() && self.external_policy == TrafficPolicy::Local
    }

    /// Whether cluster-IP traffic uses only local endpoints.
    pub fn internal_policy_local(&self) -> bool {
        self.internal_policy == TrafficPolicy::Local
    }
}

/// The Service ports this node realises, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceTable {
    ports: BTreeMap<ServicePortName, ServicePort>,
}

impl ServiceTable {
    /// An empty table.
    pub fn new() -> Self {
        ServiceTable::default()
    }

    /// Every Service port, ordered by name.
    pub fn ports(&self) -> impl Iterator<Item = &ServicePort> {
        self.ports.values()
    }

    /// The ports of one Service, ordered by name.
    pub fn service(&self, service: &ServiceRef) -> Vec<&ServicePort> {
        self.service_range(service).map(|(_, p)| p).collect()
    }

    /// The entries of one Service: names order by Service first, so they are contiguous.
    fn service_range<'a>(
        &'a self,
        service: &ServiceRef,
    ) -> impl Iterator<Item = (&'a ServicePortName, &'a ServicePort)> + 'a {
        let first = ServicePortName {
            service: service.clone(),
            port_name: String::new(),
            protocol: Protocol::Tcp,
        };
        let owner = service.clone();
        self.ports.range(first..).take_while(move |(n, _)| n.service == owner)
    }

    /// One port by name.
    pub fn get(&self, name: &ServicePortName) -> Option<&ServicePort> {
        self.ports.get(name)
    }

    /// How many Service ports the table holds.
    pub fn len(&self) -> usize {
        self.ports.len()
    }

    /// Whether the table holds no port.
    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }

    /// Replaces the ports of `service` with `ports`, returning the ones it had.
    pub fn replace_service(&mut self, service: &ServiceRef, ports: Vec<ServicePort>) -> Vec<ServicePort> {
        let old_names: Vec<ServicePortName> = self.service_range(service).map(|(n, _)| n.clone()).collect();
        let old = old_names.iter().filter_map(|n| self.ports.remove(n)).collect();
        for port in ports {
            self.ports.insert(port.name.clone(), port);
        }
        old
    }
}

/// Who "this node" is: decides which endpoints are local.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeContext {
    /// The Node's name, compared with endpoints' `nodeName`.
    pub node_name: String,
    /// The node's own IPv4 addresses.
    pub node_ips: Vec<Ipv4Addr>,
}
