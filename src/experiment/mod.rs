//! Experiments: every (sweep point, replicate) pair is one run with its own seed,
//! built and simulated single-threaded; runs execute in parallel on a rayon pool.
//! Output order never depends on which thread finished first.

use std::time::Instant;

use rayon::prelude::*;

use crate::engine::rng::run_seed;
use crate::metrics::{QueryRecord, SeriesRow};
use crate::scenario::{InputError, Plan, Point};
use crate::workload::Workload;
use crate::world::World;

/// Everything one run produced.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub point: usize,
    pub replicate: u32,
    pub seed: u64,
    /// Aligned with `Plan::metrics`; `None` where undefined or not this protocol's.
    pub metrics: Vec<Option<f64>>,
    pub series: Vec<SeriesRow>,
    pub queries: Vec<QueryRecord>,
    /// Messages served per node in the measured window.
    pub node_load: Vec<u32>,
    pub events: u64,
    pub fingerprint: u64,
    pub wall_seconds: f64,
    pub peak_rss_mb: f64,
}

/// The run of `point` × `replicate`.
pub fn execute(plan: &Plan, point: &Point, replicate: u32) -> Result<RunResult, InputError> {
    let started = Instant::now();
    let s = &point.scenario;
    let seed = run_seed(plan.seed, point.index as u64, replicate as u64);
    let world = World::build(
        &s.network.topology,
        s.network.nodes,
        s.network.allow_disconnected,
        &s.network.latency,
        &s.resources,
        &plan.base_dir,
        seed,
    )
    .map_err(|e| {
        let key = if e.key == "nodes" { "network.nodes".to_string() } else { format!("network.topology.{}", e.key) };
        InputError::new(format!("{} (sweep point {}, replicate {replicate}, seed {seed})", e.message, point.index))
            .file(&plan.file)
            .key(key)
    })?;
    let workload = Workload::new(&s.workload, world.nodes(), s.resources.types, s.duration, seed);
    let out = s.protocol.run(&world, workload, &s.sim_config(seed));
    let mut named = out.recorder.finish(out.kinds, out.events);
    named.extend(out.extra);
    let metrics = plan.metrics.iter().map(|m| named.iter().find(|(n, _)| n == m).and_then(|(_, v)| *v)).collect();
    let keep_queries = plan.output.queries;
    Ok(RunResult {
        point: point.index,
        replicate,
        seed,
        metrics,
        series: out.recorder.series(),
        queries: if keep_queries { out.recorder.queries.clone() } else { Vec::new() },
        node_load: if plan.output.nodes { out.recorder.handled.clone() } else { Vec::new() },
        events: out.events,
        fingerprint: out.fingerprint,
        wall_seconds: started.elapsed().as_secs_f64(),
        peak_rss_mb: peak_rss_mb(),
    })
}

/// Runs every (point, replicate) of the plan on `threads` threads, calling `done`
/// as each run finishes (in completion order), and returns the results sorted by
/// (point, replicate).
pub fn run_all(plan: &Plan, threads: usize, done: &(dyn Fn(&RunResult) + Sync)) -> Result<Vec<RunResult>, InputError> {
    let jobs: Vec<(usize, u32)> =
        (0..plan.points.len()).flat_map(|p| (0..plan.replicates).map(move |r| (p, r))).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| InputError::new(format!("cannot start {threads} threads: {e}")))?;
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
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        out.push(r?);
    }
    out.sort_by_key(|r| (r.point, r.replicate));
    Ok(out)
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
