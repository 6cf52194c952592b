//! Throughput figures for `peergrid bench` and the criterion benchmarks: the hold
//! model (pop the earliest event, push one at now + an exponential delay, with a
//! fixed number pending) through the full engine, and the same work on a plain
//! `std::collections::BinaryHeap`.

use std::path::Path;
use std::time::Instant;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1};

use crate::base::rng::{Stream, stream};
use crate::engine::ResourceType;
use crate::engine::{
    Ctx, EventQueue, FifoRadixQueue, HeapQueue, Message, NodeId, Protocol, QueryId, RadixQueue, Rate, SimConfig,
    SimTime, Simulation,
};
use crate::workload::{Workload, WorkloadSpec};
use crate::world::{LatencySpec, ResourcesSpec, TopologySpec, World};

/// Mean hold delay: 1 ms of simulated time.
const MEAN_DELAY_NS: f64 = 1e6;

fn delay(rng: &mut ChaCha8Rng) -> u64 {
    let x: f64 = Exp1.sample(rng);
    (x * MEAN_DELAY_NS) as u64
}

/// One hold-model measurement.
#[derive(Clone, Copy, Debug)]
pub struct Hold {
    /// Holds done.
    pub events: u64,
    /// Wall time they took.
    pub seconds: f64,
    /// A sum over the events popped, so that the work cannot be optimised away.
    pub checksum: u64,
}

impl Hold {
    /// Holds per second of wall time.
    pub fn per_second(&self) -> f64 {
        self.events as f64 / self.seconds
    }
}

/// The hold model on one event-list implementation, with 12-byte payloads like the
/// engine's events.
pub fn hold_queue<Q: EventQueue<[u32; 3]> + Default>(pending: usize, holds: u64, seed: u64) -> Hold {
    let mut rng = stream(seed, Stream::Protocol);
    let mut q = Q::default();
    for i in 0..pending {
        let node = rng.random_range(0..1024u32);
        q.push(SimTime(delay(&mut rng)), [node, i as u32, 0]);
    }
    let started = Instant::now();
    let mut checksum = 0u64;
    for _ in 0..holds {
        let Some((t, e)) = q.pop() else { break };
        checksum = checksum.wrapping_add(t.0 ^ e[0] as u64);
        q.push(SimTime(t.0 + delay(&mut rng)), e);
    }
    Hold { events: holds, seconds: started.elapsed().as_secs_f64(), checksum }
}

/// The event-list implementations `peergrid bench` compares: (name, hold function).
/// A hold-model measurement: (pending, holds, seed) → figures.
pub type HoldFn = fn(usize, u64, u64) -> Hold;

/// The first is the baseline: a plain std `BinaryHeap` keyed by (time, sequence).
pub const QUEUES: [(&str, HoldFn); 3] = [
    ("std BinaryHeap", hold_queue::<HeapQueue<[u32; 3]>>),
    ("radix heap, u128 keys (radix-heap crate)", hold_queue::<RadixQueue<[u32; 3]>>),
    ("FIFO radix heap, u64 keys", hold_queue::<FifoRadixQueue<[u32; 3]>>),
];

/// A protocol that only re-arms timers: the engine's raw event cost.
struct HoldProtocol {
    pending: usize,
    checksum: u64,
}

/// Never sent; the hold model has timers only.
#[derive(Clone, Copy)]
struct NoMsg;

impl Message for NoMsg {
    const KINDS: &'static [&'static str] = &["none"];
    fn kind(&self) -> usize {
        0
    }
    fn query(&self) -> Option<QueryId> {
        None
    }
}

impl Protocol for HoldProtocol {
    type Msg = NoMsg;
    type Timer = ();

    fn start(&mut self, ctx: &mut Ctx<'_, Self>) {
        for _ in 0..self.pending {
            let node = NodeId(ctx.rng().random_range(0..1024u32));
            let d = SimTime(delay(ctx.rng()));
            ctx.set_timer(node, d, ());
        }
    }
    fn query(&mut self, _: &mut Ctx<'_, Self>, _: QueryId, _: NodeId, _: ResourceType) {}
    fn message(&mut self, _: &mut Ctx<'_, Self>, _: NodeId, _: NodeId, _: NoMsg) {}
    fn timer(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, _: ()) {
        self.checksum = self.checksum.wrapping_add(ctx.now().0 ^ at.0 as u64);
        let d = SimTime(delay(ctx.rng()));
        ctx.set_timer(at, d, ());
    }
}

/// The same hold model through [`Simulation`]: timers in the arena, events in the
/// engine's queue, the fingerprint folded per event. Runs about `holds` events.
pub fn hold_engine(pending: usize, holds: u64, seed: u64) -> Hold {
    let world = World::build(
        &TopologySpec::Ring {},
        Some(1024),
        false,
        &LatencySpec::default(),
        &ResourcesSpec { types: 1, replicas: 0, ..Default::default() },
        Path::new("."),
        seed,
    )
    .expect("a ring of 1024 nodes is valid");
    // `pending` timers with mean delay d fire at pending/d per unit of time.
    let duration = SimTime((holds as f64 * MEAN_DELAY_NS / pending as f64) as u64);
    let config = SimConfig { timeout: SimTime(1), ..SimConfig::new(seed, duration) };
    let workload = Workload::new(&WorkloadSpec { rate: Rate(0.0), ..Default::default() }, 1024, 1, duration, seed);
    let sim = Simulation::new(&world, HoldProtocol { pending, checksum: 0 }, workload, &config);
    let started = Instant::now();
    let out = sim.run();
    let seconds = started.elapsed().as_secs_f64();
    Hold { events: out.events, seconds, checksum: out.fingerprint }
}

/// One flooding query wave from `origin` with `ttl` over `world`; returns the events.
pub fn flooding_wave(world: &World, origin: u32, ttl: u32) -> u64 {
    use crate::protocols::{ProtocolSpec, flooding};
    use crate::workload::ScriptedQuery;
    let config = SimConfig::new(1, SimTime::from_secs(60));
    let spec = WorkloadSpec {
        rate: Rate(0.0),
        script: vec![ScriptedQuery { at: SimTime::ZERO, origin, rtype: 0 }],
        ..Default::default()
    };
    let workload = Workload::new(&spec, world.nodes(), world.resources.types(), config.duration, 1);
    ProtocolSpec::Flooding(flooding::Params { ttl, ..Default::default() }).run(world, workload, &config).events
}

/// Where one run's memory went, per node, and how fast it ran.
#[derive(Clone, Debug)]
pub struct ScaleFigures {
    /// What was run.
    pub label: String,
    /// Nodes of the overlay.
    pub nodes: usize,
    /// Events processed.
    pub events: u64,
    /// Wall time of the run, the world's construction excluded.
    pub seconds: f64,
    /// Memory by part, per node.
    pub per_node: Vec<PerNode>,
    /// Bytes each node sent per second of simulated time for upkeep (the
    /// `maintenance_bytes_per_node_s` column), where the protocol has upkeep.
    pub upkeep: Option<f64>,
}

/// One part of a run's memory, per node.
#[derive(Clone, Debug)]
pub struct PerNode {
    /// What holds it.
    pub part: &'static str,
    /// Its bytes divided by the nodes.
    pub bytes: f64,
}

/// The protocol runs `peergrid bench` measures, those whose label contains `only`
/// (all without it): Gnutella flooding, PeerSim's push-pull averaging example and a
/// Chord ring with OverSim's periods and one lookup per node a minute (its
/// maintenance runs at random phases from the start, so any window shows its steady
/// rate), each on `nodes` nodes; and PeerSim's example exactly as PeerSim's
/// `example/config-edexample.txt` runs it at `SIZE=100000 CYCLES=100` (the figure
/// `benches/peersim.sh` compares with PeerSim's own).
pub fn scale_runs(nodes: u32, only: Option<&str>) -> Vec<ScaleFigures> {
    use crate::protocols::{ProtocolSpec, aggregation, chord, flooding};
    let wanted = |label: &str| only.is_none_or(|o| label.contains(o));
    let mut out = Vec::new();
    let label = "flooding, random 4-regular, TTL 7, 20 queries/s for 60 s";
    if wanted(label) {
        out.push(scale_run(
            label,
            &TopologySpec::RandomRegular { degree: 4 },
            nodes,
            &ProtocolSpec::Flooding(flooding::Params { ttl: 7, ..Default::default() }),
            &WorkloadSpec { rate: Rate(20.0), ..Default::default() },
            SimTime::from_secs(60),
            &bench_latency(),
        ));
    }
    let label = "aggregation, 20-out overlay, 3 cycles";
    if wanted(label) {
        out.push(scale_run(
            label,
            &TopologySpec::KOut { k: 20 },
            nodes,
            &ProtocolSpec::Aggregation(aggregation::Params {
                cycle: SimTime::from_secs(1),
                cycles: 3,
                values: aggregation::Values::Uniform,
            }),
            &WorkloadSpec { rate: Rate(0.0), ..Default::default() },
            SimTime::from_secs(3),
            &bench_latency(),
        ));
    }
    let label = "peersim example (config-edexample.txt: 20-out, zero delay, 100 cycles)";
    if wanted(label) {
        out.push(scale_run(
            label,
            &TopologySpec::KOut { k: 20 },
            PEERSIM_NODES,
            &ProtocolSpec::Aggregation(aggregation::Params {
                cycle: SimTime::from_secs(1),
                cycles: PEERSIM_CYCLES,
                values: aggregation::Values::Linear,
            }),
            &WorkloadSpec { rate: Rate(0.0), ..Default::default() },
            SimTime::from_secs(PEERSIM_CYCLES as u64),
            &LatencySpec::Constant { value: SimTime::ZERO },
        ));
    }
    let label = "chord, OverSim's periods, 1 lookup per node a minute, 30 s";
    if wanted(label) {
        out.push(scale_run(
            label,
            &TopologySpec::Ring {},
            nodes,
            &ProtocolSpec::Chord(chord::Params::default()),
            &WorkloadSpec { rate: Rate(nodes as f64 / 60.0), ..Default::default() },
            SimTime::from_secs(30),
            &bench_latency(),
        ));
    }
    out
}

/// The network size at which PeerSim's example is compared with PeerSim.
pub const PEERSIM_NODES: u32 = 100_000;
/// Its cycles.
pub const PEERSIM_CYCLES: u32 = 100;

/// The links of the benchmark worlds: uniform in [10 ms, 100 ms].
fn bench_latency() -> LatencySpec {
    LatencySpec::Uniform { min: SimTime::from_millis(10), max: SimTime::from_millis(100) }
}

/// Builds a world and runs `protocol` on it with `workload`, measuring time and
/// memory by part.
pub fn scale_run(
    label: &str,
    topology: &TopologySpec,
    nodes: u32,
    protocol: &crate::protocols::ProtocolSpec,
    workload: &WorkloadSpec,
    duration: SimTime,
    latency: &LatencySpec,
) -> ScaleFigures {
    let world = World::build(
        topology,
        Some(nodes),
        false,
        latency,
        &ResourcesSpec { types: 1000, replicas: 100, ..Default::default() },
        Path::new("."),
        1,
    )
    .expect("valid benchmark world");
    let config = SimConfig { timeout: SimTime::from_secs(10), ..SimConfig::new(1, duration) };
    let wl = Workload::new(workload, world.nodes(), world.resources.types(), duration, 1);
    let started = Instant::now();
    let out = protocol.run(&world, wl, &config);
    let seconds = started.elapsed().as_secs_f64();
    let n = world.nodes() as f64;
    let m = out.memory;
    let query_bytes = out.recorder.queries.capacity() * std::mem::size_of::<crate::metrics::QueryRecord>();
    ScaleFigures {
        label: label.to_string(),
        nodes: world.nodes(),
        events: out.events,
        seconds,
        per_node: vec![
            PerNode { part: "overlay (CSR)", bytes: world.overlay.bytes() as f64 / n },
            PerNode { part: "resource index", bytes: world.resources.bytes() as f64 / n },
            PerNode { part: "engine per-node queues and counters", bytes: m.engine_node_bytes as f64 / n },
            PerNode { part: "protocol state", bytes: m.protocol_bytes as f64 / n },
            PerNode { part: "event list at its peak", bytes: m.event_list_bytes as f64 / n },
            PerNode { part: "payload arena", bytes: m.payload_bytes as f64 / n },
            PerNode { part: "query records", bytes: query_bytes as f64 / n },
        ],
        upkeep: out.metric("maintenance_bytes_per_node_s"),
    }
}

/// `cycles` cycles of push-pull aggregation over `world`; returns the events.
pub fn aggregation_cycles(world: &World, cycles: u32) -> u64 {
    use crate::protocols::{ProtocolSpec, aggregation};
    let params = aggregation::Params { cycle: SimTime::from_secs(1), cycles, values: aggregation::Values::Uniform };
    let config = SimConfig::new(1, params.span());
    let spec = WorkloadSpec { rate: Rate(0.0), ..Default::default() };
    let workload = Workload::new(&spec, world.nodes(), 1, config.duration, 1);
    ProtocolSpec::Aggregation(params).run(world, workload, &config).events
}
