//! Each built-in image served on 127.0.0.1 (ephemeral port) and asked over real TCP, by a raw
//! HTTP/1.1 client and by curl.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::apps::Host;
use super::apps::{self, Start};

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stop the server; a server that does not stop within 10 s fails the test (once, a full
    /// lib run hung here) rather than hanging the whole suite.
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(std::time::Duration::from_secs(10), &mut self.task)
            .await
            .expect("the server stops within 10 s after its shutdown signal")
            .unwrap()
            .unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Configure `name` with `args` and `env` as `podway builtin-image` would, but serve it on a
/// listener bound to 127.0.0.1:0.
async fn start(name: &str, args: &[&str], env: &[(&str, &str)]) -> Running {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let lookup = move |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let host = Host {
        hostname: "pod-under-test".into(),
        ips: vec!["127.0.0.1".parse().unwrap()],
    };
    let Start::Serve(app) = apps::configure(name, &args, &lookup, host).unwrap() else {
        panic!("{name} exited")
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(super::serve_app(app, listener, async {
        let _ = rx.await;
    }));
    Running {
        addr,
        stop: Some(tx),
        task,
    }
}

/// A client connection with what it has read but not yet consumed (pipelined answers).
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        Client {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }
}

/// Send `request` (may be empty, or several) and read one response: (status line and headers,
/// body). Gives up after 10 s so a server bug fails the test instead of hanging it.
async fn exchange(client: &mut Client, request: &str) -> (String, String) {
    let reading = async {
        client.stream.write_all(request.as_bytes()).await.unwrap();
        let mut chunk = [0u8; 4096];
        loop {
            let buf = &client.buf;
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(buf[..end].to_vec()).unwrap();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .map_or(0, |v| v.trim().parse().unwrap());
                let need = if request.starts_with("HEAD ") { 0 } else { length };
                if buf.len() >= end + 4 + need {
                    let body = String::from_utf8(buf[end + 4..end + 4 + need].to_vec()).unwrap();
                    client.buf.drain(..end + 4 + need);
                    return (head, body);
                }
            }
            let n = client.stream.read(&mut chunk).await.unwrap();
            assert!(
                n > 0,
                "connection closed early; got {:?}",
                String::from_utf8_lossy(&client.buf)
            );
            client.buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), reading)
        .await
        .expect("an answer within 10 s")
}

async fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut client = Client::connect(addr).await;
    exchange(
        &mut client,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: test/1\r\n\r\n"),
    )
    .await
}

#[tokio::test]
async fn hello_app_answers_hello_world_with_its_version_and_hostname() {
    for (name, version) in [("hello-app-1.0.0", "1.0.0"), ("hello-app-2.0.0", "2.0.0")] {
        let server = start(name, &[], &[("PORT", "1")]).await;
        let (head, body) = get(server.addr, "/any/path").await;
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(
            body,
            format!("Hello, world!\nVersion: {version}\nHostname: pod-under-test\n")
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn echo_hname_answers_the_hostname_and_echo_ip_the_destination_address() {
    let hname = start("echo-hname", &["-g", "daemon off;"], &[]).await;
    assert_eq!(get(hname.addr, "/").await.1, "pod-under-test\n");
    let ip = start("echo-ip", &[], &[]).await;
    assert_eq!(get(ip.addr, "/").await.1, "request_method : GET | ip_dest: 127.0.0.1\n");
}

#[tokio::test]
async fn whoami_reports_hostname_addresses_and_the_request() {
    let server = start("whoami", &["--name", "iamfoo"], &[]).await;
    let (_, body) = get(server.addr, "/").await;
    assert!(
        body.starts_with("Name: iamfoo\nHostname: pod-under-test\nIP: 127.0.0.1\nRemoteAddr: 127.0.0.1:"),
        "{body}"
    );
    assert!(body.contains("\nGET / HTTP/1.1\r\nHost: 127.0.0.1:"), "{body}");
    assert!(body.ends_with("User-Agent: test/1\r\n\r\n"), "{body}");
    let (_, api) = get(server.addr, "/api").await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&api).unwrap()["hostname"],
        "pod-under-test"
    );
    let (head, _) = get(server.addr, "/health").await;
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
}

#[tokio::test]
async fn http_echo_answers_its_text_with_the_configured_status() {
    let server = start("http-echo", &["-text=hello from podway", "-status-code", "202"], &[]).await;
    let (head, body) = get(server.addr, "/").await;
    assert!(head.starts_with("HTTP/1.1 202 Accepted\r\n"), "{head}");
    assert!(head.contains("X-App-Name: http-echo"), "{head}");
    assert_eq!(body, "hello from podway\n");
    assert_eq!(get(server.addr, "/health").await.1, "{\"status\":\"ok\"}\n");
}

#[tokio::test]
async fn echoserver_and_echo_server_echo_the_request_with_its_body() {
    let legacy = start("echoserver-1.4", &[], &[]).await;
    let mut client = Client::connect(legacy.addr).await;
    let (_, body) = exchange(
        &mut client,
        "POST /p HTTP/1.1\r\nHost: svc:8080\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await;
    assert!(
        body.starts_with("CLIENT VALUES:\nclient_address=127.0.0.1\ncommand=POST\nreal path=/p\n"),
        "{body}"
    );
    assert!(body.ends_with("BODY:\nhello"), "{body}");

    let current = start("echoserver", &[], &[]).await;
    let (_, body) = get(current.addr, "/x").await;
    assert!(
        body.contains("Hostname: pod-under-test\n") && body.contains("\treal path=/x\n"),
        "{body}"
    );

    let kicbase = start("echo-server", &[], &[]).await;
    let (_, body) = get(kicbase.addr, "/hi").await;
    assert!(
        body.starts_with("Request served by pod-under-test\n\nHTTP/1.1 GET /hi\n\nHost: 127.0.0.1:"),
        "{body}"
    );
    assert!(body.ends_with("User-Agent: test/1\n"), "{body}");
}

#[tokio::test]
async fn a_connection_is_kept_alive_across_requests_including_chunked_and_pipelined_ones() {
    let server = start("echo-server", &[], &[]).await;
    let mut client = Client::connect(server.addr).await;
    let (_, first) = exchange(&mut client, "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n").await;
    assert!(first.contains("GET /1"));
    let chunked = "POST /2 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let (_, second) = exchange(&mut client, chunked).await;
    assert!(second.contains("POST /2") && second.ends_with("\nabc"), "{second}");
    // Two requests in one write: both are answered, in order.
    let (_, third) = exchange(
        &mut client,
        "GET /3 HTTP/1.1\r\nHost: h\r\n\r\nGET /4 HTTP/1.1\r\nHost: h\r\n\r\n",
    )
    .await;
    assert!(third.contains("GET /3"));
    let (_, fourth) = exchange(&mut client, "").await;
    assert!(fourth.contains("GET /4"));
    let (head, body) = exchange(&mut client, "HEAD /5 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").await;
    assert!(head.contains("Connection: close") && body.is_empty(), "{head}");
    let mut rest = Vec::new();
    client.stream.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "the server closes after Connection: close");
}

#[tokio::test]
async fn expect_100_continue_is_answered_before_the_body_is_sent() {
    let server = start("echo-server", &[], &[]).await;
    let mut client = Client::connect(server.addr).await;
    client
        .stream
        .write_all(b"PUT /u HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        .await
        .unwrap();
    let mut interim = [0u8; 25];
    client.stream.read_exact(&mut interim).await.unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    let (_, body) = exchange(&mut client, "data").await;
    assert!(body.ends_with("\ndata"), "{body}");
}

#[tokio::test]
async fn curl_gets_answers_over_one_reused_connection() {
    let server = start("hello-app-1.0.0", &[], &[]).await;
    let url = format!("http://{}/", server.addr);
    let output = tokio::process::Command::new("curl")
        .args(["-sS", "-v", "--max-time", "10", &url, &url])
        .output()
        .await
        .expect("curl runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout
            .matches("Hello, world!\nVersion: 1.0.0\nHostname: pod-under-test\n")
            .count(),
        2,
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Re-using existing connection") || stderr.contains("Reusing existing"),
        "{stderr}"
    );
    server.stop().await;
}

#[tokio::test]
async fn malformed_requests_get_400_and_a_closed_connection() {
    let server = start("echo-hname", &[], &[]).await;
    let mut client = Client::connect(server.addr).await;
    client.stream.write_all(b"NONSENSE\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    client.stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{answer}");
}

#[test]
fn listen_port_names_the_port_each_image_serves_on_and_none_when_it_only_exits() {
    let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let no_env = |_: &str| None;
    assert_eq!(super::listen_port(&argv(&["echo-hname"]), &no_env), Some(80));
    assert_eq!(
        super::listen_port(&argv(&["http-echo", "-text=hi", "-listen=:8081"]), &no_env),
        Some(8081)
    );
    assert_eq!(
        super::listen_port(&argv(&["http-echo"]), &no_env),
        None,
        "no -text: it exits"
    );
    let port_env = |k: &str| (k == "PORT").then(|| "9090".to_string());
    assert_eq!(super::listen_port(&argv(&["echo-server"]), &port_env), Some(9090));
}
