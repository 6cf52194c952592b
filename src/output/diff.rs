//! `peergrid diff A B`: two results folders compared point by point and metric by
//! metric. For each sweep point both hold and each metric both measure, the means
//! of the replicates are compared with Welch's t-test, and the p-values are
//! corrected with Holm's method for the number of comparisons, so that "changed"
//! keeps its meaning when hundreds of metrics are compared at once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Result, bail};

use super::{number, read_csv};
use crate::metrics::stats::{Summary, holm, summarize, welch};

/// One metric at one sweep point in both folders.
#[derive(Clone, Debug)]
pub struct Comparison {
    /// The point's parameter values, in the folders' parameter columns.
    pub params: Vec<String>,
    /// The metric.
    pub metric: String,
    /// Its replicates in A (the baseline).
    pub a: Summary,
    /// Its replicates in B.
    pub b: Summary,
    /// Welch's two-sided p-value, `None` when either side has a single replicate.
    pub p: Option<f64>,
    /// `p` corrected by Holm's method over every comparison.
    pub p_holm: Option<f64>,
}

impl Comparison {
    /// Whether B's mean differs from A's at family-wise level `alpha`.
    pub fn significant(&self, alpha: f64) -> bool {
        self.p_holm.is_some_and(|p| p < alpha)
    }

    /// B's mean relative to A's, in percent; `None` when A's mean is 0.
    pub fn change_percent(&self) -> Option<f64> {
        (self.a.mean != 0.0).then(|| (self.b.mean - self.a.mean) / self.a.mean.abs() * 100.0)
    }
}

/// Everything `diff` found.
#[derive(Clone, Debug)]
pub struct Diff {
    /// The parameter columns both folders share.
    pub columns: Vec<String>,
    /// Every comparison, in A's point order, then metric order.
    pub comparisons: Vec<Comparison>,
    /// Points only one folder holds, and metrics only one measures, one line each.
    pub unmatched: Vec<String>,
}

/// A runs.csv read as (parameter columns, metric columns, values by point and metric).
struct Runs {
    params: Vec<String>,
    metrics: Vec<String>,
    points: Vec<Vec<String>>,
    /// The same points, for lookups.
    seen: BTreeSet<Vec<String>>,
    values: BTreeMap<(Vec<String>, String), Vec<f64>>,
}

fn read_runs(dir: &Path) -> Result<Runs> {
    let Some((header, rows)) = read_csv(&dir.join("runs.csv"))? else {
        bail!("{} has no runs.csv; expected a results folder of `peergrid run`", dir.display())
    };
    let at = |name: &str| header.iter().position(|h| h == name);
    let (Some(replicate), Some(seed)) = (at("replicate"), at("seed")) else {
        bail!(
            "{}/runs.csv has no replicate and seed columns; expected a results folder of `peergrid run`",
            dir.display()
        )
    };
    let params = header[2..replicate].to_vec();
    let metrics = header[seed + 1..].to_vec();
    let mut points: Vec<Vec<String>> = Vec::new();
    let mut seen: BTreeSet<Vec<String>> = BTreeSet::new();
    let mut values: BTreeMap<(Vec<String>, String), Vec<f64>> = BTreeMap::new();
    for row in rows {
        let key = row[2..replicate].to_vec();
        if seen.insert(key.clone()) {
            points.push(key.clone());
        }
        for (m, v) in metrics.iter().zip(&row[seed + 1..]) {
            if let Ok(x) = v.parse::<f64>() {
                values.entry((key.clone(), m.clone())).or_default().push(x);
            }
        }
    }
    Ok(Runs { params, metrics, points, seen, values })
}

/// Compares folder `b` with the baseline `a`.
pub fn compare(a: &Path, b: &Path) -> Result<Diff> {
    let (ra, rb) = (read_runs(a)?, read_runs(b)?);
    if ra.params != rb.params {
        bail!(
            "{} varies {} and {} varies {}; only results of the same sweep can be compared point by point",
            a.display(),
            list(&ra.params),
            b.display(),
            list(&rb.params)
        );
    }
    let mut unmatched = Vec::new();
    let describe = |p: &[String]| {
        if p.is_empty() {
            "the only point".to_string()
        } else {
            ra.params.iter().zip(p).map(|(c, v)| format!("{c}={v}")).collect::<Vec<_>>().join(", ")
        }
    };
    for (from, runs, other) in [(a, &ra, &rb), (b, &rb, &ra)] {
        for p in runs.points.iter().filter(|p| !other.seen.contains(*p)) {
            unmatched.push(format!("point {} is only in {}", describe(p), from.display()));
        }
        for m in runs.metrics.iter().filter(|m| !other.metrics.contains(m)) {
            unmatched.push(format!("metric {m} is only in {}", from.display()));
        }
    }
    let mut comparisons = Vec::new();
    for point in ra.points.iter().filter(|p| rb.seen.contains(*p)) {
        for metric in ra.metrics.iter().filter(|m| rb.metrics.contains(m)) {
            let key = (point.clone(), metric.clone());
            let (Some(a), Some(b)) =
                (ra.values.get(&key).and_then(|v| summarize(v)), rb.values.get(&key).and_then(|v| summarize(v)))
            else {
                continue;
            };
            let p = welch(&a, &b).map(|w| w.p);
            comparisons.push(Comparison { params: point.clone(), metric: metric.clone(), a, b, p, p_holm: None });
        }
    }
    let adjusted = holm(&comparisons.iter().map(|c| c.p).collect::<Vec<_>>());
    for (c, p) in comparisons.iter_mut().zip(adjusted) {
        c.p_holm = p;
    }
    Ok(Diff { columns: ra.params, comparisons, unmatched })
}

fn list(columns: &[String]) -> String {
    if columns.is_empty() { "nothing".to_string() } else { columns.join(", ") }
}

impl Diff {
    /// diff.csv: one row per comparison, with both sides' means, intervals and
    /// replicate counts, the change, and the raw and corrected p-values.
    pub fn csv(&self, alpha: f64) -> String {
        let mut out = String::new();
        let mut header: Vec<String> = self.columns.clone();
        header.extend(
            [
                "metric",
                "mean_a",
                "ci95_low_a",
                "ci95_high_a",
                "n_a",
                "mean_b",
                "ci95_low_b",
                "ci95_high_b",
                "n_b",
                "change",
                "change_percent",
                "p",
                "p_holm",
                "significant",
            ]
            .map(String::from),
        );
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record(&header);
        for c in &self.comparisons {
            let mut row = c.params.clone();
            let side = |s: &Summary| {
                [number(Some(s.mean)), number(s.ci95.map(|i| i.0)), number(s.ci95.map(|i| i.1)), s.n.to_string()]
            };
            row.push(c.metric.clone());
            row.extend(side(&c.a));
            row.extend(side(&c.b));
            row.extend([
                number(Some(c.b.mean - c.a.mean)),
                number(c.change_percent()),
                number(c.p),
                number(c.p_holm),
                c.significant(alpha).to_string(),
            ]);
            let _ = w.write_record(&row);
        }
        if let Ok(bytes) = w.into_inner() {
            out.push_str(&String::from_utf8_lossy(&bytes));
        }
        out
    }

    /// The significant changes as a table for people, at most `rows` of them.
    pub fn table(&self, alpha: f64, rows: usize) -> String {
        let changed: Vec<&Comparison> = self.comparisons.iter().filter(|c| c.significant(alpha)).collect();
        let mut out = String::new();
        if changed.is_empty() {
            return out;
        }
        let point = |c: &Comparison| {
            let parts: Vec<String> = self.columns.iter().zip(&c.params).map(|(k, v)| format!("{k}={v}")).collect();
            if parts.is_empty() { "-".to_string() } else { parts.join(" ") }
        };
        let side = |s: &Summary| match s.ci95 {
            Some((lo, hi)) => format!("{:.4} ± {:.2}", s.mean, (hi - lo) / 2.0),
            None => format!("{:.4}", s.mean),
        };
        let _ =
            writeln!(out, "{:<40} {:<28} {:>22} {:>22} {:>9} {:>9}", "point", "metric", "A", "B", "change", "p (Holm)");
        for c in changed.iter().take(rows) {
            let change = c.change_percent().map_or("-".to_string(), |p| format!("{p:+.1}%"));
            let _ = writeln!(
                out,
                "{:<40} {:<28} {:>22} {:>22} {:>9} {:>9.2e}",
                point(c),
                c.metric,
                side(&c.a),
                side(&c.b),
                change,
                c.p_holm.unwrap_or(f64::NAN)
            );
        }
        if changed.len() > rows {
            let _ = writeln!(out, "... and {} more in diff.csv", changed.len() - rows);
        }
        out
    }
}

/// Writes `out`/summary.csv holding the summaries of several results folders, told
/// apart by a `results` column set to each one's label, so that one plot draws
/// them side by side.
pub fn side_by_side(folders: &[(&Path, &str)], out: &Path) -> Result<()> {
    let mut header: Option<Vec<String>> = None;
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (dir, label) in folders {
        let Some((h, r)) = read_csv(&dir.join("summary.csv"))? else { bail!("{} has no summary.csv", dir.display()) };
        let Some(metric) = h.iter().position(|c| c == "metric") else {
            bail!("{}/summary.csv has no metric column", dir.display())
        };
        let mut with: Vec<String> = h.clone();
        with.insert(metric, "results".into());
        match &header {
            Some(prev) if *prev != with => bail!("the summaries have different columns"),
            Some(_) => {}
            None => header = Some(with),
        }
        for mut row in r {
            row.insert(metric, label.to_string());
            rows.push(row);
        }
    }
    let Some(header) = header else { bail!("no folders") };
    let mut w = csv::Writer::from_path(out.join("summary.csv"))?;
    w.write_record(&header)?;
    for row in rows {
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(dir: &Path, name: &str, rows: &[(&str, u32, f64, f64)]) -> std::path::PathBuf {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).expect("folder");
        let mut text = String::from("scenario,point,workload.rate,replicate,seed,success_rate,events\n");
        for (rate, r, s, e) in rows {
            text.push_str(&format!("x,0,{rate},{r},1,{s},{e}\n"));
        }
        std::fs::write(d.join("runs.csv"), text).expect("runs.csv");
        d
    }

    #[test]
    fn a_shifted_mean_is_significant_and_noise_is_not() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let a = folder(
            tmp.path(),
            "a",
            &[("5/s", 0, 0.90, 100.0), ("5/s", 1, 0.91, 110.0), ("5/s", 2, 0.89, 90.0), ("9/s", 0, 0.5, 7.0)],
        );
        let b = folder(
            tmp.path(),
            "b",
            &[("5/s", 0, 0.70, 101.0), ("5/s", 1, 0.71, 108.0), ("5/s", 2, 0.69, 92.0), ("7/s", 0, 0.5, 7.0)],
        );
        let d = compare(&a, &b).expect("comparable");
        assert_eq!(d.columns, ["workload.rate"]);
        let find = |m: &str| d.comparisons.iter().find(|c| c.metric == m).expect("compared");
        assert!(find("success_rate").significant(0.05), "{:?}", find("success_rate"));
        assert!(!find("events").significant(0.05), "{:?}", find("events"));
        assert_eq!(d.comparisons.len(), 2, "the points only one folder has are not compared");
        assert_eq!(d.unmatched.len(), 2, "{:?}", d.unmatched);
        let csv = d.csv(0.05);
        assert!(csv.starts_with("workload.rate,metric,mean_a"), "{csv}");
        assert!(d.table(0.05, 10).contains("success_rate"));
        assert!(!d.table(0.05, 10).contains("events"));
    }
}
