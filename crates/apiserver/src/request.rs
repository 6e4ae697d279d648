//! Turning a URL into what is asked: which resource, namespace, name, subresource and verb.

use std::collections::BTreeMap;

/// The parts of a resource path, after `/api/v1` or `/apis/G/V`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourcePath {
    /// API group, "" for core.
    pub group: String,
    /// API version.
    pub version: String,
    /// Namespace from the path, "" for none.
    pub namespace: String,
    /// Plural resource.
    pub resource: String,
    /// Object name, "" for collections.
    pub name: String,
    /// Subresource, "" for none.
    pub subresource: String,
}

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/version`.
    Version,
    /// `/healthz`, `/livez`, `/readyz` (and their sub-checks).
    Health,
    /// `/api` (core group discovery).
    CoreGroups,
    /// `/apis` (all other groups).
    Groups,
    /// `/apis/G`.
    Group(String),
    /// `/api/v1` or `/apis/G/V`: the resources of one group-version.
    Resources(String, String),
    /// `/openapi/v2`.
    OpenApiV2,
    /// `/openapi/v3`.
    OpenApiRoot,
    /// `/openapi/v3/<gv path>`.
    OpenApiDocument(String),
    /// A resource path.
    Resource(ResourcePath),
    /// Anything else.
    Unknown,
}

/// Parse a request path (without the query).
pub fn parse_path(path: &str) -> Target {
    let parts: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    match parts.as_slice() {
        ["version"] => Target::Version,
        [h, ..] if matches!(*h, "healthz" | "livez" | "readyz") => Target::Health,
        ["api"] => Target::CoreGroups,
        ["apis"] => Target::Groups,
        ["apis", g] => Target::Group(g.to_string()),
        ["api", v] => Target::Resources(String::new(), v.to_string()),
        ["apis", g, v] => Target::Resources(g.to_string(), v.to_string()),
        ["openapi", "v2"] => Target::OpenApiV2,
        ["openapi", "v3"] => Target::OpenApiRoot,
        ["openapi", "v3", rest @ ..] => Target::OpenApiDocument(rest.join("/")),
        ["api", v, rest @ ..] => resource_path("", v, rest),
        ["apis", g, v, rest @ ..] => resource_path(g, v, rest),
        _ => Target::Unknown,
    }
}

fn resource_path(group: &str, version: &str, rest: &[&str]) -> Target {
    let mut p = ResourcePath {
        group: group.into(),
        version: version.into(),
        ..Default::default()
    };
    let mut rest = rest;
    if rest.first() == Some(&"namespaces") && rest.len() > 1 {
        // `namespaces/X/status` and `namespaces/X/finalize` address the namespace itself.
        if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
            p.namespace = rest[1].to_string();
            rest = &rest[2..];
        }
    }
    match rest {
        [r] => p.resource = r.to_string(),
        [r, n] => {
            p.resource = r.to_string();
            p.name = n.to_string();
        }
        [r, n, s] => {
            p.resource = r.to_string();
            p.name = n.to_string();
            p.subresource = s.to_string();
        }
        _ => return Target::Unknown,
    }
    Target::Resource(p)
}

/// Query parameters; a repeated key keeps every value (exec's `command`).
#[derive(Debug, Clone, Default)]
pub struct Query(BTreeMap<String, Vec<String>>);

impl Query {
    /// Parse `a=1&b=2`.
    pub fn parse(q: Option<&str>) -> Query {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
            m.entry(k.into_owned()).or_default().push(v.into_owned());
        }
        Query(m)
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.first()).map(String::as_str)
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// A boolean parameter (`true`, `1`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourcePath {
        match parse_path(path) {
            Target::Resource(p) => p,
            other => panic!("{path} parsed as {other:?}"),
        }
    }

    #[test]
    fn namespaced_object_path_is_split() {
        let p = res("/apis/apps/v1/namespaces/default/deployments/web/scale");
        assert_eq!(
            (p.group.as_str(), p.namespace.as_str(), p.resource.as_str()),
            ("apps", "default", "deployments")
        );
        assert_eq!((p.name.as_str(), p.subresource.as_str()), ("web", "scale"));
    }

    #[test]
    fn namespace_status_addresses_the_namespace() {
        let p = res("/api/v1/namespaces/demo/status");
        assert_eq!(
            (p.resource.as_str(), p.name.as_str(), p.subresource.as_str()),
            ("namespaces", "demo", "status")
        );
        assert_eq!(p.namespace, "");
    }

    #[test]
    fn all_namespaces_list_has_no_namespace() {
        let p = res("/api/v1/pods");
        assert_eq!(
            (p.resource.as_str(), p.namespace.as_str(), p.name.as_str()),
            ("pods", "", "")
        );
    }

    #[test]
    fn discovery_paths_are_recognised() {
        assert_eq!(parse_path("/api"), Target::CoreGroups);
        assert_eq!(
            parse_path("/apis/apps/v1"),
            Target::Resources("apps".into(), "v1".into())
        );
        assert_eq!(
            parse_path("/openapi/v3/apis/apps/v1"),
            Target::OpenApiDocument("apis/apps/v1".into())
        );
    }

    #[test]
    fn repeated_query_keys_keep_every_value() {
        let q = Query::parse(Some("command=echo&command=hi&watch=true"));
        assert_eq!(q.all("command"), ["echo".to_string(), "hi".to_string()]);
        assert!(q.flag("watch"));
    }
}
