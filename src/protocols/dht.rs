//! What the distributed hash tables (`chord`, `kademlia`) share: the figures of
//! a key-based routing test (OverSim's KBRTestApp) and their columns, and the
//! sizes of the fields their datagrams carry.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::{ParamError, UDP_IP_BYTES};
use crate::base::SimTime;
use crate::engine::{NodeId, QueryId, ResourceType};
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
/// type, below `mask` + 1 (SplitMix64's finaliser).
pub fn resource_key(t: ResourceType, mask: u64) -> u64 {
    let mut z = (t.0 as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) & mask
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
}

impl Purpose {
    /// The query it serves, if any.
    pub fn query(self) -> Option<QueryId> {
        match self {
            Purpose::Query(q) => Some(q),
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

    /// Lookup `lid`, in progress.
    pub fn get(&self, lid: u32) -> &T {
        self.slots[lid as usize].as_ref().expect("a live lookup")
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
