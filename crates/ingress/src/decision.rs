//! What the router tells the server about one request.
//!
//! The routing side (Ingress rules, precedence, annotations) is pure: it sees a
//! [`RequestView`] and answers with a [`Decision`]. The serving side (listeners, TLS, HTTP/1.1
//! and HTTP/2, connection pools, WebSocket upgrades, forwarded headers) carries the decision
//! out. Neither knows how the other works.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The parts of a request that routing looks at.
#[derive(Debug, Clone)]
pub struct RequestView<'a> {
    /// The host, lowercase, without port (from `Host` or `:authority`; the SNI name for TLS
    /// connections without one).
    pub host: &'a str,
    /// The path, percent-encoded as received, without the query.
    pub path: &'a str,
    /// The query string without `?`, if any.
    pub query: Option<&'a str>,
    /// The request method.
    pub method: &'a str,
    /// The request headers, as received.
    pub headers: &'a http::HeaderMap,
    /// The client's address as the server saw it.
    pub client_ip: IpAddr,
    /// Whether the request arrived over TLS.
    pub tls: bool,
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Forward it upstream (boxed: the other answers are small).
    Proxy(Box<Upstream>),
    /// Answer with a redirect (301, 302, 307 or 308) to `location`.
    Redirect {
        /// The status code.
        status: u16,
        /// The `Location` header.
        location: String,
    },
    /// Answer directly (404 from the default backend, 503 without endpoints, 403 from a source
    /// range, 204 for a CORS preflight, 413 for a body too large...).
    Respond {
        /// The status code.
        status: u16,
        /// Extra response headers.
        headers: Vec<(String, String)>,
        /// The body.
        body: String,
    },
}

/// How the upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// HTTP/1.1 over plain TCP (the default).
    #[default]
    Http,
    /// HTTP/1.1 over TLS (certificate not verified, as ingress-nginx does by default).
    Https,
    /// gRPC: HTTP/2 over plain TCP.
    Grpc,
}

/// Timeouts towards the upstream (`proxy-connect-timeout`, `proxy-read-timeout`,
/// `proxy-send-timeout`; ingress-nginx's defaults are 5 s, 60 s and 60 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting to one endpoint.
    pub connect: Duration,
    /// Between two reads of the response.
    pub read: Duration,
    /// Between two writes of the request.
    pub send: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            read: Duration::from_secs(60),
            send: Duration::from_secs(60),
        }
    }
}

/// Cookie affinity (`affinity: cookie`): the server picks the endpoint named by the cookie if
/// it is still there, else picks one and sets the cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Affinity {
    /// The cookie's name (`session-cookie-name`, default `INGRESSCOOKIE`).
    pub cookie: String,
    /// Its path (`session-cookie-path`, default the Ingress path).
    pub path: String,
    /// Its max age in seconds, if any (`session-cookie-max-age`).
    pub max_age: Option<u64>,
}

/// Where and how to forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The ready endpoints to balance over, per request (never empty: no endpoints is a 503
    /// [`Decision::Respond`]). The server retries the next one when a connection is refused.
    /// Shared with the routing table, so deciding copies no list.
    pub endpoints: std::sync::Arc<[SocketAddr]>,
    /// How to speak to them.
    pub protocol: Protocol,
    /// The path (and query) to send upstream, after any rewrite.
    pub path_and_query: String,
    /// The `Host` header to send (`upstream-vhost`); None keeps the client's.
    pub host: Option<String>,
    /// `X-Forwarded-Prefix` to add (`x-forwarded-prefix`).
    pub forwarded_prefix: Option<String>,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Largest request body accepted (`proxy-body-size`, default 1 MiB; None: unlimited).
    pub max_body: Option<u64>,
    /// Cookie affinity, if set.
    pub affinity: Option<Affinity>,
    /// Headers to add to the response (CORS).
    pub response_headers: Vec<(String, String)>,
    /// Upstream answers with these statuses are replaced (`custom-http-errors`): by the
    /// answer of [`Upstream::error_backend`] when there is one, else by a short page.
    pub intercept_errors: Vec<u16>,
    /// The `default-backend` annotation's endpoints, asked for the page of an intercepted
    /// error (with `X-Code`, `X-Original-URI` and `X-Format` as ingress-nginx sends them).
    pub error_backend: Option<std::sync::Arc<[SocketAddr]>>,
}

/// Routing, as the server calls it. Implementations are swapped atomically when the
/// configuration changes, so a request sees one consistent table.
pub trait Router: Send + Sync {
    /// Decide what to do with `request`.
    fn decide(&self, request: &RequestView<'_>) -> Decision;

    /// The certificate chain and key (PEM) for a TLS client hello naming `server_name`, if an
    /// Ingress has a TLS section for it (None: the server's default certificate).
    fn certificate(&self, server_name: &str) -> Option<(String, String)>;
}

/// The value of cookie `name` in `headers` (every `Cookie` header, `;`-separated pairs).
pub fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}
