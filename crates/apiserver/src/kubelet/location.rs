//! Where a pod's logs and streams are served: the pod's node agent, the kubelet path, and the
//! query it expects. Pure functions over the Pod and Node objects, following kube-apiserver's
//! `pkg/registry/core/pod/strategy.go` (`LogLocation`, `ExecLocation`, `AttachLocation`,
//! `PortForwardLocation`) and `pkg/kubelet/client` (how a node is reached).

use podway_api::status::ApiError;
use podway_api::validation::FieldError;
use serde_json::{json, Value};

use crate::request::Query;

/// The kubelet port used when a Node does not report one (`--kubelet-port`'s default).
pub const DEFAULT_KUBELET_PORT: u16 = 10250;

/// Which kubelet call a subresource becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// `pods/exec` → `/exec/{ns}/{pod}/{container}`.
    Exec,
    /// `pods/attach` → `/attach/{ns}/{pod}/{container}`.
    Attach,
    /// `pods/portforward` → `/portForward/{ns}/{pod}`.
    PortForward,
}

/// Where a node agent serves the kubelet API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEndpoint {
    /// The node's address (an IP in podway).
    pub host: String,
    /// The kubelet port.
    pub port: u16,
}

impl NodeEndpoint {
    /// `host:port`, with IPv6 addresses bracketed: what a URL and a `Host` header carry.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A call to make on a node agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The agent.
    pub node: NodeEndpoint,
    /// Path and query, e.g. `/containerLogs/default/web/nginx?follow=true`.
    pub path_and_query: String,
}

impl Location {
    /// `https://host:port/path?query`, as error messages name it.
    pub fn url(&self) -> String {
        format!("https://{}{}", self.node.authority(), self.path_and_query)
    }
}

/// `PodLogOptions` from the query of a `pods/log` request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[doc(alias = "PodLogOptions")]
pub struct LogOptions {
    /// The container; "" to default it.
    pub container: String,
    /// Keep streaming.
    pub follow: bool,
    /// The previous instance's log.
    pub previous: bool,
    /// Prefix lines with RFC 3339 timestamps.
    pub timestamps: bool,
    /// Only lines newer than this many seconds.
    pub since_seconds: Option<i64>,
    /// Only lines newer than this time (RFC 3339, UTC).
    pub since_time: Option<String>,
    /// Only the last N lines.
    pub tail_lines: Option<i64>,
    /// At most this many bytes.
    pub limit_bytes: Option<i64>,
}

/// `PodExecOptions` / `PodAttachOptions` (attach has no command) from a request's query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[doc(alias = "PodExecOptions")]
#[doc(alias = "PodAttachOptions")]
pub struct StreamOptions {
    /// The container; "" to default it.
    pub container: String,
    /// Pass stdin.
    pub stdin: bool,
    /// Return stdout.
    pub stdout: bool,
    /// Return stderr.
    pub stderr: bool,
    /// Allocate a terminal.
    pub tty: bool,
    /// The command (exec only), one query value per argument.
    pub command: Vec<String>,
}

/// A boolean query parameter as the API server's parameter codec reads it: present and not
/// `0`/`false` means true (so `?follow=` is true, `?follow=no` too).
fn bool_param(q: &Query, key: &str) -> bool {
    match q.get(key) {
        None => false,
        Some(v) => !(v == "0" || v.eq_ignore_ascii_case("false")),
    }
}

/// An integer query parameter, with Go's `strconv.ParseInt` wording on failure (400).
fn int_param(q: &Query, key: &str) -> Result<Option<i64>, ApiError> {
    q.get(key).map(parse_int).transpose()
}

fn parse_int(v: &str) -> Result<i64, ApiError> {
    use std::num::IntErrorKind;
    v.parse::<i64>().map_err(|e| {
        let why = match e.kind() {
            IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => "value out of range",
            _ => "invalid syntax",
        };
        ApiError::bad_request(format!("strconv.ParseInt: parsing {}: {why}", go_quote(v)))
    })
}

/// A Go `%q` rendering, close enough for the strings in query parameters.
fn go_quote(v: &str) -> String {
    Value::String(v.to_string()).to_string()
}

/// Parse the `pods/log` query (400 when a value does not decode, as upstream's codec).
pub fn parse_log_options(q: &Query) -> Result<LogOptions, ApiError> {
    let since_time = match q.get("sinceTime") {
        None => None,
        Some(v) => Some(rfc3339_utc(v)?),
    };
    Ok(LogOptions {
        container: q.get("container").unwrap_or("").to_string(),
        follow: bool_param(q, "follow"),
        previous: bool_param(q, "previous"),
        timestamps: bool_param(q, "timestamps"),
        since_seconds: int_param(q, "sinceSeconds")?,
        since_time,
        tail_lines: int_param(q, "tailLines")?,
        limit_bytes: int_param(q, "limitBytes")?,
    })
}

/// An RFC 3339 time, normalised to UTC with second precision (what `time.RFC3339` prints).
fn rfc3339_utc(v: &str) -> Result<String, ApiError> {
    let t: jiff::Timestamp = v.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "parsing time {} as \"2006-01-02T15:04:05Z07:00\": cannot parse {} as \"2006\"",
            go_quote(v),
            go_quote(v)
        ))
    })?;
    Ok(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// `ValidatePodLogOptions`: 422 `PodLogOptions "<pod>" is invalid: ...`.
pub fn validate_log_options(o: &LogOptions, pod: &str) -> Result<(), ApiError> {
    let mut errs = Vec::new();
    if let Some(n) = o.tail_lines.filter(|n| *n < 0) {
        errs.push(FieldError::invalid(
            "tailLines",
            json!(n),
            "must be greater than or equal to 0",
        ));
    }
    if let Some(n) = o.limit_bytes.filter(|n| *n < 1) {
        errs.push(FieldError::invalid("limitBytes", json!(n), "must be greater than 0"));
    }
    match (o.since_seconds, &o.since_time) {
        (Some(_), Some(_)) => errs.push(FieldError::forbidden(
            "",
            "at most one of `sinceTime` or `sinceSeconds` may be specified",
        )),
        (Some(n), None) if n < 1 => errs.push(FieldError::invalid("sinceSeconds", json!(n), "must be greater than 0")),
        _ => {}
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("", "PodLogOptions", pod, &errs))
    }
}

/// Parse the query of `pods/exec` or `pods/attach`.
pub fn parse_stream_options(q: &Query) -> StreamOptions {
    StreamOptions {
        container: q.get("container").unwrap_or("").to_string(),
        stdin: bool_param(q, "stdin"),
        stdout: bool_param(q, "stdout"),
        stderr: bool_param(q, "stderr"),
        tty: bool_param(q, "tty"),
        command: q.all("command").to_vec(),
    }
}

/// The container a request addresses (upstream's `validateContainer`): the one asked for,
/// which must exist among containers, init and ephemeral containers; or, when none is named,
/// the pod's only container. The `kubectl.kubernetes.io/default-container` annotation is
/// kubectl's to apply (it always sends `container=`), not the server's, as upstream.
pub fn validate_container(pod: &Value, requested: &str) -> Result<String, ApiError> {
    let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let names = |list: &str| -> Vec<String> {
        pod.pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let containers = names("containers");
    if requested.is_empty() {
        return match containers.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}"
            ))),
            many => {
                let mut msg = format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    many.join(" ")
                );
                let init = names("initContainers");
                if !init.is_empty() {
                    msg.push_str(&format!(" or one of the init containers: [{}]", init.join(" ")));
                }
                Err(ApiError::bad_request(msg))
            }
        };
    }
    let known = containers
        .iter()
        .chain(names("initContainers").iter())
        .chain(names("ephemeralContainers").iter())
        .any(|c| c == requested);
    if known {
        Ok(requested.to_string())
    } else {
        Err(ApiError::bad_request(format!(
            "container {requested} is not valid for pod {name}"
        )))
    }
}

/// How to reach a node's agent (upstream's `NodeConnectionInfoGetter`): its InternalIP, else
/// its ExternalIP, else a host name; the port from `status.daemonEndpoints.kubeletEndpoint.Port`,
/// or `default_port` when unset. podway nodes are reached by IP: a node's host name is not
/// resolvable from the host, so IPs come first rather than upstream's Hostname-first default.
pub fn node_endpoint(node: &Value, default_port: u16) -> Result<NodeEndpoint, ApiError> {
    let addresses: Vec<(&str, &str)> = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| {
                    (
                        x.get("type").and_then(Value::as_str).unwrap_or(""),
                        x.get("address").and_then(Value::as_str).unwrap_or(""),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let preferred = ["InternalIP", "ExternalIP", "Hostname", "InternalDNS", "ExternalDNS"];
    let host = preferred
        .iter()
        .find_map(|t| addresses.iter().find(|(ty, a)| ty == t && !a.is_empty()))
        .map(|(_, a)| a.to_string())
        .ok_or_else(|| {
            let known: Vec<String> = addresses.iter().map(|(t, a)| format!("{{{t} {a}}}")).collect();
            unknown_error(format!(
                "no preferred addresses found; known addresses: [{}]",
                known.join(" ")
            ))
        })?;
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_i64)
        .filter(|p| (1..=65535).contains(p))
        .map(|p| p as u16)
        .unwrap_or(default_port);
    Ok(NodeEndpoint { host, port })
}

/// A plain (non-Status) error as the API server reports it: 500 with no reason.
pub fn unknown_error(message: impl Into<String>) -> ApiError {
    ApiError {
        code: 500,
        reason: String::new(),
        message: message.into(),
        details: None,
    }
}

fn pod_ids(pod: &Value) -> (&str, &str, &str) {
    let s = |p: &str| pod.pointer(p).and_then(Value::as_str).unwrap_or("");
    (s("/metadata/namespace"), s("/metadata/name"), s("/spec/nodeName"))
}

/// Encode query pairs sorted by key, as Go's `url.Values.Encode`.
fn encode(mut pairs: Vec<(&str, String)>) -> String {
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

fn with_query(path: String, query: String) -> String {
    if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    }
}

/// Path and query of a logs call, given the pod and the container chosen.
pub fn log_path(namespace: &str, pod: &str, container: &str, o: &LogOptions) -> String {
    let mut q: Vec<(&str, String)> = Vec::new();
    let flag = |on: bool| on.then(|| "true".to_string());
    for (k, v) in [
        ("follow", flag(o.follow)),
        ("previous", flag(o.previous)),
        ("timestamps", flag(o.timestamps)),
        ("sinceSeconds", o.since_seconds.map(|n| n.to_string())),
        ("sinceTime", o.since_time.clone()),
        ("tailLines", o.tail_lines.map(|n| n.to_string())),
        ("limitBytes", o.limit_bytes.map(|n| n.to_string())),
    ] {
        if let Some(v) = v {
            q.push((k, v));
        }
    }
    with_query(format!("/containerLogs/{namespace}/{pod}/{container}"), encode(q))
}

/// Where a pod's log is read (`LogLocation`): `None` when the pod is not on a node yet, which
/// upstream answers with an empty 204. `node` looks a Node up by name.
pub fn log_location(
    pod: &Value,
    o: &LogOptions,
    node: impl Fn(&str) -> Option<Value>,
    default_port: u16,
) -> Result<Option<Location>, ApiError> {
    let (namespace, name, node_name) = pod_ids(pod);
    let container = validate_container(pod, &o.container)?;
    if node_name.is_empty() {
        return Ok(None);
    }
    let node = node_of(node_name, node, default_port)?;
    Ok(Some(Location {
        node,
        path_and_query: log_path(namespace, name, &container, o),
    }))
}

fn node_of(name: &str, node: impl Fn(&str) -> Option<Value>, default_port: u16) -> Result<NodeEndpoint, ApiError> {
    let obj = node(name).ok_or_else(|| ApiError::not_found("", "nodes", name))?;
    node_endpoint(&obj, default_port)
}

/// Where an exec, attach or port-forward is served (`streamLocation`, `PortForwardLocation`),
/// with kubectl's `stdin/stdout/stderr/tty` renamed to the kubelet's `input/output/error/tty`
/// (`streamParams`). `ports` is port-forward's `ports` query, passed on as `port=a,b`.
pub fn stream_location(
    kind: Stream,
    pod: &Value,
    o: &StreamOptions,
    ports: &[String],
    node: impl Fn(&str) -> Option<Value>,
    default_port: u16,
) -> Result<Location, ApiError> {
    let (namespace, name, node_name) = pod_ids(pod);
    let container = match kind {
        Stream::PortForward => String::new(),
        Stream::Exec | Stream::Attach => validate_container(pod, &o.container)?,
    };
    if node_name.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let node = node_of(node_name, node, default_port)?;
    let mut q: Vec<(&str, String)> = Vec::new();
    let path = match kind {
        Stream::PortForward => {
            let mut numbers = Vec::new();
            for p in ports {
                numbers.push(parse_int(p)?.to_string());
            }
            if !numbers.is_empty() {
                q.push(("port", numbers.join(",")));
            }
            format!("/portForward/{namespace}/{name}")
        }
        Stream::Exec | Stream::Attach => {
            for (on, key) in [
                (o.stdin, "input"),
                (o.stdout, "output"),
                (o.stderr, "error"),
                (o.tty, "tty"),
            ] {
                if on {
                    q.push((key, "1".into()));
                }
            }
            let verb = if kind == Stream::Exec {
                q.extend(o.command.iter().map(|c| ("command", c.clone())));
                "exec"
            } else {
                "attach"
            };
            format!("/{verb}/{namespace}/{name}/{container}")
        }
    };
    Ok(Location {
        node,
        path_and_query: with_query(path, encode(q)),
    })
}

#[cfg(test)]
#[path = "location_tests.rs"]
mod tests;
