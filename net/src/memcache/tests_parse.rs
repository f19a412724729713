//! Parser tests: request structure, framing, limits and error texts.

use bytes::BytesMut;

use super::lex::{parse_i32, parse_u32, parse_u64};
use super::*;
use baton_engine::memcache::{StoreMode, StoreOp};

fn parse_with(input: &[u8], limits: &McLimits) -> (Result<Option<McRequest>, McError>, usize) {
    let mut buf = BytesMut::from(input);
    let mut p = McParser::new();
    let r = p.parse(&mut buf, limits);
    (r, buf.len())
}

/// The first request of `input`, which must be complete.
fn one(input: &str) -> McRequest {
    match parse_with(input.as_bytes(), &McLimits::default()) {
        (Ok(Some(r)), _) => r,
        other => panic!("{input:?} parsed as {other:?}"),
    }
}

fn error_of(input: &str) -> &'static str {
    match one(input) {
        McRequest::Error(text) => text,
        other => panic!("{input:?}: expected an error, got {other:?}"),
    }
}

/// Every request in `input`, parsed in one go; the buffer must end empty.
fn all(input: &[u8]) -> Vec<McRequest> {
    let mut buf = BytesMut::from(input);
    let mut p = McParser::new();
    let mut out = Vec::new();
    while let Some(r) = p.parse(&mut buf, &McLimits::default()).unwrap() {
        out.push(r);
    }
    assert!(
        buf.is_empty(),
        "left over: {:?}",
        String::from_utf8_lossy(&buf)
    );
    out
}

fn get(key: &str, touch: Option<i64>) -> McOp {
    McOp::Get {
        key: key.into(),
        touch,
    }
}

#[test]
fn single_and_multi_get() {
    assert_eq!(
        one("get k\r\n"),
        McRequest::Single {
            op: get("k", None),
            reply: McReply::Get { cas: false }
        }
    );
    assert_eq!(
        one("gets  a b   c\r\n"),
        McRequest::Multi {
            ops: vec![get("a", None), get("b", None), get("c", None)],
            cas: true
        }
    );
    assert_eq!(
        one("gat 10 a b\n"),
        McRequest::Multi {
            ops: vec![get("a", Some(10)), get("b", Some(10))],
            cas: false
        }
    );
    assert_eq!(
        one("gats -1 a\r\n"),
        McRequest::Single {
            op: get("a", Some(-1)),
            reply: McReply::Get { cas: true }
        }
    );
    // memcached answers a gat without keys with a bare END.
    assert_eq!(
        one("gat 10\r\n"),
        McRequest::Multi {
            ops: vec![],
            cas: false
        }
    );
    assert_eq!(one("bget k\r\n"), one("get k\r\n"));
}

#[test]
fn retrieval_errors() {
    assert_eq!(error_of("get\r\n"), "ERROR");
    assert_eq!(error_of("gat\r\n"), "ERROR");
    assert_eq!(
        error_of("gat x k\r\n"),
        "CLIENT_ERROR invalid exptime argument"
    );
    let long = "k".repeat(251);
    assert_eq!(
        error_of(&format!("get a {long} b\r\n")),
        "CLIENT_ERROR bad command line format"
    );
    let max = "k".repeat(250);
    assert!(matches!(
        one(&format!("get {max}\r\n")),
        McRequest::Single { .. }
    ));
}

#[test]
fn storage_commands() {
    let store = |mode, flags, exptime, cas| {
        McOp::Store(StoreOp {
            mode,
            key: b"k".to_vec(),
            flags,
            exptime,
            data: b"a\r\nb".to_vec(),
            cas,
        })
    };
    let cases = [
        (
            "set k 1 2 4\r\na\r\nb\r\n",
            store(StoreMode::Set, 1, 2, 0),
            false,
        ),
        (
            "add k 0 -1 4 noreply\r\na\r\nb\r\n",
            store(StoreMode::Add, 0, -1, 0),
            true,
        ),
        (
            "replace k 4294967295 0 4\r\na\r\nb\r\n",
            store(StoreMode::Replace, u32::MAX, 0, 0),
            false,
        ),
        (
            "append k 0 0 4\r\na\r\nb\r\n",
            store(StoreMode::Append, 0, 0, 0),
            false,
        ),
        (
            "prepend k 0 0 4\r\na\r\nb\r\n",
            store(StoreMode::Prepend, 0, 0, 0),
            false,
        ),
        (
            "cas k 0 0 4 99\r\na\r\nb\r\n",
            store(StoreMode::Cas, 0, 0, 99),
            false,
        ),
        (
            "cas k 0 0 4 18446744073709551615 noreply\r\na\r\nb\r\n",
            store(StoreMode::Cas, 0, 0, u64::MAX),
            true,
        ),
        // A sixth token that is not noreply is ignored, as memcached does.
        (
            "set k 1 2 4 whatever\r\na\r\nb\r\n",
            store(StoreMode::Set, 1, 2, 0),
            false,
        ),
    ];
    for (input, op, noreply) in cases {
        let want = McRequest::Single {
            op,
            reply: McReply::Text { noreply },
        };
        assert_eq!(all(input.as_bytes()), vec![want], "{input:?}");
    }
}

#[test]
fn storage_arity_and_format_errors() {
    assert_eq!(error_of("set k 0 0\r\n"), "ERROR");
    assert_eq!(error_of("set k 0 0 1 noreply x\r\n"), "ERROR");
    assert_eq!(error_of("cas k 0 0 1\r\n"), "ERROR");
    // A bad length cannot be skipped: the data line is then read as a command.
    let r = all(b"set k 0 0 -1\r\nset k 0 0 xyz\r\nhello\r\n");
    assert_eq!(
        r,
        vec![
            McRequest::Error("CLIENT_ERROR bad command line format"),
            McRequest::Error("CLIENT_ERROR bad command line format"),
            McRequest::Error("ERROR"),
        ]
    );
    // With a good length, the data block is skipped whatever else is wrong.
    for bad in [
        "set k x 0 5\r\nhello\r\n",
        "set k 0 x 5\r\nhello\r\n",
        "set k 4294967296 0 5\r\nhello\r\n",
        "set k -1 0 5\r\nhello\r\n",
        "cas k 0 0 5 -1\r\nhello\r\n",
    ] {
        let r = all(format!("{bad}version\r\n").as_bytes());
        assert_eq!(
            r,
            vec![
                McRequest::Error("CLIENT_ERROR bad command line format"),
                McRequest::Conn(McConn::Version)
            ],
            "{bad:?}"
        );
    }
    let long = "k".repeat(251);
    let r = all(format!("set {long} 0 0 2\r\nhi\r\nversion\r\n").as_bytes());
    assert_eq!(
        r[0],
        McRequest::Error("CLIENT_ERROR bad command line format")
    );
    assert_eq!(r[1], McRequest::Conn(McConn::Version));
}

#[test]
fn bad_data_chunk_consumes_exactly_the_claimed_bytes() {
    let r = all(b"set k 0 0 3\r\nabcde\r\nversion\r\n");
    // "abc" then "de" where CRLF belongs; memcached then reads "\r\nversion" on.
    assert_eq!(r[0], McRequest::Error("CLIENT_ERROR bad data chunk"));
    assert_eq!(r[1], McRequest::Error("ERROR"));
    assert_eq!(r[2], McRequest::Conn(McConn::Version));
    // noreply mutes it.
    let r = all(b"set k 0 0 1 noreply\r\nabc\r\nversion\r\n");
    assert_eq!(
        r,
        vec![McRequest::Error("ERROR"), McRequest::Conn(McConn::Version)]
    );
}

#[test]
fn too_large_items_are_skipped_as_they_arrive() {
    let limits = McLimits {
        max_item_size: 10,
        ..McLimits::default()
    };
    let mut p = McParser::new();
    let mut buf = BytesMut::from(&b"set k 0 0 20\r\n0123456789"[..]);
    let r = p.parse(&mut buf, &limits).unwrap();
    assert_eq!(
        r,
        Some(McRequest::Error("SERVER_ERROR object too large for cache"))
    );
    assert_eq!(p.parse(&mut buf, &limits).unwrap(), None);
    assert!(buf.is_empty(), "the partial block is dropped, not buffered");
    assert_eq!(p.swallowing(), 12);
    buf.extend_from_slice(b"0123456789\r\nversion\r\n");
    assert_eq!(
        p.parse(&mut buf, &limits).unwrap(),
        Some(McRequest::Conn(McConn::Version))
    );
    assert_eq!(p.swallowing(), 0);
    // A handed-off connection resumes the skip.
    let mut q = McParser::resume(3);
    let mut buf = BytesMut::from(&b"xyzversion\r\n"[..]);
    assert_eq!(
        q.parse(&mut buf, &limits).unwrap(),
        Some(McRequest::Conn(McConn::Version))
    );
    // At the limit is fine.
    let (r, _) = parse_with(b"set k 0 0 10\r\n0123456789\r\n", &limits);
    assert!(matches!(r, Ok(Some(McRequest::Single { .. }))));
    // noreply mutes the error but still skips.
    let (r, left) = parse_with(b"set k 0 0 11 noreply\r\n01234567890\r\nquit\r\n", &limits);
    assert_eq!((r, left), (Ok(Some(McRequest::Conn(McConn::Quit))), 0));
}

#[test]
fn waits_for_the_whole_request_at_every_split() {
    let input = b"set key 5 0 10\r\n0123\r\n6789\r\ngets a b\r\ndelete key 0\n";
    let whole = all(input);
    assert_eq!(whole.len(), 3);
    for cut in 0..input.len() {
        let mut p = McParser::new();
        let mut buf = BytesMut::from(&input[..cut]);
        let mut got = Vec::new();
        while let Some(r) = p.parse(&mut buf, &McLimits::default()).unwrap() {
            got.push(r);
        }
        buf.extend_from_slice(&input[cut..]);
        while let Some(r) = p.parse(&mut buf, &McLimits::default()).unwrap() {
            got.push(r);
        }
        assert_eq!(got, whole, "cut at {cut}");
        assert!(buf.is_empty());
    }
}

#[test]
fn partial_data_is_not_consumed() {
    let (r, left) = parse_with(b"set k 0 0 5\r\nhel", &McLimits::default());
    assert_eq!((r, left), (Ok(None), 16));
    let (r, left) = parse_with(b"set k 0 0 5\r\nhello\r", &McLimits::default());
    assert_eq!((r, left), (Ok(None), 19));
    let (r, left) = parse_with(b"get k", &McLimits::default());
    assert_eq!((r, left), (Ok(None), 5));
}

#[test]
fn delete_forms() {
    let del = |noreply| McRequest::Single {
        op: McOp::Delete { key: b"k".to_vec() },
        reply: McReply::Text { noreply },
    };
    assert_eq!(one("delete k\r\n"), del(false));
    assert_eq!(one("delete k 0\r\n"), del(false));
    assert_eq!(one("delete k noreply\r\n"), del(true));
    assert_eq!(one("delete k 0 noreply\r\n"), del(true));
    let usage = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";
    assert_eq!(error_of("delete k 10\r\n"), usage);
    assert_eq!(error_of("delete k 0 0\r\n"), usage);
    assert_eq!(
        all(b"delete k 5 noreply\r\n"),
        vec![],
        "noreply mutes the usage error"
    );
    assert_eq!(error_of("delete\r\n"), "ERROR");
    assert_eq!(error_of("delete k 0 noreply x\r\n"), "ERROR");
    let long = "k".repeat(251);
    assert_eq!(
        error_of(&format!("delete {long}\r\n")),
        "CLIENT_ERROR bad command line format"
    );
}

#[test]
fn incr_decr_touch() {
    assert_eq!(
        one("incr n 18446744073709551615\r\n"),
        McRequest::Single {
            op: McOp::Arith {
                key: b"n".to_vec(),
                incr: true,
                delta: u64::MAX
            },
            reply: McReply::Text { noreply: false }
        }
    );
    assert_eq!(
        one("decr n 3 noreply\r\n"),
        McRequest::Single {
            op: McOp::Arith {
                key: b"n".to_vec(),
                incr: false,
                delta: 3
            },
            reply: McReply::Text { noreply: true }
        }
    );
    for bad in ["x", "-1", "18446744073709551616", "1.0"] {
        let line = format!("incr n {bad} z\r\n");
        assert_eq!(
            error_of(&line),
            "CLIENT_ERROR invalid numeric delta argument",
            "{line:?}"
        );
    }
    assert_eq!(all(b"incr n x noreply\r\n"), vec![]);
    assert_eq!(error_of("incr n\r\n"), "ERROR");
    assert_eq!(
        one("touch k -5\r\n"),
        McRequest::Single {
            op: McOp::Touch {
                key: b"k".to_vec(),
                exptime: -5
            },
            reply: McReply::Text { noreply: false }
        }
    );
    assert_eq!(
        error_of("touch k soon\r\n"),
        "CLIENT_ERROR invalid exptime argument"
    );
    assert_eq!(
        error_of("touch k 2147483648\r\n"),
        "CLIENT_ERROR invalid exptime argument"
    );
    assert_eq!(error_of("touch k\r\n"), "ERROR");
}

#[test]
fn connection_commands() {
    let conn = |c| McRequest::Conn(c);
    assert_eq!(one("version\r\n"), conn(McConn::Version));
    assert_eq!(one("quit\r\n"), conn(McConn::Quit));
    assert_eq!(one("mn\r\n"), conn(McConn::NoOp));
    assert_eq!(
        one("verbosity 1\r\n"),
        conn(McConn::Verbosity { noreply: false })
    );
    assert_eq!(
        one("verbosity 1 noreply\r\n"),
        conn(McConn::Verbosity { noreply: true })
    );
    assert_eq!(
        error_of("verbosity x\r\n"),
        "CLIENT_ERROR bad command line format"
    );
    assert_eq!(error_of("verbosity\r\n"), "ERROR");
    let flush = |delay, noreply| conn(McConn::FlushAll { delay, noreply });
    assert_eq!(one("flush_all\r\n"), flush(0, false));
    assert_eq!(one("flush_all noreply\r\n"), flush(0, true));
    assert_eq!(one("flush_all 10\r\n"), flush(10, false));
    assert_eq!(one("flush_all 10 noreply\r\n"), flush(10, true));
    assert_eq!(
        error_of("flush_all soon\r\n"),
        "CLIENT_ERROR invalid exptime argument"
    );
    assert_eq!(error_of("flush_all 1 2 3\r\n"), "ERROR");
    assert_eq!(one("stats\r\n"), conn(McConn::Stats));
    assert_eq!(one("stats reset\r\n"), conn(McConn::StatsReset));
    assert_eq!(
        error_of("stats slabs\r\n"),
        "CLIENT_ERROR stats subcommand not supported"
    );
    assert_eq!(error_of("stats bogus\r\n"), "ERROR");
    assert_eq!(error_of("shutdown\r\n"), "ERROR: shutdown not enabled");
    assert_eq!(
        error_of("lru_crawler crawl all\r\n"),
        "CLIENT_ERROR command not supported"
    );
}

#[test]
fn unknown_and_malformed_lines() {
    for line in [
        "\r\n",
        "\n",
        "x\r\n",
        "GET k\r\n",
        "sets k\r\n",
        "mx k\r\n",
        "   \r\n",
    ] {
        assert_eq!(error_of(line), "ERROR", "{line:?}");
    }
    let (r, _) = parse_with(b"GET / HTTP/1.1\r\n", &McLimits::default());
    assert_eq!(r, Err(McError::Http));
    assert_eq!(McError::Http.reply(), None);
}

#[test]
fn line_length_limits() {
    let limits = McLimits {
        max_line: 64,
        max_get_line: 200,
        ..McLimits::default()
    };
    let long_set = format!("set {} 0 0 1", "k".repeat(80));
    let (r, _) = parse_with(long_set.as_bytes(), &limits);
    assert_eq!(r, Err(McError::LineTooLong), "no newline yet");
    let (r, _) = parse_with(format!("{long_set}\r\nx\r\n").as_bytes(), &limits);
    assert_eq!(r, Err(McError::LineTooLong), "with a newline");
    assert_eq!(
        McError::LineTooLong.reply(),
        Some(&b"CLIENT_ERROR line too long\r\n"[..])
    );
    // A multi-get may run on, up to its own limit.
    let keys: String = (0..30).map(|i| format!(" key{i}")).collect();
    let (r, left) = parse_with(format!("get{keys}").as_bytes(), &limits);
    assert_eq!((r, left > 64), (Ok(None), true));
    let (r, _) = parse_with(format!("get{keys}\r\n").as_bytes(), &limits);
    assert!(matches!(r, Ok(Some(McRequest::Multi { ref ops, .. })) if ops.len() == 30));
    let keys: String = (0..60).map(|i| format!(" key{i}")).collect();
    let (r, _) = parse_with(format!("gets{keys}").as_bytes(), &limits);
    assert_eq!(r, Err(McError::LineTooLong));
}

#[test]
fn binary_protocol_detection() {
    assert!(is_binary_protocol(0x80));
    for b in [b'g', b's', b'm', 0x81, 0] {
        assert!(!is_binary_protocol(b));
    }
}

#[test]
fn number_tokens() {
    assert_eq!(parse_i32(b"0"), Some(0));
    assert_eq!(parse_i32(b"-2147483648"), Some(-2147483648));
    assert_eq!(parse_i32(b"+2147483647"), Some(2147483647));
    for bad in [
        &b""[..],
        b"-",
        b"2147483648",
        b"-2147483649",
        b"1x",
        b" 1",
        b"--1",
    ] {
        assert_eq!(parse_i32(bad), None, "{bad:?}");
    }
    assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
    assert_eq!(parse_u32(b"4294967296"), None);
    assert_eq!(parse_u64(b"+7"), Some(7));
    assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
    for bad in [&b""[..], b"-1", b"18446744073709551616", b"0x10", b"+"] {
        assert_eq!(parse_u64(bad), None, "{bad:?}");
    }
}

#[test]
fn framed_parse_hands_back_each_requests_own_bytes() {
    let input = b"set a 1 2 3\r\nxyz\r\nbogus\r\nget a b\r\nmg a v\r\nget";
    let limits = McLimits {
        max_item_size: 1024,
        ..McLimits::default()
    };
    let mut buf = BytesMut::from(&input[..]);
    let mut p = McParser::new();
    let mut frames = Vec::new();
    while let Some((r, raw)) = p.parse_framed(&mut buf, &limits).unwrap() {
        frames.push((r, raw));
    }
    let raws: Vec<&[u8]> = frames.iter().map(|(_, raw)| &raw[..]).collect();
    assert_eq!(
        raws,
        vec![
            &b"set a 1 2 3\r\nxyz\r\n"[..],
            b"bogus\r\n",
            b"get a b\r\n",
            b"mg a v\r\n",
        ]
    );
    // Each frame parses alone to the same request.
    for (r, raw) in &frames {
        let mut alone = BytesMut::from(&raw[..]);
        assert_eq!(
            McParser::new().parse(&mut alone, &limits).unwrap().as_ref(),
            Some(r)
        );
    }
    assert!(matches!(frames[1].0, McRequest::Error(_)));
    assert_eq!(&buf[..], b"get", "a partial request stays");
}
