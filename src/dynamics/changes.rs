//! Changing resources (`[resources] changes`): copies that swap type, move, appear
//! and vanish during a run, as grid resources change state. The engine owns the
//! one [`Holdings`] of a run and asks it for the next change; every protocol reads
//! who holds what through the engine, so a change is the same world fact for all
//! of them, and one that answers from stored state (an index, a cache) learns of it
//! only as its design does.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1};

use crate::base::rng::{Stream, stream};
use crate::base::{NodeId, ResourceType, SimTime};
use crate::world::{Changes, Resources};

/// The kinds of change, in the order of [`Changes::rates`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// A copy turns into a type its node does not hold.
    Swap,
    /// A copy moves to a node that does not hold its type.
    Move,
    /// A node gains a copy of a type it does not hold.
    Appear,
    /// A copy vanishes.
    Vanish,
}

const KINDS: [ChangeKind; 4] = [ChangeKind::Swap, ChangeKind::Move, ChangeKind::Appear, ChangeKind::Vanish];

/// Who holds what now, and who held what when, under changing resources. The
/// world's placement is the state at time zero; a node that never changes is
/// read from it.
pub struct Holdings<'w> {
    placed: &'w Resources,
    /// Per kind, changes per simulated second over the whole network.
    rates: [f64; 4],
    total: f64,
    /// Every copy now, as (node, type), in no meaningful order: a uniform draw of
    /// one copy is a uniform index.
    copies: Vec<(NodeId, ResourceType)>,
    /// Per type, ascending, the nodes holding it now.
    holders: Vec<Vec<NodeId>>,
    /// Per type, ascending, every node that has held it at some time in the run.
    ever: Vec<Vec<NodeId>>,
    /// Per node, its type sets after each of its changes, oldest first; empty if it
    /// never changed.
    history: Vec<Vec<(SimTime, Box<[ResourceType]>)>>,
    /// Changes made, per kind.
    made: [u64; 4],
    rng: ChaCha8Rng,
}

impl<'w> Holdings<'w> {
    /// The holdings of a run whose copies start as `placed`, or `None` when they
    /// never change (no rate above zero, or no resource types).
    pub fn new(changes: &Changes, placed: &'w Resources, nodes: usize, seed: u64) -> Option<Holdings<'w>> {
        if !changes.any() || placed.types() == 0 || nodes == 0 {
            return None;
        }
        let rates = changes.rates().map(|r| r * nodes as f64);
        let types = placed.types();
        let holders: Vec<Vec<NodeId>> = (0..types).map(|t| placed.holders(ResourceType(t)).to_vec()).collect();
        let copies =
            (0..nodes as u32).map(NodeId).flat_map(|v| placed.of_node(v).iter().map(move |&t| (v, t))).collect();
        Some(Holdings {
            placed,
            rates,
            total: rates.iter().sum(),
            copies,
            ever: holders.clone(),
            holders,
            history: vec![Vec::new(); nodes],
            made: [0; 4],
            rng: stream(seed, Stream::Changes),
        })
    }

    /// The time until the next change.
    pub fn gap(&mut self) -> SimTime {
        let x: f64 = Exp1.sample(&mut self.rng);
        SimTime::from_secs_f64(x / self.total)
    }

    /// Makes the next change at `now`, its kind drawn in proportion to the rates;
    /// gives the nodes whose types changed (two for a move, none when the drawn
    /// change is impossible, as a swap on a node that holds every type).
    pub fn change(&mut self, now: SimTime) -> [Option<NodeId>; 2] {
        let mut x = self.rng.random_range(0.0..self.total);
        let mut kind = ChangeKind::Vanish;
        for (i, &r) in self.rates.iter().enumerate() {
            if x < r {
                kind = KINDS[i];
                break;
            }
            x -= r;
        }
        let types = self.placed.types();
        let nodes = self.history.len() as u32;
        let touched = match kind {
            ChangeKind::Swap => {
                let Some(i) = self.draw_copy() else { return [None; 2] };
                let (v, old) = self.copies[i];
                let Some(new) = self.missing_type(v, types) else { return [None; 2] };
                self.copies[i] = (v, new);
                self.set(now, v, Some(old), Some(new));
                [Some(v), None]
            }
            ChangeKind::Move => {
                let Some(i) = self.draw_copy() else { return [None; 2] };
                let (u, t) = self.copies[i];
                let held = &self.holders[t.0 as usize];
                if held.len() >= nodes as usize {
                    return [None; 2];
                }
                // The r-th node not holding t: walk the sorted holders past r.
                let mut w = self.rng.random_range(0..nodes - held.len() as u32);
                for h in held {
                    if h.0 <= w {
                        w += 1;
                    }
                }
                let w = NodeId(w);
                self.copies[i] = (w, t);
                self.set(now, u, Some(t), None);
                self.set(now, w, None, Some(t));
                [Some(u), Some(w)]
            }
            ChangeKind::Appear => {
                let v = NodeId(self.rng.random_range(0..nodes));
                let Some(t) = self.missing_type(v, types) else { return [None; 2] };
                self.copies.push((v, t));
                self.set(now, v, None, Some(t));
                [Some(v), None]
            }
            ChangeKind::Vanish => {
                let Some(i) = self.draw_copy() else { return [None; 2] };
                let (v, t) = self.copies.swap_remove(i);
                self.set(now, v, Some(t), None);
                [Some(v), None]
            }
        };
        self.made[kind as usize] += 1;
        touched
    }

    fn draw_copy(&mut self) -> Option<usize> {
        (!self.copies.is_empty()).then(|| self.rng.random_range(0..self.copies.len()))
    }

    /// A type `v` does not hold, drawn uniformly: the r-th missing one from its
    /// sorted set. `None` if it holds every type.
    fn missing_type(&mut self, v: NodeId, types: u32) -> Option<ResourceType> {
        let set = self.of_node(v);
        if set.len() >= types as usize {
            return None;
        }
        let mut t = self.rng.random_range(0..types - set.len() as u32);
        for held in self.of_node(v) {
            if held.0 <= t {
                t += 1;
            }
        }
        Some(ResourceType(t))
    }

    /// `v` loses `old` and gains `new` at `now`.
    fn set(&mut self, now: SimTime, v: NodeId, old: Option<ResourceType>, new: Option<ResourceType>) {
        let mut set = self.of_node(v).to_vec();
        if let Some(t) = old {
            set.retain(|&x| x != t);
            let h = &mut self.holders[t.0 as usize];
            if let Ok(i) = h.binary_search(&v) {
                h.remove(i);
            }
        }
        if let Some(t) = new {
            if let Err(i) = set.binary_search(&t) {
                set.insert(i, t);
            }
            for list in [&mut self.holders[t.0 as usize], &mut self.ever[t.0 as usize]] {
                if let Err(i) = list.binary_search(&v) {
                    list.insert(i, v);
                }
            }
        }
        self.history[v.index()].push((now, set.into_boxed_slice()));
    }

    /// The types `v` holds now, ascending.
    #[inline]
    pub fn of_node(&self, v: NodeId) -> &[ResourceType] {
        match self.history[v.index()].last() {
            Some((_, set)) => set,
            None => self.placed.of_node(v),
        }
    }

    /// Whether `v` holds `t` now.
    #[inline]
    pub fn holds(&self, v: NodeId, t: ResourceType) -> bool {
        self.of_node(v).binary_search(&t).is_ok()
    }

    /// Whether `v` held `t` at time `at` (a change at `at` counts as made).
    pub fn held_at(&self, v: NodeId, t: ResourceType, at: SimTime) -> bool {
        let h = &self.history[v.index()];
        match h.partition_point(|(when, _)| *when <= at) {
            0 => self.placed.holds(v, t),
            i => h[i - 1].1.binary_search(&t).is_ok(),
        }
    }

    /// The nodes holding `t` now, ascending.
    #[inline]
    pub fn holders(&self, t: ResourceType) -> &[NodeId] {
        self.holders.get(t.0 as usize).map_or(&[], |h| h)
    }

    /// Every node that has held `t` at some time in the run so far, ascending.
    pub fn ever_held(&self, t: ResourceType) -> &[NodeId] {
        self.ever.get(t.0 as usize).map_or(&[], |h| h)
    }

    /// How many changes of each kind were made, in the order swap, move, appear, vanish.
    pub fn made(&self) -> [u64; 4] {
        self.made
    }

    /// Every copy now.
    pub fn copies(&self) -> usize {
        self.copies.len()
    }

    /// Bytes held: the copies, the holder lists and every node's history.
    pub fn bytes(&self) -> usize {
        let lists: usize = self.holders.iter().chain(&self.ever).map(|l| 24 + l.capacity() * 4).sum();
        let history: usize =
            self.history.iter().map(|h| 24 + h.iter().map(|(_, s)| 32 + s.len() * 4).sum::<usize>()).sum();
        self.copies.capacity() * 8 + lists + history
    }
}

/// For tests of how a protocol meets one change: the first run seed whose first
/// change is followed by `quiet` without another, with the time of that change and
/// the nodes it touched (the run draws the same, from the same stream).
#[cfg(test)]
pub fn first_change_alone(
    changes: &Changes,
    placed: &Resources,
    nodes: usize,
    quiet: SimTime,
) -> (u64, SimTime, [Option<NodeId>; 2]) {
    (1..1000)
        .find_map(|seed| {
            let mut h = Holdings::new(changes, placed, nodes, seed)?;
            let at = h.gap();
            let touched = h.change(at);
            (h.gap() > quiet).then_some((seed, at, touched))
        })
        .expect("a seed among the first thousand")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::Rate;

    fn world() -> Resources {
        // 50 nodes, 5 types, 10 copies each on nodes t, t+5, t+10, ...
        Resources::from_holders(50, (0..5).map(|t| (0..10).map(|i| t + 5 * i).collect()).collect())
    }

    fn check_consistent(h: &Holdings<'_>, nodes: u32, types: u32) {
        let mut count = 0;
        for t in (0..types).map(ResourceType) {
            let listed: Vec<NodeId> = (0..nodes).map(NodeId).filter(|&v| h.holds(v, t)).collect();
            assert_eq!(h.holders(t), &listed[..], "holders of {t:?}");
            assert!(listed.iter().all(|v| h.ever_held(t).contains(v)));
            count += listed.len();
        }
        assert_eq!(count, h.copies());
    }

    #[test]
    fn no_rate_means_no_holdings() {
        let r = world();
        assert!(Holdings::new(&Changes::default(), &r, 50, 1).is_none());
    }

    #[test]
    fn swaps_keep_every_nodes_copies_and_moves_keep_every_types() {
        let r = world();
        let swaps = Changes { swap: Rate(1.0), ..Changes::default() };
        let mut h = Holdings::new(&swaps, &r, 50, 7).expect("changing");
        for i in 0..2000 {
            h.change(SimTime(i));
        }
        assert_eq!(h.made(), [2000, 0, 0, 0]);
        for v in (0..50).map(NodeId) {
            assert_eq!(h.of_node(v).len(), r.of_node(v).len(), "node {v:?} keeps its copies");
        }
        check_consistent(&h, 50, 5);

        let moves = Changes { moves: Rate(1.0), ..Changes::default() };
        let mut h = Holdings::new(&moves, &r, 50, 7).expect("changing");
        for i in 0..2000 {
            h.change(SimTime(i));
        }
        for t in (0..5).map(ResourceType) {
            assert_eq!(h.holders(t).len(), 10, "type {t:?} keeps its copies");
        }
        check_consistent(&h, 50, 5);
    }

    #[test]
    fn appear_and_vanish_at_equal_rates_balance_and_kinds_follow_their_rates() {
        let r = world();
        let c = Changes { appear: Rate(1.0), vanish: Rate(1.0), swap: Rate(2.0), ..Changes::default() };
        let mut h = Holdings::new(&c, &r, 50, 3).expect("changing");
        for i in 0..8000 {
            h.change(SimTime(i));
        }
        let [swap, _, appear, vanish] = h.made();
        // 8000 draws, p = 1/2, 1/4, 1/4: σ ≈ 45 and 39.
        assert!((swap as f64 - 4000.0).abs() < 200.0, "{swap} swaps");
        assert!((appear as f64 - 2000.0).abs() < 200.0 && (vanish as f64 - 2000.0).abs() < 200.0);
        assert_eq!(h.copies() as i64, 50 + appear as i64 - vanish as i64);
        check_consistent(&h, 50, 5);
    }

    #[test]
    fn history_answers_what_a_node_held_at_any_time() {
        let r = world();
        let c = Changes { swap: Rate(1.0), ..Changes::default() };
        let mut h = Holdings::new(&c, &r, 50, 11).expect("changing");
        let mut snapshots = vec![(0..50).map(|v| r.of_node(NodeId(v)).to_vec()).collect::<Vec<_>>()];
        for i in 1..=300 {
            h.change(SimTime(10 * i));
            snapshots.push((0..50).map(|v| h.of_node(NodeId(v)).to_vec()).collect());
        }
        for (i, snap) in snapshots.iter().enumerate() {
            // Just after change i and just before change i + 1.
            for at in [SimTime(10 * i as u64), SimTime(10 * i as u64 + 9)] {
                for v in 0..50u32 {
                    for t in (0..5).map(ResourceType) {
                        assert_eq!(
                            h.held_at(NodeId(v), t, at),
                            snap[v as usize].contains(&t),
                            "node {v} type {t:?} at {at}"
                        );
                    }
                }
            }
        }
    }
}
