//! The nginx annotation dialect (`nginx.ingress.kubernetes.io/...`), parsed into plain options.
//!
//! Values are parsed, never pasted into configuration: a value that does not parse is reported
//! and the annotation ignored (ingress-nginx logs and ignores it too); an annotation in the
//! prefix that podway does not implement is reported by name.

use std::collections::BTreeMap;
use std::time::Duration;

use ipnet::IpNet;

use crate::decision::{Affinity, Protocol, Timeouts};

/// The annotations' prefix.
pub const PREFIX: &str = "nginx.ingress.kubernetes.io/";

/// ingress-nginx's default `proxy-body-size`: 1m.
const DEFAULT_MAX_BODY: u64 = 1024 * 1024;

/// Every option one Ingress's annotations set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `rewrite-target`, with `$1`..`$9` from the path's regex.
    pub rewrite_target: Option<String>,
    /// `use-regex` (or implied by `rewrite-target`, as in ingress-nginx): paths are regexes.
    pub use_regex: bool,
    /// `ssl-redirect` (default true): plain HTTP to a host with TLS is redirected.
    pub ssl_redirect: bool,
    /// `force-ssl-redirect`: plain HTTP is redirected even without TLS.
    pub force_ssl_redirect: bool,
    /// `backend-protocol`.
    pub protocol: Protocol,
    /// `proxy-body-size` (None: unlimited).
    pub max_body: Option<u64>,
    /// `proxy-connect-timeout`, `proxy-read-timeout`, `proxy-send-timeout`.
    pub timeouts: Timeouts,
    /// `whitelist-source-range` / `allowlist-source-range` (empty: everyone).
    pub allow_sources: Vec<IpNet>,
    /// `permanent-redirect` with `permanent-redirect-code` (default 301).
    pub permanent_redirect: Option<(String, u16)>,
    /// `temporal-redirect` (302).
    pub temporal_redirect: Option<String>,
    /// `app-root`: `/` is redirected (302) here.
    pub app_root: Option<String>,
    /// `x-forwarded-prefix`.
    pub forwarded_prefix: Option<String>,
    /// `upstream-vhost`.
    pub upstream_vhost: Option<String>,
    /// `custom-http-errors`.
    pub intercept_errors: Vec<u16>,
    /// `default-backend`: a Service in the Ingress's namespace for unmatched requests and
    /// intercepted errors.
    pub default_backend: Option<String>,
    /// `enable-cors` and its `cors-*` settings.
    pub cors: Option<Cors>,
    /// `affinity: cookie` and its `session-cookie-*` settings (the path defaults to the
    /// Ingress path, filled in by the table).
    pub affinity: Option<Affinity>,
    /// `canary: "true"` and its rules: this Ingress's paths take a share of the traffic of the
    /// same host and path of another Ingress.
    pub canary: Option<Canary>,
}

/// When a request goes to the canary (ingress-nginx's order: header, then cookie, then weight).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canary {
    /// `canary-by-header`: the header whose value `always` sends to the canary and `never`
    /// keeps away from it.
    pub header: Option<String>,
    /// `canary-by-header-value`: this value (instead of `always`) sends to the canary.
    pub header_value: Option<String>,
    /// `canary-by-cookie`: the cookie whose value `always`/`never` decides.
    pub cookie: Option<String>,
    /// `canary-weight` out of `canary-weight-total` (default 100).
    pub weight: u32,
    /// `canary-weight-total`.
    pub weight_total: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rewrite_target: None,
            use_regex: false,
            ssl_redirect: true,
            force_ssl_redirect: false,
            protocol: Protocol::Http,
            max_body: Some(DEFAULT_MAX_BODY),
            timeouts: Timeouts::default(),
            allow_sources: Vec::new(),
            permanent_redirect: None,
            temporal_redirect: None,
            app_root: None,
            forwarded_prefix: None,
            upstream_vhost: None,
            intercept_errors: Vec::new(),
            default_backend: None,
            cors: None,
            affinity: None,
            canary: None,
        }
    }
}

/// CORS headers (`enable-cors: "true"`), with ingress-nginx's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// `cors-allow-origin` (default `*`).
    pub allow_origin: String,
    /// `cors-allow-methods`.
    pub allow_methods: String,
    /// `cors-allow-headers`.
    pub allow_headers: String,
    /// `cors-allow-credentials` (default true).
    pub allow_credentials: bool,
    /// `cors-max-age` in seconds (default 1728000).
    pub max_age: u64,
}

/// A problem with one annotation: (annotation name, whether podway implements it, message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The full annotation name.
    pub annotation: String,
    /// True: podway does not implement it; false: its value does not parse.
    pub unsupported: bool,
    /// What is wrong.
    pub message: String,
}

/// Parse `annotations` into options and problems.
pub fn parse(annotations: &BTreeMap<String, String>) -> (Options, Vec<Problem>) {
    let mut o = Options::default();
    let mut problems = Vec::new();
    let mut invalid = |name: &str, value: &str, why: &str| {
        problems.push(Problem {
            annotation: format!("{PREFIX}{name}"),
            unsupported: false,
            message: format!("annotation {PREFIX}{name}: invalid value {value:?}: {why}; the annotation is ignored"),
        });
    };
    let get = |name: &str| {
        annotations
            .get(&format!("{PREFIX}{name}"))
            .map(|v| v.trim().to_string())
    };
    let flag = |name: &str, invalid: &mut dyn FnMut(&str, &str, &str)| -> Option<bool> {
        let v = get(name)?;
        match v.to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                invalid(name, &v, "want \"true\" or \"false\"");
                None
            }
        }
    };

    if let Some(t) = get("rewrite-target") {
        o.rewrite_target = Some(t);
        o.use_regex = true;
    }
    if let Some(b) = flag("use-regex", &mut invalid) {
        o.use_regex = b || o.rewrite_target.is_some();
    }
    if let Some(b) = flag("ssl-redirect", &mut invalid) {
        o.ssl_redirect = b;
    }
    if let Some(b) = flag("force-ssl-redirect", &mut invalid) {
        o.force_ssl_redirect = b;
    }
    if let Some(v) = get("backend-protocol") {
        match v.to_ascii_uppercase().as_str() {
            "HTTP" => o.protocol = Protocol::Http,
            "HTTPS" => o.protocol = Protocol::Https,
            "GRPC" => o.protocol = Protocol::Grpc,
            _ => invalid("backend-protocol", &v, "podway speaks HTTP, HTTPS or GRPC to backends"),
        }
    }
    if let Some(v) = get("proxy-body-size") {
        match parse_size(&v) {
            Some(0) => o.max_body = None,
            Some(n) => o.max_body = Some(n),
            None => invalid("proxy-body-size", &v, "want a size such as 8m, 512k or 0 (unlimited)"),
        }
    }
    for (name, slot) in [
        ("proxy-connect-timeout", &mut o.timeouts.connect),
        ("proxy-read-timeout", &mut o.timeouts.read),
        ("proxy-send-timeout", &mut o.timeouts.send),
    ] {
        if let Some(v) = get(name) {
            match parse_seconds(&v) {
                Some(d) => *slot = d,
                None => invalid(name, &v, "want a number of seconds, such as 30 or 30s"),
            }
        }
    }
    for name in ["whitelist-source-range", "allowlist-source-range"] {
        if let Some(v) = get(name) {
            match parse_ranges(&v) {
                Ok(ranges) => o.allow_sources = ranges,
                Err(bad) => invalid(name, &v, &format!("{bad:?} is not a CIDR or IP address")),
            }
        }
    }
    if let Some(v) = get("permanent-redirect") {
        let code = match get("permanent-redirect-code") {
            None => 301,
            Some(c) => match c.parse::<u16>() {
                Ok(n) if (300..=308).contains(&n) => n,
                _ => {
                    invalid("permanent-redirect-code", &c, "want a redirect status 300-308");
                    301
                }
            },
        };
        o.permanent_redirect = Some((v, code));
    }
    o.temporal_redirect = get("temporal-redirect");
    if let Some(v) = get("app-root") {
        if v.starts_with('/') {
            o.app_root = Some(v);
        } else {
            invalid("app-root", &v, "want an absolute path such as /app");
        }
    }
    o.forwarded_prefix = get("x-forwarded-prefix");
    o.upstream_vhost = get("upstream-vhost");
    if let Some(v) = get("custom-http-errors") {
        let codes: Result<Vec<u16>, _> = v.split(',').map(|c| c.trim().parse::<u16>()).collect();
        match codes {
            Ok(c) if c.iter().all(|n| (400..=599).contains(n)) => o.intercept_errors = c,
            _ => invalid(
                "custom-http-errors",
                &v,
                "want a comma-separated list of status codes 400-599",
            ),
        }
    }
    o.default_backend = get("default-backend");
    if flag("enable-cors", &mut invalid) == Some(true) {
        o.cors = Some(Cors {
            allow_origin: get("cors-allow-origin").unwrap_or_else(|| "*".into()),
            allow_methods: get("cors-allow-methods").unwrap_or_else(|| "GET, PUT, POST, DELETE, PATCH, OPTIONS".into()),
            allow_headers: get("cors-allow-headers").unwrap_or_else(|| {
                "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization".into()
            }),
            allow_credentials: flag("cors-allow-credentials", &mut invalid).unwrap_or(true),
            max_age: get("cors-max-age").and_then(|v| v.parse().ok()).unwrap_or(1_728_000),
        });
    }

    if let Some(v) = get("affinity") {
        if v == "cookie" {
            let max_age = get("session-cookie-max-age").and_then(|m| match m.parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    invalid("session-cookie-max-age", &m, "want a number of seconds");
                    None
                }
            });
            o.affinity = Some(Affinity {
                cookie: get("session-cookie-name").unwrap_or_else(|| "INGRESSCOOKIE".into()),
                path: get("session-cookie-path").unwrap_or_default(),
                max_age,
            });
        } else {
            invalid("affinity", &v, "podway implements affinity \"cookie\"");
        }
    }
    if flag("canary", &mut invalid) == Some(true) {
        let number = |name: &str, default: u32, invalid: &mut dyn FnMut(&str, &str, &str)| match get(name) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|_| {
                invalid(name, &v, "want a whole number");
                default
            }),
        };
        let weight_total = number("canary-weight-total", 100, &mut invalid).max(1);
        o.canary = Some(Canary {
            header: get("canary-by-header"),
            header_value: get("canary-by-header-value"),
            cookie: get("canary-by-cookie"),
            weight: number("canary-weight", 0, &mut invalid).min(weight_total),
            weight_total,
        });
    }

    for name in annotations.keys() {
        if let Some(short) = name.strip_prefix(PREFIX) {
            if !SUPPORTED.contains(&short) {
                problems.push(Problem {
                    annotation: name.clone(),
                    unsupported: true,
                    message: format!(
                        "annotation {name} is not implemented by podway's Ingress controller and has no effect"
                    ),
                });
            }
        }
    }
    (o, problems)
}

/// The annotations podway implements (the rest of the prefix is reported).
const SUPPORTED: &[&str] = &[
    "rewrite-target",
    "use-regex",
    "ssl-redirect",
    "force-ssl-redirect",
    "backend-protocol",
    "proxy-body-size",
    "proxy-connect-timeout",
    "proxy-read-timeout",
    "proxy-send-timeout",
    "whitelist-source-range",
    "allowlist-source-range",
    "permanent-redirect",
    "permanent-redirect-code",
    "temporal-redirect",
    "app-root",
    "x-forwarded-prefix",
    "upstream-vhost",
    "custom-http-errors",
    "default-backend",
    "enable-cors",
    "cors-allow-origin",
    "cors-allow-methods",
    "cors-allow-headers",
    "cors-allow-credentials",
    "cors-max-age",
    "affinity",
    "session-cookie-name",
    "session-cookie-path",
    "session-cookie-max-age",
    "canary",
    "canary-by-header",
    "canary-by-header-value",
    "canary-by-cookie",
    "canary-weight",
    "canary-weight-total",
];

/// nginx's size syntax: a number with an optional k/m/g suffix (either case).
fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let (digits, unit) = match v.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&v[..i], c.to_ascii_lowercase()),
        _ => (v, ' '),
    };
    let n: u64 = digits.parse().ok()?;
    let mult = match unit {
        ' ' => 1,
        'k' => 1024,
        'm' => 1024 * 1024,
        'g' => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Seconds, as ingress-nginx's timeouts take them (`30` or `30s`).
fn parse_seconds(v: &str) -> Option<Duration> {
    let n: u64 = v.strip_suffix('s').unwrap_or(v).parse().ok()?;
    (n > 0).then(|| Duration::from_secs(n))
}

/// A comma-separated list of CIDRs or addresses; the first bad entry on failure.
fn parse_ranges(v: &str) -> Result<Vec<IpNet>, String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| s.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
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
        assert_eq!(
            of(&[("permanent-redirect", "https://example.com")])
                .0
                .permanent_redirect,
            Some(("https://example.com".into(), 301))
        );
        assert_eq!(
            of(&[("permanent-redirect", "/x"), ("permanent-redirect-code", "308")])
                .0
                .permanent_redirect,
            Some(("/x".into(), 308))
        );
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
        assert_eq!(c.allow_origin, "*");
        assert!(c.allow_credentials);
        assert_eq!(c.max_age, 1_728_000);
    }
}
