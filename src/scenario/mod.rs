//! Scenario files: TOML with unknown keys rejected, `--set` overrides, the `[sweep]`
//! expansion into points, and validation that names file, key path and line.

pub mod error;
pub mod sweep;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::base::locate::{self, Seg, locate, split_path};
pub use error::InputError;
pub use sweep::Axis;

use crate::base::{ServiceTime, SimTime, parse_duration, parse_rate};
use crate::compute::JobsSpec;
use crate::dynamics::classes::parse_bandwidth;
use crate::dynamics::{ChurnSpec, ClassSpec, Classes, Dynamics, FaultSpec, Uplink};
use crate::engine::{Repair, SimConfig};
use crate::metrics::{CORE_METRICS, Column, Window};
use crate::protocols::{PROTOCOLS, ProtocolSpec, RunFigures};
use crate::workload::WorkloadSpec;
use crate::world::underlay::MatrixCache;
use crate::world::{LatencySpec, ResourcesSpec, TopologySpec, topology};

/// Plot titles of the scenario keys a sweep most often varies.
pub const KEY_LABELS: [Column; 21] = [
    Column::new("workload.rate", "query rate (queries/s)"),
    Column::new("network.nodes", "nodes"),
    Column::new("network.loss", "message loss probability"),
    Column::new("resources.replicas", "replicas per resource type"),
    Column::new("resources.types", "resource types"),
    Column::new("resources.selectivity", "range selectivity (share of each attribute's range)"),
    Column::new("resources.query_attributes", "attributes per range query"),
    Column::new("jobs.best_of", "nodes a job chooses among"),
    Column::new("jobs.scale", "trace speed-up"),
    Column::new("jobs.rate", "job arrival rate (jobs/s)"),
    Column::new("resources.changes", "resource changes per node (1/s)"),
    Column::new("resources.changes.swap", "type swaps per node (1/s)"),
    Column::new("resources.changes.move", "copy moves per node (1/s)"),
    Column::new("resources.changes.appear", "copies appearing per node (1/s)"),
    Column::new("resources.changes.vanish", "copies vanishing per node (1/s)"),
    Column::new("churn.session.mean", "mean session (s)"),
    Column::new("churn.session.scale", "session scale (s)"),
    Column::new("fault[0].crash.fraction", "fraction of nodes crashed"),
    Column::new("network.uplink", "uplink (bit/s)"),
    Column::new("network.classes[0].share", "share of the first node class"),
    Column::new("network.classes[0].uplink", "first node class's uplink (bit/s)"),
];

/// `[network]`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Required for generated topologies; taken from the file for `edges`.
    #[serde(default)]
    pub nodes: Option<u32>,
    /// Time a node takes to serve one incoming message; messages wait in a FIFO queue per node.
    #[serde(default)]
    pub service_time: ServiceTime,
    /// Probability that a message is lost, 0 ≤ loss < 1.
    #[serde(default)]
    pub loss: f64,
    /// Run on a generated overlay even if it is not connected.
    #[serde(default)]
    pub allow_disconnected: bool,
    /// How the overlay is built: a generator and its parameters, or an edge-list file.
    pub topology: TopologySpec,
    /// The model that gives each message its one-way latency.
    #[serde(default)]
    pub latency: LatencySpec,
    /// Under churn or faults, nodes replace lost overlay links from a host cache;
    /// `false` keeps the overlay as built.
    #[serde(default = "yes")]
    pub repair: bool,
    /// The fewest links a node keeps before it opens new ones; unset: half those it
    /// starts with, rounded up.
    #[serde(default)]
    pub min_degree: Option<u32>,
    /// The most links a node accepts under repair; unset: twice those it starts with.
    #[serde(default)]
    pub max_degree: Option<u32>,
    /// How long a crashed neighbour goes unnoticed.
    #[serde(default = "thirty_seconds")]
    pub detect: SimTime,
    /// Each node's upstream bandwidth: a sized message waits its serialisation
    /// time at the sender; unlimited by default.
    #[serde(default)]
    pub uplink: Uplink,
    /// Classes of nodes with their own service time, uplink and churn.
    #[serde(default)]
    pub classes: Vec<ClassSpec>,
}

fn yes() -> bool {
    true
}
fn thirty_seconds() -> SimTime {
    SimTime::from_secs(30)
}

/// One `[[plot]]` entry: `y` against `x`, one line per value of `series`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlotSpec {
    /// The swept numeric parameter column along the horizontal axis.
    pub x: String,
    /// The metric column on the vertical axis.
    pub y: String,
    /// A parameter column whose every value gets a line of its own.
    #[serde(default)]
    pub series: Option<String>,
    /// Draw the horizontal axis on a logarithmic scale.
    #[serde(default)]
    pub logx: bool,
    /// Draw the vertical axis on a logarithmic scale.
    #[serde(default)]
    pub logy: bool,
    /// The plot's title; `"<y> vs <x>"` when unset.
    #[serde(default)]
    pub title: Option<String>,
}

/// `[output]`: optional extra files.
#[derive(Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Write queries.csv, one row per query.
    #[serde(default)]
    pub queries: bool,
    /// Write nodes.csv, messages served per node.
    #[serde(default)]
    pub nodes: bool,
    /// Write jobs.csv, one row per job (with `[jobs]`).
    #[serde(default)]
    pub jobs: bool,
}

/// The file as written, before the protocol table is interpreted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    seed: u64,
    duration: SimTime,
    #[serde(default)]
    warmup: SimTime,
    #[serde(default = "one")]
    replicates: u32,
    #[serde(default = "ten_seconds")]
    sample_every: SimTime,
    network: NetworkSpec,
    #[serde(default)]
    resources: ResourcesSpec,
    #[serde(default)]
    workload: WorkloadSpec,
    protocol: toml::Table,
    #[serde(default)]
    plot: Vec<PlotSpec>,
    #[serde(default)]
    output: OutputSpec,
    #[serde(default)]
    target_ci: Option<TargetCi>,
    #[serde(default)]
    common_random_numbers: bool,
    #[serde(default)]
    churn: Option<ChurnSpec>,
    #[serde(default)]
    fault: Vec<FaultSpec>,
    #[serde(default)]
    jobs: Option<JobsSpec>,
}

fn one() -> u32 {
    1
}
fn ten_seconds() -> SimTime {
    SimTime::from_secs(10)
}

/// One fully specified, validated configuration (a sweep point).
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Names the results folder (`results/<name>/`).
    pub name: String,
    /// Free text for the reader of the file; it does not affect the runs.
    pub description: String,
    /// The master seed that every run's seed is derived from.
    pub seed: u64,
    /// Queries are issued in [0, duration); the run then lasts one more `workload.timeout`.
    pub duration: SimTime,
    /// Queries issued and messages served before this are left out of the per-query metrics and the loads.
    pub warmup: SimTime,
    /// Runs of this point, each with its own seed; with `target_ci`, the runs it starts with.
    pub replicates: u32,
    /// The interval between the samples of timeseries.csv.
    pub sample_every: SimTime,
    /// `[network]`: the nodes, the overlay, latency, service time and loss.
    pub network: NetworkSpec,
    /// `[resources]`: how many resource types there are and where their copies sit.
    pub resources: ResourcesSpec,
    /// `[workload]`: the query rate, which types queries ask for, and their timeout.
    pub workload: WorkloadSpec,
    /// `[protocol]`: the discovery protocol under test, with its parameters.
    pub protocol: ProtocolSpec,
    /// The `[[plot]]` entries, in file order.
    pub plots: Vec<PlotSpec>,
    /// `[output]`: which optional per-query and per-node files to write.
    pub output: OutputSpec,
    /// `[target_ci]`, if given: add replicates until the listed metrics' intervals are narrow.
    pub target_ci: Option<TargetCi>,
    /// Derive run seeds from (seed, replicate) only, so every point sees the same random streams.
    pub common_random_numbers: bool,
    /// The node count after reading any edge file.
    pub nodes: usize,
    /// The overlay's mean degree (exact for edge files, nominal for generators).
    pub mean_degree: f64,
    /// `[churn]` and the `[[fault]]` entries, checked; static without them.
    pub dynamics: Dynamics,
    /// `network.uplink` and `[[network.classes]]`, checked.
    pub classes: Classes,
    /// `[jobs]`, if given: jobs placed through discovery in place of the
    /// workload's queries.
    pub jobs: Option<JobsSpec>,
}

/// `[target_ci]`: add replicates to a point until the 95% confidence interval of
/// every listed metric is narrower than `fraction` of its mean (half-width /
/// |mean|), up to `max_replicates`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetCi {
    /// Metric columns whose 95% confidence interval must become narrow.
    pub metrics: Vec<String>,
    /// The widest half-width allowed, as a fraction of the metric's |mean|.
    pub fraction: f64,
    /// The cap on replicates per point, at least `replicates` and at most 100,000.
    #[serde(default = "default_max_replicates")]
    pub max_replicates: u32,
}

fn default_max_replicates() -> u32 {
    100
}

impl Scenario {
    /// The figures of a run that a protocol's validation and memory estimate use.
    pub fn figures(&self) -> RunFigures {
        RunFigures {
            nodes: self.nodes,
            mean_degree: self.mean_degree,
            query_rate: self.workload.rate.per_second(),
            duration: self.duration,
            timeout: self.workload.timeout,
            mean_latency_s: self.network.latency.mean_s(),
            mean_service_s: self.network.service_time.mean().as_secs_f64(),
            resource_types: self.resources.types,
            range_queries: self.resources.uses_attributes(),
            replicas: self.resources.replicas,
        }
    }

    /// The times a run of this scenario is measured by.
    pub fn window(&self) -> Window {
        Window {
            duration: self.duration,
            warmup: self.warmup,
            timeout: self.workload.timeout,
            sample_every: self.sample_every,
        }
    }

    /// Engine settings for one run with the given seed.
    pub fn sim_config(&self, seed: u64) -> SimConfig {
        SimConfig {
            seed,
            duration: self.duration,
            warmup: self.warmup,
            timeout: self.workload.timeout,
            sample_every: self.sample_every,
            service: self.network.service_time,
            loss: self.network.loss,
            max_pending: usize::MAX,
            dynamics: self.dynamics.clone(),
            repair: self.network.repair.then_some(Repair {
                min_degree: self.network.min_degree,
                max_degree: self.network.max_degree,
                detect: self.network.detect,
            }),
            classes: self.classes.clone(),
            jobs: None,
        }
    }
}

/// One point of the sweep: the values it assigns and the scenario they give.
#[derive(Clone, Debug)]
pub struct Point {
    /// Position in the sweep's expansion order (the last axis varies fastest); seeds and result rows use it.
    pub index: usize,
    /// (column, value as text), one per parameter column of the plan.
    pub params: Vec<(String, String)>,
    /// The scenario with this point's sweep values applied, validated.
    pub scenario: Scenario,
}

/// A parsed scenario file: its sweep expanded into points.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The scenario file the plan was read from, as the user named it.
    pub file: String,
    /// The folder relative paths in the scenario resolve against.
    pub base_dir: PathBuf,
    /// The scenario file's text as read, before any `--set`; copied into the results folder.
    pub text: String,
    /// The scenario's name, which names the results folder.
    pub name: String,
    /// The master seed, after any `--seed`.
    pub seed: u64,
    /// Runs per point (with `target_ci`, the count each point starts with).
    pub replicates: u32,
    /// Parameter columns of runs.csv and summary.csv.
    pub columns: Vec<String>,
    /// The sweep's points, in expansion order, so `points[i].index == i`.
    pub points: Vec<Point>,
    /// The `[[plot]]`s to draw: those of the file, less any whose parameter `--set` pins.
    pub plots: Vec<PlotSpec>,
    /// `[output]`: the optional files every run writes.
    pub output: OutputSpec,
    /// Result columns: the core metrics, then every protocol's own, in point order.
    pub metrics: Vec<String>,
    /// `[target_ci]`, if given: when each point gets more replicates.
    pub target_ci: Option<TargetCi>,
    /// Every point's replicate r uses the same seed, so points that differ only in
    /// the protocol see the same overlay, resources and queries.
    pub common_random_numbers: bool,
    /// Things the user asked for that will not happen, one line each (plots
    /// dropped because `--set` pins what they vary).
    pub notes: Vec<String>,
}

impl Plan {
    /// Runs in the plan before `target_ci` adds any: points × replicates.
    pub fn runs(&self) -> usize {
        self.points.len() * self.replicates as usize
    }
}

/// Above this many runs a plan gets a note saying how long it is.
const MANY_RUNS: usize = 10_000;

/// Reads, overrides, expands and validates a scenario file.
pub fn load(path: &Path, sets: &[String], seed: Option<u64>) -> Result<Plan, InputError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| InputError::new(format!("cannot read the scenario file: {e}")).file(&file))?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    plan_from_str(&text, &file, &base_dir, sets, seed)
}

/// Like [`load`], from text already in memory.
pub fn plan_from_str(
    text: &str,
    file: &str,
    base_dir: &Path,
    sets: &[String],
    seed: Option<u64>,
) -> Result<Plan, InputError> {
    let err = |e: InputError| e.file(file);
    let mut root: toml::Table = toml::from_str(text).map_err(|e: toml::de::Error| {
        let line = e.span().map(|s| locate::line_of(text, s.start));
        err(InputError::new(format!("not valid TOML: {}", toml_message(&e, text))).line(line))
    })?;
    // Each key written from the command line, with the argument that wrote it: errors
    // about that key name the argument, not a line of the file.
    let mut written: Vec<(Vec<Seg>, String)> = Vec::new();
    for set in sets {
        let arg = format!("--set {set}");
        let (key, value) = parse_set(set).map_err(|e| e.file(&arg))?;
        let path = split_path(&key);
        if let Some(e) = inside_swept_table(&root, &key, &path, &value) {
            return Err(e.file(&arg));
        }
        set_path(&mut root, &path, value).map_err(|m| InputError::new(m).key(&key).file(&arg))?;
        // A value set on the command line pins a swept key: it replaces the sweep's list.
        let covers = |k: &str| split_path(k).starts_with(&path);
        if let Some(toml::Value::Table(sweep)) = root.get_mut("sweep") {
            sweep.retain(|k, _| !covers(k));
            match sweep.get_mut("zip") {
                Some(toml::Value::Table(group)) => group.retain(|k, _| !covers(k)),
                Some(toml::Value::Array(groups)) => {
                    for g in groups.iter_mut().filter_map(|g| g.as_table_mut()) {
                        g.retain(|k, _| !covers(k));
                    }
                }
                _ => {}
            }
        }
        written.push((path, arg));
    }
    if let Some(s) = seed {
        let Ok(s) = i64::try_from(s) else {
            return Err(InputError::new("expected a seed below 2^63 = 9223372036854775808").file(format!("--seed {s}")));
        };
        root.insert("seed".into(), toml::Value::Integer(s));
        written.push((vec![Seg::Key("seed".into())], format!("--seed {s}")));
    }
    let blame = |e: InputError| blame_set(e, &written);
    let sweep = match root.remove("sweep") {
        None => toml::Table::new(),
        Some(toml::Value::Table(t)) => t,
        Some(_) => {
            return Err(err(InputError::new("expected a table of key path = [values]")
                .key("sweep")
                .line(locate(text, &split_path("sweep")))));
        }
    };
    let axes = sweep::parse(sweep, text, file)?;
    let base: Raw = deserialize(&root, text, file, None).map_err(blame)?;
    let columns = param_columns(&axes);
    let mut points = Vec::new();
    let mut notes = Vec::new();
    let mut matrices = MatrixCache::default();
    let mut traces: Traces = Vec::new();
    let count = axes.iter().try_fold(1usize, |acc, a| acc.checked_mul(a.len())).unwrap_or(usize::MAX);
    if count > 1_000_000 {
        return Err(err(
            InputError::new(format!("the sweep expands to {count} points; expected at most 1,000,000")).key("sweep")
        ));
    }
    for index in 0..count {
        let mut table = root.clone();
        let mut rest = index;
        let mut chosen: Vec<(String, toml::Value)> = Vec::new();
        for axis in axes.iter().rev() {
            let level = &axis.values[rest % axis.len()];
            rest /= axis.len();
            chosen.extend(axis.keys.iter().cloned().zip(level.iter().cloned()));
        }
        for (key, v) in &chosen {
            set_path(&mut table, &split_path(key), v.clone())
                .map_err(|m| err(InputError::new(m).key(format!("sweep.\"{key}\""))))?;
        }
        let sweep_note =
            |key: &str| chosen.iter().find(|(k, _)| key == k || key.starts_with(&format!("{k}."))).cloned();
        let raw: Raw = deserialize(&table, text, file, Some(&sweep_note)).map_err(blame)?;
        let scenario = validate(raw, base_dir, &mut notes, &mut matrices, &mut traces).map_err(|(key, e)| {
            let mut e = e.file(file).key(&key);
            if let Some((k, v)) = sweep_note(&key) {
                e.message = format!("{} (with sweep value {k} = {v})", e.message);
                e.line = sweep_line(text, &k);
            } else {
                e.line = locate(text, &split_path(&key));
            }
            blame(e)
        })?;
        let params = columns.iter().map(|c| (c.clone(), column_value(&table, c))).collect();
        points.push(Point { index, params, scenario });
    }
    let first = &points[0].scenario;
    let mut metrics: Vec<String> = CORE_METRICS.iter().map(|c| c.name.to_string()).collect();
    metrics.push("messages_lost".into());
    metrics.push("messages_lost_dead".into());
    metrics.push("messages_connect".into());
    for p in &points {
        for c in p.scenario.protocol.columns() {
            if !metrics.contains(&c) {
                metrics.push(c);
            }
        }
    }
    if points.iter().any(|p| p.scenario.jobs.is_some()) {
        metrics.extend(crate::compute::COLUMNS.iter().map(|c| c.name.to_string()));
    }
    let mut plan = Plan {
        file: file.to_string(),
        base_dir: base_dir.to_path_buf(),
        text: text.to_string(),
        name: base.name.clone(),
        seed: first.seed,
        replicates: first.replicates,
        columns,
        plots: first.plots.clone(),
        output: first.output.clone(),
        target_ci: first.target_ci.clone(),
        common_random_numbers: first.common_random_numbers,
        metrics,
        points,
        notes,
    };
    // Plots along a key pinned by --set have nothing left to draw: say which go.
    let pinner = |c: &str| {
        let c = split_path(c);
        written.iter().rev().find(|(k, _)| c.starts_with(k)).map(|(_, arg)| arg)
    };
    let mut kept: Vec<(usize, PlotSpec)> = Vec::new();
    let mut dropped: Vec<(&String, Vec<String>)> = Vec::new();
    for (i, p) in std::mem::take(&mut plan.plots).into_iter().enumerate() {
        match pinner(&p.x).or_else(|| p.series.as_deref().and_then(pinner)) {
            None => kept.push((i, p)),
            Some(arg) => match dropped.iter_mut().find(|(a, _)| *a == arg) {
                Some((_, plots)) => plots.push(format!("plot[{i}]")),
                None => dropped.push((arg, vec![format!("plot[{i}]")])),
            },
        }
    }
    for (arg, plots) in dropped {
        let (verb, pronoun) = if plots.len() == 1 { ("is", "it varies") } else { ("are", "they vary") };
        plan.notes.push(format!("{} {verb} not drawn: {arg} pins the parameter {pronoun}", plots.join(", ")));
    }
    if plan.runs() > MANY_RUNS {
        plan.notes.push(format!(
            "the plan has {} runs ({} points × {} replicates); at a second each that is {:.1} hours on one core — narrow the sweep, or spread it over a cluster with `peergrid slurm`",
            plan.runs(),
            plan.points.len(),
            plan.replicates,
            plan.runs() as f64 / 3600.0
        ));
    }
    check_plots(&plan, &kept, text).map_err(blame)?;
    plan.plots = kept.into_iter().map(|(_, p)| p).collect();
    Ok(plan)
}

/// The toml parser's message, naming the key when it says only "duplicate key".
fn toml_message(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim();
    let line_of = |at: usize| {
        let start = text[..at.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
        text[start..].lines().next().unwrap_or("").trim()
    };
    // `seed = ` with nothing after it: toml asks for quotes, but a value is missing.
    if let Some(span) = e.span() {
        let line = line_of(span.start);
        let bare = line.split('#').next().unwrap_or("").trim();
        if let Some(key) = bare.strip_suffix('=').map(str::trim).filter(|k| !k.is_empty() && !k.contains('=')) {
            return format!("`{key}` has no value after `=`; write one on the same line, e.g. {key} = 42");
        }
    }
    // An integer beyond TOML's 64 bits.
    if message.contains("as i128") {
        return "the integer is too large; TOML integers run from -2^63 to 2^63 - 1".to_string();
    }
    let Some(span) = e.span().filter(|_| message == "duplicate key") else {
        return message.to_string();
    };
    let key = text.get(span.clone()).map(str::trim).unwrap_or("");
    let line = line_of(span.start);
    if key.is_empty() {
        message.to_string()
    } else if line.starts_with('[') {
        let header = line.split('#').next().unwrap_or(line).trim();
        format!("duplicate key `{key}`: {header} names a table or key already defined above; define each once")
    } else {
        format!("duplicate key `{key}`: it is already defined above in the same table; define each key once")
    }
}

type SweepNote<'a> = &'a dyn Fn(&str) -> Option<(String, toml::Value)>;

/// Deserializes a table, turning serde's error into one with key path and line.
fn deserialize(table: &toml::Table, text: &str, file: &str, note: Option<SweepNote>) -> Result<Raw, InputError> {
    serde_path_to_error::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
        let crate::base::KeyError { key: path, message } =
            crate::base::from_serde(&e, &toml::Value::Table(table.clone()));
        let mut out = InputError::new(message).file(file).key(&path).line(locate(text, &split_path(&path)));
        if let Some((k, v)) = note.and_then(|n| n(&path)) {
            out.message = format!("{} (with sweep value {k} = {v})", out.message);
            out.line = sweep_line(text, &k);
        }
        out
    })
}

type Invalid = (String, InputError);

fn bad(key: &str, message: impl Into<String>) -> Invalid {
    (key.to_string(), InputError::new(message))
}

/// Semantic checks that the types alone cannot express, section by section.
fn validate(
    mut raw: Raw,
    base_dir: &Path,
    notes: &mut Vec<String>,
    matrices: &mut MatrixCache,
    traces: &mut Traces,
) -> Result<Scenario, Invalid> {
    raw.check_top()?;
    let (nodes, mean_degree) = raw.network.check(base_dir, notes)?;
    // A latency matrix is read and checked now, once per file, not in the middle of a run.
    raw.network.latency.load(base_dir, matrices).map_err(|e| bad(&format!("network.latency.{}", e.key), e.message))?;
    raw.resources.check(nodes, base_dir)?;
    if let Some(jobs) = &mut raw.jobs {
        check_jobs(jobs, &raw.resources, base_dir, notes, traces)?;
    }
    raw.workload.check(nodes, raw.resources.types, raw.duration)?;
    if let Some(t) = &raw.target_ci {
        t.check(raw.replicates)?;
    }
    let protocol = ProtocolSpec::from_table(&raw.protocol).map_err(|e| bad(&join("protocol", &e.key), e.message))?;
    let dynamics = check_dynamics(&raw, nodes, base_dir, &protocol)?;
    let roles: Vec<&str> = PROTOCOLS.iter().flat_map(|p| p.roles.iter().map(|(name, _)| *name)).collect();
    let classes = Classes::check(raw.network.service_time, raw.network.uplink, &raw.network.classes, nodes, &roles)
        .map_err(|(k, m)| bad(&format!("network.{k}"), m))?;
    let scenario = Scenario {
        name: raw.name,
        description: raw.description,
        seed: raw.seed,
        duration: raw.duration,
        warmup: raw.warmup,
        replicates: raw.replicates,
        sample_every: raw.sample_every,
        network: raw.network,
        resources: raw.resources,
        workload: raw.workload,
        protocol,
        plots: raw.plot,
        output: raw.output,
        target_ci: raw.target_ci,
        common_random_numbers: raw.common_random_numbers,
        nodes,
        mean_degree,
        dynamics,
        classes,
        jobs: raw.jobs,
    };
    scenario.protocol.validate(&scenario.figures()).map_err(|e| bad(&join("protocol", &e.key), e.message))?;
    // An edge file means nothing to a protocol that does not route over it: say so.
    if let TopologySpec::Edges { path, .. } = &scenario.network.topology
        && !scenario.protocol.info().uses_overlay
    {
        note_once(
            notes,
            format!(
                "{} does not route over network.topology: the edge file {path} sets only the node count",
                scenario.protocol.name()
            ),
        );
    }
    Ok(scenario)
}

/// Checks `[churn]` (reading any trace) and every `[[fault]]` against the protocol's roles.
fn check_dynamics(raw: &Raw, nodes: usize, base_dir: &Path, protocol: &ProtocolSpec) -> Result<Dynamics, Invalid> {
    let churn = match &raw.churn {
        None => None,
        Some(c) => Some(c.resolve(nodes, base_dir).map_err(|(k, m)| bad(&format!("churn.{k}"), m))?),
    };
    let info = protocol.info();
    let roles: Vec<&str> = info.roles.iter().map(|(name, _)| *name).collect();
    let mut faults = Vec::new();
    for (i, f) in raw.fault.iter().enumerate() {
        let fault = f.resolve(nodes, &roles, info.name).map_err(|(k, m)| bad(&format!("fault[{i}].{k}"), m))?;
        if f.at >= raw.duration.saturating_add(raw.workload.timeout) {
            return Err(bad(
                &format!("fault[{i}].at"),
                format!("{} is after the run ends; expected a time within it", f.at),
            ));
        }
        faults.push(fault);
    }
    Ok(Dynamics { churn, faults, changes: raw.resources.changes })
}

/// What a plan with `[jobs]` is told.
const JOBS_NOTE: &str = "[jobs]: the queries are the jobs' discovery queries; workload.rate and workload.script are not used (workload.timeout is each query's)";

/// The traces a plan has read, each once: its path and its log.
type Traces = Vec<(PathBuf, Arc<crate::workload::swf::SwfLog>)>;

/// Checks `[jobs]` against `[resources]`, whose types the jobs' needs replace,
/// and reads its trace (once per plan) into the spec, for every run to share.
fn check_jobs(
    jobs: &mut JobsSpec,
    resources: &ResourcesSpec,
    base_dir: &Path,
    notes: &mut Vec<String>,
    traces: &mut Traces,
) -> Result<(), Invalid> {
    let fail = |e: crate::compute::JobsError| bad(&format!("jobs.{}", e.key), e.message);
    jobs.check().map_err(fail)?;
    let key = if resources.uses_attributes() {
        Some("attributes")
    } else if resources.types != ResourcesSpec::default().types {
        Some("types")
    } else {
        resources.placement_key()
    };
    if let Some(key) = key {
        return Err(bad(
            &format!("resources.{key}"),
            "with [jobs] the resource types are the jobs' needs (the nodes with at least so many cores); expected no [resources] keys",
        ));
    }
    let Some(path) = jobs.trace.as_ref().map(|t| base_dir.join(t)) else {
        note_once(notes, JOBS_NOTE.into());
        return Ok(());
    };
    if let Some((_, log)) = traces.iter().find(|(p, _)| *p == path) {
        jobs.log = Some(log.clone());
    } else if let Some(log) = jobs.read_trace(base_dir).map_err(fail)? {
        let usable = log.jobs.iter().filter(|j| j.run > 0 && j.submit >= 0).count();
        if usable < log.jobs.len() {
            note_once(
                notes,
                format!(
                    "jobs.trace: {} of its {} records have no positive run time and are left out",
                    log.jobs.len() - usable,
                    log.jobs.len()
                ),
            );
        }
        let log = Arc::new(log);
        traces.push((path, log.clone()));
        jobs.log = Some(log);
    }
    note_once(notes, JOBS_NOTE.into());
    Ok(())
}

/// Adds `note` unless the plan already has it (every sweep point checks its own copy).
fn note_once(notes: &mut Vec<String>, note: String) {
    if !notes.contains(&note) {
        notes.push(note);
    }
}

impl Raw {
    /// The top-level keys: name, duration, warmup, replicates, sample_every.
    fn check_top(&self) -> Result<(), Invalid> {
        if self.name.is_empty()
            || self.name.len() > 100
            || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            || self.name.starts_with('.')
        {
            return Err(bad(
                "name",
                format!(
                    "\"{}\" cannot name a results folder; expected 1-100 letters, digits, '-', '_' or '.', not starting with '.'",
                    self.name
                ),
            ));
        }
        if self.duration == SimTime::ZERO {
            return Err(bad("duration", "expected a duration above zero"));
        }
        if self.warmup >= self.duration {
            return Err(bad(
                "warmup",
                format!(
                    "warmup {} is not shorter than duration {}; expected warmup < duration",
                    self.warmup, self.duration
                ),
            ));
        }
        if !(1..=100_000).contains(&self.replicates) {
            return Err(bad(
                "replicates",
                format!("{} is out of range; expected 1 ≤ replicates ≤ 100000", self.replicates),
            ));
        }
        let end = self.duration.saturating_add(self.workload.timeout);
        if self.sample_every == SimTime::ZERO {
            return Err(bad("sample_every", "expected an interval above zero, such as \"10s\""));
        }
        if end.0 / self.sample_every.0 > 1_000_000 {
            return Err(bad(
                "sample_every",
                format!(
                    "{} gives more than 1,000,000 samples over duration + timeout = {end}; expected a longer interval",
                    self.sample_every
                ),
            ));
        }
        Ok(())
    }
}

impl NetworkSpec {
    /// Checks `[network]` and gives the node count (read from an edge file if
    /// there is one) and the mean degree.
    fn check(&self, base_dir: &Path, notes: &mut Vec<String>) -> Result<(usize, f64), Invalid> {
        if !(0.0..1.0).contains(&self.loss) {
            return Err(bad(
                "network.loss",
                format!("{} is out of range; expected a probability 0 ≤ loss < 1", self.loss),
            ));
        }
        if let ServiceTime::Exponential { mean: SimTime(0) } = self.service_time {
            return Err(bad("network.service_time.mean", "expected a mean above zero"));
        }
        for (i, c) in self.classes.iter().enumerate() {
            if let Some(ServiceTime::Exponential { mean: SimTime(0) }) = c.service_time {
                return Err(bad(&format!("network.classes[{i}].service_time.mean"), "expected a mean above zero"));
            }
        }
        self.latency.check().map_err(|e| bad(&format!("network.latency.{}", e.key), e.message))?;
        Ok(match (&self.topology, self.nodes) {
            (TopologySpec::Edges { path, largest_component }, _) => {
                let (overlay, report) = topology::read_edges(&base_dir.join(path), *largest_component)
                    .map_err(|e| bad(&format!("network.topology.{}", e.key), e.message))?;
                if let Some(what) = report.describe() {
                    note_once(notes, format!("edge file {path}: {what}"));
                }
                if let Some(n) = self.nodes.filter(|&n| n as usize != overlay.nodes()) {
                    return Err(bad(
                        "network.nodes",
                        format!(
                            "the edge file has {} nodes, but nodes = {n}; remove network.nodes or set it to {}",
                            overlay.nodes(),
                            overlay.nodes()
                        ),
                    ));
                }
                (overlay.nodes(), overlay.mean_degree())
            }
            (_, None) => {
                return Err(bad(
                    "network.nodes",
                    "missing; expected the number of nodes (required for a generated topology)",
                ));
            }
            (_, Some(n)) if n > 100_000_000 => {
                return Err(bad("network.nodes", format!("{n} is out of range; expected at most 100,000,000")));
            }
            (spec, Some(n)) => {
                topology::check(spec, n as usize, self.allow_disconnected).map_err(|e| {
                    let key = if e.key == "nodes" {
                        "network.nodes".to_string()
                    } else {
                        format!("network.topology.{}", e.key)
                    };
                    bad(&key, e.message)
                })?;
                (n as usize, spec.nominal_degree().unwrap_or(2.0))
            }
        })
    }
}

impl TargetCi {
    /// Checks `[target_ci]` for a scenario of `replicates` replicates.
    fn check(&self, replicates: u32) -> Result<(), Invalid> {
        if !(self.fraction > 0.0 && self.fraction <= 1.0) {
            return Err(bad(
                "target_ci.fraction",
                format!("{} is out of range; expected 0 < fraction ≤ 1", self.fraction),
            ));
        }
        if replicates < 2 {
            return Err(bad("replicates", "target_ci needs at least 2 replicates to start from"));
        }
        if self.max_replicates < replicates || self.max_replicates > 100_000 {
            return Err(bad(
                "target_ci.max_replicates",
                format!("{} is out of range; expected replicates ≤ max_replicates ≤ 100000", self.max_replicates),
            ));
        }
        if self.metrics.is_empty() {
            return Err(bad("target_ci.metrics", "expected at least one metric name"));
        }
        Ok(())
    }
}

/// Checks `[resources]` on `nodes` nodes.
trait CheckResources {
    fn check(&self, nodes: usize, base_dir: &Path) -> Result<(), Invalid>;
}

impl CheckResources for ResourcesSpec {
    fn check(&self, nodes: usize, base_dir: &Path) -> Result<(), Invalid> {
        if self.uses_attributes() {
            return self.check_attributes(nodes, base_dir);
        }
        if self.query_attributes != ResourcesSpec::default().query_attributes
            || self.selectivity != ResourcesSpec::default().selectivity
        {
            let key = if self.selectivity != ResourcesSpec::default().selectivity {
                "selectivity"
            } else {
                "query_attributes"
            };
            return Err(bad(
                &format!("resources.{key}"),
                "range queries need attributes; expected resources.attributes or resources.attribute_file as well",
            ));
        }
        if self.types == 0 || self.types > 10_000_000 {
            return Err(bad(
                "resources.types",
                format!("{} is out of range; expected 1 ≤ types ≤ 10,000,000", self.types),
            ));
        }
        if self.replicas as usize > nodes {
            return Err(bad(
                "resources.replicas",
                format!("{} copies cannot sit on distinct nodes of {nodes}; expected replicas ≤ nodes", self.replicas),
            ));
        }
        if (self.types as u64) * (self.replicas as u64) > 1_000_000_000 {
            return Err(bad("resources.replicas", "types × replicas exceeds 10^9 resource copies; expected fewer"));
        }
        if let Some(c) = self.copies {
            if self.replication == crate::world::Replication::Fixed {
                return Err(bad(
                    "resources.copies",
                    "copies applies to a shared-out replication; expected replication = \"uniform\", \"proportional\" or \"square-root\", or no copies",
                ));
            }
            if c < self.types as u64 || c > 1_000_000_000 {
                return Err(bad(
                    "resources.copies",
                    format!(
                        "{c} is out of range; expected types = {} ≤ copies ≤ 10^9 (every type gets at least one)",
                        self.types
                    ),
                ));
            }
        }
        Ok(())
    }
}

trait CheckAttributes {
    fn check_attributes(&self, nodes: usize, base_dir: &Path) -> Result<(), Invalid>;
}

impl CheckAttributes for ResourcesSpec {
    /// With attributes the types are range queries: their count, shape, and
    /// the attributes themselves, from the entries or the file (read now).
    fn check_attributes(&self, nodes: usize, base_dir: &Path) -> Result<(), Invalid> {
        use crate::world::attributes;
        let fail = |e: crate::world::AttributeError| bad(&format!("resources.{}", e.key), e.message);
        if let Some(key) = self.placement_key() {
            return Err(bad(
                &format!("resources.{key}"),
                format!(
                    "{key} places copies of types, but with attributes every type is a range query matched by the nodes whose values fall in its ranges; expected no {key}"
                ),
            ));
        }
        let count = match &self.attribute_file {
            Some(path) => {
                if !self.attributes.is_empty() {
                    return Err(bad(
                        "resources.attribute_file",
                        "attributes come either from the file or from the attributes entries; expected one of them",
                    ));
                }
                attributes::read_table(&base_dir.join(path)).map_err(fail)?.names.len()
            }
            None => {
                attributes::check_specs(&self.attributes).map_err(fail)?;
                self.attributes.len()
            }
        };
        if self.types == 0 || self.types > 100_000 {
            return Err(bad(
                "resources.types",
                format!("{} range queries is out of range; expected 1 ≤ types ≤ 100,000", self.types),
            ));
        }
        if (self.types as u64) * (nodes as u64) > 20_000_000_000 {
            return Err(bad(
                "resources.types",
                "types × nodes exceeds 2·10^10 matches to check; expected fewer range queries",
            ));
        }
        if !(1..=count as u32).contains(&self.query_attributes) {
            return Err(bad(
                "resources.query_attributes",
                format!(
                    "{} is out of range; expected 1 ≤ query_attributes ≤ {count}, the attributes there are",
                    self.query_attributes
                ),
            ));
        }
        if !(self.selectivity > 0.0 && self.selectivity <= 1.0) {
            return Err(bad(
                "resources.selectivity",
                format!("{} is out of range; expected a share above 0 and at most 1", self.selectivity),
            ));
        }
        Ok(())
    }
}

/// Checks `[workload]` against the network, the resource types and the duration.
trait CheckWorkload {
    fn check(&self, nodes: usize, types: u32, duration: SimTime) -> Result<(), Invalid>;
}

impl CheckWorkload for WorkloadSpec {
    fn check(&self, nodes: usize, types: u32, duration: SimTime) -> Result<(), Invalid> {
        if self.timeout == SimTime::ZERO {
            return Err(bad("workload.timeout", "expected a timeout above zero"));
        }
        let expected_queries = self.rate.per_second() * duration.as_secs_f64();
        if expected_queries > 2e9 {
            return Err(bad(
                "workload.rate",
                format!("rate × duration ≈ {expected_queries:.3e} queries; expected at most 2·10^9 per run"),
            ));
        }
        if let Some(k) = self.requesters
            && !(1..=nodes).contains(&(k as usize))
        {
            return Err(bad(
                "workload.requesters",
                format!("{k} is out of range; expected 1 ≤ requesters ≤ network.nodes = {nodes}"),
            ));
        }
        for (i, q) in self.script.iter().enumerate() {
            if q.origin as usize >= nodes {
                return Err(bad(
                    &format!("workload.script[{i}].origin"),
                    format!("node {} does not exist; expected 0 ≤ origin < {nodes}", q.origin),
                ));
            }
            if q.rtype >= types {
                return Err(bad(
                    &format!("workload.script[{i}].type"),
                    format!("type {} does not exist; expected 0 ≤ type < resources.types = {}", q.rtype, types),
                ));
            }
            if q.at >= duration {
                return Err(bad(
                    &format!("workload.script[{i}].at"),
                    format!("{} is not before duration {}; expected at < duration", q.at, duration),
                ));
            }
        }
        Ok(())
    }
}

/// The line of a sweep key, directly under `[sweep]` or in a zip group.
fn sweep_line(text: &str, key: &str) -> Option<usize> {
    let sweep = Seg::Key("sweep".into());
    let doc: Option<toml::Table> = toml::from_str(text).ok();
    let zip = doc.as_ref().and_then(|d| d.get("sweep")?.as_table()?.get("zip").cloned());
    let group = match zip {
        Some(toml::Value::Array(groups)) => {
            groups.iter().position(|g| g.as_table().is_some_and(|t| t.contains_key(key))).map(Seg::Index)
        }
        _ => None,
    };
    locate(text, &[sweep.clone(), Seg::Key(key.into())])
        .or_else(|| {
            let mut p = vec![sweep.clone(), Seg::Key("zip".into())];
            p.extend(group);
            p.push(Seg::Key(key.into()));
            locate(text, &p)
        })
        .or_else(|| locate(text, &[sweep]))
}

fn join(prefix: &str, key: &str) -> String {
    if key.is_empty() { prefix.to_string() } else { format!("{prefix}.{key}") }
}

/// Reads `key.path=value`; the value is TOML (`5000`, `"5/s"`, `{ name = "central" }`),
/// and a bare word that is not TOML is taken as a string (`workload.rate=20/s`).
fn parse_set(set: &str) -> Result<(String, toml::Value), InputError> {
    let Some((key, value)) = set.split_once('=') else {
        return Err(InputError::new("expected key.path=value, e.g. network.nodes=5000"));
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(InputError::new("the key path before '=' is empty; expected key.path=value"));
    }
    let value = value.trim();
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}")).ok().and_then(|mut t| t.remove("v"));
    let digits = value.trim_start_matches(['-', '+']).replace('_', "");
    let value = match parsed {
        Some(v) => v,
        None if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) => {
            return Err(InputError::new(format!(
                "{value} is too large for an integer; TOML integers run from -2^63 to 2^63 - 1"
            ))
            .key(key));
        }
        None if !value.is_empty() && !value.contains(['{', '[', '"', '\'']) => toml::Value::String(value.to_string()),
        None => {
            return Err(InputError::new(format!(
                "`{value}` is not a TOML value; expected e.g. 5000, \"5/s\" or {{ name = \"central\" }}"
            ))
            .key(key));
        }
    };
    Ok((key.to_string(), value))
}

/// Every key the `[sweep]` of `root` varies, directly or in a zip group, with its values.
fn swept(root: &toml::Table) -> Vec<(String, Option<&Vec<toml::Value>>)> {
    let Some(sweep) = root.get("sweep").and_then(|s| s.as_table()) else {
        return Vec::new();
    };
    let groups: Vec<&toml::Table> = match sweep.get("zip") {
        Some(toml::Value::Table(t)) => vec![t],
        Some(toml::Value::Array(a)) => a.iter().filter_map(|g| g.as_table()).collect(),
        _ => Vec::new(),
    };
    sweep
        .iter()
        .filter(|(k, _)| *k != "zip")
        .chain(groups.into_iter().flatten())
        .map(|(k, v)| (k.clone(), v.as_array()))
        .collect()
}

/// A `--set` below a swept key would be overwritten by every sweep value: refuse it,
/// showing how to pin the whole table instead.
fn inside_swept_table(root: &toml::Table, key: &str, path: &[Seg], value: &toml::Value) -> Option<InputError> {
    let (table, values) = swept(root).into_iter().find(|(k, _)| {
        let k = split_path(k);
        path.len() > k.len() && path.starts_with(&k)
    })?;
    let rest = &path[split_path(&table).len()..];
    // The example starts from the sweep value that already has the key, or the first.
    let tables: Vec<&toml::Table> = values.into_iter().flatten().filter_map(|v| v.as_table()).collect();
    let first_key = match rest.first() {
        Some(Seg::Key(k)) => k.as_str(),
        _ => "",
    };
    let example = tables.iter().find(|t| t.contains_key(first_key)).or(tables.first()).and_then(|t| {
        let mut t = (*t).clone();
        set_path(&mut t, rest, value.clone()).ok()?;
        Some(toml::Value::Table(t))
    });
    let message = match example {
        Some(v) => format!(
            "the key is inside the swept table `{table}`, so every sweep value would replace it; pin the whole table instead, e.g. --set '{table}={v}', or edit the sweep"
        ),
        None => format!(
            "the key is inside the swept key `{table}`, so every sweep value would replace it; set `{table}` itself, or edit the sweep"
        ),
    };
    Some(InputError::new(message).key(key))
}

/// Points an error at the command-line argument that wrote its key, if one did;
/// an argument that wrote a key beside or below it gets a note instead, since the
/// key itself is in the file.
fn blame_set(mut e: InputError, written: &[(Vec<Seg>, String)]) -> InputError {
    let Some(key) = e.key.as_deref() else { return e };
    let path = split_path(key);
    if path.is_empty() {
        return e;
    }
    if let Some((_, arg)) = written.iter().rev().find(|(k, _)| path.starts_with(k)) {
        e.file = Some(arg.clone());
        e.line = None;
    } else if let Some((_, arg)) = written.iter().rev().find(|(k, _)| {
        let beside = k.len() == path.len() && k[..k.len() - 1] == path[..path.len() - 1];
        beside || k.starts_with(&path)
    }) {
        e.message = format!("{} (with {arg})", e.message);
    }
    e
}

fn set_path(root: &mut toml::Table, path: &[Seg], value: toml::Value) -> Result<(), String> {
    let (last, parents) = match path.split_last() {
        Some((Seg::Key(k), parents)) => (k, parents),
        _ => return Err("expected a key path such as network.nodes".into()),
    };
    let mut table = root;
    let mut parents = parents.iter().peekable();
    while let Some(seg) = parents.next() {
        let Seg::Key(k) = seg else {
            return Err("expected a key before a list index, as in fault[0].at".into());
        };
        let mut name = k.clone();
        if !table.contains_key(k) && matches!(parents.peek(), Some(Seg::Index(_))) {
            return Err(format!("the file has no `{k}` entries to index; write the entry in the file first"));
        }
        let mut entry = table.entry(k.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        // An index picks one table of a list of tables (`[[fault]]`), which must exist.
        while let Some(Seg::Index(i)) = parents.peek() {
            let i = *i;
            parents.next();
            entry = match entry {
                toml::Value::Array(list) => {
                    let len = list.len();
                    list.get_mut(i).ok_or_else(|| format!("`{name}` has {len} entries; there is no {name}[{i}]"))?
                }
                other => return Err(format!("`{name}` holds {}, not a list, so it has no [{i}]", other.type_str())),
            };
            name = format!("{name}[{i}]");
        }
        table = match entry {
            toml::Value::Table(t) => t,
            other => {
                return Err(format!("`{name}` holds {}, not a table, so it has no keys below it", other.type_str()));
            }
        };
    }
    table.insert(last.clone(), value);
    Ok(())
}

/// Parameter columns: each swept key, with tables (like `protocol`) split into one
/// column per key they set (`protocol.name`, `protocol.ttl`).
fn param_columns(axes: &[Axis]) -> Vec<String> {
    let mut cols = Vec::new();
    for axis in axes {
        for (k, key) in axis.keys.iter().enumerate() {
            let values: Vec<&toml::Value> = axis.values.iter().map(|level| &level[k]).collect();
            if values.iter().all(|v| v.is_table()) {
                for v in values {
                    for sub in v.as_table().into_iter().flat_map(|t| t.keys()) {
                        let c = format!("{key}.{sub}");
                        if !cols.contains(&c) {
                            cols.push(c);
                        }
                    }
                }
            } else {
                cols.push(key.clone());
            }
        }
    }
    cols
}

fn column_value(table: &toml::Table, column: &str) -> String {
    let mut v: Option<&toml::Value> = None;
    let mut t = Some(table);
    for seg in split_path(column) {
        v = match seg {
            Seg::Key(k) => t.and_then(|t| t.get(&k)),
            Seg::Index(i) => v.and_then(|v| v.as_array()).and_then(|a| a.get(i)),
        };
        t = v.and_then(|v| v.as_table());
    }
    match v {
        Some(toml::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// A sweep value as a number: plain numbers, rates (per second), durations
/// (seconds) and bandwidths (bits per second).
pub fn numeric(text: &str) -> Option<f64> {
    text.parse::<f64>()
        .ok()
        .or_else(|| parse_rate(text).ok().filter(|_| text.contains('/')).map(|r| r.per_second()))
        .or_else(|| parse_duration(text).ok().map(|t| t.as_secs_f64()))
        .or_else(|| parse_bandwidth(text).ok())
}

/// Checks `target_ci` metrics and the plots kept, each with its index in the file.
fn check_plots(plan: &Plan, plots: &[(usize, PlotSpec)], text: &str) -> Result<(), InputError> {
    if let Some(t) = &plan.target_ci {
        for (i, m) in t.metrics.iter().enumerate() {
            if !plan.metrics.contains(m) {
                let key = format!("target_ci.metrics[{i}]");
                return Err(InputError::new(format!(
                    "\"{m}\" is not a metric of this scenario; expected one of {}",
                    plan.metrics.join(", ")
                ))
                .file(&plan.file)
                .key(&key)
                .line(locate(text, &split_path(&key))));
            }
        }
    }
    for (i, p) in plots {
        let key = |k: &str| format!("plot[{i}].{k}");
        let fail = |k: &str, m: String| {
            InputError::new(m).file(&plan.file).key(key(k)).line(locate(text, &split_path(&key(k))))
        };
        let cols = if plan.columns.is_empty() {
            "none: the scenario has no [sweep]".to_string()
        } else {
            plan.columns.join(", ")
        };
        let Some(x) = plan.columns.iter().position(|c| *c == p.x) else {
            return Err(fail("x", format!("\"{}\" is not a swept parameter; expected one of {cols}", p.x)));
        };
        // Points that leave the key unset (a protocol without it) are simply not on the plot.
        if let Some(v) = plan.points.iter().map(|pt| &pt.params[x].1).find(|v| !v.is_empty() && numeric(v).is_none()) {
            return Err(fail(
                "x",
                format!(
                    "\"{}\" takes values such as \"{v}\" that are not numbers; expected a numeric parameter (numbers, durations such as \"10s\", rates such as \"20/s\") — put a categorical parameter in `series` instead",
                    p.x
                ),
            ));
        }
        if let Some(s) = &p.series
            && !plan.columns.contains(s)
        {
            return Err(fail("series", format!("\"{s}\" is not a swept parameter; expected one of {cols}")));
        }
        if !plan.metrics.contains(&p.y) {
            return Err(fail(
                "y",
                format!("\"{}\" is not a metric of this scenario; expected one of {}", p.y, plan.metrics.join(", ")),
            ));
        }
    }
    Ok(())
}
