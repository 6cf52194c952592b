//! `flooding`: Gnutella 0.4 Query/QueryHit.
//!
//! The origin sends a Query with TTL `ttl` and Hops 0 to all its neighbours. A node
//! that sees a Query's GUID for the first time remembers the neighbour it came from,
//! answers with a QueryHit if it holds the wanted resource, and, if TTL − 1 > 0,
//! forwards it with TTL − 1 and Hops + 1 to every neighbour but the sender. Copies
//! whose GUID was already seen are dropped. A QueryHit travels back hop by hop along
//! the remembered reverse path. With constant latency and no loss the Query reaches
//! exactly the BFS ball of radius `ttl` around the origin (tested below against
//! petgraph).

use std::collections::hash_map::Entry;

use serde::Deserialize;

use super::routes::{QueryTables, key};
use super::{MemoryPart, ParamDoc, ParamError, ProtocolInfo, ProtocolParams, RunFigures};
use crate::engine::{Ctx, Message, NodeId, Protocol, QueryId, ResourceType, SimTime};
use crate::metrics::{Column, Metric, Recorder};
use crate::world::World;

/// The key `ttl` as Gnutella and Gridnut document it.
pub(crate) const TTL_DOC: ParamDoc =
    ParamDoc::new("ttl", "7", "hops a Query may travel (Gnutella's default is 7)").label("TTL (hops)");

/// The columns Gnutella's logic adds, for flooding and gridnut alike.
pub(crate) const GNUTELLA_COLUMNS: [Column; 2] = [
    Column::new("duplicate_queries", "duplicate Query copies dropped"),
    Column::new("expired_drops", "messages dropped past their query's timeout"),
];

/// `[protocol]` with `name = "flooding"`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Hops a Query may travel (Gnutella's default is 7).
    #[serde(default = "default_ttl")]
    pub ttl: u32,
}

fn default_ttl() -> u32 {
    7
}

impl Default for Params {
    fn default() -> Self {
        Params { ttl: default_ttl() }
    }
}

impl ProtocolParams for Params {
    type Protocol = Flooding;

    const INFO: ProtocolInfo = ProtocolInfo {
        name: "flooding",
        source: "Gnutella 0.4 protocol specification",
        summary: "TTL-limited flooding with GUID duplicate suppression; hits return along the reverse path",
        uses_overlay: true,
        extra_columns: &GNUTELLA_COLUMNS,
        params: &[TTL_DOC],
    };

    fn build(&self, _world: &World) -> Flooding {
        Flooding { logic: Gnutella::new(self.ttl) }
    }

    fn validate(&self, _run: &RunFigures) -> Result<(), ParamError> {
        validate_ttl(self.ttl)
    }

    /// Reverse-path entries of live queries, and messages in flight.
    fn memory(&self, run: &RunFigures) -> Vec<MemoryPart> {
        let (paths, in_flight) = gnutella_memory(self.ttl, run, 0.0);
        vec![
            MemoryPart::new("reverse-path table", "workload.rate × workload.timeout, protocol.ttl", paths),
            MemoryPart::new("messages in flight", "workload.rate, protocol.ttl", in_flight),
        ]
    }
}

/// Gnutella carries the TTL in one byte.
pub(crate) fn validate_ttl(ttl: u32) -> Result<(), ParamError> {
    if !(1..=255).contains(&ttl) {
        return Err(ParamError::new(
            "ttl",
            format!("ttl {ttl} is out of range; expected 1 ≤ ttl ≤ 255 (Gnutella carries it in one byte)"),
        ));
    }
    Ok(())
}

/// Gnutella 0.4's descriptors, as flooding and gridnut send them.
#[derive(Clone, Copy, Debug)]
pub enum Msg {
    /// A search, flooded outwards from the origin.
    Query {
        /// The query, standing for Gnutella's GUID.
        q: QueryId,
        /// The resource type searched for.
        want: ResourceType,
        /// Hops the Query may still travel, this one included; forwarded only while TTL − 1 > 0.
        ttl: u8,
        /// Times the Query has been forwarded; the receiver is one hop further.
        hops: u8,
    },
    /// `hops`: how far the responder is from the origin.
    Hit {
        /// The query answered, by its GUID.
        q: QueryId,
        /// Overlay hops between the responder and the origin.
        hops: u8,
    },
}

impl Message for Msg {
    const KINDS: &'static [&'static str] = &["query", "query_hit"];
    fn kind(&self) -> usize {
        match self {
            Msg::Query { .. } => 0,
            Msg::Hit { .. } => 1,
        }
    }
    fn query(&self) -> Option<QueryId> {
        match *self {
            Msg::Query { q, .. } | Msg::Hit { q, .. } => Some(q),
        }
    }
}

/// Bytes of Gnutella's reverse-path tables, and of its messages held in flight
/// when each waits `wait_s` seconds at its sender besides its latency.
pub(crate) fn gnutella_memory(ttl: u32, run: &RunFigures, wait_s: f64) -> (f64, f64) {
    let d = run.mean_degree.max(1.0);
    let reach = ball(d, ttl).min(run.nodes as f64);
    // Little's law: messages held = send rate × time held (≈ one latency, plus the wait).
    let in_flight = run.query_rate * reach * d * (run.mean_latency_s.max(1e-6) + wait_s);
    (run.live_queries() * reach * 40.0 + run.queries() * 24.0, in_flight * 64.0)
}

/// Nodes within `ttl` hops, the start excluded, of a tree-like overlay of degree `d`.
pub(crate) fn ball(d: f64, ttl: u32) -> f64 {
    (0..ttl.min(64)).map(|i| d * (d - 1.0).max(1.0).powi(i as i32)).sum::<f64>()
}

/// The Gnutella 0.4 logic: reverse-path tables, duplicate suppression, TTL and
/// expiry. It does not say how a message leaves a node: `flooding` sends each one
/// at once, `gridnut` buffers it for its neighbour. Both call it with a `send`
/// function taking (ctx, from, to, message).
pub(crate) struct Gnutella {
    ttl: u8,
    /// (query, node) → the neighbour the Query first came from (the origin maps to itself).
    parents: QueryTables<NodeId>,
    /// Query copies dropped because their GUID had been seen.
    pub(crate) duplicates: u64,
    /// Messages dropped because their query was past its timeout.
    pub(crate) expired: u64,
}

impl Gnutella {
    pub(crate) fn new(ttl: u32) -> Gnutella {
        Gnutella { ttl: ttl.min(255) as u8, parents: QueryTables::default(), duplicates: 0, expired: 0 }
    }

    /// Call from `Protocol::start`: generations are one query timeout long.
    pub(crate) fn start(&mut self, timeout: SimTime) {
        self.parents.start(timeout);
    }

    /// Query `q` for `want` starts at `origin`: a Query to every neighbour.
    pub(crate) fn query<P: Protocol>(
        &mut self,
        ctx: &mut Ctx<'_, P>,
        q: QueryId,
        origin: NodeId,
        want: ResourceType,
        mut send: impl FnMut(&mut Ctx<'_, P>, NodeId, NodeId, Msg),
    ) {
        self.parents.open(ctx.now()).insert(key(q, origin), origin);
        ctx.report_reached(q);
        let ttl = self.ttl;
        for &to in ctx.neighbours(origin) {
            send(ctx, origin, to, Msg::Query { q, want, ttl, hops: 0 });
        }
    }

    /// Node `at` handles `msg` from `from`.
    pub(crate) fn message<P: Protocol>(
        &mut self,
        ctx: &mut Ctx<'_, P>,
        at: NodeId,
        from: NodeId,
        msg: Msg,
        mut send: impl FnMut(&mut Ctx<'_, P>, NodeId, NodeId, Msg),
    ) {
        match msg {
            Msg::Query { q, want, ttl, hops } => {
                // Past its timeout a query is dead: nobody forwards or answers it.
                if ctx.expired(q) {
                    self.expired += 1;
                    return;
                }
                let Some(table) = self.parents.of(ctx.issued(q)) else { return };
                match table.entry(key(q, at)) {
                    Entry::Occupied(_) => {
                        // A duplicate GUID.
                        self.duplicates += 1;
                        return;
                    }
                    Entry::Vacant(e) => {
                        e.insert(from);
                    }
                }
                ctx.report_reached(q);
                let hops = hops.saturating_add(1);
                if ctx.world.resources.holds(at, want) {
                    send(ctx, at, from, Msg::Hit { q, hops });
                }
                let ttl = ttl - 1;
                if ttl > 0 {
                    for &to in ctx.neighbours(at) {
                        if to != from {
                            send(ctx, at, to, Msg::Query { q, want, ttl, hops });
                        }
                    }
                }
            }
            Msg::Hit { q, hops } => {
                if ctx.expired(q) {
                    self.expired += 1;
                    return;
                }
                match self.parents.get(ctx.issued(q)).and_then(|t| t.get(&key(q, at)).copied()) {
                    Some(parent) if parent == at => ctx.report_hit(q, hops as u32, 1),
                    Some(parent) => send(ctx, at, parent, Msg::Hit { q, hops }),
                    None => {}
                }
            }
        }
    }

    pub(crate) fn state_bytes(&self) -> usize {
        self.parents.bytes()
    }

    /// Its [`GNUTELLA_COLUMNS`].
    pub(crate) fn metrics(&self, out: &mut Vec<Metric>) {
        out.push(Metric::new(GNUTELLA_COLUMNS[0].name, Some(self.duplicates as f64)));
        out.push(Metric::new(GNUTELLA_COLUMNS[1].name, Some(self.expired as f64)));
    }
}

/// The flooding protocol: Gnutella's logic, each message sent at once.
pub struct Flooding {
    logic: Gnutella,
}

fn send_now(ctx: &mut Ctx<'_, Flooding>, from: NodeId, to: NodeId, msg: Msg) {
    ctx.send(from, to, msg);
}

impl Protocol for Flooding {
    type Msg = Msg;
    type Timer = ();

    fn start(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.logic.start(ctx.timeout());
    }

    fn query(&mut self, ctx: &mut Ctx<'_, Self>, q: QueryId, origin: NodeId, want: ResourceType) {
        self.logic.query(ctx, q, origin, want, send_now);
    }

    fn message(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, from: NodeId, msg: Msg) {
        self.logic.message(ctx, at, from, msg, send_now);
    }

    fn state_bytes(&self) -> usize {
        self.logic.state_bytes()
    }

    fn extra_metrics(&self, _recorder: &Recorder, out: &mut Vec<Metric>) {
        self.logic.metrics(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::SimTime;
    use crate::validate::{flooding_ball, ring_query, world};
    use crate::world::TopologySpec;

    #[test]
    fn reaches_exactly_the_bfs_ball_with_the_predicted_messages() {
        let cases = [
            (TopologySpec::RandomRegular { degree: 4 }, 2000),
            (TopologySpec::BarabasiAlbert { m: 2 }, 1500),
            (TopologySpec::WattsStrogatz { degree: 6, rewire: 0.2 }, 1000),
            (TopologySpec::ErdosRenyi { mean_degree: 12.0 }, 1000),
        ];
        for (topology, n) in cases {
            let w = world(&topology, n, 20, 1, 0, 21);
            for ttl in 1..=5 {
                for origin in [0, 7, n / 2] {
                    let crate::validate::Compared { got, want } = flooding_ball(&w, origin, ttl);
                    assert_eq!(got, want, "{topology:?} ttl {ttl} origin {origin}");
                }
            }
        }
    }

    #[test]
    fn hits_come_back_along_the_reverse_path() {
        // On a ring of 20 with the resource only at node 5, a query from 0 with TTL 5
        // finds it 5 hops away after 5 hops out and 5 back.
        for (ttl, found) in [(4, false), (5, true)] {
            let q = ring_query(&crate::protocols::ProtocolSpec::Flooding(Params { ttl }), 5, 20);
            assert_eq!(q.succeeded(), found, "ttl {ttl}");
            if found {
                assert_eq!(q.hops, 5);
                assert_eq!(q.latency(), Some(SimTime::from_millis(200)));
            }
        }
    }
}
