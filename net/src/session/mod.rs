//! A client's session: what commands can see and change (protocol version, auth, name,
//! database) and where its parser stands, as plain data with no socket, no timestamps of
//! I/O and no shared handles.
//!
//! Keeping the session apart from the connection's I/O is what lets a connection be handed
//! to another process: the socket travels as a file descriptor, the session as bytes
//! ([`Session::encode`], [`Session::decode`]), together with the input that was received
//! but not yet parsed, and the connection's [`ConnTimes`]. What the I/O side knows about a connection (its addresses, fd,
//! times, whether CLIENT KILL named it) lives in [`crate::client::ConnInfo`]; the
//! connection loop's buffers and in-flight operations live in `crate::event_loop`.
//!
//! ```text
//!   crate::client::Client ── Rc ─► ClientEntry ─┬─ RefCell<Session>   (this module)
//!                                               └─ ConnInfo           (I/O facts)
//!   event_loop::Conn (fd, read buffer, output, armed operations) ─► Client
//! ```

mod wire;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::memcache::McParser;
use crate::resp::ParseState;

pub use wire::{common_version, SessionError, OLDEST_VERSION, VERSION};

/// Which protocol a connection speaks, decided by the port it arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Redis,
    Memcache,
}

/// What CLIENT LIST shows as `cmd=` before a connection's first command.
pub const NO_COMMAND: &str = "NULL";

/// What CLIENT and HELLO read and write, and the parser state of the connection's input.
#[derive(Debug, PartialEq, Eq)]
pub struct Session {
    /// Unique in this process, and kept across a handoff (CLIENT ID, CLIENT KILL ID).
    pub id: u64,
    pub protocol: Protocol,
    /// RESP version: 2 or 3.
    pub resp: u8,
    pub authenticated: bool,
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub db: u32,
    /// The command table's name for the last command (`cmd=` of CLIENT LIST).
    pub last_cmd: &'static str,
    /// Set by QUIT or by a CLIENT KILL that names the caller: the connection closes once
    /// its replies are written.
    pub close_after_reply: bool,
    /// memcached parser state (the rest of a rejected data block to skip).
    pub mc_parser: McParser,
    /// RESP parser state, so a request trickling in is not re-read from its start.
    pub resp_parser: ParseState,
    /// The transaction being queued between MULTI and EXEC (`crate::multi`).
    pub multi: Option<MultiQueue>,
    /// The keys WATCH named, with their versions then (the CAS of the live entry, `None`
    /// when absent); EXEC fails if any differs at EXEC time.
    pub watched: Vec<(Bytes, Option<u64>)>,
    /// Channels this client is subscribed to (SUBSCRIBE); this core's
    /// [`crate::pubsub::PubSub`] registry holds the same facts, by channel.
    pub channels: BTreeSet<Bytes>,
    /// Patterns this client is subscribed to (PSUBSCRIBE).
    pub patterns: BTreeSet<Bytes>,
}

/// The commands a connection queued after MULTI, as parsed and checked.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MultiQueue {
    pub commands: Vec<Vec<Bytes>>,
    /// A command failed its checks while queuing: EXEC answers EXECABORT.
    pub dirty: bool,
}

static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(1);

impl Session {
    /// A fresh session with the next client id.
    pub fn new(protocol: Protocol, authenticated: bool) -> Session {
        Session {
            id: NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed),
            protocol,
            resp: 2,
            authenticated,
            name: None,
            lib_name: None,
            lib_ver: None,
            db: 0,
            last_cmd: NO_COMMAND,
            close_after_reply: false,
            mc_parser: McParser::new(),
            resp_parser: ParseState::default(),
            multi: None,
            watched: Vec::new(),
            channels: BTreeSet::new(),
            patterns: BTreeSet::new(),
        }
    }

    /// Channels plus patterns: the count SUBSCRIBE and friends confirm with. Above 0 the
    /// client is in Pub/Sub mode (`flags=P`, RESP2's command restriction).
    pub fn subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }
}

/// The id [`Session::new`] hands out next.
pub fn next_client_id() -> u64 {
    NEXT_CLIENT_ID.load(Ordering::Relaxed)
}

/// When a connection was accepted and when it last read or wrote (unix ms): CLIENT
/// LIST's `age=` and `idle=`, and the idle timeout. Kept by the connection loop
/// ([`crate::client::ConnInfo`]), not by the session; a handoff carries them along with
/// it (session format 4 on), so that neither starts again at 0 in the new process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnTimes {
    pub created_ms: u64,
    pub last_ms: u64,
}

/// A connection another process handed over (a handoff), on its way to the core that
/// adopts it: the socket, its session, its times (`None` from an older binary) and the
/// input it had not parsed yet.
pub struct Adopted {
    pub fd: std::os::fd::OwnedFd,
    pub session: Session,
    pub times: Option<ConnTimes>,
    pub unparsed: bytes::BytesMut,
}

/// Makes every id that [`Session::new`] hands out from now on greater than `id`.
///
/// A process that restores sessions calls this with each restored id, so that no new
/// client shares an id with one it took over. Ids handed out before the call are not
/// renumbered: a process restores sessions before it accepts connections of its own.
pub fn reserve_ids_through(id: u64) {
    NEXT_CLIENT_ID.fetch_max(id.saturating_add(1), Ordering::Relaxed);
}
