//! The world of one run: the overlay, the underlay and the resources, built from
//! the scenario and the run seed before the first event.

pub mod resources;
pub mod topology;
pub mod underlay;

use std::path::Path;

pub use resources::{Placement, Replication, Resources, ResourcesSpec, Skew};
pub use topology::{Overlay, TopologyError, TopologySpec};
pub use underlay::{LatencyError, LatencySpec, Underlay};

use crate::base::rng::{Stream, stream};

/// Everything static about one run's network.
#[derive(Clone, Debug)]
pub struct World {
    /// Who is linked to whom: the graph messages travel along.
    pub overlay: Overlay,
    /// How long a message takes between two nodes.
    pub underlay: Underlay,
    /// Which node holds which resource types.
    pub resources: Resources,
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
    ) -> Result<World, TopologyError> {
        let overlay = topology::build(topology, nodes, allow_disconnected, base, &mut stream(seed, Stream::Topology))?;
        let n = overlay.nodes();
        let underlay = Underlay::new(latency, n, &mut stream(seed, Stream::Placement));
        let resources = Resources::place(resources, n, &mut stream(seed, Stream::Resources));
        Ok(World { overlay, underlay, resources })
    }

    /// How many nodes the overlay has.
    pub fn nodes(&self) -> usize {
        self.overlay.nodes()
    }
}
