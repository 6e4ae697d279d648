//! `components.schemas` for one group-version document: k8s-openapi's schemars output under
//! OpenAPI 3.0 settings, plus what the real server's schemas carry and k8s-openapi's lack.
//!
//! k8s-openapi already names every definition like the real server (`io.k8s.api.core.v1.Service`,
//! `io.k8s.apimachinery.pkg.util.intstr.IntOrString`) and schemars' OpenAPI 3.0 settings put them
//! under `#/components/schemas/`, turning `{"$ref", "description"}` into
//! `{"allOf": [{"$ref"}], "description"}` as kube-openapi does. What we add:
//!
//! - `x-kubernetes-group-version-kind` on each kind, its list, `autoscaling/v1 Scale` and
//!   `Status`. `kubectl explain` finds the schema to print by this list.
//! - the `<Kind>List` schemas, which k8s-openapi has no schemars impl for.
//! - `metadata` dropped from `required`: k8s-openapi requires it because the Rust field is not an
//!   `Option`, but the server defaults it and kubectl would print `-required-`.
//! - the real server's `oneOf` alternatives for `IntOrString` and `Quantity`.
//! - `x-kubernetes-patch-merge-key` / `x-kubernetes-patch-strategy` for the lists kubectl's
//!   strategic merge patches touch (kubectl-wire.md §8), as informational metadata.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ListMeta, Status, WatchEvent};
use schemars::generate::SchemaSettings;
use schemars::SchemaGenerator;
use serde_json::{json, Map, Value};

use super::OpenApiKind;

/// Where schemars (with OpenAPI 3.0 settings) and the real server put definitions.
pub(super) const REF_PREFIX: &str = "#/components/schemas/";
/// `metav1.Status`, the body of failed requests and some deletes.
pub(super) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
/// `metav1.DeleteOptions`, the optional DELETE body.
pub(super) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
/// `metav1.WatchEvent`, one frame of a watch stream.
pub(super) const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

/// The schema names one kind's operations refer to.
#[derive(Debug, Clone)]
pub(super) struct KindSchemas {
    /// The kind itself, e.g. `io.k8s.api.core.v1.Service`.
    pub kind: String,
    /// Its list, e.g. `io.k8s.api.core.v1.ServiceList`.
    pub list: String,
    /// `io.k8s.api.autoscaling.v1.Scale` if the kind has a `scale` subresource.
    pub scale: Option<String>,
}

/// The schemas of one group-version document, keyed by definition name.
pub(super) struct Components {
    schemas: Map<String, Value>,
    names: BTreeMap<(&'static str, &'static str), KindSchemas>,
}

impl Components {
    /// Generates the schemas of `members` (all of one group-version) and of everything they
    /// reference, with the additions listed in the module docs.
    pub(super) fn build(members: &[&OpenApiKind]) -> Self {
        let mut generator = SchemaGenerator::new(SchemaSettings::openapi3());
        let mut inline = Vec::new();
        let mut gvks: Vec<(String, Value)> = Vec::new();
        let mut names = BTreeMap::new();

        for kind in members {
            let schema = (kind.schema)(&mut generator);
            let name = match schema
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix(REF_PREFIX))
            {
                Some(name) => name.to_owned(),
                None => {
                    let name = kind_schema_name(kind.group, kind.version, kind.kind);
                    inline.push((name.clone(), schema.to_value()));
                    name
                }
            };
            let list = format!("{name}List");
            inline.push((list.clone(), list_schema(kind, &name)));
            gvks.push((name.clone(), gvk(kind.group, kind.version, kind.kind)));
            gvks.push((
                list.clone(),
                gvk(kind.group, kind.version, &format!("{}List", kind.kind)),
            ));

            let scale = kind.subresources.contains(&"scale").then(|| {
                let name = ref_name(&generator.subschema_for::<Scale>());
                gvks.push((name.clone(), gvk("autoscaling", "v1", "Scale")));
                name
            });
            names.insert(
                (kind.kind, kind.group),
                KindSchemas {
                    kind: name,
                    list,
                    scale,
                },
            );
        }
        for referenced in [
            generator.subschema_for::<Status>(),
            generator.subschema_for::<DeleteOptions>(),
            generator.subschema_for::<ListMeta>(),
            generator.subschema_for::<WatchEvent<Value>>(),
        ] {
            debug_assert!(
                referenced.get("$ref").is_some(),
                "meta types are referenced, not inlined"
            );
        }
        gvks.push((STATUS.to_owned(), gvk("", "v1", "Status")));

        // Inserting before `take_definitions(true)` runs schemars' OpenAPI transforms over the
        // kinds' own schemas too.
        generator.definitions_mut().extend(inline);
        let mut schemas = generator.take_definitions(true);
        for (name, gvk) in gvks {
            if let Some(Value::Object(schema)) = schemas.get_mut(&name) {
                schema.insert("x-kubernetes-group-version-kind".into(), Value::Array(vec![gvk]));
            }
        }
        for schema in schemas.values_mut() {
            unrequire_metadata(schema);
        }
        add_int_or_string_alternatives(&mut schemas);
        add_patch_strategies(&mut schemas);
        schemas.sort_keys();
        Self { schemas, names }
    }

    /// The schema names for `kind`, which must be one of the members this was built from.
    pub(super) fn names(&self, kind: &OpenApiKind) -> KindSchemas {
        self.names[&(kind.kind, kind.group)].clone()
    }

    /// The schemas, sorted by name, for `components.schemas`.
    pub(super) fn into_schemas(self) -> Map<String, Value> {
        self.schemas
    }
}

/// The definition name of a built-in kind: `io.k8s.api.<package>.<version>.<Kind>`, where the
/// package is `core` for the core group and the group's first label otherwise
/// (`networking.k8s.io` → `networking`), as Kubernetes names its API packages.
pub(super) fn kind_schema_name(group: &str, version: &str, kind: &str) -> String {
    let package = if group.is_empty() {
        "core"
    } else {
        group.split('.').next().unwrap_or(group)
    };
    format!("io.k8s.api.{package}.{version}.{kind}")
}

/// The name a `{"$ref": "#/components/schemas/NAME"}` points to.
fn ref_name(schema: &schemars::Schema) -> String {
    let reference = schema.get("$ref").and_then(Value::as_str).unwrap_or_default();
    reference.strip_prefix(REF_PREFIX).unwrap_or(reference).to_owned()
}

/// One entry of an `x-kubernetes-group-version-kind` list (all three keys always present:
/// kubectl compares whole maps).
pub(super) fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "kind": kind, "version": version })
}

/// The `<Kind>List` schema: `apiVersion`, `kind`, `metadata` (ListMeta) and `items`.
fn list_schema(kind: &OpenApiKind, item_schema: &str) -> Value {
    json!({
        "description": format!("{}List is a list of {} objects.", kind.kind, kind.kind),
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "APIVersion names the versioned schema of this representation of an object.",
                "type": "string",
            },
            "items": {
                "description": format!("The {} objects in the list.", kind.kind),
                "type": "array",
                "items": { "$ref": format!("{REF_PREFIX}{item_schema}") },
            },
            "kind": {
                "description": "Kind names the REST resource this object represents.",
                "type": "string",
            },
            "metadata": {
                "description": "Standard list metadata: resourceVersion and continue token.",
                "allOf": [{ "$ref": format!("{REF_PREFIX}{LIST_META}") }],
            },
        },
        "required": ["items"],
    })
}

/// Removes `metadata` from a schema's `required` list (see the module docs).
fn unrequire_metadata(schema: &mut Value) {
    let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) else {
        return;
    };
    required.retain(|field| field != "metadata");
    if required.is_empty() {
        schema.as_object_mut().map(|o| o.remove("required"));
    }
}

/// Gives `IntOrString` and `Quantity` the `oneOf` alternatives the real server documents (they
/// also keep `x-kubernetes-int-or-string`). Without a `type`, `kubectl explain` shows the
/// definition's short name (`<IntOrString>`), as it does against a real server.
fn add_int_or_string_alternatives(schemas: &mut Map<String, Value>) {
    if let Some(Value::Object(s)) = schemas.get_mut(INT_OR_STRING) {
        s.insert("format".into(), "int-or-string".into());
        s.insert("oneOf".into(), json!([{ "type": "integer" }, { "type": "string" }]));
    }
    if let Some(Value::Object(s)) = schemas.get_mut(QUANTITY) {
        s.insert("oneOf".into(), json!([{ "type": "string" }, { "type": "number" }]));
    }
}

/// (definition, list property, merge key, strategy): the `patchMergeKey`/`patchStrategy` struct
/// tags of the Kubernetes Go types for the lists kubectl's strategic merge patches touch.
const PATCH_STRATEGIES: &[(&str, &str, Option<&str>, &str)] = &[
    ("io.k8s.api.core.v1.PodSpec", "containers", Some("name"), "merge"),
    ("io.k8s.api.core.v1.PodSpec", "initContainers", Some("name"), "merge"),
    (
        "io.k8s.api.core.v1.PodSpec",
        "ephemeralContainers",
        Some("name"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "volumes",
        Some("name"),
        "merge,retainKeys",
    ),
    ("io.k8s.api.core.v1.PodSpec", "imagePullSecrets", Some("name"), "merge"),
    ("io.k8s.api.core.v1.PodSpec", "hostAliases", Some("ip"), "merge"),
    ("io.k8s.api.core.v1.PodSpec", "schedulingGates", Some("name"), "merge"),
    (
        "io.k8s.api.core.v1.PodSpec",
        "resourceClaims",
        Some("name"),
        "merge,retainKeys",
    ),
    ("io.k8s.api.core.v1.Container", "ports", Some("containerPort"), "merge"),
    ("io.k8s.api.core.v1.Container", "env", Some("name"), "merge"),
    (
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        Some("mountPath"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        Some("devicePath"),
        "merge",
    ),
    ("io.k8s.api.core.v1.EphemeralContainer", "env", Some("name"), "merge"),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeMounts",
        Some("mountPath"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeDevices",
        Some("devicePath"),
        "merge",
    ),
    ("io.k8s.api.core.v1.PodStatus", "conditions", Some("type"), "merge"),
    ("io.k8s.api.core.v1.PodStatus", "podIPs", Some("ip"), "merge"),
    ("io.k8s.api.core.v1.PodStatus", "hostIPs", Some("ip"), "merge"),
    ("io.k8s.api.core.v1.ServiceSpec", "ports", Some("port"), "merge"),
    ("io.k8s.api.core.v1.ServiceStatus", "conditions", Some("type"), "merge"),
    ("io.k8s.api.core.v1.NodeSpec", "podCIDRs", None, "merge"),
    ("io.k8s.api.core.v1.NodeStatus", "conditions", Some("type"), "merge"),
    ("io.k8s.api.core.v1.NodeStatus", "addresses", Some("type"), "merge"),
    (
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        Some("type"),
        "merge",
    ),
    ("io.k8s.api.apps.v1.DeploymentSpec", "strategy", None, "retainKeys"),
    (
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        Some("type"),
        "merge",
    ),
    (
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        "conditions",
        Some("type"),
        "merge",
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
        None,
        "merge",
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        Some("uid"),
        "merge",
    ),
];

/// Adds the [`PATCH_STRATEGIES`] extensions to the properties present in this document.
fn add_patch_strategies(schemas: &mut Map<String, Value>) {
    for (definition, property, key, strategy) in PATCH_STRATEGIES {
        let Some(Value::Object(prop)) = schemas
            .get_mut(*definition)
            .and_then(|d| d.pointer_mut(&format!("/properties/{property}")))
        else {
            continue;
        };
        if let Some(key) = key {
            prop.insert("x-kubernetes-patch-merge-key".into(), (*key).into());
        }
        prop.insert("x-kubernetes-patch-strategy".into(), (*strategy).into());
    }
}
