//! Routing cost per request: the slot (CRC16) and the core (seeded hash + fastrange) of a
//! 16-byte key, the typical length of a memtier key (`memtier-12345678`).

use std::hint::black_box;

use baton_ring::{core_of, slot, SlotTable};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// 1024 distinct 16-byte keys, so the numbers are not one key's branch history.
fn keys() -> Vec<[u8; 16]> {
    (0..1024u32)
        .map(|n| {
            let mut key = [0u8; 16];
            key.copy_from_slice(format!("memtier-{:08}", n * 7919).as_bytes());
            key
        })
        .collect()
}

fn routing(c: &mut Criterion) {
    let keys = keys();
    let table = SlotTable::single(0);
    let mut group = c.benchmark_group("route_16B");
    group.throughput(Throughput::Elements(keys.len() as u64));

    group.bench_function("slot", |b| {
        b.iter(|| {
            for key in &keys {
                black_box(slot(black_box(key)));
            }
        })
    });
    group.bench_function("core_of/8", |b| {
        b.iter(|| {
            for key in &keys {
                black_box(core_of(black_box(key), black_box(8)));
            }
        })
    });
    group.bench_function("node_of(slot)", |b| {
        b.iter(|| {
            for key in &keys {
                black_box(table.node_of(slot(black_box(key))));
            }
        })
    });
    group.finish();

    // One key per iteration as well, for the latency of a single lookup.
    let key = keys[1];
    c.bench_function("slot_16B_single", |b| b.iter(|| slot(black_box(&key))));
    c.bench_function("core_of_16B_single", |b| {
        b.iter(|| core_of(black_box(&key), black_box(8)))
    });
}

criterion_group!(benches, routing);
criterion_main!(benches);
