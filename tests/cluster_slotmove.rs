//! CLUSTER MIGRATESLOTS (`net/src/cluster/slotmove.rs`): a source node streams whole slot
//! ranges to a target by itself.
//!
//! - Three two-core nodes made a cluster by redis-cli; thousands of keys of every type
//!   (some with TTLs, one memcached item with client flags) in slots 0-2000 of node 0,
//!   and writers that INCR and DEL keys of those slots while the range moves to node 1:
//!   every reply is what each writer's own count says (only MOVED, ASK and TRYAGAIN may
//!   come in between, never another error), every key ends with its count, every value,
//!   type, TTL and flag arrives, the source keeps none, all nodes agree and
//!   `redis-cli --cluster check` passes.
//! - Bad input (syntax, unknown node, myself, a slot not owned, a slot already
//!   migrating, an unreachable target) gets an error and changes nothing.
//!
//! Every server is a child killed on drop (also on panic); waits are bounded.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::cluster::*;
use common::*;

/// The range moved: slots 0-2000, owned by node 0 of the standard split.
const FIRST: u16 = 0;
const LAST: u16 = 2000;

fn in_range(key: &str) -> bool {
    (FIRST..=LAST).contains(&slot_of(key))
}

/// A client over every node that follows MOVED, ASK (with ASKING) and TRYAGAIN like a
/// cluster client; any other error is returned as a reply.
struct Follower {
    cons: HashMap<u16, redis::Connection>,
    home: u16,
}

impl Follower {
    fn new(nodes: &[Server]) -> Follower {
        Follower {
            cons: nodes.iter().map(|n| (n.port, n.redis())).collect(),
            home: nodes[0].port,
        }
    }

    fn port_of(text: &str) -> u16 {
        text.rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {text:?}"))
    }

    fn cmd(&mut self, args: &[&str]) -> redis::Value {
        for _ in 0..200 {
            let v = run(self.cons.get_mut(&self.home).unwrap(), args);
            let redis::Value::ServerError(_) = &v else {
                return v;
            };
            let text = err_text(&v);
            if text.starts_with("MOVED ") {
                self.home = Self::port_of(&text);
            } else if text.starts_with("ASK ") {
                let c = self.cons.get_mut(&Self::port_of(&text)).unwrap();
                assert_eq!(run(c, &["ASKING"]), ok());
                let v = run(c, args);
                match &v {
                    redis::Value::ServerError(_) if err_text(&v).starts_with("MOVED ") => {
                        self.home = Self::port_of(&err_text(&v));
                    }
                    redis::Value::ServerError(_) if err_text(&v).starts_with("TRYAGAIN") => {
                        thread::sleep(Duration::from_millis(1));
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

/// One writer: INCR, INCR, DEL on each of its keys in turn until `stop`, every reply
/// checked against its own count. Returns the final counts and what went wrong.
fn write_until(
    mut f: Follower,
    keys: Vec<String>,
    stop: Arc<AtomicBool>,
) -> (Vec<i64>, Vec<String>) {
    let mut counts = vec![0i64; keys.len()];
    let mut anomalies = Vec::new();
    let mut turn = 0u64;
    while !stop.load(Ordering::Relaxed) {
        turn += 1;
        for (i, key) in keys.iter().enumerate() {
            if turn % 3 == 0 {
                let v = f.cmd(&["DEL", key]);
                if v != int(1) {
                    anomalies.push(format!("DEL {key} (count {}): {v:?}", counts[i]));
                }
                counts[i] = 0;
            } else {
                match f.cmd(&["INCR", key]) {
                    redis::Value::Int(n) if n == counts[i] + 1 => counts[i] = n,
                    other => {
                        anomalies.push(format!("INCR {key}: {other:?}, count {}", counts[i]));
                        if let redis::Value::Int(n) = other {
                            counts[i] = n;
                        }
                    }
                }
            }
        }
    }
    (counts, anomalies)
}

#[test]
fn a_range_moves_under_writers_with_every_type_and_ttl() {
    if !redis_cli_present() {
        eprintln!("\n!!!!!!!! redis-cli is not installed: MIGRATESLOTS is NOT tested !!!!!!!!\n");
        return;
    }
    let dir = TempDir::new("slotmove");
    // Two-core nodes with their memcached port open (flags must travel too).
    let nodes: Vec<Server> = (0..3)
        .map(|i| {
            let file = dir.file(&format!("n{i}.conf"));
            Server::builder(2)
                .memcache()
                .args(&["--cluster-enabled", "yes", "--cluster-config-file", &file])
                .start()
        })
        .collect();
    create_agreeing(&nodes);
    let target = myid(&nodes[1]);
    let mut c0 = nodes[0].redis();

    // Plain strings, half of them with a TTL, pipelined.
    let plain: Vec<String> = (0..)
        .map(|i| format!("key:{i}"))
        .filter(|k| in_range(k))
        .take(6000)
        .collect();
    let mut pipe = redis::pipe();
    for (i, k) in plain.iter().enumerate() {
        if i % 2 == 0 {
            pipe.cmd("SET")
                .arg(k)
                .arg(format!("v{i}"))
                .arg("EX")
                .arg(3600);
        } else {
            pipe.cmd("SET").arg(k).arg(format!("v{i}"));
        }
        pipe.ignore();
    }
    pipe.query::<()>(&mut c0).unwrap();
    // One key of every type.
    let typed: Vec<String> = (0..)
        .map(|i| format!("typed:{i}"))
        .filter(|k| in_range(k))
        .take(5)
        .collect();
    let (h, l, s, z, e) = (&typed[0], &typed[1], &typed[2], &typed[3], &typed[4]);
    assert_eq!(as_int(&run(&mut c0, &["HSET", h, "f1", "a", "f2", "b"])), 2);
    assert_eq!(as_int(&run(&mut c0, &["RPUSH", l, "x", "y", "z"])), 3);
    assert_eq!(as_int(&run(&mut c0, &["SADD", s, "m1", "m2"])), 2);
    assert_eq!(as_int(&run(&mut c0, &["ZADD", z, "1.5", "a", "2", "b"])), 2);
    assert_eq!(run(&mut c0, &["SET", e, "soon", "PX", "600000"]), ok());
    // A memcached item with client flags.
    let mc_key = (0..)
        .map(|i| format!("mc:{i}"))
        .find(|k| in_range(k))
        .unwrap();
    let mut mc = nodes[0].memcache_raw();
    mc.send(format!("set {mc_key} 4242 0 5\r\nhello\r\n").as_bytes());
    mc.expect(b"STORED\r\n");
    // A key outside the range stays.
    let stays = (0..)
        .map(|i| format!("stays:{i}"))
        .find(|k| (LAST + 1..=5460).contains(&slot_of(k)))
        .unwrap();
    assert_eq!(run(&mut c0, &["SET", &stays, "here"]), ok());

    // Writers on keys of the range, through a follower that accepts only redirections.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let keys: Vec<String> = (0..)
                .map(|i| format!("w{w}:{i}"))
                .filter(|k| in_range(k))
                .take(15)
                .collect();
            let (f, stop, k2) = (Follower::new(&nodes), stop.clone(), keys.clone());
            (keys, thread::spawn(move || write_until(f, k2, stop)))
        })
        .collect();
    thread::sleep(Duration::from_millis(200));

    let cmd = format!("CLUSTER MIGRATESLOTS SLOTSRANGE {FIRST} 999 1000 {LAST} NODE {target}");
    assert_eq!(q(&mut c0, &cmd), ok());
    // While the job runs, both ends show the markers.
    let (src_line, tgt_line) = (
        myself_line(&mut nodes[0].redis()),
        myself_line(&mut nodes[1].redis()),
    );
    let job = slot_jobs(&mut nodes[0].redis()).pop().unwrap();
    if job["state"] == "running" {
        assert!(
            src_line.contains(&format!("[{FIRST}->-{target}]")),
            "{src_line}"
        );
        assert!(tgt_line.contains(&format!("[{FIRST}-<-")), "{tgt_line}");
    }
    let job = finished_job(&mut nodes[0].redis());
    stop.store(true, Ordering::Relaxed);
    assert_eq!(job["state"], "success", "{job:?}");
    assert_eq!(job["slot_ranges"], format!("{FIRST}-999 1000-{LAST}"));
    assert_eq!(job["target_node"], target);
    assert!(job["keys_moved"].parse::<usize>().unwrap() >= plain.len() + typed.len());
    assert_eq!(job["operation"], "EXPORT");
    // The target lists the import side of the same job (as Valkey 9 does), ended too.
    let mut import = std::collections::HashMap::new();
    assert!(
        eventually(CONVERGE, || {
            import = slot_jobs(&mut nodes[1].redis())
                .into_iter()
                .find(|j| j["name"] == job["name"])
                .unwrap_or_default();
            import.get("state").is_some_and(|s| s == "success")
        }),
        "{import:?}"
    );
    assert_eq!(import["operation"], "IMPORT");
    assert_eq!(import["source_node"], myid(&nodes[0]));
    assert_eq!(import["target_node"], target);
    assert_eq!(import["slot_ranges"], job["slot_ranges"]);
    assert_eq!(import["keys_moved"], job["keys_moved"]);

    for (keys, handle) in writers {
        let (counts, anomalies) = handle.join().unwrap();
        assert!(anomalies.is_empty(), "{anomalies:#?}");
        let mut f = Follower::new(&nodes);
        for (k, n) in keys.iter().zip(counts) {
            let want = if n == 0 { nil() } else { bulk(n.to_string()) };
            assert_eq!(f.cmd(&["GET", k]), want, "{k}");
        }
    }

    // The source holds nothing of the range and answers MOVED; its own view names the
    // target; everyone agrees.
    for s in [FIRST, 1000, LAST] {
        assert_eq!(
            as_int(&q(&mut c0, &format!("CLUSTER COUNTKEYSINSLOT {s}"))),
            0
        );
    }
    let moved = err_text(&run(&mut c0, &["GET", &plain[0]]));
    assert!(
        moved.starts_with(&format!("MOVED {} ", slot_of(&plain[0])))
            && moved.ends_with(&format!(":{}", nodes[1].port)),
        "{moved}"
    );
    assert!(myself_line(&mut nodes[0].redis()).ends_with(&format!(" {}-5460", LAST + 1)));
    assert!(
        !myself_line(&mut nodes[0].redis()).contains('[')
            && !myself_line(&mut nodes[1].redis()).contains('[')
    );
    assert!(
        eventually(CONVERGE, || agree(&nodes)),
        "{:#?}",
        all_nodes(&nodes)
    );

    // Every value, type and TTL arrived.
    let mut c1 = nodes[1].redis();
    for (i, k) in plain.iter().enumerate() {
        if i % 500 != 0 && i % 500 != 1 {
            continue;
        }
        assert_eq!(run(&mut c1, &["GET", k]), bulk(format!("v{i}")), "{k}");
        let ttl = as_int(&run(&mut c1, &["TTL", k]));
        if i % 2 == 0 {
            assert!((3000..=3600).contains(&ttl), "{k}: ttl {ttl}");
        } else {
            assert_eq!(ttl, -1, "{k}");
        }
    }
    assert_eq!(
        as_strings(&run(&mut c1, &["HMGET", h, "f1", "f2"])),
        vec!["a", "b"]
    );
    assert_eq!(
        as_strings(&run(&mut c1, &["LRANGE", l, "0", "-1"])),
        vec!["x", "y", "z"]
    );
    let mut members = as_strings(&run(&mut c1, &["SMEMBERS", s]));
    members.sort();
    assert_eq!(members, vec!["m1", "m2"]);
    assert_eq!(
        as_strings(&run(&mut c1, &["ZRANGE", z, "0", "-1", "WITHSCORES"])),
        vec!["a", "1.5", "b", "2"]
    );
    let pttl = as_int(&run(&mut c1, &["PTTL", e]));
    assert!((1..=600_000).contains(&pttl), "pttl {pttl}");
    assert_eq!(as_str(&run(&mut c1, &["TYPE", z])), "zset");
    assert_eq!(run(&mut c0, &["GET", &stays]), bulk("here"));
    let mut mc = nodes[1].memcache_raw();
    mc.send(format!("get {mc_key}\r\n").as_bytes());
    mc.expect(format!("VALUE {mc_key} 4242 5\r\nhello\r\nEND\r\n").as_bytes());

    let (ok_, out) = redis_cli(&["--cluster", "check", &nodes[0].addr()]);
    assert!(ok_, "redis-cli --cluster check failed:\n{out}");
    assert!(
        out.contains("[OK] All nodes agree about slots configuration."),
        "{out}"
    );
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");
    assert!(!out.contains("[WARNING]"), "{out}");
}

#[test]
fn bad_input_changes_nothing() {
    let dir = TempDir::new("slotmove-bad");
    let mut nodes = three_agreeing_nodes(&dir);
    let (me, other, third) = (myid(&nodes[0]), myid(&nodes[1]), myid(&nodes[2]));
    let mut c = nodes[0].redis();
    let key = key_on(0);
    assert_eq!(run(&mut c, &["SET", &key, "v"]), ok());
    let before: Vec<String> = nodes.iter().map(|n| myself_line(&mut n.redis())).collect();
    let cases = [
        (
            "CLUSTER MIGRATESLOTS SLOTSRANGE 0 10 NODE".to_string(),
            "ERR wrong number of arguments for 'cluster|migrateslots' command",
        ),
        (
            format!("CLUSTER MIGRATESLOTS SLOTSRANGE 0 10 NODE {other} NODE {other}"),
            "ERR syntax error",
        ),
        (
            format!("CLUSTER MIGRATESLOTS SLOTSRANGE 10 0 NODE {other}"),
            "ERR start slot number 10 is greater than end slot number 0",
        ),
        (
            format!("CLUSTER MIGRATESLOTS SLOTSRANGE 0 16384 NODE {other}"),
            "ERR Invalid or out of range slot",
        ),
        (
            format!("CLUSTER MIGRATESLOTS SLOTSRANGE 0 5 3 7 NODE {other}"),
            "ERR Slot 3 specified multiple times",
        ),
        (
            "CLUSTER MIGRATESLOTS SLOTSRANGE 0 10 NODE 0000000000000000000000000000000000000000"
                .to_string(),
            "ERR Unknown node 0000000000000000000000000000000000000000",
        ),
        (
            format!("CLUSTER MIGRATESLOTS SLOTSRANGE 0 10 NODE {me}"),
            "ERR Can't migrate slots to myself",
        ),
        (
            format!("CLUSTER MIGRATESLOTS SLOTSRANGE 5460 5461 NODE {other}"),
            "ERR I'm not the owner of hash slot 5461",
        ),
        // The first block is fine, the second is not: neither starts.
        (
            format!("CLUSTER MIGRATESLOTS SLOTSRANGE 0 10 NODE {other} SLOTSRANGE 11 12 NODE {me}"),
            "ERR Can't migrate slots to myself",
        ),
        // What a source tells its target of a job, malformed: no entry is made.
        (
            format!("CLUSTER BATON-SLOTJOB j1 running 0 m {other} 0"),
            "ERR wrong number of arguments for 'cluster|baton-slotjob' command",
        ),
        (
            format!("CLUSTER BATON-SLOTJOB j1 sleeping 0 m {other} 0 1"),
            "ERR syntax error",
        ),
        (
            format!("CLUSTER BATON-SLOTJOB j1 running -1 m {other} 0 1"),
            "ERR value is not an integer or out of range",
        ),
        (
            format!("CLUSTER BATON-SLOTJOB j1 running 0 m {other} 0 1 2"),
            "ERR syntax error",
        ),
        (
            format!("CLUSTER BATON-SLOTJOB j1 running 0 m {other} 0 16384"),
            "ERR Invalid or out of range slot",
        ),
        (
            format!("CLUSTER BATON-SLOTJOB j1 running 0 m {other} 9 1"),
            "ERR syntax error",
        ),
    ];
    for (cmd, want) in &cases {
        assert_eq!(err_text(&q(&mut c, cmd)), *want, "{cmd}");
    }
    // A slot already migrating (by redis-cli's SETSLOT): refused, the marker stays as it was.
    assert_eq!(
        q(&mut c, &format!("CLUSTER SETSLOT 7 MIGRATING {third}")),
        ok()
    );
    assert_eq!(
        err_text(&q(
            &mut c,
            &format!("CLUSTER MIGRATESLOTS SLOTSRANGE 0 10 NODE {other}")
        )),
        "ERR Slot 7 is already being migrated or imported"
    );
    assert_eq!(q(&mut c, "CLUSTER SETSLOT 7 STABLE"), ok());
    assert_eq!(as_array(&q(&mut c, "CLUSTER GETSLOTMIGRATIONS")).len(), 0);
    let after: Vec<String> = nodes.iter().map(|n| myself_line(&mut n.redis())).collect();
    assert_eq!(before, after);

    // An unreachable target: node 1 stopped.
    nodes[1].signal(libc_sigkill());
    nodes[1].wait_exit(EXIT_TIMEOUT);
    let e = err_text(&q(
        &mut c,
        &format!("CLUSTER MIGRATESLOTS SLOTSRANGE 0 10 NODE {other}"),
    ));
    assert!(
        e.starts_with(&format!("ERR target node {other} at 127.0.0.1:")),
        "{e}"
    );
    assert_eq!(myself_line(&mut nodes[0].redis()), before[0]);
    assert_eq!(myself_line(&mut nodes[2].redis()), before[2]);
    assert_eq!(as_array(&q(&mut c, "CLUSTER GETSLOTMIGRATIONS")).len(), 0);
    assert_eq!(run(&mut c, &["GET", &key]), bulk("v"));
}

/// What a key of [`churn`] should hold: a string or a list, and its expiry (absolute
/// unix ms by the writer's clock before the command; 0 = none).
#[derive(Clone, Debug)]
enum Model {
    Str(String, i64),
    List(Vec<String>, i64),
}

/// Step `step` (of six) of [`churn`] on key `k`, whose model is `m`: a short-lived
/// string, a plain one, a long TTL added, a list replacing it, a push, an EXPIRE. Every
/// reply is checked; returns the new model.
fn churn_step(
    f: &mut Follower,
    k: &str,
    step: usize,
    turn: usize,
    m: &Model,
    bad: &mut Vec<String>,
) -> Model {
    let mut expect = |what: &str, got: redis::Value, want: redis::Value| {
        if got != want {
            bad.push(format!("{what} {k} (turn {turn}): {got:?}, want {want:?}"));
        }
    };
    let v = format!("t{turn}");
    let now = unix_ms();
    match step {
        0 => {
            expect("SET PX", f.cmd(&["SET", k, &v, "PX", "150"]), ok());
            Model::Str(v, now + 150)
        }
        1 => {
            expect("SET", f.cmd(&["SET", k, &v]), ok());
            Model::Str(v, 0)
        }
        2 => {
            expect("PEXPIRE", f.cmd(&["PEXPIRE", k, "3600000"]), int(1));
            match m {
                Model::Str(v, _) => Model::Str(v.clone(), now + 3_600_000),
                m => m.clone(),
            }
        }
        3 => {
            expect("DEL", f.cmd(&["DEL", k]), int(1));
            let (a, b) = (format!("a{turn}"), format!("b{turn}"));
            expect("RPUSH", f.cmd(&["RPUSH", k, &a, &b]), int(2));
            Model::List(vec![a, b], 0)
        }
        4 => {
            let c = format!("c{turn}");
            expect("RPUSH c", f.cmd(&["RPUSH", k, &c]), int(3));
            match m {
                Model::List(items, _) => {
                    let mut items = items.clone();
                    items.push(c);
                    Model::List(items, 0)
                }
                m => m.clone(),
            }
        }
        _ => {
            expect("EXPIRE", f.cmd(&["EXPIRE", k, "3600"]), int(1));
            match m {
                Model::List(items, _) => Model::List(items.clone(), now + 3_600_000),
                m => m.clone(),
            }
        }
    }
}

/// One writer for the stream test: key `i` goes round [`churn_step`]'s six steps, from
/// step `i % 6` on (the steps before it run first), until `stop`. Returns the models, the
/// anomalies and how many steps ran.
fn churn(
    mut f: Follower,
    keys: Vec<String>,
    stop: Arc<AtomicBool>,
) -> (Vec<Model>, Vec<String>, u64) {
    let mut models = vec![Model::Str(String::new(), 0); keys.len()];
    let (mut bad, mut ops) = (Vec::new(), 0u64);
    for (i, k) in keys.iter().enumerate() {
        for step in 0..i % 6 {
            models[i] = churn_step(&mut f, k, step, 0, &models[i], &mut bad);
        }
    }
    let mut turn = 0usize;
    while !stop.load(Ordering::Relaxed) {
        for (i, k) in keys.iter().enumerate() {
            models[i] = churn_step(&mut f, k, (turn + i) % 6, turn, &models[i], &mut bad);
            ops += 1;
        }
        turn += 1;
    }
    (models, bad, ops)
}

#[test]
fn overwrites_type_changes_and_expiries_during_the_stream_all_arrive() {
    if !redis_cli_present() {
        eprintln!("\n!!!!!!!! redis-cli is not installed: MIGRATESLOTS is NOT tested !!!!!!!!\n");
        return;
    }
    let dir = TempDir::new("slotstream");
    let nodes: Vec<Server> = (0..3)
        .map(|i| {
            let file = dir.file(&format!("n{i}.conf"));
            Server::builder(2)
                .args(&["--cluster-enabled", "yes", "--cluster-config-file", &file])
                .start()
        })
        .collect();
    create_agreeing(&nodes);
    let target = myid(&nodes[1]);
    let mut c0 = nodes[0].redis();
    // Enough keys that the walk takes a while: 30000 of 256 bytes.
    let bulk_keys = fill_keys(&mut c0, "bulk:", 30_000, in_range, |k| {
        format!("{k}:{}", "x".repeat(240))
    });
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let keys: Vec<String> = (0..)
                .map(|i| format!("churn{w}:{i}"))
                .filter(|k| in_range(k))
                .take(20)
                .collect();
            let (f, stop, k2) = (Follower::new(&nodes), stop.clone(), keys.clone());
            (keys, thread::spawn(move || churn(f, k2, stop)))
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    let cmd = format!("CLUSTER MIGRATESLOTS SLOTSRANGE {FIRST} {LAST} NODE {target}");
    assert_eq!(q(&mut c0, &cmd), ok());
    let job = finished_job(&mut nodes[0].redis());
    // A few more turns through the new owner, then stop.
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    assert_eq!(job["state"], "success", "{job:?}");
    let handed: usize = job["keys_moved"].parse().unwrap();
    assert!(handed >= bulk_keys.len(), "{job:?}");

    // Short TTLs set last have passed by now.
    thread::sleep(Duration::from_millis(400));
    let mut c1 = nodes[1].redis();
    for (keys, handle) in writers {
        let (models, anomalies, ops) = handle.join().unwrap();
        assert!(anomalies.is_empty(), "{anomalies:#?}");
        assert!(ops > 0);
        for (k, m) in keys.iter().zip(models) {
            let pttl = as_int(&run(&mut c1, &["PTTL", k]));
            let left = |at: i64| at - unix_ms();
            match m {
                Model::Str(_, at) if at != 0 && left(at) < 0 => {
                    assert_eq!(run(&mut c1, &["GET", k]), nil(), "{k}: expired");
                }
                Model::Str(v, at) => {
                    assert_eq!(run(&mut c1, &["GET", k]), bulk(&v), "{k}");
                    if at == 0 {
                        assert_eq!(pttl, -1, "{k}");
                    } else {
                        assert!(
                            pttl > 0 && pttl <= 3_600_000 && pttl >= left(at) - 60_000,
                            "{k}: {pttl}"
                        );
                    }
                }
                Model::List(items, at) => {
                    assert_eq!(
                        as_strings(&run(&mut c1, &["LRANGE", k, "0", "-1"])),
                        items,
                        "{k}"
                    );
                    if at == 0 {
                        assert_eq!(pttl, -1, "{k}");
                    } else {
                        assert!(
                            pttl > 0 && pttl <= 3_600_000 && pttl >= left(at) - 60_000,
                            "{k}: {pttl}"
                        );
                    }
                }
            }
        }
    }
    for k in bulk_keys.iter().step_by(997) {
        assert_eq!(
            run(&mut c1, &["GET", k]),
            bulk(format!("{k}:{}", "x".repeat(240)))
        );
    }
    for s in [FIRST, 1000, LAST] {
        assert_eq!(
            as_int(&q(&mut c0, &format!("CLUSTER COUNTKEYSINSLOT {s}"))),
            0
        );
    }
    assert!(
        !myself_line(&mut nodes[0].redis()).contains('[')
            && !myself_line(&mut nodes[1].redis()).contains('[')
    );
    assert!(
        eventually(CONVERGE, || agree(&nodes)),
        "{:#?}",
        all_nodes(&nodes)
    );
}

#[test]
fn a_target_that_dies_mid_stream_loses_no_key() {
    if !redis_cli_present() {
        eprintln!("\n!!!!!!!! redis-cli is not installed: MIGRATESLOTS is NOT tested !!!!!!!!\n");
        return;
    }
    let dir = TempDir::new("slotstream-dies");
    let mut nodes = three_agreeing_nodes(&dir);
    let target = myid(&nodes[1]);
    let mut c0 = nodes[0].redis();
    let keys = fill_keys(&mut c0, "stay:", 40_000, in_range, |k| {
        format!("{k}:{}", "y".repeat(200))
    });
    let before = myself_line(&mut nodes[0].redis());
    let cmd = format!("CLUSTER MIGRATESLOTS SLOTSRANGE {FIRST} {LAST} NODE {target}");
    assert_eq!(q(&mut c0, &cmd), ok());
    nodes[1].signal(libc_sigkill());
    nodes[1].wait_exit(EXIT_TIMEOUT);
    let job = finished_job(&mut nodes[0].redis());
    assert_eq!(job["state"], "failed", "{job:?}");
    assert!(!job["message"].is_empty(), "{job:?}");
    // Nothing moved: the source serves every key, plain (no redirection), and owns the
    // range without markers.
    assert_eq!(myself_line(&mut nodes[0].redis()), before);
    let mut pipe = redis::pipe();
    for k in &keys {
        pipe.cmd("GET").arg(k);
    }
    let got: Vec<redis::Value> = pipe.query(&mut c0).unwrap();
    for (k, v) in keys.iter().zip(got) {
        assert_eq!(v, bulk(format!("{k}:{}", "y".repeat(200))), "{k}");
    }
    assert_eq!(run(&mut c0, &["SET", &keys[0], "new"]), ok());
    assert_eq!(run(&mut c0, &["GET", &keys[0]]), bulk("new"));
}

/// SIGKILL's number (Linux).
fn libc_sigkill() -> i32 {
    9
}
