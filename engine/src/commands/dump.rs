//! DUMP and RESTORE (and RESTORE-ASKING, which MIGRATE sends in a cluster), with Baton's
//! own payload format, laid out as Redis lays out its own so that tools which treat the
//! payload as opaque bytes work unchanged:
//!
//! ```text
//!  kind u8 | flags u32 BE | cas u64 LE | value ... | version u16 LE | CRC-64 (Jones) LE
//! ```
//!
//! (the checksum is of all before it). `cas` is the item's memcached CAS unique, so that
//! a `gets` before a key moves (MIGRATE, a slot stream) and a `cas` after it still match:
//! RESTORE gives the item that CAS (0: a new one). Version 0xBA01 payloads, which have no
//! `cas` field, still restore (with a new CAS).
//!
//! `kind` 0 is a string, 1 a hash (its value the packed pairs, whatever its encoding
//! here: RESTORE picks the encoding by the thresholds in force), 2 a list (its packed
//! elements, [`crate::list::packed`]), 3 a set (its packed members, likewise);
//! `flags` are memcached's
//! client flags. Redis's payloads (an RDB
//! type byte, then RDB versions 9-11) are refused by the version and checksum checks, as
//! Redis refuses payloads from a newer Redis.

use bytes::Bytes;

use crate::commands::{is_opt, parse_i64};
use crate::entry::Kind;
use crate::hash::packed;
use crate::reply::{errors, Reply};
use crate::store::ItemCopy;
use crate::Shard;

/// The payload format's version (the two bytes before the checksum).
pub const PAYLOAD_VERSION: u16 = 0xBA02;
/// The first version, without the `cas` field; still restored.
const PAYLOAD_V1: u16 = 0xBA01;
const KIND_STRING: u8 = 0;
const KIND_HASH: u8 = 1;
const KIND_LIST: u8 = 2;
const KIND_SET: u8 = 3;
/// A sorted set: its value the packed entries (`crate::zset::packed`).
const KIND_ZSET: u8 = 5;
/// kind + flags (+ cas from version 2) before the value; version + checksum after it.
const HEAD_V1: usize = 5;
const HEAD: usize = HEAD_V1 + 8;
const TAIL: usize = 10;

const BAD_PAYLOAD: Reply = Reply::err("ERR DUMP payload version or checksum are wrong");
const BUSYKEY: Reply = Reply::err("BUSYKEY Target key name already exists.");

/// CRC-64 with the Jones polynomial (reflected), as Redis's DUMP uses, table-driven.
const fn crc_table() -> [u64; 256] {
    const POLY: u64 = 0x95ac_9329_ac4b_c9b5;
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

static CRC_TABLE: [u64; 256] = crc_table();

pub fn crc64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |crc, &b| {
        CRC_TABLE[((crc ^ b as u64) & 0xff) as usize] ^ (crc >> 8)
    })
}

/// What a payload holds.
#[derive(Debug, PartialEq, Eq)]
pub struct Payload<'a> {
    pub hash: bool,
    /// A list: `value` is its packed elements.
    pub list: bool,
    /// A set: `value` is its packed members ([`crate::set::packed`]).
    pub set: bool,
    /// A sorted set (its value the packed entries).
    pub zset: bool,
    /// The string, a hash's packed pairs, a list's packed elements, or a (sorted) set's
    /// packed members.
    pub value: &'a [u8],
    pub flags: u32,
    /// The item's CAS unique where it was dumped; 0 when the payload carries none.
    pub cas: u64,
}

/// The payload DUMP returns for a string (with no CAS).
pub fn encode_payload(value: &[u8], flags: u32) -> Vec<u8> {
    encode(KIND_STRING, value, flags, 0)
}

/// The payload DUMP returns for a copy of any value whose CAS unique is `cas`.
pub fn encode_copy(copy: &ItemCopy, cas: u64) -> Vec<u8> {
    if copy.vtype == crate::entry::ValueType::Zset {
        return encode(KIND_ZSET, &copy.value, copy.flags, cas);
    }
    let kind = match copy.kind {
        Kind::Str => KIND_STRING,
        Kind::ListPacked => KIND_LIST,
        Kind::SetInts | Kind::SetPacked => KIND_SET,
        _ => KIND_HASH,
    };
    encode(kind, &copy.value, copy.flags, cas)
}

fn encode(kind: u8, value: &[u8], flags: u32, cas: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEAD + value.len() + TAIL);
    out.push(kind);
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&cas.to_le_bytes());
    out.extend_from_slice(value);
    out.extend_from_slice(&PAYLOAD_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The value and flags of a string payload, if its version, checksum and kind are right.
pub fn decode_payload(payload: &[u8]) -> Option<(&[u8], u32)> {
    decode(payload)
        .filter(|p| !p.hash && !p.list && !p.set && !p.zset)
        .map(|p| (p.value, p.flags))
}

/// What a payload holds, if its version and checksum are right and a hash's pairs are
/// well formed, at least one, with no field twice.
pub fn decode(payload: &[u8]) -> Option<Payload<'_>> {
    if payload.len() < HEAD_V1 + TAIL {
        return None;
    }
    let (body, crc) = payload.split_at(payload.len() - 8);
    if crc64(body).to_le_bytes() != crc {
        return None;
    }
    let (body, version) = body.split_at(body.len() - 2);
    let head = match u16::from_le_bytes([version[0], version[1]]) {
        PAYLOAD_VERSION if body.len() >= HEAD => HEAD,
        PAYLOAD_V1 => HEAD_V1,
        _ => return None,
    };
    if body[0] > KIND_SET && body[0] != KIND_ZSET {
        return None;
    }
    let flags = u32::from_be_bytes(body[1..5].try_into().expect("four bytes"));
    let cas = match head {
        HEAD => u64::from_le_bytes(body[HEAD_V1..HEAD].try_into().expect("eight bytes")),
        _ => 0,
    };
    let value = &body[head..];
    let hash = body[0] == KIND_HASH;
    if hash {
        let n = packed::validate(value, usize::MAX).ok()?;
        let fields: std::collections::HashSet<&[u8]> = packed::pairs(value).map(|p| p.0).collect();
        if n == 0 || fields.len() != n {
            return None;
        }
    }
    let list = body[0] == KIND_LIST;
    if list && crate::list::packed::validate(value, usize::MAX).ok()? == 0 {
        return None;
    }
    let set = body[0] == KIND_SET;
    if set {
        let n = crate::set::packed::validate(value, usize::MAX).ok()?;
        let members: std::collections::HashSet<&[u8]> =
            crate::set::packed::members(value).collect();
        if n == 0 || members.len() != n {
            return None;
        }
    }
    let zset = body[0] == KIND_ZSET;
    if zset {
        let n = crate::zset::packed::validate(value, usize::MAX).ok()?;
        let members: std::collections::HashSet<&[u8]> =
            crate::zset::packed::entries(value).map(|e| e.0).collect();
        if n == 0 || members.len() != n {
            return None;
        }
    }
    Some(Payload {
        hash,
        list,
        set,
        zset,
        value,
        flags,
        cas,
    })
}

/// DUMP key
pub fn dump(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let Some(cas) = s.lookup(&a[1], now).map(|e| e.cas()) else {
        return Reply::Nil;
    };
    match s.copy_item(&a[1], now) {
        Some(copy) => Reply::Bulk(Bytes::from(encode_copy(&copy, cas))),
        None => Reply::Nil,
    }
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency] (and
/// RESTORE-ASKING, the same).
pub fn restore(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let (mut replace, mut absttl) = (false, false);
    let mut i = 4;
    while i < a.len() {
        if is_opt(&a[i], "REPLACE") {
            replace = true;
        } else if is_opt(&a[i], "ABSTTL") {
            absttl = true;
        } else if is_opt(&a[i], "IDLETIME") && i + 1 < a.len() {
            i += 1;
            match parse_i64(&a[i]) {
                Some(n) if n >= 0 => {}
                Some(_) => return Reply::err("ERR Invalid IDLETIME value, must be >= 0"),
                None => return errors::NOT_INTEGER,
            }
        } else if is_opt(&a[i], "FREQ") && i + 1 < a.len() {
            i += 1;
            match parse_i64(&a[i]) {
                Some(n) if (0..=255).contains(&n) => {}
                Some(_) => return Reply::err("ERR Invalid FREQ value, must be >= 0 and <= 255"),
                None => return errors::NOT_INTEGER,
            }
        } else {
            return errors::SYNTAX;
        }
        i += 1;
    }
    let ttl = match parse_i64(&a[2]) {
        Some(t) if t >= 0 => t as u64,
        Some(_) => return Reply::err("ERR Invalid TTL value, must be >= 0"),
        None => return errors::NOT_INTEGER,
    };
    if !replace && s.exists(&a[1], now) {
        return BUSYKEY;
    }
    let Some(payload) = decode(&a[3]) else {
        return BAD_PAYLOAD;
    };
    let expire_at = match (ttl, absttl) {
        (0, _) => crate::entry::NO_EXPIRY,
        (t, true) => t,
        (t, false) => now.saturating_add(t),
    };
    if expire_at != crate::entry::NO_EXPIRY && expire_at <= now {
        // Already past: Redis deletes the key (with REPLACE) and creates nothing.
        if replace {
            s.delete(&a[1], now);
        }
        return Reply::Ok;
    }
    store(s, &a[1], &payload, expire_at);
    if payload.cas != 0 {
        s.carry_cas(&a[1], now, payload.cas);
    }
    Reply::Ok
}

/// Stores what `payload` holds under `key` (RESTORE's checks passed).
fn store(s: &mut Shard, key: &[u8], payload: &Payload<'_>, expire_at: u64) {
    if payload.set {
        s.put_set(key, payload.value, None, expire_at, payload.flags);
        return;
    }
    if payload.zset {
        s.put_copy(
            key,
            &ItemCopy {
                value: Bytes::copy_from_slice(payload.value),
                expire_at,
                flags: payload.flags,
                kind: Kind::ZsetPacked,
                vtype: crate::entry::ValueType::Zset,
            },
        );
        return;
    }
    let kind = if payload.list {
        Kind::ListPacked
    } else if !payload.hash {
        Kind::Str
    } else {
        let limits = crate::hash::limits();
        let packed_fits = packed::len(payload.value) <= limits.max_entries
            && packed::pairs(payload.value).all(|(f, v)| limits.fits(f, v));
        if packed_fits {
            Kind::HashPacked
        } else {
            Kind::Boxed
        }
    };
    s.put_copy(
        key,
        &ItemCopy {
            value: Bytes::copy_from_slice(payload.value),
            expire_at,
            flags: payload.flags,
            kind,
            vtype: if payload.hash {
                crate::entry::ValueType::Hash
            } else {
                crate::entry::ValueType::String
            },
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::run;

    const NOW: u64 = 1_700_000_000_000;

    fn bulk(r: Reply) -> Bytes {
        match r {
            Reply::Bulk(b) => b,
            other => panic!("not a bulk: {other:?}"),
        }
    }

    #[test]
    fn crc64_is_redis_jones() {
        // Redis's own test vector (src/crc64.c): "123456789" -> 0xe9c6d914c4b8d9ca.
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn dump_and_restore_round_trip_value_flags_and_ttl() {
        let mut s = Shard::new(0);
        run(&mut s, &["SET", "k", "hello"], NOW);
        let payload = bulk(run(&mut s, &["DUMP", "k"], NOW));
        assert_eq!(decode_payload(&payload), Some((&b"hello"[..], 0)));
        let mut t = Shard::new(1);
        // The payload is binary: the arguments are built as bytes.
        let args: Vec<Bytes> = vec![
            Bytes::from_static(b"RESTORE"),
            Bytes::from_static(b"k2"),
            Bytes::from_static(b"5000"),
            payload.clone(),
        ];
        assert_eq!(restore(&mut t, &args, NOW), Reply::Ok);
        assert_eq!(
            run(&mut t, &["GET", "k2"], NOW),
            Reply::Bulk("hello".into())
        );
        assert_eq!(run(&mut t, &["PTTL", "k2"], NOW), Reply::Int(5000));
        assert_eq!(restore(&mut t, &args, NOW), BUSYKEY);
        let mut replace = args.clone();
        replace.push(Bytes::from_static(b"REPLACE"));
        assert_eq!(restore(&mut t, &replace, NOW), Reply::Ok);
        assert_eq!(run(&mut s, &["DUMP", "nokey"], NOW), Reply::Nil);
    }

    #[test]
    fn restore_refuses_bad_payloads_ttls_and_options() {
        let mut s = Shard::new(0);
        let good = Bytes::from(encode_payload(b"v", 7));
        let call = |s: &mut Shard, extra: &[&str], ttl: &str, payload: &Bytes| {
            let mut args = vec![
                Bytes::from_static(b"RESTORE"),
                Bytes::from_static(b"k"),
                Bytes::copy_from_slice(ttl.as_bytes()),
                payload.clone(),
            ];
            args.extend(extra.iter().map(|e| Bytes::copy_from_slice(e.as_bytes())));
            restore(s, &args, NOW)
        };
        let mut flipped = good.to_vec();
        flipped[5] ^= 1;
        assert_eq!(call(&mut s, &[], "0", &Bytes::from(flipped)), BAD_PAYLOAD);
        assert_eq!(
            call(&mut s, &[], "0", &Bytes::from_static(b"x")),
            BAD_PAYLOAD
        );
        assert_eq!(
            call(&mut s, &[], "-1", &good),
            Reply::err("ERR Invalid TTL value, must be >= 0")
        );
        assert_eq!(call(&mut s, &[], "x", &good), errors::NOT_INTEGER);
        assert_eq!(call(&mut s, &["BOGUS"], "0", &good), errors::SYNTAX);
        assert_eq!(
            call(&mut s, &["FREQ", "300"], "0", &good),
            Reply::err("ERR Invalid FREQ value, must be >= 0 and <= 255")
        );
        assert_eq!(
            call(&mut s, &["IDLETIME", "-1"], "0", &good),
            Reply::err("ERR Invalid IDLETIME value, must be >= 0")
        );
        // An absolute TTL in the past creates nothing.
        assert_eq!(call(&mut s, &["ABSTTL"], "1000", &good), Reply::Ok);
        assert_eq!(run(&mut s, &["EXISTS", "k"], NOW), Reply::Int(0));
        assert_eq!(
            call(
                &mut s,
                &["ABSTTL", "IDLETIME", "5", "FREQ", "3"],
                &(NOW + 9000).to_string(),
                &good
            ),
            Reply::Ok
        );
        assert_eq!(run(&mut s, &["PTTL", "k"], NOW), Reply::Int(9000));
    }

    #[test]
    fn hashes_round_trip_in_either_encoding_and_bad_pairs_are_refused() {
        let mut s = Shard::new(0);
        run(&mut s, &["HSET", "h", "a", "1", "b", "2"], NOW);
        let big: Vec<String> = (0..300)
            .flat_map(|i| [format!("f{i}"), format!("v{i}")])
            .collect();
        let mut hset = vec!["HSET", "big"];
        hset.extend(big.iter().map(String::as_str));
        run(&mut s, &hset, NOW);
        for (key, enc) in [("h", "listpack"), ("big", "hashtable")] {
            let payload = bulk(run(&mut s, &["DUMP", key], NOW));
            assert!(decode(&payload).is_some_and(|p| p.hash));
            let mut t = Shard::new(1);
            let args = vec![
                Bytes::from_static(b"RESTORE"),
                Bytes::from(key.to_string()),
                Bytes::from_static(b"0"),
                payload,
            ];
            assert_eq!(restore(&mut t, &args, NOW), Reply::Ok);
            assert_eq!(
                run(&mut t, &["HGETALL", key], NOW),
                run(&mut s, &["HGETALL", key], NOW)
            );
            assert_eq!(
                run(&mut t, &["OBJECT", "ENCODING", key], NOW),
                Reply::Bulk(enc.into())
            );
        }
        let twice = [1, b'f', 1, b'1', 1, b'f', 1, b'2'];
        assert_eq!(
            decode(&encode(KIND_HASH, &twice, 0, 0)),
            None,
            "a field twice"
        );
        assert_eq!(decode(&encode(KIND_HASH, b"", 0, 0)), None, "an empty hash");
        assert_eq!(
            decode(&encode(KIND_HASH, &[9, b'x'], 0, 0)),
            None,
            "truncated pairs"
        );
        assert_eq!(
            decode_payload(&encode(
                KIND_HASH,
                &packed::from_pairs([(&b"f"[..], &b"1"[..])]),
                0,
                0
            )),
            None
        );
    }

    #[test]
    fn lists_round_trip_and_bad_elements_are_refused() {
        let mut s = Shard::new(0);
        run(&mut s, &["RPUSH", "l", "a", "", "c"], NOW);
        run(&mut s, &["PEXPIRE", "l", "100000"], NOW);
        let payload = bulk(run(&mut s, &["DUMP", "l"], NOW));
        assert!(decode(&payload).is_some_and(|p| p.list && !p.hash));
        assert_eq!(decode_payload(&payload), None, "not a string");
        let mut t = Shard::new(1);
        let args = |k: &'static str, ttl: &'static str| {
            vec![
                Bytes::from_static(b"RESTORE"),
                Bytes::from_static(k.as_bytes()),
                Bytes::from_static(ttl.as_bytes()),
                payload.clone(),
            ]
        };
        assert_eq!(restore(&mut t, &args("l", "0"), NOW), Reply::Ok);
        assert_eq!(
            run(&mut t, &["LRANGE", "l", "0", "-1"], NOW),
            run(&mut s, &["LRANGE", "l", "0", "-1"], NOW)
        );
        assert_eq!(run(&mut t, &["TYPE", "l"], NOW), Reply::simple("list"));
        assert_eq!(decode(&encode(KIND_LIST, b"", 0, 0)), None, "an empty list");
        assert_eq!(
            decode(&encode(KIND_LIST, &[9, b'x'], 0, 0)),
            None,
            "truncated"
        );
        assert_eq!(decode(&encode(3, b"x", 0, 0)), None, "an unknown kind");
    }

    /// A version 1 payload (no `cas` field), as a Baton before the field wrote it.
    fn v1_payload(kind: u8, value: &[u8], flags: u32) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(value);
        out.extend_from_slice(&PAYLOAD_V1.to_le_bytes());
        let crc = crc64(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    fn restore_args(key: &str, payload: &[u8]) -> Vec<Bytes> {
        vec![
            Bytes::from_static(b"RESTORE"),
            Bytes::from(key.to_string()),
            Bytes::from_static(b"0"),
            Bytes::copy_from_slice(payload),
        ]
    }

    #[test]
    fn the_cas_unique_travels_and_old_payloads_still_restore() {
        let mut s = Shard::new(3);
        run(&mut s, &["SET", "k", "v"], NOW);
        run(&mut s, &["SET", "k", "v2"], NOW);
        let cas = s.lookup(b"k", NOW).unwrap().cas();
        let payload = bulk(run(&mut s, &["DUMP", "k"], NOW));
        assert_eq!(decode(&payload).unwrap().cas, cas);
        // Restored on another shard, the item keeps its CAS...
        let mut t = Shard::new(0);
        assert_eq!(
            restore(&mut t, &restore_args("k", &payload), NOW),
            Reply::Ok
        );
        assert_eq!(t.lookup(b"k", NOW).unwrap().cas(), cas);
        assert_eq!(run(&mut t, &["GET", "k"], NOW), Reply::Bulk("v2".into()));
        // ...and the target's later CAS uniques are past it (none is reused).
        run(&mut t, &["SET", "other", "x"], NOW);
        assert!(t.lookup(b"other", NOW).unwrap().cas() > cas);
        run(&mut t, &["SET", "k", "v3"], NOW);
        assert_ne!(t.lookup(b"k", NOW).unwrap().cas(), cas);
        // A list keeps its CAS too.
        run(&mut s, &["RPUSH", "l", "a", "b"], NOW);
        let lcas = s.lookup(b"l", NOW).unwrap().cas();
        let lp = bulk(run(&mut s, &["DUMP", "l"], NOW));
        assert_eq!(restore(&mut t, &restore_args("l", &lp), NOW), Reply::Ok);
        assert_eq!(t.lookup(b"l", NOW).unwrap().cas(), lcas);
        // A version 1 payload restores, with a CAS of the target's own.
        let old = v1_payload(KIND_STRING, b"old", 9);
        let p = decode(&old).unwrap();
        assert_eq!((p.value, p.flags, p.cas), (&b"old"[..], 9, 0));
        assert_eq!(restore(&mut t, &restore_args("o", &old), NOW), Reply::Ok);
        assert_eq!(run(&mut t, &["GET", "o"], NOW), Reply::Bulk("old".into()));
        assert_ne!(t.lookup(b"o", NOW).unwrap().cas(), 0);
        let old_list = v1_payload(KIND_LIST, &crate::list::packed::pack([&b"x"[..]]), 0);
        assert!(decode(&old_list).is_some_and(|p| p.list));
        // A version 2 payload too short for its `cas` field, or of an unknown version,
        // is refused.
        let mut short = vec![KIND_STRING, 0, 0, 0, 0];
        short.extend_from_slice(&PAYLOAD_VERSION.to_le_bytes());
        let crc = crc64(&short);
        short.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(decode(&short), None);
        let mut other = v1_payload(KIND_STRING, b"x", 0);
        let n = other.len();
        other[n - 10..n - 8].copy_from_slice(&0xBA03u16.to_le_bytes());
        let crc = crc64(&other[..n - 8]);
        other[n - 8..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode(&other), None);
    }

    quickcheck::quickcheck! {
        /// Any bytes: decoding never panics, and whatever decodes re-encodes to itself.
        fn payload_decoding_never_panics(bytes: Vec<u8>, value: Vec<u8>, flags: u32) -> bool {
            let _ = decode(&bytes);
            let p = encode_payload(&value, flags);
            decode_payload(&p) == Some((&value[..], flags))
        }
    }
}
