//! Reaching node agents (kubelets): where a pod's logs and streams are served
//! ([`location`]), the TLS client that presents the API server's kubelet client certificate
//! ([`client`]), and the proxying of logs and of exec/attach/port-forward upgrades ([`proxy`]).

pub mod client;
pub mod location;
pub mod proxy;

pub use client::KubeletClient;
