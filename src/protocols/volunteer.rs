//! `volunteer`: volunteer computing in the manner of BOINC (Anderson, "BOINC: A
//! System for Public-Resource Computing and Storage", GRID 2004; Anderson et
//! al., "SETI@home", CACM 2002): a project server hands out a batch of work
//! units to volunteers that come and go under the scenario's churn.
//!
//! **Work.** The batch is `units` work units, each `unit_time` of work on the
//! reference CPU; a volunteer of speed s (drawn per node from `speed`) computes
//! one in `unit_time` / s. The server issues `target_results` results (copies) of
//! every unit at the start, and a unit is validated once `min_quorum` of its
//! results agree: a correct result agrees with every other correct one, a wrong
//! one with none; with a quorum of 1 the first result reported is accepted, a
//! wrong one too (`vc_wrong_accepted`). A share `wrong_fraction` of the
//! volunteers, drawn at the start, return wrong results.
//!
//! **The server** (node `server`) keeps a queue of results to send. A volunteer
//! that has nothing to do asks for work; the server sends it the first result
//! in the queue of a unit it has not had a result of (BOINC's one result per
//! host per unit), with the unit's input (`input_bytes`), or tells it there is
//! none. A result not reported by its `deadline` is counted missed, and the
//! server queues another result of its unit. A reported result counts towards
//! its unit if the unit is not yet validated, late or not; one reported for a
//! unit already validated is redundant. Whenever a unit's correct results plus
//! those queued or out fall short of `min_quorum`, the server queues another, up
//! to `max_results` results a unit; a unit that reaches it without a quorum is in
//! error.
//!
//! **Volunteers** report a finished result (with its output, `output_bytes`) and
//! ask for more in the same message, as BOINC clients do, repeating the report
//! with every request until one is answered; one that gets no work,
//! or no answer within `retry`, asks again after `retry`. A volunteer that goes
//! down loses the result it was computing (its deadline will pass); when it
//! comes back it asks for work again.
//!
//! **Super-peers** (`cluster_size` = C > 0): in place of the single server
//! handing out every result, the first node of every run of C consecutive nodes
//! (but the server's own run, which it serves) is a super-peer that relays: its
//! volunteers ask it for work; it hands out results from a local stock, which it
//! refills from the server `chunk` results at a time (a super-peer counts as one
//! host for the one-result-per-host rule, so it never holds two results of a
//! unit), and it forwards its volunteers' reports with its next fetch, at the
//! latest every `retry`. Deadlines run at the server from the moment a result
//! leaves it; a super-peer whose fetch brought nothing tells its volunteers
//! there is no work for `retry` before it fetches again; a super-peer that
//! goes down loses its stock and the reports it held, and its volunteers, finding it silent, ask the server directly until
//! their next request. Super-peers relay and do not compute.

use rand::RngExt;
use serde::Deserialize;

use super::{MemoryPart, ParamDoc, ParamError, ProtocolInfo, ProtocolParams, RunFigures, TCP_IP_BYTES};
use crate::base::Choice;
use crate::engine::{Ctx, Message, NodeId, Protocol, QueryId, ResourceType, SimTime};
use crate::metrics::{Column, Metric, Recorder};
use crate::world::World;

/// `[protocol]` with `name = "volunteer"`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The node that runs the project server.
    #[serde(default)]
    pub server: u32,
    /// Work units in the batch.
    #[serde(default = "default_units")]
    pub units: u32,
    /// Work in a unit, as time on the reference CPU.
    #[serde(default = "default_unit_time")]
    pub unit_time: SimTime,
    /// Each volunteer's speed relative to the reference CPU.
    #[serde(default = "default_speed")]
    pub speed: Choice,
    /// How long a volunteer has to report a result.
    #[serde(default = "default_deadline")]
    pub deadline: SimTime,
    /// Agreeing results that validate a unit.
    #[serde(default = "one")]
    pub min_quorum: u32,
    /// Results of each unit issued at the start.
    #[serde(default = "one")]
    pub target_results: u32,
    /// Results of a unit issued at most before it is in error.
    #[serde(default = "default_max_results")]
    pub max_results: u32,
    /// Share of the volunteers that return wrong results.
    #[serde(default)]
    pub wrong_fraction: f64,
    /// How long a volunteer waits to ask again after no work or no answer.
    #[serde(default = "default_retry")]
    pub retry: SimTime,
    /// Bytes of a unit's input.
    #[serde(default = "default_input")]
    pub input_bytes: u32,
    /// Bytes of a result's output.
    #[serde(default = "default_output")]
    pub output_bytes: u32,
    /// With C > 0, super-peers relay work for runs of C consecutive nodes.
    #[serde(default)]
    pub cluster_size: u32,
    /// Results a super-peer fetches from the server at a time.
    #[serde(default = "default_chunk")]
    pub chunk: u32,
}

fn default_units() -> u32 {
    1000
}
fn default_unit_time() -> SimTime {
    SimTime::from_secs(3600)
}
fn default_speed() -> Choice {
    Choice::Fixed(1.0)
}
fn default_deadline() -> SimTime {
    SimTime::from_secs(4 * 3600)
}
fn one() -> u32 {
    1
}
fn default_max_results() -> u32 {
    8
}
fn default_retry() -> SimTime {
    SimTime::from_secs(600)
}
fn default_input() -> u32 {
    100_000
}
fn default_output() -> u32 {
    10_000
}
fn default_chunk() -> u32 {
    10
}

/// The columns `volunteer` adds.
const COLUMNS: &[Column] = &[
    Column::new("vc_units_validated", "work units validated"),
    Column::new("vc_units_in_error", "work units in error"),
    Column::new("vc_batch_time_s", "time to finish the batch (s)"),
    Column::new("vc_validated_per_hour", "units validated per hour"),
    Column::new("vc_results_reported", "results reported"),
    Column::new("vc_wasted_share", "share of settled results wasted"),
    Column::new("vc_redundant_results", "results reported for units already validated"),
    Column::new("vc_late_results", "results reported after their deadline"),
    Column::new("vc_wrong_results", "wrong results reported"),
    Column::new("vc_wrong_accepted", "units validated with a wrong result (share)"),
    Column::new("vc_deadline_misses", "results that missed their deadline"),
    Column::new("vc_server_load", "server load (messages/s)"),
];

impl ProtocolParams for Params {
    type Protocol = Volunteer;

    const INFO: ProtocolInfo = ProtocolInfo {
        name: "volunteer",
        source: "Anderson, GRID 2004 (BOINC); Anderson et al., CACM 2002 (SETI@home)",
        summary: "a project server hands out work units to churning volunteers: deadlines, re-issue, redundant results with a quorum, wrong results",
        uses_overlay: false,
        extra_columns: COLUMNS,
        roles: &[
            ("server", "the node that runs the project server"),
            ("superpeers", "the super-peers that relay work, with cluster_size"),
        ],
        keeps_state: false,
        params: &[
            ParamDoc::new("server", "0", "the node that runs the project server"),
            ParamDoc::new("units", "1000", "work units in the batch").label("work units"),
            ParamDoc::new("unit_time", "\"1h\"", "work in a unit, as time on the reference CPU").label("unit time (s)"),
            ParamDoc::new(
                "speed",
                "1",
                "each volunteer's speed: a number, { values = [...], weights = [...] } or { min, max }",
            ),
            ParamDoc::new("deadline", "\"4h\"", "how long a volunteer has to report a result before another is issued")
                .label("deadline (s)"),
            ParamDoc::new("min_quorum", "1", "agreeing results that validate a unit").label("minimum quorum"),
            ParamDoc::new("target_results", "1", "results of each unit issued at the start").label("target results"),
            ParamDoc::new("max_results", "8", "results of a unit issued at most before it is in error"),
            ParamDoc::new("wrong_fraction", "0.0", "share of the volunteers that return wrong results")
                .label("share of volunteers returning wrong results"),
            ParamDoc::new("retry", "\"10min\"", "how long a volunteer waits to ask again after no work or no answer"),
            ParamDoc::new("input_bytes", "100000", "bytes of a unit's input, sent with its result"),
            ParamDoc::new("output_bytes", "10000", "bytes of a result's output, sent with its report"),
            ParamDoc::new(
                "cluster_size",
                "0",
                "0: every volunteer asks the server; C > 0: the first node of every run of C consecutive nodes relays work for the others",
            )
            .label("cluster size"),
            ParamDoc::new("chunk", "10", "with super-peers: results a super-peer fetches from the server at a time")
                .label("results per fetch"),
        ],
    };

    fn build(&self, world: &World) -> Volunteer {
        let n = world.nodes();
        Volunteer {
            params: self.clone(),
            server: NodeId(self.server),
            speed: vec![1.0; n],
            wrong: vec![false; n],
            working: vec![None; n],
            asking: vec![0; n],
            answered: vec![true; n],
            held: vec![None; n],
            direct: vec![false; n],
            relays: vec![Relay::default(); n],
            units: vec![Unit::default(); self.units as usize],
            queue: std::collections::VecDeque::new(),
            results: Vec::new(),
            stats: Stats::default(),
        }
    }

    fn validate(&self, run: &RunFigures) -> Result<(), ParamError> {
        if self.server as usize >= run.nodes {
            return Err(ParamError::new(
                "server",
                format!("node {} does not exist; expected < {}", self.server, run.nodes),
            ));
        }
        if !(1..=10_000_000).contains(&self.units) {
            return Err(ParamError::new("units", format!("{} is out of range; expected 1 to 10,000,000", self.units)));
        }
        if self.min_quorum == 0 || self.target_results < self.min_quorum || self.max_results < self.target_results {
            return Err(ParamError::new(
                "target_results",
                format!(
                    "min_quorum {}, target_results {}, max_results {}; expected 1 ≤ min_quorum ≤ target_results ≤ max_results",
                    self.min_quorum, self.target_results, self.max_results
                ),
            ));
        }
        if self.cluster_size == 1 || self.chunk == 0 {
            return Err(ParamError::new(
                if self.chunk == 0 { "chunk" } else { "cluster_size" },
                "expected cluster_size 0 (no super-peers) or at least 2, and chunk at least 1",
            ));
        }
        if !(0.0..=1.0).contains(&self.wrong_fraction) {
            return Err(ParamError::new(
                "wrong_fraction",
                format!("{} is out of range; expected a share from 0 to 1", self.wrong_fraction),
            ));
        }
        if self.speed.min() <= 0.0 {
            return Err(ParamError::new("speed", "expected speeds above 0"));
        }
        for (key, t) in [("unit_time", self.unit_time), ("deadline", self.deadline), ("retry", self.retry)] {
            if t == SimTime::ZERO {
                return Err(ParamError::new(key, "expected a duration above zero"));
            }
        }
        Ok(())
    }

    /// Per unit its counts, per result out its record, per node its state.
    fn memory(&self, run: &RunFigures) -> Vec<MemoryPart> {
        let units = self.units as f64 * (40.0 + 8.0 * self.max_results as f64);
        vec![
            MemoryPart::new("work units and results", "protocol.units", units),
            MemoryPart::new("volunteers", "network.nodes", run.nodes as f64 * 32.0),
        ]
    }
}

/// A work unit at the server.
#[derive(Clone, Debug, Default)]
struct Unit {
    /// Results issued (queued or sent).
    issued: u32,
    /// Results queued or out, not yet reported or missed.
    pending: u32,
    /// Correct results reported while it was open.
    correct: u32,
    /// The volunteers that have had a result of it.
    hosts: Vec<u32>,
    /// Whether it is validated or in error.
    closed: bool,
}

/// A super-peer's relay: results in stock, volunteers waiting, reports held.
#[derive(Clone, Debug, Default)]
struct Relay {
    stock: std::collections::VecDeque<(u32, u32)>,
    waiting: Vec<(NodeId, u32)>,
    reports: Vec<(u32, bool)>,
    /// The fetch in flight (0: none), and the last fetch's number.
    fetching: u32,
    fetches: u32,
    /// After a fetch that brought nothing, it fetches again only after this
    /// (its volunteers get no work until then).
    dry_until: SimTime,
}

/// A result sent to a volunteer.
#[derive(Clone, Copy, Debug)]
struct Out {
    unit: u32,
    /// Whether its deadline has passed without a report.
    missed: bool,
    /// Whether it has been reported.
    reported: bool,
}

/// Figures of the run.
#[derive(Default, Debug)]
struct Stats {
    validated: u32,
    errored: u32,
    finished: Option<SimTime>,
    reported: u64,
    redundant: u64,
    late: u64,
    wrong: u64,
    accepted_wrong: u32,
    missed: u64,
    server_messages: u64,
}

/// Messages between volunteers and the server.
#[derive(Clone, Debug)]
pub enum Msg {
    /// A volunteer asks for work, reporting a finished result if it has one.
    Request {
        /// The result reported and whether it is correct.
        report: Option<(u32, bool)>,
        /// The volunteer's request number, echoed in the answer.
        ask: u32,
        /// Bytes on the wire: the request, and the output reported.
        bytes: u32,
    },
    /// The server sends result `rid` of `unit`, with the unit's input.
    Assign {
        /// The result.
        rid: u32,
        /// Its unit.
        unit: u32,
        /// The request answered.
        ask: u32,
        /// Bytes on the wire: the reply, and the unit's input.
        bytes: u32,
    },
    /// The server has no work for the volunteer.
    NoWork {
        /// The request answered.
        ask: u32,
    },
    /// A super-peer fetches up to `want` results and forwards reports.
    Fetch {
        /// Reports held: result and whether it is correct.
        reports: Vec<(u32, bool)>,
        /// Results wanted.
        want: u32,
        /// The fetch's number.
        seq: u32,
        /// Bytes on the wire: the request, and the outputs reported.
        bytes: u32,
    },
    /// The server's answer to a fetch: results and their units.
    Chunk {
        /// The results.
        results: Vec<(u32, u32)>,
        /// The fetch answered.
        seq: u32,
        /// Bytes on the wire: the reply, and the units' inputs.
        bytes: u32,
    },
}

impl Message for Msg {
    const KINDS: &'static [&'static str] = &["request", "assign", "no_work", "fetch", "chunk"];
    fn kind(&self) -> usize {
        match self {
            Msg::Request { .. } => 0,
            Msg::Assign { .. } => 1,
            Msg::NoWork { .. } => 2,
            Msg::Fetch { .. } => 3,
            Msg::Chunk { .. } => 4,
        }
    }
    fn query(&self) -> Option<QueryId> {
        None
    }
    // A scheduler RPC over HTTP: a request of about 1 kB, with the output when
    // it reports; an answer of about 1 kB, with the input when it assigns.
    fn size(&self) -> Option<u32> {
        Some(match self {
            Msg::Request { bytes, .. }
            | Msg::Assign { bytes, .. }
            | Msg::Fetch { bytes, .. }
            | Msg::Chunk { bytes, .. } => *bytes,
            Msg::NoWork { .. } => TCP_IP_BYTES + RPC_BYTES,
        })
    }
}

/// The volunteers' timers.
#[derive(Clone, Copy, Debug)]
pub enum Timer {
    /// Time to ask for work (request number `ask`, unanswered or answered with none).
    Ask(u32),
    /// The result in progress is done.
    Done(u32),
    /// The project's: result `rid`'s deadline.
    Deadline(u32),
    /// A super-peer's fetch `seq` has had its time.
    Fetch(u32),
    /// A super-peer forwards the reports it holds.
    Flush,
}

/// The volunteer-computing project for one run.
pub struct Volunteer {
    params: Params,
    server: NodeId,
    speed: Vec<f64>,
    wrong: Vec<bool>,
    /// Per volunteer, the result it computes.
    working: Vec<Option<u32>>,
    /// Per volunteer, its latest request's number, whether it was answered,
    /// and whether its next goes to the server directly.
    asking: Vec<u32>,
    /// Per volunteer, the finished result it reports until a request of it
    /// is answered (a request lost on the way loses no report).
    held: Vec<Option<(u32, bool)>>,
    answered: Vec<bool>,
    direct: Vec<bool>,
    /// Per super-peer, its relay.
    relays: Vec<Relay>,
    units: Vec<Unit>,
    /// Units whose next result waits to be sent, first first.
    queue: std::collections::VecDeque<u32>,
    results: Vec<Out>,
    stats: Stats,
}

/// Bytes of a scheduler request or reply without its files.
const RPC_BYTES: u32 = 1000;

impl Volunteer {
    /// `v` asks for work, reporting `report` if it has one: its super-peer,
    /// or the server.
    fn ask(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId, report: Option<(u32, bool)>) {
        if report.is_some() {
            self.held[v.index()] = report;
        }
        let report = self.held[v.index()];
        self.asking[v.index()] += 1;
        self.answered[v.index()] = false;
        let ask = self.asking[v.index()];
        let bytes = TCP_IP_BYTES + RPC_BYTES + if report.is_some() { self.params.output_bytes } else { 0 };
        let to = if self.direct[v.index()] { self.server } else { self.home(v) };
        ctx.send(v, to, Msg::Request { report, ask, bytes });
        ctx.set_timer(v, self.params.retry, Timer::Ask(ask));
    }

    /// Whether `v` is a super-peer.
    fn relays(&self, v: NodeId) -> bool {
        let c = self.params.cluster_size;
        // The server serves its own run of nodes.
        c > 0 && v.0.is_multiple_of(c) && v.0 / c != self.server.0 / c
    }

    /// Where `v` asks for work: its cluster's super-peer, or the server.
    fn home(&self, v: NodeId) -> NodeId {
        let c = self.params.cluster_size;
        if c == 0 {
            return self.server;
        }
        let sp = NodeId(v.0 / c * c);
        if self.relays(sp) { sp } else { self.server }
    }

    /// Super-peer `sp` fetches results for its stock and forwards its reports.
    fn fetch(&mut self, ctx: &mut Ctx<'_, Self>, sp: NodeId) {
        let chunk = self.params.chunk as usize;
        let r = &mut self.relays[sp.index()];
        r.fetches += 1;
        r.fetching = r.fetches;
        let want = chunk.saturating_sub(r.stock.len()).max(r.waiting.len()) as u32;
        let reports = std::mem::take(&mut r.reports);
        let seq = r.fetching;
        let bytes = TCP_IP_BYTES + RPC_BYTES + reports.len() as u32 * self.params.output_bytes;
        ctx.send(sp, self.server, Msg::Fetch { reports, want, seq, bytes });
        ctx.set_timer(sp, self.params.retry, Timer::Fetch(seq));
    }

    /// Super-peer `sp` hands result `(rid, unit)` to volunteer `v` for its request `ask`.
    fn hand(&self, ctx: &mut Ctx<'_, Self>, sp: NodeId, v: NodeId, (rid, unit): (u32, u32), ask: u32) {
        let bytes = TCP_IP_BYTES + RPC_BYTES + self.params.input_bytes;
        ctx.send(sp, v, Msg::Assign { rid, unit, ask, bytes });
    }

    /// A request reaches super-peer `sp` from `v`.
    fn relay(&mut self, ctx: &mut Ctx<'_, Self>, sp: NodeId, v: NodeId, report: Option<(u32, bool)>, ask: u32) {
        let chunk = self.params.chunk as usize;
        let r = &mut self.relays[sp.index()];
        r.reports.extend(report);
        match r.stock.pop_front() {
            Some(result) => self.hand(ctx, sp, v, result, ask),
            None if ctx.now() < r.dry_until => ctx.send(sp, v, Msg::NoWork { ask }),
            None => {
                let waiting = &mut self.relays[sp.index()].waiting;
                waiting.retain(|&(w, _)| w != v);
                waiting.push((v, ask));
            }
        }
        let r = &self.relays[sp.index()];
        if r.fetching == 0 && (!r.waiting.is_empty() || r.reports.len() >= chunk) {
            self.fetch(ctx, sp);
        }
    }

    /// Queues results of `unit` until its correct and pending results reach
    /// the quorum, within `max_results`; closes it in error if it cannot.
    fn top_up(&mut self, ctx: &Ctx<'_, Self>, unit: u32) {
        let (quorum, most) = (self.params.min_quorum, self.params.max_results);
        let u = &mut self.units[unit as usize];
        if u.closed {
            return;
        }
        while u.correct + u.pending < quorum && u.issued < most {
            u.issued += 1;
            u.pending += 1;
            self.queue.push_back(unit);
        }
        if u.correct + u.pending < quorum {
            u.closed = true;
            self.stats.errored += 1;
            self.close(ctx);
        }
    }

    /// A unit closed: the batch is finished when every unit is.
    fn close(&mut self, ctx: &Ctx<'_, Self>) {
        if self.stats.validated + self.stats.errored == self.params.units && self.stats.finished.is_none() {
            self.stats.finished = Some(ctx.now());
        }
    }

    /// The server takes result `rid`'s report: correct or not.
    fn report(&mut self, ctx: &Ctx<'_, Self>, rid: u32, correct: bool) {
        let Some(out) = self.results.get_mut(rid as usize) else { return };
        if out.reported {
            return;
        }
        out.reported = true;
        let (unit, missed) = (out.unit, out.missed);
        self.stats.reported += 1;
        self.stats.wrong += !correct as u64;
        self.stats.late += missed as u64;
        let u = &mut self.units[unit as usize];
        if !missed {
            u.pending -= 1;
        }
        if u.closed {
            self.stats.redundant += 1;
            return;
        }
        u.correct += correct as u32;
        if self.params.min_quorum == 1 && !correct {
            // Alone, a result cannot be checked: a wrong one is accepted.
            u.closed = true;
            self.stats.validated += 1;
            self.stats.accepted_wrong += 1;
            self.close(ctx);
            return;
        }
        if u.correct >= self.params.min_quorum {
            u.closed = true;
            self.stats.validated += 1;
            self.close(ctx);
            return;
        }
        self.top_up(ctx, unit);
    }

    /// The server answers `v`'s request `ask`: the first queued result of a
    /// unit `v` has not had, or no work.
    fn assign(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId, ask: u32) {
        // A volunteer that fell back from its super-peer may hold its results
        // under the super-peer's name: one result per host still.
        let home = self.home(v);
        match self.take_result(ctx, v, home) {
            Some(result) => self.hand(ctx, self.server, v, result, ask),
            None => ctx.send(self.server, v, Msg::NoWork { ask }),
        }
    }

    /// The server sends host `v` the first queued result of a unit `v` has not
    /// had: its number and unit, with its deadline started.
    fn take_result(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId, also: NodeId) -> Option<(u32, u32)> {
        let units = &self.units;
        let fresh = |u: u32| !units[u as usize].hosts.iter().any(|&h| h == v.0 || h == also.0);
        let i = self.queue.iter().position(|&u| fresh(u))?;
        let unit = self.queue.remove(i)?;
        self.units[unit as usize].hosts.push(v.0);
        let rid = self.results.len() as u32;
        self.results.push(Out { unit, missed: false, reported: false });
        // The server's database outlives a crash of its host: deadlines are the
        // project's, not the node's.
        ctx.set_global_timer(self.params.deadline, Timer::Deadline(rid));
        Some((rid, unit))
    }

    /// `v` goes, or comes back: it has lost the result it computed, and as a
    /// super-peer its stock, waiting volunteers and reports (its fetches keep
    /// their numbers, so an answer to one before cannot pass for a new one's).
    fn forget(&mut self, v: NodeId) {
        self.working[v.index()] = None;
        let fetches = self.relays[v.index()].fetches;
        self.relays[v.index()] = Relay { fetches, ..Relay::default() };
    }

    /// Units validated so far.
    pub fn validated(&self) -> u32 {
        self.stats.validated
    }

    /// Per unit, the results reported for it (correct or not, in time or late).
    #[cfg(test)]
    fn reported_per_unit(&self) -> Vec<u32> {
        let mut out = vec![0; self.units.len()];
        for r in self.results.iter().filter(|r| r.reported) {
            out[r.unit as usize] += 1;
        }
        out
    }
}

impl Protocol for Volunteer {
    type Msg = Msg;
    type Timer = Timer;

    fn start(&mut self, ctx: &mut Ctx<'_, Self>) {
        let n = self.speed.len();
        for v in 0..n {
            self.speed[v] = self.params.speed.sample(ctx.rng());
            self.wrong[v] = ctx.rng().random::<f64>() < self.params.wrong_fraction;
        }
        for unit in 0..self.params.units {
            let u = &mut self.units[unit as usize];
            u.issued = self.params.target_results;
            u.pending = self.params.target_results;
            for _ in 0..self.params.target_results {
                self.queue.push_back(unit);
            }
        }
        // Volunteers up at the start ask at moments spread over one retry period.
        let spread = self.params.retry.0.max(1);
        for v in (0..n as u32).map(NodeId) {
            if self.relays(v) && ctx.is_up(v) {
                ctx.set_timer(v, self.params.retry, Timer::Flush);
                continue;
            }
            if v != self.server && ctx.is_up(v) {
                let at = SimTime(ctx.rng().random_range(0..spread));
                self.asking[v.index()] += 1;
                let ask = self.asking[v.index()];
                ctx.set_timer(v, at, Timer::Ask(ask));
            }
        }
    }

    fn query(&mut self, _: &mut Ctx<'_, Self>, _: QueryId, _: NodeId, _: ResourceType) {}

    fn message(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, from: NodeId, msg: Msg) {
        match msg {
            Msg::Request { report, ask, .. } if at != self.server => self.relay(ctx, at, from, report, ask),
            Msg::Request { report, ask, .. } => {
                self.stats.server_messages += 1;
                if let Some((rid, correct)) = report {
                    self.report(ctx, rid, correct);
                }
                self.assign(ctx, from, ask);
            }
            Msg::Fetch { reports, want, seq, .. } => {
                self.stats.server_messages += 1;
                for (rid, correct) in reports {
                    self.report(ctx, rid, correct);
                }
                let results: Vec<(u32, u32)> = (0..want).map_while(|_| self.take_result(ctx, from, from)).collect();
                let bytes = TCP_IP_BYTES + RPC_BYTES + results.len() as u32 * self.params.input_bytes;
                ctx.send(at, from, Msg::Chunk { results, seq, bytes });
            }
            Msg::Chunk { results, seq, .. } => {
                let r = &mut self.relays[at.index()];
                if r.fetching == seq {
                    r.fetching = 0;
                }
                if results.is_empty() {
                    r.dry_until = ctx.now().saturating_add(self.params.retry);
                }
                r.stock.extend(results);
                let waiting = std::mem::take(&mut self.relays[at.index()].waiting);
                for (v, ask) in waiting {
                    match self.relays[at.index()].stock.pop_front() {
                        Some(result) => self.hand(ctx, at, v, result, ask),
                        None => ctx.send(at, v, Msg::NoWork { ask }),
                    }
                }
            }
            Msg::Assign { rid, ask, .. } => {
                // Work is taken even on an older request's answer, if idle:
                // the server has issued it and started its deadline.
                if self.working[at.index()].is_some() {
                    return;
                }
                if self.asking[at.index()] == ask {
                    self.answered[at.index()] = true;
                    self.direct[at.index()] = false;
                    self.held[at.index()] = None;
                }
                self.asking[at.index()] += 1;
                self.working[at.index()] = Some(rid);
                let secs = self.params.unit_time.as_secs_f64() / self.speed[at.index()];
                ctx.set_timer(at, SimTime::from_secs_f64(secs), Timer::Done(rid));
            }
            // The request's own timer asks again after `retry`.
            Msg::NoWork { ask } => {
                if self.asking[at.index()] == ask {
                    self.answered[at.index()] = true;
                    self.held[at.index()] = None;
                }
            }
        }
    }

    fn timer(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, timer: Timer) {
        match timer {
            Timer::Ask(ask) => {
                if self.asking[at.index()] == ask && self.working[at.index()].is_none() {
                    // Unanswered by its super-peer: the server, once.
                    let home = self.home(at) != self.server;
                    self.direct[at.index()] = home && !self.answered[at.index()] && !self.direct[at.index()];
                    self.ask(ctx, at, None);
                }
            }
            Timer::Fetch(seq) => {
                let r = &mut self.relays[at.index()];
                if r.fetching == seq {
                    // Lost: its volunteers ask again on their own.
                    r.fetching = 0;
                    r.waiting.clear();
                }
            }
            Timer::Flush => {
                let r = &self.relays[at.index()];
                if r.fetching == 0 && !r.reports.is_empty() {
                    self.fetch(ctx, at);
                }
                ctx.set_timer(at, self.params.retry, Timer::Flush);
            }
            Timer::Done(rid) => {
                if self.working[at.index()] == Some(rid) {
                    self.working[at.index()] = None;
                    let correct = !self.wrong[at.index()];
                    self.ask(ctx, at, Some((rid, correct)));
                }
            }
            Timer::Deadline(_) => {}
        }
    }

    fn global_timer(&mut self, ctx: &mut Ctx<'_, Self>, timer: Timer) {
        let Timer::Deadline(rid) = timer else { return };
        let out = &mut self.results[rid as usize];
        if out.reported || out.missed {
            return;
        }
        out.missed = true;
        let unit = out.unit;
        self.stats.missed += 1;
        self.units[unit as usize].pending -= 1;
        self.top_up(ctx, unit);
    }

    fn joined(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, _: Option<NodeId>) {
        self.forget(at);
        if self.relays(at) {
            ctx.set_timer(at, self.params.retry, Timer::Flush);
        } else if at != self.server {
            self.ask(ctx, at, None);
        }
    }

    fn crashed(&mut self, _: &mut Ctx<'_, Self>, at: NodeId) {
        self.forget(at);
    }

    fn leaving(&mut self, _: &mut Ctx<'_, Self>, at: NodeId) {
        self.forget(at);
    }

    fn role(&self, name: &str) -> Vec<NodeId> {
        match name {
            "server" => vec![self.server],
            "superpeers" => (0..self.speed.len() as u32).map(NodeId).filter(|&v| self.relays(v)).collect(),
            _ => Vec::new(),
        }
    }

    fn state_bytes(&self) -> usize {
        self.speed.len() * (8 + 1 + 8 + 4)
            + self.units.iter().map(|u| 32 + u.hosts.capacity() * 4).sum::<usize>()
            + self.queue.capacity() * 4
            + self.results.capacity() * std::mem::size_of::<Out>()
            + self.relays.capacity() * std::mem::size_of::<Relay>()
    }

    fn extra_metrics(&self, recorder: &Recorder, out: &mut Vec<Metric>) {
        let s = &self.stats;
        let end = s.finished.unwrap_or(recorder.window().duration);
        let hours = end.as_secs_f64() / 3600.0;
        // Of the results reported for units closed by the end, those beyond
        // the quorums that validated them (units still open are not judged).
        let settled = self.results.iter().filter(|r| r.reported && self.units[r.unit as usize].closed).count() as u64;
        let useful = s.validated as u64 * self.params.min_quorum as u64;
        let wasted = settled.saturating_sub(useful);
        let span = recorder.window().duration.as_secs_f64();
        out.extend([
            Metric::new("vc_units_validated", Some(s.validated as f64)),
            Metric::new("vc_units_in_error", Some(s.errored as f64)),
            Metric::new("vc_batch_time_s", s.finished.map(|t| t.as_secs_f64())),
            Metric::new("vc_validated_per_hour", (hours > 0.0).then(|| s.validated as f64 / hours)),
            Metric::new("vc_results_reported", Some(s.reported as f64)),
            Metric::new("vc_wasted_share", (settled > 0).then(|| wasted as f64 / settled as f64)),
            Metric::new("vc_redundant_results", Some(s.redundant as f64)),
            Metric::new("vc_late_results", Some(s.late as f64)),
            Metric::new("vc_wrong_results", Some(s.wrong as f64)),
            Metric::new("vc_wrong_accepted", (s.validated > 0).then(|| s.accepted_wrong as f64 / s.validated as f64)),
            Metric::new("vc_deadline_misses", Some(s.missed as f64)),
            Metric::new("vc_server_load", (span > 0.0).then(|| s.server_messages as f64 / span)),
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamics::{Action, Dynamics, Fault, Victims};
    use crate::engine::{Rate, RunOutput, SimConfig, Simulation};
    use crate::validate::world;
    use crate::workload::{Workload, WorkloadSpec};
    use crate::world::TopologySpec;

    /// A project on 51 nodes (the server and 50 volunteers) with 20 ms links,
    /// for two days, under `dynamics`.
    fn run(params: &Params, dynamics: Dynamics) -> (RunOutput, Volunteer) {
        let w = world(&TopologySpec::Ring {}, 51, 20, 1, 1, 7);
        let mut config = SimConfig::new(7, SimTime::from_secs(2 * 86_400));
        config.timeout = SimTime::from_secs(60);
        config.dynamics = dynamics;
        let spec = WorkloadSpec { rate: Rate(0.0), ..Default::default() };
        let workload = Workload::new(&spec, 51, 1, config.duration, 7);
        Simulation::new(&w, params.build(&w), workload, &config).run_both()
    }

    fn params(units: u32, quorum: u32, wrong: f64) -> Params {
        Params {
            units,
            min_quorum: quorum,
            target_results: quorum,
            wrong_fraction: wrong,
            speed: Choice::Uniform(0.5, 2.0),
            ..toml::from_str("").expect("defaults")
        }
    }

    #[test]
    fn with_quorum_two_and_no_faulty_volunteers_every_unit_is_computed_exactly_twice() {
        let (out, v) = run(&params(200, 2, 0.0), Dynamics::default());
        assert_eq!(v.validated(), 200);
        assert!(v.reported_per_unit().iter().all(|&r| r == 2), "{:?}", v.reported_per_unit());
        assert_eq!(out.metric("vc_results_reported"), Some(400.0));
        assert_eq!(out.metric("vc_wasted_share"), Some(0.0));
        // 50 volunteers at 1.25 on average: 400 hours of work in about 6.4 hours.
        let t = out.metric("vc_batch_time_s").expect("finished");
        assert!((5.0 * 3600.0..9.0 * 3600.0).contains(&t), "{t}");
    }

    #[test]
    fn units_lost_to_crashes_are_issued_again_after_their_deadline_and_the_batch_completes() {
        // A fifth of the volunteers crash 30 minutes in, in the middle of
        // their first results, and never return.
        let crash = Fault {
            at: SimTime::from_secs(1800),
            action: Action::Crash { victims: Victims::Nodes((1..=10).map(NodeId).collect()), recover: None },
        };
        let (out, v) = run(&params(200, 1, 0.0), Dynamics { faults: vec![crash], ..Dynamics::default() });
        assert_eq!(v.validated(), 200);
        let missed = out.metric("vc_deadline_misses").expect("a count");
        assert!(missed >= 10.0, "{missed}");
        // The lost units were issued again only after their deadline of 4 hours.
        assert!(out.metric("vc_batch_time_s").is_some_and(|t| t > 4.0 * 3600.0));
        let (clean, _) = run(&params(200, 1, 0.0), Dynamics::default());
        assert_eq!(clean.metric("vc_deadline_misses"), Some(0.0));
    }

    #[test]
    fn a_server_outage_shorter_than_the_deadline_loses_no_report() {
        // The server is down from 30 minutes to 2 hours: the results finished
        // meanwhile are reported again until it answers, within their 4 hours.
        let outage = Fault {
            at: SimTime::from_secs(1800),
            action: Action::Crash { victims: Victims::Nodes(vec![NodeId(0)]), recover: Some(SimTime::from_secs(7200)) },
        };
        let (out, v) = run(&params(200, 1, 0.0), Dynamics { faults: vec![outage], ..Dynamics::default() });
        assert_eq!(v.validated(), 200);
        assert_eq!(out.metric("vc_deadline_misses"), Some(0.0));
        assert!(out.metric("vc_batch_time_s").is_some_and(|t| t > 7200.0));
    }

    #[test]
    fn super_peers_take_the_load_off_the_server_and_the_batch_still_completes() {
        let direct = params(200, 1, 0.0);
        let relayed = Params { cluster_size: 10, chunk: 10, ..direct.clone() };
        let (a, _) = run(&direct, Dynamics::default());
        let (b, v) = run(&relayed, Dynamics::default());
        assert_eq!(v.validated(), 200);
        let (la, lb) = (a.metric("vc_server_load").unwrap_or(0.0), b.metric("vc_server_load").unwrap_or(1.0));
        assert!(lb < 0.3 * la, "server load {lb} with super-peers against {la} without");
        // The super-peers (nodes 10, 20, 30, 40, 50) computed nothing.
        assert!(v.results.iter().all(|r| r.reported));
        assert_eq!(v.role("superpeers"), [10, 20, 30, 40, 50].map(NodeId));
    }

    #[test]
    fn a_crashed_super_peers_volunteers_turn_to_the_server_and_its_stock_is_issued_again() {
        let relayed = Params { cluster_size: 10, chunk: 10, ..params(200, 1, 0.0) };
        let crash = Fault {
            at: SimTime::from_secs(1800),
            action: Action::Crash { victims: Victims::Nodes(vec![NodeId(20)]), recover: None },
        };
        let (out, v) = run(&relayed, Dynamics { faults: vec![crash], ..Dynamics::default() });
        assert_eq!(v.validated(), 200);
        assert!(out.metric("vc_deadline_misses").is_some_and(|m| m >= 1.0));
    }

    #[test]
    fn wrong_results_never_validate_a_unit_and_more_results_replace_them() {
        let (out, v) = run(&params(200, 2, 0.2), Dynamics::default());
        assert_eq!(v.validated() + out.metric("vc_units_in_error").unwrap_or(0.0) as u32, 200);
        let wrong = out.metric("vc_wrong_results").expect("a count");
        assert!(wrong > 20.0, "{wrong}");
        // Every validated unit has two correct results: more than 400 reported.
        assert!(out.metric("vc_results_reported").is_some_and(|r| r >= 400.0 + wrong - 1e-9));
        assert!(out.metric("vc_wasted_share").is_some_and(|w| w > 0.0));
        for (unit, u) in v.units.iter().enumerate() {
            assert!(u.correct >= 2 || !u.closed || u.issued == 8, "unit {unit}: {u:?}");
        }
    }
}
