//! Item 5: watch fan-out. Many concurrent watches on all Services (as kube-proxy and
//! controllers hold them), then Services created one at a time; for every (watcher, event) pair
//! the latency from the create being acknowledged (its whole response read) to that watcher
//! having the event's line.
//!
//! Creates are paced (`gap` apart) so the figure is delivery latency, not the queue of a
//! saturated 2-core machine; an unpaced loop would measure throughput instead.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use http_body_util::BodyExt;
use tokio::sync::mpsc;

use crate::cluster;
use crate::creates::service_body;

/// The namespace the watched creates go into.
const NAMESPACE: &str = "bench-watch";
/// The name of the unmeasured create that proves every watch is live.
const WARM_UP: &str = "watch-warm-up";

/// What the watch phase measured.
#[derive(Debug, Default)]
pub struct Watches {
    /// Acknowledged-to-received, one per (watcher, event); an event that arrived before the
    /// create's response counts as zero.
    pub latencies: Vec<Duration>,
    /// Sent-to-received, one per (watcher, event): an upper bound that includes the create's
    /// own round trip, and never negative.
    pub from_sent: Vec<Duration>,
    /// How many (watcher, event) deliveries arrived before the create was acknowledged.
    pub before_ack: usize,
    /// Deliveries expected (watchers × events) and seen.
    pub expected: usize,
}

/// One event as a watcher saw it.
struct Seen {
    name: String,
    at: Instant,
}

/// Open `watchers` watches, then create `events` Services `gap` apart.
pub async fn measure(client: &kube::Client, watchers: usize, events: usize, gap: Duration) -> Result<Watches> {
    cluster::ensure_namespace(client, NAMESPACE).await?;
    let rv = collection_version(client).await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Seen>();
    let mut tasks = tokio::task::JoinSet::new();
    let uri = format!("/api/v1/services?watch=true&resourceVersion={rv}&timeoutSeconds=600");
    for _ in 0..watchers {
        // Open the watch here so every one is established (headers received) before any create.
        let req = http::Request::get(uri.as_str()).body(kube::client::Body::empty())?;
        let resp = client.send(req).await.context("opening a watch")?;
        if !resp.status().is_success() {
            bail!("watch answered {}", resp.status());
        }
        tasks.spawn(read_events(resp.into_body(), tx.clone()));
    }
    drop(tx);

    // The warm-up event reaching every watcher proves all of them are registered server-side.
    create(client, WARM_UP).await?;
    let mut warm = 0;
    while warm < watchers {
        let seen = recv(&mut rx).await?;
        warm += usize::from(seen.name == WARM_UP);
    }

    let mut times = HashMap::new();
    for i in 0..events {
        let name = format!("watch-{i:05}");
        let sent = Instant::now();
        create(client, &name).await?;
        times.insert(name, (sent, Instant::now()));
        tokio::time::sleep(gap).await;
    }
    let expected = watchers * events;
    let mut out = Watches {
        expected,
        ..Watches::default()
    };
    while out.latencies.len() < expected {
        let seen = recv(&mut rx).await?;
        let Some((sent, ack)) = times.get(&seen.name) else {
            continue;
        };
        if seen.at < *ack {
            out.before_ack += 1;
        }
        out.latencies.push(seen.at.saturating_duration_since(*ack));
        out.from_sent.push(seen.at.saturating_duration_since(*sent));
    }
    tasks.abort_all();
    Ok(out)
}

/// The next event from any watcher, or an error when they stall.
async fn recv(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Result<Seen> {
    match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => bail!("every watch ended before all events arrived"),
        Err(_) => bail!("no watch event for 60s"),
    }
}

async fn create(client: &kube::Client, name: &str) -> Result<()> {
    let uri = format!("/api/v1/namespaces/{NAMESPACE}/services");
    let (status, body) = cluster::call(client, http::Method::POST, &uri, Some(service_body(name).into())).await?;
    if status != http::StatusCode::CREATED {
        bail!("creating {name}: {status} {}", String::from_utf8_lossy(&body));
    }
    Ok(())
}

/// The resourceVersion of the Service collection now, so watches start after the load.
async fn collection_version(client: &kube::Client) -> Result<String> {
    let (status, body) = cluster::call(client, http::Method::GET, "/api/v1/services?limit=1", None).await?;
    if !status.is_success() {
        bail!("LIST services: {status}");
    }
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    v["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_string)
        .context("LIST without metadata.resourceVersion")
}

/// Read a watch body, stamping each complete event line when its last bytes arrive.
async fn read_events(mut body: kube::client::Body, tx: mpsc::UnboundedSender<Seen>) {
    let mut buf = Vec::new();
    while let Some(Ok(frame)) = body.frame().await {
        let at = Instant::now();
        let Ok(data) = frame.into_data() else { continue };
        buf.extend_from_slice(&data);
        while let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            if let Some(name) = added_name(&line) {
                if tx.send(Seen { name, at }).is_err() {
                    return;
                }
            }
        }
    }
}

/// The object name of an `ADDED` watch event line.
fn added_name(line: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Meta {
        name: String,
    }
    #[derive(serde::Deserialize)]
    struct Object {
        metadata: Meta,
    }
    #[derive(serde::Deserialize)]
    struct Event {
        #[serde(rename = "type")]
        kind: String,
        object: Object,
    }
    let ev: Event = serde_json::from_slice(line).ok()?;
    (ev.kind == "ADDED").then_some(ev.object.metadata.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_lines_give_the_object_name() {
        let line = br#"{"type":"ADDED","object":{"kind":"Service","metadata":{"name":"watch-00001","namespace":"x"}}}"#;
        assert_eq!(added_name(line).as_deref(), Some("watch-00001"));
    }

    #[test]
    fn other_event_types_and_bookmarks_are_skipped() {
        assert_eq!(
            added_name(br#"{"type":"MODIFIED","object":{"metadata":{"name":"a"}}}"#),
            None
        );
        assert_eq!(added_name(br#"{"type":"BOOKMARK","object":{"metadata":{}}}"#), None);
    }
}
