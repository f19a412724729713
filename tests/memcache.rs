//! The memcached protocol against the real `baton` binary: through a real client crate
//! (`memcache`, text protocol), byte-exact over raw sockets (errors, noreply, pipelining,
//! meta commands, stats), across protocols (memcached <-> Redis on one keyspace), and
//! garbage input. Every test runs with 1 and 2 cores.
//!
//! Expected texts were checked against memcached 1.6 (`BATON_ITEST_REFERENCE=memcached`
//! runs the suite against a real `memcached`; what needs Redis, or is Baton's documented
//! difference or newer memcached behaviour than the installed one, is skipped there).

mod common;

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use common::*;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A `memcache` crate client on the server's memcached port: text protocol, one pooled
/// connection, socket timeouts.
fn client(s: &Server) -> memcache::Client {
    let url = format!(
        "memcache://{}?protocol=ascii&timeout={}",
        s.memcache_addr(),
        IO_TIMEOUT.as_secs()
    );
    memcache::Client::builder()
        .add_server(url)
        .unwrap()
        .with_connection_timeout(IO_TIMEOUT)
        .with_read_timeout(IO_TIMEOUT)
        .with_write_timeout(IO_TIMEOUT)
        .build()
        .unwrap_or_else(|e| panic!("memcache client: {e}; stderr:\n{}", s.stderr()))
}

/// True unless the suite runs against a real memcached (see the module doc); `what` names
/// the skipped check.
fn not_reference(what: &str) -> bool {
    if memcached_reference() {
        eprintln!("memcached reference mode: skipping {what}");
        return false;
    }
    true
}

/// A value with explicit client flags, for the `memcache` crate.
struct Flagged<'a>(&'a [u8], u32);

impl<W: Write> memcache::ToMemcacheValue<W> for Flagged<'_> {
    fn get_flags(&self) -> u32 {
        self.1
    }

    fn get_length(&self) -> usize {
        self.0.len()
    }

    fn write_to(&self, stream: &mut W) -> std::io::Result<()> {
        stream.write_all(self.0)
    }
}

/// Value, flags and CAS as the crate's `gets` returns them.
type Item = (Vec<u8>, u32, Option<u64>);

fn cget(c: &memcache::Client, key: &str) -> Option<Vec<u8>> {
    c.get::<Vec<u8>>(key)
        .unwrap_or_else(|e| panic!("get {key}: {e}"))
}

fn cgets(c: &memcache::Client, key: &str) -> Option<Item> {
    c.get::<Item>(key)
        .unwrap_or_else(|e| panic!("gets {key}: {e}"))
}

/// Sends `send` and asserts the reply bytes are exactly `want`.
#[track_caller]
fn exchange(r: &mut Raw, send: &str, want: &str) {
    r.send(send.as_bytes());
    r.expect(want.as_bytes());
}

/// `get key` -> (flags, value), or `None` on a miss.
#[track_caller]
fn raw_get(r: &mut Raw, key: &str) -> Option<(u32, Vec<u8>)> {
    r.send(format!("get {key}\r\n").as_bytes());
    let line = r.read_line();
    if line == "END\r\n" {
        return None;
    }
    let head: Vec<&str> = line.trim_end().split(' ').collect();
    assert!(
        head.len() == 4 && head[0] == "VALUE" && head[1] == key,
        "get {key}: {line:?}"
    );
    let flags = head[2].parse().expect("flags");
    let len: usize = head[3].parse().expect("length");
    let mut data = r.read_n(len + 2);
    assert_eq!(&data[len..], b"\r\n", "data block end");
    data.truncate(len);
    r.expect(b"END\r\n");
    Some((flags, data))
}

/// `gets key` -> its CAS unique.
#[track_caller]
fn raw_cas(r: &mut Raw, key: &str) -> u64 {
    r.send(format!("gets {key}\r\n").as_bytes());
    let line = r.read_line();
    let head: Vec<&str> = line.trim_end().split(' ').collect();
    assert!(
        head.len() == 5 && head[0] == "VALUE",
        "gets {key}: {line:?}"
    );
    let len: usize = head[3].parse().expect("length");
    r.read_n(len + 2);
    r.expect(b"END\r\n");
    head[4].parse().expect("cas")
}

/// The `stats` reply as name -> value.
fn stats(r: &mut Raw) -> HashMap<String, String> {
    r.send(b"stats\r\n");
    let mut out = HashMap::new();
    loop {
        let line = r.read_line();
        assert!(line.ends_with("\r\n"), "truncated stats line {line:?}");
        if line == "END\r\n" {
            return out;
        }
        let mut parts = line.trim_end().splitn(3, ' ');
        assert_eq!(parts.next(), Some("STAT"), "stats line {line:?}");
        let name = parts.next().expect("stat name").to_string();
        let value = parts.next().unwrap_or_default().to_string();
        out.insert(name, value);
    }
}

#[track_caller]
fn stat(st: &HashMap<String, String>, name: &str) -> i64 {
    let v = st
        .get(name)
        .unwrap_or_else(|| panic!("stats has no {name}: {st:?}"));
    v.parse()
        .unwrap_or_else(|_| panic!("stat {name} = {v:?} is not an integer"))
}

/// The token after `prefix` in a meta reply line (`c123` -> "123").
#[track_caller]
fn meta_flag(line: &str, prefix: char) -> String {
    line.trim_end()
        .split(' ')
        .skip(1)
        .find_map(|t| t.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix} flag in {line:?}"))
        .to_string()
}

// ---------------------------------------------------------------------------------------
// 1. Through the client crate
// ---------------------------------------------------------------------------------------

fn client_storage_commands(cores: usize) {
    let s = Server::start_with_memcache(cores);
    let c = client(&s);

    // set / get / overwrite
    c.set("k", "v1", 0).unwrap();
    assert_eq!(cget(&c, "k"), Some(b"v1".to_vec()));
    c.set("k", "v2", 0).unwrap();
    assert_eq!(cget(&c, "k"), Some(b"v2".to_vec()));
    assert_eq!(cget(&c, "missing"), None);

    // gets / cas: the right unique stores, a stale one does not, and CAS changes on write
    let (_, _, cas) = cgets(&c, "k").expect("gets k");
    let cas = cas.expect("gets returns a cas");
    assert!(
        c.cas("k", "v3", 0, cas).unwrap(),
        "cas with the current unique"
    );
    assert_eq!(cget(&c, "k"), Some(b"v3".to_vec()));
    let (_, _, cas2) = cgets(&c, "k").unwrap();
    assert_ne!(cas2, Some(cas), "a store changes the cas unique");
    assert!(
        !c.cas("k", "v4", 0, cas).unwrap(),
        "cas with a stale unique"
    );
    assert_eq!(cget(&c, "k"), Some(b"v3".to_vec()));
    assert!(
        !c.cas("nokey", "x", 0, 1).unwrap(),
        "cas on a missing key (NOT_FOUND)"
    );
    assert_eq!(cget(&c, "nokey"), None);

    // add only when missing, replace only when present
    c.add("k", "added", 0).unwrap(); // NOT_STORED: the crate reports Ok either way
    assert_eq!(
        cget(&c, "k"),
        Some(b"v3".to_vec()),
        "add must not overwrite"
    );
    c.add("fresh", "added", 0).unwrap();
    assert_eq!(cget(&c, "fresh"), Some(b"added".to_vec()));
    c.replace("nothere", "r", 0).unwrap();
    assert_eq!(cget(&c, "nothere"), None, "replace must not create");
    c.replace("fresh", "replaced", 0).unwrap();
    assert_eq!(cget(&c, "fresh"), Some(b"replaced".to_vec()));

    // append / prepend keep the flags and only touch existing items
    c.set("ap", Flagged(b"mid", 42), 0).unwrap();
    c.append("ap", "-end").unwrap();
    c.prepend("ap", "start-").unwrap();
    let (v, flags, _) = cgets(&c, "ap").unwrap();
    assert_eq!(v, b"start-mid-end");
    assert_eq!(flags, 42, "append/prepend keep the item's flags");
    c.append("apnone", "x").unwrap();
    c.prepend("apnone", "x").unwrap();
    assert_eq!(cget(&c, "apnone"), None, "append/prepend must not create");

    // delete
    assert!(c.delete("ap").unwrap());
    assert!(!c.delete("ap").unwrap());
    assert_eq!(cget(&c, "ap"), None);

    // incr / decr: 64-bit, incr wraps, decr stops at 0, missing key is an error
    c.set("n", "10", 0).unwrap();
    assert_eq!(c.increment("n", 5).unwrap(), 15);
    assert_eq!(c.decrement("n", 3).unwrap(), 12);
    assert_eq!(c.decrement("n", 100).unwrap(), 0, "decr stops at 0");
    // (memcached pads a shrunk number with spaces; Baton stores plain digits, see
    // incr_stores_plain_digits)
    let n = String::from_utf8(cget(&c, "n").unwrap()).unwrap();
    assert_eq!(n.trim_end(), "0");
    c.set("n", u64::MAX.to_string(), 0).unwrap();
    assert_eq!(c.increment("n", 2).unwrap(), 1, "incr wraps at 2^64");
    assert!(
        matches!(
            c.increment("nonum", 1),
            Err(memcache::MemcacheError::CommandError(
                memcache::CommandError::KeyNotFound
            ))
        ),
        "incr on a missing key is NOT_FOUND"
    );
    c.set("text", "abc", 0).unwrap();
    match c.increment("text", 1) {
        Err(memcache::MemcacheError::ClientError(e)) => assert_eq!(
            e.to_string(),
            "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
        ),
        other => panic!("incr on text: {other:?}"),
    }

    // touch
    assert!(c.touch("k", 100).unwrap());
    assert!(!c.touch("nothere", 100).unwrap());
    assert_eq!(cget(&c, "k"), Some(b"v3".to_vec()), "touch keeps the value");

    // version through the crate
    let versions = c.version().unwrap();
    assert_eq!(versions.len(), 1);
    assert!(!versions[0].1.is_empty(), "version {versions:?}");

    // flush_all empties everything
    c.flush().unwrap();
    for key in ["k", "fresh", "n", "text"] {
        assert_eq!(cget(&c, key), None, "{key} after flush_all");
    }
    // and the connection goes on working
    c.set("after", "flush", 0).unwrap();
    assert_eq!(cget(&c, "after"), Some(b"flush".to_vec()));
}

fn client_flags_round_trip(cores: usize) {
    let s = Server::start_with_memcache(cores);
    let c = client(&s);
    for (i, flags) in [0u32, 1, 42, 0x8000_0000, u32::MAX].into_iter().enumerate() {
        let key = format!("flags:{i}");
        let value = format!("value-{flags}");
        c.set(&key, Flagged(value.as_bytes(), flags), 0).unwrap();
        let (v, f, _) = cgets(&c, &key).unwrap();
        assert_eq!((v, f), (value.into_bytes(), flags), "{key}");
    }
    // replace and cas store the new flags
    c.replace("flags:0", Flagged(b"r", 7), 0).unwrap();
    assert_eq!(cgets(&c, "flags:0").unwrap().1, 7);
    let cas = cgets(&c, "flags:0").unwrap().2.unwrap();
    assert!(c.cas("flags:0", Flagged(b"c", 9), 0, cas).unwrap());
    assert_eq!(cgets(&c, "flags:0").unwrap().1, 9);
    // binary values round trip untouched
    let bin: Vec<u8> = (0..=255u8).chain(b"\r\nEND\r\n".iter().copied()).collect();
    c.set("bin", bin.as_slice(), 0).unwrap();
    assert_eq!(cget(&c, "bin"), Some(bin));
}

fn client_multi_get_across_cores(cores: usize) {
    let s = Server::start_with_memcache(cores);
    let c = client(&s);
    let keys: Vec<String> = (0..300).map(|i| format!("multi-get:key:{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        c.set(k, Flagged(format!("v{i}").as_bytes(), i as u32), 0)
            .unwrap();
    }
    // Every other key plus some missing ones, in one `gets` (a line over 2048 bytes, which
    // memcached allows for retrievals).
    let mut ask: Vec<&str> = keys.iter().step_by(2).map(String::as_str).collect();
    let missing: Vec<String> = (0..20).map(|i| format!("absent:{i}")).collect();
    ask.extend(missing.iter().map(String::as_str));
    assert!(ask.join(" ").len() > 2048);
    let got: HashMap<String, Item> = c.gets(&ask).unwrap();
    assert_eq!(got.len(), 150, "hits of the multi-get");
    for (i, k) in keys.iter().enumerate().step_by(2) {
        let (v, f, cas) = got.get(k).unwrap_or_else(|| panic!("{k} missing"));
        assert_eq!(v, format!("v{i}").as_bytes(), "{k}");
        assert_eq!(*f, i as u32, "{k} flags");
        assert!(cas.is_some(), "{k} cas");
    }
    // All 300 at once.
    let all: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert_eq!(c.gets::<Item>(&all).unwrap().len(), 300);
}

fn client_large_values(cores: usize) {
    let s = Server::start_with_memcache(cores);
    let c = client(&s);
    let value = |n: usize| -> Vec<u8> { (0..n).map(|i| (i % 251) as u8).collect() };

    let v500k = value(500 * 1024);
    c.set("v500k", v500k.as_slice(), 0).unwrap();
    assert_eq!(cget(&c, "v500k"), Some(v500k));

    // Over the limit: an error, nothing stored, and the connection still in sync.
    let over = value(1024 * 1024 + 1);
    match c.set("huge", over.as_slice(), 0) {
        Err(memcache::MemcacheError::ServerError(e)) => {
            assert_eq!(e.to_string(), "SERVER_ERROR object too large for cache\r\n")
        }
        other => panic!("set over the item size limit: {other:?}"),
    }
    assert_eq!(cget(&c, "huge"), None);
    c.set("small", "ok", 0).unwrap();
    assert_eq!(cget(&c, "small"), Some(b"ok".to_vec()));

    // Just under the 1 MiB default (-I 1m): memcached 1.6 stores a 1 MiB - 100 byte value
    // under a short key (item overhead included), so Baton must too.
    let near = value(1024 * 1024 - 100);
    c.set("big", near.as_slice(), 0)
        .unwrap_or_else(|e| panic!("set of a 1 MiB - 100 byte value: {e}"));
    assert_eq!(cget(&c, "big"), Some(near));
}

fn max_item_size_flag(cores: usize) {
    if !not_reference("--max-item-size boundary (memcached counts item overhead)") {
        return;
    }
    let s = Server::builder(cores)
        .memcache()
        .args(&["--max-item-size", "2kb"])
        .start();
    let mut r = s.memcache_raw();
    let at = "x".repeat(2048);
    exchange(
        &mut r,
        &format!("set at 0 0 2048\r\n{at}\r\n"),
        "STORED\r\n",
    );
    assert_eq!(raw_get(&mut r, "at").unwrap().1, at.as_bytes());
    let over = "x".repeat(2049);
    exchange(
        &mut r,
        &format!("set over 0 0 2049\r\n{over}\r\n"),
        "SERVER_ERROR object too large for cache\r\n",
    );
    exchange(
        &mut r,
        &format!("ms over 2049\r\n{over}\r\n"),
        "SERVER_ERROR object too large for cache\r\n",
    );
    // append past the limit is refused too
    exchange(&mut r, "append at 0 0 1\r\ny\r\n", "NOT_STORED\r\n");
    assert_eq!(raw_get(&mut r, "over"), None);
    assert_eq!(raw_get(&mut r, "at").unwrap().1.len(), 2048);
}

// ---------------------------------------------------------------------------------------
// 2. Raw sockets: exact bytes
// ---------------------------------------------------------------------------------------

fn error_paths(cores: usize) {
    let s = Server::start_with_memcache(cores);
    let mut r = s.memcache_raw();
    let key251 = "k".repeat(251);
    let key250 = "k".repeat(250);

    // Unknown commands and missing arguments.
    exchange(&mut r, "bogus\r\n", "ERROR\r\n");
    exchange(&mut r, "x\r\n", "ERROR\r\n");
    exchange(&mut r, "\r\n", "ERROR\r\n");
    exchange(&mut r, "get\r\n", "ERROR\r\n");
    exchange(&mut r, "set\r\n", "ERROR\r\n");
    exchange(&mut r, "set a 0 0\r\n", "ERROR\r\n");
    exchange(&mut r, "incr a\r\n", "ERROR\r\n");
    exchange(&mut r, "verbosity\r\n", "ERROR\r\n");
    exchange(&mut r, "cas a 0 0 1\r\n", "ERROR\r\n");

    // Bad command line format.
    exchange(
        &mut r,
        "set a 0 0 -1\r\n",
        "CLIENT_ERROR bad command line format\r\n",
    );
    exchange(
        &mut r,
        "set a 0 0 abc\r\n",
        "CLIENT_ERROR bad command line format\r\n",
    );
    exchange(
        &mut r,
        "delete a 5\r\n",
        "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n",
    );
    exchange(
        &mut r,
        "touch a x\r\n",
        "CLIENT_ERROR invalid exptime argument\r\n",
    );
    exchange(
        &mut r,
        "gat x a\r\n",
        "CLIENT_ERROR invalid exptime argument\r\n",
    );
    exchange(
        &mut r,
        "flush_all x\r\n",
        "CLIENT_ERROR invalid exptime argument\r\n",
    );

    // Keys: 250 bytes is the longest allowed, 251 is a format error everywhere.
    exchange(
        &mut r,
        &format!("set {key250} 0 0 1\r\nb\r\n"),
        "STORED\r\n",
    );
    assert_eq!(raw_get(&mut r, &key250), Some((0, b"b".to_vec())));
    for cmd in [
        format!("get {key251}\r\n"),
        format!("get a {key251}\r\n"),
        format!("gets {key251}\r\n"),
        format!("delete {key251}\r\n"),
        format!("incr {key251} 1\r\n"),
        format!("touch {key251} 1\r\n"),
        format!("mg {key251} v\r\n"),
        format!("md {key251}\r\n"),
    ] {
        exchange(&mut r, &cmd, "CLIENT_ERROR bad command line format\r\n");
    }
    // A rejected storage line: the reply, and (as memcached 1.6 does now) its data block
    // is skipped, so the next command is read in sync.
    r.send(format!("set {key251} 0 0 1\r\nb\r\n").as_bytes());
    r.expect(b"CLIENT_ERROR bad command line format\r\n");
    if !not_reference("data block of a rejected set is skipped (newer memcached)") {
        r.expect(b"ERROR\r\n"); // memcached 1.6.18 reads the block "b" as a command
    } else {
        exchange(&mut r, "version\r\n", "VERSION ");
        r.read_line();
        r.send(b"set a x 0 1\r\nb\r\n");
        r.expect(b"CLIENT_ERROR bad command line format\r\n");
        exchange(&mut r, "mn\r\n", "MN\r\n");
        exchange(
            &mut r,
            &format!("ms {key251} 1\r\nb\r\nmn\r\n"),
            "CLIENT_ERROR bad command line format\r\nMN\r\n",
        );
        exchange(&mut r, "mg\r\n", "CLIENT_ERROR bad command line format\r\n");
    }

    // A data block not followed by \r\n.
    exchange(
        &mut r,
        "set a 0 0 3\r\nabcde\r\nget a\r\n",
        "CLIENT_ERROR bad data chunk\r\nERROR\r\nEND\r\n",
    );

    // Too large: the data block is skipped and the stream stays in sync.
    let big = 2 * 1024 * 1024;
    let mut req = format!("set big 0 0 {big}\r\n").into_bytes();
    req.resize(req.len() + big, b'x');
    req.extend_from_slice(b"\r\nset after 0 0 2\r\nok\r\nget big after\r\n");
    r.send(&req);
    r.expect(
        b"SERVER_ERROR object too large for cache\r\nSTORED\r\nVALUE after 0 2\r\nok\r\nEND\r\n",
    );

    // incr / decr errors.
    exchange(&mut r, "set t 0 0 3\r\nabc\r\n", "STORED\r\n");
    for cmd in ["incr t 1\r\n", "decr t 1\r\n"] {
        exchange(
            &mut r,
            cmd,
            "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        );
    }
    exchange(&mut r, "set n 0 0 1\r\n5\r\n", "STORED\r\n");
    for delta in ["x", "-1", "1.5", "18446744073709551616"] {
        exchange(
            &mut r,
            &format!("incr n {delta}\r\n"),
            "CLIENT_ERROR invalid numeric delta argument\r\n",
        );
    }
    exchange(&mut r, "incr nokey 1\r\n", "NOT_FOUND\r\n");
    exchange(&mut r, "decr nokey 1\r\n", "NOT_FOUND\r\n");
    exchange(&mut r, "incr n 18446744073709551615\r\n", "4\r\n");
    exchange(&mut r, "decr n 100\r\n", "0\r\n");

    // Not-stored / exists / not-found replies.
    exchange(&mut r, "add n 0 0 1\r\n1\r\n", "NOT_STORED\r\n");
    exchange(&mut r, "replace nokey 0 0 1\r\n1\r\n", "NOT_STORED\r\n");
    exchange(&mut r, "append nokey 0 0 1\r\n1\r\n", "NOT_STORED\r\n");
    exchange(&mut r, "prepend nokey 0 0 1\r\n1\r\n", "NOT_STORED\r\n");
    exchange(&mut r, "cas nokey 0 0 1 5\r\n1\r\n", "NOT_FOUND\r\n");
    let cas = raw_cas(&mut r, "n");
    exchange(
        &mut r,
        &format!("cas n 0 0 1 {}\r\n1\r\n", cas + 1),
        "EXISTS\r\n",
    );
    exchange(&mut r, &format!("cas n 0 0 1 {cas}\r\n1\r\n"), "STORED\r\n");
    exchange(&mut r, "delete nokey\r\n", "NOT_FOUND\r\n");
    exchange(&mut r, "touch nokey 1\r\n", "NOT_FOUND\r\n");

    // The connection survived all of it.
    exchange(&mut r, "get n\r\n", "VALUE n 0 1\r\n1\r\nEND\r\n");
}

fn exptime_semantics(cores: usize) {
    let s = Server::start_with_memcache(cores);
    let mut r = s.memcache_raw();
    const THIRTY_DAYS: i64 = 60 * 60 * 24 * 30;

    // Negative: already expired (the store still answers STORED).
    exchange(&mut r, "set neg 0 -1 1\r\nb\r\n", "STORED\r\n");
    assert_eq!(raw_get(&mut r, "neg"), None);
    exchange(&mut r, "set neg2 0 0 1\r\nb\r\n", "STORED\r\n");
    exchange(&mut r, "touch neg2 -1\r\n", "TOUCHED\r\n");
    assert_eq!(raw_get(&mut r, "neg2"), None);

    // Up to 30 days: relative seconds.
    exchange(
        &mut r,
        &format!("set rel 0 {THIRTY_DAYS} 1\r\nb\r\n"),
        "STORED\r\n",
    );
    r.send(b"mg rel t\r\n");
    let ttl: i64 = meta_flag(&r.read_line(), 't').parse().unwrap();
    assert!(
        (THIRTY_DAYS - 2..=THIRTY_DAYS).contains(&ttl),
        "30 days is relative: ttl {ttl}"
    );

    // Over 30 days: an absolute unix time.
    let at = unix_secs() + 100;
    exchange(&mut r, &format!("set abs 0 {at} 1\r\nb\r\n"), "STORED\r\n");
    assert!(raw_get(&mut r, "abs").is_some());
    r.send(b"mg abs t\r\n");
    let ttl: i64 = meta_flag(&r.read_line(), 't').parse().unwrap();
    assert!((97..=101).contains(&ttl), "absolute exptime: ttl {ttl}");
    // ... so 30 days + 1 second is a moment in January 1970: long expired.
    exchange(
        &mut r,
        &format!("set old 0 {} 1\r\nb\r\n", THIRTY_DAYS + 1),
        "STORED\r\n",
    );
    assert_eq!(raw_get(&mut r, "old"), None);
    // The same rules for touch and gat.
    exchange(&mut r, "set tk 0 0 1\r\nb\r\n", "STORED\r\n");
    exchange(&mut r, &format!("touch tk {at}\r\n"), "TOUCHED\r\n");
    r.send(b"mg tk t\r\n");
    let ttl: i64 = meta_flag(&r.read_line(), 't').parse().unwrap();
    assert!(
        (97..=101).contains(&ttl),
        "touch with absolute exptime: ttl {ttl}"
    );
    exchange(&mut r, "gat 50 tk\r\n", "VALUE tk 0 1\r\nb\r\nEND\r\n");
    r.send(b"mg tk t\r\n");
    let ttl: i64 = meta_flag(&r.read_line(), 't').parse().unwrap();
    assert!((48..=50).contains(&ttl), "gat 50: ttl {ttl}");
    let cas = raw_cas(&mut r, "tk");
    exchange(
        &mut r,
        "gats 0 tk\r\n",
        &format!("VALUE tk 0 1 {cas}\r\nb\r\nEND\r\n"),
    );
    exchange(&mut r, "mg tk t\r\n", "HD t-1\r\n");

    // A short relative exptime really expires (bounded polling, 1 s clock granularity).
    exchange(&mut r, "set short 0 1 1\r\nb\r\n", "STORED\r\n");
    assert!(
        eventually(Duration::from_secs(4), || raw_get(&mut r, "short")
            .is_none()),
        "an item with exptime 1 is still there after 4 s"
    );
}

fn noreply_everywhere(cores: usize) {
    let s = Server::start_with_memcache(cores);
    let mut r = s.memcache_raw();
    exchange(&mut r, "set c 0 0 1\r\n1\r\n", "STORED\r\n");
    let cas = raw_cas(&mut r, "c");
    // Every storage command (and the others that take noreply), with noreply, in one
    // write; then one get whose reply must be the first bytes to come back.
    let mut req = String::new();
    req += "set a 1 0 1 noreply\r\nA\r\n";
    req += "add b 2 0 1 noreply\r\nB\r\n";
    req += "add a 9 0 1 noreply\r\nX\r\n"; // NOT_STORED, silent
    req += "replace a 3 0 2 noreply\r\nAA\r\n";
    req += "replace nokey 0 0 1 noreply\r\nX\r\n"; // NOT_STORED, silent
    req += "append a 0 0 1 noreply\r\n>\r\n";
    req += "prepend a 0 0 1 noreply\r\n<\r\n";
    req += &format!("cas c 4 0 2 {cas} noreply\r\nCC\r\n");
    req += &format!("cas c 5 0 1 {cas} noreply\r\nX\r\n"); // EXISTS, silent
    req += "set n 0 0 2 noreply\r\n10\r\n";
    req += "incr n 5 noreply\r\n";
    req += "decr n 3 noreply\r\n";
    req += "set d 0 0 1 noreply\r\nD\r\n";
    req += "delete d noreply\r\n";
    req += "delete d noreply\r\n"; // NOT_FOUND, silent
    req += "touch b 1000 noreply\r\n";
    req += "get a b c n d\r\n";
    r.send(req.as_bytes());
    r.expect(
        b"VALUE a 3 4\r\n<AA>\r\nVALUE b 2 1\r\nB\r\nVALUE c 4 2\r\nCC\r\nVALUE n 0 2\r\n12\r\nEND\r\n",
    );
    r.send(b"mg b t\r\n");
    let ttl: i64 = meta_flag(&r.read_line(), 't').parse().unwrap();
    assert!((998..=1000).contains(&ttl), "touch noreply ran: ttl {ttl}");

    // Errors muted by noreply are silent too, and the stream stays in sync.
    r.send(b"incr a 1 noreply\r\nincr n x noreply\r\nversion\r\n");
    assert!(r.read_line().starts_with("VERSION "));

    // flush_all noreply and verbosity noreply.
    r.send(b"verbosity 1 noreply\r\nflush_all noreply\r\nget a b c n\r\n");
    r.expect(b"END\r\n");
}

fn pipelined_across_cores(cores: usize) {
    let s = Server::start_with_memcache(cores);
    let mut r = s.memcache_raw();
    let mut req = String::new();
    for i in 0..100 {
        req += &format!(
            "set pipe:{i} {i} 0 {}\r\nval-{i}\r\n",
            format!("val-{i}").len()
        );
    }
    for i in (0..100).rev() {
        req += &format!("get pipe:{i}\r\n");
    }
    req += "get";
    for i in 0..100 {
        req += &format!(" pipe:{i} nope:{i}");
    }
    req += "\r\n";
    for i in 0..100 {
        req += &format!("incr pipe:{i} 1\r\ndelete pipe:{i}\r\n");
    }
    r.send(req.as_bytes());

    let mut want = String::new();
    for _ in 0..100 {
        want += "STORED\r\n";
    }
    for i in (0..100).rev() {
        want += &format!(
            "VALUE pipe:{i} {i} {}\r\nval-{i}\r\nEND\r\n",
            format!("val-{i}").len()
        );
    }
    for i in 0..100 {
        want += &format!(
            "VALUE pipe:{i} {i} {}\r\nval-{i}\r\n",
            format!("val-{i}").len()
        );
    }
    want += "END\r\n";
    for _ in 0..100 {
        want += "CLIENT_ERROR cannot increment or decrement non-numeric value\r\nDELETED\r\n";
    }
    r.expect(want.as_bytes());
}

fn meta_commands(cores: usize) {
    let s = Server::start_with_memcache(cores);
    let mut r = s.memcache_raw();

    // ms with F (flags) and T (ttl); mg with v f t s k O.
    exchange(&mut r, "ms mk 2 F5 T0\r\nhi\r\n", "HD\r\n");
    exchange(
        &mut r,
        "mg mk v f t s k O123\r\n",
        "VA 2 f5 t-1 s2 kmk O123\r\nhi\r\n",
    );
    exchange(&mut r, "mg mk\r\n", "HD\r\n");
    exchange(&mut r, "mg mk s\r\n", "HD s2\r\n");
    exchange(&mut r, "mg missing v\r\n", "EN\r\n");
    exchange(&mut r, "mg missing v k Oab\r\n", "EN kmissing Oab\r\n");
    // c: the same CAS as gets.
    let cas = raw_cas(&mut r, "mk");
    exchange(&mut r, "mg mk c\r\n", &format!("HD c{cas}\r\n"));
    // The meta item is a normal item: get sees its flags.
    exchange(&mut r, "get mk\r\n", "VALUE mk 5 2\r\nhi\r\nEND\r\n");
    // T on mg touches; t reports it.
    exchange(&mut r, "mg mk T30 t\r\n", "HD t30\r\n");

    // b: base64 keys ("mykey"), echoed back with k.
    exchange(&mut r, "ms bXlrZXk= 3 b\r\nabc\r\n", "HD\r\n");
    exchange(
        &mut r,
        "mg bXlrZXk= b v k\r\n",
        "VA 3 kbXlrZXk= b\r\nabc\r\n",
    );
    exchange(&mut r, "get mykey\r\n", "VALUE mykey 0 3\r\nabc\r\nEND\r\n");
    exchange(&mut r, "md bXlrZXk= b\r\n", "HD\r\n");
    exchange(&mut r, "get mykey\r\n", "END\r\n");

    // ms modes: E add, A append, P prepend, R replace, S set; ms c returns the new CAS.
    exchange(&mut r, "ms x 1 MA\r\nz\r\n", "NS\r\n");
    exchange(&mut r, "ms x 1 MR\r\nz\r\n", "NS\r\n");
    exchange(&mut r, "ms x 1 ME\r\nz\r\n", "HD\r\n");
    exchange(&mut r, "ms x 1 ME\r\ny\r\n", "NS\r\n");
    exchange(&mut r, "ms x 1 MA\r\nw\r\n", "HD\r\n");
    exchange(&mut r, "ms x 1 MP\r\nv\r\n", "HD\r\n");
    exchange(&mut r, "mg x v\r\n", "VA 3\r\nvzw\r\n");
    exchange(&mut r, "ms x 1 MR\r\nr\r\n", "HD\r\n");
    exchange(&mut r, "ms x 2 MS\r\nss\r\n", "HD\r\n");
    exchange(&mut r, "mg x v\r\n", "VA 2\r\nss\r\n");
    r.send(b"ms x 1 c\r\nq\r\n");
    let line = r.read_line();
    assert!(line.starts_with("HD c"), "ms c: {line:?}");
    let cas: u64 = meta_flag(&line, 'c').parse().unwrap();
    assert_eq!(raw_cas(&mut r, "x"), cas, "ms c returns the stored CAS");
    // C: compare-and-swap; I without C is a plain set.
    exchange(&mut r, &format!("ms x 1 C{}\r\nn\r\n", cas + 1), "EX\r\n");
    exchange(&mut r, &format!("ms x 1 C{cas}\r\nm\r\n"), "HD\r\n");
    exchange(&mut r, "ms x 1 I\r\ni\r\n", "HD\r\n");
    exchange(&mut r, "mg x v\r\n", "VA 1\r\ni\r\n");
    // E: the caller picks the new CAS.
    if not_reference("meta flag E (newer memcached)") {
        exchange(&mut r, "ms e 1 E12345\r\nz\r\n", "HD\r\n");
        exchange(&mut r, "mg e c v\r\n", "VA 1 c12345\r\nz\r\n");
        assert_eq!(raw_cas(&mut r, "e"), 12345);
        exchange(&mut r, "ms e 1 C1 E999\r\ny\r\n", "EX\r\n");
        exchange(&mut r, "ms e 1 C12345 E999 c\r\ny\r\n", "HD c999\r\n");
        exchange(&mut r, "ma e2 N0 J1 E777 c\r\n", "HD c777\r\n");
        exchange(&mut r, "ma e2 E778 c v\r\n", "VA 1 c778\r\n2\r\n");
        exchange(&mut r, "gets e2\r\n", "VALUE e2 0 1 778\r\n2\r\nEND\r\n");
    }
    // ms with T sets a TTL; ms with k O echoes them.
    exchange(&mut r, "ms ttl 1 T100 k O7\r\nz\r\n", "HD kttl O7\r\n");
    r.send(b"mg ttl t\r\n");
    let ttl: i64 = meta_flag(&r.read_line(), 't').parse().unwrap();
    assert!((98..=100).contains(&ttl), "ms T100: ttl {ttl}");

    // md: delete, C compare, k/O.
    let cas = raw_cas(&mut r, "x");
    exchange(&mut r, &format!("md x C{}\r\n", cas + 1), "EX\r\n");
    exchange(&mut r, "md x k O9\r\n", "HD kx O9\r\n");
    exchange(&mut r, "md x\r\n", "NF\r\n");
    exchange(&mut r, "md nope O5 k\r\n", "NF O5 knope\r\n");
    exchange(&mut r, "mg x v\r\n", "EN\r\n");

    // ma: NF on a miss, N auto-creates with J as the initial value, D delta, M modes,
    // v value, t ttl, decrement stops at 0, non-numeric values are an error.
    exchange(&mut r, "ma cnt\r\n", "NF\r\n");
    exchange(&mut r, "ma cnt N0 J13\r\n", "HD\r\n");
    exchange(&mut r, "ma cnt v\r\n", "VA 2\r\n14\r\n");
    exchange(&mut r, "ma cnt MD D5 v\r\n", "VA 1\r\n9\r\n");
    exchange(&mut r, "ma cnt MI D100 v t\r\n", "VA 3 t-1\r\n109\r\n");
    exchange(&mut r, "ma cnt M+ D1 v\r\n", "VA 3\r\n110\r\n");
    exchange(&mut r, "ma cnt M- D1000 v\r\n", "VA 1\r\n0\r\n");
    exchange(&mut r, "ma viv N100 J5 v t\r\n", "VA 1 t100\r\n5\r\n");
    r.send(b"ma cnt c\r\n");
    let line = r.read_line();
    let cas: u64 = meta_flag(&line, 'c').parse().unwrap();
    assert_eq!(raw_cas(&mut r, "cnt"), cas, "ma c: {line:?}");
    exchange(&mut r, &format!("ma cnt C{} v\r\n", cas + 1), "EX\r\n");
    exchange(&mut r, &format!("ma cnt C{cas} v\r\n"), "VA 1\r\n2\r\n");
    let (flags, v) = raw_get(&mut r, "cnt").expect("cnt");
    assert_eq!((flags, String::from_utf8(v).unwrap().trim_end()), (0, "2"));
    exchange(&mut r, "set txt 0 0 3\r\nabc\r\n", "STORED\r\n");
    exchange(
        &mut r,
        "ma txt\r\n",
        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    );
    exchange(
        &mut r,
        "ma cnt D5 MX\r\n",
        "CLIENT_ERROR invalid mode for ma M token\r\n",
    );
    exchange(
        &mut r,
        "ma cnt Dx\r\n",
        "CLIENT_ERROR invalid or duplicate flag\r\n",
    );

    // me: exp, cas and size of an item; EN on a miss.
    exchange(&mut r, "ms dbg 4 T0\r\nabcd\r\n", "HD\r\n");
    let cas = raw_cas(&mut r, "dbg");
    r.send(b"me dbg\r\n");
    let line = r.read_line();
    assert!(line.starts_with("ME dbg exp=-1 "), "me: {line:?}");
    assert!(line.contains(&format!(" cas={cas}")), "me cas: {line:?}");
    assert!(
        line.ends_with("\r\n") && line.contains(" size="),
        "me: {line:?}"
    );
    exchange(&mut r, "me nope\r\n", "EN\r\n");

    // mn, and meta errors that keep the connection going.
    exchange(&mut r, "mn\r\n", "MN\r\n");
    exchange(
        &mut r,
        "ms x 1 MX\r\nz\r\nmn\r\n",
        "CLIENT_ERROR invalid mode for ms M token\r\nMN\r\n",
    );
    exchange(&mut r, "mg x v\r\n", "EN\r\n");
    exchange(
        &mut r,
        "ms bad! 1 b\r\nz\r\nmn\r\n",
        "CLIENT_ERROR error decoding key\r\nMN\r\n",
    );
    exchange(
        &mut r,
        "ms c\r\n",
        "CLIENT_ERROR bad command line format\r\n",
    );
    // Too large: the 2000000-byte block is skipped (an "mn" inside it is data), and the
    // command after it runs.
    let mut req = b"ms big 2000000\r\nmn\r\n".to_vec();
    req.resize(req.len() + 2_000_000 - 4, b'x');
    req.extend_from_slice(b"\r\nmn\r\n");
    r.send(&req);
    r.expect(b"SERVER_ERROR object too large for cache\r\nMN\r\n");
}

/// h, l, N, R, md I, ms I and the W/X/Z flags, as memcached 1.6.18 answers them (this
/// test also runs against a real memcached with BATON_ITEST_REFERENCE=memcached).
fn meta_recache_flags(cores: usize) {
    let s = Server::start_with_memcache(cores);
    let mut r = s.memcache_raw();
    exchange(&mut r, "ms hk 2 T60\r\nhi\r\n", "HD\r\n");
    exchange(&mut r, "mg hk h l v\r\n", "VA 2 h0 l0\r\nhi\r\n");
    exchange(&mut r, "mg hk h l t v\r\n", "VA 2 h1 l0 t60\r\nhi\r\n");
    // N vivifies a miss and wins; the next reader sees Z.
    r.send(b"mg viv v N30 t c\r\n");
    let first = r.read_line();
    assert!(
        first.starts_with("VA 0 t30 c") && first.ends_with(" W\r\n"),
        "{first:?}"
    );
    let c = meta_flag(&first, 'c');
    r.expect(b"\r\n");
    exchange(
        &mut r,
        "mg viv v t c\r\n",
        &format!("VA 0 t30 c{c} Z\r\n\r\n"),
    );
    exchange(
        &mut r,
        "mg viv2 N0 s\r\nmg viv2 s\r\n",
        "HD s0 W\r\nHD s0 Z\r\n",
    );
    // R wins once the TTL is below the token.
    exchange(&mut r, "ms rk 1 T100\r\nx\r\n", "HD\r\n");
    exchange(&mut r, "mg rk v R200 t\r\n", "VA 1 t100 W\r\nx\r\n");
    exchange(&mut r, "mg rk v R200 t\r\n", "VA 1 t100 Z\r\nx\r\n");
    // md I marks stale: X, and the first reader wins; a set makes the item fresh.
    exchange(&mut r, "ms st 1 T100\r\nx\r\n", "HD\r\n");
    exchange(&mut r, "md st I T30\r\n", "HD\r\n");
    exchange(&mut r, "mg st v t\r\n", "VA 1 t30 X W\r\nx\r\n");
    exchange(&mut r, "mg st v t\r\n", "VA 1 t30 Z X\r\nx\r\n");
    exchange(
        &mut r,
        "ms st 1 T100\r\ny\r\nmg st v t\r\n",
        "HD\r\nVA 1 t100\r\ny\r\n",
    );
    exchange(&mut r, "md nokey I\r\n", "NF\r\n");
    // ms I with a CAS older than the item's stores the data, stale.
    exchange(&mut r, "ms iv 1\r\n1\r\n", "HD\r\n");
    r.send(b"mg iv c\r\n");
    let old = meta_flag(&r.read_line(), 'c');
    exchange(&mut r, "ms iv 1\r\n2\r\n", "HD\r\n");
    exchange(&mut r, &format!("ms iv 1 I C{old}\r\n3\r\n"), "HD\r\n");
    exchange(&mut r, "mg iv v\r\n", "VA 1 X W\r\n3\r\n");
}

fn meta_quiet_mode(cores: usize) {
    let s = Server::start_with_memcache(cores);
    let mut r = s.memcache_raw();
    // q hides HD on ms/md, EN on mg and every success of ma (its value too, as memcached
    // does); other codes (NS, NF, EX) still come back; mn ends a batch.
    exchange(&mut r, "ma n N0 J5\r\n", "HD\r\n");
    let mut req = String::new();
    req += "ms a 1 q\r\nA\r\n"; // HD: hidden
    req += "ms b 1 q T0 F3\r\nB\r\n"; // HD: hidden
    req += "ms a 1 ME q\r\nX\r\n"; // NS: shown
    req += "mg nope v q\r\n"; // EN: hidden
    req += "mg a v q k\r\n"; // hit: shown
    req += "mg nope2 v q k O1\r\n"; // EN: hidden
    req += "md b q\r\n"; // HD: hidden
    req += "md nope q\r\n"; // NF: shown
    req += "ma n q\r\n"; // HD: hidden
    req += "ma n v q\r\n"; // success with a value: hidden too
    req += "ma nope q\r\n"; // NF: shown
    req += "ms a 1 q C999999999999\r\nY\r\n"; // EX: shown
    req += "mn\r\n";
    r.send(req.as_bytes());
    r.expect(b"NS\r\nVA 1 ka\r\nA\r\nNF\r\nNF\r\nEX\r\nMN\r\n");
    // What the quiet commands did.
    exchange(
        &mut r,
        "get a b n\r\n",
        "VALUE a 0 1\r\nA\r\nVALUE n 0 1\r\n7\r\nEND\r\n",
    );
    // Auto-creating with q is a success too (memcached 1.6.18 still answered HD).
    if not_reference("ma q N on a miss is hidden (newer memcached)") {
        exchange(&mut r, "ma viv q N0 J3\r\nmn\r\n", "MN\r\n");
        exchange(&mut r, "get viv\r\n", "VALUE viv 0 1\r\n3\r\nEND\r\n");
    }
    // Many quiet gets across cores: only the hits come back, then MN.
    let mut req = String::new();
    let mut want = String::new();
    for i in 0..50 {
        req += &format!("ms q:{i} 1 q\r\n{}\r\n", i % 10);
    }
    for i in 0..100 {
        req += &format!("mg q:{i} v q k\r\n");
        if i < 50 {
            want += &format!("VA 1 kq:{i}\r\n{}\r\n", i % 10);
        }
    }
    req += "mn\r\n";
    want += "MN\r\n";
    r.send(req.as_bytes());
    r.expect(want.as_bytes());
}

fn stats_fields_and_counts(cores: usize) {
    let s = Server::builder(cores)
        .memcache()
        .args(&["--maxmemory", "64mb"])
        .start();
    let mut r = s.memcache_raw();
    let version = {
        r.send(b"version\r\n");
        let line = r.read_line();
        line.strip_prefix("VERSION ")
            .unwrap_or_else(|| panic!("version: {line:?}"))
            .trim_end()
            .to_string()
    };
    let s0 = stats(&mut r);
    for name in [
        "pid",
        "uptime",
        "version",
        "curr_connections",
        "total_connections",
        "cmd_get",
        "cmd_set",
        "get_hits",
        "get_misses",
        "curr_items",
        "total_items",
        "bytes",
        "evictions",
        "limit_maxbytes",
        "threads",
    ] {
        assert!(s0.contains_key(name), "stats lacks {name}: {s0:?}");
    }
    assert_eq!(stat(&s0, "pid"), i64::from(s.pid()));
    assert_eq!(s0["version"], version);
    assert!(stat(&s0, "uptime") >= 0);
    assert_eq!(stat(&s0, "threads"), cores as i64);
    assert_eq!(stat(&s0, "limit_maxbytes"), 64 * 1024 * 1024);
    assert_eq!(stat(&s0, "evictions"), 0);
    assert_eq!(stat(&s0, "curr_items"), 0);
    assert!(stat(&s0, "curr_connections") >= 1);

    // Two more connections (each answered once, so surely accepted).
    let mut others: Vec<Raw> = (0..2).map(|_| s.memcache_raw()).collect();
    for o in &mut others {
        exchange(o, "mn\r\n", "MN\r\n");
    }
    let o = &mut others[0];
    exchange(o, "set s1 0 0 5\r\nhello\r\n", "STORED\r\n");
    exchange(o, "set s2 0 0 5\r\nworld\r\n", "STORED\r\n");
    exchange(o, "set s3 0 0 1\r\nx\r\n", "STORED\r\n");
    exchange(o, "set s1 0 0 2\r\nhi\r\n", "STORED\r\n"); // an overwrite: not a new item
    exchange(
        o,
        "get s1 s2 nope\r\n",
        "VALUE s1 0 2\r\nhi\r\nVALUE s2 0 5\r\nworld\r\nEND\r\n",
    );
    exchange(o, "get nope2\r\n", "END\r\n");
    exchange(o, "delete s3\r\n", "DELETED\r\n");
    exchange(o, "touch s1 100\r\n", "TOUCHED\r\n");
    exchange(o, "touch s3 100\r\n", "NOT_FOUND\r\n");
    let s1 = stats(&mut r);
    let delta = |name: &str| stat(&s1, name) - stat(&s0, name);
    assert_eq!(delta("curr_connections"), 2, "curr_connections");
    if memcached_reference() {
        // memcached also counts the harness's readiness probe, whenever its worker gets to it
        assert!(delta("total_connections") >= 2, "total_connections");
    } else {
        assert_eq!(delta("total_connections"), 2, "total_connections");
    }
    assert_eq!(delta("cmd_set"), 4, "cmd_set");
    assert_eq!(delta("cmd_get"), 4, "cmd_get (one per key)");
    assert_eq!(delta("get_hits"), 2, "get_hits");
    assert_eq!(delta("get_misses"), 2, "get_misses");
    assert_eq!(stat(&s1, "curr_items"), 2, "curr_items");
    assert_eq!(delta("cmd_touch"), 2, "cmd_touch");
    assert_eq!(delta("touch_hits"), 1, "touch_hits");
    assert_eq!(delta("touch_misses"), 1, "touch_misses");
    assert!(
        delta("bytes") > 0,
        "bytes grows with items: {s0:?} -> {s1:?}"
    );
    assert_eq!(stat(&s1, "evictions"), 0);
    assert!(stat(&s1, "uptime") >= stat(&s0, "uptime"));

    // Closing a connection lowers curr_connections (bounded polling: the close is
    // noticed asynchronously).
    others.pop();
    assert!(
        eventually(Duration::from_secs(5), || stat(
            &stats(&mut r),
            "curr_connections"
        ) == stat(
            &s1,
            "curr_connections"
        ) - 1),
        "curr_connections after a close"
    );

    // stats reset zeroes the counters, not the items.
    exchange(&mut r, "stats reset\r\n", "RESET\r\n");
    let s2 = stats(&mut r);
    for name in ["cmd_get", "cmd_set", "get_hits", "get_misses"] {
        assert_eq!(stat(&s2, name), 0, "{name} after stats reset");
    }
    assert_eq!(stat(&s2, "curr_items"), 2, "curr_items after stats reset");
    exchange(&mut r, "stats nosuch\r\n", "ERROR\r\n");

    // total_items counts every successful store (checked last, after everything else).
    assert_eq!(
        stat(&s1, "total_items") - stat(&s0, "total_items"),
        4,
        "total_items after 4 successful stores"
    );
}

fn version_verbosity_quit(cores: usize) {
    let s = Server::start_with_memcache(cores);
    let mut r = s.memcache_raw();
    r.send(b"version\r\n");
    let line = r.read_line();
    assert!(
        line.starts_with("VERSION ") && line.ends_with("\r\n") && line.len() > 10,
        "version: {line:?}"
    );
    exchange(&mut r, "verbosity 1\r\n", "OK\r\n");
    exchange(&mut r, "verbosity 0\r\n", "OK\r\n");
    exchange(&mut r, "flush_all 0\r\n", "OK\r\n");
    exchange(&mut r, "flush_all\r\n", "OK\r\n");
    // quit closes without a reply, even with more commands behind it.
    r.send(b"quit\r\nversion\r\n");
    r.expect_closed();
    // The server goes on.
    let mut r2 = s.memcache_raw();
    exchange(&mut r2, "mn\r\n", "MN\r\n");
}

fn binary_protocol_is_closed(cores: usize) {
    if !not_reference("binary protocol (memcached speaks it)") {
        return;
    }
    let s = Server::start_with_memcache(cores);
    let mut keep = s.memcache_raw();
    exchange(&mut keep, "set k 0 0 1\r\nv\r\n", "STORED\r\n");
    // A binary GET request header: magic 0x80, opcode 0x00, key length 1, body 1.
    let mut bin = s.memcache_raw();
    let mut req = vec![0x80u8, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 1];
    req.extend_from_slice(&[0; 12]);
    req.push(b'k');
    bin.send(&req);
    bin.expect_closed();
    // The 0x80 byte alone is enough.
    let mut bin2 = s.memcache_raw();
    bin2.send(&[0x80]);
    bin2.expect_closed();
    // Others keep working, old and new connections alike.
    exchange(&mut keep, "get k\r\n", "VALUE k 0 1\r\nv\r\nEND\r\n");
    let mut fresh = s.memcache_raw();
    exchange(&mut fresh, "get k\r\n", "VALUE k 0 1\r\nv\r\nEND\r\n");
}

/// A rejected storage command muted by `noreply` as a connection's first command leaves
/// the parser skipping its data block, which may start with 0x80 in a later read: that is
/// data being skipped, not the binary protocol.
fn rejected_first_block_starting_with_0x80_is_skipped(cores: usize) {
    let s = Server::start_with_memcache(cores);
    let mut r = s.memcache_raw();
    // 2 MiB, over the 1 MiB default limit: skipped over many reads, each starting inside
    // the block, with 0x80.
    let len = 2 << 20;
    let mut req = format!("set big 0 0 {len} noreply\r\n").into_bytes();
    req.resize(req.len() + len, 0x80);
    req.extend_from_slice(b"\r\n");
    r.send(&req);
    r.send(b"version\r\n");
    let line = r.read_line();
    assert!(
        line.starts_with("VERSION "),
        "the connection survives the skipped block: {line:?}"
    );
    exchange(&mut r, "get big\r\n", "END\r\n");
}

fn long_lines(cores: usize) {
    if !not_reference("CLIENT_ERROR line too long (Baton's documented difference)") {
        return;
    }
    let s = Server::start_with_memcache(cores);
    // A non-retrieval line over 2048 bytes: the error, then the close.
    let mut r = s.memcache_raw();
    r.send(format!("{}\r\nversion\r\n", "a".repeat(3000)).as_bytes());
    r.expect(b"CLIENT_ERROR line too long\r\n");
    r.expect_closed();
    // Even without its newline yet.
    let mut r = s.memcache_raw();
    r.send(format!("set {}", "k".repeat(4000)).as_bytes());
    r.expect(b"CLIENT_ERROR line too long\r\n");
    r.expect_closed();
    // A multi-get line may be far longer (here ~60 KB).
    let mut r = s.memcache_raw();
    exchange(&mut r, "set long:7 0 0 1\r\nz\r\n", "STORED\r\n");
    let keys: Vec<String> = (0..5000).map(|i| format!("long:{i}")).collect();
    exchange(
        &mut r,
        &format!("get {}\r\n", keys.join(" ")),
        "VALUE long:7 0 1\r\nz\r\nEND\r\n",
    );
}

fn incr_stores_plain_digits(cores: usize) {
    if !not_reference("incr/decr store plain digits (memcached pads with spaces)") {
        return;
    }
    let s = Server::start_with_memcache(cores);
    let mut r = s.memcache_raw();
    exchange(&mut r, "set n 0 0 3\r\n100\r\n", "STORED\r\n");
    exchange(&mut r, "decr n 91\r\n", "9\r\n");
    assert_eq!(raw_get(&mut r, "n"), Some((0, b"9".to_vec())));
    exchange(&mut r, "set f 77 0 2\r\n99\r\n", "STORED\r\n");
    exchange(&mut r, "incr f 1\r\n", "100\r\n");
    assert_eq!(
        raw_get(&mut r, "f"),
        Some((77, b"100".to_vec())),
        "incr keeps flags"
    );
}

// ---------------------------------------------------------------------------------------
// 3. Cross-protocol visibility
// ---------------------------------------------------------------------------------------

fn cross_protocol(cores: usize) {
    if !not_reference("cross-protocol (needs Baton's Redis port)") {
        return;
    }
    let s = Server::start_with_memcache(cores);
    let mut r = s.memcache_raw();
    let mut con = s.redis();

    // memcached -> Redis, for keys on every core.
    for i in 0..20 {
        exchange(
            &mut r,
            &format!("set x:{i} {i} 0 {}\r\nmc-{i}\r\n", format!("mc-{i}").len()),
            "STORED\r\n",
        );
    }
    for i in 0..20 {
        assert_eq!(q(&mut con, &format!("GET x:{i}")), bulk(format!("mc-{i}")));
    }
    assert_eq!(as_int(&q(&mut con, "DBSIZE")), 20);
    // meta set too, and incr's result.
    exchange(&mut r, "ms meta 3 F9\r\nabc\r\n", "HD\r\n");
    assert_eq!(q(&mut con, "GET meta"), bulk("abc"));
    exchange(
        &mut r,
        "set num 0 0 1\r\n7\r\nincr num 5\r\n",
        "STORED\r\n12\r\n",
    );
    assert_eq!(q(&mut con, "GET num"), bulk("12"));

    // Redis -> memcached: flags 0.
    for i in 0..20 {
        assert_eq!(q(&mut con, &format!("SET y:{i} redis-{i}")), ok());
    }
    for i in 0..20 {
        assert_eq!(
            raw_get(&mut r, &format!("y:{i}")),
            Some((0, format!("redis-{i}").into_bytes()))
        );
    }
    // Redis writes are visible to meta commands and incr as well.
    assert_eq!(q(&mut con, "SET counter 41"), ok());
    exchange(&mut r, "incr counter 1\r\n", "42\r\n");
    assert_eq!(q(&mut con, "GET counter"), bulk("42"));
    assert_eq!(q(&mut con, "INCRBY counter 8"), int(50));
    exchange(&mut r, "mg counter v f\r\n", "VA 2 f0\r\n50\r\n");
    // A Redis overwrite of a memcached item resets its flags to 0 ...
    assert_eq!(q(&mut con, "SET x:1 fromredis"), ok());
    assert_eq!(raw_get(&mut r, "x:1"), Some((0, b"fromredis".to_vec())));
    // ... while a Redis APPEND to it keeps the value's bytes coherent.
    assert_eq!(as_int(&q(&mut con, "APPEND x:2 +r")), 6);
    assert_eq!(
        raw_get(&mut r, "x:2").map(|v| v.1),
        Some(b"mc-2+r".to_vec())
    );
    // A Redis TTL shows in mg t.
    assert_eq!(q(&mut con, "SET ttl v EX 100"), ok());
    r.send(b"mg ttl t v\r\n");
    let line = r.read_line();
    let ttl: i64 = meta_flag(&line, 't').parse().unwrap();
    assert!(
        (98..=100).contains(&ttl),
        "Redis EX 100 seen by mg: {line:?}"
    );
    r.expect(b"v\r\n");
    // And a memcached exptime shows in Redis TTL.
    exchange(&mut r, "set mcttl 0 200 1\r\nz\r\n", "STORED\r\n");
    let ttl = as_int(&q(&mut con, "TTL mcttl"));
    assert!(
        (198..=200).contains(&ttl),
        "memcached exptime 200 seen by TTL: {ttl}"
    );

    // Redis DEL removes memcached items.
    assert_eq!(as_int(&q(&mut con, "DEL x:3 x:4 meta")), 3);
    for key in ["x:3", "x:4", "meta"] {
        assert_eq!(raw_get(&mut r, key), None, "{key} after DEL");
    }
    exchange(&mut r, "mg x:3 v\r\n", "EN\r\n");
    // memcached delete removes what Redis sees.
    exchange(&mut r, "delete y:0\r\n", "DELETED\r\n");
    assert_eq!(q(&mut con, "GET y:0"), nil());
    assert_eq!(as_int(&q(&mut con, "EXISTS y:0")), 0);

    // memcached flush_all empties what Redis sees.
    assert!(as_int(&q(&mut con, "DBSIZE")) > 0);
    exchange(&mut r, "flush_all\r\n", "OK\r\n");
    assert_eq!(as_int(&q(&mut con, "DBSIZE")), 0);
    assert_eq!(q(&mut con, "GET y:5"), nil());
    // And Redis FLUSHALL empties what memcached sees.
    exchange(&mut r, "set z 0 0 1\r\n1\r\n", "STORED\r\n");
    assert_eq!(q(&mut con, "FLUSHALL"), ok());
    assert_eq!(raw_get(&mut r, "z"), None);
}

// ---------------------------------------------------------------------------------------
// 4. Bad input never crashes or hangs
// ---------------------------------------------------------------------------------------

/// Sends `bytes` on a fresh memcached connection, half-closes it, and reads whatever comes
/// back until the server closes it. Write errors (the server may close early) are fine; a
/// hang is not: the read timeout turns it into a failure.
fn throw_garbage(s: &Server, bytes: &[u8]) {
    let mut stream = std::net::TcpStream::connect(s.memcache_addr()).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    for chunk in bytes.chunks(512) {
        if stream.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut got = 0usize;
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                break
            }
            Err(e) => panic!(
                "the server neither answered nor closed a garbage connection: {e} \
                 (after {got} reply bytes)"
            ),
        }
    }
}

fn garbage_input(cores: usize) {
    let s = Server::start_with_memcache(cores);
    let mut keep = s.memcache_raw();
    exchange(&mut keep, "mn\r\n", "MN\r\n");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ cores as u64);

    // Pure random bytes (the first one is not the binary magic, so the text parser runs).
    let mut bytes: Vec<u8> = (0..8 * 1024).map(|_| rng.next() as u8).collect();
    bytes[0] = b'g';
    throw_garbage(&s, &bytes);

    // Random lines of protocol words, numbers and junk: reaches deep into the parsers.
    const WORDS: &[&str] = &[
        "get",
        "gets",
        "gat",
        "gats",
        "set",
        "add",
        "replace",
        "append",
        "prepend",
        "cas",
        "delete",
        "incr",
        "decr",
        "touch",
        "verbosity",
        "stats",
        "version",
        "mg",
        "ms",
        "md",
        "ma",
        "me",
        "mn",
        "noreply",
        "k",
        "key",
        "0",
        "1",
        "-1",
        "5",
        "100",
        "4294967296",
        "18446744073709551616",
        "99999999999",
        "v",
        "q",
        "b",
        "T10",
        "F3",
        "C1",
        "E5",
        "N0",
        "J9",
        "D2",
        "MI",
        "MD",
        "ME",
        "MA",
        "O1",
        "bXlrZXk=",
        "!!",
        "\t",
        "",
    ];
    for _ in 0..4 {
        let mut text = Vec::new();
        while text.len() < 4 * 1024 {
            let n = 1 + rng.below(7);
            for i in 0..n {
                if i > 0 {
                    text.push(b' ');
                }
                text.extend_from_slice(WORDS[rng.below(WORDS.len())].as_bytes());
            }
            match rng.below(4) {
                0 => text.extend_from_slice(b"\n"),
                1 => text.push(rng.next() as u8),
                _ => text.extend_from_slice(b"\r\n"),
            }
        }
        throw_garbage(&s, &text);
    }

    // The connection opened before still works, a new one too, and the process is alive.
    exchange(&mut keep, "set k 0 0 1\r\nv\r\n", "STORED\r\n");
    let mut fresh = s.memcache_raw();
    exchange(&mut fresh, "get k\r\n", "VALUE k 0 1\r\nv\r\nEND\r\n");
    if !memcached_reference() {
        assert_eq!(q(&mut s.redis(), "PING"), simple("PONG"));
    }
    let mut server = s;
    assert!(
        server.wait_exit(Duration::from_millis(1)).is_none(),
        "the server exited; stderr:\n{}",
        server.stderr()
    );
}

cores_tests!(
    client_storage_commands,
    client_flags_round_trip,
    client_multi_get_across_cores,
    client_large_values,
    max_item_size_flag,
    error_paths,
    exptime_semantics,
    noreply_everywhere,
    pipelined_across_cores,
    meta_commands,
    meta_quiet_mode,
    meta_recache_flags,
    stats_fields_and_counts,
    version_verbosity_quit,
    binary_protocol_is_closed,
    rejected_first_block_starting_with_0x80_is_skipped,
    long_lines,
    incr_stores_plain_digits,
    cross_protocol,
    garbage_input,
);
