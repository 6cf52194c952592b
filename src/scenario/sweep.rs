//! The `[sweep]` table: key paths mapped to lists or ranges of values, and `zip`
//! groups of keys that vary together. Each entry is one axis; the runs are the
//! cartesian product of the axes (the last axis varies fastest) × replicates.

use super::error::InputError;
use crate::base::locate::{Seg, locate, split_path};

/// One axis of the sweep: one key, or a zip group of keys that take their values
/// together (`values[i][k]` is key `k`'s value at level `i`).
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// The scenario key paths the axis sets: one key, or every key of a zip group.
    pub keys: Vec<String>,
    /// The axis's levels, each holding one value per key, in the order of `keys`.
    pub values: Vec<Vec<toml::Value>>,
}

impl Axis {
    /// How many levels the axis has.
    pub fn len(&self) -> usize {
        self.values.len()
    }
    /// Whether the axis has no levels.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

const LIST_EXPECTED: &str = "a non-empty list of values, e.g. [\"5/s\", \"20/s\"], or a range { from = 100, to = 100000, scale = \"log\", points = 7 }";

/// Keys that cannot vary between points of one results folder.
const FIXED: [&str; 7] = ["sweep", "name", "replicates", "seed", "target_ci", "plot", "common_random_numbers"];

/// Reads the sweep table into axes, in file order.
pub fn parse(sweep: toml::Table, text: &str, file: &str) -> Result<Vec<Axis>, InputError> {
    let mut axes = Vec::new();
    for (key, value) in sweep {
        if key == "zip" {
            let groups = match value {
                toml::Value::Table(t) => vec![t],
                toml::Value::Array(a) if a.iter().all(|g| g.is_table()) && !a.is_empty() => {
                    a.into_iter().filter_map(|g| g.as_table().cloned()).collect()
                }
                _ => {
                    return Err(InputError::new(
                        "expected a table of key = [values] that vary together, or a list of such tables",
                    )
                    .file(file)
                    .key("sweep.zip")
                    .line(at(text, &["zip"])));
                }
            };
            for group in groups {
                let mut axis = Axis { keys: Vec::new(), values: Vec::new() };
                for (k, v) in group {
                    let list = values(&k, v, text, file, &["zip", &k])?;
                    if !axis.keys.is_empty() && list.len() != axis.values.len() {
                        return Err(InputError::new(format!(
                            "has {} values but `{}` in the same zip group has {}; keys that vary together need lists of equal length",
                            list.len(),
                            axis.keys[0],
                            axis.values.len()
                        ))
                        .file(file)
                        .key(format!("sweep.zip.\"{k}\""))
                        .line(at(text, &["zip", &k])));
                    }
                    if axis.keys.is_empty() {
                        axis.values = list.into_iter().map(|v| vec![v]).collect();
                    } else {
                        for (level, v) in axis.values.iter_mut().zip(list) {
                            level.push(v);
                        }
                    }
                    axis.keys.push(k);
                }
                if !axis.keys.is_empty() {
                    axes.push(axis);
                }
            }
        } else {
            let list = values(&key, value, text, file, &[&key])?;
            axes.push(Axis { keys: vec![key], values: list.into_iter().map(|v| vec![v]).collect() });
        }
    }
    let mut seen: Vec<&String> = Vec::new();
    for k in axes.iter().flat_map(|a| &a.keys) {
        if let Some(other) =
            seen.iter().find(|o| k.starts_with(&format!("{o}.")) || o.starts_with(&format!("{k}.")) || **o == k)
        {
            return Err(InputError::new(format!("`{k}` and `{other}` overlap; sweep each key once"))
                .file(file)
                .key("sweep")
                .line(at(text, &[k])));
        }
        seen.push(k);
    }
    Ok(axes)
}

fn at(text: &str, path: &[&str]) -> Option<usize> {
    let mut segs = vec![Seg::Key("sweep".into())];
    segs.extend(path.iter().map(|k| Seg::Key(k.to_string())));
    locate(text, &segs)
}

fn values(
    key: &str,
    value: toml::Value,
    text: &str,
    file: &str,
    path: &[&str],
) -> Result<Vec<toml::Value>, InputError> {
    let fail = |m: String| {
        let shown =
            path.iter().map(|p| if p.contains('.') { format!("\"{p}\"") } else { p.to_string() }).collect::<Vec<_>>();
        InputError::new(m).file(file).key(format!("sweep.{}", shown.join("."))).line(at(text, path))
    };
    let root = split_path(key);
    if root.first().is_some_and(|s| matches!(s, Seg::Key(k) if FIXED.contains(&k.as_str()))) {
        return Err(fail(format!(
            "`{key}` cannot be swept; sweep a scenario key such as \"network.nodes\" or \"protocol\""
        )));
    }
    match value {
        toml::Value::Array(v) if !v.is_empty() => Ok(v),
        toml::Value::Table(t) if t.contains_key("from") => range(&t).map_err(fail),
        _ => Err(fail(format!("expected {LIST_EXPECTED}"))),
    }
}

/// `{ from, to, points, scale = "linear" | "log" }`: `points` values from `from` to
/// `to` inclusive, evenly spaced (log: evenly in log scale). Integer bounds give
/// integer values, rounded and without repeats.
pub fn range(t: &toml::Table) -> Result<Vec<toml::Value>, String> {
    if let Some(k) = t.keys().find(|k| !["from", "to", "points", "scale"].contains(&k.as_str())) {
        return Err(format!("unknown key `{k}` in a range; expected from, to, points, scale"));
    }
    let num = |k: &str| match t.get(k) {
        Some(toml::Value::Integer(i)) => Ok((*i as f64, true)),
        Some(toml::Value::Float(f)) if f.is_finite() => Ok((*f, false)),
        _ => Err(format!("range `{k}` is missing or not a number; expected {LIST_EXPECTED}")),
    };
    let (from, int_from) = num("from")?;
    let (to, int_to) = num("to")?;
    let points = match t.get("points") {
        Some(toml::Value::Integer(p)) if (2..=10_000).contains(p) => *p as usize,
        _ => return Err("range `points` must be an integer from 2 to 10000".into()),
    };
    let log = match t.get("scale").map(|s| s.as_str()) {
        None | Some(Some("linear")) => false,
        Some(Some("log")) => true,
        _ => return Err("range `scale` must be \"linear\" or \"log\"".into()),
    };
    if log && (from <= 0.0 || to <= 0.0) {
        return Err(format!("a log range needs from and to above zero, not {from} and {to}"));
    }
    let at = |i: usize| {
        let f = i as f64 / (points - 1) as f64;
        if log { (from.ln() + f * (to.ln() - from.ln())).exp() } else { from + f * (to - from) }
    };
    let mut out: Vec<toml::Value> = Vec::with_capacity(points);
    for i in 0..points {
        let x = if i == points - 1 { to } else { significant(at(i)) };
        let v = if int_from && int_to { toml::Value::Integer(x.round() as i64) } else { toml::Value::Float(x) };
        if out.last() != Some(&v) {
            out.push(v);
        }
    }
    Ok(out)
}

/// `x` to 12 significant digits: a range's inner values are then the round numbers
/// they stand for (10^-3, not 0.0010000000000000002), and print as such in check,
/// the parameter columns and the legends.
fn significant(x: f64) -> f64 {
    format!("{x:.11e}").parse().unwrap_or(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(s: &str) -> toml::Table {
        toml::from_str(s).unwrap()
    }

    #[test]
    fn log_and_linear_ranges() {
        let r = range(&table("from = 100\nto = 100000\nscale = \"log\"\npoints = 4")).unwrap();
        assert_eq!(r, [100, 1000, 10000, 100000].map(toml::Value::Integer));
        let r = range(&table("from = 0.0\nto = 1.0\npoints = 3")).unwrap();
        assert_eq!(r, [0.0, 0.5, 1.0].map(toml::Value::Float));
        let r = range(&table("from = 1\nto = 3\npoints = 7")).unwrap();
        assert_eq!(r, [1, 2, 3].map(toml::Value::Integer), "rounding repeats are dropped");
        assert!(range(&table("from = 0\nto = 10\nscale = \"log\"\npoints = 3")).is_err());
        let r = range(&table("from = 0.0001\nto = 1.0\nscale = \"log\"\npoints = 5")).unwrap();
        assert_eq!(r, [0.0001, 0.001, 0.01, 0.1, 1.0].map(toml::Value::Float));
        let shown: Vec<String> = r.iter().map(|v| v.to_string()).collect();
        assert_eq!(shown, ["0.0001", "0.001", "0.01", "0.1", "1.0"]);
        assert!(range(&table("from = 1\nto = 10\npoints = 1")).is_err());
        assert!(range(&table("from = 1\nto = 10\npoints = 3\nstep = 2")).is_err());
    }

    #[test]
    fn zip_groups_vary_together() {
        let text = "[sweep]\n\"protocol.ttl\" = [1, 2]\n[sweep.zip]\n\"network.nodes\" = [10, 20, 30]\n\"resources.replicas\" = [1, 2, 3]\n";
        let doc = table(text);
        let axes = parse(doc["sweep"].as_table().unwrap().clone(), text, "f").unwrap();
        assert_eq!(axes.len(), 2);
        assert_eq!(axes[1].keys, ["network.nodes", "resources.replicas"]);
        assert_eq!(axes[1].values[2], [toml::Value::Integer(30), toml::Value::Integer(3)]);
        let bad = "[sweep.zip]\n\"network.nodes\" = [10, 20]\n\"resources.replicas\" = [1]\n";
        let e = parse(table(bad)["sweep"].as_table().unwrap().clone(), bad, "f").unwrap_err();
        assert!(e.message.contains("equal length") && e.line == Some(3), "{e}");
        let twice = "[sweep]\nprotocol = [{ name = \"central\" }]\n\"protocol.ttl\" = [1]\n";
        assert!(parse(table(twice)["sweep"].as_table().unwrap().clone(), twice, "f").is_err());
    }
}
