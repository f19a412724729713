//! CLUSTER MIGRATESLOTS's leftovers (`net/src/cluster/slotmove.rs`, `slotstream.rs`):
//!
//! - CLUSTER CANCELSLOTMIGRATIONS stops a running job: its state becomes `canceled`, the
//!   source keeps every key and serves it, no marker is left on either node, and the
//!   target holds none of the copies it had received;
//! - two jobs at once (one command, two targets) under a writer: each keeps every write;
//! - a cluster whose nodes need a password (`--requirepass`, `--masterauth`): the job
//!   authenticates towards the target, and the keys arrive.
//!
//! Every server is a child killed on drop (also on panic); waits are bounded.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::cluster::*;
use common::*;

const PASS: &str = "s3cret";

/// Writes `n` keys `<prefix><i>` of slots 0-2000 to `c`, 200-byte values; returns them.
fn fill(c: &mut redis::Connection, prefix: &str, n: usize) -> Vec<String> {
    fill_keys(c, prefix, n, |k| slot_of(k) <= 2000, value_of)
}

fn value_of(k: &str) -> String {
    format!("{k}:{}", "v".repeat(200))
}

#[test]
fn a_canceled_job_moves_nothing() {
    let dir = TempDir::new("slotstream-cancel");
    let nodes = three_agreeing_nodes(&dir);
    let target = myid(&nodes[1]);
    let (mut c0, mut c1) = (nodes[0].redis(), nodes[1].redis());
    assert_eq!(
        q(&mut c0, "CLUSTER CANCELSLOTMIGRATIONS"),
        ok(),
        "none runs"
    );
    assert_eq!(
        err_text(&q(&mut c0, "CLUSTER CANCELSLOTMIGRATIONS now")),
        "ERR wrong number of arguments for 'cluster|cancelslotmigrations' command"
    );
    let keys = fill(&mut c0, "cancel:", 40_000);
    let (before0, before1) = (myself_line(&mut c0), myself_line(&mut c1));
    let cmd = format!("CLUSTER MIGRATESLOTS SLOTSRANGE 0 2000 NODE {target}");
    assert_eq!(q(&mut c0, &cmd), ok());
    assert_eq!(q(&mut c0, "CLUSTER CANCELSLOTMIGRATIONS"), ok());
    let job = finished_job(&mut c0);
    assert_eq!(job["state"], "canceled", "{job:?}");
    assert_eq!(job["message"], "Canceled by user", "{job:?}");
    // Nothing moved: both nodes as before, every key served by the source, plainly.
    assert_eq!(myself_line(&mut c0), before0);
    assert_eq!(myself_line(&mut c1), before1);
    let mut pipe = redis::pipe();
    for k in &keys {
        pipe.cmd("GET").arg(k);
    }
    let got: Vec<redis::Value> = pipe.query(&mut c0).unwrap();
    for (k, v) in keys.iter().zip(got) {
        assert_eq!(v, bulk(value_of(k)), "{k}");
    }
    // The target dropped the copies it had received.
    let held: i64 = (0..=2000)
        .map(|s| as_int(&q(&mut c1, &format!("CLUSTER COUNTKEYSINSLOT {s}"))))
        .sum();
    assert_eq!(held, 0);
    // The range can move again afterwards.
    assert_eq!(q(&mut c0, &cmd), ok());
    let job = finished_job(&mut c0);
    assert_eq!(job["state"], "success", "{job:?}");
    assert_eq!(run(&mut c1, &["GET", &keys[7]]), bulk(value_of(&keys[7])));
}

#[test]
fn the_job_authenticates_with_masterauth() {
    let dir = TempDir::new("slotstream-auth");
    let nodes: Vec<Server> = (0..2)
        .map(|i| {
            let file = dir.file(&format!("n{i}.conf"));
            Server::builder(2)
                .requirepass(PASS)
                .memcache()
                .args(&[
                    "--masterauth",
                    PASS,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &file,
                ])
                .start()
        })
        .collect();
    let (mut c0, mut c1) = (nodes[0].redis_auth(PASS), nodes[1].redis_auth(PASS));
    for (c, (a, b), epoch) in [(&mut c0, (0, 8191), 1), (&mut c1, (8192, 16383), 2)] {
        assert_eq!(q(c, &format!("CLUSTER ADDSLOTSRANGE {a} {b}")), ok());
        assert_eq!(q(c, &format!("CLUSTER SET-CONFIG-EPOCH {epoch}")), ok());
    }
    let meet = format!("CLUSTER MEET 127.0.0.1 {}", nodes[0].port);
    assert_eq!(q(&mut c1, &meet), ok());
    let target = as_str(&q(&mut c1, "CLUSTER MYID"));
    let source = as_str(&q(&mut c0, "CLUSTER MYID"));
    assert!(
        eventually(CONVERGE, || {
            as_str(&q(&mut c0, "CLUSTER NODES")).contains(&target)
                && as_str(&q(&mut c1, "CLUSTER NODES")).contains(&source)
        }),
        "the nodes never met"
    );
    let keys = fill(&mut c0, "auth:", 2_000);
    let cmd = format!("CLUSTER MIGRATESLOTS SLOTSRANGE 0 2000 NODE {target}");
    assert_eq!(q(&mut c0, &cmd), ok());
    let job = finished_job(&mut c0);
    assert_eq!(job["state"], "success", "{job:?}");
    for k in keys.iter().step_by(97) {
        assert_eq!(run(&mut c1, &["GET", k]), bulk(value_of(k)), "{k}");
    }
    assert!(
        myself_line(&mut c1).contains(" 0-2000 "),
        "{}",
        myself_line(&mut c1)
    );
    // A memcached client of the source reaches the keys that moved: its core's link to
    // the target authenticates with masterauth too.
    let mut mc = nodes[0].memcache_raw();
    let k = &keys[11];
    mc.send(format!("get {k}\r\nset {k} 0 0 3\r\nnew\r\n").as_bytes());
    let v = value_of(k);
    mc.expect(format!("VALUE {k} 0 {}\r\n{v}\r\nEND\r\nSTORED\r\n", v.len()).as_bytes());
    assert_eq!(run(&mut c1, &["GET", k]), bulk("new"));
}

/// INCRs `key` through the nodes, following MOVED (the streamed slots never answer ASK);
/// returns the count, or the unexpected reply.
fn incr(
    cons: &mut HashMap<u16, redis::Connection>,
    home: &mut u16,
    key: &str,
) -> Result<i64, String> {
    for _ in 0..100 {
        let v = run(cons.get_mut(home).unwrap(), &["INCR", key]);
        match &v {
            redis::Value::Int(n) => return Ok(*n),
            redis::Value::ServerError(_) if err_text(&v).starts_with("MOVED ") => {
                let text = err_text(&v);
                *home = text.rsplit(':').next().unwrap().parse().unwrap();
            }
            _ => return Err(format!("INCR {key}: {v:?}")),
        }
    }
    Err(format!("INCR {key}: too many redirections"))
}

#[test]
fn two_jobs_at_once_each_keep_their_writes() {
    let dir = TempDir::new("slotstream-two");
    let nodes = three_agreeing_nodes(&dir);
    let (t1, t2) = (myid(&nodes[1]), myid(&nodes[2]));
    let mut c0 = nodes[0].redis();
    let keys = fill(&mut c0, "two:", 20_000);
    let counters: Vec<String> = (0..)
        .map(|i| format!("ctr:{i}"))
        .filter(|k| slot_of(k) <= 2000)
        .take(40)
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, counters) = (stop.clone(), counters.clone());
        let mut cons: HashMap<u16, redis::Connection> =
            nodes.iter().map(|n| (n.port, n.redis())).collect();
        let mut home = nodes[0].port;
        std::thread::spawn(move || {
            let mut counts = vec![0i64; counters.len()];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for (i, k) in counters.iter().enumerate() {
                    match incr(&mut cons, &mut home, k) {
                        Ok(n) if n == counts[i] + 1 => counts[i] = n,
                        other => return Err(format!("{k} at {}: {other:?}", counts[i])),
                    }
                }
            }
            Ok(counts)
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let cmd =
        format!("CLUSTER MIGRATESLOTS SLOTSRANGE 0 1000 NODE {t1} SLOTSRANGE 1001 2000 NODE {t2}");
    assert_eq!(q(&mut c0, &cmd), ok());
    assert!(
        eventually(JOB_BOUND, || slot_jobs(&mut c0)
            .iter()
            .all(|j| j["state"] != "running")),
        "{:?}",
        slot_jobs(&mut c0)
    );
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let counts = writer
        .join()
        .unwrap()
        .expect("only MOVED, then the right counts");
    for j in slot_jobs(&mut c0) {
        assert_eq!(j["state"], "success", "{j:?}");
    }
    let mut cons: HashMap<u16, redis::Connection> =
        nodes.iter().map(|n| (n.port, n.redis())).collect();
    for (k, n) in counters.iter().zip(counts) {
        let port = if slot_of(k) <= 1000 {
            nodes[1].port
        } else {
            nodes[2].port
        };
        let got = run(cons.get_mut(&port).unwrap(), &["GET", k]);
        assert_eq!(got, bulk(n.to_string()), "{k}");
    }
    for k in keys.iter().step_by(101) {
        let port = if slot_of(k) <= 1000 {
            nodes[1].port
        } else {
            nodes[2].port
        };
        assert_eq!(
            run(cons.get_mut(&port).unwrap(), &["GET", k]),
            bulk(value_of(k))
        );
    }
    assert!(
        eventually(CONVERGE, || agree(&nodes)),
        "{:#?}",
        all_nodes(&nodes)
    );
}
