//! The world of one run: the overlay, the underlay and the resources, built from
//! the scenario and the run seed before the first event.

pub mod attributes;
pub mod resources;
pub mod topology;
pub mod underlay;

use std::path::Path;

pub use attributes::{AttributeError, AttributeSpec, Attributes, Range};
pub use resources::{Changes, Placement, Replication, Resources, ResourcesSpec, Skew};
pub use topology::{Overlay, TopologyError, TopologySpec};
pub use underlay::{LatencyError, LatencySpec, Underlay};

use crate::base::rng::{Stream, stream};

/// Why a run's world cannot be built: its overlay or its underlay.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WorldError {
    /// A generator's parameters, a graph that came out wrong, or an edge file.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// A latency model's parameters or its matrix file.
    #[error(transparent)]
    Latency(#[from] LatencyError),
    /// The attribute file.
    #[error("{}", .0.message)]
    Attributes(AttributeError),
}

impl WorldError {
    /// The scenario key the error is about: `network.nodes`, `network.topology.…` or `network.latency.…`.
    pub fn key(&self) -> String {
        match self {
            WorldError::Topology(e) if e.key == "nodes" => "network.nodes".to_string(),
            WorldError::Topology(e) => format!("network.topology.{}", e.key),
            WorldError::Latency(e) => format!("network.latency.{}", e.key),
            WorldError::Attributes(e) => format!("resources.{}", e.key),
        }
    }

    /// What is wrong and what was expected.
    pub fn message(&self) -> &str {
        match self {
            WorldError::Topology(e) => &e.message,
            WorldError::Latency(e) => &e.message,
            WorldError::Attributes(e) => &e.message,
        }
    }
}

/// Everything static about one run's network.
#[derive(Clone, Debug)]
pub struct World {
    /// Who is linked to whom: the graph messages travel along.
    pub overlay: Overlay,
    /// How long a message takes between two nodes.
    pub underlay: Underlay,
    /// Which node holds which resource types.
    pub resources: Resources,
    /// With `[resources] attributes`: every node's values and the range
    /// queries, whose matching nodes are the holders of each type.
    pub attributes: Option<Attributes>,
}

impl World {
    /// Builds the world of a run; `base` resolves relative file paths (the scenario's folder).
    pub fn build(
        topology: &TopologySpec,
        nodes: Option<u32>,
        allow_disconnected: bool,
        latency: &LatencySpec,
        resources: &ResourcesSpec,
        base: &Path,
        seed: u64,
    ) -> Result<World, WorldError> {
        let overlay = topology::build(topology, nodes, allow_disconnected, base, &mut stream(seed, Stream::Topology))?;
        let n = overlay.nodes();
        let underlay = Underlay::new(latency, n, base, &mut stream(seed, Stream::Placement))?;
        let mut rng = stream(seed, Stream::Resources);
        if !resources.uses_attributes() {
            let resources = Resources::place(resources, n, &mut rng);
            return Ok(World { overlay, underlay, resources, attributes: None });
        }
        let table = match &resources.attribute_file {
            Some(path) => Some(attributes::read_table(&base.join(path)).map_err(WorldError::Attributes)?),
            None => None,
        };
        let source = match &table {
            Some(t) => attributes::Source::Table(t),
            None => attributes::Source::Drawn(&resources.attributes),
        };
        let a = Attributes::generate(
            source,
            n,
            resources.types,
            resources.query_attributes,
            resources.selectivity,
            &mut rng,
        );
        let holders = Resources::from_holders(n, a.matches(n));
        Ok(World { overlay, underlay, resources: holders, attributes: Some(a) })
    }

    /// How many nodes the overlay has.
    pub fn nodes(&self) -> usize {
        self.overlay.nodes()
    }
}
