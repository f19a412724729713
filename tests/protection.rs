//! Client protections against the real binary: `--maxclients`, `--timeout`,
//! `--client-output-buffer-limit`, and CLIENT KILL in all its forms.
//!
//! Every wait is a bounded poll; nothing sleeps to synchronise. With
//! `BATON_ITEST_REFERENCE=redis-server` the same checks run against Redis, except the
//! Baton-only ones (memcached port, log lines).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

cores_tests!(
    maxclients_rejects_beyond_the_limit,
    maxclients_counts_both_protocols,
    timeout_closes_idle_clients_only,
    client_list_shows_idle_time,
    output_hard_limit_closes_a_client_that_does_not_read,
    output_hard_limit_catches_a_single_big_reply,
    output_soft_limit_closes_after_soft_seconds,
    output_soft_limit_spares_a_client_that_reads,
    client_kill_old_form,
    client_kill_filters,
    client_kill_type_and_skipme,
    client_kill_errors,
    config_set_maxclients_checks_the_fd_limit,
);

/// CONFIG SET maxclients raises the open-files limit when it may, and otherwise answers
/// with the number of clients the system allows, as Redis does.
fn config_set_maxclients_checks_the_fd_limit(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    assert_eq!(q(&mut c, "CONFIG SET maxclients 2000"), ok());
    assert_eq!(
        q(&mut c, "CONFIG GET maxclients"),
        Value::Array(vec![
            Value::BulkString(b"maxclients".to_vec()),
            Value::BulkString(b"2000".to_vec()),
        ])
    );
    let e = err_text(&q(&mut c, "CONFIG SET maxclients 4000000000"));
    assert!(
        e.starts_with(
            "ERR CONFIG SET failed (possibly related to argument 'maxclients') - The operating \
             system is not able to handle the specified number of clients, try with "
        ),
        "{e}"
    );
    let Value::Array(v) = q(&mut c, "CONFIG GET maxclients") else {
        panic!("CONFIG GET answers an array")
    };
    assert_eq!(
        v[1],
        Value::BulkString(b"2000".to_vec()),
        "unchanged after the failure"
    );
}

const REJECTED: &[u8] = b"-ERR max number of clients reached\r\n";

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Everything the server sends until it closes the connection (a reset counts as
/// closed); panics when it is still open after `within`.
fn read_until_closed(s: &mut TcpStream, within: Duration) -> Vec<u8> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "connection still open after {within:?} ({} bytes read)",
            got.len()
        );
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// Whether the server has closed `s`: a short read sees EOF or a reset (data that
/// arrives first is discarded).
fn is_closed(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// Sends one command on a raw socket and reads its one-line reply.
fn call_line(s: &mut TcpStream, args: &[&str]) -> String {
    s.write_all(&encode_command(args)).unwrap();
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match s.read(&mut b) {
            Ok(1) => line.push(b[0]),
            other => panic!("reading the reply to {args:?}: {other:?}, so far {line:?}"),
        }
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// A raw client with its CLIENT ID and address (from CLIENT INFO).
struct Victim {
    s: TcpStream,
    id: i64,
    addr: String,
    laddr: String,
}

fn victim(port: u16) -> Victim {
    let mut s = connect(port);
    let id: i64 = call_line(&mut s, &["CLIENT", "ID"])
        .trim_start_matches(':')
        .trim_end()
        .parse()
        .unwrap();
    s.write_all(&encode_command(&["CLIENT", "INFO"])).unwrap();
    let len_line = {
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            s.read_exact(&mut b).unwrap();
            line.push(b[0]);
        }
        String::from_utf8(line).unwrap()
    };
    let n: usize = len_line[1..].trim_end().parse().unwrap();
    let mut body = vec![0u8; n + 2];
    s.read_exact(&mut body).unwrap();
    let info = String::from_utf8(body).unwrap();
    let field = |name: &str| {
        info.split_whitespace()
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {info:?}"))
            .to_string()
    };
    Victim {
        s,
        id,
        addr: field("addr"),
        laddr: field("laddr"),
    }
}

fn info_field(c: &mut redis::Connection, section: &str, name: &str) -> String {
    let info = as_str(&q(c, &format!("INFO {section}")));
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in INFO:\n{info}"))
        .to_string()
}

/// The ids CLIENT LIST shows.
fn listed_ids(c: &mut redis::Connection) -> Vec<i64> {
    as_str(&q(c, "CLIENT LIST"))
        .lines()
        .filter_map(|l| l.strip_prefix("id=")?.split(' ').next()?.parse().ok())
        .collect()
}

/// Polls CLIENT LIST (every 50 ms) until `id` is gone; false when it is still there
/// after `within`.
fn gone_within(c: &mut redis::Connection, id: i64, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if !listed_ids(c).contains(&id) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------
// maxclients
// ---------------------------------------------------------------------------------------

fn maxclients_rejects_beyond_the_limit(cores: usize) {
    let s = Server::builder(cores).args(&["--maxclients", "3"]).start();
    // The crate's handshake is a round trip, so each of these is accepted and counted.
    let mut a = s.redis();
    let mut b = s.redis();
    let c = s.redis();

    for _ in 0..2 {
        let mut extra = connect(s.port);
        assert_eq!(
            read_until_closed(&mut extra, IO_TIMEOUT),
            REJECTED,
            "the connection over the limit gets the error, then EOF"
        );
    }

    // A client that speaks first hears the same. (A client library is not served either;
    // the redis crate takes the line as the answer to its handshake, which it ignores, and
    // reports the close that follows.)
    let mut eager = connect(s.port);
    eager.write_all(&encode_command(&["PING"])).unwrap();
    assert_eq!(read_until_closed(&mut eager, IO_TIMEOUT), REJECTED);
    let lib = redis::Client::open(format!("redis://{}/", s.addr()))
        .unwrap()
        .get_connection_with_timeout(IO_TIMEOUT)
        .and_then(|mut con| redis::cmd("PING").query::<String>(&mut con));
    assert!(lib.is_err(), "a client over the limit was served: {lib:?}");

    // The clients already in keep working.
    assert_reply(&mut a, "SET k v", ok());
    assert_reply(&mut b, "GET k", bulk("v"));
    assert_eq!(info_field(&mut a, "clients", "connected_clients"), "3");
    assert_eq!(info_field(&mut a, "stats", "rejected_connections"), "4");

    // A place freed is a place a new client can take.
    drop(c);
    let admitted = eventually(Duration::from_secs(5), || {
        let mut d = connect(s.port);
        call_line(&mut d, &["PING"]) == "+PONG\r\n"
    });
    assert!(admitted, "no client admitted after one left");
    assert_reply(&mut b, "PING", simple("PONG"));
}

fn maxclients_counts_both_protocols(cores: usize) {
    if !baton_only("the memcached listener") {
        return;
    }
    let s = Server::builder(cores)
        .memcache()
        .args(&["--maxclients", "2"])
        .start();
    let mut r = s.redis();
    let mut m = connect(s.memcache_port());
    m.write_all(b"version\r\n").unwrap();
    let mut buf = [0u8; 64];
    let n = m.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"VERSION "), "{:?}", &buf[..n]);

    // Full: each port answers in its own protocol's words.
    let mut extra_mc = connect(s.memcache_port());
    assert_eq!(
        read_until_closed(&mut extra_mc, IO_TIMEOUT),
        b"ERROR Too many open connections\r\n"
    );
    let mut extra_redis = connect(s.port);
    assert_eq!(read_until_closed(&mut extra_redis, IO_TIMEOUT), REJECTED);
    assert_eq!(info_field(&mut r, "stats", "rejected_connections"), "2");

    m.write_all(b"stats\r\n").unwrap();
    let mut stats = Vec::new();
    while !stats.ends_with(b"END\r\n") {
        let n = m.read(&mut buf).unwrap();
        assert!(n > 0, "memcached connection closed");
        stats.extend_from_slice(&buf[..n]);
    }
    let stats = String::from_utf8(stats).unwrap();
    assert!(stats.contains("STAT max_connections 2\r\n"), "{stats}");
    assert!(stats.contains("STAT rejected_connections 2\r\n"), "{stats}");
    assert_reply(&mut r, "PING", simple("PONG"));
}

// ---------------------------------------------------------------------------------------
// timeout
// ---------------------------------------------------------------------------------------

fn timeout_closes_idle_clients_only(cores: usize) {
    let mut b = Server::builder(cores).args(&["--timeout", "1"]);
    if !reference_mode() {
        b = b.memcache();
    }
    let s = b.start();
    let mut active = s.redis();
    let mut idle = connect(s.port);
    assert_eq!(call_line(&mut idle, &["PING"]), "+PONG\r\n");
    let idle_since = Instant::now();
    let mut idle_mc = (!reference_mode()).then(|| {
        let mut m = connect(s.memcache_port());
        m.write_all(b"version\r\n").unwrap();
        let mut buf = [0u8; 64];
        assert!(m.read(&mut buf).unwrap() > 0);
        m
    });

    // The active client talks every 200 ms while the idle ones wait to be closed.
    let deadline = idle_since + Duration::from_secs(6);
    let mut closed_after = None;
    while closed_after.is_none() {
        assert!(Instant::now() < deadline, "the idle client was not closed");
        assert_reply(&mut active, "PING", simple("PONG"));
        if is_closed(&mut idle, Duration::from_millis(200)) {
            closed_after = Some(idle_since.elapsed());
        }
    }
    let closed_after = closed_after.unwrap();
    assert!(
        closed_after >= Duration::from_millis(900),
        "closed after {closed_after:?}, before the 1 s timeout"
    );
    if let Some(m) = idle_mc.as_mut() {
        // It may go at the next once-a-second check (it spoke a moment after the Redis
        // one): the active client keeps talking meanwhile, or it would be idle too.
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            assert!(
                Instant::now() < deadline,
                "the idle memcached client was not closed"
            );
            assert_reply(&mut active, "PING", simple("PONG"));
            if is_closed(m, Duration::from_millis(200)) {
                break;
            }
        }
    }
    // Well past twice the timeout since it connected, the active client is still served.
    while idle_since.elapsed() < Duration::from_millis(2500) {
        assert_reply(&mut active, "PING", simple("PONG"));
        thread::sleep(Duration::from_millis(200));
    }
    assert_reply(&mut active, "SET k v", ok());
    assert_reply(&mut active, "GET k", bulk("v"));
}

fn client_list_shows_idle_time(cores: usize) {
    let s = Server::start(cores);
    let mut watcher = s.redis();
    let mut quiet = s.redis();
    let id = as_int(&q(&mut quiet, "CLIENT ID"));
    let idle_of = |c: &mut redis::Connection| -> i64 {
        let list = as_str(&q(c, "CLIENT LIST"));
        let line = list
            .lines()
            .find(|l| l.starts_with(&format!("id={id} ")))
            .unwrap_or_else(|| panic!("id {id} not in {list}"));
        line.split(' ')
            .find_map(|f| f.strip_prefix("idle="))
            .unwrap()
            .parse()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while idle_of(&mut watcher) < 1 {
        assert!(Instant::now() < deadline, "idle= never reached 1");
        thread::sleep(Duration::from_millis(100));
    }
    // Any command is interaction: idle starts over.
    assert_reply(&mut quiet, "PING", simple("PONG"));
    assert_eq!(idle_of(&mut watcher), 0);
    let own = as_str(&q(&mut quiet, "CLIENT INFO"));
    assert!(own.contains(" idle=0 "), "{own}");
}

// ---------------------------------------------------------------------------------------
// client-output-buffer-limit
// ---------------------------------------------------------------------------------------

const BIG: usize = 256 * 1024;

/// Stores four 256 KiB values (spread over the cores by their keys).
fn store_big_values(c: &mut redis::Connection) -> Vec<u8> {
    let value = vec![b'x'; BIG];
    for i in 0..4 {
        assert_eq!(
            run(
                c,
                &[b"SET".as_slice(), format!("big:{i}").as_bytes(), &value]
            ),
            ok()
        );
    }
    value
}

/// `n` pipelined GETs of the big values.
fn big_gets(n: usize) -> Vec<u8> {
    let mut p = Vec::new();
    for i in 0..n {
        p.extend(encode_command(&["GET", &format!("big:{}", i % 4)]));
    }
    p
}

/// A raw client that sends `n` big GETs and reads nothing; returns it with its id.
fn hog(port: u16, n: usize) -> (TcpStream, i64) {
    let mut s = connect(port);
    let id: i64 = call_line(&mut s, &["CLIENT", "ID"])
        .trim_start_matches(':')
        .trim_end()
        .parse()
        .unwrap();
    s.write_all(&big_gets(n)).unwrap();
    (s, id)
}

fn assert_logged(s: &Server, what: &str) {
    if baton_only("log lines") {
        assert!(
            eventually(Duration::from_secs(5), || s.stderr().contains(what)),
            "no log line with {what:?}; stderr:\n{}",
            s.stderr()
        );
    }
}

fn output_hard_limit_closes_a_client_that_does_not_read(cores: usize) {
    let s = Server::builder(cores)
        .args(&["--client-output-buffer-limit", "normal 1mb 512kb 10"])
        .start();
    let mut c = s.redis();
    let value = store_big_values(&mut c);

    // 400 replies of 256 KiB = 100 MiB, far past the 1 MiB hard limit.
    let n = 400;
    let (mut hog, id) = hog(s.port, n);
    assert!(
        gone_within(&mut c, id, Duration::from_secs(10)),
        "the client over the hard limit is still connected"
    );
    let got = read_until_closed(&mut hog, IO_TIMEOUT);
    assert!(
        got.len() < n * BIG,
        "all {} bytes were delivered; expected a disconnect",
        got.len()
    );

    // Everyone else is served as before.
    assert_eq!(q(&mut c, "GET big:0"), Value::BulkString(value));
    assert_reply(&mut c, "PING", simple("PONG"));
    assert_logged(&s, "closed for overcoming of output buffer limits");
    assert_logged(&s, "hard limit 1048576 bytes");
}

fn output_hard_limit_catches_a_single_big_reply(cores: usize) {
    let s = Server::builder(cores)
        .args(&["--client-output-buffer-limit", "normal 1mb 0 0"])
        .start();
    let mut c = s.redis();
    let huge = vec![b'y'; 2 << 20];
    assert_eq!(run(&mut c, &[b"SET".as_slice(), b"huge", &huge]), ok());
    // Reading or not, a 2 MiB reply is more than a 1 MiB limit allows.
    let mut reader = connect(s.port);
    reader.write_all(&encode_command(&["GET", "huge"])).unwrap();
    let got = read_until_closed(&mut reader, IO_TIMEOUT);
    assert!(got.len() < huge.len(), "the 2 MiB reply was delivered");
    assert_reply(&mut c, "STRLEN huge", int(2 << 20));
    assert_eq!(q(&mut c, "GETRANGE huge 0 2"), bulk("yyy"));
}

fn output_soft_limit_closes_after_soft_seconds(cores: usize) {
    let s = Server::builder(cores)
        .args(&["--client-output-buffer-limit", "normal 0 512kb 1"])
        .start();
    let mut c = s.redis();
    store_big_values(&mut c);

    let started = Instant::now();
    let (mut hog, id) = hog(s.port, 400);
    assert!(
        gone_within(&mut c, id, Duration::from_secs(10)),
        "the client over the soft limit is still connected"
    );
    let after = started.elapsed();
    assert!(
        after >= Duration::from_secs(1),
        "closed after {after:?}, before the soft limit's 1 s"
    );
    read_until_closed(&mut hog, IO_TIMEOUT);
    assert_reply(&mut c, "PING", simple("PONG"));
    assert_logged(&s, "above the soft limit of 524288 bytes for more than 1 s");
}

fn output_soft_limit_spares_a_client_that_reads(cores: usize) {
    let s = Server::builder(cores)
        .args(&["--client-output-buffer-limit", "normal 0 512kb 10"])
        .start();
    let mut c = s.redis();
    let value = store_big_values(&mut c);

    // 25 MiB of replies, far above the soft limit for a moment, read as they come.
    let mut reader = connect(s.port);
    let n = 100;
    reader.write_all(&big_gets(n)).unwrap();
    let header = format!("${BIG}\r\n");
    let mut one = vec![0u8; header.len() + BIG + 2];
    for i in 0..n {
        reader
            .read_exact(&mut one)
            .unwrap_or_else(|e| panic!("reply {i}: {e}"));
        assert!(one.starts_with(header.as_bytes()), "reply {i}");
        assert_eq!(
            &one[header.len()..header.len() + BIG],
            &value[..],
            "reply {i}"
        );
    }
    assert_eq!(call_line(&mut reader, &["PING"]), "+PONG\r\n");
}

// ---------------------------------------------------------------------------------------
// CLIENT KILL
// ---------------------------------------------------------------------------------------

fn client_kill_old_form(cores: usize) {
    let s = Server::start(cores);
    let mut admin = s.redis();
    let mut v = victim(s.port);
    assert_reply(&mut admin, &format!("CLIENT KILL {}", v.addr), ok());
    assert!(is_closed(&mut v.s, IO_TIMEOUT), "victim still open");
    assert_err(
        &mut admin,
        &format!("CLIENT KILL {}", v.addr),
        "ERR No such client",
    );
    assert_err(&mut admin, "CLIENT KILL 10.1.2.3:4", "ERR No such client");
    // The old form spares nobody, not even the caller: it is answered, then closed.
    let mut me = victim(s.port);
    assert_eq!(
        call_line(&mut me.s, &["CLIENT", "KILL", &me.addr]),
        "+OK\r\n"
    );
    assert!(is_closed(&mut me.s, IO_TIMEOUT), "caller still open");
    assert_reply(&mut admin, "PING", simple("PONG"));
}

fn client_kill_filters(cores: usize) {
    let s = Server::start(cores);
    let mut admin = s.redis();

    // ID
    let mut v = victim(s.port);
    assert_reply(&mut admin, &format!("CLIENT KILL ID {}", v.id), int(1));
    assert!(is_closed(&mut v.s, IO_TIMEOUT), "ID: victim still open");
    assert_reply(&mut admin, &format!("client kill id {}", v.id), int(0));

    // ADDR
    let mut v = victim(s.port);
    assert_reply(&mut admin, &format!("CLIENT KILL ADDR {}", v.addr), int(1));
    assert!(is_closed(&mut v.s, IO_TIMEOUT), "ADDR: victim still open");
    assert_reply(&mut admin, &format!("CLIENT KILL ADDR {}", v.addr), int(0));

    // LADDR names the server's side; with ID it narrows to one client.
    let mut v = victim(s.port);
    let mut bystander = victim(s.port);
    assert_eq!(v.laddr, s.addr());
    assert_reply(
        &mut admin,
        &format!("CLIENT KILL LADDR 127.0.0.1:1 ID {}", v.id),
        int(0),
    );
    assert_reply(
        &mut admin,
        &format!("CLIENT KILL ID {} LADDR {}", v.id, v.laddr),
        int(1),
    );
    assert!(is_closed(&mut v.s, IO_TIMEOUT), "LADDR: victim still open");

    // Every filter must match: the right ID with the wrong ADDR kills nobody.
    assert_reply(
        &mut admin,
        &format!("CLIENT KILL ID {} ADDR 10.1.2.3:4", bystander.id),
        int(0),
    );
    // USER default is every client (no ACLs).
    assert_reply(
        &mut admin,
        &format!("CLIENT KILL USER default ID {}", bystander.id),
        int(1),
    );
    assert!(
        is_closed(&mut bystander.s, IO_TIMEOUT),
        "USER: victim still open"
    );
    assert_reply(&mut admin, "PING", simple("PONG"));
}

fn client_kill_type_and_skipme(cores: usize) {
    let s = Server::start(cores);
    let mut admin = s.redis();
    let me = as_int(&q(&mut admin, "CLIENT ID"));

    // SKIPME defaults to yes: the caller is spared.
    assert_reply(&mut admin, &format!("CLIENT KILL ID {me}"), int(0));
    assert_reply(
        &mut admin,
        &format!("CLIENT KILL ID {me} SKIPME yes"),
        int(0),
    );
    assert_reply(&mut admin, "PING", simple("PONG"));

    // TYPE: every client is normal; no master, replica or pubsub clients exist.
    let mut a = victim(s.port);
    let mut b = victim(s.port);
    for t in ["master", "replica", "slave", "pubsub"] {
        assert_reply(&mut admin, &format!("CLIENT KILL TYPE {t}"), int(0));
    }
    assert_reply(&mut admin, "CLIENT KILL TYPE NORMAL", int(2));
    assert!(is_closed(&mut a.s, IO_TIMEOUT), "TYPE: a still open");
    assert!(is_closed(&mut b.s, IO_TIMEOUT), "TYPE: b still open");
    assert_reply(&mut admin, "PING", simple("PONG"));

    // SKIPME no: the caller is counted, answered, then closed.
    let mut self_killer = victim(s.port);
    let reply = call_line(
        &mut self_killer.s,
        &[
            "CLIENT",
            "KILL",
            "ID",
            &self_killer.id.to_string(),
            "SKIPME",
            "no",
        ],
    );
    assert_eq!(reply, ":1\r\n");
    assert!(
        is_closed(&mut self_killer.s, IO_TIMEOUT),
        "SKIPME no: caller still open"
    );
    assert_reply(&mut admin, "PING", simple("PONG"));
}

fn client_kill_errors(cores: usize) {
    let s = Server::start(cores);
    let mut c = s.redis();
    for id in ["0", "-1", "abc", "99999999999999999999"] {
        assert_err(
            &mut c,
            &format!("CLIENT KILL ID {id}"),
            "ERR client-id should be greater than 0",
        );
    }
    assert_err(
        &mut c,
        "CLIENT KILL TYPE foo",
        "ERR Unknown client type 'foo'",
    );
    assert_err(
        &mut c,
        "CLIENT KILL USER nobody",
        "ERR No such user 'nobody'",
    );
    assert_err(&mut c, "CLIENT KILL SKIPME maybe", "ERR syntax error");
    assert_err(&mut c, "CLIENT KILL FOO bar", "ERR syntax error");
    assert_err(&mut c, "CLIENT KILL ID 5 ADDR", "ERR syntax error");
    assert_err(
        &mut c,
        "CLIENT KILL ID 0 ADDR",
        "ERR client-id should be greater than 0",
    );
    // Three arguments are the old form, whatever the word.
    assert_err(&mut c, "CLIENT KILL ID", "ERR No such client");
    assert_err(
        &mut c,
        "CLIENT KILL",
        "ERR wrong number of arguments for 'client|kill' command",
    );
    assert_reply(&mut c, "PING", simple("PONG"));
}
