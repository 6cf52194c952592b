//! `superpeer`: the super-peer model of Mastroianni, Talia and Verta, "A super-peer
//! model for resource discovery services in large-scale Grids" (FGCS 21(8), 2005).
//!
//! The grid is split into clusters (one Virtual Organization each). A cluster's
//! super-peer keeps the metadata of every resource its members offer, so a query
//! costs one round trip inside the cluster when the answer is local; otherwise the
//! super-peers, linked by an overlay of their own, flood the query among themselves
//! Gnutella-style: TTL counted in super-peer hops, duplicate suppression by query id,
//! and a QueryHit per answering super-peer that travels back along the reverse path
//! to the requester's super-peer and from there to the requester.
//!
//! Here:
//! - cluster c holds the `cluster_size` consecutive nodes [c·C, min((c+1)·C, N)),
//!   and its first node is the super-peer; the world's overlay is not used;
//! - the super-peer overlay (`overlay`, any generated topology over the
//!   S = ⌈N / C⌉ super-peers) is drawn at time zero from the protocol's random
//!   stream;
//! - the requester sends its query to its super-peer (or handles it there if it is
//!   the super-peer). Each super-peer reached counts its members that hold the wanted
//!   type (the requester excepted), answers with one QueryHit carrying that count if
//!   it is not zero, and forwards the query with TTL − 1 to every neighbour
//!   super-peer but the one it came from while the TTL it received is above 0
//!   (`ttl = 0`: the local cluster only);
//! - `results` = R > 0 is the number of results the requester wants. A super-peer
//!   whose own index already yields ≥ R matches answers and does not forward the
//!   query; the requester's super-peer relays at most R results in all to the
//!   requester (the last hit is cut to what is still missing) and drops later hits.
//!   Super-peers farther away do not learn that the requester is satisfied: no node
//!   reads another's state;
//! - `hops` of a hit is the number of query legs from the requester to the answering
//!   super-peer: 1 for the local leg (0 when the requester is the super-peer) plus
//!   the super-peer overlay hops; `nodes_reached` counts the super-peers that looked
//!   the query up, not the members their index covers.
//!
//! Simplifications, against the paper:
//! - with static resources the index is exact and free: members never send the
//!   registration and update messages the paper's super-peers receive, and an answer
//!   is never stale (under changing resources, below, they do);
//! - clusters are equal blocks of consecutive node ids, not VOs of varying size;
//! - the super-peer overlay is a random graph of the chosen kind rather than the
//!   paper's fixed super-peer neighbourhoods, and super-peers never fail or change;
//! - a query's processing cost at a node is the network's service time, the same for
//!   every message kind, rather than the paper's separate per-message delays.
//!
//! Under churn and faults, as super-peer networks elect: the super-peers are the
//! role `superpeers`. A member that is down neither asks nor answers, and the
//! index counts only members that are up (members keep a connection to their
//! super-peer, which sees it close). When a super-peer leaves gracefully it hands
//! over at once; when it crashes its members notice after `election`. Either way
//! the member with the lowest id that is up becomes the cluster's super-peer, takes
//! the old one's place in the super-peer overlay, and every member up registers
//! its resources with it (one message each). A cluster with no member up has no
//! super-peer until one joins; a recovered old super-peer comes back as a plain
//! member. Until a new super-peer is in place, queries sent to the dead one, or
//! flooded to it by neighbour super-peers, are lost.
//!
//! Under changing resources (`[resources] changes`): a member whose resources
//! change sends an Update to its super-peer at once (a super-peer's own entry
//! changes in place), and the index keeps each member's resources as of when the
//! member sent them; a registration with a new super-peer carries them as they
//! are when it arrives. Until an Update arrives the index may name a copy that is
//! gone: an answer naming one is stale, and only the members that really match
//! count as hits (and in the Hit's count); whether the super-peer has found enough
//! to stop forwarding is judged by what its index names.
//!
//! A generated super-peer overlay that turns out disconnected (likely with a small
//! mean degree on few super-peers, which validation cannot rule out) is joined by
//! linking each component's lowest super-peer to the next component's, so a run
//! never stops half-way.

use std::collections::hash_map::Entry;
use std::path::Path;

use serde::Deserialize;

use super::flooding::{QUERY_BYTES, QUERY_HIT_BYTES, RESULT_BYTES, ball};
use super::routes::{QueryTables, key};
use super::{MemoryPart, ParamDoc, ParamError, ProtocolInfo, ProtocolParams, RunFigures, TCP_IP_BYTES};
use crate::engine::{Ctx, Message, NodeId, Protocol, QueryId, ResourceType, SimTime};
use crate::metrics::{Column, Metric, Recorder};
use crate::world::{Overlay, TopologySpec, World, topology};

/// `[protocol]` with `name = "superpeer"`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Nodes per cluster; the first node of each cluster is its super-peer.
    #[serde(default = "default_cluster_size")]
    pub cluster_size: u32,
    /// Super-peer hops a query may travel (0 = the local cluster only).
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    /// Results wanted (0 = unlimited): stops forwarding and relaying once met.
    #[serde(default)]
    pub results: u32,
    /// Topology of the super-peer overlay.
    #[serde(default = "default_overlay")]
    pub overlay: TopologySpec,
    /// How long the members of a crashed super-peer take to notice and elect another.
    #[serde(default = "default_election")]
    pub election: SimTime,
}

fn default_election() -> SimTime {
    SimTime::from_secs(30)
}

fn default_cluster_size() -> u32 {
    10
}

fn default_ttl() -> u32 {
    4
}

fn default_overlay() -> TopologySpec {
    TopologySpec::RandomRegular { degree: 4 }
}

impl Default for Params {
    fn default() -> Self {
        Params {
            cluster_size: default_cluster_size(),
            ttl: default_ttl(),
            results: 0,
            overlay: default_overlay(),
            election: default_election(),
        }
    }
}

impl Params {
    /// The number of super-peers (clusters) in a network of `nodes`.
    pub fn superpeers(&self, nodes: usize) -> usize {
        nodes.div_ceil(self.cluster_size.max(1) as usize)
    }
}

impl ProtocolParams for Params {
    type Protocol = Superpeer;

    const INFO: ProtocolInfo = ProtocolInfo {
        name: "superpeer",
        source: "Mastroianni, Talia, Verta, FGCS 21(8), 2005",
        summary: "clusters of consecutive nodes indexed by a super-peer; TTL flooding among super-peers",
        uses_overlay: false,
        extra_columns: &[
            Column::new("superpeers", "super-peers"),
            Column::new("duplicate_queries", "duplicate Query copies dropped"),
            Column::new("superpeer_elections", "super-peers elected in place of one that went down"),
        ],
        roles: &[("superpeers", "the current super-peer of every cluster")],
        keeps_state: false,
        params: &[
            ParamDoc::new("cluster_size", "10", "nodes per cluster; the first node of each cluster is its super-peer")
                .label("nodes per cluster"),
            ParamDoc::new("ttl", "4", "super-peer hops a query may travel (0 = the local cluster only)")
                .label("TTL (hops)"),
            ParamDoc::new("results", "0", "results wanted (0 = unlimited): stops forwarding and relaying once met")
                .label("results wanted"),
            ParamDoc::new("overlay", "{ kind = \"random-regular\", degree = 4 }", "topology of the super-peer overlay"),
            ParamDoc::new(
                "election",
                "30s",
                "under churn or faults: how long a crashed super-peer's members take to elect another",
            ),
        ],
    };

    fn build(&self, world: &World) -> Superpeer {
        let cluster = self.cluster_size.max(1);
        Superpeer {
            cluster,
            ttl: self.ttl.min(255) as u8,
            results: self.results,
            spec: self.overlay.clone(),
            overlay: Overlay::default(),
            superpeers: self.superpeers(world.nodes()) as u32,
            routes: QueryTables::default(),
            duplicates: 0,
            sp: Vec::new(),
            election: self.election,
            elections: 0,
            since: Vec::new(),
        }
    }

    /// The super-peer overlay, reverse-path entries of live queries, and messages in flight.
    fn memory(&self, run: &RunFigures) -> Vec<MemoryPart> {
        let sp = self.superpeers(run.nodes) as f64;
        // An edge file is refused as the super-peer overlay; 4 stands in for it.
        let d = self.overlay.nominal_degree().unwrap_or(4.0).max(1.0);
        let reach = 1.0 + ball(d, self.ttl).min(sp - 1.0);
        let in_flight = run.query_rate * reach * d * run.mean_latency_s.max(1e-6);
        vec![
            MemoryPart::new("super-peer overlay", "network.nodes / protocol.cluster_size", sp * (4.0 + 4.0 * d)),
            MemoryPart::new(
                "reverse-path table",
                "workload.rate × workload.timeout, protocol.ttl",
                run.live_queries() * reach * 2.0 * 17.0,
            ),
            MemoryPart::new("messages in flight", "workload.rate, protocol.ttl", in_flight * 64.0),
        ]
    }

    fn validate(&self, run: &RunFigures) -> Result<(), ParamError> {
        let nodes = run.nodes;
        let c = self.cluster_size as usize;
        if c == 0 || c > nodes {
            return Err(ParamError::new(
                "cluster_size",
                format!("cluster_size {c} is out of range; expected 1 ≤ cluster_size ≤ nodes = {nodes}"),
            ));
        }
        if self.ttl > 255 {
            return Err(ParamError::new("ttl", format!("ttl {} is out of range; expected 0 ≤ ttl ≤ 255", self.ttl)));
        }
        let s = self.superpeers(nodes);
        if let TopologySpec::Edges { .. } = self.overlay {
            return Err(ParamError::new(
                "overlay.kind",
                "an edge file cannot be the super-peer overlay, whose size follows from nodes and cluster_size; expected a generated kind (random-regular, erdos-renyi, barabasi-albert, watts-strogatz, ring, k-out, power-law)",
            ));
        }
        // One super-peer needs no overlay: only its own index answers.
        if s == 1 {
            return Ok(());
        }
        topology::check(&self.overlay, s, false).map_err(|e| {
            let key = if e.key == "nodes" { "overlay".to_string() } else { format!("overlay.{}", e.key) };
            let message = e.message.replace(", or set network.allow_disconnected = true", "");
            ParamError::new(
                key,
                format!("the super-peer overlay has {s} super-peers (⌈{nodes} nodes / cluster_size {c}⌉): {message}"),
            )
        })
    }
}

/// Queries, flooded among super-peers, and the QueryHits coming back.
#[derive(Clone, Copy, Debug)]
pub enum Msg {
    /// `ttl`: super-peer hops still allowed; `hops`: query legs travelled so far.
    Query {
        /// The query, whose id suppresses duplicates.
        q: QueryId,
        /// The resource type a member must hold.
        want: ResourceType,
        /// Super-peer hops the query may still travel.
        ttl: u8,
        /// Query legs travelled so far; the leg from the requester to its super-peer counts one.
        hops: u16,
    },
    /// `count` matching resources at a super-peer `hops` query legs from the requester.
    Hit {
        /// The query answered.
        q: QueryId,
        /// Members of the answering super-peer's cluster that hold the type.
        count: u32,
        /// Query legs from the requester to the answering super-peer.
        hops: u16,
    },
    /// A member registers its resources with a newly elected super-peer.
    Register,
    /// A member's resources changed: its list as of `sent`.
    Update {
        /// When the member sent it, which is when its list was taken.
        sent: SimTime,
    },
}

/// Bytes of a member's metadata record, sent to register or update.
const METADATA_BYTES: u32 = 300;

impl Message for Msg {
    const KINDS: &'static [&'static str] = &["query", "query_hit", "register", "update"];
    /// Queries and hits are Gnutella descriptors, a hit with one result per
    /// matching member; a registration or update sends the member's resource list
    /// (about one resource in the shipped scenarios) as a 300-byte metadata record.
    fn size(&self) -> Option<u32> {
        Some(
            TCP_IP_BYTES
                + match *self {
                    Msg::Query { .. } => QUERY_BYTES,
                    Msg::Hit { count, .. } => QUERY_HIT_BYTES + RESULT_BYTES * count.saturating_sub(1),
                    Msg::Register | Msg::Update { .. } => METADATA_BYTES,
                },
        )
    }
    fn kind(&self) -> usize {
        match self {
            Msg::Query { .. } => 0,
            Msg::Hit { .. } => 1,
            Msg::Register => 2,
            Msg::Update { .. } => 3,
        }
    }
    fn query(&self) -> Option<QueryId> {
        match *self {
            Msg::Query { q, .. } | Msg::Hit { q, .. } => Some(q),
            Msg::Register | Msg::Update { .. } => None,
        }
    }
}

/// What a super-peer remembers about a query it has seen.
#[derive(Clone, Copy, Debug)]
struct Route {
    /// Where the query came from: a neighbour super-peer, or, at the requester's own
    /// super-peer, the requester (the super-peer itself when it asked).
    parent: NodeId,
    /// Results relayed to the requester so far (at the requester's super-peer only).
    relayed: u32,
}

/// The super-peer model: the super-peer overlay and each query's reverse path through it.
pub struct Superpeer {
    cluster: u32,
    ttl: u8,
    results: u32,
    spec: TopologySpec,
    /// Over super-peer indices 0..S; super-peer c is node c·cluster_size.
    overlay: Overlay,
    superpeers: u32,
    /// (query, super-peer) → its route.
    routes: QueryTables<Route>,
    duplicates: u64,
    /// Under churn or faults, each cluster's super-peer now; empty while they are
    /// the clusters' first nodes throughout.
    sp: Vec<NodeId>,
    election: SimTime,
    /// Super-peers elected in place of one that went down.
    elections: u64,
    /// Under changing resources, per node, the time its super-peer's entry for it
    /// was taken; empty while resources never change and the index is exact.
    since: Vec<u64>,
}

/// The members of a cluster elect a new super-peer (a global timer).
pub struct Elect(u32);

impl Superpeer {
    /// The super-peer of `v`'s cluster now.
    #[inline]
    fn superpeer_of(&self, v: NodeId) -> NodeId {
        self.superpeer(v.0 / self.cluster)
    }

    /// Cluster `c`'s super-peer now.
    #[inline]
    fn superpeer(&self, c: u32) -> NodeId {
        if self.sp.is_empty() { NodeId(c * self.cluster) } else { self.sp[c as usize] }
    }

    /// The nodes of cluster `c`.
    fn members(&self, c: u32, nodes: usize) -> std::ops::Range<u32> {
        c * self.cluster..((c + 1) * self.cluster).min(nodes as u32)
    }

    /// The member of cluster `c` with the lowest id that is up, if any.
    fn first_up(&self, ctx: &Ctx<'_, Self>, c: u32) -> Option<NodeId> {
        self.members(c, ctx.world.nodes()).map(NodeId).find(|&v| ctx.is_up(v))
    }

    /// Cluster `c` elects the member with the lowest id that is up, unless its
    /// super-peer is up; the members up register with the new one.
    fn elect(&mut self, ctx: &mut Ctx<'_, Self>, c: u32) {
        if ctx.is_up(self.superpeer(c)) {
            return;
        }
        let Some(new) = self.first_up(ctx, c) else { return };
        self.sp[c as usize] = new;
        self.elections += 1;
        for v in self.members(c, ctx.world.nodes()).map(NodeId) {
            if v != new && ctx.is_up(v) {
                ctx.send(v, new, Msg::Register);
            }
        }
    }

    /// Members of `sp`'s cluster that its index names as holding `want` (members
    /// up, under churn or faults; the requester left out when it is a member), and
    /// how many of them really hold it now. The two differ only under changing
    /// resources, when the index holds each member's list as last sent.
    fn matches(&self, ctx: &Ctx<'_, Self>, sp: NodeId, want: ResourceType, requester: Option<NodeId>) -> (u32, u32) {
        let first = sp.0 / self.cluster * self.cluster;
        let end = first.saturating_add(self.cluster);
        let inside = |all: &[NodeId]| -> std::ops::Range<usize> {
            all.partition_point(|v| v.0 < first)..all.partition_point(|v| v.0 < end)
        };
        if !self.since.is_empty() {
            let all = ctx.ever_held(want);
            let (mut named, mut matching) = (0, 0);
            for &v in &all[inside(all)] {
                if Some(v) != requester && ctx.is_up(v) && ctx.held_at(v, want, SimTime(self.since[v.index()])) {
                    named += 1;
                    matching += ctx.holds(v, want) as u32;
                }
            }
            return (named, matching);
        }
        let holders = ctx.holders(want);
        let members = &holders[inside(holders)];
        let found = if ctx.dynamic() {
            members.iter().filter(|&&v| Some(v) != requester && ctx.is_up(v)).count() as u32
        } else {
            members.len() as u32 - requester.is_some_and(|r| ctx.holds(r, want)) as u32
        };
        (found, found)
    }

    /// A query reaches super-peer `at` from `from` (a neighbour super-peer, a member
    /// of its cluster, or `at` itself when the requester is the super-peer).
    fn arrive(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, from: NodeId, query: Msg) {
        let Msg::Query { q, want, ttl, hops } = query else { return };
        if ctx.expired(q) {
            return;
        }
        let Some(table) = self.routes.of(ctx.issued(q)) else { return };
        match table.entry(key(q, at)) {
            Entry::Occupied(_) => {
                self.duplicates += 1;
                return;
            }
            Entry::Vacant(e) => {
                e.insert(Route { parent: from, relayed: 0 });
            }
        }
        ctx.report_reached(q);
        let local = self.superpeer_of(from) == at;
        let (named, found) = self.matches(ctx, at, want, local.then_some(from));
        if named > 0 {
            ctx.report_answer(q, found < named);
        }
        if found > 0 {
            if local {
                self.relay(ctx, at, q, found, hops);
            } else {
                ctx.send(at, from, Msg::Hit { q, count: found, hops });
            }
        }
        if self.results > 0 && named >= self.results {
            return;
        }
        if ttl > 0 {
            let c = at.0 / self.cluster;
            for i in 0..self.overlay.neighbours(NodeId(c)).len() {
                let to = self.superpeer(self.overlay.neighbours(NodeId(c))[i].0);
                if to != from {
                    ctx.send(at, to, Msg::Query { q, want, ttl: ttl - 1, hops: hops.saturating_add(1) });
                }
            }
        }
    }

    /// At the requester's super-peer `at`: passes `count` results on to the requester,
    /// no more than it still wants.
    fn relay(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, q: QueryId, count: u32, hops: u16) {
        let results = self.results;
        let Some(route) = self.routes.of(ctx.issued(q)).and_then(|t| t.get_mut(&key(q, at))) else { return };
        let count = if results > 0 { count.min(results.saturating_sub(route.relayed)) } else { count };
        if count == 0 {
            return;
        }
        route.relayed += count;
        let requester = route.parent;
        if requester == at {
            ctx.report_hit(q, hops as u32, count);
        } else {
            ctx.send(at, requester, Msg::Hit { q, count, hops });
        }
    }

    /// The super-peer overlay: the generated graph, joined into one component if the
    /// draw came out disconnected.
    fn build_overlay(&self, ctx: &mut Ctx<'_, Self>) -> Overlay {
        let s = self.superpeers as usize;
        if s < 2 {
            return Overlay::from_edges(s, []);
        }
        // Validation refused parameters that all but certainly disconnect it, so the
        // draw is taken as it comes and any stray components are joined below.
        let overlay = topology::build(&self.spec, Some(s as u32), true, Path::new("."), ctx.rng())
            .unwrap_or_else(|_| Overlay::from_edges(s, []));
        let label = overlay.components();
        if label.iter().all(|&l| l == 0) {
            return overlay;
        }
        // The lowest super-peer of each component, in label order (labels follow it).
        let mut first: Vec<u32> = Vec::new();
        for (v, &l) in label.iter().enumerate() {
            if l as usize == first.len() {
                first.push(v as u32);
            }
        }
        let mut edges = overlay.edge_list();
        edges.extend(first.windows(2).map(|w| (w[0], w[1])));
        Overlay::from_edges(s, edges)
    }
}

impl Protocol for Superpeer {
    type Msg = Msg;
    type Timer = Elect;

    fn start(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.routes.start(ctx.timeout());
        ctx.answers_from_stored_state();
        if ctx.resources_change() {
            self.since = vec![0; ctx.world.nodes()];
        }
        self.overlay = self.build_overlay(ctx);
        if ctx.dynamic() {
            self.sp = (0..self.superpeers).map(|c| NodeId(c * self.cluster)).collect();
            // Clusters whose first node starts down have elected another already.
            for c in 0..self.superpeers {
                if let Some(v) = self.first_up(ctx, c) {
                    self.sp[c as usize] = v;
                }
            }
        }
    }

    fn global_timer(&mut self, ctx: &mut Ctx<'_, Self>, Elect(c): Elect) {
        self.elect(ctx, c);
    }

    fn leaving(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId) {
        let c = at.0 / self.cluster;
        if self.superpeer(c) == at {
            // It hands over as it goes, so the election runs as soon as it is down.
            ctx.set_global_timer(ctx.leave_time(), Elect(c));
        }
    }

    fn crashed(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId) {
        let c = at.0 / self.cluster;
        if self.superpeer(c) == at {
            ctx.set_global_timer(self.election, Elect(c));
        }
    }

    fn joined(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, _: Option<NodeId>) {
        let c = at.0 / self.cluster;
        if !ctx.is_up(self.superpeer(c)) {
            // The first member back in an empty cluster is its super-peer.
            self.elect(ctx, c);
        } else if self.superpeer(c) != at {
            ctx.send(at, self.superpeer(c), Msg::Register);
        }
    }

    fn changed(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId) {
        let sp = self.superpeer_of(v);
        if sp == v {
            self.since[v.index()] = ctx.now().0;
        } else {
            ctx.send(v, sp, Msg::Update { sent: ctx.now() });
        }
    }

    fn role(&self, name: &str) -> Vec<NodeId> {
        if name != "superpeers" {
            return Vec::new();
        }
        (0..self.superpeers).map(|c| self.superpeer(c)).collect()
    }

    fn query(&mut self, ctx: &mut Ctx<'_, Self>, q: QueryId, origin: NodeId, want: ResourceType) {
        self.routes.open(ctx.now());
        let sp = self.superpeer_of(origin);
        if sp == origin {
            self.arrive(ctx, sp, sp, Msg::Query { q, want, ttl: self.ttl, hops: 0 });
        } else {
            ctx.send(origin, sp, Msg::Query { q, want, ttl: self.ttl, hops: 1 });
        }
    }

    fn message(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, from: NodeId, msg: Msg) {
        match msg {
            Msg::Register => {
                if let Some(s) = self.since.get_mut(from.index()) {
                    *s = ctx.now().0;
                }
            }
            Msg::Update { sent } => {
                // Only the member's super-peer keeps its entry; one that has lost
                // the role since has no index to update.
                if self.superpeer_of(from) == at {
                    let s = &mut self.since[from.index()];
                    *s = (*s).max(sent.0);
                }
            }
            Msg::Query { .. } => self.arrive(ctx, at, from, msg),
            Msg::Hit { q, count, hops } => {
                if ctx.expired(q) {
                    return;
                }
                if self.superpeer_of(at) != at {
                    // A plain member only ever receives answers to its own queries.
                    ctx.report_hit(q, hops as u32, count);
                    return;
                }
                let Some(parent) = self.routes.get(ctx.issued(q)).and_then(|t| t.get(&key(q, at))).map(|r| r.parent)
                else {
                    return;
                };
                if self.superpeer_of(parent) == at {
                    self.relay(ctx, at, q, count, hops);
                } else {
                    ctx.send(at, parent, Msg::Hit { q, count, hops });
                }
            }
        }
    }

    fn state_bytes(&self) -> usize {
        self.routes.bytes() + self.overlay.bytes() + self.since.capacity() * 8
    }

    fn extra_metrics(&self, _recorder: &Recorder, out: &mut Vec<Metric>) {
        out.push(Metric::new("superpeers", Some(self.superpeers as f64)));
        out.push(Metric::new("duplicate_queries", Some(self.duplicates as f64)));
        out.push(Metric::new("superpeer_elections", Some(self.elections as f64)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Rate, RunOutput, SimConfig, SimTime};
    use crate::protocols::ProtocolSpec;
    use crate::validate::world;
    use crate::workload::{ScriptedQuery, Workload, WorkloadSpec};
    use crate::world::Resources;

    fn config(seconds: u64) -> SimConfig {
        SimConfig { timeout: SimTime::from_secs(10), ..SimConfig::new(3, SimTime::from_secs(seconds)) }
    }

    fn run(w: &World, params: Params, spec: &WorkloadSpec, cfg: &SimConfig) -> RunOutput {
        let workload = Workload::new(spec, w.nodes(), w.resources.types(), cfg.duration, 5);
        ProtocolSpec::Superpeer(params).run(w, workload, cfg)
    }

    fn scripted(queries: &[(u64, u32)]) -> WorkloadSpec {
        WorkloadSpec {
            rate: Rate(0.0),
            script: queries
                .iter()
                .map(|&(ms, origin)| ScriptedQuery { at: SimTime::from_millis(ms), origin, rtype: 0 })
                .collect(),
            ..Default::default()
        }
    }

    fn diameter(o: &Overlay) -> u32 {
        (0..o.nodes() as u32).flat_map(|v| o.bfs(NodeId(v))).max().unwrap_or(0)
    }

    #[test]
    fn ttl_covering_the_overlay_finds_every_resource_held_elsewhere() {
        // 60 nodes in 10 clusters; one replica of each of 20 types, so a query fails
        // exactly when its origin is the only holder.
        let w = world(&TopologySpec::RandomRegular { degree: 4 }, 60, 20, 20, 1, 11);
        let cfg = config(20);
        let overlay = TopologySpec::RandomRegular { degree: 3 };
        let probe = Params { cluster_size: 6, ttl: 0, results: 0, overlay: overlay.clone(), ..Default::default() };
        let workload = Workload::new(&scripted(&[]), 60, 20, cfg.duration, 5);
        let built = crate::engine::Simulation::new(&w, probe.build(&w), workload, &cfg).run_protocol();
        assert_eq!(built.overlay.nodes(), 10);
        let d = diameter(&built.overlay);
        assert!((2..10).contains(&d), "diameter {d}");
        let spec = WorkloadSpec { rate: Rate(40.0), ..Default::default() };
        let out = run(&w, Params { ttl: d, ..probe }, &spec, &cfg);
        let queries: Vec<_> = out.recorder.measured().collect();
        let answerable = queries.iter().filter(|q| w.resources.holders(q.want).iter().any(|&v| v != q.origin)).count();
        let expected = answerable as f64 / queries.len() as f64;
        assert!(queries.len() > 500 && expected < 1.0 && expected > 0.9, "{} queries, {expected}", queries.len());
        assert_eq!(out.metric("success_rate").unwrap(), expected);
        assert_eq!(out.metric("superpeers").unwrap(), 10.0);
        // Every super-peer looks each query up once.
        assert!(queries.iter().all(|q| q.reached == 10));
    }

    #[test]
    fn query_messages_scale_with_superpeers_not_nodes() {
        let per_query = |n: u32, c: u32| {
            let w = world(&TopologySpec::RandomRegular { degree: 4 }, n, 20, 50, 1, 5);
            let cfg = config(5);
            let spec = WorkloadSpec { rate: Rate(20.0), ..Default::default() };
            let params = Params { cluster_size: c, ttl: 30, ..Params::default() };
            let out = run(&w, params, &spec, &cfg);
            out.metric("messages_query").unwrap() / out.metric("queries").unwrap()
        };
        let a = per_query(2000, 10);
        let b = per_query(4000, 20);
        let c = per_query(4000, 10);
        // A 4-regular overlay flooded whole: about 4 + 3·(S − 1) forwards per query.
        assert!((a - b).abs() / a < 0.1, "S = 200: {a:.1} vs {b:.1}");
        assert!(c / a > 1.5, "S = 400: {c:.1}, S = 200: {a:.1}");
        assert!(a > 400.0 && a < 700.0, "{a:.1}");
    }

    #[test]
    fn a_moved_copy_is_stale_at_the_superpeer_until_its_update_arrives() {
        use crate::dynamics::Dynamics;
        use crate::dynamics::changes::first_change_alone;
        use crate::world::Changes;
        // One cluster of 20 with its super-peer on node 0; only node 5 holds type 0
        // and its copy moves once. The super-peer's own query 1 ms after the move
        // meets the old entry; 100 ms after, the Update (20 ms) has arrived.
        let mut w = world(&TopologySpec::Ring {}, 20, 20, 1, 0, 1);
        w.resources = Resources::from_holders(20, vec![vec![5]]);
        let changes = Changes { moves: Rate(0.005), ..Changes::default() };
        let (seed, moved, [_, to]) = first_change_alone(&changes, &w.resources, 20, SimTime::from_secs(3));
        assert_ne!(to, Some(NodeId(0)), "this seed's move is to a member");
        let ms = moved.0 / 1_000_000;
        let cfg = SimConfig {
            timeout: SimTime::from_secs(1),
            dynamics: Dynamics { changes, ..Dynamics::default() },
            ..SimConfig::new(seed, SimTime::from_millis(ms + 200))
        };
        let params = Params { cluster_size: 20, ..Default::default() };
        let out = run(&w, params, &scripted(&[(ms + 1, 0), (ms + 100, 0)]), &cfg);
        let hits: Vec<u32> = out.recorder.queries.iter().map(|q| q.hits).collect();
        assert_eq!(hits, [0, 1]);
        assert_eq!(out.metric("stale_answer_rate"), Some(0.5));
        assert_eq!(out.metric("messages_update"), Some(2.0));
    }

    /// 40 nodes in 4 clusters (super-peers 0, 10, 20, 30) on a super-peer ring;
    /// type 0 is held by node 3 (cluster 0) and node 15 (cluster 1).
    fn ring_world() -> World {
        let mut w = world(&TopologySpec::Ring {}, 40, 20, 1, 0, 1);
        w.resources = Resources::from_holders(40, vec![vec![3, 15]]);
        w
    }

    fn ring(results: u32) -> Params {
        Params { cluster_size: 10, ttl: 4, results, overlay: TopologySpec::Ring {}, ..Default::default() }
    }

    #[test]
    fn a_local_answer_that_satisfies_the_request_stops_the_query() {
        let w = ring_world();
        let cfg = config(10);
        // From node 5: the local leg and one hit, nothing forwarded.
        let out = run(&w, ring(1), &scripted(&[(0, 5)]), &cfg);
        let q = &out.recorder.queries[0];
        assert_eq!((q.messages, q.hits, q.hops, q.reached), (2.0, 1, 1, 1));
        assert_eq!(q.latency(), Some(SimTime::from_millis(40)));
        // From the super-peer itself: no message at all.
        let out = run(&w, ring(1), &scripted(&[(0, 0)]), &cfg);
        let q = &out.recorder.queries[0];
        assert_eq!((q.messages, q.hits, q.hops, q.reached), (0.0, 1, 0, 1));
    }

    #[test]
    fn unlimited_results_flood_the_ring_and_return_every_hit() {
        let w = ring_world();
        let out = run(&w, ring(0), &scripted(&[(0, 5)]), &config(10));
        let q = &out.recorder.queries[0];
        // Queries: local leg 1, super-peer 0 → 10 and 30, 10 → 20, 30 → 20, and 20
        // forwards the first copy (from 10) on to 30: 6. Hits: 0 → 5, 10 → 0 → 5: 3.
        assert_eq!((q.messages, q.hits, q.hops, q.reached), (9.0, 2, 1, 4));
        assert_eq!(out.metric("messages_query").unwrap(), 6.0);
        assert_eq!(out.metric("messages_query_hit").unwrap(), 3.0);
        assert_eq!(out.metric("duplicate_queries").unwrap(), 2.0);
    }

    #[test]
    fn satisfied_superpeers_stop_forwarding_and_the_home_superpeer_stops_relaying() {
        let w = ring_world();
        let out = run(&w, ring(1), &scripted(&[(0, 25)]), &config(10));
        let q = &out.recorder.queries[0];
        // Queries: 25 → 20, 20 → 10 and 30, 30 → 0 (10 and 0 answer and stop): 4.
        // Hits: 10 → 20 → 25, 0 → 30 → 20, dropped there: 4.
        assert_eq!(out.metric("messages_query").unwrap(), 4.0);
        assert_eq!(out.metric("messages_query_hit").unwrap(), 4.0);
        assert_eq!((q.hits, q.hops, q.reached), (1, 2, 4));
        // TTL 0: the local cluster only, which has nothing.
        let out = run(&w, Params { ttl: 0, ..ring(0) }, &scripted(&[(0, 25)]), &config(10));
        let q = &out.recorder.queries[0];
        assert_eq!((q.messages, q.hits, q.reached), (1.0, 0, 1));
    }

    #[test]
    fn one_cluster_answers_from_its_own_index() {
        let w = ring_world();
        let out = run(&w, Params { cluster_size: 40, ..ring(0) }, &scripted(&[(0, 15)]), &config(10));
        let q = &out.recorder.queries[0];
        // Node 15 does not count itself; node 3 is found.
        assert_eq!((q.messages, q.hits, q.reached), (2.0, 1, 1));
        assert_eq!(out.metric("superpeers").unwrap(), 1.0);
    }

    #[test]
    fn a_disconnected_draw_is_joined_into_one_overlay() {
        // G(n,p) with mean degree 1 on 10 super-peers passes validation (about 3.7
        // isolated nodes expected) but is almost never connected.
        let w = world(&TopologySpec::RandomRegular { degree: 4 }, 100, 20, 1, 0, 1);
        let cfg = config(1);
        for seed in 0..5 {
            let params = Params { overlay: TopologySpec::ErdosRenyi { mean_degree: 1.0 }, ..Params::default() };
            assert!(params.validate(&RunFigures::on_nodes(100)).is_ok());
            let workload = Workload::new(&scripted(&[]), 100, 1, cfg.duration, 5);
            let cfg = SimConfig { seed, ..cfg.clone() };
            let p = crate::engine::Simulation::new(&w, params.build(&w), workload, &cfg).run_protocol();
            assert_eq!(p.overlay.nodes(), 10);
            assert_eq!(p.overlay.largest_component_size(), 10, "seed {seed}");
        }
    }

    #[test]
    fn same_seed_same_run() {
        let w = world(&TopologySpec::RandomRegular { degree: 4 }, 300, 20, 30, 2, 4);
        let spec = WorkloadSpec { rate: Rate(50.0), ..Default::default() };
        let a = run(&w, Params::default(), &spec, &config(5));
        let b = run(&w, Params::default(), &spec, &config(5));
        assert_eq!((a.fingerprint, a.events), (b.fingerprint, b.events));
        assert_eq!(a.metric("messages_total").unwrap(), b.metric("messages_total").unwrap());
    }

    #[test]
    fn bad_parameters_name_their_key() {
        let e = Params { cluster_size: 0, ..Params::default() }.validate(&RunFigures::on_nodes(100)).unwrap_err();
        assert_eq!(e.key, "cluster_size");
        let e = Params { cluster_size: 101, ..Params::default() }.validate(&RunFigures::on_nodes(100)).unwrap_err();
        assert_eq!(e.key, "cluster_size");
        let e = Params { ttl: 256, ..Params::default() }.validate(&RunFigures::on_nodes(100)).unwrap_err();
        assert_eq!(e.key, "ttl");
        // 4 super-peers cannot form a 4-regular overlay.
        let e = Params { cluster_size: 25, ..Params::default() }.validate(&RunFigures::on_nodes(100)).unwrap_err();
        assert_eq!(e.key, "overlay.degree");
        assert!(e.message.contains("4 super-peers") && e.message.contains("1 ≤ degree < nodes"), "{}", e.message);
        let e = Params { cluster_size: 50, overlay: TopologySpec::Ring {}, ..Params::default() }
            .validate(&RunFigures::on_nodes(100))
            .unwrap_err();
        assert_eq!(e.key, "overlay");
        let edges = TopologySpec::Edges { path: "g.txt".into(), largest_component: true };
        let e = Params { overlay: edges, ..Params::default() }.validate(&RunFigures::on_nodes(100)).unwrap_err();
        assert_eq!(e.key, "overlay.kind");
        // One super-peer needs no overlay; the defaults suit 100 nodes.
        assert!(Params { cluster_size: 100, ..Params::default() }.validate(&RunFigures::on_nodes(100)).is_ok());
        assert!(Params::default().validate(&RunFigures::on_nodes(100)).is_ok());
        let key = |text: &str| {
            let table: toml::Table = toml::from_str(text).expect("valid TOML");
            ProtocolSpec::from_table(&table).map(|_| ()).unwrap_err().key
        };
        assert_eq!(key("name = \"superpeer\"\nresults = -1"), "results");
        assert_eq!(key("name = \"superpeer\"\noverlay = { kind = \"ring\", degree = 2 }"), "overlay.degree");
        // A wrong value inside the tagged table is blamed on its own key.
        assert_eq!(key("name = \"superpeer\"\noverlay = { kind = \"random-regular\", degree = -4 }"), "overlay.degree");
    }

    #[test]
    fn clusters_elect_a_new_superpeer_after_a_crash_and_queries_find_resources_again() {
        use crate::dynamics::{Action, Dynamics, Fault, Victims};
        let w = world(&TopologySpec::Ring {}, 200, 10, 20, 5, 1);
        let s = SimTime::from_secs;
        let crash =
            Fault { at: s(10), action: Action::Crash { victims: Victims::Role("superpeers".into()), recover: None } };
        let cfg = SimConfig {
            timeout: s(2),
            dynamics: Dynamics { churn: None, faults: vec![crash], ..Dynamics::default() },
            ..SimConfig::new(3, s(30))
        };
        let params = Params { election: s(5), ttl: 8, ..Default::default() };
        let out = run(&w, params, &WorkloadSpec { rate: Rate(50.0), ..Default::default() }, &cfg);
        let rate = |from: f64, to: f64| {
            let q: Vec<_> =
                out.recorder.queries.iter().filter(|q| (from..to).contains(&q.issued.as_secs_f64())).collect();
            q.iter().filter(|q| q.succeeded()).count() as f64 / q.len().max(1) as f64
        };
        let before = rate(0.0, 9.9);
        assert!(before > 0.9, "{before}");
        assert_eq!(rate(10.0, 14.9), 0.0, "every query goes to a dead super-peer");
        assert!(rate(16.0, 28.0) > 0.9 * before, "{} after the election", rate(16.0, 28.0));
        assert_eq!(out.metric("superpeer_elections"), Some(20.0));
        // In each of the 20 clusters the eight members up besides the new super-peer register.
        assert_eq!(out.metric("messages_register"), Some(20.0 * 8.0));
    }
}
