//! A load harness, not a test: the Ingress server on fixed loopback ports in front of given
//! endpoints, for a load generator (h2load) to measure against other proxies. Run by hand:
//!
//! ```text
//! INGRESS_BENCH_ENDPOINTS=127.0.0.1:18081,127.0.0.1:18082 INGRESS_BENCH_SECS=30 \
//!   cargo test --release -p podway-ingress --test server_bench -- --ignored --nocapture
//! ```
//!
//! It serves HTTP on 127.0.0.1:18090 (HTTP/1.1, and HTTP/2 by prior knowledge) and TLS on
//! 127.0.0.1:18091 until the time is up.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use podway_ingress::server::{serve, RouterHandle};
use podway_ingress::{Decision, Protocol, RequestView, Router, Upstream};

/// Every request to the endpoints, round-robin, as a default-backend Ingress would route it.
struct All(Arc<[SocketAddr]>);

impl Router for All {
    fn decide(&self, request: &RequestView<'_>) -> Decision {
        Decision::Proxy(Box::new(Upstream {
            endpoints: self.0.clone(),
            protocol: Protocol::Http,
            path_and_query: match request.query {
                Some(q) => format!("{}?{q}", request.path),
                None => request.path.to_string(),
            },
            host: None,
            forwarded_prefix: None,
            timeouts: Default::default(),
            max_body: Some(1 << 20),
            affinity: None,
            response_headers: vec![],
            intercept_errors: vec![],
            error_backend: None,
        }))
    }

    fn certificate(&self, _: &str) -> Option<(String, String)> {
        None
    }
}

#[tokio::test]
#[ignore = "a load harness run by hand"]
async fn serve_for_a_load_generator() {
    let endpoints: Vec<SocketAddr> = std::env::var("INGRESS_BENCH_ENDPOINTS")
        .unwrap_or_else(|_| "127.0.0.1:18081,127.0.0.1:18082".into())
        .split(',')
        .map(|e| e.parse().unwrap())
        .collect();
    let secs: u64 = std::env::var("INGRESS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let http = tokio::net::TcpListener::bind("127.0.0.1:18090").await.unwrap();
    let https = tokio::net::TcpListener::bind("127.0.0.1:18091").await.unwrap();
    let handle = RouterHandle::new(Arc::new(All(endpoints.into())));
    serve(http, https, handle, tokio::time::sleep(Duration::from_secs(secs)))
        .await
        .unwrap();
}
