//! # baton-engine
//!
//! What each core owns: a [`shard::Shard`] (the [`store::Store`], expiry, statistics and
//! the single write path), the typed [`reply::Reply`] model, the [`command`] table and the
//! shard-side command handlers in [`commands`]. The [`runtime`] module owns the glommio
//! executors (one per core, pinned) and the cross-core mesh.
//!
//! Only the write path can change a store (the store lives inside it and keeps its
//! mutating methods private to it, so the compiler enforces this), and it reports every change as a [`shard::Effect`] that
//! [`shard::Shard::apply`] replays exactly: the stream replication is built on.
//!
//! Store and command logic are synchronous and never touch glommio; only `runtime` does.
//! Nothing here knows about bytes on a wire: codecs live in `baton-net`.
//!
//! ```text
//!   core 0                         core 1
//!   ┌──────────────────────┐       ┌──────────────────────┐
//!   │ glommio executor     │ mesh  │ glommio executor     │
//!   │  conns ─► Shard 0    │◄─────►│  conns ─► Shard 1    │
//!   └──────────────────────┘       └──────────────────────┘
//! ```

pub mod clock;
pub mod command;
pub mod commands;
pub mod entry;
pub mod evict;
pub mod exec;
pub mod glob;
pub mod hash;
pub mod list;
pub mod memcache;
mod prefetch;
pub mod reply;
mod rng;
pub mod runtime;
pub mod set;
pub mod shard;
mod slot_index;
mod table;
pub mod trim;
pub mod zset;

pub use command::{lookup, CommandSpec, Merge, Route};

/// Bits that name a core inside values that must be unique across cores (a memcached CAS,
/// a SCAN cursor): a server runs at most [`MAX_CORES`] cores.
pub const CORE_BITS: u32 = 16;
/// The most cores one server runs (65,536).
pub const MAX_CORES: usize = 1 << CORE_BITS;
pub use reply::Reply;
pub use shard::{store, Shard};
pub use store::{Entry, ItemCopy, Store, NO_EXPIRY};
