//! `chord`: the Chord distributed hash table (Stoica, Morris, Karger, Kaashoek,
//! Balakrishnan, SIGCOMM 2001; Stoica et al., IEEE/ACM ToN 2003), with the
//! maintenance and lookup of OverSim's implementation.
//!
//! **Identifiers.** Each node has an identifier on a ring of 2^`bits` (at most
//! 2^64), drawn uniformly at the start from the protocol's stream and kept for
//! the run (a node that rejoins comes back with the same identifier, as a host
//! whose identifier is the hash of its address does). Identifiers and keys are
//! stored as `u64` and compared on the ring by wrapping subtraction: with 64 bits
//! two of 10^6 nodes share an identifier with probability about 3·10^−8, where
//! the papers' 160-bit SHA-1 identifiers make it nil; nothing else differs. A key
//! belongs to its successor: the first node up whose identifier follows it on the
//! ring, or equals it.
//!
//! **State.** Every node keeps a successor list of `successors` (r) nodes, a
//! predecessor, and a finger table of `bits` entries, finger i being the successor
//! of id + 2^i. The run starts from a ring that has been running: every node up
//! at time zero has its exact successor list, predecessor and fingers.
//!
//! **Maintenance** (ToN, Fig. 6 and section IV-E; OverSim's periods by default):
//! every `stabilize` a node asks its successor for its predecessor and successor
//! list, adopts the predecessor if it lies between them, copies the list (the
//! successor first, the last entry dropped) and notifies its successor, which
//! takes the node as predecessor if it is closer; every `check_predecessor` it
//! pings its predecessor and forgets it if no answer comes; every `fix_fingers` it
//! refreshes every non-trivial finger (one whose start lies beyond its successor;
//! the others are the successor) by a lookup of id + 2^i, as OverSim does. A call
//! that gets no reply within `rpc_timeout` has met a dead node: the caller drops
//! it from its successor list and fingers (stabilisation then tries the next
//! successor at once).
//!
//! **Lookups** are iterative, as OverSim's default: the origin asks the node
//! closest to the key that it knows (its whole own table first) for nodes closer
//! still; each answer gives up to `CANDIDATES` of the answering node's fingers
//! (and, with `successor_routing`, successors) that precede the key, closest
//! first, with its successor list, and the origin asks the closest one it has not
//! asked, until a node replies that the key lies between it and its successor,
//! with its successor list. The origin then sends the message to the first of
//! those, and to the next if that one does not answer. A lookup that meets a dead
//! node times out and goes on with the next closest node it knows: if the
//! successors of the best node that answered turn out dead up to the key, the
//! first live one owns it (ToN, section IV-E.3); if every candidate closer than
//! that node fails, the node is asked again, told which failed, as a node of a
//! recursive lookup goes on with its next finger. A call's timeout is an engine
//! timer that its reply cancels. Its hops are the nodes that answered a step of
//! the route (the path length of the papers: the hops to the key's predecessor);
//! its timeouts are the calls that went unanswered.
//!
//! With `routing = "recursive"` each node on the way sends the message on
//! itself, to the closest node it knows before the key, or, if the key lies
//! between it and its successor, to that successor, which acts on it and sends
//! the origin the result (OverSim's semi-recursive mode). Every hop acknowledges
//! the message to the node before, which after `rpc_timeout` without it drops
//! the silent node from its tables and sends the message on through its next
//! finger or successor (the ToN paper's recursive lookup; OverSim's Chord does
//! so with routeMsgAcks, off by default). The origin waits for the result as
//! long as a query may take (`workload.timeout`). A recursive lookup takes the
//! same path as an iterative one, each hop costing one message delay where
//! iterative lookups wait for a round trip; under failures the nodes on the path
//! learn of dead nodes themselves, so later lookups meet fewer.
//!
//! **Queries** are the lookups of a KBR test (OverSim's KBRTestApp): each query of
//! the workload looks up a key drawn uniformly from the ring, and is a hit if the
//! node it reaches is, at that moment, the key's owner among the nodes on the
//! ring (an oracle that knows every node's identifier and whether it is up,
//! joined and not leaving, as OverSim's global list of active nodes). A lookup
//! that reaches another node is wrong, and counts as failed.
//!
//! **Storage** (`storage = true`, after OverSim's DHT and DHTTestApp): each
//! query puts a new key (with probability `put_share`) or gets a key stored
//! before, drawn uniformly; `stored_keys` keys are in place at the start. A key
//! lives on its owner and the `replicas` − 1 successors after it. A put's lookup
//! delivers the key and its value to the owner, which stores it and copies it to
//! its replicas; it succeeds if that node owned the key. A get's lookup asks the
//! owner and, while the key is not found, the next nodes of the owner list, up
//! to `replicas` of them (OverSim asks four replicas at once and takes a
//! majority); it succeeds if one holds the key. Replicas follow the ring: a node
//! whose successor list gains a replica sends it the keys of its own range (its
//! predecessor to itself); a node that takes a new predecessor sends it the keys
//! it holds outside its own new range (with one replica they move, so a join
//! between two nodes moves exactly the keys of the newcomer's range), and if its
//! range has widened (its predecessor failed or left) it sends its replicas the
//! keys of the range; a graceful leaver with one replica hands its keys to its
//! successor. A node that crashes or rejoins has lost its keys. Keys a node no
//! longer replicates are not deleted (they are never asked for).
//!
//! **Resources** (`resources = true`): the ring is the grid's resource index,
//! as the DHT-based discovery services proposed for grids register each
//! resource under a hash of its description. Every holder registers each type
//! it holds under the type's key (a fixed hash of the type), as an item naming
//! it that lives, like a stored key, on the key's owner and the `replicas` − 1
//! successors after it and follows the ring as nodes come and go. The run
//! starts with the registrations of the nodes up in place; a node that joins,
//! first or again, or whose resources change, registers each type it holds by
//! a put. A query looks up its type's key and asks the owner (and, while it
//! names nobody, the next nodes of the owner list, up to `replicas`) for the
//! holders registered; the answer names them all but the origin, and counts
//! those up and still holding the type as hits. Registrations are never
//! withdrawn (a crashed holder cannot, and nothing expires): an answer that
//! names a holder gone or changed is stale, as `central`'s are.
//!
//! **Range queries** (`attributes`): the ring is MAAN (see [`super::maan`]).
//! Every node registers each attribute value under its locality-preserving
//! hash, as items that follow the ring as registrations do; a range query's
//! walk is looked up at the start of its range and then travels from node to
//! node along the successors as a recursive lookup's message does, each hop
//! acknowledged and a silent successor routed around, each node adding the
//! matching registrations of its part of the range, and the last one sends the
//! origin what was collected.
//!
//! **Churn and faults.** A joining node (or one that rejoins, with no memory of
//! its tables) looks up its own identifier through its bootstrap contact and
//! takes the node found as its successor (never itself: others may still list
//! it); stabilisation does the rest. Until then it is off the ring, as OverSim's
//! Chord outside its READY state: it answers no call, runs no maintenance, and
//! its own lookups fail. A node whose successor list runs empty joins again. A
//! graceful leaver tells its successor its predecessor and its predecessor its
//! successor list (ToN, section IV-E.3), then goes; a crashed node tells nobody.
//! A node that has joined says so in its first notify: if it is back before
//! its successor noticed it gone (the successor still has it as predecessor),
//! the successor hands it the items of its range again, as it would a newcomer.

use rand::RngExt;
use serde::Deserialize;

use super::dht::{
    self, Found, HANDLE, HEADER, ITEM, Item, KBR_PAYLOAD, KEY, LookupStats, Lookups, Op, Outcome, Purpose, Stores,
};
use super::maan::{self, Maan, Resolution};
use super::{MemoryPart, ParamDoc, ParamError, ProtocolInfo, ProtocolParams, RunFigures};
use crate::engine::{Ahead, Ctx, Message, NodeId, Protocol, QueryId, ResourceType, SimTime, TimerId};
use crate::metrics::{Column, Metric, Recorder};
use crate::world::World;

/// `[protocol]` with `name = "chord"`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Identifier length m: the ring has 2^m identifiers.
    #[serde(default = "default_bits")]
    pub bits: u32,
    /// Length r of each node's successor list.
    #[serde(default = "default_successors")]
    pub successors: u32,
    /// Period of stabilisation.
    #[serde(default = "default_stabilize")]
    pub stabilize: SimTime,
    /// Period of finger repair.
    #[serde(default = "default_fix_fingers")]
    pub fix_fingers: SimTime,
    /// Period of the predecessor check.
    #[serde(default = "default_check_predecessor")]
    pub check_predecessor: SimTime,
    /// How long a call waits for its reply before its target counts as dead.
    #[serde(default = "dht::default_rpc_timeout")]
    pub rpc_timeout: SimTime,
    /// Whether nodes run stabilisation, finger repair and predecessor checks.
    #[serde(default = "dht::yes")]
    pub maintenance: bool,
    /// Whether a routing step looks for the closest node to the key among the
    /// successor list as well as the fingers (ToN, section IV-E.3; OverSim), or
    /// among the fingers alone (ToN, Fig. 5).
    #[serde(default = "dht::yes")]
    pub successor_routing: bool,
    /// How lookups travel: the origin asks each hop (iterative) or each hop
    /// forwards the message (recursive).
    #[serde(default)]
    pub routing: Routing,
    /// Whether queries put and get stored keys (OverSim's DHTTestApp) rather
    /// than route test messages to random keys (its KBRTestApp).
    #[serde(default)]
    pub storage: bool,
    /// With storage: the nodes that hold each key, its owner and the successors after it.
    #[serde(default = "dht::default_replicas")]
    pub replicas: u32,
    /// With storage: keys stored at the start, drawn uniformly, each at its replicas.
    #[serde(default)]
    pub stored_keys: u64,
    /// With storage: the share of queries that put a new key; the others get a
    /// stored key drawn uniformly.
    #[serde(default = "dht::default_put_share")]
    pub put_share: f64,
    /// Whether the ring indexes the grid's resources: every holder registers
    /// each type it holds under the type's key, and a query asks that key's
    /// owner for the holders of its type.
    #[serde(default)]
    pub resources: bool,
    /// MAAN: nodes register each attribute value under its locality-preserving
    /// hash, and range queries walk the arcs of their ranges, resolved by one
    /// dominant attribute or iteratively over every one.
    #[serde(default)]
    pub attributes: Resolution,
}

/// How a lookup travels.
#[derive(Deserialize, Clone, Copy, Debug, Default, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Routing {
    /// The origin asks each node on the way for closer ones (OverSim's default).
    #[default]
    Iterative,
    /// Each node on the way forwards the message to the closest node it knows,
    /// which acknowledges it; the last sends the origin the result.
    Recursive,
}

fn default_bits() -> u32 {
    64
}
fn default_successors() -> u32 {
    8
}
fn default_stabilize() -> SimTime {
    SimTime::from_secs(20)
}
fn default_fix_fingers() -> SimTime {
    SimTime::from_secs(120)
}
fn default_check_predecessor() -> SimTime {
    SimTime::from_secs(5)
}

impl Default for Params {
    fn default() -> Self {
        Params {
            bits: default_bits(),
            successors: default_successors(),
            stabilize: default_stabilize(),
            fix_fingers: default_fix_fingers(),
            check_predecessor: default_check_predecessor(),
            rpc_timeout: dht::default_rpc_timeout(),
            maintenance: true,
            successor_routing: true,
            routing: Routing::Iterative,
            storage: false,
            replicas: dht::default_replicas(),
            stored_keys: 0,
            put_share: dht::default_put_share(),
            resources: false,
            attributes: Resolution::Off,
        }
    }
}

/// Whether `x` lies in (a, b] on a ring of `mask` + 1 identifiers (the whole
/// ring when a = b).
#[inline]
fn closed(mask: u64, x: u64, a: u64, b: u64) -> bool {
    let dist = |from: u64, to: u64| to.wrapping_sub(from) & mask;
    a == b || (dist(a, x) != 0 && dist(a, x) <= dist(a, b))
}

/// Nodes an answer to a routing step names at most, closest to the key first.
const CANDIDATES: usize = 3;

/// Up to this many closest nodes, a routing step picks them without sorting.
const FEW: usize = 8;

/// No node: an empty entry of a successor list or finger table, or no predecessor.
const NONE: u32 = u32::MAX;

impl Params {
    /// What its queries do.
    fn work(&self) -> dht::Work {
        let resources = self.resources || self.attributes.walks();
        dht::Work { storage: self.storage, resources, put_share: self.put_share }
    }
}

/// Chord's columns: a DHT's, then MAAN's.
const COLUMNS: [Column; dht::COLUMNS.len() + maan::COLUMNS.len()] = {
    let mut out = [dht::COLUMNS[0]; dht::COLUMNS.len() + maan::COLUMNS.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = if i < dht::COLUMNS.len() { dht::COLUMNS[i] } else { maan::COLUMNS[i - dht::COLUMNS.len()] };
        i += 1;
    }
    out
};

impl ProtocolParams for Params {
    type Protocol = Chord;

    const INFO: ProtocolInfo = ProtocolInfo {
        name: "chord",
        source: "Stoica et al., SIGCOMM 2001 and IEEE/ACM ToN 2003; OverSim's Chord",
        summary: "DHT on an identifier ring: finger tables, successor lists, stabilisation, iterative or recursive lookups of random keys, replicated storage, a resource index",
        uses_overlay: false,
        extra_columns: &COLUMNS,
        roles: &[],
        keeps_state: false,
        params: &[
            ParamDoc::new("bits", "64", "identifier length m: the ring has 2^m identifiers (8 to 64)")
                .label("identifier bits"),
            ParamDoc::new("successors", "8", "length r of each node's successor list").label("successor list length"),
            ParamDoc::new("stabilize", "\"20s\"", "period of stabilisation").label("stabilise period (s)"),
            ParamDoc::new(
                "fix_fingers",
                "\"120s\"",
                "period of finger repair: every non-trivial finger is looked up again",
            )
            .label("fix-fingers period (s)"),
            ParamDoc::new("check_predecessor", "\"5s\"", "period of the predecessor check")
                .label("check-predecessor period (s)"),
            ParamDoc::new(
                "rpc_timeout",
                "\"1.5s\"",
                "how long a call waits for its reply before its target counts as dead",
            )
            .label("RPC timeout (s)"),
            ParamDoc::new("maintenance", "true", "whether nodes stabilise, repair fingers and check predecessors"),
            ParamDoc::new(
                "successor_routing",
                "true",
                "whether a routing step picks the node closest to the key among the successor list as well as the fingers (false: the fingers alone, as the ToN paper's Fig. 5)",
            ),
            ParamDoc::new(
                "routing",
                "\"iterative\"",
                "how lookups travel: \"iterative\" (the origin asks each hop for closer nodes) or \"recursive\" (each hop forwards the message and acknowledges it to the one before)",
            ),
            ParamDoc::new(
                "storage",
                "false",
                "whether queries put new keys and get stored ones (OverSim's DHTTestApp) rather than route test messages to random keys",
            ),
            ParamDoc::new(
                "replicas",
                "4",
                "with storage: nodes holding each key, its owner and the successors after it",
            )
            .label("replicas"),
            ParamDoc::new("stored_keys", "0", "with storage: keys stored at the start, each at its replicas")
                .label("keys stored at the start"),
            ParamDoc::new("put_share", "0.5", "with storage: share of the queries that put; the others get")
                .label("share of puts"),
            ParamDoc::new(
                "resources",
                "false",
                "whether the ring indexes the grid's resources: holders register each type under its key, at the key's owner and its replicas, and a query asks the owner of its type's key for the holders",
            ),
            ParamDoc::new(
                "attributes",
                "\"off\"",
                "MAAN over [resources] attributes: nodes register each value under a locality-preserving hash, and a range query walks the arc of its range, \"single-attribute\" (the narrowest range, filtering by the others) or \"iterative\" (every range, answers intersected); \"off\": none",
            ),
        ],
    };

    fn build(&self, world: &World) -> Chord {
        let n = world.nodes();
        let r = self.successors as usize;
        let m = self.bits as usize;
        Chord {
            params: self.clone(),
            mask: dht::mask(self.bits),
            id: vec![0; n],
            ring: Vec::new(),
            ring_index: dht::RingIndex::default(),
            succ: vec![NONE; n * r],
            pred: vec![NONE; n],
            finger: vec![NONE; n * m],
            lookups: Lookups::default(),
            forwards: Lookups::default(),
            leaving: vec![false; n],
            ready: vec![false; n],
            fresh: vec![false; n],
            stores: if self.work().stores_items() { Stores::new(n) } else { Stores::default() },
            stats: LookupStats { storage: self.work().stores_items(), ..LookupStats::default() },
            maan: match (self.attributes, &world.attributes) {
                (r, Some(a)) if r.walks() => Some(Maan::new(r, a, n, dht::mask(self.bits))),
                _ => None,
            },
        }
    }

    fn validate(&self, run: &RunFigures) -> Result<(), ParamError> {
        dht::check_bits(self.bits, run.nodes)?;
        if !(1..=64).contains(&self.successors) {
            return Err(ParamError::new(
                "successors",
                format!("{} is out of range; expected 1 ≤ successors ≤ 64", self.successors),
            ));
        }
        if !(1..=self.successors).contains(&self.replicas) {
            return Err(ParamError::new(
                "replicas",
                format!(
                    "{} is out of range; expected 1 ≤ replicas ≤ successors ({}): a key's replicas are its owner and the successors after it",
                    self.replicas, self.successors
                ),
            ));
        }
        self.work().check(self.stored_keys)?;
        if self.attributes.walks() && !run.range_queries {
            return Err(ParamError::new(
                "attributes",
                "MAAN routes range queries over the nodes' attributes; expected [resources] attributes or attribute_file as well",
            ));
        }
        if self.attributes.walks() && (self.storage || self.resources) {
            let key = if self.storage { "storage" } else { "resources" };
            return Err(ParamError::new(
                key,
                "MAAN's range queries are the workload; expected no storage or resources with attributes",
            ));
        }
        if self.resources && run.range_queries {
            return Err(ParamError::new(
                "resources",
                "range queries over attributes are found on the ring by MAAN; expected attributes = \"single-attribute\" or \"iterative\" in place of resources",
            ));
        }
        dht::check_periods(&[
            ("stabilize", self.stabilize),
            ("fix_fingers", self.fix_fingers),
            ("check_predecessor", self.check_predecessor),
            ("rpc_timeout", self.rpc_timeout),
        ])
    }

    /// Per node: identifier, successor list, predecessor and fingers; and the
    /// lookups and calls in flight.
    fn memory(&self, run: &RunFigures) -> Vec<MemoryPart> {
        let per_node = 8.0 + 16.0 + 4.0 * (self.successors as f64 + 1.0 + self.bits as f64);
        let in_flight = run.live_queries() * (96.0 + 4.0 * 48.0);
        let stored = if self.storage {
            let puts = run.query_rate * run.duration.as_secs_f64() * self.put_share;
            run.nodes as f64 * 24.0 + (self.stored_keys as f64 + puts) * 8.0 * (self.replicas as f64 + 1.0)
        } else if self.attributes.walks() {
            // A registration per attribute: a few per node.
            run.nodes as f64 * (24.0 + 4.0 * 16.0 * (self.replicas as f64 + 1.0))
        } else if self.resources {
            let holdings = run.resource_types as f64 * run.replicas as f64;
            run.nodes as f64 * 24.0 + holdings * 16.0 * (self.replicas as f64 + 1.0)
        } else {
            0.0
        };
        // Every call leaves its timeout pending until due, answered or not (16 B
        // in the event list, 48 B in the timer arena, and half as much again for
        // vectors that grow by doubling). Maintenance keeps three periodic timers
        // a node and, per node and period, a stabilise call, a ping, and at each
        // finger repair ~log2 N lookups of ½·log2 N + 1 steps.
        let log_n = (run.nodes.max(2) as f64).log2();
        let steps = log_n / 2.0 + 1.0;
        let per_s = |t: SimTime| 1.0 / t.as_secs_f64().max(1e-3);
        let (upkeep, timers) = if self.maintenance {
            (per_s(self.stabilize) + per_s(self.check_predecessor) + log_n * steps * per_s(self.fix_fingers), 3.0)
        } else {
            (0.0, 0.0)
        };
        let calls = run.nodes as f64 * upkeep + run.query_rate * steps;
        let pending = calls * self.rpc_timeout.as_secs_f64() + run.nodes as f64 * timers;
        vec![
            MemoryPart::new(
                "identifiers, successor lists, fingers",
                "network.nodes, protocol.bits",
                run.nodes as f64 * per_node,
            ),
            MemoryPart::new(
                "calls and timers in flight",
                "network.nodes, protocol.fix_fingers, protocol.rpc_timeout",
                pending * 96.0,
            ),
            MemoryPart::new("lookups in flight", "workload.rate, workload.timeout", in_flight),
            MemoryPart::new(
                "stored keys or registrations",
                "protocol.stored_keys, protocol.replicas, workload.rate, resources",
                stored,
            ),
        ]
    }
}

/// A lookup in progress at its origin.
struct Lookup {
    key: u64,
    origin: NodeId,
    purpose: Purpose,
    /// What it does at the key's owner and what it met there (a get goes on
    /// to the next replica while the key is not found).
    outcome: Outcome,
    /// Nodes that answered a routing step.
    hops: u32,
    /// Calls that went unanswered.
    timeouts: u32,
    /// Nodes preceding the key not yet asked, each after its distance to the
    /// key, closest first (then by number).
    candidates: Vec<(u64, NodeId)>,
    /// Nodes asked, answered or not.
    asked: Vec<NodeId>,
    /// Nodes asked that did not answer.
    failed: Vec<NodeId>,
    /// The node closest to the key (preceding it) that has answered, with its
    /// successor list: if its successors turn out dead, the key's owner is the
    /// first of them still up.
    best: Option<(NodeId, Vec<NodeId>)>,
    /// How many nodes had failed when the best node last answered: after more
    /// have, it is asked again, told which, for other nodes closer to the key.
    best_failures: usize,
    /// Once a node has named the key's successors: those still to try, first first.
    owners: Option<Vec<NodeId>>,
    /// The timeout of the call it waits on, cancelled by the reply.
    waiting: Option<TimerId>,
}

/// What a call that may go unanswered is for: what its timeout does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Call {
    /// A routing step or the delivery of lookup `lid`.
    Lookup(u32),
    /// The successor's predecessor and list.
    Stabilize,
    /// The predecessor's sign of life.
    CheckPredecessor,
    /// The acknowledgement of a recursive lookup's message sent on (`forwards`).
    Forward(u32),
    /// The result of recursive lookup `lid`, at its origin.
    Result(u32),
}

/// A recursive lookup's message as it travels.
#[derive(Clone, Copy, Debug)]
pub struct Routed {
    /// The lookup at its origin.
    lid: u32,
    /// Its origin.
    origin: NodeId,
    /// The origin's timer, which the result cancels.
    wait: TimerId,
    /// The key.
    key: u64,
    /// The query it serves, if any.
    q: Option<QueryId>,
    /// Nodes that routed it on.
    hops: u32,
    /// Hops it waited on in vain.
    timeouts: u32,
    /// Whether the receiver is the key's owner, as the sender sees it.
    last: bool,
    /// What it does at the key's owner and what it met there (a get goes on
    /// along the owner's successors).
    outcome: Outcome,
    /// A range query's walk: the identifier of the last node it visited,
    /// up to which it has collected.
    walked: u64,
}

/// A recursive lookup's message sent on by node `at`, until the next hop
/// acknowledges it.
struct Forward {
    at: NodeId,
    msg: Routed,
    /// Next hops that did not acknowledge it.
    dead: Vec<NodeId>,
    /// The timeout of the call, cancelled by the acknowledgement.
    call: Option<TimerId>,
}

/// Chord's messages: calls and their replies.
#[derive(Clone, Debug)]
pub enum Msg {
    /// A routing step: which nodes does the receiver know closer to `key`?
    FindNode {
        /// The call's timeout at the caller, which the answer cancels.
        call: TimerId,
        /// The lookup at the caller.
        lid: u32,
        /// The key looked up.
        key: u64,
        /// The query the lookup serves, if any.
        q: Option<QueryId>,
        /// Nodes the caller found dead, to leave out of the answer.
        dead: Vec<NodeId>,
    },
    /// The answer: the key lies between the receiver and its successor (`done`,
    /// with the successor list), or nodes closer to it, and then the successor
    /// list too, for the caller to go on from if the successor is found dead.
    Nodes {
        /// The call answered.
        call: TimerId,
        /// The lookup at the caller.
        lid: u32,
        /// The query the lookup serves, if any.
        q: Option<QueryId>,
        /// Whether `nodes` are the key's successors.
        done: bool,
        /// The successors, or the nodes closer to the key, closest first.
        nodes: Vec<NodeId>,
        /// Unless `done`: the answering node's successor list.
        succs: Vec<NodeId>,
    },
    /// The lookup's message, to the node found responsible for `key`.
    Deliver {
        /// The call.
        call: TimerId,
        /// The lookup at the caller.
        lid: u32,
        /// The key.
        key: u64,
        /// The query it serves, if any.
        q: Option<QueryId>,
        /// A test message, a value to store, or a request for one.
        op: Op,
    },
    /// The responsible node's receipt: whether it is the key's owner among the
    /// nodes up (the oracle's verdict at delivery), for a get whether it holds
    /// the key (and then its value), for a find the holders it names.
    Delivered {
        /// The call answered.
        call: TimerId,
        /// The lookup at the caller.
        lid: u32,
        /// The query it serves, if any.
        q: Option<QueryId>,
        /// What the message met.
        got: Found,
    },
    /// Stabilisation: the successor's predecessor and successor list, please.
    GetPredecessor {
        /// The call.
        call: TimerId,
    },
    /// The reply to `GetPredecessor`.
    Predecessor {
        /// The call answered.
        call: TimerId,
        /// The sender's predecessor, if it has one.
        pred: Option<NodeId>,
        /// The sender's successor list.
        succs: Vec<NodeId>,
    },
    /// "I may be your predecessor."
    Notify {
        /// Whether the sender has joined (first or again) since it last
        /// notified anyone: it holds nothing yet.
        fresh: bool,
    },
    /// The predecessor check.
    Ping {
        /// The call.
        call: TimerId,
    },
    /// The reply to `Ping`.
    Pong {
        /// The call answered.
        call: TimerId,
    },
    /// A graceful leaver to its successor: take my predecessor as yours.
    LeavePred {
        /// The leaver's predecessor.
        pred: Option<NodeId>,
    },
    /// A graceful leaver to its predecessor: my successors follow me.
    LeaveSucc {
        /// The leaver's successor list.
        succs: Vec<NodeId>,
    },
    /// A recursive lookup's message, forwarded hop by hop.
    Route {
        /// The sender's timeout, which the acknowledgement cancels.
        call: TimerId,
        /// The sender's record of it.
        fid: u32,
        /// The message.
        msg: Routed,
    },
    /// A hop's acknowledgement of `Route`.
    RouteAck {
        /// The call answered.
        call: TimerId,
        /// The sender's record.
        fid: u32,
        /// The query the message serves, if any.
        q: Option<QueryId>,
    },
    /// A recursive lookup's result, to its origin: what the message met at
    /// the node it reached.
    Arrived {
        /// The message as it arrived, with what it met.
        msg: Routed,
    },
    /// Stored items to hold: a new one for a replica, those of a range for a
    /// node that now owns or replicates it.
    Store {
        /// The items (each key with its value, or a registration).
        items: Vec<Item>,
    },
}

impl Msg {
    /// The call a reply answers, whose timeout its receiver cancels; `None` for
    /// a call or a notice, which a node off the ring ignores.
    fn answers(&self) -> Option<TimerId> {
        match *self {
            Msg::Nodes { call, .. }
            | Msg::Delivered { call, .. }
            | Msg::Predecessor { call, .. }
            | Msg::Pong { call }
            | Msg::RouteAck { call, .. } => Some(call),
            Msg::Arrived { msg } => Some(msg.wait),
            _ => None,
        }
    }
}

// Bytes on the wire (see `dht`): a find-node carries a key, a delivery a key
// and a query's test message, and each message rides in a UDP datagram.
impl Message for Msg {
    const KINDS: &'static [&'static str] = &[
        "find_node",
        "nodes",
        "deliver",
        "delivered",
        "get_predecessor",
        "predecessor",
        "notify",
        "ping",
        "pong",
        "leave",
        "store",
        "route",
        "route_ack",
    ];
    fn kind(&self) -> usize {
        match self {
            Msg::FindNode { .. } => 0,
            Msg::Nodes { .. } => 1,
            Msg::Deliver { .. } => 2,
            Msg::Delivered { .. } | Msg::Arrived { .. } => 3,
            Msg::GetPredecessor { .. } => 4,
            Msg::Predecessor { .. } => 5,
            Msg::Notify { .. } => 6,
            Msg::Ping { .. } => 7,
            Msg::Pong { .. } => 8,
            Msg::LeavePred { .. } | Msg::LeaveSucc { .. } => 9,
            Msg::Store { .. } => 10,
            Msg::Route { .. } => 11,
            Msg::RouteAck { .. } => 12,
        }
    }
    fn query(&self) -> Option<QueryId> {
        match *self {
            Msg::FindNode { q, .. }
            | Msg::Nodes { q, .. }
            | Msg::Deliver { q, .. }
            | Msg::Delivered { q, .. }
            | Msg::RouteAck { q, .. } => q,
            Msg::Route { msg, .. } | Msg::Arrived { msg, .. } => msg.q,
            _ => None,
        }
    }
    fn size(&self) -> Option<u32> {
        let list = |n: usize| n as u32 * HANDLE;
        Some(
            HEADER
                + match self {
                    Msg::FindNode { dead, .. } => KEY + list(dead.len()),
                    Msg::Nodes { nodes, succs, .. } => 1 + list(nodes.len() + succs.len()),
                    Msg::Deliver { q: None, .. } | Msg::Deliver { op: Op::Get | Op::Find(_), .. } => KEY,
                    Msg::Deliver { .. } => KEY + KBR_PAYLOAD,
                    Msg::Delivered { got, .. } => HANDLE + got.reply,
                    Msg::GetPredecessor { .. } | Msg::Ping { .. } | Msg::Pong { .. } => 0,
                    Msg::Predecessor { succs, .. } => HANDLE + list(succs.len()),
                    Msg::Notify { .. } => HANDLE,
                    Msg::LeavePred { .. } => HANDLE,
                    Msg::LeaveSucc { succs } => list(succs.len()),
                    Msg::Store { items } => 4 + items.len() as u32 * ITEM,
                    // The key, the origin's handle and a hop count, and the
                    // test message or value.
                    Msg::Route { msg, .. } => {
                        let payload = msg.q.is_some() && matches!(msg.outcome.op, Op::Route | Op::Put);
                        // A range query's walk carries its ranges, where it
                        // stopped, and what it has collected.
                        let walk = match msg.outcome.op {
                            Op::Range { ranges, .. } => ranges as u32 * maan::RANGE_BYTES + KEY + msg.outcome.got.reply,
                            _ => 0,
                        };
                        KEY + HANDLE + 1 + walk + if payload { KBR_PAYLOAD } else { 0 }
                    }
                    Msg::RouteAck { .. } => 0,
                    Msg::Arrived { msg } => HANDLE + msg.outcome.got.reply,
                },
        )
    }
}

/// A node's periodic maintenance.
#[derive(Clone, Copy, Debug)]
pub enum Task {
    /// Stabilisation.
    Stabilize,
    /// Finger repair.
    FixFingers,
    /// The predecessor check.
    CheckPredecessor,
}

/// Chord's timers.
#[derive(Clone, Copy, Debug)]
pub enum Timer {
    /// Time for a task of maintenance.
    Every(Task),
    /// The reply from `target` to a call is overdue: it counts as dead.
    Timeout {
        /// The node called.
        target: NodeId,
        /// What the call was for.
        call: Call,
    },
    /// A join that found nobody tries again.
    Join,
}

/// The Chord protocol for one run.
pub struct Chord {
    params: Params,
    /// 2^bits − 1.
    mask: u64,
    /// Each node's identifier.
    id: Vec<u64>,
    /// Every node by identifier, ascending: the oracle's view of the ring.
    ring: Vec<(u64, NodeId)>,
    /// Where a key falls in `ring`, without a binary search of all of it.
    ring_index: dht::RingIndex,
    /// Successor lists, `successors` entries a node, `NONE` past the end.
    succ: Vec<u32>,
    /// Predecessors, `NONE` for none.
    pred: Vec<u32>,
    /// Finger tables, `bits` entries a node, `NONE` where unknown.
    finger: Vec<u32>,
    lookups: Lookups<Lookup>,
    /// Recursive lookups' messages sent on and not yet acknowledged.
    forwards: Lookups<Forward>,
    /// Nodes that have announced a graceful leave: they answer calls until they
    /// go, but run no maintenance of their own.
    leaving: Vec<bool>,
    /// Nodes on the ring: up, and joined. A node that is joining answers no
    /// call and runs no maintenance, as OverSim's Chord outside its READY state.
    ready: Vec<bool>,
    /// Nodes that have joined and not yet notified a successor.
    fresh: Vec<bool>,
    /// With storage: the keys each node holds.
    stores: Stores,
    stats: LookupStats,
    /// With attributes: MAAN's keys, plans and range queries in progress.
    maan: Option<Maan>,
}

impl Chord {
    fn r(&self) -> usize {
        self.params.successors as usize
    }

    fn m(&self) -> usize {
        self.params.bits as usize
    }

    /// Clockwise distance from `a` to `b` on the ring.
    #[inline]
    fn dist(&self, a: u64, b: u64) -> u64 {
        b.wrapping_sub(a) & self.mask
    }

    /// Whether the ring resolves MAAN range queries.
    fn walks(&self) -> bool {
        self.maan.is_some()
    }

    /// Whether `x` lies in the open interval (a, b) (all but `a` when a = b).
    #[inline]
    fn inside(&self, x: u64, a: u64, b: u64) -> bool {
        let d = self.dist(a, x);
        d != 0 && (a == b || d < self.dist(a, b))
    }

    /// Whether `x` lies in (a, b] (the whole ring when a = b).
    #[inline]
    fn inside_closed(&self, x: u64, a: u64, b: u64) -> bool {
        closed(self.mask, x, a, b)
    }

    /// The successor list of `v`, without empty entries.
    fn succs(&self, v: NodeId) -> Vec<NodeId> {
        let r = self.r();
        self.succ[v.index() * r..(v.index() + 1) * r].iter().take_while(|&&s| s != NONE).map(|&s| NodeId(s)).collect()
    }

    fn first_succ(&self, v: NodeId) -> Option<NodeId> {
        let s = self.succ[v.index() * self.r()];
        (s != NONE).then_some(NodeId(s))
    }

    /// Sets `v`'s successor list to `list` (without `v` and repeats), truncated to r.
    fn set_succs(&mut self, v: NodeId, list: impl IntoIterator<Item = NodeId>) {
        let r = self.r();
        let slots = &mut self.succ[v.index() * r..(v.index() + 1) * r];
        let mut n = 0;
        for s in list {
            if n == r {
                break;
            }
            if s != v && !slots[..n].contains(&s.0) {
                slots[n] = s.0;
                n += 1;
            }
        }
        slots[n..].fill(NONE);
    }

    fn pred_of(&self, v: NodeId) -> Option<NodeId> {
        let p = self.pred[v.index()];
        (p != NONE).then_some(NodeId(p))
    }

    /// The owner of `key` among the nodes on the ring (up, joined and not
    /// leaving), as an oracle sees it: OverSim's global list of active nodes.
    fn owner(&self, ctx: &Ctx<'_, Self>, key: u64) -> Option<NodeId> {
        let n = self.ring.len();
        let start = self.ring_index.position(&self.ring, key);
        (0..n)
            .map(|i| self.ring[(start + i) % n].1)
            .find(|&v| ctx.is_up(v) && self.ready[v.index()] && !self.leaving[v.index()])
    }

    /// What `x` answers for `key`: (true, its successor list) if the key lies
    /// between it and its successor, else (false, the nodes it knows that precede
    /// the key, closest first, at most `CANDIDATES`).
    fn step(&self, x: NodeId, key: u64, dead: &[NodeId], most: usize) -> (bool, Vec<NodeId>) {
        let me = self.id[x.index()];
        let Some(s) = self.first_succ(x) else {
            // Alone on the ring: it owns every key.
            return (true, vec![x]);
        };
        if self.inside_closed(key, me, self.id[s.index()]) {
            return (true, self.succs(x));
        }
        let usable = |f: u32| f != NONE && !dead.contains(&NodeId(f)) && self.inside(self.id[f as usize], me, key);
        let m = self.m();
        let r = self.r();
        // The successor list counts only when successor routing is on, or when no
        // finger precedes the key (all of them dead): the route must go on.
        let fingers = &self.finger[x.index() * m..(x.index() + 1) * m];
        let succs = &self.succ[x.index() * r..(x.index() + 1) * r];
        let use_succs = self.params.successor_routing || !fingers.iter().any(|&f| usable(f));
        let known = fingers.iter().chain(if use_succs { succs } else { &[] });
        // Most fingers repeat the one before (all those below the successor's
        // distance are the successor): a repeat adds nothing, so it is not weighed.
        let mut previous = NONE;
        let fresh = known.filter(move |&&f| std::mem::replace(&mut previous, f) != f);
        let closer = fresh.filter(|&&f| usable(f)).map(|&f| (self.dist(self.id[f as usize], key), f));
        if most > FEW {
            let mut closer: Vec<(u64, u32)> = closer.collect();
            closer.sort_unstable();
            closer.dedup();
            closer.truncate(most);
            return (false, closer.into_iter().map(|(_, f)| NodeId(f)).collect());
        }
        // The `most` closest, without repeats, kept in order as they come: the
        // same as sorting them all, without a list to sort.
        let mut top = [(0u64, NONE); FEW];
        let mut n = 0;
        for e in closer {
            let at = top[..n].partition_point(|&t| t < e);
            if at >= most || (at < n && top[at] == e) {
                continue;
            }
            let end = n.min(most - 1);
            top.copy_within(at..end, at + 1);
            top[at] = e;
            n = (n + 1).min(most);
        }
        (false, top[..n].iter().map(|&(_, f)| NodeId(f)).collect())
    }

    /// `v` has learnt that `dead` does not answer (or has left): out of its
    /// successor list and fingers; with storage, a node that has become one of
    /// its replicas gets copies of its keys.
    fn forget(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId, dead: NodeId) {
        let old = if self.stores_items() { self.replica_set(v) } else { Vec::new() };
        self.unlink(v, dead);
        if self.stores_items() {
            self.replicate_to_new(ctx, v, &old);
        }
    }

    /// `dead` out of `v`'s successor list, fingers and predecessor.
    fn unlink(&mut self, v: NodeId, dead: NodeId) {
        let r = self.r();
        let m = self.m();
        let list = &mut self.succ[v.index() * r..(v.index() + 1) * r];
        if let Some(i) = list.iter().position(|&s| s == dead.0) {
            list.copy_within(i + 1.., i);
            list[r - 1] = NONE;
        }
        for f in &mut self.finger[v.index() * m..(v.index() + 1) * m] {
            if *f == dead.0 {
                *f = NONE;
            }
        }
        if self.pred[v.index()] == dead.0 {
            self.pred[v.index()] = NONE;
        }
    }

    /// Starts `caller`'s timeout for a call to `target`; the reply cancels it.
    fn call(&self, ctx: &mut Ctx<'_, Self>, caller: NodeId, target: NodeId, call: Call) -> TimerId {
        ctx.set_timer(caller, self.params.rpc_timeout, Timer::Timeout { target, call })
    }

    fn start_lookup(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        origin: NodeId,
        key: u64,
        purpose: Purpose,
        op: Op,
        via: Option<NodeId>,
    ) {
        if purpose.query().is_none() {
            self.stats.maintenance_lookups += 1;
        }
        let lookup = Lookup {
            key,
            origin,
            purpose,
            outcome: Outcome::new(op),
            hops: 0,
            timeouts: 0,
            candidates: Vec::new(),
            asked: Vec::new(),
            failed: Vec::new(),
            best: None,
            best_failures: 0,
            owners: None,
            waiting: None,
        };
        let lid = self.lookups.insert(lookup);
        if self.params.routing == Routing::Recursive {
            // The origin waits for the result as long as a query may take.
            let wait = ctx.set_timer(origin, ctx.timeout(), Timer::Timeout { target: origin, call: Call::Result(lid) });
            self.lookups.get_mut(lid).waiting = Some(wait);
            let q = purpose.query();
            let msg = Routed {
                lid,
                origin,
                wait,
                key,
                q,
                hops: 0,
                timeouts: 0,
                last: false,
                outcome: Outcome::new(op),
                walked: 0,
            };
            match via {
                Some(b) => self.send_on(ctx, origin, b, msg, Vec::new()),
                None => self.route(ctx, origin, msg, Vec::new()),
            }
            return;
        }
        match via {
            // A joining node knows nobody but its contact.
            Some(b) => {
                let gap = self.gap(key, b);
                self.lookups.get_mut(lid).candidates.push((gap, b));
            }
            None => {
                // Its own table, whole: it needs no message to read it.
                let (done, nodes) = self.step(origin, key, &[], usize::MAX);
                if !done {
                    let succs = self.succs(origin);
                    self.closer(lid, origin, succs);
                }
                self.learn(lid, done, nodes);
            }
        }
        self.advance(ctx, lid);
    }

    /// Ends every lookup `v` has in progress and every message it was sending
    /// on, their pending calls cancelled, so that no answer to its past life
    /// reaches the node it is now.
    fn drop_lookups(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId) {
        for l in self.lookups.remove_where(|l| l.origin == v) {
            if let Some(id) = l.waiting {
                ctx.cancel_timer(id);
            }
        }
        for f in self.forwards.remove_where(|f| f.at == v) {
            if let Some(id) = f.call {
                ctx.cancel_timer(id);
            }
        }
        if let Some(m) = &mut self.maan {
            m.drop_from(v);
        }
    }

    /// `at` sends recursive lookup message `msg` on: to its successor if the key
    /// lies between them, else to the closest node it knows before the key (a
    /// get that has found nothing goes on along the successors); `dead` have
    /// not acknowledged it. With nowhere to go it is dropped, and the origin's
    /// wait runs out.
    fn route(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, mut msg: Routed, dead: Vec<NodeId>) {
        let next = if msg.outcome.tries > 0 {
            msg.last = true;
            self.succs(at).into_iter().find(|s| !dead.contains(s))
        } else {
            let (done, nodes) = self.step(at, msg.key, &dead, 1);
            if done && nodes == [at] {
                // Alone on the ring: it owns the key.
                return self.arrive(ctx, at, msg);
            }
            msg.last = done;
            nodes.into_iter().find(|s| !dead.contains(s))
        };
        if let Some(n) = next {
            self.send_on(ctx, at, n, msg, dead);
        }
    }

    /// `at` sends `msg` to `next` and waits for the acknowledgement.
    fn send_on(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, next: NodeId, msg: Routed, dead: Vec<NodeId>) {
        let fid = self.forwards.insert(Forward { at, msg, dead, call: None });
        let call = self.call(ctx, at, next, Call::Forward(fid));
        self.forwards.get_mut(fid).call = Some(call);
        ctx.send(at, next, Msg::Route { call, fid, msg });
    }

    /// Recursive lookup message `msg` is at `d`, the key's owner as the node
    /// before saw it: it acts on it, and tells the origin, unless it is a get
    /// that has found nothing and replicas remain to ask.
    fn arrive(&mut self, ctx: &mut Ctx<'_, Self>, d: NodeId, mut msg: Routed) {
        if let Op::Range { t, sub, .. } = msg.outcome.op {
            return self.walk(ctx, d, msg, t, sub as usize);
        }
        let got = self.receive(ctx, d, msg.key, msg.outcome.op, msg.origin);
        if msg.outcome.meet(got, self.params.replicas) {
            return self.route(ctx, d, msg, Vec::new());
        }
        self.answer_origin(ctx, d, msg);
    }

    /// Walk `sub` of a range query for `t` is at `d`: `d` collects the
    /// registrations of the walk's attribute it holds from where the walk
    /// stopped (the range's start, on the first node) up to its own
    /// identifier, or to the range's end if that comes first, and then sends
    /// the walk on to its successor, or, at the end, to the origin.
    fn walk(&mut self, ctx: &mut Ctx<'_, Self>, d: NodeId, mut msg: Routed, t: ResourceType, sub: usize) {
        let Some(m) = &self.maan else { return };
        let span = m.plan(t)[sub];
        let me = self.id[d.index()];
        let first = msg.outcome.tries == 0;
        let from = if first { span.lo.wrapping_sub(1) & self.mask } else { msg.walked };
        let last = self.inside_closed(span.hi, from, me);
        let end = if last { span.hi } else { me };
        // The query's collection, while its origin still waits for this walk.
        let rid = match self.lookups.try_get(msg.lid) {
            Some(l) if l.waiting == Some(msg.wait) => match l.purpose {
                Purpose::Range(_, rid) => Some(rid),
                _ => None,
            },
            _ => None,
        };
        let mask = self.mask;
        let found = match (rid, &mut self.maan) {
            (Some(rid), Some(m)) if from != end => {
                let held = self.stores.held(d).iter().copied();
                m.collect(rid, sub, held.filter(|&(k, _)| closed(mask, k, from, end)))
            }
            _ => 0,
        };
        if first {
            msg.outcome.first = Some(self.owner(ctx, span.lo) == Some(d));
        }
        msg.outcome.tries += 1;
        msg.outcome.got.named += found;
        msg.outcome.got.reply += found * HANDLE;
        if !last {
            msg.walked = me;
            return self.route(ctx, d, msg, Vec::new());
        }
        msg.outcome.got.found = true;
        self.answer_origin(ctx, d, msg);
    }

    /// `d`, where recursive message `msg` ends, tells its origin what it met
    /// (itself, if it is the origin and still waits).
    fn answer_origin(&mut self, ctx: &mut Ctx<'_, Self>, d: NodeId, msg: Routed) {
        if d != msg.origin {
            ctx.send(d, msg.origin, Msg::Arrived { msg });
        } else if ctx.cancel_timer(msg.wait) {
            self.arrived(ctx, msg, d);
        }
    }

    /// An iterative lookup for a range query's walk has found the first node
    /// of its arc, `d`: the origin sends it the walk, and waits for the end.
    fn start_walk(&mut self, ctx: &mut Ctx<'_, Self>, lid: u32, d: NodeId) {
        let l = self.lookups.get(lid);
        let (origin, key, q, hops, timeouts, outcome) =
            (l.origin, l.key, l.purpose.query(), l.hops, l.timeouts, l.outcome);
        let wait = ctx.set_timer(origin, ctx.timeout(), Timer::Timeout { target: origin, call: Call::Result(lid) });
        self.lookups.get_mut(lid).waiting = Some(wait);
        let msg = Routed { lid, origin, wait, key, q, hops, timeouts, last: true, outcome, walked: 0 };
        if d == origin {
            self.arrive(ctx, origin, msg);
        } else {
            self.send_on(ctx, origin, d, msg, Vec::new());
        }
    }

    /// The result of recursive lookup `msg`, from `d`, reaches its origin.
    fn arrived(&mut self, ctx: &mut Ctx<'_, Self>, msg: Routed, d: NodeId) {
        let l = self.lookups.get_mut(msg.lid);
        (l.hops, l.timeouts, l.outcome) = (msg.hops, msg.timeouts, msg.outcome);
        self.finish(ctx, msg.lid, Some(d));
    }

    /// Lookup `lid` has an answer: the key's successors, or nodes closer to it.
    fn learn(&mut self, lid: u32, done: bool, nodes: Vec<NodeId>) {
        let (mask, id) = (self.mask, &self.id);
        let l = self.lookups.get_mut(lid);
        let mut nodes = nodes;
        if l.purpose == Purpose::Join {
            // A node that rejoins may still be in others' tables: it looks for
            // the nodes around it, not for itself.
            nodes.retain(|&v| v != l.origin);
        }
        if done {
            l.owners = Some(nodes);
        } else {
            // Candidates stay sorted by distance to the key (then number).
            let key = l.key;
            for v in nodes {
                if !l.asked.contains(&v) && !l.candidates.iter().any(|&(_, c)| c == v) {
                    let entry = (key.wrapping_sub(id[v.index()]) & mask, v);
                    let at = l.candidates.partition_point(|&c| c < entry);
                    l.candidates.insert(at, entry);
                }
            }
        }
    }

    /// Distance from node `v` on to `key`.
    fn gap(&self, key: u64, v: NodeId) -> u64 {
        self.dist(self.id[v.index()], key)
    }

    /// `x` answered lookup `lid` with successor list `succs`: the best node yet if
    /// it is the closest to the key (or the best node answering again).
    fn closer(&mut self, lid: u32, x: NodeId, succs: Vec<NodeId>) {
        let l = self.lookups.get(lid);
        if l.best.as_ref().is_none_or(|(b, _)| self.gap(l.key, x) <= self.gap(l.key, *b)) {
            let l = self.lookups.get_mut(lid);
            l.best = Some((x, succs));
            l.best_failures = l.failed.len();
        }
    }

    /// Whether the best node of lookup `lid` now knows the key's owners: its
    /// successors up to the key were found dead, so the first one alive after
    /// them is the owner (ToN, section IV-E.3). If so they become the owners.
    fn owners_found(&mut self, lid: u32) -> bool {
        let l = self.lookups.get(lid);
        let Some((b, succs)) = &l.best else { return false };
        let live: Vec<NodeId> = succs.iter().copied().filter(|s| !l.failed.contains(s)).collect();
        let Some(&s) = live.first() else { return false };
        if !self.inside_closed(l.key, self.id[b.index()], self.id[s.index()]) {
            return false;
        }
        self.lookups.get_mut(lid).owners = Some(live);
        true
    }

    /// Takes lookup `lid` one call further: the next owner to deliver to, or the
    /// closest candidate to ask; ends it when it has none.
    fn advance(&mut self, ctx: &mut Ctx<'_, Self>, lid: u32) {
        loop {
            let l = self.lookups.get_mut(lid);
            let (origin, key, q, op) = (l.origin, l.key, l.purpose.query(), l.outcome.op);
            if let Some(owners) = &mut l.owners {
                if owners.is_empty() {
                    return self.finish(ctx, lid, None);
                }
                let d = owners.remove(0);
                if let Op::Range { .. } = op {
                    return self.start_walk(ctx, lid, d);
                }
                if d == origin {
                    let got = self.receive(ctx, origin, key, op, origin);
                    if self.delivered(ctx, lid, origin, got) {
                        continue;
                    }
                    return;
                }
                let call = self.call(ctx, origin, d, Call::Lookup(lid));
                self.lookups.get_mut(lid).waiting = Some(call);
                ctx.send(origin, d, Msg::Deliver { call, lid, key, q, op });
                return;
            }
            if !l.failed.is_empty() && self.owners_found(lid) {
                continue;
            }
            // The best node is asked again when every candidate closer than it
            // has failed since it answered, as a node in a recursive lookup
            // goes on with its next finger after a timeout.
            let l = self.lookups.get(lid);
            if let Some((b, _)) = l.best
                && l.failed.len() > l.best_failures
                && l.candidates.first().is_none_or(|&(gap, _)| gap > self.gap(key, b))
            {
                let dead = l.failed.clone();
                self.lookups.get_mut(lid).best_failures = dead.len();
                if b == origin {
                    let (done, nodes) = self.step(origin, key, &dead, usize::MAX);
                    self.learn(lid, done, nodes);
                    continue;
                }
                let call = self.call(ctx, origin, b, Call::Lookup(lid));
                self.lookups.get_mut(lid).waiting = Some(call);
                ctx.send(origin, b, Msg::FindNode { call, lid, key, q, dead });
                return;
            }
            let l = self.lookups.get_mut(lid);
            if l.candidates.is_empty() {
                return self.finish(ctx, lid, None);
            }
            let (_, c) = l.candidates.remove(0);
            l.asked.push(c);
            if c == origin {
                // The origin itself is the closest node known: it answers from its own table.
                let (done, nodes) = self.step(origin, key, &[], usize::MAX);
                self.learn(lid, done, nodes);
                continue;
            }
            let call = self.call(ctx, origin, c, Call::Lookup(lid));
            self.lookups.get_mut(lid).waiting = Some(call);
            ctx.send(origin, c, Msg::FindNode { call, lid, key, q, dead: Vec::new() });
            return;
        }
    }

    /// What `at` does with a lookup's message for `key` from `origin`, and what
    /// the message meets there: whether `at` owns the key (the oracle's
    /// verdict), and for a put, a get or a find what it now holds.
    fn receive(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, key: u64, op: Op, origin: NodeId) -> Found {
        let mut got = Found { correct: self.owner(ctx, key) == Some(at), ..Found::default() };
        match op {
            Op::Route => {}
            Op::Put => {
                let item = self.params.work().item(key, origin);
                self.put_item(ctx, at, item);
                got.found = true;
            }
            Op::Get | Op::Find(_) => got.read(&self.stores, ctx, at, key, op, origin),
            Op::Range { .. } => {}
        }
        got
    }

    /// Lookup `lid` was delivered to `d` (its owner if `got.correct`): it ends,
    /// unless it is a get or a find that found nothing and other replicas
    /// remain to ask (then true: it goes on).
    fn delivered(&mut self, ctx: &mut Ctx<'_, Self>, lid: u32, d: NodeId, got: Found) -> bool {
        let replicas = self.params.replicas;
        let l = self.lookups.get_mut(lid);
        if l.outcome.meet(got, replicas) && l.owners.as_ref().is_some_and(|o| !o.is_empty()) {
            return true;
        }
        self.finish(ctx, lid, Some(d));
        false
    }

    /// Lookup `lid` ends, its message delivered last to `reached` (or to
    /// nobody), and for a query a success if `ok`.
    fn finish(&mut self, ctx: &mut Ctx<'_, Self>, lid: u32, reached: Option<NodeId>) {
        let l = self.lookups.remove(lid);
        match l.purpose {
            Purpose::Query(q) => {
                let counted = ctx.issued(q) >= ctx.warmup();
                self.stats.end(counted, l.timeouts, l.outcome.first.map(|correct| (l.hops, correct)));
                let end = dht::QueryEnd { q, key: l.key, reached: reached.is_some(), hops: l.hops, outcome: l.outcome };
                end.report(ctx, &mut self.stats, &mut self.stores);
            }
            Purpose::Range(q, rid) => {
                let complete = reached.is_some() && l.outcome.got.found;
                let walked = l.outcome.tries;
                let Some(m) = &mut self.maan else { return };
                let Some(done) = m.end(rid, l.hops + walked, walked, complete) else { return };
                m.count(&done, ctx.issued(q) >= ctx.warmup());
                let live = done.named.iter().filter(|&&h| ctx.is_up(NodeId(h))).count() as u32;
                if !done.named.is_empty() {
                    ctx.report_answer(q, (live as usize) < done.named.len());
                }
                if done.complete && live > 0 {
                    ctx.report_hit(q, done.hops, live);
                }
            }
            Purpose::Publish | Purpose::Republish => {}
            Purpose::Repair(i) => {
                if let Some(d) = reached {
                    let m = self.m();
                    self.finger[l.origin.index() * m + i as usize] = d.0;
                }
            }
            Purpose::Join => match reached {
                Some(d) => {
                    self.ready[l.origin.index()] = true;
                    self.fresh[l.origin.index()] = true;
                    self.set_succs(l.origin, [d]);
                    if self.params.maintenance {
                        self.stabilize(ctx, l.origin);
                        self.fix_fingers(ctx, l.origin);
                    }
                    self.publish(ctx, l.origin);
                }
                None => {
                    // No contact answered: try again later through another, as
                    // OverSim's joinDelay.
                    ctx.set_timer(l.origin, dht::JOIN_DELAY, Timer::Join);
                }
            },
        }
    }

    fn stabilize(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId) {
        if let Some(s) = self.first_succ(v) {
            let call = self.call(ctx, v, s, Call::Stabilize);
            ctx.send(v, s, Msg::GetPredecessor { call });
        } else {
            // Every successor is gone: the node joins again, as OverSim's
            // Chord does when its successor list runs empty.
            self.rejoin(ctx, v);
        }
    }

    /// `v`, up, joins the ring: it looks up its own identifier through
    /// `contact`, or with none (no other node is up) it is the ring.
    fn join(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId, contact: Option<NodeId>) {
        self.ready[v.index()] = contact.is_none();
        if let Some(b) = contact {
            self.pred[v.index()] = NONE;
            let key = self.id[v.index()];
            self.start_lookup(ctx, v, key, Purpose::Join, Op::Route, Some(b));
        }
    }

    /// `v` joins again through a node up drawn at random.
    fn rejoin(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId) {
        let contact = ctx.contact(v);
        self.join(ctx, v, contact);
    }

    fn fix_fingers(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId) {
        let Some(s) = self.first_succ(v) else { return };
        let me = self.id[v.index()];
        let gap = self.dist(me, self.id[s.index()]);
        let m = self.m();
        for i in 0..m {
            let offset = 1u64 << i;
            if offset <= gap || gap == 0 {
                self.finger[v.index() * m + i] = s.0;
            } else {
                let key = me.wrapping_add(offset) & self.mask;
                self.start_lookup(ctx, v, key, Purpose::Repair(i as u8), Op::Route, None);
            }
        }
    }

    /// Starts `v`'s periodic maintenance, each timer at a phase of its own.
    fn schedule(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId) {
        if !self.params.maintenance {
            return;
        }
        for task in [Task::Stabilize, Task::FixFingers, Task::CheckPredecessor] {
            let phase = SimTime(ctx.rng().random_range(1..=self.period(task).0));
            ctx.set_timer(v, phase, Timer::Every(task));
        }
    }

    fn period(&self, task: Task) -> SimTime {
        match task {
            Task::Stabilize => self.params.stabilize,
            Task::FixFingers => self.params.fix_fingers,
            Task::CheckPredecessor => self.params.check_predecessor,
        }
    }

    /// Pings `v`'s predecessor.
    fn check_predecessor(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId) {
        if let Some(p) = self.pred_of(v) {
            let call = self.call(ctx, v, p, Call::CheckPredecessor);
            ctx.send(v, p, Msg::Ping { call });
        }
    }

    /// The successors that hold copies of the keys `v` owns: the first
    /// `replicas` − 1 of its successor list.
    fn replica_set(&self, v: NodeId) -> Vec<NodeId> {
        let mut set = self.succs(v);
        set.truncate(self.params.replicas as usize - 1);
        set
    }

    /// The items `v` holds with keys in (a, b] on the ring.
    fn keys_between(&self, v: NodeId, a: u64, b: u64) -> Vec<Item> {
        self.stores.select(v, |k| self.inside_closed(k, a, b))
    }

    /// Sends `items` to each of `to`, if there are any.
    fn store_at(ctx: &mut Ctx<'_, Self>, from: NodeId, to: &[NodeId], items: Vec<Item>) {
        if items.is_empty() {
            return;
        }
        for &s in to {
            ctx.send(from, s, Msg::Store { items: items.clone() });
        }
    }

    /// Whether nodes hold items (stored keys or resource registrations).
    fn stores_items(&self) -> bool {
        self.params.work().stores_items()
    }

    /// A put's `item` reaches `v`, its owner as the lookup found it: `v`
    /// stores it and copies it to its replicas.
    fn put_item(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId, item: Item) {
        self.stores.add(v, &[item]);
        for s in self.replica_set(v) {
            ctx.send(v, s, Msg::Store { items: vec![item] });
        }
    }

    /// With resources indexed: `v` registers every type it holds, each by a
    /// put of its registration under the type's key.
    fn publish(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId) {
        if let Some(m) = &self.maan {
            let keys: Vec<u64> = m.registrations(v).map(|(k, _)| k).collect();
            for key in keys {
                self.start_lookup(ctx, v, key, Purpose::Publish, Op::Put, None);
            }
            return;
        }
        if !self.params.resources {
            return;
        }
        for (key, _) in dht::registrations(ctx, [v], self.mask) {
            self.start_lookup(ctx, v, key, Purpose::Publish, Op::Put, None);
        }
    }

    /// `v`'s successor list changed from one whose replicas were `old`: each
    /// new replica gets copies of the keys `v` owns.
    fn replicate_to_new(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId, old: &[NodeId]) {
        let Some(p) = self.pred_of(v) else { return };
        let new: Vec<NodeId> = self.replica_set(v).into_iter().filter(|s| !old.contains(s)).collect();
        if !new.is_empty() {
            let keys = self.keys_between(v, self.id[p.index()], self.id[v.index()]);
            Self::store_at(ctx, v, &new, keys);
        }
    }

    /// `v` takes `p` as its predecessor in place of `old`. `p` gets the keys
    /// `v` holds outside `v`'s new range, (p, v]: those of `p`'s own range and
    /// of the ranges `p` replicates (with one replica they move: `v` keeps no
    /// copy). Unless `p` joined between `old` and `v`, `v`'s range has widened
    /// (its predecessor failed or left), and its replicas get its keys.
    fn new_predecessor(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId, old: Option<NodeId>, p: NodeId) {
        let (me, pid) = (self.id[v.index()], self.id[p.index()]);
        self.hand_over(ctx, v, p);
        if !old.is_some_and(|o| self.inside(pid, self.id[o.index()], me)) {
            let keys = self.keys_between(v, pid, me);
            Self::store_at(ctx, v, &self.replica_set(v), keys);
        }
    }

    /// `v` sends its predecessor `p` the items it holds outside its own range,
    /// (p, v] (with one replica they move: `v` keeps no copy).
    fn hand_over(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId, p: NodeId) {
        let (me, pid) = (self.id[v.index()], self.id[p.index()]);
        let theirs = self.stores.select(v, |k| !self.inside_closed(k, pid, me));
        if self.params.replicas == 1 {
            self.stores.drop_where(v, |item| theirs.binary_search(&item).is_ok());
        }
        Self::store_at(ctx, v, &[p], theirs);
    }

    /// The figures of its query lookups.
    pub fn stats(&self) -> &LookupStats {
        &self.stats
    }
}

impl Protocol for Chord {
    type Msg = Msg;
    type Timer = Timer;
    const CANCELS_TIMERS: bool = true;

    fn start(&mut self, ctx: &mut Ctx<'_, Self>) {
        if self.params.resources || self.walks() {
            ctx.answers_from_stored_state();
        }
        (self.id, self.ring) = dht::draw_ids(ctx.rng(), self.id.len(), self.mask);
        self.ring_index = dht::RingIndex::new(&self.ring, self.params.bits);
        // A ring that has been running: the nodes up, each with its exact tables.
        let up: Vec<(u64, NodeId)> = self.ring.iter().copied().filter(|&(_, v)| ctx.is_up(v)).collect();
        let k = up.len();
        let r = self.r();
        let m = self.m();
        for (i, &(me, v)) in up.iter().enumerate() {
            if k == 1 {
                break;
            }
            self.pred[v.index()] = up[(i + k - 1) % k].1.0;
            self.set_succs(v, (1..k.min(r + 1)).map(|j| up[(i + j) % k].1));
            // Fingers that start before the successor are the successor; only
            // the others need a search.
            let (next, gap) = (up[(i + 1) % k].1, self.dist(me, up[(i + 1) % k].0));
            for f in 0..m {
                let finger = if 1u64 << f <= gap {
                    next
                } else {
                    let key = me.wrapping_add(1u64 << f) & self.mask;
                    up[up.partition_point(|&(id, _)| id < key) % k].1
                };
                if finger != v {
                    self.finger[v.index() * m + f] = finger.0;
                }
            }
        }
        for &(_, v) in &up {
            self.ready[v.index()] = true;
            self.schedule(ctx, v);
        }
        if self.stores_items() && k > 0 {
            // Items stored before the run (keys, or every node's registrations),
            // each at its owner and the successors after it.
            let items = match &self.maan {
                Some(m) => up.iter().flat_map(|&(_, v)| m.registrations(v)).collect(),
                None => self.params.work().preloaded(ctx, &mut self.stores, self.params.stored_keys, &up, self.mask),
            };
            let copies = (self.params.replicas as usize).min(k);
            let up = &up;
            self.stores.place(items.into_iter().flat_map(|item| {
                let i = up.partition_point(|&(id, _)| id < item.0);
                (0..copies).map(move |j| (up[(i + j) % k].1, item))
            }));
        }
    }

    fn query(&mut self, ctx: &mut Ctx<'_, Self>, q: QueryId, origin: NodeId, want: ResourceType) {
        if let Some(m) = &mut self.maan {
            let counted = ctx.issued(q) >= ctx.warmup();
            let rid = m.begin(q, origin, want, counted);
            let plan = m.plan(want).to_vec();
            let ranges = m.carried(want);
            for (sub, span) in plan.iter().enumerate() {
                let op = Op::Range { t: want, sub: sub as u8, ranges };
                if self.ready[origin.index()] {
                    self.start_lookup(ctx, origin, span.lo, Purpose::Range(q, rid), op, None);
                } else if let Some(m) = &mut self.maan {
                    // A node still joining has no route: its walks fail.
                    if let Some(done) = m.end(rid, 0, 0, false) {
                        m.count(&done, counted);
                    }
                }
            }
            return;
        }
        let (key, op) = self.params.work().draw(ctx.rng(), &self.stores, want, self.mask);
        if ctx.issued(q) >= ctx.warmup() {
            self.stats.issue(op);
        }
        if !self.ready[origin.index()] {
            // A node still joining has no route: its lookup fails.
            return;
        }
        self.start_lookup(ctx, origin, key, Purpose::Query(q), op, None);
    }

    fn prefetch(&self, _: &Ctx<'_, Self>, at: NodeId, _: Ahead) {
        let (v, m, r) = (at.index(), self.m(), self.r());
        crate::base::prefetch(&self.ready, v);
        crate::base::prefetch(&self.id, v);
        crate::base::prefetch_range(&self.succ, v * r, (v + 1) * r);
        crate::base::prefetch_range(&self.finger, v * m, (v + 1) * m);
    }

    fn prefetch_near(&self, ctx: &Ctx<'_, Self>, _: NodeId, _: Ahead, msg: Option<&Msg>) {
        let Some(msg) = msg else { return };
        if let Some(call) = msg.answers() {
            ctx.prefetch_timer(call);
        }
        match msg {
            Msg::Nodes { lid, nodes, .. } => {
                self.lookups.prefetch(*lid);
                // The origin weighs each node named by its distance to the key.
                for v in nodes {
                    crate::base::prefetch(&self.id, v.index());
                }
            }
            Msg::Delivered { lid, .. } => self.lookups.prefetch(*lid),
            Msg::Arrived { msg } => self.lookups.prefetch(msg.lid),
            Msg::RouteAck { fid, .. } => self.forwards.prefetch(*fid),
            _ => {}
        }
    }

    fn message(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, from: NodeId, msg: Msg) {
        let answer = msg.answers().is_some();
        if !self.ready[at.index()] && !answer {
            // Off the ring, a node takes no call: the caller's timeout runs out.
            return;
        }
        match msg {
            Msg::FindNode { call, lid, key, q, dead } => {
                let (done, nodes) = self.step(at, key, &dead, CANDIDATES);
                let succs = if done { Vec::new() } else { self.succs(at) };
                ctx.send(at, from, Msg::Nodes { call, lid, q, done, nodes, succs });
            }
            // An answer counts only while its call's timeout is pending.
            Msg::Nodes { call, lid, done, nodes, succs, .. } => {
                if ctx.cancel_timer(call) {
                    self.lookups.get_mut(lid).hops += 1;
                    if !done {
                        self.closer(lid, from, succs);
                    }
                    self.learn(lid, done, nodes);
                    self.advance(ctx, lid);
                }
            }
            Msg::Deliver { call, lid, key, q, op } => {
                let got = self.receive(ctx, at, key, op, from);
                ctx.send(at, from, Msg::Delivered { call, lid, q, got });
            }
            Msg::Delivered { call, lid, got, .. } => {
                if ctx.cancel_timer(call) && self.delivered(ctx, lid, from, got) {
                    self.advance(ctx, lid);
                }
            }
            Msg::GetPredecessor { call } => {
                let pred = self.pred_of(at);
                ctx.send(at, from, Msg::Predecessor { call, pred, succs: self.succs(at) });
            }
            Msg::Predecessor { call, pred, succs } => {
                if !ctx.cancel_timer(call) {
                    return;
                }
                let me = self.id[at.index()];
                // Its predecessor, if closer, becomes the successor; then the
                // successor and its list, the last entry dropped.
                let closer = pred.filter(|&p| p != at && self.inside(self.id[p.index()], me, self.id[from.index()]));
                let old = if self.stores_items() { self.replica_set(at) } else { Vec::new() };
                self.set_succs(at, closer.into_iter().chain([from]).chain(succs));
                if self.stores_items() {
                    self.replicate_to_new(ctx, at, &old);
                }
                if let Some(s) = self.first_succ(at) {
                    let fresh = std::mem::take(&mut self.fresh[at.index()]);
                    ctx.send(at, s, Msg::Notify { fresh });
                }
            }
            Msg::Notify { fresh } => {
                let me = self.id[at.index()];
                let closer = match self.pred_of(at) {
                    None => true,
                    Some(p) => self.inside(self.id[from.index()], self.id[p.index()], me),
                };
                if closer && from != at {
                    let old = self.pred_of(at);
                    self.pred[at.index()] = from.0;
                    if self.stores_items() {
                        self.new_predecessor(ctx, at, old, from);
                    }
                } else if fresh && self.pred[at.index()] == from.0 && self.stores_items() {
                    // Its predecessor has come back with nothing, before this
                    // node noticed it gone: it gets its items again.
                    self.hand_over(ctx, at, from);
                }
                if self.first_succ(at).is_none() {
                    // A node alone learns of a second.
                    self.set_succs(at, [from]);
                }
            }
            Msg::Ping { call } => ctx.send(at, from, Msg::Pong { call }),
            Msg::Pong { call } => {
                ctx.cancel_timer(call);
            }
            Msg::LeavePred { pred } => {
                if self.pred[at.index()] == from.0 {
                    self.pred[at.index()] = pred.map_or(NONE, |p| p.0);
                    if let Some(p) = pred.filter(|_| self.stores_items()) {
                        // The leaver's range joins this node's: its replicas get it.
                        let keys = self.keys_between(at, self.id[p.index()], self.id[from.index()]);
                        Self::store_at(ctx, at, &self.replica_set(at), keys);
                    }
                }
                self.forget(ctx, at, from);
            }
            Msg::LeaveSucc { succs } => {
                let old = if self.stores_items() { self.replica_set(at) } else { Vec::new() };
                let mut list = self.succs(at);
                if let Some(i) = list.iter().position(|&s| s == from) {
                    list.truncate(i);
                    list.extend(succs);
                    self.set_succs(at, list);
                }
                self.unlink(at, from);
                if self.stores_items() {
                    self.replicate_to_new(ctx, at, &old);
                }
            }
            Msg::Store { items } => self.stores.add(at, &items),
            Msg::Route { call, fid, mut msg } => {
                ctx.send(at, from, Msg::RouteAck { call, fid, q: msg.q });
                if msg.last {
                    self.arrive(ctx, at, msg);
                } else {
                    msg.hops += 1;
                    self.route(ctx, at, msg, Vec::new());
                }
            }
            Msg::RouteAck { call, fid, .. } => {
                if ctx.cancel_timer(call) {
                    self.forwards.remove(fid);
                }
            }
            Msg::Arrived { msg } => {
                if ctx.cancel_timer(msg.wait) {
                    self.arrived(ctx, msg, from);
                }
            }
        }
    }

    fn timer(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, timer: Timer) {
        let leaving = self.leaving[at.index()];
        match timer {
            // A leaver's periods stop; a joining node keeps them but works
            // once it is on the ring.
            Timer::Every(_) if leaving => {}
            Timer::Every(task) => {
                if self.ready[at.index()] {
                    match task {
                        Task::Stabilize => self.stabilize(ctx, at),
                        Task::FixFingers => self.fix_fingers(ctx, at),
                        Task::CheckPredecessor => self.check_predecessor(ctx, at),
                    }
                }
                ctx.set_timer(at, self.period(task), timer);
            }
            Timer::Join => {
                if !self.ready[at.index()] && !leaving {
                    self.rejoin(ctx, at);
                }
            }
            Timer::Timeout { call: Call::Result(lid), .. } => self.finish(ctx, lid, None),
            Timer::Timeout { target, call } => {
                self.forget(ctx, at, target);
                match call {
                    Call::Lookup(lid) => {
                        let l = self.lookups.get_mut(lid);
                        l.timeouts += 1;
                        l.failed.push(target);
                        self.advance(ctx, lid);
                    }
                    // The next successor, at once.
                    Call::Stabilize => self.stabilize(ctx, at),
                    Call::CheckPredecessor => {}
                    Call::Forward(fid) => {
                        // On through the next finger or successor.
                        let Forward { mut msg, mut dead, .. } = self.forwards.remove(fid);
                        dead.push(target);
                        msg.timeouts += 1;
                        self.route(ctx, at, msg, dead);
                    }
                    Call::Result(_) => unreachable!("handled above"),
                }
            }
        }
    }

    fn joined(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId, bootstrap: Option<NodeId>) {
        // A rejoining node remembers nothing, however it went.
        self.drop_lookups(ctx, at);
        self.leaving[at.index()] = false;
        let (r, m) = (self.r(), self.m());
        self.succ[at.index() * r..(at.index() + 1) * r].fill(NONE);
        self.finger[at.index() * m..(at.index() + 1) * m].fill(NONE);
        self.pred[at.index()] = NONE;
        self.stores.clear(at);
        self.join(ctx, at, bootstrap);
        self.schedule(ctx, at);
    }

    fn leaving(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId) {
        self.leaving[at.index()] = true;
        let succs = self.succs(at);
        let pred = self.pred_of(at);
        if let Some(&s) = succs.first() {
            if self.stores_items() && self.params.replicas == 1 {
                // With no replicas, the leaver's keys go to its successor
                // (otherwise the successor holds copies already).
                ctx.send(at, s, Msg::Store { items: self.stores.held(at).to_vec() });
            }
            ctx.send(at, s, Msg::LeavePred { pred });
        }
        if let Some(p) = pred {
            ctx.send(at, p, Msg::LeaveSucc { succs });
        }
    }

    fn crashed(&mut self, ctx: &mut Ctx<'_, Self>, at: NodeId) {
        // Its lookups die with it.
        self.drop_lookups(ctx, at);
        self.ready[at.index()] = false;
        self.stores.clear(at);
    }

    fn changed(&mut self, ctx: &mut Ctx<'_, Self>, v: NodeId) {
        if self.ready[v.index()] {
            self.publish(ctx, v);
        }
    }

    fn state_bytes(&self) -> usize {
        self.id.capacity() * 8
            + self.ring.capacity() * 16
            + self.ring_index.bytes()
            + (self.succ.capacity() + self.pred.capacity() + self.finger.capacity()) * 4
            + self.lookups.bytes()
            + self.forwards.bytes()
            + self.stores.bytes()
            + self.maan.as_ref().map_or(0, Maan::bytes)
    }

    fn extra_metrics(&self, _: &Recorder, out: &mut Vec<Metric>) {
        self.stats.metrics(out);
        match &self.maan {
            Some(m) => m.metrics(out),
            None => out.extend(maan::COLUMNS.iter().map(|c| Metric::new(c.name, None))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamics::{Action, Choose, Dynamics, Fault, Victims};
    use crate::engine::{Rate, RunOutput, SimConfig, Simulation};
    use crate::validate::{Within, world};
    use crate::workload::{Workload, WorkloadSpec};
    use crate::world::TopologySpec;

    /// A Chord run on `n` nodes with `rate` lookups per second for `secs`,
    /// measured after `warmup`, under `dynamics`.
    fn run(
        n: u32,
        params: &Params,
        secs: u64,
        warmup: u64,
        rate: f64,
        dynamics: Dynamics,
        seed: u64,
    ) -> (RunOutput, Chord) {
        let w = world(&TopologySpec::Ring {}, n, 10, 1, 1, seed);
        let mut config = SimConfig::new(seed, SimTime::from_secs(secs));
        config.warmup = SimTime::from_secs(warmup);
        config.timeout = SimTime::from_secs(30);
        config.dynamics = dynamics;
        let spec = WorkloadSpec { rate: Rate(rate), ..Default::default() };
        let workload = Workload::new(&spec, n as usize, 1, config.duration, seed);
        Simulation::new(&w, params.build(&w), workload, &config).run_both()
    }

    /// `peergrid check`'s estimate of the calls and timers in flight covers what
    /// a run with OverSim's periods holds at its peak in the event list and the
    /// payload and timer slots, without being wildly above it.
    #[test]
    fn the_memory_estimate_covers_the_calls_in_flight() {
        let p = Params::default();
        let (n, rate, secs) = (4000, 4000.0 / 60.0, 300);
        let (out, _) = run(n, &p, secs, 0, rate, Dynamics::default(), 7);
        let figures =
            RunFigures { query_rate: rate, duration: SimTime::from_secs(secs), ..RunFigures::on_nodes(n as usize) };
        let parts = p.memory(&figures);
        let estimated = parts.iter().find(|m| m.what == "calls and timers in flight").map_or(0.0, |m| m.bytes);
        let held = (out.memory.event_list_bytes + out.memory.payload_bytes) as f64;
        assert!(estimated >= held && estimated < 3.0 * held, "estimated {estimated} B, held {held} B");
    }

    fn crash(at_s: u64, victims: Victims, recover_s: Option<u64>) -> Fault {
        Fault {
            at: SimTime::from_secs(at_s),
            action: Action::Crash { victims, recover: recover_s.map(SimTime::from_secs) },
        }
    }

    /// The nodes up by identifier, and whether each node's successor, successor
    /// list and predecessor are exactly right among them.
    fn ring_is_exact(c: &Chord, up: impl Fn(NodeId) -> bool) -> bool {
        let live: Vec<NodeId> = c.ring.iter().map(|&(_, v)| v).filter(|&v| up(v)).collect();
        let k = live.len();
        live.iter().enumerate().all(|(i, &v)| {
            let want: Vec<NodeId> = (1..k.min(c.r() + 1)).map(|j| live[(i + j) % k]).collect();
            c.succs(v) == want && c.pred_of(v) == Some(live[(i + k - 1) % k])
        })
    }

    #[test]
    fn the_mean_path_is_half_log2_n_by_fingers_alone() {
        // Stoica et al.: a lookup takes ½·log2 N hops on average, N a power of two or not.
        for n in [256u32, 1024, 3000] {
            let paths = crate::validate::chord_path_length(n, &[5, 6, 7, 8]);
            assert_eq!(paths.success, 1.0);
            let Within { got, want, tolerance } = paths.hops;
            assert!((got - want).abs() < tolerance, "N = {n}: {got:.3} hops against {want:.3}");
            assert_eq!(paths.timeouts, 0.0);
        }
    }

    #[test]
    fn recursive_lookups_take_the_same_path_in_fewer_message_delays() {
        // On a static ring both take the closest known node at every step; the
        // iterative origin waits for a round trip per hop, the recursive one for
        // a one-way trip per hop and the result.
        let iterative = Params { maintenance: false, ..Params::default() };
        let recursive = Params { routing: Routing::Recursive, ..iterative.clone() };
        let (a_out, a) = run(2000, &iterative, 100, 10, 20.0, Dynamics::default(), 12);
        let (b_out, b) = run(2000, &recursive, 100, 10, 20.0, Dynamics::default(), 12);
        assert_eq!(b_out.metric("success_rate"), Some(1.0));
        assert_eq!(a.stats().mean_hops(), b.stats().mean_hops());
        // 10 ms one way on the test world's ring: iterative 2·(h + 1), recursive h + 2.
        let h = b.stats().mean_hops().expect("hops");
        let (la, lb) = (a_out.metric("first_hit_latency_mean_ms"), b_out.metric("first_hit_latency_mean_ms"));
        let (la, lb) = (la.expect("latency"), lb.expect("latency"));
        assert!(lb < la * (h + 2.0) / (2.0 * h + 2.0) + 1.0, "recursive {lb} ms, iterative {la} ms, {h} hops");
    }

    #[test]
    fn successor_lists_shorten_the_last_hops() {
        let fingers = Params { maintenance: false, successor_routing: false, ..Params::default() };
        let both = Params { maintenance: false, ..Params::default() };
        let (_, a) = run(1024, &fingers, 100, 0, 20.0, Dynamics::default(), 3);
        let (_, b) = run(1024, &both, 100, 0, 20.0, Dynamics::default(), 3);
        let (a, b) = (a.stats().mean_hops().unwrap_or(0.0), b.stats().mean_hops().unwrap_or(0.0));
        assert!(b < a - 0.3, "fingers alone {a:.3}, with successors {b:.3}");
    }

    #[test]
    fn without_stabilisation_every_lookup_survives_half_the_nodes_crashing_with_more_timeouts() {
        // ToN, section V: N = 1,000, successor lists of 20, a fraction p of the
        // nodes fails at once and nothing repairs the tables; lookups go on
        // through the next finger or successor after each timeout.
        // Recursive lookups go on the same way, from the node whose next hop
        // did not acknowledge.
        for routing in [Routing::Iterative, Routing::Recursive] {
            let params = Params { maintenance: false, successors: 20, routing, ..Params::default() };
            let mut last = -1.0;
            for p in [0.0, 0.1, 0.3, 0.5] {
                let victims = Victims::Fraction { fraction: p, choose: Choose::Random };
                let faults = if p > 0.0 { vec![crash(5, victims, None)] } else { Vec::new() };
                let (out, c) = run(1000, &params, 100, 10, 10.0, Dynamics { faults, ..Dynamics::default() }, 11);
                assert_eq!(out.metric("success_rate"), Some(1.0), "{routing:?}, p = {p}");
                let timeouts = c.stats().timeouts_per_lookup().expect("lookups");
                assert!(timeouts > last, "{routing:?}, p = {p}: {timeouts} timeouts per lookup, {last} before");
                last = timeouts;
            }
            assert!(last > 1.0, "{routing:?}: {last}");
        }
    }

    #[test]
    fn stabilisation_repairs_the_ring_after_crashes() {
        // Every fifth node crashes at 50 s; by 300 s stabilisation has made every
        // successor list and predecessor exact again, and finger repair has
        // replaced every dead finger, so lookups meet no dead node.
        let dead: Vec<NodeId> = (0..500).step_by(5).map(NodeId).collect();
        let faults = vec![crash(50, Victims::Nodes(dead.clone()), None)];
        let (out, c) = run(500, &Params::default(), 400, 300, 5.0, Dynamics { faults, ..Dynamics::default() }, 5);
        assert_eq!(out.metric("success_rate"), Some(1.0));
        assert_eq!(c.stats().timeouts_per_lookup(), Some(0.0));
        assert!(ring_is_exact(&c, |v| !dead.contains(&v)));
    }

    #[test]
    fn under_continuous_churn_failed_lookups_rise_with_the_churn_rate() {
        for routing in [Routing::Iterative, Routing::Recursive] {
            failures_rise_with_churn(&Params { routing, ..Params::default() });
        }
    }

    fn failures_rise_with_churn(params: &Params) {
        // ToN, section V: nodes join and leave all the time while lookups go on;
        // stabilisation keeps up, so failures stay few, and grow with the rate.
        let mut last = -1.0;
        for minutes in [60.0, 10.0, 2.0] {
            let (out, c) = run(600, params, 400, 60, 20.0, dht::churn(minutes * 60.0), 4);
            let failed = 1.0 - out.metric("success_rate").expect("queries");
            assert!(failed > last, "sessions of {minutes} min: {failed} failed, {last} at the slower churn");
            if minutes == 60.0 {
                assert!(failed < 0.01, "{failed}");
            }
            assert!(failed < 0.3, "sessions of {minutes} min: {failed} failed");
            assert!(c.stats.lookups > 3_000, "{}", c.stats.lookups);
            last = failed;
        }
    }

    /// Storage on, with `replicas` copies of `keys` keys stored at the start and
    /// `put_share` of the queries puts.
    fn storing(replicas: u32, keys: u64, put_share: f64) -> Params {
        Params { storage: true, replicas, stored_keys: keys, put_share, ..Params::default() }
    }

    /// The keys each node up should hold with `replicas` copies: those from its
    /// `replicas`-th predecessor (exclusive) to itself, among the nodes up.
    fn placement(c: &Chord, keys: &[u64], replicas: usize, up: impl Fn(NodeId) -> bool) -> Vec<(NodeId, Vec<u64>)> {
        let live: Vec<(u64, NodeId)> = c.ring.iter().copied().filter(|&(_, v)| up(v)).collect();
        let k = live.len();
        live.iter()
            .enumerate()
            .map(|(i, &(me, v))| {
                let from = live[(i + k - replicas.min(k)) % k].0;
                let mut want: Vec<u64> = keys.iter().copied().filter(|&key| c.inside_closed(key, from, me)).collect();
                want.sort_unstable();
                want.dedup();
                (v, want)
            })
            .collect()
    }

    #[test]
    fn a_join_between_two_nodes_moves_exactly_the_keys_in_the_new_nodes_range() {
        // One copy of each key; node 17 is down at the start and joins at 50 s.
        // Before, every key is at its owner among the others; after, node 17
        // holds exactly the keys from its predecessor to itself, its successor
        // has lost exactly those, and no other node's keys have changed.
        let v = NodeId(17);
        let dynamics = dht::trace(vec![(SimTime::from_secs(50), v, true)], vec![v]);
        let (_, c) = run(100, &storing(1, 5_000, 0.0), 200, 0, 0.0, dynamics, 8);
        let keys = &c.stores.keys;
        let before = placement(&c, keys, 1, |u| u != v);
        let after = placement(&c, keys, 1, |_| true);
        let moved = after.iter().find(|(u, _)| *u == v).map(|(_, held)| held.clone()).unwrap_or_default();
        assert!(!moved.is_empty());
        for (u, want) in &after {
            let held: Vec<u64> = c.stores.held(*u).iter().map(|&(k, _)| k).collect();
            assert_eq!(held, *want, "node {u:?}");
            if let Some((_, had)) = before.iter().find(|(w, _)| w == u) {
                let lost: Vec<u64> = had.iter().copied().filter(|k| !want.contains(k)).collect();
                assert!(lost.is_empty() || lost == moved, "node {u:?} lost {} keys", lost.len());
            }
        }
        let held: usize = (0..100).map(|u| c.stores.held(NodeId(u)).len()).sum();
        assert_eq!(held, 5_000);
    }

    #[test]
    fn keys_survive_their_owners_crash_once_stabilisation_has_run() {
        // Three copies of each key; every fifth node on the ring (owners of some
        // keys, successors of the owners of others) crashes at 50 s. Once
        // stabilisation has run, every get finds its key, every put lands at the
        // key's owner, and each key stored at the start is again on its owner
        // and the two nodes after it. With one copy the crashed nodes' keys are lost.
        let (_, probe) = run(200, &storing(3, 0, 0.0), 1, 0, 0.0, Dynamics::default(), 6);
        let dead: Vec<NodeId> = probe.ring.iter().step_by(5).map(|&(_, v)| v).collect();
        let crash_at_50 =
            || Dynamics { faults: vec![crash(50, Victims::Nodes(dead.clone()), None)], ..Dynamics::default() };
        for routing in [Routing::Iterative, Routing::Recursive] {
            let params = Params { routing, ..storing(3, 2_000, 0.3) };
            let (out, c) = run(200, &params, 300, 150, 10.0, crash_at_50(), 6);
            let victims: Vec<NodeId> = c.ring.iter().step_by(5).map(|&(_, v)| v).collect();
            assert_eq!(victims, dead, "the victims are every fifth node");
            assert_eq!(out.metric("success_rate"), Some(1.0), "{routing:?}");
            assert!(c.stats.gets.0 > 500, "{:?}", c.stats.gets);
            let preloaded = &c.stores.keys[..2_000];
            for (v, want) in placement(&c, preloaded, 3, |u| !dead.contains(&u)) {
                let missing = want.iter().filter(|&&k| !c.stores.has(v, k)).count();
                assert_eq!(missing, 0, "{routing:?}: node {v:?} lacks {missing} of its {} keys", want.len());
            }
        }
        let (out, _) = run(200, &storing(1, 2_000, 0.0), 300, 150, 10.0, crash_at_50(), 6);
        let found = out.metric("success_rate").expect("gets");
        assert!((0.7..0.9).contains(&found), "one copy: {found} of the gets found their key");
    }

    #[test]
    fn range_queries_find_exactly_the_nodes_matching_every_range_however_resolved_and_routed() {
        // Single-attribute dominated walks the narrower range and filters by
        // the other; iterative walks both and intersects: the same answers,
        // and twice the walking for two ranges of equal width.
        let w = crate::validate::attribute_world(300, 40, 2, 0.1, 4);
        let mut walked = Vec::new();
        for attributes in [Resolution::SingleAttribute, Resolution::Iterative] {
            for routing in [Routing::Iterative, Routing::Recursive] {
                let params = Params { attributes, routing, maintenance: false, ..Params::default() };
                let config = SimConfig { timeout: SimTime::from_secs(60), ..SimConfig::new(4, SimTime::from_secs(60)) };
                let spec = WorkloadSpec { rate: Rate(10.0), ..Default::default() };
                let workload = Workload::new(&spec, 300, 40, config.duration, 4);
                let out = Simulation::new(&w, params.build(&w), workload, &config).run();
                assert!(out.recorder.queries.len() > 500);
                for q in &out.recorder.queries {
                    let matching = w.resources.holders(q.want).iter().filter(|&&h| h != q.origin).count();
                    assert_eq!(q.hits as usize, matching, "{attributes:?} {routing:?}: query for {:?}", q.want);
                }
                assert_eq!(out.metric("range_success"), Some(1.0));
                walked.push(out.metric("range_walk_mean").unwrap_or(f64::NAN));
            }
        }
        // Each walk visits 1 + N·s = 31 nodes on average.
        assert!(walked[..2].iter().all(|&x| (x - 31.0).abs() < 3.0), "{walked:?}");
        assert!(walked[2..].iter().all(|&x| (x - 62.0).abs() < 6.0), "{walked:?}");
    }

    #[test]
    fn range_registrations_follow_the_ring_through_joins_and_crashes() {
        // One attribute, ranges of 0.3: every query from 100 s on learns
        // exactly the matching nodes up, the joiner included.
        let w = crate::validate::attribute_world(100, 10, 1, 0.3, 3);
        for attributes in [Resolution::SingleAttribute, Resolution::Iterative] {
            for routing in [Routing::Iterative, Routing::Recursive] {
                let params = Params { attributes, routing, replicas: 3, ..Params::default() };
                dht::an_index_names_every_live_holder_in(&w, |w| params.build(w));
            }
        }
    }

    #[test]
    fn each_query_learns_every_live_holder_of_its_type_from_the_index_joiners_included() {
        for routing in [Routing::Iterative, Routing::Recursive] {
            let params = Params { resources: true, replicas: 3, routing, ..Params::default() };
            dht::an_index_names_every_live_holder(|w| params.build(w));
        }
    }

    #[test]
    fn an_index_node_that_rejoins_gets_its_registrations_back_however_soon() {
        // 200 nodes, 10 types of 20 holders. The owner of type 0's key
        // crashes at 100 s and comes back 2 s, 10 s or 200 s later (2 s: before
        // its successor's predecessor check notices it gone): by 600 s it and
        // its three replicas again hold all 20 registrations.
        let w = world(&TopologySpec::Ring {}, 200, 10, 10, 20, 3);
        let params = Params { resources: true, ..Params::default() };
        let run = |dynamics: Dynamics| {
            let mut config = SimConfig::new(3, SimTime::from_secs(600));
            config.dynamics = dynamics;
            let spec = WorkloadSpec { rate: Rate(0.0), ..Default::default() };
            let workload = Workload::new(&spec, 200, 10, config.duration, 3);
            Simulation::new(&w, params.build(&w), workload, &config).run_both().1
        };
        let c = run(Dynamics::default());
        let key = dht::resource_key(ResourceType(0), c.mask);
        let start = c.ring.partition_point(|&(id, _)| id < key);
        let owner = c.ring[start % 200].1;
        let held =
            |c: &Chord| (0..4).map(|i| c.stores.under(c.ring[(start + i) % 200].1, key).len()).collect::<Vec<_>>();
        assert_eq!(held(&c), [20; 4]);
        for back in [2, 10, 200] {
            let rows = vec![(SimTime::from_secs(100), owner, false), (SimTime::from_secs(100 + back), owner, true)];
            let c = run(dht::trace(rows, Vec::new()));
            assert_eq!(held(&c), [20; 4], "back after {back} s");
        }
    }

    #[test]
    fn a_node_that_rejoins_takes_its_place_between_its_neighbours() {
        let params = Params::default();
        let (_, c) = run(
            100,
            &params,
            200,
            0,
            0.0,
            Dynamics { faults: vec![crash(1, Victims::Nodes(vec![NodeId(7)]), Some(60))], ..Dynamics::default() },
            9,
        );
        assert!(ring_is_exact(&c, |_| true));
    }
}
