//! The pending-event list, behind one small trait so implementations can be measured
//! against each other. Every implementation pops in (time, insertion sequence) order,
//! so ties are first-in first-out.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use radix_heap::RadixHeapMap;

use super::SimTime;

/// A priority queue of events keyed by (time, sequence), popped smallest first.
///
/// Callers guarantee that no key is pushed below the last popped time: a
/// discrete-event simulation never schedules into the past. The sequence number is
/// assigned by the queue in push order and breaks ties.
pub trait EventQueue<E> {
    /// Schedules `event` at `time`, after every event already pending at that time.
    fn push(&mut self, time: SimTime, event: E);
    /// Takes the earliest pending event, `None` when none is left.
    fn pop(&mut self) -> Option<(SimTime, E)>;
    /// How many events are pending.
    fn len(&self) -> usize;
    /// Whether no event is pending.
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

/// A radix heap over plain `u64` times with first-in first-out ties, 16-way
/// buckets, and a sorted front that shows the next events before they are popped.
///
/// Times are read as 16 hexadecimal digits. Bucket (p, v) holds the events whose
/// time first differs from `last` in digit p (counted from the lowest), where it is
/// v; ordered by (p, v), every event of a lower bucket comes before every event of
/// a higher one. The front holds the next events in pop order: it is refilled from
/// the lowest bucket, which is sorted whole when it is small ([`SORT`] events; the
/// sort is stable, and events of one time always share a bucket in push order) and
/// otherwise split around its earliest time, whose events go to the front while
/// the rest move to lower digits. `last` is then the front's latest time, and an
/// event pushed at or before it is inserted into the front after every event of
/// its time. So equal times pop in push order without a sequence number in the
/// key, each event moves down at most 16 times in its life (a binary radix heap
/// moves it up to 64 times, about four times as often in practice), and
/// [`FifoRadixQueue::ahead`] can name the events that come next (the run loop
/// prefetches what they will touch).
pub struct FifoRadixQueue<E> {
    last: u64,
    len: usize,
    /// The next events in pop order, with their times; every one of them is at or
    /// before `last`, and every event in a bucket after it.
    front: VecDeque<(u64, E)>,
    /// Bucket (p, v) at index 16·p + v.
    buckets: Vec<Vec<(u64, E)>>,
    /// Bit i is set when bucket i holds events: the lowest is a few instructions away.
    occupied: [u64; 4],
}

/// A bucket with at most this many events is sorted whole into the front.
const SORT: usize = 64;

/// The front is refilled while it holds fewer events than this: how far ahead
/// [`FifoRadixQueue::ahead`] can see.
pub const AHEAD: usize = 16;

/// The most events an empty bucket keeps room for: 256 buckets keep at most
/// 4 MiB of 16-byte entries.
const KEEP: usize = 1024;

impl<E> Default for FifoRadixQueue<E> {
    fn default() -> Self {
        FifoRadixQueue {
            last: 0,
            len: 0,
            front: VecDeque::new(),
            buckets: (0..256).map(|_| Vec::new()).collect(),
            occupied: [0; 4],
        }
    }
}

impl<E> FifoRadixQueue<E> {
    /// The bucket of a time after `last`: 16·p + v, for the highest digit p in
    /// which they differ and the time's digit v there.
    #[inline]
    fn bucket(time: u64, last: u64) -> usize {
        let p = (63 - (time ^ last).leading_zeros()) / 4;
        (p * 16) as usize + ((time >> (p * 4)) & 15) as usize
    }

    #[inline]
    fn put(&mut self, b: usize, time: u64, event: E) {
        self.buckets[b].push((time, event));
        self.occupied[b / 64] |= 1 << (b % 64);
    }

    /// The lowest bucket holding events, if any.
    #[inline]
    fn lowest(&self) -> Option<usize> {
        let w = self.occupied.iter().position(|&w| w != 0)?;
        Some(w * 64 + self.occupied[w].trailing_zeros() as usize)
    }

    /// The event that will be popped after `i` more pops (0: the next one), if the
    /// front holds it; `None` does not mean the queue has no such event.
    #[inline]
    pub fn ahead(&self, i: usize) -> Option<&E> {
        self.front.get(i).map(|(_, e)| e)
    }

    /// Whether an event at `time` would go into the front: it comes among the
    /// events [`FifoRadixQueue::ahead`] shows, or just after them.
    #[inline]
    pub fn is_near(&self, time: SimTime) -> bool {
        time.0 <= self.last
    }

    /// Moves the lowest buckets' events into the front until it holds [`AHEAD`]
    /// events or the buckets are empty.
    fn refill(&mut self) {
        while self.front.len() < AHEAD {
            let Some(b) = self.lowest() else { break };
            self.occupied[b / 64] &= !(1 << (b % 64));
            let mut items = std::mem::take(&mut self.buckets[b]);
            if items.len() <= SORT {
                // The lowest bucket holds the earliest events: sorted (stably, so
                // equal times keep push order) they are the next ones in order.
                items.sort_by_key(|&(t, _)| t);
                self.last = items.last().map_or(self.last, |&(t, _)| t);
                self.front.extend(items.drain(..));
            } else {
                let min = items.iter().map(|(t, _)| *t).min().unwrap_or(self.last);
                self.last = min;
                for (t, e) in items.drain(..) {
                    if t == min {
                        self.front.push_back((t, e));
                    } else {
                        self.put(Self::bucket(t, min), t, e);
                    }
                }
            }
            // Keep the bucket's allocation for the next time it fills, unless it
            // is large: each bucket's largest batch would otherwise stay allocated
            // for the whole run, and over 256 buckets that adds up to many times
            // the events pending (ten times, for Chord's call timeouts).
            if items.capacity() > KEEP {
                items = Vec::new();
            }
            self.buckets[b] = items;
        }
    }
}

impl<E> EventQueue<E> for FifoRadixQueue<E> {
    #[inline]
    fn push(&mut self, time: SimTime, event: E) {
        let t = time.0;
        self.len += 1;
        if t > self.last {
            self.put(Self::bucket(t, self.last), t, event);
        } else if self.front.back().is_none_or(|&(u, _)| u <= t) {
            self.front.push_back((t, event));
        } else if self.front.front().is_some_and(|&(u, _)| u > t) {
            // Before every event shown, as an event at the current time usually is.
            self.front.push_front((t, event));
        } else {
            let at = self.front.partition_point(|&(u, _)| u <= t);
            self.front.insert(at, (t, event));
        }
    }

    #[inline]
    fn pop(&mut self) -> Option<(SimTime, E)> {
        if self.front.len() < AHEAD {
            self.refill();
        }
        let (t, e) = self.front.pop_front()?;
        self.len -= 1;
        Some((SimTime(t), e))
    }

    fn len(&self) -> usize {
        self.len
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
        let fifo = trace::<FifoRadixQueue<u32>>();
        assert_eq!(radix.len(), 20_000);
        assert_eq!(radix, heap);
        assert_eq!(fifo, heap);
        // Equal times come out in push order (ids were pushed in increasing order).
        for w in radix.windows(2) {
            assert!(w[0].0 < w[1].0 || (w[0].0 == w[1].0 && w[0].1 < w[1].1), "{w:?}");
        }
    }
}

#[cfg(test)]
mod ahead {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// What `ahead` shows is what the next pops give, unless a push comes between;
    /// after a pop it shows the next `AHEAD - 1` events whenever that many are pending.
    #[test]
    fn ahead_names_the_next_events_in_pop_order() {
        let mut q = FifoRadixQueue::default();
        let mut reference = HeapQueue::default();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for i in 0..5_000u32 {
            // Wide spreads and many ties, so both the sort and the split refill.
            let t = if i % 3 == 0 { rng.random_range(0..1u64 << 30) } else { rng.random_range(0..100) };
            q.push(SimTime(t), i);
            reference.push(SimTime(t), i);
        }
        while let Some((t, e)) = q.pop() {
            assert_eq!(Some((t, e)), reference.pop());
            let shown: Vec<u32> = (0..AHEAD).map_while(|i| q.ahead(i).copied()).collect();
            assert!(shown.len() >= (AHEAD - 1).min(q.len()), "{} shown of {} pending", shown.len(), q.len());
            if e % 7 == 0 && q.len() > 100 {
                // A push between: at the current time it goes after the events
                // of that time, before the later ones the front shows.
                q.push(t, e + 1_000_000);
                reference.push(t, e + 1_000_000);
                continue;
            }
            // Without a push between, the next pops are exactly what was shown.
            for &want in &shown {
                let next = q.pop().expect("a shown event is pending");
                assert_eq!(next.1, want);
                assert_eq!(Some(next), reference.pop());
            }
        }
        assert_eq!(reference.pop(), None);
    }

    /// A bucket that once held a large batch does not keep room for it once
    /// emptied: the event list's memory follows what is pending, not the largest
    /// batch each bucket ever held.
    #[test]
    fn emptied_buckets_give_back_large_allocations() {
        let mut q = FifoRadixQueue::default();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for round in 0..4u64 {
            // A wide batch far ahead, as timeouts and periodic timers make.
            let base = round << 40;
            for i in 0..50_000u32 {
                q.push(SimTime(base + rng.random_range(0..1u64 << 36)), i);
            }
            while q.pop().is_some() {}
            let room: usize = q.buckets.iter().map(Vec::capacity).sum();
            assert!(room <= 256 * KEEP, "{room} entries kept with nothing pending");
        }
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any interleaving of pushes (never into the past) and pops gives the same
        /// order from every implementation.
        #[test]
        fn same_order_on_any_schedule(ops in prop::collection::vec((0u64..5, any::<bool>(), 0u64..1u64 << 40), 1..400)) {
            let mut a = HeapQueue::default();
            let mut b = FifoRadixQueue::default();
            let mut c = RadixQueue::default();
            let mut now = 0u64;
            for (i, (small, pop, big)) in ops.into_iter().enumerate() {
                if pop {
                    let x = a.pop();
                    prop_assert_eq!(x, b.pop());
                    prop_assert_eq!(x, c.pop());
                    if let Some((t, _)) = x { now = t.0; }
                } else {
                    // Many exact ties, some far-future times.
                    let t = now + if i % 7 == 0 { big } else { small };
                    a.push(SimTime(t), i);
                    b.push(SimTime(t), i);
                    c.push(SimTime(t), i);
                }
                prop_assert_eq!(a.len(), b.len());
            }
            while let Some(x) = a.pop() {
                prop_assert_eq!(Some(x), b.pop());
                prop_assert_eq!(Some(x), c.pop());
            }
            prop_assert!(b.is_empty() && c.is_empty());
        }
    }
}
