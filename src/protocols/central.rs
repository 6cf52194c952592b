//! `central`: a Napster-style central index, or a single Globus MDS-1 server.
//!
//! Every node's resources are registered with one index node: by default the index
//! starts with all registrations in place (a system that has been running), or, with
//! `register_at_start = true`, every node sends a Register message at time zero and
//! the index must serve that storm first. A query goes
//! straight (one underlay hop, not through the overlay) to the index, which answers
//! with the number of registered holders other than the origin. Every query meets
//! the index's FIFO service queue (the index node's own queries too, without a
//! message), so under Poisson load with exponential service the
//! index is an M/M/1 queue: mean response time 1/(μ − λ) plus the round trip.
//!
//! Under churn and faults, as Napster's server and its clients behave: a node that
//! joins registers with the index, one that leaves gracefully withdraws its
//! registration, and one that crashes stays registered (the index has no way to
//! tell), so answers name down holders: such an answer is stale, and only its live
//! holders count as hits. The index is the role `index`. Its crash is an outage:
//! lookups sent to it are lost, and its registrations are gone with it. Clients
//! notice their lost connection and retry every `retry` (each at its own phase);
//! the first retry that finds the index up registers again, so a recovered index
//! refills as its clients come back.
//!
//! Under changing resources (`[resources] changes`), as a Napster client tells the
//! server when its shared files change: a node whose resources change sends an
//! Update to the index at once (the index node's own entry changes in place). The
//! index records each node's resources as of when the node sent them, so between a
//! change and the Update's arrival (latency and the index's queue) an answer may
//! name a copy that has moved away, or miss one that appeared. An answer that names
//! at least one holder is stale if one of them no longer matches (changed, or
//! down); only the matching ones count as hits.

use serde::Deserialize;

use super::{MemoryPart, ParamDoc, ParamError, ProtocolInfo, ProtocolParams, RunFigures, TCP_IP_BYTES};
use rand::RngExt;

use crate::engine::{Ctx, Message, NodeId, Protocol, QueryId, ResourceType, ServiceTime, SimTime};
use crate::world::World;

/// `[protocol]` with `name = "central"`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The node that holds the index.
    #[serde(default)]
    pub index: u32,
    /// The index node's own service time; `None` takes `network.service_time`.
    #[serde(default)]
    pub index_service_time: Option<ServiceTime>,
    /// Nodes register by message at time zero instead of starting registered.
    #[serde(default)]
    pub register_at_start: bool,
    /// How often a client whose connection to the index broke tries again.
    #[serde(default = "thirty_seconds")]
    pub retry: SimTime,
}

fn thirty_seconds() -> SimTime {
    SimTime::from_secs(30)
}

impl Default for Params {
    fn default() -> Self {
        Params { index: 0, index_service_time: None, register_at_start: false, retry: thirty_seconds() }
    }
}

impl ProtocolParams for Params {
    type Protocol = Central;

    const INFO: ProtocolInfo = ProtocolInfo {
        name: "central",
        source: "Napster; Globus MDS-1",
        summary: "one index node that every node registers with and every query asks",
        uses_overlay: false,
        extra_columns: &[],
        roles: &[("index", "the node that holds the index")],
        keeps_state: false,
        params: &[
            ParamDoc::new("index", "0", "the node that holds the index"),
            ParamDoc::new(
                "index_service_time",
                "network.service_time",
                "service time of the index node, in any form of network.service_time",
            ),
            ParamDoc::new(
                "register_at_start",
                "false",
                "every node sends a Register at time zero, instead of starting registered",
            ),
            ParamDoc::new(
                "retry",
                "30s",
                "under churn or faults: how often a client whose connection to the index broke tries again",
            ),
        ],
    };

    fn build(&self, world: &World) -> Central {
        let index = NodeId(self.index);
        let mut registered = vec![NEVER; world.nodes()];
        registered[index.index()] = 0;
        if !self.register_at_start {
            registered.fill(0);
        }
        Central {
            index,
            service: self.index_service_time,
            register: self.register_at_start,
            registered,
            retry: self.retry,
            retrying: Vec::new(),
        }
    }

    fn validate(&self, run: &RunFigures) -> Result<(), ParamError> {
        if self.retry == SimTime::ZERO {
            return Err(ParamError::new("retry", "expected a period above zero, such as \"30s\""));
        }
        if self.index as usize >= run.nodes {
            return Err(ParamError::new(
                "index",
                format!("node {} does not exist; expected 0 ≤ index < nodes = {}", self.index, run.nodes),
            ));
        }
        Ok(())
    }

    /// The registration table and the lookups (or registrations) waiting at the index.
    fn memory(&self, run: &RunFigures) -> Vec<MemoryPart> {
        // In the worst case (overload) every query of a timeout's worth waits at the index.
        vec![MemoryPart::new(
            "index state and waiting requests",
            "workload.rate, workload.timeout, network.nodes",
            run.nodes as f64 * 65.0 + run.live_queries() * 64.0,
        )]
    }
}

/// What nodes and the index send each other.
#[derive(Clone, Copy, Debug)]
pub enum Msg {
    /// A node registers its resources with the index (`up`), or withdraws them
    /// as it leaves.
    Register {
        /// Registering rather than withdrawing.
        up: bool,
    },
    /// A registered node's resources changed: its list as of `sent`.
    Update {
        /// When the node sent it, which is when its list was taken.
        sent: SimTime,
    },
    /// A query, sent straight to the index.
    Lookup {
        /// The query being looked up.
        q: QueryId,
        /// The resource type the origin wants.
        want: ResourceType,
    },
    /// The index's reply to the origin.
    Answer {
        /// The query it answers.
        q: QueryId,
        /// Holders it names that really match: they hold the type now and are up.
        found: u32,
        /// Holders it names, stale ones included: the answer's length.
        named: u32,
    },
}

/// Bytes of a Napster message without TCP/IP: every message has a 4-byte header
/// (length and type); a search request's text (`FILENAME CONTAINS "..."
/// MAX_RESULTS 100` with a 32-byte name) is 60 bytes, a shared-file notification
/// (name, MD5, size, bitrate, frequency, length) 80, and a search response names
/// one holder in 120 (the file's fields and the holder's nick, address and link
/// speed); an answer ends with a 4-byte end-of-search message.
const NAPSTER_HEADER: u32 = 4;
const SEARCH_BYTES: u32 = 60;
const FILE_BYTES: u32 = 80;
const RESULT_BYTES: u32 = 120;

impl Message for Msg {
    const KINDS: &'static [&'static str] = &["register", "lookup", "answer", "update"];
    /// A registration or update sends one file notification (a node holds about
    /// one copy in the shipped scenarios); an answer one response per holder named.
    fn size(&self) -> Option<u32> {
        Some(
            TCP_IP_BYTES
                + match *self {
                    Msg::Register { .. } | Msg::Update { .. } => NAPSTER_HEADER + FILE_BYTES,
                    Msg::Lookup { .. } => NAPSTER_HEADER + SEARCH_BYTES,
                    Msg::Answer { named, .. } => named * (NAPSTER_HEADER + RESULT_BYTES) + NAPSTER_HEADER,
                },
        )
    }
    fn kind(&self) -> usize {
        match self {
            Msg::Register { .. } => 0,
            Msg::Lookup { .. } => 1,
            Msg::Answer { .. } => 2,
            Msg::Update { .. } => 3,
        }
    }
    fn query(&self) -> Option<QueryId> {
        match *self {
            Msg::Register { .. } | Msg::Update { .. } => None,
            Msg::Lookup { q, .. } | Msg::Answer { q, .. } => Some(q),
        }
    }
}

/// The central index.
pub struct Central {
    index: NodeId,
    service: Option<ServiceTime>,
    /// Whether nodes register by message at time zero.
    register: bool,
    /// Per node, the time its registered list was taken, [`NEVER`] when the index
    /// holds no registration of it.
    registered: Vec<u64>,
    /// The period of a client's retries while its connection is broken.
    retry: SimTime,
    /// Per node, whether it is retrying (empty until the index first goes down).
    retrying: Vec<bool>,
}

/// No registration.
const NEVER: u64 = u64::MAX;

/// A client's retry of its broken connection to the index.
#[derive(Clone, Copy, Debug)]
pub struct Retry;

impl Central {
    /// The holders of `want` other than `origin` that the index names (their
    /// registered list has it), and how many of them really match now (hold it and
    /// are up).
    fn lookup(&self, ctx: &Ctx<'_, Self>, origin: NodeId, want: ResourceType) -> (u32, u32) {
        let mut named = 0;
        let mut matching = 0;
        for &v in ctx.ever_held(want) {
            let since = self.registered[v.index()];
            if v != origin && since != NEVER && ctx.held_at(v, want, SimTime(since)) {
                named += 1;
                matching += (ctx.is_up(v) && ctx.holds(v, want)) as u32;
            }
        }
        (named, matching)
    }

    /// The index records `from`'s list as of `sent`. An Update overtaken in flight
    /// by a newer one changes nothing, nor does one from a node it holds no
    /// registration of (one that has withdrawn, or whose registration is on its
    /// way and will carry the list as it then is).
    fn record(&mut self, from: NodeId, sent: SimTime) {
        let r = &mut self.registered[from.index()];
        if *r != NEVER {
            *r = (*r).max(sent.0);
        }
    }

    /// Starts `v`'s retries, at a phase of its own, unless it is retrying already.
    fn retry_from(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId) {
        if self.retrying.is_empty() {
            self.retrying = vec![false; ctx.world.nodes()];
        }
        if !std::mem::replace(&mut self.retrying[v.index()], true) {
            let phase = SimTime(ctx.rng().random_range(1..=self.retry.0));
            ctx.set_timer(v, phase, Retry);
        }
    }
}

impl Protocol for Central {
    type Msg = Msg;
    type Timer = Retry;

    fn start(&mut self, ctx: &mut Ctx<'_, Self>) {
        if let Some(s) = self.service {
            ctx.set_service_time(self.index, s);
        }
        ctx.answers_from_stored_state();
        if ctx.dynamic() {
            // Registrations of nodes that start down were never made.
            for v in (0..ctx.world.nodes() as u32).map(NodeId) {
                if !ctx.is_up(v) {
                    self.registered[v.index()] = NEVER;
                }
            }
        }
        if !self.register {
            return;
        }
        for v in 0..ctx.world.nodes() as u32 {
            if NodeId(v) != self.index {
                ctx.send(NodeId(v), self.index, Msg::Register { up: true });
            }
        }
    }

    fn query(&mut self, ctx: &mut Ctx<'_, Self>, q: QueryId, origin: NodeId, want: ResourceType) {
        if origin == self.index {
            // The index's own queries wait in its queue like everyone else's.
            ctx.submit(origin, Msg::Lookup { q, want });
        } else {
            ctx.send(origin, self.index, Msg::Lookup { q, want });
        }
    }

    fn state_bytes(&self) -> usize {
        self.registered.capacity() * 8 + self.retrying.capacity()
    }

    fn message(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, from: NodeId, msg: Msg) {
        match msg {
            // A registration carries the list as it is when the index takes it in.
            Msg::Register { up: true } => self.registered[from.index()] = ctx.now().0,
            Msg::Register { up: false } => self.registered[from.index()] = NEVER,
            Msg::Update { sent } => self.record(from, sent),
            Msg::Lookup { q, want } => {
                ctx.report_reached(q);
                let (named, found) = self.lookup(ctx, from, want);
                if named > 0 {
                    ctx.report_answer(q, found < named);
                }
                if from == at {
                    ctx.report_hit(q, 0, found);
                } else {
                    ctx.send(at, from, Msg::Answer { q, found, named });
                }
            }
            Msg::Answer { q, found, .. } => ctx.report_hit(q, 1, found),
        }
    }

    fn timer(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, _: Retry) {
        if ctx.is_up(self.index) {
            self.retrying[at.index()] = false;
            ctx.send(at, self.index, Msg::Register { up: true });
        } else {
            ctx.set_timer(at, self.retry, Retry);
        }
    }

    fn joined(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, _: Option<NodeId>) {
        if !self.retrying.is_empty() {
            self.retrying[at.index()] = false;
        }
        if at == self.index {
            // It comes back empty but for itself; its clients find it by their retries.
            self.registered[at.index()] = ctx.now().0;
        } else if ctx.is_up(self.index) {
            ctx.send(at, self.index, Msg::Register { up: true });
        } else {
            self.retry_from(ctx, at);
        }
    }

    fn leaving(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId) {
        if at != self.index {
            ctx.send(at, self.index, Msg::Register { up: false });
        }
    }

    fn crashed(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId) {
        if at != self.index {
            return;
        }
        // The index's table dies with it; every client's connection breaks.
        self.registered.fill(NEVER);
        for v in (0..ctx.world.nodes() as u32).map(NodeId) {
            if ctx.is_up(v) {
                self.retry_from(ctx, v);
            }
        }
    }

    fn changed(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId) {
        if v == self.index {
            self.registered[v.index()] = ctx.now().0;
        } else if self.retrying.get(v.index()) != Some(&true) {
            // A connected client tells the index; a down one sends nothing (and
            // registers its list as it then is when it comes back), nor does one
            // whose connection is broken.
            ctx.send(v, self.index, Msg::Update { sent: ctx.now() });
        }
    }

    fn role(&self, name: &str) -> Vec<NodeId> {
        if name == "index" { vec![self.index] } else { Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::{Rate, ServiceTime, SimConfig, SimTime};
    use crate::protocols::ProtocolSpec;
    use crate::validate::{central_mm1, world};
    use crate::workload::{Workload, WorkloadSpec};
    use crate::world::TopologySpec;

    #[test]
    fn an_overloaded_index_stops_the_run_when_its_backlog_outgrows_the_budget() {
        // 400 queries/s at an index that serves 200/s: its queue grows by 200 a second.
        let w = world(&TopologySpec::Ring {}, 100, 10, 10, 5, 1);
        let run = |max_pending: usize| {
            let cfg = SimConfig { max_pending, ..SimConfig::new(1, SimTime::from_secs(100)) };
            let params = super::Params {
                index_service_time: Some(ServiceTime::Constant(SimTime::from_millis(5))),
                ..Default::default()
            };
            let spec = WorkloadSpec { rate: Rate(400.0), ..Default::default() };
            ProtocolSpec::Central(params).run(&w, Workload::new(&spec, 100, 10, cfg.duration, 1), &cfg)
        };
        let unbounded = run(usize::MAX);
        assert_eq!(unbounded.overflow, None);
        assert!(unbounded.memory.peak_pending > 15_000, "{}", unbounded.memory.peak_pending);
        let bounded = run(5_000);
        let at = bounded.overflow.expect("stopped early").as_secs_f64();
        // 5,000 waiting lookups take about 25 s of growth.
        assert!((20.0..30.0).contains(&at), "stopped at {at} s");
        // A budget the run stays within changes nothing.
        assert_eq!(run(unbounded.memory.peak_pending + 2048).fingerprint, unbounded.fingerprint);
    }

    #[test]
    fn index_is_an_mm1_queue_at_half_load() {
        let crate::validate::Compared { got, want } = central_mm1(100.0, 200.0, 5).remote;
        assert!((got - want).abs() / want < 0.05, "mean response {got:.2} ms, M/M/1 says {want:.2} ms");
    }

    #[test]
    fn index_is_an_mm1_queue_at_high_load() {
        let crate::validate::Compared { got, want } = central_mm1(160.0, 200.0, 5).remote;
        assert!((got - want).abs() / want < 0.05, "mean response {got:.2} ms, M/M/1 says {want:.2} ms");
    }

    #[test]
    fn the_index_nodes_own_queries_wait_in_its_queue() {
        // About 1,500 queries from node 0 at 80% load: sojourn 25 ms, no round trip.
        let crate::validate::Compared { got, want } = central_mm1(160.0, 200.0, 5).local;
        assert!((got - want).abs() / want < 0.15, "mean response {got:.2} ms, M/M/1 sojourn {want:.2} ms");
    }

    #[test]
    fn a_moved_copy_is_stale_at_the_index_until_its_update_arrives() {
        use crate::dynamics::Dynamics;
        use crate::dynamics::changes::first_change_alone;
        use crate::engine::NodeId;
        use crate::workload::ScriptedQuery;
        use crate::world::{Changes, Resources};
        // Only node 5 holds type 0; its copy moves once, and the Update to the
        // index (node 0) takes the 20 ms of one hop. The index node's own queries
        // need no hop, so one 1 ms after the move meets the old entry.
        let mut w = world(&TopologySpec::Ring {}, 20, 20, 1, 0, 1);
        w.resources = Resources::from_holders(20, vec![vec![5]]);
        let changes = Changes { moves: Rate(0.005), ..Changes::default() };
        let (seed, moved, [_, to]) = first_change_alone(&changes, &w.resources, 20, SimTime::from_secs(3));
        let to = to.expect("a move touches two nodes");
        assert_ne!(to, NodeId(0), "this seed's move is to a client");
        let origin = 0;
        let (before, after) = (moved + SimTime::from_millis(1), moved + SimTime::from_millis(100));
        let spec = WorkloadSpec {
            rate: Rate(0.0),
            script: [before, after].iter().map(|&at| ScriptedQuery { at, origin, rtype: 0 }).collect(),
            ..Default::default()
        };
        let cfg = SimConfig {
            timeout: SimTime::from_secs(1),
            dynamics: Dynamics { changes, ..Dynamics::default() },
            ..SimConfig::new(seed, after + SimTime(1))
        };
        let out =
            ProtocolSpec::Central(super::Params::default()).run(&w, Workload::new(&spec, 20, 1, cfg.duration, 1), &cfg);
        let hits: Vec<u32> = out.recorder.queries.iter().map(|q| q.hits).collect();
        // Before the Update the index names node 5 (stale, no hit); after it, the new holder.
        assert_eq!(hits, [0, 1]);
        assert_eq!(out.metric("stale_answer_rate"), Some(0.5));
        // Node 5 and the new holder each tell the index.
        assert_eq!(out.metric("messages_update"), Some(2.0));
    }

    #[test]
    fn success_is_zero_while_the_index_is_down_and_comes_back_as_clients_retry() {
        use crate::dynamics::{Action, Dynamics, Fault, Victims};
        let w = world(&TopologySpec::Ring {}, 200, 10, 10, 5, 1);
        let s = SimTime::from_secs;
        let crash =
            Fault { at: s(30), action: Action::Crash { victims: Victims::Role("index".into()), recover: Some(s(60)) } };
        let cfg = SimConfig {
            timeout: s(5),
            dynamics: Dynamics { churn: None, faults: vec![crash], ..Dynamics::default() },
            ..SimConfig::new(1, s(100))
        };
        let params = super::Params { retry: s(10), ..Default::default() };
        let spec = WorkloadSpec { rate: Rate(50.0), ..Default::default() };
        let out = ProtocolSpec::Central(params).run(&w, Workload::new(&spec, 200, 10, cfg.duration, 1), &cfg);
        let rate = |from: f64, to: f64| {
            let q: Vec<_> =
                out.recorder.queries.iter().filter(|q| (from..to).contains(&q.issued.as_secs_f64())).collect();
            assert!(q.len() > 100, "{} queries in [{from}, {to})", q.len());
            q.iter().filter(|q| q.succeeded()).count() as f64 / q.len() as f64
        };
        assert_eq!(rate(0.0, 29.9), 1.0);
        assert_eq!(rate(30.0, 59.9), 0.0, "lookups to a crashed index are lost");
        // Every client has retried within 10 s of the recovery and registered again.
        assert_eq!(rate(71.0, 100.0), 1.0);
        assert!(rate(60.0, 70.0) < 1.0, "the index refills as its clients come back");
        // 200 nodes' lookups over 30 s went to a dead index.
        assert!(out.metric("messages_lost_dead").unwrap_or(0.0) > 1_000.0);
    }
}
