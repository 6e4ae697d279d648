//! The results table: plain data in, Markdown out (it reads as a table in a terminal too, and
//! pastes straight into docs/benchmarks.md).

use std::time::Duration;

use crate::host::Memory;
use crate::stats::{rate, Summary};

/// The columns a measurement can have a value in.
#[derive(Debug, Default, Clone)]
pub struct Cells {
    /// podway with its default SQLite store.
    pub sqlite: Option<String>,
    /// podway with `--datastore etcd://...`.
    pub etcd: Option<String>,
    /// The same work written straight to etcd (no API server).
    pub raw: Option<String>,
}

/// A bar a measurement is held to, and whether each podway column meets it.
#[derive(Debug, Clone)]
pub struct Bar {
    /// The target as text (`< 0.5 s`).
    pub target: String,
    /// (column name, met) for the podway columns that have a value.
    pub met: Vec<(&'static str, bool)>,
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured.
    pub measure: String,
    /// The values.
    pub cells: Cells,
    /// The bar, if the brief sets one.
    pub bar: Option<Bar>,
}

impl Row {
    /// A row without a bar.
    pub fn plain(measure: impl Into<String>, cells: Cells) -> Row {
        Row {
            measure: measure.into(),
            cells,
            bar: None,
        }
    }

    /// A row of durations held to `limit` (podway columns only; the raw etcd column is the
    /// baseline, not the product).
    pub fn timed(
        measure: impl Into<String>,
        sqlite: Option<Duration>,
        etcd: Option<Duration>,
        raw: Option<Duration>,
        limit: Duration,
    ) -> Row {
        let mut met = Vec::new();
        if let Some(d) = sqlite {
            met.push(("SQLite", d < limit));
        }
        if let Some(d) = etcd {
            met.push(("etcd", d < limit));
        }
        Row {
            measure: measure.into(),
            cells: Cells {
                sqlite: sqlite.map(ms),
                etcd: etcd.map(ms),
                raw: raw.map(ms),
            },
            bar: Some(Bar {
                target: format!("< {}", ms(limit)),
                met,
            }),
        }
    }

    /// A row of resident sizes held to `limit_mb` megabytes (10^6 bytes).
    pub fn memory(measure: impl Into<String>, sqlite: Option<u64>, etcd: Option<u64>, limit_mb: Option<f64>) -> Row {
        let bar = limit_mb.map(|limit| Bar {
            target: format!("< {limit} MB"),
            met: [("SQLite", sqlite), ("etcd", etcd)]
                .into_iter()
                .filter_map(|(n, v)| v.map(|kib| (n, megabytes(kib) < limit)))
                .collect(),
        });
        Row {
            measure: measure.into(),
            cells: Cells {
                sqlite: sqlite.map(mb),
                etcd: etcd.map(mb),
                raw: None,
            },
            bar,
        }
    }
}

/// Kibibytes as megabytes (10^6 bytes), the unit the bars use.
pub fn megabytes(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1e6
}

fn mb(kib: u64) -> String {
    format!("{:.1} MB", megabytes(kib))
}

/// A duration in milliseconds with precision that fits its size.
pub fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1000.0;
    if v < 10.0 {
        format!("{v:.2} ms")
    } else if v < 100.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.0} ms")
    }
}

/// Operations per second.
pub fn per_second(count: usize, elapsed: Duration) -> String {
    format!("{:.0} /s", rate(count, elapsed))
}

/// The p50, p99 and max rows of a latency summary.
pub fn latency_rows(
    what: &str,
    sqlite: Option<Summary>,
    etcd: Option<Summary>,
    raw: Option<Summary>,
    p99_limit: Duration,
) -> Vec<Row> {
    let pick = |s: Option<Summary>, f: fn(&Summary) -> Duration| s.as_ref().map(f);
    vec![
        Row::timed(
            format!("{what} p50"),
            pick(sqlite, |s| s.p50),
            pick(etcd, |s| s.p50),
            pick(raw, |s| s.p50),
            p99_limit,
        )
        .without_bar(),
        Row::timed(
            format!("{what} p99"),
            pick(sqlite, |s| s.p99),
            pick(etcd, |s| s.p99),
            pick(raw, |s| s.p99),
            p99_limit,
        ),
        Row::timed(
            format!("{what} max"),
            pick(sqlite, |s| s.max),
            pick(etcd, |s| s.max),
            pick(raw, |s| s.max),
            p99_limit,
        )
        .without_bar(),
    ]
}

impl Row {
    /// The same row with no bar (a statistic the bar is not about).
    pub fn without_bar(mut self) -> Row {
        self.bar = None;
        self
    }
}

/// The verdict text of a bar.
fn verdict(bar: &Bar) -> String {
    let ok: Vec<&str> = bar.met.iter().filter(|(_, m)| *m).map(|(n, _)| *n).collect();
    let verdict = match (ok.len(), bar.met.len()) {
        (_, 0) => "n/a".to_string(),
        (o, t) if o == t => "yes".to_string(),
        (0, _) => "no".to_string(),
        _ => format!("{} only", ok.join(", ")),
    };
    format!("{}: {verdict}", bar.target)
}

/// Render `rows` as a Markdown table.
pub fn render(rows: &[Row]) -> String {
    let dash = || "—".to_string();
    let mut out = String::from(
        "| Measure | podway (SQLite) | podway (etcd) | etcd alone | Bar: met? |\n|---|---:|---:|---:|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            r.measure,
            r.cells.sqlite.clone().unwrap_or_else(dash),
            r.cells.etcd.clone().unwrap_or_else(dash),
            r.cells.raw.clone().unwrap_or_else(dash),
            r.bar.as_ref().map(verdict).unwrap_or_default(),
        ));
    }
    out
}

/// Render `rows` as a Markdown table of two value columns: `podway` (the `sqlite` cell: node
/// clusters run on the default store) and `baseline` (the `raw` cell: the same work without
/// podway). The `etcd` cell is not shown.
pub fn render_two(podway: &str, baseline: &str, rows: &[Row]) -> String {
    let dash = || "—".to_string();
    let mut out = format!("| Measure | {podway} | {baseline} | Bar: met? |\n|---|---:|---:|---|\n");
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.measure,
            r.cells.sqlite.clone().unwrap_or_else(dash),
            r.cells.raw.clone().unwrap_or_else(dash),
            r.bar.as_ref().map(verdict).unwrap_or_default(),
        ));
    }
    out
}

/// KiB as megabytes (10^6 bytes) with two decimals, for per-pod figures.
pub fn mb2(kib: f64) -> String {
    format!("{:.2} MB", kib * 1024.0 / 1e6)
}

/// Memory before and after as two rows.
pub fn memory_rows(when: &str, sqlite: Option<Memory>, etcd: Option<Memory>, rss_limit_mb: Option<f64>) -> Vec<Row> {
    let mut rows = vec![Row::memory(
        format!("RSS {when}"),
        sqlite.map(|m| m.rss_kib),
        etcd.map(|m| m.rss_kib),
        rss_limit_mb,
    )];
    if sqlite.and_then(|m| m.pss_kib).is_some() || etcd.and_then(|m| m.pss_kib).is_some() {
        rows.push(Row::memory(
            format!("PSS {when}"),
            sqlite.and_then(|m| m.pss_kib),
            etcd.and_then(|m| m.pss_kib),
            None,
        ));
    }
    rows
}

/// A bar's verdict.
pub fn yes(met: bool) -> &'static str {
    if met {
        "yes"
    } else {
        "no"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_keep_three_significant_figures() {
        assert_eq!(ms(Duration::from_micros(1234)), "1.23 ms");
        assert_eq!(ms(Duration::from_micros(12345)), "12.3 ms");
        assert_eq!(ms(Duration::from_micros(212_400)), "212 ms");
    }

    #[test]
    fn a_bar_met_by_one_backend_names_it() {
        let row = Row::timed(
            "x",
            Some(Duration::from_millis(10)),
            Some(Duration::from_millis(30)),
            None,
            Duration::from_millis(20),
        );
        let table = render(&[row]);
        assert!(table.contains("< 20.0 ms: SQLite only"), "{table}");
    }

    #[test]
    fn missing_values_render_as_a_dash_and_the_baseline_is_not_judged() {
        let row = Row::timed(
            "x",
            Some(Duration::from_millis(1)),
            None,
            Some(Duration::from_secs(1)),
            Duration::from_millis(20),
        );
        let table = render(&[row]);
        assert!(table.contains("| 1.00 ms | — | 1000 ms | < 20.0 ms: yes |"), "{table}");
    }

    #[test]
    fn memory_is_judged_in_megabytes_of_a_million_bytes() {
        // 58,600 KiB is 60.0 MB (10^6 bytes) but only 57.2 MiB: the stricter unit decides.
        let row = Row::memory("RSS", Some(58_600), None, Some(60.0));
        assert!(render(&[row]).contains("60.0 MB | — | — | < 60 MB: no"));
    }

    #[test]
    fn two_column_tables_show_podway_and_the_baseline_only() {
        let row = Row::timed(
            "x",
            Some(Duration::from_millis(12)),
            None,
            Some(Duration::from_millis(3)),
            Duration::from_millis(50),
        );
        let table = render_two("podway", "direct", &[row]);
        assert!(
            table.starts_with("| Measure | podway | direct | Bar: met? |"),
            "{table}"
        );
        assert!(table.contains("| x | 12.0 ms | 3.00 ms | < 50.0 ms: yes |"), "{table}");
    }

    #[test]
    fn per_pod_megabytes_keep_two_decimals() {
        assert_eq!(mb2(1953.125), "2.00 MB");
        assert_eq!(mb2(-100.0), "-0.10 MB");
    }

    #[test]
    fn pss_rows_appear_only_when_the_kernel_gives_pss() {
        let m = Memory {
            rss_kib: 1000,
            pss_kib: None,
            peak_rss_kib: 1000,
            uss_kib: None,
        };
        assert_eq!(memory_rows("idle", Some(m), None, Some(60.0)).len(), 1);
        let m = Memory {
            pss_kib: Some(900),
            ..m
        };
        assert_eq!(memory_rows("idle", Some(m), None, Some(60.0)).len(), 2);
    }
}
