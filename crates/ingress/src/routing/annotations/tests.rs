//! The annotation parser against values users write, good and bad.

use super::*;

fn of(pairs: &[(&str, &str)]) -> (Options, Vec<Problem>) {
    parse(
        &pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), v.to_string()))
            .collect(),
    )
}

#[test]
fn no_annotations_give_ingress_nginx_defaults() {
    let (o, p) = of(&[]);
    assert_eq!(o, Options::default());
    assert_eq!(o.max_body, Some(1024 * 1024));
    assert!(o.ssl_redirect && !o.use_regex);
    assert!(p.is_empty());
}

#[test]
fn rewrite_target_implies_regex_paths() {
    let (o, _) = of(&[("rewrite-target", "/$2")]);
    assert_eq!(o.rewrite_target.as_deref(), Some("/$2"));
    assert!(o.use_regex);
}

#[test]
fn sizes_parse_with_nginx_suffixes_and_zero_is_unlimited() {
    assert_eq!(of(&[("proxy-body-size", "8m")]).0.max_body, Some(8 * 1024 * 1024));
    assert_eq!(of(&[("proxy-body-size", "512K")]).0.max_body, Some(512 * 1024));
    assert_eq!(of(&[("proxy-body-size", "0")]).0.max_body, None);
}

#[test]
fn a_value_that_does_not_parse_is_a_problem_and_is_ignored() {
    let (o, p) = of(&[("proxy-body-size", "lots"), ("proxy-read-timeout", "soon")]);
    assert_eq!(o.max_body, Some(1024 * 1024));
    assert_eq!(o.timeouts, Timeouts::default());
    assert_eq!(p.len(), 2);
    assert!(p.iter().all(|p| !p.unsupported));
    assert!(p[0].message.contains("\"lots\""), "{}", p[0].message);
}

#[test]
fn an_annotation_podway_does_not_implement_is_named() {
    let (_, p) = of(&[("server-snippet", "return 200;"), ("rewrite-target", "/")]);
    assert_eq!(p.len(), 1);
    assert!(p[0].unsupported);
    assert_eq!(p[0].annotation, "nginx.ingress.kubernetes.io/server-snippet");
}

#[test]
fn source_ranges_take_cidrs_and_bare_addresses() {
    let (o, p) = of(&[("whitelist-source-range", "10.0.0.0/8, 192.168.1.7")]);
    assert!(p.is_empty());
    assert_eq!(o.allow_sources.len(), 2);
    assert!(o.allow_sources[1].contains(&"192.168.1.7".parse::<std::net::IpAddr>().unwrap()));
    let (_, p) = of(&[("whitelist-source-range", "10.0.0.0/8,nope")]);
    assert!(p[0].message.contains("\"nope\""));
}

#[test]
fn permanent_redirect_takes_its_code_and_defaults_to_301() {
    let r = |pairs: &[(&str, &str)]| of(pairs).0.redirect;
    assert_eq!(
        r(&[("permanent-redirect", "https://example.com")]),
        Some(("https://example.com".into(), 301))
    );
    assert_eq!(
        r(&[
            ("permanent-redirect", "https://x.example/"),
            ("permanent-redirect-code", "308")
        ]),
        Some(("https://x.example/".into(), 308))
    );
    let (o, p) = of(&[
        ("permanent-redirect", "https://x.example/"),
        ("permanent-redirect-code", "200"),
    ]);
    assert_eq!(
        o.redirect,
        Some(("https://x.example/".into(), 301)),
        "a bad code falls back"
    );
    assert_eq!(p.len(), 1);
}

#[test]
fn temporal_redirect_wins_over_permanent_and_takes_its_own_code() {
    let (o, p) = of(&[
        ("permanent-redirect", "https://p.example/"),
        ("temporal-redirect", "https://t.example/"),
        ("temporal-redirect-code", "307"),
    ]);
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(o.redirect, Some(("https://t.example/".into(), 307)));
    assert_eq!(
        of(&[("temporal-redirect", "http://t.example/")]).0.redirect,
        Some(("http://t.example/".into(), 302))
    );
}

#[test]
fn a_redirect_that_is_not_an_http_url_is_refused() {
    for bad in ["/relative", "ftp://x.example/", "https://x.example/\r\nSet-Cookie: a=b"] {
        let (o, p) = of(&[("permanent-redirect", bad)]);
        assert_eq!(o.redirect, None, "{bad}");
        assert!(!p[0].unsupported && p[0].message.contains("http"), "{p:?}");
    }
}

#[test]
fn values_bound_for_headers_refuse_spaces_and_control_characters() {
    let (o, p) = of(&[
        ("upstream-vhost", "evil.example\r\nX-Injected: 1"),
        ("x-forwarded-prefix", "/a b"),
        ("rewrite-target", "/a\tb"),
        ("app-root", "app"),
        ("default-backend", "Not_A_Service"),
        ("session-cookie-name", "a;b"),
        ("affinity", "cookie"),
    ]);
    assert_eq!(
        (o.upstream_vhost, o.forwarded_prefix, o.rewrite_target, o.app_root),
        (None, None, None, None)
    );
    assert_eq!(o.default_backend, None);
    assert_eq!(o.affinity.unwrap().cookie, "INGRESSCOOKIE");
    assert!(!o.use_regex, "a refused rewrite-target does not turn regex on");
    assert_eq!(p.len(), 6, "{p:?}");
    assert!(p.iter().all(|p| !p.unsupported));
    let (o, p) = of(&[("upstream-vhost", "api.internal:8080"), ("x-forwarded-prefix", "/api")]);
    assert!(p.is_empty());
    assert_eq!(o.upstream_vhost.as_deref(), Some("api.internal:8080"));
    assert_eq!(o.forwarded_prefix.as_deref(), Some("/api"));
}

#[test]
fn a_source_range_that_does_not_parse_denies_instead_of_opening_to_all() {
    let (o, p) = of(&[("whitelist-source-range", "10.0.0.0/8, 300.1.1.1")]);
    assert!(o.allow_sources.is_empty());
    assert!(o.denied.as_deref().unwrap().contains("whitelist-source-range"));
    assert_eq!(p.len(), 1);
    assert!(
        p[0].message.contains("\"300.1.1.1\"") && p[0].message.contains("503"),
        "{}",
        p[0].message
    );
}

#[test]
fn timeouts_take_seconds_with_or_without_a_unit_and_refuse_zero() {
    let (o, p) = of(&[
        ("proxy-connect-timeout", "3"),
        ("proxy-read-timeout", "120s"),
        ("proxy-send-timeout", "0"),
    ]);
    assert_eq!(o.timeouts.connect, Duration::from_secs(3));
    assert_eq!(o.timeouts.read, Duration::from_secs(120));
    assert_eq!(o.timeouts.send, Timeouts::default().send);
    assert_eq!(p.len(), 1);
}

#[test]
fn backend_protocols_beyond_http_https_and_grpc_are_invalid() {
    assert_eq!(of(&[("backend-protocol", "grpc")]).0.protocol, Protocol::Grpc);
    assert_eq!(of(&[("backend-protocol", "HTTPS")]).0.protocol, Protocol::Https);
    let (o, p) = of(&[("backend-protocol", "FCGI")]);
    assert_eq!((o.protocol, p.len()), (Protocol::Http, 1));
}

#[test]
fn custom_http_errors_take_a_list_of_error_statuses() {
    assert_eq!(
        of(&[("custom-http-errors", "404, 503")]).0.intercept_errors,
        vec![404, 503]
    );
    let (o, p) = of(&[("custom-http-errors", "404,200")]);
    assert!(o.intercept_errors.is_empty());
    assert_eq!(p.len(), 1);
}

#[test]
fn canary_rules_parse_with_ingress_nginx_defaults() {
    let c = of(&[
        ("canary", "true"),
        ("canary-weight", "30"),
        ("canary-by-header", "X-Canary"),
    ])
    .0
    .canary
    .unwrap();
    assert_eq!(
        (c.weight, c.weight_total, c.header.as_deref()),
        (30, 100, Some("X-Canary"))
    );
    assert!(
        of(&[("canary-weight", "30")]).0.canary.is_none(),
        "not a canary without canary: true"
    );
    let total = |t: &str| {
        of(&[("canary", "true"), ("canary-weight-total", t)])
            .0
            .canary
            .unwrap()
            .weight_total
    };
    assert_eq!((total("1000"), total("10")), (1000, 100), "a total below 100 is 100");
}

#[test]
fn cookie_affinity_defaults_to_ingresscookie() {
    let a = of(&[("affinity", "cookie")]).0.affinity.unwrap();
    assert_eq!((a.cookie.as_str(), a.max_age), ("INGRESSCOOKIE", None));
    let (_, p) = of(&[("affinity", "ip")]);
    assert!(p[0].message.contains("\"ip\""));
}

#[test]
fn cors_defaults_follow_ingress_nginx() {
    let c = of(&[("enable-cors", "true")]).0.cors.unwrap();
    assert_eq!(c.origins, vec!["*".to_string()]);
    assert!(c.allow_credentials);
    assert_eq!(c.max_age, 1_728_000);
    assert!(of(&[("enable-cors", "false"), ("cors-allow-origin", "*")])
        .0
        .cors
        .is_none());
}
