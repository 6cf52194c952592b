//! A measured all-pairs round-trip-time matrix as the underlay: simulated nodes are
//! mapped onto its hosts and a message takes half the round trip between them.
//!
//! The file is a square matrix of round-trip times in milliseconds, one row per
//! host, values separated by tabs or spaces; blank lines and `#` comments are
//! skipped. Entry (i, j) is the RTT between hosts i and j. An RTT is one figure for
//! both directions, so where (i, j) and (j, i) differ their mean is used, whatever
//! the difference; one-way latency is half of it, rounded to whole nanoseconds. The
//! diagonal is not used (it must still be a number ≥ 0), and an off-diagonal 0 is
//! refused, since it is how some data sets mark a missing measurement.
//!
//! Mapping: each run draws a random permutation `perm` of the hosts, and node i sits
//! on host `perm[i mod hosts]`. With no more nodes than hosts that is a random
//! choice of distinct hosts; beyond, nodes i, i + hosts, i + 2·hosts, ... share a
//! host, so every host carries ⌊N / hosts⌋ or ⌈N / hosts⌉ nodes. Two nodes on one
//! host are `same_host` apart, by default the smallest latency between two distinct
//! hosts of the matrix (the two closest hosts, usually at one site). Nothing is
//! stored per node; the matrix is read once per file and shared between runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use super::LatencyError;
use crate::base::{NodeId, SimTime};

/// What `peergrid list` shows.
pub const SUMMARY: &str = "file, same_host = the smallest latency between two hosts: a measured round-trip-time \
matrix (ms, one row per host, tab- or space-separated; relative to the scenario); latency = RTT / 2; \
node i on host perm[i mod hosts] of a random permutation perm";

/// The most hosts a matrix may have (8 bytes a pair: 800 MB at the limit).
pub const MAX_HOSTS: usize = 10_000;

/// The longest round trip accepted, in milliseconds (about 2.8 hours).
const MAX_RTT_MS: f64 = 1e7;

/// `network.latency = { model = "matrix", file = "...", same_host = "..." }`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MatrixSpec {
    /// The matrix file, relative to the scenario's folder.
    pub file: String,
    /// One-way latency between two nodes on the same host; unset, the smallest
    /// latency between two distinct hosts of the matrix.
    #[serde(default)]
    pub same_host: Option<SimTime>,
    /// The file's matrix once loaded.
    #[serde(skip)]
    loaded: Shared,
}

impl MatrixSpec {
    /// A spec naming `file` (relative to the folder given to [`MatrixSpec::load`]), not yet loaded.
    pub fn new(file: impl Into<String>, same_host: Option<SimTime>) -> MatrixSpec {
        MatrixSpec { file: file.into(), same_host, loaded: Shared::default() }
    }

    /// The loaded matrix, if [`MatrixSpec::load`] has read it.
    pub fn matrix(&self) -> Option<&Arc<RttMatrix>> {
        self.loaded.0.as_ref()
    }

    /// Reads and checks the file relative to `base` unless already loaded, taking
    /// it from `cache` when another spec has read the same file.
    pub fn load(&mut self, base: &Path, cache: &mut MatrixCache) -> Result<(), LatencyError> {
        if self.loaded.0.is_none() {
            self.loaded.0 = Some(cache.get(&base.join(&self.file))?);
        }
        Ok(())
    }
}

/// A loaded matrix kept beside the keys that name it. It is a copy of the file
/// the spec names, so it takes no part in comparing specs, and debug output shows
/// only its size.
#[derive(Clone, Default)]
struct Shared(Option<Arc<RttMatrix>>);

impl PartialEq for Shared {
    fn eq(&self, _: &Shared) -> bool {
        true
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(m) => write!(f, "loaded ({} hosts)", m.hosts()),
            None => write!(f, "not loaded"),
        }
    }
}

/// Matrices already read, by path, so that the points of a sweep share one copy.
#[derive(Default, Debug)]
pub struct MatrixCache {
    files: Vec<(PathBuf, Arc<RttMatrix>)>,
}

impl MatrixCache {
    /// The matrix of `path`, read and checked the first time it is asked for.
    pub fn get(&mut self, path: &Path) -> Result<Arc<RttMatrix>, LatencyError> {
        if let Some((_, m)) = self.files.iter().find(|(p, _)| p == path) {
            return Ok(Arc::clone(m));
        }
        let m = Arc::new(RttMatrix::load(path)?);
        self.files.push((path.to_path_buf(), Arc::clone(&m)));
        Ok(m)
    }
}

/// One-way latencies between every two hosts of a measured matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct RttMatrix {
    hosts: usize,
    /// Nanoseconds, row-major, symmetric; the diagonal is 0 and unused.
    one_way: Vec<u64>,
    /// The smallest one-way latency between two distinct hosts, in nanoseconds.
    min_one_way: u64,
    /// The mean one-way latency over ordered pairs of distinct hosts, in seconds.
    mean_one_way_s: f64,
}

fn file_error(message: String) -> LatencyError {
    LatencyError { key: "file", message }
}

impl RttMatrix {
    /// Reads and checks the matrix file at `path`.
    pub fn load(path: &Path) -> Result<RttMatrix, LatencyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| file_error(format!("cannot read the latency matrix {}: {e}", path.display())))?;
        RttMatrix::parse(&text, &path.display().to_string())
    }

    /// Parses matrix text; errors name `name`, the line, the row and the column.
    pub fn parse(text: &str, name: &str) -> Result<RttMatrix, LatencyError> {
        let fail = |m: String| Err(file_error(m));
        let mut rtt: Vec<f64> = Vec::new();
        let mut n = 0;
        let mut rows = 0;
        let mut last_line = 0;
        for (i, line) in text.lines().enumerate() {
            let content = line.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let (line, row) = (i + 1, rows + 1);
            let columns = content.split_whitespace().count();
            if row == 1 {
                if !(2..=MAX_HOSTS).contains(&columns) {
                    return fail(format!(
                        "{name}, line {line} (row 1) has {columns} columns; expected a square matrix of 2 to {MAX_HOSTS} hosts, one column per host"
                    ));
                }
                n = columns;
                rtt.reserve(n * n);
            } else if row > n {
                return fail(format!(
                    "{name}, line {line}: row {row} is one more than the {n} columns of row 1; expected a square matrix, {n} rows of {n} round-trip times"
                ));
            } else if columns != n {
                return fail(format!(
                    "{name}, line {line} (row {row}) has {columns} columns; expected {n}, as many as row 1 (a square matrix has one column per host)"
                ));
            }
            for (j, token) in content.split_whitespace().enumerate() {
                let column = j + 1;
                let at = format!("{name}, line {line} (row {row}), column {column}");
                let v = match token.parse::<f64>() {
                    Ok(v) if v.is_finite() => v,
                    _ => {
                        return fail(format!(
                            "{at}: found `{token}`; expected a round-trip time in milliseconds, a number ≥ 0"
                        ));
                    }
                };
                if v < 0.0 {
                    return fail(format!("{at}: {token} is negative; expected a round-trip time in milliseconds ≥ 0"));
                }
                if v > MAX_RTT_MS {
                    return fail(format!("{at}: {token} ms is out of range; expected at most {MAX_RTT_MS} ms"));
                }
                if v == 0.0 && row != column {
                    return fail(format!(
                        "{at}: 0 between two distinct hosts; expected a positive round-trip time (a 0 off the diagonal is no measurement)"
                    ));
                }
                rtt.push(v);
            }
            rows = row;
            last_line = line;
        }
        if rows == 0 {
            return fail(format!("{name} has no rows; expected a square matrix of round-trip times in milliseconds"));
        }
        if rows < n {
            return fail(format!(
                "{name} ends after row {rows} (line {last_line}); expected a square matrix, {n} rows of {n} round-trip times, one row per host"
            ));
        }
        let mut one_way = vec![0u64; n * n];
        let mut min_one_way = u64::MAX;
        let mut sum: u128 = 0;
        for a in 0..n {
            for b in (a + 1)..n {
                // Half the mean of the two measurements of the same round trip.
                let t = ((rtt[a * n + b] + rtt[b * n + a]) * 250_000.0).round() as u64;
                one_way[a * n + b] = t;
                one_way[b * n + a] = t;
                min_one_way = min_one_way.min(t);
                sum += 2 * t as u128;
            }
        }
        let mean_one_way_s = sum as f64 / (n * (n - 1)) as f64 / 1e9;
        Ok(RttMatrix { hosts: n, one_way, min_one_way, mean_one_way_s })
    }

    /// How many hosts the matrix has.
    pub fn hosts(&self) -> usize {
        self.hosts
    }

    /// The one-way latency between hosts `a` and `b` (0 for a = b, which the underlay never asks).
    #[inline]
    pub fn one_way(&self, a: usize, b: usize) -> SimTime {
        SimTime(self.one_way[a * self.hosts + b])
    }

    /// The smallest one-way latency between two distinct hosts.
    pub fn min_one_way(&self) -> SimTime {
        SimTime(self.min_one_way)
    }

    /// The mean one-way latency between two distinct hosts, in seconds.
    pub fn mean_one_way_s(&self) -> f64 {
        self.mean_one_way_s
    }

    /// Bytes the matrix holds.
    pub fn bytes(&self) -> usize {
        self.one_way.capacity() * std::mem::size_of::<u64>()
    }
}

/// A matrix underlay for one run: the shared matrix and the run's host permutation.
#[derive(Clone, Debug)]
pub struct MatrixUnderlay {
    matrix: Arc<RttMatrix>,
    /// Node i sits on host `perm[i mod hosts]`.
    perm: Vec<u32>,
    /// One-way latency between two nodes on the same host, in nanoseconds.
    same_host: u64,
}

impl MatrixUnderlay {
    /// Draws the host permutation from `rng`; `spec` must be loaded.
    pub fn new(spec: &MatrixSpec, rng: &mut ChaCha8Rng) -> Result<MatrixUnderlay, LatencyError> {
        let Some(matrix) = spec.matrix() else {
            return Err(file_error(format!("the latency matrix {} is not loaded", spec.file)));
        };
        let mut perm: Vec<u32> = (0..matrix.hosts() as u32).collect();
        perm.shuffle(rng);
        let same_host = spec.same_host.unwrap_or(matrix.min_one_way()).0;
        Ok(MatrixUnderlay { matrix: Arc::clone(matrix), perm, same_host })
    }

    /// The host node `v` sits on.
    #[inline]
    pub fn host(&self, v: NodeId) -> usize {
        self.perm[v.index() % self.perm.len()] as usize
    }

    /// The one-way latency between `a` and `b`: half their hosts' round trip, or
    /// `same_host` when they share one.
    #[inline]
    pub fn latency(&self, a: NodeId, b: NodeId) -> SimTime {
        let (ha, hb) = (self.host(a), self.host(b));
        if ha == hb { SimTime(self.same_host) } else { self.matrix.one_way(ha, hb) }
    }

    /// Bytes this run holds of its own: the permutation (the matrix is shared).
    pub fn bytes(&self) -> usize {
        self.perm.capacity() * std::mem::size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::rng::{Stream, stream};

    fn parse(text: &str) -> Result<RttMatrix, String> {
        RttMatrix::parse(text, "m.tsv").map_err(|e| {
            assert_eq!(e.key, "file");
            e.message
        })
    }

    fn shipped() -> Arc<RttMatrix> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/data/planetlab-rtt/PlanetLabData_1.tsv");
        Arc::new(RttMatrix::load(&path).expect("the shipped matrix loads"))
    }

    #[test]
    fn parse_errors_name_the_line_row_and_column() {
        let err = parse("# hosts a, b, c\n0\t10\t20\n\n10 0 x\n20 30 0\n").unwrap_err();
        assert!(err.starts_with("m.tsv, line 4 (row 2), column 3: found `x`"), "{err}");
        let err = parse("0 10 20\n10 0 -5\n20 30 0\n").unwrap_err();
        assert!(err.contains("line 2 (row 2), column 3: -5 is negative"), "{err}");
        let err = parse("0 10 20\n10 0\n20 30 0\n").unwrap_err();
        assert!(err.contains("line 2 (row 2) has 2 columns; expected 3"), "{err}");
        let err = parse("0 10 20\n10 0 5\n").unwrap_err();
        assert!(err.contains("ends after row 2 (line 2); expected a square matrix, 3 rows"), "{err}");
        let err = parse("0 10\n10 0\n5 5\n").unwrap_err();
        assert!(err.contains("line 3: row 3 is one more than the 2 columns"), "{err}");
        let err = parse("0 10 20\n10 0 0\n20 30 0\n").unwrap_err();
        assert!(err.contains("line 2 (row 2), column 3: 0 between two distinct hosts"), "{err}");
        let err = parse("0 inf\n1 0\n").unwrap_err();
        assert!(err.contains("line 1 (row 1), column 2: found `inf`"), "{err}");
        assert!(parse("").unwrap_err().contains("no rows"));
        assert!(parse("0\n").unwrap_err().contains("2 to 10000 hosts"));
    }

    #[test]
    fn one_way_is_half_the_mean_round_trip_in_whole_nanoseconds() {
        // Tabs and spaces, an asymmetric pair (10 and 12 ms), a diagonal that is not 0.
        let m = parse("0.5\t10   20.000004\n12 0 30\n20.000004 30 0\n").expect("valid");
        assert_eq!(m.hosts(), 3);
        assert_eq!(m.one_way(0, 1), SimTime::from_micros(5500));
        assert_eq!(m.one_way(1, 0), SimTime::from_micros(5500));
        assert_eq!(m.one_way(0, 2), SimTime(10_000_002), "0.000002 ms is 2 ns");
        assert_eq!(m.min_one_way(), SimTime::from_micros(5500));
        assert!((m.mean_one_way_s() - (5.5 + 10.000002 + 15.0) / 3.0 / 1000.0).abs() < 1e-12);
    }

    #[test]
    fn the_shipped_planetlab_matrix_loads_with_its_published_figures() {
        let m = shipped();
        assert_eq!(m.hosts(), 490);
        // RTTs: min 0.086 ms, max 2,984 ms, median 135 ms, mean 146.84 ms.
        assert_eq!(m.min_one_way(), SimTime::from_micros(43));
        let mut all: Vec<u64> = (0..490)
            .flat_map(|a| (0..490).filter(move |&b| b != a).map(move |b| (a, b)))
            .map(|(a, b)| m.one_way(a, b).0)
            .collect();
        all.sort_unstable();
        let ms = |ns: u64| ns as f64 / 1e6;
        assert!((ms(all[all.len() - 1]) - 2984.1 / 2.0).abs() < 1e-6, "{}", ms(all[all.len() - 1]));
        let median = ms(all[all.len() / 2]);
        assert!((median - 135.0 / 2.0).abs() < 0.1, "median one-way {median} ms");
        assert!((m.mean_one_way_s() * 1e3 - 73.4185).abs() < 0.001, "{}", m.mean_one_way_s());
        let spec =
            super::super::LatencySpec::Matrix(MatrixSpec { loaded: Shared(Some(m)), ..MatrixSpec::new("x", None) });
        assert!((spec.mean_s() - 0.0734185).abs() < 1e-6);
    }

    #[test]
    fn nodes_map_onto_distinct_hosts_then_several_per_host_deterministically() {
        let spec = MatrixSpec { loaded: Shared(Some(shipped())), ..MatrixSpec::new("x", None) };
        let u = MatrixUnderlay::new(&spec, &mut stream(3, Stream::Placement)).expect("loaded");
        let hosts = |n: u32| (0..n).map(|v| u.host(NodeId(v))).collect::<Vec<_>>();
        let mut first = hosts(490);
        first.sort_unstable();
        first.dedup();
        assert_eq!(first.len(), 490, "490 nodes take 490 distinct hosts");
        let many = hosts(2000);
        let mut per_host = vec![0; 490];
        for &h in &many {
            per_host[h] += 1;
        }
        assert!(per_host.iter().all(|&c| c == 4 || c == 5), "2000 nodes: 4 or 5 a host");
        assert_eq!(u.host(NodeId(7)), u.host(NodeId(7 + 490)));
        assert_eq!(u.latency(NodeId(7), NodeId(7 + 980)), SimTime::from_micros(43), "same host: the smallest latency");
        let a = u.host(NodeId(0));
        let b = u.host(NodeId(1));
        assert_eq!(u.latency(NodeId(0), NodeId(1)), spec.matrix().unwrap().one_way(a, b));
        assert_eq!(u.latency(NodeId(0), NodeId(1)), u.latency(NodeId(1), NodeId(0)));
        // The same seed maps the same way; another seed does not.
        let again = MatrixUnderlay::new(&spec, &mut stream(3, Stream::Placement)).expect("loaded");
        assert_eq!(again.perm, u.perm);
        let other = MatrixUnderlay::new(&spec, &mut stream(4, Stream::Placement)).expect("loaded");
        assert_ne!(other.perm, u.perm);
        let own = MatrixSpec { same_host: Some(SimTime::from_micros(100)), ..spec.clone() };
        let u = MatrixUnderlay::new(&own, &mut stream(3, Stream::Placement)).expect("loaded");
        assert_eq!(u.latency(NodeId(5), NodeId(495)), SimTime::from_micros(100));
    }

    #[test]
    fn a_cache_reads_a_file_once_and_a_missing_file_is_named() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::write(dir.path().join("m.tsv"), "0 1\n1 0\n").expect("written");
        let mut cache = MatrixCache::default();
        let mut a = MatrixSpec::new("m.tsv", None);
        let mut b = MatrixSpec::new("m.tsv", None);
        a.load(dir.path(), &mut cache).expect("loads");
        b.load(dir.path(), &mut cache).expect("loads");
        assert!(Arc::ptr_eq(a.matrix().unwrap(), b.matrix().unwrap()));
        let err = MatrixSpec::new("gone.tsv", None).load(dir.path(), &mut cache).unwrap_err();
        assert!(err.message.contains("cannot read the latency matrix") && err.message.contains("gone.tsv"));
    }
}
