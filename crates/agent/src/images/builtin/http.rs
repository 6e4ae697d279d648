//! A small HTTP/1.1 server for the built-in images: enough for curl, browsers, probes and load
//! tools (keep-alive, pipelining, `Expect: 100-continue`, chunked request bodies, HEAD), with no
//! framework so one process per pod stays a few MB.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Request heads larger than this get 431 and the connection is closed.
const MAX_HEAD: usize = 64 * 1024;
/// Request bodies larger than this get 413 and the connection is closed.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub method: String,
    /// The request target as sent (`/path?query`).
    pub target: String,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    /// Headers in arrival order, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub remote: SocketAddr,
    pub local: SocketAddr,
}

impl Request {
    /// The first value of a header (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path part of the target.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The query string, if the target has a `?`.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// The value of a query parameter (no percent-decoding: the images' parameters are plain).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query()?.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then_some(v)
        })
    }

    fn wants_close(&self) -> bool {
        let has = |token: &str| {
            self.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
                .any(|(_, v)| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        };
        if self.version == "HTTP/1.0" {
            !has("keep-alive")
        } else {
            has("close")
        }
    }
}

/// A response; `Content-Length`, `Date` and `Connection` are added when it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering (whoami's `?wait=`).
    pub delay: Option<Duration>,
}

impl Response {
    /// A response with a body and a content type.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".to_string(), content_type.to_string())],
            body: body.into(),
            delay: None,
        }
    }

    /// Add a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// What answers requests.
pub(crate) type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// Serve `listener` until `shutdown` completes; connections in flight are dropped then (the
/// process is about to exit).
pub(crate) async fn serve(
    listener: TcpListener,
    handler: Handler,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    let handler = handler.clone();
                    tokio::spawn(async move {
                        // A client that goes away mid-request is not an error worth reporting.
                        let _ = connection(stream, remote, handler).await;
                    });
                }
                // Out of descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
        }
    }
}

enum Head {
    Complete(Request, usize),
    Incomplete,
    Invalid(u16),
}

async fn connection(mut stream: TcpStream, remote: SocketAddr, handler: Handler) -> io::Result<()> {
    let local = stream.local_addr()?;
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        // Read a head (it may already be buffered: pipelining).
        let (mut request, head_len) = loop {
            match parse_head(&buf, remote, local) {
                Head::Complete(request, len) => break (request, len),
                Head::Invalid(status) => return reject(&mut stream, status).await,
                Head::Incomplete if buf.len() > MAX_HEAD => return reject(&mut stream, 431).await,
                Head::Incomplete => {
                    if read_more(&mut stream, &mut buf).await? == 0 {
                        return Ok(());
                    }
                }
            }
        };
        buf.drain(..head_len);

        let chunked = request
            .header("transfer-encoding")
            .is_some_and(|te| te.split(',').any(|t| t.trim().eq_ignore_ascii_case("chunked")));
        let length = match request.header("content-length") {
            Some(v) if !chunked => match v.trim().parse::<usize>() {
                Ok(n) => n,
                Err(_) => return reject(&mut stream, 400).await,
            },
            _ => 0,
        };
        if length > MAX_BODY {
            return reject(&mut stream, 413).await;
        }
        let expects_body = chunked || length > 0;
        if expects_body
            && buf.is_empty()
            && request
                .header("expect")
                .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
        {
            stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        }
        if chunked {
            request.body = loop {
                match decode_chunked(&buf) {
                    Ok(Some((body, used))) => {
                        buf.drain(..used);
                        break body;
                    }
                    Ok(None) if buf.len() > MAX_BODY + MAX_HEAD => return reject(&mut stream, 413).await,
                    Ok(None) => {
                        if read_more(&mut stream, &mut buf).await? == 0 {
                            return Ok(());
                        }
                    }
                    Err(()) => return reject(&mut stream, 400).await,
                }
            };
        } else {
            while buf.len() < length {
                if read_more(&mut stream, &mut buf).await? == 0 {
                    return Ok(());
                }
            }
            request.body = buf.drain(..length).collect();
        }

        let close = request.wants_close();
        let response = handler(&request);
        if let Some(delay) = response.delay {
            tokio::time::sleep(delay).await;
        }
        let bytes = serialize(&request, &response, close);
        stream.write_all(&bytes).await?;
        if close {
            let _ = stream.shutdown().await;
            return Ok(());
        }
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

async fn reject(stream: &mut TcpStream, status: u16) -> io::Result<()> {
    let text = format!("{status} {}", reason(status));
    let response = format!(
        "HTTP/1.1 {text}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{text}",
        text.len()
    );
    stream.write_all(response.as_bytes()).await?;
    let _ = stream.shutdown().await;
    Ok(())
}

fn parse_head(buf: &[u8], remote: SocketAddr, local: SocketAddr) -> Head {
    // Tolerate empty lines before a request (RFC 9112 §2.2).
    let start = buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
    let Some(end) = buf[start..].windows(4).position(|w| w == b"\r\n\r\n") else {
        return Head::Incomplete;
    };
    let Ok(text) = std::str::from_utf8(&buf[start..start + end]) else {
        return Head::Invalid(400);
    };
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(target), Some(version), None) = (
        request_line.next(),
        request_line.next(),
        request_line.next(),
        request_line.next(),
    ) else {
        return Head::Invalid(400);
    };
    if method.is_empty() || target.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
        return Head::Invalid(400);
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Head::Invalid(505);
    }
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Head::Invalid(400);
        };
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
            return Head::Invalid(400);
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let request = Request {
        method: method.to_string(),
        target: target.to_string(),
        version: version.to_string(),
        headers,
        body: Vec::new(),
        remote,
        local,
    };
    Head::Complete(request, start + end + 4)
}

/// Decode a complete chunked body at the start of `buf`: `Ok(None)` if more bytes are needed.
fn decode_chunked(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, ()> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(line_end) = find_crlf(&buf[pos..]) else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&buf[pos..pos + line_end]).map_err(|_| ())?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| ())?;
        pos += line_end + 2;
        if size == 0 {
            // Trailers, then an empty line.
            loop {
                let Some(end) = find_crlf(&buf[pos..]) else {
                    return Ok(None);
                };
                pos += end + 2;
                if end == 0 {
                    return Ok(Some((body, pos)));
                }
            }
        }
        if size > MAX_BODY || body.len() + size > MAX_BODY {
            return Err(());
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            return Err(());
        }
        pos += size + 2;
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

fn serialize(request: &Request, response: &Response, close: bool) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", response.status, reason(response.status));
    let date = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&jiff::Timestamp::now())
        .unwrap_or_default();
    head.push_str(&format!("Date: {date}\r\n"));
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let bodyless_status = response.status == 204 || response.status == 304 || response.status < 200;
    if !bodyless_status {
        head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    }
    if close {
        head.push_str("Connection: close\r\n");
    } else if request.version == "HTTP/1.0" {
        head.push_str("Connection: keep-alive\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    if request.method != "HEAD" && !bodyless_status {
        bytes.extend_from_slice(&response.body);
    }
    bytes
}

/// The reason phrase for a status code.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        418 => "I'm a teapot",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_head_is_parsed_with_its_headers_and_length() {
        let raw = b"\r\nGET /a?b=1 HTTP/1.1\r\nHost: x\r\nAccept:  */*\r\n\r\nrest";
        let Head::Complete(r, len) = parse_head(raw, addr("1.2.3.4:5"), addr("6.7.8.9:80")) else {
            panic!()
        };
        assert_eq!(
            (r.method.as_str(), r.path(), r.query(), r.version.as_str()),
            ("GET", "/a", Some("b=1"), "HTTP/1.1")
        );
        assert_eq!(r.header("accept"), Some("*/*"));
        assert_eq!(r.query_param("b"), Some("1"));
        assert_eq!(&raw[len..], b"rest");
    }

    #[test]
    fn malformed_heads_are_rejected_and_partial_ones_wait() {
        let a = addr("1.2.3.4:5");
        assert!(matches!(
            parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n", a, a),
            Head::Incomplete
        ));
        assert!(matches!(parse_head(b"GET /\r\n\r\n", a, a), Head::Invalid(400)));
        assert!(matches!(
            parse_head(b"GET / HTTP/2.0\r\n\r\n", a, a),
            Head::Invalid(505)
        ));
        assert!(matches!(
            parse_head(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", a, a),
            Head::Invalid(400)
        ));
    }

    #[test]
    fn chunked_bodies_are_decoded_once_complete() {
        let raw = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let (body, used) = decode_chunked(raw).unwrap().unwrap();
        assert_eq!(body, b"Wikipedia");
        assert_eq!(&raw[used..], b"NEXT");
        assert_eq!(decode_chunked(b"4\r\nWi").unwrap(), None);
        assert!(decode_chunked(b"zz\r\n").is_err());
    }

    #[test]
    fn keep_alive_follows_the_http_version_and_connection_header() {
        let a = addr("1.2.3.4:5");
        let req = |version: &str, connection: Option<&str>| Request {
            method: "GET".into(),
            target: "/".into(),
            version: version.into(),
            headers: connection
                .map(|c| ("Connection".to_string(), c.to_string()))
                .into_iter()
                .collect(),
            body: vec![],
            remote: a,
            local: a,
        };
        assert!(!req("HTTP/1.1", None).wants_close());
        assert!(req("HTTP/1.1", Some("Close")).wants_close());
        assert!(req("HTTP/1.0", None).wants_close());
        assert!(!req("HTTP/1.0", Some("keep-alive")).wants_close());
        let head = req("HTTP/1.1", None);
        let head = Request {
            method: "HEAD".into(),
            ..head
        };
        let bytes = serialize(&head, &Response::new(200, "text/plain", "hello"), false);
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.contains("Content-Length: 5\r\n") && text.ends_with("\r\n\r\n"),
            "{text}"
        );
    }
}
