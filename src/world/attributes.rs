//! Numeric resource attributes and the range queries over them (MAAN: Cai,
//! Frank, Chen, Szekely, "MAAN: A Multi-Attribute Addressable Network for Grid
//! Information Services", Journal of Grid Computing 2(1), 2004).
//!
//! Every node describes its resources by the same attributes (cores, memory,
//! bandwidth ...), each a number drawn from the attribute's distribution or
//! read from a file. The workload's queries are `types` distinct range queries
//! (the resource "types" every protocol discovers), each constraining
//! `query_attributes` attributes to a range spanning `selectivity` of the
//! attribute's value range; a node holds a query's "type" when every value it
//! constrains falls in its range. Every protocol thereby answers the same
//! attribute queries: central, hierarchical and super-peer indexes match
//! them against what nodes registered, and MAAN (chord with `attributes`)
//! routes them by the values themselves.

use std::path::Path;

use rand::RngExt;
use rand::seq::index;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use crate::base::Choice;

/// One entry of `[resources] attributes`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AttributeSpec {
    /// What it is called in messages and in the file.
    pub name: String,
    /// The lowest value it can take (with `values`: their lowest, unless set).
    #[serde(default)]
    pub min: Option<f64>,
    /// The highest value it can take (with `values`: their highest, unless set).
    #[serde(default)]
    pub max: Option<f64>,
    /// The values it takes, each with its weight in `weights` (equal if unset);
    /// unset, it is uniform on [min, max].
    #[serde(default)]
    pub values: Option<Vec<f64>>,
    /// The relative frequency of each of `values`.
    #[serde(default)]
    pub weights: Option<Vec<f64>>,
}

/// What `[resources] attributes` entries must look like; in error messages.
pub const ATTRIBUTE_EXPECTED: &str = "{ name = \"memory_gb\", min = 1, max = 64 } (uniform) or { name = \"cores\", values = [1, 2, 4, 8], weights = [4, 3, 2, 1] }";

/// A sub-query: values of attribute `attr` in [lo, hi].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    /// The attribute.
    pub attr: u32,
    /// The lowest value wanted.
    pub lo: f64,
    /// The highest value wanted.
    pub hi: f64,
}

/// Every node's attribute values and the workload's range queries.
#[derive(Clone, Debug, PartialEq)]
pub struct Attributes {
    /// The attributes' names.
    pub names: Vec<String>,
    /// Each attribute's value range [min, max]: what a locality-preserving hash
    /// maps onto the identifier space.
    pub bounds: Vec<(f64, f64)>,
    /// Node-major: node v's value of attribute a at v·A + a.
    values: Vec<f64>,
    /// Each range query's sub-queries, by attribute.
    pub queries: Vec<Vec<Range>>,
}

/// Why the attributes cannot be had: the key below `resources` and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeError {
    /// The key below `resources`.
    pub key: String,
    /// What is wrong and what was expected.
    pub message: String,
}

fn err<T>(key: impl Into<String>, message: impl Into<String>) -> Result<T, AttributeError> {
    Err(AttributeError { key: key.into(), message: message.into() })
}

/// A table of attribute values read from a file: names, and rows of values.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributeTable {
    /// The columns' names, from the header line.
    pub names: Vec<String>,
    /// The rows, each a value per column.
    pub rows: Vec<Vec<f64>>,
}

/// Reads an attribute file: a header line of names, then one line of numbers
/// per host, comma-separated; `#` starts a comment, blank lines are skipped.
pub fn read_table(path: &Path) -> Result<AttributeTable, AttributeError> {
    let text = std::fs::read_to_string(path)
        .or_else(|e| err("attribute_file", format!("cannot read the attribute file {}: {e}", path.display())))?;
    let mut names: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let Some(names) = &names else {
            if fields.iter().any(|f| f.is_empty()) {
                return err(
                    "attribute_file",
                    format!(
                        "{} line {}: expected a header of attribute names, such as cores,memory_gb",
                        path.display(),
                        i + 1
                    ),
                );
            }
            names = Some(fields.iter().map(|f| f.to_string()).collect());
            continue;
        };
        if fields.len() != names.len() {
            return err(
                "attribute_file",
                format!(
                    "{} line {}: {} fields; expected {}, one per name of the header",
                    path.display(),
                    i + 1,
                    fields.len(),
                    names.len()
                ),
            );
        }
        let row: Result<Vec<f64>, _> = fields.iter().map(|f| f.parse::<f64>()).collect();
        match row {
            Ok(row) if row.iter().all(|x| x.is_finite()) => rows.push(row),
            _ => {
                return err(
                    "attribute_file",
                    format!("{} line {}: expected a number in every field, found {line}", path.display(), i + 1),
                );
            }
        }
    }
    let Some(names) = names else {
        return err(
            "attribute_file",
            format!("the attribute file {} is empty; expected a header and rows", path.display()),
        );
    };
    if rows.is_empty() {
        return err(
            "attribute_file",
            format!("the attribute file {} has no rows; expected one per host", path.display()),
        );
    }
    check_names(&names, "attribute_file")?;
    Ok(AttributeTable { names, rows })
}

fn check_names(names: &[String], key: &str) -> Result<(), AttributeError> {
    if names.len() > 64 {
        return err(key, format!("{} attributes; expected at most 64", names.len()));
    }
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return err(key, format!("attribute `{n}` is named twice; expected distinct names"));
        }
    }
    Ok(())
}

/// Checks the `attributes` entries.
pub fn check_specs(specs: &[AttributeSpec]) -> Result<(), AttributeError> {
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    check_names(&names, "attributes")?;
    for (i, s) in specs.iter().enumerate() {
        let key = |k: &str| format!("attributes[{i}].{k}");
        if s.name.is_empty() {
            return err(key("name"), "expected a name, such as \"cores\"");
        }
        match &s.values {
            Some(values) => {
                if values.is_empty() || values.iter().any(|x| !x.is_finite()) {
                    return err(key("values"), "expected a list of numbers, such as [1, 2, 4, 8]");
                }
                if let Some(w) = &s.weights {
                    if w.len() != values.len() {
                        return err(
                            key("weights"),
                            format!("{} weights for {} values; expected one each", w.len(), values.len()),
                        );
                    }
                    if w.iter().any(|x| !x.is_finite() || *x < 0.0) || w.iter().sum::<f64>() <= 0.0 {
                        return err(key("weights"), "expected weights ≥ 0 that add up to more than 0");
                    }
                }
                let (lo, hi) = extent(values);
                if s.min.is_some_and(|m| m > lo) {
                    return err(
                        key("min"),
                        format!("{} is above the value {lo}; expected min ≤ every value", s.min.unwrap_or(lo)),
                    );
                }
                if s.max.is_some_and(|m| m < hi) {
                    return err(
                        key("max"),
                        format!("{} is below the value {hi}; expected max ≥ every value", s.max.unwrap_or(hi)),
                    );
                }
            }
            None => {
                if s.weights.is_some() {
                    return err(
                        key("weights"),
                        "weights go with values; expected values = [...] as well, or no weights",
                    );
                }
                let (Some(lo), Some(hi)) = (s.min, s.max) else {
                    return err(
                        key(if s.min.is_none() { "min" } else { "max" }),
                        format!("missing; expected {ATTRIBUTE_EXPECTED}"),
                    );
                };
                if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                    return err(key("max"), format!("[{lo}, {hi}] is empty; expected min < max"));
                }
            }
        }
    }
    Ok(())
}

fn extent(values: &[f64]) -> (f64, f64) {
    values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

/// Where the values come from.
pub enum Source<'a> {
    /// Drawn from each attribute's distribution.
    Drawn(&'a [AttributeSpec]),
    /// Read from a file: node v takes row v modulo the rows.
    Table(&'a AttributeTable),
}

impl Attributes {
    /// The values of `nodes` nodes from `source`, and `queries` range queries of
    /// `per_query` attributes spanning `selectivity` of each one's range. Each
    /// query is built around a node drawn uniformly (its attributes drawn
    /// uniformly without repeats, each range placed uniformly among those of
    /// its width that hold the node's value, within the attribute's bounds),
    /// so at least one node matches it.
    pub fn generate(
        source: Source,
        nodes: usize,
        queries: u32,
        per_query: u32,
        selectivity: f64,
        rng: &mut ChaCha8Rng,
    ) -> Attributes {
        let (names, bounds, values) = match source {
            Source::Drawn(specs) => {
                let a = specs.len();
                let mut values = vec![0.0; nodes * a];
                let bounds: Vec<(f64, f64)> = specs
                    .iter()
                    .map(|s| match &s.values {
                        Some(v) => {
                            let (lo, hi) = extent(v);
                            (s.min.unwrap_or(lo), s.max.unwrap_or(hi))
                        }
                        None => (s.min.unwrap_or(0.0), s.max.unwrap_or(1.0)),
                    })
                    .collect();
                let draws: Vec<Choice> = specs
                    .iter()
                    .zip(&bounds)
                    .map(|(s, &(lo, hi))| match &s.values {
                        Some(v) => Choice::Values(v.clone(), s.weights.clone().unwrap_or_else(|| vec![1.0; v.len()])),
                        None => Choice::Uniform(lo, hi),
                    })
                    .collect();
                for v in 0..nodes {
                    for (i, d) in draws.iter().enumerate() {
                        values[v * a + i] = d.sample(rng);
                    }
                }
                (specs.iter().map(|s| s.name.clone()).collect(), bounds, values)
            }
            Source::Table(t) => {
                let a = t.names.len();
                let bounds = (0..a).map(|i| extent(&t.rows.iter().map(|r| r[i]).collect::<Vec<_>>())).collect();
                let values = (0..nodes).flat_map(|v| t.rows[v % t.rows.len()].iter().copied()).collect();
                (t.names.clone(), bounds, values)
            }
        };
        let mut out = Attributes { names, bounds, values, queries: Vec::new() };
        let a = out.names.len();
        let k = (per_query as usize).clamp(1, a);
        for _ in 0..queries {
            let around = rng.random_range(0..nodes.max(1));
            let mut attrs: Vec<usize> = index::sample(rng, a, k).into_vec();
            attrs.sort_unstable();
            let ranges = attrs
                .into_iter()
                .map(|i| {
                    let (min, max) = out.bounds[i];
                    let width = selectivity * (max - min);
                    let x = out.value(around, i);
                    let (from, to) = ((x - width).max(min), x.min(max - width));
                    let lo = if to > from { from + rng.random::<f64>() * (to - from) } else { from.min(x) };
                    Range { attr: i as u32, lo, hi: (lo + width).max(x) }
                })
                .collect();
            out.queries.push(ranges);
        }
        out
    }

    /// How many attributes each node has.
    pub fn count(&self) -> usize {
        self.names.len()
    }

    /// Node `v`'s value of attribute `a`.
    #[inline]
    pub fn value(&self, v: usize, a: usize) -> f64 {
        self.values[v * self.names.len() + a]
    }

    /// Whether node `v`'s values satisfy every sub-query of `ranges`.
    pub fn satisfies(&self, v: usize, ranges: &[Range]) -> bool {
        ranges.iter().all(|r| (r.lo..=r.hi).contains(&self.value(v, r.attr as usize)))
    }

    /// The nodes (of `nodes`) matching each query, ascending: the holders of
    /// each query's "type".
    pub fn matches(&self, nodes: usize) -> Vec<Vec<u32>> {
        self.queries.iter().map(|q| (0..nodes as u32).filter(|&v| self.satisfies(v as usize, q)).collect()).collect()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.values.capacity() * 8 + self.queries.iter().map(|q| 24 + q.capacity() * 24).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::rng::{Stream, stream};

    fn specs() -> Vec<AttributeSpec> {
        vec![
            AttributeSpec {
                name: "cores".into(),
                min: None,
                max: None,
                values: Some(vec![1.0, 2.0, 4.0, 8.0]),
                weights: Some(vec![4.0, 3.0, 2.0, 1.0]),
            },
            AttributeSpec { name: "memory_gb".into(), min: Some(1.0), max: Some(64.0), values: None, weights: None },
            AttributeSpec { name: "mbps".into(), min: Some(10.0), max: Some(1000.0), values: None, weights: None },
        ]
    }

    #[test]
    fn every_query_spans_its_selectivity_and_matches_at_least_one_node() {
        let specs = specs();
        let a = Attributes::generate(Source::Drawn(&specs), 500, 200, 2, 0.1, &mut stream(4, Stream::Resources));
        let matches = a.matches(500);
        for (q, m) in a.queries.iter().zip(&matches) {
            assert_eq!(q.len(), 2);
            assert!(!m.is_empty(), "{q:?}");
            for r in q {
                let (min, max) = a.bounds[r.attr as usize];
                assert!(r.lo >= min && r.hi <= max + 1e-9, "{r:?}");
                assert!(((r.hi - r.lo) - 0.1 * (max - min)).abs() < 1e-9, "{r:?}");
            }
            // Exactly the nodes whose values fall in every range.
            for v in 0..500 {
                let inside = q.iter().all(|r| (r.lo..=r.hi).contains(&a.value(v, r.attr as usize)));
                assert_eq!(m.binary_search(&(v as u32)).is_ok(), inside);
            }
        }
    }

    #[test]
    fn values_follow_their_weights_and_bounds() {
        let specs = specs();
        let a = Attributes::generate(Source::Drawn(&specs), 20_000, 1, 1, 0.1, &mut stream(4, Stream::Resources));
        let ones = (0..20_000).filter(|&v| a.value(v, 0) == 1.0).count() as f64;
        // P(1 core) = 0.4: within four standard errors.
        assert!((ones / 20_000.0 - 0.4).abs() < 4.0 * (0.24f64 / 20_000.0).sqrt(), "{ones}");
        let mean = (0..20_000).map(|v| a.value(v, 1)).sum::<f64>() / 20_000.0;
        assert!((mean - 32.5).abs() < 0.5, "{mean}");
        assert!((0..20_000).all(|v| (1.0..=64.0).contains(&a.value(v, 1))));
    }

    #[test]
    fn a_file_gives_row_after_row_and_names_a_bad_line() {
        let dir = std::env::temp_dir().join(format!("peergrid-attrs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let good = dir.join("hosts.csv");
        std::fs::write(&good, "# hosts\ncores, memory_gb\n2, 4\n8, 32\n\n4, 16 # a comment\n").expect("write");
        let t = read_table(&good).expect("a good file");
        assert_eq!(t.names, ["cores", "memory_gb"]);
        let a = Attributes::generate(Source::Table(&t), 5, 3, 1, 0.5, &mut stream(1, Stream::Resources));
        let col: Vec<f64> = (0..5).map(|v| a.value(v, 0)).collect();
        assert_eq!(col, [2.0, 8.0, 4.0, 2.0, 8.0]);
        assert_eq!(a.bounds, [(2.0, 8.0), (4.0, 32.0)]);
        let bad = dir.join("bad.csv");
        std::fs::write(&bad, "cores,memory_gb\n2,4\n8,lots\n").expect("write");
        let e = read_table(&bad).unwrap_err();
        assert!(e.message.contains("line 3") && e.message.contains("8,lots"), "{}", e.message);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn specs_say_what_they_expect() {
        let mut s = specs();
        s[1].min = None;
        assert_eq!(check_specs(&s).unwrap_err().key, "attributes[1].min");
        let mut s = specs();
        s[0].weights = Some(vec![1.0]);
        assert_eq!(check_specs(&s).unwrap_err().key, "attributes[0].weights");
        let mut s = specs();
        s[2].name = "cores".into();
        assert!(check_specs(&s).unwrap_err().message.contains("twice"));
        assert!(check_specs(&specs()).is_ok());
    }
}
