//! The pieces both memcached parsers share (the classic commands in [`super::parse`] and
//! the meta commands in [`super::meta`]): tokens, number tokens as memcached reads them,
//! data blocks, the error texts of a bad line, and the step a parse takes.

use super::McRequest;

pub(super) const BAD_FORMAT: &str = "CLIENT_ERROR bad command line format";
pub(super) const TOO_LARGE: &str = "SERVER_ERROR object too large for cache";
pub(super) const BAD_DATA_CHUNK: &str = "CLIENT_ERROR bad data chunk";
/// memcached's tokenizer keeps 23 tokens and lumps the rest together; counts past this only
/// ever mean "too many".
pub(super) const MAX_TOKENS: usize = 24;

/// The tokens of one line (up to [`MAX_TOKENS`]).
pub(super) struct Tokens<'a> {
    toks: [&'a [u8]; MAX_TOKENS],
    /// How many tokens, capped at [`MAX_TOKENS`].
    pub n: usize,
}

impl<'a> Tokens<'a> {
    pub fn new(line: &'a [u8]) -> Tokens<'a> {
        let mut t = Tokens {
            toks: [&[]; MAX_TOKENS],
            n: 0,
        };
        for tok in split(line).take(MAX_TOKENS) {
            t.toks[t.n] = tok;
            t.n += 1;
        }
        t
    }

    pub fn get(&self, i: usize) -> &'a [u8] {
        if i < self.n {
            self.toks[i]
        } else {
            &[]
        }
    }

    pub fn last(&self) -> &'a [u8] {
        self.get(self.n.wrapping_sub(1))
    }

    /// Whether the last token is `noreply`.
    pub fn noreply(&self) -> bool {
        self.last() == b"noreply"
    }
}

/// The space-separated tokens of `line`.
pub(super) fn split(line: &[u8]) -> impl Iterator<Item = &[u8]> + Clone {
    line.split(|&b| b == b' ').filter(|t| !t.is_empty())
}

/// What one parse step did.
pub(super) enum Step {
    /// The request is not all here yet; nothing was consumed.
    NeedMore,
    /// `consumed` bytes are done with; then skip `swallow` more (a rejected data block).
    /// `request` is `None` when there is nothing to do (an error muted by `noreply`).
    Done {
        consumed: usize,
        swallow: usize,
        request: Option<McRequest>,
    },
}

impl Step {
    /// A request that used exactly its line.
    pub fn line(len: usize, request: McRequest) -> Step {
        Step::Done {
            consumed: len,
            swallow: 0,
            request: Some(request),
        }
    }

    /// An error reply, muted by `noreply`.
    pub fn error(len: usize, text: &'static str, noreply: bool) -> Step {
        Step::Done {
            consumed: len,
            swallow: 0,
            request: (!noreply).then_some(McRequest::Error(text)),
        }
    }
}

/// A storage command's line and data block, rejected: the line is consumed, the data block
/// (`total` bytes with its CRLF) is skipped as it arrives.
pub(super) fn reject_block(line_len: usize, total: usize, text: &'static str, mute: bool) -> Step {
    Step::Done {
        consumed: line_len,
        swallow: total,
        request: (!mute).then_some(McRequest::Error(text)),
    }
}

/// A data block length token: a non-negative 32-bit number, as memcached reads it.
pub(super) fn data_len(tok: &[u8]) -> Option<usize> {
    parse_i32(tok)
        .filter(|&n| (0..=i64::from(i32::MAX) - 2).contains(&n))
        .map(|n| n as usize)
}

/// The `len`-byte data block at the front of `rest`: `None` until it and its CRLF have
/// arrived, `Some(Err(()))` when the two bytes after it are not CRLF.
pub(super) fn data_block(rest: &[u8], len: usize) -> Option<Result<&[u8], ()>> {
    let block = rest.get(..len + 2)?;
    Some(match block.split_at(len) {
        (data, b"\r\n") => Ok(data),
        _ => Err(()),
    })
}

/// Digits with an optional sign, as memcached's `safe_strtol` takes them for exptimes and
/// lengths, within 32 bits.
pub(super) fn parse_i32(tok: &[u8]) -> Option<i64> {
    let (neg, digits) = match tok.first()? {
        b'-' => (true, &tok[1..]),
        b'+' => (false, &tok[1..]),
        _ => (false, tok),
    };
    let n = parse_digits(digits)?;
    let n = if neg { -(n as i128) } else { n as i128 };
    (i128::from(i32::MIN)..=i128::from(i32::MAX))
        .contains(&n)
        .then_some(n as i64)
}

/// An unsigned 32-bit number (client flags).
pub(super) fn parse_u32(tok: &[u8]) -> Option<u32> {
    parse_u64(tok).and_then(|n| u32::try_from(n).ok())
}

/// An unsigned 64-bit number (CAS uniques, deltas), optional `+`, no `-`.
pub(super) fn parse_u64(tok: &[u8]) -> Option<u64> {
    parse_digits(tok.strip_prefix(b"+").unwrap_or(tok))
}

fn parse_digits(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}
