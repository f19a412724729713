//! Request framing: multibulk requests, and the dispatch between multibulk and inline.
//!
//! Every decision is made from the bytes already buffered and never changes when more bytes
//! arrive, so feeding a stream in any chunks yields exactly the commands (and the error) that
//! feeding it whole does. The property tests check that on arbitrary bytes.

use std::cell::RefCell;

use bytes::{Buf, Bytes, BytesMut};

use super::line::{find_line, Line};
use super::{
    inline, Limits, ProtocolError, MAX_PREALLOC_ARGS, UNAUTHENTICATED_MAX_BULK_LEN,
    UNAUTHENTICATED_MAX_MULTIBULK_LEN,
};

/// Parses one command from the front of `buf`, consuming its bytes.
///
/// * `Ok(None)`: more bytes are needed. Nothing is consumed, except empty commands that were
///   skipped on the way (blank inline lines, `*0\r\n`, `*-1\r\n`), as Redis skips them.
/// * `Ok(Some(args))`: one command; `args[0]` is its name. Multibulk arguments are slices
///   of the consumed bytes, not copies.
/// * `Err(e)`: the request is malformed; reply with `e` and close the connection.
///
/// This form keeps no memory between calls, so a multibulk that arrives in many pieces has
/// its argument headers re-read on each call (the bulk bodies are never scanned: an
/// incomplete body is detected by arithmetic). A connection that wants strictly O(n)
/// parsing under adversarial trickling keeps a [`ParseState`] instead.
pub fn parse_command(
    buf: &mut BytesMut,
    limits: &Limits,
    authenticated: bool,
) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    thread_local! {
        // A fresh state for every call, but one whose offset buffer is already allocated.
        static SCRATCH: RefCell<ParseState> = RefCell::new(ParseState::default());
    }
    SCRATCH.with(|scratch| {
        let mut state = scratch.borrow_mut();
        let result = state.parse_command(buf, limits, authenticated);
        state.reset();
        result
    })
}

/// A resumable [`parse_command`]: remembers how far into an incomplete request it has read,
/// so each byte of input is examined a bounded number of times however it is split.
///
/// Between calls the caller may only append to the buffer (what `parse_command` consumed
/// aside). After an `Err` the stream is dead: drop the state with the connection. The state
/// is only a cache of progress: [`ParseState::default`] over the same bytes gives the same
/// results. A connection handed to another process takes it along anyway
/// ([`ParseState::progress`], [`ParseState::resume`]), so that a large request arriving
/// during the handoff is still read once.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ParseState {
    /// Arguments announced by the multibulk being read; 0 when between requests.
    count: usize,
    /// Offset in the buffer of the first byte not yet read for the current multibulk.
    pos: usize,
    /// Length of the next argument, once its `$<len>` header has been read (data at `pos`).
    bulk_len: Option<usize>,
    /// Offsets of the arguments read so far, turned into slices once the request is whole.
    args: Vec<(usize, usize)>,
    /// Bytes of the line being looked for that were already searched for its terminator.
    searched: usize,
}

/// Where a [`ParseState`] stands, as plain numbers: offsets into the buffer it was reading,
/// whose unconsumed bytes travel with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseProgress {
    /// Arguments announced by the multibulk being read; 0 when between requests.
    pub count: usize,
    /// Offset of the first byte not yet read for the current multibulk.
    pub pos: usize,
    /// Length of the argument whose data starts at `pos`, once its header was read.
    pub bulk_len: Option<usize>,
    /// Start and end offsets of the arguments read so far.
    pub args: Vec<(usize, usize)>,
    /// Bytes of the line being looked for that were already searched for its terminator.
    pub searched: usize,
}

impl ParseState {
    /// Where this state stands, for [`ParseState::resume`] (in another process, say).
    pub fn progress(&self) -> ParseProgress {
        ParseProgress {
            count: self.count,
            pos: self.pos,
            bulk_len: self.bulk_len,
            args: self.args.clone(),
            searched: self.searched,
        }
    }

    /// A state that goes on from `progress` over a buffer of `buffered` bytes (the same
    /// bytes the progress was made on), or why `progress` cannot have come from reading
    /// such a buffer. Checking it here keeps every offset the parser later slices with
    /// inside the buffer and in order, whatever the numbers say.
    pub fn resume(progress: ParseProgress, buffered: usize) -> Result<ParseState, &'static str> {
        let ParseProgress {
            count,
            pos,
            bulk_len,
            args,
            searched,
        } = progress;
        if searched > buffered {
            return Err("searched past the buffered input");
        }
        if count == 0 {
            if pos != 0 || bulk_len.is_some() || !args.is_empty() {
                return Err("between requests, yet inside one");
            }
        } else {
            if args.len() >= count {
                return Err("as many arguments read as announced, yet unfinished");
            }
            if pos > buffered {
                return Err("position past the buffered input");
            }
            // Each argument lies before the next one's header, and all before `pos`.
            let mut next = 0;
            for &(start, end) in &args {
                if start < next || end < start {
                    return Err("argument offsets out of order");
                }
                next = end.checked_add(2).ok_or("argument offsets out of order")?;
            }
            if next > pos {
                return Err("argument past the position");
            }
        }
        Ok(ParseState {
            count,
            pos,
            bulk_len,
            args,
            searched,
        })
    }

    /// Same contract as [`parse_command`].
    pub fn parse_command(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
        authenticated: bool,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if self.count == 0 {
            if let Some((offsets, n, end)) = whole_short(buf, limits) {
                // Between requests only `searched` can hold anything (an inline line's).
                self.searched = 0;
                return Ok(Some(take_args(buf, &offsets[..n], end)));
            }
        }
        self.parse_general(buf, limits, authenticated)
    }

    /// A whole `GET <key>` at the front of `buf`, between requests, read as
    /// [`ParseState::parse_command`]'s one-pass path reads it (a key of fewer than 100
    /// bytes), and taken off nothing: the key's offsets and the request's end, for the
    /// caller to answer from the buffer and then advance it. The name is `buf[8..11]`.
    /// `None` for anything else, which [`ParseState::parse_command`] then reads.
    #[inline]
    pub fn short_get(&mut self, buf: &[u8], limits: &Limits) -> Option<ShortGet> {
        if self.count != 0 || !buf.starts_with(b"*2\r\n$3\r\n") {
            return None;
        }
        // Two arguments, as the prefix says.
        let (offsets, _, end) = whole_short(buf, limits)?;
        let [(_, _), (start, key_end), ..] = offsets;
        if !buf[8..11].eq_ignore_ascii_case(b"get") {
            return None;
        }
        // As the one-pass path does when it takes a request.
        self.searched = 0;
        Some(ShortGet {
            key: start..key_end,
            end,
        })
    }

    /// [`ParseState::parse_command`] without its one-pass path for short requests: what
    /// that path must agree with.
    pub(super) fn parse_general(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
        authenticated: bool,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if self.pos > buf.len() || self.searched > buf.len() {
            // Not the buffer we were reading: start over rather than trust stale offsets.
            self.reset();
        }
        while self.count == 0 {
            let Some(&first) = buf.first() else {
                return Ok(None);
            };
            if first != b'*' {
                match inline::parse_inline(buf, limits, &mut self.searched)? {
                    None => return Ok(None),
                    Some(args) if args.is_empty() => continue,
                    Some(args) => return Ok(Some(args)),
                }
            }
            if !self.read_multibulk_header(buf, limits, authenticated)? {
                return Ok(None);
            }
        }
        self.read_args(buf, limits, authenticated)
    }

    fn reset(&mut self) {
        self.count = 0;
        self.pos = 0;
        self.bulk_len = None;
        self.searched = 0;
        if self.args.capacity() > MAX_PREALLOC_ARGS {
            // Don't keep a huge MSET's worth of offsets alive for the connection's lifetime.
            self.args = Vec::new();
        } else {
            self.args.clear();
        }
    }

    /// Reads `*<n>\r\n`. Returns false if the line is incomplete; on success either starts a
    /// frame (`count > 0`) or consumes an empty request (`n <= 0`, skipped like Redis does).
    fn read_multibulk_header(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
        authenticated: bool,
    ) -> Result<bool, ProtocolError> {
        let (cr, n) = match short_header(buf, 0, limits.max_inline_len) {
            Some(found) => found,
            None => {
                let cr = match find_line(buf, 0, b'\r', limits.max_inline_len, &mut self.searched) {
                    Line::Found(cr) => cr,
                    Line::Incomplete => return Ok(false),
                    Line::TooLong => return Err(ProtocolError::new("too big mbulk count string")),
                };
                (cr, header_number(buf, 1, cr))
            }
        };
        let n = match n {
            Some(n) if n <= limits.max_multibulk_len as i64 => n,
            _ => return Err(ProtocolError::new("invalid multibulk length")),
        };
        if !authenticated && n > UNAUTHENTICATED_MAX_MULTIBULK_LEN as i64 {
            return Err(ProtocolError::new("unauthenticated multibulk length"));
        }
        self.searched = 0;
        if n <= 0 {
            buf.advance(cr + 2);
            return Ok(true);
        }
        self.count = n as usize;
        self.pos = cr + 2;
        self.args.reserve(self.count.min(MAX_PREALLOC_ARGS));
        Ok(true)
    }

    /// Reads `$<len>\r\n<data>\r\n` arguments until the multibulk is whole.
    fn read_args(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
        authenticated: bool,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        while self.args.len() < self.count {
            let len = match self.bulk_len {
                Some(len) => len,
                None => match self.read_bulk_header(buf, limits, authenticated)? {
                    Some(len) => len,
                    None => return Ok(None),
                },
            };
            let available = buf.len() - self.pos;
            if available < len || available - len < 2 {
                return Ok(None);
            }
            let end = self.pos + len;
            if &buf[end..end + 2] != b"\r\n" {
                return Err(ProtocolError::new("expected CRLF after bulk data"));
            }
            self.args.push((self.pos, end));
            self.pos = end + 2;
            self.bulk_len = None;
        }
        let args = take_args(buf, &self.args, self.pos);
        self.reset();
        Ok(Some(args))
    }

    /// Reads the `$<len>\r\n` header at `pos`; `None` if it is incomplete.
    fn read_bulk_header(
        &mut self,
        buf: &BytesMut,
        limits: &Limits,
        authenticated: bool,
    ) -> Result<Option<usize>, ProtocolError> {
        let Some(&first) = buf.get(self.pos) else {
            return Ok(None);
        };
        if first != b'$' {
            // Redis waits for the whole line before complaining; the first byte decides.
            return Err(ProtocolError(format!(
                "ERR Protocol error: expected '$', got '{}'",
                printable(first)
            )));
        }
        let (cr, len) = match short_header(buf, self.pos, limits.max_inline_len) {
            Some(found) => found,
            None => {
                let cr = match find_line(
                    buf,
                    self.pos,
                    b'\r',
                    limits.max_inline_len,
                    &mut self.searched,
                ) {
                    Line::Found(cr) => cr,
                    Line::Incomplete => return Ok(None),
                    Line::TooLong => return Err(ProtocolError::new("too big bulk count string")),
                };
                (cr, header_number(buf, self.pos + 1, cr))
            }
        };
        let len = match len {
            Some(len) if len >= 0 && len as u64 <= limits.max_bulk_len as u64 => len as usize,
            _ => return Err(ProtocolError::new("invalid bulk length")),
        };
        if !authenticated && len > UNAUTHENTICATED_MAX_BULK_LEN {
            return Err(ProtocolError::new("unauthenticated bulk length"));
        }
        self.searched = 0;
        self.pos = cr + 2;
        self.bulk_len = Some(len);
        Ok(Some(len))
    }
}

/// A `GET` request found whole at the front of a buffer ([`ParseState::short_get`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortGet {
    /// Where the key lies in the buffer.
    pub key: std::ops::Range<usize>,
    /// Where the request ends: the buffer's bytes to take off once it is answered.
    pub end: usize,
}

/// Most arguments [`whole_short`] takes: every GET, SET, HSET of one field, ZADD of one
/// member.
const SHORT_ARGS: usize = 9;

/// The start and end offsets of a short request's arguments.
type ShortOffsets = [(usize, usize); SHORT_ARGS];

/// The common request read in one pass, with no state kept: wholly buffered, at most
/// [`SHORT_ARGS`] arguments, each of fewer than 100 bytes, every header one or two digits.
/// Gives the arguments' offsets, how many there are and where the request ends. `None`
/// for anything else, even a request that is merely incomplete, malformed or over a
/// limit: the general path then reads the same bytes from the start, with its errors.
/// On the requests it takes, it finds exactly what the general path finds (the property
/// tests compare them on arbitrary bytes).
#[inline(always)]
fn whole_short(buf: &[u8], limits: &Limits) -> Option<(ShortOffsets, usize, usize)> {
    let &[b'*', c @ b'1'..=b'9', b'\r', b'\n', ..] = buf else {
        return None;
    };
    let n = usize::from(c - b'0');
    // The headers' own limits, as the general path applies them (an unauthenticated
    // client's are above anything taken here: 10 arguments, 16 KiB each).
    if n > limits.max_multibulk_len || limits.max_inline_len < 3 {
        return None;
    }
    let mut offsets = [(0, 0); SHORT_ARGS];
    let mut pos = 4;
    for slot in &mut offsets[..n] {
        let [b'$', ref digits @ ..] = *buf.get(pos..)? else {
            return None;
        };
        let (len, width) = one_or_two_digits(digits)?;
        let start = pos + 1 + width + 2;
        let end = start + len;
        if len > limits.max_bulk_len || buf.get(end..end + 2)? != b"\r\n" {
            return None;
        }
        *slot = (start, end);
        pos = end + 2;
    }
    Some((offsets, n, pos))
}

/// Takes a whole request, `buf[..end]`, off the front of `buf` as its arguments, found at
/// `offsets` (at least one). Every argument but the last is a slice of the request (a
/// reference more on the read buffer each); the last is the request itself, cut down to
/// it, which saves a count up and down per request (the key of a GET, the value of a SET).
#[inline(always)]
fn take_args(buf: &mut BytesMut, offsets: &[(usize, usize)], end: usize) -> Vec<Bytes> {
    let mut frame = buf.split_to(end).freeze();
    let (last, init) = offsets
        .split_last()
        .expect("a multibulk being read announced at least one argument");
    let mut args = Vec::with_capacity(offsets.len());
    let mut init = init.iter();
    if let Some(&(start, end)) = init.next() {
        // The command's name: a static copy when it is spelled as clients spell it.
        args.push(
            match baton_engine::command::static_name(&frame[start..end]) {
                Some(name) => Bytes::from_static(name),
                None => frame.slice(start..end),
            },
        );
    }
    args.extend(init.map(|&(start, end)| frame.slice(start..end)));
    frame.truncate(last.1);
    frame.advance(last.0);
    args.push(frame);
    args
}

/// The common header, read without searching for its line's end: `buf[start]` is `*` or
/// `$`, then a positive number of at most [`SHORT_HEADER_DIGITS`] digits with no leading
/// zero (or a lone `0`), then `\r\n`, all buffered. Gives the offset of the `\r` and the
/// number, which are what [`find_line`] and [`header_number`] find for such a line;
/// `None` for anything else (a longer number, a sign, an incomplete or malformed line),
/// which then takes that general path, with its errors.
#[inline(always)]
fn short_header(buf: &[u8], start: usize, max_line: usize) -> Option<(usize, Option<i64>)> {
    let digits = buf.get(start + 1..)?;
    // One or two digits (`*2`, `$3`, `$16`: most headers), without the loop.
    if max_line >= 3 {
        if let Some((n, width)) = one_or_two_digits(digits) {
            return Some((start + 1 + width, Some(n as i64)));
        }
    }
    let mut n: i64 = 0;
    let mut i = 0;
    while i < SHORT_HEADER_DIGITS {
        match digits.get(i) {
            Some(&c @ b'0'..=b'9') => n = n * 10 + i64::from(c - b'0'),
            _ => break,
        }
        i += 1;
    }
    let leading_zero = i > 1 && digits[0] == b'0';
    if i == 0 || leading_zero || digits.get(i..i + 2) != Some(b"\r\n") || i + 1 > max_line {
        return None;
    }
    Some((start + 1 + i, Some(n)))
}

/// A header's number when it is one digit, or two with no leading zero, followed by
/// `\r\n` (`digits` starts right after the `*` or `$`): the number and how many digits.
#[inline(always)]
fn one_or_two_digits(digits: &[u8]) -> Option<(usize, usize)> {
    match *digits {
        [a @ b'0'..=b'9', b'\r', b'\n', ..] => Some((usize::from(a - b'0'), 1)),
        [a @ b'1'..=b'9', b @ b'0'..=b'9', b'\r', b'\n', ..] => {
            Some((usize::from(a - b'0') * 10 + usize::from(b - b'0'), 2))
        }
        _ => None,
    }
}

/// Most digits [`short_header`] reads: any such number fits an `i64` without a check.
const SHORT_HEADER_DIGITS: usize = 18;

/// The integer in `buf[from..cr]`, if that is one and the line really ends in `\r\n`.
fn header_number(buf: &[u8], from: usize, cr: usize) -> Option<i64> {
    if buf.get(cr + 1) != Some(&b'\n') {
        return None;
    }
    string2ll(&buf[from..cr])
}

/// Parses a decimal `i64` exactly as Redis's `string2ll` does: no sign but `-`, no leading
/// zeros, no spaces, at most 20 characters, no `-0`.
pub(super) fn string2ll(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    if !matches!(digits.first(), Some(b'1'..=b'9')) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if negative {
        (v <= i64::MAX as u64 + 1).then(|| 0u64.wrapping_sub(v) as i64)
    } else {
        i64::try_from(v).ok()
    }
}

/// A byte as it appears in an error text: itself if printable, else `\xHH`.
fn printable(b: u8) -> String {
    if b.is_ascii_graphic() || b == b' ' {
        char::from(b).to_string()
    } else {
        format!("\\x{b:02x}")
    }
}
