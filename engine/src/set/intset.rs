//! The intset form of a small all-integer set (Redis's `intset`): the members as
//! little-endian i64s, 8 bytes each, sorted ascending, no duplicates. Membership is a
//! binary search; SMEMBERS of an intset lists members in ascending order, as Redis's does.
//!
//! Bytes from elsewhere (a replication record) are [`validate`]d first.

/// Parses a whole decimal i64 as Redis's `string2ll` does (no spaces, no `+`, no leading
/// zeros, no "-0"): only such members are kept in an intset.
pub fn parse(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let (neg, digits) = match b[0] {
        b'-' => (true, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || (digits[0] == b'0' && (digits.len() > 1 || neg)) {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = i64::from(d - b'0');
        v = if neg {
            v.checked_mul(10)?.checked_sub(d)?
        } else {
            v.checked_mul(10)?.checked_add(d)?
        };
    }
    Some(v)
}

/// The number of members.
pub fn len(b: &[u8]) -> usize {
    b.len() / 8
}

/// The member at position `i` (below [`len`]).
pub fn get(b: &[u8], i: usize) -> Option<i64> {
    let c = b.get(i * 8..i * 8 + 8)?;
    Some(i64::from_le_bytes(c.try_into().expect("eight bytes")))
}

/// The position of `v`, or where it would go.
fn search(b: &[u8], v: i64) -> Result<usize, usize> {
    let (mut lo, mut hi) = (0, len(b));
    while lo < hi {
        let mid = (lo + hi) / 2;
        match get(b, mid).expect("in range").cmp(&v) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return Ok(mid),
        }
    }
    Err(lo)
}

pub fn contains(b: &[u8], v: i64) -> bool {
    search(b, v).is_ok()
}

/// Adds `v`; returns whether it was new.
pub fn insert(b: &mut Vec<u8>, v: i64) -> bool {
    match search(b, v) {
        Ok(_) => false,
        Err(i) => {
            b.splice(i * 8..i * 8, v.to_le_bytes());
            true
        }
    }
}

/// Removes `v`; returns whether it was present.
pub fn remove(b: &mut Vec<u8>, v: i64) -> bool {
    match search(b, v) {
        Ok(i) => {
            b.drain(i * 8..i * 8 + 8);
            true
        }
        Err(_) => false,
    }
}

/// The members in ascending order.
pub fn iter(b: &[u8]) -> impl Iterator<Item = i64> + '_ {
    b.chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("eight bytes")))
}

/// Whether `b` is a well-formed intset: whole members, strictly ascending.
pub fn validate(b: &[u8]) -> bool {
    b.len().is_multiple_of(8) && iter(b).zip(iter(b).skip(1)).all(|(a, c)| a < c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    quickcheck! {
        fn behaves_like_a_sorted_set(ops: Vec<(bool, i64)>) -> bool {
            let mut b = Vec::new();
            let mut model = std::collections::BTreeSet::new();
            for (add, v) in ops {
                let v = v % 50;
                let ok = if add { insert(&mut b, v) == model.insert(v) } else { remove(&mut b, v) == model.remove(&v) };
                if !ok { return false; }
            }
            validate(&b) && iter(&b).eq(model.iter().copied()) && model.iter().all(|&v| contains(&b, v))
        }

        fn parse_reads_what_itoa_writes(v: i64, junk: Vec<u8>) -> bool {
            let text = v.to_string();
            let other = parse(&junk);
            parse(text.as_bytes()) == Some(v)
                && other.is_none_or(|n| n.to_string().as_bytes() == &junk[..])
        }

        fn any_bytes_never_panic(b: Vec<u8>, v: i64) -> bool {
            let ok = validate(&b);
            let _ = contains(&b, v);
            !ok || len(&b) == iter(&b).count()
        }
    }
}
