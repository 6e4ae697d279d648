//! A connection to an endpoint: plain TCP, or TLS over it for `backend-protocol: HTTPS` (the
//! endpoint's certificate not checked, as ingress-nginx's `proxy_ssl_verify off` default).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::server::proxy::Failure;

/// Plain or TLS.
pub enum Io {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (boxed: the TLS state is large and rarer).
    Tls(Box<TlsStream<TcpStream>>),
}

impl Io {
    /// Whether this is a TLS connection (pooled apart from plain ones to the same address).
    pub fn is_tls(&self) -> bool {
        matches!(self, Io::Tls(_))
    }
}

/// Connects to `endpoint` within `timeout`, over TLS with `tls`. Not reaching the endpoint is
/// a [`Failure::Connect`] (the next endpoint may be tried); a failed TLS handshake is not.
pub async fn connect(
    endpoint: SocketAddr,
    tls: Option<&Arc<rustls::ClientConfig>>,
    timeout: Duration,
) -> Result<Io, Failure> {
    let tcp = match tokio::time::timeout(timeout, TcpStream::connect(endpoint)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => return Err(Failure::Connect(e.to_string())),
        Err(_) => return Err(Failure::Connect("connect timed out".into())),
    };
    let _ = tcp.set_nodelay(true);
    let Some(config) = tls else {
        return Ok(Io::Plain(tcp));
    };
    let name = podway_tls::server_name(&endpoint.ip().to_string()).map_err(|e| Failure::Exchange(e.to_string()))?;
    let handshake = tokio_rustls::TlsConnector::from(config.clone()).connect(name, tcp);
    match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(stream)) => Ok(Io::Tls(Box::new(stream))),
        Ok(Err(e)) => Err(Failure::Exchange(format!("TLS: {e}"))),
        Err(_) => Err(Failure::Exchange("the TLS handshake timed out".into())),
    }
}

impl AsyncRead for Io {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
