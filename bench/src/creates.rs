//! Item 3: many Services created with bounded concurrency, each create timed from sending the
//! request to having the whole response; and the same loop written straight to etcd, so the
//! cost of the API layer (TLS, HTTP, decoding, defaulting, validation, ClusterIP allocation,
//! encoding) is visible next to the storage cost.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::{StreamExt, TryStreamExt};

use crate::cluster;

/// The namespace the load goes into.
pub const NAMESPACE: &str = "bench";

/// What a create loop measured.
#[derive(Debug)]
pub struct Creates {
    /// Per-object latencies.
    pub latencies: Vec<Duration>,
    /// Wall time of the whole loop.
    pub elapsed: Duration,
    /// The stored form of one object (a server response), for the etcd baseline's values.
    pub sample: Vec<u8>,
}

/// The name of the `i`th Service.
pub fn name(i: usize) -> String {
    format!("svc-{i:05}")
}

/// The request body creating Service `name`: a plain ClusterIP Service with one port, the
/// shape `kubectl expose` produces.
pub fn service_body(name: &str) -> Vec<u8> {
    let svc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"app": "bench", "bench": "podway"}},
        "spec": {
            "selector": {"app": "bench"},
            "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}]
        }
    });
    serde_json::to_vec(&svc).expect("a json! value serialises")
}

/// Create `count` Services in [`NAMESPACE`], at most `concurrency` in flight.
pub async fn podway(client: &kube::Client, count: usize, concurrency: usize) -> Result<Creates> {
    cluster::ensure_namespace(client, NAMESPACE).await?;
    let uri = format!("/api/v1/namespaces/{NAMESPACE}/services");
    let bodies: Vec<bytes::Bytes> = (0..count).map(|i| service_body(&name(i)).into()).collect();
    let started = Instant::now();
    let results: Vec<(Duration, Option<bytes::Bytes>)> = futures::stream::iter(bodies.into_iter().enumerate())
        .map(|(i, body)| {
            let uri = uri.as_str();
            async move {
                let t = Instant::now();
                let (status, resp) = cluster::call(client, http::Method::POST, uri, Some(body)).await?;
                let took = t.elapsed();
                if status != http::StatusCode::CREATED {
                    bail!("creating {}: {status} {}", name(i), String::from_utf8_lossy(&resp));
                }
                Ok((took, (i == 0).then_some(resp)))
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    let elapsed = started.elapsed();
    let sample = results
        .iter()
        .find_map(|(_, s)| s.clone())
        .map(|b| b.to_vec())
        .unwrap_or_default();
    Ok(Creates {
        latencies: results.into_iter().map(|(d, _)| d).collect(),
        elapsed,
        sample,
    })
}

/// The etcd key the baseline writes object `name` under; a prefix of its own so it never
/// touches the `/registry/` keys of a podway sharing the etcd.
fn raw_key(name: &str) -> String {
    format!("/podway-bench-raw/services/{NAMESPACE}/{name}")
}

/// The baseline: `count` create-if-absent transactions (compare `create_revision == 0`, then
/// put: what an API server's create does in etcd) with values as large as a stored Service,
/// at most `concurrency` in flight over one client. Deletes its keys afterwards.
pub async fn raw_etcd(endpoint: &str, count: usize, concurrency: usize, sample: &[u8]) -> Result<Creates> {
    use etcd_client::{Compare, CompareOp, DeleteOptions, Txn, TxnOp};
    let client = etcd_client::Client::connect([format!("http://{endpoint}")], None)
        .await
        .with_context(|| format!("connecting to etcd at {endpoint}"))?;
    let template = String::from_utf8_lossy(sample).into_owned();
    let started = Instant::now();
    let latencies: Vec<Duration> = futures::stream::iter(0..count)
        .map(|i| {
            let mut kv = client.kv_client();
            let n = name(i);
            // The stored form of Service 0 with this object's name: the same bytes per object.
            let value = template.replace(&name(0), &n).into_bytes();
            let key = raw_key(&n);
            async move {
                let t = Instant::now();
                let txn = Txn::new()
                    .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(key, value, None)]);
                let resp = kv.txn(txn).await?;
                let took = t.elapsed();
                if !resp.succeeded() {
                    bail!("etcd key for {n} already existed");
                }
                Ok(took)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    let elapsed = started.elapsed();
    client
        .kv_client()
        .delete("/podway-bench-raw/", Some(DeleteOptions::new().with_prefix()))
        .await
        .context("deleting the baseline's keys")?;
    Ok(Creates {
        latencies,
        elapsed,
        sample: sample.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_in_creation_order() {
        assert!(name(9) < name(10));
        assert_eq!(name(42), "svc-00042");
    }

    #[test]
    fn service_body_is_a_named_clusterip_service() {
        let v: serde_json::Value = serde_json::from_slice(&service_body("svc-00001")).unwrap();
        assert_eq!(v["metadata"]["name"], "svc-00001");
        assert_eq!(v["spec"]["ports"][0]["port"], 80);
        assert!(
            v["spec"].get("type").is_none(),
            "defaults to ClusterIP, so no NodePort is used up"
        );
    }

    #[test]
    fn baseline_keys_stay_outside_the_registry() {
        assert!(!raw_key("svc-00001").starts_with("/registry/"));
    }
}
