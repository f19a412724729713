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

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
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
    /// The keys go back with the outcomes, for the slow log of the asking core.
    pub fn run(self, router: &Router, shard: &mut Shard, now: u64) -> Got {
        let mut got = Got {
            values: Vec::new(),
            shared: None,
            each: Vec::with_capacity(self.len()),
            others: Vec::new(),
            gets: Gets::default(),
            keys: None,
        };
        // A cluster node checks every key's slot (a redirection): the general path.
        let clustered = router.clustered();
        let mut start = clock::ticks();
        for key in self.keys() {
            let kind = if clustered {
                let args = [Bytes::from_static(b"GET"), Bytes::copy_from_slice(key)];
                got.other(super::plan::execute(router, shard, &GET, &args, now))
            } else {
                match shard.execute_get(key, now) {
                    Ok(Some(value)) if got.values.len() + value.len() <= u32::MAX as usize => {
                        got.values.extend_from_slice(value);
                        VALUE
                    }
                    Ok(Some(value)) => got.other(Reply::Bulk(Bytes::copy_from_slice(value))),
                    Ok(None) => MISS,
                    Err(reply) => got.other(reply),
                }
            };
            let end = clock::ticks();
            got.each.push(One {
                end: got.values.len() as u32,
                kind,
                ticks: end.saturating_sub(start),
            });
            start = end;
        }
        got.gets = self;
        got
    }
}

const MISS: u32 = 0;
const VALUE: u32 = 1;
/// Any other reply: `OTHER + i` is [`Got::others`]`[i]`.
const OTHER: u32 = 2;

/// One GET's outcome in a [`Got`].
#[derive(Debug, Clone, Copy)]
struct One {
    /// Where its value ends in [`Got::values`] (a value starts where the one before
    /// ends).
    end: u32,
    /// [`MISS`], [`VALUE`], or [`OTHER`] plus its place in [`Got::others`].
    kind: u32,
    ticks: u64,
}

/// The outcomes of a [`Gets`], in order: values back to back, and the replies that are
/// neither a value nor a miss (WRONGTYPE, a redirection) apart.
#[derive(Debug)]
pub struct Got {
    values: Vec<u8>,
    /// `values`, once the asking core takes the first one: each value is a slice of it.
    shared: Option<Bytes>,
    each: Vec<One>,
    others: Vec<Reply>,
    /// The GETs' keys.
    gets: Gets,
    /// `gets.keys`, once the asking core takes the first key.
    keys: Option<Bytes>,
}

impl Got {
    fn other(&mut self, reply: Reply) -> u32 {
        self.others.push(reply);
        OTHER + (self.others.len() - 1) as u32
    }

    /// How many GETs ran.
    pub fn len(&self) -> usize {
        self.each.len()
    }

    pub fn is_empty(&self) -> bool {
        self.each.is_empty()
    }

    /// GET `index`'s key: a slice of the keys' buffer.
    pub fn key(&mut self, index: u32) -> Bytes {
        let Some(&end) = self.gets.ends.get(index as usize) else {
            return Bytes::new();
        };
        let start = match index {
            0 => 0,
            i => self.gets.ends[i as usize - 1],
        };
        let keys = &mut self.gets.keys;
        self.keys
            .get_or_insert_with(|| Bytes::from(std::mem::take(keys)))
            .slice(start as usize..end as usize)
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
                    0 => 0,
                    i => self.each[i as usize - 1].end as usize,
                };
                let values = &mut self.values;
                let all = self
                    .shared
                    .get_or_insert_with(|| Bytes::from(std::mem::take(values)));
                Reply::Bulk(all.slice(start..one.end as usize))
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
