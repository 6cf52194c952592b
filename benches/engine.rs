//! Throughput benchmarks: the event lists under the hold model at 10^3, 10^5 and
//! 10^6 pending events; the whole engine against a plain BinaryHeap loop; a flooding
//! query wave on 10^5 nodes; one aggregation cycle on 10^6 nodes. `peergrid bench`
//! prints the same kind of figures as ratios measured in one process.

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use peergrid::bench::{QUEUES, aggregation_cycles, flooding_wave, hold_engine};
use peergrid::world::{LatencySpec, ResourcesSpec, TopologySpec, World};

const HOLDS: u64 = 1_000_000;

fn event_lists(c: &mut Criterion) {
    for pending in [1_000usize, 100_000, 1_000_000] {
        let mut group = c.benchmark_group(format!("hold_{pending}_pending"));
        group.throughput(Throughput::Elements(HOLDS));
        group.sample_size(10);
        // Filling the queue is setup: each function times only its holds.
        for (name, hold) in QUEUES {
            group.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    (0..iters).map(|i| Duration::from_secs_f64(hold(pending, HOLDS, i).seconds)).sum()
                })
            });
        }
        group.finish();
    }
}

fn engine(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_hold_1M_pending");
    group.throughput(Throughput::Elements(HOLDS));
    group.sample_size(10);
    group.bench_function("binary_heap", |b| {
        b.iter_custom(|iters| {
            (0..iters).map(|i| Duration::from_secs_f64((QUEUES[0].1)(1_000_000, HOLDS, i).seconds)).sum()
        })
    });
    group.bench_function("engine", |b| {
        b.iter_custom(|iters| {
            (0..iters).map(|i| Duration::from_secs_f64(hold_engine(1_000_000, HOLDS, i).seconds)).sum()
        })
    });
    group.finish();
}

fn world(topology: TopologySpec, nodes: u32) -> World {
    World::build(
        &topology,
        Some(nodes),
        false,
        &LatencySpec::Uniform { min: peergrid::SimTime::from_millis(10), max: peergrid::SimTime::from_millis(100) },
        &ResourcesSpec { types: 10, replicas: 10, ..Default::default() },
        Path::new("."),
        1,
    )
    .expect("valid benchmark world")
}

fn protocols(c: &mut Criterion) {
    let flood = world(TopologySpec::RandomRegular { degree: 4 }, 100_000);
    let events = flooding_wave(&flood, 0, 12);
    let mut group = c.benchmark_group("flooding_wave_1e5_nodes");
    group.throughput(Throughput::Elements(events));
    group.sample_size(10);
    group.bench_function("ttl_12", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|i| {
                    let t = Instant::now();
                    flooding_wave(&flood, (i % 1000) as u32, 12);
                    t.elapsed()
                })
                .sum()
        })
    });
    group.finish();

    let gossip = world(TopologySpec::KOut { k: 20 }, 1_000_000);
    let events = aggregation_cycles(&gossip, 1);
    let mut group = c.benchmark_group("aggregation_1e6_nodes");
    group.throughput(Throughput::Elements(events));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.bench_function("one_cycle", |b| b.iter(|| aggregation_cycles(&gossip, 1)));
    group.finish();
}

criterion_group!(benches, event_lists, engine, protocols);
criterion_main!(benches);
