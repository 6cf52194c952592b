//! `forwarding`: request forwarding for grid resource discovery (Iamnitchi and
//! Foster, "On Fully Decentralized Resource Discovery in Grid Environments", Grid
//! 2001, LNCS 2242).
//!
//! The paper's framework has four parts: a membership protocol (how nodes join and
//! learn of each other), an overlay function (which known nodes a node sends
//! requests to), preprocessing, and request processing. Its request processing: a
//! user sends its request to its local node; a node that holds a matching resource
//! answers the requester; otherwise it forwards the request to one node it knows
//! (never to several), until a node answers or the request's time-to-live runs
//! out. The four forwarding strategies, as the paper names them:
//!
//! - `random`: a node chosen uniformly among those the node knows;
//! - `experience-random` ("experience-based + random"): nodes learn from
//!   experience, recording which node answered which request; a request goes to
//!   the node that answered a similar request before, else to a random node;
//! - `best-neighbour`: the number of answers received from each node is recorded,
//!   regardless of what was asked; a request goes to the node that answered the
//!   most, so a node knows nothing better than random until an answer reaches it;
//! - `experience-best-neighbour` ("experience-based + best neighbor"): experience
//!   when it applies, else best-neighbour.
//!
//! The model, `answer = "direct"` (the default): the request carries the
//! requester's address, and the matching node sends its answer straight to the
//! requester, one message. The requester learns from it which node satisfied the
//! request (for experience, by type; for best-neighbour, one answer more from that
//! node) and adds that node to its membership, the nodes it knows and forwards to:
//! so a later request for the same type goes to it at once, one hop, though it is
//! no overlay neighbour. A node's membership starts as its overlay neighbours and
//! only grows. Every strategy forwards among the whole membership (`random` picks
//! any known node, learned ones included); what differs is how it chooses.
//!
//! `answer = "reverse-path"` is a variant, not the paper's: the answer returns hop by
//! hop along the request's path, as in Gnutella, and every node it passes learns
//! the answering node as the requester does. It costs as many answer messages as
//! the request took hops, and spreads experience to the nodes on the way.
//!
//! Where this model is simpler than the paper, or chooses what the paper leaves open:
//! - Similar requests. The paper applies experience to *similar* requests; resource
//!   types here carry no attributes, so similarity is closeness of type ids: with
//!   `similar = d` a request for type t uses what was learned for the nearest type
//!   within d of t (the lower one on a tie). `similar = 0`, the default, is exact
//!   match. Similar types share holders only where the placement makes some nodes
//!   hold many types (unbalanced distributions).
//! - A node avoids the nodes already on the request's path when it knows one that
//!   is not; when all are, it chooses among all it knows. The path is kept by the
//!   protocol as a per-query table, not carried inside the message.
//! - Storage: experience is one node per type, the one learned last; `memory`
//!   bounds the entries per node (least recently learned evicted), 0 = unbounded.
//!   Answer counts and the learned members are kept without bound: a node learns
//!   at most one of each per answer it receives.
//! - Resources do not change during a run and nodes do not join or leave.
//! - One request per query and no retries. A request stops at the workload's
//!   timeout; an answer arriving later still teaches its receiver but is no hit.
//! - `ttl` defaults to 100 hops, the paper's time-to-live.
//!
//! `hops_mean_all` is the mean over measured requests of the hops each travelled,
//! failed ones included, so that a strategy cannot look short by failing its long
//! walks; `hops_to_first_hit_mean` counts only the satisfied ones.

use std::collections::BTreeMap;

use rand::RngExt;
use rustc_hash::FxHashMap;
use serde::Deserialize;

use super::flooding::{QUERY_BYTES, QUERY_HIT_BYTES};
use super::routes::{QueryTables, key};
use super::{MemoryPart, ParamDoc, ParamError, ProtocolInfo, ProtocolParams, RunFigures, TCP_IP_BYTES};
use crate::engine::{Ctx, Message, NodeId, Protocol, QueryId, ResourceType, SimTime};
use crate::metrics::{Column, Metric, Recorder};
use crate::world::World;

/// How a node chooses where to forward a request.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// `random`: a known node chosen uniformly at random.
    Random,
    /// `experience-random`: the node that answered a similar request last, else random.
    #[default]
    ExperienceRandom,
    /// `best-neighbour`: the known node that answered the most requests, ties at random.
    BestNeighbour,
    /// `experience-best-neighbour`: experience when the node has it, else best-neighbour.
    ExperienceBestNeighbour,
}

impl Strategy {
    fn uses_experience(self) -> bool {
        matches!(self, Strategy::ExperienceRandom | Strategy::ExperienceBestNeighbour)
    }
    fn uses_counts(self) -> bool {
        matches!(self, Strategy::BestNeighbour | Strategy::ExperienceBestNeighbour)
    }
}

/// Where the answer goes, and so who learns from it.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Answer {
    /// `direct`: the matching node answers the requester in one message (the paper).
    #[default]
    Direct,
    /// `reverse-path`: the answer returns hop by hop and every node on the way learns.
    ReversePath,
}

/// `[protocol]` with `name = "forwarding"`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// How each node chooses the next hop of a request.
    #[serde(default)]
    pub strategy: Strategy,
    /// Hops a request may travel, 1 ≤ ttl ≤ 65535.
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    /// Experience entries kept per node; 0 keeps all.
    #[serde(default)]
    pub memory: u32,
    /// Where the answer goes: to the requester (`direct`) or back along the path.
    #[serde(default)]
    pub answer: Answer,
    /// Types within this distance of the wanted one count as similar; 0 = exact match.
    #[serde(default)]
    pub similar: u32,
}

fn default_ttl() -> u32 {
    100
}

impl Default for Params {
    fn default() -> Self {
        Params { strategy: Strategy::default(), ttl: default_ttl(), memory: 0, answer: Answer::Direct, similar: 0 }
    }
}

impl ProtocolParams for Params {
    type Protocol = Forwarding;

    const INFO: ProtocolInfo = ProtocolInfo {
        name: "forwarding",
        source: "Iamnitchi & Foster, On Fully Decentralized Resource Discovery in Grid Environments, Grid 2001",
        summary: "one request forwarded node to node (random, experience, best-neighbour); the holder answers the requester, which learns it",
        uses_overlay: true,
        extra_columns: &[
            Column::new("hops_mean_all", "hops per request, failed ones included (mean)"),
            Column::new("experience_used", "decisions taken from experience (fraction)"),
            Column::new("path_revisits", "steps to a node the request had visited"),
            Column::new("members_learned", "nodes added to memberships by answers"),
        ],
        roles: &[],
        keeps_state: false,
        params: &[
            ParamDoc::new(
                "strategy",
                "\"experience-random\"",
                "next hop: random, experience-random, best-neighbour or experience-best-neighbour",
            ),
            ParamDoc::new("ttl", "100", "hops a request may travel, 1 ≤ ttl ≤ 65535").label("TTL (hops)"),
            ParamDoc::new("memory", "0", "experience entries per node, least recently learned evicted; 0 = unbounded")
                .label("experience entries per node"),
            ParamDoc::new(
                "answer",
                "\"direct\"",
                "direct: the holder answers the requester, which learns; reverse-path: the answer returns hop by hop and every node on the path learns",
            ),
            ParamDoc::new(
                "similar",
                "0",
                "types within this distance of the wanted one count as similar; 0 = exact match",
            )
            .label("similarity window (types)"),
        ],
    };

    fn build(&self, world: &World) -> Forwarding {
        let n = world.nodes();
        Forwarding {
            strategy: self.strategy,
            ttl: self.ttl.clamp(1, u16::MAX as u32) as u16,
            memory: self.memory as usize,
            answer: self.answer,
            similar: self.similar,
            counts: vec![FxHashMap::default(); n],
            members: vec![Vec::new(); n],
            experience: if self.strategy.uses_experience() { vec![BTreeMap::new(); n] } else { Vec::new() },
            learned: 0,
            members_learned: 0,
            paths: QueryTables::default(),
            warmup: SimTime::ZERO,
            measured: 0,
            walked: 0,
            decisions: 0,
            from_experience: 0,
            revisits: 0,
            pool: Vec::new(),
        }
    }

    /// The per-query path tables, experience, answer counts and learned members.
    fn memory(&self, run: &RunFigures) -> Vec<MemoryPart> {
        let n = run.nodes as f64;
        // A walk visits at most ttl nodes, and rarely more than the whole grid.
        let path = (self.ttl as f64).min(n);
        let types = run.resource_types as f64;
        let kept = if self.memory == 0 { types } else { types.min(self.memory as f64) };
        // A node learns at most one member and one count per answer it receives.
        let answers = run.queries().min(n * types);
        vec![
            MemoryPart::new(
                "request paths",
                "workload.rate × workload.timeout, protocol.ttl",
                run.live_queries() * path * 40.0 + run.queries() * 8.0,
            ),
            MemoryPart::new(
                "experience, answer counts and members",
                "protocol.memory, resources.types, workload.rate × duration",
                n * kept.min(answers) * 48.0 + answers * 24.0 + n * 64.0,
            ),
        ]
    }

    fn validate(&self, _run: &RunFigures) -> Result<(), ParamError> {
        if !(1..=u16::MAX as u32).contains(&self.ttl) {
            return Err(ParamError::new(
                "ttl",
                format!("ttl {} is out of range; expected 1 ≤ ttl ≤ 65535 (requests carry it in 16 bits)", self.ttl),
            ));
        }
        Ok(())
    }
}

/// One hop of a request.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    /// The query the request is for.
    pub q: QueryId,
    /// The resource type a holder must have.
    pub want: ResourceType,
    /// The requester, whom the holder answers.
    pub origin: NodeId,
    /// Hops the request may still travel, this one included.
    pub ttl: u16,
    /// Hops travelled before this one.
    pub hops: u16,
}

/// The request, forwarded along one path, and the answer.
#[derive(Clone, Copy, Debug)]
pub enum Msg {
    /// One hop of the request.
    Request(Request),
    /// From the holder to the requester (or back along the path); `hops` is the path
    /// length of the request that found the holder.
    Answer {
        /// The query it answers.
        q: QueryId,
        /// The type found.
        want: ResourceType,
        /// The node that holds it, which the receiver learns.
        holder: NodeId,
        /// Path length of the request that found the holder.
        hops: u16,
    },
}

impl Message for Msg {
    const KINDS: &'static [&'static str] = &["request", "answer"];
    /// A request is a Gnutella Query with the requester's address (6 bytes) and
    /// an answer a QueryHit naming the holder.
    const SIZES: &'static [u32] = &[QUERY_BYTES + 6 + TCP_IP_BYTES, QUERY_HIT_BYTES + TCP_IP_BYTES];
    fn kind(&self) -> usize {
        match self {
            Msg::Request(_) => 0,
            Msg::Answer { .. } => 1,
        }
    }
    fn query(&self) -> Option<QueryId> {
        match *self {
            Msg::Request(Request { q, .. }) | Msg::Answer { q, .. } => Some(q),
        }
    }
}

/// A learned answering node for one resource type, and when it was learned (for eviction).
#[derive(Clone, Copy, Debug)]
struct Learned {
    holder: NodeId,
    stamp: u64,
}

/// The request-forwarding protocol: each node's experience, answer counts and
/// learned members, and each request's path.
pub struct Forwarding {
    strategy: Strategy,
    ttl: u16,
    memory: usize,
    answer: Answer,
    similar: u32,
    /// Per node: answers received from each node it knows. Only looked up by key.
    counts: Vec<FxHashMap<NodeId, u32>>,
    /// Per node: the nodes it learned from answers that are not overlay neighbours,
    /// ascending, so choices over the membership never depend on a hash order.
    members: Vec<Vec<NodeId>>,
    /// Per node: resource type → the node that answered it last.
    experience: Vec<BTreeMap<ResourceType, Learned>>,
    learned: u64,
    members_learned: u64,
    /// (query, node) → the node the request first came from (the origin maps to
    /// itself): the request's path, and its reverse for `reverse-path` answers.
    paths: QueryTables<NodeId>,
    warmup: SimTime,
    /// Over measured queries: their number, the hops their requests travelled (a
    /// request travels one path, so every arrival is one hop more), forwarding
    /// decisions, decisions taken from experience, arrivals at nodes already on the path.
    measured: u64,
    walked: u64,
    decisions: u64,
    from_experience: u64,
    revisits: u64,
    /// Scratch list of the nodes a node may choose from.
    pool: Vec<NodeId>,
}

impl Forwarding {
    /// Node `at` learns that `holder` answered a request for `want`.
    fn learn(&mut self, world: &World, at: NodeId, want: ResourceType, holder: NodeId) {
        if holder == at {
            return;
        }
        *self.counts[at.index()].entry(holder).or_insert(0) += 1;
        if world.overlay.link(at, holder).is_none() {
            let members = &mut self.members[at.index()];
            if let Err(pos) = members.binary_search(&holder) {
                members.insert(pos, holder);
                self.members_learned += 1;
            }
        }
        if !self.strategy.uses_experience() {
            return;
        }
        let stamp = self.learned;
        self.learned += 1;
        let known = &mut self.experience[at.index()];
        if let Some(entry) = known.get_mut(&want) {
            *entry = Learned { holder, stamp };
            return;
        }
        if self.memory > 0 && known.len() >= self.memory {
            // Stamps are unique, so the oldest entry is one whatever the scan order.
            if let Some(oldest) = known.iter().min_by_key(|(_, l)| l.stamp).map(|(t, _)| *t) {
                known.remove(&oldest);
            }
        }
        known.insert(want, Learned { holder, stamp });
    }

    /// What `at` learned for the type nearest `want` within the similarity window.
    fn experience_for(&self, at: NodeId, want: ResourceType) -> Option<NodeId> {
        let known = &self.experience[at.index()];
        if self.similar == 0 {
            return known.get(&want).map(|l| l.holder);
        }
        let lo = ResourceType(want.0.saturating_sub(self.similar));
        let hi = ResourceType(want.0.saturating_add(self.similar));
        known.range(lo..=hi).min_by_key(|(t, _)| (t.0.abs_diff(want.0), t.0)).map(|(_, l)| l.holder)
    }

    /// Chooses the next hop of `request` at `at` and sends it there.
    fn forward(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, request: Request) {
        let Request { q, want, .. } = request;
        let neighbours = ctx.neighbours(at);
        let members = &self.members[at.index()];
        if neighbours.is_empty() && members.is_empty() {
            return;
        }
        self.pool.clear();
        if let Some(table) = self.paths.get(ctx.issued(q)) {
            let fresh = |v: &&NodeId| !table.contains_key(&key(q, **v));
            self.pool.extend(neighbours.iter().filter(fresh));
            self.pool.extend(members.iter().filter(fresh));
        }
        if self.pool.is_empty() {
            self.pool.extend_from_slice(&neighbours);
            self.pool.extend_from_slice(members);
        }
        let mut next = None;
        if self.strategy.uses_experience()
            && let Some(v) = self.experience_for(at, want)
            && self.pool.contains(&v)
        {
            next = Some(v);
        }
        let from_experience = next.is_some();
        if next.is_none() && self.strategy.uses_counts() {
            let counts = &self.counts[at.index()];
            let count = |v: &NodeId| counts.get(v).copied().unwrap_or(0);
            let best = self.pool.iter().map(count).max().unwrap_or(0);
            self.pool.retain(|v| count(v) == best);
        }
        let next = match next {
            Some(v) => v,
            None => self.pool[ctx.rng().random_range(0..self.pool.len())],
        };
        if ctx.issued(q) >= self.warmup {
            self.decisions += 1;
            self.from_experience += from_experience as u64;
        }
        ctx.send(at, next, Msg::Request(request));
    }
}

impl Protocol for Forwarding {
    type Msg = Msg;
    type Timer = ();

    fn start(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.paths.start(ctx.timeout());
        self.warmup = ctx.warmup();
    }

    fn query(&mut self, ctx: &mut Ctx<'_, Self>, q: QueryId, origin: NodeId, want: ResourceType) {
        self.paths.open(ctx.now()).insert(key(q, origin), origin);
        if ctx.now() >= self.warmup {
            self.measured += 1;
        }
        ctx.report_reached(q);
        self.forward(ctx, origin, Request { q, want, origin, ttl: self.ttl, hops: 0 });
    }

    fn message(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, from: NodeId, msg: Msg) {
        match msg {
            Msg::Request(Request { q, want, origin, ttl, hops }) => {
                // Past its timeout a request is dead: nobody forwards or answers it.
                if ctx.expired(q) {
                    return;
                }
                let measured = ctx.issued(q) >= self.warmup;
                let Some(table) = self.paths.of(ctx.issued(q)) else { return };
                let k = key(q, at);
                let revisit = table.contains_key(&k);
                if !revisit {
                    table.insert(k, from);
                }
                let hops = hops.saturating_add(1);
                self.walked += measured as u64;
                if revisit {
                    self.revisits += measured as u64;
                } else {
                    ctx.report_reached(q);
                }
                // The requester does not answer its own request.
                if at != origin && ctx.holds(at, want) {
                    let to = match self.answer {
                        Answer::Direct => origin,
                        Answer::ReversePath => table.get(&k).copied().unwrap_or(origin),
                    };
                    ctx.send(at, to, Msg::Answer { q, want, holder: at, hops });
                    return;
                }
                if ttl > 1 {
                    self.forward(ctx, at, Request { q, want, origin, ttl: ttl - 1, hops });
                }
            }
            Msg::Answer { q, want, holder, hops } => {
                // A late answer no longer counts as a hit, but it still teaches.
                self.learn(ctx.world, at, want, holder);
                match self.answer {
                    Answer::Direct => {
                        ctx.report_found(q, holder);
                        ctx.report_hit(q, hops as u32, 1);
                    }
                    Answer::ReversePath => {
                        match self.paths.get(ctx.issued(q)).and_then(|t| t.get(&key(q, at)).copied()) {
                            Some(parent) if parent == at => {
                                ctx.report_found(q, holder);
                                ctx.report_hit(q, hops as u32, 1);
                            }
                            Some(parent) => ctx.send(at, parent, Msg::Answer { q, want, holder, hops }),
                            None => {}
                        }
                    }
                }
            }
        }
    }

    fn state_bytes(&self) -> usize {
        // hashbrown: the entry and a control byte per slot; a B-tree entry about 24 B.
        let counts: usize = self.counts.iter().map(|m| m.capacity() * 9 + 32).sum();
        let members: usize = self.members.iter().map(|m| m.capacity() * 4 + 24).sum();
        let experience: usize = self.experience.iter().map(|m| m.len() * 24 + 24).sum();
        self.paths.bytes() + counts + members + experience
    }

    fn extra_metrics(&self, _recorder: &Recorder, out: &mut Vec<Metric>) {
        let per_query = |x: u64| (self.measured > 0).then(|| x as f64 / self.measured as f64);
        out.push(Metric::new("hops_mean_all", per_query(self.walked)));
        out.push(Metric::new(
            "experience_used",
            (self.decisions > 0).then(|| self.from_experience as f64 / self.decisions as f64),
        ));
        out.push(Metric::new("path_revisits", per_query(self.revisits)));
        out.push(Metric::new("members_learned", Some(self.members_learned as f64)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Rate, RunOutput, SimConfig};
    use crate::protocols::ProtocolSpec;
    use crate::validate::world;
    use crate::workload::{ScriptedQuery, Workload, WorkloadSpec};
    use crate::world::{Placement, Resources, ResourcesSpec, Skew, TopologySpec};

    fn run(w: &World, params: Params, spec: &WorkloadSpec, config: &SimConfig) -> RunOutput {
        let workload = Workload::new(spec, w.nodes(), w.resources.types(), config.duration, config.seed);
        ProtocolSpec::Forwarding(params).run(w, workload, config)
    }

    /// `count` requests from node 0 for the one copy, at node 5 of a ring of 20, 5 s apart.
    fn ring_repeated(params: Params, count: u64) -> RunOutput {
        let mut w = world(&TopologySpec::Ring {}, 20, 20, 1, 1, 1);
        w.resources = Resources::from_holders(20, vec![vec![5]]);
        let config = SimConfig::new(3, SimTime::from_secs(5 * count));
        let spec = WorkloadSpec {
            rate: Rate(0.0),
            script: (0..count).map(|i| ScriptedQuery { at: SimTime::from_secs(5 * i), origin: 0, rtype: 0 }).collect(),
            ..Default::default()
        };
        run(&w, params, &spec, &config)
    }

    fn with(strategy: Strategy, ttl: u32) -> Params {
        Params { strategy, ttl, ..Params::default() }
    }

    #[test]
    fn on_a_ring_the_request_walks_one_way_and_the_holder_answers_directly() {
        // Avoiding the path, a walk on a ring goes round one way: 5 hops clockwise or
        // 15 the other way; the answer is one message straight to the requester.
        for strategy in [Strategy::Random, Strategy::ExperienceRandom, Strategy::BestNeighbour] {
            let out = ring_repeated(with(strategy, 20), 1);
            let q = &out.recorder.queries[0];
            assert!(q.hops == 5 || q.hops == 15, "{strategy:?}: {} hops", q.hops);
            assert_eq!(q.latency(), Some(SimTime::from_millis(20 * (q.hops as u64 + 1))));
            assert_eq!(q.messages, (q.hops + 1) as f64);
            assert_eq!(q.reached, q.hops + 1, "the origin and every node on the way");
            assert_eq!(out.metric("path_revisits").unwrap(), 0.0);
            assert_eq!(out.metric("members_learned").unwrap(), 1.0, "node 5 is no neighbour of node 0");
        }
    }

    #[test]
    fn a_reverse_path_answer_retraces_the_request() {
        let out = ring_repeated(Params { answer: Answer::ReversePath, ..with(Strategy::Random, 20) }, 1);
        let q = &out.recorder.queries[0];
        assert_eq!(q.latency(), Some(SimTime::from_millis(40 * q.hops as u64)));
        assert_eq!(q.messages, (2 * q.hops) as f64);
        // Every node on the path but the holder's neighbour learns the holder as a
        // new member: hops − 1 of them.
        assert_eq!(out.metric("members_learned").unwrap(), (q.hops - 1) as f64);
    }

    #[test]
    fn the_ttl_bounds_the_walk() {
        let out = ring_repeated(with(Strategy::Random, 4), 2);
        for q in &out.recorder.queries {
            assert!(!q.succeeded());
            assert_eq!(q.messages, 4.0);
        }
        assert_eq!(out.metric("hops_mean_all").unwrap(), 4.0);
    }

    #[test]
    fn learned_holders_are_asked_directly() {
        // After the first answer, experience and best-neighbour send every later
        // request straight to the holder: one hop, one request and one answer.
        for strategy in [Strategy::ExperienceRandom, Strategy::BestNeighbour, Strategy::ExperienceBestNeighbour] {
            let out = ring_repeated(with(strategy, 20), 8);
            let qs = &out.recorder.queries;
            assert!(qs.iter().all(|q| q.succeeded()), "{strategy:?}");
            assert!(qs[1..].iter().all(|q| q.hops == 1 && q.messages == 2.0), "{strategy:?}: {qs:?}");
            // The first request's walk is random, each later one decides once, from experience.
            let used = if strategy.uses_experience() { 7.0 / (qs[0].hops as f64 + 7.0) } else { 0.0 };
            assert_eq!(out.metric("experience_used").unwrap(), used, "{strategy:?}");
        }
        // Random forwarding knows the holder too, but picks it only as one of three.
        let out = ring_repeated(with(Strategy::Random, 20), 40);
        let direct = out.recorder.queries[1..].iter().filter(|q| q.hops == 1).count();
        assert!((5..=22).contains(&direct), "{direct} of 39 random requests went straight to the holder");
    }

    #[test]
    fn similar_requests_use_the_nearest_learned_type() {
        let w = world(&TopologySpec::Ring {}, 10, 20, 10, 1, 1);
        let mut f = Params { similar: 2, ..Params::default() }.build(&w);
        let at = NodeId(0);
        f.learn(&w, at, ResourceType(3), NodeId(5));
        f.learn(&w, at, ResourceType(7), NodeId(6));
        assert_eq!(f.experience_for(at, ResourceType(5)), Some(NodeId(5)), "3 and 7 tie: the lower wins");
        assert_eq!(f.experience_for(at, ResourceType(6)), Some(NodeId(6)));
        assert_eq!(f.experience_for(at, ResourceType(0)), None, "3 is beyond the window");
        let exact = Params::default().build(&w);
        assert_eq!(exact.similar, 0);
    }

    #[test]
    fn bounded_memory_forgets_the_least_recently_learned_type() {
        let w = world(&TopologySpec::Ring {}, 10, 20, 3, 1, 1);
        let params = Params { memory: 2, ..Params::default() };
        let mut f = params.build(&w);
        let at = NodeId(0);
        f.learn(&w, at, ResourceType(0), NodeId(4));
        f.learn(&w, at, ResourceType(1), NodeId(5));
        f.learn(&w, at, ResourceType(0), NodeId(5));
        f.learn(&w, at, ResourceType(2), NodeId(1));
        let known = &f.experience[0];
        assert_eq!(known.len(), 2);
        assert!(!known.contains_key(&ResourceType(1)), "type 1 was learned least recently");
        assert_eq!(known[&ResourceType(0)].holder, NodeId(5));
        assert_eq!(known[&ResourceType(2)].holder, NodeId(1));
        // Node 1 is a ring neighbour; 4 and 5 became members.
        assert_eq!(f.members[0], vec![NodeId(4), NodeId(5)]);
        assert_eq!(f.counts[0][&NodeId(5)], 2);
    }

    #[test]
    fn the_same_seed_gives_the_same_walks() {
        let w = world(&TopologySpec::RandomRegular { degree: 4 }, 300, 5, 20, 3, 9);
        let config = SimConfig { warmup: SimTime::from_secs(2), ..SimConfig::new(9, SimTime::from_secs(10)) };
        let spec = WorkloadSpec { rate: Rate(50.0), popularity: Skew::Geometric(0.2), ..Default::default() };
        let params = Params {
            strategy: Strategy::ExperienceBestNeighbour,
            ttl: 512,
            memory: 3,
            similar: 1,
            ..Params::default()
        };
        let a = run(&w, params.clone(), &spec, &config);
        let b = run(&w, params, &spec, &config);
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.extra, b.extra);
        assert!(a.recorder.queries.len() > 300, "{} queries", a.recorder.queries.len());
    }

    #[test]
    fn a_bad_strategy_lists_the_valid_ones() {
        let table: toml::Table = toml::from_str("name = \"forwarding\"\nstrategy = \"smart\"").unwrap();
        let err = ProtocolSpec::from_table(&table).unwrap_err();
        assert_eq!(err.key, "strategy");
        for name in ["random", "experience-random", "best-neighbour", "experience-best-neighbour"] {
            assert!(err.message.contains(&format!("`{name}`")), "{err}");
        }
        let err = Params { ttl: 0, ..Params::default() }.validate(&RunFigures::on_nodes(10)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "protocol.ttl: ttl 0 is out of range; expected 1 ≤ ttl ≤ 65535 (requests carry it in 16 bits)"
        );
    }

    /// Mean hops of all measured requests per strategy, on the paper's kind of setup
    /// cut down: 1,000 nodes, 1,000 types × 50 copies placed `placement`, 10
    /// requesters with geometric popularity, TTL 100.
    fn hops_by_strategy(placement: Placement) -> Vec<(Strategy, f64)> {
        let mut w = world(&TopologySpec::RandomRegular { degree: 4 }, 1000, 5, 1, 1, 2001);
        let spec = ResourcesSpec { types: 1000, replicas: 50, placement, ..Default::default() };
        w.resources =
            Resources::place(&spec, 1000, &mut crate::base::rng::stream(2001, crate::base::rng::Stream::Resources));
        let config = SimConfig {
            warmup: SimTime::from_secs(100),
            timeout: SimTime::from_secs(5),
            ..SimConfig::new(2001, SimTime::from_secs(1000))
        };
        let load = WorkloadSpec {
            rate: Rate(2.0),
            popularity: Skew::Geometric(0.05),
            requesters: Some(10),
            ..Default::default()
        };
        [Strategy::Random, Strategy::ExperienceRandom, Strategy::BestNeighbour, Strategy::ExperienceBestNeighbour]
            .into_iter()
            .map(|strategy| (strategy, run(&w, with(strategy, 100), &load, &config).metric("hops_mean_all").unwrap()))
            .collect()
    }

    #[test]
    fn experience_is_cheapest_and_best_neighbour_helps_only_when_unbalanced() {
        let get = |r: &[(Strategy, f64)], s: Strategy| r.iter().find(|x| x.0 == s).map_or(f64::NAN, |x| x.1);
        let balanced = hops_by_strategy(Placement::Balanced);
        let unbalanced = hops_by_strategy(Placement::Geometric(0.05));
        for r in [&balanced, &unbalanced] {
            let random = get(r, Strategy::Random);
            assert!(get(r, Strategy::ExperienceRandom) < 0.5 * random, "{r:?}");
            assert!(get(r, Strategy::ExperienceBestNeighbour) < 0.5 * random, "{r:?}");
        }
        // Balanced: the node that answered most holds no more than any other.
        let b = get(&balanced, Strategy::BestNeighbour) / get(&balanced, Strategy::Random);
        // Unbalanced: it holds most types. Random forwarding gains too, as the
        // requesters' memberships fill with the resource-rich nodes that answered.
        let u = get(&unbalanced, Strategy::BestNeighbour) / get(&unbalanced, Strategy::Random);
        assert!(
            b > 0.8 && u < 0.6,
            "best-neighbour / random: balanced {b:.2}, unbalanced {u:.2}; {balanced:?} {unbalanced:?}"
        );
    }
}
