//! The underlay: how long a message takes between two nodes, and whether it is lost.
//!
//! Synthetic models live here; `transit_stub.rs` is GT-ITM's router hierarchy and
//! `matrix.rs` a measured round-trip-time matrix.

pub mod matrix;
pub mod transit_stub;

use std::path::Path;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use crate::base::{NodeId, SimTime};
pub use matrix::{MatrixCache, MatrixSpec, MatrixUnderlay, RttMatrix};
pub use transit_stub::{TransitStub, TransitStubSpec};

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
    /// GT-ITM's transit-stub hierarchy: each node on a random stub router, latency
    /// the sum of the levels its route crosses.
    TransitStub(TransitStubSpec),
    /// A measured all-pairs round-trip-time matrix: nodes mapped onto its hosts,
    /// latency half the round trip.
    Matrix(MatrixSpec),
}

impl Default for LatencySpec {
    fn default() -> Self {
        LatencySpec::Constant { value: SimTime::from_millis(20) }
    }
}

/// A latency model that cannot be used: the offending key below `network.latency`
/// and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("network.latency.{key}: {message}")]
pub struct LatencyError {
    /// The offending key below `network.latency`.
    pub key: &'static str,
    /// What is wrong and what was expected.
    pub message: String,
}

impl LatencySpec {
    /// Mean one-way latency in seconds between two distinct nodes. For a matrix it
    /// is the mean over the matrix's host pairs, and NaN until the file is loaded
    /// ([`LatencySpec::load`]; scenario validation does it).
    pub fn mean_s(&self) -> f64 {
        match self {
            LatencySpec::Constant { value } => value.as_secs_f64(),
            LatencySpec::Uniform { min, max } => (min.as_secs_f64() + max.as_secs_f64()) / 2.0,
            // Mean distance between two uniform points of the unit square ≈ 0.5214.
            LatencySpec::Euclidean { base, per_unit } => base.as_secs_f64() + 0.5214 * per_unit.as_secs_f64(),
            LatencySpec::TransitStub(ts) => ts.mean_s(),
            LatencySpec::Matrix(m) => m.matrix().map_or(f64::NAN, |m| m.mean_one_way_s()),
        }
    }

    /// Checks the values that the types alone cannot: min ≤ max, the sizes of a
    /// hierarchy. Files are checked by [`LatencySpec::load`].
    pub fn check(&self) -> Result<(), LatencyError> {
        match self {
            LatencySpec::Uniform { min, max } if min > max => {
                Err(LatencyError { key: "max", message: format!("max {max} is below min {min}; expected min ≤ max") })
            }
            LatencySpec::TransitStub(ts) => ts.check(),
            _ => Ok(()),
        }
    }

    /// Reads and checks the model's file, if it has one, relative to `base` (the
    /// scenario's folder), through `cache` so that a file is read once however
    /// many sweep points name it.
    pub fn load(&mut self, base: &Path, cache: &mut MatrixCache) -> Result<(), LatencyError> {
        match self {
            LatencySpec::Matrix(m) => m.load(base, cache),
            _ => Ok(()),
        }
    }
}

/// The latency models `peergrid list` shows.
pub const LATENCY_MODELS: [(&str, &str); 5] = [
    ("constant", "value = \"20ms\": every message takes exactly this long (the default)"),
    ("uniform", "min, max: each message draws its latency uniformly from [min, max]"),
    ("euclidean", "base, per_unit: nodes placed uniformly in a unit square; latency = base + distance × per_unit"),
    ("transit-stub", transit_stub::SUMMARY),
    ("matrix", matrix::SUMMARY),
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
    /// Each node on a stub router of a transit-stub hierarchy.
    TransitStub(TransitStub),
    /// Each node on a host of a measured round-trip-time matrix.
    Matrix(MatrixUnderlay),
}

impl Underlay {
    /// The latency model `spec` describes on `nodes` nodes, drawing where nodes sit
    /// from `rng` if it needs to; a matrix not yet loaded is read relative to `base`.
    pub fn new(spec: &LatencySpec, nodes: usize, base: &Path, rng: &mut ChaCha8Rng) -> Result<Underlay, LatencyError> {
        Ok(match spec {
            LatencySpec::Constant { value } => Underlay::Constant(*value),
            LatencySpec::Uniform { min, max } => Underlay::Uniform(min.0, max.0),
            LatencySpec::Euclidean { base, per_unit } => Underlay::Euclidean {
                base: base.0,
                per_unit: per_unit.0 as f64,
                position: (0..nodes).map(|_| (rng.random::<f32>(), rng.random::<f32>())).collect(),
            },
            LatencySpec::TransitStub(ts) => {
                ts.check()?;
                Underlay::TransitStub(TransitStub::new(ts, nodes, rng))
            }
            LatencySpec::Matrix(m) => {
                let mut m = m.clone();
                m.load(base, &mut MatrixCache::default())?;
                Underlay::Matrix(MatrixUnderlay::new(&m, rng)?)
            }
        })
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
            Underlay::TransitStub(ts) => ts.latency(a, b),
            Underlay::Matrix(m) => m.latency(a, b),
        }
    }

    /// Bytes the model holds for the run: per-node positions or routers, the
    /// host permutation (a matrix itself is shared between runs and not counted).
    pub fn bytes(&self) -> usize {
        match self {
            Underlay::Constant(_) | Underlay::Uniform(..) => 0,
            Underlay::Euclidean { position, .. } => position.capacity() * std::mem::size_of::<(f32, f32)>(),
            Underlay::TransitStub(ts) => ts.bytes(),
            Underlay::Matrix(m) => m.bytes(),
        }
    }
}
