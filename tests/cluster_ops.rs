//! Cluster operations with an unmodified `redis-cli --cluster`: add-node then rebalance,
//! a node restarted from its config file, reshard away then del-node, `fix` of an open
//! slot; and the `redis` crate's cluster client writing through a reshard.
//!
//! Every server is a child killed on drop (also on panic); redis-cli runs under a
//! deadline. The rebalance gives the new node a small weight so that it moves about 27
//! slots, not 4096: a debug build on a loaded two-CPU machine moves a few slots a second.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::cluster::*;
use common::*;
use redis::cluster::{ClusterClient, ClusterClientBuilder};

fn skip_without_redis_cli(what: &str) -> bool {
    if redis_cli_present() {
        return false;
    }
    eprintln!("\n!!!!!!!! redis-cli is not installed: {what} is NOT tested !!!!!!!!\n");
    true
}

/// A cluster client on every node of `nodes`, with bounded socket timeouts.
fn cluster_client(nodes: &[Server]) -> ClusterClient {
    let urls: Vec<String> = nodes
        .iter()
        .map(|n| format!("redis://127.0.0.1:{}/", n.port))
        .collect();
    ClusterClientBuilder::new(urls)
        .connection_timeout(IO_TIMEOUT)
        .response_timeout(IO_TIMEOUT)
        .build()
        .unwrap()
}

/// The slots a node's CLUSTER NODES line says it owns (ranges expanded).
fn slots_of(s: &Server) -> Vec<u16> {
    let text = as_str(&q(&mut s.redis(), "CLUSTER NODES"));
    let mine = text
        .lines()
        .find(|l| l.contains("myself"))
        .expect("a myself line");
    let mut out = Vec::new();
    for f in mine.split(' ').skip(8).filter(|f| !f.starts_with('[')) {
        match f.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<u16>().unwrap()..=b.parse::<u16>().unwrap()),
            None => out.push(f.parse().unwrap()),
        }
    }
    out
}

/// The config epoch on a node's own CLUSTER NODES line.
fn my_epoch(s: &Server) -> String {
    let text = as_str(&q(&mut s.redis(), "CLUSTER NODES"));
    let mine = text.lines().find(|l| l.contains("myself")).unwrap();
    mine.split(' ').nth(6).unwrap().to_string()
}

fn check_ok(addr: &str, keys: usize, masters: usize) {
    let (ok_, out) = redis_cli(&["--cluster", "check", addr]);
    assert!(ok_, "redis-cli --cluster check failed:\n{out}");
    assert!(
        out.contains("[OK] All nodes agree about slots configuration."),
        "{out}"
    );
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");
    assert!(
        out.contains(&format!("[OK] {keys} keys in {masters} masters.")),
        "{out}"
    );
}

/// Keys `<tag>k:<i>` whose tags fall in `slots` (at most 40 tags), `n` of them.
fn keys_in_slots(slots: &[u16], n: usize) -> Vec<String> {
    let tags: Vec<String> = (0..200_000)
        .map(|t| format!("{{g{t}}}"))
        .filter(|t| slots.contains(&slot_of(t)))
        .take(40)
        .collect();
    assert!(!tags.is_empty(), "no tag in {slots:?}");
    (0..n)
        .map(|i| format!("{}k:{i}", tags[i % tags.len()]))
        .collect()
}

/// Grow and shrink with redis-cli: `add-node`, `rebalance --cluster-use-empty-masters`
/// (keys move to the new node), a restart of the new node from its config file (same id,
/// config epoch and slots), `reshard` of everything it owns back, and `del-node`.
#[test]
fn add_node_rebalance_restart_reshard_away_and_del_node() {
    if skip_without_redis_cli("add-node/rebalance/del-node") {
        return;
    }
    let dir = TempDir::new("grow");
    let mut nodes = three_agreeing_nodes(&dir);
    let ids: Vec<String> = nodes.iter().map(myid).collect();
    // With weights 200/200/200/1 the rebalance takes the first 9 or so slots of each
    // range: keys there move, the others stay.
    let moving: Vec<u16> = (0..10).chain(5461..5471).chain(10923..10933).collect();
    let mut keys = keys_in_slots(&moving, 150);
    keys.extend((0..150).map(|i| format!("stay:{i}")));
    let client = cluster_client(&nodes);
    let mut con = client.get_connection().unwrap();
    for (i, k) in keys.iter().enumerate() {
        let _: () = redis::cmd("SET")
            .arg(k)
            .arg(format!("v{i}"))
            .query(&mut con)
            .unwrap();
    }

    let new = node(&dir.file("n3.conf"), 0);
    let (ok_, out) = redis_cli(&["--cluster", "add-node", &new.addr(), &nodes[0].addr()]);
    assert!(ok_, "redis-cli --cluster add-node failed:\n{out}");
    assert!(out.contains("[OK] New node added correctly."), "{out}");
    let new_id = myid(&new);
    nodes.push(new);
    assert!(
        eventually(CONVERGE, || agree(&nodes)),
        "{:#?}",
        all_nodes(&nodes)
    );
    let weights: Vec<String> = ids
        .iter()
        .map(|id| format!("{id}=200"))
        .chain([format!("{new_id}=1")])
        .collect();
    let mut args = vec![
        "--cluster",
        "rebalance",
        &nodes[0].addr(),
        "--cluster-use-empty-masters",
        "--cluster-weight",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    args.extend(weights);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok_, out) = redis_cli(&args);
    assert!(ok_, "redis-cli --cluster rebalance failed:\n{out}");
    assert!(out.contains("Rebalancing across 4 nodes"), "{out}");
    assert!(
        eventually(CONVERGE, || agree(&nodes)),
        "{:#?}",
        all_nodes(&nodes)
    );
    let taken = slots_of(&nodes[3]);
    assert!(
        (15..=40).contains(&taken.len()),
        "the new node took {} slots: {taken:?}",
        taken.len()
    );
    check_ok(&nodes[0].addr(), keys.len(), 4);
    let mut con = cluster_client(&nodes).get_connection().unwrap();
    let mut on_new = 0;
    for (i, k) in keys.iter().enumerate() {
        let v: Option<String> = redis::cmd("GET").arg(k).query(&mut con).unwrap();
        assert_eq!(v, Some(format!("v{i}")), "{k} after the rebalance");
        on_new += usize::from(taken.contains(&slot_of(k)));
    }
    assert!(on_new > 0, "no key moved to the new node");
    let counted: i64 = taken
        .iter()
        .map(|s| {
            as_int(&q(
                &mut nodes[3].redis(),
                &format!("CLUSTER COUNTKEYSINSLOT {s}"),
            ))
        })
        .sum();
    assert_eq!(counted, on_new as i64, "COUNTKEYSINSLOT on the new node");

    // Restart the new node from its config file: same id, epoch and slots; the cluster
    // agrees again. (Its keys are gone: Baton keeps no data on disk.)
    let epoch = my_epoch(&nodes[3]);
    let (port, file) = (nodes[3].port, dir.file("n3.conf"));
    drop(nodes.pop());
    nodes.push(node(&file, port));
    assert_eq!(myid(&nodes[3]), new_id);
    assert_eq!(my_epoch(&nodes[3]), epoch);
    assert_eq!(slots_of(&nodes[3]), taken);
    assert!(
        eventually(CONVERGE, || agree(&nodes)),
        "{:#?}",
        all_nodes(&nodes)
    );
    check_ok(&nodes[0].addr(), keys.len() - on_new, 4);

    // Shrink: every slot of the new node back to node 0, then del-node.
    let (ok_, out) = redis_cli(&[
        "--cluster",
        "reshard",
        &nodes[0].addr(),
        "--cluster-from",
        &new_id,
        "--cluster-to",
        &ids[0],
        "--cluster-slots",
        &taken.len().to_string(),
        "--cluster-yes",
    ]);
    assert!(ok_, "redis-cli --cluster reshard failed:\n{out}");
    assert!(slots_of(&nodes[3]).is_empty());
    let (ok_, out) = redis_cli(&["--cluster", "del-node", &nodes[0].addr(), &new_id]);
    assert!(ok_, "redis-cli --cluster del-node failed:\n{out}");
    assert!(
        out.contains("Sending CLUSTER FORGET messages to the cluster"),
        "{out}"
    );
    let removed = nodes.pop().unwrap();
    assert!(
        eventually(CONVERGE, || agree(&nodes)),
        "{:#?}",
        all_nodes(&nodes)
    );
    // The removed node was reset: it knows only itself, and the others forgot it for
    // good (its own gossip does not bring it back).
    thread::sleep(Duration::from_millis(500));
    assert_eq!(nodes_of(&removed).len(), 1, "{:?}", nodes_of(&removed));
    assert!(all_nodes(&nodes).iter().all(|v| v.len() == 3));
    check_ok(&nodes[0].addr(), keys.len() - on_new, 3);
    let mut con = cluster_client(&nodes).get_connection().unwrap();
    for (i, k) in keys.iter().enumerate() {
        let v: Option<String> = redis::cmd("GET").arg(k).query(&mut con).unwrap();
        let want = (!taken.contains(&slot_of(k))).then(|| format!("v{i}"));
        assert_eq!(v, want, "{k} after the shrink");
    }
}

/// `redis-cli --cluster fix` closes a slot left open half-way through a move (MIGRATING
/// on the owner, IMPORTING on the target, one key already moved): the slot ends on the
/// target with both keys, and `check` is clean.
#[test]
fn fix_closes_an_open_slot() {
    if skip_without_redis_cli("fix") {
        return;
    }
    let dir = TempDir::new("fix");
    let nodes = three_agreeing_nodes(&dir);
    let (src, dst) = (&nodes[0], &nodes[1]);
    let (src_id, dst_id) = (myid(src), myid(dst));
    let tag = (0..)
        .map(|t| format!("{{f{t}}}"))
        .find(|t| slot_of(t) <= 5460)
        .unwrap();
    let slot = slot_of(&tag).to_string();
    let (a, b) = (format!("{tag}a"), format!("{tag}b"));
    let mut s = src.redis();
    assert_eq!(run(&mut s, &["SET", &a, "1"]), ok());
    assert_eq!(run(&mut s, &["SET", &b, "2"]), ok());
    let mut d = dst.redis();
    assert_eq!(
        run(&mut d, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &src_id]),
        ok()
    );
    assert_eq!(
        run(&mut s, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &dst_id]),
        ok()
    );
    let port = dst.port.to_string();
    assert_eq!(
        run(&mut s, &["MIGRATE", "127.0.0.1", &port, &a, "0", "5000"]),
        ok()
    );
    let (ok_, out) = redis_cli(&["--cluster", "check", &src.addr()]);
    assert!(!ok_, "check passes with an open slot:\n{out}");
    assert!(
        out.contains(&format!("open slot(s): {slot}")) || out.contains("open slot"),
        "{out}"
    );
    let (ok_, out) = redis_cli(&["--cluster", "fix", &src.addr(), "--cluster-yes"]);
    assert!(ok_, "redis-cli --cluster fix failed:\n{out}");
    assert!(out.contains(&format!("Fixing open slot {slot}")), "{out}");
    assert!(
        eventually(CONVERGE, || agree(&nodes)),
        "{:#?}",
        all_nodes(&nodes)
    );
    check_ok(&src.addr(), 2, 3);
    // redis-cli chose the owner; exactly one node has the slot, and it holds both keys.
    let owners: Vec<&Server> = nodes
        .iter()
        .filter(|n| slots_of(n).contains(&slot_of(&tag)))
        .collect();
    assert_eq!(owners.len(), 1);
    let mut o = owners[0].redis();
    assert_eq!(run(&mut o, &["GET", &a]), bulk("1"));
    assert_eq!(run(&mut o, &["GET", &b]), bulk("2"));
    let text = as_str(&q(&mut src.redis(), "CLUSTER NODES"));
    assert!(!text.contains("->-") && !text.contains("-<-"), "{text}");
}

/// The `redis` crate's cluster client keeps writing while redis-cli reshards the slots
/// its keys live in (it follows MOVED, ASK and TRYAGAIN by itself); afterwards every key
/// holds the last value written, read through the client and on its new owner.
#[test]
fn cluster_client_writes_through_a_reshard() {
    if skip_without_redis_cli("the cluster client through a reshard") {
        return;
    }
    let dir = TempDir::new("client");
    let nodes = three_agreeing_nodes(&dir);
    const SLOTS: u16 = 30;
    let moving: Vec<u16> = (0..SLOTS).collect();
    let keys = Arc::new(keys_in_slots(&moving, 200));
    let client = cluster_client(&nodes);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (keys, stop, client) = (keys.clone(), stop.clone(), client.clone());
        thread::spawn(move || {
            let mut con = client.get_connection().unwrap();
            let mut last = vec![0u64; keys.len()];
            let mut round = 0u64;
            // At least one full round, then until the reshard is over.
            while round == 0 || !stop.load(Ordering::Relaxed) {
                round += 1;
                for (i, k) in keys.iter().enumerate() {
                    let v = format!("{i}-{round}");
                    let r: redis::RedisResult<()> =
                        redis::cmd("SET").arg(k).arg(&v).query(&mut con);
                    if let Err(e) = r {
                        panic!("SET {k} during the reshard: {e}");
                    }
                    let got: Option<String> = redis::cmd("GET").arg(k).query(&mut con).unwrap();
                    assert_eq!(got.as_deref(), Some(v.as_str()), "{k} read back");
                    last[i] = round;
                }
            }
            (round, last)
        })
    };
    let (from, to) = (myid(&nodes[0]), myid(&nodes[1]));
    let (ok_, out) = redis_cli(&[
        "--cluster",
        "reshard",
        &nodes[0].addr(),
        "--cluster-from",
        &from,
        "--cluster-to",
        &to,
        "--cluster-slots",
        &SLOTS.to_string(),
        "--cluster-yes",
    ]);
    stop.store(true, Ordering::Relaxed);
    let (rounds, last) = match writer.join() {
        Ok(r) => r,
        Err(_) => {
            for n in &nodes {
                eprintln!("node {}:\n{}", n.port, n.stderr());
            }
            panic!("the writer failed during the reshard:\n{out}");
        }
    };
    assert!(ok_, "redis-cli --cluster reshard failed:\n{out}");
    assert!(rounds >= 2, "the writer ran {rounds} rounds");
    assert!(
        eventually(CONVERGE, || agree(&nodes)),
        "{:#?}",
        all_nodes(&nodes)
    );
    assert!(moving.iter().all(|s| slots_of(&nodes[1]).contains(s)));
    let mut con = client.get_connection().unwrap();
    let mut d = nodes[1].redis();
    for (i, k) in keys.iter().enumerate() {
        let want = format!("{i}-{}", last[i]);
        let v: Option<String> = redis::cmd("GET").arg(k).query(&mut con).unwrap();
        assert_eq!(v.as_deref(), Some(want.as_str()), "{k} through the client");
        assert_eq!(
            run(&mut d, &["GET", k]),
            bulk(&want),
            "{k} on its new owner"
        );
    }
    check_ok(&nodes[0].addr(), keys.len(), 3);
}
