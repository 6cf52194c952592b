//! The discrete-event engine: the event list and the run loop that delivers
//! messages through per-node FIFO service queues. The ground types a protocol
//! needs beside [`Ctx`] are re-exported here from [`crate::base`].

mod jobs;
mod live;
pub mod queue;
pub mod sim;

pub use crate::base::{NodeId, QueryId, Rate, ResourceType, ServiceTime, SimTime, parse_duration, parse_rate};
pub use queue::{EventQueue, FifoRadixQueue, HeapQueue, RadixQueue};
pub use sim::{Ahead, Ctx, Message, Protocol, Repair, RunMemory, RunOutput, SimConfig, Simulation, TimerId};
