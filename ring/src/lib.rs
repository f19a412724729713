//! baton-ring: where a key lives.
//!
//! Every request is routed twice: to a node of the cluster by its hash slot, and to a core
//! of that node by a separate 64-bit hash. This crate owns both functions and the slot
//! table, and nothing else.
//!
//! ```text
//!                 hash_tag(key)            "{user1000}.following" -> "user1000"
//!                /             \
//!   crc16 & 16383               core_hash (seeded, fixed)
//!        |                           |
//!      slot  --SlotTable-->  node    fastrange(hash, cores)  -->  core
//! ```
//!
//! - [`slot`] is Redis Cluster's `HASH_SLOT`, bit for bit, so cluster clients agree with us.
//! - [`core_of`] spreads keys evenly over any core count. Its hash is independent of the
//!   CRC and of the store's hasher, and stable across processes and versions: replication
//!   and handoff route records with it in another process (see [`core_hash`]).
//! - [`SlotTable`] maps slots to nodes under an epoch.
//! - [`Router`] puts the two together for one core: the one place in the server that
//!   decides where a key goes (a core of this node, or MOVED / ASK / CROSSSLOT).
//!
//! What this crate must not do: I/O, allocation on the routing path, threads, clocks,
//! randomness, or dependencies. It is pure functions over bytes, so every other crate can
//! call it anywhere, and its tests need neither a socket nor an executor.
//!
//! Modules: `crc` (CRC16-XMODEM), `slot` (hash tags and slots), `core` (the core hash),
//! `table` (the slot table).

mod core;
mod crc;
mod router;
mod slot;
mod table;

pub use crate::core::{core_hash, core_of, fastrange, SEED};
pub use crate::crc::crc16;
pub use crate::router::{ClusterView, Router, Target, UNASSIGNED};
pub use crate::slot::{hash_tag, slot, SLOTS};
pub use crate::table::{NodeId, SlotTable};
