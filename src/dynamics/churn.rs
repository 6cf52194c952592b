//! Churn: nodes alternate between sessions (up) and downtimes (down), drawn from
//! distributions — per node with its own means if heterogeneous — or replayed from
//! a trace of `node,time,up|down` rows.

use std::path::Path;
use std::sync::Arc;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use super::lifetime::{Lifetime, LifetimeSpec, lomax};
use crate::base::{NodeId, SimTime, parse_duration};

/// `[churn]`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChurnSpec {
    /// How long a node stays up.
    #[serde(default)]
    pub session: Option<LifetimeSpec>,
    /// How long a node stays down before it rejoins.
    #[serde(default)]
    pub downtime: Option<LifetimeSpec>,
    /// Each node its own mean session and downtime, as in Yao et al.'s model.
    #[serde(default)]
    pub heterogeneous: bool,
    /// Whether nodes start at equilibrium or all up.
    #[serde(default)]
    pub start: Start,
    /// Probability that a leave is graceful (announced) rather than a crash.
    #[serde(default = "half")]
    pub graceful: f64,
    /// How long a gracefully leaving node stays up to say goodbye.
    #[serde(default = "fifteen_seconds")]
    pub leave_time: SimTime,
    /// A file of `node,time,up|down` rows replayed instead of the distributions.
    #[serde(default)]
    pub trace: Option<String>,
}

fn half() -> f64 {
    0.5
}
fn fifteen_seconds() -> SimTime {
    SimTime::from_secs(15)
}

/// `churn.start`.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Start {
    /// Each node up with its availability, with the residual time of the period
    /// it is in: the system as if it had been running forever.
    #[default]
    Equilibrium,
    /// Every node up at time zero, with a fresh session.
    AllUp,
}

/// Yao et al. and OverSim's ParetoChurn draw each node's mean from a shifted
/// Pareto of this shape.
pub const HETEROGENEITY_SHAPE: f64 = 3.0;

/// The churn of a run, resolved and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Churn {
    /// Where transitions come from.
    pub source: Source,
    /// Probability that a leave is graceful.
    pub graceful: f64,
    /// How long a graceful leaver stays up after it announces its leave.
    pub leave_time: SimTime,
}

/// The origin of up/down transitions.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// Alternating sessions and downtimes.
    Distributions {
        /// Session lengths.
        session: Lifetime,
        /// Downtime lengths.
        downtime: Lifetime,
        /// Per-node means drawn from a Pareto.
        heterogeneous: bool,
        /// How the run begins.
        start: Start,
    },
    /// Rows replayed in time order.
    Trace(Arc<Trace>),
}

/// A replayed churn trace: rows sorted by time (stable, so same-time rows keep
/// file order), and which nodes start down.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// (time, node, up) in time order.
    pub rows: Vec<(SimTime, NodeId, bool)>,
    /// Nodes whose first row brings them up: they are down until then.
    pub starts_down: Vec<NodeId>,
}

/// A mistake in `[churn]`: the key under `churn` and what was expected.
pub type ChurnError = (String, String);

impl ChurnSpec {
    /// Checks `[churn]` for `nodes` nodes and reads any trace (relative to `base_dir`).
    pub fn resolve(&self, nodes: usize, base_dir: &Path) -> Result<Churn, ChurnError> {
        if !(0.0..=1.0).contains(&self.graceful) {
            return Err((
                "graceful".into(),
                format!("{} is out of range; expected a probability 0 ≤ graceful ≤ 1", self.graceful),
            ));
        }
        let source = match (&self.trace, &self.session, &self.downtime) {
            (Some(path), None, None) => {
                if self.heterogeneous {
                    return Err((
                        "heterogeneous".into(),
                        "a trace gives every transition; remove heterogeneous".into(),
                    ));
                }
                Source::Trace(Arc::new(read_trace(&base_dir.join(path), path, nodes)?))
            }
            (Some(_), _, _) => {
                let key = if self.session.is_some() { "session" } else { "downtime" };
                return Err((
                    key.into(),
                    "a trace replaces the session and downtime distributions; give one or the other".into(),
                ));
            }
            (None, Some(s), Some(d)) => {
                let at = |key: &'static str| move |(k, m): (&'static str, String)| (format!("{key}.{k}"), m);
                Source::Distributions {
                    session: s.resolve().map_err(at("session"))?,
                    downtime: d.resolve().map_err(at("downtime"))?,
                    heterogeneous: self.heterogeneous,
                    start: self.start,
                }
            }
            (None, None, _) => {
                return Err((
                    "session".into(),
                    "missing; expected session = { dist = \"...\", mean = \"...\" } or trace = \"file.csv\"".into(),
                ));
            }
            (None, Some(_), None) => {
                return Err((
                    "downtime".into(),
                    "missing; expected downtime = { dist = \"...\", mean = \"...\" }".into(),
                ));
            }
        };
        Ok(Churn { source, graceful: self.graceful, leave_time: self.leave_time })
    }
}

/// Each node's own session and downtime distributions, drawn at the start of a run.
pub struct NodeLifetimes {
    session: Lifetime,
    downtime: Lifetime,
    /// Per node (session factor, downtime factor); empty when homogeneous.
    factors: Vec<(f32, f32)>,
}

impl NodeLifetimes {
    /// The distributions of every node: with `heterogeneous`, node i's mean session
    /// and downtime are the configured ones times factors drawn from a shifted Pareto
    /// of shape 3 and mean 1, both then stretched by one common factor so that the
    /// mean session a node is seen to have — sessions weighted by how often each node
    /// starts one, 1/(lᵢ + dᵢ) — equals the configured mean, as OverSim's
    /// ParetoChurn does.
    pub fn new(session: Lifetime, downtime: Lifetime, heterogeneous: bool, nodes: usize, rng: &mut ChaCha8Rng) -> Self {
        if !heterogeneous {
            return NodeLifetimes { session, downtime, factors: Vec::new() };
        }
        // A shifted Pareto of shape α has mean scale / (α - 1): scale α - 1 gives mean 1.
        let scale = HETEROGENEITY_SHAPE - 1.0;
        let mut factors: Vec<(f64, f64)> = (0..nodes)
            .map(|_| (lomax(HETEROGENEITY_SHAPE, scale, rng), lomax(HETEROGENEITY_SHAPE, scale, rng)))
            .collect();
        let (ls, ld) = (session.mean(), downtime.mean());
        let weight: f64 = factors.iter().map(|&(a, b)| 1.0 / (a * ls + b * ld)).sum();
        let seen: f64 = factors.iter().map(|&(a, b)| a * ls / (a * ls + b * ld)).sum::<f64>() / weight;
        let stretch = if seen > 0.0 && seen.is_finite() { ls / seen } else { 1.0 };
        for f in &mut factors {
            *f = (f.0 * stretch, f.1 * stretch);
        }
        NodeLifetimes { session, downtime, factors: factors.into_iter().map(|(a, b)| (a as f32, b as f32)).collect() }
    }

    fn of(&self, v: NodeId) -> (Lifetime, Lifetime) {
        match self.factors.get(v.index()) {
            Some(&(a, b)) => (self.session.scaled(a as f64), self.downtime.scaled(b as f64)),
            None => (self.session, self.downtime),
        }
    }

    /// Node `v`'s long-run fraction of time up.
    pub fn availability(&self, v: NodeId) -> f64 {
        let (s, d) = self.of(v);
        let (s, d) = (s.mean(), d.mean());
        if s.is_infinite() {
            return 1.0;
        }
        if d.is_infinite() {
            return 0.0;
        }
        s / (s + d)
    }

    /// A session of node `v`.
    pub fn session(&self, v: NodeId, rng: &mut ChaCha8Rng) -> SimTime {
        to_time(self.of(v).0.sample(rng))
    }

    /// A downtime of node `v`.
    pub fn downtime(&self, v: NodeId, rng: &mut ChaCha8Rng) -> SimTime {
        to_time(self.of(v).1.sample(rng))
    }

    /// Node `v`'s state at time zero of a system at equilibrium, and how long it
    /// stays in it: up with its availability, for the residual time of its period.
    pub fn equilibrium(&self, v: NodeId, rng: &mut ChaCha8Rng) -> (bool, SimTime) {
        let up = rng.random_bool(self.availability(v).clamp(0.0, 1.0));
        let (s, d) = self.of(v);
        let left = if up { s.residual(rng) } else { d.residual(rng) };
        (up, to_time(left))
    }

    /// Bytes per node this holds.
    pub fn bytes(&self) -> usize {
        self.factors.capacity() * std::mem::size_of::<(f32, f32)>()
    }
}

/// Seconds as simulated time, capped at the end of simulated time.
fn to_time(secs: f64) -> SimTime {
    if secs.is_finite() && secs < 1.8e10 { SimTime::from_secs_f64(secs.max(0.0)) } else { SimTime(u64::MAX / 2) }
}

/// Reads a trace of `node,time,up|down` rows (a first line starting with `node` is a
/// header; `#` starts a comment); `time` is seconds or a duration such as "90s".
pub fn read_trace(path: &Path, shown: &str, nodes: usize) -> Result<Trace, ChurnError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ("trace".to_string(), format!("cannot read the trace file {shown}: {e}")))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let content = line.split('#').next().unwrap_or("").trim();
        if content.is_empty() || (rows.is_empty() && content.to_ascii_lowercase().starts_with("node")) {
            continue;
        }
        let bad = |what: String| ("trace".to_string(), format!("{shown}, line {line_no}: {what}"));
        let fields: Vec<&str> = content.split(',').map(str::trim).collect();
        let [node, time, state] = fields[..] else {
            return Err(bad(format!(
                "\"{content}\" has {} fields; expected node,time,up|down, such as 17,120.5,down",
                fields.len()
            )));
        };
        let node: u32 = node.parse().ok().filter(|&n| (n as usize) < nodes).ok_or_else(|| {
            bad(format!("node \"{node}\" is not a node of this network; expected 0 ≤ node < {nodes}"))
        })?;
        let time = match time.parse::<f64>() {
            Ok(s) if s.is_finite() && s >= 0.0 => SimTime::from_secs_f64(s),
            Ok(s) => return Err(bad(format!("time {s} is out of range; expected seconds ≥ 0"))),
            Err(_) => parse_duration(time).map_err(|m| bad(format!("time: {m}")))?,
        };
        let up = match state.to_ascii_lowercase().as_str() {
            "up" => true,
            "down" => false,
            other => return Err(bad(format!("state \"{other}\" is neither up nor down"))),
        };
        rows.push((time, NodeId(node), up));
    }
    if rows.is_empty() {
        return Err(("trace".to_string(), format!("{shown} has no node,time,up|down rows")));
    }
    rows.sort_by_key(|r| r.0);
    let mut seen = vec![false; nodes];
    let mut starts_down = Vec::new();
    for &(_, v, up) in &rows {
        if !std::mem::replace(&mut seen[v.index()], true) && up {
            starts_down.push(v);
        }
    }
    starts_down.sort_unstable();
    Ok(Trace { rows, starts_down })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::rng::{Stream, stream};
    use crate::dynamics::lifetime::Dist;

    fn exp(mean: f64) -> Lifetime {
        LifetimeSpec { dist: Dist::Exponential, mean: Some(SimTime::from_secs_f64(mean)), scale: None, shape: None }
            .resolve()
            .expect("valid")
    }

    #[test]
    fn equilibrium_puts_each_node_up_with_its_availability() {
        let mut rng = stream(3, Stream::Churn);
        let l = NodeLifetimes::new(exp(300.0), exp(100.0), false, 0, &mut rng);
        let up = (0..100_000).filter(|&v| l.equilibrium(NodeId(v), &mut rng).0).count();
        assert!((up as f64 / 100_000.0 - 0.75).abs() < 0.01, "{up}");
    }

    #[test]
    fn heterogeneous_means_keep_the_configured_observed_session_mean() {
        let mut rng = stream(5, Stream::Churn);
        let n = 200_000;
        let l = NodeLifetimes::new(exp(600.0), exp(600.0), true, n, &mut rng);
        // Sessions as they occur: each node starts one every lᵢ + dᵢ on average.
        let (mut weighted, mut weight) = (0.0, 0.0);
        for v in 0..n as u32 {
            let (s, d) = l.of(NodeId(v));
            weighted += s.mean() / (s.mean() + d.mean());
            weight += 1.0 / (s.mean() + d.mean());
        }
        assert!((weighted / weight / 600.0 - 1.0).abs() < 1e-3, "{}", weighted / weight);
        // The means do differ from node to node.
        let (a, b) = (l.of(NodeId(0)).0.mean(), l.of(NodeId(1)).0.mean());
        assert!((a - b).abs() > 1.0);
    }

    #[test]
    fn a_trace_is_read_in_time_order_and_its_errors_name_the_line() {
        let dir = std::env::temp_dir().join(format!("peergrid-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let good = dir.join("good.csv");
        std::fs::write(&good, "node,time,state\n3,20,down\n1,5s,up # comes at 5 s\n3,40,up\n").expect("write");
        let t = read_trace(&good, "good.csv", 4).expect("valid");
        assert_eq!(
            t.rows,
            vec![
                (SimTime::from_secs(5), NodeId(1), true),
                (SimTime::from_secs(20), NodeId(3), false),
                (SimTime::from_secs(40), NodeId(3), true),
            ]
        );
        assert_eq!(t.starts_down, vec![NodeId(1)]);
        let bad = dir.join("bad.csv");
        std::fs::write(&bad, "1,5,up\n2,7,sideways\n").expect("write");
        let e = read_trace(&bad, "bad.csv", 4).unwrap_err();
        assert!(e.1.contains("line 2") && e.1.contains("sideways"), "{}", e.1);
        std::fs::write(&bad, "9,5,up\n").expect("write");
        assert!(read_trace(&bad, "bad.csv", 4).unwrap_err().1.contains("0 ≤ node < 4"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
