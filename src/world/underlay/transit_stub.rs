//! GT-ITM's transit-stub model (Zegura, Calvert, Bhattacharjee, "How to model an
//! internetwork", INFOCOM 1996; Calvert, Doar, Zegura, "Modeling Internet topology",
//! IEEE Communications Magazine 1997) as a latency model.
//!
//! The hierarchy: `transit_domains` transit domains (backbones) of `transit_nodes`
//! transit routers each; `stub_domains` stub domains hang off every transit router,
//! each of `stub_nodes` stub routers. Every simulated node is attached to a stub
//! router drawn uniformly (with replacement) from the run's placement stream, and
//! a message follows the hierarchical route: from the node to its router, within
//! the stub domain if the other node's router is in it, otherwise up to the stub
//! domain's transit router, across the transit level (within the transit domain, or
//! to another one) and down again to the other node's router and the node.
//!
//! The simplification, said plainly: GT-ITM draws a random graph inside every
//! domain and routes on shortest paths, so its latencies within a domain depend on
//! how many hops apart two routers are and which links they take. Here every level
//! costs one constant latency whatever the routers' places in their domains: a
//! route within a stub domain is `intra_stub`, stub router to transit router is
//! `stub_transit` (the way through the stub domain to its gateway included), a
//! route between transit routers of one domain is `intra_transit` and one between
//! transit domains `inter_transit` (the ways inside both domains to their border
//! routers included). There are no multi-homed stubs and no stub–stub shortcuts,
//! which GT-ITM can add. So latency depends only on the level at which two routes
//! meet, and that is what makes it O(1) with one u32 (the router) per node.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use super::LatencyError;
use crate::base::{NodeId, SimTime};

/// What `peergrid list` shows, defaults included (a test checks them against [`TransitStubSpec::default`]).
pub const SUMMARY: &str = "transit_domains = 10, transit_nodes = 5, stub_domains = 10, stub_nodes = 10, \
access = \"1ms\", intra_stub = \"2ms\", stub_transit = \"5ms\", intra_transit = \"20ms\", inter_transit = \"50ms\": \
GT-ITM's transit-stub hierarchy (Zegura et al. 1996); each node on a random stub router; latency = 2 × access + \
intra_stub within a stub domain, else 2 × access + 2 × stub_transit + (nothing under one transit router, \
intra_transit within a transit domain, inter_transit between two)";

/// `network.latency = { model = "transit-stub", ... }`: the sizes of the hierarchy and
/// the one-way latency of each level a route crosses. Every key has a default.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TransitStubSpec {
    /// Transit domains: the backbones at the top of the hierarchy.
    pub transit_domains: u32,
    /// Transit routers in each transit domain.
    pub transit_nodes: u32,
    /// Stub domains attached to each transit router.
    pub stub_domains: u32,
    /// Stub routers in each stub domain; simulated nodes attach to these.
    pub stub_nodes: u32,
    /// From a simulated node to its stub router (the access link); a route pays it at both ends.
    pub access: SimTime,
    /// Between two stub routers of the same stub domain.
    pub intra_stub: SimTime,
    /// From a stub router up to its stub domain's transit router; a route that leaves the stub domain pays it at both ends.
    pub stub_transit: SimTime,
    /// Between two transit routers of the same transit domain.
    pub intra_transit: SimTime,
    /// Between transit routers of two different transit domains.
    pub inter_transit: SimTime,
}

impl Default for TransitStubSpec {
    /// 10 × 5 × 10 × 10 = 5,000 stub routers under 50 transit routers, a GT-ITM graph of
    /// the size overlay studies commonly used; GT-ITM gives edge lengths, not times,
    /// so the latencies are this model's own choice: each level a few times the one
    /// below, for a mean one-way latency of 58.6 ms.
    fn default() -> Self {
        TransitStubSpec {
            transit_domains: 10,
            transit_nodes: 5,
            stub_domains: 10,
            stub_nodes: 10,
            access: SimTime::from_millis(1),
            intra_stub: SimTime::from_millis(2),
            stub_transit: SimTime::from_millis(5),
            intra_transit: SimTime::from_millis(20),
            inter_transit: SimTime::from_millis(50),
        }
    }
}

/// The most stub routers a hierarchy may have: a node's router is a u32.
const MAX_ROUTERS: u64 = u32::MAX as u64;

impl TransitStubSpec {
    /// Stub routers in the whole hierarchy (at most 2^32 − 1 once checked).
    pub fn routers(&self) -> u64 {
        [self.transit_domains, self.transit_nodes, self.stub_domains, self.stub_nodes]
            .iter()
            .fold(1u64, |acc, &x| acc.saturating_mul(x as u64))
    }

    /// One-way latency by the level at which two nodes' routes meet: the same
    /// router, the same stub domain, the same transit router, the same transit
    /// domain, different transit domains.
    pub fn levels(&self) -> [SimTime; 5] {
        let ends = self.access.saturating_add(self.access);
        let up_down = ends.saturating_add(self.stub_transit).saturating_add(self.stub_transit);
        [
            ends,
            ends.saturating_add(self.intra_stub),
            up_down,
            up_down.saturating_add(self.intra_transit),
            up_down.saturating_add(self.inter_transit),
        ]
    }

    /// The mean one-way latency in seconds between two distinct nodes, each on a
    /// router drawn uniformly and independently: exact, from the probabilities that
    /// two routers share a router, stub domain, transit router or transit domain.
    pub fn mean_s(&self) -> f64 {
        let t = self.transit_domains.max(1) as f64;
        let transit = t * self.transit_nodes.max(1) as f64;
        let stubs = transit * self.stub_domains.max(1) as f64;
        let routers = stubs * self.stub_nodes.max(1) as f64;
        // P(meet at or below each level), from the same router up to anywhere.
        let at_or_below = [1.0 / routers, 1.0 / stubs, 1.0 / transit, 1.0 / t, 1.0];
        let levels = self.levels();
        let mut below = 0.0;
        let mut mean = 0.0;
        for (p, l) in at_or_below.iter().zip(levels) {
            mean += (p - below) * l.as_secs_f64();
            below = *p;
        }
        mean
    }

    /// Every size at least 1, and at most 2^32 − 1 stub routers in all.
    pub fn check(&self) -> Result<(), LatencyError> {
        for (key, v) in [
            ("transit_domains", self.transit_domains),
            ("transit_nodes", self.transit_nodes),
            ("stub_domains", self.stub_domains),
            ("stub_nodes", self.stub_nodes),
        ] {
            if v == 0 {
                return Err(LatencyError { key, message: "expected at least 1".into() });
            }
        }
        let routers = self.routers();
        if routers > MAX_ROUTERS {
            return Err(LatencyError {
                key: "stub_nodes",
                message: format!(
                    "transit_domains × transit_nodes × stub_domains × stub_nodes = {routers} stub routers; expected at most {MAX_ROUTERS}"
                ),
            });
        }
        Ok(())
    }
}

/// A transit-stub underlay for one run: each node's stub router and the latency of
/// each level. Routers are numbered so that a stub domain's are consecutive, a
/// transit router's stub domains are, and a transit domain's transit routers are,
/// so the level two routers meet at is found by integer division.
#[derive(Clone, Debug)]
pub struct TransitStub {
    /// Stub routers per stub domain.
    per_stub_domain: u32,
    /// Stub routers under one transit router.
    per_transit_node: u32,
    /// Stub routers under one transit domain.
    per_transit_domain: u32,
    /// Latency in nanoseconds by meeting level, as [`TransitStubSpec::levels`].
    level: [u64; 5],
    /// Each node's stub router, indexed by `NodeId`.
    router: Vec<u32>,
}

impl TransitStub {
    /// Attaches each of `nodes` nodes to a stub router drawn uniformly from `rng`.
    /// `spec` must have passed [`TransitStubSpec::check`].
    pub fn new(spec: &TransitStubSpec, nodes: usize, rng: &mut ChaCha8Rng) -> TransitStub {
        let routers = spec.routers().clamp(1, MAX_ROUTERS) as u32;
        let per_stub_domain = spec.stub_nodes.max(1);
        let per_transit_node = per_stub_domain.saturating_mul(spec.stub_domains.max(1));
        let per_transit_domain = per_transit_node.saturating_mul(spec.transit_nodes.max(1));
        TransitStub {
            per_stub_domain,
            per_transit_node,
            per_transit_domain,
            level: spec.levels().map(|t| t.0),
            router: (0..nodes).map(|_| rng.random_range(0..routers)).collect(),
        }
    }

    /// The stub router node `v` is attached to.
    pub fn router(&self, v: NodeId) -> u32 {
        self.router[v.index()]
    }

    /// The one-way latency between `a` and `b`: that of the level their routes meet at.
    #[inline]
    pub fn latency(&self, a: NodeId, b: NodeId) -> SimTime {
        let (ra, rb) = (self.router[a.index()], self.router[b.index()]);
        // Most pairs are in different transit domains: test from the top.
        let level = if ra / self.per_transit_domain != rb / self.per_transit_domain {
            4
        } else if ra / self.per_transit_node != rb / self.per_transit_node {
            3
        } else if ra / self.per_stub_domain != rb / self.per_stub_domain {
            2
        } else if ra != rb {
            1
        } else {
            0
        };
        SimTime(self.level[level])
    }

    /// Bytes held: one router per node.
    pub fn bytes(&self) -> usize {
        self.router.capacity() * std::mem::size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::rng::{Stream, stream};

    fn spec(text: &str) -> TransitStubSpec {
        toml::from_str(text).expect("a valid transit-stub table")
    }

    #[test]
    fn the_defaults_listed_are_the_defaults() {
        let listed = SUMMARY.split(':').next().expect("keys before the colon");
        assert_eq!(spec(&listed.replace(", ", "\n")), TransitStubSpec::default());
        assert_eq!(spec(""), TransitStubSpec::default());
    }

    #[test]
    fn levels_order_as_configured_and_latency_is_symmetric() {
        let s = TransitStubSpec { transit_domains: 3, transit_nodes: 2, stub_domains: 2, stub_nodes: 2, ..spec("") };
        let ts = TransitStub::new(&s, 400, &mut stream(5, Stream::Placement));
        let ms = |t: SimTime| t.as_millis_f64();
        // Routers 0, 1 share a stub domain; 2 is the next one under transit router 0;
        // 4 is under transit router 1 of domain 0; 8 is in transit domain 1.
        let of = |r: u32| (0..400u32).map(NodeId).find(|&v| ts.router(v) == r).expect("400 nodes cover 24 routers");
        let twin = (0..400u32).map(NodeId).filter(|&v| ts.router(v) == 0).nth(1).expect("two nodes on router 0");
        let at = |r: u32| ms(ts.latency(of(0), of(r)));
        assert_eq!(ms(ts.latency(of(0), twin)), 2.0);
        assert_eq!(at(1), 4.0, "same stub domain: 2 × access + intra_stub");
        assert_eq!(at(2), 12.0, "same transit router: 2 × access + 2 × stub_transit");
        assert_eq!(at(4), 32.0, "same transit domain: ... + intra_transit");
        assert_eq!(at(8), 62.0, "different transit domains: ... + inter_transit");
        for a in (0..400).step_by(7).map(NodeId) {
            for b in (0..400).step_by(11).map(NodeId) {
                assert_eq!(ts.latency(a, b), ts.latency(b, a));
            }
        }
        let custom = TransitStubSpec {
            intra_stub: SimTime::from_millis(30),
            intra_transit: SimTime::from_millis(1),
            ..s.clone()
        };
        let c = TransitStub::new(&custom, 400, &mut stream(5, Stream::Placement));
        assert_eq!(ms(c.latency(of(0), of(1))), 32.0, "levels follow the keys, not a fixed order");
        assert_eq!(ms(c.latency(of(0), of(4))), 13.0);
    }

    #[test]
    fn the_mean_is_exact_under_uniform_attachment() {
        let d = TransitStubSpec::default();
        // 1/5000 same router, 1/500 same stub domain, 1/50 same transit router, 1/10 same domain.
        let want = (2.0 / 5000.0
            + 4.0 * (1.0 / 500.0 - 1.0 / 5000.0)
            + 12.0 * (1.0 / 50.0 - 1.0 / 500.0)
            + 32.0 * (1.0 / 10.0 - 1.0 / 50.0)
            + 62.0 * 0.9)
            / 1000.0;
        assert!((d.mean_s() - want).abs() < 1e-12, "{} vs {want}", d.mean_s());
        assert!((d.mean_s() - 0.0586).abs() < 0.0001, "{}", d.mean_s());
        // A small hierarchy, where every level is likely, against the sample mean.
        let s = TransitStubSpec { transit_domains: 2, transit_nodes: 2, stub_domains: 2, stub_nodes: 2, ..d };
        let n = 4000;
        let ts = TransitStub::new(&s, n, &mut stream(9, Stream::Placement));
        let mut sum = 0.0;
        let mut pairs = 0.0;
        for a in (0..n as u32).step_by(3) {
            for b in (1..n as u32).step_by(5).filter(|&b| b != a) {
                sum += ts.latency(NodeId(a), NodeId(b)).as_secs_f64();
                pairs += 1.0;
            }
        }
        assert!((sum / pairs / s.mean_s() - 1.0).abs() < 0.02, "{} vs {}", sum / pairs, s.mean_s());
    }

    #[test]
    fn sizes_are_checked() {
        assert_eq!(spec("stub_nodes = 0").check().map_err(|e| e.key), Err("stub_nodes"));
        let huge = spec("transit_domains = 100000\ntransit_nodes = 100000");
        assert!(huge.check().is_err_and(|e| e.message.contains("at most 4294967295")));
        assert!(spec("").check().is_ok());
    }

    #[test]
    fn a_million_nodes_take_four_bytes_each() {
        let ts = TransitStub::new(&TransitStubSpec::default(), 1_000_000, &mut stream(1, Stream::Placement));
        assert_eq!(ts.bytes(), 4_000_000);
        assert!(ts.router.iter().all(|&r| r < 5000));
    }
}
