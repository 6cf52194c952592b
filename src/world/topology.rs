//! Overlay topologies: generators, the edge-list loader, and the compressed-sparse-row
//! overlay the engine reads in its hot loop.

use std::path::Path;

use petgraph::graph::UnGraph;
use petgraph::visit::EdgeRef;
use rand::{Rng, RngExt};
use rand_chacha::ChaCha8Rng;
use rustc_hash::FxHashSet;
use serde::Deserialize;

use crate::base::NodeId;

/// How the overlay is built; the `kind` key of `network.topology`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum TopologySpec {
    /// Every node has exactly `degree` neighbours, uniformly at random.
    RandomRegular {
        /// Neighbours of every node.
        degree: u32,
    },
    /// G(n, p) with p = mean_degree / (n − 1).
    ErdosRenyi {
        /// The expected number of neighbours of a node.
        mean_degree: f64,
    },
    /// Preferential attachment: each new node links to `m` existing ones.
    BarabasiAlbert {
        /// Links each new node makes to existing ones (the mean degree is about 2m).
        m: u32,
    },
    /// Ring lattice of even `degree`, each edge rewired with probability `rewire`.
    WattsStrogatz {
        /// Neighbours of every node in the lattice before rewiring; even.
        degree: u32,
        /// Probability, in 0..1, that an edge is moved to a random node.
        rewire: f64,
    },
    /// A cycle through all nodes.
    Ring {},
    /// Every node links to `k` distinct others chosen uniformly (PeerSim's WireKOut);
    /// links are used in both directions, so the mean degree is about 2k.
    KOut {
        /// Distinct others every node links to.
        k: u32,
    },
    /// A configuration-model graph whose degrees follow a power law
    /// P(k) ∝ k^−exponent on min_degree ≤ k ≤ max_degree (Molloy and Reed 1995;
    /// Lv et al.'s PLRG, after Aiello, Chung and Lu 2000).
    PowerLaw {
        /// The degree exponent γ of P(k) ∝ k^−γ; Gnutella-like overlays have 2 < γ < 3.
        exponent: f64,
        /// The smallest degree drawn.
        #[serde(default = "one")]
        min_degree: u32,
        /// The largest degree drawn; unset = nodes − 1.
        #[serde(default)]
        max_degree: Option<u32>,
    },
    /// An edge-list file (`a b` per line, `#` comments), relabelled to 0..n−1.
    Edges {
        /// The edge-list file, relative to the scenario's folder.
        path: String,
        /// Keep only the largest connected component (on by default).
        #[serde(default = "yes")]
        largest_component: bool,
    },
}

fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}

impl TopologySpec {
    /// The mean degree a generator aims at, or `None` for an edge file, whose
    /// degree is known only once it is read.
    pub fn nominal_degree(&self) -> Option<f64> {
        match *self {
            TopologySpec::RandomRegular { degree } | TopologySpec::WattsStrogatz { degree, .. } => Some(degree as f64),
            TopologySpec::ErdosRenyi { mean_degree } => Some(mean_degree),
            TopologySpec::BarabasiAlbert { m } => Some(2.0 * m as f64),
            TopologySpec::KOut { k } => Some(2.0 * k as f64),
            TopologySpec::Ring {} => Some(2.0),
            // Without a cap the mean depends on the node count; 10,000 stands in for it.
            TopologySpec::PowerLaw { exponent, min_degree, max_degree } => {
                Some(power_law_mean(exponent, min_degree as usize, max_degree.unwrap_or(10_000) as usize))
            }
            TopologySpec::Edges { .. } => None,
        }
    }
}

/// The topology names `peergrid list` and error messages show.
pub const TOPOLOGY_KINDS: [(&str, &str); 8] = [
    ("random-regular", "degree: every node has exactly this many neighbours"),
    ("erdos-renyi", "mean_degree: G(n,p) with p = mean_degree/(n-1)"),
    ("barabasi-albert", "m: each new node attaches to m existing nodes (mean degree ≈ 2m)"),
    ("watts-strogatz", "degree (even), rewire (0..1): small-world ring lattice"),
    ("ring", "(none): a cycle through all nodes"),
    ("k-out", "k: every node links to k distinct random others (PeerSim's WireKOut), used both ways"),
    (
        "power-law",
        "exponent, min_degree = 1, max_degree = nodes − 1: configuration model with P(k) ∝ k^−exponent, self-loops and multi-edges erased",
    ),
    ("edges", "path, largest_component = true: edge-list file, `a b` per line, relative to the scenario"),
];

/// A topology that cannot be built: the offending key (below `network.topology`,
/// or `network.nodes`) and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("network.topology.{key}: {message}")]
pub struct TopologyError {
    /// The offending key below `network.topology`, or `nodes` for `network.nodes`.
    pub key: &'static str,
    /// What is wrong and what was expected.
    pub message: String,
}

fn err<T>(key: &'static str, message: impl Into<String>) -> Result<T, TopologyError> {
    Err(TopologyError { key, message: message.into() })
}

/// An undirected overlay in compressed-sparse-row form: neighbours of `v` are
/// `targets[offsets[v]..offsets[v+1]]`, sorted.
#[derive(Clone, Debug, Default)]
pub struct Overlay {
    offsets: Vec<u32>,
    targets: Vec<NodeId>,
}

impl Overlay {
    /// Builds from undirected edges; self-loops and duplicates are dropped.
    ///
    /// Each edge is written into both endpoints' rows, then every row is sorted and
    /// deduplicated on its own: rows are short, so this is linear in the edges
    /// where one sort of the whole edge list is not. A row depends only on the set
    /// of edges, so the order they come in does not matter.
    pub fn from_edges(n: usize, edges: impl IntoIterator<Item = (u32, u32)>) -> Overlay {
        let list: Vec<(u32, u32)> = edges.into_iter().filter(|(a, b)| a != b).collect();
        let mut offsets = vec![0u32; n + 1];
        for &(a, b) in &list {
            offsets[a as usize + 1] += 1;
            offsets[b as usize + 1] += 1;
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        let mut fill = offsets.clone();
        let mut targets = vec![NodeId(0); list.len() * 2];
        for &(a, b) in &list {
            targets[fill[a as usize] as usize] = NodeId(b);
            fill[a as usize] += 1;
            targets[fill[b as usize] as usize] = NodeId(a);
            fill[b as usize] += 1;
        }
        drop(list);
        // Sort and deduplicate each row, moving it down over what earlier rows dropped.
        let mut kept = 0usize;
        for v in 0..n {
            let (start, end) = (offsets[v] as usize, offsets[v + 1] as usize);
            targets[start..end].sort_unstable();
            offsets[v] = kept as u32;
            for i in start..end {
                if i == start || targets[i] != targets[i - 1] {
                    targets[kept] = targets[i];
                    kept += 1;
                }
            }
        }
        offsets[n] = kept as u32;
        targets.truncate(kept);
        targets.shrink_to_fit();
        Overlay { offsets, targets }
    }

    /// How many nodes the overlay has; their ids run 0..nodes.
    pub fn nodes(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Undirected edges, each counted once.
    pub fn edges(&self) -> usize {
        self.targets.len() / 2
    }

    /// The neighbours of `v`, in ascending order.
    #[inline]
    pub fn neighbours(&self, v: NodeId) -> &[NodeId] {
        let i = v.index();
        &self.targets[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    /// Hints that `v`'s neighbour list will be read soon: its bounds, which are
    /// what a cold read of the list waits for first.
    #[inline(always)]
    pub fn prefetch(&self, v: NodeId) {
        crate::base::prefetch(&self.offsets, v.index());
    }

    /// Hints that `v`'s neighbours will be read soon: reads the list's bounds
    /// (cheap after [`Overlay::prefetch`]) and hints each cache line of the list.
    #[inline(always)]
    pub fn prefetch_neighbours(&self, v: NodeId) {
        crate::base::prefetch_row(&self.offsets, &self.targets, v.index());
    }

    /// The directed link v → u as an index in 0..`links()`, for per-link state
    /// kept in a flat `Vec`; `None` if u is not a neighbour of v.
    #[inline]
    pub fn link(&self, v: NodeId, u: NodeId) -> Option<usize> {
        let pos = self.neighbours(v).binary_search(&u).ok()?;
        Some(self.offsets[v.index()] as usize + pos)
    }

    /// Directed links: twice the edges.
    #[inline]
    pub fn links(&self) -> usize {
        self.targets.len()
    }

    /// How many neighbours `v` has.
    #[inline]
    pub fn degree(&self, v: NodeId) -> usize {
        let i = v.index();
        (self.offsets[i + 1] - self.offsets[i]) as usize
    }

    /// Bytes the overlay occupies.
    pub fn bytes(&self) -> usize {
        self.offsets.capacity() * 4 + self.targets.capacity() * 4
    }

    /// Neighbours per node on average; 0 for an empty overlay.
    pub fn mean_degree(&self) -> f64 {
        if self.nodes() == 0 { 0.0 } else { self.targets.len() as f64 / self.nodes() as f64 }
    }

    /// Hop distances from `src` (u32::MAX where unreachable).
    pub fn bfs(&self, src: NodeId) -> Vec<u32> {
        let mut dist = vec![u32::MAX; self.nodes()];
        let mut frontier = std::collections::VecDeque::from([src]);
        dist[src.index()] = 0;
        while let Some(v) = frontier.pop_front() {
            for &w in self.neighbours(v) {
                if dist[w.index()] == u32::MAX {
                    dist[w.index()] = dist[v.index()] + 1;
                    frontier.push_back(w);
                }
            }
        }
        dist
    }

    /// Component label of every node, labels numbered in order of lowest member.
    pub fn components(&self) -> Vec<u32> {
        let mut label = vec![u32::MAX; self.nodes()];
        let mut next = 0;
        let mut stack = Vec::new();
        for s in 0..self.nodes() {
            if label[s] != u32::MAX {
                continue;
            }
            label[s] = next;
            stack.push(NodeId(s as u32));
            while let Some(v) = stack.pop() {
                for &w in self.neighbours(v) {
                    if label[w.index()] == u32::MAX {
                        label[w.index()] = next;
                        stack.push(w);
                    }
                }
            }
            next += 1;
        }
        label
    }

    /// Size of the largest connected component.
    pub fn largest_component_size(&self) -> usize {
        let label = self.components();
        let mut count = vec![0usize; label.iter().map(|&l| l as usize + 1).max().unwrap_or(0)];
        for l in label {
            count[l as usize] += 1;
        }
        count.into_iter().max().unwrap_or(0)
    }

    /// Undirected edge list (a < b), for analysis with petgraph.
    pub fn edge_list(&self) -> Vec<(u32, u32)> {
        (0..self.nodes() as u32)
            .flat_map(|a| self.neighbours(NodeId(a)).iter().filter(move |b| b.0 > a).map(move |b| (a, b.0)))
            .collect()
    }
}

/// Builds the overlay for `nodes` nodes (ignored by `edges`, which takes its size
/// from the file). `base` resolves a relative edge-file path.
///
/// A generated overlay that is not connected is an error unless `allow_disconnected`:
/// queries from a small component would fail for reasons that have nothing to do with
/// the protocol under study.
pub fn build(
    spec: &TopologySpec,
    nodes: Option<u32>,
    allow_disconnected: bool,
    base: &Path,
    rng: &mut ChaCha8Rng,
) -> Result<Overlay, TopologyError> {
    if let TopologySpec::Edges { path, largest_component } = spec {
        let overlay = load_edges(&base.join(path), *largest_component)?;
        if let Some(n) = nodes
            && n as usize != overlay.nodes()
        {
            return err(
                "nodes",
                format!(
                    "the edge file {path} has {} nodes{}, but network.nodes = {n}; remove network.nodes or set it to {}",
                    overlay.nodes(),
                    if *largest_component { " in its largest component" } else { "" },
                    overlay.nodes()
                ),
            );
        }
        return Ok(overlay);
    }
    let Some(n) = nodes else {
        return err("nodes", "network.nodes is required for a generated topology");
    };
    let n = n as usize;
    check(spec, n, allow_disconnected)?;
    let seed = rng.next_u64();
    let ok = |g: Result<UnGraph<(), ()>, _>, what: &str| match g {
        Ok(g) => Ok(Overlay::from_edges(
            n,
            g.edge_references().map(|e| (e.source().index() as u32, e.target().index() as u32)),
        )),
        Err(_) => err("kind", format!("the {what} generator rejected its parameters")),
    };
    use rustworkx_core::generators as generate;
    let overlay = match *spec {
        TopologySpec::RandomRegular { degree } => {
            ok(generate::random_regular_graph(n, degree as usize, Some(seed), || (), || ()), "random-regular")?
        }
        TopologySpec::ErdosRenyi { mean_degree } => {
            let p = if n > 1 { mean_degree / (n - 1) as f64 } else { 0.0 };
            ok(generate::gnp_random_graph(n, p, Some(seed), || (), || ()), "erdos-renyi")?
        }
        TopologySpec::BarabasiAlbert { m } => {
            ok(generate::barabasi_albert_graph(n, m as usize, Some(seed), None, || (), || ()), "barabasi-albert")?
        }
        TopologySpec::WattsStrogatz { degree, rewire } => watts_strogatz(n, degree as usize, rewire, rng),
        TopologySpec::Ring {} => Overlay::from_edges(n, (0..n as u32).map(|i| (i, (i + 1) % n as u32))),
        TopologySpec::KOut { k } => k_out(n, k as usize, rng),
        TopologySpec::PowerLaw { exponent, min_degree, max_degree } => {
            let max = max_degree.map_or(n - 1, |m| m as usize);
            let overlay = configuration_model(&power_law_degrees(n, exponent, min_degree as usize, max, rng), rng);
            if allow_disconnected { overlay } else { join_components(&overlay, rng) }
        }
        TopologySpec::Edges { .. } => unreachable!("handled above"),
    };
    let largest = if allow_disconnected { n } else { overlay.largest_component_size() };
    if largest != n {
        let hint = match *spec {
            TopologySpec::ErdosRenyi { mean_degree } => format!(
                "; at mean_degree {mean_degree} a draw of G(n,p) on {n} nodes is connected with probability about {:.0}%: {}",
                100.0 * gnp_connected(n, mean_degree),
                gnp_advice(n)
            ),
            TopologySpec::WattsStrogatz { .. } => "; lower rewire or raise degree".to_string(),
            _ => "; raise the degree".to_string(),
        };
        return err(
            "kind",
            format!(
                "the generated overlay is disconnected: its largest component has {largest} of {n} nodes{hint}, or set network.allow_disconnected = true"
            ),
        );
    }
    Ok(overlay)
}

/// The probability that G(n,p) with mean degree `c` is connected, about
/// exp(−n·e^(−c)): for large n it is connected exactly when it has no isolated
/// node, and the number of isolated nodes is about Poisson with mean n·e^(−c)
/// (Erdős and Rényi 1959).
fn gnp_connected(n: usize, c: f64) -> f64 {
    (-(n as f64) * (-c).exp()).exp()
}

/// The advice for a G(n,p) overlay that is, or would be, disconnected. At
/// mean_degree = ln n + 3 a draw is connected with probability exp(−e^(−3)) ≈ 95%.
fn gnp_advice(n: usize) -> String {
    format!(
        "raise mean_degree to ln n + 3 ≈ {:.1} or more (about 95% of draws are then connected; each run draws its own overlay, and a disconnected draw stops its run)",
        (n as f64).ln() + 3.0
    )
}

/// Checks generator parameters against the node count without building anything,
/// including, unless `allow_disconnected`, parameters that all but certainly give a
/// disconnected overlay (the generated graph is checked again after it is built).
pub fn check(spec: &TopologySpec, n: usize, allow_disconnected: bool) -> Result<(), TopologyError> {
    if n < 2 {
        return err("nodes", format!("{n} nodes cannot form an overlay; expected at least 2"));
    }
    if !allow_disconnected {
        let advice = "or set network.allow_disconnected = true";
        match *spec {
            // With more than five isolated nodes expected, a draw is connected with
            // probability below e^(−5); between this and ln n + 3, `build` still
            // refuses the draws that come out disconnected.
            TopologySpec::ErdosRenyi { mean_degree } if (n as f64) * (-mean_degree).exp() > 5.0 => {
                return err(
                    "mean_degree",
                    format!(
                        "G(n,p) with mean_degree {mean_degree} on {n} nodes leaves about {:.0} nodes isolated, so it is all but certainly disconnected: {}, {advice}",
                        (n as f64) * (-mean_degree).exp(),
                        gnp_advice(n)
                    ),
                );
            }
            TopologySpec::RandomRegular { degree } if degree <= 2 && n > 4 => {
                return err(
                    "degree",
                    format!(
                        "a random {degree}-regular graph on {n} nodes is a set of disjoint {}; use degree ≥ 3, {advice}",
                        if degree == 1 { "pairs" } else { "cycles" }
                    ),
                );
            }
            TopologySpec::KOut { k: 1 } if n > 20 => {
                return err(
                    "k",
                    format!("a random 1-out graph on {n} nodes falls into many components; use k ≥ 2, {advice}"),
                );
            }
            _ => {}
        }
    }
    match *spec {
        TopologySpec::RandomRegular { degree } => {
            let d = degree as usize;
            if d == 0 || d >= n {
                return err("degree", format!("degree {d} is impossible with {n} nodes; expected 1 ≤ degree < nodes"));
            }
            if (n * d) % 2 == 1 {
                return err(
                    "degree",
                    format!(
                        "a {d}-regular graph on {n} nodes does not exist because nodes × degree is odd; make one of them even"
                    ),
                );
            }
        }
        TopologySpec::ErdosRenyi { mean_degree } if !(mean_degree > 0.0 && mean_degree <= (n - 1) as f64) => {
            return err(
                "mean_degree",
                format!("mean_degree {mean_degree} is out of range; expected 0 < mean_degree ≤ nodes − 1 = {}", n - 1),
            );
        }
        TopologySpec::BarabasiAlbert { m } if m == 0 || m as usize >= n => {
            return err("m", format!("m = {m} is out of range; expected 1 ≤ m < nodes = {n}"));
        }
        TopologySpec::WattsStrogatz { degree, rewire } => {
            let d = degree as usize;
            if d < 2 || d % 2 == 1 || d >= n {
                return err(
                    "degree",
                    format!("degree {d} is out of range; expected an even number with 2 ≤ degree < nodes = {n}"),
                );
            }
            if !(0.0..=1.0).contains(&rewire) {
                return err(
                    "rewire",
                    format!("rewire {rewire} is out of range; expected a probability between 0 and 1"),
                );
            }
        }
        TopologySpec::KOut { k } if k == 0 || k as usize >= n => {
            return err("k", format!("k = {k} is out of range; expected 1 ≤ k < nodes = {n}"));
        }
        TopologySpec::PowerLaw { exponent, min_degree, max_degree } => {
            if !(exponent.is_finite() && exponent > 1.0) {
                return err(
                    "exponent",
                    format!(
                        "exponent {exponent} is out of range; expected a number > 1 (Gnutella-like overlays have 2 to 3)"
                    ),
                );
            }
            let max = max_degree.map_or(n - 1, |m| m as usize);
            if max_degree.is_some() && !(1..n).contains(&max) {
                return err(
                    "max_degree",
                    format!("max_degree {max} is out of range; expected 1 ≤ max_degree < nodes = {n}"),
                );
            }
            if min_degree == 0 || min_degree as usize > max {
                return err(
                    "min_degree",
                    format!("min_degree {min_degree} is out of range; expected 1 ≤ min_degree ≤ max_degree = {max}"),
                );
            }
        }
        TopologySpec::Ring {} if n < 3 => {
            return err("nodes", format!("a ring needs at least 3 nodes, not {n}"));
        }
        _ => {}
    }
    Ok(())
}

/// Watts–Strogatz (Nature 1998): a ring lattice where each node links to its `k/2`
/// nearest neighbours on either side, then every lattice edge (u, u+j) keeps u and
/// moves its other end to a uniformly chosen node with probability `p`, avoiding
/// self-loops and duplicate edges.
fn watts_strogatz(n: usize, k: usize, p: f64, rng: &mut ChaCha8Rng) -> Overlay {
    let mut present: FxHashSet<(u32, u32)> = FxHashSet::default();
    let norm = |a: u32, b: u32| (a.min(b), a.max(b));
    let mut edges = Vec::with_capacity(n * k / 2);
    for u in 0..n {
        for j in 1..=k / 2 {
            let e = norm(u as u32, ((u + j) % n) as u32);
            present.insert(e);
            edges.push(e);
        }
    }
    for j in 1..=k / 2 {
        for u in 0..n {
            if !rng.random_bool(p) {
                continue;
            }
            let old = norm(u as u32, ((u + j) % n) as u32);
            // A node adjacent to everyone cannot be rewired.
            let mut choice = None;
            for _ in 0..64 {
                let w = rng.random_range(0..n as u32);
                if w != u as u32 && !present.contains(&norm(u as u32, w)) {
                    choice = Some(w);
                    break;
                }
            }
            if let Some(w) = choice {
                present.remove(&old);
                present.insert(norm(u as u32, w));
            }
        }
    }
    edges.clear();
    edges.extend(present);
    Overlay::from_edges(n, edges)
}

/// The mean of P(k) ∝ k^−γ on `min..=max`.
pub fn power_law_mean(gamma: f64, min: usize, max: usize) -> f64 {
    let (mut z, mut m) = (0.0, 0.0);
    for k in min..=max.max(min) {
        let p = (k as f64).powf(-gamma);
        z += p;
        m += k as f64 * p;
    }
    if z > 0.0 { m / z } else { min as f64 }
}

/// `n` degrees drawn independently from P(k) ∝ k^−γ on `min..=max`, by inverting
/// the cumulative law (one uniform draw a node); if their sum is odd, one node below
/// `max` gets one stub more, so that every stub has a partner.
fn power_law_degrees(n: usize, gamma: f64, min: usize, max: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut cdf: Vec<f64> = Vec::with_capacity(max - min + 1);
    let mut total = 0.0;
    for k in min..=max {
        total += (k as f64).powf(-gamma);
        cdf.push(total);
    }
    let mut degrees: Vec<usize> = (0..n)
        .map(|_| {
            let u = rng.random::<f64>() * total;
            min + cdf.partition_point(|&c| c <= u).min(max - min)
        })
        .collect();
    if degrees.iter().sum::<usize>() % 2 == 1 {
        // Some node is below max unless every node is at max, and then n·max is
        // even only if the sum is; a node at max − 1 < min cannot exist either.
        let below: Vec<usize> = (0..n).filter(|&v| degrees[v] < max).collect();
        if below.is_empty() {
            degrees[rng.random_range(0..n)] -= 1;
        } else {
            degrees[below[rng.random_range(0..below.len())]] += 1;
        }
    }
    degrees
}

/// The configuration model: each node gets as many stubs as its degree, the stubs
/// are shuffled and paired in order. Self-loops and second copies of an edge are
/// erased (the "erased configuration model"), so a few nodes, mostly those of high
/// degree, end with fewer neighbours than drawn.
fn configuration_model(degrees: &[usize], rng: &mut ChaCha8Rng) -> Overlay {
    use rand::seq::SliceRandom;
    let mut stubs: Vec<u32> = degrees.iter().enumerate().flat_map(|(v, &d)| std::iter::repeat_n(v as u32, d)).collect();
    stubs.shuffle(rng);
    Overlay::from_edges(degrees.len(), stubs.chunks_exact(2).map(|p| (p[0], p[1])))
}

/// Joins every component but the largest to it by one edge, from a uniformly
/// chosen node of the small component to a uniformly chosen node of the largest,
/// so the overlay is connected. In an erased configuration model these are mostly
/// single nodes whose stubs were all erased and pairs of degree-1 nodes: one edge
/// each, a small fraction of the edges.
fn join_components(overlay: &Overlay, rng: &mut ChaCha8Rng) -> Overlay {
    let label = overlay.components();
    let count = label.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    if count <= 1 {
        return overlay.clone();
    }
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); count];
    for (v, &l) in label.iter().enumerate() {
        members[l as usize].push(v as u32);
    }
    let giant = (0..count).max_by_key(|&c| (members[c].len(), std::cmp::Reverse(c))).unwrap_or(0);
    let mut edges = overlay.edge_list();
    for (c, nodes) in members.iter().enumerate() {
        if c != giant {
            let a = nodes[rng.random_range(0..nodes.len())];
            let b = members[giant][rng.random_range(0..members[giant].len())];
            edges.push((a, b));
        }
    }
    Overlay::from_edges(overlay.nodes(), edges)
}

/// Each node draws `k` distinct others uniformly; the union of the links is the overlay.
fn k_out(n: usize, k: usize, rng: &mut ChaCha8Rng) -> Overlay {
    let mut edges = Vec::with_capacity(n * k);
    let mut picked: Vec<u32> = Vec::with_capacity(k);
    for u in 0..n as u32 {
        picked.clear();
        while picked.len() < k {
            let w = rng.random_range(0..n as u32 - 1);
            // Skip u itself by shifting the range above it.
            let w = if w >= u { w + 1 } else { w };
            if !picked.contains(&w) {
                picked.push(w);
            }
        }
        edges.extend(picked.iter().map(|&w| (u, w)));
    }
    Overlay::from_edges(n, edges)
}

/// Loads an edge-list file: `a b` per line (tabs or spaces), `#` comments, ids any
/// non-negative integers, relabelled to 0..n−1 in ascending order of id.
pub fn load_edges(path: &Path, largest_component: bool) -> Result<Overlay, TopologyError> {
    read_edges(path, largest_component).map(|(overlay, _)| overlay)
}

/// What reading an edge file left out, so that nothing is dropped in silence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EdgeReport {
    /// Distinct node ids in the file.
    pub nodes_in_file: usize,
    /// Nodes of the overlay built from it.
    pub nodes_kept: usize,
    /// Connected components of the file's graph.
    pub components: usize,
    /// Lines `a a`, which link a node to itself.
    pub self_loops: usize,
    /// Edges given more than once (in either direction).
    pub duplicates: usize,
    /// Lines with fields after the two node ids, which are ignored.
    pub extra_columns: usize,
}

impl EdgeReport {
    /// One line on what was dropped or ignored, or `None` if nothing was.
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.nodes_kept < self.nodes_in_file {
            parts.push(format!(
                "kept {} of {} nodes, the largest of {} components (largest_component = false keeps them all)",
                self.nodes_kept, self.nodes_in_file, self.components
            ));
        }
        let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        if self.self_loops > 0 {
            parts.push(format!("dropped {}", plural(self.self_loops, "self-loop", "self-loops")));
        }
        if self.duplicates > 0 {
            parts.push(format!("dropped {}", plural(self.duplicates, "duplicate edge", "duplicate edges")));
        }
        if self.extra_columns > 0 {
            parts.push(format!(
                "ignored the columns after the two node ids on {}",
                plural(self.extra_columns, "line", "lines")
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// Reads an edge file as [`load_edges`] does, with what it left out.
pub fn read_edges(path: &Path, largest_component: bool) -> Result<(Overlay, EdgeReport), TopologyError> {
    let mut report = EdgeReport::default();
    let text = std::fs::read_to_string(path).map_err(|e| TopologyError {
        key: "path",
        message: format!("cannot read the edge file {}: {e}", path.display()),
    })?;
    let mut raw = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let mut id = || parts.next().and_then(|s| s.parse::<u64>().ok());
        match (id(), id()) {
            (Some(a), Some(b)) => {
                raw.push((a, b));
                report.extra_columns += parts.next().is_some() as usize;
            }
            _ => {
                return err(
                    "path",
                    format!(
                        "{}:{}: expected two non-negative integer node ids `a b`, found {line:?}",
                        path.display(),
                        i + 1
                    ),
                );
            }
        }
    }
    if raw.is_empty() {
        return err("path", format!("the edge file {} has no edges", path.display()));
    }
    let mut ids: Vec<u64> = raw.iter().flat_map(|&(a, b)| [a, b]).collect();
    ids.sort_unstable();
    ids.dedup();
    let index = |x: u64| ids.binary_search(&x).map(|i| i as u32).unwrap_or(0);
    let edges: Vec<(u32, u32)> = raw.iter().map(|&(a, b)| (index(a), index(b))).collect();
    let overlay = Overlay::from_edges(ids.len(), edges.iter().copied());
    report.nodes_in_file = ids.len();
    report.self_loops = edges.iter().filter(|(a, b)| a == b).count();
    report.duplicates = edges.len() - report.self_loops - overlay.links() / 2;
    let label = overlay.components();
    let mut size = vec![0usize; label.iter().map(|&l| l as usize + 1).max().unwrap_or(0)];
    for &l in &label {
        size[l as usize] += 1;
    }
    report.components = size.len();
    if !largest_component {
        report.nodes_kept = ids.len();
        return Ok((overlay, report));
    }
    let keep =
        size.iter().enumerate().max_by_key(|&(i, s)| (*s, std::cmp::Reverse(i))).map(|(i, _)| i as u32).unwrap_or(0);
    let mut renumber = vec![u32::MAX; label.len()];
    let mut next = 0;
    for (v, &l) in label.iter().enumerate() {
        if l == keep {
            renumber[v] = next;
            next += 1;
        }
    }
    let kept = edges
        .into_iter()
        .filter(|&(a, _)| renumber[a as usize] != u32::MAX)
        .map(|(a, b)| (renumber[a as usize], renumber[b as usize]));
    report.nodes_kept = next as usize;
    Ok((Overlay::from_edges(next as usize, kept), report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::rng::{Stream, stream};

    fn make(spec: TopologySpec, n: u32) -> Result<Overlay, TopologyError> {
        build(&spec, Some(n), false, Path::new("."), &mut stream(1, Stream::Topology))
    }

    #[test]
    fn random_regular_has_exact_degrees() {
        let o = make(TopologySpec::RandomRegular { degree: 4 }, 500).unwrap();
        assert!((0..500).all(|v| o.degree(NodeId(v)) == 4));
        assert_eq!(o.edges(), 1000);
    }

    #[test]
    fn generators_reach_their_mean_degree() {
        let er = make(TopologySpec::ErdosRenyi { mean_degree: 10.0 }, 2000).unwrap();
        assert!((er.mean_degree() - 10.0).abs() < 0.5, "{}", er.mean_degree());
        let ba = make(TopologySpec::BarabasiAlbert { m: 3 }, 2000).unwrap();
        assert!((ba.mean_degree() - 6.0).abs() < 0.1, "{}", ba.mean_degree());
        let ws = make(TopologySpec::WattsStrogatz { degree: 6, rewire: 0.1 }, 2000).unwrap();
        assert_eq!(ws.edges(), 6000);
        let kout = make(TopologySpec::KOut { k: 3 }, 2000).unwrap();
        assert!((0..2000).all(|v| kout.degree(NodeId(v)) >= 3));
        assert!((kout.mean_degree() - 6.0).abs() < 0.1, "{}", kout.mean_degree());
        let ring = make(TopologySpec::Ring {}, 10).unwrap();
        assert!((0..10).all(|v| ring.degree(NodeId(v)) == 2));
    }

    #[test]
    fn watts_strogatz_without_rewiring_is_the_lattice() {
        let ws = make(TopologySpec::WattsStrogatz { degree: 4, rewire: 0.0 }, 20).unwrap();
        assert_eq!(ws.neighbours(NodeId(0)), &[NodeId(1), NodeId(2), NodeId(18), NodeId(19)]);
    }

    #[test]
    fn impossible_parameters_name_the_key() {
        assert_eq!(make(TopologySpec::RandomRegular { degree: 3 }, 11).unwrap_err().key, "degree");
        assert_eq!(make(TopologySpec::RandomRegular { degree: 10 }, 10).unwrap_err().key, "degree");
        assert_eq!(make(TopologySpec::WattsStrogatz { degree: 3, rewire: 0.1 }, 10).unwrap_err().key, "degree");
        assert_eq!(make(TopologySpec::WattsStrogatz { degree: 4, rewire: 1.5 }, 10).unwrap_err().key, "rewire");
        let sparse = make(TopologySpec::ErdosRenyi { mean_degree: 0.5 }, 1000).unwrap_err();
        assert!(sparse.message.contains("isolated"), "{}", sparse.message);
        // ln 1000 + 3 ≈ 9.9: the advice is the same up front and after a bad draw.
        assert!(sparse.message.contains("ln n + 3 ≈ 9.9"), "{}", sparse.message);
        // Below the threshold of the check, the built graph is still checked.
        let borderline = make(TopologySpec::ErdosRenyi { mean_degree: 6.0 }, 1000);
        assert!(borderline.as_ref().map_or_else(
            |e| e.message.contains("disconnected") && e.message.contains("ln n + 3 ≈ 9.9"),
            |o| o.largest_component_size() == 1000
        ));
        assert_eq!(make(TopologySpec::RandomRegular { degree: 2 }, 100).unwrap_err().key, "degree");
    }

    #[test]
    fn gnp_connectivity_follows_its_isolated_nodes() {
        // exp(−e^(−3)) at mean degree ln n + 3, e^(−5) at the check's threshold.
        let n = 1000usize;
        assert!((gnp_connected(n, (n as f64).ln() + 3.0) - 0.951).abs() < 0.001);
        assert!((gnp_connected(n, (n as f64 / 5.0).ln()) - (-5.0f64).exp()).abs() < 1e-9);
        // Of 40 draws of G(1000, p) at ln n + 3, about 38 are connected.
        let c = (n as f64).ln() + 3.0;
        let connected = (0..40u64)
            .filter(|&seed| {
                let spec = TopologySpec::ErdosRenyi { mean_degree: c };
                build(&spec, Some(n as u32), true, Path::new("."), &mut stream(seed, Stream::Topology))
                    .is_ok_and(|o| o.largest_component_size() == n)
            })
            .count();
        assert!(connected >= 33, "{connected} of 40 connected");
    }

    /// The maximum-likelihood exponent of degrees `k` under P(k) ∝ k^−γ on
    /// `min..=max` (golden-section search over 1.1..5 of the log-likelihood
    /// −γ Σ ln k − n ln Z(γ), which is concave in γ).
    fn fitted_exponent(k: &[usize], min: usize, max: usize) -> f64 {
        let logs: f64 = k.iter().map(|&d| (d as f64).ln()).sum();
        let ll = |g: f64| -g * logs - k.len() as f64 * (min..=max).map(|d| (d as f64).powf(-g)).sum::<f64>().ln();
        let (mut a, mut b) = (1.1f64, 5.0f64);
        let r = (5f64.sqrt() - 1.0) / 2.0;
        for _ in 0..60 {
            let (x, y) = (b - r * (b - a), a + r * (b - a));
            if ll(x) < ll(y) { a = x } else { b = y }
        }
        (a + b) / 2.0
    }

    #[test]
    fn power_law_degrees_fit_their_exponent() {
        // The drawn degree sequence follows the law exactly.
        for (gamma, min, max) in [(2.1, 1, 100), (2.5, 1, 1000)] {
            let k = power_law_degrees(50_000, gamma, min, max, &mut stream(4, Stream::Topology));
            let fit = fitted_exponent(&k, min, max);
            assert!((fit - gamma).abs() < 0.03, "drawn, γ = {gamma}: fitted {fit:.3}");
        }
        // The overlay keeps it: erasure and the edges that join small components
        // move a few degrees by one. With min_degree 1 many pairs of degree-1 nodes
        // are joined (a degree-1 node meets another's stub about P(1)/mean degree
        // of the time), so the overlay is checked at min_degree ≥ 2.
        for (gamma, min, max) in [(2.1, 2, 100), (2.5, 2, 200), (3.0, 3, 100)] {
            let spec = TopologySpec::PowerLaw { exponent: gamma, min_degree: min, max_degree: Some(max) };
            let o = make(spec.clone(), 20_000).unwrap();
            assert_eq!(o.largest_component_size(), 20_000, "joined into one component");
            let k: Vec<usize> = (0..20_000).map(|v| o.degree(NodeId(v))).collect();
            let kept: Vec<usize> = k.iter().copied().filter(|&d| d >= min as usize && d <= max as usize).collect();
            assert!(kept.len() > 19_900, "{} degrees in range", kept.len());
            let fit = fitted_exponent(&kept, min as usize, max as usize);
            assert!((fit - gamma).abs() < 0.06, "γ = {gamma}: fitted {fit:.3}");
            let mean = o.mean_degree();
            let want = spec.nominal_degree().unwrap();
            assert!((mean - want).abs() < 0.05 * want, "γ = {gamma}: mean degree {mean:.3}, law's {want:.3}");
        }
        // The same seed draws the same graph, connected also at min_degree 1.
        let spec = TopologySpec::PowerLaw { exponent: 2.3, min_degree: 1, max_degree: None };
        let o = make(spec.clone(), 3000).unwrap();
        assert_eq!(o.largest_component_size(), 3000);
        assert_eq!(o.edge_list(), make(spec, 3000).unwrap().edge_list());
    }

    #[test]
    fn power_law_parameters_name_their_key() {
        let pl = |exponent, min_degree, max_degree| TopologySpec::PowerLaw { exponent, min_degree, max_degree };
        assert_eq!(make(pl(1.0, 1, None), 100).unwrap_err().key, "exponent");
        assert_eq!(make(pl(2.5, 0, None), 100).unwrap_err().key, "min_degree");
        assert_eq!(make(pl(2.5, 5, Some(4)), 100).unwrap_err().key, "min_degree");
        assert_eq!(make(pl(2.5, 1, Some(100)), 100).unwrap_err().key, "max_degree");
    }

    #[test]
    fn csr_matches_petgraph_bfs() {
        let o = make(TopologySpec::BarabasiAlbert { m: 2 }, 300).unwrap();
        let g = UnGraph::<(), ()>::from_edges(o.edge_list());
        let mut bfs = petgraph::visit::Bfs::new(&g, petgraph::graph::NodeIndex::new(5));
        let mut count = 0;
        while bfs.next(&g).is_some() {
            count += 1;
        }
        assert_eq!(count, o.bfs(NodeId(5)).iter().filter(|&&d| d != u32::MAX).count());
    }

    #[test]
    fn rows_are_the_sorted_distinct_neighbours_whatever_the_edge_order() {
        let mut rng = stream(3, Stream::Topology);
        let n = 60;
        // Repeats in both directions and self-loops, in random order.
        let edges: Vec<(u32, u32)> =
            (0..600).map(|_| (rng.random_range(0..n as u32), rng.random_range(0..n as u32))).collect();
        let o = Overlay::from_edges(n, edges.iter().copied());
        let mut truth = vec![std::collections::BTreeSet::new(); n];
        for &(a, b) in edges.iter().filter(|(a, b)| a != b) {
            truth[a as usize].insert(NodeId(b));
            truth[b as usize].insert(NodeId(a));
        }
        for (v, row) in truth.iter().enumerate() {
            assert_eq!(o.neighbours(NodeId(v as u32)), row.iter().copied().collect::<Vec<_>>(), "row {v}");
        }
        assert_eq!(o.edges(), truth.iter().map(|t| t.len()).sum::<usize>() / 2);
        let mut reversed = edges.clone();
        reversed.reverse();
        let r = Overlay::from_edges(n, reversed.into_iter().map(|(a, b)| (b, a)));
        assert_eq!((r.offsets, r.targets), (o.offsets, o.targets));
    }
}
