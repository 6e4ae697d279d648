//! Encoding the model's entries into ready-to-copy answer sections, once per snapshot.
//!
//! The first owner name of every answer is the question name, written as the pointer
//! [`QNAME_PTR`]; names inside RDATA and the owners of additional records are written in
//! full (SRV targets must not be compressed, RFC 2782).

use std::collections::HashSet;
use std::net::IpAddr;

use super::model::{Entry, Spec};
use crate::wire::{push_name, push_rr, rtype, QNAME_PTR};

/// TTL of every answer, CoreDNS's default: short, so a changed Service is seen at once.
pub const TTL: u32 = 5;

/// Answer and additional records for one (name, type), encoded.
#[derive(Debug, Default, Clone)]
pub struct RrSet {
    /// Answer section bytes.
    pub answer: Box<[u8]>,
    /// Records in `answer`.
    pub count: u16,
    /// Additional section bytes (SRV targets' addresses).
    pub extra: Box<[u8]>,
    /// Records in `extra`.
    pub extra_count: u16,
    /// When every answer record has this one length (plain A or AAAA sets), answers may be
    /// rotated per query, like CoreDNS's `loadbalance`; 0 otherwise.
    pub rr_len: u16,
}

impl RrSet {
    /// True when the set has no answer records (NODATA).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Which address family an address set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// A records.
    V4,
    /// AAAA records.
    V6,
}

impl Family {
    fn holds(self, ip: &IpAddr) -> bool {
        matches!((self, ip), (Family::V4, IpAddr::V4(_)) | (Family::V6, IpAddr::V6(_)))
    }
}

/// Appends one address record.
pub fn push_address(out: &mut Vec<u8>, owner: &[u8], ip: &IpAddr) {
    match ip {
        IpAddr::V4(v4) => push_rr(out, owner, rtype::A, TTL, |o| o.extend_from_slice(&v4.octets())),
        IpAddr::V6(v6) => push_rr(out, owner, rtype::AAAA, TTL, |o| o.extend_from_slice(&v6.octets())),
    }
}

/// The address of one record [`push_address`] wrote with a compressed owner (an answer of
/// [`addresses`]); `None` for any other record.
pub fn address_of(record: &[u8]) -> Option<IpAddr> {
    // Owner pointer (2), type, class (4), TTL (4), RDLENGTH (2), then the address.
    let rdata = record.get(12..)?;
    match rdata.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(rdata).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(rdata).ok()?)),
        _ => None,
    }
}

fn finish(answer: Vec<u8>, count: usize, extra: Vec<u8>, extra_count: usize, rr_len: u16) -> RrSet {
    RrSet {
        answer: answer.into_boxed_slice(),
        count: count.min(u16::MAX as usize) as u16,
        extra: extra.into_boxed_slice(),
        extra_count: extra_count.min(u16::MAX as usize) as u16,
        rr_len,
    }
}

/// A or AAAA answers: every distinct address of the family, in entry order.
pub fn addresses(entries: &[Entry], family: Family) -> RrSet {
    let mut seen = Seen::default();
    let mut answer = Vec::new();
    for e in entries.iter().filter(|e| family.holds(&e.ip)) {
        if seen.insert(e.ip) {
            push_address(&mut answer, &QNAME_PTR, &e.ip);
        }
    }
    let rr_len = if family == Family::V4 { 16 } else { 28 };
    finish(answer, seen.len(), Vec::new(), 0, rr_len)
}

/// A set for de-duplicating a name's records: nearly every name has one to three entries,
/// where a linear scan beats hashing; large headless Services switch to a hash set.
struct Seen<T> {
    small: Vec<T>,
    large: HashSet<T>,
}

impl<T> Default for Seen<T> {
    fn default() -> Self {
        Seen {
            small: Vec::new(),
            large: HashSet::new(),
        }
    }
}

impl<T: Eq + std::hash::Hash + Copy> Seen<T> {
    fn insert(&mut self, v: T) -> bool {
        if self.large.is_empty() {
            if self.small.contains(&v) {
                return false;
            }
            self.small.push(v);
            if self.small.len() > 16 {
                self.large.extend(self.small.drain(..));
            }
            return true;
        }
        self.large.insert(v)
    }

    fn len(&self) -> usize {
        self.small.len() + self.large.len()
    }
}

/// SRV answers as CoreDNS writes them: priority 0, weight `100 / entries` (at least 1), one
/// record per distinct (target, port), and the targets' addresses as additional records.
pub fn srv(entries: &[Entry]) -> RrSet {
    // CoreDNS divides by every entry, the port-less ones included.
    let weight = ((100 / entries.len().max(1)) as u16).max(1);
    let mut seen_srv = Seen::default();
    let mut seen_addr = Seen::default();
    let (mut answer, mut extra) = (Vec::new(), Vec::new());
    for e in entries {
        let Some(port) = e.port else { continue };
        if seen_srv.insert((&*e.target, port)) {
            push_rr(&mut answer, &QNAME_PTR, rtype::SRV, TTL, |o| {
                o.extend_from_slice(&0u16.to_be_bytes());
                o.extend_from_slice(&weight.to_be_bytes());
                o.extend_from_slice(&port.to_be_bytes());
                push_name(o, &e.target);
            });
        }
        if seen_addr.insert((&*e.target, e.ip)) {
            let mut owner = Vec::new();
            push_name(&mut owner, &e.target);
            push_address(&mut extra, &owner, &e.ip);
        }
    }
    finish(answer, seen_srv.len(), extra, seen_addr.len(), 0)
}

/// One record of `rtype` whose RDATA is a name (CNAME, PTR, NS), owned by the question name.
pub fn name_record(rtype: u16, target: &str, ttl: u32) -> RrSet {
    let mut answer = Vec::new();
    push_rr(&mut answer, &QNAME_PTR, rtype, ttl, |o| push_name(o, target));
    finish(answer, 1, Vec::new(), 0, 0)
}

/// PTR answers, one per name.
pub fn ptr(targets: &[String]) -> RrSet {
    let mut answer = Vec::new();
    for t in targets {
        push_rr(&mut answer, &QNAME_PTR, rtype::PTR, TTL, |o| push_name(o, t));
    }
    finish(answer, targets.len(), Vec::new(), 0, 0)
}

/// How an A or AAAA question about an ExternalName Service is answered.
#[derive(Debug, Clone)]
pub enum Chain {
    /// The CNAME chain ended inside the cluster zone: the records are complete (empty when
    /// the target has no address of the family, which CoreDNS answers as NODATA).
    Complete(RrSet),
    /// The chain leaves the cluster: these CNAME records, then whatever the upstream
    /// servers answer for `target`.
    Upstream {
        /// The CNAME records so far.
        prefix: RrSet,
        /// The out-of-cluster name to look up.
        target: String,
    },
}

/// What the in-zone part of a CNAME chain may resolve through: the model's names and pod
/// names.
pub trait Resolve {
    /// What `name` (lowercase, in zone) is, or `None`.
    fn spec(&self, name: &str) -> Option<Spec>;
    /// True when `name` is inside the cluster zone.
    fn in_zone(&self, name: &str) -> bool;
}

/// Follows an ExternalName's CNAME chain for one address family, as CoreDNS does: at most 8
/// links, never through a name twice; in-zone targets without addresses drop the whole chain.
pub fn chain(resolver: &dyn Resolve, target: &str, family: Family) -> Chain {
    let mut records = Vec::new();
    let mut count = 0;
    let mut seen = HashSet::new();
    let mut owner = QNAME_PTR.to_vec();
    let mut target = target.to_string();
    for _ in 0..8 {
        push_rr(&mut records, &owner, rtype::CNAME, TTL, |o| push_name(o, &target));
        count += 1;
        let key = target.to_ascii_lowercase();
        if !resolver.in_zone(&key) {
            let prefix = finish(records, count, Vec::new(), 0, 0);
            return Chain::Upstream { prefix, target };
        }
        if !seen.insert(key.clone()) {
            break;
        }
        owner.clear();
        push_name(&mut owner, &target);
        match resolver.spec(&key) {
            Some(Spec::Entries(entries)) => {
                let mut found = HashSet::new();
                for e in entries.iter().filter(|e| family.holds(&e.ip)) {
                    if found.insert(e.ip) {
                        push_address(&mut records, &owner, &e.ip);
                    }
                }
                if found.is_empty() {
                    break;
                }
                return Chain::Complete(finish(records, count + found.len(), Vec::new(), 0, 0));
            }
            Some(Spec::External(next)) => target = next,
            None => break,
        }
    }
    Chain::Complete(RrSet::default())
}
