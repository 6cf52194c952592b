//! # peergrid
//!
//! A deterministic discrete-event simulator for peer-to-peer and grid overlays: how
//! do resource-discovery designs — a central index, an MDS-2 hierarchy, Gnutella
//! flooding and its grid-service variant Gridnut, random walks, request forwarding,
//! super-peers — behave as a grid grows from tens to millions of nodes, and where
//! does each one break?
//!
//! ## A scenario
//! A researcher writes a TOML scenario: network size, overlay topology, latency,
//! resources, the query workload and the protocol, plus an optional `[sweep]` over
//! any key. `peergrid run scenario.toml` expands the sweep × replicates into runs,
//! executes them in parallel (each run single-threaded and seeded from
//! (master seed, point, replicate)), and writes CSV files and plots.
//!
//! ## How a run flows
//! [`scenario`] parses and validates → [`experiment`] derives each run's seed →
//! [`world`] builds the overlay (CSR), underlay and resources → [`engine`] runs
//! the event loop against one [`protocols`] implementation → [`metrics`] turns the
//! record into result columns → [`output`] writes the folder → [`report`] plots.
//!
//! Time is an integer number of nanoseconds ([`engine::SimTime`]); events are
//! ordered by (time, insertion sequence); every node serves its incoming messages
//! one at a time through a FIFO queue with a service time, which is what makes a
//! central server a bottleneck under load.
//!
//! ## Writing a protocol
//! A protocol is a type implementing [`engine::Protocol`]: its own message enum
//! (implementing [`engine::Message`] for accounting), a timer type, and handlers
//! for start, query, message and timer. Everything it can do goes through
//! [`engine::Ctx`]. This one asks one random neighbour, which answers if it holds
//! the resource:
//!
//! ```
//! use peergrid::engine::*;
//! use rand::RngExt;
//!
//! #[derive(Clone, Copy)]
//! enum Msg { Ask { q: QueryId, want: ResourceType }, Found { q: QueryId } }
//!
//! impl Message for Msg {
//!     const KINDS: &'static [&'static str] = &["ask", "found"];
//!     fn kind(&self) -> usize { match self { Msg::Ask { .. } => 0, Msg::Found { .. } => 1 } }
//!     fn query(&self) -> Option<QueryId> { match *self { Msg::Ask { q, .. } | Msg::Found { q } => Some(q) } }
//! }
//!
//! struct AskOne;
//!
//! impl Protocol for AskOne {
//!     type Msg = Msg;
//!     type Timer = ();
//!     fn query(&mut self, ctx: &mut Ctx<'_, Self>, q: QueryId, origin: NodeId, want: ResourceType) {
//!         // The neighbours borrow the world, not the context.
//!         let neighbours = ctx.neighbours(origin);
//!         let to = neighbours[ctx.rng().random_range(0..neighbours.len())];
//!         ctx.send(origin, to, Msg::Ask { q, want });
//!     }
//!     fn message(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, from: NodeId, msg: Msg) {
//!         match msg {
//!             Msg::Ask { q, want } if ctx.holds(at, want) => ctx.send(at, from, Msg::Found { q }),
//!             Msg::Ask { .. } => {}
//!             Msg::Found { q } => ctx.report_hit(q, 1, 1),
//!         }
//!     }
//! }
//!
//! // Run it on 100 nodes of a 4-regular overlay, 20 queries/s for a minute.
//! let plan = peergrid::scenario::plan_from_str(r#"
//!     name = "ask-one"
//!     duration = "60s"
//!     [network]
//!     nodes = 100
//!     topology = { kind = "random-regular", degree = 4 }
//!     [resources]
//!     types = 10
//!     replicas = 20
//!     [workload]
//!     rate = "20/s"
//!     [protocol]
//!     name = "flooding"
//! "#, "inline.toml", std::path::Path::new("."), &[], None).unwrap();
//! let s = &plan.points[0].scenario;
//! let world = peergrid::world::World::build(&s.network.topology, s.network.nodes,
//!     s.network.allow_disconnected, &s.network.latency, &s.resources, &plan.base_dir, 1).unwrap();
//! let workload = peergrid::workload::Workload::new(&s.workload, world.nodes(), 10, s.duration, 1);
//! let out = Simulation::new(&world, AskOne, workload, &s.sim_config(1)).run();
//! let ok = out.recorder.measured().filter(|q| q.succeeded()).count();
//! // Each neighbour holds a given type with probability 20/100.
//! assert!(ok > 100 && ok < 400, "{ok}");
//! ```
//!
//! To make it a protocol that scenario files can name, give it a `Params` type
//! implementing [`protocols::ProtocolParams`] (its keys, the text `peergrid list`
//! shows, its constructor, validation and memory estimate) and add one line to
//! the `registry!` call in src/protocols/mod.rs; see ARCHITECTURE.md.

#![warn(missing_docs)]

pub mod base;
pub mod bench;
pub mod cli;
pub mod compute;
pub mod dynamics;
pub mod engine;
pub mod experiment;
pub mod metrics;
pub mod output;
pub mod protocols;
pub mod report;
pub mod scenario;
pub mod validate;
pub mod workload;
pub mod world;

pub use base::{NodeId, QueryId, SimTime};
