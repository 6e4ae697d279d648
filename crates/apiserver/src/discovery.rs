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
        let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
        let mut group_docs = BTreeMap::new();
        let mut resource_lists = BTreeMap::new();
        let mut legacy_groups = Vec::new();
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
            } else {
                groups.push((group.to_string(), vec![version_doc]));
                let gvd = json!({"groupVersion": gv, "version": version});
                let g = json!({"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": [gvd], "preferredVersion": gvd});
                group_docs.insert(group.to_string(), serde_json::to_vec(&g).unwrap_or_default());
                legacy_groups.push(json!({"name": group, "versions": [gvd], "preferredVersion": gvd}));
            }
        }
        let list = |items: Vec<Value>| json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items});
        let core_aggregated = list(vec![json!({"metadata": {"name": ""}, "versions": core_versions})]);
        let groups_aggregated = list(
            groups
                .into_iter()
                .map(|(g, versions)| json!({"metadata": {"name": g}, "versions": versions}))
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
