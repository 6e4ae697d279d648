//! The routing table against Ingresses as users write them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde_json::{json, Value};

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::*;
use crate::decision::{Decision, RequestView, Router};

mod annotations;
mod hosts;

fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

/// Service `name` on port 80 → targetPort 8080, with a ready endpoint at `ip` (none: no slice).
fn service(name: &str, ip: Option<&str>) -> (Service, Option<EndpointSlice>) {
    let svc = from(json!({"metadata": {"name": name, "namespace": "default"},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}]}}));
    let slice = ip.map(|ip| {
        from(json!({"metadata": {"name": format!("{name}-1"), "namespace": "default",
            "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4", "ports": [{"port": 8080}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": true}},
                          {"addresses": ["10.0.9.9"], "conditions": {"ready": false}}]}))
    });
    (svc, slice)
}

fn ingress(name: &str, annotations: Value, spec: Value) -> Ingress {
    from(json!({"metadata": {"name": name, "namespace": "default", "annotations": annotations}, "spec": spec}))
}

fn path(p: &str, kind: &str, svc: &str) -> Value {
    json!({"path": p, "pathType": kind, "backend": {"service": {"name": svc, "port": {"number": 80}}}})
}

struct World {
    table: RouteTable,
    findings: Vec<Finding>,
}

fn world(ingresses: Vec<Ingress>, secrets: Vec<Secret>) -> World {
    let mut services = Vec::new();
    let mut slices = Vec::new();
    for (name, ip) in [("alpha", Some("10.0.0.1")), ("beta", Some("10.0.0.2")), ("empty", None)] {
        let (s, e) = service(name, ip);
        services.push(s);
        slices.extend(e);
    }
    // `named`: port `web` (80) → targetPort `http`, which its slice resolves to 9090.
    services.push(from(json!({"metadata": {"name": "named", "namespace": "default"},
        "spec": {"ports": [{"name": "metrics", "port": 81, "targetPort": 9100},
                           {"name": "web", "port": 80, "targetPort": "http"}]}})));
    slices.push(from(json!({"metadata": {"name": "named-1", "namespace": "default",
        "labels": {"kubernetes.io/service-name": "named"}},
        "addressType": "IPv4", "ports": [{"name": "metrics", "port": 9100}, {"name": "web", "port": 9090}],
        "endpoints": [{"addresses": ["10.0.0.4"]}, {"addresses": ["10.0.0.3"], "conditions": {"ready": true}}]})));
    services.push(from(json!({"metadata": {"name": "external", "namespace": "default"},
        "spec": {"type": "ExternalName", "externalName": "example.com"}})));
    let (table, findings) = RouteTable::build(
        &ingresses,
        &services,
        &slices,
        &secrets,
        &ClassFilter::new("podway", true),
    );
    World { table, findings }
}

/// A request to ask the table; [`Req::get`] then adjust.
struct Req {
    host: &'static str,
    target: &'static str,
    method: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    client_ip: IpAddr,
    tls: bool,
}

impl Req {
    fn get(host: &'static str, target: &'static str) -> Req {
        Req {
            host,
            target,
            method: "GET",
            headers: Vec::new(),
            client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)),
            tls: false,
        }
    }

    fn ask(&self, w: &World) -> Decision {
        let mut headers = http::HeaderMap::new();
        for (k, v) in &self.headers {
            headers.append(*k, v.parse().unwrap());
        }
        let (path, query) = match self.target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (self.target, None),
        };
        w.table.decide(&RequestView {
            host: self.host,
            path,
            query,
            method: self.method,
            headers: &headers,
            client_ip: self.client_ip,
            tls: self.tls,
        })
    }
}

fn ask(w: &World, host: &'static str, target: &'static str) -> Decision {
    Req::get(host, target).ask(w)
}

/// The forwarded request of a decision, or a panic naming what came instead.
fn proxied(d: Decision) -> Box<crate::decision::Upstream> {
    match d {
        Decision::Proxy(u) => u,
        other => panic!("not proxied: {other:?}"),
    }
}

/// (status, location) of a redirect.
fn redirected(d: Decision) -> (u16, String) {
    match d {
        Decision::Redirect { status, location } => (status, location),
        other => panic!("not a redirect: {other:?}"),
    }
}

/// The reasons of the findings, in their (sorted) order.
fn reasons(w: &World) -> Vec<&str> {
    w.findings.iter().map(|f| f.reason.as_str()).collect()
}

/// (endpoint, upstream path) of a proxied decision.
fn upstream(d: Decision) -> (SocketAddr, String) {
    match d {
        Decision::Proxy(u) => (u.endpoints[0], u.path_and_query),
        other => panic!("not proxied: {other:?}"),
    }
}

fn status(d: Decision) -> u16 {
    match d {
        Decision::Respond { status, .. } | Decision::Redirect { status, .. } => status,
        Decision::Proxy(_) => 200,
    }
}

const ALPHA: &str = "10.0.0.1:8080";
const BETA: &str = "10.0.0.2:8080";

#[test]
fn seed_001_paths_reach_their_services_rewritten_to_root() {
    let w = world(
        vec![ingress(
            "ingress-nginx",
            json!({"nginx.ingress.kubernetes.io/rewrite-target": "/"}),
            json!({"rules": [{"http": {"paths": [
                {"path": "", "pathType": "ImplementationSpecific", "backend": {"service": {"name": "alpha", "port": {"number": 80}}}},
                path("/ip", "ImplementationSpecific", "beta"),
                path("/your-directory", "ImplementationSpecific", "your-svc")]}}]}),
        )],
        vec![],
    );
    assert_eq!(upstream(ask(&w, "10.1.1.1", "/")), (ALPHA.parse().unwrap(), "/".into()));
    assert_eq!(
        upstream(ask(&w, "any.host", "/ip")),
        (BETA.parse().unwrap(), "/".into())
    );
    assert_eq!(
        upstream(ask(&w, "x", "/deeper/path")),
        (ALPHA.parse().unwrap(), "/".into())
    );
    assert_eq!(status(ask(&w, "x", "/your-directory")), 503);
    assert_eq!(w.findings.len(), 1);
    assert_eq!(w.findings[0].reason, "ServiceNotFound");
    assert!(w.findings[0].message.contains("default/your-svc"), "{:?}", w.findings);
}

#[test]
fn a_regex_ingress_rewrites_while_a_plain_prefix_on_the_same_host_keeps_prefix_semantics() {
    let w = world(
        vec![
            ingress(
                "plain",
                json!({}),
                json!({"rules": [{"host": "a.example.com", "http": {"paths": [
                path("/", "Prefix", "alpha"), path("/plain", "Prefix", "beta")]}}]}),
            ),
            ingress(
                "rewrite",
                json!({"nginx.ingress.kubernetes.io/use-regex": "true", "nginx.ingress.kubernetes.io/rewrite-target": "/$2"}),
                json!({"rules": [{"host": "a.example.com", "http": {"paths": [
                    path("/something(/|$)(.*)", "ImplementationSpecific", "beta")]}}]}),
            ),
        ],
        vec![],
    );
    let beta: SocketAddr = BETA.parse().unwrap();
    assert_eq!(upstream(ask(&w, "a.example.com", "/something")), (beta, "/".into()));
    assert_eq!(
        upstream(ask(&w, "a.example.com", "/something/new?q=1")),
        (beta, "/new?q=1".into())
    );
    assert_eq!(
        upstream(ask(&w, "a.example.com", "/plain/x")),
        (beta, "/plain/x".into())
    );
    // Not a regex, not rewritten: `/plainer` is not under the element `/plain`.
    assert_eq!(
        upstream(ask(&w, "a.example.com", "/plainer")),
        (ALPHA.parse().unwrap(), "/plainer".into())
    );
    assert!(w.findings.is_empty(), "{:?}", w.findings);
}

#[test]
fn exact_hosts_beat_wildcards_which_match_one_label_only() {
    let w = world(
        vec![ingress(
            "hosts",
            json!({}),
            json!({"rules": [
            {"host": "*.wild.example.com", "http": {"paths": [path("/", "Prefix", "beta")]}},
            {"host": "x.wild.example.com", "http": {"paths": [path("/", "Prefix", "alpha")]}}]}),
        )],
        vec![],
    );
    assert_eq!(upstream(ask(&w, "a.wild.example.com", "/")).0, BETA.parse().unwrap());
    assert_eq!(upstream(ask(&w, "x.wild.example.com", "/")).0, ALPHA.parse().unwrap());
    for host in ["wild.example.com", "a.b.wild.example.com"] {
        assert_eq!(status(ask(&w, host, "/")), 404, "{host}");
    }
}

#[test]
fn exact_path_beats_a_longer_prefix_and_the_default_backend_catches_the_rest() {
    let w = world(
        vec![ingress(
            "p",
            json!({}),
            json!({
            "defaultBackend": {"service": {"name": "beta", "port": {"number": 80}}},
            "rules": [{"http": {"paths": [path("/a", "Exact", "alpha"), path("/a/b", "Prefix", "beta")]}}]}),
        )],
        vec![],
    );
    assert_eq!(upstream(ask(&w, "h", "/a")).0, ALPHA.parse().unwrap());
    assert_eq!(upstream(ask(&w, "h", "/a/b/c")).0, BETA.parse().unwrap());
    assert_eq!(upstream(ask(&w, "h", "/zzz")), (BETA.parse().unwrap(), "/zzz".into()));
}

#[test]
fn no_endpoints_is_503_with_a_finding_and_ready_endpoints_only_are_used() {
    let w = world(
        vec![ingress(
            "e",
            json!({}),
            json!({"rules": [{"http": {"paths": [
            path("/empty", "Prefix", "empty"), path("/a", "Prefix", "alpha")]}}]}),
        )],
        vec![],
    );
    assert_eq!(status(ask(&w, "h", "/empty")), 503);
    assert_eq!(w.findings[0].reason, "NoEndpoints");
    match ask(&w, "h", "/a") {
        Decision::Proxy(u) => assert_eq!(&u.endpoints[..], &[ALPHA.parse::<SocketAddr>().unwrap()]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn other_classes_are_ignored_and_unclassed_ones_follow_the_default_flag() {
    let mut other = ingress(
        "o",
        json!({}),
        json!({"ingressClassName": "nginx", "rules": [{"http": {"paths": [path("/", "Prefix", "alpha")]}}]}),
    );
    assert!(!ClassFilter::new("podway", true).admits(&other));
    other.spec.as_mut().unwrap().ingress_class_name = None;
    assert!(ClassFilter::new("podway", true).admits(&other));
    assert!(!ClassFilter::new("podway", false).admits(&other));
}

fn tls_secret(name: &str, crt: &str) -> Secret {
    use k8s_openapi::ByteString;
    let mut s: Secret = from(json!({"metadata": {"name": name, "namespace": "default"}, "type": "kubernetes.io/tls"}));
    s.data = Some(
        [
            (
                "tls.crt".to_string(),
                ByteString(format!("-----BEGIN CERTIFICATE-----\n{crt}\n-----END CERTIFICATE-----\n").into_bytes()),
            ),
            (
                "tls.key".to_string(),
                ByteString(b"-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----\n".to_vec()),
            ),
        ]
        .into(),
    );
    s
}

#[test]
fn certificates_are_found_by_sni_and_plain_http_to_a_tls_host_is_redirected() {
    let w = world(
        vec![ingress(
            "t",
            json!({}),
            json!({
            "tls": [{"hosts": ["one.example.com"], "secretName": "one"}, {"hosts": ["*.two.example.com"], "secretName": "two"},
                    {"hosts": ["three.example.com"], "secretName": "missing"}],
            "rules": [{"host": "one.example.com", "http": {"paths": [path("/", "Prefix", "alpha")]}},
                      {"host": "plain.example.com", "http": {"paths": [path("/", "Prefix", "alpha")]}}]}),
        )],
        vec![tls_secret("one", "ONE"), tls_secret("two", "TWO")],
    );
    assert!(w.table.certificate("one.example.com").unwrap().0.contains("ONE"));
    assert!(w.table.certificate("a.two.example.com").unwrap().0.contains("TWO"));
    assert!(w.table.certificate("plain.example.com").is_none());
    assert_eq!(w.findings[0].reason, "TLSSecretNotFound");
    match ask(&w, "one.example.com", "/x?y=1") {
        Decision::Redirect { status, location } => {
            assert_eq!((status, location.as_str()), (308, "https://one.example.com/x?y=1"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(status(ask(&w, "plain.example.com", "/")), 200);
}

#[test]
fn annotations_apply_to_their_own_ingress_only() {
    let w = world(
        vec![
            ingress(
                "redirect",
                json!({"nginx.ingress.kubernetes.io/permanent-redirect": "https://elsewhere.example/"}),
                json!({"rules": [{"host": "r.example.com", "http": {"paths": [path("/", "Prefix", "alpha")]}}]}),
            ),
            ingress(
                "limited",
                json!({"nginx.ingress.kubernetes.io/whitelist-source-range": "10.0.0.0/8",
                    "nginx.ingress.kubernetes.io/app-root": "/app"}),
                json!({"rules": [{"host": "l.example.com", "http": {"paths": [path("/", "Prefix", "alpha")]}}]}),
            ),
            ingress(
                "open",
                json!({}),
                json!({"rules": [{"host": "o.example.com", "http": {"paths": [path("/", "Prefix", "alpha")]}}]}),
            ),
        ],
        vec![],
    );
    assert_eq!(status(ask(&w, "r.example.com", "/x")), 301);
    assert_eq!(
        status(ask(&w, "l.example.com", "/x")),
        403,
        "192.0.2.9 is outside 10.0.0.0/8"
    );
    assert_eq!(status(ask(&w, "o.example.com", "/x")), 200);
}

#[test]
fn a_canary_ingress_joins_the_main_route_of_its_host_and_path() {
    let main = ingress(
        "main",
        json!({}),
        json!({"rules": [{"host": "c.example.com", "http": {"paths": [path("/", "Prefix", "alpha")]}}]}),
    );
    let all = ingress(
        "canary",
        json!({"nginx.ingress.kubernetes.io/canary": "true", "nginx.ingress.kubernetes.io/canary-weight": "100"}),
        json!({"rules": [{"host": "c.example.com", "http": {"paths": [path("/", "Prefix", "beta")]}}]}),
    );
    let w = world(vec![all, main], vec![]);
    assert_eq!(
        upstream(ask(&w, "c.example.com", "/x")).0,
        BETA.parse().unwrap(),
        "weight 100: all to the canary"
    );
    let by_header = ingress(
        "canary",
        json!({"nginx.ingress.kubernetes.io/canary": "true", "nginx.ingress.kubernetes.io/canary-by-header": "x-canary"}),
        json!({"rules": [{"host": "c.example.com", "http": {"paths": [path("/", "Prefix", "beta")]}}]}),
    );
    let main = ingress(
        "main",
        json!({}),
        json!({"rules": [{"host": "c.example.com", "http": {"paths": [path("/", "Prefix", "alpha")]}}]}),
    );
    let w = world(vec![main, by_header], vec![]);
    assert_eq!(
        upstream(ask(&w, "c.example.com", "/x")).0,
        ALPHA.parse().unwrap(),
        "no header, weight 0: main"
    );
}

#[test]
fn cookie_affinity_takes_the_rule_path_unless_set() {
    let w = world(
        vec![ingress(
            "a",
            json!({"nginx.ingress.kubernetes.io/affinity": "cookie"}),
            json!({"rules": [{"http": {"paths": [path("/app", "Prefix", "alpha")]}}]}),
        )],
        vec![],
    );
    match ask(&w, "h", "/app/x") {
        Decision::Proxy(u) => {
            let a = u.affinity.unwrap();
            assert_eq!((a.cookie.as_str(), a.path.as_str()), ("INGRESSCOOKIE", "/app"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_default_backend_annotation_answers_for_a_backend_without_endpoints_and_for_errors() {
    let w = world(
        vec![ingress(
            "d",
            json!({"nginx.ingress.kubernetes.io/default-backend": "beta", "nginx.ingress.kubernetes.io/custom-http-errors": "404,503"}),
            json!({"rules": [{"http": {"paths": [path("/empty", "Prefix", "empty"), path("/a", "Prefix", "alpha")]}}]}),
        )],
        vec![],
    );
    assert_eq!(upstream(ask(&w, "h", "/empty")).0, BETA.parse().unwrap());
    match ask(&w, "h", "/a") {
        Decision::Proxy(u) => {
            assert_eq!(u.intercept_errors, vec![404, 503]);
            assert_eq!(&u.error_backend.unwrap()[..], &[BETA.parse::<SocketAddr>().unwrap()]);
        }
        other => panic!("{other:?}"),
    }
}
