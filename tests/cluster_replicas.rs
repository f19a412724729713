//! Cluster replicas: six nodes made three primaries and three replicas by an unmodified
//! `redis-cli --cluster create --cluster-replicas 1`; views that agree on who replicates
//! whom (CLUSTER NODES, SLOTS, SHARDS, REPLICAS); READONLY reads on a replica and MOVED
//! without it; a manual CLUSTER FAILOVER under the `redis` crate's cluster client that
//! checks every acknowledged write survives; and a replica joined by hand with CLUSTER
//! REPLICATE that an operator promotes with FAILOVER FORCE after its primary died, with
//! what the cluster answers in between, and the old primary following it on restart.
//!
//! Every server is a child killed on drop (also on panic); redis-cli runs under a
//! deadline; waits are bounded retries.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::cluster::*;
use common::*;
use redis::cluster::ClusterClientBuilder;

/// Longer than [`CONVERGE`]: a failover syncs data as well as views.
const FAILOVER_WAIT: Duration = Duration::from_secs(30);

/// One node's CLUSTER NODES, parsed: id -> (port, primary id or "-", flags, slots).
#[derive(Debug, Clone)]
struct Line {
    port: u16,
    primary: String,
    flags: String,
    slots: Vec<String>,
}

fn lines_of(s: &Server) -> BTreeMap<String, Line> {
    let text = as_str(&q(&mut s.redis(), "CLUSTER NODES"));
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let port = f[1].split('@').next().unwrap().rsplit(':').next().unwrap();
            (
                f[0].to_string(),
                Line {
                    port: port.parse().unwrap(),
                    primary: f[3].to_string(),
                    flags: f[2].to_string(),
                    slots: f[8..].iter().map(|s| s.to_string()).collect(),
                },
            )
        })
        .collect()
}

/// The node's own line.
fn me(s: &Server) -> Line {
    lines_of(s)
        .into_values()
        .find(|l| l.flags.contains("myself"))
        .unwrap()
}

/// CLUSTER NODES without what differs between observers (`myself`, ping and pong
/// times, link state): every node's must be identical, primary ids included.
fn full_view(s: &Server) -> Vec<String> {
    let text = as_str(&q(&mut s.redis(), "CLUSTER NODES"));
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let slots: Vec<&str> = f[8..]
                .iter()
                .copied()
                .filter(|s| !s.starts_with('['))
                .collect();
            format!(
                "{} {} {} {} {} {}",
                f[0],
                f[1],
                f[2].replace("myself,", ""),
                f[3],
                f[6],
                slots.join(" ")
            )
        })
        .collect();
    lines.sort();
    lines
}

fn identical(nodes: &[Server]) -> bool {
    let first = full_view(&nodes[0]);
    nodes.iter().all(|n| full_view(n) == first)
}

fn by_port(nodes: &[Server], port: u16) -> &Server {
    nodes.iter().find(|n| n.port == port).unwrap()
}

/// The views of `alive` agree (normalized lines) and name `count` nodes.
fn agree_on(alive: &[&Server], count: usize) -> bool {
    let views: Vec<Vec<String>> = alive.iter().map(|s| nodes_of(s)).collect();
    views.iter().all(|v| v == &views[0] && v.len() == count)
}

fn check_ok(addr: &str) -> String {
    let (ok_, out) = redis_cli(&["--cluster", "check", addr]);
    assert!(ok_, "redis-cli --cluster check failed:\n{out}");
    assert!(
        out.contains("[OK] All nodes agree about slots configuration."),
        "{out}"
    );
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");
    out
}

fn dump(nodes: &[Server]) {
    for n in nodes {
        eprintln!("---- node {} ----\n{}", n.port, n.stderr());
    }
}

#[test]
fn redis_cli_replicas_serve_reads_and_fail_over_without_losing_writes() {
    if !redis_cli_present() {
        eprintln!(
            "\n!!!!!!!! redis-cli is not installed: cluster replicas are NOT tested !!!!!!!!\n"
        );
        return;
    }
    let dir = TempDir::new("replicas");
    let nodes: Vec<Server> = (0..6)
        .map(|i| node(&dir.file(&format!("n{i}.conf")), 0))
        .collect();
    let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
    args.extend(nodes.iter().map(|n| n.addr()));
    args.extend([
        "--cluster-replicas".into(),
        "1".into(),
        "--cluster-yes".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok_, out) = redis_cli(&args);
    assert!(ok_, "redis-cli --cluster create failed:\n{out}");
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");
    assert!(
        eventually(CONVERGE, || agree(&nodes) && identical(&nodes)),
        "{:#?}",
        nodes.iter().map(full_view).collect::<Vec<_>>()
    );

    // Three primaries with slots, three replicas, one each.
    let view = lines_of(&nodes[0]);
    let primaries: Vec<(&String, &Line)> = view.iter().filter(|(_, l)| l.primary == "-").collect();
    let replicas: Vec<(&String, &Line)> = view.iter().filter(|(_, l)| l.primary != "-").collect();
    assert_eq!((primaries.len(), replicas.len()), (3, 3), "{view:#?}");
    for (id, l) in &primaries {
        assert!(!l.slots.is_empty(), "{id}: {l:?}");
        assert_eq!(
            replicas.iter().filter(|(_, r)| &&r.primary == id).count(),
            1,
            "{view:#?}"
        );
    }
    for (_, r) in &replicas {
        assert!(r.flags.contains("slave"), "{r:?}");
        assert!(r.slots.is_empty(), "{r:?}");
    }
    // Every node says the same about itself as the others say about it.
    for n in &nodes {
        let mine = me(n);
        let theirs = &view.values().find(|l| l.port == n.port).unwrap();
        assert_eq!(mine.primary, theirs.primary);
    }

    // CLUSTER SLOTS: the replica after the primary in each range.
    let mut c0 = nodes[0].redis();
    let slots = as_array(&q(&mut c0, "CLUSTER SLOTS"));
    assert_eq!(slots.len(), 3, "{slots:?}");
    for range in &slots {
        let r = as_array(range);
        assert_eq!(r.len(), 4, "primary and one replica: {r:?}");
        let owner = as_str(&as_array(&r[2])[2]);
        let replica = as_str(&as_array(&r[3])[2]);
        assert_eq!(view[&replica].primary, owner);
    }
    // CLUSTER SHARDS: each shard a primary then its replica.
    let shards = as_array(&q(&mut c0, "CLUSTER SHARDS"));
    assert_eq!(shards.len(), 3, "{shards:?}");
    for shard in &shards {
        let ns = as_array(&field(shard, "nodes"));
        assert_eq!(ns.len(), 2, "{shard:?}");
        assert_eq!(as_str(&field(&ns[0], "role")), "master");
        assert_eq!(as_str(&field(&ns[1], "role")), "replica");
    }
    // CLUSTER REPLICAS / SLAVES.
    let (p_id, p_line) = primaries
        .iter()
        .find(|(_, l)| l.slots.iter().any(|s| s.starts_with("0-")))
        .map(|(id, l)| ((*id).clone(), (*l).clone()))
        .expect("a primary of slot 0");
    let (r_id, r_line) = replicas
        .iter()
        .find(|(_, l)| l.primary == p_id)
        .map(|(id, l)| ((*id).clone(), (*l).clone()))
        .unwrap();
    for sub in ["REPLICAS", "SLAVES"] {
        let list = as_strings(&q(&mut c0, &format!("CLUSTER {sub} {p_id}")));
        assert_eq!(list.len(), 1, "{list:?}");
        assert!(list[0].starts_with(&r_id), "{list:?}");
        assert!(list[0].contains(&format!(" slave {p_id} ")), "{list:?}");
    }
    assert_err(
        &mut c0,
        &format!("CLUSTER REPLICAS {r_id}"),
        "ERR The specified node is not a master",
    );
    let out = check_ok(&nodes[0].addr());
    assert_eq!(out.matches("1 additional replica(s)").count(), 3, "{out}");
    assert_eq!(out.matches("\nS: ").count(), 3, "{out}");

    let primary = by_port(&nodes, p_line.port);
    let replica = by_port(&nodes, r_line.port);
    let mut pc = primary.redis();
    let mut rc = replica.redis();

    // Errors, with Redis's texts.
    assert_err(
        &mut pc,
        "CLUSTER FAILOVER",
        "ERR You should send CLUSTER FAILOVER to a replica",
    );
    // The failover handshake's internal command refuses a node that is not a replica
    // here, and pauses nothing.
    assert_err(
        &mut pc,
        &format!("CLUSTER BATON-MFSTART {} 60000", "e".repeat(40)),
        &format!("ERR {} is not a replica of this primary", "e".repeat(40)),
    );
    assert_err(
        &mut pc,
        &format!("CLUSTER BATON-MFSTART {r_id} soon"),
        "ERR value is not an integer or out of range",
    );
    assert_eq!(run(&mut pc, &["SET", &key_in("unpaused", 0), "1"]), ok());
    assert_err(&mut rc, "CLUSTER FAILOVER SOON", "ERR syntax error");
    assert_err(
        &mut pc,
        &format!("CLUSTER REPLICATE {}", "f".repeat(40)),
        &format!("ERR Unknown node {}", "f".repeat(40)),
    );
    assert_err(
        &mut pc,
        &format!("CLUSTER REPLICATE {p_id}"),
        "ERR Can't replicate myself",
    );
    assert_err(
        &mut pc,
        &format!("CLUSTER REPLICATE {r_id}"),
        "ERR I can only replicate a master, not a replica.",
    );
    let other = primaries.iter().find(|(id, _)| **id != p_id).unwrap().0;
    assert_err(
        &mut pc,
        &format!("CLUSTER REPLICATE {other}"),
        "ERR To set a master the node must be empty and without assigned slots.",
    );
    assert_err(
        &mut rc,
        "CLUSTER SETSLOT 0 STABLE",
        "ERR Please use SETSLOT only with masters.",
    );
    assert_err(
        &mut rc,
        "REPLICAOF 127.0.0.1 1",
        "ERR REPLICAOF not allowed in cluster mode.",
    );

    // Reads on the replica: MOVED, unless READONLY; writes always MOVED.
    let key = key_on(0);
    let moved = format!("MOVED {} 127.0.0.1:{}", slot_of(&key), primary.port);
    assert_eq!(run(&mut pc, &["SET", &key, "v1"]), ok());
    assert_eq!(err_text(&run(&mut rc, &["GET", &key])), moved);
    assert_eq!(q(&mut rc, "READONLY"), ok());
    assert!(
        eventually(CONVERGE, || run(&mut rc, &["GET", &key]) == bulk("v1")),
        "the write reached the replica"
    );
    assert_eq!(err_text(&run(&mut rc, &["SET", &key, "v2"])), moved);
    // Multi-key reads of one slot, whatever cores the keys live on.
    let tagged: Vec<String> = (0..8).map(|i| format!("{{{key}}}m{i}")).collect();
    for (i, k) in tagged.iter().enumerate() {
        assert_eq!(run(&mut pc, &["SADD", k, &i.to_string(), "x"]), int(2));
    }
    let mut mget = vec!["MGET"];
    mget.extend(tagged.iter().map(String::as_str));
    assert!(eventually(CONVERGE, || run(
        &mut rc,
        &["EXISTS", &tagged[7]]
    ) == int(1)));
    assert_eq!(
        run(&mut rc, &mget),
        arr(tagged.iter().map(|_| Value::Nil).collect()),
        "MGET of sets reads nil for each"
    );
    let mut sunion = vec!["SUNION"];
    sunion.extend(tagged.iter().map(String::as_str));
    assert_eq!(as_array(&run(&mut rc, &sunion)).len(), 9);
    let other_key = key_on(2);
    assert!(
        err_text(&run(&mut rc, &["GET", &other_key])).starts_with("MOVED "),
        "another primary's slot is MOVED even with READONLY"
    );
    assert_eq!(q(&mut rc, "READWRITE"), ok());
    assert_eq!(err_text(&run(&mut rc, &["GET", &key])), moved);

    // A manual failover under a writer.
    let urls: Vec<String> = nodes
        .iter()
        .map(|n| format!("redis://127.0.0.1:{}/", n.port))
        .collect();
    let client = ClusterClientBuilder::new(urls)
        .connection_timeout(IO_TIMEOUT)
        .response_timeout(IO_TIMEOUT)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (client, stop, written) = (client.clone(), stop.clone(), written.clone());
        thread::spawn(move || {
            let mut con = client.get_connection().unwrap();
            let mut acked = Vec::new();
            let mut errors = Vec::new();
            let mut slowest = Duration::ZERO;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let k = format!("w:{i}");
                let t = Instant::now();
                let r: redis::RedisResult<()> = redis::cmd("SET").arg(&k).arg(i).query(&mut con);
                slowest = slowest.max(t.elapsed());
                match r {
                    Ok(()) => acked.push(i),
                    Err(e) => errors.push(format!("SET {k}: {e}")),
                }
                written.store(i + 1, Ordering::Relaxed);
                i += 1;
            }
            (acked, errors, slowest)
        })
    };
    assert!(eventually(FAILOVER_WAIT, || written
        .load(Ordering::Relaxed)
        >= 200));
    let started = Instant::now();
    assert_eq!(q(&mut rc, "CLUSTER FAILOVER"), ok());
    let done = eventually(FAILOVER_WAIT, || {
        let r = me(replica);
        let p = me(primary);
        r.primary == "-" && r.slots.iter().any(|s| s.starts_with("0-")) && p.primary == r_id
    });
    if !done {
        stop.store(true, Ordering::Relaxed);
        dump(&nodes);
        panic!(
            "the failover did not happen: {:#?} {:#?}",
            me(replica),
            me(primary)
        );
    }
    let took = started.elapsed();
    let after = written.load(Ordering::Relaxed);
    assert!(eventually(FAILOVER_WAIT, || written
        .load(Ordering::Relaxed)
        >= after + 200));
    stop.store(true, Ordering::Relaxed);
    let (acked, errors, slowest) = writer.join().expect("the writer");
    // Printed, not asserted (a loaded machine stretches both).
    eprintln!(
        "manual failover: both nodes switched roles {took:?} after CLUSTER FAILOVER; \
         the slowest SET of the writer took {slowest:?}"
    );
    assert!(errors.is_empty(), "the cluster client failed: {errors:?}");
    assert!(acked.len() >= 400, "{} writes", acked.len());

    assert!(
        eventually(CONVERGE, || agree(&nodes) && identical(&nodes)),
        "{:#?}",
        nodes.iter().map(full_view).collect::<Vec<_>>()
    );
    // Every acknowledged write is there: through the client, and on the new primary
    // for the keys of its slots.
    let mut con = client.get_connection().unwrap();
    let mut on_new = 0;
    for &i in &acked {
        let k = format!("w:{i}");
        let v: Option<u64> = redis::cmd("GET").arg(&k).query(&mut con).unwrap();
        assert_eq!(v, Some(i), "{k} lost");
        if slot_of(&k) <= 5460 {
            assert_eq!(run(&mut rc, &["GET", &k]), bulk(i.to_string()), "{k}");
            on_new += 1;
        }
    }
    assert!(on_new > 0);
    assert_eq!(run(&mut rc, &["GET", &key]), bulk("v1"));
    // The old primary replicates the new one now, and serves READONLY reads.
    assert!(eventually(FAILOVER_WAIT, || {
        info_number(&mut pc, "replication", "master_port") == i64::from(replica.port)
    }));
    assert_eq!(
        err_text(&run(&mut pc, &["SET", &key, "v3"])),
        format!("MOVED {} 127.0.0.1:{}", slot_of(&key), replica.port)
    );
    assert_eq!(q(&mut pc, "READONLY"), ok());
    assert!(eventually(FAILOVER_WAIT, || run(&mut pc, &["GET", &key]) == bulk("v1")));
    check_ok(&replica.addr());
}

/// A node started with a short node timeout (so a dead peer is flagged quickly).
fn short_timeout_node(config_file: &str, port: u16) -> Server {
    timeout_node(config_file, 1000, false, Some(port))
}

#[test]
fn replicate_by_hand_then_force_failover_after_the_primary_died() {
    let dir = TempDir::new("force");
    let mut nodes: Vec<Server> = (0..4)
        .map(|i| short_timeout_node(&dir.file(&format!("n{i}.conf")), 0))
        .collect();
    create_by_hand(&nodes[..3]);
    assert!(eventually(CONVERGE, || agree(&nodes[..3])));
    let p_id = myid(&nodes[0]);
    let r_id = myid(&nodes[3]);
    let key = key_on(0);
    {
        let mut p = nodes[0].redis();
        assert_eq!(run(&mut p, &["SET", &key, "before"]), ok());
    }
    let mut rc = nodes[3].redis();
    assert_err(
        &mut rc,
        "CLUSTER FAILOVER",
        "ERR You should send CLUSTER FAILOVER to a replica",
    );
    assert_eq!(
        q(
            &mut rc,
            &format!("CLUSTER MEET 127.0.0.1 {}", nodes[0].port)
        ),
        ok()
    );
    assert!(eventually(CONVERGE, || lines_of(&nodes[3]).contains_key(&p_id)));
    assert_eq!(q(&mut rc, &format!("CLUSTER REPLICATE {p_id}")), ok());
    assert!(
        eventually(CONVERGE, || agree(&nodes)),
        "{:#?}",
        all_nodes(&nodes)
    );
    assert_eq!(me(&nodes[3]).primary, p_id);
    assert!(me(&nodes[3]).flags.contains("myself,slave"));
    assert_eq!(q(&mut rc, "READONLY"), ok());
    assert!(eventually(FAILOVER_WAIT, || run(&mut rc, &["GET", &key])
        == bulk("before")));
    // A write acknowledged by the replica too (WAIT), just before the primary dies.
    {
        let mut p = nodes[0].redis();
        assert_eq!(run(&mut p, &["SET", &key, "acked"]), ok());
        assert_eq!(run(&mut p, &["WAIT", "1", "10000"]), int(1));
    }

    // The primary dies. Nothing fails over by itself: the others flag it `fail?` and
    // still send its slots' clients to it; the cluster stays `ok`.
    nodes[0].signal(libc::SIGKILL);
    assert!(nodes[0].wait_exit(IO_TIMEOUT).is_some());
    let p_port = nodes[0].port;
    let mut c1 = nodes[1].redis();
    assert!(
        eventually(FAILOVER_WAIT, || lines_of(&nodes[1])[&p_id]
            .flags
            .contains("fail?")),
        "{:#?}",
        lines_of(&nodes[1])
    );
    assert_eq!(
        err_text(&run(&mut c1, &["GET", &key])),
        format!("MOVED {} 127.0.0.1:{p_port}", slot_of(&key))
    );
    let info = as_str(&q(&mut c1, "CLUSTER INFO"));
    assert!(info.contains("cluster_state:ok\r\n"), "{info}");
    assert!(info.contains("cluster_slots_pfail:5461\r\n"), "{info}");

    // The operator promotes the replica: FORCE, since the primary is down.
    assert!(eventually(FAILOVER_WAIT, || lines_of(&nodes[3])[&p_id]
        .flags
        .contains("fail?")));
    assert_err(
        &mut rc,
        "CLUSTER FAILOVER",
        "ERR Master is down or failed, please use CLUSTER FAILOVER FORCE",
    );
    assert_eq!(q(&mut rc, "CLUSTER FAILOVER FORCE"), ok());
    let alive = [&nodes[1], &nodes[2], &nodes[3]];
    assert!(
        eventually(FAILOVER_WAIT, || {
            agree_on(&alive, 4)
                && lines_of(&nodes[1])[&r_id]
                    .slots
                    .iter()
                    .any(|s| s == "0-5460")
        }),
        "{:#?}",
        alive.iter().map(|s| nodes_of(s)).collect::<Vec<_>>()
    );
    assert_eq!(
        err_text(&run(&mut c1, &["GET", &key])),
        format!("MOVED {} 127.0.0.1:{}", slot_of(&key), nodes[3].port)
    );
    assert_eq!(q(&mut rc, "READWRITE"), ok());
    assert_eq!(run(&mut rc, &["GET", &key]), bulk("acked"));
    assert_eq!(run(&mut rc, &["SET", &key, "after"]), ok());

    // The old primary comes back from its config file: it sees its replica took its
    // slots with a newer epoch, and follows it.
    let file = dir.file("n0.conf");
    nodes[0] = short_timeout_node(&file, p_port);
    assert!(
        eventually(FAILOVER_WAIT, || me(&nodes[0]).primary == r_id
            && agree(&nodes)),
        "{:#?}",
        all_nodes(&nodes)
    );
    let mut p = nodes[0].redis();
    assert_eq!(q(&mut p, "READONLY"), ok());
    assert!(eventually(FAILOVER_WAIT, || run(&mut p, &["GET", &key])
        == bulk("after")));
}

/// `redis-cli --cluster add-node --cluster-slave --cluster-master-id` joins a replica;
/// a reshard moves two slots away from its primary (the replica's copy of them goes
/// too); CLUSTER FAILOVER TAKEOVER promotes it; `redis-cli --cluster del-node` then removes
/// the old primary, now a replica holding data (CLUSTER RESET empties a replica).
#[test]
fn add_node_as_replica_takeover_and_del_node() {
    if !redis_cli_present() {
        eprintln!("\n!!!!!!!! redis-cli is not installed: add-node --cluster-slave is NOT tested !!!!!!!!\n");
        return;
    }
    let dir = TempDir::new("addslave");
    let mut nodes = three_agreeing_nodes(&dir);
    let p_id = myid(&nodes[0]);
    let key = key_on(0);
    assert_eq!(run(&mut nodes[0].redis(), &["SET", &key, "v"]), ok());
    nodes.push(node(&dir.file("n3.conf"), 0));
    let (ok_, out) = redis_cli(&[
        "--cluster",
        "add-node",
        &nodes[3].addr(),
        &nodes[0].addr(),
        "--cluster-slave",
        "--cluster-master-id",
        &p_id,
    ]);
    assert!(
        ok_,
        "redis-cli --cluster add-node --cluster-slave failed:\n{out}"
    );
    assert!(
        eventually(CONVERGE, || agree(&nodes) && me(&nodes[3]).primary == p_id),
        "{:#?}",
        all_nodes(&nodes)
    );
    let out = check_ok(&nodes[1].addr());
    assert!(out.contains(&format!("replicates {p_id}")), "{out}");

    // A reshard with a replica in the cluster: redis-cli moves slots between primaries
    // only, and the replica of the source follows what its primary holds.
    let moved_key = (0..)
        .map(|n| format!("r:{n}"))
        .find(|k| slot_of(k) < 2)
        .unwrap();
    assert_eq!(run(&mut nodes[0].redis(), &["SET", &moved_key, "m"]), ok());
    let to = myid(&nodes[1]);
    let (ok_, out) = redis_cli(&[
        "--cluster",
        "reshard",
        &nodes[0].addr(),
        "--cluster-from",
        &p_id,
        "--cluster-to",
        &to,
        "--cluster-slots",
        "2",
        "--cluster-yes",
    ]);
    assert!(ok_, "redis-cli --cluster reshard failed:\n{out}");
    assert!(
        eventually(CONVERGE, || agree(&nodes)
            && lines_of(&nodes[3])[&to]
                .slots
                .iter()
                .any(|s| s.starts_with("0-1"))),
        "{:#?}",
        all_nodes(&nodes)
    );
    check_ok(&nodes[2].addr());
    assert_eq!(run(&mut nodes[1].redis(), &["GET", &moved_key]), bulk("m"));
    let mut r3 = nodes[3].redis();
    assert_eq!(q(&mut r3, "READONLY"), ok());
    assert_eq!(
        err_text(&run(&mut r3, &["GET", &moved_key])),
        format!("MOVED {} 127.0.0.1:{}", slot_of(&moved_key), nodes[1].port),
        "the slot left the replica's primary"
    );
    assert!(eventually(CONVERGE, || q(&mut r3, "DBSIZE") == int(1)));

    let r_id = myid(&nodes[3]);
    let mut rc = nodes[3].redis();
    assert_eq!(q(&mut rc, "READONLY"), ok());
    assert!(eventually(FAILOVER_WAIT, || run(&mut rc, &["GET", &key]) == bulk("v")));
    assert_eq!(q(&mut rc, "CLUSTER FAILOVER TAKEOVER"), ok());
    assert!(
        eventually(FAILOVER_WAIT, || agree(&nodes)
            && me(&nodes[0]).primary == r_id
            && me(&nodes[3]).slots.iter().any(|s| s == "2-5460")),
        "{:#?}",
        all_nodes(&nodes)
    );
    check_ok(&nodes[3].addr());
    // The old primary, restarted from its config file, is still a replica of the new
    // one and syncs its data again; then it leaves.
    let port0 = nodes[0].port;
    nodes[0].signal(libc::SIGKILL);
    assert!(nodes[0].wait_exit(IO_TIMEOUT).is_some());
    nodes[0] = node(&dir.file("n0.conf"), port0);
    assert_eq!(me(&nodes[0]).primary, r_id, "restarted as a replica");
    let mut pc = nodes[0].redis();
    assert_eq!(q(&mut pc, "READONLY"), ok());
    assert!(eventually(FAILOVER_WAIT, || run(&mut pc, &["GET", &key]) == bulk("v")));
    let (ok_, out) = redis_cli(&["--cluster", "del-node", &nodes[1].addr(), &p_id]);
    assert!(ok_, "redis-cli --cluster del-node failed:\n{out}");
    assert_eq!(me(&nodes[0]).primary, "-", "reset: a primary again");
    assert_eq!(q(&mut pc, "DBSIZE"), int(0), "reset: emptied");
    let rest = [&nodes[1], &nodes[2], &nodes[3]];
    assert!(
        eventually(CONVERGE, || agree_on(&rest, 3)),
        "{:#?}",
        rest.iter().map(|s| nodes_of(s)).collect::<Vec<_>>()
    );
    assert_eq!(run(&mut nodes[3].redis(), &["GET", &key]), bulk("v"));
}
