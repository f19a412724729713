//! Set commands through the redis crate (and RESP3 through a raw socket): exact replies
//! and Redis's error texts, WRONGTYPE both ways, the algebra and SMOVE with keys on
//! different cores, encodings and set-max-intset-entries, expiry/RENAME/COPY/SCAN TYPE/
//! DUMP/RESTORE, and replication (full sync and journal).
//! Runs against redis-server too (`BATON_ITEST_REFERENCE=redis-server`), except what is
//! Baton's own.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;

cores_tests!(
    add_remove_read,
    wrong_type_both_ways,
    algebra_across_cores,
    pop_and_random,
    scan_members,
    resp3_replies,
    encodings_and_threshold,
    expiry_rename_copy_dump,
    replica_holds_the_same_sets,
    inside_multi_exec,
    migrate_moves_sets,
    eviction_counts_set_memory,
);

fn sorted(v: &Value) -> Vec<String> {
    let mut s = as_strings(v);
    s.sort();
    s
}

fn add(c: &mut redis::Connection, key: &str, members: &[&str]) -> i64 {
    let mut args = vec!["SADD", key];
    args.extend_from_slice(members);
    as_int(&run(c, &args))
}

fn add_range(c: &mut redis::Connection, key: &str, prefix: &str, n: usize) {
    let mut pipe = redis::pipe();
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let mut cmd = redis::cmd("SADD");
        cmd.arg(key);
        for i in chunk {
            cmd.arg(format!("{prefix}{i}"));
        }
        pipe.add_command(cmd).ignore();
    }
    pipe.query::<()>(c).expect("SADD");
}

fn add_remove_read(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "SADD s c a b a", int(3));
    assert_reply(&mut c, "SADD s a d", int(1));
    assert_eq!(sorted(&q(&mut c, "SMEMBERS s")), ["a", "b", "c", "d"]);
    assert_reply(&mut c, "SMEMBERS missing", arr(vec![]));
    assert_reply(&mut c, "SCARD s", int(4));
    assert_reply(&mut c, "SCARD missing", int(0));
    assert_reply(&mut c, "SISMEMBER s a", int(1));
    assert_reply(&mut c, "SISMEMBER s z", int(0));
    assert_reply(&mut c, "SISMEMBER missing a", int(0));
    assert_reply(
        &mut c,
        "SMISMEMBER s a z d",
        arr(vec![int(1), int(0), int(1)]),
    );
    assert_reply(&mut c, "SMISMEMBER missing a", arr(vec![int(0)]));
    assert_reply(&mut c, "SREM s a z a", int(1));
    assert_reply(&mut c, "SREM missing a", int(0));
    assert_reply(&mut c, "SREM s b c d", int(3));
    assert_reply(&mut c, "EXISTS s", int(0));
    assert_reply(&mut c, "TYPE s", simple("none"));
    assert_reply(&mut c, "SADD s 1", int(1));
    assert_reply(&mut c, "TYPE s", simple("set"));
    assert_reply(&mut c, "SMOVE s t 1", int(1));
    assert_reply(&mut c, "SMOVE s t 1", int(0));
    assert_reply(&mut c, "SMOVE t t 1", int(1));
    assert_reply(&mut c, "SMOVE t t 2", int(0));
    assert_reply(&mut c, "EXISTS s", int(0));
    assert_reply(&mut c, "SMEMBERS t", arr(vec![bulk("1")]));
    assert_err(
        &mut c,
        "SADD s",
        "ERR wrong number of arguments for 'sadd' command",
    );
    assert_err(
        &mut c,
        "SISMEMBER s",
        "ERR wrong number of arguments for 'sismember' command",
    );
}

fn wrong_type_both_ways(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value";
    assert_reply(&mut c, "SET str v", ok());
    assert_reply(&mut c, "SADD s a", int(1));
    for line in [
        "SADD str a",
        "SREM str a",
        "SMEMBERS str",
        "SISMEMBER str a",
        "SMISMEMBER str a",
        "SCARD str",
        "SPOP str",
        "SPOP str 2",
        "SRANDMEMBER str",
        "SSCAN str 0",
        "SINTER nokey str",
        "SINTER s str",
        "SUNION s str",
        "SDIFF nokey str",
        "SDIFF s str",
        "SINTERCARD 2 nokey str",
        "SINTERSTORE dst nokey str",
        "SUNIONSTORE dst s str",
        "SDIFFSTORE dst s str",
        "SMOVE s str a",
        "SMOVE str s a",
        "SMOVE s str zz",
        "GET s",
        "INCR s",
        "HGET s f",
        "HSET s f v",
        "LCS s str",
    ] {
        let got = q(&mut c, line);
        if line == "LCS s str" {
            assert_eq!(
                err_text(&got),
                "ERR The specified keys must contain string values",
                "{line}"
            );
        } else {
            assert_eq!(err_text(&got), wrongtype, "{line}");
        }
    }
    assert_reply(&mut c, "SMOVE nokey str a", int(0));
    // A STORE form overwrites a key of any type.
    assert_reply(&mut c, "SUNIONSTORE str s", int(1));
    assert_reply(&mut c, "TYPE str", simple("set"));
}

/// Many key names, so that with two cores some of every group live on each: the
/// cross-core path and the one-core path must give the same answers.
fn algebra_across_cores(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    for i in 0..6 {
        let (a, b, x) = (format!("a{i}"), format!("b{i}"), format!("x{i}"));
        assert_eq!(add(&mut c, &a, &["1", "2", "3", "w"]), 4);
        assert_eq!(add(&mut c, &b, &["2", "3", "4"]), 3);
        assert_eq!(add(&mut c, &x, &["3", "5", "w"]), 3);
        assert_eq!(sorted(&run(&mut c, &["SINTER", &a, &b])), ["2", "3"]);
        assert_eq!(sorted(&run(&mut c, &["SINTER", &a, &b, &x])), ["3"]);
        assert_eq!(
            sorted(&run(&mut c, &["SINTER", &a, "nokey"])),
            Vec::<String>::new()
        );
        assert_eq!(
            sorted(&run(&mut c, &["SUNION", &a, &b, "nokey", &x])),
            ["1", "2", "3", "4", "5", "w"]
        );
        assert_eq!(sorted(&run(&mut c, &["SDIFF", &a, &b, &x])), ["1"]);
        assert_eq!(
            sorted(&run(&mut c, &["SDIFF", "nokey", &a])),
            Vec::<String>::new()
        );
        assert_eq!(run(&mut c, &["SINTERCARD", "2", &a, &b]), int(2));
        assert_eq!(
            run(&mut c, &["SINTERCARD", "2", &a, &b, "LIMIT", "1"]),
            int(1)
        );
        assert_eq!(
            run(&mut c, &["SINTERCARD", "3", &a, &b, &x, "LIMIT", "0"]),
            int(1)
        );
        let d = format!("d{i}");
        assert_eq!(run(&mut c, &["SINTERSTORE", &d, &a, &b]), int(2));
        assert_eq!(run(&mut c, &["OBJECT", "ENCODING", &d]), bulk("intset"));
        assert_eq!(run(&mut c, &["SUNIONSTORE", &d, &a, &x]), int(5));
        assert_eq!(run(&mut c, &["OBJECT", "ENCODING", &d]), bulk("hashtable"));
        assert_eq!(
            sorted(&run(&mut c, &["SMEMBERS", &d])),
            ["1", "2", "3", "5", "w"]
        );
        assert_eq!(run(&mut c, &["SDIFFSTORE", &d, &a, &b]), int(2));
        assert_eq!(sorted(&run(&mut c, &["SMEMBERS", &d])), ["1", "w"]);
        assert_eq!(run(&mut c, &["SINTERSTORE", &d, &a, "nokey"]), int(0));
        assert_eq!(run(&mut c, &["EXISTS", &d]), int(0));
        assert_eq!(run(&mut c, &["SMOVE", &a, &b, "1"]), int(1));
        assert_eq!(run(&mut c, &["SMOVE", &a, &b, "1"]), int(0));
        assert_eq!(run(&mut c, &["SISMEMBER", &b, "1"]), int(1));
        assert_eq!(run(&mut c, &["SCARD", &a]), int(3));
    }
    // A large set against a small one, across cores.
    add_range(&mut c, "big", "m", 5000);
    assert_eq!(add(&mut c, "small", &["m1", "m4999", "zz"]), 3);
    assert_eq!(sorted(&q(&mut c, "SINTER big small")), ["m1", "m4999"]);
    assert_reply(&mut c, "SINTERCARD 2 big small", int(2));
    assert_reply(&mut c, "SDIFFSTORE rest big small", int(4998));
    assert_reply(&mut c, "SUNIONSTORE all big small", int(5001));
    for (line, text) in [
        ("SINTERCARD 0 a0", "ERR numkeys should be greater than 0"),
        ("SINTERCARD x a0", "ERR numkeys should be greater than 0"),
        (
            "SINTERCARD 3 a0 b0",
            "ERR Number of keys can't be greater than number of args",
        ),
        ("SINTERCARD 1 a0 LIMIT -1", "ERR LIMIT can't be negative"),
        ("SINTERCARD 1 a0 LIMIT x", "ERR LIMIT can't be negative"),
        ("SINTERCARD 1 a0 foo", "ERR syntax error"),
    ] {
        assert_err(&mut c, line, text);
    }
}

fn pop_and_random(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    add_range(&mut c, "s", "m", 300);
    let r = sorted(&q(&mut c, "SRANDMEMBER s 10"));
    let mut d = r.clone();
    d.dedup();
    assert_eq!((r.len(), d.len()), (10, 10), "distinct members");
    assert_eq!(as_array(&q(&mut c, "SRANDMEMBER s -500")).len(), 500);
    assert_eq!(as_array(&q(&mut c, "SRANDMEMBER s 1000")).len(), 300);
    assert_reply(&mut c, "SRANDMEMBER s 0", arr(vec![]));
    assert_reply(&mut c, "SRANDMEMBER missing", nil());
    assert_reply(&mut c, "SRANDMEMBER missing 3", arr(vec![]));
    assert_err(
        &mut c,
        "SRANDMEMBER s -9223372036854775808",
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
    );
    assert_err(
        &mut c,
        "SRANDMEMBER s x",
        "ERR value is not an integer or out of range",
    );
    assert_err(&mut c, "SRANDMEMBER s 1 2", "ERR syntax error");
    if baton_only("redis-server 7.0 tries to allocate the reply and dies") {
        assert_err(
            &mut c,
            "SRANDMEMBER s -9223372036854775807",
            "ERR value is out of range",
        );
    }
    let popped = as_strings(&q(&mut c, "SPOP s 100"));
    assert_eq!(popped.len(), 100);
    assert_reply(&mut c, "SCARD s", int(200));
    for m in &popped {
        assert_eq!(run(&mut c, &["SISMEMBER", "s", m]), int(0));
    }
    let one = as_str(&q(&mut c, "SPOP s"));
    assert_eq!(run(&mut c, &["SISMEMBER", "s", &one]), int(0));
    for bad in ["-1", "x", "-0"] {
        assert_err(
            &mut c,
            &format!("SPOP s {bad}"),
            "ERR value is out of range, must be positive",
        );
    }
    assert_err(&mut c, "SPOP s 1 2", "ERR syntax error");
    assert_reply(&mut c, "SPOP s 0", arr(vec![]));
    assert_eq!(
        as_array(&q(&mut c, "SPOP s 9223372036854775807")).len(),
        199
    );
    assert_reply(&mut c, "EXISTS s", int(0));
    assert_reply(&mut c, "SPOP s", nil());
    assert_reply(&mut c, "SPOP s 2", arr(vec![]));
}

fn scan_members(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    add_range(&mut c, "big", "k", 1000);
    let mut seen = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let r = as_array(&run(&mut c, &["SSCAN", "big", &cursor, "COUNT", "50"]));
        seen.extend(as_strings(&r[1]));
        cursor = as_str(&r[0]);
        if cursor == "0" {
            break;
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 1000, "every member, once");
    assert_eq!(add(&mut c, "small", &["ab", "ac", "b"]), 3);
    let r = as_array(&q(&mut c, "SSCAN small 0 MATCH a*"));
    assert_eq!(as_str(&r[0]), "0");
    assert_eq!(sorted(&r[1]), ["ab", "ac"]);
    let r = as_array(&q(&mut c, "SSCAN missing 0"));
    assert_eq!((as_str(&r[0]), as_array(&r[1]).len()), ("0".to_string(), 0));
    assert_err(&mut c, "SSCAN small x", "ERR invalid cursor");
    assert_err(&mut c, "SSCAN small 0 COUNT 0", "ERR syntax error");
    assert_err(&mut c, "SSCAN small 0 foo", "ERR syntax error");
}

fn resp3_replies(cores: usize) {
    let s = Server::start(cores);
    let mut r = s.raw();
    r.call(&["HELLO", "3"]);
    r.call(&["SADD", "s", "2", "1"]);
    // An intset lists its members in ascending order, in Redis too.
    r.send_command(&["SMEMBERS", "s"]);
    r.expect(b"~2\r\n$1\r\n1\r\n$1\r\n2\r\n");
    r.send_command(&["SINTER", "s", "missing"]);
    r.expect(b"~0\r\n");
    r.send_command(&["SUNION", "s"]);
    r.expect(b"~2\r\n$1\r\n1\r\n$1\r\n2\r\n");
    r.send_command(&["SDIFF", "s", "missing"]);
    r.expect(b"~2\r\n$1\r\n1\r\n$1\r\n2\r\n");
    r.send_command(&["SRANDMEMBER", "s", "5"]);
    r.expect(b"*2\r\n");
    r.read_value();
    r.read_value();
    r.send_command(&["SPOP", "missing", "2"]);
    r.expect(b"~0\r\n");
    r.send_command(&["SPOP", "missing"]);
    r.expect(b"_\r\n");
    r.send_command(&["SMISMEMBER", "s", "1", "3"]);
    r.expect(b"*2\r\n:1\r\n:0\r\n");
    r.send_command(&["SPOP", "s", "5"]);
    let v = r.read_value();
    assert!(matches!(&v, Value::Set(m) if m.len() == 2), "{v:?}");
}

fn encodings_and_threshold(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let cfg = |c: &mut redis::Connection| {
        as_strings(&run(c, &["CONFIG", "GET", "set-max-intset-entries"]))
    };
    assert_eq!(cfg(&mut c), ["set-max-intset-entries", "512"]);
    let ints: Vec<String> = (0..513).map(|i| i.to_string()).collect();
    let refs: Vec<&str> = ints.iter().map(|m| m.as_str()).collect();
    assert_eq!(add(&mut c, "i", &refs[..512]), 512);
    assert_reply(&mut c, "OBJECT ENCODING i", bulk("intset"));
    assert_reply(&mut c, "SADD i 512", int(1));
    assert_reply(&mut c, "OBJECT ENCODING i", bulk("hashtable"));
    assert_reply(&mut c, "SREM i 512 511", int(2));
    assert_reply(&mut c, "OBJECT ENCODING i", bulk("hashtable"));
    assert_reply(&mut c, "SADD j 1 2 -3", int(3));
    assert_reply(&mut c, "OBJECT ENCODING j", bulk("intset"));
    assert_reply(&mut c, "SADD j 007", int(1));
    assert_reply(&mut c, "OBJECT ENCODING j", bulk("hashtable"));
    assert_reply(&mut c, "SADD w a", int(1));
    assert_reply(&mut c, "OBJECT ENCODING w", bulk("hashtable"));
    assert_reply(&mut c, "CONFIG SET set-max-intset-entries 2", ok());
    assert_eq!(cfg(&mut c), ["set-max-intset-entries", "2"]);
    assert_reply(&mut c, "SADD k 1 2", int(2));
    assert_reply(&mut c, "OBJECT ENCODING k", bulk("intset"));
    assert_reply(&mut c, "SADD k 3", int(1));
    assert_reply(&mut c, "OBJECT ENCODING k", bulk("hashtable"));
    assert_reply(&mut c, "CONFIG SET set-max-intset-entries 512", ok());
    assert_err(
        &mut c,
        "CONFIG SET set-max-listpack-entries 3",
        "ERR Unknown option or number of arguments for CONFIG SET - 'set-max-listpack-entries'",
    );
}

fn expiry_rename_copy_dump(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "SADD e a", int(1));
    assert_reply(&mut c, "PEXPIRE e 50", int(1));
    assert!(
        eventually(Duration::from_secs(5), || as_int(&q(&mut c, "EXISTS e"))
            == 0),
        "an expired set goes"
    );
    assert_reply(&mut c, "SCARD e", int(0));
    // RENAME and COPY, across cores too, keep type, members, TTL and encoding.
    for i in 0..6 {
        let (src, dst, cp) = (format!("src{i}"), format!("dst{i}"), format!("copy{i}"));
        add_range(&mut c, &src, "", 300);
        run(&mut c, &["EXPIRE", &src, "1000"]);
        assert_eq!(run(&mut c, &["COPY", &src, &cp]), int(1));
        assert_eq!(run(&mut c, &["RENAME", &src, &dst]), ok());
        for k in [&dst, &cp] {
            assert_eq!(run(&mut c, &["TYPE", k]), simple("set"));
            assert_eq!(run(&mut c, &["SCARD", k]), int(300));
            assert_eq!(run(&mut c, &["SISMEMBER", k, "299"]), int(1));
            assert_eq!(run(&mut c, &["OBJECT", "ENCODING", k]), bulk("intset"));
            assert!(as_int(&run(&mut c, &["TTL", k])) > 900);
        }
        run(&mut c, &["SADD", &dst, "word"]);
        assert_eq!(run(&mut c, &["COPY", &dst, &cp, "REPLACE"]), int(1));
        assert_eq!(run(&mut c, &["OBJECT", "ENCODING", &cp]), bulk("hashtable"));
        assert_eq!(run(&mut c, &["SCARD", &cp]), int(301));
    }
    let r = as_array(&q(&mut c, "SCAN 0 TYPE set COUNT 1000"));
    let mut keys = as_strings(&r[1]);
    while as_str(&r[0]) != "0" && keys.len() < 12 {
        let r2 = as_array(&run(
            &mut c,
            &["SCAN", &as_str(&r[0]), "TYPE", "set", "COUNT", "1000"],
        ));
        keys.extend(as_strings(&r2[1]));
        if as_str(&r2[0]) == "0" {
            break;
        }
    }
    assert_eq!(keys.len(), 12, "{keys:?}");
    if baton_only("Baton's own DUMP payload and memory accounting") {
        let payload = run(&mut c, &["DUMP", "dst0"]);
        let Value::BulkString(p) = payload else {
            panic!("{payload:?}")
        };
        let mut cmd = redis::cmd("RESTORE");
        cmd.arg("restored").arg(0).arg(p.clone());
        assert_eq!(cmd.query::<Value>(&mut c).expect("RESTORE"), ok());
        assert_reply(&mut c, "SCARD restored", int(301));
        assert_reply(&mut c, "OBJECT ENCODING restored", bulk("hashtable"));
        let usage = as_int(&q(&mut c, "MEMORY USAGE dst0"));
        assert!(usage > 301 * 8, "MEMORY USAGE counts the members: {usage}");
    }
}

/// Every set (and its encoding, expiry and members) a server holds.
fn sets(s: &Server) -> BTreeMap<String, (String, i64, Vec<String>)> {
    let mut c = s.redis();
    let keys = as_strings(&q(&mut c, "KEYS *"));
    let mut out = BTreeMap::new();
    for k in keys {
        if run(&mut c, &["TYPE", &k]) != simple("set") {
            continue;
        }
        let enc = as_str(&run(&mut c, &["OBJECT", "ENCODING", &k]));
        let at = as_int(&run(&mut c, &["PEXPIRETIME", &k]));
        let members = sorted(&run(&mut c, &["SMEMBERS", &k]));
        out.insert(k, (enc, at, members));
    }
    out
}

fn replica_holds_the_same_sets(cores: usize) {
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
            &["SADD", &format!("small{i}"), "1", &i.to_string(), "w"],
        );
        run(
            &mut c,
            &["SADD", &format!("ints{i}"), "1", "2", &(i + 10).to_string()],
        );
    }
    add_range(&mut c, "big", "m", 500);
    run(&mut c, &["EXPIRE", "small3", "1000"]);
    let mut rc = r.redis();
    assert_reply(&mut rc, &format!("REPLICAOF 127.0.0.1 {}", p.port), ok());
    let same = |what: &str| {
        let mut last = (BTreeMap::new(), BTreeMap::new());
        let ok = eventually(Duration::from_secs(20), || {
            last = (sets(&p), sets(&r));
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
    // After the link: what the journal carries, outcomes of SPOP included.
    add_range(&mut c, "big", "n", 50);
    run(&mut c, &["SREM", "big", "m0", "m1", "nope"]);
    run(&mut c, &["SPOP", "big", "7"]);
    run(&mut c, &["SPOP", "small1"]);
    run(&mut c, &["SADD", "ints2", "word"]);
    run(&mut c, &["SMOVE", "small4", "moved", "w"]);
    run(&mut c, &["SINTERSTORE", "inter", "small5", "small6"]);
    run(&mut c, &["SUNIONSTORE", "union", "big", "ints7"]);
    run(&mut c, &["SDIFFSTORE", "diff", "ints8", "ints9"]);
    run(&mut c, &["RENAME", "small7", "renamed7"]);
    run(&mut c, &["COPY", "big", "bigcopy"]);
    run(&mut c, &["DEL", "small9"]);
    run(&mut c, &["PEXPIRE", "small8", "1"]);
    same("after journal writes");
    let got = sets(&r);
    assert_eq!(got["ints0"].0, "intset");
    assert_eq!(got["ints2"].0, "hashtable");
    assert_eq!(got["big"].2.len(), 500 + 50 - 2 - 7);
    assert_eq!(got["bigcopy"].2, got["big"].2);
    assert!(!got.contains_key("small9") && !got.contains_key("small8"));
    assert_eq!(got["moved"].2, ["w"]);
}

/// The cross-core forms inside MULTI/EXEC run under the EXEC's locks, in order.
fn inside_multi_exec(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let mut pipe = redis::pipe();
    pipe.atomic();
    for i in 0..4 {
        let (a, b, d) = (format!("ma{i}"), format!("mb{i}"), format!("md{i}"));
        pipe.cmd("SADD").arg(&a).arg("1").arg("2").arg("x");
        pipe.cmd("SADD").arg(&b).arg("2").arg("x").arg("y");
        pipe.cmd("SINTERSTORE").arg(&d).arg(&a).arg(&b);
        pipe.cmd("SMOVE").arg(&a).arg(&d).arg("1");
        pipe.cmd("SINTERCARD").arg(2).arg(&a).arg(&d);
        pipe.cmd("SUNION").arg(&a).arg(&b).arg(&d);
    }
    let replies: Vec<Value> = pipe.query(&mut c).expect("EXEC");
    assert_eq!(replies.len(), 24);
    for r in replies.chunks(6) {
        assert_eq!(&r[..5], &[int(3), int(3), int(2), int(1), int(2)]);
        assert_eq!(sorted(&r[5]), ["1", "2", "x", "y"]);
    }
}

/// MIGRATE (what slot migration sends, a DUMP payload) carries a set whole: members,
/// encoding and TTL.
fn migrate_moves_sets(cores: usize) {
    let src = Server::start(cores);
    let dst = Server::start(3 - cores);
    let mut c = src.redis();
    assert_eq!(add(&mut c, "ints", &["3", "1", "2"]), 3);
    add_range(&mut c, "big", "m", 1000);
    run(&mut c, &["EXPIRE", "big", "1000"]);
    let port = dst.port.to_string();
    for key in ["ints", "big"] {
        assert_eq!(
            run(&mut c, &["MIGRATE", "127.0.0.1", &port, key, "0", "5000"]),
            ok()
        );
        assert_eq!(run(&mut c, &["EXISTS", key]), int(0));
    }
    let mut d = dst.redis();
    assert_reply(
        &mut d,
        "SMEMBERS ints",
        arr(vec![bulk("1"), bulk("2"), bulk("3")]),
    );
    assert_reply(&mut d, "OBJECT ENCODING ints", bulk("intset"));
    assert_reply(&mut d, "SCARD big", int(1000));
    assert_reply(&mut d, "SISMEMBER big m999", int(1));
    assert_reply(&mut d, "OBJECT ENCODING big", bulk("hashtable"));
    assert!(as_int(&q(&mut d, "TTL big")) > 900);
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

/// A set's table counts toward the memory budget: eviction keeps used_memory in it.
fn eviction_counts_set_memory(cores: usize) {
    if !baton_only("Baton's memory accounting") {
        return;
    }
    let s = Server::start(cores);
    let mut c = s.redis();
    let budget = 4 << 20;
    assert_reply(&mut c, &format!("CONFIG SET maxmemory {budget}"), ok());
    assert_reply(&mut c, "CONFIG SET maxmemory-policy allkeys-lru", ok());
    // 400 sets of 300 members of ~20 bytes, about 6 MiB in all.
    for i in 0..400 {
        add_range(&mut c, &format!("s{i}"), "member-of-a-set:", 300);
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
}
