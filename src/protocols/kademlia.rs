//! `kademlia`: the Kademlia DHT (Maymounkov and Mazières, IPTPS 2002), with
//! OverSim's parameters by default.
//!
//! **Identifiers.** As in `chord`: each node has an identifier of `bits` bits
//! (at most 64), drawn uniformly at the start and kept for the run, stored as a
//! `u64`. The distance between two identifiers is their XOR, read as an integer;
//! a key belongs to the node up whose identifier is closest to it.
//!
//! **Routing table.** Identifiers are read as strings of symbols of `b` bits. A
//! node keeps a k-bucket for every symbol other than its own at every level: the
//! bucket of level l and symbol d holds nodes whose identifiers share the node's
//! first l symbols and have d as their next (with b = 1, the paper's buckets: one
//! per bit of common prefix). Each bucket holds at most `k` nodes, least recently
//! seen first. Any message a node receives (a reply only while its call is
//! awaited) updates the bucket of its sender:
//! a known sender moves to the bucket's tail; a new one is appended if the
//! bucket has room, and otherwise goes to the bucket's replacement cache (the
//! `replacement` most recently seen, paper section 4.1), and the bucket's least
//! recently seen node is pinged: if it does not answer within `rpc_timeout` it is
//! evicted and the newest node of the cache takes its place. A call that goes
//! unanswered likewise evicts its target (OverSim's maxStaleCount of 0).
//!
//! **Lookups** are the paper's iterative node lookups: the origin takes the `k`
//! nodes closest to the key from its own table and keeps `alpha` find-node calls
//! in flight to the closest of them not yet asked; each answer names the `k`
//! nodes closest to the key that the answering node knows, which join the
//! shortlist of the `k` closest nodes known that have not failed. The lookup ends
//! when every node of the shortlist has answered or failed and none is waiting:
//! the closest node that answered (or the origin, if it is closer) is the owner,
//! and the lookup's message goes to it (to the next closest if it does not
//! answer). A lookup's hops are the answers along the chain of discovery that led
//! to that node: 0 if the origin knew it, one more than the node that named it
//! otherwise (as `chord` counts the hops to the key's predecessor). Calls that went
//! unanswered are its timeouts.
//!
//! **Refresh.** Every `refresh` a node looks up a random identifier in each bucket
//! level no lookup of its own has gone through since the last refresh, from the
//! top down to the deepest level it has a node in (the paper refreshes a bucket
//! not looked up in an hour; OverSim every 1000 s).
//!
//! **The start and churn.** The run starts from a network that has been running:
//! every node up at time zero has up to `k` nodes drawn at random from the nodes
//! up that belong in each of its buckets. A joining node (or one that rejoins,
//! with an empty table) puts its bootstrap contact in its table, looks up its
//! own identifier, and then refreshes every level; the nodes it asks learn of it
//! from its calls. Until its self-lookup completes its own lookups fail. A
//! leaving node tells nobody: Kademlia has no leave protocol.
//!
//! **Queries** are the lookups of a KBR test, judged as `chord`'s: a hit if the
//! node reached is the key's owner, at that moment, among the nodes up, joined
//! and not leaving.
//!
//! **Storage** (`storage = true`, as `chord`'s, after OverSim's DHT and
//! DHTTestApp) and **resources** (`resources = true`: holders register each
//! type they hold under the type's key, and a query asks for the holders, as
//! in `chord`): an item lives on the `replicas` nodes closest to its key (the
//! paper stores at the k closest; OverSim's DHT at 4). A put's lookup delivers
//! the item to the closest node that answered and stores it with STORE calls
//! at the next `replicas` − 1 of them (the origin among them if it is closer);
//! it succeeds if the first node owned the key. A get or a find asks the
//! closest node that answered and, while nothing is found, the next ones, up
//! to `replicas`, as OverSim's DHT asks its replicas. Items follow the nodes
//! as the paper has them (section 2.5): every `republish` (the paper's hour) a
//! node looks up each key it holds and stores its items there again at the
//! `replicas` closest nodes, and a node that receives a joining node's lookup
//! of its own identifier sends it the items it holds whose keys are closer to
//! the newcomer than to itself. A node that crashes or rejoins has lost its
//! items; nothing is ever deleted, so a registration of a holder gone stays
//! and answers naming it are stale. The run starts with the items in place
//! at the closest nodes up (`stored_keys` keys, or every node's registrations).

use rand::RngExt;
use serde::Deserialize;

use super::dht::{
    self, Found, HANDLE, HEADER, ITEM, Item, KBR_PAYLOAD, KEY, LookupStats, Lookups, Op, Outcome, Purpose, Stores,
};
use super::{MemoryPart, ParamDoc, ParamError, ProtocolInfo, ProtocolParams, RunFigures};
use crate::engine::{Ctx, Message, NodeId, Protocol, QueryId, ResourceType, SimTime, TimerId};
use crate::metrics::{Metric, Recorder};
use crate::world::World;

/// `[protocol]` with `name = "kademlia"`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Identifier length: 2^bits identifiers.
    #[serde(default = "default_bits")]
    pub bits: u32,
    /// Nodes a bucket holds, and nodes an answer names.
    #[serde(default = "default_k")]
    pub k: u32,
    /// Bits of a symbol: a routing step fixes at least one symbol.
    #[serde(default = "default_b")]
    pub b: u32,
    /// Find-node calls a lookup keeps in flight.
    #[serde(default = "default_alpha")]
    pub alpha: u32,
    /// Nodes a bucket's replacement cache holds.
    #[serde(default = "default_replacement")]
    pub replacement: u32,
    /// Period of bucket refresh.
    #[serde(default = "default_refresh")]
    pub refresh: SimTime,
    /// How long a call waits for its reply before its target counts as dead.
    #[serde(default = "dht::default_rpc_timeout")]
    pub rpc_timeout: SimTime,
    /// Whether nodes refresh their buckets and ping before evicting.
    #[serde(default = "dht::yes")]
    pub maintenance: bool,
    /// Whether queries put and get stored keys (OverSim's DHTTestApp) rather
    /// than route test messages to random keys (its KBRTestApp).
    #[serde(default)]
    pub storage: bool,
    /// Whether the DHT indexes the grid's resources: every holder registers
    /// each type it holds under the type's key, and a query asks the nodes
    /// closest to that key for the holders of its type.
    #[serde(default)]
    pub resources: bool,
    /// With storage or resources: the nodes closest to a key that hold it.
    #[serde(default = "dht::default_replicas")]
    pub replicas: u32,
    /// With storage: keys stored at the start, drawn uniformly, each at its replicas.
    #[serde(default)]
    pub stored_keys: u64,
    /// With storage: the share of queries that put a new key.
    #[serde(default = "dht::default_put_share")]
    pub put_share: f64,
    /// With storage or resources: how often a node stores the items it holds
    /// again at the nodes then closest to their keys.
    #[serde(default = "default_republish")]
    pub republish: SimTime,
}

fn default_bits() -> u32 {
    64
}
fn default_k() -> u32 {
    8
}
fn default_b() -> u32 {
    1
}
fn default_alpha() -> u32 {
    3
}
fn default_replacement() -> u32 {
    8
}
fn default_refresh() -> SimTime {
    SimTime::from_secs(1000)
}
fn default_republish() -> SimTime {
    SimTime::from_secs(3600)
}

impl Default for Params {
    fn default() -> Self {
        Params {
            bits: default_bits(),
            k: default_k(),
            b: default_b(),
            alpha: default_alpha(),
            replacement: default_replacement(),
            refresh: default_refresh(),
            rpc_timeout: dht::default_rpc_timeout(),
            maintenance: true,
            storage: false,
            resources: false,
            replicas: dht::default_replicas(),
            stored_keys: 0,
            put_share: dht::default_put_share(),
            republish: default_republish(),
        }
    }
}

impl ProtocolParams for Params {
    type Protocol = Kademlia;

    const INFO: ProtocolInfo = ProtocolInfo {
        name: "kademlia",
        source: "Maymounkov and Mazières, IPTPS 2002; OverSim's Kademlia",
        summary: "DHT on the XOR metric: k-buckets with replacement caches, alpha parallel iterative lookups of random keys, bucket refresh, replicated storage, a resource index",
        uses_overlay: false,
        extra_columns: dht::COLUMNS,
        roles: &[],
        keeps_state: false,
        params: &[
            ParamDoc::new("bits", "64", "identifier length: 2^bits identifiers (8 to 64, a multiple of b)")
                .label("identifier bits"),
            ParamDoc::new("k", "8", "nodes a bucket holds, and nodes an answer names").label("bucket size k"),
            ParamDoc::new("b", "1", "bits of a symbol: 2^b − 1 buckets a level, about log_(2^b) N hops (1 to 8)")
                .label("symbol bits b"),
            ParamDoc::new("alpha", "3", "find-node calls a lookup keeps in flight (1 to k)").label("parallel calls α"),
            ParamDoc::new("replacement", "8", "nodes each bucket's replacement cache holds").label("replacement cache"),
            ParamDoc::new("refresh", "\"1000s\"", "period of bucket refresh").label("refresh period (s)"),
            ParamDoc::new(
                "rpc_timeout",
                "\"1.5s\"",
                "how long a call waits for its reply before its target counts as dead",
            )
            .label("RPC timeout (s)"),
            ParamDoc::new("maintenance", "true", "whether nodes refresh buckets and ping before evicting"),
            ParamDoc::new(
                "storage",
                "false",
                "whether queries put new keys and get stored ones (OverSim's DHTTestApp) rather than route test messages to random keys",
            ),
            ParamDoc::new(
                "resources",
                "false",
                "whether the DHT indexes the grid's resources: holders register each type under its key at the nodes closest to it, and a query asks them for the holders",
            ),
            ParamDoc::new("replicas", "4", "with storage or resources: the nodes closest to a key that hold it (1 to k)")
                .label("replicas"),
            ParamDoc::new("stored_keys", "0", "with storage: keys stored at the start, each at its replicas")
                .label("keys stored at the start"),
            ParamDoc::new("put_share", "0.5", "with storage: share of the queries that put; the others get")
                .label("share of puts"),
            ParamDoc::new(
                "republish",
                "\"3600s\"",
                "with storage or resources: how often a node stores what it holds again at the nodes then closest to each key (the paper's hourly republishing)",
            )
            .label("republish period (s)"),
        ],
    };

    fn build(&self, world: &World) -> Kademlia {
        let n = world.nodes();
        Kademlia {
            params: self.clone(),
            mask: dht::mask(self.bits),
            id: vec![0; n],
            ring: Vec::new(),
            table: vec![Vec::new(); n],
            cache: vec![Vec::new(); n],
            touched: vec![0; n],
            lookups: Lookups::default(),
            ready: vec![false; n],
            leaving: vec![false; n],
            stores: if self.work().stores_items() { Stores::new(n) } else { Stores::default() },
            stats: LookupStats { storage: self.work().stores_items(), ..LookupStats::default() },
        }
    }

    fn validate(&self, run: &RunFigures) -> Result<(), ParamError> {
        if !(1..=8).contains(&self.b) {
            return Err(ParamError::new("b", format!("{} is out of range; expected 1 ≤ b ≤ 8", self.b)));
        }
        dht::check_bits(self.bits, run.nodes)?;
        if !self.bits.is_multiple_of(self.b) {
            return Err(ParamError::new("bits", format!("{} is not a multiple of b = {}", self.bits, self.b)));
        }
        if !(1..=64).contains(&self.k) {
            return Err(ParamError::new("k", format!("{} is out of range; expected 1 ≤ k ≤ 64", self.k)));
        }
        if !(1..=self.k).contains(&self.alpha) {
            return Err(ParamError::new(
                "alpha",
                format!("{} is out of range; expected 1 ≤ alpha ≤ k = {}", self.alpha, self.k),
            ));
        }
        if self.replacement > 64 {
            return Err(ParamError::new(
                "replacement",
                format!("{} is out of range; expected 0 ≤ replacement ≤ 64", self.replacement),
            ));
        }
        if self.work().stores_items() && !(1..=self.k).contains(&self.replicas) {
            return Err(ParamError::new(
                "replicas",
                format!("{} is out of range; expected 1 ≤ replicas ≤ k = {}", self.replicas, self.k),
            ));
        }
        self.work().check(self.stored_keys)?;
        dht::check_periods(&[
            ("refresh", self.refresh),
            ("rpc_timeout", self.rpc_timeout),
            ("republish", self.republish),
        ])
    }

    /// Per node: identifier, a table of about k·log2 N nodes and its cache; and
    /// the lookups in flight with their shortlists.
    fn memory(&self, run: &RunFigures) -> Vec<MemoryPart> {
        let levels = (run.nodes.max(2) as f64).log2().ceil() + 2.0;
        let contacts = levels * self.k as f64 * ((1u64 << self.b) - 1) as f64;
        let per_node = 8.0 + 16.0 + 8.0 + 2.0 * 24.0 + 4.0 * (contacts + levels * self.replacement as f64);
        let in_flight = run.live_queries() * (128.0 + 40.0 * 3.0 * self.k as f64);
        vec![
            MemoryPart::new(
                "identifiers and k-buckets",
                "network.nodes, protocol.k, protocol.b",
                run.nodes as f64 * per_node,
            ),
            MemoryPart::new("lookups in flight", "workload.rate, workload.timeout", in_flight),
            MemoryPart::new(
                "stored keys or registrations",
                "protocol.stored_keys, protocol.replicas, workload.rate, resources",
                self.stored(run),
            ),
        ]
    }
}

impl Params {
    /// What its queries do.
    fn work(&self) -> dht::Work {
        dht::Work { storage: self.storage, resources: self.resources, put_share: self.put_share }
    }

    /// Bytes of the items stored, over all nodes.
    fn stored(&self, run: &RunFigures) -> f64 {
        let copies = self.replicas as f64 + 1.0;
        if self.storage {
            let puts = run.query_rate * run.duration.as_secs_f64() * self.put_share;
            run.nodes as f64 * 24.0 + (self.stored_keys as f64 + puts) * 16.0 * copies
        } else if self.resources {
            run.nodes as f64 * 24.0 + run.resource_types as f64 * run.replicas as f64 * 16.0 * copies
        } else {
            0.0
        }
    }
}

/// Where a node of a lookup's shortlist stands.
#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    /// Not asked yet.
    Fresh,
    /// Asked: the call's timeout.
    Waiting(TimerId),
    /// Answered.
    Answered,
    /// Did not answer.
    Failed,
}

/// A node of a lookup's shortlist.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// Its distance to the key.
    dist: u64,
    node: NodeId,
    /// Answers along the chain that named it: 0 for the origin's own table.
    depth: u32,
    state: State,
}

/// A lookup in progress at its origin.
struct Lookup {
    key: u64,
    origin: NodeId,
    purpose: Purpose,
    /// What it does at the nodes closest to the key and what it met there (a
    /// get goes on to the next closest while the key is not found).
    outcome: Outcome,
    /// Hops to the last node it was delivered to.
    hops: u32,
    /// Every node heard of, closest to the key first (failed ones kept, to be
    /// known again).
    list: Vec<Entry>,
    /// Calls that went unanswered.
    timeouts: u32,
    /// Once the search has ended: the node the message is being delivered to
    /// (its entry's index) and the call's timeout.
    delivering: Option<(usize, TimerId)>,
}

/// What a call that may go unanswered is for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Call {
    /// A find-node or delivery of lookup `lid`.
    Lookup(u32),
    /// The ping of a bucket's least recently seen node.
    Ping,
}

/// Kademlia's messages.
#[derive(Clone, Debug)]
pub enum Msg {
    /// FIND_NODE: which nodes does the receiver know closest to `key`?
    FindNode {
        /// The call's timeout at the caller.
        call: TimerId,
        /// The lookup at the caller.
        lid: u32,
        /// The key.
        key: u64,
        /// The query the lookup serves, if any.
        q: Option<QueryId>,
    },
    /// The answer: up to k nodes, closest first.
    Nodes {
        /// The call answered.
        call: TimerId,
        /// The lookup at the caller.
        lid: u32,
        /// The query, if any.
        q: Option<QueryId>,
        /// The nodes.
        nodes: Vec<NodeId>,
    },
    /// The lookup's message, to the node found closest to `key`.
    Deliver {
        /// The call.
        call: TimerId,
        /// The lookup at the caller.
        lid: u32,
        /// The key.
        key: u64,
        /// The query, if any.
        q: Option<QueryId>,
        /// A test message, a value to store, or a request for one.
        op: Op,
    },
    /// The receipt: whether the receiver owns the key (the oracle's verdict),
    /// for a get whether it holds the key, for a find the holders it names.
    Delivered {
        /// The call answered.
        call: TimerId,
        /// The lookup at the caller.
        lid: u32,
        /// The query, if any.
        q: Option<QueryId>,
        /// What the message met.
        got: Found,
    },
    /// STORE: items to hold, a new one or those a node passes on.
    Store {
        /// The items.
        items: Vec<Item>,
    },
    /// PING.
    Ping {
        /// The call.
        call: TimerId,
    },
    /// Its reply.
    Pong {
        /// The call answered.
        call: TimerId,
    },
}

impl Message for Msg {
    const KINDS: &'static [&'static str] = &["find_node", "nodes", "deliver", "delivered", "ping", "pong", "store"];
    fn kind(&self) -> usize {
        match self {
            Msg::FindNode { .. } => 0,
            Msg::Nodes { .. } => 1,
            Msg::Deliver { .. } => 2,
            Msg::Delivered { .. } => 3,
            Msg::Ping { .. } => 4,
            Msg::Pong { .. } => 5,
            Msg::Store { .. } => 6,
        }
    }
    fn query(&self) -> Option<QueryId> {
        match *self {
            Msg::FindNode { q, .. } | Msg::Nodes { q, .. } | Msg::Deliver { q, .. } | Msg::Delivered { q, .. } => q,
            _ => None,
        }
    }
    /// Every message carries its sender's handle, which its receiver files in
    /// a bucket.
    fn size(&self) -> Option<u32> {
        Some(
            HEADER
                + HANDLE
                + match self {
                    Msg::FindNode { .. } => KEY,
                    Msg::Nodes { nodes, .. } => 1 + nodes.len() as u32 * HANDLE,
                    Msg::Deliver { q, op, .. } => {
                        KEY + if q.is_some() && matches!(op, Op::Route | Op::Put) { KBR_PAYLOAD } else { 0 }
                    }
                    Msg::Delivered { got, .. } => 1 + got.reply,
                    Msg::Store { items } => 4 + items.len() as u32 * ITEM,
                    Msg::Ping { .. } | Msg::Pong { .. } => 0,
                },
        )
    }
}

/// Kademlia's timers.
#[derive(Clone, Copy, Debug)]
pub enum Timer {
    /// Time to refresh the buckets.
    Refresh,
    /// The reply from `target` to a call is overdue.
    Timeout {
        /// The node called.
        target: NodeId,
        /// What the call was for.
        call: Call,
    },
    /// A join that found nobody tries again.
    Join,
    /// Time to republish the items held.
    Republish,
}

/// The Kademlia protocol for one run.
pub struct Kademlia {
    params: Params,
    /// 2^bits − 1.
    mask: u64,
    /// Each node's identifier.
    id: Vec<u64>,
    /// Every node by identifier, ascending: the oracle's view.
    ring: Vec<(u64, NodeId)>,
    /// Each node's buckets, flat: nodes in bucket order, least recently seen
    /// first within a bucket.
    table: Vec<Vec<u32>>,
    /// Each node's replacement caches, flat: nodes in bucket order, most
    /// recently seen last within a bucket.
    cache: Vec<Vec<u32>>,
    /// Per node, a bit for each level a lookup of its own went through since the
    /// last refresh.
    touched: Vec<u64>,
    lookups: Lookups<Lookup>,
    /// Nodes whose join has completed (and which are up).
    ready: Vec<bool>,
    /// Nodes that have announced a leave.
    leaving: Vec<bool>,
    /// With storage or resources: the items each node holds.
    stores: Stores,
    stats: LookupStats,
}

impl Kademlia {
    fn k(&self) -> usize {
        self.params.k as usize
    }

    /// Symbols in an identifier.
    fn levels(&self) -> u32 {
        self.params.bits / self.params.b
    }

    /// The bucket of `v` that node `c` belongs in, as (level, symbol), or
    /// `None` if they share the identifier.
    fn bucket(&self, v: NodeId, c: NodeId) -> Option<(u32, u32)> {
        self.bucket_of(self.id[v.index()], self.id[c.index()])
    }

    /// The bucket of a node with identifier `me` that identifier `x` belongs in.
    fn bucket_of(&self, me: u64, x: u64) -> Option<(u32, u32)> {
        let diff = me ^ x;
        if diff == 0 {
            return None;
        }
        let common = diff.leading_zeros() - (64 - self.params.bits);
        let level = common / self.params.b;
        Some((level, self.symbol(x, level)))
    }

    /// Symbol `level` of identifier `x`.
    fn symbol(&self, x: u64, level: u32) -> u32 {
        let b = self.params.b;
        let shift = self.params.bits - (level + 1) * b;
        ((x >> shift) & ((1u64 << b) - 1)) as u32
    }

    /// The range of `v`'s flat list `list` that holds bucket `at`.
    fn span(&self, v: NodeId, list: &[u32], at: (u32, u32)) -> (usize, usize) {
        let key = |&c: &u32| self.bucket(v, NodeId(c)).unwrap_or((u32::MAX, 0));
        (list.partition_point(|c| key(c) < at), list.partition_point(|c| key(c) <= at))
    }

    /// The owner of `key` among the nodes up, joined and not leaving: the one
    /// whose identifier is closest by XOR, found by descending the sorted ring
    /// as a binary trie.
    fn owner(&self, ctx: &Ctx<'_, Self>, key: u64) -> Option<NodeId> {
        let ok = |v: NodeId| ctx.is_up(v) && self.ready[v.index()] && !self.leaving[v.index()];
        self.closest(0, self.ring.len(), self.params.bits, key, &ok)
    }

    fn closest(&self, lo: usize, hi: usize, bit: u32, key: u64, ok: &impl Fn(NodeId) -> bool) -> Option<NodeId> {
        if hi - lo <= 8 || bit == 0 {
            return self.ring[lo..hi].iter().filter(|&&(_, v)| ok(v)).min_by_key(|&&(id, _)| id ^ key).map(|&(_, v)| v);
        }
        let b = bit - 1;
        let mid = lo + self.ring[lo..hi].partition_point(|&(id, _)| (id >> b) & 1 == 0);
        let halves = if (key >> b) & 1 == 0 { [(lo, mid), (mid, hi)] } else { [(mid, hi), (lo, mid)] };
        halves.into_iter().find_map(|(l, h)| if l < h { self.closest(l, h, b, key, ok) } else { None })
    }

    /// The up to `most` nodes of `v`'s table closest to `key`, closest first,
    /// but `not`.
    fn closest_known(&self, v: NodeId, key: u64, most: usize, not: NodeId) -> Vec<NodeId> {
        let mut near: Vec<(u64, u32)> =
            self.table[v.index()].iter().filter(|&&c| c != not.0).map(|&c| (self.id[c as usize] ^ key, c)).collect();
        if near.len() > most {
            near.select_nth_unstable(most - 1);
            near.truncate(most);
        }
        near.sort_unstable();
        near.into_iter().map(|(_, c)| NodeId(c)).collect()
    }

    /// `v` has heard from `c`: the paper's bucket update. Returns the node to
    /// ping if `c` went to a full bucket's replacement cache.
    fn seen(&mut self, v: NodeId, c: NodeId) -> Option<NodeId> {
        let at = self.bucket(v, c)?;
        let mut table = std::mem::take(&mut self.table[v.index()]);
        let (lo, hi) = self.span(v, &table, at);
        let mut ping = None;
        if let Some(i) = table[lo..hi].iter().position(|&x| x == c.0) {
            // Known: to the tail, most recently seen.
            table[lo + i..hi].rotate_left(1);
        } else if hi - lo < self.k() {
            table.insert(hi, c.0);
        } else if self.params.replacement > 0 {
            let mut cache = std::mem::take(&mut self.cache[v.index()]);
            let (clo, chi) = self.span(v, &cache, at);
            if let Some(i) = cache[clo..chi].iter().position(|&x| x == c.0) {
                cache.remove(clo + i);
                cache.insert(chi - 1, c.0);
            } else {
                cache.insert(chi, c.0);
                if chi - clo >= self.params.replacement as usize {
                    cache.remove(clo);
                }
                ping = self.params.maintenance.then_some(NodeId(table[lo]));
            }
            self.cache[v.index()] = cache;
        }
        self.table[v.index()] = table;
        ping
    }

    /// `v` has found `dead` unresponsive: out of its table, and the newest node
    /// of that bucket's replacement cache in its place.
    fn evict(&mut self, v: NodeId, dead: NodeId) {
        let Some(at) = self.bucket(v, dead) else { return };
        let mut table = std::mem::take(&mut self.table[v.index()]);
        let (lo, hi) = self.span(v, &table, at);
        if let Some(i) = table[lo..hi].iter().position(|&x| x == dead.0) {
            table.remove(lo + i);
            let mut cache = std::mem::take(&mut self.cache[v.index()]);
            let (clo, chi) = self.span(v, &cache, at);
            if chi > clo {
                let c = cache.remove(chi - 1);
                table.insert(hi - 1, c);
            }
            self.cache[v.index()] = cache;
        } else {
            let cache = &mut self.cache[v.index()];
            if let Some(i) = cache.iter().position(|&x| x == dead.0) {
                cache.remove(i);
            }
        }
        self.table[v.index()] = table;
    }

    /// `v` hears from `c`, and pings a bucket's oldest node if need be.
    fn hear(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId, c: NodeId) {
        if let Some(old) = self.seen(v, c) {
            let call = ctx.set_timer(v, self.params.rpc_timeout, Timer::Timeout { target: old, call: Call::Ping });
            ctx.send(v, old, Msg::Ping { call });
        }
    }

    fn start_lookup(&mut self, ctx: &mut Ctx<'_, Self>, origin: NodeId, key: u64, purpose: Purpose, op: Op) {
        if purpose.query().is_none() {
            self.stats.maintenance_lookups += 1;
        }
        if let Some((level, _)) = self.bucket_of(self.id[origin.index()], key) {
            self.touched[origin.index()] |= 1u64 << level;
        }
        let list = self
            .closest_known(origin, key, self.k(), origin)
            .into_iter()
            .map(|node| Entry { dist: self.id[node.index()] ^ key, node, depth: 0, state: State::Fresh })
            .collect();
        let lookup =
            Lookup { key, origin, purpose, outcome: Outcome::new(op), hops: 0, list, timeouts: 0, delivering: None };
        let lid = self.lookups.insert(lookup);
        self.advance(ctx, lid);
    }

    /// Ends every lookup `v` has in progress, with every call it waits on.
    fn drop_lookups(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId) {
        for l in self.lookups.remove_where(|l| l.origin == v) {
            let waiting = l.list.iter().filter_map(|e| match e.state {
                State::Waiting(t) => Some(t),
                _ => None,
            });
            for t in waiting.chain(l.delivering.map(|(_, t)| t)) {
                ctx.cancel_timer(t);
            }
        }
    }

    /// Lookup `lid` heard of `nodes` from an answer at `depth`: into the
    /// shortlist, in order of distance.
    fn learn(&mut self, lid: u32, depth: u32, nodes: Vec<NodeId>) {
        let id = &self.id;
        let l = self.lookups.get_mut(lid);
        for node in nodes {
            if node == l.origin || l.list.iter().any(|e| e.node == node) {
                continue;
            }
            let dist = id[node.index()] ^ l.key;
            let at = l.list.partition_point(|e| e.dist < dist);
            l.list.insert(at, Entry { dist, node, depth, state: State::Fresh });
        }
    }

    /// Keeps `alpha` calls of lookup `lid` in flight to the closest nodes not yet
    /// asked among the k closest that have not failed; when none is left to ask
    /// or waited on, delivers to the closest that answered.
    fn advance(&mut self, ctx: &mut Ctx<'_, Self>, lid: u32) {
        let (k, alpha) = (self.k(), self.params.alpha as usize);
        let l = self.lookups.get(lid);
        let (origin, key, q) = (l.origin, l.key, l.purpose.query());
        let mut waiting = l.list.iter().filter(|e| matches!(e.state, State::Waiting(_))).count();
        while waiting < alpha {
            let l = self.lookups.get(lid);
            let mut shortlist = l.list.iter().enumerate().filter(|(_, e)| e.state != State::Failed).take(k);
            let Some((i, e)) = shortlist.find(|(_, e)| e.state == State::Fresh) else { break };
            let target = e.node;
            let call =
                ctx.set_timer(origin, self.params.rpc_timeout, Timer::Timeout { target, call: Call::Lookup(lid) });
            self.lookups.get_mut(lid).list[i].state = State::Waiting(call);
            ctx.send(origin, target, Msg::FindNode { call, lid, key, q });
            waiting += 1;
        }
        if waiting == 0 {
            self.deliver(ctx, lid, 0);
        }
    }

    /// The search of lookup `lid` is over: the message goes to the closest node
    /// that answered from entry `from` on, unless the origin is closer (once
    /// delivered somewhere, it goes on to the next that answered). A put also
    /// stores its item at the other nodes of the `replicas` closest; a
    /// republish only stores.
    fn deliver(&mut self, ctx: &mut Ctx<'_, Self>, lid: u32, from: usize) {
        let l = self.lookups.get(lid);
        let (origin, key, q, op, tries) = (l.origin, l.key, l.purpose.query(), l.outcome.op, l.outcome.tries);
        if l.purpose == Purpose::Republish {
            let items = self.stores.under(origin, key).to_vec();
            for v in self.replica_set(lid).into_iter().filter(|&v| v != origin) {
                ctx.send(origin, v, Msg::Store { items: items.clone() });
            }
            return self.finish(ctx, lid, None);
        }
        if from == 0 && op == Op::Put {
            let item = self.params.work().item(key, origin);
            for v in self.replica_set(lid).into_iter().skip(1) {
                if v == origin {
                    self.stores.add(v, &[item]);
                } else {
                    ctx.send(origin, v, Msg::Store { items: vec![item] });
                }
            }
        }
        let own = self.id[origin.index()] ^ key;
        let l = self.lookups.get(lid);
        let next = (from..l.list.len()).find(|&i| l.list[i].state == State::Answered);
        match next {
            Some(i) if tries > 0 || l.list[i].dist < own => {
                let target = l.list[i].node;
                let call =
                    ctx.set_timer(origin, self.params.rpc_timeout, Timer::Timeout { target, call: Call::Lookup(lid) });
                self.lookups.get_mut(lid).delivering = Some((i, call));
                ctx.send(origin, target, Msg::Deliver { call, lid, key, q, op });
            }
            // Every node that answered has been tried.
            None if tries > 0 => {
                let l = self.lookups.get(lid);
                let reached = (l.hops, l.outcome.first == Some(true));
                self.finish(ctx, lid, Some(reached));
            }
            _ => {
                // No node that answered is closer than the origin: it takes the
                // message itself.
                let got = self.receive(ctx, origin, key, op, origin);
                self.delivered(ctx, lid, None, got);
            }
        }
    }

    /// The `replicas` nodes closest to lookup `lid`'s key among the origin and
    /// the nodes that answered, closest first.
    fn replica_set(&self, lid: u32) -> Vec<NodeId> {
        let l = self.lookups.get(lid);
        let own = self.id[l.origin.index()] ^ l.key;
        let answered = l.list.iter().filter(|e| e.state == State::Answered);
        let mut set: Vec<(u64, NodeId)> = answered.map(|e| (e.dist, e.node)).collect();
        set.push((own, l.origin));
        set.sort_unstable();
        set.into_iter().take(self.params.replicas as usize).map(|(_, v)| v).collect()
    }

    /// What `at` does with a lookup's message for `key` from `origin`, and what
    /// the message meets there.
    fn receive(&mut self, ctx: &Ctx<'_, Self>, at: NodeId, key: u64, op: Op, origin: NodeId) -> Found {
        let mut got = Found { correct: self.owner(ctx, key) == Some(at), ..Found::default() };
        match op {
            Op::Route | Op::Range { .. } => {}
            Op::Put => {
                self.stores.add(at, &[self.params.work().item(key, origin)]);
                got.found = true;
            }
            Op::Get | Op::Find(_) => got.read(&self.stores, ctx, at, key, op, origin),
        }
        got
    }

    /// Lookup `lid` was delivered to its entry `at` (the origin if `None`),
    /// where it met `got`: it ends, unless it is a get or a find that found
    /// nothing and other replicas remain to ask.
    fn delivered(&mut self, ctx: &mut Ctx<'_, Self>, lid: u32, at: Option<usize>, got: Found) {
        let replicas = self.params.replicas;
        let l = self.lookups.get_mut(lid);
        l.hops = at.map_or(0, |i| l.list[i].depth);
        if l.outcome.meet(got, replicas) {
            return self.deliver(ctx, lid, at.map_or(0, |i| i + 1));
        }
        let reached = (l.hops, l.outcome.first == Some(true));
        self.finish(ctx, lid, Some(reached));
    }

    /// Lookup `lid` ends: delivered (with its hops and whether first to the
    /// owner), or not.
    fn finish(&mut self, ctx: &mut Ctx<'_, Self>, lid: u32, reached: Option<(u32, bool)>) {
        let l = self.lookups.remove(lid);
        match l.purpose {
            Purpose::Query(q) => {
                let counted = ctx.issued(q) >= ctx.warmup();
                self.stats.end(counted, l.timeouts, reached);
                let hops = reached.map_or(0, |(hops, _)| hops);
                let end = dht::QueryEnd { q, key: l.key, reached: reached.is_some(), hops, outcome: l.outcome };
                end.report(ctx, &mut self.stats, &mut self.stores);
            }
            Purpose::Repair(_) | Purpose::Publish | Purpose::Republish | Purpose::Range(..) => {}
            Purpose::Join => {
                if self.table[l.origin.index()].is_empty() {
                    ctx.set_timer(l.origin, dht::JOIN_DELAY, Timer::Join);
                } else {
                    self.ready[l.origin.index()] = true;
                    if self.params.maintenance {
                        self.refresh(ctx, l.origin);
                    }
                    self.publish(ctx, l.origin);
                }
            }
        }
    }

    /// With resources indexed: `v` registers every type it holds, each by a
    /// put of its registration under the type's key.
    fn publish(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId) {
        if !self.params.resources {
            return;
        }
        for (key, _) in dht::registrations(ctx, [v], self.mask) {
            self.start_lookup(ctx, v, key, Purpose::Publish, Op::Put);
        }
    }

    /// `v` stores the items it holds again at the nodes now closest to their
    /// keys, one lookup for each key (the paper's republishing).
    fn republish(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId) {
        let mut keys: Vec<u64> = self.stores.held(v).iter().map(|&(k, _)| k).collect();
        keys.dedup();
        for key in keys {
            self.start_lookup(ctx, v, key, Purpose::Republish, Op::Route);
        }
    }

    /// Whether the DHT stores items.
    fn stores_items(&self) -> bool {
        self.params.work().stores_items()
    }

    /// `v`'s republishing, at a phase of its own, where items are stored.
    fn schedule_republish(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId) {
        if self.stores_items() {
            let phase = SimTime(ctx.rng().random_range(1..=self.params.republish.0));
            ctx.set_timer(v, phase, Timer::Republish);
        }
    }

    /// The items of a DHT that has been running, each at the `replicas` nodes
    /// of `up` closest to its key: `stored_keys` keys drawn uniformly, or every
    /// node's registrations; and every node's republishing under way.
    fn preload(&mut self, ctx: &mut Ctx<'_, Self>, up: &[(u64, NodeId)]) {
        let items = self.params.work().preloaded(ctx, &mut self.stores, self.params.stored_keys, up, self.mask);
        let replicas = self.params.replicas as usize;
        let placed: Vec<(NodeId, Item)> = items
            .into_iter()
            .flat_map(|item| {
                let mut near: Vec<NodeId> = Vec::with_capacity(replicas);
                while near.len() < replicas {
                    let ok = |v: NodeId| ctx.is_up(v) && !near.contains(&v);
                    match self.closest(0, self.ring.len(), self.params.bits, item.0, &ok) {
                        Some(v) => near.push(v),
                        None => break,
                    }
                }
                near.into_iter().map(move |v| (v, item))
            })
            .collect();
        self.stores.place(placed);
        if self.params.maintenance {
            for &(_, v) in up {
                self.schedule_republish(ctx, v);
            }
        }
    }

    /// Looks up a random identifier in every level of `v`'s buckets that no
    /// lookup went through since the last refresh, down to the deepest level
    /// holding a node.
    fn refresh(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId) {
        let me = self.id[v.index()];
        let Some(deepest) = self.table[v.index()].last().and_then(|&c| self.bucket(v, NodeId(c))) else {
            return;
        };
        let (bits, b) = (self.params.bits, self.params.b);
        for level in 0..=deepest.0.min(self.levels() - 1) {
            if self.touched[v.index()] & (1u64 << level) != 0 {
                continue;
            }
            // Own first `level` symbols, another symbol, then anything.
            let own = self.symbol(me, level);
            let other = (own + ctx.rng().random_range(1..1u32 << b)) & ((1 << b) - 1);
            let shift = bits - (level + 1) * b;
            let prefix = if shift + b >= 64 { 0 } else { (me >> (shift + b)) << (shift + b) };
            let low = if shift == 0 { 0 } else { ctx.rng().random::<u64>() & ((1u64 << shift) - 1) };
            let key = (prefix | ((other as u64) << shift) | low) & self.mask;
            self.start_lookup(ctx, v, key, Purpose::Repair(level as u8), Op::Route);
        }
        self.touched[v.index()] = 0;
    }

    /// `v` joins through `contact`, its first bucket entry, by a lookup of its
    /// own identifier; with none (no other node is up) it is the network.
    fn join(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId, contact: Option<NodeId>) {
        self.ready[v.index()] = contact.is_none();
        if let Some(b) = contact {
            self.seen(v, b);
            let key = self.id[v.index()];
            self.start_lookup(ctx, v, key, Purpose::Join, Op::Route);
        }
    }

    /// The figures of its query lookups.
    pub fn stats(&self) -> &LookupStats {
        &self.stats
    }
}

impl Protocol for Kademlia {
    type Msg = Msg;
    type Timer = Timer;
    const CANCELS_TIMERS: bool = true;

    fn start(&mut self, ctx: &mut Ctx<'_, Self>) {
        (self.id, self.ring) = dht::draw_ids(ctx.rng(), self.id.len(), self.mask);
        // A network that has been running: each bucket holds up to k nodes up
        // drawn at random from those that belong in it.
        let up: Vec<(u64, NodeId)> = self.ring.iter().copied().filter(|&(_, v)| ctx.is_up(v)).collect();
        let (k, b, bits) = (self.k(), self.params.b, self.params.bits);
        for &(me, v) in &up {
            let mut table = Vec::new();
            for level in 0..self.levels() {
                let shift = bits - (level + 1) * b;
                // Nodes sharing the first `level` symbols: a contiguous run.
                let keep = shift + b;
                let prefix = if keep >= 64 { 0 } else { me >> keep };
                let same = |id: u64| if keep >= 64 { 0 } else { id >> keep };
                let lo = up.partition_point(|&(id, _)| same(id) < prefix);
                let hi = up.partition_point(|&(id, _)| same(id) <= prefix);
                if hi - lo <= 1 {
                    break;
                }
                let own = self.symbol(me, level);
                for d in 0..1u32 << b {
                    if d == own {
                        continue;
                    }
                    let sym = |id: u64| ((id >> shift) & ((1u64 << b) - 1)) as u32;
                    let s = lo + up[lo..hi].partition_point(|&(id, _)| sym(id) < d);
                    let e = lo + up[lo..hi].partition_point(|&(id, _)| sym(id) <= d);
                    let mut chosen: Vec<u32> = if e - s <= k {
                        (s..e).map(|i| up[i].1.0).collect()
                    } else {
                        let mut picks = Vec::with_capacity(k);
                        while picks.len() < k {
                            let i = ctx.rng().random_range(s..e);
                            if !picks.contains(&(i as u32)) {
                                picks.push(i as u32);
                            }
                        }
                        picks.into_iter().map(|i| up[i as usize].1.0).collect()
                    };
                    // In the bucket order `span` reads: by (level, symbol).
                    chosen.sort_unstable();
                    table.extend(chosen);
                }
            }
            self.table[v.index()] = table;
            self.ready[v.index()] = true;
            if self.params.maintenance {
                let phase = SimTime(ctx.rng().random_range(1..=self.params.refresh.0));
                ctx.set_timer(v, phase, Timer::Refresh);
            }
        }
        if self.stores_items() {
            self.preload(ctx, &up);
        }
    }

    fn query(&mut self, ctx: &mut Ctx<'_, Self>, q: QueryId, origin: NodeId, want: ResourceType) {
        let (key, op) = self.params.work().draw(ctx.rng(), &self.stores, want, self.mask);
        if ctx.issued(q) >= ctx.warmup() {
            self.stats.issue(op);
        }
        if !self.ready[origin.index()] {
            // A node still joining has no route: its lookup fails.
            return;
        }
        self.start_lookup(ctx, origin, key, Purpose::Query(q), op);
    }

    fn message(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, from: NodeId, msg: Msg) {
        // Every message files its sender (a reply only if it is one awaited).
        let awaited = match msg {
            Msg::Nodes { call, .. } | Msg::Delivered { call, .. } | Msg::Pong { call } => ctx.cancel_timer(call),
            _ => true,
        };
        if !awaited {
            return;
        }
        self.hear(ctx, at, from);
        match msg {
            Msg::FindNode { call, lid, key, q } => {
                let nodes = self.closest_known(at, key, self.k(), from);
                ctx.send(at, from, Msg::Nodes { call, lid, q, nodes });
                if self.stores_items() && key == self.id[from.index()] {
                    // A node looking itself up is joining: it gets the items
                    // it is closer to than this node (paper, section 2.5).
                    let (near, mine) = (self.id[from.index()], self.id[at.index()]);
                    let items = self.stores.select(at, |k| k ^ near < k ^ mine);
                    if !items.is_empty() {
                        ctx.send(at, from, Msg::Store { items });
                    }
                }
            }
            Msg::Nodes { call, lid, nodes, .. } => {
                let l = self.lookups.get_mut(lid);
                let Some(i) = l.list.iter().position(|e| e.state == State::Waiting(call)) else { return };
                l.list[i].state = State::Answered;
                let depth = l.list[i].depth + 1;
                self.learn(lid, depth, nodes);
                self.advance(ctx, lid);
            }
            Msg::Deliver { call, lid, key, q, op } => {
                let got = self.receive(ctx, at, key, op, from);
                ctx.send(at, from, Msg::Delivered { call, lid, q, got });
            }
            Msg::Delivered { lid, got, .. } => {
                let at = self.lookups.get(lid).delivering.map(|(i, _)| i);
                self.delivered(ctx, lid, at, got);
            }
            Msg::Store { items } => self.stores.add(at, &items),
            Msg::Ping { call } => ctx.send(at, from, Msg::Pong { call }),
            Msg::Pong { .. } => {}
        }
    }

    fn timer(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, timer: Timer) {
        match timer {
            Timer::Refresh => {
                if self.ready[at.index()] && !self.leaving[at.index()] {
                    self.refresh(ctx, at);
                }
                ctx.set_timer(at, self.params.refresh, Timer::Refresh);
            }
            Timer::Join => {
                if !self.ready[at.index()] {
                    let contact = ctx.contact(at);
                    self.join(ctx, at, contact);
                }
            }
            Timer::Republish => {
                if self.ready[at.index()] && !self.leaving[at.index()] {
                    self.republish(ctx, at);
                }
                ctx.set_timer(at, self.params.republish, Timer::Republish);
            }
            Timer::Timeout { target, call } => {
                self.evict(at, target);
                if let Call::Lookup(lid) = call {
                    let l = self.lookups.get_mut(lid);
                    l.timeouts += 1;
                    match l.delivering {
                        Some((i, _)) => {
                            l.list[i].state = State::Failed;
                            self.deliver(ctx, lid, i + 1);
                        }
                        None => {
                            if let Some(e) = l.list.iter_mut().find(|e| e.node == target) {
                                e.state = State::Failed;
                            }
                            self.advance(ctx, lid);
                        }
                    }
                }
            }
        }
    }

    fn joined(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, bootstrap: Option<NodeId>) {
        // A rejoining node remembers nothing.
        self.drop_lookups(ctx, at);
        self.leaving[at.index()] = false;
        self.table[at.index()].clear();
        self.cache[at.index()].clear();
        self.touched[at.index()] = 0;
        self.stores.clear(at);
        self.join(ctx, at, bootstrap);
        if self.params.maintenance {
            let phase = SimTime(ctx.rng().random_range(1..=self.params.refresh.0));
            ctx.set_timer(at, phase, Timer::Refresh);
            self.schedule_republish(ctx, at);
        }
    }

    fn leaving(&mut self, _: &mut Ctx<'_, Self>, at: NodeId) {
        self.leaving[at.index()] = true;
    }

    fn crashed(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId) {
        self.drop_lookups(ctx, at);
        self.ready[at.index()] = false;
        self.stores.clear(at);
    }

    fn changed(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId) {
        if self.ready[v.index()] {
            self.publish(ctx, v);
        }
    }

    fn state_bytes(&self) -> usize {
        let lists: usize = self.table.iter().chain(&self.cache).map(|t| t.capacity() * 4 + 24).sum();
        self.id.capacity() * 8
            + self.ring.capacity() * 16
            + self.touched.capacity() * 8
            + lists
            + self.lookups.bytes()
            + self.stores.bytes()
    }

    fn extra_metrics(&self, _: &Recorder, out: &mut Vec<Metric>) {
        self.stats.metrics(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamics::{Action, Choose, Dynamics, Fault, Victims};
    use crate::engine::{Rate, RunOutput, SimConfig, Simulation};
    use crate::validate::{Within, world};
    use crate::workload::{Workload, WorkloadSpec};
    use crate::world::TopologySpec;

    /// A Kademlia run on `n` nodes with `rate` lookups per second for `secs`,
    /// measured after `warmup`, under `dynamics`.
    fn run(n: u32, params: &Params, secs: u64, rate: f64, dynamics: Dynamics, seed: u64) -> (RunOutput, Kademlia) {
        let w = world(&TopologySpec::Ring {}, n, 10, 1, 1, seed);
        let mut config = SimConfig::new(seed, SimTime::from_secs(secs));
        config.warmup = SimTime::from_secs(secs / 5);
        config.timeout = SimTime::from_secs(30);
        config.dynamics = dynamics;
        let spec = WorkloadSpec { rate: Rate(rate), ..Default::default() };
        let workload = Workload::new(&spec, n as usize, 1, config.duration, seed);
        Simulation::new(&w, params.build(&w), workload, &config).run_both()
    }

    /// The `r` nodes of `up` closest to `key` by XOR, closest first.
    fn closest_of(k: &Kademlia, key: u64, r: usize, up: impl Fn(NodeId) -> bool) -> Vec<NodeId> {
        let mut near: Vec<(u64, NodeId)> =
            k.ring.iter().filter(|&&(_, v)| up(v)).map(|&(id, v)| (id ^ key, v)).collect();
        near.sort_unstable();
        near.into_iter().take(r).map(|(_, v)| v).collect()
    }

    #[test]
    fn keys_stored_at_their_closest_nodes_survive_crashes_by_republishing_and_joiners_get_theirs() {
        // 200 nodes, 2,000 keys in place at the start; node 17 is down until
        // 50 s; every fifth node crashes at 100 s; gets from 200 s on.
        let joiner = NodeId(17);
        let crash = Fault {
            at: SimTime::from_secs(100),
            action: Action::Crash {
                victims: Victims::Fraction { fraction: 0.2, choose: Choose::Random },
                recover: None,
            },
        };
        let storing = |replicas: u32| Params {
            storage: true,
            stored_keys: 2_000,
            put_share: 0.0,
            replicas,
            republish: SimTime::from_secs(60),
            ..Params::default()
        };
        let dynamics = || Dynamics {
            faults: vec![crash.clone()],
            ..dht::trace(vec![(SimTime::from_secs(50), joiner, true)], vec![joiner])
        };
        let (_, before) = run(200, &storing(4), 40, 0.0, dynamics(), 5);
        for &key in &before.stores.keys {
            for v in closest_of(&before, key, 4, |v| v != joiner) {
                assert!(before.stores.has(v, key), "key {key:x} missing at {v:?}");
            }
        }
        let (_, joined) = run(200, &storing(1), 80, 0.0, dynamics(), 5);
        let theirs: Vec<u64> =
            joined.stores.keys.iter().copied().filter(|&k| closest_of(&joined, k, 1, |_| true) == [joiner]).collect();
        assert!(!theirs.is_empty());
        for &key in &theirs {
            assert!(joined.stores.has(joiner, key), "the joiner lacks key {key:x}");
        }
        // Republishing every 60 s restores the copies the crash took: every
        // key left anywhere is back at each of its four closest nodes up.
        let (_, after) = run(200, &storing(4), 300, 0.0, dynamics(), 5);
        let up = |v: NodeId| after.ready[v.index()];
        let left: Vec<u64> =
            after.stores.keys.iter().copied().filter(|&k| (0..200).any(|v| after.stores.has(NodeId(v), k))).collect();
        assert!(left.len() > 1_990);
        for &key in &left {
            for v in closest_of(&after, key, 4, up) {
                assert!(after.stores.has(v, key), "key {key:x} not republished at {v:?}");
            }
        }
        let gets = |replicas| {
            let (out, _) = run(200, &storing(replicas), 300, 10.0, dynamics(), 5);
            let late = out.recorder.queries.iter().filter(|q| q.issued >= SimTime::from_secs(200));
            let (n, ok) = late.fold((0, 0), |(n, ok), q| (n + 1, ok + q.succeeded() as u32));
            ok as f64 / n as f64
        };
        let (four, one) = (gets(4), gets(1));
        assert_eq!(four, 1.0, "four copies");
        assert!((0.7..0.9).contains(&one), "one copy: {one} of the gets found their key");
    }

    #[test]
    fn each_query_learns_every_live_holder_of_its_type_from_the_index_joiners_included() {
        let params = Params { resources: true, ..Params::default() };
        dht::an_index_names_every_live_holder(|w| params.build(w));
    }

    #[test]
    fn each_factor_of_2_to_the_b_nodes_adds_one_minus_2_to_the_minus_b_hops() {
        for b in [1, 2] {
            let Within { got, want, tolerance } = crate::validate::kademlia_path_growth(b, 64, &[7, 8]);
            assert!((got - want).abs() < 2.0 * tolerance, "b = {b}: {got:.3} hops more against {want:.3}");
        }
    }

    #[test]
    fn a_static_network_finds_every_key_s_owner_in_fewer_hops_with_bigger_buckets() {
        let (out, one) = run(
            2000,
            &Params { k: 1, alpha: 1, maintenance: false, ..Params::default() },
            100,
            20.0,
            Dynamics::default(),
            3,
        );
        assert_eq!(out.metric("success_rate"), Some(1.0));
        let (out, eight) = run(2000, &Params::default(), 100, 20.0, Dynamics::default(), 3);
        assert_eq!(out.metric("success_rate"), Some(1.0));
        assert_eq!(eight.stats().timeouts_per_lookup(), Some(0.0));
        let (one, eight) = (one.stats().mean_hops().unwrap_or(0.0), eight.stats().mean_hops().unwrap_or(9.0));
        assert!(eight < one - 1.0, "k = 1: {one:.3} hops, k = 8: {eight:.3}");
    }

    #[test]
    fn a_full_bucket_keeps_its_old_nodes_and_caches_the_new_one() {
        let w = world(&TopologySpec::Ring {}, 64, 10, 1, 1, 1);
        let mut kad = Params { k: 2, replacement: 2, bits: 8, ..Params::default() }.build(&w);
        for (v, id) in kad.id.iter_mut().enumerate() {
            *id = v as u64 * 4;
        }
        // Node 0 (id 0): ids 128 and up share no bit with it, all in bucket (0, 1).
        let (me, a, b, c, d) = (NodeId(0), NodeId(32), NodeId(33), NodeId(40), NodeId(50));
        assert_eq!(kad.seen(me, a), None);
        assert_eq!(kad.seen(me, b), None);
        assert_eq!(kad.table[0], vec![32, 33]);
        // Seen again: to the tail.
        assert_eq!(kad.seen(me, a), None);
        assert_eq!(kad.table[0], vec![33, 32]);
        // Full: the newcomer waits in the cache, and the oldest is to be pinged.
        assert_eq!(kad.seen(me, c), Some(b));
        assert_eq!(kad.seen(me, d), Some(b));
        assert_eq!(kad.cache[0], vec![40, 50]);
        // The oldest does not answer: the newest cached node takes its place.
        kad.evict(me, b);
        assert_eq!(kad.table[0], vec![32, 50]);
        assert_eq!(kad.cache[0], vec![40]);
        // A node in another bucket has its own room.
        let near = NodeId(3);
        assert_eq!(kad.seen(me, near), None);
        assert_eq!(kad.table[0], vec![32, 50, 3]);
    }

    #[test]
    fn with_no_repair_lookups_survive_crashes_through_other_bucket_entries_with_more_timeouts() {
        let params = Params { maintenance: false, ..Params::default() };
        let mut last = -1.0;
        for p in [0.0, 0.2, 0.4] {
            let victims = Victims::Fraction { fraction: p, choose: Choose::Random };
            let faults = if p > 0.0 {
                vec![Fault { at: SimTime::from_secs(5), action: Action::Crash { victims, recover: None } }]
            } else {
                Vec::new()
            };
            let (out, kad) = run(1000, &params, 100, 10.0, Dynamics { faults, ..Dynamics::default() }, 11);
            let success = out.metric("success_rate").unwrap_or(0.0);
            assert!(success > 0.99, "p = {p}: {success}");
            let timeouts = kad.stats().timeouts_per_lookup().expect("lookups");
            assert!(timeouts > last, "p = {p}: {timeouts} timeouts per lookup, {last} at the fraction before");
            last = timeouts;
        }
    }

    #[test]
    fn under_continuous_churn_failed_lookups_rise_with_the_churn_rate() {
        let mut last = -1.0;
        for minutes in [60.0, 10.0, 2.0] {
            let (out, kad) = run(600, &Params::default(), 400, 20.0, dht::churn(minutes * 60.0), 4);
            let failed = 1.0 - out.metric("success_rate").expect("queries");
            assert!(failed >= last, "sessions of {minutes} min: {failed} failed, {last} at the slower churn");
            assert!(failed < 0.3, "sessions of {minutes} min: {failed} failed");
            assert!(kad.stats.lookups > 3_000, "{}", kad.stats.lookups);
            last = failed;
        }
        assert!(last > 0.0);
    }
}
