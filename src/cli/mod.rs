//! The command line: `run`, `check`, `list`, `plot`, `merge`, `slurm`, `validate`,
//! `bench`. Bad input exits 2 with a message naming file, key path and line; a
//! failed run exits 1.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::dynamics::CHURN_MODELS;
use crate::experiment::memory::{self, human};
use crate::experiment::slurm::{SlurmJob, shell_quote};
use crate::experiment::{self, Shard, peak_rss_mb};
use crate::output::{self, Collected};
use crate::protocols::PROTOCOLS;
use crate::report;
use crate::scenario::{self, InputError, Plan, PlotSpec};
use crate::world::{topology::TOPOLOGY_KINDS, underlay::LATENCY_MODELS};

/// The command line as parsed: one subcommand and its arguments.
#[derive(Parser, Debug)]
#[command(
    name = "peergrid",
    version,
    about = "Deterministic discrete-event simulator for P2P and grid resource discovery"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a scenario: every sweep point × replicate, results in a folder.
    Run {
        /// The scenario file (TOML).
        file: PathBuf,
        /// Results folder [default: results/<scenario name>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override a scenario key, e.g. --set network.nodes=5000 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Runs in parallel [default: all cores]; results do not depend on it.
        #[arg(long)]
        threads: Option<usize>,
        /// Master seed, overriding the scenario's `seed`.
        #[arg(long)]
        seed: Option<u64>,
        /// Overwrite an existing results folder.
        #[arg(long)]
        force: bool,
        /// Complete an interrupted run: keep its finished runs, run the rest.
        #[arg(long, conflicts_with = "force")]
        resume: bool,
        /// Run only the I-th of N disjoint slices of the runs (0-based), e.g. 0/4.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
    },
    /// Parse and validate a scenario and print its expanded runs; runs nothing.
    Check {
        file: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Protocols, topologies and models with their parameters and defaults.
    List,
    /// Redraw the plots of a results folder.
    Plot { dir: PathBuf },
    /// Join shard folders (from `run --shard`) into one results folder.
    Merge {
        /// The shard folders.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The merged results folder.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite an existing results folder.
        #[arg(long)]
        force: bool,
    },
    /// Write a Slurm job-array script that runs a scenario's shards and a dependent merge job.
    Slurm {
        file: PathBuf,
        /// Array tasks (shards).
        #[arg(long)]
        tasks: usize,
        /// Results folder [default: results/<scenario name>]; scripts go to its slurm/.
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(long)]
        seed: Option<u64>,
        /// CPUs (and peergrid threads) per task.
        #[arg(long, default_value_t = 1)]
        cpus_per_task: usize,
        /// Slurm partition.
        #[arg(long)]
        partition: Option<String>,
        /// Slurm time limit per task, e.g. 02:00:00.
        #[arg(long)]
        time: Option<String>,
    },
    /// Compare results folder B with baseline A, point by point and metric by metric.
    Diff {
        /// The baseline results folder.
        a: PathBuf,
        /// The results folder compared with it.
        b: PathBuf,
        /// Where diff.csv and the side-by-side plots go [default: B/diff].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Family-wise significance level, over all comparisons (Holm's correction).
        #[arg(long, default_value_t = 0.05)]
        alpha: f64,
        /// Exit 1 if any of these metrics changed significantly (for CI).
        #[arg(long = "fail-on", value_name = "METRIC", num_args = 1..)]
        fail_on: Vec<String>,
    },
    /// Run the built-in validation suite against closed-form results.
    Validate,
    /// Engine throughput: the hold model through the engine and on a plain BinaryHeap.
    Bench {
        /// Events pending in the queue.
        #[arg(long, default_value_t = 1_000_000)]
        pending: usize,
        /// Events processed per measurement.
        #[arg(long, default_value_t = 10_000_000)]
        holds: u64,
        /// Nodes of the protocol runs measured for throughput and bytes per node.
        #[arg(long, default_value_t = 1_000_000)]
        nodes: u32,
        /// Measure only what this names: "queues", or the protocol runs whose
        /// label contains it (e.g. "aggregation", "peersim", "chord").
        #[arg(long)]
        only: Option<String>,
    },
}

enum Failure {
    Input(InputError),
    Run(anyhow::Error),
    /// Standard output was closed by its reader (`peergrid list | head -1`).
    Closed,
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe { Failure::Closed } else { Failure::Run(e.into()) }
    }
}

/// `println!` that hands a write error back instead of panicking, so a reader that
/// stops early (`peergrid list | head -1`) ends the command quietly.
macro_rules! say {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*).map_err(Failure::from)?
    };
}

impl From<InputError> for Failure {
    fn from(e: InputError) -> Self {
        Failure::Input(e)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Run(e)
    }
}

/// Parses the arguments, runs the command and returns the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { file, out, set, threads, seed, force, resume, shard } => {
            run(&file, out, &set, threads, seed, force, resume, shard.as_deref())
        }
        Command::Check { file, set, seed } => check(&file, &set, seed),
        Command::List => list(),
        Command::Plot { dir } => plot(&dir),
        Command::Merge { dirs, out, force } => merge(&dirs, &out, force),
        Command::Slurm { file, tasks, out, set, seed, cpus_per_task, partition, time } => {
            slurm(&file, tasks, out, &set, seed, cpus_per_task, partition, time)
        }
        Command::Bench { pending, holds, nodes, only } => bench(pending, holds, nodes, only.as_deref()),
        Command::Validate => validate(),
        Command::Diff { a, b, out, alpha, fail_on } => diff(&a, &b, out, alpha, &fail_on),
    };
    match result {
        Ok(()) | Err(Failure::Closed) => ExitCode::SUCCESS,
        Err(Failure::Input(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Run(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Loads a scenario and tells the user, on stderr, what of it will not happen.
fn load(file: &Path, sets: &[String], seed: Option<u64>) -> Result<Plan, InputError> {
    let plan = scenario::load(file, sets, seed)?;
    for note in &plan.notes {
        eprintln!("note: {note}");
    }
    Ok(plan)
}

/// "1 point", "3 points".
fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

fn default_dir(plan: &Plan, shard: Option<Shard>) -> PathBuf {
    match shard {
        Some(s) => Path::new("results").join(format!("{}-shard-{}-of-{}", plan.name, s.index, s.count)),
        None => Path::new("results").join(&plan.name),
    }
}

#[allow(clippy::too_many_arguments)]
fn run(
    file: &Path,
    out: Option<PathBuf>,
    sets: &[String],
    threads: Option<usize>,
    seed: Option<u64>,
    force: bool,
    resume: bool,
    shard: Option<&str>,
) -> Result<(), Failure> {
    let plan = load(file, sets, seed)?;
    let shard = shard.map(Shard::parse).transpose()?;
    let threads = match threads {
        Some(0) => return Err(InputError::new("--threads 0: expected at least 1").into()),
        Some(t) => t,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let total: usize = (0..plan.points.len())
        .flat_map(|p| (0..plan.replicates).map(move |r| (p, r)))
        .filter(|&(p, r)| shard.is_none_or(|s| s.owns(&plan, p, r)))
        .count();
    // More threads than runs would only start idle threads; target_ci may add runs.
    let most = plan.target_ci.as_ref().map_or(total, |t| plan.points.len() * t.max_replicates as usize);
    let fit = memory::fit_threads(&plan, threads.min(most.max(1)))?;
    if let Some(note) = &fit.note {
        eprintln!("note: {note}");
    }
    let threads = fit.threads;
    let dir = out.unwrap_or_else(|| default_dir(&plan, shard));
    let _lock = output::WriterLock::take(&dir)?;
    let mut meta = output::provenance(&plan, sets, &report::plots_of(&plan));
    meta["shard"] = json!(shard.map(|s| format!("{}/{}", s.index, s.count)));
    let collected = if resume && dir.join("run.json").exists() {
        let old = output::read_run_json(&dir)?;
        if old["plan_identity"] != meta["plan_identity"] || old["shard"] != meta["shard"] {
            return Err(InputError::new(format!(
                "{} holds results of a different scenario, seed, override or shard; --resume needs the same ones (or use --force to start over)",
                dir.display()
            ))
            .into());
        }
        let mut collected = Collected::read(std::slice::from_ref(&dir))?;
        let lost = collected.keep_complete(&plan);
        if lost > 0 {
            eprintln!("note: {} had rows missing from its files and will run again", count(lost, "finished run"));
        }
        collected
    } else {
        output::prepare(&dir, force, true)?;
        Collected::default()
    };
    let started = Instant::now();
    meta["status"] = json!("running");
    meta["started_unix"] = json!(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()));
    std::fs::write(dir.join("scenario.toml"), &plan.text).map_err(anyhow::Error::from)?;
    output::write_run_json(&dir, &meta)?;
    let journal = output::Journal::open(&dir, &plan, &collected)?;
    let have = collected.finished.len();
    eprintln!(
        "{}: {} × {} = {} runs{} on {threads} threads{}",
        plan.name,
        count(plan.points.len(), "point"),
        count(plan.replicates as usize, "replicate"),
        plan.runs(),
        shard.map_or(String::new(), |s| format!(", shard {}/{} has {total}", s.index, s.count)),
        if have > 0 { format!(", {have} already done") } else { String::new() },
    );
    let progress = Progress::new(total.saturating_sub(have.min(total)) as u64);
    let failed_journal = AtomicUsize::new(0);
    let outcome = experiment::run_plan(&plan, threads, shard, collected.metrics(&plan), &|r| {
        if let Err(e) = journal.append(&plan, r) {
            failed_journal.fetch_add(1, Ordering::Relaxed);
            eprintln!("warning: could not record run {}/{}: {e:#}", r.point, r.replicate);
        }
        progress.done(r);
    });
    progress.finish();
    drop(journal);
    if failed_journal.load(Ordering::Relaxed) > 0 {
        return Err(anyhow::anyhow!("some runs could not be written to {}", dir.display()).into());
    }
    let collected = Collected::read(std::slice::from_ref(&dir))?;
    let done = output::finalize(&dir, &collected)?;
    let extra = json!({
        "threads": threads,
        "wall_seconds": started.elapsed().as_secs_f64(),
        "peak_rss_mb": peak_rss_mb(),
        "status": if outcome.is_ok() { "complete" } else { "incomplete" },
    });
    output::complete_run_json(meta, &dir, &done, extra)?;
    let drawn = report::draw_all(&dir, &report::plots_of(&plan))?;
    // The runs that could be built are written and summarised; then the error.
    outcome?;
    say!(
        "wrote {} ({} runs, {} plot files, {:.1}s wall, {:.0} MiB peak)",
        dir.display(),
        done.fingerprints.len(),
        drawn.len(),
        started.elapsed().as_secs_f64(),
        peak_rss_mb()
    );
    Ok(())
}

/// Progress: a bar on a terminal, a line per run otherwise (logs, CI, Slurm).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    done: AtomicUsize,
}

impl Progress {
    fn new(total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} runs  {elapsed_precise} elapsed, ETA {eta}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Progress { bar, total, done: AtomicUsize::new(0) }
    }

    fn done(&self, r: &experiment::RunResult) {
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        match &self.bar {
            Some(bar) => bar.inc(1),
            None => eprintln!(
                "[{n}/{}] point {} replicate {} done: {} events in {:.2}s",
                self.total.max(n as u64),
                r.point,
                r.replicate,
                r.events,
                r.wall_seconds
            ),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Points `check` lists one by one; a longer plan is summarised.
const CHECK_ROWS: usize = 50;

fn check(file: &Path, set: &[String], seed: Option<u64>) -> Result<(), Failure> {
    let plan = load(file, set, seed)?;
    // A run that cannot fit is refused here as `run` would refuse it.
    memory::fit_threads(&plan, 1)?;
    say!("{}: {} — valid", plan.name, plan.file);
    say!(
        "master seed {}, {} × {} = {} runs{}",
        plan.seed,
        count(plan.points.len(), "point"),
        count(plan.replicates as usize, "replicate"),
        plan.runs(),
        plan.target_ci
            .as_ref()
            .map_or(String::new(), |t| format!(" (target_ci may add replicates up to {} per point)", t.max_replicates))
    );
    let mut header = vec!["point".to_string()];
    header.extend(plan.columns.iter().cloned());
    header.extend(["protocol", "nodes", "duration", "memory/run"].map(String::from));
    say!("{}", header.join("\t"));
    let mut largest = 0;
    for p in &plan.points {
        let s = &p.scenario;
        let est = memory::estimate(s).total();
        largest = largest.max(est);
        // A long plan is summarised: its first points, then how many more.
        if p.index < CHECK_ROWS {
            let mut row = vec![p.index.to_string()];
            row.extend(p.params.iter().map(|(_, v)| v.clone()));
            row.extend([s.protocol.name().to_string(), s.nodes.to_string(), s.duration.to_string(), human(est)]);
            say!("{}", row.join("\t"));
        }
    }
    if plan.points.len() > CHECK_ROWS {
        say!("... and {} more points", plan.points.len() - CHECK_ROWS);
    }
    let avail =
        memory::available().map_or_else(|| "unknown".to_string(), |a| format!("{}, {}", human(a.bytes), a.limit));
    say!("largest memory estimate per run: {} (available now: {avail})", human(largest));
    Ok(())
}

fn list() -> Result<(), Failure> {
    say!("PROTOCOLS (protocol.name)");
    for p in PROTOCOLS {
        say!("  {:<12} {} [{}]", p.name, p.summary, p.source);
        for d in p.params {
            say!("      {:<20} default {:<12} {}", d.key, d.default, d.meaning);
        }
        for (role, meaning) in p.roles {
            say!("      role {:<15} {meaning}", format!("\"{role}\""));
        }
    }
    say!("\nTOPOLOGIES (network.topology.kind)");
    for (k, m) in TOPOLOGY_KINDS {
        say!("  {k:<16} {m}");
    }
    say!("\nLATENCY MODELS (network.latency.model)");
    for (k, m) in LATENCY_MODELS {
        say!("  {k:<16} {m}");
    }
    say!("\nCHURN ([churn] session and downtime: {{ dist = ..., mean = ... or scale = ..., shape = ... }})");
    for (k, m) in CHURN_MODELS {
        say!("  {k:<16} {m}");
    }
    say!("  mean = \"never\"  a period that never ends (a rate of zero)");
    say!("\nFAULTS ([[fault]] at = ..., then one of)");
    say!(
        "  crash = {{ fraction = 0.1, choose = \"random\" | \"degree\" }}, {{ nodes = [...] }} or {{ role = \"...\" }}; recover = \"...\""
    );
    say!("  partition = {{ groups = 2, until = \"...\" }}   messages across groups are lost");
    say!("  loss = {{ value = 0.2, until = \"...\" }}       replaces network.loss while it lasts");
    say!("\nSERVICE TIME (network.service_time, default \"0s\"; also protocol.index_service_time of central)");
    say!("  \"1ms\"                                   constant");
    say!("  {{ dist = \"constant\", value = \"1ms\" }}    constant, the same as \"1ms\"");
    say!("  {{ dist = \"exponential\", mean = \"1ms\" }}  exponential with this mean");
    say!("\nPLACEMENT / POPULARITY (resources.placement, workload.popularity)");
    say!("  \"uniform\"        every node / type equally likely (default)");
    say!("  {{ zipf = 1.0 }}   rank r chosen with probability ∝ r^-s");
    say!("  {{ geometric = 0.1 }}  rank r chosen with probability ∝ (1-p)^r (a few nodes or types dominate)");
    say!("  \"balanced\"       placement only: every node holds the same number of copies, ±1");
    say!("\nDURATIONS AND RATES");
    say!(
        "  durations        a string with a unit: \"250ms\", \"10s\", \"1.5min\" (ns, us, ms, s, min, h, d); a bare number is refused, except 0"
    );
    say!(
        "  rates            \"20/s\", \"0.5/ms\", \"300/min\" (per any duration unit), or a bare number (50 or \"0.01\"), taken per second"
    );
    Ok(())
}

fn plots_in(json: &serde_json::Value) -> Vec<PlotSpec> {
    serde_json::from_value(json["plots"].clone()).unwrap_or_default()
}

fn plot(dir: &Path) -> Result<(), Failure> {
    let json = output::read_run_json(dir)?;
    if json["status"] == "running" || !dir.join("summary.csv").exists() {
        return Err(InputError::new(format!(
            "{} holds a run that is not finished (it was interrupted, or is still running), so it has no summary.csv to plot; finish it with `{}`, which draws the plots",
            dir.display(),
            resume_command(&json, dir)
        ))
        .into());
    }
    let drawn = report::draw_all(dir, &plots_in(&json))?;
    say!("drew {} plot files in {}", drawn.len(), dir.join("plots").display());
    Ok(())
}

fn merge(dirs: &[PathBuf], out: &Path, force: bool) -> Result<(), Failure> {
    if let Ok(target) = std::fs::canonicalize(out)
        && let Some(d) = dirs.iter().find(|d| std::fs::canonicalize(d).is_ok_and(|d| d == target))
    {
        return Err(InputError::new(format!(
            "--out {} is one of the folders to merge ({}); merging into it would overwrite what it reads — give a new folder",
            out.display(),
            d.display()
        ))
        .into());
    }
    let mut metas = Vec::new();
    for d in dirs {
        metas.push(output::read_run_json(d)?);
    }
    let first = metas[0].clone();
    for (d, m) in dirs.iter().zip(&metas).skip(1) {
        if m["plan_identity"] != first["plan_identity"] {
            return Err(InputError::new(format!(
                "{} was made from a different scenario, seed or override than {}; only shards of one run can be merged",
                d.display(),
                dirs[0].display()
            ))
            .into());
        }
    }
    let collected = Collected::read(dirs)?;
    let points = first["points"].as_u64().unwrap_or(0) as usize;
    let replicates = first["replicates"].as_u64().unwrap_or(0) as u32;
    let missing: Vec<String> = (0..points)
        .flat_map(|p| (0..replicates).map(move |r| (p, r)))
        .filter(|k| !collected.finished.contains(k))
        .map(|(p, r)| format!("point {p} replicate {r}"))
        .collect();
    if !missing.is_empty() {
        return Err(InputError::new(format!(
            "{} missing from the folders given ({}{}); {}",
            count(missing.len(), "run"),
            missing.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
            if missing.len() > 5 { ", ..." } else { "" },
            missing_shards_advice(dirs, &metas)
        ))
        .into());
    }
    let _lock = output::WriterLock::take(out)?;
    output::prepare(out, force, false)?;
    if let Ok(text) = std::fs::read_to_string(dirs[0].join("scenario.toml")) {
        std::fs::write(out.join("scenario.toml"), text).map_err(anyhow::Error::from)?;
    }
    let done = output::finalize(out, &collected)?;
    let wall: f64 = metas.iter().filter_map(|m| m["wall_seconds"].as_f64()).sum();
    let mut meta = first.clone();
    meta["shard"] = json!(null);
    let extra = json!({
        "merged_from": dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>(),
        "wall_seconds": wall,
        "threads": null,
        "peak_rss_mb": metas.iter().filter_map(|m| m["peak_rss_mb"].as_f64()).fold(0.0, f64::max),
    });
    output::complete_run_json(meta, out, &done, extra)?;
    let drawn = report::draw_all(out, &plots_in(&first))?;
    say!(
        "merged {} folders into {} ({} runs, {} plot files)",
        dirs.len(),
        out.display(),
        done.fingerprints.len(),
        drawn.len()
    );
    Ok(())
}

/// What to do about runs missing from shard folders: make the shards not given,
/// finish the ones that were interrupted, then merge again.
fn missing_shards_advice(dirs: &[PathBuf], metas: &[serde_json::Value]) -> String {
    let shard_of = |m: &serde_json::Value| m["shard"].as_str().and_then(|s| Shard::parse(s).ok());
    let mut advice = Vec::new();
    for (d, m) in dirs.iter().zip(metas) {
        if m["status"] != "complete" {
            advice.push(format!("{} is not finished: complete it with `{}`", d.display(), resume_command(m, d)));
        }
    }
    if let Some(count) = metas.iter().find_map(shard_of).map(|s| s.count) {
        let given: Vec<usize> = metas.iter().filter_map(shard_of).map(|s| s.index).collect();
        let absent: Vec<String> = (0..count).filter(|i| !given.contains(i)).map(|i| format!("{i}/{count}")).collect();
        if let Some(first) = absent.first() {
            advice.push(format!(
                "shard{} {} {} not among the folders given: run {} with `{}` and pass all {count} shard folders to merge",
                if absent.len() == 1 { "" } else { "s" },
                absent.join(", "),
                if absent.len() == 1 { "is" } else { "are" },
                if absent.len() == 1 { "it" } else { "each" },
                run_command(&metas[0], None, Some(first.as_str()), false)
            ));
        }
    }
    if advice.is_empty() {
        advice.push("pass the folders of every shard of the run".into());
    }
    advice.join("; ")
}

/// `peergrid run` with the scenario file, overrides and seed recorded in a run.json.
fn run_command(meta: &serde_json::Value, out: Option<&Path>, shard: Option<&str>, resume: bool) -> String {
    let word = |s: &str| {
        if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+".contains(c)) {
            s.to_string()
        } else {
            shell_quote(s)
        }
    };
    let mut cmd = format!("peergrid run {}", word(meta["scenario_file"].as_str().unwrap_or("SCENARIO")));
    if let Some(dir) = out {
        cmd.push_str(&format!(" --out {}", word(&dir.display().to_string())));
    }
    if let Some(s) = shard {
        cmd.push_str(&format!(" --shard {s}"));
    }
    for set in meta["sets"].as_array().into_iter().flatten().filter_map(|s| s.as_str()) {
        cmd.push_str(&format!(" --set {}", word(set)));
    }
    if let Some(seed) = meta["master_seed"].as_u64() {
        cmd.push_str(&format!(" --seed {seed}"));
    }
    if resume {
        cmd.push_str(" --resume");
    }
    cmd
}

/// The command that completes the interrupted run recorded in `dir`.
fn resume_command(meta: &serde_json::Value, dir: &Path) -> String {
    run_command(meta, Some(dir), meta["shard"].as_str(), true)
}

#[allow(clippy::too_many_arguments)]
fn slurm(
    file: &Path,
    tasks: usize,
    out: Option<PathBuf>,
    sets: &[String],
    seed: Option<u64>,
    cpus: usize,
    partition: Option<String>,
    time: Option<String>,
) -> Result<(), Failure> {
    if tasks == 0 || tasks > 100_000 {
        return Err(InputError::new(format!("--tasks {tasks}: expected 1 to 100000")).into());
    }
    if cpus == 0 {
        return Err(InputError::new("--cpus-per-task 0: expected at least 1").into());
    }
    let plan = load(file, sets, seed)?;
    let dir = out.unwrap_or_else(|| default_dir(&plan, None));
    let abs = |p: &Path| std::path::absolute(p).map_err(|e| InputError::new(format!("{}: {e}", p.display())));
    let dir = abs(&dir)?;
    let file = abs(file)?;
    // Shards or a merged result of another plan (or of another task count) would make
    // the queued jobs fail, or their merge overwrite those results: refuse now.
    let identity = output::plan_identity(&plan);
    let mut folders = vec![(dir.clone(), None)];
    folders.extend((0..tasks).map(|i| (dir.join("shards").join(i.to_string()), Some(format!("{i}/{tasks}")))));
    for (folder, shard) in folders {
        let Ok(old) = output::read_run_json(&folder) else { continue };
        let other_plan = old["plan_identity"].as_str() != Some(identity.as_str());
        let other_shard = shard.as_deref().is_some_and(|s| old["shard"].as_str() != Some(s));
        if other_plan || other_shard {
            return Err(InputError::new(format!(
                "{} holds results of {}; the jobs would fail or overwrite them — give another --out, or remove it first",
                folder.display(),
                if other_plan { "a different scenario, seed or override" } else { "another --tasks count" }
            ))
            .into());
        }
    }
    let exe = std::env::current_exe().map_err(anyhow::Error::from)?;
    let job = SlurmJob { tasks, cpus, partition, time, sets, seed };
    let slurm_dir = job.write(&plan, &file, &dir, &exe)?;
    say!(
        "wrote {0}/array.sbatch ({tasks} tasks, {1} runs), {0}/merge.sbatch and {0}/submit.sh\nsubmit with: {0}/submit.sh",
        slurm_dir.display(),
        plan.runs()
    );
    Ok(())
}

fn diff(a: &Path, b: &Path, out: Option<PathBuf>, alpha: f64, fail_on: &[String]) -> Result<(), Failure> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(InputError::new(format!("--alpha {alpha}: expected a level between 0 and 1, such as 0.05")).into());
    }
    let d = output::diff::compare(a, b).map_err(|e| InputError::new(format!("{e:#}")))?;
    let metrics: std::collections::BTreeSet<&str> = d.comparisons.iter().map(|c| c.metric.as_str()).collect();
    if let Some(bad) = fail_on.iter().find(|m| !metrics.contains(m.as_str())) {
        return Err(InputError::new(format!(
            "--fail-on {bad}: not a metric both folders measure; expected one of {}",
            metrics.into_iter().collect::<Vec<_>>().join(", ")
        ))
        .into());
    }
    let out = out.unwrap_or_else(|| b.join("diff"));
    std::fs::create_dir_all(&out).map_err(|e| InputError::new(format!("cannot create {}: {e}", out.display())))?;
    std::fs::write(out.join("diff.csv"), d.csv(alpha)).map_err(anyhow::Error::from)?;
    // Side by side: both summaries in one, told apart by a `results` column.
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let (la, lb) =
        if name(a) != name(b) && !name(a).is_empty() { (name(a), name(b)) } else { ("A".into(), "B".into()) };
    let drawn = match output::diff::side_by_side(&[(a, la.as_str()), (b, lb.as_str())], &out) {
        Ok(()) => {
            let plots = output::read_run_json(b).map(|json| plots_in(&json)).unwrap_or_default();
            report::draw_all(&out, &plots)?.len()
        }
        Err(e) => {
            eprintln!("note: no side-by-side plots: {e:#}");
            0
        }
    };
    for line in &d.unmatched {
        eprintln!("note: {line}");
    }
    let changed: Vec<&output::diff::Comparison> = d.comparisons.iter().filter(|c| c.significant(alpha)).collect();
    let untested = d.comparisons.iter().filter(|c| c.p.is_none()).count();
    say!("{}", d.table(alpha, 40).trim_end());
    say!(
        "{} of {} comparisons changed significantly (Welch's t-test, Holm-corrected, family-wise α = {alpha}){}; wrote {} and {drawn} plot files",
        changed.len(),
        d.comparisons.len(),
        if untested > 0 { format!("; {untested} with a single replicate could not be tested") } else { String::new() },
        out.join("diff.csv").display()
    );
    let failed: Vec<&str> =
        fail_on.iter().map(String::as_str).filter(|m| changed.iter().any(|c| c.metric == *m)).collect();
    if !failed.is_empty() {
        return Err(Failure::Run(anyhow::anyhow!(
            "{} changed significantly against {}",
            failed.join(", "),
            a.display()
        )));
    }
    Ok(())
}

fn validate() -> Result<(), Failure> {
    let checks = crate::validate::suite();
    let failed = checks.iter().filter(|c| !c.pass).count();
    for c in &checks {
        let verdict = if c.pass { "ok  " } else { "FAIL" };
        say!("{verdict} {:<58} expected {:<28} got {}", c.name, c.expected, c.got);
    }
    say!("{} checks, {failed} failed", checks.len());
    if failed > 0 {
        return Err(Failure::Run(anyhow::anyhow!("{failed} validation checks failed")));
    }
    Ok(())
}

fn bench(pending: usize, holds: u64, nodes: u32, only: Option<&str>) -> Result<(), Failure> {
    if pending == 0 || holds == 0 {
        return Err(InputError::new("--pending and --holds must be at least 1").into());
    }
    if !(1_000..=100_000_000).contains(&nodes) {
        return Err(InputError::new("--nodes: expected 1000 to 100000000").into());
    }
    use crate::bench::{QUEUES, hold_engine};
    if only.is_none_or(|o| o == "queues") {
        let best = |f: &dyn Fn(u64) -> f64| (0..3).map(f).fold(0.0, f64::max);
        say!("event lists, hold model (pop the earliest, push it again at now + Exp(1 ms)), best of 3:");
        let mut sizes: Vec<usize> = [1_000usize, 100_000, pending].into_iter().filter(|&s| s <= pending).collect();
        sizes.dedup();
        let mut heap_at_pending = 0.0;
        for size in sizes {
            let rates: Vec<f64> = QUEUES.iter().map(|(_, f)| best(&|r| f(size, holds, r).per_second())).collect();
            heap_at_pending = rates[0];
            say!("  {size:>9} pending");
            for ((name, _), rate) in QUEUES.iter().zip(&rates) {
                say!("    {name:<42} {:>8.2} M holds/s   {:>6.2}x BinaryHeap", rate / 1e6, rate / rates[0]);
            }
        }
        say!("the whole engine (timers through Simulation), {pending} pending, {holds} holds:");
        let (h, e) = (heap_at_pending, best(&|r| hold_engine(pending, holds, r).per_second()));
        say!("  std BinaryHeap       {:>8.2} M events/s (from above)", h / 1e6);
        say!("  peergrid engine      {:>8.2} M events/s", e / 1e6);
        say!("  ratio engine/heap    {:>8.2}", e / h);
    }
    let runs = crate::bench::scale_runs(nodes, only);
    for r in &runs {
        say!(
            "{} on {} nodes: {} events in {:.2} s = {:.2} M events/s",
            r.label,
            r.nodes,
            r.events,
            r.seconds,
            r.events as f64 / r.seconds / 1e6
        );
        for p in &r.per_node {
            say!("    {:<38} {:>8.1} bytes/node", p.part, p.bytes);
        }
        say!("    {:<38} {:>8.1} bytes/node", "total", r.per_node.iter().map(|p| p.bytes).sum::<f64>());
        if let Some(b) = r.upkeep.filter(|&b| b > 0.0) {
            say!("    {:<38} {:>8.1} bytes/node/s", "maintenance traffic", b);
        }
    }
    say!("peak RSS of this process: {:.0} MiB", peak_rss_mb());
    Ok(())
}
