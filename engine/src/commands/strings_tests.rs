//! Tests of the string handlers in `strings.rs`, run through the command table.

use crate::commands::{bulk, err, run};
use crate::reply::Reply;
use crate::Shard;

const NOW: u64 = 1_700_000_000_000;

fn syntax() -> Reply {
    err("ERR syntax error")
}

#[test]
fn get_set_basic() {
    let mut s = Shard::new(0);
    assert_eq!(run(&mut s, &["GET", "k"], NOW), Reply::Nil);
    assert_eq!(run(&mut s, &["SET", "k", "v"], NOW), Reply::Ok);
    assert_eq!(run(&mut s, &["get", "k"], NOW), bulk("v"));
    assert_eq!(run(&mut s, &["SET", "k", ""], NOW), Reply::Ok);
    assert_eq!(run(&mut s, &["GET", "k"], NOW), bulk(""));
    assert_eq!((s.stats.keyspace_hits, s.stats.keyspace_misses), (2, 1));
    assert_eq!(
        run(&mut s, &["GET"], NOW),
        err("ERR wrong number of arguments for 'get' command")
    );
}

#[test]
fn set_nx_xx_get() {
    let mut s = Shard::new(0);
    assert_eq!(run(&mut s, &["SET", "k", "1", "XX"], NOW), Reply::Nil);
    assert_eq!(run(&mut s, &["GET", "k"], NOW), Reply::Nil);
    assert_eq!(run(&mut s, &["SET", "k", "1", "NX"], NOW), Reply::Ok);
    assert_eq!(run(&mut s, &["SET", "k", "2", "nx"], NOW), Reply::Nil);
    assert_eq!(run(&mut s, &["SET", "k", "3", "XX"], NOW), Reply::Ok);
    assert_eq!(run(&mut s, &["GET", "k"], NOW), bulk("3"));
    assert_eq!(run(&mut s, &["SET", "k", "4", "GET"], NOW), bulk("3"));
    assert_eq!(run(&mut s, &["SET", "new", "4", "GET"], NOW), Reply::Nil);
    assert_eq!(run(&mut s, &["GET", "new"], NOW), bulk("4"));
    // NX + GET: the old value comes back and nothing is written.
    assert_eq!(run(&mut s, &["SET", "k", "5", "NX", "GET"], NOW), bulk("4"));
    assert_eq!(run(&mut s, &["GET", "k"], NOW), bulk("4"));
    assert_eq!(
        run(&mut s, &["SET", "absent", "5", "XX", "GET"], NOW),
        Reply::Nil
    );
    assert_eq!(run(&mut s, &["GET", "absent"], NOW), Reply::Nil);
    assert_eq!(
        (s.stats.keyspace_hits, s.stats.keyspace_misses),
        (5, 4),
        "GET counts"
    );
    // Options may repeat.
    assert_eq!(
        run(&mut s, &["SET", "k", "6", "XX", "XX", "GET", "GET"], NOW),
        bulk("4")
    );
}

#[test]
fn set_expiry_options() {
    let mut s = Shard::new(0);
    run(&mut s, &["SET", "k", "v", "EX", "10"], NOW);
    assert_eq!(run(&mut s, &["PTTL", "k"], NOW), Reply::Int(10_000));
    run(&mut s, &["SET", "k", "v", "px", "1500"], NOW);
    assert_eq!(run(&mut s, &["PTTL", "k"], NOW), Reply::Int(1500));
    let at_s = (NOW / 1000 + 100).to_string();
    run(&mut s, &["SET", "k", "v", "EXAT", &at_s], NOW);
    assert_eq!(
        run(&mut s, &["PEXPIRETIME", "k"], NOW),
        Reply::Int((NOW / 1000 + 100) as i64 * 1000)
    );
    let at_ms = (NOW + 777).to_string();
    run(&mut s, &["SET", "k", "v", "PXAT", &at_ms], NOW);
    assert_eq!(run(&mut s, &["PTTL", "k"], NOW), Reply::Int(777));
    assert_eq!(
        run(&mut s, &["SET", "k", "w", "KEEPTTL"], NOW + 7),
        Reply::Ok
    );
    assert_eq!(run(&mut s, &["PTTL", "k"], NOW + 7), Reply::Int(770));
    assert_eq!(run(&mut s, &["GET", "k"], NOW + 7), bulk("w"));
    // A plain SET drops the TTL.
    run(&mut s, &["SET", "k", "x"], NOW);
    assert_eq!(run(&mut s, &["PTTL", "k"], NOW), Reply::Int(-1));
    // Repeating one expiry kind is fine; the last value wins.
    run(&mut s, &["SET", "k", "x", "EX", "1", "EX", "2"], NOW);
    assert_eq!(run(&mut s, &["PTTL", "k"], NOW), Reply::Int(2000));
    // An absolute deadline in the past deletes the key, and SET still answers OK.
    assert_eq!(run(&mut s, &["SET", "k", "x", "PXAT", "5"], NOW), Reply::Ok);
    assert_eq!(run(&mut s, &["EXISTS", "k"], NOW), Reply::Int(0));
    // Expiry happens at the deadline.
    run(&mut s, &["SET", "k", "x", "PX", "100"], NOW);
    assert_eq!(run(&mut s, &["GET", "k"], NOW + 99), bulk("x"));
    assert_eq!(run(&mut s, &["GET", "k"], NOW + 100), Reply::Nil);
    assert_eq!(s.stats.expired_keys, 1);
}

#[test]
fn set_errors() {
    let mut s = Shard::new(0);
    for opts in [
        &["NX", "XX"][..],
        &["XX", "NX"],
        &["EX", "10", "PX", "10"],
        &["PX", "10", "EXAT", "10"],
        &["EX", "10", "KEEPTTL"],
        &["KEEPTTL", "PXAT", "10"],
        &["EX"],
        &["PERSIST"],
        &["FOO"],
        &["EXX", "1"],
    ] {
        let mut cmd = vec!["SET", "k", "v"];
        cmd.extend_from_slice(opts);
        assert_eq!(run(&mut s, &cmd, NOW), syntax(), "{opts:?}");
    }
    let invalid = err("ERR invalid expire time in 'set' command");
    for opts in [
        ["EX", "0"],
        ["PX", "-1"],
        ["EXAT", "0"],
        ["PXAT", "-5"],
        ["EX", "9223372036854775"],
    ] {
        assert_eq!(
            run(&mut s, &["SET", "k", "v", opts[0], opts[1]], NOW),
            invalid,
            "{opts:?}"
        );
    }
    assert_eq!(
        run(&mut s, &["SET", "k", "v", "EX", "1.5"], NOW),
        err("ERR value is not an integer or out of range")
    );
    // Syntax errors come before value errors.
    assert_eq!(
        run(&mut s, &["SET", "k", "v", "EX", "x", "FOO"], NOW),
        syntax()
    );
    assert_eq!(
        run(&mut s, &["GET", "k"], NOW),
        Reply::Nil,
        "nothing written"
    );
    assert_eq!(
        run(&mut s, &["SET", "k"], NOW),
        err("ERR wrong number of arguments for 'set' command")
    );
}

#[test]
fn setnx_setex_psetex() {
    let mut s = Shard::new(0);
    assert_eq!(run(&mut s, &["SETNX", "k", "1"], NOW), Reply::Int(1));
    assert_eq!(run(&mut s, &["SETNX", "k", "2"], NOW), Reply::Int(0));
    assert_eq!(run(&mut s, &["GET", "k"], NOW), bulk("1"));
    assert_eq!(run(&mut s, &["SETEX", "k", "5", "v"], NOW), Reply::Ok);
    assert_eq!(run(&mut s, &["TTL", "k"], NOW), Reply::Int(5));
    assert_eq!(run(&mut s, &["GET", "k"], NOW), bulk("v"));
    assert_eq!(run(&mut s, &["PSETEX", "k", "250", "w"], NOW), Reply::Ok);
    assert_eq!(run(&mut s, &["PTTL", "k"], NOW), Reply::Int(250));
    assert_eq!(
        run(&mut s, &["SETNX", "k", "z"], NOW + 250),
        Reply::Int(1),
        "expired key is absent"
    );
    assert_eq!(
        run(&mut s, &["SETEX", "k", "0", "v"], NOW),
        err("ERR invalid expire time in 'setex' command")
    );
    assert_eq!(
        run(&mut s, &["psetex", "k", "-3", "v"], NOW),
        err("ERR invalid expire time in 'psetex' command")
    );
    assert_eq!(
        run(&mut s, &["SETEX", "k", "ten", "v"], NOW),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(run(&mut s, &["GET", "k"], NOW + 250), bulk("z"));
}

#[test]
fn getset_getdel() {
    let mut s = Shard::new(0);
    assert_eq!(run(&mut s, &["GETSET", "k", "1"], NOW), Reply::Nil);
    run(&mut s, &["EXPIRE", "k", "100"], NOW);
    assert_eq!(run(&mut s, &["GETSET", "k", "2"], NOW), bulk("1"));
    assert_eq!(
        run(&mut s, &["TTL", "k"], NOW),
        Reply::Int(-1),
        "GETSET drops the TTL"
    );
    assert_eq!(run(&mut s, &["GETDEL", "k"], NOW), bulk("2"));
    assert_eq!(run(&mut s, &["GETDEL", "k"], NOW), Reply::Nil);
    assert_eq!(run(&mut s, &["EXISTS", "k"], NOW), Reply::Int(0));
}

#[test]
fn getex_options() {
    let mut s = Shard::new(0);
    assert_eq!(run(&mut s, &["GETEX", "k"], NOW), Reply::Nil);
    assert_eq!(run(&mut s, &["GETEX", "k", "EX", "10"], NOW), Reply::Nil);
    assert_eq!(
        run(&mut s, &["GETEX", "k", "EX", "0"], NOW),
        Reply::Nil,
        "key before expire time"
    );
    assert_eq!(run(&mut s, &["GETEX", "k", "EX", "x"], NOW), Reply::Nil);
    assert_eq!(
        run(&mut s, &["GETEX", "k", "EX"], NOW),
        err("ERR syntax error"),
        "syntax first"
    );
    assert_eq!(
        run(&mut s, &["EXISTS", "k"], NOW),
        Reply::Int(0),
        "GETEX does not create"
    );
    run(&mut s, &["SET", "k", "v"], NOW);
    assert_eq!(run(&mut s, &["GETEX", "k"], NOW), bulk("v"));
    assert_eq!(run(&mut s, &["TTL", "k"], NOW), Reply::Int(-1));
    assert_eq!(run(&mut s, &["GETEX", "k", "EX", "10"], NOW), bulk("v"));
    assert_eq!(run(&mut s, &["PTTL", "k"], NOW), Reply::Int(10_000));
    assert_eq!(run(&mut s, &["GETEX", "k", "PX", "50"], NOW), bulk("v"));
    assert_eq!(run(&mut s, &["PTTL", "k"], NOW), Reply::Int(50));
    let at = (NOW + 2000).to_string();
    assert_eq!(run(&mut s, &["GETEX", "k", "PXAT", &at], NOW), bulk("v"));
    assert_eq!(run(&mut s, &["PTTL", "k"], NOW), Reply::Int(2000));
    let at = (NOW / 1000 + 3).to_string();
    assert_eq!(run(&mut s, &["GETEX", "k", "EXAT", &at], NOW), bulk("v"));
    assert_eq!(
        run(&mut s, &["EXPIRETIME", "k"], NOW),
        Reply::Int((NOW / 1000 + 3) as i64)
    );
    assert_eq!(run(&mut s, &["GETEX", "k", "PERSIST"], NOW), bulk("v"));
    assert_eq!(run(&mut s, &["TTL", "k"], NOW), Reply::Int(-1));
    // A deadline in the past: the value is returned, then the key is gone.
    assert_eq!(run(&mut s, &["GETEX", "k", "EXAT", "1"], NOW), bulk("v"));
    assert_eq!(run(&mut s, &["EXISTS", "k"], NOW), Reply::Int(0));
}

#[test]
fn getex_errors() {
    let mut s = Shard::new(0);
    run(&mut s, &["SET", "k", "v"], NOW);
    for opts in [
        &["NX"][..],
        &["GET"],
        &["KEEPTTL"],
        &["EX", "1", "PERSIST"],
        &["PERSIST", "EX", "1"],
        &["EX", "1", "PX", "1"],
        &["PX"],
        &["BOGUS"],
    ] {
        let mut cmd = vec!["GETEX", "k"];
        cmd.extend_from_slice(opts);
        assert_eq!(run(&mut s, &cmd, NOW), syntax(), "{opts:?}");
    }
    assert_eq!(
        run(&mut s, &["GETEX", "k", "EX", "0"], NOW),
        err("ERR invalid expire time in 'getex' command")
    );
    assert_eq!(
        run(&mut s, &["GETEX", "k", "PX", "abc"], NOW),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(
        run(&mut s, &["GETEX", "k", "PERSIST", "PERSIST"], NOW),
        bulk("v")
    );
    assert_eq!(
        run(&mut s, &["TTL", "k"], NOW),
        Reply::Int(-1),
        "errors changed nothing"
    );
}

#[test]
fn mget_mset_msetnx() {
    let mut s = Shard::new(0);
    assert_eq!(run(&mut s, &["MSET", "a", "1", "b", "2"], NOW), Reply::Ok);
    assert_eq!(
        run(&mut s, &["MGET", "a", "x", "b", "a"], NOW),
        Reply::Array(vec![bulk("1"), Reply::Nil, bulk("2"), bulk("1")])
    );
    assert_eq!(
        run(&mut s, &["MSET", "a", "1", "b"], NOW),
        err("ERR wrong number of arguments for 'mset' command")
    );
    assert_eq!(run(&mut s, &["MSET", "a", "9", "a", "10"], NOW), Reply::Ok);
    assert_eq!(
        run(&mut s, &["GET", "a"], NOW),
        bulk("10"),
        "last pair wins"
    );
    run(&mut s, &["EXPIRE", "b", "10"], NOW);
    run(&mut s, &["MSET", "b", "3"], NOW);
    assert_eq!(
        run(&mut s, &["TTL", "b"], NOW),
        Reply::Int(-1),
        "MSET drops TTLs"
    );
    assert_eq!(
        run(&mut s, &["MSETNX", "b", "4", "c", "5"], NOW),
        Reply::Int(0)
    );
    assert_eq!(
        run(&mut s, &["EXISTS", "c"], NOW),
        Reply::Int(0),
        "all or nothing"
    );
    assert_eq!(
        run(&mut s, &["MSETNX", "c", "5", "d", "6"], NOW),
        Reply::Int(1)
    );
    assert_eq!(
        run(&mut s, &["MGET", "c", "d"], NOW),
        Reply::Array(vec![bulk("5"), bulk("6")])
    );
    assert_eq!(
        run(&mut s, &["MSETNX", "e", "1", "f"], NOW),
        err("ERR wrong number of arguments for 'msetnx' command")
    );
    assert_eq!(
        run(&mut s, &["MGET"], NOW),
        err("ERR wrong number of arguments for 'mget' command")
    );
}

#[test]
fn append_and_strlen() {
    let mut s = Shard::new(0);
    assert_eq!(run(&mut s, &["STRLEN", "k"], NOW), Reply::Int(0));
    assert_eq!(run(&mut s, &["APPEND", "k", "Hello"], NOW), Reply::Int(5));
    assert_eq!(run(&mut s, &["APPEND", "k", " World"], NOW), Reply::Int(11));
    assert_eq!(run(&mut s, &["GET", "k"], NOW), bulk("Hello World"));
    assert_eq!(run(&mut s, &["STRLEN", "k"], NOW), Reply::Int(11));
    run(&mut s, &["PEXPIRE", "k", "100"], NOW);
    run(&mut s, &["APPEND", "k", "!"], NOW);
    assert_eq!(
        run(&mut s, &["PTTL", "k"], NOW),
        Reply::Int(100),
        "APPEND keeps the TTL"
    );
    assert_eq!(
        run(&mut s, &["APPEND", "k", "x"], NOW + 100),
        Reply::Int(1),
        "expired: starts over"
    );
    s.set_max_value_len(4);
    assert_eq!(run(&mut s, &["APPEND", "k", "abc"], NOW), Reply::Int(4));
    assert_eq!(
        run(&mut s, &["APPEND", "k", "y"], NOW),
        err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    );
    assert_eq!(run(&mut s, &["GET", "k"], NOW), bulk("xabc"));
}

#[test]
fn getrange_clamps_like_redis() {
    let mut s = Shard::new(0);
    run(&mut s, &["SET", "k", "This is a string"], NOW);
    let cases = [
        ("0", "3", "This"),
        ("-3", "-1", "ing"),
        ("0", "-1", "This is a string"),
        ("10", "100", "string"),
        ("5", "3", ""),
        ("-1", "-5", ""),
        ("-100", "2", "Thi"),
        ("100", "200", ""),
        ("0", "-100", "T"),
        (
            "-9223372036854775808",
            "9223372036854775807",
            "This is a string",
        ),
    ];
    for (st, en, want) in cases {
        assert_eq!(
            run(&mut s, &["GETRANGE", "k", st, en], NOW),
            bulk(want),
            "{st} {en}"
        );
    }
    assert_eq!(run(&mut s, &["SUBSTR", "k", "0", "3"], NOW), bulk("This"));
    assert_eq!(run(&mut s, &["GETRANGE", "nokey", "0", "3"], NOW), bulk(""));
    run(&mut s, &["SET", "e", ""], NOW);
    assert_eq!(run(&mut s, &["GETRANGE", "e", "0", "-1"], NOW), bulk(""));
    let not_int = err("ERR value is not an integer or out of range");
    assert_eq!(run(&mut s, &["GETRANGE", "k", "a", "1"], NOW), not_int);
    assert_eq!(run(&mut s, &["GETRANGE", "nokey", "0", "b"], NOW), not_int);
}

#[test]
fn setrange_pads_and_checks() {
    let mut s = Shard::new(0);
    run(&mut s, &["SET", "k", "Hello World"], NOW);
    assert_eq!(
        run(&mut s, &["SETRANGE", "k", "6", "Redis"], NOW),
        Reply::Int(11)
    );
    assert_eq!(run(&mut s, &["GET", "k"], NOW), bulk("Hello Redis"));
    assert_eq!(
        run(&mut s, &["SETRANGE", "pad", "3", "ab"], NOW),
        Reply::Int(5)
    );
    assert_eq!(run(&mut s, &["GET", "pad"], NOW), bulk("\0\0\0ab"));
    assert_eq!(
        run(&mut s, &["SETRANGE", "k", "9", "XYZ"], NOW),
        Reply::Int(12)
    );
    assert_eq!(run(&mut s, &["GET", "k"], NOW), bulk("Hello RedXYZ"));
    assert_eq!(
        run(&mut s, &["SETRANGE", "none", "5", ""], NOW),
        Reply::Int(0)
    );
    assert_eq!(
        run(&mut s, &["EXISTS", "none"], NOW),
        Reply::Int(0),
        "empty patch creates nothing"
    );
    assert_eq!(
        run(&mut s, &["SETRANGE", "k", "100", ""], NOW),
        Reply::Int(12)
    );
    assert_eq!(
        run(&mut s, &["SETRANGE", "k", "-1", "x"], NOW),
        err("ERR offset is out of range")
    );
    assert_eq!(
        run(&mut s, &["SETRANGE", "k", "x", "x"], NOW),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(
        run(&mut s, &["SETRANGE", "k", "536870911", "xy"], NOW),
        err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    );
    assert_eq!(
        run(&mut s, &["SETRANGE", "k", "9223372036854775807", "x"], NOW),
        err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    );
    s.set_max_value_len(16);
    assert_eq!(
        run(&mut s, &["SETRANGE", "k", "15", "x"], NOW),
        Reply::Int(16)
    );
    run(&mut s, &["EXPIRE", "k", "10"], NOW);
    assert_eq!(
        run(&mut s, &["SETRANGE", "k", "0", "J"], NOW),
        Reply::Int(16)
    );
    assert_eq!(
        run(&mut s, &["TTL", "k"], NOW),
        Reply::Int(10),
        "SETRANGE keeps the TTL"
    );
}
