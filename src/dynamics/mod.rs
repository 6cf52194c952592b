//! Dynamics: the world changing under a run. Churn (`[churn]`: sessions and
//! downtimes from distributions, or a replayed trace) and scripted faults
//! (`[[fault]]`: crashes, partitions, bursts of loss), and resources that change
//! (`[resources] changes`); and nodes that differ (`[[network.classes]]`: service
//! times, uplinks, nodes that never churn). This layer describes and draws them;
//! the engine applies them, owning which nodes are up and who holds what.

pub mod changes;
pub mod churn;
pub mod classes;
pub mod fault;
pub mod lifetime;

pub use changes::{ChangeKind, Holdings};
pub use churn::{Churn, ChurnSpec, NodeLifetimes, Source, Start, Trace};
pub use classes::{Assigned, ClassSpec, Classes, Uplink};
pub use fault::{Action, Choose, Fault, FaultSpec, Victims};
pub use lifetime::{Dist, Lifetime, LifetimeSpec};

use crate::world::Changes;

/// Everything that changes during a run; the default is a static world.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dynamics {
    /// Nodes coming and going, if the scenario has `[churn]`.
    pub churn: Option<Churn>,
    /// The `[[fault]]` entries, in file order.
    pub faults: Vec<Fault>,
    /// `[resources] changes`: how copies change; none by default.
    pub changes: Changes,
}

impl Dynamics {
    /// Whether every node stays up throughout: no churn, no faults. Churn whose
    /// sessions never end (`session.mean = "never"`) changes nothing. (Resources
    /// may still change.)
    pub fn is_static(&self) -> bool {
        let churn_free = match &self.churn {
            None => true,
            Some(Churn { source: Source::Distributions { session: Lifetime::Never, .. }, .. }) => true,
            Some(_) => false,
        };
        churn_free && self.faults.is_empty()
    }
}

/// The churn models `peergrid list` shows.
pub const CHURN_MODELS: [(&str, &str); 4] = [
    ("exponential", "mean (or scale, the same): memoryless sessions or downtimes"),
    ("weibull", "shape k, and mean or scale λ: P(X > x) = exp(-(x/λ)^k); k < 1 is heavy-tailed, as measured"),
    ("pareto", "shape α, and mean (α > 1) or scale β: shifted Pareto, P(X > x) = (1 + x/β)^-α"),
    ("lognormal", "shape σ, and mean or scale (the median): log X is normal"),
];
