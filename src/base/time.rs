//! Simulated time: integer nanoseconds, parsed from human strings such as `"250ms"`.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// A point in (or a span of) simulated time, in nanoseconds.
///
/// Integer time keeps runs exact and reproducible: no rounding drift, and equal
/// times compare equal so that ties are broken by insertion sequence alone.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct SimTime(pub u64);

impl SimTime {
    /// The start of every run, and a span of no time.
    pub const ZERO: SimTime = SimTime(0);
    /// The last representable time, standing for "never".
    pub const MAX: SimTime = SimTime(u64::MAX);

    /// A time given in nanoseconds, the unit it is kept in.
    pub const fn from_nanos(ns: u64) -> Self {
        SimTime(ns)
    }
    /// A time given in microseconds.
    pub const fn from_micros(us: u64) -> Self {
        SimTime(us * 1_000)
    }
    /// A time given in milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        SimTime(ms * 1_000_000)
    }
    /// A time given in whole seconds; `from_secs_f64` takes fractions.
    pub const fn from_secs(s: u64) -> Self {
        SimTime(s * 1_000_000_000)
    }
    /// Rounds to the nearest nanosecond; negative and NaN inputs become zero.
    pub fn from_secs_f64(s: f64) -> Self {
        let ns = (s * 1e9).round();
        if ns.is_nan() || ns <= 0.0 {
            SimTime(0)
        } else if ns >= u64::MAX as f64 {
            SimTime::MAX
        } else {
            SimTime(ns as u64)
        }
    }
    /// The exact value, in nanoseconds.
    pub const fn nanos(self) -> u64 {
        self.0
    }
    /// The time in seconds as a float, for rates and per-second columns.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
    /// The time in milliseconds as a float, for latency columns.
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
    /// Adds, stopping at `MAX` instead of overflowing.
    pub const fn saturating_add(self, other: SimTime) -> SimTime {
        SimTime(self.0.saturating_add(other.0))
    }
    /// Subtracts, stopping at zero instead of underflowing.
    pub const fn saturating_sub(self, other: SimTime) -> SimTime {
        SimTime(self.0.saturating_sub(other.0))
    }
}

impl Add for SimTime {
    type Output = SimTime;
    /// Saturates: a time past the end of the representable range is simply never reached.
    fn add(self, rhs: SimTime) -> SimTime {
        SimTime(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for SimTime {
    fn add_assign(&mut self, rhs: SimTime) {
        *self = *self + rhs;
    }
}

impl Sub for SimTime {
    type Output = SimTime;
    fn sub(self, rhs: SimTime) -> SimTime {
        SimTime(self.0 - rhs.0)
    }
}

impl fmt::Display for SimTime {
    /// Prints the largest unit that keeps the value exact, e.g. `1500ms`, `2s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0;
        for (unit, size) in [
            ("h", 3_600_000_000_000u64),
            ("min", 60_000_000_000),
            ("s", 1_000_000_000),
            ("ms", 1_000_000),
            ("us", 1_000),
        ] {
            if ns >= size && ns.is_multiple_of(size) {
                return write!(f, "{}{}", ns / size, unit);
            }
        }
        write!(f, "{ns}ns")
    }
}

const UNITS: [(&str, f64); 10] = [
    ("ns", 1.0),
    ("us", 1e3),
    ("µs", 1e3),
    ("ms", 1e6),
    ("s", 1e9),
    ("sec", 1e9),
    ("min", 60e9),
    ("m", 60e9),
    ("h", 3600e9),
    ("d", 86_400e9),
];

/// What a duration string must look like; repeated in every error message.
pub const DURATION_EXPECTED: &str =
    "a duration such as \"250ms\", \"10s\", \"1.5min\" or \"2h\" (units ns, us, ms, s, min, h, d)";

/// Parses `"250ms"`, `"10s"`, `"1.5min"`, `"2h"`; the number must be finite and ≥ 0.
pub fn parse_duration(text: &str) -> Result<SimTime, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_' || c == 'e' || c == 'E' || c == '+'))
        .unwrap_or(t.len());
    // "1e3s": the exponent marker must not swallow a unit letter; "e" alone is not a unit.
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    let scale = UNITS.iter().find(|(u, _)| *u == unit).map(|(_, s)| *s);
    let value: Option<f64> = num.replace('_', "").parse().ok();
    match (value, scale) {
        (Some(v), Some(s)) if v.is_finite() && v >= 0.0 && v * s < u64::MAX as f64 => {
            Ok(SimTime((v * s).round() as u64))
        }
        // Simulated time is u64 nanoseconds: about 584 years.
        (Some(v), Some(_)) if v.is_finite() && v >= 0.0 => {
            Err(format!("\"{text}\" is too long; simulated time ends at 2^64 ns, about 584 years (213,503 days)"))
        }
        _ => Err(format!("\"{text}\" is not {DURATION_EXPECTED}")),
    }
}

impl<'de> Deserialize<'de> for SimTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SimTime;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(DURATION_EXPECTED)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<SimTime, E> {
                parse_duration(s).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SimTime, E> {
                if v == 0 {
                    Ok(SimTime::ZERO)
                } else {
                    Err(E::custom(format!("{v} has no unit; expected {DURATION_EXPECTED}")))
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SimTime, E> {
                self.visit_i64(v.min(i64::MAX as u64) as i64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<SimTime, E> {
                Err(E::custom(format!("{v} has no unit; expected {DURATION_EXPECTED}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// An event rate in events per simulated second, written `"20/s"`, `"3/ms"`, `"100/min"`.
#[derive(Clone, Copy, PartialEq, PartialOrd, Debug, Default)]
pub struct Rate(pub f64);

/// What a rate must look like; repeated in every error message.
pub const RATE_EXPECTED: &str = "a rate such as \"20/s\", \"0.5/ms\" or \"300/min\" (a non-negative number per unit of time; a bare number is per second)";

/// Parses `"20/s"`, `"0.5/ms"`, `"300/min"` (or a bare number, taken per second).
pub fn parse_rate(text: &str) -> Result<Rate, String> {
    let t = text.trim();
    let bad = || format!("\"{text}\" is not {RATE_EXPECTED}");
    let (num, per) = match t.split_once('/') {
        Some((n, u)) => {
            let u = u.trim();
            let unit =
                if u.chars().next().is_some_and(|c| c.is_ascii_digit()) { u.to_string() } else { format!("1{u}") };
            (n.trim(), parse_duration(&unit).map_err(|_| bad())?)
        }
        None => (t, SimTime::from_secs(1)),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    if !n.is_finite() || n < 0.0 || per.0 == 0 {
        return Err(bad());
    }
    Ok(Rate(n / per.as_secs_f64()))
}

impl Rate {
    /// The rate in events per simulated second.
    pub fn per_second(self) -> f64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Rate;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(RATE_EXPECTED)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Rate, E> {
                parse_rate(s).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Rate, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Rate, E> {
                self.visit_f64(v as f64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Rate, E> {
                if v.is_finite() && v >= 0.0 {
                    Ok(Rate(v))
                } else {
                    Err(E::custom(format!("{v} is not {RATE_EXPECTED}")))
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration("250ms"), Ok(SimTime::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(SimTime::from_secs(10)));
        assert_eq!(parse_duration("1.5min"), Ok(SimTime::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(SimTime::from_secs(7200)));
        assert_eq!(parse_duration("7ns"), Ok(SimTime(7)));
        assert_eq!(parse_duration("3us"), Ok(SimTime(3000)));
        assert_eq!(parse_duration("1_000ms"), Ok(SimTime::from_secs(1)));
        for bad in ["", "10", "ms", "-1s", "1x", "1e400s", "NaNs", "infs", "1.2.3s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should not parse");
        }
        let long = parse_duration("300000d").unwrap_err();
        assert!(long.contains("too long") && long.contains("584 years"), "{long}");
    }

    #[test]
    fn rates_parse_per_unit() {
        assert_eq!(parse_rate("20/s"), Ok(Rate(20.0)));
        assert_eq!(parse_rate("0.5/ms"), Ok(Rate(500.0)));
        assert_eq!(parse_rate("120/min"), Ok(Rate(2.0)));
        assert_eq!(parse_rate("10/100ms"), Ok(Rate(100.0)));
        assert_eq!(parse_rate("7"), Ok(Rate(7.0)));
        for bad in ["", "/s", "x/s", "-1/s", "1/0s", "1/parsec"] {
            assert!(parse_rate(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn display_uses_the_largest_exact_unit() {
        assert_eq!(SimTime::from_millis(1500).to_string(), "1500ms");
        assert_eq!(SimTime::from_secs(120).to_string(), "2min");
        assert_eq!(SimTime(5).to_string(), "5ns");
    }
}
