//! From Kubernetes objects to [`ServicePort`]s: the only place that reads Service and
//! EndpointSlice fields.

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::{Endpoint, NodeContext, Protocol, ServicePort, ServicePortName, ServiceRef, TrafficPolicy};

/// The label an EndpointSlice carries naming its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The ClientIP affinity timeout when `sessionAffinityConfig` says none (the API default, 3 h).
pub const DEFAULT_AFFINITY_TIMEOUT_SECONDS: u32 = 10800;

/// The Service an EndpointSlice belongs to, from its namespace and `kubernetes.io/service-name` label.
pub fn slice_service(slice: &EndpointSlice) -> Option<ServiceRef> {
    let namespace = slice.metadata.namespace.as_deref()?;
    let name = slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    Some(ServiceRef::new(namespace, name.as_str()))
}

/// The Service ports `service` asks this node to realise, with endpoints from `slices` (the
/// Service's EndpointSlices; slices of other address types are ignored).
///
/// Returns nothing for Services without a virtual IP: ExternalName, headless (`clusterIP: None`),
/// or no IPv4 cluster IP (this proxy is IPv4 only). Ports with a protocol other than TCP, UDP
/// or SCTP are skipped, as kube-proxy does.
pub fn service_ports(service: &Service, slices: &[&EndpointSlice], node: &NodeContext) -> Vec<ServicePort> {
    let Some(spec) = service.spec.as_ref() else {
        return Vec::new();
    };
    let service_ref = ServiceRef::new(
        service.metadata.namespace.clone().unwrap_or_default(),
        service.metadata.name.clone().unwrap_or_default(),
    );
    let service_type = spec.type_.as_deref().unwrap_or("ClusterIP");
    if service_type == "ExternalName" {
        return Vec::new();
    }
    let cluster_ips = ipv4s(spec.cluster_ips.iter().flatten().chain(spec.cluster_ip.iter()));
    if cluster_ips.is_empty() {
        return Vec::new();
    }
    let exposes_node_ports = matches!(service_type, "NodePort" | "LoadBalancer");
    let load_balancer_ips = if service_type == "LoadBalancer" {
        let ingress = service
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref());
        // ipMode Proxy means the load balancer itself delivers to the node, so the proxy must not
        // capture the address (upstream's LoadBalancerIPMode).
        ipv4s(
            ingress
                .into_iter()
                .flatten()
                .filter(|i| i.ip_mode.as_deref() != Some("Proxy"))
                .filter_map(|i| i.ip.as_ref()),
        )
    } else {
        Vec::new()
    };
    let external_ips = ipv4s(spec.external_ips.iter().flatten());
    let affinity_timeout = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .and_then(|t| u32::try_from(t).ok())
            .unwrap_or(DEFAULT_AFFINITY_TIMEOUT_SECONDS)
    });
    let external_policy = policy(spec.external_traffic_policy.as_deref());
    let internal_policy = policy(spec.internal_traffic_policy.as_deref());
    let health_check_node_port = (service_type == "LoadBalancer" && external_policy == TrafficPolicy::Local)
        .then(|| spec.health_check_node_port.and_then(port_number))
        .flatten();

    let mut ports = Vec::new();
    for port in spec.ports.iter().flatten() {
        let Some(protocol) = Protocol::parse(port.protocol.as_deref()) else {
            continue;
        };
        let Some(number) = port_number(port.port) else { continue };
        let port_name = port.name.clone().unwrap_or_default();
        let endpoints = endpoints_for(slices, &port_name, protocol, node);
        ports.push(ServicePort {
            name: ServicePortName {
                service: service_ref.clone(),
                port_name,
                protocol,
            },
            cluster_ips: cluster_ips.clone(),
            port: number,
            node_port: if exposes_node_ports {
                port.node_port.and_then(port_number)
            } else {
                None
            },
            load_balancer_ips: load_balancer_ips.clone(),
            external_ips: external_ips.clone(),
            affinity_timeout,
            external_policy,
            internal_policy,
            health_check_node_port,
            endpoints,
        });
    }
    ports.sort_by(|a, b| a.name.cmp(&b.name));
    ports
}

/// The endpoints of one Service port. The Service port's `targetPort` (a number or a container
/// port name) was resolved per pod by the EndpointSlice controller; the slice lists it under the
/// Service port's name, so matching by name and protocol is how a named targetPort resolves.
fn endpoints_for(slices: &[&EndpointSlice], port_name: &str, protocol: Protocol, node: &NodeContext) -> Vec<Endpoint> {
    let mut endpoints = Vec::new();
    for slice in slices.iter().filter(|s| s.address_type == "IPv4") {
        let slice_port = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or("") == port_name && Protocol::parse(p.protocol.as_deref()) == Some(protocol)
        });
        let Some(port) = slice_port.and_then(|p| p.port).and_then(port_number) else {
            continue;
        };
        for endpoint in &slice.endpoints {
            // Upstream uses only the first address: all addresses of one endpoint are fungible.
            let Some(ip) = endpoint.addresses.first().and_then(|a| a.parse::<Ipv4Addr>().ok()) else {
                continue;
            };
            let conditions = endpoint.conditions.as_ref();
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let serving = conditions.and_then(|c| c.serving).unwrap_or(ready);
            let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
            let is_local = endpoint.node_name.as_deref() == Some(node.node_name.as_str());
            endpoints.push(Endpoint {
                ip,
                port,
                ready,
                serving,
                terminating,
                node_name: endpoint.node_name.clone(),
                is_local,
            });
        }
    }
    // One endpoint may sit in two slices while the controller moves it; keep the readier copy.
    endpoints.sort_by_key(|e| (e.ip, e.port, !e.ready, !e.serving));
    endpoints.dedup_by_key(|e| (e.ip, e.port));
    endpoints
}

fn ipv4s<'a>(addresses: impl Iterator<Item = &'a String>) -> Vec<Ipv4Addr> {
    let mut ips = Vec::new();
    for ip in addresses.filter_map(|a| a.parse::<Ipv4Addr>().ok()) {
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    ips
}

fn policy(value: Option<&str>) -> TrafficPolicy {
    match value {
        Some("Local") => TrafficPolicy::Local,
        _ => TrafficPolicy::Cluster,
    }
}

fn port_number(port: i32) -> Option<u16> {
    u16::try_from(port).ok().filter(|p| *p != 0)
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
