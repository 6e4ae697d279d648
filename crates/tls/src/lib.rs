//! TLS pieces shared by podway's components, which may not import each other.
//!
//! [`AcceptAnyCertificate`] is for clients that talk to servers whose certificates cannot be
//! checked: a pod's serving certificate (probes, `backend-protocol: HTTPS` Ingress backends,
//! as the kubelet's prober and ingress-nginx do by default) and a node's kubelet endpoint.
#![warn(missing_docs)]

use std::net::IpAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, InvalidDnsNameError, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

/// Accepts any server certificate chain, but checks that the server signed the handshake with
/// the key of the certificate it presented (with the provider's algorithms).
#[derive(Debug)]
pub struct AcceptAnyCertificate(pub Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A client configuration (ring, safe default versions, no client certificate) that accepts
/// any server certificate.
pub fn accept_any_client_config() -> Result<ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth())
}

/// A server configuration with a fresh self-signed certificate for `names` (ring, safe default
/// versions, no client certificates): for servers whose clients do not check certificates, and
/// for tests standing up such servers.
pub fn self_signed_server_config(
    names: Vec<String>,
) -> Result<rustls::ServerConfig, Box<dyn std::error::Error + Send + Sync>> {
    let key = rcgen::generate_simple_self_signed(names)?;
    let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into());
    Ok(
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![key.cert.der().clone()], der)?,
    )
}

/// The name to present for `host`: an IP address sends no SNI (as Go's TLS client does), a
/// DNS name is sent as is.
pub fn server_name(host: &str) -> Result<ServerName<'static>, InvalidDnsNameError> {
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(ServerName::IpAddress(ip.into())),
        Err(_) => ServerName::try_from(host.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ip_host_is_an_ip_name_and_a_dns_host_a_dns_name() {
        assert!(matches!(server_name("10.0.0.1").unwrap(), ServerName::IpAddress(_)));
        assert!(matches!(server_name("pod.example").unwrap(), ServerName::DnsName(_)));
        assert!(server_name("not a name").is_err());
    }
}
