//! HTTPS for probes: any server certificate is accepted, as the kubelet's prober sets
//! `InsecureSkipVerify` (a pod's serving certificate is rarely valid for its IP), while the
//! handshake signature is still checked against the presented certificate.

use std::sync::{Arc, OnceLock};

use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// The shared client configuration, built on first use.
fn config() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let config = podway_tls::accept_any_client_config().map_err(|e| format!("tls: {e}"))?;
            Ok(Arc::new(config))
        })
        .clone()
}

/// Run the TLS handshake over `tcp` for `host`. An IP host sends no SNI, as in Go.
pub(super) async fn connect(host: &str, tcp: TcpStream) -> Result<TlsStream<TcpStream>, String> {
    let name = podway_tls::server_name(host).map_err(|e| format!("tls: {e}"))?;
    let connector = TlsConnector::from(config()?);
    connector.connect(name, tcp).await.map_err(|e| {
        match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            Some(rustls::Error::InvalidMessage(_)) => "http: server gave HTTP response to HTTPS client".to_string(),
            Some(tls) => format!("tls: {tls}"),
            None => super::go_io_error(&e),
        }
    })
}
