//! Resources: R types, each replicated on some nodes. Both directions are kept in
//! CSR form: the types a node holds, and the nodes holding a type.

use rand::RngExt;
use rand::seq::SliceRandom;
use rand::seq::index;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Zipf};
use serde::{Deserialize, Deserializer};

use crate::NodeId;

/// A resource type, 0..types.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct ResourceType(pub u32);

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
    pub placement: Skew,
}

fn default_types() -> u32 {
    100
}
fn default_replicas() -> u32 {
    10
}

impl Default for ResourcesSpec {
    fn default() -> Self {
        ResourcesSpec { types: default_types(), replicas: default_replicas(), placement: Skew::Uniform }
    }
}

/// `"uniform"` or `{ zipf = s }`: how choices are spread over ranked items.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Skew {
    #[default]
    Uniform,
    /// Item of rank r (1-based) chosen with probability ∝ r^−s.
    Zipf(f64),
}

const SKEW_EXPECTED: &str = "\"uniform\" or { zipf = <exponent ≥ 0> }";

impl<'de> Deserialize<'de> for Skew {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = toml::Value::deserialize(d)?;
        match &v {
            toml::Value::String(s) if s == "uniform" => Ok(Skew::Uniform),
            toml::Value::Table(t) if t.len() == 1 => {
                let s = match t.get("zipf") {
                    Some(toml::Value::Float(f)) => *f,
                    Some(toml::Value::Integer(i)) => *i as f64,
                    _ => {
                        return Err(D::Error::custom(format!("expected {SKEW_EXPECTED}, found {v}")));
                    }
                };
                if s.is_finite() && s >= 0.0 {
                    Ok(Skew::Zipf(s))
                } else {
                    Err(D::Error::custom(format!("zipf exponent {s} is out of range; expected a number ≥ 0")))
                }
            }
            _ => Err(D::Error::custom(format!("expected {SKEW_EXPECTED}, found {v}"))),
        }
    }
}

impl Skew {
    /// Draws a 0-based rank among `n` items.
    pub fn sample(self, n: u32, rng: &mut ChaCha8Rng) -> u32 {
        match self {
            Skew::Zipf(s) if s > 0.0 && n > 1 => {
                let z = Zipf::new(n as f64, s).expect("validated exponent");
                (z.sample(rng) as u32).clamp(1, n) - 1
            }
            _ => rng.random_range(0..n),
        }
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
    /// Places `replicas` copies of each type on distinct nodes. With zipf placement
    /// nodes are ranked by a random permutation and rank r is chosen ∝ r^−s, so a few
    /// nodes are resource-rich.
    pub fn place(spec: &ResourcesSpec, nodes: usize, rng: &mut ChaCha8Rng) -> Resources {
        let replicas = (spec.replicas as usize).min(nodes);
        let mut by_type: Vec<Vec<u32>> = Vec::with_capacity(spec.types as usize);
        let mut rank: Vec<u32> = (0..nodes as u32).collect();
        if let Skew::Zipf(_) = spec.placement {
            rank.shuffle(rng);
        }
        let mut chosen = vec![false; nodes];
        for _ in 0..spec.types {
            let mut holders: Vec<u32> = match spec.placement {
                Skew::Uniform => index::sample(rng, nodes, replicas).into_iter().map(|i| i as u32).collect(),
                Skew::Zipf(_) => {
                    let mut picked = Vec::with_capacity(replicas);
                    let mut attempts = 0;
                    while picked.len() < replicas && attempts < 64 * replicas + 64 {
                        let v = rank[spec.placement.sample(nodes as u32, rng) as usize];
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

    pub fn types(&self) -> u32 {
        self.types
    }

    /// The types `v` holds, ascending.
    #[inline]
    pub fn of_node(&self, v: NodeId) -> &[ResourceType] {
        &self.node_types[self.node_offsets[v.index()] as usize..self.node_offsets[v.index() + 1] as usize]
    }

    #[inline]
    pub fn holds(&self, v: NodeId, t: ResourceType) -> bool {
        self.of_node(v).binary_search(&t).is_ok()
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
    use crate::engine::rng::{Stream, stream};

    #[test]
    fn every_type_gets_its_replicas_on_distinct_nodes() {
        for placement in [Skew::Uniform, Skew::Zipf(1.2), Skew::Zipf(8.0)] {
            let spec = ResourcesSpec { types: 50, replicas: 7, placement };
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
        let spec = ResourcesSpec { types: 200, replicas: 5, placement: Skew::Zipf(1.0) };
        let r = Resources::place(&spec, 1000, &mut stream(3, Stream::Resources));
        let mut load: Vec<usize> = (0..1000).map(|v| r.of_node(NodeId(v)).len()).collect();
        load.sort_unstable();
        assert!(load[999] > 20 * load[500].max(1), "{:?}", &load[990..]);
    }
}
