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
//!  new ─► TAKEOVER <proto> pid <pid> cores <n> runid <40 hex>
//!  old ─► OK <proto> port <p> memcache-port <p|0> cores <n> host <ip> next-client-id <id>
//!         [fds: the old's redis listeners, then its memcached listeners]
//!       | ERR <reason>
//!  new ─► CONNS <m>   [fds: m sockets, one per old core, for the connections]
//!  ... the new process replicates from <host>:<port> like a replica ...
//!  old ─► PROMOTE
//!  new ─► PROMOTED    (it is a primary now, and accepts on the listeners)
//!  ... old cores send their connections over the CONNS sockets ...
//!  old ─► DONE <connections moved>
//! ```
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
