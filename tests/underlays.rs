//! Every latency model end to end through the library: a scenario names it, the
//! plan validates it (reading a matrix once for the whole sweep), and runs on it
//! finish, the same for the same seed.

use std::path::Path;
use std::sync::Arc;

use peergrid::experiment::execute;
use peergrid::scenario::plan_from_str;
use peergrid::world::LatencySpec;

const SCENARIO: &str = r#"name = "underlays-e2e"
seed = 11
duration = "20s"
warmup = "2s"

[network]
nodes = 600
topology = { kind = "random-regular", degree = 4 }

[resources]
types = 20
replicas = 12

[workload]
rate = "10/s"
timeout = "10s"

[protocol]
name = "flooding"
ttl = 4

[sweep]
"network.latency" = [
    { model = "constant", value = "20ms" },
    { model = "uniform", min = "10ms", max = "30ms" },
    { model = "euclidean", base = "5ms", per_unit = "100ms" },
    { model = "transit-stub" },
    { model = "matrix", file = "data/planetlab-rtt/PlanetLabData_1.tsv" },
    { model = "matrix", file = "data/planetlab-rtt/PlanetLabData_1.tsv", same_host = "2ms" },
]
"#;

#[test]
fn every_latency_model_runs_and_repeats_itself() {
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let plan = plan_from_str(SCENARIO, "underlays-e2e.toml", &scenarios, &[], None).expect("a valid scenario");
    let col = |m: &str| plan.metrics.iter().position(|x| x == m).expect("a metric");
    let (success, p50) = (col("success_rate"), col("first_hit_latency_p50_ms"));
    let mut medians = Vec::new();
    for point in &plan.points {
        let run = execute(&plan, point, 0).expect("runs");
        let again = execute(&plan, point, 0).expect("runs");
        assert_eq!(run.fingerprint, again.fingerprint, "point {}: same seed, same trace", point.index);
        assert_eq!(run.metrics, again.metrics);
        assert!(run.metrics[success].is_some_and(|s| s > 0.3), "point {}: {:?}", point.index, run.metrics[success]);
        medians.push(run.metrics[p50].expect("some hits"));
    }
    // Constant 20 ms: a hit h hops away answers after 2h × 20 ms.
    assert_eq!(medians[0] % 40.0, 0.0, "{medians:?}");
    // The mean latency every figure is based on: transit-stub's exact one, the matrix's mean.
    let mean = |i: usize| plan.points[i].scenario.network.latency.mean_s();
    assert!((mean(3) - 0.0586).abs() < 1e-4, "{}", mean(3));
    assert!((mean(4) - 0.0734).abs() < 1e-4, "{}", mean(4));
    // Both matrix points hold the one copy the plan read.
    let matrix = |i: usize| match &plan.points[i].scenario.network.latency {
        LatencySpec::Matrix(m) => Arc::clone(m.matrix().expect("loaded at validation")),
        other => panic!("point {i} is {other:?}"),
    };
    assert!(Arc::ptr_eq(&matrix(4), &matrix(5)));
    assert_eq!(matrix(4).hosts(), 490);
}
