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

use serde::Deserialize;

use super::{MemoryPart, ParamDoc, ParamError, ProtocolInfo, ProtocolParams, RunFigures};
use crate::engine::{Ctx, Message, NodeId, Protocol, QueryId, ResourceType, ServiceTime};
use crate::world::World;

/// `[protocol]` with `name = "central"`.
#[derive(Deserialize, Clone, Debug, PartialEq, Default)]
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
}

impl ProtocolParams for Params {
    type Protocol = Central;

    const INFO: ProtocolInfo = ProtocolInfo {
        name: "central",
        source: "Napster; Globus MDS-1",
        summary: "one index node that every node registers with and every query asks",
        uses_overlay: false,
        extra_columns: &[],
        roles: &[],
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
        ],
    };

    fn build(&self, world: &World) -> Central {
        let index = NodeId(self.index);
        let mut registered = vec![false; world.nodes()];
        registered[index.index()] = true;
        if !self.register_at_start {
            registered.fill(true);
        }
        Central { index, service: self.index_service_time, register: self.register_at_start, registered }
    }

    fn validate(&self, run: &RunFigures) -> Result<(), ParamError> {
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
    /// A node registers its resources with the index.
    Register,
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
        /// Registered holders of the type other than the origin.
        found: u32,
    },
}

impl Message for Msg {
    const KINDS: &'static [&'static str] = &["register", "lookup", "answer"];
    fn kind(&self) -> usize {
        match self {
            Msg::Register => 0,
            Msg::Lookup { .. } => 1,
            Msg::Answer { .. } => 2,
        }
    }
    fn query(&self) -> Option<QueryId> {
        match *self {
            Msg::Register => None,
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
    /// Which nodes' registrations the index has processed.
    registered: Vec<bool>,
}

impl Central {
    fn lookup(&self, world: &World, origin: NodeId, want: ResourceType) -> u32 {
        world.resources.holders(want).iter().filter(|&&v| v != origin && self.registered[v.index()]).count() as u32
    }
}

impl Protocol for Central {
    type Msg = Msg;
    type Timer = ();

    fn start(&mut self, ctx: &mut Ctx<'_, Self>) {
        if let Some(s) = self.service {
            ctx.set_service_time(self.index, s);
        }
        if !self.register {
            return;
        }
        for v in 0..ctx.world.nodes() as u32 {
            if NodeId(v) != self.index {
                ctx.send(NodeId(v), self.index, Msg::Register);
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
        self.registered.capacity()
    }

    fn message(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, from: NodeId, msg: Msg) {
        match msg {
            Msg::Register => self.registered[from.index()] = true,
            Msg::Lookup { q, want } => {
                ctx.report_reached(q);
                let found = self.lookup(ctx.world, from, want);
                if from == at {
                    ctx.report_hit(q, 0, found);
                } else {
                    ctx.send(at, from, Msg::Answer { q, found });
                }
            }
            Msg::Answer { q, found } => ctx.report_hit(q, 1, found),
        }
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
}
