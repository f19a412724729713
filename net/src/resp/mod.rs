//! The RESP codec: pure functions over bytes, no I/O.
//!
//! ```text
//!   socket bytes ──► BytesMut ──► parse_command ──► Vec<Bytes> (args[0] = command name)
//!                                                        │ engine executes
//!   socket bytes ◄── Vec<u8>  ◄── encode(proto 2|3) ◄── Reply
//! ```
//!
//! * [`parse_command`] reads one request, in either of Redis's two request forms: a
//!   multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`, what every client library sends) or an
//!   inline line (`GET k\r\n`, what a human types into telnet). It follows Redis's
//!   `processMultibulkBuffer`/`processInlineBuffer`, including their limits and their exact
//!   error texts, so clients and tests written against Redis see the same thing.
//!   [`ParseState`] is the same parser with a memory of how far it got, so that a request
//!   trickling in byte by byte costs O(n) in total instead of being re-walked on every call.
//! * [`encode`] appends one [`Reply`] in RESP2 or RESP3.
//! * [`testing`] holds a small reply parser for round-trip tests and the fuzzers.
//!
//! Nothing here allocates in proportion to a length that the client merely claims: buffers
//! are reserved for at most [`MAX_PREALLOC_ARGS`] arguments until the bytes are really there.

mod encode;
mod inline;
mod line;
mod parse;
pub mod testing;
#[cfg(test)]
mod tests;

pub use encode::{bulk, encode, encode_to_vec, format_double};
pub use parse::{parse_command, ParseProgress, ParseState, ShortGet};

pub use baton_engine::reply::Reply;

/// Arguments reserved up front for a multibulk, whatever count the client announces
/// (Redis caps its own up-front reservation at 1024 the same way).
pub const MAX_PREALLOC_ARGS: usize = 1024;

/// Longest bulk argument an unauthenticated client may send (Redis: 16384).
pub const UNAUTHENTICATED_MAX_BULK_LEN: usize = 16 * 1024;

/// Most arguments an unauthenticated client may send in one multibulk (Redis: 10).
pub const UNAUTHENTICATED_MAX_MULTIBULK_LEN: usize = 10;

/// Bounds on what one request may claim, checked before anything is buffered for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest bulk argument (`--proto-max-bulk-len`, Redis's `proto-max-bulk-len`).
    pub max_bulk_len: usize,
    /// Most arguments in one multibulk request.
    pub max_multibulk_len: usize,
    /// Longest inline request line, and longest `*<n>`/`$<n>` header line
    /// (Redis's `PROTO_INLINE_MAX_SIZE`).
    pub max_inline_len: usize,
}

impl Limits {
    /// Default `--proto-max-bulk-len`: 512 MiB, as in Redis.
    pub const DEFAULT_MAX_BULK_LEN: usize = 512 * 1024 * 1024;
    /// Default multibulk argument count limit: 1024 * 1024.
    pub const DEFAULT_MAX_MULTIBULK_LEN: usize = 1024 * 1024;
    /// Default inline line limit: 64 KiB.
    pub const DEFAULT_MAX_INLINE_LEN: usize = 64 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: Self::DEFAULT_MAX_BULK_LEN,
            max_multibulk_len: Self::DEFAULT_MAX_MULTIBULK_LEN,
            max_inline_len: Self::DEFAULT_MAX_INLINE_LEN,
        }
    }
}

/// A malformed request. The text is the whole error reply without the leading `-`
/// (e.g. `ERR Protocol error: invalid bulk length`); the connection sends it and closes,
/// because after a framing error the rest of the stream cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProtocolError(pub String);

impl ProtocolError {
    pub(crate) fn new(what: &str) -> ProtocolError {
        ProtocolError(format!("ERR Protocol error: {what}"))
    }

    /// The error as a reply, ready to encode.
    pub fn to_reply(&self) -> Reply {
        Reply::Error(bytes::Bytes::copy_from_slice(self.0.as_bytes()))
    }
}
