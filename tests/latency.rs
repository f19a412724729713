//! Liveness at every load: a request on an idle core is answered at once, and no mix of
//! connections, pipeline depths and pauses leaves a request unanswered.
//!
//! These are liveness checks with wide margins, not benchmarks. The first would have
//! caught the 16 ms wake-up of a sleeping core (200 round trips took 3.2 s); the second
//! a livelock like the old `--cores 2` one (a core spun without yielding while the mesh
//! replies its connections waited for never ran), which the clients' read timeout turns
//! into a failure. Each lost wake-up would delay a reply until the core's next timer (at
//! most 100 ms: active expiry and the ops sampler), so a wake-up path that loses them
//! often blows the first test's bound; the mesh's handshake has a unit test of its own
//! (`engine/src/runtime/mesh.rs`).

mod common;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// Round trips on one connection, one at a time. At Redis's ~0.1 ms each, 200 take
/// about 20 ms; the bound leaves fifty times that for a busy test machine.
const SEQUENTIAL: usize = 200;
const SEQUENTIAL_BOUND: Duration = Duration::from_secs(1);

/// How long a stress client may wait for the replies of one pipeline.
const UNANSWERED: Duration = Duration::from_secs(5);
/// How long each stress client runs.
const STRESS_FOR: Duration = Duration::from_secs(3);

/// Runs [`SEQUENTIAL`] round trips of `request(i)`, each read back and checked by
/// `answer`, and asserts that all of them took less than [`SEQUENTIAL_BOUND`].
#[track_caller]
fn assert_prompt(
    raw: &mut Raw,
    what: &str,
    request: impl Fn(usize) -> Vec<u8>,
    answer: impl Fn(&mut Raw),
) {
    let start = Instant::now();
    for i in 0..SEQUENTIAL {
        raw.send(&request(i));
        answer(raw);
    }
    let took = start.elapsed();
    assert!(
        took < SEQUENTIAL_BOUND,
        "{SEQUENTIAL} sequential {what} took {took:?} (bound {SEQUENTIAL_BOUND:?}): a sleeping core wakes late"
    );
}

/// 200 sequential PINGs, and 200 GETs of keys spread over every core (a key of another
/// core wakes that core through the mesh for each request).
fn sequential_redis(cores: usize) {
    if memcached_reference() {
        return;
    }
    let server = Server::start(cores);
    let mut raw = server.raw();
    // The first request of a connection may pay one-off costs; not counted.
    raw.send(b"PING\r\n");
    raw.expect(b"+PONG\r\n");
    assert_prompt(
        &mut raw,
        "PINGs",
        |_| b"PING\r\n".to_vec(),
        |raw| raw.expect(b"+PONG\r\n"),
    );
    assert_prompt(
        &mut raw,
        "GETs",
        |i| encode_command(&["GET", &format!("latency:{i}")]),
        |raw| raw.expect(b"$-1\r\n"),
    );
}

/// 200 sequential `mn` and `version` requests, and 200 `mg` misses spread over every core.
fn sequential_memcache(cores: usize) {
    if reference_mode() && !memcached_reference() {
        return;
    }
    let server = Server::start_with_memcache(cores);
    let mut raw = server.memcache_raw();
    raw.send(b"mn\r\n");
    raw.expect(b"MN\r\n");
    assert_prompt(
        &mut raw,
        "mn requests",
        |_| b"mn\r\n".to_vec(),
        |raw| raw.expect(b"MN\r\n"),
    );
    assert_prompt(
        &mut raw,
        "version requests",
        |_| b"version\r\n".to_vec(),
        |raw| {
            let line = raw.read_line();
            assert!(line.starts_with("VERSION "), "version reply: {line:?}");
        },
    );
    assert_prompt(
        &mut raw,
        "mg misses",
        |i| format!("mg latency:{i} v\r\n").into_bytes(),
        |raw| raw.expect(b"EN\r\n"),
    );
}

cores_tests!(sequential_redis, sequential_memcache);

/// A pause between pipelines: none, a few microseconds (the core may or may not have gone
/// to sleep yet), or milliseconds (it has).
fn pause(rng: &mut Rng) -> Option<Duration> {
    match rng.below(4) {
        0 => None,
        1 => Some(Duration::from_micros(rng.below(200) as u64)),
        _ => Some(Duration::from_micros(500 + rng.below(15_000) as u64)),
    }
}

/// A pipeline depth: often 1, else up to 64.
fn depth(rng: &mut Rng) -> usize {
    if rng.below(3) == 0 {
        1
    } else {
        1 + rng.below(64)
    }
}

#[derive(Clone, Copy)]
enum Proto {
    Redis,
    Memcache,
}

/// One stress client (seeded, see [`Rng`]): pipelines of random depth, SETs and GETs of
/// its own keys (which hash to every core), random pauses. Checks every reply against its
/// own model of its keys and fails when a pipeline goes unanswered for [`UNANSWERED`].
fn stress_client(port: u16, proto: Proto, id: usize, seed: u64, steady: bool) -> usize {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(UNANSWERED)).unwrap();
    stream.set_write_timeout(Some(UNANSWERED)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut rng = Rng(seed);
    let mut model: Vec<Option<u64>> = vec![None; 40];
    let deadline = Instant::now() + STRESS_FOR;
    let mut requests = 0;
    let mut round = 0;
    while Instant::now() < deadline {
        round += 1;
        let depth = if steady { 16 } else { depth(&mut rng) };
        let mut batch = Vec::new();
        let mut expect: Vec<Vec<u8>> = Vec::with_capacity(depth);
        for _ in 0..depth {
            let k = rng.below(model.len());
            let key = format!("stress:{id}:{k}");
            if rng.below(2) == 0 {
                let v = rng.next();
                let val = v.to_string();
                match proto {
                    Proto::Redis => batch.extend(encode_command(&["SET", &key, &val])),
                    Proto::Memcache => {
                        batch.extend(format!("ms {key} {}\r\n{val}\r\n", val.len()).into_bytes())
                    }
                }
                expect.push(match proto {
                    Proto::Redis => b"+OK\r\n".to_vec(),
                    Proto::Memcache => b"HD\r\n".to_vec(),
                });
                model[k] = Some(v);
            } else {
                match proto {
                    Proto::Redis => batch.extend(encode_command(&["GET", &key])),
                    Proto::Memcache => batch.extend(format!("mg {key} v\r\n").into_bytes()),
                }
                expect.push(match (proto, model[k]) {
                    (Proto::Redis, None) => b"$-1\r\n".to_vec(),
                    (Proto::Redis, Some(v)) => {
                        let v = v.to_string();
                        format!("${}\r\n{v}\r\n", v.len()).into_bytes()
                    }
                    (Proto::Memcache, None) => b"EN\r\n".to_vec(),
                    (Proto::Memcache, Some(v)) => {
                        let v = v.to_string();
                        format!("VA {}\r\n{v}\r\n", v.len()).into_bytes()
                    }
                });
            }
        }
        let sent = Instant::now();
        writer.write_all(&batch).expect("write");
        let want: Vec<u8> = expect.concat();
        let mut got = vec![0u8; want.len()];
        if let Err(e) = reader.read_exact(&mut got) {
            panic!(
                "client {id} (seed {seed:#x}), round {round}: a pipeline of {depth} went unanswered for {:?} ({e})",
                sent.elapsed()
            );
        }
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "client {id} (seed {seed:#x}), round {round}: replies"
        );
        requests += depth;
        if let Some(p) = pause(&mut rng).filter(|_| !steady) {
            thread::sleep(p);
        }
    }
    requests
}

/// Many connections of both protocols, random pipeline depths and random pauses, on
/// every core: every request is answered, correctly, within [`UNANSWERED`].
fn stress(cores: usize) {
    if reference_mode() {
        return;
    }
    let server = Server::start_with_memcache(cores);
    let (redis, memcache) = (server.port, server.memcache_port());
    let clients: Vec<_> = (0..48)
        .map(|id| {
            let (port, proto) = if id % 2 == 0 {
                (redis, Proto::Redis)
            } else {
                (memcache, Proto::Memcache)
            };
            let seed = 0x9E37_79B9_7F4A_7C15u64 ^ ((cores as u64) << 32) ^ id as u64;
            // A third of the clients never pause, like a load generator.
            let steady = id % 3 == 0;
            thread::spawn(move || stress_client(port, proto, id, seed, steady))
        })
        .collect();
    let mut total = 0;
    for c in clients {
        match c.join() {
            Ok(n) => total += n,
            Err(e) => std::panic::resume_unwind(e),
        }
    }
    assert!(total > 0, "the stress clients sent nothing");
    // The server is still whole: a fresh connection is answered.
    let mut raw = server.raw();
    raw.send(b"PING\r\n");
    raw.expect(b"+PONG\r\n");
}

cores_tests!(stress);
