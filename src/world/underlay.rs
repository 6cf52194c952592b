//! The underlay: how long a message takes between two nodes, and whether it is lost.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use crate::base::{NodeId, SimTime};

/// `network.latency`: one of the latency models, chosen by its `model` key.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "model", rename_all = "kebab-case", deny_unknown_fields)]
pub enum LatencySpec {
    /// Every message takes exactly `value`.
    Constant {
        /// The one-way latency of every message.
        value: SimTime,
    },
    /// Each message draws its latency uniformly from [min, max].
    Uniform {
        /// The shortest latency a message can draw.
        min: SimTime,
        /// The longest latency a message can draw.
        max: SimTime,
    },
    /// Nodes sit uniformly at random in a unit square; latency = base + distance × per_unit.
    Euclidean {
        /// The latency between two nodes at the same spot.
        base: SimTime,
        /// Latency added per side length of the square travelled.
        per_unit: SimTime,
    },
}

impl Default for LatencySpec {
    fn default() -> Self {
        LatencySpec::Constant { value: SimTime::from_millis(20) }
    }
}

impl LatencySpec {
    /// Mean one-way latency in seconds.
    pub fn mean_s(&self) -> f64 {
        match *self {
            LatencySpec::Constant { value } => value.as_secs_f64(),
            LatencySpec::Uniform { min, max } => (min.as_secs_f64() + max.as_secs_f64()) / 2.0,
            // Mean distance between two uniform points of the unit square ≈ 0.5214.
            LatencySpec::Euclidean { base, per_unit } => base.as_secs_f64() + 0.5214 * per_unit.as_secs_f64(),
        }
    }
}

/// The latency models `peergrid list` shows.
pub const LATENCY_MODELS: [(&str, &str); 3] = [
    ("constant", "value = \"20ms\": every message takes exactly this long (the default)"),
    ("uniform", "min, max: each message draws its latency uniformly from [min, max]"),
    ("euclidean", "base, per_unit: nodes placed uniformly in a unit square; latency = base + distance × per_unit"),
];

/// The latency model of one run, with node positions drawn when it needs them.
#[derive(Clone, Debug)]
pub enum Underlay {
    /// Every message takes this long.
    Constant(SimTime),
    /// Latency drawn uniformly from [min, max] nanoseconds.
    Uniform(u64, u64),
    /// Latency = base + distance × per_unit between the nodes' positions.
    Euclidean {
        /// Latency between two nodes at the same spot, in nanoseconds.
        base: u64,
        /// Nanoseconds per side length of the unit square.
        per_unit: f64,
        /// Each node's place in the unit square, indexed by `NodeId`.
        position: Vec<(f32, f32)>,
    },
}

impl Underlay {
    /// The latency model `spec` describes, drawing node positions from `rng` if it needs them.
    pub fn new(spec: &LatencySpec, nodes: usize, rng: &mut ChaCha8Rng) -> Underlay {
        match *spec {
            LatencySpec::Constant { value } => Underlay::Constant(value),
            LatencySpec::Uniform { min, max } => Underlay::Uniform(min.0, max.0),
            LatencySpec::Euclidean { base, per_unit } => Underlay::Euclidean {
                base: base.0,
                per_unit: per_unit.0 as f64,
                position: (0..nodes).map(|_| (rng.random::<f32>(), rng.random::<f32>())).collect(),
            },
        }
    }

    /// The one-way latency of a message from `a` to `b`.
    #[inline]
    pub fn latency(&self, a: NodeId, b: NodeId, rng: &mut ChaCha8Rng) -> SimTime {
        match self {
            Underlay::Constant(t) => *t,
            Underlay::Uniform(lo, hi) => SimTime(rng.random_range(*lo..=*hi)),
            Underlay::Euclidean { base, per_unit, position } => {
                let (pa, pb) = (position[a.index()], position[b.index()]);
                let d = ((pa.0 - pb.0) as f64).hypot((pa.1 - pb.1) as f64);
                SimTime(base + (d * per_unit).round() as u64)
            }
        }
    }
}
