//! Answering one query from a snapshot: the cluster zone authoritatively, as CoreDNS's
//! kubernetes plugin does (with `pods insecure` and `fallthrough in-addr.arpa ip6.arpa`), and
//! everything else handed back to the caller to forward.
//!
//! Pure and synchronous: no sockets, no clock. [`answer_into`] writes into a buffer the
//! caller reuses, so the hot path does not allocate.

use crate::names;
use crate::records::{push_address, Chain, Node, Records, RrSet};
use crate::wire::{self, rcode, rtype, Counts, Flags, ParseError, Question, QNAME_PTR};

/// The transport a query came over; it decides how large an answer may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// 512 bytes, or the requester's EDNS payload size; larger answers are truncated (TC).
    Udp,
    /// Up to 65535 bytes.
    Tcp,
}

/// What became of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The response is in the output buffer.
    Answered,
    /// Not answered at all (a response, or a runt message).
    Ignored,
    /// Outside the cluster zone: send the query, unchanged, to the upstream servers.
    Forward,
    /// An ExternalName whose CNAME chain leaves the cluster: look `target` up upstream and
    /// answer with [`finish_chase`].
    Chase(Chase),
}

/// The out-of-cluster part of an ExternalName answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chase {
    /// The name to look up upstream.
    pub target: String,
    /// The query type to look it up with.
    pub qtype: u16,
}

/// A response with the whole message, for callers that do not care about allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The response message.
    Reply(Vec<u8>),
    /// No response.
    Ignored,
    /// Forward upstream.
    Forward,
    /// Look up the ExternalName's target upstream.
    Chase(Chase),
}

/// Answers `query` from `records`; see [`answer_into`].
pub fn answer(records: &Records, query: &[u8], transport: Transport) -> Answer {
    let mut out = Vec::new();
    match answer_into(records, query, transport, &mut out) {
        Outcome::Answered => Answer::Reply(out),
        Outcome::Ignored => Answer::Ignored,
        Outcome::Forward => Answer::Forward,
        Outcome::Chase(c) => Answer::Chase(c),
    }
}

/// What a cluster name answers.
enum Found<'a> {
    /// Records (answer and additional sections).
    Records(&'a RrSet),
    /// One address record for a pod name.
    Pod(std::net::IpAddr),
    /// The zone's SOA record.
    Soa,
    /// The `dns-version` TXT record.
    Version,
    /// The zone's NS record.
    Ns,
    /// The name exists without records of this type.
    NoData,
    /// The name does not exist.
    NxDomain,
    /// An ExternalName chain leaving the cluster.
    Upstream(&'a RrSet, &'a str),
}

/// Answers `query` into `out` (cleared first): an authoritative answer for names in the
/// cluster zone and for PTR questions about known Service and endpoint addresses; every
/// other name is [`Outcome::Forward`]. Names under the cluster zone are never forwarded.
pub fn answer_into(records: &Records, query: &[u8], transport: Transport, out: &mut Vec<u8>) -> Outcome {
    let q = match wire::parse(query) {
        Ok(q) => q,
        Err(ParseError::Ignore) => return Outcome::Ignored,
        Err(ParseError::Reply(code)) => {
            wire::error_response(out, query, code, false);
            return Outcome::Answered;
        }
    };
    let name = q.name();
    let Some(rel) = names::in_zone(name, records.zone()) else {
        if q.qtype == rtype::PTR && q.qclass == wire::CLASS_IN {
            if let Some(set) = names::reverse_address(name).and_then(|ip| records.reverse(&ip)) {
                write_records(out, query, &q, records, set, transport);
                return Outcome::Answered;
            }
        }
        return Outcome::Forward;
    };
    if q.qclass != wire::CLASS_IN {
        wire::error_response(out, query, rcode::REFUSED, false);
        return Outcome::Answered;
    }
    if q.edns.is_some_and(|e| e.version > 0) {
        // BADVERS: extended RCODE 16 is 1 in the OPT record's high bits, 0 in the header.
        let flags = Flags {
            authoritative: true,
            ..Flags::default()
        };
        wire::start_response(
            out,
            query,
            &q,
            flags,
            Counts {
                additional: 1,
                ..Counts::default()
            },
        );
        wire::push_opt(out, 1);
        return Outcome::Answered;
    }
    match lookup(records, name, rel, &q) {
        Found::Records(set) if !set.is_empty() => write_records(out, query, &q, records, set, transport),
        Found::Records(_) | Found::NoData => write_negative(out, query, &q, records, rcode::NOERROR),
        Found::NxDomain if !records.synced() => write_negative(out, query, &q, records, rcode::SERVFAIL),
        Found::NxDomain => write_negative(out, query, &q, records, rcode::NXDOMAIN),
        Found::Pod(ip) => write_one(out, query, &q, |o| push_address(o, &QNAME_PTR, &ip)),
        Found::Soa => write_one(out, query, &q, |o| {
            o.extend_from_slice(&QNAME_PTR);
            o.extend_from_slice(records.soa_tail());
        }),
        Found::Ns => write_one(out, query, &q, |o| {
            wire::push_rr(o, &QNAME_PTR, rtype::NS, crate::records::TTL, |o| {
                wire::push_name(o, "ns.dns");
                o.pop();
                wire::push_name(o, records.zone());
            })
        }),
        Found::Version => write_one(out, query, &q, |o| {
            wire::push_rr(o, &QNAME_PTR, rtype::TXT, 28800, |o| {
                o.push(names::SCHEMA_VERSION.len() as u8);
                o.extend_from_slice(names::SCHEMA_VERSION.as_bytes());
            })
        }),
        Found::Upstream(prefix, target) => {
            // Only the CNAME records, no OPT: [`finish_chase`] appends upstream's answers and
            // writes the real response.
            let counts = Counts {
                answer: prefix.count,
                ..Counts::default()
            };
            wire::start_response(out, query, &q, Flags::default(), counts);
            out.extend_from_slice(&prefix.answer);
            return Outcome::Chase(Chase {
                target: target.to_string(),
                qtype: q.qtype,
            });
        }
    }
    Outcome::Answered
}

/// Decides what a name inside the zone answers (CoreDNS's `parseRequest`, `findServices`,
/// `findPods`, and the quirks of its handler for NS and TXT).
fn lookup<'a>(records: &'a Records, name: &str, rel: &str, q: &Question) -> Found<'a> {
    if rel.is_empty() {
        return match q.qtype {
            rtype::SOA => Found::Soa,
            rtype::NS => Found::Ns,
            _ => Found::NoData,
        };
    }
    match q.qtype {
        // CoreDNS answers NS below the apex, and TXT anywhere but `dns-version`, with NODATA.
        rtype::NS => return Found::NoData,
        rtype::TXT if rel == names::DNS_VERSION => return Found::Version,
        rtype::TXT => return Found::NoData,
        _ => {}
    }
    if rel == "ns.dns" {
        return Found::NoData;
    }
    let mut labels = rel.rsplit('.');
    let kind = labels.next().unwrap_or("");
    if kind != names::SVC && kind != names::POD {
        return Found::NxDomain;
    }
    let Some(ns) = labels.next() else { return Found::NoData };
    if !records.has_namespace(ns) {
        return Found::NxDomain;
    }
    let Some(first) = labels.next() else {
        return Found::NoData;
    };
    let extra = labels.count();
    if extra > 2 {
        return Found::NxDomain;
    }
    if kind == names::POD {
        // The labels in front of a pod name are ignored, as by CoreDNS.
        let Some(ip) = names::pod_address(first) else {
            return Found::NxDomain;
        };
        return match (q.qtype, ip) {
            (rtype::A, std::net::IpAddr::V4(_)) | (rtype::AAAA, std::net::IpAddr::V6(_)) => Found::Pod(ip),
            _ => Found::NoData,
        };
    }
    if let Some(node) = records.node(name) {
        return from_node(node, q.qtype);
    }
    if extra > 0 {
        // Ports and endpoints of an ExternalName Service are the Service itself.
        let service_labels = 3 + records.zone_labels();
        let start = label_start(name, q.label_count() - service_labels);
        if let Some(node @ Node::External { .. }) = records.node(&name[start..]) {
            return from_node(node, q.qtype);
        }
    }
    Found::NxDomain
}

/// Byte offset of label `skip` (0-based) in a dotted name.
fn label_start(name: &str, skip: usize) -> usize {
    if skip == 0 {
        return 0;
    }
    name.match_indices('.')
        .nth(skip - 1)
        .map(|(i, _)| i + 1)
        .unwrap_or(name.len())
}

fn from_node(node: &Node, qtype: u16) -> Found<'_> {
    match node {
        Node::Addresses { a, aaaa, srv } => match qtype {
            rtype::A => Found::Records(a),
            rtype::AAAA => Found::Records(aaaa),
            rtype::SRV => Found::Records(srv),
            _ => Found::NoData,
        },
        Node::External { cname, a, aaaa, .. } => {
            let chain = match qtype {
                rtype::CNAME => return Found::Records(cname),
                rtype::A => a,
                rtype::AAAA => aaaa,
                _ => return Found::NoData,
            };
            match chain {
                Chain::Complete(set) => Found::Records(set),
                Chain::Upstream { prefix, target } => Found::Upstream(prefix, target),
            }
        }
    }
}

/// Writes a response with the one answer record `record` writes. Every such record is small
/// (an address, the SOA, NS or TXT), so with a question of at most 259 bytes it always fits
/// in 512 and is written in place.
fn write_one(out: &mut Vec<u8>, query: &[u8], q: &Question, record: impl FnOnce(&mut Vec<u8>)) {
    let opt = q.edns.is_some();
    let flags = Flags {
        authoritative: true,
        ..Flags::default()
    };
    wire::start_response(
        out,
        query,
        q,
        flags,
        Counts {
            answer: 1,
            authority: 0,
            additional: u16::from(opt),
        },
    );
    record(out);
    if opt {
        wire::push_opt(out, 0);
    }
}

/// The largest response the transport allows for this query.
fn limit(q: &Question, transport: Transport) -> usize {
    match (transport, q.edns) {
        (Transport::Tcp, _) => u16::MAX as usize,
        (Transport::Udp, None) => wire::UDP_PLAIN_LIMIT,
        (Transport::Udp, Some(e)) => (e.payload as usize).clamp(wire::UDP_PLAIN_LIMIT, 4096),
    }
}

fn write_records(out: &mut Vec<u8>, query: &[u8], q: &Question, records: &Records, set: &RrSet, t: Transport) {
    let rr_len = set.rr_len as usize;
    if set.count > 1 && rr_len > 0 && set.answer.len() == rr_len * set.count as usize {
        // Round-robin: start at a different record each query.
        let start = (records.next_rotation() % u32::from(set.count)) as usize * rr_len;
        let (head, tail) = set.answer.split_at(start);
        write_sections_split(out, query, q, [tail, head], set.count, &set.extra, set.extra_count, t);
    } else {
        write_sections(out, query, q, &set.answer, set.count, &set.extra, set.extra_count, t);
    }
}

#[allow(clippy::too_many_arguments)]
fn write_sections(
    out: &mut Vec<u8>,
    query: &[u8],
    q: &Question,
    answer: &[u8],
    an: u16,
    extra: &[u8],
    ar: u16,
    t: Transport,
) {
    write_sections_split(out, query, q, [answer, &[]], an, extra, ar, t)
}

/// Writes a positive answer. When it does not fit, the additional records go first
/// (without TC: they are a courtesy); when the answers alone do not fit, the response
/// carries none and sets TC so the client retries over TCP.
#[allow(clippy::too_many_arguments)]
fn write_sections_split(
    out: &mut Vec<u8>,
    query: &[u8],
    q: &Question,
    answer: [&[u8]; 2],
    an: u16,
    extra: &[u8],
    ar: u16,
    t: Transport,
) {
    let max = limit(q, t);
    let opt = usize::from(q.edns.is_some());
    let base = q.question_end + opt * 11;
    let answer_len = answer[0].len() + answer[1].len();
    let (an, keep_answer, ar, keep_extra, truncated) = if base + answer_len + extra.len() <= max {
        (an, true, ar, true, false)
    } else if base + answer_len <= max {
        (an, true, 0, false, false)
    } else {
        (0, false, 0, false, true)
    };
    let flags = Flags {
        authoritative: true,
        truncated,
        ..Flags::default()
    };
    let counts = Counts {
        answer: an,
        authority: 0,
        additional: ar + opt as u16,
    };
    wire::start_response(out, query, q, flags, counts);
    if keep_answer {
        out.extend_from_slice(answer[0]);
        out.extend_from_slice(answer[1]);
    }
    if keep_extra {
        out.extend_from_slice(extra);
    }
    if opt == 1 {
        wire::push_opt(out, 0);
    }
}

/// NXDOMAIN, NODATA (NOERROR without answers) or SERVFAIL, with the zone's SOA in the
/// authority section so resolvers cache the miss only for the SOA minimum (5 s).
fn write_negative(out: &mut Vec<u8>, query: &[u8], q: &Question, records: &Records, code: u8) {
    let opt = q.edns.is_some();
    let flags = Flags {
        authoritative: true,
        rcode: code,
        ..Flags::default()
    };
    let counts = Counts {
        answer: 0,
        authority: 1,
        additional: u16::from(opt),
    };
    wire::start_response(out, query, q, flags, counts);
    // The SOA's owner is the zone, which is the tail of the question name: point at it,
    // keeping the requester's letter case as CoreDNS does.
    let zone_at = q.suffix_offset(records.zone_labels());
    out.extend_from_slice(&(0xC000 | zone_at).to_be_bytes());
    out.extend_from_slice(records.soa_tail());
    if opt {
        wire::push_opt(out, 0);
    }
}

/// Completes a [`Outcome::Chase`]: `partial` is what [`answer_into`] left in its buffer (the
/// response with the CNAME records), `upstream` the upstream's answer records for the
/// target, already encoded with uncompressed names, and `count` how many there are. With no
/// upstream answer (`None`), the CNAME is dropped and the answer is NODATA, as CoreDNS does.
pub fn finish_chase(
    records: &Records,
    query: &[u8],
    partial: &[u8],
    upstream: Option<(&[u8], u16)>,
    transport: Transport,
    out: &mut Vec<u8>,
) {
    let Ok(q) = wire::parse(query) else {
        out.clear();
        return;
    };
    let Some((extra_answers, extra_count)) = upstream else {
        write_negative(out, query, &q, records, rcode::NOERROR);
        return;
    };
    let an = u16::from_be_bytes([partial[6], partial[7]]);
    let mut answers = Vec::with_capacity(partial.len() + extra_answers.len());
    answers.extend_from_slice(&partial[q.question_end..]);
    answers.extend_from_slice(extra_answers);
    write_sections(out, query, &q, &answers, an + extra_count, &[], 0, transport);
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
