//! The pending-event list, behind one small trait so implementations can be measured
//! against each other. Every implementation pops in (time, insertion sequence) order,
//! so ties are first-in first-out.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use radix_heap::RadixHeapMap;

use super::SimTime;

/// A priority queue of events keyed by (time, sequence), popped smallest first.
///
/// Callers guarantee that no key is pushed below the last popped time: a
/// discrete-event simulation never schedules into the past. The sequence number is
/// assigned by the queue in push order and breaks ties.
pub trait EventQueue<E> {
    fn push(&mut self, time: SimTime, event: E);
    fn pop(&mut self) -> Option<(SimTime, E)>;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Packs (time, sequence) into one integer whose order is the event order.
#[inline]
fn key(time: SimTime, seq: u64) -> u128 {
    ((time.0 as u128) << 64) | seq as u128
}

/// A radix heap over `(time << 64) | seq` keys: amortised O(log C) with few cache
/// misses, because it only ever compares against the last popped key.
pub struct RadixQueue<E> {
    heap: RadixHeapMap<Reverse<u128>, E>,
    seq: u64,
}

impl<E> Default for RadixQueue<E> {
    fn default() -> Self {
        RadixQueue { heap: RadixHeapMap::new_at(Reverse(0)), seq: 0 }
    }
}

impl<E> EventQueue<E> for RadixQueue<E> {
    #[inline]
    fn push(&mut self, time: SimTime, event: E) {
        self.heap.push(Reverse(key(time, self.seq)), event);
        self.seq += 1;
    }
    #[inline]
    fn pop(&mut self) -> Option<(SimTime, E)> {
        self.heap.pop().map(|(Reverse(k), e)| (SimTime((k >> 64) as u64), e))
    }
    fn len(&self) -> usize {
        self.heap.len()
    }
}

/// `std::collections::BinaryHeap` with the same keys: the baseline of the benchmarks.
pub struct HeapQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    seq: u64,
}

struct Entry<E> {
    key: u128,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.key.cmp(&self.key)
    }
}

impl<E> Default for HeapQueue<E> {
    fn default() -> Self {
        HeapQueue { heap: BinaryHeap::new(), seq: 0 }
    }
}

impl<E> EventQueue<E> for HeapQueue<E> {
    #[inline]
    fn push(&mut self, time: SimTime, event: E) {
        self.heap.push(Entry { key: key(time, self.seq), event });
        self.seq += 1;
    }
    #[inline]
    fn pop(&mut self) -> Option<(SimTime, E)> {
        self.heap.pop().map(|e| (SimTime((e.key >> 64) as u64), e.event))
    }
    fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Runs a hold model with many ties and returns the popped order.
    fn trace<Q: EventQueue<u32> + Default>() -> Vec<(SimTime, u32)> {
        let mut q = Q::default();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut out = Vec::new();
        for i in 0..1000 {
            q.push(SimTime(rng.random_range(0..50)), i);
        }
        let mut next = 1000;
        while let Some((t, e)) = q.pop() {
            out.push((t, e));
            if next < 20_000 {
                q.push(SimTime(t.0 + rng.random_range(0..50)), next);
                next += 1;
            }
        }
        out
    }

    #[test]
    fn implementations_pop_in_the_same_order_with_fifo_ties() {
        let radix = trace::<RadixQueue<u32>>();
        let heap = trace::<HeapQueue<u32>>();
        assert_eq!(radix.len(), 20_000);
        assert_eq!(radix, heap);
        // Equal times come out in push order (ids were pushed in increasing order).
        for w in radix.windows(2) {
            assert!(w[0].0 < w[1].0 || (w[0].0 == w[1].0 && w[0].1 < w[1].1), "{w:?}");
        }
    }
}
