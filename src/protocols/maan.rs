//! MAAN, the Multi-Attribute Addressable Network (Cai, Frank, Chen, Szekely,
//! GRID 2003; Journal of Grid Computing 2(1), 2004), as `chord` runs it with
//! `attributes`: what the ring needs to know of the grid's attributes, the
//! plan of each range query, the answers its walks collect, and its figures.
//!
//! **Registration.** A numeric value v of an attribute with values in [min,
//! max] goes to the key H(v) = (v − min)·(2^m − 1)/(max − min), the paper's
//! locality-preserving hash: v < w gives H(v) ≤ H(w), and a range of values is
//! an arc of the ring. Every node registers each of its attribute values under
//! its key, with its whole description (a registration names the node, whose
//! values the index reads), at the key's owner and its replicas.
//!
//! **Range queries.** A sub-query for values of attribute a in [l, u] goes by
//! a Chord lookup to the owner of H(l), which collects the registrations of a
//! it holds with keys from H(l) up to its own identifier and sends the query on
//! to its successor, which does the same from where the last node stopped,
//! until the node whose range holds H(u) sends the origin what was collected:
//! O(log N) hops to reach the arc, and one per node on it, about N·s for a
//! range covering a share s of the ring. A query over several attributes is
//! resolved by either of the paper's algorithms:
//! - **single-attribute dominated** (`"single-attribute"`): only the
//!   sub-query of the smallest share of the ring (the first of those equal)
//!   is walked, and each node on the walk keeps the registrations whose
//!   description satisfies every sub-query: O(log N + N·s_min) hops;
//! - **iterative** (`"iterative"`): every sub-query is walked, each keeping
//!   the registrations in its own range, and the origin intersects their
//!   answers: Σ_i O(log N + N·s_i) hops.
//!
//! A query's answer names the matching nodes but its origin; those up are its
//! hits. Its hops are those of each route to the arc's first node, with that
//! delivery, and of each step of the walks, summed over its sub-queries.

use serde::Deserialize;

use crate::engine::{NodeId, QueryId, ResourceType};
use crate::metrics::{Column, Metric};
use crate::world::{Attributes, Range};

/// The columns MAAN adds to chord's.
pub const COLUMNS: &[Column] = &[
    Column::new("range_queries", "range queries"),
    Column::new("range_hops_mean", "hops per range query, mean"),
    Column::new("range_walk_mean", "nodes walked per range query, mean"),
    Column::new("range_success", "range queries answered in full"),
];

/// Bytes of a range in a walk's message: its attribute and its bounds.
pub const RANGE_BYTES: u32 = 4 + 8 + 8;

/// `protocol.attributes`: how a query over several attributes is resolved.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Resolution {
    /// No range queries: the ring is not MAAN.
    #[default]
    Off,
    /// Walk the sub-query of the smallest selectivity, filtering by the others.
    SingleAttribute,
    /// Walk every sub-query and intersect the answers at the origin.
    Iterative,
}

impl Resolution {
    /// Whether the ring resolves range queries.
    pub fn walks(self) -> bool {
        self != Resolution::Off
    }
}

/// A sub-query as the ring sees it: attribute `attr`'s registrations with
/// keys in [lo, hi].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Span {
    /// The attribute.
    pub attr: u32,
    /// H(l).
    pub lo: u64,
    /// H(u).
    pub hi: u64,
}

/// A range query in progress at its origin: its sub-queries' answers so far.
struct Collect {
    q: QueryId,
    origin: NodeId,
    t: ResourceType,
    /// Sub-queries whose walk has not ended.
    pending: u32,
    /// Whether every walk that ended reached the end of its arc.
    complete: bool,
    /// The nodes each sub-query's walk found matching, in the order found.
    found: Vec<Vec<u32>>,
    /// Hops of the routes and walks.
    hops: u32,
    /// Nodes the walks visited.
    walked: u32,
}

/// Range-query figures over the queries issued after the warm-up.
#[derive(Default, Debug)]
struct Stats {
    issued: u64,
    answered: u64,
    hops: u64,
    walked: u64,
}

/// The attributes as the ring sees them, and the range queries in progress.
pub struct Maan {
    resolution: Resolution,
    attributes: Attributes,
    /// Node-major: node v's key for attribute a at v·A + a.
    keys: Vec<u64>,
    /// Each query's walks: one, or one per sub-query.
    plans: Vec<Vec<Span>>,
    collects: Vec<Option<Collect>>,
    free: Vec<u32>,
    stats: Stats,
}

/// The locality-preserving hash of `x` in [min, max] onto [0, mask].
pub fn hash(x: f64, (min, max): (f64, f64), mask: u64) -> u64 {
    if max <= min {
        return 0;
    }
    let share = ((x - min) / (max - min)).clamp(0.0, 1.0);
    // An f64 holds 53 bits: the product rounds, monotonically, and the
    // saturating cast keeps it below 2^64.
    ((share * mask as f64) as u64).min(mask)
}

impl Maan {
    /// The ring's view of `attributes` on a ring of `mask` + 1 identifiers.
    pub fn new(resolution: Resolution, attributes: &Attributes, nodes: usize, mask: u64) -> Maan {
        let a = attributes.count();
        let keys = (0..nodes)
            .flat_map(|v| (0..a).map(move |i| hash(attributes.value(v, i), attributes.bounds[i], mask)))
            .collect();
        let span = |r: &Range| {
            let b = attributes.bounds[r.attr as usize];
            Span { attr: r.attr, lo: hash(r.lo, b, mask), hi: hash(r.hi, b, mask) }
        };
        let plans = attributes
            .queries
            .iter()
            .map(|q| {
                let spans: Vec<Span> = q.iter().map(span).collect();
                if resolution == Resolution::Iterative {
                    return spans;
                }
                // The smallest share of the ring, the first of those equal.
                spans.iter().copied().min_by_key(|s| s.hi - s.lo).into_iter().collect()
            })
            .collect();
        Maan {
            resolution,
            attributes: attributes.clone(),
            keys,
            plans,
            collects: Vec::new(),
            free: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// The registrations of node `v`: each attribute's value under its key.
    pub fn registrations(&self, v: NodeId) -> impl Iterator<Item = (u64, u32)> + '_ {
        let a = self.attributes.count();
        self.keys[v.index() * a..(v.index() + 1) * a].iter().map(move |&k| (k, v.0))
    }

    /// The walks of a query for type `t`.
    pub fn plan(&self, t: ResourceType) -> &[Span] {
        &self.plans[t.0 as usize]
    }

    /// The ranges a walk of a query for `t` carries: every range of the query
    /// to filter by (single-attribute dominated), or its own (iterative).
    pub fn carried(&self, t: ResourceType) -> u8 {
        match self.resolution {
            Resolution::Iterative => 1,
            _ => self.attributes.queries[t.0 as usize].len().min(u8::MAX as usize) as u8,
        }
    }

    /// Starts collecting query `q` for `t` from `origin`; counts it if `counted`.
    /// Returns its number.
    pub fn begin(&mut self, q: QueryId, origin: NodeId, t: ResourceType, counted: bool) -> u32 {
        self.stats.issued += counted as u64;
        let walks = self.plans[t.0 as usize].len();
        let c = Collect {
            q,
            origin,
            t,
            pending: walks as u32,
            complete: true,
            found: vec![Vec::new(); walks],
            hops: 0,
            walked: 0,
        };
        match self.free.pop() {
            Some(rid) => {
                self.collects[rid as usize] = Some(c);
                rid
            }
            None => {
                self.collects.push(Some(c));
                (self.collects.len() - 1) as u32
            }
        }
    }

    /// Whether a registration of `holder` under `key`, met by walk `sub` of
    /// a query for `t`, answers it: a registration of the walk's attribute
    /// whose node satisfies every sub-query (single-attribute dominated) or
    /// the walk's own (iterative).
    fn matches(&self, t: ResourceType, sub: usize, key: u64, holder: u32) -> bool {
        let span = self.plans[t.0 as usize][sub];
        let a = self.attributes.count();
        if holder as usize * a >= self.keys.len() || self.keys[holder as usize * a + span.attr as usize] != key {
            return false;
        }
        let ranges = &self.attributes.queries[t.0 as usize];
        let v = holder as usize;
        if self.resolution == Resolution::Iterative {
            let own = ranges.iter().filter(|r| r.attr == span.attr);
            return own.into_iter().all(|r| (r.lo..=r.hi).contains(&self.attributes.value(v, r.attr as usize)));
        }
        self.attributes.satisfies(v, ranges)
    }

    /// Walk `sub` of query `rid` meets `items` at one more node: it keeps the
    /// registrations that answer it. Returns how many.
    pub fn collect(&mut self, rid: u32, sub: usize, items: impl Iterator<Item = (u64, u32)>) -> u32 {
        let Some(c) = &mut self.collects[rid as usize] else { return 0 };
        let (t, mut found) = (c.t, std::mem::take(&mut c.found[sub]));
        let before = found.len();
        found.extend(items.filter(|&(k, h)| self.matches(t, sub, k, h)).map(|(_, h)| h));
        let added = (found.len() - before) as u32;
        if let Some(c) = &mut self.collects[rid as usize] {
            c.found[sub] = found;
        }
        added
    }

    /// Walk `sub` of query `rid` ended, after `hops` hops and `walked` nodes;
    /// `complete` if it reached the end of its arc. Returns, once every walk
    /// has ended, the query, its origin, its hops, whether every walk
    /// completed, and the nodes its answer names (the origin left out).
    pub fn end(&mut self, rid: u32, hops: u32, walked: u32, complete: bool) -> Option<Done> {
        let c = self.collects[rid as usize].as_mut()?;
        c.pending -= 1;
        c.hops += hops;
        c.walked += walked;
        c.complete &= complete;
        if c.pending > 0 {
            return None;
        }
        let c = self.collects[rid as usize].take()?;
        self.free.push(rid);
        let mut sets = c.found.into_iter().map(|mut s| {
            s.sort_unstable();
            s.dedup();
            s
        });
        let mut named = sets.next().unwrap_or_default();
        for s in sets {
            named.retain(|h| s.binary_search(h).is_ok());
        }
        named.retain(|&h| h != c.origin.0);
        Some(Done { q: c.q, hops: c.hops, walked: c.walked, complete: c.complete, named })
    }

    /// Drops every query collected at `origin`, which has gone.
    pub fn drop_from(&mut self, origin: NodeId) {
        for (rid, slot) in self.collects.iter_mut().enumerate() {
            if slot.as_ref().is_some_and(|c| c.origin == origin) {
                *slot = None;
                self.free.push(rid as u32);
            }
        }
    }

    /// Counts a query that ended, if `counted`.
    pub fn count(&mut self, done: &Done, counted: bool) {
        if counted && done.complete {
            self.stats.answered += done.complete as u64;
            self.stats.hops += done.hops as u64;
            self.stats.walked += done.walked as u64;
        }
    }

    /// The values of [`COLUMNS`]: per query issued, the means over those
    /// answered in full.
    pub fn metrics(&self, out: &mut Vec<Metric>) {
        let s = &self.stats;
        let mean = |x: u64| (s.answered > 0).then(|| x as f64 / s.answered as f64);
        out.extend([
            Metric::new("range_queries", Some(s.issued as f64)),
            Metric::new("range_hops_mean", mean(s.hops)),
            Metric::new("range_walk_mean", mean(s.walked)),
            Metric::new("range_success", (s.issued > 0).then(|| s.answered as f64 / s.issued as f64)),
        ]);
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.keys.capacity() * 8
            + self.attributes.bytes()
            + self.plans.iter().map(|p| 24 + p.capacity() * 24).sum::<usize>()
            + self.collects.capacity() * std::mem::size_of::<Option<Collect>>()
    }
}

/// A range query whose walks have all ended.
pub struct Done {
    /// The query.
    pub q: QueryId,
    /// Hops of its routes and walks.
    pub hops: u32,
    /// Nodes its walks visited.
    pub walked: u32,
    /// Whether every walk reached the end of its arc.
    pub complete: bool,
    /// The nodes its answer names.
    pub named: Vec<u32>,
}
