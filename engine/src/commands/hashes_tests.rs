use crate::commands::{bulk, err, run};
use crate::reply::{errors, Reply};
use crate::Shard;

const NOW: u64 = 1_000_000;

fn arr(items: &[&str]) -> Reply {
    Reply::Array(items.iter().map(|s| bulk(s)).collect())
}

#[test]
fn set_get_and_delete_fields() {
    let mut s = Shard::new(0);
    assert_eq!(
        run(&mut s, &["HSET", "h", "a", "1", "b", "2"], NOW),
        Reply::Int(2)
    );
    assert_eq!(
        run(&mut s, &["HSET", "h", "a", "3", "c", "4", "c", "5"], NOW),
        Reply::Int(1)
    );
    assert_eq!(run(&mut s, &["HGET", "h", "a"], NOW), bulk("3"));
    assert_eq!(run(&mut s, &["HGET", "h", "c"], NOW), bulk("5"));
    assert_eq!(run(&mut s, &["HGET", "h", "zz"], NOW), Reply::Nil);
    assert_eq!(
        run(&mut s, &["HMGET", "h", "a", "zz"], NOW),
        Reply::Array(vec![bulk("3"), Reply::Nil])
    );
    assert_eq!(run(&mut s, &["HKEYS", "h"], NOW), arr(&["a", "b", "c"]));
    assert_eq!(run(&mut s, &["HVALS", "h"], NOW), arr(&["3", "2", "5"]));
    assert_eq!(run(&mut s, &["HLEN", "h"], NOW), Reply::Int(3));
    assert_eq!(run(&mut s, &["HSTRLEN", "h", "a"], NOW), Reply::Int(1));
    assert_eq!(run(&mut s, &["HEXISTS", "h", "b"], NOW), Reply::Int(1));
    assert_eq!(run(&mut s, &["HSETNX", "h", "b", "x"], NOW), Reply::Int(0));
    assert_eq!(run(&mut s, &["HSETNX", "h", "d", "x"], NOW), Reply::Int(1));
    assert_eq!(
        run(&mut s, &["HDEL", "h", "a", "b", "a", "nope"], NOW),
        Reply::Int(2)
    );
    assert_eq!(run(&mut s, &["HMSET", "h", "e", "6"], NOW), Reply::Ok);
    assert_eq!(
        run(&mut s, &["HGETALL", "h"], NOW),
        Reply::Map(vec![
            (bulk("c"), bulk("5")),
            (bulk("d"), bulk("x")),
            (bulk("e"), bulk("6"))
        ])
    );
    assert_eq!(
        run(&mut s, &["HDEL", "h", "c", "d", "e"], NOW),
        Reply::Int(3)
    );
    assert_eq!(run(&mut s, &["EXISTS", "h"], NOW), Reply::Int(0));
    assert_eq!(
        run(&mut s, &["HSET", "h", "a"], NOW),
        err("ERR wrong number of arguments for 'hset' command")
    );
    assert_eq!(
        run(&mut s, &["HMSET", "h", "a", "1", "b"], NOW),
        err("ERR wrong number of arguments for 'hmset' command")
    );
}

#[test]
fn wrong_type_both_ways() {
    let mut s = Shard::new(0);
    run(&mut s, &["SET", "s", "v"], NOW);
    run(&mut s, &["HSET", "h", "f", "v"], NOW);
    for cmd in [
        &["HGET", "s", "f"][..],
        &["HSET", "s", "f", "v"],
        &["HDEL", "s", "f"],
        &["HLEN", "s"],
        &["HGETALL", "s"],
        &["HINCRBY", "s", "f", "1"],
        &["HRANDFIELD", "s"],
        &["HSCAN", "s", "0"],
        &["GET", "h"],
        &["APPEND", "h", "x"],
        &["INCR", "h"],
        &["INCRBYFLOAT", "h", "1"],
        &["STRLEN", "h"],
        &["GETRANGE", "h", "0", "1"],
        &["SETRANGE", "h", "0", "x"],
        &["GETDEL", "h"],
        &["GETEX", "h"],
        &["GETSET", "h", "x"],
        &["SET", "h", "x", "GET"],
    ] {
        assert_eq!(run(&mut s, cmd, NOW), errors::WRONGTYPE, "{cmd:?}");
    }
    assert_eq!(
        run(&mut s, &["MGET", "h", "s"], NOW),
        Reply::Array(vec![Reply::Nil, bulk("v")])
    );
    assert_eq!(
        run(&mut s, &["LCS", "h", "s"], NOW),
        err("ERR The specified keys must contain string values")
    );
    assert_eq!(run(&mut s, &["TYPE", "h"], NOW), Reply::simple("hash"));
    assert_eq!(run(&mut s, &["TYPE", "s"], NOW), Reply::simple("string"));
    assert_eq!(run(&mut s, &["TYPE", "x"], NOW), Reply::simple("none"));
    assert_eq!(run(&mut s, &["SET", "h", "now a string"], NOW), Reply::Ok);
    assert_eq!(run(&mut s, &["GET", "h"], NOW), bulk("now a string"));
}

#[test]
fn increments() {
    let mut s = Shard::new(0);
    assert_eq!(run(&mut s, &["HINCRBY", "h", "n", "5"], NOW), Reply::Int(5));
    assert_eq!(
        run(&mut s, &["HINCRBY", "h", "n", "-7"], NOW),
        Reply::Int(-2)
    );
    assert_eq!(
        run(&mut s, &["HINCRBY", "h", "n", "x"], NOW),
        errors::NOT_INTEGER
    );
    run(
        &mut s,
        &["HSET", "h", "t", "text", "big", "9223372036854775807"],
        NOW,
    );
    assert_eq!(
        run(&mut s, &["HINCRBY", "h", "t", "1"], NOW),
        err("ERR hash value is not an integer")
    );
    assert_eq!(
        run(&mut s, &["HINCRBY", "h", "big", "1"], NOW),
        errors::OVERFLOW
    );
    assert_eq!(
        run(&mut s, &["HINCRBYFLOAT", "h", "f", "10.5"], NOW),
        bulk("10.5")
    );
    assert_eq!(
        run(&mut s, &["HINCRBYFLOAT", "h", "f", "0.1"], NOW),
        bulk("10.6")
    );
    run(&mut s, &["HSET", "h", "g", "5.0e3"], NOW);
    assert_eq!(
        run(&mut s, &["HINCRBYFLOAT", "h", "g", "2.0e2"], NOW),
        bulk("5200")
    );
    assert_eq!(
        run(&mut s, &["HINCRBYFLOAT", "h", "t", "1"], NOW),
        err("ERR hash value is not a float")
    );
    assert_eq!(
        run(&mut s, &["HINCRBYFLOAT", "h", "f", "x"], NOW),
        errors::NOT_FLOAT
    );
    assert_eq!(
        run(&mut s, &["HINCRBYFLOAT", "h", "f", "inf"], NOW),
        err("ERR value is NaN or Infinity")
    );
    assert_eq!(run(&mut s, &["HGET", "h", "f"], NOW), bulk("10.6"));
}

#[test]
fn random_fields_and_scan() {
    let mut s = Shard::new(0);
    assert_eq!(run(&mut s, &["HRANDFIELD", "h"], NOW), Reply::Nil);
    assert_eq!(
        run(&mut s, &["HRANDFIELD", "h", "3"], NOW),
        Reply::Array(vec![])
    );
    run(&mut s, &["HSET", "h", "a", "1", "b", "2", "c", "3"], NOW);
    assert!(matches!(
        run(&mut s, &["HRANDFIELD", "h"], NOW),
        Reply::Bulk(_)
    ));
    assert_eq!(
        run(&mut s, &["HRANDFIELD", "h", "5"], NOW),
        arr(&["a", "b", "c"])
    );
    let Reply::Array(two) = run(&mut s, &["HRANDFIELD", "h", "2"], NOW) else {
        panic!()
    };
    assert!(two.len() == 2 && two[0] != two[1]);
    let Reply::Array(many) = run(&mut s, &["HRANDFIELD", "h", "-10"], NOW) else {
        panic!()
    };
    assert_eq!(many.len(), 10);
    let Reply::Pairs(p) = run(&mut s, &["HRANDFIELD", "h", "-4", "WITHVALUES"], NOW) else {
        panic!()
    };
    assert_eq!(p.len(), 4);
    assert_eq!(
        run(&mut s, &["HRANDFIELD", "h", "1", "x"], NOW),
        errors::SYNTAX
    );
    assert_eq!(
        run(&mut s, &["HRANDFIELD", "h", "-99999999999"], NOW),
        err("ERR value is out of range")
    );
    assert_eq!(
        run(&mut s, &["HSCAN", "h", "0", "MATCH", "[ab]"], NOW),
        Reply::Array(vec![bulk("0"), arr(&["a", "1", "b", "2"])])
    );
    assert_eq!(
        run(&mut s, &["HSCAN", "h", "x"], NOW),
        err("ERR invalid cursor")
    );
    assert_eq!(
        run(&mut s, &["HSCAN", "h", "0", "COUNT", "0"], NOW),
        errors::SYNTAX
    );
    // A table: every field exactly once, a bounded number per call.
    for i in 0..300 {
        let f = format!("f{i}");
        run(&mut s, &["HSET", "big", &f, "v"], NOW);
    }
    assert_eq!(
        run(&mut s, &["OBJECT", "ENCODING", "big"], NOW),
        bulk("hashtable")
    );
    assert_eq!(
        run(&mut s, &["OBJECT", "ENCODING", "h"], NOW),
        bulk("listpack")
    );
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    loop {
        let Reply::Array(r) = run(&mut s, &["HSCAN", "big", &cursor, "COUNT", "7"], NOW) else {
            panic!()
        };
        let (Reply::Bulk(c), Reply::Array(items)) = (&r[0], &r[1]) else {
            panic!()
        };
        assert!(items.len() <= 14);
        for kv in items.chunks(2) {
            assert!(seen.insert(format!("{:?}", kv[0])));
        }
        cursor = String::from_utf8(c.to_vec()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 300);
}

#[test]
fn conversion_at_the_thresholds() {
    let mut s = Shard::new(0);
    let long = "x".repeat(64);
    run(&mut s, &["HSET", "h", "f", &long], NOW);
    assert_eq!(
        run(&mut s, &["OBJECT", "ENCODING", "h"], NOW),
        bulk("listpack")
    );
    let longer = "x".repeat(65);
    run(&mut s, &["HSET", "h", "g", &longer], NOW);
    assert_eq!(
        run(&mut s, &["OBJECT", "ENCODING", "h"], NOW),
        bulk("hashtable")
    );
    for i in 0..128 {
        run(&mut s, &["HSET", "n", &i.to_string(), "v"], NOW);
    }
    assert_eq!(
        run(&mut s, &["OBJECT", "ENCODING", "n"], NOW),
        bulk("listpack")
    );
    run(&mut s, &["HSET", "n", "one more", "v"], NOW);
    assert_eq!(
        run(&mut s, &["OBJECT", "ENCODING", "n"], NOW),
        bulk("hashtable")
    );
    assert_eq!(run(&mut s, &["HLEN", "n"], NOW), Reply::Int(129));
    // RENAME and COPY keep the hash and its encoding.
    assert_eq!(run(&mut s, &["RENAME", "n", "m"], NOW), Reply::Ok);
    assert_eq!(
        run(&mut s, &["OBJECT", "ENCODING", "m"], NOW),
        bulk("hashtable")
    );
    assert_eq!(run(&mut s, &["COPY", "h", "h2"], NOW), Reply::Int(1));
    assert_eq!(run(&mut s, &["HGET", "h2", "g"], NOW), bulk(&longer));
    let Reply::Array(r) = run(&mut s, &["SCAN", "0", "TYPE", "hash", "COUNT", "100"], NOW) else {
        panic!()
    };
    let Reply::Array(keys) = &r[1] else { panic!() };
    assert_eq!(keys.len(), 3);
}

quickcheck::quickcheck! {
    /// Any arguments to any hash command get a reply, never a panic.
    fn hash_commands_never_panic(cmds: Vec<(u8, Vec<(u8, String)>)>) -> bool {
        const NAMES: [&str; 16] = [
            "HSET", "HMSET", "HSETNX", "HGET", "HMGET", "HGETALL", "HDEL", "HEXISTS", "HLEN",
            "HSTRLEN", "HKEYS", "HVALS", "HINCRBY", "HINCRBYFLOAT", "HRANDFIELD", "HSCAN",
        ];
        const WORDS: [&str; 12] = [
            "-5", "3", "0", "1.5", "-9223372036854775808", "9223372036854775807", "WITHVALUES",
            "MATCH", "*", "COUNT", "f", "",
        ];
        let mut s = Shard::new(0);
        for (n, args) in cmds {
            let name = NAMES[n as usize % NAMES.len()];
            let mut words = vec![name, if n % 3 == 0 { "s" } else { "h" }];
            for (pick, text) in args.iter().take(7) {
                words.push(if pick % 2 == 0 { WORDS[*pick as usize % WORDS.len()] } else { text });
            }
            if n % 7 == 0 {
                run(&mut s, &["SET", "s", "v"], NOW);
            }
            let spec = crate::command::COMMANDS.iter().find(|c| c.name.eq_ignore_ascii_case(name));
            if spec.is_some_and(|c| c.arity_ok(words.len())) {
                run(&mut s, &words, NOW);
            }
        }
        true
    }
}
