//! The DNS wire format on the hot path: reading a query's header, question and EDNS OPT record
//! without allocating, and writing responses out of pre-encoded resource records.
//!
//! Why by hand and not through `hickory_proto::op::Message`: a parsed `Message` owns vectors
//! of queries and records and a heap `Name` per label run, so every query would allocate a
//! handful of times. The question is all an authoritative answer needs, and every answer
//! record is encoded once per snapshot ([`crate::Records::build`]) with its owner written as a
//! compression pointer to the question name at offset 12 ([`QNAME_PTR`]), so a response is a
//! header, the question copied verbatim (0x20 case preserved) and a few `memcpy`s.
//! hickory-proto does the general work off the hot path: out-of-cluster lookups for
//! ExternalName targets (and the tests decode every response with it).

/// Resource record types used by the answering logic (RFC 1035, 2782, 3596, 6891).
pub mod rtype {
    /// IPv4 address.
    pub const A: u16 = 1;
    /// Name server.
    pub const NS: u16 = 2;
    /// Canonical name.
    pub const CNAME: u16 = 5;
    /// Start of authority.
    pub const SOA: u16 = 6;
    /// Domain name pointer (reverse lookups).
    pub const PTR: u16 = 12;
    /// Text.
    pub const TXT: u16 = 16;
    /// IPv6 address.
    pub const AAAA: u16 = 28;
    /// Service locator.
    pub const SRV: u16 = 33;
    /// EDNS(0) pseudo record.
    pub const OPT: u16 = 41;
}

/// Response codes.
pub mod rcode {
    /// No error.
    pub const NOERROR: u8 = 0;
    /// The query could not be parsed.
    pub const FORMERR: u8 = 1;
    /// The server could not answer (upstream unreachable, caches not synced).
    pub const SERVFAIL: u8 = 2;
    /// The name does not exist.
    pub const NXDOMAIN: u8 = 3;
    /// The opcode is not supported.
    pub const NOTIMP: u8 = 4;
    /// The server will not answer this query.
    pub const REFUSED: u8 = 5;
}

/// Class IN.
pub const CLASS_IN: u16 = 1;

/// A compression pointer to offset 12, where the question name of every response starts.
pub const QNAME_PTR: [u8; 2] = [0xC0, 0x0C];

/// The UDP payload size podway advertises in its OPT record: the 2020 DNS flag day value,
/// which fits any path MTU without IP fragmentation.
pub const EDNS_PAYLOAD: u16 = 1232;

/// A plain UDP answer may not exceed this many bytes (RFC 1035 4.2.1).
pub const UDP_PLAIN_LIMIT: usize = 512;

/// The longest name in dotted text form without the trailing dot (RFC 1035: 255 octets on
/// the wire, which is at most 253 characters of text).
const MAX_TEXT_NAME: usize = 253;

/// What a query asked, parsed in place.
#[derive(Debug)]
pub struct Question {
    /// Message id, echoed in the response.
    pub id: u16,
    /// The RD and CD bits of the query, echoed in the response.
    pub echo_flags: u16,
    /// Where the question section ends (after QCLASS); `query[12..question_end]` is copied
    /// verbatim into the response.
    pub question_end: usize,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
    /// The EDNS OPT record of the query, if any.
    pub edns: Option<Edns>,
    name: [u8; MAX_TEXT_NAME],
    name_len: usize,
    /// Offsets (relative to the start of the question name) of each label's length byte.
    label_offsets: [u8; 128],
    labels: usize,
}

/// The parts of a query's OPT record the response depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    /// The requester's UDP payload size.
    pub payload: u16,
    /// The EDNS version the requester speaks.
    pub version: u8,
}

/// Why a message got no ordinary answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than a header, or a response (QR set): never answered, so two servers can
    /// not bounce errors at each other.
    Ignore,
    /// Answer with this RCODE and the header's id (and the question when it parsed).
    Reply(u8),
}

impl Question {
    /// The question name in lowercase dotted form without the trailing dot (`""` for the root).
    /// A dot or a non-ASCII byte inside a label is stored as 0x7f, so such a name never matches
    /// a record.
    pub fn name(&self) -> &str {
        // Only ASCII bytes are stored (others are replaced by 0x7f, see `parse`), so this is
        // valid UTF-8.
        std::str::from_utf8(&self.name[..self.name_len]).unwrap_or("")
    }

    /// Number of labels in the question name.
    pub fn label_count(&self) -> usize {
        self.labels
    }

    /// The wire offset (in the message) of the name made of the last `n` labels of the
    /// question name, for a compression pointer to it.
    pub fn suffix_offset(&self, n: usize) -> u16 {
        if n >= self.labels {
            return 12;
        }
        12 + u16::from(self.label_offsets[self.labels - n])
    }
}

/// Parses the header, question and OPT record of a query.
pub fn parse(msg: &[u8]) -> Result<Question, ParseError> {
    if msg.len() < 12 {
        return Err(ParseError::Ignore);
    }
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    if flags & 0x8000 != 0 {
        return Err(ParseError::Ignore);
    }
    let opcode = (flags >> 11) & 0xF;
    if opcode != 0 {
        return Err(ParseError::Reply(rcode::NOTIMP));
    }
    let qdcount = u16::from_be_bytes([msg[4], msg[5]]);
    if qdcount != 1 {
        return Err(ParseError::Reply(rcode::FORMERR));
    }
    let mut q = Question {
        id,
        echo_flags: flags & 0x0110,
        question_end: 0,
        qtype: 0,
        qclass: 0,
        edns: None,
        name: [0; MAX_TEXT_NAME],
        name_len: 0,
        label_offsets: [0; 128],
        labels: 0,
    };
    let mut pos = 12;
    loop {
        let len = *msg.get(pos).ok_or(ParseError::Reply(rcode::FORMERR))? as usize;
        if len == 0 {
            pos += 1;
            break;
        }
        // Compression pointers and extended label types have no place in a question.
        if len > 63 || q.labels >= q.label_offsets.len() {
            return Err(ParseError::Reply(rcode::FORMERR));
        }
        let label = msg
            .get(pos + 1..pos + 1 + len)
            .ok_or(ParseError::Reply(rcode::FORMERR))?;
        let dot = usize::from(q.name_len > 0);
        if q.name_len + dot + len > MAX_TEXT_NAME {
            return Err(ParseError::Reply(rcode::FORMERR));
        }
        q.label_offsets[q.labels] = (pos - 12) as u8;
        q.labels += 1;
        if dot == 1 {
            q.name[q.name_len] = b'.';
            q.name_len += 1;
        }
        for &b in label {
            // A dot inside a label or a non-ASCII byte can never match one of our names;
            // 0x7f keeps the text valid and unmatchable without an escape syntax.
            q.name[q.name_len] = match b {
                b'.' | 0x80..=0xff => 0x7f,
                _ => b.to_ascii_lowercase(),
            };
            q.name_len += 1;
        }
        pos += 1 + len;
    }
    let fixed = msg.get(pos..pos + 4).ok_or(ParseError::Reply(rcode::FORMERR))?;
    q.qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    q.qclass = u16::from_be_bytes([fixed[2], fixed[3]]);
    q.question_end = pos + 4;
    q.edns = parse_edns(msg, q.question_end)?;
    Ok(q)
}

/// Finds the OPT record among the additional records; answer and authority records of a
/// query are skipped.
fn parse_edns(msg: &[u8], mut pos: usize) -> Result<Option<Edns>, ParseError> {
    let count = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]) as usize;
    let before_additional = count(6) + count(8);
    let additional = count(10);
    let mut edns = None;
    for i in 0..before_additional + additional {
        pos = skip_name(msg, pos).ok_or(ParseError::Reply(rcode::FORMERR))?;
        let fixed = msg.get(pos..pos + 10).ok_or(ParseError::Reply(rcode::FORMERR))?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let rdlen = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
        if i >= before_additional && rtype == rtype::OPT {
            if edns.is_some() {
                // RFC 6891 6.1.1: more than one OPT is a FORMERR.
                return Err(ParseError::Reply(rcode::FORMERR));
            }
            edns = Some(Edns {
                payload: u16::from_be_bytes([fixed[2], fixed[3]]),
                version: fixed[5],
            });
        }
        pos += 10 + rdlen;
        if pos > msg.len() {
            return Err(ParseError::Reply(rcode::FORMERR));
        }
    }
    Ok(edns)
}

/// Returns the offset after a (possibly compressed) name starting at `pos`.
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *msg.get(pos)?;
        match len {
            0 => return Some(pos + 1),
            0xC0..=0xFF => return Some(pos + 2).filter(|&p| p <= msg.len()),
            1..=63 => pos += 1 + len as usize,
            _ => return None,
        }
    }
}

/// Encodes a dotted name (no trailing dot needed) as uncompressed wire labels. Empty labels
/// are skipped, so `""` and `"."` encode the root.
pub fn push_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let bytes = &label.as_bytes()[..label.len().min(63)];
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
    }
    out.push(0);
}

/// Appends a resource record: `owner` is already encoded (a name or a pointer), `rdata` is
/// written by the closure, and RDLENGTH is filled in afterwards.
pub fn push_rr(out: &mut Vec<u8>, owner: &[u8], rtype: u16, ttl: u32, rdata: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(owner);
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    let len_at = out.len();
    out.extend_from_slice(&[0, 0]);
    rdata(out);
    let len = (out.len() - len_at - 2) as u16;
    out[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
}

/// Header flags of a response.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flags {
    /// AA: the answer comes from the cluster zone podway is authoritative for.
    pub authoritative: bool,
    /// RA: set on answers podway got by recursion (forwarding).
    pub recursion_available: bool,
    /// TC: the answer did not fit.
    pub truncated: bool,
    /// RCODE (low 4 bits).
    pub rcode: u8,
}

/// Section counts of a response.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    /// Answer records.
    pub answer: u16,
    /// Authority records.
    pub authority: u16,
    /// Additional records (the OPT record included).
    pub additional: u16,
}

/// Writes the response header and the question copied from the query into `out`, which is
/// cleared first.
pub fn start_response(out: &mut Vec<u8>, query: &[u8], q: &Question, flags: Flags, counts: Counts) {
    out.clear();
    out.extend_from_slice(&q.id.to_be_bytes());
    let mut f: u16 = 0x8000 | q.echo_flags | u16::from(flags.rcode & 0xF);
    if flags.authoritative {
        f |= 0x0400;
    }
    if flags.truncated {
        f |= 0x0200;
    }
    if flags.recursion_available {
        f |= 0x0080;
    }
    out.extend_from_slice(&f.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&counts.answer.to_be_bytes());
    out.extend_from_slice(&counts.authority.to_be_bytes());
    out.extend_from_slice(&counts.additional.to_be_bytes());
    out.extend_from_slice(&query[12..q.question_end]);
}

/// Appends the response's OPT record (payload [`EDNS_PAYLOAD`], version 0), with the
/// extended RCODE bits `ext_rcode` (BADVERS is 1).
pub fn push_opt(out: &mut Vec<u8>, ext_rcode: u8) {
    out.push(0);
    out.extend_from_slice(&rtype::OPT.to_be_bytes());
    out.extend_from_slice(&EDNS_PAYLOAD.to_be_bytes());
    out.extend_from_slice(&[ext_rcode, 0, 0, 0]);
    out.extend_from_slice(&[0, 0]);
}

/// A response carrying only a header (and the question when it parsed): FORMERR, NOTIMP,
/// SERVFAIL for queries that got no further.
pub fn error_response(out: &mut Vec<u8>, query: &[u8], rcode: u8, recursion_available: bool) {
    match parse(query) {
        Ok(q) => {
            let edns = q.edns.is_some();
            let counts = Counts {
                additional: u16::from(edns),
                ..Counts::default()
            };
            let flags = Flags {
                rcode,
                recursion_available,
                ..Flags::default()
            };
            start_response(out, query, &q, flags, counts);
            if edns {
                push_opt(out, 0);
            }
        }
        Err(_) if query.len() >= 12 => {
            out.clear();
            out.extend_from_slice(&query[0..2]);
            let f: u16 = 0x8000 | (u16::from_be_bytes([query[2], query[3]]) & 0x7900) | u16::from(rcode);
            out.extend_from_slice(&f.to_be_bytes());
            out.extend_from_slice(&[0; 8]);
        }
        Err(_) => out.clear(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16, edns: Option<u16>) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())];
        push_name(&mut m, name);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&CLASS_IN.to_be_bytes());
        if let Some(size) = edns {
            m.push(0);
            m.extend_from_slice(&rtype::OPT.to_be_bytes());
            m.extend_from_slice(&size.to_be_bytes());
            m.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        }
        m
    }

    #[test]
    fn question_name_is_lowercased_and_its_labels_are_indexed() {
        let q = parse(&query("Web.Default.SVC.cluster.local", rtype::A, None)).unwrap();
        assert_eq!(q.name(), "web.default.svc.cluster.local");
        assert_eq!(q.label_count(), 5);
        assert_eq!(q.qtype, rtype::A);
        // "cluster.local" starts after "Web"(4) "Default"(8) "SVC"(4) = 16 bytes in.
        assert_eq!(q.suffix_offset(2), 12 + 16);
        assert_eq!(q.suffix_offset(5), 12);
        assert_eq!(q.edns, None);
    }

    #[test]
    fn opt_record_gives_the_requesters_payload_size() {
        let q = parse(&query("a.b", rtype::AAAA, Some(4096))).unwrap();
        assert_eq!(
            q.edns,
            Some(Edns {
                payload: 4096,
                version: 0
            })
        );
    }

    #[test]
    fn responses_and_runt_messages_are_ignored() {
        let mut m = query("a.b", rtype::A, None);
        m[2] |= 0x80;
        assert_eq!(parse(&m).unwrap_err(), ParseError::Ignore);
        assert_eq!(parse(&[0; 5]).unwrap_err(), ParseError::Ignore);
    }

    #[test]
    fn two_questions_or_a_cut_name_are_format_errors() {
        let mut m = query("a.b", rtype::A, None);
        m[5] = 2;
        assert_eq!(parse(&m).unwrap_err(), ParseError::Reply(rcode::FORMERR));
        let m = query("abc.def", rtype::A, None);
        assert_eq!(parse(&m[..15]).unwrap_err(), ParseError::Reply(rcode::FORMERR));
    }

    #[test]
    fn a_status_or_update_opcode_is_not_implemented() {
        let mut m = query("a.b", rtype::A, None);
        m[2] = 5 << 3;
        assert_eq!(parse(&m).unwrap_err(), ParseError::Reply(rcode::NOTIMP));
    }

    #[test]
    fn response_header_echoes_id_rd_and_question() {
        let m = query("x.y", rtype::A, None);
        let q = parse(&m).unwrap();
        let mut out = Vec::new();
        let flags = Flags {
            authoritative: true,
            rcode: rcode::NXDOMAIN,
            ..Flags::default()
        };
        start_response(&mut out, &m, &q, flags, Counts::default());
        assert_eq!(&out[0..2], &[0x12, 0x34]);
        assert_eq!(out[2], 0x80 | 0x04 | 0x01, "QR, AA and RD");
        assert_eq!(out[3] & 0x0F, rcode::NXDOMAIN);
        assert_eq!(&out[12..], &m[12..q.question_end]);
    }
}
