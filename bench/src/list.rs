//! Item 4: `kubectl get svc -A` over the loaded cluster, as a user types it (kubectl pages
//! with `limit=500` and prints a table; output goes to /dev/null). A single unpaged LIST over
//! the API is timed too, so the server's part is visible apart from kubectl's.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::cluster;

/// What the LIST phase measured.
#[derive(Debug, Default)]
pub struct Lists {
    /// `kubectl get svc -A` wall times (after one unmeasured warm-up that fills kubectl's
    /// discovery cache, as on any user's second command).
    pub kubectl: Vec<Duration>,
    /// One `GET /api/v1/services` (all namespaces, no limit) to the full body.
    pub api: Vec<Duration>,
    /// Items the API LIST returned (checks the load is really there).
    pub items: usize,
}

/// Time `runs` of each.
pub async fn measure(client: &kube::Client, kubeconfig: &Path, home: &Path, runs: usize) -> Result<Lists> {
    let mut out = Lists::default();
    let (kc, h) = (kubeconfig.to_path_buf(), home.to_path_buf());
    out.kubectl = tokio::task::spawn_blocking(move || -> Result<Vec<Duration>> {
        cluster::kubectl(&kc, &h, &["get", "svc", "-A"])?;
        (0..runs)
            .map(|_| cluster::kubectl(&kc, &h, &["get", "svc", "-A"]))
            .collect()
    })
    .await??;
    for _ in 0..runs {
        let t = Instant::now();
        let (status, body) = cluster::call(client, http::Method::GET, "/api/v1/services", None).await?;
        out.api.push(t.elapsed());
        if !status.is_success() {
            bail!("LIST services: {status}");
        }
        out.items = count_items(&body)?;
    }
    Ok(out)
}

fn count_items(body: &[u8]) -> Result<usize> {
    #[derive(serde::Deserialize)]
    struct List {
        items: Vec<serde::de::IgnoredAny>,
    }
    Ok(serde_json::from_slice::<List>(body)?.items.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_of_a_list_are_counted() {
        assert_eq!(
            count_items(br#"{"kind":"ServiceList","items":[{"a":1},{"b":2}]}"#).unwrap(),
            2
        );
    }
}
