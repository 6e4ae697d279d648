//! One request, carried out as the router decides: answered directly, redirected, or forwarded
//! to an endpoint over a pooled connection, with the forwarded headers ingress-nginx sets.
//!
//! Endpoints are taken round-robin per request. A refused connection moves on to the next
//! endpoint (ingress-nginx's `proxy_next_upstream error`) when the request has no body to
//! replay; when every endpoint refuses the answer is 502, and 504 when the upstream is too slow.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Response, StatusCode, Uri, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Incoming};
use hyper::Request;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::upstream;
use super::RouterHandle;
use crate::decision::{cookie, Decision, Protocol, RequestView, Upstream};

/// Errors of answer bodies: hyper's, or a cut or malformed endpoint answer.
type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Out = Response<BoxBody<Bytes, BoxError>>;
type UpBody = BoxBody<Bytes, hyper::Error>;

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

/// The server's side of proxying: the router, and pooled clients towards endpoints.
pub struct Proxy {
    handle: RouterHandle,
    /// Kept HTTP/1.1 connections for requests without a body (the common case).
    pool: Arc<upstream::Pool>,
    http1: Client<HttpConnector, UpBody>,
    http2: Client<HttpConnector, UpBody>,
    /// For `backend-protocol: HTTPS` (an error if rustls refused the configuration).
    tls: Result<Arc<rustls::ClientConfig>, String>,
    turn: AtomicUsize,
}

/// Why an exchange with an endpoint failed.
pub enum Failure {
    /// The endpoint did not take the connection: another may.
    Connect(String),
    /// Anything after that.
    Exchange(String),
    /// The endpoint did not answer in time.
    Timeout,
}

impl Proxy {
    /// Proxying by `handle`'s tables.
    pub fn new(handle: RouterHandle) -> Proxy {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let http1 = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(1024)
            .build(connector.clone());
        let http2 = Client::builder(TokioExecutor::new()).http2_only(true).build(connector);
        let tls = podway_tls::accept_any_client_config()
            .map(|mut c| {
                c.alpn_protocols = vec![b"http/1.1".to_vec()];
                Arc::new(c)
            })
            .map_err(|e| e.to_string());
        Proxy {
            handle,
            pool: Arc::default(),
            http1,
            http2,
            tls,
            turn: AtomicUsize::new(0),
        }
    }

    /// Answer `req` from client `peer`; `sni` is Some on TLS connections.
    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr, sni: Option<&str>) -> Out {
        let host = request_host(&req)
            .or_else(|| sni.map(str::to_string))
            .unwrap_or_default();
        let view = RequestView {
            host: &host,
            path: req.uri().path(),
            query: req.uri().query(),
            method: req.method().as_str(),
            headers: req.headers(),
            client_ip: peer.ip(),
            tls: sni.is_some(),
        };
        let decision = self.handle.load().decide(&view);
        match decision {
            Decision::Respond { status, headers, body } => respond(status, &headers, body),
            Decision::Redirect { status, location } => {
                let mut r = respond(status, &[], String::new());
                if let Ok(v) = HeaderValue::from_str(&location) {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                r
            }
            Decision::Proxy(up) => self.forward(req, *up, peer, &host, sni.is_some()).await,
        }
    }

    async fn forward(&self, mut req: Request<Incoming>, up: Upstream, peer: SocketAddr, host: &str, tls: bool) -> Out {
        if let (Some(max), Some(len)) = (up.max_body, content_length(req.headers())) {
            if len > max {
                return respond(413, &[], "413 Request Entity Too Large\n".into());
            }
        }
        let upgrade = req.headers().contains_key(header::UPGRADE);
        let replayable = req.body().is_end_stream();
        // GET and HEAD without a body or upgrade to a plain endpoint (nearly every request)
        // go over the in-place client; the rest over hyper's.
        let in_place = up.protocol == Protocol::Http
            && !upgrade
            && replayable
            && (req.method() == http::Method::GET || req.method() == http::Method::HEAD);
        if in_place {
            return self.forward_in_place(req, up, peer, host, tls).await;
        }
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let (parts, body) = req.into_parts();
        let headers = upstream_headers(&parts.headers, &up, peer, host, tls, upgrade);
        let mut body = Some(body);
        let n = up.endpoints.len();
        let (first, sticky) = self.first_endpoint(&up, &parts.headers);
        let attempts = if replayable { n } else { 1 };
        for attempt in 0..attempts {
            let endpoint = up.endpoints[(first + attempt) % n];
            // The pooled clients take absolute URIs; a TLS connection of its own, origin-form.
            let uri = match up.protocol {
                Protocol::Https => up.path_and_query.clone(),
                _ => format!("http://{endpoint}{}", up.path_and_query),
            };
            let Ok(uri) = uri.parse::<Uri>() else {
                return respond(400, &[], "400 Bad Request\n".into());
            };
            let upstream_body: UpBody = match (replayable, body.take()) {
                (false, Some(b)) => b.boxed(),
                _ => Empty::new().map_err(|never| match never {}).boxed(),
            };
            let mut outgoing = Request::new(upstream_body);
            *outgoing.method_mut() = parts.method.clone();
            *outgoing.uri_mut() = uri;
            *outgoing.headers_mut() = headers.clone();
            *outgoing.version_mut() = if up.protocol == Protocol::Grpc {
                Version::HTTP_2
            } else {
                Version::HTTP_11
            };
            let sent = tokio::time::timeout(
                up.timeouts.connect + up.timeouts.read,
                self.send(&up, endpoint, outgoing),
            )
            .await
            .unwrap_or(Err(Failure::Timeout));
            match sent {
                Ok(resp) => {
                    let accept = parts.headers.get(header::ACCEPT).cloned();
                    let mut out = self.finish(resp, &up, client_upgrade, accept).await;
                    if let (Some(a), None) = (&up.affinity, sticky) {
                        set_affinity_cookie(&mut out, a, endpoint);
                    }
                    return out;
                }
                Err(Failure::Connect(_)) if attempt + 1 < attempts => continue,
                Err(e) => return failed(endpoint, e),
            }
        }
        respond(502, &[], "502 Bad Gateway\n".into())
    }

    /// The endpoint to try first, and whether the affinity cookie named it: the endpoint the
    /// cookie names while it is still there, otherwise the next one in turn.
    fn first_endpoint(&self, up: &Upstream, headers: &HeaderMap) -> (usize, Option<usize>) {
        let sticky = up.affinity.as_ref().and_then(|a| {
            let token = cookie(headers, &a.cookie)?;
            up.endpoints.iter().position(|e| endpoint_token(*e) == token)
        });
        (
            sticky.unwrap_or_else(|| self.turn.fetch_add(1, Ordering::Relaxed)),
            sticky,
        )
    }

    /// A GET or HEAD without body over the event loop's kept connections, the request head
    /// written once from the client's headers.
    async fn forward_in_place(
        &self,
        req: Request<Incoming>,
        up: Upstream,
        peer: SocketAddr,
        host: &str,
        tls: bool,
    ) -> Out {
        let head = in_place_head(&req, &up, peer, host, tls);
        let head_request = req.method() == http::Method::HEAD;
        let n = up.endpoints.len();
        let (first, sticky) = self.first_endpoint(&up, req.headers());
        for attempt in 0..n {
            let endpoint = up.endpoints[(first + attempt) % n];
            let sent = upstream::exchange(
                &self.pool,
                endpoint,
                &head,
                head_request,
                up.timeouts.connect,
                up.timeouts.read,
            )
            .await;
            match sent {
                Ok(resp) => {
                    let accept = req.headers().get(header::ACCEPT).cloned();
                    let mut out = self.finish(resp, &up, None, accept).await;
                    if let (Some(a), None) = (&up.affinity, sticky) {
                        set_affinity_cookie(&mut out, a, endpoint);
                    }
                    return out;
                }
                Err(Failure::Connect(_)) if attempt + 1 < n => continue,
                Err(e) => return failed(endpoint, e),
            }
        }
        respond(502, &[], "502 Bad Gateway\n".into())
    }

    /// One exchange with `endpoint`: over the pools for HTTP and gRPC, over a TLS connection
    /// of its own for HTTPS backends (their certificates are not checked, as ingress-nginx's
    /// `proxy_ssl_verify off` default).
    async fn send(
        &self,
        up: &Upstream,
        endpoint: SocketAddr,
        req: Request<UpBody>,
    ) -> Result<Response<Incoming>, Failure> {
        let pooled = match up.protocol {
            Protocol::Http => &self.http1,
            Protocol::Grpc => &self.http2,
            Protocol::Https => return self.send_tls(endpoint, req).await,
        };
        pooled.request(req).await.map_err(|e| {
            if e.is_connect() {
                Failure::Connect(e.to_string())
            } else {
                Failure::Exchange(e.to_string())
            }
        })
    }

    async fn send_tls(&self, endpoint: SocketAddr, req: Request<UpBody>) -> Result<Response<Incoming>, Failure> {
        let tcp = tokio::net::TcpStream::connect(endpoint)
            .await
            .map_err(|e| Failure::Connect(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let config = self.tls.clone().map_err(Failure::Exchange)?;
        let name = podway_tls::server_name(&endpoint.ip().to_string()).map_err(|e| Failure::Exchange(e.to_string()))?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| Failure::Exchange(format!("TLS: {e}")))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| Failure::Exchange(e.to_string()))?;
        tokio::spawn(connection.with_upgrades());
        sender
            .send_request(req)
            .await
            .map_err(|e| Failure::Exchange(e.to_string()))
    }

    /// The default backend's page for an intercepted `status`, as ingress-nginx asks for it.
    async fn error_page(&self, up: &Upstream, status: u16, accept: Option<HeaderValue>) -> Option<Out> {
        let backend = up.error_backend.as_ref().filter(|b| !b.is_empty())?;
        let endpoint = backend[self.turn.fetch_add(1, Ordering::Relaxed) % backend.len()];
        let mut req = Request::new(Empty::new().map_err(|never| match never {}).boxed());
        *req.uri_mut() = format!("http://{endpoint}{}", up.path_and_query).parse().ok()?;
        let h = req.headers_mut();
        h.insert("x-code", HeaderValue::from(status));
        h.insert("x-original-uri", HeaderValue::from_str(&up.path_and_query).ok()?);
        h.insert("x-format", accept.unwrap_or(HeaderValue::from_static("text/html")));
        let resp = tokio::time::timeout(up.timeouts.connect + up.timeouts.read, self.http1.request(req))
            .await
            .ok()?
            .ok()?;
        Some(resp.map(|b| b.map_err(Into::into).boxed()))
    }

    async fn finish<B>(
        &self,
        mut resp: Response<B>,
        up: &Upstream,
        client_upgrade: Option<hyper::upgrade::OnUpgrade>,
        accept: Option<HeaderValue>,
    ) -> Out
    where
        B: Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        let status = resp.status().as_u16();
        if up.intercept_errors.contains(&status) {
            if let Some(page) = self.error_page(up, status, accept).await {
                return page;
            }
            let reason = resp.status().canonical_reason().unwrap_or("");
            return respond(status, &[], format!("{status} {reason}\n"));
        }
        if status == 101 {
            if let Some(client_side) = client_upgrade {
                let upstream_side = hyper::upgrade::on(&mut resp);
                tokio::spawn(async move {
                    if let (Ok(a), Ok(b)) = (client_side.await, upstream_side.await) {
                        let (mut a, mut b) = (TokioIo::new(a), TokioIo::new(b));
                        let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                    }
                });
            }
        } else {
            strip_hop_by_hop(resp.headers_mut());
        }
        for (k, v) in &up.response_headers {
            if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
                resp.headers_mut().insert(k, v);
            }
        }
        resp.map(|b| b.map_err(Into::into).boxed())
    }
}

/// The answer for a failed exchange with `endpoint`: 504 when it was too slow, else 502.
fn failed(endpoint: SocketAddr, failure: Failure) -> Out {
    match failure {
        Failure::Timeout => respond(504, &[], "504 Gateway Time-out\n".into()),
        Failure::Connect(e) | Failure::Exchange(e) => {
            tracing::debug!("upstream {endpoint}: {e}");
            respond(502, &[], "502 Bad Gateway\n".into())
        }
    }
}

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
fn in_place_head<B>(req: &Request<B>, up: &Upstream, peer: SocketAddr, host: &str, tls: bool) -> Vec<u8> {
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
    upstream::request_head(
        req.method().as_str(),
        &up.path_and_query,
        upstream_host,
        incoming,
        skip,
        &extra,
    )
}

/// Whether `value` can be written into a header line as it is.
fn header_safe(value: &str) -> bool {
    !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

/// The affinity cookie's value for `endpoint`: a stable hash (FNV-1a) of its address, so it
/// names the same endpoint on every node and across restarts without revealing the address.
fn endpoint_token(endpoint: SocketAddr) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in endpoint.to_string().bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

fn set_affinity_cookie(out: &mut Out, affinity: &crate::decision::Affinity, endpoint: SocketAddr) {
    let mut value = format!(
        "{}={}; Path={}; HttpOnly",
        affinity.cookie,
        endpoint_token(endpoint),
        affinity.path
    );
    if let Some(age) = affinity.max_age {
        value.push_str(&format!("; Max-Age={age}"));
    }
    if let Ok(v) = HeaderValue::from_str(&value) {
        out.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The host a request names: `Host`, else the URI's authority (HTTP/2), lowercase, no port.
fn request_host<B>(req: &Request<B>) -> Option<String> {
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

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
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
fn upstream_headers(
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
    h
}

/// A direct answer.
fn respond(status: u16, headers: &[(String, String)], body: String) -> Out {
    let mut r = Response::new(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed());
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_of(h: &str) -> Option<String> {
        request_host(&Request::builder().header("host", h).body(()).unwrap())
    }

    #[test]
    fn an_affinity_token_is_stable_and_differs_per_endpoint() {
        let (a, b) = ("10.0.0.1:80".parse().unwrap(), "10.0.0.2:80".parse().unwrap());
        assert_eq!(endpoint_token(a), endpoint_token(a));
        assert_ne!(endpoint_token(a), endpoint_token(b));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("x=1; INGRESSCOOKIE=abc"));
        assert_eq!(cookie(&h, "INGRESSCOOKIE"), Some("abc"));
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
}
