//! Answering one request from the table, in the order nginx's phases give ingress-nginx:
//!
//! 1. `app-root` (a server-level rewrite: before anything of the location);
//! 2. a location denied by an annotation that does not parse: 503;
//! 3. CORS: a preflight (`OPTIONS` from an allowed origin) is answered 204;
//! 4. `temporal-redirect` / `permanent-redirect`;
//! 5. ssl-redirect / force-ssl-redirect (Lua at the end of the rewrite phase): 308;
//! 6. `whitelist-source-range` (the access phase): 403;
//! 7. the backend: proxy, 503 without endpoints, 404 without a backend.

use crate::decision::{Decision, RequestView, Router, Upstream};

use super::{canary, paths, RouteTable, Target};

impl Router for RouteTable {
    fn decide(&self, request: &RequestView<'_>) -> Decision {
        let route = self.server_for(request.host).best(request.path);
        let o = &route.options;
        let scheme = if request.tls { "https" } else { "http" };

        if let Some(root) = &o.app_root {
            if request.path == "/" {
                return Decision::Redirect {
                    status: 302,
                    location: format!("{scheme}://{}{root}", host_with_port(request)),
                };
            }
        }
        if o.denied.is_some() {
            return respond(503, "503 Service Temporarily Unavailable");
        }
        let origin = request.headers.get(http::header::ORIGIN).and_then(|v| v.to_str().ok());
        let cors = o.cors.as_ref().and_then(|c| c.headers(origin));
        if let Some(headers) = &cors {
            if request.method == "OPTIONS" {
                let mut headers = headers.clone();
                headers.push(("Content-Type".into(), "text/plain charset=UTF-8".into()));
                return Decision::Respond {
                    status: 204,
                    headers,
                    body: String::new(),
                };
            }
        }
        if let Some((location, status)) = &o.redirect {
            return Decision::Redirect {
                status: *status,
                location: location.clone(),
            };
        }
        if !request.tls && (o.force_ssl_redirect || (o.ssl_redirect && self.has_tls(request.host))) {
            let mut uri = with_query(request.path, request.query);
            // ingress-nginx drops a trailing slash of the whole request URI unless
            // preserve-trailing-slash says otherwise.
            if !o.preserve_trailing_slash && uri.ends_with('/') {
                uri.pop();
            }
            return Decision::Redirect {
                status: 308,
                location: format!("https://{}{uri}", request.host),
            };
        }
        if !o.allow_sources.is_empty() && !o.allow_sources.iter().any(|n| n.contains(&request.client_ip)) {
            return respond(403, "403 Forbidden");
        }

        let target = match &route.canary {
            Some((t, rule)) if canary::wants(rule, request) => t,
            _ => &route.target,
        };
        let endpoints = match (target, &route.fallback) {
            (Target::Endpoints(e), _) => e.clone(),
            (Target::Unavailable, Some(fallback)) => fallback.clone(),
            (Target::Unavailable, None) => return respond(503, "503 Service Temporarily Unavailable"),
            (Target::NotFound, _) => return respond(404, "404 Not Found"),
        };
        let path_and_query = match &o.rewrite_target {
            Some(t) if !route.is_default => paths::rewrite(&route.matcher, request.path, request.query, t),
            _ => with_query(request.path, request.query),
        };
        Decision::Proxy(Box::new(Upstream {
            endpoints,
            protocol: o.protocol,
            path_and_query,
            host: o.upstream_vhost.clone(),
            forwarded_prefix: o.forwarded_prefix.clone(),
            timeouts: o.timeouts,
            max_body: o.max_body,
            affinity: o.affinity.clone().map(|mut a| {
                if a.path.is_empty() {
                    a.path = route.rule_path.clone();
                }
                a
            }),
            response_headers: cors.unwrap_or_default(),
            intercept_errors: o.intercept_errors.clone(),
            error_backend: route.fallback.clone().filter(|_| !o.intercept_errors.is_empty()),
        }))
    }

    fn certificate(&self, server_name: &str) -> Option<(String, String)> {
        let name = server_name.to_ascii_lowercase();
        self.certificates.get(&name).cloned().or_else(|| {
            let (_, domain) = name.split_once('.')?;
            self.wildcard_certificates.get(domain).cloned()
        })
    }
}

/// The `Host` header as sent (with its port), for redirects nginx builds from `$http_host`;
/// the routing host when there is none (HTTP/2 carries it in `:authority`).
fn host_with_port<'a>(request: &RequestView<'a>) -> &'a str {
    request
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or(request.host)
}

fn with_query(path: &str, query: Option<&str>) -> String {
    match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    }
}

fn respond(status: u16, body: &str) -> Decision {
    Decision::Respond {
        status,
        headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
        body: format!("{body}\n"),
    }
}
