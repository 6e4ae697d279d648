//! The headers an exchange sends upstream: hop-by-hop ones dropped, `Host` and the forwarded
//! headers ingress-nginx sets (`X-Forwarded-For` with the client appended, `X-Real-IP`,
//! `X-Forwarded-Proto`/`-Host`/`-Port`, `X-Scheme`, `X-Request-ID`, `X-Forwarded-Prefix`), as a
//! header map for hyper's client or as bytes for the in-place one.

use std::net::SocketAddr;

use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Request};

use super::upstream;
use crate::decision::Upstream;

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

/// Whether `name` is a hop-by-hop header (RFC 9110 §7.6.1) or `Upgrade`.
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str()) || name == header::UPGRADE
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_SCHEME: HeaderName = HeaderName::from_static("x-scheme");
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");

/// The HTTP/1.1 request head for the in-place client: the same headers [`upstream_headers`]
/// gives, written straight into bytes.
pub fn in_place_head<B>(req: &Request<B>, up: &Upstream, peer: SocketAddr, host: &str, tls: bool) -> Vec<u8> {
    let incoming = req.headers();
    // Headers the Connection header names are hop-by-hop too (rare: computed only then).
    let named: Vec<HeaderName> = incoming
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    let prefix = up.forwarded_prefix.as_deref().filter(|p| header_safe(p));
    let cookies = joined_cookies(incoming);
    let skip = |name: &HeaderName| {
        is_hop_by_hop(name)
            || name == header::HOST
            || name == X_FORWARDED_FOR
            || name == X_REAL_IP
            || name == X_FORWARDED_PROTO
            || name == X_FORWARDED_HOST
            || name == X_FORWARDED_PORT
            || name == X_SCHEME
            || (prefix.is_some() && name == X_FORWARDED_PREFIX)
            || (cookies.is_some() && name == header::COOKIE)
            || named.contains(name)
    };
    let original_host = incoming.get(header::HOST).map_or(host.as_bytes(), |v| v.as_bytes());
    let upstream_host = up
        .host
        .as_deref()
        .filter(|h| header_safe(h))
        .map_or(original_host, str::as_bytes);
    let client = peer.ip().to_string();
    let forwarded_for = match incoming.get(&X_FORWARDED_FOR) {
        Some(before) => [before.as_bytes(), b", ", client.as_bytes()].concat(),
        None => client.clone().into_bytes(),
    };
    let (scheme, port): (&[u8], &[u8]) = if tls { (b"https", b"443") } else { (b"http", b"80") };
    let request_id = (!incoming.contains_key(&X_REQUEST_ID)).then(|| format!("{:032x}", rand::random::<u128>()));
    let mut extra: Vec<(&HeaderName, &[u8])> = vec![
        (&X_FORWARDED_FOR, &forwarded_for),
        (&X_REAL_IP, client.as_bytes()),
        (&X_FORWARDED_PROTO, scheme),
        (&X_FORWARDED_HOST, original_host),
        (&X_FORWARDED_PORT, port),
        (&X_SCHEME, scheme),
    ];
    if let Some(id) = &request_id {
        extra.push((&X_REQUEST_ID, id.as_bytes()));
    }
    if let Some(p) = prefix {
        extra.push((&X_FORWARDED_PREFIX, p.as_bytes()));
    }
    if let Some(c) = &cookies {
        extra.push((&header::COOKIE, c));
    }
    upstream::request_head(
        req.method().as_str(),
        &up.path_and_query,
        upstream_host,
        incoming,
        skip,
        &extra,
    )
}

/// Several `Cookie` fields as the one HTTP/1.1 allows, joined by "; " (HTTP/2 clients send a
/// field per cookie; RFC 9113 §8.2.3); None when there are fewer than two.
fn joined_cookies(incoming: &HeaderMap) -> Option<Vec<u8>> {
    let mut all = incoming.get_all(header::COOKIE).iter();
    let first = all.next()?;
    let mut rest = all.peekable();
    rest.peek()?;
    let mut joined = first.as_bytes().to_vec();
    for c in rest {
        joined.extend_from_slice(b"; ");
        joined.extend_from_slice(c.as_bytes());
    }
    Some(joined)
}

/// Whether `value` can be written into a header line as it is.
fn header_safe(value: &str) -> bool {
    !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

/// The host a request names: `Host`, else the URI's authority (HTTP/2), lowercase, no port.
pub fn request_host<B>(req: &Request<B>) -> Option<String> {
    let raw = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))?;
    let without_port = match raw.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(']') || raw.starts_with('[') => {
            h.trim_start_matches('[').trim_end_matches(']')
        }
        _ => raw,
    };
    Some(without_port.to_ascii_lowercase())
}

/// The request's `Content-Length`, if it has a valid one.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// Removes the hop-by-hop headers, those `Connection` names and `Upgrade`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers the Connection header names are hop-by-hop too.
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    for h in HOP_BY_HOP.iter().copied().chain(named.iter().map(String::as_str)) {
        headers.remove(h);
    }
    headers.remove(header::UPGRADE);
}

/// The request headers towards the endpoint: hop-by-hop ones removed (kept for an upgrade),
/// `Host` and the forwarded headers set.
pub fn upstream_headers(
    incoming: &HeaderMap,
    up: &Upstream,
    peer: SocketAddr,
    host: &str,
    tls: bool,
    upgrade: bool,
) -> HeaderMap {
    let mut h = incoming.clone();
    let upgrade_to = h.get(header::UPGRADE).cloned();
    strip_hop_by_hop(&mut h);
    if let (true, Some(u)) = (upgrade, upgrade_to) {
        h.insert(header::UPGRADE, u);
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    let client = peer.ip().to_string();
    let forwarded_for = match incoming.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(before) => format!("{before}, {client}"),
        None => client.clone(),
    };
    let original_host = incoming
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| host.to_string());
    let set = |h: &mut HeaderMap, name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    set(&mut h, "host", up.host.as_deref().unwrap_or(&original_host));
    set(&mut h, "x-forwarded-for", &forwarded_for);
    set(&mut h, "x-real-ip", &client);
    set(&mut h, "x-forwarded-proto", if tls { "https" } else { "http" });
    set(&mut h, "x-forwarded-host", &original_host);
    set(&mut h, "x-forwarded-port", if tls { "443" } else { "80" });
    set(&mut h, "x-scheme", if tls { "https" } else { "http" });
    if !h.contains_key("x-request-id") {
        set(&mut h, "x-request-id", &format!("{:032x}", rand::random::<u128>()));
    }
    if let Some(prefix) = &up.forwarded_prefix {
        set(&mut h, "x-forwarded-prefix", prefix);
    }
    if let Some(joined) = joined_cookies(incoming).and_then(|c| HeaderValue::from_bytes(&c).ok()) {
        h.insert(header::COOKIE, joined);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Protocol;

    fn host_of(h: &str) -> Option<String> {
        request_host(&Request::builder().header("host", h).body(()).unwrap())
    }

    #[test]
    fn the_host_loses_its_port_and_case() {
        assert_eq!(host_of("Example.COM:8080").as_deref(), Some("example.com"));
        assert_eq!(host_of("example.com").as_deref(), Some("example.com"));
        assert_eq!(host_of("[::1]:80").as_deref(), Some("::1"));
    }

    #[test]
    fn forwarded_headers_append_the_client_and_hop_by_hop_ones_go() {
        let mut incoming = HeaderMap::new();
        incoming.insert("host", HeaderValue::from_static("a.example.com"));
        incoming.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.5"));
        incoming.insert("connection", HeaderValue::from_static("keep-alive, x-secret"));
        incoming.insert("x-secret", HeaderValue::from_static("1"));
        let up = Upstream {
            endpoints: Vec::new().into(),
            protocol: Protocol::Http,
            path_and_query: "/".into(),
            host: None,
            forwarded_prefix: Some("/api".into()),
            timeouts: Default::default(),
            max_body: None,
            affinity: None,
            response_headers: vec![],
            intercept_errors: vec![],
            error_backend: None,
        };
        let h = upstream_headers(
            &incoming,
            &up,
            "192.0.2.9:5000".parse().unwrap(),
            "a.example.com",
            true,
            false,
        );
        assert_eq!(h["x-forwarded-for"], "203.0.113.5, 192.0.2.9");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-prefix"], "/api");
        assert_eq!(h["host"], "a.example.com");
        assert_eq!(h["x-request-id"].len(), 32);
        assert!(!h.contains_key("connection") && !h.contains_key("x-secret"));
    }

    #[test]
    fn cookies_sent_as_several_fields_reach_the_endpoint_as_one() {
        let mut incoming = HeaderMap::new();
        incoming.append("cookie", HeaderValue::from_static("a=1"));
        incoming.append("cookie", HeaderValue::from_static("b=2"));
        let up = Upstream {
            endpoints: Vec::new().into(),
            protocol: Protocol::Http,
            path_and_query: "/".into(),
            host: None,
            forwarded_prefix: None,
            timeouts: Default::default(),
            max_body: None,
            affinity: None,
            response_headers: vec![],
            intercept_errors: vec![],
            error_backend: None,
        };
        let peer = "192.0.2.9:5000".parse().unwrap();
        let h = upstream_headers(&incoming, &up, peer, "a.example.com", false, false);
        assert_eq!(h.get_all("cookie").iter().collect::<Vec<_>>(), ["a=1; b=2"]);
        let mut req = Request::new(());
        *req.headers_mut() = incoming;
        let head = String::from_utf8(in_place_head(&req, &up, peer, "a.example.com", false)).unwrap();
        assert_eq!(head.matches("cookie: ").count(), 1, "{head}");
        assert!(head.contains("\r\ncookie: a=1; b=2\r\n"), "{head}");
    }
}
