//! TLS for the kubelet endpoint: a self-signed serving certificate made at start, and the rule
//! for callers.
//!
//! Who gets in: a client certificate that chains to the cluster CA and whose CommonName is
//! [`CLIENT_CN`] (the API server's kubelet client certificate, named as kubeadm names it).
//!
//! - no certificate: the handshake succeeds, every request gets 401 `Unauthorized` (as the
//!   kubelet answers an anonymous caller when anonymous auth is off);
//! - a certificate from another CA: the handshake fails (rustls' verifier rejects it; there
//!   is no HTTP exchange to answer);
//! - a CA-signed certificate with another name: 403 with the kubelet's authorizer text,
//!   `Forbidden (user=NAME, verb=get, resource=nodes, subresource(s)=[proxy])`.
//!
//! The serving certificate is not verified by the API server (kube-apiserver without
//! `--kubelet-certificate-authority` does not either), so self-signed is enough.

use std::sync::Arc;

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

/// The CommonName the caller's certificate must have.
pub const CLIENT_CN: &str = "kube-apiserver-kubelet-client";

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA file holds no certificate, or one that does not parse. Fix the `--ca-file`.
    #[error("cluster CA: {0}")]
    Ca(String),
    /// Generating the serving certificate failed (a bad name); not retryable.
    #[error("serving certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// rustls refused the configuration; not retryable.
    #[error("tls configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The endpoint's TLS setup: serving certificate, and the cluster CA client certificates must
/// chain to.
#[derive(Clone)]
pub struct KubeletTls {
    pub(crate) acceptor: TlsAcceptor,
    serving_cert_pem: String,
}

impl std::fmt::Debug for KubeletTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeletTls").finish_non_exhaustive()
    }
}

impl KubeletTls {
    /// TLS that trusts client certificates from `ca_pem` (the cluster CA, PEM) and serves a
    /// freshly generated self-signed certificate for `names` (IP addresses become IP SANs,
    /// anything else DNS names; e.g. the node's IP and name).
    pub fn new(ca_pem: &str, names: &[String]) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| TlsError::Ca(e.to_string()))?;
            roots.add(cert).map_err(|e| TlsError::Ca(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(TlsError::Ca("no certificate in the PEM".into()));
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsError::Ca(e.to_string()))?;

        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.to_vec())?;
        let first = names.first().map(String::as_str).unwrap_or("podway-kubelet");
        params.distinguished_name.push(DnType::CommonName, first);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.self_signed(&key)?;

        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![cert.der().clone()], key_der)?;
        // HTTP/1.1 only: upgrades (WebSocket, SPDY) do not exist in HTTP/2.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(KubeletTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            serving_cert_pem: cert.pem(),
        })
    }

    /// The serving certificate (PEM), for a client that wants to pin it.
    pub fn serving_cert_pem(&self) -> &str {
        &self.serving_cert_pem
    }
}

/// What a connection's client certificate allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The API server.
    Allowed,
    /// No certificate: 401.
    Anonymous,
    /// A CA-signed certificate for someone else (its CommonName): 403.
    Forbidden(String),
}

/// The caller behind the verified certificate chain `peer` (leaf first), as rustls reports it
/// after a handshake. Chain verification already happened; this checks the name.
pub fn caller(peer: Option<&[CertificateDer<'_>]>) -> Caller {
    let Some(leaf) = peer.and_then(|chain| chain.first()) else {
        return Caller::Anonymous;
    };
    let name = common_name(leaf).unwrap_or_default();
    if name == CLIENT_CN {
        Caller::Allowed
    } else {
        Caller::Forbidden(name)
    }
}

/// The subject CommonName of a DER certificate.
fn common_name(der: &CertificateDer<'_>) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

/// The status and body a request gets on a connection from `caller`, or `None` when it may
/// proceed. `method` and the path's first segment fill in the kubelet's authorizer message.
pub fn refusal(caller: &Caller, method: &http::Method) -> Option<(u16, String)> {
    match caller {
        Caller::Allowed => None,
        Caller::Anonymous => Some((401, "Unauthorized".to_string())),
        Caller::Forbidden(name) => {
            // The kubelet maps these paths to the nodes/proxy subresource; verbs follow HTTP.
            let verb = if method == http::Method::POST { "create" } else { "get" };
            Some((
                403,
                format!("Forbidden (user={name}, verb={verb}, resource=nodes, subresource(s)=[proxy])"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_named(cn: &str) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "kubeadm:cluster-admins");
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn only_the_apiserver_kubelet_client_name_is_allowed() {
        assert_eq!(caller(Some(&[cert_named(CLIENT_CN)])), Caller::Allowed);
        assert_eq!(
            caller(Some(&[cert_named("podway-admin")])),
            Caller::Forbidden("podway-admin".into())
        );
        assert_eq!(caller(None), Caller::Anonymous);
        assert_eq!(caller(Some(&[])), Caller::Anonymous);
    }

    #[test]
    fn refusals_are_401_for_anonymous_and_403_naming_the_user_otherwise() {
        assert_eq!(refusal(&Caller::Allowed, &http::Method::GET), None);
        assert_eq!(refusal(&Caller::Anonymous, &http::Method::GET).unwrap().0, 401);
        let (code, text) = refusal(&Caller::Forbidden("bob".into()), &http::Method::POST).unwrap();
        assert_eq!(code, 403);
        assert_eq!(
            text,
            "Forbidden (user=bob, verb=create, resource=nodes, subresource(s)=[proxy])"
        );
    }

    #[test]
    fn a_ca_without_certificates_is_refused() {
        assert!(matches!(
            KubeletTls::new("", &["127.0.0.1".into()]),
            Err(TlsError::Ca(_))
        ));
    }

    #[test]
    fn the_serving_certificate_names_the_node_ip() {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
        let tls = KubeletTls::new(&ca_pem, &["172.30.0.2".into(), "node-1".into()]).unwrap();
        let der = rustls_pemfile::certs(&mut tls.serving_cert_pem().as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        let sans = format!(
            "{:?}",
            cert.subject_alternative_name().unwrap().unwrap().value.general_names
        );
        assert!(
            sans.contains("172.30.0.2") || sans.contains("[172, 30, 0, 2]"),
            "{sans}"
        );
        assert!(sans.contains("node-1"), "{sans}");
    }
}
