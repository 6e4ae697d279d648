//! The rows of the nodes-and-pods table: pod startup, `up --nodes 3` to Ready, and memory per
//! pod, each beside the direct baseline where there is one.

use std::time::Duration;

use crate::host::Memory;
use crate::nodes::NodesUp;
use crate::podmem::overhead;
use crate::pods::Pods;
use crate::report::{mb2, Bar, Cells, Row};
use crate::stats::Summary;

/// A row of podway (and maybe baseline) durations, judged on podway's value against `limit`.
fn timed(measure: impl Into<String>, podway: Option<Duration>, base: Option<Duration>, limit: Duration) -> Row {
    Row::timed(measure, podway, None, base, limit)
}

/// A row of text values without a bar.
fn text(measure: impl Into<String>, podway: Option<String>, base: Option<String>) -> Row {
    Row::plain(
        measure,
        Cells {
            sqlite: podway,
            etcd: None,
            raw: base,
        },
    )
}

/// A row of per-pod KiB held to `limit_mb` megabytes (10^6 bytes).
fn per_pod(measure: impl Into<String>, kib: Option<f64>, limit_mb: Option<f64>) -> Row {
    let mut row = text(measure, kib.map(mb2), None);
    row.bar = limit_mb.map(|limit| Bar {
        target: format!("< {limit} MB"),
        met: kib.map(|k| ("SQLite", k * 1024.0 / 1e6 < limit)).into_iter().collect(),
    });
    row
}

fn pick(s: Option<Summary>, f: fn(&Summary) -> Duration) -> Option<Duration> {
    s.as_ref().map(f)
}

/// The pod startup rows.
pub fn startup_rows(p: &Pods) -> Vec<Row> {
    let fifty = Duration::from_millis(50);
    let three_hundred = Duration::from_millis(300);
    let single = Summary::of(&p.single_running);
    let answering = Summary::of(&p.single_answering);
    let direct = Summary::of(&p.direct.to_answer);
    let n1 = p.single_running.len();
    let burst = Summary::of(&p.burst_running);
    let floor = Summary::of(&p.cni_floor);
    let n = p.burst_running.len();
    let mut rows = vec![
        timed(
            format!("1. one pod alone: create sent → watch shows Running, p50 of {n1}"),
            pick(single, |s| s.p50),
            None,
            fifty,
        ),
        timed("1. same, max", pick(single, |s| s.max), None, fifty).without_bar(),
        timed(
            "1. same, create sent → watch shows it bound to the node (scheduler), p50",
            pick(Summary::of(&p.single_bound), |s| s.p50),
            None,
            fifty,
        )
        .without_bar(),
        timed(
            format!("1. one pod alone: create sent → it answers HTTP (podway) / fork+exec → it answers (direct), p50 of {n1}"),
            pick(answering, |s| s.p50),
            pick(direct, |s| s.p50),
            fifty,
        )
        .without_bar(),
        timed(
            "1. same, max",
            pick(answering, |s| s.max),
            pick(direct, |s| s.max),
            fifty,
        )
        .without_bar(),
        timed(
            format!("1. {n} pods at once: create sent → watch shows Running (podway) / sandbox start → CNI ADD done, no podway (direct), p50"),
            pick(burst, |s| s.p50),
            pick(floor, |s| s.p50),
            fifty,
        ),
        timed(
            format!("1. {n} pods at once: same, p99"),
            pick(burst, |s| s.p99),
            pick(floor, |s| s.p99),
            three_hundred,
        ),
        timed("1. same, max", pick(burst, |s| s.max), pick(floor, |s| s.max), fifty).without_bar(),
    ];
    let more: [(&str, &[Duration]); 4] = [
        (
            "1. same, from create acknowledged → Running,",
            &p.burst_running_from_ack,
        ),
        ("1. same, create sent → bound to the node (scheduler),", &p.burst_bound),
        ("1. same, create sent → Ready=True,", &p.burst_ready),
        ("1. same, the create request itself (sent → response),", &p.burst_create),
    ];
    for (what, samples) in more {
        let s = Summary::of(samples);
        rows.push(timed(format!("{what} p50"), pick(s, |s| s.p50), None, fifty).without_bar());
        rows.push(timed(format!("{what} p99"), pick(s, |s| s.p99), None, fifty).without_bar());
    }
    rows.push(
        timed(
            "1. same, the first pod to run: create sent → Running",
            p.burst_running.iter().min().copied(),
            None,
            fifty,
        )
        .without_bar(),
    );
    rows.push(
        timed(
            "1. same, first create sent → last pod Running",
            Some(p.burst_all_running),
            None,
            fifty,
        )
        .without_bar(),
    );
    rows.push(text(
        "1. same, pods answering HTTP once all were Running",
        Some(format!("{} of {n}", p.burst_answered)),
        None,
    ));
    rows.push(text(
        "1. same, largest Ready.lastTransitionTime − creationTimestamp (server, 1 s resolution)",
        p.server_seconds_max.map(|s| format!("{s} s")),
        None,
    ));
    rows
}

/// The `up --nodes N` rows.
pub fn nodes_rows(u: &NodesUp) -> Vec<Row> {
    let bar = Duration::from_millis(1500);
    let s = Summary::of(&u.to_ready);
    let k = Summary::of(&u.to_kubectl);
    let n = u.nodes;
    let runs = u.to_ready.len();
    vec![
        timed(
            format!("2. `podway up --nodes {n}` → API lists {n} Nodes Ready, median of {runs}"),
            pick(s, |s| s.p50),
            None,
            bar,
        ),
        timed("2. same, max", pick(s, |s| s.max), None, bar).without_bar(),
        timed(
            format!("2. `podway up --nodes {n}` → `kubectl get nodes` shows {n} Ready, median"),
            pick(k, |s| s.p50),
            None,
            bar,
        ),
        timed(
            "2. podway's own \"ready in\" (agents started, not yet Ready), median",
            pick(Summary::of(&u.self_reported), |s| s.p50),
            None,
            bar,
        )
        .without_bar(),
        timed(
            "2. `podway down` (pods, agents, namespaces gone), median",
            pick(Summary::of(&u.down), |s| s.p50),
            None,
            bar,
        )
        .without_bar(),
        text(
            "2. node namespaces left after `podway down`",
            Some(u.leftovers.len().to_string()),
            None,
        ),
    ]
}

/// `RSS / PSS / USS` of one process.
fn three(m: &Memory) -> String {
    let opt = |v: Option<u64>| v.map(|k| mb2(k as f64)).unwrap_or_else(|| "—".into());
    format!("{} / {} / {}", mb2(m.rss_kib as f64), opt(m.pss_kib), opt(m.uss_kib))
}

fn opt(v: Option<f64>) -> String {
    v.map(mb2).unwrap_or_else(|| "—".into())
}

/// The memory rows.
pub fn memory_rows(p: &Pods) -> Vec<Row> {
    let m = &p.memory;
    let o = overhead(m);
    let n = o.pods;
    vec![
        text("3. agent RSS / PSS / USS, 0 pods", Some(three(&m.idle.agent)), None),
        text(
            format!("3. agent RSS / PSS / USS, {n} pods Running"),
            Some(three(&m.loaded.agent)),
            None,
        ),
        text(
            "3. agent growth per pod, RSS / PSS / USS",
            Some(format!(
                "{} / {} / {}",
                mb2(o.agent_rss),
                opt(o.agent_pss),
                opt(o.agent_uss)
            )),
            None,
        ),
        text(
            format!("3. pod shim (`podway pod-shim`), mean of {n}: RSS / PSS / USS"),
            Some(format!(
                "{} / {} / {}",
                mb2(o.shim_rss),
                opt(o.shim_pss),
                opt(o.shim_uss)
            )),
            None,
        ),
        per_pod(
            "3. **per-pod overhead: agent USS growth per pod + shim PSS**",
            o.per_pod(),
            Some(2.0),
        ),
        per_pod(
            "3. same, private pages only (agent USS growth per pod + shim USS)",
            o.per_pod_private(),
            None,
        ),
        per_pod(
            "3. same with RSS (agent RSS growth per pod + shim RSS; shared pages counted in every shim)",
            Some(o.per_pod_rss()),
            None,
        ),
        text(
            "3. the pod's own process (`builtin-image echo-hname`), mean: RSS / PSS / USS",
            Some(format!(
                "{} / {} / {}",
                mb2(o.container_rss),
                opt(o.container_pss),
                opt(o.container_uss)
            )),
            m.direct.as_ref().map(three),
        ),
        text(
            format!("3. processes found with {n} pods: shims, their children"),
            Some(format!("{}, {}", m.loaded.shims.len(), m.loaded.containers.len())),
            None,
        ),
        text(
            "3. control plane (`podway up`) RSS growth per pod (not counted above)",
            Some(mb2(o.up_rss)),
            None,
        ),
    ]
}
