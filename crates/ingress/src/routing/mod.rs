//! The routing table: every Ingress of class `podway`, with its Services' ready endpoints and
//! its TLS Secrets, built into per-host route lists that answer [`Router::decide`] without
//! locks or allocation beyond the decision itself.
//!
//! Hosts: an exact host beats a `*.domain` wildcard (one label), which beats rules without a
//! host. Within a host, the rules of every Ingress are merged and the best match wins: an Exact
//! path first, then the longest rule path (ingress-nginx's order). Annotations apply to the
//! paths of their own Ingress only. What cannot be served becomes a [`Finding`] for the
//! controller to report as an Event, and the request a 503.

mod annotations;
mod backends;
mod canary;
mod paths;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};

pub use annotations::{Options, PREFIX};
use backends::{Catalog, Unavailable};
use paths::Matcher;

use crate::decision::{Decision, RequestView, Router, Upstream};

/// Which Ingresses are ours.
#[derive(Debug, Clone)]
pub struct ClassFilter {
    class: String,
    is_default: bool,
}

impl ClassFilter {
    /// Ingresses of class `class` (by `spec.ingressClassName` or the legacy
    /// `kubernetes.io/ingress.class` annotation), and those naming no class when `is_default`.
    pub fn new(class: &str, is_default: bool) -> ClassFilter {
        ClassFilter {
            class: class.to_string(),
            is_default,
        }
    }

    /// Whether `ingress` is ours.
    pub fn admits(&self, ingress: &Ingress) -> bool {
        let named = ingress.spec.as_ref().and_then(|s| s.ingress_class_name.as_deref());
        let legacy = ingress
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("kubernetes.io/ingress.class"))
            .map(String::as_str);
        match named.or(legacy) {
            Some(c) => c == self.class,
            None => self.is_default,
        }
    }
}

/// Something wrong with an Ingress, reported once as an Event on it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// The Ingress's namespace.
    pub namespace: String,
    /// The Ingress's name.
    pub ingress: String,
    /// A Warning (true) or Normal Event.
    pub warning: bool,
    /// The Event's reason.
    pub reason: String,
    /// The Event's message.
    pub message: String,
}

/// Where a matched route sends requests.
#[derive(Debug)]
enum Target {
    /// Balanced over these endpoints.
    Endpoints(Arc<[SocketAddr]>),
    /// Nothing to send to: 503.
    Unavailable,
}

/// One path of one Ingress.
#[derive(Debug)]
struct Route {
    matcher: Matcher,
    rule_path: String,
    path_type: String,
    target: Target,
    options: Arc<Options>,
    /// A canary Ingress's backend for the same host and path, and when it gets a request.
    canary: Option<(Target, annotations::Canary)>,
    /// The `default-backend` annotation's endpoints: they answer when the route's own have
    /// none, and serve the pages of intercepted errors.
    fallback: Option<Arc<[SocketAddr]>>,
}

/// The routes of one host, best first.
#[derive(Debug, Default)]
struct Host {
    routes: Vec<Route>,
    /// A TLS section of some Ingress names this host: plain HTTP is redirected (ssl-redirect).
    tls: bool,
}

impl Host {
    fn best(&self, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.matcher.matches(path))
    }

    fn sort(&mut self) {
        self.routes
            .sort_by_key(|r| std::cmp::Reverse(r.matcher.rank(&r.rule_path)));
    }
}

/// The whole table; see the module doc.
#[derive(Debug, Default)]
pub struct RouteTable {
    exact: HashMap<String, Host>,
    /// By the domain after `*.`.
    wildcard: HashMap<String, Host>,
    any: Host,
    default_backend: Option<Route>,
    /// PEM (chain, key) by exact host and by wildcard domain.
    certificates: HashMap<String, (String, String)>,
    wildcard_certificates: HashMap<String, (String, String)>,
}

impl RouteTable {
    /// Build the table from everything the controller sees; the findings are sorted.
    pub fn build(
        ingresses: &[Ingress],
        services: &[Service],
        slices: &[EndpointSlice],
        secrets: &[Secret],
        class: &ClassFilter,
    ) -> (RouteTable, Vec<Finding>) {
        let catalog = Catalog::new(services, slices);
        let secrets: HashMap<(&str, &str), &Secret> = secrets
            .iter()
            .map(|s| {
                let m = &s.metadata;
                (
                    (m.namespace.as_deref().unwrap_or(""), m.name.as_deref().unwrap_or("")),
                    s,
                )
            })
            .collect();
        let mut table = RouteTable::default();
        let mut findings = Vec::new();
        // Oldest first, so the oldest Ingress's defaultBackend is the one that serves.
        let mut ours: Vec<&Ingress> = ingresses.iter().filter(|i| class.admits(i)).collect();
        ours.sort_by(|a, b| {
            (
                a.metadata.creation_timestamp.as_ref().map(|t| t.0),
                &a.metadata.namespace,
                &a.metadata.name,
            )
                .cmp(&(
                    b.metadata.creation_timestamp.as_ref().map(|t| t.0),
                    &b.metadata.namespace,
                    &b.metadata.name,
                ))
        });
        // Canaries last, so the route each one joins is there.
        let is_canary = |i: &Ingress| {
            i.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(&format!("{PREFIX}canary")))
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        };
        ours.sort_by_key(|i| is_canary(i));
        for ingress in ours {
            table.add(ingress, &catalog, &secrets, &mut findings);
        }
        table.any.sort();
        for h in table.exact.values_mut().chain(table.wildcard.values_mut()) {
            h.sort();
        }
        findings.sort();
        findings.dedup();
        (table, findings)
    }

    fn add(
        &mut self,
        ingress: &Ingress,
        catalog: &Catalog<'_>,
        secrets: &HashMap<(&str, &str), &Secret>,
        findings: &mut Vec<Finding>,
    ) {
        let ns = ingress.metadata.namespace.as_deref().unwrap_or("default");
        let name = ingress.metadata.name.as_deref().unwrap_or("");
        let mut find = |warning: bool, reason: &str, message: String| {
            findings.push(Finding {
                namespace: ns.to_string(),
                ingress: name.to_string(),
                warning,
                reason: reason.to_string(),
                message,
            })
        };
        let annotations: BTreeMap<String, String> = ingress.metadata.annotations.clone().unwrap_or_default();
        let (options, problems) = annotations::parse(&annotations);
        for p in problems {
            let reason = if p.unsupported {
                "UnsupportedAnnotation"
            } else {
                "InvalidAnnotation"
            };
            find(true, reason, p.message);
        }
        let fallback: Option<Arc<[SocketAddr]>> = options.default_backend.as_deref().and_then(|svc| {
            match catalog.endpoints(ns, svc, &catalog.first_port(ns, svc)) {
                Ok(e) => Some(e.into()),
                Err(why) => {
                    find(
                        true,
                        "DefaultBackendUnavailable",
                        format!("default-backend Service {ns}/{svc} has no ready endpoints ({why:?}); podway's own pages answer instead"),
                    );
                    None
                }
            }
        });
        let options = Arc::new(options);
        let Some(spec) = &ingress.spec else { return };

        let target = |backend: &IngressBackend, find: &mut dyn FnMut(bool, &str, String)| -> Target {
            let Some(svc) = &backend.service else {
                find(
                    true,
                    "UnsupportedBackend",
                    "resource backends are not served by podway; requests get 503".into(),
                );
                return Target::Unavailable;
            };
            let port = svc.port.clone().unwrap_or_default();
            match catalog.endpoints(ns, &svc.name, &port) {
                Ok(e) => Target::Endpoints(e.into()),
                Err(why) => {
                    let (reason, message) = match why {
                        Unavailable::NoService => (
                            "ServiceNotFound",
                            format!("backend Service {ns}/{} does not exist; requests get 503", svc.name),
                        ),
                        Unavailable::NoPort(p) => (
                            "ServicePortNotFound",
                            format!("backend Service {ns}/{} has no port {p}; requests get 503", svc.name),
                        ),
                        Unavailable::ExternalName => (
                            "UnsupportedBackend",
                            format!(
                                "backend Service {ns}/{} is an ExternalName; podway routes to endpoints only",
                                svc.name
                            ),
                        ),
                        Unavailable::NoEndpoints => (
                            "NoEndpoints",
                            format!(
                                "backend Service {ns}/{} has no ready endpoints; requests get 503",
                                svc.name
                            ),
                        ),
                    };
                    find(true, reason, message);
                    Target::Unavailable
                }
            }
        };

        for tls in spec.tls.iter().flatten() {
            let hosts = tls.hosts.clone().unwrap_or_default();
            let Some(secret_name) = tls.secret_name.as_deref() else {
                continue;
            };
            match secrets.get(&(ns, secret_name)).and_then(|s| pem_pair(s)) {
                Some(pair) => {
                    for h in &hosts {
                        let h = h.to_ascii_lowercase();
                        match h.strip_prefix("*.") {
                            Some(domain) => self.wildcard_certificates.entry(domain.to_string()),
                            None => self.certificates.entry(h.clone()),
                        }
                        .or_insert_with(|| pair.clone());
                    }
                }
                None => find(
                    true,
                    "TLSSecretNotFound",
                    format!("TLS Secret {ns}/{secret_name} is missing or not a kubernetes.io/tls Secret with tls.crt and tls.key; its hosts get the default certificate"),
                ),
            }
            for h in &hosts {
                self.host_mut(Some(h)).tls = true;
            }
        }

        if let Some(b) = &spec.default_backend {
            let t = target(b, &mut find);
            if self.default_backend.is_none() {
                self.default_backend = Some(Route {
                    matcher: Matcher::StringPrefix("/".into()),
                    rule_path: "/".into(),
                    path_type: "ImplementationSpecific".into(),
                    target: t,
                    options: options.clone(),
                    canary: None,
                    fallback: fallback.clone(),
                });
            }
        }
        for rule in spec.rules.iter().flatten() {
            let Some(http) = &rule.http else { continue };
            for p in &http.paths {
                let path = p.path.clone().unwrap_or_default();
                let matcher = match Matcher::new(&path, &p.path_type, options.use_regex) {
                    Ok(m) => m,
                    Err(e) => {
                        find(
                            true,
                            "InvalidPath",
                            format!("path {path:?} is not a valid regex ({e}); the path is not served"),
                        );
                        continue;
                    }
                };
                let t = target(&p.backend, &mut find);
                let route = Route {
                    matcher,
                    rule_path: if path.is_empty() { "/".into() } else { path },
                    path_type: p.path_type.clone(),
                    target: t,
                    options: options.clone(),
                    canary: None,
                    fallback: fallback.clone(),
                };
                let host = self.host_mut(rule.host.as_deref());
                if let Some(rule) = &options.canary {
                    // A canary joins the main route of the same host, path and type; alone, it
                    // serves like any Ingress.
                    let main = host.routes.iter_mut().find(|r| {
                        r.options.canary.is_none()
                            && r.canary.is_none()
                            && r.rule_path == route.rule_path
                            && r.path_type == route.path_type
                    });
                    if let Some(main) = main {
                        main.canary = Some((route.target, rule.clone()));
                        continue;
                    }
                }
                host.routes.push(route);
            }
        }
    }

    fn host_mut(&mut self, host: Option<&str>) -> &mut Host {
        match host.map(str::to_ascii_lowercase) {
            None => &mut self.any,
            Some(h) if h.is_empty() => &mut self.any,
            Some(h) => match h.strip_prefix("*.") {
                Some(domain) => self.wildcard.entry(domain.to_string()).or_default(),
                None => self.exact.entry(h).or_default(),
            },
        }
    }

    /// The host entries that may serve `host`, most specific first.
    fn hosts_for(&self, host: &str) -> impl Iterator<Item = &Host> {
        let exact = self.exact.get(host);
        let wildcard = host.split_once('.').and_then(|(_, domain)| self.wildcard.get(domain));
        exact.into_iter().chain(wildcard).chain(std::iter::once(&self.any))
    }

    fn has_tls(&self, host: &str) -> bool {
        self.hosts_for(host).any(|h| h.tls)
    }
}

/// The PEM chain and key of a `kubernetes.io/tls` Secret.
fn pem_pair(secret: &Secret) -> Option<(String, String)> {
    let data = secret.data.as_ref()?;
    let text = |k: &str| data.get(k).and_then(|b| String::from_utf8(b.0.clone()).ok());
    let (crt, key) = (text("tls.crt")?, text("tls.key")?);
    (crt.contains("-----BEGIN CERTIFICATE-----") && key.contains("PRIVATE KEY-----")).then_some((crt, key))
}

impl Router for RouteTable {
    fn decide(&self, request: &RequestView<'_>) -> Decision {
        let host = request.host;
        let route = self
            .hosts_for(host)
            .find_map(|h| h.best(request.path))
            .or(self.default_backend.as_ref());
        let Some(route) = route else {
            return respond(404, "404 Not Found");
        };
        let o = &route.options;
        if !o.allow_sources.is_empty() && !o.allow_sources.iter().any(|n| n.contains(&request.client_ip)) {
            return respond(403, "403 Forbidden");
        }
        if !request.tls && (o.force_ssl_redirect || (o.ssl_redirect && self.has_tls(host))) {
            return Decision::Redirect {
                status: 308,
                location: format!("https://{host}{}", with_query(request.path, request.query)),
            };
        }
        if let Some((to, status)) = &o.permanent_redirect {
            return Decision::Redirect {
                status: *status,
                location: to.clone(),
            };
        }
        if let Some(to) = &o.temporal_redirect {
            return Decision::Redirect {
                status: 302,
                location: to.clone(),
            };
        }
        if let Some(root) = &o.app_root {
            if request.path == "/" {
                return Decision::Redirect {
                    status: 302,
                    location: root.clone(),
                };
            }
        }
        let mut response_headers = Vec::new();
        if let Some(c) = &o.cors {
            response_headers.push(("Access-Control-Allow-Origin".to_string(), c.allow_origin.clone()));
            response_headers.push((
                "Access-Control-Allow-Credentials".to_string(),
                c.allow_credentials.to_string(),
            ));
            if request.method == "OPTIONS" {
                response_headers.push(("Access-Control-Allow-Methods".into(), c.allow_methods.clone()));
                response_headers.push(("Access-Control-Allow-Headers".into(), c.allow_headers.clone()));
                response_headers.push(("Access-Control-Max-Age".into(), c.max_age.to_string()));
                return Decision::Respond {
                    status: 204,
                    headers: response_headers,
                    body: String::new(),
                };
            }
        }
        let target = match &route.canary {
            Some((t, rule)) if canary::wants(rule, request) => t,
            _ => &route.target,
        };
        let endpoints = match (target, &route.fallback) {
            (Target::Endpoints(e), _) => e.clone(),
            (Target::Unavailable, Some(fallback)) => fallback.clone(),
            (Target::Unavailable, None) => return respond(503, "503 Service Temporarily Unavailable"),
        };
        let path_and_query = match &o.rewrite_target {
            Some(t) => paths::rewrite(&route.matcher, request.path, request.query, t),
            None => with_query(request.path, request.query),
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
            response_headers,
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

#[cfg(test)]
mod tests;
