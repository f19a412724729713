//! Keyspace commands: DEL, UNLINK, EXISTS, TOUCH, TYPE, the EXPIRE family, TTLs, PERSIST,
//! RENAME, RENAMENX, COPY, RANDOMKEY, KEYS, SCAN, and expiry as clients see it.
//! Multi-key commands use many keys so that with two cores they span both.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use common::*;

cores_tests!(
    del_exists_touch_type,
    expire_family,
    expire_options,
    rename,
    copy,
    randomkey,
    keys_patterns,
    scan_full_iteration,
    scan_match_type_count,
    scan_while_inserting,
    expired_keys_are_never_returned,
    expired_keys_are_missing_for_writes,
);

fn keys_arg(cmd: &str, keys: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v = vec![cmd.to_string()];
    v.extend(keys);
    v
}

fn del_exists_touch_type(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let n = 40;
    for i in 0..n {
        assert_eq!(q(&mut c, &format!("SET d:{i} v")), ok());
    }
    let all = || (0..n).map(|i| format!("d:{i}"));
    let missing = || (0..n).map(|i| format!("nod:{i}"));
    assert_eq!(
        run(&mut c, &keys_arg("EXISTS", all().chain(missing()))),
        int(n)
    );
    // Repeated keys count each time.
    assert_reply(&mut c, "EXISTS d:1 d:1 d:1 nod:1", int(3));
    assert_eq!(
        run(&mut c, &keys_arg("TOUCH", all().chain(missing()))),
        int(n)
    );
    assert_reply(&mut c, "TYPE d:0", simple("string"));
    assert_reply(&mut c, "TYPE nod:0", simple("none"));

    // DEL of 20 keys (and 40 missing ones) across cores.
    let first: Vec<String> = (0..20).map(|i| format!("d:{i}")).collect();
    assert_eq!(
        run(
            &mut c,
            &keys_arg("DEL", first.iter().cloned().chain(missing()))
        ),
        int(20)
    );
    assert_eq!(
        run(&mut c, &keys_arg("EXISTS", first.iter().cloned())),
        int(0)
    );
    assert_reply(&mut c, "DBSIZE", int(n - 20));
    // A key named twice is deleted once.
    assert_reply(&mut c, "DEL d:20 d:20", int(1));
    let rest: Vec<String> = (21..n).map(|i| format!("d:{i}")).collect();
    assert_eq!(
        run(&mut c, &keys_arg("UNLINK", rest.iter().cloned())),
        int(19)
    );
    assert_reply(&mut c, "DBSIZE", int(0));
    assert_reply(&mut c, "DEL nokey", int(0));
    assert_reply(&mut c, "UNLINK nokey", int(0));
    // Hash tags.
    assert_reply(&mut c, "MSET {t}a 1 {t}b 2 {u}c 3", ok());
    assert_reply(&mut c, "DEL {t}a {t}b {u}c {t}zz", int(3));

    assert_err(
        &mut c,
        "DEL",
        "ERR wrong number of arguments for 'del' command",
    );
    assert_err(
        &mut c,
        "UNLINK",
        "ERR wrong number of arguments for 'unlink' command",
    );
    assert_err(
        &mut c,
        "EXISTS",
        "ERR wrong number of arguments for 'exists' command",
    );
    assert_err(
        &mut c,
        "TOUCH",
        "ERR wrong number of arguments for 'touch' command",
    );
    assert_err(
        &mut c,
        "TYPE a b",
        "ERR wrong number of arguments for 'type' command",
    );
}

fn expire_family(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "TTL nokey", int(-2));
    assert_reply(&mut c, "PTTL nokey", int(-2));
    assert_reply(&mut c, "EXPIRETIME nokey", int(-2));
    assert_reply(&mut c, "PEXPIRETIME nokey", int(-2));
    assert_reply(&mut c, "EXPIRE nokey 100", int(0));
    assert_reply(&mut c, "PERSIST nokey", int(0));

    assert_reply(&mut c, "SET k v", ok());
    assert_reply(&mut c, "TTL k", int(-1));
    assert_reply(&mut c, "PTTL k", int(-1));
    assert_reply(&mut c, "EXPIRETIME k", int(-1));
    assert_reply(&mut c, "PEXPIRETIME k", int(-1));
    assert_reply(&mut c, "PERSIST k", int(0));

    assert_reply(&mut c, "EXPIRE k 100", int(1));
    let ttl = as_int(&q(&mut c, "TTL k"));
    assert!((99..=100).contains(&ttl), "{ttl}");
    let et = as_int(&q(&mut c, "EXPIRETIME k"));
    assert!((et - (unix_secs() + 100)).abs() <= 2, "{et}");
    assert_reply(&mut c, "PEXPIRE k 200000", int(1));
    let pttl = as_int(&q(&mut c, "PTTL k"));
    assert!((195_000..=200_000).contains(&pttl), "{pttl}");
    let at = unix_secs() + 300;
    assert_reply(&mut c, &format!("EXPIREAT k {at}"), int(1));
    assert_reply(&mut c, "EXPIRETIME k", int(at));
    let pat = unix_ms() + 400_000;
    assert_reply(&mut c, &format!("PEXPIREAT k {pat}"), int(1));
    assert_reply(&mut c, "PEXPIRETIME k", int(pat));
    // EXPIRETIME rounds to the nearest second, as Redis does.
    assert_reply(&mut c, "EXPIRETIME k", int((pat + 500) / 1000));
    assert_reply(&mut c, "GET k", bulk("v"));
    assert_reply(&mut c, "PERSIST k", int(1));
    assert_reply(&mut c, "TTL k", int(-1));
    assert_reply(&mut c, "PERSIST k", int(0));

    // A TTL in the past (or not positive) deletes the key at once.
    for (i, line) in [
        "EXPIRE {} 0",
        "EXPIRE {} -10",
        "PEXPIRE {} 0",
        "EXPIREAT {} 1",
        "PEXPIREAT {} 1000",
    ]
    .iter()
    .enumerate()
    {
        let key = format!("gone:{i}");
        assert_eq!(q(&mut c, &format!("SET {key} v")), ok());
        let cmd = line.replace("{}", &key);
        assert_eq!(q(&mut c, &cmd), int(1), "{cmd}");
        assert_eq!(q(&mut c, &format!("GET {key}")), nil(), "{cmd}");
        assert_eq!(q(&mut c, &format!("EXISTS {key}")), int(0), "{cmd}");
    }

    // Many keys with TTLs, spread over the cores.
    for i in 0..30 {
        assert_eq!(q(&mut c, &format!("SET t:{i} v EX {}", 1000 + i)), ok());
    }
    for i in 0..30 {
        let ttl = as_int(&q(&mut c, &format!("TTL t:{i}")));
        assert!((999 + i..=1000 + i).contains(&ttl), "t:{i} {ttl}");
    }

    let not_int = "ERR value is not an integer or out of range";
    assert_err(&mut c, "EXPIRE k abc", not_int);
    assert_err(&mut c, "PEXPIRE k 1.5", not_int);
    assert_err(&mut c, "EXPIREAT k x", not_int);
    assert_err(
        &mut c,
        "EXPIRE k 9223372036854775807",
        "ERR invalid expire time in 'expire' command",
    );
    assert_err(
        &mut c,
        "PEXPIRE k 9223372036854775807",
        "ERR invalid expire time in 'pexpire' command",
    );
    assert_err(
        &mut c,
        "EXPIREAT k 9223372036854775807",
        "ERR invalid expire time in 'expireat' command",
    );
    assert_reply(&mut c, "TTL k", int(-1));
    assert_err(
        &mut c,
        "EXPIRE k",
        "ERR wrong number of arguments for 'expire' command",
    );
    assert_err(
        &mut c,
        "TTL",
        "ERR wrong number of arguments for 'ttl' command",
    );
    assert_err(
        &mut c,
        "PERSIST",
        "ERR wrong number of arguments for 'persist' command",
    );
    assert_err(
        &mut c,
        "EXPIRETIME a b",
        "ERR wrong number of arguments for 'expiretime' command",
    );
}

fn expire_options(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "SET k v", ok());
    // No TTL yet: XX and GT fail (no TTL counts as infinite), NX and LT succeed.
    assert_reply(&mut c, "EXPIRE k 100 XX", int(0));
    assert_reply(&mut c, "EXPIRE k 100 GT", int(0));
    assert_reply(&mut c, "TTL k", int(-1));
    assert_reply(&mut c, "EXPIRE k 100 NX", int(1));
    assert_reply(&mut c, "EXPIRE k 200 NX", int(0));
    let ttl = as_int(&q(&mut c, "TTL k"));
    assert!((99..=100).contains(&ttl), "{ttl}");
    assert_reply(&mut c, "EXPIRE k 200 XX", int(1));
    assert_reply(&mut c, "EXPIRE k 100 GT", int(0));
    assert_reply(&mut c, "EXPIRE k 300 GT", int(1));
    assert_reply(&mut c, "EXPIRE k 400 LT", int(0));
    assert_reply(&mut c, "EXPIRE k 50 LT", int(1));
    let ttl = as_int(&q(&mut c, "TTL k"));
    assert!((49..=50).contains(&ttl), "{ttl}");
    assert_reply(&mut c, "PEXPIRE k 100000 gt", int(1));
    assert_reply(&mut c, "PEXPIRE k 100000 nx", int(0));
    let at = unix_secs() + 1000;
    assert_reply(&mut c, &format!("EXPIREAT k {at} GT"), int(1));
    assert_reply(&mut c, &format!("EXPIREAT k {} LT", at + 10), int(0));
    assert_reply(
        &mut c,
        &format!("PEXPIREAT k {} LT", at * 1000 - 10_000),
        int(1),
    );
    assert_reply(&mut c, "SET p v", ok());
    assert_reply(&mut c, "EXPIRE p 100 LT", int(1));
    assert_reply(&mut c, "EXPIRE nokey 100 NX", int(0));

    assert_err(
        &mut c,
        "EXPIRE k 10 NX XX",
        "ERR NX and XX, GT or LT options at the same time are not compatible",
    );
    assert_err(
        &mut c,
        "EXPIRE k 10 NX GT",
        "ERR NX and XX, GT or LT options at the same time are not compatible",
    );
    assert_err(
        &mut c,
        "EXPIRE k 10 GT LT",
        "ERR GT and LT options at the same time are not compatible",
    );
    assert_err(&mut c, "EXPIRE k 10 FOO", "ERR Unsupported option FOO");
    assert_err(&mut c, "PEXPIREAT k 10 bar", "ERR Unsupported option bar");
}

fn rename(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    // Many pairs, so that with two cores some cross cores.
    for i in 0..16 {
        let (a, b) = (format!("src:{i}"), format!("dst:{i}"));
        assert_eq!(
            run(&mut c, &["SET", &a, &format!("v{i}"), "EX", "100"]),
            ok()
        );
        assert_eq!(run(&mut c, &["RENAME", &a, &b]), ok(), "{a} -> {b}");
        assert_eq!(run(&mut c, &["GET", &a]), nil());
        assert_eq!(run(&mut c, &["GET", &b]), bulk(format!("v{i}")));
        let ttl = as_int(&run(&mut c, &["TTL", &b]));
        assert!((99..=100).contains(&ttl), "TTL moves with the key: {ttl}");
        // Overwrites the destination, its value and its TTL.
        assert_eq!(run(&mut c, &["SET", &a, "new"]), ok());
        assert_eq!(run(&mut c, &["RENAME", &a, &b]), ok());
        assert_eq!(run(&mut c, &["GET", &b]), bulk("new"));
        assert_eq!(run(&mut c, &["TTL", &b]), int(-1));
        assert_eq!(run(&mut c, &["EXISTS", &a, &b]), int(1));

        let (x, y) = (format!("nx:{i}"), format!("ny:{i}"));
        assert_eq!(run(&mut c, &["SET", &x, "x"]), ok());
        assert_eq!(run(&mut c, &["SET", &y, "y"]), ok());
        assert_eq!(run(&mut c, &["RENAMENX", &x, &y]), int(0));
        assert_eq!(run(&mut c, &["GET", &x]), bulk("x"));
        assert_eq!(run(&mut c, &["GET", &y]), bulk("y"));
        assert_eq!(run(&mut c, &["DEL", &y]), int(1));
        assert_eq!(run(&mut c, &["RENAMENX", &x, &y]), int(1));
        assert_eq!(run(&mut c, &["GET", &y]), bulk("x"));
        assert_eq!(run(&mut c, &["EXISTS", &x]), int(0));
    }
    assert_reply(&mut c, "DBSIZE", int(32));
    assert_reply(&mut c, "SET {tag}a 1", ok());
    assert_reply(&mut c, "RENAME {tag}a {tag}b", ok());
    assert_reply(&mut c, "GET {tag}b", bulk("1"));
    // Renaming a key to itself.
    assert_reply(&mut c, "RENAME {tag}b {tag}b", ok());
    assert_reply(&mut c, "GET {tag}b", bulk("1"));
    assert_reply(&mut c, "RENAMENX {tag}b {tag}b", int(0));

    assert_err(&mut c, "RENAME nokey x", "ERR no such key");
    assert_err(&mut c, "RENAMENX nokey x", "ERR no such key");
    assert_err(
        &mut c,
        "RENAME a",
        "ERR wrong number of arguments for 'rename' command",
    );
    assert_err(
        &mut c,
        "RENAMENX a b c",
        "ERR wrong number of arguments for 'renamenx' command",
    );
}

fn copy(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    for i in 0..16 {
        let (a, b) = (format!("csrc:{i}"), format!("cdst:{i}"));
        assert_eq!(
            run(&mut c, &["SET", &a, &format!("v{i}"), "EX", "100"]),
            ok()
        );
        assert_eq!(run(&mut c, &["COPY", &a, &b]), int(1), "{a} -> {b}");
        assert_eq!(run(&mut c, &["GET", &a]), bulk(format!("v{i}")));
        assert_eq!(run(&mut c, &["GET", &b]), bulk(format!("v{i}")));
        let ttl = as_int(&run(&mut c, &["TTL", &b]));
        assert!((99..=100).contains(&ttl), "COPY copies the TTL: {ttl}");
        assert_eq!(run(&mut c, &["SET", &a, "changed"]), ok());
        assert_eq!(run(&mut c, &["COPY", &a, &b]), int(0));
        assert_eq!(run(&mut c, &["GET", &b]), bulk(format!("v{i}")));
        assert_eq!(run(&mut c, &["COPY", &a, &b, "REPLACE"]), int(1));
        assert_eq!(run(&mut c, &["GET", &b]), bulk("changed"));
        assert_eq!(run(&mut c, &["TTL", &b]), int(-1));
        // The copy is independent of the source.
        assert_eq!(run(&mut c, &["APPEND", &a, "!"]), int(8));
        assert_eq!(run(&mut c, &["GET", &b]), bulk("changed"));
    }
    assert_reply(&mut c, "COPY nokey x", int(0));
    assert_reply(&mut c, "EXISTS x", int(0));
    assert_reply(&mut c, "COPY csrc:0 {t}x DB 0", int(1));
    assert_reply(&mut c, "GET {t}x", bulk("changed!"));
    assert_err(&mut c, "COPY csrc:0 y DB 1", "ERR DB index is out of range");
    assert_err(
        &mut c,
        "COPY csrc:0 csrc:0",
        "ERR source and destination objects are the same",
    );
    assert_err(&mut c, "COPY csrc:0 y FOO", "ERR syntax error");
    assert_err(
        &mut c,
        "COPY a",
        "ERR wrong number of arguments for 'copy' command",
    );
}

fn randomkey(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "RANDOMKEY", nil());
    let keys: HashSet<String> = (0..30).map(|i| format!("r:{i}")).collect();
    for k in &keys {
        assert_eq!(run(&mut c, &["SET", k, "v"]), ok());
    }
    let mut seen = HashSet::new();
    for _ in 0..200 {
        let k = as_str(&q(&mut c, "RANDOMKEY"));
        assert!(keys.contains(&k), "RANDOMKEY returned unknown {k}");
        seen.insert(k);
    }
    assert!(seen.len() > 5, "RANDOMKEY is hardly random: {seen:?}");
    // With one key left, that key; with none, nil.
    let mut rest: Vec<String> = keys.iter().cloned().collect();
    let last = rest.pop().unwrap();
    assert_eq!(run(&mut c, &keys_arg("DEL", rest)), int(29));
    for _ in 0..10 {
        assert_reply(&mut c, "RANDOMKEY", bulk(&last));
    }
    assert_eq!(run(&mut c, &["DEL", &last]), int(1));
    assert_reply(&mut c, "RANDOMKEY", nil());
    assert_err(
        &mut c,
        "RANDOMKEY x",
        "ERR wrong number of arguments for 'randomkey' command",
    );
}

fn sorted(v: &Value) -> Vec<String> {
    let mut k = as_strings(v);
    k.sort();
    k
}

fn keys_patterns(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "KEYS *", arr(vec![]));
    let names = [
        "hello", "hallo", "hxllo", "hllo", "heeeello", "user:1", "user:2", "user:10", "a*b", "axb",
        "other",
    ];
    for k in names {
        assert_eq!(run(&mut c, &["SET", k, "v"]), ok());
    }
    let mut all: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    all.sort();
    assert_eq!(sorted(&q(&mut c, "KEYS *")), all);
    assert_eq!(
        sorted(&q(&mut c, "KEYS h?llo")),
        ["hallo", "hello", "hxllo"]
    );
    assert_eq!(
        sorted(&q(&mut c, "KEYS h*llo")),
        ["hallo", "heeeello", "hello", "hllo", "hxllo"]
    );
    assert_eq!(sorted(&q(&mut c, "KEYS h[ae]llo")), ["hallo", "hello"]);
    assert_eq!(sorted(&q(&mut c, "KEYS h[^e]llo")), ["hallo", "hxllo"]);
    assert_eq!(sorted(&q(&mut c, "KEYS h[a-b]llo")), ["hallo"]);
    assert_eq!(
        sorted(&q(&mut c, "KEYS user:*")),
        ["user:1", "user:10", "user:2"]
    );
    assert_eq!(sorted(&q(&mut c, "KEYS user:?")), ["user:1", "user:2"]);
    assert_eq!(sorted(&q(&mut c, "KEYS a\\*b")), ["a*b"]);
    assert_eq!(sorted(&q(&mut c, "KEYS a*b")), ["a*b", "axb"]);
    assert_eq!(sorted(&q(&mut c, "KEYS HELLO")), Vec::<String>::new());
    assert_eq!(sorted(&q(&mut c, "KEYS nomatch*")), Vec::<String>::new());

    // Many keys over all cores.
    for i in 0..200 {
        assert_eq!(q(&mut c, &format!("SET many:{i} v")), ok());
    }
    let many = as_strings(&q(&mut c, "KEYS many:*"));
    assert_eq!(many.len(), 200);
    let unique: HashSet<&String> = many.iter().collect();
    assert_eq!(unique.len(), 200);
    assert_err(
        &mut c,
        "KEYS",
        "ERR wrong number of arguments for 'keys' command",
    );
}

/// Runs SCAN from cursor 0 until it returns 0, with extra arguments after the cursor;
/// returns every key returned, repeats included. `during` runs after each call.
fn scan_all(
    c: &mut redis::Connection,
    extra: &[&str],
    mut during: impl FnMut(&mut redis::Connection, usize),
) -> Vec<String> {
    let mut cursor = "0".to_string();
    let mut keys = Vec::new();
    for call in 0..100_000 {
        let mut args = vec!["SCAN", cursor.as_str()];
        args.extend_from_slice(extra);
        let reply = as_array(&run(c, &args));
        assert_eq!(reply.len(), 2, "{reply:?}");
        let next = as_str(&reply[0]);
        next.parse::<u64>()
            .unwrap_or_else(|_| panic!("cursor {next:?}"));
        keys.extend(as_strings(&reply[1]));
        during(c, call);
        if next == "0" {
            return keys;
        }
        cursor = next;
    }
    panic!("SCAN did not return to cursor 0 within 100000 calls");
}

fn scan_full_iteration(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_eq!(scan_all(&mut c, &[], |_, _| {}), Vec::<String>::new());
    let n = 1000;
    let mut mset = vec!["MSET".to_string()];
    for i in 0..n {
        mset.push(format!("s:{i}"));
        mset.push("v".to_string());
    }
    assert_eq!(run(&mut c, &mset), ok());
    let want: BTreeSet<String> = (0..n).map(|i| format!("s:{i}")).collect();
    for count in [None, Some("1"), Some("7"), Some("100"), Some("5000")] {
        let extra: Vec<&str> = count.map(|n| vec!["COUNT", n]).unwrap_or_default();
        let got = scan_all(&mut c, &extra, |_, _| {});
        let set: BTreeSet<String> = got.iter().cloned().collect();
        assert_eq!(set, want, "SCAN COUNT {count:?} missed or invented keys");
        // Redis allows repeats, but a static keyspace should not need many.
        assert!(
            got.len() <= 2 * n,
            "COUNT {count:?}: {} keys returned",
            got.len()
        );
    }
}

fn scan_match_type_count(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    for i in 0..300 {
        assert_eq!(q(&mut c, &format!("SET user:{i} v")), ok());
        assert_eq!(q(&mut c, &format!("SET item:{i} v")), ok());
    }
    let users: BTreeSet<String> = (0..300).map(|i| format!("user:{i}")).collect();
    let got: BTreeSet<String> = scan_all(&mut c, &["MATCH", "user:*"], |_, _| {})
        .into_iter()
        .collect();
    assert_eq!(got, users);
    let got: BTreeSet<String> = scan_all(&mut c, &["MATCH", "user:1?", "COUNT", "13"], |_, _| {})
        .into_iter()
        .collect();
    let want: BTreeSet<String> = (10..20).map(|i| format!("user:{i}")).collect();
    assert_eq!(got, want);
    let got = scan_all(&mut c, &["TYPE", "string"], |_, _| {});
    assert_eq!(got.iter().collect::<BTreeSet<_>>().len(), 600);
    let got = scan_all(&mut c, &["TYPE", "hash", "COUNT", "50"], |_, _| {});
    assert!(got.is_empty(), "{got:?}");
    let got = scan_all(&mut c, &["MATCH", "nomatch*"], |_, _| {});
    assert!(got.is_empty(), "{got:?}");

    assert_err(&mut c, "SCAN abc", "ERR invalid cursor");
    // Any number is a cursor, as in Redis: one this server never handed out (its core
    // bits name no core) ends the walk.
    let odd = (1u64 << 16) - 1;
    match q(&mut c, &format!("SCAN {odd}")) {
        Value::Array(parts) => assert_eq!(parts.len(), 2, "{parts:?}"),
        other => panic!("SCAN {odd} answered {other:?}"),
    }
    assert_err(&mut c, "SCAN 0 COUNT 0", "ERR syntax error");
    assert_err(
        &mut c,
        "SCAN 0 COUNT x",
        "ERR value is not an integer or out of range",
    );
    assert_err(&mut c, "SCAN 0 MATCH", "ERR syntax error");
    assert_err(&mut c, "SCAN 0 FOO bar", "ERR syntax error");
    assert_err(
        &mut c,
        "SCAN",
        "ERR wrong number of arguments for 'scan' command",
    );
}

/// Redis's guarantee: a key present for the whole iteration is returned, even while the
/// keyspace grows (and tables resize) under the cursor.
fn scan_while_inserting(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let mut writer = s.redis();
    for i in 0..500 {
        assert_eq!(q(&mut c, &format!("SET base:{i} v")), ok());
    }
    // Grow to 5.5x while the scan runs (so tables resize under the cursor), then stop
    // growing: from there the scan must come back to cursor 0.
    let mut next = 0;
    let got = scan_all(&mut c, &["COUNT", "20"], |_, _| {
        for _ in 0..100 {
            if next < 2500 {
                assert_eq!(q(&mut writer, &format!("SET grow:{next} v")), ok());
                next += 1;
            }
        }
    });
    let got: HashSet<String> = got.into_iter().collect();
    for i in 0..500 {
        assert!(got.contains(&format!("base:{i}")), "SCAN missed base:{i}");
    }
    assert!(next >= 500, "the keyspace grew by {next} keys only");
}

fn expired_keys_are_never_returned(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let n = 30;
    for i in 0..n {
        assert_eq!(q(&mut c, &format!("SET keep:{i} v")), ok());
        assert_eq!(q(&mut c, &format!("SET exp:{i} v PX 50")), ok());
    }
    // Wait (bounded) until the keyspace listing has dropped them.
    assert!(
        eventually(Duration::from_secs(5), || {
            as_array(&q(&mut c, "KEYS exp:*")).is_empty()
        }),
        "KEYS still lists keys with PX 50 after 5 s"
    );
    let keys = as_strings(&q(&mut c, "KEYS *"));
    assert_eq!(keys.len(), n, "{keys:?}");
    assert!(keys.iter().all(|k| k.starts_with("keep:")), "{keys:?}");
    let scanned = scan_all(&mut c, &["COUNT", "5"], |_, _| {});
    assert!(
        scanned.iter().all(|k| k.starts_with("keep:")),
        "SCAN returned an expired key: {scanned:?}"
    );
    for _ in 0..30 {
        let k = as_str(&q(&mut c, "RANDOMKEY"));
        assert!(k.starts_with("keep:"), "RANDOMKEY returned {k}");
    }
    let exp = || (0..n).map(|i| format!("exp:{i}"));
    assert_eq!(run(&mut c, &keys_arg("EXISTS", exp())), int(0));
    let mget = as_array(&run(&mut c, &keys_arg("MGET", exp())));
    assert!(mget.iter().all(|v| *v == nil()), "{mget:?}");
    for i in 0..n {
        assert_eq!(q(&mut c, &format!("GET exp:{i}")), nil());
        assert_eq!(q(&mut c, &format!("TTL exp:{i}")), int(-2));
        assert_eq!(q(&mut c, &format!("STRLEN exp:{i}")), int(0));
    }
    assert!(
        eventually(Duration::from_secs(5), || q(&mut c, "DBSIZE")
            == int(n as i64)),
        "DBSIZE still counts expired keys"
    );
}

fn expired_keys_are_missing_for_writes(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "SET e:nx v PX 50", ok());
    assert_reply(&mut c, "SET e:incr 41 PX 50", ok());
    assert_reply(&mut c, "SET e:append abc PX 50", ok());
    assert_reply(&mut c, "SET e:rename v PX 50", ok());
    assert_reply(&mut c, "SET e:getset old PX 50", ok());
    assert_reply(&mut c, "SET e:expire v PX 50", ok());
    // Set last with a longer TTL: once it is gone, the others have expired on every core
    // (the margin covers per-core clock caching).
    assert_reply(&mut c, "SET sentinel v PX 150", ok());
    assert!(
        eventually(Duration::from_secs(5), || q(&mut c, "GET sentinel")
            == nil()),
        "key with PX 150 still there after 5 s"
    );
    assert_reply(&mut c, "SET e:nx new NX", ok());
    assert_reply(&mut c, "INCR e:incr", int(1));
    assert_reply(&mut c, "APPEND e:append xy", int(2));
    assert_err(&mut c, "RENAME e:rename other", "ERR no such key");
    assert_reply(&mut c, "GETSET e:getset new", nil());
    assert_reply(&mut c, "EXPIRE e:expire 100", int(0));
    assert_reply(&mut c, "TTL e:nx", int(-1));
}
