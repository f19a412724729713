//! The data-type thresholds (`hash-max-listpack-entries`, `zset-max-listpack-value`,
//! `set-max-intset-entries`, ...) as command-line flags and config-file lines, Redis's
//! `*-ziplist-*` names included; bad values stop the server with Redis's error text;
//! CONFIG SET then CONFIG REWRITE writes them into the config file, and a restart from
//! that file encodes values by them (OBJECT ENCODING).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn config_get(con: &mut redis::Connection, name: &str, want: &str) {
    assert_reply(
        con,
        &format!("CONFIG GET {name}"),
        Value::Array(vec![bulk(name), bulk(want)]),
    );
}

/// A fresh directory for one test's config file.
fn temp_dir(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("baton-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn flags_set_the_thresholds_on_every_core() {
    if !baton_only("Baton's flags") {
        return;
    }
    let server = Server::builder(2)
        .args(&[
            "--hash-max-listpack-entries",
            "2",
            "--hash-max-ziplist-value",
            "5",
            "--set-max-intset-entries",
            "2",
            "--zset-max-ziplist-entries",
            "3",
            "--zset-max-listpack-value",
            "4b",
            "--list-max-listpack-size",
            "-3",
        ])
        .start();
    let mut c = server.redis();
    config_get(&mut c, "hash-max-listpack-entries", "2");
    config_get(&mut c, "hash-max-listpack-value", "5");
    config_get(&mut c, "set-max-intset-entries", "2");
    config_get(&mut c, "zset-max-ziplist-entries", "3");
    config_get(&mut c, "zset-max-listpack-value", "4");
    config_get(&mut c, "list-max-ziplist-size", "-3");
    // Keys on both cores: the thresholds are the process's, not one shard's.
    for key in ["h1", "h2", "h3", "h4"] {
        assert_reply(&mut c, &format!("HSET {key} a 1 b 2"), int(2));
        assert_reply(&mut c, &format!("OBJECT ENCODING {key}"), bulk("listpack"));
        assert_reply(&mut c, &format!("HSET {key} c 3"), int(1));
        assert_reply(&mut c, &format!("OBJECT ENCODING {key}"), bulk("hashtable"));
    }
    assert_reply(&mut c, "HSET v f 12345", int(1));
    assert_reply(&mut c, "OBJECT ENCODING v", bulk("listpack"));
    assert_reply(&mut c, "HSET v g 123456", int(1));
    assert_reply(&mut c, "OBJECT ENCODING v", bulk("hashtable"));
    assert_reply(&mut c, "SADD s 1 2", int(2));
    assert_reply(&mut c, "OBJECT ENCODING s", bulk("intset"));
    assert_reply(&mut c, "SADD s 3", int(1));
    assert_reply(&mut c, "OBJECT ENCODING s", bulk("hashtable"));
    assert_reply(&mut c, "ZADD z 1 a 2 b 3 abcd", int(3));
    assert_reply(&mut c, "OBJECT ENCODING z", bulk("listpack"));
    assert_reply(&mut c, "ZADD z 4 abcde", int(1));
    assert_reply(&mut c, "OBJECT ENCODING z", bulk("skiplist"));
    assert_reply(&mut c, "ZADD y 1 a 2 b 3 c 4 d", int(4));
    assert_reply(&mut c, "OBJECT ENCODING y", bulk("skiplist"));
}

#[test]
fn config_file_lines_set_the_thresholds() {
    if !baton_only("Baton's config file") {
        return;
    }
    let dir = temp_dir("typecfg-lines");
    let file = dir.join("baton.conf");
    std::fs::write(
        &file,
        "# thresholds\nhash-max-ziplist-entries 1\nzset-max-listpack-entries 1\n\
         list-max-ziplist-size 5\nset-max-intset-entries 0\n",
    )
    .unwrap();
    let server = Server::builder(1)
        .args(&["--config", file.to_str().unwrap()])
        .start();
    let mut c = server.redis();
    config_get(&mut c, "hash-max-listpack-entries", "1");
    config_get(&mut c, "zset-max-listpack-entries", "1");
    config_get(&mut c, "list-max-listpack-size", "5");
    config_get(&mut c, "set-max-intset-entries", "0");
    assert_reply(&mut c, "HSET h a 1", int(1));
    assert_reply(&mut c, "OBJECT ENCODING h", bulk("listpack"));
    assert_reply(&mut c, "HSET h b 2", int(1));
    assert_reply(&mut c, "OBJECT ENCODING h", bulk("hashtable"));
    assert_reply(&mut c, "ZADD z 1 a", int(1));
    assert_reply(&mut c, "OBJECT ENCODING z", bulk("listpack"));
    assert_reply(&mut c, "ZADD z 2 b", int(1));
    assert_reply(&mut c, "OBJECT ENCODING z", bulk("skiplist"));
    assert_reply(&mut c, "SADD s 1", int(1));
    assert_reply(&mut c, "OBJECT ENCODING s", bulk("hashtable"));
    drop(server);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn config_set_then_rewrite_then_restart_keeps_the_thresholds() {
    if !baton_only("the config file Baton was started with") {
        return;
    }
    let dir = temp_dir("typecfg-rewrite");
    let file = dir.join("baton.conf");
    std::fs::write(
        &file,
        "# keep this comment\nhash-max-ziplist-entries 100\ntimeout 0\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    {
        let server = Server::builder(2).args(&["--config", path]).start();
        let mut c = server.redis();
        config_get(&mut c, "hash-max-listpack-entries", "100");
        assert_reply(
            &mut c,
            "CONFIG SET hash-max-listpack-entries 3 zset-max-ziplist-value 2 list-max-listpack-size -4",
            ok(),
        );
        assert_reply(&mut c, "CONFIG REWRITE", ok());
    }
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("# keep this comment\nhash-max-listpack-entries 3\ntimeout 0\n"),
        "the alias line is rewritten in place under its listpack name: {text}"
    );
    assert!(text.contains("\nzset-max-listpack-value 2\n"), "{text}");
    assert!(text.contains("\nlist-max-listpack-size -4\n"), "{text}");
    assert!(
        !text.contains("hash-max-listpack-value") && !text.contains("set-max-intset-entries"),
        "thresholds at their defaults are left out: {text}"
    );

    let server = Server::builder(2).args(&["--config", path]).start();
    let mut c = server.redis();
    config_get(&mut c, "hash-max-listpack-entries", "3");
    config_get(&mut c, "zset-max-listpack-value", "2");
    config_get(&mut c, "list-max-listpack-size", "-4");
    config_get(&mut c, "hash-max-listpack-value", "64");
    for key in ["a", "b", "c"] {
        assert_reply(&mut c, &format!("HSET {key} f1 1 f2 2 f3 3"), int(3));
        assert_reply(&mut c, &format!("OBJECT ENCODING {key}"), bulk("listpack"));
        assert_reply(&mut c, &format!("HSET {key} f4 4"), int(1));
        assert_reply(&mut c, &format!("OBJECT ENCODING {key}"), bulk("hashtable"));
    }
    assert_reply(&mut c, "ZADD z 1 ab", int(1));
    assert_reply(&mut c, "OBJECT ENCODING z", bulk("listpack"));
    assert_reply(&mut c, "ZADD z 2 abc", int(1));
    assert_reply(&mut c, "OBJECT ENCODING z", bulk("skiplist"));
    drop(server);
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs the binary with `args` to its exit (it must fail before listening), killing it
/// after a bound; returns its exit status's success and its stderr.
fn run_to_exit(args: &[&str]) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["--port", "0", "--memcache-port", "0", "--cores", "1"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn baton");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("baton {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    use std::io::Read;
    child.stderr.take().unwrap().read_to_string(&mut err).ok();
    (status.success(), err)
}

#[test]
fn bad_threshold_values_stop_the_server_with_redis_errors() {
    if !baton_only("Baton's flags") {
        return;
    }
    let not_int = "argument couldn't be parsed into an integer";
    let not_memory = "argument must be a memory value";
    let range = "argument must be between 0 and 9223372036854775807 inclusive";
    let int_range = "argument must be between -2147483648 and 2147483647 inclusive";
    for (args, want) in [
        (&["--hash-max-listpack-entries", "many"][..], not_int),
        (&["--hash-max-listpack-entries", "1kb"][..], not_int),
        (&["--hash-max-ziplist-value", "-1"][..], not_memory),
        (
            &["--hash-max-listpack-value", "9223372036854775808"][..],
            range,
        ),
        (&["--set-max-intset-entries", "1.5"][..], not_int),
        (&["--zset-max-listpack-entries", "-5"][..], range),
        (&["--zset-max-ziplist-value", "+3"][..], not_memory),
        (&["--list-max-listpack-size", "2147483648"][..], int_range),
    ] {
        let (ok, err) = run_to_exit(args);
        assert!(!ok, "{args:?} started");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let dir = temp_dir("typecfg-bad");
    let file = dir.join("baton.conf");
    std::fs::write(&file, "zset-max-ziplist-entries lots\n").unwrap();
    let (ok, err) = run_to_exit(&["--config", file.to_str().unwrap()]);
    assert!(!ok, "a bad config line started the server");
    assert!(err.contains(not_int), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
