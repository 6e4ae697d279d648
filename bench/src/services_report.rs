//! The Services tables: plain results in, Markdown out. Every bar is judged here, from the
//! numbers shown beside it, so a reader can check each verdict by hand.

use std::time::Duration;

use crate::report::yes;
use crate::services_dns::DnsResults;
use crate::services_net::Load;
use crate::services_nft::{FirstPacket, NftResults};
use crate::services_proxies::{ProxyResults, PROXIES};
use crate::stats::{rate, Summary};

/// One row: what, the value columns, and the verdict (empty without a bar).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// What was measured.
    pub measure: String,
    /// One cell per value column (`—` when not measured).
    pub cells: Vec<String>,
    /// `target: yes|no (why)`, or empty.
    pub bar: String,
}

fn line(measure: impl Into<String>, cells: Vec<String>, bar: impl Into<String>) -> Line {
    Line {
        measure: measure.into(),
        cells,
        bar: bar.into(),
    }
}

/// Renders `lines` under `columns` (value columns only; Measure and Bar are added).
pub fn render(columns: &[&str], lines: &[Line]) -> String {
    let mut out = format!("| Measure | {} | Bar: met? |\n|---|", columns.join(" | "));
    out.push_str(&"---:|".repeat(columns.len()));
    out.push_str("---|\n");
    for l in lines {
        out.push_str(&format!("| {} | {} | {} |\n", l.measure, l.cells.join(" | "), l.bar));
    }
    out
}

/// Microseconds with one decimal.
pub fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// Milliseconds, as the other tables show them.
fn ms(d: Duration) -> String {
    crate::report::ms(d)
}

/// Megabytes (10^6 bytes) per second of `bytes` moved in `d`.
pub fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// The median run's throughput (runs are few, so the median resists one disturbed run).
pub fn median_throughput(bytes: u64, runs: &[Duration]) -> Option<f64> {
    Summary::of(runs).map(|s| mb_per_s(bytes, s.p50))
}

fn dash() -> String {
    "—".to_string()
}

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map(f).unwrap_or_else(dash)
}

/// The difference `a − b`, signed, in microseconds.
fn added(a: Duration, b: Duration) -> f64 {
    (a.as_secs_f64() - b.as_secs_f64()) * 1e6
}

/// Whether first-packet latency is flat: the largest table's p50 within 10 % (or 5 µs, the
/// timer's noise on a busy 2-core machine) of the smallest's, each taken as the cluster IP's
/// excess over the direct connection measured in the same rounds.
pub fn flat(small: &FirstPacket, large: &FirstPacket) -> Option<(f64, bool)> {
    let excess =
        |f: &FirstPacket| -> Option<f64> { Some(added(Summary::of(&f.cluster_ip)?.p50, Summary::of(&f.direct)?.p50)) };
    let base = Summary::of(&small.cluster_ip)?.p50.as_secs_f64() * 1e6;
    let growth = excess(large)? - excess(small)?;
    Some((growth, growth <= (base * 0.10).max(5.0)))
}

/// The nftables and DNS table: podway beside a baseline.
pub fn podway_rows(nft: Option<&NftResults>, dns: Option<&DnsResults>) -> Vec<Line> {
    let mut rows = Vec::new();
    if let Some(n) = nft {
        rows.extend(data_path_rows(n));
        rows.extend(first_packet_rows(&n.first_packet));
        rows.extend(programming_rows(n));
    }
    if let Some(d) = dns {
        rows.extend(dns_rows(d));
    }
    rows
}

fn data_path_rows(n: &NftResults) -> Vec<Line> {
    let d = &n.data_path;
    let mut rows = Vec::new();
    let direct = median_throughput(d.bytes, &d.bulk[0]);
    for (i, via) in [(1, "ClusterIP"), (2, "NodePort")] {
        let through = median_throughput(d.bytes, &d.bulk[i]);
        let bar = match (through, direct) {
            (Some(t), Some(b)) => format!("≥ 95 % of direct: {} ({:.0} %)", yes(t >= 0.95 * b), 100.0 * t / b),
            _ => String::new(),
        };
        rows.push(line(
            format!(
                "1. throughput via {via}, one TCP stream of {} MB, median of {}",
                d.bytes / 1_000_000,
                d.bulk[i].len()
            ),
            vec![
                opt(through, |v| format!("{v:.0} MB/s")),
                opt(direct, |v| format!("{v:.0} MB/s")),
            ],
            bar,
        ));
    }
    for (what, samples) in [
        ("request/response (64 B) on a kept connection", &d.kept),
        ("new connection + request/response", &d.fresh),
    ] {
        let base = Summary::of(&samples[0]);
        for (i, via) in [(1, "ClusterIP"), (2, "NodePort")] {
            let s = Summary::of(&samples[i]);
            rows.push(line(
                format!("1. {what} via {via}, p50 of {}", samples[i].len()),
                vec![opt(s, |s| us(s.p50)), opt(base, |s| us(s.p50))],
                "",
            ));
            let bar = match (s, base) {
                (Some(s), Some(b)) => {
                    let a = added(s.p99, b.p99);
                    format!("added < 20 µs: {} ({a:+.1} µs)", yes(a < 20.0))
                }
                _ => String::new(),
            };
            rows.push(line(
                "1. same, p99",
                vec![opt(s, |s| us(s.p99)), opt(base, |s| us(s.p99))],
                bar,
            ));
        }
    }
    rows
}

fn first_packet_rows(fp: &[FirstPacket]) -> Vec<Line> {
    let mut rows = Vec::new();
    let verdict = match (fp.first(), fp.last()) {
        (Some(a), Some(b)) if fp.len() > 1 => flat(a, b).map(|(growth, ok)| {
            format!(
                "flat (≤ 10 % or 5 µs more than at {}): {} ({growth:+.1} µs)",
                a.services,
                yes(ok)
            )
        }),
        _ => None,
    };
    for (k, f) in fp.iter().enumerate() {
        let (c, d) = (Summary::of(&f.cluster_ip), Summary::of(&f.direct));
        rows.push(line(
            format!(
                "1. first packet (`connect()` via ClusterIP) with {} Services programmed, p50 of {}",
                f.services,
                f.cluster_ip.len()
            ),
            vec![opt(c, |s| us(s.p50)), opt(d, |s| us(s.p50))],
            if k + 1 == fp.len() {
                verdict.clone().unwrap_or_default()
            } else {
                String::new()
            },
        ));
        rows.push(line(
            "1. same, p99",
            vec![opt(c, |s| us(s.p99)), opt(d, |s| us(s.p99))],
            "",
        ));
    }
    rows
}

fn programming_rows(n: &NftResults) -> Vec<Line> {
    let p = &n.programming;
    let full = Summary::of(&p.full);
    let render = Summary::of(&p.render);
    let add = Summary::of(&p.add_one);
    let two_s = Duration::from_secs(2);
    let twenty_ms = Duration::from_millis(20);
    vec![
        line(
            format!(
                "2. full sync, {} Services × 2 endpoints (model + render + `nft -f`), median of {}",
                p.services,
                p.full.len()
            ),
            vec![
                opt(full, |s| ms(s.p50)),
                "kube-proxy nftables: ~9 min (published)".into(),
            ],
            opt(full, |s| format!("< 2 s: {}", yes(s.max < two_s))),
        ),
        line("2. same, max", vec![opt(full, |s| ms(s.max)), dash()], ""),
        line(
            format!(
                "2. of which model + render ({} kB of script), median",
                p.script_bytes / 1000
            ),
            vec![opt(render, |s| ms(s.p50)), dash()],
            "",
        ),
        line(
            format!(
                "2. add one Service live (model + incremental render + `nft -f`), p50 of {}",
                p.add_one.len()
            ),
            vec![
                opt(add, |s| ms(s.p50)),
                "kube-proxy nftables: 141 ms (published)".into(),
            ],
            "",
        ),
        line(
            "2. same, max",
            vec![opt(add, |s| ms(s.max)), dash()],
            opt(add, |s| format!("< 20 ms: {}", yes(s.max < twenty_ms))),
        ),
    ]
}

fn dns_rows(d: &DnsResults) -> Vec<Line> {
    let per_core = |q: &crate::services_dns::Qps| q.answered as f64 / q.server_cpu.as_secs_f64().max(0.01);
    let sat = &d.saturated;
    let m = Summary::of(&d.moderate.latencies);
    let mut rows = vec![
        line(
            format!(
                "4. DNS queries/s per server core ({} Services, {} in flight, {} lost)",
                d.services, sat.inflight, sat.lost
            ),
            vec![
                format!("{:.0}", per_core(sat)),
                "CoreDNS: 17,000 per vCPU (published)".into(),
            ],
            format!("≥ 17,000: {}", yes(per_core(sat) >= 17_000.0)),
        ),
        line(
            format!(
                "4. same, wall-clock rate (server CPU {:.1} s of {:.1} s)",
                sat.server_cpu.as_secs_f64(),
                sat.elapsed.as_secs_f64()
            ),
            vec![format!("{:.0} /s", rate(sat.answered, sat.elapsed)), dash()],
            "",
        ),
        line(
            format!("4. DNS latency at {} in flight, p50", d.moderate.inflight),
            vec![opt(m, |s| us(s.p50)), dash()],
            "",
        ),
        line(
            format!("4. same, p99 ({} lost)", d.moderate.lost),
            vec![opt(m, |s| us(s.p99)), dash()],
            opt(m, |s| format!("< 1 ms: {}", yes(s.p99 < Duration::from_millis(1)))),
        ),
    ];
    for n in &d.new_service {
        let r = Summary::of(&n.resolvable);
        let b = Summary::of(&n.build);
        rows.push(line(
            format!(
                "4. new Service resolvable beside {} (layered snapshot + swap + first answer), max of {}",
                n.services,
                n.resolvable.len()
            ),
            vec![opt(r, |s| ms(s.max)), dash()],
            opt(r, |s| format!("< 100 ms: {}", yes(s.max < Duration::from_millis(100)))),
        ));
        rows.push(line(
            "4. of which `Records::layered`, median",
            vec![opt(b, |s| ms(s.p50)), dash()],
            "",
        ));
    }
    rows
}

/// The proxies table: one column per proxy, then the direct path.
pub fn proxy_rows(p: &ProxyResults) -> Vec<Line> {
    let n = PROXIES.len();
    let mbs: Vec<Option<f64>> = p.results.iter().map(|r| median_throughput(p.bytes, &r.bulk)).collect();
    let rps = |l: &Load| rate(l.requests, l.elapsed);
    let better = |v: &[f64], higher: bool| {
        let others = &v[1..n];
        let best = if higher {
            others.iter().cloned().fold(f64::MIN, f64::max)
        } else {
            others.iter().cloned().fold(f64::MAX, f64::min)
        };
        (if higher { v[0] >= best } else { v[0] <= best }, best)
    };
    let mut rows = Vec::new();
    let bulk_vals: Vec<f64> = mbs.iter().map(|v| v.unwrap_or(0.0)).collect();
    let (ok, _) = better(&bulk_vals, true);
    rows.push(line(
        format!("3. throughput, one TCP stream of {} MB, median", p.bytes / 1_000_000),
        mbs.iter().map(|v| opt(*v, |v| format!("{v:.0} MB/s"))).collect(),
        format!("≥ the better of HAProxy and nginx: {}", yes(ok)),
    ));
    for (what, pick) in [
        (
            "kept connections",
            (|r: &crate::services_proxies::ProxyResult| &r.kept) as fn(&_) -> &Load,
        ),
        ("a new connection per request", |r| &r.fresh),
    ] {
        let loads: Vec<&Load> = p.results.iter().map(pick).collect();
        let r: Vec<f64> = loads.iter().map(|l| rps(l)).collect();
        let (ok, _) = better(&r, true);
        rows.push(line(
            format!("3. requests/s, 64 B each, {} in flight, {what}", p.concurrency),
            r.iter().map(|v| format!("{v:.0}")).collect(),
            format!("≥ the better: {}", yes(ok)),
        ));
        let p99: Vec<Option<Duration>> = loads.iter().map(|l| Summary::of(&l.latencies).map(|s| s.p99)).collect();
        let vals: Vec<f64> = p99.iter().map(|d| d.map_or(f64::MAX, |d| d.as_secs_f64())).collect();
        let (ok, _) = better(&vals, false);
        rows.push(line(
            "3. same, request latency p99",
            p99.iter().map(|d| opt(*d, us)).collect(),
            format!("≤ the better: {}", yes(ok)),
        ));
    }
    rows
}

/// The proxies table's columns.
pub fn proxy_columns() -> Vec<&'static str> {
    let mut c: Vec<&str> = PROXIES.iter().map(|(n, _)| *n).collect();
    c.push("direct (no proxy)");
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us_list(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|u| Duration::from_micros(*u)).collect()
    }

    #[test]
    fn first_packet_is_flat_when_the_excess_over_direct_does_not_grow() {
        let small = FirstPacket {
            services: 1,
            direct: us_list(&[40, 40, 40]),
            cluster_ip: us_list(&[50, 50, 50]),
        };
        let same_excess_on_a_slower_moment = FirstPacket {
            services: 10_000,
            direct: us_list(&[60, 60, 60]),
            cluster_ip: us_list(&[70, 70, 70]),
        };
        let (growth, ok) = flat(&small, &same_excess_on_a_slower_moment).unwrap();
        assert!(growth.abs() < 1e-6 && ok);
        let grew = FirstPacket {
            services: 10_000,
            direct: us_list(&[40, 40, 40]),
            cluster_ip: us_list(&[80, 80, 80]),
        };
        let (growth, ok) = flat(&small, &grew).unwrap();
        assert!((growth - 30.0).abs() < 1e-6 && !ok);
    }

    #[test]
    fn throughput_is_the_median_run() {
        let runs = [Duration::from_secs(1), Duration::from_secs(4), Duration::from_secs(2)];
        assert_eq!(median_throughput(1_000_000_000, &runs), Some(500.0));
    }

    #[test]
    fn tables_have_one_alignment_per_column() {
        let t = render(&["a", "b"], &[line("x", vec!["1".into(), "2".into()], "ok")]);
        assert!(
            t.starts_with("| Measure | a | b | Bar: met? |\n|---|---:|---:|---|\n"),
            "{t}"
        );
        assert!(t.contains("| x | 1 | 2 | ok |"), "{t}");
    }
}
