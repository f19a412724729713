//! Cache semantics end to end: the memory limit and its eviction policies, active
//! expiry, MEMORY USAGE and OBJECT, through the `redis` crate against the real binary.

mod common;

use std::time::{Duration, Instant};

use common::*;

cores_tests!(
    active_expiry_reclaims_a_million_keys,
    noeviction_answers_oom,
    allkeys_policy_evicts_within_the_limit,
    volatile_policy_keeps_persistent_keys,
    object_and_memory_usage,
    used_memory_tracks_rss,
    maxmemory_changes_at_run_time,
    memcached_stores_answer_out_of_memory,
);

fn dbsize(c: &mut redis::Connection) -> i64 {
    redis::cmd("DBSIZE").query(c).expect("DBSIZE")
}

/// Loads `n` keys of `len`-byte values, 10k per pipeline; `px` adds a TTL.
fn load(c: &mut redis::Connection, prefix: &str, n: usize, len: usize, px: Option<u64>) {
    let value = vec![b'v'; len];
    for start in (0..n).step_by(10_000) {
        let mut p = redis::pipe();
        for i in start..(start + 10_000).min(n) {
            let cmd = p.cmd("SET").arg(format!("{prefix}{i}")).arg(&value[..]);
            if let Some(ms) = px {
                cmd.arg("PX").arg(ms);
            }
            cmd.ignore();
        }
        p.query::<()>(c).expect("load");
    }
}

fn active_expiry_reclaims_a_million_keys(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    load(&mut c, "persist:", 1_000, 8, None);
    load(&mut c, "ttl:", 1_000_000, 8, Some(1_000));
    let loaded = Instant::now();
    // Nobody touches the keys again: only the active cycle can reclaim them. The last
    // one expires a second after loading; fewer than 1% may remain 5 seconds later.
    let deadline = loaded + Duration::from_secs(6);
    let left = loop {
        let left = dbsize(&mut c) - 1_000;
        if left < 10_000 || Instant::now() >= deadline {
            break left;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        left < 10_000,
        "{left} of 1M expired keys still held after 5 s"
    );
    assert_eq!(
        redis::cmd("EXISTS")
            .arg("persist:7")
            .query::<i64>(&mut c)
            .unwrap(),
        1,
        "keys without TTL stay"
    );
}

fn noeviction_answers_oom(cores: usize) {
    let s = Server::builder(cores)
        .args(&["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"])
        .start();
    let mut c = s.redis();
    let value = vec![b'x'; 1000];
    let mut refused = None;
    for i in 0..10_000 {
        let r = run(
            &mut c,
            &[
                "SET".to_string(),
                format!("k{i}"),
                String::from_utf8_lossy(&value).into(),
            ],
        );
        if r != ok() {
            refused = Some((i, r));
            break;
        }
    }
    let (i, r) = refused.expect("writes are refused once memory is full");
    assert_eq!(
        err_text(&r),
        "OOM command not allowed when used memory > 'maxmemory'."
    );
    assert!(i > 500, "about 2 MB was stored before refusing ({i} keys)");
    // Reads and deletes still work, and a delete makes room again.
    assert_eq!(q(&mut c, "GET k0"), Value::BulkString(value.clone()));
    for j in 0..i {
        q(&mut c, &format!("DEL k{j}"));
    }
    assert_eq!(q(&mut c, "SET again v"), ok());
}

fn allkeys_policy_evicts_within_the_limit(cores: usize) {
    for policy in [
        "allkeys-s3fifo",
        "allkeys-random",
        "allkeys-lru",
        "allkeys-lfu",
    ] {
        let s = Server::builder(cores)
            .args(&["--maxmemory", "4mb", "--maxmemory-policy", policy])
            .start();
        let mut c = s.redis();
        // 20 MB of values into a 4 MB cache: every write succeeds, old keys make room.
        load(&mut c, "k", 20_000, 1_000, None);
        let n = dbsize(&mut c);
        assert!(
            (1_000..=4_200).contains(&n),
            "{policy}: {n} keys of 1 KB held under 4 MB"
        );
        assert_eq!(q(&mut c, "SET last v"), ok(), "{policy}");
        assert!(
            info_number(&mut c, "stats", "evicted_keys") >= 20_000 - n,
            "{policy}"
        );
        let used = info_number(&mut c, "memory", "used_memory");
        assert!(
            used <= 4 << 20,
            "{policy}: used_memory {used} over maxmemory"
        );
        assert_eq!(info_number(&mut c, "memory", "maxmemory"), 4 << 20);
        assert_eq!(q(&mut c, "GET last"), Value::BulkString(b"v".to_vec()));
    }
}

fn volatile_policy_keeps_persistent_keys(cores: usize) {
    for policy in [
        "volatile-s3fifo",
        "volatile-ttl",
        "volatile-random",
        "volatile-lru",
    ] {
        let s = Server::builder(cores)
            .args(&["--maxmemory", "4mb", "--maxmemory-policy", policy])
            .start();
        let mut c = s.redis();
        load(&mut c, "keep", 1_000, 1_000, None);
        load(&mut c, "ttl", 20_000, 1_000, Some(3_600_000));
        for i in (0..1_000).step_by(97) {
            assert_eq!(
                q(&mut c, &format!("STRLEN keep{i}")),
                Value::Int(1_000),
                "{policy}: persistent key keep{i} was evicted"
            );
        }
        assert!(dbsize(&mut c) < 5_000, "{policy}: TTL keys were evicted");
        // Once only persistent keys are left, writes that need room are refused.
        let mut p = redis::pipe();
        for i in 0..20_000 {
            p.cmd("DEL").arg(format!("ttl{i}")).ignore();
        }
        p.query::<()>(&mut c).unwrap();
        let mut refused = false;
        for i in 0..5_000 {
            let r = run(
                &mut c,
                &["SET".to_string(), format!("more{i}"), "x".repeat(1_000)],
            );
            if r != ok() {
                assert_eq!(
                    err_text(&r),
                    "OOM command not allowed when used memory > 'maxmemory'."
                );
                refused = true;
                break;
            }
        }
        assert!(refused, "{policy}: persistent keys alone fill the limit");
    }
}

fn object_and_memory_usage(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    q(&mut c, "SET n 12345");
    q(&mut c, "SET short hello");
    let long = "x".repeat(100);
    q(&mut c, &format!("SET long {long}"));
    assert_eq!(q(&mut c, "OBJECT ENCODING n"), bulk("int"));
    assert_eq!(q(&mut c, "OBJECT ENCODING short"), bulk("embstr"));
    assert_eq!(q(&mut c, "OBJECT ENCODING long"), bulk("raw"));
    assert_eq!(q(&mut c, "OBJECT ENCODING missing"), Value::Nil);
    assert_eq!(q(&mut c, "OBJECT REFCOUNT short"), Value::Int(1));
    assert!(matches!(
        q(&mut c, "OBJECT IDLETIME short"),
        Value::Int(0..=2)
    ));
    assert_eq!(
        err_text(&q(&mut c, "OBJECT ENCODING")),
        "ERR wrong number of arguments for 'object|encoding' command"
    );
    assert_eq!(
        err_text(&q(&mut c, "OBJECT FOO x")),
        "ERR unknown subcommand 'FOO'. Try OBJECT HELP."
    );
    assert!(matches!(q(&mut c, "OBJECT HELP"), Value::Array(lines) if lines.len() > 5));
    let Value::Int(short) = q(&mut c, "MEMORY USAGE short") else {
        panic!("MEMORY USAGE answers an integer")
    };
    let Value::Int(big) = q(&mut c, "MEMORY USAGE long SAMPLES 0") else {
        panic!("MEMORY USAGE answers an integer")
    };
    assert!(short > 5 && big > short + 90, "{short} {big}");
    assert_eq!(q(&mut c, "MEMORY USAGE missing"), Value::Nil);
    assert_eq!(
        err_text(&q(&mut c, "MEMORY USAGE short SAMPLES")),
        "ERR syntax error"
    );
    assert_eq!(
        err_text(&q(&mut c, "MEMORY USAGE short SAMPLES x")),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err_text(&q(&mut c, "MEMORY FOO")),
        "ERR unknown subcommand 'FOO'. Try MEMORY HELP."
    );
}

/// INFO's used_memory grows with the process's RSS: within 15% over 300k keys.
fn used_memory_tracks_rss(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let used0 = info_number(&mut c, "memory", "used_memory");
    let rss0 = info_number(&mut c, "memory", "used_memory_rss");
    load(&mut c, "key:", 300_000, 64, None);
    let used = info_number(&mut c, "memory", "used_memory") - used0;
    let rss = info_number(&mut c, "memory", "used_memory_rss") - rss0;
    let ratio = used as f64 / rss as f64;
    assert!(
        (0.85..=1.15).contains(&ratio),
        "used_memory grew {used} bytes, RSS {rss} bytes (ratio {ratio:.3})"
    );
    // The per-core section sums to the total.
    let text: String = redis::cmd("INFO").arg("cores").query(&mut c).unwrap();
    let per_core: i64 = text
        .lines()
        .filter(|l| l.starts_with("core"))
        .filter_map(|l| l.split(',').find_map(|kv| kv.strip_prefix("used_memory=")))
        .map(|v| v.parse::<i64>().unwrap())
        .sum();
    assert_eq!(per_core, info_number(&mut c, "memory", "used_memory"));
}

/// CONFIG SET maxmemory and maxmemory-policy reach every shard while it runs.
fn maxmemory_changes_at_run_time(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    load(&mut c, "k", 8_000, 1_000, None);
    assert_eq!(dbsize(&mut c), 8_000, "no limit yet");
    assert_eq!(q(&mut c, "CONFIG SET maxmemory 2mb"), ok());
    let n = dbsize(&mut c);
    assert!(
        n < 2_100,
        "lowering the limit evicts at once: {n} keys left"
    );
    assert!(info_number(&mut c, "memory", "used_memory") <= 2 << 20);
    assert_eq!(info_number(&mut c, "memory", "maxmemory"), 2 << 20);
    assert!(info_number(&mut c, "stats", "evicted_keys") >= 8_000 - n);
    assert_eq!(q(&mut c, "CONFIG SET maxmemory-policy noeviction"), ok());
    let refused = (0..3_000)
        .map(|i| {
            run(
                &mut c,
                &["SET".to_string(), format!("more{i}"), "x".repeat(1_000)],
            )
        })
        .find(|r| *r != ok())
        .expect("noeviction refuses writes once the limit is reached");
    assert_eq!(
        err_text(&refused),
        "OOM command not allowed when used memory > 'maxmemory'."
    );
    assert_eq!(q(&mut c, "CONFIG SET maxmemory 0"), ok());
    assert_eq!(
        run(&mut c, &["SET", "one-more", &"x".repeat(100_000)]),
        ok()
    );
}

/// memcached clients see `SERVER_ERROR out of memory storing object` where Redis clients
/// see OOM, and evictions in `stats`.
fn memcached_stores_answer_out_of_memory(cores: usize) {
    let s = Server::builder(cores)
        .memcache()
        .args(&["--maxmemory", "1mb", "--maxmemory-policy", "noeviction"])
        .start();
    let mut r = s.memcache_raw();
    let value = "x".repeat(1_000);
    let mut refused = false;
    for i in 0..5_000 {
        r.send(format!("set k{i} 0 0 {}\r\n{value}\r\n", value.len()).as_bytes());
        let line = r.read_line();
        if line != "STORED\r\n" {
            assert_eq!(line, "SERVER_ERROR out of memory storing object\r\n");
            refused = true;
            break;
        }
    }
    assert!(refused, "1 MB fills up");
    r.send(b"get k0\r\n");
    assert!(
        r.read_line().starts_with("VALUE k0 0 1000"),
        "reads still work"
    );
    assert_eq!(r.read_line(), format!("{value}\r\n"));
    assert_eq!(r.read_line(), "END\r\n");
    // With an evicting policy the same stores succeed and stats counts the evictions.
    let mut c = s.redis();
    assert_eq!(
        q(&mut c, "CONFIG SET maxmemory-policy allkeys-s3fifo"),
        ok()
    );
    for i in 0..3_000 {
        r.send(format!("set more{i} 0 0 {}\r\n{value}\r\n", value.len()).as_bytes());
    }
    for i in 0..3_000 {
        assert_eq!(
            r.read_line(),
            "STORED\r\n",
            "store {i} succeeds by evicting"
        );
    }
    r.send(b"stats\r\n");
    let mut evictions = None;
    loop {
        let line = r.read_line();
        if line == "END\r\n" {
            break;
        }
        if let Some(n) = line.strip_prefix("STAT evictions ") {
            evictions = n.trim().parse::<u64>().ok();
        }
    }
    assert!(
        evictions.is_some_and(|n| n >= 2_000),
        "stats evictions: {evictions:?}"
    );
}
