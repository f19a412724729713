//! The packed form of a list's elements: each element prefixed by its length as a LEB128
//! varint, one after another, head first. A small list keeps these bytes as its entry's
//! value (Redis's listpack); a large one keeps them in chunks ([`super::big`]); effects,
//! records and DUMP payloads carry whole lists and pushed elements in this form.
//!
//! ```text
//!  ┌─────────┬─────────┬─────────┬─────────┬ ...
//!  │ len LEB │ element │ len LEB │ element │
//!  └─────────┴─────────┴─────────┴─────────┴ ...
//! ```
//!
//! A short element pays one byte of overhead (Redis's listpack pays two). Bytes built
//! here are trusted; bytes from elsewhere (a record, a RESTORE payload) go through
//! [`validate`] first, which checks every length against what is present and never
//! allocates.

/// Why packed bytes are not a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PackedError {
    #[error("a length runs past the end of the packed list")]
    Truncated,
    #[error("a length varint is not the shortest encoding of a 64-bit number")]
    BadVarint,
    #[error("the packed list holds more than {max} elements")]
    TooMany { max: usize },
}

/// Appends `v` as a LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The encoded size of a varint.
pub fn varint_len(mut v: usize) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// The encoded size of one element.
pub fn elem_len(e: &[u8]) -> usize {
    varint_len(e.len()) + e.len()
}

/// Reads a varint at `*at`, advancing it; only the shortest encoding is accepted.
fn varint(b: &[u8], at: &mut usize) -> Result<usize, PackedError> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let byte = *b.get(*at).ok_or(PackedError::Truncated)?;
        *at += 1;
        if (i > 0 && byte == 0) || (i == 9 && byte > 1) {
            return Err(PackedError::BadVarint);
        }
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return usize::try_from(v).map_err(|_| PackedError::BadVarint);
        }
    }
    Err(PackedError::BadVarint)
}

/// Reads the element at `*at`, advancing past it.
#[inline]
pub(crate) fn element<'a>(b: &'a [u8], at: &mut usize) -> Result<&'a [u8], PackedError> {
    // The common element, shorter than 128 bytes: its length is one byte.
    if let Some(&len) = b.get(*at).filter(|&&len| len < 0x80) {
        let start = *at + 1;
        let s = b
            .get(start..start + usize::from(len))
            .ok_or(PackedError::Truncated)?;
        *at = start + s.len();
        return Ok(s);
    }
    let len = varint(b, at)?;
    let end = at.checked_add(len).ok_or(PackedError::Truncated)?;
    let s = b.get(*at..end).ok_or(PackedError::Truncated)?;
    *at = end;
    Ok(s)
}

/// The number of elements in `b`, checking that it is well formed with at most `max`.
pub fn validate(b: &[u8], max: usize) -> Result<usize, PackedError> {
    let mut at = 0;
    let mut n = 0;
    while at < b.len() {
        if n == max {
            return Err(PackedError::TooMany { max });
        }
        element(b, &mut at)?;
        n += 1;
    }
    Ok(n)
}

/// Appends one element.
pub fn push(out: &mut Vec<u8>, e: &[u8]) {
    put_varint(out, e.len());
    out.extend_from_slice(e);
}

/// The packed form of `elems`, in order.
pub fn pack<'a>(elems: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for e in elems {
        push(&mut out, e);
    }
    out
}

/// The elements of packed bytes, head first. Stops at the first malformed element (bytes
/// built here never have one; foreign bytes are [`validate`]d first).
#[derive(Clone)]
pub struct Elems<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Elems<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.at >= self.b.len() {
            return None;
        }
        match element(self.b, &mut self.at) {
            Ok(e) => Some(e),
            Err(_) => {
                self.at = self.b.len();
                None
            }
        }
    }
}

pub fn elems(b: &[u8]) -> Elems<'_> {
    Elems { b, at: 0 }
}

pub fn len(b: &[u8]) -> usize {
    elems(b).count()
}

/// The byte offset where element `index` of `b` starts (`b.len()` for `index` at or past
/// the end).
pub(crate) fn offset(b: &[u8], index: usize) -> usize {
    let mut at = 0;
    for _ in 0..index {
        if at >= b.len() || element(b, &mut at).is_err() {
            return b.len();
        }
    }
    at
}

/// The byte offset where the last element of `b` starts (`b` non-empty and well formed).
pub(crate) fn last_offset(b: &[u8]) -> usize {
    let (mut at, mut last) = (0, 0);
    while at < b.len() {
        last = at;
        if element(b, &mut at).is_err() {
            break;
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    #[test]
    fn bad_bytes_are_refused() {
        assert_eq!(validate(&[5, b'a'], 10), Err(PackedError::Truncated));
        assert_eq!(validate(&[0x80, 0], 10), Err(PackedError::BadVarint));
        assert_eq!(
            validate(&[0, 0, 0], 2),
            Err(PackedError::TooMany { max: 2 })
        );
        assert_eq!(validate(&[0xff; 11], 10), Err(PackedError::BadVarint));
        assert_eq!(validate(b"", 0), Ok(0));
    }

    quickcheck! {
        fn round_trips(v: Vec<Vec<u8>>) -> bool {
            let b = pack(v.iter().map(|e| &e[..]));
            let back: Vec<&[u8]> = elems(&b).collect();
            validate(&b, usize::MAX) == Ok(v.len())
                && back == v.iter().map(|e| &e[..]).collect::<Vec<_>>()
                && (v.is_empty() || elems(&b[last_offset(&b)..]).next() == v.last().map(|e| &e[..]))
                && (0..=v.len() + 1).all(|i| {
                    elems(&b[offset(&b, i)..]).eq(v.iter().skip(i).map(|e| &e[..]))
                })
        }

        fn validate_never_panics(b: Vec<u8>) -> bool {
            let _ = validate(&b, 1000);
            true
        }
    }
}
