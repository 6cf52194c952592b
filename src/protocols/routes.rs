//! Per-query state at the nodes a query visits (reverse-path parents, seen
//! markers), shared by the protocols that route queries hop by hop.
//!
//! Entries are keyed by (query, node) and kept in one hash table per generation of
//! queries: those issued in the same `timeout`-long window. A generation is dropped
//! whole once all its queries have expired, instead of purging entry by entry, and
//! its cleared table is reused for the next one.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::engine::{NodeId, QueryId, SimTime};

/// The key of query `q`'s entry at node `v`.
#[inline]
pub fn key(q: QueryId, v: NodeId) -> u64 {
    (q.0 as u64) << 32 | v.0 as u64
}

/// (query, node) → `V`, one table per generation of queries.
pub struct QueryTables<V> {
    generations: VecDeque<(u64, FxHashMap<u64, V>)>,
    spare: Option<FxHashMap<u64, V>>,
    window: u64,
}

impl<V> Default for QueryTables<V> {
    fn default() -> Self {
        QueryTables { generations: VecDeque::new(), spare: None, window: 1 }
    }
}

impl<V> QueryTables<V> {
    /// Call from `Protocol::start`: a generation is one query timeout long.
    pub fn start(&mut self, timeout: SimTime) {
        self.window = timeout.0.max(1);
    }

    /// The table of queries issued at `now`; call when a query is issued. Drops the
    /// generations whose queries have all expired.
    pub fn open(&mut self, now: SimTime) -> &mut FxHashMap<u64, V> {
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
    pub fn of(&mut self, issued: SimTime) -> Option<&mut FxHashMap<u64, V>> {
        let generation = issued.0 / self.window;
        self.generations.iter_mut().find(|(g, _)| *g == generation).map(|(_, t)| t)
    }

    /// Read-only [`QueryTables::of`].
    #[inline]
    pub fn get(&self, issued: SimTime) -> Option<&FxHashMap<u64, V>> {
        let generation = issued.0 / self.window;
        self.generations.iter().find(|(g, _)| *g == generation).map(|(_, t)| t)
    }

    /// Bytes held: hashbrown keeps an 8-byte key, the value and a control byte per slot.
    pub fn bytes(&self) -> usize {
        let slots: usize = self.generations.iter().map(|(_, t)| t.capacity()).sum::<usize>()
            + self.spare.as_ref().map_or(0, |t| t.capacity());
        slots * (9 + std::mem::size_of::<V>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
