//! HTTP/1.1 to endpoints (plain or TLS), driven inside the request's own task: the request head is
//! written straight from the client's headers into one buffer, the answer's head is parsed
//! from the first read, and a body that arrived with it is handed on whole. Connections are
//! kept per endpoint in the event loop's pool (nginx's upstream `keepalive`), TLS ones too.
//!
//! hyper's pooled client does the same through a connection task of its own and a channel
//! hop per request; doing it in place saves that, the header map copies and most
//! allocations. Requests with a body or an upgrade still go through hyper.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};

mod io;
use io::Io;

use super::proxy::Failure;

/// How long an idle upstream connection is trusted (nginx's upstream `keepalive_timeout` is
/// 60 s; endpoints often close sooner, which a stale retry covers).
const IDLE_FOR: Duration = Duration::from_secs(50);
/// Idle connections kept per endpoint.
const IDLE_PER_ENDPOINT: usize = 256;
/// Largest response head read.
const MAX_HEAD: usize = 64 * 1024;
/// Headers parsed in one response head.
const MAX_HEADERS: usize = 100;

/// One kept connection and the bytes read past the last answer (none, when it was reusable).
struct Conn {
    io: Io,
    buf: BytesMut,
    since: Instant,
}

/// Idle connections per endpoint, for one event loop.
#[derive(Default)]
pub struct Pool {
    /// By address and whether over TLS.
    idle: Mutex<HashMap<(SocketAddr, bool), Vec<Conn>>>,
}

impl Pool {
    fn take(&self, endpoint: SocketAddr, tls: bool) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(&(endpoint, tls))?;
        // The most recent first; older ones behind it are older still.
        while let Some(c) = list.pop() {
            if c.since.elapsed() < IDLE_FOR {
                return Some(c);
            }
            list.clear();
        }
        None
    }

    fn put(&self, endpoint: SocketAddr, mut conn: Conn) {
        conn.since = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        // Endpoints that went away leave empty lists only.
        if idle.len() > 4096 {
            idle.retain(|_, l| l.last().is_some_and(|c| c.since.elapsed() < IDLE_FOR));
        }
        let list = idle.entry((endpoint, conn.io.is_tls())).or_default();
        if list.len() < IDLE_PER_ENDPOINT {
            list.push(conn);
        }
    }
}

/// An upstream answer's body: whole when it came with the head, else read as the client takes it.
pub enum UpstreamBody {
    /// Everything there was (possibly nothing).
    Whole(Option<Bytes>),
    /// Still arriving.
    Streaming(Box<Streaming>),
}

/// A body still arriving on its connection.
pub struct Streaming {
    conn: Option<Conn>,
    /// Data decoded ahead while looking for the body's end.
    pending: Option<Bytes>,
    framing: Framing,
    reusable: bool,
    pool: Arc<Pool>,
    endpoint: SocketAddr,
    read_timeout: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

/// How the body's end is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// This many bytes remain.
    Length(u64),
    /// Chunked, in this state.
    Chunked(Chunk),
    /// Until the endpoint closes.
    Close,
}

/// Where a chunked decoder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Before a size line.
    Size,
    /// Inside a chunk with this many bytes left.
    Data(u64),
    /// After a chunk's data, before its CRLF.
    DataEnd,
    /// In the trailer section after the last chunk.
    Trailers,
    /// Finished.
    Done,
}

/// A malformed or cut answer from the endpoint.
#[derive(Debug)]
pub struct BadUpstream(pub &'static str);

impl std::fmt::Display for BadUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for BadUpstream {}

/// One decoding step over `buf`: a piece of body data, or None when more bytes are needed or
/// the body ended (`framing` tells which).
fn decode(framing: &mut Framing, buf: &mut BytesMut) -> Result<Option<Bytes>, BadUpstream> {
    loop {
        match framing {
            Framing::Length(0) | Framing::Chunked(Chunk::Done) => return Ok(None),
            Framing::Length(left) => {
                if buf.is_empty() {
                    return Ok(None);
                }
                let n = (*left).min(buf.len() as u64) as usize;
                *left -= n as u64;
                return Ok(Some(buf.split_to(n).freeze()));
            }
            Framing::Close => return Ok((!buf.is_empty()).then(|| buf.split().freeze())),
            Framing::Chunked(state) => match *state {
                Chunk::Done => return Ok(None),
                Chunk::Size => {
                    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
                        if buf.len() > 4096 {
                            return Err(BadUpstream("a chunk size line is too long"));
                        }
                        return Ok(None);
                    };
                    let line = &buf[..end];
                    let digits = line.split(|b| *b == b';').next().unwrap_or(b"");
                    let digits = std::str::from_utf8(digits).map_err(|_| BadUpstream("a bad chunk size"))?;
                    let size = u64::from_str_radix(digits.trim(), 16).map_err(|_| BadUpstream("a bad chunk size"))?;
                    buf.advance(end + 2);
                    *state = if size == 0 { Chunk::Trailers } else { Chunk::Data(size) };
                }
                Chunk::Data(left) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = left.min(buf.len() as u64) as usize;
                    *state = if left == n as u64 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left - n as u64)
                    };
                    return Ok(Some(buf.split_to(n).freeze()));
                }
                Chunk::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(None);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(BadUpstream("a chunk does not end with CRLF"));
                    }
                    buf.advance(2);
                    *state = Chunk::Size;
                }
                Chunk::Trailers => {
                    // Trailer fields are dropped, as nginx does for HTTP/1.1 clients.
                    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
                        return Ok(None);
                    };
                    buf.advance(end + 2);
                    if end == 0 {
                        *state = Chunk::Done;
                    }
                }
            },
        }
    }
}

impl Framing {
    fn done(&self) -> bool {
        matches!(self, Framing::Length(0) | Framing::Chunked(Chunk::Done))
    }
}

impl Streaming {
    /// The answer was read to its end: the connection goes back to the pool if it may.
    fn release(&mut self) {
        if let Some(conn) = self.conn.take() {
            if self.reusable && conn.buf.is_empty() {
                self.pool.put(self.endpoint, conn);
            }
        }
    }

    /// Reads more into the buffer: Ok(false) at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, Box<dyn std::error::Error + Send + Sync>>> {
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(Ok(false));
        };
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(Box::new(BadUpstream("the endpoint stopped sending"))));
        }
        let len = conn.buf.len();
        conn.buf.resize(len + 16 * 1024, 0);
        let mut rb = ReadBuf::new(&mut conn.buf[len..]);
        let polled = Pin::new(&mut conn.io).poll_read(cx, &mut rb);
        let n = rb.filled().len();
        conn.buf.truncate(len + n);
        ready!(polled)?;
        let deadline = tokio::time::Instant::now() + self.read_timeout;
        self.deadline.as_mut().reset(deadline);
        Poll::Ready(Ok(n > 0))
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let s = match &mut *self {
            UpstreamBody::Whole(data) => return Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            UpstreamBody::Streaming(s) => s,
        };
        if let Some(data) = s.pending.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        loop {
            let Some(conn) = s.conn.as_mut() else {
                return Poll::Ready(None);
            };
            if let Some(data) = decode(&mut s.framing, &mut conn.buf)? {
                // Look past the data for the body's end: hyper stops asking once it has
                // written a Content-Length's worth, and the connection goes back to the pool
                // only when its answer has been read to the end.
                s.pending = decode(&mut s.framing, &mut conn.buf)?;
                if s.pending.is_none() && s.framing.done() {
                    s.release();
                }
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            if s.framing.done() {
                s.release();
                return Poll::Ready(None);
            }
            if !ready!(s.poll_fill(cx))? {
                s.conn = None;
                return match s.framing {
                    Framing::Close => Poll::Ready(None),
                    _ => Poll::Ready(Some(Err(Box::new(BadUpstream("the endpoint closed mid-body"))))),
                };
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Whole(data) => data.is_none(),
            UpstreamBody::Streaming(s) => s.conn.is_none() && s.pending.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Whole(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            UpstreamBody::Streaming(s) => match s.framing {
                Framing::Length(n) => SizeHint::with_exact(n + s.pending.as_ref().map_or(0, |p| p.len() as u64)),
                _ => SizeHint::default(),
            },
        }
    }
}

/// The request's line and headers as sent upstream: `method path HTTP/1.1`, `Host`, then the
/// client's headers but hop-by-hop and forwarded ones, then `extra` (the forwarded headers).
pub fn request_head(
    method: &str,
    path_and_query: &str,
    host: &[u8],
    incoming: &HeaderMap,
    skip: impl Fn(&HeaderName) -> bool,
    extra: &[(&HeaderName, &[u8])],
) -> Vec<u8> {
    let mut head = Vec::with_capacity(256 + incoming.len() * 48);
    head.extend_from_slice(method.as_bytes());
    head.push(b' ');
    head.extend_from_slice(path_and_query.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    head.extend_from_slice(host);
    head.extend_from_slice(b"\r\n");
    for (name, value) in incoming {
        if skip(name) {
            continue;
        }
        line(&mut head, name.as_str().as_bytes(), value.as_bytes());
    }
    for (name, value) in extra {
        line(&mut head, name.as_str().as_bytes(), value);
    }
    head.extend_from_slice(b"\r\n");
    head
}

fn line(head: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    head.extend_from_slice(name);
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

/// Sends `head` (a request without body) to `endpoint` (over TLS with `tls`) on a kept
/// connection or a new one and reads the answer's head. A kept connection the endpoint closed
/// meanwhile is replaced by a new one once, as nginx does with its cached upstream connections.
#[allow(clippy::too_many_arguments)]
pub async fn exchange(
    pool: &Arc<Pool>,
    endpoint: SocketAddr,
    tls: Option<&Arc<rustls::ClientConfig>>,
    head: &[u8],
    head_request: bool,
    connect_timeout: Duration,
    read_timeout: Duration,
) -> Result<Response<UpstreamBody>, Failure> {
    let mut kept = pool.take(endpoint, tls.is_some());
    loop {
        let reused = kept.is_some();
        let mut conn = match kept.take() {
            Some(c) => c,
            None => {
                let io = io::connect(endpoint, tls, connect_timeout).await?;
                Conn {
                    io,
                    buf: BytesMut::with_capacity(8 * 1024),
                    since: Instant::now(),
                }
            }
        };
        // Flushed for TLS, whose records may wait in its buffer; a no-op on plain TCP.
        let written = match conn.io.write_all(head).await {
            Ok(()) => conn.io.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            if reused {
                continue;
            }
            return Err(Failure::Exchange(e.to_string()));
        }
        match tokio::time::timeout(read_timeout, read_head(&mut conn)).await {
            Err(_) => return Err(Failure::Timeout),
            Ok(Err(HeadError::Closed)) if reused => continue,
            Ok(Err(HeadError::Closed)) => return Err(Failure::Exchange("the endpoint closed the connection".into())),
            Ok(Err(HeadError::Bad(e))) => return Err(Failure::Exchange(e.into())),
            Ok(Ok(parsed)) => return Ok(answer(pool, endpoint, conn, parsed, head_request, read_timeout)),
        }
    }
}

/// A parsed response head.
struct Head {
    status: StatusCode,
    headers: HeaderMap,
    framing: Framing,
    reusable: bool,
}

enum HeadError {
    /// Closed before a byte of the answer.
    Closed,
    Bad(&'static str),
}

async fn read_head(conn: &mut Conn) -> Result<Head, HeadError> {
    use tokio::io::AsyncReadExt;
    loop {
        if !conn.buf.is_empty() {
            if let Some(head) = parse_head(&mut conn.buf)? {
                return Ok(head);
            }
        }
        if conn.buf.len() >= MAX_HEAD {
            return Err(HeadError::Bad("the answer's head is too large"));
        }
        conn.buf.reserve(8 * 1024);
        let had = conn.buf.len();
        match conn.io.read_buf(&mut conn.buf).await {
            Ok(0) | Err(_) if had == 0 => return Err(HeadError::Closed),
            Ok(0) => return Err(HeadError::Bad("the endpoint closed mid-head")),
            Err(_) => return Err(HeadError::Bad("reading the answer failed")),
            Ok(_) => {}
        }
    }
}

/// The head at the start of `buf`, consumed from it; None while incomplete. Interim (1xx)
/// answers are skipped.
fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, HeadError> {
    loop {
        let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut raw);
        let len = match parsed.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(HeadError::Bad("a malformed answer")),
        };
        let code = parsed.code.unwrap_or(0);
        if (100..200).contains(&code) {
            if code == 101 {
                return Err(HeadError::Bad("an upgrade nobody asked for"));
            }
            buf.advance(len);
            if buf.is_empty() {
                return Ok(None);
            }
            continue;
        }
        let status = StatusCode::from_u16(code).map_err(|_| HeadError::Bad("a bad status"))?;
        let mut headers = HeaderMap::with_capacity(parsed.headers.len());
        let mut framing = Framing::Close;
        let mut chunked = false;
        let mut reusable = parsed.version == Some(1);
        for h in parsed.headers.iter() {
            let Ok(name) = HeaderName::from_bytes(h.name.as_bytes()) else {
                return Err(HeadError::Bad("a bad header name"));
            };
            if name == http::header::CONTENT_LENGTH {
                let n = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok());
                match (n, framing) {
                    (Some(n), Framing::Close) => framing = Framing::Length(n),
                    (Some(n), Framing::Length(m)) if n == m => {}
                    _ => return Err(HeadError::Bad("a bad Content-Length")),
                }
            } else if name == http::header::TRANSFER_ENCODING {
                chunked = h.value.eq_ignore_ascii_case(b"chunked")
                    || h.value
                        .rsplit(|b| *b == b',')
                        .next()
                        .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
                continue;
            } else if name == http::header::CONNECTION {
                if h.value
                    .split(|b| *b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
                {
                    reusable = false;
                }
                continue;
            } else if super::headers::is_hop_by_hop(&name) {
                continue;
            }
            let Ok(value) = HeaderValue::from_bytes(h.value) else {
                return Err(HeadError::Bad("a bad header value"));
            };
            headers.append(name, value);
        }
        if chunked {
            // Transfer-Encoding wins over Content-Length (RFC 9112 §6.3), and hyper re-frames.
            headers.remove(http::header::CONTENT_LENGTH);
            framing = Framing::Chunked(Chunk::Size);
        }
        buf.advance(len);
        if framing == Framing::Close {
            reusable = false;
        }
        return Ok(Some(Head {
            status,
            headers,
            framing,
            reusable,
        }));
    }
}

/// The response for a parsed head: no body for HEAD, 204 and 304; the body whole when it
/// came along; the connection back to the pool as soon as its answer is read.
fn answer(
    pool: &Arc<Pool>,
    endpoint: SocketAddr,
    mut conn: Conn,
    head: Head,
    head_request: bool,
    read_timeout: Duration,
) -> Response<UpstreamBody> {
    let Head {
        status,
        headers,
        framing,
        reusable,
    } = head;
    let bodiless = head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let body = if bodiless {
        if reusable && conn.buf.is_empty() {
            pool.put(endpoint, conn);
        }
        UpstreamBody::Whole(None)
    } else {
        match framing {
            Framing::Length(n) if (conn.buf.len() as u64) >= n => {
                let data = conn.buf.split_to(n as usize).freeze();
                if reusable && conn.buf.is_empty() {
                    pool.put(endpoint, conn);
                }
                UpstreamBody::Whole((n > 0).then_some(data))
            }
            _ => UpstreamBody::Streaming(Box::new(Streaming {
                conn: Some(conn),
                pending: None,
                framing,
                reusable,
                pool: pool.clone(),
                endpoint,
                read_timeout,
                deadline: Box::pin(tokio::time::sleep(read_timeout)),
            })),
        }
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

#[cfg(test)]
mod tests;
