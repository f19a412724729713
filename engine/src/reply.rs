//! The typed reply model. Command logic returns a [`Reply`]; the connection encodes it for
//! the client's protocol version (RESP2 or RESP3). Nothing here knows about bytes on a wire.

use bytes::Bytes;

/// One reply to one command, protocol-independent.
#[derive(Debug, Clone)]
pub enum Reply {
    /// `+OK`.
    Ok,
    /// A status line such as `PONG` (without the leading `+`).
    Simple(Bytes),
    /// An error line without the leading `-`, e.g. `ERR syntax error` or `WRONGTYPE ...`.
    Error(Bytes),
    Int(i64),
    Bulk(Bytes),
    /// A missing value: `$-1` in RESP2, `_` in RESP3.
    Nil,
    /// A missing aggregate: `*-1` in RESP2, `_` in RESP3.
    NilArray,
    Array(Vec<Reply>),
    /// An array of bulk strings kept in one buffer ([`Bulks`]): equal to, and encoded as,
    /// the `Array` of those `Bulk`s.
    Bulks(Bulks),
    /// A map in RESP3; a flat array of key, value, key, value in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// Pairs: an array of two-element arrays in RESP3, a flat array of key, value, key,
    /// value in RESP2 (HRANDFIELD ... WITHVALUES).
    Pairs(Vec<(Reply, Reply)>),
    /// A set in RESP3; an array in RESP2.
    Set(Vec<Reply>),
    /// A double in RESP3; a bulk string in RESP2.
    Double(f64),
    /// A boolean in RESP3; the integer 1 or 0 in RESP2.
    Bool(bool),
    /// Verbatim text in RESP3 (`=len\r\ntxt:...`); a bulk string in RESP2.
    Verbatim(Bytes),
    /// Out-of-band data (Pub/Sub messages and confirmations): a push (`>`) in RESP3; an
    /// array in RESP2.
    Push(Vec<Reply>),
    /// Several replies, sent one after another: a command that answers more than once
    /// (`SUBSCRIBE a b` confirms each channel).
    Sequence(Vec<Reply>),
}

/// Equality of what a client receives: a [`Reply::Bulks`] equals the [`Reply::Array`] of
/// the same bulk strings (the tests that expect an `Array` hold for either form).
impl PartialEq for Reply {
    fn eq(&self, other: &Reply) -> bool {
        use Reply::*;
        match (self, other) {
            (Ok, Ok) | (Nil, Nil) | (NilArray, NilArray) => true,
            (Simple(a), Simple(b))
            | (Error(a), Error(b))
            | (Bulk(a), Bulk(b))
            | (Verbatim(a), Verbatim(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (Double(a), Double(b)) => a == b,
            (Bool(a), Bool(b)) => a == b,
            (Array(a), Array(b))
            | (Set(a), Set(b))
            | (Push(a), Push(b))
            | (Sequence(a), Sequence(b)) => a == b,
            (Map(a), Map(b)) | (Pairs(a), Pairs(b)) => a == b,
            (Bulks(a), Bulks(b)) => a == b,
            (Bulks(a), Array(b)) | (Array(b), Bulks(a)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|(x, y)| matches!(y, Bulk(y) if y[..] == *x))
            }
            _ => false,
        }
    }
}

/// Bulk strings packed in one buffer, each its length (4 bytes, little-endian) then its
/// bytes: the members of a range reply (ZRANGE, ZUNION...). Why not a `Vec<Reply>` of
/// `Bulk`s: those are one reference-counted slice per member (an atomic count up when
/// built and down when dropped) and a `Reply` each to build, walk and drop; this is one
/// allocation, copied straight into the connection's output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bulks {
    buf: Vec<u8>,
    n: usize,
}

impl Bulks {
    /// Room for `n` strings of `bytes` bytes in all.
    pub fn with_capacity(n: usize, bytes: usize) -> Bulks {
        Bulks {
            buf: Vec::with_capacity(bytes + 4 * n),
            n: 0,
        }
    }

    pub fn push(&mut self, item: &[u8]) {
        let len = u32::try_from(item.len()).expect("a bulk string is shorter than 4 GiB");
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(item);
        self.n += 1;
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The bytes of the strings alone (what an encoding adds headers to).
    pub fn data_len(&self) -> usize {
        self.buf.len() - 4 * self.n
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut rest = &self.buf[..];
        std::iter::from_fn(move || {
            let (len, tail) = rest.split_first_chunk::<4>()?;
            let (item, tail) = tail.split_at(u32::from_le_bytes(*len) as usize);
            rest = tail;
            Some(item)
        })
    }

    /// The same strings as `Bulk` replies.
    pub fn to_replies(&self) -> Vec<Reply> {
        self.iter().map(Reply::bulk).collect()
    }
}

impl<'a> FromIterator<&'a [u8]> for Bulks {
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(items: I) -> Bulks {
        let mut b = Bulks::default();
        for item in items {
            b.push(item);
        }
        b
    }
}

impl Reply {
    /// An error reply from a static text (without the leading `-`).
    pub const fn err(text: &'static str) -> Reply {
        Reply::Error(Bytes::from_static(text.as_bytes()))
    }

    /// An error reply from an owned text (without the leading `-`).
    pub fn error(text: impl Into<String>) -> Reply {
        Reply::Error(Bytes::from(text.into()))
    }

    pub const fn simple(text: &'static str) -> Reply {
        Reply::Simple(Bytes::from_static(text.as_bytes()))
    }

    pub fn bulk(data: impl AsRef<[u8]>) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(data.as_ref()))
    }

    /// Bulk replies for `items` whose bytes are copied once into one shared buffer, each
    /// reply a slice of it, instead of one allocation per element (a range reply's cost).
    pub fn bulks<'a, I>(items: I) -> Vec<Reply>
    where
        I: IntoIterator<Item = &'a [u8]>,
        I::IntoIter: Clone,
    {
        let items = items.into_iter();
        let mut buf = Vec::with_capacity(items.clone().map(<[u8]>::len).sum());
        for e in items.clone() {
            buf.extend_from_slice(e);
        }
        let buf = Bytes::from(buf);
        let mut at = 0;
        items
            .map(|e| {
                at += e.len();
                Reply::Bulk(buf.slice(at - e.len()..at))
            })
            .collect()
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// A `HELP` subcommand's answer: one status line per text line, as Redis sends it.
    pub fn help_lines(lines: &[&'static str]) -> Reply {
        Reply::Array(lines.iter().map(|&l| Reply::simple(l)).collect())
    }
}

/// Redis's exact error texts, where clients depend on them.
pub mod errors {
    use super::Reply;

    pub const SYNTAX: Reply = Reply::err("ERR syntax error");
    pub const WRONGTYPE: Reply =
        Reply::err("WRONGTYPE Operation against a key holding the wrong kind of value");
    pub const NOT_INTEGER: Reply = Reply::err("ERR value is not an integer or out of range");
    pub const NOT_FLOAT: Reply = Reply::err("ERR value is not a valid float");
    pub const OVERFLOW: Reply = Reply::err("ERR increment or decrement would overflow");
    pub const NO_SUCH_KEY: Reply = Reply::err("ERR no such key");
    pub const INVALID_EXPIRE: Reply = Reply::err("ERR invalid expire time in 'set' command");
    pub const OFFSET_RANGE: Reply = Reply::err("ERR offset is out of range");
    pub const STRING_TOO_LONG: Reply =
        Reply::err("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    pub const NOAUTH: Reply = Reply::err("NOAUTH Authentication required.");

    /// `ERR wrong number of arguments for 'get' command` (name lower-cased as Redis does).
    pub fn wrong_arity(name: &str) -> Reply {
        Reply::error(format!(
            "ERR wrong number of arguments for '{}' command",
            name.to_ascii_lowercase()
        ))
    }

    /// `ERR invalid expire time in 'expire' command`.
    pub fn invalid_expire(name: &str) -> Reply {
        Reply::error(format!(
            "ERR invalid expire time in '{}' command",
            name.to_ascii_lowercase()
        ))
    }

    /// `ERR unknown command 'foo', with args beginning with: 'a' 'b' `.
    pub fn unknown_command(name: &[u8], args: &[bytes::Bytes]) -> Reply {
        let mut s = String::from("ERR unknown command '");
        s.push_str(&String::from_utf8_lossy(&name[..name.len().min(128)]));
        s.push_str("', with args beginning with: ");
        for a in args.iter().take(16) {
            s.push('\'');
            s.push_str(&String::from_utf8_lossy(&a[..a.len().min(128)]));
            s.push_str("' ");
        }
        Reply::error(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulks_are_the_bulk_replies_of_their_items() {
        let items: [&[u8]; 4] = [b"a", b"", b"bc", b"def"];
        assert_eq!(Reply::bulks(items), items.map(Reply::bulk).to_vec());
        assert!(Reply::bulks(std::iter::empty()).is_empty());
    }

    #[test]
    fn packed_bulks_equal_the_array_of_their_bulks() {
        let items: [&[u8]; 4] = [b"a", b"", b"bc", &[7u8; 300]];
        let packed: Bulks = items.iter().copied().collect();
        assert_eq!((packed.len(), packed.data_len()), (4, 303));
        assert_eq!(packed.iter().collect::<Vec<_>>(), items.to_vec());
        let array = Reply::Array(items.map(Reply::bulk).to_vec());
        assert_eq!(Reply::Bulks(packed.clone()), array);
        assert_eq!(array, Reply::Bulks(packed.clone()));
        assert_eq!(packed.to_replies(), items.map(Reply::bulk).to_vec());
        assert_ne!(Reply::Bulks(packed), Reply::Array(vec![Reply::bulk("a")]));
        assert_eq!(Reply::Bulks(Bulks::default()), Reply::Array(Vec::new()));
        assert_ne!(
            Reply::Array(vec![Reply::Int(1)]),
            Reply::Bulks(Bulks::default())
        );
    }
}
