//! A session and its unparsed input as bytes, to hand a connection to another process.
//!
//! Version 4, all integers little-endian. Version 3 is version 4 without the times;
//! this binary writes and reads both, and refuses every other version (version 1 lacked
//! the transaction state and the subscriptions, version 2 one of them). Which version
//! goes to a new process is negotiated at TAKEOVER ([`common_version`]), so an older
//! binary that reads only version 3 can still take connections from this one.
//!
//! ```text
//!  magic         4   "BSES"
//!  version       2   4 (or 3)
//!  body length   8   bytes after this field; must be exactly what follows
//!  body:
//!   id           8
//!   protocol     1   0 Redis, 1 memcached
//!   resp         1   2 or 3
//!   flags        1   bit 0 authenticated, bit 1 close after reply; no other bits
//!   db           4
//!   created      8   version 4 only: unix ms the connection was accepted (CLIENT age=)
//!   last used    8   version 4 only: unix ms of its last read or write (idle=)
//!   name         opt bytes: 1 byte 0 (none) or 1 (some), then 8 length + bytes
//!   lib-name     opt bytes
//!   lib-ver      opt bytes
//!   last command 1 length (at most 64) + bytes
//!   mc skip      8   bytes of a rejected memcached data block still to skip
//!   RESP parser  count 8, pos 8, searched 8, bulk length (1 tag [+ 8]),
//!                argument count 8, then per argument start 8 and end 8
//!   multi        1   0 not in MULTI, 1 queuing, 2 queuing after a refused command;
//!                then (unless 0) command count 8, per command argument count 8
//!                and per argument 8 length + bytes
//!   watched      count 8, per key 8 length + bytes, then its version: 1 byte 0
//!                (absent) or 1, then 8 CAS
//!   channels     count 8, then per channel 8 length + bytes (SUBSCRIBE)
//!   patterns     count 8, then per pattern 8 length + bytes (PSUBSCRIBE)
//!   unparsed     8 length + bytes: received input not yet parsed
//! ```
//!
//! Every length is checked against the bytes actually present before anything is
//! allocated for it, so a decoder never allocates more than its input's size, and corrupt
//! input gives a [`SessionError`], never a panic. The RESP parser's offsets are checked
//! against the unparsed input ([`ParseState::resume`]).
//!
//! The last command is sent by name and looked up in this binary's command table; a name
//! the table lacks (a command a newer or older binary has and this one does not) comes
//! back as [`NO_COMMAND`], since only CLIENT LIST's `cmd=` shows it.

use std::collections::BTreeSet;

use bytes::{Bytes, BytesMut};

use super::{ConnTimes, MultiQueue, Protocol, Session, NO_COMMAND};
use crate::memcache::McParser;
use crate::resp::{ParseProgress, ParseState};

const MAGIC: [u8; 4] = *b"BSES";
/// The newest format this binary writes and reads.
pub const VERSION: u16 = 4;
/// The oldest format this binary writes and reads.
pub const OLDEST_VERSION: u16 = 3;
/// The first format with the connection's times.
const TIMES_SINCE: u16 = 4;
/// Longest command name accepted (the longest in the table is far shorter).
const MAX_COMMAND_NAME: usize = 64;
/// What `mcdispatch` records as the last command of a memcached connection.
const MEMCACHE_COMMAND: &str = "memcache";

const FLAG_AUTHENTICATED: u8 = 1;
const FLAG_CLOSE_AFTER_REPLY: u8 = 2;

/// Why bytes could not be decoded into a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("not a session: the magic bytes are missing")]
    BadMagic,
    #[error(
        "session format version {found}; this binary reads versions {OLDEST_VERSION} to {VERSION}"
    )]
    Version { found: u16 },
    #[error("session truncated: {field} needs {needed} bytes, {left} left")]
    Truncated {
        field: &'static str,
        needed: u64,
        left: usize,
    },
    #[error("session body length says {declared} bytes, {actual} follow")]
    Length { declared: u64, actual: usize },
    #[error("session field {field} is invalid: {why}")]
    Invalid {
        field: &'static str,
        why: &'static str,
    },
    #[error("{0} unexpected bytes at the end of the session body")]
    Trailing(usize),
}

/// The session format to write for a peer that reads formats `reads` (lowest, highest),
/// or `None` when it did not say (a binary from before format 4, which reads format 3
/// only): the newest both sides know, or why there is none.
pub fn common_version(reads: Option<(u16, u16)>) -> Result<u16, String> {
    let (lowest, highest) = reads.unwrap_or((OLDEST_VERSION, OLDEST_VERSION));
    let version = highest.min(VERSION);
    if lowest > highest || version < lowest.max(OLDEST_VERSION) {
        return Err(format!(
            "the new process reads session formats {lowest} to {highest}; this server writes {OLDEST_VERSION} to {VERSION}"
        ));
    }
    Ok(version)
}

impl Session {
    /// Appends this session in format `version` (clamped to the ones this binary
    /// writes), with its connection's `times` (format 4 on), and `unparsed` (the input
    /// received for it and not yet parsed, which its parser state refers to) to `out`.
    pub fn encode(&self, version: u16, times: ConnTimes, unparsed: &[u8], out: &mut Vec<u8>) {
        let version = version.clamp(OLDEST_VERSION, VERSION);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&version.to_le_bytes());
        let length_at = out.len();
        out.extend_from_slice(&0u64.to_le_bytes());
        let body_start = out.len();

        put_u64(out, self.id);
        out.push(match self.protocol {
            Protocol::Redis => 0,
            Protocol::Memcache => 1,
        });
        out.push(self.resp);
        let mut flags = 0;
        if self.authenticated {
            flags |= FLAG_AUTHENTICATED;
        }
        if self.close_after_reply {
            flags |= FLAG_CLOSE_AFTER_REPLY;
        }
        out.push(flags);
        out.extend_from_slice(&self.db.to_le_bytes());
        if version >= TIMES_SINCE {
            put_u64(out, times.created_ms);
            put_u64(out, times.last_ms);
        }
        for text in [&self.name, &self.lib_name, &self.lib_ver] {
            put_opt_bytes(out, text.as_deref());
        }
        // Table names are short: a longer name is none the decoder could find anyway.
        let cmd = Some(self.last_cmd)
            .filter(|c| c.len() <= MAX_COMMAND_NAME)
            .unwrap_or(NO_COMMAND);
        out.push(cmd.len() as u8);
        out.extend_from_slice(cmd.as_bytes());
        put_usize(out, self.mc_parser.swallowing());

        let p = self.resp_parser.progress();
        put_usize(out, p.count);
        put_usize(out, p.pos);
        put_usize(out, p.searched);
        match p.bulk_len {
            None => out.push(0),
            Some(len) => {
                out.push(1);
                put_usize(out, len);
            }
        }
        put_usize(out, p.args.len());
        for (start, end) in p.args {
            put_usize(out, start);
            put_usize(out, end);
        }

        match &self.multi {
            None => out.push(0),
            Some(q) => {
                out.push(if q.dirty { 2 } else { 1 });
                put_usize(out, q.commands.len());
                for args in &q.commands {
                    put_usize(out, args.len());
                    for a in args {
                        put_usize(out, a.len());
                        out.extend_from_slice(a);
                    }
                }
            }
        }
        put_usize(out, self.watched.len());
        for (key, version) in &self.watched {
            put_usize(out, key.len());
            out.extend_from_slice(key);
            match version {
                None => out.push(0),
                Some(cas) => {
                    out.push(1);
                    put_u64(out, *cas);
                }
            }
        }
        for set in [&self.channels, &self.patterns] {
            put_usize(out, set.len());
            for name in set {
                put_usize(out, name.len());
                out.extend_from_slice(name);
            }
        }

        put_usize(out, unparsed.len());
        out.extend_from_slice(unparsed);
        let body_len = (out.len() - body_start) as u64;
        out[length_at..body_start].copy_from_slice(&body_len.to_le_bytes());
    }

    /// Reads what [`Session::encode`] wrote, in any format this binary reads: the session,
    /// its connection's times (`None` from format 3) and its unparsed input, ready to be
    /// the connection's read buffer. The id is kept as it was; the caller reserves it
    /// with [`super::reserve_ids_through`].
    pub fn decode(bytes: &[u8]) -> Result<(Session, Option<ConnTimes>, BytesMut), SessionError> {
        if bytes.len() < 4 || bytes[..4] != MAGIC {
            return Err(SessionError::BadMagic);
        }
        let mut r = Reader { rest: &bytes[4..] };
        let found = r.u16("version")?;
        if !(OLDEST_VERSION..=VERSION).contains(&found) {
            return Err(SessionError::Version { found });
        }
        let declared = r.u64("body length")?;
        if declared != r.rest.len() as u64 {
            return Err(SessionError::Length {
                declared,
                actual: r.rest.len(),
            });
        }

        let id = r.u64("id")?;
        let protocol = match r.u8("protocol")? {
            0 => Protocol::Redis,
            1 => Protocol::Memcache,
            _ => return Err(invalid("protocol", "neither 0 (Redis) nor 1 (memcached)")),
        };
        let resp = r.u8("resp")?;
        if resp != 2 && resp != 3 {
            return Err(invalid("resp", "neither 2 nor 3"));
        }
        let flags = r.u8("flags")?;
        if flags & !(FLAG_AUTHENTICATED | FLAG_CLOSE_AFTER_REPLY) != 0 {
            return Err(invalid("flags", "unknown bits set"));
        }
        let db = u32::from_le_bytes(r.array("db")?);
        let times = if found >= TIMES_SINCE {
            Some(ConnTimes {
                created_ms: r.u64("created")?,
                last_ms: r.u64("last used")?,
            })
        } else {
            None
        };
        let name = r.opt_bytes("name")?;
        let lib_name = r.opt_bytes("lib-name")?;
        let lib_ver = r.opt_bytes("lib-ver")?;
        let cmd_len = usize::from(r.u8("last command length")?);
        if cmd_len > MAX_COMMAND_NAME {
            return Err(invalid("last command", "longer than any command name"));
        }
        let last_cmd = command_name(r.take(cmd_len, "last command")?);
        let mc_parser = McParser::resume(r.usize("mc skip")?);

        let count = r.usize("parser count")?;
        let pos = r.usize("parser pos")?;
        let searched = r.usize("parser searched")?;
        let bulk_len = match r.u8("parser bulk length tag")? {
            0 => None,
            1 => Some(r.usize("parser bulk length")?),
            _ => return Err(invalid("parser bulk length tag", "neither 0 nor 1")),
        };
        let n = r.len(16, "parser arguments")?;
        let mut args = Vec::with_capacity(n);
        for _ in 0..n {
            args.push((r.usize("argument start")?, r.usize("argument end")?));
        }

        let multi = match r.u8("multi tag")? {
            0 => None,
            tag @ (1 | 2) => {
                let n = r.len(8, "queued commands")?;
                let mut commands = Vec::with_capacity(n);
                for _ in 0..n {
                    let argc = r.len(8, "queued arguments")?;
                    let mut args = Vec::with_capacity(argc);
                    for _ in 0..argc {
                        args.push(r.bytes("queued argument")?);
                    }
                    commands.push(args);
                }
                Some(MultiQueue {
                    commands,
                    dirty: tag == 2,
                })
            }
            _ => return Err(invalid("multi tag", "neither 0, 1 nor 2")),
        };
        let n = r.len(9, "watched keys")?;
        let mut watched = Vec::with_capacity(n);
        for _ in 0..n {
            let key = r.bytes("watched key")?;
            let version = match r.u8("watched version tag")? {
                0 => None,
                1 => Some(r.u64("watched version")?),
                _ => return Err(invalid("watched version tag", "neither 0 nor 1")),
            };
            watched.push((key, version));
        }
        let channels = r.names("channels")?;
        let patterns = r.names("patterns")?;

        let unparsed_len = r.len(1, "unparsed input")?;
        let unparsed = BytesMut::from(r.take(unparsed_len, "unparsed input")?);
        if !r.rest.is_empty() {
            return Err(SessionError::Trailing(r.rest.len()));
        }
        let progress = ParseProgress {
            count,
            pos,
            bulk_len,
            args,
            searched,
        };
        let resp_parser = ParseState::resume(progress, unparsed.len())
            .map_err(|why| invalid("RESP parser", why))?;

        let session = Session {
            id,
            protocol,
            resp,
            authenticated: flags & FLAG_AUTHENTICATED != 0,
            name,
            lib_name,
            lib_ver,
            db,
            last_cmd,
            close_after_reply: flags & FLAG_CLOSE_AFTER_REPLY != 0,
            mc_parser,
            resp_parser,
            multi,
            watched,
            channels,
            patterns,
        };
        Ok((session, times, unparsed))
    }
}

/// The command table's own name for `name` (`get`, `client|list`), so that `last_cmd` stays
/// a `&'static str`; [`NO_COMMAND`] for a name the table does not have.
fn command_name(name: &[u8]) -> &'static str {
    use baton_engine::command::{lookup, subcommand};
    if name == MEMCACHE_COMMAND.as_bytes() {
        return MEMCACHE_COMMAND;
    }
    let found = match name.iter().position(|&b| b == b'|') {
        None => lookup(name).map(|spec| spec.name),
        Some(bar) => lookup(&name[..bar])
            .and_then(|spec| subcommand(spec, &name[bar + 1..]))
            .map(|(_, sub)| sub.name),
    };
    found.unwrap_or(NO_COMMAND)
}

fn invalid(field: &'static str, why: &'static str) -> SessionError {
    SessionError::Invalid { field, why }
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_usize(out: &mut Vec<u8>, v: usize) {
    put_u64(out, v as u64);
}

fn put_opt_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => out.push(0),
        Some(b) => {
            out.push(1);
            put_usize(out, b.len());
            out.extend_from_slice(b);
        }
    }
}

/// Reads fields off the front of the body, checking each against what is left.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], SessionError> {
        if n > self.rest.len() {
            return Err(SessionError::Truncated {
                field,
                needed: n as u64,
                left: self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], SessionError> {
        let head = self.take(N, field)?;
        Ok(head.try_into().expect("take returned N bytes"))
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, SessionError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, SessionError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, SessionError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    fn usize(&mut self, field: &'static str) -> Result<usize, SessionError> {
        usize::try_from(self.u64(field)?).map_err(|_| invalid(field, "too large for this machine"))
    }

    /// A count of items of `size` bytes each, all of which must still be present.
    fn len(&mut self, size: usize, field: &'static str) -> Result<usize, SessionError> {
        let n = self.u64(field)?;
        let needed = n.saturating_mul(size as u64);
        if needed > self.rest.len() as u64 {
            return Err(SessionError::Truncated {
                field,
                needed,
                left: self.rest.len(),
            });
        }
        Ok(n as usize)
    }

    /// 8 length + bytes.
    fn bytes(&mut self, field: &'static str) -> Result<Bytes, SessionError> {
        let n = self.len(1, field)?;
        Ok(Bytes::copy_from_slice(self.take(n, field)?))
    }

    /// A count, then that many names of 8 length + bytes each (every name takes at least
    /// its 8 length bytes, which the count is checked against).
    fn names(&mut self, field: &'static str) -> Result<BTreeSet<Bytes>, SessionError> {
        let n = self.len(8, field)?;
        let mut set = BTreeSet::new();
        for _ in 0..n {
            let len = self.len(1, field)?;
            set.insert(Bytes::copy_from_slice(self.take(len, field)?));
        }
        Ok(set)
    }

    fn opt_bytes(&mut self, field: &'static str) -> Result<Option<Bytes>, SessionError> {
        match self.u8(field)? {
            0 => Ok(None),
            1 => {
                let n = self.len(1, field)?;
                Ok(Some(Bytes::copy_from_slice(self.take(n, field)?)))
            }
            _ => Err(invalid(field, "presence tag neither 0 nor 1")),
        }
    }
}
