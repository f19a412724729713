//! The packed form of a small hash, kept in the entry's value bytes (Redis's listpack):
//! field/value pairs one after another, each string prefixed by its length as a LEB128
//! varint, in insertion order.
//!
//! ```text
//!  ┌──────────┬───────┬──────────┬───────┬──────────┬───────┬ ...
//!  │flen LEB  │ field │vlen LEB  │ value │flen LEB  │ field │
//!  └──────────┴───────┴──────────┴───────┴──────────┴───────┴ ...
//! ```
//!
//! A short field or value pays one byte of overhead (Redis's listpack pays two, plus a
//! 7-byte header and the robj and dict entry around it). Every operation walks the pairs,
//! which is what the thresholds (`hash-max-listpack-entries`, `-value`) bound.
//!
//! Bytes built here are trusted; bytes from elsewhere (a replication record) go through
//! [`validate`] first, which checks every length against what is present and never
//! allocates.

/// Why packed bytes are not a hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PackedError {
    #[error("a length runs past the end of the packed hash")]
    Truncated,
    #[error("a length varint is not the shortest encoding of a 64-bit number")]
    BadVarint,
    #[error("the packed hash holds more than {max} pairs")]
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

impl From<crate::list::packed::PackedError> for PackedError {
    fn from(e: crate::list::packed::PackedError) -> PackedError {
        use crate::list::packed::PackedError as ListError;
        match e {
            ListError::Truncated => PackedError::Truncated,
            ListError::BadVarint => PackedError::BadVarint,
            ListError::TooMany { max } => PackedError::TooMany { max },
        }
    }
}

/// Reads a length-prefixed string at `*at`, advancing it: the format of a packed list's
/// element, read by the list's reader (one decoder for lists, sets and hashes).
#[inline]
fn string<'a>(b: &'a [u8], at: &mut usize) -> Result<&'a [u8], PackedError> {
    Ok(crate::list::packed::element(b, at)?)
}

/// The number of pairs in `b`, checking that it is well formed with at most `max_pairs`.
pub fn validate(b: &[u8], max_pairs: usize) -> Result<usize, PackedError> {
    let mut at = 0;
    let mut n = 0;
    while at < b.len() {
        if n == max_pairs {
            return Err(PackedError::TooMany { max: max_pairs });
        }
        string(b, &mut at)?;
        string(b, &mut at)?;
        n += 1;
    }
    Ok(n)
}

/// The pairs of packed bytes, in order. Stops at the first malformed pair (bytes built
/// here never have one; foreign bytes are [`validate`]d first).
#[derive(Clone)]
pub struct Pairs<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.b.len() {
            return None;
        }
        let mut at = self.at;
        match (string(self.b, &mut at), string(self.b, &mut at)) {
            (Ok(f), Ok(v)) => {
                self.at = at;
                Some((f, v))
            }
            _ => {
                self.at = self.b.len();
                None
            }
        }
    }
}

pub fn pairs(b: &[u8]) -> Pairs<'_> {
    Pairs { b, at: 0 }
}

pub fn len(b: &[u8]) -> usize {
    pairs(b).count()
}

pub fn get<'a>(b: &'a [u8], field: &[u8]) -> Option<&'a [u8]> {
    pairs(b)
        .find(|(f, _)| f.len() == field.len() && same_bytes(f, field))
        .map(|(_, v)| v)
}

/// Whether two slices of the same length hold the same bytes. A short field or member
/// (the usual case, and a scan of a packed collection compares up to 128 of them) is
/// compared in at most two word loads per side instead of a call to `memcmp`. Always
/// inlined: as a call (the fat-LTO build made it one) it cost as much as the loads.
#[inline(always)]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len();
    let word = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"));
    let half = |s: &[u8], i: usize| u32::from_le_bytes(s[i..i + 4].try_into().expect("4 bytes"));
    match n {
        0..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
    }
}

/// The encoded size of one pair.
pub fn pair_len(field: &[u8], value: &[u8]) -> usize {
    varint_len(field.len()) + field.len() + varint_len(value.len()) + value.len()
}

fn varint_len(mut v: usize) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Appends one pair.
pub fn push(out: &mut Vec<u8>, field: &[u8], value: &[u8]) {
    put_varint(out, field.len());
    out.extend_from_slice(field);
    put_varint(out, value.len());
    out.extend_from_slice(value);
}

/// Packs `pairs` in order (later duplicates replace earlier values, keeping the first
/// position, as HSET does).
pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    set(&mut out, pairs);
    out
}

/// Sets `new` pairs on packed bytes `b` in place: an existing field keeps its position
/// and takes the new value, a new field is appended. Returns how many fields were new.
/// O(fields x pairs): callers keep both small (the thresholds), or use the table form.
pub fn set<'a>(b: &mut Vec<u8>, new: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> usize {
    let mut added = 0;
    for (field, value) in new {
        let mut at = 0;
        let mut found = None;
        while at < b.len() {
            let start = at;
            let (Ok(f), Ok(_)) = (string(b, &mut at), string(b, &mut at)) else {
                break;
            };
            if f == field {
                found = Some((start, at));
                break;
            }
        }
        match found {
            // A value of the same length is written over the old one.
            Some((start, end)) if end - start == pair_len(field, value) => {
                b[end - value.len()..end].copy_from_slice(value);
            }
            Some((start, end)) => {
                let mut pair = Vec::with_capacity(pair_len(field, value));
                push(&mut pair, field, value);
                b.splice(start..end, pair);
            }
            None => {
                push(b, field, value);
                added += 1;
            }
        }
    }
    added
}

/// Sets `new` pairs on packed bytes `b` when every field is present with a value as long
/// as its new one, writing the values over the old ones (the bytes keep their length);
/// false, leaving `b` as it was, when any is not.
pub fn overwrite<'a>(
    b: &mut [u8],
    new: impl IntoIterator<Item = (&'a [u8], &'a [u8])> + Clone,
) -> bool {
    let same_length =
        |field: &[u8], value: &[u8]| pairs(b).any(|(f, v)| f == field && v.len() == value.len());
    if !new.clone().into_iter().all(|(f, v)| same_length(f, v)) {
        return false;
    }
    for (field, value) in new {
        let mut at = 0;
        while at < b.len() {
            let (Ok(f), Ok(_)) = (string(b, &mut at), string(b, &mut at)) else {
                break;
            };
            if f == field {
                b[at - value.len()..at].copy_from_slice(value);
                break;
            }
        }
    }
    true
}

/// Removes `fields` from packed bytes `b` in place; returns how many were present.
pub fn del(b: &mut Vec<u8>, fields: &[&[u8]]) -> usize {
    let mut removed = 0;
    for field in fields {
        let mut at = 0;
        while at < b.len() {
            let start = at;
            let (Ok(f), Ok(_)) = (string(b, &mut at), string(b, &mut at)) else {
                break;
            };
            if f == *field {
                b.drain(start..at);
                removed += 1;
                break;
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    #[test]
    fn same_bytes_sees_every_differing_byte() {
        for n in 0..40 {
            let a: Vec<u8> = (0..n as u8).collect();
            assert!(same_bytes(&a, &a.clone()));
            for i in 0..n {
                let mut b = a.clone();
                b[i] ^= 0x40;
                assert!(!same_bytes(&a, &b), "length {n}, byte {i}");
            }
        }
    }

    #[test]
    fn set_replaces_in_place_and_appends() {
        let mut b = from_pairs([(&b"a"[..], &b"1"[..]), (b"b", b"2")]);
        assert_eq!(
            set(&mut b, [(&b"a"[..], &b"long value"[..]), (b"c", b"3")]),
            1
        );
        let got: Vec<_> = pairs(&b).collect();
        assert_eq!(
            got,
            vec![(&b"a"[..], &b"long value"[..]), (b"b", b"2"), (b"c", b"3")]
        );
        assert_eq!(del(&mut b, &[b"b", b"zz"]), 1);
        assert_eq!(get(&b, b"c"), Some(&b"3"[..]));
        assert_eq!((len(&b), validate(&b, 10)), (2, Ok(2)));
        assert_eq!(validate(&b, 1), Err(PackedError::TooMany { max: 1 }));
    }

    #[test]
    fn overwrite_takes_same_length_values_only() {
        let mut b = from_pairs([(&b"a"[..], &b"12"[..]), (b"b", b"34")]);
        let before = b.clone();
        assert!(!overwrite(
            &mut b,
            [(&b"a"[..], &b"xy"[..]), (b"b", b"long")]
        ));
        assert!(!overwrite(&mut b, [(&b"c"[..], &b"xy"[..])]));
        assert_eq!(b, before, "a refused overwrite changes nothing");
        assert!(overwrite(
            &mut b,
            [(&b"b"[..], &b"xy"[..]), (b"a", b"zz"), (b"b", b"vw")]
        ));
        let got: Vec<_> = pairs(&b).collect();
        assert_eq!(got, vec![(&b"a"[..], &b"zz"[..]), (b"b", b"vw")]);
    }

    #[test]
    fn malformed_bytes_are_errors_not_panics() {
        assert_eq!(validate(&[5, b'a'], 10), Err(PackedError::Truncated));
        assert_eq!(validate(&[1, b'a'], 10), Err(PackedError::Truncated));
        assert_eq!(validate(&[0xff; 11], 10), Err(PackedError::BadVarint));
        assert_eq!(
            validate(
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
                10
            ),
            Err(PackedError::Truncated)
        );
        assert_eq!(pairs(&[3, b'a']).count(), 0);
        assert_eq!(
            validate(&[0x81, 0x00, b'a', 0], 10),
            Err(PackedError::BadVarint)
        );
    }

    quickcheck! {
        /// Any bytes: validate and the readers never panic, and agree on the count.
        fn any_bytes_never_panic(b: Vec<u8>) -> bool {
            let n = validate(&b, 1 << 20);
            let _ = get(&b, b"x");
            match n {
                Ok(n) => {
                    let mut again = Vec::new();
                    for (f, v) in pairs(&b) {
                        push(&mut again, f, v);
                    }
                    len(&b) == n && again == b
                }
                Err(_) => true,
            }
        }

        /// Where `overwrite` applies, it gives the bytes `set` gives, adding no field.
        fn overwrite_agrees_with_set(ops: Vec<(u8, Vec<u8>)>, new: Vec<(u8, Vec<u8>)>) -> bool {
            let fields: Vec<(Vec<u8>, Vec<u8>)> = ops.into_iter().map(|(f, v)| (vec![f % 8], v)).collect();
            let b = from_pairs(fields.iter().map(|(f, v)| (&f[..], &v[..])));
            let new: Vec<(Vec<u8>, Vec<u8>)> = new.into_iter().map(|(f, v)| (vec![f % 8], v)).collect();
            let new = new.iter().map(|(f, v)| (&f[..], &v[..]));
            let mut set_b = b.clone();
            let added = set(&mut set_b, new.clone());
            let mut over_b = b.clone();
            if overwrite(&mut over_b, new) {
                added == 0 && over_b == set_b
            } else {
                over_b == b
            }
        }

        /// Packed pairs behave like an insertion-ordered map.
        fn behaves_like_a_map(ops: Vec<(bool, u8, Vec<u8>)>) -> bool {
            let mut b = Vec::new();
            let mut model: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            for (is_set, f, v) in ops {
                let f = vec![f % 8];
                if is_set {
                    let added = set(&mut b, [(&f[..], &v[..])]);
                    match model.iter_mut().find(|(k, _)| *k == f) {
                        Some(p) => { p.1 = v; if added != 0 { return false; } }
                        None => { model.push((f, v)); if added != 1 { return false; } }
                    }
                } else {
                    let removed = del(&mut b, &[&f[..]]);
                    let before = model.len();
                    model.retain(|(k, _)| *k != f);
                    if removed != before - model.len() { return false; }
                }
            }
            validate(&b, usize::MAX) == Ok(model.len())
                && pairs(&b).map(|(f, v)| (f.to_vec(), v.to_vec())).collect::<Vec<_>>() == model
        }
    }
}
