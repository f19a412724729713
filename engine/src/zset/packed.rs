//! The packed form of a sorted set (Redis's `listpack` encoding), also the layout of every
//! chunk of the large form ([`super::big`]): entries sorted by (score, member), each the
//! score as 8 little-endian bytes of an IEEE double, then the member prefixed by its
//! length as a LEB128 varint.
//!
//! ```text
//!  ┌───────────┬─────────┬────────┬───────────┬─────────┬────────┬ ...
//!  │ score f64 │ mlen LEB│ member │ score f64 │ mlen LEB│ member │
//!  └───────────┴─────────┴────────┴───────────┴─────────┴────────┴ ...
//! ```
//!
//! Scores are never NaN and never -0 (stored as 0, which is how Redis answers for it), so
//! `partial_cmp` orders them totally. Bytes built here are trusted; bytes from elsewhere
//! (a replication record, a RESTORE payload) go through [`validate`], which checks every
//! length against what is present and never allocates.

use std::cmp::Ordering;

pub use crate::hash::packed::put_varint;
use crate::hash::packed::same_bytes;

/// Why packed bytes are not a sorted set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PackedError {
    #[error("an entry runs past the end of the packed sorted set")]
    Truncated,
    #[error("a length varint is not the shortest encoding of a 64-bit number")]
    BadVarint,
    #[error("a score is not a number")]
    NaN,
    #[error("the packed sorted set holds more than {max} entries")]
    TooMany { max: usize },
}

/// The stored form of a score: -0 becomes 0.
pub fn norm(score: f64) -> f64 {
    if score == 0.0 {
        0.0
    } else {
        score
    }
}

/// Redis's order: by score, then by member bytes.
pub fn cmp(a: (f64, &[u8]), b: (f64, &[u8])) -> Ordering {
    a.0.partial_cmp(&b.0)
        .unwrap_or(Ordering::Equal)
        .then_with(|| a.1.cmp(b.1))
}

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

/// Reads the entry at `*at`, advancing it.
#[inline]
fn entry<'a>(b: &'a [u8], at: &mut usize) -> Result<(&'a [u8], f64), PackedError> {
    // The common entry, a member shorter than 128 bytes: its length is one byte.
    if let Some(head) = b.get(*at..*at + 9) {
        if head[8] < 0x80 {
            let score = f64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
            if score.is_nan() {
                return Err(PackedError::NaN);
            }
            let start = *at + 9;
            let m = b
                .get(start..start + usize::from(head[8]))
                .ok_or(PackedError::Truncated)?;
            *at = start + m.len();
            return Ok((m, score));
        }
    }
    entry_slow(b, at)
}

/// [`entry`] for any length.
fn entry_slow<'a>(b: &'a [u8], at: &mut usize) -> Result<(&'a [u8], f64), PackedError> {
    let s = b.get(*at..*at + 8).ok_or(PackedError::Truncated)?;
    let score = f64::from_le_bytes(s.try_into().expect("8 bytes"));
    if score.is_nan() {
        return Err(PackedError::NaN);
    }
    *at += 8;
    let len = varint(b, at)?;
    let end = at.checked_add(len).ok_or(PackedError::Truncated)?;
    let m = b.get(*at..end).ok_or(PackedError::Truncated)?;
    *at = end;
    Ok((m, score))
}

/// The number of entries in `b`, checking that each is well formed (at most `max`).
/// Order and uniqueness are not checked: foreign bytes are rebuilt entry by entry.
pub fn validate(b: &[u8], max: usize) -> Result<usize, PackedError> {
    let mut at = 0;
    let mut n = 0;
    while at < b.len() {
        if n == max {
            return Err(PackedError::TooMany { max });
        }
        entry(b, &mut at)?;
        n += 1;
    }
    Ok(n)
}

/// The entries of packed bytes, in order, as (member, score). Stops at the first
/// malformed entry (bytes built here never have one).
#[derive(Clone)]
pub struct Entries<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.b.len() {
            return None;
        }
        match entry(self.b, &mut self.at) {
            Ok(e) => Some(e),
            Err(_) => {
                self.at = self.b.len();
                None
            }
        }
    }
}

pub fn entries(b: &[u8]) -> Entries<'_> {
    Entries { b, at: 0 }
}

/// Entries with the byte offset each starts at and the offset past it.
fn spans(b: &[u8]) -> impl Iterator<Item = (usize, usize, &[u8], f64)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= b.len() {
            return None;
        }
        let start = at;
        match entry(b, &mut at) {
            Ok((m, s)) => Some((start, at, m, s)),
            Err(_) => {
                at = b.len();
                None
            }
        }
    })
}

pub fn len(b: &[u8]) -> usize {
    entries(b).count()
}

/// The first entry, if any.
pub fn first(b: &[u8]) -> Option<(&[u8], f64)> {
    entries(b).next()
}

/// Where a member's entry is: its position among the entries, the byte span of the
/// entry, and its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Found {
    pub pos: usize,
    pub start: usize,
    pub end: usize,
    pub score: f64,
}

/// Finds `member`'s entry. The scan every member lookup pays (a large set's chunk holds up
/// to 128 entries): it reads only each entry's length byte, and the score and the member
/// bytes of an entry whose length matches, instead of decoding every entry. Bytes built
/// here are trusted; on any others it never panics (a truncated entry ends the scan).
#[inline]
pub fn locate(b: &[u8], member: &[u8]) -> Option<Found> {
    let mut at = 0;
    let mut pos = 0;
    while at < b.len() {
        let start = at;
        let len = *b.get(at + 8)?;
        if len < 0x80 {
            // The usual entry: a one-byte length.
            let end = at + 9 + usize::from(len);
            let m = b.get(at + 9..end)?;
            if m.len() == member.len() && same_bytes(m, member) {
                let score = f64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
                return (!score.is_nan()).then_some(Found {
                    pos,
                    start,
                    end,
                    score,
                });
            }
            at = end;
        } else {
            let (m, score) = entry_slow(b, &mut at).ok()?;
            if m == member {
                return Some(Found {
                    pos,
                    start,
                    end: at,
                    score,
                });
            }
        }
        pos += 1;
    }
    None
}

/// The byte offset `n` entries past the entry at byte offset `at`, reading only their
/// lengths (`None` past a truncated entry).
#[inline]
pub fn skip(b: &[u8], mut at: usize, n: usize) -> Option<usize> {
    for _ in 0..n {
        let len = *b.get(at + 8)?;
        if len < 0x80 {
            at += 9 + usize::from(len);
        } else {
            entry_slow(b, &mut at).ok()?;
        }
    }
    (at <= b.len()).then_some(at)
}

/// The end offset and score of the entry at byte offset `at` if its member is `member`.
#[inline]
pub fn entry_is(b: &[u8], at: usize, member: &[u8]) -> Option<(usize, f64)> {
    let mut end = at;
    let (m, score) = entry(b, &mut end).ok()?;
    (m.len() == member.len() && same_bytes(m, member)).then_some((end, score))
}

/// The member's score and its position (0-based) among the entries.
pub fn find(b: &[u8], member: &[u8]) -> Option<(usize, f64)> {
    locate(b, member).map(|f| (f.pos, f.score))
}

pub fn score(b: &[u8], member: &[u8]) -> Option<f64> {
    find(b, member).map(|(_, s)| s)
}

/// The encoded size of one entry.
pub fn entry_len(member: &[u8]) -> usize {
    8 + varint_len(member.len()) + member.len()
}

fn varint_len(mut v: usize) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Appends one entry (the caller keeps the order).
pub fn push(out: &mut Vec<u8>, member: &[u8], score: f64) {
    out.extend_from_slice(&norm(score).to_le_bytes());
    put_varint(out, member.len());
    out.extend_from_slice(member);
}

/// Inserts an entry for a member that is absent, at its place in the order; returns its
/// position among the entries.
pub fn insert(b: &mut Vec<u8>, member: &[u8], score: f64) -> usize {
    let score = norm(score);
    let mut at = b.len();
    let mut i = 0;
    for (start, _, m, s) in spans(b) {
        // The score decides but for a tie: no member comparison on the way.
        if s > score || (s == score && m > member) {
            at = start;
            break;
        }
        i += 1;
    }
    // The entry is written into the gap opened for it (no entry built aside and spliced).
    let mut head = [0u8; 18];
    head[..8].copy_from_slice(&score.to_le_bytes());
    let mut h = 8;
    let mut v = member.len();
    while v >= 0x80 {
        head[h] = (v as u8) | 0x80;
        v >>= 7;
        h += 1;
    }
    head[h] = v as u8;
    h += 1;
    let need = h + member.len();
    if b.capacity() - b.len() < need {
        // Grow by an eighth, not double: large sets hold many chunks.
        b.reserve_exact(need.max(b.capacity() / 8));
    }
    let old = b.len();
    b.resize(old + need, 0);
    b.copy_within(at..old, at + need);
    b[at..at + h].copy_from_slice(&head[..h]);
    b[at + h..at + need].copy_from_slice(member);
    i
}

/// Removes a member; returns its score.
pub fn remove(b: &mut Vec<u8>, member: &[u8]) -> Option<f64> {
    let f = locate(b, member)?;
    b.drain(f.start..f.end);
    Some(f.score)
}

/// The byte offset of the entry at position `i` (`b.len()` past the last).
pub fn offset_of(b: &[u8], i: usize) -> usize {
    spans(b).nth(i).map_or(b.len(), |(start, ..)| start)
}

/// How many leading entries satisfy `before` (which holds for a prefix of the order).
pub fn count_while(b: &[u8], mut before: impl FnMut(&[u8], f64) -> bool) -> usize {
    entries(b).take_while(|&(m, s)| before(m, s)).count()
}

/// Packs entries given in any order (a later duplicate replaces the earlier score).
pub fn from_entries<'a>(items: impl IntoIterator<Item = (&'a [u8], f64)>) -> Vec<u8> {
    let mut v: Vec<(&[u8], f64)> = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (m, s) in items {
        match seen.get(m) {
            Some(&i) => v[i] = (m, norm(s)),
            None => {
                seen.insert(m, v.len());
                v.push((m, norm(s)));
            }
        }
    }
    v.sort_by(|a, b| cmp((a.1, a.0), (b.1, b.0)));
    let mut out = Vec::with_capacity(v.iter().map(|(m, _)| entry_len(m)).sum());
    for (m, s) in v {
        push(&mut out, m, s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    #[test]
    fn finds_members_of_every_length() {
        // One-byte lengths (the fast read) and longer ones (two-byte varints).
        let members: Vec<Vec<u8>> = [0, 1, 3, 4, 7, 8, 16, 17, 127, 128, 300]
            .iter()
            .map(|&n| vec![b'm'; n])
            .collect();
        let mut b = Vec::new();
        for (i, m) in members.iter().enumerate() {
            insert(&mut b, m, i as f64);
        }
        assert_eq!(len(&b), members.len());
        for (i, m) in members.iter().enumerate() {
            assert_eq!(find(&b, m), Some((i, i as f64)));
            let f = locate(&b, m).unwrap();
            assert_eq!((f.start, f.end), (offset_of(&b, i), offset_of(&b, i + 1)));
        }
        assert_eq!(find(&b, &[b'm'; 5]), None);
        assert_eq!(find(&b, &[b'n'; 128]), None);
        // A truncated last entry ends the walk.
        assert_eq!(len(&b[..b.len() - 1]), members.len() - 1);
    }

    #[test]
    fn keeps_score_member_order() {
        let mut b = Vec::new();
        assert_eq!(insert(&mut b, b"b", 1.0), 0);
        assert_eq!(insert(&mut b, b"a", 1.0), 0);
        assert_eq!(insert(&mut b, b"c", -0.0), 0);
        assert_eq!(insert(&mut b, b"z", f64::INFINITY), 3);
        let got: Vec<_> = entries(&b).collect();
        assert_eq!(
            got,
            vec![
                (&b"c"[..], 0.0),
                (b"a", 1.0),
                (b"b", 1.0),
                (b"z", f64::INFINITY)
            ]
        );
        assert!(
            score(&b, b"c").unwrap().is_sign_positive(),
            "-0 is kept as 0"
        );
        assert_eq!(find(&b, b"b"), Some((2, 1.0)));
        assert_eq!(remove(&mut b, b"a"), Some(1.0));
        assert_eq!(remove(&mut b, b"a"), None);
        assert_eq!(validate(&b, 10), Ok(3));
        assert_eq!(count_while(&b, |_, s| s < 1.0), 1);
        assert_eq!(validate(&b, 2), Err(PackedError::TooMany { max: 2 }));
    }

    #[test]
    fn malformed_bytes_are_errors_not_panics() {
        assert_eq!(validate(&[0; 7], 10), Err(PackedError::Truncated));
        assert_eq!(
            validate(&[0, 0, 0, 0, 0, 0, 0, 0, 3, b'a'], 10),
            Err(PackedError::Truncated)
        );
        let mut nan = f64::NAN.to_le_bytes().to_vec();
        nan.push(0);
        assert_eq!(validate(&nan, 10), Err(PackedError::NaN));
        let mut bad = vec![0u8; 8];
        bad.extend_from_slice(&[0x80, 0x00]);
        assert_eq!(validate(&bad, 10), Err(PackedError::BadVarint));
    }

    quickcheck! {
        fn any_bytes_never_panic(b: Vec<u8>) -> bool {
            let n = validate(&b, 1 << 20);
            let _ = score(&b, b"x");
            match n {
                Ok(n) => len(&b) == n,
                Err(_) => true,
            }
        }

        fn behaves_like_a_sorted_map(ops: Vec<(bool, u8, i8)>) -> bool {
            let mut b = Vec::new();
            let mut model: std::collections::BTreeMap<Vec<u8>, f64> = Default::default();
            for (add, m, s) in ops {
                let m = vec![b'a' + m % 8];
                if add {
                    remove(&mut b, &m);
                    insert(&mut b, &m, f64::from(s));
                    model.insert(m, f64::from(s));
                } else if remove(&mut b, &m).is_some() != model.remove(&m).is_some() {
                    return false;
                }
            }
            let mut want: Vec<(Vec<u8>, f64)> = model.into_iter().collect();
            want.sort_by(|a, b| cmp((a.1, &a.0), (b.1, &b.0)));
            let got: Vec<(Vec<u8>, f64)> = entries(&b).map(|(m, s)| (m.to_vec(), s)).collect();
            got == want && from_entries(entries(&b)) == b
        }
    }
}
