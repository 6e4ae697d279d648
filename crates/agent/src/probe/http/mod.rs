//! The `httpGet` probe, behaving as the kubelet's Go HTTP client does (`pkg/probe/http`):
//! one HTTP/1.1 GET per attempt with `Connection: close`, HTTPS without certificate
//! verification, redirects followed only to the same host name (at most 10), the first 10 KiB
//! of the body read, 200 <= status < 400 passing, and Go's error texts in the messages.

use std::fmt;
use std::time::Duration;

use k8s_openapi::api::core::v1::HTTPGetAction;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::action::{dial, endpoint, go_io_error, go_quote, join_host_port, Attempt, ProbeTarget};

/// The probe's User-Agent unless the probe sets one (`kube-probe/<major>.<minor>`).
pub const USER_AGENT: &str = "kube-probe/1.32";
/// How much of a response body is read (the kubelet's `maxRespBodyLength`, 10 KiB).
pub const MAX_BODY: usize = 10 * 1024;
/// How many requests one attempt may make while following redirects.
pub const MAX_REDIRECTS: usize = 10;
const MAX_HEADER_BYTES: usize = 1 << 20;

mod tls;
mod url;

pub use url::ProbeUrl;

/// Run an `httpGet` probe of `target` with `timeout` for the whole exchange.
pub async fn http_get_probe(action: &HTTPGetAction, target: &ProbeTarget, timeout: Duration) -> Attempt {
    let (host, port) = match endpoint(&action.port, action.host.as_deref(), target) {
        Ok(e) => e,
        Err(errored) => return errored,
    };
    let scheme = action.scheme.as_deref().unwrap_or("").to_ascii_lowercase();
    let url = ProbeUrl::new(
        if scheme.is_empty() { "http" } else { &scheme },
        host,
        port,
        action.path.as_deref().unwrap_or(""),
    );
    let headers = action
        .http_headers
        .iter()
        .flatten()
        .map(|h| (h.name.clone(), h.value.clone()))
        .collect();
    http_get(url, headers, timeout).await
}

/// GET `url` with the probe's `headers` (name, value) and judge the response.
pub async fn http_get(url: ProbeUrl, headers: Vec<(String, String)>, timeout: Duration) -> Attempt {
    let mut progress = Progress {
        url: url.to_string(),
        reading_body: false,
    };
    match tokio::time::timeout(timeout, exchange(url, &headers, &mut progress)).await {
        Ok(attempt) => attempt,
        Err(_) if progress.reading_body => Attempt::Errored {
            result: "failure",
            error: "context deadline exceeded (Client.Timeout or context cancellation while reading body)".to_string(),
        },
        Err(_) => Attempt::Failure(format!(
            "Get {}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
            go_quote(&progress.url)
        )),
    }
}

/// Where an exchange got to, so a timeout can be worded as Go words it.
struct Progress {
    url: String,
    reading_body: bool,
}

async fn exchange(first: ProbeUrl, headers: &[(String, String)], progress: &mut Progress) -> Attempt {
    let request = Request::new(headers);
    let mut url = first.clone();
    // A custom Host header survives only relative redirects, as in Go's client.
    let mut host_override = request.host.clone();
    for requests in 1.. {
        progress.url = url.to_string();
        let mut conn = match connect(&url).await {
            Ok(conn) => conn,
            Err(error) => return Attempt::Failure(format!("Get {}: {error}", go_quote(&progress.url))),
        };
        let head = match send(&mut conn, &url, &request, host_override.as_deref()).await {
            Ok(head) => head,
            Err(error) => return Attempt::Failure(format!("Get {}: {error}", go_quote(&progress.url))),
        };
        if let Some(location) = head.redirect_location() {
            let next = match url.join(location) {
                Ok(next) => next,
                Err(error) => return Attempt::Failure(format!("Get {}: {error}", go_quote(location))),
            };
            // Another host: keep this response (the kubelet's RedirectChecker).
            if next.host() == first.host() {
                if requests >= MAX_REDIRECTS {
                    return Attempt::Failure(format!("Get {}: stopped after 10 redirects", go_quote(location)));
                }
                if !url::is_relative(location) {
                    host_override = None;
                }
                url = next;
                continue;
            }
        }
        progress.reading_body = true;
        let body = match read_body(&mut conn, &head).await {
            Ok(body) => body,
            Err(error) => {
                return Attempt::Errored {
                    result: "failure",
                    error,
                }
            }
        };
        let body = String::from_utf8_lossy(&body).into_owned();
        return match head.status {
            200..=299 => Attempt::Success(body),
            300..=399 => Attempt::Warning(format!("Probe terminated redirects, Response body: {body}")),
            code => Attempt::Failure(format!("HTTP probe failed with statuscode: {code}")),
        };
    }
    unreachable!("the redirect loop returns")
}

/// The request headers, settled once: `User-Agent` and `Accept: */*` added unless given, an
/// empty `Accept` dropped, `Host` taken out to become the request's host.
struct Request {
    host: Option<String>,
    user_agent: String,
    lines: Vec<(String, String)>,
}

impl Request {
    fn new(headers: &[(String, String)]) -> Request {
        let first = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let host = first("Host").filter(|h| !h.is_empty());
        let user_agent = first("User-Agent").unwrap_or_else(|| USER_AGENT.to_string());
        let mut lines: Vec<(String, String)> = headers
            .iter()
            .filter(|(n, _)| {
                ![
                    "Host",
                    "User-Agent",
                    "Content-Length",
                    "Transfer-Encoding",
                    "Trailer",
                    "Connection",
                ]
                .iter()
                .any(|skip| n.eq_ignore_ascii_case(skip))
            })
            .cloned()
            .collect();
        match first("Accept") {
            None => lines.push(("Accept".to_string(), "*/*".to_string())),
            Some(accept) if accept.is_empty() => lines.retain(|(n, _)| !n.eq_ignore_ascii_case("Accept")),
            Some(_) => {}
        }
        Request {
            host,
            user_agent,
            lines,
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A connection whose first bytes of the response are already buffered.
struct Conn {
    io: Box<dyn Io>,
    buffered: Vec<u8>,
}

async fn connect(url: &ProbeUrl) -> Result<Conn, String> {
    let tcp = dial(url.host(), url.port()).await?;
    let io: Box<dyn Io> = match url.scheme() {
        "http" => Box::new(tcp),
        "https" => Box::new(tls::connect(url.host(), tcp).await?),
        other => return Err(format!("unsupported protocol scheme {}", go_quote(other))),
    };
    Ok(Conn {
        io,
        buffered: Vec::new(),
    })
}

/// A response's status line and the headers that matter here.
struct Head {
    status: u16,
    location: Option<String>,
    chunked: bool,
    content_length: Option<usize>,
}

impl Head {
    /// The Location to follow: only 301, 302, 303, 307 and 308 with a non-empty Location are
    /// followed, as in Go's client; other 3xx responses are final.
    fn redirect_location(&self) -> Option<&str> {
        match self.status {
            301 | 302 | 303 | 307 | 308 => self.location.as_deref().filter(|l| !l.is_empty()),
            _ => None,
        }
    }
}

async fn send(conn: &mut Conn, url: &ProbeUrl, request: &Request, host: Option<&str>) -> Result<Head, String> {
    let mut text = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n",
        url.request_target(),
        host.unwrap_or(&url.host_port())
    );
    if !request.user_agent.is_empty() {
        text.push_str(&format!("User-Agent: {}\r\n", request.user_agent));
    }
    for (name, value) in &request.lines {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("Connection: close\r\n\r\n");
    conn.io
        .write_all(text.as_bytes())
        .await
        .map_err(|e| format!("write: {}", go_io_error(&e)))?;
    conn.io
        .flush()
        .await
        .map_err(|e| format!("write: {}", go_io_error(&e)))?;
    loop {
        let head = read_head(conn).await?;
        // Informational responses precede the real one (101 would switch protocols; a GET
        // without Upgrade never gets it).
        if !(100..200).contains(&head.status) {
            return Ok(head);
        }
    }
}

async fn read_head(conn: &mut Conn) -> Result<Head, String> {
    let end = loop {
        if let Some(end) = find_head_end(&conn.buffered) {
            break end;
        }
        if conn.buffered.len() > MAX_HEADER_BYTES {
            return Err(format!(
                "net/http: server response headers exceeded {MAX_HEADER_BYTES} bytes; aborted"
            ));
        }
        let mut chunk = [0u8; 4096];
        let n = conn
            .io
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read: {}", go_io_error(&e)))?;
        if n == 0 {
            return Err(if conn.buffered.is_empty() {
                "EOF".to_string()
            } else {
                "unexpected EOF".to_string()
            });
        }
        conn.buffered.extend_from_slice(&chunk[..n]);
    };
    let head_bytes: Vec<u8> = conn.buffered.drain(..end).collect();
    let text = String::from_utf8_lossy(&head_bytes);
    let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
    let status_line = lines.next().unwrap_or("");
    let malformed = || {
        format!(
            "net/http: HTTP/1.x transport connection broken: malformed HTTP response {}",
            go_quote(status_line)
        )
    };
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !version.starts_with("HTTP/") || code.len() != 3 {
        return Err(malformed());
    }
    let status = code.parse::<u16>().map_err(|_| malformed())?;
    let mut head = Head {
        status,
        location: None,
        chunked: false,
        content_length: None,
    };
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("Location") && head.location.is_none() {
            head.location = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("Transfer-Encoding") {
            head.chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("Content-Length") {
            head.content_length = value.parse().ok();
        }
    }
    Ok(head)
}

/// The end (exclusive) of the header block, accepting bare LF line ends as Go does.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Read at most [`MAX_BODY`] bytes of the body; a longer body is cut, not an error.
async fn read_body(conn: &mut Conn, head: &Head) -> Result<Vec<u8>, String> {
    if head.status == 204 || head.status == 304 {
        return Ok(Vec::new());
    }
    let mut raw = std::mem::take(&mut conn.buffered);
    if head.chunked {
        return read_chunked(conn, raw).await;
    }
    let want = head.content_length.unwrap_or(usize::MAX).min(MAX_BODY);
    while raw.len() < want {
        let mut chunk = [0u8; 4096];
        let n = conn.io.read(&mut chunk).await.map_err(|e| go_io_error(&e))?;
        if n == 0 {
            if head.content_length.is_some() {
                return Err("unexpected EOF".to_string());
            }
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
    }
    raw.truncate(want);
    Ok(raw)
}

async fn read_chunked(conn: &mut Conn, mut raw: Vec<u8>) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        // Each chunk: "<hex size>[;ext]\r\n<data>\r\n"; a zero size ends the body.
        let line_end = loop {
            if let Some(at) = raw[pos..].iter().position(|b| *b == b'\n') {
                break pos + at;
            }
            fill(conn, &mut raw).await?;
        };
        let line = String::from_utf8_lossy(&raw[pos..line_end])
            .trim_end_matches('\r')
            .to_string();
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "invalid byte in chunk length".to_string())?;
        if size == 0 {
            return Ok(body);
        }
        pos = line_end + 1;
        let needed = size.min(MAX_BODY - body.len());
        while raw.len() < pos + needed {
            fill(conn, &mut raw).await?;
        }
        body.extend_from_slice(&raw[pos..pos + needed]);
        if body.len() >= MAX_BODY {
            return Ok(body);
        }
        while raw.len() < pos + size + 2 {
            fill(conn, &mut raw).await?;
        }
        pos += size + 2;
    }
}

async fn fill(conn: &mut Conn, raw: &mut Vec<u8>) -> Result<(), String> {
    let mut chunk = [0u8; 4096];
    let n = conn.io.read(&mut chunk).await.map_err(|e| go_io_error(&e))?;
    if n == 0 {
        return Err("unexpected EOF".to_string());
    }
    raw.extend_from_slice(&chunk[..n]);
    Ok(())
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn").field("buffered", &self.buffered.len()).finish()
    }
}

#[cfg(test)]
mod tests;
