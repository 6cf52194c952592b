//! Heterogeneous nodes (`[network] uplink` and `[[network.classes]]`): classes of
//! nodes, such as 10% servers and 90% desktops, each with its own service time,
//! upstream bandwidth and whether it churns. A class takes the nodes of a role the
//! protocol declares, a list of nodes, or a share of the rest drawn at random;
//! the nodes no class takes keep the `[network]` settings. An uplink is a fixed
//! bandwidth or one drawn per node from a distribution. The engine assigns the
//! classes at the start of a run ([`assign`]) and serialises each sized message at
//! its sender's uplink before it travels.

use std::fmt;

use rand::seq::SliceRandom;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use super::lifetime::{Dist, Lifetime, LifetimeSpec};
use crate::base::rng::{Stream, stream};
use crate::base::{NodeId, ServiceTime, SimTime};

/// What an uplink must look like; repeated in its error messages.
pub const UPLINK_EXPECTED: &str = "a bandwidth such as \"1Mbit/s\", \"512kbit/s\", \"10Gbit/s\" or \"2MB/s\" (bytes), \"unlimited\", or a distribution over the nodes such as { dist = \"lognormal\", mean = \"1Mbit/s\", shape = 1.0 }";

/// A node's upstream bandwidth, or a distribution nodes draw theirs from.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Uplink {
    /// Sending takes no time: the default.
    #[default]
    Unlimited,
    /// This many bits per second.
    Fixed(f64),
    /// Per node: `base` bits per second times a draw of `factor` (whose mean, or
    /// scale when the file gives a scale, is 1).
    Drawn {
        /// The family, with mean (or scale) one.
        factor: Lifetime,
        /// The mean or scale the file gave, in bits per second.
        base: f64,
    },
}

/// Parses a bandwidth: a number and a unit of bits (`bit/s`, `kbit/s`, `Mbit/s`,
/// `Gbit/s`, or `bps`, `kbps`, `Mbps`, `Gbps`) or bytes (`B/s`, `kB/s`, `MB/s`,
/// `GB/s`) per second, decimal prefixes; gives bits per second.
pub fn parse_bandwidth(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let bad = || format!("\"{text}\" is not {UPLINK_EXPECTED}");
    let split =
        t.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == '-' || c == '+')).ok_or_else(bad)?;
    let (num, unit) = t.split_at(split);
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    let per_unit = match unit.trim() {
        "bit/s" | "bps" => 1.0,
        "kbit/s" | "kbps" | "Kbit/s" | "Kbps" => 1e3,
        "Mbit/s" | "Mbps" => 1e6,
        "Gbit/s" | "Gbps" => 1e9,
        "B/s" => 8.0,
        "kB/s" | "KB/s" => 8e3,
        "MB/s" => 8e6,
        "GB/s" => 8e9,
        _ => return Err(bad()),
    };
    let bits = n * per_unit;
    if !bits.is_finite() || bits <= 0.0 {
        return Err(format!("\"{text}\" is not above zero; expected {UPLINK_EXPECTED}"));
    }
    Ok(bits)
}

impl<'de> Deserialize<'de> for Uplink {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use de::Error;
        let v = toml::Value::deserialize(d)?;
        match &v {
            toml::Value::String(s) if s.trim() == "unlimited" => Ok(Uplink::Unlimited),
            toml::Value::String(s) => parse_bandwidth(s).map(Uplink::Fixed).map_err(D::Error::custom),
            toml::Value::Table(t) => {
                if let Some(k) = t.keys().find(|k| !["dist", "mean", "scale", "shape"].contains(&k.as_str())) {
                    return Err(D::Error::custom(format!("unknown key `{k}`; expected {UPLINK_EXPECTED}")));
                }
                let dist: Dist = match t.get("dist").and_then(|d| d.as_str()) {
                    Some("exponential") => Dist::Exponential,
                    Some("weibull") => Dist::Weibull,
                    Some("pareto") => Dist::Pareto,
                    Some("lognormal") => Dist::Lognormal,
                    _ => {
                        return Err(D::Error::custom(format!(
                            "dist must be \"exponential\", \"weibull\", \"pareto\" or \"lognormal\"; expected {UPLINK_EXPECTED}"
                        )));
                    }
                };
                let bandwidth = |key: &str| -> Result<Option<f64>, D::Error> {
                    match t.get(key) {
                        None => Ok(None),
                        Some(toml::Value::String(s)) => {
                            parse_bandwidth(s).map(Some).map_err(|e| D::Error::custom(format!("{key}: {e}")))
                        }
                        Some(other) => Err(D::Error::custom(format!("{key}: {other} is not {UPLINK_EXPECTED}"))),
                    }
                };
                let shape = match t.get("shape") {
                    None => None,
                    Some(toml::Value::Float(x)) => Some(*x),
                    Some(toml::Value::Integer(i)) => Some(*i as f64),
                    Some(other) => return Err(D::Error::custom(format!("shape: {other} is not a number"))),
                };
                // The family with mean (or scale) one second, stretched by the bandwidth.
                let (mean, scale) = (bandwidth("mean")?, bandwidth("scale")?);
                let one = Some(SimTime::from_secs(1));
                let spec = LifetimeSpec { dist, mean: mean.and(one), scale: scale.and(one), shape };
                let factor = spec.resolve().map_err(|(k, m)| D::Error::custom(format!("{k}: {m}")))?;
                Ok(Uplink::Drawn { factor, base: mean.or(scale).unwrap_or(1.0) })
            }
            _ => Err(D::Error::custom(format!("expected {UPLINK_EXPECTED}, found {v}"))),
        }
    }
}

impl Serialize for Uplink {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl fmt::Display for Uplink {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Uplink::Unlimited => f.write_str("unlimited"),
            Uplink::Fixed(bits) => write!(f, "{}", bits_text(*bits)),
            Uplink::Drawn { factor, base } => write!(f, "{} × ({})", bits_text(*base), factor.describe()),
        }
    }
}

fn bits_text(bits: f64) -> String {
    match bits {
        b if b >= 1e9 => format!("{}Gbit/s", b / 1e9),
        b if b >= 1e6 => format!("{}Mbit/s", b / 1e6),
        b if b >= 1e3 => format!("{}kbit/s", b / 1e3),
        b => format!("{b}bit/s"),
    }
}

impl Uplink {
    /// One node's uplink as picoseconds per byte (0 for unlimited), drawing from
    /// `rng` if it is a distribution. At least one bit per second.
    fn draw(self, rng: &mut rand_chacha::ChaCha8Rng) -> u64 {
        let bits = match self {
            Uplink::Unlimited => return 0,
            Uplink::Fixed(b) => b,
            Uplink::Drawn { factor, base } => base * factor.sample(rng),
        };
        (8e12 / bits.max(1.0)).round().max(1.0) as u64
    }
}

/// The roles a class takes: one name or a list of names.
#[derive(Clone, Debug, PartialEq)]
pub enum Roles {
    /// `role = "index"`.
    One(String),
    /// `role = ["index", "root", "giis-1"]`.
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for Roles {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use de::Error;
        const EXPECTED: &str = "a role name such as \"index\", or a list of them such as [\"index\", \"root\"]";
        match toml::Value::deserialize(d)? {
            toml::Value::String(s) => Ok(Roles::One(s)),
            toml::Value::Array(a) => a
                .into_iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s),
                    other => Err(D::Error::custom(format!("{other} is not a role name; expected {EXPECTED}"))),
                })
                .collect::<Result<_, _>>()
                .map(Roles::Many),
            other => Err(D::Error::custom(format!("{other} is not {EXPECTED}"))),
        }
    }
}

impl Roles {
    /// The role names.
    pub fn names(&self) -> &[String] {
        match self {
            Roles::One(r) => std::slice::from_ref(r),
            Roles::Many(v) => v,
        }
    }
}

/// One `[[network.classes]]` entry.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClassSpec {
    /// How results and messages name it.
    pub name: String,
    /// The fraction of the nodes that no `role` or `nodes` class takes.
    #[serde(default)]
    pub share: Option<f64>,
    /// These nodes.
    #[serde(default)]
    pub nodes: Option<Vec<u32>>,
    /// The nodes holding these roles when the run starts; a role the run's
    /// protocol does not declare takes none.
    #[serde(default)]
    pub role: Option<Roles>,
    /// Its nodes' service time; unset, `network.service_time`.
    #[serde(default)]
    pub service_time: Option<ServiceTime>,
    /// Its nodes' upstream bandwidth; unset, `network.uplink`.
    #[serde(default)]
    pub uplink: Option<Uplink>,
    /// `false`: its nodes never leave under `[churn]` (scripted faults still
    /// crash them).
    #[serde(default = "yes")]
    pub churn: bool,
}

fn yes() -> bool {
    true
}

/// The node classes of a run, checked; the default has none, and every node
/// keeps the `[network]` settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Classes {
    /// `network.service_time`: the service of nodes no class takes.
    pub service: ServiceTime,
    /// `network.uplink`: the uplink of nodes no class takes.
    pub uplink: Uplink,
    /// The classes in file order.
    pub list: Vec<ClassSpec>,
}

/// A mistake in a class entry: the key under `network` and what was expected.
pub type ClassError = (String, String);

/// The most classes a scenario may declare (a node's class is one byte, and the
/// nodes no class takes are class 0).
pub const MAX_CLASSES: usize = 255;

impl Classes {
    /// Checks the entries of a network of `nodes` nodes; `roles` are the roles any
    /// protocol declares.
    pub fn check(
        service: ServiceTime,
        uplink: Uplink,
        list: &[ClassSpec],
        nodes: usize,
        roles: &[&str],
    ) -> Result<Classes, ClassError> {
        if list.len() > MAX_CLASSES {
            return Err(("classes".into(), format!("{} classes; expected at most {MAX_CLASSES}", list.len())));
        }
        let mut shares = 0.0;
        let mut listed = vec![None::<usize>; nodes];
        for (i, c) in list.iter().enumerate() {
            let key = |k: &str| format!("classes[{i}].{k}");
            if c.name.trim().is_empty() || c.name == "default" {
                return Err((
                    key("name"),
                    format!(
                        "\"{}\" cannot name a class; expected a name other than \"default\" (the nodes no class takes)",
                        c.name
                    ),
                ));
            }
            if let Some(j) = list[..i].iter().position(|o| o.name == c.name) {
                return Err((
                    key("name"),
                    format!("\"{}\" already names classes[{j}]; expected a name of its own", c.name),
                ));
            }
            let chosen = [c.share.is_some(), c.nodes.is_some(), c.role.is_some()];
            if chosen.iter().filter(|&&b| b).count() != 1 {
                return Err((format!("classes[{i}]"), "expected exactly one of share, nodes or role".into()));
            }
            if let Some(s) = c.share {
                if !(s.is_finite() && s > 0.0 && s <= 1.0) {
                    return Err((key("share"), format!("{s} is out of range; expected 0 < share ≤ 1")));
                }
                shares += s;
                if shares > 1.0 + 1e-9 {
                    return Err((
                        key("share"),
                        format!(
                            "the shares add up to {shares}; expected at most 1 (the nodes left over keep the [network] settings)"
                        ),
                    ));
                }
            }
            if let Some(vs) = &c.nodes {
                if vs.is_empty() {
                    return Err((key("nodes"), "expected at least one node".into()));
                }
                for &v in vs {
                    let Some(slot) = listed.get_mut(v as usize) else {
                        return Err((
                            key("nodes"),
                            format!("node {v} is out of range; expected nodes 0 to {}", nodes.saturating_sub(1)),
                        ));
                    };
                    if let Some(j) = *slot {
                        return Err((
                            key("nodes"),
                            format!("node {v} is listed in classes[{j}] already; expected each node in one class"),
                        ));
                    }
                    *slot = Some(i);
                }
            }
            if let Some(r) = &c.role {
                if r.names().is_empty() {
                    return Err((key("role"), "expected at least one role".into()));
                }
                if let Some(bad) = r.names().iter().find(|n| !roles.contains(&n.as_str())) {
                    return Err((
                        key("role"),
                        format!("\"{bad}\" is not a role; expected one of {}", roles.join(", ")),
                    ));
                }
            }
        }
        Ok(Classes { service, uplink, list: list.to_vec() })
    }

    /// Whether some node's service time is above zero.
    pub fn any_service(&self) -> bool {
        !self.service.is_zero() || self.list.iter().any(|c| c.service_time.is_some_and(|s| !s.is_zero()))
    }
}

/// The classes of one run's nodes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Assigned {
    /// Per node, its class: 0 for none, i + 1 for `list[i]`; empty without classes.
    pub class_of: Vec<u8>,
    /// Per class (0 for none), its service time.
    pub service: Vec<ServiceTime>,
    /// Per class, whether its nodes churn.
    pub churns: Vec<bool>,
    /// Per node, its uplink in picoseconds per byte (0: unlimited); empty when
    /// every uplink is unlimited.
    pub uplink_ps: Vec<u64>,
}

/// Assigns the classes to `nodes` nodes: the role classes first, in file order
/// (a node holding roles of two classes stays with the first), then the listed
/// nodes, then the share classes, by largest remainder, from the rest in an
/// order drawn from the run's `Classes` stream; then each node's uplink is drawn
/// in node order. `role` gives the nodes of a role the protocol declares.
pub fn assign(classes: &Classes, nodes: usize, role: impl Fn(&str) -> Vec<NodeId>, seed: u64) -> Assigned {
    let mut rng = stream(seed, Stream::Classes);
    let mut out = Assigned {
        service: std::iter::once(classes.service)
            .chain(classes.list.iter().map(|c| c.service_time.unwrap_or(classes.service)))
            .collect(),
        churns: std::iter::once(true).chain(classes.list.iter().map(|c| c.churn)).collect(),
        ..Assigned::default()
    };
    if !classes.list.is_empty() {
        let mut of = vec![0u8; nodes];
        for (i, c) in classes.list.iter().enumerate() {
            for name in c.role.iter().flat_map(|r| r.names()) {
                for v in role(name) {
                    if v.index() < nodes && of[v.index()] == 0 {
                        of[v.index()] = i as u8 + 1;
                    }
                }
            }
        }
        for (i, c) in classes.list.iter().enumerate() {
            for &v in c.nodes.iter().flatten() {
                if (v as usize) < nodes && of[v as usize] == 0 {
                    of[v as usize] = i as u8 + 1;
                }
            }
        }
        let mut rest: Vec<u32> = (0..nodes as u32).filter(|&v| of[v as usize] == 0).collect();
        let shares: Vec<(usize, f64)> =
            classes.list.iter().enumerate().filter_map(|(i, c)| c.share.map(|s| (i, s))).collect();
        if !shares.is_empty() {
            rest.shuffle(&mut rng);
            let counts = largest_remainder(&shares.iter().map(|&(_, s)| s).collect::<Vec<_>>(), rest.len());
            let mut next = rest.iter();
            for (&(i, _), n) in shares.iter().zip(counts) {
                for &v in next.by_ref().take(n) {
                    of[v as usize] = i as u8 + 1;
                }
            }
        }
        out.class_of = of;
    }
    let uplink_of =
        |k: u8| if k == 0 { classes.uplink } else { classes.list[k as usize - 1].uplink.unwrap_or(classes.uplink) };
    let limited = std::iter::once(classes.uplink)
        .chain(classes.list.iter().map(|c| c.uplink.unwrap_or(classes.uplink)))
        .any(|u| u != Uplink::Unlimited);
    if limited {
        out.uplink_ps =
            (0..nodes).map(|v| uplink_of(out.class_of.get(v).copied().unwrap_or(0)).draw(&mut rng)).collect();
    }
    out
}

/// Whole counts proportional to `shares` (fractions of `total`, adding up to at
/// most 1), rounded by largest remainder so that, when the shares add up to 1,
/// the counts add up to `total`; ties go to the earlier share.
fn largest_remainder(shares: &[f64], total: usize) -> Vec<usize> {
    let exact: Vec<f64> = shares.iter().map(|s| s * total as f64).collect();
    let mut counts: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    let target = (shares.iter().sum::<f64>() * total as f64).round() as usize;
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b)));
    let mut left = target.min(total).saturating_sub(counts.iter().sum());
    for i in order {
        if left == 0 {
            break;
        }
        counts[i] += 1;
        left -= 1;
    }
    counts
}

impl Assigned {
    /// Whether `v` churns: it is in no class, or in one that does.
    #[inline]
    pub fn churns(&self, v: NodeId) -> bool {
        match self.class_of.get(v.index()) {
            None => true,
            Some(&k) => self.churns[k as usize],
        }
    }

    /// Bytes it holds.
    pub fn bytes(&self) -> usize {
        self.class_of.len() + self.uplink_ps.len() * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(text: &str) -> Result<ClassSpec, String> {
        toml::from_str::<ClassSpec>(text).map_err(|e| e.to_string())
    }

    #[test]
    fn bandwidths_in_bits_and_bytes() {
        assert_eq!(parse_bandwidth("1Mbit/s"), Ok(1e6));
        assert_eq!(parse_bandwidth("512 kbit/s"), Ok(512e3));
        assert_eq!(parse_bandwidth("10Gbps"), Ok(1e10));
        assert_eq!(parse_bandwidth("2MB/s"), Ok(16e6));
        for bad in ["1", "1Mbit", "fast", "0Mbit/s", "-1Mbit/s", "1mbit/s"] {
            assert!(parse_bandwidth(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_uplink_is_a_bandwidth_unlimited_or_a_distribution() {
        let c = class("name = \"a\"\nshare = 0.5\nuplink = \"unlimited\"").expect("parses");
        assert_eq!(c.uplink, Some(Uplink::Unlimited));
        let c = class("name = \"a\"\nshare = 0.5\nuplink = { dist = \"lognormal\", mean = \"1Mbit/s\", shape = 1.0 }")
            .expect("parses");
        let Some(Uplink::Drawn { factor, base }) = c.uplink else { panic!("{:?}", c.uplink) };
        assert_eq!(base, 1e6);
        assert!((factor.mean() - 1.0).abs() < 1e-12, "{}", factor.mean());
        let e = class("name = \"a\"\nshare = 0.5\nuplink = { dist = \"weibull\", mean = \"1Mbit/s\" }").unwrap_err();
        assert!(e.contains("shape"), "{e}");
        assert!(class("name = \"a\"\nshare = 0.5\nspeed = 2").is_err());
    }

    #[test]
    fn drawn_uplinks_have_the_mean_they_were_given() {
        let c = class("name = \"a\"\nshare = 1.0\nuplink = { dist = \"pareto\", mean = \"1Mbit/s\", shape = 3.0 }")
            .expect("parses");
        let classes = Classes::check(ServiceTime::default(), Uplink::Unlimited, &[c], 200_000, &[]).expect("valid");
        let a = assign(&classes, 200_000, |_| Vec::new(), 3);
        let mean_bits = a.uplink_ps.iter().map(|&ps| 8e12 / ps as f64).sum::<f64>() / a.uplink_ps.len() as f64;
        // Shape 3: the variance is finite; the standard error of the mean is about 0.4%.
        assert!((mean_bits / 1e6 - 1.0).abs() < 0.02, "mean uplink {mean_bits} bit/s");
    }

    #[test]
    fn roles_then_lists_then_shares_of_the_rest() {
        let list = vec![
            class("name = \"index\"\nrole = \"index\"\nchurn = false").expect("parses"),
            class("name = \"pinned\"\nnodes = [0, 1, 2]").expect("parses"),
            class("name = \"server\"\nshare = 0.1\nservice_time = \"0.1ms\"").expect("parses"),
            class("name = \"desktop\"\nshare = 0.9").expect("parses"),
        ];
        let classes =
            Classes::check(ServiceTime::default(), Uplink::Unlimited, &list, 1000, &["index"]).expect("valid");
        let a = assign(&classes, 1000, |r| if r == "index" { vec![NodeId(1)] } else { Vec::new() }, 9);
        // Node 1 holds the index, so the list keeps only 0 and 2; 997 are left: 100 and 897.
        let count = |k: u8| a.class_of.iter().filter(|&&c| c == k).count();
        assert_eq!(a.class_of[1], 1);
        assert_eq!((a.class_of[0], a.class_of[2]), (2, 2));
        assert_eq!([count(0), count(1), count(2), count(3), count(4)], [0, 1, 2, 100, 897]);
        assert_eq!(a.churns, vec![true, false, true, true, true]);
        assert_eq!(a.service[3], ServiceTime::Constant(SimTime::from_micros(100)));
        assert!(a.uplink_ps.is_empty(), "every uplink is unlimited");
        assert_eq!(a, assign(&classes, 1000, |r| if r == "index" { vec![NodeId(1)] } else { Vec::new() }, 9));
    }

    #[test]
    fn mistakes_name_their_key() {
        let check = |texts: &[&str]| {
            let list: Vec<ClassSpec> = texts.iter().map(|t| class(t).expect("parses")).collect();
            Classes::check(ServiceTime::default(), Uplink::Unlimited, &list, 10, &["index"]).map(|_| ()).unwrap_err()
        };
        assert_eq!(check(&["name = \"a\"\nshare = 0.6", "name = \"b\"\nshare = 0.6"]).0, "classes[1].share");
        assert_eq!(check(&["name = \"a\"\nshare = 0.6", "name = \"a\"\nshare = 0.1"]).0, "classes[1].name");
        assert_eq!(check(&["name = \"a\"\nnodes = [3, 10]"]).0, "classes[0].nodes");
        assert_eq!(check(&["name = \"a\"\nnodes = [3]", "name = \"b\"\nnodes = [3]"]).0, "classes[1].nodes");
        assert_eq!(check(&["name = \"a\"\nrole = [\"index\", \"idx\"]"]).0, "classes[0].role");
        assert_eq!(check(&["name = \"a\"\nshare = 0.5\nnodes = [1]"]).0, "classes[0]");
        assert_eq!(check(&["name = \"default\"\nshare = 0.5"]).0, "classes[0].name");
    }

    #[test]
    fn largest_remainder_adds_up() {
        assert_eq!(largest_remainder(&[0.1, 0.9], 997), vec![100, 897]);
        assert_eq!(largest_remainder(&[1.0 / 3.0; 3], 10), vec![4, 3, 3]);
        assert_eq!(largest_remainder(&[0.25], 10), vec![3]);
    }
}
