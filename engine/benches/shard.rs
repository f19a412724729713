//! Shard throughput without any I/O: GET hit, GET miss and SET of 64-byte values over a
//! shard holding 100k keys, each through `Shard::execute` as the server calls it.

use baton_engine::command::{CommandSpec, COMMANDS};
use baton_engine::Shard;
use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

const KEYS: usize = 100_000;
const NOW: u64 = 1_700_000_000_000;

fn spec(name: &str) -> &'static CommandSpec {
    COMMANDS
        .iter()
        .find(|c| c.name == name)
        .expect("known command")
}

fn key(i: usize) -> Bytes {
    Bytes::from(format!("key:{i:08}"))
}

fn loaded_shard() -> Shard {
    let mut shard = Shard::new(0);
    let set = spec("set");
    let value = Bytes::from(vec![b'v'; 64]);
    for i in 0..KEYS {
        shard.execute(
            set,
            &[Bytes::from_static(b"SET"), key(i), value.clone()],
            NOW,
        );
    }
    shard
}

/// A cheap index sequence that visits keys in a scattered order, like real traffic.
fn scatter(i: usize) -> usize {
    i.wrapping_mul(0x9E37_79B9) % KEYS
}

fn bench_shard(c: &mut Criterion) {
    let mut shard = loaded_shard();
    let (get, set) = (spec("get"), spec("set"));
    let hits: Vec<[Bytes; 2]> = (0..KEYS)
        .map(|i| [Bytes::from_static(b"GET"), key(scatter(i))])
        .collect();
    let misses: Vec<[Bytes; 2]> = (0..KEYS)
        .map(|i| {
            [
                Bytes::from_static(b"GET"),
                Bytes::from(format!("absent:{i:08}")),
            ]
        })
        .collect();
    let value = Bytes::from(vec![b'w'; 64]);
    let sets: Vec<[Bytes; 3]> = (0..KEYS)
        .map(|i| [Bytes::from_static(b"SET"), key(scatter(i)), value.clone()])
        .collect();

    let mut g = c.benchmark_group("shard_100k");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("get_hit", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(shard.execute(get, &hits[i], NOW))
        })
    });
    g.bench_function("get_miss", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(shard.execute(get, &misses[i], NOW))
        })
    });
    g.bench_function("set_64b", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(shard.execute(set, &sets[i], NOW))
        })
    });
    g.finish();
    assert_eq!(shard.len(), KEYS, "SETs overwrote existing keys only");
}

criterion_group!(benches, bench_shard);
criterion_main!(benches);
