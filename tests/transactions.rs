//! MULTI / EXEC / DISCARD / WATCH / UNWATCH as Redis 7 answers them, with the queued
//! commands' keys spread over both cores of a two-core server.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use baton_engine::exec::Router;
use common::*;

cores_tests!(
    queue_and_exec_across_cores,
    queuing_error_aborts_exec,
    runtime_error_does_not_abort,
    watch_passes_when_nothing_changed,
    watch_fails_when_another_client_writes,
    watch_fails_on_delete_and_flushall,
    discard_and_misplaced_commands,
    pipe_atomic,
    all_core_and_cross_core_commands_inside_exec,
    connection_commands_run_at_exec,
);

/// Two keys on different cores of a two-core server (on one core with one core).
fn apart() -> (String, String) {
    let r = Router::standalone(0, 2);
    let a = "ta".to_string();
    let b = (0..)
        .map(|i| format!("tb{i}"))
        .find(|k| r.core_of(k.as_bytes()) != r.core_of(a.as_bytes()))
        .expect("some key lands on the other core");
    (a, b)
}

fn queued() -> Value {
    simple("QUEUED")
}

fn queue_and_exec_across_cores(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let (a, b) = apart();
    assert_reply(&mut c, "MULTI", ok());
    assert_reply(&mut c, &format!("SET {a} 1"), queued());
    assert_reply(&mut c, &format!("SET {b} 2"), queued());
    assert_reply(&mut c, &format!("INCR {a}"), queued());
    assert_reply(&mut c, &format!("MGET {a} {b}"), queued());
    assert_reply(
        &mut c,
        "EXEC",
        arr(vec![ok(), ok(), int(2), arr(vec![bulk("2"), bulk("2")])]),
    );
    // An empty transaction answers an empty array.
    assert_reply(&mut c, "MULTI", ok());
    assert_reply(&mut c, "EXEC", arr(vec![]));
}

fn queuing_error_aborts_exec(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let (a, b) = apart();
    assert_reply(&mut c, "MULTI", ok());
    assert_reply(&mut c, &format!("SET {a} 1"), queued());
    assert_err(
        &mut c,
        "NOSUCHCMD x",
        "ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' ",
    );
    assert_err(
        &mut c,
        "GET",
        "ERR wrong number of arguments for 'get' command",
    );
    assert_reply(&mut c, &format!("SET {b} 2"), queued());
    assert_err(
        &mut c,
        "EXEC",
        "EXECABORT Transaction discarded because of previous errors.",
    );
    assert_reply(&mut c, &format!("EXISTS {a} {b}"), int(0));
    // The transaction is over.
    assert_err(&mut c, "EXEC", "ERR EXEC without MULTI");
}

fn runtime_error_does_not_abort(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let (a, b) = apart();
    assert_reply(&mut c, &format!("SET {a} notanumber"), ok());
    assert_reply(&mut c, "MULTI", ok());
    assert_reply(&mut c, &format!("INCR {a}"), queued());
    assert_reply(&mut c, &format!("SET {b} 2"), queued());
    let v = q(&mut c, "EXEC");
    let items = match v {
        Value::Array(items) => items,
        other => panic!("EXEC answered {other:?}"),
    };
    assert_eq!(items.len(), 2);
    assert_eq!(
        err_text(&items[0]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(items[1], ok());
    assert_reply(&mut c, &format!("GET {b}"), bulk("2"));
}

fn watch_passes_when_nothing_changed(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let (a, b) = apart();
    assert_reply(&mut c, &format!("SET {a} 1"), ok());
    assert_reply(&mut c, &format!("WATCH {a} {b}"), ok());
    // Reads do not change a version.
    let mut other = s.redis();
    assert_reply(&mut other, &format!("GET {a}"), bulk("1"));
    assert_reply(&mut c, "MULTI", ok());
    assert_reply(&mut c, &format!("SET {b} x"), queued());
    assert_reply(&mut c, "EXEC", arr(vec![ok()]));
    // UNWATCH forgets: a later write does not fail the next transaction.
    assert_reply(&mut c, &format!("WATCH {a}"), ok());
    assert_reply(&mut c, "UNWATCH", ok());
    assert_reply(&mut other, &format!("SET {a} 2"), ok());
    assert_reply(&mut c, "MULTI", ok());
    assert_reply(&mut c, &format!("GET {a}"), queued());
    assert_reply(&mut c, "EXEC", arr(vec![bulk("2")]));
}

fn watch_fails_when_another_client_writes(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let mut other = s.redis();
    let (a, b) = apart();
    assert_reply(&mut c, &format!("SET {a} 1"), ok());
    assert_reply(&mut c, &format!("WATCH {a}"), ok());
    assert_reply(&mut other, &format!("SET {a} 1"), ok());
    assert_reply(&mut c, "MULTI", ok());
    assert_reply(&mut c, &format!("SET {b} x"), queued());
    assert_reply(&mut c, "EXEC", nil());
    assert_reply(&mut c, &format!("EXISTS {b}"), int(0));
    // A missing key that another client creates fails it too.
    assert_reply(&mut c, &format!("WATCH {b}"), ok());
    assert_reply(&mut other, &format!("SET {b} y"), ok());
    assert_reply(&mut c, "MULTI", ok());
    assert_reply(&mut c, &format!("SET {a} z"), queued());
    assert_reply(&mut c, "EXEC", nil());
    assert_reply(&mut c, &format!("GET {a}"), bulk("1"));
    // EXEC cleared the watches.
    assert_reply(&mut other, &format!("SET {b} w"), ok());
    assert_reply(&mut c, "MULTI", ok());
    assert_reply(&mut c, "PING", queued());
    assert_reply(&mut c, "EXEC", arr(vec![simple("PONG")]));
}

fn watch_fails_on_delete_and_flushall(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let mut other = s.redis();
    let (a, b) = apart();
    // Deleted, then recreated with the same value.
    assert_reply(&mut c, &format!("SET {a} 1"), ok());
    assert_reply(&mut c, &format!("WATCH {a}"), ok());
    assert_reply(&mut other, &format!("DEL {a}"), int(1));
    assert_reply(&mut other, &format!("SET {a} 1"), ok());
    assert_reply(&mut c, "MULTI", ok());
    assert_reply(&mut c, "PING", queued());
    assert_reply(&mut c, "EXEC", nil());
    // Flushed.
    assert_reply(&mut c, &format!("WATCH {b} {a}"), ok());
    assert_reply(&mut other, "FLUSHALL", ok());
    assert_reply(&mut c, "MULTI", ok());
    assert_reply(&mut c, "PING", queued());
    assert_reply(&mut c, "EXEC", nil());
    // A key that expires between WATCH and EXEC fails it (Redis 7).
    assert_reply(&mut c, &format!("SET {a} 1 PX 30"), ok());
    assert_reply(&mut c, &format!("WATCH {a}"), ok());
    std::thread::sleep(std::time::Duration::from_millis(60));
    assert_reply(&mut c, "MULTI", ok());
    assert_reply(&mut c, "PING", queued());
    assert_reply(&mut c, "EXEC", nil());
    // A key already expired when WATCHed counts as missing, and stays so (Redis 7).
    assert_reply(&mut c, &format!("SET {b} 1 PX 1"), ok());
    std::thread::sleep(std::time::Duration::from_millis(10));
    assert_reply(&mut c, &format!("WATCH {b}"), ok());
    assert_reply(&mut c, "MULTI", ok());
    assert_reply(&mut c, "PING", queued());
    assert_reply(&mut c, "EXEC", arr(vec![simple("PONG")]));
    // The client's own writes between WATCH and EXEC count too.
    assert_reply(&mut c, &format!("WATCH {b}"), ok());
    assert_reply(&mut c, &format!("SET {b} mine"), ok());
    assert_reply(&mut c, "MULTI", ok());
    assert_reply(&mut c, "PING", queued());
    assert_reply(&mut c, "EXEC", nil());
}

/// COMMAND INFO lists the transaction commands with Redis's arity and key positions.
#[test]
fn command_info_lists_transaction_commands() {
    let s = Server::start(1);
    let mut c = s.redis();
    let v = q(&mut c, "COMMAND INFO multi exec discard watch unwatch");
    let rows = match v {
        Value::Array(rows) => rows,
        other => panic!("COMMAND INFO answered {other:?}"),
    };
    let want = [
        ("multi", 1, 0),
        ("exec", 1, 0),
        ("discard", 1, 0),
        ("watch", -2, 1),
        ("unwatch", 1, 0),
    ];
    for (row, (name, arity, first_key)) in rows.iter().zip(want) {
        let fields = match row {
            Value::Array(f) => f,
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(as_str(&fields[0]), name);
        assert_eq!(fields[1], int(arity), "{name}");
        assert_eq!(fields[3], int(first_key), "{name}");
    }
}

fn discard_and_misplaced_commands(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let (a, _) = apart();
    assert_err(&mut c, "EXEC", "ERR EXEC without MULTI");
    assert_err(&mut c, "DISCARD", "ERR DISCARD without MULTI");
    assert_reply(&mut c, "MULTI", ok());
    assert_err(&mut c, "MULTI", "ERR MULTI calls can not be nested");
    assert_err(
        &mut c,
        &format!("WATCH {a}"),
        "ERR WATCH inside MULTI is not allowed",
    );
    assert_reply(&mut c, &format!("SET {a} 1"), queued());
    assert_reply(&mut c, "DISCARD", ok());
    assert_reply(&mut c, &format!("EXISTS {a}"), int(0));
    // Neither nested MULTI nor WATCH inside MULTI aborts the transaction.
    assert_reply(&mut c, "MULTI", ok());
    assert_err(&mut c, "MULTI", "ERR MULTI calls can not be nested");
    assert_reply(&mut c, &format!("SET {a} 1"), queued());
    assert_reply(&mut c, "EXEC", arr(vec![ok()]));
}

fn pipe_atomic(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let (a, b) = apart();
    let (x, y): (String, i64) = redis::pipe()
        .atomic()
        .set(&a, "hello")
        .ignore()
        .incr(&b, 5)
        .ignore()
        .get(&a)
        .get(&b)
        .query(&mut c)
        .unwrap();
    assert_eq!((x.as_str(), y), ("hello", 5));
}

fn all_core_and_cross_core_commands_inside_exec(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let (a, b) = apart();
    assert_reply(&mut c, "MULTI", ok());
    assert_reply(&mut c, &format!("SET {a} 1"), queued());
    assert_reply(&mut c, &format!("RENAME {a} {b}"), queued());
    assert_reply(&mut c, "DBSIZE", queued());
    assert_reply(&mut c, &format!("MSETNX {a} 2 {b} 3"), queued());
    assert_reply(&mut c, "KEYS *", queued());
    assert_reply(&mut c, "FLUSHALL", queued());
    assert_reply(&mut c, "DBSIZE", queued());
    assert_reply(
        &mut c,
        "EXEC",
        arr(vec![
            ok(),
            ok(),
            int(1),
            int(0),
            arr(vec![bulk(&b)]),
            ok(),
            int(0),
        ]),
    );
}

fn connection_commands_run_at_exec(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "MULTI", ok());
    assert_reply(&mut c, "PING", queued());
    assert_reply(&mut c, "ECHO hi", queued());
    assert_reply(&mut c, "CLIENT SETNAME tx", queued());
    assert_reply(&mut c, "CLIENT GETNAME", queued());
    assert_reply(&mut c, "SELECT 0", queued());
    assert_reply(&mut c, "CONFIG SET slowlog-max-len 200", queued());
    // INFO asks every core: around it the transaction's locks are let go, not deadlocked on.
    let (a, b) = apart();
    assert_reply(&mut c, &format!("SET {a} 1"), queued());
    assert_reply(&mut c, "INFO server", queued());
    assert_reply(&mut c, &format!("MGET {a} {b}"), queued());
    assert_reply(&mut c, "CLIENT LIST", queued());
    let items = match q(&mut c, "EXEC") {
        Value::Array(items) => items,
        other => panic!("EXEC answered {other:?}"),
    };
    assert_eq!(
        items[..6],
        [simple("PONG"), bulk("hi"), ok(), bulk("tx"), ok(), ok()]
    );
    assert_eq!(items[6], ok());
    let info = match &items[7] {
        Value::VerbatimString { text, .. } => text.clone(),
        other => as_str(other),
    };
    assert!(info.contains("redis_version"));
    assert_eq!(items[8], arr(vec![bulk("1"), nil()]));
    assert!(as_str(&items[9]).contains("name=tx"));
}

/// A writer that sets two keys on different cores in one transaction, and a reader that
/// reads both, never sees them differ. The reader reads in a transaction too: a plain MGET
/// over two cores reads each core on its own, without their locks (as before MULTI was
/// added), so it can see one core before a transaction and the other after it.
#[test]
fn no_half_applied_transaction_across_cores() {
    let s = Server::start(2);
    let (a, b) = apart();
    let mut w = s.redis();
    assert_reply(&mut w, &format!("MSET {a} 0 {b} 0"), ok());
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let mut r = s.redis();
        let (a, b, stop) = (a.clone(), b.clone(), stop.clone());
        thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                let ((x, y),): ((String, String),) = redis::pipe()
                    .atomic()
                    .cmd("MGET")
                    .arg(&a)
                    .arg(&b)
                    .query(&mut r)
                    .unwrap();
                assert_eq!(x, y, "MGET saw half a transaction");
                reads += 1;
            }
            reads
        })
    };
    for i in 1..=2000 {
        let () = redis::pipe()
            .atomic()
            .set(&a, i)
            .ignore()
            .set(&b, i)
            .ignore()
            .query(&mut w)
            .unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().expect("the reader saw no half transaction");
    assert!(reads > 0);
}

/// Closing the connection inside MULTI discards the transaction; QUIT does too.
#[test]
fn quit_inside_multi_discards() {
    let s = Server::start(2);
    let (a, _) = apart();
    {
        let mut c = s.redis();
        assert_reply(&mut c, "MULTI", ok());
        assert_reply(&mut c, &format!("SET {a} 1"), queued());
        assert_reply(&mut c, "QUIT", ok());
    }
    let mut c = s.redis();
    assert_reply(&mut c, &format!("EXISTS {a}"), int(0));
}

/// RESP3: EXEC of a transaction whose watched key changed answers `_`.
#[test]
fn resp3_nil_exec() {
    if !baton_only("raw RESP3 bytes") {
        return;
    }
    let s = Server::start(2);
    let mut raw = s.raw();
    raw.send(b"HELLO 3\r\n");
    let _ = raw.read_value();
    let mut other = s.redis();
    raw.send(b"WATCH k\r\n");
    raw.expect(b"+OK\r\n");
    assert_reply(&mut other, "SET k 1", ok());
    raw.send(b"MULTI\r\nEXEC\r\n");
    raw.expect(b"+OK\r\n_\r\n");
    // And in RESP2, `*-1`.
    raw.send(b"HELLO 2\r\n");
    let _ = raw.read_value();
    raw.send(b"WATCH k\r\n");
    raw.expect(b"+OK\r\n");
    assert_reply(&mut other, "SET k 2", ok());
    raw.send(b"MULTI\r\nEXEC\r\n");
    raw.expect(b"+OK\r\n*-1\r\n");
}

/// redis-cli piping a transaction.
#[test]
fn redis_cli_pipes_a_transaction() {
    if Command::new("redis-cli").arg("--version").output().is_err() {
        return;
    }
    let s = Server::start(2);
    let port = s.addr().rsplit(':').next().unwrap().to_string();
    let mut child = Command::new("redis-cli")
        .args(["-p", &port])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"MULTI\nSET x 1\nSET y 2\nEXEC\nMGET x y\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, "OK\nQUEUED\nQUEUED\nOK\nOK\n1\n2\n");
}
