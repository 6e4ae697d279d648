//! Tests read the documents the way kubectl does: the root's `serverRelativeURL`s, the
//! field-validation check of cli-runtime's `query_param_verifier_v3.go`, and the schema walk of
//! `kubectl explain`'s `plaintext.tmpl`.

use std::collections::BTreeSet;

use k8s_openapi::api::{apps, coordination, core, discovery, events, networking};
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use super::schemas::REF_PREFIX;
use super::{OpenApiDocuments, OpenApiKind};

/// The kinds podway serves, with the subresources it serves for them.
fn served_kinds() -> Vec<OpenApiKind> {
    vec![
        OpenApiKind::of::<core::v1::Namespace>(false, &["status"]),
        OpenApiKind::of::<core::v1::Node>(false, &["status"]),
        OpenApiKind::of::<core::v1::Pod>(true, &["status", "log", "exec", "portforward"]),
        OpenApiKind::of::<core::v1::Service>(true, &["status"]),
        OpenApiKind::of::<core::v1::Endpoints>(true, &[]),
        OpenApiKind::of::<core::v1::ConfigMap>(true, &[]),
        OpenApiKind::of::<core::v1::Secret>(true, &[]),
        OpenApiKind::of::<core::v1::ServiceAccount>(true, &[]),
        OpenApiKind::of::<core::v1::Event>(true, &[]),
        OpenApiKind::of::<apps::v1::Deployment>(true, &["status", "scale"]),
        OpenApiKind::of::<apps::v1::ReplicaSet>(true, &["status"]),
        OpenApiKind::of::<discovery::v1::EndpointSlice>(true, &[]),
        OpenApiKind::of::<networking::v1::Ingress>(true, &["status"]),
        OpenApiKind::of::<networking::v1::IngressClass>(false, &[]),
        OpenApiKind::of::<events::v1::Event>(true, &[]),
        OpenApiKind::of::<coordination::v1::Lease>(true, &[]),
    ]
}

fn parsed(docs: &OpenApiDocuments, gv_path: &str) -> Value {
    let (bytes, _) = docs.document(gv_path).unwrap_or_else(|| panic!("{gv_path} is served"));
    serde_json::from_slice(bytes).expect("documents are JSON")
}

fn schemas(doc: &Value) -> &Map<String, Value> {
    doc["components"]["schemas"]
        .as_object()
        .expect("components.schemas is an object")
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "version": version, "kind": kind })
}

/// cli-runtime's `supportsQueryParamV3`: the first PATCH operation tagged with `gvk` decides;
/// it must list `fieldValidation` as a query parameter. Checks every such operation, since Go
/// iterates paths in random order.
fn supports_field_validation(doc: &Value, gvk: &Value) -> Result<(), String> {
    let mut found = false;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let Some(patch) = item.get("patch") else { continue };
        if patch.get("x-kubernetes-group-version-kind") != Some(gvk) {
            continue;
        }
        found = true;
        let params = patch["parameters"].as_array().cloned().unwrap_or_default();
        if !params
            .iter()
            .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
        {
            return Err(format!("PATCH {path} lacks the fieldValidation query parameter"));
        }
    }
    found
        .then_some(())
        .ok_or_else(|| format!("Path not found for GVK ({gvk}) in OpenAPI V3 doc"))
}

/// `kubectl explain`'s `resolveRef`: follows `#/components/schemas/NAME`, or returns the schema.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => &schemas(doc)[reference.strip_prefix(REF_PREFIX).expect("local ref")],
        None => schema,
    }
}

/// `kubectl explain`'s "output" walk down a field path: direct properties, then array items,
/// then `allOf` alternatives.
fn explain_field<'a>(doc: &'a Value, schema: &'a Value, field: &str) -> Option<&'a Value> {
    let resolved = resolve(doc, schema);
    if let Some(sub) = resolved.get("properties").and_then(|p| p.get(field)) {
        return Some(sub);
    }
    if let Some(items) = resolved.get("items") {
        return explain_field(doc, items, field);
    }
    resolved
        .get("allOf")?
        .as_array()?
        .iter()
        .find_map(|alt| explain_field(doc, alt, field))
}

/// `kubectl explain`: the GVK from an operation on the resource's paths, then the schema whose
/// GVK list contains it.
fn explain_root<'a>(doc: &'a Value, prefix: &str, plural: &str) -> &'a Value {
    let candidates = [
        format!("{prefix}/{plural}"),
        format!("{prefix}/{plural}/{{name}}"),
        format!("{prefix}/namespaces/{{namespace}}/{plural}"),
        format!("{prefix}/namespaces/{{namespace}}/{plural}/{{name}}"),
    ];
    let gvk = candidates
        .iter()
        .filter_map(|path| doc["paths"].get(path))
        .flat_map(|item| ["get", "post", "put", "patch", "delete"].map(|m| item.get(m)))
        .flatten()
        .find_map(|op| op.get("x-kubernetes-group-version-kind"))
        .unwrap_or_else(|| panic!("GVR {prefix}/{plural} not found in OpenAPI schema"));
    schemas(doc)
        .values()
        .find(|s| {
            s["x-kubernetes-group-version-kind"]
                .as_array()
                .is_some_and(|list| list.contains(gvk))
        })
        .unwrap_or_else(|| panic!("GVK {gvk} not found in OpenAPI schema"))
}

fn refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                out.insert(reference.clone());
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn root_lists_every_group_version_with_its_documents_hash() {
    let docs = OpenApiDocuments::build(&served_kinds());
    let paths = docs.root()["paths"].as_object().expect("root has paths");
    let listed: Vec<&str> = paths.keys().map(String::as_str).collect();
    assert_eq!(
        listed,
        [
            "api/v1",
            "apis/apps/v1",
            "apis/coordination.k8s.io/v1",
            "apis/discovery.k8s.io/v1",
            "apis/events.k8s.io/v1",
            "apis/networking.k8s.io/v1",
        ]
    );
    for (gv, entry) in paths {
        let (_, hash) = docs.document(gv).expect("every listed group-version is served");
        assert_eq!(entry["serverRelativeURL"], format!("/openapi/v3/{gv}?hash={hash}"));
        assert_eq!(hash.len(), 64);
    }
    assert_eq!(serde_json::from_slice::<Value>(docs.root_json()).unwrap(), *docs.root());
}

#[test]
fn hash_changes_only_for_the_group_version_whose_kinds_change() {
    let all = OpenApiDocuments::build(&served_kinds());
    let without_ingress: Vec<OpenApiKind> = served_kinds().into_iter().filter(|k| k.kind != "Ingress").collect();
    let fewer = OpenApiDocuments::build(&without_ingress);
    let hash = |docs: &OpenApiDocuments, gv: &str| docs.document(gv).unwrap().1.to_owned();
    assert_ne!(
        hash(&all, "apis/networking.k8s.io/v1"),
        hash(&fewer, "apis/networking.k8s.io/v1")
    );
    assert_ne!(all.root(), fewer.root());
    assert_eq!(hash(&all, "api/v1"), hash(&fewer, "api/v1"));
    // And rebuilding the same kinds reproduces the same hashes: kubectl's cache stays valid.
    assert_eq!(all.root(), OpenApiDocuments::build(&served_kinds()).root());
}

#[test]
fn apps_v1_patch_operation_carries_deployment_gvk_and_field_validation() {
    let docs = OpenApiDocuments::build(&served_kinds());
    let apps = parsed(&docs, "apis/apps/v1");
    let item = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(item["x-kubernetes-group-version-kind"], gvk("apps", "v1", "Deployment"));
    assert_eq!(item["x-kubernetes-action"], "patch");
    let params = item["parameters"].as_array().unwrap();
    assert!(params
        .iter()
        .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"));
    assert_eq!(
        supports_field_validation(&apps, &gvk("apps", "v1", "Deployment")),
        Ok(())
    );
}

#[test]
fn every_served_kind_passes_kubectls_server_side_validation_check() {
    let docs = OpenApiDocuments::build(&served_kinds());
    for kind in served_kinds() {
        let doc = parsed(&docs, &kind.group_version_path());
        let result = supports_field_validation(&doc, &gvk(kind.group, kind.version, kind.kind));
        assert_eq!(result, Ok(()), "{kind:?}");
    }
}

#[test]
fn patch_operations_have_no_request_body_so_client_side_apply_uses_its_builtin_types() {
    let docs = OpenApiDocuments::build(&served_kinds());
    for gv in docs.group_versions() {
        let doc = parsed(&docs, gv);
        for (path, item) in doc["paths"].as_object().unwrap() {
            if let Some(patch) = item.get("patch") {
                assert!(patch.get("requestBody").is_none(), "PATCH {path} has a requestBody");
            }
        }
    }
}

#[test]
fn deployment_scale_is_documented_as_autoscaling_v1_scale() {
    let docs = OpenApiDocuments::build(&served_kinds());
    let apps = parsed(&docs, "apis/apps/v1");
    let scale = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
    for method in ["get", "put", "patch"] {
        assert_eq!(
            scale[method]["x-kubernetes-group-version-kind"],
            gvk("autoscaling", "v1", "Scale"),
            "{method}"
        );
    }
    let schema = &schemas(&apps)["io.k8s.api.autoscaling.v1.Scale"];
    assert_eq!(
        schema["x-kubernetes-group-version-kind"],
        json!([gvk("autoscaling", "v1", "Scale")])
    );
    assert_eq!(
        supports_field_validation(&apps, &gvk("autoscaling", "v1", "Scale")),
        Ok(())
    );
}

#[test]
fn service_port_schema_has_a_described_node_port() {
    let docs = OpenApiDocuments::build(&served_kinds());
    let core = parsed(&docs, "api/v1");
    let port = &schemas(&core)["io.k8s.api.core.v1.ServicePort"];
    assert!(port["description"].as_str().is_some_and(|d| d.contains("port")));
    let node_port = &port["properties"]["nodePort"];
    assert_eq!(node_port["type"], "integer");
    assert!(node_port["description"]
        .as_str()
        .is_some_and(|d| d.contains("NodePort")));
    assert_eq!(port["required"], json!(["port"]));
}

#[test]
fn explain_walk_reaches_service_spec_ports_node_port() {
    let docs = OpenApiDocuments::build(&served_kinds());
    let core = parsed(&docs, "api/v1");
    let service = explain_root(&core, "/api/v1", "services");
    assert!(service["description"].as_str().unwrap().starts_with("Service is"));
    let spec = explain_field(&core, service, "spec").expect("Service has spec");
    assert_eq!(
        spec["allOf"],
        json!([{ "$ref": "#/components/schemas/io.k8s.api.core.v1.ServiceSpec" }])
    );
    let ports = explain_field(&core, spec, "ports").expect("ServiceSpec has ports");
    assert_eq!(ports["type"], "array");
    assert_eq!(ports["x-kubernetes-patch-merge-key"], "port");
    assert!(explain_field(&core, ports, "nodePort").is_some_and(|p| p["format"] == "int32"));
    // kubectl prints `-required-` from `required`; a real server does not require metadata.
    assert!(service.get("required").is_none());
}

#[test]
fn explain_finds_every_served_kind_by_its_gvk() {
    let docs = OpenApiDocuments::build(&served_kinds());
    for kind in served_kinds() {
        let gv = kind.group_version_path();
        let doc = parsed(&docs, &gv);
        let schema = explain_root(&doc, &format!("/{gv}"), kind.plural);
        let kind_field = explain_field(&doc, schema, "kind").expect("every kind has a kind field");
        assert_eq!(kind_field["type"], "string", "{kind:?}");
        assert!(explain_field(&doc, schema, "metadata").is_some(), "{kind:?}");
    }
}

#[test]
fn no_ref_points_to_a_missing_schema_in_any_document() {
    let docs = OpenApiDocuments::build(&served_kinds());
    for gv in docs.group_versions() {
        let doc = parsed(&docs, gv);
        let mut found = BTreeSet::new();
        refs(&doc, &mut found);
        assert!(found.len() > 10, "{gv} references its schemas");
        let defined = schemas(&doc);
        let dangling: Vec<&String> = found
            .iter()
            .filter(|r| !r.strip_prefix(REF_PREFIX).is_some_and(|n| defined.contains_key(n)))
            .collect();
        assert!(dangling.is_empty(), "{gv}: {dangling:?}");
    }
}

#[test]
fn definitions_use_kubernetes_names() {
    let docs = OpenApiDocuments::build(&served_kinds());
    for gv in docs.group_versions() {
        let doc = parsed(&docs, gv);
        for name in schemas(&doc).keys() {
            assert!(
                name.starts_with("io.k8s.api.") || name.starts_with("io.k8s.apimachinery.pkg."),
                "{gv}: {name}"
            );
        }
    }
    let core = parsed(&docs, "api/v1");
    let defined = schemas(&core);
    for name in [
        "io.k8s.api.core.v1.Service",
        "io.k8s.api.core.v1.ServiceList",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
        "io.k8s.apimachinery.pkg.api.resource.Quantity",
    ] {
        assert!(defined.contains_key(name), "{name}");
    }
    // Without a `type`, explain names the definition: `targetPort <IntOrString>`.
    assert!(defined["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
        .get("type")
        .is_none());
}

#[test]
fn list_kinds_are_tagged_and_hold_items_of_the_kind() {
    let docs = OpenApiDocuments::build(&served_kinds());
    let apps = parsed(&docs, "apis/apps/v1");
    let list = &schemas(&apps)["io.k8s.api.apps.v1.DeploymentList"];
    assert_eq!(
        list["x-kubernetes-group-version-kind"],
        json!([gvk("apps", "v1", "DeploymentList")])
    );
    assert_eq!(
        list["properties"]["items"]["items"]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.Deployment"
    );
    let get = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["get"];
    assert_eq!(
        get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        list_ref("apps", "Deployment")
    );
}

fn list_ref(package: &str, kind: &str) -> String {
    format!("#/components/schemas/io.k8s.api.{package}.v1.{kind}List")
}

#[test]
fn an_inline_schema_function_is_named_after_its_gvk() {
    let inline = OpenApiKind {
        group: "networking.k8s.io",
        version: "v1",
        kind: "Ingress",
        plural: "ingresses",
        namespaced: true,
        subresources: &[],
        schema: <networking::v1::Ingress as JsonSchema>::json_schema,
    };
    let docs = OpenApiDocuments::build(&[inline]);
    let doc = parsed(&docs, "apis/networking.k8s.io/v1");
    let ingress = &schemas(&doc)["io.k8s.api.networking.v1.Ingress"];
    assert_eq!(
        ingress["x-kubernetes-group-version-kind"],
        json!([gvk("networking.k8s.io", "v1", "Ingress")])
    );
    assert_eq!(
        ingress["properties"]["spec"]["allOf"][0]["$ref"], "#/components/schemas/io.k8s.api.networking.v1.IngressSpec",
        "schemars' OpenAPI transforms ran on the inline schema too"
    );
    // Both ways of naming the schema give the same document.
    let by_ref = OpenApiDocuments::build(&[OpenApiKind::of::<networking::v1::Ingress>(true, &[])]);
    assert_eq!(docs.root(), by_ref.root());
}

#[test]
fn core_and_events_group_events_are_distinct_schemas() {
    let docs = OpenApiDocuments::build(&served_kinds());
    let events = parsed(&docs, "apis/events.k8s.io/v1");
    let schema = explain_root(&events, "/apis/events.k8s.io/v1", "events");
    assert_eq!(
        schema["x-kubernetes-group-version-kind"],
        json!([gvk("events.k8s.io", "v1", "Event")])
    );
    assert!(schemas(&events).contains_key("io.k8s.api.events.v1.Event"));
    assert!(!schemas(&events).contains_key("io.k8s.api.core.v1.Event"));
}

#[test]
fn documents_are_built_once_and_served_by_reference() {
    let docs = OpenApiDocuments::build(&served_kinds());
    let (first, first_hash) = docs.document("api/v1").unwrap();
    let (second, second_hash) = docs.document("/api/v1").unwrap();
    assert!(std::ptr::eq(first, second), "the same bytes, not a rebuild");
    assert!(std::ptr::eq(first_hash, second_hash));
    assert!(docs.document("apis/batch/v1").is_none());
    assert!(docs.document("apis/apps").is_none());
}

#[test]
fn cluster_scoped_kinds_have_no_namespace_paths() {
    let docs = OpenApiDocuments::build(&served_kinds());
    let core = parsed(&docs, "api/v1");
    let paths = core["paths"].as_object().unwrap();
    assert!(paths.contains_key("/api/v1/nodes/{name}"));
    assert!(paths.contains_key("/api/v1/namespaces/{name}/status"));
    assert!(!paths.keys().any(|p| p.contains("{namespace}/nodes")));
    let item = &paths["/api/v1/namespaces/{namespace}/pods/{name}"];
    let names: Vec<&str> = item["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["name", "namespace", "pretty"]);
    let ids: BTreeSet<&str> = paths
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op.get("operationId").and_then(Value::as_str))
        .collect();
    assert!(ids.contains("patchCoreV1NamespacedService"));
    assert!(ids.contains("listCoreV1ServiceForAllNamespaces"));
    assert!(ids.contains("readCoreV1Node"));
}
