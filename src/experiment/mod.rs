//! Experiments: every (sweep point, replicate) pair is one run with its own seed,
//! built and simulated single-threaded; runs execute in parallel on a rayon pool.
//! Output order never depends on which thread finished first.

pub mod memory;
pub mod slurm;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;

use crate::base::Rate;
use crate::base::rng::{Stream, run_seed, stream};
use crate::compute::JobPlan;
use crate::engine::SimConfig;
use crate::metrics::stats::summarize;
use crate::metrics::{QueryRecord, SeriesRow};
use crate::scenario::{InputError, Plan, Point, TargetCi};
use crate::workload::{Workload, WorkloadSpec};
use crate::world::{Resources, World};

/// Everything one run produced.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The index of the sweep point the run belongs to.
    pub point: usize,
    /// The replicate number within its point, from 0.
    pub replicate: u32,
    /// The seed the run's world and simulation were drawn from.
    pub seed: u64,
    /// Aligned with `Plan::metrics`; `None` where undefined or not this protocol's.
    pub metrics: Vec<Option<f64>>,
    /// The run's samples, one every `sample_every`, for timeseries.csv.
    pub series: Vec<SeriesRow>,
    /// Quantiles at p = 0, 0.01, ..., 1 of each distribution (first-hit latency in ms,
    /// per-node load in messages/s); empty when there is no data.
    pub distributions: Vec<(&'static str, Vec<f64>)>,
    /// Every query's record, for queries.csv; empty unless `[output] queries` is set.
    pub queries: Vec<QueryRecord>,
    /// Messages served per node in the measured window.
    pub node_load: Vec<u32>,
    /// Every job with what became of it, for jobs.csv; empty unless `[output] jobs` is set.
    pub jobs: Vec<(crate::compute::Job, crate::compute::JobRecord)>,
    /// Events the engine processed.
    pub events: u64,
    /// A hash over (time, kind, node) of every processed event, which pins the run's trace.
    pub fingerprint: u64,
    /// Real time the run took, building its world included.
    pub wall_seconds: f64,
    /// The process's peak resident set size in MiB as the run ended; it mixes in parallel runs.
    pub peak_rss_mb: f64,
    /// The run's own memory at its peak, as accounted part by part: overlay,
    /// underlay, resources, engine per-node state, event list, payloads, protocol state, and
    /// query records. Unlike the process's peak RSS it does not mix parallel runs.
    pub run_memory_mb: f64,
}

/// Bytes a pending event may hold at its peak: its entry in the event list, its
/// payload slot, and the slack of growing vectors.
const PENDING_EVENT_BYTES: u64 = 128;

/// How many events one run may keep pending: its share of the memory available
/// now (one run per worker thread), or no limit when that is unknown.
fn pending_budget() -> usize {
    memory::available_bytes().map_or(usize::MAX, |avail| {
        let share = avail / rayon::current_num_threads().max(1) as u64;
        (share / PENDING_EVENT_BYTES).try_into().unwrap_or(usize::MAX)
    })
}

/// Probabilities at which distributions are recorded.
pub const QUANTILES: usize = 101;

fn quantiles(mut values: Vec<f64>) -> Vec<f64> {
    if values.is_empty() {
        return Vec::new();
    }
    values.sort_by(f64::total_cmp);
    (0..QUANTILES)
        .map(|i| {
            let p = i as f64 / (QUANTILES - 1) as f64;
            let rank = (p * values.len() as f64).ceil().max(1.0) as usize;
            values[rank.min(values.len()) - 1]
        })
        .collect()
}

/// The seed of run (point, replicate): `run_seed(master, point, replicate)`, or with
/// common random numbers `run_seed(master, 0, replicate)` for every point.
pub fn seed_of(plan: &Plan, point: usize, replicate: u32) -> u64 {
    let point = if plan.common_random_numbers { 0 } else { point as u64 };
    run_seed(plan.seed, point, replicate as u64)
}

/// The run of `point` × `replicate`.
pub fn execute(plan: &Plan, point: &Point, replicate: u32) -> Result<RunResult, InputError> {
    let started = Instant::now();
    let s = &point.scenario;
    let seed = seed_of(plan, point.index, replicate);
    // Shared-out replication follows the workload's popularity unless told otherwise.
    let mut resources = s.resources.clone();
    resources.popularity = resources.popularity.or(Some(s.workload.popularity));
    let world = World::build(
        &s.network.topology,
        s.network.nodes,
        s.network.allow_disconnected,
        &s.network.latency,
        &resources,
        &plan.base_dir,
        seed,
    )
    .map_err(|e| {
        InputError::new(format!("{} (sweep point {}, replicate {replicate}, seed {seed})", e.message(), point.index))
            .file(&plan.file)
            .key(e.key())
    })?;
    let mut world = world;
    let mut config = SimConfig { max_pending: pending_budget(), ..s.sim_config(seed) };
    let workload = match &s.jobs {
        None => Workload::new(&s.workload, world.nodes(), s.resources.types, s.duration, seed),
        Some(spec) => {
            // The jobs' needs are the types, and their queries the only ones.
            let mut rng = stream(seed, Stream::Jobs);
            let jobs = JobPlan::new(spec, spec.log.as_deref(), world.nodes(), s.duration, &mut rng);
            world.resources = Resources::from_holders(world.nodes(), jobs.holders());
            config.jobs = Some(Arc::new(jobs));
            let quiet = WorkloadSpec { rate: Rate(0.0), script: Vec::new(), ..s.workload.clone() };
            Workload::new(&quiet, world.nodes(), world.resources.types(), s.duration, seed)
        }
    };
    let out = s.protocol.run(&world, workload, &config);
    if let Some(at) = out.overflow {
        return Err(InputError::new(format!(
            "sweep point {}, replicate {replicate} (seed {seed}) stopped {:.1} s into the simulation: {} events were pending, all the memory this run may use; \
             messages arrive faster than nodes serve them, so the backlog grows without bound — \
             lower workload.rate, the protocol's fan-out or ttl, or network.service_time",
            point.index,
            at.as_secs_f64(),
            out.memory.peak_pending
        ))
        .file(&plan.file));
    }
    let m = out.memory;
    let run_bytes = world.overlay.bytes()
        + world.underlay.bytes()
        + world.resources.bytes()
        + m.engine_node_bytes
        + m.event_list_bytes
        + m.payload_bytes
        + m.protocol_bytes
        + out.recorder.queries.capacity() * std::mem::size_of::<QueryRecord>();
    let mut named = out.recorder.finish(out.kinds, out.events);
    named.extend(out.extra);
    let metrics = plan.metrics.iter().map(|m| named.iter().find(|c| &c.name == m).and_then(|c| c.value)).collect();
    let window = s.duration.saturating_sub(s.warmup).as_secs_f64().max(1e-9);
    let latency = quantiles(out.recorder.measured().filter_map(|q| q.latency()).map(|l| l.as_millis_f64()).collect());
    let load = quantiles(out.recorder.handled.iter().map(|&h| h as f64 / window).collect());
    Ok(RunResult {
        point: point.index,
        replicate,
        seed,
        metrics,
        series: out.recorder.series(),
        distributions: vec![("first_hit_latency_ms", latency), ("node_load_per_s", load)],
        queries: if plan.output.queries { out.recorder.queries.clone() } else { Vec::new() },
        node_load: if plan.output.nodes { out.recorder.handled.clone() } else { Vec::new() },
        jobs: match (&config.jobs, plan.output.jobs) {
            (Some(p), true) => p.jobs.iter().copied().zip(out.jobs.iter().copied()).collect(),
            _ => Vec::new(),
        },
        events: out.events,
        fingerprint: out.fingerprint,
        wall_seconds: started.elapsed().as_secs_f64(),
        peak_rss_mb: peak_rss_mb(),
        run_memory_mb: run_bytes as f64 / (1024.0 * 1024.0),
    })
}

/// The I-th of N disjoint slices of a plan's runs (`--shard I/N`, 0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which slice this is, from 0.
    pub index: usize,
    /// How many slices the runs are dealt into.
    pub count: usize,
}

impl Shard {
    /// Parses `I/N` with 0 ≤ I < N.
    pub fn parse(text: &str) -> Result<Shard, InputError> {
        let bad = || InputError::new(format!("--shard {text}: expected I/N with 0 ≤ I < N, e.g. 0/4"));
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) =
            (i.trim().parse::<usize>().map_err(|_| bad())?, n.trim().parse::<usize>().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Whether run (point, replicate) belongs to this shard. Runs are dealt out in
    /// turn; with `target_ci`, whole points are, since a point's replicate count
    /// depends on all of its results.
    pub fn owns(&self, plan: &Plan, point: usize, replicate: u32) -> bool {
        let job = if plan.target_ci.is_some() { point } else { point * plan.replicates as usize + replicate as usize };
        job % self.count == self.index
    }
}

/// Metric values of finished runs, keyed by (point, replicate).
pub type Finished = BTreeMap<(usize, u32), Vec<Option<f64>>>;

/// Runs every (point, replicate) of the plan that is in `shard` and not already
/// `finished`, on `threads` threads, calling `done` as each run finishes (in
/// completion order). With `target_ci`, points get more replicates, round by round,
/// until their intervals are narrow enough. Returns all finished runs' metrics.
pub fn run_plan(
    plan: &Plan,
    threads: usize,
    shard: Option<Shard>,
    mut finished: Finished,
    done: &(dyn Fn(&RunResult) + Sync),
) -> Result<Finished, InputError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| InputError::new(format!("cannot start {threads} threads: {e}")))?;
    let owned = |p: usize, r: u32| shard.is_none_or(|s| s.owns(plan, p, r));
    let mut wanted: Vec<u32> = vec![plan.replicates; plan.points.len()];
    loop {
        let jobs: Vec<(usize, u32)> = (0..plan.points.len())
            .flat_map(|p| (0..wanted[p]).map(move |r| (p, r)))
            .filter(|&(p, r)| owned(p, r) && !finished.contains_key(&(p, r)))
            .collect();
        let results: Vec<Result<RunResult, InputError>> = pool.install(|| {
            jobs.par_iter()
                .map(|&(p, r)| {
                    let result = execute(plan, &plan.points[p], r);
                    if let Ok(res) = &result {
                        done(res);
                    }
                    result
                })
                .collect()
        });
        for r in results {
            let r = r?;
            finished.insert((r.point, r.replicate), r.metrics);
        }
        let Some(target) = &plan.target_ci else { break };
        let mut more = false;
        for (p, want) in wanted.iter_mut().enumerate() {
            if !owned(p, 0) {
                continue;
            }
            let next = replicates_needed(plan, target, &finished, p, *want);
            if next > *want {
                *want = next;
                more = true;
            }
        }
        if !more {
            break;
        }
    }
    Ok(finished)
}

/// How many replicates point `p` needs for `target`: from n runs with half-width h
/// against a wanted half-width w, about n·(h/w)² (at least n + 1), capped.
fn replicates_needed(plan: &Plan, target: &TargetCi, finished: &Finished, p: usize, have: u32) -> u32 {
    let mut need = have;
    for m in &target.metrics {
        let Some(col) = plan.metrics.iter().position(|x| x == m) else { continue };
        let values: Vec<f64> = (0..have).filter_map(|r| finished.get(&(p, r)).and_then(|v| v[col])).collect();
        let Some(s) = summarize(&values) else { continue };
        let Some((lo, hi)) = s.ci95 else { continue };
        let half = (hi - lo) / 2.0;
        let allowed = target.fraction * s.mean.abs();
        if half > allowed {
            let estimate = if allowed > 0.0 { (have as f64 * (half / allowed).powi(2)).ceil() } else { f64::INFINITY };
            need = need.max((estimate.min(u32::MAX as f64) as u32).max(have + 1));
        }
    }
    need.min(target.max_replicates)
}
/// The process's peak resident set size in MiB (VmHWM), 0 where unknown.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
