//! The TLS client the API server reaches node agents with: it presents the kubelet client
//! certificate and, like kube-apiserver without `--kubelet-certificate-authority`, does not
//! verify the agent's (self-signed) serving certificate. The handshake signatures are still
//! checked, so the agent must hold the key of the certificate it shows.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::location::{NodeEndpoint, DEFAULT_KUBELET_PORT};
use crate::pki::Pki;

/// How long a connection to an agent may take, as Go's default dialer allows.
const DIAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The kubelet client certificate or key does not parse; regenerate the PKI (a restart
    /// issues them again from the CA key).
    #[error("kubelet client certificate: {0}")]
    Certificate(String),
    /// rustls refused the configuration.
    #[error("kubelet client TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// Why an agent could not be reached; the text follows Go's net errors, which is what
/// kube-apiserver's messages embed (`dial tcp 10.0.0.7:10250: connect: connection refused`).
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// TCP connect failed or timed out. A retry helps once the agent runs.
    #[error("dial tcp {addr}: {why}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// Go-style reason.
        why: String,
    },
    /// The TLS handshake failed (the agent refused the client certificate, say).
    #[error("tls: {0}")]
    Handshake(String),
}

/// Connects to node agents. Cheap to clone.
#[derive(Clone)]
pub struct KubeletClient {
    connector: TlsConnector,
    /// The kubelet port for Nodes that report none.
    pub default_port: u16,
}

impl KubeletClient {
    /// A client presenting `pki`'s kubelet client certificate (none when the PKI has none;
    /// agents then answer 401).
    pub fn new(pki: &Pki) -> Result<Self, ClientError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(podway_tls::AcceptAnyCertificate(provider)));
        let mut config = if pki.kubelet_client_cert.is_empty() {
            builder.with_no_client_auth()
        } else {
            let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pki.kubelet_client_cert.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| ClientError::Certificate(e.to_string()))?;
            let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut pki.kubelet_client_key.as_bytes())
                .map_err(|e| ClientError::Certificate(e.to_string()))?
                .ok_or_else(|| ClientError::Certificate("no private key".into()))?;
            builder.with_client_auth_cert(certs, key)?
        };
        // HTTP/1.1 only: upgrades (exec, attach, port-forward) do not exist in HTTP/2.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(KubeletClient {
            connector: TlsConnector::from(Arc::new(config)),
            default_port: DEFAULT_KUBELET_PORT,
        })
    }

    /// Open a TLS connection to an agent.
    pub async fn connect(&self, node: &NodeEndpoint) -> Result<TlsStream<TcpStream>, DialError> {
        let addr = node.authority();
        let connect_error = |why: String| DialError::Connect {
            addr: addr.clone(),
            why,
        };
        let tcp = match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect((node.host.as_str(), node.port))).await {
            Err(_) => return Err(connect_error("i/o timeout".into())),
            Ok(Err(e)) => return Err(connect_error(go_io_error(&e))),
            Ok(Ok(tcp)) => tcp,
        };
        let _ = tcp.set_nodelay(true);
        let name = podway_tls::server_name(&node.host).map_err(|e| DialError::Handshake(e.to_string()))?;
        self.connector
            .connect(name, tcp)
            .await
            .map_err(|e| DialError::Handshake(e.to_string()))
    }
}

/// An I/O error in the words of Go's net package.
fn go_io_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused".into(),
        std::io::ErrorKind::TimedOut => "i/o timeout".into(),
        std::io::ErrorKind::HostUnreachable => "connect: no route to host".into(),
        std::io::ErrorKind::NetworkUnreachable => "connect: network is unreachable".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_port_is_a_connection_refused_dial_error_in_go_words() {
        let client = KubeletClient::new(&Pki::generate(&[]).unwrap()).unwrap();
        // Bind then drop, so the port is known to be closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let node = NodeEndpoint {
            host: "127.0.0.1".into(),
            port,
        };
        let err = client.connect(&node).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("dial tcp 127.0.0.1:{port}: connect: connection refused")
        );
    }
}
