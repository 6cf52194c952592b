//! `aggregation`: push-pull gossip averaging (Jelasity, Montresor, Babaoglu, ACM
//! TOCS 2005), the classic example that PeerSim ships, so that peergrid can be
//! compared with other simulators on exactly the same work.
//!
//! Every node holds a value. Once per cycle, at its own phase within the cycle, a
//! node sends its value to a uniformly chosen neighbour (push); the neighbour
//! answers with the difference it applied (pull) and both move halfway towards each
//! other. Values are fixed-point integers and the two sides apply exactly opposite
//! changes, so without message loss the sum — and the mean — is conserved exactly,
//! even when exchanges overlap.
//!
//! With peers drawn from the whole network the variance shrinks by 1/(2√e) ≈ 0.303
//! per cycle (ibid.) when the nodes start their exchanges in a fresh random
//! order each cycle. Here a node keeps its phase, so its exchanges are exactly one
//! cycle apart, and on the complete graph with atomic exchanges the same model
//! gives 0.293 (`validate::aggregation_fixed_phase_rate`, checked by `peergrid
//! validate`). An overlay converges more slowly because neighbourhoods become
//! correlated (k-out with k = 20: 0.31; k = 4: 0.44), and latency slows it a little
//! more because exchanges overlap (20-out with 20 ms links: 0.316). The protocol
//! answers no queries: give it a workload with `rate = "0/s"`.
//!
//! Under churn and faults, as PeerSim's averaging runs in a dynamic network: a
//! push to a down neighbour is lost, and so is the half of an exchange whose
//! reply finds the pusher gone, so the sum is no longer conserved; a node that
//! (re)joins starts afresh, with a new value drawn as at the start and its own
//! phase. The mean and the variance are over the nodes up at each cycle's end.

use rand::RngExt;
use serde::Deserialize;

use super::{MemoryPart, ParamDoc, ParamError, ProtocolInfo, ProtocolParams, RunFigures, UDP_IP_BYTES};
use crate::engine::{Ahead, Ctx, Message, NodeId, Protocol, QueryId, ResourceType, SimTime};
use crate::metrics::{Column, Metric, Recorder};
use crate::world::World;

/// `[protocol]` with `name = "aggregation"`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Length of a cycle.
    #[serde(default = "default_cycle")]
    pub cycle: SimTime,
    /// Number of cycles.
    #[serde(default = "default_cycles")]
    pub cycles: u32,
    /// How values start.
    #[serde(default)]
    pub values: Values,
}

/// How values start.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Values {
    /// Uniform in [0, 1).
    #[default]
    Uniform,
    /// Node i has i.
    Linear,
    /// Node 0 has N, the others 0.
    Peak,
}

fn default_cycle() -> SimTime {
    SimTime::from_secs(1)
}
fn default_cycles() -> u32 {
    30
}

impl ProtocolParams for Params {
    type Protocol = Aggregation;

    const INFO: ProtocolInfo = ProtocolInfo {
        name: "aggregation",
        source: "Jelasity, Montresor, Babaoglu, ACM TOCS 2005 (PeerSim's aggregation example)",
        summary: "push-pull averaging: once a cycle each node averages its value with a random neighbour",
        uses_overlay: true,
        extra_columns: &[
            Column::new("aggregation_cycles", "cycles completed"),
            Column::new("aggregation_mean_initial", "initial mean"),
            Column::new("aggregation_mean_error", "error of the final mean"),
            Column::new("aggregation_variance_initial", "initial variance"),
            Column::new("aggregation_variance_final", "final variance"),
            Column::new("aggregation_variance_ratio", "variance reduction per cycle"),
        ],
        roles: &[],
        keeps_state: false,
        params: &[
            ParamDoc::new("cycle", "\"1s\"", "length of a cycle: each node starts one exchange per cycle")
                .label("cycle length (s)"),
            ParamDoc::new("cycles", "30", "number of cycles; the scenario's duration must cover them").label("cycles"),
            ParamDoc::new(
                "values",
                "\"uniform\"",
                "initial values: \"uniform\" in [0, 1), \"linear\" (node i has i), or \"peak\" (node 0 has N, others 0)",
            ),
        ],
    };

    fn build(&self, world: &World) -> Aggregation {
        Aggregation {
            params: self.clone(),
            value: vec![0; world.nodes()],
            mean_initial: 0.0,
            mean_final: 0.0,
            dynamic: false,
            variance: Vec::new(),
        }
    }

    fn validate(&self, run: &RunFigures) -> Result<(), ParamError> {
        let duration = run.duration;
        if self.cycle == SimTime::ZERO {
            return Err(ParamError::new("cycle", "expected a cycle length above zero"));
        }
        if !(1..=100_000).contains(&self.cycles) {
            return Err(ParamError::new(
                "cycles",
                format!("{} is out of range; expected 1 ≤ cycles ≤ 100000", self.cycles),
            ));
        }
        if duration < self.span() {
            return Err(ParamError::new(
                "cycles",
                format!(
                    "{} cycles of {} take {}, longer than duration {duration}; set duration to at least {}",
                    self.cycles,
                    self.cycle,
                    self.span(),
                    self.span()
                ),
            ));
        }
        Ok(())
    }

    /// A value and a phase per node, and one exchange in flight per node.
    fn memory(&self, run: &RunFigures) -> Vec<MemoryPart> {
        vec![MemoryPart::new("values and exchanges in flight", "network.nodes", run.nodes as f64 * (8.0 + 3.0 * 32.0))]
    }
}

impl Params {
    /// The simulated time the cycles take.
    pub fn span(&self) -> SimTime {
        SimTime(self.cycle.0.saturating_mul(self.cycles as u64))
    }
}

/// Fixed-point scale: values are stored as round(v · 2^32).
const SCALE: f64 = 4_294_967_296.0;

#[derive(Clone, Copy, Debug)]
/// Aggregation's messages.
pub enum Msg {
    /// The initiator's value.
    Push {
        /// The value, fixed-point.
        value: i64,
    },
    /// The change the receiver applied; the initiator applies its negation.
    Pull {
        /// The change, fixed-point.
        delta: i64,
    },
}

impl Message for Msg {
    const KINDS: &'static [&'static str] = &["push", "pull"];
    /// A datagram carrying one 8-byte value.
    const SIZES: &'static [u32] = &[8 + UDP_IP_BYTES, 8 + UDP_IP_BYTES];
    fn kind(&self) -> usize {
        match self {
            Msg::Push { .. } => 0,
            Msg::Pull { .. } => 1,
        }
    }
    fn query(&self) -> Option<QueryId> {
        None
    }
}

/// Aggregation's timers.
pub enum Timer {
    /// A node's turn to start an exchange.
    Exchange,
    /// End of cycle `c`: record the variance (a global timer).
    Observe(u32),
}

/// The push-pull averaging protocol.
pub struct Aggregation {
    params: Params,
    value: Vec<i64>,
    mean_initial: f64,
    /// The mean over the nodes up at the last cycle's end (under churn or faults).
    mean_final: f64,
    /// Whether nodes can go down in this run.
    dynamic: bool,
    variance: Vec<f64>,
}

impl Aggregation {
    fn stats(&self) -> (f64, f64) {
        self.stats_of(|_| true)
    }

    /// Mean and variance over the nodes `keep` selects.
    fn stats_of(&self, keep: impl Fn(usize) -> bool) -> (f64, f64) {
        let kept = || (0..self.value.len()).filter(|&v| keep(v)).map(|v| self.value[v]);
        let n = kept().count().max(1) as f64;
        let sum: i128 = kept().map(|v| v as i128).sum();
        let mean = sum as f64 / n / SCALE;
        let var = kept().map(|v| (v as f64 / SCALE - mean).powi(2)).sum::<f64>() / n;
        (mean, var)
    }

    /// Mean and variance over the nodes up.
    fn live_stats(&self, ctx: &Ctx<'_, Self>) -> (f64, f64) {
        self.stats_of(|v| ctx.is_up(NodeId(v as u32)))
    }

    /// Node `v`'s starting value.
    fn initial(&self, ctx: &mut Ctx<'_, Self>, v: usize) -> i64 {
        let n = self.value.len();
        let x = match self.params.values {
            Values::Uniform => ctx.rng().random::<f64>(),
            Values::Linear => v as f64,
            Values::Peak => {
                if v == 0 {
                    n as f64
                } else {
                    0.0
                }
            }
        };
        (x * SCALE).round() as i64
    }

    /// The exact sum of the fixed-point values.
    pub fn sum(&self) -> i128 {
        self.value.iter().map(|&v| v as i128).sum()
    }

    /// Variance at the start and after each completed cycle.
    pub fn variances(&self) -> &[f64] {
        &self.variance
    }
}

impl Protocol for Aggregation {
    type Msg = Msg;
    type Timer = Timer;

    fn start(&mut self, ctx: &mut Ctx<'_, Self>) {
        let n = self.value.len();
        self.dynamic = ctx.dynamic();
        for v in 0..n {
            self.value[v] = self.initial(ctx, v);
        }
        let (mean, var) = self.live_stats(ctx);
        self.mean_initial = mean;
        self.variance.push(var);
        let cycle = self.params.cycle.0;
        for v in 0..n as u32 {
            let phase = SimTime(ctx.rng().random_range(0..cycle));
            ctx.set_timer(NodeId(v), phase, Timer::Exchange);
        }
        for c in 1..=self.params.cycles {
            ctx.set_global_timer(SimTime(cycle * c as u64), Timer::Observe(c));
        }
    }

    fn query(&mut self, _: &mut Ctx<'_, Self>, _: QueryId, _: NodeId, _: ResourceType) {}

    fn message(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, from: NodeId, msg: Msg) {
        match msg {
            Msg::Push { value } => {
                let mine = self.value[at.index()];
                let delta = (value - mine) >> 1;
                self.value[at.index()] = mine + delta;
                ctx.send(at, from, Msg::Pull { delta });
            }
            Msg::Pull { delta } => self.value[at.index()] -= delta,
        }
    }

    fn prefetch(&self, ctx: &Ctx<'_, Self>, at: NodeId, what: Ahead) {
        crate::base::prefetch(&self.value, at.index());
        if what == Ahead::Timer {
            ctx.world.overlay.prefetch(at);
        }
    }

    fn prefetch_near(&self, ctx: &Ctx<'_, Self>, at: NodeId, what: Ahead, _: Option<&Msg>) {
        if what == Ahead::Timer {
            ctx.world.overlay.prefetch_neighbours(at);
        }
    }

    fn timer(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, _exchange: Timer) {
        if ctx.now() >= self.params.span() {
            return;
        }
        let neighbours = ctx.neighbours(at);
        if !neighbours.is_empty() {
            let peer = neighbours[ctx.rng().random_range(0..neighbours.len())];
            // Its value is read when the push arrives: next, with zero latency.
            crate::base::prefetch(&self.value, peer.index());
            ctx.send(at, peer, Msg::Push { value: self.value[at.index()] });
        }
        ctx.set_timer(at, self.params.cycle, Timer::Exchange);
    }

    fn global_timer(&mut self, ctx: &mut Ctx<'_, Self>, _observe: Timer) {
        let (mean, var) = self.live_stats(ctx);
        self.variance.push(var);
        self.mean_final = mean;
    }

    fn joined(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, _: Option<NodeId>) {
        self.value[at.index()] = self.initial(ctx, at.index());
        let phase = SimTime(ctx.rng().random_range(0..self.params.cycle.0));
        ctx.set_timer(at, phase, Timer::Exchange);
    }

    fn state_bytes(&self) -> usize {
        self.value.capacity() * 8 + self.variance.capacity() * 8
    }

    fn extra_metrics(&self, _recorder: &Recorder, out: &mut Vec<Metric>) {
        let (mut mean, mut var) = self.stats();
        if self.dynamic {
            // The values of the nodes up when the last cycle ended.
            (mean, var) = (self.mean_final, self.variance.last().copied().unwrap_or(var));
        }
        let first = self.variance.first().copied().unwrap_or(0.0);
        let cycles = self.variance.len().saturating_sub(1);
        let ratio = (cycles > 0 && first > 0.0 && var > 0.0).then(|| (var / first).powf(1.0 / cycles as f64));
        out.extend([
            Metric::new("aggregation_cycles", Some(cycles as f64)),
            Metric::new("aggregation_mean_initial", Some(self.mean_initial)),
            Metric::new("aggregation_mean_error", Some((mean - self.mean_initial).abs())),
            Metric::new("aggregation_variance_initial", Some(first)),
            Metric::new("aggregation_variance_final", Some(var)),
            Metric::new("aggregation_variance_ratio", ratio),
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Rate, SimConfig, Simulation};
    use crate::validate::world;
    use crate::workload::{Workload, WorkloadSpec};
    use crate::world::TopologySpec;

    fn run(k: u32, loss: f64, values: Values) -> Aggregation {
        let w = world(&TopologySpec::KOut { k }, 20_000, 20, 1, 0, 3);
        let params = Params { cycle: SimTime::from_secs(1), cycles: 12, values };
        let config = SimConfig { timeout: SimTime::from_secs(1), loss, ..SimConfig::new(9, params.span()) };
        let spec = WorkloadSpec { rate: Rate(0.0), ..Default::default() };
        let workload = Workload::new(&spec, w.nodes(), 1, config.duration, 9);
        let sim = Simulation::new(&w, params.build(&w), workload, &config);
        sim.run_protocol()
    }

    #[test]
    fn under_churn_fresh_joiners_hold_the_variance_up_and_the_sum_drifts() {
        use crate::dynamics::{Churn, Dynamics, Lifetime, Source, Start};
        let w = world(&TopologySpec::KOut { k: 20 }, 5_000, 20, 1, 0, 3);
        let params = Params { cycle: SimTime::from_secs(1), cycles: 30, values: Values::Uniform };
        let session = Lifetime::Exponential { mean: 20.0 };
        let downtime = Lifetime::Exponential { mean: 20.0 };
        let churn = Churn {
            source: Source::Distributions { session, downtime, heterogeneous: false, start: Start::Equilibrium },
            graceful: 0.0,
            leave_time: SimTime::ZERO,
        };
        let config = SimConfig {
            timeout: SimTime::from_secs(1),
            dynamics: Dynamics { churn: Some(churn), faults: Vec::new(), ..Dynamics::default() },
            ..SimConfig::new(9, params.span())
        };
        let workload =
            Workload::new(&WorkloadSpec { rate: Rate(0.0), ..Default::default() }, w.nodes(), 1, config.duration, 9);
        let a = Simulation::new(&w, params.build(&w), workload, &config).run_protocol();
        let var = a.variances();
        // Uniform values start at variance 1/12; averaging pulls it down, while the
        // 2.5% of the nodes that join a second bring fresh uniform values: a floor
        // far above the static run's 10^-14.
        assert!(var[0] > 0.07 && var[30] < 0.2 * var[0] && var[30] > 1e-4, "{var:?}");
        assert!((a.mean_final - a.mean_initial).abs() > 1e-6, "churn does not conserve the sum");
    }

    #[test]
    fn variance_shrinks_every_cycle_and_the_mean_is_conserved_exactly() {
        for values in [Values::Uniform, Values::Peak, Values::Linear] {
            let a = run(4, 0.0, values);
            let var = a.variances();
            assert_eq!(var.len(), 13);
            for (c, w) in var.windows(2).enumerate() {
                assert!(w[1] < w[0], "{values:?}: variance grew in cycle {}: {} -> {}", c + 1, w[0], w[1]);
            }
            // The sum of the fixed-point values is exactly what it was at the start.
            let (mean, _) = a.stats();
            assert_eq!(mean, a.mean_initial, "{values:?}");
        }
    }

    #[test]
    fn variance_falls_as_the_fixed_phase_model_says_on_the_complete_graph() {
        let crate::validate::Within { got, want, tolerance } =
            crate::validate::aggregation_variance_ratio(&[1, 2, 3, 4]);
        assert!((got - want).abs() < tolerance, "{got} per cycle, model {want} ± {tolerance}");
    }

    #[test]
    fn a_dense_random_overlay_is_a_little_slower_than_the_complete_graph() {
        // A k-out overlay with k = 20 (mean degree 40) comes close to peers drawn
        // from the whole network, but correlated neighbourhoods and 20 ms links
        // (overlapping exchanges) make it slower: about 0.316 a cycle, not 0.293.
        let a = run(20, 0.0, Values::Uniform);
        let var = a.variances();
        let ratio = (var[12] / var[0]).powf(1.0 / 12.0);
        let complete = crate::validate::aggregation_fixed_phase_rate();
        assert!(ratio > complete && ratio < complete + 0.04, "{ratio} per cycle, complete graph {complete}");
    }

    #[test]
    fn lost_messages_break_conservation() {
        let a = run(4, 0.05, Values::Uniform);
        assert_ne!(a.stats().0, a.mean_initial);
    }
}
