//! End-to-end tests of the command line: every class of bad input exits 2 with a
//! message naming file, key path and line; results are byte-identical across
//! thread counts; the quickstart's event-trace fingerprint is pinned.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tempfile::TempDir;

fn peergrid() -> Command {
    Command::cargo_bin("peergrid").expect("binary built")
}

/// A small valid scenario to mutate.
const SMALL: &str = r#"name = "small"
seed = 7
duration = "20s"
warmup = "2s"
replicates = 2
sample_every = "2s"

[network]
nodes = 200
service_time = { dist = "exponential", mean = "1ms" }
topology = { kind = "random-regular", degree = 4 }
latency = { model = "uniform", min = "10ms", max = "30ms" }

[resources]
types = 20
replicas = 4

[workload]
rate = "30/s"
timeout = "3s"

[protocol]
name = "flooding"
ttl = 3

[sweep]
"workload.rate" = ["20/s", "60/s"]
protocol = [{ name = "central" }, { name = "flooding", ttl = 3 }]

[output]
queries = true
nodes = true
"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p
}

/// Runs `check` on `text` and returns stderr, asserting exit code 2.
fn bad(text: &str) -> String {
    let tmp = TempDir::new().unwrap();
    let file = write(tmp.path(), "s.toml", text);
    let out = peergrid().arg("check").arg(&file).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "expected exit 2, stderr: {err}");
    assert!(err.contains("s.toml"), "message must name the file: {err}");
    err
}

fn replace(from: &str, to: &str) -> String {
    assert!(SMALL.contains(from), "{from}");
    SMALL.replacen(from, to, 1)
}

/// The small scenario without its sweep, so that `[protocol]` is the one used.
fn unswept(from: &str, to: &str) -> String {
    let text = replace(from, to);
    let start = text.find("[sweep]").unwrap();
    let end = text.find("[output]").unwrap();
    format!("{}{}", &text[..start], &text[end..])
}

/// Asserts that `err` names the line of `text` that contains `needle`.
fn names_line(err: &str, text: &str, needle: &str) {
    let n = text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle} not in text")) + 1;
    assert!(err.contains(&format!("line {n},")) || err.contains(&format!("line {n}:")), "expected line {n}: {err}");
}

#[test]
fn the_small_scenario_is_valid() {
    let tmp = TempDir::new().unwrap();
    let file = write(tmp.path(), "s.toml", SMALL);
    let out = peergrid().arg("check").arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("4 points × 2 replicates = 8 runs"), "{text}");
}

#[test]
fn missing_file() {
    let out = peergrid().args(["check", "no/such/file.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no/such/file.toml") && err.contains("cannot read"), "{err}");
}

#[test]
fn toml_syntax_error_names_the_line() {
    let text = replace("ttl = 3\n", "ttl = = 3\n");
    let err = bad(&text);
    names_line(&err, &text, "ttl = = 3");
    assert!(err.contains("not valid TOML"), "{err}");
}

#[test]
fn unknown_key_names_key_and_line() {
    let text = replace("nodes = 200", "nodez = 200");
    let err = bad(&text);
    names_line(&err, &text, "nodez");
    assert!(err.contains("key `network.nodez`:") && err.contains("unknown key"), "{err}");
    let text = unswept("ttl = 3\n", "ttl = 3\ntll = 4\n");
    let err = bad(&text);
    names_line(&err, &text, "tll");
    assert!(err.contains("key `protocol.tll`:"), "{err}");
    let text = replace("[resources]\n", "[resource]\n");
    let err = bad(&text);
    names_line(&err, &text, "[resource]");
    assert!(err.contains("key `resource`:"), "{err}");
}

#[test]
fn wrong_type_names_key_and_line() {
    let text = replace("nodes = 200", "nodes = \"many\"");
    let err = bad(&text);
    names_line(&err, &text, "many");
    assert!(
        err.contains("`network.nodes`") && err.contains("found the string \"many\"; expected a non-negative integer"),
        "{err}"
    );
    let text = replace("duration = \"20s\"", "duration = 20");
    let err = bad(&text);
    names_line(&err, &text, "duration");
    assert!(err.contains("`duration`") && err.contains("has no unit"), "{err}");
    let text = replace("rate = \"30/s\"", "rate = \"fast\"");
    let err = bad(&text);
    names_line(&err, &text, "fast");
    assert!(err.contains("`workload.rate`") && err.contains("a rate such as"), "{err}");
    assert!(!err.contains("\nin `"), "{err}");
}

/// Runs `check` on SMALL with `--set` arguments and returns stderr, asserting exit code 2.
fn bad_set(sets: &[&str]) -> String {
    let tmp = TempDir::new().unwrap();
    let file = write(tmp.path(), "s.toml", SMALL);
    let mut cmd = peergrid();
    cmd.arg("check").arg(&file);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "expected exit 2, stderr: {err}");
    err
}

#[test]
fn messages_say_what_is_really_wrong() {
    let err = bad_set(&["duration=\"300000d\""]);
    assert!(err.contains("too long") && !err.contains("not a duration"), "{err}");
    let err = bad_set(&["protocol={name=\"flooding\", ttl=-1}"]);
    assert!(err.contains("protocol.ttl") && !err.contains("4294967295"), "{err}");
    let err = bad_set(&["network.topology={kind=\"random-regular\", degree=\"four\"}"]);
    assert!(err.contains("network.topology.degree"), "{err}");
    let err = bad_set(&["seed=99999999999999999999"]);
    assert!(err.contains("too large") && err.contains("2^63"), "{err}");
    let err = bad(&SMALL.replace("seed = 7", "seed = "));
    assert!(err.contains("line 2") && err.contains("`seed` has no value"), "{err}");
    let err = bad(&SMALL.replace("seed = 7", "seed = 99999999999999999999"));
    assert!(err.contains("line 2") && err.contains("too large"), "{err}");
}

#[test]
fn messages_name_no_rust_types() {
    for (set, expected) in [
        ("network.nodes=-1", "the integer -1 is out of range; expected a non-negative integer"),
        ("seed=\"x\"", "found the string \"x\"; expected a non-negative integer"),
        ("network=3", "found the integer 3; expected a table"),
        ("network.loss=\"x\"", "expected a number"),
        ("network.allow_disconnected=3", "expected true or false"),
        ("network.topology=3", "expected a table such as { kind = \"random-regular\", degree = 4 }"),
        ("network.topology.kind=ring", "unknown key `degree`: kind \"ring\" takes no other keys"),
        ("network.topology.kind=rign", "unknown value `rign`; expected one of `random-regular`"),
        ("network.latency.x=1", "unknown key `x`; expected"),
        ("plot=[3]", "found the integer 3; expected a table"),
        ("workload.script=3", "found the integer 3; expected a list"),
    ] {
        let err = bad_set(&[set]);
        assert!(err.contains(expected), "--set {set}: {err}");
        for rust in ["u32", "u64", "f64", "struct", "enum", "field", "sequence", "variant", "map"] {
            assert!(!err.contains(rust), "--set {set}: `{rust}` in {err}");
        }
    }
    let err = bad(&unswept(
        "name = \"flooding\"\nttl = 3\n",
        "name = \"superpeer\"\noverlay = { kind = \"ring\", degree = 4 }\n",
    ));
    assert!(
        err.contains("key `protocol.overlay.degree`: unknown key `degree`: kind \"ring\" takes no other keys"),
        "{err}"
    );
    let err = bad(&unswept("name = \"flooding\"\nttl = 3\n", "name = \"forwarding\"\nstrategy = 3\n"));
    assert!(err.contains("`protocol.strategy`: found the integer 3; expected a name in quotes"), "{err}");
}

#[test]
fn errors_in_a_set_value_name_the_set_not_a_line_of_the_file() {
    for (set, key, expected) in [
        ("network.node=100", "network.node", "unknown key `node`"),
        ("network.nodes=abc", "network.nodes", "expected a non-negative integer"),
        ("protocol={name=\"random-walk\", ttl=0}", "protocol.ttl", "expected ttl ≥ 1"),
        ("sample_every=0s", "sample_every", "above zero"),
        ("fault[0].at=5s", "fault[0].at", "the file has no `fault` entries to index"),
    ] {
        let err = bad_set(&[set]);
        assert!(err.contains(&format!("error: --set {set}, key `{key}`: ")) && err.contains(expected), "{err}");
        assert!(!err.contains("s.toml") && !err.contains("line"), "{err}");
    }
    // A key of the file made wrong by a --set beside it: the file's line, and the --set.
    let err = bad_set(&["network.topology.kind=ring"]);
    assert!(err.contains("s.toml, line 11, key `network.topology.degree`"), "{err}");
    assert!(err.contains("(with --set network.topology.kind=ring)"), "{err}");
}

#[test]
fn a_set_inside_a_swept_table_is_refused() {
    let err = bad_set(&["protocol.ttl=2"]);
    assert!(
        err.contains("--set protocol.ttl=2, key `protocol.ttl`")
            && err.contains("inside the swept table `protocol`")
            && err.contains("--set 'protocol={ name = \"flooding\", ttl = 2 }'"),
        "{err}"
    );
    let err = bad_set(&["protocol.overlay.degree=2"]);
    assert!(err.contains("inside the swept table `protocol`"), "{err}");
    let err = bad_set(&["workload.rate.x=2"]);
    assert!(err.contains("inside the swept key `workload.rate`"), "{err}");
    // Pinning the table first makes its keys settable again.
    let tmp = TempDir::new().unwrap();
    let file = write(tmp.path(), "s.toml", SMALL);
    let out = peergrid()
        .arg("check")
        .arg(&file)
        .args(["--set", "protocol={name=\"flooding\"}", "--set", "protocol.ttl=2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_plot_needs_a_numeric_x() {
    let text = format!(
        "{SMALL}\n[[plot]]\nx = \"workload.rate\"\ny = \"success_rate\"\n\n[[plot]]\ny = \"success_rate\"\nx = \"protocol.name\"\n"
    );
    let err = bad(&text);
    names_line(&err, &text, "x = \"protocol.name\"");
    assert!(
        err.contains("key `plot[1].x`")
            && err.contains("\"central\"")
            && err.contains("numeric parameter")
            && err.contains("`series`"),
        "{err}"
    );
    // A protocol without the key (central has no ttl) just has no points on such a plot.
    let tmp = TempDir::new().unwrap();
    let text = format!("{SMALL}\n[[plot]]\nx = \"protocol.ttl\"\ny = \"success_rate\"\n");
    let file = write(tmp.path(), "s.toml", &text);
    let out = peergrid().arg("check").arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn plots_along_a_pinned_key_are_dropped_with_a_note() {
    let tmp = TempDir::new().unwrap();
    let text = format!(
        "{SMALL}\n[[plot]]\nx = \"workload.rate\"\ny = \"success_rate\"\n\n[[plot]]\nx = \"workload.rate\"\ny = \"max_node_load\"\nseries = \"protocol.name\"\n"
    );
    let file = write(tmp.path(), "s.toml", &text);
    let out = peergrid().arg("check").arg(&file).args(["--set", "workload.rate=5/s"]).output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("note: plot[0], plot[1] are not drawn: --set workload.rate=5/s pins the parameter they vary"),
        "{err}"
    );
}

#[test]
fn a_reader_that_stops_early_ends_the_output_quietly() {
    let bin = assert_cmd::cargo::cargo_bin("peergrid");
    let tmp = TempDir::new().unwrap();
    let file = write(tmp.path(), "s.toml", SMALL);
    for args in [vec!["list".to_string()], vec!["check".to_string(), file.display().to_string()]] {
        // The reading end is closed before the command starts: its first line meets a broken pipe.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(&bin).args(&args).stdout(writer).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

#[test]
fn a_duplicate_table_is_named() {
    let text = format!("{SMALL}\n[network]\nnodes = 5\n");
    let err = bad(&text);
    assert_eq!(text.lines().filter(|l| *l == "[network]").count(), 2);
    let line = text.lines().enumerate().filter(|(_, l)| *l == "[network]").nth(1).unwrap().0 + 1;
    assert!(err.contains(&format!("line {line}:")) && err.contains("duplicate key `network`"), "{err}");
}

#[test]
fn values_out_of_range() {
    let text = replace("[network]\n", "[network]\nloss = 1.5\n");
    let err = bad(&text);
    names_line(&err, &text, "loss");
    assert!(err.contains("`network.loss`") && err.contains("0 ≤ loss < 1"), "{err}");
    let text = replace("degree = 4", "degree = 200");
    let err = bad(&text);
    names_line(&err, &text, "degree = 200");
    assert!(err.contains("`network.topology.degree`") && err.contains("1 ≤ degree < nodes"), "{err}");
    let err = bad(&replace("nodes = 200", "nodes = 201").replace("degree = 4", "degree = 3"));
    assert!(err.contains("`network.topology.degree`") && err.contains("odd"), "{err}");
    let text = unswept("ttl = 3\n", "ttl = 0\n");
    let err = bad(&text);
    names_line(&err, &text, "ttl = 0");
    assert!(err.contains("`protocol.ttl`") && err.contains("1 ≤ ttl"), "{err}");
    let text = unswept("name = \"flooding\"\nttl = 3\n", "name = \"gridnut\"\nwindow = \"20ms\"\nbatch = 0\n");
    let err = bad(&text);
    names_line(&err, &text, "batch = 0");
    assert!(err.contains("`protocol.batch`") && err.contains("1 ≤ batch"), "{err}");
    let text = unswept("name = \"flooding\"\nttl = 3\n", "name = \"superpeer\"\ncluster_size = 0\n");
    let err = bad(&text);
    names_line(&err, &text, "cluster_size = 0");
    assert!(err.contains("`protocol.cluster_size`") && err.contains("1 ≤ cluster_size ≤ nodes"), "{err}");
    // 200 nodes in clusters of 50 leave 4 super-peers: too few for a 4-regular overlay.
    let text = unswept(
        "name = \"flooding\"\nttl = 3\n",
        "name = \"superpeer\"\ncluster_size = 50\noverlay = { kind = \"random-regular\", degree = 4 }\n",
    );
    let err = bad(&text);
    names_line(&err, &text, "overlay = {");
    assert!(err.contains("`protocol.overlay.degree`") && err.contains("4 super-peers"), "{err}");
    let text = unswept("name = \"flooding\"\nttl = 3\n", "name = \"random-walk\"\nwalkers = 2000\n");
    let err = bad(&text);
    names_line(&err, &text, "walkers = 2000");
    assert!(err.contains("`protocol.walkers`") && err.contains("1 ≤ walkers ≤ 1024"), "{err}");
    let text = unswept("name = \"flooding\"\nttl = 3\n", "name = \"hierarchical\"\nfanout = 1\n");
    let err = bad(&text);
    names_line(&err, &text, "fanout = 1");
    assert!(err.contains("`protocol.fanout`") && err.contains("fanout ≥ 2"), "{err}");
    let text = replace("warmup = \"2s\"", "warmup = \"30s\"");
    let err = bad(&text);
    names_line(&err, &text, "warmup");
    assert!(err.contains("`warmup`"), "{err}");
    let err = bad(&replace("replicas = 4", "replicas = 500"));
    assert!(err.contains("`resources.replicas`") && err.contains("replicas ≤ nodes"), "{err}");
    let text = replace("sample_every = \"2s\"", "sample_every = \"0s\"");
    let err = bad(&text);
    names_line(&err, &text, "sample_every");
    assert!(err.contains("`sample_every`: expected an interval above zero"), "{err}");
}

#[test]
fn unknown_names_list_the_valid_ones() {
    let text = unswept("name = \"flooding\"\n", "name = \"flod\"\n");
    let err = bad(&text);
    names_line(&err, &text, "flod");
    assert!(
        err.contains("`protocol.name`")
            && err.contains("unknown protocol \"flod\"")
            && err.contains("central, hierarchical, flooding, gridnut, random-walk, forwarding, superpeer"),
        "{err}"
    );
    let text = replace("kind = \"random-regular\"", "kind = \"random-regualr\"");
    let err = bad(&text);
    names_line(&err, &text, "regualr");
    assert!(
        err.contains("`network.topology.kind`") && err.contains("random-regular") && err.contains("watts-strogatz"),
        "{err}"
    );
    let err = bad(&replace("model = \"uniform\"", "model = \"gauss\""));
    assert!(err.contains("`network.latency.model`") && err.contains("euclidean"), "{err}");
    let text = unswept("name = \"flooding\"\nttl = 3\n", "name = \"forwarding\"\nstrategy = \"smart\"\n");
    let err = bad(&text);
    names_line(&err, &text, "smart");
    assert!(
        err.contains("`protocol.strategy`")
            && err.contains("experience-random")
            && err.contains("experience-best-neighbour")
            && !err.contains("\nin `"),
        "{err}"
    );
    let text = replace("replicas = 4\n", "replicas = 4\nplacement = { geometric = 1.5 }\n");
    let err = bad(&text);
    names_line(&err, &text, "geometric");
    assert!(err.contains("`resources.placement`") && err.contains("0 < p < 1"), "{err}");
}

#[test]
fn a_bad_sweep_value_points_at_the_sweep() {
    let text = replace("{ name = \"central\" }", "{ name = \"centrall\" }");
    let err = bad(&text);
    names_line(&err, &text, "centrall");
    assert!(err.contains("`protocol.name`") && err.contains("sweep value"), "{err}");
    let text = replace("\"workload.rate\" = [\"20/s\", \"60/s\"]", "\"workload.rate\" = [\"20/s\", \"x\"]");
    let err = bad(&text);
    names_line(&err, &text, "\"x\"");
    assert!(err.contains("`workload.rate`") && err.contains("sweep value"), "{err}");
    let err = bad(&replace("\"workload.rate\" = [\"20/s\", \"60/s\"]", "\"workload.rate\" = []"));
    assert!(err.contains("sweep") && err.contains("non-empty list"), "{err}");
}

#[test]
fn edge_files_unreadable_or_malformed() {
    let err = bad(&replace(
        "topology = { kind = \"random-regular\", degree = 4 }",
        "topology = { kind = \"edges\", path = \"missing.txt\" }",
    )
    .replace("nodes = 200\n", ""));
    assert!(err.contains("`network.topology.path`") && err.contains("cannot read the edge file"), "{err}");
    let tmp = TempDir::new().unwrap();
    write(tmp.path(), "edges.txt", "# a comment\n0 1\n1 2\n2 x\n");
    let text = replace(
        "topology = { kind = \"random-regular\", degree = 4 }",
        "topology = { kind = \"edges\", path = \"edges.txt\" }",
    )
    .replace("nodes = 200\n", "");
    let file = write(tmp.path(), "s.toml", &text);
    let out = peergrid().arg("check").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("edges.txt:4") && err.contains("two non-negative integer node ids"), "{err}");
}

#[test]
fn latency_matrix_files_unreadable_or_malformed() {
    let with = |file: &str| {
        unswept(
            "latency = { model = \"uniform\", min = \"10ms\", max = \"30ms\" }",
            &format!("latency = {{ model = \"matrix\", file = \"{file}\" }}"),
        )
    };
    let err = bad(&with("missing.tsv"));
    assert!(
        err.contains("`network.latency.file`")
            && err.contains("cannot read the latency matrix")
            && err.contains("missing.tsv"),
        "{err}"
    );
    let tmp = TempDir::new().unwrap();
    write(tmp.path(), "rtt.tsv", "0\t12.5\t30\n12.5\t0\t-4\n30\t-4\t0\n");
    let text = with("rtt.tsv");
    let file = write(tmp.path(), "s.toml", &text);
    let out_dir = tmp.path().join("out");
    // Read when the scenario is checked, so a run stops before it starts.
    let check = peergrid().arg("check").arg(&file).output().unwrap();
    let run = peergrid().arg("run").arg(&file).arg("--out").arg(&out_dir).output().unwrap();
    for out in [check, run] {
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("rtt.tsv, line 2 (row 2), column 3: -4 is negative"), "{err}");
        assert!(err.contains("`network.latency.file`"), "{err}");
        names_line(&err, &text, "model = \"matrix\"");
        assert!(!out_dir.join("runs.csv").exists(), "nothing may be written");
    }
}

#[test]
fn an_edge_file_says_what_was_dropped() {
    let tmp = TempDir::new().unwrap();
    // 0-1-2-3 and 5-6 (a second component), a self-loop, an edge twice, a weight column.
    write(tmp.path(), "edges.txt", "0 1\n1 2 0.5\n2 3\n3 3\n2 1\n5 6\n");
    let text = replace(
        "topology = { kind = \"random-regular\", degree = 4 }",
        "topology = { kind = \"edges\", path = \"edges.txt\" }",
    )
    .replace("nodes = 200\n", "")
    .replace("replicas = 4", "replicas = 1");
    let file = write(tmp.path(), "s.toml", &text);
    let out = peergrid().arg("check").arg(&file).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("kept 4 of 6 nodes, the largest of 2 components")
            && err.contains("dropped 1 self-loop")
            && err.contains("dropped 1 duplicate edge")
            && err.contains("on 1 line"),
        "{err}"
    );
    // Super-peers build their own overlay: said where the edge file would mislead.
    let sp = write(
        tmp.path(),
        "sp.toml",
        &text
            .replace("name = \"flooding\"\nttl = 3", "name = \"superpeer\"\ncluster_size = 4\nttl = 1")
            .replace("protocol = [{ name = \"central\" }, { name = \"flooding\", ttl = 3 }]\n", ""),
    );
    let out = peergrid().arg("check").arg(&sp).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("superpeer does not route over network.topology"), "{err}");
}

#[test]
fn bad_set_and_flags() {
    let tmp = TempDir::new().unwrap();
    let file = write(tmp.path(), "s.toml", SMALL);
    let out = peergrid().arg("check").arg(&file).args(["--set", "network.nodes"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("key.path=value"));
    let out = peergrid().arg("check").arg(&file).args(["--set", "network.nodes=\"x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = peergrid().arg("check").arg(&file).args(["--set", "seed.x=1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = peergrid().arg("run").arg(&file).args(["--threads", "many"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = peergrid().args(["frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_existing_results_folder_is_not_overwritten_without_force() {
    let tmp = TempDir::new().unwrap();
    let file = write(tmp.path(), "s.toml", SMALL);
    let out_dir = tmp.path().join("out");
    fs::create_dir_all(&out_dir).unwrap();
    fs::write(out_dir.join("runs.csv"), "precious").unwrap();
    let out = peergrid().arg("run").arg(&file).arg("--out").arg(&out_dir).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(fs::read_to_string(out_dir.join("runs.csv")).unwrap(), "precious");
}

fn run(file: &Path, out: &Path, threads: &str) {
    let o = peergrid().arg("run").arg(file).arg("--out").arg(out).args(["--threads", threads]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn same_seed_same_bytes_for_any_thread_count() {
    let tmp = TempDir::new().unwrap();
    let file = write(tmp.path(), "s.toml", SMALL);
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    run(&file, &a, "1");
    run(&file, &b, "2");
    run(&file, &c, "2");
    for f in ["runs.csv", "summary.csv", "timeseries.csv", "distributions.csv", "queries.csv", "nodes.csv"] {
        let x = fs::read(a.join(f)).unwrap();
        assert!(x.len() > 100, "{f} is nearly empty");
        assert_eq!(x, fs::read(b.join(f)).unwrap(), "{f} differs between 1 and 2 threads");
        assert_eq!(x, fs::read(c.join(f)).unwrap(), "{f} differs between two runs");
    }
    let runs = fs::read_to_string(a.join("runs.csv")).unwrap();
    assert_eq!(runs.lines().count(), 9, "{runs}");
    assert!(a.join("plots").read_dir().unwrap().count() >= 2);
    // A different seed gives different results.
    let d = tmp.path().join("d");
    let o = peergrid().arg("run").arg(&file).arg("--out").arg(&d).args(["--seed", "8"]).output().unwrap();
    assert!(o.status.success());
    assert_ne!(fs::read(a.join("runs.csv")).unwrap(), fs::read(d.join("runs.csv")).unwrap());
}

#[test]
fn quickstart_event_trace_fingerprint_is_pinned() {
    let tmp = TempDir::new().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tmp.path().join("q");
    run(&root.join("scenarios/quickstart.toml"), &out, "2");
    let json: serde_json::Value = serde_json::from_str(&fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let pinned = fs::read_to_string(root.join("tests/quickstart.fingerprint")).unwrap();
    assert_eq!(
        json["event_trace_fingerprint"].as_str().unwrap(),
        pinned.trim(),
        "the quickstart's event trace changed; if intended, update tests/quickstart.fingerprint"
    );
    assert_eq!(json["runs"], 30);
}

#[test]
fn every_protocol_gives_the_same_bytes_for_any_thread_count_and_a_pinned_trace() {
    let tmp = TempDir::new().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The synergy sweep (all nine discovery protocols) cut down to 300 nodes.
    let shortened = |out: &Path, threads: &str| {
        let o = peergrid()
            .arg("run")
            .arg(root.join("scenarios/synergy.toml"))
            .arg("--out")
            .arg(out)
            .args(["--threads", threads])
            .args(["--set", "network.nodes=300", "--set", "resources.replicas=3", "--set", "workload.rate=20/s"])
            .args(["--set", "duration=4s", "--set", "warmup=1s", "--set", "replicates=2"])
            .args(["--set", "output.queries=true"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    shortened(&a, "1");
    shortened(&b, "2");
    for f in ["runs.csv", "summary.csv", "queries.csv", "timeseries.csv"] {
        let x = fs::read(a.join(f)).unwrap();
        assert!(x.len() > 100, "{f} is nearly empty");
        assert_eq!(x, fs::read(b.join(f)).unwrap(), "{f} differs between 1 and 2 threads");
    }
    let runs = fs::read_to_string(a.join("runs.csv")).unwrap();
    assert_eq!(runs.lines().count(), 1 + 9 * 2, "{runs}");
    let json: serde_json::Value = serde_json::from_str(&fs::read_to_string(a.join("run.json")).unwrap()).unwrap();
    let pinned = fs::read_to_string(root.join("tests/synergy.fingerprint")).unwrap();
    assert_eq!(
        json["event_trace_fingerprint"].as_str().unwrap(),
        pinned.trim(),
        "the event trace of some protocol changed; if intended, update tests/synergy.fingerprint"
    );
}

#[test]
fn set_overrides_and_pins_swept_keys() {
    let tmp = TempDir::new().unwrap();
    let file = write(tmp.path(), "s.toml", SMALL);
    let out = peergrid()
        .arg("check")
        .arg(&file)
        .args([
            "--set",
            "protocol={name=\"central\", index=5}",
            "--set",
            "network.nodes=300",
            "--set",
            "workload.rate=5/s",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 point × 2 replicates = 2 runs"), "{text}");
    assert!(text.contains("central\t300"), "{text}");
    assert!(!text.contains("flooding"), "{text}");
}

#[test]
fn list_and_validate() {
    let out = peergrid().arg("list").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in [
        "central",
        "flooding",
        "random-regular",
        "erdos-renyi",
        "barabasi-albert",
        "watts-strogatz",
        "ring",
        "edges",
        "euclidean",
        "ttl",
    ] {
        assert!(text.contains(name), "list lacks {name}");
    }
    let out = peergrid().arg("validate").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("50 checks, 0 failed") && text.contains("M/M/1"), "{text}");
    for check in [
        "chord mean lookup path",
        "kademlia path growth",
        "gossip averaging variance ratio",
        "gossip averaging keeps the sum",
        "forwarding hops",
        "MAAN range query cost",
    ] {
        assert!(text.contains(check), "validate lacks {check}: {text}");
    }
}

#[test]
fn the_real_gnutella_overlay_loads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = TempDir::new().unwrap();
    let text = SMALL.replace("nodes = 200\n", "").replace(
        "topology = { kind = \"random-regular\", degree = 4 }",
        &format!(
            "topology = {{ kind = \"edges\", path = \"{}\" }}",
            root.join("scenarios/data/p2p-gnutella08.txt").display()
        ),
    );
    let file = write(tmp.path(), "s.toml", &text);
    let out = peergrid().arg("check").arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\t6299\t"), "{text}");
    let overlay = peergrid::world::topology::load_edges(&root.join("scenarios/data/p2p-gnutella08.txt"), true).unwrap();
    assert_eq!(overlay.nodes(), 6299);
    assert!((overlay.mean_degree() - 6.6).abs() < 0.05, "{}", overlay.mean_degree());
}

const RESULT_FILES: [&str; 7] =
    ["runs.csv", "summary.csv", "timeseries.csv", "distributions.csv", "queries.csv", "nodes.csv", "perf.csv"];

/// Byte-identical seed-determined files (perf.csv only in its run keys and order).
fn same_results(a: &Path, b: &Path) {
    for f in RESULT_FILES {
        let (x, y) = (fs::read_to_string(a.join(f)).unwrap(), fs::read_to_string(b.join(f)).unwrap());
        if f == "perf.csv" {
            let keys =
                |t: &str| t.lines().map(|l| l.split(',').take(3).collect::<Vec<_>>().join(",")).collect::<Vec<_>>();
            let prints =
                |t: &str| t.lines().map(|l| l.rsplit(',').next().unwrap_or("").to_string()).collect::<Vec<_>>();
            assert_eq!(keys(&x), keys(&y), "perf.csv runs differ");
            assert_eq!(prints(&x), prints(&y), "event-trace fingerprints differ");
        } else {
            assert!(x == y, "{f} differs between {} and {}", a.display(), b.display());
        }
    }
}

/// `peergrid run FILE --out OUT --threads 1` in the background, to be killed.
fn spawn_run(file: &Path, out: &Path) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("peergrid"))
        .arg("run")
        .arg(file)
        .arg("--out")
        .arg(out)
        .args(["--threads", "1"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn an_interrupted_run_resumes_to_the_same_files() {
    let tmp = TempDir::new().unwrap();
    let text = SMALL.replace("replicates = 2", "replicates = 6").replace("duration = \"20s\"", "duration = \"60s\"");
    let file = write(tmp.path(), "s.toml", &text);
    let whole = tmp.path().join("whole");
    run(&file, &whole, "2");
    let part = tmp.path().join("part");
    let mut child = spawn_run(&file, &part);
    // Kill it once a few runs are on disk, well before the 24 it has to do.
    let started = std::time::Instant::now();
    loop {
        let rows = fs::read_to_string(part.join("runs.csv")).map(|t| t.lines().count()).unwrap_or(0);
        if rows >= 4 || started.elapsed().as_secs() > 120 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let kept = fs::read_to_string(part.join("runs.csv")).unwrap().lines().count() - 1;
    assert!((3..24).contains(&kept), "{kept} runs survived the kill");
    // Without --resume or --force the folder is protected.
    let o = peergrid().arg("run").arg(&file).arg("--out").arg(&part).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    // Its plots cannot be drawn yet: it says how to finish it.
    let o = peergrid().arg("plot").arg(&part).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not finished") && err.contains("--resume") && err.contains("peergrid run"), "{err}");
    let o = peergrid().arg("run").arg(&file).arg("--out").arg(&part).arg("--resume").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("{kept} already done")), "{err}");
    same_results(&whole, &part);
    // Resuming a complete folder runs nothing and changes nothing.
    let o = peergrid().arg("run").arg(&file).arg("--out").arg(&part).arg("--resume").output().unwrap();
    assert!(o.status.success());
    same_results(&whole, &part);
    // A different scenario cannot resume into it.
    let o =
        peergrid().arg("run").arg(&file).arg("--out").arg(&part).args(["--resume", "--seed", "99"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn resume_repairs_a_damaged_folder_and_keeps_its_intact_runs() {
    let tmp = TempDir::new().unwrap();
    let file = write(tmp.path(), "s.toml", SMALL);
    let whole = tmp.path().join("whole");
    run(&file, &whole, "2");
    let damaged = tmp.path().join("damaged");
    run(&file, &damaged, "2");
    let lines = |f: &str| fs::read_to_string(damaged.join(f)).unwrap().lines().map(String::from).collect::<Vec<_>>();
    let put = |f: &str, lines: &[String]| fs::write(damaged.join(f), lines.join("\n") + "\n").unwrap();
    // Two writers at once: a torn line, a row written twice, and a run whose two
    // runs.csv rows differ (it must run again).
    let mut runs = lines("runs.csv");
    let torn = runs[2][..runs[2].len() / 2].to_string();
    let twice = runs[3].clone();
    let mut differs = runs[4].clone();
    differs.push('7');
    runs.extend([torn, twice, differs]);
    put("runs.csv", &runs);
    let mut perf = lines("perf.csv");
    let second = perf[1].replacen(",0.", ",9.", 1);
    perf.push(second);
    put("perf.csv", &perf);
    // A power cut: the tail of timeseries.csv is lost, so its last run must run again.
    let series = lines("timeseries.csv");
    put("timeseries.csv", &series[..series.len() - 3]);
    // The same cut in distributions.csv hits the same (last) run.
    let dist = lines("distributions.csv");
    put("distributions.csv", &dist[..dist.len() - 2]);
    let o = peergrid().arg("run").arg(&file).arg("--out").arg(&damaged).arg("--resume").output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("1 finished run had rows missing") && err.contains("6 already done"), "{err}");
    same_results(&whole, &damaged);
}

#[test]
fn a_second_writer_of_a_results_folder_is_refused() {
    let tmp = TempDir::new().unwrap();
    let file = write(tmp.path(), "s.toml", &SMALL.replace("duration = \"20s\"", "duration = \"3000s\""));
    let out = tmp.path().join("out");
    let mut first = spawn_run(&file, &out);
    let started = std::time::Instant::now();
    while !out.join("run.json").exists() && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let second = peergrid().arg("run").arg(&file).arg("--out").arg(&out).arg("--resume").output().unwrap();
    let still_running = first.try_wait().unwrap().is_none();
    first.kill().unwrap();
    first.wait().unwrap();
    if still_running {
        assert_eq!(second.status.code(), Some(2));
        let err = String::from_utf8_lossy(&second.stderr);
        assert!(err.contains("is being written by another peergrid"), "{err}");
    }
    // Once the writer is gone (killed: the system releases its lock), resume completes it.
    let o = peergrid().arg("run").arg(&file).arg("--out").arg(&out).arg("--resume").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn shards_merge_into_the_single_machine_result() {
    let tmp = TempDir::new().unwrap();
    let file = write(tmp.path(), "s.toml", SMALL);
    let whole = tmp.path().join("whole");
    run(&file, &whole, "2");
    let mut shards = Vec::new();
    for i in 0..3 {
        let d = tmp.path().join(format!("shard{i}"));
        let o = peergrid()
            .arg("run")
            .arg(&file)
            .arg("--out")
            .arg(&d)
            .args(["--shard", &format!("{i}/3")])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        shards.push(d);
    }
    let merged = tmp.path().join("merged");
    let o = peergrid().arg("merge").args(&shards).arg("--out").arg(&merged).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    same_results(&whole, &merged);
    assert!(merged.join("plots").read_dir().unwrap().count() >= 4);
    // Two of three shards are not a whole run.
    let o = peergrid().arg("merge").args(&shards[..2]).arg("--out").arg(tmp.path().join("m2")).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("missing")
            && err.contains("shard 2/3 is not among the folders given")
            && err.contains("--shard 2/3")
            && !err.contains("--resume"),
        "{err}"
    );
    // The merged folder is protected, and merge takes no --resume.
    let o = peergrid().arg("merge").args(&shards).arg("--out").arg(&merged).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--force") && !err.contains("--resume"), "{err}");
    // Merging into one of the inputs would destroy it, even with --force.
    let o = peergrid().arg("merge").args(&shards).arg("--out").arg(&shards[0]).arg("--force").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("one of the folders to merge"));
    assert!(shards[0].join("scenario.toml").exists() && shards[0].join("runs.csv").exists());
    // Shards of another seed do not merge.
    let other = tmp.path().join("other");
    let o = peergrid()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(&other)
        .args(["--shard", "0/3", "--seed", "5"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let o =
        peergrid().arg("merge").arg(&shards[1]).arg(&other).arg("--out").arg(tmp.path().join("m3")).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = peergrid().arg("run").arg(&file).args(["--shard", "3/3"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn slurm_scripts_name_every_shard_and_the_merge() {
    let tmp = TempDir::new().unwrap();
    let file = write(tmp.path(), "s.toml", SMALL);
    let out = tmp.path().join("res");
    let o = peergrid()
        .arg("slurm")
        .arg(&file)
        .args(["--tasks", "4", "--time", "00:10:00"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let array = fs::read_to_string(out.join("slurm/array.sbatch")).unwrap();
    assert!(
        array.contains("#SBATCH --array=0-3")
            && array.contains("--shard \"$SLURM_ARRAY_TASK_ID/4\"")
            && array.contains("--resume")
    );
    assert!(array.contains("#SBATCH --time=00:10:00"));
    let merge = fs::read_to_string(out.join("slurm/merge.sbatch")).unwrap();
    for i in 0..4 {
        assert!(merge.contains(&format!("shards/{i}'")), "{merge}");
    }
    let submit = fs::read_to_string(out.join("slurm/submit.sh")).unwrap();
    assert!(submit.contains("--dependency=afterok:"));
    // Once a shard has run, scripts for another plan or task count are refused.
    let o =
        peergrid().arg("run").arg(&file).args(["--shard", "1/4", "--out"]).arg(out.join("shards/1")).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let slurm =
        |extra: &[&str]| peergrid().arg("slurm").arg(&file).arg("--out").arg(&out).args(extra).output().unwrap();
    assert!(slurm(&["--tasks", "4"]).status.success(), "the same plan may write its scripts again");
    for extra in [&["--tasks", "4", "--seed", "9"][..], &["--tasks", "3"][..]] {
        let o = slurm(extra);
        assert_eq!(o.status.code(), Some(2), "{extra:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("shards/1 holds results of"), "{extra:?}");
    }
}

#[test]
fn target_ci_adds_replicates_until_narrow_enough() {
    let tmp = TempDir::new().unwrap();
    let text = SMALL.replace(
        "[output]",
        "[target_ci]\nmetrics = [\"messages_per_query\"]\nfraction = 0.01\nmax_replicates = 9\n\n[output]",
    );
    let file = write(tmp.path(), "s.toml", &text);
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    run(&file, &a, "1");
    run(&file, &b, "2");
    same_results(&a, &b);
    let summary = fs::read_to_string(a.join("summary.csv")).unwrap();
    let mut widened = 0;
    for line in summary.lines().filter(|l| l.contains(",messages_per_query,")) {
        let f: Vec<&str> = line.split(',').collect();
        let n: u32 = f[f.len() - 1].parse().unwrap();
        let (mean, lo, hi): (f64, f64, f64) =
            (f[f.len() - 5].parse().unwrap(), f[f.len() - 3].parse().unwrap(), f[f.len() - 2].parse().unwrap());
        assert!((2..=9).contains(&n), "{line}");
        assert!(n == 9 || (hi - lo) / 2.0 <= 0.01 * mean.abs(), "{line}");
        widened += (n > 2) as u32;
    }
    assert!(widened > 0, "no point needed more replicates: {summary}");
}

#[test]
fn every_shipped_scenario_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut checked = 0;
    for entry in fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = peergrid().arg("check").arg(&path).output().unwrap();
            assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} scenarios");
}

#[test]
fn a_run_that_cannot_fit_in_memory_is_refused_before_it_starts() {
    let tmp = TempDir::new().unwrap();
    let text =
        unswept("topology = { kind = \"random-regular\", degree = 4 }", "topology = { kind = \"k-out\", k = 1000 }")
            .replace("nodes = 200", "nodes = 100000000");
    let file = write(tmp.path(), "s.toml", &text);
    let out_dir = tmp.path().join("out");
    let out = peergrid().arg("run").arg(&file).arg("--out").arg(&out_dir).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("needs about") && err.contains("GiB") && err.contains("reduce "), "{err}");
    assert!(!out_dir.join("runs.csv").exists(), "nothing may be written");
    // check refuses it as run does, with the same message.
    let checked = peergrid().arg("check").arg(&file).output().unwrap();
    assert_eq!(checked.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&checked.stderr), err);
    assert!(!String::from_utf8_lossy(&checked.stdout).contains("valid"));
}

#[test]
fn shipped_sweeps_run_end_to_end_when_shortened() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let tmp = TempDir::new().unwrap();
    for name in ["topologies", "ttl", "iamnitchi-foster", "lv-search", "gridnut", "superpeer", "underlays", "churn"] {
        let out = tmp.path().join(name);
        let o = peergrid()
            .arg("run")
            .arg(root.join(format!("{name}.toml")))
            .arg("--out")
            .arg(&out)
            .args(["--set", "duration=2s", "--set", "warmup=0s", "--set", "replicates=1"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(out.join("plots").read_dir().unwrap().count() >= 8, "{name}: plots missing");
    }
}

#[test]
fn a_point_whose_overlay_cannot_be_built_fails_but_keeps_the_others() {
    let tmp = TempDir::new().unwrap();
    // Mean degree 4 on 200 nodes passes the up-front check (about 4 isolated nodes
    // expected) but this seed's graph is disconnected; mean degree 3 is refused at once.
    let sweep = |c: &str| {
        unswept(
            "topology = { kind = \"random-regular\", degree = 4 }",
            "topology = { kind = \"erdos-renyi\", mean_degree = 3.0 }",
        )
        .replace("[output]", &format!("[sweep]\n\"network.topology.mean_degree\" = [{c}, 30.0]\n\n[output]"))
    };
    let err = bad(&sweep("3.0"));
    assert!(
        err.contains("`network.topology.mean_degree`") && err.contains("isolated") && err.contains("sweep value"),
        "{err}"
    );
    let text = sweep("4.0");
    let file = write(tmp.path(), "s.toml", &text);
    let out_dir = tmp.path().join("out");
    let o = peergrid().arg("run").arg(&file).arg("--out").arg(&out_dir).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("disconnected") && err.contains("allow_disconnected"), "{err}");
    let runs = fs::read_to_string(out_dir.join("runs.csv")).unwrap();
    assert_eq!(runs.lines().count(), 3, "the two runs of the good point are kept: {runs}");
    assert!(fs::read_to_string(out_dir.join("run.json")).unwrap().contains("\"incomplete\""));
}

#[test]
fn common_random_numbers_give_every_protocol_the_same_world_and_queries() {
    let tmp = TempDir::new().unwrap();
    let column = |dir: &Path, name: &str| -> Vec<(String, String, String)> {
        let text = fs::read_to_string(dir.join("runs.csv")).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let at = |c: &str| header.iter().position(|h| *h == c).unwrap();
        let (rate, rep, col) = (at("workload.rate"), at("replicate"), at(name));
        lines
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[rate].to_string(), f[rep].to_string(), f[col].to_string())
            })
            .collect()
    };
    let crn = write(tmp.path(), "crn.toml", &SMALL.replace("seed = 7\n", "seed = 7\ncommon_random_numbers = true\n"));
    let plain = write(tmp.path(), "plain.toml", SMALL);
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    run(&crn, &a, "2");
    run(&plain, &b, "2");
    // Rows come in (rate, protocol, replicate) order: central then flooding per rate.
    for (dir, shared) in [(&a, true), (&b, false)] {
        let queries = column(dir, "queries");
        let seeds = column(dir, "seed");
        for r in 0..2 {
            let (c, f) = (r, r + 2);
            assert_eq!(queries[c].0, queries[f].0);
            assert_eq!(seeds[c].2 == seeds[f].2, shared, "{dir:?} {seeds:?}");
            assert_eq!(queries[c].2 == queries[f].2, shared, "{dir:?} {queries:?}");
        }
    }
}

#[test]
fn diff_finds_a_changed_model_and_nothing_in_a_rerun() {
    let tmp = TempDir::new().unwrap();
    let file = write(tmp.path(), "s.toml", &SMALL.replace("replicates = 2", "replicates = 3"));
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    run(&file, &a, "2");
    run(&file, &b, "1");
    // The same scenario with a slower service time: the index saturates sooner.
    let slow = write(
        tmp.path(),
        "slow.toml",
        &SMALL.replace("replicates = 2", "replicates = 3").replace("mean = \"1ms\"", "mean = \"20ms\""),
    );
    run(&slow, &c, "2");
    let diff = |x: &Path, y: &Path, extra: &[&str]| peergrid().arg("diff").arg(x).arg(y).args(extra).output().unwrap();
    let same = diff(&a, &b, &["--fail-on", "success_rate", "first_hit_latency_p95_ms"]);
    let text = String::from_utf8_lossy(&same.stdout);
    assert!(same.status.success(), "{text}{}", String::from_utf8_lossy(&same.stderr));
    assert!(text.contains("0 of "), "{text}");
    assert!(b.join("diff/diff.csv").exists() && b.join("diff/plots").exists());
    let changed = diff(&a, &c, &["--fail-on", "first_hit_latency_p95_ms"]);
    assert_eq!(changed.status.code(), Some(1), "{}", String::from_utf8_lossy(&changed.stdout));
    assert!(String::from_utf8_lossy(&changed.stderr).contains("first_hit_latency_p95_ms changed significantly"));
    let csv = fs::read_to_string(c.join("diff/diff.csv")).unwrap();
    assert!(csv.lines().next().unwrap().contains("p_holm") && csv.contains(",true"), "{csv}");
    // Bad input is exit 2.
    assert_eq!(diff(&a, &c, &["--fail-on", "no_such_metric"]).status.code(), Some(2));
    assert_eq!(diff(&a, &c, &["--alpha", "2"]).status.code(), Some(2));
    assert_eq!(diff(&a, &tmp.path().join("missing"), &[]).status.code(), Some(2));
}

#[test]
fn attribute_mistakes_name_key_and_line() {
    let attrs = "types = 20\nattributes = [\n  { name = \"cores\", values = [1, 2, 4, 8] },\n  { name = \"memory_gb\", min = 1 },\n]\n";
    let text = replace("types = 20\nreplicas = 4\n", attrs);
    let err = bad(&text);
    names_line(&err, &text, "memory_gb");
    assert!(err.contains("resources.attributes[1].max") && err.contains("missing"), "{err}");
    let good = attrs.replace("min = 1 }", "min = 1, max = 64 }");
    let text = replace("types = 20\nreplicas = 4\n", &format!("{good}selectivity = 2\n"));
    let err = bad(&text);
    names_line(&err, &text, "selectivity = 2");
    assert!(err.contains("resources.selectivity") && err.contains("at most 1"), "{err}");
    let text = replace("types = 20\n", &good);
    let err = bad(&text);
    names_line(&err, &text, "replicas = 4");
    assert!(err.contains("resources.replicas") && err.contains("range query"), "{err}");
    let text = unswept("name = \"flooding\"\nttl = 3\n", "name = \"chord\"\nattributes = \"iterative\"\n");
    let err = bad(&text);
    names_line(&err, &text, "attributes = \"iterative\"");
    assert!(err.contains("protocol.attributes") && err.contains("[resources] attributes"), "{err}");
    // A file's bad row is named by file and line.
    let tmp = TempDir::new().unwrap();
    write(tmp.path(), "hosts.csv", "cores,memory_gb\n4,16\n8,sixteen\n");
    let text = replace("types = 20\nreplicas = 4\n", "types = 20\nattribute_file = \"hosts.csv\"\n");
    let file = write(tmp.path(), "s.toml", &text);
    let out = peergrid().arg("check").arg(&file).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("resources.attribute_file") && err.contains("hosts.csv line 3"), "{err}");
    // And a good one runs, MAAN against the central index on the same queries.
    write(tmp.path(), "hosts.csv", "cores,memory_gb\n4,16\n8,32\n1,2\n2,8\n");
    let text = unswept("name = \"flooding\"\nttl = 3\n", "name = \"chord\"\nattributes = \"single-attribute\"\n")
        .replace(
            "types = 20\nreplicas = 4\n",
            "types = 20\nattribute_file = \"hosts.csv\"\nquery_attributes = 2\nselectivity = 0.3\n",
        );
    let file = write(tmp.path(), "s.toml", &text);
    let out = peergrid().arg("run").arg(&file).arg("--out").arg(tmp.path().join("out")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let runs = fs::read_to_string(tmp.path().join("out/runs.csv")).unwrap();
    assert!(runs.lines().next().unwrap_or("").contains("range_hops_mean"), "{runs}");
}

#[test]
fn job_mistakes_name_key_and_line() {
    let tmp = TempDir::new().unwrap();
    let jobs = "[jobs]\nrate = \"0.1/s\"\nnode_cores = { values = [1, 2], weights = [1] }\n";
    let text = unswept("[protocol]\n", &format!("{jobs}\n[protocol]\n"))
        .replace("[resources]\ntypes = 20\nreplicas = 4\n", "");
    let err = bad(&text);
    names_line(&err, &text, "node_cores");
    assert!(err.contains("jobs.node_cores") && err.contains("one per value"), "{err}");
    // [resources] keys make no sense with jobs.
    let good = jobs.replace(", weights = [1]", "");
    let text = unswept("[protocol]\n", &format!("{good}\n[protocol]\n"));
    let err = bad(&text);
    assert!(err.contains("resources.types") && err.contains("[jobs]"), "{err}");
    // A trace's malformed record is named by file and line.
    write(tmp.path(), "log.swf", "; a header\n1 0 -1 60 1 -1 -1 -1 -1 -1 1 1 1 -1 -1 1 -1 -1\n2 5 -1 sixty 1\n");
    let traced = format!("{good}trace = \"log.swf\"\n");
    let text = unswept("[protocol]\n", &format!("{traced}\n[protocol]\n"))
        .replace("[resources]\ntypes = 20\nreplicas = 4\n", "");
    let file = write(tmp.path(), "s.toml", &text);
    let out = peergrid().arg("check").arg(&file).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("jobs.trace") && err.contains("log.swf line 3"), "{err}");
    // A good trace runs, and jobs.csv has a row per job.
    write(
        tmp.path(),
        "log.swf",
        "; a header\n1 0 -1 60 1 -1 -1 -1 -1 -1 1 1 1 -1 -1 1 -1 -1\n2 5 -1 30 2 -1 -1 -1 -1 -1 1 1 1 -1 -1 2 -1 -1\n",
    );
    let text = text.replace("[output]\n", "[output]\njobs = true\n");
    let file = write(tmp.path(), "s.toml", &text);
    let out = peergrid().arg("run").arg(&file).arg("--out").arg(tmp.path().join("out")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let jobs_csv = fs::read_to_string(tmp.path().join("out/jobs.csv")).unwrap();
    // Two replicates of two jobs, and a header.
    assert_eq!(jobs_csv.lines().count(), 5, "{jobs_csv}");
    let runs = fs::read_to_string(tmp.path().join("out/runs.csv")).unwrap();
    assert!(runs.lines().next().unwrap_or("").contains("job_wait_mean_s"), "{runs}");
}
