use super::*;
use crate::commands::{bulk, err, run};
use quickcheck::quickcheck;

fn d(x: f64) -> Reply {
    Reply::Double(x)
}

fn arr(items: &[&str]) -> Reply {
    Reply::Array(items.iter().map(|s| bulk(s)).collect())
}

#[test]
fn zadd_flags_and_errors_match_redis() {
    let mut s = Shard::new(0);
    assert_eq!(
        run(&mut s, &["zadd", "z", "1", "a", "2", "b"], 0),
        Reply::Int(2)
    );
    assert_eq!(
        run(&mut s, &["zadd", "z", "ch", "5", "a", "3", "c"], 0),
        Reply::Int(2)
    );
    assert_eq!(
        run(&mut s, &["zadd", "z", "nx", "9", "a"], 0),
        Reply::Int(0)
    );
    assert_eq!(run(&mut s, &["zscore", "z", "a"], 0), d(5.0));
    assert_eq!(
        run(&mut s, &["zadd", "z", "xx", "9", "new"], 0),
        Reply::Int(0)
    );
    assert_eq!(
        run(&mut s, &["zadd", "z", "gt", "ch", "1", "a"], 0),
        Reply::Int(0)
    );
    assert_eq!(
        run(&mut s, &["zadd", "z", "lt", "ch", "1", "a"], 0),
        Reply::Int(1)
    );
    assert_eq!(run(&mut s, &["zadd", "z", "incr", "2.5", "a"], 0), d(3.5));
    assert_eq!(
        run(&mut s, &["zadd", "z", "xx", "incr", "1", "q"], 0),
        Reply::Nil
    );
    assert_eq!(run(&mut s, &["zincrby", "z", "-1", "b"], 0), d(1.0));
    assert_eq!(
        run(&mut s, &["zadd", "z", "nan", "x"], 0),
        errors::NOT_FLOAT
    );
    assert_eq!(
        run(&mut s, &["zadd", "z", "1"], 0),
        errors::wrong_arity("zadd")
    );
    assert_eq!(
        run(&mut s, &["zadd", "z", "1", "a", "2"], 0),
        errors::SYNTAX
    );
    assert_eq!(run(&mut s, &["zadd", "z", "nx", "1"], 0), errors::SYNTAX);
    assert_eq!(
        run(&mut s, &["zadd", "z", "nx", "xx", "1", "a"], 0),
        err("ERR XX and NX options at the same time are not compatible")
    );
    assert_eq!(
        run(&mut s, &["zadd", "z", "gt", "lt", "1", "a"], 0),
        err("ERR GT, LT, and/or NX options at the same time are not compatible")
    );
    assert_eq!(
        run(&mut s, &["zadd", "z", "incr", "1", "a", "2", "b"], 0),
        err("ERR INCR option supports a single increment-element pair")
    );
    run(&mut s, &["zadd", "z", "inf", "i"], 0);
    assert_eq!(
        run(&mut s, &["zincrby", "z", "-inf", "i"], 0),
        err("ERR resulting score is not a number (NaN)")
    );
    run(&mut s, &["set", "str", "x"], 0);
    assert_eq!(
        run(&mut s, &["zadd", "str", "1", "a"], 0),
        errors::WRONGTYPE
    );
    assert_eq!(run(&mut s, &["zcard", "str"], 0), errors::WRONGTYPE);
    assert_eq!(run(&mut s, &["zcard", "z"], 0), Reply::Int(4));
}

#[test]
fn ranges_by_rank_score_and_lex() {
    let mut s = Shard::new(0);
    run(
        &mut s,
        &["zadd", "z", "1", "a", "2", "b", "3", "c", "4", "d"],
        0,
    );
    assert_eq!(
        run(&mut s, &["zrange", "z", "0", "-1"], 0),
        arr(&["a", "b", "c", "d"])
    );
    assert_eq!(
        run(&mut s, &["zrange", "z", "-2", "100", "rev"], 0),
        arr(&["b", "a"])
    );
    assert_eq!(run(&mut s, &["zrevrange", "z", "0", "0"], 0), arr(&["d"]));
    assert_eq!(
        run(&mut s, &["zrangebyscore", "z", "(1", "3", "withscores"], 0),
        Reply::Pairs(vec![(bulk("b"), d(2.0)), (bulk("c"), d(3.0))])
    );
    assert_eq!(
        run(
            &mut s,
            &["zrange", "z", "+inf", "-inf", "byscore", "rev", "limit", "1", "2"],
            0
        ),
        arr(&["c", "b"])
    );
    assert_eq!(
        run(&mut s, &["zrevrangebyscore", "z", "3", "-inf"], 0),
        arr(&["c", "b", "a"])
    );
    assert_eq!(
        run(&mut s, &["zcount", "z", "-inf", "(3"], 0),
        Reply::Int(2)
    );
    assert_eq!(
        run(&mut s, &["zcount", "z", "x", "3"], 0),
        err("ERR min or max is not a float")
    );
    run(
        &mut s,
        &["zadd", "l", "0", "a", "0", "b", "0", "c", "0", "d"],
        0,
    );
    assert_eq!(
        run(&mut s, &["zrangebylex", "l", "(a", "[c"], 0),
        arr(&["b", "c"])
    );
    assert_eq!(
        run(
            &mut s,
            &["zrevrangebylex", "l", "+", "-", "limit", "0", "1"],
            0
        ),
        arr(&["d"])
    );
    assert_eq!(run(&mut s, &["zlexcount", "l", "-", "+"], 0), Reply::Int(4));
    assert_eq!(
        run(&mut s, &["zlexcount", "l", "a", "+"], 0),
        err("ERR min or max not valid string range item")
    );
    assert_eq!(
        run(&mut s, &["zrange", "z", "0", "1", "limit", "0", "1"], 0),
        err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    );
    assert_eq!(
        run(&mut s, &["zrange", "l", "-", "+", "bylex", "withscores"], 0),
        err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    );
    assert_eq!(run(&mut s, &["zrank", "z", "c"], 0), Reply::Int(2));
    assert_eq!(run(&mut s, &["zrevrank", "z", "c"], 0), Reply::Int(1));
    assert_eq!(run(&mut s, &["zrank", "z", "nope"], 0), Reply::Nil);
    assert_eq!(
        run(&mut s, &["zmscore", "z", "a", "x"], 0),
        Reply::Array(vec![d(1.0), Reply::Nil])
    );
}

#[test]
fn removals_pops_and_store() {
    let mut s = Shard::new(0);
    run(
        &mut s,
        &[
            "zadd", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e",
        ],
        0,
    );
    assert_eq!(
        run(&mut s, &["zrangestore", "dst", "z", "1", "3"], 0),
        Reply::Int(3)
    );
    assert_eq!(
        run(&mut s, &["zrange", "dst", "0", "-1"], 0),
        arr(&["b", "c", "d"])
    );
    assert_eq!(
        run(&mut s, &["zrangestore", "dst", "z", "10", "20"], 0),
        Reply::Int(0)
    );
    assert_eq!(run(&mut s, &["exists", "dst"], 0), Reply::Int(0));
    assert_eq!(
        run(&mut s, &["zpopmin", "z"], 0),
        Reply::Array(vec![bulk("a"), d(1.0)])
    );
    assert_eq!(
        run(&mut s, &["zpopmax", "z", "2"], 0),
        Reply::Pairs(vec![(bulk("e"), d(5.0)), (bulk("d"), d(4.0))])
    );
    assert_eq!(
        run(&mut s, &["zpopmin", "z", "-1"], 0),
        err("ERR value is out of range, must be positive")
    );
    assert_eq!(
        run(&mut s, &["zremrangebyscore", "z", "-inf", "(3"], 0),
        Reply::Int(1)
    );
    assert_eq!(
        run(&mut s, &["zremrangebyrank", "z", "0", "-1"], 0),
        Reply::Int(1)
    );
    assert_eq!(run(&mut s, &["exists", "z"], 0), Reply::Int(0));
    run(&mut s, &["zadd", "l", "0", "a", "0", "b", "0", "c"], 0);
    assert_eq!(
        run(&mut s, &["zremrangebylex", "l", "[b", "+"], 0),
        Reply::Int(2)
    );
    assert_eq!(
        run(&mut s, &["zrem", "l", "a", "a", "zz"], 0),
        Reply::Int(1)
    );
    assert_eq!(run(&mut s, &["type", "l"], 0), Reply::simple("none"));
}

#[test]
fn large_sets_convert_and_answer_alike() {
    let mut s = Shard::new(0);
    for i in 0..300 {
        let (sc, m) = (i.to_string(), format!("m{i:04}"));
        run(&mut s, &["zadd", "z", &sc, &m], 0);
    }
    assert_eq!(
        run(&mut s, &["object", "encoding", "z"], 0),
        bulk("skiplist")
    );
    assert_eq!(run(&mut s, &["zcard", "z"], 0), Reply::Int(300));
    assert_eq!(run(&mut s, &["zrank", "z", "m0250"], 0), Reply::Int(250));
    assert_eq!(
        run(&mut s, &["zrange", "z", "-2", "-1"], 0),
        arr(&["m0298", "m0299"])
    );
    assert_eq!(
        run(&mut s, &["zcount", "z", "(100", "200"], 0),
        Reply::Int(100)
    );
    let mut cursor = "0".to_string();
    let mut seen = std::collections::HashSet::new();
    loop {
        let Reply::Array(v) = run(&mut s, &["zscan", "z", &cursor, "count", "50"], 0) else {
            panic!()
        };
        let Reply::Bulk(c) = &v[0] else { panic!() };
        let Reply::Array(items) = &v[1] else { panic!() };
        for pair in items.chunks(2) {
            if let Reply::Bulk(m) = &pair[0] {
                seen.insert(m.clone());
            }
        }
        cursor = String::from_utf8(c.to_vec()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 300);
    let Reply::Array(v) = run(&mut s, &["zrandmember", "z", "-5"], 0) else {
        panic!()
    };
    assert_eq!(v.len(), 5);
    let Reply::Array(v) = run(&mut s, &["zrandmember", "z", "10"], 0) else {
        panic!()
    };
    assert_eq!(v.len(), 10);
    assert_eq!(
        run(&mut s, &["zrandmember", "z", "-9999999999"], 0),
        err("ERR value is out of range")
    );
}

quickcheck! {
    /// Arguments of any shape get a reply, never a panic.
    fn any_range_arguments_never_panic(words: Vec<u8>, cmd: u8) -> bool {
        let pool = ["(1", "-inf", "+inf", "[a", "(a", "-", "+", "0", "-1", "1e400", "nan", "x",
            "LIMIT", "REV", "BYSCORE", "BYLEX", "WITHSCORES", "9223372036854775807", "-9223372036854775808"];
        let cmds = ["zrange", "zrangebyscore", "zrevrangebylex", "zcount", "zlexcount",
            "zremrangebyrank", "zrangestore", "zadd", "zpopmin", "zrandmember", "zscan"];
        let mut s = Shard::new(0);
        run(&mut s, &["zadd", "src", "1", "a", "2", "b", "2", "c"], 0);
        let mut args = vec![cmds[cmd as usize % cmds.len()], "src"];
        args.extend(words.iter().take(8).map(|w| pool[*w as usize % pool.len()]));
        let spec = crate::command::COMMANDS.iter().find(|c| c.name == args[0]).unwrap();
        if spec.arity_ok(args.len()) {
            run(&mut s, &args, 0);
        }
        true
    }

    /// Any arguments to any sorted-set command (the multi-key ones with their numkeys,
    /// WEIGHTS and AGGREGATE too), in any order and on any type, get a reply, never a
    /// panic, and never a reply longer than the bound on random counts.
    fn zset_commands_never_panic(cmds: Vec<(u8, Vec<(u8, String)>)>) -> bool {
        const NAMES: [&str; 35] = [
            "ZADD", "ZINCRBY", "ZREM", "ZCARD", "ZCOUNT", "ZLEXCOUNT", "ZSCORE", "ZMSCORE",
            "ZRANK", "ZREVRANK", "ZRANGE", "ZREVRANGE", "ZRANGEBYSCORE", "ZREVRANGEBYSCORE",
            "ZRANGEBYLEX", "ZREVRANGEBYLEX", "ZRANGESTORE", "ZREMRANGEBYRANK",
            "ZREMRANGEBYSCORE", "ZREMRANGEBYLEX", "ZPOPMIN", "ZPOPMAX", "ZMPOP",
            "ZRANDMEMBER", "ZSCAN", "ZUNION", "ZINTER", "ZDIFF", "ZUNIONSTORE", "ZINTERSTORE",
            "ZDIFFSTORE", "ZINTERCARD", "TYPE", "OBJECT", "DUMP",
        ];
        const WORDS: [&str; 34] = [
            "-5", "3", "0", "1", "2", "-1", "1.5", "nan", "inf", "-inf", "(1", "[a", "-", "+",
            "9223372036854775807", "-9223372036854775808", "1e400", "NX", "XX", "GT", "LT", "CH",
            "INCR", "WEIGHTS", "AGGREGATE", "SUM", "MIN", "MAX", "WITHSCORES", "LIMIT", "COUNT",
            "z", "str", "",
        ];
        let mut s = Shard::new(0);
        run(&mut s, &["ZADD", "z", "1", "a", "2", "b", "3", "c"], 0);
        for (n, args) in cmds {
            let name = NAMES[n as usize % NAMES.len()];
            let mut words = vec![name, if n % 3 == 0 { "str" } else { "z" }];
            for (pick, text) in args.iter().take(9) {
                words.push(if pick % 4 != 0 { WORDS[*pick as usize % WORDS.len()] } else { text });
            }
            if n % 7 == 0 {
                run(&mut s, &["SET", "str", "v"], 0);
            }
            let spec = crate::command::lookup(name.as_bytes());
            if spec.is_some_and(|c| c.arity_ok(words.len())) {
                let r = run(&mut s, &words, 0);
                if let Reply::Array(v) = &r {
                    if v.len() as u64 > super::MAX_RANDOM_COUNT { return false; }
                }
            }
        }
        true
    }
}

/// A forward range from non-negative ranks (walked without counting the set) selects what
/// the same range written with negative ranks (counted) does, in both forms.
#[test]
fn forward_rank_ranges_agree_with_counted_ones() {
    for n in [0usize, 1, 5, 128, 300] {
        let mut s = Shard::new(0);
        for i in 0..n {
            let (score, member) = ((i % 7).to_string(), format!("m{i}"));
            run(&mut s, &["zadd", "z", &score, &member], 0);
        }
        let len = n as i64;
        for start in (0..len + 3).step_by(3) {
            for stop in [0, 1, 2, 9, len - 1, len, len + 5, i64::MAX] {
                if stop < 0 {
                    continue;
                }
                let (a, b) = (start.to_string(), stop.to_string());
                let fast = run(&mut s, &["zrange", "z", &a, &b], 0);
                let counted = if len == 0 || start >= len {
                    arr(&[])
                } else {
                    let (a, b) = (
                        (start - len).to_string(),
                        (stop.min(len - 1) - len).to_string(),
                    );
                    run(&mut s, &["zrange", "z", &a, &b], 0)
                };
                assert_eq!(fast, counted, "n {n}, zrange z {start} {stop}");
            }
        }
    }
}

/// A single-pair ZADD (no tracking of the call's own pairs) and a ZADD that repeats a
/// member within the call (replies checked on redis-server 7.0).
#[test]
fn zadd_single_and_repeated_pairs() {
    let mut s = Shard::new(0);
    assert_eq!(run(&mut s, &["zadd", "z", "1", "a"], 0), Reply::Int(1));
    assert_eq!(run(&mut s, &["zadd", "z", "1", "a"], 0), Reply::Int(0));
    assert_eq!(
        run(&mut s, &["zadd", "z", "ch", "2", "a"], 0),
        Reply::Int(1)
    );
    assert_eq!(
        run(
            &mut s,
            &["zadd", "z", "ch", "3", "b", "4", "b", "4", "a"],
            0
        ),
        Reply::Int(3)
    );
    assert_eq!(run(&mut s, &["zscore", "z", "b"], 0), d(4.0));
    assert_eq!(run(&mut s, &["zadd", "z", "incr", "1", "b"], 0), d(5.0));
}
