//! The replica's side of one flow: bytes in, records decoded in order, each routed to the
//! replica core that owns its key by the replica's own core hash.
//!
//! Primary and replica may run different core counts, so the keys of one primary shard
//! spread over every replica shard. A primary shard's FLUSH then means "the keys of that
//! primary shard", not "this replica shard": with equal core counts they are the same
//! (both sides route with the same hash), otherwise every replica shard drops the keys
//! the primary's hash puts on that primary shard. A plain flush there would also drop
//! keys that another flow wrote after its own primary shard's flush.

use baton_engine::shard::Effect;
use baton_engine::Shard;
use baton_ring::Router;

use bytes::BytesMut;

use crate::record::{decode_shared, DecodeError, Hello, Limits, Record};

/// What one replica shard must do for a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Apply this journal record; it goes on to the shard's own journal, if it keeps one.
    Effect(Effect),
    /// Apply this snapshot item quietly: it is not part of the primary's journal.
    Item(Effect),
    /// A full sync of the primary shard this replica shard mirrors (equal core counts)
    /// starts: drop everything quietly; the shard's own journal, if it keeps one, starts
    /// again at `offset` (the caller restarts it), so it stays byte for byte the
    /// primary's and a replica of this replica can resume from it after a promotion.
    Restart { offset: u64 },
    /// Drop the keys that primary shard `shard` of `cores` owns (core counts differ: the
    /// primary's shard is spread over all of this replica's).
    FlushShard { shard: u32, cores: u32 },
}

/// Applies `op` to a replica's shard. (A replica that starts a full sync drops its own
/// replicas, as Redis's do: what it loads quietly they would never see.)
pub fn apply_op(shard: &mut Shard, op: &Op) {
    match op {
        Op::Effect(e) => shard.apply(e),
        Op::Item(e) => shard.apply_quiet(e),
        Op::Restart { .. } => shard.apply_quiet(&Effect::Flush),
        Op::FlushShard { shard: s, cores } => {
            // The primary's own router says which keys its shard `s` held.
            let primary = Router::standalone(*s as usize, *cores as usize);
            shard.flush_where(|key| primary.is_local(key));
        }
    }
}

/// A flow that cannot go on; the link is dropped and the sync started again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    #[error("malformed replication record: {0}")]
    Decode(#[from] DecodeError),
    #[error("the flow did not open with a hello")]
    NoHello,
    #[error("a second hello in the middle of a flow")]
    SecondHello,
    #[error("the flow resumes at offset {got}, but this replica stands at {want}")]
    Offset { want: u64, got: u64 },
    #[error("snapshot records in a partial sync")]
    UnexpectedItem,
}

/// The receive buffer a flow starts with: once the records decoded from its front are
/// applied and dropped, it is reused whole.
const PENDING_CAPACITY: usize = 64 * 1024;

/// The replica's state for one flow.
#[derive(Debug)]
pub struct Applier {
    limits: Limits,
    /// Routes keys to this replica's cores.
    router: Router,
    hello: Option<Hello>,
    /// Journal offset after the last journal record applied.
    offset: u64,
    /// Whether the snapshot is still coming (a full sync before its END).
    loading: bool,
    /// Received bytes not yet decoded (a record cut by the network).
    pending: BytesMut,
}

impl Applier {
    /// A flow applier for a replica with `cores` cores, expecting a flow that resumes at
    /// journal offset `offset` (anything, for a full sync).
    pub fn new(cores: usize, offset: u64, limits: Limits) -> Applier {
        Applier {
            limits,
            router: Router::standalone(0, cores),
            hello: None,
            offset,
            loading: false,
            pending: BytesMut::with_capacity(PENDING_CAPACITY),
        }
    }

    /// The journal offset this replica holds for the flow: what it asks for on resync.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The flow's hello, once received.
    pub fn hello(&self) -> Option<&Hello> {
        self.hello.as_ref()
    }

    /// Whether a full sync's snapshot is still arriving.
    pub fn loading(&self) -> bool {
        self.loading
    }

    /// Takes received bytes and hands each complete record's work to `route` as (replica
    /// core, op), in flow order. Bytes of a record cut short wait for the next call.
    pub fn feed(
        &mut self,
        bytes: &[u8],
        mut route: impl FnMut(usize, Op),
    ) -> Result<(), FlowError> {
        // The records decoded from these bytes share them: frozen, they stay alive while
        // any record's key or value does, and what follows the last complete record
        // (the start of one cut by the network) goes back to `pending`.
        self.pending.extend_from_slice(bytes);
        let buf = self.pending.split().freeze();
        let mut at = 0;
        let result = loop {
            match decode_shared(&buf, at, &self.limits) {
                Ok(Some((record, used))) => {
                    at += used;
                    if let Err(e) = self.take(record, used as u64, &mut route) {
                        break Err(e);
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e.into()),
            }
        };
        self.pending.extend_from_slice(&buf[at..]);
        result
    }

    fn take(
        &mut self,
        record: Record,
        len: u64,
        route: &mut impl FnMut(usize, Op),
    ) -> Result<(), FlowError> {
        let Some((shard, cores)) = self.hello.as_ref().map(|h| (h.shard, h.cores)) else {
            let Record::Hello(h) = record else {
                return Err(FlowError::NoHello);
            };
            if !h.full && h.offset != self.offset {
                return Err(FlowError::Offset {
                    want: self.offset,
                    got: h.offset,
                });
            }
            self.offset = h.offset;
            self.loading = h.full;
            if h.full {
                // What an earlier sync of this flow left is stale: a full sync starts
                // from none of the primary shard's keys.
                if h.cores as usize == self.router.cores() {
                    route(h.shard as usize, Op::Restart { offset: h.offset });
                } else {
                    self.route(h.shard, h.cores, Effect::Flush, route);
                }
            }
            self.hello = Some(h);
            return Ok(());
        };
        match record {
            Record::Hello(_) => return Err(FlowError::SecondHello),
            Record::End => self.loading = false,
            Record::Item(_) if !self.loading => return Err(FlowError::UnexpectedItem),
            Record::Item(e) => route(self.router.core_of(item_key(&e)), Op::Item(e)),
            Record::Effect(e) => {
                self.offset += len;
                self.route(shard, cores, e, route);
            }
        }
        Ok(())
    }

    fn route(&self, shard: u32, cores: u32, e: Effect, route: &mut impl FnMut(usize, Op)) {
        if let Some(key) = e.key() {
            let core = self.router.core_of(key);
            return route(core, Op::Effect(e));
        }
        // The one effect with no key: a flush of the primary's shard.
        debug_assert!(matches!(e, Effect::Flush), "{e:?} has no key");
        if cores as usize == self.router.cores() {
            route(shard as usize, Op::Effect(e));
        } else {
            for c in 0..self.router.cores() {
                route(c, Op::FlushShard { shard, cores });
            }
        }
    }
}

/// The key of a snapshot item (always a `Put`; the decoder makes nothing else an item).
fn item_key(e: &Effect) -> &[u8] {
    e.key().map_or(&[], |k| &k[..])
}
