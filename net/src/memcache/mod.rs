//! The memcached codec (text and meta protocols): pure functions over bytes, no I/O.
//!
//! ```text
//!   socket bytes ─► BytesMut ─► McParser::parse ─► McRequest
//!                                                   ├─ Single { op, reply } ─┐ route op.key(),
//!                                                   ├─ Multi { ops, cas }  ──┤ execute on its core
//!                                                   ├─ Conn(McConn)          │ (baton_engine::memcache)
//!                                                   └─ Error(text)           ▼
//!   socket bytes ◄─ Vec<u8> ◄─ encode / encode_multi ◄── McResult(s), in request order
//! ```
//!
//! * [`McParser::parse`] reads one request. It resumes on partial input at any split point
//!   (it consumes nothing until a whole request, data block included, is buffered), never
//!   reserves memory for a length the client merely claims, and skips the data block of a
//!   rejected storage command (too large, bad line) as it arrives, so the stream stays in
//!   sync without buffering it. Texts and limits follow memcached 1.6.
//! * Per-key work comes out as [`baton_engine::memcache::McOp`]s: the connection sends each
//!   to the core that owns its key, runs [`baton_engine::memcache::execute`] there and
//!   encodes the results in request order with [`encode`] (one op) or [`encode_multi`] /
//!   [`encode_item`] + [`encode_end`] (`get k1 k2 ...`, whose keys may live on different
//!   cores). The [`McReply`] half of a request stays on the connection's core.
//! * [`McConn`] commands concern the connection or the whole server (`version`, `stats`,
//!   `flush_all`, `quit`, `mn`, ...); the connection answers them with the `encode_*`
//!   helpers, [`encode_stats`] among them.
//! * `noreply` and the meta `q` flag are applied by the encoders: a suppressed reply simply
//!   writes nothing, and text-protocol errors are suppressed by `noreply` too, as in
//!   memcached (the meta protocol always reports errors).
//!
//! Not supported (answered with `CLIENT_ERROR ...`, see [`UNSUPPORTED`]): the binary
//! protocol (see [`is_binary_protocol`]), SASL/auth, and the commands listed there.

mod base64;
mod encode;
mod lex;
mod meta;
mod parse;
mod stats;
pub mod testing;
#[cfg(test)]
mod tests_encode;
#[cfg(test)]
mod tests_meta;
#[cfg(test)]
mod tests_parse;

pub use baton_engine::memcache::{McOp, McOpKind, McResult};
pub use encode::{
    encode, encode_end, encode_error, encode_item, encode_multi, encode_noop, encode_ok,
    encode_refusal, encode_reset, encode_value, encode_version, PAUSED, READONLY,
};
pub use meta::{MetaCmd, MetaReply};
pub use parse::McParser;
pub use stats::{encode_stats, McStats};

/// memcached's key length limit.
pub const MAX_KEY_LEN: usize = 250;

/// The binary protocol's request magic. A connection whose first byte is this speaks the
/// binary protocol, which Baton does not: the connection loop logs and closes it.
pub const BINARY_REQUEST_MAGIC: u8 = 0x80;

/// Whether a connection that starts with `first_byte` speaks memcached's binary protocol.
pub fn is_binary_protocol(first_byte: u8) -> bool {
    first_byte == BINARY_REQUEST_MAGIC
}

/// What the codec does not implement, for the README.
pub const UNSUPPORTED: &[&str] = &[
    "binary protocol (connections starting with 0x80 are closed)",
    "SASL and `-Y` token authentication",
    "me field cls (reported: exp, la, cas, fetch, size)",
    "stats subcommands (settings, items, slabs, sizes, conns, detail, cachedump, ...); `stats reset` works",
    "shutdown, slabs, lru, lru_crawler, watch, cache_memlimit, extstore, refresh_certs",
];

/// Bounds on what one request may claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McLimits {
    /// Largest item value (`-I`); a larger storage command answers
    /// `SERVER_ERROR object too large for cache` and its data block is skipped.
    pub max_item_size: usize,
    /// Longest command line (memcached: 2048); a longer one closes the connection.
    pub max_line: usize,
    /// Longest `get`/`gets`/`gat`/`gats` line: memcached lets multi-gets run past
    /// `max_line`; this bounds how far.
    pub max_get_line: usize,
}

impl McLimits {
    pub const DEFAULT_MAX_LINE: usize = 2048;
    pub const DEFAULT_MAX_GET_LINE: usize = 1024 * 1024;
}

impl Default for McLimits {
    fn default() -> McLimits {
        McLimits {
            max_item_size: baton_engine::memcache::DEFAULT_MAX_ITEM_SIZE,
            max_line: McLimits::DEFAULT_MAX_LINE,
            max_get_line: McLimits::DEFAULT_MAX_GET_LINE,
        }
    }
}

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McRequest {
    /// One per-key op: run `op` on the core owning `op.key()`, then [`encode`] its result
    /// with `reply`.
    Single { op: McOp, reply: McReply },
    /// A retrieval of several keys (`get`/`gets`/`gat`/`gats k1 k2 ...`): one
    /// `McOp::Get` per key, in order. Split them by core freely; hand the results back in
    /// this order to [`encode_multi`] (or [`encode_item`] each, then [`encode_end`]).
    /// `cas` asks for the CAS unique on each `VALUE` line.
    Multi { ops: Vec<McOp>, cas: bool },
    /// A command for the connection or the server.
    Conn(McConn),
    /// The parser has answered already (a protocol error): write it with [`encode_error`].
    Error(&'static str),
}

impl McRequest {
    /// Whether it changes data, so that a replica under `replica-read-only` refuses it
    /// (with [`READONLY`]): storage commands, `delete`, `incr`/`decr`, `touch`,
    /// `gat`/`gats`, `flush_all`, `ms`, `md`, `ma`, and `mg` with `T` (touch) or `N`
    /// (vivify). Plain reads, `mg` without those flags (`R` included: the replica only
    /// hands out the recache token), `me`, `stats` and the like are not.
    pub fn writes(&self) -> bool {
        fn op_writes(op: &McOp) -> bool {
            match op {
                McOp::Get { touch, .. } => touch.is_some(),
                McOp::MetaGet(m) => m.touch.is_some() || m.vivify.is_some(),
                McOp::MetaDebug { .. } => false,
                McOp::Store(_)
                | McOp::Delete { .. }
                | McOp::Arith { .. }
                | McOp::Touch { .. }
                | McOp::MetaSet(_)
                | McOp::MetaDelete(_)
                | McOp::MetaArith(_) => true,
            }
        }
        match self {
            McRequest::Single { op, .. } => op_writes(op),
            McRequest::Multi { ops, .. } => ops.iter().any(op_writes),
            McRequest::Conn(c) => matches!(c, McConn::FlushAll { .. }),
            McRequest::Error(_) => false,
        }
    }
}

/// How to encode one op's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McReply {
    /// A one-key retrieval: `VALUE ...` (on a hit) then `END`.
    Get { cas: bool },
    /// A classic command's one-line reply (`STORED`, `DELETED`, a number, ...), or nothing
    /// with `noreply`.
    Text { noreply: bool },
    /// A meta command's reply, shaped by its flags.
    Meta(MetaReply),
}

/// Commands the connection answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McConn {
    /// `version`: answer with [`encode_version`].
    Version,
    /// `verbosity <n> [noreply]`: accepted and ignored; answer with [`encode_ok`].
    Verbosity { noreply: bool },
    /// `stats`: answer with [`encode_stats`].
    Stats,
    /// `stats reset`: zero the counters, answer with [`encode_reset`].
    StatsReset,
    /// `flush_all [delay] [noreply]`: flush every shard now, or at
    /// `baton_engine::memcache::flush_deadline(delay, now)`; answer with [`encode_ok`].
    FlushAll { delay: i64, noreply: bool },
    /// `quit`: close the connection without a reply.
    Quit,
    /// `mn`: answer with [`encode_noop`] once every earlier reply is out.
    NoOp,
}

/// Why the connection must close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum McError {
    /// A command line ran past [`McLimits::max_line`] (or a multi-get past
    /// [`McLimits::max_get_line`]). memcached closes silently; Baton writes [`McError::reply`]
    /// first, which says why.
    #[error("command line too long")]
    LineTooLong,
    /// An HTTP request line reached the memcached port; memcached closes without a word.
    #[error("HTTP request on the memcached port")]
    Http,
}

impl McError {
    /// What to write before closing, if anything.
    pub fn reply(&self) -> Option<&'static [u8]> {
        match self {
            McError::LineTooLong => Some(b"CLIENT_ERROR line too long\r\n"),
            McError::Http => None,
        }
    }
}
