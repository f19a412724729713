//! Pub/Sub against the real binary: SUBSCRIBE, PSUBSCRIBE, (P)UNSUBSCRIBE, PUBLISH and
//! PUBSUB over several cores, in RESP2 and RESP3, with the pubsub output limit.
//!
//! With two cores the kernel spreads connections over both, so several subscribers and
//! publishers put some on each core; every check holds whichever core each one landed on.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use redis::Value;

cores_tests!(
    every_message_arrives_once_and_in_order_per_publisher,
    unsubscribe_without_arguments_drops_every_subscription,
    resp2_subscriber_may_only_run_pubsub_commands,
    resp3_subscriber_gets_pushes_and_runs_anything,
    pubsub_introspection_sums_over_cores,
    client_list_and_kill_know_subscribers,
    slow_subscriber_over_the_hard_limit_is_disconnected,
    redis_cli_subscribe_receives_messages,
    redis_crate_pubsub_api,
    pubsub_limit_flag_config_and_info,
    a_sleeping_core_delivers_at_once,
);

fn b(s: &str) -> Value {
    bulk(s)
}

fn confirm(kind: &str, channel: Option<&str>, n: i64) -> Value {
    arr(vec![b(kind), channel.map_or(Value::Nil, b), Value::Int(n)])
}

/// An array reply with its items sorted (PUBSUB CHANNELS has no defined order).
fn sorted(v: Value) -> Value {
    let Value::Array(mut items) = v else {
        panic!("not an array: {v:?}")
    };
    items.sort_by_key(|i| format!("{i:?}"));
    Value::Array(items)
}

fn publish(c: &mut redis::Connection, channel: &str, msg: &str) -> i64 {
    as_int(&run(c, &["PUBLISH", channel, msg]))
}

/// Waits until PUBLISH on `channel` would reach `n` clients (subscriptions on other cores
/// are registered when their SUBSCRIBE was answered, so this is at once in practice).
fn wait_numsub(c: &mut redis::Connection, channel: &str, n: i64) {
    assert!(
        eventually(Duration::from_secs(5), || {
            run(c, &["PUBSUB", "NUMSUB", channel]) == arr(vec![b(channel), Value::Int(n)])
        }),
        "{channel} never had {n} subscribers"
    );
}

/// Eight subscribers (so both cores have some) on a channel and a pattern; six publishers
/// (so both cores publish) each publish 100 numbered messages. Every subscriber gets every
/// message exactly once per subscription, each publisher's in order, and every PUBLISH
/// counts every receiving client.
fn every_message_arrives_once_and_in_order_per_publisher(cores: usize) {
    let s = Server::start(cores);
    let subscribers = 8;
    let (publishers, per) = (6, 100);
    let mut subs: Vec<Raw> = (0..subscribers)
        .map(|_| {
            let mut r = s.raw();
            r.send_command(&["SUBSCRIBE", "news"]);
            assert_eq!(r.read_value(), confirm("subscribe", Some("news"), 1));
            r.send_command(&["PSUBSCRIBE", "ne*"]);
            assert_eq!(r.read_value(), confirm("psubscribe", Some("ne*"), 2));
            r
        })
        .collect();
    let port = s.port;
    let handles: Vec<_> = (0..publishers)
        .map(|p| {
            thread::spawn(move || {
                let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                    .unwrap()
                    .get_connection()
                    .unwrap();
                for i in 0..per {
                    assert_eq!(
                        publish(&mut c, "news", &format!("{p}:{i}")),
                        2 * subscribers as i64,
                        "PUBLISH counts each subscription of every client on every core"
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    for r in subs.iter_mut() {
        let mut next: HashMap<(bool, u64), u64> = HashMap::new();
        for _ in 0..2 * publishers * per {
            let (pattern, payload) = match r.read_value() {
                Value::Array(v) if v.len() == 3 && v[0] == b("message") => {
                    assert_eq!(v[1], b("news"));
                    (false, v[2].clone())
                }
                Value::Array(v) if v.len() == 4 && v[0] == b("pmessage") => {
                    assert_eq!((&v[1], &v[2]), (&b("ne*"), &b("news")));
                    (true, v[3].clone())
                }
                other => panic!("unexpected {other:?}"),
            };
            let Value::BulkString(text) = payload else {
                panic!("payload {payload:?}")
            };
            let text = String::from_utf8(text).unwrap();
            let (p, i) = text.split_once(':').unwrap();
            let (p, i): (u64, u64) = (p.parse().unwrap(), i.parse().unwrap());
            let want = next.entry((pattern, p)).or_insert(0);
            assert_eq!(
                i, *want,
                "publisher {p}'s messages out of order (pattern {pattern})"
            );
            *want += 1;
        }
        assert!(next.values().all(|&n| n == per as u64));
        // Nothing more: a PING is answered next.
        r.send_command(&["PING"]);
        assert_eq!(r.read_value(), arr(vec![b("pong"), b("")]));
    }
}

fn unsubscribe_without_arguments_drops_every_subscription(cores: usize) {
    let s = Server::start(cores);
    let mut r = s.raw();
    r.send_command(&["UNSUBSCRIBE"]);
    assert_eq!(r.read_value(), confirm("unsubscribe", None, 0));
    r.send_command(&["SUBSCRIBE", "a", "b", "a"]);
    assert_eq!(r.read_value(), confirm("subscribe", Some("a"), 1));
    assert_eq!(r.read_value(), confirm("subscribe", Some("b"), 2));
    assert_eq!(r.read_value(), confirm("subscribe", Some("a"), 2));
    r.send_command(&["PSUBSCRIBE", "p*"]);
    assert_eq!(r.read_value(), confirm("psubscribe", Some("p*"), 3));
    // One reply per channel, in an order Redis leaves open; the count goes down each time.
    r.send_command(&["UNSUBSCRIBE"]);
    let (first, second) = (r.read_value(), r.read_value());
    let ok = |x: &str, y: &str| {
        first == confirm("unsubscribe", Some(x), 2) && second == confirm("unsubscribe", Some(y), 1)
    };
    assert!(ok("a", "b") || ok("b", "a"), "{first:?} {second:?}");
    r.send_command(&["UNSUBSCRIBE", "never"]);
    assert_eq!(r.read_value(), confirm("unsubscribe", Some("never"), 1));
    r.send_command(&["PUNSUBSCRIBE"]);
    assert_eq!(r.read_value(), confirm("punsubscribe", Some("p*"), 0));
    r.send_command(&["PUNSUBSCRIBE"]);
    assert_eq!(r.read_value(), confirm("punsubscribe", None, 0));
    // Out of Pub/Sub mode: any command runs again.
    r.send_command(&["GET", "nothing"]);
    assert_eq!(r.read_value(), Value::Nil);
    let mut c = s.redis();
    assert_eq!(publish(&mut c, "a", "x"), 0);
    assert_eq!(publish(&mut c, "pq", "x"), 0);
}

fn resp2_subscriber_may_only_run_pubsub_commands(cores: usize) {
    let s = Server::start(cores);
    let mut r = s.raw();
    r.send_command(&["SUBSCRIBE", "a"]);
    assert_eq!(r.read_value(), confirm("subscribe", Some("a"), 1));
    r.send_command(&["GET", "x"]);
    r.expect(b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n");
    r.send_command(&["CLIENT", "LIST"]);
    r.expect(b"-ERR Can't execute 'client|list': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n");
    r.send_command(&["PING"]);
    r.expect(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    r.send_command(&["PING", "hi"]);
    r.expect(b"*2\r\n$4\r\npong\r\n$2\r\nhi\r\n");
    r.send_command(&["QUIT"]);
    r.expect(b"+OK\r\n");
}

fn resp3_subscriber_gets_pushes_and_runs_anything(cores: usize) {
    let s = Server::start(cores);
    let mut r = s.raw();
    r.send_command(&["HELLO", "3"]);
    let _ = r.read_value();
    r.send_command(&["SUBSCRIBE", "a"]);
    r.expect(b">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n");
    r.send_command(&["PSUBSCRIBE", "a*"]);
    r.expect(b">3\r\n$10\r\npsubscribe\r\n$2\r\na*\r\n:2\r\n");
    r.send_command(&["GET", "x"]);
    r.expect(b"_\r\n");
    r.send_command(&["PING"]);
    r.expect(b"+PONG\r\n");
    let mut c = s.redis();
    assert_eq!(publish(&mut c, "a", "hi"), 2);
    r.expect(b">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n");
    r.expect(b">4\r\n$8\r\npmessage\r\n$2\r\na*\r\n$1\r\na\r\n$2\r\nhi\r\n");
    r.send_command(&["UNSUBSCRIBE"]);
    r.expect(b">3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n");
}

fn pubsub_introspection_sums_over_cores(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let mut subs = Vec::new();
    for i in 0..8 {
        let mut r = s.raw();
        let ch = if i % 2 == 0 { "even" } else { "odd" };
        r.send_command(&["SUBSCRIBE", ch, "all"]);
        let _ = (r.read_value(), r.read_value());
        r.send_command(&["PSUBSCRIBE", "a*", &format!("p{}", i % 3)]);
        let _ = (r.read_value(), r.read_value());
        subs.push(r);
    }
    assert_eq!(
        sorted(run(&mut c, &["PUBSUB", "CHANNELS"])),
        arr(vec![b("all"), b("even"), b("odd")])
    );
    assert_eq!(
        run(&mut c, &["PUBSUB", "CHANNELS", "*d*"]),
        arr(vec![b("odd")])
    );
    assert_eq!(
        run(&mut c, &["PUBSUB", "NUMSUB", "all", "even", "none"]),
        arr(vec![
            b("all"),
            Value::Int(8),
            b("even"),
            Value::Int(4),
            b("none"),
            Value::Int(0)
        ])
    );
    assert_eq!(run(&mut c, &["PUBSUB", "NUMSUB"]), arr(vec![]));
    // Distinct patterns: a*, p0, p1, p2.
    assert_eq!(run(&mut c, &["PUBSUB", "NUMPAT"]), Value::Int(4));
    assert_eq!(publish(&mut c, "all", "x"), 16);
    assert_err(
        &mut c,
        "PUBSUB NUMPAT x",
        "ERR wrong number of arguments for 'pubsub|numpat' command",
    );
    assert_err(
        &mut c,
        "PUBSUB FOO",
        "ERR unknown subcommand 'FOO'. Try PUBSUB HELP.",
    );
    drop(subs);
    wait_numsub(&mut c, "all", 0);
    assert_eq!(run(&mut c, &["PUBSUB", "CHANNELS"]), arr(vec![]));
    assert_eq!(run(&mut c, &["PUBSUB", "NUMPAT"]), Value::Int(0));
}

fn client_list_and_kill_know_subscribers(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let mut subs: Vec<Raw> = (0..4)
        .map(|_| {
            let mut r = s.raw();
            r.send_command(&["SUBSCRIBE", "a", "b"]);
            let _ = (r.read_value(), r.read_value());
            r.send_command(&["PSUBSCRIBE", "x*"]);
            let _ = r.read_value();
            r
        })
        .collect();
    let Value::BulkString(list) = run(&mut c, &["CLIENT", "LIST"]) else {
        panic!("CLIENT LIST")
    };
    let list = String::from_utf8(list).unwrap();
    assert_eq!(
        list.lines()
            .filter(|l| l.contains(" flags=P ") && l.contains(" sub=2 psub=1 "))
            .count(),
        4,
        "{list}"
    );
    assert_eq!(list.lines().filter(|l| l.contains(" flags=N ")).count(), 1);
    assert_eq!(
        run(&mut c, &["CLIENT", "KILL", "TYPE", "pubsub"]),
        Value::Int(4)
    );
    for r in subs.iter_mut() {
        let mut buf = [0u8; 16];
        assert!(matches!(
            r.stream().try_clone().unwrap().read(&mut buf),
            Ok(0) | Err(_)
        ));
    }
    assert_eq!(
        run(&mut c, &["CLIENT", "KILL", "TYPE", "pubsub"]),
        Value::Int(0)
    );
    assert_eq!(
        run(&mut c, &["CLIENT", "KILL", "TYPE", "replica"]),
        Value::Int(0)
    );
    wait_numsub(&mut c, "a", 0);
}

/// A subscriber that does not read is closed once its unsent messages pass the pubsub
/// hard limit; a subscriber that reads gets every message, and publishing goes on.
fn slow_subscriber_over_the_hard_limit_is_disconnected(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_eq!(
        run(
            &mut c,
            &[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "pubsub 1mb 0 0"
            ]
        ),
        ok()
    );
    let mut slow = s.raw();
    slow.send_command(&["SUBSCRIBE", "big"]);
    assert_eq!(slow.read_value(), confirm("subscribe", Some("big"), 1));
    let mut fast = s.raw();
    fast.send_command(&["SUBSCRIBE", "big"]);
    assert_eq!(fast.read_value(), confirm("subscribe", Some("big"), 1));

    let n = 400;
    let payload = "x".repeat(64 * 1024);
    let reader = thread::spawn(move || {
        for _ in 0..n {
            match fast.read_value() {
                Value::Array(v) if v.len() == 3 => {}
                other => panic!("fast subscriber got {other:?}"),
            }
        }
        fast
    });
    let mut counts = Vec::new();
    for _ in 0..n {
        counts.push(publish(&mut c, "big", &payload));
    }
    let mut fast = reader.join().unwrap();
    assert_eq!(counts[0], 2);
    assert_eq!(*counts.last().unwrap(), 1, "the slow subscriber is gone");
    // The slow one's socket ends before all 25 MiB arrived.
    let mut got = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    let mut stream: TcpStream = slow.stream().try_clone().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "slow subscriber still open");
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => got += k,
        }
    }
    assert!(
        got < n * payload.len(),
        "everything was delivered ({got} bytes)"
    );
    fast.send_command(&["PING"]);
    assert_eq!(fast.read_value(), arr(vec![b("pong"), b("")]));
    if baton_only("log lines") {
        assert!(
            eventually(Duration::from_secs(5), || s
                .stderr()
                .contains("closed for overcoming of output buffer limits")),
            "{}",
            s.stderr()
        );
    }
}

/// `redis-cli subscribe` in a child process prints what is published.
fn redis_cli_subscribe_receives_messages(cores: usize) {
    let s = Server::start(cores);
    let mut child = Command::new("redis-cli")
        .args(["-p", &s.port.to_string(), "subscribe", "news"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-cli");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // subscribe / news / 1
    for want in ["subscribe", "news", "1"] {
        assert_eq!(lines.next().unwrap().unwrap(), want);
    }
    let mut c = s.redis();
    assert_eq!(publish(&mut c, "news", "hello"), 1);
    for want in ["message", "news", "hello"] {
        assert_eq!(lines.next().unwrap().unwrap(), want);
    }
    let _ = child.kill();
    let _ = child.wait();
    wait_numsub(&mut c, "news", 0);
}

/// The redis crate's Pub/Sub API: subscribe, psubscribe, messages with their channel,
/// pattern and payload, unsubscribe.
fn redis_crate_pubsub_api(cores: usize) {
    let s = Server::start(cores);
    let mut sub_con = s.redis();
    let mut c = s.redis();
    let mut ps = sub_con.as_pubsub();
    ps.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    ps.subscribe("orders").unwrap();
    ps.psubscribe("order*").unwrap();
    for i in 0..10 {
        assert_eq!(publish(&mut c, "orders", &format!("m{i}")), 2);
    }
    assert_eq!(publish(&mut c, "orderly", "p"), 1);
    let (mut direct, mut by_pattern) = (Vec::new(), Vec::new());
    for _ in 0..21 {
        let msg = ps.get_message().unwrap();
        let payload: String = msg.get_payload().unwrap();
        if msg.from_pattern() {
            assert_eq!(msg.get_pattern::<String>().unwrap(), "order*");
            by_pattern.push((msg.get_channel_name().to_string(), payload));
        } else {
            assert_eq!(msg.get_channel_name(), "orders");
            direct.push(payload);
        }
    }
    let want: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    assert_eq!(direct, want);
    let mut pattern_want: Vec<(String, String)> = want
        .iter()
        .map(|m| ("orders".to_string(), m.clone()))
        .collect();
    pattern_want.push(("orderly".into(), "p".into()));
    assert_eq!(by_pattern, pattern_want);
    ps.unsubscribe("orders").unwrap();
    ps.punsubscribe("order*").unwrap();
    drop(ps);
    assert_eq!(publish(&mut c, "orders", "gone"), 0);
    // Out of Pub/Sub mode, the connection runs commands again.
    assert_eq!(run(&mut sub_con, &["PING"]), simple("PONG"));
}

/// `--client-output-buffer-limit-pubsub` sets the pubsub class, CONFIG GET/SET read and
/// change it apart from the normal class, and INFO counts distinct channels and patterns.
fn pubsub_limit_flag_config_and_info(cores: usize) {
    if !baton_only("the --client-output-buffer-limit-pubsub flag") {
        return;
    }
    let s = Server::builder(cores)
        .args(&["--client-output-buffer-limit-pubsub", "2mb 1mb 5"])
        .start();
    let mut c = s.redis();
    let get = |c: &mut redis::Connection| match run(
        c,
        &["CONFIG", "GET", "client-output-buffer-limit"],
    ) {
        Value::Array(v) => v[1].clone(),
        Value::Map(v) => v[0].1.clone(),
        other => panic!("{other:?}"),
    };
    let text = |v: Value| match v {
        Value::BulkString(b) => String::from_utf8(b).unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(
        text(get(&mut c)).ends_with(" pubsub 2097152 1048576 5"),
        "{:?}",
        get(&mut c)
    );
    assert_eq!(
        run(
            &mut c,
            &[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "pubsub 0 0 0"
            ]
        ),
        ok()
    );
    let now = text(get(&mut c));
    assert!(now.starts_with("normal 268435456 67108864 60 "), "{now}");
    assert!(now.ends_with(" pubsub 0 0 0"), "{now}");

    let mut subs: Vec<Raw> = (0..6)
        .map(|i| {
            let mut r = s.raw();
            r.send_command(&["SUBSCRIBE", "same", &format!("own{i}")]);
            let _ = (r.read_value(), r.read_value());
            r.send_command(&["PSUBSCRIBE", "pat*"]);
            let _ = r.read_value();
            r
        })
        .collect();
    let info = text(run(&mut c, &["INFO", "stats"]));
    assert!(info.contains("\r\npubsub_channels:7\r\n"), "{info}");
    assert!(info.contains("\r\npubsub_patterns:1\r\n"), "{info}");
    subs.clear();
    wait_numsub(&mut c, "same", 0);
}

/// Subscribers on idle (sleeping) cores get a message within a fraction of a second: the
/// mesh delivery wakes the core and its loop sends the message in the same turn, without
/// waiting for another event.
fn a_sleeping_core_delivers_at_once(cores: usize) {
    let s = Server::start(cores);
    let mut subs: Vec<Raw> = (0..6)
        .map(|_| {
            let mut r = s.raw();
            r.send_command(&["SUBSCRIBE", "tick"]);
            assert_eq!(r.read_value(), confirm("subscribe", Some("tick"), 1));
            r
        })
        .collect();
    let mut c = s.redis();
    for round in 0..5 {
        // Long enough for every core to go to sleep in its ring.
        thread::sleep(Duration::from_millis(150));
        let start = Instant::now();
        assert_eq!(publish(&mut c, "tick", &round.to_string()), 6);
        for r in subs.iter_mut() {
            assert_eq!(
                r.read_value(),
                arr(vec![b("message"), b("tick"), b(&round.to_string())])
            );
        }
        let took = start.elapsed();
        assert!(
            took < Duration::from_millis(500),
            "round {round}: delivery took {took:?}"
        );
    }
}
