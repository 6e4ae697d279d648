//! `podway-bench`: podway's control-plane benchmarks (see bench/README.md).
//!
//! It measures and prints; it never judges a run as failed because of a number. A run fails
//! only when something did not work (podway did not start, a create was refused, a watch
//! stalled). Every podway it starts lives in a directory under `--work-dir` and is killed when
//! this program ends; `bench/run.sh` also stops them by pid file if this program is killed.

mod cluster;
mod cni_floor;
mod creates;
mod host;
mod ingress;
mod ingress_proxies;
mod innode;
mod list;
mod nodes;
mod podmem;
mod pods;
mod pods_report;
mod report;
mod rotation;
mod services;
mod services_dns;
mod services_net;
mod services_nft;
mod services_proxies;
mod services_report;
mod startup;
mod stats;
mod watch;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use cluster::Podway;
use host::Memory;
use report::{latency_rows, memory_rows, per_second, Cells, Row};
use stats::Summary;

/// Benchmark podway's control plane; prints a Markdown table.
#[derive(Parser, Debug)]
#[command(name = "podway-bench")]
struct Args {
    /// The podway binary (a release build).
    #[arg(long, env = "PODWAY_BIN", default_value = "target/release/podway")]
    podway: PathBuf,
    /// A scratch directory for data dirs and kubectl homes (the caller removes it).
    #[arg(long)]
    work_dir: PathBuf,
    /// A local etcd (`127.0.0.1:PORT`) for the baseline and podway's etcd mode; without it
    /// the etcd columns stay empty. (No env fallback: bench/run.sh reads BENCH_ETCD=on|off
    /// and passes this flag only when it started an etcd.)
    #[arg(long)]
    etcd: Option<String>,
    /// Cold starts to time.
    #[arg(long, env = "BENCH_STARTUP_RUNS", default_value_t = 10)]
    startup_runs: usize,
    /// Services to create.
    #[arg(long, env = "BENCH_SERVICES", default_value_t = 10_000)]
    services: usize,
    /// Creates in flight at once.
    #[arg(long, env = "BENCH_CONCURRENCY", default_value_t = 16)]
    concurrency: usize,
    /// Timed runs of each LIST.
    #[arg(long, env = "BENCH_LIST_RUNS", default_value_t = 5)]
    list_runs: usize,
    /// Concurrent watches.
    #[arg(long, env = "BENCH_WATCHERS", default_value_t = 100)]
    watchers: usize,
    /// Services created while the watches are open.
    #[arg(long, env = "BENCH_WATCH_EVENTS", default_value_t = 200)]
    watch_events: usize,
    /// Milliseconds between those creates.
    #[arg(long, env = "BENCH_WATCH_GAP_MS", default_value_t = 20)]
    watch_gap_ms: u64,
    /// Seconds to let podway settle before reading its memory.
    #[arg(long, env = "BENCH_SETTLE_SECS", default_value_t = 3)]
    settle_secs: u64,
    /// Which parts to run: `control-plane` (items 1–5, `--nodes 0`), `nodes` (pods, node
    /// startup and memory per pod; needs root), `services` (proxy data paths, programming,
    /// DNS; `BENCH_SVC_*` knobs), `rotation` (pods into and out of a Service's rotation on a
    /// cluster; root) and `ingress` (the Ingress server beside nginx and HAProxy,
    /// changes and memory on a cluster; root; `BENCH_ING_*` knobs), comma-separated.
    #[arg(
        long,
        env = "BENCH_PHASES",
        default_value = "control-plane,nodes,services,rotation,ingress",
        value_delimiter = ','
    )]
    phases: Vec<String>,
    /// Pods created at once on one node.
    #[arg(long, env = "BENCH_PODS", default_value_t = 100)]
    pods: usize,
    /// Pods created one at a time (and direct starts of the same program).
    #[arg(long, env = "BENCH_POD_RUNS", default_value_t = 20)]
    pod_runs: usize,
    /// Nodes of the `podway up --nodes N` runs.
    #[arg(long, env = "BENCH_NODES", default_value_t = 3)]
    nodes: usize,
    /// `podway up --nodes N` runs.
    #[arg(long, env = "BENCH_NODE_RUNS", default_value_t = 5)]
    node_runs: usize,
}

impl Args {
    fn runs(&self, phase: &str) -> bool {
        self.phases.iter().any(|p| p.trim() == phase)
    }
}

/// What the node phases measured.
struct NodePhases {
    up: nodes::NodesUp,
    pods: pods::Pods,
}

/// What one podway (one store) measured under load.
struct Loaded {
    idle: Memory,
    creates: creates::Creates,
    created: Memory,
    listed: Memory,
    lists: list::Lists,
    watches: watch::Watches,
    after: Memory,
}

fn main() -> Result<()> {
    let args = Args::parse();
    // Two workers: the client shares the machine with podway, and on the 2-core reference
    // machine more threads would only add contention.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

fn progress(msg: &str) {
    eprintln!("podway-bench: {msg}");
}

async fn run(args: Args) -> Result<()> {
    let machine = host::Machine::current();
    let load_before = host::load_average();
    let podway = std::fs::canonicalize(&args.podway)
        .with_context(|| format!("{} (build it with `make build`)", args.podway.display()))?;
    std::fs::create_dir_all(&args.work_dir)?;

    let control_plane = if args.runs("control-plane") {
        Some(control_plane(&args, &podway).await?)
    } else {
        None
    };
    let node_phases = if !args.runs("nodes") {
        None
    } else if !host::is_root() {
        progress("skipping the node phases: nodes are network namespaces, which need root");
        None
    } else {
        Some(node_phases(&args, &podway).await?)
    };
    let services = if args.runs("services") {
        let (work, knobs) = (args.work_dir.join("services"), services::Knobs::from_env());
        let k = knobs.clone();
        Some((
            tokio::task::spawn_blocking(move || services::measure(&work, &k)).await??,
            knobs,
        ))
    } else {
        None
    };
    let rotation = if args.runs("rotation") && host::is_root() {
        let runs = std::env::var("BENCH_ROTATION_RUNS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20);
        progress(&format!("{runs} pods into and out of a Service's rotation"));
        Some((rotation::measure(&podway, &args.work_dir, runs).await?, runs))
    } else {
        None
    };
    let ingress = if !args.runs("ingress") {
        None
    } else if !host::is_root() {
        progress("skipping the ingress phase: it needs network namespaces, which need root");
        None
    } else {
        let knobs = ingress::Knobs::from_env();
        Some((ingress::measure(&podway, &args.work_dir, &knobs).await?, knobs))
    };

    println!("# podway benchmark\n");
    println!("- date: {}", jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M UTC"));
    println!("- machine: {}", machine.describe());
    println!("- podway: {}", podway.display());
    println!(
        "- load average (1/5/15 min) before: {load_before}; after: {}",
        host::load_average()
    );
    if let Some((starts, sqlite, raw, etcd)) = &control_plane {
        println!("\n## Control plane (`--nodes 0`)\n");
        println!(
            "- one created Service as the server returns it: {} bytes of JSON",
            sqlite.creates.sample.len()
        );
        println!(
            "- load: {} Services at concurrency {}; {} watchers x {} events {} ms apart; {} startup runs, {} LIST runs\n",
            args.services,
            args.concurrency,
            args.watchers,
            args.watch_events,
            args.watch_gap_ms,
            args.startup_runs,
            args.list_runs
        );
        println!(
            "{}",
            report::render(&rows(&args, starts, sqlite, raw.as_ref(), etcd.as_ref()))
        );
    }
    if let Some(n) = &node_phases {
        println!("\n## Nodes and pods (SQLite store)\n");
        println!(
            "- pods: image `{}` as bare Pods in one namespace on a 1-node cluster: {} one at a time (each deleted before the next), then {} at once; {} runs of `podway up --nodes {}`\n",
            pods::IMAGE, args.pod_runs, args.pods, args.node_runs, args.nodes
        );
        let mut rows = pods_report::startup_rows(&n.pods);
        rows.extend(pods_report::nodes_rows(&n.up));
        rows.extend(pods_report::memory_rows(&n.pods));
        println!(
            "{}",
            report::render_two("podway", "direct (fork+exec, no podway)", &rows)
        );
    }
    if let Some((s, knobs)) = &services {
        services::print(s, knobs);
    }
    if let Some((r, runs)) = &rotation {
        rotation::print(r, *runs);
    }
    if let Some((i, knobs)) = &ingress {
        ingress::print(i, knobs);
    }
    Ok(())
}

/// Items 1–5: the control plane alone, on SQLite and (with `--etcd`) on etcd.
async fn control_plane(
    args: &Args,
    podway: &Path,
) -> Result<(startup::Startup, Loaded, Option<creates::Creates>, Option<Loaded>)> {
    progress(&format!("{} cold starts", args.startup_runs));
    let starts = startup::measure(podway, &args.work_dir, args.startup_runs).await?;

    progress("podway (SQLite) under load");
    let sqlite = loaded(args, podway, "sqlite", &[]).await?;

    let (raw, etcd) = match &args.etcd {
        Some(endpoint) => {
            progress(&format!("{} creates straight to etcd", args.services));
            let raw = creates::raw_etcd(endpoint, args.services, args.concurrency, &sqlite.creates.sample).await?;
            progress("podway (etcd) under load");
            let flags = ["--datastore".to_string(), format!("etcd://{endpoint}")];
            (Some(raw), Some(loaded(args, podway, "etcd", &flags).await?))
        }
        None => (None, None),
    };
    Ok((starts, sqlite, raw, etcd))
}

/// The node bars: pods on a 1-node cluster (startup and memory), then `podway up --nodes N`.
/// Every cluster ends with `podway down`, also when a phase fails.
async fn node_phases(args: &Args, podway: &Path) -> Result<NodePhases> {
    progress("pods on a 1-node cluster");
    let layout = nodes::Layout::bench(0, "pods");
    let dir = args.work_dir.join("nodes-pods");
    let (c, client) = nodes::start(podway, &dir, &layout, 1).await?;
    let load = pods::PodLoad {
        single: args.pod_runs,
        burst: args.pods,
        settle: Duration::from_secs(args.settle_secs),
    };
    let netns = nodes::Layout::netns_path(&layout.control_plane());
    let measured = pods::measure(&client, podway, &netns, &c.data_dir(), c.podway.pid(), &load).await;
    drop(client);
    progress("  podway down");
    let downed = c.down();
    let mut pods = measured?;
    let (_, left) = downed?;
    if !left.is_empty() {
        anyhow::bail!("podway down left network namespaces behind: {left:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    progress(&format!("  the CNI plugins alone, {} sandboxes at once", args.pods));
    pods.cni_floor = cni_floor::measure(args.pods).await?;

    progress(&format!("{} x podway up --nodes {}", args.node_runs, args.nodes));
    let layout = nodes::Layout::bench(1, "up");
    let up = nodes::measure_up(podway, &args.work_dir, &layout, args.nodes, args.node_runs).await?;
    Ok(NodePhases { up, pods })
}

/// Start podway with `flags`, let it settle, load it, and read its memory before and after.
async fn loaded(args: &Args, podway: &Path, label: &str, flags: &[String]) -> Result<Loaded> {
    let dir = args.work_dir.join(format!("load-{label}"));
    let (p, client) = Podway::start(podway, &dir, flags).await?;
    let settle = Duration::from_secs(args.settle_secs);
    tokio::time::sleep(settle).await;
    let idle = host::memory(p.pid())?;
    progress(&format!("  {} creates, {} in flight", args.services, args.concurrency));
    let creates = creates::podway(&client, args.services, args.concurrency).await?;
    let created = host::memory(p.pid())?;
    progress(&format!("  LIST x{}", args.list_runs));
    let lists = list::measure(&client, &p.kubeconfig(), &dir.join("home-list"), args.list_runs).await?;
    let listed = host::memory(p.pid())?;
    progress(&format!("  {} watchers x {} events", args.watchers, args.watch_events));
    let watches = watch::measure(
        &client,
        args.watchers,
        args.watch_events,
        Duration::from_millis(args.watch_gap_ms),
    )
    .await?;
    drop(client);
    tokio::time::sleep(settle).await;
    let after = host::memory(p.pid())?;
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Loaded {
        idle,
        creates,
        created,
        listed,
        lists,
        watches,
        after,
    })
}

fn median(samples: &[Duration]) -> Option<Duration> {
    Summary::of(samples).map(|s| s.p50)
}

fn max(samples: &[Duration]) -> Option<Duration> {
    Summary::of(samples).map(|s| s.max)
}

/// The table rows, in the brief's order.
fn rows(
    args: &Args,
    starts: &startup::Startup,
    sqlite: &Loaded,
    raw: Option<&creates::Creates>,
    etcd: Option<&Loaded>,
) -> Vec<Row> {
    let half_second = Duration::from_millis(500);
    let mut rows = vec![
        Row::timed(
            "1. up → /readyz ok, median",
            median(&starts.to_readyz),
            None,
            None,
            half_second,
        ),
        Row::timed(
            "1. up → /readyz ok, max",
            max(&starts.to_readyz),
            None,
            None,
            half_second,
        ),
        Row::timed(
            "1. up → `kubectl get nodes` ok, median",
            median(&starts.to_kubectl),
            None,
            None,
            half_second,
        ),
        Row::timed(
            "1. up → `kubectl get nodes` ok, max",
            max(&starts.to_kubectl),
            None,
            None,
            half_second,
        ),
        Row::timed(
            "1. podway's own \"ready in\", median",
            median(&starts.self_reported),
            None,
            None,
            half_second,
        )
        .without_bar(),
        Row::timed(
            "1. `kubectl get nodes` alone (new HOME), median",
            median(&starts.kubectl_alone),
            None,
            None,
            half_second,
        )
        .without_bar(),
    ];
    rows.extend(memory_rows(
        "idle after start",
        Some(sqlite.idle),
        etcd.map(|e| e.idle),
        Some(60.0),
    ));
    rows.extend(memory_rows(
        &format!("right after {} creates", args.services),
        Some(sqlite.created),
        etcd.map(|e| e.created),
        None,
    ));
    rows.extend(memory_rows(
        "right after the LISTs",
        Some(sqlite.listed),
        etcd.map(|e| e.listed),
        None,
    ));
    rows.extend(memory_rows(
        "after creates, LISTs and watches, settled",
        Some(sqlite.after),
        etcd.map(|e| e.after),
        None,
    ));
    rows.push(Row::memory(
        "peak RSS (VmHWM)",
        Some(sqlite.after.peak_rss_kib),
        etcd.map(|e| e.after.peak_rss_kib),
        None,
    ));
    rows.push(Row::plain(
        format!("3. create {} Services: throughput", args.services),
        Cells {
            sqlite: Some(per_second(sqlite.creates.latencies.len(), sqlite.creates.elapsed)),
            etcd: etcd.map(|e| per_second(e.creates.latencies.len(), e.creates.elapsed)),
            raw: raw.map(|r| per_second(r.latencies.len(), r.elapsed)),
        },
    ));
    rows.extend(latency_rows(
        "3. create latency",
        Summary::of(&sqlite.creates.latencies),
        etcd.and_then(|e| Summary::of(&e.creates.latencies)),
        raw.and_then(|r| Summary::of(&r.latencies)),
        Duration::from_millis(20),
    ));
    let kubectl = |l: &Loaded| median(&l.lists.kubectl);
    rows.push(Row::timed(
        format!("4. `kubectl get svc -A` ({} Services), median", sqlite.lists.items),
        kubectl(sqlite),
        etcd.and_then(kubectl),
        None,
        half_second,
    ));
    rows.push(
        Row::timed(
            "4. same, max",
            max(&sqlite.lists.kubectl),
            etcd.and_then(|e| max(&e.lists.kubectl)),
            None,
            half_second,
        )
        .without_bar(),
    );
    rows.push(
        Row::timed(
            "4. API LIST in pages of 500 (as kubectl), median",
            median(&sqlite.lists.paged),
            etcd.and_then(|e| median(&e.lists.paged)),
            None,
            half_second,
        )
        .without_bar(),
    );
    rows.push(
        Row::timed(
            "4. one unpaged API LIST, median",
            median(&sqlite.lists.api),
            etcd.and_then(|e| median(&e.lists.api)),
            None,
            half_second,
        )
        .without_bar(),
    );
    rows.extend(latency_rows(
        &format!(
            "5. watch delivery to {} watchers, from create acknowledged,",
            args.watchers
        ),
        Summary::of(&sqlite.watches.latencies),
        etcd.and_then(|e| Summary::of(&e.watches.latencies)),
        None,
        Duration::from_millis(50),
    ));
    rows.extend(
        latency_rows(
            "5. same, from create sent,",
            Summary::of(&sqlite.watches.from_sent),
            etcd.and_then(|e| Summary::of(&e.watches.from_sent)),
            None,
            Duration::from_millis(50),
        )
        .into_iter()
        .map(Row::without_bar),
    );
    rows.push(Row::plain(
        "5. deliveries before the create's response",
        Cells {
            sqlite: Some(format!("{} of {}", sqlite.watches.before_ack, sqlite.watches.expected)),
            etcd: etcd.map(|e| format!("{} of {}", e.watches.before_ack, e.watches.expected)),
            raw: None,
        },
    ));
    rows
}
