//! From Services and EndpointSlices to what each DNS name stands for, before any encoding.
//!
//! This mirrors how CoreDNS's kubernetes plugin answers (`findServices`, `serviceRecordForIP`):
//! every name maps to a list of entries, each an address with an optional port and the name an
//! SRV record would point at (CoreDNS's `msg.Service`). The record types are derived from that
//! list afterwards ([`super::render`]), so A, AAAA and SRV can never disagree about a name.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::names;

/// The label an EndpointSlice names its Service with.
pub(crate) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// One thing a name stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The address A/AAAA answer with.
    pub ip: IpAddr,
    /// The port SRV answers with; `None` for an endpoint slice without ports (CoreDNS's
    /// port -1 sentinel: the name exists, but has no SRV record).
    pub port: Option<u16>,
    /// The SRV target: the Service's name for a virtual IP, the endpoint's own name otherwise
    /// (shared: every entry of a name points at the same few targets).
    pub target: Arc<str>,
}

/// What a name is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Spec {
    /// Addresses (with ports), never empty.
    Entries(Vec<Entry>),
    /// An ExternalName Service: a CNAME to this name.
    External(String),
}

/// Every name of the cluster zone, and the reverse names.
#[derive(Debug, Default)]
pub(crate) struct Model {
    /// Full lowercase names to what they stand for. Entry order within a name follows the
    /// sorted Services, so answers are deterministic although the map is not ordered.
    pub names: HashMap<Box<str>, Spec>,
    /// Addresses to the names PTR answers with: a Service's name for its ClusterIPs, else the
    /// names of every ready endpoint with that address.
    pub reverse: BTreeMap<IpAddr, Vec<String>>,
    /// Namespaces known to exist.
    pub namespaces: BTreeSet<String>,
    /// The largest resourceVersion seen, for the SOA serial.
    pub serial: u64,
}

/// A port of an EndpointSlice as a DNS name filter sees it.
struct SlicePort {
    name: String,
    protocol: String,
    port: Option<u16>,
}

/// A ready endpoint address.
struct Ready {
    ip: IpAddr,
    label: String,
}

/// One EndpointSlice, reduced to its ready addresses and ports.
struct SliceView {
    ports: Vec<SlicePort>,
    ready: Vec<Ready>,
}

/// Builds the model for `zone` (already normalized by [`names::zone`]).
pub(crate) fn build<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    zone: &str,
) -> Model {
    let mut model = Model::default();
    let mut by_service: HashMap<(String, String), Vec<SliceView>> = HashMap::new();
    for slice in slices {
        model.serial = model.serial.max(resource_version(&slice.metadata));
        let Some(view) = slice_view(slice) else { continue };
        let ns = slice.metadata.namespace.clone().unwrap_or_default();
        let Some(svc) = slice.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL)) else {
            continue;
        };
        by_service.entry((ns, svc.clone())).or_default().push(view);
    }

    let mut services: Vec<&Service> = services.into_iter().collect();
    services.sort_by(|a, b| (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name)));
    for svc in services {
        model.serial = model.serial.max(resource_version(&svc.metadata));
        let (Some(name), Some(ns)) = (svc.metadata.name.as_deref(), svc.metadata.namespace.as_deref()) else {
            continue;
        };
        model.namespaces.insert(ns.to_ascii_lowercase());
        let views = by_service
            .get(&(ns.to_string(), name.to_string()))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        add_service(&mut model, svc, name, ns, views, zone);
    }

    // Endpoint PTRs cover every slice, with or without a Service, as CoreDNS's reverse index
    // does; a ClusterIP answers for its Service alone.
    let mut endpoint_ptrs: BTreeMap<IpAddr, Vec<String>> = BTreeMap::new();
    let mut keys: Vec<_> = by_service.keys().collect();
    keys.sort();
    for key in keys {
        let fqdn = names::service(&key.1, &key.0, zone);
        for view in &by_service[key] {
            for r in &view.ready {
                let target = names::endpoint(&r.label, &fqdn);
                let list = endpoint_ptrs.entry(r.ip).or_default();
                if !list.contains(&target) {
                    list.push(target);
                }
            }
        }
    }
    for (ip, list) in endpoint_ptrs {
        model.reverse.entry(ip).or_insert(list);
    }
    model
}

fn resource_version(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> u64 {
    meta.resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn slice_view(slice: &EndpointSlice) -> Option<SliceView> {
    if slice.address_type != "IPv4" && slice.address_type != "IPv6" {
        return None;
    }
    let mut ports: Vec<SlicePort> = slice
        .ports
        .iter()
        .flatten()
        .map(|p| SlicePort {
            name: p.name.clone().unwrap_or_default().to_ascii_lowercase(),
            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()).to_ascii_lowercase(),
            port: p.port.and_then(|p| u16::try_from(p).ok()),
        })
        .collect();
    if ports.is_empty() {
        ports.push(SlicePort {
            name: String::new(),
            protocol: String::new(),
            port: None,
        });
    }
    let mut ready = Vec::new();
    for ep in &slice.endpoints {
        // A missing `ready` condition means unknown, which consumers read as ready.
        if ep.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
            continue;
        }
        for addr in &ep.addresses {
            let Ok(ip) = addr.parse::<IpAddr>() else { continue };
            ready.push(Ready {
                ip,
                label: names::endpoint_label(ep.hostname.as_deref(), addr),
            });
        }
    }
    Some(SliceView { ports, ready })
}

fn push(model: &mut Model, name: &Arc<str>, entry: Entry) {
    let spec = match model.names.get_mut(&**name) {
        Some(spec) => spec,
        None => model
            .names
            .entry(Box::from(&**name))
            .or_insert_with(|| Spec::Entries(Vec::new())),
    };
    match spec {
        Spec::Entries(list) => list.push(entry),
        // An ExternalName owns its name; an endpoint can not be named like it.
        Spec::External(_) => {}
    }
}

fn add_service(model: &mut Model, svc: &Service, name: &str, ns: &str, views: &[SliceView], zone: &str) {
    let fqdn = names::service(name, ns, zone);
    let Some(spec) = svc.spec.as_ref() else {
        return;
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        let target = spec.external_name.as_deref().unwrap_or("").trim_end_matches('.');
        // CoreDNS answers an ExternalName only when it is a name: an address there is
        // NXDOMAIN.
        if !target.is_empty() && target.parse::<IpAddr>().is_err() {
            model
                .names
                .insert(fqdn.into_boxed_str(), Spec::External(target.to_string()));
        }
        return;
    }
    let cluster_ips: Vec<&str> = match spec.cluster_ips.as_deref() {
        Some(ips) if !ips.is_empty() => ips.iter().map(String::as_str).collect(),
        _ => spec.cluster_ip.as_deref().into_iter().collect(),
    };
    let headless = cluster_ips.first() == Some(&"None");
    let ips: Vec<IpAddr> = cluster_ips.iter().filter_map(|ip| ip.parse().ok()).collect();

    // Every endpoint has its own name, headless or not (CoreDNS's endpoint query).
    let fqdn: Arc<str> = Arc::from(fqdn);
    for view in views {
        let srv_names: Vec<Option<Arc<str>>> = view
            .ports
            .iter()
            .map(|p| (headless && !p.name.is_empty()).then(|| Arc::from(names::srv(&p.name, &p.protocol, &fqdn))))
            .collect();
        for r in &view.ready {
            let own: Arc<str> = Arc::from(names::endpoint(&r.label, &fqdn));
            for (p, srv) in view.ports.iter().zip(&srv_names) {
                let entry = Entry {
                    ip: r.ip,
                    port: p.port,
                    target: own.clone(),
                };
                push(model, &own, entry.clone());
                if headless {
                    push(model, &fqdn, entry.clone());
                    if let Some(srv) = srv {
                        push(model, srv, entry);
                    }
                }
            }
        }
    }
    if headless {
        return;
    }
    for p in spec.ports.iter().flatten() {
        let Ok(port) = u16::try_from(p.port) else { continue };
        let pname = p.name.as_deref().unwrap_or("");
        let proto = p.protocol.as_deref().unwrap_or("TCP");
        let srv: Option<Arc<str>> = (!pname.is_empty()).then(|| Arc::from(names::srv(pname, proto, &fqdn)));
        for ip in &ips {
            let entry = Entry {
                ip: *ip,
                port: Some(port),
                target: fqdn.clone(),
            };
            push(model, &fqdn, entry.clone());
            if let Some(srv) = &srv {
                push(model, srv, entry);
            }
        }
    }
    for ip in &ips {
        model.reverse.entry(*ip).or_insert_with(|| vec![fqdn.to_string()]);
    }
}
