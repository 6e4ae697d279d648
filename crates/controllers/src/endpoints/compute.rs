//! What a Service's Endpoints and EndpointSlices should contain, as pure functions over the
//! Service and its pods (upstream `endpoint` and `endpointslice` controllers' pod-to-endpoint
//! conversion): which pods count, ready vs not ready vs terminating, and target ports
//! resolved per pod, including named container ports.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, ObjectReference, Pod, Service, ServicePort,
};
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::podutil::{is_pod_ready, phase};

/// Label on EndpointSlices naming their Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Label on EndpointSlices naming the controller that manages them.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// Our value of [`MANAGED_BY_LABEL`], the upstream controller's name.
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// Label on Endpoints and EndpointSlices of headless Services.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// Most endpoints in one EndpointSlice (upstream `--max-endpoints-per-slice` default).
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// The pod's primary IP, if it has one.
pub fn pod_ip(pod: &Pod) -> Option<&str> {
    let s = pod.status.as_ref()?;
    s.pod_ip
        .as_deref()
        .filter(|ip| !ip.is_empty())
        .or_else(|| s.pod_ips.as_ref()?.first().map(|i| i.ip.as_str()))
}

/// `ShouldPodBeInEndpoints`: has an IP, is not finished for good, and (unless
/// `include_terminating`) is not being deleted.
pub fn should_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    if pod_ip(pod).is_none() {
        return false;
    }
    if !include_terminating && pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let restart = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always");
    match restart {
        "Never" => !matches!(phase(pod), "Failed" | "Succeeded"),
        "OnFailure" => phase(pod) != "Succeeded",
        _ => true,
    }
}

/// `FindPort`: the pod port a Service port targets. A number is used as is; a name is
/// looked up among the pod's container ports of the same protocol.
pub fn find_port(pod: &Pod, sp: &ServicePort) -> Option<i32> {
    let protocol = sp.protocol.as_deref().unwrap_or("TCP");
    match sp.target_port.as_ref() {
        None => Some(sp.port),
        Some(IntOrString::Int(0)) => Some(sp.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            pod.spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find_map(|p| {
                    (p.name.as_deref() == Some(name.as_str()) && p.protocol.as_deref().unwrap_or("TCP") == protocol)
                        .then_some(p.container_port)
                })
        }
    }
}

fn target_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

fn publish_not_ready(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

fn service_ports(svc: &Service) -> &[ServicePort] {
    svc.spec.as_ref().and_then(|s| s.ports.as_deref()).unwrap_or(&[])
}

/// The pod's hostname in DNS, when it sits in the Service's subdomain (`ShouldSetHostname`).
fn hostname(pod: &Pod, svc: &Service) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let h = spec.hostname.as_deref().filter(|h| !h.is_empty())?;
    (spec.subdomain.as_deref() == svc.metadata.name.as_deref()).then(|| h.to_string())
}

/// Labels of the Endpoints object: the Service's, plus the headless marker.
pub fn endpoints_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut l = svc.metadata.labels.clone().unwrap_or_default();
    if is_headless(svc) {
        l.insert(HEADLESS_LABEL.into(), String::new());
    } else {
        l.remove(HEADLESS_LABEL);
    }
    l
}

/// `subsets` of the Service's Endpoints: ready pods under `addresses`, others under
/// `notReadyAddresses`, grouped so addresses with the same resolved ports share a subset
/// (`RepackSubsets`), sorted for a stable result.
pub fn endpoints_subsets(svc: &Service, pods: &[&Pod]) -> Vec<EndpointSubset> {
    let tolerate = publish_not_ready(svc);
    // Key: the resolved ports; value: (ready, not ready) addresses.
    let mut groups: BTreeMap<ResolvedPorts, (Vec<EndpointAddress>, Vec<EndpointAddress>)> = BTreeMap::new();
    for pod in pods {
        if !should_be_in_endpoints(pod, tolerate) {
            continue;
        }
        let Some(ip) = pod_ip(pod) else { continue };
        let addr = EndpointAddress {
            ip: ip.to_string(),
            hostname: hostname(pod, svc),
            node_name: pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .filter(|n| !n.is_empty()),
            target_ref: Some(target_ref(pod)),
        };
        let ports: Vec<(String, i32, String)> = if service_ports(svc).is_empty() && is_headless(svc) {
            Vec::new()
        } else {
            let resolved: Vec<_> = service_ports(svc)
                .iter()
                .filter_map(|sp| {
                    find_port(pod, sp).map(|n| {
                        (
                            sp.name.clone().unwrap_or_default(),
                            n,
                            sp.protocol.clone().unwrap_or_else(|| "TCP".into()),
                        )
                    })
                })
                .collect();
            if resolved.is_empty() {
                continue;
            }
            resolved
        };
        let entry = groups.entry(ports).or_default();
        if tolerate || is_pod_ready(pod) {
            entry.0.push(addr);
        } else {
            entry.1.push(addr);
        }
    }
    let app_protocol = |name: &str| {
        service_ports(svc)
            .iter()
            .find(|p| p.name.as_deref().unwrap_or("") == name)
            .and_then(|p| p.app_protocol.clone())
    };
    groups
        .into_iter()
        .map(|(ports, (mut ready, mut not_ready))| {
            ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!ports.is_empty()).then(|| {
                    ports
                        .into_iter()
                        .map(|(name, port, protocol)| EndpointPort {
                            app_protocol: app_protocol(&name),
                            name: (!name.is_empty()).then_some(name),
                            port,
                            protocol: Some(protocol),
                        })
                        .collect()
                }),
            }
        })
        .collect()
}

/// A pod's resolved ports: (service port name, pod port, protocol).
type ResolvedPorts = Vec<(String, i32, String)>;

/// One group of slice content: the address type, the resolved ports, and endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct SliceGroup {
    /// `IPv4` or `IPv6`.
    pub address_type: String,
    /// Ports, each with `name` set (possibly ""), `port` and `protocol`: kubectl describe
    /// dereferences `name` without checking.
    pub ports: Vec<discovery::EndpointPort>,
    /// Endpoints sorted by address.
    pub endpoints: Vec<discovery::Endpoint>,
}

/// Slice contents for the Service, grouped by address type and resolved port set
/// (upstream `podToEndpoint` and `getEndpointPorts`). Terminating pods are included and
/// marked; `ready` is never true for them unless `publishNotReadyAddresses`.
pub fn slice_groups(svc: &Service, pods: &[&Pod]) -> Vec<SliceGroup> {
    let tolerate = publish_not_ready(svc);
    let mut groups: BTreeMap<(String, ResolvedPorts), Vec<discovery::Endpoint>> = BTreeMap::new();
    for pod in pods {
        if !should_be_in_endpoints(pod, true) {
            continue;
        }
        let Some(ip) = pod_ip(pod) else { continue };
        let address_type = if ip.contains(':') { "IPv6" } else { "IPv4" }.to_string();
        let ports: Vec<(String, i32, String)> = service_ports(svc)
            .iter()
            .filter_map(|sp| {
                find_port(pod, sp).map(|n| {
                    (
                        sp.name.clone().unwrap_or_default(),
                        n,
                        sp.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    )
                })
            })
            .collect();
        let serving = is_pod_ready(pod);
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let ep = discovery::Endpoint {
            addresses: vec![ip.to_string()],
            conditions: Some(discovery::EndpointConditions {
                ready: Some(tolerate || (serving && !terminating)),
                serving: Some(serving),
                terminating: Some(terminating),
            }),
            hostname: hostname(pod, svc),
            node_name: pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .filter(|n| !n.is_empty()),
            target_ref: Some(target_ref(pod)),
            ..Default::default()
        };
        groups.entry((address_type, ports)).or_default().push(ep);
    }
    let app_protocol = |name: &str| {
        service_ports(svc)
            .iter()
            .find(|p| p.name.as_deref().unwrap_or("") == name)
            .and_then(|p| p.app_protocol.clone())
    };
    groups
        .into_iter()
        .map(|((address_type, ports), mut endpoints)| {
            endpoints.sort_by(|a, b| a.addresses.cmp(&b.addresses));
            SliceGroup {
                address_type,
                ports: ports
                    .into_iter()
                    .map(|(name, port, protocol)| discovery::EndpointPort {
                        app_protocol: app_protocol(&name),
                        name: Some(name),
                        port: Some(port),
                        protocol: Some(protocol),
                    })
                    .collect(),
                endpoints,
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "compute_tests.rs"]
mod tests;
