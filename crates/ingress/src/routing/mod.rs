//! The routing table: every Ingress of class `podway`, with its Services' ready endpoints and
//! its TLS Secrets, built into per-host route lists that answer [`Router::decide`] without
//! locks or allocation beyond the decision itself.
//!
//! As ingress-nginx does, a request first picks one host (an nginx `server`): the exact host,
//! else the `*.domain` wildcard (one label), else the catch-all made of rules without a host.
//! Within that host the rules of every Ingress are merged and the first match in this order
//! wins: Exact paths, then the longest rule path (ingress-nginx's order). A path no rule of the
//! host matches goes to the host's default: the `defaultBackend` of the oldest Ingress that
//! names the host, else 404; it does not fall through to the catch-all. Annotations apply to the
//! paths of their own Ingress only (ingress-nginx makes a whole host regex when one Ingress
//! asks; podway does not). What cannot be served becomes a [`Finding`] for the controller to
//! report as an Event, and the request a 503.
//!
//! - `build`: Ingresses, Services, EndpointSlices and Secrets into the table.
//! - `decide`: a request against the table, in nginx's phase order.
//! - `paths`, `backends`, `annotations`, `cors`, `canary`: one idea each.

mod annotations;
mod backends;
mod build;
mod canary;
mod cors;
mod decide;
mod index;
mod paths;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use k8s_openapi::api::networking::v1::Ingress;

pub use annotations::{Options, PREFIX};
pub use cors::Cors;
use paths::Matcher;

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
    /// No backend at all (a host's default without a `defaultBackend`): 404.
    NotFound,
}

/// One path of one Ingress, or a host's default.
#[derive(Debug)]
struct Route {
    matcher: Matcher,
    rule_path: String,
    path_type: String,
    target: Target,
    options: Arc<Options>,
    /// A host's default route: no rewrite (ingress-nginx's default location is not rewritten).
    is_default: bool,
    /// A canary Ingress's backend for the same host and path, and when it gets a request.
    canary: Option<(Target, annotations::Canary)>,
    /// The `default-backend` annotation's endpoints: they answer when the route's own have
    /// none, and serve the pages of intercepted errors.
    fallback: Option<Arc<[SocketAddr]>>,
}

impl Route {
    /// The default route of a host: everything under `/` to `target`.
    fn default_to(target: Target, options: Arc<Options>, fallback: Option<Arc<[SocketAddr]>>) -> Route {
        Route {
            matcher: Matcher::StringPrefix("/".into()),
            rule_path: "/".into(),
            path_type: "ImplementationSpecific".into(),
            target,
            options,
            is_default: true,
            canary: None,
            fallback,
        }
    }
}

/// The routes of one host (an nginx `server`), best first.
#[derive(Debug)]
struct Host {
    routes: Vec<Route>,
    /// Where a path no route matches goes.
    default: Route,
    /// A certificate is configured for the host: plain HTTP is redirected (ssl-redirect).
    tls: bool,
    /// Which routes a path may match, built by [`Host::sort`].
    index: index::PathIndex,
}

impl Host {
    fn new(default: Route) -> Host {
        Host {
            routes: Vec::new(),
            default,
            tls: false,
            index: index::PathIndex::default(),
        }
    }

    /// The first route in precedence order that matches `path`, else the host's default.
    fn best(&self, path: &str) -> &Route {
        match self.index.best(&self.routes, path) {
            Some(i) => &self.routes[i],
            None => &self.default,
        }
    }

    /// Put the routes in ingress-nginx's order (Exact first, then by rule path, longest first,
    /// then the greater string first; stable, so among equal paths the oldest Ingress wins) and
    /// index them. Call once all routes are in.
    fn sort(&mut self) {
        self.routes.sort_by(|a, b| {
            b.matcher
                .rank(&b.rule_path)
                .cmp(&a.matcher.rank(&a.rule_path))
                .then_with(|| b.rule_path.cmp(&a.rule_path))
        });
        self.index = index::PathIndex::new(&self.routes);
    }
}

/// The whole table; see the module doc.
#[derive(Debug)]
pub struct RouteTable {
    exact: HashMap<String, Host>,
    /// By the domain after `*.`.
    wildcard: HashMap<String, Host>,
    /// The catch-all: rules without a host, and the default of every unknown host.
    any: Host,
    /// PEM (chain, key) by exact host and by wildcard domain.
    certificates: HashMap<String, (String, String)>,
    wildcard_certificates: HashMap<String, (String, String)>,
    /// Hosts and wildcard domains named by a TLS section (the certificate may be missing: the
    /// default one then serves, and ssl-redirect still applies, as in ingress-nginx).
    tls_hosts: HashSet<String>,
    tls_domains: HashSet<String>,
}

impl Default for RouteTable {
    /// An empty table: every request is answered 404.
    fn default() -> Self {
        RouteTable {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            any: Host::new(Route::default_to(Target::NotFound, Arc::default(), None)),
            certificates: HashMap::new(),
            wildcard_certificates: HashMap::new(),
            tls_hosts: HashSet::new(),
            tls_domains: HashSet::new(),
        }
    }
}

impl RouteTable {
    /// The one host that serves `host`: exact, else wildcard, else the catch-all.
    fn server_for(&self, host: &str) -> &Host {
        self.exact
            .get(host)
            .or_else(|| {
                let (_, domain) = host.split_once('.')?;
                self.wildcard.get(domain)
            })
            .unwrap_or(&self.any)
    }

    /// Whether a certificate is configured for `host` (exactly or by a wildcard), as
    /// ingress-nginx's ssl-redirect asks.
    fn has_tls(&self, host: &str) -> bool {
        self.exact.get(host).is_some_and(|h| h.tls)
            || host
                .split_once('.')
                .and_then(|(_, domain)| self.wildcard.get(domain))
                .is_some_and(|h| h.tls)
    }
}

#[cfg(test)]
mod tests;
