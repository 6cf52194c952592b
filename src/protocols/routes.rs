//! Per-query state at the nodes a query visits (reverse-path parents, seen
//! markers), shared by the protocols that route queries hop by hop.
//!
//! Entries are keyed by (query, node) and kept in one hash table per generation of
//! queries: those issued in the same `timeout`-long window. A generation is dropped
//! whole once all its queries have expired, instead of purging entry by entry, and
//! its cleared table is reused for the next one. The table is `FxHashMap`, or
//! [`FlatTable`] where the run loop should prefetch an entry before its message is
//! handled.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::engine::{NodeId, QueryId, SimTime};

/// The key of query `q`'s entry at node `v`.
#[inline]
pub fn key(q: QueryId, v: NodeId) -> u64 {
    (q.0 as u64) << 32 | v.0 as u64
}

/// A table of one generation: emptied for reuse, and sized for [`QueryTables::bytes`].
pub trait Table: Default {
    /// Empties the table, keeping its allocation.
    fn clear(&mut self);
    /// Slots allocated.
    fn slots(&self) -> usize;
    /// Bytes a slot takes.
    fn slot_bytes() -> usize;
}

impl<V> Table for FxHashMap<u64, V> {
    fn clear(&mut self) {
        FxHashMap::clear(self)
    }
    fn slots(&self) -> usize {
        self.capacity()
    }
    /// hashbrown keeps the key, the value and a control byte per slot.
    fn slot_bytes() -> usize {
        std::mem::size_of::<(u64, V)>() + 1
    }
}

/// An open-addressing table of (query, node) keys with linear probing, three
/// quarters full at most (as compact as std's `HashMap`, whose tables are up to
/// seven eighths full but spend a control byte a slot): unlike std's `HashMap`, the slot a key starts its probe at is known
/// from the key alone, so [`FlatTable::prefetch`] can hint it before it is read.
/// The key and its value share one slot (one cache line), where a `HashMap`
/// keeps them apart from its control bytes.
pub struct FlatTable<V> {
    slots: Vec<(u64, V)>,
    len: usize,
}

/// The key of an empty slot: no (query, node) key has every bit set.
const EMPTY: u64 = u64::MAX;

impl<V: Copy + Default> Default for FlatTable<V> {
    fn default() -> Self {
        FlatTable { slots: Vec::new(), len: 0 }
    }
}

impl<V: Copy + Default> FlatTable<V> {
    /// The slot `k`'s probe starts at (the table is not empty).
    #[inline]
    fn home(&self, k: u64) -> usize {
        // A multiplication mixes every key bit into the high ones, and scaling
        // them to the table's size (which need not be a power of two) keeps them.
        let h = k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ((h as u128 * self.slots.len() as u128) >> 64) as usize
    }

    /// The slot holding `k`, or the empty one where it would go.
    #[inline]
    fn find(&self, k: u64) -> usize {
        let n = self.slots.len();
        let mut i = self.home(k);
        while self.slots[i].0 != k && self.slots[i].0 != EMPTY {
            i += 1;
            if i == n {
                i = 0;
            }
        }
        i
    }

    /// The value of `k`.
    #[inline]
    pub fn get(&self, k: u64) -> Option<&V> {
        if self.slots.is_empty() {
            return None;
        }
        let slot = &self.slots[self.find(k)];
        (slot.0 == k).then_some(&slot.1)
    }

    /// Sets the value of `k`.
    #[inline]
    pub fn insert(&mut self, k: u64, v: V) {
        debug_assert!(k != EMPTY);
        if 4 * (self.len + 1) > 3 * self.slots.len() {
            self.grow();
        }
        let i = self.find(k);
        if self.slots[i].0 == EMPTY {
            self.len += 1;
        }
        self.slots[i] = (k, v);
    }

    /// Hints the slot `k`'s probe starts at.
    #[inline(always)]
    pub fn prefetch(&self, k: u64) {
        if !self.slots.is_empty() {
            crate::base::prefetch(&self.slots, self.home(k));
        }
    }

    fn grow(&mut self) {
        // Growing by half, a table is between half and three quarters full.
        let size = (self.slots.len() * 3 / 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![(EMPTY, V::default()); size]);
        for (k, v) in old {
            if k != EMPTY {
                let i = self.find(k);
                self.slots[i] = (k, v);
            }
        }
    }
}

impl<V: Copy + Default> Table for FlatTable<V> {
    fn clear(&mut self) {
        if self.len > 0 {
            self.slots.fill((EMPTY, V::default()));
            self.len = 0;
        }
    }
    fn slots(&self) -> usize {
        self.slots.len()
    }
    fn slot_bytes() -> usize {
        std::mem::size_of::<(u64, V)>()
    }
}

/// (query, node) → `V`, one table `T` per generation of queries.
pub struct QueryTables<V, T = FxHashMap<u64, V>> {
    generations: VecDeque<(u64, T)>,
    spare: Option<T>,
    window: u64,
    _value: std::marker::PhantomData<V>,
}

impl<V, T> Default for QueryTables<V, T> {
    fn default() -> Self {
        QueryTables { generations: VecDeque::new(), spare: None, window: 1, _value: std::marker::PhantomData }
    }
}

impl<V, T: Table> QueryTables<V, T> {
    /// Call from `Protocol::start`: a generation is one query timeout long.
    pub fn start(&mut self, timeout: SimTime) {
        self.window = timeout.0.max(1);
    }

    /// The table of queries issued at `now`; call when a query is issued. Drops the
    /// generations whose queries have all expired.
    pub fn open(&mut self, now: SimTime) -> &mut T {
        let current = now.0 / self.window;
        // Queries of generation g have all expired by (g + 2) windows.
        while self.generations.front().is_some_and(|(g, _)| g + 2 <= current) {
            if let Some((_, mut t)) = self.generations.pop_front() {
                t.clear();
                self.spare = Some(t);
            }
        }
        if self.generations.back().is_none_or(|(g, _)| *g != current) {
            self.generations.push_back((current, self.spare.take().unwrap_or_default()));
        }
        let last = self.generations.len() - 1;
        &mut self.generations[last].1
    }

    /// The table of the query issued at `issued`, if its generation is still kept.
    #[inline]
    pub fn of(&mut self, issued: SimTime) -> Option<&mut T> {
        let generation = issued.0 / self.window;
        self.generations.iter_mut().find(|(g, _)| *g == generation).map(|(_, t)| t)
    }

    /// Read-only [`QueryTables::of`].
    #[inline]
    pub fn get(&self, issued: SimTime) -> Option<&T> {
        let generation = issued.0 / self.window;
        self.generations.iter().find(|(g, _)| *g == generation).map(|(_, t)| t)
    }

    /// Bytes held by the tables' slots.
    pub fn bytes(&self) -> usize {
        let slots: usize = self.generations.iter().map(|(_, t)| t.slots()).sum::<usize>()
            + self.spare.as_ref().map_or(0, |t| t.slots());
        slots * T::slot_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flat table answers exactly as a `HashMap` through growth, overwrites and
    /// reuse after clearing, with keys that collide in their home slot.
    #[test]
    fn the_flat_table_answers_as_a_hash_map() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let mut flat: FlatTable<(NodeId, u8)> = FlatTable::default();
        let mut map: FxHashMap<u64, (NodeId, u8)> = FxHashMap::default();
        assert_eq!(flat.get(5), None);
        for round in 0..3 {
            for _ in 0..20_000 {
                // Few queries and nodes: many repeated keys and long probe runs.
                let k = key(QueryId(rng.random_range(0..40)), NodeId(rng.random_range(0..400)));
                if rng.random_bool(0.6) {
                    let v = (NodeId(rng.random_range(0..1000)), rng.random_range(0..8));
                    flat.insert(k, v);
                    map.insert(k, v);
                } else {
                    assert_eq!(flat.get(k), map.get(&k), "round {round}, key {k:#x}");
                }
            }
            assert_eq!(flat.len, map.len());
            assert!(4 * flat.len <= 3 * flat.slots(), "at most three quarters full");
            flat.clear();
            map.clear();
            assert_eq!(flat.get(key(QueryId(1), NodeId(1))), None);
        }
    }

    #[test]
    fn a_generation_is_kept_until_all_its_queries_have_expired() {
        let mut t: QueryTables<u32> = QueryTables::default();
        t.start(SimTime::from_secs(10));
        t.open(SimTime::from_secs(1)).insert(key(QueryId(0), NodeId(3)), 7);
        // Issued at 1 s, the query lives until 11 s: its table must survive the
        // opening of the next generation at 12 s, and go at the one after (20 s).
        t.open(SimTime::from_secs(12));
        assert_eq!(t.get(SimTime::from_secs(1)).and_then(|m| m.get(&key(QueryId(0), NodeId(3)))), Some(&7));
        t.open(SimTime::from_secs(20));
        assert!(t.get(SimTime::from_secs(1)).is_none());
        assert!(t.of(SimTime::from_secs(20)).is_some_and(|m| m.is_empty()), "the reused table starts empty");
    }
}
