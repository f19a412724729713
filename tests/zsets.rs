//! Sorted-set commands through the redis crate (and RESP3 through a raw socket): exact
//! replies and Redis's error texts, score formatting, WRONGTYPE both ways, encodings and
//! their thresholds, ranges, pops, ZRANGESTORE across cores, expiry, RENAME/COPY/DUMP
//! across cores, and replication (full sync and journal).
//! Runs against redis-server too (`BATON_ITEST_REFERENCE=redis-server`), except what is
//! Baton's own.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;

cores_tests!(
    add_score_and_remove,
    errors_and_wrong_type,
    ranges,
    pops_and_removals,
    random_and_scan,
    resp3_replies,
    encodings_and_thresholds,
    store_rename_copy_dump_and_expiry,
    replica_holds_the_same_zsets,
    set_operations_and_mpop_across_cores,
    migrate_moves_a_sorted_set,
    plain_sets_are_inputs_with_score_one,
);

fn strs(items: &[&str]) -> Value {
    arr(items.iter().map(bulk).collect())
}

fn add_score_and_remove(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "ZADD z 1 a 2 b 3 c", int(3));
    assert_reply(&mut c, "ZADD z 0.1 a 1e20 d inf e -0 f", int(3));
    assert_reply(&mut c, "ZSCORE z a", bulk("0.10000000000000001"));
    assert_reply(&mut c, "ZSCORE z d", bulk("1e+20"));
    assert_reply(&mut c, "ZSCORE z e", bulk("inf"));
    assert_reply(&mut c, "ZSCORE z f", bulk("0"));
    assert_reply(&mut c, "ZSCORE z nope", nil());
    assert_reply(&mut c, "ZSCORE missing a", nil());
    assert_reply(&mut c, "ZCARD z", int(6));
    assert_reply(&mut c, "ZCARD missing", int(0));
    assert_reply(&mut c, "ZADD z CH 5 a 2 b 7 g", int(2));
    assert_reply(&mut c, "ZADD z NX 9 a 8 h", int(1));
    assert_reply(&mut c, "ZADD z XX CH 9 a 8 i", int(1));
    assert_reply(&mut c, "ZADD z GT CH 1 a", int(0));
    assert_reply(&mut c, "ZADD z LT CH 1 a", int(1));
    assert_reply(&mut c, "ZADD z INCR 2.5 a", bulk("3.5"));
    assert_reply(&mut c, "ZADD z XX INCR 1 nope", nil());
    assert_reply(&mut c, "ZADD z NX INCR 1 a", nil());
    assert_reply(&mut c, "ZINCRBY z 0.1 newm", bulk("0.10000000000000001"));
    assert_reply(&mut c, "ZINCRBY z -1 b", bulk("1"));
    assert_reply(
        &mut c,
        "ZMSCORE z a nope b",
        arr(vec![bulk("3.5"), nil(), bulk("1")]),
    );
    assert_reply(&mut c, "ZMSCORE missing a", arr(vec![nil()]));
    assert_reply(&mut c, "ZRANK z f", int(0));
    assert_reply(&mut c, "ZREVRANK z e", int(0));
    assert_reply(&mut c, "ZRANK z nope", nil());
    assert_reply(&mut c, "ZREM z a nope a b", int(2));
    assert_reply(&mut c, "ZREM missing a", int(0));
    assert_reply(&mut c, "ZADD one 1 x", int(1));
    assert_reply(&mut c, "ZREM one x", int(1));
    assert_reply(&mut c, "EXISTS one", int(0));
    assert_reply(&mut c, "TYPE z", simple("zset"));
}

fn errors_and_wrong_type(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "SET str v", ok());
    for line in [
        "ZADD str 1 a",
        "ZSCORE str a",
        "ZRANGE str 0 -1",
        "ZCARD str",
        "ZPOPMIN str",
        "ZREM str a",
        "ZINCRBY str 1 a",
        "ZRANGEBYSCORE str 0 1",
    ] {
        assert_err(
            &mut c,
            line,
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        );
    }
    assert_reply(&mut c, "ZADD z 1 a", int(1));
    assert_err(
        &mut c,
        "GET z",
        "WRONGTYPE Operation against a key holding the wrong kind of value",
    );
    assert_err(&mut c, "ZADD z nan a", "ERR value is not a valid float");
    assert_err(&mut c, "ZADD z 1e400 a", "ERR value is not a valid float");
    assert_err(&mut c, "ZADD z abc a", "ERR value is not a valid float");
    assert_err(&mut c, "ZADD z 1 a 2", "ERR syntax error");
    assert_err(
        &mut c,
        "ZADD z NX XX 1 a",
        "ERR XX and NX options at the same time are not compatible",
    );
    assert_err(
        &mut c,
        "ZADD z GT LT 1 a",
        "ERR GT, LT, and/or NX options at the same time are not compatible",
    );
    assert_err(
        &mut c,
        "ZADD z NX GT 1 a",
        "ERR GT, LT, and/or NX options at the same time are not compatible",
    );
    assert_err(
        &mut c,
        "ZADD z INCR 1 a 2 b",
        "ERR INCR option supports a single increment-element pair",
    );
    assert_reply(&mut c, "ZADD z inf i", int(1));
    assert_err(
        &mut c,
        "ZINCRBY z -inf i",
        "ERR resulting score is not a number (NaN)",
    );
    assert_err(&mut c, "ZINCRBY z x i", "ERR value is not a valid float");
    assert_err(&mut c, "ZCOUNT z x 1", "ERR min or max is not a float");
    assert_err(
        &mut c,
        "ZRANGEBYSCORE z 1 (x",
        "ERR min or max is not a float",
    );
    assert_err(
        &mut c,
        "ZLEXCOUNT z a b",
        "ERR min or max not valid string range item",
    );
    assert_err(
        &mut c,
        "ZRANGE z 0 1 LIMIT 0 1",
        "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
    );
    assert_err(
        &mut c,
        "ZRANGE z - + BYLEX WITHSCORES",
        "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
    );
    assert_err(&mut c, "ZRANGE z 0 1 BYSCORE BYLEX", "ERR syntax error");
    assert_err(&mut c, "ZRANGEBYSCORE z 0 1 REV", "ERR syntax error");
    assert_err(
        &mut c,
        "ZRANGE z x 1",
        "ERR value is not an integer or out of range",
    );
    assert_err(
        &mut c,
        "ZPOPMIN z -1",
        "ERR value is out of range, must be positive",
    );
    assert_err(&mut c, "ZRANDMEMBER z -9223372036854775808", "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807");
    assert_err(&mut c, "ZRANDMEMBER z 1 WITHSCORE", "ERR syntax error");
    assert_err(&mut c, "ZSCAN z x", "ERR invalid cursor");
    assert_err(
        &mut c,
        "ZADD z",
        "ERR wrong number of arguments for 'zadd' command",
    );
}

fn ranges(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    q(&mut c, "ZADD z 1 a 2 b 3 c 4 d 5 e");
    assert_reply(&mut c, "ZRANGE z 0 -1", strs(&["a", "b", "c", "d", "e"]));
    assert_reply(&mut c, "ZRANGE z -2 100", strs(&["d", "e"]));
    assert_reply(&mut c, "ZRANGE z 3 1", strs(&[]));
    assert_reply(&mut c, "ZRANGE z 0 1 REV", strs(&["e", "d"]));
    assert_reply(&mut c, "ZREVRANGE z 1 2", strs(&["d", "c"]));
    assert_reply(
        &mut c,
        "ZRANGE z 0 1 WITHSCORES",
        strs(&["a", "1", "b", "2"]),
    );
    assert_reply(&mut c, "ZRANGEBYSCORE z (1 3", strs(&["b", "c"]));
    assert_reply(
        &mut c,
        "ZRANGEBYSCORE z -inf +inf LIMIT 1 2",
        strs(&["b", "c"]),
    );
    assert_reply(&mut c, "ZRANGEBYSCORE z -inf +inf LIMIT -1 2", strs(&[]));
    assert_reply(&mut c, "ZRANGEBYSCORE z 2 2 WITHSCORES", strs(&["b", "2"]));
    assert_reply(&mut c, "ZREVRANGEBYSCORE z 4 (2", strs(&["d", "c"]));
    assert_reply(
        &mut c,
        "ZRANGE z +inf -inf BYSCORE REV LIMIT 1 2",
        strs(&["d", "c"]),
    );
    assert_reply(&mut c, "ZRANGE z (5 +inf BYSCORE", strs(&[]));
    assert_reply(&mut c, "ZCOUNT z (1 3", int(2));
    assert_reply(&mut c, "ZCOUNT z 3 1", int(0));
    q(&mut c, "ZADD l 0 a 0 b 0 c 0 d 0 e");
    assert_reply(
        &mut c,
        "ZRANGEBYLEX l - +",
        strs(&["a", "b", "c", "d", "e"]),
    );
    assert_reply(&mut c, "ZRANGEBYLEX l (a [c", strs(&["b", "c"]));
    assert_reply(&mut c, "ZRANGEBYLEX l [b (d LIMIT 1 5", strs(&["c"]));
    assert_reply(&mut c, "ZREVRANGEBYLEX l + (c", strs(&["e", "d"]));
    assert_reply(
        &mut c,
        "ZRANGE l [d - BYLEX REV",
        strs(&["d", "c", "b", "a"]),
    );
    assert_reply(&mut c, "ZLEXCOUNT l [b +", int(4));
    assert_reply(&mut c, "ZLEXCOUNT l + -", int(0));
    assert_reply(&mut c, "ZRANGE missing 0 -1", strs(&[]));
    // The same answers from the large form.
    for i in 0..500 {
        run(
            &mut c,
            &["ZADD", "big", &i.to_string(), &format!("m{i:03}")],
        );
    }
    assert_reply(&mut c, "OBJECT ENCODING big", bulk("skiplist"));
    assert_reply(&mut c, "ZRANGE big 250 251", strs(&["m250", "m251"]));
    assert_reply(&mut c, "ZRANGE big -1 -1 REV", strs(&["m000"]));
    assert_reply(
        &mut c,
        "ZRANGEBYSCORE big (100 +inf LIMIT 299 5",
        strs(&["m400", "m401", "m402", "m403", "m404"]),
    );
    assert_reply(
        &mut c,
        "ZREVRANGEBYSCORE big 10 -inf LIMIT 9 10",
        strs(&["m001", "m000"]),
    );
    assert_reply(&mut c, "ZCOUNT big 100 (200", int(100));
    assert_reply(&mut c, "ZRANK big m377", int(377));
    assert_reply(&mut c, "ZREVRANK big m377", int(122));
}

fn pops_and_removals(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    q(&mut c, "ZADD z 1 a 2 b 3 c 4 d 5 e 6 f");
    assert_reply(&mut c, "ZPOPMIN z", strs(&["a", "1"]));
    assert_reply(&mut c, "ZPOPMAX z 2", strs(&["f", "6", "e", "5"]));
    assert_reply(&mut c, "ZPOPMIN z 0", strs(&[]));
    assert_reply(&mut c, "ZPOPMIN missing", strs(&[]));
    assert_reply(&mut c, "ZREMRANGEBYRANK z 0 0", int(1));
    assert_reply(&mut c, "ZREMRANGEBYSCORE z (3 +inf", int(1));
    assert_reply(&mut c, "ZRANGE z 0 -1", strs(&["c"]));
    assert_reply(&mut c, "ZPOPMAX z 10", strs(&["c", "3"]));
    assert_reply(&mut c, "EXISTS z", int(0));
    q(&mut c, "ZADD l 0 a 0 b 0 c");
    assert_reply(&mut c, "ZREMRANGEBYLEX l (a +", int(2));
    assert_reply(&mut c, "ZREMRANGEBYLEX missing - +", int(0));
    assert_reply(&mut c, "ZCARD l", int(1));
}

fn random_and_scan(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "ZRANDMEMBER missing", nil());
    assert_reply(&mut c, "ZRANDMEMBER missing 3", strs(&[]));
    for key in ["small", "big"] {
        let n = if key == "small" { 10 } else { 1000 };
        for i in 0..n {
            run(&mut c, &["ZADD", key, &i.to_string(), &format!("m{i}")]);
        }
        let picks = as_strings(&q(&mut c, &format!("ZRANDMEMBER {key} 5")));
        let distinct: std::collections::BTreeSet<_> = picks.iter().collect();
        assert_eq!(distinct.len(), 5, "{picks:?}");
        assert_eq!(
            as_array(&q(&mut c, &format!("ZRANDMEMBER {key} -20"))).len(),
            20
        );
        let with = as_strings(&q(&mut c, &format!("ZRANDMEMBER {key} 3 WITHSCORES")));
        assert_eq!(with.len(), 6);
        for p in with.chunks(2) {
            assert_eq!(format!("m{}", p[1]), p[0]);
        }
        assert_eq!(
            as_array(&q(&mut c, &format!("ZRANDMEMBER {key} {}", n + 5))).len(),
            n
        );
        let mut seen = BTreeMap::new();
        let mut cursor = "0".to_string();
        loop {
            let v = run(&mut c, &["ZSCAN", key, &cursor, "COUNT", "100"]);
            let parts = as_array(&v);
            cursor = as_str(&parts[0]);
            for p in as_strings(&parts[1]).chunks(2) {
                seen.insert(p[0].clone(), p[1].clone());
            }
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(seen.len(), n);
        assert_eq!(seen["m7"], "7");
        let matched = as_array(&run(
            &mut c,
            &["ZSCAN", key, "0", "MATCH", "m1", "COUNT", "100000"],
        ));
        assert_eq!(as_strings(&matched[1]), ["m1", "1"]);
    }
}

fn resp3_replies(cores: usize) {
    let s = Server::start(cores);
    let mut r = s.raw();
    r.call(&["HELLO", "3"]);
    r.call(&["ZADD", "z", "1", "a", "2.5", "b", "3", "c"]);
    r.send_command(&["ZSCORE", "z", "b"]);
    r.expect(b",2.5\r\n");
    r.send_command(&["ZINCRBY", "z", "0.1", "a"]);
    r.expect(b",1.1000000000000001\r\n");
    r.send_command(&["ZSCORE", "z", "nope"]);
    r.expect(b"_\r\n");
    r.send_command(&["ZMSCORE", "z", "c", "nope"]);
    r.expect(b"*2\r\n,3\r\n_\r\n");
    r.send_command(&["ZRANGE", "z", "0", "0", "WITHSCORES"]);
    r.expect(b"*1\r\n*2\r\n$1\r\na\r\n,1.1000000000000001\r\n");
    r.send_command(&["ZPOPMIN", "z"]);
    r.expect(b"*2\r\n$1\r\na\r\n,1.1000000000000001\r\n");
    r.send_command(&["ZPOPMAX", "z", "1"]);
    r.expect(b"*1\r\n*2\r\n$1\r\nc\r\n,3\r\n");
    r.send_command(&["ZADD", "z", "XX", "INCR", "1", "nope"]);
    r.expect(b"_\r\n");
}

fn encodings_and_thresholds(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let cfg = |c: &mut redis::Connection, name: &str| as_strings(&run(c, &["CONFIG", "GET", name]));
    assert_reply(&mut c, "CONFIG SET zset-max-listpack-entries 128", ok());
    assert_reply(&mut c, "CONFIG SET zset-max-ziplist-value 64", ok());
    assert_eq!(
        cfg(&mut c, "zset-max-listpack-value"),
        ["zset-max-listpack-value", "64"]
    );
    for i in 0..128 {
        run(&mut c, &["ZADD", "n", &i.to_string(), &i.to_string()]);
    }
    assert_reply(&mut c, "OBJECT ENCODING n", bulk("listpack"));
    assert_reply(&mut c, "ZADD n 128 128", int(1));
    assert_reply(&mut c, "OBJECT ENCODING n", bulk("skiplist"));
    assert_reply(&mut c, "ZREMRANGEBYRANK n 0 100", int(101));
    assert_reply(&mut c, "OBJECT ENCODING n", bulk("skiplist"));
    run(&mut c, &["ZADD", "long", "1", &"x".repeat(65)]);
    assert_reply(&mut c, "OBJECT ENCODING long", bulk("skiplist"));
    run(&mut c, &["ZADD", "edge", "1", &"x".repeat(64)]);
    assert_reply(&mut c, "OBJECT ENCODING edge", bulk("listpack"));
    assert_reply(&mut c, "CONFIG SET zset-max-listpack-entries 0", ok());
    assert_reply(&mut c, "ZADD zero 1 a", int(1));
    assert_reply(&mut c, "OBJECT ENCODING zero", bulk("skiplist"));
    assert_reply(&mut c, "CONFIG SET zset-max-listpack-entries 128", ok());
    let usage = as_int(&q(&mut c, "MEMORY USAGE n"));
    assert!(usage > 28 * 9, "MEMORY USAGE counts members: {usage}");
}

fn store_rename_copy_dump_and_expiry(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "CONFIG SET zset-max-listpack-entries 128", ok());
    for i in 0..200 {
        run(&mut c, &["ZADD", "src", &i.to_string(), &format!("m{i}")]);
    }
    run(&mut c, &["ZADD", "small", "1", "a", "2", "b", "3", "c"]);
    // Many destination names: across cores on a multi-core server.
    for i in 0..8 {
        let dst = format!("dst{i}");
        assert_reply(&mut c, &format!("ZRANGESTORE {dst} src 10 19"), int(10));
        assert_eq!(run(&mut c, &["ZCARD", &dst]), int(10));
        assert_eq!(run(&mut c, &["OBJECT", "ENCODING", &dst]), bulk("listpack"));
        assert_eq!(
            run(
                &mut c,
                &[
                    "ZRANGESTORE",
                    &dst,
                    "src",
                    "+inf",
                    "(100",
                    "BYSCORE",
                    "REV",
                    "LIMIT",
                    "0",
                    "3"
                ]
            ),
            int(3)
        );
        assert_eq!(
            run(&mut c, &["ZRANGE", &dst, "0", "-1"]),
            strs(&["m197", "m198", "m199"])
        );
        assert_eq!(run(&mut c, &["ZRANGESTORE", &dst, "src", "5", "1"]), int(0));
        assert_eq!(run(&mut c, &["EXISTS", &dst]), int(0));
        assert_eq!(run(&mut c, &["SET", &dst, "string"]), ok());
        assert_eq!(
            run(&mut c, &["ZRANGESTORE", &dst, "small", "0", "0"]),
            int(1)
        );
        assert_eq!(run(&mut c, &["TYPE", &dst]), simple("zset"));
    }
    run(&mut c, &["EXPIRE", "src", "1000"]);
    for i in 0..8 {
        let (cp, mv) = (format!("copy{i}"), format!("moved{i}"));
        assert_eq!(run(&mut c, &["COPY", "src", &cp]), int(1));
        assert_eq!(run(&mut c, &["RENAME", &cp, &mv]), ok());
        assert_eq!(run(&mut c, &["TYPE", &mv]), simple("zset"));
        assert_eq!(run(&mut c, &["ZCARD", &mv]), int(200));
        assert_eq!(run(&mut c, &["ZSCORE", &mv, "m150"]), bulk("150"));
        assert_eq!(run(&mut c, &["OBJECT", "ENCODING", &mv]), bulk("skiplist"));
        assert!(as_int(&run(&mut c, &["TTL", &mv])) > 900);
    }
    run(&mut c, &["SET", "plain", "v"]);
    let mut zkeys = std::collections::BTreeSet::new();
    let mut cursor = "0".to_string();
    loop {
        let v = as_array(&run(
            &mut c,
            &["SCAN", &cursor, "TYPE", "zset", "COUNT", "7"],
        ));
        cursor = as_str(&v[0]);
        zkeys.extend(as_strings(&v[1]));
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(zkeys.len(), 18, "src, small, dst0-7, moved0-7: {zkeys:?}");
    if baton_only("Baton's DUMP payload format") {
        let payload = match run(&mut c, &["DUMP", "small"]) {
            Value::BulkString(b) => b,
            v => panic!("{v:?}"),
        };
        let restored: Value = redis::cmd("RESTORE")
            .arg("restored")
            .arg(0)
            .arg(payload)
            .query(&mut c)
            .expect("RESTORE");
        assert_eq!(restored, ok());
        assert_reply(
            &mut c,
            "ZRANGE restored 0 -1 WITHSCORES",
            strs(&["a", "1", "b", "2", "c", "3"]),
        );
        assert_reply(&mut c, "OBJECT ENCODING restored", bulk("listpack"));
    }
    assert_reply(&mut c, "PEXPIRE small 50", int(1));
    assert!(
        eventually(Duration::from_secs(5), || as_int(&q(
            &mut c,
            "EXISTS small"
        )) == 0),
        "an expired sorted set goes"
    );
    assert_reply(&mut c, "ZCARD small", int(0));
}

/// Every key of a server with its type, encoding, expiry and contents.
fn zsets(s: &Server) -> BTreeMap<String, (String, String, i64, Vec<String>)> {
    let mut c = s.redis();
    let keys = as_strings(&q(&mut c, "KEYS *"));
    let mut out = BTreeMap::new();
    for k in keys {
        let t = as_str(&run(&mut c, &["TYPE", &k]));
        if t == "none" {
            continue;
        }
        let enc = as_str(&run(&mut c, &["OBJECT", "ENCODING", &k]));
        let at = as_int(&run(&mut c, &["PEXPIRETIME", &k]));
        let items = match t.as_str() {
            "zset" => as_strings(&run(&mut c, &["ZRANGE", &k, "0", "-1", "WITHSCORES"])),
            _ => vec![format!("{:?}", run(&mut c, &["GET", &k]))],
        };
        out.insert(k, (t, enc, at, items));
    }
    out
}

fn replica_holds_the_same_zsets(cores: usize) {
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
            &[
                "ZADD",
                &format!("small{i}"),
                &i.to_string(),
                "a",
                "0.1",
                "b",
            ],
        );
    }
    for j in 0..300 {
        run(&mut c, &["ZADD", "big", &j.to_string(), &format!("m{j}")]);
    }
    run(&mut c, &["EXPIRE", "small3", "1000"]);
    let mut rc = r.redis();
    assert_reply(&mut rc, &format!("REPLICAOF 127.0.0.1 {}", p.port), ok());
    let same = |what: &str| {
        let mut last = (BTreeMap::new(), BTreeMap::new());
        let ok = eventually(Duration::from_secs(20), || {
            last = (zsets(&p), zsets(&r));
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
    // After the link: what the journal carries, as outcomes.
    for j in 0..50 {
        run(&mut c, &["ZINCRBY", "big", "0.5", &format!("m{j}")]);
    }
    run(&mut c, &["ZREM", "big", "m299", "m298"]);
    run(&mut c, &["ZPOPMIN", "big", "3"]);
    run(&mut c, &["ZREMRANGEBYSCORE", "big", "100", "110"]);
    run(&mut c, &["ZADD", "small1", "GT", "CH", "100", "a"]);
    run(&mut c, &["ZADD", "small2", "INCR", "2.5", "b"]);
    run(&mut c, &["ZREM", "small5", "a", "b"]);
    run(&mut c, &["ZADD", "small6", "1", &"y".repeat(100)]);
    run(&mut c, &["ZRANGESTORE", "stored", "big", "0", "9"]);
    run(&mut c, &["RENAME", "small7", "renamed7"]);
    run(&mut c, &["COPY", "big", "bigcopy"]);
    run(&mut c, &["PEXPIRE", "small8", "1"]);
    same("after journal writes");
    let got = zsets(&r);
    assert_eq!(got["small6"].1, "skiplist");
    assert_eq!(got["small0"].1, "listpack");
    assert!(!got.contains_key("small5"));
    assert!(!got.contains_key("small8"));
    assert_eq!(got["stored"].3.len(), 20);
    assert_eq!(got["big"].3.len(), 2 * (300 - 2 - 3 - 11));
}

fn set_operations_and_mpop_across_cores(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    // Key names chosen so that, on two cores, some live apart.
    for i in 0..6 {
        let (a, b, d) = (format!("a{i}"), format!("b{i}"), format!("out{i}"));
        run(&mut c, &["ZADD", &a, "1", "x", "2", "y", "3", "z"]);
        run(&mut c, &["ZADD", &b, "10", "y", "20", "z", "30", "w"]);
        assert_eq!(
            run(&mut c, &["ZUNION", "2", &a, &b, "WITHSCORES"]),
            strs(&["x", "1", "y", "12", "z", "23", "w", "30"])
        );
        assert_eq!(
            run(
                &mut c,
                &[
                    "ZINTER",
                    "2",
                    &a,
                    &b,
                    "WEIGHTS",
                    "2",
                    "1",
                    "AGGREGATE",
                    "MAX",
                    "WITHSCORES"
                ]
            ),
            strs(&["y", "10", "z", "20"])
        );
        assert_eq!(run(&mut c, &["ZDIFF", "2", &a, &b]), strs(&["x"]));
        assert_eq!(run(&mut c, &["ZINTERCARD", "2", &a, &b]), int(2));
        assert_eq!(
            run(&mut c, &["ZINTERCARD", "2", &a, &b, "LIMIT", "1"]),
            int(1)
        );
        assert_eq!(
            run(
                &mut c,
                &["ZUNIONSTORE", &d, "2", &a, &b, "AGGREGATE", "MIN"]
            ),
            int(4)
        );
        assert_eq!(
            run(&mut c, &["ZRANGE", &d, "0", "-1", "WITHSCORES"]),
            strs(&["x", "1", "y", "2", "z", "3", "w", "30"])
        );
        assert_eq!(run(&mut c, &["ZINTERSTORE", &d, "2", &a, &b]), int(2));
        assert_eq!(run(&mut c, &["ZSCORE", &d, "z"]), bulk("23"));
        assert_eq!(run(&mut c, &["ZDIFFSTORE", &d, "2", &b, &a]), int(1));
        assert_eq!(run(&mut c, &["ZRANGE", &d, "0", "-1"]), strs(&["w"]));
        assert_eq!(run(&mut c, &["ZDIFFSTORE", &d, "2", &a, &a]), int(0));
        assert_eq!(run(&mut c, &["EXISTS", &d]), int(0));
        assert_eq!(
            run(
                &mut c,
                &["ZMPOP", "3", "missing", &a, &b, "MAX", "COUNT", "2"]
            ),
            arr(vec![
                bulk(&a),
                arr(vec![strs(&["z", "3"]), strs(&["y", "2"])])
            ])
        );
        assert_eq!(
            run(&mut c, &["ZMPOP", "2", &a, &b, "MIN", "COUNT", "5"]),
            arr(vec![bulk(&a), arr(vec![strs(&["x", "1"])])])
        );
        assert_eq!(run(&mut c, &["EXISTS", &a]), int(0));
        assert_eq!(
            run(&mut c, &["ZMPOP", "2", &a, &b, "MIN"]),
            arr(vec![bulk(&b), arr(vec![strs(&["y", "10"])])])
        );
        assert_eq!(run(&mut c, &["ZCARD", &b]), int(2));
    }
    assert_eq!(run(&mut c, &["ZMPOP", "1", "missing", "MIN"]), nil());
    assert_reply(&mut c, "ZADD inf1 inf m", int(1));
    assert_reply(&mut c, "ZADD inf2 -inf m", int(1));
    assert_reply(&mut c, "ZUNION 2 inf1 inf2 WITHSCORES", strs(&["m", "0"]));
    assert_reply(&mut c, "SET str v", ok());
    assert_err(
        &mut c,
        "ZUNION 2 inf1 str",
        "WRONGTYPE Operation against a key holding the wrong kind of value",
    );
    assert_err(
        &mut c,
        "ZUNION 0 inf1",
        "ERR at least 1 input key is needed for 'zunion' command",
    );
    assert_err(
        &mut c,
        "ZINTERSTORE dst 0 inf1",
        "ERR at least 1 input key is needed for 'zinterstore' command",
    );
    assert_err(&mut c, "ZUNION 3 inf1 inf2", "ERR syntax error");
    assert_err(
        &mut c,
        "ZUNION 1 inf1 WEIGHTS x",
        "ERR weight value is not a float",
    );
    assert_err(&mut c, "ZUNION 1 inf1 AGGREGATE avg", "ERR syntax error");
    assert_err(&mut c, "ZDIFF 1 inf1 WEIGHTS 1", "ERR syntax error");
    assert_err(
        &mut c,
        "ZUNIONSTORE d 1 inf1 WITHSCORES",
        "ERR syntax error",
    );
    assert_err(
        &mut c,
        "ZINTERCARD 0 inf1",
        "ERR at least 1 input key is needed for 'zintercard' command",
    );
    assert_err(&mut c, "ZINTERCARD 3 inf1 inf2", "ERR syntax error");
    assert_err(
        &mut c,
        "ZINTERCARD 1 inf1 LIMIT -1",
        "ERR LIMIT can't be negative",
    );
    assert_err(
        &mut c,
        "ZMPOP 0 inf1 MIN",
        "ERR numkeys should be greater than 0",
    );
    assert_err(&mut c, "ZMPOP 1 inf1 LEFT", "ERR syntax error");
    assert_err(
        &mut c,
        "ZMPOP 1 inf1 MIN COUNT 0",
        "ERR count should be greater than 0",
    );
    assert_err(&mut c, "ZMPOP 2 inf1 MIN", "ERR syntax error");
}

fn migrate_moves_a_sorted_set(cores: usize) {
    if !baton_only("Baton's DUMP payload between two Batons") {
        return;
    }
    let (a, b) = (Server::start(cores), Server::start(3 - cores));
    let mut c = a.redis();
    for i in 0..300 {
        run(&mut c, &["ZADD", "big", &i.to_string(), &format!("m{i}")]);
    }
    run(&mut c, &["ZADD", "small", "1.5", "x", "-inf", "y"]);
    run(&mut c, &["EXPIRE", "small", "1000"]);
    let port = b.port.to_string();
    for key in ["big", "small"] {
        assert_eq!(
            run(&mut c, &["MIGRATE", "127.0.0.1", &port, key, "0", "5000"]),
            ok()
        );
        assert_eq!(run(&mut c, &["EXISTS", key]), int(0));
    }
    let mut d = b.redis();
    assert_reply(&mut d, "ZCARD big", int(300));
    assert_reply(&mut d, "ZRANK big m123", int(123));
    assert_reply(&mut d, "OBJECT ENCODING big", bulk("skiplist"));
    assert_reply(
        &mut d,
        "ZRANGE small 0 -1 WITHSCORES",
        strs(&["y", "-inf", "x", "1.5"]),
    );
    assert!(as_int(&q(&mut d, "TTL small")) > 900);
}

/// ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD take plain sets as inputs, each
/// member with score 1 (Redis's rule), whatever the set's encoding; a string is WRONGTYPE.
fn plain_sets_are_inputs_with_score_one(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "SADD ints 1 2 3", int(3)); // intset
    assert_reply(&mut c, "SADD words b c d", int(3)); // listpack
    let many: Vec<String> = (0..200).map(|i| format!("m{i:03}")).collect();
    let mut cmd = vec!["SADD", "big"];
    cmd.extend(many.iter().map(String::as_str));
    assert_eq!(run(&mut c, &cmd), int(200)); // hashtable
    assert_reply(&mut c, "ZADD z 5 b 7 2 9 m000", int(3));
    assert_reply(
        &mut c,
        "ZUNION 3 ints words z WITHSCORES",
        strs(&[
            "1", "1", "3", "1", "c", "1", "d", "1", "b", "6", "2", "8", "m000", "9",
        ]),
    );
    assert_reply(
        &mut c,
        "ZINTER 2 words z WEIGHTS 10 1 WITHSCORES",
        strs(&["b", "15"]),
    );
    assert_reply(
        &mut c,
        "ZINTER 2 z ints AGGREGATE MAX WITHSCORES",
        strs(&["2", "7"]),
    );
    assert_reply(&mut c, "ZDIFF 2 words z", strs(&["c", "d"]));
    assert_reply(&mut c, "ZINTERCARD 2 big z", int(1));
    assert_reply(&mut c, "ZUNIONSTORE out 2 big ints", int(203));
    assert_reply(&mut c, "ZSCORE out m199", bulk("1"));
    assert_reply(&mut c, "TYPE out", simple("zset"));
    assert_reply(&mut c, "SET str v", ok());
    assert_err(
        &mut c,
        "ZUNION 2 words str",
        "WRONGTYPE Operation against a key holding the wrong kind of value",
    );
}
