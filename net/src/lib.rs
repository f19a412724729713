//! # baton-net
//!
//! Protocol codecs — pure functions over bytes: [`resp`] and [`memcache`] — and the
//! per-core io_uring connection loop ([`event_loop`]) that reads, parses, routes, executes,
//! encodes and writes. Codecs know nothing about storage; storage (`baton-engine`)
//! knows nothing about bytes on the wire.
//!
//! A client's [`session`] (what commands see and change, and where its parsers stand) is
//! plain data that can be encoded to bytes, to hand a connection to another process;
//! [`client`] joins each session with its connection's I/O facts for CLIENT LIST / KILL.
//!
//! Each core's net state — its clients, command counters, slow log, memcached counters —
//! is one [`netcore::NetCore`], created by the core's connection loop and reached from
//! other cores through the engine's core (no thread-locals).
//!
//! Pub/Sub ([`pubsub`]) keeps each core's subscribers in its `NetCore`; PUBLISH reaches
//! every core with a job, and each core's loop sends the messages its jobs queued.
//!
//! What the server reports about itself lives in [`stats`] (per-core command counters,
//! SLOWLOG, INFO) and [`config_command`] (CONFIG GET/SET/RESETSTAT and its parameter table).
//!
//! ```text
//!  socket ─► uring recv ─► resp/memcache parse ─► dispatch ─► Shard (this core)
//!                                                    └──────► mesh ─► Shard (other core)
//!  socket ◄─ uring send ◄─ encode ◄─ replies in request order ◄┘
//! ```

pub mod admin;
pub mod blocking;
pub mod client;
pub mod cluster;
pub mod config;
pub mod config_command;
pub mod dispatch;
pub mod event_loop;
pub mod handoff;
pub mod ids;
pub mod kill;
pub mod listener;
pub mod mcdispatch;
pub mod memcache;
pub mod multi;
pub mod netcore;
pub mod protect;
pub mod pubsub;
pub mod repl;
pub mod repl_state;
pub mod resp;
pub mod session;
pub mod stats;
pub mod units;
pub mod uring;
