//! A number drawn per node or per job: fixed, one of a list (weighted), or
//! uniform on a range; what `[jobs] node_cores`, `volunteer`'s `speed` and the
//! resource attributes draw from.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Deserializer};

/// A number drawn per node or per job: fixed, one of a list (weighted), or
/// uniform on [min, max].
#[derive(Clone, Debug, PartialEq)]
pub enum Choice {
    /// Always this.
    Fixed(f64),
    /// One of `values`, with probability ∝ its weight.
    Values(Vec<f64>, Vec<f64>),
    /// Uniform on [min, max].
    Uniform(f64, f64),
}

/// What a [`Choice`] must look like; in error messages.
pub const CHOICE_EXPECTED: &str =
    "a number, { values = [1, 2, 4, 8], weights = [4, 3, 2, 1] } (weights optional) or { min = 0.5, max = 2 }";

impl<'de> Deserialize<'de> for Choice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = toml::Value::deserialize(d)?;
        let num = |v: &toml::Value| match v {
            toml::Value::Integer(i) => Some(*i as f64),
            toml::Value::Float(f) if f.is_finite() => Some(*f),
            _ => None,
        };
        let list = |v: Option<&toml::Value>| -> Option<Vec<f64>> { v?.as_array()?.iter().map(num).collect() };
        let bad = || D::Error::custom(format!("expected {CHOICE_EXPECTED}, found {v}"));
        if let Some(x) = num(&v) {
            return (x >= 0.0).then_some(Choice::Fixed(x)).ok_or_else(bad);
        }
        let t = v.as_table().ok_or_else(bad)?;
        if t.keys().any(|k| !["values", "weights", "min", "max"].contains(&k.as_str())) {
            return Err(bad());
        }
        if t.contains_key("values") {
            let values = list(t.get("values")).filter(|x| !x.is_empty() && x.iter().all(|&x| x >= 0.0));
            let values = values.ok_or_else(bad)?;
            let weights = match t.get("weights") {
                None => vec![1.0; values.len()],
                Some(w) => {
                    list(Some(w)).filter(|w| w.len() == values.len() && w.iter().all(|&x| x >= 0.0)).ok_or_else(
                        || D::Error::custom(format!("weights must be {} numbers ≥ 0, one per value", values.len())),
                    )?
                }
            };
            if weights.iter().sum::<f64>() <= 0.0 {
                return Err(D::Error::custom("weights add up to 0; expected some above 0"));
            }
            return Ok(Choice::Values(values, weights));
        }
        match (t.get("min").and_then(num), t.get("max").and_then(num)) {
            (Some(lo), Some(hi)) if 0.0 <= lo && lo <= hi => Ok(Choice::Uniform(lo, hi)),
            (Some(lo), Some(hi)) => {
                Err(D::Error::custom(format!("[{lo}, {hi}] is empty or negative; expected 0 ≤ min ≤ max")))
            }
            _ => Err(bad()),
        }
    }
}

impl Choice {
    /// A draw.
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> f64 {
        match self {
            Choice::Fixed(x) => *x,
            Choice::Uniform(lo, hi) => lo + rng.random::<f64>() * (hi - lo),
            Choice::Values(values, weights) => {
                let total: f64 = weights.iter().sum();
                let mut u = rng.random::<f64>() * total;
                for (x, w) in values.iter().zip(weights) {
                    if u < *w {
                        return *x;
                    }
                    u -= w;
                }
                values[weights.iter().rposition(|&w| w > 0.0).unwrap_or(0)]
            }
        }
    }

    /// The largest value it can take.
    pub fn max(&self) -> f64 {
        match self {
            Choice::Fixed(x) | Choice::Uniform(_, x) => *x,
            Choice::Values(v, _) => v.iter().copied().fold(0.0, f64::max),
        }
    }

    /// The smallest value it can take.
    pub fn min(&self) -> f64 {
        match self {
            Choice::Fixed(x) | Choice::Uniform(x, _) => *x,
            Choice::Values(v, _) => v.iter().copied().fold(f64::INFINITY, f64::min),
        }
    }
}
