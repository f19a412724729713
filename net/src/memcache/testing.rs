//! A whole memcached conversation in process, on one shard: bytes in, reply bytes out.
//! It drives the codec exactly as the connection loop does (parse, execute, encode, answer
//! connection commands), minus sockets and cores, for tests and the fuzzer.

use baton_engine::memcache::{execute, flush_deadline, McCtx};
use baton_engine::Shard;
use bytes::BytesMut;

use super::{
    encode, encode_error, encode_multi, encode_noop, encode_ok, encode_reset, encode_stats,
    encode_version, McConn, McLimits, McParser, McRequest, McStats,
};

/// One client connection against one shard, with a hand-driven clock.
pub struct Session {
    pub shard: Shard,
    pub parser: McParser,
    pub limits: McLimits,
    /// The clock, unix ms; move it with [`Session::advance`].
    pub now_ms: u64,
    pub stats: McStats,
    /// Set by `quit` or a protocol error that closes the connection; input is then ignored.
    pub closed: bool,
    buf: BytesMut,
    /// A delayed `flush_all`'s deadline.
    flush_at: Option<u64>,
}

impl Default for Session {
    fn default() -> Session {
        Session::new()
    }
}

impl Session {
    pub const VERSION: &'static str = "1.6.0-baton";

    pub fn new() -> Session {
        Session::with_limits(McLimits::default())
    }

    pub fn with_limits(limits: McLimits) -> Session {
        Session {
            shard: Shard::new(0),
            parser: McParser::new(),
            limits,
            now_ms: 1_700_000_000_000,
            stats: McStats::default(),
            closed: false,
            buf: BytesMut::new(),
            flush_at: None,
        }
    }

    /// Moves the clock forward, running a delayed flush that falls due.
    pub fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
        if self.flush_at.is_some_and(|at| at <= self.now_ms) {
            self.flush_at = None;
            self.shard.flush();
        }
    }

    /// Bytes not yet parsed (a partial request).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Feeds bytes as one socket read; returns everything written back.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.closed {
            return out;
        }
        self.buf.extend_from_slice(bytes);
        loop {
            match self.parser.parse(&mut self.buf, &self.limits) {
                Ok(Some(request)) => self.run(request, &mut out),
                Ok(None) => break,
                Err(e) => {
                    out.extend_from_slice(e.reply().unwrap_or_default());
                    self.closed = true;
                }
            }
            if self.closed {
                break;
            }
        }
        out
    }

    /// [`Session::feed`] for text, returning text.
    pub fn talk(&mut self, input: &str) -> String {
        String::from_utf8_lossy(&self.feed(input.as_bytes())).into_owned()
    }

    fn ctx(&self) -> McCtx {
        McCtx {
            now_ms: self.now_ms,
            max_item_size: self.limits.max_item_size,
        }
    }

    fn run(&mut self, request: McRequest, out: &mut Vec<u8>) {
        let ctx = self.ctx();
        match request {
            McRequest::Single { op, reply } => {
                let kind = op.kind();
                let result = execute(&mut self.shard, op, &ctx);
                self.stats.record(kind, &result);
                encode(&reply, &result, out);
            }
            McRequest::Multi { ops, cas } => {
                let results: Vec<_> = ops
                    .into_iter()
                    .map(|op| {
                        let kind = op.kind();
                        let result = execute(&mut self.shard, op, &ctx);
                        self.stats.record(kind, &result);
                        result
                    })
                    .collect();
                encode_multi(cas, &results, out);
            }
            McRequest::Error(text) => {
                self.stats.record_error(text);
                encode_error(text, out);
            }
            McRequest::Conn(conn) => self.conn(conn, out),
        }
    }

    fn conn(&mut self, conn: McConn, out: &mut Vec<u8>) {
        match conn {
            McConn::Version => encode_version(Session::VERSION, out),
            McConn::Verbosity { noreply } => encode_ok(noreply, out),
            McConn::Stats => {
                self.stats.curr_items = self.shard.len() as u64;
                self.stats.version = Session::VERSION.into();
                encode_stats(&self.stats, out);
            }
            McConn::StatsReset => {
                self.stats = McStats::default();
                encode_reset(out);
            }
            McConn::FlushAll { delay, noreply } => {
                self.stats.cmd_flush += 1;
                match flush_deadline(delay, self.now_ms) {
                    None => self.shard.flush(),
                    Some(at) => self.flush_at = Some(at),
                }
                encode_ok(noreply, out);
            }
            McConn::Quit => self.closed = true,
            McConn::NoOp => encode_noop(out),
        }
    }
}
