//! Accepting connections (TLS, the caller rule), routing the kubelet paths, and the upgrade
//! handshakes that hand a connection to exec/attach or port-forward.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::remotecommand::{self, Kind};
use super::tls::{self, KubeletTls};
use super::{logs, portforward, websocket, PodStreams, StreamError};

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// Serves the kubelet API on `listener` until `shutdown` resolves; then stops accepting and
/// ends every open connection, streams included.
pub async fn serve(
    listener: TcpListener,
    tls: KubeletTls,
    streams: Arc<dyn PodStreams>,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("kubelet endpoint: accept: {e}");
                    continue;
                }
            },
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, streams, stop) = (tls.acceptor.clone(), streams.clone(), stop.clone());
        connections.spawn(async move {
            if let Err(e) = connection(tcp, acceptor, streams, stop).await {
                tracing::debug!("kubelet endpoint: connection from {peer}: {e}");
            }
        });
    }
    let _ = stop_tx.send(true);
    connections.shutdown().await;
}

async fn connection(
    tcp: tokio::net::TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    streams: Arc<dyn PodStreams>,
    stop: watch::Receiver<bool>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let tls = acceptor.accept(tcp).await?;
    let caller = tls::caller(tls.get_ref().1.peer_certificates());
    let mut stopped = stop.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let (caller, streams, stop) = (caller.clone(), streams.clone(), stop.clone());
        async move {
            let resp = match tls::refusal(&caller, req.method()) {
                Some((code, text)) => text_response(code, text),
                None => handle(req, streams, stop).await,
            };
            Ok::<_, std::convert::Infallible>(resp)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tls), service)
        .with_upgrades();
    tokio::select! {
        r = conn => r?,
        _ = stopped.wait_for(|s| *s) => {}
    }
    Ok(())
}

/// A kubelet path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Logs {
        namespace: String,
        pod: String,
        container: String,
    },
    Exec {
        namespace: String,
        pod: String,
        container: String,
    },
    Attach {
        namespace: String,
        pod: String,
        container: String,
    },
    PortForward {
        namespace: String,
        pod: String,
    },
}

/// The route of `path`; the kubelet's forms with a pod UID segment are accepted too.
fn route(path: &str) -> Option<Route> {
    let parts: Vec<String> = path.trim_start_matches('/').split('/').map(percent_decode).collect();
    let p: Vec<&str> = parts.iter().map(String::as_str).collect();
    let own = |s: &str| s.to_string();
    match p.as_slice() {
        ["containerLogs", ns, pod, c] => Some(Route::Logs {
            namespace: own(ns),
            pod: own(pod),
            container: own(c),
        }),
        ["exec", ns, pod, c] | ["exec", ns, pod, _, c] => Some(Route::Exec {
            namespace: own(ns),
            pod: own(pod),
            container: own(c),
        }),
        ["attach", ns, pod, c] | ["attach", ns, pod, _, c] => Some(Route::Attach {
            namespace: own(ns),
            pod: own(pod),
            container: own(c),
        }),
        ["portForward", ns, pod] | ["portForward", ns, pod, _] => Some(Route::PortForward {
            namespace: own(ns),
            pod: own(pod),
        }),
        _ => None,
    }
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn query_pairs(req: &Request<Incoming>) -> Vec<(String, String)> {
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

async fn handle(req: Request<Incoming>, streams: Arc<dyn PodStreams>, stop: watch::Receiver<bool>) -> Response<Body> {
    let Some(route) = route(req.uri().path()) else {
        return text_response(404, "404 page not found".into());
    };
    let streaming = matches!(req.method(), &Method::GET | &Method::POST);
    match route {
        Route::Logs { .. } if req.method() != Method::GET => text_response(405, "405: Method Not Allowed".into()),
        Route::Logs {
            namespace,
            pod,
            container,
        } => container_logs(&req, streams, stop, &namespace, &pod, &container).await,
        _ if !streaming => text_response(405, "405: Method Not Allowed".into()),
        Route::Exec {
            namespace,
            pod,
            container,
        } => {
            let query = query_pairs(&req);
            let command: Vec<String> = query
                .iter()
                .filter(|(k, _)| k == "command")
                .map(|(_, v)| v.clone())
                .collect();
            remote_command(req, streams, stop, &namespace, &pod, &container, Kind::Exec { command }).await
        }
        Route::Attach {
            namespace,
            pod,
            container,
        } => remote_command(req, streams, stop, &namespace, &pod, &container, Kind::Attach).await,
        Route::PortForward { namespace, pod } => port_forward(req, streams, stop, namespace, pod),
    }
}

async fn container_logs(
    req: &Request<Incoming>,
    streams: Arc<dyn PodStreams>,
    stop: watch::Receiver<bool>,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Response<Body> {
    let options = match logs::parse_options(&query_pairs(req)) {
        Ok(o) => o,
        Err((code, body)) => return text_response(code, body),
    };
    let source = match streams.log(namespace, pod, container, options.previous).await {
        Ok(s) => s,
        Err(e) => return error_response(&e),
    };
    let (tx, rx) = mpsc::channel(8);
    spawn_until_stopped(stop, async move {
        logs::stream(&source.path, &options, source.stopped, tx).await
    });
    let chunks = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item.map(Frame::data), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(BodyExt::boxed_unsync(StreamBody::new(chunks)))
        .expect("static parts")
}

/// Which upgrade a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Upgrade {
    WebSocket,
    Spdy,
    None,
}

fn upgrade_of(headers: &HeaderMap) -> Upgrade {
    let upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if upgrade.contains("websocket") {
        Upgrade::WebSocket
    } else if upgrade.contains("spdy/3.1") {
        Upgrade::Spdy
    } else {
        Upgrade::None
    }
}

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect()
}

/// Checks a WebSocket handshake and picks the subprotocol; the 101 response, or the refusal.
fn websocket_handshake(headers: &HeaderMap, supported: &[&'static str]) -> Result<Response<Body>, Response<Body>> {
    let version = headers
        .get("sec-websocket-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(key) = headers.get("sec-websocket-key").and_then(|v| v.to_str().ok()) else {
        return Err(text_response(
            400,
            "unable to upgrade: missing Sec-WebSocket-Key".into(),
        ));
    };
    if version.trim() != "13" {
        return Err(text_response(
            400,
            "unable to upgrade: unsupported websocket version (want 13)".into(),
        ));
    }
    let offered = header_values(headers, "sec-websocket-protocol");
    let Some(protocol) = websocket::choose_protocol(&offered, supported) else {
        return Err(text_response(
            400,
            format!(
                "unable to upgrade: unable to negotiate protocol: client supports {:?}, server supports {:?}",
                offered, supported
            ),
        ));
    };
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header("Sec-WebSocket-Accept", websocket::accept_key(key))
        .header("Sec-WebSocket-Protocol", protocol)
        .body(empty())
        .expect("static parts"))
}

#[allow(clippy::too_many_arguments)]
async fn remote_command(
    mut req: Request<Incoming>,
    streams: Arc<dyn PodStreams>,
    stop: watch::Receiver<bool>,
    namespace: &str,
    pod: &str,
    container: &str,
    kind: Kind,
) -> Response<Body> {
    match upgrade_of(req.headers()) {
        Upgrade::WebSocket => {}
        Upgrade::Spdy => {
            return text_response(
                400,
                "unable to upgrade: this node serves exec and attach over WebSocket (v5.channel.k8s.io) only".into(),
            )
        }
        Upgrade::None => return text_response(400, "Upgrade request required".into()),
    }
    let io = match remotecommand::io_request(&query_pairs(&req)) {
        Ok(io) => io,
        Err(e) => return text_response(400, e),
    };
    let response = match websocket_handshake(req.headers(), &remotecommand::PROTOCOLS) {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    let protocol = response.headers()["Sec-WebSocket-Protocol"]
        .to_str()
        .unwrap_or_default()
        .to_string();
    let spawned = match &kind {
        Kind::Exec { command } => streams.exec(namespace, pod, container, command.clone(), io).await,
        Kind::Attach => streams.attach(namespace, pod, container, io).await,
    };
    let spawned = match spawned {
        Ok(s) => s,
        Err(e) => return error_response(&e),
    };
    let upgrade = hyper::upgrade::on(&mut req);
    spawn_until_stopped(stop, async move {
        match upgrade.await {
            Ok(upgraded) => remotecommand::serve(TokioIo::new(upgraded), &protocol, io, kind, spawned).await,
            Err(e) => tracing::debug!("kubelet endpoint: upgrade failed: {e}"),
        }
    });
    response
}

fn port_forward(
    mut req: Request<Incoming>,
    streams: Arc<dyn PodStreams>,
    stop: watch::Receiver<bool>,
    namespace: String,
    pod: String,
) -> Response<Body> {
    let (response, tunnelled) = match upgrade_of(req.headers()) {
        Upgrade::WebSocket => match websocket_handshake(req.headers(), &[portforward::TUNNEL_PROTOCOL]) {
            Ok(r) => (r, true),
            Err(refusal) => return refusal,
        },
        Upgrade::Spdy => {
            // As the kubelet's handshake: no version offered is a legacy client and fine;
            // offered ones must include ours.
            let offered: Vec<&str> = header_values(req.headers(), "x-stream-protocol-version")
                .into_iter()
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .collect();
            if !offered.is_empty() && !offered.contains(&portforward::PROTOCOL) {
                let mut refusal = text_response(
                    403,
                    format!(
                        "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server accepts {:?}",
                        [portforward::PROTOCOL]
                    ),
                );
                refusal.headers_mut().insert(
                    "X-Accepted-Stream-Protocol-Versions",
                    http::HeaderValue::from_static(portforward::PROTOCOL),
                );
                return refusal;
            }
            let mut r = Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header(header::CONNECTION, "Upgrade")
                .header(header::UPGRADE, "SPDY/3.1");
            if !offered.is_empty() {
                r = r.header("X-Stream-Protocol-Version", portforward::PROTOCOL);
            }
            (r.body(empty()).expect("static parts"), false)
        }
        Upgrade::None => return text_response(400, "Upgrade request required".into()),
    };
    let upgrade = hyper::upgrade::on(&mut req);
    spawn_until_stopped(stop, async move {
        let io = match upgrade.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => return tracing::debug!("kubelet endpoint: upgrade failed: {e}"),
        };
        if tunnelled {
            portforward::serve(portforward::tunnel(io), streams, namespace, pod).await
        } else {
            portforward::serve(io, streams, namespace, pod).await
        }
    });
    response
}

/// Runs `work` in its own task until it ends or the server stops.
fn spawn_until_stopped(mut stop: watch::Receiver<bool>, work: impl Future<Output = ()> + Send + 'static) {
    tokio::spawn(async move {
        tokio::select! {
            _ = work => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    });
}

fn empty() -> Body {
    Full::new(Bytes::new()).map_err(|never| match never {}).boxed_unsync()
}

fn text_response(code: u16, text: String) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(
            Full::new(Bytes::from(text))
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .expect("static parts")
}

fn error_response(e: &StreamError) -> Response<Body> {
    text_response(e.code, e.message.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_paths_route_with_and_without_a_uid_segment() {
        assert_eq!(
            route("/containerLogs/default/web/app"),
            Some(Route::Logs {
                namespace: "default".into(),
                pod: "web".into(),
                container: "app".into()
            })
        );
        let exec = Some(Route::Exec {
            namespace: "ns".into(),
            pod: "p".into(),
            container: "c".into(),
        });
        assert_eq!(route("/exec/ns/p/c"), exec);
        assert_eq!(route("/exec/ns/p/1234-uid/c"), exec);
        assert_eq!(
            route("/portForward/ns/p"),
            Some(Route::PortForward {
                namespace: "ns".into(),
                pod: "p".into()
            })
        );
        assert_eq!(
            route("/attach/ns/p/c").map(|r| matches!(r, Route::Attach { .. })),
            Some(true)
        );
        assert_eq!(route("/containerLogs/ns/p"), None);
        assert_eq!(route("/pods"), None);
    }

    #[test]
    fn path_segments_are_percent_decoded_but_plus_stays_a_plus() {
        assert_eq!(
            route("/containerLogs/a%2Db/web+1/app"),
            Some(Route::Logs {
                namespace: "a-b".into(),
                pod: "web+1".into(),
                container: "app".into()
            })
        );
    }

    #[test]
    fn upgrade_kinds_are_recognised_case_insensitively() {
        let mut h = HeaderMap::new();
        assert_eq!(upgrade_of(&h), Upgrade::None);
        h.insert(header::UPGRADE, "WebSocket".parse().unwrap());
        assert_eq!(upgrade_of(&h), Upgrade::WebSocket);
        h.insert(header::UPGRADE, "SPDY/3.1".parse().unwrap());
        assert_eq!(upgrade_of(&h), Upgrade::Spdy);
    }

    #[test]
    fn websocket_handshake_echoes_the_chosen_protocol_and_the_accept_key() {
        let mut h = HeaderMap::new();
        h.insert("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==".parse().unwrap());
        h.insert("sec-websocket-version", "13".parse().unwrap());
        h.insert("sec-websocket-protocol", "v5.channel.k8s.io".parse().unwrap());
        let r = websocket_handshake(&h, &remotecommand::PROTOCOLS).unwrap();
        assert_eq!(r.status(), 101);
        assert_eq!(r.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(r.headers()["sec-websocket-protocol"], "v5.channel.k8s.io");
        h.insert("sec-websocket-protocol", "channel.k8s.io".parse().unwrap());
        assert_eq!(
            websocket_handshake(&h, &remotecommand::PROTOCOLS).unwrap_err().status(),
            400
        );
    }
}
