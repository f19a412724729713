//! Cluster mode: three Baton nodes on loopback, made a cluster by an unmodified
//! `redis-cli --cluster create` (or by the same commands sent by hand when redis-cli is
//! not installed), then checked by `redis-cli --cluster check`, by every node's CLUSTER
//! NODES, by a client that follows MOVED, and by the redirection and bad-input cases.
//!
//! Every server is a child killed on drop (also on panic); every socket read has a
//! timeout; redis-cli runs under a deadline and is killed past it.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::cluster::*;
use common::*;

#[test]
fn create_check_route_and_redirect() {
    let dir = TempDir::new("create");
    let nodes: Vec<Server> = (0..3)
        .map(|i| node(&dir.file(&format!("nodes-{i}.conf")), 0))
        .collect();

    // Before any slot is assigned: the cluster is down, and says so per slot.
    let mut c0 = nodes[0].redis();
    assert_err(&mut c0, "GET foo", "CLUSTERDOWN Hash slot not served");
    let info = as_str(&q(&mut c0, "CLUSTER INFO"));
    assert!(info.starts_with("cluster_state:fail\r\n"), "{info}");
    let info = as_str(&q(&mut c0, "INFO cluster"));
    assert!(info.contains("cluster_enabled:1"), "{info}");

    create(&nodes);
    assert!(
        eventually(CONVERGE, || agree(&nodes)),
        "nodes disagree: {:#?}",
        all_nodes(&nodes)
    );
    if redis_cli_present() {
        let (ok, out) = redis_cli(&["--cluster", "check", &nodes[1].addr()]);
        assert!(ok, "redis-cli --cluster check failed:\n{out}");
        assert!(
            out.contains("[OK] All nodes agree about slots configuration."),
            "{out}"
        );
    }
    for n in &nodes {
        let info = as_str(&q(&mut n.redis(), "CLUSTER INFO"));
        for line in [
            "cluster_state:ok",
            "cluster_slots_assigned:16384",
            "cluster_known_nodes:3",
            "cluster_size:3",
            "cluster_current_epoch:3",
        ] {
            assert!(info.contains(&format!("{line}\r\n")), "{line} in {info}");
        }
        let myself: Vec<String> = as_str(&q(&mut n.redis(), "CLUSTER NODES"))
            .lines()
            .filter(|l| l.contains("myself,master"))
            .map(String::from)
            .collect();
        assert_eq!(myself.len(), 1);
        assert!(myself[0].starts_with(&myid(n)));
    }

    // CLUSTER SLOTS: integer slots and ports, 40-hex ids, in slot order.
    let slots = as_array(&q(&mut c0, "CLUSTER SLOTS"));
    assert_eq!(slots.len(), 3);
    for (i, range) in slots.iter().enumerate() {
        let r = as_array(range);
        let (a, b) = [(0, 5460), (5461, 10922), (10923, 16383)][i];
        assert_eq!((as_int(&r[0]), as_int(&r[1])), (a, b));
        let owner = as_array(&r[2]);
        assert_eq!(as_str(&owner[0]), "127.0.0.1");
        assert_eq!(as_int(&owner[1]), i64::from(nodes[i].port));
        assert_eq!(as_str(&owner[2]), myid(&nodes[i]));
    }
    let shards = as_array(&q(&mut c0, "CLUSTER SHARDS"));
    assert_eq!(shards.len(), 3);

    // Keys written through a MOVED-following client land on their owner.
    for n in 0..150 {
        let key = format!("user:{n}");
        let (v, port) = follow(nodes[0].port, &["SET", &key, &n.to_string()]);
        assert_eq!(v, ok());
        let owner = match slot_of(&key) {
            0..=5460 => 0,
            5461..=10922 => 1,
            _ => 2,
        };
        assert_eq!(port, nodes[owner].port, "{key}");
        assert_eq!(
            run(&mut nodes[owner].redis(), &["GET", &key]),
            bulk(n.to_string())
        );
        let other = &nodes[(owner + 1) % 3];
        assert_eq!(
            err_text(&run(&mut other.redis(), &["GET", &key])),
            format!("MOVED {} 127.0.0.1:{}", slot_of(&key), nodes[owner].port)
        );
    }
    let counted: i64 = nodes
        .iter()
        .map(|n| as_int(&q(&mut n.redis(), "DBSIZE")))
        .sum();
    assert_eq!(counted, 150);
    let k = key_on(0);
    run(&mut c0, &["SET", &k, "v"]);
    let s = slot_of(&k);
    let mut expected: Vec<String> = (0..150)
        .map(|n| format!("user:{n}"))
        .chain([k.clone()])
        .filter(|key| slot_of(key) == s)
        .collect();
    expected.sort();
    assert_eq!(
        as_int(&q(&mut c0, &format!("CLUSTER COUNTKEYSINSLOT {s}"))),
        expected.len() as i64
    );
    let mut got = as_strings(&q(&mut c0, &format!("CLUSTER GETKEYSINSLOT {s} 1000")));
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(as_int(&q(&mut c0, "CLUSTER KEYSLOT foo")), 12182);
    // What cluster clients ask to find a command's keys.
    assert_eq!(
        as_strings(&q(&mut c0, "COMMAND GETKEYS MSET a 1 b 2")),
        ["a", "b"]
    );
    assert_err(
        &mut c0,
        "COMMAND GETKEYS PING",
        "ERR The command has no key arguments",
    );
    assert_err(
        &mut c0,
        "COMMAND GETKEYS NOSUCH x",
        "ERR Invalid command specified",
    );
    assert_err(
        &mut c0,
        "COMMAND GETKEYS GET",
        "ERR Invalid number of arguments specified for command",
    );

    // CROSSSLOT, and one slot through a hash tag.
    assert_err(
        &mut c0,
        "MSET a 1 b 2",
        "CROSSSLOT Keys in request don't hash to the same slot",
    );
    let (v, _) = follow(nodes[0].port, &["MSET", "{t}a", "1", "{t}b", "2"]);
    assert_eq!(v, ok());

    // Importing / migrating markers, and ASKING.
    let (id0, id1) = (myid(&nodes[0]), myid(&nodes[1]));
    let mut c1 = nodes[1].redis();
    let empty = key_in("empty", 0);
    let es = slot_of(&empty);
    assert_eq!(
        q(&mut c0, &format!("CLUSTER SETSLOT {es} MIGRATING {id1}")),
        ok()
    );
    assert_eq!(
        q(&mut c1, &format!("CLUSTER SETSLOT {es} IMPORTING {id0}")),
        ok()
    );
    let mine = |c: &mut redis::Connection| {
        as_str(&q(c, "CLUSTER NODES"))
            .lines()
            .find(|l| l.contains("myself"))
            .unwrap()
            .to_string()
    };
    assert!(
        mine(&mut c0).ends_with(&format!(" [{es}->-{id1}]")),
        "{}",
        mine(&mut c0)
    );
    assert!(
        mine(&mut c1).ends_with(&format!(" [{es}-<-{id0}]")),
        "{}",
        mine(&mut c1)
    );
    assert!(err_text(&run(&mut c1, &["GET", &empty])).starts_with("MOVED "));
    assert_eq!(q(&mut c1, "ASKING"), ok());
    assert_eq!(run(&mut c1, &["GET", &empty]), nil(), "served after ASKING");
    assert!(
        err_text(&run(&mut c1, &["GET", &empty])).starts_with("MOVED "),
        "ASKING holds for one command"
    );
    if redis_cli_present() {
        let (ok, out) = redis_cli(&["--cluster", "check", &nodes[0].addr()]);
        assert!(
            !ok && out.contains(&format!("The following slots are open: {es}")),
            "check sees the open slot:\n{out}"
        );
    }
    for c in [&mut c0, &mut c1] {
        assert_eq!(q(c, &format!("CLUSTER SETSLOT {es} STABLE")), ok());
    }
    assert!(!mine(&mut c0).contains('['));

    // A change spreads to every node within the convergence bound.
    let started = Instant::now();
    let bumped = as_str(&q(&mut c0, "CLUSTER BUMPEPOCH"));
    assert!(bumped.starts_with("BUMPED "), "{bumped}");
    let epoch = bumped.trim_start_matches("BUMPED ").to_string();
    assert!(
        eventually(CONVERGE, || nodes.iter().all(|n| {
            nodes_of(n)
                .iter()
                .any(|l| l.starts_with(&id0) && l.split(' ').nth(3) == Some(epoch.as_str()))
        })),
        "the new epoch did not spread: {:#?}",
        all_nodes(&nodes)
    );
    eprintln!(
        "a config epoch change reached every node in {:?}",
        started.elapsed()
    );
    assert!(
        eventually(CONVERGE, || agree(&nodes)),
        "the nodes disagree after the epoch spread: {:#?}",
        all_nodes(&nodes)
    );
}

#[test]
fn restart_from_config_file() {
    let dir = TempDir::new("restart");
    let files: Vec<String> = (0..3).map(|i| dir.file(&format!("n{i}.conf"))).collect();
    let mut nodes: Vec<Server> = files.iter().map(|f| node(f, 0)).collect();
    create_by_hand(&nodes);
    assert!(
        eventually(CONVERGE, || agree(&nodes)),
        "{:#?}",
        all_nodes(&nodes)
    );
    let before = nodes_of(&nodes[2]);
    let id = myid(&nodes[2]);
    let port = nodes[2].port;
    let stopped = nodes.pop().unwrap();
    drop(stopped);
    let text = std::fs::read_to_string(&files[2]).unwrap();
    assert!(
        text.contains("myself,master") && text.contains("vars currentEpoch 3"),
        "{text}"
    );
    nodes.push(node(&files[2], port));
    assert_eq!(myid(&nodes[2]), id, "same id after a restart");
    assert_eq!(nodes_of(&nodes[2]), before, "same view after a restart");
    assert!(
        eventually(CONVERGE, || agree(&nodes)),
        "{:#?}",
        all_nodes(&nodes)
    );
    let (v, _) = follow(nodes[0].port, &["SET", &key_on(2), "x"]);
    assert_eq!(v, ok());
}

/// A plain TCP listener that reads and answers nonsense: not a Baton node.
fn impostor() -> (u16, thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"+HELLO I am not Baton\r\n");
        }
    });
    (port, h)
}

#[test]
fn bad_input_gets_an_error_and_changes_nothing() {
    let dir = TempDir::new("bad");
    let a = node(&dir.file("a.conf"), 0);
    let mut c = a.redis();
    assert_eq!(q(&mut c, "CLUSTER ADDSLOTSRANGE 0 99"), ok());
    let before = as_str(&q(&mut c, "CLUSTER NODES"));
    let file_before = std::fs::read_to_string(dir.file("a.conf")).unwrap();
    let unchanged = |c: &mut redis::Connection| {
        assert_eq!(as_str(&q(c, "CLUSTER NODES")), before);
        assert_eq!(
            std::fs::read_to_string(dir.file("a.conf")).unwrap(),
            file_before
        );
    };

    // Malformed propagation messages.
    for payload in [
        "hello".to_string(),
        "baton-view 1\nnot a node line".to_string(),
        format!(
            "baton-view 1\n{} 1.2.3.4:1@2 master - 0 0 1 connected 0-99999",
            "a".repeat(40)
        ),
        format!(
            "baton-view 1\n{} 1.2.3.4:1@2 master - 0 0 1 connected 1",
            "b".repeat(40)
        ),
    ] {
        let v = run(&mut c, &["CLUSTER", "BATON-VIEW", &payload]);
        assert!(
            err_text(&v).starts_with("ERR malformed cluster view"),
            "{payload}: {v:?}"
        );
    }
    unchanged(&mut c);

    // Unknown node ids.
    let ghost = "0123456789abcdef0123456789abcdef01234567";
    assert_err(
        &mut c,
        &format!("CLUSTER FORGET {ghost}"),
        &format!("ERR Unknown node {ghost}"),
    );
    assert_err(
        &mut c,
        &format!("CLUSTER SETSLOT 5 NODE {ghost}"),
        &format!("ERR Unknown node {ghost}"),
    );
    assert_err(
        &mut c,
        &format!("CLUSTER SETSLOT 5 MIGRATING {ghost}"),
        &format!("ERR I don't know about node {ghost}"),
    );
    assert_err(&mut c, "CLUSTER FORGET x", "ERR Unknown node x");
    let me = myid(&a);
    assert_err(
        &mut c,
        &format!("CLUSTER FORGET {me}"),
        "ERR I tried hard but I can't forget myself...",
    );

    // Slots.
    assert_err(&mut c, "CLUSTER ADDSLOTS 5", "ERR Slot 5 is already busy");
    assert_err(
        &mut c,
        "CLUSTER ADDSLOTS 200 200",
        "ERR Slot 200 specified multiple times",
    );
    assert_err(
        &mut c,
        "CLUSTER ADDSLOTS 16384",
        "ERR Invalid or out of range slot",
    );
    assert_err(
        &mut c,
        "CLUSTER DELSLOTS 300",
        "ERR Slot 300 is already unassigned",
    );
    assert_err(
        &mut c,
        "CLUSTER ADDSLOTSRANGE 9 3",
        "ERR start slot number 9 is greater than end slot number 3",
    );
    assert_err(
        &mut c,
        "CLUSTER SETSLOT 5 DANCE",
        "ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP",
    );
    assert_err(&mut c, "CLUSTER COUNTKEYSINSLOT -1", "ERR Invalid slot");
    assert_err(
        &mut c,
        "CLUSTER GETKEYSINSLOT 1 -1",
        "ERR Invalid slot or number of keys",
    );
    assert_err(&mut c, "CLUSTER RESET MEDIUM", "ERR syntax error");
    assert!(err_text(&q(&mut c, "CLUSTER NOPE")).starts_with("ERR unknown subcommand 'NOPE'"));
    unchanged(&mut c);

    // MEET: bad arguments, a port nobody listens on, a TCP listener that is not Baton, a
    // Baton without cluster mode.
    assert_err(
        &mut c,
        "CLUSTER MEET 127.0.0.1 0",
        "ERR Invalid base port specified: 0",
    );
    assert_err(
        &mut c,
        "CLUSTER MEET 127.0.0.1 70000",
        "ERR Invalid base port specified: 70000",
    );
    assert_err(
        &mut c,
        "CLUSTER MEET nohost 7000",
        "ERR Invalid node address specified: nohost:7000",
    );
    let closed = free_port();
    assert!(
        err_text(&q(&mut c, &format!("CLUSTER MEET 127.0.0.1 {closed}")))
            .starts_with("ERR cannot reach")
    );
    let (port, h) = impostor();
    let v = q(&mut c, &format!("CLUSTER MEET 127.0.0.1 {port}"));
    assert!(
        err_text(&v).contains("is not a Baton cluster node"),
        "{v:?}"
    );
    h.join().unwrap();
    let plain = Server::start(1);
    let v = q(&mut c, &format!("CLUSTER MEET 127.0.0.1 {}", plain.port));
    assert!(
        err_text(&v).contains("is not a Baton cluster node"),
        "{v:?}"
    );
    unchanged(&mut c);

    // Without cluster mode: Redis's error, and INFO says so.
    let mut p = plain.redis();
    for line in ["CLUSTER INFO", "CLUSTER NODES", "ASKING", "READONLY"] {
        assert_err(
            &mut p,
            line,
            "ERR This instance has cluster support disabled",
        );
    }
    assert!(as_str(&q(&mut p, "INFO cluster")).contains("cluster_enabled:0"));
    assert_eq!(
        q(&mut p, "SET foo bar"),
        ok(),
        "no redirection without cluster mode"
    );

    // SET-CONFIG-EPOCH rules.
    assert_err(
        &mut c,
        "CLUSTER SET-CONFIG-EPOCH -1",
        "ERR Invalid config epoch specified: -1",
    );
    assert_eq!(q(&mut c, "CLUSTER SET-CONFIG-EPOCH 7"), ok());
    assert_err(
        &mut c,
        "CLUSTER SET-CONFIG-EPOCH 8",
        "ERR Node config epoch is already non-zero",
    );
}

#[test]
fn bad_flags_and_config_files_are_refused_at_start() {
    let dir = TempDir::new("flags");
    let start = |args: &[&str]| -> (bool, String) {
        Command::new(env!("CARGO_BIN_EXE_baton"))
            .args(["--port", "0", "--memcache-port", "0", "--cores", "1"])
            .args(args)
            .stdin(Stdio::null())
            .output_with_timeout()
    };
    let (ok, err) = start(&["--cluster-enabled", "maybe"]);
    assert!(!ok && err.contains("yes"), "{err}");
    let (ok, err) = start(&["--cluster-enabled", "yes", "--cluster-announce-ip", "nope"]);
    assert!(!ok && err.contains("'nope' is not an IP address"), "{err}");
    let (ok, err) = start(&["--cluster-node-timeout", "0"]);
    assert!(!ok, "{err}");
    let bad = dir.file("bad.conf");
    std::fs::write(&bad, "this is not a nodes file\n").unwrap();
    let (ok, err) = start(&["--cluster-enabled", "yes", "--cluster-config-file", &bad]);
    assert!(
        !ok && err.contains("cluster config file") && err.contains("bad.conf"),
        "{err}"
    );

    // The config-file form of the flags.
    let conf = dir.file("baton.conf");
    let nodes = dir.file("from-conf.conf");
    std::fs::write(
        &conf,
        format!("cluster-enabled yes\ncluster-config-file {nodes}\n"),
    )
    .unwrap();
    let s = Server::builder(1).args(&["--config", &conf]).start();
    assert!(as_str(&q(&mut s.redis(), "INFO cluster")).contains("cluster_enabled:1"));
    let text = std::fs::read_to_string(&nodes).unwrap();
    assert!(text.starts_with(&myid(&s)), "{text}");
}

/// `Command::output` bounded in time: (success, stderr).
trait OutputWithTimeout {
    fn output_with_timeout(&mut self) -> (bool, String);
}

impl OutputWithTimeout for Command {
    fn output_with_timeout(&mut self) -> (bool, String) {
        let mut child = self
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn baton");
        let mut err = child.stderr.take().unwrap();
        let reader = thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("baton did not exit on bad flags");
            }
            thread::sleep(Duration::from_millis(10));
        };
        (status.success(), reader.join().unwrap_or_default())
    }
}

/// `redis-cli --cluster reshard` moves slots with their keys (CLUSTER SETSLOT, GETKEYSINSLOT,
/// MIGRATE ... KEYS, RESTORE-ASKING on the target), and `--cluster check` agrees after;
/// every key keeps its value and TTL, and the old owner answers MOVED for it.
#[test]
fn reshard_moves_slots_with_their_keys() {
    if !redis_cli_present() {
        eprintln!("\n!!!!!!!! redis-cli is not installed: reshard is NOT tested !!!!!!!!\n");
        return;
    }
    let dir = TempDir::new("reshard");
    let nodes = three_agreeing_nodes(&dir);
    // Keys in the 20 slots that move (hash tags place them), and as many elsewhere.
    const SLOTS: u16 = 20;
    let tags: Vec<String> = (0..)
        .map(|t| format!("t{t}"))
        .filter(|t| slot_of(&format!("{{{t}}}")) < SLOTS)
        .take(10)
        .collect();
    let keys: Vec<String> = (0..300)
        .map(|i| format!("{{{}}}rk:{i}", tags[i % tags.len()]))
        .chain((0..300).map(|i| format!("rk:{i}")))
        .collect();
    let n = keys.len();
    for (i, k) in keys.iter().enumerate() {
        let (v, _) = follow(nodes[0].port, &["SET", k, &format!("v{i}"), "EX", "1000"]);
        assert_eq!(v, ok());
    }
    let from = myid(&nodes[0]);
    let to = myid(&nodes[1]);
    let moving: Vec<&String> = keys.iter().filter(|k| slot_of(k) < SLOTS).collect();
    assert!(moving.len() >= 300);
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
    assert!(ok_, "redis-cli --cluster reshard failed:\n{out}");
    let (ok_, out) = redis_cli(&["--cluster", "check", &nodes[0].addr()]);
    assert!(
        ok_,
        "redis-cli --cluster check failed after the reshard:\n{out}"
    );
    assert!(
        out.contains("[OK] All nodes agree about slots configuration."),
        "{out}"
    );
    assert!(
        out.contains(&format!("[OK] {n} keys in 3 masters.")),
        "{out}"
    );
    assert!(
        eventually(CONVERGE, || agree(&nodes)),
        "{:#?}",
        all_nodes(&nodes)
    );
    for (i, k) in keys.iter().enumerate() {
        let (v, port) = follow(nodes[0].port, &["GET", k]);
        assert_eq!(v, bulk(format!("v{i}")), "{k} after the reshard");
        let ttl = as_int(&follow(port, &["TTL", k]).0);
        assert!((900..=1000).contains(&ttl), "{k}: TTL {ttl}");
        if moving.contains(&k) {
            assert_eq!(port, nodes[1].port, "{k} (slot {}) moved", slot_of(k));
        }
    }
    // The old owner redirects to the new one.
    let k = moving[0];
    let v = run(&mut nodes[0].redis(), &["GET", k]);
    assert_eq!(
        err_text(&v),
        format!("MOVED {} 127.0.0.1:{}", slot_of(k), nodes[1].port)
    );
}

/// The redirections of Redis's slot-migration tests, step by step: while a slot migrates,
/// the old owner serves the keys it still holds and answers `-ASK` for the ones MIGRATE
/// moved (and for new ones); the new owner serves them only after ASKING, and answers
/// MOVED otherwise; after SETSLOT NODE, MOVED points at the new owner.
#[test]
fn migrating_slot_redirections() {
    let dir = TempDir::new("ask");
    let nodes = three_agreeing_nodes(&dir);
    let (src, dst) = (&nodes[0], &nodes[1]);
    let (src_id, dst_id) = (myid(src), myid(dst));
    let tag = (0..)
        .map(|t| format!("{{m{t}}}"))
        .find(|t| slot_of(t) <= 5460)
        .unwrap();
    let slot = slot_of(&tag);
    let (moved_key, kept_key) = (format!("{tag}moved"), format!("{tag}kept"));
    let mut s = src.redis();
    let mut d = dst.redis();
    assert_eq!(run(&mut s, &["SET", &moved_key, "1"]), ok());
    assert_eq!(run(&mut s, &["SET", &kept_key, "2"]), ok());
    let slot_s = slot.to_string();
    assert_eq!(
        run(
            &mut d,
            &["CLUSTER", "SETSLOT", &slot_s, "IMPORTING", &src_id]
        ),
        ok()
    );
    assert_eq!(
        run(
            &mut s,
            &["CLUSTER", "SETSLOT", &slot_s, "MIGRATING", &dst_id]
        ),
        ok()
    );
    let port = dst.port.to_string();
    assert_eq!(
        run(
            &mut s,
            &["MIGRATE", "127.0.0.1", &port, &moved_key, "0", "5000"]
        ),
        ok()
    );
    let ask = format!("ASK {slot} 127.0.0.1:{}", dst.port);
    assert_eq!(err_text(&run(&mut s, &["GET", &moved_key])), ask);
    assert_eq!(
        err_text(&run(&mut s, &["SET", &format!("{tag}new"), "x"])),
        ask
    );
    assert_eq!(run(&mut s, &["GET", &kept_key]), bulk("2"));
    // Several keys, some here and some gone: TRYAGAIN; all gone: ASK; all here: served.
    let tryagain = "TRYAGAIN Multiple keys request during rehashing of slot";
    let new_key = format!("{tag}new");
    assert_eq!(
        err_text(&run(&mut s, &["MGET", &moved_key, &kept_key])),
        tryagain
    );
    assert_eq!(
        err_text(&run(&mut s, &["DEL", &kept_key, &moved_key])),
        tryagain
    );
    assert_eq!(err_text(&run(&mut s, &["MGET", &moved_key, &new_key])), ask);
    assert_eq!(
        run(&mut s, &["MGET", &kept_key, &kept_key]),
        Value::Array(vec![bulk("2"), bulk("2")])
    );
    // The per-slot index counts what each side holds.
    assert_eq!(
        run(&mut s, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]),
        Value::Int(1)
    );
    assert_eq!(
        run(
            &mut s,
            &["CLUSTER", "GETKEYSINSLOT", &slot.to_string(), "10"]
        ),
        Value::Array(vec![bulk(&kept_key)])
    );
    assert_eq!(
        run(&mut d, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]),
        Value::Int(1)
    );
    // The new owner, after ASKING: every key here or TRYAGAIN.
    assert_eq!(run(&mut d, &["ASKING"]), ok());
    assert_eq!(
        err_text(&run(&mut d, &["MGET", &moved_key, &kept_key])),
        tryagain
    );
    assert_eq!(run(&mut d, &["ASKING"]), ok());
    assert_eq!(
        run(&mut d, &["MGET", &moved_key, &moved_key]),
        Value::Array(vec![bulk("1"), bulk("1")])
    );
    let moved_to_src = format!("MOVED {slot} 127.0.0.1:{}", src.port);
    assert_eq!(err_text(&run(&mut d, &["GET", &moved_key])), moved_to_src);
    assert_eq!(run(&mut d, &["ASKING"]), ok());
    assert_eq!(run(&mut d, &["GET", &moved_key]), bulk("1"));
    // ASKING holds for one command only.
    assert_eq!(err_text(&run(&mut d, &["GET", &moved_key])), moved_to_src);
    // Finish the move as redis-cli does; a second MIGRATE finds nothing left.
    let migrate_kept = [
        "MIGRATE",
        "127.0.0.1",
        &port,
        "",
        "0",
        "5000",
        "KEYS",
        &kept_key,
    ];
    // Handing the slot away while a key of it is still here is refused, changing nothing.
    let give_away = ["CLUSTER", "SETSLOT", &slot_s, "NODE", &dst_id];
    let view_before = as_str(&q(&mut s, "CLUSTER NODES"));
    assert_eq!(
        err_text(&run(&mut s, &give_away)),
        format!(
            "ERR Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."
        )
    );
    assert_eq!(run(&mut s, &["GET", &kept_key]), bulk("2"));
    let strip_times = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                format!("{} {}", f[..4].join(" "), f[6..].join(" "))
            })
            .collect()
    };
    assert_eq!(
        strip_times(&as_str(&q(&mut s, "CLUSTER NODES"))),
        strip_times(&view_before),
        "the refused SETSLOT changed nothing"
    );
    assert_eq!(run(&mut s, &migrate_kept), ok());
    assert_eq!(run(&mut s, &migrate_kept), simple("NOKEY"));
    for n in [dst, src, &nodes[2]] {
        assert_eq!(
            run(
                &mut n.redis(),
                &["CLUSTER", "SETSLOT", &slot_s, "NODE", &dst_id]
            ),
            ok()
        );
    }
    // MOVED only once this node's own CLUSTER SLOTS names the new owner: a redirection
    // comes from the routing view, which is published after the state CLUSTER SLOTS reads.
    for _ in 0..50 {
        let moved = err_text(&run(&mut s, &["GET", &kept_key]));
        let slots = run(&mut s, &["CLUSTER", "SLOTS"]);
        if moved.starts_with("MOVED ") {
            let Value::Array(ranges) = &slots else {
                panic!("{slots:?}")
            };
            let owner = ranges.iter().find_map(|r| match r {
                Value::Array(f)
                    if as_int(&f[0]) <= i64::from(slot) && i64::from(slot) <= as_int(&f[1]) =>
                {
                    Some(f[2].clone())
                }
                _ => None,
            });
            let Some(Value::Array(owner)) = owner else {
                panic!("slot {slot} not in {slots:?}")
            };
            assert_eq!(
                moved,
                format!("MOVED {slot} 127.0.0.1:{}", as_int(&owner[1])),
                "{slots:?}"
            );
        }
    }
    // Asked until the views settle: gossip races the three SETSLOTs (a stale view of the
    // new owner once unassigned the slot here for a moment; see state.rs merge_slots).
    let moved_to_dst = format!("MOVED {slot} 127.0.0.1:{}", dst.port);
    assert!(
        eventually(CONVERGE, || err_text(&run(&mut s, &["GET", &kept_key]))
            == moved_to_dst),
        "the old owner does not redirect to the new one: {:?}",
        run(&mut s, &["GET", &kept_key])
    );
    assert_eq!(run(&mut d, &["GET", &kept_key]), bulk("2"));
    assert_eq!(run(&mut d, &["GET", &moved_key]), bulk("1"));
    assert!(
        eventually(CONVERGE, || agree(&nodes)),
        "{:#?}",
        all_nodes(&nodes)
    );
}
