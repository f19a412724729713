//! A lone request for another core's key is answered from that core: it sends the reply
//! on the client's socket itself, and the client's core reads the batch's response
//! lazily (without being woken for it). These tests check what that must not change:
//! every reply arrives once, in order, promptly on an otherwise idle server (a lazy
//! response slept through would hold the connection's next request until a timer), big
//! replies still go through the client's core and its output limits, and the command is
//! counted once in INFO commandstats and logged in the slow log under its client.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Sequential round trips; each lost wake-up costs up to 100 ms (the next timer), so the
/// bound catches a few of them while leaving a busy test machine fifty times Redis's pace.
const ROUND_TRIPS: usize = 400;
const BOUND: Duration = Duration::from_secs(2);

#[test]
fn lone_requests_for_the_other_core_are_answered_promptly_and_in_order() {
    let s = Server::start(2);
    let mut raw = s.raw();
    let start = Instant::now();
    for i in 0..ROUND_TRIPS {
        let key = format!("k{i}");
        let value = format!("v{i}");
        raw.send_command(&["SET", &key, &value]);
        raw.expect(b"+OK\r\n");
        raw.send_command(&["GET", &key]);
        raw.expect(format!("${}\r\n{value}\r\n", value.len()).as_bytes());
    }
    let took = start.elapsed();
    assert!(
        took < BOUND,
        "{} sequential requests took {took:?}",
        2 * ROUND_TRIPS
    );
    // Counted once each, on whichever core ran them.
    let mut c = s.redis();
    assert_calls(&mut c, &[("get", ROUND_TRIPS), ("set", ROUND_TRIPS)]);
}

/// Asserts INFO commandstats counts exactly `calls` calls of each command.
fn assert_calls(c: &mut redis::Connection, want: &[(&str, usize)]) {
    for (cmd, calls) in want {
        let line = cmdstat_line(c, cmd);
        assert!(
            line.starts_with(&format!("cmdstat_{cmd}:calls={calls},")),
            "{line}"
        );
    }
}

/// The line of INFO commandstats for `cmd`.
fn cmdstat_line(c: &mut redis::Connection, cmd: &str) -> String {
    let stats = as_str(&run(c, &["INFO", "commandstats"]));
    stats
        .lines()
        .find(|l| l.starts_with(&format!("cmdstat_{cmd}:")))
        .unwrap_or_else(|| panic!("no cmdstat_{cmd} in {stats}"))
        .to_string()
}

#[test]
fn a_request_sent_before_the_last_reply_is_read_waits_its_turn() {
    let s = Server::start(2);
    let mut raw = s.raw();
    for i in 0..200 {
        raw.send_command(&["SET", &format!("k{i}"), &format!("v{i}")]);
        raw.expect(b"+OK\r\n");
    }
    // A lone request, then more before its reply is read: the replies keep their order.
    for i in 0..200 {
        raw.send_command(&["GET", &format!("k{i}")]);
        raw.send_command(&["INCR", &format!("n{i}")]);
        raw.send_command(&["GET", &format!("k{}", 199 - i)]);
        let want = format!(
            "${}\r\nv{i}\r\n:1\r\n${}\r\nv{}\r\n",
            format!("v{i}").len(),
            format!("v{}", 199 - i).len(),
            199 - i
        );
        raw.expect(want.as_bytes());
    }
}

#[test]
fn big_replies_and_resp3_from_the_other_core_arrive_whole() {
    let s = Server::start(2);
    let mut c = s.redis();
    let big: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    for i in 0..20 {
        let key = format!("big{i}");
        assert_eq!(
            run(
                &mut c,
                &[b"SET".to_vec(), key.clone().into_bytes(), big.clone()]
            ),
            ok()
        );
        assert_eq!(run(&mut c, &["GET", &key]), Value::BulkString(big.clone()));
        assert_eq!(run(&mut c, &["STRLEN", &key]), int(big.len() as i64));
    }
    let mut raw = s.raw();
    raw.send_command(&["HELLO", "3"]);
    let _ = raw.read_value();
    for i in 0..50 {
        raw.send_command(&["GET", &format!("missing{i}")]);
        raw.expect(b"_\r\n");
    }
}

#[test]
fn the_slow_log_names_the_client_of_a_command_another_core_ran() {
    let s = Server::start(2);
    let mut c = s.redis();
    assert_eq!(q(&mut c, "CLIENT SETNAME lone"), ok());
    assert_eq!(q(&mut c, "CONFIG SET slowlog-log-slower-than 0"), ok());
    assert_eq!(q(&mut c, "SLOWLOG RESET"), ok());
    for i in 0..50 {
        assert_eq!(run(&mut c, &["SET", &format!("s{i}"), "x"]), ok());
    }
    let keys: Vec<String> = (0..50).map(|i| format!("s{i}")).collect();
    let mut seen = std::collections::HashSet::new();
    for entry in as_array(&q(&mut c, "SLOWLOG GET 200")) {
        let fields = as_array(&entry);
        let args = as_strings(&fields[3]);
        if args.first().map(String::as_str) == Some("SET") {
            assert_eq!(as_str(&fields[5]), "lone", "{fields:?}");
            seen.insert(args[1].clone());
        }
    }
    for k in &keys {
        assert!(seen.contains(k), "SET {k} is not in the slow log");
    }
}

/// A pipeline whose commands are spread over both cores: the loop sends the other
/// core's share there itself and finishes the pipeline when the response is back
/// (`Outcome::Pipe`). Replies keep request order, whatever the length (past the 256 a
/// pipeline answers at a time as well), with split commands (MGET over both cores) and
/// answered ones (PING, an unknown command) among them, and every command is counted
/// once.
#[test]
fn pipelines_over_both_cores_keep_their_order_and_counts() {
    let s = Server::start(2);
    let mut raw = s.raw();
    let mut total_sets = 0;
    let mut total_gets = 0;
    for (round, len) in [1usize, 2, 7, 32, 255, 256, 257, 600]
        .into_iter()
        .enumerate()
    {
        let mut bytes = Vec::new();
        let mut want = Vec::new();
        for i in 0..len {
            let (key, value) = (format!("p{round}:{i}"), format!("v{round}.{i}"));
            bytes.extend(encode_command(&["SET", &key, &value]));
            want.extend_from_slice(b"+OK\r\n");
            bytes.extend(encode_command(&["GET", &key]));
            want.extend(format!("${}\r\n{value}\r\n", value.len()).into_bytes());
            total_sets += 1;
            total_gets += 1;
            if i % 50 == 7 {
                let other = format!("p{round}:{}", i / 2);
                bytes.extend(encode_command(&["MGET", &key, &other, "nokey"]));
                let v2 = format!("v{round}.{}", i / 2);
                want.extend(
                    format!(
                        "*3\r\n${}\r\n{value}\r\n${}\r\n{v2}\r\n$-1\r\n",
                        value.len(),
                        v2.len()
                    )
                    .into_bytes(),
                );
                bytes.extend(encode_command(&["PING"]));
                want.extend_from_slice(b"+PONG\r\n");
                bytes.extend(encode_command(&["NOSUCHCMD", &key]));
                want.extend(
                    format!(
                        "-ERR unknown command 'NOSUCHCMD', with args beginning with: '{key}' \r\n"
                    )
                    .into_bytes(),
                );
            }
        }
        raw.send(&bytes);
        raw.expect(&want);
    }
    // QUIT in the middle of a pipeline over both cores: the replies before it, its +OK,
    // then the connection closes and what follows is not run.
    let mut bytes = Vec::new();
    let mut want = Vec::new();
    for i in 0..20 {
        bytes.extend(encode_command(&["SET", &format!("q{i}"), "x"]));
        want.extend_from_slice(b"+OK\r\n");
    }
    bytes.extend(encode_command(&["QUIT"]));
    want.extend_from_slice(b"+OK\r\n");
    for i in 0..20 {
        bytes.extend(encode_command(&["SET", &format!("after{i}"), "x"]));
    }
    raw.send(&bytes);
    raw.expect(&want);
    raw.expect_closed();
    let mut c = s.redis();
    for i in 0..20 {
        assert_eq!(run(&mut c, &["EXISTS", &format!("after{i}")]), int(0));
    }
    assert_calls(&mut c, &[("get", total_gets), ("set", total_sets + 20)]);
}

/// The memcached port's pipelines over both cores take the same loop-driven path: replies
/// keep request order (sets, a multi-key get over both cores, `version`, an unknown
/// command, `mn`), `stats` counts every op once, and a pipeline holding `stats` or `quit`
/// (which take the task) still answers in order.
#[test]
fn memcached_pipelines_over_both_cores_keep_their_order_and_counts() {
    let s = Server::start_with_memcache(2);
    let mut raw = s.memcache_raw();
    let mut bytes = Vec::new();
    let mut want = Vec::new();
    for i in 0..300 {
        bytes.extend(
            format!("set m{i} {i} 0 {}\r\nval{i}\r\n", format!("val{i}").len()).into_bytes(),
        );
        want.extend_from_slice(b"STORED\r\n");
    }
    let keys: Vec<usize> = (0..300).step_by(7).collect();
    bytes.extend(b"get nokey ");
    bytes.extend(
        keys.iter()
            .map(|i| format!("m{i}"))
            .collect::<Vec<_>>()
            .join(" ")
            .into_bytes(),
    );
    bytes.extend(b"\r\n");
    for i in &keys {
        want.extend(
            format!("VALUE m{i} {i} {}\r\nval{i}\r\n", format!("val{i}").len()).into_bytes(),
        );
    }
    want.extend_from_slice(b"END\r\n");
    bytes.extend(b"version\r\nbogus\r\nmn\r\n");
    want.extend(format!("VERSION {}\r\nERROR\r\nMN\r\n", env!("CARGO_PKG_VERSION")).into_bytes());
    for i in 0..50 {
        bytes.extend(format!("get m{i}\r\n").into_bytes());
        want.extend(
            format!(
                "VALUE m{i} {i} {}\r\nval{i}\r\nEND\r\n",
                format!("val{i}").len()
            )
            .into_bytes(),
        );
    }
    raw.send(&bytes);
    raw.expect(&want);
    // `stats` among remote gets: the task path, same order.
    raw.send(b"get m1\r\nget m2\r\nstats\r\nget m3\r\n");
    raw.expect(b"VALUE m1 1 4\r\nval1\r\nEND\r\nVALUE m2 2 4\r\nval2\r\nEND\r\n");
    let mut stats = Vec::new();
    loop {
        let line = raw.read_line().trim_end().to_string();
        if line == "END" {
            break;
        }
        stats.push(line);
    }
    raw.expect(b"VALUE m3 3 4\r\nval3\r\nEND\r\n");
    let stat = |name: &str| -> u64 {
        stats
            .iter()
            .find_map(|l| l.strip_prefix(&format!("STAT {name} ")))
            .unwrap_or_else(|| panic!("no {name} in {stats:?}"))
            .parse()
            .unwrap()
    };
    assert_eq!(stat("cmd_set"), 300);
    // 1 multi-get of keys.len() + 1 keys, 50 single gets, m1 and m2 before `stats`.
    assert_eq!(stat("cmd_get"), keys.len() as u64 + 1 + 50 + 2);
    assert_eq!(stat("get_hits"), keys.len() as u64 + 50 + 2);
    assert_eq!(stat("get_misses"), 1);
}

/// GETs take two shortcuts: one of this core's key is answered straight from the read
/// buffer, and one inside a pipeline that spans cores is planned without the general
/// checks. Both apply only where the general path would do the same. Here, pipelined on
/// one and on two cores, GETs meet what must send them the general way: no AUTH yet, a
/// transaction being queued, a RESP2 subscriber; and each GET is still counted, shown in
/// CLIENT LIST and logged in the slow log as sent (its name in the client's case).
#[test]
fn pipelined_gets_meet_auth_transactions_and_subscriptions_as_any_command() {
    for cores in [1, 2] {
        let s = Server::builder(cores)
            .requirepass("pw")
            .args(&["--slowlog-log-slower-than", "0"])
            .start();
        let mut raw = s.raw();
        let keys: Vec<String> = (0..8).map(|i| format!("g{i}")).collect();
        let mut bytes = Vec::new();
        let mut want = Vec::new();
        for k in &keys {
            bytes.extend(encode_command(&["GET", k]));
            want.extend_from_slice(b"-NOAUTH Authentication required.\r\n");
        }
        bytes.extend(encode_command(&["AUTH", "pw"]));
        want.extend_from_slice(b"+OK\r\n");
        for k in &keys {
            bytes.extend(encode_command(&["SET", k, &format!("v{k}")]));
            want.extend_from_slice(b"+OK\r\n");
        }
        for k in &keys {
            bytes.extend(encode_command(&["gEt", k]));
            want.extend(format!("$3\r\nv{k}\r\n").into_bytes());
        }
        // Writes to both cores first, so that on two cores what follows is read by the
        // pipeline that spans them, which plans GETs directly when it may.
        for k in &keys {
            bytes.extend(encode_command(&["SET", k, &format!("v{k}")]));
            want.extend_from_slice(b"+OK\r\n");
        }
        bytes.extend(encode_command(&["MULTI"]));
        want.extend_from_slice(b"+OK\r\n");
        for k in &keys {
            bytes.extend(encode_command(&["GET", k]));
            want.extend_from_slice(b"+QUEUED\r\n");
        }
        bytes.extend(encode_command(&["EXEC"]));
        want.extend(format!("*{}\r\n", keys.len()).into_bytes());
        for k in &keys {
            want.extend(format!("$3\r\nv{k}\r\n").into_bytes());
        }
        raw.send(&bytes);
        raw.expect(&want);

        // A RESP2 subscriber may not GET; once it unsubscribes, it may again.
        let mut bytes = encode_command(&["SUBSCRIBE", "ch"]);
        let mut want = b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n".to_vec();
        for k in &keys {
            bytes.extend(encode_command(&["GET", k]));
            want.extend_from_slice(
                b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
            );
        }
        bytes.extend(encode_command(&["UNSUBSCRIBE", "ch"]));
        want.extend_from_slice(b"*3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:0\r\n");
        for k in &keys {
            bytes.extend(encode_command(&["GET", k]));
            want.extend(format!("$3\r\nv{k}\r\n").into_bytes());
        }
        raw.send(&bytes);
        raw.expect(&want);

        let mut c = s.redis();
        assert_eq!(q(&mut c, "AUTH pw"), ok());
        // The 8 refused for NOAUTH and the 8 for the subscription are rejected, not run.
        let line = cmdstat_line(&mut c, "get");
        assert!(
            line.starts_with(&format!("cmdstat_get:calls={},", 3 * keys.len()))
                && line.contains(&format!("rejected_calls={}", 2 * keys.len())),
            "cores {cores}: {line}"
        );
        let list = as_str(&run(&mut c, &["CLIENT", "LIST"]));
        assert!(
            list.lines().any(|l| l.contains(" cmd=get ")),
            "cores {cores}: no client's last command is get: {list}"
        );
        let logged: Vec<Vec<String>> = as_array(&q(&mut c, "SLOWLOG GET 1000"))
            .iter()
            .map(|e| as_strings(&as_array(e)[3]))
            .collect();
        for k in &keys {
            for name in ["gEt", "GET"] {
                assert!(
                    logged.contains(&vec![name.to_string(), k.clone()]),
                    "cores {cores}: {name} {k} is not in the slow log: {logged:?}"
                );
            }
        }
    }
}

/// On two cores, a pipeline's GETs for the other core travel packed, one job per run of
/// them, and its GETs read whole from the input go with no argument list. Each GET
/// still gets its own reply, in order and in the client's protocol: values (one empty,
/// one that fills more than a read), misses, WRONGTYPE, keys of every length (too long
/// to read in one pass, too long to pack), and writes to the same keys in between; and
/// each is counted, failed ones as failed.
#[test]
fn pipelined_gets_across_cores_each_answer_in_order_in_both_protocols() {
    for cores in [1, 2] {
        let s = Server::start(cores);
        for proto in [2, 3] {
            let mut raw = s.raw();
            if proto == 3 {
                raw.call(&["HELLO", "3"]);
            }
            let nil: &[u8] = if proto == 3 { b"_\r\n" } else { b"$-1\r\n" };
            let big = "v".repeat(40_000);
            let keys: Vec<String> = (0..40)
                .map(|i| match i % 10 {
                    3 => format!("{}{i}", "m".repeat(150)),
                    7 => format!("{}{i}", "L".repeat(1100)),
                    _ => format!("p{proto}k{i}"),
                })
                .collect();
            let mut bytes = Vec::new();
            let mut want = Vec::new();
            for (i, k) in keys.iter().enumerate() {
                let value = match i % 4 {
                    0 => String::new(),
                    1 => format!("v{i}"),
                    2 if i == 2 => big.clone(),
                    _ => continue,
                };
                bytes.extend(encode_command(&["SET", k, &value]));
                want.extend_from_slice(b"+OK\r\n");
            }
            bytes.extend(encode_command(&["RPUSH", &keys[11], "x"]));
            want.extend_from_slice(b":1\r\n");
            let get = |i: usize, want: &mut Vec<u8>, second: bool| {
                let value = match i % 4 {
                    _ if i == 11 => {
                        want.extend_from_slice(
                            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
                        );
                        return;
                    }
                    0 if second && i % 8 == 0 => "new!".to_string(),
                    0 => String::new(),
                    1 => format!("v{i}"),
                    2 if i == 2 => big.clone(),
                    _ => return want.extend_from_slice(nil),
                };
                want.extend(format!("${}\r\n{value}\r\n", value.len()).into_bytes());
            };
            for (i, k) in keys.iter().enumerate() {
                bytes.extend(encode_command(&[if i % 2 == 0 { "GET" } else { "gEt" }, k]));
                get(i, &mut want, false);
            }
            // Writes among the GETs: each GET reads what the write before it left.
            for (i, k) in keys.iter().enumerate() {
                if i % 8 == 0 {
                    bytes.extend(encode_command(&["SET", k, "new!"]));
                    want.extend_from_slice(b"+OK\r\n");
                }
                bytes.extend(encode_command(&["GET", k]));
                get(i, &mut want, true);
            }
            raw.send(&bytes);
            raw.expect(&want);
        }
        let mut c = s.redis();
        let line = cmdstat_line(&mut c, "get");
        assert!(
            line.starts_with("cmdstat_get:calls=160,") && line.contains("failed_calls=4"),
            "cores {cores}: {line}"
        );
    }
}
