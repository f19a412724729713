//! Request parsing: every framing rule and error text, and round trips.

use bytes::{Bytes, BytesMut};
use quickcheck::{quickcheck, TestResult};

use super::testing::encode_command;
use super::{parse_command, Limits, ParseProgress, ParseState, ProtocolError};

type Parsed = Result<Option<Vec<Vec<u8>>>, String>;

fn tiny() -> Limits {
    Limits {
        max_bulk_len: 100,
        max_multibulk_len: 50,
        max_inline_len: 8,
    }
}

fn owned(args: Vec<Bytes>) -> Vec<Vec<u8>> {
    args.into_iter().map(|a| a.to_vec()).collect()
}

/// One call on `input`; also returns how many bytes were left unconsumed.
fn once_with(input: &[u8], limits: &Limits, authenticated: bool) -> (Parsed, usize) {
    let mut buf = BytesMut::from(input);
    let result = parse_command(&mut buf, limits, authenticated)
        .map(|r| r.map(owned))
        .map_err(|ProtocolError(text)| text);
    (result, buf.len())
}

fn once(input: &[u8]) -> Parsed {
    once_with(input, &Limits::default(), true).0
}

fn error_of(input: &[u8], limits: &Limits, authenticated: bool) -> String {
    match once_with(input, limits, authenticated).0 {
        Err(text) => text,
        other => panic!("{:?}: expected an error, got {other:?}", show(input)),
    }
}

fn show(input: &[u8]) -> String {
    String::from_utf8_lossy(input).into_owned()
}

fn words(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter().map(|w| w.as_bytes().to_vec()).collect()
}

/// Feeds `input` in pieces of `chunk` bytes through one `ParseState` (or stateless calls),
/// collecting every command and the error, if any.
fn feed(
    input: &[u8],
    chunk: usize,
    stateful: bool,
    authenticated: bool,
) -> (Vec<Vec<Vec<u8>>>, Option<String>) {
    let limits = Limits::default();
    let mut state = ParseState::default();
    let mut buf = BytesMut::new();
    let mut commands = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            let result = if stateful {
                state.parse_command(&mut buf, &limits, authenticated)
            } else {
                parse_command(&mut buf, &limits, authenticated)
            };
            match result {
                Ok(Some(args)) => commands.push(owned(args)),
                Ok(None) => break,
                Err(ProtocolError(text)) => return (commands, Some(text)),
            }
        }
    }
    (commands, None)
}

#[test]
fn multibulk_command() {
    let frame = b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n";
    assert_eq!(
        once_with(frame, &Limits::default(), false),
        (Ok(Some(words(&["GET", "key"]))), 0)
    );
}

#[test]
fn multibulk_args_are_binary_safe() {
    let frame = encode_command(&[&b"SET"[..], b"k", b"a\r\nb\0\xff\r\n", b""]);
    assert_eq!(
        once(&frame),
        Ok(Some(vec![
            b"SET".to_vec(),
            b"k".to_vec(),
            b"a\r\nb\0\xff\r\n".to_vec(),
            vec![]
        ]))
    );
}

#[test]
fn multibulk_args_are_slices_of_the_input() {
    // A name that is no command's, and one spelled in mixed case, are slices too.
    for name in ["NOSUCHCMD", "SeT"] {
        let frame = encode_command(&[name, "key", "value"]);
        let mut buf = BytesMut::from(&frame[..]);
        let base = buf.as_ptr() as usize;
        let args = parse_command(&mut buf, &Limits::default(), true)
            .unwrap()
            .unwrap();
        let value_at = frame.windows(5).position(|w| w == b"value").unwrap();
        assert_eq!(args[2].as_ptr() as usize, base + value_at);
        assert_eq!(args[1].as_ptr() as usize, base + value_at - 9);
        assert_eq!(
            args[0].as_ptr() as usize,
            base + 5 + name.len().to_string().len() + 2
        );
    }
}

#[test]
fn command_names_as_clients_spell_them_are_static_copies() {
    for name in ["SET", "set"] {
        let frame = encode_command(&[name, "key", "value"]);
        let mut buf = BytesMut::from(&frame[..]);
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + frame.len();
        let args = parse_command(&mut buf, &Limits::default(), true)
            .unwrap()
            .unwrap();
        assert_eq!(&args[0][..], name.as_bytes());
        assert!(!range.contains(&(args[0].as_ptr() as usize)));
        assert!(range.contains(&(args[1].as_ptr() as usize)));
    }
}

#[test]
fn pipelined_commands_come_one_per_call() {
    let mut input = encode_command(&["PING"]);
    input.extend(encode_command(&["GET", "a"]));
    input.extend_from_slice(b"*1\r\n$4\r\nEC");
    let mut buf = BytesMut::from(&input[..]);
    let limits = Limits::default();
    let first = parse_command(&mut buf, &limits, true).unwrap().unwrap();
    assert_eq!(owned(first), words(&["PING"]));
    let second = parse_command(&mut buf, &limits, true).unwrap().unwrap();
    assert_eq!(owned(second), words(&["GET", "a"]));
    assert_eq!(parse_command(&mut buf, &limits, true), Ok(None));
    assert_eq!(&buf[..], b"*1\r\n$4\r\nEC");
}

#[test]
fn incomplete_multibulk_consumes_nothing() {
    let frame = encode_command(&["SET", "key", "some value"]);
    for cut in 0..frame.len() {
        assert_eq!(
            once_with(&frame[..cut], &Limits::default(), true),
            (Ok(None), cut),
            "prefix of {cut} bytes"
        );
    }
}

#[test]
fn empty_and_negative_multibulks_are_skipped() {
    assert_eq!(
        once_with(b"*0\r\n", &Limits::default(), true),
        (Ok(None), 0)
    );
    assert_eq!(
        once_with(
            b"*-1\r\n*0\r\n*1\r\n$4\r\nPING\r\n",
            &Limits::default(),
            false
        )
        .0,
        Ok(Some(words(&["PING"])))
    );
    assert_eq!(
        once_with(b"*0\r\n*1\r\n", &Limits::default(), true),
        (Ok(None), 4)
    );
}

#[test]
fn invalid_multibulk_length() {
    let want = "ERR Protocol error: invalid multibulk length";
    let too_many = format!("*{}\r\n", Limits::DEFAULT_MAX_MULTIBULK_LEN + 1);
    for input in [
        &b"*abc\r\n"[..],
        b"*\r\n",
        b"*+1\r\n",
        b"*01\r\n",
        b"* 1\r\n",
        b"*1 \r\n",
        b"*-0\r\n",
        b"*99999999999999999999\r\n",
        b"*1\rX",
        too_many.as_bytes(),
    ] {
        assert_eq!(
            error_of(input, &Limits::default(), true),
            want,
            "{:?}",
            show(input)
        );
    }
    let at_limit = format!("*{}\r\n", Limits::DEFAULT_MAX_MULTIBULK_LEN);
    assert_eq!(once(at_limit.as_bytes()), Ok(None));
    assert_eq!(error_of(b"*51\r\n", &tiny(), true), want);
}

#[test]
fn unauthenticated_multibulk_length() {
    let want = "ERR Protocol error: unauthenticated multibulk length";
    assert_eq!(error_of(b"*11\r\n", &Limits::default(), false), want);
    assert_eq!(once_with(b"*10\r\n", &Limits::default(), false).0, Ok(None));
    assert_eq!(once_with(b"*11\r\n", &Limits::default(), true).0, Ok(None));
}

#[test]
fn too_big_mbulk_count_string() {
    let want = "ERR Protocol error: too big mbulk count string";
    assert_eq!(error_of(b"*11111111", &tiny(), true), want);
    assert_eq!(once_with(b"*1111111", &tiny(), true), (Ok(None), 8));
    // The terminator may sit right at the limit.
    assert_eq!(
        once_with(b"*0000000\r\n", &tiny(), true).0,
        Err("ERR Protocol error: invalid multibulk length".into())
    );
    let long = vec![b'1'; Limits::DEFAULT_MAX_INLINE_LEN + 1];
    let mut input = b"*".to_vec();
    input.extend_from_slice(&long);
    assert_eq!(error_of(&input, &Limits::default(), true), want);
}

#[test]
fn expected_dollar() {
    assert_eq!(
        error_of(b"*1\r\n:3\r\n", &Limits::default(), true),
        "ERR Protocol error: expected '$', got ':'"
    );
    assert_eq!(
        error_of(b"*2\r\n$1\r\na\r\n\x01", &Limits::default(), true),
        "ERR Protocol error: expected '$', got '\\x01'"
    );
}

#[test]
fn invalid_bulk_length() {
    let want = "ERR Protocol error: invalid bulk length";
    let too_long = format!("*1\r\n${}\r\n", Limits::DEFAULT_MAX_BULK_LEN + 1);
    for input in [
        &b"*1\r\n$-1\r\n"[..],
        b"*1\r\n$abc\r\n",
        b"*1\r\n$\r\n",
        b"*1\r\n$03\r\n",
        b"*1\r\n$-0\r\n",
        b"*1\r\n$ 3\r\n",
        b"*1\r\n$3\rx",
        too_long.as_bytes(),
    ] {
        assert_eq!(
            error_of(input, &Limits::default(), true),
            want,
            "{:?}",
            show(input)
        );
    }
    let at_limit = format!("*1\r\n${}\r\n", Limits::DEFAULT_MAX_BULK_LEN);
    assert_eq!(once(at_limit.as_bytes()), Ok(None));
    assert_eq!(error_of(b"*1\r\n$101\r\n", &tiny(), true), want);
}

#[test]
fn unauthenticated_bulk_length() {
    let want = "ERR Protocol error: unauthenticated bulk length";
    assert_eq!(
        error_of(b"*1\r\n$16385\r\n", &Limits::default(), false),
        want
    );
    assert_eq!(
        once_with(b"*1\r\n$16384\r\n", &Limits::default(), false).0,
        Ok(None)
    );
    assert_eq!(
        once_with(b"*1\r\n$16385\r\n", &Limits::default(), true).0,
        Ok(None)
    );
}

#[test]
fn too_big_bulk_count_string() {
    let want = "ERR Protocol error: too big bulk count string";
    assert_eq!(error_of(b"*1\r\n$11111111", &tiny(), true), want);
    assert_eq!(once_with(b"*1\r\n$1111111", &tiny(), true).0, Ok(None));
}

#[test]
fn bulk_data_must_end_in_crlf() {
    let want = "ERR Protocol error: expected CRLF after bulk data";
    assert_eq!(
        error_of(b"*1\r\n$3\r\nfooXY", &Limits::default(), true),
        want
    );
    assert_eq!(
        error_of(b"*1\r\n$3\r\nfoo\rX", &Limits::default(), true),
        want
    );
    assert_eq!(
        error_of(b"*1\r\n$3\r\nfoo\n\r", &Limits::default(), true),
        want
    );
    assert_eq!(once(b"*1\r\n$3\r\nfoo\r"), Ok(None));
}

#[test]
fn inline_commands() {
    assert_eq!(
        once_with(b"PING\r\n", &Limits::default(), false),
        (Ok(Some(words(&["PING"]))), 0)
    );
    assert_eq!(once(b"PING\n"), Ok(Some(words(&["PING"]))));
    assert_eq!(
        once(b"  GET \t key  \r\n"),
        Ok(Some(words(&["GET", "key"])))
    );
    assert_eq!(
        once_with(b"GET key", &Limits::default(), true),
        (Ok(None), 7)
    );
    assert_eq!(
        once_with(b"PING\r\nrest", &Limits::default(), true),
        (Ok(Some(words(&["PING"]))), 4)
    );
}

#[test]
fn blank_inline_lines_are_skipped() {
    assert_eq!(
        once_with(b"\r\n\n \t \r\n", &Limits::default(), true),
        (Ok(None), 0)
    );
    assert_eq!(
        once_with(b"\r\n\nPING\r\n", &Limits::default(), true),
        (Ok(Some(words(&["PING"]))), 0)
    );
    assert_eq!(
        once_with(b"\r\n\r\nPI", &Limits::default(), true),
        (Ok(None), 2)
    );
}

#[test]
fn too_big_inline_request() {
    let want = "ERR Protocol error: too big inline request";
    assert_eq!(error_of(b"123456789", &tiny(), true), want);
    assert_eq!(error_of(b"1234567\r\r\n", &tiny(), true), want);
    assert_eq!(once_with(b"12345678", &tiny(), true).0, Ok(None));
    assert_eq!(
        once_with(b"123456\r\n", &tiny(), true).0,
        Ok(Some(words(&["123456"])))
    );
    assert_eq!(
        once_with(b"1234567\r\n", &tiny(), true).0,
        Ok(Some(words(&["1234567"])))
    );
    let long = vec![b'a'; Limits::DEFAULT_MAX_INLINE_LEN + 1];
    assert_eq!(error_of(&long, &Limits::default(), true), want);
}

#[test]
fn inline_quotes_and_escapes() {
    let cases: &[(&[u8], &[&[u8]])] = &[
        (b"set \"a b\" 'c d'\r\n", &[b"set", b"a b", b"c d"]),
        (
            b"\"\\x41\\x4a\\n\\r\\t\\b\\a\\\\\\\"z\"\n",
            &[b"AJ\n\r\t\x08\x07\\\"z"],
        ),
        (b"\"\\x4g\"\n", &[b"x4g"]),
        (b"\"\\q\"\n", &[b"q"]),
        (b"'it\\'s'\n", &[b"it's"]),
        (b"'a\\nb'\n", &[b"a\\nb"]),
        (b"foo\"bar baz\"\n", &[b"foobar baz"]),
        (b"a'b'\n", &[b"ab"]),
        (b"\"\" x\n", &[b"", b"x"]),
        (b"\"a\"\x0bb\n", &[b"a", b"b"]),
        (b"a\x0bb\n", &[b"a\x0bb"]),
        (b"\x0b\x0cPING\n", &[b"PING"]),
        (b"GET a\0b c\r\n", &[b"GET", b"a"]),
        (b"x\r\r\n", &[b"x"]),
    ];
    for (line, want) in cases {
        let want: Vec<Vec<u8>> = want.iter().map(|w| w.to_vec()).collect();
        assert_eq!(once(line), Ok(Some(want)), "{:?}", show(line));
    }
}

#[test]
fn unbalanced_quotes() {
    let want = "ERR Protocol error: unbalanced quotes in request";
    for line in [
        &b"GET \"abc\r\n"[..],
        b"GET 'abc\r\n",
        b"GET \"abc\"def\r\n",
        b"GET 'abc'def\r\n",
        b"GET \"abc\\\"\r\n",
        b"\"\\\r\n",
    ] {
        assert_eq!(
            error_of(line, &Limits::default(), true),
            want,
            "{:?}",
            show(line)
        );
    }
}

#[test]
fn plain_inline_words_are_slices_of_the_input() {
    let mut buf = BytesMut::from(&b"SET key \"v\\x41\"\r\n"[..]);
    let base = buf.as_ptr() as usize;
    let args = parse_command(&mut buf, &Limits::default(), true)
        .unwrap()
        .unwrap();
    assert_eq!(args[1].as_ptr() as usize, base + 4);
    assert_eq!(&args[2][..], b"vA");
}

#[test]
fn inline_and_multibulk_mix_in_a_pipeline() {
    let mut input = b"PING\r\n".to_vec();
    input.extend(encode_command(&["GET", "k"]));
    input.extend_from_slice(b"\r\nECHO \"hi there\"\n*0\r\n");
    let want = vec![
        words(&["PING"]),
        words(&["GET", "k"]),
        words(&["ECHO", "hi there"]),
    ];
    for chunk in [1, 2, 3, 7, input.len()] {
        assert_eq!(
            feed(&input, chunk, false, true),
            (want.clone(), None),
            "chunk {chunk}"
        );
        assert_eq!(
            feed(&input, chunk, true, true),
            (want.clone(), None),
            "chunk {chunk}"
        );
    }
}

#[test]
fn errors_are_found_however_the_input_is_split() {
    let mut input = encode_command(&["PING"]);
    input.extend_from_slice(b"*2\r\n$3\r\nGET\r\n:1\r\n");
    for chunk in [1, 2, 5, input.len()] {
        for stateful in [false, true] {
            let (commands, error) = feed(&input, chunk, stateful, true);
            assert_eq!(commands, vec![words(&["PING"])]);
            assert_eq!(
                error.as_deref(),
                Some("ERR Protocol error: expected '$', got ':'")
            );
        }
    }
}

#[test]
fn parse_state_survives_a_replaced_buffer() {
    let limits = Limits::default();
    let mut state = ParseState::default();
    let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$5\r\nab"[..]);
    assert_eq!(state.parse_command(&mut buf, &limits, true), Ok(None));
    let mut other = BytesMut::from(&b"PING\r\n"[..]);
    let args = state
        .parse_command(&mut other, &limits, true)
        .unwrap()
        .unwrap();
    assert_eq!(owned(args), words(&["PING"]));
}

#[test]
fn parse_state_parses_a_large_bulk_fed_in_small_pieces() {
    let value = vec![b'v'; 300_000];
    let frame = encode_command(&[&b"SET"[..], b"k", &value]);
    let (commands, error) = feed(&frame, 1000, true, true);
    assert_eq!(error, None);
    assert_eq!(commands, vec![vec![b"SET".to_vec(), b"k".to_vec(), value]]);
}

#[test]
fn protocol_error_displays_its_text() {
    let e = ProtocolError::new("invalid bulk length");
    assert_eq!(e.to_string(), "ERR Protocol error: invalid bulk length");
    assert_eq!(
        super::encode_to_vec(&e.to_reply(), 2),
        b"-ERR Protocol error: invalid bulk length\r\n"
    );
}

/// Any argument list survives encode -> parse, whole and fed in pieces of any size.
#[test]
fn multibulk_round_trip() {
    fn prop(args: Vec<Vec<u8>>, chunk: usize) -> TestResult {
        let frame = encode_command(&args);
        let mut buf = BytesMut::from(&frame[..]);
        let whole = parse_command(&mut buf, &Limits::default(), true);
        if args.is_empty() {
            // `*0` is skipped entirely.
            return TestResult::from_bool(whole == Ok(None) && buf.is_empty());
        }
        let Ok(Some(parsed)) = whole else {
            return TestResult::failed();
        };
        if owned(parsed) != args || !buf.is_empty() {
            return TestResult::failed();
        }
        let chunk = chunk % (frame.len() + 1) + 1;
        let want = (vec![args], None);
        TestResult::from_bool(
            feed(&frame, chunk, false, true) == want && feed(&frame, chunk, true, true) == want,
        )
    }
    quickcheck(prop as fn(Vec<Vec<u8>>, usize) -> TestResult);
}

/// A pipeline split at arbitrary points (not just even chunks) gives back every command.
#[test]
fn pipeline_round_trip_at_random_splits() {
    fn prop(commands: Vec<Vec<Vec<u8>>>, cuts: Vec<usize>) -> bool {
        let commands: Vec<_> = commands.into_iter().filter(|c| !c.is_empty()).collect();
        let input: Vec<u8> = commands.iter().flat_map(|c| encode_command(c)).collect();
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cuts.push(input.len());
        cuts.sort_unstable();
        let limits = Limits::default();
        let mut state = ParseState::default();
        let (mut buf, mut stateless_buf) = (BytesMut::new(), BytesMut::new());
        let (mut got, mut stateless_got) = (Vec::new(), Vec::new());
        let mut from = 0;
        for cut in cuts {
            buf.extend_from_slice(&input[from..cut]);
            stateless_buf.extend_from_slice(&input[from..cut]);
            from = cut;
            while let Ok(Some(args)) = state.parse_command(&mut buf, &limits, true) {
                got.push(owned(args));
            }
            while let Ok(Some(args)) = parse_command(&mut stateless_buf, &limits, true) {
                stateless_got.push(owned(args));
            }
        }
        got == commands && stateless_got == commands && buf.is_empty()
    }
    quickcheck(prop as fn(Vec<Vec<Vec<u8>>>, Vec<usize>) -> bool);
}

/// Inline words without special bytes come back as typed.
#[test]
fn inline_round_trip() {
    fn prop(words: Vec<String>) -> bool {
        let words: Vec<Vec<u8>> = words
            .iter()
            .map(|w| {
                w.bytes()
                    .filter(|b| b.is_ascii_alphanumeric())
                    .collect::<Vec<u8>>()
            })
            .filter(|w| !w.is_empty())
            .collect();
        let mut line = words.join(&b' ');
        line.extend_from_slice(b"\r\n");
        let want = if words.is_empty() { None } else { Some(words) };
        once(&line) == Ok(want)
    }
    quickcheck(prop as fn(Vec<String>) -> bool);
}

/// A state resumed from its progress reads on exactly as the original does.
#[test]
fn progress_resumes_mid_request() {
    let mut state = ParseState::default();
    let mut buf = BytesMut::from(&b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nab"[..]);
    let limits = Limits::default();
    assert_eq!(state.parse_command(&mut buf, &limits, true), Ok(None));
    let progress = state.progress();
    assert_eq!((progress.count, progress.args.len()), (3, 2));
    let mut resumed = ParseState::resume(progress, buf.len()).unwrap();
    assert_eq!(resumed, state);
    buf.extend_from_slice(b"cde\r\n");
    let args = resumed
        .parse_command(&mut buf, &limits, true)
        .unwrap()
        .unwrap();
    assert_eq!(owned(args), [&b"SET"[..], b"k", b"abcde"]);
}

/// Progress that no reading of a buffer that size could have made is refused, so the
/// parser never slices outside its buffer or out of order.
#[test]
fn progress_outside_the_buffer_is_refused() {
    let inside = ParseProgress {
        count: 3,
        pos: 20,
        bulk_len: Some(5),
        args: vec![(8, 11), (17, 18)],
        searched: 0,
    };
    assert!(ParseState::resume(inside.clone(), 20).is_ok());
    let refused = |p: ParseProgress| ParseState::resume(p, 20).unwrap_err();
    assert_eq!(
        refused(ParseProgress {
            pos: 21,
            ..inside.clone()
        }),
        "position past the buffered input"
    );
    assert_eq!(
        refused(ParseProgress {
            searched: 21,
            ..inside.clone()
        }),
        "searched past the buffered input"
    );
    assert_eq!(
        refused(ParseProgress {
            count: 2,
            ..inside.clone()
        }),
        "as many arguments read as announced, yet unfinished"
    );
    for args in [
        vec![(8, 11), (10, 18)],
        vec![(11, 8)],
        vec![(8, 11), (17, 19)],
        vec![(0, usize::MAX)],
    ] {
        assert!(ParseState::resume(
            ParseProgress {
                args,
                ..inside.clone()
            },
            20
        )
        .is_err());
    }
    assert_eq!(
        refused(ParseProgress { count: 0, ..inside }),
        "between requests, yet inside one"
    );
}

/// Headers read without a search for their line's end (`short_header`) give what the
/// general path gives, at the edges of its digit count and of the line limit.
#[test]
fn short_headers_at_their_edges() {
    let bulk = "ERR Protocol error: invalid bulk length";
    let mbulk = "ERR Protocol error: invalid multibulk length";
    // 18 digits (the short form's most) and 19 (the general path): both too long a bulk.
    assert_eq!(
        error_of(b"*1\r\n$123456789012345678\r\n", &Limits::default(), true),
        bulk
    );
    assert_eq!(
        error_of(b"*1\r\n$1234567890123456789\r\n", &Limits::default(), true),
        bulk
    );
    assert_eq!(
        error_of(b"*1\r\n$01\r\na\r\n", &Limits::default(), true),
        bulk
    );
    assert_eq!(once(b"*1\r\n$0\r\n\r\n"), Ok(Some(vec![vec![]])));
    // A line ending exactly at the limit is read; one byte past it is too long.
    assert_eq!(error_of(b"*1111111\r\n", &tiny(), true), mbulk);
    assert_eq!(
        error_of(b"*11111111\r\n", &tiny(), true),
        "ERR Protocol error: too big mbulk count string"
    );
    assert_eq!(error_of(b"*1\r\n$1111111\r\n", &tiny(), true), bulk);
    assert_eq!(
        error_of(b"*1\r\n$11111111\r\n", &tiny(), true),
        "ERR Protocol error: too big bulk count string"
    );
    // A `\r` without its `\n` yet waits; with another byte it is an error.
    assert_eq!(once(b"*1\r\n$3\r"), Ok(None));
    assert_eq!(error_of(b"*1\r\n$3\rX", &Limits::default(), true), bulk);
}

/// A request followed by a PING, with one byte changed (`edit`: where, modulo the length,
/// and to what) and cut short (`cut`, modulo the length + 1), for the property tests.
fn followed_edited_cut(
    mut input: Vec<u8>,
    edit: Option<(usize, u8)>,
    cut: Option<usize>,
) -> Vec<u8> {
    input.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    if let Some((at, byte)) = edit {
        let at = at % input.len();
        input[at] = byte;
    }
    if let Some(cut) = cut {
        input.truncate(cut % (input.len() + 1));
    }
    input
}

/// The one-pass path for short requests finds what the general path finds, on requests
/// that are whole, cut short, or have one byte changed, under the default limits and
/// two smaller sets, authenticated or not: the same arguments, error and bytes left.
#[test]
fn short_requests_read_in_one_pass_as_in_general() {
    fn prop(
        args: Vec<Vec<u8>>,
        edit: Option<(usize, u8)>,
        cut: Option<usize>,
        kind: u8,
        auth: bool,
    ) -> bool {
        let args: Vec<Vec<u8>> = args
            .into_iter()
            .take(10)
            .map(|mut a| {
                a.truncate(120);
                a
            })
            .collect();
        let input = followed_edited_cut(encode_command(&args), edit, cut);
        // Below what the one-pass path takes, one limit at a time: it must leave these
        // requests to the general path.
        let limits = match kind % 5 {
            0 => Limits::default(),
            1 => tiny(),
            2 => Limits {
                max_bulk_len: 5,
                ..Limits::default()
            },
            3 => Limits {
                max_multibulk_len: 2,
                ..Limits::default()
            },
            _ => Limits {
                max_inline_len: 2,
                ..Limits::default()
            },
        };
        let (mut fast, mut general) = (BytesMut::from(&input[..]), BytesMut::from(&input[..]));
        let (mut fast_state, mut general_state) = (ParseState::default(), ParseState::default());
        loop {
            let a = fast_state.parse_command(&mut fast, &limits, auth);
            let b = general_state.parse_general(&mut general, &limits, auth);
            if a != b || fast.len() != general.len() {
                return false;
            }
            if !matches!(a, Ok(Some(_))) {
                return true;
            }
        }
    }
    quickcheck::QuickCheck::new()
        .tests(2000)
        .quickcheck(prop as fn(Vec<Vec<u8>>, Option<(usize, u8)>, Option<usize>, u8, bool) -> bool);
    // The edges by hand: 9 and 10 arguments, lengths 9, 10, 99 and 100, `$0`, and a
    // leading zero, which the one-pass path leaves to the general one.
    for args in [
        vec![vec![b'a'; 3]; 9],
        vec![vec![b'a'; 3]; 10],
        vec![
            vec![b'b'; 9],
            vec![b'c'; 10],
            vec![b'd'; 99],
            vec![b'e'; 100],
            vec![],
        ],
    ] {
        let input = encode_command(&args);
        let (mut a, mut b) = (BytesMut::from(&input[..]), BytesMut::from(&input[..]));
        let got = ParseState::default().parse_command(&mut a, &Limits::default(), true);
        assert_eq!(
            got,
            ParseState::default().parse_general(&mut b, &Limits::default(), true)
        );
        assert_eq!(got.unwrap().map(owned), Some(args));
    }
    let odd = b"*2\r\n$3\r\nGET\r\n$01\r\nk\r\n";
    assert_eq!(
        once(odd),
        ParseState::default()
            .parse_general(&mut BytesMut::from(&odd[..]), &Limits::default(), true)
            .map(|r| r.map(owned))
            .map_err(|ProtocolError(text)| text)
    );
}

/// A GET found in place ([`ParseState::short_get`]) is what the general path reads from
/// the same bytes: a two-argument request named GET in any case, whose key lies where it
/// says, and which ends where it says. Requests are GETs with keys of 0 to 120 bytes,
/// named in random case, whole, cut short or with one byte changed.
#[test]
fn a_get_found_in_place_is_what_the_general_path_reads() {
    fn prop(key: Vec<u8>, case: u8, edit: Option<(usize, u8)>, cut: Option<usize>) -> bool {
        let mut key = key;
        key.truncate(120);
        let name: Vec<u8> = b"get"
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if case >> i & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    *c
                }
            })
            .collect();
        let untouched = edit.is_none() && cut.is_none();
        let input = followed_edited_cut(encode_command(&[name, key.clone()]), edit, cut);
        let found = ParseState::default().short_get(&input, &Limits::default());
        if untouched && key.len() < 100 && found.is_none() {
            return false;
        }
        let Some(found) = found else {
            return true;
        };
        let mut general = BytesMut::from(&input[..]);
        let Ok(Some(args)) =
            ParseState::default().parse_general(&mut general, &Limits::default(), true)
        else {
            return false;
        };
        args.len() == 2
            && args[0].eq_ignore_ascii_case(b"get")
            && args[0][..] == input[8..11]
            && args[1][..] == input[found.key.clone()]
            && input.len() - general.len() == found.end
    }
    quickcheck::QuickCheck::new()
        .tests(3000)
        .quickcheck(prop as fn(Vec<u8>, u8, Option<(usize, u8)>, Option<usize>) -> bool);
    // Not a GET, or not between requests: nothing found.
    let mut st = ParseState::default();
    assert_eq!(
        st.short_get(b"*2\r\n$3\r\nSET\r\n$1\r\nk\r\n", &Limits::default()),
        None
    );
    assert_eq!(
        st.short_get(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r", &Limits::default()),
        None
    );
    assert_eq!(st.short_get(b"GET k\r\n", &Limits::default()), None);
    let mut half = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$1\r\n"[..]);
    assert_eq!(
        st.parse_command(&mut half, &Limits::default(), true),
        Ok(None)
    );
    half.extend_from_slice(b"k\r\n");
    assert_eq!(st.short_get(&half, &Limits::default()), None, "mid-request");
    let whole = b"*2\r\n$3\r\ngEt\r\n$3\r\nkey\r\nrest";
    assert_eq!(
        ParseState::default().short_get(whole, &Limits::default()),
        Some(super::ShortGet {
            key: 17..20,
            end: 22
        })
    );
}
