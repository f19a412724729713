//! Replication settings: the flags and config-file lines (`replicaof`, `replica-read-only`,
//! `masterauth`, `repl-backlog-size`, `replica-priority`, `replica-announce-*`,
//! `client-output-buffer-limit replica`), CONFIG GET/SET with Redis's names and aliases,
//! CONFIG REWRITE writing and removing `replicaof`, and the memcached port of a read-only
//! replica refusing writes.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// How long a replica may take to connect and finish its first sync.
const LINK_TIMEOUT: Duration = Duration::from_secs(20);

fn config_get(con: &mut redis::Connection, name: &str) -> String {
    let v = run(con, &["CONFIG", "GET", name]);
    let pairs = as_pairs(&v);
    let [(got, value)] = &pairs[..] else {
        panic!("CONFIG GET {name}: {v:?}");
    };
    assert_eq!(got, name);
    as_str(value)
}

fn info_replication(con: &mut redis::Connection) -> String {
    redis::cmd("INFO").arg("replication").query(con).unwrap()
}

fn info_field(con: &mut redis::Connection, name: &str) -> Option<String> {
    info_replication(con)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
}

/// Waits until the replica's link is up (every flow connected and past its snapshot).
#[track_caller]
fn wait_link_up(replica: &Server) {
    let mut con = replica.redis();
    let up = eventually(LINK_TIMEOUT, || {
        info_field(&mut con, "master_link_status").as_deref() == Some("up")
    });
    assert!(
        up,
        "the link never came up: {}\nstderr:\n{}",
        info_replication(&mut con),
        replica.stderr()
    );
}

/// Waits until `GET key` on `con` answers `want`.
#[track_caller]
fn wait_value(con: &mut redis::Connection, key: &str, want: &str) {
    let mut last = Value::Nil;
    let seen = eventually(LINK_TIMEOUT, || {
        last = run(con, &["GET", key]);
        last == bulk(want)
    });
    assert!(seen, "GET {key} on the replica: {last:?}, wanted {want:?}");
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("baton-replcfg-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the binary with `args` (a bad value each), expecting it to refuse to start; returns
/// its stderr. Bounded: a binary that starts anyway is killed and the test fails.
fn refused_start(args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["--port", "0", "--memcache-port", "0", "--cores", "1"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn baton");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("baton started with {args:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{args:?} exited with {status}");
    err
}

#[test]
fn flags_and_config_file_lines_show_in_config_get() {
    if !baton_only("Baton's flags and config file") {
        return;
    }
    let dir = temp_dir("flags");
    let file = dir.join("baton.conf");
    std::fs::write(
        &file,
        "slave-read-only no\nmasterauth \"s3cret pass\"\nrepl-backlog-size 2mb\n\
         slave-priority 7\nreplica-announce-ip 10.1.2.3\n\
         client-output-buffer-limit replica 1mb 512kb 30\n\
         client-output-buffer-limit normal 0 0 0\n",
    )
    .unwrap();
    let server = Server::builder(1)
        .args(&[
            "--config",
            file.to_str().unwrap(),
            "--replica-announce-port",
            "7777",
        ])
        .start();
    let mut con = server.redis();
    for (name, want) in [
        ("replica-read-only", "no"),
        ("slave-read-only", "no"),
        ("masterauth", "s3cret pass"),
        ("repl-backlog-size", "2097152"),
        ("replica-priority", "7"),
        ("slave-priority", "7"),
        ("replica-announce-ip", "10.1.2.3"),
        ("replica-announce-port", "7777"),
        (
            "client-output-buffer-limit",
            "normal 0 0 0 slave 1048576 524288 30 pubsub 33554432 8388608 60",
        ),
    ] {
        assert_eq!(config_get(&mut con, name), want, "{name}");
    }
    assert_eq!(
        info_field(&mut con, "repl_backlog_size").as_deref(),
        Some("2097152")
    );
    // The defaults, on a server started without any of them.
    let plain = Server::start(1);
    let mut con = plain.redis();
    for (name, want) in [
        ("replica-read-only", "yes"),
        ("masterauth", ""),
        ("repl-backlog-size", "1048576"),
        ("replica-priority", "100"),
        ("replica-announce-ip", ""),
        ("replica-announce-port", "0"),
    ] {
        assert_eq!(config_get(&mut con, name), want, "{name}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_values_stop_the_server_at_start_with_a_clear_error() {
    if !baton_only("Baton's flags") {
        return;
    }
    for (args, says) in [
        (&["--replicaof", "localhost"][..], "<host> <port>"),
        (&["--replicaof", "localhost 70000"], "not a port"),
        (&["--replica-read-only", "maybe"], "yes or no"),
        (&["--repl-backlog-size", "0"], "at least one byte"),
        (&["--repl-backlog-size", "1xb"], "unknown unit"),
        (&["--replica-priority", "-1"], "replica-priority"),
        (&["--replica-priority", "2147483648"], "replica-priority"),
        (
            &["--replica-announce-port", "65536"],
            "replica-announce-port",
        ),
        (
            &["--client-output-buffer-limit", "master 1 2 3"],
            "[normal|pubsub|replica]",
        ),
        (&["--client-output-buffer-limit-replica", "1 2"], "<hard>"),
    ] {
        let err = refused_start(args);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // A bad line in a config file names the file.
    let dir = temp_dir("bad");
    let file = dir.join("bad.conf");
    std::fs::write(&file, "slave-read-only perhaps\n").unwrap();
    let err = refused_start(&["--config", file.to_str().unwrap()]);
    assert!(
        err.contains("bad.conf") && err.contains("yes or no"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn config_set_changes_replication_settings_with_redis_names() {
    let server = Server::start(1);
    let mut con = server.redis();
    assert_reply(
        &mut con,
        "CONFIG SET slave-read-only no replica-priority 5 repl-backlog-size 64kb",
        ok(),
    );
    assert_eq!(config_get(&mut con, "replica-read-only"), "no");
    assert_eq!(config_get(&mut con, "slave-priority"), "5");
    assert_eq!(config_get(&mut con, "repl-backlog-size"), "65536");
    assert_reply(
        &mut con,
        "CONFIG SET masterauth pw replica-announce-ip 192.0.2.1 replica-announce-port 6390",
        ok(),
    );
    assert_eq!(config_get(&mut con, "masterauth"), "pw");
    assert_eq!(config_get(&mut con, "slave-announce-ip"), "192.0.2.1");
    assert_eq!(config_get(&mut con, "replica-announce-port"), "6390");
    assert_eq!(
        run(&mut con, &["CONFIG", "SET", "replica-announce-ip", ""]),
        ok()
    );
    assert_eq!(config_get(&mut con, "replica-announce-ip"), "");
    assert_eq!(
        run(
            &mut con,
            &[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "slave 1mb 2mb 3"
            ]
        ),
        ok()
    );
    assert!(
        config_get(&mut con, "client-output-buffer-limit").contains(" slave 1048576 2097152 3 "),
        "{}",
        config_get(&mut con, "client-output-buffer-limit")
    );
    let failed = |name: &str, why: &str| {
        format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}")
    };
    assert_err(
        &mut con,
        "CONFIG SET repl-backlog-size 0",
        &failed(
            "repl-backlog-size",
            "argument must be between 1 and 9223372036854775807 inclusive",
        ),
    );
    assert_err(
        &mut con,
        "CONFIG SET replica-read-only maybe",
        &failed("replica-read-only", "argument must be 'yes' or 'no'"),
    );
    assert_err(
        &mut con,
        "CONFIG SET replica-priority 1 slave-priority 2",
        &failed("slave-priority", "duplicate parameter"),
    );
    assert_eq!(
        config_get(&mut con, "replica-priority"),
        "5",
        "all or nothing"
    );
}

/// A primary's existing shard journals take a new `repl-backlog-size` at once.
#[test]
fn config_set_repl_backlog_size_resizes_the_journals() {
    if !baton_only("Baton's per-shard journals") {
        return;
    }
    let primary = Server::start(2);
    let replica = Server::builder(1)
        .args(&["--replicaof", &format!("127.0.0.1 {}", primary.port)])
        .start();
    wait_link_up(&replica);
    let mut con = primary.redis();
    let value = "x".repeat(1000);
    for i in 0..400 {
        run(&mut con, &["SET", &format!("key:{i}"), &value]);
    }
    let histlen = |con: &mut redis::Connection| {
        info_field(con, "repl_backlog_histlen")
            .and_then(|v| v.parse::<u64>().ok())
            .expect("repl_backlog_histlen")
    };
    let before = histlen(&mut con);
    assert!(before > 300_000, "1mb keeps the 400 kB written: {before}");
    assert_reply(&mut con, "CONFIG SET repl-backlog-size 16kb", ok());
    let after = histlen(&mut con);
    // Each of the 2 shards keeps at least 16 KiB and at most its newest chunk beyond it.
    assert!(after < 100_000, "the journals shrank at once: {after}");
    assert_eq!(
        info_field(&mut con, "repl_backlog_size").as_deref(),
        Some("16384")
    );
    // Replication goes on.
    run(&mut con, &["SET", "after", "resize"]);
    wait_value(&mut replica.redis(), "after", "resize");
}

#[test]
fn config_rewrite_writes_replicaof_on_a_replica_and_removes_it_on_a_primary() {
    if !baton_only("the config file Baton was started with") {
        return;
    }
    let primary = Server::start(1);
    let mut p = primary.redis();
    run(&mut p, &["SET", "from", "primary"]);
    let dir = temp_dir("rewrite");
    let file = dir.join("replica.conf");
    let path = file.to_str().unwrap().to_string();
    std::fs::write(&file, "# keep this\nslave-priority 9\n").unwrap();
    let at = format!("127.0.0.1 {}", primary.port);
    {
        let replica = Server::builder(1).args(&["--config", &path]).start();
        let mut r = replica.redis();
        run(
            &mut r,
            &["REPLICAOF", "127.0.0.1", &primary.port.to_string()],
        );
        wait_link_up(&replica);
        assert_reply(&mut r, "CONFIG REWRITE", ok());
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("# keep this\nreplica-priority 9\n"),
            "{text}"
        );
        assert_eq!(
            text.lines().filter(|l| l.starts_with("replicaof")).count(),
            1,
            "{text}"
        );
        assert!(text.contains(&format!("\nreplicaof {at}\n")), "{text}");
    }
    // The rewritten file starts a replica of the same primary.
    {
        let replica = Server::builder(1).args(&["--config", &path]).start();
        wait_link_up(&replica);
        let mut r = replica.redis();
        wait_value(&mut r, "from", "primary");
        assert_eq!(info_field(&mut r, "role").as_deref(), Some("slave"));
        // What sentinel does on failover: promote, then rewrite.
        assert_reply(&mut r, "SLAVEOF NO ONE", ok());
        assert_reply(&mut r, "CONFIG REWRITE", ok());
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("replicaof"), "{text}");
        assert!(!text.contains("slaveof"), "{text}");
        assert!(text.starts_with("# keep this\n"), "{text}");
    }
    // And now a primary.
    let server = Server::builder(1).args(&["--config", &path]).start();
    let mut s = server.redis();
    assert_eq!(info_field(&mut s, "role").as_deref(), Some("master"));
    assert_reply(&mut s, "SET now writable", ok());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn replicaof_at_start_replicates_and_refuses_writes() {
    if !baton_only("Baton's --replicaof flag") {
        return;
    }
    let primary = Server::start(2);
    let mut p = primary.redis();
    run(&mut p, &["SET", "before", "1"]);
    let replica = Server::builder(1)
        .args(&["--slaveof", &format!("127.0.0.1 {}", primary.port)])
        .start();
    let mut r = replica.redis();
    assert_eq!(info_field(&mut r, "role").as_deref(), Some("slave"));
    wait_link_up(&replica);
    wait_value(&mut r, "before", "1");
    run(&mut p, &["SET", "after", "2"]);
    wait_value(&mut r, "after", "2");
    assert_err(
        &mut r,
        "SET mine 1",
        "READONLY You can't write against a read only replica.",
    );
}

#[test]
fn replica_read_only_no_lets_clients_write_on_the_replica() {
    if !baton_only("Baton's --replicaof flag") {
        return;
    }
    let primary = Server::start(1);
    let replica = Server::builder(2)
        .args(&[
            "--replicaof",
            &format!("127.0.0.1 {}", primary.port),
            "--replica-read-only",
            "no",
        ])
        .start();
    wait_link_up(&replica);
    let mut r = replica.redis();
    assert_reply(&mut r, "SET local 1", ok());
    assert_reply(&mut r, "GET local", bulk("1"));
    assert_eq!(info_field(&mut r, "slave_read_only").as_deref(), Some("0"));
    assert_reply(&mut r, "CONFIG SET replica-read-only yes", ok());
    assert_err(
        &mut r,
        "SET local 2",
        "READONLY You can't write against a read only replica.",
    );
    assert_eq!(info_field(&mut r, "slave_read_only").as_deref(), Some("1"));
}

const READONLY: &str = "SERVER_ERROR READONLY You can't write against a read only replica.\r\n";

#[test]
fn memcached_writes_on_a_read_only_replica_are_refused() {
    if !baton_only("replication") {
        return;
    }
    let primary = Server::builder(2).memcache().start();
    let mut pm = primary.memcache_raw();
    pm.send(b"set a 0 0 1\r\nA\r\nset n 0 0 1\r\n5\r\n");
    pm.expect(b"STORED\r\nSTORED\r\n");
    let replica = Server::builder(2)
        .memcache()
        .args(&["--replicaof", &format!("127.0.0.1 {}", primary.port)])
        .start();
    wait_link_up(&replica);
    let mut rm = replica.memcache_raw();
    let replicated = eventually(LINK_TIMEOUT, || {
        rm.send(b"get a\r\n");
        match rm.read_line().as_str() {
            "END\r\n" => false,
            "VALUE a 0 1\r\n" => {
                rm.expect(b"A\r\nEND\r\n");
                true
            }
            other => panic!("get a: {other:?}"),
        }
    });
    assert!(replicated, "a never reached the replica");

    // Every write, alone (the inline path).
    for write in [
        &b"set b 0 0 1\r\nB\r\n"[..],
        b"add b 0 0 1\r\nB\r\n",
        b"replace a 0 0 1\r\nB\r\n",
        b"append a 0 0 1\r\nB\r\n",
        b"prepend a 0 0 1\r\nB\r\n",
        b"cas a 0 0 1 1\r\nB\r\n",
        b"incr n 1\r\n",
        b"decr n 1\r\n",
        b"delete a\r\n",
        b"touch a 100\r\n",
        b"gat 100 a\r\n",
        b"gats 100 a n\r\n",
        b"flush_all\r\n",
        b"ms b 1\r\nB\r\n",
        b"ms b 1 q\r\nB\r\n",
        b"md a\r\n",
        b"md a q\r\n",
        b"ma n\r\n",
        b"mg a v T100\r\n",
        b"mg zz v N100\r\n",
    ] {
        rm.send(write);
        let got = rm.read_line();
        assert_eq!(got, READONLY, "{}", String::from_utf8_lossy(write));
    }
    // noreply suppresses the refusal, as it does memcached's errors.
    rm.send(b"set b 0 0 1 noreply\r\nB\r\ndelete a noreply\r\nincr n 1 noreply\r\nflush_all noreply\r\nmn\r\n");
    rm.expect(b"MN\r\n");
    // Reads work, and nothing changed.
    rm.send(b"get a n b\r\n");
    rm.expect(b"VALUE a 0 1\r\nA\r\nVALUE n 0 1\r\n5\r\nEND\r\n");
    rm.send(b"mg a v\r\n");
    rm.expect(b"VA 1\r\nA\r\n");
    // A pipeline over both cores (the path that queues per core) keeps its order.
    let mut batch = Vec::new();
    let mut want = Vec::new();
    for i in 0..20 {
        batch.extend_from_slice(format!("get k{i} a\r\nset k{i} 0 0 1\r\nx\r\n").as_bytes());
        want.extend_from_slice(b"VALUE a 0 1\r\nA\r\nEND\r\n");
        want.extend_from_slice(READONLY.as_bytes());
    }
    batch.extend_from_slice(b"flush_all\r\nget a\r\n");
    want.extend_from_slice(READONLY.as_bytes());
    want.extend_from_slice(b"VALUE a 0 1\r\nA\r\nEND\r\n");
    rm.send(&batch);
    rm.expect(&want);

    // A primary again, it takes writes.
    let mut r = replica.redis();
    assert_reply(&mut r, "REPLICAOF NO ONE", ok());
    rm.send(b"set b 0 0 1\r\nB\r\n");
    rm.expect(b"STORED\r\n");
}

#[test]
fn memcached_writes_on_a_replica_without_read_only_are_served() {
    if !baton_only("replication") {
        return;
    }
    let primary = Server::start(1);
    let replica = Server::builder(1)
        .memcache()
        .args(&[
            "--replicaof",
            &format!("127.0.0.1 {}", primary.port),
            "--slave-read-only",
            "no",
        ])
        .start();
    wait_link_up(&replica);
    let mut rm = replica.memcache_raw();
    rm.send(b"set b 0 0 1\r\nB\r\nget b\r\n");
    rm.expect(b"STORED\r\nVALUE b 0 1\r\nB\r\nEND\r\n");
}

#[test]
fn masterauth_and_announce_flags_reach_the_primary() {
    if !baton_only("Baton's --replicaof flag") {
        return;
    }
    let primary = Server::builder(1).requirepass("pw").start();
    let mut p = primary.redis_auth("pw");
    run(&mut p, &["SET", "secret", "kept"]);
    let replica = Server::builder(1)
        .args(&[
            "--replicaof",
            &format!("127.0.0.1 {}", primary.port),
            "--masterauth",
            "pw",
            "--replica-announce-ip",
            "10.9.8.7",
            "--replica-announce-port",
            "7777",
        ])
        .start();
    wait_link_up(&replica);
    wait_value(&mut replica.redis(), "secret", "kept");
    // The primary lists the replica under the announced address and port.
    let mut listed = String::new();
    let seen = eventually(LINK_TIMEOUT, || {
        listed = info_field(&mut p, "slave0").unwrap_or_default();
        listed.starts_with("ip=10.9.8.7,port=7777,")
    });
    assert!(seen, "the primary lists the replica as {listed:?}");
}
