use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Container, ContainerPort, HTTPHeader};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::*;

const SECOND: Duration = Duration::from_secs(1);

/// What a test server does with a request (given its head, e.g. "GET /x HTTP/1.1\r\n...").
enum Reply {
    /// Write these bytes and close.
    Raw(String),
    /// Never answer.
    Hang,
}

fn reply(status: &str, headers: &str, body: &str) -> Reply {
    Reply::Raw(format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{headers}\r\n{body}",
        body.len()
    ))
}

/// A loopback HTTP server, stopped when dropped; it records every request head.
struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    async fn start(answer: impl Fn(&str, u16) -> Reply + Send + Sync + 'static) -> Server {
        Server::start_with(answer, |tcp| async move { Some(Box::new(tcp) as Box<dyn Io>) }).await
    }

    async fn start_with<F, Fut>(answer: impl Fn(&str, u16) -> Reply + Send + Sync + 'static, wrap: F) -> Server
    where
        F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Option<Box<dyn Io>>> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let answer = Arc::new(answer);
        let wrap = Arc::new(wrap);
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                let Some(mut io) = wrap(tcp).await else { continue };
                let head = read_request(&mut io).await;
                seen.lock().unwrap().push(head.clone());
                match answer(&head, port) {
                    Reply::Raw(bytes) => {
                        let _ = io.write_all(bytes.as_bytes()).await;
                        let _ = io.shutdown().await;
                    }
                    Reply::Hang => held.push(io),
                }
            }
        });
        Server { port, requests, task }
    }

    fn url(&self, path: &str) -> ProbeUrl {
        ProbeUrl::new("http", "127.0.0.1", self.port, path)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

async fn read_request(io: &mut (impl AsyncRead + AsyncWrite + Unpin)) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match io.read(&mut byte).await {
            Ok(1) => buf.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn path_of(head: &str) -> &str {
    head.split(' ').nth(1).unwrap_or("")
}

#[tokio::test]
async fn status_200_passes_with_the_body() {
    let server = Server::start(|_, _| reply("200 OK", "", "ok")).await;
    assert_eq!(
        http_get(server.url("/healthz"), vec![], SECOND).await,
        Attempt::Success("ok".into())
    );
}

#[tokio::test]
async fn status_503_fails_with_the_status_code_and_not_the_body() {
    let server = Server::start(|_, _| reply("503 Service Unavailable", "", "secret details")).await;
    assert_eq!(
        http_get(server.url("/healthz"), vec![], SECOND).await,
        Attempt::Failure("HTTP probe failed with statuscode: 503".into())
    );
}

#[tokio::test]
async fn the_request_carries_path_query_user_agent_accept_and_custom_headers() {
    let server = Server::start(|_, _| reply("204 No Content", "", "")).await;
    let headers = vec![("X-Custom".to_string(), "yes".to_string())];
    assert_eq!(
        http_get(server.url("/ready?full=1"), headers, SECOND).await,
        Attempt::Success(String::new())
    );
    let head = &server.requests()[0];
    assert!(head.starts_with("GET /ready?full=1 HTTP/1.1\r\n"), "{head}");
    for line in [
        format!("Host: 127.0.0.1:{}", server.port),
        "User-Agent: kube-probe/1.32".to_string(),
        "Accept: */*".to_string(),
        "X-Custom: yes".to_string(),
        "Connection: close".to_string(),
    ] {
        assert!(head.contains(&format!("{line}\r\n")), "missing {line:?} in {head}");
    }
}

#[tokio::test]
async fn host_and_user_agent_headers_of_the_probe_replace_the_defaults_and_empty_accept_is_dropped() {
    let server = Server::start(|_, _| reply("200 OK", "", "")).await;
    let headers = vec![
        ("Host".to_string(), "example.com".to_string()),
        ("User-Agent".to_string(), "mine".to_string()),
        ("Accept".to_string(), String::new()),
    ];
    http_get(server.url("/"), headers, SECOND).await;
    let head = &server.requests()[0];
    assert!(head.contains("Host: example.com\r\n"), "{head}");
    assert!(head.contains("User-Agent: mine\r\n"), "{head}");
    assert!(!head.contains("kube-probe"), "{head}");
    assert!(!head.contains("Accept"), "{head}");
}

#[tokio::test]
async fn redirects_to_the_same_host_are_followed() {
    let server = Server::start(|head, _| match path_of(head) {
        "/old" => reply("302 Found", "Location: /new\r\n", ""),
        _ => reply("200 OK", "", "new"),
    })
    .await;
    assert_eq!(
        http_get(server.url("/old"), vec![], SECOND).await,
        Attempt::Success("new".into())
    );
    let paths: Vec<String> = server.requests().iter().map(|h| path_of(h).to_string()).collect();
    assert_eq!(paths, vec!["/old", "/new"]);
}

#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed_and_passes_with_a_warning() {
    // "localhost" is another host name than "127.0.0.1", even on the same machine.
    let server = Server::start(|_, port| {
        reply(
            "301 Moved Permanently",
            &format!("Location: http://localhost:{port}/x\r\n"),
            "moved",
        )
    })
    .await;
    assert_eq!(
        http_get(server.url("/"), vec![], SECOND).await,
        Attempt::Warning("Probe terminated redirects, Response body: moved".into())
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_redirect_loop_stops_after_ten_requests() {
    let server = Server::start(|_, _| reply("307 Temporary Redirect", "Location: /loop\r\n", "")).await;
    assert_eq!(
        http_get(server.url("/loop"), vec![], SECOND).await,
        Attempt::Failure("Get \"/loop\": stopped after 10 redirects".into())
    );
    assert_eq!(server.requests().len(), MAX_REDIRECTS);
}

#[tokio::test]
async fn a_3xx_without_location_passes_with_a_warning() {
    let server = Server::start(|_, _| reply("304 Not Modified", "", "")).await;
    assert!(matches!(
        http_get(server.url("/"), vec![], SECOND).await,
        Attempt::Warning(_)
    ));
}

#[tokio::test]
async fn a_closed_port_fails_with_gos_connection_refused_message() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = ProbeUrl::new("http", "127.0.0.1", port, "/healthz");
    assert_eq!(
        http_get(url, vec![], SECOND).await,
        Attempt::Failure(format!(
            "Get \"http://127.0.0.1:{port}/healthz\": dial tcp 127.0.0.1:{port}: connect: connection refused"
        ))
    );
}

#[tokio::test]
async fn a_server_that_never_answers_fails_at_the_timeout_awaiting_headers() {
    let server = Server::start(|_, _| Reply::Hang).await;
    let port = server.port;
    assert_eq!(
        http_get(server.url("/slow"), vec![], Duration::from_millis(200)).await,
        Attempt::Failure(format!(
            "Get \"http://127.0.0.1:{port}/slow\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        ))
    );
}

#[tokio::test]
async fn a_chunked_body_is_decoded() {
    let raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n";
    let server = Server::start(move |_, _| Reply::Raw(raw.to_string())).await;
    assert_eq!(
        http_get(server.url("/"), vec![], SECOND).await,
        Attempt::Success("abcde".into())
    );
}

#[tokio::test]
async fn a_body_without_length_is_read_to_the_end_but_cut_at_ten_kibibytes() {
    let big = "y".repeat(MAX_BODY * 2);
    let server = Server::start(move |_, _| Reply::Raw(format!("HTTP/1.0 200 OK\r\n\r\n{big}"))).await;
    let Attempt::Success(body) = http_get(server.url("/"), vec![], SECOND).await else {
        panic!("expected success")
    };
    assert_eq!(body.len(), MAX_BODY);
}

#[tokio::test]
async fn a_garbage_answer_fails_as_a_malformed_response() {
    let server = Server::start(|_, _| Reply::Raw("SSH-2.0-OpenSSH\r\n\r\n".into())).await;
    let Attempt::Failure(message) = http_get(server.url("/"), vec![], SECOND).await else {
        panic!("expected failure")
    };
    assert!(
        message.ends_with("malformed HTTP response \"SSH-2.0-OpenSSH\""),
        "{message}"
    );
}

#[tokio::test]
async fn http_get_action_resolves_a_named_port_on_the_pod_ip_with_a_header() {
    let server = Server::start(|_, _| reply("200 OK", "", "")).await;
    let container = Container {
        name: "web".into(),
        ports: Some(vec![ContainerPort {
            name: Some("web".into()),
            container_port: server.port as i32,
            ..Default::default()
        }]),
        ..Default::default()
    };
    let action = HTTPGetAction {
        path: Some("/live".into()),
        port: IntOrString::String("web".into()),
        http_headers: Some(vec![HTTPHeader {
            name: "X-Probe".into(),
            value: "1".into(),
        }]),
        ..Default::default()
    };
    let attempt = http_get_probe(&action, &ProbeTarget::new("127.0.0.1", &container), SECOND).await;
    assert_eq!(attempt, Attempt::Success(String::new()));
    let head = &server.requests()[0];
    assert!(
        head.starts_with("GET /live HTTP/1.1") && head.contains("X-Probe: 1\r\n"),
        "{head}"
    );
}

#[tokio::test]
async fn https_accepts_a_self_signed_certificate() {
    let config = podway_tls::self_signed_server_config(vec!["pod.local".to_string()]).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let server = Server::start_with(
        |_, _| reply("200 OK", "", "secure"),
        move |tcp| {
            let acceptor = acceptor.clone();
            async move { acceptor.accept(tcp).await.ok().map(|s| Box::new(s) as Box<dyn Io>) }
        },
    )
    .await;
    let url = ProbeUrl::new("https", "127.0.0.1", server.port, "/");
    assert_eq!(http_get(url, vec![], SECOND).await, Attempt::Success("secure".into()));
}

#[tokio::test]
async fn https_to_a_plain_http_server_fails_as_go_words_it() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let url = ProbeUrl::new("https", "127.0.0.1", port, "/");
    let attempt = http_get(url, vec![], SECOND).await;
    task.abort();
    assert_eq!(
        attempt,
        Attempt::Failure(format!(
            "Get \"https://127.0.0.1:{port}/\": http: server gave HTTP response to HTTPS client"
        ))
    );
}
