//! Session and downtime distributions: exponential, Weibull, Pareto (the shifted
//! form of Yao et al. and OverSim) and lognormal, each given by its mean or by the
//! scale that published fits report, with exact sampling of the residual time a
//! node has left when it is observed at equilibrium.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1, Gamma, StandardNormal};
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

use crate::base::time::DURATION_EXPECTED;
use crate::base::{SimTime, parse_duration};

/// The distribution families a session or downtime can follow.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Dist {
    /// Memoryless: the rate of leaving does not depend on the time up.
    Exponential,
    /// `shape` < 1 gives the heavy tail measured in deployed systems.
    Weibull,
    /// Shifted Pareto (Lomax): P(X > x) = (1 + x/scale)^-shape, as Yao et al. and
    /// OverSim's ParetoChurn use it.
    Pareto,
    /// log X is normal; `shape` is the standard deviation of log X, `scale` its median.
    Lognormal,
}

/// `churn.session` or `churn.downtime` as written: a family, and either its mean
/// or its scale, with a shape where the family has one.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LifetimeSpec {
    /// The distribution family.
    pub dist: Dist,
    /// The mean time; `"never"` for a period that never ends (a rate of zero).
    #[serde(default, deserialize_with = "mean_or_never")]
    pub mean: Option<SimTime>,
    /// The scale, as published fits give it (Weibull λ, Pareto β, the lognormal
    /// median; for the exponential the same as the mean).
    #[serde(default)]
    pub scale: Option<SimTime>,
    /// Weibull k, Pareto α, lognormal σ.
    #[serde(default)]
    pub shape: Option<f64>,
}

/// `mean = "never"`: the period never ends.
pub const NEVER: SimTime = SimTime::MAX;

fn mean_or_never<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SimTime>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = SimTime;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "{DURATION_EXPECTED}, or \"never\"")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<SimTime, E> {
            if s.trim() == "never" { Ok(NEVER) } else { parse_duration(s).map_err(E::custom) }
        }
    }
    d.deserialize_str(V).map(Some)
}

/// A validated lifetime distribution, in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Lifetime {
    /// The period never ends: `mean = "never"`, a rate of zero.
    Never,
    /// Mean `mean`.
    Exponential {
        /// Mean seconds.
        mean: f64,
    },
    /// Shape k, scale λ: P(X > x) = exp(-(x/λ)^k).
    Weibull {
        /// k.
        shape: f64,
        /// λ, seconds.
        scale: f64,
    },
    /// Shape α, scale β: P(X > x) = (1 + x/β)^-α.
    Pareto {
        /// α.
        shape: f64,
        /// β, seconds.
        scale: f64,
    },
    /// log X ~ Normal(mu, sigma²).
    Lognormal {
        /// Mean of log X (log-seconds).
        mu: f64,
        /// Standard deviation of log X.
        sigma: f64,
    },
}

/// A mistake in a lifetime table: the key under it and what was expected.
pub type SpecError = (&'static str, String);

impl LifetimeSpec {
    /// Checks the table and gives the distribution it names.
    pub fn resolve(&self) -> Result<Lifetime, SpecError> {
        let secs = |t: SimTime| t.as_secs_f64();
        let shape = || -> Result<f64, SpecError> {
            match self.shape {
                Some(k) if k.is_finite() && k > 0.0 => Ok(k),
                Some(k) => Err(("shape", format!("{k} is out of range; expected a shape above 0"))),
                None => Err(("shape", format!("missing; a {:?} distribution needs a shape", self.dist).to_lowercase())),
            }
        };
        let size = match (self.mean, self.scale) {
            (Some(_), Some(_)) => {
                return Err(("scale", "give either mean or scale, not both".to_string()));
            }
            (None, None) => return Err(("mean", "missing; expected mean = \"...\" or scale = \"...\"".to_string())),
            (Some(NEVER), None) if self.shape.is_none() => return Ok(Lifetime::Never),
            (Some(NEVER), None) => {
                return Err(("shape", "a period that never ends has no shape; remove it".to_string()));
            }
            (Some(m), None) if m == SimTime::ZERO => return Err(("mean", "expected a mean above zero".to_string())),
            (None, Some(s)) if s == SimTime::ZERO => return Err(("scale", "expected a scale above zero".to_string())),
            (Some(m), None) => Size::Mean(secs(m)),
            (None, Some(s)) => Size::Scale(secs(s)),
        };
        Ok(match self.dist {
            Dist::Exponential => {
                if self.shape.is_some() {
                    return Err(("shape", "the exponential distribution has no shape; remove it".to_string()));
                }
                let (Size::Mean(mean) | Size::Scale(mean)) = size;
                Lifetime::Exponential { mean }
            }
            Dist::Weibull => {
                let k = shape()?;
                let scale = match size {
                    Size::Scale(s) => s,
                    Size::Mean(m) => m / gamma(1.0 + 1.0 / k),
                };
                Lifetime::Weibull { shape: k, scale }
            }
            Dist::Pareto => {
                let a = shape()?;
                let scale = match size {
                    Size::Scale(s) => s,
                    Size::Mean(_) if a <= 1.0 => {
                        return Err((
                            "shape",
                            format!("a Pareto of shape {a} has no mean; expected shape > 1 with mean, or give scale"),
                        ));
                    }
                    Size::Mean(m) => m * (a - 1.0),
                };
                Lifetime::Pareto { shape: a, scale }
            }
            Dist::Lognormal => {
                let sigma = shape()?;
                let mu = match size {
                    Size::Scale(median) => median.ln(),
                    Size::Mean(m) => m.ln() - sigma * sigma / 2.0,
                };
                Lifetime::Lognormal { mu, sigma }
            }
        })
    }
}

enum Size {
    Mean(f64),
    Scale(f64),
}

impl Lifetime {
    /// The mean in seconds (infinite for a Pareto of shape ≤ 1).
    pub fn mean(&self) -> f64 {
        match *self {
            Lifetime::Never => f64::INFINITY,
            Lifetime::Exponential { mean } => mean,
            Lifetime::Weibull { shape, scale } => scale * gamma(1.0 + 1.0 / shape),
            Lifetime::Pareto { shape, scale } if shape > 1.0 => scale / (shape - 1.0),
            Lifetime::Pareto { .. } => f64::INFINITY,
            Lifetime::Lognormal { mu, sigma } => (mu + sigma * sigma / 2.0).exp(),
        }
    }

    /// The same family stretched by `factor` in time: every draw `factor` times as long.
    pub fn scaled(&self, factor: f64) -> Lifetime {
        match *self {
            Lifetime::Never => Lifetime::Never,
            Lifetime::Exponential { mean } => Lifetime::Exponential { mean: mean * factor },
            Lifetime::Weibull { shape, scale } => Lifetime::Weibull { shape, scale: scale * factor },
            Lifetime::Pareto { shape, scale } => Lifetime::Pareto { shape, scale: scale * factor },
            Lifetime::Lognormal { mu, sigma } => Lifetime::Lognormal { mu: mu + factor.ln(), sigma },
        }
    }

    /// One draw, in seconds.
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> f64 {
        match *self {
            Lifetime::Never => f64::INFINITY,
            Lifetime::Exponential { mean } => mean * <Exp1 as Distribution<f64>>::sample(&Exp1, rng),
            Lifetime::Weibull { shape, scale } => {
                let e: f64 = Exp1.sample(rng);
                scale * e.powf(1.0 / shape)
            }
            Lifetime::Pareto { shape, scale } => lomax(shape, scale, rng),
            Lifetime::Lognormal { mu, sigma } => {
                let z: f64 = StandardNormal.sample(rng);
                (mu + sigma * z).exp()
            }
        }
    }

    /// The time left of a period in progress at a random moment of a stationary
    /// alternation (the forward recurrence time), in seconds: its density is
    /// P(X > x) / E[X]. Sampled exactly as U·L with L length-biased (density
    /// x f(x) / E[X]) — Weibull: L = λ·G^(1/k), G ~ Gamma(1 + 1/k); lognormal: L is
    /// lognormal(μ + σ², σ) — and for the Pareto directly: the residual of a
    /// Lomax(α, β) is a Lomax(α − 1, β).
    pub fn residual(&self, rng: &mut ChaCha8Rng) -> f64 {
        match *self {
            Lifetime::Never => f64::INFINITY,
            Lifetime::Exponential { mean } => mean * <Exp1 as Distribution<f64>>::sample(&Exp1, rng),
            Lifetime::Weibull { shape, scale } => {
                let g: f64 = Gamma::new(1.0 + 1.0 / shape, 1.0).map_or(1.0, |d| d.sample(rng));
                let u: f64 = rng.random();
                u * scale * g.powf(1.0 / shape)
            }
            Lifetime::Pareto { shape, scale } => lomax(shape - 1.0, scale, rng),
            Lifetime::Lognormal { mu, sigma } => {
                let z: f64 = StandardNormal.sample(rng);
                let u: f64 = rng.random();
                u * (mu + sigma * sigma + sigma * z).exp()
            }
        }
    }

    /// How `peergrid list` and messages describe it.
    pub fn describe(&self) -> String {
        match *self {
            Lifetime::Never => "never".to_string(),
            Lifetime::Exponential { mean } => format!("exponential, mean {}", human(mean)),
            Lifetime::Weibull { shape, scale } => format!("Weibull, shape {shape}, scale {}", human(scale)),
            Lifetime::Pareto { shape, scale } => format!("Pareto, shape {shape}, scale {}", human(scale)),
            Lifetime::Lognormal { mu, sigma } => format!("lognormal, σ {sigma}, median {}", human(mu.exp())),
        }
    }
}

fn human(secs: f64) -> String {
    if secs >= 3600.0 {
        format!("{:.3} h", secs / 3600.0)
    } else if secs >= 60.0 {
        format!("{:.3} min", secs / 60.0)
    } else {
        format!("{secs:.3} s")
    }
}

/// A shifted Pareto (Lomax) draw: P(X > x) = (1 + x/scale)^-shape, by inversion;
/// infinite-mean shapes (≤ 1) are allowed.
pub fn lomax(shape: f64, scale: f64, rng: &mut ChaCha8Rng) -> f64 {
    if shape <= 0.0 {
        return f64::INFINITY;
    }
    // 1 - U lies in (0, 1], so the power is finite.
    let u: f64 = rng.random();
    scale * ((1.0 - u).powf(-1.0 / shape) - 1.0)
}

/// Γ(x) for x > 0 (statrs' Lanczos approximation).
pub fn gamma(x: f64) -> f64 {
    statrs::function::gamma::gamma(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::rng::{Stream, stream};

    fn spec(dist: Dist, mean: Option<f64>, scale: Option<f64>, shape: Option<f64>) -> LifetimeSpec {
        LifetimeSpec { dist, mean: mean.map(SimTime::from_secs_f64), scale: scale.map(SimTime::from_secs_f64), shape }
    }

    fn sample_mean(l: &Lifetime, draws: usize, residual: bool) -> f64 {
        let mut rng = stream(7, Stream::Churn);
        (0..draws).map(|_| if residual { l.residual(&mut rng) } else { l.sample(&mut rng) }).sum::<f64>() / draws as f64
    }

    #[test]
    fn a_mean_gives_that_mean_in_every_family() {
        for (dist, shape) in [
            (Dist::Exponential, None),
            (Dist::Weibull, Some(0.615)),
            (Dist::Pareto, Some(3.0)),
            (Dist::Lognormal, Some(1.0)),
        ] {
            let l = spec(dist, Some(600.0), None, shape).resolve().expect("valid");
            assert!((l.mean() - 600.0).abs() < 1e-6, "{dist:?}: {}", l.mean());
            let m = sample_mean(&l, 400_000, false);
            assert!((m / 600.0 - 1.0).abs() < 0.02, "{dist:?}: sample mean {m}");
        }
    }

    #[test]
    fn published_weibull_scales_give_the_published_means() {
        // Steiner et al.: KAD sessions shape 0.615, scale 169.5 min → mean ≈ 247 min.
        let l = spec(Dist::Weibull, None, Some(169.5 * 60.0), Some(0.615)).resolve().expect("valid");
        let expected = 169.5 * 60.0 * gamma(1.0 + 1.0 / 0.615);
        assert!((l.mean() - expected).abs() < 1e-6);
        assert!((l.mean() / 60.0 - 247.1).abs() < 0.1, "{}", l.mean() / 60.0);
    }

    /// The forward recurrence time has mean E[X²] / (2 E[X]).
    #[test]
    fn residual_times_have_the_renewal_mean() {
        let cases = [
            // E[X²]/(2E[X]) = mean for the exponential.
            (spec(Dist::Exponential, Some(100.0), None, None).resolve().unwrap(), 100.0),
            // Weibull: λ Γ(1 + 2/k) / (2 Γ(1 + 1/k)).
            (
                spec(Dist::Weibull, None, Some(100.0), Some(1.5)).resolve().unwrap(),
                100.0 * gamma(1.0 + 2.0 / 1.5) / (2.0 * gamma(1.0 + 1.0 / 1.5)),
            ),
            // Lomax(α, β): E[X²] = 2β²/((α-1)(α-2)), so the residual mean is β/(α-2).
            (spec(Dist::Pareto, None, Some(100.0), Some(4.0)).resolve().unwrap(), 50.0),
            // Lognormal: E[X²]/(2E[X]) = exp(μ + 3σ²/2) / 2.
            (
                spec(Dist::Lognormal, None, Some(100.0), Some(0.5)).resolve().unwrap(),
                100.0 * (1.5f64 * 0.25).exp() / 2.0,
            ),
        ];
        for (l, expected) in cases {
            let m = sample_mean(&l, 400_000, true);
            assert!((m / expected - 1.0).abs() < 0.02, "{l:?}: {m} against {expected}");
        }
    }

    #[test]
    fn bad_tables_name_the_key() {
        assert_eq!(spec(Dist::Weibull, Some(1.0), None, None).resolve().unwrap_err().0, "shape");
        assert_eq!(spec(Dist::Weibull, Some(1.0), Some(1.0), Some(1.0)).resolve().unwrap_err().0, "scale");
        assert_eq!(spec(Dist::Exponential, None, None, None).resolve().unwrap_err().0, "mean");
        assert_eq!(spec(Dist::Exponential, Some(1.0), None, Some(2.0)).resolve().unwrap_err().0, "shape");
        assert_eq!(spec(Dist::Pareto, Some(1.0), None, Some(0.9)).resolve().unwrap_err().0, "shape");
        assert!(spec(Dist::Pareto, None, Some(1.0), Some(0.9)).resolve().is_ok());
    }
}
