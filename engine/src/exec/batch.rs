//! Batches: work queued per destination core and sent as one request each, so a
//! pipeline costs one round trip per core it touches, whatever its length and protocol.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::exec::gets::Gets;
use crate::runtime::{Core, Job, Out, NO_TXN};
use crate::shard::Shard;
#[cfg(test)]
use bytes::Bytes;

/// Where one job's output will be found once its batch ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    core: u32,
    pos: u32,
}

/// Jobs queued per destination core.
pub struct Batch {
    jobs: Vec<Vec<Job>>,
    /// Room a core's queue gets with its first job ([`Batch::expect`]).
    first_room: usize,
}

impl Batch {
    pub fn new(cores: usize) -> Batch {
        Batch {
            jobs: (0..cores).map(|_| Vec::new()).collect(),
            first_room: 0,
        }
    }

    /// About `n` jobs are coming, spread over the cores by their keys' hashes: a core's
    /// queue makes room for twice its even share with its first job, which random keys
    /// rarely outgrow (nothing is reserved for a core that gets no job).
    pub fn expect(&mut self, n: usize) {
        self.first_room = (2 * n).div_ceil(self.jobs.len().max(1));
    }

    /// Queues `job` for `core`.
    pub fn push(&mut self, core: usize, job: Job) -> Ticket {
        let batch = &mut self.jobs[core];
        if batch.capacity() == 0 {
            batch.reserve(self.first_room);
        }
        batch.push(job);
        Ticket {
            core: core as u32,
            pos: (batch.len() - 1) as u32,
        }
    }

    /// Queues a GET of `key` for `core`, packed with the GETs queued for it just before
    /// ([`crate::exec::gets`]): its ticket (shared with them) and its index in their job.
    /// `None`, having queued nothing, for a key too long to pack.
    pub fn push_get(&mut self, core: usize, key: &[u8]) -> Option<(Ticket, u32)> {
        if key.len() > crate::exec::gets::MAX_KEY {
            return None;
        }
        let first_room = self.first_room;
        let batch = &mut self.jobs[core];
        if !matches!(batch.last(), Some(Job::Gets(g)) if g.takes(key)) {
            if batch.capacity() == 0 {
                batch.reserve(first_room);
            }
            batch.push(Job::Gets(Gets::with_room(first_room)));
        }
        let pos = (batch.len() - 1) as u32;
        let Some(Job::Gets(gets)) = batch.last_mut() else {
            unreachable!("a Gets was just made the last job");
        };
        let index = gets.push(key);
        Some((
            Ticket {
                core: core as u32,
                pos,
            },
            index,
        ))
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.iter().all(Vec::is_empty)
    }

    /// Whether jobs for `core` are queued.
    pub fn has_jobs_for(&self, core: usize) -> bool {
        self.jobs.get(core).is_some_and(|b| !b.is_empty())
    }

    /// Sends every other core its batch (emptying this one) for the event loop to collect
    /// ([`Core::call_for_loop`], under `tag`), and returns how many responses will come.
    /// The caller queued nothing for its own core ([`Batch::has_jobs_for`]).
    pub fn send_for_loop(&mut self, core: &Core, tag: u64) -> usize {
        let mut sent = 0;
        for (c, batch) in self.jobs.iter_mut().enumerate() {
            if !batch.is_empty() {
                core.call_for_loop(c, std::mem::take(batch), tag);
                sent += 1;
            }
        }
        sent
    }

    /// Sends every core its batch (emptying this one), runs them concurrently, and
    /// returns the outputs.
    pub async fn run(&mut self, core: &Rc<Core>) -> Outputs {
        let mut calls: Vec<BatchCall> = Vec::new();
        for (c, batch) in self.jobs.iter_mut().enumerate() {
            if !batch.is_empty() {
                let (core, batch) = (core.clone(), std::mem::take(batch));
                calls.push(Box::pin(
                    async move { (c, core.call(c, NO_TXN, batch).await) },
                ));
            }
        }
        let mut outs: Vec<Vec<Option<Out>>> = (0..self.jobs.len()).map(|_| Vec::new()).collect();
        for (c, o) in JoinAll::new(calls).await {
            outs[c] = o.into_iter().map(Some).collect();
        }
        Outputs { outs }
    }
}

/// The outputs of a [`Batch`], taken once each by ticket.
pub struct Outputs {
    outs: Vec<Vec<Option<Out>>>,
}

impl Outputs {
    /// The outputs the responses to [`Batch::send_for_loop`] brought: each core's, in
    /// any order.
    pub fn from_responses(cores: usize, responses: Vec<(usize, Vec<Out>)>) -> Outputs {
        let mut outs: Vec<Vec<Option<Out>>> = (0..cores).map(|_| Vec::new()).collect();
        for (c, o) in responses {
            if let Some(slot) = outs.get_mut(c) {
                *slot = o.into_iter().map(Some).collect();
            }
        }
        Outputs { outs }
    }

    /// The output of the job `ticket` names, left in place (the GETs that share one
    /// job's output each take their part of it: [`crate::exec::gets::Got::take`]).
    pub fn get_mut(&mut self, ticket: Ticket) -> Option<&mut Out> {
        self.outs
            .get_mut(ticket.core as usize)?
            .get_mut(ticket.pos as usize)?
            .as_mut()
    }

    /// The output of the job `ticket` names; `None` if it was taken already (or the
    /// batch came back short, which a core never does).
    pub fn take(&mut self, ticket: Ticket) -> Option<Out> {
        self.outs
            .get_mut(ticket.core as usize)?
            .get_mut(ticket.pos as usize)?
            .take()
    }
}

/// Runs `f` on every core's shard (concurrently, one batch each) and returns the
/// results in core order.
pub async fn on_every_core<T, F>(core: &Rc<Core>, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(&mut Shard, u64) -> T + Clone + Send + 'static,
{
    every_core(core, || {
        let f = f.clone();
        Job::Call(Box::new(move |s, now| Out::Value(Box::new(f(s, now)))))
    })
    .await
}

/// Like [`on_every_core`], but `f` gets each core whole: its shard (not borrowed; borrow
/// it if needed) and what a layer above the engine attached to it ([`Core::attached`]),
/// so that net reaches every core's clients and counters.
pub async fn with_every_core<T, F>(core: &Rc<Core>, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(&Core, u64) -> T + Clone + Send + 'static,
{
    every_core(core, || {
        let f = f.clone();
        Job::OnCore(Box::new(move |c, now| Out::Value(Box::new(f(c, now)))))
    })
    .await
}

/// Sends every core the job `job` makes and returns the values they computed, in core
/// order.
async fn every_core<T: 'static>(core: &Rc<Core>, job: impl Fn() -> Job) -> Vec<T> {
    let mut batch = Batch::new(core.cores);
    let tickets: Vec<Ticket> = (0..core.cores).map(|c| batch.push(c, job())).collect();
    let mut outs = batch.run(core).await;
    tickets
        .into_iter()
        .map(|t| {
            outs.take(t)
                .and_then(Out::into_value::<T>)
                .expect("every core answers its call with the value it was built to give")
        })
        .collect()
}

/// A batch's future: the core it ran on and its outputs.
type BatchCall = Pin<Box<dyn Future<Output = (usize, Vec<Out>)>>>;

/// Polls several futures together; resolves to their outputs once all are done.
struct JoinAll<T> {
    futures: Vec<Option<Pin<Box<dyn Future<Output = T>>>>>,
    outputs: Vec<T>,
}

impl<T: Unpin> JoinAll<T> {
    fn new(futures: Vec<Pin<Box<dyn Future<Output = T>>>>) -> JoinAll<T> {
        JoinAll {
            outputs: Vec::with_capacity(futures.len()),
            futures: futures.into_iter().map(Some).collect(),
        }
    }
}

impl<T: Unpin> Future for JoinAll<T> {
    type Output = Vec<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<T>> {
        // Only boxed (already pinned) futures inside, so JoinAll is Unpin.
        let this = Pin::into_inner(self);
        for slot in this.futures.iter_mut() {
            if let Some(f) = slot {
                if let Poll::Ready(v) = f.as_mut().poll(cx) {
                    this.outputs.push(v);
                    *slot = None;
                }
            }
        }
        if this.futures.iter().all(Option::is_none) {
            Poll::Ready(std::mem::take(&mut this.outputs))
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::lookup;

    fn get(key: &str) -> Job {
        let spec = lookup(b"GET").expect("GET is a command");
        Job::Cmd(
            spec,
            vec![Bytes::from_static(b"GET"), Bytes::from(key.to_owned())],
        )
    }

    /// Jobs queued after `expect` get the tickets they would have got without it, and a
    /// core's queue takes the room for its share with its first job, not before, and
    /// holds it for a whole pipeline of random keys (no growth step by step).
    #[test]
    fn expected_jobs_queue_in_order_with_room_taken_at_the_first() {
        let mut b = Batch::new(4);
        b.expect(32);
        assert!(b.jobs.iter().all(|q| q.capacity() == 0));
        let mut tickets = Vec::new();
        for i in 0..16 {
            tickets.push(b.push(if i % 2 == 0 { 1 } else { 3 }, get(&format!("k{i}"))));
        }
        assert_eq!(b.jobs[0].capacity(), 0, "a core with no job holds no room");
        assert_eq!(b.jobs[2].capacity(), 0);
        assert_eq!(
            b.jobs[1].capacity(),
            16,
            "twice the even share of 32 over 4 cores"
        );
        assert_eq!(b.jobs[3].capacity(), 16);
        for (i, t) in tickets.iter().enumerate() {
            let core = if i % 2 == 0 { 1 } else { 3 };
            assert_eq!(
                *t,
                Ticket {
                    core,
                    pos: (i / 2) as u32
                }
            );
        }
        assert!(b.has_jobs_for(1) && b.has_jobs_for(3) && !b.has_jobs_for(0));
    }
}
