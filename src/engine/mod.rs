//! The discrete-event engine: integer time, the event list, random streams, and the
//! run loop that delivers messages through per-node FIFO service queues.

pub mod queue;
pub mod rng;
pub mod sim;
pub mod time;

pub use queue::{EventQueue, FifoRadixQueue, HeapQueue, RadixQueue};
pub use sim::{Ctx, Message, Protocol, RunMemory, RunOutput, ServiceTime, SimConfig, Simulation};
pub use time::{Rate, SimTime, parse_duration, parse_rate};

/// A node of the overlay, an index into every per-node `Vec`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct NodeId(pub u32);

impl NodeId {
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A query, numbered in issue order within one run.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct QueryId(pub u32);

impl QueryId {
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}
