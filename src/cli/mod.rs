//! The command line: `run`, `check`, `list`, `plot`, `bench`. Bad input exits 2
//! with a message naming file, key path and line; a failed run exits 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};

use crate::experiment::{self, peak_rss_mb};
use crate::output;
use crate::protocols::PROTOCOLS;
use crate::report;
use crate::scenario::{self, InputError, Plan, PlotSpec};
use crate::world::{topology::TOPOLOGY_KINDS, underlay::LATENCY_MODELS};

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
    },
}

enum Failure {
    Input(InputError),
    Run(anyhow::Error),
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
        Command::Run { file, out, set, threads, seed, force } => run(&file, out, &set, threads, seed, force),
        Command::Check { file, set, seed } => check(&file, &set, seed),
        Command::List => {
            list();
            Ok(())
        }
        Command::Plot { dir } => plot(&dir),
        Command::Bench { pending, holds } => bench(pending, holds),
        Command::Validate => validate(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
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

fn run(
    file: &Path,
    out: Option<PathBuf>,
    set: &[String],
    threads: Option<usize>,
    seed: Option<u64>,
    force: bool,
) -> Result<(), Failure> {
    let plan = scenario::load(file, set, seed)?;
    let threads = match threads {
        Some(0) => return Err(InputError::new("--threads 0: expected at least 1").into()),
        Some(t) => t,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let dir = out.unwrap_or_else(|| Path::new("results").join(&plan.name));
    output::prepare(&dir, force)?;
    let started = Instant::now();
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let journal = output::Journal::create(&dir, &plan)?;
    let total = plan.runs();
    let done = std::sync::atomic::AtomicUsize::new(0);
    eprintln!(
        "{}: {} × {} = {total} runs on {threads} threads",
        plan.name,
        count(plan.points.len(), "point"),
        count(plan.replicates as usize, "replicate")
    );
    let results = experiment::run_all(&plan, threads, &|r| {
        if let Err(e) = journal.append(&plan, r) {
            eprintln!("warning: could not record run {}/{}: {e:#}", r.point, r.replicate);
        }
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        eprintln!(
            "[{n}/{total}] point {} replicate {} done: {} events in {:.2}s",
            r.point, r.replicate, r.events, r.wall_seconds
        );
    })?;
    let info = output::RunInfo {
        threads,
        wall_seconds: started.elapsed().as_secs_f64(),
        peak_rss_mb: peak_rss_mb(),
        started_unix,
    };
    output::write_all(&dir, &plan, &results, &info)?;
    let plots = plots_of(&plan);
    let drawn = report::draw_all(&dir, &plots)?;
    println!(
        "wrote {} ({total} runs, {} plot files, {:.1}s wall, {:.0} MiB peak)",
        dir.display(),
        drawn.len(),
        info.wall_seconds,
        info.peak_rss_mb
    );
    Ok(())
}

/// The scenario's `[[plot]]` entries, or, if it has none, the four headline metrics
/// against the first numeric sweep key, one line per value of the next key.
fn plots_of(plan: &Plan) -> Vec<PlotSpec> {
    if !plan.plots.is_empty() {
        return plan.plots.clone();
    }
    let numeric = |c: usize| plan.points.iter().all(|p| report::numeric(&p.params[c].1).is_some());
    let Some(x) = (0..plan.columns.len()).find(|&c| numeric(c)) else {
        return Vec::new();
    };
    let series = (0..plan.columns.len()).find(|&c| c != x).map(|c| plan.columns[c].clone());
    ["success_rate", "first_hit_latency_p95_ms", "messages_per_query", "max_node_load"]
        .iter()
        .map(|y| PlotSpec {
            x: plan.columns[x].clone(),
            y: y.to_string(),
            series: series.clone(),
            logx: false,
            logy: false,
            title: None,
        })
        .collect()
}

/// "1 point", "3 points".
fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

fn check(file: &Path, set: &[String], seed: Option<u64>) -> Result<(), Failure> {
    let plan = scenario::load(file, set, seed)?;
    println!("{}: {} — valid", plan.name, plan.file);
    println!(
        "master seed {}, {} × {} = {} runs",
        plan.seed,
        count(plan.points.len(), "point"),
        count(plan.replicates as usize, "replicate"),
        plan.runs()
    );
    let mut header = vec!["point".to_string()];
    header.extend(plan.columns.iter().cloned());
    header.extend(["protocol".to_string(), "nodes".to_string(), "duration".to_string()]);
    println!("{}", header.join("\t"));
    for p in &plan.points {
        let s = &p.scenario;
        let nodes = s.network.nodes.map_or_else(|| "from file".to_string(), |n| n.to_string());
        let mut row = vec![p.index.to_string()];
        row.extend(p.params.iter().map(|(_, v)| v.clone()));
        row.extend([s.protocol.name().to_string(), nodes, s.duration.to_string()]);
        println!("{}", row.join("\t"));
    }
    Ok(())
}

fn list() {
    println!("PROTOCOLS (protocol.name)");
    for p in &PROTOCOLS {
        println!("  {:<12} {} [{}]", p.name, p.summary, p.source);
        for (k, d, m) in p.params {
            println!("      {k:<20} default {d:<12} {m}");
        }
    }
    println!("\nTOPOLOGIES (network.topology.kind)");
    for (k, m) in TOPOLOGY_KINDS {
        println!("  {k:<16} {m}");
    }
    println!("\nLATENCY MODELS (network.latency.model)");
    for (k, m) in LATENCY_MODELS {
        println!("  {k:<16} {m}");
    }
    println!("\nSERVICE TIME (network.service_time, default \"0s\")");
    println!("  \"1ms\"                                   constant");
    println!("  {{ dist = \"exponential\", mean = \"1ms\" }}  exponential");
    println!("\nPLACEMENT / POPULARITY (resources.placement, workload.popularity)");
    println!("  \"uniform\"        every node / type equally likely (default)");
    println!("  {{ zipf = 1.0 }}   rank r chosen with probability ∝ r^-s");
}

fn plot(dir: &Path) -> Result<(), Failure> {
    let path = dir.join("run.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        InputError::new(format!(
            "cannot read {}: {e}; expected a results folder written by `peergrid run`",
            path.display()
        ))
    })?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| InputError::new(format!("{} is not valid JSON: {e}", path.display())))?;
    let plots: Vec<PlotSpec> = json["plots"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    Some(PlotSpec {
                        x: p["x"].as_str()?.to_string(),
                        y: p["y"].as_str()?.to_string(),
                        series: p["series"].as_str().map(String::from),
                        logx: p["logx"].as_bool().unwrap_or(false),
                        logy: p["logy"].as_bool().unwrap_or(false),
                        title: p["title"].as_str().map(String::from),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let drawn = report::draw_all(dir, &plots)?;
    println!("drew {} plot files in {}", drawn.len(), dir.join("plots").display());
    Ok(())
}

fn validate() -> Result<(), Failure> {
    let checks = crate::validate::suite();
    let failed = checks.iter().filter(|c| !c.pass).count();
    for c in &checks {
        let verdict = if c.pass { "ok  " } else { "FAIL" };
        println!("{verdict} {:<58} expected {:<28} got {}", c.name, c.expected, c.got);
    }
    println!("{} checks, {failed} failed", checks.len());
    if failed > 0 {
        return Err(Failure::Run(anyhow::anyhow!("{failed} validation checks failed")));
    }
    Ok(())
}

fn bench(pending: usize, holds: u64) -> Result<(), Failure> {
    if pending == 0 || holds == 0 {
        return Err(InputError::new("--pending and --holds must be at least 1").into());
    }
    println!("hold model: {pending} pending events, {holds} holds, exponential delays (one process, interleaved)");
    let mut heap = Vec::new();
    let mut engine = Vec::new();
    for round in 0..3 {
        heap.push(crate::bench::hold_binary_heap(pending, holds, round).per_second());
        engine.push(crate::bench::hold_engine(pending, holds, round).per_second());
    }
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let (h, e) = (best(&heap), best(&engine));
    println!("  std BinaryHeap loop  {:>8.2} M events/s", h / 1e6);
    println!("  peergrid engine      {:>8.2} M events/s", e / 1e6);
    println!("  ratio engine/heap    {:>8.2}", e / h);
    println!("  peak RSS             {:>8.0} MiB", peak_rss_mb());
    Ok(())
}
