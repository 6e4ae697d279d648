//! The probe URL: what the kubelet's `formatURL` builds (scheme, host:port, the probe's path
//! with its query) and how a redirect's Location resolves against it.

use std::fmt;

use super::join_host_port;

/// An http or https URL with an explicit port, printed as Go's `url.URL.String` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeUrl {
    scheme: String,
    host: String,
    port: u16,
    /// The path as written (may be empty, may lack the leading slash).
    path: String,
    query: Option<String>,
}

impl ProbeUrl {
    /// The URL of a probe: `path` may carry a query; a fragment is dropped.
    pub fn new(scheme: &str, host: &str, port: u16, path: &str) -> ProbeUrl {
        let path = path.split('#').next().unwrap_or("");
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q.to_string())),
            None => (path, None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        ProbeUrl {
            scheme: scheme.to_string(),
            host: host.to_string(),
            port,
            path: path.to_string(),
            query,
        }
    }

    /// "http" or "https" (anything else fails when connecting).
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The host name or IP, without brackets (Go's `Hostname()`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// host:port, bracketed for IPv6; the default Host header.
    pub fn host_port(&self) -> String {
        join_host_port(&self.host, self.port)
    }

    /// The request line's target: the path (at least "/") and the query.
    pub fn request_target(&self) -> String {
        let mut target = if self.path.is_empty() {
            "/".to_string()
        } else if self.path.starts_with('/') {
            self.path.clone()
        } else {
            format!("/{}", self.path)
        };
        if let Some(query) = &self.query {
            target.push('?');
            target.push_str(query);
        }
        target
    }

    /// Resolve a redirect's `location` against this URL (RFC 3986 reference resolution, as
    /// Go's `URL.Parse` on the request URL does).
    pub fn join(&self, location: &str) -> Result<ProbeUrl, String> {
        let location = location.split('#').next().unwrap_or("");
        if let Some((scheme, rest)) = split_scheme(location) {
            let rest = rest
                .strip_prefix("//")
                .ok_or_else(|| format!("unsupported protocol scheme \"{scheme}\""))?;
            return absolute(&scheme, rest);
        }
        if let Some(rest) = location.strip_prefix("//") {
            return absolute(&self.scheme, rest);
        }
        let (path, query) = match location.split_once('?') {
            Some((p, q)) => (p, Some(q.to_string())),
            None => (location, None),
        };
        let mut next = self.clone();
        if path.is_empty() {
            if query.is_some() {
                next.query = query;
            }
            return Ok(next);
        }
        let merged = if path.starts_with('/') {
            path.to_string()
        } else {
            let base = self.request_target();
            let base = base.split('?').next().unwrap_or("/");
            let dir = &base[..base.rfind('/').map(|i| i + 1).unwrap_or(0)];
            format!("{dir}{path}")
        };
        next.path = remove_dot_segments(&merged);
        next.query = query;
        Ok(next)
    }
}

impl fmt::Display for ProbeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host_port())?;
        if !self.path.is_empty() && !self.path.starts_with('/') {
            f.write_str("/")?;
        }
        f.write_str(&self.path)?;
        if let Some(query) = &self.query {
            write!(f, "?{query}")?;
        }
        Ok(())
    }
}

/// Whether a Location is relative (no scheme, no authority): Go keeps a custom Host header
/// only across such redirects.
pub(super) fn is_relative(location: &str) -> bool {
    split_scheme(location).is_none() && !location.starts_with("//")
}

fn split_scheme(location: &str) -> Option<(String, &str)> {
    let colon = location.find(':')?;
    let scheme = &location[..colon];
    let valid = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    valid.then(|| (scheme.to_ascii_lowercase(), &location[colon + 1..]))
}

/// An absolute URL from its scheme and what follows "//".
fn absolute(scheme: &str, rest: &str) -> Result<ProbeUrl, String> {
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let authority = authority.rsplit_once('@').map(|(_, a)| a).unwrap_or(authority);
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        other => return Err(format!("unsupported protocol scheme \"{other}\"")),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("invalid host {authority:?}"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port.filter(|p| !p.is_empty()) {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("invalid port \":{p}\" after host"))?,
        None => default_port,
    };
    let path = &rest[end..];
    let mut url = ProbeUrl::new(scheme, host, port, path);
    url.path = remove_dot_segments(&url.path);
    Ok(url)
}

/// RFC 3986 section 5.2.4.
fn remove_dot_segments(path: &str) -> String {
    if !path.contains("/.") && !path.starts_with('.') {
        return path.to_string();
    }
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    if joined.starts_with('/') {
        joined
    } else {
        format!("/{joined}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ProbeUrl {
        ProbeUrl::new("http", "10.0.0.5", 8080, "/app/health?x=1")
    }

    #[test]
    fn urls_print_as_go_prints_them() {
        assert_eq!(
            ProbeUrl::new("http", "10.0.0.5", 80, "").to_string(),
            "http://10.0.0.5:80"
        );
        assert_eq!(
            ProbeUrl::new("http", "10.0.0.5", 80, "healthz").to_string(),
            "http://10.0.0.5:80/healthz"
        );
        assert_eq!(
            ProbeUrl::new("https", "fd00::1", 443, "/a?b=c#frag").to_string(),
            "https://[fd00::1]:443/a?b=c"
        );
        assert_eq!(ProbeUrl::new("http", "h", 1, "").request_target(), "/");
        assert_eq!(base().request_target(), "/app/health?x=1");
    }

    #[test]
    fn redirect_locations_resolve_against_the_request_url() {
        assert_eq!(base().join("/other").unwrap().to_string(), "http://10.0.0.5:8080/other");
        assert_eq!(
            base().join("ready?y=2").unwrap().to_string(),
            "http://10.0.0.5:8080/app/ready?y=2"
        );
        assert_eq!(base().join("../up").unwrap().to_string(), "http://10.0.0.5:8080/up");
        assert_eq!(
            base().join("//other.host/p").unwrap().to_string(),
            "http://other.host:80/p"
        );
        assert_eq!(
            base().join("https://10.0.0.5/secure").unwrap().to_string(),
            "https://10.0.0.5:443/secure"
        );
        assert_eq!(base().join("http://[::1]:9/x").unwrap().host(), "::1");
        assert!(base().join("ftp://10.0.0.5/x").is_err());
    }

    #[test]
    fn only_references_without_scheme_or_authority_are_relative() {
        assert!(is_relative("/a"));
        assert!(is_relative("a/b"));
        assert!(!is_relative("//h/a"));
        assert!(!is_relative("http://h/a"));
    }
}
