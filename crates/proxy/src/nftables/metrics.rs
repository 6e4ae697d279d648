//! The per-endpoint counters as Prometheus metrics over plain HTTP, the way kube-proxy serves
//! its own on `--metrics-bind-address` (port 10249). Every scrape reads the counters afresh
//! from `nft`, so nothing is cached and nothing can drift.
//!
//! Not on the kubelet's HTTPS endpoint: that one asks for the API server's client
//! certificate, which a Prometheus in the cluster does not hold, and the agent crate does not
//! know the proxy's table.

use std::future::Future;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::counters;

/// Where the counters come from: the real `nft` (tests pass canned JSON).
pub trait CounterSource: Send + Sync + 'static {
    /// The output of [`counters::list_command`], or why it failed.
    fn list(&self) -> impl Future<Output = Result<String, String>> + Send;
}

/// Runs [`counters::list_command`] (`nft -j list sets table ip podway`) in the current network
/// namespace.
pub struct NftCounters;

impl CounterSource for NftCounters {
    async fn list(&self) -> Result<String, String> {
        let argv = counters::list_command();
        let out = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .output()
            .await
            .map_err(|e| format!("cannot run nft: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown` completes. A table that does not exist
/// yet (before the first sync, or on the userspace backend) serves empty metrics, not an error.
pub async fn serve<S: CounterSource>(listener: TcpListener, source: S, shutdown: impl Future<Output = ()>) {
    let source = std::sync::Arc::new(source);
    tokio::pin!(shutdown);
    loop {
        let (mut conn, _) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(error = %e, "metrics accept failed");
                    continue;
                }
            },
        };
        let source = source.clone();
        tokio::spawn(async move {
            // Read until the end of the request head (a request may arrive in several segments).
            let mut buf = vec![0u8; 4096];
            let mut n = 0;
            while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") && n < buf.len() {
                match conn.read(&mut buf[n..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(got) => n += got,
                }
            }
            let request = String::from_utf8_lossy(&buf[..n]);
            let (status, body) = match request.split_whitespace().take(2).collect::<Vec<_>>().as_slice() {
                ["GET", path] if *path == "/metrics" || path.starts_with("/metrics?") => {
                    let rows = match source.list().await {
                        Ok(json) => counters::parse(&json).unwrap_or_default(),
                        Err(e) => {
                            tracing::debug!(error = %e, "no counters to serve");
                            Vec::new()
                        }
                    };
                    ("200 OK", counters::prometheus(&rows))
                }
                _ => ("404 Not Found", "404 page not found\n".to_string()),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(body.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Canned(Result<String, String>);

    impl CounterSource for Canned {
        async fn list(&self) -> Result<String, String> {
            self.0.clone()
        }
    }

    async fn scrape(source: Canned, path: &str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, source, async {
            let _ = stopped.await;
        }));
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        conn.read_to_string(&mut out).await.unwrap();
        let _ = stop.send(());
        server.await.unwrap();
        out
    }

    #[tokio::test]
    async fn metrics_serves_each_endpoints_counters_in_prometheus_text() {
        let json = r#"{"nftables": [{"set": {"family": "ip", "name": "endpoint-connections", "table": "podway", "type": "mark",
            "elem": [{"elem": {"val": 7, "comment": "shop/web/tcp/http__10.244.0.5/8080", "counter": {"packets": 12, "bytes": 720}}}]}}]}"#;
        let out = scrape(Canned(Ok(json.into())), "/metrics").await;
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.contains("Content-Type: text/plain; version=0.0.4"), "{out}");
        assert!(
            out.contains("podway_proxy_endpoint_connections_total{namespace=\"shop\",service=\"web\",protocol=\"tcp\",port=\"http\",endpoint=\"10.244.0.5:8080\"} 12\n"),
            "{out}"
        );
    }

    #[tokio::test]
    async fn a_missing_table_serves_empty_metrics_and_other_paths_are_not_found() {
        let out = scrape(Canned(Err("No such file or directory".into())), "/metrics").await;
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(!out.contains("endpoint=\""), "{out}");
        let out = scrape(Canned(Ok("{}".into())), "/other").await;
        assert!(out.starts_with("HTTP/1.1 404"), "{out}");
    }
}
