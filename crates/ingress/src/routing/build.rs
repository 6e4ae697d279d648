//! Building the table: the oldest Ingress first (it wins ties, as in ingress-nginx), canaries
//! last (each joins a route that is already there).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend, IngressRule};

use super::annotations::{self, Options, PREFIX};
use super::backends::{Catalog, Unavailable};
use super::paths::Matcher;
use super::{ClassFilter, Finding, Host, Route, RouteTable, Target};

/// How an Ingress's `defaultBackend` became the catch-all's default; a lower rank wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum CatchAll {
    /// An Ingress with a `defaultBackend` and no rules (ingress-nginx's catch-all).
    NoRules,
    /// An Ingress with a `defaultBackend` and rules without a host. ingress-nginx ignores this
    /// one; podway follows the Ingress API ("requests that don't match any rule").
    HostlessRules,
    /// Nothing yet: 404.
    Unset,
}

/// One build's state beside the table.
struct Builder<'a> {
    table: RouteTable,
    catch_all: CatchAll,
    catalog: Catalog<'a>,
    secrets: HashMap<(&'a str, &'a str), &'a Secret>,
    findings: Vec<Finding>,
}

impl RouteTable {
    /// Build the table from everything the controller sees; the findings are sorted and
    /// without duplicates.
    pub fn build(
        ingresses: &[Ingress],
        services: &[Service],
        slices: &[EndpointSlice],
        secrets: &[Secret],
        class: &ClassFilter,
    ) -> (RouteTable, Vec<Finding>) {
        let mut b = Builder {
            table: RouteTable::default(),
            catch_all: CatchAll::Unset,
            catalog: Catalog::new(services, slices),
            secrets: secrets
                .iter()
                .map(|s| {
                    let m = &s.metadata;
                    let key = (m.namespace.as_deref().unwrap_or(""), m.name.as_deref().unwrap_or(""));
                    (key, s)
                })
                .collect(),
            findings: Vec::new(),
        };
        let mut ours: Vec<&Ingress> = ingresses.iter().filter(|i| class.admits(i)).collect();
        ours.sort_by_cached_key(|i| {
            (
                is_canary(i),
                i.metadata.creation_timestamp.as_ref().map(|t| t.0),
                i.metadata.namespace.clone(),
                i.metadata.name.clone(),
            )
        });
        for ingress in ours {
            b.add(ingress);
        }
        let mut table = b.table;
        table.any.sort();
        for (name, h) in table.exact.iter_mut() {
            h.tls = table.tls_hosts.contains(name);
            h.sort();
        }
        for (domain, h) in table.wildcard.iter_mut() {
            h.tls = table.tls_domains.contains(domain);
            h.sort();
        }
        let mut findings = b.findings;
        findings.sort();
        findings.dedup();
        (table, findings)
    }
}

fn is_canary(ingress: &Ingress) -> bool {
    ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(&format!("{PREFIX}canary")))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

impl Builder<'_> {
    fn add(&mut self, ingress: &Ingress) {
        let ns = ingress.metadata.namespace.as_deref().unwrap_or("default");
        let name = ingress.metadata.name.as_deref().unwrap_or("");
        let mut find = |warning: bool, reason: &str, message: String| {
            self.findings.push(Finding {
                namespace: ns.to_string(),
                ingress: name.to_string(),
                warning,
                reason: reason.to_string(),
                message,
            })
        };
        let (options, problems) =
            annotations::parse(ingress.metadata.annotations.as_ref().unwrap_or(&Default::default()));
        for p in problems {
            let reason = if p.unsupported {
                "UnsupportedAnnotation"
            } else {
                "InvalidAnnotation"
            };
            find(true, reason, p.message);
        }
        let catalog = &self.catalog;
        let fallback: Option<Arc<[SocketAddr]>> = options.default_backend.as_deref().and_then(|svc| {
            match catalog.endpoints(ns, svc, &catalog.first_port(ns, svc)) {
                Ok(e) => Some(e.into()),
                Err(why) => {
                    find(
                        true,
                        "DefaultBackendUnavailable",
                        format!(
                            "default-backend Service {ns}/{svc} {}; podway's own pages answer instead",
                            why.describe()
                        ),
                    );
                    None
                }
            }
        });
        let options = Arc::new(options);
        let Some(spec) = &ingress.spec else { return };
        let target = |backend: &IngressBackend, find: &mut dyn FnMut(bool, &str, String)| -> Target {
            resolve(catalog, ns, backend, find)
        };

        for tls in spec.tls.iter().flatten() {
            let hosts: Vec<String> = tls.hosts.iter().flatten().map(|h| h.to_ascii_lowercase()).collect();
            for h in &hosts {
                match h.strip_prefix("*.") {
                    Some(domain) => self.table.tls_domains.insert(domain.to_string()),
                    None => self.table.tls_hosts.insert(h.clone()),
                };
            }
            let Some(secret_name) = tls.secret_name.as_deref().filter(|s| !s.is_empty()) else {
                continue;
            };
            match self.secrets.get(&(ns, secret_name)).and_then(|s| pem_pair(s)) {
                Some(pair) => {
                    for h in &hosts {
                        match h.strip_prefix("*.") {
                            Some(domain) => self.table.wildcard_certificates.entry(domain.to_string()),
                            None => self.table.certificates.entry(h.clone()),
                        }
                        .or_insert_with(|| pair.clone());
                    }
                }
                None => find(
                    true,
                    "TLSSecretNotFound",
                    format!("TLS Secret {ns}/{secret_name} is missing or not a kubernetes.io/tls Secret with a PEM tls.crt and tls.key; its hosts get the default certificate"),
                ),
            }
        }

        let rules = spec.rules.as_deref().unwrap_or(&[]);
        if let Some(canary) = &options.canary {
            add_canary(&mut self.table, canary, rules, catalog, ns, &mut find);
            return;
        }

        // The Ingress's defaultBackend: the default of each host it names (ingress-nginx), or
        // of the catch-all.
        let default_target = spec.default_backend.as_ref().map(|b| target(b, &mut find));
        let default_of = |t: &Option<Target>| -> Target {
            match t {
                Some(Target::Endpoints(e)) => Target::Endpoints(e.clone()),
                Some(_) => Target::Unavailable,
                None => Target::NotFound,
            }
        };
        let rank = match (
            rules.is_empty(),
            rules.iter().any(|r| r.host.as_deref().unwrap_or("").is_empty()),
        ) {
            (true, _) => CatchAll::NoRules,
            (false, true) => CatchAll::HostlessRules,
            (false, false) => CatchAll::Unset,
        };
        if default_target.is_some() && rank < self.catch_all {
            self.catch_all = rank;
            // As ingress-nginx does for the catch-all, the Ingress's redirect and rewrite
            // annotations stay off it.
            let mut o = (*options).clone();
            let plain = Options::default();
            (o.redirect, o.rewrite_target, o.use_regex, o.app_root) = (None, None, false, None);
            (o.ssl_redirect, o.force_ssl_redirect) = (plain.ssl_redirect, plain.force_ssl_redirect);
            self.table.any.default = Route::default_to(default_of(&default_target), Arc::new(o), fallback.clone());
        }

        for rule in rules {
            let host_name = rule.host.as_deref().unwrap_or("").to_ascii_lowercase();
            let new_host = || {
                Host::new(Route::default_to(
                    default_of(&default_target),
                    options.clone(),
                    fallback.clone(),
                ))
            };
            let host = match host_name.strip_prefix("*.") {
                _ if host_name.is_empty() => &mut self.table.any,
                Some(domain) => self.table.wildcard.entry(domain.to_string()).or_insert_with(new_host),
                None => self.table.exact.entry(host_name.clone()).or_insert_with(new_host),
            };
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
                host.routes.push(Route {
                    matcher,
                    rule_path: if path.is_empty() { "/".into() } else { path },
                    path_type: p.path_type.clone(),
                    target: target(&p.backend, &mut find),
                    options: options.clone(),
                    is_default: false,
                    canary: None,
                    fallback: fallback.clone(),
                });
            }
        }
    }
}

/// A canary Ingress's paths join the main route of the same host, path and pathType; as in
/// ingress-nginx, one without such a route serves nothing.
fn add_canary(
    table: &mut RouteTable,
    canary: &annotations::Canary,
    rules: &[IngressRule],
    catalog: &Catalog<'_>,
    ns: &str,
    find: &mut dyn FnMut(bool, &str, String),
) {
    for rule in rules {
        let host_name = rule.host.as_deref().unwrap_or("").to_ascii_lowercase();
        let mut host = match host_name.strip_prefix("*.") {
            _ if host_name.is_empty() => Some(&mut table.any),
            Some(domain) => table.wildcard.get_mut(domain),
            None => table.exact.get_mut(&host_name),
        };
        for p in rule.http.iter().flat_map(|h| &h.paths) {
            let path = p.path.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "/".into());
            let main = host.as_deref_mut().and_then(|h| {
                h.routes
                    .iter_mut()
                    .find(|r| r.canary.is_none() && r.rule_path == path && r.path_type == p.path_type)
            });
            match main {
                    Some(main) => main.canary = Some((resolve(catalog, ns, &p.backend, find), canary.clone())),
                    None => find(
                        true,
                        "CanaryWithoutMain",
                        format!(
                            "canary path {}{path} ({}) has no main Ingress with the same host, path and pathType; it serves nothing",
                            if host_name.is_empty() { "*" } else { &host_name },
                            p.path_type
                        ),
                    ),
                }
        }
    }
}

/// The target of `backend` of an Ingress in `ns`, with a finding when it cannot serve.
fn resolve(
    catalog: &Catalog<'_>,
    ns: &str,
    backend: &IngressBackend,
    find: &mut dyn FnMut(bool, &str, String),
) -> Target {
    let Some(svc) = &backend.service else {
        let what = backend
            .resource
            .as_ref()
            .map(|r| format!("{} {}", r.kind, r.name))
            .unwrap_or_else(|| "an empty backend".into());
        find(
            true,
            "UnsupportedBackend",
            format!("resource backend {what} is not served by podway; requests get 503"),
        );
        return Target::Unavailable;
    };
    let port = svc.port.clone().unwrap_or_default();
    match catalog.endpoints(ns, &svc.name, &port) {
        Ok(e) => Target::Endpoints(e.into()),
        Err(why) => {
            let reason = match why {
                Unavailable::NoService => "ServiceNotFound",
                Unavailable::NoPort(_) => "ServicePortNotFound",
                Unavailable::ExternalName => "UnsupportedBackend",
                Unavailable::NoEndpoints => "NoEndpoints",
            };
            find(
                true,
                reason,
                format!("backend Service {ns}/{} {}; requests get 503", svc.name, why.describe()),
            );
            Target::Unavailable
        }
    }
}

/// The PEM chain and key of a `kubernetes.io/tls` Secret.
fn pem_pair(secret: &Secret) -> Option<(String, String)> {
    let data = secret.data.as_ref()?;
    let text = |k: &str| data.get(k).and_then(|b| String::from_utf8(b.0.clone()).ok());
    let (crt, key) = (text("tls.crt")?, text("tls.key")?);
    (crt.contains("-----BEGIN CERTIFICATE-----") && key.contains("PRIVATE KEY-----")).then_some((crt, key))
}
