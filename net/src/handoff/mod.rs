//! Zero-downtime binary handoff: a running server (the *old* process) hands its
//! listeners, its data and its live client connections to a new binary (the *new*
//! process), driven by the operator tool `baton-handoff` (`tools/handoff`).
//!
//! ```text
//!  baton-handoff ──HELLO──► old control socket ◄──TAKEOVER── new (--takeover PATH)
//!                 ◄─events─┘      │  listener fds (SCM_RIGHTS) ──► new (holds, no accept)
//!                                 │  connection sockets ◄── new (one pair per old core)
//!                 old port  ◄─── new's replication link (REPLICAOF-like, per-shard flows)
//!  freeze: old cores stop starting commands ─► in-flight done ─► new acked every shard
//!  PROMOTE ─► new promotes (keeps the id as replid2) and accepts ─► PROMOTED
//!  old cores move each idle connection (fd + Session) ─► new cores adopt them ─► old exits 0
//! ```
//!
//! # The control socket
//!
//! A Unix stream socket at `--handoff-socket PATH` (default `/tmp/baton-<port>.handoff`),
//! mode 0600; a peer whose uid (SO_PEERCRED) is neither the server's nor root's is
//! refused with `ERR permission denied` and closed. Messages are lines ending in `\n`,
//! fields separated by one space. File descriptors travel as SCM_RIGHTS attached to the
//! first byte of the line that announces them.
//!
//! ## The tool (any number of watchers, typically one)
//!
//! ```text
//!  tool ─► HELLO <proto>
//!  old  ─► OK <proto> pid <pid> port <port> cores <n> version <crate version>
//!       |  ERR <reason>                      (then closes)
//! ```
//! After `OK` the old process sends events to the tool until the handoff ends:
//!
//! ```text
//!  STEP <text>                               a step began or ended (free text)
//!  COPY <core> <keys> <bytes> <done: 0|1>    copy progress of old core <core>
//!  FREEZE <micros>                           how long the old process started no command
//!  MOVED <core> <connections>                old core <core> handed its connections over
//!  DONE <summary text>                       success: the old process exits 0 now
//!  ABORT <reason>                            failure: the old process serves on
//! ```
//! The tool may send `ABORT` itself (for its timeout): before the commit point the old
//! process aborts and answers `ABORT aborted by the operator`; after it, `ERR too late`.
//!
//! ## The new process
//!
//! ```text
//!  new ─► TAKEOVER <proto> pid <pid> cores <n> sessions <lowest> <highest>
//!  old ─► OK <proto> port <p> memcache-port <p|0> cores <n> host <ip> next-client-id <id>
//!            listeners <r> <m> auth <requirepass in hex, or -> session <format>
//!         [fds: the old's <r> redis listeners, then its <m> memcached listeners]
//!       | ERR <reason>
//!  new ─► CONNS <m> runid <40 hex>   [fds: m sockets, one per old core, for the connections]
//!  ... the new process replicates from <host>:<port> like a replica ...
//!  new ─► SYNCED      (every flow's snapshot is applied on every core)
//!  ... the old process freezes: no command starts, the running ones finish ...
//!  old ─► CATCHUP <offset of shard 0> <offset of shard 1> ...   (its journal ends)
//!  new ─► CAUGHTUP    (every core applied every flow up to those offsets)
//!  old ─► PROMOTE | FOLLOW <host> <port>   (FOLLOW when the old process is a replica)
//!  new ─► PROMOTED    (it is a primary now, or a replica of <host>:<port> resuming the
//!                      old process's flows)
//!  ... old cores send their connections over the CONNS sockets ...
//!  old ─► DONE <connections moved>
//!  ... new waits until its cores have adopted that many connections (subscriptions
//!      registered), then its cores start commands and accept ...
//! ```
//! `sessions` names the session formats the new process reads
//! ([`crate::session::Session::decode`]); the old process answers with the newest one
//! both know (`session <format>`), in which it will send the connections, or refuses
//! with `ERR` when there is none. A binary from before session format 4 sends TAKEOVER
//! without `sessions` (it reads format 3 only) and gets the OK line without `session`
//! and format 3; a newer new process that an older old process answers
//! `ERR unknown handoff request` asks again without `sessions`.
//!
//! Each connection on a CONNS socket is one frame: a 4-byte big-endian length with the
//! connection's fd attached, then that many bytes of [`crate::session::Session::encode`].
//!
//! # Guarantees
//!
//! - Listeners are never closed, shut down or re-bound: both processes hold the same
//!   sockets; the old one stops accepting at the commit point, the new one starts.
//! - Before the commit point (the old process sending `PROMOTE`), any failure aborts:
//!   the new process's replication feeds are dropped, the old process's cores start
//!   commands again, and nothing it held changed.
//! - If the old process goes away before `PROMOTE`, the new one promotes itself and
//!   serves what it copied, logging which shards were still being copied.
//!
//! # Memory: why the peak is 2x today, and the per-shard cutover (design, not built)
//!
//! Today every flow is copied before the one global freeze, and the old process frees
//! nothing before it exits: at `SYNCED` both processes hold the whole data set, so the
//! peak RSS of old + new is about 2x the steady RSS (2.0-2.1x measured; issue 12 asks
//! for at most 1 + 1.5/cores, 1.75x at 2 cores). No ordering of the copy alone changes
//! that: the old process can only free shard k once it no longer serves shard k, so
//! the bound needs shard k served from the new process while the connections are still
//! in the old one. The steps, per old shard k = 0, 1, ... in turn:
//!
//! 1. **Copy k.** The new process opens flow k only (snapshot + journal, as a replica);
//!    its records go to the new cores by the new core hash, as today. The old process
//!    serves everything meanwhile.
//! 2. **Freeze k.** Jobs for old core k stop starting (jobs for the other shards run):
//!    a job-level pause on core k's mesh inbox plus the connection-level freeze of
//!    today for commands core k would run inline. Blocked clients waiting on keys of
//!    shard k are released as at today's freeze. `CATCHUP k <offset>`, `CAUGHTUP k`.
//! 3. **Cut k** (`CUT k`). The new process takes the keys of old shard k
//!    as its own (its cores run commands on them, while they still apply the other
//!    flows: the key sets are disjoint). Old core k runs every later job for shard k by
//!    sending it down a per-core forwarding socket to the new process and returning the
//!    reply it gets back to the asking core (the way `cluster::mclink` forwards
//!    memcached requests between nodes). Then old core k drops its store *without*
//!    journalling a FLUSH (a write-path method that only this state may call: the old
//!    process's replicas must not see shard k emptied) and calls `mi_collect(true)`
//!    on its own thread: the binary uses mimalloc, whose heaps are per thread and whose
//!    freed pages otherwise go back to the OS only after its purge delay.
//! 4. After the last cut: `PROMOTE` and the connections move exactly as today.
//!
//! Peak while copying shard k: the old process holds (cores - k) / cores of the data,
//! the new k / cores plus shard k in flight, so at most (1 + 1/cores) x plus buffers;
//! the freeze is per shard (each at most the journal tail of one shard). With another
//! core count the bound is the same (old shard k's keys spread over the new cores); an
//! old process with one core has one shard to cut, and stays at 2x (its bound,
//! 1 + 1.5/1, allows that).
//!
//! What makes this more than a protocol change, and why it is not built yet:
//!
//! - **Forwarding every job kind.** `Job::Cmd`, `Job::Answer` and `Job::Mc` are data
//!   (a command and its arguments, a memcached operation) and can cross a socket; the
//!   new process replans them with its own router. `Job::Call` and `Job::OnCore` are
//!   closures (cross-core transactions: RENAME/COPY/MSETNX across cores, MULTI/EXEC's
//!   locks and WATCH versions, all-core commands such as DBSIZE, SCAN, KEYS, FLUSHALL,
//!   INFO keyspace; about 60 call sites of `on_every_core`, `with_every_core` and
//!   `Core::call` in engine/src and net/src): each needs a serialisable form, or the
//!   connection asking for one that touches a cut shard must stop at that request
//!   boundary (the request left unparsed in its input, which the session carries)
//!   until it moves.
//! - **The commit point moves to `CUT 0`.** After it the old process no longer holds
//!   shard 0. Two honest choices: (i) the handoff is irreversible from `CUT 0` on: the
//!   tool must say so (`STEP commit point: shard 0 cut over; no abort from here`), an
//!   operator `ABORT` gets `ERR too late`, and if the new process dies after it, the
//!   shards it already holds are lost: a window of the whole per-shard sequence (about a
//!   second for 1M keys) instead of today's few milliseconds between `PROMOTE` and the
//!   connections' move; or (ii) the old process writes shard k to a file before it
//!   frees it (page cache, not RSS), and, since every request for shard k still passes
//!   through the old process until the connections move, the new process returns the
//!   effects of each forwarded write with its reply and the old one appends them to that
//!   file before it answers the client; an abort (operator, or the new process dying)
//!   then reloads shard k from the file: lossless for everything a client was told,
//!   at the cost of writing the data set to disk once (deletions the new process made by
//!   itself, expiry and eviction, are not in the file: expired keys expire again on
//!   access, evicted ones come back). Issue 12 item 3 ("the old process keeps serving
//!   every client, with all its data") holds with (ii), not with (i); (i) is the
//!   smaller step.
//! - **Replication downstream.** The old process's replicas stop receiving flow k at
//!   `CUT k`; they must resume flow k from the new process at the same offset. Today
//!   they reconnect after `PROMOTE` by partial resync with the new process holding the
//!   old id as `replid2`; per-shard cuts need the new process to continue flow k's
//!   offsets from the cut (its backlog for flow k starting there).
//! - **Tests.** The kill-at-each-step tests (`tests/handoff.rs`, `new_process_killed`)
//!   assert that a kill before the commit loses nothing; with (i) a kill after `CUT 0`
//!   is after the commit, so they need a kill point on each side of it.
//!
//! `tests/handoff.rs`'s `peak_rss_of_a_handoff_stays_within_the_bound` measures old + new
//! VmRSS during a handoff and asserts the bound; it is `#[ignore]`d until the cutover
//! above exists (it fails at about 2x today).

mod control;
pub mod fdpass;
pub mod lines;
mod takeover;

use std::os::fd::RawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};

pub use control::{default_socket_path, listen};
pub use takeover::{takeover, Takeover};

use crate::session::Protocol;

/// The version of the handoff protocol; both sides must speak the same.
pub const PROTO: u32 = 1;

/// Serving as usual.
pub const IDLE: u8 = 0;
/// Old process: the new one is copying the shards; everything serves as usual.
pub const COPYING: u8 = 1;
/// Old process: no command starts; the ones running finish.
pub const FREEZING: u8 = 2;
/// Old process: the new one serves; the cores hand over their connections.
pub const MOVING: u8 = 3;
/// New process: connections arrive from the old one; none runs a command and nothing
/// is accepted until the old process has handed over the last one.
pub const TAKING: u8 = 4;

/// What the cores and the handoff's threads share (in [`crate::config::Shared`]).
pub struct Handoff {
    phase: AtomicU8,
    /// Old process, per core: no command of this core is running (while freezing).
    pub quiet: Vec<AtomicBool>,
    /// Old process, per core: every connection and flow of this core is gone (moving).
    pub done: Vec<AtomicBool>,
    /// Old process, per core: connections handed over.
    pub moved: Vec<AtomicU64>,
    /// Old process, per core: the socket its connections go down (the new process's
    /// CONNS sockets, one per old core).
    pub conn_socks: Mutex<Vec<Option<UnixStream>>>,
    /// Old process: the listening sockets, to pass (they stay owned by the cores).
    pub listeners: Mutex<Vec<(RawFd, Protocol)>>,
    /// This process's control socket path, if it listens on one, and the inode it bound.
    socket_path: Mutex<Option<(std::path::PathBuf, u64)>>,
    /// Old process: the tools watching the handoff (their event streams).
    watchers: Mutex<Vec<UnixStream>>,
    /// Old process: a handoff (a TAKEOVER) is being driven.
    busy: AtomicBool,
    /// Old process: the operator (the tool) asked to abort.
    abort: AtomicBool,
    /// Old process: the session format the new process reads (negotiated at TAKEOVER).
    session_version: AtomicU16,
    /// New process: connections taken off the CONNS sockets.
    arrived: AtomicU64,
    /// New process: connections settled here: adopted by a core (its subscriptions
    /// registered in that core's registry) or closed (unreadable).
    settled: AtomicU64,
    /// New process: CONNS sockets still being read.
    receiving: AtomicUsize,
}

impl Handoff {
    pub fn new(cores: usize) -> Handoff {
        Handoff {
            phase: AtomicU8::new(IDLE),
            quiet: (0..cores).map(|_| AtomicBool::new(false)).collect(),
            done: (0..cores).map(|_| AtomicBool::new(false)).collect(),
            moved: (0..cores).map(|_| AtomicU64::new(0)).collect(),
            conn_socks: Mutex::new((0..cores).map(|_| None).collect()),
            listeners: Mutex::new(Vec::new()),
            socket_path: Mutex::new(None),
            watchers: Mutex::new(Vec::new()),
            busy: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            session_version: AtomicU16::new(crate::session::OLDEST_VERSION),
            arrived: AtomicU64::new(0),
            settled: AtomicU64::new(0),
            receiving: AtomicUsize::new(0),
        }
    }

    /// Where the handoff stands ([`IDLE`], [`COPYING`], ...); one load, read every turn.
    #[inline]
    pub fn phase(&self) -> u8 {
        self.phase.load(Ordering::Acquire)
    }

    /// Moves to `phase`; the caller rings the cores.
    pub fn set_phase(&self, phase: u8) {
        self.phase.store(phase, Ordering::Release);
    }

    /// Whether cores start no command (they buffer their input).
    pub fn frozen(phase: u8) -> bool {
        matches!(phase, FREEZING | MOVING | TAKING)
    }

    /// Whether cores accept new connections.
    pub fn accepting(phase: u8) -> bool {
        !matches!(phase, MOVING | TAKING)
    }

    /// At exit: removes the control socket's file, unless this process handed over (the
    /// new process serves the path now) or another process took the path over since.
    pub fn remove_socket(&self) {
        use std::os::unix::fs::MetadataExt;
        if self.phase() == MOVING {
            return;
        }
        if let Some((path, inode)) = crate::repl_state::lock(&self.socket_path).take() {
            if std::fs::metadata(&path).is_ok_and(|m| m.ino() == inode) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    /// Old process: sends `line` to every watching tool; a tool that went away is dropped.
    pub fn event(&self, line: &str) {
        tracing::info!("handoff: {line}");
        crate::repl_state::lock(&self.watchers).retain(|w| fdpass::send_line(w, line, &[]).is_ok());
    }

    /// Old process: the session format to hand connections over in.
    pub fn session_version(&self) -> u16 {
        self.session_version.load(Ordering::Acquire)
    }

    /// New process: a connection the old one sent is adopted by its core, or closed.
    pub fn settled_one(&self) {
        self.settled.fetch_add(1, Ordering::AcqRel);
    }

    /// Old process: sends one connection to the new process down core `core`'s socket.
    pub fn send_conn(&self, core: usize, fd: RawFd, payload: &[u8]) -> std::io::Result<()> {
        let socks = crate::repl_state::lock(&self.conn_socks);
        let Some(Some(sock)) = socks.get(core) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "no connection socket for this core",
            ));
        };
        fdpass::send_frame(sock, fd, payload)
    }
}

/// The lines the other side sends, read on a thread: `Some(line)` each, then `None`
/// once it goes away.
pub(crate) fn reader(conn: &UnixStream) -> mpsc::Receiver<Option<String>> {
    let (tx, rx) = mpsc::channel();
    let conn = conn.try_clone();
    std::thread::Builder::new()
        .name("baton-handoff-rd".into())
        .spawn(move || {
            let Ok(conn) = conn else {
                let _ = tx.send(None);
                return;
            };
            let _ = conn.set_read_timeout(None);
            loop {
                match fdpass::read_line(&conn) {
                    Ok(Some((line, _))) => {
                        if tx.send(Some(line)).is_err() {
                            return;
                        }
                    }
                    _ => {
                        let _ = tx.send(None);
                        return;
                    }
                }
            }
        })
        .expect("spawn the handoff reader");
    rx
}
