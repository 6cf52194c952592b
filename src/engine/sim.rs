//! One run: the event loop, generic over its protocol.
//!
//! The flow of one message: a handler calls [`Ctx::send`]; the underlay draws a
//! latency, loss may drop it, and an `Arrive` event is queued. On arrival the message
//! joins the receiving node's FIFO queue: its service time is drawn and it completes
//! at max(arrival, when the node is next free) + service; then the protocol's
//! [`Protocol::message`] handler runs. Queueing at
//! busy nodes is what turns a central index into a bottleneck.

use std::borrow::Cow;

use rand::RngExt;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::jobs::{Act, JobEvent, JobRun};
use super::live::{ChurnOp, Liveness};
use super::queue::{EventQueue, FifoRadixQueue};
use crate::base::rng::{Stream, stream};
use crate::base::{NodeId, QueryId, ResourceType, ServiceTime, SimTime};
use crate::compute::SharedPlan;
use crate::dynamics::{Action, Assigned, Choose, Classes, Dynamics, Holdings, Start, Victims};
use crate::metrics::{Metric, Recorder, Window};
use crate::workload::Workload;
use crate::world::World;

/// A protocol message: its accounting kind and the query it works for, if any.
pub trait Message {
    /// Names of the message kinds, used as `messages_<kind>` columns.
    const KINDS: &'static [&'static str];
    /// Index into `KINDS`.
    fn kind(&self) -> usize;
    /// The query this message is part of, if it carries one query's part alone;
    /// `None` for maintenance traffic and for a merged message that carries parts of
    /// several. Accounting goes through [`Message::queries`], which tells the two apart.
    fn query(&self) -> Option<QueryId>;
    /// Bytes on the wire of each kind, aligned with `KINDS`; empty when the protocol
    /// gives no sizes (its byte columns are then empty).
    const SIZES: &'static [u32] = &[];
    /// This message's size in bytes, if known: by default its kind's entry in
    /// `SIZES`. A message whose size varies (a merged batch) overrides it.
    #[inline]
    fn size(&self) -> Option<u32> {
        Self::SIZES.get(self.kind()).copied()
    }
    /// Calls `each` once per query-carrying part of this message: a message that
    /// merges several (one physical send carrying many logical messages) names the
    /// query of each, so that it counts once in `messages_total` and each of its k
    /// parts charges 1/k of a message to its own query. A message naming none is
    /// maintenance. Defaults to [`Message::query`].
    #[inline]
    fn queries(&self, mut each: impl FnMut(QueryId)) {
        if let Some(q) = self.query() {
            each(q);
        }
    }
}

/// A resource-discovery protocol: per-node state lives inside the implementing type
/// (as `Vec`s indexed by `NodeId`), messages and timers are its own types.
pub trait Protocol: Sized {
    /// The messages its nodes send each other.
    type Msg: Message;
    /// What a timer carries, handed back to the protocol when it fires.
    type Timer;
    /// Whether the protocol cancels timers with [`Ctx::cancel_timer`]: only then
    /// does the engine keep, per timer slot, the generation that a cancel checks.
    const CANCELS_TIMERS: bool = false;

    /// Called once at time zero, before any query.
    fn start(&mut self, _ctx: &mut Ctx<'_, Self>) {}
    /// A query for a resource of type `want` is issued at `origin`.
    fn query(&mut self, ctx: &mut Ctx<'_, Self>, q: QueryId, origin: NodeId, want: ResourceType);
    /// Node `at` has served a message from `from`.
    fn message(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, from: NodeId, msg: Self::Msg);
    /// A timer set with [`Ctx::set_timer`] fired at `at`.
    fn timer(&mut self, _ctx: &mut Ctx<'_, Self>, _at: NodeId, _timer: Self::Timer) {}
    /// A timer set with [`Ctx::set_global_timer`] fired: a process of the whole
    /// system (a measurement, a sampler), not of one node.
    fn global_timer(&mut self, _ctx: &mut Ctx<'_, Self>, _timer: Self::Timer) {}
    /// Node `at` has come up: it joins for the first time or again after a downtime
    /// or a crash, with `bootstrap`, an up node drawn at random, as its contact
    /// (`None` when no other node is up). Timers it set before it went down never
    /// fire, so a protocol whose nodes run periodic work starts it again here.
    fn joined(&mut self, _ctx: &mut Ctx<'_, Self>, _at: NodeId, _bootstrap: Option<NodeId>) {}
    /// Node `at` announces a graceful leave: it stays up, sending and receiving,
    /// for `churn.leave_time` (none in a trace replay), then goes down.
    fn leaving(&mut self, _ctx: &mut Ctx<'_, Self>, _at: NodeId) {}
    /// Node `v`'s resources changed (`[resources] changes`), whether it is up or
    /// not: its own view (what a GRIS reports, what its client would send) is new
    /// at once, and [`Ctx::holds`] reads the new state; stored copies elsewhere (an
    /// index, a cache) are the protocol's to update as its design does.
    fn changed(&mut self, _ctx: &mut Ctx<'_, Self>, _v: NodeId) {}
    /// Node `at` has crashed. It is already down, so nothing it would send leaves:
    /// the protocol may update its own bookkeeping, but other nodes learn of the
    /// crash only by the silence that follows.
    fn crashed(&mut self, _ctx: &mut Ctx<'_, Self>, _at: NodeId) {}
    /// The nodes that hold role `name` (one of the protocol's declared roles) now,
    /// for a `[[fault]]` that crashes a role.
    fn role(&self, _name: &str) -> Vec<NodeId> {
        Vec::new()
    }
    /// The protocol's own result columns, appended after the core metrics; the
    /// recorder gives what the engine measured (node loads) so that none is counted twice.
    fn extra_metrics(&self, _recorder: &Recorder, _out: &mut Vec<Metric>) {}
    /// The event `what` at node `at` is a few places ahead in the event list: hint
    /// the processor to load the state its handler will read (with
    /// [`crate::base::prefetch`]), so that the cache misses of the next events
    /// overlap. Only a hint: it must change nothing, and by default it gives none.
    #[inline(always)]
    fn prefetch(&self, _ctx: &Ctx<'_, Self>, _at: NodeId, _what: Ahead) {}
    /// The same event has come nearer, half as many places ahead: hint the state
    /// found through what [`Protocol::prefetch`] loaded (the neighbour list whose
    /// bounds it loaded, say), which reading that is now cheap. A message's event
    /// comes with the message (its arena slot was hinted at the first stage), for
    /// state that only the message locates: an entry keyed by its query.
    #[inline(always)]
    fn prefetch_near(&self, _ctx: &Ctx<'_, Self>, _at: NodeId, _what: Ahead, _msg: Option<&Self::Msg>) {}
    /// Bytes of per-node and per-query state the protocol holds (for `peergrid bench`).
    fn state_bytes(&self) -> usize {
        0
    }
}

/// What an event ahead in the event list will hand its node, for
/// [`Protocol::prefetch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ahead {
    /// A message arrives (or is served).
    Message,
    /// One of the node's timers fires.
    Timer,
}

/// The event whose state the run loop hints (see [`Protocol::prefetch`]), as an
/// index of [`FifoRadixQueue::ahead`] after a pop: the 8th next. Far enough that
/// its loads (~150 ns from DRAM) arrive before it comes, near enough that they are
/// still cached when it does; on aggregation and flooding at 10^6 nodes the 12th
/// and 16th were no faster.
const PREFETCH_FAR: usize = 7;
/// The second stage ([`Protocol::prefetch_near`]): the 4th next event.
const PREFETCH_NEAR: usize = 3;

/// The engine settings of one run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The run seed every random stream of the run is drawn from.
    pub seed: u64,
    /// Queries are issued in [0, duration); the run continues for one `timeout` more
    /// so that the last queries can finish.
    pub duration: SimTime,
    /// Queries issued before this are left out of the per-query metrics.
    pub warmup: SimTime,
    /// How long a query may take before it counts as failed.
    pub timeout: SimTime,
    /// The interval of the time series.
    pub sample_every: SimTime,
    /// How long a node takes to serve one message, unless set per node.
    pub service: ServiceTime,
    /// Probability that the network drops a message.
    pub loss: f64,
    /// The run stops early, with [`RunOutput::overflow`] set, once more events than
    /// this are pending: the memory it may use is spent, typically because nodes
    /// receive messages faster than they serve them.
    pub max_pending: usize,
    /// Churn and scripted faults; static by default.
    pub dynamics: Dynamics,
    /// How nodes replace overlay links lost to churn and faults; `None` keeps the
    /// overlay as built.
    pub repair: Option<Repair>,
    /// Node classes with their own service times, uplinks and churn; none by
    /// default (`service` then serves every node, and uplinks are unlimited).
    pub classes: Classes,
    /// Jobs placed through discovery and run on the nodes; none by default.
    pub jobs: Option<SharedPlan>,
}

/// Overlay repair under churn and faults, as Gnutella clients keep their
/// connections: a node notices a neighbour gone `detect` after it crashed (at
/// once when it leaves gracefully) and drops the link; one left with fewer than
/// its minimum opens links to live nodes drawn from its host cache (uniformly
/// among the nodes up) until it has as many as it started with; a joining node
/// opens that many. A node refuses a link once it has `max_degree`. Each new link
/// costs a connect and an accept message.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Repair {
    /// The fewest links a node keeps before it opens new ones; `None`: half the
    /// links it has in the overlay as built, rounded up, at least 1.
    pub min_degree: Option<u32>,
    /// The most links a node accepts; `None`: twice those it has in the overlay as
    /// built (at least 2).
    pub max_degree: Option<u32>,
    /// How long a crashed neighbour goes unnoticed.
    pub detect: SimTime,
}

impl SimConfig {
    /// The times the recorder measures by.
    pub fn window(&self) -> Window {
        Window { duration: self.duration, warmup: self.warmup, timeout: self.timeout, sample_every: self.sample_every }
    }

    /// A run of `duration` with nothing else set: no warm-up, a timeout as long as the
    /// run, one-second samples, no service time, no loss. Change fields as needed.
    pub fn new(seed: u64, duration: SimTime) -> SimConfig {
        SimConfig {
            seed,
            duration,
            warmup: SimTime::ZERO,
            timeout: duration,
            sample_every: SimTime::from_secs(1),
            service: ServiceTime::Constant(SimTime::ZERO),
            loss: 0.0,
            max_pending: usize::MAX,
            dynamics: Dynamics::default(),
            repair: None,
            classes: Classes::default(),
            jobs: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Arrive,
    Served,
    Timer,
    Query,
    /// A node's session or downtime ends; the index packs a [`ChurnOp`].
    Churn,
    /// The next row of a churn trace; the index is the row.
    Trace,
    /// A scripted fault strikes (index 2i) or ends (2i + 1), or, with index
    /// [`CHANGE`], the next resource change is due.
    Fault,
    /// The node notices that the overlay neighbour in the index is gone.
    Link,
}

/// One pending event packed in 8 bytes (16 with its time in the queue): the kind in
/// the top 3 bits, the node in the next 29, and the arena slot of the message or
/// timer (or the script index of a scripted query) in the low 32.
#[derive(Clone, Copy, Debug)]
struct Event(u64);

/// The index of a `Fault` event that is the next resource change.
const CHANGE: u32 = u32::MAX;

/// Nodes must fit the 29 bits an event has for them.
pub const MAX_NODES: usize = 1 << 29;

impl Event {
    #[inline]
    fn new(kind: Kind, node: NodeId, idx: u32) -> Event {
        debug_assert!((node.0 as usize) < MAX_NODES);
        Event((kind as u64) << 61 | (node.0 as u64) << 32 | idx as u64)
    }
    #[inline]
    fn kind(self) -> Kind {
        const KINDS: [Kind; 8] =
            [Kind::Arrive, Kind::Served, Kind::Timer, Kind::Query, Kind::Churn, Kind::Trace, Kind::Fault, Kind::Link];
        KINDS[(self.0 >> 61) as usize]
    }
    #[inline]
    fn node(self) -> NodeId {
        NodeId((self.0 >> 32) as u32 & ((1 << 29) - 1))
    }
    #[inline]
    fn idx(self) -> u32 {
        self.0 as u32
    }
}

/// Slots for payloads in flight, reused through a free list, so events stay small.
pub(super) struct Arena<T> {
    slots: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Arena<T> {
    pub(super) fn new() -> Self {
        Arena { slots: Vec::new(), free: Vec::new() }
    }
    #[inline]
    pub(super) fn put(&mut self, value: T) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(value);
                i
            }
            None => {
                self.slots.push(Some(value));
                (self.slots.len() - 1) as u32
            }
        }
    }
    /// Frees slot `i` and gives what it held: `None` if it was emptied by
    /// [`Arena::empty`] since it was filled.
    #[inline]
    pub(super) fn free(&mut self, i: u32) -> Option<T> {
        self.free.push(i);
        self.slots[i as usize].take()
    }
    #[inline]
    fn take(&mut self, i: u32) -> T {
        self.free(i).expect("arena slot taken twice")
    }
    /// Empties slot `i` without freeing it (its event still points at it); whether
    /// it held something.
    fn empty(&mut self, i: u32) -> bool {
        self.slots[i as usize].take().is_some()
    }
}

/// A pending timer, as [`Ctx::set_timer`] returns it, to cancel it with
/// [`Ctx::cancel_timer`]. The generation tells a timer from a later one that
/// reuses its slot, so a stale id cancels nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerId {
    slot: u32,
    generation: u32,
}

/// A timer event's arena slot carries this bit when the timer is global (one of
/// [`Ctx::set_global_timer`]); the event's node is then 0.
const GLOBAL: u32 = 1 << 31;

/// Pending timers. A slot is freed only when its event comes due, cancelled or not,
/// so an event never finds its slot reused. For a protocol that cancels timers
/// ([`Protocol::CANCELS_TIMERS`]) each slot also has a generation, counting the
/// timers it has held, which tells a pending timer from a later one in its slot; a
/// protocol that never cancels pays nothing for it.
struct Timers<T> {
    /// The timers; a cancelled one's slot is emptied, and its event dropped when due.
    arena: Arena<T>,
    /// Per slot, with [`Protocol::CANCELS_TIMERS`]; empty otherwise.
    generations: Vec<u32>,
}

impl<T> Timers<T> {
    /// Hints what taking or cancelling the timer in `slot` touches: its slot and,
    /// when timers are cancelled, its generation.
    #[inline(always)]
    fn prefetch(&self, slot: u32) {
        crate::base::prefetch(&self.arena.slots, slot as usize);
        crate::base::prefetch(&self.generations, slot as usize);
    }

    fn new() -> Self {
        Timers { arena: Arena::new(), generations: Vec::new() }
    }

    #[inline]
    fn put(&mut self, timer: T, cancels: bool) -> TimerId {
        let slot = self.arena.put(timer);
        assert!(slot < GLOBAL, "more than 2^31 timers pending");
        if !cancels {
            return TimerId { slot, generation: 0 };
        }
        if slot as usize == self.generations.len() {
            self.generations.push(0);
        }
        TimerId { slot, generation: self.generations[slot as usize] }
    }

    /// The timer of a slot whose event came due, `None` if it was cancelled; the
    /// slot is free again, in its next generation.
    #[inline]
    fn take(&mut self, slot: u32, cancels: bool) -> Option<T> {
        if cancels {
            self.generations[slot as usize] = self.generations[slot as usize].wrapping_add(1);
        }
        self.arena.free(slot)
    }

    fn cancel(&mut self, id: TimerId) -> bool {
        match self.generations.get(id.slot as usize) {
            Some(&g) if g == id.generation => self.arena.empty(id.slot),
            _ => false,
        }
    }
}

struct Envelope<M> {
    from: NodeId,
    msg: M,
}

/// A node's single FIFO server. Messages are served in arrival order, so a message
/// arriving at t starts at max(t, `free_at`) and the whole queue is two numbers: when
/// the server is next free, and how many messages it holds.
#[derive(Default, Clone, Copy)]
struct NodeQueue {
    free_at: u64,
    holding: u32,
}

/// What a protocol handler can do: send, set timers, draw random numbers, read the
/// world, and report query outcomes.
pub struct Ctx<'w, P: Protocol> {
    now: SimTime,
    end: SimTime,
    queue: FifoRadixQueue<Event>,
    messages: Arena<Envelope<P::Msg>>,
    timers: Timers<P::Timer>,
    nodes: Vec<NodeQueue>,
    service: ServiceTime,
    /// Per-node service overrides (e.g. a slower index server), rarely used.
    service_override: Vec<(NodeId, ServiceTime)>,
    /// Node classes: each node's, and each class's service time; empty without
    /// classes.
    class: Assigned,
    /// With uplinks: per node, when its uplink has sent what it was given.
    uplink_free: Vec<u64>,
    loss: f64,
    /// `network.loss`, which a loss fault replaces while it lasts.
    base_loss: f64,
    net_rng: ChaCha8Rng,
    rng: ChaCha8Rng,
    /// Which nodes are up, and what changes it.
    live: Liveness,
    /// With dynamics: per message slot, the stamp of the life of the node whose
    /// queue holds it.
    msg_life: Vec<u32>,
    /// With dynamics: per timer slot, the stamp of the life of the node it was set at.
    timer_life: Vec<u32>,
    /// With overlay repair: each node's links now; empty otherwise.
    links: Vec<Vec<NodeId>>,
    /// Who holds what, when resources change; `None` reads the world's placement.
    holdings: Option<Holdings<'w>>,
    repair: Option<Repair>,
    /// The run's static world.
    pub world: &'w World,
    pub(crate) recorder: Recorder,
    fingerprint: u64,
    events: u64,
    /// With jobs: their state, and when the queries' window ends (the run goes
    /// on while jobs remain, up to `end`).
    jobs: Option<Box<JobRun>>,
    query_end: SimTime,
}

impl<'w, P: Protocol> Ctx<'w, P> {
    /// The current simulated time.
    #[inline]
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// The neighbours of `v` in the overlay: as built, borrowed from the world, or
    /// under overlay repair a copy of its links now. Either way the list does not
    /// borrow the context, so a handler can send to each while it walks them.
    #[inline]
    pub fn neighbours(&self, v: NodeId) -> Cow<'w, [NodeId]> {
        if self.links.is_empty() {
            Cow::Borrowed(self.world.overlay.neighbours(v))
        } else {
            Cow::Owned(self.links[v.index()].clone())
        }
    }

    /// For [`Protocol::prefetch`]: hints the bounds of `v`'s neighbour list and of
    /// its resource list in the world, as built (overlay repair and resource
    /// changes keep their own, which are not hinted).
    #[inline(always)]
    pub fn prefetch_node(&self, v: NodeId) {
        if self.links.is_empty() {
            self.world.overlay.prefetch(v);
        }
        if self.holdings.is_none() {
            self.world.resources.prefetch(v);
        }
    }

    /// For [`Protocol::prefetch`] and [`Protocol::prefetch_near`]: hints what
    /// cancelling timer `id` touches, for a message whose handler will cancel it
    /// (a reply cancels its call's timeout).
    #[inline(always)]
    pub fn prefetch_timer(&self, id: TimerId) {
        self.timers.prefetch(id.slot);
    }

    /// For [`Protocol::prefetch_near`]: hints `v`'s neighbour list and resource
    /// list themselves, after [`Ctx::prefetch_node`] has loaded their bounds.
    #[inline(always)]
    pub fn prefetch_node_near(&self, v: NodeId) {
        if self.links.is_empty() {
            self.world.overlay.prefetch_neighbours(v);
        }
        if self.holdings.is_none() {
            self.world.resources.prefetch_types(v);
        }
    }

    /// Whether node `v` holds a copy of type `t` now.
    #[inline]
    pub fn holds(&self, v: NodeId, t: ResourceType) -> bool {
        match &self.holdings {
            None => self.world.resources.holds(v, t),
            Some(h) => h.holds(v, t),
        }
    }

    /// The types `v` holds now, ascending.
    pub fn resources_of(&self, v: NodeId) -> &[ResourceType] {
        match &self.holdings {
            None => self.world.resources.of_node(v),
            Some(h) => h.of_node(v),
        }
    }

    /// The nodes holding `t` now, ascending (none for a type out of range).
    pub fn holders(&self, t: ResourceType) -> &[NodeId] {
        match &self.holdings {
            None if t.0 < self.world.resources.types() => self.world.resources.holders(t),
            None => &[],
            Some(h) => h.holders(t),
        }
    }

    /// Every node that has held `t` at some time in the run so far, ascending:
    /// where to look for what a stored copy taken at any time may name.
    pub fn ever_held(&self, t: ResourceType) -> &[NodeId] {
        match &self.holdings {
            None => self.holders(t),
            Some(h) => h.ever_held(t),
        }
    }

    /// Whether `v` held `t` at time `at` (no later than now).
    pub fn held_at(&self, v: NodeId, t: ResourceType, at: SimTime) -> bool {
        match &self.holdings {
            None => self.world.resources.holds(v, t),
            Some(h) => h.held_at(v, t, at),
        }
    }

    /// Whether resources change in this run (`[resources] changes`).
    pub fn resources_change(&self) -> bool {
        self.holdings.is_some()
    }

    /// The protocol's own random stream.
    #[inline]
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// Sends `msg` from `from` to `to` through the underlay.
    /// A down node sends nothing: the call does nothing.
    #[inline]
    pub fn send(&mut self, from: NodeId, to: NodeId, msg: P::Msg) {
        if self.live.active && !self.live.up(from) {
            return;
        }
        let mut parts = 0u32;
        msg.queries(|_| parts += 1);
        if parts > 0 {
            // A merged send is one message, shared equally among the queries of its parts.
            let share = 1.0 / parts as f64;
            msg.queries(|q| self.recorder.attribute(q, share));
        }
        let size = msg.size();
        self.recorder.sent(self.now, msg.kind(), parts == 0, size);
        // A sized message first waits its turn at the sender's uplink, then its
        // serialisation time; it is on the wire (and may be lost) after that.
        let mut departs = self.now;
        if let (false, Some(bytes)) = (self.class.uplink_ps.is_empty(), size) {
            let ps = self.class.uplink_ps[from.index()];
            if ps > 0 {
                let free = &mut self.uplink_free[from.index()];
                let took = ((bytes as u128 * ps as u128).div_ceil(1000)).min(u64::MAX as u128) as u64;
                *free = (*free).max(self.now.0).saturating_add(took);
                departs = SimTime(*free);
            }
        }
        if self.loss > 0.0 && self.net_rng.random_bool(self.loss) {
            self.recorder.lost();
            return;
        }
        if self.live.active
            && !self.live.group.is_empty()
            && self.live.group[from.index()] != self.live.group[to.index()]
        {
            self.recorder.lost();
            return;
        }
        let at = departs + self.world.underlay.latency(from, to, &mut self.net_rng);
        let idx = self.messages.put(Envelope { from, msg });
        if self.queue.is_near(at) {
            // It comes among the next few events, too soon for the run loop's
            // look-ahead (with zero latency, next): hint its node's counters now.
            crate::base::prefetch(&self.recorder.handled, to.index());
            crate::base::prefetch(&self.nodes, to.index());
        }
        self.queue.push(at, Event::new(Kind::Arrive, to, idx));
    }

    /// Hands `msg` to `at`'s own service queue, as a request a node makes of a
    /// service it runs itself: no network latency and no loss, and not counted as a
    /// message, but it waits its turn and is served like one (`from` is `at`).
    pub fn submit(&mut self, at: NodeId, msg: P::Msg) {
        if !self.is_up(at) {
            return;
        }
        let idx = self.messages.put(Envelope { from: at, msg });
        self.queue.push(self.now, Event::new(Kind::Arrive, at, idx));
    }

    /// Fires `timer` at node `at` after `delay`, through [`Protocol::timer`].
    /// A timer of a node that goes down before it fires never fires.
    pub fn set_timer(&mut self, at: NodeId, delay: SimTime, timer: P::Timer) -> TimerId {
        let id = self.timers.put(timer, P::CANCELS_TIMERS);
        if self.live.active {
            let slot = id.slot as usize;
            if slot >= self.timer_life.len() {
                self.timer_life.resize(slot + 1, 0);
            }
            self.timer_life[slot] = self.live.stamp(at);
        }
        self.queue.push(self.now + delay, Event::new(Kind::Timer, at, id.slot));
        id
    }

    /// Fires `timer` after `delay` through [`Protocol::global_timer`]: a timer of
    /// the whole system, which belongs to no node. (Its event carries node 0, as
    /// the event-trace fingerprint sees it.)
    pub fn set_global_timer(&mut self, delay: SimTime, timer: P::Timer) -> TimerId {
        let id = self.timers.put(timer, P::CANCELS_TIMERS);
        self.queue.push(self.now + delay, Event::new(Kind::Timer, NodeId(0), id.slot | GLOBAL));
        id
    }

    /// Cancels a pending timer, so that it never fires; returns whether it was
    /// still pending. Its event stays in the event list and is dropped when it
    /// comes due (it still counts in `events` and the fingerprint).
    ///
    /// Only a protocol that declares [`Protocol::CANCELS_TIMERS`] may cancel.
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        assert!(P::CANCELS_TIMERS, "a protocol that cancels timers must set Protocol::CANCELS_TIMERS");
        self.timers.cancel(id)
    }

    /// Gives node `v` its own service time (for instance an index server).
    pub fn set_service_time(&mut self, v: NodeId, service: ServiceTime) {
        self.service_override.retain(|(n, _)| *n != v);
        self.service_override.push((v, service));
    }

    /// A node holding what query `q` wants was found: the holder an answer
    /// names. Protocols whose answers come from particular holders report
    /// them, before the hit, so that a job is placed on a node its query found.
    pub fn report_found(&mut self, q: QueryId, holder: NodeId) {
        if let Some(j) = &mut self.jobs {
            j.found(q, holder);
        }
    }

    /// `count` resources matching query `q` were found, `hops` overlay hops from the
    /// origin; call when the answer reaches the origin.
    pub fn report_hit(&mut self, q: QueryId, hops: u32, count: u32) {
        self.recorder.hit(self.now, q, hops, count);
        if let Some(j) = &mut self.jobs
            && count > 0
            && !self.recorder.expired(self.now, q)
            && let Some(act) = j.hit(q, self.now)
        {
            job_acts(self, [act]);
        }
    }

    /// Declares that this protocol answers from stored state (a cache or an index)
    /// and reports its answers with [`Ctx::report_answer`]: a run in which it gave no
    /// answer then has no `stale_answer_rate`, rather than 0.
    pub fn answers_from_stored_state(&mut self) {
        self.recorder.answers_from_state = true;
    }

    /// Notes an answer to query `q` given from stored state (a cache or an index);
    /// `stale` if it names a resource that no longer matches. `stale_answer_rate` is
    /// the stale fraction of these answers.
    pub fn report_answer(&mut self, q: QueryId, stale: bool) {
        self.recorder.answer(q, stale);
    }

    /// Notes that query `q` reached a node (for `nodes_reached`).
    pub fn report_reached(&mut self, q: QueryId) {
        self.recorder.reached(q);
    }

    /// Whether a message may be lost: `network.loss` above zero, or nodes that
    /// can go down or a partition under churn and faults.
    pub fn lossy(&self) -> bool {
        self.loss > 0.0 || self.live.active
    }

    /// Whether node `v` is up (always, in a run without churn or faults).
    #[inline]
    pub fn is_up(&self, v: NodeId) -> bool {
        self.live.is_up(v)
    }

    /// An up node other than `v`, drawn uniformly, as a bootstrap server would
    /// name one (the contact [`Protocol::joined`] is given); `None` when no other
    /// node is up, and in a run where nodes never go down (nobody needs one there).
    pub fn contact(&mut self, v: NodeId) -> Option<NodeId> {
        if !self.live.active {
            return None;
        }
        self.live.contact(v)
    }

    /// Whether nodes can go down in this run (churn or faults).
    pub fn dynamic(&self) -> bool {
        self.live.active
    }

    /// How long a graceful leaver stays up after it announces its leave (none in
    /// a trace replay).
    pub fn leave_time(&self) -> SimTime {
        self.live.leave_time
    }

    /// How long a query may take before it counts as failed.
    pub fn timeout(&self) -> SimTime {
        self.recorder.timeout()
    }

    /// Queries issued before this are left out of the per-query metrics; a
    /// protocol's own per-query columns should leave them out too (its traffic
    /// counters, like `messages_total`, count the whole run).
    pub fn warmup(&self) -> SimTime {
        self.recorder.warmup()
    }

    /// Resources found so far for query `q` within its timeout: what its origin knows.
    #[inline]
    pub fn hits(&self, q: QueryId) -> u32 {
        self.recorder.queries[q.index()].hits
    }

    /// When query `q` was issued.
    #[inline]
    pub fn issued(&self, q: QueryId) -> SimTime {
        self.recorder.queries[q.index()].issued
    }

    /// True once query `q` is past its timeout: its answers no longer count.
    pub fn expired(&self, q: QueryId) -> bool {
        self.recorder.expired(self.now, q)
    }

    #[inline]
    fn service_of(&self, v: NodeId) -> ServiceTime {
        if !self.service_override.is_empty()
            && let Some((_, s)) = self.service_override.iter().find(|(n, _)| *n == v)
        {
            return *s;
        }
        match self.class.class_of.get(v.index()) {
            None => self.service,
            Some(&k) => self.class.service[k as usize],
        }
    }

    /// Queues a message that has just arrived at `v` behind the ones already there.
    #[inline]
    fn enqueue(&mut self, v: NodeId, idx: u32) {
        let s = self.service_of(v).sample(&mut self.net_rng);
        let now = self.now.0;
        if self.live.active {
            if idx as usize >= self.msg_life.len() {
                self.msg_life.resize(idx as usize + 1, 0);
            }
            self.msg_life[idx as usize] = self.live.stamp(v);
        }
        let node = &mut self.nodes[v.index()];
        let done = node.free_at.max(now).saturating_add(s.0);
        node.free_at = done;
        node.holding += 1;
        let waiting = node.holding - 1;
        if waiting > 0 {
            self.recorder.queue_length(self.now, waiting);
        }
        self.queue.push(SimTime(done), Event::new(Kind::Served, v, idx));
    }
}

/// What a finished run hands back.
pub struct RunOutput {
    /// What the run measured: each query's outcome and the counters behind the columns.
    pub recorder: Recorder,
    /// How many events the run processed (the `events` column).
    pub events: u64,
    /// A hash over (time, kind, node) of every processed event.
    pub fingerprint: u64,
    /// The protocol's own result columns.
    pub extra: Vec<Metric>,
    /// Names of the protocol's message kinds.
    pub kinds: &'static [&'static str],
    /// Memory the run held at its peak, by part (bytes): the most events pending at
    /// once with their payload slots, and the protocol's own state at the end.
    pub memory: RunMemory,
    /// When the run stopped early because more than `SimConfig::max_pending` events
    /// were pending; its metrics then cover only the time before.
    pub overflow: Option<SimTime>,
    /// With jobs: what became of each, in the plan's order.
    pub jobs: Vec<crate::compute::JobRecord>,
}

impl RunOutput {
    /// The value of result column `name` (a core metric, `messages_<kind>`, or
    /// one of the protocol's own), `None` where undefined or not a column.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.recorder
            .finish(self.kinds, self.events)
            .into_iter()
            .chain(self.extra.iter().cloned())
            .find(|m| m.name == name)?
            .value
    }

    /// Whether `name` is a result column of this run.
    pub fn has_metric(&self, name: &str) -> bool {
        self.recorder.finish(self.kinds, self.events).iter().chain(&self.extra).any(|m| m.name == name)
    }
}

/// Where a run's memory went, for `peergrid bench`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunMemory {
    /// The most events pending at once.
    pub peak_pending: usize,
    /// Bytes the event list held at that peak.
    pub event_list_bytes: usize,
    /// Bytes of the message and timer slots the pending events point into.
    pub payload_bytes: usize,
    /// Per-node service queues and counters of the engine and recorder.
    pub engine_node_bytes: usize,
    /// Bytes of the protocol's own state at the end of the run.
    pub protocol_bytes: usize,
}

/// One run of protocol `P` on a world.
pub struct Simulation<'w, P: Protocol> {
    ctx: Ctx<'w, P>,
    protocol: P,
    workload: Workload,
    max_pending: usize,
}

const FP_MUL: u64 = 0x9E37_79B9_7F4A_7C15;

#[inline]
fn fold(h: u64, x: u64) -> u64 {
    (h.rotate_left(23) ^ x).wrapping_mul(FP_MUL)
}

impl<'w, P: Protocol> Simulation<'w, P> {
    /// Sets up a run of `protocol` on `world`, with the workload's first arrivals queued.
    pub fn new(world: &'w World, protocol: P, workload: Workload, config: &SimConfig) -> Self {
        let nodes = world.nodes();
        let end = config.duration.saturating_add(config.timeout);
        let recorder = Recorder::new(nodes, P::Msg::KINDS.len(), config.window());
        let mut ctx = Ctx {
            now: SimTime::ZERO,
            end,
            queue: FifoRadixQueue::default(),
            messages: Arena::new(),
            timers: Timers::new(),
            nodes: if config.service.is_zero() && !config.classes.any_service() {
                Vec::new()
            } else {
                vec![NodeQueue::default(); nodes]
            },
            service: config.service,
            service_override: Vec::new(),
            class: Assigned::default(),
            uplink_free: Vec::new(),
            loss: config.loss,
            base_loss: config.loss,
            net_rng: stream(config.seed, Stream::Network),
            rng: stream(config.seed, Stream::Protocol),
            live: Liveness::new(&config.dynamics, nodes, config.seed),
            msg_life: Vec::new(),
            timer_life: Vec::new(),
            links: Vec::new(),
            holdings: Holdings::new(&config.dynamics.changes, &world.resources, nodes, config.seed),
            repair: if config.dynamics.is_static() { None } else { config.repair },
            world,
            recorder,
            fingerprint: 0,
            events: 0,
            jobs: None,
            query_end: end,
        };
        if let Some(plan) = &config.jobs {
            let mut run = JobRun::new(plan.clone(), stream(config.seed, Stream::JobPlacement));
            for (j, job) in plan.jobs.iter().enumerate() {
                let slot = run.put(JobEvent::Submit(j as u32));
                ctx.queue.push(job.submit, Event::new(Kind::Query, JOB, slot));
            }
            ctx.end = ctx.end.max(plan.end);
            ctx.jobs = Some(Box::new(run));
        }
        for (at, idx) in workload.initial() {
            ctx.queue.push(at, Event::new(Kind::Query, NodeId(0), idx));
        }
        if config.classes != Classes::default() {
            ctx.class = crate::dynamics::classes::assign(&config.classes, nodes, |r| protocol.role(r), config.seed);
            ctx.uplink_free = vec![0; ctx.class.uplink_ps.len()];
        }
        if ctx.live.active {
            begin_dynamics(&mut ctx, &config.dynamics);
        }
        if let Some(h) = &mut ctx.holdings {
            let at = h.gap();
            ctx.queue.push(at, Event::new(Kind::Fault, NodeId(0), CHANGE));
        }
        Simulation { ctx, protocol, workload, max_pending: config.max_pending }
    }

    /// Runs to the end and returns the recorded metrics.
    pub fn run(self) -> RunOutput {
        self.run_both().0
    }

    /// Runs to the end and returns the protocol itself, for tests of its state.
    pub fn run_protocol(self) -> P {
        self.run_both().1
    }

    /// Runs to the end and returns the recorded metrics and the protocol.
    pub fn run_both(mut self) -> (RunOutput, P) {
        let ctx = &mut self.ctx;
        let protocol = &mut self.protocol;
        protocol.start(ctx);
        // Service queues are only needed when some node takes time to serve.
        if ctx.nodes.is_empty() && !ctx.service_override.is_empty() {
            ctx.nodes = vec![NodeQueue::default(); ctx.world.nodes()];
        }
        let mut peak_pending = 0;
        let mut overflow = None;
        while let Some((t, ev)) = ctx.queue.pop() {
            if t > ctx.end || (t > ctx.query_end && ctx.jobs.as_ref().is_some_and(|j| j.outstanding == 0)) {
                break;
            }
            // Sampled once per 1,024 events: cheap, and exact enough for a memory figure.
            if ctx.events & 1023 == 0 {
                peak_pending = peak_pending.max(ctx.queue.len() + 1);
                if ctx.queue.len() >= self.max_pending {
                    overflow = Some(t);
                    break;
                }
            }
            // Hint the state of the events 8 and 4 places on: by the time they come,
            // their loads have arrived, overlapping rather than following each other.
            if let Some(&next) = ctx.queue.ahead(PREFETCH_FAR) {
                ctx.prefetch(protocol, next);
            }
            if let Some(&next) = ctx.queue.ahead(PREFETCH_NEAR) {
                ctx.prefetch_near(protocol, next);
            }
            ctx.now = t;
            ctx.events += 1;
            ctx.fingerprint = fold(fold(ctx.fingerprint, t.0), (ev.kind() as u64) << 32 | ev.node().0 as u64);
            match ev.kind() {
                Kind::Arrive => {
                    if ctx.live.active && !ctx.live.up(ev.node()) {
                        ctx.messages.free(ev.idx());
                        ctx.recorder.lost_dead();
                        continue;
                    }
                    if ctx.nodes.is_empty() {
                        deliver(ctx, protocol, ev.node(), ev.idx());
                        continue;
                    }
                    if ctx.nodes[ev.node().index()].holding == 0 && ctx.service_of(ev.node()).is_zero() {
                        deliver(ctx, protocol, ev.node(), ev.idx());
                    } else {
                        ctx.enqueue(ev.node(), ev.idx());
                    }
                }
                Kind::Served => {
                    let v = ev.node().index();
                    if ctx.live.active && !ctx.live.in_life(ev.node(), ctx.msg_life[ev.idx() as usize]) {
                        // Queued at a node that has crashed since: its queue is gone.
                        ctx.messages.free(ev.idx());
                        ctx.recorder.lost_dead();
                        continue;
                    }
                    ctx.nodes[v].holding -= 1;
                    deliver(ctx, protocol, ev.node(), ev.idx());
                }
                Kind::Timer => {
                    let slot = ev.idx() & !GLOBAL;
                    match ctx.timers.take(slot, P::CANCELS_TIMERS) {
                        Some(timer) if ev.idx() & GLOBAL != 0 => protocol.global_timer(ctx, timer),
                        // A node's timer fires only in the life it was set in.
                        Some(timer)
                            if !ctx.live.active || ctx.live.in_life(ev.node(), ctx.timer_life[slot as usize]) =>
                        {
                            protocol.timer(ctx, ev.node(), timer)
                        }
                        _ => {}
                    }
                }
                Kind::Query if ev.node() == JOB => job_event(ctx, protocol, ev.idx()),
                Kind::Query => {
                    let (origin, want) = self.workload.draw(ev.idx());
                    if let Some((at, idx)) = self.workload.next_arrival(t, ev.idx()) {
                        ctx.queue.push(at, Event::new(Kind::Query, NodeId(0), idx));
                    }
                    // A down node issues no queries.
                    if ctx.live.active && !ctx.live.up(origin) {
                        continue;
                    }
                    let q = ctx.recorder.issue(t, origin, want);
                    protocol.query(ctx, q, origin, want);
                }
                Kind::Churn => churn_event(ctx, protocol, ev.node(), ev.idx()),
                Kind::Trace => trace_event(ctx, protocol, ev.idx()),
                Kind::Fault if ev.idx() == CHANGE => resource_change(ctx, protocol),
                Kind::Fault => fault_event(ctx, protocol, ev.idx()),
                Kind::Link => link_lost(ctx, ev.node(), NodeId(ev.idx())),
            }
        }
        let mut extra = Vec::new();
        self.protocol.extra_metrics(&self.ctx.recorder, &mut extra);
        if let Some(j) = &self.ctx.jobs {
            crate::compute::metrics(&j.plan, &j.records, &j.busy, &mut extra);
        }
        let memory = RunMemory {
            peak_pending,
            event_list_bytes: peak_pending * std::mem::size_of::<(u64, Event)>(),
            payload_bytes: self.ctx.messages.slots.capacity() * std::mem::size_of::<Option<Envelope<P::Msg>>>()
                + self.ctx.timers.arena.slots.capacity() * std::mem::size_of::<Option<P::Timer>>()
                + self.ctx.timers.generations.capacity() * 4,
            engine_node_bytes: self.ctx.nodes.capacity() * std::mem::size_of::<NodeQueue>()
                + self.ctx.recorder.handled.capacity() * 4
                + self.ctx.live.bytes()
                + 4 * (self.ctx.msg_life.capacity() + self.ctx.timer_life.capacity())
                + self.ctx.holdings.as_ref().map_or(0, |h| h.bytes())
                + self.ctx.jobs.as_ref().map_or(0, |j| j.bytes())
                + self.ctx.class.bytes(),
            protocol_bytes: self.protocol.state_bytes(),
        };
        let out = RunOutput {
            overflow,
            memory,
            recorder: self.ctx.recorder,
            events: self.ctx.events,
            fingerprint: self.ctx.fingerprint,
            extra,
            kinds: P::Msg::KINDS,
            jobs: self.ctx.jobs.map(|j| j.records).unwrap_or_default(),
        };
        (out, self.protocol)
    }
}

impl<P: Protocol> Ctx<'_, P> {
    /// Hints the processor to load what `ev` will touch when it comes: its
    /// payload's arena slot, its node's engine state, and (through
    /// [`Protocol::prefetch`]) the protocol's.
    #[inline(always)]
    fn prefetch(&self, protocol: &P, ev: Event) {
        use crate::base::prefetch;
        let v = ev.node().index();
        let what = match ev.kind() {
            Kind::Arrive | Kind::Served => {
                prefetch(&self.messages.slots, ev.idx() as usize);
                prefetch(&self.recorder.handled, v);
                prefetch(&self.nodes, v);
                Ahead::Message
            }
            Kind::Timer => {
                self.timers.prefetch(ev.idx() & !GLOBAL);
                if ev.idx() & GLOBAL != 0 {
                    return;
                }
                Ahead::Timer
            }
            _ => return,
        };
        if self.live.active {
            prefetch(self.live.lives(), v);
        }
        protocol.prefetch(self, ev.node(), what);
    }
}

impl<P: Protocol> Ctx<'_, P> {
    /// The second stage of [`Ctx::prefetch`], half as far ahead.
    #[inline(always)]
    fn prefetch_near(&self, protocol: &P, ev: Event) {
        let (what, msg) = match ev.kind() {
            Kind::Arrive | Kind::Served => {
                let msg = self.messages.slots.get(ev.idx() as usize).and_then(|s| s.as_ref()).map(|e| &e.msg);
                (Ahead::Message, msg)
            }
            Kind::Timer if ev.idx() & GLOBAL == 0 => (Ahead::Timer, None),
            _ => return,
        };
        protocol.prefetch_near(self, ev.node(), what, msg);
    }
}

/// The node field of a `Query` event that is a job's (its index is the slot of
/// the job event).
const JOB: NodeId = NodeId(1);

/// Queues the job layer's events.
fn job_acts<P: Protocol>(ctx: &mut Ctx<'_, P>, acts: impl IntoIterator<Item = Act>) {
    for Act::At(at, e) in acts {
        let Some(j) = &mut ctx.jobs else { return };
        let slot = j.put(e);
        ctx.queue.push(at, Event::new(Kind::Query, JOB, slot));
    }
}

/// How long `bytes` take out of `v`'s uplink, and then to `to`.
fn transfer<P: Protocol>(ctx: &mut Ctx<'_, P>, v: NodeId, to: NodeId, bytes: u64) -> SimTime {
    let ps = ctx.class.uplink_ps.get(v.index()).copied().unwrap_or(0);
    let serialise = SimTime(((bytes as u128 * ps as u128).div_ceil(1000)).min(u64::MAX as u128) as u64);
    let Some(j) = &mut ctx.jobs else { return serialise };
    serialise.saturating_add(ctx.world.underlay.latency(v, to, j.rng()))
}

/// A job's event comes due.
fn job_event<P: Protocol>(ctx: &mut Ctx<'_, P>, protocol: &mut P, slot: u32) {
    let now = ctx.now;
    let Some(e) = ctx.jobs.as_mut().and_then(|j| j.take(slot)) else { return };
    let Some(jobs) = &ctx.jobs else { return };
    let plan = jobs.plan.clone();
    match e {
        JobEvent::Submit(j) => {
            if jobs.ended(j) {
                return;
            }
            let job = plan.jobs[j as usize];
            let Some(want) = job.want else {
                if let Some(r) = &mut ctx.jobs {
                    r.impossible(j, now);
                }
                return;
            };
            if !ctx.is_up(job.origin) {
                // Its origin is down: the try fails at once.
                let act = ctx.jobs.as_mut().and_then(|r| r.origin_down(j, now));
                return job_acts(ctx, act);
            }
            let q = ctx.recorder.issue(now, job.origin, want);
            let timeout = ctx.recorder.timeout();
            let act = ctx.jobs.as_mut().map(|r| r.asked(j, q, now, timeout));
            job_acts(ctx, act);
            protocol.query(ctx, q, job.origin, want);
        }
        JobEvent::Check(j, n) => {
            let act = ctx.jobs.as_mut().and_then(|r| if r.unanswered(j, n) { r.timed_out(j, now) } else { None });
            job_acts(ctx, act);
        }
        JobEvent::Place(j, n) => {
            if !ctx.jobs.as_mut().is_some_and(|r| r.placing(j, n)) {
                return;
            }
            let Some(jobs) = &ctx.jobs else { return };
            let job = plan.jobs[j as usize];
            let Some(want) = job.want else { return };
            // The nodes the answer named, if the protocol says which; else an
            // index's answer: every holder, in an order of its own.
            let named = jobs.candidates(j);
            let live: Vec<NodeId> = if named.is_empty() {
                ctx.holders(want).iter().copied().filter(|&v| ctx.is_up(v)).collect()
            } else {
                named.iter().copied().filter(|&v| ctx.is_up(v) && ctx.holds(v, want)).collect()
            };
            let Some(v) = ctx.jobs.as_mut().and_then(|r| r.choose(&live)) else {
                let act = ctx.jobs.as_mut().and_then(|r| r.fail(j, now));
                return job_acts(ctx, act);
            };
            let at = now.saturating_add(transfer(ctx, job.origin, v, plan.input_bytes));
            let act = ctx.jobs.as_mut().map(|r| r.send(j, v, at));
            job_acts(ctx, act);
        }
        JobEvent::Arrive(j, n) => {
            let Some(v) = jobs.records[j as usize].node.filter(|_| jobs.placed_now(j, n)) else { return };
            let acts = if ctx.is_up(v) {
                ctx.jobs.as_mut().map(|r| r.arrive(j, v, now)).unwrap_or_default()
            } else {
                ctx.jobs.as_mut().and_then(|r| r.fail(j, now)).into_iter().collect()
            };
            job_acts(ctx, acts);
        }
        JobEvent::End(j, n) => {
            let Some(v) = jobs.records[j as usize].node.filter(|_| jobs.placed_now(j, n)) else { return };
            let origin = plan.jobs[j as usize].origin;
            let back = now.saturating_add(transfer(ctx, v, origin, plan.output_bytes));
            let acts = ctx.jobs.as_mut().map(|r| r.end(j, v, now, back)).unwrap_or_default();
            job_acts(ctx, acts);
        }
    }
}

/// The next resource change: the world's copies change, each node touched is
/// told, and the one after is queued.
fn resource_change<P: Protocol>(ctx: &mut Ctx<'_, P>, protocol: &mut P) {
    let Some(h) = &mut ctx.holdings else { return };
    let touched = h.change(ctx.now);
    let next = ctx.now.saturating_add(h.gap());
    if touched[0].is_some() {
        ctx.recorder.resource_changed();
    }
    for v in touched.into_iter().flatten() {
        protocol.changed(ctx, v);
    }
    if next <= ctx.end {
        ctx.queue.push(next, Event::new(Kind::Fault, NodeId(0), CHANGE));
    }
}

/// Puts the run's nodes in their starting states and queues the first churn,
/// trace and fault events, before the protocol starts.
fn begin_dynamics<P: Protocol>(ctx: &mut Ctx<'_, P>, dynamics: &Dynamics) {
    let nodes = ctx.world.nodes() as u32;
    for v in (0..nodes).map(NodeId) {
        let live = &mut ctx.live;
        let Some(l) = &live.lifetimes else { break };
        // A node of a class that does not churn stays up, and is never scheduled.
        if !ctx.class.churns(v) {
            continue;
        }
        let (up, left) = match live.start {
            Start::Equilibrium => l.equilibrium(v, &mut live.rng),
            Start::AllUp => (true, l.session(v, &mut live.rng)),
        };
        if !up {
            live.set_down(v);
        }
        let op = if up { ChurnOp::SessionEnd } else { ChurnOp::Rejoin };
        schedule_churn(ctx, v, left, op);
    }
    if let Some(trace) = ctx.live.trace.clone() {
        for &v in &trace.starts_down {
            ctx.live.set_down(v);
        }
        if let Some(&(at, v, _)) = trace.rows.first() {
            ctx.queue.push(at, Event::new(Kind::Trace, v, 0));
        }
    }
    for (i, f) in dynamics.faults.iter().enumerate() {
        ctx.queue.push(f.at, Event::new(Kind::Fault, NodeId(0), (i as u32) << 1));
    }
    ctx.recorder.track_alive(ctx.live.alive());
    if ctx.repair.is_some() {
        // The overlay as built, less the nodes that start down, whose links are long
        // gone; every node up has since opened links to its target, as on joining.
        let overlay = &ctx.world.overlay;
        let live = &ctx.live;
        ctx.links = (0..nodes)
            .map(|v| overlay.neighbours(NodeId(v)).iter().copied().filter(|&u| live.is_up(u)).collect())
            .collect();
        for v in (0..nodes).map(NodeId) {
            if ctx.live.is_up(v) {
                top_up(ctx, v, true);
            }
        }
    }
}

/// The fewest links `v` keeps, how many it opens links up to, and the most it accepts.
fn degree_bounds<P: Protocol>(ctx: &Ctx<'_, P>, v: NodeId) -> (usize, usize, usize) {
    let built = ctx.world.overlay.neighbours(v).len();
    let min = match ctx.repair.and_then(|r| r.min_degree) {
        Some(m) => m as usize,
        None => built.div_ceil(2).max(1),
    };
    let target = built.max(min);
    let max = match ctx.repair.and_then(|r| r.max_degree) {
        Some(m) => m as usize,
        None => (2 * built).max(2),
    };
    (min, target, max.max(target))
}

/// Opens links from `v` to live nodes from its host cache: up to its target if it
/// has fewer than its minimum (or `joining`, whatever it has).
fn top_up<P: Protocol>(ctx: &mut Ctx<'_, P>, v: NodeId, joining: bool) {
    let (min, target, _) = degree_bounds(ctx, v);
    if !joining && ctx.links[v.index()].len() >= min {
        return;
    }
    // A draw that finds a node already linked, or full, is retried; a host cache of
    // a small live network may run out.
    let mut tries = 4 * target + 8;
    while ctx.links[v.index()].len() < target && tries > 0 {
        tries -= 1;
        let Some(c) = ctx.live.contact(v) else { return };
        if ctx.links[v.index()].contains(&c) || ctx.links[c.index()].len() >= degree_bounds(ctx, c).2 {
            continue;
        }
        ctx.links[v.index()].push(c);
        ctx.links[c.index()].push(v);
        ctx.recorder.connected(ctx.now);
    }
}

/// `u` notices that its link to `v` is dead: `v` crashed, and may have come back
/// since with links of its own.
fn link_lost<P: Protocol>(ctx: &mut Ctx<'_, P>, u: NodeId, v: NodeId) {
    if !ctx.live.is_up(u) || !ctx.links[u.index()].contains(&v) {
        return;
    }
    if ctx.live.is_up(v) && ctx.links[v.index()].contains(&u) {
        // `v` is back and has linked to `u` again: the link is alive.
        return;
    }
    ctx.links[u.index()].retain(|&w| w != v);
    top_up(ctx, u, false);
}

/// Queues churn operation `op` of node `v` after `delay`, making any churn event
/// of `v` queued before stale; one past the end of the run is not queued.
fn schedule_churn<P: Protocol>(ctx: &mut Ctx<'_, P>, v: NodeId, delay: SimTime, op: ChurnOp) {
    let seq = ctx.live.next_seq(v);
    let at = ctx.now.saturating_add(delay);
    if at <= ctx.end {
        ctx.queue.push(at, Event::new(Kind::Churn, v, op.pack(seq)));
    }
}

/// Takes `v` down: its service queue and everything waiting in it are gone, and
/// its neighbours notice after the detection delay (a graceful leaver has closed
/// its links already).
fn go_down<P: Protocol>(ctx: &mut Ctx<'_, P>, v: NodeId) {
    ctx.live.set_down(v);
    if let Some(j) = &mut ctx.jobs {
        let acts = j.down(v, ctx.now);
        job_acts(ctx, acts);
    }
    if !ctx.nodes.is_empty() {
        ctx.nodes[v.index()] = NodeQueue::default();
    }
    ctx.recorder.alive_changed(ctx.now, ctx.live.alive());
    if let Some(r) = ctx.repair {
        let at = ctx.now.saturating_add(r.detect);
        if at <= ctx.end {
            for &u in &ctx.links[v.index()] {
                ctx.queue.push(at, Event::new(Kind::Link, u, v.0));
            }
        }
    }
}

/// A graceful leaver says goodbye on every link: both sides drop it at once, and
/// neighbours left short open new ones.
fn close_links<P: Protocol>(ctx: &mut Ctx<'_, P>, v: NodeId) {
    if ctx.repair.is_none() {
        return;
    }
    for u in std::mem::take(&mut ctx.links[v.index()]) {
        ctx.links[u.index()].retain(|&w| w != v);
        top_up(ctx, u, false);
    }
}

/// Brings `v` up, in a new epoch, and tells the protocol with a bootstrap contact.
fn come_up<P: Protocol>(ctx: &mut Ctx<'_, P>, protocol: &mut P, v: NodeId) {
    ctx.live.set_up(v);
    ctx.recorder.alive_changed(ctx.now, ctx.live.alive());
    if ctx.repair.is_some() {
        // Its old links died with it; it opens new ones from its host cache.
        ctx.links[v.index()].clear();
        top_up(ctx, v, true);
    }
    let bootstrap = ctx.live.contact(v);
    protocol.joined(ctx, v, bootstrap);
}

/// Starts `v`'s next session, or downtime, drawn from its lifetimes (if churn has them).
fn next_period<P: Protocol>(ctx: &mut Ctx<'_, P>, v: NodeId, up: bool) {
    if !ctx.class.churns(v) {
        return;
    }
    let live = &mut ctx.live;
    let Some(l) = &live.lifetimes else { return };
    let (delay, op) = if up {
        (l.session(v, &mut live.rng), ChurnOp::SessionEnd)
    } else {
        (l.downtime(v, &mut live.rng), ChurnOp::Rejoin)
    };
    schedule_churn(ctx, v, delay, op);
}

/// A leave of `v`: graceful with the configured probability (the protocol's
/// `leaving`, then down after `leave_time`, at once if that is zero, as in a trace
/// replay), else a crash. Whether the leave is over, so that the node is now down.
fn leave<P: Protocol>(ctx: &mut Ctx<'_, P>, protocol: &mut P, v: NodeId) -> bool {
    let g = ctx.live.graceful;
    if g > 0.0 && ctx.live.rng.random_bool(g) {
        ctx.live.leaving[v.index()] = true;
        protocol.leaving(ctx, v);
        close_links(ctx, v);
        let delay = ctx.live.leave_time;
        if delay > SimTime::ZERO {
            schedule_churn(ctx, v, delay, ChurnOp::LeaveDone);
            return false;
        }
        go_down(ctx, v);
    } else {
        go_down(ctx, v);
        protocol.crashed(ctx, v);
    }
    true
}

fn churn_event<P: Protocol>(ctx: &mut Ctx<'_, P>, protocol: &mut P, v: NodeId, idx: u32) {
    let (op, seq) = ChurnOp::unpack(idx);
    if !ctx.live.current(v, seq) {
        return;
    }
    match op {
        ChurnOp::SessionEnd => {
            if leave(ctx, protocol, v) {
                next_period(ctx, v, false);
            }
        }
        ChurnOp::LeaveDone => {
            go_down(ctx, v);
            next_period(ctx, v, false);
        }
        ChurnOp::Rejoin => {
            come_up(ctx, protocol, v);
            next_period(ctx, v, true);
        }
    }
}

fn trace_event<P: Protocol>(ctx: &mut Ctx<'_, P>, protocol: &mut P, row: u32) {
    let Some(trace) = ctx.live.trace.clone() else { return };
    let (_, v, up) = trace.rows[row as usize];
    if let Some(&(at, next, _)) = trace.rows.get(row as usize + 1)
        && at <= ctx.end
    {
        ctx.queue.push(at, Event::new(Kind::Trace, next, row + 1));
    }
    if ctx.live.held[v.index()] || up == ctx.live.up(v) {
        return;
    }
    if up {
        come_up(ctx, protocol, v);
    } else {
        leave(ctx, protocol, v);
    }
}

/// The nodes a crash takes down, in the order they go.
fn victims<P: Protocol>(ctx: &mut Ctx<'_, P>, protocol: &P, who: &Victims) -> Vec<NodeId> {
    match who {
        Victims::Nodes(list) => list.clone(),
        Victims::Role(name) => protocol.role(name),
        Victims::Fraction { fraction, choose } => {
            let mut up = ctx.live.up_nodes().to_vec();
            let count = ((fraction * ctx.world.nodes() as f64).round() as usize).min(up.len());
            match choose {
                Choose::Random => {
                    // From the up nodes in id order, so that the draw does not depend
                    // on the order churn left them in.
                    up.sort_unstable();
                    up.partial_shuffle(&mut ctx.live.fault_rng, count).0.to_vec()
                }
                Choose::Degree => {
                    let overlay = &ctx.world.overlay;
                    up.sort_unstable_by_key(|&v| (std::cmp::Reverse(overlay.neighbours(v).len()), v));
                    up.truncate(count);
                    up
                }
            }
        }
    }
}

fn fault_event<P: Protocol>(ctx: &mut Ctx<'_, P>, protocol: &mut P, idx: u32) {
    let (i, ends) = ((idx >> 1) as usize, idx & 1 == 1);
    let fault = ctx.live.faults[i].clone();
    let until = match &fault.action {
        Action::Crash { recover, .. } => *recover,
        Action::Partition { until, .. } | Action::Loss { until, .. } => *until,
    };
    if !ends && let Some(at) = until {
        ctx.queue.push(at, Event::new(Kind::Fault, NodeId(0), idx | 1));
    }
    match fault.action {
        Action::Crash { victims: who, .. } if !ends => {
            let mut held = Vec::new();
            for v in victims(ctx, protocol, &who) {
                if ctx.live.held[v.index()] {
                    continue;
                }
                ctx.live.held[v.index()] = true;
                ctx.live.next_seq(v);
                held.push(v);
                if ctx.live.up(v) {
                    go_down(ctx, v);
                    protocol.crashed(ctx, v);
                }
            }
            ctx.live.victims[i] = held;
        }
        Action::Crash { .. } => {
            for v in std::mem::take(&mut ctx.live.victims[i]) {
                ctx.live.held[v.index()] = false;
                come_up(ctx, protocol, v);
                next_period(ctx, v, true);
            }
        }
        Action::Partition { groups, .. } if !ends => {
            // Balanced groups: the nodes in a random order, dealt round the groups.
            let n = ctx.world.nodes();
            let mut order: Vec<u32> = (0..n as u32).collect();
            order.shuffle(&mut ctx.live.fault_rng);
            let mut group = vec![0u16; n];
            for (rank, &v) in order.iter().enumerate() {
                group[v as usize] = (rank % groups as usize) as u16;
            }
            ctx.live.group = group;
        }
        Action::Partition { .. } => ctx.live.group = Vec::new(),
        Action::Loss { value, .. } if !ends => ctx.loss = value,
        Action::Loss { .. } => ctx.loss = ctx.base_loss,
    }
}

#[inline]
fn deliver<P: Protocol>(ctx: &mut Ctx<'_, P>, protocol: &mut P, at: NodeId, idx: u32) {
    let env = ctx.messages.take(idx);
    ctx.recorder.handled(ctx.now, at);
    protocol.message(ctx, at, env.from, env.msg);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_stay_small() {
        assert_eq!(std::mem::size_of::<Event>(), 8);
        // What the event list stores per pending event: its time and the event.
        assert_eq!(std::mem::size_of::<(u64, Event)>(), 16);
        for kind in [Kind::Arrive, Kind::Served, Kind::Timer, Kind::Query, Kind::Churn, Kind::Trace, Kind::Fault] {
            let e = Event::new(kind, NodeId(MAX_NODES as u32 - 1), u32::MAX);
            assert_eq!((e.kind(), e.node(), e.idx()), (kind, NodeId(MAX_NODES as u32 - 1), u32::MAX));
        }
    }

    use crate::base::Rate;
    use crate::workload::{ScriptedQuery, WorkloadSpec};
    use crate::world::TopologySpec;

    /// A ring of 10 nodes with 10 ms links, one resource type on one node.
    fn ring() -> World {
        crate::validate::world(&TopologySpec::Ring {}, 10, 10, 1, 1, 1)
    }

    fn idle(world: &World) -> Workload {
        Workload::new(
            &WorkloadSpec { rate: Rate(0.0), ..Default::default() },
            world.nodes(),
            1,
            SimTime::from_secs(10),
            1,
        )
    }

    /// Messages of two kinds, 100 and 40 bytes; the second carries a query.
    #[derive(Clone, Copy)]
    enum Wire {
        Ping,
        Ask(QueryId),
    }

    impl Message for Wire {
        const KINDS: &'static [&'static str] = &["ping", "ask"];
        const SIZES: &'static [u32] = &[100, 40];
        fn kind(&self) -> usize {
            match self {
                Wire::Ping => 0,
                Wire::Ask(_) => 1,
            }
        }
        fn query(&self) -> Option<QueryId> {
            match *self {
                Wire::Ping => None,
                Wire::Ask(q) => Some(q),
            }
        }
    }

    /// Asks every neighbour of a query's origin; with `ping`, every node pings its
    /// successor once a second; records which timers fired and when.
    #[derive(Default)]
    struct Probe {
        ping: bool,
        fired: Vec<(&'static str, SimTime)>,
        cancelled: Vec<bool>,
        stale: Option<TimerId>,
    }

    impl Protocol for Probe {
        type Msg = Wire;
        type Timer = &'static str;
        const CANCELS_TIMERS: bool = true;

        fn start(&mut self, ctx: &mut Ctx<'_, Self>) {
            if self.ping {
                for v in 0..ctx.world.nodes() as u32 {
                    ctx.set_timer(NodeId(v), SimTime::from_secs(1), "ping");
                }
                return;
            }
            let a = ctx.set_timer(NodeId(3), SimTime::from_secs(1), "a");
            ctx.set_timer(NodeId(3), SimTime::from_secs(2), "b");
            ctx.set_global_timer(SimTime::from_secs(3), "global");
            self.cancelled.push(ctx.cancel_timer(a));
            // Cancelling twice finds nothing pending.
            self.cancelled.push(ctx.cancel_timer(a));
            self.stale = Some(a);
        }

        fn query(&mut self, ctx: &mut Ctx<'_, Self>, q: QueryId, origin: NodeId, _: ResourceType) {
            // The neighbours borrow the world, so the loop can send.
            for &to in ctx.neighbours(origin).iter() {
                ctx.send(origin, to, Wire::Ask(q));
            }
        }

        fn message(&mut self, _: &mut Ctx<'_, Self>, _: NodeId, _: NodeId, _: Wire) {}

        fn timer(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, timer: &'static str) {
            self.fired.push((timer, ctx.now()));
            match timer {
                "ping" if ctx.now() < SimTime::from_secs(10) => {
                    ctx.send(at, NodeId((at.0 + 1) % ctx.world.nodes() as u32), Wire::Ping);
                    ctx.set_timer(at, SimTime::from_secs(1), "ping");
                }
                "b" => {
                    // "a"'s and "b"'s slots are free again, and "c" and "d" take them:
                    // "a"'s stale id must cancel neither.
                    let c = ctx.set_timer(at, SimTime::from_secs(5), "c");
                    let d = ctx.set_timer(at, SimTime::from_secs(6), "d");
                    let stale = self.stale.expect("set at start");
                    assert!(c.slot == stale.slot || d.slot == stale.slot, "a slot is reused");
                    self.cancelled.push(ctx.cancel_timer(stale));
                }
                _ => {}
            }
        }

        fn global_timer(&mut self, ctx: &mut Ctx<'_, Self>, timer: &'static str) {
            self.fired.push((timer, ctx.now()));
        }
    }

    #[test]
    fn a_cancelled_timer_never_fires_and_its_stale_id_cancels_nothing_later() {
        let w = ring();
        let p =
            Simulation::new(&w, Probe::default(), idle(&w), &SimConfig::new(1, SimTime::from_secs(10))).run_protocol();
        let s = SimTime::from_secs;
        assert_eq!(p.fired, vec![("b", s(2)), ("global", s(3)), ("c", s(7)), ("d", s(8))]);
        // The first cancel found "a" pending; the second, and the stale one, did not.
        assert_eq!(p.cancelled, vec![true, false, false]);
    }

    #[test]
    fn a_cancelled_timer_still_counts_as_an_event_when_it_comes_due() {
        let w = ring();
        let out = Simulation::new(&w, Probe::default(), idle(&w), &SimConfig::new(1, SimTime::from_secs(10))).run();
        // a (cancelled), b, global, c, d.
        assert_eq!(out.events, 5);
    }

    /// Node 0 sends three 100-byte pings to node 1 at time zero, node 2 one;
    /// node 1 records when it has served each.
    #[derive(Default)]
    struct Burst {
        served: Vec<(NodeId, SimTime)>,
    }

    impl Protocol for Burst {
        type Msg = Wire;
        type Timer = ();

        fn start(&mut self, ctx: &mut Ctx<'_, Self>) {
            for _ in 0..3 {
                ctx.send(NodeId(0), NodeId(1), Wire::Ping);
            }
            ctx.send(NodeId(2), NodeId(1), Wire::Ping);
        }
        fn query(&mut self, _: &mut Ctx<'_, Self>, _: QueryId, _: NodeId, _: ResourceType) {}
        fn message(&mut self, ctx: &mut Ctx<'_, Self>, _: NodeId, from: NodeId, _: Wire) {
            self.served.push((from, ctx.now()));
        }
    }

    #[test]
    fn a_sized_send_waits_at_the_senders_uplink_and_a_class_serves_at_its_own_pace() {
        use crate::dynamics::{ClassSpec, Classes, Uplink};
        let w = ring();
        let class = |text: &str| toml::from_str::<ClassSpec>(text).expect("a class");
        // Node 0 sends at 80 kbit/s (10 ms a ping), every other node at 1 Mbit/s
        // (0.8 ms); node 1 takes 5 ms a message, the others none.
        let list = vec![
            class("name = \"modem\"\nnodes = [0]\nuplink = \"80kbit/s\""),
            class("name = \"server\"\nnodes = [1]\nservice_time = \"5ms\""),
        ];
        let mut config = SimConfig::new(1, SimTime::from_secs(1));
        config.classes = Classes::check(config.service, Uplink::Fixed(1e6), &list, 10, &[]).expect("valid");
        let p = Simulation::new(&w, Burst::default(), idle(&w), &config).run_protocol();
        let ms = |x: f64| SimTime::from_secs_f64(x / 1e3);
        // Node 2's ping leaves at 0.8 ms and arrives at 10.8; node 0's leave at 10,
        // 20 and 30 ms and arrive 10 ms later; node 1 serves each for 5 ms in turn.
        assert_eq!(
            p.served,
            vec![(NodeId(2), ms(15.8)), (NodeId(0), ms(25.0)), (NodeId(0), ms(35.0)), (NodeId(0), ms(45.0))]
        );
    }

    #[test]
    fn a_send_to_every_neighbour_and_sizes_give_bytes() {
        let w = ring();
        let script = vec![ScriptedQuery { at: SimTime::from_secs(1), origin: 4, rtype: 0 }];
        let workload = Workload::new(
            &WorkloadSpec { rate: Rate(0.0), script, ..Default::default() },
            w.nodes(),
            1,
            SimTime::from_secs(10),
            1,
        );
        let mut config = SimConfig::new(1, SimTime::from_secs(10));
        config.warmup = SimTime::from_secs(2);
        let out = Simulation::new(&w, Probe { ping: true, ..Probe::default() }, workload, &config).run();
        // Every node pings at 1, 2, ..., 9 s: 90 pings of 100 bytes, and the query's
        // two asks of 40 bytes.
        assert_eq!(out.metric("messages_ask"), Some(2.0));
        assert_eq!(out.metric("messages_ping"), Some(90.0));
        assert_eq!(out.metric("bytes_total"), Some(90.0 * 100.0 + 2.0 * 40.0));
        // Measured over [2 s, 10 s): pings at 2..=9 s, one per node per second.
        assert_eq!(out.metric("maintenance_messages_per_node_s"), Some(1.0));
        assert_eq!(out.metric("maintenance_bytes_per_node_s"), Some(100.0));
    }

    #[test]
    fn flooding_sends_gnutella_sized_queries() {
        let w = ring();
        let mut config = SimConfig::new(1, SimTime::from_secs(10));
        config.warmup = SimTime::from_secs(2);
        let script = vec![ScriptedQuery { at: SimTime::from_secs(1), origin: 4, rtype: 0 }];
        let workload = Workload::new(
            &WorkloadSpec { rate: Rate(0.0), script, ..Default::default() },
            w.nodes(),
            1,
            SimTime::from_secs(10),
            1,
        );
        let spec = crate::protocols::ProtocolSpec::Flooding(crate::protocols::flooding::Params {
            ttl: 2,
            ..Default::default()
        });
        let out = spec.run(&w, workload, &config);
        assert_eq!(out.metric("messages_query"), Some(4.0));
        assert_eq!(out.metric("messages_query_hit"), Some(0.0));
        assert_eq!(out.metric("bytes_total"), Some(4.0 * 98.0));
        assert_eq!(out.metric("maintenance_bytes_per_node_s"), Some(0.0));
    }

    /// Cancels a timer without declaring that it cancels timers.
    struct Undeclared;

    impl Protocol for Undeclared {
        type Msg = Wire;
        type Timer = ();
        fn start(&mut self, ctx: &mut Ctx<'_, Self>) {
            let id = ctx.set_timer(NodeId(0), SimTime::from_secs(1), ());
            ctx.cancel_timer(id);
        }
        fn query(&mut self, _: &mut Ctx<'_, Self>, _: QueryId, _: NodeId, _: ResourceType) {}
        fn message(&mut self, _: &mut Ctx<'_, Self>, _: NodeId, _: NodeId, _: Wire) {}
    }

    #[test]
    #[should_panic(expected = "CANCELS_TIMERS")]
    fn a_protocol_must_declare_that_it_cancels_timers() {
        let w = ring();
        Simulation::new(&w, Undeclared, idle(&w), &SimConfig::new(1, SimTime::from_secs(10))).run();
    }
}

#[cfg(test)]
mod dynamics_tests {
    use super::*;
    use crate::base::Rate;
    use crate::dynamics::{Churn, Fault, Lifetime, Source, Trace};
    use crate::workload::WorkloadSpec;
    use crate::world::TopologySpec;

    #[derive(Clone, Copy)]
    struct Ping;

    impl Message for Ping {
        const KINDS: &'static [&'static str] = &["ping"];
        fn kind(&self) -> usize {
            0
        }
        fn query(&self) -> Option<QueryId> {
            None
        }
    }

    /// Every node pings every other (`all`) or its successor once a second, and
    /// restarts its pings when it joins; records what runs where.
    #[derive(Default)]
    struct Chatter {
        all: bool,
        /// (node, time) of every timer that fired.
        fired: Vec<(NodeId, SimTime)>,
        /// (from, to, time) of every message served.
        served: Vec<(NodeId, NodeId, SimTime)>,
        /// (node, time, what) of every join ('j'), graceful leave ('l') and crash ('c').
        changes: Vec<(NodeId, SimTime, char)>,
    }

    impl Protocol for Chatter {
        type Msg = Ping;
        type Timer = ();

        fn start(&mut self, ctx: &mut Ctx<'_, Self>) {
            for v in 0..ctx.world.nodes() as u32 {
                ctx.set_timer(NodeId(v), SimTime::from_secs(1), ());
            }
        }
        fn query(&mut self, _: &mut Ctx<'_, Self>, _: QueryId, _: NodeId, _: ResourceType) {}
        fn message(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, from: NodeId, _: Ping) {
            assert!(ctx.is_up(at), "a down node handles nothing");
            self.served.push((from, at, ctx.now()));
        }
        fn timer(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, _: ()) {
            assert!(ctx.is_up(at), "a down node fires no timers");
            self.fired.push((at, ctx.now()));
            let n = ctx.world.nodes() as u32;
            if self.all {
                for to in (0..n).filter(|&to| to != at.0) {
                    ctx.send(at, NodeId(to), Ping);
                }
            } else {
                ctx.send(at, NodeId((at.0 + 1) % n), Ping);
            }
            ctx.set_timer(at, SimTime::from_secs(1), ());
        }
        fn joined(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, bootstrap: Option<NodeId>) {
            if let Some(b) = bootstrap {
                assert!(b != at && ctx.is_up(b), "a bootstrap contact is another up node");
            }
            self.changes.push((at, ctx.now(), 'j'));
            ctx.set_timer(at, SimTime::from_secs(1), ());
        }
        fn crashed(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId) {
            assert!(!ctx.is_up(at));
            self.changes.push((at, ctx.now(), 'c'));
        }
        fn leaving(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId) {
            assert!(ctx.is_up(at));
            self.changes.push((at, ctx.now(), 'l'));
        }
    }

    fn ring(nodes: u32) -> World {
        crate::validate::world(&TopologySpec::Ring {}, nodes, 10, 1, 1, 1)
    }

    fn idle(world: &World, secs: u64) -> Workload {
        Workload::new(
            &WorkloadSpec { rate: Rate(0.0), ..Default::default() },
            world.nodes(),
            1,
            SimTime::from_secs(secs),
            1,
        )
    }

    fn run(world: &World, p: Chatter, secs: u64, dynamics: Dynamics) -> (RunOutput, Chatter) {
        let config = SimConfig { dynamics, ..SimConfig::new(3, SimTime::from_secs(secs)) };
        let mut config = config;
        config.timeout = SimTime::ZERO;
        Simulation::new(world, p, idle(world, secs), &config).run_both()
    }

    fn crash(at_ms: u64, nodes: &[u32], recover_ms: Option<u64>) -> Fault {
        Fault {
            at: SimTime::from_millis(at_ms),
            action: Action::Crash {
                victims: Victims::Nodes(nodes.iter().map(|&v| NodeId(v)).collect()),
                recover: recover_ms.map(SimTime::from_millis),
            },
        }
    }

    #[test]
    fn a_crashed_node_handles_and_sends_nothing_and_messages_to_it_are_counted() {
        let w = ring(10);
        let dynamics = Dynamics { churn: None, faults: vec![crash(4_500, &[3], None)], ..Dynamics::default() };
        let (out, p) = run(&w, Chatter::default(), 10, dynamics);
        let s = SimTime::from_millis(4_500);
        assert!(p.fired.iter().all(|&(v, t)| v != NodeId(3) || t < s), "no timer of node 3 after its crash");
        assert!(p.served.iter().all(|&(from, to, t)| (from != NodeId(3) && to != NodeId(3)) || t < s));
        // Node 2 pings node 3 at 5, 6, ..., 9 s (the run ends before the 10 s ping
        // arrives): five messages reach a dead node.
        assert_eq!(out.metric("messages_lost_dead"), Some(5.0));
        assert_eq!(p.changes, vec![(NodeId(3), s, 'c')]);
        // Nine nodes ping from 5 s on; nine messages a second reach live nodes but for node 3's.
        assert_eq!(out.metric("messages_ping"), Some(10.0 * 4.0 + 9.0 * 6.0));
    }

    #[test]
    fn a_recovered_node_runs_again_but_its_old_timers_never_fire() {
        let w = ring(10);
        // Down from 4.5 s to 6.2 s: its timer chain of before the crash is dead, and
        // `joined` starts a new one at 7.2 s.
        let dynamics = Dynamics { churn: None, faults: vec![crash(4_500, &[3], Some(6_200))], ..Dynamics::default() };
        let (out, p) = run(&w, Chatter::default(), 10, dynamics);
        let times: Vec<u64> = p.fired.iter().filter(|(v, _)| *v == NodeId(3)).map(|(_, t)| t.0 / 1_000_000).collect();
        assert_eq!(times, vec![1_000, 2_000, 3_000, 4_000, 7_200, 8_200, 9_200]);
        let ms = SimTime::from_millis;
        assert_eq!(p.changes, vec![(NodeId(3), ms(4_500), 'c'), (NodeId(3), ms(6_200), 'j')]);
        // Node 2's pings at 5 and 6 s find it down.
        assert_eq!(out.metric("messages_lost_dead"), Some(2.0));
        let a = out.metric("availability").expect("a window");
        assert!((a - (1.0 - 0.1 * 1.7 / 10.0)).abs() < 1e-9, "{a}");
    }

    #[test]
    fn messages_across_a_partition_are_lost_until_it_heals() {
        let w = ring(10);
        let partition = Fault {
            at: SimTime::from_millis(500),
            action: Action::Partition { groups: 2, until: Some(SimTime::from_millis(1_500)) },
        };
        let chatter = Chatter { all: true, ..Chatter::default() };
        let (out, p) = run(&w, chatter, 3, Dynamics { churn: None, faults: vec![partition], ..Dynamics::default() });
        // At 1 s every node sends to the nine others: only pairs of one group get through.
        let first: Vec<(u32, u32)> =
            p.served.iter().filter(|m| m.2 < SimTime::from_millis(1_500)).map(|m| (m.0.0, m.1.0)).collect();
        assert_eq!(first.len(), 2 * 5 * 4, "two groups of five");
        let mut side = [None; 10];
        for &(a, b) in &first {
            // Whoever reaches whom: the relation splits the nodes into two classes.
            let class = side[a as usize].or(side[b as usize]).unwrap_or(a);
            side[a as usize] = Some(class);
            side[b as usize] = Some(class);
        }
        for &(a, b) in &first {
            assert_eq!(side[a as usize], side[b as usize]);
        }
        assert_eq!(out.metric("messages_lost"), Some(50.0));
        // At 2 s, healed: all 90 arrive.
        let healed =
            p.served.iter().filter(|m| m.2 >= SimTime::from_millis(1_500) && m.2 < SimTime::from_millis(2_500));
        assert_eq!(healed.count(), 90);
    }

    fn exponential(mean_s: f64) -> Lifetime {
        Lifetime::Exponential { mean: mean_s }
    }

    fn churn(session: Lifetime, downtime: Lifetime, start: Start, graceful: f64) -> Dynamics {
        Dynamics {
            churn: Some(Churn {
                source: Source::Distributions { session, downtime, heterogeneous: false, start },
                graceful,
                leave_time: SimTime::from_secs(2),
            }),
            faults: Vec::new(),
            ..Dynamics::default()
        }
    }

    #[test]
    fn an_equilibrium_start_keeps_the_alive_fraction_at_the_availability_from_the_first_second() {
        let w = ring(4_000);
        let dynamics = churn(exponential(30.0), exponential(10.0), Start::Equilibrium, 0.0);
        let mut config = SimConfig { dynamics, ..SimConfig::new(5, SimTime::from_secs(200)) };
        config.timeout = SimTime::ZERO;
        config.sample_every = SimTime::from_secs(10);
        let out = Simulation::new(&w, Chatter::default(), idle(&w, 200), &config).run();
        // s / (s + d) = 0.75; the alive count is binomial, sd √(4000·0.75·0.25) ≈ 27.
        for row in out.recorder.series() {
            let f = row.nodes_alive as f64 / 4_000.0;
            assert!((f - 0.75).abs() < 0.025, "at {} s: {f}", row.time_s);
        }
        let a = out.metric("availability").expect("a window");
        assert!((a - 0.75).abs() < 0.01, "{a}");
    }

    #[test]
    fn sessions_observed_in_a_run_have_the_configured_mean() {
        let w = ring(500);
        // Weibull k = 2, mean 10 s: λ = 10 / Γ(1.5).
        let session = Lifetime::Weibull { shape: 2.0, scale: 10.0 / crate::dynamics::lifetime::gamma(1.5) };
        let dynamics = churn(session, exponential(5.0), Start::AllUp, 0.0);
        let (_, p) = run(&w, Chatter::default(), 1_000, dynamics);
        let mut since = vec![Some(SimTime::ZERO); 500];
        let mut lengths = Vec::new();
        for &(v, t, what) in &p.changes {
            match (what, since[v.index()]) {
                ('j', _) => since[v.index()] = Some(t),
                (_, Some(s)) => lengths.push((t - s).as_secs_f64()),
                _ => panic!("node {} left twice", v.0),
            }
            if what != 'j' {
                since[v.index()] = None;
            }
        }
        let mean = lengths.iter().sum::<f64>() / lengths.len() as f64;
        // Some 33,000 sessions of sd 5.2 s: the mean's sd is 0.03 s.
        assert!(lengths.len() > 30_000 && (mean - 10.0).abs() < 0.15, "{} sessions, mean {mean}", lengths.len());
    }

    #[test]
    fn a_graceful_leaver_stays_up_for_its_leave_time() {
        let w = ring(50);
        let dynamics = churn(exponential(20.0), exponential(20.0), Start::AllUp, 1.0);
        let (_, p) = run(&w, Chatter::default(), 200, dynamics);
        // Every leave is announced, none is a crash.
        let leaves: Vec<(NodeId, SimTime)> = p.changes.iter().filter(|c| c.2 == 'l').map(|c| (c.0, c.1)).collect();
        assert!(leaves.len() > 100 && p.changes.iter().all(|c| c.2 != 'c'), "{} leaves", leaves.len());
        // A leaver still serves its predecessor's pings for 2 s (unless that one is down).
        let heard = leaves
            .iter()
            .filter(|&&(v, t)| p.served.iter().any(|m| m.1 == v && m.2 > t && m.2 < t + SimTime::from_secs(2)))
            .count();
        assert!(heard as f64 > 0.3 * leaves.len() as f64, "{heard} of {}", leaves.len());
        // ... and nothing after.
        for &(v, t) in &leaves {
            let back = p.changes.iter().find(|c| c.0 == v && c.2 == 'j' && c.1 > t).map_or(SimTime::MAX, |c| c.1);
            let late = p.served.iter().any(|m| m.1 == v && m.2 > t + SimTime::from_millis(2_010) && m.2 < back);
            assert!(!late, "node {} served after its leave", v.0);
        }
    }

    #[test]
    fn a_trace_replay_reproduces_its_up_and_down_counts_exactly() {
        let w = ring(6);
        let s = SimTime::from_secs;
        let rows = vec![
            (s(2), NodeId(0), false),
            (s(3), NodeId(1), false),
            (s(3), NodeId(4), true),
            (s(5), NodeId(0), true),
            (s(7), NodeId(2), false),
        ];
        let trace = Trace { rows, starts_down: vec![NodeId(4)] };
        let dynamics = Dynamics {
            churn: Some(Churn { source: Source::Trace(std::sync::Arc::new(trace)), graceful: 0.5, leave_time: s(0) }),
            faults: Vec::new(),
            ..Dynamics::default()
        };
        let mut config = SimConfig { dynamics, ..SimConfig::new(3, s(9)) };
        config.timeout = SimTime::ZERO;
        let out = Simulation::new(&w, Chatter::default(), idle(&w, 9), &config).run();
        let alive: Vec<u32> = out.recorder.series().iter().map(|r| r.nodes_alive).collect();
        // Counted at each second's start, after the changes of that instant.
        assert_eq!(alive, vec![5, 5, 4, 4, 4, 5, 5, 4, 4, 4]);
    }

    #[test]
    fn a_node_of_a_class_that_does_not_churn_never_leaves() {
        use crate::dynamics::{ClassSpec, Classes, Uplink};
        let w = ring(20);
        let exp = Lifetime::Exponential { mean: 20.0 };
        let list =
            vec![toml::from_str::<ClassSpec>("name = \"server\"\nnodes = [2, 5]\nchurn = false").expect("a class")];
        let mut config =
            SimConfig { dynamics: churn(exp, exp, Start::AllUp, 0.5), ..SimConfig::new(3, SimTime::from_secs(200)) };
        config.timeout = SimTime::ZERO;
        config.classes = Classes::check(config.service, Uplink::Unlimited, &list, 20, &[]).expect("valid");
        let (_, p) = Simulation::new(&w, Chatter::default(), idle(&w, 200), &config).run_both();
        let moves = |v: u32| p.changes.iter().filter(|c| c.0 == NodeId(v)).count();
        assert_eq!((moves(2), moves(5)), (0, 0), "the servers stay up");
        // The desktops leave and rejoin, about every 20 s each.
        assert!((0..20).filter(|&v| v != 2 && v != 5).all(|v| moves(v) > 0), "{:?}", p.changes.len());
        // And the servers' timers fire every second throughout.
        assert_eq!(p.fired.iter().filter(|f| f.0 == NodeId(5)).count(), 200);
    }

    #[test]
    fn churn_that_never_ends_a_session_is_a_static_run() {
        let w = ring(100);
        let never = churn(Lifetime::Never, exponential(5.0), Start::Equilibrium, 0.5);
        assert!(never.is_static());
        let (a, _) = run(&w, Chatter::default(), 20, Dynamics::default());
        let (b, _) = run(&w, Chatter::default(), 20, never);
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.recorder.finish(a.kinds, a.events), b.recorder.finish(b.kinds, b.events));
    }

    #[test]
    fn a_crash_by_degree_takes_the_best_connected_nodes() {
        let w = crate::validate::world(&TopologySpec::BarabasiAlbert { m: 2 }, 200, 10, 1, 1, 1);
        let mut by_degree: Vec<NodeId> = (0..200u32).map(NodeId).collect();
        by_degree.sort_by_key(|&v| (std::cmp::Reverse(w.overlay.neighbours(v).len()), v));
        let fault = Fault {
            at: SimTime::from_millis(1_500),
            action: Action::Crash {
                victims: Victims::Fraction { fraction: 0.02, choose: Choose::Degree },
                recover: None,
            },
        };
        let (_, p) =
            run(&w, Chatter::default(), 3, Dynamics { churn: None, faults: vec![fault], ..Dynamics::default() });
        let crashed: Vec<NodeId> = p.changes.iter().map(|c| c.0).collect();
        assert_eq!(crashed, by_degree[..4].to_vec());
    }

    /// Looks at every up node's links at `at`: (fewest links, links to down nodes).
    struct Inspector {
        at: SimTime,
        seen: Option<(usize, usize)>,
    }

    impl Protocol for Inspector {
        type Msg = Ping;
        type Timer = ();
        fn start(&mut self, ctx: &mut Ctx<'_, Self>) {
            ctx.set_global_timer(self.at, ());
        }
        fn query(&mut self, _: &mut Ctx<'_, Self>, _: QueryId, _: NodeId, _: ResourceType) {}
        fn message(&mut self, _: &mut Ctx<'_, Self>, _: NodeId, _: NodeId, _: Ping) {}
        fn global_timer(&mut self, ctx: &mut Ctx<'_, Self>, _: ()) {
            let up: Vec<NodeId> = (0..ctx.world.nodes() as u32).map(NodeId).filter(|&v| ctx.is_up(v)).collect();
            let fewest = up.iter().map(|&v| ctx.neighbours(v).len()).min().unwrap_or(0);
            let dead = up.iter().map(|&v| ctx.neighbours(v).iter().filter(|&&u| !ctx.is_up(u)).count()).sum();
            self.seen = Some((fewest, dead));
        }
    }

    #[test]
    fn repair_replaces_links_to_crashed_nodes_once_they_are_noticed() {
        let w = crate::validate::world(&TopologySpec::RandomRegular { degree: 6 }, 1_000, 10, 1, 1, 1);
        let fault = |fraction| Fault {
            at: SimTime::from_secs(10),
            action: Action::Crash { victims: Victims::Fraction { fraction, choose: Choose::Random }, recover: None },
        };
        let look = |at: u64, repair: Option<Repair>| {
            let config = SimConfig {
                dynamics: Dynamics { churn: None, faults: vec![fault(0.3)], ..Dynamics::default() },
                repair,
                ..SimConfig::new(3, SimTime::from_secs(30))
            };
            let inspector = Inspector { at: SimTime::from_secs(at), seen: None };
            let (out, p) = Simulation::new(&w, inspector, idle(&w, 30), &config).run_both();
            (p.seen.expect("looked"), out.metric("messages_connect").unwrap_or(0.0))
        };
        let repair = Some(Repair { min_degree: None, max_degree: None, detect: SimTime::from_secs(5) });
        // Before the crash is noticed, some 30% of the links lead to dead nodes.
        // (700 live nodes × 6 links × 0.3 ≈ 1,260.)
        let ((_, dead), _) = look(12, repair);
        assert!((1_000..1_600).contains(&dead), "{dead} dead links");
        // Once noticed, every node is back above half its six links, all to live nodes.
        let ((fewest, dead), connects) = look(16, repair);
        assert_eq!(dead, 0);
        assert!(fewest >= 3, "{fewest}");
        assert!(connects > 0.0 && connects % 2.0 == 0.0);
        // Without repair the dead links stay.
        let ((_, dead), _) = look(16, None);
        assert!(dead > 1_000, "{dead}");
    }

    #[test]
    fn a_protocol_without_sizes_has_no_byte_counts() {
        let w = crate::validate::world(&TopologySpec::Ring {}, 10, 10, 1, 1, 1);
        let mut config = SimConfig::new(1, SimTime::from_secs(10));
        config.warmup = SimTime::from_secs(2);
        let out = Simulation::new(&w, Chatter::default(), idle(&w, 10), &config).run();
        // Ten nodes ping once a second until the run ends at duration + timeout.
        assert_eq!(out.metric("messages_ping"), Some(200.0));
        assert_eq!(out.metric("bytes_total"), None);
        assert_eq!(out.metric("maintenance_bytes_per_node_s"), None);
        assert_eq!(out.metric("maintenance_messages_per_node_s"), Some(1.0));
    }
}
