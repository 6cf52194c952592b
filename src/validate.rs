//! The built-in validation suite: closed-form truths a correct simulator
//! reproduces. `peergrid validate` runs it; the protocols' unit tests call the
//! same functions.

use std::path::Path;

use petgraph::graph::{NodeIndex, UnGraph};

use crate::engine::{Rate, ServiceTime, SimConfig, SimTime};
use crate::metrics::QueryRecord;
use crate::protocols::{ProtocolSpec, central, flooding, gridnut, random_walk};
use crate::workload::{ScriptedQuery, Workload, WorkloadSpec};
use crate::world::{LatencySpec, ResourcesSpec, TopologySpec, World};

/// One comparison of simulated against expected.
#[derive(Clone, Debug)]
pub struct Check {
    pub name: String,
    pub expected: String,
    pub got: String,
    pub pass: bool,
}

/// A world with constant latency `latency_ms` and `types` × `replicas` resources.
pub fn world(topology: &TopologySpec, nodes: u32, latency_ms: u64, types: u32, replicas: u32, seed: u64) -> World {
    World::build(
        topology,
        Some(nodes),
        false,
        &LatencySpec::Constant { value: SimTime::from_millis(latency_ms) },
        &ResourcesSpec { types, replicas, ..Default::default() },
        Path::new("."),
        seed,
    )
    .expect("validation worlds are valid")
}

/// The central index under Poisson queries at `lambda`/s with exponential service at
/// `mu`/s, no other delay but 10 ms each way: the simulated mean response in ms
/// against M/M/1's sojourn 1/(μ − λ), plus 20 ms for queries from other nodes.
pub fn central_mm1(lambda: f64, mu: f64, seed: u64) -> CentralMm1 {
    let nodes = 200;
    let w = world(&TopologySpec::RandomRegular { degree: 4 }, nodes, 10, 10, 5, seed);
    let cfg = SimConfig {
        warmup: SimTime::from_secs(50),
        timeout: SimTime::from_secs(60),
        ..SimConfig::new(seed, SimTime::from_secs(2_000))
    };
    let params = central::Params {
        index: 0,
        register_at_start: false,
        index_service_time: Some(ServiceTime::Exponential { mean: SimTime::from_secs_f64(1.0 / mu) }),
    };
    let spec = WorkloadSpec { rate: Rate(lambda), ..Default::default() };
    let workload = Workload::new(&spec, nodes as usize, 10, cfg.duration, seed);
    let out = ProtocolSpec::Central(params).run(&w, workload, &cfg);
    // Queries issued at the index itself skip the network, not the queue: their
    // response time is the sojourn alone.
    let mean = |local: bool| {
        let latencies: Vec<f64> = out
            .recorder
            .measured()
            .filter(|q| (q.origin.0 == 0) == local)
            .filter_map(|q| q.latency())
            .map(|l| l.as_millis_f64())
            .collect();
        latencies.iter().sum::<f64>() / latencies.len().max(1) as f64
    };
    let sojourn = 1000.0 / (mu - lambda);
    CentralMm1 { remote: (mean(false), sojourn + 20.0), local: (mean(true), sojourn) }
}

/// Mean response times (simulated, M/M/1) in ms of `central_mm1`: for queries from
/// other nodes (a 20 ms round trip) and from the index node itself.
pub struct CentralMm1 {
    pub remote: (f64, f64),
    pub local: (f64, f64),
}

/// One flooding query from `origin` with `ttl`, no service time, constant latency:
/// returns ((nodes reached, Query messages) simulated, the same from petgraph's
/// BFS: the ball of radius ttl, and deg(origin) + Σ (deg(v) − 1) over nodes at
/// distance 1..ttl−1).
pub fn flooding_ball(w: &World, origin: u32, ttl: u32) -> ((u64, u64), (u64, u64)) {
    let cfg = SimConfig {
        warmup: SimTime::ZERO,
        timeout: SimTime::from_secs(10),
        ..SimConfig::new(1, SimTime::from_secs(10))
    };
    let spec = WorkloadSpec {
        rate: Rate(0.0),
        script: vec![ScriptedQuery { at: SimTime::from_secs(1), origin, rtype: 0 }],
        ..Default::default()
    };
    let workload = Workload::new(&spec, w.nodes(), w.resources.types(), cfg.duration, 1);
    let out = ProtocolSpec::Flooding(flooding::Params { ttl }).run(w, workload, &cfg);
    let reached = out.recorder.queries[0].reached as u64;
    let metrics = out.recorder.finish(out.kinds, out.events);
    let sent = metrics.iter().find(|(n, _)| n == "messages_query").and_then(|(_, v)| *v).unwrap_or(0.0) as u64;

    let g = UnGraph::<(), ()>::from_edges(w.overlay.edge_list());
    let dist = petgraph::algo::dijkstra(&g, NodeIndex::new(origin as usize), None, |_| 1u32);
    let ball = dist.values().filter(|&&d| d <= ttl).count() as u64;
    let degree = |v: NodeIndex| g.neighbors(v).count() as u64;
    let forwards: u64 = dist.iter().filter(|&(_, &d)| d >= 1 && d < ttl).map(|(&v, _)| degree(v) - 1).sum();
    ((reached, sent), (ball, degree(NodeIndex::new(origin as usize)) + forwards))
}

/// One query, from node 0 at time 0, on a ring of 20 nodes with constant
/// `latency_ms` links where only node `holder` holds the one resource type: the
/// query's record, for exact checks of hops and latency.
pub fn ring_query(protocol: &ProtocolSpec, holder: u32, latency_ms: u64) -> QueryRecord {
    let mut w = world(&TopologySpec::Ring {}, 20, latency_ms, 1, 0, 1);
    w.resources = crate::world::Resources::from_holders(20, vec![vec![holder]]);
    let cfg = SimConfig::new(1, SimTime::from_secs(60));
    let spec = WorkloadSpec {
        rate: Rate(0.0),
        script: vec![ScriptedQuery { at: SimTime::ZERO, origin: 0, rtype: 0 }],
        ..Default::default()
    };
    let workload = Workload::new(&spec, w.nodes(), w.resources.types(), cfg.duration, 1);
    protocol.run(&w, workload, &cfg).recorder.queries.swap_remove(0)
}

/// One gridnut query on the ring of [`ring_query`] with a flush `window_ms`, for a
/// resource held only `hops` (≤ 9) away: every hop out and back is one message into
/// an empty buffer, so it waits the window and then the latency. Returns (simulated
/// first-hit latency, 2·hops·(latency + window)).
pub fn gridnut_ring_latency(hops: u32, latency_ms: u64, window_ms: u64) -> (Option<SimTime>, SimTime) {
    let params = gridnut::Params { ttl: hops, window: SimTime::from_millis(window_ms), batch: 16 };
    let q = ring_query(&ProtocolSpec::Gridnut(params), hops, latency_ms);
    (q.latency(), SimTime::from_millis(2 * hops as u64 * (latency_ms + window_ms)))
}

/// One random walker of `length` steps (no checking) from a uniformly random origin
/// on a random 10-regular graph of 10,000 nodes, for one of 100 types with 20
/// replicas placed uniformly: returns (simulated success rate, expected success
/// rate, tolerance). Queries whose origin holds the type are left out, since the
/// origin's own copy does not count; the R holders are then R distinct nodes drawn
/// uniformly from the N − 1 others.
///
/// The textbook 1 − (1 − R/N)^L assumes the walk sees L distinct nodes, but a walk
/// revisits nodes, so that figure is too high (0.095 against a simulated 0.089 at L =
/// 50). Here the expected number m of distinct nodes other than the origin comes
/// from [`tree_walk_range`], the exact mean range of a walk on the d-regular tree,
/// which a random d-regular graph is around almost every node; m is close to
/// L(d−2)/(d−1) (44.6 of 50 steps, 89.0 of 100). Given m distinct nodes, the walk
/// misses all R holders with probability Π_{i<R} (1 − m/(N−1−i)). On the finite
/// graph the walk can also meet its own path by a cycle, about L²/(2N) times; the
/// tolerance is three binomial standard errors plus the change in the expected
/// value if m were smaller by twice that.
pub fn random_walk_success(length: u32, seed: u64) -> (f64, f64, f64) {
    let (nodes, degree, types, replicas) = (10_000u32, 10u32, 100u32, 20u32);
    let w = world(&TopologySpec::RandomRegular { degree }, nodes, 10, types, replicas, seed);
    let cfg = SimConfig { timeout: SimTime::from_secs(5), ..SimConfig::new(seed, SimTime::from_secs(80)) };
    let spec = WorkloadSpec { rate: Rate(100.0), ..Default::default() };
    let workload = Workload::new(&spec, w.nodes(), types, cfg.duration, seed);
    let params = random_walk::Params { walkers: 1, ttl: length, check_every: 0 };
    let out = ProtocolSpec::RandomWalk(params).run(&w, workload, &cfg);
    let counted: Vec<bool> =
        out.recorder.measured().filter(|q| !w.resources.holds(q.origin, q.want)).map(|q| q.succeeded()).collect();
    let n = counted.len().max(1) as f64;
    let simulated = counted.iter().filter(|&&s| s).count() as f64 / n;
    let others = (nodes - 1) as f64;
    let success = |m: f64| 1.0 - (0..replicas).map(|i| 1.0 - m / (others - i as f64)).product::<f64>();
    let m = tree_walk_range(degree, length);
    let expected = success(m);
    let meetings = (length as f64).powi(2) / (2.0 * nodes as f64);
    let tolerance = 3.0 * (expected * (1.0 - expected) / n).sqrt() + (expected - success(m - 2.0 * meetings));
    (simulated, expected, tolerance)
}

/// The expected number of distinct nodes, other than its start, that a simple
/// random walk of `steps` steps visits on the infinite `degree`-regular tree.
///
/// By reversing time, step k lands on a node not seen before exactly when the
/// reversed walk of k steps does not return to its start, so the range is
/// Σ_{k=1..L} P(no return to the start within k steps). That probability follows
/// the walk's distance from the start: from distance j ≥ 1 it moves in with
/// probability 1/d and out with (d−1)/d. It falls towards (d−2)/(d−1), the
/// probability of never returning.
pub fn tree_walk_range(degree: u32, steps: u32) -> f64 {
    let d = degree as f64;
    // at[j]: probability that the walk is at distance j and has not yet returned.
    let mut at = vec![0.0; steps as usize + 2];
    at[1] = 1.0;
    let mut range = 0.0;
    for k in 1..=steps as usize {
        if k > 1 {
            let mut next = vec![0.0; at.len()];
            for j in 1..k {
                next[j + 1] += at[j] * (d - 1.0) / d;
                if j > 1 {
                    next[j - 1] += at[j] / d;
                }
            }
            at = next;
        }
        range += at.iter().sum::<f64>();
    }
    range
}

/// Runs every check.
pub fn suite() -> Vec<Check> {
    let mut checks = Vec::new();
    let topologies = [
        (TopologySpec::RandomRegular { degree: 4 }, 10_000),
        (TopologySpec::BarabasiAlbert { m: 2 }, 5_000),
        (TopologySpec::WattsStrogatz { degree: 6, rewire: 0.2 }, 5_000),
        (TopologySpec::ErdosRenyi { mean_degree: 12.0 }, 2_000),
    ];
    for (t, n) in topologies {
        let w = world(&t, n, 20, 1, 0, 7);
        let name = format!("{t:?}").split_whitespace().next().unwrap_or("").to_string();
        for ttl in 1..=6 {
            let (got, want) = flooding_ball(&w, 0, ttl);
            checks.push(Check {
                name: format!("flooding BFS ball, {name} n={n} ttl={ttl}"),
                expected: format!("{} reached, {} queries", want.0, want.1),
                got: format!("{} reached, {} queries", got.0, got.1),
                pass: got == want,
            });
        }
    }
    for (hops, window_ms) in [(3, 0), (5, 30), (9, 250)] {
        let (got, want) = gridnut_ring_latency(hops, 20, window_ms);
        checks.push(Check {
            name: format!("gridnut first hit {hops} hops away, 20 ms links, window {window_ms} ms"),
            expected: format!("{} ms", want.as_millis_f64()),
            got: got.map_or("no hit".into(), |t| format!("{} ms", t.as_millis_f64())),
            pass: got == Some(want),
        });
    }
    for (lambda, mu) in [(100.0, 200.0), (160.0, 200.0)] {
        let (got, want) = central_mm1(lambda, mu, 5).remote;
        checks.push(Check {
            name: format!("central index = M/M/1, ρ = {:.1}", lambda / mu),
            expected: format!("{want:.2} ms ± 5%"),
            got: format!("{got:.2} ms"),
            pass: (got - want).abs() / want < 0.05,
        });
    }
    for length in [50, 100] {
        let (got, want, tolerance) = random_walk_success(length, 3);
        checks.push(Check {
            name: format!("random walk success, 10-regular n=10000 R=20 L={length}"),
            expected: format!("{want:.4} ± {tolerance:.4}"),
            got: format!("{got:.4}"),
            pass: (got - want).abs() < tolerance,
        });
    }
    checks
}
