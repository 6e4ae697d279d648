//! The nginx annotation dialect (`nginx.ingress.kubernetes.io/...`), parsed into plain options.
//!
//! Values are parsed, never pasted into configuration: a value that does not parse is reported
//! and the annotation ignored (ingress-nginx logs and ignores it too); an annotation in the
//! prefix that podway does not implement is reported by name.

use std::collections::BTreeMap;
use std::time::Duration;

use ipnet::IpNet;

pub use super::cors::Cors;
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
    /// Why every path of the Ingress answers 503, if it must: a source range that does not
    /// parse denies the paths (ingress-nginx's "location denied") rather than open them to all.
    pub denied: Option<String>,
    /// `temporal-redirect` with `temporal-redirect-code` (default 302), else
    /// `permanent-redirect` with `permanent-redirect-code` (default 301): (URL, status).
    pub redirect: Option<(String, u16)>,
    /// `preserve-trailing-slash`: the ssl-redirect keeps a trailing `/` (ingress-nginx drops
    /// it by default).
    pub preserve_trailing_slash: bool,
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
            denied: None,
            redirect: None,
            preserve_trailing_slash: false,
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
        if plain(&t) {
            o.rewrite_target = Some(t);
            o.use_regex = true;
        } else {
            invalid(
                "rewrite-target",
                &t,
                "want a path such as / or /$2, without spaces or control characters",
            );
        }
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
    if let Some(b) = flag("preserve-trailing-slash", &mut invalid) {
        o.preserve_trailing_slash = b;
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
    let mut denied = None;
    for name in ["whitelist-source-range", "allowlist-source-range"] {
        if let Some(v) = get(name) {
            match parse_ranges(&v) {
                Ok(ranges) => o.allow_sources = ranges,
                Err(bad) => {
                    // Reported below, once `invalid` is done with `problems`.
                    denied = Some(Problem {
                        annotation: format!("{PREFIX}{name}"),
                        unsupported: false,
                        message: format!(
                            "annotation {PREFIX}{name}: invalid value {v:?}: {bad:?} is not a CIDR or IP address; the Ingress's paths answer 503"
                        ),
                    });
                }
            }
        }
    }
    o.redirect = redirect(&get, "temporal-redirect", 302, 307, &mut invalid)
        .or_else(|| redirect(&get, "permanent-redirect", 301, 308, &mut invalid));
    if let Some(v) = get("app-root") {
        if v.starts_with('/') && plain(&v) {
            o.app_root = Some(v);
        } else {
            invalid("app-root", &v, "want an absolute path such as /app");
        }
    }
    if let Some(v) = get("x-forwarded-prefix") {
        if plain(&v) {
            o.forwarded_prefix = Some(v);
        } else {
            invalid(
                "x-forwarded-prefix",
                &v,
                "want a path without spaces or control characters",
            );
        }
    }
    if let Some(v) = get("upstream-vhost") {
        if !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:_[]".contains(&b)) {
            o.upstream_vhost = Some(v);
        } else {
            invalid("upstream-vhost", &v, "want a host name, optionally with a port");
        }
    }
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
    if let Some(v) = get("default-backend") {
        if is_dns_label(&v) {
            o.default_backend = Some(v);
        } else {
            invalid(
                "default-backend",
                &v,
                "want the name of a Service in the Ingress's namespace",
            );
        }
    }
    if flag("enable-cors", &mut invalid) == Some(true) {
        o.cors = Some(super::cors::parse(&get, &mut invalid));
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
            let mut text = |name: &str, ok: &dyn Fn(&str) -> bool, want: &str| {
                get(name).filter(|v| {
                    let good = ok(v);
                    if !good {
                        invalid(name, v, want);
                    }
                    good
                })
            };
            let token = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            o.affinity = Some(Affinity {
                cookie: text(
                    "session-cookie-name",
                    &token,
                    "want a cookie name of letters, digits, - _ .",
                )
                .unwrap_or_else(|| "INGRESSCOOKIE".into()),
                path: text(
                    "session-cookie-path",
                    &|v: &str| v.starts_with('/') && plain(v),
                    "want a path such as /app",
                )
                .unwrap_or_default(),
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
        // ingress-nginx takes a total below 100 as 100.
        let weight_total = number("canary-weight-total", 100, &mut invalid).max(100);
        o.canary = Some(Canary {
            header: get("canary-by-header"),
            header_value: get("canary-by-header-value"),
            cookie: get("canary-by-cookie"),
            weight: number("canary-weight", 0, &mut invalid).min(weight_total),
            weight_total,
        });
    }

    if let Some(p) = denied {
        o.denied = Some(format!("{} does not parse", p.annotation));
        problems.push(p);
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
    "temporal-redirect-code",
    "preserve-trailing-slash",
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
    "cors-expose-headers",
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

/// `name`'s redirect (URL, status) if set: an http(s) URL, and `name-code` within 300..=`max`
/// (else `default`, as ingress-nginx falls back).
fn redirect(
    get: &dyn Fn(&str) -> Option<String>,
    name: &str,
    default: u16,
    max: u16,
    invalid: &mut dyn FnMut(&str, &str, &str),
) -> Option<(String, u16)> {
    let url = get(name)?;
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    if !scheme_ok || !plain(&url) {
        invalid(name, &url, "want an http:// or https:// URL");
        return None;
    }
    let code_name = format!("{name}-code");
    let code = match get(&code_name) {
        None => default,
        Some(c) => match c.parse::<u16>() {
            Ok(n) if (300..=max).contains(&n) => n,
            _ => {
                invalid(&code_name, &c, &format!("want a redirect status 300-{max}"));
                default
            }
        },
    };
    Some((url, code))
}

/// No whitespace and no control characters: safe in a header or a status line.
fn plain(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic())
}

/// A DNS-1035 label, as Service names are.
fn is_dns_label(v: &str) -> bool {
    (1..=63).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !v.starts_with('-')
        && !v.ends_with('-')
}

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
mod tests;
