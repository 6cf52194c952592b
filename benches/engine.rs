//! Raw event throughput: the hold model (1M pending events, exponential delays)
//! through the peergrid engine and on a plain `std::collections::BinaryHeap`.
//! `peergrid bench` prints the same figures and their ratio.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use peergrid::bench::{hold_binary_heap, hold_engine};

const PENDING: usize = 1_000_000;
const HOLDS: u64 = 2_000_000;

fn hold(c: &mut Criterion) {
    let mut group = c.benchmark_group("hold_1M_pending");
    group.throughput(Throughput::Elements(HOLDS));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    // Setup (filling the queue) is excluded: each function times only its holds.
    group.bench_function("binary_heap", |b| {
        b.iter_custom(|iters| {
            (0..iters).map(|i| Duration::from_secs_f64(hold_binary_heap(PENDING, HOLDS, i).seconds)).sum()
        })
    });
    group.bench_function("engine", |b| {
        b.iter_custom(|iters| (0..iters).map(|i| Duration::from_secs_f64(hold_engine(PENDING, HOLDS, i).seconds)).sum())
    });
    group.finish();
}

criterion_group!(benches, hold);
criterion_main!(benches);
