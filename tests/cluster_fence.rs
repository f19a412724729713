//! MIGRATE's key fences (`engine/src/exec/fence.rs`): while MIGRATE moves a key, commands
//! on it wait where the key lives, then get `-ASK` (moved) or run here (MIGRATE failed).
//!
//! - Writers INCR and DEL their keys of one slot on a two-core node while the slot
//!   moves back and forth between two nodes, one MIGRATE after another: every reply must
//!   be what the writer's own count says, and every key ends with its count. Without the
//!   fence, a DEL that lands while MIGRATE is in flight is lost (the target keeps the
//!   copy sent before it, and the next INCR, asked there, continues from it).
//! - A target that hangs then dies: commands on the key are parked (with the rest of
//!   their pipeline) while other keys are served, and run here once MIGRATE has failed.
//! - A MIGRATE whose connection dies, or a target that never answers: the fence still
//!   lifts, within MIGRATE's timeout plus the margin.
//!
//! Every server is a child killed on drop (also on panic); waits are bounded.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use common::cluster::*;
use common::*;

/// How long a parked command may take to answer in these tests: MIGRATE's timeout plus
/// the fence's margin, with room for a loaded two-CPU machine.
const PARKED_BOUND: Duration = Duration::from_secs(30);

/// A writer's connections to the two nodes the slot moves between.
struct Writer {
    cons: [redis::Connection; 2],
    ports: [u16; 2],
    /// The node that owns the slot as far as this writer knows (MOVED changes it).
    home: usize,
}

impl Writer {
    fn node_of(&self, text: &str) -> usize {
        let port: u16 = text
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {text:?}"));
        self.ports
            .iter()
            .position(|&p| p == port)
            .unwrap_or_else(|| panic!("redirected to a third node: {text}"))
    }

    /// Runs a command like a cluster client: follows MOVED (and remembers it), ASK (with
    /// ASKING, once) and TRYAGAIN.
    fn cmd(&mut self, args: &[&str]) -> redis::Value {
        for _ in 0..50 {
            let v = run(&mut self.cons[self.home], args);
            let redis::Value::ServerError(_) = &v else {
                return v;
            };
            let text = err_text(&v);
            if text.starts_with("MOVED ") {
                self.home = self.node_of(&text);
            } else if text.starts_with("ASK ") {
                let at = self.node_of(&text);
                assert_eq!(run(&mut self.cons[at], &["ASKING"]), ok());
                let v = run(&mut self.cons[at], args);
                match &v {
                    redis::Value::ServerError(_) if err_text(&v).starts_with("MOVED ") => {
                        self.home = self.node_of(&err_text(&v));
                    }
                    _ => return v,
                }
            } else if text.starts_with("TRYAGAIN") {
                thread::sleep(Duration::from_millis(1));
            } else {
                return v;
            }
        }
        panic!("{args:?}: too many redirections");
    }
}

/// What one writer saw: its own keys' counts, the INCRs acknowledged on each shared key,
/// and the replies that were not what they had to be.
struct Written {
    counts: Vec<i64>,
    shared_acks: Vec<i64>,
    anomalies: Vec<String>,
}

/// One writer: INCR, INCR, DEL on each of its own keys in turn, every reply checked
/// against its count, and an INCR of every shared key per round (each reply must be above
/// the writer's previous one). What went wrong is returned, not panicked on.
fn write_until(
    mut w: Writer,
    keys: Vec<String>,
    shared: Vec<String>,
    stop: Arc<AtomicBool>,
) -> Written {
    let mut counts = vec![0i64; keys.len()];
    let mut visits = vec![0u64; keys.len()];
    let mut shared_acks = vec![0i64; shared.len()];
    let mut shared_last = vec![0i64; shared.len()];
    let mut anomalies = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        for (i, key) in shared.iter().enumerate() {
            match w.cmd(&["INCR", key]) {
                redis::Value::Int(n) if n > shared_last[i] => {
                    shared_last[i] = n;
                    shared_acks[i] += 1;
                }
                other => anomalies.push(format!("INCR {key}: {other:?} after {}", shared_last[i])),
            }
        }
        for (i, key) in keys.iter().enumerate() {
            visits[i] += 1;
            if visits[i] % 3 == 0 {
                let v = w.cmd(&["DEL", key]);
                if v != int(1) {
                    anomalies.push(format!("DEL {key} (count {}): {v:?}", counts[i]));
                }
                counts[i] = 0;
            } else {
                let v = w.cmd(&["INCR", key]);
                match v {
                    redis::Value::Int(n) if n == counts[i] + 1 => counts[i] = n,
                    redis::Value::Int(n) => {
                        anomalies.push(format!("INCR {key}: {n}, expected {}", counts[i] + 1));
                        counts[i] = n;
                    }
                    other => anomalies.push(format!("INCR {key}: {other:?}")),
                }
            }
        }
    }
    Written {
        counts,
        shared_acks,
        anomalies,
    }
}

/// Moves every key of `slot` from `from` to `to` with MIGRATE (a few keys at a time, as
/// redis-cli does) and hands the slot over; the MIGRATE replies that were not OK/NOKEY.
fn move_slot(nodes: &[Server], from: usize, to: usize, slot: u16) -> Vec<String> {
    let ids: Vec<String> = nodes.iter().map(myid).collect();
    let slot_s = slot.to_string();
    let (mut src, mut dst) = (nodes[from].redis(), nodes[to].redis());
    let setslot = |c: &mut redis::Connection, how: &str, id: &str| {
        assert_eq!(run(c, &["CLUSTER", "SETSLOT", &slot_s, how, id]), ok());
    };
    setslot(&mut dst, "IMPORTING", &ids[from]);
    setslot(&mut src, "MIGRATING", &ids[to]);
    let port = nodes[to].port.to_string();
    let mut failures = Vec::new();
    loop {
        let keys = as_strings(&run(&mut src, &["CLUSTER", "GETKEYSINSLOT", &slot_s, "3"]));
        if keys.is_empty() {
            break;
        }
        let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "10000", "KEYS"];
        args.extend(keys.iter().map(String::as_str));
        let v = run(&mut src, &args);
        if v != ok() && v != redis::Value::SimpleString("NOKEY".into()) {
            failures.push(format!("{args:?}: {v:?}"));
            return failures;
        }
    }
    setslot(&mut dst, "NODE", &ids[to]);
    setslot(&mut src, "NODE", &ids[to]);
    for (i, n) in nodes.iter().enumerate() {
        if i != from && i != to {
            setslot(&mut n.redis(), "NODE", &ids[to]);
        }
    }
    failures
}

/// The race MIGRATE's fence closes: writers INCR and DEL keys of one slot on the
/// two-core source while the slot moves back and forth. With the fence every reply
/// matches the writer's count and every key ends at its count; without it, a DEL during
/// a MIGRATE in flight is lost and later INCRs continue from the copy sent before it.
#[test]
fn writes_during_migrations_match_the_writers_counts() {
    if !redis_cli_present() {
        eprintln!("\n!!!!!!!! redis-cli is not installed: the cluster is made by hand !!!!!!!!\n");
    }
    let dir = TempDir::new("fence");
    let nodes = three_agreeing_nodes(&dir);
    let tag = (0..)
        .map(|t| format!("{{f{t}}}"))
        .find(|t| slot_of(t) <= 5460)
        .unwrap();
    let slot = slot_of(&tag);
    let ports = [nodes[0].port, nodes[1].port];
    let stop = Arc::new(AtomicBool::new(false));
    let shared: Vec<String> = (0..3).map(|k| format!("{tag}shared:{k}")).collect();
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let keys: Vec<String> = (0..6).map(|k| format!("{tag}w{w}:k{k}")).collect();
            let writer = Writer {
                cons: [nodes[0].redis(), nodes[1].redis()],
                ports,
                home: 0,
            };
            let (stop, spawned, shared) = (stop.clone(), keys.clone(), shared.clone());
            (
                keys,
                thread::spawn(move || write_until(writer, spawned, shared, stop)),
            )
        })
        .collect();
    // Let every key exist before the first move.
    thread::sleep(Duration::from_millis(200));
    let mut failures = Vec::new();
    for pass in 0..6 {
        let (from, to) = if pass % 2 == 0 { (0, 1) } else { (1, 0) };
        failures.extend(move_slot(&nodes, from, to, slot));
        if !failures.is_empty() {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut anomalies = Vec::new();
    let mut finals = Vec::new();
    let mut shared_acks = vec![0i64; shared.len()];
    for (keys, handle) in writers {
        let written = handle.join().expect("a writer panicked");
        anomalies.extend(written.anomalies);
        finals.extend(keys.into_iter().zip(written.counts));
        for (total, acks) in shared_acks.iter_mut().zip(written.shared_acks) {
            *total += acks;
        }
    }
    // A shared key ends at the number of INCRs its writers saw acknowledged.
    finals.extend(shared.iter().cloned().zip(shared_acks));
    assert!(
        failures.is_empty() && anomalies.is_empty(),
        "MIGRATE failed: {failures:#?}\n{} replies differ from the writers' counts: {:#?}",
        anomalies.len(),
        &anomalies[..anomalies.len().min(20)]
    );
    let mut w = Writer {
        cons: [nodes[0].redis(), nodes[1].redis()],
        ports,
        home: 0,
    };
    for (key, count) in finals {
        let want = if count == 0 {
            redis::Value::Nil
        } else {
            bulk(count.to_string())
        };
        assert_eq!(w.cmd(&["GET", &key]), want, "{key}");
    }
}

/// A stand-in MIGRATE target: accepts one connection, says it got the first bytes, then
/// answers nothing until told to close (a hung, then dead, server).
fn hung_target() -> (u16, mpsc::Receiver<()>, mpsc::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (got_tx, got_rx) = mpsc::channel();
    let (close_tx, close_rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let mut buf = [0u8; 4096];
        if s.read(&mut buf).is_ok_and(|n| n > 0) {
            let _ = got_tx.send(());
        }
        // Until told (or until the test is gone): then the connection closes.
        let _ = close_rx.recv_timeout(PARKED_BOUND * 2);
    });
    (port, got_rx, close_tx)
}

/// A raw connection with a read timeout.
fn connect(s: &Server, timeout: Duration) -> TcpStream {
    let c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.set_read_timeout(Some(timeout)).unwrap();
    c
}

/// Reads until `want` bytes arrived (or the read times out: what came so far).
fn read_n(c: &mut TcpStream, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while got.len() < want {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

/// While MIGRATE waits for a target that then dies, commands on the key (a pipeline,
/// and a MULTI/EXEC) wait, a key of the same core is served, and once MIGRATE has failed
/// the parked commands run here, in order.
#[test]
fn a_dead_target_lifts_the_fence_and_parked_commands_run_here() {
    if !baton_only("MIGRATE's fence") {
        return;
    }
    let s = Server::start(2);
    let mut c = s.redis();
    assert_eq!(q(&mut c, "SET k 10"), ok());
    assert_eq!(q(&mut c, "SET other 1"), ok());
    let (port, got, close) = hung_target();
    let addr = s.port;
    let migrate = thread::spawn(move || {
        let client = redis::Client::open(format!("redis://127.0.0.1:{addr}/")).unwrap();
        let mut m = client.get_connection().unwrap();
        m.set_read_timeout(Some(PARKED_BOUND)).unwrap();
        run(
            &mut m,
            &["MIGRATE", "127.0.0.1", &port.to_string(), "k", "0", "20000"],
        )
    });
    got.recv_timeout(PARKED_BOUND)
        .expect("MIGRATE never reached the target");
    // The key is fenced now: a pipeline on it waits, the GET behind it too.
    let mut p = connect(&s, Duration::from_millis(300));
    p.write_all(b"INCR k\r\nGET other\r\n").unwrap();
    let mut tx = connect(&s, Duration::from_millis(300));
    tx.write_all(b"MULTI\r\nINCR k\r\nEXEC\r\n").unwrap();
    // Another key is served meanwhile.
    assert_eq!(q(&mut c, "GET other"), bulk("1"));
    assert_eq!(q(&mut c, "INCR other2"), int(1));
    assert!(
        read_n(&mut p, 1).is_empty(),
        "a command on a fenced key answered while MIGRATE was in flight"
    );
    // "+OK\r\n+QUEUED\r\n" come at once; EXEC waits.
    assert_eq!(read_n(&mut tx, 14), b"+OK\r\n+QUEUED\r\n");
    assert!(read_n(&mut tx, 1).is_empty(), "EXEC ran on a fenced key");
    // The target dies: MIGRATE fails, the parked commands run here.
    close.send(()).unwrap();
    let v = migrate.join().unwrap();
    assert!(
        err_text(&v).starts_with("IOERR"),
        "MIGRATE to a dead target: {v:?}"
    );
    p.set_read_timeout(Some(PARKED_BOUND)).unwrap();
    tx.set_read_timeout(Some(PARKED_BOUND)).unwrap();
    let pipelined = String::from_utf8(read_n(&mut p, ":11\r\n$1\r\n1\r\n".len())).unwrap();
    let exec = String::from_utf8(read_n(&mut tx, "*1\r\n:11\r\n".len())).unwrap();
    let mut incrs = vec![
        pipelined.lines().next().unwrap_or_default().to_string(),
        exec.lines().nth(1).unwrap_or_default().to_string(),
    ];
    incrs.sort();
    assert_eq!(
        incrs,
        [":11", ":12"],
        "pipeline {pipelined:?}, EXEC {exec:?}"
    );
    assert!(pipelined.ends_with("$1\r\n1\r\n"), "{pipelined:?}");
    assert_eq!(q(&mut c, "GET k"), bulk("12"));
}

/// A MIGRATE whose connection closes while the target hangs still has its fence lifted
/// (by MIGRATE giving up, or by the core's reaper at the deadline): the command parked on
/// the key answers, here.
#[test]
fn the_fence_of_a_migrate_whose_client_left_lifts() {
    if !baton_only("MIGRATE's fence") {
        return;
    }
    let s = Server::start(2);
    let mut c = s.redis();
    assert_eq!(q(&mut c, "SET k 10"), ok());
    let (port, got, _close) = hung_target();
    let mut m = connect(&s, PARKED_BOUND);
    let line = format!("MIGRATE 127.0.0.1 {port} k 0 1000\r\n");
    m.write_all(line.as_bytes()).unwrap();
    got.recv_timeout(PARKED_BOUND)
        .expect("MIGRATE never reached the target");
    let mut p = connect(&s, PARKED_BOUND);
    p.write_all(b"INCR k\r\n").unwrap();
    drop(m);
    assert_eq!(
        read_n(&mut p, 5),
        b":11\r\n",
        "the parked INCR answers once the fence lifts"
    );
    assert_eq!(q(&mut c, "GET k"), bulk("11"));
}

/// A target that never answers: MIGRATE gives up within its timeout (plus the margin)
/// and says so, and the command parked on the key then answers, here.
#[test]
fn a_hung_target_times_out_and_the_parked_command_answers() {
    if !baton_only("MIGRATE's fence") {
        return;
    }
    let s = Server::start(2);
    let mut c = s.redis();
    assert_eq!(q(&mut c, "SET k 10"), ok());
    let (port, got, _close) = hung_target();
    let addr = s.port;
    let migrate = thread::spawn(move || {
        let client = redis::Client::open(format!("redis://127.0.0.1:{addr}/")).unwrap();
        let mut m = client.get_connection().unwrap();
        m.set_read_timeout(Some(PARKED_BOUND)).unwrap();
        run(
            &mut m,
            &["MIGRATE", "127.0.0.1", &port.to_string(), "k", "0", "500"],
        )
    });
    got.recv_timeout(PARKED_BOUND)
        .expect("MIGRATE never reached the target");
    let mut p = connect(&s, PARKED_BOUND);
    p.write_all(b"INCR k\r\n").unwrap();
    assert_eq!(read_n(&mut p, 5), b":11\r\n", "the parked INCR answers");
    let v = migrate.join().unwrap();
    assert_eq!(
        err_text(&v),
        "IOERR error or timeout reading to target instance"
    );
    assert_eq!(q(&mut c, "GET k"), bulk("11"));
}
