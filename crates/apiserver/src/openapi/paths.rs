//! `paths` for one group-version document: list, create, read, replace, patch and delete per
//! kind, its subresources, and the all-namespaces list, shaped like the real server's.
//!
//! Two readers matter. cli-runtime's `query_param_verifier_v3` looks at the `patch` operations:
//! one tagged with the object's GVK must list a `fieldValidation` query parameter, so every
//! `patch` (the status and scale ones too) carries it. `kubectl explain` reads the GVK from an
//! operation on `<prefix>/<plural>`, `<prefix>/<plural>/{name}` or their namespaced forms.

use serde_json::{json, Map, Value};

use super::schemas::{gvk, KindSchemas, DELETE_OPTIONS, REF_PREFIX, WATCH_EVENT};
use super::OpenApiKind;

/// Media types every object response is offered in.
const OBJECT_MEDIA_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
/// Media types a list response is offered in; the `stream=watch` ones answer `?watch=true`.
const LIST_MEDIA_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
];

/// Adds every path of `kind` to `paths`. `gv_path` is `api/v1` or `apis/<group>/<version>`.
pub(super) fn add_kind_paths(paths: &mut Map<String, Value>, gv_path: &str, kind: &OpenApiKind, names: &KindSchemas) {
    let ops = Ops::new(kind, names);
    let prefix = format!("/{gv_path}");
    let plural = kind.plural;
    if kind.namespaced {
        let collection = format!("{prefix}/namespaces/{{namespace}}/{plural}");
        paths.insert(
            collection.clone(),
            path_item(
                &[namespace_param(), pretty_param()],
                [("get", ops.list(false)), ("post", ops.create())],
            ),
        );
        paths.insert(
            format!("{prefix}/{plural}"),
            path_item(&[pretty_param()], [("get", ops.list(true))]),
        );
        add_item_paths(
            paths,
            &format!("{collection}/{{name}}"),
            &[name_param(kind), namespace_param()],
            &ops,
        );
    } else {
        let collection = format!("{prefix}/{plural}");
        paths.insert(
            collection.clone(),
            path_item(&[pretty_param()], [("get", ops.list(false)), ("post", ops.create())]),
        );
        add_item_paths(paths, &format!("{collection}/{{name}}"), &[name_param(kind)], &ops);
    }
}

/// The `{name}` path and its subresources.
fn add_item_paths(paths: &mut Map<String, Value>, item: &str, identity: &[Value], ops: &Ops) {
    let params = |extra: &[Value]| -> Vec<Value> {
        identity
            .iter()
            .cloned()
            .chain([pretty_param()])
            .chain(extra.iter().cloned())
            .collect()
    };
    paths.insert(
        item.to_owned(),
        path_item(
            &params(&[]),
            [
                ("get", ops.read("")),
                ("put", ops.replace("")),
                ("patch", ops.patch("")),
                ("delete", ops.delete()),
            ],
        ),
    );
    for &sub in ops.kind.subresources {
        let path = format!("{item}/{sub}");
        let value = match sub {
            "status" | "scale" => path_item(
                &params(&[]),
                [
                    ("get", ops.read(sub)),
                    ("put", ops.replace(sub)),
                    ("patch", ops.patch(sub)),
                ],
            ),
            "log" => path_item(&params(&log_params()), [("get", ops.log())]),
            _ => path_item(
                &params(&[]),
                [("get", ops.connect(sub, "Get")), ("post", ops.connect(sub, "Post"))],
            ),
        };
        paths.insert(path, value);
    }
}

/// A path item: its shared parameters and its operations.
fn path_item<const N: usize>(parameters: &[Value], operations: [(&str, Value); N]) -> Value {
    let mut item: Map<String, Value> = operations.into_iter().map(|(m, op)| (m.to_owned(), op)).collect();
    item.insert("parameters".into(), Value::Array(parameters.to_vec()));
    Value::Object(item)
}

/// Builds the operations of one kind.
struct Ops<'a> {
    kind: &'a OpenApiKind,
    names: &'a KindSchemas,
    /// `CoreV1`, `AppsV1`, `NetworkingV1`: the group-version part of operation ids.
    id_gv: String,
    /// `core_v1`, `apps_v1`, `networking_v1`: the operation tag.
    tag: String,
}

impl<'a> Ops<'a> {
    fn new(kind: &'a OpenApiKind, names: &'a KindSchemas) -> Self {
        let package = if kind.group.is_empty() {
            "core"
        } else {
            kind.group.split('.').next().unwrap_or(kind.group)
        };
        Self {
            kind,
            names,
            id_gv: format!("{}{}", upper_first(package), upper_first(kind.version)),
            tag: format!("{package}_{}", kind.version),
        }
    }

    /// `listCoreV1NamespacedService`, `readAppsV1NamespacedDeploymentScale`, `patchCoreV1Node`.
    fn id(&self, verb: &str, sub: &str) -> String {
        let scope = if self.kind.namespaced { "Namespaced" } else { "" };
        format!("{verb}{}{scope}{}{}", self.id_gv, self.kind.kind, upper_first(sub))
    }

    /// The kind's own GVK, or `autoscaling/v1 Scale` for the scale subresource.
    fn gvk(&self, sub: &str) -> Value {
        if sub == "scale" {
            gvk("autoscaling", "v1", "Scale")
        } else {
            gvk(self.kind.group, self.kind.version, self.kind.kind)
        }
    }

    /// The schema a (sub)resource reads and writes.
    fn schema(&self, sub: &str) -> &str {
        match (sub, &self.names.scale) {
            ("scale", Some(scale)) => scale,
            _ => &self.names.kind,
        }
    }

    fn operation(&self, action: &str, description: String, id: String, gvk: Value) -> Map<String, Value> {
        let mut op = Map::new();
        op.insert("tags".into(), json!([self.tag]));
        op.insert("description".into(), description.into());
        op.insert("operationId".into(), id.into());
        op.insert("x-kubernetes-action".into(), action.into());
        op.insert("x-kubernetes-group-version-kind".into(), gvk);
        op
    }

    fn list(&self, all_namespaces: bool) -> Value {
        let (description, id) = if all_namespaces {
            (
                format!("list or watch {} objects in all namespaces", self.kind.kind),
                format!("list{}{}ForAllNamespaces", self.id_gv, self.kind.kind),
            )
        } else {
            (format!("list or watch {} objects", self.kind.kind), self.id("list", ""))
        };
        let mut op = self.operation("list", description, id, self.gvk(""));
        op.insert("parameters".into(), Value::Array(list_params()));
        op.insert(
            "responses".into(),
            responses(&[("200", "OK", &self.names.list)], LIST_MEDIA_TYPES),
        );
        Value::Object(op)
    }

    fn create(&self) -> Value {
        let mut op = self.operation(
            "post",
            format!("create a {}", self.kind.kind),
            self.id("create", ""),
            self.gvk(""),
        );
        op.insert("parameters".into(), Value::Array(write_params(false)));
        op.insert("requestBody".into(), request_body(&self.names.kind));
        let schema = &self.names.kind;
        op.insert(
            "responses".into(),
            responses(
                &[
                    ("200", "OK", schema),
                    ("201", "Created", schema),
                    ("202", "Accepted", schema),
                ],
                OBJECT_MEDIA_TYPES,
            ),
        );
        Value::Object(op)
    }

    fn read(&self, sub: &str) -> Value {
        let description = format!("read {}", subject(sub, self.kind.kind));
        let mut op = self.operation("get", description, self.id("read", sub), self.gvk(sub));
        op.insert(
            "responses".into(),
            responses(&[("200", "OK", self.schema(sub))], OBJECT_MEDIA_TYPES),
        );
        Value::Object(op)
    }

    fn replace(&self, sub: &str) -> Value {
        let description = format!("replace {}", subject(sub, self.kind.kind));
        let mut op = self.operation("put", description, self.id("replace", sub), self.gvk(sub));
        op.insert("parameters".into(), Value::Array(write_params(false)));
        op.insert("requestBody".into(), request_body(self.schema(sub)));
        let schema = self.schema(sub);
        op.insert(
            "responses".into(),
            responses(&[("200", "OK", schema), ("201", "Created", schema)], OBJECT_MEDIA_TYPES),
        );
        Value::Object(op)
    }

    /// No `requestBody`: see the module docs of `openapi`.
    fn patch(&self, sub: &str) -> Value {
        let description = format!("partially update {}", subject(sub, self.kind.kind));
        let mut op = self.operation("patch", description, self.id("patch", sub), self.gvk(sub));
        op.insert("parameters".into(), Value::Array(write_params(true)));
        let schema = self.schema(sub);
        op.insert(
            "responses".into(),
            responses(&[("200", "OK", schema), ("201", "Created", schema)], OBJECT_MEDIA_TYPES),
        );
        Value::Object(op)
    }

    fn delete(&self) -> Value {
        let mut op = self.operation(
            "delete",
            format!("delete a {}", self.kind.kind),
            self.id("delete", ""),
            self.gvk(""),
        );
        op.insert("parameters".into(), Value::Array(delete_params()));
        op.insert("requestBody".into(), request_body(DELETE_OPTIONS));
        let schema = &self.names.kind;
        op.insert(
            "responses".into(),
            responses(
                &[("200", "OK", schema), ("202", "Accepted", schema)],
                OBJECT_MEDIA_TYPES,
            ),
        );
        Value::Object(op)
    }

    fn log(&self) -> Value {
        let mut op = self.operation(
            "get",
            format!("read log of the specified {}", self.kind.kind),
            self.id("read", "log"),
            self.gvk(""),
        );
        let text = json!({ "schema": { "type": "string" } });
        let content: Map<String, Value> = ["text/plain", "application/json"]
            .iter()
            .map(|t| ((*t).to_owned(), text.clone()))
            .collect();
        op.insert(
            "responses".into(),
            json!({ "200": { "description": "OK", "content": content }, "401": unauthorized() }),
        );
        Value::Object(op)
    }

    /// exec, attach, portforward and other streaming subresources: an upgrade, no schema.
    fn connect(&self, sub: &str, method: &str) -> Value {
        let scope = if self.kind.namespaced { "Namespaced" } else { "" };
        let id = format!(
            "connect{}{method}{scope}{}{}",
            self.id_gv,
            self.kind.kind,
            upper_first(sub)
        );
        let mut op = Map::new();
        op.insert("tags".into(), json!([self.tag]));
        op.insert(
            "description".into(),
            format!("connect {method} requests to {sub} of {}", self.kind.kind).into(),
        );
        op.insert("operationId".into(), id.into());
        op.insert("x-kubernetes-action".into(), "connect".into());
        op.insert(
            "responses".into(),
            json!({ "200": { "description": "OK", "content": { "*/*": { "schema": { "type": "string" } } } }, "401": unauthorized() }),
        );
        Value::Object(op)
    }
}

/// How descriptions name what an operation acts on: `the specified Pod`, `status of the
/// specified Pod`.
fn subject(sub: &str, kind: &str) -> String {
    if sub.is_empty() {
        format!("the specified {kind}")
    } else {
        format!("{sub} of the specified {kind}")
    }
}

fn upper_first(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("{REF_PREFIX}{name}") })
}

fn request_body(schema: &str) -> Value {
    json!({ "content": { "*/*": { "schema": schema_ref(schema) } }, "required": true })
}

fn unauthorized() -> Value {
    json!({ "description": "Unauthorized" })
}

/// `{code: {description, content: {media type: {schema: $ref}}}}` plus 401, and the watch event
/// schema for `stream=watch` media types.
fn responses(codes: &[(&str, &str, &str)], media_types: &[&str]) -> Value {
    let mut out = Map::new();
    for (code, description, schema) in codes {
        let content: Map<String, Value> = media_types
            .iter()
            .map(|t| {
                let schema = if t.ends_with(";stream=watch") {
                    WATCH_EVENT
                } else {
                    schema
                };
                ((*t).to_owned(), json!({ "schema": schema_ref(schema) }))
            })
            .collect();
        out.insert(
            (*code).to_owned(),
            json!({ "description": description, "content": content }),
        );
    }
    out.insert("401".into(), unauthorized());
    Value::Object(out)
}

fn param(name: &str, location: &str, ty: &str, description: &str) -> Value {
    let mut p = json!({ "name": name, "in": location, "description": description, "schema": { "type": ty } });
    if location == "path" {
        p["required"] = true.into();
    }
    p
}

fn name_param(kind: &OpenApiKind) -> Value {
    param("name", "path", "string", &format!("name of the {}", kind.kind))
}

fn namespace_param() -> Value {
    param(
        "namespace",
        "path",
        "string",
        "namespace of the object: a name and an authorization scope",
    )
}

fn pretty_param() -> Value {
    param("pretty", "query", "string", "If 'true', the output is indented.")
}

/// Query parameters of POST (`patch == false`), PUT and PATCH. `fieldValidation` is the one
/// kubectl looks for before it trusts the server to reject unknown fields.
fn write_params(patch: bool) -> Vec<Value> {
    let mut params = vec![
        param(
            "dryRun",
            "query",
            "string",
            "All: run every stage of the request but persist nothing.",
        ),
        param(
            "fieldManager",
            "query",
            "string",
            "Name of the actor making the change, recorded as the manager of the fields it sets.",
        ),
        param(
            "fieldValidation",
            "query",
            "string",
            "How to treat unknown or duplicate fields in the body: Ignore drops them, Warn drops them and \
             returns a Warning header for each, Strict rejects the request with 400 Bad Request.",
        ),
    ];
    if patch {
        params.push(param(
            "force",
            "query",
            "boolean",
            "For apply patches only: take ownership of fields managed by others instead of reporting a conflict.",
        ));
    }
    params
}

fn list_params() -> Vec<Value> {
    vec![
        param(
            "allowWatchBookmarks",
            "query",
            "boolean",
            "With watch: ask for BOOKMARK events.",
        ),
        param(
            "continue",
            "query",
            "string",
            "The continue token of a previous, limited list.",
        ),
        param(
            "fieldSelector",
            "query",
            "string",
            "Restrict the objects by their fields, e.g. metadata.name=web.",
        ),
        param(
            "labelSelector",
            "query",
            "string",
            "Restrict the objects by their labels, e.g. app=web,tier!=db.",
        ),
        param(
            "limit",
            "query",
            "integer",
            "Return at most this many objects and a continue token for the rest.",
        ),
        param(
            "resourceVersion",
            "query",
            "string",
            "The resource version to list at or to watch from.",
        ),
        param(
            "resourceVersionMatch",
            "query",
            "string",
            "How resourceVersion applies to a list: Exact or NotOlderThan.",
        ),
        param(
            "sendInitialEvents",
            "query",
            "boolean",
            "With watch: start with synthetic ADDED events for the current state.",
        ),
        param(
            "timeoutSeconds",
            "query",
            "integer",
            "End the list or watch call after this many seconds.",
        ),
        param(
            "watch",
            "query",
            "boolean",
            "Stream changes as watch events instead of returning a list.",
        ),
    ]
}

fn delete_params() -> Vec<Value> {
    vec![
        param(
            "dryRun",
            "query",
            "string",
            "All: run every stage of the request but persist nothing.",
        ),
        param(
            "gracePeriodSeconds",
            "query",
            "integer",
            "Seconds to wait before the object is deleted; 0 deletes at once.",
        ),
        param(
            "orphanDependents",
            "query",
            "boolean",
            "Deprecated, use propagationPolicy: whether dependents are orphaned.",
        ),
        param(
            "propagationPolicy",
            "query",
            "string",
            "What happens to dependents: Orphan, Background (garbage-collected later) or Foreground.",
        ),
    ]
}

fn log_params() -> Vec<Value> {
    vec![
        param(
            "container",
            "query",
            "string",
            "The container to read logs of; optional if the pod has one.",
        ),
        param("follow", "query", "boolean", "Keep streaming the log as it grows."),
        param("limitBytes", "query", "integer", "Stop after this many bytes."),
        param(
            "previous",
            "query",
            "boolean",
            "Read the log of the previous, terminated container instance.",
        ),
        param(
            "sinceSeconds",
            "query",
            "integer",
            "Only lines newer than this many seconds.",
        ),
        param("tailLines", "query", "integer", "Only the last this many lines."),
        param(
            "timestamps",
            "query",
            "boolean",
            "Prefix every line with an RFC3339 timestamp.",
        ),
    ]
}
