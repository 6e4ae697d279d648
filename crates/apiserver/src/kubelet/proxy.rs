//! Carrying a request to a node agent and its answer back, as kube-apiserver's
//! `LocationStreamer` (logs) and `UpgradeAwareHandler` (exec, attach, port-forward) do.
//!
//! Logs are a plain GET whose body is streamed back as it comes (chunked), so `-f` follows
//! until the agent ends the body or the client goes away. Streams are an HTTP upgrade: the
//! client's upgrade headers go to the agent unchanged; when the agent switches protocols the
//! client gets the agent's 101 and bytes are spliced both ways, so the protocols
//! (WebSocket `v5.channel.k8s.io`, SPDY/3.1) are spoken end to end by kubectl and the agent.

use std::convert::Infallible;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use podway_api::status::ApiError;
use serde_json::{json, Value};

use super::client::KubeletClient;
use super::location::{unknown_error, Location};
use crate::response::Body;

/// How much of an agent's error body is read, as upstream's `maxReadLength`.
const MAX_ERROR_BODY: usize = 50_000;

/// Stream a pod's log from its agent. `None` (the pod is on no node yet) is an empty 204, as
/// upstream answers; `pod` names the pod in errors.
pub async fn logs(client: &KubeletClient, location: Option<Location>, pod: &str) -> Result<Response<Body>, ApiError> {
    let Some(location) = location else {
        return Ok(Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Empty::new().boxed())
            .expect("valid response"));
    };
    let request_error = |why: String| unknown_error(format!("Get \"{}\": {why}", location.url()));
    let resp = send(client, &location, Method::GET, HeaderMap::new(), false)
        .await
        .map_err(request_error)?;
    let code = resp.status().as_u16();
    if !(200..=206).contains(&code) {
        let body = read_limited(resp.into_body()).await;
        return Err(log_error(code, &body, pod));
    }
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(relay(resp.into_body()))
        .expect("valid response"))
}

/// Proxy an exec, attach or port-forward upgrade to the agent. `headers` are the client's
/// request headers; `client_upgrade` resolves to the client's connection once it has been
/// answered 101.
pub async fn upgrade(
    client: &KubeletClient,
    location: Location,
    method: Method,
    headers: &HeaderMap,
    client_upgrade: Option<OnUpgrade>,
) -> Result<Response<Body>, ApiError> {
    let Some(client_upgrade) = client_upgrade.filter(|_| is_upgrade_request(headers)) else {
        return Err(ApiError::bad_request("Upgrade request required"));
    };
    let mut resp = send(client, &location, method, upgrade_headers(headers), true)
        .await
        .map_err(|why| unknown_error(format!("error dialing backend: {why}")))?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        let code = resp.status().as_u16();
        let body = read_limited(resp.into_body()).await;
        return Err(upgrade_error(code, &body));
    }
    let agent_upgrade = hyper::upgrade::on(&mut resp);
    let mut answer = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
    if let Some(h) = answer.headers_mut() {
        h.extend(resp.headers().iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let target = location.url();
    tokio::spawn(async move {
        let (ours, theirs) = match tokio::try_join!(client_upgrade, agent_upgrade) {
            Ok(both) => both,
            Err(e) => {
                tracing::debug!("upgrade to {target}: {e}");
                return;
            }
        };
        let (mut ours, mut theirs) = (TokioIo::new(ours), TokioIo::new(theirs));
        if let Err(e) = tokio::io::copy_bidirectional(&mut ours, &mut theirs).await {
            tracing::debug!("stream to {target} ended: {e}");
        }
    });
    Ok(answer.body(Empty::new().boxed()).expect("valid response"))
}

/// One request to the agent over a fresh TLS connection; the error is the reason in words.
async fn send(
    client: &KubeletClient,
    location: &Location,
    method: Method,
    headers: HeaderMap,
    upgrades: bool,
) -> Result<Response<Incoming>, String> {
    let tls = client.connect(&location.node).await.map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    let target = location.url();
    tokio::spawn(async move {
        let done = if upgrades {
            conn.with_upgrades().await
        } else {
            conn.await
        };
        if let Err(e) = done {
            tracing::debug!("connection to {target}: {e}");
        }
    });
    let mut req = Request::builder()
        .method(method)
        .uri(location.path_and_query.as_str())
        .header(header::HOST, location.node.authority())
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    req.headers_mut().extend(headers);
    sender.send_request(req).await.map_err(|e| e.to_string())
}

/// The agent's body as the response body, chunk by chunk; an agent error mid-stream ends it.
fn relay(incoming: Incoming) -> Body {
    let frames = futures::stream::unfold(incoming, |mut body| async move {
        match body.frame().await {
            Some(Ok(frame)) => Some((Ok::<_, Infallible>(frame), body)),
            _ => None,
        }
    });
    StreamBody::new(frames).boxed()
}

async fn read_limited(incoming: Incoming) -> Bytes {
    match http_body_util::Limited::new(incoming, MAX_ERROR_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => Bytes::new(),
    }
}

/// Whether a request asks to switch protocols (`Connection: Upgrade` and an `Upgrade`).
pub fn is_upgrade_request(headers: &HeaderMap) -> bool {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    connection_upgrade && headers.contains_key(header::UPGRADE)
}

/// The client headers the agent needs to switch protocols: `Connection`, `Upgrade`, the
/// WebSocket handshake (`Sec-WebSocket-*`) and SPDY's `X-Stream-Protocol-Version` (every
/// value: kubectl offers five). Credentials are not passed on.
pub fn upgrade_headers(headers: &HeaderMap) -> HeaderMap {
    let wanted = |name: &HeaderName| {
        let n = name.as_str();
        n == "connection" || n == "upgrade" || n == "x-stream-protocol-version" || n.starts_with("sec-websocket-")
    };
    headers
        .iter()
        .filter(|(k, _)| wanted(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A `Status` the agent sent, as an error to relay verbatim.
fn as_status(code: u16, body: &[u8]) -> Option<ApiError> {
    let v: Value = serde_json::from_slice(body).ok()?;
    if v.get("kind").and_then(Value::as_str) != Some("Status") {
        return None;
    }
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    Some(ApiError {
        code: v
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| *c >= 400)
            .unwrap_or(code),
        reason: s("reason"),
        message: s("message"),
        details: v.get("details").cloned(),
    })
}

/// The error of a failed log read (upstream's `GenericHttpResponseChecker`): a 400's text is
/// the message (the kubelet's `container "x" in pod "y" is waiting to start: ...`), a 500's
/// an internal error, anything else the generic message for its code. A `Status` body is
/// relayed as it is.
pub fn log_error(code: u16, body: &[u8], pod: &str) -> ApiError {
    if let Some(e) = as_status(code, body) {
        return e;
    }
    let text = String::from_utf8_lossy(body).trim_end().to_string();
    match code {
        500 => ApiError::internal(text),
        400 => ApiError::bad_request(text),
        _ => generic_server_response(code, "pods/log", pod, &text),
    }
}

/// `errors.NewGenericServerResponse` with an empty verb, as the log checker calls it:
/// `the server could not find the requested resource ( pods/log web)`.
pub fn generic_server_response(code: u16, resource: &str, name: &str, server_message: &str) -> ApiError {
    let (reason, message) = generic_reason(code, server_message);
    ApiError {
        code,
        reason: reason.into(),
        message: format!("{message} ( {resource} {name})"),
        details: Some(json!({"name": name, "kind": resource})),
    }
}

fn generic_reason(code: u16, server_message: &str) -> (&'static str, String) {
    let fixed = |r: &'static str, m: &str| (r, m.to_string());
    match code {
        409 => fixed("Conflict", "the server reported a conflict"),
        404 => fixed("NotFound", "the server could not find the requested resource"),
        400 => fixed("BadRequest", "the server rejected our request for an unknown reason"),
        401 => fixed(
            "Unauthorized",
            "the server has asked for the client to provide credentials",
        ),
        403 => ("Forbidden", server_message.to_string()),
        405 => fixed(
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        ),
        422 => fixed(
            "Invalid",
            "the server rejected our request due to an error in our request",
        ),
        504 => fixed(
            "Timeout",
            "the server was unable to return a response in the time allotted, but may still be processing the request",
        ),
        429 => fixed(
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later",
        ),
        c if c >= 500 => (
            "InternalError",
            format!(
                "an error on the server ({}) has prevented the request from succeeding",
                Value::String(server_message.to_string())
            ),
        ),
        c => (
            "",
            format!("the server responded with the status code {c} but did not return more information"),
        ),
    }
}

/// The error of a refused upgrade: the agent's `Status` as it is, or its text as the message
/// of a `Status` with the agent's code (kubectl prints `Error from server (NotFound): <text>`),
/// where kube-apiserver would relay the bare text.
pub fn upgrade_error(code: u16, body: &[u8]) -> ApiError {
    if let Some(e) = as_status(code, body) {
        return e;
    }
    let text = String::from_utf8_lossy(body).trim().to_string();
    let (reason, generic) = generic_reason(code, &text);
    ApiError {
        code,
        reason: reason.into(),
        message: if text.is_empty() { generic } else { text },
        details: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_404_on_logs_becomes_the_generic_not_found_naming_pods_log() {
        let e = log_error(404, b"pod \"web\" does not exist\n", "web");
        assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
        assert_eq!(
            e.message,
            "the server could not find the requested resource ( pods/log web)"
        );
        assert_eq!(e.details, Some(json!({"name": "web", "kind": "pods/log"})));
    }

    #[test]
    fn agent_400_text_on_logs_is_the_message_of_a_bad_request() {
        let body = b"container \"app\" in pod \"web\" is waiting to start: ContainerCreating";
        let e = log_error(400, body, "web");
        assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));
        assert_eq!(e.message, String::from_utf8_lossy(body));
    }

    #[test]
    fn agent_500_text_on_logs_is_an_internal_error() {
        let e = log_error(500, b"disk on fire", "web");
        assert_eq!(
            (e.code, e.message.as_str()),
            (500, "Internal error occurred: disk on fire")
        );
    }

    #[test]
    fn agent_503_on_logs_quotes_the_agent_text() {
        let e = log_error(503, b"busy", "web");
        assert_eq!(e.reason, "InternalError");
        assert_eq!(
            e.message,
            "an error on the server (\"busy\") has prevented the request from succeeding ( pods/log web)"
        );
    }

    #[test]
    fn a_status_from_the_agent_is_relayed_as_it_is() {
        let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"no such container","reason":"NotFound","code":404}"#;
        for e in [log_error(404, body, "web"), upgrade_error(404, body)] {
            assert_eq!(
                (e.code, e.reason.as_str(), e.message.as_str()),
                (404, "NotFound", "no such container")
            );
        }
    }

    #[test]
    fn a_refused_upgrade_keeps_the_agent_text_as_message_with_its_code() {
        let e = upgrade_error(404, b"container not found (\"app\")\n");
        assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
        assert_eq!(e.message, "container not found (\"app\")");
        let empty = upgrade_error(401, b"");
        assert_eq!(
            empty.message,
            "the server has asked for the client to provide credentials"
        );
    }

    #[test]
    fn only_upgrade_headers_are_passed_to_the_agent() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "Upgrade".parse().unwrap());
        h.insert(header::UPGRADE, "SPDY/3.1".parse().unwrap());
        h.insert(header::AUTHORIZATION, "Bearer secret".parse().unwrap());
        h.insert("sec-websocket-protocol", "v5.channel.k8s.io".parse().unwrap());
        for v in ["v5.channel.k8s.io", "v4.channel.k8s.io"] {
            h.append("x-stream-protocol-version", v.parse().unwrap());
        }
        let out = upgrade_headers(&h);
        assert!(out.get(header::AUTHORIZATION).is_none());
        assert_eq!(out.get_all("x-stream-protocol-version").iter().count(), 2);
        assert_eq!(out.get("sec-websocket-protocol").unwrap(), "v5.channel.k8s.io");
        assert!(is_upgrade_request(&h));
    }

    #[test]
    fn a_request_without_connection_upgrade_is_not_an_upgrade() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, "websocket".parse().unwrap());
        assert!(!is_upgrade_request(&h));
        h.insert(header::CONNECTION, "keep-alive, Upgrade".parse().unwrap());
        assert!(is_upgrade_request(&h));
    }
}
