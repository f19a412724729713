//! The execution layer: from a command that was parsed, looked up and checked, to its
//! result, whichever cores it needs. Connections (in `baton-net`) parse, answer their own
//! connection commands, and hand the rest here; they encode what comes back.
//!
//! - [`Router`] (from `baton-ring`): key → slot → node → core, the one place that decides
//!   where a key lives.
//! - [`plan`]: how one Redis command runs (one core, split over cores, or a cross-core
//!   transaction), and how split replies merge.
//! - [`batch`] and [`pipeline`]: work queued per destination core and sent as one request
//!   each; a pipeline of either protocol finishes in request order. [`on_every_core`] and
//!   [`with_every_core`] run one function on every core (all-core commands and statistics).
//! - [`gets`]: a pipeline's GETs for another core, packed into one job per run of them.
//! - [`txn`]: cross-core transactions (RENAME, COPY, MSETNX, LCS over several cores).
//! - [`fence`]: MIGRATE's key fences (commands on a key being moved wait where the key
//!   lives until it is gone or stays).
//! - [`blocking`]: BLPOP and the other blocking pops: per-core FIFO registries of
//!   waiting clients, woken when a key they wait for fills.
//! - [`multi`]: the shard side of MULTI/EXEC and WATCH (locks, watched key versions, a
//!   queued command run inside the locks).
//!
//! Nothing here touches a socket, so all of it runs in tests with a bare runtime.
//!
//! ```text
//!  net: parse ─► lookup/arity/auth ─► plan(router) ─┬─ Run(this core) ──► Shard
//!                                                   ├─ Run/Split(other) ► Pipeline ─► mesh
//!                                                   └─ Txn ─────────────► txn::run
//!  net: encode ◄──────────── replies in request order ◄┘
//! ```

pub mod batch;
pub mod blocking;
pub mod fence;
pub mod gets;
pub mod multi;
pub mod pipeline;
pub mod plan;
pub mod txn;

pub use batch::{on_every_core, with_every_core, Batch, Outputs, Ticket};
pub use baton_ring::{ClusterView, Router, Target};
pub use pipeline::{Entry, Pipeline, RedisDone, RedisEntry};
pub use plan::{plan, plan_asking, Plan, Post};

/// Command arguments from words, for the unit tests of this layer.
#[cfg(test)]
pub(crate) fn args(words: &[&str]) -> Vec<bytes::Bytes> {
    words
        .iter()
        .map(|w| bytes::Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}
