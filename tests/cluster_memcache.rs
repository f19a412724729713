//! The memcached port in cluster mode: a client connected to ONE node of a three-node
//! cluster (made by `redis-cli --cluster create`) reads and writes keys of every slot; the
//! node forwards each key it does not own to its owner and answers itself. Checked: the
//! keys live on their owners (their Redis ports say so), flags/CAS/noreply and the other
//! commands keep memcached's exact replies across nodes, a multi-get spanning all three
//! nodes comes back in key order, a pipeline mixing local and forwarded requests is
//! answered in order, a reshard under a memcached writer shows it no error, and an owner
//! that is killed makes its keys answer `SERVER_ERROR` within a bounded time.
//!
//! Every server is a child killed on drop (also on panic); redis-cli runs under a deadline.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::cluster::*;
use common::*;

/// `--cluster-node-timeout` of these nodes: the bound on a forwarded request to a dead
/// owner.
const NODE_TIMEOUT_MS: u64 = 3000;

/// A cluster node with its memcached port open.
fn mc_node(config_file: &str) -> Server {
    timeout_node(config_file, NODE_TIMEOUT_MS, true, None)
}

fn three_mc_nodes(dir: &TempDir) -> Option<Vec<Server>> {
    if !redis_cli_present() {
        eprintln!(
            "\n!!!!!!!! redis-cli is not installed: cluster_memcache is NOT tested !!!!!!!!\n"
        );
        return None;
    }
    let nodes: Vec<Server> = (0..3)
        .map(|i| mc_node(&dir.file(&format!("n{i}.conf"))))
        .collect();
    create_agreeing(&nodes);
    Some(nodes)
}

/// Which node of the standard 3-way split owns `key`.
fn owner(key: &str) -> usize {
    match slot_of(key) {
        0..=5460 => 0,
        5461..=10922 => 1,
        _ => 2,
    }
}

/// `n` keys `<prefix>:<i>` owned by node `i` of the standard split.
fn keys_on(prefix: &str, node: usize, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}:{i}"))
        .filter(|k| owner(k) == node)
        .take(n)
        .collect()
}

/// The reply of `get key` that holds `value` with `flags`.
fn value(key: &str, flags: u32, value: &str) -> String {
    format!("VALUE {key} {flags} {}\r\n{value}\r\n", value.len())
}

/// Reads one `gets` reply of a single hit and returns its CAS unique.
fn read_cas(raw: &mut Raw, key: &str, flags: u32, len: usize) -> u64 {
    let line = raw.read_line();
    let prefix = format!("VALUE {key} {flags} {len} ");
    let cas = line
        .strip_prefix(&prefix)
        .and_then(|r| r.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("gets {key}: {line:?}"));
    raw.read_n(len + 2);
    raw.expect(b"END\r\n");
    cas
}

/// Keys of every slot range written and read through node 0 only, then found on their
/// owners' Redis ports; CAS, noreply, arithmetic, touch, append/prepend and the meta
/// commands across nodes; a multi-get over all three nodes; a mixed pipeline in order.
#[test]
fn one_node_serves_every_key_with_exact_replies() {
    let dir = TempDir::new("mc-fwd");
    let Some(nodes) = three_mc_nodes(&dir) else {
        return;
    };
    let mut raw = nodes[0].memcache_raw();

    // Keys of all three nodes, written and read back through node 0, with flags.
    let keys: Vec<String> = (0..3).flat_map(|n| keys_on("k", n, 40)).collect();
    for (i, k) in keys.iter().enumerate() {
        raw.send(format!("set {k} {i} 0 {}\r\nv-{i}\r\n", format!("v-{i}").len()).as_bytes());
        raw.expect(b"STORED\r\n");
    }
    for (i, k) in keys.iter().enumerate() {
        raw.send(format!("get {k}\r\n").as_bytes());
        raw.expect(format!("{}END\r\n", value(k, i as u32, &format!("v-{i}"))).as_bytes());
    }
    // Each key lives on its owner: its Redis port serves it, the others redirect.
    let mut redis: Vec<_> = nodes.iter().map(|n| n.redis()).collect();
    for (i, k) in keys.iter().enumerate() {
        let o = owner(k);
        assert_eq!(
            q(&mut redis[o], &format!("GET {k}")),
            Value::BulkString(format!("v-{i}").into_bytes()),
            "{k} on its owner {o}"
        );
        let other = (o + 1) % 3;
        let moved = err_text(&q(&mut redis[other], &format!("GET {k}")));
        assert!(moved.starts_with("MOVED "), "{k} on node {other}: {moved}");
    }
    let total: i64 = redis
        .iter_mut()
        .map(|c| match q(c, "DBSIZE") {
            Value::Int(n) => n,
            v => panic!("DBSIZE: {v:?}"),
        })
        .sum();
    assert_eq!(total, keys.len() as i64, "nothing stored twice");

    // A multi-get spanning all three nodes, with misses and a repeated key, in key order.
    let (a, b, c) = (&keys[0], &keys[40], &keys[80]);
    raw.send(format!("get {c} nope:1 {a} {b} {c}\r\n").as_bytes());
    raw.expect(
        format!(
            "{}{}{}{}END\r\n",
            value(c, 80, "v-80"),
            value(a, 0, "v-0"),
            value(b, 40, "v-40"),
            value(c, 80, "v-80")
        )
        .as_bytes(),
    );
    // gets/cas on keys of the other two nodes: the right token stores, a stale one not.
    for (key, flags) in [(b, 40u32), (c, 80u32)] {
        raw.send(format!("gets {key}\r\n").as_bytes());
        let cas = read_cas(&mut raw, key, flags, format!("v-{flags}").len());
        raw.send(format!("cas {key} 9 0 3 {cas}\r\nnew\r\n").as_bytes());
        raw.expect(b"STORED\r\n");
        raw.send(format!("cas {key} 9 0 3 {cas}\r\nold\r\n").as_bytes());
        raw.expect(b"EXISTS\r\n");
        raw.send(format!("gets {b} {c}\r\n").as_bytes());
        let line = raw.read_line();
        assert!(line.starts_with("VALUE "), "{line:?}");
        while raw.read_line() != "END\r\n" {}
    }
    raw.send(format!("get {b} {c}\r\n").as_bytes());
    raw.expect(format!("{}{}END\r\n", value(b, 9, "new"), value(c, 9, "new")).as_bytes());
    raw.send(b"cas nope:1 0 0 1 1\r\nx\r\n");
    raw.expect(b"NOT_FOUND\r\n");

    // One pipeline, one write: local and forwarded requests of every kind, answered in
    // order; noreply stays silent wherever the key lives.
    let (l, r1, r2) = (
        keys_on("p", 0, 1).remove(0),
        keys_on("p", 1, 1).remove(0),
        keys_on("p", 2, 1).remove(0),
    );
    let mut send = String::new();
    let mut want = String::new();
    for (k, n) in [(&l, 1), (&r1, 2), (&r2, 3)] {
        send += &format!("set {k} {n} 0 1 noreply\r\n{n}\r\n");
        send += &format!("incr {k} 10\r\n");
        want += &format!("{}\r\n", n + 10);
        send += &format!("append {k} 0 0 1\r\nA\r\n");
        want += "STORED\r\n";
        send += &format!("prepend {k} 0 0 1\r\nP\r\n");
        want += "STORED\r\n";
        send += &format!("get {k}\r\n");
        want += &value(k, n, &format!("P{}A", n + 10));
        want += "END\r\n";
        send += &format!("touch {k} 1000\r\n");
        want += "TOUCHED\r\n";
        send += &format!("mg {k} v f\r\n");
        want += &format!("VA 4 f{n}\r\nP{}A\r\n", n + 10);
        send += &format!("ms {k} 2 T0 F7\r\nhi\r\n");
        want += "HD\r\n";
        send += &format!("ma {k}\r\n");
        want += "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
        send += &format!("mg {k} v f q\r\nmg nope:{n} v q\r\n");
        want += "VA 2 f7\r\nhi\r\n";
        send += &format!("md {k} q\r\nmn\r\n");
        want += "MN\r\n";
        send += &format!("delete {k}\r\n");
        want += "NOT_FOUND\r\n";
        send += &format!("add {k} 0 0 1\r\nx\r\n");
        want += "STORED\r\n";
        send += &format!("decr {k} 1\r\n");
        want += "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
    }
    send += &format!("get {r2} {l} {r1}\r\n");
    want += &format!(
        "{}{}{}END\r\n",
        value(&r2, 0, "x"),
        value(&l, 0, "x"),
        value(&r1, 0, "x")
    );
    send += "version\r\n";
    raw.send(send.as_bytes());
    raw.expect(want.as_bytes());
    let version = raw.read_line();
    assert!(version.starts_with("VERSION "), "{version:?}");
}

/// A memcached writer on node 0 sets and reads back keys of slots that move (from node 1
/// to node 2, and from node 0 to node 1) while redis-cli reshards them, with no error;
/// afterwards every key holds its last value on its new owner. Then node 1 is stopped and
/// node 2 killed: their keys answer `SERVER_ERROR` within a bounded time (node 1's again
/// once it runs), and node 0's own keys still work.
#[test]
fn reshard_under_a_memcached_writer_then_an_owner_dies() {
    let dir = TempDir::new("mc-reshard");
    let Some(mut nodes) = three_mc_nodes(&dir) else {
        return;
    };
    const SLOTS: u16 = 12;
    let moving: Vec<u16> = (0..SLOTS).chain(5461..5461 + SLOTS).collect();
    let keys: Arc<Vec<String>> = Arc::new(
        (0..)
            .map(|i| format!("m:{i}"))
            .filter(|k| moving.contains(&slot_of(k)))
            .take(120)
            .collect(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let port = nodes[0].memcache_port();
    let writer = {
        let (keys, stop) = (keys.clone(), stop.clone());
        thread::spawn(move || {
            let mut raw = Raw::connect(port);
            let mut round = 0u64;
            while round == 0 || !stop.load(Ordering::Relaxed) {
                round += 1;
                // Pipelined pairs: the set, then its read back.
                for k in keys.iter() {
                    let v = format!("{k}={round}");
                    raw.send(format!("set {k} 5 0 {}\r\n{v}\r\nget {k}\r\n", v.len()).as_bytes());
                    raw.expect(b"STORED\r\n");
                    raw.expect(format!("{}END\r\n", value(k, 5, &v)).as_bytes());
                }
            }
            round
        })
    };
    let ids: Vec<String> = nodes.iter().map(myid).collect();
    let mut outs = Vec::new();
    // Node 1's lowest slots to node 2 first (a move between two nodes the client is not
    // on), then node 0's to node 1 (redis-cli moves a source's lowest slots).
    for (from, to) in [(1, 2), (0, 1)] {
        let (ok_, out) = redis_cli(&[
            "--cluster",
            "reshard",
            &nodes[0].addr(),
            "--cluster-from",
            &ids[from],
            "--cluster-to",
            &ids[to],
            "--cluster-slots",
            &SLOTS.to_string(),
            "--cluster-yes",
        ]);
        assert!(
            ok_,
            "redis-cli --cluster reshard {from}->{to} failed:\n{out}"
        );
        outs.push(out);
    }
    stop.store(true, Ordering::Relaxed);
    let rounds = match writer.join() {
        Ok(r) => r,
        Err(_) => {
            for n in &nodes {
                eprintln!("node {}:\n{}", n.port, n.stderr());
            }
            panic!("the memcached writer failed during the reshard:\n{outs:#?}");
        }
    };
    assert!(rounds >= 2, "the writer ran {rounds} rounds");
    assert!(
        eventually(CONVERGE, || agree(&nodes)),
        "{:#?}",
        all_nodes(&nodes)
    );
    // Every key on its new owner, with the last value written.
    let mut raw = nodes[0].memcache_raw();
    for k in keys.iter() {
        let s = slot_of(k);
        let new_owner = if s < SLOTS { 1 } else { 2 };
        let v = format!("{k}={rounds}");
        assert_eq!(
            q(&mut nodes[new_owner].redis(), &format!("GET {k}")),
            Value::BulkString(v.clone().into_bytes()),
            "{k} (slot {s}) on node {new_owner}"
        );
        raw.send(format!("get {k}\r\n").as_bytes());
        raw.expect(format!("{}END\r\n", value(k, 5, &v)).as_bytes());
    }

    // The owner of a key stops answering (SIGSTOP): SERVER_ERROR once the node timeout
    // is up, not a hang; once it runs again, its keys are served again.
    let dead = keys_on("d", 2, 1).remove(0);
    let mine = keys_on("d", 0, 1).remove(0);
    let stalled = keys_on("d", 1, 1).remove(0);
    raw.send(format!("set {mine} 0 0 1\r\n1\r\nset {stalled} 0 0 1\r\n2\r\n").as_bytes());
    raw.expect(b"STORED\r\nSTORED\r\n");
    nodes[1].signal(libc::SIGSTOP);
    let start = Instant::now();
    raw.send(format!("get {stalled}\r\n").as_bytes());
    let line = raw.read_line();
    let took = start.elapsed();
    nodes[1].signal(libc::SIGCONT);
    assert!(
        line.starts_with("SERVER_ERROR ") && line.contains("did not answer"),
        "{line:?}"
    );
    assert!(
        took < Duration::from_millis(NODE_TIMEOUT_MS) * 3,
        "SERVER_ERROR took {took:?}"
    );
    raw.send(format!("get {stalled}\r\n").as_bytes());
    raw.expect(format!("{}END\r\n", value(&stalled, 0, "2")).as_bytes());

    // The owner of a key dies: a bounded SERVER_ERROR, never a hang; node 0's own keys
    // keep working on the same connection.
    nodes[2].signal(libc::SIGKILL);
    let _ = nodes[2].wait_exit(Duration::from_secs(10));
    let start = Instant::now();
    raw.send(format!("get {dead}\r\nget {mine} {dead}\r\nset {dead} 0 0 1\r\n1\r\nset {dead} 0 0 1 noreply\r\n1\r\nget {mine}\r\n").as_bytes());
    for _ in 0..3 {
        let line = raw.read_line();
        assert!(line.starts_with("SERVER_ERROR "), "{line:?}");
    }
    raw.expect(format!("{}END\r\n", value(&mine, 0, "1")).as_bytes());
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(NODE_TIMEOUT_MS) * 3,
        "SERVER_ERROR took {took:?}"
    );

    // The owner comes back (restarted from its config file on its port, empty): node 0
    // connects to it again and its keys are served.
    let port2 = nodes[2].port;
    nodes[2] = node(&dir.file("n2.conf"), port2);
    let mut last = String::new();
    assert!(
        eventually(Duration::from_secs(30), || {
            raw.send(format!("set {dead} 0 0 1\r\n2\r\n").as_bytes());
            last = raw.read_line();
            last == "STORED\r\n"
        }),
        "{last:?}"
    );
    raw.send(format!("get {dead}\r\n").as_bytes());
    raw.expect(format!("{}END\r\n", value(&dead, 0, "2")).as_bytes());
    assert_eq!(run(&mut nodes[2].redis(), &["GET", &dead]), bulk("2"));
}

/// A memcached client on a cluster replica (it cannot follow `-MOVED` and has no
/// READONLY): the replica forwards every key to its slot's primary, writes included, so
/// the client reads and writes keys of every node, its own primary's too, and reads its
/// own writes at once. The keys live on their primaries, and reach the replica's copy by
/// replication.
#[test]
fn a_replica_forwards_every_key_to_its_primary() {
    let dir = TempDir::new("mc-replica");
    let Some(mut nodes) = three_mc_nodes(&dir) else {
        return;
    };
    nodes.push(mc_node(&dir.file("n3.conf")));
    let p_id = myid(&nodes[0]);
    let mut rc = nodes[3].redis();
    assert_eq!(
        q(
            &mut rc,
            &format!("CLUSTER MEET 127.0.0.1 {}", nodes[0].port)
        ),
        ok()
    );
    assert!(
        eventually(CONVERGE, || nodes_of(&nodes[3]).len() == 4),
        "{:#?}",
        nodes_of(&nodes[3])
    );
    assert_eq!(q(&mut rc, &format!("CLUSTER REPLICATE {p_id}")), ok());
    assert!(
        eventually(CONVERGE, || agree(&nodes)),
        "{:#?}",
        all_nodes(&nodes)
    );

    let mut raw = nodes[3].memcache_raw();
    let keys: Vec<String> = (0..3).flat_map(|n| keys_on("r", n, 5)).collect();
    for (i, k) in keys.iter().enumerate() {
        let v = format!("v-{i}");
        raw.send(format!("set {k} {i} 0 {}\r\n{v}\r\nget {k}\r\n", v.len()).as_bytes());
        raw.expect(b"STORED\r\n");
        raw.expect(format!("{}END\r\n", value(k, i as u32, &v)).as_bytes());
    }
    // A multi-get over the three primaries, in key order.
    let (a, b, c) = (&keys[0], &keys[5], &keys[10]);
    raw.send(format!("get {c} {a} {b}\r\n").as_bytes());
    raw.expect(
        format!(
            "{}{}{}END\r\n",
            value(c, 10, "v-10"),
            value(a, 0, "v-0"),
            value(b, 5, "v-5")
        )
        .as_bytes(),
    );
    // gets/cas on a key of the replica's own primary and of another node; incr, delete.
    for (key, flags) in [(a, 0u32), (b, 5u32)] {
        raw.send(format!("gets {key}\r\n").as_bytes());
        let cas = read_cas(&mut raw, key, flags, format!("v-{flags}").len());
        raw.send(format!("cas {key} 1 0 2 {cas}\r\n10\r\n").as_bytes());
        raw.expect(b"STORED\r\n");
        raw.send(format!("cas {key} 1 0 2 {cas}\r\n11\r\nincr {key} 5\r\n").as_bytes());
        raw.expect(b"EXISTS\r\n15\r\n");
    }
    raw.send(format!("delete {c}\r\nget {c}\r\n").as_bytes());
    raw.expect(b"DELETED\r\nEND\r\n");

    // Every write is on the key's primary; the replica's copy follows its primary's.
    for (i, k) in keys.iter().enumerate().skip(1) {
        let want = match i {
            5 => bulk("15"),
            10 => nil(),
            _ => bulk(format!("v-{i}")),
        };
        assert_eq!(
            run(&mut nodes[owner(k)].redis(), &["GET", k]),
            want,
            "{k} on its primary"
        );
    }
    assert_eq!(run(&mut nodes[0].redis(), &["GET", a]), bulk("15"));
    assert_eq!(q(&mut rc, "READONLY"), ok());
    assert!(
        eventually(CONVERGE, || run(&mut rc, &["GET", a]) == bulk("15")),
        "the replica's copy of {a}: {:?}",
        run(&mut rc, &["GET", a])
    );
}

/// A memcached client's `gets` before a key moves and its `cas` after it: the CAS unique
/// travels with the key (in the RESTORE payload), so the `cas` stores on the new owner
/// through `redis-cli --cluster reshard` (MIGRATE) and CLUSTER MIGRATESLOTS (the slot
/// stream), and a token older than the key's last change still fails.
#[test]
fn cas_tokens_survive_a_reshard_and_a_slot_stream() {
    let dir = TempDir::new("mc-cas-move");
    let Some(nodes) = three_mc_nodes(&dir) else {
        return;
    };
    const SLOTS: u16 = 4;
    // A key of node 1's lowest slots (what the reshard moves), and one of node 2's.
    let resharded = (0..)
        .map(|i| format!("c:{i}"))
        .find(|k| (5461..5461 + SLOTS).contains(&slot_of(k)))
        .unwrap();
    let streamed = keys_on("s", 2, 1).remove(0);
    let mut raw = nodes[0].memcache_raw();
    let mut tokens = Vec::new();
    for k in [&resharded, &streamed] {
        raw.send(format!("set {k} 3 0 3\r\none\r\ngets {k}\r\n").as_bytes());
        raw.expect(b"STORED\r\n");
        tokens.push(read_cas(&mut raw, k, 3, 3));
    }

    let ids: Vec<String> = nodes.iter().map(myid).collect();
    let (ok_, out) = redis_cli(&[
        "--cluster",
        "reshard",
        &nodes[0].addr(),
        "--cluster-from",
        &ids[1],
        "--cluster-to",
        &ids[2],
        "--cluster-slots",
        &SLOTS.to_string(),
        "--cluster-yes",
    ]);
    assert!(ok_, "redis-cli --cluster reshard failed:\n{out}");
    let s = slot_of(&streamed);
    let mut owner2 = nodes[2].redis();
    assert_eq!(
        q(
            &mut owner2,
            &format!("CLUSTER MIGRATESLOTS SLOTSRANGE {s} {s} NODE {}", ids[0])
        ),
        ok()
    );
    let job = finished_job(&mut owner2);
    assert_eq!(job["state"], "success", "{job:?}");
    assert!(
        eventually(CONVERGE, || agree(&nodes)),
        "{:#?}",
        all_nodes(&nodes)
    );
    // Both keys live on their new owners (nodes 2 and 0) ...
    assert_eq!(run(&mut owner2, &["GET", &resharded]), bulk("one"));
    assert_eq!(run(&mut nodes[0].redis(), &["GET", &streamed]), bulk("one"));
    // ... with the CAS unique they had, whether asked through node 0 or the owner.
    let mut at_owner = nodes[2].memcache_raw();
    at_owner.send(format!("gets {resharded}\r\n").as_bytes());
    assert_eq!(read_cas(&mut at_owner, &resharded, 3, 3), tokens[0]);
    for (k, cas) in [&resharded, &streamed].into_iter().zip(tokens) {
        raw.send(format!("cas {k} 4 0 3 {cas}\r\ntwo\r\n").as_bytes());
        raw.expect(b"STORED\r\n");
        raw.send(format!("cas {k} 4 0 5 {cas}\r\nthree\r\nget {k}\r\n").as_bytes());
        raw.expect(format!("EXISTS\r\n{}END\r\n", value(k, 4, "two")).as_bytes());
    }
}
