//! Property test: no scenario text, however mangled, makes peergrid panic. Each
//! case mutates a valid scenario (values replaced by hostile tokens, lines deleted,
//! duplicated, swapped, garbage inserted) and must either be rejected with an
//! `InputError` or be valid; small valid ones are also built and run.

use std::path::Path;

use peergrid::experiment::execute;
use peergrid::experiment::memory::estimate;
use peergrid::protocols::PROTOCOLS;
use peergrid::scenario::plan_from_str;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

const BASE: &str = r#"name = "fuzz"
seed = 3
duration = "5s"
warmup = "1s"
replicates = 1
sample_every = "1s"
[network]
nodes = 60
service_time = { dist = "exponential", mean = "1ms" }
loss = 0.1
topology = { kind = "watts-strogatz", degree = 4, rewire = 0.2 }
latency = { model = "euclidean", base = "5ms", per_unit = "50ms" }
[resources]
types = 10
replicas = 3
placement = { zipf = 1.0 }
[workload]
rate = "20/s"
popularity = { zipf = 0.8 }
timeout = "2s"
script = [{ at = "1s", origin = 3, type = 2 }]
[protocol]
name = "flooding"
ttl = 3
[sweep]
"protocol" = [{ name = "central", index = 1 }, { name = "flooding", ttl = 2 }]
[[plot]]
x = "protocol.ttl"
y = "success_rate"
[output]
queries = true
"#;

const TOKENS: &[&str] = &[
    "0",
    "-1",
    "1",
    "2",
    "3",
    "7",
    "255",
    "256",
    "4294967296",
    "18446744073709551615",
    "1e309",
    "-0.0",
    "0.5",
    "1.0",
    "nan",
    "inf",
    "\"\"",
    "\"x\"",
    "\"0s\"",
    "\"-5s\"",
    "\"1e30h\"",
    "\"1ns\"",
    "\"0/s\"",
    "\"1e12/s\"",
    "\"5/0s\"",
    "true",
    "[]",
    "[1, \"a\"]",
    "{}",
    "{ kind = \"ring\" }",
    "{ kind = \"edges\", path = \"/nonexistent\" }",
    "{ kind = \"random-regular\", degree = 59 }",
    "{ kind = \"erdos-renyi\", mean_degree = 0.01 }",
    "{ kind = \"barabasi-albert\", m = 59 }",
    "{ zipf = -1 }",
    "{ zipf = 50 }",
    "{ dist = \"exponential\" }",
    "{ dist = \"exponential\", mean = \"0s\" }",
    "{ model = \"uniform\", min = \"9ms\", max = \"1ms\" }",
    "{ name = \"central\", index = 999 }",
    "{ name = \"forwarding\", strategy = \"smart\" }",
    "{ name = \"forwarding\", strategy = \"best-neighbour\", ttl = 0 }",
    "{ geometric = 1 }",
    "\"balanced\"",
    "[{ at = \"0s\", origin = 59, type = 9 }]",
    "[{ at = \"9s\", origin = 0, type = 0 }]",
    "\"uniform\"",
    "1979-05-27T07:32:00Z",
];

#[derive(Debug, Clone)]
enum Op {
    Value(usize, usize),
    Delete(usize),
    Duplicate(usize),
    Swap(usize, usize),
    Garbage(usize, String),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<usize>(), 0..TOKENS.len()).prop_map(|(l, t)| Op::Value(l, t)),
        1 => any::<usize>().prop_map(Op::Delete),
        1 => any::<usize>().prop_map(Op::Duplicate),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::Swap(a, b)),
        1 => (any::<usize>(), "[ -~\n]{0,12}").prop_map(|(l, g)| Op::Garbage(l, g)),
    ]
}

fn mutate(ops: &[Op]) -> String {
    let mut lines: Vec<String> = BASE.lines().map(String::from).collect();
    for op in ops {
        let n = lines.len().max(1);
        match op {
            Op::Value(l, t) => {
                let line = &mut lines[l % n];
                if let Some((k, _)) = line.split_once(" = ") {
                    *line = format!("{k} = {}", TOKENS[*t]);
                }
            }
            Op::Delete(l) if !lines.is_empty() => {
                lines.remove(l % n);
            }
            Op::Duplicate(l) if !lines.is_empty() => {
                let dup = lines[l % n].clone();
                lines.insert(l % n, dup);
            }
            Op::Swap(a, b) if !lines.is_empty() => lines.swap(a % n, b % n),
            Op::Garbage(l, g) if !lines.is_empty() => {
                let line = &mut lines[l % n];
                let at = line.char_indices().map(|(i, _)| i).nth(l % (line.chars().count() + 1)).unwrap_or(line.len());
                line.insert_str(at, g);
            }
            _ => {}
        }
    }
    lines.join("\n")
}

/// Runs larger than this are refused by `peergrid run` on a small machine, so the
/// test leaves them out as the command would.
const MEMORY_BUDGET: u64 = 512 << 20;

fn exercise(text: &str) {
    let Ok(plan) = plan_from_str(text, "fuzz.toml", Path::new("."), &[], None) else {
        return;
    };
    for point in &plan.points {
        let s = &point.scenario;
        let small = s.network.nodes.is_some_and(|n| n <= 500)
            && estimate(&point.scenario).total() <= MEMORY_BUDGET
            && s.duration.as_secs_f64() <= 100.0
            && s.workload.rate.per_second() * s.duration.as_secs_f64() <= 2_000.0
            && s.workload.timeout.as_secs_f64() <= 100.0;
        if small {
            let _ = execute(&plan, point, 0);
        }
    }
}

proptest! {
    // A fixed seed: the same cases on every run, so a failure reproduces.
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x9e37_79b9),
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_scenarios_never_panic(ops in prop::collection::vec(op(), 1..4)) {
        exercise(&mutate(&ops));
    }

    #[test]
    fn arbitrary_text_never_panics(text in "[ -~\n]{0,200}") {
        exercise(&text);
    }

    #[test]
    fn any_protocol_with_hostile_parameters_never_panics(
        which in 0..PROTOCOLS.len(),
        values in prop::collection::vec((any::<bool>(), 0..TOKENS.len()), 8),
    ) {
        exercise(&with_protocol(which, &values));
    }
}

/// The base scenario, unswept, with protocol `which` and each of its parameters
/// either left out or set to a hostile token.
fn with_protocol(which: usize, values: &[(bool, usize)]) -> String {
    let info = &PROTOCOLS[which];
    let mut table = format!("[protocol]\nname = \"{}\"\n", info.name);
    for (doc, (set, token)) in info.params.iter().zip(values) {
        if *set {
            table.push_str(&format!("{} = {}\n", doc.key, TOKENS[*token]));
        }
    }
    let head = &BASE[..BASE.find("[protocol]").unwrap_or(BASE.len())];
    format!("{head}{table}")
}

#[test]
fn the_base_scenario_is_valid_and_runs() {
    let plan = plan_from_str(BASE, "fuzz.toml", Path::new("."), &[], None).unwrap();
    assert_eq!(plan.points.len(), 2);
    for p in &plan.points {
        let r = execute(&plan, p, 0).unwrap();
        assert!(r.events > 0);
    }
}

#[test]
fn every_protocol_with_its_defaults_is_valid_and_runs() {
    for (which, info) in PROTOCOLS.iter().enumerate() {
        let mut text = with_protocol(which, &[]);
        if info.name == "aggregation" {
            // Its 30 default cycles of 1 s must fit the run.
            text = text.replace("duration = \"5s\"", "duration = \"31s\"");
        }
        let plan = plan_from_str(&text, "fuzz.toml", Path::new("."), &[], None)
            .unwrap_or_else(|e| panic!("{}: {e}", info.name));
        let r = execute(&plan, &plan.points[0], 0).unwrap();
        assert!(r.events > 0, "{}", info.name);
    }
}
