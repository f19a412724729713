//! Key -> hash slot, by the exact Redis Cluster rule.
//!
//! `HASH_SLOT = CRC16(hash_tag(key)) mod 16384`. Keys that share a hash tag (`{user1000}.a`,
//! `{user1000}.b`) share a slot, so multi-key commands over them stay on one node.

use crate::crc::crc16;

/// Number of hash slots in the keyspace, fixed by the Redis Cluster protocol.
pub const SLOTS: u16 = 16384;

/// The part of `key` that is hashed: the hash tag if there is one, else the whole key.
///
/// Redis Cluster rule: find the first `{`; find the first `}` after it; if there is at
/// least one byte between them, that substring is the tag. Otherwise (no `{`, no `}`
/// after it, or `{}`) the whole key is hashed. Only the first `{` counts, so
/// `foo{}{bar}` hashes the whole key and `foo{{bar}}` hashes `{bar`.
///
/// ```
/// use baton_ring::hash_tag;
/// assert_eq!(hash_tag(b"{user1000}.following"), b"user1000");
/// assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
/// assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
/// ```
pub fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else {
        return key;
    };
    let after = &key[open + 1..];
    match after.iter().position(|&b| b == b'}') {
        Some(close) if close > 0 => &after[..close],
        _ => key,
    }
}

/// The hash slot (0..16384) that owns `key`, identical to Redis's `CLUSTER KEYSLOT`.
///
/// ```
/// assert_eq!(baton_ring::slot(b"somekey"), 11058);
/// ```
pub fn slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) & (SLOTS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    #[test]
    fn hash_tag_rules() {
        // No braces, unmatched braces, empty tag: the whole key.
        assert_eq!(hash_tag(b"foo"), b"foo");
        assert_eq!(hash_tag(b""), b"");
        assert_eq!(hash_tag(b"{bar"), b"{bar");
        assert_eq!(hash_tag(b"bar}"), b"bar}");
        assert_eq!(hash_tag(b"}{a"), b"}{a");
        assert_eq!(hash_tag(b"{}"), b"{}");
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        // The first '{' and the first '}' after it.
        assert_eq!(hash_tag(b"{user1000}.following"), b"user1000");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hash_tag(b"}{a}"), b"a");
        assert_eq!(hash_tag(b"a{b}"), b"b");
        assert_eq!(hash_tag(b"{}}"), b"{}}");
        assert_eq!(hash_tag(b"x{}y}"), b"x{}y}");
    }

    /// Expected values from `CLUSTER KEYSLOT` on redis-server 7 (cluster-enabled).
    #[test]
    fn matches_redis_cluster_keyslot() {
        let cases: &[(&[u8], u16)] = &[
            (b"", 0),
            (b"foo", 12182),
            (b"bar", 5061),
            (b"hello", 866),
            (b"somekey", 11058),
            (b"123456789", 12739),
            (b"memtier-1", 3498),
            (b"foo{hash_tag}", 2515),
            (b"bar{hash_tag}", 2515),
            (b"{user1000}.following", 3443),
            (b"{user1000}.followers", 3443),
            (b"foo{}{bar}", 8363),
            (b"foo{{bar}}zap", 4015),
            (b"{bar", 4015),
            (b"foo{bar}{zap}", 5061),
            (b"a{b}", 3300),
            (b"{}", 15257),
            (b"}{a}", 15495),
        ];
        for &(key, expected) in cases {
            assert_eq!(
                slot(key),
                expected,
                "slot({:?})",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn documented_colocation_examples() {
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        assert_eq!(slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") & (SLOTS - 1));
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
        assert_eq!(slot(b"foo{bar}{zap}"), slot(b"bar"));
    }

    quickcheck! {
        fn slot_in_range(key: Vec<u8>) -> bool {
            slot(&key) < SLOTS
        }

        fn tag_is_a_substring_of_the_key(key: Vec<u8>) -> bool {
            let tag = hash_tag(&key);
            let start = tag.as_ptr() as usize - key.as_ptr() as usize;
            start + tag.len() <= key.len() && (tag.len() == key.len() || !tag.is_empty())
        }

        fn keys_without_open_brace_hash_whole(key: Vec<u8>) -> bool {
            let key: Vec<u8> = key.into_iter().filter(|&b| b != b'{').collect();
            hash_tag(&key) == key.as_slice()
        }
    }
}
