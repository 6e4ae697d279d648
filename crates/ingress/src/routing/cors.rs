//! CORS (`enable-cors` and the `cors-*` annotations), as ingress-nginx answers it.
//!
//! ingress-nginx turns CORS on for a request when its `Origin` matches `cors-allow-origin`
//! (`*`, the default, matches every request, with or without an `Origin`). Such a request's
//! response carries the `Access-Control-*` headers; an `OPTIONS` one (a preflight) is answered
//! at once with 204. A request whose origin does not match gets no CORS headers, and its
//! `OPTIONS` goes to the backend like any request.

/// The CORS settings of one Ingress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// `cors-allow-origin`: `*` or origins such as `https://*.example.com:8443` (a `*` stands for
    /// one DNS label), compared without regard to case. Empty: no origin is allowed.
    pub origins: Vec<String>,
    /// `cors-allow-methods`.
    pub allow_methods: String,
    /// `cors-allow-headers`.
    pub allow_headers: String,
    /// `cors-expose-headers`, if any.
    pub expose_headers: Option<String>,
    /// `cors-allow-credentials` (default true).
    pub allow_credentials: bool,
    /// `cors-max-age` in seconds (default 1728000, 20 days).
    pub max_age: u64,
}

/// ingress-nginx's `cors-allow-methods` default.
const DEFAULT_METHODS: &str = "GET, PUT, POST, DELETE, PATCH, OPTIONS";
/// ingress-nginx's `cors-allow-headers` default.
const DEFAULT_HEADERS: &str =
    "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization";
/// ingress-nginx's `cors-max-age` default.
const DEFAULT_MAX_AGE: u64 = 1_728_000;

impl Cors {
    /// The response headers for a request with `origin` (its `Origin` header), or None when
    /// CORS is off for it (the origin is not allowed).
    pub fn headers(&self, origin: Option<&str>) -> Option<Vec<(String, String)>> {
        let allow_origin = if self.origins.iter().any(|o| o == "*") {
            "*".to_string()
        } else {
            let origin = origin?;
            self.origins
                .iter()
                .any(|o| origin_matches(o, origin))
                .then(|| origin.to_string())?
        };
        let mut out = vec![("Access-Control-Allow-Origin".to_string(), allow_origin)];
        if self.allow_credentials {
            out.push(("Access-Control-Allow-Credentials".into(), "true".into()));
        }
        out.push(("Access-Control-Allow-Methods".into(), self.allow_methods.clone()));
        out.push(("Access-Control-Allow-Headers".into(), self.allow_headers.clone()));
        if let Some(e) = &self.expose_headers {
            out.push(("Access-Control-Expose-Headers".into(), e.clone()));
        }
        out.push(("Access-Control-Max-Age".into(), self.max_age.to_string()));
        Some(out)
    }
}

/// Whether `origin` matches the allowed `pattern`: equal without regard to case, the first `*`
/// standing for one or more of `A-Za-z0-9-` (one DNS label).
fn origin_matches(pattern: &str, origin: &str) -> bool {
    let (p, o) = (pattern.to_ascii_lowercase(), origin.to_ascii_lowercase());
    match p.split_once('*') {
        None => p == o,
        Some((before, after)) => {
            o.len() > before.len() + after.len()
                && o.starts_with(before)
                && o.ends_with(after)
                && o[before.len()..o.len() - after.len()]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        }
    }
}

/// Whether `origin` is one ingress-nginx accepts in `cors-allow-origin`: `*`, `null`, or
/// `scheme://[*.]host[:port]` with a lowercase scheme.
fn valid_origin(origin: &str) -> bool {
    if origin == "*" || origin == "null" {
        return true;
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let rest = rest.strip_prefix("*.").unwrap_or(rest);
    let (host, port) = match rest.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    !scheme.is_empty()
        && scheme.bytes().all(|b| b.is_ascii_lowercase())
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The CORS settings from `get` (an annotation's trimmed value by its short name), with
/// ingress-nginx's defaults for what is missing or does not parse (reported to `invalid`).
/// Call only when `enable-cors` is true.
pub fn parse(get: &dyn Fn(&str) -> Option<String>, invalid: &mut dyn FnMut(&str, &str, &str)) -> Cors {
    let mut origins = Vec::new();
    match get("cors-allow-origin") {
        None => origins.push("*".to_string()),
        Some(v) => {
            for o in v.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                if o == "*" {
                    origins = vec!["*".into()];
                    break;
                }
                if valid_origin(o) {
                    origins.push(o.to_string());
                } else {
                    invalid(
                        "cors-allow-origin",
                        &v,
                        &format!("{o:?} is not *, null or scheme://host[:port]; that origin is skipped"),
                    );
                }
            }
        }
    }
    let mut checked = |name: &str, ok: &dyn Fn(&str) -> bool, default: &str, want: &str| match get(name) {
        Some(v) if ok(&v) => v,
        Some(v) => {
            invalid(name, &v, want);
            default.to_string()
        }
        None => default.to_string(),
    };
    let header_list = |v: &str| v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_, ".contains(&b));
    let allow_headers = checked(
        "cors-allow-headers",
        &header_list,
        DEFAULT_HEADERS,
        "want header names separated by commas",
    );
    let allow_methods = checked(
        "cors-allow-methods",
        &|v: &str| !v.trim().is_empty() && v.bytes().all(|b| b.is_ascii_alphabetic() || b", ".contains(&b)),
        DEFAULT_METHODS,
        "want methods separated by commas",
    );
    let expose = checked(
        "cors-expose-headers",
        &|v: &str| v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_, *".contains(&b)),
        "",
        "want header names (or *) separated by commas",
    );
    let allow_credentials = match get("cors-allow-credentials") {
        None => true,
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => {
                invalid("cors-allow-credentials", &v, "want \"true\" or \"false\"");
                true
            }
        },
    };
    let max_age = match get("cors-max-age") {
        None => DEFAULT_MAX_AGE,
        Some(v) => v.parse().unwrap_or_else(|_| {
            invalid("cors-max-age", &v, "want a number of seconds");
            DEFAULT_MAX_AGE
        }),
    };
    Cors {
        origins,
        allow_methods,
        allow_headers,
        expose_headers: Some(expose).filter(|e| !e.is_empty()),
        allow_credentials,
        max_age,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cors(pairs: &[(&str, &str)]) -> (Cors, Vec<String>) {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut problems = Vec::new();
        let c = parse(&|k| map.get(k).cloned(), &mut |name, value, why| {
            problems.push(format!("{name} {value:?}: {why}"))
        });
        (c, problems)
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn defaults_allow_every_origin_with_ingress_nginx_methods_headers_and_max_age() {
        let (c, p) = cors(&[]);
        assert!(p.is_empty());
        let h = c.headers(None).expect("* needs no Origin");
        assert_eq!(header(&h, "Access-Control-Allow-Origin"), Some("*"));
        assert_eq!(header(&h, "Access-Control-Allow-Credentials"), Some("true"));
        assert_eq!(header(&h, "Access-Control-Allow-Methods"), Some(DEFAULT_METHODS));
        assert_eq!(header(&h, "Access-Control-Allow-Headers"), Some(DEFAULT_HEADERS));
        assert_eq!(header(&h, "Access-Control-Max-Age"), Some("1728000"));
        assert_eq!(header(&h, "Access-Control-Expose-Headers"), None);
    }

    #[test]
    fn listed_origins_echo_the_matching_origin_and_ignore_others() {
        let (c, p) = cors(&[(
            "cors-allow-origin",
            "https://app.example.com, https://*.example.org:8443",
        )]);
        assert!(p.is_empty(), "{p:?}");
        let h = c.headers(Some("https://APP.example.com")).unwrap();
        assert_eq!(
            header(&h, "Access-Control-Allow-Origin"),
            Some("https://APP.example.com")
        );
        assert!(c.headers(Some("https://a.example.org:8443")).is_some());
        assert!(
            c.headers(Some("https://a.b.example.org:8443")).is_none(),
            "one label only"
        );
        assert!(c.headers(Some("https://example.org:8443")).is_none());
        assert!(c.headers(Some("https://evil.com")).is_none());
        assert!(c.headers(None).is_none());
    }

    #[test]
    fn an_invalid_origin_is_skipped_and_reported() {
        let (c, p) = cors(&[("cors-allow-origin", "https://ok.example, not an origin")]);
        assert_eq!(c.origins, vec!["https://ok.example".to_string()]);
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("not an origin"), "{p:?}");
    }

    #[test]
    fn invalid_methods_and_headers_fall_back_to_defaults_with_a_problem() {
        let (c, p) = cors(&[
            ("cors-allow-methods", "GET; rm -rf"),
            ("cors-allow-headers", "X-Ok\r\nX-Injected: 1"),
            ("cors-allow-credentials", "false"),
            ("cors-expose-headers", "X-Total, X-Page"),
            ("cors-max-age", "600"),
        ]);
        assert_eq!(
            (c.allow_methods.as_str(), c.allow_headers.as_str()),
            (DEFAULT_METHODS, DEFAULT_HEADERS)
        );
        assert_eq!(p.len(), 2, "{p:?}");
        let h = c.headers(Some("https://x")).unwrap();
        assert_eq!(header(&h, "Access-Control-Allow-Credentials"), None);
        assert_eq!(header(&h, "Access-Control-Expose-Headers"), Some("X-Total, X-Page"));
        assert_eq!(header(&h, "Access-Control-Max-Age"), Some("600"));
    }
}
