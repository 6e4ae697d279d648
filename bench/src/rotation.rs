//! Pods in and out of a Service's rotation on a real one-node cluster (`BENCH_PHASES=rotation`):
//! how long after the API shows a new pod Ready a request through the NodePort first reaches
//! it, and how long after a pod's delete returns no request reaches it any more.
//!
//! The Service selects a pod that stays (`rot-base`) and, one at a time, a pod that comes and
//! goes; every pod is echo-hname, answering with its own name. The host polls the NodePort with
//! a new connection per request. A request reaches either pod, so "in rotation" is seen one or
//! two requests (well under a millisecond each) after it happens; "out of rotation" is the
//! first of 50 answers in a row from other pods.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::nodes;

/// The Service's NodePort.
const NODE_PORT: u16 = 30555;
/// Answers from other pods in a row that count as "out of rotation".
const OUT_STREAK: usize = 50;
/// How long one step may take before the run fails.
const STEP: Duration = Duration::from_secs(30);

/// The samples.
#[derive(Debug, Default, Clone)]
pub struct Rotation {
    /// Pod Ready (as the API shows it) → the first request it answers.
    pub into: Vec<Duration>,
    /// Pod delete returned → no request reaches it.
    pub out_of: Vec<Duration>,
}

/// Runs `runs` pods in and out on a fresh 1-node cluster under `work` (data dir
/// `work/rotation-cluster/data`, where bench/run.sh looks for clusters to `podway down`).
pub async fn measure(bin: &Path, work: &Path, runs: usize) -> Result<Rotation> {
    let layout = nodes::Layout::bench(3, "rotation");
    let (c, client) = nodes::start(bin, &work.join("rotation-cluster"), &layout, 1).await?;
    let measured = run(&client, runs).await;
    drop(client);
    let (_, left) = c.down()?;
    if !left.is_empty() {
        bail!("podway down left network namespaces behind: {left:?}");
    }
    measured
}

async fn run(client: &kube::Client, runs: usize) -> Result<Rotation> {
    let node_ip = nodes::node_ip(client).await?;
    let target = SocketAddr::from((node_ip, NODE_PORT));
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    services
        .create(
            &PostParams::default(),
            &from(serde_json::json!({
                "metadata": {"name": "rot"},
                "spec": {"type": "NodePort", "selector": {"app": "rot"},
                         "ports": [{"port": 80, "targetPort": 80, "nodePort": NODE_PORT}]}
            })),
        )
        .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut events = watcher(pods.clone(), watcher::Config::default().labels("app=rot")).boxed();
    pods.create(&PostParams::default(), &pod("rot-base")).await?;
    until_ready(&mut events, "rot-base").await?;
    until_answer(target, |name| name == "rot-base").await?;

    let mut out = Rotation::default();
    for i in 0..runs {
        let name = format!("rot-{i}");
        pods.create(&PostParams::default(), &pod(&name)).await?;
        let ready = until_ready(&mut events, &name).await?;
        until_answer(target, |n| n == name).await?;
        out.into.push(ready.elapsed());

        pods.delete(&name, &DeleteParams::default()).await?;
        let deleted = Instant::now();
        out.out_of.push(until_gone(target, &name).await? - deleted);
    }
    Ok(out)
}

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("a valid object")
}

fn pod(name: &str) -> Pod {
    from(serde_json::json!({
        "metadata": {"name": name, "labels": {"app": "rot"}},
        "spec": {"terminationGracePeriodSeconds": 5,
                 "containers": [{"name": "web", "image": "sysnet4admin/echo-hname", "ports": [{"containerPort": 80}]}]}
    }))
}

/// The moment the watch shows pod `name` Ready.
async fn until_ready(
    events: &mut (impl futures::Stream<Item = Result<watcher::Event<Pod>, watcher::Error>> + Unpin),
    name: &str,
) -> Result<Instant> {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let next = tokio::time::timeout_at(deadline, events.next())
            .await
            .with_context(|| format!("pod {name} did not become Ready"))?;
        let Some(event) = next else {
            bail!("the pod watch ended")
        };
        let pod = match event? {
            watcher::Event::Apply(p) | watcher::Event::InitApply(p) => p,
            _ => continue,
        };
        let ready = pod
            .status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if pod.metadata.name.as_deref() == Some(name) && ready {
            return Ok(Instant::now());
        }
    }
}

/// Poll until an answer satisfies `want`.
async fn until_answer(target: SocketAddr, want: impl Fn(&str) -> bool) -> Result<Instant> {
    let deadline = Instant::now() + STEP;
    loop {
        if let Ok(name) = answer(target).await {
            if want(&name) {
                return Ok(Instant::now());
            }
        }
        if Instant::now() > deadline {
            bail!("{target} never answered as wanted within {STEP:?}");
        }
    }
}

/// The start of the first streak of [`OUT_STREAK`] answers not from `name`.
async fn until_gone(target: SocketAddr, name: &str) -> Result<Instant> {
    let deadline = Instant::now() + STEP;
    let (mut streak_start, mut streak) = (Instant::now(), 0);
    while streak < OUT_STREAK {
        let sent = Instant::now();
        match answer(target).await {
            Ok(n) if n == name => streak = 0,
            Ok(_) => {
                if streak == 0 {
                    streak_start = sent;
                }
                streak += 1;
            }
            // Refused or reset: neither in nor out; try again.
            Err(_) => {}
        }
        if Instant::now() > deadline {
            bail!("{name} stayed in rotation for {STEP:?}");
        }
    }
    Ok(streak_start)
}

/// One `GET /` on a new connection: the answering pod's name (echo-hname's body).
async fn answer(target: SocketAddr) -> Result<String> {
    let mut s = tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(target)).await??;
    s.set_nodelay(true)?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: rot\r\nConnection: close\r\n\r\n")
        .await?;
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(1), s.read_to_end(&mut all)).await??;
    let text = String::from_utf8_lossy(&all);
    let (_, body) = text.split_once("\r\n\r\n").context("no HTTP answer")?;
    Ok(body.trim().to_string())
}

/// Prints the rotation table.
pub fn print(r: &Rotation, runs: usize) {
    println!("\n### Pods in and out of rotation\n");
    println!("- a 1-node cluster, nftables; {runs} pods one at a time beside one that stays, behind a NodePort polled from the host with a new connection per request\n");
    println!("| Measure | p50 | p99 | Bar: met? |\n|---|---:|---:|---|");
    for (what, samples) in [
        ("pod Ready (API) → answers through the NodePort", &r.into),
        ("pod delete returned → no longer answers", &r.out_of),
    ] {
        if let Some(s) = crate::stats::Summary::of(samples) {
            println!(
                "| {what} | {} | {} | p99 under 100 ms: {} |",
                crate::report::ms(s.p50),
                crate::report::ms(s.p99),
                crate::report::yes(s.p99 < Duration::from_millis(100))
            );
        }
    }
}
