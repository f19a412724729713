//! The blocking pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX,
//! BZMPOP) through the redis crate and raw sockets: immediate answers, timeouts, Redis's
//! errors, clients woken by pushes from other connections (keys on either core with two
//! cores), by LMOVE, ZADD, MULTI/EXEC, RESTORE, RENAME and COPY, served in order of
//! arrival, a woken client that finds nothing and keeps waiting, CLIENT UNBLOCK, a client
//! that disconnects while blocked, MULTI, RESP3, INFO's blocked_clients and CLIENT LIST's
//! `b` flag. Runs against redis-server too (`BATON_ITEST_REFERENCE=redis-server`).

mod common;

use std::thread;
use std::time::Duration;

use baton_engine::exec::Router;
use common::*;

cores_tests!(
    data_present_answers_at_once,
    timeouts_and_errors,
    woken_by_a_push_on_either_core,
    woken_by_moves_transactions_and_keyspace_commands,
    served_in_order_of_arrival,
    a_woken_client_that_finds_nothing_keeps_waiting,
    client_unblock,
    disconnect_while_blocked_pops_nothing,
    inside_multi_nothing_blocks,
    resp3_replies,
    blocked_clients_are_listed,
    a_replica_refuses_them_as_writes,
    a_replica_follows_what_blocked_clients_popped,
);

/// How long a test waits for the server to see a client blocked (bounded retries).
const SETTLE: Duration = Duration::from_secs(20);

/// Two keys that live on different cores of a two-core server.
fn apart(prefix: &str) -> (String, String) {
    let r = Router::standalone(0, 2);
    let a = format!("{prefix}a");
    let b = (0..)
        .map(|i| format!("{prefix}b{i}"))
        .find(|k| r.core_of(k.as_bytes()) != r.core_of(a.as_bytes()))
        .expect("some key lands on the other core");
    (a, b)
}

fn strs(items: &[&str]) -> Value {
    arr(items.iter().map(bulk).collect())
}

fn blocked_clients(c: &mut redis::Connection) -> i64 {
    let info = as_str(&q(c, "INFO clients"));
    info.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1)
}

/// Waits until the server counts `n` blocked clients.
#[track_caller]
fn await_blocked(c: &mut redis::Connection, n: i64) {
    assert!(
        eventually(SETTLE, || blocked_clients(c) == n),
        "blocked_clients never became {n} (is {})",
        blocked_clients(c)
    );
}

/// Runs `words` on a connection of its own, on a thread; join it for the reply.
fn spawn(s: &Server, words: &[&str]) -> thread::JoinHandle<Value> {
    let mut c = s.redis();
    let args: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    thread::spawn(move || run(&mut c, &args))
}

/// Starts `words` on its own connection and waits until the server sees it blocked
/// (`before` clients were blocked already).
#[track_caller]
fn block(
    s: &Server,
    c: &mut redis::Connection,
    before: i64,
    words: &[&str],
) -> thread::JoinHandle<Value> {
    let h = spawn(s, words);
    await_blocked(c, before + 1);
    h
}

fn data_present_answers_at_once(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let (a, b) = apart("now");
    run(&mut c, &["RPUSH", &b, "1", "2", "3"]);
    assert_eq!(run(&mut c, &["BLPOP", &a, &b, "0"]), strs(&[&b, "1"]));
    assert_eq!(run(&mut c, &["BRPOP", &a, &b, "0"]), strs(&[&b, "3"]));
    assert_eq!(
        run(&mut c, &["BLMOVE", &b, &a, "LEFT", "RIGHT", "0"]),
        bulk("2")
    );
    assert_eq!(run(&mut c, &["BRPOPLPUSH", &a, &b, "0"]), bulk("2"));
    run(&mut c, &["RPUSH", &b, "x", "y", "z"]);
    assert_eq!(
        run(&mut c, &["BLMPOP", "0", "2", &a, &b, "RIGHT", "COUNT", "2"]),
        arr(vec![bulk(&b), strs(&["z", "y"])])
    );
    run(&mut c, &["ZADD", &a, "1", "m1", "2", "m2", "3", "m3"]);
    assert_eq!(
        run(&mut c, &["BZPOPMIN", "nowz", &a, "0"]),
        arr(vec![bulk(&a), bulk("m1"), bulk("1")])
    );
    assert_eq!(
        run(&mut c, &["BZPOPMAX", &a, "0"]),
        arr(vec![bulk(&a), bulk("m3"), bulk("3")])
    );
    assert_eq!(
        run(&mut c, &["BZMPOP", "0", "1", &a, "MIN"]),
        arr(vec![bulk(&a), arr(vec![strs(&["m2", "2"])])])
    );
    // A wrong type is an error at once, as with the non-blocking forms.
    run(&mut c, &["SET", &a, "str"]);
    assert_err(
        &mut c,
        &format!("BLPOP {a} 0"),
        "WRONGTYPE Operation against a key holding the wrong kind of value",
    );
    assert_err(
        &mut c,
        &format!("BZPOPMIN {a} 0"),
        "WRONGTYPE Operation against a key holding the wrong kind of value",
    );
    assert_err(
        &mut c,
        &format!("BLMOVE {b} {a} LEFT LEFT 0"),
        "WRONGTYPE Operation against a key holding the wrong kind of value",
    );
    assert_eq!(
        run(&mut c, &["LRANGE", &b, "0", "-1"]),
        strs(&["2", "x"]),
        "nothing was popped"
    );
}

fn timeouts_and_errors(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    for line in [
        "BLPOP none1 none2 0.05",
        "BRPOP none1 0.01",
        "BLMOVE none1 d LEFT LEFT 0.01",
        "BRPOPLPUSH none1 d 0.01",
        "BLMPOP 0.01 2 none1 none2 LEFT",
        "BZPOPMIN none1 0.01",
        "BZPOPMAX none1 0.01",
        "BZMPOP 0.01 1 none1 MAX COUNT 3",
    ] {
        assert_eq!(q(&mut c, line), Value::Nil, "{line}");
    }
    assert_eq!(q(&mut c, "EXISTS d"), int(0));
    let nf = "ERR timeout is not a float or out of range";
    assert_err(&mut c, "BLPOP k abc", nf);
    assert_err(&mut c, "BLPOP k nan", nf);
    assert_err(&mut c, "BLPOP k 1e3x", nf);
    assert_err(&mut c, "BLMPOP x 1 k LEFT", nf);
    assert_err(&mut c, "BZMPOP x 1 k MIN", nf);
    assert_err(&mut c, "BRPOPLPUSH a b x", nf);
    assert_err(&mut c, "BLPOP k -1", "ERR timeout is negative");
    assert_err(&mut c, "BZPOPMIN k -0.5", "ERR timeout is negative");
    assert_err(&mut c, "BLPOP k inf", "ERR timeout is negative");
    assert_err(&mut c, "BLMOVE a b LEFT x 0", "ERR syntax error");
    assert_err(&mut c, "BLMOVE a b LEFT LEFT x", nf);
    assert_err(
        &mut c,
        "BLMPOP 0 0 a LEFT",
        "ERR numkeys should be greater than 0",
    );
    assert_err(
        &mut c,
        "BLMPOP 0 1 a LEFT COUNT 0",
        "ERR count should be greater than 0",
    );
    assert_err(&mut c, "BLMPOP 0 1 a UP", "ERR syntax error");
    assert_err(
        &mut c,
        "BZMPOP 0 1 a MIN COUNT -1",
        "ERR count should be greater than 0",
    );
    assert_err(
        &mut c,
        "BLPOP k",
        "ERR wrong number of arguments for 'blpop' command",
    );
    assert_err(
        &mut c,
        "BLMPOP 0 1 a",
        "ERR wrong number of arguments for 'blmpop' command",
    );
    assert_err(
        &mut c,
        "BLMOVE a b LEFT LEFT",
        "ERR wrong number of arguments for 'blmove' command",
    );
    // Still serving after all that.
    assert_eq!(q(&mut c, "PING"), simple("PONG"));
}

fn woken_by_a_push_on_either_core(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let (a, b) = apart("push");
    // Several connections, so that with two cores some live on each core; each waits for
    // one key of each core and is woken by a push to one or the other.
    for (i, key) in [&a, &b, &b, &a].into_iter().enumerate() {
        let h = block(&s, &mut c, 0, &["BLPOP", &a, &b, "0"]);
        let v = format!("v{i}");
        run(&mut c, &["RPUSH", key, &v]);
        assert_eq!(h.join().unwrap(), strs(&[key, &v]), "round {i}");
        await_blocked(&mut c, 0);
        assert_eq!(run(&mut c, &["EXISTS", &a, &b]), int(0));
    }
    // Sorted sets: ZADD wakes BZPOPMIN / BZPOPMAX / BZMPOP.
    let h = block(&s, &mut c, 0, &["BZPOPMAX", &a, &b, "0"]);
    run(&mut c, &["ZADD", &b, "7", "seven"]);
    assert_eq!(
        h.join().unwrap(),
        arr(vec![bulk(&b), bulk("seven"), bulk("7")])
    );
    await_blocked(&mut c, 0);
    let h = block(
        &s,
        &mut c,
        0,
        &["BZMPOP", "0", "2", &a, &b, "MIN", "COUNT", "5"],
    );
    run(&mut c, &["ZADD", &a, "1", "one"]);
    assert_eq!(
        h.join().unwrap(),
        arr(vec![bulk(&a), arr(vec![strs(&["one", "1"])])])
    );
    await_blocked(&mut c, 0);
    // A list push does not wake a sorted-set waiter, nor a set a list waiter.
    let h = block(&s, &mut c, 0, &["BZPOPMIN", "zonly", "0"]);
    let h2 = block(&s, &mut c, 1, &["BLPOP", "lonly", "0"]);
    run(&mut c, &["SADD", "lonly", "m"]);
    run(&mut c, &["DEL", "lonly"]);
    run(&mut c, &["RPUSH", "zonly", "x"]);
    run(&mut c, &["DEL", "zonly"]);
    run(&mut c, &["ZADD", "zonly", "2", "z"]);
    run(&mut c, &["RPUSH", "lonly", "l"]);
    assert_eq!(
        h.join().unwrap(),
        arr(vec![bulk("zonly"), bulk("z"), bulk("2")])
    );
    assert_eq!(h2.join().unwrap(), strs(&["lonly", "l"]));
    // BLMPOP with COUNT takes what is there.
    let h = block(
        &s,
        &mut c,
        0,
        &["BLMPOP", "0", "1", &b, "LEFT", "COUNT", "10"],
    );
    run(&mut c, &["RPUSH", &b, "p", "q"]);
    assert_eq!(h.join().unwrap(), arr(vec![bulk(&b), strs(&["p", "q"])]));
}

fn woken_by_moves_transactions_and_keyspace_commands(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let (a, b) = apart("wake");
    // LMOVE into the key a client waits for (the source on the other core).
    run(&mut c, &["RPUSH", &a, "moved"]);
    let h = block(&s, &mut c, 0, &["BLMOVE", &b, &a, "RIGHT", "LEFT", "0"]);
    run(&mut c, &["LMOVE", &a, &b, "LEFT", "LEFT"]);
    assert_eq!(h.join().unwrap(), bulk("moved"));
    assert_eq!(run(&mut c, &["LRANGE", &a, "0", "-1"]), strs(&["moved"]));
    assert_eq!(run(&mut c, &["EXISTS", &b]), int(0));
    // BRPOPLPUSH woken by a MULTI/EXEC that pushes on both cores.
    run(&mut c, &["DEL", &a]);
    let h = block(&s, &mut c, 0, &["BRPOPLPUSH", &b, &a, "0"]);
    assert_eq!(q(&mut c, "MULTI"), ok());
    run(&mut c, &["SET", "other", "1"]);
    run(&mut c, &["RPUSH", &b, "t1", "t2"]);
    assert_eq!(q(&mut c, "EXEC"), arr(vec![ok(), int(2)]));
    assert_eq!(h.join().unwrap(), bulk("t2"));
    assert_eq!(run(&mut c, &["LRANGE", &a, "0", "-1"]), strs(&["t2"]));
    // RESTORE, RENAME and COPY fill a waited key.
    let dump = run(&mut c, &["DUMP", &a]);
    let Value::BulkString(payload) = dump else {
        panic!("DUMP: {dump:?}")
    };
    let h = block(&s, &mut c, 0, &["BLPOP", "restored", "0"]);
    let mut cmd = redis::cmd("RESTORE");
    cmd.arg("restored").arg(0).arg(payload);
    let r: Value = cmd.query(&mut c).expect("RESTORE");
    assert_eq!(r, ok());
    assert_eq!(h.join().unwrap(), strs(&["restored", "t2"]));
    let h = block(&s, &mut c, 0, &["BRPOP", "renamed", "0"]);
    run(&mut c, &["RENAME", &a, "renamed"]);
    assert_eq!(h.join().unwrap(), strs(&["renamed", "t2"]));
    // (b still holds t1: COPY a sorted set of the other core instead.)
    let z = format!("{b}z");
    run(&mut c, &["ZADD", &z, "4", "four"]);
    let h = block(&s, &mut c, 0, &["BZPOPMIN", "copied", "0"]);
    run(&mut c, &["COPY", &z, "copied"]);
    assert_eq!(
        h.join().unwrap(),
        arr(vec![bulk("copied"), bulk("four"), bulk("4")])
    );
    assert_eq!(run(&mut c, &["ZCARD", &z]), int(1), "COPY left the source");
}

fn served_in_order_of_arrival(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let (_, b) = apart("fifo");
    let mut waiting = Vec::new();
    for i in 0..4 {
        waiting.push(block(&s, &mut c, i, &["BLPOP", &b, "0"]));
    }
    run(&mut c, &["RPUSH", &b, "e0", "e1", "e2", "e3"]);
    for (i, h) in waiting.into_iter().enumerate() {
        assert_eq!(
            h.join().unwrap(),
            strs(&[&b, &format!("e{i}")]),
            "client {i}"
        );
    }
    // One element at a time: each push serves the longest waiting client.
    let first = block(&s, &mut c, 0, &["BRPOP", &b, "0"]);
    let second = block(&s, &mut c, 1, &["BRPOP", &b, "0"]);
    run(&mut c, &["RPUSH", &b, "one"]);
    assert_eq!(first.join().unwrap(), strs(&[&b, "one"]));
    await_blocked(&mut c, 1);
    run(&mut c, &["RPUSH", &b, "two"]);
    assert_eq!(second.join().unwrap(), strs(&[&b, "two"]));
}

fn a_woken_client_that_finds_nothing_keeps_waiting(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let (a, _) = apart("again");
    let h = block(&s, &mut c, 0, &["BLPOP", &a, "0"]);
    // The key fills and empties inside one transaction: nothing is left to serve.
    assert_eq!(q(&mut c, "MULTI"), ok());
    run(&mut c, &["RPUSH", &a, "taken"]);
    run(&mut c, &["LPOP", &a]);
    assert_eq!(q(&mut c, "EXEC"), arr(vec![int(1), bulk("taken")]));
    // A string there does not serve a list waiter either.
    run(&mut c, &["SET", &a, "s"]);
    run(&mut c, &["DEL", &a]);
    assert_eq!(blocked_clients(&mut c), 1);
    run(&mut c, &["RPUSH", &a, "kept"]);
    assert_eq!(h.join().unwrap(), strs(&[&a, "kept"]));
    await_blocked(&mut c, 0);
    // A key that turns into a string while the client waits is passed over: a push to
    // its other key serves it.
    let (x, y) = apart("passed");
    let h = block(&s, &mut c, 0, &["BLPOP", &x, &y, "0"]);
    run(&mut c, &["SET", &x, "now a string"]);
    run(&mut c, &["RPUSH", &y, "v"]);
    assert_eq!(h.join().unwrap(), strs(&[&y, "v"]));
}

fn client_unblock(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let mut blocker = s.redis();
    let id = as_int(&q(&mut blocker, "CLIENT ID"));
    let h = thread::spawn(move || (q(&mut blocker, "BLPOP ub 0"), blocker));
    await_blocked(&mut c, 1);
    assert_eq!(run(&mut c, &["CLIENT", "UNBLOCK", &id.to_string()]), int(1));
    let (v, mut blocker) = h.join().unwrap();
    assert_eq!(v, Value::Nil, "TIMEOUT answers as a timeout");
    assert_eq!(
        run(&mut c, &["CLIENT", "UNBLOCK", &id.to_string()]),
        int(0),
        "not blocked"
    );
    let h = thread::spawn(move || q(&mut blocker, "BZPOPMIN ub 0"));
    await_blocked(&mut c, 1);
    assert_eq!(
        run(&mut c, &["CLIENT", "UNBLOCK", &id.to_string(), "ERROR"]),
        int(1)
    );
    let v = h.join().unwrap();
    assert_eq!(
        err_text(&v),
        "UNBLOCKED client unblocked via CLIENT UNBLOCK"
    );
    await_blocked(&mut c, 0);
    assert_err(
        &mut c,
        "CLIENT UNBLOCK x",
        "ERR value is not an integer or out of range",
    );
    assert_err(
        &mut c,
        "CLIENT UNBLOCK 1 foo",
        "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
    );
    assert_eq!(q(&mut c, "CLIENT UNBLOCK 999999"), int(0));
    // The unblocked client was taken off the key's queue: a push stays in the list.
    run(&mut c, &["RPUSH", "ub", "stays"]);
    assert_eq!(run(&mut c, &["LRANGE", "ub", "0", "-1"]), strs(&["stays"]));
}

fn disconnect_while_blocked_pops_nothing(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let (a, b) = apart("gone");
    for key in [&a, &b] {
        let mut raw = s.raw();
        raw.send_command(&["BLPOP", key.as_str(), "0"]);
        await_blocked(&mut c, 1);
        raw.stream().shutdown(std::net::Shutdown::Both).unwrap();
        drop(raw);
        await_blocked(&mut c, 0);
        run(&mut c, &["RPUSH", key, "kept"]);
        assert_eq!(run(&mut c, &["LRANGE", key, "0", "-1"]), strs(&["kept"]));
    }
    // Gone between the block and the push (the server may not have noticed yet): the
    // element still stays, as the pop is refused for a closed connection.
    let mut raw = s.raw();
    raw.send_command(&["BLPOP", "late", "0"]);
    await_blocked(&mut c, 1);
    raw.stream().shutdown(std::net::Shutdown::Both).unwrap();
    drop(raw);
    run(&mut c, &["RPUSH", "late", "x"]);
    await_blocked(&mut c, 0);
    if baton_only("a push right after the disconnect stays") {
        assert_eq!(run(&mut c, &["LRANGE", "late", "0", "-1"]), strs(&["x"]));
    }
}

fn inside_multi_nothing_blocks(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let (a, b) = apart("multi");
    assert_eq!(q(&mut c, "MULTI"), ok());
    for line in [
        format!("BLPOP {a} {b} 0"),
        format!("BLMOVE {a} {b} LEFT LEFT 0"),
        format!("BRPOPLPUSH {a} {b} 0"),
        format!("BLMPOP 0 2 {a} {b} LEFT"),
        format!("BZPOPMIN {a} 0"),
        format!("BZMPOP 0 1 {a} MIN"),
        format!("RPUSH {b} x y"),
        format!("BLPOP {a} {b} 0"),
        format!("BLMOVE {b} {a} LEFT LEFT 0"),
    ] {
        assert_eq!(q(&mut c, &line), simple("QUEUED"));
    }
    assert_eq!(
        q(&mut c, "EXEC"),
        arr(vec![
            Value::Nil,
            Value::Nil,
            Value::Nil,
            Value::Nil,
            Value::Nil,
            Value::Nil,
            int(2),
            strs(&[&b, "x"]),
            bulk("y"),
        ])
    );
    // The null shapes, byte for byte: BLMOVE and BRPOPLPUSH answer a null bulk.
    let mut raw = s.raw();
    raw.send(&encode_command(&["MULTI"]));
    raw.send(&encode_command(&["BLPOP", "none", "0"]));
    raw.send(&encode_command(&[
        "BLMOVE", "none", "d", "LEFT", "LEFT", "0",
    ]));
    raw.send(&encode_command(&["EXEC"]));
    raw.expect(b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n*-1\r\n$-1\r\n");
}

fn resp3_replies(cores: usize) {
    let s = Server::start(cores);
    let mut raw = s.raw();
    raw.send_command(&["HELLO", "3"]);
    let _ = raw.read_value();
    raw.send_command(&["BLPOP", "r3", "0.01"]);
    raw.expect(b"_\r\n");
    raw.send_command(&["BLMOVE", "r3", "d", "LEFT", "LEFT", "0.01"]);
    raw.expect(b"_\r\n");
    raw.send_command(&["ZADD", "z3", "1.5", "m"]);
    raw.expect(b":1\r\n");
    raw.send_command(&["BZPOPMIN", "z3", "0"]);
    raw.expect(b"*3\r\n$2\r\nz3\r\n$1\r\nm\r\n,1.5\r\n");
    raw.send_command(&["BLPOP", "r3", "-1"]);
    raw.expect(b"-ERR timeout is negative\r\n");
    let mut plain = s.raw();
    plain.send_command(&["BLPOP", "r3", "0.01"]);
    plain.expect(b"*-1\r\n");
    plain.send_command(&["BZPOPMIN", "r3", "0.01"]);
    plain.expect(b"*-1\r\n");
}

fn blocked_clients_are_listed(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let mut blocker = s.redis();
    let id = as_int(&q(&mut blocker, "CLIENT ID"));
    let h = thread::spawn(move || q(&mut blocker, "BRPOP listed 0"));
    await_blocked(&mut c, 1);
    let list = as_str(&q(&mut c, "CLIENT LIST"));
    let line = list
        .lines()
        .find(|l| l.starts_with(&format!("id={id} ")))
        .unwrap_or_else(|| panic!("client {id} not in {list}"));
    assert!(line.contains(" flags=b "), "{line}");
    assert!(line.contains(" cmd=brpop "), "{line}");
    run(&mut c, &["LPUSH", "listed", "v"]);
    assert_eq!(h.join().unwrap(), strs(&["listed", "v"]));
    await_blocked(&mut c, 0);
    let list = as_str(&q(&mut c, "CLIENT LIST"));
    assert!(!list.contains(" flags=b "), "{list}");
}

fn a_replica_refuses_them_as_writes(cores: usize) {
    let primary = Server::start(cores);
    let replica = Server::start(cores);
    let mut c = replica.redis();
    let addr = primary.addr();
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    assert_eq!(run(&mut c, &["REPLICAOF", host, port]), ok());
    let readonly = "READONLY You can't write against a read only replica.";
    for line in [
        "BLPOP k 0.01",
        "BRPOP k 0",
        "BLMOVE k d LEFT LEFT 0",
        "BRPOPLPUSH k d 0",
        "BLMPOP 0 1 k LEFT",
        "BZPOPMIN k 0",
        "BZPOPMAX k 0",
        "BZMPOP 0 1 k MIN",
    ] {
        assert_err(&mut c, line, readonly);
    }
    assert_eq!(blocked_clients(&mut c), 0);
}

/// What a blocked client popped reaches a replica as the non-blocking form's effects: the
/// replica ends with the same keys as the primary.
fn a_replica_follows_what_blocked_clients_popped(cores: usize) {
    if !baton_only("Baton's replication flows") {
        return;
    }
    let p = Server::start(cores);
    let r = Server::start(3 - cores);
    let mut c = p.redis();
    let mut rc = r.redis();
    assert_eq!(
        run(&mut rc, &["REPLICAOF", "127.0.0.1", &p.port.to_string()]),
        ok()
    );
    assert!(
        eventually(SETTLE, || as_str(&q(&mut rc, "INFO replication"))
            .contains("master_link_status:up")),
        "the replica never linked"
    );
    let (a, b) = apart("repl");
    let h1 = block(&p, &mut c, 0, &["BLMOVE", &a, &b, "LEFT", "RIGHT", "0"]);
    let h2 = block(&p, &mut c, 1, &["BZPOPMIN", "rz", "0"]);
    let h3 = block(
        &p,
        &mut c,
        2,
        &["BLMPOP", "0", "1", &a, "LEFT", "COUNT", "2"],
    );
    run(&mut c, &["RPUSH", &a, "x", "y", "z", "w"]);
    run(&mut c, &["ZADD", "rz", "1", "one", "2", "two"]);
    assert_eq!(h1.join().unwrap(), bulk("x"));
    assert_eq!(
        h2.join().unwrap(),
        arr(vec![bulk("rz"), bulk("one"), bulk("1")])
    );
    assert_eq!(h3.join().unwrap(), arr(vec![bulk(&a), strs(&["y", "z"])]));
    let state = |con: &mut redis::Connection| {
        (
            run(con, &["LRANGE", &a, "0", "-1"]),
            run(con, &["LRANGE", &b, "0", "-1"]),
            run(con, &["ZRANGE", "rz", "0", "-1", "WITHSCORES"]),
        )
    };
    let want = (strs(&["w"]), strs(&["x"]), strs(&["two", "2"]));
    assert_eq!(state(&mut c), want);
    let mut seen = None;
    assert!(
        eventually(SETTLE, || {
            seen = Some(state(&mut rc));
            seen.as_ref() == Some(&want)
        }),
        "the replica holds {seen:?}"
    );
}
