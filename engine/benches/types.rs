//! The data-type commands of `benches/load/types_speed.sh` without any I/O, each through
//! `Shard::execute` as the server calls it, next to SET and GET for reference:
//!
//! - hash: HSET h:<k> f <32 bytes> / HGET h:<k> f over 100k hashes; `hset_new` creates
//!   each hash (a fresh shard per 50k), as about half of the load's HSETs do;
//! - list: LPUSH l:<k> <32 bytes> then RPOP l:<k> over 1k lists of a few elements;
//! - set: SADD s <k> / SISMEMBER s <k>, one set of 1k members;
//! - zset: ZADD z <k> m<k> / ZRANGE z 0 9, one sorted set of 1k members.
//!
//! `cargo bench -p baton-engine --bench types` (append a name to run one group).

use std::time::{Duration, Instant};

use baton_engine::command::{CommandSpec, COMMANDS};
use baton_engine::Shard;
use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

const NOW: u64 = 1_700_000_000_000;
const DATA: &[u8] = b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

fn spec(name: &str) -> &'static CommandSpec {
    COMMANDS
        .iter()
        .find(|c| c.name == name)
        .expect("known command")
}

fn args(parts: &[&[u8]]) -> Vec<Bytes> {
    parts.iter().map(|p| Bytes::copy_from_slice(p)).collect()
}

/// A cheap index sequence that visits keys in a scattered order, like memtier's R pattern.
fn scatter(i: usize, n: usize) -> usize {
    i.wrapping_mul(0x9E37_79B9) % n
}

/// Requests for keys 1..=n in a scattered order: `make(k)` builds one.
fn requests(n: usize, make: impl Fn(usize) -> Vec<Bytes>) -> Vec<Vec<Bytes>> {
    (0..n).map(|i| make(scatter(i, n) + 1)).collect()
}

/// Benchmarks a write and a read command over their request lists, on one shard.
fn pair(c: &mut Criterion, group: &str, shard: &mut Shard, ops: [(&str, Vec<Vec<Bytes>>); 2]) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(1));
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    for (name, reqs) in ops {
        let sp = spec(&String::from_utf8_lossy(&reqs[0][0]).to_ascii_lowercase());
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % reqs.len();
                black_box(shard.execute(sp, &reqs[i], NOW))
            })
        });
    }
    g.finish();
}

fn bench_types(c: &mut Criterion) {
    let k = |p: &str, i: usize| format!("{p}{i}").into_bytes();

    let mut s = Shard::new(0);
    let sets = requests(100_000, |i| args(&[b"SET", &k("s:", i), DATA]));
    for r in &sets {
        s.execute(spec("set"), r, NOW);
    }
    let gets = requests(100_000, |i| args(&[b"GET", &k("s:", i)]));
    pair(c, "string_100k", &mut s, [("set", sets), ("get", gets)]);

    let mut s = Shard::new(0);
    let hsets = requests(100_000, |i| args(&[b"HSET", &k("h:", i), b"f", DATA]));
    for r in &hsets {
        s.execute(spec("hset"), r, NOW);
    }
    let hgets = requests(100_000, |i| args(&[b"HGET", &k("h:", i), b"f"]));
    pair(
        c,
        "hash_100k",
        &mut s,
        [("hset", hsets.clone()), ("hget", hgets)],
    );
    c.benchmark_group("hash_100k")
        .throughput(Throughput::Elements(1))
        .measurement_time(Duration::from_secs(2))
        .bench_function("hset_new", |b| {
            b.iter_custom(|iters| {
                let (mut spent, mut done) = (Duration::ZERO, 0);
                while done < iters {
                    let n = (iters - done).min(50_000) as usize;
                    let mut fresh = Shard::new(0);
                    let t = Instant::now();
                    for r in &hsets[..n] {
                        black_box(fresh.execute(spec("hset"), r, NOW));
                    }
                    spent += t.elapsed();
                    done += n as u64;
                }
                spent
            })
        });

    let mut s = Shard::new(0);
    let lpush = requests(1_000, |i| args(&[b"LPUSH", &k("l:", i), DATA]));
    for r in lpush.iter().chain(&lpush) {
        s.execute(spec("lpush"), r, NOW);
    }
    let rpop = requests(1_000, |i| args(&[b"RPOP", &k("l:", i)]));
    // One push and one pop per iteration, so that the lists stay short as under the load.
    let (push, pop) = (spec("lpush"), spec("rpop"));
    let mut i = 0;
    c.benchmark_group("list_1k")
        .throughput(Throughput::Elements(2))
        .measurement_time(Duration::from_secs(2))
        .bench_function("lpush_rpop", |b| {
            b.iter(|| {
                i = (i + 1) % lpush.len();
                black_box(s.execute(push, &lpush[i], NOW));
                black_box(s.execute(pop, &rpop[i], NOW))
            })
        });

    let mut s = Shard::new(0);
    let sadd = requests(1_000, |i| args(&[b"SADD", b"s", i.to_string().as_bytes()]));
    for r in &sadd {
        s.execute(spec("sadd"), r, NOW);
    }
    let sism = requests(1_000, |i| {
        args(&[b"SISMEMBER", b"s", i.to_string().as_bytes()])
    });
    pair(c, "set_1k", &mut s, [("sadd", sadd), ("sismember", sism)]);

    let mut s = Shard::new(0);
    let zadd = requests(1_000, |i| {
        let n = i.to_string();
        args(&[b"ZADD", b"z", n.as_bytes(), &k("m", i)])
    });
    for r in &zadd {
        s.execute(spec("zadd"), r, NOW);
    }
    let zrange = requests(1_000, |_| args(&[b"ZRANGE", b"z", b"0", b"9"]));
    pair(c, "zset_1k", &mut s, [("zadd", zadd), ("zrange", zrange)]);
}

criterion_group!(benches, bench_types);
criterion_main!(benches);
