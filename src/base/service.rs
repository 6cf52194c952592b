//! How long a node takes to serve one message: a constant or an exponential
//! duration, written in a scenario as `"1ms"` or `{ dist = "exponential", mean = "1ms" }`.

use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1};
use serde::{Deserialize, Deserializer};

use super::time::{SimTime, parse_duration};

/// How long a node takes to serve one message.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ServiceTime {
    /// Always this long.
    Constant(SimTime),
    /// Exponentially distributed with this mean.
    Exponential {
        /// The mean service time.
        mean: SimTime,
    },
}

impl Default for ServiceTime {
    fn default() -> Self {
        ServiceTime::Constant(SimTime::ZERO)
    }
}

const SERVICE_EXPECTED: &str = "a duration such as \"1ms\", or { dist = \"exponential\", mean = \"1ms\" }, or { dist = \"constant\", value = \"1ms\" }";

impl<'de> Deserialize<'de> for ServiceTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = toml::Value::deserialize(d)?;
        let dur = |v: Option<&toml::Value>, key: &str| -> Result<SimTime, D::Error> {
            match v {
                Some(toml::Value::String(s)) => parse_duration(s).map_err(|e| D::Error::custom(format!("{key}: {e}"))),
                _ => Err(D::Error::custom(format!("{key} is missing or not a string; expected {SERVICE_EXPECTED}"))),
            }
        };
        match &v {
            toml::Value::String(s) => parse_duration(s).map(ServiceTime::Constant).map_err(D::Error::custom),
            // As for every duration, a bare 0 needs no unit.
            toml::Value::Integer(0) => Ok(ServiceTime::Constant(SimTime::ZERO)),
            toml::Value::Table(t) => {
                if let Some(k) = t.keys().find(|k| !["dist", "mean", "value"].contains(&k.as_str())) {
                    return Err(D::Error::custom(format!("unknown key `{k}`; expected {SERVICE_EXPECTED}")));
                }
                match t.get("dist").and_then(|d| d.as_str()) {
                    Some("exponential") => Ok(ServiceTime::Exponential { mean: dur(t.get("mean"), "mean")? }),
                    Some("constant") => Ok(ServiceTime::Constant(dur(t.get("value"), "value")?)),
                    _ => Err(D::Error::custom(format!(
                        "dist must be \"exponential\" or \"constant\"; expected {SERVICE_EXPECTED}"
                    ))),
                }
            }
            _ => Err(D::Error::custom(format!("expected {SERVICE_EXPECTED}, found {v}"))),
        }
    }
}

impl ServiceTime {
    /// The mean service time.
    pub fn mean(self) -> SimTime {
        match self {
            ServiceTime::Constant(t) | ServiceTime::Exponential { mean: t } => t,
        }
    }

    /// One service time drawn from `rng` (none is drawn for a constant).
    #[inline]
    pub fn sample(self, rng: &mut ChaCha8Rng) -> SimTime {
        match self {
            ServiceTime::Constant(t) => t,
            ServiceTime::Exponential { mean } => {
                let x: f64 = Exp1.sample(rng);
                SimTime((x * mean.0 as f64).round() as u64)
            }
        }
    }

    /// Whether every message is served at once.
    pub fn is_zero(self) -> bool {
        matches!(self, ServiceTime::Constant(SimTime(0)) | ServiceTime::Exponential { mean: SimTime(0) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_times_in_every_form() {
        #[derive(serde::Deserialize)]
        struct S {
            service_time: ServiceTime,
        }
        let parse = |text: &str| toml::from_str::<S>(text).map(|s| s.service_time).map_err(|e| e.to_string());
        let ms = SimTime::from_millis(1);
        assert_eq!(parse("service_time = \"1ms\""), Ok(ServiceTime::Constant(ms)));
        assert_eq!(parse("service_time = { dist = \"constant\", value = \"1ms\" }"), Ok(ServiceTime::Constant(ms)));
        assert_eq!(
            parse("service_time = { dist = \"exponential\", mean = \"1ms\" }"),
            Ok(ServiceTime::Exponential { mean: ms })
        );
        assert_eq!(parse("service_time = 0"), Ok(ServiceTime::Constant(SimTime::ZERO)));
        for bad in ["service_time = 1", "service_time = \"1\"", "service_time = { dist = \"normal\", mean = \"1ms\" }"]
        {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
