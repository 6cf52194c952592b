//! `gridnut`: Gnutella adapted to OGSA grid services (Talia and Trunfio, "A P2P
//! Grid Services-Based Protocol: Design and Evaluation", Euro-Par 2004, LNCS 3149).
//!
//! In an OGSA grid a peer is a grid service and every message exchange is a
//! service invocation, far costlier than writing to a Gnutella socket. Gridnut keeps
//! Gnutella's logic but changes its physical layer: a peer buffers the messages
//! destined to the same neighbour and delivers them merged, in one invocation,
//! instead of one invocation per message.
//!
//! The logical protocol here is exactly `flooding` (Gnutella 0.4 Query/QueryHit,
//! TTL, GUID duplicate suppression, hits back along the reverse path, expired
//! queries dropped); both share its code. The physical layer: a node that sends a
//! logical message to neighbour u appends it to its out-buffer for u. The first
//! message into an empty buffer arms a flush `window` later; the buffer leaves as one
//! Exchange when that timer fires, or at once when it holds `batch` messages (the
//! armed timer is then cancelled). With `window = "0s"`
//! every logical message leaves at once as its own exchange, and the run is the
//! same as `flooding`'s event for event. The receiver handles an exchange's logical
//! messages in order, exactly as flooding would.
//!
//! Accounting: `messages_total` and `messages_exchange` count physical exchanges
//! (what costs a service invocation), and a node's load counts the exchanges it
//! serves. An exchange may carry the messages of several queries: each of its k
//! logical messages charges 1/k of it to its own query, so `messages_per_query` is
//! the physical cost per query (summed over queries it gives the exchanges) and sits
//! below flooding's by the merge. The logical count is `logical_messages`, and the
//! saving is `merge_ratio` = logical_messages / exchanges.
//!
//! Simplifications, named:
//! - The paper builds Gridnut on Gnutella's network-discovery task and measures the
//!   time a peer takes to discover the network; here the same buffering carries
//!   Query/QueryHit resource discovery over a static overlay, with no Ping/Pong and
//!   no connection management.
//! - When a buffer leaves is the model's choice, `delivery`:
//!   - `"window"` (the default): a fixed `window` after its first message, or as
//!     soon as it holds `batch`. Every hop then waits the window, even on an idle
//!     link.
//!   - `"transmitter"`: one exchange at a time per neighbour, as a transmitter that
//!     makes a blocking invocation would. A message to an idle neighbour leaves at
//!     once; what is sent while an exchange is under way waits and leaves together
//!     (up to `batch` in one exchange) when it completes, one latency after the
//!     receiver served it. Merging then grows with the load by itself, and an idle
//!     grid behaves as flooding. A lost exchange frees its transmitter only after
//!     the workload's timeout, so under message loss links stay shut that long. The paper's peers deliver a neighbour's buffer in the
//!     next invocation to it; this mode is the closer reading, but the paper's
//!     text was not at hand to settle it.
//! - Merged messages travel side by side: none is combined or dropped in a buffer.
//! - An exchange is one-way and costs the receiver one service time whatever its
//!   size; the invocation's own overhead is whatever `network.latency` and
//!   `network.service_time` say, and the sender never blocks on it.

use std::collections::hash_map::Entry;

use rustc_hash::FxHashMap;
use serde::Deserialize;

use super::flooding::{self, GNUTELLA_COLUMNS, Gnutella, Msg as Logical, TTL_DOC};
use super::{MemoryPart, ParamDoc, ParamError, ProtocolInfo, ProtocolParams, RunFigures, TCP_IP_BYTES};
use crate::engine::{Ctx, Message, NodeId, Protocol, QueryId, ResourceType, SimTime, TimerId};
use crate::metrics::{Column, Metric, Recorder};
use crate::world::World;

/// Gridnut's own columns, then Gnutella's.
const COLUMNS: [Column; 7] = [
    Column::new("exchanges", "exchanges (physical messages)"),
    Column::new("logical_messages", "logical messages"),
    Column::new("logical_queries", "logical Query messages"),
    Column::new("logical_hits", "logical QueryHit messages"),
    Column::new("merge_ratio", "logical messages per exchange"),
    GNUTELLA_COLUMNS[0],
    GNUTELLA_COLUMNS[1],
];

/// When a node's buffer for a neighbour leaves.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// `window` after its first message, or at once when it holds `batch`.
    #[default]
    Window,
    /// A transmitter per neighbour makes one exchange at a time: a message to an
    /// idle neighbour leaves at once, and what is sent while an exchange is under way
    /// waits and leaves together (up to `batch`) when it completes.
    Transmitter,
}

/// `[protocol]` with `name = "gridnut"`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Hops a Query may travel (Gnutella's default is 7).
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    /// How long a buffer waits after its first message before it is delivered; "0s" sends every message at once.
    #[serde(default = "default_window")]
    pub window: SimTime,
    /// A buffer holding this many messages is delivered at once.
    #[serde(default = "default_batch")]
    pub batch: u32,
    /// When a buffer leaves: `window` after its first message, or one exchange at a time per neighbour.
    #[serde(default)]
    pub delivery: Delivery,
}

fn default_ttl() -> u32 {
    7
}
fn default_window() -> SimTime {
    SimTime::from_millis(50)
}
fn default_batch() -> u32 {
    16
}

impl Default for Params {
    fn default() -> Self {
        Params { ttl: default_ttl(), window: default_window(), batch: default_batch(), delivery: Delivery::Window }
    }
}

/// Above this a buffer is in effect unbounded; a larger value is surely a typo.
const MAX_BATCH: u32 = 1_000_000;

impl ProtocolParams for Params {
    type Protocol = Gridnut;

    const INFO: ProtocolInfo = ProtocolInfo {
        name: "gridnut",
        source: "Talia and Trunfio, Euro-Par 2004 (LNCS 3149)",
        summary: "Gnutella flooding whose messages to one neighbour are buffered and delivered merged in one exchange",
        uses_overlay: true,
        extra_columns: &COLUMNS,
        roles: &[],
        keeps_state: false,
        params: &[
            TTL_DOC,
            ParamDoc::new(
                "window",
                "\"50ms\"",
                "how long a buffer waits after its first message before it is delivered; \"0s\" sends every message at once",
            )
            .label("buffering window (s)"),
            ParamDoc::new("batch", "16", "a buffer holding this many messages is delivered at once").label("messages per buffer, at most"),
            ParamDoc::new(
                "delivery",
                "\"window\"",
                "\"window\": a buffer leaves `window` after its first message; \"transmitter\": one exchange at a time per neighbour, the next one carrying what arrived meanwhile",
            ),
        ],
    };

    fn build(&self, _world: &World) -> Gridnut {
        Gridnut {
            logic: Gnutella::new(self.ttl),
            out: Outboxes {
                window: self.window,
                batch: self.batch.max(1) as usize,
                transmitter: self.delivery == Delivery::Transmitter,
                give_up: None,
                buffers: FxHashMap::default(),
                spare: Vec::new(),
                exchanges: 0,
                logical_queries: 0,
                logical_hits: 0,
            },
        }
    }

    fn validate(&self, _run: &RunFigures) -> Result<(), ParamError> {
        flooding::validate_ttl(self.ttl)?;
        if !(1..=MAX_BATCH).contains(&self.batch) {
            return Err(ParamError::new(
                "batch",
                format!("batch {} is out of range; expected 1 ≤ batch ≤ {MAX_BATCH} messages", self.batch),
            ));
        }
        Ok(())
    }

    /// Memory per run: flooding's reverse paths, messages waiting in buffers or in
    /// flight, and the buffers themselves.
    fn memory(&self, run: &RunFigures) -> Vec<MemoryPart> {
        // A message waits up to `window` in its buffer before its latency starts, or
        // with a transmitter up to one exchange's round trip.
        let wait = match self.delivery {
            Delivery::Window => self.window.as_secs_f64(),
            Delivery::Transmitter => 2.0 * run.mean_latency_s,
        };
        let (paths, held) = flooding::gnutella_memory(self.ttl, run, wait);
        let directed_edges = run.nodes as f64 * run.mean_degree.max(1.0);
        vec![
            MemoryPart::new("reverse-path table", "workload.rate × workload.timeout, protocol.ttl", paths),
            MemoryPart::new("messages buffered and in flight", "workload.rate, protocol.ttl, protocol.window", held),
            MemoryPart::new("per-neighbour buffers", "network.nodes", directed_edges * 48.0),
        ]
    }
}

/// The one physical message: the logical messages one node buffered for one
/// neighbour, in the order they were sent.
#[derive(Clone, Debug)]
pub enum Msg {
    /// `epoch` names the exchange to its sender's transmitter (0 with `window`).
    Exchange {
        /// The logical Query and QueryHit messages, in the order they were sent.
        batch: Vec<Logical>,
        /// The exchange's number at its sender's transmitter.
        epoch: u64,
    },
}

#[inline]
fn query_of(m: &Logical) -> QueryId {
    match *m {
        Logical::Query { q, .. } | Logical::Hit { q, .. } => q,
    }
}

impl Message for Msg {
    const KINDS: &'static [&'static str] = &["exchange"];
    fn kind(&self) -> usize {
        0
    }
    /// One TCP segment carrying its Gnutella descriptors one after another: what
    /// merging saves is the TCP/IP headers of all but one.
    fn size(&self) -> Option<u32> {
        let Msg::Exchange { batch, .. } = self;
        // Each descriptor's size as flooding sends it alone, less its own headers.
        let bytes = |m: &Logical| Logical::SIZES[m.kind()] - TCP_IP_BYTES;
        Some(TCP_IP_BYTES.saturating_add(batch.iter().map(bytes).fold(0u32, u32::saturating_add)))
    }
    /// The query of the whole exchange if all its messages belong to one.
    fn query(&self) -> Option<QueryId> {
        let Msg::Exchange { batch, .. } = self;
        let q = query_of(batch.first()?);
        batch.iter().all(|m| query_of(m) == q).then_some(q)
    }
    /// Each logical message counts against its own query.
    fn queries(&self, mut each: impl FnMut(QueryId)) {
        let Msg::Exchange { batch, .. } = self;
        for m in batch {
            each(query_of(m));
        }
    }
}

/// A node's timers for its buffer to neighbour `to`.
#[derive(Clone, Copy, Debug)]
pub enum Timer {
    /// `window` after a buffer got its first message (cancelled if the buffer
    /// fills first).
    Flush {
        /// The neighbour whose buffer leaves.
        to: NodeId,
    },
    /// The exchange `epoch` to `to` has completed (its receiver served it and the
    /// reply came back) or, if it was lost, has timed out: the transmitter is free.
    Done {
        /// The neighbour the exchange went to.
        to: NodeId,
        /// The number of the exchange that completed.
        epoch: u64,
    },
}

/// With `window`, the messages waiting for the flush; with a transmitter, the ones
/// waiting for the exchange under way, which exists exactly as long as the buffer.
struct Buffer {
    msgs: Vec<Logical>,
    /// With a transmitter, the number of the exchange under way.
    epoch: u64,
    /// With `window`, the flush timer; with a transmitter, the give-up timer of
    /// the exchange under way.
    timer: Option<TimerId>,
}

#[inline]
fn link(from: NodeId, to: NodeId) -> u64 {
    (from.0 as u64) << 32 | to.0 as u64
}

/// Every node's out-buffers, one per neighbour with messages waiting.
struct Outboxes {
    window: SimTime,
    batch: usize,
    transmitter: bool,
    /// How long a transmitter waits for a lost exchange before it gives up on it;
    /// `None` when the network loses nothing.
    give_up: Option<SimTime>,
    /// (from, to) → the buffer, only while it holds messages; looked up, never iterated.
    buffers: FxHashMap<u64, Buffer>,
    /// Emptied batches of delivered exchanges, reused for new buffers.
    spare: Vec<Vec<Logical>>,
    /// Exchanges sent, which numbers them.
    exchanges: u64,
    logical_queries: u64,
    logical_hits: u64,
}

impl Outboxes {
    fn push(&mut self, ctx: &mut Ctx<'_, Gridnut>, from: NodeId, to: NodeId, m: Logical) {
        if !self.transmitter && self.window == SimTime::ZERO {
            let mut batch = self.spare.pop().unwrap_or_default();
            batch.push(m);
            self.deliver(ctx, from, to, batch, 0);
            return;
        }
        let spare = &mut self.spare;
        if self.transmitter {
            // An idle transmitter sends at once; a busy one keeps the message for later.
            match self.buffers.entry(link(from, to)) {
                Entry::Occupied(busy) => busy.into_mut().msgs.push(m),
                Entry::Vacant(idle) => {
                    let epoch = self.exchanges + 1;
                    idle.insert(Buffer { msgs: spare.pop().unwrap_or_default(), epoch, timer: None });
                    let mut batch = spare.pop().unwrap_or_default();
                    batch.push(m);
                    self.deliver(ctx, from, to, batch, epoch);
                }
            }
            return;
        }
        let buffer = self.buffers.entry(link(from, to)).or_insert_with(|| Buffer {
            msgs: spare.pop().unwrap_or_default(),
            epoch: 0,
            timer: None,
        });
        if buffer.msgs.is_empty() {
            buffer.timer = Some(ctx.set_timer(from, self.window, Timer::Flush { to }));
        }
        buffer.msgs.push(m);
        if buffer.msgs.len() >= self.batch {
            self.flush(ctx, from, to);
        }
    }

    /// Delivers the buffer from → to, and cancels its flush timer if it has not fired.
    fn flush(&mut self, ctx: &mut Ctx<'_, Gridnut>, from: NodeId, to: NodeId) {
        if let Some(buffer) = self.buffers.remove(&link(from, to)) {
            if let Some(timer) = buffer.timer {
                ctx.cancel_timer(timer);
            }
            self.deliver(ctx, from, to, buffer.msgs, 0);
        }
    }

    /// The transmitter from → to is done with exchange `epoch`: it sends what waited
    /// meanwhile (up to `batch`) as the next exchange, or goes idle.
    fn done(&mut self, ctx: &mut Ctx<'_, Gridnut>, from: NodeId, to: NodeId, epoch: u64) {
        let key = link(from, to);
        let Some(buffer) = self.buffers.get_mut(&key).filter(|b| b.epoch == epoch) else { return };
        // The reply came first: the exchange's give-up timer is not needed.
        if let Some(timer) = buffer.timer.take() {
            ctx.cancel_timer(timer);
        }
        if buffer.msgs.is_empty() {
            if let Some(idle) = self.buffers.remove(&key) {
                self.spare.push(idle.msgs);
            }
            return;
        }
        let rest = if buffer.msgs.len() > self.batch { buffer.msgs.split_off(self.batch) } else { Vec::new() };
        let batch = std::mem::replace(&mut buffer.msgs, rest);
        let epoch = self.exchanges + 1;
        buffer.epoch = epoch;
        self.deliver(ctx, from, to, batch, epoch);
    }

    fn deliver(&mut self, ctx: &mut Ctx<'_, Gridnut>, from: NodeId, to: NodeId, batch: Vec<Logical>, epoch: u64) {
        self.exchanges += 1;
        for m in &batch {
            match m {
                Logical::Query { .. } => self.logical_queries += 1,
                Logical::Hit { .. } => self.logical_hits += 1,
            }
        }
        ctx.send(from, to, Msg::Exchange { batch, epoch });
        if self.transmitter
            && let Some(give_up) = self.give_up
        {
            let timer = ctx.set_timer(from, give_up, Timer::Done { to, epoch });
            if let Some(buffer) = self.buffers.get_mut(&link(from, to)) {
                buffer.timer = Some(timer);
            }
        }
    }
}

/// The gridnut protocol: Gnutella's logic over per-neighbour buffers.
pub struct Gridnut {
    logic: Gnutella,
    out: Outboxes,
}

impl Protocol for Gridnut {
    type Msg = Msg;
    type Timer = Timer;
    const CANCELS_TIMERS: bool = true;

    fn start(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.logic.start(ctx.timeout());
        self.out.give_up = ctx.lossy().then(|| ctx.timeout());
    }

    fn query(&mut self, ctx: &mut Ctx<'_, Self>, q: QueryId, origin: NodeId, want: ResourceType) {
        let out = &mut self.out;
        self.logic.query(ctx, q, origin, want, |ctx, from, to, m| out.push(ctx, from, to, m));
    }

    fn message(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, from: NodeId, msg: Msg) {
        let Msg::Exchange { mut batch, epoch } = msg;
        let out = &mut self.out;
        for m in batch.drain(..) {
            self.logic.message(ctx, at, from, m, |ctx, from, to, m| out.push(ctx, from, to, m));
        }
        out.spare.push(batch);
        if out.transmitter {
            // The invocation returns to the sender's transmitter one latency later.
            let world = ctx.world;
            let back = world.underlay.latency(at, from, ctx.rng());
            ctx.set_timer(from, back, Timer::Done { to: at, epoch });
        }
    }

    fn timer(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, timer: Timer) {
        match timer {
            Timer::Flush { to } => self.out.flush(ctx, at, to),
            Timer::Done { to, epoch } => self.out.done(ctx, at, to, epoch),
        }
    }

    fn state_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(u64, Buffer)>() + 1;
        let logical = std::mem::size_of::<Logical>();
        let spare: usize = self.out.spare.iter().map(|b| b.capacity() * logical + 24).sum();
        self.logic.state_bytes() + self.out.buffers.capacity() * entry + spare
    }

    fn extra_metrics(&self, _recorder: &Recorder, out: &mut Vec<Metric>) {
        let o = &self.out;
        let logical = o.logical_queries + o.logical_hits;
        out.push(Metric::new("exchanges", Some(o.exchanges as f64)));
        out.push(Metric::new("logical_messages", Some(logical as f64)));
        out.push(Metric::new("logical_queries", Some(o.logical_queries as f64)));
        out.push(Metric::new("logical_hits", Some(o.logical_hits as f64)));
        out.push(Metric::new("merge_ratio", (o.exchanges > 0).then(|| logical as f64 / o.exchanges as f64)));
        self.logic.metrics(out);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::engine::{Rate, RunOutput, ServiceTime, SimConfig};
    use crate::protocols::ProtocolSpec;
    use crate::validate::world;
    use crate::workload::{ScriptedQuery, Workload, WorkloadSpec};
    use crate::world::{LatencySpec, Resources, ResourcesSpec, TopologySpec};

    fn run(spec: &ProtocolSpec, w: &World, load: &WorkloadSpec, config: &SimConfig) -> RunOutput {
        let workload = Workload::new(load, w.nodes(), w.resources.types(), config.duration, config.seed);
        spec.run(w, workload, config)
    }

    fn gridnut(ttl: u32, window_ms: u64, batch: u32) -> ProtocolSpec {
        ProtocolSpec::Gridnut(Params {
            ttl,
            window: SimTime::from_millis(window_ms),
            batch,
            delivery: Delivery::Window,
        })
    }

    /// Per query: (first hit, hops, hits, nodes reached, messages).
    fn outcomes(out: &RunOutput) -> Vec<(SimTime, u32, u32, u32, f64)> {
        out.recorder.queries.iter().map(|q| (q.first_hit, q.hops, q.hits, q.reached, q.messages)).collect()
    }

    #[test]
    fn merging_sends_fewer_exchanges_than_logical_messages() {
        let w = world(&TopologySpec::RandomRegular { degree: 4 }, 500, 20, 50, 2, 3);
        let config = SimConfig { timeout: SimTime::from_secs(2), ..SimConfig::new(3, SimTime::from_secs(2)) };
        // 40 queries/s with TTL 4 put ~25 logical messages a second on each link:
        // a 100 ms window holds several.
        let load = WorkloadSpec { rate: Rate(40.0), ..Default::default() };

        let merged = run(&gridnut(4, 100, 16), &w, &load, &config);
        let (exchanges, logical) = (merged.metric("exchanges").unwrap(), merged.metric("logical_messages").unwrap());
        assert!(merged.metric("queries").unwrap() >= 60.0);
        assert!(exchanges > 0.0 && exchanges < logical, "{exchanges} exchanges for {logical} messages");
        assert!(merged.metric("merge_ratio").unwrap() > 1.2, "merge ratio {}", merged.metric("merge_ratio").unwrap());
        assert_eq!(merged.metric("messages_total").unwrap(), exchanges);
        assert_eq!(merged.metric("messages_exchange").unwrap(), exchanges);
        assert_eq!(merged.metric("logical_queries").unwrap() + merged.metric("logical_hits").unwrap(), logical);
        // Each exchange is shared among the queries of its parts, and maintenance is nothing.
        let attributed: f64 = merged.recorder.queries.iter().map(|q| q.messages).sum();
        assert!((attributed - exchanges).abs() < 1e-6, "{attributed} attributed, {exchanges} exchanges");
        assert_eq!(merged.metric("maintenance_messages").unwrap(), 0.0);

        let single = run(&gridnut(4, 0, 16), &w, &load, &config);
        assert!(single.metric("logical_messages").unwrap() > 0.0);
        assert_eq!(single.metric("exchanges").unwrap(), single.metric("logical_messages").unwrap());
        assert_eq!(single.metric("merge_ratio").unwrap(), 1.0);
    }

    #[test]
    fn without_a_window_it_is_flooding_message_for_message() {
        // Uniform latency, loss and exponential service all draw from the network
        // stream: only sends in the very same order keep the two runs together.
        let w = World::build(
            &TopologySpec::RandomRegular { degree: 4 },
            Some(300),
            false,
            &LatencySpec::Uniform { min: SimTime::from_millis(5), max: SimTime::from_millis(50) },
            &ResourcesSpec { types: 20, replicas: 3, ..Default::default() },
            Path::new("."),
            11,
        )
        .expect("a valid world");
        let config = SimConfig {
            timeout: SimTime::from_millis(300),
            service: ServiceTime::Exponential { mean: SimTime::from_millis(2) },
            loss: 0.05,
            ..SimConfig::new(11, SimTime::from_secs(3))
        };
        let load = WorkloadSpec { rate: Rate(30.0), ..Default::default() };
        let flood = run(&ProtocolSpec::Flooding(flooding::Params { ttl: 5, ..Default::default() }), &w, &load, &config);
        let grid = run(&gridnut(5, 0, 16), &w, &load, &config);

        assert!(flood.recorder.queries.len() >= 60);
        assert!(flood.recorder.queries.iter().any(|q| q.succeeded()));
        assert_eq!(outcomes(&grid), outcomes(&flood));
        let flood_sent = flood.metric("messages_query").unwrap() + flood.metric("messages_query_hit").unwrap();
        assert_eq!(grid.metric("logical_queries").unwrap(), flood.metric("messages_query").unwrap());
        assert_eq!(grid.metric("logical_hits").unwrap(), flood.metric("messages_query_hit").unwrap());
        assert_eq!(grid.metric("exchanges").unwrap(), flood_sent);
        assert_eq!(grid.metric("messages_lost").unwrap(), flood.metric("messages_lost").unwrap());
        assert!(grid.metric("expired_drops").unwrap() > 0.0, "a 300 ms timeout cuts some queries short");
        for name in ["duplicate_queries", "expired_drops", "success_rate", "first_hit_latency_p95_ms"] {
            assert_eq!(grid.metric(name).unwrap(), flood.metric(name).unwrap(), "{name}");
        }
        assert_eq!(grid.fingerprint, flood.fingerprint);
    }

    #[test]
    fn each_hop_waits_one_window() {
        // Ring of 20 with 20 ms links: the hit comes back at exactly 2·h·(d + w).
        for (hops, window_ms, expected_ms) in [(5, 0, 200), (5, 30, 500), (5, 80, 1000), (3, 45, 390)] {
            let crate::validate::Compared { got, want } = crate::validate::gridnut_ring_latency(hops, 20, window_ms);
            assert_eq!(want, SimTime::from_millis(expected_ms));
            assert_eq!(got, Some(want), "{hops} hops, window {window_ms} ms");
        }
        // TTL one short of the holder finds nothing.
        let mut w = world(&TopologySpec::Ring {}, 20, 20, 1, 0, 1);
        w.resources = Resources::from_holders(20, vec![vec![5]]);
        let config = SimConfig::new(1, SimTime::from_secs(10));
        let load = WorkloadSpec {
            rate: Rate(0.0),
            script: vec![ScriptedQuery { at: SimTime::ZERO, origin: 0, rtype: 0 }],
            ..Default::default()
        };
        let out = run(&gridnut(4, 30, 16), &w, &load, &config);
        assert!(!out.recorder.queries[0].succeeded(), "5 hops away is beyond TTL 4");
        assert_eq!(out.recorder.queries[0].reached, 9);
    }

    #[test]
    fn an_exchange_belongs_to_a_query_only_if_all_its_messages_do() {
        let (a, b) = (QueryId(1), QueryId(2));
        let query = |q| Logical::Query { q, want: ResourceType(0), ttl: 3, hops: 0, ring: 0 };
        let one = Msg::Exchange { batch: vec![query(a), Logical::Hit { q: a, hops: 2, holder: NodeId(1) }], epoch: 0 };
        let mixed = Msg::Exchange { batch: vec![query(a), query(b), query(a)], epoch: 0 };
        assert_eq!(one.query(), Some(a));
        assert_eq!(mixed.query(), None);
        let mut parts = Vec::new();
        mixed.queries(|q| parts.push(q));
        assert_eq!(parts, [a, b, a]);
    }

    #[test]
    fn a_batch_of_one_is_no_window() {
        let w = world(&TopologySpec::RandomRegular { degree: 4 }, 300, 20, 20, 3, 5);
        let config = SimConfig { timeout: SimTime::from_secs(1), ..SimConfig::new(5, SimTime::from_secs(2)) };
        let load = WorkloadSpec { rate: Rate(30.0), ..Default::default() };
        let none = run(&gridnut(5, 0, 16), &w, &load, &config);
        let one = run(&gridnut(5, 100, 1), &w, &load, &config);
        assert!(none.metric("exchanges").unwrap() > 1000.0);
        for name in
            ["exchanges", "logical_messages", "logical_hits", "messages_total", "duplicate_queries", "success_rate"]
        {
            assert_eq!(one.metric(name).unwrap(), none.metric(name).unwrap(), "{name}");
        }
        assert_eq!(outcomes(&one), outcomes(&none));
        // A full batch leaves at once: its timer still fires, and must do nothing.
        assert!(one.events > none.events);
    }

    #[test]
    fn a_full_batch_leaves_at_once_and_its_timer_does_nothing() {
        // Ring of 10, resource only at node 1, TTL 1, 20 ms links, batch 2, window
        // 100 ms. Two queries from node 0 at t = 0 fill its buffers to 1 and 9, which
        // leave at once; node 1's two hits fill its buffer back, so both answers
        // arrive at 40 ms. A third query at 50 ms starts new buffers: the timers of
        // the delivered ones fire at 100 ms and must leave them alone, so it goes at
        // 150 ms, its lone hit waits 170 → 270 ms and arrives at 290 ms: 240 ms.
        let mut w = world(&TopologySpec::Ring {}, 10, 20, 1, 0, 1);
        w.resources = Resources::from_holders(10, vec![vec![1]]);
        let config = SimConfig::new(1, SimTime::from_secs(10));
        let script = [0, 0, 50]
            .into_iter()
            .map(|ms| ScriptedQuery { at: SimTime::from_millis(ms), origin: 0, rtype: 0 })
            .collect();
        let load = WorkloadSpec { rate: Rate(0.0), script, ..Default::default() };
        let out = run(&gridnut(1, 100, 2), &w, &load, &config);
        let latency: Vec<_> = out.recorder.queries.iter().map(|q| q.latency()).collect();
        assert_eq!(latency, [40, 40, 240].map(|ms| Some(SimTime::from_millis(ms))));
        // Out: 2 full exchanges at 0 ms, 2 single ones at 150 ms; back: 1 full, 1 single.
        assert_eq!(out.metric("exchanges").unwrap(), 6.0);
        assert_eq!(out.metric("logical_queries").unwrap(), 6.0);
        assert_eq!(out.metric("logical_hits").unwrap(), 3.0);
        assert_eq!(out.metric("merge_ratio").unwrap(), 1.5);
    }

    fn transmitter(ttl: u32, batch: u32) -> ProtocolSpec {
        ProtocolSpec::Gridnut(Params { ttl, batch, delivery: Delivery::Transmitter, ..Default::default() })
    }

    #[test]
    fn a_transmitter_on_idle_links_is_flooding() {
        // One holder per type and queries 5 s apart: no link carries a second message
        // while its first is under way, so nothing waits.
        let w = world(&TopologySpec::RandomRegular { degree: 4 }, 300, 20, 10, 1, 7);
        let config = SimConfig { timeout: SimTime::from_secs(2), ..SimConfig::new(7, SimTime::from_secs(60)) };
        let script = (0..12)
            .map(|i| ScriptedQuery { at: SimTime::from_secs(5 * i), origin: 7 * i as u32, rtype: (i % 10) as u32 })
            .collect();
        let load = WorkloadSpec { rate: Rate(0.0), script, ..Default::default() };
        let flood = run(&ProtocolSpec::Flooding(flooding::Params { ttl: 5, ..Default::default() }), &w, &load, &config);
        let sent = run(&transmitter(5, 16), &w, &load, &config);
        assert!(flood.recorder.queries.iter().filter(|q| q.succeeded()).count() >= 6);
        assert_eq!(outcomes(&sent), outcomes(&flood));
        assert_eq!(sent.metric("merge_ratio").unwrap(), 1.0);
    }

    #[test]
    fn a_transmitter_merges_what_arrives_while_its_exchange_is_under_way() {
        let w = world(&TopologySpec::RandomRegular { degree: 4 }, 500, 20, 50, 2, 3);
        let config = SimConfig { timeout: SimTime::from_secs(1), ..SimConfig::new(3, SimTime::from_secs(1)) };
        // ~150 logical messages a query over 2,000 links: at 400 queries/s a link
        // carries ~30 a second, so ~1.2 arrive during an exchange's 40 ms round trip.
        let load = WorkloadSpec { rate: Rate(400.0), ..Default::default() };
        let out = run(&transmitter(4, 16), &w, &load, &config);
        let (exchanges, logical) = (out.metric("exchanges").unwrap(), out.metric("logical_messages").unwrap());
        assert!(exchanges > 0.0 && exchanges < logical, "{exchanges} exchanges for {logical} messages");
        assert!(out.metric("merge_ratio").unwrap() > 1.1, "merge ratio {}", out.metric("merge_ratio").unwrap());
        assert_eq!(out.metric("messages_total").unwrap(), exchanges);
        let attributed: f64 = out.recorder.queries.iter().map(|q| q.messages).sum();
        assert!((attributed - exchanges).abs() < 1e-6, "{attributed} attributed, {exchanges} exchanges");
        // Nearly the same logical flood as flooding: waiting reorders arrivals, so a
        // node may first hear a query by a longer path and forward it fewer hops.
        let flood = run(&ProtocolSpec::Flooding(flooding::Params { ttl: 4, ..Default::default() }), &w, &load, &config);
        let ratio = out.metric("logical_queries").unwrap() / flood.metric("messages_query").unwrap();
        assert!((0.95..=1.0).contains(&ratio), "logical queries {ratio} of flooding's");
    }

    #[test]
    fn a_lost_exchange_frees_its_transmitter_after_the_timeout() {
        let w = world(&TopologySpec::RandomRegular { degree: 4 }, 300, 20, 20, 3, 9);
        let config =
            SimConfig { timeout: SimTime::from_secs(1), loss: 0.02, ..SimConfig::new(9, SimTime::from_secs(20)) };
        let load = WorkloadSpec { rate: Rate(20.0), ..Default::default() };
        let out = run(&transmitter(5, 16), &w, &load, &config);
        assert!(out.metric("messages_lost").unwrap() > 500.0, "{}", out.metric("messages_lost").unwrap());
        // Were a transmitter stuck on a lost exchange, its link would stay shut and
        // the later queries would find less and less.
        let success = |from: u64, to: u64| {
            let qs: Vec<_> = out
                .recorder
                .queries
                .iter()
                .filter(|q| (SimTime::from_secs(from)..SimTime::from_secs(to)).contains(&q.issued))
                .collect();
            qs.iter().filter(|q| q.succeeded()).count() as f64 / qs.len() as f64
        };
        let (early, late) = (success(0, 5), success(15, 20));
        assert!(early > 0.5 && late > 0.9 * early, "success {early:.2} early, {late:.2} late");
    }

    #[test]
    fn bad_values_name_their_key() {
        let ok = Params::default();
        assert_eq!(ok.validate(&RunFigures::on_nodes(10)), Ok(()));
        let e = Params { ttl: 0, ..ok.clone() }.validate(&RunFigures::on_nodes(10)).unwrap_err();
        assert!(e.key == "ttl" && e.message.contains("1 ≤ ttl ≤ 255"), "{e}");
        let e = Params { batch: 0, ..ok.clone() }.validate(&RunFigures::on_nodes(10)).unwrap_err();
        assert!(e.key == "batch" && e.message.contains("1 ≤ batch"), "{e}");
        let table: toml::Table = toml::from_str("name = \"gridnut\"\nwindow = \"-5ms\"").expect("toml");
        let e = ProtocolSpec::from_table(&table).unwrap_err();
        assert_eq!(e.key, "window", "{e}");
        let table: toml::Table = toml::from_str("name = \"gridnut\"\ndelivery = \"smart\"").expect("toml");
        assert_eq!(ProtocolSpec::from_table(&table).unwrap_err().key, "delivery");
        let table: toml::Table = toml::from_str("name = \"gridnut\"").expect("toml");
        assert_eq!(ProtocolSpec::from_table(&table), Ok(ProtocolSpec::Gridnut(Params::default())));
    }
}
