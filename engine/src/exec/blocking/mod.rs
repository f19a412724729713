//! Blocking pops: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP.
//!
//! A blocking command is its non-blocking form ([`form`]: BLPOP is LMPOP, BLMOVE is LMOVE,
//! BZPOPMIN is ZMPOP ...) run again each time one of its keys may have become ready.
//! Every pop is that form, run through the execution layer like any other command (one
//! core, or a cross-core transaction when the keys live on several), so it pops exactly
//! what the non-blocking command would and emits the same effects for replication and
//! the handoff. Nothing is ever popped on a client's behalf by anyone but its own task.
//!
//! ```text
//!  home core (the client's)                 owner core (a key's)
//!  block(): try the form ── served? reply
//!     │ empty
//!     ├─ Register(id, keys) ──────────────► Registry: key → FIFO of waiters
//!     ├─ try the form again ── served? ─┐    each turn ([`turn`]), if the shard was
//!     │ empty                           │    written or the registry changed: the head
//!     ├─ Rearm(id) ───────────────────► │    of every ready key, unless already woken,
//!     ├─ wait: woken | timeout | unblock│ ◄── is marked woken and woken ([`Waits`])
//!     └─ woken: try again ...           │
//!  done: Remove(id) ──────────────────────► the next waiter is now the head
//! ```
//!
//! Why no wake-up is lost: a client registers on every owner core before its second
//! try, so a push that lands after that try sees the registration; one that landed
//! before it is seen by the try. The owner's check is level-triggered (it looks at the
//! key, not at which write happened), and a woken client that finds nothing says so
//! ([`Registry::rearm`]) only after its try, so a push between the try and the rearm is
//! seen by the check that follows the rearm. Wake-ups on the home core are a flag that
//! the waiting task reads before it sleeps.
//!
//! Why no element is lost or popped twice: the pop is the client's own command, run once
//! per try; a client waiting for keys on several cores may be woken by several, but it
//! tries once per wake-up and leaves every queue as soon as a try serves it.
//!
//! Order: an owner wakes only the head of a key's queue, and the one behind it only once
//! the head has left (served, timed out, unblocked or gone), so clients blocked on one
//! key are served in arrival order. A client that does not block (LPOP) may take an
//! element between the wake-up and the woken client's try; the woken client then keeps
//! waiting, at the head. A try pops from the first non-empty key in argument order, as
//! the non-blocking form does.
//!
//! Inside MULTI the form runs once, under the transaction's locks ([`in_multi`]), and
//! an empty result is returned at once, as Redis does.
//!
//! A try after the client blocked runs the form over only those of its keys that hold
//! the type it pops (looked at just before), so a key that became a string meanwhile is
//! passed over, as Redis never serves a waiter from one; only a change in the instant
//! between that look and the pop can still answer WRONGTYPE.
//!
//! Known differences from Redis 7.0: Redis serves a woken client from the key that was
//! pushed, this module from the first non-empty key in argument order; a client that
//! does not block can take an element between a push and the woken client's try (in
//! Redis the blocked client gets it); and a client that disconnects in the instant
//! between the check of its socket and its pop loses that element, as one whose reply
//! Redis writes to a closed socket does. A blocked client whose socket still holds unread
//! input when it disconnects is only seen gone once it is served or times out.

pub mod form;
pub mod registry;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

pub use form::{is_blocking, parse, parse_timeout, Form, Shape};
pub use registry::{Registry, Want};

use crate::entry::ValueType;
use crate::exec::plan::{plan, Plan};
use crate::reply::Reply;
use crate::runtime::{now_ms, wake, Core, Job, Out, NO_TXN};

/// Why a wait ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// CLIENT UNBLOCK id [TIMEOUT]: answered as a timeout.
    Timeout,
    /// CLIENT UNBLOCK id ERROR.
    Error,
    /// The connection closed: nothing more is tried for it.
    Hangup,
}

/// How often a waiting client checks that its connection is still open (it also checks
/// before every pop), so that one that left stops waiting even if its key never fills.
pub const ALIVE_CHECK_MS: u64 = 1000;

/// Redis's reply to a client that CLIENT UNBLOCK ... ERROR released.
pub const UNBLOCKED: Reply = Reply::err("UNBLOCKED client unblocked via CLIENT UNBLOCK");

#[derive(Default)]
struct Slot {
    woken: Cell<bool>,
    interrupt: Cell<Option<Interrupt>>,
    waker: RefCell<Option<Waker>>,
}

impl Slot {
    fn wake(&self) {
        if let Some(w) = self.waker.borrow_mut().take() {
            wake::wake(w);
        }
    }
}

/// One core's blocking state: the clients of this core that are blocked (home side),
/// and the [`Registry`] of this core's keys (owner side). Attached to the core.
#[derive(Default)]
pub struct Blocking {
    waits: RefCell<HashMap<u64, Rc<Slot>>>,
    registry: RefCell<Registry>,
}

impl Blocking {
    /// This core's blocking state, attached on first use.
    pub fn of(core: &Core) -> Rc<Blocking> {
        match core.attached::<Blocking>() {
            Some(b) => b,
            None => {
                let b = Rc::new(Blocking::default());
                core.attach(b.clone());
                b
            }
        }
    }

    /// Whether client `id` of this core is blocked.
    pub fn is_blocked(&self, id: u64) -> bool {
        self.waits.borrow().contains_key(&id)
    }

    /// Blocked clients of this core.
    pub fn blocked(&self) -> usize {
        self.waits.borrow().len()
    }

    /// Ends the wait of client `id` of this core (CLIENT UNBLOCK, a closed connection);
    /// false when it is not blocked.
    pub fn interrupt(&self, id: u64, why: Interrupt) -> bool {
        let Some(slot) = self.waits.borrow().get(&id).cloned() else {
            return false;
        };
        if slot.interrupt.get().is_none() {
            slot.interrupt.set(Some(why));
        }
        slot.wake();
        true
    }

    /// Ends the wait of every blocked client of this core (a handoff's freeze).
    pub fn interrupt_all(&self, why: Interrupt) {
        let ids: Vec<u64> = self.waits.borrow().keys().copied().collect();
        for id in ids {
            self.interrupt(id, why);
        }
    }

    fn wake(&self, id: u64) {
        if let Some(slot) = self.waits.borrow().get(&id) {
            slot.woken.set(true);
            slot.wake();
        }
    }

    /// Waiters registered for this core's keys (for tests and statistics).
    pub fn waiting_keys(&self) -> usize {
        self.registry.borrow().len()
    }
}

/// The owner side's work for one turn of a core's loop: if this shard was written or a
/// waiter came or went since the last look, wake the head waiter of every key that now
/// holds a value of the type it pops. Cheap when nobody waits.
pub fn turn(core: &Rc<Core>) {
    let Some(b) = core.attached::<Blocking>() else {
        return;
    };
    let version = core.shard.borrow().write_version();
    if !b.registry.borrow().due(version) {
        return;
    }
    let now = core.turn_now();
    let woken = {
        let mut shard = core.shard.borrow_mut();
        b.registry
            .borrow_mut()
            .wake_ready(version, |key, want| holds(&mut shard, key, want, now))
    };
    for (home, id) in woken {
        if home == core.id {
            b.wake(id);
        } else {
            let core = core.clone();
            wake::spawn(async move {
                let job = Job::OnCore(Box::new(move |c: &Core, _| {
                    Blocking::of(c).wake(id);
                    Out::Reply(Reply::Ok)
                }));
                core.call(home, NO_TXN, vec![job]).await;
            });
        }
    }
}

/// What a registration message does on an owner core.
#[derive(Clone, Copy)]
enum Op {
    Add(Want),
    Rearm,
    Remove,
}

/// Sends `op` for client `id` to every owner core of `keys`, and waits until each did it.
async fn tell_owners(core: &Rc<Core>, id: u64, keys: &[Bytes], op: Op) {
    let mut by_core: Vec<(usize, Vec<Bytes>)> = Vec::new();
    for k in keys {
        let c = core.router.core_of(k);
        match by_core.iter_mut().find(|(o, _)| *o == c) {
            Some((_, v)) => v.push(k.clone()),
            None => by_core.push((c, vec![k.clone()])),
        }
    }
    let home = core.id;
    for (owner, keys) in by_core {
        let job = Job::OnCore(Box::new(move |c: &Core, _| {
            let b = Blocking::of(c);
            let mut r = b.registry.borrow_mut();
            match op {
                Op::Add(want) => {
                    for k in keys {
                        r.add(k, id, home, want);
                    }
                }
                Op::Rearm => r.rearm(id, &keys),
                Op::Remove => r.remove(id, &keys),
            }
            Out::Reply(Reply::Ok)
        }));
        core.call(owner, NO_TXN, vec![job]).await;
    }
}

/// Runs the non-blocking form once, wherever its keys live.
async fn try_once(core: &Rc<Core>, form: &Form) -> Reply {
    match plan(&core.router, form.spec, form.args.clone()) {
        Plan::Run {
            core: c,
            spec,
            args,
            ..
        } => core
            .call(c, NO_TXN, vec![Job::Cmd(spec, args)])
            .await
            .pop()
            .map_or(Reply::NilArray, Out::into_reply),
        Plan::Txn(spec, args) => crate::exec::txn::run(core, spec, &args).await,
        Plan::Open { spec, args, asking } => {
            crate::exec::multi::run_open(core, spec, args, asking).await
        }
        Plan::Done(r, _) | Plan::Refused(r) => r,
        Plan::Split { .. } => Reply::err("ERR internal: a blocking pop cannot be split"),
    }
}

/// Whether the value at `key` is of the type a waiter pops.
fn holds(shard: &mut crate::Shard, key: &[u8], want: Want, now: u64) -> bool {
    let t = shard.lookup(key, now).map(|e| e.value_type());
    matches!(
        (t, want),
        (Some(ValueType::List), Want::List) | (Some(ValueType::Zset), Want::Zset)
    )
}

/// A try after the client blocked: the form over only the keys that hold the type it
/// pops, in argument order (none: nothing to pop). A key that became a string while the
/// client waited is passed over, as Redis never serves a waiter from it, where the first
/// try (the non-blocking form as sent) answers WRONGTYPE like the non-blocking command.
async fn try_ready(core: &Rc<Core>, form: &Form) -> Reply {
    let mut ready: Vec<Bytes> = Vec::with_capacity(form.keys.len());
    let mut by_core: Vec<(usize, Vec<Bytes>)> = Vec::new();
    for k in &form.keys {
        let c = core.router.core_of(k);
        match by_core.iter_mut().find(|(o, _)| *o == c) {
            Some((_, v)) => v.push(k.clone()),
            None => by_core.push((c, vec![k.clone()])),
        }
    }
    let want = form.want;
    for (owner, keys) in by_core {
        let job = Job::Call(Box::new(move |shard, now| {
            let held: Vec<Bytes> = keys
                .into_iter()
                .filter(|k| holds(shard, k, want, now))
                .collect();
            Out::Value(Box::new(held))
        }));
        if let Some(held) = core
            .call(owner, NO_TXN, vec![job])
            .await
            .pop()
            .and_then(Out::into_value::<Vec<Bytes>>)
        {
            ready.extend(held);
        }
    }
    if ready.is_empty() {
        return Reply::NilArray;
    }
    if form.shape == Shape::Move {
        return try_once(core, form).await;
    }
    // LMPOP / ZMPOP numkeys key... rest: the ready keys in argument order.
    let n = form.spec.keys_in(&form.args).len();
    let ready: Vec<Bytes> = form
        .keys
        .iter()
        .filter(|k| ready.contains(k))
        .cloned()
        .collect();
    let mut args = Vec::with_capacity(form.args.len());
    args.push(form.args[0].clone());
    args.push(Bytes::from(ready.len().to_string()));
    args.extend(ready);
    args.extend_from_slice(&form.args[(2 + n).min(form.args.len())..]);
    let narrowed = Form {
        spec: form.spec,
        args,
        keys: Vec::new(),
        want: form.want,
        shape: form.shape,
        timeout_ms: form.timeout_ms,
    };
    try_once(core, &narrowed).await
}

/// The home side's wait: resolves when the slot is woken or interrupted.
struct Woken(Rc<Slot>);

impl Future for Woken {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.woken.get() || self.0.interrupt.get().is_some() {
            return Poll::Ready(());
        }
        *self.0.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Takes client `id`'s slot out of the home table when the wait ends, however it ends.
struct Leave {
    blocking: Rc<Blocking>,
    id: u64,
}

impl Drop for Leave {
    fn drop(&mut self) {
        self.blocking.waits.borrow_mut().remove(&self.id);
    }
}

/// Runs a blocking command for client `id` (unique in the process) of this core: at once
/// when a key holds data (or the form fails), else once one does, or the timeout passes,
/// or CLIENT UNBLOCK or a hang-up ends the wait. `on_block` runs when the client starts
/// to wait, registered with every owner core (the caller's statistics and flags). `alive` says whether the client is still
/// connected: it is asked before every try after the first (nothing is popped for a
/// client that left) and every [`ALIVE_CHECK_MS`] while it waits.
pub async fn block(
    core: &Rc<Core>,
    id: u64,
    form: &Form,
    on_block: impl FnOnce(),
    alive: impl Fn() -> bool,
) -> Reply {
    let first = try_once(core, form).await;
    if !form::is_empty(&first) {
        return form.reply(first);
    }
    let deadline = (form.timeout_ms > 0).then(|| now_ms().saturating_add(form.timeout_ms));
    let blocking = Blocking::of(core);
    let slot = Rc::new(Slot::default());
    if blocking.waits.borrow().contains_key(&id) {
        return Reply::err("ERR internal: the client is blocked already");
    }
    blocking.waits.borrow_mut().insert(id, slot.clone());
    let _leave = Leave {
        blocking: blocking.clone(),
        id,
    };
    tell_owners(core, id, &form.keys, Op::Add(form.want)).await;
    // Counted as blocked once registered and found empty again: from then on, only a
    // wake-up (in arrival order) makes it try.
    let mut on_block = Some(on_block);
    let outcome = loop {
        if let Some(why) = slot.interrupt.get() {
            break Err(why);
        }
        if !alive() {
            break Err(Interrupt::Hangup);
        }
        slot.woken.set(false);
        let r = try_ready(core, form).await;
        if !form::is_empty(&r) {
            break Ok(r);
        }
        tell_owners(core, id, &form.keys, Op::Rearm).await;
        if let Some(f) = on_block.take() {
            f();
        }
        loop {
            let check = now_ms() + ALIVE_CHECK_MS;
            let until = deadline.map_or(check, |at| at.min(check));
            futures_lite::future::or(Woken(slot.clone()), core.timers.sleep_until(until)).await;
            if slot.woken.get() || slot.interrupt.get().is_some() {
                break;
            }
            if deadline.is_some_and(|at| now_ms() >= at) {
                slot.interrupt.set(Some(Interrupt::Timeout));
                break;
            }
            if !alive() {
                slot.interrupt.set(Some(Interrupt::Hangup));
                break;
            }
        }
    };
    tell_owners(core, id, &form.keys, Op::Remove).await;
    match outcome {
        Ok(r) => form.reply(r),
        Err(Interrupt::Error) => UNBLOCKED,
        Err(Interrupt::Timeout | Interrupt::Hangup) => form.timed_out(),
    }
}

/// A blocking command queued in MULTI, run by EXEC under transaction `txn`'s locks: its
/// non-blocking form, once.
pub async fn in_multi(core: &Rc<Core>, txn: u64, args: &[Bytes]) -> Reply {
    let form = match parse(args) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let r = crate::exec::multi::run_queued(core, txn, form.spec, form.args.clone()).await;
    if form::is_empty(&r) {
        form.empty_in_multi()
    } else {
        form.reply(r)
    }
}

/// The cores EXEC must lock for a queued blocking command.
pub fn cores_in_multi(core: &Core, args: &[Bytes]) -> Vec<usize> {
    match parse(args) {
        Ok(f) => crate::exec::multi::cores_of(&core.router, f.spec, &f.args),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
