//! Metrics: what a run records while it runs (`Recorder`), the per-run results it
//! turns into (`RunMetrics`, time series), and the statistics over replicates.

pub mod stats;

use crate::base::{NodeId, QueryId, ResourceType, SimTime};

/// A result column: its name in runs.csv and summary.csv, and the axis title a
/// plot gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// The column name.
    pub name: &'static str,
    /// What a plot axis calls it, with its unit.
    pub label: &'static str,
}

impl Column {
    /// A column named `name`, titled `label` on a plot axis.
    pub const fn new(name: &'static str, label: &'static str) -> Column {
        Column { name, label }
    }
}

/// The core result columns of runs.csv, in order. Protocols append their own.
pub const CORE_METRICS: [Column; 20] = [
    Column::new("queries", "queries"),
    Column::new("success_rate", "success rate (fraction of queries)"),
    Column::new("hits_per_query", "hits per query"),
    Column::new("messages_per_query", "messages per query"),
    Column::new("messages_total", "messages (total)"),
    Column::new("maintenance_messages", "maintenance messages"),
    Column::new("first_hit_latency_mean_ms", "first-hit latency, mean (ms)"),
    Column::new("first_hit_latency_p50_ms", "first-hit latency, median (ms)"),
    Column::new("first_hit_latency_p95_ms", "first-hit latency, 95th percentile (ms)"),
    Column::new("first_hit_latency_p99_ms", "first-hit latency, 99th percentile (ms)"),
    Column::new("hops_to_first_hit_mean", "hops to first hit (mean)"),
    Column::new("max_node_load", "busiest node's load (messages/s)"),
    Column::new("load_gini", "load Gini coefficient"),
    Column::new("stale_answer_rate", "stale answers (fraction)"),
    Column::new("events", "events"),
    Column::new("bytes_total", "traffic (bytes)"),
    Column::new("maintenance_messages_per_node_s", "maintenance messages per node per second"),
    Column::new("maintenance_bytes_per_node_s", "maintenance traffic per node (bytes/s)"),
    Column::new("availability", "availability (mean fraction of nodes up)"),
    Column::new("resource_changes", "resource changes"),
];

/// One result value of a run: a column name and its value, `None` where undefined.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// The column.
    pub name: String,
    /// Its value in this run.
    pub value: Option<f64>,
}

impl Metric {
    /// The value `value` of column `name`.
    pub fn new(name: impl Into<String>, value: Option<f64>) -> Metric {
        Metric { name: name.into(), value }
    }
}

/// The times a run is measured by.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Queries are issued in [0, duration).
    pub duration: SimTime,
    /// Queries issued before this are left out of the per-query metrics.
    pub warmup: SimTime,
    /// How long a query may take before it counts as failed.
    pub timeout: SimTime,
    /// The resolution of the time series.
    pub sample_every: SimTime,
}

impl Window {
    /// Rows of the time series: one every `sample_every` over [0, duration + timeout].
    pub fn samples(&self) -> usize {
        (self.duration.saturating_add(self.timeout).0 / self.sample_every.0.max(1)) as usize + 1
    }
}

const NO_HIT: SimTime = SimTime::MAX;

/// One query's outcome.
#[derive(Clone, Debug)]
pub struct QueryRecord {
    /// When the workload issued the query.
    pub issued: SimTime,
    /// The node that issued it and waits for answers.
    pub origin: NodeId,
    /// The resource type it looks for.
    pub want: ResourceType,
    /// Time the first answer reached the origin within the timeout, or `SimTime::MAX`.
    pub first_hit: SimTime,
    /// Hops from the origin to the first answer's source, as the protocol counts them.
    pub hops: u32,
    /// Matching resources reported back to the origin within the timeout.
    pub hits: u32,
    /// Messages sent for this query; a merged message shared by k parts counts 1/k.
    pub messages: f64,
    /// Nodes the query reached, as the protocol reported them (`nodes_reached`).
    pub reached: u32,
}

impl QueryRecord {
    /// Whether an answer reached the origin within the timeout.
    pub fn succeeded(&self) -> bool {
        self.first_hit != NO_HIT
    }
    /// Time from issue to the first answer, `None` for a failed query.
    pub fn latency(&self) -> Option<SimTime> {
        self.succeeded().then(|| self.first_hit - self.issued)
    }
}

#[derive(Clone, Debug, Default)]
struct Bucket {
    messages: u64,
    max_queue: u32,
}

/// How many nodes are up over time, in a run where that changes.
#[derive(Clone, Debug, Default)]
struct Alive {
    /// Nodes up since `since`.
    count: usize,
    since: SimTime,
    /// Node-seconds up within [warmup, duration) before `since`.
    area: f64,
    /// Per time-series row already passed, the nodes up at its start.
    rows: Vec<u32>,
}

/// Counters a run updates as it goes; cheap enough for the hot loop.
#[derive(Clone, Debug)]
pub struct Recorder {
    /// The times the run is measured by (`sample_every` never zero).
    window: Window,
    /// Every query of the run, indexed by `QueryId`, warm-up included.
    pub queries: Vec<QueryRecord>,
    /// Messages served per node while measuring, [warmup, duration).
    pub handled: Vec<u32>,
    kinds: Vec<u64>,
    messages_total: u64,
    maintenance: u64,
    /// Bytes of every message sent, while every message sent had a size.
    bytes_total: u64,
    /// Some message sent had no size, so byte counts are unknown.
    sizes_unknown: bool,
    /// Maintenance messages and bytes sent in [warmup, duration).
    maintenance_measured: u64,
    maintenance_bytes_measured: u64,
    lost: u64,
    /// Answers given from stored state about measured queries, and how many of them
    /// named a resource that no longer matched.
    answers: u64,
    stale_answers: u64,
    /// The protocol answers from stored state, so with no answers the stale rate is undefined.
    pub(crate) answers_from_state: bool,
    buckets: Vec<Bucket>,
    /// The bucket the last sample fell in and the times it covers, [from, to):
    /// most samples fall in the same bucket as the one before, and finding it
    /// again costs no division.
    last_bucket: (usize, SimTime, SimTime),
    /// Messages that reached a down node, or waited in the queue of one that crashed.
    lost_dead: u64,
    /// Nodes up over time; `None` while every node is up throughout.
    alive: Option<Alive>,
    /// Connect and accept messages of overlay repair.
    connects: u64,
    /// Resource copies that changed (`[resources] changes`).
    resource_changes: u64,
}

/// Bytes of each connect and accept message of overlay repair: a Gnutella 0.6
/// handshake's request or response headers.
pub const CONNECT_BYTES: u64 = 200;

impl Recorder {
    /// An empty recorder for `nodes` nodes and `kinds` message kinds.
    pub fn new(nodes: usize, kinds: usize, config: Window) -> Recorder {
        Recorder {
            window: Window {
                sample_every: if config.sample_every.0 == 0 { SimTime::from_secs(1) } else { config.sample_every },
                ..config
            },
            queries: Vec::new(),
            handled: vec![0; nodes],
            kinds: vec![0; kinds],
            messages_total: 0,
            maintenance: 0,
            bytes_total: 0,
            sizes_unknown: false,
            maintenance_measured: 0,
            maintenance_bytes_measured: 0,
            lost: 0,
            answers: 0,
            stale_answers: 0,
            answers_from_state: false,
            buckets: Vec::new(),
            last_bucket: (0, SimTime(0), SimTime(0)),
            lost_dead: 0,
            alive: None,
            connects: 0,
            resource_changes: 0,
        }
    }

    /// Starts following how many nodes are up: `count` at time zero.
    pub(crate) fn track_alive(&mut self, count: usize) {
        self.alive = Some(Alive { count, ..Alive::default() });
    }

    /// The number of nodes up changed to `count` at `now`.
    pub(crate) fn alive_changed(&mut self, now: SimTime, count: usize) {
        let (window, step, samples) = (self.window, self.window.sample_every.0, self.window.samples());
        let Some(a) = &mut self.alive else { return };
        a.area += a.count as f64 * overlap(a.since, now, window);
        // Rows starting before now saw the old count; one starting at now sees the new.
        while a.rows.len() < samples && (a.rows.len() as u64 * step) < now.0 {
            a.rows.push(a.count as u32);
        }
        a.count = count;
        a.since = now;
    }

    /// A message reached a down node, or was waiting at one that crashed.
    pub(crate) fn lost_dead(&mut self) {
        self.lost_dead += 1;
    }

    /// A resource copy changed.
    pub(crate) fn resource_changed(&mut self) {
        self.resource_changes += 1;
    }

    /// Overlay repair opened a link: a connect and an accept message of
    /// [`CONNECT_BYTES`] each, maintenance traffic.
    pub(crate) fn connected(&mut self, now: SimTime) {
        self.connects += 2;
        self.tally(now, 2, true, CONNECT_BYTES);
    }

    #[inline]
    fn bucket(&mut self, t: SimTime) -> &mut Bucket {
        let (b, from, to) = self.last_bucket;
        if t >= from && t < to {
            return &mut self.buckets[b];
        }
        self.bucket_of(t)
    }

    #[cold]
    fn bucket_of(&mut self, t: SimTime) -> &mut Bucket {
        let every = self.window.sample_every.0;
        let b = (t.0 / every) as usize;
        if b >= self.buckets.len() {
            self.buckets.resize(b + 1, Bucket::default());
        }
        let from = b as u64 * every;
        self.last_bucket = (b, SimTime(from), SimTime(from.saturating_add(every)));
        &mut self.buckets[b]
    }

    pub(crate) fn issue(&mut self, now: SimTime, origin: NodeId, want: ResourceType) -> QueryId {
        self.queries.push(QueryRecord {
            issued: now,
            origin,
            want,
            first_hit: NO_HIT,
            hops: 0,
            hits: 0,
            messages: 0.0,
            reached: 0,
        });
        QueryId((self.queries.len() - 1) as u32)
    }

    /// A message of `kind` and `bytes` (if its size is known) was sent; maintenance
    /// traffic carries no query.
    #[inline]
    pub(crate) fn sent(&mut self, now: SimTime, kind: usize, maintenance: bool, bytes: Option<u32>) {
        self.kinds[kind] += 1;
        self.sizes_unknown |= bytes.is_none();
        self.tally(now, 1, maintenance, bytes.unwrap_or(0) as u64);
    }

    /// `count` messages of `bytes` each sent at `now`, into the totals, the
    /// maintenance counters if they are maintenance, and the time series.
    #[inline]
    fn tally(&mut self, now: SimTime, count: u64, maintenance: bool, bytes: u64) {
        self.messages_total += count;
        self.bytes_total += count * bytes;
        if maintenance {
            self.maintenance += count;
            if now >= self.window.warmup && now < self.window.duration {
                self.maintenance_measured += count;
                self.maintenance_bytes_measured += count * bytes;
            }
        }
        self.bucket(now).messages += count;
    }

    /// One message, or a `share` of a merged one, worked for query `q`.
    #[inline]
    pub(crate) fn attribute(&mut self, q: QueryId, share: f64) {
        self.queries[q.index()].messages += share;
    }

    pub(crate) fn lost(&mut self) {
        self.lost += 1;
    }

    #[inline]
    pub(crate) fn handled(&mut self, now: SimTime, at: NodeId) {
        if now >= self.window.warmup && now < self.window.duration {
            self.handled[at.index()] += 1;
        }
    }

    #[inline]
    pub(crate) fn queue_length(&mut self, now: SimTime, len: u32) {
        let b = self.bucket(now);
        b.max_queue = b.max_queue.max(len);
    }

    pub(crate) fn timeout(&self) -> SimTime {
        self.window.timeout
    }

    pub(crate) fn expired(&self, now: SimTime, q: QueryId) -> bool {
        now - self.queries[q.index()].issued > self.window.timeout
    }

    pub(crate) fn hit(&mut self, now: SimTime, q: QueryId, hops: u32, count: u32) {
        let timeout = self.window.timeout;
        let r = &mut self.queries[q.index()];
        if now - r.issued > timeout || count == 0 {
            return;
        }
        r.hits += count;
        if r.first_hit == NO_HIT {
            r.first_hit = now;
            r.hops = hops;
        }
    }

    pub(crate) fn answer(&mut self, q: QueryId, stale: bool) {
        if self.queries[q.index()].issued >= self.window.warmup {
            self.answers += 1;
            self.stale_answers += stale as u64;
        }
    }

    pub(crate) fn reached(&mut self, q: QueryId) {
        self.queries[q.index()].reached += 1;
    }

    /// The times the run is measured by.
    pub fn window(&self) -> Window {
        self.window
    }

    /// Queries issued before this are left out of the per-query metrics.
    pub(crate) fn warmup(&self) -> SimTime {
        self.window.warmup
    }

    /// Messages node `v` served per second of [warmup, duration), the window of
    /// `max_node_load` and nodes.csv; `None` for an empty window.
    pub fn node_load(&self, v: NodeId) -> Option<f64> {
        self.load(self.handled[v.index()])
    }

    /// `served` messages per second of the load window.
    fn load(&self, served: u32) -> Option<f64> {
        self.per_second(served as u64)
    }

    /// `count` per second of the measured window [warmup, duration); `None` if empty.
    fn per_second(&self, count: u64) -> Option<f64> {
        let window = self.window.duration.saturating_sub(self.window.warmup).as_secs_f64();
        (window > 0.0).then(|| count as f64 / window)
    }

    /// Queries issued after the warm-up: the ones the metrics describe.
    pub fn measured(&self) -> impl Iterator<Item = &QueryRecord> {
        let warmup = self.window.warmup;
        self.queries.iter().filter(move |q| q.issued >= warmup)
    }

    /// The run's result columns: the core metrics, then `messages_<kind>` and `messages_lost`.
    pub fn finish(&self, kinds: &[&str], events: u64) -> Vec<Metric> {
        let measured: Vec<&QueryRecord> = self.measured().collect();
        let n = measured.len() as f64;
        let per_query =
            |f: &dyn Fn(&QueryRecord) -> f64| (n > 0.0).then(|| measured.iter().map(|q| f(q)).sum::<f64>() / n);
        let mut latency: Vec<u64> = measured.iter().filter_map(|q| q.latency()).map(|t| t.0).collect();
        latency.sort_unstable();
        let ms = |ns: u64| ns as f64 / 1e6;
        let successes: Vec<&&QueryRecord> = measured.iter().filter(|q| q.succeeded()).collect();
        let per_node_s = |count: u64| self.per_second(count).map(|r| r / self.handled.len().max(1) as f64);
        let bytes = |count: u64| if self.sizes_unknown { None } else { Some(count) };
        let mut out: Vec<Metric> = vec![
            Metric::new("queries", Some(n)),
            Metric::new("success_rate", per_query(&|q| q.succeeded() as u8 as f64)),
            Metric::new("hits_per_query", per_query(&|q| q.hits as f64)),
            Metric::new("messages_per_query", per_query(&|q| q.messages)),
            Metric::new("messages_total", Some(self.messages_total as f64)),
            Metric::new("maintenance_messages", Some(self.maintenance as f64)),
            Metric::new(
                "first_hit_latency_mean_ms",
                (!latency.is_empty()).then(|| latency.iter().map(|&l| ms(l)).sum::<f64>() / latency.len() as f64),
            ),
            Metric::new("first_hit_latency_p50_ms", percentile(&latency, 0.50).map(ms)),
            Metric::new("first_hit_latency_p95_ms", percentile(&latency, 0.95).map(ms)),
            Metric::new("first_hit_latency_p99_ms", percentile(&latency, 0.99).map(ms)),
            Metric::new(
                "hops_to_first_hit_mean",
                (!successes.is_empty())
                    .then(|| successes.iter().map(|q| q.hops as f64).sum::<f64>() / successes.len() as f64),
            ),
            Metric::new("max_node_load", self.load(self.handled.iter().copied().max().unwrap_or(0))),
            Metric::new("load_gini", Some(gini(&self.handled))),
            // Protocols that look at live state never answer stale: their rate is 0.
            // One that answers from stored state but gave no answers has no rate.
            Metric::new(
                "stale_answer_rate",
                match self.answers {
                    0 => (!self.answers_from_state).then_some(0.0),
                    n => Some(self.stale_answers as f64 / n as f64),
                },
            ),
            Metric::new("events", Some(events as f64)),
            Metric::new("bytes_total", bytes(self.bytes_total).map(|b| b as f64)),
            Metric::new("maintenance_messages_per_node_s", per_node_s(self.maintenance_measured)),
            Metric::new("maintenance_bytes_per_node_s", bytes(self.maintenance_bytes_measured).and_then(per_node_s)),
            Metric::new("availability", self.availability()),
            Metric::new("resource_changes", Some(self.resource_changes as f64)),
        ];
        for (name, count) in kinds.iter().zip(&self.kinds) {
            out.push(Metric::new(format!("messages_{name}"), Some(*count as f64)));
        }
        out.push(Metric::new("messages_lost", Some(self.lost as f64)));
        out.push(Metric::new("messages_lost_dead", Some(self.lost_dead as f64)));
        out.push(Metric::new("messages_connect", Some(self.connects as f64)));
        out
    }

    /// The mean fraction of nodes up over [warmup, duration): 1 when none ever goes
    /// down, `None` for an empty window.
    fn availability(&self) -> Option<f64> {
        let span = self.window.duration.saturating_sub(self.window.warmup).as_secs_f64();
        let nodes = self.handled.len();
        if span <= 0.0 || nodes == 0 {
            return None;
        }
        let Some(a) = &self.alive else { return Some(1.0) };
        let area = a.area + a.count as f64 * overlap(a.since, SimTime::MAX, self.window);
        Some(area / (span * nodes as f64))
    }

    /// One row per `sample_every` of simulated time.
    pub fn series(&self) -> Vec<SeriesRow> {
        let step = self.window.sample_every.0;
        let count = self.window.samples();
        let mut rows: Vec<SeriesRow> =
            (0..count).map(|b| SeriesRow { time_s: (b as u64 * step) as f64 / 1e9, ..SeriesRow::default() }).collect();
        let mut latency_sum = vec![0.0; count];
        for q in &self.queries {
            let b = ((q.issued.0 / step) as usize).min(count - 1);
            rows[b].queries += 1;
            if let Some(l) = q.latency() {
                rows[b].successes += 1;
                latency_sum[b] += l.as_millis_f64();
            }
        }
        for (b, bucket) in self.buckets.iter().enumerate().take(count) {
            rows[b].messages = bucket.messages;
            rows[b].max_queue_length = bucket.max_queue;
        }
        for (row, sum) in rows.iter_mut().zip(latency_sum) {
            row.first_hit_latency_mean_ms = (row.successes > 0).then(|| sum / row.successes as f64);
        }
        let nodes = self.handled.len() as u32;
        for (b, row) in rows.iter_mut().enumerate() {
            row.nodes_alive = match &self.alive {
                None => nodes,
                Some(a) => a.rows.get(b).copied().unwrap_or(a.count as u32),
            };
        }
        rows
    }
}

/// One sample of a run's time series.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeriesRow {
    /// Start of the interval, in seconds of simulated time.
    pub time_s: f64,
    /// Queries issued in this interval, and how many of them succeeded.
    pub queries: u64,
    /// Of those queries, the ones answered within the timeout.
    pub successes: u64,
    /// Mean first-hit latency of those successes (ms), `None` without any.
    pub first_hit_latency_mean_ms: Option<f64>,
    /// Messages sent in this interval.
    pub messages: u64,
    /// Longest service queue seen at any node in this interval.
    pub max_queue_length: u32,
    /// Nodes up at the start of this interval.
    pub nodes_alive: u32,
}

/// Seconds of [from, to) inside the measured window [warmup, duration).
fn overlap(from: SimTime, to: SimTime, window: Window) -> f64 {
    let (a, b) = (from.max(window.warmup), to.min(window.duration));
    if b > a { (b - a).as_secs_f64() } else { 0.0 }
}

/// Nearest-rank percentile of sorted data: the smallest value with at least a
/// fraction `p` of the data at or below it.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

/// The Gini coefficient of non-negative loads: 0 when all are equal, → 1 when one
/// node carries everything.
pub fn gini(loads: &[u32]) -> f64 {
    gini_f64(&loads.iter().map(|&l| l as f64).collect::<Vec<_>>())
}

/// The Gini coefficient of non-negative values: 0 when all are equal, towards
/// 1 when one holds everything.
pub fn gini_f64(values: &[f64]) -> f64 {
    let mut x = values.to_vec();
    x.sort_by(f64::total_cmp);
    let n = x.len() as f64;
    let total: f64 = x.iter().sum();
    if n == 0.0 || total == 0.0 {
        return 0.0;
    }
    let weighted: f64 = x.iter().enumerate().map(|(i, &v)| (i as f64 + 1.0) * v).sum();
    2.0 * weighted / (n * total) - (n + 1.0) / n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let d: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&d, 0.5), Some(50));
        assert_eq!(percentile(&d, 0.95), Some(95));
        assert_eq!(percentile(&d, 0.99), Some(99));
        assert_eq!(percentile(&[7], 0.99), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn gini_of_equal_and_concentrated_loads() {
        assert_eq!(gini(&[5, 5, 5, 5]), 0.0);
        assert!((gini(&[0, 0, 0, 12]) - 0.75).abs() < 1e-12);
        assert_eq!(gini(&[0, 0]), 0.0);
    }
}
