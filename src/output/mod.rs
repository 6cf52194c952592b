//! The results folder. Every run's rows are appended to each file and flushed the
//! moment the run finishes — runs.csv last, so a run counts as finished exactly when
//! its runs.csv row is there. When the sweep ends, `finalize` re-reads the files,
//! keeps only finished runs, and rewrites every file in (point, replicate) order and
//! summary.csv from runs.csv. `run`, `run --resume` and `merge` all end in that same
//! function, so their files are byte for byte the same.

pub mod diff;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, anyhow, bail};

use crate::experiment::{QUANTILES, RunResult};
use crate::metrics::stats::summarize;
use serde_json::json;

use crate::scenario::{InputError, Plan, PlotSpec};

/// The per-run files, in the order a finished run's rows are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Table {
    /// perf.csv: machine-dependent figures of each run (wall time, events, memory) and its fingerprint.
    Perf,
    /// timeseries.csv: each run's samples, one every `sample_every`.
    Timeseries,
    /// distributions.csv: each run's quantiles of first-hit latency and per-node load.
    Distributions,
    /// queries.csv: one row per query, when `[output] queries` is set.
    Queries,
    /// nodes.csv: messages served per node, when `[output] nodes` is set.
    Nodes,
    /// jobs.csv: one row per job, when `[output] jobs` is set.
    Jobs,
    /// runs.csv: one row per run with its parameters, seed and metrics; its row marks the run finished.
    Runs,
}

impl Table {
    /// Every per-run file, in the order a finished run's rows are written.
    pub const ALL: [Table; 7] =
        [Table::Perf, Table::Timeseries, Table::Distributions, Table::Queries, Table::Nodes, Table::Jobs, Table::Runs];

    /// The file's name in the results folder.
    pub fn file(self) -> &'static str {
        match self {
            Table::Perf => "perf.csv",
            Table::Timeseries => "timeseries.csv",
            Table::Distributions => "distributions.csv",
            Table::Queries => "queries.csv",
            Table::Nodes => "nodes.csv",
            Table::Jobs => "jobs.csv",
            Table::Runs => "runs.csv",
        }
    }
}

/// Files this program writes into a results folder, besides `plots/`.
pub const OUTPUT_FILES: [&str; 10] = [
    "runs.csv",
    "perf.csv",
    "summary.csv",
    "timeseries.csv",
    "distributions.csv",
    "queries.csv",
    "nodes.csv",
    "jobs.csv",
    "run.json",
    "scenario.toml",
];

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The header of every per-run file of a plan.
pub fn headers(plan: &Plan) -> Vec<(Table, Vec<String>)> {
    let mut runs = strings(&["scenario", "point"]);
    runs.extend(plan.columns.iter().cloned());
    runs.extend(strings(&["replicate", "seed"]));
    runs.extend(plan.metrics.iter().cloned());
    let mut out = vec![
        (
            Table::Perf,
            strings(&[
                "scenario",
                "point",
                "replicate",
                "wall_seconds",
                "events",
                "events_per_second",
                "peak_rss_mb",
                "run_memory_mb",
                "event_trace_fingerprint",
            ]),
        ),
        (
            Table::Timeseries,
            strings(&[
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
                "nodes_alive",
            ]),
        ),
        (Table::Distributions, strings(&["scenario", "point", "replicate", "distribution", "p", "value"])),
    ];
    if plan.output.jobs {
        out.push((
            Table::Jobs,
            strings(&[
                "scenario",
                "point",
                "replicate",
                "job",
                "origin",
                "cores",
                "runtime_s",
                "submit_s",
                "tries",
                "discovery_s",
                "node",
                "start_s",
                "done_s",
                "unplaced_s",
            ]),
        ));
    }
    if plan.output.queries {
        out.push((
            Table::Queries,
            strings(&[
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
            ]),
        ));
    }
    if plan.output.nodes {
        out.push((Table::Nodes, strings(&["scenario", "point", "replicate", "node", "messages_served", "load_per_s"])));
    }
    out.push((Table::Runs, runs));
    out
}

/// Formats a metric value: shortest round-trip decimal, empty when undefined.
pub fn number(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x}"),
        _ => String::new(),
    }
}

/// The rows one finished run adds to each file.
pub fn rows(plan: &Plan, r: &RunResult) -> Vec<(Table, Vec<Vec<String>>)> {
    let name = &plan.name;
    let id = |row: &mut Vec<String>| {
        row.extend([name.clone(), r.point.to_string(), r.replicate.to_string()]);
    };
    let mut out = Vec::new();
    let eps = if r.wall_seconds > 0.0 { r.events as f64 / r.wall_seconds } else { 0.0 };
    let mut perf = Vec::new();
    id(&mut perf);
    perf.extend([
        format!("{:.6}", r.wall_seconds),
        r.events.to_string(),
        format!("{eps:.0}"),
        format!("{:.1}", r.peak_rss_mb),
        format!("{:.1}", r.run_memory_mb),
        format!("{:016x}", r.fingerprint),
    ]);
    out.push((Table::Perf, vec![perf]));
    let series = r
        .series
        .iter()
        .map(|s| {
            let mut row = Vec::new();
            id(&mut row);
            let rate = (s.queries > 0).then(|| s.successes as f64 / s.queries as f64);
            row.extend([
                number(Some(s.time_s)),
                s.queries.to_string(),
                s.successes.to_string(),
                number(rate),
                number(s.first_hit_latency_mean_ms),
                s.messages.to_string(),
                s.max_queue_length.to_string(),
                s.nodes_alive.to_string(),
            ]);
            row
        })
        .collect();
    out.push((Table::Timeseries, series));
    let mut dist = Vec::new();
    for (what, q) in &r.distributions {
        for (i, v) in q.iter().enumerate() {
            let mut row = Vec::new();
            id(&mut row);
            row.extend([what.to_string(), number(Some(i as f64 / (QUANTILES - 1) as f64)), number(Some(*v))]);
            dist.push(row);
        }
    }
    out.push((Table::Distributions, dist));
    if plan.output.queries {
        let q = r
            .queries
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let mut row = Vec::new();
                id(&mut row);
                row.extend([
                    i.to_string(),
                    q.origin.0.to_string(),
                    q.want.0.to_string(),
                    number(Some(q.issued.as_millis_f64())),
                    q.hits.to_string(),
                    number(q.latency().map(|_| q.first_hit.as_millis_f64())),
                    if q.succeeded() { q.hops.to_string() } else { String::new() },
                    q.messages.to_string(),
                    q.reached.to_string(),
                ]);
                row
            })
            .collect();
        out.push((Table::Queries, q));
    }
    if plan.output.jobs {
        let secs = |t: Option<crate::base::SimTime>| number(t.map(|t| t.as_secs_f64()));
        let rows = r
            .jobs
            .iter()
            .enumerate()
            .map(|(i, (j, rec))| {
                let mut row = Vec::new();
                id(&mut row);
                row.extend([
                    i.to_string(),
                    j.origin.0.to_string(),
                    j.cores.to_string(),
                    number(Some(j.runtime_s)),
                    number(Some(j.submit.as_secs_f64())),
                    rec.tries.to_string(),
                    number(Some(rec.discovery.as_secs_f64())),
                    rec.node.map_or(String::new(), |v| v.0.to_string()),
                    secs(rec.start),
                    secs(rec.done),
                    secs(rec.unplaced),
                ]);
                row
            })
            .collect();
        out.push((Table::Jobs, rows));
    }
    if plan.output.nodes {
        let s = &plan.points[r.point].scenario;
        let window = s.duration.saturating_sub(s.warmup).as_secs_f64();
        let n = r
            .node_load
            .iter()
            .enumerate()
            .map(|(v, &n)| {
                let mut row = Vec::new();
                id(&mut row);
                row.extend([v.to_string(), n.to_string(), number(Some(n as f64 / window))]);
                row
            })
            .collect();
        out.push((Table::Nodes, n));
    }
    let mut run = vec![name.clone(), r.point.to_string()];
    run.extend(plan.points[r.point].params.iter().map(|(_, v)| v.clone()));
    run.extend([r.replicate.to_string(), r.seed.to_string()]);
    run.extend(r.metrics.iter().map(|&v| number(v)));
    out.push((Table::Runs, vec![run]));
    out
}

/// Makes sure `dir` can take new results: refuses a folder that already holds
/// results unless `force`, in which case only this program's own files go.
/// `resumable`: the command takes `--resume`, so the refusal may suggest it.
pub fn prepare(dir: &Path, force: bool, resumable: bool) -> Result<(), InputError> {
    if dir.exists() {
        if !dir.is_dir() {
            return Err(InputError::new(format!("{} exists and is not a folder; choose another --out", dir.display())));
        }
        let occupied = OUTPUT_FILES.iter().any(|f| dir.join(f).exists()) || dir.join("plots").exists();
        if occupied && !force {
            let resume = if resumable { ", --resume to complete an interrupted run," } else { "" };
            return Err(InputError::new(format!(
                "the results folder {} already holds results; pass --force to overwrite them{resume} or --out DIR to write elsewhere",
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

/// The file whose OS lock marks a results folder as being written.
const LOCK_FILE: &str = ".peergrid.lock";

/// The writer's hold on a results folder: an OS lock on a file in it, held as long
/// as this value lives and released by the system if the process dies, so a second
/// `run`, `run --resume` or `merge` into the same folder is refused rather than
/// tearing its files.
pub struct WriterLock {
    _file: File,
}

impl WriterLock {
    /// Takes the folder `dir` (creating it), or says who holds it.
    pub fn take(dir: &Path) -> Result<WriterLock, InputError> {
        if dir.exists() && !dir.is_dir() {
            return Err(InputError::new(format!("{} exists and is not a folder; choose another --out", dir.display())));
        }
        let path = dir.join(LOCK_FILE);
        let open = || -> std::io::Result<File> {
            fs::create_dir_all(dir)?;
            OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&path)
        };
        let mut file =
            open().map_err(|e| InputError::new(format!("cannot create the results folder {}: {e}", dir.display())))?;
        match file.try_lock() {
            Ok(()) => {
                // Who holds it, for the message a second writer gets.
                let _ = file.set_len(0).and_then(|()| write!(file, "{}", std::process::id()));
                Ok(WriterLock { _file: file })
            }
            Err(fs::TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(&path).unwrap_or_default();
                let holder =
                    if holder.trim().is_empty() { String::new() } else { format!(" (process {})", holder.trim()) };
                Err(InputError::new(format!(
                    "{} is being written by another peergrid{holder}; wait until it ends (a second writer would tear its files), or write elsewhere with --out",
                    dir.display()
                )))
            }
            // A file system without locks (some network mounts): go on unguarded.
            Err(fs::TryLockError::Error(_)) => Ok(WriterLock { _file: file }),
        }
    }
}

/// Finished runs read back from one or more results folders: every file's header
/// and its rows, only of runs whose runs.csv row exists.
#[derive(Clone, Debug, Default)]
pub struct Collected {
    /// Each file's header and the finished runs' rows, sorted by (point, replicate).
    pub tables: BTreeMap<Table, Rows>,
    /// The (point, replicate) of every run whose runs.csv row exists.
    pub finished: BTreeSet<(usize, u32)>,
}

fn key_of(header: &[String], row: &[String]) -> Option<(usize, u32)> {
    let p = header.iter().position(|h| h == "point")?;
    let r = header.iter().position(|h| h == "replicate")?;
    Some((row.get(p)?.parse().ok()?, row.get(r)?.parse().ok()?))
}

/// A CSV file's header and rows.
pub type Rows = (Vec<String>, Vec<Vec<String>>);

fn read_csv(path: &Path) -> Result<Option<Rows>> {
    if !path.exists() {
        return Ok(None);
    }
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let header: Vec<String> = reader.headers()?.iter().map(String::from).collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        // A run killed mid-write, or two writers at once, can leave torn lines: they
        // are not finished rows, and the rows after them still are.
        let Ok(record) = record else { continue };
        if record.len() == header.len() {
            rows.push(record.iter().map(String::from).collect());
        }
    }
    Ok(Some((header, rows)))
}

impl Collected {
    /// Reads the finished runs of each folder; a run present in several folders
    /// must have identical runs.csv rows, and is taken from the first. A folder
    /// damaged by a crash or by two writers at once is read as far as it is
    /// intact: torn lines are skipped, rows written twice are read once, and a run
    /// with two different runs.csv rows in one folder counts as unfinished.
    pub fn read(dirs: &[PathBuf]) -> Result<Collected> {
        let mut out = Collected::default();
        let mut runs_rows: BTreeMap<(usize, u32), Vec<String>> = BTreeMap::new();
        for dir in dirs {
            let Some((header, rows)) = read_csv(&dir.join("runs.csv"))? else { continue };
            let mut here: BTreeMap<(usize, u32), Vec<String>> = BTreeMap::new();
            let mut conflicting = BTreeSet::new();
            for row in rows {
                let Some(key) = key_of(&header, &row) else { continue };
                match here.get(&key) {
                    Some(prev) if *prev != row => {
                        conflicting.insert(key);
                    }
                    Some(_) => {}
                    None => {
                        here.insert(key, row);
                    }
                }
            }
            here.retain(|k, _| !conflicting.contains(k));
            let mut mine = BTreeSet::new();
            for (key, row) in here {
                if let Some(prev) = runs_rows.get(&key) {
                    if *prev != row {
                        bail!(
                            "run {key:?} appears in two folders with different results; were they made from the same scenario and seed?"
                        );
                    }
                    continue;
                }
                runs_rows.insert(key, row);
                mine.insert(key);
            }
            out.check_header(Table::Runs, &header, dir)?;
            for table in Table::ALL.into_iter().filter(|t| *t != Table::Runs) {
                let Some((h, rows)) = read_csv(&dir.join(table.file()))? else { continue };
                out.check_header(table, &h, dir)?;
                let rows: Vec<Vec<String>> =
                    rows.into_iter().filter(|row| key_of(&h, row).is_some_and(|k| mine.contains(&k))).collect();
                // Rows written twice are read once; perf.csv has one row a run (the
                // first: a second writer's wall time differs).
                let keep: Vec<bool> = if table == Table::Perf {
                    let mut timed = BTreeSet::new();
                    rows.iter().map(|row| key_of(&h, row).is_some_and(|k| timed.insert(k))).collect()
                } else {
                    let mut seen = rustc_hash::FxHashSet::default();
                    rows.iter().map(|row| seen.insert(row.as_slice())).collect()
                };
                let entry = out.tables.entry(table).or_insert_with(|| (h.clone(), Vec::new()));
                entry.1.extend(rows.into_iter().zip(keep).filter_map(|(row, keep)| keep.then_some(row)));
            }
            out.finished.extend(mine);
        }
        if let Some((header, _)) = out.tables.get(&Table::Runs).cloned() {
            out.tables.insert(Table::Runs, (header, runs_rows.into_values().collect()));
        }
        for (header, rows) in out.tables.values_mut() {
            // Stable: rows of one run keep their order.
            rows.sort_by_key(|row| key_of(header, row).unwrap_or((usize::MAX, u32::MAX)));
        }
        Ok(out)
    }

    fn check_header(&mut self, table: Table, header: &[String], dir: &Path) -> Result<()> {
        match self.tables.get(&table) {
            Some((h, _)) if h != header => Err(anyhow!(
                "{} in {} has other columns than in the first folder; were they made from the same scenario?",
                table.file(),
                dir.display()
            )),
            Some(_) => Ok(()),
            None => {
                self.tables.insert(table, (header.to_vec(), Vec::new()));
                Ok(())
            }
        }
    }

    /// Keeps only the finished runs whose rows are all there: one perf.csv row, one
    /// timeseries.csv row per sample, whole distributions in distributions.csv (a
    /// multiple of the quantiles recorded), and with `[output] nodes` one nodes.csv row
    /// per node. (queries.csv is not checked: its row count is not recorded.) Rows lost from a file's tail (a power cut) make a run unfinished again,
    /// so that `--resume` runs it anew. Returns how many runs were dropped.
    pub fn keep_complete(&mut self, plan: &Plan) -> usize {
        let count = |table: Table| {
            let mut n: BTreeMap<(usize, u32), usize> = BTreeMap::new();
            if let Some((h, rows)) = self.tables.get(&table) {
                for k in rows.iter().filter_map(|r| key_of(h, r)) {
                    *n.entry(k).or_default() += 1;
                }
            }
            n
        };
        let (perf, series, nodes) = (count(Table::Perf), count(Table::Timeseries), count(Table::Nodes));
        let dist = count(Table::Distributions);
        let incomplete: BTreeSet<(usize, u32)> = self
            .finished
            .iter()
            .copied()
            .filter(|&(p, r)| {
                let Some(point) = plan.points.get(p) else { return true };
                let s = &point.scenario;
                let samples = s.window().samples();
                let has = |n: &BTreeMap<(usize, u32), usize>| n.get(&(p, r)).copied().unwrap_or(0);
                has(&perf) != 1
                    || has(&series) != samples
                    || !has(&dist).is_multiple_of(QUANTILES)
                    || (plan.output.nodes && has(&nodes) != s.nodes)
            })
            .collect();
        for (header, rows) in self.tables.values_mut() {
            rows.retain(|row| key_of(header, row).is_none_or(|k| !incomplete.contains(&k)));
        }
        self.finished.retain(|k| !incomplete.contains(k));
        incomplete.len()
    }

    /// The metric values of each finished run, by metric name order of runs.csv.
    pub fn metrics(&self, plan: &Plan) -> BTreeMap<(usize, u32), Vec<Option<f64>>> {
        let Some((header, rows)) = self.tables.get(&Table::Runs) else { return BTreeMap::new() };
        let cols: Vec<Option<usize>> = plan.metrics.iter().map(|m| header.iter().position(|h| h == m)).collect();
        rows.iter()
            .filter_map(|row| {
                let key = key_of(header, row)?;
                Some((key, cols.iter().map(|c| c.and_then(|c| row[c].parse::<f64>().ok())).collect()))
            })
            .collect()
    }
}

/// Appends each finished run's rows to the files, flushing at once.
pub struct Journal {
    writers: Mutex<Vec<(Table, csv::Writer<File>)>>,
}

impl Journal {
    /// Starts every file with its header and the rows already `collected` (on
    /// resume), then stands ready to append.
    pub fn open(dir: &Path, plan: &Plan, collected: &Collected) -> Result<Journal> {
        let mut writers = Vec::new();
        for (table, header) in headers(plan) {
            let path = dir.join(table.file());
            if let Some((h, _)) = collected.tables.get(&table)
                && *h != header
            {
                bail!("{} has other columns than this scenario writes; use --force to start over", path.display());
            }
            let file = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut w = csv::Writer::from_writer(file);
            w.write_record(&header)?;
            if let Some((_, rows)) = collected.tables.get(&table) {
                for row in rows {
                    w.write_record(row)?;
                }
            }
            w.flush()?;
            writers.push((table, w));
        }
        Ok(Journal { writers: Mutex::new(writers) })
    }

    /// Appends the rows of the finished run `r` to each file and flushes them.
    pub fn append(&self, plan: &Plan, r: &RunResult) -> Result<()> {
        let mut writers = self.writers.lock().map_err(|_| anyhow!("journal lock poisoned"))?;
        // runs.csv comes last, and each file is on disk before it: a run is
        // finished exactly when its runs.csv row exists, even after a power cut.
        for (table, rows) in rows(plan, r) {
            let Some((_, w)) = writers.iter_mut().find(|(t, _)| *t == table) else { continue };
            for row in rows {
                w.write_record(row)?;
            }
            w.flush()?;
            w.get_ref().sync_data()?;
        }
        Ok(())
    }
}

/// Writes `path` through a temporary file and a rename, so a reader never sees half a file.
pub fn write_atomic(path: &Path, fill: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut w = BufWriter::new(File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?);
        fill(&mut w)?;
        w.flush()?;
    }
    fs::rename(&tmp, path).with_context(|| format!("renaming {}", tmp.display()))?;
    Ok(())
}

fn csv_file(path: &Path, header: &[String], rows: &[Vec<String>]) -> Result<()> {
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

/// One finished run's event-trace fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunFingerprint {
    /// The sweep point.
    pub point: usize,
    /// The replicate.
    pub replicate: u32,
    /// The fingerprint in hexadecimal, as perf.csv has it.
    pub fingerprint: String,
}

/// What run.json records of the finished runs.
#[derive(Clone, Debug, Default)]
pub struct Finalized {
    /// Every finished run's fingerprint, in run order.
    pub fingerprints: Vec<RunFingerprint>,
    /// Events processed by all the finished runs together, from perf.csv.
    pub events: u64,
}

impl Finalized {
    /// The fingerprint of the whole plan: every run's, folded in run order, so that
    /// one number pins every event of every run.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprints
            .iter()
            .filter_map(|f| u64::from_str_radix(&f.fingerprint, 16).ok())
            .fold(0u64, |h, f| crate::base::rng::mix64(h ^ f))
    }
}

/// run.json as a run starts: version, commit, scenario and its hash, overrides,
/// the plan's identity, seed, size, parameter columns and plots.
pub fn provenance(plan: &Plan, sets: &[String], plots: &[PlotSpec]) -> serde_json::Value {
    json!({
        "peergrid_version": env!("CARGO_PKG_VERSION"),
        "git_commit": option_env!("PEERGRID_GIT_COMMIT").unwrap_or("unknown"),
        "scenario": plan.name,
        "scenario_file": plan.file,
        "scenario_fnv1a64": format!("{:016x}", fnv1a64(plan.text.as_bytes())),
        "sets": sets,
        "plan_identity": plan_identity(plan),
        "master_seed": plan.seed,
        "points": plan.points.len(),
        "replicates": plan.replicates,
        "target_ci": plan.target_ci,
        "columns": plan.columns,
        "plots": plots,
    })
}

/// Completes run.json from the finished files: status, runs, events, host, the
/// plan's fingerprint and every run's, and the fields of `extra`.
pub fn complete_run_json(
    mut json: serde_json::Value,
    dir: &Path,
    done: &Finalized,
    extra: serde_json::Value,
) -> anyhow::Result<()> {
    let fingerprints = &done.fingerprints;
    json["status"] = json!("complete");
    json["runs"] = json!(fingerprints.len());
    json["events"] = json!(done.events);
    json["host"] = json!(host());
    json["event_trace_fingerprint"] = json!(format!("{:016x}", done.fingerprint()));
    json["run_fingerprints"] = fingerprints
        .iter()
        .map(|f| json!({"point": f.point, "replicate": f.replicate, "fingerprint": f.fingerprint}))
        .collect();
    if let (Some(obj), Some(extra)) = (json.as_object_mut(), extra.as_object()) {
        obj.extend(extra.clone());
    }
    write_run_json(dir, &json)
}

/// Rewrites every per-run file sorted and writes summary.csv.
pub fn finalize(dir: &Path, collected: &Collected) -> Result<Finalized> {
    for (table, (header, rows)) in &collected.tables {
        csv_file(&dir.join(table.file()), header, rows)?;
    }
    if let Some((header, rows)) = collected.tables.get(&Table::Runs) {
        write_summary(dir, header, rows)?;
    }
    let mut done = Finalized::default();
    if let Some((h, rows)) = collected.tables.get(&Table::Perf) {
        let (f, e) = (h.iter().position(|c| c == "event_trace_fingerprint"), h.iter().position(|c| c == "events"));
        for row in rows {
            if let (Some((p, r)), Some(print)) = (key_of(h, row), f.and_then(|f| row.get(f))) {
                done.fingerprints.push(RunFingerprint { point: p, replicate: r, fingerprint: print.clone() });
            }
            done.events += e.and_then(|e| row.get(e)?.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    Ok(done)
}

/// summary.csv: per point and metric, mean, std, 95% CI and n over replicates.
fn write_summary(dir: &Path, header: &[String], rows: &[Vec<String>]) -> Result<()> {
    let point = header.iter().position(|h| h == "point").ok_or_else(|| anyhow!("runs.csv has no point column"))?;
    let rep =
        header.iter().position(|h| h == "replicate").ok_or_else(|| anyhow!("runs.csv has no replicate column"))?;
    let seed = header.iter().position(|h| h == "seed").ok_or_else(|| anyhow!("runs.csv has no seed column"))?;
    let mut out_header: Vec<String> = header[..rep].to_vec();
    out_header.extend(strings(&["metric", "mean", "std", "ci95_low", "ci95_high", "n"]));
    let mut points: BTreeMap<usize, Vec<&Vec<String>>> = BTreeMap::new();
    for row in rows {
        if let Ok(p) = row[point].parse::<usize>() {
            points.entry(p).or_default().push(row);
        }
    }
    let mut out = Vec::new();
    for runs in points.values() {
        for (m, metric) in header.iter().enumerate().skip(seed + 1) {
            let values: Vec<f64> = runs.iter().filter_map(|r| r[m].parse::<f64>().ok()).collect();
            let Some(s) = summarize(&values) else { continue };
            let mut row: Vec<String> = runs[0][..rep].to_vec();
            row.extend([
                metric.clone(),
                number(Some(s.mean)),
                number(s.std),
                number(s.ci95.map(|c| c.0)),
                number(s.ci95.map(|c| c.1)),
                s.n.to_string(),
            ]);
            out.push(row);
        }
    }
    csv_file(&dir.join("summary.csv"), &out_header, &out)
}

/// FNV-1a, 64 bit: a stable, documented hash of text.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// A hash of everything that determines a plan's results: two folders with the
/// same identity can be resumed into or merged.
pub fn plan_identity(plan: &Plan) -> String {
    let key = format!(
        "{:?}",
        (
            &plan.name,
            plan.seed,
            plan.replicates,
            &plan.columns,
            &plan.metrics,
            &plan.target_ci,
            &plan.output,
            plan.points.iter().map(|p| (&p.params, &p.scenario)).collect::<Vec<_>>(),
        )
    );
    format!("{:016x}", fnv1a64(key.as_bytes()))
}

/// The host, for provenance.
pub fn host() -> String {
    let name = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{name} ({} {}, {cpus} cpus)", std::env::consts::OS, std::env::consts::ARCH)
}

/// Reads a results folder's run.json.
pub fn read_run_json(dir: &Path) -> Result<serde_json::Value, InputError> {
    let path = dir.join("run.json");
    let text = fs::read_to_string(&path).map_err(|e| {
        InputError::new(format!(
            "cannot read {}: {e}; expected a results folder written by `peergrid run`",
            path.display()
        ))
    })?;
    serde_json::from_str(&text).map_err(|e| InputError::new(format!("{} is not valid JSON: {e}", path.display())))
}

/// Writes run.json.
pub fn write_run_json(dir: &Path, json: &serde_json::Value) -> Result<()> {
    write_atomic(&dir.join("run.json"), |w| {
        serde_json::to_writer_pretty(&mut *w, json)?;
        writeln!(w)?;
        Ok(())
    })
}
