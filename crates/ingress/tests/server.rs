//! The Ingress server on loopback, in front of real upstream servers, routed by a fixed router:
//! forwarded headers, retry after a refused connection, 502 when every endpoint refuses, an
//! HTTPS backend, a WebSocket-style upgrade spliced both ways, 413 above the body limit,
//! round-robin, redirects and direct answers, certificates by SNI with HTTP/2 by ALPN, and a
//! table swapped under a keep-alive client.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
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
/// `errors`, upstream 404s are answered by that endpoint. `/redirect` is redirected and
/// `/respond` answered directly.
struct Fixed {
    endpoints: Vec<SocketAddr>,
    protocol: Protocol,
    errors: Option<SocketAddr>,
}

/// A fixed router with a certificate (chain, key) per SNI name.
struct WithCerts(Fixed, Vec<(&'static str, String, String)>);

impl Router for WithCerts {
    fn decide(&self, request: &RequestView<'_>) -> Decision {
        self.0.decide(request)
    }

    fn certificate(&self, name: &str) -> Option<(String, String)> {
        let (_, chain, key) = self.1.iter().find(|(n, _, _)| *n == name)?;
        Some((chain.clone(), key.clone()))
    }
}

impl Router for Fixed {
    fn decide(&self, request: &RequestView<'_>) -> Decision {
        match request.path {
            "/redirect" => {
                return Decision::Redirect {
                    status: 308,
                    location: format!("https://{}/redirect", request.host),
                }
            }
            "/respond" => {
                return Decision::Respond {
                    status: 503,
                    headers: vec![("x-why".into(), "no endpoints".into())],
                    body: "nothing here\n".into(),
                }
            }
            _ => {}
        }
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
        let config = podway_tls::self_signed_server_config(vec!["upstream.local".to_string()]).unwrap();
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
    served(Arc::new(router)).await.0
}

/// The Ingress server routed by `router`: its HTTP and HTTPS addresses and its handle. It
/// stops when the test's runtime ends.
async fn served(router: Arc<dyn Router>) -> (SocketAddr, SocketAddr, RouterHandle) {
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let https = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr, tls_addr) = (http.local_addr().unwrap(), https.local_addr().unwrap());
    let handle = RouterHandle::new(router);
    // Dropping `serve` with the runtime drops its stop signal, which ends its threads.
    tokio::spawn(serve(http, https, handle.clone(), std::future::pending()));
    (addr, tls_addr, handle)
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

/// A keep-alive HTTP/1.1 client connection to `addr`.
async fn keep_alive(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// GET `path` on a kept connection: status and body.
async fn fetch(sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>, path: &str) -> (u16, String) {
    sender.ready().await.unwrap();
    let req = Request::builder()
        .uri(path)
        .header("host", "web.example.com")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn requests_alternate_between_two_endpoints() {
    let (one, two) = (upstream("one", false).await, upstream("two", false).await);
    let addr = ingress(Fixed {
        endpoints: vec![one, two],
        protocol: Protocol::Http,
        errors: None,
    })
    .await;
    // One kept connection stays on one of the server's event loops, so its turns are in order.
    let mut client = keep_alive(addr).await;
    let mut names = Vec::new();
    for _ in 0..6 {
        let (status, body) = fetch(&mut client, "/").await;
        assert_eq!(status, 200, "{body}");
        names.push(body.lines().next().unwrap_or("").to_string());
    }
    for pair in names.windows(2) {
        assert_ne!(pair[0], pair[1], "not alternating: {names:?}");
    }
    assert!(names.iter().all(|n| n == "one" || n == "two"), "{names:?}");
}

/// `/a...` to one list of endpoints, everything else to another.
struct TwoServices(Fixed, Fixed);

impl Router for TwoServices {
    fn decide(&self, request: &RequestView<'_>) -> Decision {
        match request.path.starts_with("/a") {
            true => self.0.decide(request),
            false => self.1.decide(request),
        }
    }

    fn certificate(&self, _: &str) -> Option<(String, String)> {
        None
    }
}

#[tokio::test]
async fn each_service_keeps_its_own_turns_when_requests_interleave() {
    let mut ups = Vec::new();
    for name in ["a1", "a2", "b1", "b2"] {
        ups.push(upstream(name, false).await);
    }
    let service = |endpoints: &[SocketAddr]| Fixed {
        endpoints: endpoints.to_vec(),
        protocol: Protocol::Http,
        errors: None,
    };
    let router = TwoServices(service(&ups[..2]), service(&ups[2..]));
    let (addr, _, _handle) = served(Arc::new(router)).await;
    let mut client = keep_alive(addr).await;
    // A then B, in strict alternation: one shared turn would send every A request to the
    // same endpoint.
    let mut a_names = Vec::new();
    for _ in 0..4 {
        let (_, body) = fetch(&mut client, "/a").await;
        a_names.push(body.lines().next().unwrap_or("").to_string());
        let (_, body) = fetch(&mut client, "/b").await;
        assert!(body.starts_with("b1\n") || body.starts_with("b2\n"), "{body}");
    }
    for pair in a_names.windows(2) {
        assert_ne!(pair[0], pair[1], "A's endpoints do not alternate: {a_names:?}");
    }
}

#[tokio::test]
async fn redirects_and_direct_answers_do_not_reach_the_endpoint() {
    let addr = ingress(Fixed {
        endpoints: vec![closed_port()],
        protocol: Protocol::Http,
        errors: None,
    })
    .await;
    let redirect = raw(addr, &get("/redirect")).await;
    assert!(redirect.starts_with("HTTP/1.1 308"), "{redirect}");
    assert!(
        redirect.contains("location: https://web.example.com/redirect\r\n"),
        "{redirect}"
    );
    let answer = raw(addr, &get("/respond")).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("x-why: no endpoints\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nnothing here\n"), "{answer}");
}

/// A TLS connection to `addr` naming `sni`, offering h2 and http/1.1 by ALPN.
async fn tls_connect(addr: SocketAddr, sni: &str) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut config = podway_tls::accept_any_client_config().unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let stream = TcpStream::connect(addr).await.unwrap();
    let name = podway_tls::server_name(sni).unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .unwrap()
}

#[tokio::test]
async fn tls_serves_the_certificate_sni_names_and_speaks_http2_by_alpn() {
    let up = upstream("one", false).await;
    let certs: Vec<_> = ["a.example.com", "b.example.com"]
        .into_iter()
        .map(|name| {
            let key = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
            (name, key.cert.pem(), key.signing_key.serialize_pem())
        })
        .collect();
    let ders: Vec<Vec<u8>> = certs
        .iter()
        .map(|(_, pem, _)| {
            let der = rustls_pemfile::certs(&mut pem.as_bytes()).next().unwrap().unwrap();
            der.to_vec()
        })
        .collect();
    let router = WithCerts(
        Fixed {
            endpoints: vec![up],
            protocol: Protocol::Http,
            errors: None,
        },
        certs,
    );
    let (_, tls_addr, _handle) = served(Arc::new(router)).await;
    let served_cert = |s: &tokio_rustls::client::TlsStream<TcpStream>| -> Vec<u8> {
        s.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    };
    // Twice each: the second handshake is served from the parsed-key cache.
    for _ in 0..2 {
        for (i, name) in ["a.example.com", "b.example.com"].into_iter().enumerate() {
            let s = tls_connect(tls_addr, name).await;
            assert!(served_cert(&s) == ders[i], "{name} got another certificate");
        }
    }
    let other = tls_connect(tls_addr, "c.example.com").await;
    let fake = served_cert(&other);
    assert!(
        fake != ders[0] && fake != ders[1],
        "an unknown name got an Ingress certificate"
    );
    let subject = b"Kubernetes Ingress Controller Fake Certificate";
    assert!(
        fake.windows(subject.len()).any(|w| w == subject),
        "not ingress-nginx's default subject"
    );

    let s = tls_connect(tls_addr, "b.example.com").await;
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::builder()
        .uri("https://b.example.com/secure")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("one\nGET /secure"), "{body}");
    assert!(body.contains("x-forwarded-proto: https"), "{body}");
    assert!(body.contains("x-forwarded-host: b.example.com"), "{body}");
}

#[tokio::test]
async fn a_table_swapped_under_kept_connections_fails_no_request() {
    let (one, two) = (upstream("one", false).await, upstream("two", false).await);
    let route = |endpoint| {
        Arc::new(Fixed {
            endpoints: vec![endpoint],
            protocol: Protocol::Http,
            errors: None,
        })
    };
    let (addr, _, handle) = served(route(one)).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (stop, answered) = (stop.clone(), answered.clone());
        clients.push(tokio::spawn(async move {
            let mut client = keep_alive(addr).await;
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = fetch(&mut client, "/").await;
                assert_eq!(status, 200, "{body}");
                assert!(body.starts_with("one\n") || body.starts_with("two\n"), "{body}");
                answered.fetch_add(1, Ordering::Relaxed);
            }
            client
        }));
    }
    // Each swap waits for an answer since the last one, so swaps land between requests in
    // flight on every connection.
    for i in 0..100 {
        let seen = answered.load(Ordering::Relaxed);
        while answered.load(Ordering::Relaxed) == seen {
            tokio::task::yield_now().await;
        }
        handle.store(if i % 2 == 0 { route(two) } else { route(one) });
    }
    handle.store(route(two));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        let mut client = c.await.unwrap();
        // The same kept connection now sees the last table.
        let (status, body) = fetch(&mut client, "/").await;
        assert_eq!((status, body.lines().next()), (200, Some("two")), "{body}");
    }
}

#[tokio::test]
async fn a_streamed_body_is_read_first_refused_over_the_limit_and_replayed_under_it() {
    let up = upstream("alive", false).await;
    let addr = ingress(Fixed {
        endpoints: vec![closed_port(), up],
        protocol: Protocol::Http,
        errors: None,
    })
    .await;
    let chunked = |body: &str| {
        format!(
            "POST /upload HTTP/1.1\r\nHost: web.example.com\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        )
    };
    // 17 bytes in chunks against a limit of 16: refused without an endpoint answering.
    let answer = raw(addr, &chunked("01234567890123456")).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Under the limit it is forwarded whole, with its length, even past a refusing endpoint.
    for _ in 0..4 {
        let answer = raw(addr, &chunked("0123456789")).await;
        assert!(answer.contains("alive\nPOST /upload"), "{answer}");
        assert!(answer.contains("content-length: 10\n"), "{answer}");
    }
}
