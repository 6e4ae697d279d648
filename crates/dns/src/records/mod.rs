//! The answer set: a snapshot of every cluster name, built by a pure function from Services
//! and EndpointSlices and encoded once, so answering is a map lookup and a few copies.
//!
//! A snapshot never changes; a change in the cluster builds a new one and swaps it in whole
//! ([`RecordsHandle`]), so a query sees either the old or the new cluster, never half of each.

mod model;
mod render;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::names;
use crate::wire::{push_name, push_rr, rtype};
pub(crate) use model::Spec;
pub(crate) use render::{push_address, Chain, Family, RrSet, TTL};

/// What a name of the snapshot answers.
#[derive(Debug)]
pub(crate) enum Node {
    /// A Service, one of its named ports, or one of its endpoints.
    Addresses {
        /// A records.
        a: RrSet,
        /// AAAA records.
        aaaa: RrSet,
        /// SRV records with the targets' addresses as additional records.
        srv: RrSet,
    },
    /// An ExternalName Service.
    External {
        /// The name the CNAME points at, as written in the Service.
        target: Box<str>,
        /// The CNAME record.
        cname: RrSet,
        /// A questions follow the chain.
        a: Chain,
        /// AAAA questions follow the chain.
        aaaa: Chain,
    },
}

/// Every answer of the cluster zone, precomputed. Build with [`Records::build`]; share
/// through a [`RecordsHandle`].
#[derive(Debug)]
pub struct Records {
    zone: Box<str>,
    zone_labels: usize,
    nodes: HashMap<Box<str>, Node>,
    reverse: HashMap<IpAddr, RrSet>,
    namespaces: HashSet<Box<str>>,
    /// The SOA record after its owner name (type through RDATA).
    soa_tail: Box<[u8]>,
    synced: bool,
    /// Turns address answers round, per query (relaxed: any spread will do).
    rotation: AtomicU32,
    /// The SOA serial (the newest resourceVersion seen).
    serial: u32,
    /// Set on a layered snapshot: the full snapshot underneath, and the Services whose names
    /// this one answers instead of it.
    layer: Option<Layer>,
    /// Each ExternalName Service whose CNAME chain enters the zone, with the Services whose
    /// names the chain went through: when one of those changes, so does its answer.
    external_deps: Vec<(ServiceKey, Vec<ServiceKey>)>,
}

/// A Service by namespace and name, lowercase.
pub type ServiceKey = (String, String);

/// What a layered snapshot lays itself over.
#[derive(Debug)]
struct Layer {
    base: Arc<Records>,
    /// The names of the Services laid over the base (`<svc>.<ns>.svc.<zone>`), as names so
    /// a query checks its own without allocating.
    names: HashSet<Box<str>>,
}

/// Resolves the in-zone links of CNAME chains while a snapshot is built, and records every
/// name it was asked about (the chain's dependencies).
struct ModelResolver<'a> {
    model: &'a model::Model,
    zone: &'a str,
    /// For a layered build: the full snapshot answering every Service not in the set.
    base: Option<(&'a Records, &'a HashSet<ServiceKey>)>,
    asked: RefCell<Vec<String>>,
}

impl render::Resolve for ModelResolver<'_> {
    fn spec(&self, name: &str) -> Option<Spec> {
        self.asked.borrow_mut().push(name.to_string());
        if let Some(spec) = self.model.names.get(name) {
            return Some(spec.clone());
        }
        if let Some((base, changed)) = self.base {
            match service_key(name, self.zone) {
                Some(key) if changed.contains(&key) => {}
                Some(_) => return base.spec(name),
                None => {}
            }
        }
        // Pod names resolve to the address they spell (CoreDNS `pods insecure`).
        let rel = names::in_zone(name, self.zone)?;
        let mut labels = rel.rsplit('.');
        let (Some(names::POD), Some(ns), Some(pod), None) =
            (labels.next(), labels.next(), labels.next(), labels.next())
        else {
            return None;
        };
        if !self.model.namespaces.contains(ns) {
            return None;
        }
        let ip = names::pod_address(pod)?;
        Some(Spec::Entries(vec![model::Entry {
            ip,
            port: None,
            target: Arc::from(name),
        }]))
    }

    fn in_zone(&self, name: &str) -> bool {
        names::in_zone(name, self.zone).is_some()
    }
}

impl Records {
    /// Builds the snapshot for cluster domain `domain` (`cluster.local`) from every Service
    /// and EndpointSlice. Namespaces holding a Service count as existing; use
    /// [`Records::build_with_namespaces`] to name the others (they decide NXDOMAIN versus
    /// NODATA for `<ns>.svc.<domain>` and pod names).
    pub fn build<'a>(
        services: impl IntoIterator<Item = &'a Service>,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
        domain: &str,
    ) -> Records {
        Records::build_with_namespaces(std::iter::empty::<&str>(), services, slices, domain)
    }

    /// [`Records::build`], with the names of every existing Namespace.
    pub fn build_with_namespaces<'a, N: AsRef<str>>(
        namespaces: impl IntoIterator<Item = N>,
        services: impl IntoIterator<Item = &'a Service>,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
        domain: &str,
    ) -> Records {
        Records::build_over(namespaces, services, slices, domain, None)
    }

    /// The build itself; with `base`, CNAME chains resolve the Services outside the set
    /// through that snapshot.
    fn build_over<'a, N: AsRef<str>>(
        namespaces: impl IntoIterator<Item = N>,
        services: impl IntoIterator<Item = &'a Service>,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
        domain: &str,
        base: Option<(&Records, &HashSet<ServiceKey>)>,
    ) -> Records {
        let zone = names::zone(domain);
        let mut model = model::build(services, slices, &zone);
        model
            .namespaces
            .extend(namespaces.into_iter().map(|n| n.as_ref().to_ascii_lowercase()));
        let resolver = ModelResolver {
            model: &model,
            zone: &zone,
            base,
            asked: RefCell::new(Vec::new()),
        };
        let mut external_deps = Vec::new();
        let nodes = model
            .names
            .iter()
            .map(|(name, spec)| {
                let node = match spec {
                    Spec::Entries(entries) => Node::Addresses {
                        a: render::addresses(entries, Family::V4),
                        aaaa: render::addresses(entries, Family::V6),
                        srv: render::srv(entries),
                    },
                    Spec::External(target) => {
                        let node = Node::External {
                            target: target.as_str().into(),
                            cname: render::name_record(rtype::CNAME, target, TTL),
                            a: render::chain(&resolver, target, Family::V4),
                            aaaa: render::chain(&resolver, target, Family::V6),
                        };
                        let mut deps: Vec<ServiceKey> = resolver
                            .asked
                            .take()
                            .iter()
                            .filter_map(|n| service_key(n, &zone))
                            .collect();
                        deps.sort();
                        deps.dedup();
                        if let (false, Some(own)) = (deps.is_empty(), service_key(name, &zone)) {
                            external_deps.push((own, deps));
                        }
                        node
                    }
                };
                (name.clone(), node)
            })
            .collect();
        let reverse = model
            .reverse
            .iter()
            .map(|(ip, targets)| (*ip, render::ptr(targets)))
            .collect();
        let soa_tail = soa_tail(&zone, model.serial as u32);
        Records {
            serial: model.serial as u32,
            layer: None,
            external_deps,
            zone_labels: zone.split('.').filter(|l| !l.is_empty()).count(),
            zone: zone.into_boxed_str(),
            nodes,
            reverse,
            namespaces: model.namespaces.iter().map(|n| n.clone().into_boxed_str()).collect(),
            soa_tail,
            synced: true,
            rotation: AtomicU32::new(0),
        }
    }

    /// A snapshot answering for the Services in `changed` from `services` and `slices` (the
    /// caller may pass all of them: only those Services and their slices are read) and for
    /// every other name from `base`, the last full snapshot. Building it costs in proportion
    /// to the change, not to the cluster, so a new Service answers at once beside thousands;
    /// a full [`Records::build`] later replaces it. A name of a changed Service that is gone
    /// answers NXDOMAIN at once; its reverse (PTR) records may linger until that rebuild.
    pub fn layered<'a, N: AsRef<str>>(
        base: Arc<Records>,
        namespaces: impl IntoIterator<Item = N>,
        services: impl IntoIterator<Item = &'a Service>,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
        mut changed: HashSet<ServiceKey>,
        domain: &str,
    ) -> Records {
        // Always over a full snapshot: `changed` holds every change since it was built.
        let base = match &base.layer {
            Some(layer) => layer.base.clone(),
            None => base,
        };
        // An ExternalName answers with its chain's addresses, so it changes with any Service
        // the chain went through (one pass: a dependency list holds the whole chain).
        for (external, deps) in &base.external_deps {
            if deps.iter().any(|d| changed.contains(d)) {
                changed.insert(external.clone());
            }
        }
        // Borrowed keys: object names are lowercase, so checking 10,000 objects allocates
        // nothing (allocating two keys each was most of a layered build).
        let wanted: HashSet<(&str, &str)> = changed.iter().map(|(n, s)| (n.as_str(), s.as_str())).collect();
        let is_changed = |ns: Option<&str>, name: &str| {
            let ns = ns.unwrap_or("");
            if ns.bytes().chain(name.bytes()).any(|b| b.is_ascii_uppercase()) {
                let (ns, name) = (ns.to_ascii_lowercase(), name.to_ascii_lowercase());
                return wanted.contains(&(ns.as_str(), name.as_str()));
            }
            wanted.contains(&(ns, name))
        };
        let services = services.into_iter().filter(|s| {
            let m = &s.metadata;
            is_changed(m.namespace.as_deref(), m.name.as_deref().unwrap_or(""))
        });
        let slices = slices.into_iter().filter(|e| {
            let m = &e.metadata;
            let owner = m.labels.as_ref().and_then(|l| l.get(model::SERVICE_NAME_LABEL));
            owner.is_some_and(|o| is_changed(m.namespace.as_deref(), o))
        });
        let mut top = Records::build_over(namespaces, services, slices, domain, Some((&base, &changed)));
        if top.serial < base.serial {
            top.serial = base.serial;
            top.soa_tail = soa_tail(&top.zone, base.serial);
        }
        top.synced = base.synced;
        let names = changed
            .iter()
            .map(|(ns, svc)| names::service(svc, ns, &top.zone).into_boxed_str())
            .collect();
        top.layer = Some(Layer { base, names });
        top
    }

    /// An empty snapshot for a server whose caches have not synced yet: names that would
    /// be NXDOMAIN answer SERVFAIL instead, as CoreDNS does, so no client caches a miss
    /// that is only a cold start.
    pub fn unsynced(domain: &str) -> Records {
        Records {
            synced: false,
            ..Records::build([], [], domain)
        }
    }

    /// The cluster domain, normalized (`cluster.local`).
    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// Number of names in the snapshot (not counting pod and reverse names; for a layered
    /// snapshot, those of the full one underneath).
    pub fn len(&self) -> usize {
        match &self.layer {
            Some(layer) => layer.base.len(),
            None => self.nodes.len(),
        }
    }

    /// True when the snapshot has no names.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this is a layered snapshot (see [`Records::layered`]).
    pub fn is_layered(&self) -> bool {
        self.layer.is_some()
    }

    /// What `name` stands for, read back from the encoded answers (for CNAME chains of a
    /// layered build, which need only the addresses and the next link).
    fn spec(&self, name: &str) -> Option<Spec> {
        match self.node(name)? {
            Node::Addresses { a, aaaa, .. } => {
                let entries: Vec<model::Entry> = [a, aaaa]
                    .into_iter()
                    .flat_map(|set| set.answer.chunks_exact(usize::from(set.rr_len.max(1))))
                    .filter_map(render::address_of)
                    .map(|ip| model::Entry {
                        ip,
                        port: None,
                        target: Arc::from(""),
                    })
                    .collect();
                Some(Spec::Entries(entries))
            }
            Node::External { target, .. } => Some(Spec::External(target.to_string())),
        }
    }

    pub(crate) fn zone_labels(&self) -> usize {
        self.zone_labels
    }

    pub(crate) fn node(&self, name: &str) -> Option<&Node> {
        match &self.layer {
            Some(layer) if !service_name(name, &self.zone).is_some_and(|n| layer.names.contains(n)) => {
                layer.base.node(name)
            }
            _ => self.nodes.get(name),
        }
    }

    pub(crate) fn reverse(&self, ip: &IpAddr) -> Option<&RrSet> {
        self.reverse
            .get(ip)
            .or_else(|| self.layer.as_ref().and_then(|l| l.base.reverse(ip)))
    }

    pub(crate) fn has_namespace(&self, ns: &str) -> bool {
        // A layered snapshot knows the Namespaces and its own Services' namespaces; those of
        // the other Services are the base's.
        self.namespaces.contains(ns) || self.layer.as_ref().is_some_and(|l| l.base.has_namespace(ns))
    }

    pub(crate) fn soa_tail(&self) -> &[u8] {
        &self.soa_tail
    }

    pub(crate) fn synced(&self) -> bool {
        self.synced
    }

    pub(crate) fn next_rotation(&self) -> u32 {
        self.rotation.fetch_add(1, Ordering::Relaxed)
    }
}

/// The Service a name of the zone belongs to (`[...].<svc>.<ns>.svc.<zone>`).
fn service_key(name: &str, zone: &str) -> Option<ServiceKey> {
    let rel = names::in_zone(name, zone)?;
    let mut labels = rel.rsplit('.');
    if labels.next()? != names::SVC {
        return None;
    }
    let ns = labels.next()?;
    let svc = labels.next()?;
    Some((ns.to_string(), svc.to_string()))
}

/// The name of the Service a name of the zone belongs to: `name`'s suffix
/// `<svc>.<ns>.svc.<zone>`.
fn service_name<'n>(name: &'n str, zone: &str) -> Option<&'n str> {
    let rel = names::in_zone(name, zone)?;
    let mut labels = rel.rsplit('.');
    if labels.next()? != names::SVC {
        return None;
    }
    let ns = labels.next()?;
    let svc = labels.next()?;
    // `svc.ns.svc` are the last three labels of `rel`, which starts `name`.
    let start = rel.len() - (svc.len() + ns.len() + names::SVC.len() + 2);
    Some(&name[start..])
}

/// `<zone> SOA ns.dns.<zone> hostmaster.<zone> serial 7200 1800 86400 5`, CoreDNS's SOA; the
/// minimum (5) is the negative-caching TTL clients apply to NXDOMAIN and NODATA.
fn soa_tail(zone: &str, serial: u32) -> Box<[u8]> {
    let mut out = Vec::new();
    push_rr(&mut out, &[], rtype::SOA, TTL, |o| {
        push_name(o, &format!("ns.dns.{zone}"));
        push_name(o, &format!("hostmaster.{zone}"));
        for v in [serial, 7200, 1800, 86400, TTL] {
            o.extend_from_slice(&v.to_be_bytes());
        }
    });
    out.into_boxed_slice()
}

/// The current snapshot, shared by every socket task and replaced whole on each change.
/// Readers never block writers (an `ArcSwap`), so a rebuild never stalls answering.
#[derive(Debug, Clone)]
pub struct RecordsHandle(Arc<ArcSwap<Records>>);

impl RecordsHandle {
    /// A handle holding `records`.
    pub fn new(records: Records) -> RecordsHandle {
        RecordsHandle(Arc::new(ArcSwap::from_pointee(records)))
    }

    /// Replaces the snapshot; queries already being answered finish with the old one.
    pub fn store(&self, records: Records) {
        self.0.store(Arc::new(records));
    }

    /// [`RecordsHandle::store`] of a snapshot shared with its owner (a full snapshot kept to
    /// lay changes over).
    pub fn store_arc(&self, records: Arc<Records>) {
        self.0.store(records);
    }

    /// The current snapshot.
    pub fn load(&self) -> arc_swap::Guard<Arc<Records>> {
        self.0.load()
    }
}
