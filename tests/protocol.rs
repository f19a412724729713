//! The wire: deep pipelines, many connections, malformed input, inline commands, RESP3,
//! requests split across reads, and `--proto-max-bulk-len`.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::thread;

use common::*;

cores_tests!(
    pipeline_10k_in_order,
    pipeline_multikey_in_order,
    two_hundred_connections,
    malformed_input_closes_only_that_connection,
    inline_commands,
    resp3_types,
    requests_split_across_reads,
);

/// Writes `bytes` on a separate thread (so a server that answers while we still write
/// cannot deadlock us), and returns the join handle.
fn write_async(r: &Raw, bytes: Vec<u8>) -> thread::JoinHandle<()> {
    let mut w = r.stream().try_clone().unwrap();
    thread::spawn(move || w.write_all(&bytes).expect("pipeline write"))
}

fn pipeline_10k_in_order(cores: usize) {
    let s = Server::start(cores);
    let mut r = s.raw();
    let mut bytes = Vec::new();
    let mut want = Vec::with_capacity(10_000);
    let mut strings: HashMap<String, String> = HashMap::new();
    let mut counters: HashMap<String, i64> = HashMap::new();
    for i in 0..10_000 {
        match i % 3 {
            0 => {
                let (k, v) = (format!("pk:{}", i % 500), format!("v{i}"));
                bytes.extend(encode_command(&["SET", &k, &v]));
                strings.insert(k, v);
                want.push(ok());
            }
            1 => {
                let k = format!("pk:{}", (i * 7) % 500);
                bytes.extend(encode_command(&["GET", &k]));
                want.push(strings.get(&k).map(bulk).unwrap_or(nil()));
            }
            _ => {
                let k = format!("pc:{}", i % 97);
                bytes.extend(encode_command(&["INCR", &k]));
                let n = counters.entry(k).or_insert(0);
                *n += 1;
                want.push(int(*n));
            }
        }
    }
    let writer = write_async(&r, bytes);
    for (i, w) in want.iter().enumerate() {
        let got = r.read_value();
        assert_eq!(&got, w, "reply {i} of the pipeline");
    }
    writer.join().unwrap();
    // Nothing extra, and the connection still works.
    assert_eq!(r.call(&["PING"]), simple("PONG"));
    assert_eq!(r.call(&["DBSIZE"]), int(500 + 97));
}

/// Multi-key commands (scatter/gather) interleaved with single-key ones in one pipeline.
fn pipeline_multikey_in_order(cores: usize) {
    let s = Server::start(cores);
    let mut r = s.raw();
    let mut bytes = Vec::new();
    let mut want = Vec::new();
    for j in 0..300 {
        let keys: Vec<String> = (0..6).map(|k| format!("mk:{j}:{k}")).collect();
        let mut mset = vec!["MSET".to_string()];
        for (n, k) in keys.iter().enumerate() {
            mset.push(k.clone());
            mset.push(format!("{j}.{n}"));
        }
        bytes.extend(encode_command(&mset));
        want.push(ok());
        let mut mget = vec!["MGET".to_string()];
        mget.extend(keys.iter().rev().cloned());
        mget.push(format!("absent:{j}"));
        bytes.extend(encode_command(&mget));
        let mut vals: Vec<Value> = (0..6).rev().map(|n| bulk(format!("{j}.{n}"))).collect();
        vals.push(nil());
        want.push(arr(vals));
        bytes.extend(encode_command(&["GET", &keys[3]]));
        want.push(bulk(format!("{j}.3")));
        let mut exists = vec!["EXISTS".to_string()];
        exists.extend(keys.iter().cloned());
        bytes.extend(encode_command(&exists));
        want.push(int(6));
        let mut del = vec!["DEL".to_string()];
        del.extend(keys[..4].iter().cloned());
        bytes.extend(encode_command(&del));
        want.push(int(4));
        bytes.extend(encode_command(&["GET", &keys[0]]));
        want.push(nil());
        bytes.extend(encode_command(&["PING"]));
        want.push(simple("PONG"));
    }
    let writer = write_async(&r, bytes);
    for (i, w) in want.iter().enumerate() {
        assert_eq!(&r.read_value(), w, "reply {i} of the pipeline");
    }
    writer.join().unwrap();
    assert_eq!(r.call(&["DBSIZE"]), int(300 * 2));
}

fn two_hundred_connections(cores: usize) {
    let s = Server::start(cores);
    let n = 200;
    // All open at once before any of them works.
    let conns: Vec<redis::Connection> = (0..n).map(|_| s.redis()).collect();
    let mut main = s.redis();
    let clients = as_str(&q(&mut main, "INFO clients"));
    assert!(
        clients.contains(&format!("\r\nconnected_clients:{}\r\n", n + 1)),
        "{clients}"
    );
    let handles: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            thread::spawn(move || {
                assert_eq!(q(&mut c, &format!("SET conn:{i} {i}")), ok());
                assert_eq!(q(&mut c, &format!("GET conn:{i}")), bulk(i.to_string()));
                let shared = as_int(&q(&mut c, "INCR shared"));
                assert!((1..=200).contains(&shared), "{shared}");
                assert_eq!(q(&mut c, "PING"), simple("PONG"));
                assert_eq!(
                    q(&mut c, &format!("MGET conn:{i} nokey:{i}")),
                    arr(vec![bulk(i.to_string()), nil()])
                );
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a connection's commands failed");
    }
    assert_reply(&mut main, "GET shared", bulk(n.to_string()));
    assert_reply(&mut main, "DBSIZE", int(n as i64 + 1));
}

fn malformed_input_closes_only_that_connection(cores: usize) {
    let s = Server::start(cores);
    let mut bystander = s.redis();
    assert_reply(&mut bystander, "SET bystander 1", ok());

    let mut cases: Vec<(Vec<u8>, &str)> = vec![
        (b"*1\r\n$abc\r\n".to_vec(), "invalid bulk length"),
        (b"*1\r\n$-5\r\n".to_vec(), "invalid bulk length"),
        (b"*1\r\n$600000000\r\n".to_vec(), "invalid bulk length"),
        (b"*abc\r\n".to_vec(), "invalid multibulk length"),
        (b"*3000000000\r\n".to_vec(), "invalid multibulk length"),
        (b"*1\r\nPING\r\n".to_vec(), "expected '$', got 'P'"),
        (b"SET \"foo\r\n".to_vec(), "unbalanced quotes in request"),
        (
            b"SET \"foo\"bar\r\n".to_vec(),
            "unbalanced quotes in request",
        ),
        (b"SET 'foo\r\n".to_vec(), "unbalanced quotes in request"),
        (vec![b'a'; 70 * 1024], "too big inline request"),
        (
            [b"*".as_slice(), &[b'1'; 70 * 1024]].concat(),
            "too big mbulk count string",
        ),
    ];
    if baton_only("multibulk count above 1024*1024 (Redis 7 accepts up to INT_MAX)") {
        cases.push((b"*2000000\r\n".to_vec(), "invalid multibulk length"));
    }
    for (input, what) in &cases {
        let mut r = s.raw();
        r.send(input);
        r.expect(format!("-ERR Protocol error: {what}\r\n").as_bytes());
        r.expect_closed();
    }

    // Complete requests before the bad one are answered first.
    let mut r = s.raw();
    r.send(b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$9\r\nbystander\r\n*1\r\n$x\r\n");
    r.expect(b"+PONG\r\n$1\r\n1\r\n-ERR Protocol error: invalid bulk length\r\n");
    r.expect_closed();

    // A client that closes mid-request does no harm.
    let mut r = s.raw();
    r.send(b"*3\r\n$3\r\nSET\r\n$9\r\nbystander\r\n$5\r\nhal");
    drop(r);

    assert_reply(&mut bystander, "GET bystander", bulk("1"));
    assert_reply(&mut bystander, "PING", simple("PONG"));
    let mut fresh = s.raw();
    assert_eq!(fresh.call(&["GET", "bystander"]), bulk("1"));
}

fn inline_commands(cores: usize) {
    let s = Server::start(cores);
    let mut r = s.raw();
    r.send(b"PING\r\n");
    r.expect(b"+PONG\r\n");
    r.send(b"SET a \"b c\"\r\n");
    r.expect(b"+OK\r\n");
    r.send(b"GET a\r\n");
    r.expect(b"$3\r\nb c\r\n");
    r.send(b"SET q 'x \"y\"'\r\n");
    r.expect(b"+OK\r\n");
    r.send(b"GET q\r\n");
    r.expect(b"$5\r\nx \"y\"\r\n");
    // Escapes inside double quotes.
    r.send(b"SET h \"\\x41\\n\\t\\\"z\"\r\n");
    r.expect(b"+OK\r\n");
    r.send(b"GET h\r\n");
    r.expect(b"$5\r\nA\n\t\"z\r\n");
    // Extra spaces, an empty quoted argument, LF-only line ends, empty lines.
    r.send(b"  ECHO    spaced   \r\n");
    r.expect(b"$6\r\nspaced\r\n");
    r.send(b"ECHO \"\"\r\n");
    r.expect(b"$0\r\n\r\n");
    r.send(b"\r\n\r\nPING\n");
    r.expect(b"+PONG\r\n");
    // Pipelined inline commands, mixed with multibulk ones.
    r.send(b"PING\r\nINCR n\r\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\nINCR n\r\n");
    r.expect(b"+PONG\r\n:1\r\n:2\r\n:3\r\n");
    r.send(b"FOO x\r\n");
    r.expect(b"-ERR unknown command 'FOO', with args beginning with: 'x' \r\n");
    r.send(b"GET\r\n");
    r.expect(b"-ERR wrong number of arguments for 'get' command\r\n");
    // Inline keys land on whichever core owns them, like multibulk ones.
    for i in 0..20 {
        r.send(format!("SET inline:{i} {i}\r\n").as_bytes());
        r.expect(b"+OK\r\n");
    }
    let mut c = s.redis();
    for i in 0..20 {
        assert_eq!(q(&mut c, &format!("GET inline:{i}")), bulk(i.to_string()));
    }
    assert_reply(&mut c, "GET a", bulk("b c"));
}

fn resp3_types(cores: usize) {
    let s = Server::start(cores);
    let mut r = s.raw();
    r.send_command(&["HELLO", "3"]);
    let h = r.read_value();
    assert!(matches!(h, Value::Map(_)), "HELLO 3 is a map: {h:?}");
    assert_eq!(field(&h, "proto"), int(3));
    // Byte-exact checks of the RESP3 encodings.
    r.send_command(&["GET", "missing"]);
    r.expect(b"_\r\n");
    r.send_command(&["SET", "k", "v"]);
    r.expect(b"+OK\r\n");
    r.send_command(&["GET", "k"]);
    r.expect(b"$1\r\nv\r\n");
    r.send_command(&["MGET", "k", "missing"]);
    r.expect(b"*2\r\n$1\r\nv\r\n_\r\n");
    r.send_command(&["EXISTS", "k"]);
    r.expect(b":1\r\n");
    r.send_command(&["SET", "k", "v", "NX"]);
    r.expect(b"_\r\n");
    r.send_command(&["SET", "k", "w", "GET"]);
    r.expect(b"$1\r\nv\r\n");
    r.send_command(&["CONFIG", "GET", "appendonly"]);
    r.expect(b"%1\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
    r.send_command(&["INCRBYFLOAT", "f", "1.5"]);
    r.expect(b"$3\r\n1.5\r\n");
    r.send_command(&["GET", "k", "extra"]);
    r.expect(b"-ERR wrong number of arguments for 'get' command\r\n");
    r.send_command(&["TTL", "k"]);
    r.expect(b":-1\r\n");
    r.send_command(&["MSET", "key1", "ohmytext", "key2", "mynewtext"]);
    r.expect(b"+OK\r\n");
    r.send_command(&["LCS", "key1", "key2", "IDX", "MINMATCHLEN", "4"]);
    r.expect(
        b"%2\r\n$7\r\nmatches\r\n*1\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n$3\r\nlen\r\n:6\r\n",
    );
    let docs = r.call(&["COMMAND", "DOCS", "get"]);
    assert!(
        matches!(&docs, Value::Map(m) if m.len() == 1 && matches!(m[0].1, Value::Map(_))),
        "COMMAND DOCS in RESP3 is a map of maps: {docs:?}"
    );
    assert_eq!(field(&field(&docs, "get"), "group"), bulk("string"));
    // INFO and CLIENT INFO are verbatim text in RESP3.
    r.send_command(&["INFO", "server"]);
    let info = r.read_value();
    match &info {
        Value::VerbatimString { text, .. } => assert!(text.starts_with("# Server"), "{text}"),
        other => panic!("INFO in RESP3 should be verbatim text, got {other:?}"),
    }
    // SCAN: an array of a bulk cursor and an array of keys.
    let mut cursor = "0".to_string();
    let mut keys = Vec::new();
    for _ in 0..1000 {
        let scan = as_array(&r.call(&["SCAN", &cursor, "COUNT", "1000"]));
        assert_eq!(scan.len(), 2, "{scan:?}");
        assert!(matches!(scan[0], Value::BulkString(_)), "{scan:?}");
        cursor = as_str(&scan[0]);
        keys.extend(as_strings(&scan[1]));
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(cursor, "0", "SCAN did not finish");
    keys.sort();
    assert_eq!(keys, ["f", "k", "key1", "key2"]);

    // Back to RESP2.
    let h = r.call(&["HELLO", "2"]);
    assert!(matches!(h, Value::Array(_)), "{h:?}");
    r.send_command(&["GET", "missing"]);
    r.expect(b"$-1\r\n");
    r.send_command(&["CONFIG", "GET", "appendonly"]);
    r.expect(b"*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");

    // A RESP3 client through the redis crate works too.
    let client = redis::Client::open(format!("redis://{}/?protocol=resp3", s.addr())).unwrap();
    let mut c = client.get_connection_with_timeout(IO_TIMEOUT).unwrap();
    c.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    assert_reply(&mut c, "GET missing", nil());
    assert_reply(&mut c, "GET k", bulk("w"));
    let m = q(&mut c, "CONFIG GET appendonly");
    assert!(matches!(m, Value::Map(_)), "{m:?}");
}

fn requests_split_across_reads(cores: usize) {
    let s = Server::start(cores);
    let mut r = s.raw();
    // One byte per write.
    let cmd = encode_command(&["SET", "trickle", "hello"]);
    for b in &cmd {
        r.send(&[*b]);
    }
    r.expect(b"+OK\r\n");
    for b in b"GET trickle\r\n" {
        r.send(&[*b]);
    }
    r.expect(b"$5\r\nhello\r\n");
    // A large value in uneven pieces, then a pipeline split inside a header.
    let big: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let cmd = encode_command(&[b"SET".as_slice(), b"big", &big]);
    for piece in cmd.chunks(7_777) {
        r.send(piece);
    }
    r.expect(b"+OK\r\n");
    let mut two = encode_command(&["GET", "trickle"]);
    two.extend(encode_command(&["STRLEN", "big"]));
    let (a, b) = two.split_at(20);
    r.send(a);
    r.send(b);
    r.expect(b"$5\r\nhello\r\n:200000\r\n");
    assert_eq!(r.call(&["GET", "big"]), bulk(&big));
}

#[test]
fn proto_max_bulk_len() {
    for cores in [1, 2] {
        let s = Server::builder(cores)
            .args(&["--proto-max-bulk-len", "1mb"])
            .start();
        let mut c = s.redis();
        assert_eq!(
            as_pairs(&q(&mut c, "CONFIG GET proto-max-bulk-len")),
            vec![("proto-max-bulk-len".to_string(), bulk("1048576"))]
        );
        let mb = vec![b'x'; 1024 * 1024];
        assert_eq!(run(&mut c, &[b"SET".as_slice(), b"k", &mb]), ok());
        let too_long = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
        assert_err(&mut c, "APPEND k y", too_long);
        assert_err(&mut c, "SETRANGE k 1048576 y", too_long);
        assert_err(&mut c, "SETRANGE fresh 1048576 y", too_long);
        assert_reply(&mut c, "STRLEN k", int(1024 * 1024));
        assert_reply(&mut c, "SETRANGE k 1048575 y", int(1024 * 1024));

        let mut r = s.raw();
        r.send(b"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1048577\r\n");
        r.expect(b"-ERR Protocol error: invalid bulk length\r\n");
        r.expect_closed();
        assert_reply(&mut c, "EXISTS b", int(0));
    }
}
