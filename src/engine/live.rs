//! Liveness: which nodes are up. The engine owns it; churn and scripted faults
//! change it; protocols see it through [`super::Ctx::is_up`] and their hooks.
//!
//! A static run (no `[churn]`, no `[[fault]]`) keeps `active` false and every
//! vector empty, so the run loop's checks cost one predictable branch.

use std::sync::Arc;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::base::rng::{Stream, stream};
use crate::base::{NodeId, SimTime};
use crate::dynamics::{Churn, Dynamics, Fault, NodeLifetimes, Source, Start, Trace};

/// What a churn event does when it comes due; packed into its low 2 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ChurnOp {
    /// The node's session ends: it leaves, gracefully or by crashing.
    SessionEnd = 0,
    /// The node's downtime ends: it joins again.
    Rejoin = 1,
    /// A graceful leaver's time to say goodbye is over: it goes down.
    LeaveDone = 2,
}

impl ChurnOp {
    /// The event index of this operation for a node whose churn sequence is `seq`.
    pub(super) fn pack(self, seq: u32) -> u32 {
        seq << 2 | self as u32
    }

    /// The operation and the sequence number an event index carries.
    pub(super) fn unpack(idx: u32) -> (ChurnOp, u32) {
        let op = match idx & 3 {
            0 => ChurnOp::SessionEnd,
            1 => ChurnOp::Rejoin,
            _ => ChurnOp::LeaveDone,
        };
        (op, idx >> 2)
    }
}

/// Up and down, per node, and what drives the changes.
pub(super) struct Liveness {
    /// Whether anything can change: false for a static run, whose vectors are empty.
    pub active: bool,
    /// Per node, its life: how many times it has joined (its epoch, 31 bits,
    /// wrapping) above a low bit that is set while it is up (a leaving node is still
    /// up). One word, because the run loop reads both together: a timer or a queued
    /// message carries the stamp of the life it was made in, and is dropped unless
    /// the node is in that life still, up (see [`Liveness::stamp`]).
    life: Vec<u32>,
    /// Per node: announced a graceful leave and not yet gone.
    pub leaving: Vec<bool>,
    /// Per node: down by a scripted crash, deaf to churn until it recovers.
    pub held: Vec<bool>,
    /// Per node: counts its scheduled churn events, so that one made stale by a
    /// crash or a recovery is dropped when it comes due (30 bits, wrapping).
    pub seq: Vec<u32>,
    /// The up nodes, in no meaningful order, and each node's place in it.
    up_list: Vec<NodeId>,
    pos: Vec<u32>,
    /// Sessions and downtimes drawn from distributions, if churn has them, and
    /// how they start.
    pub lifetimes: Option<NodeLifetimes>,
    pub start: Start,
    /// A replayed trace, if churn has one.
    pub trace: Option<Arc<Trace>>,
    /// Probability that a leave is graceful, and how long a graceful leaver stays.
    pub graceful: f64,
    pub leave_time: SimTime,
    /// The scripted faults, and the nodes each crash took down (for its recovery).
    pub faults: Vec<Fault>,
    pub victims: Vec<Vec<NodeId>>,
    /// Per node, its side of an active partition; empty when none is.
    pub group: Vec<u16>,
    /// Draws sessions, downtimes, graceful coins and bootstrap contacts.
    pub rng: ChaCha8Rng,
    /// Draws crash victims and partition groups.
    pub fault_rng: ChaCha8Rng,
}

impl Liveness {
    /// Every node up, nothing ever changing.
    pub fn fixed() -> Liveness {
        Liveness {
            active: false,
            life: Vec::new(),
            leaving: Vec::new(),
            held: Vec::new(),
            seq: Vec::new(),
            up_list: Vec::new(),
            pos: Vec::new(),
            lifetimes: None,
            start: Start::default(),
            trace: None,
            graceful: 0.0,
            leave_time: SimTime::ZERO,
            faults: Vec::new(),
            victims: Vec::new(),
            group: Vec::new(),
            rng: stream(0, Stream::Churn),
            fault_rng: stream(0, Stream::Faults),
        }
    }

    /// The liveness of a run of `nodes` nodes under `dynamics`, every node up (the
    /// run's start then takes some down).
    pub fn new(dynamics: &Dynamics, nodes: usize, seed: u64) -> Liveness {
        if dynamics.is_static() {
            return Liveness::fixed();
        }
        let mut rng = stream(seed, Stream::Churn);
        let mut start = Start::default();
        let (lifetimes, trace, graceful, leave_time) = match &dynamics.churn {
            None => (None, None, 0.0, SimTime::ZERO),
            Some(Churn { source, graceful, leave_time }) => match source {
                Source::Distributions { session, downtime, heterogeneous, start: s } => {
                    start = *s;
                    let l = NodeLifetimes::new(*session, *downtime, *heterogeneous, nodes, &mut rng);
                    (Some(l), None, *graceful, *leave_time)
                }
                // A trace's leaves take no time: the row says when the node is gone.
                Source::Trace(t) => (None, Some(Arc::clone(t)), *graceful, SimTime::ZERO),
            },
        };
        Liveness {
            active: true,
            life: vec![1; nodes],
            leaving: vec![false; nodes],
            held: vec![false; nodes],
            seq: vec![0; nodes],
            up_list: (0..nodes as u32).map(NodeId).collect(),
            pos: (0..nodes as u32).collect(),
            lifetimes,
            start,
            trace,
            graceful,
            leave_time,
            faults: dynamics.faults.clone(),
            victims: vec![Vec::new(); dynamics.faults.len()],
            group: Vec::new(),
            rng,
            fault_rng: stream(seed, Stream::Faults),
        }
    }

    /// How many nodes are up.
    #[inline]
    pub fn alive(&self) -> usize {
        self.up_list.len()
    }

    /// Whether `v` is up (always, in a static run).
    #[inline]
    pub fn is_up(&self, v: NodeId) -> bool {
        !self.active || self.up(v)
    }

    /// Whether `v` is up, in a run with dynamics.
    #[inline]
    pub fn up(&self, v: NodeId) -> bool {
        self.life[v.index()] & 1 != 0
    }

    /// The stamp of `v`'s present life, for a timer or a message queued at it:
    /// its epoch, with the up bit set.
    #[inline]
    pub fn stamp(&self, v: NodeId) -> u32 {
        self.life[v.index()] | 1
    }

    /// Whether `v` is up in the life `stamp` was made in.
    #[inline]
    pub fn in_life(&self, v: NodeId, stamp: u32) -> bool {
        self.life[v.index()] == stamp
    }

    /// The per-node lives, for prefetching.
    #[inline]
    pub fn lives(&self) -> &[u32] {
        &self.life
    }

    /// Marks `v` up, in a new epoch.
    pub fn set_up(&mut self, v: NodeId) {
        let i = v.index();
        debug_assert!(self.life[i] & 1 == 0);
        // The next epoch, up: (e + 1) << 1 | 1 from e << 1.
        self.life[i] = self.life[i].wrapping_add(3);
        self.pos[i] = self.up_list.len() as u32;
        self.up_list.push(v);
    }

    /// Marks `v` down.
    pub fn set_down(&mut self, v: NodeId) {
        let i = v.index();
        debug_assert!(self.life[i] & 1 != 0);
        self.life[i] &= !1;
        self.leaving[i] = false;
        let p = self.pos[i] as usize;
        let last = self.up_list.pop().expect("an up node is listed");
        if last != v {
            self.up_list[p] = last;
            self.pos[last.index()] = p as u32;
        }
    }

    /// The next churn sequence number of `v`: any event scheduled before is stale.
    pub fn next_seq(&mut self, v: NodeId) -> u32 {
        let s = &mut self.seq[v.index()];
        *s = s.wrapping_add(1) & ((1 << 30) - 1);
        *s
    }

    /// Whether a churn event of `v` carrying `seq` is still current.
    pub fn current(&self, v: NodeId, seq: u32) -> bool {
        self.seq[v.index()] == seq
    }

    /// An up node other than `v`, drawn uniformly, if there is one.
    pub fn contact(&mut self, v: NodeId) -> Option<NodeId> {
        let n = self.up_list.len();
        let own = self.up(v);
        let others = n - own as usize;
        if others == 0 {
            return None;
        }
        let mut k = self.rng.random_range(0..others);
        if own && k >= self.pos[v.index()] as usize {
            k += 1;
        }
        Some(self.up_list[k])
    }

    /// The up nodes, in no meaningful order.
    pub fn up_nodes(&self) -> &[NodeId] {
        &self.up_list
    }

    /// Bytes per node this holds.
    pub fn bytes(&self) -> usize {
        self.leaving.capacity()
            + self.held.capacity()
            + self.group.capacity()
            + 4 * (self.life.capacity() + self.seq.capacity() + self.up_list.capacity() + self.pos.capacity())
            + self.lifetimes.as_ref().map_or(0, NodeLifetimes::bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn churn_ops_pack_with_their_sequence() {
        for op in [ChurnOp::SessionEnd, ChurnOp::Rejoin, ChurnOp::LeaveDone] {
            assert_eq!(ChurnOp::unpack(op.pack((1 << 30) - 1)), (op, (1 << 30) - 1));
        }
    }

    #[test]
    fn a_contact_is_never_the_node_itself_and_the_up_list_follows_changes() {
        let quiet = Fault { at: SimTime::ZERO, action: crate::dynamics::Action::Loss { value: 0.0, until: None } };
        let dynamics = Dynamics { churn: None, faults: vec![quiet], ..Dynamics::default() };
        let mut l = Liveness::new(&dynamics, 5, 1);
        l.set_down(NodeId(1));
        l.set_down(NodeId(4));
        assert_eq!(l.alive(), 3);
        for _ in 0..200 {
            let c = l.contact(NodeId(2)).expect("two others are up");
            assert!(c != NodeId(2) && l.is_up(c));
        }
        l.set_down(NodeId(0));
        l.set_down(NodeId(3));
        assert_eq!(l.contact(NodeId(2)), None);
        l.set_up(NodeId(4));
        assert_eq!(l.contact(NodeId(2)), Some(NodeId(4)));
        // Node 4's second life, up; its first is over.
        assert_eq!(l.stamp(NodeId(4)), 3);
        assert!(l.in_life(NodeId(4), 3) && !l.in_life(NodeId(4), 1));
        let mut listed: Vec<u32> = l.up_nodes().iter().map(|v| v.0).collect();
        listed.sort();
        assert_eq!(listed, vec![2, 4]);
    }
}
