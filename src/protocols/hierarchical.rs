//! `hierarchical`: the Globus MDS-2 information service (Czajkowski, Fitzgerald,
//! Foster, Kesselman, "Grid Information Services for Distributed Resource Sharing",
//! HPDC 2001).
//!
//! In MDS-2 every resource runs a GRIS (Grid Resource Information Service) that
//! describes it, and aggregate directories, GIISes (Grid Index Information
//! Services), collect what the GRISes below them publish. Registration is soft
//! state (GRRP, the Grid Resource Registration Protocol): a child re-registers with
//! its parent every refresh period, and a directory forgets a registration that is
//! not renewed within its time to live. A directory answers from its cache, so an
//! answer may describe a resource as it was, not as it is.
//!
//! The model:
//! - Every node runs a GRIS. Sites are `fanout` consecutive node ids, each with a
//!   site GIIS (level 1) on its first node; a level-L GIIS (1 ≤ L < `depth`) groups
//!   `fanout` consecutive level-(L−1) GIISes, covers nodes [i·fanout^L,
//!   min((i+1)·fanout^L, N)) and runs on its first node. Level `depth` is the single
//!   root GIIS on node 0 that takes every level-(depth−1) GIIS, however many. With
//!   `depth = 1` the root is everyone's site GIIS (a central index); `depth = 3` is
//!   site → VO → root.
//! - Every GRIS registers with its site GIIS, and every GIIS below the root with its
//!   parent, every `refresh`, starting at a phase drawn uniformly in [0, refresh).
//!   A registration sets the parent's entry for each covered node whose data it
//!   carries (and whose entry at the child is still valid) to (data_time, stamp =
//!   now). An entry is valid while now < stamp + `lifetime`; expired entries are
//!   ignored, not deleted. With `lifetime < refresh` entries lapse between refreshes.
//! - Resources change as the scenario's `[resources] changes` says (a world
//!   process every protocol sees; MDS-2's own studies swap a copy's type). A GRIS
//!   reports its node's resources as they are, but a cache entry remembers when its
//!   data was taken, so a GIIS answers with what the node held then: nothing tells
//!   a GIIS of a change before the next registration carries it (soft state).
//! - A query goes from its origin to its site GIIS, which answers with the cached
//!   holders in its range (the origin excluded) if there are any, and otherwise
//!   passes it to its parent; the root answers even when it found nothing. The
//!   answer goes straight back to the origin. An answer is stale if some resource it
//!   names no longer holds the wanted type; it counts as a discovery only for the
//!   named resources that really match, so an answer naming only stale resources is
//!   an answer but not a hit. `hops` is the number of GIIS levels the query visited;
//!   `nodes_reached` the number of nodes hosting them (levels sharing a node count
//!   once).
//! - Every message meets the receiving node's FIFO service queue, which is what
//!   makes the root a bottleneck as N grows. Entities on the same node (node 0 hosts
//!   a site GIIS, a VO GIIS and the root) hand messages to each other directly: no
//!   network message, no service time. A query from the node hosting its site GIIS
//!   sends no message either, but waits in that node's queue.
//! - Columns: `root_load` is the messages node 0, the root GIIS's host, served per
//!   second of [warmup, duration) — registrations and lookups for the root and for
//!   the site and VO GIISes that share node 0 with it, as a load monitor on the
//!   root's machine would see them; `answered_level_mean` is the mean level of the GIIS that answered a measured
//!   query with at least one resource.
//!
//! Simplifications, each a choice of this model rather than of the paper:
//! - The hierarchy is fixed by node ids: sites and VOs are blocks of consecutive
//!   ids and each GIIS runs on its block's first node. MDS-2 lets any GIIS register
//!   anywhere, and with several parents.
//! - Query routing is this model's. In MDS-2 a client chooses which GIIS to ask,
//!   and a GIIS may chain a query down to the providers registered with it for
//!   fresh data; it does not pass an unanswered query to a parent. Here a query
//!   starts at the origin's site GIIS and climbs toward the root while unanswered,
//!   the search a client would make by asking ever wider directories, and every
//!   GIIS answers from its cache alone.
//! - Registration carries the data. In MDS-2, GRRP only announces that a provider
//!   exists, and the directory then pulls its data over GRIP and caches it with a
//!   time to live. Here a GRIS's registration carries its data as of the moment it
//!   was sent, and a GIIS's registration a copy of its whole cache, read when the
//!   parent processes it (not when it was sent): one message where MDS-2 makes a
//!   registration and a pull.
//! - Whether an answer is stale, and how many of its resources really match, is
//!   decided when the GIIS answers; the answer's flight back to the origin (one
//!   underlay latency) is not checked again.
//! - A level whose single GIIS already covers every node (fanout^L ≥ N) is kept: it
//!   runs on node 0 with the root, so it costs no messages, and a sweep over
//!   `network.nodes` can keep one `depth`. It does count as a level in `hops`.
//! - Messages have no size: a GIIS registration that carries thousands of entries
//!   takes one service time at its parent, like a lookup.
//! - A GIIS does not know the origin's timeout: it serves lookups that waited past
//!   it in an overloaded queue, and their answers still count in
//!   `stale_answer_rate` and `answered_level_mean`, though no longer as hits.
//!
//! Under churn and faults, as MDS-2's soft state makes it behave: a down node's
//! GRIS and GIISes serve nothing and register nothing, so lookups sent to a down
//! GIIS are lost (a client does not try another directory: the hierarchy is
//! configured, not discovered), and the entries it registered lapse at its parent
//! after `lifetime`. Until then an answer may name a down node's resources: they
//! count as stale, not as hits. A node that comes up again starts with empty caches
//! (a GIIS keeps no state across a restart) and at once registers its GRIS, and
//! each GIIS it hosts, with their parents, then every `refresh`; its caches refill
//! as its children's next refreshes arrive. The roles `root` and `giis-L` name the
//! hosts a fault can crash.

use rand::RngExt;
use serde::Deserialize;

use super::{MemoryPart, ParamDoc, ParamError, ProtocolInfo, ProtocolParams, RunFigures, TCP_IP_BYTES};
use crate::engine::{Ctx, Message, NodeId, Protocol, QueryId, ResourceType, SimTime};
use crate::metrics::{Column, Metric, Recorder};
use crate::world::World;

/// `[protocol]` with `name = "hierarchical"`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Nodes per site, and children per GIIS above the sites (≥ 2).
    #[serde(default = "default_fanout")]
    pub fanout: u32,
    /// GIIS levels, the root included: 1 = one index for all, 3 = site → VO → root (1 to 8).
    #[serde(default = "default_depth")]
    pub depth: u32,
    /// Period of every registration (GRIS → site GIIS, GIIS → parent).
    #[serde(default = "default_refresh")]
    pub refresh: SimTime,
    /// How long a registration stays valid; below `refresh`, entries lapse between refreshes.
    #[serde(default = "default_lifetime")]
    pub lifetime: SimTime,
    /// No longer a parameter of the protocol: resource changes are the world's
    /// `[resources] changes`. Kept only to say so to a scenario that sets it.
    #[serde(default)]
    pub resource_changes: Option<toml::Value>,
    /// Start with empty caches filled by registrations, instead of full caches as if long running.
    #[serde(default)]
    pub register_at_start: bool,
}

fn default_fanout() -> u32 {
    10
}
fn default_depth() -> u32 {
    3
}
fn default_refresh() -> SimTime {
    SimTime::from_secs(30)
}
fn default_lifetime() -> SimTime {
    SimTime::from_secs(90)
}

impl Default for Params {
    fn default() -> Self {
        Params {
            fanout: default_fanout(),
            depth: default_depth(),
            refresh: default_refresh(),
            lifetime: default_lifetime(),
            resource_changes: None,
            register_at_start: false,
        }
    }
}

impl ProtocolParams for Params {
    type Protocol = Hierarchical;

    const INFO: ProtocolInfo = ProtocolInfo {
        name: "hierarchical",
        source: "Czajkowski, Fitzgerald, Foster, Kesselman, HPDC 2001 (Globus MDS-2)",
        summary: "GRIS per node → site GIIS → VO GIIS → root, soft-state registration; queries climb until a cache answers",
        uses_overlay: false,
        extra_columns: &[
            Column::new("root_load", "root GIIS host load (messages/s)"),
            Column::new("answered_level_mean", "GIIS level that answered (mean)"),
        ],
        roles: &[
            ("root", "node 0, which hosts the root GIIS"),
            ("giis-1", "the hosts of the site GIISes (level 1)"),
            ("giis-2", "the hosts of the level-2 GIISes (the VOs with depth = 3)"),
            ("giis-3", "the hosts of the level-3 GIISes"),
            ("giis-4", "the hosts of the level-4 GIISes"),
            ("giis-5", "the hosts of the level-5 GIISes"),
            ("giis-6", "the hosts of the level-6 GIISes"),
            ("giis-7", "the hosts of the level-7 GIISes"),
        ],
        keeps_state: false,
        params: &[
            ParamDoc::new("fanout", "10", "nodes per site, and children per GIIS above the sites (≥ 2)")
                .label("children per GIIS"),
            ParamDoc::new(
                "depth",
                "3",
                "GIIS levels, the root included: 1 = one index for all, 3 = site → VO → root (1 to 8)",
            )
            .label("GIIS levels"),
            ParamDoc::new("refresh", "\"30s\"", "period of every registration (GRIS → site GIIS, GIIS → parent)")
                .label("registration refresh period (s)"),
            ParamDoc::new(
                "lifetime",
                "\"90s\"",
                "how long a registration stays valid; below `refresh`, entries lapse between refreshes",
            )
            .label("registration lifetime (s)"),
            ParamDoc::new(
                "register_at_start",
                "false",
                "start with empty caches filled by registrations, instead of full caches as if long running",
            ),
        ],
    };

    fn build(&self, world: &World) -> Hierarchical {
        let nodes = world.nodes();
        let depth = self.depth.clamp(1, 8) as u8;
        let fanout = self.fanout.max(2) as u64;
        let span = (0..depth as u32).map(|l| fanout.saturating_pow(l)).collect();
        Hierarchical {
            depth,
            refresh: self.refresh,
            lifetime: self.lifetime.0,
            register_at_start: self.register_at_start,
            nodes,
            span,
            cache: Vec::new(),
            answered: 0,
            answered_level_sum: 0,
            #[cfg(test)]
            phases: Vec::new(),
        }
    }

    fn validate(&self, _run: &RunFigures) -> Result<(), ParamError> {
        if self.resource_changes.is_some() {
            return Err(ParamError::new(
                "resource_changes",
                "is no longer a protocol parameter: resources change for every protocol alike; \
                 write the rate per node under [resources], as changes = \"0.01/s\"",
            ));
        }
        if self.fanout < 2 {
            return Err(ParamError::new(
                "fanout",
                format!(
                    "fanout {} is out of range; expected fanout ≥ 2 (each GIIS groups fanout children)",
                    self.fanout
                ),
            ));
        }
        if !(1..=8).contains(&self.depth) {
            return Err(ParamError::new(
                "depth",
                format!("depth {} is out of range; expected 1 ≤ depth ≤ 8 GIIS levels, the root included", self.depth),
            ));
        }
        if self.refresh == SimTime::ZERO {
            return Err(ParamError::new("refresh", "expected a registration period above zero, such as \"30s\""));
        }
        if self.lifetime == SimTime::ZERO {
            return Err(ParamError::new("lifetime", "expected a registration lifetime above zero, such as \"90s\""));
        }
        Ok(())
    }

    /// The GIIS caches and the registration timers.
    fn memory(&self, run: &RunFigures) -> Vec<MemoryPart> {
        let n = run.nodes as f64;
        let levels = self.depth.clamp(1, 8) as f64;
        // A GRIS timer per node plus one per GIIS: at most n / (fanout − 1) more.
        let entities = n + n / (self.fanout.max(2) - 1) as f64;
        let mut out = vec![
            MemoryPart::new("GIIS caches", "network.nodes, protocol.depth", n * levels * 16.0),
            MemoryPart::new("registration timers", "network.nodes, protocol.fanout", entities * 32.0),
        ];
        let backlog = self.registration_backlog(run);
        if backlog > 0.0 {
            out.push(MemoryPart::new(
                "registration backlog",
                "protocol.refresh (longer), protocol.fanout",
                backlog * 48.0,
            ));
        }
        out
    }
}

impl Params {
    /// Registrations left waiting at the end of a run, in a fluid view: a GIIS whose
    /// children register faster than its queue serves them (children / `refresh`
    /// above one over the mean service time) falls behind by the difference every
    /// second. A child on its parent's node hands over without a message and is not
    /// counted. Zero unless `refresh` is shorter than about `fanout` service times.
    fn registration_backlog(&self, figures: &RunFigures) -> f64 {
        let service = figures.mean_service_s;
        if service == 0.0 {
            return 0.0;
        }
        let n = figures.nodes as f64;
        let fanout = self.fanout.max(2) as f64;
        let depth = self.depth.clamp(1, 8) as i32;
        let run = figures.run_s();
        let refresh = self.refresh.as_secs_f64().max(1e-9);
        let mut backlog = 0.0;
        for level in 1..=depth {
            // Entities one level down, and GIISes at this level; the root takes them all.
            let below = (n / fanout.powi(level - 1)).ceil();
            let giis = if level == depth { 1.0 } else { (n / fanout.powi(level)).ceil() };
            // Each GIIS's first child runs on its own node.
            let children = (below / giis).ceil() - 1.0;
            let excess = children / refresh - 1.0 / service;
            if excess > 0.0 {
                backlog += giis * excess * run;
            }
        }
        backlog
    }
}

/// GRRP registrations, and the lookups and answers of queries.
#[derive(Clone, Copy, Debug)]
pub enum Msg {
    /// A GRIS (`level` 0, `index` = its node) or a GIIS registering with its parent;
    /// `sent` is when a GRIS took its data.
    Register {
        /// The registering entity's level: 0 for a GRIS, L for a level-L GIIS.
        level: u8,
        /// Its position among the entities of its level.
        index: u32,
        /// When a GRIS took the data it carries; a GIIS's cache is read on arrival instead.
        sent: SimTime,
    },
    /// Query `q` from `origin`, for the GIIS at `level` that covers `origin`.
    Lookup {
        /// The query being looked up.
        q: QueryId,
        /// The resource type the origin wants.
        want: ResourceType,
        /// The node that issued the query and gets the answer.
        origin: NodeId,
        /// The level of the GIIS it is for.
        level: u8,
    },
    /// `matching`: how many of the named resources really hold the wanted type.
    Answer {
        /// The query it answers.
        q: QueryId,
        /// The level of the GIIS that answered, reported as the hops.
        level: u8,
        /// Named resources that really hold the wanted type.
        matching: u32,
        /// Resources it names, stale ones included: the answer's length.
        named: u32,
    },
}

/// Bytes of MDS-2's LDAP messages without TCP/IP: a GRRP registration (an LDAP
/// add of an `MdsRegistration` entry: the registrant's URL, base DN, validity and
/// refresh times) 300; a search request (base DN, scope, a filter on the type,
/// attributes) 200; a search result 100 for its envelope and done message and
/// 1,000 for each `MdsHost` entry it names (its LDIF: name, CPU, memory,
/// operating system and file system attributes).
const REGISTER_BYTES: u32 = 300;
const SEARCH_BYTES: u32 = 200;
const RESULT_BYTES: u32 = 100;
const ENTRY_BYTES: u32 = 1_000;

impl Message for Msg {
    const KINDS: &'static [&'static str] = &["register", "lookup", "answer"];
    fn size(&self) -> Option<u32> {
        Some(
            TCP_IP_BYTES
                + match *self {
                    Msg::Register { .. } => REGISTER_BYTES,
                    Msg::Lookup { .. } => SEARCH_BYTES,
                    Msg::Answer { named, .. } => RESULT_BYTES + named * ENTRY_BYTES,
                },
        )
    }
    fn kind(&self) -> usize {
        match self {
            Msg::Register { .. } => 0,
            Msg::Lookup { .. } => 1,
            Msg::Answer { .. } => 2,
        }
    }
    fn query(&self) -> Option<QueryId> {
        match *self {
            Msg::Register { .. } => None,
            Msg::Lookup { q, .. } | Msg::Answer { q, .. } => Some(q),
        }
    }
}

/// A registration refresh: the GRIS (`level` 0) or GIIS registers with its parent.
pub struct Timer {
    /// The registering entity's level: 0 for a GRIS, L for a level-L GIIS.
    level: u8,
    /// Its position among the entities of its level.
    index: u32,
}

/// One node's entry in one level's cache; `stamp == NEVER` means no entry.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// When the GRIS data was taken.
    data_time: u64,
    /// When this GIIS last received it.
    stamp: u64,
}

const NEVER: u64 = u64::MAX;

/// The MDS-2 hierarchy: every GIIS's cache and the counters behind its columns.
pub struct Hierarchical {
    depth: u8,
    refresh: SimTime,
    lifetime: u64,
    register_at_start: bool,
    nodes: usize,
    /// fanout^L for L = 0 .. depth − 1: the nodes a level-L entity covers.
    span: Vec<u64>,
    /// `cache[L − 1][v]`: the entry for node v at the level-L GIIS covering v. Each node
    /// is covered by exactly one GIIS per level, so a level's caches are one Vec.
    cache: Vec<Vec<Entry>>,
    /// Measured queries answered with at least one resource, and the sum of the levels.
    answered: u64,
    answered_level_sum: u64,
    /// (level, index, first refresh) of every registering entity, in drawing order.
    #[cfg(test)]
    phases: Vec<(u8, u32, SimTime)>,
}

impl Hierarchical {
    /// The GIIS (or, at level 0, GRIS) a level-`level` entity registers with.
    fn parent(&self, level: u8, index: u32) -> (u8, u32) {
        if level + 1 == self.depth { (self.depth, 0) } else { (level + 1, (index as u64 / self.span[1]) as u32) }
    }

    /// The index of the level-`level` GIIS covering node `v`.
    fn index_at(&self, level: u8, v: NodeId) -> u32 {
        if level == self.depth { 0 } else { (v.0 as u64 / self.span[level as usize]) as u32 }
    }

    fn host(&self, level: u8, index: u32) -> NodeId {
        if level == self.depth { NodeId(0) } else { NodeId((index as u64 * self.span[level as usize]) as u32) }
    }

    /// The nodes [lo, hi) a level-`level` entity covers.
    fn range(&self, level: u8, index: u32) -> (usize, usize) {
        if level == self.depth {
            return (0, self.nodes);
        }
        let span = self.span[level as usize];
        let lo = (index as u64 * span).min(self.nodes as u64) as usize;
        (lo, ((index as u64 + 1) * span).min(self.nodes as u64) as usize)
    }

    /// How many entities there are at a level below the root.
    fn count(&self, level: u8) -> u32 {
        self.nodes.div_ceil(self.span[level as usize] as usize) as u32
    }

    fn valid(&self, e: Entry, now: SimTime) -> bool {
        e.stamp != NEVER && now.0 < e.stamp.saturating_add(self.lifetime)
    }

    /// A registration from (`level`, `index`) reaches its parent at `now`.
    fn register(&mut self, now: SimTime, level: u8, index: u32, sent: SimTime) {
        let (parent, _) = self.parent(level, index);
        let (lo, hi) = self.range(level, index);
        let (below, above) = self.cache.split_at_mut(parent as usize - 1);
        let to = &mut above[0];
        if level == 0 {
            // A registration overtaken in flight by a newer one renews the entry
            // but does not replace the newer data.
            let data_time = if to[lo].stamp == NEVER { sent.0 } else { to[lo].data_time.max(sent.0) };
            to[lo] = Entry { data_time, stamp: now.0 };
            return;
        }
        let lifetime = self.lifetime;
        let from = &below[level as usize - 1];
        for v in lo..hi {
            let e = from[v];
            if e.stamp != NEVER && now.0 < e.stamp.saturating_add(lifetime) {
                to[v] = Entry { data_time: e.data_time, stamp: now.0 };
            }
        }
    }

    /// The level-`level` GIIS covering `origin` handles query `q`, and the query
    /// climbs through every GIIS on the same node without a message.
    fn lookup(&mut self, ctx: &mut Ctx<'_, Self>, q: QueryId, origin: NodeId, want: ResourceType, mut level: u8) {
        let now = ctx.now();
        ctx.report_reached(q);
        loop {
            let index = self.index_at(level, origin);
            let host = self.host(level, index);
            let (lo, hi) = self.range(level, index);
            let all = ctx.ever_held(want);
            let inside = &all[all.partition_point(|v| v.index() < lo)..all.partition_point(|v| v.index() < hi)];
            let cache = &self.cache[level as usize - 1];
            let (mut named, mut matching) = (0u32, 0u32);
            for &v in inside {
                let e = cache[v.index()];
                if v != origin && self.valid(e, now) && ctx.held_at(v, want, SimTime(e.data_time)) {
                    named += 1;
                    matching += (ctx.holds(v, want) && ctx.is_up(v)) as u32;
                }
            }
            if named > 0 || level == self.depth {
                if named > 0 {
                    ctx.report_answer(q, matching < named);
                    if ctx.issued(q) >= ctx.warmup() {
                        self.answered += 1;
                        self.answered_level_sum += level as u64;
                    }
                }
                if host == origin {
                    ctx.report_hit(q, level as u32, matching);
                } else {
                    ctx.send(host, origin, Msg::Answer { q, level, matching, named });
                }
                return;
            }
            let next = level + 1;
            let next_host = self.host(next, self.index_at(next, origin));
            if next_host != host {
                ctx.send(host, next_host, Msg::Lookup { q, want, origin, level: next });
                return;
            }
            level = next;
        }
    }

    /// The first refresh of every GRIS and GIIS below the root, as (level, index, phase).
    #[cfg(test)]
    fn phases(&self) -> &[(u8, u32, SimTime)] {
        &self.phases
    }
}

impl Protocol for Hierarchical {
    type Msg = Msg;
    type Timer = Timer;

    fn start(&mut self, ctx: &mut Ctx<'_, Self>) {
        ctx.answers_from_stored_state();
        let fill = if self.register_at_start {
            Entry { data_time: 0, stamp: NEVER }
        } else {
            Entry { data_time: 0, stamp: 0 }
        };
        self.cache = vec![vec![fill; self.nodes]; self.depth as usize];
        if ctx.dynamic() {
            // The data of nodes that start down was never registered, or has lapsed.
            for v in (0..self.nodes as u32).map(NodeId).filter(|&v| !ctx.is_up(v)) {
                for level in &mut self.cache {
                    level[v.index()] = Entry { data_time: 0, stamp: NEVER };
                }
            }
        }
        for level in 0..self.depth {
            for index in 0..self.count(level) {
                let phase = SimTime(ctx.rng().random_range(0..self.refresh.0));
                #[cfg(test)]
                self.phases.push((level, index, phase));
                ctx.set_timer(self.host(level, index), phase, Timer { level, index });
            }
        }
    }

    fn query(&mut self, ctx: &mut Ctx<'_, Self>, q: QueryId, origin: NodeId, want: ResourceType) {
        let site = self.host(1, self.index_at(1, origin));
        if site == origin {
            ctx.submit(origin, Msg::Lookup { q, want, origin, level: 1 });
        } else {
            ctx.send(origin, site, Msg::Lookup { q, want, origin, level: 1 });
        }
    }

    fn message(&mut self, ctx: &mut Ctx<'_, Self>, _at: NodeId, _from: NodeId, msg: Msg) {
        let now = ctx.now();
        match msg {
            Msg::Register { level, index, sent } => self.register(now, level, index, sent),
            Msg::Lookup { q, want, origin, level } => self.lookup(ctx, q, origin, want, level),
            Msg::Answer { q, level, matching, .. } => ctx.report_hit(q, level as u32, matching),
        }
    }

    fn timer(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, timer: Timer) {
        let Timer { level, index } = timer;
        let (parent, parent_index) = self.parent(level, index);
        let to = self.host(parent, parent_index);
        if to == at {
            self.register(ctx.now(), level, index, ctx.now());
        } else {
            ctx.send(at, to, Msg::Register { level, index, sent: ctx.now() });
        }
        ctx.set_timer(at, self.refresh, Timer { level, index });
    }

    fn joined(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, _: Option<NodeId>) {
        // The caches of the GIISes it hosts come back empty.
        for level in 1..=self.depth {
            let index = self.index_at(level, at);
            if self.host(level, index) == at {
                let (lo, hi) = self.range(level, index);
                for e in &mut self.cache[level as usize - 1][lo..hi] {
                    e.stamp = NEVER;
                }
            }
        }
        // Its GRIS, and each GIIS it hosts below the root, register now and then every refresh.
        for level in 0..self.depth {
            let index = if level == 0 { at.0 } else { self.index_at(level, at) };
            if self.host(level, index) == at {
                self.timer(ctx, at, Timer { level, index });
            }
        }
    }

    fn role(&self, name: &str) -> Vec<NodeId> {
        if name == "root" {
            return vec![NodeId(0)];
        }
        match name.strip_prefix("giis-").and_then(|l| l.parse::<u8>().ok()) {
            Some(level) if level >= 1 && level < self.depth => {
                (0..self.count(level)).map(|i| self.host(level, i)).collect()
            }
            _ => Vec::new(),
        }
    }

    fn state_bytes(&self) -> usize {
        self.cache.iter().map(|c| c.capacity() * std::mem::size_of::<Entry>()).sum()
    }

    fn extra_metrics(&self, recorder: &Recorder, out: &mut Vec<Metric>) {
        // The root runs on node 0: its host's load is the engine's own count.
        out.push(Metric::new("root_load", recorder.node_load(NodeId(0))));
        out.push(Metric::new(
            "answered_level_mean",
            (self.answered > 0).then(|| self.answered_level_sum as f64 / self.answered as f64),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamics::Dynamics;
    use crate::dynamics::changes::first_change_alone;
    use crate::engine::{Rate, RunOutput, SimConfig, Simulation};
    use crate::protocols::ProtocolSpec;
    use crate::validate::world;
    use crate::workload::{ScriptedQuery, Workload, WorkloadSpec};
    use crate::world::{Changes, Resources, TopologySpec};

    fn scripted(queries: &[(SimTime, u32, u32)]) -> WorkloadSpec {
        WorkloadSpec {
            rate: Rate(0.0),
            script: queries.iter().map(|&(at, origin, rtype)| ScriptedQuery { at, origin, rtype }).collect(),
            ..Default::default()
        }
    }

    fn run(w: &World, params: &Params, spec: &WorkloadSpec, config: &SimConfig) -> RunOutput {
        let workload = Workload::new(spec, w.nodes(), w.resources.types(), config.duration, config.seed);
        ProtocolSpec::Hierarchical(params.clone()).run(w, workload, config)
    }

    /// A core or an extra column of a finished run.

    #[test]
    fn an_expired_entry_is_not_returned() {
        // One root GIIS on node 0 for 20 nodes; only node 5 holds type 0. Its GRIS
        // registers at phase φ, every 10 s, and each registration (20 ms in flight)
        // is valid for 5 s.
        let mut w = world(&TopologySpec::Ring {}, 20, 20, 1, 0, 1);
        w.resources = Resources::from_holders(20, vec![vec![5]]);
        let params =
            Params { depth: 1, refresh: SimTime::from_secs(10), lifetime: SimTime::from_secs(5), ..Default::default() };
        let config = SimConfig { timeout: SimTime::from_secs(2), ..SimConfig::new(3, SimTime::from_secs(30)) };
        let idle = Workload::new(&scripted(&[]), 20, 1, config.duration, 3);
        let protocol = Simulation::new(&w, params.build(&w), idle, &config).run_protocol();
        let phase = protocol.phases().iter().find(|p| (p.0, p.1) == (0, 5)).map(|p| p.2).expect("node 5's GRIS");
        let registered = phase + SimTime::from_millis(20);
        // 1 s after the registration the entry is fresh; 6 s after, it has expired
        // and the next registration is still 4 s away.
        let fresh = registered + SimTime::from_secs(1);
        let expired = registered + SimTime::from_secs(6);
        let out = run(&w, &params, &scripted(&[(fresh, 3, 0), (expired, 3, 0)]), &config);
        let (a, b) = (&out.recorder.queries[0], &out.recorder.queries[1]);
        assert_eq!((a.issued, b.issued), (fresh, expired));
        assert_eq!((a.hits, a.latency()), (1, Some(SimTime::from_millis(40))), "fresh entry at {fresh}");
        assert_eq!((b.hits, b.latency(), b.reached), (0, None, 1), "expired entry at {expired}");
    }

    #[test]
    fn answers_go_stale_only_when_resources_change() {
        let w = world(&TopologySpec::Ring {}, 200, 20, 10, 5, 2);
        let config = SimConfig { timeout: SimTime::from_secs(5), ..SimConfig::new(4, SimTime::from_secs(200)) };
        let spec = WorkloadSpec { rate: Rate(20.0), timeout: config.timeout, ..Default::default() };
        let base = Params {
            depth: 2,
            refresh: SimTime::from_secs(1000),
            lifetime: SimTime::from_secs(3000),
            ..Default::default()
        };
        let changing = SimConfig { dynamics: swaps(0.01), ..config.clone() };
        let out = run(&w, &base, &spec, &changing);
        let stale = out.metric("stale_answer_rate").unwrap_or(0.0);
        assert!(stale > 0.05, "stale_answer_rate {stale} with changing resources and 1000 s refreshes");
        // 200 nodes × 0.01/s over the 205 s the run lasts: 410 changes, σ ≈ 20.
        let changes = out.metric("resource_changes").unwrap_or(0.0);
        assert!((changes - 410.0).abs() < 100.0, "{changes} resource changes, expected ≈ 410");

        let out = run(&w, &base, &spec, &config);
        assert_eq!(out.metric("stale_answer_rate"), Some(0.0));
        assert_eq!(out.metric("resource_changes"), Some(0.0));
        assert_eq!(out.metric("success_rate"), Some(1.0));
    }

    #[test]
    fn registrations_climb_the_tree_one_refresh_per_level() {
        // Caches start empty; 1,000 nodes, sites of 10, VOs of 100, the root on node
        // 0. Node 999 alone holds type 0. A GRIS reaches its site GIIS within one
        // refresh (10 s), the site GIIS its VO GIIS within the next, and the VO GIIS
        // the root within the third: a query from another VO finds nothing at first
        // and is answered by the root after three refreshes.
        let mut w = world(&TopologySpec::RandomRegular { degree: 4 }, 1000, 20, 1, 0, 1);
        w.resources = Resources::from_holders(1000, vec![vec![999]]);
        let params = Params { refresh: SimTime::from_secs(10), register_at_start: true, ..Default::default() };
        let config = SimConfig { timeout: SimTime::from_secs(5), ..SimConfig::new(6, SimTime::from_secs(40)) };
        let queries = [(SimTime::from_millis(1), 13, 0), (SimTime::from_secs(31), 13, 0)];
        let out = run(&w, &params, &scripted(&queries), &config);
        let (early, late) = (&out.recorder.queries[0], &out.recorder.queries[1]);
        assert!(!early.succeeded(), "no registration has arrived 1 ms in");
        assert!(late.succeeded(), "three refreshes in, the root knows node 999");
        assert_eq!((late.hits, late.hops), (1, 3));
        assert!(out.metric("root_load").unwrap_or(0.0) > 0.0);
    }

    /// Swaps at `rate` per node per second, and nothing else changing.
    fn swaps(rate: f64) -> Dynamics {
        Dynamics { changes: Changes { swap: Rate(rate), ..Changes::default() }, ..Dynamics::default() }
    }

    #[test]
    fn an_answer_naming_only_changed_resources_is_stale_and_no_hit() {
        // Only node 5 holds type 0, cached by the root at time 0; no registration
        // comes during the run. The one copy moves at a time read from the change
        // stream the run will draw, and a query 1 ms later finds the root still
        // naming node 5.
        let mut w = world(&TopologySpec::Ring {}, 20, 20, 1, 0, 1);
        w.resources = Resources::from_holders(20, vec![vec![5]]);
        let params = Params {
            depth: 1,
            refresh: SimTime::from_secs(100_000),
            lifetime: SimTime::from_secs(100_000),
            ..Default::default()
        };
        let dynamics =
            Dynamics { changes: Changes { moves: Rate(0.005), ..Changes::default() }, ..Dynamics::default() };
        let (seed, moved, [_, to]) = first_change_alone(&dynamics.changes, &w.resources, 20, SimTime::from_secs(3));
        let origin = if to == Some(NodeId(3)) { 4 } else { 3 };
        let query = moved + SimTime::from_millis(1);
        let config = SimConfig { timeout: SimTime::from_secs(1), dynamics, ..SimConfig::new(seed, query + SimTime(1)) };
        let out = run(&w, &params, &scripted(&[(query, origin, 0)]), &config);
        let got: Vec<_> = out.recorder.queries.iter().map(|q| (q.hits, q.reached)).collect();
        // The answer names node 5, which no longer matches: an answer, stale, but
        // not a discovery.
        assert_eq!(got, vec![(0, 1)]);
        assert_eq!(out.metric("stale_answer_rate"), Some(1.0));
        assert_eq!(out.metric("answered_level_mean"), Some(1.0));
        assert_eq!(out.metric("success_rate"), Some(0.0));
        assert_eq!(out.metric("resource_changes"), Some(1.0));
    }

    #[test]
    fn without_any_answer_there_is_no_stale_rate() {
        // Entries live 1 ns: every cache is empty whenever a query looks, so the root
        // answers that it found nothing and no answer names a resource.
        let w = world(&TopologySpec::Ring {}, 200, 20, 10, 5, 2);
        let config = SimConfig { timeout: SimTime::from_secs(5), ..SimConfig::new(4, SimTime::from_secs(20)) };
        let spec = WorkloadSpec { rate: Rate(20.0), timeout: config.timeout, ..Default::default() };
        let params = Params { lifetime: SimTime(1), register_at_start: true, ..Default::default() };
        let out = run(&w, &params, &spec, &config);
        assert!(out.metric("queries").unwrap_or(0.0) > 300.0);
        assert_eq!(out.metric("success_rate"), Some(0.0));
        assert_eq!(out.metric("stale_answer_rate"), None);
        assert_eq!(out.metric("answered_level_mean"), None);
    }

    #[test]
    fn a_registration_overtaken_in_flight_renews_but_keeps_the_newer_data() {
        let w = world(&TopologySpec::Ring {}, 20, 20, 1, 0, 1);
        let mut h = (Params { depth: 1, ..Default::default() }).build(&w);
        h.cache = vec![vec![Entry { data_time: 0, stamp: NEVER }; 20]];
        let s = SimTime::from_secs;
        // Node 5's GRIS sent at 10 s and at 11 s; the later one arrives first.
        h.register(s(12), 0, 5, s(11));
        h.register(s(13), 0, 5, s(10));
        assert_eq!((h.cache[0][5].data_time, h.cache[0][5].stamp), (s(11).0, s(13).0));
    }

    #[test]
    fn root_load_grows_linearly_with_the_network() {
        // Query rate and replicas both ∝ N, so the chance that a query finds nothing
        // in its VO (100 nodes) and climbs to the root stays ≈ (1 − 100/N)^R ≈ 0.6,
        // and the root serves ∝ N lookups per second.
        let loads: Vec<f64> = [1000u32, 2000, 4000]
            .iter()
            .map(|&n| {
                let w = world(&TopologySpec::Ring {}, n, 20, 100, n / 200, 5);
                let config = SimConfig { timeout: SimTime::from_secs(5), ..SimConfig::new(6, SimTime::from_secs(20)) };
                let spec = WorkloadSpec { rate: Rate(n as f64 / 10.0), timeout: config.timeout, ..Default::default() };
                let out = run(&w, &Params::default(), &spec, &config);
                out.metric("root_load").unwrap_or(0.0)
            })
            .collect();
        for pair in loads.windows(2) {
            let ratio = pair[1] / pair[0];
            assert!((ratio - 2.0).abs() < 0.3, "root load {loads:?}: ratio {ratio}");
        }
        // At N = 1000, node 0 serves lookups for three GIISes. The root: 100 queries/s,
        // 59% of them climbing, 90% from outside node 0's VO: 53/s. VO 0: the 9/s
        // from its other sites, 95% of them finding nothing in their site: 8.6/s.
        // Site 0: 0.9/s. Registrations from 9 GRISes, 9 sites and 9 VOs every 30 s: 0.9/s.
        assert!((loads[0] - 63.4).abs() < 8.0, "root load {loads:?}");
    }

    #[test]
    fn each_level_answers_with_its_exact_latency() {
        // 1000 nodes, fanout 10, depth 3; 20 ms per message. From node 13 (site 1 on
        // node 10, VO 0 and the root on node 0): type 0 at node 15 is in the site;
        // type 1 at node 25 is in the VO; type 2 at node 513 only the root knows.
        let mut w = world(&TopologySpec::Ring {}, 1000, 20, 3, 0, 1);
        w.resources = Resources::from_holders(1000, vec![vec![15], vec![25], vec![513]]);
        let config = SimConfig { timeout: SimTime::from_secs(2), ..SimConfig::new(1, SimTime::from_secs(10)) };
        let s = SimTime::from_secs;
        let out = run(&w, &Params::default(), &scripted(&[(s(1), 13, 0), (s(2), 13, 1), (s(3), 13, 2)]), &config);
        let got: Vec<_> = out.recorder.queries.iter().map(|q| (q.latency(), q.hops, q.hits)).collect();
        let ms = |m| Some(SimTime::from_millis(m));
        // Site: lookup 13 → 10, answer 10 → 13. VO: one more hop 10 → 0. Root: the
        // VO GIIS hands the query over on node 0 without a message.
        assert_eq!(got, vec![(ms(40), 1, 1), (ms(60), 2, 1), (ms(60), 3, 1)]);
        assert_eq!(out.metric("messages_lookup"), Some(5.0));
        assert_eq!(out.metric("messages_answer"), Some(3.0));
        assert_eq!(out.metric("answered_level_mean"), Some(2.0));
    }

    #[test]
    fn validate_names_the_bad_key() {
        let bad = [
            (Params { fanout: 1, ..Default::default() }, "fanout", "fanout ≥ 2"),
            (Params { depth: 0, ..Default::default() }, "depth", "1 ≤ depth ≤ 8"),
            (Params { depth: 9, ..Default::default() }, "depth", "1 ≤ depth ≤ 8"),
            (Params { refresh: SimTime::ZERO, ..Default::default() }, "refresh", "above zero"),
            (Params { lifetime: SimTime::ZERO, ..Default::default() }, "lifetime", "above zero"),
        ];
        for (params, key, expected) in bad {
            let err = params.validate(&RunFigures::on_nodes(100)).expect_err(key);
            assert_eq!(err.key, key);
            assert!(err.message.contains(expected), "{err}");
        }
        assert_eq!(Params::default().validate(&RunFigures::on_nodes(100)), Ok(()));
        let table: toml::Table = toml::from_str("name = \"hierarchical\"\nrefresh = \"10s\"").expect("valid TOML");
        let spec = ProtocolSpec::from_table(&table).expect("valid parameters");
        let want = Params { refresh: SimTime::from_secs(10), ..Default::default() };
        assert_eq!(spec, ProtocolSpec::Hierarchical(want));
        // The rate that moved to [resources] says where it went.
        let table: toml::Table =
            toml::from_str("name = \"hierarchical\"\nresource_changes = \"0.5/s\"").expect("valid TOML");
        let Ok(ProtocolSpec::Hierarchical(old)) = ProtocolSpec::from_table(&table) else { panic!("parses") };
        let err = old.validate(&RunFigures::on_nodes(100)).expect_err("moved");
        assert_eq!(err.key, "resource_changes");
        assert!(err.message.contains("[resources]") && err.message.contains("changes = "), "{err}");
    }

    #[test]
    fn a_dead_giis_loses_its_lookups_its_registrations_lapse_and_it_refills_by_soft_state() {
        use crate::dynamics::{Action, Dynamics, Fault, Victims};
        // Sites of 10 nodes under the root; only node 15 holds type 0, in the site
        // whose GIIS runs on node 10, down from 20 s to 40 s.
        let mut w = world(&TopologySpec::Ring {}, 100, 10, 1, 0, 1);
        w.resources = Resources::from_holders(100, vec![vec![15]]);
        let s = SimTime::from_secs;
        let params = Params { fanout: 10, depth: 2, refresh: s(5), lifetime: s(10), ..Default::default() };
        let crash = Fault {
            at: s(20),
            action: Action::Crash { victims: Victims::Nodes(vec![NodeId(10)]), recover: Some(s(40)) },
        };
        let config = SimConfig {
            timeout: s(2),
            dynamics: Dynamics { churn: None, faults: vec![crash], ..Dynamics::default() },
            ..SimConfig::new(3, s(60))
        };
        let asked = [(s(10), 55, 0), (s(22), 55, 0), (s(35), 55, 0), (s(25), 12, 0), (s(52), 12, 0), (s(52), 55, 0)];
        let out = run(&w, &params, &scripted(&asked), &config);
        let found: Vec<bool> = out.recorder.queries.iter().map(|q| q.succeeded()).collect();
        assert_eq!(
            found,
            vec![
                true,  // the root knows node 15 through its site GIIS
                true,  // the dead GIIS's registration at the root is still valid
                false, // ... and lapses within its 10 s lifetime
                false, // the lookup to the dead site GIIS is lost
                true,  // back up: node 15's next refresh refills it
                true,  // ... and its next registration refills the root
            ]
        );
        // Nine GRISes refresh three or four times each into the dead GIIS, and one lookup.
        let lost = out.metric("messages_lost_dead").unwrap_or(0.0);
        assert!((28.0..=37.0).contains(&lost), "{lost}");
    }

    #[test]
    fn the_roles_are_the_root_and_each_giis_level() {
        let w = world(&TopologySpec::Ring {}, 1000, 10, 1, 1, 1);
        let h = Params { fanout: 10, depth: 3, ..Default::default() }.build(&w);
        assert_eq!(h.role("root"), vec![NodeId(0)]);
        assert_eq!(h.role("giis-1").len(), 100);
        assert_eq!(h.role("giis-2"), (0..10).map(|i| NodeId(i * 100)).collect::<Vec<_>>());
        assert!(h.role("giis-3").is_empty(), "level 3 is the root");
    }
}
