//! Observability: INFO sections and the numbers in them, SLOWLOG, CONFIG GET/SET/RESETSTAT.
//! Texts are Redis 7's; every test that does not say `baton_only` also passes against
//! redis-server (`BATON_ITEST_REFERENCE=redis-server`).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;

cores_tests!(
    info_sections,
    info_section_selection,
    keyspace_counters,
    commandstats,
    commandstats_rejections,
    ops_per_sec_under_load,
    cores_section,
    avg_ttl,
    slowlog_entries,
    slowlog_truncates_arguments,
    slowlog_length_and_reset,
    slowlog_threshold,
    slowlog_errors,
    config_set_round_trip,
    config_set_errors,
    config_resetstat,
    memcached_stats_follow_config,
);

/// `name:value` lines of an INFO reply.
fn fields(info: &str) -> HashMap<String, String> {
    info.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn info(c: &mut redis::Connection, section: &str) -> String {
    as_str(&q(c, &format!("INFO {section}")))
}

#[track_caller]
fn field(info: &str, name: &str) -> String {
    fields(info)
        .remove(name)
        .unwrap_or_else(|| panic!("no {name} in INFO:\n{info}"))
}

#[track_caller]
fn number(c: &mut redis::Connection, section: &str, name: &str) -> i64 {
    let text = info(c, section);
    field(&text, name)
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not an integer in:\n{text}"))
}

/// The `cmdstat_<name>` line's fields, or `None` when the command has no line.
fn cmdstat(c: &mut redis::Connection, name: &str) -> Option<HashMap<String, String>> {
    let text = info(c, "commandstats");
    let line = fields(&text).remove(&format!("cmdstat_{name}"))?;
    Some(
        line.split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

#[track_caller]
fn cmd_count(c: &mut redis::Connection, name: &str, what: &str) -> i64 {
    cmdstat(c, name).map_or(0, |m| m[what].parse().unwrap())
}

fn config_get(c: &mut redis::Connection, name: &str) -> String {
    let pairs = as_pairs(&q(c, &format!("CONFIG GET {name}")));
    assert_eq!(pairs.len(), 1, "CONFIG GET {name}: {pairs:?}");
    as_str(&pairs[0].1)
}

fn info_sections(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let text = info(&mut c, "everything");
    let sections: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# ")).collect();
    for want in [
        "Server",
        "Clients",
        "Memory",
        "Stats",
        "CPU",
        "Commandstats",
        "Keyspace",
    ] {
        assert!(sections.contains(&want), "no # {want} in {sections:?}");
    }
    let f = fields(&text);
    for name in [
        "redis_version",
        "tcp_port",
        "uptime_in_seconds",
        "connected_clients",
        "maxclients",
        "blocked_clients",
        "used_memory",
        "used_memory_human",
        "used_memory_rss",
        "maxmemory",
        "maxmemory_human",
        "maxmemory_policy",
        "total_connections_received",
        "total_commands_processed",
        "instantaneous_ops_per_sec",
        "rejected_connections",
        "expired_keys",
        "evicted_keys",
        "keyspace_hits",
        "keyspace_misses",
        "used_cpu_sys",
        "used_cpu_user",
        "used_cpu_sys_children",
        "used_cpu_user_children",
    ] {
        assert!(f.contains_key(name), "INFO lacks {name}:\n{text}");
    }
    assert_eq!(f["tcp_port"], s.port.to_string());
    assert_eq!(f["maxclients"], "10000");
    assert_eq!(f["blocked_clients"], "0");
    assert_eq!(f["connected_clients"], "1");
    for cpu in ["used_cpu_sys", "used_cpu_user"] {
        let (whole, micros) = f[cpu].split_once('.').expect("seconds.micros");
        assert!(whole.parse::<u64>().is_ok() && micros.len() == 6, "{cpu}");
    }
    // The CONFIG SET value shows in INFO.
    assert_eq!(q(&mut c, "CONFIG SET maxclients 321"), ok());
    assert_eq!(number(&mut c, "clients", "maxclients"), 321);
    assert_eq!(q(&mut c, "CONFIG SET maxmemory 2mb"), ok());
    let mem = info(&mut c, "memory");
    assert_eq!(field(&mem, "maxmemory"), "2097152");
    assert_eq!(field(&mem, "maxmemory_human"), "2.00M");
    if baton_only("Baton's own maxmemory policy names") {
        assert_eq!(field(&mem, "maxmemory_policy"), "allkeys-s3fifo");
    }
}

fn info_section_selection(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let titles = |c: &mut redis::Connection, args: &str| -> Vec<String> {
        as_str(&q(c, &format!("INFO {args}")))
            .lines()
            .filter_map(|l| l.strip_prefix("# ").map(str::to_string))
            .collect()
    };
    let default = titles(&mut c, "");
    assert!(default.contains(&"Stats".to_string()), "{default:?}");
    assert!(
        !default.contains(&"Commandstats".to_string()),
        "{default:?}"
    );
    assert_eq!(titles(&mut c, "default"), default);
    assert_eq!(titles(&mut c, "DeFaUlT"), default);
    let all = titles(&mut c, "all");
    assert!(all.contains(&"Commandstats".to_string()), "{all:?}");
    assert_eq!(titles(&mut c, "stats"), ["Stats"]);
    assert_eq!(titles(&mut c, "CPU"), ["CPU"]);
    assert_eq!(
        titles(&mut c, "cpu stats"),
        ["Stats", "CPU"],
        "output order"
    );
    assert_eq!(
        titles(&mut c, "commandstats Memory"),
        ["Memory", "Commandstats"]
    );
    assert_eq!(
        titles(&mut c, "default commandstats").len(),
        default.len() + 1
    );
    assert_eq!(as_str(&q(&mut c, "INFO nosuchsection")), "");
    // Sections are separated by one empty line.
    let two = as_str(&q(&mut c, "INFO clients stats"));
    assert!(two.starts_with("# Clients\r\n"), "{two}");
    assert!(two.contains("\r\n\r\n# Stats\r\n"), "{two}");
    assert!(two.ends_with("\r\n"), "{two}");
}

fn keyspace_counters(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_eq!(q(&mut c, "SET k v"), ok());
    let (hits, misses) = (
        number(&mut c, "stats", "keyspace_hits"),
        number(&mut c, "stats", "keyspace_misses"),
    );
    assert_eq!(q(&mut c, "GET k"), bulk("v"));
    assert_eq!(number(&mut c, "stats", "keyspace_hits"), hits + 1);
    assert_eq!(number(&mut c, "stats", "keyspace_misses"), misses);
    assert_eq!(q(&mut c, "GET nosuchkey"), nil());
    assert_eq!(number(&mut c, "stats", "keyspace_misses"), misses + 1);
    // MGET over keys on every core counts each key.
    let keys: Vec<String> = (0..20).map(|i| format!("miss:{i}")).collect();
    let mut mget = vec!["MGET".to_string()];
    mget.extend(keys);
    run(&mut c, &mget);
    assert_eq!(number(&mut c, "stats", "keyspace_misses"), misses + 21);

    let expired = number(&mut c, "stats", "expired_keys");
    assert_eq!(q(&mut c, "SET short v PX 1"), ok());
    assert!(eventually(Duration::from_secs(5), || {
        q(&mut c, "GET short") == nil()
    }));
    assert!(
        eventually(Duration::from_secs(5), || {
            number(&mut c, "stats", "expired_keys") > expired
        }),
        "expired_keys did not move"
    );
    assert_eq!(number(&mut c, "stats", "evicted_keys"), 0);
}

fn commandstats(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_eq!(
        cmdstat(&mut c, "set"),
        None,
        "no line before the first call"
    );
    for i in 0..3 {
        assert_eq!(q(&mut c, &format!("SET cs:{i} v")), ok());
    }
    let set = cmdstat(&mut c, "set").expect("cmdstat_set");
    assert_eq!(set["calls"], "3");
    assert_eq!(set["rejected_calls"], "0");
    assert_eq!(set["failed_calls"], "0");
    let usec: f64 = set["usec"].parse().unwrap();
    let per_call: f64 = set["usec_per_call"].parse().unwrap();
    assert!((per_call - usec / 3.0).abs() < 0.01, "{set:?}");
    assert_eq!(
        set["usec_per_call"].split_once('.').unwrap().1.len(),
        2,
        "two decimals: {set:?}"
    );

    // A command that runs but answers an error is a failed call.
    assert_eq!(q(&mut c, "SET notnum abc"), ok());
    assert!(matches!(q(&mut c, "INCR notnum"), Value::ServerError(_)));
    assert_eq!(cmd_count(&mut c, "incr", "calls"), 1);
    assert_eq!(cmd_count(&mut c, "incr", "failed_calls"), 1);

    // Multi-key commands over several cores are one call.
    let mut mset = vec!["MSET".to_string()];
    for i in 0..16 {
        mset.extend([format!("m:{i}"), "v".to_string()]);
    }
    assert_eq!(run(&mut c, &mset), ok());
    assert_eq!(cmd_count(&mut c, "mset", "calls"), 1);
    // Arguments the command itself refuses: it ran, and failed.
    assert_err(
        &mut c,
        "MSET a 1 b",
        "ERR wrong number of arguments for 'mset' command",
    );
    assert_eq!(cmd_count(&mut c, "mset", "calls"), 2);
    assert_eq!(cmd_count(&mut c, "mset", "failed_calls"), 1);
    assert_err(&mut c, "SCAN notacursor", "ERR invalid cursor");
    assert_eq!(cmd_count(&mut c, "scan", "failed_calls"), 1);
    assert_eq!(q(&mut c, "DBSIZE"), int(20));
    assert_eq!(cmd_count(&mut c, "dbsize", "calls"), 1);

    // Subcommands have their own lines, named as in Redis 7.
    let _ = q(&mut c, "CLIENT LIST");
    let _ = q(&mut c, "CONFIG GET maxclients");
    assert_eq!(cmd_count(&mut c, "client|list", "calls"), 1);
    assert_eq!(cmd_count(&mut c, "config|get", "calls"), 1);

    // INFO counts itself after answering, so each INFO sees the previous ones.
    let before = cmd_count(&mut c, "info", "calls");
    assert_eq!(cmd_count(&mut c, "info", "calls"), before + 1);
    let processed = number(&mut c, "stats", "total_commands_processed");
    let _ = q(&mut c, "PING");
    assert_eq!(
        number(&mut c, "stats", "total_commands_processed"),
        processed + 2,
        "the INFO and the PING"
    );
}

fn commandstats_rejections(cores: usize) {
    let s = Server::builder(cores).requirepass("pw").start();
    let mut admin = s.redis_auth("pw");
    let mut anon = s.raw();
    // Refused before running: wrong arity, or not authenticated.
    assert_err(
        &mut admin,
        "GET",
        "ERR wrong number of arguments for 'get' command",
    );
    assert_eq!(
        err_text(&anon.call(&["GET", "k"])),
        "NOAUTH Authentication required."
    );
    let get = cmdstat(&mut admin, "get").expect("cmdstat_get");
    assert_eq!(get["calls"], "0");
    assert_eq!(get["rejected_calls"], "2");
    assert_err(
        &mut admin,
        "CONFIG SET maxclients",
        "ERR wrong number of arguments for 'config|set' command",
    );
    assert_eq!(cmd_count(&mut admin, "config|set", "rejected_calls"), 1);
    // An unknown subcommand is no call of any command.
    assert_err(
        &mut admin,
        "CONFIG NOSUCH",
        "ERR unknown subcommand 'NOSUCH'. Try CONFIG HELP.",
    );
    assert_eq!(cmdstat(&mut admin, "config"), None);
    assert_err(
        &mut admin,
        "NOSUCHCOMMAND",
        "ERR unknown command 'NOSUCHCOMMAND', with args beginning with: ",
    );
    assert_eq!(cmdstat(&mut admin, "nosuchcommand"), None);
}

fn ops_per_sec_under_load(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (stop, mut raw) = (stop.clone(), s.raw());
        std::thread::spawn(move || {
            let batch: Vec<u8> = (0..50)
                .flat_map(|i| encode_command(&["SET", &format!("load:{i}"), "v"]))
                .collect();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                raw.send(&batch);
                for _ in 0..50 {
                    raw.read_line();
                }
            }
        })
    };
    let moved = eventually(Duration::from_secs(10), || {
        number(&mut c, "stats", "instantaneous_ops_per_sec") > 0
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.join().unwrap();
    assert!(moved, "instantaneous_ops_per_sec stayed 0 under load");
}

fn cores_section(cores: usize) {
    if !baton_only("INFO cores is Baton's") {
        return;
    }
    let s = Server::start(cores);
    let mut c = s.redis();
    for i in 0..50 {
        assert_eq!(q(&mut c, &format!("SET core:{i} v EX 100")), ok());
    }
    let text = info(&mut c, "everything");
    let lines: Vec<HashMap<String, u64>> = (0..cores)
        .map(|i| {
            let line = field(&text, &format!("core{i}"));
            line.split(',')
                .map(|kv| {
                    let (k, v) = kv.split_once('=').expect("k=v");
                    (k.to_string(), v.parse().expect("number"))
                })
                .collect()
        })
        .collect();
    assert!(
        !fields(&text).contains_key(&format!("core{cores}")),
        "{text}"
    );
    let sum = |k: &str| lines.iter().map(|l| l[k]).sum::<u64>();
    assert_eq!(sum("keys"), 50);
    assert_eq!(sum("expires"), 50);
    assert_eq!(
        sum("ops").to_string(),
        field(&text, "total_commands_processed")
    );
    assert_eq!(sum("clients"), 1);
    assert_eq!(as_int(&q(&mut c, "DBSIZE")) as u64, sum("keys"));
    for l in &lines {
        for k in ["used_memory", "maxmemory", "ops_per_sec"] {
            assert!(l.contains_key(k), "{l:?}");
        }
    }
    if cores > 1 {
        assert!(
            lines.iter().all(|l| l["keys"] > 0),
            "keys spread: {lines:?}"
        );
    }
}

fn avg_ttl(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_eq!(info(&mut c, "keyspace"), "# Keyspace\r\n");
    for i in 0..20 {
        assert_eq!(q(&mut c, &format!("SET ttl:{i} v EX 1000")), ok());
    }
    for i in 0..10 {
        assert_eq!(q(&mut c, &format!("SET plain:{i} v")), ok());
    }
    let mut last = String::new();
    // Redis estimates avg_ttl in its expiry cycle; Baton computes it.
    let positive = eventually(Duration::from_secs(10), || {
        last = info(&mut c, "keyspace");
        let db0 = field(&last, "db0");
        let avg: u64 = db0
            .rsplit_once("avg_ttl=")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        db0.starts_with("keys=30,expires=20,") && avg > 900_000 && avg <= 1_000_000
    });
    assert!(positive, "{last}");
}

/// The `addr=` of this connection, as CLIENT INFO shows it.
fn my_addr(c: &mut redis::Connection) -> String {
    let line = as_str(&q(c, "CLIENT INFO"));
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix("addr="))
        .unwrap()
        .to_string()
}

/// SLOWLOG GET's entries as (id, time, micros, args, addr, name).
type Entry = (i64, i64, i64, Vec<String>, String, String);

fn slowlog(c: &mut redis::Connection, count: &str) -> Vec<Entry> {
    as_array(&q(c, &format!("SLOWLOG GET {count}")))
        .iter()
        .map(|e| {
            let e = as_array(e);
            assert_eq!(e.len(), 6, "{e:?}");
            (
                as_int(&e[0]),
                as_int(&e[1]),
                as_int(&e[2]),
                as_array(&e[3])
                    .iter()
                    .map(|a| {
                        String::from_utf8_lossy(&redis::from_redis_value::<Vec<u8>>(a).unwrap())
                            .into_owned()
                    })
                    .collect(),
                as_str(&e[4]),
                as_str(&e[5]),
            )
        })
        .collect()
}

fn slowlog_entries(cores: usize) {
    let s = Server::builder(cores)
        .args(&["--slowlog-log-slower-than", "0"])
        .start();
    let mut c = s.redis();
    let addr = my_addr(&mut c);
    assert_eq!(q(&mut c, "SLOWLOG RESET"), ok());
    assert_eq!(q(&mut c, "CLIENT SETNAME logger"), ok());
    assert_eq!(q(&mut c, "SET key value"), ok());
    assert_eq!(q(&mut c, "get key"), bulk("value"));
    let all = slowlog(&mut c, "-1");
    let newest: Vec<Vec<String>> = all.iter().map(|e| e.3.clone()).collect();
    assert_eq!(
        newest,
        vec![
            vec!["get".to_string(), "key".to_string()],
            vec!["SET".into(), "key".into(), "value".into()],
            vec!["CLIENT".into(), "SETNAME".into(), "logger".into()],
            vec!["SLOWLOG".into(), "RESET".into()],
        ],
        "newest first, arguments as sent"
    );
    for w in all.windows(2) {
        assert!(w[0].0 > w[1].0, "ids decrease: {all:?}");
    }
    let now = unix_secs();
    for (_, time, micros, _, a, _) in &all {
        assert!((time - now).abs() <= 5, "timestamp {time} vs {now}");
        assert!(*micros >= 0);
        assert_eq!(a, &addr);
    }
    assert_eq!(all[0].5, "logger");
    assert_eq!(all[3].5, "", "named after the entry was logged");

    // Keys on every core (split commands) are logged once, arguments in request order.
    assert_eq!(q(&mut c, "SLOWLOG RESET"), ok());
    let keys: Vec<String> = (0..12).map(|i| format!("spread:{i}")).collect();
    let mut del = vec!["DEL".to_string()];
    del.extend(keys.iter().cloned());
    assert_eq!(run(&mut c, &del), int(0));
    assert_eq!(q(&mut c, "DBSIZE"), int(1));
    let got = slowlog(&mut c, "2");
    assert_eq!(got[0].3, ["DBSIZE"]);
    assert_eq!(got[1].3, del);

    // Passwords never reach the log.
    let _ = q(&mut c, "AUTH secret");
    let _ = q(&mut c, "AUTH someone secret");
    let got = slowlog(&mut c, "2");
    assert_eq!(got[0].3, ["AUTH", "(redacted)", "(redacted)"]);
    assert_eq!(got[1].3, ["AUTH", "(redacted)"]);
    let _ = run(&mut c, &["HELLO", "2", "AUTH", "default", "secret"]);
    assert_eq!(
        slowlog(&mut c, "1")[0].3,
        ["HELLO", "2", "AUTH", "(redacted)", "(redacted)"]
    );
}

fn slowlog_truncates_arguments(cores: usize) {
    let s = Server::builder(cores)
        .args(&["--slowlog-log-slower-than", "0"])
        .start();
    let mut c = s.redis();
    let long = "x".repeat(200);
    assert_eq!(run(&mut c, &["SET", "k", long.as_str()]), ok());
    let got = slowlog(&mut c, "1");
    assert_eq!(
        got[0].3,
        [
            "SET".to_string(),
            "k".to_string(),
            format!("{}... (72 more bytes)", "x".repeat(128))
        ]
    );
    let exact = "y".repeat(128);
    assert_eq!(run(&mut c, &["SET", "k", exact.as_str()]), ok());
    assert_eq!(slowlog(&mut c, "1")[0].3[2], exact);

    // More than 32 arguments: 31 kept, the 32nd counts the rest. MSET spans the cores.
    let mut mset = vec!["MSET".to_string()];
    for i in 0..20 {
        mset.extend([format!("k{i}"), format!("v{i}")]);
    }
    assert_eq!(run(&mut c, &mset), ok());
    let logged = &slowlog(&mut c, "1")[0].3;
    assert_eq!(logged.len(), 32);
    assert_eq!(logged[..31], mset[..31]);
    assert_eq!(logged[31], "... (10 more arguments)");
}

fn slowlog_length_and_reset(cores: usize) {
    let s = Server::builder(cores)
        .args(&["--slowlog-log-slower-than", "0", "--slowlog-max-len", "5"])
        .start();
    let mut c = s.redis();
    assert_eq!(q(&mut c, "SLOWLOG RESET"), ok());
    assert_eq!(
        q(&mut c, "SLOWLOG LEN"),
        int(1),
        "RESET is logged after it ran"
    );
    for i in 0..10 {
        assert_eq!(q(&mut c, &format!("SET len:{i} v")), ok());
    }
    assert_eq!(q(&mut c, "SLOWLOG LEN"), int(5));
    let all = slowlog(&mut c, "-1");
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].3, ["SLOWLOG", "LEN"]);
    assert_eq!(all[1].3, ["SET", "len:9", "v"]);
    assert_eq!(
        slowlog(&mut c, "").len(),
        5,
        "default count 10, capped by max-len"
    );
    assert_eq!(slowlog(&mut c, "2").len(), 2);
    assert!(slowlog(&mut c, "0").is_empty());

    assert_eq!(q(&mut c, "CONFIG SET slowlog-max-len 20"), ok());
    for i in 0..15 {
        assert_eq!(q(&mut c, &format!("GET len:{i}")), nil_or_value(i));
    }
    assert_eq!(slowlog(&mut c, "").len(), 10, "GET's default count");
    assert_eq!(q(&mut c, "SLOWLOG LEN"), int(20));
    assert_eq!(q(&mut c, "CONFIG SET slowlog-max-len 3"), ok());
    let _ = q(&mut c, "PING");
    assert_eq!(q(&mut c, "SLOWLOG LEN"), int(3));
    assert_eq!(slowlog(&mut c, "-1").len(), 3);

    // CONFIG RESETSTAT leaves the slow log alone; RESET empties it.
    assert_eq!(q(&mut c, "CONFIG RESETSTAT"), ok());
    assert_eq!(q(&mut c, "SLOWLOG LEN"), int(3));
    assert_eq!(q(&mut c, "CONFIG SET slowlog-log-slower-than -1"), ok());
    assert_eq!(q(&mut c, "SLOWLOG RESET"), ok());
    assert_eq!(q(&mut c, "SLOWLOG LEN"), int(0));
    assert_eq!(q(&mut c, "SLOWLOG GET"), arr(vec![]));
}

fn nil_or_value(i: usize) -> Value {
    if i < 10 {
        bulk("v")
    } else {
        nil()
    }
}

fn slowlog_threshold(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_eq!(config_get(&mut c, "slowlog-log-slower-than"), "10000");
    assert_eq!(config_get(&mut c, "slowlog-max-len"), "128");
    // Far above anything here, even on a loaded machine.
    assert_eq!(
        q(&mut c, "CONFIG SET slowlog-log-slower-than 5000000"),
        ok()
    );
    assert_eq!(q(&mut c, "SLOWLOG RESET"), ok());
    for _ in 0..20 {
        assert_eq!(q(&mut c, "PING"), simple("PONG"));
    }
    assert_eq!(q(&mut c, "SLOWLOG LEN"), int(0));
    assert_eq!(q(&mut c, "CONFIG SET slowlog-log-slower-than 0"), ok());
    let _ = q(&mut c, "PING");
    let got = slowlog(&mut c, "-1");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].3, ["PING"]);
    assert_eq!(got[1].3, ["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    assert_eq!(q(&mut c, "CONFIG SET slowlog-log-slower-than -1"), ok());
    assert_eq!(q(&mut c, "SLOWLOG RESET"), ok());
    let _ = q(&mut c, "PING");
    assert_eq!(q(&mut c, "SLOWLOG LEN"), int(0), "-1 turns the log off");
}

fn slowlog_errors(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    for bad in ["abc", "-2", "99999999999999999999", "1.5"] {
        assert_err(
            &mut c,
            &format!("SLOWLOG GET {bad}"),
            "ERR count should be greater than or equal to -1",
        );
    }
    assert_err(
        &mut c,
        "SLOWLOG GET 1 2",
        "ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP.",
    );
    assert_err(
        &mut c,
        "SLOWLOG FOO",
        "ERR unknown subcommand 'FOO'. Try SLOWLOG HELP.",
    );
    assert_err(
        &mut c,
        "SLOWLOG",
        "ERR wrong number of arguments for 'slowlog' command",
    );
    assert_err(
        &mut c,
        "SLOWLOG LEN x",
        "ERR wrong number of arguments for 'slowlog|len' command",
    );
    assert_err(
        &mut c,
        "SLOWLOG RESET x",
        "ERR wrong number of arguments for 'slowlog|reset' command",
    );
    let help = as_strings(&q(&mut c, "SLOWLOG HELP"));
    assert_eq!(
        help[0],
        "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    );
    assert!(help.contains(&"GET [<count>]".to_string()), "{help:?}");
    assert_eq!(help.last().unwrap(), "    Prints this help.");
}

fn config_set_round_trip(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    for (name, value, shown) in [
        ("maxclients", "500", "500"),
        ("timeout", "30", "30"),
        ("timeout", "0", "0"),
        ("slowlog-log-slower-than", "12345", "12345"),
        ("slowlog-log-slower-than", "-1", "-1"),
        ("slowlog-max-len", "77", "77"),
        ("maxmemory", "100mb", "104857600"),
        ("maxmemory", "1G", "1000000000"),
        ("MAXMEMORY", "10KB", "10240"),
        ("maxmemory", "0", "0"),
        ("maxmemory-policy", "allkeys-random", "allkeys-random"),
        ("maxmemory-policy", "VOLATILE-TTL", "volatile-ttl"),
        ("maxmemory-policy", "noeviction", "noeviction"),
    ] {
        assert_eq!(
            run(&mut c, &["CONFIG", "SET", name, value]),
            ok(),
            "{name} {value}"
        );
        assert_eq!(config_get(&mut c, &name.to_lowercase()), shown, "{name}");
    }
    assert_eq!(
        run(
            &mut c,
            &[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "normal 1mb 2mb 30"
            ]
        ),
        ok()
    );
    assert!(
        config_get(&mut c, "client-output-buffer-limit").starts_with("normal 1048576 2097152 30")
    );
    assert_eq!(
        run(
            &mut c,
            &[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "normal 0 0 0 pubsub 32mb 8mb 60"
            ]
        ),
        ok()
    );
    assert!(config_get(&mut c, "client-output-buffer-limit").starts_with("normal 0 0 0"));

    // Several pairs at once; all or nothing.
    assert_eq!(
        q(
            &mut c,
            "CONFIG SET maxclients 600 timeout 7 slowlog-max-len 9"
        ),
        ok()
    );
    let got = as_pairs(&q(&mut c, "CONFIG GET maxclients timeout slowlog-max-len"));
    let got: HashMap<String, String> = got.into_iter().map(|(k, v)| (k, as_str(&v))).collect();
    assert_eq!(got["maxclients"], "600");
    assert_eq!(got["timeout"], "7");
    assert_eq!(got["slowlog-max-len"], "9");
    assert!(matches!(
        q(&mut c, "CONFIG SET maxclients 700 timeout abc"),
        Value::ServerError(_)
    ));
    assert_eq!(config_get(&mut c, "maxclients"), "600", "nothing applied");
    assert_eq!(config_get(&mut c, "timeout"), "7");

    // Globs and several patterns, each parameter once.
    let slow: Vec<String> = as_pairs(&q(&mut c, "CONFIG GET slowlog-* SLOWLOG-MAX-LEN"))
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut sorted = slow.clone();
    sorted.sort();
    assert_eq!(sorted, ["slowlog-log-slower-than", "slowlog-max-len"]);
    // Values Redis accepts without persisting anything here.
    assert_eq!(run(&mut c, &["CONFIG", "SET", "save", ""]), ok());
    assert_eq!(q(&mut c, "CONFIG SET appendonly no"), ok());
    if baton_only("Baton has no append-only file") {
        assert_err(
            &mut c,
            "CONFIG SET appendonly yes",
            "ERR CONFIG SET failed (possibly related to argument 'appendonly') - Baton keeps no append-only file",
        );
    }
    let help = as_strings(&q(&mut c, "CONFIG HELP"));
    assert_eq!(
        help[0],
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    );
    assert!(help.contains(&"RESETSTAT".to_string()), "{help:?}");
}

fn config_set_errors(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let failed = |name: &str, why: &str| {
        format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}")
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "CONFIG SET foo bar",
            "ERR Unknown option or number of arguments for CONFIG SET - 'foo'".into(),
        ),
        (
            "CONFIG SET maxclients abc",
            failed("maxclients", "argument couldn't be parsed into an integer"),
        ),
        (
            "CONFIG SET MAXCLIENTS 05",
            failed("maxclients", "argument couldn't be parsed into an integer"),
        ),
        (
            "CONFIG SET maxclients 0",
            failed(
                "maxclients",
                "argument must be between 1 and 4294967295 inclusive",
            ),
        ),
        (
            "CONFIG SET timeout -1",
            failed(
                "timeout",
                "argument must be between 0 and 2147483647 inclusive",
            ),
        ),
        (
            "CONFIG SET slowlog-log-slower-than -5",
            failed(
                "slowlog-log-slower-than",
                "argument must be between -1 and 9223372036854775807 inclusive",
            ),
        ),
        (
            "CONFIG SET slowlog-max-len -1",
            failed(
                "slowlog-max-len",
                "argument must be between 0 and 9223372036854775807 inclusive",
            ),
        ),
        (
            "CONFIG SET maxmemory 100xb",
            failed("maxmemory", "argument must be a memory value"),
        ),
        (
            "CONFIG SET maxmemory -1",
            failed("maxmemory", "argument must be a memory value"),
        ),
        (
            "CONFIG SET maxmemory 1.5gb",
            failed("maxmemory", "argument must be a memory value"),
        ),
        (
            "CONFIG SET appendonly maybe",
            failed("appendonly", "argument must be 'yes' or 'no'"),
        ),
        (
            "CONFIG SET databases 4",
            failed("databases", "can't set immutable config"),
        ),
        (
            "CONFIG SET maxclients 10 MaxClients 20",
            failed("MaxClients", "duplicate parameter"),
        ),
        (
            "CONFIG SET maxclients 10 timeout",
            "ERR syntax error".into(),
        ),
        (
            "CONFIG SET maxclients abc foo 1",
            "ERR Unknown option or number of arguments for CONFIG SET - 'foo'".into(),
        ),
        (
            "CONFIG SET maxclients",
            "ERR wrong number of arguments for 'config|set' command".into(),
        ),
        (
            "CONFIG RESETSTAT now",
            "ERR wrong number of arguments for 'config|resetstat' command".into(),
        ),
    ];
    for (line, text) in &cases {
        assert_err(&mut c, line, text);
    }
    let cobl = |v: &str| ["CONFIG", "SET", "client-output-buffer-limit", v].map(String::from);
    for (value, why) in [
        (
            "normal 1 2",
            "Wrong number of arguments in buffer limit configuration.",
        ),
        (
            "foo 1 2 3",
            "Invalid client class specified in buffer limit configuration.",
        ),
        (
            "normal 1x 2 3",
            "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
        ),
    ] {
        assert_eq!(
            err_text(&run(&mut c, &cobl(value))),
            failed("client-output-buffer-limit", why),
            "{value}"
        );
    }
    let policy = err_text(&q(&mut c, "CONFIG SET maxmemory-policy lru"));
    assert!(
        policy.starts_with(&failed(
            "maxmemory-policy",
            "argument(s) must be one of the following: "
        )),
        "{policy}"
    );
    if baton_only("Baton's policy names") {
        assert_eq!(
            policy,
            failed(
                "maxmemory-policy",
                "argument(s) must be one of the following: noeviction, allkeys-s3fifo, volatile-s3fifo, allkeys-random, volatile-random, volatile-ttl"
            )
        );
        // No input makes the server panic: binary names and values.
        let weird: &[&[u8]] = &[b"\xff\x00", b"", b"\r\n"];
        for name in weird {
            for value in weird {
                let v = run(&mut c, &[b"CONFIG".as_slice(), b"SET", name, value]);
                assert!(matches!(v, Value::ServerError(_)), "{v:?}");
            }
        }
    }
    assert_eq!(config_get(&mut c, "maxclients"), "10000", "nothing changed");
    assert_eq!(q(&mut c, "PING"), simple("PONG"));
}

fn config_resetstat(cores: usize) {
    let s = Server::builder(cores)
        .args(&["--slowlog-log-slower-than", "0"])
        .start();
    let mut c = s.redis();
    let mut other = s.redis();
    assert_eq!(q(&mut c, "SET k v"), ok());
    assert_eq!(q(&mut c, "GET k"), bulk("v"));
    assert_eq!(q(&mut c, "GET nope"), nil());
    assert_eq!(q(&mut c, "SET gone v PX 1"), ok());
    assert!(eventually(Duration::from_secs(5), || {
        q(&mut c, "GET gone") == nil()
    }));
    assert_err(
        &mut c,
        "GET",
        "ERR wrong number of arguments for 'get' command",
    );
    assert_eq!(q(&mut other, "PING"), simple("PONG"));
    let before = info(&mut c, "stats");
    for name in [
        "keyspace_hits",
        "keyspace_misses",
        "total_commands_processed",
    ] {
        assert_ne!(field(&before, name), "0", "{name}");
    }
    assert_eq!(q(&mut c, "CONFIG RESETSTAT"), ok());
    let after = info(&mut c, "stats");
    for (name, want) in [
        ("keyspace_hits", "0"),
        ("keyspace_misses", "0"),
        ("expired_keys", "0"),
        ("evicted_keys", "0"),
        ("rejected_connections", "0"),
        ("total_connections_received", "0"),
        ("total_commands_processed", "1"),
    ] {
        assert_eq!(field(&after, name), want, "{name}:\n{after}");
    }
    let stats = info(&mut c, "commandstats");
    let lines: Vec<&str> = stats.lines().skip(1).collect();
    assert_eq!(lines.len(), 2, "{stats}");
    assert!(
        stats.contains("\r\ncmdstat_config|resetstat:calls=1,"),
        "{stats}"
    );
    assert!(stats.contains("\r\ncmdstat_info:calls=1,"), "{stats}");
    assert!(as_int(&q(&mut c, "SLOWLOG LEN")) > 5, "the slow log stays");
    // Counting resumes.
    assert_eq!(q(&mut c, "GET k"), bulk("v"));
    assert_eq!(number(&mut c, "stats", "keyspace_hits"), 1);
    let _ = s.redis();
    assert_eq!(number(&mut c, "stats", "total_connections_received"), 1);
}

/// memcached's `stats` as name -> value.
fn mc_stats(s: &Server) -> HashMap<String, String> {
    let mut raw = s.memcache_raw();
    raw.send(b"stats\r\n");
    let mut out = HashMap::new();
    loop {
        let line = raw.read_line();
        let line = line.trim_end();
        if line == "END" || line.is_empty() {
            return out;
        }
        let mut parts = line.splitn(3, ' ');
        assert_eq!(parts.next(), Some("STAT"), "{line}");
        out.insert(
            parts.next().unwrap().to_string(),
            parts.next().unwrap_or("").to_string(),
        );
    }
}

fn memcached_stats_follow_config(cores: usize) {
    if !baton_only("memcached stats next to the Redis port") || memcached_reference() {
        return;
    }
    let s = Server::start_with_memcache(cores);
    let mut c = s.redis();
    let st = mc_stats(&s);
    assert_eq!(st["max_connections"], "10000");
    assert_eq!(st["limit_maxbytes"], "0");
    assert_eq!(st["evictions"], "0");
    assert_eq!(q(&mut c, "CONFIG SET maxclients 77 maxmemory 64mb"), ok());
    let st = mc_stats(&s);
    assert_eq!(st["max_connections"], "77");
    assert_eq!(st["limit_maxbytes"], (64u64 << 20).to_string());
    assert_eq!(st["threads"], cores.to_string());
}
