//! Accepting connections: TLS (HTTP/1.1 only, so upgrades work), authentication, then the REST
//! engine.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use podway_api::status::ApiError;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::handlers::Api;
use crate::pki::Pki;
use crate::response::{self, Body};

/// Who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// A client certificate signed by the cluster CA, or the bearer token.
    Authenticated,
    /// Nothing presented.
    Anonymous,
}

/// The TLS acceptor: serving certificate, client certificates optional but verified.
pub fn tls_acceptor(pki: &Pki) -> Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> =
        rustls_pemfile::certs(&mut pki.server_cert.as_bytes()).collect::<Result<_, _>>()?;
    let key: PrivateKeyDer<'static> =
        rustls_pemfile::private_key(&mut pki.server_key.as_bytes())?.context("no key in apiserver.key")?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in rustls_pemfile::certs(&mut pki.ca_cert.as_bytes()) {
        roots.add(ca?)?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Paths anyone may read, as the real server's `system:public-info-viewer` allows.
fn public(path: &str) -> bool {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    matches!(first, "version" | "healthz" | "livez" | "readyz")
}

/// Serve connections from `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    api: Arc<Api>,
    token: String,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let token = Arc::new(token);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let api = api.clone();
        let token = token.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(tcp, peer, acceptor, api, token).await {
                tracing::debug!("connection from {peer}: {e}");
            }
        });
    }
}

async fn connection(
    tcp: tokio::net::TcpStream,
    _peer: SocketAddr,
    acceptor: TlsAcceptor,
    api: Arc<Api>,
    token: Arc<String>,
) -> Result<()> {
    let tls = acceptor.accept(tcp).await?;
    let has_cert = tls.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty());
    let service = service_fn(move |req: Request<Incoming>| {
        let api = api.clone();
        let token = token.clone();
        async move {
            let caller = if has_cert || bearer_matches(&req, &token) {
                Caller::Authenticated
            } else {
                Caller::Anonymous
            };
            let resp: Response<Body> = if caller == Caller::Anonymous && !public(req.uri().path()) {
                response::error(&ApiError::unauthorized())
            } else {
                api.serve(req).await
            };
            Ok::<_, std::convert::Infallible>(resp)
        }
    });
    hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tls), service)
        .with_upgrades()
        .await?;
    Ok(())
}

fn bearer_matches(req: &Request<Incoming>, token: &str) -> bool {
    let Some(h) = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(given) = h.strip_prefix("Bearer ") else {
        return false;
    };
    // Compare without an early exit so timing says nothing about the token.
    given.len() == token.len() && given.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}
