//! Computing on the grid: nodes with cores and a CPU speed, and jobs that are
//! placed through discovery and run there.
//!
//! **Nodes.** Each node has `node_cores` cores (its slots) and a speed
//! `node_speed` relative to the reference CPU, each drawn per node. A job that
//! needs c cores runs on one node with at least c cores, taking c of its free
//! cores; jobs wait at a node in one FIFO queue, the head starting as soon as
//! enough cores are free (no backfilling). A job of run time S on the
//! reference CPU runs S / speed there.
//!
//! **Jobs** arrive as a Poisson process (`rate`, with `runtime` and `cores`
//! drawn per job), or from a trace in the Standard Workload Format
//! (`trace`): each record's submit time (from the log's first, less
//! `start`, divided by `scale`), run time and processors; records without a
//! positive run time are left out. Jobs are submitted in [0, duration). A
//! job's origin is a node drawn uniformly, or with `sites`, a node drawn in
//! the site its partition maps onto (partition p to site p mod `sites`, sites
//! being `sites` runs of consecutive nodes).
//!
//! **Discovery.** A job's need is a resource type: the nodes with at least its
//! cores (type i = the nodes whose cores are at least the i-th smallest core
//! count in the grid). The job is submitted as a query of that type from its
//! origin, through whichever protocol the scenario names. When the query's
//! first hit reaches the origin, the job is placed on a node the answers named
//! (protocols whose answers come from the holders themselves report them,
//! `Ctx::report_found`): the first, or the one of the first `best_of` named by
//! `gather` after the first answer where it would start first, if still up. Index designs, whose answers name every
//! match, report none: the job then goes to a live holder drawn uniformly, or
//! the best of `best_of` so drawn. Its input then travels there (one latency plus `input_bytes` at the
//! origin's uplink), it waits its turn and runs, and its output travels back.
//! A job whose query times out with no hit, or whose node goes down before it
//! ends, tries again after `retry`, up to `retries` times, and is then
//! unplaced. A job that needs more cores than any node has is unplaced at once.

use std::path::Path;
use std::sync::Arc;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1};
use serde::Deserialize;

use crate::base::{Choice, NodeId, Rate, ResourceType, ServiceTime, SimTime};
use crate::metrics::{Column, Metric};
use crate::workload::swf;

/// The columns jobs add to runs.csv.
pub const COLUMNS: &[Column] = &[
    Column::new("jobs", "jobs submitted"),
    Column::new("jobs_done", "jobs finished"),
    Column::new("jobs_unplaced", "jobs unplaced (fraction)"),
    Column::new("job_wait_mean_s", "job wait, mean (s)"),
    Column::new("job_wait_p95_s", "job wait, 95th percentile (s)"),
    Column::new("job_discovery_share", "share of the wait spent in discovery"),
    Column::new("job_slowdown_mean", "bounded slowdown, mean"),
    Column::new("job_retries_mean", "tries beyond the first per job"),
    Column::new("makespan_s", "makespan (s)"),
    Column::new("throughput_jobs_per_h", "throughput (jobs/h)"),
    Column::new("utilisation", "utilisation (busy share of the cores)"),
    Column::new("utilisation_gini", "Gini of the nodes' utilisation"),
];

/// The run time below which bounded slowdown counts a job as this long
/// (Feitelson et al.'s threshold of 10 s).
pub const SLOWDOWN_BOUND_S: f64 = 10.0;

fn one() -> Choice {
    Choice::Fixed(1.0)
}
fn default_rate() -> Rate {
    Rate(1.0)
}
fn default_runtime() -> ServiceTime {
    ServiceTime::Exponential { mean: SimTime::from_secs(600) }
}
fn default_scale() -> f64 {
    1.0
}
fn default_best_of() -> u32 {
    1
}
fn default_retry() -> SimTime {
    SimTime::from_secs(60)
}
fn default_retries() -> u32 {
    3
}
fn default_horizon() -> SimTime {
    SimTime::from_secs(30 * 86_400)
}

/// `[jobs]`: where jobs come from, what they need, how they are placed, and
/// the nodes they run on.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JobsSpec {
    /// A Standard Workload Format log, plain or gzipped, relative to the
    /// scenario; unset: Poisson arrivals.
    #[serde(default)]
    pub trace: Option<String>,
    /// Without a trace: jobs per second over the grid.
    #[serde(default = "default_rate")]
    pub rate: Rate,
    /// Without a trace: a job's run time on the reference CPU.
    #[serde(default = "default_runtime")]
    pub runtime: ServiceTime,
    /// Without a trace: the cores a job needs.
    #[serde(default = "one")]
    pub cores: Choice,
    /// Bytes a job's input takes to its node.
    #[serde(default)]
    pub input_bytes: u64,
    /// Bytes its output takes back.
    #[serde(default)]
    pub output_bytes: u64,
    /// With a trace: the time after the log's first submission where the
    /// window of jobs starts.
    #[serde(default)]
    pub start: SimTime,
    /// With a trace: submissions come this many times faster.
    #[serde(default = "default_scale")]
    pub scale: f64,
    /// With a trace: the partitions map onto this many sites of consecutive
    /// nodes; unset: every job's origin is drawn among all nodes.
    #[serde(default)]
    pub sites: Option<u32>,
    /// A job goes to the node, of this many found, where it starts first.
    #[serde(default = "default_best_of")]
    pub best_of: u32,
    /// How long the origin gathers answers after the first before it places
    /// the job (for `best_of` to see several holders' own answers).
    #[serde(default)]
    pub gather: SimTime,
    /// How long a job that found no node, or lost its node, waits to try again.
    #[serde(default = "default_retry")]
    pub retry: SimTime,
    /// Tries beyond the first before a job counts as unplaced.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// How long after `duration` jobs may run before the run ends.
    #[serde(default = "default_horizon")]
    pub horizon: SimTime,
    /// Cores of each node.
    #[serde(default = "one")]
    pub node_cores: Choice,
    /// Each node's speed relative to the reference CPU.
    #[serde(default = "one")]
    pub node_speed: Choice,
    /// The trace, read once when the scenario is checked and shared by its runs.
    #[serde(skip)]
    pub log: Option<Arc<swf::SwfLog>>,
}

/// Why jobs cannot be had: the key below `jobs` and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct JobsError {
    /// The key below `jobs`.
    pub key: &'static str,
    /// What is wrong and what was expected.
    pub message: String,
}

impl JobsSpec {
    /// Checks what the types alone cannot.
    pub fn check(&self) -> Result<(), JobsError> {
        let bad = |key, message: String| Err(JobsError { key, message });
        if !(self.scale > 0.0 && self.scale.is_finite()) {
            return bad("scale", format!("{} is out of range; expected a factor above 0", self.scale));
        }
        if self.best_of == 0 || self.best_of > 64 {
            return bad("best_of", format!("{} is out of range; expected 1 ≤ best_of ≤ 64", self.best_of));
        }
        if self.sites == Some(0) {
            return bad("sites", "0 sites; expected at least 1, or no sites".into());
        }
        if self.node_cores.min() < 1.0 || self.node_cores.max() > 4096.0 {
            return bad("node_cores", "expected whole numbers of cores from 1 to 4096".into());
        }
        if self.node_speed.min() <= 0.0 {
            return bad("node_speed", "expected speeds above 0".into());
        }
        if self.cores.min() < 1.0 {
            return bad("cores", "expected at least 1 core".into());
        }
        Ok(())
    }

    /// Reads the trace, if any: the error names the key `trace`.
    pub fn read_trace(&self, base: &Path) -> Result<Option<swf::SwfLog>, JobsError> {
        let Some(path) = &self.trace else { return Ok(None) };
        let full = base.join(path);
        swf::read(&full).map(Some).map_err(|e| JobsError {
            key: "trace",
            message: if e.line == 0 { e.message } else { format!("{} line {}: {}", full.display(), e.line, e.message) },
        })
    }
}

/// One job: when and where it is submitted and what it needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Job {
    /// Submission time.
    pub submit: SimTime,
    /// The node that submits it.
    pub origin: NodeId,
    /// Cores it needs.
    pub cores: u32,
    /// Run time on the reference CPU, in seconds.
    pub runtime_s: f64,
    /// The type a node must hold to run it, or `None` if no node has its cores.
    pub want: Option<ResourceType>,
}

/// The jobs of a run and the nodes they run on.
#[derive(Clone, Debug, PartialEq)]
pub struct JobPlan {
    /// The jobs by submission time.
    pub jobs: Vec<Job>,
    /// Cores of each node.
    pub cores: Vec<u32>,
    /// Speed of each node.
    pub speed: Vec<f64>,
    /// The distinct core counts, ascending: type i is "at least `classes[i]` cores".
    pub classes: Vec<u32>,
    /// Placement and retries.
    pub best_of: u32,
    /// How long the origin gathers answers after the first.
    pub gather: SimTime,
    /// Back-off before a new try.
    pub retry: SimTime,
    /// Tries beyond the first.
    pub retries: u32,
    /// Bytes in and out.
    pub input_bytes: u64,
    /// Bytes in and out.
    pub output_bytes: u64,
    /// When the run ends at the latest.
    pub end: SimTime,
}

impl JobPlan {
    /// The plan of a run on `nodes` nodes whose queries are issued in [0,
    /// `duration`), from `spec` and the trace `log`, drawn from `rng`.
    pub fn new(
        spec: &JobsSpec,
        log: Option<&swf::SwfLog>,
        nodes: usize,
        duration: SimTime,
        rng: &mut ChaCha8Rng,
    ) -> JobPlan {
        let cores: Vec<u32> = (0..nodes).map(|_| spec.node_cores.sample(rng).round().max(1.0) as u32).collect();
        let speed: Vec<f64> = (0..nodes).map(|_| spec.node_speed.sample(rng)).collect();
        let mut classes = cores.clone();
        classes.sort_unstable();
        classes.dedup();
        let want = |c: u32| {
            let i = classes.partition_point(|&k| k < c);
            (i < classes.len()).then_some(ResourceType(i as u32))
        };
        let n = nodes.max(1) as u32;
        let mut jobs = Vec::new();
        match log {
            Some(log) => {
                let first = log.jobs.iter().map(|j| j.submit).filter(|&s| s >= 0).min().unwrap_or(0);
                let sites = spec.sites.unwrap_or(0).min(n);
                for j in log.jobs.iter().filter(|j| j.run > 0 && j.submit >= 0) {
                    let since = (j.submit - first) as f64 - spec.start.as_secs_f64();
                    if since < 0.0 {
                        continue;
                    }
                    let submit = SimTime::from_secs_f64(since / spec.scale);
                    if submit >= duration {
                        continue;
                    }
                    let origin = if sites > 0 {
                        // Site s holds nodes [s·n/sites, (s+1)·n/sites).
                        let s = (j.partition.max(0) as u64 % sites as u64) as u32;
                        let (lo, hi) = (s as u64 * n as u64 / sites as u64, (s as u64 + 1) * n as u64 / sites as u64);
                        NodeId(rng.random_range(lo as u32..hi.max(lo + 1) as u32))
                    } else {
                        NodeId(rng.random_range(0..n))
                    };
                    let c = j.cores();
                    jobs.push(Job { submit, origin, cores: c, runtime_s: j.run as f64, want: want(c) });
                }
                jobs.sort_by_key(|j| j.submit);
            }
            None => {
                let rate = spec.rate.per_second();
                let mut t: f64 = 0.0;
                while rate > 0.0 && t.is_finite() {
                    let gap: f64 = Exp1.sample(rng);
                    t += gap / rate;
                    let submit = SimTime::from_secs_f64(t);
                    if submit >= duration {
                        break;
                    }
                    let c = spec.cores.sample(rng).round().max(1.0) as u32;
                    let origin = NodeId(rng.random_range(0..n));
                    let runtime_s = spec.runtime.sample(rng).as_secs_f64();
                    jobs.push(Job { submit, origin, cores: c, runtime_s, want: want(c) });
                }
            }
        }
        JobPlan {
            jobs,
            cores,
            speed,
            classes,
            best_of: spec.best_of,
            gather: spec.gather,
            retry: spec.retry,
            retries: spec.retries,
            input_bytes: spec.input_bytes,
            output_bytes: spec.output_bytes,
            end: duration.saturating_add(spec.horizon),
        }
    }

    /// For each type, the nodes that hold it: type i, the nodes with at least
    /// `classes[i]` cores.
    pub fn holders(&self) -> Vec<Vec<u32>> {
        self.classes
            .iter()
            .map(|&c| (0..self.cores.len() as u32).filter(|&v| self.cores[v as usize] >= c).collect())
            .collect()
    }
}

/// What became of one job.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct JobRecord {
    /// Tries made (discovery queries issued).
    pub tries: u32,
    /// Time spent in discovery queries, over all tries.
    pub discovery: SimTime,
    /// The node it ran on last.
    pub node: Option<NodeId>,
    /// When it started to run, on its last try.
    pub start: Option<SimTime>,
    /// When its output reached its origin.
    pub done: Option<SimTime>,
    /// When it gave up.
    pub unplaced: Option<SimTime>,
}

/// The values of [`COLUMNS`] for `plan`'s jobs as `records` say they went,
/// with `busy` core-seconds per node.
pub fn metrics(plan: &JobPlan, records: &[JobRecord], busy: &[f64], out: &mut Vec<Metric>) {
    let n = plan.jobs.len();
    let done: Vec<(usize, &JobRecord)> = records.iter().enumerate().filter(|(_, r)| r.done.is_some()).collect();
    let mut waits: Vec<f64> = Vec::with_capacity(done.len());
    let (mut discovery, mut slowdown) = (0.0, 0.0);
    for &(i, r) in &done {
        let j = &plan.jobs[i];
        let start = r.start.unwrap_or(j.submit);
        let wait = (start - j.submit).as_secs_f64();
        let node = r.node.map_or(1.0, |v| plan.speed[v.index()]);
        let run = j.runtime_s / node;
        waits.push(wait);
        discovery += r.discovery.as_secs_f64();
        slowdown += ((wait + run) / run.max(SLOWDOWN_BOUND_S)).max(1.0);
    }
    let k = done.len() as f64;
    let total_wait: f64 = waits.iter().sum();
    let first = plan.jobs.first().map(|j| j.submit);
    let last = done.iter().filter_map(|(_, r)| r.done).max();
    let makespan = match (first, last) {
        (Some(a), Some(b)) => Some((b - a).as_secs_f64()),
        _ => None,
    };
    waits.sort_by(f64::total_cmp);
    let p95 =
        (!waits.is_empty()).then(|| waits[((waits.len() as f64 * 0.95).ceil() as usize).clamp(1, waits.len()) - 1]);
    let unplaced = records.iter().filter(|r| r.unplaced.is_some()).count();
    let retries: u32 = records.iter().map(|r| r.tries.saturating_sub(1)).sum();
    let share: Vec<f64> = busy.iter().zip(&plan.cores).map(|(b, &c)| b / c.max(1) as f64).collect();
    let cores: f64 = plan.cores.iter().map(|&c| c as f64).sum();
    let mean = |x: f64| (k > 0.0).then(|| x / k);
    out.extend([
        Metric::new("jobs", Some(n as f64)),
        Metric::new("jobs_done", Some(k)),
        Metric::new("jobs_unplaced", (n > 0).then(|| unplaced as f64 / n as f64)),
        Metric::new("job_wait_mean_s", mean(total_wait)),
        Metric::new("job_wait_p95_s", p95),
        Metric::new("job_discovery_share", (total_wait > 0.0).then(|| discovery / total_wait)),
        Metric::new("job_slowdown_mean", mean(slowdown)),
        Metric::new("job_retries_mean", (n > 0).then(|| retries as f64 / n as f64)),
        Metric::new("makespan_s", makespan),
        Metric::new("throughput_jobs_per_h", makespan.filter(|&m| m > 0.0).map(|m| k / m * 3600.0)),
        Metric::new(
            "utilisation",
            makespan.filter(|&m| m > 0.0 && cores > 0.0).map(|m| busy.iter().sum::<f64>() / (cores * m)),
        ),
        Metric::new("utilisation_gini", (!share.is_empty()).then(|| crate::metrics::gini_f64(&share))),
    ]);
}

/// A shared plan, as a run's configuration carries it.
pub type SharedPlan = Arc<JobPlan>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::rng::{Stream, stream};
    use crate::dynamics::{Action, Dynamics, Fault, Victims};
    use crate::engine::{RunOutput, SimConfig, Simulation};
    use crate::protocols::{ProtocolParams, central};
    use crate::validate::world;
    use crate::workload::{Workload, WorkloadSpec};
    use crate::world::{Resources, TopologySpec};

    /// Runs `plan` on a ring of its nodes with 10 ms links, discovery by the
    /// central index on node 0, under `dynamics`.
    fn run(plan: JobPlan, dynamics: Dynamics) -> RunOutput {
        let n = plan.cores.len() as u32;
        let mut w = world(&TopologySpec::Ring {}, n, 10, 1, 1, 5);
        w.resources = Resources::from_holders(n as usize, plan.holders());
        let mut config = SimConfig::new(5, SimTime::from_secs(3600));
        config.timeout = SimTime::from_secs(30);
        config.dynamics = dynamics;
        config.jobs = Some(Arc::new(plan));
        let spec = WorkloadSpec { rate: Rate(0.0), ..Default::default() };
        let workload = Workload::new(&spec, n as usize, w.resources.types(), config.duration, 5);
        Simulation::new(&w, central::Params::default().build(&w), workload, &config).run()
    }

    fn plan(jobs: Vec<Job>, cores: Vec<u32>, speed: Vec<f64>) -> JobPlan {
        let mut classes = cores.clone();
        classes.sort_unstable();
        classes.dedup();
        JobPlan {
            jobs,
            cores,
            speed,
            classes,
            best_of: 1,
            gather: SimTime::ZERO,
            retry: SimTime::from_secs(60),
            retries: 3,
            input_bytes: 0,
            output_bytes: 0,
            end: SimTime::from_secs(100 * 86_400),
        }
    }

    #[test]
    fn a_job_of_size_s_runs_s_over_c_after_its_discovery_and_transfer() {
        // One job of 100 reference seconds from node 3; every node has speed 2.
        let job = Job {
            submit: SimTime::from_secs(1),
            origin: NodeId(3),
            cores: 1,
            runtime_s: 100.0,
            want: Some(ResourceType(0)),
        };
        let out = run(plan(vec![job], vec![2; 10], vec![2.0; 10]), Dynamics::default());
        let r = out.jobs[0];
        // The query to the index and its answer: 20 ms; the input's trip: 10 ms.
        assert_eq!(r.discovery, SimTime::from_millis(20));
        assert_eq!(r.start, Some(SimTime::from_millis(1030)));
        // 100 s at speed 2, and the output's trip back.
        assert_eq!(r.done, Some(SimTime::from_millis(1030 + 50_000 + 10)));
        assert_eq!(out.metric("jobs_done"), Some(1.0));
        assert_eq!(out.metric("job_retries_mean"), Some(0.0));
    }

    #[test]
    fn jobs_run_only_on_nodes_with_their_cores_and_queue_for_them() {
        let spec = JobsSpec {
            rate: Rate(0.5),
            cores: Choice::Values(vec![1.0, 2.0, 4.0, 8.0], vec![4.0, 3.0, 2.0, 1.0]),
            node_cores: Choice::Values(vec![1.0, 2.0, 4.0], vec![1.0, 1.0, 1.0]),
            ..toml::from_str("").expect("defaults")
        };
        let p = JobPlan::new(&spec, None, 40, SimTime::from_secs(1800), &mut stream(3, Stream::Jobs));
        let out = run(p.clone(), Dynamics::default());
        let mut eights = 0;
        for (job, r) in p.jobs.iter().zip(&out.jobs) {
            if job.cores > 4 {
                // No node has 8 cores: unplaced at once, never run.
                eights += 1;
                assert!(r.unplaced.is_some() && r.node.is_none() && r.tries == 0);
                continue;
            }
            let v = r.node.expect("placed");
            assert!(p.cores[v.index()] >= job.cores, "a {}-core job on a {}-core node", job.cores, p.cores[v.index()]);
            assert!(r.done.is_some() && r.start.is_some_and(|s| s >= job.submit));
        }
        assert!(eights > 0 && out.metric("jobs_unplaced") == Some(eights as f64 / p.jobs.len() as f64));
        // Some waited for cores: more jobs than cores at times.
        assert!(out.metric("job_wait_p95_s").is_some_and(|w| w > 1.0));
    }

    #[test]
    fn a_flooded_job_runs_on_a_node_its_answer_named() {
        // On a ring of 20, only nodes 6 and 15 have 2 cores; a flood of TTL 1
        // from node 5 reaches 4 and 6 alone, so every job goes to node 6.
        let mut cores = vec![1; 20];
        cores[6] = 2;
        cores[15] = 2;
        let jobs = (0..10)
            .map(|i| Job {
                submit: SimTime::from_secs(1 + i),
                origin: NodeId(5),
                cores: 2,
                runtime_s: 1.0,
                want: Some(ResourceType(1)),
            })
            .collect();
        let p = plan(jobs, cores, vec![1.0; 20]);
        let mut w = world(&TopologySpec::Ring {}, 20, 10, 1, 1, 5);
        w.resources = Resources::from_holders(20, p.holders());
        let mut config = SimConfig::new(5, SimTime::from_secs(60));
        config.timeout = SimTime::from_secs(5);
        config.jobs = Some(Arc::new(p));
        let workload =
            Workload::new(&WorkloadSpec { rate: Rate(0.0), ..Default::default() }, 20, 2, config.duration, 5);
        let flooding = crate::protocols::flooding::Params { ttl: 1, ..Default::default() };
        let out = Simulation::new(&w, flooding.build(&w), workload, &config).run();
        assert!(out.jobs.iter().all(|r| r.node == Some(NodeId(6)) && r.done.is_some()), "{:?}", out.jobs);
    }

    #[test]
    fn a_job_whose_node_crashes_runs_again_elsewhere() {
        // Every job on node 7 when it crashes at 100 s tries again after the
        // back-off; all finish.
        let jobs = (0..20)
            .map(|i| Job {
                submit: SimTime::from_secs(i),
                origin: NodeId(1),
                cores: 1,
                runtime_s: 400.0,
                want: Some(ResourceType(0)),
            })
            .collect();
        let crash = Fault {
            at: SimTime::from_secs(100),
            action: Action::Crash { victims: Victims::Nodes(vec![NodeId(7)]), recover: None },
        };
        let out = run(plan(jobs, vec![1; 10], vec![1.0; 10]), Dynamics { faults: vec![crash], ..Dynamics::default() });
        let moved: Vec<_> = out.jobs.iter().filter(|r| r.tries > 1).collect();
        assert!(!moved.is_empty());
        assert!(out.jobs.iter().all(|r| r.done.is_some()));
        assert!(
            moved.iter().all(|r| r.node != Some(NodeId(7)) && r.start.is_some_and(|s| s >= SimTime::from_secs(160)))
        );
    }

    #[test]
    fn a_trace_window_is_cut_scaled_and_mapped_onto_sites() {
        let text = "; Partition: 1 a\n; Partition: 2 b\n\
            1 100 -1 50 1 -1 -1 -1 -1 -1 1 1 1 -1 -1 1 -1 -1\n\
            2 160 -1 0 1 -1 -1 -1 -1 -1 5 1 1 -1 -1 2 -1 -1\n\
            3 220 -1 70 4 -1 -1 -1 -1 -1 1 1 1 -1 -1 2 -1 -1\n\
            4 900 -1 70 2 -1 -1 -1 -1 -1 1 1 1 -1 -1 1 -1 -1\n";
        let log = swf::parse(text).expect("a log");
        let spec = JobsSpec {
            start: SimTime::from_secs(60),
            scale: 2.0,
            sites: Some(2),
            node_cores: Choice::Fixed(2.0),
            ..toml::from_str("").expect("defaults")
        };
        let p = JobPlan::new(&spec, Some(&log), 10, SimTime::from_secs(300), &mut stream(1, Stream::Jobs));
        // Job 1 is before the window, job 2 has no run time, job 4 is past
        // the duration once scaled: (900 − 100 − 60) / 2 = 370 s.
        assert_eq!(p.jobs.len(), 1);
        let j = p.jobs[0];
        assert_eq!((j.submit, j.cores, j.runtime_s), (SimTime::from_secs(30), 4, 70.0));
        // Partition 2 → site 0 of 2: nodes 0 to 4; no node has 4 cores.
        assert!(j.origin.0 < 5 && j.want.is_none());
    }
}
