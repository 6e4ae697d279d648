//! Hosts, paths, backends, certificates and findings.

use super::*;

fn alpha() -> SocketAddr {
    ALPHA.parse().unwrap()
}

fn beta() -> SocketAddr {
    BETA.parse().unwrap()
}

#[test]
fn a_path_no_rule_of_a_named_host_matches_is_404_and_does_not_fall_through_to_the_catch_all() {
    let w = world(
        vec![
            ingress(
                "named",
                json!({}),
                json!({"rules": [{"host": "a.example.com", "http": {"paths": [path("/api", "Prefix", "alpha")]}}]}),
            ),
            ingress(
                "catch-all",
                json!({}),
                json!({"rules": [{"http": {"paths": [path("/", "Prefix", "beta")]}}]}),
            ),
        ],
        vec![],
    );
    assert_eq!(proxied(ask(&w, "a.example.com", "/api/x")).endpoints[0], alpha());
    assert_eq!(status(ask(&w, "a.example.com", "/other")), 404);
    assert_eq!(proxied(ask(&w, "b.example.com", "/other")).endpoints[0], beta());
}

#[test]
fn a_named_hosts_default_is_the_default_backend_of_the_ingress_that_names_it() {
    let w = world(
        vec![ingress(
            "d",
            json!({}),
            json!({"defaultBackend": {"service": {"name": "beta", "port": {"number": 80}}},
                "rules": [{"host": "a.example.com", "http": {"paths": [path("/api", "Prefix", "alpha")]}}]}),
        )],
        vec![],
    );
    assert_eq!(upstream(ask(&w, "a.example.com", "/else")), (beta(), "/else".into()));
    assert_eq!(
        status(ask(&w, "unknown.example.com", "/")),
        404,
        "ingress-nginx keeps a named host's default off the catch-all"
    );
}

#[test]
fn an_ingress_with_only_a_default_backend_serves_every_unknown_host() {
    let w = world(
        vec![ingress(
            "fallback",
            json!({}),
            json!({"defaultBackend": {"service": {"name": "alpha", "port": {"number": 80}}}}),
        )],
        vec![],
    );
    assert_eq!(
        upstream(ask(&w, "whatever.example", "/a/b?c=d")),
        (alpha(), "/a/b?c=d".into())
    );
}

#[test]
fn an_empty_table_answers_404_not_found() {
    let d = RouteTable::default().decide(&RequestView {
        host: "h",
        path: "/",
        query: None,
        method: "GET",
        headers: &http::HeaderMap::new(),
        client_ip: Ipv4Addr::LOCALHOST.into(),
        tls: false,
    });
    match d {
        Decision::Respond { status, body, .. } => assert_eq!((status, body.trim()), (404, "404 Not Found")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn rules_for_one_host_merge_across_ingresses_and_the_oldest_wins_a_duplicate_path() {
    let mut older = ingress(
        "older",
        json!({}),
        json!({"rules": [{"host": "m.example.com", "http": {"paths": [path("/dup", "Prefix", "alpha")]}}]}),
    );
    older.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2020-01-01T00:00:00Z".parse().unwrap(),
    ));
    let mut newer = ingress(
        "newer",
        json!({}),
        json!({"rules": [{"host": "m.example.com", "http": {"paths": [
            path("/dup", "Prefix", "beta"), path("/only-newer", "Prefix", "beta")]}}]}),
    );
    newer.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2021-01-01T00:00:00Z".parse().unwrap(),
    ));
    let w = world(vec![newer, older], vec![]);
    assert_eq!(proxied(ask(&w, "m.example.com", "/dup")).endpoints[0], alpha());
    assert_eq!(proxied(ask(&w, "m.example.com", "/only-newer/x")).endpoints[0], beta());
}

#[test]
fn the_longest_rule_path_wins_across_ingresses_and_exact_beats_prefix_of_the_same_path() {
    let w = world(
        vec![
            ingress(
                "short",
                json!({}),
                json!({"rules": [{"http": {"paths": [path("/a", "Prefix", "alpha"), path("/a/b", "Exact", "alpha")]}}]}),
            ),
            ingress(
                "long",
                json!({}),
                json!({"rules": [{"http": {"paths": [path("/a/b", "Prefix", "beta")]}}]}),
            ),
        ],
        vec![],
    );
    assert_eq!(proxied(ask(&w, "h", "/a/b")).endpoints[0], alpha(), "Exact first");
    assert_eq!(proxied(ask(&w, "h", "/a/b/c")).endpoints[0], beta(), "longer prefix");
    assert_eq!(proxied(ask(&w, "h", "/a/x")).endpoints[0], alpha());
    assert_eq!(status(ask(&w, "h", "/ab")), 404, "Prefix matches whole elements");
}

#[test]
fn a_wildcard_host_serves_one_label_and_its_own_default() {
    let w = world(
        vec![ingress(
            "wild",
            json!({}),
            json!({"rules": [{"host": "*.w.example.com", "http": {"paths": [path("/x", "Prefix", "alpha")]}},
                             {"http": {"paths": [path("/", "Prefix", "beta")]}}]}),
        )],
        vec![],
    );
    assert_eq!(proxied(ask(&w, "one.w.example.com", "/x")).endpoints[0], alpha());
    assert_eq!(
        status(ask(&w, "one.w.example.com", "/y")),
        404,
        "the wildcard host's default"
    );
    assert_eq!(
        proxied(ask(&w, "two.one.w.example.com", "/x")).endpoints[0],
        beta(),
        "catch-all"
    );
}

#[test]
fn a_named_service_port_resolves_through_the_slice_port_of_the_same_name_to_ready_endpoints() {
    let w = world(
        vec![ingress(
            "n",
            json!({}),
            json!({"rules": [{"http": {"paths": [
                {"path": "/by-name", "pathType": "Prefix", "backend": {"service": {"name": "named", "port": {"name": "web"}}}},
                {"path": "/by-number", "pathType": "Prefix", "backend": {"service": {"name": "named", "port": {"number": 81}}}}]}}]}),
        )],
        vec![],
    );
    let by_name = proxied(ask(&w, "h", "/by-name"));
    let want: Vec<SocketAddr> = vec!["10.0.0.3:9090".parse().unwrap(), "10.0.0.4:9090".parse().unwrap()];
    assert_eq!(&by_name.endpoints[..], &want[..], "sorted; ready unless ready is false");
    assert_eq!(
        proxied(ask(&w, "h", "/by-number")).endpoints[0],
        "10.0.0.3:9100".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn each_unservable_backend_is_a_warning_finding_and_a_503() {
    let w = world(
        vec![ingress(
            "bad",
            json!({}),
            json!({"rules": [{"http": {"paths": [
                path("/ghost", "Prefix", "ghost"),
                {"path": "/port", "pathType": "Prefix", "backend": {"service": {"name": "alpha", "port": {"number": 99}}}},
                path("/external", "Prefix", "external"),
                {"path": "/resource", "pathType": "Prefix", "backend": {"resource": {"apiGroup": "k8s.example.com", "kind": "StorageBucket", "name": "icons"}}},
                path("/empty", "Prefix", "empty")]}}]}),
        )],
        vec![],
    );
    for p in ["/ghost", "/port", "/external", "/resource", "/empty"] {
        assert_eq!(status(ask(&w, "h", p)), 503, "{p}");
    }
    assert_eq!(
        reasons(&w),
        vec![
            "NoEndpoints",
            "ServiceNotFound",
            "ServicePortNotFound",
            "UnsupportedBackend",
            "UnsupportedBackend"
        ]
    );
    assert!(w
        .findings
        .iter()
        .all(|f| f.warning && f.namespace == "default" && f.ingress == "bad"));
    let text: Vec<&str> = w.findings.iter().map(|f| f.message.as_str()).collect();
    assert!(
        text[0].contains("default/empty") && text[1].contains("default/ghost"),
        "{text:?}"
    );
    assert!(text[2].contains("default/alpha has no port 99"), "{text:?}");
    assert!(text.iter().any(|m| m.contains("StorageBucket icons")), "{text:?}");
}

#[test]
fn findings_are_the_same_and_sorted_however_the_ingresses_are_listed() {
    let a = ingress(
        "a",
        json!({"nginx.ingress.kubernetes.io/server-snippet": "x"}),
        json!({"rules": [{"http": {"paths": [path("/g", "Prefix", "ghost")]}}]}),
    );
    let b = ingress(
        "b",
        json!({"nginx.ingress.kubernetes.io/proxy-body-size": "huge"}),
        json!({"rules": [{"http": {"paths": [path("/e", "Prefix", "empty")]}}]}),
    );
    let one = world(vec![a.clone(), b.clone()], vec![]).findings;
    let two = world(vec![b, a], vec![]).findings;
    assert_eq!(one, two);
    let mut sorted = one.clone();
    sorted.sort();
    assert_eq!(one, sorted);
    assert_eq!(one.len(), 4);
}

#[test]
fn the_legacy_class_annotation_admits_or_excludes_an_ingress() {
    let mut i = ingress("legacy", json!({"kubernetes.io/ingress.class": "podway"}), json!({}));
    assert!(ClassFilter::new("podway", false).admits(&i));
    i.metadata.annotations = Some([("kubernetes.io/ingress.class".to_string(), "nginx".to_string())].into());
    assert!(!ClassFilter::new("podway", true).admits(&i));
}

#[test]
fn a_tls_host_redirects_with_308_dropping_a_trailing_slash_as_ingress_nginx_does() {
    let w = world(
        vec![ingress(
            "t",
            json!({}),
            json!({"tls": [{"hosts": ["*.s.example.com"], "secretName": "wild"}, {"hosts": ["nosecret.example.com"]}],
                "rules": [{"host": "*.s.example.com", "http": {"paths": [path("/", "Prefix", "alpha")]}},
                          {"host": "nosecret.example.com", "http": {"paths": [path("/", "Prefix", "alpha")]}},
                          {"host": "tls-only.example.com"},
                          {"http": {"paths": [path("/", "Prefix", "alpha")]}}]}),
        )],
        vec![tls_secret("wild", "WILD")],
    );
    assert_eq!(
        redirected(ask(&w, "a.s.example.com", "/dir/")),
        (308, "https://a.s.example.com/dir".into())
    );
    assert_eq!(
        redirected(ask(&w, "a.s.example.com", "/")),
        (308, "https://a.s.example.com".into())
    );
    assert_eq!(
        redirected(ask(&w, "a.s.example.com", "/q/?x=1")),
        (308, "https://a.s.example.com/q/?x=1".into()),
        "the slash is dropped only at the end of the whole URI"
    );
    assert_eq!(
        redirected(ask(&w, "nosecret.example.com", "/p")).0,
        308,
        "a TLS host without a secret still has the default certificate"
    );
    let mut over_tls = Req::get("a.s.example.com", "/dir/");
    over_tls.tls = true;
    assert_eq!(upstream(over_tls.ask(&w)), (alpha(), "/dir/".into()));
    assert_eq!(
        status(ask(&w, "plain.example.com", "/")),
        200,
        "the catch-all has no certificate"
    );
    assert!(w.table.certificate("A.S.example.com").unwrap().0.contains("WILD"));
    assert!(w.table.certificate("s.example.com").is_none());
}
