//! List commands through the redis crate (and RESP3 through a raw socket): exact replies
//! and Redis's error texts, WRONGTYPE both ways, LMOVE/RPOPLPUSH/LMPOP whose keys live on
//! different cores, expiry, RENAME/COPY/DUMP/RESTORE, long lists, CONFIG
//! list-max-listpack-size, and replication (full sync and journal).
//! Runs against redis-server too (`BATON_ITEST_REFERENCE=redis-server`), except what is
//! Baton's own.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;

cores_tests!(
    push_pop_and_reads,
    edits_in_the_middle,
    errors_and_wrong_types,
    moves_across_cores,
    resp3_replies,
    keyspace_commands_on_lists,
    long_lists_and_the_node_size,
    replica_holds_the_same_lists,
);

fn strs(items: &[&str]) -> Value {
    arr(items.iter().map(bulk).collect())
}

fn push_pop_and_reads(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "RPUSH l a b c", int(3));
    assert_reply(&mut c, "LPUSH l x y", int(5));
    assert_reply(&mut c, "LRANGE l 0 -1", strs(&["y", "x", "a", "b", "c"]));
    assert_reply(&mut c, "LRANGE l -100 1", strs(&["y", "x"]));
    assert_reply(&mut c, "LRANGE l 4 2", strs(&[]));
    assert_reply(&mut c, "LRANGE missing 0 -1", strs(&[]));
    assert_reply(&mut c, "LLEN l", int(5));
    assert_reply(&mut c, "LLEN missing", int(0));
    assert_reply(&mut c, "LINDEX l 0", bulk("y"));
    assert_reply(&mut c, "LINDEX l -2", bulk("b"));
    assert_reply(&mut c, "LINDEX l 5", nil());
    assert_reply(&mut c, "LINDEX missing 0", nil());
    assert_reply(&mut c, "LPOP l", bulk("y"));
    assert_reply(&mut c, "RPOP l", bulk("c"));
    assert_reply(&mut c, "LPOP l 2", strs(&["x", "a"]));
    assert_reply(&mut c, "LPOP l 0", strs(&[]));
    assert_reply(&mut c, "LPOP missing", nil());
    assert_reply(&mut c, "LPOP missing 3", Value::Nil);
    assert_reply(&mut c, "RPOP l 9223372036854775807", strs(&["b"]));
    assert_reply(&mut c, "EXISTS l", int(0));
    assert_reply(&mut c, "LPUSHX l a", int(0));
    assert_reply(&mut c, "RPUSHX l a", int(0));
    assert_reply(&mut c, "RPUSH l a", int(1));
    assert_reply(&mut c, "LPUSHX l b c", int(3));
    assert_reply(&mut c, "RPUSHX l d", int(4));
    assert_reply(&mut c, "LRANGE l 0 -1", strs(&["c", "b", "a", "d"]));
    // Binary elements and empty ones.
    run(&mut c, &["RPUSH", "bin", "", "\r\n\0x"]);
    assert_eq!(
        run(&mut c, &["LRANGE", "bin", "0", "-1"]),
        strs(&["", "\r\n\0x"])
    );
}

fn edits_in_the_middle(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "RPUSH l a b a c a", int(5));
    assert_reply(&mut c, "LPOS l a", int(0));
    assert_reply(&mut c, "LPOS l a RANK 2", int(2));
    assert_reply(&mut c, "LPOS l a RANK -1", int(4));
    assert_reply(
        &mut c,
        "LPOS l a COUNT 0",
        arr(vec![int(0), int(2), int(4)]),
    );
    assert_reply(
        &mut c,
        "LPOS l a RANK -2 COUNT 5",
        arr(vec![int(2), int(0)]),
    );
    assert_reply(
        &mut c,
        "LPOS l a COUNT 0 MAXLEN 3",
        arr(vec![int(0), int(2)]),
    );
    assert_reply(&mut c, "LPOS l z", nil());
    assert_reply(&mut c, "LPOS l z COUNT 2", arr(vec![]));
    assert_reply(&mut c, "LPOS missing z COUNT 2", arr(vec![]));
    assert_reply(&mut c, "LINSERT l BEFORE c x", int(6));
    assert_reply(&mut c, "LINSERT l after c y", int(7));
    assert_reply(&mut c, "LINSERT l AFTER nope y", int(-1));
    assert_reply(&mut c, "LINSERT missing AFTER a y", int(0));
    assert_reply(
        &mut c,
        "LRANGE l 0 -1",
        strs(&["a", "b", "a", "x", "c", "y", "a"]),
    );
    assert_reply(&mut c, "LSET l 1 B", ok());
    assert_reply(&mut c, "LSET l -1 Z", ok());
    assert_reply(&mut c, "LREM l 1 a", int(1));
    assert_reply(&mut c, "LREM l -1 a", int(1));
    assert_reply(&mut c, "LREM l 0 nope", int(0));
    assert_reply(&mut c, "LREM missing 0 a", int(0));
    assert_reply(&mut c, "LRANGE l 0 -1", strs(&["B", "x", "c", "y", "Z"]));
    assert_reply(&mut c, "LTRIM l 1 -2", ok());
    assert_reply(&mut c, "LRANGE l 0 -1", strs(&["x", "c", "y"]));
    assert_reply(&mut c, "LTRIM missing 0 1", ok());
    assert_reply(&mut c, "LREM l 0 x", int(1));
    assert_reply(&mut c, "LREM l 0 c", int(1));
    assert_reply(&mut c, "LREM l 0 y", int(1));
    assert_reply(&mut c, "EXISTS l", int(0));
    assert_reply(&mut c, "RPUSH l a b", int(2));
    assert_reply(&mut c, "LTRIM l 2 1", ok());
    assert_reply(&mut c, "EXISTS l", int(0));
}

fn errors_and_wrong_types(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "SET str v", ok());
    assert_reply(&mut c, "HSET h f v", int(1));
    assert_reply(&mut c, "RPUSH l a b a", int(3));
    let wrong = "WRONGTYPE Operation against a key holding the wrong kind of value";
    for line in [
        "LPUSH str a",
        "RPUSHX str a",
        "LPOP str",
        "RPOP h 2",
        "LLEN str",
        "LINDEX str 0",
        "LRANGE h 0 1",
        "LSET str 0 x",
        "LINSERT str BEFORE a b",
        "LREM str 0 a",
        "LTRIM str 0 1",
        "LPOS str a",
        "LMOVE str l LEFT LEFT",
        "LMOVE l str LEFT LEFT",
        "RPOPLPUSH l h",
        "LMPOP 2 missing str LEFT",
        "GET l",
        "HGET l f",
        "INCR l",
        "APPEND l x",
    ] {
        assert_err(&mut c, line, wrong);
    }
    assert_reply(&mut c, "LRANGE l 0 -1", strs(&["a", "b", "a"]));
    let not_int = "ERR value is not an integer or out of range";
    for line in [
        "LINDEX l x",
        "LRANGE l 0 x",
        "LTRIM l x 1",
        "LREM l x a",
        "LSET l x v",
        "LPOS l a RANK x",
    ] {
        assert_err(&mut c, line, not_int);
    }
    assert_err(
        &mut c,
        "LPOP l -1",
        "ERR value is out of range, must be positive",
    );
    assert_err(
        &mut c,
        "RPOP l x",
        "ERR value is out of range, must be positive",
    );
    assert_err(
        &mut c,
        "LPOP l 1 2",
        "ERR wrong number of arguments for 'lpop' command",
    );
    assert_err(
        &mut c,
        "LPUSH l",
        "ERR wrong number of arguments for 'lpush' command",
    );
    assert_err(&mut c, "LSET l 5 x", "ERR index out of range");
    assert_err(&mut c, "LSET missing 0 x", "ERR no such key");
    assert_err(&mut c, "LINSERT l MIDDLE a b", "ERR syntax error");
    assert_err(&mut c, "LMOVE l m UP LEFT", "ERR syntax error");
    assert_err(&mut c, "LPOS l a RANK", "ERR syntax error");
    assert_err(&mut c, "LPOS l a FOO 1", "ERR syntax error");
    assert_err(&mut c, "LPOS l a RANK 0", "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list");
    assert_err(&mut c, "LPOS l a COUNT -1", "ERR COUNT can't be negative");
    assert_err(&mut c, "LPOS l a MAXLEN -1", "ERR MAXLEN can't be negative");
    assert_err(
        &mut c,
        "LMPOP 0 l LEFT",
        "ERR numkeys should be greater than 0",
    );
    assert_err(
        &mut c,
        "LMPOP x l LEFT",
        "ERR numkeys should be greater than 0",
    );
    assert_err(&mut c, "LMPOP 2 l LEFT", "ERR syntax error");
    assert_err(&mut c, "LMPOP 1 l MIDDLE", "ERR syntax error");
    assert_err(&mut c, "LMPOP 1 l LEFT COUNT", "ERR syntax error");
    assert_err(
        &mut c,
        "LMPOP 1 l LEFT COUNT 0",
        "ERR count should be greater than 0",
    );
    assert_err(&mut c, "LMPOP 1 l LEFT COUNT 1 COUNT 1", "ERR syntax error");
    assert_reply(&mut c, "LRANGE l 0 -1", strs(&["a", "b", "a"]));
}

fn moves_across_cores(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    // Many key pairs, so that with two cores most pairs live on different ones.
    for i in 0..16 {
        let (src, dst) = (format!("src{i}"), format!("dst{i}"));
        run(&mut c, &["RPUSH", &src, "a", "b", "c"]);
        assert_eq!(
            run(&mut c, &["LMOVE", &src, &dst, "LEFT", "RIGHT"]),
            bulk("a")
        );
        assert_eq!(
            run(&mut c, &["LMOVE", &src, &dst, "RIGHT", "LEFT"]),
            bulk("c")
        );
        assert_eq!(run(&mut c, &["RPOPLPUSH", &src, &dst]), bulk("b"));
        assert_eq!(run(&mut c, &["EXISTS", &src]), int(0));
        assert_eq!(
            run(&mut c, &["LRANGE", &dst, "0", "-1"]),
            strs(&["b", "c", "a"])
        );
        assert_eq!(run(&mut c, &["RPOPLPUSH", &src, &dst]), nil());
        run(&mut c, &["SET", &src, "x"]);
        assert_err(
            &mut c,
            &format!("LMOVE {dst} {src} LEFT LEFT"),
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        );
        assert_eq!(run(&mut c, &["LLEN", &dst]), int(3), "nothing popped");
        assert_eq!(
            run(
                &mut c,
                &[
                    "LMPOP",
                    "3",
                    &format!("none{i}"),
                    &dst,
                    &src,
                    "RIGHT",
                    "COUNT",
                    "2"
                ]
            ),
            arr(vec![bulk(&dst), strs(&["a", "c"])])
        );
        assert_err(
            &mut c,
            &format!("LMPOP 2 none{i} {src} LEFT"),
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        );
        assert_eq!(
            run(
                &mut c,
                &[
                    "LMPOP",
                    "2",
                    &format!("none{i}"),
                    &format!("nix{i}"),
                    "LEFT"
                ]
            ),
            Value::Nil
        );
    }
    // A rotation of a one-element list keeps it and its TTL.
    run(&mut c, &["RPUSH", "one", "x"]);
    run(&mut c, &["EXPIRE", "one", "1000"]);
    assert_reply(&mut c, "LMOVE one one LEFT RIGHT", bulk("x"));
    assert!(as_int(&q(&mut c, "TTL one")) > 900);
    // Inside MULTI too.
    assert_reply(&mut c, "RPUSH q1 a b", int(2));
    assert_reply(&mut c, "MULTI", ok());
    assert_reply(&mut c, "LMOVE q1 q2 LEFT LEFT", simple("QUEUED"));
    assert_reply(&mut c, "LMPOP 2 q0 q1 LEFT", simple("QUEUED"));
    assert_eq!(
        q(&mut c, "EXEC"),
        arr(vec![bulk("a"), arr(vec![bulk("q1"), strs(&["b"])])])
    );
    assert_reply(&mut c, "LRANGE q2 0 -1", strs(&["a"]));
}

fn resp3_replies(cores: usize) {
    let s = Server::start(cores);
    let mut r = s.raw();
    r.call(&["HELLO", "3"]);
    r.call(&["RPUSH", "l", "a", "b"]);
    r.send_command(&["LPOP", "missing"]);
    r.expect(b"_\r\n");
    r.send_command(&["LPOP", "missing", "2"]);
    r.expect(b"_\r\n");
    r.send_command(&["LMPOP", "1", "missing", "LEFT"]);
    r.expect(b"_\r\n");
    r.send_command(&["LPOS", "l", "z"]);
    r.expect(b"_\r\n");
    r.send_command(&["LPOP", "l", "1"]);
    r.expect(b"*1\r\n$1\r\na\r\n");
    r.send_command(&["LMPOP", "1", "l", "RIGHT"]);
    r.expect(b"*2\r\n$1\r\nl\r\n*1\r\n$1\r\nb\r\n");
    // RESP2: the missing aggregates are *-1.
    let mut r2 = s.raw();
    r2.send_command(&["LPOP", "missing", "0"]);
    r2.expect(b"*-1\r\n");
    r2.send_command(&["LMPOP", "1", "missing", "LEFT"]);
    r2.expect(b"*-1\r\n");
}

fn keyspace_commands_on_lists(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "RPUSH l a b c", int(3));
    assert_reply(&mut c, "TYPE l", simple("list"));
    assert_reply(&mut c, "OBJECT ENCODING l", bulk("quicklist"));
    assert!(as_int(&q(&mut c, "MEMORY USAGE l")) > 0);
    assert_reply(&mut c, "SET str v", ok());
    let scan = as_array(&q(&mut c, "SCAN 0 TYPE list COUNT 1000"));
    let mut keys = as_strings(&scan[1]);
    keys.sort();
    if as_str(&scan[0]) == "0" {
        assert_eq!(keys, ["l"]);
    }
    assert_reply(&mut c, "EXPIRE l 100", int(1));
    assert_reply(&mut c, "RPUSH l d", int(4));
    assert!(as_int(&q(&mut c, "TTL l")) > 0, "a push keeps the TTL");
    for i in 0..8 {
        let (dst, cp) = (format!("dst{i}"), format!("copy{i}"));
        assert_eq!(run(&mut c, &["COPY", "l", &cp]), int(1));
        assert_eq!(run(&mut c, &["RENAME", &cp, &dst]), ok());
        assert_eq!(run(&mut c, &["TYPE", &dst]), simple("list"));
        assert_eq!(
            run(&mut c, &["LRANGE", &dst, "0", "-1"]),
            strs(&["a", "b", "c", "d"])
        );
        assert!(as_int(&run(&mut c, &["TTL", &dst])) > 0);
    }
    let dump = run(&mut c, &["DUMP", "l"]);
    let Value::BulkString(payload) = dump else {
        panic!("{dump:?}")
    };
    let mut cmd = redis::cmd("RESTORE");
    cmd.arg("restored").arg(0).arg(payload.as_slice());
    let v: Value = cmd.query(&mut c).expect("RESTORE");
    assert_eq!(v, ok());
    assert_reply(&mut c, "LRANGE restored 0 -1", strs(&["a", "b", "c", "d"]));
    assert_reply(&mut c, "PEXPIRE l 30", int(1));
    assert!(
        eventually(Duration::from_secs(5), || as_int(&q(&mut c, "EXISTS l"))
            == 0),
        "an expired list goes"
    );
    assert_reply(&mut c, "LLEN l", int(0));
}

fn long_lists_and_the_node_size(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let cfg = |c: &mut redis::Connection, name: &str| as_strings(&run(c, &["CONFIG", "GET", name]));
    assert_eq!(
        cfg(&mut c, "list-max-listpack-size"),
        ["list-max-listpack-size", "-2"]
    );
    assert_eq!(
        cfg(&mut c, "list-max-ziplist-size"),
        ["list-max-ziplist-size", "-2"]
    );
    assert_reply(&mut c, "CONFIG SET list-max-ziplist-size 16", ok());
    assert_eq!(
        cfg(&mut c, "list-max-listpack-size"),
        ["list-max-listpack-size", "16"]
    );
    assert_reply(&mut c, "CONFIG SET list-max-listpack-size -2", ok());
    // 20,000 elements pushed at both ends, in batches.
    for b in 0..100 {
        let mut left = vec!["LPUSH".to_string(), "big".into()];
        let mut right = vec!["RPUSH".to_string(), "big".into()];
        for i in 0..100 {
            left.push(format!("l{}", b * 100 + i));
            right.push(format!("r{}", b * 100 + i));
        }
        run(&mut c, &left);
        run(&mut c, &right);
    }
    assert_reply(&mut c, "LLEN big", int(20_000));
    assert_reply(&mut c, "OBJECT ENCODING big", bulk("quicklist"));
    assert_reply(&mut c, "LINDEX big 0", bulk("l9999"));
    assert_reply(&mut c, "LINDEX big 10000", bulk("r0"));
    assert_reply(&mut c, "LINDEX big -1", bulk("r9999"));
    assert_reply(
        &mut c,
        "LRANGE big 9998 10001",
        strs(&["l1", "l0", "r0", "r1"]),
    );
    assert_reply(&mut c, "LPOS big r5000", int(15_000));
    assert_reply(&mut c, "LSET big 15000 mid", ok());
    assert_reply(&mut c, "LINDEX big 15000", bulk("mid"));
    assert_reply(&mut c, "LPOP big 3", strs(&["l9999", "l9998", "l9997"]));
    assert_reply(&mut c, "RPOP big 2", strs(&["r9999", "r9998"]));
    assert_reply(&mut c, "LTRIM big 100 -101", ok());
    assert_reply(&mut c, "LLEN big", int(19_795));
    assert_reply(&mut c, "LINDEX big 0", bulk("l9896"));
    let popped = as_array(&q(&mut c, "RPOP big 100000"));
    assert_eq!(popped.len(), 19_795);
    assert_eq!(popped[0], bulk("r9897"));
    assert_reply(&mut c, "EXISTS big", int(0));
}

/// Every list of a server: key -> (TTL set, elements).
fn lists(s: &Server) -> BTreeMap<String, (bool, Vec<String>)> {
    let mut c = s.redis();
    let mut out = BTreeMap::new();
    for k in as_strings(&q(&mut c, "KEYS *")) {
        if run(&mut c, &["TYPE", &k]) != simple("list") {
            continue;
        }
        let ttl = as_int(&run(&mut c, &["PTTL", &k])) > 0;
        let items = as_strings(&run(&mut c, &["LRANGE", &k, "0", "-1"]));
        out.insert(k, (ttl, items));
    }
    out
}

fn replica_holds_the_same_lists(cores: usize) {
    if !baton_only("Baton's replication flows") {
        return;
    }
    let p = Server::start(cores);
    let r = Server::start(3 - cores);
    let mut c = p.redis();
    // Before the link: what the snapshot carries, short and long lists.
    for i in 0..20 {
        run(
            &mut c,
            &["RPUSH", &format!("small{i}"), "a", &i.to_string()],
        );
    }
    for j in 0..30 {
        let batch: Vec<String> = (0..100).map(|k| format!("e{}", j * 100 + k)).collect();
        let mut args = vec!["RPUSH".to_string(), "big".into()];
        args.extend(batch);
        run(&mut c, &args);
    }
    run(&mut c, &["EXPIRE", "small3", "1000"]);
    let mut rc = r.redis();
    assert_reply(&mut rc, &format!("REPLICAOF 127.0.0.1 {}", p.port), ok());
    let same = |what: &str| {
        let mut last = (BTreeMap::new(), BTreeMap::new());
        let ok = eventually(Duration::from_secs(20), || {
            last = (lists(&p), lists(&r));
            last.0 == last.1
        });
        assert!(
            ok,
            "{what}: primary {} lists, replica {}\nreplica stderr:\n{}",
            last.0.len(),
            last.1.len(),
            r.stderr()
        );
    };
    same("after the full sync");
    // After the link: what the journal carries.
    run(&mut c, &["LPUSH", "big", "h1", "h2"]);
    run(&mut c, &["RPOP", "big", "5"]);
    run(&mut c, &["LPOP", "big"]);
    run(&mut c, &["LSET", "big", "100", "changed"]);
    run(&mut c, &["LINSERT", "small1", "AFTER", "a", "ins"]);
    run(&mut c, &["LREM", "small2", "0", "a"]);
    run(&mut c, &["LTRIM", "big", "10", "-10"]);
    // LINSERT and LREM on the chunked list travel as their outcomes.
    run(&mut c, &["LINSERT", "big", "BEFORE", "e1500", "ib"]);
    run(&mut c, &["RPUSH", "big", "dup", "x", "dup", "dup"]);
    run(&mut c, &["LREM", "big", "-2", "dup"]);
    run(&mut c, &["LREM", "big", "0", "e1200"]);
    run(&mut c, &["LMOVE", "small4", "moved", "LEFT", "RIGHT"]);
    run(
        &mut c,
        &["LMPOP", "2", "none", "small5", "RIGHT", "COUNT", "9"],
    );
    run(&mut c, &["RENAME", "small6", "renamed6"]);
    run(&mut c, &["COPY", "big", "bigcopy"]);
    run(&mut c, &["RPUSH", "fresh", "x"]);
    same("after journal writes");
    let got = lists(&r);
    let big = &got["big"].1;
    assert_eq!(big.len(), 3000 + 2 - 6 - 19 + 1 + 4 - 2 - 1);
    assert_eq!(big[90], "changed");
    let ib = big.iter().position(|e| e == "ib").expect("the insert");
    assert_eq!(big[ib + 1], "e1500");
    assert!(!big.iter().any(|e| e == "e1200"));
    assert_eq!(big[big.len() - 2..], ["dup", "x"].map(String::from));
    assert_eq!(got["small1"].1, ["a", "ins", "1"]);
    assert!(got["small3"].0, "the TTL came along");
    assert!(!got.contains_key("small5"));
    assert_eq!(got["moved"].1, ["a"]);
}

#[test]
fn command_info_and_getkeys_of_lmpop() {
    let s = Server::start(1);
    let mut c = s.redis();
    let info = as_array(&as_array(&q(&mut c, "COMMAND INFO lmpop"))[0]);
    assert_eq!(info[1], int(-4));
    assert!(
        as_strings(&info[2]).contains(&"movablekeys".to_string()),
        "{:?}",
        info[2]
    );
    assert_eq!(&info[3..6], &[int(0), int(0), int(0)]);
    assert_reply(
        &mut c,
        "COMMAND GETKEYS LMPOP 2 a b LEFT",
        strs(&["a", "b"]),
    );
    assert_reply(
        &mut c,
        "COMMAND GETKEYS LMOVE a b LEFT LEFT",
        strs(&["a", "b"]),
    );
}

/// MIGRATE carries a list (short and long) to another server through its DUMP payload,
/// TTL included, and removes it here.
#[test]
fn migrate_moves_lists() {
    let a = Server::start(2);
    let b = Server::start(1);
    let mut c = a.redis();
    run(&mut c, &["RPUSH", "short", "a", "b"]);
    run(&mut c, &["EXPIRE", "short", "1000"]);
    let long: Vec<String> = (0..3000).map(|i| format!("e{i}")).collect();
    let mut args = vec!["RPUSH".to_string(), "long".into()];
    args.extend(long.iter().cloned());
    run(&mut c, &args);
    let port = b.port.to_string();
    for key in ["short", "long"] {
        assert_eq!(
            run(&mut c, &["MIGRATE", "127.0.0.1", &port, key, "0", "5000"]),
            ok(),
            "{key}"
        );
        assert_eq!(run(&mut c, &["EXISTS", key]), int(0));
    }
    let mut d = b.redis();
    assert_reply(&mut d, "LRANGE short 0 -1", strs(&["a", "b"]));
    assert!(as_int(&q(&mut d, "TTL short")) > 900);
    assert_eq!(as_strings(&q(&mut d, "LRANGE long 0 -1")), long);
}
