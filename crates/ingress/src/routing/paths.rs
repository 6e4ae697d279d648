//! Matching a request path against one Ingress path, and rewriting it.
//!
//! - `Exact`: the whole path, case-sensitive.
//! - `Prefix`: element-wise on `/`-separated parts (`/foo` matches `/foo` and `/foo/bar`, not
//!   `/foobar`; a trailing `/` in the rule is ignored), as the Ingress API defines it.
//! - `ImplementationSpecific`: ingress-nginx's plain `location /foo`, a string prefix.
//! - With `use-regex` or `rewrite-target` on its Ingress: a case-insensitive regex anchored at
//!   the start, as ingress-nginx's `location ~* "^..."`; only that Ingress's paths are regexes.

use regex::Regex;

/// How one Ingress path matches.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// pathType Exact.
    Exact(String),
    /// pathType Prefix.
    Prefix(String),
    /// pathType ImplementationSpecific without regex: a string prefix.
    StringPrefix(String),
    /// A regex path.
    Regex(Regex),
}

impl Matcher {
    /// The matcher for `path` of `path_type`; a regex when `regex`. Err: the regex does not
    /// compile.
    pub fn new(path: &str, path_type: &str, regex: bool) -> Result<Matcher, regex::Error> {
        // v1beta1 manifests may leave the path empty: ingress-nginx serves it as `/`.
        let path = if path.is_empty() { "/" } else { path };
        if regex && path_type != "Exact" {
            return Ok(Matcher::Regex(Regex::new(&format!("(?i)^{path}"))?));
        }
        Ok(match path_type {
            "Exact" => Matcher::Exact(path.to_string()),
            "Prefix" => Matcher::Prefix(path.trim_end_matches('/').to_string()),
            _ => Matcher::StringPrefix(path.to_string()),
        })
    }

    /// Whether `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            Matcher::Exact(p) => path == p,
            // "" is the rule `/`: everything.
            Matcher::Prefix(p) => {
                p.is_empty()
                    || path
                        .strip_prefix(p.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            }
            Matcher::StringPrefix(p) => path.starts_with(p.as_str()),
            Matcher::Regex(r) => r.is_match(path),
        }
    }

    /// The rank among matches on one host: exact first, then the longer rule (ingress-nginx
    /// orders a host's locations by path length, longest first).
    pub fn rank(&self, rule_path: &str) -> (bool, usize) {
        (matches!(self, Matcher::Exact(_)), rule_path.len())
    }
}

/// The path to send upstream when `rewrite_target` applies: nginx's
/// `rewrite "(?i)<path>" <target> break;`, the whole URI replaced by the target with `$1`..`$9`
/// from the path's regex; the query is kept (nginx appends the arguments).
pub fn rewrite(matcher: &Matcher, path: &str, query: Option<&str>, target: &str) -> String {
    let mut out = String::with_capacity(target.len() + 16);
    let caps = match matcher {
        Matcher::Regex(r) => r.captures(path),
        _ => None,
    };
    let mut chars = target.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' {
            if let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                chars.next();
                if let Some(m) = caps.as_ref().and_then(|c| c.get(d as usize)) {
                    out.push_str(m.as_str());
                }
                continue;
            }
        }
        out.push(c);
    }
    if !out.starts_with('/') && !out.contains("://") {
        out.insert(0, '/');
    }
    if let Some(q) = query {
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(q);
    }
    out
}

/// The lowercased literal every match of regex path `pattern` starts with (ignoring ASCII
/// case): the characters before the first regex syntax, less one made optional by a
/// quantifier; empty when unsure (a top-level `|`, a non-ASCII character).
pub fn literal_prefix(pattern: &str) -> String {
    if top_level_alternation(pattern) {
        return String::new();
    }
    let mut out = String::new();
    for c in pattern.chars() {
        match c {
            '?' | '*' | '{' => {
                out.pop();
                break;
            }
            '\\' | '.' | '+' | '(' | ')' | '|' | '[' | ']' | '^' | '$' | '}' => break,
            c if c.is_ascii() && !c.is_ascii_whitespace() => out.push(c.to_ascii_lowercase()),
            _ => break,
        }
    }
    out
}

/// Whether `pattern` has a `|` outside groups and classes.
fn top_level_alternation(pattern: &str) -> bool {
    let (mut depth, mut in_class, mut escaped) = (0usize, false, false);
    for c in pattern.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            _ if in_class => {}
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            '|' if depth == 0 => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(path: &str, kind: &str, regex: bool) -> Matcher {
        Matcher::new(path, kind, regex).unwrap()
    }

    #[test]
    fn prefix_matches_whole_path_elements_only() {
        let p = m("/foo", "Prefix", false);
        assert!(p.matches("/foo") && p.matches("/foo/") && p.matches("/foo/bar"));
        assert!(!p.matches("/foobar") && !p.matches("/fo"));
        let trailing = m("/foo/", "Prefix", false);
        assert!(trailing.matches("/foo") && trailing.matches("/foo/x"));
        assert!(m("/", "Prefix", false).matches("/anything"));
    }

    #[test]
    fn exact_is_exact_and_implementation_specific_is_a_string_prefix() {
        let e = m("/foo", "Exact", false);
        assert!(e.matches("/foo") && !e.matches("/foo/"));
        let s = m("/foo", "ImplementationSpecific", false);
        assert!(s.matches("/foobar") && s.matches("/foo/x") && !s.matches("/fo"));
        assert!(
            m("", "ImplementationSpecific", false).matches("/x"),
            "an empty path is /"
        );
    }

    #[test]
    fn regex_paths_are_anchored_and_case_insensitive() {
        let r = m("/something(/|$)(.*)", "ImplementationSpecific", true);
        assert!(r.matches("/something") && r.matches("/SOMETHING/new") && r.matches("/something/"));
        assert!(!r.matches("/x/something"));
    }

    #[test]
    fn rewrite_substitutes_captures_as_ingress_nginx_documents() {
        let r = m("/something(/|$)(.*)", "ImplementationSpecific", true);
        assert_eq!(rewrite(&r, "/something", None, "/$2"), "/");
        assert_eq!(rewrite(&r, "/something/", None, "/$2"), "/");
        assert_eq!(rewrite(&r, "/something/new", None, "/$2"), "/new");
        assert_eq!(rewrite(&r, "/something/new", Some("a=1"), "/$2"), "/new?a=1");
    }

    #[test]
    fn a_plain_rewrite_target_replaces_the_whole_path() {
        let r = m("/ip", "ImplementationSpecific", true);
        assert_eq!(rewrite(&r, "/ip", None, "/"), "/");
        assert_eq!(rewrite(&r, "/ip/deeper", None, "/"), "/");
    }

    #[test]
    fn a_regex_literal_prefix_stops_before_syntax_and_optional_characters() {
        assert_eq!(literal_prefix("/Something(/|$)(.*)"), "/something");
        assert_eq!(literal_prefix("/api/v[0-9]+"), "/api/v");
        assert_eq!(literal_prefix("/colou?r"), "/colo");
        assert_eq!(literal_prefix("/ab+c"), "/ab");
        assert_eq!(
            literal_prefix("/a|/b"),
            "",
            "a top-level alternation has no common prefix"
        );
        assert_eq!(literal_prefix("/x(a|b)"), "/x");
        assert_eq!(literal_prefix(".*"), "");
    }

    #[test]
    fn exact_outranks_a_longer_prefix_and_longer_outranks_shorter() {
        let (e, p) = (m("/a", "Exact", false), m("/a/b", "Prefix", false));
        assert!(e.rank("/a") > p.rank("/a/b"));
        assert!(p.rank("/a/b") > m("/a", "Prefix", false).rank("/a"));
    }
}
