//! The pod bars on a one-node cluster: how long a pod of the built-in image
//! `sysnet4admin/echo-hname` takes from its create to Running, alone and 100 at once, against
//! the same program started directly; and what the node agent and the pod shim cost per pod.
//!
//! Times are taken on this side, never from the pod's timestamps: `creationTimestamp` and
//! `lastTransitionTime` have one-second resolution. A pod's clock starts when its create request
//! is sent (and, as a second figure, when the create's response has arrived) and stops when a
//! watch line showing it Running (or Ready) has arrived. The server's own timestamps are kept as
//! a whole-second cross-check.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use http_body_util::BodyExt;
use tokio::sync::mpsc;

use crate::cluster;
use crate::innode::{self, Direct, InNode};
use crate::podmem::{self, PodMemory};

/// The namespace the pods go into.
const NAMESPACE: &str = "bench-pods";
/// The image under test and the built-in that serves it.
pub const IMAGE: &str = "sysnet4admin/echo-hname";
const BUILTIN: &str = "echo-hname";
/// The port echo-hname listens on.
const PORT: u16 = 80;
/// How long one pod may take to run, or to go, before the run fails.
const POD_DEADLINE: Duration = Duration::from_secs(60);

/// The knobs of the pod phase.
#[derive(Debug, Clone)]
pub struct PodLoad {
    /// Pods created one at a time (each waited for and deleted before the next).
    pub single: usize,
    /// Pods created at once.
    pub burst: usize,
    /// Wait before reading memory.
    pub settle: Duration,
}

/// What the pod phase measured.
#[derive(Debug, Default)]
pub struct Pods {
    /// One pod alone: create sent → watch shows it Running.
    pub single_running: Vec<Duration>,
    /// One pod alone: create sent → watch shows it bound to the node (the scheduler's part).
    pub single_bound: Vec<Duration>,
    /// One pod alone: create sent → its IP answers `GET /` with 200 (probed from the node
    /// once it is Running).
    pub single_answering: Vec<Duration>,
    /// The same program without podway: fork/exec → it answers.
    pub direct: Direct,
    /// The burst: per pod, create sent → Running.
    pub burst_running: Vec<Duration>,
    /// The burst: per pod, create sent → bound to the node.
    pub burst_bound: Vec<Duration>,
    /// The burst: per pod, create acknowledged → Running (0 if Running came first).
    pub burst_running_from_ack: Vec<Duration>,
    /// The burst: per pod, create sent → Ready=True.
    pub burst_ready: Vec<Duration>,
    /// The burst: per pod, create sent → create acknowledged.
    pub burst_create: Vec<Duration>,
    /// The burst: first create sent → last pod Running.
    pub burst_all_running: Duration,
    /// Burst pods whose IP answered `GET /` once all were Running.
    pub burst_answered: usize,
    /// Largest `Ready.lastTransitionTime − creationTimestamp` of the burst, in whole seconds as
    /// the server records them.
    pub server_seconds_max: Option<i64>,
    /// Memory of the agent, the shims and the pods' processes.
    pub memory: PodMemory,
    /// The floor under the burst: per sandbox, the same CNI plugins networking as many new
    /// namespaces at once with no podway around them ([`crate::cni_floor`]).
    pub cni_floor: Vec<Duration>,
}

/// A pod's state as one watch line shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEvent {
    /// `ADDED`, `MODIFIED`, `DELETED`.
    pub kind: String,
    /// The pod's name.
    pub name: String,
    /// `status.phase`.
    pub phase: String,
    /// `status.podIP`.
    pub ip: Option<String>,
    /// Whether `spec.nodeName` is set (the scheduler has bound it).
    pub bound: bool,
    /// Whether condition Ready is True.
    pub ready: bool,
    /// Ready's `lastTransitionTime` − `metadata.creationTimestamp`, in seconds.
    pub server_seconds: Option<i64>,
}

/// Parse one watch line of pods.
pub fn pod_event(line: &[u8]) -> Option<PodEvent> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    let pod = &v["object"];
    let conditions = pod["status"]["conditions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let ready = conditions.iter().find(|c| c["type"] == "Ready");
    let stamp = |s: &serde_json::Value| s.as_str()?.parse::<jiff::Timestamp>().ok();
    let server_seconds = ready.filter(|c| c["status"] == "True").and_then(|c| {
        Some(stamp(&c["lastTransitionTime"])?.as_second() - stamp(&pod["metadata"]["creationTimestamp"])?.as_second())
    });
    Some(PodEvent {
        kind: v["type"].as_str()?.to_string(),
        name: pod["metadata"]["name"].as_str()?.to_string(),
        phase: pod["status"]["phase"].as_str().unwrap_or_default().to_string(),
        ip: pod["status"]["podIP"].as_str().map(str::to_string),
        bound: pod["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty()),
        ready: ready.is_some_and(|c| c["status"] == "True"),
        server_seconds,
    })
}

/// The request body of a bare Pod `name` running the image under test.
pub fn pod_body(name: &str) -> Vec<u8> {
    let pod = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench-pods"}},
        "spec": {"containers": [{"name": BUILTIN, "image": IMAGE, "ports": [{"containerPort": PORT}]}]}
    });
    serde_json::to_vec(&pod).expect("a json! value serialises")
}

/// One pod's clock.
#[derive(Debug, Clone, Default)]
struct Clock {
    sent: Option<Instant>,
    acked: Option<Instant>,
    bound: Option<Instant>,
    running: Option<Instant>,
    ready: Option<Instant>,
    ip: Option<String>,
    server_seconds: Option<i64>,
    deleted: bool,
}

/// The pods' clocks, fed by the watch.
struct Tracker {
    rx: mpsc::UnboundedReceiver<(PodEvent, Instant)>,
    pods: HashMap<String, Clock>,
}

impl Tracker {
    /// Take the next watch event, failing when the watch ends or stalls past `deadline`.
    async fn next(&mut self, deadline: Instant) -> Result<()> {
        let wait = deadline.saturating_duration_since(Instant::now());
        let (ev, at) = match tokio::time::timeout(wait, self.rx.recv()).await {
            Ok(Some(e)) => e,
            Ok(None) => bail!("the pod watch ended"),
            Err(_) => bail!("timed out waiting for pods"),
        };
        let c = self.pods.entry(ev.name.clone()).or_default();
        if ev.bound && c.bound.is_none() {
            c.bound = Some(at);
        }
        if ev.phase == "Running" && c.running.is_none() {
            c.running = Some(at);
            c.ip = ev.ip.clone();
        }
        if ev.ready && c.ready.is_none() {
            c.ready = Some(at);
            c.server_seconds = ev.server_seconds;
        }
        c.deleted |= ev.kind == "DELETED";
        Ok(())
    }

    /// Take events until `done` holds for pod `name`.
    async fn until(&mut self, name: &str, deadline: Instant, done: impl Fn(&Clock) -> bool) -> Result<Clock> {
        loop {
            if let Some(c) = self.pods.get(name).filter(|c| done(c)) {
                return Ok(c.clone());
            }
            self.next(deadline).await.with_context(|| format!("pod {name}"))?;
        }
    }
}

/// Run the pod phase on `client`'s one-node cluster whose node network namespace is `netns`,
/// with the agent's pid `agent`, the `podway up` pid `up`, and data directory `data`.
pub async fn measure(
    client: &kube::Client,
    bin: &Path,
    netns: &Path,
    data: &Path,
    up: u32,
    load: &PodLoad,
) -> Result<Pods> {
    cluster::ensure_namespace(client, NAMESPACE).await?;
    let node = InNode::enter(netns)?;
    let mut out = Pods::default();
    // Memory with no pods, once the node has settled.
    tokio::time::sleep(load.settle).await;
    let idle = podmem::snapshot(data, up)?;

    let mut tracker = watch(client).await?;
    crate::progress(&format!("  {} pods one at a time", load.single));
    for i in 0..load.single {
        let name = format!("single-{i:02}");
        let sent = Instant::now();
        create(client, &name).await?;
        let deadline = sent + POD_DEADLINE;
        let c = tracker.until(&name, deadline, |c| c.running.is_some()).await?;
        out.single_running.push(c.running.expect("until Running") - sent);
        out.single_bound
            .push(c.bound.map_or(Duration::ZERO, |b| b.saturating_duration_since(sent)));
        let addr = pod_addr(&c)?;
        let answered = node
            .run(move || innode::until_answers(addr, deadline))
            .await?
            .with_context(|| format!("pod {name} at {addr} did not answer"))?;
        out.single_answering.push(answered - sent);
        delete(client, &name).await?;
        tracker
            .until(&name, Instant::now() + POD_DEADLINE, |c| c.deleted)
            .await?;
    }

    crate::progress(&format!("  the same program started directly, {} times", load.single));
    let (bin2, runs) = (bin.to_path_buf(), load.single);
    out.direct = node
        .run(move || innode::direct_baseline(&bin2, BUILTIN, PORT, runs))
        .await??;

    crate::progress(&format!("  {} pods at once", load.burst));
    let names: Vec<String> = (0..load.burst).map(|i| format!("burst-{i:03}")).collect();
    let first_sent = Instant::now();
    let created = futures::future::join_all(names.iter().map(|name| async move {
        let sent = Instant::now();
        create(client, name).await.map(|()| (sent, Instant::now()))
    }))
    .await;
    for (name, r) in names.iter().zip(created) {
        let (sent, acked) = r?;
        let c = tracker.pods.entry(name.clone()).or_default();
        c.sent = Some(sent);
        c.acked = Some(acked);
    }
    let deadline = Instant::now() + 3 * POD_DEADLINE;
    for name in &names {
        tracker
            .until(name, deadline, |c| c.running.is_some() && c.ready.is_some())
            .await?;
    }
    let mut last_running = first_sent;
    let mut addrs = Vec::new();
    for name in &names {
        let c = &tracker.pods[name];
        let (sent, acked) = (c.sent.expect("set above"), c.acked.expect("set above"));
        let (running, ready) = (c.running.expect("waited"), c.ready.expect("waited"));
        out.burst_running.push(running - sent);
        out.burst_bound
            .push(c.bound.map_or(Duration::ZERO, |b| b.saturating_duration_since(sent)));
        out.burst_running_from_ack
            .push(running.saturating_duration_since(acked));
        out.burst_ready.push(ready - sent);
        out.burst_create.push(acked - sent);
        last_running = last_running.max(running);
        out.server_seconds_max = out.server_seconds_max.max(c.server_seconds);
        addrs.push(pod_addr(c)?);
    }
    out.burst_all_running = last_running - first_sent;
    out.burst_answered = node
        .run(move || addrs.into_iter().filter(|a| innode::http_ok(*a)).count())
        .await?;

    tokio::time::sleep(load.settle).await;
    let loaded = podmem::snapshot(data, up)?;
    out.memory = PodMemory {
        idle,
        loaded,
        direct: out.direct.memory,
    };
    Ok(out)
}

fn pod_addr(c: &Clock) -> Result<SocketAddr> {
    let ip = c.ip.as_deref().context("a Running pod without status.podIP")?;
    Ok(SocketAddr::new(
        ip.parse().with_context(|| format!("pod IP {ip}"))?,
        PORT,
    ))
}

async fn create(client: &kube::Client, name: &str) -> Result<()> {
    let uri = format!("/api/v1/namespaces/{NAMESPACE}/pods");
    let (status, body) = cluster::call(client, http::Method::POST, &uri, Some(pod_body(name).into())).await?;
    if status != http::StatusCode::CREATED {
        bail!("creating pod {name}: {status} {}", String::from_utf8_lossy(&body));
    }
    Ok(())
}

async fn delete(client: &kube::Client, name: &str) -> Result<()> {
    let uri = format!("/api/v1/namespaces/{NAMESPACE}/pods/{name}");
    let (status, body) = cluster::call(client, http::Method::DELETE, &uri, None).await?;
    if !status.is_success() {
        bail!("deleting pod {name}: {status} {}", String::from_utf8_lossy(&body));
    }
    Ok(())
}

/// Open a watch on the namespace's pods from now; events are stamped when their line arrives.
async fn watch(client: &kube::Client) -> Result<Tracker> {
    let (status, body) = cluster::call(
        client,
        http::Method::GET,
        &format!("/api/v1/namespaces/{NAMESPACE}/pods"),
        None,
    )
    .await?;
    if !status.is_success() {
        bail!("LIST pods: {status}");
    }
    let list: serde_json::Value = serde_json::from_slice(&body)?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .context("LIST without metadata.resourceVersion")?;
    let uri = format!("/api/v1/namespaces/{NAMESPACE}/pods?watch=true&resourceVersion={rv}&timeoutSeconds=1800");
    let req = http::Request::get(uri).body(kube::client::Body::empty())?;
    let resp = client.send(req).await.context("opening the pod watch")?;
    if !resp.status().is_success() {
        bail!("pod watch answered {}", resp.status());
    }
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(read_events(resp.into_body(), tx));
    Ok(Tracker {
        rx,
        pods: HashMap::new(),
    })
}

/// Read a watch body, stamping each complete line when its last bytes arrive.
async fn read_events(mut body: kube::client::Body, tx: mpsc::UnboundedSender<(PodEvent, Instant)>) {
    let mut buf = Vec::new();
    while let Some(Ok(frame)) = body.frame().await {
        let at = Instant::now();
        let Ok(data) = frame.into_data() else { continue };
        buf.extend_from_slice(&data);
        while let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            if let Some(ev) = pod_event(&line) {
                if tx.send((ev, at)).is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_ready_pod_line_gives_phase_ip_and_server_seconds() {
        let line = br#"{"type":"MODIFIED","object":{"metadata":{"name":"burst-001","creationTimestamp":"2026-11-23T18:00:00Z"},
            "spec":{"nodeName":"pwbench-pods-control-plane"},"status":{"phase":"Running","podIP":"10.230.0.7","conditions":[
              {"type":"PodScheduled","status":"True","lastTransitionTime":"2026-11-23T18:00:00Z"},
              {"type":"Ready","status":"True","lastTransitionTime":"2026-11-23T18:00:01Z"}]}}}"#;
        let ev = pod_event(line).unwrap();
        assert_eq!(
            ev,
            PodEvent {
                kind: "MODIFIED".into(),
                name: "burst-001".into(),
                phase: "Running".into(),
                ip: Some("10.230.0.7".into()),
                bound: true,
                ready: true,
                server_seconds: Some(1),
            }
        );
    }

    #[test]
    fn a_pending_pod_is_not_ready_and_has_no_server_seconds() {
        let line = br#"{"type":"ADDED","object":{"metadata":{"name":"p","creationTimestamp":"2026-11-23T18:00:00Z"},
            "status":{"phase":"Pending","conditions":[{"type":"Ready","status":"False","lastTransitionTime":"2026-11-23T18:00:00Z"}]}}}"#;
        let ev = pod_event(line).unwrap();
        assert_eq!(
            (ev.phase.as_str(), ev.ready, ev.server_seconds, ev.ip),
            ("Pending", false, None, None)
        );
        assert_eq!(pod_event(br#"{"type":"BOOKMARK","object":{"metadata":{}}}"#), None);
    }

    #[test]
    fn the_pod_body_runs_the_image_under_test() {
        let v: serde_json::Value = serde_json::from_slice(&pod_body("single-00")).unwrap();
        assert_eq!(v["metadata"]["name"], "single-00");
        assert_eq!(v["spec"]["containers"][0]["image"], IMAGE);
    }
}
