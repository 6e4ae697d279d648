//! Finding a host's best route without trying every one: a host with thousands of paths
//! (rules without a host from many Ingresses all land in the catch-all) must still answer in
//! well under a microsecond or two.
//!
//! Routes stay in precedence order; the index only narrows which to try. Exact paths are
//! looked up whole. Every other route is filed under a literal its matches must start with
//! (the rule path for Prefix and ImplementationSpecific; for a regex, its leading literal,
//! lowercased since regexes ignore case), and a request tries the routes filed under each of
//! its own prefixes of a filed length, keeping the earliest in precedence that matches.

use std::collections::HashMap;

use super::paths::Matcher;
use super::Route;

/// The index of one host's routes (built from them in precedence order).
#[derive(Debug, Default)]
pub struct PathIndex {
    /// Exact path → the first Exact route for it (Exact routes precede all others).
    exact: HashMap<String, usize>,
    /// Case-sensitive literal → routes, ascending; and the literals' lengths, longest first.
    sensitive: HashMap<String, Vec<usize>>,
    sensitive_lens: Vec<usize>,
    /// Lowercased literal → regex routes, ascending; and the lengths.
    insensitive: HashMap<String, Vec<usize>>,
    insensitive_lens: Vec<usize>,
}

impl PathIndex {
    /// Index `routes`, which are in precedence order.
    pub fn new(routes: &[Route]) -> PathIndex {
        let mut ix = PathIndex::default();
        for (i, r) in routes.iter().enumerate() {
            match &r.matcher {
                Matcher::Exact(p) => {
                    ix.exact.entry(p.clone()).or_insert(i);
                }
                Matcher::Prefix(p) | Matcher::StringPrefix(p) => ix.sensitive.entry(p.clone()).or_default().push(i),
                Matcher::Regex(_) => ix
                    .insensitive
                    .entry(super::paths::literal_prefix(&r.rule_path))
                    .or_default()
                    .push(i),
            }
        }
        let lens = |m: &HashMap<String, Vec<usize>>| {
            let mut l: Vec<usize> = m.keys().map(String::len).collect();
            l.sort_unstable_by(|a, b| b.cmp(a));
            l.dedup();
            l
        };
        ix.sensitive_lens = lens(&ix.sensitive);
        ix.insensitive_lens = lens(&ix.insensitive);
        ix
    }

    /// The position in `routes` of the first route that matches `path`, if any.
    pub fn best(&self, routes: &[Route], path: &str) -> Option<usize> {
        if let Some(&i) = self.exact.get(path) {
            return Some(i);
        }
        let mut best = usize::MAX;
        let mut scan = |map: &HashMap<String, Vec<usize>>, lens: &[usize], key: &str| {
            for &len in lens {
                let Some(prefix) = key.get(..len) else { continue };
                for &i in map.get(prefix).into_iter().flatten() {
                    if i >= best {
                        break;
                    }
                    if routes[i].matcher.matches(path) {
                        best = i;
                        break;
                    }
                }
            }
        };
        scan(&self.sensitive, &self.sensitive_lens, path);
        if !self.insensitive.is_empty() {
            scan(&self.insensitive, &self.insensitive_lens, &path.to_ascii_lowercase());
        }
        (best != usize::MAX).then_some(best)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::routing::{Host, Target};

    fn host(paths: &[(&str, &str, bool)]) -> Host {
        let mut h = Host::new(Route::default_to(Target::NotFound, Arc::default(), None));
        for (p, kind, regex) in paths {
            let mut r = Route::default_to(Target::NotFound, Arc::default(), None);
            r.matcher = Matcher::new(p, kind, *regex).unwrap();
            (r.rule_path, r.path_type, r.is_default) = (p.to_string(), kind.to_string(), false);
            h.routes.push(r);
        }
        h.sort();
        h
    }

    #[test]
    fn the_index_picks_what_trying_every_route_in_order_picks() {
        let h = host(&[
            ("/", "Prefix", false),
            ("/a", "Prefix", false),
            ("/a/b", "Exact", false),
            ("/a/b", "Prefix", false),
            ("/ab", "ImplementationSpecific", false),
            ("/api/v[0-9]+", "ImplementationSpecific", true),
            ("/API(/|$)(.*)", "Prefix", true),
            ("/colou?r", "ImplementationSpecific", true),
            ("/x|/y", "ImplementationSpecific", true),
            ("/static", "ImplementationSpecific", false),
        ]);
        let paths = [
            "/",
            "/a",
            "/a/",
            "/a/b",
            "/a/b/c",
            "/ab",
            "/abc",
            "/api",
            "/API/v2",
            "/api/v",
            "/Api/V9/x",
            "/color",
            "/colour",
            "/COLOR/x",
            "/x",
            "/yz",
            "/static.css",
            "/stat",
            "/b",
            "",
        ];
        for p in paths {
            let linear = h.routes.iter().position(|r| r.matcher.matches(p));
            assert_eq!(h.index.best(&h.routes, p), linear, "{p}");
        }
    }
}
