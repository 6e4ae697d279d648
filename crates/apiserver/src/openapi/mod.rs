//! The OpenAPI v3 documents the API server serves at `/openapi/v3` (the root listing) and
//! `/openapi/v3/<api/v1 | apis/G/V>` (one document per group-version).
//!
//! kubectl needs them for two things (kubectl-wire.md §4):
//!
//! - `apply -f`, `create -f`, `edit` and `apply --server-side` validate server-side only if the
//!   group-version document has a PATCH operation tagged with the object's
//!   `x-kubernetes-group-version-kind` that takes a `fieldValidation` query parameter
//!   (cli-runtime's `query_param_verifier_v3.go`). Without it they fail with
//!   `failed to download openapi`.
//! - `explain` reads real schemas from `components.schemas`: it finds the kind's GVK on the
//!   operations of its list or item path, then the schema whose `x-kubernetes-group-version-kind`
//!   list contains that GVK, and follows `$ref`s, `allOf`, `items` and `additionalProperties`
//!   (kubectl's `pkg/explain/v2/templates/plaintext.tmpl`).
//!
//! The schemas come from k8s-openapi's `schemars` implementations, which already name every
//! definition the way the real server does (`io.k8s.api.core.v1.Service`,
//! `io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`, ...); `schemas.rs` adds what they lack.
//!
//! PATCH operations deliberately carry **no** `requestBody`: client-side apply would then
//! compute its patch from these schemas instead of kubectl's compiled-in Go types, and any gap in
//! them would surface as `warning: error calculating patch from openapi v3 spec`.
//!
//! Everything is built once by [`OpenApiDocuments::build`]; serving is a map lookup.

mod paths;
mod schemas;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The Kubernetes version the documents claim in `info.version`, matching what `/version`
/// reports (kubectl's gcloud dispatcher keys on minor 32).
const KUBERNETES_VERSION: &str = "v1.32.4";

/// One served kind, as the OpenAPI documents need to know it.
#[derive(Clone, Copy)]
pub struct OpenApiKind {
    /// API group, `""` for the core group.
    pub group: &'static str,
    /// API version, e.g. `v1`.
    pub version: &'static str,
    /// Kind, e.g. `Deployment`.
    pub kind: &'static str,
    /// Resource name in URLs, e.g. `deployments`.
    pub plural: &'static str,
    /// Whether objects live in a namespace (paths under `namespaces/{namespace}/`).
    pub namespaced: bool,
    /// Served subresources, e.g. `["status", "scale"]`. `status` is documented with the kind's
    /// own schema, `scale` as `autoscaling/v1 Scale`, `log` as text, anything else as a
    /// `connect` operation (exec, attach, portforward).
    pub subresources: &'static [&'static str],
    /// Produces the kind's schema. Either `<Service as JsonSchema>::json_schema` (the schema
    /// itself, named after the GVK: `io.k8s.api.<package>.<version>.<Kind>` with package `core`
    /// or the group's first label) or `SchemaGenerator::subschema_for::<Service>` (a `$ref`,
    /// whose name is used as is; [`OpenApiKind::of`] does this).
    pub schema: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
}

impl OpenApiKind {
    /// Describes a k8s-openapi resource type: group, version, kind and plural come from its
    /// [`k8s_openapi::Resource`] constants, the schema from its `JsonSchema` implementation.
    pub fn of<K: k8s_openapi::Resource + schemars::JsonSchema>(
        namespaced: bool,
        subresources: &'static [&'static str],
    ) -> Self {
        Self {
            group: K::GROUP,
            version: K::VERSION,
            kind: K::KIND,
            plural: K::URL_PATH_SEGMENT,
            namespaced,
            subresources,
            schema: schemars::SchemaGenerator::subschema_for::<K>,
        }
    }

    /// The path of this kind's group-version below `/openapi/v3/` and in REST URLs:
    /// `api/v1` for the core group, `apis/<group>/<version>` otherwise.
    pub fn group_version_path(&self) -> String {
        group_version_path(self.group, self.version)
    }
}

impl std::fmt::Debug for OpenApiKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenApiKind")
            .field("group", &self.group)
            .field("version", &self.version)
            .field("kind", &self.kind)
            .field("plural", &self.plural)
            .field("namespaced", &self.namespaced)
            .field("subresources", &self.subresources)
            .finish_non_exhaustive()
    }
}

/// `api/v1` for the core group, `apis/<group>/<version>` otherwise.
fn group_version_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// One group-version document, serialized once.
#[derive(Debug)]
struct Document {
    json: Vec<u8>,
    hash: String,
}

/// The root listing and one serialized document per group-version, each with its content hash.
///
/// Built once at startup; the documents never change while the server runs, so the hash in the
/// root's `serverRelativeURL` (which kubectl caches by) is stable for a given set of kinds and
/// changes whenever a document's content does.
#[derive(Debug)]
pub struct OpenApiDocuments {
    root: Value,
    root_json: Vec<u8>,
    documents: BTreeMap<String, Document>,
}

impl OpenApiDocuments {
    /// Builds every group-version document for `kinds` and the root listing them.
    ///
    /// Kinds are grouped by group-version; the order of `kinds` does not matter. A kind listed
    /// twice is documented once.
    pub fn build(kinds: &[OpenApiKind]) -> Self {
        let mut by_gv: BTreeMap<String, Vec<&OpenApiKind>> = BTreeMap::new();
        for kind in kinds {
            let members = by_gv.entry(kind.group_version_path()).or_default();
            if !members
                .iter()
                .any(|k| (k.group, k.version, k.kind) == (kind.group, kind.version, kind.kind))
            {
                members.push(kind);
            }
        }

        let mut documents = BTreeMap::new();
        let mut root_paths = serde_json::Map::new();
        for (gv_path, members) in by_gv {
            let doc = group_version_document(&gv_path, &members);
            let json = serde_json::to_vec(&doc).expect("a serde_json::Value always serializes");
            let hash = content_hash(&json);
            root_paths.insert(
                gv_path.clone(),
                json!({ "serverRelativeURL": format!("/openapi/v3/{gv_path}?hash={hash}") }),
            );
            documents.insert(gv_path, Document { json, hash });
        }
        let root = json!({ "paths": root_paths });
        let root_json = serde_json::to_vec(&root).expect("a serde_json::Value always serializes");
        Self {
            root,
            root_json,
            documents,
        }
    }

    /// The root listing served at `GET /openapi/v3`:
    /// `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=<HEX>"}, ...}}`.
    pub fn root(&self) -> &Value {
        &self.root
    }

    /// [`Self::root`] already serialized, so serving it copies nothing.
    pub fn root_json(&self) -> &[u8] {
        &self.root_json
    }

    /// The document for `GET /openapi/v3/<gv_path>`, where `gv_path` is `api/v1` or
    /// `apis/<group>/<version>` (a leading `/` is tolerated), with its hash.
    ///
    /// The hash is what the root's `?hash=` carries; quote it for an `ETag` (`"<hash>"`), as the
    /// real server does. The `?hash=` query itself needs no checking: there is only one version.
    /// `None` means the group-version is not served (answer 404).
    pub fn document(&self, gv_path: &str) -> Option<(&[u8], &str)> {
        let doc = self.documents.get(gv_path.strip_prefix('/').unwrap_or(gv_path))?;
        Some((&doc.json, &doc.hash))
    }

    /// The served group-version paths (`api/v1`, `apis/apps/v1`, ...), sorted.
    pub fn group_versions(&self) -> impl Iterator<Item = &str> {
        self.documents.keys().map(String::as_str)
    }
}

/// Uppercase hex SHA-256 of a document, the form the real server puts in `?hash=`.
fn content_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02X}")).collect()
}

/// The OpenAPI 3.0 document for one group-version: paths for every member kind and the schemas
/// they reference.
fn group_version_document(gv_path: &str, members: &[&OpenApiKind]) -> Value {
    let components = schemas::Components::build(members);
    let mut paths = serde_json::Map::new();
    for kind in members {
        paths::add_kind_paths(&mut paths, gv_path, kind, &components.names(kind));
    }
    paths.sort_keys();
    let schemas = components.into_schemas();
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": KUBERNETES_VERSION },
        "paths": paths,
        "components": { "schemas": schemas },
    })
}
