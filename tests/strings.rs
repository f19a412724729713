//! String commands through the redis crate: exact replies and exact Redis error texts.
//! Multi-key commands use many keys (and hash tags) so that with two cores they span both.

mod common;

use common::*;

cores_tests!(
    set_get,
    set_expiry_options,
    set_variants,
    getex,
    mget_mset_msetnx,
    append_strlen_ranges,
    incr_decr,
    incrbyfloat,
    lcs,
    lcs_across_keys,
);

fn set_get(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "GET k", nil());
    assert_reply(&mut c, "SET k v", ok());
    assert_reply(&mut c, "GET k", bulk("v"));
    assert_reply(&mut c, "set k v2", ok());
    assert_reply(&mut c, "GET k", bulk("v2"));

    // Binary-safe keys and values, empty values, a large value.
    let key: &[u8] = b"bin\x00key\r\n";
    let val: &[u8] = b"\x00\x01\xff\r\n$3\r\n";
    assert_eq!(run(&mut c, &[b"SET".as_slice(), key, val]), ok());
    assert_eq!(run(&mut c, &[b"GET".as_slice(), key]), bulk(val));
    assert_eq!(run(&mut c, &["SET", "empty", ""]), ok());
    assert_reply(&mut c, "GET empty", bulk(""));
    assert_reply(&mut c, "EXISTS empty", int(1));
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(run(&mut c, &[b"SET".as_slice(), b"big", &big]), ok());
    assert_eq!(run(&mut c, &["GET", "big"]), bulk(&big));
    assert_reply(&mut c, "STRLEN big", int(3_000_000));

    // NX / XX.
    assert_reply(&mut c, "SET k other NX", nil());
    assert_reply(&mut c, "GET k", bulk("v2"));
    assert_reply(&mut c, "SET new v NX", ok());
    assert_reply(&mut c, "SET missing v XX", nil());
    assert_reply(&mut c, "GET missing", nil());
    assert_reply(&mut c, "SET k v3 XX", ok());
    assert_reply(&mut c, "GET k", bulk("v3"));
    assert_err(&mut c, "SET k v NX XX", "ERR syntax error");

    // GET option.
    assert_reply(&mut c, "SET k v4 GET", bulk("v3"));
    assert_reply(&mut c, "SET fresh v GET", nil());
    assert_reply(&mut c, "GET fresh", bulk("v"));
    assert_reply(&mut c, "SET k v5 XX GET", bulk("v4"));
    assert_reply(&mut c, "SET k v6 NX GET", bulk("v5"));
    assert_reply(&mut c, "GET k", bulk("v5"));
    assert_reply(&mut c, "SET absent v NX GET", nil());
    assert_reply(&mut c, "GET absent", bulk("v"));

    assert_err(&mut c, "SET k v FOO", "ERR syntax error");
    assert_err(
        &mut c,
        "SET",
        "ERR wrong number of arguments for 'set' command",
    );
    assert_err(
        &mut c,
        "SET k",
        "ERR wrong number of arguments for 'set' command",
    );
    assert_err(
        &mut c,
        "GET a b",
        "ERR wrong number of arguments for 'get' command",
    );
}

fn set_expiry_options(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "SET k v EX 100", ok());
    let ttl = as_int(&q(&mut c, "TTL k"));
    assert!((99..=100).contains(&ttl), "{ttl}");
    assert_reply(&mut c, "SET k v PX 100000", ok());
    let pttl = as_int(&q(&mut c, "PTTL k"));
    assert!((95_000..=100_000).contains(&pttl), "{pttl}");
    let at = unix_secs() + 200;
    assert_reply(&mut c, &format!("SET k v EXAT {at}"), ok());
    assert_reply(&mut c, "EXPIRETIME k", int(at));
    let pat = unix_ms() + 300_000;
    assert_reply(&mut c, &format!("SET k v PXAT {pat}"), ok());
    assert_reply(&mut c, "PEXPIRETIME k", int(pat));
    // A plain SET clears the TTL; KEEPTTL keeps it.
    assert_reply(&mut c, "SET k v2 KEEPTTL", ok());
    assert_reply(&mut c, "PEXPIRETIME k", int(pat));
    assert_reply(&mut c, "GET k", bulk("v2"));
    assert_reply(&mut c, "SET k v3", ok());
    assert_reply(&mut c, "TTL k", int(-1));
    assert_reply(&mut c, "SET k v4 KEEPTTL", ok());
    assert_reply(&mut c, "TTL k", int(-1));
    // Options combine in any order, case-insensitively.
    assert_reply(&mut c, "set k v5 xx get ex 50", bulk("v4"));
    let ttl = as_int(&q(&mut c, "TTL k"));
    assert!((49..=50).contains(&ttl), "{ttl}");
    // An EXAT in the past stores nothing visible.
    assert_reply(&mut c, "SET past v EXAT 1", ok());
    assert_reply(&mut c, "GET past", nil());
    assert_reply(&mut c, "EXISTS past", int(0));

    let invalid = "ERR invalid expire time in 'set' command";
    assert_err(&mut c, "SET k v EX 0", invalid);
    assert_err(&mut c, "SET k v EX -1", invalid);
    assert_err(&mut c, "SET k v PX 0", invalid);
    assert_err(&mut c, "SET k v EXAT 0", invalid);
    assert_err(&mut c, "SET k v PXAT -5", invalid);
    assert_err(&mut c, "SET k v EX 9999999999999999", invalid);
    assert_err(
        &mut c,
        "SET k v EX abc",
        "ERR value is not an integer or out of range",
    );
    assert_err(
        &mut c,
        "SET k v PX 1.5",
        "ERR value is not an integer or out of range",
    );
    assert_err(&mut c, "SET k v EX", "ERR syntax error");
    assert_err(&mut c, "SET k v EX 10 PX 100", "ERR syntax error");
    assert_err(&mut c, "SET k v KEEPTTL EX 10", "ERR syntax error");
    assert_err(&mut c, "SET k v EXAT 10 PXAT 10", "ERR syntax error");
    // Failed SETs changed nothing.
    assert_reply(&mut c, "GET k", bulk("v5"));
}

fn set_variants(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "SETNX k v", int(1));
    assert_reply(&mut c, "SETNX k w", int(0));
    assert_reply(&mut c, "GET k", bulk("v"));
    assert_err(
        &mut c,
        "SETNX k",
        "ERR wrong number of arguments for 'setnx' command",
    );

    assert_reply(&mut c, "SETEX e 100 v", ok());
    let ttl = as_int(&q(&mut c, "TTL e"));
    assert!((99..=100).contains(&ttl), "{ttl}");
    assert_reply(&mut c, "GET e", bulk("v"));
    assert_err(
        &mut c,
        "SETEX e 0 v",
        "ERR invalid expire time in 'setex' command",
    );
    assert_err(
        &mut c,
        "SETEX e -3 v",
        "ERR invalid expire time in 'setex' command",
    );
    assert_err(
        &mut c,
        "SETEX e x v",
        "ERR value is not an integer or out of range",
    );
    assert_err(
        &mut c,
        "SETEX e 10",
        "ERR wrong number of arguments for 'setex' command",
    );

    assert_reply(&mut c, "PSETEX p 100000 v", ok());
    let pttl = as_int(&q(&mut c, "PTTL p"));
    assert!((95_000..=100_000).contains(&pttl), "{pttl}");
    assert_err(
        &mut c,
        "PSETEX p 0 v",
        "ERR invalid expire time in 'psetex' command",
    );
    assert_err(
        &mut c,
        "PSETEX p -5 v",
        "ERR invalid expire time in 'psetex' command",
    );

    assert_reply(&mut c, "GETSET g new", nil());
    assert_reply(&mut c, "GETSET g newer", bulk("new"));
    assert_reply(&mut c, "GET g", bulk("newer"));
    // GETSET clears a TTL, like SET.
    assert_reply(&mut c, "GETSET e fresh", bulk("v"));
    assert_reply(&mut c, "TTL e", int(-1));

    assert_reply(&mut c, "GETDEL g", bulk("newer"));
    assert_reply(&mut c, "GETDEL g", nil());
    assert_reply(&mut c, "EXISTS g", int(0));
    assert_err(
        &mut c,
        "GETDEL",
        "ERR wrong number of arguments for 'getdel' command",
    );
}

fn getex(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "GETEX missing", nil());
    assert_reply(&mut c, "GETEX missing EX 10", nil());
    assert_reply(&mut c, "EXISTS missing", int(0));
    assert_reply(&mut c, "SET k v", ok());
    assert_reply(&mut c, "GETEX k", bulk("v"));
    assert_reply(&mut c, "TTL k", int(-1));
    assert_reply(&mut c, "GETEX k EX 100", bulk("v"));
    let ttl = as_int(&q(&mut c, "TTL k"));
    assert!((99..=100).contains(&ttl), "{ttl}");
    assert_reply(&mut c, "GETEX k PX 200000", bulk("v"));
    let ttl = as_int(&q(&mut c, "TTL k"));
    assert!((199..=200).contains(&ttl), "{ttl}");
    let at = unix_secs() + 500;
    assert_reply(&mut c, &format!("GETEX k EXAT {at}"), bulk("v"));
    assert_reply(&mut c, "EXPIRETIME k", int(at));
    let pat = unix_ms() + 600_000;
    assert_reply(&mut c, &format!("GETEX k PXAT {pat}"), bulk("v"));
    assert_reply(&mut c, "PEXPIRETIME k", int(pat));
    assert_reply(&mut c, "GETEX k PERSIST", bulk("v"));
    assert_reply(&mut c, "TTL k", int(-1));
    // An EXAT in the past deletes the key, after returning it.
    assert_reply(&mut c, "GETEX k EXAT 1", bulk("v"));
    assert_reply(&mut c, "EXISTS k", int(0));

    assert_reply(&mut c, "SET k v", ok());
    assert_err(
        &mut c,
        "GETEX k EX 0",
        "ERR invalid expire time in 'getex' command",
    );
    assert_err(
        &mut c,
        "GETEX k PX -1",
        "ERR invalid expire time in 'getex' command",
    );
    assert_err(
        &mut c,
        "GETEX k EX abc",
        "ERR value is not an integer or out of range",
    );
    assert_err(&mut c, "GETEX k EX 10 PX 10", "ERR syntax error");
    assert_err(&mut c, "GETEX k EX 10 PERSIST", "ERR syntax error");
    assert_err(&mut c, "GETEX k EX", "ERR syntax error");
    assert_err(&mut c, "GETEX k FOO", "ERR syntax error");
    assert_reply(&mut c, "TTL k", int(-1));
    assert_err(
        &mut c,
        "GETEX",
        "ERR wrong number of arguments for 'getex' command",
    );
}

fn mget_mset_msetnx(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let n = 40;
    // MSET over many keys (spread over the cores) and MGET back in order.
    let mut mset = vec!["MSET".to_string()];
    for i in 0..n {
        mset.push(format!("m:{i}"));
        mset.push(format!("val{i}"));
    }
    assert_eq!(run(&mut c, &mset), ok());
    let mut mget = vec!["MGET".to_string()];
    let mut want = Vec::new();
    for i in (0..n).rev() {
        mget.push(format!("m:{i}"));
        want.push(bulk(format!("val{i}")));
        mget.push(format!("nokey:{i}"));
        want.push(nil());
    }
    assert_eq!(run(&mut c, &mget), arr(want));
    for i in 0..n {
        assert_eq!(q(&mut c, &format!("GET m:{i}")), bulk(format!("val{i}")));
    }
    // Repeated keys: the last value wins in MSET, MGET repeats.
    assert_reply(&mut c, "MSET dup 1 dup 2 dup 3", ok());
    assert_reply(
        &mut c,
        "MGET dup dup m:0",
        arr(vec![bulk("3"), bulk("3"), bulk("val0")]),
    );
    // Hash tags keep keys together; they work like any keys.
    assert_reply(&mut c, "MSET {user1}.a A {user1}.b B {user2}.c C", ok());
    assert_reply(
        &mut c,
        "MGET {user1}.a {user2}.c {user1}.b {user3}.x",
        arr(vec![bulk("A"), bulk("C"), bulk("B"), nil()]),
    );
    // MSET clears TTLs.
    assert_reply(&mut c, "EXPIRE m:3 100", int(1));
    assert_reply(&mut c, "MSET m:3 x m:4 y", ok());
    assert_reply(&mut c, "TTL m:3", int(-1));

    assert_err(
        &mut c,
        "MSET a",
        "ERR wrong number of arguments for 'mset' command",
    );
    assert_err(
        &mut c,
        "MSET a 1 b",
        "ERR wrong number of arguments for 'mset' command",
    );
    assert_err(
        &mut c,
        "MGET",
        "ERR wrong number of arguments for 'mget' command",
    );

    // MSETNX: all or nothing, across cores.
    let mut msetnx = vec!["MSETNX".to_string()];
    for i in 0..n {
        msetnx.push(format!("nx:{i}"));
        msetnx.push(format!("{i}"));
    }
    assert_eq!(run(&mut c, &msetnx), int(1));
    assert_reply(&mut c, "GET nx:17", bulk("17"));
    // One existing key among many new ones: nothing is set.
    let mut blocked = vec!["MSETNX".to_string()];
    for i in 0..n {
        blocked.push(format!("nx2:{i}"));
        blocked.push("x".to_string());
    }
    blocked.push("nx:5".to_string());
    blocked.push("x".to_string());
    assert_eq!(run(&mut c, &blocked), int(0));
    let mut check = vec!["EXISTS".to_string()];
    check.extend((0..n).map(|i| format!("nx2:{i}")));
    assert_eq!(run(&mut c, &check), int(0));
    assert_reply(&mut c, "GET nx:5", bulk("5"));
    assert_err(
        &mut c,
        "MSETNX a 1 b",
        "ERR wrong number of arguments for 'msetnx' command",
    );
}

fn append_strlen_ranges(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "APPEND a Hello", int(5));
    assert_eq!(run(&mut c, &["APPEND", "a", " World"]), int(11));
    assert_reply(&mut c, "GET a", bulk("Hello World"));
    assert_reply(&mut c, "STRLEN a", int(11));
    assert_reply(&mut c, "STRLEN missing", int(0));
    assert_reply(&mut c, "APPEND a2 xy", int(2));

    assert_reply(&mut c, "GETRANGE a 0 4", bulk("Hello"));
    assert_reply(&mut c, "GETRANGE a -5 -1", bulk("World"));
    assert_reply(&mut c, "GETRANGE a 0 -1", bulk("Hello World"));
    assert_reply(&mut c, "GETRANGE a 6 1000", bulk("World"));
    assert_reply(&mut c, "GETRANGE a -100 4", bulk("Hello"));
    assert_reply(&mut c, "GETRANGE a 5 3", bulk(""));
    assert_reply(&mut c, "GETRANGE a 100 200", bulk(""));
    assert_reply(&mut c, "GETRANGE missing 0 -1", bulk(""));
    assert_reply(&mut c, "SUBSTR a 0 4", bulk("Hello"));
    assert_reply(&mut c, "SUBSTR a -5 -1", bulk("World"));
    assert_err(
        &mut c,
        "GETRANGE a x 1",
        "ERR value is not an integer or out of range",
    );
    assert_err(
        &mut c,
        "GETRANGE a 0",
        "ERR wrong number of arguments for 'getrange' command",
    );

    assert_reply(&mut c, "SETRANGE a 6 Redis", int(11));
    assert_reply(&mut c, "GET a", bulk("Hello Redis"));
    assert_reply(&mut c, "SETRANGE a 11 !!", int(13));
    assert_reply(&mut c, "GET a", bulk("Hello Redis!!"));
    // Zero-padded when writing past the end or into a missing key.
    assert_reply(&mut c, "SETRANGE pad 3 x", int(4));
    assert_reply(&mut c, "GET pad", bulk(b"\x00\x00\x00x"));
    // An empty value on a missing key creates nothing.
    assert_eq!(run(&mut c, &["SETRANGE", "none", "5", ""]), int(0));
    assert_reply(&mut c, "EXISTS none", int(0));
    assert_err(&mut c, "SETRANGE a -1 x", "ERR offset is out of range");
    assert_err(
        &mut c,
        "SETRANGE a 536870912 x",
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
    );
    assert_err(
        &mut c,
        "SETRANGE a x y",
        "ERR value is not an integer or out of range",
    );
}

fn incr_decr(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "INCR n", int(1));
    assert_reply(&mut c, "INCR n", int(2));
    assert_reply(&mut c, "GET n", bulk("2"));
    assert_reply(&mut c, "DECR n", int(1));
    assert_reply(&mut c, "DECR fresh", int(-1));
    assert_reply(&mut c, "INCRBY n 10", int(11));
    assert_reply(&mut c, "INCRBY n -20", int(-9));
    assert_reply(&mut c, "DECRBY n 5", int(-14));
    assert_reply(&mut c, "DECRBY n -4", int(-10));
    assert_reply(&mut c, "SET n 41", ok());
    assert_reply(&mut c, "INCR n", int(42));
    // INCR keeps a TTL.
    assert_reply(&mut c, "EXPIRE n 100", int(1));
    assert_reply(&mut c, "INCR n", int(43));
    assert!(as_int(&q(&mut c, "TTL n")) > 0);

    let not_int = "ERR value is not an integer or out of range";
    for bad in [
        "abc",
        "1.5",
        " 1",
        "1 ",
        "01",
        "+1",
        "",
        "99999999999999999999",
    ] {
        assert_eq!(run(&mut c, &["SET", "bad", bad]), ok());
        assert_eq!(
            err_text(&run(&mut c, &["INCR", "bad"])),
            not_int,
            "INCR {bad:?}"
        );
        assert_eq!(run(&mut c, &["GET", "bad"]), bulk(bad), "value kept");
    }
    assert_err(&mut c, "INCRBY n abc", not_int);
    assert_err(&mut c, "DECRBY n 1.0", not_int);
    assert_err(&mut c, "INCRBY n 9223372036854775808", not_int);

    let overflow = "ERR increment or decrement would overflow";
    assert_reply(&mut c, "SET max 9223372036854775807", ok());
    assert_err(&mut c, "INCR max", overflow);
    assert_err(&mut c, "INCRBY max 1", overflow);
    assert_reply(&mut c, "GET max", bulk("9223372036854775807"));
    assert_reply(&mut c, "SET min -9223372036854775808", ok());
    assert_err(&mut c, "DECR min", overflow);
    assert_err(&mut c, "DECRBY min 1", overflow);
    assert_err(&mut c, "INCRBY min -1", overflow);
    assert_reply(&mut c, "DECRBY max 9223372036854775807", int(0));
    assert_err(
        &mut c,
        "DECRBY x -9223372036854775808",
        "ERR decrement would overflow",
    );
    assert_err(
        &mut c,
        "INCR",
        "ERR wrong number of arguments for 'incr' command",
    );
    assert_err(
        &mut c,
        "INCRBY n",
        "ERR wrong number of arguments for 'incrby' command",
    );
}

fn incrbyfloat(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "INCRBYFLOAT f 10.5", bulk("10.5"));
    assert_reply(&mut c, "INCRBYFLOAT f 0.1", bulk("10.6"));
    assert_reply(&mut c, "INCRBYFLOAT f -5", bulk("5.6"));
    assert_reply(&mut c, "GET f", bulk("5.6"));
    assert_reply(&mut c, "SET g 5.0e3", ok());
    assert_reply(&mut c, "INCRBYFLOAT g 2.0e2", bulk("5200"));
    assert_reply(&mut c, "SET i 3", ok());
    assert_reply(&mut c, "INCRBYFLOAT i 1", bulk("4"));
    assert_reply(&mut c, "INCRBY i 1", int(5));
    assert_reply(&mut c, "INCRBYFLOAT h -0.25", bulk("-0.25"));

    assert_err(
        &mut c,
        "INCRBYFLOAT f abc",
        "ERR value is not a valid float",
    );
    assert_reply(&mut c, "SET s hello", ok());
    assert_err(&mut c, "INCRBYFLOAT s 1", "ERR value is not a valid float");
    assert_err(
        &mut c,
        "INCRBYFLOAT f inf",
        "ERR increment would produce NaN or Infinity",
    );
    assert_reply(&mut c, "GET f", bulk("5.6"));
    assert_err(
        &mut c,
        "INCRBYFLOAT f",
        "ERR wrong number of arguments for 'incrbyfloat' command",
    );
}

fn lcs(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "MSET key1 ohmytext key2 mynewtext", ok());
    assert_reply(&mut c, "LCS key1 key2", bulk("mytext"));
    assert_reply(&mut c, "LCS key1 key2 LEN", int(6));
    let idx = q(&mut c, "LCS key1 key2 IDX");
    let pair = |a: i64, b: i64| arr(vec![int(a), int(b)]);
    assert_eq!(
        field(&idx, "matches"),
        arr(vec![
            arr(vec![pair(4, 7), pair(5, 8)]),
            arr(vec![pair(2, 3), pair(0, 1)]),
        ])
    );
    assert_eq!(field(&idx, "len"), int(6));
    let idx = q(&mut c, "LCS key1 key2 IDX MINMATCHLEN 4 WITHMATCHLEN");
    assert_eq!(
        field(&idx, "matches"),
        arr(vec![arr(vec![pair(4, 7), pair(5, 8), int(4)])])
    );
    assert_eq!(field(&idx, "len"), int(6));
    assert_reply(&mut c, "LCS key1 nokey", bulk(""));
    assert_reply(&mut c, "LCS nokey1 nokey2 LEN", int(0));
    assert_err(
        &mut c,
        "LCS key1 key2 LEN IDX",
        "ERR If you want both the length and indexes, please just use IDX.",
    );
    assert_err(&mut c, "LCS key1 key2 FOO", "ERR syntax error");
    assert_err(
        &mut c,
        "LCS key1 key2 IDX MINMATCHLEN x",
        "ERR value is not an integer or out of range",
    );
}

/// LCS over many pairs of keys, so that with two cores some pairs live on different
/// cores; and with hash tags, which keep a pair on one core.
fn lcs_across_keys(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    for i in 0..16 {
        let (a, b) = (format!("lcsA:{i}"), format!("lcsB:{i}"));
        assert_eq!(run(&mut c, &["SET", &a, &format!("ohmy{i}text")]), ok());
        assert_eq!(run(&mut c, &["SET", &b, &format!("my{i}newtext")]), ok());
        assert_eq!(
            run(&mut c, &["LCS", &a, &b]),
            bulk(format!("my{i}text")),
            "{a} {b}"
        );
        assert_eq!(
            run(&mut c, &["LCS", &b, &a, "LEN"]),
            int(6 + i.to_string().len() as i64)
        );
        let (ta, tb) = (format!("{{t{i}}}a"), format!("{{t{i}}}b"));
        assert_eq!(run(&mut c, &["MSET", &ta, "abcdef", &tb, "xbxdxf"]), ok());
        assert_eq!(run(&mut c, &["LCS", &ta, &tb]), bulk("bdf"));
    }
}
