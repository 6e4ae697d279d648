//! The answer set: a snapshot of every cluster name, built by a pure function from Services
//! and EndpointSlices and encoded once, so answering is a map lookup and a few copies.
//!
//! A snapshot never changes; a change in the cluster builds a new one and swaps it in whole
//! ([`RecordsHandle`]), so a query sees either the old or the new cluster, never half of each.

mod model;
mod render;

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
}

/// A Service by namespace and name, lowercase.
pub type ServiceKey = (String, String);

/// What a layered snapshot lays itself over.
#[derive(Debug)]
struct Layer {
    base: Arc<Records>,
    keys: HashSet<ServiceKey>,
}

struct ModelResolver<'a> {
    model: &'a model::Model,
    zone: &'a str,
}

impl render::Resolve for ModelResolver<'_> {
    fn spec(&self, name: &str) -> Option<Spec> {
        if let Some(spec) = self.model.names.get(name) {
            return Some(spec.clone());
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
        let zone = names::zone(domain);
        let mut model = model::build(services, slices, &zone);
        model
            .namespaces
            .extend(namespaces.into_iter().map(|n| n.as_ref().to_ascii_lowercase()));
        let resolver = ModelResolver {
            model: &model,
            zone: &zone,
        };
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
                    Spec::External(target) => Node::External {
                        cname: render::name_record(rtype::CNAME, target, TTL),
                        a: render::chain(&resolver, target, Family::V4),
                        aaaa: render::chain(&resolver, target, Family::V6),
                    },
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
        changed: HashSet<ServiceKey>,
        domain: &str,
    ) -> Records {
        // Always over a full snapshot: `changed` holds every change since it was built.
        let base = match &base.layer {
            Some(layer) => layer.base.clone(),
            None => base,
        };
        let key_of = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, name: Option<&str>| {
            (
                m.namespace.as_deref().unwrap_or("").to_ascii_lowercase(),
                name.unwrap_or("").to_ascii_lowercase(),
            )
        };
        let services = services
            .into_iter()
            .filter(|s| changed.contains(&key_of(&s.metadata, s.metadata.name.as_deref())));
        let slices = slices.into_iter().filter(|e| {
            let owner = e
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(model::SERVICE_NAME_LABEL));
            owner.is_some_and(|o| changed.contains(&key_of(&e.metadata, Some(o))))
        });
        let mut top = Records::build_with_namespaces(namespaces, services, slices, domain);
        if top.serial < base.serial {
            top.serial = base.serial;
            top.soa_tail = soa_tail(&top.zone, base.serial);
        }
        top.synced = base.synced;
        top.layer = Some(Layer { base, keys: changed });
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

    /// The Service a name of the zone belongs to (`[...].<svc>.<ns>.svc.<zone>`).
    fn service_key(&self, name: &str) -> Option<ServiceKey> {
        let rel = names::in_zone(name, &self.zone)?;
        let mut labels = rel.rsplit('.');
        if labels.next()? != names::SVC {
            return None;
        }
        let ns = labels.next()?;
        let svc = labels.next()?;
        Some((ns.to_string(), svc.to_string()))
    }

    pub(crate) fn zone_labels(&self) -> usize {
        self.zone_labels
    }

    pub(crate) fn node(&self, name: &str) -> Option<&Node> {
        match &self.layer {
            Some(layer) if !self.service_key(name).is_some_and(|k| layer.keys.contains(&k)) => layer.base.node(name),
            _ => self.nodes.get(name),
        }
    }

    pub(crate) fn reverse(&self, ip: &IpAddr) -> Option<&RrSet> {
        self.reverse
            .get(ip)
            .or_else(|| self.layer.as_ref().and_then(|l| l.base.reverse(ip)))
    }

    pub(crate) fn has_namespace(&self, ns: &str) -> bool {
        self.namespaces.contains(ns)
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
