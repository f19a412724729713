//! OBJECT and MEMORY: what the shard knows about one key's representation and cost.

use bytes::Bytes;

use super::parse_i64;
use crate::reply::{errors, Reply};
use crate::shard::Shard;

/// Redis's `OBJ_ENCODING_EMBSTR_SIZE_LIMIT`: strings up to this length are "embstr".
const EMBSTR_LIMIT: usize = 44;

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. Baton reports the key's S3-FIFO",
    "    frequency (0 to 3) while an S3-FIFO policy with a maxmemory limit tracks it.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

const MEMORY_HELP: &[&str] = &[
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value, including its share of",
    "    the shard's table. SAMPLES is accepted for compatibility (strings need none).",
    "HELP",
    "    Prints this help.",
];

/// The error OBJECT FREQ gives when no frequency is tracked (Redis's names LFU).
pub const NO_FREQ: &str = "ERR An S3-FIFO maxmemory policy with a maxmemory limit is not active, access frequency not tracked.";

fn unknown_sub(cmd: &str, sub: &[u8]) -> Reply {
    Reply::error(format!(
        "ERR unknown subcommand '{}'. Try {cmd} HELP.",
        String::from_utf8_lossy(&sub[..sub.len().min(128)])
    ))
}

fn is(sub: &[u8], name: &str) -> bool {
    sub.eq_ignore_ascii_case(name.as_bytes())
}

/// The encoding Redis would report for a string value.
pub fn string_encoding(v: &[u8]) -> &'static str {
    if parse_i64(v).is_some() {
        "int"
    } else if v.len() <= EMBSTR_LIMIT {
        "embstr"
    } else {
        "raw"
    }
}

/// OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key | OBJECT HELP
pub fn object(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let sub = &a[1];
    if is(sub, "help") && a.len() == 2 {
        return Reply::help_lines(OBJECT_HELP);
    }
    let known = ["encoding", "freq", "idletime", "refcount"];
    let Some(name) = known.iter().find(|n| is(sub, n)) else {
        return unknown_sub("OBJECT", sub);
    };
    if a.len() != 3 {
        return errors::wrong_arity(&format!("object|{name}"));
    }
    let key = &a[2];
    match *name {
        // A bulk string, as Redis's `addReplyBulkCString`.
        "encoding" => s.lookup(key, now).map_or(Reply::Nil, |e| {
            if let Some(z) = e.zset() {
                return Reply::bulk(z.encoding());
            }
            match e.hash() {
                Some(h) => Reply::bulk(h.encoding()),
                None if e.list().is_some() => Reply::bulk("quicklist"),
                None => match e.set() {
                    Some(set) => Reply::bulk(set.encoding().name()),
                    None => Reply::bulk(string_encoding(e.value())),
                },
            }
        }),
        "freq" => match s.key_freq(key, now) {
            None => Reply::Nil,
            Some(Ok(f)) => Reply::Int(i64::from(f)),
            Some(Err(())) => Reply::err(NO_FREQ),
        },
        "idletime" => s
            .key_idle_secs(key, now)
            .map_or(Reply::Nil, |secs| Reply::Int(secs as i64)),
        _ => s.lookup(key, now).map_or(Reply::Nil, |_| Reply::Int(1)),
    }
}

/// MEMORY USAGE key [SAMPLES count] | MEMORY HELP
pub fn memory(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let sub = &a[1];
    if is(sub, "help") && a.len() == 2 {
        return Reply::help_lines(MEMORY_HELP);
    }
    if !is(sub, "usage") {
        return unknown_sub("MEMORY", sub);
    }
    if a.len() < 3 {
        return errors::wrong_arity("memory|usage");
    }
    let mut rest = a[3..].iter();
    while let Some(opt) = rest.next() {
        if !is(opt, "samples") {
            return errors::SYNTAX;
        }
        let Some(n) = rest.next() else {
            return errors::SYNTAX;
        };
        if parse_i64(n).is_none() {
            return errors::NOT_INTEGER;
        }
    }
    s.key_memory(&a[2], now)
        .map_or(Reply::Nil, |b| Reply::Int(b as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NO_EXPIRY;

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn encodings_follow_redis() {
        assert_eq!(string_encoding(b"12"), "int");
        assert_eq!(string_encoding(b"-9223372036854775808"), "int");
        assert_eq!(string_encoding(b"012"), "embstr");
        assert_eq!(string_encoding(b"12 "), "embstr");
        assert_eq!(string_encoding(&[b'x'; 44]), "embstr");
        assert_eq!(string_encoding(&[b'x'; 45]), "raw");
    }

    #[test]
    fn object_and_memory_answer_per_key() {
        let mut s = Shard::new(0);
        s.put(b"k", b"hello", NO_EXPIRY, 0);
        assert_eq!(
            object(&mut s, &args(&["object", "encoding", "k"]), 0),
            Reply::bulk("embstr")
        );
        assert_eq!(
            object(&mut s, &args(&["object", "refcount", "nokey"]), 0),
            Reply::Nil
        );
        assert_eq!(
            object(&mut s, &args(&["object", "freq", "k"]), 0),
            Reply::err(NO_FREQ)
        );
        assert_eq!(
            object(&mut s, &args(&["object", "idletime", "k", "x"]), 0),
            Reply::err("ERR wrong number of arguments for 'object|idletime' command")
        );
        assert_eq!(
            object(&mut s, &args(&["object", "nope"]), 0),
            Reply::err("ERR unknown subcommand 'nope'. Try OBJECT HELP.")
        );
        let Reply::Int(n) = memory(&mut s, &args(&["memory", "usage", "k"]), 0) else {
            panic!("an integer")
        };
        assert!((16..=64).contains(&n), "{n}");
        assert_eq!(
            memory(&mut s, &args(&["memory", "usage", "k", "samples"]), 0),
            errors::SYNTAX
        );
        assert_eq!(
            memory(&mut s, &args(&["memory", "usage", "k", "samples", "x"]), 0),
            errors::NOT_INTEGER
        );
    }

    #[test]
    fn idle_time_counts_from_the_last_read() {
        let mut s = Shard::new(0);
        s.now = 1_000_000;
        s.put(b"k", b"v", NO_EXPIRY, 0);
        assert_eq!(s.key_idle_secs(b"k", 1_010_000), Some(10));
        s.lookup_read(b"k", 1_020_000);
        assert_eq!(s.key_idle_secs(b"k", 1_025_000), Some(5));
    }

    #[test]
    fn freq_is_reported_under_an_s3fifo_budget() {
        let mut s = Shard::new(0);
        s.set_maxmemory(1 << 20, 0);
        s.put(b"k", b"v", NO_EXPIRY, 0);
        s.lookup_read(b"k", 0);
        s.lookup_read(b"k", 0);
        assert_eq!(
            object(&mut s, &args(&["object", "freq", "k"]), 0),
            Reply::Int(2)
        );
    }
}
