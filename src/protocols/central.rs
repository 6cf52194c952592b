//! `central`: a Napster-style central index, or a single Globus MDS-1 server.
//!
//! At start every node registers its resources with one index node. A query goes
//! straight (one underlay hop, not through the overlay) to the index, which answers
//! with the number of registered holders other than the origin. Every query meets
//! the index's FIFO service queue, so under Poisson load with exponential service the
//! index is an M/M/1 queue: mean response time 1/(μ − λ) plus the round trip.

use serde::Deserialize;

use super::{ParamError, ProtocolInfo};
use crate::engine::{Ctx, Message, NodeId, Protocol, QueryId, ServiceTime};
use crate::world::{ResourceType, World};

pub const INFO: ProtocolInfo = ProtocolInfo {
    name: "central",
    source: "Napster; Globus MDS-1",
    summary: "one index node that every node registers with and every query asks",
    extra_columns: &[],
    params: &[
        ("index", "0", "the node that holds the index"),
        (
            "index_service_time",
            "network.service_time",
            "service time of the index node (a duration or { dist = \"exponential\", mean = ... })",
        ),
    ],
};

/// `[protocol]` with `name = "central"`.
#[derive(Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub index_service_time: Option<ServiceTime>,
}

impl Params {
    pub fn validate(&self, nodes: usize) -> Result<(), ParamError> {
        if self.index as usize >= nodes {
            return Err(ParamError::new(
                "index",
                format!(
                    "node {} does not exist; expected 0 ≤ index < nodes = {nodes}",
                    self.index
                ),
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Msg {
    Register,
    Lookup { q: QueryId, want: ResourceType },
    Answer { q: QueryId, found: u32 },
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

pub struct Central {
    index: NodeId,
    service: Option<ServiceTime>,
    /// Which nodes' registrations the index has processed.
    registered: Vec<bool>,
}

impl Central {
    pub fn new(params: &Params, world: &World) -> Central {
        let index = NodeId(params.index);
        let mut registered = vec![false; world.nodes()];
        registered[index.index()] = true;
        Central {
            index,
            service: params.index_service_time,
            registered,
        }
    }

    fn lookup(&self, world: &World, origin: NodeId, want: ResourceType) -> u32 {
        world
            .resources
            .holders(want)
            .iter()
            .filter(|&&v| v != origin && self.registered[v.index()])
            .count() as u32
    }
}

impl Protocol for Central {
    type Msg = Msg;
    type Timer = ();

    fn start(&mut self, ctx: &mut Ctx<'_, Self>) {
        if let Some(s) = self.service {
            ctx.set_service_time(self.index, s);
        }
        for v in 0..ctx.world.nodes() as u32 {
            if NodeId(v) != self.index {
                ctx.send(NodeId(v), self.index, Msg::Register);
            }
        }
    }

    fn query(&mut self, ctx: &mut Ctx<'_, Self>, q: QueryId, origin: NodeId, want: ResourceType) {
        if origin == self.index {
            let found = self.lookup(ctx.world, origin, want);
            ctx.report_hit(q, 0, found);
        } else {
            ctx.send(origin, self.index, Msg::Lookup { q, want });
        }
    }

    fn message(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, from: NodeId, msg: Msg) {
        match msg {
            Msg::Register => self.registered[from.index()] = true,
            Msg::Lookup { q, want } => {
                ctx.report_reached(q);
                let found = self.lookup(ctx.world, from, want);
                ctx.send(at, from, Msg::Answer { q, found });
            }
            Msg::Answer { q, found } => ctx.report_hit(q, 1, found),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Rate, SimConfig, SimTime};
    use crate::workload::{Workload, WorkloadSpec};
    use crate::world::{LatencySpec, ResourcesSpec, TopologySpec};
    use std::path::Path;

    /// Mean response time of the index under Poisson arrivals at `lambda` and
    /// exponential service at rate `mu`, against M/M/1: W = 1/(μ − λ), plus the
    /// 2 × 10 ms round trip.
    fn mm1(lambda: f64, mu: f64) -> (f64, f64) {
        let world = World::build(
            &TopologySpec::RandomRegular { degree: 4 },
            Some(200),
            false,
            &LatencySpec::Constant {
                value: SimTime::from_millis(10),
            },
            &ResourcesSpec {
                types: 10,
                replicas: 5,
                ..Default::default()
            },
            Path::new("."),
            11,
        )
        .unwrap();
        let config = SimConfig {
            seed: 5,
            duration: SimTime::from_secs(2_000),
            warmup: SimTime::from_secs(50),
            timeout: SimTime::from_secs(60),
            sample_every: SimTime::from_secs(10),
            service: ServiceTime::Constant(SimTime::ZERO),
            loss: 0.0,
        };
        let params = Params {
            index: 0,
            index_service_time: Some(ServiceTime::Exponential {
                mean: SimTime::from_secs_f64(1.0 / mu),
            }),
        };
        let workload = Workload::new(
            &WorkloadSpec {
                rate: Rate(lambda),
                ..Default::default()
            },
            200,
            10,
            config.duration,
            3,
        );
        let out = super::super::ProtocolSpec::Central(params).run(&world, workload, &config);
        let metrics = out.recorder.finish(Msg::KINDS, out.events);
        let get = |k: &str| {
            metrics
                .iter()
                .find(|(n, _)| n == k)
                .and_then(|(_, v)| *v)
                .unwrap()
        };
        assert_eq!(get("success_rate"), 1.0);
        let expected_ms = 1000.0 / (mu - lambda) + 20.0;
        (get("first_hit_latency_mean_ms"), expected_ms)
    }

    #[test]
    fn index_is_an_mm1_queue_at_half_load() {
        let (got, want) = mm1(100.0, 200.0);
        assert!(
            (got - want).abs() / want < 0.05,
            "mean response {got:.2} ms, M/M/1 says {want:.2} ms"
        );
    }

    #[test]
    fn index_is_an_mm1_queue_at_high_load() {
        let (got, want) = mm1(160.0, 200.0);
        assert!(
            (got - want).abs() / want < 0.05,
            "mean response {got:.2} ms, M/M/1 says {want:.2} ms"
        );
    }
}
