//! The packed form of a small set, kept in the entry's value bytes (like Redis's
//! listpack): the members one after another, each prefixed by its length as a LEB128
//! varint, in insertion order. The same bytes stand for a whole set wherever one travels
//! (effects, replication records, DUMP payloads, cross-core copies).
//!
//! ```text
//!  ┌─────────┬────────┬─────────┬────────┬ ...
//!  │ len LEB │ member │ len LEB │ member │
//!  └─────────┴────────┴─────────┴────────┴ ...
//! ```
//!
//! Bytes built here are trusted; bytes from elsewhere go through [`validate`] first,
//! which checks every length against what is present and never allocates.

use crate::hash::packed::same_bytes;
pub use crate::hash::packed::{put_varint, PackedError};

/// Reads the member at `*at`, advancing past it: the same format as a packed list's
/// element, read by the list's reader (one varint decoder for both), with the error
/// told in this module's terms.
fn member<'a>(b: &'a [u8], at: &mut usize) -> Result<&'a [u8], PackedError> {
    Ok(crate::list::packed::element(b, at)?)
}

/// The number of members in `b`, checking it is well formed with at most `max`.
pub fn validate(b: &[u8], max: usize) -> Result<usize, PackedError> {
    let mut at = 0;
    let mut n = 0;
    while at < b.len() {
        if n == max {
            return Err(PackedError::TooMany { max });
        }
        member(b, &mut at)?;
        n += 1;
    }
    Ok(n)
}

/// The members of packed bytes, in order; stops at the first malformed one.
#[derive(Clone)]
pub struct Members<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Members<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.at >= self.b.len() {
            return None;
        }
        match member(self.b, &mut self.at) {
            Ok(m) => Some(m),
            Err(_) => {
                self.at = self.b.len();
                None
            }
        }
    }
}

pub fn members(b: &[u8]) -> Members<'_> {
    Members { b, at: 0 }
}

pub fn len(b: &[u8]) -> usize {
    members(b).count()
}

pub fn contains(b: &[u8], m: &[u8]) -> bool {
    members(b).any(|x| x.len() == m.len() && same_bytes(x, m))
}

/// Appends one member.
pub fn push(out: &mut Vec<u8>, m: &[u8]) {
    put_varint(out, m.len());
    out.extend_from_slice(m);
}

/// Packs `members` in order.
pub fn from_members<'a>(members: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for m in members {
        push(&mut out, m);
    }
    out
}

/// Removes `m`; returns whether it was present.
pub fn remove(b: &mut Vec<u8>, m: &[u8]) -> bool {
    let mut at = 0;
    while at < b.len() {
        let start = at;
        let Ok(x) = member(b, &mut at) else {
            return false;
        };
        if x == m {
            b.drain(start..at);
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    #[test]
    fn malformed_bytes_are_errors_not_panics() {
        assert_eq!(validate(&[5, b'a'], 10), Err(PackedError::Truncated));
        assert_eq!(validate(&[0xff; 11], 10), Err(PackedError::BadVarint));
        assert_eq!(validate(&[0x81, 0x00], 10), Err(PackedError::BadVarint));
        assert_eq!(
            validate(&[1, b'a', 1, b'b'], 1),
            Err(PackedError::TooMany { max: 1 })
        );
        assert_eq!(members(&[3, b'a']).count(), 0);
    }

    quickcheck! {
        fn any_bytes_never_panic(b: Vec<u8>) -> bool {
            match validate(&b, 1 << 20) {
                Ok(n) => len(&b) == n && from_members(members(&b)) == b,
                Err(_) => true,
            }
        }

        fn behaves_like_an_ordered_set(ops: Vec<(bool, u8)>) -> bool {
            let mut b = Vec::new();
            let mut model: Vec<Vec<u8>> = Vec::new();
            for (add, m) in ops {
                let m = vec![b'm'; (m % 8) as usize];
                if add {
                    if !contains(&b, &m) { push(&mut b, &m); }
                    if !model.contains(&m) { model.push(m); }
                } else {
                    let had = model.contains(&m);
                    model.retain(|x| *x != m);
                    if remove(&mut b, &m) != had { return false; }
                }
            }
            members(&b).map(<[u8]>::to_vec).collect::<Vec<_>>() == model
        }
    }
}
