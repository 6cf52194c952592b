//! Ground types every layer shares and that depend on nothing else of the crate:
//! simulated time and rates with their parsing, node, query and resource ids, the
//! seeded random streams, service-time distributions, and the reading of TOML
//! values (key paths, their lines, serde's errors in plain words).

pub mod choice;
pub mod locate;
pub mod prefetch;
pub mod rng;
pub mod service;
pub mod time;
pub mod wording;

pub use choice::Choice;
pub use prefetch::{prefetch, prefetch_range, prefetch_row, prefetch_whole};
pub use service::ServiceTime;
pub use time::{Rate, SimTime, parse_duration, parse_rate};
pub use wording::{KeyError, from_serde};

/// A node of the overlay, an index into every per-node `Vec`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The node's position in per-node vectors.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A query, numbered in issue order within one run.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct QueryId(pub u32);

impl QueryId {
    /// The query's position in per-query vectors.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A resource type, 0..types.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct ResourceType(pub u32);
