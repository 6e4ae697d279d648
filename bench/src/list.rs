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
    /// The same LIST in pages of 500 as kubectl asks for them (following `continue`), to the
    /// last page's body: the server's share of `kubectl get`.
    pub paged: Vec<Duration>,
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
        let t = Instant::now();
        paged_walk(client).await?;
        out.paged.push(t.elapsed());
    }
    Ok(out)
}

/// LIST all Services in pages of 500; returns how many pages it took.
async fn paged_walk(client: &kube::Client) -> Result<usize> {
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let uri = format!("/api/v1/services?limit=500&continue={}", query_escape(&token));
        let (status, body) = cluster::call(client, http::Method::GET, &uri, None).await?;
        if !status.is_success() {
            bail!(
                "LIST services page {pages}: {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
        pages += 1;
        match continue_token(&body)? {
            Some(next) => token = next,
            None => return Ok(pages),
        }
    }
}

/// Percent-encode everything but RFC 3986 unreserved characters (continue tokens are base64,
/// whose `+`, `/` and `=` must not reach the query raw).
fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `metadata.continue` of a list body, if it has a non-empty one.
fn continue_token(body: &[u8]) -> Result<Option<String>> {
    #[derive(serde::Deserialize)]
    struct Meta {
        #[serde(rename = "continue", default)]
        token: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct List {
        metadata: Meta,
    }
    Ok(serde_json::from_slice::<List>(body)?
        .metadata
        .token
        .filter(|t| !t.is_empty()))
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
    fn an_empty_or_absent_continue_ends_the_walk() {
        assert_eq!(
            continue_token(br#"{"metadata":{"continue":"abc"},"items":[]}"#)
                .unwrap()
                .as_deref(),
            Some("abc")
        );
        assert_eq!(
            continue_token(br#"{"metadata":{"continue":""},"items":[]}"#).unwrap(),
            None
        );
        assert_eq!(continue_token(br#"{"metadata":{},"items":[]}"#).unwrap(), None);
    }

    #[test]
    fn continue_tokens_are_escaped_for_the_query() {
        assert_eq!(query_escape("eyJ+/a="), "eyJ%2B%2Fa%3D");
    }

    #[test]
    fn items_of_a_list_are_counted() {
        assert_eq!(
            count_items(br#"{"kind":"ServiceList","items":[{"a":1},{"b":2}]}"#).unwrap(),
            2
        );
    }
}
