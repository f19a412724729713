//! Text-protocol conversations, byte for byte, against a real shard.

use super::testing::Session;
use super::*;
use baton_engine::memcache::{McItem, MetaResult, MetaStatus};
use baton_engine::store::NO_EXPIRY;

fn cas(s: &mut Session, key: &str) -> u64 {
    s.shard.lookup(key.as_bytes(), s.now_ms).unwrap().cas()
}

#[test]
fn set_get_gets() {
    let mut s = Session::new();
    assert_eq!(s.talk("set foo 5 0 3\r\nbar\r\n"), "STORED\r\n");
    assert_eq!(s.talk("get foo\r\n"), "VALUE foo 5 3\r\nbar\r\nEND\r\n");
    let c = cas(&mut s, "foo");
    assert_eq!(
        s.talk("gets foo\r\n"),
        format!("VALUE foo 5 3 {c}\r\nbar\r\nEND\r\n")
    );
    assert_eq!(s.talk("get nope\r\n"), "END\r\n");
}

#[test]
fn multi_get_returns_hits_in_order() {
    let mut s = Session::new();
    s.talk("set a 1 0 1\r\nA\r\nset c 3 0 1\r\nC\r\n");
    assert_eq!(
        s.talk("get c missing a c\r\n"),
        "VALUE c 3 1\r\nC\r\nVALUE a 1 1\r\nA\r\nVALUE c 3 1\r\nC\r\nEND\r\n"
    );
    let (ca, cc) = (cas(&mut s, "a"), cas(&mut s, "c"));
    assert_eq!(
        s.talk("gets a c\r\n"),
        format!("VALUE a 1 1 {ca}\r\nA\r\nVALUE c 3 1 {cc}\r\nC\r\nEND\r\n")
    );
    assert_eq!(s.talk("gat 100\r\n"), "END\r\n");
}

#[test]
fn values_are_binary_safe() {
    let mut s = Session::new();
    let mut input = b"set bin 0 0 6\r\n".to_vec();
    input.extend_from_slice(b"\r\n\0\xff\n\r");
    input.extend_from_slice(b"\r\nget bin\r\n");
    let mut want = b"STORED\r\nVALUE bin 0 6\r\n".to_vec();
    want.extend_from_slice(b"\r\n\0\xff\n\r\r\nEND\r\n");
    assert_eq!(s.feed(&input), want);
    assert_eq!(
        s.talk("set empty 0 0 0\r\n\r\nget empty\r\n"),
        "STORED\r\nVALUE empty 0 0\r\n\r\nEND\r\n"
    );
}

#[test]
fn storage_replies() {
    let mut s = Session::new();
    assert_eq!(s.talk("add k 1 0 1\r\na\r\n"), "STORED\r\n");
    assert_eq!(s.talk("add k 1 0 1\r\nb\r\n"), "NOT_STORED\r\n");
    assert_eq!(s.talk("replace nope 1 0 1\r\nb\r\n"), "NOT_STORED\r\n");
    assert_eq!(s.talk("replace k 2 0 1\r\nb\r\n"), "STORED\r\n");
    assert_eq!(s.talk("append k 9 0 2\r\ncd\r\n"), "STORED\r\n");
    assert_eq!(s.talk("prepend k 9 0 2\r\n01\r\n"), "STORED\r\n");
    assert_eq!(s.talk("append nope 0 0 1\r\nx\r\n"), "NOT_STORED\r\n");
    assert_eq!(s.talk("get k\r\n"), "VALUE k 2 5\r\n01bcd\r\nEND\r\n");
}

#[test]
fn cas_replies() {
    let mut s = Session::new();
    assert_eq!(s.talk("cas k 0 0 1 1\r\nx\r\n"), "NOT_FOUND\r\n");
    s.talk("set k 0 0 1\r\na\r\n");
    let c = cas(&mut s, "k");
    assert_eq!(
        s.talk(&format!("cas k 0 0 1 {}\r\nx\r\n", c + 1)),
        "EXISTS\r\n"
    );
    assert_eq!(s.talk(&format!("cas k 7 0 1 {c}\r\nx\r\n")), "STORED\r\n");
    assert_eq!(s.talk(&format!("cas k 7 0 1 {c}\r\ny\r\n")), "EXISTS\r\n");
    assert_eq!(s.talk("get k\r\n"), "VALUE k 7 1\r\nx\r\nEND\r\n");
}

#[test]
fn delete_replies() {
    let mut s = Session::new();
    s.talk("set k 0 0 1\r\na\r\n");
    assert_eq!(s.talk("delete k\r\n"), "DELETED\r\n");
    assert_eq!(s.talk("delete k\r\n"), "NOT_FOUND\r\n");
    s.talk("set k 0 0 1\r\na\r\n");
    assert_eq!(s.talk("delete k 0\r\n"), "DELETED\r\n");
    assert_eq!(
        s.talk("delete k 1\r\n"),
        "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
    );
}

#[test]
fn incr_decr_replies() {
    let mut s = Session::new();
    assert_eq!(s.talk("incr n 1\r\n"), "NOT_FOUND\r\n");
    s.talk("set n 0 0 2\r\n10\r\n");
    assert_eq!(s.talk("incr n 5\r\n"), "15\r\n");
    assert_eq!(s.talk("decr n 100\r\n"), "0\r\n");
    assert_eq!(
        s.talk("incr n 18446744073709551615\r\n"),
        "18446744073709551615\r\n"
    );
    assert_eq!(s.talk("incr n 2\r\n"), "1\r\n");
    assert_eq!(
        s.talk("incr n abc\r\n"),
        "CLIENT_ERROR invalid numeric delta argument\r\n"
    );
    s.talk("set t 0 0 3\r\nabc\r\n");
    assert_eq!(
        s.talk("incr t 1\r\n"),
        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
    );
}

#[test]
fn touch_and_gat_replies() {
    let mut s = Session::new();
    assert_eq!(s.talk("touch k 10\r\n"), "NOT_FOUND\r\n");
    s.talk("set k 3 0 1\r\nv\r\n");
    assert_eq!(s.talk("touch k 10\r\n"), "TOUCHED\r\n");
    s.advance(10_000);
    assert_eq!(s.talk("get k\r\n"), "END\r\n");
    s.talk("set k 3 0 1\r\nv\r\n");
    let c = cas(&mut s, "k");
    assert_eq!(
        s.talk("gats 5 k\r\n"),
        format!("VALUE k 3 1 {c}\r\nv\r\nEND\r\n")
    );
    s.advance(4_999);
    assert_eq!(s.talk("gat 0 k\r\n"), "VALUE k 3 1\r\nv\r\nEND\r\n");
    s.advance(1_000_000);
    assert_eq!(
        s.talk("get k\r\n"),
        "VALUE k 3 1\r\nv\r\nEND\r\n",
        "gat 0 made it permanent"
    );
}

#[test]
fn expiry_through_the_protocol() {
    let mut s = Session::new();
    s.talk("set k 0 2 1\r\nv\r\nset gone 0 -1 1\r\nv\r\n");
    assert_eq!(s.talk("get gone\r\n"), "END\r\n");
    s.advance(1_999);
    assert_eq!(s.talk("get k\r\n"), "VALUE k 0 1\r\nv\r\nEND\r\n");
    s.advance(1);
    assert_eq!(s.talk("get k\r\n"), "END\r\n");
}

#[test]
fn noreply_mutes_replies_and_errors() {
    let mut s = Session::new();
    let quiet = "set k 0 0 1 noreply\r\na\r\n\
                 add k 0 0 1 noreply\r\nb\r\n\
                 append k 0 0 1 noreply\r\nc\r\n\
                 incr k 1 noreply\r\n\
                 incr k x noreply\r\n\
                 touch k 10 noreply\r\n\
                 delete nope noreply\r\n\
                 set k 0 0 1 noreply\r\nabc\r\n\
                 verbosity 1 noreply\r\n\
                 flush_all 0 noreply\r\n";
    // Only the ERROR for the CRLF left after the bad chunk ("a" + "bc") comes back.
    assert_eq!(s.talk(quiet), "ERROR\r\n");
    assert_eq!(s.talk("get k\r\n"), "END\r\n", "flushed");
}

#[test]
fn connection_command_replies() {
    let mut s = Session::new();
    assert_eq!(
        s.talk("version\r\n"),
        format!("VERSION {}\r\n", Session::VERSION)
    );
    assert_eq!(s.talk("verbosity 1\r\n"), "OK\r\n");
    assert_eq!(s.talk("mn\r\n"), "MN\r\n");
    s.talk("set k 0 0 1\r\nv\r\n");
    assert_eq!(s.talk("flush_all\r\n"), "OK\r\n");
    assert_eq!(s.talk("get k\r\n"), "END\r\n");
    s.talk("set k 0 0 1\r\nv\r\n");
    assert_eq!(s.talk("flush_all 2\r\n"), "OK\r\n");
    assert_eq!(s.talk("get k\r\n"), "VALUE k 0 1\r\nv\r\nEND\r\n");
    s.advance(2_000);
    assert_eq!(s.talk("get k\r\n"), "END\r\n");
    assert_eq!(s.talk("stats reset\r\n"), "RESET\r\n");
    assert_eq!(s.talk("quit\r\nversion\r\n"), "");
    assert!(s.closed);
}

#[test]
fn stats_reply() {
    let mut s = Session::new();
    s.talk("set a 0 0 1\r\n1\r\nget a b\r\ntouch a 1\r\ncas a 0 0 1 1\r\nx\r\n");
    let out = s.talk("stats\r\n");
    for want in [
        "STAT pid 0\r\n",
        "STAT version 1.6.0-baton\r\n",
        "STAT rusage_user 0.000000\r\n",
        "STAT cmd_get 2\r\n",
        "STAT cmd_set 2\r\n",
        "STAT cmd_touch 1\r\n",
        "STAT get_hits 1\r\n",
        "STAT get_misses 1\r\n",
        "STAT touch_hits 1\r\n",
        "STAT cas_badval 1\r\n",
        "STAT curr_items 1\r\n",
    ] {
        assert!(out.contains(want), "{want:?} missing from {out}");
    }
    assert!(out.starts_with("STAT pid ") && out.ends_with("STAT evictions 0\r\nEND\r\n"));
    let mut us = Vec::new();
    let st = McStats {
        rusage_user_us: 3_000_042,
        ..McStats::default()
    };
    encode_stats(&st, &mut us);
    assert!(String::from_utf8(us)
        .unwrap()
        .contains("STAT rusage_user 3.000042\r\n"));
}

#[test]
fn error_replies_through_the_session() {
    let mut s = Session::with_limits(McLimits {
        max_item_size: 4,
        ..McLimits::default()
    });
    assert_eq!(s.talk("bogus\r\n"), "ERROR\r\n");
    assert_eq!(
        s.talk("set k 0 0 5\r\nhello\r\nget k\r\n"),
        "SERVER_ERROR object too large for cache\r\nEND\r\n"
    );
    assert_eq!(s.stats.store_too_large, 1);
    assert_eq!(
        s.talk("set k 0 0 2\r\nabcd\r\n"),
        "CLIENT_ERROR bad data chunk\r\nERROR\r\n"
    );
    // Appends past the size limit are refused like memcached's failed allocation.
    s.talk("set k 0 0 3\r\nabc\r\n");
    assert_eq!(s.talk("append k 0 0 2\r\nde\r\n"), "NOT_STORED\r\n");
    let long = "x".repeat(3000);
    assert_eq!(s.talk(&long), "CLIENT_ERROR line too long\r\n");
    assert!(s.closed);
}

#[test]
fn redis_written_items_read_back() {
    let mut s = Session::new();
    s.shard.put(b"r", b"redis", NO_EXPIRY, 0);
    assert_eq!(s.talk("get r\r\n"), "VALUE r 0 5\r\nredis\r\nEND\r\n");
    s.talk("set m 9 0 2\r\nmc\r\n");
    assert_eq!(
        s.shard.lookup(b"m", s.now_ms).unwrap().value()[..],
        b"mc"[..]
    );
}

#[test]
fn encoder_edge_cases() {
    let text = McReply::Text { noreply: false };
    let mut out = Vec::new();
    encode(&text, &McResult::OutOfMemory, &mut out);
    encode(&text, &McResult::Value(None), &mut out);
    assert_eq!(
        out,
        b"SERVER_ERROR out of memory storing object\r\nSERVER_ERROR unexpected result\r\n"
    );
    let mut out = Vec::new();
    encode(
        &McReply::Text { noreply: true },
        &McResult::OutOfMemory,
        &mut out,
    );
    assert!(out.is_empty());
    // A multi-get reassembled from several cores.
    let hit = |k: &str| {
        McResult::Value(Some(McItem {
            key: k.into(),
            value: b"v".to_vec(),
            flags: 1,
            cas: 9,
        }))
    };
    let mut out = Vec::new();
    encode_multi(true, &[hit("a"), McResult::Value(None), hit("b")], &mut out);
    assert_eq!(out, b"VALUE a 1 1 9\r\nv\r\nVALUE b 1 1 9\r\nv\r\nEND\r\n");
    let mut out = Vec::new();
    encode(
        &McReply::Get { cas: false },
        &McResult::Meta(MetaResult::status(MetaStatus::Ok)),
        &mut out,
    );
    assert_eq!(out, b"END\r\n", "a stray result still closes the retrieval");
    let mut out = Vec::new();
    encode_error("ERROR", &mut out);
    encode_ok(false, &mut out);
    encode_ok(true, &mut out);
    assert_eq!(out, b"ERROR\r\nOK\r\n");
}

#[test]
fn writes_are_told_from_reads_and_refused_as_memcached_errors() {
    let parse = |line: &str| {
        let mut buf = bytes::BytesMut::from(line.as_bytes());
        McParser::new()
            .parse(&mut buf, &McLimits::default())
            .unwrap()
            .unwrap_or_else(|| panic!("{line:?} is incomplete"))
    };
    for w in [
        "set k 0 0 1\r\nv\r\n",
        "add k 0 0 1 noreply\r\nv\r\n",
        "replace k 0 0 1\r\nv\r\n",
        "append k 0 0 1\r\nv\r\n",
        "prepend k 0 0 1\r\nv\r\n",
        "cas k 0 0 1 5\r\nv\r\n",
        "incr k 1\r\n",
        "decr k 1\r\n",
        "delete k\r\n",
        "touch k 10\r\n",
        "gat 10 k\r\n",
        "gats 10 a b\r\n",
        "flush_all\r\n",
        "ms k 1\r\nv\r\n",
        "md k\r\n",
        "ma k\r\n",
        "mg k v T30\r\n",
        "mg k N30\r\n",
    ] {
        assert!(parse(w).writes(), "{w:?} writes");
    }
    for r in [
        "get k\r\n",
        "gets a b\r\n",
        "mg k v\r\n",
        "me k\r\n",
        "mn\r\n",
        "stats\r\n",
        "version\r\n",
        "bogus\r\n",
    ] {
        assert!(!parse(r).writes(), "{r:?} only reads");
    }
    let refusal = |line: &str| {
        let mut out = Vec::new();
        match parse(line) {
            McRequest::Single { reply, .. } => encode_refusal(&reply, READONLY, &mut out),
            other => panic!("{other:?}"),
        }
        String::from_utf8(out).unwrap()
    };
    let line = format!("{READONLY}\r\n");
    assert_eq!(refusal("set k 0 0 1\r\nv\r\n"), line);
    assert_eq!(refusal("set k 0 0 1 noreply\r\nv\r\n"), "");
    assert_eq!(refusal("ms k 1 q\r\nv\r\n"), line, "meta errors ignore q");
    assert_eq!(refusal("gat 10 k\r\n"), line);
}
