//! The jobs of a run as the engine runs them (see [`crate::compute`]): their
//! tries, the nodes' cores and FIFO queues, and what each event does. The run
//! loop issues a job's discovery query and hands the events here.

use std::collections::VecDeque;

use rand::seq::index;
use rand_chacha::ChaCha8Rng;

use super::sim::Arena;
use crate::base::{NodeId, QueryId, SimTime};
use crate::compute::{JobRecord, SharedPlan};

const NONE: u32 = u32::MAX;

/// What is due for a job.
#[derive(Clone, Copy, Debug)]
pub(crate) enum JobEvent {
    /// Its try starts: a discovery query from its origin.
    Submit(u32),
    /// Try `n`'s query has had its time: if nothing was found, it failed.
    Check(u32, u32),
    /// Try `n`'s query found a node holding its type.
    Place(u32, u32),
    /// It reaches its node, on placement `n`.
    Arrive(u32, u32),
    /// It ends, on placement `n`.
    End(u32, u32),
}

/// What the run loop must do for the job layer: queue `event` at the time.
pub(crate) enum Act {
    /// The event and its time.
    At(SimTime, JobEvent),
}

/// The state of every job and node.
pub(crate) struct JobRun {
    pub plan: SharedPlan,
    pub records: Vec<JobRecord>,
    rng: ChaCha8Rng,
    /// Per query, its job (`NONE` for none).
    of_query: Vec<u32>,
    /// Per job: when its current query was issued and which it is, whether it
    /// had a hit, whether that try may still place the job, and the holders
    /// its answers named (the first `best_of`).
    asked: Vec<SimTime>,
    query: Vec<u32>,
    found: Vec<bool>,
    open: Vec<bool>,
    named: Vec<Vec<NodeId>>,
    /// Per job: its placements so far (an event of an older one is stale).
    placement: Vec<u32>,
    /// Per job: when it started on its current placement.
    started: Vec<SimTime>,
    /// Per node: free cores, its queue, the jobs running, and busy core-seconds.
    free: Vec<u32>,
    queue: Vec<VecDeque<u32>>,
    running: Vec<Vec<u32>>,
    pub busy: Vec<f64>,
    /// Jobs neither finished nor unplaced.
    pub outstanding: usize,
    /// Events in flight, by slot.
    events: Arena<JobEvent>,
}

impl JobRun {
    /// The jobs of `plan`, with their own random stream.
    pub fn new(plan: SharedPlan, rng: ChaCha8Rng) -> JobRun {
        let (n, jobs) = (plan.cores.len(), plan.jobs.len());
        JobRun {
            records: vec![JobRecord::default(); jobs],
            rng,
            of_query: Vec::new(),
            asked: vec![SimTime::ZERO; jobs],
            query: vec![NONE; jobs],
            found: vec![false; jobs],
            open: vec![false; jobs],
            named: vec![Vec::new(); jobs],
            placement: vec![0; jobs],
            started: vec![SimTime::ZERO; jobs],
            free: plan.cores.clone(),
            queue: vec![VecDeque::new(); n],
            running: vec![Vec::new(); n],
            busy: vec![0.0; n],
            outstanding: jobs,
            events: Arena::new(),
            plan,
        }
    }

    /// Stores `event` for the queue: its slot.
    pub fn put(&mut self, event: JobEvent) -> u32 {
        self.events.put(event)
    }

    /// The event in `slot`, which is freed.
    pub fn take(&mut self, slot: u32) -> Option<JobEvent> {
        self.events.free(slot)
    }

    /// Job `j`'s try has issued query `q` at `now`; its check is due after `timeout`.
    pub fn asked(&mut self, j: u32, q: QueryId, now: SimTime, timeout: SimTime) -> Act {
        if self.of_query.len() <= q.index() {
            self.of_query.resize(q.index() + 1, NONE);
        }
        self.of_query[q.index()] = j;
        self.query[j as usize] = q.0;
        self.asked[j as usize] = now;
        self.found[j as usize] = false;
        self.open[j as usize] = true;
        self.named[j as usize].clear();
        let r = &mut self.records[j as usize];
        r.tries += 1;
        Act::At(now.saturating_add(timeout), JobEvent::Check(j, r.tries))
    }

    /// An answer to query `q` names `holder`: one of the first `best_of`
    /// named, it is a candidate for the job.
    pub fn found(&mut self, q: QueryId, holder: NodeId) {
        let Some(j) = self.waiting(q) else { return };
        let named = &mut self.named[j as usize];
        if named.len() < self.plan.best_of as usize && !named.contains(&holder) {
            named.push(holder);
        }
    }

    /// The holders named to job `j`'s current try.
    pub fn candidates(&self, j: u32) -> &[NodeId] {
        &self.named[j as usize]
    }

    /// Query `q` has its first hit at `now`: its job, if it waits for one, is placed.
    pub fn hit(&mut self, q: QueryId, now: SimTime) -> Option<Act> {
        let j = self.waiting(q)?;
        if self.found[j as usize] {
            return None;
        }
        self.found[j as usize] = true;
        // The origin gathers answers for a while before it places the job.
        let at = now.saturating_add(self.plan.gather);
        let r = &mut self.records[j as usize];
        r.discovery = r.discovery.saturating_add(at - self.asked[j as usize]);
        Some(Act::At(at, JobEvent::Place(j, r.tries)))
    }

    /// The job whose current, open try issued query `q`, if any.
    fn waiting(&self, q: QueryId) -> Option<u32> {
        let j = *self.of_query.get(q.index())?;
        (j != NONE && self.query[j as usize] == q.0 && self.open[j as usize]).then_some(j)
    }

    /// Whether try `n` of job `j` is its current one, open and still unanswered.
    pub fn unanswered(&self, j: u32, n: u32) -> bool {
        self.records[j as usize].tries == n && self.open[j as usize] && !self.found[j as usize]
    }

    /// Try `n` of job `j` places it now, if it is the current, open try: the
    /// try closes.
    pub fn placing(&mut self, j: u32, n: u32) -> bool {
        let ok = self.records[j as usize].tries == n && self.open[j as usize];
        self.open[j as usize] = false;
        ok
    }

    /// Whether a new try of job `j` would be one too many: it has finished,
    /// given up, or has a try under way.
    pub fn ended(&self, j: u32) -> bool {
        let r = &self.records[j as usize];
        r.done.is_some() || r.unplaced.is_some() || self.open[j as usize]
    }

    /// Whether placement `n` of job `j` is its current one.
    pub fn placed_now(&self, j: u32, n: u32) -> bool {
        self.placement[j as usize] == n
    }

    /// Try `n`'s query timed out: its time counts as discovery, and the job fails.
    pub fn timed_out(&mut self, j: u32, now: SimTime) -> Option<Act> {
        let r = &mut self.records[j as usize];
        r.discovery = r.discovery.saturating_add(now - self.asked[j as usize]);
        self.fail(j, now)
    }

    /// Job `j`'s try failed at `now`: it tries again after the back-off, or,
    /// out of tries, is unplaced.
    pub fn fail(&mut self, j: u32, now: SimTime) -> Option<Act> {
        self.open[j as usize] = false;
        let r = &mut self.records[j as usize];
        if r.tries > self.plan.retries {
            r.unplaced = Some(now);
            self.outstanding -= 1;
            return None;
        }
        Some(Act::At(now.saturating_add(self.plan.retry), JobEvent::Submit(j)))
    }

    /// Job `j`'s try cannot start at `now`, its origin being down: it counts
    /// as a try, failed.
    pub fn origin_down(&mut self, j: u32, now: SimTime) -> Option<Act> {
        self.records[j as usize].tries += 1;
        self.fail(j, now)
    }

    /// A job that no node can run is unplaced at `now`.
    pub fn impossible(&mut self, j: u32, now: SimTime) {
        self.records[j as usize].unplaced = Some(now);
        self.outstanding -= 1;
    }

    /// Picks the node for a job among `live` holders of its type: one drawn
    /// uniformly, or the one of `best_of` drawn where it would start first
    /// (fewest jobs queued, then most cores free, then first drawn).
    pub fn choose(&mut self, live: &[NodeId]) -> Option<NodeId> {
        if live.is_empty() {
            return None;
        }
        let k = (self.plan.best_of as usize).min(live.len());
        let picks = index::sample(&mut self.rng, live.len(), k);
        picks
            .iter()
            .map(|i| live[i])
            .min_by_key(|v| (self.queue[v.index()].len(), std::cmp::Reverse(self.free[v.index()])))
    }

    /// Job `j` goes to node `v` (a new placement); its input arrives at `at`.
    pub fn send(&mut self, j: u32, v: NodeId, at: SimTime) -> Act {
        self.placement[j as usize] += 1;
        self.records[j as usize].node = Some(v);
        Act::At(at, JobEvent::Arrive(j, self.placement[j as usize]))
    }

    /// Job `j` reaches node `v` at `now`: it joins the queue, and the jobs at
    /// its head start while cores are free. Returns their ends.
    pub fn arrive(&mut self, j: u32, v: NodeId, now: SimTime) -> Vec<Act> {
        self.queue[v.index()].push_back(j);
        self.start(v, now)
    }

    /// Starts the jobs at the head of `v`'s queue while they fit.
    fn start(&mut self, v: NodeId, now: SimTime) -> Vec<Act> {
        let mut out = Vec::new();
        while let Some(&h) = self.queue[v.index()].front() {
            let cores = self.plan.jobs[h as usize].cores;
            if self.free[v.index()] < cores {
                break;
            }
            self.queue[v.index()].pop_front();
            self.free[v.index()] -= cores;
            self.running[v.index()].push(h);
            self.started[h as usize] = now;
            self.records[h as usize].start = Some(now);
            let run = self.plan.jobs[h as usize].runtime_s / self.plan.speed[v.index()];
            out.push(Act::At(
                now.saturating_add(SimTime::from_secs_f64(run)),
                JobEvent::End(h, self.placement[h as usize]),
            ));
        }
        out
    }

    /// Job `j` ends on `v` at `now`, its output back at its origin at `back`;
    /// the next jobs start. Returns their ends.
    pub fn end(&mut self, j: u32, v: NodeId, now: SimTime, back: SimTime) -> Vec<Act> {
        let cores = self.plan.jobs[j as usize].cores;
        self.free[v.index()] += cores;
        self.running[v.index()].retain(|&x| x != j);
        self.busy[v.index()] += cores as f64 * (now - self.started[j as usize]).as_secs_f64();
        self.records[j as usize].done = Some(back);
        self.outstanding -= 1;
        self.start(v, now)
    }

    /// Node `v` goes down at `now`: the jobs running or queued there are lost
    /// and fail their try (their work so far counts as busy time).
    pub fn down(&mut self, v: NodeId, now: SimTime) -> Vec<Act> {
        let mut lost: Vec<u32> = std::mem::take(&mut self.running[v.index()]);
        for &j in &lost {
            let cores = self.plan.jobs[j as usize].cores;
            self.busy[v.index()] += cores as f64 * (now - self.started[j as usize]).as_secs_f64();
            self.records[j as usize].start = None;
        }
        lost.extend(self.queue[v.index()].drain(..));
        self.free[v.index()] = self.plan.cores[v.index()];
        let mut out = Vec::new();
        for j in lost {
            // Its pending end is stale from now on.
            self.placement[j as usize] += 1;
            out.extend(self.fail(j, now));
        }
        out
    }

    /// A uniform draw from the job layer's stream.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.records.len() * (std::mem::size_of::<JobRecord>() + 32)
            + self.of_query.capacity() * 4
            + self.free.len() * (4 + 8 + 24 + 32)
            + self.free.len() * 16
    }
}
