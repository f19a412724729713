//! Connection and server commands: PING, ECHO, QUIT, HELLO, AUTH, SELECT, COMMAND, CLIENT,
//! CONFIG, INFO, TIME, DBSIZE, FLUSHDB/FLUSHALL, unknown commands and arity errors.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;

cores_tests!(
    ping_echo,
    quit_closes_after_reply,
    hello,
    auth_without_requirepass,
    select,
    command_introspection,
    client_commands,
    config_get,
    info_sections,
    time,
    dbsize_and_flush,
    unknown_command_and_arity,
    shutdown_stops_the_server,
);

fn ping_echo(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "PING", simple("PONG"));
    assert_reply(&mut c, "ping", simple("PONG"));
    assert_reply(&mut c, "PING hello", bulk("hello"));
    assert_eq!(run(&mut c, &["PING", "a b\r\nc"]), bulk("a b\r\nc"));
    assert_err(
        &mut c,
        "PING a b",
        "ERR wrong number of arguments for 'ping' command",
    );
    assert_reply(&mut c, "ECHO hi", bulk("hi"));
    assert_eq!(run(&mut c, &["ECHO", ""]), bulk(""));
    let binary: &[u8] = b"\x00\xff\r\n\x01";
    assert_eq!(run(&mut c, &[b"ECHO".as_slice(), binary]), bulk(binary));
    assert_err(
        &mut c,
        "ECHO",
        "ERR wrong number of arguments for 'echo' command",
    );
    assert_err(
        &mut c,
        "ECHO a b",
        "ERR wrong number of arguments for 'echo' command",
    );
}

fn quit_closes_after_reply(cores: usize) {
    let s = Server::start(cores);
    let mut r = s.raw();
    r.send(b"*1\r\n$4\r\nQUIT\r\n");
    r.expect(b"+OK\r\n");
    r.expect_closed();

    // Commands pipelined after QUIT are not executed.
    let mut r = s.raw();
    let mut batch = encode_command(&["SET", "after-quit", "1"]);
    batch.extend(encode_command(&["QUIT"]));
    batch.extend(encode_command(&["SET", "after-quit", "2"]));
    r.send(&batch);
    r.expect(b"+OK\r\n+OK\r\n");
    r.expect_closed();
    let mut c = s.redis();
    assert_reply(&mut c, "GET after-quit", bulk("1"));
}

fn hello(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let id = as_int(&q(&mut c, "CLIENT ID"));

    let h = q(&mut c, "HELLO 2");
    assert_eq!(field(&h, "proto"), int(2), "{h:?}");
    assert_eq!(field(&h, "id"), int(id), "{h:?}");
    assert!(!as_str(&field(&h, "server")).is_empty(), "{h:?}");
    assert!(!as_str(&field(&h, "version")).is_empty(), "{h:?}");
    assert_eq!(field(&h, "role"), bulk("master"), "{h:?}");
    assert_eq!(field(&h, "mode"), bulk("standalone"), "{h:?}");
    assert_eq!(field(&h, "modules"), arr(vec![]), "{h:?}");
    // HELLO without a version answers in the current protocol.
    assert_eq!(field(&q(&mut c, "HELLO"), "proto"), int(2));

    assert_err(&mut c, "HELLO 4", "NOPROTO unsupported protocol version");
    assert_err(&mut c, "HELLO 1", "NOPROTO unsupported protocol version");
    assert_err(
        &mut c,
        "HELLO abc",
        "ERR Protocol version is not an integer or out of range",
    );
    assert_err(
        &mut c,
        "HELLO 2 FOO",
        "ERR Syntax error in HELLO option 'FOO'",
    );
    assert_err(
        &mut c,
        "HELLO 2 AUTH default",
        "ERR Syntax error in HELLO option 'AUTH'",
    );
    assert_eq!(
        err_text(&run(&mut c, &["HELLO", "2", "SETNAME", "a\nb"])),
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
    // A failed HELLO leaves the connection in RESP2 and working.
    assert_reply(&mut c, "GET missing", nil());

    // SETNAME sets the connection name; without requirepass any AUTH pair is accepted
    // (the default user has no password), as Redis does.
    let h = q(&mut c, "HELLO 2 AUTH default anything SETNAME hello-name");
    assert_eq!(field(&h, "proto"), int(2), "{h:?}");
    assert_reply(&mut c, "CLIENT GETNAME", bulk("hello-name"));

    // HELLO 3 switches this connection to RESP3 (checked byte by byte in protocol.rs);
    // HELLO 2 switches back.
    let mut r = s.raw();
    let h = r.call(&["HELLO", "3", "SETNAME", "r3"]);
    assert!(matches!(h, Value::Map(_)), "HELLO 3 answers a map: {h:?}");
    assert_eq!(field(&h, "proto"), int(3));
    assert_eq!(r.call(&["CLIENT", "GETNAME"]), bulk("r3"));
    r.send_command(&["GET", "missing"]);
    r.expect(b"_\r\n");
    let h = r.call(&["HELLO", "2"]);
    assert!(
        matches!(h, Value::Array(_)),
        "HELLO 2 answers an array: {h:?}"
    );
    r.send_command(&["GET", "missing"]);
    r.expect(b"$-1\r\n");
}

fn auth_without_requirepass(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_err(
        &mut c,
        "AUTH secret",
        "ERR AUTH <password> called without any password configured for the default user. \
         Are you sure your configuration is correct?",
    );
    assert_reply(&mut c, "AUTH default secret", ok());
    assert_err(
        &mut c,
        "AUTH",
        "ERR wrong number of arguments for 'auth' command",
    );
    assert_err(&mut c, "AUTH a b c", "ERR syntax error");
    assert_reply(&mut c, "PING", simple("PONG"));
}

#[test]
fn auth_with_requirepass() {
    for cores in [1, 2] {
        let s = Server::builder(cores).requirepass("s3cret").start();
        let noauth = "NOAUTH Authentication required.";
        let wrongpass = "WRONGPASS invalid username-password pair or user is disabled.";

        // A client that authenticates in its handshake works at once.
        let mut authed = s.redis_auth("s3cret");
        assert_reply(&mut authed, "SET k v", ok());

        let mut c = s.redis();
        assert_err(&mut c, "GET k", noauth);
        assert_err(&mut c, "SET k v2", noauth);
        assert_err(&mut c, "PING", noauth);
        assert_err(&mut c, "DBSIZE", noauth);
        assert_err(&mut c, "CLIENT ID", noauth);
        // As in Redis, the command lookup and the arity check come before the auth check.
        assert_err(
            &mut c,
            "NOSUCHCMD",
            "ERR unknown command 'NOSUCHCMD', with args beginning with: ",
        );
        assert_err(
            &mut c,
            "GET",
            "ERR wrong number of arguments for 'get' command",
        );
        assert_err(&mut c, "AUTH wrong", wrongpass);
        assert_err(&mut c, "AUTH default wrong", wrongpass);
        assert_err(&mut c, "AUTH nosuchuser s3cret", wrongpass);
        assert_err(&mut c, "HELLO 3 AUTH default wrong", wrongpass);
        // Redis 7.2+ wording, or 7.0's (without "<proto>").
        let hello = err_text(&q(&mut c, "HELLO 3"));
        let want = "NOAUTH HELLO must be called with the client already authenticated, \
                    otherwise the HELLO <proto> AUTH <user> <pass> option can be used to \
                    authenticate the client and select the RESP protocol version at the same time";
        assert!(
            hello == want || hello == want.replace("<proto> ", ""),
            "HELLO 3 unauthenticated: {hello:?}"
        );
        assert_err(&mut c, "GET k", noauth);
        assert_reply(&mut c, "AUTH s3cret", ok());
        assert_reply(&mut c, "GET k", bulk("v"));
        assert_reply(&mut c, "PING", simple("PONG"));
        // A wrong password later does not log an authenticated connection out.
        assert_err(&mut c, "AUTH wrong", wrongpass);
        assert_reply(&mut c, "GET k", bulk("v"));

        let mut c2 = s.redis();
        assert_reply(&mut c2, "AUTH default s3cret", ok());
        assert_reply(&mut c2, "GET k", bulk("v"));

        let mut c3 = s.redis();
        let h = q(&mut c3, "HELLO 2 AUTH default s3cret SETNAME named");
        assert_eq!(field(&h, "proto"), int(2), "{h:?}");
        assert_reply(&mut c3, "CLIENT GETNAME", bulk("named"));
        assert_reply(&mut c3, "GET k", bulk("v"));

        // Before authentication the parser's limits are the tight ones Redis applies.
        let mut r = s.raw();
        r.send(b"*11\r\n");
        r.expect(b"-ERR Protocol error: unauthenticated multibulk length\r\n");
        r.expect_closed();
        let mut r = s.raw();
        r.send(b"*2\r\n$3\r\nGET\r\n$16385\r\n");
        r.expect(b"-ERR Protocol error: unauthenticated bulk length\r\n");
        r.expect_closed();
        // QUIT needs no authentication.
        let mut r = s.raw();
        r.send(b"*1\r\n$4\r\nQUIT\r\n");
        r.expect(b"+OK\r\n");
        r.expect_closed();
    }
}

fn select(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "SELECT 0", ok());
    assert_err(&mut c, "SELECT 1", "ERR DB index is out of range");
    assert_err(&mut c, "SELECT -1", "ERR DB index is out of range");
    assert_err(
        &mut c,
        "SELECT abc",
        "ERR value is not an integer or out of range",
    );
    assert_err(
        &mut c,
        "SELECT",
        "ERR wrong number of arguments for 'select' command",
    );
    assert_reply(&mut c, "SET k v", ok());
    assert_reply(&mut c, "GET k", bulk("v"));
}

fn command_introspection(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let count = as_int(&q(&mut c, "COMMAND COUNT"));
    // COMMAND LIST also names subcommands (`config|get`); COUNT counts commands only.
    let listed = as_strings(&q(&mut c, "COMMAND LIST"));
    let names: Vec<String> = listed.into_iter().filter(|n| !n.contains('|')).collect();
    assert_eq!(names.len() as i64, count);
    let unique: HashSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "duplicates in COMMAND LIST");
    for want in [
        "get",
        "set",
        "ping",
        "hello",
        "auth",
        "scan",
        "lcs",
        "mget",
        "mset",
        "del",
        "expire",
        "client",
        "config",
        "info",
        "command",
        "incrbyfloat",
        "getex",
        "copy",
    ] {
        assert!(
            unique.contains(&want.to_string()),
            "COMMAND LIST lacks {want}"
        );
    }
    for n in &names {
        assert_eq!(n, &n.to_lowercase(), "COMMAND LIST names are lower case");
    }

    let all = as_array(&q(&mut c, "COMMAND"));
    assert_eq!(all.len() as i64, count);
    let mut from_info: Vec<String> = all.iter().map(|e| as_str(&as_array(e)[0])).collect();
    let mut sorted = names.clone();
    from_info.sort();
    sorted.sort();
    assert_eq!(from_info, sorted, "COMMAND and COMMAND LIST disagree");

    let info = as_array(&q(&mut c, "COMMAND INFO get SET nosuchcmd"));
    assert_eq!(info.len(), 3);
    let get = as_array(&info[0]);
    assert_eq!(get[0], bulk("get"));
    assert_eq!(get[1], int(2));
    let flags = as_strings(&get[2]);
    assert!(flags.contains(&"readonly".to_string()), "{flags:?}");
    assert!(flags.contains(&"fast".to_string()), "{flags:?}");
    assert_eq!(&get[3..6], &[int(1), int(1), int(1)]);
    let set = as_array(&info[1]);
    assert_eq!(set[0], bulk("set"));
    assert_eq!(set[1], int(-3));
    let flags = as_strings(&set[2]);
    assert!(flags.contains(&"write".to_string()), "{flags:?}");
    assert!(flags.contains(&"denyoom".to_string()), "{flags:?}");
    assert_eq!(info[2], nil());
    let mset = as_array(&as_array(&q(&mut c, "COMMAND INFO mset"))[0]);
    assert_eq!(mset[1], int(-3));
    assert_eq!(&mset[3..6], &[int(1), int(-1), int(2)]);

    let docs = as_pairs(&q(&mut c, "COMMAND DOCS get"));
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].0, "get");
    let get_docs = &docs[0].1;
    assert!(!as_str(&field(get_docs, "summary")).is_empty());
    assert_eq!(field(get_docs, "since"), bulk("1.0.0"));
    assert_eq!(field(get_docs, "group"), bulk("string"));
    let all_docs = as_pairs(&q(&mut c, "COMMAND DOCS"));
    assert_eq!(all_docs.len() as i64, count);
    assert_eq!(q(&mut c, "COMMAND DOCS nosuchcmd"), arr(vec![]));

    assert_err(
        &mut c,
        "COMMAND FOO",
        "ERR unknown subcommand 'FOO'. Try COMMAND HELP.",
    );
    assert_err(
        &mut c,
        "COMMAND COUNT x",
        "ERR wrong number of arguments for 'command|count' command",
    );
}

fn client_commands(cores: usize) {
    let s = Server::start(cores);
    // Several connections, so that with two cores both hold some.
    let mut conns: Vec<redis::Connection> = (0..8).map(|_| s.redis()).collect();
    let ids: Vec<i64> = conns
        .iter_mut()
        .map(|c| as_int(&q(c, "CLIENT ID")))
        .collect();
    let unique: HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "CLIENT ID repeats: {ids:?}");
    assert!(ids.iter().all(|&i| i > 0), "{ids:?}");

    let c = &mut conns[0];
    assert_reply(c, "CLIENT GETNAME", nil());
    assert_reply(c, "CLIENT SETNAME first", ok());
    assert_reply(c, "CLIENT GETNAME", bulk("first"));
    assert_eq!(
        err_text(&run(c, &["CLIENT", "SETNAME", "a b"])),
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
    assert_reply(c, "CLIENT GETNAME", bulk("first"));
    // An empty name clears it.
    assert_eq!(run(c, &["CLIENT", "SETNAME", ""]), ok());
    assert_reply(c, "CLIENT GETNAME", nil());
    assert_reply(c, "CLIENT SETNAME first", ok());

    let info = as_str(&q(c, "CLIENT INFO"));
    assert!(info.ends_with('\n'), "{info:?}");
    assert_eq!(info.trim_end().lines().count(), 1, "{info:?}");
    assert!(info.starts_with(&format!("id={} ", ids[0])), "{info:?}");
    assert!(info.contains(" addr=127.0.0.1:"), "{info:?}");
    assert!(info.contains(" name=first "), "{info:?}");
    assert!(info.contains(" db=0 "), "{info:?}");
    assert!(info.contains(" cmd=client|info "), "{info:?}");

    if baton_only("CLIENT SETINFO (Redis 7.2)") {
        // The redis crate sends CLIENT SETINFO LIB-NAME in its handshake.
        assert!(info.contains(" lib-name=redis-rs "), "{info:?}");
        assert_reply(c, "CLIENT SETINFO LIB-NAME mylib", ok());
        assert_reply(c, "CLIENT SETINFO lib-ver 1.2.3", ok());
        let info = as_str(&q(c, "CLIENT INFO"));
        assert!(info.contains(" lib-name=mylib "), "{info:?}");
        assert!(info.contains(" lib-ver=1.2.3"), "{info:?}");
        assert_err(
            c,
            "CLIENT SETINFO badattr x",
            "ERR Unrecognized option 'badattr'",
        );
        assert_err(
            c,
            "CLIENT SETINFO LIB-NAME",
            "ERR wrong number of arguments for 'client|setinfo' command",
        );
    }

    // CLIENT LIST shows every connection of the server, whichever core holds it.
    let list = as_str(&q(&mut conns[1], "CLIENT LIST"));
    let listed: Vec<&str> = list.lines().collect();
    assert_eq!(listed.len(), conns.len(), "{list}");
    for id in &ids {
        assert!(
            listed.iter().any(|l| l.starts_with(&format!("id={id} "))),
            "id {id} missing from CLIENT LIST:\n{list}"
        );
    }
    assert!(
        listed
            .iter()
            .any(|l| l.starts_with(&format!("id={} ", ids[0])) && l.contains(" name=first ")),
        "{list}"
    );
    let one = as_str(&run(
        &mut conns[1],
        &["CLIENT", "LIST", "ID", &ids[2].to_string()],
    ));
    assert_eq!(one.lines().count(), 1, "{one}");
    assert!(one.starts_with(&format!("id={} ", ids[2])), "{one}");

    let c = &mut conns[2];
    assert_err(
        c,
        "CLIENT",
        "ERR wrong number of arguments for 'client' command",
    );
    assert_err(
        c,
        "CLIENT SETNAME",
        "ERR wrong number of arguments for 'client|setname' command",
    );
    assert_err(
        c,
        "CLIENT FOO",
        "ERR unknown subcommand 'FOO'. Try CLIENT HELP.",
    );
}

fn config_get(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_eq!(
        as_pairs(&q(&mut c, "CONFIG GET save")),
        vec![("save".to_string(), bulk(""))]
    );
    assert_eq!(
        as_pairs(&q(&mut c, "CONFIG GET appendonly")),
        vec![("appendonly".to_string(), bulk("no"))]
    );
    assert_eq!(
        as_pairs(&q(&mut c, "CONFIG GET databases")),
        vec![("databases".to_string(), bulk("1"))]
    );
    assert_eq!(
        as_pairs(&q(&mut c, "CONFIG GET port")),
        vec![("port".to_string(), bulk(s.port.to_string()))]
    );
    let mm = as_pairs(&q(&mut c, "CONFIG GET maxmemory"));
    assert_eq!(mm.len(), 1, "{mm:?}");
    assert_eq!(mm[0].0, "maxmemory");
    as_str(&mm[0].1)
        .parse::<u64>()
        .expect("maxmemory is a number");
    let policy = as_pairs(&q(&mut c, "CONFIG GET maxmemory-policy"));
    assert_eq!(policy.len(), 1, "{policy:?}");
    assert!(!as_str(&policy[0].1).is_empty());
    // Names are case-insensitive.
    let upper = as_pairs(&q(&mut c, "CONFIG GET APPENDONLY"));
    assert_eq!(upper.len(), 1, "{upper:?}");
    assert_eq!(upper[0].0.to_lowercase(), "appendonly");
    assert_eq!(upper[0].1, bulk("no"));

    // Glob patterns.
    let max = as_pairs(&q(&mut c, "CONFIG GET max*"));
    let names: Vec<&str> = max.iter().map(|(k, _)| k.as_str()).collect();
    assert!(names.contains(&"maxmemory"), "{names:?}");
    assert!(names.contains(&"maxmemory-policy"), "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("max")), "{names:?}");
    let unique: HashSet<&&str> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    let q_glob = as_pairs(&q(&mut c, "CONFIG GET p?rt"));
    assert_eq!(q_glob, vec![("port".to_string(), bulk(s.port.to_string()))]);
    let all = as_pairs(&q(&mut c, "CONFIG GET *"));
    for want in ["save", "appendonly", "maxmemory", "databases", "port"] {
        assert!(
            all.iter().any(|(k, _)| k == want),
            "CONFIG GET * lacks {want}"
        );
    }

    // Several parameters at once (Redis 7).
    let two = as_pairs(&q(&mut c, "CONFIG GET appendonly databases"));
    assert_eq!(two.len(), 2, "{two:?}");
    assert_eq!(q(&mut c, "CONFIG GET nosuchparam"), arr(vec![]));
    assert_err(
        &mut c,
        "CONFIG GET",
        "ERR wrong number of arguments for 'config|get' command",
    );
    assert_err(
        &mut c,
        "CONFIG FOO",
        "ERR unknown subcommand 'FOO'. Try CONFIG HELP.",
    );
}

fn info_sections(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let mut c2 = s.redis();
    let info = as_str(&q(&mut c, "INFO"));
    for want in [
        "# Server\r\n",
        "\r\nredis_version:",
        "\r\n# Clients\r\n",
        "\r\nconnected_clients:",
        "\r\n# Stats\r\n",
        "\r\ntotal_commands_processed:",
        "\r\n# Keyspace\r\n",
    ] {
        assert!(info.contains(want), "INFO lacks {want:?}:\n{info}");
    }
    assert_eq!(info_field(&info, "connected_clients"), "2", "{info}");
    assert_eq!(info_field(&info, "tcp_port"), s.port.to_string(), "{info}");

    let server = as_str(&q(&mut c, "INFO server"));
    assert!(server.starts_with("# Server\r\n"), "{server}");
    assert!(!server.contains("# Clients"), "{server}");
    let two = as_str(&q(&mut c, "INFO server clients"));
    assert!(
        two.contains("# Server\r\n") && two.contains("# Clients\r\n"),
        "{two}"
    );
    assert!(!two.contains("# Stats"), "{two}");
    assert_eq!(as_str(&q(&mut c, "INFO keyspace")), "# Keyspace\r\n");
    assert_eq!(as_str(&q(&mut c, "INFO KEYSPACE")), "# Keyspace\r\n");

    // Keys on every core are counted, with their expiry counts.
    for i in 0..40 {
        assert_eq!(q(&mut c, &format!("SET info:{i} v")), ok());
    }
    for i in 0..10 {
        assert_eq!(q(&mut c, &format!("EXPIRE info:{i} 1000")), int(1));
    }
    let ks = as_str(&q(&mut c, "INFO keyspace"));
    assert!(
        ks.starts_with("# Keyspace\r\ndb0:keys=40,expires=10,avg_ttl="),
        "{ks}"
    );
    assert!(ks.ends_with("\r\n"), "{ks}");

    let before = stat(&mut c, "total_commands_processed");
    for _ in 0..5 {
        q(&mut c2, "PING");
    }
    let after = stat(&mut c, "total_commands_processed");
    assert!(after >= before + 6, "{before} -> {after}");

    drop(c2);
    assert!(
        eventually(Duration::from_secs(5), || {
            info_field(&as_str(&q(&mut c, "INFO clients")), "connected_clients") == "1"
        }),
        "connected_clients did not drop to 1"
    );
}

fn info_field(info: &str, name: &str) -> String {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in INFO:\n{info}"))
        .to_string()
}

fn stat(c: &mut redis::Connection, name: &str) -> i64 {
    info_field(&as_str(&q(c, "INFO stats")), name)
        .parse()
        .unwrap()
}

fn time(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    let t = as_strings(&q(&mut c, "TIME"));
    assert_eq!(t.len(), 2);
    let secs: i64 = t[0].parse().unwrap();
    let micros: i64 = t[1].parse().unwrap();
    assert!(
        (secs - unix_secs()).abs() <= 5,
        "TIME {secs} vs {}",
        unix_secs()
    );
    assert!((0..1_000_000).contains(&micros), "{micros}");
    assert_err(
        &mut c,
        "TIME x",
        "ERR wrong number of arguments for 'time' command",
    );
}

fn dbsize_and_flush(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_reply(&mut c, "DBSIZE", int(0));
    for i in 0..50 {
        assert_eq!(q(&mut c, &format!("SET db:{i} {i}")), ok());
    }
    assert_reply(&mut c, "DBSIZE", int(50));
    assert_reply(&mut c, "FLUSHDB", ok());
    assert_reply(&mut c, "DBSIZE", int(0));
    assert_reply(&mut c, "GET db:7", nil());
    for i in 0..20 {
        assert_eq!(q(&mut c, &format!("SET db:{i} {i}")), ok());
    }
    assert_reply(&mut c, "DBSIZE", int(20));
    assert_reply(&mut c, "FLUSHALL", ok());
    assert_reply(&mut c, "DBSIZE", int(0));
    assert_reply(&mut c, "SET a 1", ok());
    assert_reply(&mut c, "FLUSHALL ASYNC", ok());
    assert_reply(&mut c, "DBSIZE", int(0));
    assert_reply(&mut c, "SET a 1", ok());
    assert_reply(&mut c, "FLUSHDB SYNC", ok());
    assert_reply(&mut c, "DBSIZE", int(0));
    assert_err(&mut c, "FLUSHDB foo", "ERR syntax error");
    assert_err(&mut c, "FLUSHALL foo", "ERR syntax error");
    assert_err(
        &mut c,
        "DBSIZE x",
        "ERR wrong number of arguments for 'dbsize' command",
    );
}

fn unknown_command_and_arity(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_err(
        &mut c,
        "foo",
        "ERR unknown command 'foo', with args beginning with: ",
    );
    assert_err(
        &mut c,
        "FOO a b",
        "ERR unknown command 'FOO', with args beginning with: 'a' 'b' ",
    );
    for (line, name) in [
        ("GET", "get"),
        ("get a b", "get"),
        ("SET k", "set"),
        ("MGET", "mget"),
        ("DEL", "del"),
        ("EXPIRE k", "expire"),
        ("STRLEN", "strlen"),
        ("GETRANGE k 0", "getrange"),
        ("INCR", "incr"),
        ("RENAME a", "rename"),
        ("KEYS", "keys"),
        ("SCAN", "scan"),
        ("TTL", "ttl"),
        ("TYPE", "type"),
        ("LCS a", "lcs"),
    ] {
        assert_err(
            &mut c,
            line,
            &format!("ERR wrong number of arguments for '{name}' command"),
        );
    }
    // The connection keeps working after errors.
    assert_reply(&mut c, "PING", simple("PONG"));
}

/// SHUTDOWN: its errors (ABORT with none in progress, bad options, inside MULTI), then
/// `SHUTDOWN NOSAVE` closes the asking connection with no reply and the server exits 0.
fn shutdown_stops_the_server(cores: usize) {
    let mut s = Server::start(cores);
    let mut c = s.redis();
    assert_err(&mut c, "SHUTDOWN ABORT", "ERR No shutdown in progress.");
    assert_err(&mut c, "SHUTDOWN BOGUS", "ERR syntax error");
    assert_err(&mut c, "SHUTDOWN SAVE NOSAVE", "ERR syntax error");
    if !reference_mode() {
        // Baton keeps nothing on disk: SAVE is refused and the server serves on.
        assert_err(
            &mut c,
            "SHUTDOWN SAVE",
            "ERR Errors trying to SHUTDOWN. Check logs.",
        );
    }
    assert_reply(&mut c, "MULTI", ok());
    assert_err(
        &mut c,
        "SHUTDOWN",
        "ERR Command not allowed inside a transaction",
    );
    assert_err(
        &mut c,
        "EXEC",
        "EXECABORT Transaction discarded because of previous errors.",
    );
    assert_reply(&mut c, "PING", simple("PONG"));
    let mut r = s.raw();
    r.send(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n");
    r.expect_closed();
    let status = s
        .wait_exit(Duration::from_secs(10))
        .expect("the server still runs 10 s after SHUTDOWN");
    assert!(
        status.success(),
        "the server exited with {status} after SHUTDOWN"
    );
}

/// A client connected with a small receive buffer, so that a large reply is more than its
/// socket takes at once.
fn small_window_client(port: u16) -> std::net::TcpStream {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a descriptor this function owns until it hands it to
    // the TcpStream.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket");
        let size: libc::c_int = 4096;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
            },
            sin_zero: [0; 8],
        };
        let r = libc::connect(
            fd,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(r, 0, "connect: {}", std::io::Error::last_os_error());
        let s = std::net::TcpStream::from_raw_fd(fd);
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s
    }
}

/// Replies larger than the client's socket takes at once (the client reads nothing for a
/// while) arrive whole and in order, followed by the reply to the next request: in both
/// protocols, on a core with a few connections (each reply is handed to its socket as soon
/// as it is made, and the ring sends what the socket did not take) and on one with many
/// (the ring sends everything).
fn large_replies_arrive_whole_and_in_order(cores: usize) {
    use std::io::{Read, Write};
    /// Enough 200 kB replies to fill the server's socket (4 MB at most here).
    const LARGE_REPLIES: usize = 30;
    if reference_mode() {
        return;
    }
    let s = Server::start_with_memcache(cores);
    let value: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 23) as u8).collect();
    let mut c = s.redis();
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg(&value)
        .query(&mut c)
        .unwrap();
    let with_value = |head: String, tail: &[u8]| {
        let mut r = head.into_bytes();
        r.extend_from_slice(&value);
        r.extend_from_slice(tail);
        r
    };
    let redis_reply = with_value(format!("${}\r\n", value.len()), b"\r\n");
    let mc_reply = with_value(format!("VALUE big 0 {}\r\n", value.len()), b"\r\nEND\r\n");
    let mc_port = s.memcache_port();
    for idle in [0, 40] {
        // Idle connections spread over every core: more than eight on each with 40.
        let _others: Vec<std::net::TcpStream> = (0..idle)
            .map(|i| {
                let port = if i % 2 == 0 { s.port } else { mc_port };
                std::net::TcpStream::connect(("127.0.0.1", port)).unwrap()
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        for (port, first, reply, second, last) in [
            (
                s.port,
                &b"GET big\r\n"[..],
                &redis_reply,
                &b"PING\r\n"[..],
                &b"+PONG\r\n"[..],
            ),
            (
                mc_port,
                &b"get big\r\n"[..],
                &mc_reply,
                &b"mn\r\n"[..],
                &b"MN\r\n"[..],
            ),
        ] {
            let mut client = small_window_client(port);
            // One request at a time, each answered in a turn of its own, until the
            // server's socket is full: a reply is then taken only in part.
            for _ in 0..LARGE_REPLIES {
                client.write_all(first).unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
            client.write_all(second).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            let mut want = reply.repeat(LARGE_REPLIES);
            want.extend_from_slice(last);
            let mut got = vec![0u8; want.len()];
            client.read_exact(&mut got).unwrap();
            assert!(
                got == want,
                "with {idle} idle connections, port {port}: the replies differ from byte {}",
                got.iter()
                    .zip(want.iter())
                    .position(|(a, b)| a != b)
                    .unwrap_or(0)
            );
        }
    }
}

cores_tests!(large_replies_arrive_whole_and_in_order);
