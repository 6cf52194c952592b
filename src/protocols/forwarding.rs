//! `forwarding`: request forwarding for grid resource discovery (Iamnitchi and
//! Foster, "On Fully Decentralized Resource Discovery in Grid Environments", Grid
//! 2001, LNCS 2242).
//!
//! The model as the paper describes it: a request is forwarded node to node along
//! one path, never copied, until it reaches a node that holds a matching resource or
//! its time-to-live runs out. The answer returns along the request's reverse path.
//! Each node chooses the next hop by one of four strategies:
//!
//! - `random`: a neighbour chosen uniformly at random;
//! - `experience-random`: the neighbour through which an answer for the same
//!   resource type last came back, if the node remembers one, else random;
//! - `best-neighbour`: the neighbour through which the most answers (of any type)
//!   came back, ties broken at random, so random until some answer has passed;
//! - `experience-best-neighbour`: experience when the node has it for this type,
//!   else best-neighbour.
//!
//! In every strategy a node avoids the nodes already on the request's path when it
//! has a neighbour that is not; when all are, it chooses among all of them. Every
//! node the answer passes learns from it: which neighbour answered for this type
//! (experience) and one more answer through that neighbour (best-neighbour).
//!
//! Where this model is simpler than the paper:
//! - The request's path is kept by the protocol as a per-query table (node → the
//!   neighbour it first got the request from), not carried inside the message; it
//!   serves both as the "already on the path" set and as the reverse path. A node
//!   reached twice keeps its first parent, so the answer may return by a shorter
//!   path than the request took; the hops reported are those of the request.
//! - Experience is one neighbour per resource type, the one learned last. Its bound
//!   (`memory` entries per node) and the eviction of the least recently learned
//!   entry are this model's choices.
//! - Resources do not change during a run and nodes do not join or leave.
//! - A request asks for one resource type and matches it exactly; requests that
//!   describe a resource by several attributes are not modelled.
//! - One request per query and no retries: a walk that spends its TTL or outlives
//!   the workload's timeout has failed. The request stops at the timeout, but an
//!   answer already under way still returns along the path (the paper has no
//!   timeout), so the nodes it passes learn from it, though it no longer counts as
//!   a hit. A request's path is kept until one to two timeouts after it was issued
//!   (the end of its table generation); an answer arriving later is dropped.
//! - `ttl` defaults to 256 hops. The paper measured hops to satisfy a request under
//!   a limit large enough that it rarely ended a walk; 256 keeps random forwarding
//!   above 90% success on a thousand-node 4-regular grid with 10 copies per type,
//!   and `scenarios/forwarding.toml` sets 2048 for grids up to 5,000 nodes.
//!
//! `hops_mean_all` is the mean over measured requests of the hops each travelled,
//! failed ones included, so that a strategy cannot look short by failing its long
//! walks; `hops_to_first_hit_mean` counts only the satisfied ones.

use rand::RngExt;
use rustc_hash::FxHashMap;
use serde::Deserialize;

use super::routes::{QueryTables, key};
use super::{MemoryPart, ParamDoc, ParamError, ProtocolInfo, ProtocolParams, RunFigures};
use crate::engine::{Ctx, Message, NodeId, Protocol, QueryId, ResourceType, SimTime};
use crate::metrics::{Column, Metric, Recorder};
use crate::world::World;

/// How a node chooses the neighbour to forward a request to.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// `random`: a neighbour chosen uniformly at random.
    Random,
    /// `experience-random`: the neighbour an answer for the same type last came back through, else random.
    #[default]
    ExperienceRandom,
    /// `best-neighbour`: the neighbour the most answers of any type came back through, ties at random.
    BestNeighbour,
    /// `experience-best-neighbour`: experience for this type when the node has it, else best-neighbour.
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
}

fn default_ttl() -> u32 {
    256
}

impl Default for Params {
    fn default() -> Self {
        Params { strategy: Strategy::default(), ttl: default_ttl(), memory: 0 }
    }
}

impl ProtocolParams for Params {
    type Protocol = Forwarding;

    const INFO: ProtocolInfo = ProtocolInfo {
        name: "forwarding",
        source: "Iamnitchi & Foster, On Fully Decentralized Resource Discovery in Grid Environments, Grid 2001",
        summary: "one request forwarded hop by hop (random, experience, best-neighbour) until a holder answers",
        uses_overlay: true,
        extra_columns: &[
            Column::new("hops_mean_all", "hops per request, failed ones included (mean)"),
            Column::new("experience_used", "decisions taken from experience (fraction)"),
            Column::new("path_revisits", "steps to a node the request had visited"),
        ],
        params: &[
            ParamDoc::new(
                "strategy",
                "\"experience-random\"",
                "next hop: random, experience-random, best-neighbour or experience-best-neighbour",
            ),
            ParamDoc::new("ttl", "256", "hops a request may travel, 1 ≤ ttl ≤ 65535").label("TTL (hops)"),
            ParamDoc::new("memory", "0", "experience entries per node, least recently learned evicted; 0 = unbounded")
                .label("experience entries per node"),
        ],
    };

    fn build(&self, world: &World) -> Forwarding {
        let n = world.nodes();
        Forwarding {
            strategy: self.strategy,
            ttl: self.ttl.clamp(1, u16::MAX as u32) as u16,
            memory: self.memory as usize,
            answers: vec![0; world.overlay.links()],
            experience: if self.strategy.uses_experience() { vec![FxHashMap::default(); n] } else { Vec::new() },
            learned: 0,
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

    /// The per-query path tables, experience and answer counts.
    fn memory(&self, run: &RunFigures) -> Vec<MemoryPart> {
        let n = run.nodes as f64;
        let d = run.mean_degree.max(1.0);
        // A walk visits at most ttl nodes, and rarely more than the whole grid.
        let path = (self.ttl as f64).min(n);
        let types = run.resource_types as f64;
        let kept = if self.memory == 0 { types } else { types.min(self.memory as f64) };
        vec![
            MemoryPart::new(
                "request paths",
                "workload.rate × workload.timeout, protocol.ttl",
                run.live_queries() * path * 40.0 + run.queries() * 8.0,
            ),
            MemoryPart::new(
                "experience and answer counts",
                "protocol.memory, resources.types",
                n * kept * 32.0 + n * d * 4.0,
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

/// The request, forwarded along one path, and the answer coming back along it.
#[derive(Clone, Copy, Debug)]
pub enum Msg {
    /// `hops`: how far the request has travelled before this hop.
    Request {
        /// The query the request is for.
        q: QueryId,
        /// The resource type a holder must have.
        want: ResourceType,
        /// Hops the request may still travel, this one included.
        ttl: u16,
        /// Hops travelled before this one.
        hops: u16,
    },
    /// Returns along the reverse path; `hops` is the path length of the request that
    /// found the holder.
    Answer {
        /// The query it answers.
        q: QueryId,
        /// The type found, which every node on the way back learns a next hop for.
        want: ResourceType,
        /// Path length of the request that found the holder.
        hops: u16,
    },
}

impl Message for Msg {
    const KINDS: &'static [&'static str] = &["request", "answer"];
    fn kind(&self) -> usize {
        match self {
            Msg::Request { .. } => 0,
            Msg::Answer { .. } => 1,
        }
    }
    fn query(&self) -> Option<QueryId> {
        match *self {
            Msg::Request { q, .. } | Msg::Answer { q, .. } => Some(q),
        }
    }
}

/// A learned next hop for one resource type, and when it was learned (for eviction).
#[derive(Clone, Copy, Debug)]
struct Learned {
    via: NodeId,
    stamp: u64,
}

/// The request-forwarding protocol: each node's experience and answer counts, and each request's path.
pub struct Forwarding {
    strategy: Strategy,
    ttl: u16,
    memory: usize,
    /// Answers that came back over each directed overlay link, indexed by
    /// `Overlay::link(node, neighbour)`.
    answers: Vec<u32>,
    /// Per node: resource type → the neighbour an answer for it came back through.
    /// Only looked up by key, so its iteration order never reaches a decision.
    experience: Vec<FxHashMap<ResourceType, Learned>>,
    learned: u64,
    /// (query, node) → the neighbour the request first came from (the origin maps
    /// to itself): the request's path and its reverse.
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
    /// Scratch list of the neighbours a node may choose from.
    pool: Vec<NodeId>,
}

impl Forwarding {
    /// Node `at` learns that an answer for `want` came back through `via`.
    fn learn(&mut self, world: &World, at: NodeId, want: ResourceType, via: NodeId) {
        if let Some(e) = world.overlay.link(at, via) {
            self.answers[e] = self.answers[e].saturating_add(1);
        }
        if !self.strategy.uses_experience() {
            return;
        }
        let stamp = self.learned;
        self.learned += 1;
        let known = &mut self.experience[at.index()];
        if let Some(entry) = known.get_mut(&want) {
            *entry = Learned { via, stamp };
            return;
        }
        if self.memory > 0 && known.len() >= self.memory {
            // Stamps are unique, so the oldest entry is the same whatever order the
            // map is scanned in.
            if let Some(oldest) = known.iter().min_by_key(|(_, l)| l.stamp).map(|(t, _)| *t) {
                known.remove(&oldest);
            }
        }
        known.insert(want, Learned { via, stamp });
    }

    /// Chooses the next hop at `at` for query `q` and sends the request there.
    fn forward(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, q: QueryId, want: ResourceType, ttl: u16, hops: u16) {
        let world = ctx.world;
        let neighbours = world.overlay.neighbours(at);
        if neighbours.is_empty() {
            return;
        }
        self.pool.clear();
        if let Some(table) = self.paths.get(ctx.issued(q)) {
            self.pool.extend(neighbours.iter().copied().filter(|&v| !table.contains_key(&key(q, v))));
        }
        if self.pool.is_empty() {
            self.pool.extend_from_slice(neighbours);
        }
        let mut next = None;
        if self.strategy.uses_experience()
            && let Some(l) = self.experience[at.index()].get(&want)
            && self.pool.contains(&l.via)
        {
            next = Some(l.via);
        }
        let from_experience = next.is_some();
        if next.is_none() && self.strategy.uses_counts() {
            let count = |v: NodeId| world.overlay.link(at, v).map_or(0, |e| self.answers[e]);
            let best = self.pool.iter().map(|&v| count(v)).max().unwrap_or(0);
            self.pool.retain(|&v| count(v) == best);
        }
        let next = match next {
            Some(v) => v,
            None => self.pool[ctx.rng().random_range(0..self.pool.len())],
        };
        if ctx.issued(q) >= self.warmup {
            self.decisions += 1;
            self.from_experience += from_experience as u64;
        }
        ctx.send(at, next, Msg::Request { q, want, ttl, hops });
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
        self.forward(ctx, origin, q, want, self.ttl, 0);
    }

    fn message(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, from: NodeId, msg: Msg) {
        match msg {
            Msg::Request { q, want, ttl, hops } => {
                // Past its timeout a request is dead: nobody forwards or answers it.
                if ctx.expired(q) {
                    return;
                }
                let measured = ctx.issued(q) >= self.warmup;
                let Some(table) = self.paths.of(ctx.issued(q)) else { return };
                let k = key(q, at);
                let (parent, revisit) = match table.get(&k) {
                    Some(&p) => (p, true),
                    None => {
                        table.insert(k, from);
                        (from, false)
                    }
                };
                let hops = hops.saturating_add(1);
                self.walked += measured as u64;
                if revisit {
                    self.revisits += measured as u64;
                } else {
                    ctx.report_reached(q);
                }
                // The origin (its own parent) does not answer its own request.
                if parent != at && ctx.world.resources.holds(at, want) {
                    ctx.send(at, parent, Msg::Answer { q, want, hops });
                    return;
                }
                if ttl > 1 {
                    self.forward(ctx, at, q, want, ttl - 1, hops);
                }
            }
            Msg::Answer { q, want, hops } => {
                // A late answer no longer counts as a hit, but it still travels back
                // and teaches every node on the way, as long as the path is kept.
                self.learn(ctx.world, at, want, from);
                match self.paths.get(ctx.issued(q)).and_then(|t| t.get(&key(q, at)).copied()) {
                    Some(parent) if parent == at => ctx.report_hit(q, hops as u32, 1),
                    Some(parent) => ctx.send(at, parent, Msg::Answer { q, want, hops }),
                    None => {}
                }
            }
        }
    }

    fn state_bytes(&self) -> usize {
        // hashbrown: the entry and a control byte per slot.
        let experience: usize = self.experience.iter().map(|m| m.capacity() * 25 + 32).sum();
        self.paths.bytes() + experience + self.answers.capacity() * 4
    }

    fn extra_metrics(&self, _recorder: &Recorder, out: &mut Vec<Metric>) {
        let per_query = |x: u64| (self.measured > 0).then(|| x as f64 / self.measured as f64);
        out.push(Metric::new("hops_mean_all", per_query(self.walked)));
        out.push(Metric::new(
            "experience_used",
            (self.decisions > 0).then(|| self.from_experience as f64 / self.decisions as f64),
        ));
        out.push(Metric::new("path_revisits", per_query(self.revisits)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Rate, RunOutput, SimConfig};
    use crate::protocols::ProtocolSpec;
    use crate::validate::world;
    use crate::workload::{ScriptedQuery, Workload, WorkloadSpec};
    use crate::world::{Resources, Skew, TopologySpec};

    fn run(w: &World, params: Params, spec: &WorkloadSpec, config: &SimConfig) -> RunOutput {
        let workload = Workload::new(spec, w.nodes(), w.resources.types(), config.duration, config.seed);
        ProtocolSpec::Forwarding(params).run(w, workload, config)
    }

    /// Two queries from node 0 for the one copy, at node 5 of a ring of 20.
    /// `count` requests from node 0 for the one copy, at node 5 of a ring of 20, 5 s apart.
    fn ring_repeated(strategy: Strategy, ttl: u32, count: u64) -> RunOutput {
        let mut w = world(&TopologySpec::Ring {}, 20, 20, 1, 1, 1);
        w.resources = Resources::from_holders(20, vec![vec![5]]);
        let config = SimConfig::new(3, SimTime::from_secs(5 * count));
        let spec = WorkloadSpec {
            rate: Rate(0.0),
            script: (0..count).map(|i| ScriptedQuery { at: SimTime::from_secs(5 * i), origin: 0, rtype: 0 }).collect(),
            ..Default::default()
        };
        run(&w, Params { strategy, ttl, memory: 0 }, &spec, &config)
    }

    fn ring_twice(strategy: Strategy, ttl: u32) -> RunOutput {
        ring_repeated(strategy, ttl, 2)
    }

    #[test]
    fn on_a_ring_the_request_walks_one_way_and_answers_come_back() {
        // Avoiding the path, a walk on a ring goes round one way: 5 hops clockwise or
        // 15 the other way, then as many back.
        for strategy in [Strategy::Random, Strategy::ExperienceRandom, Strategy::BestNeighbour] {
            let out = ring_twice(strategy, 20);
            let q = &out.recorder.queries[0];
            assert!(q.hops == 5 || q.hops == 15, "{strategy:?}: {} hops", q.hops);
            assert_eq!(q.latency(), Some(SimTime::from_millis(40 * q.hops as u64)));
            assert_eq!(q.messages, (2 * q.hops) as f64);
            assert_eq!(q.reached, q.hops + 1, "the origin and every node on the way");
            assert_eq!(out.metric("path_revisits").unwrap(), 0.0);
        }
    }

    #[test]
    fn the_ttl_bounds_the_walk() {
        let out = ring_twice(Strategy::Random, 4);
        for q in &out.recorder.queries {
            assert!(!q.succeeded());
            assert_eq!(q.messages, 4.0);
        }
        assert_eq!(out.metric("hops_mean_all").unwrap(), 4.0);
    }

    #[test]
    fn experience_and_best_neighbour_repeat_the_path_that_answered() {
        // Eight requests: every one after the first repeats its path exactly, which a
        // strategy choosing at random would do with probability 2^-7.
        for strategy in [Strategy::ExperienceRandom, Strategy::BestNeighbour, Strategy::ExperienceBestNeighbour] {
            let out = ring_repeated(strategy, 20, 8);
            let first = out.recorder.queries[0].hops;
            assert!(out.recorder.queries.iter().all(|q| q.succeeded() && q.hops == first), "{strategy:?}");
            // Every hop of the later requests was learned from the first answer.
            let used = if strategy.uses_experience() { 7.0 / 8.0 } else { 0.0 };
            assert_eq!(out.metric("experience_used").unwrap(), used, "{strategy:?}");
        }
    }

    #[test]
    fn bounded_memory_forgets_the_least_recently_learned_type() {
        let w = world(&TopologySpec::Ring {}, 10, 20, 3, 1, 1);
        let params = Params { memory: 2, ..Params::default() };
        let mut f = params.build(&w);
        let (at, left, right) = (NodeId(0), NodeId(9), NodeId(1));
        f.learn(&w, at, ResourceType(0), left);
        f.learn(&w, at, ResourceType(1), right);
        f.learn(&w, at, ResourceType(0), right);
        f.learn(&w, at, ResourceType(2), left);
        let known = &f.experience[0];
        assert_eq!(known.len(), 2);
        assert!(!known.contains_key(&ResourceType(1)), "type 1 was learned least recently");
        assert_eq!(known[&ResourceType(0)].via, right);
        assert_eq!(known[&ResourceType(2)].via, left);
        // Node 0's neighbours are 1 and 9, in that order: two answers each.
        assert_eq!(&f.answers[0..2], &[2, 2]);
    }

    #[test]
    fn the_same_seed_gives_the_same_walks() {
        let w = world(&TopologySpec::RandomRegular { degree: 4 }, 300, 5, 20, 3, 9);
        let config = SimConfig { warmup: SimTime::from_secs(2), ..SimConfig::new(9, SimTime::from_secs(10)) };
        let spec = WorkloadSpec { rate: Rate(50.0), popularity: Skew::Geometric(0.2), ..Default::default() };
        let params = Params { strategy: Strategy::ExperienceBestNeighbour, ttl: 512, memory: 3 };
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

    /// (strategy, hops_to_first_hit_mean, hops_mean_all, success_rate) of each
    /// strategy on an N-node 4-regular grid with 100 types × 10 copies, Zipf-popular
    /// requests (2,200 measured after 1,000 to learn from) and a TTL that rarely binds.
    fn hops_by_strategy(n: u32) -> Vec<(Strategy, f64, f64, f64)> {
        let w = world(&TopologySpec::RandomRegular { degree: 4 }, n, 5, 100, 10, 2001);
        let config = SimConfig {
            warmup: SimTime::from_secs(10),
            timeout: SimTime::from_secs(12),
            ..SimConfig::new(2001, SimTime::from_secs(32))
        };
        let spec = WorkloadSpec { rate: Rate(100.0), popularity: Skew::Zipf(1.0), ..Default::default() };
        [Strategy::Random, Strategy::ExperienceRandom, Strategy::BestNeighbour, Strategy::ExperienceBestNeighbour]
            .into_iter()
            .map(|strategy| {
                let out = run(&w, Params { strategy, ttl: 2048, memory: 0 }, &spec, &config);
                let m = |name| out.metric(name).unwrap();
                (strategy, m("hops_to_first_hit_mean"), m("hops_mean_all"), m("success_rate"))
            })
            .collect()
    }

    #[test]
    fn experience_needs_fewer_hops_than_random_as_the_grid_grows() {
        for n in [1000, 5000] {
            let r = hops_by_strategy(n);
            let get = |s: Strategy| r.iter().find(|x| x.0 == s).copied().unwrap_or((s, f64::NAN, f64::NAN, 0.0));
            let random = get(Strategy::Random);
            for s in [Strategy::ExperienceRandom, Strategy::ExperienceBestNeighbour] {
                let x = get(s);
                assert!(x.1 < random.1, "N = {n}, {s:?} to first hit: {r:?}");
                assert!(x.2 < random.2, "N = {n}, {s:?} all requests: {r:?}");
            }
        }
    }
}
