//! Resources: R types, each replicated on some nodes. Both directions are kept in
//! CSR form: the types a node holds, and the nodes holding a type.

use rand::RngExt;
use rand::seq::SliceRandom;
use rand::seq::index;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Zipf};
use serde::{Deserialize, Deserializer};

use super::attributes::AttributeSpec;
use crate::base::{NodeId, Rate, ResourceType};

/// `[resources]`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResourcesSpec {
    /// Distinct resource types.
    #[serde(default = "default_types")]
    pub types: u32,
    /// Copies of each type, on distinct nodes.
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    /// Which nodes get the copies.
    #[serde(default)]
    pub placement: Placement,
    /// How many copies each type gets: `replicas` each, or a share of `copies`.
    #[serde(default)]
    pub replication: Replication,
    /// Copies of all types together, for the replications that share them out;
    /// unset = types × replicas.
    #[serde(default)]
    pub copies: Option<u64>,
    /// The query popularity the shares follow; unset = the workload's.
    #[serde(default)]
    pub popularity: Option<Skew>,
    /// How copies change during a run; none by default.
    #[serde(default)]
    pub changes: Changes,
    /// Numeric attributes every node has, each drawn from a distribution; with
    /// attributes (or `attribute_file`) the `types` are range queries over them.
    #[serde(default)]
    pub attributes: Vec<AttributeSpec>,
    /// A file of attribute values, a header of names and a row per host,
    /// relative to the scenario's folder.
    #[serde(default)]
    pub attribute_file: Option<String>,
    /// With attributes: how many attributes each range query constrains.
    #[serde(default = "default_query_attributes")]
    pub query_attributes: u32,
    /// With attributes: the share of an attribute's value range that each
    /// range of a query spans.
    #[serde(default = "default_selectivity")]
    pub selectivity: f64,
}

/// `[resources] changes`: resource copies that change during a run, each kind a
/// Poisson process at a rate per node (N times that over the whole network).
/// A bare rate, `changes = "0.01/s"`, is `{ swap = "0.01/s" }`.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Changes {
    /// A copy, drawn uniformly among all copies, turns into a type its node does
    /// not hold: every node keeps its number of copies.
    pub swap: Rate,
    /// A copy moves to a node, drawn uniformly, that does not hold its type: every
    /// type keeps its number of copies.
    pub moves: Rate,
    /// A node, drawn uniformly, gains a copy of a type it does not hold.
    pub appear: Rate,
    /// A copy, drawn uniformly among all copies, vanishes.
    pub vanish: Rate,
}

/// What `[resources] changes` must look like; repeated in its error messages.
pub const CHANGES_EXPECTED: &str = "a rate per node such as \"0.01/s\" (a swap of types), or a table of rates per node with any of swap, move, appear and vanish, such as { move = \"0.001/s\", appear = \"0.0005/s\", vanish = \"0.0005/s\" }";

impl Changes {
    /// The four rates per node, in the order swap, move, appear, vanish.
    pub fn rates(&self) -> [f64; 4] {
        [self.swap.per_second(), self.moves.per_second(), self.appear.per_second(), self.vanish.per_second()]
    }

    /// Whether any copy ever changes.
    pub fn any(&self) -> bool {
        self.rates().iter().any(|&r| r > 0.0)
    }
}

impl<'de> Deserialize<'de> for Changes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = toml::Value::deserialize(d)?;
        let rate = |v: &toml::Value, key: &str| -> Result<Rate, D::Error> {
            Rate::deserialize(v.clone()).map_err(|e| D::Error::custom(format!("{key}: {e}")))
        };
        match &v {
            toml::Value::Table(t) => {
                let mut out = Changes::default();
                for (k, v) in t {
                    let slot = match k.as_str() {
                        "swap" => &mut out.swap,
                        "move" => &mut out.moves,
                        "appear" => &mut out.appear,
                        "vanish" => &mut out.vanish,
                        _ => return Err(D::Error::custom(format!("unknown key `{k}`; expected {CHANGES_EXPECTED}"))),
                    };
                    *slot = rate(v, k)?;
                }
                Ok(out)
            }
            toml::Value::String(_) | toml::Value::Integer(_) | toml::Value::Float(_) => {
                Ok(Changes { swap: rate(&v, "changes")?, ..Changes::default() })
            }
            _ => Err(D::Error::custom(format!("expected {CHANGES_EXPECTED}, found {v}"))),
        }
    }
}

/// `[resources] replication`: how many copies each type gets (Cohen and Shenker,
/// "Replication Strategies in Unstructured Peer-to-Peer Networks", SIGCOMM 2002;
/// Lv et al., ICS 2002).
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Replication {
    /// `fixed`: `replicas` copies of every type.
    #[default]
    Fixed,
    /// `uniform`: the copies shared equally among the types.
    Uniform,
    /// `proportional`: type i gets a share ∝ its query probability q_i.
    Proportional,
    /// `square-root`: type i gets a share ∝ √q_i, which minimises the expected search size.
    SquareRoot,
}

impl ResourcesSpec {
    /// Whether nodes have attributes and the types are range queries over them.
    pub fn uses_attributes(&self) -> bool {
        !self.attributes.is_empty() || self.attribute_file.is_some()
    }

    /// Which of the keys that place copies of types is set, if any: they mean
    /// nothing where the types are range queries or jobs' needs.
    pub fn placement_key(&self) -> Option<&'static str> {
        let d = ResourcesSpec::default();
        [
            ("replicas", self.replicas != d.replicas),
            ("placement", self.placement != d.placement),
            ("replication", self.replication != d.replication),
            ("copies", self.copies.is_some()),
            ("changes", self.changes.any()),
        ]
        .into_iter()
        .find(|&(_, set)| set)
        .map(|(k, _)| k)
    }

    /// Copies of all types together (before any type is capped at the node count).
    pub fn total_copies(&self) -> u64 {
        match self.replication {
            Replication::Fixed => self.types as u64 * self.replicas as u64,
            _ => self.copies.unwrap_or(self.types as u64 * self.replicas as u64),
        }
    }

    /// Copies of each type on `nodes` nodes. The shared-out replications give type
    /// i the share x_i = R·w_i / Σ w of the R copies (w_i = 1, q_i or √q_i), at
    /// least 1 and at most `nodes`, rounded by largest remainder so that they add up
    /// to R wherever the bounds allow.
    pub fn counts(&self, nodes: usize) -> Vec<u32> {
        let m = self.types as usize;
        let cap = nodes as u64;
        if self.replication == Replication::Fixed {
            return vec![(self.replicas as u64).min(cap) as u32; m];
        }
        let q = self.popularity.unwrap_or_default().weights(self.types);
        let w: Vec<f64> = match self.replication {
            Replication::Uniform | Replication::Fixed => vec![1.0; m],
            Replication::Proportional => q,
            Replication::SquareRoot => q.iter().map(|x| x.sqrt()).collect(),
        };
        let sum: f64 = w.iter().sum();
        let total = self.total_copies().min(cap * m as u64);
        let ideal: Vec<f64> = w.iter().map(|x| total as f64 * x / sum).collect();
        let mut r: Vec<u64> = ideal.iter().map(|&x| (x.floor() as u64).clamp(1, cap)).collect();
        let mut placed: u64 = r.iter().sum();
        // Largest remainders first, ties to the lower type: deterministic.
        let mut order: Vec<usize> = (0..m).collect();
        order.sort_by(|&a, &b| (ideal[b] - ideal[b].floor()).total_cmp(&(ideal[a] - ideal[a].floor())).then(a.cmp(&b)));
        while placed < total {
            let before = placed;
            for &i in &order {
                if placed == total {
                    break;
                }
                if r[i] < cap {
                    r[i] += 1;
                    placed += 1;
                }
            }
            if placed == before {
                break;
            }
        }
        // The floor of one copy may overshoot R: take back from the largest shares.
        while placed > total {
            let Some(i) = (0..m).filter(|&i| r[i] > 1).max_by_key(|&i| (r[i], std::cmp::Reverse(i))) else { break };
            r[i] -= 1;
            placed -= 1;
        }
        r.into_iter().map(|x| x as u32).collect()
    }
}

fn default_types() -> u32 {
    100
}
fn default_replicas() -> u32 {
    10
}
fn default_query_attributes() -> u32 {
    1
}
fn default_selectivity() -> f64 {
    0.1
}

impl Default for ResourcesSpec {
    fn default() -> Self {
        ResourcesSpec {
            types: default_types(),
            replicas: default_replicas(),
            placement: Placement::Uniform,
            replication: Replication::Fixed,
            copies: None,
            popularity: None,
            changes: Changes::default(),
            attributes: Vec::new(),
            attribute_file: None,
            query_attributes: default_query_attributes(),
            selectivity: default_selectivity(),
        }
    }
}

/// `"uniform"`, `{ zipf = s }` or `{ geometric = p }`: how choices are spread over
/// ranked items (node ranks for placement, resource types for popularity).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Skew {
    /// Every item equally likely.
    #[default]
    Uniform,
    /// Item of rank r (1-based) chosen with probability ∝ r^−s.
    Zipf(f64),
    /// Item of rank r (0-based) chosen with probability ∝ (1 − p)^r: the head is
    /// exponentially more likely than the tail (Iamnitchi and Foster's "unbalanced"
    /// resource distribution).
    Geometric(f64),
}

const SKEW_EXPECTED: &str = "\"uniform\", { zipf = <exponent ≥ 0> } or { geometric = <0 < p < 1> }";

fn number(v: Option<&toml::Value>) -> Option<f64> {
    match v {
        Some(toml::Value::Float(f)) => Some(*f),
        Some(toml::Value::Integer(i)) => Some(*i as f64),
        _ => None,
    }
}

impl Skew {
    /// Reads a skew from a TOML value; `expected` names every accepted form, for errors.
    fn from_value(v: &toml::Value, expected: &str) -> Result<Skew, String> {
        match v {
            toml::Value::String(s) if s == "uniform" => Ok(Skew::Uniform),
            toml::Value::Table(t) if t.len() == 1 && t.contains_key("zipf") => match number(t.get("zipf")) {
                Some(s) if s.is_finite() && s >= 0.0 => Ok(Skew::Zipf(s)),
                Some(s) => Err(format!("zipf exponent {s} is out of range; expected a number ≥ 0")),
                None => Err(format!("expected {expected}, found {v}")),
            },
            toml::Value::Table(t) if t.len() == 1 && t.contains_key("geometric") => match number(t.get("geometric")) {
                Some(p) if p > 0.0 && p < 1.0 => Ok(Skew::Geometric(p)),
                Some(p) => Err(format!("geometric p {p} is out of range; expected 0 < p < 1")),
                None => Err(format!("expected {expected}, found {v}")),
            },
            _ => Err(format!("expected {expected}, found {v}")),
        }
    }
}

impl<'de> Deserialize<'de> for Skew {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = toml::Value::deserialize(d)?;
        Skew::from_value(&v, SKEW_EXPECTED).map_err(serde::de::Error::custom)
    }
}

impl Skew {
    /// The probability of each of `n` ranks, from rank 0.
    pub fn weights(self, n: u32) -> Vec<f64> {
        let w: Vec<f64> = (0..n)
            .map(|r| match self {
                Skew::Uniform => 1.0,
                Skew::Zipf(s) => ((r + 1) as f64).powf(-s),
                Skew::Geometric(p) => (1.0 - p).powi(r as i32),
            })
            .collect();
        let sum: f64 = w.iter().sum();
        w.into_iter().map(|x| x / sum).collect()
    }

    /// Draws a 0-based rank among `n` items.
    pub fn sample(self, n: u32, rng: &mut ChaCha8Rng) -> u32 {
        match self {
            Skew::Zipf(s) if s > 0.0 && n > 1 => {
                let z = Zipf::new(n as f64, s).expect("validated exponent");
                (z.sample(rng) as u32).clamp(1, n) - 1
            }
            Skew::Geometric(p) if n > 1 => {
                // Inverse CDF of the geometric law truncated to n items: one draw per
                // sample, so the stream advances the same whatever the outcome.
                let q = 1.0 - p;
                let u: f64 = rng.random();
                let tail = q.powf(n as f64);
                let r = ((1.0 - u * (1.0 - tail)).ln() / q.ln()).floor();
                (r.max(0.0) as u32).min(n - 1)
            }
            _ => rng.random_range(0..n),
        }
    }
}

/// `[resources] placement`: which nodes get the copies.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Placement {
    /// Each type's copies on distinct nodes drawn uniformly.
    #[default]
    Uniform,
    /// Every node holds the same number of copies, ±1 (Iamnitchi and Foster's
    /// "balanced" distribution).
    Balanced,
    /// Nodes ranked by a random permutation, rank r chosen ∝ r^−s.
    Zipf(f64),
    /// Nodes ranked by a random permutation, rank r chosen ∝ (1 − p)^r: a few nodes
    /// share many resources (the paper's "unbalanced" distribution).
    Geometric(f64),
}

const PLACEMENT_EXPECTED: &str = "\"uniform\", \"balanced\", { zipf = <exponent ≥ 0> } or { geometric = <0 < p < 1> }";

impl<'de> Deserialize<'de> for Placement {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = toml::Value::deserialize(d)?;
        if v.as_str() == Some("balanced") {
            return Ok(Placement::Balanced);
        }
        match Skew::from_value(&v, PLACEMENT_EXPECTED).map_err(serde::de::Error::custom)? {
            Skew::Uniform => Ok(Placement::Uniform),
            Skew::Zipf(s) => Ok(Placement::Zipf(s)),
            Skew::Geometric(p) => Ok(Placement::Geometric(p)),
        }
    }
}

impl Placement {
    /// The skew over ranked nodes, for the placements that rank nodes.
    fn ranked(self) -> Option<Skew> {
        match self {
            Placement::Zipf(s) => Some(Skew::Zipf(s)),
            Placement::Geometric(p) => Some(Skew::Geometric(p)),
            Placement::Uniform | Placement::Balanced => None,
        }
    }

    /// Whether placing needs a random permutation of the nodes.
    pub fn permutes(self) -> bool {
        self != Placement::Uniform
    }
}

/// Where every resource copy is, in both directions.
#[derive(Clone, Debug, Default)]
pub struct Resources {
    types: u32,
    node_offsets: Vec<u32>,
    node_types: Vec<ResourceType>,
    type_offsets: Vec<u32>,
    type_nodes: Vec<NodeId>,
}

impl Resources {
    /// Places `replicas` copies of each type on distinct nodes. With zipf or geometric
    /// placement nodes are ranked by a random permutation and rank r is chosen with
    /// the skew's probability, so a few nodes are resource-rich; with balanced
    /// placement the copies are dealt round-robin over a random permutation.
    pub fn place(spec: &ResourcesSpec, nodes: usize, rng: &mut ChaCha8Rng) -> Resources {
        let counts = spec.counts(nodes);
        let mut by_type: Vec<Vec<u32>> = Vec::with_capacity(spec.types as usize);
        let mut rank: Vec<u32> = (0..nodes as u32).collect();
        if spec.placement.permutes() {
            rank.shuffle(rng);
        }
        let mut chosen = vec![false; nodes];
        // The next position of `rank` to deal a balanced copy to.
        let mut deal = 0;
        for &replicas in &counts {
            let replicas = replicas as usize;
            let mut holders: Vec<u32> = match (spec.placement, spec.placement.ranked()) {
                (Placement::Balanced, _) => {
                    // replicas ≤ nodes consecutive positions are distinct nodes.
                    let picked = (0..replicas).map(|i| rank[(deal + i) % nodes]).collect();
                    deal = (deal + replicas) % nodes.max(1);
                    picked
                }
                (_, Some(skew)) => {
                    let mut picked = Vec::with_capacity(replicas);
                    let mut attempts = 0;
                    while picked.len() < replicas && attempts < 64 * replicas + 64 {
                        let v = rank[skew.sample(nodes as u32, rng) as usize];
                        if !chosen[v as usize] {
                            chosen[v as usize] = true;
                            picked.push(v);
                        }
                        attempts += 1;
                    }
                    // Extremely skewed placements run out of fresh draws: fill by rank.
                    for &v in &rank {
                        if picked.len() == replicas {
                            break;
                        }
                        if !chosen[v as usize] {
                            chosen[v as usize] = true;
                            picked.push(v);
                        }
                    }
                    for &v in &picked {
                        chosen[v as usize] = false;
                    }
                    picked
                }
                _ => index::sample(rng, nodes, replicas).into_iter().map(|i| i as u32).collect(),
            };
            holders.sort_unstable();
            by_type.push(holders);
        }
        Self::from_holders(nodes, by_type)
    }

    /// Builds the index from, for each type, the nodes that hold it.
    pub fn from_holders(nodes: usize, by_type: Vec<Vec<u32>>) -> Resources {
        let mut type_offsets = vec![0u32];
        let mut type_nodes = Vec::new();
        let mut count = vec![0u32; nodes + 1];
        for holders in &by_type {
            for &v in holders {
                type_nodes.push(NodeId(v));
                count[v as usize + 1] += 1;
            }
            type_offsets.push(type_nodes.len() as u32);
        }
        for i in 0..nodes {
            count[i + 1] += count[i];
        }
        let node_offsets = count;
        let mut fill = node_offsets.clone();
        let mut node_types = vec![ResourceType(0); type_nodes.len()];
        for (t, holders) in by_type.iter().enumerate() {
            for &v in holders {
                node_types[fill[v as usize] as usize] = ResourceType(t as u32);
                fill[v as usize] += 1;
            }
        }
        Resources { types: by_type.len() as u32, node_offsets, node_types, type_offsets, type_nodes }
    }

    /// Bytes the index occupies.
    pub fn bytes(&self) -> usize {
        (self.node_offsets.capacity() + self.type_offsets.capacity()) * 4
            + (self.node_types.capacity() + self.type_nodes.capacity()) * 4
    }

    /// How many resource types there are; their ids run 0..types.
    pub fn types(&self) -> u32 {
        self.types
    }

    /// The types `v` holds, ascending.
    #[inline]
    pub fn of_node(&self, v: NodeId) -> &[ResourceType] {
        &self.node_types[self.node_offsets[v.index()] as usize..self.node_offsets[v.index() + 1] as usize]
    }

    /// Hints that `v`'s types will be read soon: the bounds of its list.
    #[inline(always)]
    pub fn prefetch(&self, v: NodeId) {
        crate::base::prefetch(&self.node_offsets, v.index());
    }

    /// Hints each cache line of `v`'s list of types (its bounds are read, cheap
    /// after [`Resources::prefetch`]).
    #[inline(always)]
    pub fn prefetch_types(&self, v: NodeId) {
        crate::base::prefetch_row(&self.node_offsets, &self.node_types, v.index());
    }

    /// Whether node `v` holds a copy of type `t`.
    #[inline]
    pub fn holds(&self, v: NodeId, t: ResourceType) -> bool {
        self.of_node(v).binary_search(&t).is_ok()
    }

    /// Every copy placed, numbered node by node in 0..`copies()`.
    pub fn copies(&self) -> u32 {
        self.node_types.len() as u32
    }

    /// Copy `c`: the node holding it, and its position among that node's types.
    pub fn copy(&self, c: u32) -> (NodeId, usize) {
        let v = self.node_offsets.partition_point(|&o| o <= c) - 1;
        (NodeId(v as u32), (c - self.node_offsets[v]) as usize)
    }

    /// The nodes holding `t`, ascending.
    #[inline]
    pub fn holders(&self, t: ResourceType) -> &[NodeId] {
        &self.type_nodes[self.type_offsets[t.0 as usize] as usize..self.type_offsets[t.0 as usize + 1] as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_numbered_node_by_node() {
        // Node 0 holds types 1 and 2, node 1 nothing, node 2 types 0 and 2.
        let r = Resources::from_holders(3, vec![vec![2], vec![0], vec![0, 2]]);
        assert_eq!(r.copies(), 4);
        let all: Vec<(NodeId, usize)> = (0..4).map(|c| r.copy(c)).collect();
        assert_eq!(all, [(NodeId(0), 0), (NodeId(0), 1), (NodeId(2), 0), (NodeId(2), 1)]);
    }
    use crate::base::rng::{Stream, stream};

    #[test]
    fn every_type_gets_its_replicas_on_distinct_nodes() {
        for placement in [
            Placement::Uniform,
            Placement::Balanced,
            Placement::Zipf(1.2),
            Placement::Zipf(8.0),
            Placement::Geometric(0.1),
            Placement::Geometric(0.9),
        ] {
            let spec = ResourcesSpec { types: 50, replicas: 7, placement, ..Default::default() };
            let r = Resources::place(&spec, 100, &mut stream(3, Stream::Resources));
            for t in 0..50 {
                let h = r.holders(ResourceType(t));
                assert_eq!(h.len(), 7);
                assert!(h.windows(2).all(|w| w[0] < w[1]));
                assert!(h.iter().all(|&v| r.holds(v, ResourceType(t))));
            }
            let total: usize = (0..100).map(|v| r.of_node(NodeId(v)).len()).sum();
            assert_eq!(total, 350);
        }
    }

    #[test]
    fn zipf_placement_concentrates_resources() {
        let spec = ResourcesSpec { types: 200, replicas: 5, placement: Placement::Zipf(1.0), ..Default::default() };
        let r = Resources::place(&spec, 1000, &mut stream(3, Stream::Resources));
        let mut load: Vec<usize> = (0..1000).map(|v| r.of_node(NodeId(v)).len()).collect();
        load.sort_unstable();
        assert!(load[999] > 20 * load[500].max(1), "{:?}", &load[990..]);
    }

    #[test]
    fn balanced_placement_gives_every_node_the_same_count_within_one() {
        // 37 × 9 = 333 copies over 100 nodes: 33 nodes hold 4, 67 hold 3.
        let spec = ResourcesSpec { types: 37, replicas: 9, placement: Placement::Balanced, ..Default::default() };
        let r = Resources::place(&spec, 100, &mut stream(5, Stream::Resources));
        let mut load: Vec<usize> = (0..100).map(|v| r.of_node(NodeId(v)).len()).collect();
        load.sort_unstable();
        assert_eq!((load[0], load[99]), (3, 4));
        assert_eq!(load.iter().filter(|&&l| l == 4).count(), 33);
    }

    #[test]
    fn geometric_placement_puts_most_copies_on_a_few_nodes() {
        let spec =
            ResourcesSpec { types: 100, replicas: 10, placement: Placement::Geometric(0.1), ..Default::default() };
        let r = Resources::place(&spec, 1000, &mut stream(3, Stream::Resources));
        let mut load: Vec<usize> = (0..1000).map(|v| r.of_node(NodeId(v)).len()).collect();
        load.sort_unstable_by(|a, b| b.cmp(a));
        let top: usize = load[..100].iter().sum();
        // P(rank < 100) = 1 − 0.9^100 ≈ 1 − 3·10⁻⁵ per draw; distinct nodes per type
        // only push copies a few ranks further down.
        assert!(top as f64 > 0.95 * 1000.0, "top 10% hold {top} of 1000 copies");
    }

    #[test]
    fn geometric_ranks_follow_the_truncated_law() {
        let mut rng = stream(11, Stream::Workload);
        let p = 0.3;
        let mut count = [0u32; 5];
        let draws = 100_000;
        for _ in 0..draws {
            count[Skew::Geometric(p).sample(5, &mut rng) as usize] += 1;
        }
        let norm: f64 = (0..5).map(|r| 0.7f64.powi(r)).sum();
        for (r, &c) in count.iter().enumerate() {
            let want = 0.7f64.powi(r as i32) / norm * draws as f64;
            assert!((c as f64 - want).abs() < 4.0 * want.sqrt(), "rank {r}: {c} vs {want:.0}");
        }
    }

    /// The mean number of uniformly random probes (with replacement) until a holder
    /// of the wanted type, over `queries` queries drawn from `popularity`, and its
    /// standard error.
    fn probes(r: &Resources, nodes: u32, popularity: Skew, queries: u32, seed: u64) -> (f64, f64) {
        let mut rng = stream(seed, Stream::Workload);
        let (mut sum, mut sq) = (0.0, 0.0);
        for _ in 0..queries {
            let t = ResourceType(popularity.sample(r.types(), &mut rng));
            let mut n = 1.0;
            while !r.holds(NodeId(rng.random_range(0..nodes)), t) {
                n += 1.0;
            }
            sum += n;
            sq += n * n;
        }
        let mean = sum / queries as f64;
        (mean, ((sq / queries as f64 - mean * mean) / queries as f64).sqrt())
    }

    #[test]
    fn square_root_replication_minimises_the_expected_search_size() {
        // Cohen and Shenker: with r_i copies of type i among N nodes, random probing
        // needs N / r_i probes on average, so the expected search size is
        // A = Σ q_i N / r_i. Uniform and proportional shares both give N·m / R;
        // square-root gives N (Σ √q_i)² / R, the minimum.
        let (nodes, m, total) = (1000u32, 100u32, 1000u64);
        let popularity = Skew::Zipf(1.0);
        let q = popularity.weights(m);
        let mut sizes = Vec::new();
        for replication in [Replication::Uniform, Replication::Proportional, Replication::SquareRoot] {
            let spec = ResourcesSpec {
                types: m,
                replication,
                copies: Some(total),
                popularity: Some(popularity),
                ..Default::default()
            };
            let r = Resources::place(&spec, nodes as usize, &mut stream(8, Stream::Resources));
            let counts: Vec<usize> = (0..m).map(|t| r.holders(ResourceType(t)).len()).collect();
            assert_eq!(counts.iter().sum::<usize>() as u64, total, "{replication:?}");
            let want: f64 = (0..m as usize).map(|i| q[i] * nodes as f64 / counts[i] as f64).sum();
            let (got, se) = probes(&r, nodes, popularity, 20_000, 9);
            assert!(
                (got - want).abs() < 4.0 * se,
                "{replication:?}: simulated {got:.2} ± {se:.2}, Σ q N / r = {want:.2}"
            );
            sizes.push((replication, want, counts));
        }
        let ideal = nodes as f64 * m as f64 / total as f64;
        // Proportional shares round to whole copies, and the rarest types get at
        // least one: within 3% of the closed form for real-valued shares.
        assert!(
            (sizes[0].1 - ideal).abs() < 1e-9 && (sizes[1].1 - ideal).abs() < 0.03 * ideal,
            "{:?}",
            (sizes[0].1, sizes[1].1)
        );
        let root: f64 = q.iter().map(|x| x.sqrt()).sum();
        let best = nodes as f64 * root * root / total as f64;
        assert!((sizes[2].1 - best).abs() < 0.02 * best, "square-root {:.2} vs {best:.2}", sizes[2].1);
        assert!(sizes[2].1 < 0.8 * sizes[0].1 && sizes[2].1 < 0.8 * sizes[1].1);
        // The square-root copies follow √q_i normalised, to the nearest copy.
        for (i, &c) in sizes[2].2.iter().enumerate() {
            let x = total as f64 * q[i].sqrt() / root;
            assert!((c as f64 - x).abs() <= 1.0, "type {i}: {c} copies, share {x:.2}");
        }
    }

    #[test]
    fn placement_names_what_it_expects() {
        let parse = |s: &str| toml::from_str::<ResourcesSpec>(s).map(|r| r.placement).map_err(|e| e.to_string());
        assert_eq!(parse("placement = \"balanced\""), Ok(Placement::Balanced));
        assert_eq!(parse("placement = { geometric = 0.2 }"), Ok(Placement::Geometric(0.2)));
        let err = parse("placement = \"skewed\"").unwrap_err();
        assert!(err.contains("\"balanced\"") && err.contains("geometric"), "{err}");
        let err = parse("placement = { geometric = 1.5 }").unwrap_err();
        assert!(err.contains("0 < p < 1"), "{err}");
    }
}
