//! The nginx annotations as the table applies them: to their own Ingress, in nginx's order.

use std::time::Duration;

use super::*;
use crate::decision::Protocol;

/// One Ingress on host `a.example.com`, path `/` Prefix to `alpha`, with `annotations` (short
/// names).
fn annotated(pairs: &[(&str, &str)]) -> World {
    let annotations: serde_json::Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| (format!("{PREFIX}{k}"), Value::from(*v)))
        .collect();
    world(
        vec![ingress(
            "annotated",
            Value::Object(annotations),
            json!({"rules": [{"host": "a.example.com", "http": {"paths": [path("/", "Prefix", "alpha")]}}]}),
        )],
        vec![],
    )
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn upstream_settings_reach_the_forwarded_request() {
    let w = annotated(&[
        ("backend-protocol", "GRPC"),
        ("proxy-body-size", "8m"),
        ("proxy-connect-timeout", "2"),
        ("proxy-read-timeout", "300"),
        ("upstream-vhost", "internal.example"),
        ("x-forwarded-prefix", "/shop"),
        ("affinity", "cookie"),
        ("session-cookie-name", "route"),
        ("session-cookie-path", "/cart"),
        ("session-cookie-max-age", "3600"),
    ]);
    assert!(w.findings.is_empty(), "{:?}", w.findings);
    let u = proxied(ask(&w, "a.example.com", "/x"));
    assert_eq!(u.protocol, Protocol::Grpc);
    assert_eq!(u.max_body, Some(8 * 1024 * 1024));
    assert_eq!(
        (u.timeouts.connect, u.timeouts.read),
        (Duration::from_secs(2), Duration::from_secs(300))
    );
    assert_eq!(u.host.as_deref(), Some("internal.example"));
    assert_eq!(u.forwarded_prefix.as_deref(), Some("/shop"));
    let a = u.affinity.unwrap();
    assert_eq!(
        (a.cookie.as_str(), a.path.as_str(), a.max_age),
        ("route", "/cart", Some(3600))
    );
}

#[test]
fn a_body_size_of_zero_is_unlimited_and_the_default_is_one_mebibyte() {
    assert_eq!(
        proxied(ask(&annotated(&[("proxy-body-size", "0")]), "a.example.com", "/")).max_body,
        None
    );
    assert_eq!(
        proxied(ask(&annotated(&[]), "a.example.com", "/")).max_body,
        Some(1 << 20)
    );
}

#[test]
fn force_ssl_redirect_redirects_without_tls_and_ssl_redirect_false_keeps_plain_http() {
    let w = annotated(&[("force-ssl-redirect", "true"), ("preserve-trailing-slash", "true")]);
    assert_eq!(
        redirected(ask(&w, "a.example.com", "/x/")),
        (308, "https://a.example.com/x/".into())
    );
    let off = world(
        vec![ingress(
            "off",
            json!({"nginx.ingress.kubernetes.io/ssl-redirect": "false"}),
            json!({"tls": [{"hosts": ["a.example.com"], "secretName": "s"}],
                "rules": [{"host": "a.example.com", "http": {"paths": [path("/", "Prefix", "alpha")]}}]}),
        )],
        vec![tls_secret("s", "S")],
    );
    assert_eq!(status(ask(&off, "a.example.com", "/x")), 200);
}

#[test]
fn temporal_and_permanent_redirects_answer_with_their_codes() {
    let w = annotated(&[("temporal-redirect", "https://t.example/")]);
    assert_eq!(
        redirected(ask(&w, "a.example.com", "/x")),
        (302, "https://t.example/".into())
    );
    let w = annotated(&[
        ("permanent-redirect", "https://p.example/"),
        ("permanent-redirect-code", "308"),
    ]);
    assert_eq!(
        redirected(ask(&w, "a.example.com", "/x")),
        (308, "https://p.example/".into())
    );
}

#[test]
fn app_root_redirects_only_the_root_to_an_absolute_url_with_the_host_header() {
    let w = annotated(&[("app-root", "/app")]);
    let mut root = Req::get("a.example.com", "/");
    root.headers.push(("host", "a.example.com:8080"));
    assert_eq!(redirected(root.ask(&w)), (302, "http://a.example.com:8080/app".into()));
    assert_eq!(upstream(ask(&w, "a.example.com", "/app")).1, "/app");
}

#[test]
fn a_source_range_forbids_other_clients_after_redirects_as_nginx_phases_order_them() {
    let w = annotated(&[("whitelist-source-range", "10.0.0.0/8, 2001:db8::/32")]);
    assert_eq!(status(ask(&w, "a.example.com", "/")), 403, "192.0.2.9 is outside");
    let mut inside = Req::get("a.example.com", "/");
    inside.client_ip = "10.1.2.3".parse().unwrap();
    assert_eq!(status(inside.ask(&w)), 200);
    inside.client_ip = "2001:db8::1".parse().unwrap();
    assert_eq!(status(inside.ask(&w)), 200);
    // nginx returns a redirect in the rewrite phase, before the access phase checks the source.
    let w = annotated(&[("whitelist-source-range", "10.0.0.0/8"), ("force-ssl-redirect", "true")]);
    assert_eq!(status(ask(&w, "a.example.com", "/")), 308);
}

#[test]
fn a_source_range_that_does_not_parse_answers_503_with_an_invalid_annotation_finding() {
    let w = annotated(&[("whitelist-source-range", "10.0.0.0/33")]);
    assert_eq!(status(ask(&w, "a.example.com", "/")), 503);
    assert_eq!(reasons(&w), vec!["InvalidAnnotation"]);
    assert!(w.findings[0].message.contains("whitelist-source-range"));
}

#[test]
fn cors_answers_a_preflight_with_204_and_adds_headers_to_other_responses() {
    let w = annotated(&[
        ("enable-cors", "true"),
        ("cors-allow-origin", "https://app.example.com"),
        ("cors-expose-headers", "X-Total"),
    ]);
    let mut preflight = Req::get("a.example.com", "/api");
    preflight.method = "OPTIONS";
    preflight.headers.push(("origin", "https://app.example.com"));
    match preflight.ask(&w) {
        Decision::Respond { status, headers, .. } => {
            assert_eq!(status, 204);
            assert_eq!(
                header(&headers, "Access-Control-Allow-Origin"),
                Some("https://app.example.com")
            );
            assert_eq!(header(&headers, "Access-Control-Expose-Headers"), Some("X-Total"));
        }
        other => panic!("{other:?}"),
    }
    let mut get = Req::get("a.example.com", "/api");
    get.headers.push(("origin", "https://app.example.com"));
    let u = proxied(get.ask(&w));
    assert_eq!(
        header(&u.response_headers, "Access-Control-Allow-Credentials"),
        Some("true")
    );
    // Another origin: no CORS at all, and its OPTIONS goes to the backend.
    let mut other = Req::get("a.example.com", "/api");
    other.method = "OPTIONS";
    other.headers.push(("origin", "https://evil.example"));
    assert!(proxied(other.ask(&w)).response_headers.is_empty());
}

#[test]
fn custom_http_errors_without_a_default_backend_are_intercepted_by_podways_own_pages() {
    let u = proxied(ask(
        &annotated(&[("custom-http-errors", "502,503")]),
        "a.example.com",
        "/",
    ));
    assert_eq!((u.intercept_errors, u.error_backend), (vec![502, 503], None));
}

#[test]
fn a_default_backend_annotation_without_endpoints_is_a_finding() {
    let w = annotated(&[("default-backend", "empty")]);
    assert_eq!(reasons(&w), vec!["DefaultBackendUnavailable"]);
    assert!(w.findings[0].message.contains("default/empty"));
}

#[test]
fn an_unimplemented_annotation_is_named_in_an_unsupported_annotation_finding_and_others_still_apply() {
    let w = annotated(&[
        ("configuration-snippet", "more_set_headers 'X: y';"),
        ("upstream-vhost", "v.example"),
    ]);
    assert_eq!(reasons(&w), vec!["UnsupportedAnnotation"]);
    assert!(w.findings[0]
        .message
        .contains("nginx.ingress.kubernetes.io/configuration-snippet"));
    assert_eq!(
        proxied(ask(&w, "a.example.com", "/")).host.as_deref(),
        Some("v.example")
    );
}

#[test]
fn an_invalid_value_is_an_invalid_annotation_finding_naming_annotation_and_value() {
    let w = annotated(&[("proxy-read-timeout", "forever")]);
    assert_eq!(reasons(&w), vec!["InvalidAnnotation"]);
    let m = &w.findings[0].message;
    assert!(m.contains("proxy-read-timeout") && m.contains("\"forever\""), "{m}");
    assert_eq!(proxied(ask(&w, "a.example.com", "/")).timeouts, Default::default());
}

#[test]
fn a_canary_without_a_main_ingress_for_its_host_and_path_serves_nothing() {
    let w = world(
        vec![ingress(
            "lonely",
            json!({"nginx.ingress.kubernetes.io/canary": "true", "nginx.ingress.kubernetes.io/canary-weight": "100"}),
            json!({"rules": [{"host": "c.example.com", "http": {"paths": [path("/", "Prefix", "beta")]}}]}),
        )],
        vec![],
    );
    assert_eq!(status(ask(&w, "c.example.com", "/")), 404);
    assert_eq!(reasons(&w), vec!["CanaryWithoutMain"]);
}

#[test]
fn a_canary_by_header_value_sends_only_that_value_and_never_touches_other_paths() {
    let main = ingress(
        "main",
        json!({}),
        json!({"rules": [{"host": "c.example.com", "http": {"paths": [
            path("/", "Prefix", "alpha"), path("/other", "Prefix", "alpha")]}}]}),
    );
    let canary = ingress(
        "canary",
        json!({"nginx.ingress.kubernetes.io/canary": "true",
            "nginx.ingress.kubernetes.io/canary-by-header": "x-version",
            "nginx.ingress.kubernetes.io/canary-by-header-value": "v2"}),
        json!({"rules": [{"host": "c.example.com", "http": {"paths": [path("/", "Prefix", "beta")]}}]}),
    );
    let w = world(vec![canary, main], vec![]);
    let with = |path: &'static str, v: &'static str| {
        let mut r = Req::get("c.example.com", path);
        r.headers.push(("x-version", v));
        proxied(r.ask(&w)).endpoints[0]
    };
    assert_eq!(with("/", "v2"), BETA.parse().unwrap());
    assert_eq!(with("/", "always"), ALPHA.parse().unwrap());
    assert_eq!(with("/other", "v2"), ALPHA.parse().unwrap());
}

#[test]
fn a_regex_ingress_is_case_insensitive_while_a_plain_ingress_on_the_host_stays_case_sensitive() {
    let w = world(
        vec![
            ingress(
                "regex",
                json!({"nginx.ingress.kubernetes.io/use-regex": "true"}),
                json!({"rules": [{"host": "r.example.com", "http": {"paths": [path("/api/v[0-9]+", "ImplementationSpecific", "beta")]}}]}),
            ),
            ingress(
                "plain",
                json!({}),
                json!({"rules": [{"host": "r.example.com", "http": {"paths": [path("/Docs", "Prefix", "alpha")]}}]}),
            ),
        ],
        vec![],
    );
    assert_eq!(
        upstream(ask(&w, "r.example.com", "/API/V2/users")),
        (BETA.parse().unwrap(), "/API/V2/users".into())
    );
    assert_eq!(
        proxied(ask(&w, "r.example.com", "/Docs/x")).endpoints[0],
        ALPHA.parse().unwrap()
    );
    assert_eq!(
        status(ask(&w, "r.example.com", "/docs")),
        404,
        "the plain path is not a regex"
    );
    assert_eq!(
        status(ask(&w, "r.example.com", "/x/api/v1")),
        404,
        "anchored at the start"
    );
}
