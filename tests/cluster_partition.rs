//! The minority guard (net/src/cluster/health.rs): a primary that cannot reach a majority
//! of the slot-owning primaries for `cluster-node-timeout` refuses every key with
//! `-CLUSTERDOWN The cluster is down` (memcached port: `SERVER_ERROR CLUSTERDOWN ...`)
//! and says `cluster_state:fail`, until it reaches a majority again (after the rejoin
//! delay) or learns that its slots went to its promoted replica (then at once, with MOVED).
//!
//! Partitions are made with SIGSTOP: a stopped node answers nothing. Every server is a
//! child killed on drop (also on panic), stopped ones are continued first; waits are
//! bounded retries, no timing is asserted.

mod common;

use std::time::Duration;

use common::cluster::*;
use common::*;

/// `--cluster-node-timeout` of these nodes.
const NODE_TIMEOUT_MS: u64 = 1000;
/// Bound of every wait for a state change (the node timeout, the gossip's own I/O
/// timeouts towards stopped peers, the rejoin delay, and a loaded machine).
const WAIT: Duration = Duration::from_secs(40);
const DOWN: &str = "CLUSTERDOWN The cluster is down";

fn short_timeout_node(config_file: &str) -> Server {
    timeout_node(config_file, NODE_TIMEOUT_MS, true, None)
}

/// Nodes stopped with SIGSTOP, continued when dropped (before the servers are, so that
/// their SIGTERM is not left pending behind a stop).
struct Stopped(Vec<i32>);

impl Stopped {
    fn stop(&mut self, s: &Server) {
        s.signal(libc::SIGSTOP);
        self.0.push(s.pid());
    }

    fn resume(&mut self, s: &Server) {
        s.signal(libc::SIGCONT);
        self.0.retain(|&p| p != s.pid());
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        for &pid in &self.0 {
            // SAFETY: kill(2) on a child these tests spawned and have not reaped.
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
    }
}

fn cluster_state(s: &Server) -> String {
    let info = as_str(&q(&mut s.redis(), "CLUSTER INFO"));
    info.lines()
        .find_map(|l| l.strip_prefix("cluster_state:"))
        .unwrap_or_default()
        .to_string()
}

fn set(s: &Server, key: &str, value: &str) -> Value {
    run(&mut s.redis(), &["SET", key, value])
}

fn is_err(v: &Value, text: &str) -> bool {
    matches!(v, Value::ServerError(_)) && err_text(v) == text
}

/// Three primaries made a cluster by hand (no redis-cli needed), agreeing.
fn three(dir: &TempDir) -> Vec<Server> {
    let nodes: Vec<Server> = (0..3)
        .map(|i| short_timeout_node(&dir.file(&format!("n{i}.conf"))))
        .collect();
    create_by_hand(&nodes);
    assert!(
        eventually(CONVERGE * 4, || agree(&nodes)),
        "{:#?}",
        all_nodes(&nodes)
    );
    nodes
}

#[test]
fn a_primary_in_a_minority_refuses_keys_until_the_majority_is_back() {
    let dir = TempDir::new("partition");
    let nodes = three(&dir);
    let mut stopped = Stopped(Vec::new());
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let mine = key_on(0);
    let theirs = key_on(1);
    assert_eq!(set(a, &mine, "1"), ok());
    assert_eq!(cluster_state(a), "ok");

    // One primary of three unreachable: a still has a majority (itself and b).
    let c_id = myid(c);
    stopped.stop(c);
    assert!(
        eventually(WAIT, || {
            as_str(&q(&mut a.redis(), "CLUSTER NODES"))
                .lines()
                .any(|l| l.starts_with(&c_id) && l.contains("fail?"))
        }),
        "c never flagged fail? on a"
    );
    assert_eq!(set(a, &mine, "2"), ok());
    assert_eq!(cluster_state(a), "ok");

    // Two of three: a is in a minority and refuses every key, its own slots' included,
    // on both ports; key-less commands still work.
    // The writes a takes before the node timeout is up are kept (as in Redis); the last
    // one acknowledged is what a serves once it is back.
    stopped.stop(b);
    let mut last = "2".to_string();
    let mut n = 0;
    assert!(
        eventually(WAIT, || {
            n += 1;
            let v = format!("minority-{n}");
            let reply = set(a, &mine, &v);
            if reply == ok() {
                last = v;
            }
            is_err(&reply, DOWN)
        }),
        "a kept serving writes in a minority"
    );
    assert_eq!(cluster_state(a), "fail");
    let mut ac = a.redis();
    assert_err(&mut ac, &format!("GET {mine}"), DOWN);
    assert_err(&mut ac, &format!("GET {theirs}"), DOWN);
    assert_err(
        &mut ac,
        &format!("MGET {mine} {theirs}"),
        "CROSSSLOT Keys in request don't hash to the same slot",
    );
    assert_eq!(q(&mut ac, "PING"), simple("PONG"));
    let mut mc = a.memcache_raw();
    mc.send(format!("set {mine} 0 0 1\r\nx\r\nget {mine}\r\n").as_bytes());
    assert_eq!(mc.read_line(), format!("SERVER_ERROR {DOWN}\r\n"));
    assert_eq!(mc.read_line(), format!("SERVER_ERROR {DOWN}\r\n"));
    // Nor does it give keys or slots away: MIGRATE of keys and MIGRATESLOTS are refused
    // (Redis refuses any command with keys while down), and the key stays.
    let port = c.port.to_string();
    for keys in [&["KEYS", mine.as_str()][..], &[]] {
        let first = if keys.is_empty() { mine.as_str() } else { "" };
        let mut cmd = vec!["MIGRATE", "127.0.0.1", &port, first, "0", "5000"];
        cmd.extend_from_slice(keys);
        assert_eq!(err_text(&run(&mut ac, &cmd)), DOWN, "{cmd:?}");
    }
    let s = slot_of(&mine).to_string();
    assert_eq!(
        err_text(&run(
            &mut ac,
            &[
                "CLUSTER",
                "MIGRATESLOTS",
                "SLOTSRANGE",
                &s,
                &s,
                "NODE",
                &c_id
            ]
        )),
        DOWN
    );

    // The majority is back: a serves again (after its rejoin delay), with the last value
    // it acknowledged; the refused writes changed nothing.
    stopped.resume(b);
    stopped.resume(c);
    assert!(
        eventually(WAIT, || run(&mut a.redis(), &["GET", &mine]) == bulk(&last)),
        "a never served again: {:?}",
        run(&mut a.redis(), &["GET", &mine])
    );
    assert_eq!(cluster_state(a), "ok");
    assert_eq!(set(a, &mine, "4"), ok());
    mc.send(format!("get {mine}\r\n").as_bytes());
    mc.expect(format!("VALUE {mine} 0 1\r\n4\r\nEND\r\n").as_bytes());
    assert!(eventually(WAIT, || cluster_state(b) == "ok"
        && cluster_state(c) == "ok"));
}

/// The module doc's FORCE case: the primary is cut off (in a minority, then frozen) while
/// its replica is promoted with CLUSTER FAILOVER FORCE. The old primary takes no write
/// from the moment it is down: a write that waits in its socket while it is frozen is
/// refused when it runs again, and it then follows the new primary (MOVED at once).
#[test]
fn a_cut_off_primary_takes_no_write_while_its_replica_is_forced_over() {
    let dir = TempDir::new("partition-force");
    let mut nodes = three(&dir);
    nodes.push(short_timeout_node(&dir.file("n3.conf")));
    let mut stopped = Stopped(Vec::new());
    let (a, b, c, r) = (&nodes[0], &nodes[1], &nodes[2], &nodes[3]);
    let (a_id, r_id) = (myid(a), myid(r));
    let key = key_on(0);
    let slot = slot_of(&key);
    let mut rc = r.redis();
    assert_eq!(
        q(&mut rc, &format!("CLUSTER MEET 127.0.0.1 {}", a.port)),
        ok()
    );
    assert!(eventually(WAIT, || as_str(&q(
        &mut r.redis(),
        "CLUSTER NODES"
    ))
    .contains(&a_id)));
    assert_eq!(q(&mut rc, &format!("CLUSTER REPLICATE {a_id}")), ok());
    assert!(
        eventually(WAIT, || agree(&nodes)),
        "{:#?}",
        all_nodes(&nodes)
    );
    assert_eq!(set(a, &key, "before"), ok());
    assert_eq!(run(&mut a.redis(), &["WAIT", "1", "10000"]), int(1));

    // a loses the majority: down once the node timeout is up.
    stopped.stop(b);
    stopped.stop(c);
    assert!(
        eventually(WAIT, || is_err(&set(a, &key, "minority"), DOWN)),
        "a kept serving writes in a minority"
    );
    // a freezes with a write waiting in its socket; meanwhile r is forced over. r is a
    // primary in a minority too (b and c are stopped): it refuses keys as well.
    stopped.stop(a);
    let mut pending = Raw::connect(a.port);
    pending.send_command(&["SET", &key, "stale"]);
    assert_eq!(q(&mut rc, "CLUSTER FAILOVER FORCE"), ok());
    assert!(
        eventually(WAIT, || is_err(&run(&mut r.redis(), &["GET", &key]), DOWN)),
        "r: {:?}",
        run(&mut r.redis(), &["GET", &key])
    );
    // The majority (b, c, r) is back: r serves a's slots.
    stopped.resume(b);
    stopped.resume(c);
    assert!(
        eventually(WAIT, || set(r, &key, "after") == ok()),
        "r never served: {:?}",
        set(r, &key, "after")
    );
    // a runs again: the waiting write is refused (a is still down, or already follows r),
    // and a sends the slot's clients to r from now on.
    stopped.resume(a);
    let answer = pending.read_value();
    let moved = format!("MOVED {slot} 127.0.0.1:{}", r.port);
    assert!(
        is_err(&answer, DOWN) || is_err(&answer, &moved),
        "the write that waited on the frozen primary: {answer:?}"
    );
    assert!(
        eventually(WAIT, || is_err(&set(a, &key, "late"), &moved)),
        "a: {:?}",
        set(a, &key, "late")
    );
    let a_line = as_str(&q(&mut a.redis(), "CLUSTER NODES"))
        .lines()
        .find(|l| l.contains("myself"))
        .unwrap()
        .to_string();
    assert!(a_line.contains(&format!("myself,slave {r_id}")), "{a_line}");
    assert_eq!(run(&mut r.redis(), &["GET", &key]), bulk("after"));
    assert!(eventually(WAIT, || cluster_state(a) == "ok"));
}
