use crate::commands::{bulk, run};
use crate::reply::{errors, Reply};
use crate::Shard;

const NOW: u64 = 1_000_000;

fn set(items: &[&str]) -> Reply {
    Reply::Set(items.iter().map(|s| bulk(s)).collect())
}

/// The members of a set reply, sorted (a table's order is its own).
fn sorted(r: Reply) -> Vec<String> {
    let (Reply::Set(v) | Reply::Array(v)) = r else {
        panic!("not a collection: {r:?}")
    };
    let mut out: Vec<String> = v
        .into_iter()
        .map(|m| match m {
            Reply::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("not a bulk: {other:?}"),
        })
        .collect();
    out.sort();
    out
}

fn enc(s: &mut Shard, key: &str) -> Reply {
    run(s, &["OBJECT", "ENCODING", key], NOW)
}

#[test]
fn add_remove_and_read() {
    let mut s = Shard::new(0);
    assert_eq!(
        run(&mut s, &["SADD", "s", "3", "1", "2", "1"], NOW),
        Reply::Int(3)
    );
    assert_eq!(enc(&mut s, "s"), bulk("intset"));
    assert_eq!(run(&mut s, &["SMEMBERS", "s"], NOW), set(&["1", "2", "3"]));
    assert_eq!(run(&mut s, &["SISMEMBER", "s", "2"], NOW), Reply::Int(1));
    assert_eq!(run(&mut s, &["SISMEMBER", "s", "02"], NOW), Reply::Int(0));
    assert_eq!(
        run(&mut s, &["SMISMEMBER", "s", "1", "x", "3"], NOW),
        Reply::Array(vec![Reply::Int(1), Reply::Int(0), Reply::Int(1)])
    );
    assert_eq!(run(&mut s, &["SADD", "s", "a"], NOW), Reply::Int(1));
    assert_eq!(enc(&mut s, "s"), bulk("hashtable"));
    assert_eq!(run(&mut s, &["SCARD", "s"], NOW), Reply::Int(4));
    assert_eq!(
        run(&mut s, &["SREM", "s", "a", "1", "zz", "1"], NOW),
        Reply::Int(2)
    );
    assert_eq!(
        enc(&mut s, "s"),
        bulk("hashtable"),
        "no way back to an intset"
    );
    assert_eq!(sorted(run(&mut s, &["SMEMBERS", "s"], NOW)), ["2", "3"]);
    assert_eq!(run(&mut s, &["SREM", "s", "2", "3"], NOW), Reply::Int(2));
    assert_eq!(run(&mut s, &["EXISTS", "s"], NOW), Reply::Int(0));
    assert_eq!(run(&mut s, &["SCARD", "s"], NOW), Reply::Int(0));
    assert_eq!(run(&mut s, &["SMEMBERS", "s"], NOW), set(&[]));
    assert_eq!(run(&mut s, &["TYPE", "n"], NOW), Reply::simple("none"));
    run(&mut s, &["SADD", "n", "x"], NOW);
    assert_eq!(run(&mut s, &["TYPE", "n"], NOW), Reply::simple("set"));
}

#[test]
fn wrong_types_both_ways() {
    let mut s = Shard::new(0);
    run(&mut s, &["SET", "str", "v"], NOW);
    run(&mut s, &["SADD", "s", "a"], NOW);
    for cmd in [
        &["SADD", "str", "a"][..],
        &["SREM", "str", "a"],
        &["SMEMBERS", "str"],
        &["SISMEMBER", "str", "a"],
        &["SMISMEMBER", "str", "a"],
        &["SCARD", "str"],
        &["SPOP", "str"],
        &["SRANDMEMBER", "str"],
        &["SSCAN", "str", "0"],
        &["SINTER", "nokey", "str"],
        &["SUNION", "s", "str"],
        &["SDIFF", "nokey", "str"],
        &["SINTERCARD", "2", "nokey", "str"],
        &["SINTERSTORE", "d", "nokey", "str"],
        &["SMOVE", "s", "str", "a"],
        &["SMOVE", "str", "s", "a"],
        &["SMOVE", "s", "str", "zz"],
        &["GET", "s"],
        &["HGET", "s", "f"],
        &["APPEND", "s", "x"],
    ] {
        assert_eq!(run(&mut s, cmd, NOW), errors::WRONGTYPE, "{cmd:?}");
    }
    assert_eq!(
        run(&mut s, &["SMOVE", "nokey", "str", "a"], NOW),
        Reply::Int(0)
    );
}

#[test]
fn algebra_and_store_forms() {
    let mut s = Shard::new(0);
    run(&mut s, &["SADD", "a", "1", "2", "3", "x"], NOW);
    run(&mut s, &["SADD", "b", "2", "3", "4"], NOW);
    run(&mut s, &["SADD", "c", "3", "5"], NOW);
    assert_eq!(sorted(run(&mut s, &["SINTER", "a", "b"], NOW)), ["2", "3"]);
    assert_eq!(sorted(run(&mut s, &["SINTER", "a", "b", "c"], NOW)), ["3"]);
    assert_eq!(run(&mut s, &["SINTER", "a", "nokey"], NOW), set(&[]));
    assert_eq!(
        sorted(run(&mut s, &["SUNION", "a", "b", "nokey"], NOW)),
        ["1", "2", "3", "4", "x"]
    );
    assert_eq!(
        sorted(run(&mut s, &["SDIFF", "a", "b", "c"], NOW)),
        ["1", "x"]
    );
    assert_eq!(run(&mut s, &["SDIFF", "nokey", "a"], NOW), set(&[]));
    assert_eq!(
        run(&mut s, &["SINTERCARD", "2", "a", "b"], NOW),
        Reply::Int(2)
    );
    assert_eq!(
        run(&mut s, &["SINTERCARD", "2", "a", "b", "LIMIT", "1"], NOW),
        Reply::Int(1)
    );
    assert_eq!(
        run(&mut s, &["SINTERCARD", "2", "a", "b", "LIMIT", "0"], NOW),
        Reply::Int(2)
    );
    assert_eq!(
        run(&mut s, &["SINTERSTORE", "d", "a", "b"], NOW),
        Reply::Int(2)
    );
    assert_eq!(
        enc(&mut s, "d"),
        bulk("intset"),
        "an all-integer result is an intset"
    );
    assert_eq!(
        run(&mut s, &["SUNIONSTORE", "d", "a", "b"], NOW),
        Reply::Int(5)
    );
    assert_eq!(enc(&mut s, "d"), bulk("hashtable"));
    run(&mut s, &["SET", "str", "v"], NOW);
    assert_eq!(
        run(&mut s, &["SDIFFSTORE", "str", "a", "b"], NOW),
        Reply::Int(2)
    );
    assert_eq!(run(&mut s, &["TYPE", "str"], NOW), Reply::simple("set"));
    assert_eq!(
        run(&mut s, &["SINTERSTORE", "d", "a", "nokey"], NOW),
        Reply::Int(0)
    );
    assert_eq!(
        run(&mut s, &["EXISTS", "d"], NOW),
        Reply::Int(0),
        "an empty result deletes"
    );
    // The destination may be a source.
    assert_eq!(
        run(&mut s, &["SUNIONSTORE", "a", "a", "c"], NOW),
        Reply::Int(5)
    );
}

#[test]
fn sintercard_arguments_as_redis_reads_them() {
    let mut s = Shard::new(0);
    run(&mut s, &["SADD", "s", "a"], NOW);
    let cases: [(&[&str], &str); 6] = [
        (
            &["SINTERCARD", "0", "s"],
            "ERR numkeys should be greater than 0",
        ),
        (
            &["SINTERCARD", "x", "s"],
            "ERR numkeys should be greater than 0",
        ),
        (
            &["SINTERCARD", "2", "s"],
            "ERR Number of keys can't be greater than number of args",
        ),
        (
            &["SINTERCARD", "1", "s", "LIMIT", "-1"],
            "ERR LIMIT can't be negative",
        ),
        (
            &["SINTERCARD", "1", "s", "LIMIT", "x"],
            "ERR LIMIT can't be negative",
        ),
        (&["SINTERCARD", "1", "s", "foo"], "ERR syntax error"),
    ];
    for (cmd, want) in cases {
        assert_eq!(run(&mut s, cmd, NOW), Reply::err(want), "{cmd:?}");
    }
    let spec = crate::command::lookup(b"sintercard").unwrap();
    let args: Vec<bytes::Bytes> = ["SINTERCARD", "2", "k1", "k2", "LIMIT", "3"]
        .iter()
        .map(|a| bytes::Bytes::from(a.to_string()))
        .collect();
    assert_eq!(spec.keys_in(&args), [2, 3]);
    assert_eq!(spec.keys_in(&args[..3]), Vec::<usize>::new());
}

#[test]
fn spop_and_srandmember_counts() {
    let mut s = Shard::new(0);
    let members: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
    let mut cmd = vec!["SADD", "s"];
    cmd.extend(members.iter().map(|m| m.as_str()));
    run(&mut s, &cmd, NOW);
    let r = sorted(run(&mut s, &["SRANDMEMBER", "s", "10"], NOW));
    let mut d = r.clone();
    d.dedup();
    assert_eq!((r.len(), d.len()), (10, 10), "distinct");
    assert_eq!(
        sorted(run(&mut s, &["SRANDMEMBER", "s", "-500"], NOW)).len(),
        500
    );
    assert_eq!(
        sorted(run(&mut s, &["SRANDMEMBER", "s", "1000"], NOW)).len(),
        300
    );
    assert_eq!(
        run(&mut s, &["SRANDMEMBER", "s", "0"], NOW),
        Reply::Array(vec![])
    );
    assert_eq!(
        run(&mut s, &["SRANDMEMBER", "nokey", "5"], NOW),
        Reply::Array(vec![])
    );
    assert_eq!(run(&mut s, &["SRANDMEMBER", "nokey"], NOW), Reply::Nil);
    assert_eq!(
        run(&mut s, &["SRANDMEMBER", "s", "-9223372036854775807"], NOW),
        Reply::err("ERR value is out of range"),
        "a huge count is refused, not allocated"
    );
    assert_eq!(
        run(&mut s, &["SRANDMEMBER", "s", "-9223372036854775808"], NOW),
        Reply::err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
    );
    assert_eq!(
        run(&mut s, &["SRANDMEMBER", "s", "x"], NOW),
        errors::NOT_INTEGER
    );
    assert_eq!(
        run(&mut s, &["SRANDMEMBER", "s", "1", "2"], NOW),
        errors::SYNTAX
    );
    let popped = sorted(run(&mut s, &["SPOP", "s", "100"], NOW));
    assert_eq!(popped.len(), 100);
    assert_eq!(run(&mut s, &["SCARD", "s"], NOW), Reply::Int(200));
    for m in &popped {
        assert_eq!(run(&mut s, &["SISMEMBER", "s", m], NOW), Reply::Int(0));
    }
    assert!(matches!(run(&mut s, &["SPOP", "s"], NOW), Reply::Bulk(_)));
    for bad in ["-1", "x", "-0"] {
        assert_eq!(
            run(&mut s, &["SPOP", "s", bad], NOW),
            Reply::err("ERR value is out of range, must be positive")
        );
    }
    assert_eq!(run(&mut s, &["SPOP", "s", "0"], NOW), set(&[]));
    assert_eq!(run(&mut s, &["SPOP", "s", "1", "2"], NOW), errors::SYNTAX);
    assert_eq!(
        sorted(run(&mut s, &["SPOP", "s", "9223372036854775807"], NOW)).len(),
        199
    );
    assert_eq!(run(&mut s, &["EXISTS", "s"], NOW), Reply::Int(0));
    assert_eq!(run(&mut s, &["SPOP", "s"], NOW), Reply::Nil);
    assert_eq!(run(&mut s, &["SPOP", "s", "3"], NOW), set(&[]));
}

#[test]
fn smove_and_sscan() {
    let mut s = Shard::new(0);
    run(&mut s, &["SADD", "a", "x", "y"], NOW);
    assert_eq!(run(&mut s, &["SMOVE", "a", "b", "x"], NOW), Reply::Int(1));
    assert_eq!(run(&mut s, &["SMOVE", "a", "b", "zz"], NOW), Reply::Int(0));
    assert_eq!(run(&mut s, &["SMOVE", "a", "a", "y"], NOW), Reply::Int(1));
    assert_eq!(run(&mut s, &["SMOVE", "a", "a", "zz"], NOW), Reply::Int(0));
    assert_eq!(run(&mut s, &["SMOVE", "a", "b", "y"], NOW), Reply::Int(1));
    assert_eq!(run(&mut s, &["EXISTS", "a"], NOW), Reply::Int(0));
    assert_eq!(sorted(run(&mut s, &["SMEMBERS", "b"], NOW)), ["x", "y"]);
    // A table is walked by cursor; every member comes back once.
    let members: Vec<String> = (0..1000).map(|i| format!("k{i}")).collect();
    let mut cmd = vec!["SADD", "big"];
    cmd.extend(members.iter().map(|m| m.as_str()));
    run(&mut s, &cmd, NOW);
    let mut seen = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let Reply::Array(r) = run(&mut s, &["SSCAN", "big", &cursor, "COUNT", "50"], NOW) else {
            panic!()
        };
        seen.extend(sorted(r[1].clone()));
        let Reply::Bulk(c) = &r[0] else { panic!() };
        cursor = String::from_utf8(c.to_vec()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    seen.sort();
    let mut want = members.clone();
    want.sort();
    assert_eq!(seen, want);
    let Reply::Array(r) = run(&mut s, &["SSCAN", "b", "0", "MATCH", "x*"], NOW) else {
        panic!()
    };
    assert_eq!(r[1], Reply::Array(vec![bulk("x")]));
    assert_eq!(
        run(&mut s, &["SSCAN", "b", "x"], NOW),
        Reply::err("ERR invalid cursor")
    );
    assert_eq!(
        run(&mut s, &["SSCAN", "b", "0", "COUNT", "0"], NOW),
        errors::SYNTAX
    );
    assert_eq!(
        run(&mut s, &["SSCAN", "b", "0", "foo"], NOW),
        errors::SYNTAX
    );
}

#[test]
fn encodings_follow_the_thresholds_and_copies_keep_them() {
    let mut s = Shard::new(0);
    let ints: Vec<String> = (0..513).map(|i| i.to_string()).collect();
    let mut cmd = vec!["SADD", "i"];
    cmd.extend(ints[..512].iter().map(|m| m.as_str()));
    run(&mut s, &cmd, NOW);
    assert_eq!(enc(&mut s, "i"), bulk("intset"));
    run(&mut s, &["SADD", "i", "512"], NOW);
    assert_eq!(enc(&mut s, "i"), bulk("hashtable"));
    // COPY and RENAME keep "hashtable" for an all-integer set in table form.
    assert_eq!(run(&mut s, &["SREM", "i", "512"], NOW), Reply::Int(1));
    assert_eq!(run(&mut s, &["COPY", "i", "i2"], NOW), Reply::Int(1));
    assert_eq!(enc(&mut s, "i2"), bulk("hashtable"));
    run(&mut s, &["SADD", "small", "1", "2"], NOW);
    assert_eq!(run(&mut s, &["RENAME", "small", "s2"], NOW), Reply::Ok);
    assert_eq!(enc(&mut s, "s2"), bulk("intset"));
    // DUMP/RESTORE carry a set; RESTORE picks the form by the thresholds.
    let Reply::Bulk(payload) = run(&mut s, &["DUMP", "i2"], NOW) else {
        panic!()
    };
    let args: Vec<bytes::Bytes> = vec!["RESTORE".into(), "r".into(), "0".into(), payload];
    assert_eq!(super::super::dump::restore(&mut s, &args, NOW), Reply::Ok);
    assert_eq!(run(&mut s, &["SCARD", "r"], NOW), Reply::Int(512));
    assert_eq!(enc(&mut s, "r"), bulk("intset"));
    assert_eq!(run(&mut s, &["SCARD", "i2"], NOW), Reply::Int(512));
    let Reply::Array(r) = run(&mut s, &["SCAN", "0", "TYPE", "set", "COUNT", "100"], NOW) else {
        panic!()
    };
    assert_eq!(sorted(r[1].clone()), ["i", "i2", "r", "s2"]);
    // Expiry covers sets.
    run(&mut s, &["PEXPIRE", "s2", "10"], NOW);
    assert_eq!(run(&mut s, &["SCARD", "s2"], NOW + 20), Reply::Int(0));
    let Reply::Int(usage) = run(&mut s, &["MEMORY", "USAGE", "i"], NOW) else {
        panic!()
    };
    assert!(usage > 512 * 8, "{usage}");
}

quickcheck::quickcheck! {
    /// Any arguments to any set command get a reply, never a panic.
    fn set_commands_never_panic(cmds: Vec<(u8, Vec<(u8, String)>)>) -> bool {
        const NAMES: [&str; 17] = [
            "SADD", "SREM", "SMEMBERS", "SISMEMBER", "SMISMEMBER", "SCARD", "SPOP",
            "SRANDMEMBER", "SMOVE", "SSCAN", "SINTER", "SUNION", "SDIFF", "SINTERSTORE",
            "SUNIONSTORE", "SDIFFSTORE", "SINTERCARD",
        ];
        const WORDS: [&str; 14] = [
            "-5", "3", "0", "1", "2", "-9223372036854775808", "9223372036854775807",
            "-9223372036854775807", "LIMIT", "MATCH", "*", "COUNT", "s", "",
        ];
        let mut s = Shard::new(0);
        for (n, args) in cmds {
            let name = NAMES[n as usize % NAMES.len()];
            let mut words = vec![name, if n % 3 == 0 { "str" } else { "s" }];
            for (pick, text) in args.iter().take(7) {
                words.push(if pick % 2 == 0 { WORDS[*pick as usize % WORDS.len()] } else { text });
            }
            if n % 7 == 0 {
                run(&mut s, &["SET", "str", "v"], NOW);
            }
            let spec = crate::command::lookup(name.as_bytes());
            if spec.is_some_and(|c| c.arity_ok(words.len())) {
                let r = run(&mut s, &words, NOW);
                // A reply never holds more than the bound on random counts.
                if let Reply::Array(v) = &r {
                    if v.len() as u64 > super::MAX_RANDOM_COUNT { return false; }
                }
            }
        }
        true
    }
}
