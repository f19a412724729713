//! RESP codec throughput: parsing common requests and encoding common replies.
//!
//! `cargo bench -p baton-net --bench resp`

use std::hint::black_box;

use baton_net::resp::testing::encode_command;
use baton_net::resp::{encode, parse_command, Limits, ParseState, Reply};
use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

/// Parses every command in `input`, returning how many there were.
fn parse_all(input: &BytesMut, limits: &Limits) -> usize {
    let mut buf = input.clone();
    let mut n = 0;
    while let Ok(Some(args)) = parse_command(&mut buf, limits, true) {
        black_box(&args);
        n += 1;
    }
    n
}

fn parse(c: &mut Criterion) {
    let limits = Limits::default();
    let get = BytesMut::from(&encode_command(&["GET", "key:000000001"])[..]);
    let set = BytesMut::from(&encode_command(&[&b"SET"[..], b"key:000000001", &[b'v'; 64]])[..]);
    let mut pipeline = BytesMut::new();
    for i in 0..32 {
        let key = format!("key:{i:09}");
        if i % 4 == 0 {
            pipeline.extend_from_slice(&encode_command(&[
                &b"SET"[..],
                key.as_bytes(),
                &[b'v'; 64],
            ]));
        } else {
            pipeline.extend_from_slice(&encode_command(&["GET", &key]));
        }
    }
    assert_eq!(parse_all(&pipeline, &limits), 32);

    let mut group = c.benchmark_group("resp_parse");
    for (name, input) in [("get", &get), ("set_64b", &set)] {
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || input.clone(),
                |buf| parse_command(buf, &limits, true),
                BatchSize::SmallInput,
            )
        });
    }
    group.throughput(Throughput::Elements(32));
    group.bench_function("pipeline_32", |b| b.iter(|| parse_all(&pipeline, &limits)));
    group.bench_function("pipeline_32_with_state", |b| {
        b.iter(|| {
            let mut state = ParseState::default();
            let mut buf = pipeline.clone();
            let mut n = 0;
            while let Ok(Some(args)) = state.parse_command(&mut buf, &limits, true) {
                black_box(&args);
                n += 1;
            }
            n
        })
    });
    let inline = BytesMut::from(&b"GET key:000000001\r\n"[..]);
    group.throughput(Throughput::Bytes(inline.len() as u64));
    group.bench_function("inline_get", |b| {
        b.iter_batched_ref(
            || inline.clone(),
            |buf| parse_command(buf, &limits, true),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn encoding(c: &mut Criterion) {
    let bulk = Reply::Bulk(Bytes::from(vec![b'v'; 64]));
    let int = Reply::Int(1_234_567);
    let array = Reply::Array(
        (0..10)
            .map(|i| Reply::Bulk(Bytes::from(format!("value{i}"))))
            .collect(),
    );
    let mut group = c.benchmark_group("resp_encode");
    for (name, reply) in [("bulk_64b", &bulk), ("int", &int), ("array_10", &array)] {
        group.bench_function(name, |b| {
            let mut out = Vec::with_capacity(4096);
            b.iter(|| {
                out.clear();
                encode(black_box(reply), 2, &mut out);
                black_box(out.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse, encoding);
criterion_main!(benches);
