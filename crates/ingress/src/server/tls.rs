//! TLS for port 443: the certificate is chosen per handshake by SNI from the current routing
//! table; parsed keys are cached by their PEM text, and a self-signed default certificate
//! answers names no Ingress has a certificate for (ingress-nginx's "Fake Certificate").

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::RouterHandle;

/// Keys parsed once per distinct PEM.
const CACHE_LIMIT: usize = 10_000;

/// Picks the certificate for a client hello.
#[derive(Debug)]
pub struct SniResolver {
    handle: RouterHandle,
    provider: Arc<CryptoProvider>,
    cache: Mutex<HashMap<(String, String), Arc<CertifiedKey>>>,
    fallback: Arc<CertifiedKey>,
}

impl SniResolver {
    /// A resolver over `handle`'s tables, with a fresh self-signed default certificate.
    pub fn new(handle: RouterHandle, provider: Arc<CryptoProvider>) -> anyhow::Result<SniResolver> {
        let (chain, key) = fake_certificate()?;
        let fallback = certified(&provider, &chain, &key)?;
        Ok(SniResolver {
            handle,
            provider,
            cache: Mutex::new(HashMap::new()),
            fallback: Arc::new(fallback),
        })
    }

    fn lookup(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let (chain, key) = self.handle.load().certificate(name)?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = cache.get(&(chain.clone(), key.clone())) {
            return Some(found.clone());
        }
        match certified(&self.provider, &chain, &key) {
            Ok(c) => {
                if cache.len() >= CACHE_LIMIT {
                    cache.clear();
                }
                let c = Arc::new(c);
                cache.insert((chain, key), c.clone());
                Some(c)
            }
            Err(e) => {
                tracing::warn!("the TLS Secret for {name} does not load ({e:#}); serving the default certificate");
                None
            }
        }
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let found = hello.server_name().and_then(|name| self.lookup(name));
        Some(found.unwrap_or_else(|| self.fallback.clone()))
    }
}

/// The default certificate (PEM chain and key): self-signed for `ingress.local` with
/// ingress-nginx's subject, `O=Acme Co, CN=Kubernetes Ingress Controller Fake Certificate`, so
/// tools that recognise that default recognise this one.
fn fake_certificate() -> anyhow::Result<(String, String)> {
    let mut params = rcgen::CertificateParams::new(vec!["ingress.local".to_string()])?;
    let mut name = rcgen::DistinguishedName::new();
    name.push(rcgen::DnType::OrganizationName, "Acme Co");
    name.push(
        rcgen::DnType::CommonName,
        "Kubernetes Ingress Controller Fake Certificate",
    );
    params.distinguished_name = name;
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A PEM chain and key as rustls serves them.
fn certified(provider: &CryptoProvider, chain: &str, key: &str) -> anyhow::Result<CertifiedKey> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut chain.as_bytes()).collect::<Result<_, _>>()?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in tls.crt");
    let key = rustls_pemfile::private_key(&mut key.as_bytes())?.context("no private key in tls.key")?;
    let signing = provider.key_provider.load_private_key(key)?;
    Ok(CertifiedKey::new(certs, signing))
}

/// The server config: SNI resolution, HTTP/2 and HTTP/1.1 offered by ALPN.
pub fn server_config(handle: RouterHandle) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let resolver = SniResolver::new(handle, provider.clone())?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
