//! get, list and watch, served from the watch cache; Tables for kubectl's human output.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::Response;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use podway_api::meta;
use podway_api::selector::{FieldSelector, LabelSelector};
use podway_api::status::ApiError;
use podway_api::table;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use super::object::{key, not_found, view, with_type};
use super::{Api, Call};
use crate::cache::{Change, ChangeType};
use crate::registry::Strategy;
use crate::request::ResourcePath;
use crate::response::{self, Body};

/// Label and field selectors of a list or watch.
pub struct Filter {
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
}

impl Filter {
    /// From `labelSelector` and `fieldSelector`; unsupported fields are a 400, as upstream.
    pub fn from_query(s: &dyn Strategy, call: &Call) -> Result<Filter, ApiError> {
        let labels = match call.query.get("labelSelector").filter(|v| !v.is_empty()) {
            Some(q) => Some(LabelSelector::parse(q).map_err(|e| ApiError::bad_request(e.to_string()))?),
            None => None,
        };
        let fields = match call.query.get("fieldSelector").filter(|v| !v.is_empty()) {
            Some(q) => {
                let f = FieldSelector::parse(q).map_err(|e| ApiError::bad_request(e.to_string()))?;
                // A field is supported if the strategy answers for it on an empty object.
                for name in f.requirements().iter().map(|r| r.field.as_str()) {
                    if !matches!(name, "metadata.name" | "metadata.namespace") && s.field(&json!({}), name).is_none() {
                        return Err(ApiError::bad_request(format!("field label not supported: {name}")));
                    }
                }
                Some(f)
            }
            None => None,
        };
        Ok(Filter { labels, fields })
    }

    /// Whether `obj` is selected.
    pub fn matches(&self, s: &dyn Strategy, obj: &Value) -> bool {
        if let Some(l) = &self.labels {
            if !l.matches(&meta::labels(obj)) {
                return false;
            }
        }
        if let Some(f) = &self.fields {
            let get = |field: &str| match field {
                "metadata.name" => Some(meta::name(obj).to_string()),
                "metadata.namespace" => Some(meta::namespace(obj).to_string()),
                other => s.field(obj, other),
            };
            if !f.matches(get) {
                return false;
            }
        }
        true
    }
}

fn wants_table(call: &Call) -> bool {
    call.accept.split(',').any(|a| a.contains("as=Table"))
}

/// GET of one object.
pub fn get(api: &Api, s: &dyn Strategy, rp: &ResourcePath, call: &Call) -> Result<Response<Body>, ApiError> {
    let obj = view(s, api.cache.get(&key(s, rp)).ok_or_else(|| not_found(s, rp))?);
    if wants_table(call) {
        let rv = meta::resource_version(&obj).to_string();
        return Ok(table_response(&to_table(s, &[obj], &rv, call)));
    }
    Ok(response::json(200, &with_type(s, &obj)))
}

/// GET of a collection.
pub async fn list(api: &Api, s: &dyn Strategy, rp: &ResourcePath, call: &Call) -> Result<Response<Body>, ApiError> {
    let filter = Filter::from_query(s, call)?;
    let (items, revision) = api.cache.list(&s.info().namespace_prefix(&rp.namespace));
    let items: Vec<Arc<Value>> = items
        .into_iter()
        .map(|o| view(s, o))
        .filter(|o| filter.matches(s, o))
        .collect();
    let rv = revision.to_string();
    if wants_table(call) {
        return Ok(table_response(&to_table(s, &items, &rv, call)));
    }
    // Serialized straight from the cache: no copy of the objects (a list of 10,000 Services
    // would otherwise build, and then free, a second tree of them).
    let kind = s.info().list_kind();
    let api_version = s.info().api_version();
    let list = ListOut {
        kind: &kind,
        api_version: &api_version,
        metadata: ListMeta { resource_version: &rv },
        items: items.iter().map(|o| &**o).collect(),
    };
    Ok(response::bytes(
        200,
        "application/json",
        serde_json::to_vec(&list).unwrap_or_default(),
    ))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListOut<'a> {
    kind: &'a str,
    api_version: &'a str,
    metadata: ListMeta<'a>,
    items: Vec<&'a Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListMeta<'a> {
    resource_version: &'a str,
}

fn table_response(t: &Table<'_>) -> Response<Body> {
    response::bytes(
        200,
        "application/json;as=Table;v=v1;g=meta.k8s.io",
        serde_json::to_vec(t).unwrap_or_default(),
    )
}

/// A `meta.k8s.io/v1 Table`, borrowing the objects its rows show.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Table<'a> {
    kind: &'static str,
    api_version: &'static str,
    metadata: ListMeta<'a>,
    column_definitions: Vec<table::ColumnDefinition>,
    rows: Vec<Row<'a>>,
}

#[derive(Serialize)]
struct Row<'a> {
    cells: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    object: Option<RowObject<'a>>,
}

/// What a row carries, as `includeObject` asks: the object's metadata (the default) or all of it.
#[derive(Serialize)]
#[serde(untagged)]
enum RowObject<'a> {
    Metadata(PartialObjectMetadata<'a>),
    Object(&'a Value),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PartialObjectMetadata<'a> {
    kind: &'static str,
    api_version: &'static str,
    metadata: &'a Value,
}

static EMPTY: Value = Value::Null;

/// A Table of `items`, rows carrying what `includeObject` asks for.
pub fn to_table<'a>(s: &dyn Strategy, items: &'a [Arc<Value>], rv: &'a str, call: &Call) -> Table<'a> {
    let info = s.info();
    let now = jiff::Timestamp::now();
    let include = call.query.get("includeObject").unwrap_or("Metadata");
    let rows = items
        .iter()
        .map(|o| Row {
            cells: table::cells(info.group, info.plural, o, now),
            object: match include {
                "None" => None,
                "Object" => Some(RowObject::Object(o)),
                _ => Some(RowObject::Metadata(PartialObjectMetadata {
                    kind: "PartialObjectMetadata",
                    api_version: "meta.k8s.io/v1",
                    metadata: o.get("metadata").unwrap_or(&EMPTY),
                })),
            },
        })
        .collect();
    Table {
        kind: "Table",
        api_version: "meta.k8s.io/v1",
        metadata: ListMeta { resource_version: rv },
        column_definitions: table::columns(info.group, info.plural),
        rows,
    }
}

/// How long a watch lasts without `timeoutSeconds`: the real server picks 30-60 minutes.
const DEFAULT_WATCH: Duration = Duration::from_secs(45 * 60);

/// GET with `watch=true`: a stream of WatchEvents.
pub async fn watch(
    api: &Arc<Api>,
    s: &dyn Strategy,
    rp: &ResourcePath,
    call: &Call,
) -> Result<Response<Body>, ApiError> {
    let filter = Filter::from_query(s, call)?;
    let prefix = s.info().namespace_prefix(&rp.namespace);
    let table = wants_table(call);
    let timeout = call
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_WATCH);
    let rv = call.query.get("resourceVersion").unwrap_or("");

    // What to send first, and from where the live feed continues.
    let (initial, mut last, mut live) = if rv.is_empty() || rv == "0" {
        let (items, revision, live) = api.cache.list_and_subscribe(&prefix);
        let added: Vec<(ChangeType, Arc<Value>)> = items
            .into_iter()
            .map(|o| view(s, o))
            .filter(|o| filter.matches(s, o))
            .map(|o| (ChangeType::Added, o))
            .collect();
        (added, revision, live)
    } else {
        let after: i64 = rv
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?;
        match api.cache.subscribe(after) {
            Ok(sub) => {
                let mut events = Vec::new();
                let mut last = after;
                for c in sub.backlog {
                    last = c.revision;
                    if let Some(e) = select(&c, &prefix, &filter, s) {
                        events.push(e);
                    }
                }
                (events, last.max(after), sub.live)
            }
            Err(oldest) => {
                let status = ApiError::expired(format!("too old resource version: {after} ({oldest})")).to_status();
                let line = format!("{}\n", json!({"type": "ERROR", "object": status}));
                let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
                let _ = tx.try_send(Bytes::from(line));
                return Ok(stream_response(rx, table));
            }
        }
    };

    tracing::debug!(
        resource = s.info().plural,
        rv,
        initial = initial.len(),
        from = last,
        "watch starts"
    );
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(256);
    let strategy = api
        .strategy_version(s.info().group, s.info().version, s.info().plural)
        .cloned()
        .expect("strategy of a served kind");
    let query_call = Call {
        method: call.method.clone(),
        query: call.query.clone(),
        accept: call.accept.clone(),
        content_type: String::new(),
        body: Bytes::new(),
        headers: http::HeaderMap::new(),
        upgrade: None,
    };
    tokio::spawn(async move {
        let s = strategy.as_ref();
        let encode = |kind: ChangeType, obj: &Arc<Value>| -> Bytes {
            let object = if table {
                let one = std::slice::from_ref(obj);
                serde_json::to_value(to_table(s, one, meta::resource_version(obj), &query_call)).unwrap_or_default()
            } else {
                with_type(s, obj)
            };
            Bytes::from(format!("{}\n", json!({"type": kind.as_str(), "object": object})))
        };
        for (kind, obj) in &initial {
            if tx.send(encode(*kind, obj)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                msg = live.recv() => match msg {
                    Ok(c) => {
                        if c.kind == ChangeType::Relisted {
                            return; // the client relists, as after any ended watch
                        }
                        if c.revision <= last {
                            continue;
                        }
                        last = c.revision;
                        if let Some((kind, obj)) = select(&c, &prefix, &filter, s) {
                            tracing::trace!(resource = s.info().plural, revision = c.revision, kind = kind.as_str(), name = meta::name(&obj), "watch event");
                            if tx.send(encode(kind, &obj)).await.is_err() {
                                return;
                            }
                        }
                    }
                    // Too slow to keep up: end the watch; clients relist and watch again.
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return,
                },
            }
        }
    });
    Ok(stream_response(rx, table))
}

/// The event a watcher with `filter` sees for change `c`, if any. An object that stops
/// matching is DELETED for this watcher; one that starts matching is ADDED.
fn select(c: &Change, prefix: &str, filter: &Filter, s: &dyn Strategy) -> Option<(ChangeType, Arc<Value>)> {
    if !c.key.starts_with(prefix) {
        return None;
    }
    let object = view(s, c.object.clone());
    let now = filter.matches(s, &object);
    let before = c.prev.as_ref().is_some_and(|p| filter.matches(s, &view(s, p.clone())));
    match c.kind {
        ChangeType::Added if now => Some((ChangeType::Added, object)),
        ChangeType::Deleted if now || before => Some((ChangeType::Deleted, object)),
        ChangeType::Modified => match (before, now) {
            (true, true) => Some((ChangeType::Modified, object)),
            (false, true) => Some((ChangeType::Added, object)),
            (true, false) => Some((ChangeType::Deleted, object)),
            (false, false) => None,
        },
        _ => None,
    }
}

fn stream_response(rx: tokio::sync::mpsc::Receiver<Bytes>, table: bool) -> Response<Body> {
    let frames = tokio_stream::wrappers::ReceiverStream::new(rx).map(|b| Ok::<_, Infallible>(Frame::data(b)));
    let content_type = if table {
        "application/json;as=Table;v=v1;g=meta.k8s.io"
    } else {
        "application/json"
    };
    Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CACHE_CONTROL, "no-cache, private")
        .body(BodyExt::boxed(StreamBody::new(frames)))
        .expect("valid response")
}
