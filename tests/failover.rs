//! FAILOVER, as Redis 7's: refusals with Redis's texts, and a failover under a steady
//! writer where every write the old primary acknowledged is on the new one, and the old
//! primary follows the new one by partial resync.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_err, q, Server};
use redis::Value;

/// The value of `field` in `INFO <section>`.
fn info_field(con: &mut redis::Connection, section: &str, field: &str) -> Option<String> {
    let text = match q(con, &format!("INFO {section}")) {
        Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::VerbatimString { text, .. } => text,
        other => panic!("INFO answered {other:?}"),
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}

/// Retries `check` until it holds or `secs` pass.
#[track_caller]
fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn replicate(replica: &Server, primary: &Server) {
    let mut r = replica.redis();
    assert_eq!(
        q(&mut r, &format!("REPLICAOF 127.0.0.1 {}", primary.port)),
        Value::Okay
    );
    eventually(20, "the replica's link to come up", || {
        info_field(&mut r, "replication", "master_link_status").as_deref() == Some("up")
    });
}

#[test]
fn failover_refusals_use_redis_texts() {
    let primary = Server::start(1);
    let mut p = primary.redis();
    assert_err(
        &mut p,
        "FAILOVER",
        "ERR FAILOVER requires connected replicas.",
    );
    assert_err(&mut p, "FAILOVER ABORT", "ERR No failover in progress.");
    assert_err(
        &mut p,
        "FAILOVER FORCE",
        "ERR FAILOVER with force option requires both a timeout and target HOST and PORT.",
    );
    assert_err(
        &mut p,
        "FAILOVER TIMEOUT -1",
        "ERR FAILOVER timeout must be greater than 0",
    );
    let replica = Server::start(1);
    replicate(&replica, &primary);
    assert_err(
        &mut p,
        "FAILOVER TO 127.0.0.1 1",
        "ERR FAILOVER target HOST and PORT is not a replica.",
    );
    let mut r = replica.redis();
    assert_err(
        &mut r,
        "FAILOVER",
        "ERR FAILOVER is not valid when server is a replica.",
    );
}

/// A writer keeps writing distinct keys through the failover; every write the old
/// primary answered OK must be on the new primary afterwards.
fn failover_keeps_acknowledged_writes(cores: usize) {
    let primary = Server::start(cores);
    let replica = Server::start(cores);
    replicate(&replica, &primary);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, port) = (stop.clone(), primary.port);
        std::thread::spawn(move || {
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
            let mut con = client.get_connection().unwrap();
            let mut acked = Vec::new();
            for i in 0u64.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match common::run(&mut con, &["SET", &format!("key:{i}"), &i.to_string()]) {
                    Value::Okay => acked.push(i),
                    Value::ServerError(e) => {
                        // After the switch the old primary is a read-only replica.
                        assert_eq!(e.code(), "READONLY", "{e:?}");
                        break;
                    }
                    other => panic!("SET answered {other:?}"),
                }
            }
            acked
        })
    };
    let mut p = primary.redis();
    eventually(10, "some writes", || {
        info_field(&mut p, "replication", "master_repl_offset")
            .is_some_and(|o| o.parse::<u64>().unwrap() > 2000)
    });
    assert_eq!(q(&mut p, "FAILOVER TIMEOUT 5000"), Value::Okay);
    let mut r = replica.redis();
    eventually(15, "the replica to become the primary", || {
        info_field(&mut r, "replication", "role").as_deref() == Some("master")
    });
    eventually(15, "the old primary to follow the new one", || {
        info_field(&mut p, "replication", "master_link_status").as_deref() == Some("up")
            && info_field(&mut p, "replication", "master_port") == Some(replica.port.to_string())
    });
    stop.store(true, Ordering::Relaxed);
    let acked = writer.join().expect("the writer panicked");
    assert!(
        acked.len() > 10,
        "the writer wrote only {} keys",
        acked.len()
    );
    for i in &acked {
        assert_eq!(
            q(&mut r, &format!("GET key:{i}")),
            Value::BulkString(i.to_string().into_bytes()),
            "acknowledged write key:{i} is missing on the new primary"
        );
    }
    assert_eq!(
        info_field(&mut p, "replication", "master_failover_state").as_deref(),
        Some("no-failover")
    );
    // The old primary resumed from its own history: the new primary served it a partial
    // resync, not a full sync.
    assert_eq!(
        info_field(&mut r, "stats", "sync_partial_ok").as_deref(),
        Some("1")
    );
    assert_eq!(
        info_field(&mut r, "stats", "sync_full").as_deref(),
        Some("0")
    );
    // And the roles are swapped for clients too.
    assert_err(
        &mut p,
        "SET x 1",
        "READONLY You can't write against a read only replica.",
    );
    assert_eq!(q(&mut r, "SET x 1"), Value::Okay);
}

#[test]
fn failover_under_writes_one_core() {
    failover_keeps_acknowledged_writes(1);
}

#[test]
fn failover_under_writes_two_cores() {
    failover_keeps_acknowledged_writes(2);
}
