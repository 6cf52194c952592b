//! Scripted faults, `[[fault]]`: at a time, crash some nodes (a fraction chosen at
//! random or by degree, a list, or a role the protocol declares), optionally until
//! they recover; split the network into groups that cannot reach each other; or
//! lose a fraction of all messages for a while.

use serde::Deserialize;

use crate::base::{NodeId, SimTime};

/// One `[[fault]]` entry as written.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// When the fault strikes.
    pub at: SimTime,
    /// Nodes that crash.
    #[serde(default)]
    pub crash: Option<CrashSpec>,
    /// When crashed nodes come back up (with `crash`); never, if absent.
    #[serde(default)]
    pub recover: Option<SimTime>,
    /// The network splits into groups.
    #[serde(default)]
    pub partition: Option<PartitionSpec>,
    /// Messages are lost with a probability.
    #[serde(default)]
    pub loss: Option<LossSpec>,
}

/// `fault.crash`: which nodes crash.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CrashSpec {
    /// This fraction of the nodes up at that moment.
    #[serde(default)]
    pub fraction: Option<f64>,
    /// How the fraction is chosen.
    #[serde(default)]
    pub choose: Choose,
    /// Exactly these nodes.
    #[serde(default)]
    pub nodes: Option<Vec<u32>>,
    /// The nodes holding a role the protocol declares (the index, the root...).
    #[serde(default)]
    pub role: Option<String>,
}

/// `fault.crash.choose`.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Choose {
    /// Uniformly among the nodes up.
    #[default]
    Random,
    /// The best-connected nodes up first (a targeted attack); ties by node number.
    Degree,
}

/// `fault.partition`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PartitionSpec {
    /// Into how many groups the nodes are split, each node to one drawn at random.
    pub groups: u32,
    /// When the groups can reach each other again; never, if absent.
    #[serde(default)]
    pub until: Option<SimTime>,
}

/// `fault.loss`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LossSpec {
    /// The probability that a message is lost, in place of `network.loss`.
    pub value: f64,
    /// When the loss ends; never, if absent.
    #[serde(default)]
    pub until: Option<SimTime>,
}

/// A checked fault.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// When it strikes.
    pub at: SimTime,
    /// What it does.
    pub action: Action,
}

/// What a fault does.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Crash these nodes, and bring them back at `recover`.
    Crash {
        /// Who crashes.
        victims: Victims,
        /// When they come back.
        recover: Option<SimTime>,
    },
    /// Lose every message between nodes of different groups until `until`.
    Partition {
        /// How many groups.
        groups: u32,
        /// When the split heals.
        until: Option<SimTime>,
    },
    /// Lose messages with probability `value` until `until`.
    Loss {
        /// The loss probability while it lasts.
        value: f64,
        /// When it ends.
        until: Option<SimTime>,
    },
}

/// The nodes a crash fault takes down.
#[derive(Clone, Debug, PartialEq)]
pub enum Victims {
    /// A fraction of the nodes up.
    Fraction {
        /// Of the nodes up, rounded to the nearest count.
        fraction: f64,
        /// How they are picked.
        choose: Choose,
    },
    /// These nodes.
    Nodes(Vec<NodeId>),
    /// The nodes of a role the protocol declares.
    Role(String),
}

/// A mistake in a `[[fault]]` entry: the key under `fault[i]` and what was expected.
pub type FaultError = (String, String);

impl FaultSpec {
    /// Checks the entry on `nodes` nodes, for `protocol` declaring `roles`.
    pub fn resolve(&self, nodes: usize, roles: &[&str], protocol: &str) -> Result<Fault, FaultError> {
        let err = |k: &str, m: String| Err((k.to_string(), m));
        let given = [self.crash.is_some(), self.partition.is_some(), self.loss.is_some()];
        if given.iter().filter(|&&g| g).count() != 1 {
            return err(
                "crash",
                "expected exactly one of crash = {...}, partition = {...} or loss = {...} in each [[fault]]".into(),
            );
        }
        let after = |key: &str, t: Option<SimTime>| -> Result<Option<SimTime>, FaultError> {
            match t {
                Some(t) if t <= self.at => {
                    Err((key.to_string(), format!("{t} is not after at = {}; expected a later time", self.at)))
                }
                t => Ok(t),
            }
        };
        if self.recover.is_some() && self.crash.is_none() {
            return err("recover", "recover belongs to a crash; partition and loss end with until".into());
        }
        let action = if let Some(c) = &self.crash {
            let chosen = [c.fraction.is_some(), c.nodes.is_some(), c.role.is_some()];
            if chosen.iter().filter(|&&g| g).count() != 1 {
                return err("crash", "expected exactly one of fraction, nodes or role".into());
            }
            if c.choose != Choose::Random && c.fraction.is_none() {
                return err("crash.choose", "choose applies to a fraction; remove it or give fraction".into());
            }
            let victims = if let Some(f) = c.fraction {
                if !(f > 0.0 && f <= 1.0) {
                    return err("crash.fraction", format!("{f} is out of range; expected 0 < fraction ≤ 1"));
                }
                Victims::Fraction { fraction: f, choose: c.choose }
            } else if let Some(list) = &c.nodes {
                if list.is_empty() {
                    return err("crash.nodes", "expected at least one node".into());
                }
                if let Some(&v) = list.iter().find(|&&v| v as usize >= nodes) {
                    return err("crash.nodes", format!("node {v} does not exist; expected 0 ≤ node < {nodes}"));
                }
                Victims::Nodes(list.iter().map(|&v| NodeId(v)).collect())
            } else {
                let role = c.role.clone().unwrap_or_default();
                if !roles.contains(&role.as_str()) {
                    let known = if roles.is_empty() {
                        format!("{protocol} declares no roles; crash nodes by fraction or nodes instead")
                    } else {
                        format!("expected one of {protocol}'s roles: {}", roles.join(", "))
                    };
                    return err("crash.role", format!("\"{role}\" is not a role; {known}"));
                }
                Victims::Role(role)
            };
            Action::Crash { victims, recover: after("recover", self.recover)? }
        } else if let Some(p) = &self.partition {
            if !(2..=1000).contains(&p.groups) || p.groups as usize > nodes {
                return err(
                    "partition.groups",
                    format!("{} is out of range; expected 2 ≤ groups ≤ min(1000, nodes)", p.groups),
                );
            }
            Action::Partition { groups: p.groups, until: after("partition.until", p.until)? }
        } else {
            let l = self.loss.as_ref().expect("one of the three is given");
            if !(0.0..=1.0).contains(&l.value) {
                return err("loss.value", format!("{} is out of range; expected a probability 0 ≤ value ≤ 1", l.value));
            }
            Action::Loss { value: l.value, until: after("loss.until", l.until)? }
        };
        Ok(Fault { at: self.at, action })
    }
}
