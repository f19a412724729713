//! A pipeline that spans cores: requests queued in order, their shard work batched per
//! destination core, their results handed back in request order. Both protocols use it;
//! each brings its own [`Entry`] (what one request waits for and how it ends).

use std::rc::Rc;

use bytes::Bytes;

use super::batch::{Batch, Outputs, Ticket};
use super::plan::{merge_replies, post_process, Post};
use crate::command::{command_index, CommandSpec, Merge};
use crate::reply::Reply;
use crate::runtime::{Core, Job, Out};

/// One request of a pipeline: what it waits for, and what it becomes once its batches
/// have run.
pub trait Entry {
    type Done;
    fn finish(self, outs: &mut Outputs) -> Self::Done;
}

/// An entry with something of the caller's riding along (a connection's RESP version at
/// the time of the request, say).
impl<E: Entry, T> Entry for (E, T) {
    type Done = (E::Done, T);
    fn finish(self, outs: &mut Outputs) -> (E::Done, T) {
        (self.0.finish(outs), self.1)
    }
}

/// The most requests [`Pipeline::expect`] makes room for at once.
const MAX_EXPECT: usize = 256;

/// Requests in order, with their shard work queued per core.
pub struct Pipeline<E> {
    batch: Batch,
    entries: Vec<E>,
}

impl<E: Entry> Pipeline<E> {
    pub fn new(cores: usize) -> Pipeline<E> {
        Pipeline {
            batch: Batch::new(cores),
            entries: Vec::new(),
        }
    }

    /// Queues shard work for `core`; the entry that waits for it keeps the ticket.
    pub fn job(&mut self, core: usize, job: Job) -> Ticket {
        self.batch.push(core, job)
    }

    /// Queues a GET of `key` for `core`, packed with those queued for it just before
    /// ([`Batch::push_get`]).
    pub fn get(&mut self, core: usize, key: &[u8]) -> Option<(Ticket, u32)> {
        self.batch.push_get(core, key)
    }

    /// Queues a request behind the ones already queued.
    pub fn queue(&mut self, entry: E) {
        self.entries.push(entry);
    }

    /// Requests queued and not yet finished.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether shard work for `core` is queued and not yet run: a command for that core
    /// may then not run ahead of it.
    pub fn has_jobs_for(&self, core: usize) -> bool {
        self.batch.has_jobs_for(core)
    }

    /// Runs every queued batch (one request per core involved, all at once) and finishes
    /// the queued requests in order.
    pub async fn flush(&mut self, core: &Rc<Core>) -> Vec<E::Done> {
        let mut done = Vec::with_capacity(self.entries.len());
        self.flush_each(core, |d| done.push(d)).await;
        done
    }

    /// Like [`Pipeline::flush`], but hands each finished request to `each`, in order,
    /// without collecting them ([`Pipeline::finish_each`]).
    pub async fn flush_each(&mut self, core: &Rc<Core>, each: impl FnMut(E::Done)) {
        let outs = self.batch.run(core).await;
        self.finish_each(outs, each);
    }

    /// Sends the queued batches for the event loop to collect, with no task
    /// ([`Batch::send_for_loop`]); returns how many responses to wait for, which then
    /// go to [`Pipeline::finish_each`]. Nothing may be queued for `core` itself.
    pub fn send_for_loop(&mut self, core: &Core, tag: u64) -> usize {
        debug_assert!(!self.batch.has_jobs_for(core.id));
        self.batch.send_for_loop(core, tag)
    }

    /// Finishes the queued requests in order with their batches' outputs, handing each
    /// to `each` as it finishes (a connection encodes them as they come, with no list).
    pub fn finish_each(&mut self, mut outs: Outputs, mut each: impl FnMut(E::Done)) {
        for e in self.entries.drain(..) {
            each(e.finish(&mut outs));
        }
    }

    /// Makes room for about `n` more requests, so that queueing them does not grow the
    /// queues step by step: the entries, and each core's job queue as it gets its first
    /// job ([`Batch::expect`]). Capped, so a huge pipeline costs no more than it did.
    pub fn expect(&mut self, n: usize) {
        let n = n.min(MAX_EXPECT);
        self.entries.reserve(n);
        self.batch.expect(n);
    }
}

/// A Redis command's place in a pipeline.
pub enum RedisEntry {
    /// Answered already.
    Ready(Reply),
    /// Runs on one core.
    One {
        ticket: Ticket,
        post: Post,
        row: usize,
    },
    /// A GET packed with others for one core ([`crate::exec::gets`]): its job's ticket,
    /// its index in the job, and its name as sent (for the slow log; the key comes back
    /// with the job's output).
    Got {
        ticket: Ticket,
        index: u32,
        name: [u8; 3],
    },
    /// Split over cores; the replies merge.
    Multi {
        spec: &'static CommandSpec,
        merge: Merge,
        parts: Vec<Ticket>,
        order: Vec<(u32, u32)>,
    },
}

/// How a Redis command of a pipeline ended, with what the statistics and the slow log
/// need.
pub enum RedisDone {
    Ready(Reply),
    /// Ran on one core: its row in the command statistics, how long it ran (clock
    /// ticks, measured where it ran) and its arguments (moved back, not copied).
    Ran {
        reply: Reply,
        row: usize,
        ticks: u64,
        args: Vec<Bytes>,
    },
    /// A GET packed with others ([`crate::exec::gets`]): its reply, how long it ran, and
    /// its name as sent and key (for the slow log).
    Got {
        reply: Reply,
        ticks: u64,
        name: [u8; 3],
        key: Bytes,
    },
    /// Ran on several cores: the ticks of all parts and each part's arguments
    /// ([`super::plan::joined_args`] puts them back together).
    Merged {
        reply: Reply,
        spec: &'static CommandSpec,
        ticks: u64,
        parts: Vec<Vec<Bytes>>,
        order: Vec<(u32, u32)>,
    },
}

impl RedisDone {
    pub fn reply(&self) -> &Reply {
        match self {
            RedisDone::Ready(r)
            | RedisDone::Ran { reply: r, .. }
            | RedisDone::Got { reply: r, .. }
            | RedisDone::Merged { reply: r, .. } => r,
        }
    }
}

/// A command's output from its batch: reply, ticks it ran, and its arguments (empty when
/// the output is missing or not a command's).
fn command_out(out: Option<Out>) -> (Reply, u64, Vec<Bytes>) {
    match out {
        Some(Out::Cmd { reply, ticks, args }) => (reply, ticks, args),
        Some(other) => (other.into_reply(), 0, Vec::new()),
        None => (Reply::err("ERR internal: missing reply"), 0, Vec::new()),
    }
}

impl RedisEntry {
    /// Queues a planned command's shard work in `p` and returns its entry.
    pub fn one<E: Entry>(
        p: &mut Pipeline<E>,
        core: usize,
        spec: &'static CommandSpec,
        args: Vec<Bytes>,
        post: Post,
    ) -> RedisEntry {
        RedisEntry::One {
            ticket: p.job(core, Job::Cmd(spec, args)),
            post,
            row: command_index(spec),
        }
    }

    /// Queues a planned `GET key` (`args`) for another core in `p`, packed with the GETs
    /// queued for that core just before it; a key too long to pack goes as a command.
    pub fn get<E: Entry>(p: &mut Pipeline<E>, core: usize, args: Vec<Bytes>) -> RedisEntry {
        <[u8; 3]>::try_from(&args[0][..])
            .ok()
            .and_then(|name| RedisEntry::get_key(p, core, name, &args[1]))
            .unwrap_or_else(|| RedisEntry::one(p, core, &crate::exec::gets::GET, args, Post::None))
    }

    /// [`RedisEntry::get`] for a GET read as its name and key, with no argument list;
    /// `None`, having queued nothing, for a key too long to pack.
    pub fn get_key<E: Entry>(
        p: &mut Pipeline<E>,
        core: usize,
        name: [u8; 3],
        key: &[u8],
    ) -> Option<RedisEntry> {
        let (ticket, index) = p.get(core, key)?;
        Some(RedisEntry::Got {
            ticket,
            index,
            name,
        })
    }

    /// Queues the parts of a split command in `p` and returns its entry.
    pub fn multi<E: Entry>(
        p: &mut Pipeline<E>,
        spec: &'static CommandSpec,
        merge: Merge,
        parts: Vec<(usize, Job)>,
        order: Vec<(u32, u32)>,
    ) -> RedisEntry {
        RedisEntry::Multi {
            spec,
            merge,
            parts: parts.into_iter().map(|(c, job)| p.job(c, job)).collect(),
            order,
        }
    }
}

impl Entry for RedisEntry {
    type Done = RedisDone;

    fn finish(self, outs: &mut Outputs) -> RedisDone {
        match self {
            RedisEntry::Ready(r) => RedisDone::Ready(r),
            RedisEntry::One { ticket, post, row } => {
                let (reply, ticks, args) = command_out(outs.take(ticket));
                RedisDone::Ran {
                    reply: post_process(post, reply),
                    row,
                    ticks,
                    args,
                }
            }
            RedisEntry::Got {
                ticket,
                index,
                name,
            } => match outs.get_mut(ticket) {
                Some(Out::Got(got)) => {
                    let (reply, ticks) = got.take(index);
                    RedisDone::Got {
                        reply,
                        ticks,
                        name,
                        key: got.key(index),
                    }
                }
                _ => RedisDone::Ready(Reply::err("ERR internal: missing reply")),
            },
            RedisEntry::Multi {
                spec,
                merge,
                parts,
                order,
            } => {
                let mut ticks = 0;
                let mut replies = Vec::with_capacity(parts.len());
                let mut part_args = Vec::with_capacity(parts.len());
                for t in parts {
                    let (reply, tk, args) = command_out(outs.take(t));
                    ticks += tk;
                    replies.push(reply);
                    part_args.push(args);
                }
                RedisDone::Merged {
                    reply: merge_replies(merge, replies, &order),
                    spec,
                    ticks,
                    parts: part_args,
                    order,
                }
            }
        }
    }
}
