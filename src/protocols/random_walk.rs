//! `random-walk`: k-walker random walks with checking (Lv, Cao, Cohen, Li, Shenker,
//! "Search and Replication in Unstructured Peer-to-Peer Networks", ICS 2002).
//!
//! The model as the paper describes it: the requester sends `walkers` (k) query
//! messages, each to a neighbour chosen uniformly at random (independently, so two
//! walkers may leave by the same link). Every node a walker reaches that holds the
//! wanted object answers the requester, whose address travels in the query, and
//! that walker stops there. Otherwise the walker moves on to a uniformly random
//! neighbour of the node it is at. A walker ends when it has taken `ttl` steps or,
//! with *checking*, when it asks the requester every `check_every` steps whether to
//! go on and the requester says the query is already satisfied. The paper found
//! checking once every 4 steps a good balance and pairs it with a TTL that is
//! rarely reached (1024); both are the defaults here.
//!
//! Each step goes to a uniformly random neighbour other than the node the walker
//! just came from (unless that is the only neighbour): a walker does not step
//! straight back. `step_back = true` gives the simple random walk instead, the one
//! whose range the validation suite checks against its closed form.
//!
//! `state = true` is the paper's "state keeping": all walkers of a query carry its
//! id, and a node remembers, for that id, the neighbours it has forwarded a walker
//! to; a later walker of the same query goes to a neighbour it has not used, chosen
//! at random. Here a node also counts as used the neighbours a walker of the query
//! came from, which it knows have been visited; so the query's walkers avoid the
//! nodes they visited next to the current one. When every neighbour is used the
//! walker moves as without state. The state is kept per (query, node) until the
//! query's table generation is dropped, one to two timeouts after it was issued.
//!
//! A check is a round trip: the walker's current node sends Check (carrying the
//! walker: query, wanted type, requester, hops) to the requester and the reply
//! carries the walker back, so a waiting walker lives only in messages. The
//! requester answers Stop once a Hit has reached it (what it knows, not what is on
//! its way) or once the query has timed out, Continue otherwise. A walker that is at
//! the requester itself when it is due to check decides on the spot, without a
//! message.
//!
//! Simplifications, each a choice the paper leaves open or a simulator convention:
//! - the Hit goes straight to the requester over the underlay (one message, not
//!   back along the walk), as the paper's requester address allows;
//! - the requester's own copies do not count: it issues the query because it wants
//!   the object elsewhere, the same convention as `flooding` and `central`;
//! - a walker whose query is past its timeout is dropped wherever it arrives, as
//!   `flooding` drops expired Query messages;
//! - a lost Walk, Check or reply loses the walker: nothing is retried;
//! - every walker that reaches a holder sends its own Hit, but the requester counts
//!   each responding node once (`hits_per_query` counts distinct holders found, as
//!   for the other protocols);
//! - `nodes_reached` counts walker arrivals, so a node visited twice counts twice
//!   (the requester counts once when it issues the query): counting distinct nodes
//!   would need a visited set per live query, as large as its walks, for a metric
//!   alone (with `state`, which keeps one, `walk_revisits` counts the arrivals at
//!   nodes the query had visited). A walker that does not step back revisits a
//!   node only by a cycle of the graph.

use rand::RngExt;
use serde::Deserialize;

use super::flooding::{DESCRIPTOR_HEADER_BYTES, QUERY_BYTES, QUERY_HIT_BYTES};
use super::routes::{QueryTables, key};
use super::{MemoryPart, ParamDoc, ParamError, ProtocolInfo, ProtocolParams, RunFigures, TCP_IP_BYTES};
use crate::engine::{Ctx, Message, NodeId, Protocol, QueryId, ResourceType};
use crate::metrics::{Column, Metric, Recorder};
use crate::world::World;

/// `[protocol]` with `name = "random-walk"`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Walkers the requester sends (k), each to a uniformly random neighbour.
    #[serde(default = "default_walkers")]
    pub walkers: u32,
    /// Steps a walker may take.
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    /// A walker asks the requester whether to go on after every this many steps short of the TTL; 0 = never.
    #[serde(default = "default_check_every")]
    pub check_every: u32,
    /// Whether a walker may step straight back to the node it came from.
    #[serde(default)]
    pub step_back: bool,
    /// Lv et al.'s state keeping: nodes send a query's later walkers to neighbours it has not used.
    #[serde(default)]
    pub state: bool,
}

fn default_walkers() -> u32 {
    16
}
fn default_ttl() -> u32 {
    1024
}
fn default_check_every() -> u32 {
    4
}

impl Default for Params {
    fn default() -> Self {
        Params {
            walkers: default_walkers(),
            ttl: default_ttl(),
            check_every: default_check_every(),
            step_back: false,
            state: false,
        }
    }
}

impl ProtocolParams for Params {
    type Protocol = RandomWalk;

    const INFO: ProtocolInfo = ProtocolInfo {
        name: "random-walk",
        source: "Lv, Cao, Cohen, Li, Shenker, \"Search and Replication in Unstructured Peer-to-Peer Networks\", ICS 2002",
        summary: "k random walkers with a TTL that check back with the requester every few steps",
        uses_overlay: true,
        extra_columns: &[
            Column::new("walk_steps", "walker steps"),
            Column::new("checks", "checks with the requester"),
            Column::new("walkers_stopped_by_check", "walkers stopped by a check"),
            Column::new("walk_revisits", "walker arrivals at a node the query had visited (with state)"),
        ],
        roles: &[],
        keeps_state: false,
        params: &[
            ParamDoc::new("walkers", "16", "walkers the requester sends (k), each to a uniformly random neighbour").label("walkers per query"),
            ParamDoc::new("ttl", "1024", "steps a walker may take").label("TTL (hops)"),
            ParamDoc::new(
                "check_every",
                "4",
                "a walker asks the requester whether to go on after every this many steps short of the TTL; 0 = never (TTL only)",
            ).label("steps between checks"),
            ParamDoc::new("step_back", "false", "whether a walker may step straight back to the node it came from"),
            ParamDoc::new(
                "state",
                "false",
                "state keeping: a node sends a query's later walkers to neighbours it has not sent it to or received it from",
            ),
        ],
    };

    fn build(&self, _world: &World) -> RandomWalk {
        RandomWalk {
            walkers: self.walkers,
            ttl: self.ttl,
            check_every: self.check_every,
            step_back: self.step_back,
            state: self.state,
            used: QueryTables::default(),
            revisits: 0,
            responders: QueryTables::default(),
            walk_steps: 0,
            checks: 0,
            stopped_by_check: 0,
        }
    }

    fn validate(&self, _run: &RunFigures) -> Result<(), ParamError> {
        if !(1..=1024).contains(&self.walkers) {
            return Err(ParamError::new(
                "walkers",
                format!("walkers {} is out of range; expected 1 ≤ walkers ≤ 1024", self.walkers),
            ));
        }
        if self.ttl == 0 {
            return Err(ParamError::new("ttl", "ttl 0 is out of range; expected ttl ≥ 1"));
        }
        if self.check_every > self.ttl {
            return Err(ParamError::new(
                "check_every",
                format!(
                    "check_every {} is out of range; expected 0 ≤ check_every ≤ ttl = {} (0 = never check)",
                    self.check_every, self.ttl
                ),
            ));
        }
        Ok(())
    }

    /// Walkers in flight and the responders counted per live query.
    fn memory(&self, run: &RunFigures) -> Vec<MemoryPart> {
        let rate = run.query_rate;
        let latency = run.mean_latency_s.max(1e-6);
        // A live walker is always exactly one message in flight. It lives at most ttl
        // steps, each a latency, plus a check round trip every check_every steps, and
        // never past the query's timeout.
        let rounds = 2.0 * self.ttl.checked_div(self.check_every).unwrap_or(0) as f64;
        let lifetime = ((self.ttl as f64 + rounds) * latency).min(run.timeout.as_secs_f64());
        let in_flight = rate * self.walkers as f64 * lifetime;
        vec![
            MemoryPart::new(
                "walkers in flight",
                "workload.rate, protocol.walkers, protocol.ttl, workload.timeout",
                in_flight * 64.0,
            ),
            MemoryPart::new(
                "responders counted",
                "workload.rate × workload.timeout, protocol.walkers",
                run.live_queries() * self.walkers as f64 * 16.0,
            ),
            MemoryPart::new(
                "state kept per query and node",
                "protocol.state, workload.rate × workload.timeout, protocol.walkers × protocol.ttl",
                if self.state { run.live_queries() * self.walkers as f64 * self.ttl as f64 * 64.0 } else { 0.0 },
            ),
        ]
    }
}

/// The walker itself: what it looks for, whom to tell, and how far it has gone.
#[derive(Clone, Copy, Debug)]
pub struct Walker {
    /// The query the walker searches for.
    pub q: QueryId,
    /// The object type a node must hold to answer.
    pub want: ResourceType,
    /// The requester: Hits and Checks go there.
    pub origin: NodeId,
    /// Steps taken so far, counting the one that brought it here.
    pub hops: u32,
    /// The node it came from (its start, before the first step).
    pub prev: NodeId,
}

/// A walker's steps, the Hits it sends, and its checks with the requester.
#[derive(Clone, Copy, Debug)]
pub enum Msg {
    /// One step of a walker.
    Walk(Walker),
    /// From the node holding the object straight to the requester.
    Hit {
        /// The query answered.
        q: QueryId,
        /// Steps the walker took to reach the holder.
        hops: u32,
    },
    /// The walker's node asks the requester whether to go on.
    Check(Walker),
    /// The requester's answer, carrying the walker back.
    CheckReply {
        /// The walker that asked, returned to the node it checked from.
        walker: Walker,
        /// Continue (`true`) or Stop (`false`).
        go: bool,
    },
}

impl Message for Msg {
    const KINDS: &'static [&'static str] = &["walk", "hit", "check", "check_reply"];
    /// A walker is a Gnutella Query and a Hit a QueryHit; a check is a bare
    /// descriptor header naming the query, and its reply one byte more.
    const SIZES: &'static [u32] = &[
        QUERY_BYTES + TCP_IP_BYTES,
        QUERY_HIT_BYTES + TCP_IP_BYTES,
        DESCRIPTOR_HEADER_BYTES + TCP_IP_BYTES,
        DESCRIPTOR_HEADER_BYTES + 1 + TCP_IP_BYTES,
    ];
    fn kind(&self) -> usize {
        match self {
            Msg::Walk(_) => 0,
            Msg::Hit { .. } => 1,
            Msg::Check(_) => 2,
            Msg::CheckReply { .. } => 3,
        }
    }
    fn query(&self) -> Option<QueryId> {
        match *self {
            Msg::Walk(w) | Msg::Check(w) | Msg::CheckReply { walker: w, .. } => Some(w.q),
            Msg::Hit { q, .. } => Some(q),
        }
    }
}

/// The k-walker random walk with checking, and the responders counted per live query.
pub struct RandomWalk {
    walkers: u32,
    ttl: u32,
    check_every: u32,
    step_back: bool,
    state: bool,
    /// With state: (query, node) → the neighbours the node has sent a walker of the
    /// query to or received one from.
    used: QueryTables<Vec<NodeId>>,
    /// With state: walker arrivals at a node that already had state for the query.
    revisits: u64,
    /// (query, responder) pairs the requester has counted, so a holder that two
    /// walkers reach is one hit. Whether a query is satisfied is the requester's own
    /// count of hits (`Ctx::hits`), read when it answers a Check.
    responders: QueryTables<()>,
    walk_steps: u64,
    checks: u64,
    stopped_by_check: u64,
}

impl RandomWalk {
    /// Moves the walker at `at` to a uniformly random neighbour: not the one it came
    /// from unless `step_back` (or that is the only one), and with state one the
    /// node has not used for this query if there is one. A node without neighbours
    /// ends the walk.
    fn step(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, mut walker: Walker) {
        let neighbours = ctx.neighbours(at);
        if neighbours.is_empty() {
            return;
        }
        let back = !self.step_back && neighbours.len() > 1;
        let allowed = |v: &NodeId| !(back && *v == walker.prev && walker.hops > 0);
        let used =
            if self.state { self.used.get(ctx.issued(walker.q)).and_then(|t| t.get(&key(walker.q, at))) } else { None };
        let fresh = |v: &NodeId| allowed(v) && used.is_none_or(|u| !u.contains(v));
        let count = neighbours.iter().filter(|v| fresh(v)).count();
        let to = if count > 0 {
            let i = ctx.rng().random_range(0..count);
            neighbours.iter().copied().filter(|v| fresh(v)).nth(i)
        } else {
            let count = neighbours.iter().filter(|v| allowed(v)).count();
            let i = ctx.rng().random_range(0..count.max(1));
            neighbours.iter().copied().filter(|v| allowed(v)).nth(i)
        };
        let Some(to) = to else { return };
        if self.state
            && let Some(table) = self.used.of(ctx.issued(walker.q))
        {
            table.entry(key(walker.q, at)).or_default().push(to);
        }
        walker.hops += 1;
        walker.prev = at;
        self.walk_steps += measured(ctx, walker.q) as u64;
        ctx.send(at, to, Msg::Walk(walker));
    }

    /// With state: the walker arriving at `at` from `from` marks `from` used there,
    /// and is counted if the query had visited `at` before.
    fn arrive(&mut self, ctx: &Ctx<'_, Self>, at: NodeId, from: NodeId, q: QueryId) {
        if !self.state {
            return;
        }
        let measured = measured(ctx, q);
        let Some(table) = self.used.of(ctx.issued(q)) else { return };
        match table.entry(key(q, at)) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                self.revisits += measured as u64;
                if !e.get().contains(&from) {
                    e.get_mut().push(from);
                }
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(vec![from]);
            }
        }
    }

    /// The requester's answer to a check: go on unless it already has a hit or the
    /// query has timed out.
    fn go_on(&self, ctx: &Ctx<'_, Self>, q: QueryId) -> bool {
        ctx.hits(q) == 0 && !ctx.expired(q)
    }

    /// A walker told to stop: counted when its query was satisfied, not timed out.
    fn stopped(&mut self, ctx: &Ctx<'_, Self>, q: QueryId) {
        self.stopped_by_check += (ctx.hits(q) > 0 && measured(ctx, q)) as u64;
    }
}

/// Whether query `q` counts in the metrics (issued after the warm-up).
fn measured<P: Protocol>(ctx: &Ctx<'_, P>, q: QueryId) -> bool {
    ctx.issued(q) >= ctx.warmup()
}

impl Protocol for RandomWalk {
    type Msg = Msg;
    type Timer = ();

    fn start(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.responders.start(ctx.timeout());
        self.used.start(ctx.timeout());
    }

    fn query(&mut self, ctx: &mut Ctx<'_, Self>, q: QueryId, origin: NodeId, want: ResourceType) {
        self.responders.open(ctx.now());
        if self.state {
            // The origin has been visited: a walker coming back to it is a revisit.
            self.used.open(ctx.now()).insert(key(q, origin), Vec::new());
        }
        ctx.report_reached(q);
        let walker = Walker { q, want, origin, hops: 0, prev: origin };
        for _ in 0..self.walkers {
            self.step(ctx, origin, walker);
        }
    }

    fn message(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, from: NodeId, msg: Msg) {
        match msg {
            Msg::Walk(walker) => {
                if ctx.expired(walker.q) {
                    return;
                }
                ctx.report_reached(walker.q);
                self.arrive(ctx, at, from, walker.q);
                if at != walker.origin && ctx.holds(at, walker.want) {
                    ctx.send(at, walker.origin, Msg::Hit { q: walker.q, hops: walker.hops });
                    return;
                }
                if walker.hops >= self.ttl {
                    return;
                }
                if self.check_every > 0 && walker.hops % self.check_every == 0 {
                    self.checks += measured(ctx, walker.q) as u64;
                    if at != walker.origin {
                        ctx.send(at, walker.origin, Msg::Check(walker));
                        return;
                    }
                    if !self.go_on(ctx, walker.q) {
                        self.stopped(ctx, walker.q);
                        return;
                    }
                }
                self.step(ctx, at, walker);
            }
            Msg::Hit { q, hops } => {
                let Some(seen) = self.responders.of(ctx.issued(q)) else { return };
                if seen.insert(key(q, from), ()).is_none() {
                    ctx.report_found(q, from);
                    ctx.report_hit(q, hops, 1);
                }
            }
            Msg::Check(walker) => {
                let go = self.go_on(ctx, walker.q);
                ctx.send(at, from, Msg::CheckReply { walker, go });
            }
            Msg::CheckReply { walker, go } => {
                if go {
                    self.step(ctx, at, walker);
                } else {
                    self.stopped(ctx, walker.q);
                }
            }
        }
    }

    fn state_bytes(&self) -> usize {
        self.responders.bytes() + self.used.bytes()
    }

    fn extra_metrics(&self, _recorder: &Recorder, out: &mut Vec<Metric>) {
        out.push(Metric::new("walk_steps", Some(self.walk_steps as f64)));
        out.push(Metric::new("checks", Some(self.checks as f64)));
        out.push(Metric::new("walkers_stopped_by_check", Some(self.stopped_by_check as f64)));
        out.push(Metric::new("walk_revisits", self.state.then_some(self.revisits as f64)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Rate, RunOutput, SimConfig, SimTime};
    use crate::protocols::ProtocolSpec;
    use crate::validate::{random_walk_success, world};
    use crate::workload::{Workload, WorkloadSpec};
    use crate::world::TopologySpec;

    /// `walkers`, `ttl`, `check_every` on a random 4-regular graph of 1,000 nodes
    /// with 10 types of `replicas` copies each, under 20 queries/s for 20 s.
    fn run(p: Params, replicas: u32, seed: u64) -> RunOutput {
        let w = world(&TopologySpec::RandomRegular { degree: 4 }, 1000, 10, 10, replicas, 5);
        let config = SimConfig { timeout: SimTime::from_secs(60), ..SimConfig::new(seed, SimTime::from_secs(20)) };
        let spec = WorkloadSpec { rate: Rate(20.0), ..Default::default() };
        let workload = Workload::new(&spec, w.nodes(), 10, config.duration, seed);
        ProtocolSpec::RandomWalk(p).run(&w, workload, &config)
    }

    #[test]
    fn one_walker_finds_a_replica_as_often_as_its_distinct_nodes_predict() {
        for length in [50, 100] {
            let crate::validate::Within { got, want, tolerance } = random_walk_success(length, 3);
            assert!(
                (got - want).abs() < tolerance,
                "L = {length}: simulated {got:.4}, expected from the walk's range {want:.4} ± {tolerance:.4}"
            );
        }
    }

    #[test]
    fn the_range_of_a_walk_on_a_regular_tree() {
        use crate::validate::tree_walk_range;
        // On the 3-regular tree the first step is new, and the second and third are
        // new unless they step straight back (probability 1/3): 1, 1 + 2/3, 1 + 4/3.
        assert_eq!(tree_walk_range(3, 1), 1.0);
        assert!((tree_walk_range(3, 2) - (1.0 + 2.0 / 3.0)).abs() < 1e-12);
        assert!((tree_walk_range(3, 3) - (1.0 + 2.0 / 3.0 + 2.0 / 3.0)).abs() < 1e-12);
        // Long walks gain (d−2)/(d−1) new nodes a step.
        let slope = tree_walk_range(10, 2000) - tree_walk_range(10, 1000);
        assert!((slope / 1000.0 - 8.0 / 9.0).abs() < 1e-6, "{slope}");
    }

    #[test]
    fn without_a_replica_every_walker_runs_exactly_to_its_ttl() {
        let (k, ttl) = (16u32, 20u32);
        let out = run(Params { walkers: k, ttl, check_every: 0, ..Params::default() }, 0, 1);
        let queries = out.recorder.queries.len() as f64;
        assert!(queries > 300.0, "{queries} queries");
        assert_eq!(out.metric("walk_steps").unwrap(), (k * ttl) as f64 * queries);
        assert_eq!(out.metric("messages_walk").unwrap(), (k * ttl) as f64 * queries);
        assert_eq!(out.metric("checks").unwrap(), 0.0);
        assert_eq!(out.metric("success_rate").unwrap(), 0.0);
        // Checking every 4 steps of 20 asks at steps 4, 8, 12 and 16, always gets
        // Continue (nothing is ever found), and does not shorten any walk.
        let out = run(Params { walkers: k, ttl, check_every: 4, ..Params::default() }, 0, 1);
        assert_eq!(out.metric("walk_steps").unwrap(), (k * ttl) as f64 * queries);
        assert_eq!(out.metric("checks").unwrap(), (k * 4) as f64 * queries);
        assert_eq!(out.metric("walkers_stopped_by_check").unwrap(), 0.0);
    }

    #[test]
    fn a_walker_stops_at_its_ttl_or_its_first_hit() {
        let (k, ttl) = (16u32, 20u32);
        let out = run(Params { walkers: k, ttl, check_every: 0, ..Params::default() }, 10, 2);
        let queries = out.recorder.queries.len() as f64;
        let steps = out.metric("walk_steps").unwrap();
        assert!(steps <= (k * ttl) as f64 * queries && steps > 0.5 * (k * ttl) as f64 * queries, "{steps}");
        // A walker that finds the object after h ≤ ttl steps sends h Walks and one Hit.
        for q in &out.recorder.queries {
            assert!(q.messages <= (k * (ttl + 1)) as f64, "{} messages", q.messages);
            assert!(q.hits <= k);
        }
        // Every walker that finds a copy sends a Hit; the requester counts each holder once.
        let hits: u32 = out.recorder.queries.iter().map(|q| q.hits).sum();
        assert!(out.metric("messages_hit").unwrap() >= hits as f64 && hits > 0);
    }

    #[test]
    fn checking_stops_walkers_once_the_query_is_satisfied() {
        // One node in ten holds each type: the first hit comes within a few steps.
        let k = 16u32;
        let checking = run(Params { walkers: k, ttl: 1024, check_every: 4, ..Params::default() }, 100, 3);
        let blind = run(Params { walkers: k, ttl: 1024, check_every: 0, ..Params::default() }, 100, 3);
        let queries = checking.recorder.queries.len() as f64;
        let per_query = checking.metric("walk_steps").unwrap() / queries;
        let blind_per_query = blind.metric("walk_steps").unwrap() / queries;
        assert_eq!(checking.metric("success_rate").unwrap(), 1.0);
        assert!(checking.metric("walkers_stopped_by_check").unwrap() > 0.5 * k as f64 * queries);
        // Without checking each walker runs to its own hit, ~10 steps on average.
        assert!(per_query < (k * 1024) as f64 / 100.0, "{per_query} steps per query");
        assert!(per_query < 0.8 * blind_per_query, "{per_query} with checking, {blind_per_query} without");
        // Every walker ends exactly once: at a hit, stopped by a check, or at its TTL
        // (never reached here).
        let hits = checking.metric("messages_hit").unwrap();
        assert_eq!(hits + checking.metric("walkers_stopped_by_check").unwrap(), k as f64 * queries);
    }

    #[test]
    fn a_holder_answers_the_origin_directly() {
        // Every node of a ring of 20 holds the type, so each walker's first step
        // lands on a holder: one Walk and one Hit per walker, a hit after 1 hop and
        // two 20 ms links. The origin's own copy does not answer, and its two
        // neighbours are the two distinct holders found, however many walkers came.
        let mut w = world(&TopologySpec::Ring {}, 20, 20, 1, 0, 1);
        w.resources = crate::world::Resources::from_holders(20, vec![(0..20).collect()]);
        let config = SimConfig::new(1, SimTime::from_secs(10));
        let spec = WorkloadSpec {
            rate: Rate(0.0),
            script: vec![crate::workload::ScriptedQuery { at: SimTime::ZERO, origin: 0, rtype: 0 }],
            ..Default::default()
        };
        let workload = Workload::new(&spec, 20, 1, config.duration, 1);
        let out = ProtocolSpec::RandomWalk(Params { walkers: 4, ttl: 5, check_every: 1, ..Params::default() })
            .run(&w, workload, &config);
        let q = &out.recorder.queries[0];
        assert_eq!((q.hops, q.hits, q.messages, q.reached), (1, 2, 8.0, 5));
        assert_eq!(out.metric("messages_hit").unwrap(), 4.0);
        assert_eq!(q.latency(), Some(SimTime::from_millis(40)));
        assert_eq!(out.metric("walk_steps").unwrap(), 4.0);
        assert_eq!(out.metric("checks").unwrap(), 0.0);
    }

    /// Walk arrivals and revisits of `k` walkers with state from the root of a tree
    /// in which the root has 3 children and every other inner node 3 children,
    /// 7 levels deep, for 5 queries that find nothing and walk 6 steps each.
    fn tree_walks(k: u32) -> (f64, f64) {
        let levels = 7u32;
        let n = (3u32.pow(levels + 1) - 1) / 2;
        let mut w = world(&TopologySpec::Ring {}, n, 10, 1, 0, 1);
        // Node v's children are 3v + 1, 3v + 2 and 3v + 3.
        w.overlay = crate::world::Overlay::from_edges(n as usize, (1..n).map(|v| ((v - 1) / 3, v)));
        w.resources = crate::world::Resources::from_holders(n as usize, vec![vec![]]);
        let config = SimConfig::new(1, SimTime::from_secs(10));
        let spec = WorkloadSpec {
            rate: Rate(0.0),
            script: (0..5)
                .map(|i| crate::workload::ScriptedQuery { at: SimTime::from_secs(i), origin: 0, rtype: 0 })
                .collect(),
            ..Default::default()
        };
        let workload = Workload::new(&spec, n as usize, 1, config.duration, 1);
        let p = Params { walkers: k, ttl: 6, check_every: 0, state: true, ..Params::default() };
        let out = ProtocolSpec::RandomWalk(p).run(&w, workload, &config);
        (out.metric("walk_steps").unwrap(), out.metric("walk_revisits").unwrap())
    }

    #[test]
    fn state_keeping_walkers_on_a_tree_never_revisit_a_node() {
        // As many walkers as the root has links: they leave by different ones and
        // never meet, 5 × 3 × 6 steps.
        assert_eq!(tree_walks(3), (90.0, 0.0));
        // Twice as many: each child of the root gets two walkers, the only revisits,
        // and sends the second one down a child it has not used.
        assert_eq!(tree_walks(6), (180.0, 15.0));
    }

    #[test]
    fn without_stepping_back_a_walk_on_a_ring_goes_one_way() {
        // On a ring a walker that may not step back goes round one way: 19 steps
        // visit 19 distinct nodes, and the one copy, at node 10, is found after 10.
        let mut w = world(&TopologySpec::Ring {}, 20, 20, 1, 0, 1);
        w.resources = crate::world::Resources::from_holders(20, vec![vec![10]]);
        let config = SimConfig::new(1, SimTime::from_secs(10));
        let spec = WorkloadSpec {
            rate: Rate(0.0),
            script: (0..8)
                .map(|i| crate::workload::ScriptedQuery { at: SimTime::from_secs(i), origin: 0, rtype: 0 })
                .collect(),
            ..Default::default()
        };
        let workload = Workload::new(&spec, 20, 1, config.duration, 1);
        let p = Params { walkers: 1, ttl: 19, check_every: 0, ..Params::default() };
        let out = ProtocolSpec::RandomWalk(p).run(&w, workload, &config);
        assert!(out.recorder.queries.iter().all(|q| q.succeeded() && q.hops == 10), "{:?}", out.recorder.queries);
        assert_eq!(out.metric("walk_revisits"), None, "counted only with state");
    }

    #[test]
    fn same_seed_same_results() {
        let p = Params { walkers: 4, ttl: 64, check_every: 4, ..Params::default() };
        let (a, b) = (run(p.clone(), 5, 9), run(p.clone(), 5, 9));
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.events, b.events);
        assert_eq!(
            format!("{:?}", a.recorder.finish(a.kinds, a.events)),
            format!("{:?}", b.recorder.finish(b.kinds, b.events))
        );
        assert_eq!(a.extra, b.extra);
        assert_eq!(format!("{:?}", a.recorder.queries), format!("{:?}", b.recorder.queries));
        assert_ne!(a.fingerprint, run(p, 5, 10).fingerprint);
    }

    #[test]
    fn bad_values_name_their_key() {
        let ok = Params::default();
        assert_eq!(ok.validate(&RunFigures::on_nodes(100)), Ok(()));
        for (p, key) in [
            (Params { walkers: 0, ..ok.clone() }, "walkers"),
            (Params { walkers: 1025, ..ok.clone() }, "walkers"),
            (Params { ttl: 0, check_every: 0, ..ok.clone() }, "ttl"),
            (Params { ttl: 8, check_every: 9, ..ok.clone() }, "check_every"),
        ] {
            let e = p.validate(&RunFigures::on_nodes(100)).expect_err(key);
            assert_eq!(e.key, key, "{e}");
            assert!(e.message.contains("expected"), "{e}");
        }
    }
}
