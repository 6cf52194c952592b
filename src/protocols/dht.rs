//! What the distributed hash tables (`chord`, `kademlia`) share: the figures of
//! a key-based routing test (OverSim's KBRTestApp) and their columns, the sizes
//! of the fields their datagrams carry, and their workloads beyond it: stored
//! keys put and got (OverSim's DHTTestApp), and resource registrations found by
//! type (a resource index), held as items per node.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::{ParamError, UDP_IP_BYTES};
use crate::base::SimTime;
use crate::base::rng::mix64;
use crate::engine::{Ctx, NodeId, Protocol, QueryId, ResourceType};
use crate::metrics::{Column, Metric};

/// The columns a DHT adds to runs.csv.
pub const COLUMNS: &[Column] = &[
    Column::new("dht_lookups", "lookups"),
    Column::new("dht_hops_mean", "lookup hops, mean"),
    Column::new("dht_timeouts_per_lookup", "timeouts per lookup"),
    Column::new("dht_wrong_owner_rate", "lookups ending at a wrong node"),
    Column::new("dht_maintenance_lookups", "maintenance and join lookups"),
    Column::new("dht_put_success", "puts stored at the key's owner"),
    Column::new("dht_get_success", "gets that found the key"),
];

/// Bytes of a node handle on the wire with 64-bit identifiers: identifier,
/// IPv4 address and port.
pub const HANDLE: u32 = 14;

/// Bytes of a call's header (type and nonce) in its UDP datagram.
pub const HEADER: u32 = UDP_IP_BYTES + 8;

/// Bytes of a key.
pub const KEY: u32 = 8;

/// Bytes of the test message a query's lookup delivers (OverSim's KBR test
/// message), and of a stored value.
pub const KBR_PAYLOAD: u32 = 100;

/// Bytes of a stored item on the wire: its key and value.
pub const ITEM: u32 = KEY + KBR_PAYLOAD;

/// Lookup figures over the queries issued after the warm-up.
#[derive(Default, Debug)]
pub struct LookupStats {
    /// Query lookups issued.
    pub lookups: u64,
    /// Query lookups that reached a node.
    pub completed: u64,
    /// Hops of the lookups that reached a node.
    pub hops: u64,
    /// Calls the query lookups waited on in vain.
    pub timeouts: u64,
    /// Lookups that reached a node other than the key's owner.
    pub wrong: u64,
    /// Lookups for maintenance and joins (all of the run).
    pub maintenance_lookups: u64,
    /// With storage: puts issued, and those stored at the key's owner.
    pub puts: (u64, u64),
    /// With storage: gets issued, and those that found the key.
    pub gets: (u64, u64),
    /// Whether queries put and get (the storage columns have values).
    pub storage: bool,
}

impl LookupStats {
    /// A query lookup of operation `op` is issued after the warm-up.
    pub fn issue(&mut self, op: Op) {
        self.lookups += 1;
        match op {
            Op::Route => {}
            Op::Put => self.puts.0 += 1,
            Op::Get | Op::Find(_) => self.gets.0 += 1,
            Op::Range { .. } => {}
        }
    }

    /// A query lookup ends, measured if `counted`: with `timeouts`, and, if it
    /// reached a node, its `hops` and whether that node owned the key.
    pub fn end(&mut self, counted: bool, timeouts: u32, reached: Option<(u32, bool)>) {
        if !counted {
            return;
        }
        self.timeouts += timeouts as u64;
        if let Some((hops, correct)) = reached {
            self.completed += 1;
            self.hops += hops as u64;
            self.wrong += !correct as u64;
        }
    }

    /// Mean hops of the query lookups that reached a node.
    pub fn mean_hops(&self) -> Option<f64> {
        (self.completed > 0).then(|| self.hops as f64 / self.completed as f64)
    }

    /// Mean timeouts per query lookup.
    pub fn timeouts_per_lookup(&self) -> Option<f64> {
        (self.lookups > 0).then(|| self.timeouts as f64 / self.lookups as f64)
    }

    /// The values of [`COLUMNS`].
    pub fn metrics(&self, out: &mut Vec<Metric>) {
        out.extend([
            Metric::new("dht_lookups", Some(self.lookups as f64)),
            Metric::new("dht_hops_mean", self.mean_hops()),
            Metric::new("dht_timeouts_per_lookup", self.timeouts_per_lookup()),
            Metric::new(
                "dht_wrong_owner_rate",
                (self.completed > 0).then(|| self.wrong as f64 / self.completed as f64),
            ),
            Metric::new("dht_maintenance_lookups", Some(self.maintenance_lookups as f64)),
            Metric::new("dht_put_success", self.share(self.puts)),
            Metric::new("dht_get_success", self.share(self.gets)),
        ]);
    }

    /// Of (issued, succeeded), the share that succeeded, with storage on.
    fn share(&self, (issued, ok): (u64, u64)) -> Option<f64> {
        (self.storage && issued > 0).then(|| ok as f64 / issued as f64)
    }
}

/// How long a node whose join found nobody waits before it tries again
/// (OverSim's joinDelay).
pub const JOIN_DELAY: SimTime = SimTime::from_secs(10);

/// The default of `rpc_timeout`: OverSim's 1.5 s.
pub fn default_rpc_timeout() -> SimTime {
    SimTime::from_millis(1500)
}

/// The default of `replicas`: OverSim's DHT keeps 4 copies of an item.
pub fn default_replicas() -> u32 {
    4
}

/// The default of `put_share`: half the queries put, half get.
pub fn default_put_share() -> f64 {
    0.5
}

/// The default of `maintenance`.
pub fn yes() -> bool {
    true
}

/// 2^bits − 1: the identifiers of a ring of `bits` bits.
pub fn mask(bits: u32) -> u64 {
    if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 }
}

/// Checks that identifiers of `bits` bits (8 to 64) suit `nodes` nodes.
pub fn check_bits(bits: u32, nodes: usize) -> Result<(), ParamError> {
    if !(8..=64).contains(&bits) {
        return Err(ParamError::new("bits", format!("{bits} is out of range; expected 8 ≤ bits ≤ 64")));
    }
    if (nodes as f64) > 2f64.powi(bits as i32) / 4.0 {
        return Err(ParamError::new("bits", format!("2^{bits} identifiers are too few for {nodes} nodes; raise bits")));
    }
    Ok(())
}

/// Checks that every period named is above zero.
pub fn check_periods(periods: &[(&str, SimTime)]) -> Result<(), ParamError> {
    match periods.iter().find(|(_, period)| *period == SimTime::ZERO) {
        Some((key, _)) => Err(ParamError::new(*key, "expected a duration above zero, such as \"20s\"")),
        None => Ok(()),
    }
}

/// Identifiers for `n` nodes, drawn uniformly below `mask` + 1 in node order,
/// and the nodes sorted by identifier (the oracle's view of the whole network).
pub fn draw_ids(rng: &mut ChaCha8Rng, n: usize, mask: u64) -> (Vec<u64>, Vec<(u64, NodeId)>) {
    let id: Vec<u64> = (0..n).map(|_| rng.random::<u64>() & mask).collect();
    let mut ring: Vec<(u64, NodeId)> = (0..n as u32).map(|v| (id[v as usize], NodeId(v))).collect();
    ring.sort_unstable();
    (id, ring)
}

/// Where each identifier would fall in a ring sorted by identifier, found
/// without a binary search of the whole ring: identifiers are uniform, so the
/// ring is cut into 2^k buckets of equal identifier span, about one node each,
/// and the bucket's first position is stored.
#[derive(Clone, Debug, Default)]
pub struct RingIndex {
    /// Identifier bits below the bucket number.
    shift: u32,
    /// Ring position of each bucket's first node, and the ring's length last.
    start: Vec<u32>,
}

impl RingIndex {
    /// The index of `ring` (sorted by identifier, each below 2^`bits`).
    pub fn new(ring: &[(u64, NodeId)], bits: u32) -> RingIndex {
        let k = (usize::BITS - ring.len().leading_zeros()).min(bits).min(24);
        let shift = bits - k;
        let mut start = Vec::with_capacity((1 << k) + 1);
        let mut at = 0;
        for b in 0..1u64 << k {
            while at < ring.len() && ring[at].0 >> shift < b {
                at += 1;
            }
            start.push(at as u32);
        }
        start.push(ring.len() as u32);
        RingIndex { shift, start }
    }

    /// The position of the first node of `ring` whose identifier is at least
    /// `key`: `ring.partition_point(|&(id, _)| id < key)`.
    #[inline]
    pub fn position(&self, ring: &[(u64, NodeId)], key: u64) -> usize {
        let b = (key.checked_shr(self.shift).unwrap_or(0) as usize).min(self.start.len() - 2);
        let (lo, hi) = (self.start[b] as usize, self.start[b + 1] as usize);
        lo + ring[lo..hi].partition_point(|&(id, _)| id < key)
    }

    /// Bytes the index occupies.
    pub fn bytes(&self) -> usize {
        self.start.capacity() * 4
    }
}

/// What a query does when the DHT stores data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    /// Route a test message to the key's owner (a KBR test).
    Route,
    /// Store a new key at its owner, which copies it to its replicas.
    Put,
    /// Fetch a stored key from its owner, or from the replicas after it.
    Get,
    /// Ask the owner of a resource type's key (or the replicas after it) for
    /// the nodes registered as holding the type.
    Find(ResourceType),
    /// Walk `sub` of a MAAN range query for type `t`: collect the matching
    /// registrations on the arc of its range, node after node.
    Range {
        /// The query's type.
        t: ResourceType,
        /// Which of its walks.
        sub: u8,
        /// The ranges its message carries, for the nodes on the walk to filter by.
        ranges: u8,
    },
}

/// A stored item: its key, and for a resource registration the node that
/// holds the resource (`NO_HOLDER` for a plain stored value).
pub type Item = (u64, u32);

/// The holder of a stored item that names none.
pub const NO_HOLDER: u32 = u32::MAX;

/// The items each node holds, sorted, and every key stored so far (the keys a
/// get may ask for), for a DHT that stores data (OverSim's DHT and DHTTestApp)
/// or indexes resources.
#[derive(Default)]
pub struct Stores {
    held: Vec<Vec<Item>>,
    /// Keys put (or stored at the start), in the order they were stored.
    pub keys: Vec<u64>,
}

impl Stores {
    /// Empty stores for `n` nodes.
    pub fn new(n: usize) -> Self {
        Stores { held: vec![Vec::new(); n], keys: Vec::new() }
    }

    /// The items `v` holds, ascending.
    pub fn held(&self, v: NodeId) -> &[Item] {
        &self.held[v.index()]
    }

    /// The items `v` holds under `key`.
    pub fn under(&self, v: NodeId, key: u64) -> &[Item] {
        let held = &self.held[v.index()];
        let from = held.partition_point(|&(k, _)| k < key);
        let to = from + held[from..].partition_point(|&(k, _)| k == key);
        &held[from..to]
    }

    /// Whether `v` holds an item under `key`.
    pub fn has(&self, v: NodeId, key: u64) -> bool {
        !self.under(v, key).is_empty()
    }

    /// `v` holds `items` (besides what it held).
    pub fn add(&mut self, v: NodeId, items: &[Item]) {
        let held = &mut self.held[v.index()];
        for &item in items {
            if let Err(i) = held.binary_search(&item) {
                held.insert(i, item);
            }
        }
    }

    /// The items `v` holds whose key satisfies `within`.
    pub fn select(&self, v: NodeId, within: impl Fn(u64) -> bool) -> Vec<Item> {
        self.held[v.index()].iter().copied().filter(|&(k, _)| within(k)).collect()
    }

    /// Places items at once, as the state of a DHT that has been running.
    pub fn place(&mut self, items: impl IntoIterator<Item = (NodeId, Item)>) {
        for (v, item) in items {
            self.held[v.index()].push(item);
        }
        for held in &mut self.held {
            held.sort_unstable();
            held.dedup();
        }
    }

    /// `v` drops the items for which `drop` holds.
    pub fn drop_where(&mut self, v: NodeId, drop: impl Fn(Item) -> bool) {
        self.held[v.index()].retain(|&item| !drop(item));
    }

    /// `v` forgets everything (nothing to do where nothing is stored).
    pub fn clear(&mut self, v: NodeId) {
        if let Some(held) = self.held.get_mut(v.index()) {
            *held = Vec::new();
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.held.capacity() * 24
            + self.held.iter().map(|h| h.capacity() * std::mem::size_of::<Item>()).sum::<usize>()
            + self.keys.capacity() * 8
    }
}

/// The key under which resources of type `t` are registered: a hash of the
/// type, below `mask` + 1.
pub fn resource_key(t: ResourceType, mask: u64) -> u64 {
    mix64(t.0 as u64) & mask
}

/// The registrations of `nodes`: each type a node holds, under its key.
pub fn registrations<P: Protocol>(ctx: &Ctx<'_, P>, nodes: impl IntoIterator<Item = NodeId>, mask: u64) -> Vec<Item> {
    nodes.into_iter().flat_map(|v| ctx.resources_of(v).iter().map(move |&t| (resource_key(t, mask), v.0))).collect()
}

/// What a lookup's message met at the node it was delivered to.
#[derive(Clone, Copy, Debug, Default)]
pub struct Found {
    /// Whether the node owns the key among the nodes up (the oracle's verdict).
    pub correct: bool,
    /// A put: always; a get: whether the node holds the key; a find: whether
    /// it names a holder.
    pub found: bool,
    /// A find: the holders registered with the node, the origin left out.
    pub named: u32,
    /// A find: those of them up and still holding the type.
    pub live: u32,
    /// Bytes the answer carries beyond the node's handle: a value found, or
    /// the holders named.
    pub reply: u32,
}

/// What a lookup's message met at the nodes it was delivered to.
#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    /// What it does there.
    pub op: Op,
    /// Whether the first node it was delivered to owned the key.
    pub first: Option<bool>,
    /// What it met at the last.
    pub got: Found,
    /// Nodes it was delivered to.
    pub tries: u32,
}

impl Outcome {
    /// Not delivered yet.
    pub fn new(op: Op) -> Self {
        Outcome { op, first: None, got: Found::default(), tries: 0 }
    }

    /// It met `got` at one more node. Returns whether it goes on to the next
    /// of the key's `replicas` nodes: a get or a find that found nothing.
    pub fn meet(&mut self, got: Found, replicas: u32) -> bool {
        self.first.get_or_insert(got.correct);
        self.tries += 1;
        self.got = got;
        matches!(self.op, Op::Get | Op::Find(_)) && !got.found && self.tries < replicas
    }

    /// Whether it succeeded: a test message or a put if the first node it
    /// reached owned the key, a get if it found the key, a find if it named a
    /// live holder.
    pub fn ok(&self) -> bool {
        match self.op {
            Op::Route | Op::Put => self.first == Some(true),
            Op::Get => self.got.found,
            Op::Find(_) => self.got.live > 0,
            Op::Range { .. } => self.got.found,
        }
    }
}

impl Found {
    /// A get or a find of `key` from `origin` at node `at`, holding `stores`:
    /// for a get whether `at` holds the key, for a find the holders it names
    /// (the origin left out) and which of them are up and hold the type.
    pub fn read<P: Protocol>(
        &mut self,
        stores: &Stores,
        ctx: &Ctx<'_, P>,
        at: NodeId,
        key: u64,
        op: Op,
        origin: NodeId,
    ) {
        match op {
            Op::Get => {
                self.found = stores.has(at, key);
                self.reply = if self.found { ITEM } else { 0 };
            }
            Op::Find(t) => {
                for &(_, h) in stores.under(at, key) {
                    if h != origin.0 && h != NO_HOLDER {
                        let h = NodeId(h);
                        self.named += 1;
                        self.live += (ctx.is_up(h) && ctx.holds(h, t)) as u32;
                    }
                }
                self.found = self.named > 0;
                self.reply = self.named * HANDLE;
            }
            Op::Route | Op::Put | Op::Range { .. } => {}
        }
    }
}

/// What a lookup is for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Purpose {
    /// A query of the workload: a key drawn at random.
    Query(QueryId),
    /// Entry `i` of the origin's routing state: `chord`'s finger i, `kademlia`'s
    /// bucket level i.
    Repair(u8),
    /// The origin's own identifier, as it joins.
    Join,
    /// A registration of one of the origin's resources.
    Publish,
    /// The origin's copies of the items under the key, to the nodes now
    /// closest to it (`kademlia`'s republishing).
    Republish,
    /// A walk of MAAN range query `q`, collected under number `rid`.
    Range(QueryId, u32),
}

impl Purpose {
    /// The query it serves, if any.
    pub fn query(self) -> Option<QueryId> {
        match self {
            Purpose::Query(q) | Purpose::Range(q, _) => Some(q),
            _ => None,
        }
    }
}

/// The lookups in progress, each under a number it keeps until it ends (the
/// number its messages carry); numbers of ended lookups are used again.
pub struct Lookups<T> {
    slots: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for Lookups<T> {
    fn default() -> Self {
        Lookups { slots: Vec::new(), free: Vec::new() }
    }
}

impl<T> Lookups<T> {
    /// Starts `lookup`: its number.
    pub fn insert(&mut self, lookup: T) -> u32 {
        match self.free.pop() {
            Some(l) => {
                self.slots[l as usize] = Some(lookup);
                l
            }
            None => {
                self.slots.push(Some(lookup));
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Hints that lookup `lid` will be read soon (all of its record).
    #[inline(always)]
    pub fn prefetch(&self, lid: u32) {
        crate::base::prefetch_whole(&self.slots, lid as usize);
    }

    /// Lookup `lid`, in progress.
    pub fn get(&self, lid: u32) -> &T {
        self.slots[lid as usize].as_ref().expect("a live lookup")
    }

    /// Lookup `lid`, if it is in progress.
    pub fn try_get(&self, lid: u32) -> Option<&T> {
        self.slots.get(lid as usize).and_then(Option::as_ref)
    }

    /// Lookup `lid`, in progress.
    pub fn get_mut(&mut self, lid: u32) -> &mut T {
        self.slots[lid as usize].as_mut().expect("a live lookup")
    }

    /// Ends lookup `lid`.
    pub fn remove(&mut self, lid: u32) -> T {
        self.free.push(lid);
        self.slots[lid as usize].take().expect("a live lookup")
    }

    /// Ends every lookup for which `doomed` holds, and returns them.
    pub fn remove_where(&mut self, doomed: impl Fn(&T) -> bool) -> Vec<T> {
        let mut gone = Vec::new();
        for (lid, slot) in self.slots.iter_mut().enumerate() {
            if slot.as_ref().is_some_and(&doomed) {
                gone.extend(slot.take());
                self.free.push(lid as u32);
            }
        }
        gone
    }

    /// Bytes of the slots.
    pub fn bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Option<T>>() + self.free.capacity() * 4
    }
}

/// Churn for tests: sessions and downtimes exponential with mean `mean_s`
/// seconds, half the nodes up from the start, half the leaves graceful with
/// OverSim's 15 s to go.
#[cfg(test)]
pub fn churn(mean_s: f64) -> crate::dynamics::Dynamics {
    use crate::dynamics::{Churn, Dynamics, Lifetime, Source, Start};
    let life = Lifetime::Exponential { mean: mean_s };
    let source =
        Source::Distributions { session: life, downtime: life, heterogeneous: false, start: Start::Equilibrium };
    let churn = Churn { source, graceful: 0.5, leave_time: SimTime::from_secs(15) };
    Dynamics { churn: Some(churn), ..Dynamics::default() }
}

/// Churn for tests from a trace: `rows` of (time, node, up), the nodes
/// `starts_down` down at the start, every leave a crash.
#[cfg(test)]
pub fn trace(rows: Vec<(SimTime, NodeId, bool)>, starts_down: Vec<NodeId>) -> crate::dynamics::Dynamics {
    use crate::dynamics::{Churn, Dynamics, Source, Trace};
    let source = Source::Trace(std::sync::Arc::new(Trace { rows, starts_down }));
    let churn = Churn { source, graceful: 0.0, leave_time: SimTime::ZERO };
    Dynamics { churn: Some(churn), ..Dynamics::default() }
}

/// What a DHT's queries do: route test messages (a KBR test), put and get
/// stored keys, or find resources registered in the DHT.
#[derive(Clone, Copy, Debug)]
pub struct Work {
    /// Queries put and get stored keys.
    pub storage: bool,
    /// Queries find the holders of their resource type.
    pub resources: bool,
    /// With storage, the share of queries that put.
    pub put_share: f64,
}

impl Work {
    /// Whether nodes hold items (stored keys or registrations).
    pub fn stores_items(self) -> bool {
        self.storage || self.resources
    }

    /// The item a put of `key` from `origin` stores: a registration naming
    /// the origin, or a plain value.
    pub fn item(self, key: u64, origin: NodeId) -> Item {
        (key, if self.resources { origin.0 } else { NO_HOLDER })
    }

    /// The items a DHT that has been running holds at the start: the
    /// registrations of the nodes `up`, or `stored_keys` keys drawn uniformly
    /// (which become the keys a get may ask for).
    pub fn preloaded<P: Protocol>(
        self,
        ctx: &mut Ctx<'_, P>,
        stores: &mut Stores,
        stored_keys: u64,
        up: &[(u64, NodeId)],
        mask: u64,
    ) -> Vec<Item> {
        if self.resources {
            return registrations(ctx, up.iter().map(|&(_, v)| v), mask);
        }
        stores.keys = (0..stored_keys).map(|_| ctx.rng().random::<u64>() & mask).collect();
        stores.keys.iter().map(|&k| (k, NO_HOLDER)).collect()
    }

    /// Checks the workload's parameters, with `stored_keys` keys in place at the start.
    pub fn check(self, stored_keys: u64) -> Result<(), ParamError> {
        if self.storage && self.resources {
            return Err(ParamError::new(
                "resources",
                "storage and resources are two workloads; expected at most one of them to be true",
            ));
        }
        if !(0.0..=1.0).contains(&self.put_share) {
            return Err(ParamError::new(
                "put_share",
                format!("{} is out of range; expected a share from 0 to 1", self.put_share),
            ));
        }
        if stored_keys > 100_000_000 {
            return Err(ParamError::new(
                "stored_keys",
                format!("{stored_keys} is too many; expected at most 100000000"),
            ));
        }
        Ok(())
    }

    /// The key and operation of a query for resource type `want`: the type's
    /// key to find its holders; with storage a put of a fresh key or a get of
    /// a key stored before, drawn uniformly; else a random key to route to.
    pub fn draw(self, rng: &mut ChaCha8Rng, stores: &Stores, want: ResourceType, mask: u64) -> (u64, Op) {
        if self.resources {
            return (resource_key(want, mask), Op::Find(want));
        }
        let fresh = rng.random::<u64>() & mask;
        if !self.storage {
            return (fresh, Op::Route);
        }
        let n = stores.keys.len();
        if n == 0 || rng.random::<f64>() < self.put_share {
            (fresh, Op::Put)
        } else {
            (stores.keys[rng.random_range(0..n)], Op::Get)
        }
    }
}

/// How a query's lookup ended, for its figures.
#[derive(Clone, Copy, Debug)]
pub struct QueryEnd {
    /// The query.
    pub q: QueryId,
    /// Its key.
    pub key: u64,
    /// Whether it was delivered anywhere.
    pub reached: bool,
    /// Its hops.
    pub hops: u32,
    /// What it met.
    pub outcome: Outcome,
}

impl QueryEnd {
    /// Counts it (if issued after the warm-up) and reports its hits: a put
    /// delivered adds its key to those a get may ask for; a find reports its
    /// answer, stale if it names holders gone, and its live holders as hits.
    pub fn report<P: Protocol>(self, ctx: &mut Ctx<'_, P>, stats: &mut LookupStats, stores: &mut Stores) {
        let ok = self.reached && self.outcome.ok();
        let got = self.outcome.got;
        let counted = (ctx.issued(self.q) >= ctx.warmup() && ok) as u64;
        match self.outcome.op {
            Op::Route | Op::Range { .. } => {}
            Op::Put => {
                if self.reached {
                    stores.keys.push(self.key);
                }
                stats.puts.1 += counted;
            }
            Op::Get => stats.gets.1 += counted,
            Op::Find(_) => {
                stats.gets.1 += counted;
                if got.named > 0 {
                    ctx.report_answer(self.q, got.live < got.named);
                }
            }
        }
        if ok {
            let count = if let Op::Find(_) = self.outcome.op { got.live } else { 1 };
            ctx.report_hit(self.q, self.hops, count);
        }
    }
}

/// A test both DHTs run.
#[cfg(test)]
pub(crate) use tests::{an_index_names_every_live_holder, an_index_names_every_live_holder_in};

#[cfg(test)]
mod tests {
    //! What the DHTs' tests share.

    use crate::engine::{NodeId, Protocol, Rate, ResourceType, SimConfig, SimTime, Simulation};
    use crate::validate::world;
    use crate::workload::{Workload, WorkloadSpec};
    use crate::world::{TopologySpec, World};

    /// A DHT resource index built by `make`, on 100 nodes with 10 types of 5
    /// holders each: node 17 is down until 50 s and registers its resources
    /// when it joins; a holder of type 0 crashes at 60 s and its
    /// registrations stay, naming a holder gone. Every query from 100 s on
    /// must learn exactly the holders up other than its origin, and the
    /// answers naming the crashed holder are stale.
    pub fn an_index_names_every_live_holder<P: Protocol>(make: impl Fn(&World) -> P) {
        an_index_names_every_live_holder_in(&world(&TopologySpec::Ring {}, 100, 10, 10, 5, 3), make);
    }

    /// The same on world `w`, of 100 nodes and 10 types (or range queries).
    pub fn an_index_names_every_live_holder_in<P: Protocol>(w: &World, make: impl Fn(&World) -> P) {
        let joiner = NodeId(17);
        let crasher = *w.resources.holders(ResourceType(0)).iter().find(|&&h| h != joiner).expect("holders");
        let rows = vec![(SimTime::from_secs(50), joiner, true), (SimTime::from_secs(60), crasher, false)];
        let mut config = SimConfig::new(3, SimTime::from_secs(200));
        config.timeout = SimTime::from_secs(30);
        config.dynamics = super::trace(rows, vec![joiner]);
        let spec = WorkloadSpec { rate: Rate(5.0), ..Default::default() };
        let workload = Workload::new(&spec, 100, 10, config.duration, 3);
        let out = Simulation::new(w, make(w), workload, &config).run();
        let late: Vec<_> = out
            .recorder
            .queries
            .iter()
            .filter(|q| q.issued >= SimTime::from_secs(100) && q.origin != crasher)
            .collect();
        assert!(late.len() > 400);
        for q in &late {
            let live = w.resources.holders(q.want).iter().filter(|&&h| h != q.origin && h != crasher).count();
            assert_eq!(q.hits as usize, live, "query for {:?} from {:?}", q.want, q.origin);
        }
        assert!(late.iter().any(|q| w.resources.holders(q.want).contains(&joiner) && q.origin != joiner));
        assert!(out.metric("stale_answer_rate").is_some_and(|r| r > 0.0));
    }

    #[test]
    fn the_ring_index_finds_what_a_binary_search_of_the_ring_finds() {
        use super::{RingIndex, draw_ids};
        use crate::base::rng::{Stream, stream};
        use rand::RngExt;
        let mut rng = stream(9, Stream::Topology);
        for (n, bits) in [(0, 64), (1, 64), (2, 3), (7, 3), (100, 8), (1000, 64), (5000, 20), (300, 1)] {
            let mask = if bits == 64 { u64::MAX } else { (1 << bits) - 1 };
            let (_, ring) = draw_ids(&mut rng, n, mask);
            let index = RingIndex::new(&ring, bits);
            let mut keys: Vec<u64> = (0..2000).map(|_| rng.random::<u64>() & mask).collect();
            keys.extend(ring.iter().flat_map(|&(id, _)| [id, id.wrapping_sub(1) & mask, id.wrapping_add(1) & mask]));
            keys.extend([0, mask]);
            for key in keys {
                let truth = ring.partition_point(|&(id, _)| id < key);
                assert_eq!(index.position(&ring, key), truth, "n {n}, bits {bits}, key {key}");
            }
        }
    }
}
