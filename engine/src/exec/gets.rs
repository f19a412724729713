//! GETs of a pipeline that run on another core, packed: the keys of the GETs queued in a
//! row for one core travel as one buffer ([`Gets`], one [`Job::Gets`]), and their
//! values come back as one buffer ([`Got`]).
//!
//! A GET sent as a [`Job::Cmd`] costs the core that runs it three blocks the asking core
//! wrote (the job, its argument list and the key in the read buffer), and the asking
//! core the 96-byte output the other wrote: cache lines that move between cores one by
//! one, each a miss, which made a second core dearer per request than the first.
//! Packed, a run of GETs moves a few lines in each direction, whatever its length.
//!
//! Order holds: GETs join a [`Gets`] only while it is the last job queued for its core
//! ([`super::Batch::push_get`]), so every job keeps its place among that core's jobs.
//!
//! [`Job::Gets`]: crate::runtime::Job::Gets
//! [`Job::Cmd`]: crate::runtime::Job::Cmd

use bytes::Bytes;

use crate::clock;
use crate::command::CommandSpec;
use crate::reply::Reply;
use crate::shard::Shard;
use baton_ring::Router;

/// The longest key a [`Gets`] takes; a longer one goes as a command of its own.
pub const MAX_KEY: usize = 1024;

/// GET's entry in the command table.
pub static GET: std::sync::LazyLock<&'static CommandSpec> = std::sync::LazyLock::new(|| {
    crate::command::lookup(b"get").expect("GET is in the command table")
});

/// The keys of GETs queued in a row for one core, back to back.
#[derive(Debug, Default)]
pub struct Gets {
    keys: Vec<u8>,
    /// Where each key ends in `keys`.
    ends: Vec<u32>,
}

impl Gets {
    /// Room for about `n` GETs.
    pub fn with_room(n: usize) -> Gets {
        Gets {
            keys: Vec::with_capacity(n * 16),
            ends: Vec::with_capacity(n),
        }
    }

    /// Whether `key` may join ([`MAX_KEY`], and the offsets stay within `u32`).
    pub fn takes(&self, key: &[u8]) -> bool {
        key.len() <= MAX_KEY && self.keys.len() + key.len() <= u32::MAX as usize
    }

    /// Adds a GET of `key` (which [`Gets::takes`]) and returns its index.
    pub fn push(&mut self, key: &[u8]) -> u32 {
        debug_assert!(self.takes(key));
        self.keys.extend_from_slice(key);
        self.ends.push(self.keys.len() as u32);
        (self.ends.len() - 1) as u32
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        let mut from = 0;
        self.ends.iter().map(move |&end| {
            let key = &self.keys[from..end as usize];
            from = end as usize;
            key
        })
    }

    /// Runs every GET on `shard`, in order, as [`super::plan::execute`] would run each.
    /// The keys go back with the outcomes, for the slow log of the asking core: the
    /// values follow them in their buffer.
    pub fn run(self, router: &Router, shard: &mut Shard, now: u64) -> Got {
        let Gets {
            keys: mut buf,
            ends,
        } = self;
        let mut each = Vec::with_capacity(ends.len());
        let mut others = Vec::new();
        let mut other = |reply: Reply| {
            others.push(reply);
            OTHER + (others.len() - 1) as u32
        };
        // A cluster node checks every key's slot (a redirection): the general path.
        let clustered = router.clustered();
        let mut start = clock::ticks();
        let mut from = 0;
        for &key_end in &ends {
            let key = from..key_end as usize;
            from = key_end as usize;
            let kind = if clustered {
                let args = [
                    Bytes::from_static(b"GET"),
                    Bytes::copy_from_slice(&buf[key]),
                ];
                other(super::plan::execute(router, shard, &GET, &args, now))
            } else {
                match shard.execute_get(&buf[key.clone()], now) {
                    Ok(Some(value)) if buf.len() + value.len() <= u32::MAX as usize => {
                        buf.extend_from_slice(value);
                        VALUE
                    }
                    Ok(Some(value)) => other(Reply::Bulk(Bytes::copy_from_slice(value))),
                    Ok(None) => MISS,
                    Err(reply) => other(reply),
                }
            };
            let end = clock::ticks();
            each.push(One {
                key_end,
                end: buf.len() as u32,
                kind,
                ticks: end.saturating_sub(start),
            });
            start = end;
        }
        Got {
            buf: Buf::Owned(buf),
            each,
            others,
        }
    }
}

const MISS: u32 = 0;
const VALUE: u32 = 1;
/// Any other reply: `OTHER + i` is [`Got::others`]`[i]`.
const OTHER: u32 = 2;

/// One GET's outcome in a [`Got`].
#[derive(Debug, Clone, Copy)]
struct One {
    /// Where its key ends in [`Got::buf`] (a key starts where the one before ends).
    key_end: u32,
    /// Where its value ends in [`Got::buf`] (a value starts where the one before ends,
    /// the first one where the last key ends).
    end: u32,
    /// [`MISS`], [`VALUE`], or [`OTHER`] plus its place in [`Got::others`].
    kind: u32,
    ticks: u64,
}

/// A buffer built on one core and sliced on another.
#[derive(Debug)]
enum Buf {
    Owned(Vec<u8>),
    Shared(Bytes),
}

impl Buf {
    /// `range` of the buffer, as a slice of it (the buffer is shared from then on).
    fn slice(&mut self, range: std::ops::Range<usize>) -> Bytes {
        if let Buf::Owned(v) = self {
            *self = Buf::Shared(Bytes::from(std::mem::take(v)));
        }
        match self {
            Buf::Shared(b) => b.slice(range),
            Buf::Owned(_) => unreachable!("shared just above"),
        }
    }
}

/// The outcomes of a [`Gets`], in order: the keys and then the values back to back in
/// one buffer, and the replies that are neither a value nor a miss (WRONGTYPE, a
/// redirection) apart. Small enough not to make every [`crate::runtime::Out`] larger.
#[derive(Debug)]
pub struct Got {
    buf: Buf,
    each: Vec<One>,
    others: Vec<Reply>,
}

impl Got {
    /// GET `index`'s key.
    pub fn key(&mut self, index: u32) -> Bytes {
        let Some(one) = self.each.get(index as usize) else {
            return Bytes::new();
        };
        let start = match index {
            0 => 0,
            i => self.each[i as usize - 1].key_end,
        };
        self.buf.slice(start as usize..one.key_end as usize)
    }

    /// GET `index`'s reply and how long it ran (clock ticks, measured where it ran).
    /// Each index is taken once (a reply other than a value or a miss moves out).
    pub fn take(&mut self, index: u32) -> (Reply, u64) {
        let Some(&one) = self.each.get(index as usize) else {
            return (Reply::err("ERR internal: missing reply"), 0);
        };
        let reply = match one.kind {
            MISS => Reply::Nil,
            VALUE => {
                let start = match index {
                    0 => self.each.last().map_or(0, |last| last.key_end),
                    i => self.each[i as usize - 1].end,
                };
                Reply::Bulk(self.buf.slice(start as usize..one.end as usize))
            }
            other => self
                .others
                .get_mut((other - OTHER) as usize)
                .map(|r| std::mem::replace(r, Reply::Nil))
                .unwrap_or_else(|| Reply::err("ERR internal: missing reply")),
        };
        (reply, one.ticks)
    }
}
