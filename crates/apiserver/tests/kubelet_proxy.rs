//! The API server proxies `pods/log` and `pods/exec` to the pod's node agent: a real API server
//! on 127.0.0.1 with a SQLite store, a Node whose kubelet endpoint is a fake agent run by the
//! test (TLS, self-signed, requiring a client certificate from the cluster CA), and a Pod bound
//! to it. Everything stops when the test's runtime ends; the data directory is a temp dir.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use podway_apiserver::{Config, Pki, Running, ServiceSettings};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_rustls::{TlsAcceptor, TlsConnector};

type AgentBody = BoxBody<Bytes, Infallible>;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(pem: &str) -> Vec<CertificateDer<'static>> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

fn key(pem: &str) -> PrivateKeyDer<'static> {
    rustls_pemfile::private_key(&mut pem.as_bytes()).unwrap().unwrap()
}

/// The fake agent: one behaviour per path, echoing what reached it.
struct FakeAgent {
    /// The client certificate the API server must present.
    expected_client: CertificateDer<'static>,
    /// Released by the test once it has received the first chunk of a followed log.
    more: Notify,
    /// Notified when the reader of a followed log has gone away.
    reader_gone: Notify,
}

fn reply(code: u16, body: impl Into<Bytes>) -> Response<AgentBody> {
    Response::builder()
        .status(code)
        .body(Full::new(body.into()).boxed())
        .unwrap()
}

async fn agent_serve(
    agent: Arc<FakeAgent>,
    mut req: Request<Incoming>,
    presented: Option<CertificateDer<'static>>,
) -> Response<AgentBody> {
    if presented.as_ref() != Some(&agent.expected_client) {
        return reply(403, "not the kubelet client certificate");
    }
    let path = req.uri().path().to_string();
    let target = req.uri().to_string();
    if path.starts_with("/containerLogs/") {
        if path.ends_with("/missing") {
            return reply(404, "container \"missing\" not found\n");
        }
        if path.ends_with("/hangup") {
            // A log that never ends: the agent learns when the reader is gone.
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
            tx.send(Ok(Frame::data(Bytes::from("first\n")))).await.unwrap();
            tokio::spawn(async move {
                tx.closed().await;
                agent.reader_gone.notify_one();
            });
            let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
            return Response::new(body.boxed());
        }
        if path.ends_with("/follow") {
            // The first chunk now, the rest only once the test has received the first.
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
            tx.send(Ok(Frame::data(Bytes::from("first\n")))).await.unwrap();
            tokio::spawn(async move {
                agent.more.notified().await;
                let _ = tx.send(Ok(Frame::data(Bytes::from("second\n")))).await;
            });
            let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
            return Response::new(body.boxed());
        }
        return reply(200, target);
    }
    let Some(protocol) = req.headers().get(header::UPGRADE).cloned() else {
        return reply(400, "Upgrade request required");
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let mut io = TokioIo::new(on_upgrade.await.unwrap());
        let mut buf = [0u8; 1024];
        while let Ok(n) = io.read(&mut buf).await {
            if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    let mut resp = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, protocol)
        .header("x-agent-saw", target);
    if let Some(p) = req.headers().get(header::SEC_WEBSOCKET_PROTOCOL) {
        resp = resp.header(header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    resp.body(Empty::new().boxed()).unwrap()
}

/// Start the fake agent on an ephemeral loopback port; returns the port.
async fn start_agent(pki: &Pki, agent: Arc<FakeAgent>) -> u16 {
    let serving = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certs(&pki.ca_cert).remove(0)).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![serving.cert.der().clone()],
            PrivateKeyDer::try_from(serving.signing_key.serialize_der()).unwrap(),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, agent) = (acceptor.clone(), agent.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let presented = tls.get_ref().1.peer_certificates().and_then(|c| c.first().cloned());
                let service = service_fn(move |req| {
                    let (agent, presented) = (agent.clone(), presented.clone());
                    async move { Ok::<_, Infallible>(agent_serve(agent, req, presented).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    port
}

/// A client of the API server, authenticated with the admin certificate.
struct ApiClient {
    running: Running,
    tls: TlsConnector,
}

impl ApiClient {
    fn new(running: Running) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(certs(&running.pki.ca_cert).remove(0)).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(certs(&running.pki.admin_cert), key(&running.pki.admin_key))
            .unwrap();
        ApiClient {
            running,
            tls: TlsConnector::from(Arc::new(config)),
        }
    }

    /// Send one request on a fresh connection.
    async fn send(&self, req: Request<Full<Bytes>>) -> Response<Incoming> {
        let tcp = TcpStream::connect(self.running.addr).await.unwrap();
        let name = ServerName::IpAddress(self.running.addr.ip().into());
        let tls = self.tls.connect(name, tcp).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
        tokio::spawn(conn.with_upgrades());
        sender.send_request(req).await.unwrap()
    }

    async fn request(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Bytes) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.running.addr.to_string())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.map(|b| b.to_string()).unwrap_or_default())))
            .unwrap();
        let resp = self.send(req).await;
        let code = resp.status().as_u16();
        (code, resp.into_body().collect().await.unwrap().to_bytes())
    }
}

/// An API server with node `n1` (kubelet at the fake agent) and pod `default/web` on it.
async fn cluster(dir: &std::path::Path) -> (ApiClient, Arc<FakeAgent>) {
    let store = Arc::new(podway_store::sqlite::SqliteStore::open(&dir.join("state.db")).unwrap());
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        advertise: None,
        pki_dir: dir.join("pki"),
        extra_names: Vec::new(),
        store,
        services: ServiceSettings::default(),
    };
    let running = podway_apiserver::start(config, std::future::pending()).await.unwrap();
    let agent = Arc::new(FakeAgent {
        expected_client: certs(&running.pki.kubelet_client_cert).remove(0),
        more: Notify::new(),
        reader_gone: Notify::new(),
    });
    let port = start_agent(&running.pki, agent.clone()).await;
    let api = ApiClient::new(running);
    let node = json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
        "status": {
            "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        },
    });
    let (code, body) = api.request(Method::POST, "/api/v1/nodes", Some(node)).await;
    assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
    let containers: Vec<Value> = ["app", "missing", "follow", "hangup"]
        .iter()
        .map(|n| json!({"name": n, "image": "busybox"}))
        .collect();
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"nodeName": "n1", "containers": containers},
    });
    let (code, body) = api
        .request(Method::POST, "/api/v1/namespaces/default/pods", Some(pod))
        .await;
    assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
    (api, agent)
}

#[tokio::test]
async fn logs_exec_and_agent_errors_go_through_the_api_server() {
    let dir = tempfile::tempdir().unwrap();
    let (api, agent) = cluster(dir.path()).await;
    let pod = "/api/v1/namespaces/default/pods/web";

    // Logs: the kubelet path and the mapped query reach the agent; its body comes back.
    let (code, body) = api
        .request(
            Method::GET,
            &format!("{pod}/log?container=app&tailLines=3&timestamps=true&sinceSeconds=60"),
            None,
        )
        .await;
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        body,
        "/containerLogs/default/web/app?sinceSeconds=60&tailLines=3&timestamps=true"
    );

    // The agent's 404 comes back as a Status, worded as kube-apiserver words it.
    let (code, body) = api
        .request(Method::GET, &format!("{pod}/log?container=missing"), None)
        .await;
    let status: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((code, status["kind"].as_str()), (404, Some("Status")));
    assert_eq!(status["reason"], "NotFound");
    assert_eq!(
        status["message"],
        "the server could not find the requested resource ( pods/log web)"
    );

    // Validation happens before the agent is asked.
    let (code, _) = api
        .request(Method::GET, &format!("{pod}/log?container=app&tailLines=-1"), None)
        .await;
    assert_eq!(code, 422);

    // A followed log streams: the first chunk arrives while the agent still holds the rest.
    let req = Request::builder()
        .uri(format!("{pod}/log?container=follow&follow=true"))
        .header(header::HOST, "x")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let mut body = api.send(req).await.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "first\n");
    agent.more.notify_one();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, "second\n");

    // A client that stops reading a followed log releases the agent's stream.
    let req = Request::builder()
        .uri(format!("{pod}/log?container=hangup&follow=true"))
        .header(header::HOST, "x")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let mut body = api.send(req).await.into_body();
    assert_eq!(body.frame().await.unwrap().unwrap().into_data().unwrap(), "first\n");
    drop(body);
    tokio::time::timeout(std::time::Duration::from_secs(10), agent.reader_gone.notified())
        .await
        .expect("the agent's log stream ends when the client goes");

    // An exec upgrade: 101 with the agent's headers, then bytes round-trip.
    let req = Request::builder()
        .uri(format!("{pod}/exec?command=cat&container=app&stdin=true&stdout=true"))
        .header(header::HOST, "x")
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_VERSION, "13")
        .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
        .header(header::SEC_WEBSOCKET_PROTOCOL, "v5.channel.k8s.io")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let mut resp = api.send(req).await;
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(resp.headers()[header::SEC_WEBSOCKET_PROTOCOL], "v5.channel.k8s.io");
    assert_eq!(
        resp.headers()["x-agent-saw"],
        "/exec/default/web/app?command=cat&input=1&output=1"
    );
    let mut io = TokioIo::new(hyper::upgrade::on(&mut resp).await.unwrap());
    io.write_all(b"hello through the proxy").await.unwrap();
    let mut echoed = [0u8; 23];
    io.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"hello through the proxy");

    // Port-forward over SPDY (POST), as kubectl falls back to.
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("{pod}/portforward"))
        .header(header::HOST, "x")
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "SPDY/3.1")
        .header("x-stream-protocol-version", "portforward.k8s.io")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = api.send(req).await;
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(resp.headers()[header::UPGRADE], "SPDY/3.1");
    assert_eq!(resp.headers()["x-agent-saw"], "/portForward/default/web");

    // An exec without an upgrade is refused before the agent is asked.
    let (code, body) = api
        .request(Method::GET, &format!("{pod}/exec?command=ls&container=app"), None)
        .await;
    let status: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (code, status["message"].as_str()),
        (400, Some("Upgrade request required"))
    );
}
