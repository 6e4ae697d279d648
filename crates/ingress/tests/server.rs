//! The Ingress server on loopback, in front of real upstream servers, routed by a fixed router:
//! forwarded headers, retry after a refused connection, 502 when every endpoint refuses, an
//! HTTPS backend, a WebSocket-style upgrade spliced both ways, 413 above the body limit.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use podway_ingress::server::{serve, RouterHandle};
use podway_ingress::{Decision, Protocol, RequestView, Router, Upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Sends everything to `endpoints` with `protocol`, limiting bodies to 16 bytes; with
/// `errors`, upstream 404s are answered by that endpoint.
struct Fixed {
    endpoints: Vec<SocketAddr>,
    protocol: Protocol,
    errors: Option<SocketAddr>,
}

impl Router for Fixed {
    fn decide(&self, request: &RequestView<'_>) -> Decision {
        Decision::Proxy(Box::new(Upstream {
            endpoints: self.endpoints.clone().into(),
            protocol: self.protocol,
            path_and_query: request.path.to_string(),
            host: None,
            forwarded_prefix: None,
            timeouts: Default::default(),
            max_body: Some(16),
            affinity: None,
            response_headers: vec![],
            intercept_errors: self.errors.map(|_| vec![404]).unwrap_or_default(),
            error_backend: self.errors.map(|e| vec![e].into()),
        }))
    }

    fn certificate(&self, _: &str) -> Option<(String, String)> {
        None
    }
}

/// An upstream answering with its `name`, the request line and its headers; a request with
/// `Upgrade` gets 101 and then every byte echoed.
async fn handle(name: &'static str, mut req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.headers().contains_key("upgrade") {
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(up) = upgrade.await {
                let mut io = TokioIo::new(up);
                let mut buf = [0u8; 64];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        let resp = Response::builder()
            .status(101)
            .header("connection", "upgrade")
            .header("upgrade", "echo")
            .body(Full::new(Bytes::new()))
            .unwrap();
        return Ok(resp);
    }
    let mut text = format!("{name}\n{} {}\n", req.method(), req.uri());
    let status = if req.uri().path() == "/missing" && name != "errors" {
        404
    } else {
        200
    };
    for (k, v) in req.headers() {
        text += &format!("{k}: {}\n", v.to_str().unwrap_or(""));
    }
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    Ok(resp)
}

/// An upstream on loopback, plain or TLS (a fresh self-signed certificate).
async fn upstream(name: &'static str, tls: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tls.then(|| {
        let key = rcgen::generate_simple_self_signed(vec!["upstream.local".into()]).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![key.cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into()),
            )
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    });
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(name, req));
                let builder = hyper::server::conn::http1::Builder::new();
                match acceptor {
                    Some(a) => {
                        if let Ok(s) = a.accept(stream).await {
                            let _ = builder.serve_connection(TokioIo::new(s), service).with_upgrades().await;
                        }
                    }
                    None => {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .with_upgrades()
                            .await;
                    }
                }
            });
        }
    });
    addr
}

/// A loopback port nothing listens on.
fn closed_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The Ingress server routed by `router`; its HTTP address. It stops with the test's runtime.
async fn ingress(router: Fixed) -> SocketAddr {
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let https = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = http.local_addr().unwrap();
    let handle = RouterHandle::new(Arc::new(router));
    tokio::spawn(serve(http, https, handle, std::future::pending()));
    addr
}

/// One raw HTTP/1.1 exchange on a new connection: the whole answer.
async fn raw(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: web.example.com\r\nConnection: close\r\n\r\n")
}

#[tokio::test]
async fn a_request_is_forwarded_with_the_forwarded_headers() {
    let up = upstream("one", false).await;
    let addr = ingress(Fixed {
        endpoints: vec![up],
        protocol: Protocol::Http,
        errors: None,
    })
    .await;
    let answer = raw(addr, &get("/hello?x=1")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("one\nGET /hello"), "{answer}");
    for header in [
        "x-forwarded-for: 127.0.0.1",
        "x-real-ip: 127.0.0.1",
        "x-forwarded-proto: http",
        "x-forwarded-host: web.example.com",
        "host: web.example.com",
    ] {
        assert!(answer.contains(header), "{header} missing in {answer}");
    }
    assert!(answer.contains("x-request-id: "), "{answer}");
}

#[tokio::test]
async fn a_refused_endpoint_is_skipped_and_all_refusing_is_502() {
    let up = upstream("alive", false).await;
    let addr = ingress(Fixed {
        endpoints: vec![closed_port(), up],
        protocol: Protocol::Http,
        errors: None,
    })
    .await;
    // Round-robin starts at either endpoint: every request still reaches the live one.
    for _ in 0..6 {
        let answer = raw(addr, &get("/")).await;
        assert!(answer.contains("\r\n\r\nalive\n"), "{answer}");
    }
    let dead = ingress(Fixed {
        endpoints: vec![closed_port(), closed_port()],
        protocol: Protocol::Http,
        errors: None,
    })
    .await;
    assert!(raw(dead, &get("/")).await.starts_with("HTTP/1.1 502"));
}

#[tokio::test]
async fn an_https_backend_is_reached_over_tls() {
    let up = upstream("secure", true).await;
    let addr = ingress(Fixed {
        endpoints: vec![up],
        protocol: Protocol::Https,
        errors: None,
    })
    .await;
    let answer = raw(addr, &get("/tls")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("secure\nGET /tls"), "{answer}");
}

#[tokio::test]
async fn an_upgrade_is_spliced_both_ways() {
    let up = upstream("ws", false).await;
    let addr = ingress(Fixed {
        endpoints: vec![up],
        protocol: Protocol::Http,
        errors: None,
    })
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: web.example.com\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"ping through the proxy").await.unwrap();
    let mut echoed = [0u8; 22];
    s.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"ping through the proxy");
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413_and_http2_is_spoken() {
    let up = upstream("one", false).await;
    let addr = ingress(Fixed {
        endpoints: vec![up],
        protocol: Protocol::Http,
        errors: None,
    })
    .await;
    let big = "POST / HTTP/1.1\r\nHost: w\r\nContent-Length: 17\r\nConnection: close\r\n\r\n01234567890123456";
    assert!(raw(addr, big).await.starts_with("HTTP/1.1 413"));

    // HTTP/2 with prior knowledge on the plain port.
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::builder()
        .uri("http://web.example.com/h2")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("one\nGET /h2") && body.contains("host: web.example.com"),
        "{body}"
    );
}

#[tokio::test]
async fn an_intercepted_error_is_answered_by_the_error_backend_with_its_code() {
    let (up, errors) = (upstream("one", false).await, upstream("errors", false).await);
    let addr = ingress(Fixed {
        endpoints: vec![up],
        protocol: Protocol::Http,
        errors: Some(errors),
    })
    .await;
    let answer = raw(addr, &get("/missing")).await;
    assert!(answer.contains("errors\nGET /missing"), "{answer}");
    assert!(
        answer.contains("x-code: 404") && answer.contains("x-original-uri: /missing"),
        "{answer}"
    );
    // Other answers pass untouched.
    assert!(raw(addr, &get("/found")).await.contains("one\nGET /found"));
}
