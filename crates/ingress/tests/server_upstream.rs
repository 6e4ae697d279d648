//! The Ingress server's HTTP/1.1 exchange with endpoints that answer from a script on raw TCP:
//! kept connections the endpoint closed, chunked and large bodies, HEAD, `Connection: close`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use podway_ingress::server::{serve, RouterHandle};
use podway_ingress::{Decision, Protocol, RequestView, Router, Upstream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Everything to one endpoint, over plain HTTP or (with `true`) HTTPS.
struct To(SocketAddr, bool);

impl Router for To {
    fn decide(&self, request: &RequestView<'_>) -> Decision {
        Decision::Proxy(Box::new(Upstream {
            endpoints: vec![self.0].into(),
            protocol: if self.1 { Protocol::Https } else { Protocol::Http },
            path_and_query: request.path.to_string(),
            host: None,
            forwarded_prefix: None,
            timeouts: Default::default(),
            max_body: None,
            affinity: None,
            response_headers: vec![],
            intercept_errors: vec![],
            error_backend: None,
        }))
    }

    fn certificate(&self, _: &str) -> Option<(String, String)> {
        None
    }
}

/// What a scripted endpoint saw: connections accepted and request heads read.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    heads: Mutex<Vec<String>>,
}

/// An endpoint answering the n-th request on any connection with `answers[n % len]` (each a
/// list of writes); with `close_after`, it closes each connection after that many answers.
async fn scripted(answers: Vec<Vec<Vec<u8>>>, close_after: Option<usize>) -> (SocketAddr, Arc<Seen>) {
    scripted_with(answers, close_after, None).await
}

/// [`scripted`], over TLS with `tls` (a fresh self-signed certificate).
async fn scripted_with(
    answers: Vec<Vec<Vec<u8>>>,
    close_after: Option<usize>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let (answers, counter) = (Arc::new(answers), Arc::new(AtomicUsize::new(0)));
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            s.connections.fetch_add(1, Ordering::SeqCst);
            let (s, answers, counter, tls) = (s.clone(), answers.clone(), counter.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            answer_on(stream, &s, &answers, &counter, close_after).await;
                        }
                    }
                    None => answer_on(stream, &s, &answers, &counter, close_after).await,
                }
            });
        }
    });
    (addr, seen)
}

/// One scripted endpoint connection: reads request heads and writes the answers in turn.
async fn answer_on<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    seen: &Seen,
    answers: &[Vec<Vec<u8>>],
    counter: &AtomicUsize,
    close_after: Option<usize>,
) {
    let mut served = 0;
    let mut buf = Vec::new();
    loop {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head: Vec<u8> = buf.drain(..end).collect();
        seen.heads
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(&head).into_owned());
        let n = counter.fetch_add(1, Ordering::SeqCst);
        for write in &answers[n % answers.len()] {
            if stream.write_all(write).await.is_err() {
                return;
            }
            let _ = stream.flush().await;
        }
        served += 1;
        if close_after == Some(served) {
            return;
        }
    }
}

async fn ingress(endpoint: SocketAddr) -> SocketAddr {
    ingress_to(To(endpoint, false)).await
}

async fn ingress_to(router: To) -> SocketAddr {
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let https = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = http.local_addr().unwrap();
    tokio::spawn(serve(
        http,
        https,
        RouterHandle::new(Arc::new(router)),
        std::future::pending(),
    ));
    addr
}

fn ok(body: &str) -> Vec<Vec<u8>> {
    vec![format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()]
}

#[tokio::test]
async fn a_kept_connection_the_endpoint_closed_is_replaced_without_failing_the_request() {
    // The endpoint answers once per connection and then closes it without saying so, as an
    // endpoint's idle timeout does.
    let (endpoint, seen) = scripted(vec![ok("first"), ok("second"), ok("third")], Some(1)).await;
    // One client connection: every request runs on the same event loop and pool.
    let mut c = client(ingress(endpoint).await).await;
    for body in ["first", "second", "third"] {
        let (head, got) = send(&mut c, "GET", "/").await;
        assert_eq!((head.status.as_u16(), &got[..]), (200, body.as_bytes()));
    }
    assert_eq!(seen.connections.load(Ordering::SeqCst), 3);
}

/// A kept HTTP/1.1 connection to `addr` (one connection stays on one event loop and pool).
async fn client(addr: SocketAddr) -> SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// `method path` on `sender`: the answer's head and its body.
async fn send(sender: &mut SendRequest<Empty<Bytes>>, method: &str, path: &str) -> (http::response::Parts, Bytes) {
    sender.ready().await.unwrap();
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "web.example.com")
        .body(Empty::new())
        .unwrap();
    let (parts, body) = sender.send_request(req).await.unwrap().into_parts();
    (parts, body.collect().await.unwrap().to_bytes())
}

#[tokio::test]
async fn a_chunked_answer_in_pieces_and_a_large_one_arrive_whole() {
    let chunked = vec![
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello".to_vec(),
        b"\r\n8\r\n, chun".to_vec(),
        b"ks\r\n0\r\n\r\n".to_vec(),
    ];
    let big = "x".repeat(1 << 20);
    let (endpoint, seen) = scripted(vec![chunked, ok(&big), ok("after")], None).await;
    let mut c = client(ingress(endpoint).await).await;
    let (head, body) = send(&mut c, "GET", "/chunked").await;
    assert_eq!(head.status, 200);
    assert_eq!(&body[..], b"hello, chunks");
    let (head, body) = send(&mut c, "GET", "/big").await;
    assert_eq!(head.headers["content-length"], "1048576");
    assert!(body.len() == 1 << 20 && body.iter().all(|b| *b == b'x'));
    assert_eq!(&send(&mut c, "GET", "/after").await.1[..], b"after");
    // Every answer was read to its end, so the endpoint's connection was kept throughout.
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn head_waits_for_no_body_and_connection_close_is_not_kept() {
    let head = vec![b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec()];
    let closing = vec![b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye".to_vec()];
    let (endpoint, seen) = scripted(vec![head, closing], None).await;
    let mut c = client(ingress(endpoint).await).await;
    let (answer, body) = send(&mut c, "HEAD", "/").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["content-length"], "100");
    assert!(body.is_empty());
    assert_eq!(&send(&mut c, "GET", "/").await.1[..], b"bye");
    // The third request may not reuse the connection the endpoint said it would close.
    assert_eq!(send(&mut c, "HEAD", "/").await.0.status, 200);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
    let heads = seen.heads.lock().unwrap();
    assert!(
        heads[0].starts_with("HEAD / HTTP/1.1\r\nhost: web.example.com\r\n"),
        "{}",
        heads[0]
    );
    assert!(heads[0].contains("x-forwarded-for: 127.0.0.1\r\n"), "{}", heads[0]);
}

#[tokio::test]
async fn shutdown_stops_listening_and_lets_a_request_in_flight_finish() {
    // An endpoint that tells when it has a request and answers only when released.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = listener.local_addr().unwrap();
    let (got, mut got_rx) = tokio::sync::mpsc::channel::<()>(1);
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = stream.read(&mut buf).await.unwrap();
        got.send(()).await.unwrap();
        let _ = released.await;
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate")
            .await
            .unwrap();
    });
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let https = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = http.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = RouterHandle::new(Arc::new(To(endpoint, false)));
    let server = tokio::spawn(serve(http, https, handle, async move {
        let _ = stopped.await;
    }));
    let mut c = client(addr).await;
    let in_flight = tokio::spawn(async move { send(&mut c, "GET", "/slow").await });
    got_rx.recv().await.unwrap();
    stop.send(()).unwrap();
    // Once every event loop has stopped, the port refuses new connections...
    while TcpStream::connect(addr).await.is_ok() {
        tokio::task::yield_now().await;
    }
    // ...while the request already in flight still gets its answer.
    release.send(()).unwrap();
    let (head, body) = in_flight.await.unwrap();
    assert_eq!((head.status.as_u16(), &body[..]), (200, &b"late"[..]));
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_https_endpoint_is_spoken_to_over_tls_on_a_kept_connection() {
    let config = podway_tls::self_signed_server_config(vec!["endpoint.local".to_string()]).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (endpoint, seen) = scripted_with(vec![ok("one"), ok("two")], None, Some(acceptor)).await;
    let mut c = client(ingress_to(To(endpoint, true)).await).await;
    assert_eq!(&send(&mut c, "GET", "/").await.1[..], b"one");
    assert_eq!(&send(&mut c, "GET", "/").await.1[..], b"two");
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
    assert!(seen.heads.lock().unwrap()[1].contains("x-forwarded-for: 127.0.0.1\r\n"));
}
