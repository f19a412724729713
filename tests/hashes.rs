//! Hash commands through the redis crate (and RESP3 through a raw socket): exact replies
//! and Redis's error texts, WRONGTYPE both ways, encodings and their thresholds, expiry,
//! RENAME/COPY across cores, the memcached port's view of a hash, and replication.
//! Runs against redis-server too (`BATON_ITEST_REFERENCE=redis-server`), except what is
//! Baton's own.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;

cores_tests!(
    set_get_delete,
    wrong_type_both_ways,
    increments,
    random_fields,
    scan_fields,
    resp3_replies,
    encodings_and_thresholds,
    expiry_rename_copy_and_memory,
    memcached_sees_a_hash_as_no_item,
    replica_holds_the_same_hashes,
    eviction_counts_hash_memory,
);

fn sorted(v: &Value) -> Vec<String> {
    let mut s = as_strings(v);
    s.sort();
    s
}

fn set_get_delete(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "HSET h a 1 b 2", int(2));
    assert_reply(&mut c, "HSET h a 3 c 4 c 5", int(1));
    assert_reply(&mut c, "HGET h a", bulk("3"));
    assert_reply(&mut c, "HGET h c", bulk("5"));
    assert_reply(&mut c, "HGET h nope", nil());
    assert_reply(&mut c, "HGET missing a", nil());
    assert_reply(
        &mut c,
        "HMGET h a nope b",
        arr(vec![bulk("3"), nil(), bulk("2")]),
    );
    assert_reply(&mut c, "HMGET missing a b", arr(vec![nil(), nil()]));
    assert_reply(&mut c, "HLEN h", int(3));
    assert_reply(&mut c, "HLEN missing", int(0));
    assert_reply(&mut c, "HSTRLEN h a", int(1));
    assert_reply(&mut c, "HSTRLEN h nope", int(0));
    assert_reply(&mut c, "HEXISTS h b", int(1));
    assert_reply(&mut c, "HEXISTS h nope", int(0));
    assert_reply(
        &mut c,
        "HKEYS h",
        arr(vec![bulk("a"), bulk("b"), bulk("c")]),
    );
    assert_reply(
        &mut c,
        "HVALS h",
        arr(vec![bulk("3"), bulk("2"), bulk("5")]),
    );
    assert_reply(&mut c, "HKEYS missing", arr(vec![]));
    assert_reply(
        &mut c,
        "HGETALL h",
        arr(vec![
            bulk("a"),
            bulk("3"),
            bulk("b"),
            bulk("2"),
            bulk("c"),
            bulk("5"),
        ]),
    );
    assert_reply(&mut c, "HGETALL missing", arr(vec![]));
    assert_reply(&mut c, "HSETNX h a x", int(0));
    assert_reply(&mut c, "HSETNX h d x", int(1));
    assert_reply(&mut c, "HSETNX fresh f v", int(1));
    assert_reply(&mut c, "HMSET h e 6 f 7", ok());
    assert_reply(&mut c, "HDEL h a a nope b", int(2));
    assert_reply(&mut c, "HDEL missing a", int(0));
    assert_reply(&mut c, "HLEN h", int(4));
    // Deleting the last field deletes the key.
    assert_reply(&mut c, "HDEL h c d e f", int(4));
    assert_reply(&mut c, "EXISTS h", int(0));
    assert_reply(&mut c, "TYPE h", simple("none"));
    // Binary-safe fields and values, empty ones too.
    let (f, v): (&[u8], &[u8]) = (b"\x00f\r\n", b"\xff\x00v");
    assert_eq!(
        run(&mut c, &[b"HSET".as_slice(), b"bin", f, v, b"", b""]),
        int(2)
    );
    assert_eq!(run(&mut c, &[b"HGET".as_slice(), b"bin", f]), bulk(v));
    assert_eq!(run(&mut c, &["HGET", "bin", ""]), bulk(""));
    // Arity and pairing errors.
    assert_err(
        &mut c,
        "HSET h a",
        "ERR wrong number of arguments for 'hset' command",
    );
    assert_err(
        &mut c,
        "HSET h a 1 b",
        "ERR wrong number of arguments for 'hset' command",
    );
    assert_err(
        &mut c,
        "HMSET h a 1 b",
        "ERR wrong number of arguments for 'hmset' command",
    );
    assert_err(
        &mut c,
        "HGET h",
        "ERR wrong number of arguments for 'hget' command",
    );
    assert_err(
        &mut c,
        "HDEL h",
        "ERR wrong number of arguments for 'hdel' command",
    );
    assert_err(
        &mut c,
        "HSETNX h a",
        "ERR wrong number of arguments for 'hsetnx' command",
    );
}

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn wrong_type_both_ways(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "SET s v", ok());
    assert_reply(&mut c, "HSET h f v", int(1));
    for line in [
        "HSET s f v",
        "HMSET s f v",
        "HSETNX s f v",
        "HGET s f",
        "HMGET s f",
        "HGETALL s",
        "HDEL s f",
        "HEXISTS s f",
        "HLEN s",
        "HSTRLEN s f",
        "HKEYS s",
        "HVALS s",
        "HINCRBY s f 1",
        "HINCRBYFLOAT s f 1",
        "HRANDFIELD s",
        "HRANDFIELD s 2",
        "HSCAN s 0",
        "GET h",
        "GETSET h x",
        "SET h x GET",
        "APPEND h x",
        "INCR h",
        "DECR h",
        "INCRBY h 2",
        "DECRBY h 2",
        "INCRBYFLOAT h 1",
        "STRLEN h",
        "GETRANGE h 0 1",
        "SUBSTR h 0 1",
        "SETRANGE h 0 x",
        "GETDEL h",
        "GETEX h",
        "GETEX h PERSIST",
    ] {
        assert_err(&mut c, line, WRONGTYPE);
    }
    assert_reply(&mut c, "HGET h f", bulk("v"));
    assert_reply(&mut c, "MGET h s nope", arr(vec![nil(), bulk("v"), nil()]));
    assert_err(
        &mut c,
        "LCS h s",
        "ERR The specified keys must contain string values",
    );
    assert_reply(&mut c, "TYPE h", simple("hash"));
    assert_reply(&mut c, "TYPE s", simple("string"));
    assert_reply(&mut c, "TYPE nope", simple("none"));
    // SETNX and MSETNX see the hash as present; plain SET replaces any type.
    assert_reply(&mut c, "SETNX h x", int(0));
    assert_reply(&mut c, "MSETNX h x", int(0));
    assert_reply(&mut c, "SET h now-a-string", ok());
    assert_reply(&mut c, "GET h", bulk("now-a-string"));
    assert_reply(&mut c, "TYPE h", simple("string"));
    // And back: DEL, then HSET.
    assert_reply(&mut c, "DEL h", int(1));
    assert_reply(&mut c, "HSET h f v", int(1));
    assert_reply(&mut c, "EXISTS h s", int(2));
}

fn increments(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "HINCRBY h n 5", int(5));
    assert_reply(&mut c, "HINCRBY h n -7", int(-2));
    assert_reply(&mut c, "HGET h n", bulk("-2"));
    assert_err(
        &mut c,
        "HINCRBY h n x",
        "ERR value is not an integer or out of range",
    );
    assert_err(
        &mut c,
        "HINCRBY h n 1.5",
        "ERR value is not an integer or out of range",
    );
    assert_reply(&mut c, "HSET h t text max 9223372036854775807", int(2));
    assert_err(&mut c, "HINCRBY h t 1", "ERR hash value is not an integer");
    assert_err(
        &mut c,
        "HINCRBY h max 1",
        "ERR increment or decrement would overflow",
    );
    assert_reply(&mut c, "HINCRBYFLOAT h f 10.50", bulk("10.5"));
    assert_reply(&mut c, "HINCRBYFLOAT h f 0.1", bulk("10.6"));
    assert_reply(&mut c, "HINCRBYFLOAT h f -5", bulk("5.6"));
    assert_reply(&mut c, "HSET h g 5.0e3", int(1));
    assert_reply(&mut c, "HINCRBYFLOAT h g 2.0e2", bulk("5200"));
    assert_reply(&mut c, "HINCRBYFLOAT h n 1", bulk("-1"));
    assert_err(
        &mut c,
        "HINCRBYFLOAT h t 1",
        "ERR hash value is not a float",
    );
    assert_err(
        &mut c,
        "HINCRBYFLOAT h f x",
        "ERR value is not a valid float",
    );
    assert_err(
        &mut c,
        "HINCRBYFLOAT h f inf",
        "ERR value is NaN or Infinity",
    );
    assert_reply(&mut c, "HGET h f", bulk("5.6"));
}

fn random_fields(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "HRANDFIELD h", nil());
    assert_reply(&mut c, "HRANDFIELD h 3", arr(vec![]));
    assert_reply(&mut c, "HRANDFIELD h -3 WITHVALUES", arr(vec![]));
    assert_reply(&mut c, "HSET h a 1 b 2 c 3", int(3));
    let one = as_str(&q(&mut c, "HRANDFIELD h"));
    assert!(["a", "b", "c"].contains(&one.as_str()), "{one}");
    assert_reply(&mut c, "HRANDFIELD h 0", arr(vec![]));
    assert_eq!(sorted(&q(&mut c, "HRANDFIELD h 10")), ["a", "b", "c"]);
    let two = sorted(&q(&mut c, "HRANDFIELD h 2"));
    assert!(two.len() == 2 && two[0] != two[1], "{two:?}");
    let many = as_strings(&q(&mut c, "HRANDFIELD h -20"));
    assert_eq!(many.len(), 20, "a negative count may repeat");
    let with = as_strings(&q(&mut c, "HRANDFIELD h -5 WITHVALUES"));
    assert_eq!(with.len(), 10);
    for pair in with.chunks(2) {
        let want = match pair[0].as_str() {
            "a" => "1",
            "b" => "2",
            _ => "3",
        };
        assert_eq!(pair[1], want);
    }
    assert_eq!(as_strings(&q(&mut c, "HRANDFIELD h 2 WITHVALUES")).len(), 4);
    assert_err(&mut c, "HRANDFIELD h 1 WITHVALUE", "ERR syntax error");
    assert_err(&mut c, "HRANDFIELD h 1 WITHVALUES x", "ERR syntax error");
    assert_err(
        &mut c,
        "HRANDFIELD h x",
        "ERR value is not an integer or out of range",
    );
    assert_err(
        &mut c,
        "HRANDFIELD h -9223372036854775808",
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
    );
    assert_err(
        &mut c,
        "HRANDFIELD h -9223372036854775807 WITHVALUES",
        "ERR value is out of range",
    );
    // A table form: random positions over a dense vector.
    for i in 0..300 {
        run(&mut c, &["HSET", "big", &format!("f{i}"), "v"]);
    }
    let picks = sorted(&q(&mut c, "HRANDFIELD big 50"));
    let mut dedup = picks.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), 50, "distinct picks");
    assert_eq!(as_strings(&q(&mut c, "HRANDFIELD big -500")).len(), 500);
    if baton_only("HRANDFIELD refuses a count it would have to build in memory") {
        assert_err(
            &mut c,
            "HRANDFIELD big -99999999999",
            "ERR value is out of range",
        );
    }
}

fn scan_fields(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "HSCAN missing 0", arr(vec![bulk("0"), arr(vec![])]));
    assert_reply(&mut c, "HSET h a 1 b 2 ab 3", int(3));
    assert_reply(
        &mut c,
        "HSCAN h 0",
        arr(vec![
            bulk("0"),
            arr(vec![
                bulk("a"),
                bulk("1"),
                bulk("b"),
                bulk("2"),
                bulk("ab"),
                bulk("3"),
            ]),
        ]),
    );
    assert_reply(
        &mut c,
        "HSCAN h 0 MATCH a* COUNT 1",
        arr(vec![
            bulk("0"),
            arr(vec![bulk("a"), bulk("1"), bulk("ab"), bulk("3")]),
        ]),
    );
    assert_err(&mut c, "HSCAN h x", "ERR invalid cursor");
    assert_err(&mut c, "HSCAN h 0 COUNT 0", "ERR syntax error");
    assert_err(
        &mut c,
        "HSCAN h 0 COUNT x",
        "ERR value is not an integer or out of range",
    );
    assert_err(&mut c, "HSCAN h 0 FOO", "ERR syntax error");
    // A table: every field once over the whole scan, while fields come and go.
    for i in 0..500 {
        run(&mut c, &["HSET", "big", &format!("f{i}"), &i.to_string()]);
    }
    let mut seen = BTreeMap::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let r = as_array(&run(&mut c, &["HSCAN", "big", &cursor, "COUNT", "20"]));
        cursor = as_str(&r[0]);
        for kv in as_strings(&r[1]).chunks(2) {
            *seen.entry(kv[0].clone()).or_insert(0) += 1;
        }
        // Churn: delete a field the scan may or may not have passed, add a new one.
        run(&mut c, &["HDEL", "big", &format!("f{}", 400 + calls)]);
        run(&mut c, &["HSET", "big", &format!("new{calls}"), "v"]);
        calls += 1;
        if cursor == "0" {
            break;
        }
        assert!(calls < 1000, "the scan does not end");
    }
    for i in 0..400 {
        assert!(
            seen.contains_key(&format!("f{i}")),
            "f{i} was never returned"
        );
    }
}

fn resp3_replies(cores: usize) {
    let s = Server::start(cores);
    let mut r = s.raw();
    r.call(&["HELLO", "3"]);
    r.call(&["HSET", "h", "a", "1", "b", "2"]);
    r.send_command(&["HGETALL", "h"]);
    r.expect(b"%2\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n");
    r.send_command(&["HGETALL", "missing"]);
    r.expect(b"%0\r\n");
    r.send_command(&["HGET", "h", "nope"]);
    r.expect(b"_\r\n");
    r.send_command(&["HRANDFIELD", "h", "-2", "WITHVALUES"]);
    let v = r.read_value();
    let Value::Array(pairs) = v else {
        panic!("HRANDFIELD WITHVALUES in RESP3 is an array of pairs: {v:?}")
    };
    assert_eq!(pairs.len(), 2);
    for p in pairs {
        assert!(matches!(&p, Value::Array(kv) if kv.len() == 2), "{p:?}");
    }
    r.send_command(&["HRANDFIELD", "missing"]);
    r.expect(b"_\r\n");
}

fn encodings_and_thresholds(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let cfg = |c: &mut redis::Connection, name: &str| as_strings(&run(c, &["CONFIG", "GET", name]));
    if baton_only("redis-server without redis.conf defaults to 512 entries") {
        assert_eq!(
            cfg(&mut c, "hash-max-listpack-entries"),
            ["hash-max-listpack-entries", "128"]
        );
    }
    assert_reply(&mut c, "CONFIG SET hash-max-listpack-entries 128", ok());
    assert_eq!(
        cfg(&mut c, "hash-max-listpack-value"),
        ["hash-max-listpack-value", "64"]
    );
    for i in 0..128 {
        run(&mut c, &["HSET", "n", &i.to_string(), "v"]);
    }
    assert_reply(&mut c, "OBJECT ENCODING n", bulk("listpack"));
    assert_reply(&mut c, "HSET n 128 v", int(1));
    assert_reply(&mut c, "OBJECT ENCODING n", bulk("hashtable"));
    assert_reply(&mut c, "HLEN n", int(129));
    assert_reply(&mut c, "HDEL n 0 1 2", int(3));
    assert_reply(&mut c, "OBJECT ENCODING n", bulk("hashtable"));
    let v64 = "x".repeat(64);
    run(&mut c, &["HSET", "v", "f", &v64]);
    assert_reply(&mut c, "OBJECT ENCODING v", bulk("listpack"));
    run(&mut c, &["HSET", "v", "g", &"x".repeat(65)]);
    assert_reply(&mut c, "OBJECT ENCODING v", bulk("hashtable"));
    run(&mut c, &["HSET", "k", &"k".repeat(65), "v"]);
    assert_reply(&mut c, "OBJECT ENCODING k", bulk("hashtable"));
    assert_eq!(run(&mut c, &["HGET", "v", "f"]), bulk(&v64));
    // Thresholds are settable, with Redis's old names too.
    assert_reply(&mut c, "CONFIG SET hash-max-listpack-entries 4", ok());
    assert_reply(&mut c, "CONFIG SET hash-max-ziplist-value 8", ok());
    // In the server's order (Redis's is its dict's): compared as a map.
    let all: BTreeMap<String, String> = cfg(&mut c, "hash-max-listpack-*")
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    assert_eq!(
        all.into_iter().collect::<Vec<_>>(),
        [
            ("hash-max-listpack-entries".to_string(), "4".to_string()),
            ("hash-max-listpack-value".to_string(), "8".to_string())
        ]
    );
    assert_reply(&mut c, "HSET small a 1 b 2 c 3 d 4", int(4));
    assert_reply(&mut c, "OBJECT ENCODING small", bulk("listpack"));
    assert_reply(&mut c, "HSET small e 5", int(1));
    assert_reply(&mut c, "OBJECT ENCODING small", bulk("hashtable"));
    assert_reply(&mut c, "HSET short a 123456789", int(1));
    assert_reply(&mut c, "OBJECT ENCODING short", bulk("hashtable"));
    let e = q(&mut c, "CONFIG SET hash-max-listpack-entries -1");
    assert!(err_text(&e).starts_with("ERR CONFIG SET failed"), "{e:?}");
    // Strings still say theirs.
    assert_reply(&mut c, "SET s 12", ok());
    assert_reply(&mut c, "OBJECT ENCODING s", bulk("int"));
}

fn expiry_rename_copy_and_memory(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "CONFIG SET hash-max-listpack-entries 128", ok());
    assert_reply(&mut c, "HSET h f v", int(1));
    assert_reply(&mut c, "EXPIRE h 100", int(1));
    let ttl = as_int(&q(&mut c, "TTL h"));
    assert!((99..=100).contains(&ttl), "{ttl}");
    assert_reply(&mut c, "HSET h g w", int(1));
    assert!(
        as_int(&q(&mut c, "TTL h")) > 0,
        "a field write keeps the TTL"
    );
    assert_reply(&mut c, "PERSIST h", int(1));
    assert_reply(&mut c, "TTL h", int(-1));
    assert_reply(&mut c, "PEXPIRE h 50", int(1));
    assert!(
        eventually(Duration::from_secs(5), || as_int(&q(&mut c, "EXISTS h"))
            == 0),
        "an expired hash goes"
    );
    assert_reply(&mut c, "HGET h f", nil());
    assert_reply(&mut c, "HLEN h", int(0));
    // RENAME and COPY, across cores too (many destination names), keep type, fields,
    // TTL and encoding.
    for i in 0..8 {
        let (src, dst, cp) = (format!("src{i}"), format!("dst{i}"), format!("copy{i}"));
        run(&mut c, &["HSET", &src, "a", "1", "b", "2"]);
        for j in 0..200 {
            run(&mut c, &["HSET", &src, &format!("f{j}"), "v"]);
        }
        run(&mut c, &["EXPIRE", &src, "1000"]);
        assert_eq!(run(&mut c, &["COPY", &src, &cp]), int(1));
        assert_eq!(run(&mut c, &["RENAME", &src, &dst]), ok());
        assert_eq!(run(&mut c, &["EXISTS", &src]), int(0));
        for k in [&dst, &cp] {
            assert_eq!(run(&mut c, &["TYPE", k]), simple("hash"));
            assert_eq!(run(&mut c, &["HLEN", k]), int(202));
            assert_eq!(run(&mut c, &["HGET", k, "b"]), bulk("2"));
            assert_eq!(run(&mut c, &["OBJECT", "ENCODING", k]), bulk("hashtable"));
            assert!(as_int(&run(&mut c, &["TTL", k])) > 900);
        }
        assert_eq!(run(&mut c, &["COPY", &dst, &cp]), int(0));
        run(&mut c, &["HSET", "small", "x", "y"]);
        assert_eq!(run(&mut c, &["COPY", "small", &cp, "REPLACE"]), int(1));
        assert_eq!(run(&mut c, &["OBJECT", "ENCODING", &cp]), bulk("listpack"));
        assert_eq!(
            run(&mut c, &["HGETALL", &cp]),
            arr(vec![bulk("x"), bulk("y")])
        );
    }
    // SCAN ... TYPE hash finds hashes only.
    run(&mut c, &["SET", "str", "v"]);
    let mut found = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let r = as_array(&run(
            &mut c,
            &["SCAN", &cursor, "TYPE", "hash", "COUNT", "100"],
        ));
        cursor = as_str(&r[0]);
        found.extend(as_strings(&r[1]));
        if cursor == "0" {
            break;
        }
    }
    found.sort();
    assert_eq!(found.len(), 17, "{found:?}");
    assert!(!found.contains(&"str".to_string()));
    // MEMORY USAGE grows with the fields.
    run(&mut c, &["HSET", "m", "f", "v"]);
    let small = as_int(&q(&mut c, "MEMORY USAGE m"));
    for j in 0..1000 {
        run(&mut c, &["HSET", "m", &format!("field:{j}"), "some value"]);
    }
    let big = as_int(&q(&mut c, "MEMORY USAGE m"));
    assert!(small > 0 && big > small + 20_000, "{small} then {big}");
}

fn memcached_sees_a_hash_as_no_item(cores: usize) {
    if !baton_only("a hash seen over the memcached port") {
        return;
    }
    let s = Server::start_with_memcache(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "HSET h f v", int(1));
    let mut m = s.memcache_raw();
    m.send(b"get h\r\n");
    m.expect(b"END\r\n");
    m.send(b"append h 0 0 1\r\nx\r\n");
    m.expect(b"NOT_STORED\r\n");
    m.send(b"prepend h 0 0 1\r\nx\r\n");
    m.expect(b"NOT_STORED\r\n");
    m.send(b"incr h 1\r\n");
    m.expect(b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    m.send(b"add h 0 0 1\r\nx\r\n");
    m.expect(b"NOT_STORED\r\n");
    m.send(b"mg h v\r\n");
    m.expect(b"EN\r\n");
    assert_reply(&mut c, "HGET h f", bulk("v"));
    m.send(b"set h 0 0 1\r\nx\r\n");
    m.expect(b"STORED\r\n");
    assert_reply(&mut c, "GET h", bulk("x"));
    assert_reply(&mut c, "HSET h2 f v", int(1));
    m.send(b"delete h2\r\n");
    m.expect(b"DELETED\r\n");
    assert_reply(&mut c, "EXISTS h2", int(0));
}

/// Each hash of `s`: type, encoding, PEXPIRETIME and its pairs, sorted.
fn hashes(s: &Server) -> BTreeMap<String, (String, String, i64, Vec<String>)> {
    let mut c = s.redis();
    let keys = as_strings(&q(&mut c, "KEYS *"));
    let mut out = BTreeMap::new();
    for k in keys {
        let t = match run(&mut c, &["TYPE", &k]) {
            Value::SimpleString(t) => t,
            v => panic!("{v:?}"),
        };
        if t == "none" {
            // Expired or deleted since KEYS listed it (small8 expires within the test).
            continue;
        }
        let enc = as_str(&run(&mut c, &["OBJECT", "ENCODING", &k]));
        let at = as_int(&run(&mut c, &["PEXPIRETIME", &k]));
        let mut pairs: Vec<String> = match t.as_str() {
            "hash" => as_strings(&run(&mut c, &["HGETALL", &k]))
                .chunks(2)
                .map(|p| format!("{}={}", p[0], p[1]))
                .collect(),
            _ => vec![format!("{:?}", run(&mut c, &["GET", &k]))],
        };
        pairs.sort();
        out.insert(k, (t, enc, at, pairs));
    }
    out
}

fn replica_holds_the_same_hashes(cores: usize) {
    if !baton_only("Baton's replication flows") {
        return;
    }
    let p = Server::start(cores);
    let r = Server::start(3 - cores);
    let mut c = p.redis();
    // Before the link: what the snapshot carries.
    for i in 0..20 {
        run(
            &mut c,
            &["HSET", &format!("small{i}"), "a", &i.to_string(), "b", "x"],
        );
    }
    for j in 0..300 {
        run(&mut c, &["HSET", "big", &format!("f{j}"), &j.to_string()]);
    }
    run(&mut c, &["EXPIRE", "small3", "1000"]);
    run(&mut c, &["SET", "str", "v"]);
    let mut rc = r.redis();
    assert_reply(&mut rc, &format!("REPLICAOF 127.0.0.1 {}", p.port), ok());
    let same = |what: &str| {
        let mut last = (BTreeMap::new(), BTreeMap::new());
        let ok = eventually(Duration::from_secs(20), || {
            last = (hashes(&p), hashes(&r));
            last.0 == last.1
        });
        assert!(
            ok,
            "{what}: primary {:?}\nreplica {:?}\nreplica stderr:\n{}",
            last.0,
            last.1,
            r.stderr()
        );
    };
    same("after the full sync");
    // After the link: what the journal carries, field by field.
    for j in 0..50 {
        run(&mut c, &["HSET", "big", &format!("n{j}"), "v"]);
    }
    run(&mut c, &["HDEL", "big", "f0", "f1", "f2"]);
    run(&mut c, &["HINCRBY", "small1", "a", "10"]);
    run(&mut c, &["HINCRBYFLOAT", "small2", "c", "1.5"]);
    run(&mut c, &["HSETNX", "small4", "z", "z"]);
    run(&mut c, &["HDEL", "small5", "a", "b"]);
    run(&mut c, &["HSET", "small6", "long", &"y".repeat(100)]);
    run(&mut c, &["RENAME", "small7", "renamed7"]);
    run(&mut c, &["COPY", "big", "bigcopy"]);
    run(&mut c, &["PEXPIRE", "small8", "1"]);
    same("after journal writes");
    let got = hashes(&r);
    assert_eq!(got["small6"].1, "hashtable");
    assert_eq!(got["small0"].1, "listpack");
    assert!(!got.contains_key("small5"));
    assert!(!got.contains_key("small8"));
    assert_eq!(got["big"].3.len(), 347);
}

fn info_field(c: &mut redis::Connection, section: &str, name: &str) -> i64 {
    let text: String = redis::cmd("INFO").arg(section).query(c).expect("INFO");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in INFO {section}"))
        .trim()
        .parse()
        .expect("a number")
}

fn eviction_counts_hash_memory(cores: usize) {
    if !baton_only("Baton's memory accounting") {
        return;
    }
    let s = Server::start(cores);
    let mut c = s.redis();
    let budget = 4 << 20;
    assert_reply(&mut c, &format!("CONFIG SET maxmemory {budget}"), ok());
    assert_reply(&mut c, "CONFIG SET maxmemory-policy allkeys-lru", ok());
    // 400 hashes of 300 fields, about 6 MiB in all: the tables' memory must count.
    let value = "v".repeat(20);
    for i in 0..400 {
        let mut pipe = redis::pipe();
        for j in 0..300 {
            pipe.cmd("HSET")
                .arg(format!("h{i}"))
                .arg(format!("field:{j}"))
                .arg(&value)
                .ignore();
        }
        pipe.query::<()>(&mut c).expect("HSET");
    }
    let evicted = info_field(&mut c, "stats", "evicted_keys");
    let used = info_field(&mut c, "memory", "used_memory");
    let keys = as_int(&q(&mut c, "DBSIZE"));
    assert!(
        evicted > 0 && keys < 400,
        "evicted {evicted}, {keys} keys left"
    );
    assert!(
        used <= budget + budget / 10,
        "used_memory {used} over {budget}"
    );
    // The last hash written is the one eviction is least likely to have taken.
    if as_int(&q(&mut c, "HLEN h399")) == 300 {
        let usage = as_int(&q(&mut c, "MEMORY USAGE h399"));
        assert!(usage > 300 * 30, "MEMORY USAGE counts the fields: {usage}");
    }
}
