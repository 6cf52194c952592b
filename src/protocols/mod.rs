//! The protocols, one file each, and their registry.
//!
//! A protocol's file holds everything of it: its [`ProtocolParams`] (the typed
//! `[protocol]` keys, with the [`ProtocolInfo`] that `peergrid list` shows, the
//! constructor, validation and the memory estimate), its messages, its
//! [`Protocol`] handlers and its tests. The one line per
//! protocol in the `registry!` call below declares the module and generates the
//! [`ProtocolSpec`] variant, its row of [`PROTOCOLS`], parsing by name, its columns
//! and its static dispatch: the run loop is monomorphic for each protocol.

use std::fmt::Debug;

use serde::de::DeserializeOwned;

use crate::base::SimTime;
use crate::engine::{Message, Protocol, RunOutput, SimConfig, Simulation};
use crate::metrics::Column;
use crate::workload::Workload;
use crate::world::World;

pub mod dht;
pub mod maan;
pub mod routes;

/// Bytes of the TCP/IPv4 headers (20 + 20, no options) that every message of a
/// protocol over TCP carries besides its own bytes; the sizes each protocol gives
/// its messages (`Message::SIZES`) include them.
pub const TCP_IP_BYTES: u32 = 40;

/// Bytes of the UDP/IPv4 headers (8 + 20) of a protocol that sends datagrams.
pub const UDP_IP_BYTES: u32 = 28;

/// Declares each protocol's module and generates everything that lists them.
macro_rules! registry {
    ($($module:ident => $Variant:ident),* $(,)?) => {
        $(pub mod $module;)*

        /// A protocol chosen by `protocol.name`, with its typed parameters.
        #[derive(Clone, Debug, PartialEq)]
        pub enum ProtocolSpec {
            $(
                #[doc = concat!("`", stringify!($module), "`: see [`", stringify!($module), "`].")]
                $Variant($module::Params),
            )*
        }

        /// Every registered protocol, in the order `peergrid list` shows them.
        pub const PROTOCOLS: &[ProtocolInfo] = &[$(<$module::Params as ProtocolParams>::INFO),*];

        impl ProtocolSpec {
            /// Calls `visitor` with the typed parameters: the one place that matches
            /// on the protocol, so everything generic over it is written once.
            pub fn visit<V: Visitor>(&self, visitor: V) -> V::Output {
                match self {
                    $(ProtocolSpec::$Variant(p) => visitor.visit(p),)*
                }
            }

            /// The protocol named `name` with parameters from `table`, or `None`
            /// for a name no protocol has.
            fn parse(name: &str, table: &toml::Table) -> Option<Result<ProtocolSpec, ParamError>> {
                $(
                    if name == <$module::Params as ProtocolParams>::INFO.name {
                        return Some(params(table).map(ProtocolSpec::$Variant));
                    }
                )*
                None
            }

            /// Every protocol with the parameters an empty `[protocol]` table gives.
            pub fn all_defaults() -> Vec<ProtocolSpec> {
                vec![$(ProtocolSpec::$Variant(
                    params(&toml::Table::new()).expect(concat!(stringify!($module), " has defaults for every key"))
                )),*]
            }
        }
    };
}

// One line per protocol: `module => Variant`. The file is src/protocols/<module>.rs.
registry! {
    central => Central,
    hierarchical => Hierarchical,
    flooding => Flooding,
    gridnut => Gridnut,
    random_walk => RandomWalk,
    forwarding => Forwarding,
    superpeer => Superpeer,
    aggregation => Aggregation,
    chord => Chord,
    kademlia => Kademlia,
    volunteer => Volunteer,
}

/// A protocol's parameters, and through them everything the registry needs of it.
pub trait ProtocolParams: DeserializeOwned + Clone + Debug + PartialEq + Sized {
    /// The protocol these parameters build.
    type Protocol: Protocol;
    /// Its name, source, summary, parameters and result columns.
    const INFO: ProtocolInfo;
    /// The protocol for one run on `world`.
    fn build(&self, world: &World) -> Self::Protocol;
    /// Checks the parameters against the run; an error names the key below `protocol`.
    fn validate(&self, _run: &RunFigures) -> Result<(), ParamError> {
        Ok(())
    }
    /// The protocol's own memory in one run, part by part.
    fn memory(&self, run: &RunFigures) -> Vec<MemoryPart>;
}

/// Something done with a protocol's typed parameters, generic over the protocol.
pub trait Visitor {
    /// What it gives back.
    type Output;
    /// Does it for parameters `params`.
    fn visit<P: ProtocolParams>(self, params: &P) -> Self::Output;
}

/// What `peergrid list` and error messages say about a protocol.
pub struct ProtocolInfo {
    /// The `protocol.name` that picks it.
    pub name: &'static str,
    /// The paper or specification it follows.
    pub source: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// Whether it routes over the scenario's overlay (`network.topology`); if not,
    /// only the overlay's node count matters to it.
    pub uses_overlay: bool,
    /// Result columns of its own besides `messages_<kind>`, in the order it pushes them.
    pub extra_columns: &'static [Column],
    /// The roles its nodes can hold, which a `[[fault]]` can crash by name
    /// (`crash = { role = "index" }`), each with what it means.
    pub roles: &'static [(&'static str, &'static str)],
    /// Whether a node that rejoins after a downtime keeps the state it had; if not,
    /// it rejoins as a new node.
    pub keeps_state: bool,
    /// Its `[protocol]` keys.
    pub params: &'static [ParamDoc],
}

/// One `[protocol]` key as `peergrid list` documents it.
pub struct ParamDoc {
    /// The key.
    pub key: &'static str,
    /// Its default as a TOML value (a bare word is a string), or the key whose value
    /// it takes when unset.
    pub default: &'static str,
    /// What it means.
    pub meaning: &'static str,
    /// What a plot axis calls `protocol.<key>`, with its unit; empty for the key itself.
    pub label: &'static str,
}

impl ParamDoc {
    /// Key `key` with default `default`, meaning `meaning`.
    pub const fn new(key: &'static str, default: &'static str, meaning: &'static str) -> ParamDoc {
        ParamDoc { key, default, meaning, label: "" }
    }

    /// The same, titled `label` on a plot axis.
    pub const fn label(self, label: &'static str) -> ParamDoc {
        ParamDoc { label, ..self }
    }
}

/// The figures of one run that a protocol's validation and memory estimate use.
#[derive(Clone, Debug, PartialEq)]
pub struct RunFigures {
    /// Nodes of the overlay.
    pub nodes: usize,
    /// The overlay's mean degree (exact for edge files, nominal for generators).
    pub mean_degree: f64,
    /// Queries per second over the whole grid.
    pub query_rate: f64,
    /// Queries are issued in [0, duration).
    pub duration: SimTime,
    /// How long a query may take.
    pub timeout: SimTime,
    /// Mean one-way latency of a message, in seconds.
    pub mean_latency_s: f64,
    /// Mean service time of a message at a node, in seconds.
    pub mean_service_s: f64,
    /// Distinct resource types.
    pub resource_types: u32,
    /// Whether the types are range queries over the nodes' attributes.
    pub range_queries: bool,
    /// Copies of each type.
    pub replicas: u32,
}

impl RunFigures {
    /// A run on `nodes` nodes with nothing else set: a ring-like degree of 2, no
    /// queries, a one-minute duration and timeout, no latency or service time.
    pub fn on_nodes(nodes: usize) -> RunFigures {
        RunFigures {
            nodes,
            mean_degree: 2.0,
            query_rate: 0.0,
            duration: SimTime::from_secs(60),
            timeout: SimTime::from_secs(60),
            mean_latency_s: 0.0,
            mean_service_s: 0.0,
            resource_types: 1,
            range_queries: false,
            replicas: 1,
        }
    }

    /// Queries issued over the run.
    pub fn queries(&self) -> f64 {
        self.query_rate * self.duration.as_secs_f64()
    }

    /// Queries alive at once at most: a timeout's worth, within the run.
    pub fn live_queries(&self) -> f64 {
        self.query_rate * self.timeout.as_secs_f64().min(self.duration.as_secs_f64())
    }

    /// Seconds the run lasts, its last queries' timeout included.
    pub fn run_s(&self) -> f64 {
        (self.duration + self.timeout).as_secs_f64()
    }
}

/// One part of a run's memory estimate.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryPart {
    /// What it holds.
    pub what: &'static str,
    /// The scenario keys that shrink it.
    pub shrink: &'static str,
    /// Its size in bytes.
    pub bytes: f64,
}

impl MemoryPart {
    /// `bytes` of `what`, which `shrink` reduces.
    pub fn new(what: &'static str, shrink: &'static str, bytes: f64) -> MemoryPart {
        MemoryPart { what, shrink, bytes }
    }
}

/// A parameter that is wrong: its key below `protocol` and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("protocol.{key}: {message}")]
pub struct ParamError {
    /// The key below `protocol`, empty for the table itself.
    pub key: String,
    /// What was wrong and what was expected.
    pub message: String,
}

impl ParamError {
    /// An error about key `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ParamError { key: key.into(), message: message.into() }
    }
}

/// The typed parameters of `table`, every key but `name`.
fn params<T: DeserializeOwned>(table: &toml::Table) -> Result<T, ParamError> {
    let mut rest = table.clone();
    rest.remove("name");
    let value = toml::Value::Table(rest);
    serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        let e = crate::base::from_serde(&e, &value);
        ParamError::new(e.key, e.message)
    })
}

impl ProtocolSpec {
    /// Reads `[protocol]`: `name` picks the protocol, the other keys are its parameters.
    pub fn from_table(table: &toml::Table) -> Result<ProtocolSpec, ParamError> {
        let names = || PROTOCOLS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ");
        let name = match table.get("name") {
            Some(toml::Value::String(s)) => s.as_str(),
            Some(other) => {
                return Err(ParamError::new(
                    "name",
                    format!("expected a protocol name (one of {}), found {other}", names()),
                ));
            }
            None => {
                return Err(ParamError::new("name", format!("missing; expected one of {}", names())));
            }
        };
        ProtocolSpec::parse(name, table).unwrap_or_else(|| {
            Err(ParamError::new("name", format!("unknown protocol \"{name}\"; expected one of {}", names())))
        })
    }

    /// What `peergrid list` says about this protocol.
    pub fn info(&self) -> &'static ProtocolInfo {
        struct Info;
        impl Visitor for Info {
            type Output = &'static ProtocolInfo;
            fn visit<P: ProtocolParams>(self, _: &P) -> &'static ProtocolInfo {
                &P::INFO
            }
        }
        self.visit(Info)
    }

    /// The `protocol.name` of this protocol.
    pub fn name(&self) -> &'static str {
        self.info().name
    }

    /// Result columns this protocol adds: `messages_<kind>` per message kind, then its own.
    pub fn columns(&self) -> Vec<String> {
        struct Columns;
        impl Visitor for Columns {
            type Output = Vec<String>;
            fn visit<P: ProtocolParams>(self, _: &P) -> Vec<String> {
                let kinds = <<P::Protocol as Protocol>::Msg as Message>::KINDS;
                let own = P::INFO.extra_columns.iter().map(|c| c.name.to_string());
                kinds.iter().map(|k| format!("messages_{k}")).chain(own).collect()
            }
        }
        self.visit(Columns)
    }

    /// The protocol's own memory in a run with these figures.
    pub fn memory(&self, run: &RunFigures) -> Vec<MemoryPart> {
        struct Memory<'a>(&'a RunFigures);
        impl Visitor for Memory<'_> {
            type Output = Vec<MemoryPart>;
            fn visit<P: ProtocolParams>(self, p: &P) -> Vec<MemoryPart> {
                p.memory(self.0)
            }
        }
        self.visit(Memory(run))
    }

    /// Checks the parameters against the run.
    pub fn validate(&self, run: &RunFigures) -> Result<(), ParamError> {
        struct Validate<'a>(&'a RunFigures);
        impl Visitor for Validate<'_> {
            type Output = Result<(), ParamError>;
            fn visit<P: ProtocolParams>(self, p: &P) -> Result<(), ParamError> {
                p.validate(self.0)
            }
        }
        self.visit(Validate(run))
    }

    /// Runs one simulation of this protocol.
    pub fn run(&self, world: &World, workload: Workload, config: &SimConfig) -> RunOutput {
        struct Run<'a> {
            world: &'a World,
            workload: Workload,
            config: &'a SimConfig,
        }
        impl Visitor for Run<'_> {
            type Output = RunOutput;
            fn visit<P: ProtocolParams>(self, p: &P) -> RunOutput {
                Simulation::new(self.world, p.build(self.world), self.workload, self.config).run()
            }
        }
        self.visit(Run { world, workload, config })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Rate, SimConfig};
    use crate::workload::WorkloadSpec;
    use crate::world::TopologySpec;

    /// A documented default as the TOML value a user would write: a bare word is a string.
    fn literal(text: &str) -> toml::Value {
        toml::from_str::<toml::Table>(&format!("v = {text}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(text.to_string()))
    }

    #[test]
    fn every_documented_default_is_the_serde_default() {
        for spec in ProtocolSpec::all_defaults() {
            let info = spec.info();
            for doc in info.params {
                // A default that names another scenario key is inherited from it.
                if doc.default.starts_with("network.") {
                    continue;
                }
                let mut table = toml::Table::new();
                table.insert("name".into(), toml::Value::String(info.name.into()));
                table.insert(doc.key.into(), literal(doc.default));
                let written = ProtocolSpec::from_table(&table).unwrap_or_else(|e| {
                    panic!("{}: the documented default {} = {} is refused: {e}", info.name, doc.key, doc.default)
                });
                assert_eq!(written, spec, "{}: {} = {} is not the default", info.name, doc.key, doc.default);
            }
        }
    }

    #[test]
    fn every_protocol_is_listed_once_by_its_name() {
        let specs = ProtocolSpec::all_defaults();
        assert_eq!(specs.len(), PROTOCOLS.len());
        for (spec, info) in specs.iter().zip(PROTOCOLS) {
            assert_eq!(spec.name(), info.name);
            let mut table = toml::Table::new();
            table.insert("name".into(), toml::Value::String(info.name.into()));
            assert_eq!(ProtocolSpec::from_table(&table).as_ref(), Ok(spec));
        }
        let mut names: Vec<&str> = PROTOCOLS.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PROTOCOLS.len(), "two protocols share a name");
    }

    #[test]
    fn every_protocol_runs_under_changing_resources_and_only_stored_state_goes_stale() {
        use crate::dynamics::Dynamics;
        use crate::world::Changes;
        let w = crate::validate::world(&TopologySpec::RandomRegular { degree: 4 }, 200, 20, 20, 5, 3);
        let changing = Changes { swap: Rate(0.01), moves: Rate(0.01), appear: Rate(0.005), vanish: Rate(0.005) };
        let mut stale = Vec::new();
        for spec in ProtocolSpec::all_defaults() {
            let run = |changes: Changes| {
                let workload = Workload::new(
                    &WorkloadSpec { rate: Rate(20.0), ..Default::default() },
                    200,
                    20,
                    SimTime::from_secs(100),
                    3,
                );
                let mut config = SimConfig::new(3, SimTime::from_secs(100));
                config.timeout = SimTime::from_secs(5);
                config.dynamics = Dynamics { changes, ..Dynamics::default() };
                spec.run(&w, workload, &config)
            };
            let name = spec.name();
            let still = run(Changes::default());
            assert!(matches!(still.metric("stale_answer_rate"), Some(0.0) | None), "{name} static");
            assert_eq!(still.metric("resource_changes"), Some(0.0));
            let out = run(changing);
            // 200 nodes × 0.03/s over 105 s: 630 changes, σ ≈ 25.
            let made = out.metric("resource_changes").unwrap_or(0.0);
            assert!((made - 630.0).abs() < 125.0, "{name}: {made} changes");
            assert_eq!(run(changing).fingerprint, out.fingerprint, "{name} is deterministic");
            let rate = out.metric("stale_answer_rate");
            if spec.info().name == "aggregation" {
                continue;
            }
            stale.push((name, rate.unwrap_or(0.0)));
        }
        let of = |n: &str| stale.iter().find(|(m, _)| *m == n).map(|(_, r)| *r).unwrap_or(f64::NAN);
        // Flooding and the walks look at live state; MDS-2's soft state answers from
        // caches up to a refresh old; an index told of each change at once is stale
        // only while the update is on its way.
        for live in ["flooding", "gridnut", "random-walk", "forwarding"] {
            assert_eq!(of(live), 0.0, "{live}");
        }
        assert!(of("hierarchical") > 0.02, "{stale:?}");
        assert!(of("central") < of("hierarchical") / 3.0, "{stale:?}");
        assert!(of("superpeer") < of("hierarchical") / 3.0, "{stale:?}");
    }

    #[test]
    fn no_stored_state_names_a_node_that_was_down_from_the_start() {
        use crate::dynamics::{Churn, Dynamics, Source, Trace};
        use crate::engine::NodeId;
        use crate::workload::ScriptedQuery;
        // Type 0 is held by node 7 alone, which is down until a trace row brings it
        // up after the run; every node asks for type 0 once, 1 s in.
        let mut w = crate::validate::world(&TopologySpec::RandomRegular { degree: 4 }, 40, 20, 2, 1, 3);
        w.resources = crate::world::Resources::from_holders(40, vec![vec![7], vec![8]]);
        let trace = Trace { rows: vec![(SimTime::from_secs(100), NodeId(7), true)], starts_down: vec![NodeId(7)] };
        let churn =
            Churn { source: Source::Trace(std::sync::Arc::new(trace)), graceful: 0.5, leave_time: SimTime::ZERO };
        let script: Vec<ScriptedQuery> = (0..40)
            .filter(|&v| v != 7)
            .map(|v| ScriptedQuery { at: SimTime::from_secs(1), origin: v, rtype: 0 })
            .collect();
        for spec in ProtocolSpec::all_defaults()
            .into_iter()
            .filter(|s| ["central", "hierarchical", "superpeer"].contains(&s.name()))
        {
            let workload = Workload::new(
                &WorkloadSpec { rate: Rate(0.0), script: script.clone(), ..Default::default() },
                40,
                2,
                SimTime::from_secs(10),
                3,
            );
            let mut config = SimConfig::new(3, SimTime::from_secs(10));
            config.timeout = SimTime::from_secs(5);
            config.dynamics = Dynamics { churn: Some(churn.clone()), ..Dynamics::default() };
            let out = spec.run(&w, workload, &config);
            let name = spec.name();
            assert_eq!(out.metric("success_rate"), Some(0.0), "{name}");
            // No answer named node 7, so none was stale: the rate is undefined.
            assert_eq!(out.metric("stale_answer_rate"), None, "{name}");
        }
    }

    #[test]
    fn every_protocol_pushes_the_columns_it_declares() {
        let w = crate::validate::world(&TopologySpec::RandomRegular { degree: 4 }, 200, 20, 20, 5, 3);
        for spec in ProtocolSpec::all_defaults() {
            let workload = Workload::new(
                &WorkloadSpec { rate: Rate(20.0), ..Default::default() },
                200,
                20,
                SimTime::from_secs(5),
                3,
            );
            let mut config = SimConfig::new(3, SimTime::from_secs(40));
            config.timeout = SimTime::from_secs(5);
            let out = spec.run(&w, workload, &config);
            let pushed: Vec<&str> = out.extra.iter().map(|m| m.name.as_str()).collect();
            let declared: Vec<&str> = spec.info().extra_columns.iter().map(|c| c.name).collect();
            assert_eq!(pushed, declared, "{}", spec.name());
            for column in spec.columns() {
                assert!(out.has_metric(&column), "{}: no value for its column {column}", spec.name());
            }
        }
    }
}
