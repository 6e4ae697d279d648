//! `healthCheckNodePort`: how a load balancer in front of the nodes learns which nodes can serve
//! a Service with `externalTrafficPolicy: Local`.
//!
//! As kube-proxy does, every node answers HTTP on each such Service's `healthCheckNodePort` (on
//! its node IPs), any path: 200 when the node has a ready local endpoint of the Service, 503
//! when it has none, with a JSON body naming the Service and the count, and the count again in
//! `X-Load-Balancing-Endpoint-Weight`. A node without local endpoints would drop the Service's
//! traffic (Local never forwards to another node), so it asks the load balancer to skip it.
//!
//! [`HealthChecks`] wraps any [`Backend`]: after each sync it opens the ports of new Services,
//! closes those of Services gone, and updates the counts the open ports answer with.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::backend::{Backend, SyncError};
use crate::model::tracker::ServiceChange;
use crate::model::{ServiceRef, ServiceTable};

/// What one health check port answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthTarget {
    /// The Service.
    pub service: ServiceRef,
    /// Its ready endpoints on this node.
    pub local_endpoints: usize,
}

/// The health check ports `table` asks for on this node, with what each answers.
pub fn health_targets(table: &ServiceTable) -> BTreeMap<u16, HealthTarget> {
    let mut out: BTreeMap<u16, HealthTarget> = BTreeMap::new();
    for p in table.ports().filter(|p| p.external_policy_local()) {
        let Some(port) = p.health_check_node_port else { continue };
        let local = p.endpoints.iter().filter(|e| e.is_local && e.ready).count();
        let target = out.entry(port).or_insert_with(|| HealthTarget {
            service: p.name.service.clone(),
            local_endpoints: 0,
        });
        // Every port of a Service has the same endpoints; a port may lack some (no such
        // container port), so the largest count is the Service's.
        target.local_endpoints = target.local_endpoints.max(local);
    }
    out
}

/// The HTTP response for `target`, as kube-proxy writes it.
pub fn response(target: &HealthTarget) -> Vec<u8> {
    let body = format!(
        "{{\n\t\"service\": {{\n\t\t\"namespace\": \"{}\",\n\t\t\"name\": \"{}\"\n\t}},\n\t\"localEndpoints\": {},\n\t\"serviceProxyHealthy\": true\n}}",
        target.service.namespace, target.service.name, target.local_endpoints
    );
    let status = if target.local_endpoints > 0 {
        "200 OK"
    } else {
        "503 Service Unavailable"
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nX-Load-Balancing-Endpoint-Weight: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        target.local_endpoints,
        body.len()
    )
    .into_bytes()
}

type Targets = Arc<RwLock<BTreeMap<u16, HealthTarget>>>;

/// A backend that also serves the health check ports.
pub struct HealthChecks {
    inner: Box<dyn Backend>,
    node_ips: Vec<Ipv4Addr>,
    targets: Targets,
    listeners: HashMap<u16, Vec<JoinHandle<()>>>,
}

impl HealthChecks {
    /// Wrap `inner`; the ports open on `node_ips`.
    pub fn new(inner: Box<dyn Backend>, node_ips: Vec<Ipv4Addr>) -> Self {
        HealthChecks {
            inner,
            node_ips,
            targets: Arc::default(),
            listeners: HashMap::new(),
        }
    }

    /// Open and close ports so they match `table`, and publish the counts.
    async fn converge(&mut self, table: &ServiceTable) -> Result<(), SyncError> {
        let want = health_targets(table);
        *self.targets.write().expect("health targets lock") = want.clone();
        self.listeners.retain(|port, tasks| {
            let keep = want.contains_key(port);
            if !keep {
                tasks.iter().for_each(JoinHandle::abort);
            }
            keep
        });
        for port in want
            .keys()
            .filter(|p| !self.listeners.contains_key(p))
            .copied()
            .collect::<Vec<_>>()
        {
            let mut tasks = Vec::new();
            for ip in &self.node_ips {
                let listener = TcpListener::bind(SocketAddr::from((*ip, port)))
                    .await
                    .map_err(|e| format!("health check port {ip}:{port}: {e}"))?;
                tasks.push(tokio::spawn(serve(listener, port, self.targets.clone())));
            }
            self.listeners.insert(port, tasks);
        }
        Ok(())
    }
}

/// Answer every connection on `listener` with the current state of `port`.
async fn serve(listener: TcpListener, port: u16, targets: Targets) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            continue;
        };
        let targets = targets.clone();
        tokio::spawn(async move {
            // Read the request head (bounded); any path gets the same answer.
            let mut buf = [0u8; 4096];
            let mut seen = 0;
            while seen < buf.len() {
                match conn.read(&mut buf[seen..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen += n,
                }
                if buf[..seen].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let target = targets.read().expect("health targets lock").get(&port).cloned();
            if let Some(t) = target {
                let _ = conn.write_all(&response(&t)).await;
            }
        });
    }
}

#[async_trait]
impl Backend for HealthChecks {
    async fn sync_full(&mut self, table: &ServiceTable) -> Result<(), SyncError> {
        self.inner.sync_full(table).await?;
        self.converge(table).await
    }

    async fn sync_changes(&mut self, table: &ServiceTable, changes: &[ServiceChange]) -> Result<(), SyncError> {
        self.inner.sync_changes(table, changes).await?;
        self.converge(table).await
    }

    async fn cleanup(&mut self) -> Result<(), SyncError> {
        for (_, tasks) in self.listeners.drain() {
            tasks.iter().for_each(JoinHandle::abort);
        }
        self.inner.cleanup().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{ready, service, slice};
    use crate::model::tracker::ChangeTracker;
    use crate::model::NodeContext;
    use serde_json::json;

    /// A table with one Local LoadBalancer Service whose health check port is `hc`, with
    /// `endpoints` (as node `n1` sees it).
    fn table(hc: u16, endpoints: serde_json::Value) -> ServiceTable {
        let svc = service(
            "web",
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": hc,
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080, "nodePort": 30080}]}),
        );
        let ports = json!([{"name": "http", "port": 8080, "protocol": "TCP"}]);
        let mut tracker = ChangeTracker::new(NodeContext {
            node_name: "n1".into(),
            node_ips: vec![Ipv4Addr::LOCALHOST],
        });
        tracker.observe(&[Arc::new(svc)], &[Arc::new(slice("web", "a", ports, endpoints))]);
        tracker.table().clone()
    }

    #[test]
    fn a_local_service_counts_only_this_nodes_ready_endpoints() {
        let t = table(31000, json!([ready("10.244.0.5", "n1"), ready("10.244.1.5", "n2")]));
        let targets = health_targets(&t);
        assert_eq!(
            targets.get(&31000),
            Some(&HealthTarget {
                service: ServiceRef::new("default", "web"),
                local_endpoints: 1
            })
        );
        let text = String::from_utf8(response(&targets[&31000])).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("X-Load-Balancing-Endpoint-Weight: 1\r\n"));
        assert!(
            text.ends_with("\"localEndpoints\": 1,\n\t\"serviceProxyHealthy\": true\n}"),
            "{text}"
        );
    }

    #[test]
    fn a_node_without_local_endpoints_answers_503() {
        let t = table(31000, json!([ready("10.244.1.5", "n2")]));
        let text = String::from_utf8(response(&health_targets(&t)[&31000])).unwrap();
        assert!(text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{text}");
    }

    struct Nothing;

    #[async_trait]
    impl Backend for Nothing {
        async fn sync_full(&mut self, _: &ServiceTable) -> Result<(), SyncError> {
            Ok(())
        }
        async fn sync_changes(&mut self, _: &ServiceTable, _: &[ServiceChange]) -> Result<(), SyncError> {
            Ok(())
        }
        async fn cleanup(&mut self) -> Result<(), SyncError> {
            Ok(())
        }
    }

    async fn get(port: u16) -> std::io::Result<String> {
        let mut s = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok(out)
    }

    #[tokio::test]
    async fn the_port_opens_follows_the_endpoints_and_closes_with_the_service() {
        let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut hc = HealthChecks::new(Box::new(Nothing), vec![Ipv4Addr::LOCALHOST]);
        hc.sync_full(&table(port, json!([ready("10.244.0.5", "n1")])))
            .await
            .unwrap();
        assert!(get(port).await.unwrap().starts_with("HTTP/1.1 200 OK"));
        hc.sync_full(&table(port, json!([]))).await.unwrap();
        assert!(get(port).await.unwrap().starts_with("HTTP/1.1 503"));
        hc.sync_full(&ServiceTable::new()).await.unwrap();
        // The listener task is aborted; the socket closes once the runtime drops it.
        let refused = async {
            loop {
                if get(port).await.is_err() {
                    return;
                }
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), refused)
            .await
            .expect("the port closes");
    }
}
