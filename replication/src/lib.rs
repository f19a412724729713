//! # baton-replication
//!
//! A primary replicates one flow per shard. Each flow is an ordered stream of records
//! ([`record`]): the shard's journal of effects, and during a full sync the items of a
//! snapshot walk ([`snapshot`]) interleaved with it. The journal's recent past stays in a
//! per-shard backlog ([`journal`]) so that a replica whose link broke resumes where it
//! stopped; a [`Feeder`] decides between the two and feeds a flow ([`feed`]). A replica applies each flow in order, routing every record to its own core
//! by its own core hash ([`apply`]), so primary and replica may run different core counts.
//!
//! ```text
//!  primary shard k                                     replica
//!  write path ─► Effect ─► Journal (backlog, offsets) ─┐
//!  SnapshotWalk (full sync only) ─► ITEM records ──────┴─► flow k ─► Applier ─► shard of
//!                                                                    each key's own core
//! ```
//!
//! Why a full sync needs no point-in-time view: the walk and the journal go down one
//! ordered flow, and every effect is self-contained and idempotent (a whole item, an
//! absolute expiry, a delete). An item the walk sends is that item as of that moment;
//! whatever happens to it later is a journal record that follows it. An item written
//! before the walk reaches it is sent twice (as an effect, then by the walk, unchanged),
//! and a key deleted before the walk reaches it is not sent at all. So the replica ends
//! exact without the primary copying anything on write, pausing, or buffering the
//! journal of the whole sync.
//!
//! Everything here is plain data and functions over a [`baton_engine::Shard`]: no
//! sockets, no runtime. The server moves the bytes.

pub mod apply;
pub mod feed;
pub mod journal;
pub mod record;
pub mod snapshot;

pub use apply::Applier;
pub use feed::{Feeder, Lagged, ReplIds};
pub use journal::{Backlog, Journal, Resume};
pub use record::{decode, encode, DecodeError, Hello, Limits, Record, ReplId, VERSION};
pub use snapshot::SnapshotWalk;
