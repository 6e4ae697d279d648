//! The kubelet endpoint over real loopback TLS: `serve` with a fake runtime (exec runs local
//! `sh`, port-forward dials a local echo server, logs are temp files), driven by curl for logs
//! and by a small WebSocket/SPDY client built on the crate's own codecs for the upgrades.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use podway_agent::kubelet::spdy::{self, Frame, Headers};
use podway_agent::kubelet::websocket::{self, Message, MessageReader, MessageSender};
use podway_agent::kubelet::{serve, Exit, IoRequest, KubeletTls, LogSource, PodStreams, Spawned, StreamError};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

/// Every wait in these tests is bounded by this deadline, so a hang fails instead of stalling.
const DEADLINE: Duration = Duration::from_secs(20);

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// A client identity (PEM certificate and key).
#[derive(Clone)]
struct Identity {
    cert: String,
    key: String,
}

/// The cluster CA and the client identities the tests use.
struct Pki {
    ca: String,
    apiserver: Identity,
    stranger: Identity,
    foreign: Identity,
}

fn new_ca() -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "test-ca");
    let pem = params.self_signed(&key).unwrap().pem();
    (pem, Issuer::new(params, key))
}

fn client(issuer: &Issuer<'static, KeyPair>, cn: &str) -> Identity {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    Identity {
        cert: params.signed_by(&key, issuer).unwrap().pem(),
        key: key.serialize_pem(),
    }
}

fn pki() -> Pki {
    let (ca, issuer) = new_ca();
    let (_, other_issuer) = new_ca();
    Pki {
        ca,
        apiserver: client(&issuer, "kube-apiserver-kubelet-client"),
        stranger: client(&issuer, "system:node:other"),
        foreign: client(&other_issuer, "kube-apiserver-kubelet-client"),
    }
}

/// The fake runtime: pod `default/web` with container `app`; `waiting` has not started.
struct Fake {
    logs: PathBuf,
    running: watch::Receiver<bool>,
    resizes: Arc<Mutex<Vec<(u16, u16)>>>,
}

#[async_trait::async_trait]
impl PodStreams for Fake {
    async fn log(&self, ns: &str, pod: &str, container: &str, previous: bool) -> Result<LogSource, StreamError> {
        check(ns, pod, container)?;
        if previous {
            return Err(StreamError::previous_not_found(container, pod));
        }
        let mut running = self.running.clone();
        let stopped: Option<BoxFuture<'static, ()>> = if *running.borrow() {
            Some(Box::pin(async move {
                let _ = running.wait_for(|r| !*r).await;
            }))
        } else {
            None
        };
        Ok(LogSource {
            path: self.logs.clone(),
            stopped,
        })
    }

    async fn exec(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        command: Vec<String>,
        io: IoRequest,
    ) -> Result<Spawned, StreamError> {
        check(ns, pod, container)?;
        let (program, args) = command
            .split_first()
            .ok_or_else(|| StreamError::bad_request("no command"))?;
        let pipe = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(pipe(io.stdin))
            .stdout(pipe(io.stdout))
            .stderr(pipe(io.stderr))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| StreamError::internal(e.to_string()))?;
        let resizes = self.resizes.clone();
        Ok(Spawned {
            stdin: child.stdin.take().map(|p| Box::pin(p) as _),
            stdout: child.stdout.take().map(|p| Box::pin(p) as _),
            stderr: child.stderr.take().map(|p| Box::pin(p) as _),
            resize: io
                .tty
                .then(|| Box::new(move |w, h| resizes.lock().unwrap().push((w, h))) as _),
            exit: Box::pin(async move {
                match child.wait().await {
                    Ok(status) => Exit::Code(status.code().unwrap_or(137)),
                    Err(e) => Exit::Failed(e.to_string()),
                }
            }),
        })
    }

    async fn attach(&self, ns: &str, pod: &str, container: &str, io: IoRequest) -> Result<Spawned, StreamError> {
        // The "main process" is a cat that exits with 5; attach reports Success regardless.
        let command = vec!["sh".into(), "-c".into(), "cat; exit 5".into()];
        self.exec(ns, pod, container, command, io).await
    }

    async fn port_forward(&self, ns: &str, pod: &str, port: u16) -> Result<TcpStream, StreamError> {
        check(ns, pod, "app")?;
        TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| StreamError::internal(format!("dial tcp4 127.0.0.1:{port}: {e}")))
    }
}

fn check(ns: &str, pod: &str, container: &str) -> Result<(), StreamError> {
    if ns != "default" || pod != "web" {
        return Err(StreamError::pod_not_found(pod));
    }
    match container {
        "app" => Ok(()),
        "waiting" => Err(StreamError::waiting_to_start(container, pod, "ContainerCreating")),
        other => Err(StreamError::container_not_found(other, pod)),
    }
}

/// A running endpoint; dropping it shuts the server down and removes its files.
struct Server {
    addr: SocketAddr,
    serving_cert: String,
    pki: Pki,
    dir: tempfile::TempDir,
    running: watch::Sender<bool>,
    resizes: Arc<Mutex<Vec<(u16, u16)>>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn start() -> Server {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("0.log");
    std::fs::write(&logs, "one\ntwo\nthree\n").unwrap();
    let (running, running_rx) = watch::channel(true);
    let resizes = Arc::new(Mutex::new(Vec::new()));
    let fake = Arc::new(Fake {
        logs,
        running: running_rx,
        resizes: resizes.clone(),
    });
    let tls = KubeletTls::new(&pki.ca, &["127.0.0.1".into()]).unwrap();
    let serving_cert = tls.serving_cert_pem().to_string();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, tls, fake, async move {
        let _ = stopped.await;
    }));
    Server {
        addr,
        serving_cert,
        pki,
        dir,
        running,
        resizes,
        stop: Some(stop),
        task: Some(task),
    }
}

impl Server {
    fn write(&self, name: &str, content: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    }

    /// curl against the endpoint; returns (exit code, HTTP status, body).
    async fn curl(&self, path: &str, who: Option<&Identity>) -> (i32, String, String) {
        let cacert = self.write("serving.crt", &self.serving_cert);
        let mut cmd = tokio::process::Command::new("curl");
        cmd.args(["-sS", "-N", "--cacert", &cacert, "-w", "\n%{http_code}"]);
        if let Some(id) = who {
            let cert = self.write("client.crt", &id.cert);
            let key = self.write("client.key", &id.key);
            cmd.args(["--cert", &cert, "--key", &key]);
        }
        cmd.arg(format!("https://127.0.0.1:{}{path}", self.addr.port()));
        cmd.kill_on_drop(true);
        let out = within("curl", cmd.output()).await.unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (out.status.code().unwrap_or(-1), code.to_string(), body.to_string())
    }

    /// A TLS connection as `who`.
    async fn connect(&self, who: &Identity) -> tokio_rustls::client::TlsStream<TcpStream> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut self.serving_cert.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut who.cert.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut who.key.as_bytes()).unwrap().unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .unwrap();
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .unwrap()
    }
}

/// Sends an HTTP/1.1 upgrade request; returns the status, the response head, and the bytes
/// read past it.
async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, Vec<u8>) {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    io.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = within("response head", io.read(&mut chunk)).await.unwrap();
        assert!(
            n > 0,
            "connection closed before the response head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, buf[end..].to_vec())
}

fn ws_headers(protocols: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Upgrade", "websocket".into()),
        ("Sec-WebSocket-Version", "13".into()),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==".into()),
        ("Sec-WebSocket-Protocol", protocols.into()),
    ]
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// A WebSocket client on an upgraded connection.
async fn websocket(
    server: &Server,
    path: &str,
    protocols: &str,
) -> (String, MessageReader<tokio::io::ReadHalf<Tls>>, MessageSender) {
    let mut tls = server.connect(&server.pki.apiserver).await;
    let headers = ws_headers(protocols);
    let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, head, rest) = upgrade(&mut tls, "GET", path, &refs).await;
    assert_eq!(status, 101, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    let (r, w) = tokio::io::split(tls);
    let (tx, _) = websocket::spawn_writer(w, true);
    (head, MessageReader::new(r, rest), tx)
}

/// What an exec/attach connection delivered: stdout, stderr, the Status, and whether it
/// ended with a close frame; plus the first message.
#[derive(Debug, Default)]
struct Session {
    first: Vec<u8>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: Option<serde_json::Value>,
    closed: bool,
}

async fn drain<R: AsyncRead + Unpin>(reader: &mut MessageReader<R>) -> Session {
    let mut s = Session::default();
    while let Some(m) = within("remote command message", reader.next()).await.unwrap() {
        match m {
            Message::Binary(data) => {
                if s.first.is_empty() {
                    s.first = data.clone();
                }
                match data.split_first() {
                    Some((1, rest)) => s.stdout.extend_from_slice(rest),
                    Some((2, rest)) => s.stderr.extend_from_slice(rest),
                    Some((3, rest)) if !rest.is_empty() => s.status = Some(serde_json::from_slice(rest).unwrap()),
                    _ => {}
                }
            }
            Message::Close(code) => {
                assert_eq!(code, Some(1000));
                s.closed = true;
                break;
            }
            _ => {}
        }
    }
    s
}

#[tokio::test]
async fn logs_reach_curl_with_tail_and_limit_and_kubelet_errors() {
    let server = start().await;
    server.running.send(false).unwrap();
    let id = Some(&server.pki.apiserver);
    assert_eq!(
        server.curl("/containerLogs/default/web/app", id).await,
        (0, "200".into(), "one\ntwo\nthree\n".into())
    );
    assert_eq!(
        server.curl("/containerLogs/default/web/app?tailLines=2", id).await.2,
        "two\nthree\n"
    );
    assert_eq!(
        server.curl("/containerLogs/default/web/app?limitBytes=5", id).await.2,
        "one\nt"
    );
    let (_, code, body) = server.curl("/containerLogs/default/nope/app", id).await;
    assert_eq!((code.as_str(), body.as_str()), ("404", r#"pod "nope" does not exist"#));
    let (_, code, body) = server.curl("/containerLogs/default/web/waiting", id).await;
    assert_eq!(
        (code.as_str(), body.as_str()),
        (
            "400",
            r#"container "waiting" in pod "web" is waiting to start: ContainerCreating"#
        )
    );
    let (_, code, body) = server.curl("/containerLogs/default/web/app?previous=true", id).await;
    assert_eq!(
        (code.as_str(), body.as_str()),
        ("400", r#"previous terminated container "app" in pod "web" not found"#)
    );
    assert_eq!(
        server.curl("/containerLogs/default/web/app?tailLines=-1", id).await.1,
        "422"
    );
    assert_eq!(server.curl("/nothing/here", id).await.1, "404");
}

#[tokio::test]
async fn followed_logs_stream_new_lines_and_end_when_the_container_stops() {
    let server = start().await;
    let path = server.dir.path().join("0.log");
    let cacert = server.write("serving.crt", &server.serving_cert);
    let cert = server.write("client.crt", &server.pki.apiserver.cert);
    let key = server.write("client.key", &server.pki.apiserver.key);
    let mut curl = tokio::process::Command::new("curl")
        .args(["-sS", "-N", "--cacert", &cacert, "--cert", &cert, "--key", &key])
        .arg(format!(
            "https://127.0.0.1:{}/containerLogs/default/web/app?follow=true&tailLines=1",
            server.addr.port()
        ))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = curl.stdout.take().unwrap();
    let mut got = Vec::new();
    read_until(&mut out, &mut got, "three\n").await;
    use std::io::Write;
    writeln!(std::fs::OpenOptions::new().append(true).open(&path).unwrap(), "four").unwrap();
    read_until(&mut out, &mut got, "four\n").await;
    writeln!(std::fs::OpenOptions::new().append(true).open(&path).unwrap(), "five").unwrap();
    server.running.send(false).unwrap();
    let status = within("curl exit", curl.wait()).await.unwrap();
    out.read_to_end(&mut got).await.unwrap();
    assert!(status.success());
    assert_eq!(String::from_utf8_lossy(&got), "three\nfour\nfive\n");
}

/// Reads `out` into `got` until the text ends with `want`.
async fn read_until(out: &mut (impl AsyncRead + Unpin), got: &mut Vec<u8>, want: &str) {
    while !String::from_utf8_lossy(got).ends_with(want) {
        let mut chunk = [0u8; 1024];
        let n = within("followed output", out.read(&mut chunk)).await.unwrap();
        assert!(n > 0, "log ended early: {:?}", String::from_utf8_lossy(got));
        got.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn only_the_apiserver_client_certificate_gets_in() {
    let server = start().await;
    server.running.send(false).unwrap();
    let path = "/containerLogs/default/web/app";
    assert_eq!(server.curl(path, None).await.1, "401");
    let (_, code, body) = server.curl(path, Some(&server.pki.stranger)).await;
    assert_eq!(code, "403");
    assert_eq!(
        body,
        "Forbidden (user=system:node:other, verb=get, resource=nodes, subresource(s)=[proxy])"
    );
    // A certificate the cluster CA did not sign fails the handshake: curl gets no HTTP status.
    let (exit, code, _) = server.curl(path, Some(&server.pki.foreign)).await;
    assert_ne!(exit, 0);
    assert_eq!(code, "000");
    assert_eq!(server.curl(path, Some(&server.pki.apiserver)).await.1, "200");
}

#[tokio::test]
async fn exec_v5_pipes_stdin_to_stdout_and_ends_with_success() {
    let server = start().await;
    let (head, mut reader, tx) = websocket(
        &server,
        "/exec/default/web/app?command=cat&input=1&output=1&error=1",
        "v5.channel.k8s.io",
    )
    .await;
    assert!(head.contains("v5.channel.k8s.io"), "{head}");
    tx.binary(b"\x00hello stdin\nline2\n".to_vec()).await;
    tx.send(Message::Ping(b"hb".to_vec())).await;
    tx.binary(vec![255, 0]).await;
    let mut pong = false;
    let mut session = Session::default();
    // The pong may come before or among the output; collect until the close.
    while let Some(m) = within("exec", reader.next()).await.unwrap() {
        match m {
            Message::Pong(p) => pong = p == b"hb",
            Message::Binary(d) if session.first.is_empty() && d == [1] => session.first = d,
            Message::Binary(d) => match d.split_first() {
                Some((1, rest)) => session.stdout.extend_from_slice(rest),
                Some((3, rest)) => session.status = Some(serde_json::from_slice(rest).unwrap()),
                _ => {}
            },
            Message::Close(_) => break,
            _ => {}
        }
    }
    assert!(pong, "pings are answered");
    assert_eq!(session.first, vec![1], "an empty stdout message opens the session");
    assert_eq!(session.stdout, b"hello stdin\nline2\n");
    assert_eq!(
        session.status.unwrap(),
        serde_json::json!({"metadata": {}, "status": "Success"})
    );
}

#[tokio::test]
async fn exec_non_zero_exit_reports_the_code_and_stderr() {
    let server = start().await;
    let path =
        "/exec/default/web/app?command=sh&command=-c&command=echo%20oops%20%3E%262%3B%20exit%203&output=1&error=1";
    let (_, mut reader, _tx) = websocket(&server, path, "v5.channel.k8s.io").await;
    let s = drain(&mut reader).await;
    assert!(s.closed);
    assert_eq!(s.stderr, b"oops\n");
    let status = s.status.unwrap();
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(
        status["details"]["causes"][0],
        serde_json::json!({"reason": "ExitCode", "message": "3"})
    );
}

#[tokio::test]
async fn exec_speaks_v4_when_only_v4_is_offered_and_refuses_unknown_protocols() {
    let server = start().await;
    let (head, mut reader, _tx) = websocket(
        &server,
        "/exec/default/web/app?command=echo&command=hi&output=1",
        "v4.channel.k8s.io",
    )
    .await;
    assert!(head.contains("v4.channel.k8s.io"), "{head}");
    let s = drain(&mut reader).await;
    assert_eq!(s.stdout, b"hi\n");
    assert_eq!(s.status.unwrap()["status"], "Success");

    let mut tls = server.connect(&server.pki.apiserver).await;
    let headers = ws_headers("channel.k8s.io");
    let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, head, _) = upgrade(&mut tls, "GET", "/exec/default/web/app?command=true&output=1", &refs).await;
    assert_eq!(status, 400, "{head}");
}

#[tokio::test]
async fn exec_errors_before_the_upgrade_are_plain_http_responses() {
    let server = start().await;
    let mut tls = server.connect(&server.pki.apiserver).await;
    let headers = ws_headers("v5.channel.k8s.io");
    let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, head, rest) = upgrade(&mut tls, "GET", "/exec/default/web/nope?command=true&output=1", &refs).await;
    assert_eq!(status, 404, "{head}");
    let mut body = rest;
    while !String::from_utf8_lossy(&body).contains("not found") {
        let mut chunk = [0u8; 1024];
        let n = within("error body", tls.read(&mut chunk)).await.unwrap();
        assert!(n > 0);
        body.extend_from_slice(&chunk[..n]);
    }
    assert!(String::from_utf8_lossy(&body).ends_with(r#"container "nope" not found in pod "web""#));
}

#[tokio::test]
async fn tty_resize_messages_reach_the_runtime_and_attach_reports_success() {
    let server = start().await;
    let (_, mut reader, tx) = websocket(
        &server,
        "/attach/default/web/app?input=1&output=1&tty=1",
        "v5.channel.k8s.io",
    )
    .await;
    tx.binary(b"\x04{\"Width\":120,\"Height\":40}".to_vec()).await;
    tx.binary(b"\x00typed\n".to_vec()).await;
    tx.binary(vec![255, 0]).await;
    let s = drain(&mut reader).await;
    assert_eq!(s.stdout, b"typed\n");
    // The process exited 5, but attach reports the attachment, not the process.
    assert_eq!(s.status.unwrap()["status"], "Success");
    assert_eq!(*server.resizes.lock().unwrap(), vec![(120, 40)]);
}

/// An echo server on loopback that answers each connection with its input, upper-cased so
/// an echo cannot be mistaken for our own bytes; ends a connection when the client finishes.
async fn echo_server() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 || conn.write_all(&buf[..n].to_ascii_uppercase()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (port, task)
}

/// A SPDY client end over any byte stream.
struct SpdyClient<S> {
    io: S,
    enc: spdy::Encoder,
    dec: spdy::Decoder,
    buf: Vec<u8>,
    next_id: u32,
}

impl<S: AsyncRead + AsyncWrite + Unpin> SpdyClient<S> {
    fn new(io: S, leftover: Vec<u8>) -> Self {
        SpdyClient {
            io,
            enc: spdy::Encoder::new(),
            dec: spdy::Decoder::new(),
            buf: leftover,
            next_id: 1,
        }
    }

    async fn send(&mut self, frame: Frame) {
        let bytes = self.enc.encode(&frame);
        self.io.write_all(&bytes).await.unwrap();
        self.io.flush().await.unwrap();
    }

    async fn recv(&mut self) -> Frame {
        loop {
            if let Some((frame, used)) = self.dec.decode(&self.buf).unwrap() {
                self.buf.drain(..used);
                return frame;
            }
            let mut chunk = [0u8; 16384];
            let n = within("spdy frame", self.io.read(&mut chunk)).await.unwrap();
            assert!(n > 0, "connection ended");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Opens the error and data streams of one forwarded connection, as kubectl does.
    async fn open_pair(&mut self, port: u16, request: u32) -> (u32, u32) {
        let mut ids = Vec::new();
        for kind in ["error", "data"] {
            let id = self.next_id;
            self.next_id += 2;
            let headers: Headers = vec![
                ("streamtype".into(), kind.into()),
                ("port".into(), port.to_string()),
                ("requestid".into(), request.to_string()),
            ];
            self.send(Frame::SynStream {
                stream_id: id,
                associated_to: 0,
                priority: 0,
                flags: 0,
                headers,
            })
            .await;
            ids.push(id);
        }
        (ids[0], ids[1])
    }
}

/// Everything that arrives per stream until both streams of a pair have ended.
async fn collect_pair<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut SpdyClient<S>,
    error: u32,
    data: u32,
) -> (Vec<u8>, Vec<u8>, usize) {
    let (mut error_text, mut data_bytes, mut replies) = (Vec::new(), Vec::new(), 0);
    let (mut error_done, mut data_done) = (false, false);
    while !(error_done && data_done) {
        match client.recv().await {
            Frame::SynReply { stream_id, .. } if stream_id == error || stream_id == data => replies += 1,
            Frame::Data {
                stream_id,
                fin,
                data: d,
            } if stream_id == error => {
                error_text.extend(d);
                error_done |= fin;
            }
            Frame::Data {
                stream_id,
                fin,
                data: d,
            } if stream_id == data => {
                data_bytes.extend(d);
                data_done |= fin;
            }
            Frame::RstStream { stream_id, status } => panic!("stream {stream_id} reset ({status})"),
            _ => {}
        }
    }
    (error_text, data_bytes, replies)
}

#[tokio::test]
async fn port_forward_over_native_spdy_carries_a_connection_and_answers_pings() {
    let server = start().await;
    let (port, echo) = echo_server().await;
    let mut tls = server.connect(&server.pki.apiserver).await;
    let (status, head, rest) = upgrade(
        &mut tls,
        "POST",
        "/portForward/default/web",
        &[
            ("Upgrade", "SPDY/3.1"),
            ("X-Stream-Protocol-Version", "portforward.k8s.io"),
        ],
    )
    .await;
    assert_eq!(status, 101, "{head}");
    assert!(
        head.contains("X-Stream-Protocol-Version: portforward.k8s.io")
            || head.contains("x-stream-protocol-version: portforward.k8s.io"),
        "{head}"
    );
    let mut client = SpdyClient::new(tls, rest);
    client.send(Frame::Ping { id: 1 }).await;
    assert_eq!(client.recv().await, Frame::Ping { id: 1 });
    let (error, data) = client.open_pair(port, 0).await;
    client
        .send(Frame::Data {
            stream_id: error,
            fin: true,
            data: vec![],
        })
        .await;
    client
        .send(Frame::Data {
            stream_id: data,
            fin: false,
            data: b"hello ".to_vec(),
        })
        .await;
    client
        .send(Frame::Data {
            stream_id: data,
            fin: true,
            data: b"pod".to_vec(),
        })
        .await;
    let (error_text, echoed, replies) = collect_pair(&mut client, error, data).await;
    assert_eq!(replies, 2, "both streams are accepted");
    assert_eq!(String::from_utf8_lossy(&echoed), "HELLO POD");
    assert_eq!(String::from_utf8_lossy(&error_text), "", "no error");
    echo.abort();
}

#[tokio::test]
async fn port_forward_reports_a_refused_port_on_the_error_stream() {
    let server = start().await;
    // A port nobody listens on: bind, note, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut tls = server.connect(&server.pki.apiserver).await;
    let (status, _, rest) = upgrade(
        &mut tls,
        "POST",
        "/portForward/default/web",
        &[
            ("Upgrade", "SPDY/3.1"),
            ("X-Stream-Protocol-Version", "portforward.k8s.io"),
        ],
    )
    .await;
    assert_eq!(status, 101);
    let mut client = SpdyClient::new(tls, rest);
    let (error, data) = client.open_pair(port, 0).await;
    let (error_text, _, _) = collect_pair(&mut client, error, data).await;
    let text = String::from_utf8_lossy(&error_text);
    assert!(
        text.starts_with(&format!(
            "error forwarding port {port} to pod web, uid : dial tcp4 127.0.0.1:{port}"
        )),
        "{text}"
    );
}

#[tokio::test]
async fn port_forward_refuses_other_spdy_protocols() {
    let server = start().await;
    let mut tls = server.connect(&server.pki.apiserver).await;
    let (status, head, _) = upgrade(
        &mut tls,
        "POST",
        "/portForward/default/web",
        &[
            ("Upgrade", "SPDY/3.1"),
            ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
        ],
    )
    .await;
    assert_eq!(status, 403, "{head}");
}

/// Client side of client-go's tunnelling: SPDY bytes in masked binary WebSocket messages.
fn client_tunnel(reader: MessageReader<tokio::io::ReadHalf<Tls>>, tx: MessageSender) -> DuplexStream {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let (mut from_spdy, mut to_spdy) = tokio::io::split(theirs);
    let mut reader = reader;
    tokio::spawn(async move {
        while let Ok(Some(m)) = reader.next().await {
            if let Message::Binary(d) = m {
                if to_spdy.write_all(&d).await.is_err() {
                    return;
                }
            }
        }
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16384];
        while let Ok(n) = from_spdy.read(&mut buf).await {
            if n == 0 || !tx.binary(buf[..n].to_vec()).await {
                return;
            }
        }
    });
    ours
}

#[tokio::test]
async fn port_forward_tunnelled_in_websocket_serves_two_connections_at_once() {
    let server = start().await;
    let (port, echo) = echo_server().await;
    let (head, reader, tx) = websocket(&server, "/portForward/default/web", "SPDY/3.1+portforward.k8s.io").await;
    assert!(head.contains("SPDY/3.1+portforward.k8s.io"), "{head}");
    let mut client = SpdyClient::new(client_tunnel(reader, tx), Vec::new());
    let (e0, d0) = client.open_pair(port, 0).await;
    let (e1, d1) = client.open_pair(port, 1).await;
    client
        .send(Frame::Data {
            stream_id: d1,
            fin: true,
            data: b"second".to_vec(),
        })
        .await;
    client
        .send(Frame::Data {
            stream_id: d0,
            fin: true,
            data: b"first".to_vec(),
        })
        .await;
    let mut echoed = std::collections::HashMap::new();
    let mut ended = std::collections::HashSet::new();
    while ended.len() < 4 {
        match client.recv().await {
            Frame::Data { stream_id, fin, data } => {
                echoed.entry(stream_id).or_insert_with(Vec::new).extend(data);
                if fin {
                    ended.insert(stream_id);
                }
            }
            Frame::RstStream { stream_id, .. } => panic!("stream {stream_id} reset"),
            _ => {}
        }
    }
    assert_eq!(echoed.get(&d0).map(Vec::as_slice), Some(&b"FIRST"[..]));
    assert_eq!(echoed.get(&d1).map(Vec::as_slice), Some(&b"SECOND"[..]));
    assert!(echoed.get(&e0).is_none_or(Vec::is_empty) && echoed.get(&e1).is_none_or(Vec::is_empty));
    echo.abort();
}

#[tokio::test]
async fn serve_returns_after_shutdown_and_stops_listening() {
    let mut server = start().await;
    server.stop.take().unwrap().send(()).unwrap();
    within("serve to return", server.task.take().unwrap()).await.unwrap();
    assert!(TcpStream::connect(server.addr).await.is_err(), "the listener is closed");
}
