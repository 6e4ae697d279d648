//! Discovery: aggregated (`apidiscovery.k8s.io/v2`) and legacy (`APIVersions`, `APIGroupList`,
//! `APIResourceList`), both generated from the registry and built once at start.

use std::collections::BTreeMap;

use http::Response;
use serde_json::{json, Value};

use crate::registry::{Registry, Strategy, Subresource};
use crate::response::{self, Body};

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Every discovery document.
pub struct Discovery {
    core_aggregated: Vec<u8>,
    groups_aggregated: Vec<u8>,
    core_legacy: Vec<u8>,
    groups_legacy: Vec<u8>,
    group_docs: BTreeMap<String, Vec<u8>>,
    resource_lists: BTreeMap<(String, String), Vec<u8>>,
}

fn verbs(_s: &dyn Strategy) -> Vec<&'static str> {
    vec![
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ]
}

fn sub_kind(s: &dyn Strategy, sub: Subresource) -> (String, String, String, Vec<&'static str>) {
    let info = s.info();
    match sub {
        Subresource::Status => (
            info.group.into(),
            info.version.into(),
            info.kind.into(),
            vec!["get", "patch", "update"],
        ),
        Subresource::Scale => (
            "autoscaling".into(),
            "v1".into(),
            "Scale".into(),
            vec!["get", "patch", "update"],
        ),
        Subresource::Log => ("".into(), "v1".into(), "Pod".into(), vec!["get"]),
        Subresource::Exec => ("".into(), "v1".into(), "PodExecOptions".into(), vec!["create", "get"]),
        Subresource::PortForward => (
            "".into(),
            "v1".into(),
            "PodPortForwardOptions".into(),
            vec!["create", "get"],
        ),
        Subresource::Attach => ("".into(), "v1".into(), "PodAttachOptions".into(), vec!["create", "get"]),
        Subresource::Binding => ("".into(), "v1".into(), "Binding".into(), vec!["create"]),
        Subresource::Eviction => ("policy".into(), "v1".into(), "Eviction".into(), vec!["create"]),
        Subresource::Finalize => ("".into(), "v1".into(), "Namespace".into(), vec!["update"]),
    }
}

fn aggregated_resource(s: &dyn Strategy) -> Value {
    let info = s.info();
    let subresources: Vec<Value> = info
        .subresources
        .iter()
        .map(|sub| {
            let (g, v, k, verbs) = sub_kind(s, *sub);
            json!({"subresource": sub.name(), "responseKind": {"group": g, "version": v, "kind": k}, "verbs": verbs})
        })
        .collect();
    let mut r = json!({
        "resource": info.plural,
        "responseKind": {"group": info.group, "version": info.version, "kind": info.kind},
        "scope": if info.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": info.singular,
        "verbs": verbs(s),
    });
    if !info.short_names.is_empty() {
        r["shortNames"] = json!(info.short_names);
    }
    if !info.categories.is_empty() {
        r["categories"] = json!(info.categories);
    }
    if !subresources.is_empty() {
        r["subresources"] = json!(subresources);
    }
    r
}

fn legacy_resources(strategies: &[&dyn Strategy], gv: &str) -> Value {
    let mut out = Vec::new();
    for s in strategies {
        let info = s.info();
        let mut r = json!({
            "name": info.plural, "singularName": info.singular, "namespaced": info.namespaced,
            "kind": info.kind, "verbs": verbs(*s),
        });
        if !info.short_names.is_empty() {
            r["shortNames"] = json!(info.short_names);
        }
        if !info.categories.is_empty() {
            r["categories"] = json!(info.categories);
        }
        out.push(r);
        for sub in info.subresources {
            let (g, v, k, verbs) = sub_kind(*s, *sub);
            let mut r = json!({"name": format!("{}/{}", info.plural, sub.name()), "singularName": "", "namespaced": info.namespaced, "kind": k, "verbs": verbs});
            if g != info.group || v != info.version {
                r["group"] = json!(g);
                r["version"] = json!(v);
            }
            out.push(r);
        }
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out})
}

impl Discovery {
    /// Build every document from the registry.
    pub fn new(registry: &Registry) -> Self {
        let mut core_versions = Vec::new();
        // Per group, its versions in preference order (the registry lists preferred first).
        let mut groups: Vec<(String, Vec<Value>, Vec<Value>)> = Vec::new();
        let mut resource_lists = BTreeMap::new();
        for (group, version) in registry.group_versions() {
            let members: Vec<&dyn Strategy> = registry
                .all()
                .iter()
                .map(|s| s.as_ref())
                .filter(|s| s.info().group == group && s.info().version == version)
                .collect();
            let resources: Vec<Value> = members.iter().map(|s| aggregated_resource(*s)).collect();
            let version_doc = json!({"version": version, "resources": resources, "freshness": "Current"});
            let gv = if group.is_empty() {
                version.to_string()
            } else {
                format!("{group}/{version}")
            };
            resource_lists.insert(
                (group.to_string(), version.to_string()),
                serde_json::to_vec(&legacy_resources(&members, &gv)).unwrap_or_default(),
            );
            if group.is_empty() {
                core_versions.push(version_doc);
                continue;
            }
            let gvd = json!({"groupVersion": gv, "version": version});
            match groups.iter_mut().find(|(g, _, _)| g == group) {
                Some((_, docs, gvds)) => {
                    docs.push(version_doc);
                    gvds.push(gvd);
                }
                None => groups.push((group.to_string(), vec![version_doc], vec![gvd])),
            }
        }
        let mut group_docs = BTreeMap::new();
        let mut legacy_groups = Vec::new();
        for (group, _, gvds) in &groups {
            let preferred = gvds[0].clone();
            let g = json!({"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gvds, "preferredVersion": preferred});
            group_docs.insert(group.clone(), serde_json::to_vec(&g).unwrap_or_default());
            legacy_groups.push(json!({"name": group, "versions": gvds, "preferredVersion": preferred}));
        }
        let list = |items: Vec<Value>| json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items});
        let core_aggregated = list(vec![json!({"metadata": {"name": ""}, "versions": core_versions})]);
        let groups_aggregated = list(
            groups
                .into_iter()
                .map(|(g, versions, _)| json!({"metadata": {"name": g}, "versions": versions}))
                .collect(),
        );
        let core_legacy = json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]});
        let groups_legacy = json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": legacy_groups});
        Discovery {
            core_aggregated: serde_json::to_vec(&core_aggregated).unwrap_or_default(),
            groups_aggregated: serde_json::to_vec(&groups_aggregated).unwrap_or_default(),
            core_legacy: serde_json::to_vec(&core_legacy).unwrap_or_default(),
            groups_legacy: serde_json::to_vec(&groups_legacy).unwrap_or_default(),
            group_docs,
            resource_lists,
        }
    }

    /// `/api`.
    pub fn core(&self, accept: &str) -> Response<Body> {
        if wants_aggregated(accept) {
            response::bytes(200, AGGREGATED, self.core_aggregated.clone())
        } else {
            response::bytes(200, "application/json", self.core_legacy.clone())
        }
    }

    /// `/apis`.
    pub fn groups(&self, accept: &str) -> Response<Body> {
        if wants_aggregated(accept) {
            response::bytes(200, AGGREGATED, self.groups_aggregated.clone())
        } else {
            response::bytes(200, "application/json", self.groups_legacy.clone())
        }
    }

    /// `/apis/G`.
    pub fn group(&self, group: &str) -> Option<Response<Body>> {
        self.group_docs
            .get(group)
            .map(|d| response::bytes(200, "application/json", d.clone()))
    }

    /// `/api/v1`, `/apis/G/V`.
    pub fn resources(&self, group: &str, version: &str) -> Option<Response<Body>> {
        self.resource_lists
            .get(&(group.to_string(), version.to_string()))
            .map(|d| response::bytes(200, "application/json", d.clone()))
    }
}

/// Whether the client asked for aggregated discovery v2 before the plain JSON forms.
fn wants_aggregated(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=APIGroupDiscoveryList") && first.contains("v=v2"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::ServiceSettings;
    use http_body_util::BodyExt;

    async fn body(resp: Response<Body>) -> Value {
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        serde_json::from_slice(&bytes).expect("json")
    }

    #[tokio::test]
    async fn a_group_served_in_two_versions_lists_both_with_the_newest_preferred() {
        let d = Discovery::new(&Registry::new(ServiceSettings::default()));
        let g = body(d.group("networking.k8s.io").expect("served")).await;
        assert_eq!(g["preferredVersion"]["version"], "v1");
        let versions: Vec<&str> = g["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_str().unwrap())
            .collect();
        assert_eq!(versions, ["v1", "v1beta1"]);
        let beta = body(d.resources("networking.k8s.io", "v1beta1").expect("served")).await;
        let names: Vec<&str> = beta["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["ingresses", "ingresses/status"]);
    }

    #[tokio::test]
    async fn extensions_comes_after_networking_so_ingress_resolves_to_v1() {
        let d = Discovery::new(&Registry::new(ServiceSettings::default()));
        let all = body(d.groups(AGGREGATED)).await;
        let names: Vec<&str> = all["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["metadata"]["name"].as_str().unwrap())
            .collect();
        let at = |n: &str| names.iter().position(|g| *g == n).expect(n);
        assert!(at("networking.k8s.io") < at("extensions"), "{names:?}");
        assert_eq!(names.iter().filter(|g| **g == "networking.k8s.io").count(), 1);
    }
}
