//! Tests of the generic key handlers in `keyspace.rs`, run through the command table.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use super::parse_copy_options;
use crate::commands::{bulk, err, run};
use crate::reply::Reply;
use crate::Shard;

const NOW: u64 = 1_700_000_000_000;

fn int(n: i64) -> Reply {
    Reply::Int(n)
}

fn sorted_keys(r: Reply) -> Vec<String> {
    let Reply::Array(items) = r else {
        panic!("array expected, got {r:?}")
    };
    let mut keys: Vec<String> = items
        .into_iter()
        .map(|k| match k {
            Reply::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("bulk expected, got {other:?}"),
        })
        .collect();
    keys.sort();
    keys
}

#[test]
fn del_unlink_exists_touch() {
    let mut s = Shard::new(0);
    run(&mut s, &["MSET", "a", "1", "b", "2", "c", "3"], NOW);
    assert_eq!(
        run(&mut s, &["EXISTS", "a", "a", "x", "b"], NOW),
        int(3),
        "duplicates count"
    );
    assert_eq!(run(&mut s, &["TOUCH", "a", "x", "c", "c"], NOW), int(3));
    assert_eq!(
        run(&mut s, &["DEL", "a", "x", "a"], NOW),
        int(1),
        "a key is deleted once"
    );
    assert_eq!(run(&mut s, &["UNLINK", "b", "c"], NOW), int(2));
    assert_eq!(run(&mut s, &["EXISTS", "a", "b", "c"], NOW), int(0));
    assert_eq!(s.len(), 0);
    run(&mut s, &["SET", "t", "1", "PX", "10"], NOW);
    assert_eq!(run(&mut s, &["EXISTS", "t"], NOW + 9), int(1));
    assert_eq!(run(&mut s, &["EXISTS", "t"], NOW + 10), int(0));
    run(&mut s, &["SET", "t", "1", "PX", "10"], NOW);
    assert_eq!(
        run(&mut s, &["DEL", "t"], NOW + 10),
        int(0),
        "an expired key is not deleted twice"
    );
    assert_eq!(
        run(&mut s, &["DEL"], NOW),
        err("ERR wrong number of arguments for 'del' command")
    );
}

#[test]
fn type_of_keys() {
    let mut s = Shard::new(0);
    assert_eq!(run(&mut s, &["TYPE", "k"], NOW), Reply::simple("none"));
    run(&mut s, &["SET", "k", "v", "PX", "5"], NOW);
    assert_eq!(run(&mut s, &["TYPE", "k"], NOW), Reply::simple("string"));
    assert_eq!(run(&mut s, &["TYPE", "k"], NOW + 5), Reply::simple("none"));
}

#[test]
fn rename_moves_value_and_ttl() {
    let mut s = Shard::new(0);
    assert_eq!(
        run(&mut s, &["RENAME", "a", "b"], NOW),
        err("ERR no such key")
    );
    assert_eq!(
        run(&mut s, &["RENAMENX", "a", "b"], NOW),
        err("ERR no such key")
    );
    assert_eq!(
        run(&mut s, &["RENAME", "a", "a"], NOW),
        err("ERR no such key")
    );
    run(&mut s, &["SET", "a", "1", "PX", "500"], NOW);
    run(&mut s, &["SET", "b", "2"], NOW);
    assert_eq!(run(&mut s, &["RENAME", "a", "b"], NOW), Reply::Ok);
    assert_eq!(run(&mut s, &["GET", "b"], NOW), bulk("1"));
    assert_eq!(run(&mut s, &["PTTL", "b"], NOW), int(500));
    assert_eq!(run(&mut s, &["EXISTS", "a"], NOW), int(0));
    assert_eq!(s.len(), 1);
    assert_eq!(run(&mut s, &["RENAME", "b", "b"], NOW), Reply::Ok);
    assert_eq!(run(&mut s, &["RENAMENX", "b", "b"], NOW), int(0));
    assert_eq!(run(&mut s, &["GET", "b"], NOW), bulk("1"));
    run(&mut s, &["SET", "c", "3"], NOW);
    assert_eq!(run(&mut s, &["RENAMENX", "b", "c"], NOW), int(0));
    assert_eq!(run(&mut s, &["GET", "c"], NOW), bulk("3"));
    assert_eq!(run(&mut s, &["RENAMENX", "b", "d"], NOW), int(1));
    assert_eq!(run(&mut s, &["GET", "d"], NOW), bulk("1"));
    assert_eq!(run(&mut s, &["EXISTS", "b"], NOW), int(0));
    assert_eq!(
        run(&mut s, &["RENAME", "d", "e"], NOW + 500),
        err("ERR no such key"),
        "expired"
    );
}

#[test]
fn rename_keeps_memcached_flags() {
    let mut s = Shard::new(0);
    s.put(b"a", b"v", 0, 42);
    run(&mut s, &["RENAME", "a", "b"], NOW);
    assert_eq!(s.lookup(b"b", NOW).map(|e| e.flags()), Some(42));
    run(&mut s, &["COPY", "b", "c"], NOW);
    assert_eq!(s.lookup(b"c", NOW).map(|e| e.flags()), Some(42));
}

#[test]
fn copy_semantics() {
    let mut s = Shard::new(0);
    assert_eq!(run(&mut s, &["COPY", "a", "b"], NOW), int(0));
    run(&mut s, &["SET", "a", "1", "EX", "100"], NOW);
    assert_eq!(run(&mut s, &["COPY", "a", "b"], NOW), int(1));
    assert_eq!(
        run(&mut s, &["MGET", "a", "b"], NOW),
        Reply::Array(vec![bulk("1"), bulk("1")])
    );
    assert_eq!(
        run(&mut s, &["TTL", "b"], NOW),
        int(100),
        "the TTL is copied"
    );
    run(&mut s, &["SET", "a", "2"], NOW);
    assert_eq!(
        run(&mut s, &["COPY", "a", "b"], NOW),
        int(0),
        "destination exists"
    );
    assert_eq!(run(&mut s, &["GET", "b"], NOW), bulk("1"));
    assert_eq!(run(&mut s, &["COPY", "a", "b", "REPLACE"], NOW), int(1));
    assert_eq!(run(&mut s, &["GET", "b"], NOW), bulk("2"));
    assert_eq!(run(&mut s, &["TTL", "b"], NOW), int(-1));
    assert_eq!(
        run(&mut s, &["COPY", "a", "c", "DB", "0", "replace"], NOW),
        int(1)
    );
    // The copy is independent of the source.
    run(&mut s, &["APPEND", "a", "x"], NOW);
    assert_eq!(run(&mut s, &["GET", "c"], NOW), bulk("2"));
}

#[test]
fn copy_errors() {
    let mut s = Shard::new(0);
    run(&mut s, &["SET", "a", "1"], NOW);
    let cases: &[(&[&str], &str)] = &[
        (
            &["COPY", "a", "b", "DB", "1"],
            "ERR DB index is out of range",
        ),
        (
            &["COPY", "a", "b", "DB", "-1"],
            "ERR DB index is out of range",
        ),
        (
            &["COPY", "a", "b", "DB", "x"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["COPY", "a", "b", "DB", "4294967296"],
            "ERR value is out of range, value must between -2147483648 and 2147483647",
        ),
        (&["COPY", "a", "b", "DB"], "ERR syntax error"),
        (&["COPY", "a", "b", "FORCE"], "ERR syntax error"),
        (
            &["COPY", "a", "a"],
            "ERR source and destination objects are the same",
        ),
        (
            &["COPY", "a"],
            "ERR wrong number of arguments for 'copy' command",
        ),
    ];
    for (words, want) in cases {
        assert_eq!(run(&mut s, words, NOW), err(want), "{words:?}");
    }
    assert_eq!(run(&mut s, &["EXISTS", "b"], NOW), int(0));
    let args = |w: &[&str]| {
        w.iter()
            .map(|x| Bytes::copy_from_slice(x.as_bytes()))
            .collect::<Vec<_>>()
    };
    assert_eq!(parse_copy_options(&args(&["COPY", "a", "b"])), Ok(false));
    assert_eq!(
        parse_copy_options(&args(&["COPY", "a", "b", "DB", "0", "REPLACE"])),
        Ok(true)
    );
    assert_eq!(
        parse_copy_options(&args(&["COPY", "a", "b", "REPLACE", "X"])),
        Err(err("ERR syntax error"))
    );
}

#[test]
fn randomkey_returns_live_keys() {
    let mut s = Shard::new(3);
    assert_eq!(run(&mut s, &["RANDOMKEY"], NOW), Reply::Nil);
    for i in 0..20 {
        run(&mut s, &["SET", &format!("k{i}"), "v"], NOW);
    }
    let mut seen = HashSet::new();
    for _ in 0..400 {
        let Reply::Bulk(k) = run(&mut s, &["RANDOMKEY"], NOW) else {
            panic!()
        };
        seen.insert(k);
    }
    assert_eq!(seen.len(), 20, "every key turns up");
    // Only expired keys and holes left: RANDOMKEY reclaims and answers Nil.
    for i in 0..20 {
        let cmd = if i % 2 == 0 { "DEL" } else { "PEXPIRE" };
        let key = format!("k{i}");
        if cmd == "DEL" {
            run(&mut s, &[cmd, &key], NOW);
        } else {
            run(&mut s, &[cmd, &key, "5"], NOW);
        }
    }
    run(&mut s, &["SET", "live", "1"], NOW);
    assert_eq!(run(&mut s, &["RANDOMKEY"], NOW + 5), bulk("live"));
    run(&mut s, &["DEL", "live"], NOW);
    assert_eq!(run(&mut s, &["RANDOMKEY"], NOW + 5), Reply::Nil);
    assert_eq!(s.len(), 0, "expired keys were reclaimed");
}

#[test]
fn keys_with_patterns() {
    let mut s = Shard::new(0);
    run(
        &mut s,
        &["MSET", "one", "1", "two", "2", "three", "3", "four", "4"],
        NOW,
    );
    run(&mut s, &["SET", "gone", "x", "PX", "1"], NOW);
    assert_eq!(
        sorted_keys(run(&mut s, &["KEYS", "*o*"], NOW + 1)),
        ["four", "one", "two"]
    );
    assert_eq!(sorted_keys(run(&mut s, &["KEYS", "t??"], NOW)), ["two"]);
    assert_eq!(
        sorted_keys(run(&mut s, &["KEYS", "*"], NOW + 1)),
        ["four", "one", "three", "two"]
    );
    assert_eq!(
        sorted_keys(run(&mut s, &["KEYS", "[ot]*"], NOW)),
        ["one", "three", "two"]
    );
    assert_eq!(
        sorted_keys(run(&mut s, &["KEYS", "nomatch*"], NOW)),
        Vec::<String>::new()
    );
}

/// Runs a full SCAN with `opts`, returning every key it reported (with repeats).
fn full_scan(s: &mut Shard, opts: &[&str], now: u64) -> Vec<String> {
    let mut cursor = "0".to_string();
    let mut out = Vec::new();
    loop {
        let mut words = vec!["SCAN", cursor.as_str()];
        words.extend_from_slice(opts);
        let Reply::Array(mut parts) = run(s, &words, now) else {
            panic!()
        };
        let keys = parts.pop().unwrap();
        let Reply::Bulk(next) = parts.pop().unwrap() else {
            panic!()
        };
        out.extend(sorted_keys(keys));
        cursor = String::from_utf8(next.to_vec()).unwrap();
        if cursor == "0" {
            return out;
        }
    }
}

#[test]
fn scan_walks_everything_once() {
    let mut s = Shard::new(0);
    for i in 0..500 {
        run(&mut s, &["SET", &format!("key:{i}"), "v"], NOW);
    }
    run(&mut s, &["SET", "other", "v"], NOW);
    run(&mut s, &["SET", "short", "v", "PX", "1"], NOW);
    let all = full_scan(&mut s, &[], NOW + 1);
    assert_eq!(all.len(), 501);
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 501);
    assert!(
        !all.contains(&"short".to_string()),
        "expired keys are never returned"
    );
    let matched = full_scan(&mut s, &["MATCH", "key:1?", "COUNT", "7"], NOW + 1);
    let mut want: Vec<String> = (10..20).map(|i| format!("key:{i}")).collect();
    want.sort();
    let mut got = matched.clone();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(
        full_scan(&mut s, &["TYPE", "string", "MATCH", "oth*"], NOW),
        ["other"]
    );
    assert_eq!(
        full_scan(&mut s, &["type", "STRING", "match", "oth*"], NOW),
        ["other"]
    );
    assert!(full_scan(&mut s, &["TYPE", "hash"], NOW).is_empty());
    assert!(full_scan(&mut s, &["TYPE", "nosuchtype"], NOW).is_empty());
}

#[test]
fn scan_with_churn_returns_stable_keys() {
    let mut s = Shard::new(0);
    for i in 0..300 {
        run(&mut s, &["SET", &format!("stable:{i}"), "v"], NOW);
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut cursor = "0".to_string();
    let mut round = 0;
    loop {
        let Reply::Array(mut parts) = run(&mut s, &["SCAN", &cursor, "COUNT", "5"], NOW) else {
            panic!()
        };
        for k in sorted_keys(parts.pop().unwrap()) {
            *seen.entry(k).or_default() += 1;
        }
        let Reply::Bulk(next) = parts.pop().unwrap() else {
            panic!()
        };
        cursor = String::from_utf8(next.to_vec()).unwrap();
        for j in 0..20 {
            run(&mut s, &["SET", &format!("new:{round}:{j}"), "v"], NOW);
        }
        run(&mut s, &["DEL", &format!("new:{}:3", round / 2)], NOW);
        round += 1;
        if cursor == "0" {
            break;
        }
    }
    for i in 0..300 {
        assert_eq!(seen.get(&format!("stable:{i}")), Some(&1), "stable:{i}");
    }
}

#[test]
fn scan_errors() {
    let mut s = Shard::new(0);
    run(&mut s, &["SET", "a", "1"], NOW);
    for bad in ["x", "1.5", " 5", "5 ", "+", "-", "18446744073709551616"] {
        assert_eq!(
            run(&mut s, &["SCAN", bad], NOW),
            err("ERR invalid cursor"),
            "{bad:?}"
        );
    }
    let syntax = err("ERR syntax error");
    for opts in [
        &["COUNT", "0"][..],
        &["COUNT", "-3"],
        &["COUNT"],
        &["MATCH"],
        &["FOO", "1"],
        &["TYPE"],
    ] {
        let mut words = vec!["SCAN", "0"];
        words.extend_from_slice(opts);
        assert_eq!(run(&mut s, &words, NOW), syntax, "{opts:?}");
    }
    assert_eq!(
        run(&mut s, &["SCAN", "0", "COUNT", "x"], NOW),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(
        run(&mut s, &["SCAN", "18446744073709551615"], NOW),
        Reply::Array(vec![bulk("0"), Reply::Array(vec![])]),
        "a cursor past the end finishes"
    );
    for start in ["+0", "", "-0", "000"] {
        assert_eq!(
            run(&mut s, &["SCAN", start, "COUNT", "1"], NOW),
            Reply::Array(vec![bulk("0"), Reply::Array(vec![bulk("a")])]),
            "{start:?} starts a scan, as strtoul reads it"
        );
    }
    assert_eq!(
        run(&mut s, &["SCAN", "-1"], NOW),
        Reply::Array(vec![bulk("0"), Reply::Array(vec![])]),
        "-1 wraps to the largest cursor"
    );
}
