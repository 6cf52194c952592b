//! The query workload: a Poisson process of queries at a global rate, each from a
//! uniformly chosen node for a uniformly or Zipf-popular resource type, plus any
//! exactly scripted queries. With `requesters = k` the Poisson queries come from k
//! nodes drawn once per run (Iamnitchi and Foster's few requesting nodes) instead of
//! from every node.

pub mod swf;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1};
use serde::Deserialize;

use crate::base::rng::{Stream, stream};
use crate::base::{NodeId, Rate, ResourceType, SimTime};
use crate::world::Skew;

/// `[workload]`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Global Poisson query rate.
    #[serde(default = "default_rate")]
    pub rate: Rate,
    /// Which resource types queries ask for: type 0 is the most popular under zipf.
    #[serde(default)]
    pub popularity: Skew,
    /// A query counts as failed if no answer reaches its origin within this time.
    #[serde(default = "default_timeout")]
    pub timeout: SimTime,
    /// Exact queries, issued besides the Poisson ones.
    #[serde(default)]
    pub script: Vec<ScriptedQuery>,
    /// Poisson queries come from this many distinct nodes, drawn uniformly once per
    /// run; unset = from every node.
    #[serde(default)]
    pub requesters: Option<u32>,
}

fn default_rate() -> Rate {
    Rate(10.0)
}
fn default_timeout() -> SimTime {
    SimTime::from_secs(30)
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        WorkloadSpec {
            rate: default_rate(),
            popularity: Skew::Uniform,
            timeout: default_timeout(),
            script: Vec::new(),
            requesters: None,
        }
    }
}

/// One query issued at an exact time.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScriptedQuery {
    /// When the query is issued.
    pub at: SimTime,
    /// Index of the node that issues it.
    pub origin: u32,
    #[serde(rename = "type")]
    /// The resource type it asks for (the TOML key `type`).
    pub rtype: u32,
}

/// Marks the Poisson chain; other indices point into the script.
const POISSON: u32 = u32::MAX;

/// The workload generator of one run.
pub struct Workload {
    rate: f64,
    popularity: Skew,
    nodes: u32,
    types: u32,
    duration: SimTime,
    script: Vec<ScriptedQuery>,
    rng: ChaCha8Rng,
    first_poisson: Option<SimTime>,
    /// The nodes Poisson queries come from, ascending; empty = every node.
    requesters: Vec<u32>,
}

impl Workload {
    /// The workload of one run: Poisson queries in [0, `duration`) drawn from the run seed, plus the script.
    pub fn new(spec: &WorkloadSpec, nodes: usize, types: u32, duration: SimTime, seed: u64) -> Workload {
        let mut script = spec.script.clone();
        script.sort_by_key(|q| q.at);
        let mut w = Workload {
            rate: spec.rate.per_second(),
            popularity: spec.popularity,
            nodes: nodes as u32,
            types,
            duration,
            script,
            rng: stream(seed, Stream::Workload),
            first_poisson: None,
            requesters: Vec::new(),
        };
        if let Some(k) = spec.requesters {
            // Drawn before the first arrival, and only when set, so that workloads
            // without requesters keep their streams.
            let k = (k as usize).clamp(1, nodes.max(1));
            w.requesters = rand::seq::index::sample(&mut w.rng, nodes, k).into_iter().map(|v| v as u32).collect();
            w.requesters.sort_unstable();
        }
        w.first_poisson = w.next_poisson(SimTime::ZERO);
        w
    }

    fn next_poisson(&mut self, after: SimTime) -> Option<SimTime> {
        if self.rate <= 0.0 || self.types == 0 {
            return None;
        }
        let gap: f64 = Exp1.sample(&mut self.rng);
        let at = after.saturating_add(SimTime::from_secs_f64(gap / self.rate));
        (at < self.duration).then_some(at)
    }

    /// The first arrival of each chain (Poisson and script).
    pub fn initial(&self) -> Vec<(SimTime, u32)> {
        let mut out: Vec<(SimTime, u32)> = self.first_poisson.map(|t| (t, POISSON)).into_iter().collect();
        if let Some(q) = self.script.first() {
            out.push((q.at, 0));
        }
        out
    }

    /// The arrival after the one at `now` on the same chain.
    pub fn next_arrival(&mut self, now: SimTime, idx: u32) -> Option<(SimTime, u32)> {
        if idx == POISSON {
            self.next_poisson(now).map(|t| (t, POISSON))
        } else {
            let next = idx as usize + 1;
            self.script.get(next).map(|q| (q.at, next as u32))
        }
    }

    /// Origin and wanted type of the arrival `idx`.
    pub fn draw(&mut self, idx: u32) -> (NodeId, ResourceType) {
        if idx == POISSON {
            let origin = if self.requesters.is_empty() {
                NodeId(self.rng.random_range(0..self.nodes))
            } else {
                NodeId(self.requesters[self.rng.random_range(0..self.requesters.len())])
            };
            let want = ResourceType(self.popularity.sample(self.types, &mut self.rng));
            (origin, want)
        } else {
            let q = &self.script[idx as usize];
            (NodeId(q.origin), ResourceType(q.rtype))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_arrivals_have_the_configured_rate() {
        let spec = WorkloadSpec { rate: Rate(50.0), ..WorkloadSpec::default() };
        let duration = SimTime::from_secs(200);
        let mut w = Workload::new(&spec, 100, 10, duration, 9);
        let (mut t, idx) = w.initial()[0];
        let mut n = 1;
        while let Some((next, _)) = w.next_arrival(t, idx) {
            assert!(next >= t && next < duration);
            t = next;
            n += 1;
        }
        // 10,000 expected; Poisson std is 100.
        assert!((n as f64 - 10_000.0).abs() < 400.0, "{n}");
    }

    #[test]
    fn requesters_are_the_only_origins() {
        let spec = WorkloadSpec { rate: Rate(50.0), requesters: Some(10), ..WorkloadSpec::default() };
        let mut w = Workload::new(&spec, 1000, 10, SimTime::from_secs(100), 3);
        let mut origins: Vec<u32> = (0..2000).map(|_| w.draw(POISSON).0.0).collect();
        origins.sort_unstable();
        origins.dedup();
        assert_eq!(origins, w.requesters);
        assert_eq!(origins.len(), 10);
    }

    #[test]
    fn script_runs_in_time_order() {
        let spec = WorkloadSpec {
            rate: Rate(0.0),
            script: vec![
                ScriptedQuery { at: SimTime::from_secs(2), origin: 3, rtype: 1 },
                ScriptedQuery { at: SimTime::from_secs(1), origin: 5, rtype: 2 },
            ],
            ..WorkloadSpec::default()
        };
        let mut w = Workload::new(&spec, 10, 10, SimTime::from_secs(10), 1);
        assert_eq!(w.initial(), vec![(SimTime::from_secs(1), 0)]);
        assert_eq!(w.draw(0), (NodeId(5), ResourceType(2)));
        assert_eq!(w.next_arrival(SimTime::from_secs(1), 0), Some((SimTime::from_secs(2), 1)));
        assert_eq!(w.next_arrival(SimTime::from_secs(2), 1), None);
    }
}
