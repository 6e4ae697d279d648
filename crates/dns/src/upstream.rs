//! Forwarding names outside the cluster zone to the host's resolvers (CoreDNS's
//! `forward . /etc/resolv.conf`), and looking up out-of-cluster ExternalName targets.
//!
//! Each forwarded query gets its own connected socket with a fresh ephemeral port, so
//! answers can not be confused between queries and an unreachable server (ICMP port
//! unreachable) fails at once instead of after a timeout.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long one upstream server gets to answer before the next one is tried. The whole
/// forward gives up after [`Upstream::deadline`] with SERVFAIL, well before a stub resolver's
/// own 5 s timeout, so clients see a quick failure rather than a stall.
pub const TRY_TIMEOUT: Duration = Duration::from_millis(1500);

/// Errors reading the upstream configuration.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The resolv.conf file could not be read; retrying helps only once it exists.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The servers queries outside the cluster zone go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Servers, tried in order.
    pub servers: Vec<SocketAddr>,
    /// How long each server gets.
    pub try_timeout: Duration,
}

impl Upstream {
    /// Upstream servers given directly.
    pub fn new(servers: Vec<SocketAddr>) -> Upstream {
        Upstream {
            servers,
            try_timeout: TRY_TIMEOUT,
        }
    }

    /// The `nameserver` lines of a resolv.conf text, port 53. As an extension (resolv.conf has
    /// no port syntax), `nameserver 127.0.0.1:5353` and `nameserver [::1]:5353` name a port;
    /// tests use it. Servers in `exclude` (our own listen addresses) are dropped so a
    /// resolv.conf pointing at ourselves can not make a forwarding loop.
    pub fn from_resolv_conf(text: &str, exclude: &[SocketAddr]) -> Upstream {
        let servers = text
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                (words.next()? == "nameserver").then_some(())?;
                parse_server(words.next()?)
            })
            .filter(|s| !exclude.contains(s))
            .collect();
        Upstream::new(servers)
    }

    /// Reads a resolv.conf file; see [`Upstream::from_resolv_conf`].
    pub fn load(path: &Path, exclude: &[SocketAddr]) -> Result<Upstream, UpstreamError> {
        let text = std::fs::read_to_string(path).map_err(|source| UpstreamError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Upstream::from_resolv_conf(&text, exclude))
    }

    /// The longest a forward takes before giving up.
    pub fn deadline(&self) -> Duration {
        self.try_timeout * (self.servers.len().max(1) as u32)
    }

    /// Sends `query` over UDP to each server in turn; the first response with the query's id
    /// wins. `None` when no server answered.
    pub async fn query_udp(&self, query: &[u8]) -> Option<Vec<u8>> {
        for server in &self.servers {
            if let Ok(Some(resp)) = tokio::time::timeout(self.try_timeout, udp_exchange(*server, query)).await {
                return Some(resp);
            }
        }
        None
    }

    /// Sends `query` over TCP to each server in turn. `None` when no server answered.
    pub async fn query_tcp(&self, query: &[u8]) -> Option<Vec<u8>> {
        for server in &self.servers {
            if let Ok(Some(resp)) = tokio::time::timeout(self.try_timeout, tcp_exchange(*server, query)).await {
                return Some(resp);
            }
        }
        None
    }

    /// Looks `name` up with `qtype` (UDP, then TCP when truncated) and returns its answer
    /// records encoded without compression, ready to append to another message, with their
    /// count. `None` when no server answered.
    pub async fn lookup(&self, name: &str, qtype: u16) -> Option<(Vec<u8>, u16)> {
        // With no upstream at all (a node that has no way out), nothing can be learnt about the
        // target: the CNAME alone is the answer, and the client follows it if it can. (With
        // upstreams that fail, CoreDNS drops the CNAME; there is no one to ask here.)
        if self.servers.is_empty() {
            return Some((Vec::new(), 0));
        }
        let mut fqdn = Name::from_ascii(name).ok()?;
        fqdn.set_fqdn(true);
        let mut msg = Message::query();
        msg.add_query(Query::query(fqdn, RecordType::from(qtype)));
        msg.metadata.recursion_desired = true;
        let mut edns = Edns::new();
        edns.set_max_payload(crate::wire::EDNS_PAYLOAD);
        msg.set_edns(edns);
        let bytes = msg.to_vec().ok()?;
        let mut resp = Message::from_vec(&self.query_udp(&bytes).await?).ok()?;
        if resp.metadata.truncation {
            resp = Message::from_vec(&self.query_tcp(&bytes).await?).ok()?;
        }
        let mut out = Vec::new();
        let mut enc = BinEncoder::new(&mut out);
        enc.set_name_encoding(NameEncoding::Uncompressed);
        let mut count = 0u16;
        for record in &resp.answers {
            record.emit(&mut enc).ok()?;
            count += 1;
        }
        Some((out, count))
    }
}

fn parse_server(word: &str) -> Option<SocketAddr> {
    if let Ok(ip) = word.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 53));
    }
    // A scoped IPv6 address (fe80::1%eth0) has no SocketAddr form here; skip it.
    word.parse::<SocketAddr>().ok()
}

async fn udp_exchange(server: SocketAddr, query: &[u8]) -> Option<Vec<u8>> {
    let bind: SocketAddr = if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().ok()?;
    let sock = UdpSocket::bind(bind).await.ok()?;
    sock.connect(server).await.ok()?;
    sock.send(query).await.ok()?;
    let mut buf = vec![0u8; 65535];
    loop {
        // A refused port surfaces here as an error: give up on this server at once.
        let n = sock.recv(&mut buf).await.ok()?;
        if n >= 12 && buf[0..2] == query[0..2] && buf[2] & 0x80 != 0 {
            buf.truncate(n);
            return Some(buf);
        }
    }
}

async fn tcp_exchange(server: SocketAddr, query: &[u8]) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(server).await.ok()?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await.ok()?;
    let len = stream.read_u16().await.ok()? as usize;
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await.ok()?;
    (len >= 12 && buf[0..2] == query[0..2]).then_some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_upstreams_a_lookup_finds_nothing_at_once_instead_of_failing() {
        let up = Upstream::from_resolv_conf("", &[]);
        assert_eq!(up.lookup("my.database.example.com", 1).await, Some((Vec::new(), 0)));
    }

    #[test]
    fn resolv_conf_nameservers_become_port_53_servers_in_order() {
        let text = "# comment\nsearch example.com\nnameserver 10.0.0.2\nnameserver fd00::53\noptions ndots:5\n";
        let up = Upstream::from_resolv_conf(text, &[]);
        assert_eq!(
            up.servers,
            vec!["10.0.0.2:53".parse().unwrap(), "[fd00::53]:53".parse().unwrap()]
        );
    }

    #[test]
    fn resolv_conf_may_name_a_port_and_our_own_address_is_left_out() {
        let own: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let up = Upstream::from_resolv_conf("nameserver 127.0.0.1\nnameserver 127.0.0.1:5353\n", &[own]);
        assert_eq!(up.servers, vec!["127.0.0.1:5353".parse().unwrap()]);
    }
}
