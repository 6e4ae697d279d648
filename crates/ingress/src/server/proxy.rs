//! One request, carried out as the router decides: answered directly, redirected, or forwarded
//! to an endpoint over a pooled connection, with the forwarded headers ingress-nginx sets.
//!
//! Endpoints are taken round-robin per request. A refused connection moves on to the next
//! endpoint (ingress-nginx's `proxy_next_upstream error`) when the request has no body to
//! replay; when every endpoint refuses the answer is 502, and 504 when the upstream is too slow.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
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

use super::headers::{content_length, in_place_head, request_host, strip_hop_by_hop, upstream_headers};
use super::upstream;
use super::RouterHandle;
use crate::decision::{cookie, Decision, Protocol, RequestView, Upstream};

/// Errors of answer bodies: hyper's, or a cut or malformed endpoint answer.
type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Out = Response<BoxBody<Bytes, BoxError>>;
type UpBody = BoxBody<Bytes, hyper::Error>;

/// The server's side of proxying: the router, and pooled clients towards endpoints.
pub struct Proxy {
    handle: RouterHandle,
    /// Kept HTTP/1.1 connections for requests without a body (the common case).
    pool: Arc<upstream::Pool>,
    http1: Client<HttpConnector, UpBody>,
    http2: Client<HttpConnector, UpBody>,
    /// For `backend-protocol: HTTPS` (an error if rustls refused the configuration).
    tls: Result<Arc<rustls::ClientConfig>, String>,
    turns: Turns,
}

/// Round-robin turns per endpoint list (nginx keeps one per upstream block): requests for
/// different Services interleaving must not make one Service's turns skip endpoints.
#[derive(Default)]
struct Turns(Mutex<HashMap<u64, usize>>);

impl Turns {
    /// The next turn for `endpoints` (the caller takes it modulo their number).
    fn next(&self, endpoints: &[SocketAddr]) -> usize {
        let mut hasher = std::hash::DefaultHasher::new();
        endpoints.hash(&mut hasher);
        let key = hasher.finish();
        let mut turns = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Lists from tables long replaced are forgotten wholesale (rarely: 10,000 lists).
        if turns.len() >= 10_000 && !turns.contains_key(&key) {
            turns.clear();
        }
        let turn = turns.entry(key).or_insert(0);
        let now = *turn;
        *turn = now.wrapping_add(1);
        now
    }
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
            turns: Turns::default(),
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

    async fn forward(&self, req: Request<Incoming>, up: Upstream, peer: SocketAddr, host: &str, tls: bool) -> Out {
        if let (Some(max), Some(len)) = (up.max_body, content_length(req.headers())) {
            if len > max {
                return respond(413, &[], "413 Request Entity Too Large\n".into());
            }
        }
        let upgrade = req.headers().contains_key(header::UPGRADE);
        let replayable = req.body().is_end_stream();
        // GET and HEAD without a body or upgrade to an HTTP(S) endpoint (nearly every request)
        // go over the in-place client; the rest over hyper's.
        let in_place = (up.protocol == Protocol::Http || up.protocol == Protocol::Https && self.tls.is_ok())
            && !upgrade
            && replayable
            && (req.method() == http::Method::GET || req.method() == http::Method::HEAD);
        if in_place {
            return self.forward_in_place(req, up, peer, host, tls).await;
        }
        // Boxed: the rarer path's state (hyper's client, TLS) would otherwise make every
        // request's future kilobytes larger, and HTTP/2 moves each stream's future once.
        Box::pin(self.forward_by_hyper(req, up, peer, host, tls, upgrade, replayable)).await
    }

    /// Anything but a GET or HEAD without body to an HTTP(S) endpoint: over hyper's clients
    /// (a TLS connection per request for HTTPS endpoints).
    #[allow(clippy::too_many_arguments)]
    async fn forward_by_hyper(
        &self,
        mut req: Request<Incoming>,
        up: Upstream,
        peer: SocketAddr,
        host: &str,
        tls: bool,
        upgrade: bool,
        replayable: bool,
    ) -> Out {
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let (parts, incoming) = req.into_parts();
        let mut body = Some(incoming);
        // A body of unknown length under a limit is read first, as nginx buffers request
        // bodies: over the limit is 413 before any endpoint is asked, and the request can be
        // replayed on the next endpoint.
        let mut buffered = None;
        if let (Some(max), false, None) = (up.max_body, replayable || upgrade, content_length(&parts.headers)) {
            let limit = usize::try_from(max).unwrap_or(usize::MAX);
            let Some(whole) = body.take() else {
                return respond(500, &[], "500 Internal Server Error\n".into());
            };
            match http_body_util::Limited::new(whole, limit).collect().await {
                Ok(all) => buffered = Some(all.to_bytes()),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                    return respond(413, &[], "413 Request Entity Too Large\n".into())
                }
                Err(_) => return respond(400, &[], "400 Bad Request\n".into()),
            }
        }
        let replayable = replayable || buffered.is_some();
        let headers = upstream_headers(&parts.headers, &up, peer, host, tls, upgrade);
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
            let upstream_body: UpBody = match (&buffered, replayable, body.take()) {
                (Some(all), _, _) => Full::new(all.clone()).map_err(|never| match never {}).boxed(),
                (None, false, Some(b)) => b.boxed(),
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
        (sticky.unwrap_or_else(|| self.turns.next(&up.endpoints)), sticky)
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
            let tls = match up.protocol {
                Protocol::Https => self.tls.as_ref().ok(),
                _ => None,
            };
            let sent = upstream::exchange(
                &self.pool,
                endpoint,
                tls,
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
        let endpoint = backend[self.turns.next(backend) % backend.len()];
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
            if let Some(page) = Box::pin(self.error_page(up, status, accept)).await {
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

    #[test]
    fn an_affinity_token_is_stable_and_differs_per_endpoint() {
        let (a, b) = ("10.0.0.1:80".parse().unwrap(), "10.0.0.2:80".parse().unwrap());
        assert_eq!(endpoint_token(a), endpoint_token(a));
        assert_ne!(endpoint_token(a), endpoint_token(b));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("x=1; INGRESSCOOKIE=abc"));
        assert_eq!(cookie(&h, "INGRESSCOOKIE"), Some("abc"));
    }
}
