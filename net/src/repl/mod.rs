//! Replication as the server runs it: the state every core shares ([`Repl`]), the
//! primary's side of a flow ([`feed`]), the replica's link to its primary ([`link`]) and
//! the commands (REPLICAOF, ROLE, WAIT, REPLCONF, FLOWSYNC: [`commands`]).
//!
//! ```text
//!  replica                                          primary
//!  link thread ── control conn: AUTH, REPLCONF ──►  any core
//!              ── flow conn k: FLOWSYNC k id off ─► any core ─ fd ─► core k's loop:
//!                                                               Feeder::fill each turn
//!  core k % cores' loop ◄──────── records of shard k ──────────────┘
//!    Applier ─► its own shard, and one mesh call per turn to each other core
//!    ──► "ACK offset" lines back on the flow
//! ```
//!
//! The data path is the cores' own io_uring loops; the link thread only connects, says
//! hello and watches the link (blocking sockets, off the cores), then hands each flow's
//! socket to a core.

pub mod commands;
pub mod failover;
pub mod feed;
pub mod link;
