//! The REST engine: one set of handlers for every kind, parameterised by its strategy.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use podway_api::status::ApiError;
use podway_store::Store;
use serde_json::{json, Value};

use crate::body::MAX_BODY;
use crate::cache::WatchCache;
use crate::discovery::Discovery;
use crate::kubelet::KubeletClient;
use crate::openapi::OpenApiDocuments;
use crate::registry::{Registry, Strategy};
use crate::request::{parse_path, Query, ResourcePath, Target};
use crate::response::{self, Body};

mod object;
mod read;
mod streams;
mod sub;
pub mod write;

/// The version podway reports. kubectl's dispatcher picks its binary from the minor version,
/// so it must say 32 (kubectl-wire.md §1).
pub const VERSION: (&str, &str, &str) = ("1", "32", "v1.32.4");

/// Everything a request handler needs.
pub struct Api {
    /// The kinds served.
    pub registry: Registry,
    /// Where objects are persisted.
    pub store: Arc<dyn Store>,
    /// Lists and watches are served from here.
    pub cache: Arc<WatchCache>,
    /// Discovery documents, built once.
    pub discovery: Discovery,
    /// OpenAPI v3 documents, built once.
    pub openapi: OpenApiDocuments,
    /// How node agents are reached for logs, exec, attach and port-forward.
    pub kubelet: KubeletClient,
}

/// One request, with what every handler reads.
pub struct Call {
    /// HTTP method.
    pub method: Method,
    /// Parsed query.
    pub query: Query,
    /// `Accept` header.
    pub accept: String,
    /// `Content-Type` header.
    pub content_type: String,
    /// The body (already read, within [`MAX_BODY`]).
    pub body: Bytes,
    /// The raw request headers (upgrades read them).
    pub headers: http::HeaderMap,
    /// The client's connection once answered 101 (exec, attach, port-forward).
    pub upgrade: Option<hyper::upgrade::OnUpgrade>,
}

impl Api {
    /// Serve one authenticated request.
    pub async fn serve(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let (mut parts, incoming) = req.into_parts();
        let upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
        let path = parts.uri.path().to_string();
        let query = Query::parse(parts.uri.query());
        let header = |name: http::header::HeaderName| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let accept = header(http::header::ACCEPT);
        let content_type = header(http::header::CONTENT_TYPE);
        let body = match read_body(incoming).await {
            Ok(b) => b,
            Err(e) => return response::error(&e),
        };
        tracing::debug!(method = %parts.method, uri = %parts.uri, "request");
        let call = Call {
            method: parts.method,
            query,
            accept,
            content_type,
            body,
            headers: parts.headers,
            upgrade,
        };
        match self.route(&path, call).await {
            Ok(resp) => resp,
            Err(e) => response::error(&e),
        }
    }

    async fn route(self: &Arc<Self>, path: &str, call: Call) -> Result<Response<Body>, ApiError> {
        match parse_path(path) {
            Target::Version => Ok(response::json(200, &version())),
            Target::Health => Ok(response::bytes(200, "text/plain; charset=utf-8", "ok")),
            Target::CoreGroups => Ok(self.discovery.core(&call.accept)),
            Target::Groups => Ok(self.discovery.groups(&call.accept)),
            Target::Group(g) => self.discovery.group(&g).ok_or_else(ApiError::path_not_found),
            Target::Resources(g, v) => self.discovery.resources(&g, &v).ok_or_else(ApiError::path_not_found),
            Target::OpenApiRoot => Ok(response::json(200, self.openapi.root())),
            Target::OpenApiV2 => Ok(openapi_v2(&call.accept)),
            Target::OpenApiDocument(gv) => {
                let (doc, hash) = self.openapi.document(&gv).ok_or_else(ApiError::path_not_found)?;
                let mut resp = response::bytes(200, "application/json", Bytes::copy_from_slice(doc));
                if let Ok(v) = http::HeaderValue::from_str(&format!("\"{hash}\"")) {
                    resp.headers_mut().insert(http::header::ETAG, v);
                }
                Ok(resp)
            }
            Target::Resource(rp) => self.resource(rp, call).await,
            Target::Unknown => Err(ApiError::path_not_found()),
        }
    }

    async fn resource(self: &Arc<Self>, rp: ResourcePath, call: Call) -> Result<Response<Body>, ApiError> {
        let strategy = self
            .registry
            .get_version(&rp.group, &rp.version, &rp.resource)
            .cloned()
            .ok_or_else(ApiError::path_not_found)?;
        match strategy.deprecation_warning() {
            // A deprecated version warns on every answer, errors included, as upstream's
            // handlers for such a version do.
            Some(warning) => {
                let resp = self
                    .versioned(&strategy, rp, call)
                    .await
                    .unwrap_or_else(|e| response::error(&e));
                Ok(response::with_warnings(resp, &[warning]))
            }
            None => self.versioned(&strategy, rp, call).await,
        }
    }

    async fn versioned(
        self: &Arc<Self>,
        strategy: &Arc<dyn Strategy>,
        rp: ResourcePath,
        call: Call,
    ) -> Result<Response<Body>, ApiError> {
        if !strategy.info().namespaced && !rp.namespace.is_empty() {
            return Err(ApiError::path_not_found());
        }
        if !rp.subresource.is_empty() {
            return sub::serve(self, strategy, &rp, call).await;
        }
        let s = strategy.as_ref();
        match (&call.method, rp.name.is_empty()) {
            (&Method::GET, true) if call.query.flag("watch") => read::watch(self, s, &rp, &call).await,
            (&Method::GET, true) => read::list(self, s, &rp, &call).await,
            (&Method::GET, false) => read::get(self, s, &rp, &call),
            (&Method::POST, true) => write::create(self, s, &rp, &call).await,
            (&Method::PUT, false) => write::update(self, s, &rp, &call, false).await,
            (&Method::PATCH, false) => write::patch(self, s, &rp, &call, false).await,
            (&Method::DELETE, false) => write::delete(self, s, &rp, &call).await,
            (&Method::DELETE, true) => write::delete_collection(self, s, &rp, &call).await,
            (m, _) => Err(ApiError::method_not_allowed(m.as_str(), &rp.resource)),
        }
    }

    /// The strategy for a kind by group and plural, in its preferred version (internal callers).
    pub fn strategy(&self, group: &str, plural: &str) -> Option<&Arc<dyn Strategy>> {
        self.registry.get(group, plural)
    }

    /// The strategy for a kind in one version.
    pub fn strategy_version(&self, group: &str, version: &str, plural: &str) -> Option<&Arc<dyn Strategy>> {
        self.registry.get_version(group, version, plural)
    }
}

async fn read_body(incoming: Incoming) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(incoming, MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(ApiError::too_large(MAX_BODY)),
        Err(e) => Err(ApiError::bad_request(format!("reading the request body: {e}"))),
    }
}

/// `/openapi/v2`: an empty document. kubectl reads it only when a kind is missing from the v3
/// documents (a manifest of a kind podway does not serve, say): with no schema for the kind it
/// skips client-side validation and reports the kind as unknown, exactly as against a real
/// server; a 404 here would make it fail with "failed to download openapi" instead. An empty
/// protobuf message is a valid, empty `openapi_v2.Document`.
fn openapi_v2(accept: &str) -> Response<Body> {
    if accept.contains("protobuf") {
        response::bytes(
            200,
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
            Bytes::new(),
        )
    } else {
        let doc = json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": VERSION.2}, "paths": {}, "definitions": {}});
        response::json(200, &doc)
    }
}

/// `/version`.
pub fn version() -> Value {
    let (major, minor, git) = VERSION;
    json!({
        "major": major, "minor": minor, "gitVersion": git,
        "gitCommit": "podway", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0", "compiler": "gc", "platform": "linux/amd64",
    })
}
