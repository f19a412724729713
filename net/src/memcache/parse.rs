//! Framing and the classic text commands. One request is one `\n`-terminated line (a
//! trailing `\r` is dropped), plus a data block for the storage commands. Tokens are split
//! on spaces only, as memcached's tokenizer does.

use bytes::{Buf, Bytes, BytesMut};

use super::lex::{
    data_block, data_len, parse_i32, parse_u32, parse_u64, reject_block, split, Step, Tokens,
    BAD_DATA_CHUNK, BAD_FORMAT, TOO_LARGE,
};
use super::{meta, McConn, McError, McLimits, McReply, McRequest, MAX_KEY_LEN};
use baton_engine::memcache::{McOp, StoreMode, StoreOp};

pub(super) const ERROR: &str = "ERROR";
const BAD_EXPTIME: &str = "CLIENT_ERROR invalid exptime argument";
const BAD_DELTA: &str = "CLIENT_ERROR invalid numeric delta argument";
const DELETE_USAGE: &str = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";

/// The memcached request parser. It is stateless between requests except for the rest of a
/// rejected data block still to be skipped; [`McParser::swallowing`] and
/// [`McParser::resume`] carry that across a connection handoff.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct McParser {
    swallow: usize,
}

impl McParser {
    pub fn new() -> McParser {
        McParser::default()
    }

    /// A parser that first skips `swallow` bytes (see [`McParser::swallowing`]).
    pub fn resume(swallow: usize) -> McParser {
        McParser { swallow }
    }

    /// Bytes of a rejected data block not yet received, to be skipped.
    pub fn swallowing(&self) -> usize {
        self.swallow
    }

    /// Parses the next request from the front of `buf`, consuming its bytes. `Ok(None)`
    /// means "read more" (and consumes nothing of a partial request); `Err` means "close the
    /// connection" (after writing [`McError::reply`]).
    pub fn parse(
        &mut self,
        buf: &mut BytesMut,
        limits: &McLimits,
    ) -> Result<Option<McRequest>, McError> {
        self.next(buf, limits, |buf, consumed, request| {
            buf.advance(consumed);
            request
        })
    }

    /// The next complete request, after any data block still being swallowed; `take`
    /// removes the request's `consumed` bytes from the buffer (they may be kept) and
    /// makes what is returned. Bytes of a line that makes no request are dropped.
    fn next<T>(
        &mut self,
        buf: &mut BytesMut,
        limits: &McLimits,
        mut take: impl FnMut(&mut BytesMut, usize, McRequest) -> T,
    ) -> Result<Option<T>, McError> {
        loop {
            if self.swallow > 0 {
                let n = self.swallow.min(buf.len());
                buf.advance(n);
                self.swallow -= n;
                if self.swallow > 0 {
                    return Ok(None);
                }
            }
            match parse_one(buf, limits)? {
                Step::NeedMore => return Ok(None),
                Step::Done {
                    consumed,
                    swallow,
                    request,
                } => {
                    let taken = match request {
                        Some(r) => Some(take(buf, consumed, r)),
                        None => {
                            buf.advance(consumed);
                            None
                        }
                    };
                    self.swallow = swallow;
                    if taken.is_some() {
                        return Ok(taken);
                    }
                }
            }
        }
    }
}

impl McParser {
    /// [`McParser::parse`], also handing back the request's own bytes (command line and
    /// data block), split off the buffer without a copy: what a cluster node forwards to
    /// the node that owns the key.
    pub fn parse_framed(
        &mut self,
        buf: &mut BytesMut,
        limits: &McLimits,
    ) -> Result<Option<(McRequest, Bytes)>, McError> {
        self.next(buf, limits, |buf, consumed, request| {
            (request, buf.split_to(consumed).freeze())
        })
    }
}

/// The first token of `buf`, if a space ends it.
fn first_token(buf: &[u8]) -> Option<&[u8]> {
    let start = buf.iter().position(|&b| b != b' ')?;
    let len = buf[start..].iter().position(|&b| b == b' ')?;
    Some(&buf[start..start + len])
}

/// Whether a line is a retrieval, which memcached lets run past the line limit.
fn is_retrieval(buf: &[u8]) -> bool {
    matches!(
        first_token(buf),
        Some(b"get" | b"gets" | b"gat" | b"gats" | b"bget")
    )
}

fn check_line_len(len: usize, buf: &[u8], limits: &McLimits) -> Result<(), McError> {
    if len > limits.max_line && (len > limits.max_get_line || !is_retrieval(buf)) {
        return Err(McError::LineTooLong);
    }
    Ok(())
}

pub(super) fn parse_one(buf: &[u8], limits: &McLimits) -> Result<Step, McError> {
    let Some(nl) = memchr::memchr(b'\n', buf) else {
        check_line_len(buf.len(), buf, limits)?;
        return Ok(Step::NeedMore);
    };
    check_line_len(nl, buf, limits)?;
    let line = buf[..nl].strip_suffix(b"\r").unwrap_or(&buf[..nl]);
    command(line, nl + 1, &buf[nl + 1..], limits)
}

/// Dispatches one line. `line_len` counts the line with its terminator; `rest` is what
/// follows it in the buffer (a storage command's data block, if it has arrived).
fn command(line: &[u8], line_len: usize, rest: &[u8], limits: &McLimits) -> Result<Step, McError> {
    let t = Tokens::new(line);
    let cmd = t.get(0);
    if cmd.len() < 2 {
        return Ok(Step::error(line_len, ERROR, false));
    }
    let retrieval = |cas, touch| retrieval(line, &t, line_len, cas, touch);
    let storage = |mode| storage(&t, line_len, rest, mode, limits);
    let step = match cmd {
        b"get" | b"bget" => retrieval(false, false),
        b"gets" => retrieval(true, false),
        b"gat" => retrieval(false, true),
        b"gats" => retrieval(true, true),
        b"set" => storage(StoreMode::Set),
        b"add" => storage(StoreMode::Add),
        b"replace" => storage(StoreMode::Replace),
        b"append" => storage(StoreMode::Append),
        b"prepend" => storage(StoreMode::Prepend),
        b"cas" => storage(StoreMode::Cas),
        b"delete" => delete(&t, line_len),
        b"incr" => arith(&t, line_len, true),
        b"decr" => arith(&t, line_len, false),
        b"touch" => touch(&t, line_len),
        b"mn" => Step::line(line_len, McRequest::Conn(McConn::NoOp)),
        b"mg" | b"ms" | b"md" | b"ma" | b"me" => meta::parse(line, &t, line_len, rest, limits),
        b"version" => Step::line(line_len, McRequest::Conn(McConn::Version)),
        b"quit" => Step::line(line_len, McRequest::Conn(McConn::Quit)),
        b"verbosity" => verbosity(&t, line_len),
        b"flush_all" => flush_all(&t, line_len),
        b"stats" => stats(&t, line_len),
        b"shutdown" => Step::error(line_len, "ERROR: shutdown not enabled", false),
        b"slabs" | b"lru" | b"lru_crawler" | b"watch" | b"cache_memlimit" | b"extstore"
        | b"refresh_certs" | b"misbehave" | b"debugtime" | b"debugitem" => {
            Step::error(line_len, "CLIENT_ERROR command not supported", false)
        }
        _ if t.n > 1 && t.last().starts_with(b"HTTP/") => return Err(McError::Http),
        _ => Step::error(line_len, ERROR, false),
    };
    Ok(step)
}

/* get|gets|bget <key>* ; gat|gats <exptime> <key>* */
fn retrieval(line: &[u8], t: &Tokens, line_len: usize, cas: bool, touch: bool) -> Step {
    if t.n < 2 {
        return Step::error(line_len, ERROR, false);
    }
    let mut keys = split(line).skip(1);
    let touch = if touch {
        match keys.next().and_then(parse_i32) {
            Some(exptime) => Some(exptime),
            None => return Step::error(line_len, BAD_EXPTIME, false),
        }
    } else {
        None
    };
    if keys.clone().any(|k| k.len() > MAX_KEY_LEN) {
        return Step::error(line_len, BAD_FORMAT, false);
    }
    let get = |k: &[u8]| McOp::Get {
        key: k.to_vec(),
        touch,
    };
    let mut two = keys.clone().take(2);
    let request = match (two.next(), two.next()) {
        // One key, the usual request: no list of one.
        (Some(k), None) => McRequest::Single {
            op: get(k),
            reply: McReply::Get { cas },
        },
        _ => McRequest::Multi {
            ops: keys.map(get).collect(),
            cas,
        },
    };
    Step::line(line_len, request)
}

/* set|add|replace|append|prepend <key> <flags> <exptime> <bytes> [noreply] ;
 * cas <key> <flags> <exptime> <bytes> <cas unique> [noreply] */
fn storage(t: &Tokens, line_len: usize, rest: &[u8], mode: StoreMode, limits: &McLimits) -> Step {
    let is_cas = mode == StoreMode::Cas;
    let arity = if is_cas { 6 } else { 5 };
    if t.n != arity && t.n != arity + 1 {
        return Step::error(line_len, ERROR, false);
    }
    let noreply = t.noreply();
    let Some(len) = data_len(t.get(4)) else {
        return Step::error(line_len, BAD_FORMAT, noreply);
    };
    let total = len + 2;
    let key = t.get(1);
    let parsed = (|| {
        if key.len() > MAX_KEY_LEN {
            return None;
        }
        let flags = parse_u32(t.get(2))?;
        let exptime = parse_i32(t.get(3))?;
        let cas = if is_cas { parse_u64(t.get(5))? } else { 0 };
        Some((flags, exptime, cas))
    })();
    let Some((flags, exptime, cas)) = parsed else {
        return reject_block(line_len, total, BAD_FORMAT, noreply);
    };
    if len > limits.max_item_size {
        return reject_block(line_len, total, TOO_LARGE, noreply);
    }
    let Some(data) = data_block(rest, len) else {
        return Step::NeedMore;
    };
    let Ok(data) = data else {
        return Step::error(line_len + total, BAD_DATA_CHUNK, noreply);
    };
    let op = McOp::Store(StoreOp {
        mode,
        key: key.to_vec(),
        flags,
        exptime,
        data: data.to_vec(),
        cas,
    });
    Step::line(
        line_len + total,
        McRequest::Single {
            op,
            reply: McReply::Text { noreply },
        },
    )
}

/* delete <key> [0] [noreply] */
fn delete(t: &Tokens, line_len: usize) -> Step {
    if !(2..=4).contains(&t.n) {
        return Step::error(line_len, ERROR, false);
    }
    let mut noreply = false;
    if t.n > 2 {
        // The legacy hold time is accepted only as 0.
        let zero = t.get(2) == b"0";
        noreply = t.noreply();
        let valid = (t.n == 3 && (zero || noreply)) || (t.n == 4 && zero && noreply);
        if !valid {
            return Step::error(line_len, DELETE_USAGE, noreply);
        }
    }
    let key = t.get(1);
    if key.len() > MAX_KEY_LEN {
        return Step::error(line_len, BAD_FORMAT, noreply);
    }
    let op = McOp::Delete { key: key.to_vec() };
    Step::line(line_len, single(op, noreply))
}

/* incr|decr <key> <delta> [noreply] */
fn arith(t: &Tokens, line_len: usize, incr: bool) -> Step {
    if t.n != 3 && t.n != 4 {
        return Step::error(line_len, ERROR, false);
    }
    let noreply = t.noreply();
    let key = t.get(1);
    if key.len() > MAX_KEY_LEN {
        return Step::error(line_len, BAD_FORMAT, noreply);
    }
    let Some(delta) = parse_u64(t.get(2)) else {
        return Step::error(line_len, BAD_DELTA, noreply);
    };
    let op = McOp::Arith {
        key: key.to_vec(),
        incr,
        delta,
    };
    Step::line(line_len, single(op, noreply))
}

/* touch <key> <exptime> [noreply] */
fn touch(t: &Tokens, line_len: usize) -> Step {
    if t.n != 3 && t.n != 4 {
        return Step::error(line_len, ERROR, false);
    }
    let noreply = t.noreply();
    let key = t.get(1);
    if key.len() > MAX_KEY_LEN {
        return Step::error(line_len, BAD_FORMAT, noreply);
    }
    let Some(exptime) = parse_i32(t.get(2)) else {
        return Step::error(line_len, BAD_EXPTIME, noreply);
    };
    let op = McOp::Touch {
        key: key.to_vec(),
        exptime,
    };
    Step::line(line_len, single(op, noreply))
}

fn single(op: McOp, noreply: bool) -> McRequest {
    McRequest::Single {
        op,
        reply: McReply::Text { noreply },
    }
}

/* verbosity <level> [noreply] */
fn verbosity(t: &Tokens, line_len: usize) -> Step {
    if t.n != 2 && t.n != 3 {
        return Step::error(line_len, ERROR, false);
    }
    let noreply = t.noreply();
    if parse_u32(t.get(1)).is_none() {
        return Step::error(line_len, BAD_FORMAT, noreply);
    }
    Step::line(line_len, McRequest::Conn(McConn::Verbosity { noreply }))
}

/* flush_all [delay] [noreply] */
fn flush_all(t: &Tokens, line_len: usize) -> Step {
    if t.n > 3 {
        return Step::error(line_len, ERROR, false);
    }
    let noreply = t.noreply();
    let mut delay = 0;
    if t.n != if noreply { 2 } else { 1 } {
        match parse_i32(t.get(1)) {
            Some(d) => delay = d,
            None => return Step::error(line_len, BAD_EXPTIME, noreply),
        }
    }
    Step::line(
        line_len,
        McRequest::Conn(McConn::FlushAll { delay, noreply }),
    )
}

/* stats [reset] */
fn stats(t: &Tokens, line_len: usize) -> Step {
    let request = match t.get(1) {
        b"" => McRequest::Conn(McConn::Stats),
        b"reset" => McRequest::Conn(McConn::StatsReset),
        b"settings" | b"items" | b"slabs" | b"sizes" | b"conns" | b"detail" | b"cachedump"
        | b"extstore" | b"proxy" | b"proxyfuncs" | b"proxybe" => {
            McRequest::Error("CLIENT_ERROR stats subcommand not supported")
        }
        _ => McRequest::Error(ERROR),
    };
    Step::line(line_len, request)
}
