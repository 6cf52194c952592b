//! The protocol registry. Each protocol is one file in this folder: its parameters,
//! node state, messages, handlers and tests. Adding one = the file, a variant of
//! [`ProtocolSpec`], a row of [`PROTOCOLS`] and an arm in [`ProtocolSpec::run`].

pub mod aggregation;
pub mod central;
pub mod flooding;
pub mod forwarding;
pub mod gridnut;
pub mod hierarchical;
pub mod random_walk;
pub mod routes;
pub mod superpeer;

use serde::de::DeserializeOwned;

use crate::engine::{Message, Protocol, RunOutput, SimConfig, SimTime, Simulation};
use crate::scenario::Scenario;
use crate::workload::Workload;
use crate::world::World;

/// A protocol chosen by `protocol.name`, with its typed parameters.
#[derive(Clone, Debug, PartialEq)]
pub enum ProtocolSpec {
    Central(central::Params),
    Flooding(flooding::Params),
    Gridnut(gridnut::Params),
    Aggregation(aggregation::Params),
    Superpeer(superpeer::Params),
    RandomWalk(random_walk::Params),
    Hierarchical(hierarchical::Params),
    Forwarding(forwarding::Params),
}

/// What `peergrid list` and error messages say about a protocol.
pub struct ProtocolInfo {
    pub name: &'static str,
    pub source: &'static str,
    pub summary: &'static str,
    /// Result columns of its own besides `messages_<kind>`.
    pub extra_columns: &'static [&'static str],
    /// (key, default, meaning)
    pub params: &'static [(&'static str, &'static str, &'static str)],
}

pub const PROTOCOLS: [ProtocolInfo; 8] = [
    central::INFO,
    hierarchical::INFO,
    flooding::INFO,
    gridnut::INFO,
    random_walk::INFO,
    forwarding::INFO,
    superpeer::INFO,
    aggregation::INFO,
];

/// A parameter that is wrong: its key below `protocol` and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("protocol.{key}: {message}")]
pub struct ParamError {
    pub key: String,
    pub message: String,
}

impl ParamError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ParamError { key: key.into(), message: message.into() }
    }
}

fn params<T: DeserializeOwned>(table: &toml::Table) -> Result<T, ParamError> {
    let mut rest = table.clone();
    rest.remove("name");
    let value = toml::Value::Table(rest);
    serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        let (path, message) = crate::scenario::error::from_serde(&e, &value);
        ParamError::new(path, message)
    })
}

impl ProtocolSpec {
    /// Reads `[protocol]`: `name` picks the protocol, the other keys are its parameters.
    pub fn from_table(table: &toml::Table) -> Result<ProtocolSpec, ParamError> {
        let names = || PROTOCOLS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ");
        let name = match table.get("name") {
            Some(toml::Value::String(s)) => s.as_str(),
            Some(other) => {
                return Err(ParamError::new(
                    "name",
                    format!("expected a protocol name (one of {}), found {other}", names()),
                ));
            }
            None => {
                return Err(ParamError::new("name", format!("missing; expected one of {}", names())));
            }
        };
        match name {
            "central" => Ok(ProtocolSpec::Central(params(table)?)),
            "flooding" => Ok(ProtocolSpec::Flooding(params(table)?)),
            "gridnut" => Ok(ProtocolSpec::Gridnut(params(table)?)),
            "aggregation" => Ok(ProtocolSpec::Aggregation(params(table)?)),
            "superpeer" => Ok(ProtocolSpec::Superpeer(params(table)?)),
            "random-walk" => Ok(ProtocolSpec::RandomWalk(params(table)?)),
            "hierarchical" => Ok(ProtocolSpec::Hierarchical(params(table)?)),
            "forwarding" => Ok(ProtocolSpec::Forwarding(params(table)?)),
            _ => Err(ParamError::new("name", format!("unknown protocol \"{name}\"; expected one of {}", names()))),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            ProtocolSpec::Central(_) => "central",
            ProtocolSpec::Flooding(_) => "flooding",
            ProtocolSpec::Gridnut(_) => "gridnut",
            ProtocolSpec::Aggregation(_) => "aggregation",
            ProtocolSpec::Superpeer(_) => "superpeer",
            ProtocolSpec::RandomWalk(_) => "random-walk",
            ProtocolSpec::Hierarchical(_) => "hierarchical",
            ProtocolSpec::Forwarding(_) => "forwarding",
        }
    }

    /// Result columns this protocol adds: `messages_<kind>` per message kind, then its own.
    pub fn columns(&self) -> Vec<String> {
        let (kinds, info) = match self {
            ProtocolSpec::Central(_) => (<central::Msg as Message>::KINDS, &central::INFO),
            ProtocolSpec::Flooding(_) => (<flooding::Msg as Message>::KINDS, &flooding::INFO),
            ProtocolSpec::Gridnut(_) => (<gridnut::Msg as Message>::KINDS, &gridnut::INFO),
            ProtocolSpec::Aggregation(_) => (<aggregation::Msg as Message>::KINDS, &aggregation::INFO),
            ProtocolSpec::Superpeer(_) => (<superpeer::Msg as Message>::KINDS, &superpeer::INFO),
            ProtocolSpec::RandomWalk(_) => (<random_walk::Msg as Message>::KINDS, &random_walk::INFO),
            ProtocolSpec::Hierarchical(_) => (<hierarchical::Msg as Message>::KINDS, &hierarchical::INFO),
            ProtocolSpec::Forwarding(_) => (<forwarding::Msg as Message>::KINDS, &forwarding::INFO),
        };
        kinds.iter().map(|k| format!("messages_{k}")).chain(info.extra_columns.iter().map(|c| c.to_string())).collect()
    }

    /// The protocol's own memory per run: (what, keys that shrink it, bytes).
    pub fn memory(&self, s: &Scenario) -> Vec<(&'static str, &'static str, f64)> {
        match self {
            ProtocolSpec::Central(_) => central::memory(s),
            ProtocolSpec::Flooding(p) => p.memory(s),
            ProtocolSpec::Gridnut(p) => p.memory(s),
            ProtocolSpec::Aggregation(p) => p.memory(s),
            ProtocolSpec::Superpeer(p) => p.memory(s),
            ProtocolSpec::RandomWalk(p) => p.memory(s),
            ProtocolSpec::Hierarchical(p) => p.memory(s),
            ProtocolSpec::Forwarding(p) => p.memory(s),
        }
    }

    /// Checks the parameters against the network size and the run's duration.
    pub fn validate(&self, nodes: usize, duration: SimTime) -> Result<(), ParamError> {
        match self {
            ProtocolSpec::Central(p) => p.validate(nodes),
            ProtocolSpec::Flooding(p) => p.validate(nodes),
            ProtocolSpec::Gridnut(p) => p.validate(nodes),
            ProtocolSpec::Aggregation(p) => p.validate(duration),
            ProtocolSpec::Superpeer(p) => p.validate(nodes),
            ProtocolSpec::RandomWalk(p) => p.validate(nodes),
            ProtocolSpec::Hierarchical(p) => p.validate(),
            ProtocolSpec::Forwarding(p) => p.validate(nodes),
        }
    }

    /// Runs one simulation of this protocol.
    pub fn run(&self, world: &World, workload: Workload, config: &SimConfig) -> RunOutput {
        match self {
            ProtocolSpec::Central(p) => simulate(world, central::Central::new(p, world), workload, config),
            ProtocolSpec::Flooding(p) => simulate(world, flooding::Flooding::new(p, world), workload, config),
            ProtocolSpec::Gridnut(p) => simulate(world, gridnut::Gridnut::new(p, world), workload, config),
            ProtocolSpec::Aggregation(p) => simulate(world, aggregation::Aggregation::new(p, world), workload, config),
            ProtocolSpec::Superpeer(p) => simulate(world, superpeer::Superpeer::new(p, world), workload, config),
            ProtocolSpec::RandomWalk(p) => simulate(world, random_walk::RandomWalk::new(p, world), workload, config),
            ProtocolSpec::Hierarchical(p) => {
                simulate(world, hierarchical::Hierarchical::new(p, world), workload, config)
            }
            ProtocolSpec::Forwarding(p) => simulate(world, forwarding::Forwarding::new(p, world), workload, config),
        }
    }
}

fn simulate<P: Protocol>(world: &World, protocol: P, workload: Workload, config: &SimConfig) -> RunOutput {
    Simulation::new(world, protocol, workload, config).run()
}
