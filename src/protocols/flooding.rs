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
//!
//! `ring = [t1, t2, ...]` is Lv et al.'s expanding ring (ICS 2002): the origin
//! floods with TTL t1, and if no QueryHit has reached it 2·t1·`ring_wait` later,
//! floods again with TTL t2, and so on, stopping at the first ring after which it
//! has an answer (or at the query's timeout). Each ring is a new flood: nodes that
//! saw an earlier ring's Query treat the next ring's as new, so the messages of a
//! query are the sum of its rings' floods. Lv et al. start at TTL 1 and add 2 a
//! ring. `ring_wait` stands for the paper's synchronous rounds: it should exceed
//! one hop's latency and service time, since a QueryHit that arrives exactly when
//! the wait ends comes after the origin's timer, which then starts the next ring.
//! A test checks the ring's messages against the sum of single floods.

use serde::Deserialize;

use super::routes::{FlatTable, QueryTables, key};
use super::{MemoryPart, ParamDoc, ParamError, ProtocolInfo, ProtocolParams, RunFigures, TCP_IP_BYTES};
use crate::engine::{Ahead, Ctx, Message, NodeId, Protocol, QueryId, ResourceType, SimTime};
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

/// The columns of flooding: Gnutella's and the expanding ring's.
const FLOODING_COLUMNS: [Column; 3] =
    [GNUTELLA_COLUMNS[0], GNUTELLA_COLUMNS[1], Column::new("rings_per_query", "floods per query (expanding ring)")];

/// `[protocol]` with `name = "flooding"`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Hops a Query may travel (Gnutella's default is 7).
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    /// An expanding ring: the TTLs of successive floods; empty = one flood of `ttl`.
    #[serde(default)]
    pub ring: Vec<u32>,
    /// The origin waits 2 × TTL × this after a ring before it starts the next.
    #[serde(default = "default_ring_wait")]
    pub ring_wait: SimTime,
}

fn default_ttl() -> u32 {
    7
}
fn default_ring_wait() -> SimTime {
    SimTime::from_millis(50)
}

impl Default for Params {
    fn default() -> Self {
        Params { ttl: default_ttl(), ring: Vec::new(), ring_wait: default_ring_wait() }
    }
}

impl ProtocolParams for Params {
    type Protocol = Flooding;

    const INFO: ProtocolInfo = ProtocolInfo {
        name: "flooding",
        source: "Gnutella 0.4 protocol specification",
        summary: "TTL-limited flooding with GUID duplicate suppression; hits return along the reverse path; optionally an expanding ring",
        uses_overlay: true,
        extra_columns: &FLOODING_COLUMNS,
        roles: &[],
        keeps_state: false,
        params: &[
            TTL_DOC,
            ParamDoc::new(
                "ring",
                "[]",
                "expanding ring (Lv et al. 2002): TTLs of successive floods, e.g. [1, 3, 5, 7]; empty = one flood of ttl",
            ),
            ParamDoc::new(
                "ring_wait",
                "\"50ms\"",
                "the origin waits 2 × TTL × ring_wait after a ring before the next; set it above one hop's latency and service time",
            ),
        ],
    };

    fn build(&self, _world: &World) -> Flooding {
        let rings: Vec<u8> = self.ring.iter().map(|&t| t.min(255) as u8).collect();
        let first = rings.first().map_or(self.ttl, |&t| t as u32);
        Flooding { logic: Gnutella::new(first), rings, ring_wait: self.ring_wait, measured: 0, floods: 0 }
    }

    fn validate(&self, _run: &RunFigures) -> Result<(), ParamError> {
        validate_ttl(self.ttl)?;
        for (i, &t) in self.ring.iter().enumerate() {
            if !(1..=255).contains(&t) || (i > 0 && t <= self.ring[i - 1]) {
                return Err(ParamError::new(
                    "ring",
                    format!("ring[{i}] = {t} is out of range; expected increasing TTLs with 1 ≤ TTL ≤ 255"),
                ));
            }
        }
        if !self.ring.is_empty() && self.ring_wait == SimTime::ZERO {
            return Err(ParamError::new("ring_wait", "expected a wait above zero for an expanding ring"));
        }
        Ok(())
    }

    /// Reverse-path entries of live queries, and messages in flight.
    fn memory(&self, run: &RunFigures) -> Vec<MemoryPart> {
        let (paths, in_flight) = gnutella_memory(self.ring.last().copied().unwrap_or(self.ttl), run, 0.0);
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
        /// Which flood of an expanding ring it belongs to (0 for a single flood).
        ring: u8,
    },
    /// `hops`: how far the responder is from the origin.
    Hit {
        /// The query answered, by its GUID.
        q: QueryId,
        /// Overlay hops between the responder and the origin.
        hops: u8,
        /// The responder (its servent identifier).
        holder: NodeId,
    },
}

/// Bytes of a Gnutella 0.4 descriptor header: GUID, type, TTL, hops, length.
pub const DESCRIPTOR_HEADER_BYTES: u32 = 23;

/// Bytes of one result in a QueryHit: index, size, a 32-byte name and two NULs.
pub const RESULT_BYTES: u32 = 42;

/// Bytes of a Query descriptor without TCP/IP (Gnutella 0.4): the descriptor
/// header, the 2-byte minimum speed and a search string of 32 bytes with its
/// NUL, a resource's description.
pub const QUERY_BYTES: u32 = DESCRIPTOR_HEADER_BYTES + 2 + 33;

/// Bytes of a QueryHit descriptor without TCP/IP (Gnutella 0.4): the descriptor
/// header, the 11-byte preamble (hits, port, address, speed), one result and the
/// 16-byte servent id.
pub const QUERY_HIT_BYTES: u32 = DESCRIPTOR_HEADER_BYTES + 11 + RESULT_BYTES + 16;

impl Message for Msg {
    const KINDS: &'static [&'static str] = &["query", "query_hit"];
    const SIZES: &'static [u32] = &[QUERY_BYTES + TCP_IP_BYTES, QUERY_HIT_BYTES + TCP_IP_BYTES];
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
    /// (query, node) → the neighbour the Query first came from (the origin maps to
    /// itself), and the ring it came with.
    parents: QueryTables<(NodeId, u8), FlatTable<(NodeId, u8)>>,
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
        send: impl FnMut(&mut Ctx<'_, P>, NodeId, NodeId, Msg),
    ) {
        self.parents.open(ctx.now());
        ctx.report_reached(q);
        let ttl = self.ttl;
        self.flood(ctx, q, origin, want, ttl, 0, send);
    }

    /// Ring `ring` of query `q`: a Query with `ttl` to every neighbour of the origin.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn flood<P: Protocol>(
        &mut self,
        ctx: &mut Ctx<'_, P>,
        q: QueryId,
        origin: NodeId,
        want: ResourceType,
        ttl: u8,
        ring: u8,
        mut send: impl FnMut(&mut Ctx<'_, P>, NodeId, NodeId, Msg),
    ) {
        let Some(table) = self.parents.of(ctx.issued(q)) else { return };
        table.insert(key(q, origin), (origin, ring));
        for &to in ctx.neighbours(origin).iter() {
            send(ctx, origin, to, Msg::Query { q, want, ttl, hops: 0, ring });
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
            Msg::Query { q, want, ttl, hops, ring } => {
                // Past its timeout a query is dead: nobody forwards or answers it.
                if ctx.expired(q) {
                    self.expired += 1;
                    return;
                }
                let Some(table) = self.parents.of(ctx.issued(q)) else { return };
                let first = match table.get(key(q, at)) {
                    Some(&(_, seen)) if seen >= ring => {
                        // A duplicate GUID.
                        self.duplicates += 1;
                        return;
                    }
                    // A later ring is a new flood.
                    Some(_) => false,
                    None => true,
                };
                table.insert(key(q, at), (from, ring));
                if first {
                    ctx.report_reached(q);
                }
                let hops = hops.saturating_add(1);
                if ctx.holds(at, want) {
                    send(ctx, at, from, Msg::Hit { q, hops, holder: at });
                }
                let ttl = ttl - 1;
                if ttl > 0 {
                    for &to in ctx.neighbours(at).iter() {
                        if to != from {
                            send(ctx, at, to, Msg::Query { q, want, ttl, hops, ring });
                        }
                    }
                }
            }
            Msg::Hit { q, hops, holder } => {
                if ctx.expired(q) {
                    self.expired += 1;
                    return;
                }
                match self.parents.get(ctx.issued(q)).and_then(|t| t.get(key(q, at)).map(|e| e.0)) {
                    Some(parent) if parent == at => {
                        ctx.report_found(q, holder);
                        ctx.report_hit(q, hops as u32, 1);
                    }
                    Some(parent) => send(ctx, at, parent, Msg::Hit { q, hops, holder }),
                    None => {}
                }
            }
        }
    }

    /// Hints the duplicate-table slot `msg` will read at `at`.
    #[inline(always)]
    pub(crate) fn prefetch<P: Protocol>(&self, ctx: &Ctx<'_, P>, at: NodeId, msg: &Msg) {
        let (Msg::Query { q, .. } | Msg::Hit { q, .. }) = *msg;
        if let Some(t) = self.parents.get(ctx.issued(q)) {
            t.prefetch(key(q, at));
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

/// The flooding protocol: Gnutella's logic, each message sent at once, and the
/// rings of an expanding ring.
pub struct Flooding {
    logic: Gnutella,
    /// The TTLs of the rings; empty for a single flood.
    rings: Vec<u8>,
    ring_wait: SimTime,
    /// Measured queries and the floods they started.
    measured: u64,
    floods: u64,
}

fn send_now(ctx: &mut Ctx<'_, Flooding>, from: NodeId, to: NodeId, msg: Msg) {
    ctx.send(from, to, msg);
}

/// The origin's timer at the end of a ring: whether to start ring `ring`.
#[derive(Clone, Copy, Debug)]
pub struct NextRing {
    q: QueryId,
    want: ResourceType,
    ring: u8,
}

impl Flooding {
    fn wait(&self, ring: usize) -> SimTime {
        SimTime(self.ring_wait.0.saturating_mul(2 * self.rings[ring] as u64))
    }
}

impl Protocol for Flooding {
    type Msg = Msg;
    type Timer = NextRing;

    fn start(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.logic.start(ctx.timeout());
    }

    fn query(&mut self, ctx: &mut Ctx<'_, Self>, q: QueryId, origin: NodeId, want: ResourceType) {
        let measured = ctx.now() >= ctx.warmup();
        self.measured += measured as u64;
        self.floods += measured as u64;
        self.logic.query(ctx, q, origin, want, send_now);
        if self.rings.len() > 1 {
            ctx.set_timer(origin, self.wait(0), NextRing { q, want, ring: 1 });
        }
    }

    fn message(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, from: NodeId, msg: Msg) {
        self.logic.message(ctx, at, from, msg, send_now);
    }

    fn prefetch(&self, ctx: &Ctx<'_, Self>, at: NodeId, _: Ahead) {
        ctx.prefetch_node(at);
    }

    fn prefetch_near(&self, ctx: &Ctx<'_, Self>, at: NodeId, _: Ahead, msg: Option<&Msg>) {
        ctx.prefetch_node_near(at);
        if let Some(msg) = msg {
            self.logic.prefetch(ctx, at, msg);
        }
    }

    fn timer(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, timer: NextRing) {
        let NextRing { q, want, ring } = timer;
        if ctx.hits(q) > 0 || ctx.expired(q) {
            return;
        }
        self.floods += (ctx.issued(q) >= ctx.warmup()) as u64;
        let ttl = self.rings[ring as usize];
        self.logic.flood(ctx, q, at, want, ttl, ring, send_now);
        if (ring as usize) + 1 < self.rings.len() {
            ctx.set_timer(at, self.wait(ring as usize), NextRing { q, want, ring: ring + 1 });
        }
    }

    fn state_bytes(&self) -> usize {
        self.logic.state_bytes()
    }

    fn extra_metrics(&self, _recorder: &Recorder, out: &mut Vec<Metric>) {
        self.logic.metrics(out);
        out.push(Metric::new(
            FLOODING_COLUMNS[2].name,
            (self.measured > 0).then(|| self.floods as f64 / self.measured as f64),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::SimTime;
    use crate::validate::{RingCost, expanding_ring, flooding_ball, ring_query, world};
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
    fn an_expanding_ring_costs_the_sum_of_its_floods() {
        // Lv et al.'s schedule 1, 3, 5, 7 and a denser one, with the one holder at
        // every distance from 1 to 7 and nowhere: the ring answered by TTL t costs
        // the floods of every TTL up to t and one QueryHit a hop back.
        let cases = [(TopologySpec::RandomRegular { degree: 4 }, 2000), (TopologySpec::BarabasiAlbert { m: 2 }, 1500)];
        for (topology, n) in cases {
            let w = world(&topology, n, 20, 1, 0, 21);
            for rings in [&[1, 3, 5, 7][..], &[2, 3, 4]] {
                let mut tried = 0;
                for distance in (1..=7).map(Some).chain([None]) {
                    let Some(crate::validate::Compared { got, want }) = expanding_ring(&w, 0, distance, rings) else {
                        continue;
                    };
                    tried += 1;
                    assert_eq!(got, want, "{topology:?} rings {rings:?} holder at {distance:?}");
                }
                assert!(tried >= 6, "{topology:?}: {tried} distances");
            }
        }
        // On a ring of 20 the flood of TTL t sends 2t Queries: a holder 4 hops away
        // answers the third ring of 1, 3, 5, after 2 + 6 + 10 Queries.
        let w = world(&TopologySpec::Ring {}, 20, 20, 1, 0, 1);
        let crate::validate::Compared { got, want } = expanding_ring(&w, 0, Some(4), &[1, 3, 5]).expect("a ring of 20");
        assert_eq!(got, want);
        assert_eq!(got, RingCost { rings: 3, queries: 18, hits: 4 });
    }

    #[test]
    fn hits_come_back_along_the_reverse_path() {
        // On a ring of 20 with the resource only at node 5, a query from 0 with TTL 5
        // finds it 5 hops away after 5 hops out and 5 back.
        for (ttl, found) in [(4, false), (5, true)] {
            let q = ring_query(&crate::protocols::ProtocolSpec::Flooding(Params { ttl, ..Params::default() }), 5, 20);
            assert_eq!(q.succeeded(), found, "ttl {ttl}");
            if found {
                assert_eq!(q.hops, 5);
                assert_eq!(q.latency(), Some(SimTime::from_millis(200)));
            }
        }
    }

    #[test]
    fn a_partition_stops_every_flood_from_crossing_and_healing_restores_it() {
        use crate::dynamics::{Action, Dynamics, Fault};
        use crate::engine::{Rate, SimConfig};
        use crate::protocols::ProtocolSpec;
        use crate::workload::{ScriptedQuery, Workload, WorkloadSpec};
        use crate::world::Resources;
        // The complete graph on 20 nodes, one holder: split in two groups of 10 until
        // 10 s, a query succeeds exactly when its origin is on the holder's side.
        let mut w = world(&TopologySpec::RandomRegular { degree: 19 }, 20, 10, 1, 0, 1);
        w.resources = Resources::from_holders(20, vec![vec![7]]);
        let s = SimTime::from_secs;
        let split = Fault { at: s(1), action: Action::Partition { groups: 2, until: Some(s(10)) } };
        let config = SimConfig {
            timeout: s(2),
            dynamics: Dynamics { churn: None, faults: vec![split], ..Dynamics::default() },
            ..SimConfig::new(4, s(20))
        };
        let script = (0..20)
            .flat_map(|v| {
                [ScriptedQuery { at: s(5), origin: v, rtype: 0 }, ScriptedQuery { at: s(15), origin: v, rtype: 0 }]
            })
            .collect();
        let spec = WorkloadSpec { rate: Rate(0.0), script, ..Default::default() };
        let params = Params { ttl: 2, ..Default::default() };
        let out = ProtocolSpec::Flooding(params).run(&w, Workload::new(&spec, 20, 1, config.duration, 4), &config);
        let found = |at: SimTime| out.recorder.queries.iter().filter(|q| q.issued == at && q.succeeded()).count();
        // The holder's nine group mates find it; the ten across the split never do.
        assert_eq!(found(s(5)), 9);
        assert_eq!(found(s(15)), 19);
        assert!(out.metric("messages_lost").unwrap_or(0.0) > 0.0);
    }
}
