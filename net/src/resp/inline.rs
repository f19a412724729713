//! Inline requests: one line of space-separated words, as typed into telnet or `nc`.
//!
//! Splitting follows Redis's `sdssplitargs` exactly (it is what `redis-cli` users and
//! Redis's own tests expect): blanks separate words, `"double quotes"` understand
//! `\n \r \t \b \a \\ \" \xHH`, `'single quotes'` understand `\'`, a quote may open in the
//! middle of a word, and a closing quote must be followed by a blank or the end of line.

use bytes::{Bytes, BytesMut};

use super::line::{find_line, Line};
use super::{Limits, ProtocolError};

/// Reads one inline line from the front of `buf`. `Ok(None)`: the line is incomplete and
/// nothing was consumed. `Ok(Some(args))`: the line was consumed; `args` is empty for a
/// blank line, which the caller skips.
pub(super) fn parse_inline(
    buf: &mut BytesMut,
    limits: &Limits,
    searched: &mut usize,
) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let newline = match find_line(buf, 0, b'\n', limits.max_inline_len, searched) {
        Line::Found(newline) => newline,
        Line::Incomplete => return Ok(None),
        Line::TooLong => return Err(ProtocolError::new("too big inline request")),
    };
    *searched = 0;
    let line = buf.split_to(newline + 1).freeze();
    let mut end = newline;
    if end > 0 && line[end - 1] == b'\r' {
        end -= 1;
    }
    // sdssplitargs works on a C string: a NUL ends the line.
    if let Some(nul) = memchr::memchr(0, &line[..end]) {
        end = nul;
    }
    split_args(&line, end).map(Some)
}

/// `isspace()` in the C locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex_value(b: Option<&u8>) -> Option<u8> {
    match b? {
        c @ b'0'..=b'9' => Some(c - b'0'),
        c @ b'a'..=b'f' => Some(c - b'a' + 10),
        c @ b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Splits `line[..end]` into words like `sdssplitargs`.
pub(super) fn split_args(line: &Bytes, end: usize) -> Result<Vec<Bytes>, ProtocolError> {
    let s = &line[..end];
    let unbalanced = || ProtocolError::new("unbalanced quotes in request");
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < s.len() && is_space(s[i]) {
            i += 1;
        }
        if i >= s.len() {
            return Ok(args);
        }
        let mut word = Word::default();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            let c = s.get(i).copied();
            if in_double {
                match c {
                    None => return Err(unbalanced()),
                    Some(b'\\') if s.get(i + 1) == Some(&b'x') => {
                        match (hex_value(s.get(i + 2)), hex_value(s.get(i + 3))) {
                            (Some(hi), Some(lo)) => {
                                word.push(s, hi * 16 + lo);
                                i += 4;
                            }
                            // Not a \xHH escape: an escaped 'x', like any unknown escape.
                            _ => {
                                word.push(s, b'x');
                                i += 2;
                            }
                        }
                    }
                    Some(b'\\') if i + 1 < s.len() => {
                        let escaped = match s[i + 1] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        };
                        word.push(s, escaped);
                        i += 2;
                    }
                    Some(b'"') => {
                        if s.get(i + 1).is_some_and(|&next| !is_space(next)) {
                            return Err(unbalanced());
                        }
                        i += 1;
                        break;
                    }
                    Some(_) => {
                        word.push_from(s, i);
                        i += 1;
                    }
                }
            } else if in_single {
                match c {
                    None => return Err(unbalanced()),
                    Some(b'\\') if s.get(i + 1) == Some(&b'\'') => {
                        word.push(s, b'\'');
                        i += 2;
                    }
                    Some(b'\'') => {
                        if s.get(i + 1).is_some_and(|&next| !is_space(next)) {
                            return Err(unbalanced());
                        }
                        i += 1;
                        break;
                    }
                    Some(_) => {
                        word.push_from(s, i);
                        i += 1;
                    }
                }
            } else {
                match c {
                    // Only these end a word; \v and \f are kept inside one (as in Redis).
                    None | Some(b' ' | b'\n' | b'\r' | b'\t') => break,
                    Some(b'"') => {
                        in_double = true;
                        i += 1;
                    }
                    Some(b'\'') => {
                        in_single = true;
                        i += 1;
                    }
                    Some(_) => {
                        word.push_from(s, i);
                        i += 1;
                    }
                }
            }
        }
        args.push(word.finish(line));
    }
}

/// A word being collected: a slice of the line while its bytes are contiguous in it (the
/// common case, no escapes), copied out as soon as they are not.
#[derive(Default)]
struct Word {
    start: usize,
    end: usize,
    owned: Option<Vec<u8>>,
}

impl Word {
    /// Appends the line's own byte at `i`.
    fn push_from(&mut self, s: &[u8], i: usize) {
        match &mut self.owned {
            Some(owned) => owned.push(s[i]),
            None if self.start == self.end => {
                self.start = i;
                self.end = i + 1;
            }
            None if self.end == i => self.end += 1,
            None => self.push(s, s[i]),
        }
    }

    /// Appends a byte that is not simply the next one of the line.
    fn push(&mut self, s: &[u8], b: u8) {
        self.owned
            .get_or_insert_with(|| s[self.start..self.end].to_vec())
            .push(b);
    }

    fn finish(self, line: &Bytes) -> Bytes {
        match self.owned {
            Some(owned) => Bytes::from(owned),
            None => line.slice(self.start..self.end),
        }
    }
}
