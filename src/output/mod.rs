//! The results folder: runs.csv, perf.csv, summary.csv, timeseries.csv, optional
//! queries.csv and nodes.csv, and run.json. Rows of runs.csv are appended and flushed
//! as runs finish, so an interrupted sweep keeps every finished run; at the end
//! runs.csv is rewritten in (point, replicate) order, so its bytes do not depend
//! on the thread count.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};

use crate::experiment::RunResult;
use crate::metrics::stats::summarize;
use crate::scenario::{InputError, Plan};

/// Files this program writes into a results folder.
pub const OUTPUT_FILES: [&str; 7] =
    ["runs.csv", "perf.csv", "summary.csv", "timeseries.csv", "queries.csv", "nodes.csv", "run.json"];

/// Makes sure `dir` can be written: refuses an existing, non-empty results folder
/// unless `force`, in which case only this program's own files are removed.
pub fn prepare(dir: &Path, force: bool) -> Result<(), InputError> {
    if dir.exists() {
        if !dir.is_dir() {
            return Err(InputError::new(format!("{} exists and is not a folder; choose another --out", dir.display())));
        }
        let occupied = fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(true);
        if occupied && !force {
            return Err(InputError::new(format!(
                "the results folder {} already exists and is not empty; pass --force to overwrite it, or --out DIR to write elsewhere",
                dir.display()
            )));
        }
        for f in OUTPUT_FILES {
            let _ = fs::remove_file(dir.join(f));
        }
        let _ = fs::remove_dir_all(dir.join("plots"));
    }
    fs::create_dir_all(dir)
        .map_err(|e| InputError::new(format!("cannot create the results folder {}: {e}", dir.display())))
}

/// Formats a metric value: shortest round-trip decimal, empty when undefined.
pub fn number(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x}"),
        _ => String::new(),
    }
}

fn runs_header(plan: &Plan) -> Vec<String> {
    let mut h = vec!["scenario".to_string(), "point".to_string()];
    h.extend(plan.columns.iter().cloned());
    h.extend(["replicate".to_string(), "seed".to_string()]);
    h.extend(plan.metrics.iter().cloned());
    h
}

fn runs_row(plan: &Plan, r: &RunResult) -> Vec<String> {
    let mut row = vec![plan.name.clone(), r.point.to_string()];
    row.extend(plan.points[r.point].params.iter().map(|(_, v)| v.clone()));
    row.extend([r.replicate.to_string(), r.seed.to_string()]);
    row.extend(r.metrics.iter().map(|&v| number(v)));
    row
}

/// Appends each finished run to runs.csv (in completion order) and flushes it at once.
pub struct Journal {
    writer: Mutex<csv::Writer<File>>,
}

impl Journal {
    pub fn create(dir: &Path, plan: &Plan) -> Result<Journal> {
        let path = dir.join("runs.csv");
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        let mut writer = csv::Writer::from_writer(file);
        writer.write_record(runs_header(plan))?;
        writer.flush()?;
        Ok(Journal { writer: Mutex::new(writer) })
    }

    pub fn append(&self, plan: &Plan, r: &RunResult) -> Result<()> {
        let mut w = self.writer.lock().map_err(|_| anyhow::anyhow!("journal lock poisoned"))?;
        w.write_record(runs_row(plan, r))?;
        w.flush()?;
        Ok(())
    }
}

/// Writes `path` through a temporary file and a rename, so a reader never sees half a file.
fn write_atomic(path: &Path, fill: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut w = BufWriter::new(File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?);
        fill(&mut w)?;
        w.flush()?;
    }
    fs::rename(&tmp, path).with_context(|| format!("renaming {}", tmp.display()))?;
    Ok(())
}

fn csv_file(path: &Path, header: Vec<String>, rows: impl Iterator<Item = Vec<String>>) -> Result<()> {
    write_atomic(path, |w| {
        let mut c = csv::Writer::from_writer(w);
        c.write_record(header)?;
        for row in rows {
            c.write_record(row)?;
        }
        c.flush()?;
        Ok(())
    })
}

/// Provenance and figures of the whole invocation, for run.json.
pub struct RunInfo {
    pub threads: usize,
    pub wall_seconds: f64,
    pub peak_rss_mb: f64,
    pub started_unix: u64,
}

/// Writes every output file from the finished, sorted results.
pub fn write_all(dir: &Path, plan: &Plan, results: &[RunResult], info: &RunInfo) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let path = dir.join("runs.csv");
    csv_file(&path, runs_header(plan), results.iter().map(|r| runs_row(plan, r)))?;
    written.push(path);

    let path = dir.join("perf.csv");
    let header = ["scenario", "point", "replicate", "wall_seconds", "events", "events_per_second", "peak_rss_mb"]
        .map(String::from)
        .to_vec();
    csv_file(
        &path,
        header,
        results.iter().map(|r| {
            let eps = if r.wall_seconds > 0.0 { r.events as f64 / r.wall_seconds } else { 0.0 };
            vec![
                plan.name.clone(),
                r.point.to_string(),
                r.replicate.to_string(),
                format!("{:.6}", r.wall_seconds),
                r.events.to_string(),
                format!("{eps:.0}"),
                format!("{:.1}", r.peak_rss_mb),
            ]
        }),
    )?;
    written.push(path);

    let path = dir.join("summary.csv");
    let mut header = vec!["scenario".to_string(), "point".to_string()];
    header.extend(plan.columns.iter().cloned());
    header.extend(["metric", "mean", "std", "ci95_low", "ci95_high", "n"].map(String::from));
    let mut rows = Vec::new();
    for point in &plan.points {
        let runs: Vec<&RunResult> = results.iter().filter(|r| r.point == point.index).collect();
        for (m, metric) in plan.metrics.iter().enumerate() {
            let values: Vec<f64> = runs.iter().filter_map(|r| r.metrics[m]).collect();
            let Some(s) = summarize(&values) else {
                continue;
            };
            let mut row = vec![plan.name.clone(), point.index.to_string()];
            row.extend(point.params.iter().map(|(_, v)| v.clone()));
            row.extend([
                metric.clone(),
                number(Some(s.mean)),
                number(s.std),
                number(s.ci95.map(|c| c.0)),
                number(s.ci95.map(|c| c.1)),
                s.n.to_string(),
            ]);
            rows.push(row);
        }
    }
    csv_file(&path, header, rows.into_iter())?;
    written.push(path);

    let path = dir.join("timeseries.csv");
    let header = [
        "scenario",
        "point",
        "replicate",
        "time_s",
        "queries",
        "successes",
        "success_rate",
        "first_hit_latency_mean_ms",
        "messages",
        "max_queue_length",
    ]
    .map(String::from)
    .to_vec();
    csv_file(
        &path,
        header,
        results.iter().flat_map(|r| {
            r.series.iter().map(move |s| {
                let rate = (s.queries > 0).then(|| s.successes as f64 / s.queries as f64);
                vec![
                    plan.name.clone(),
                    r.point.to_string(),
                    r.replicate.to_string(),
                    number(Some(s.time_s)),
                    s.queries.to_string(),
                    s.successes.to_string(),
                    number(rate),
                    number(s.first_hit_latency_mean_ms),
                    s.messages.to_string(),
                    s.max_queue_length.to_string(),
                ]
            })
        }),
    )?;
    written.push(path);

    if plan.output.queries {
        let path = dir.join("queries.csv");
        let header = [
            "scenario",
            "point",
            "replicate",
            "query",
            "origin",
            "type",
            "issued_ms",
            "hits",
            "first_hit_ms",
            "hops_to_first_hit",
            "messages",
            "nodes_reached",
        ]
        .map(String::from)
        .to_vec();
        csv_file(
            &path,
            header,
            results.iter().flat_map(|r| {
                r.queries.iter().enumerate().map(move |(i, q)| {
                    vec![
                        plan.name.clone(),
                        r.point.to_string(),
                        r.replicate.to_string(),
                        i.to_string(),
                        q.origin.0.to_string(),
                        q.want.0.to_string(),
                        number(Some(q.issued.as_millis_f64())),
                        q.hits.to_string(),
                        number(q.latency().map(|_| q.first_hit.as_millis_f64())),
                        if q.succeeded() { q.hops.to_string() } else { String::new() },
                        q.messages.to_string(),
                        q.reached.to_string(),
                    ]
                })
            }),
        )?;
        written.push(path);
    }

    if plan.output.nodes {
        let path = dir.join("nodes.csv");
        let header =
            ["scenario", "point", "replicate", "node", "messages_served", "load_per_s"].map(String::from).to_vec();
        csv_file(
            &path,
            header,
            results.iter().flat_map(|r| {
                let s = &plan.points[r.point].scenario;
                let window = s.duration.saturating_sub(s.warmup).as_secs_f64();
                r.node_load.iter().enumerate().map(move |(v, &n)| {
                    vec![
                        plan.name.clone(),
                        r.point.to_string(),
                        r.replicate.to_string(),
                        v.to_string(),
                        n.to_string(),
                        number(Some(n as f64 / window)),
                    ]
                })
            }),
        )?;
        written.push(path);
    }

    let path = dir.join("run.json");
    let events: u64 = results.iter().map(|r| r.events).sum();
    let fingerprint = results.iter().fold(0u64, |h, r| crate::engine::rng::mix64(h ^ r.fingerprint));
    let json = serde_json::json!({
        "peergrid_version": env!("CARGO_PKG_VERSION"),
        "git_commit": option_env!("PEERGRID_GIT_COMMIT").unwrap_or("unknown"),
        "scenario": plan.name,
        "scenario_file": plan.file,
        "scenario_fnv1a64": format!("{:016x}", fnv1a64(plan.text.as_bytes())),
        "master_seed": plan.seed,
        "points": plan.points.len(),
        "replicates": plan.replicates,
        "runs": results.len(),
        "threads": info.threads,
        "started_unix": info.started_unix,
        "wall_seconds": info.wall_seconds,
        "events": events,
        "peak_rss_mb": info.peak_rss_mb,
        "host": host(),
        "event_trace_fingerprint": format!("{fingerprint:016x}"),
        "run_fingerprints": results.iter().map(|r| serde_json::json!({
            "point": r.point, "replicate": r.replicate, "seed": r.seed, "fingerprint": format!("{:016x}", r.fingerprint)
        })).collect::<Vec<_>>(),
        "plots": plan.plots.iter().map(|p| serde_json::json!({
            "x": p.x, "y": p.y, "series": p.series, "logx": p.logx, "logy": p.logy, "title": p.title
        })).collect::<Vec<_>>(),
        "columns": plan.columns,
    });
    write_atomic(&path, |w| {
        serde_json::to_writer_pretty(&mut *w, &json)?;
        writeln!(w)?;
        Ok(())
    })?;
    written.push(path);
    Ok(written)
}

/// FNV-1a, 64 bit: a stable, documented hash of the scenario text.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

fn host() -> String {
    let name = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{name} ({} {}, {cpus} cpus)", std::env::consts::OS, std::env::consts::ARCH)
}
