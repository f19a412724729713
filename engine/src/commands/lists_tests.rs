use std::collections::VecDeque;

use quickcheck::{quickcheck, Arbitrary, Gen};

use crate::commands::run;
use crate::reply::Reply;
use crate::shard::{Collector, Shard};

const NOW: u64 = 1_700_000_000_000;

fn bulk(s: &str) -> Reply {
    Reply::bulk(s)
}

fn arr(items: &[&str]) -> Reply {
    Reply::Array(items.iter().map(|s| bulk(s)).collect())
}

#[test]
fn push_pop_and_reads() {
    let mut s = Shard::new(0);
    assert_eq!(
        run(&mut s, &["RPUSH", "l", "a", "b", "c"], NOW),
        Reply::Int(3)
    );
    assert_eq!(run(&mut s, &["LPUSH", "l", "x", "y"], NOW), Reply::Int(5));
    assert_eq!(
        run(&mut s, &["LRANGE", "l", "0", "-1"], NOW),
        arr(&["y", "x", "a", "b", "c"])
    );
    assert_eq!(
        run(&mut s, &["LRANGE", "l", "-2", "100"], NOW),
        arr(&["b", "c"])
    );
    assert_eq!(run(&mut s, &["LRANGE", "l", "3", "1"], NOW), arr(&[]));
    assert_eq!(run(&mut s, &["LINDEX", "l", "-1"], NOW), bulk("c"));
    assert_eq!(run(&mut s, &["LINDEX", "l", "5"], NOW), Reply::Nil);
    assert_eq!(run(&mut s, &["LLEN", "l"], NOW), Reply::Int(5));
    assert_eq!(run(&mut s, &["LPOP", "l"], NOW), bulk("y"));
    assert_eq!(run(&mut s, &["RPOP", "l", "2"], NOW), arr(&["c", "b"]));
    assert_eq!(run(&mut s, &["LPOP", "l", "0"], NOW), arr(&[]));
    assert_eq!(run(&mut s, &["LPOP", "nx", "0"], NOW), Reply::NilArray);
    assert_eq!(run(&mut s, &["LPOP", "nx"], NOW), Reply::Nil);
    assert_eq!(
        run(&mut s, &["LPOP", "l", "-1"], NOW),
        Reply::err("ERR value is out of range, must be positive")
    );
    assert_eq!(
        run(&mut s, &["LPOP", "l", "1", "2"], NOW),
        Reply::err("ERR wrong number of arguments for 'lpop' command")
    );
    assert_eq!(
        run(&mut s, &["RPOP", "l", "9223372036854775807"], NOW),
        arr(&["a", "x"])
    );
    assert_eq!(run(&mut s, &["EXISTS", "l"], NOW), Reply::Int(0));
    assert_eq!(run(&mut s, &["LPUSHX", "l", "a"], NOW), Reply::Int(0));
    assert_eq!(run(&mut s, &["RPUSH", "l", "a"], NOW), Reply::Int(1));
    assert_eq!(run(&mut s, &["RPUSHX", "l", "b", "c"], NOW), Reply::Int(3));
}

#[test]
fn wrong_types_and_bad_arguments() {
    let mut s = Shard::new(0);
    run(&mut s, &["SET", "str", "v"], NOW);
    run(&mut s, &["RPUSH", "l", "a", "b", "a"], NOW);
    let wrongtype = crate::reply::errors::WRONGTYPE;
    for cmd in [
        &["LPUSH", "str", "a"][..],
        &["RPUSHX", "str", "a"],
        &["LPOP", "str"],
        &["LLEN", "str"],
        &["LINDEX", "str", "0"],
        &["LRANGE", "str", "0", "1"],
        &["LSET", "str", "0", "x"],
        &["LINSERT", "str", "BEFORE", "a", "b"],
        &["LREM", "str", "0", "a"],
        &["LTRIM", "str", "0", "1"],
        &["LPOS", "str", "a"],
        &["LMOVE", "str", "l", "LEFT", "LEFT"],
        &["LMOVE", "l", "str", "LEFT", "LEFT"],
        &["RPOPLPUSH", "l", "str"],
        &["LMPOP", "2", "nx", "str", "LEFT"],
    ] {
        assert_eq!(run(&mut s, cmd, NOW), wrongtype, "{cmd:?}");
    }
    assert_eq!(run(&mut s, &["GET", "l"], NOW), wrongtype);
    assert_eq!(run(&mut s, &["HGET", "l", "f"], NOW), wrongtype);
    assert_eq!(run(&mut s, &["LLEN", "l"], NOW), Reply::Int(3), "untouched");
    let not_int = crate::reply::errors::NOT_INTEGER;
    assert_eq!(run(&mut s, &["LINDEX", "l", "x"], NOW), not_int);
    assert_eq!(run(&mut s, &["LRANGE", "l", "0", "x"], NOW), not_int);
    assert_eq!(run(&mut s, &["LTRIM", "l", "x", "1"], NOW), not_int);
    assert_eq!(run(&mut s, &["LREM", "l", "x", "a"], NOW), not_int);
    assert_eq!(
        run(&mut s, &["LSET", "l", "9", "z"], NOW),
        Reply::err("ERR index out of range")
    );
    assert_eq!(
        run(&mut s, &["LSET", "nx", "0", "z"], NOW),
        Reply::err("ERR no such key")
    );
    let syntax = crate::reply::errors::SYNTAX;
    assert_eq!(
        run(&mut s, &["LINSERT", "l", "MIDDLE", "a", "z"], NOW),
        syntax
    );
    assert_eq!(run(&mut s, &["LMOVE", "l", "m", "UP", "LEFT"], NOW), syntax);
    assert_eq!(run(&mut s, &["LPOS", "l", "a", "RANK"], NOW), syntax);
    assert_eq!(run(&mut s, &["LPOS", "l", "a", "FOO", "x"], NOW), syntax);
    assert_eq!(
        run(&mut s, &["LPOS", "l", "a", "RANK", "0"], NOW),
        Reply::err("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list")
    );
    assert_eq!(
        run(&mut s, &["LPOS", "l", "a", "COUNT", "-1"], NOW),
        Reply::err("ERR COUNT can't be negative")
    );
    assert_eq!(
        run(&mut s, &["LPOS", "l", "a", "MAXLEN", "-1"], NOW),
        Reply::err("ERR MAXLEN can't be negative")
    );
    let numkeys = Reply::err("ERR numkeys should be greater than 0");
    assert_eq!(run(&mut s, &["LMPOP", "0", "l", "LEFT"], NOW), numkeys);
    assert_eq!(run(&mut s, &["LMPOP", "x", "l", "LEFT"], NOW), numkeys);
    assert_eq!(run(&mut s, &["LMPOP", "2", "l", "LEFT"], NOW), syntax);
    assert_eq!(
        run(&mut s, &["LMPOP", "99999999999999999", "l", "LEFT"], NOW),
        syntax
    );
    assert_eq!(run(&mut s, &["LMPOP", "1", "l", "MIDDLE"], NOW), syntax);
    assert_eq!(
        run(&mut s, &["LMPOP", "1", "l", "LEFT", "COUNT"], NOW),
        syntax
    );
    assert_eq!(
        run(
            &mut s,
            &["LMPOP", "1", "l", "LEFT", "COUNT", "1", "COUNT", "1"],
            NOW
        ),
        syntax
    );
    assert_eq!(
        run(&mut s, &["LMPOP", "1", "l", "LEFT", "COUNT", "0"], NOW),
        Reply::err("ERR count should be greater than 0")
    );
    assert_eq!(run(&mut s, &["LLEN", "l"], NOW), Reply::Int(3), "untouched");
}

#[test]
fn insert_remove_trim_pos_move_mpop() {
    let mut s = Shard::new(0);
    run(&mut s, &["RPUSH", "l", "a", "b", "a", "c", "a"], NOW);
    assert_eq!(run(&mut s, &["LPOS", "l", "a"], NOW), Reply::Int(0));
    assert_eq!(
        run(&mut s, &["LPOS", "l", "a", "RANK", "2"], NOW),
        Reply::Int(2)
    );
    assert_eq!(
        run(&mut s, &["LPOS", "l", "a", "RANK", "-1"], NOW),
        Reply::Int(4)
    );
    assert_eq!(
        run(&mut s, &["LPOS", "l", "a", "COUNT", "0"], NOW),
        Reply::Array(vec![Reply::Int(0), Reply::Int(2), Reply::Int(4)])
    );
    assert_eq!(
        run(&mut s, &["LPOS", "l", "a", "COUNT", "2", "RANK", "-1"], NOW),
        Reply::Array(vec![Reply::Int(4), Reply::Int(2)])
    );
    assert_eq!(
        run(
            &mut s,
            &["LPOS", "l", "a", "COUNT", "0", "MAXLEN", "2"],
            NOW
        ),
        Reply::Array(vec![Reply::Int(0)])
    );
    assert_eq!(run(&mut s, &["LPOS", "l", "z"], NOW), Reply::Nil);
    assert_eq!(
        run(&mut s, &["LPOS", "nx", "z", "COUNT", "1"], NOW),
        arr(&[])
    );
    assert_eq!(
        run(&mut s, &["LINSERT", "l", "AFTER", "c", "d"], NOW),
        Reply::Int(6)
    );
    assert_eq!(
        run(&mut s, &["LINSERT", "l", "before", "a", "s"], NOW),
        Reply::Int(7)
    );
    assert_eq!(
        run(&mut s, &["LINSERT", "l", "before", "zz", "s"], NOW),
        Reply::Int(-1)
    );
    assert_eq!(
        run(&mut s, &["LINSERT", "nx", "before", "a", "s"], NOW),
        Reply::Int(0)
    );
    assert_eq!(
        run(&mut s, &["LRANGE", "l", "0", "-1"], NOW),
        arr(&["s", "a", "b", "a", "c", "d", "a"])
    );
    assert_eq!(run(&mut s, &["LREM", "l", "-1", "a"], NOW), Reply::Int(1));
    assert_eq!(run(&mut s, &["LREM", "l", "0", "a"], NOW), Reply::Int(2));
    assert_eq!(
        run(&mut s, &["LRANGE", "l", "0", "-1"], NOW),
        arr(&["s", "b", "c", "d"])
    );
    assert_eq!(run(&mut s, &["LSET", "l", "-1", "D"], NOW), Reply::Ok);
    assert_eq!(run(&mut s, &["LTRIM", "l", "1", "-2"], NOW), Reply::Ok);
    assert_eq!(
        run(&mut s, &["LRANGE", "l", "0", "-1"], NOW),
        arr(&["b", "c"])
    );
    assert_eq!(
        run(&mut s, &["LMOVE", "l", "m", "LEFT", "RIGHT"], NOW),
        bulk("b")
    );
    assert_eq!(run(&mut s, &["RPOPLPUSH", "l", "m"], NOW), bulk("c"));
    assert_eq!(run(&mut s, &["EXISTS", "l"], NOW), Reply::Int(0));
    assert_eq!(
        run(&mut s, &["LRANGE", "m", "0", "-1"], NOW),
        arr(&["c", "b"])
    );
    assert_eq!(run(&mut s, &["RPOPLPUSH", "nx", "m"], NOW), Reply::Nil);
    assert_eq!(
        run(&mut s, &["LMOVE", "m", "m", "LEFT", "RIGHT"], NOW),
        bulk("c")
    );
    assert_eq!(
        run(&mut s, &["LRANGE", "m", "0", "-1"], NOW),
        arr(&["b", "c"])
    );
    run(&mut s, &["RPUSH", "one", "x"], NOW);
    run(&mut s, &["EXPIRE", "one", "100"], NOW);
    assert_eq!(
        run(&mut s, &["LMOVE", "one", "one", "LEFT", "RIGHT"], NOW),
        bulk("x")
    );
    assert_eq!(
        run(&mut s, &["TTL", "one"], NOW),
        Reply::Int(100),
        "rotation keeps the TTL"
    );
    assert_eq!(
        run(
            &mut s,
            &["LMPOP", "3", "nx", "m", "one", "RIGHT", "COUNT", "5"],
            NOW
        ),
        Reply::Array(vec![bulk("m"), arr(&["c", "b"])])
    );
    assert_eq!(
        run(&mut s, &["LMPOP", "2", "nx", "m", "LEFT"], NOW),
        Reply::NilArray
    );
    assert_eq!(run(&mut s, &["LTRIM", "one", "5", "10"], NOW), Reply::Ok);
    assert_eq!(
        run(&mut s, &["EXISTS", "one"], NOW),
        Reply::Int(0),
        "an empty range deletes"
    );
}

#[test]
fn lists_in_the_keyspace_commands() {
    let mut s = Shard::new(0);
    run(&mut s, &["RPUSH", "l", "a", "b"], NOW);
    run(&mut s, &["SET", "str", "v"], NOW);
    assert_eq!(run(&mut s, &["TYPE", "l"], NOW), Reply::simple("list"));
    assert_eq!(
        run(&mut s, &["OBJECT", "ENCODING", "l"], NOW),
        bulk("quicklist")
    );
    assert!(matches!(run(&mut s, &["MEMORY", "USAGE", "l"], NOW), Reply::Int(n) if n > 0));
    assert_eq!(
        run(&mut s, &["SCAN", "0", "TYPE", "list"], NOW),
        Reply::Array(vec![bulk("0"), arr(&["l"])])
    );
    assert_eq!(run(&mut s, &["COPY", "l", "l2"], NOW), Reply::Int(1));
    assert_eq!(run(&mut s, &["RENAME", "l2", "l3"], NOW), Reply::Ok);
    assert_eq!(
        run(&mut s, &["LRANGE", "l3", "0", "-1"], NOW),
        arr(&["a", "b"])
    );
    assert_eq!(run(&mut s, &["PEXPIRE", "l3", "10"], NOW), Reply::Int(1));
    assert_eq!(
        run(&mut s, &["LLEN", "l3"], NOW + 10),
        Reply::Int(0),
        "expired"
    );
}

#[test]
fn huge_counts_allocate_only_what_exists() {
    let mut s = Shard::new(0);
    run(&mut s, &["RPUSH", "l", "a"], NOW);
    assert_eq!(
        run(
            &mut s,
            &["LRANGE", "l", "-9223372036854775808", "9223372036854775807"],
            NOW
        ),
        arr(&["a"])
    );
    assert_eq!(
        run(
            &mut s,
            &[
                "LPOS",
                "l",
                "a",
                "RANK",
                "-9223372036854775807",
                "COUNT",
                "9223372036854775807",
                "MAXLEN",
                "9223372036854775807"
            ],
            NOW
        ),
        arr(&[])
    );
    assert_eq!(
        run(&mut s, &["LREM", "l", "-9223372036854775808", "b"], NOW),
        Reply::Int(0)
    );
    assert_eq!(
        run(
            &mut s,
            &["LTRIM", "l", "-9223372036854775808", "9223372036854775807"],
            NOW
        ),
        Reply::Ok
    );
    assert_eq!(
        run(&mut s, &["LINDEX", "l", "-9223372036854775808"], NOW),
        Reply::Nil
    );
    assert_eq!(
        run(
            &mut s,
            &["LMPOP", "1", "l", "LEFT", "COUNT", "9223372036854775807"],
            NOW
        ),
        Reply::Array(vec![bulk("l"), arr(&["a"])])
    );
}

/// One operation of the model test.
#[derive(Debug, Clone)]
enum Op {
    Push {
        left: bool,
        items: Vec<u8>,
        long: bool,
    },
    Pop {
        left: bool,
        count: Option<u8>,
    },
    Index(i8),
    Set(i8, u8),
    Range(i8, i8),
    Trim(i8, i8),
    Rem(i8, u8),
    Insert {
        after: bool,
        pivot: u8,
        value: u8,
    },
    Pos(u8, i8),
    Rotate {
        from: bool,
        to: bool,
    },
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Op {
        let small = |g: &mut Gen| u8::arbitrary(g) % 6;
        match u8::arbitrary(g) % 14 {
            0..=4 => Op::Push {
                left: bool::arbitrary(g),
                items: (0..1 + u8::arbitrary(g) % 8).map(|_| small(g)).collect(),
                long: u8::arbitrary(g) % 4 == 0,
            },
            5 | 6 => Op::Pop {
                left: bool::arbitrary(g),
                count: Option::<u8>::arbitrary(g).map(|c| c % 40),
            },
            7 => Op::Index(i8::arbitrary(g)),
            8 => Op::Set(i8::arbitrary(g), small(g)),
            9 => Op::Range(i8::arbitrary(g), i8::arbitrary(g)),
            10 => Op::Trim(i8::arbitrary(g) % 4, -1 - (i8::arbitrary(g) % 4).abs()),
            11 => Op::Rem(i8::arbitrary(g) % 3, small(g)),
            12 => Op::Insert {
                after: bool::arbitrary(g),
                pivot: small(g),
                value: small(g),
            },
            _ => match u8::arbitrary(g) % 2 {
                0 => Op::Pos(small(g), i8::arbitrary(g) % 3),
                _ => Op::Rotate {
                    from: bool::arbitrary(g),
                    to: bool::arbitrary(g),
                },
            },
        }
    }
}

/// An element: short, or long enough that a few of them pass 8 KiB (the packed limit).
fn element(v: u8, long: bool) -> String {
    if long {
        format!("{v}{}", "x".repeat(900))
    } else {
        format!("e{v}")
    }
}

fn norm(i: i64, len: usize) -> Option<usize> {
    let i = if i < 0 { len as i64 + i } else { i };
    (0..len as i64).contains(&i).then_some(i as usize)
}

fn clamp(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let l = len as i64;
    let start = if start < 0 { (l + start).max(0) } else { start };
    let stop = if stop < 0 { l + stop } else { stop };
    (start <= stop && start < l).then(|| (start as usize, stop.min(l - 1) as usize))
}

/// Runs `op` on the model and says what Redis would answer.
fn model(m: &mut VecDeque<String>, op: &Op) -> (Vec<String>, Reply) {
    let b = |s: &String| Reply::bulk(s);
    match op {
        Op::Push { left, items, long } => {
            let mut w = vec![
                if *left { "LPUSH" } else { "RPUSH" }.to_string(),
                "l".into(),
            ];
            for &v in items {
                let e = element(v, *long);
                if *left {
                    m.push_front(e.clone());
                } else {
                    m.push_back(e.clone());
                }
                w.push(e);
            }
            (w, Reply::Int(m.len() as i64))
        }
        Op::Pop { left, count } => {
            let mut w = vec![if *left { "LPOP" } else { "RPOP" }.to_string(), "l".into()];
            let take = |m: &mut VecDeque<String>| if *left { m.pop_front() } else { m.pop_back() };
            let reply = match count {
                None => take(m).as_ref().map_or(Reply::Nil, b),
                Some(c) => {
                    w.push(c.to_string());
                    if m.is_empty() {
                        Reply::NilArray
                    } else {
                        Reply::Array((0..*c).filter_map(|_| take(m)).map(|e| b(&e)).collect())
                    }
                }
            };
            (w, reply)
        }
        Op::Index(i) => (
            vec!["LINDEX".into(), "l".into(), i.to_string()],
            norm(*i as i64, m.len()).map_or(Reply::Nil, |i| b(&m[i])),
        ),
        Op::Set(i, v) => {
            let w = vec!["LSET".into(), "l".into(), i.to_string(), element(*v, false)];
            let reply = if m.is_empty() {
                Reply::err("ERR no such key")
            } else {
                match norm(*i as i64, m.len()) {
                    None => Reply::err("ERR index out of range"),
                    Some(i) => {
                        m[i] = element(*v, false);
                        Reply::Ok
                    }
                }
            };
            (w, reply)
        }
        Op::Range(x, y) => (
            vec!["LRANGE".into(), "l".into(), x.to_string(), y.to_string()],
            Reply::Array(
                clamp(*x as i64, *y as i64, m.len())
                    .map_or(Vec::new(), |(f, t)| m.range(f..=t).map(b).collect()),
            ),
        ),
        Op::Trim(x, y) => {
            match clamp(*x as i64, *y as i64, m.len()) {
                None => m.clear(),
                Some((f, t)) => {
                    m.truncate(t + 1);
                    m.drain(..f);
                }
            }
            (
                vec!["LTRIM".into(), "l".into(), x.to_string(), y.to_string()],
                Reply::Ok,
            )
        }
        Op::Rem(c, v) => {
            let e = element(*v, false);
            let limit = if *c == 0 {
                usize::MAX
            } else {
                c.unsigned_abs() as usize
            };
            let mut idx: Vec<usize> = (0..m.len()).filter(|&i| m[i] == e).collect();
            if *c < 0 {
                idx.reverse();
            }
            idx.truncate(limit);
            idx.sort_unstable();
            for &i in idx.iter().rev() {
                m.remove(i);
            }
            (
                vec!["LREM".into(), "l".into(), c.to_string(), e],
                Reply::Int(idx.len() as i64),
            )
        }
        Op::Insert {
            after,
            pivot,
            value,
        } => {
            let (p, v) = (element(*pivot, false), element(*value, false));
            let w = vec![
                "LINSERT".into(),
                "l".into(),
                if *after { "AFTER" } else { "BEFORE" }.into(),
                p.clone(),
                v.clone(),
            ];
            let reply = if m.is_empty() {
                Reply::Int(0)
            } else {
                match m.iter().position(|e| *e == p) {
                    None => Reply::Int(-1),
                    Some(i) => {
                        m.insert(if *after { i + 1 } else { i }, v);
                        Reply::Int(m.len() as i64)
                    }
                }
            };
            (w, reply)
        }
        Op::Pos(v, rank) => {
            let e = element(*v, false);
            let rank = if *rank == 0 { 1 } else { *rank as i64 };
            let hits: Vec<usize> = (0..m.len()).filter(|&i| m[i] == e).collect();
            let pick = if rank > 0 {
                hits.get(rank as usize - 1)
            } else {
                hits.iter().rev().nth((-rank) as usize - 1)
            };
            (
                vec![
                    "LPOS".into(),
                    "l".into(),
                    e,
                    "RANK".into(),
                    rank.to_string(),
                ],
                pick.map_or(Reply::Nil, |&i| Reply::Int(i as i64)),
            )
        }
        Op::Rotate { from, to } => {
            let side = |l: bool| if l { "LEFT" } else { "RIGHT" };
            let w = vec![
                "LMOVE".into(),
                "l".into(),
                "l".into(),
                side(*from).into(),
                side(*to).into(),
            ];
            let v = if *from { m.pop_front() } else { m.pop_back() };
            if let Some(v) = &v {
                if *to {
                    m.push_front(v.clone());
                } else {
                    m.push_back(v.clone());
                }
            }
            (w, v.as_ref().map_or(Reply::Nil, b))
        }
    }
}

fn contents(s: &mut Shard) -> Vec<Vec<u8>> {
    s.lookup(b"l", NOW)
        .and_then(|e| e.list())
        .map(|l| l.iter().map(<[u8]>::to_vec).collect())
        .unwrap_or_default()
}

fn matches_model(ops: Vec<Op>) -> bool {
    let mut s = Shard::new(0);
    let fx = Collector::new();
    s.set_effect_sink(Box::new(fx.clone()));
    let mut m = VecDeque::new();
    for op in &ops {
        let (words, want) = model(&mut m, op);
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let got = run(&mut s, &words, NOW);
        if got != want {
            eprintln!("{words:?}: got {got:?}, want {want:?}");
            return false;
        }
        let have = contents(&mut s);
        if have.len() != m.len() || have.iter().zip(&m).any(|(a, b)| a[..] != *b.as_bytes()) {
            eprintln!("after {words:?}: contents differ");
            return false;
        }
    }
    // The effects rebuild the same list, entry for entry.
    let mut r = Shard::new(1);
    for e in fx.take() {
        r.apply(&e);
    }
    s.lookup(b"l", NOW) == r.lookup(b"l", NOW) && s.used_memory() == r.used_memory()
}

quickcheck! {
    fn commands_match_a_vecdeque_model(ops: Vec<Op>) -> bool {
        matches_model(ops)
    }
}

#[test]
fn the_model_crosses_the_packed_limit_both_ways() {
    // Ten long elements (9 KiB) make the list chunked; popping back to four makes it
    // packed again.
    let mut ops: Vec<Op> = (0..10)
        .map(|i| Op::Push {
            left: i % 2 == 0,
            items: vec![i],
            long: true,
        })
        .collect();
    ops.push(Op::Set(3, 1));
    ops.push(Op::Insert {
        after: true,
        pivot: 1,
        value: 2,
    });
    ops.push(Op::Pop {
        left: true,
        count: Some(3),
    });
    ops.push(Op::Rotate {
        from: false,
        to: true,
    });
    ops.push(Op::Trim(1, -2));
    ops.push(Op::Pop {
        left: false,
        count: Some(2),
    });
    ops.push(Op::Range(0, -1));
    assert!(matches_model(ops));
}

#[test]
fn argument_parsing_never_panics() {
    let words = [
        "LEFT",
        "RIGHT",
        "COUNT",
        "RANK",
        "MAXLEN",
        "BEFORE",
        "AFTER",
        "0",
        "1",
        "-1",
        "2",
        "9223372036854775807",
        "-9223372036854775808",
        "99999999999999999999",
        "l",
        "x",
        "",
    ];
    let cmds = [
        "LPUSH",
        "RPUSH",
        "LPUSHX",
        "RPUSHX",
        "LPOP",
        "RPOP",
        "LLEN",
        "LINDEX",
        "LRANGE",
        "LSET",
        "LINSERT",
        "LREM",
        "LTRIM",
        "LPOS",
        "LMOVE",
        "RPOPLPUSH",
        "LMPOP",
    ];
    let mut g = Gen::new(8);
    let mut s = Shard::new(0);
    run(&mut s, &["RPUSH", "l", "a", "b", "c"], NOW);
    for _ in 0..20_000 {
        let cmd = *g.choose(&cmds).unwrap();
        let n = usize::arbitrary(&mut g) % 7;
        let mut w = vec![cmd];
        w.extend((0..n).map(|_| *g.choose(&words).unwrap()));
        let spec = crate::command::lookup(cmd.as_bytes()).unwrap();
        if spec.arity_ok(w.len()) {
            let _ = run(&mut s, &w, NOW);
        }
        if run(&mut s, &["LLEN", "l"], NOW) == Reply::Int(0) {
            run(&mut s, &["RPUSH", "l", "a", "b", "c"], NOW);
        }
    }
}
