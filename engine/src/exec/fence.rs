//! Key fences: MIGRATE's guarantee that no command observes a key half moved.
//!
//! Redis runs MIGRATE on its one thread: nothing else runs between reading a key, the
//! target's acknowledgement and the delete. Baton's cores run in parallel, so MIGRATE
//! fences the keys it takes, on the core that owns each of them:
//!
//! ```text
//!  MIGRATE (any core)                      owning core of k
//!  ──────────────────                      ────────────────────────────────────────
//!  fence + read k (one job) ─────────────► k fenced until `deadline`; k's value read
//!  RESTORE-ASKING k … to the target        a command on k: its batch is parked here
//!    (helper thread)                         (not run, not answered; the batch's later
//!                                            jobs wait behind it; other batches run)
//!  target answered: delete + lift (job) ──► k deleted, fence lifted, parked batches go
//!                                            on: k is absent, the slot is migrating,
//!                                            so the command answers -ASK
//!  target failed:   lift (job) ───────────► fence lifted; parked batches run on k here
//!  MIGRATE gone or too slow ──────────────► the deadline (timeout + [`MARGIN_MS`]) lifts
//!                                            it on the core's own timer
//! ```
//!
//! Why nothing sees a half-moved key: from the fence job to the delete job (both run on
//! k's core, atomically with respect to every other job there) no command touching k
//! runs on this node, and the target cannot be asked about k meanwhile, because this
//! node answers -ASK only for a key it does not hold. So every command on k runs either
//! before the read (its effect travels with the copy) or after the delete (at the
//! target, which then holds exactly what was read). A command is checked where it
//! runs, on the owning core, so one planned elsewhere before the fence existed is still
//! held back:
//!
//! - one-core commands and the parts of split ones ([`crate::runtime::Job::Cmd`] outside
//!   a transaction) are checked by the core before they run, and park there;
//! - commands that lock cores (cross-core transactions, commands on an open slot,
//!   EXEC) look at the fences once they hold the locks ([`lock_unfenced`]), since MIGRATE's
//!   fence job cannot run on a core they hold; if a key is fenced they let go, wait,
//!   and lock again.
//!
//! memcached operations ([`crate::runtime::Job::Mc`]) park the same way; as memcached
//! has no ASK, one parked behind a key that moved then runs here on the key's absence.
//!
//! A connection's inline fast path (both protocols) runs nothing while its core has a
//! fence (it takes the path through a job, which checks). Cost while no MIGRATE runs:
//! one `Cell` load per command on its core, plus one atomic load per locking command.
//!
//! Not covered: FLUSHALL, expiry and eviction may still drop a fenced key (MIGRATE's
//! delete then finds the key changed, see its module).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use crate::command::CommandSpec;
use crate::runtime::{now_ms, oneshot, Core, Job, Out};
use crate::shard::tap::SlotSet;

/// How long a fence may outlive MIGRATE's own timeout before the core lifts it.
pub const MARGIN_MS: u64 = 1_000;

/// Fenced keys in the whole process, a hint for the locking paths: never lower than the
/// number of keys fenced on all cores (raised before a fence job is sent, lowered once
/// its keys are lifted), so zero means no core holds a fence.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Raises the process-wide count of fenced keys before fencing up to `n` keys.
pub fn announce(n: usize) {
    ACTIVE.fetch_add(n, Ordering::SeqCst);
}

/// Lowers it by `n` (keys announced but not fenced, or lifted); never below zero.
pub fn retract(n: usize) {
    let _ = ACTIVE.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |a| {
        Some(a.saturating_sub(n))
    });
}

/// Whether any core may hold a fence.
#[inline]
pub fn any_active() -> bool {
    ACTIVE.load(Ordering::Acquire) != 0
}

/// Where a parked batch's outputs go once it has run.
pub(crate) enum ReplyTo {
    /// Another core's request `id`.
    Remote { from: usize, id: u64 },
    /// A task on this core ([`Core::call`] to itself).
    Local(oneshot::Sender<Vec<Out>>),
}

/// A batch stopped at a command on a fenced key: the jobs still to run (that command
/// first) and the outputs of those that ran.
pub(crate) struct Parked {
    pub txn: u64,
    pub jobs: VecDeque<Job>,
    pub outs: Vec<Out>,
    pub to: ReplyTo,
}

/// One core's fences: key -> (MIGRATE's fence id, deadline in unix ms), and the batches
/// parked behind them.
#[derive(Default)]
pub struct Fence {
    keys: RefCell<HashMap<Bytes, (u64, u64)>>,
    /// Whole sets of slots fenced (CLUSTER MIGRATESLOTS's hand-overs, one per job, their
    /// sets disjoint): every key of them is held, present or not; with each fence's id
    /// and deadline.
    slots: RefCell<Vec<(Arc<SlotSet>, u64, u64)>>,
    /// `keys.len()`, readable without a borrow: the hot path's one test.
    count: Cell<usize>,
    pub(crate) parked: RefCell<Vec<Parked>>,
    /// The deadline the core's reaper ([`reap`]) sleeps until (0: none runs), and its
    /// generation: one timer per core however many MIGRATEs run, not one per MIGRATE.
    reaper_at: Cell<u64>,
    reaper_gen: Cell<u64>,
}

impl Fence {
    /// Whether this core holds any fence.
    #[inline]
    pub fn is_active(&self) -> bool {
        self.count.get() != 0
    }

    /// Whether `key` is fenced at `now`.
    pub fn holds(&self, key: &[u8], now: u64) -> bool {
        let slots = self.slots.borrow();
        if !slots.is_empty() {
            let slot = baton_ring::slot(key);
            if slots
                .iter()
                .any(|(set, _, deadline)| now < *deadline && set.contains(slot))
            {
                return true;
            }
        }
        drop(slots);
        self.keys
            .borrow()
            .get(key)
            .is_some_and(|&(_, deadline)| now < deadline)
    }

    /// The number of fences held: keys, plus one per slot fence.
    fn held(&self) -> usize {
        self.keys.borrow().len() + self.slots.borrow().len()
    }

    /// Whether a command touches a fenced key.
    pub fn blocks(&self, spec: &CommandSpec, args: &[Bytes], now: u64) -> bool {
        self.is_active()
            && spec
                .keys_in(args)
                .iter()
                .any(|&i| args.get(i).is_some_and(|k| self.holds(k, now)))
    }

    /// Fences `key` for MIGRATE `id` until `deadline`: `None` when another MIGRATE's
    /// fence holds it, else whether it replaced a fence (its own, or one expired).
    pub fn add(&self, key: &Bytes, id: u64, deadline: u64, now: u64) -> Option<bool> {
        let mut keys = self.keys.borrow_mut();
        if let Some(&(other, until)) = keys.get(key) {
            if other != id && now < until {
                return None;
            }
        }
        let replaced = keys.insert(key.clone(), (id, deadline)).is_some();
        drop(keys);
        self.count.set(self.held());
        Some(replaced)
    }

    /// Fences every key of `slots` for job `id` until `deadline` (replacing the job's
    /// slot fence if it had one).
    pub fn add_slots(&self, slots: Arc<SlotSet>, id: u64, deadline: u64) {
        let mut cur = self.slots.borrow_mut();
        cur.retain(|&(_, owner, _)| owner != id);
        cur.push((slots, id, deadline));
        drop(cur);
        self.count.set(self.held());
    }

    /// The earliest deadline of a fence, if any.
    fn earliest(&self) -> Option<u64> {
        let slots = self.slots.borrow().iter().map(|&(_, _, d)| d).min();
        let keys = self.keys.borrow().values().map(|&(_, d)| d).min();
        match (slots, keys) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Lifts the fences of MIGRATE `id` on `keys` (all of its keys when `keys` is
    /// `None`) and those whose deadline passed; returns how many were lifted.
    fn remove(&self, id: u64, keys: Option<&[Bytes]>, now: u64) -> usize {
        let mut map = self.keys.borrow_mut();
        let before = map.len();
        match keys {
            Some(keys) => {
                for k in keys {
                    if map.get(k).is_some_and(|&(owner, _)| owner == id) {
                        map.remove(k);
                    }
                }
            }
            None => map.retain(|_, &mut (owner, _)| owner != id),
        }
        map.retain(|_, &mut (_, deadline)| now < deadline);
        let mut lifted = before - map.len();
        drop(map);
        let mut slots = self.slots.borrow_mut();
        let had = slots.len();
        slots.retain(|&(_, owner, deadline)| !((owner == id && keys.is_none()) || now >= deadline));
        lifted += had - slots.len();
        drop(slots);
        self.count.set(self.held());
        lifted
    }
}

/// On `core`: lifts MIGRATE `id`'s fences on `keys` (or all of them) and expired ones,
/// then lets the parked batches go on. Call it on the core that owns the keys.
pub fn lift(core: &Core, id: u64, keys: Option<&[Bytes]>, now: u64) {
    let lifted = core.fence.remove(id, keys, now);
    retract(lifted);
    core.resume_parked();
}

/// On `core`: fences `key` for MIGRATE `id` until `deadline` and makes sure the core's
/// timer lifts it then, whatever becomes of MIGRATE. False when another MIGRATE holds it.
pub fn fence_key(core: &Core, key: &Bytes, id: u64, deadline: u64, now: u64) -> bool {
    let f = &core.fence;
    match f.add(key, id, deadline, now) {
        None => return false,
        // Announced again by this MIGRATE, but one key counts once.
        Some(true) => retract(1),
        Some(false) => {}
    }
    reap_by(core, deadline);
    true
}

/// Makes sure `core`'s reaper wakes by `deadline`.
fn reap_by(core: &Core, deadline: u64) {
    let f = &core.fence;
    let at = f.reaper_at.get();
    if at == 0 || deadline < at {
        // No reaper, or one that would wake too late: a new one takes over.
        let generation = f.reaper_gen.get() + 1;
        f.reaper_gen.set(generation);
        f.reaper_at.set(deadline);
        if let Some(rc) = core.this() {
            crate::runtime::wake::spawn(reap(rc, generation, deadline));
        }
    }
}

/// On `core`: fences every key of `slots` for job `id` until `deadline` (the process-wide
/// count raised first) and makes sure the core's timer lifts it then.
pub fn fence_slots(core: &Core, slots: Arc<SlotSet>, id: u64, deadline: u64) {
    announce(1);
    if core
        .fence
        .slots
        .borrow()
        .iter()
        .any(|&(_, owner, _)| owner == id)
    {
        retract(1); // replaced: it counts once
    }
    core.fence.add_slots(slots, id, deadline);
    reap_by(core, deadline);
}

/// A core's reaper: at the earliest deadline, lifts the fences whose deadline passed (and
/// lets their parked batches go on), then sleeps until the next one; ends when no fence
/// is left, or when a reaper with an earlier deadline took over.
async fn reap(core: Rc<Core>, generation: u64, mut at: u64) {
    loop {
        core.timers.sleep_until(at).await;
        let f = &core.fence;
        if f.reaper_gen.get() != generation {
            return;
        }
        let now = now_ms();
        retract(f.remove(0, Some(&[]), now));
        core.resume_parked();
        match f.earliest() {
            Some(next) => {
                at = next.max(now + 1);
                f.reaper_at.set(at);
            }
            None => {
                f.reaper_at.set(0);
                return;
            }
        }
    }
}

/// Takes the locks of `cores` (any order, duplicates allowed; taken in ascending order
/// like every cross-core transaction's) once none of `keys` is fenced: a command that
/// locks its cores checks the fences under the locks (MIGRATE's fence job cannot run on
/// a core it holds), and when one of its keys is fenced it lets go, waits, and locks
/// again. Returns the transaction id and the cores held (sorted, unique).
pub async fn lock_unfenced(
    core: &Rc<Core>,
    mut cores: Vec<usize>,
    keys: &[Bytes],
) -> (u64, Vec<usize>) {
    cores.sort_unstable();
    cores.dedup();
    loop {
        let id = core.new_txn();
        for &c in &cores {
            core.call(c, id, vec![Job::Lock]).await;
        }
        if !any_fenced(core, id, &cores, keys).await {
            return (id, cores);
        }
        for &c in cores.iter().rev() {
            core.call(c, id, vec![Job::Unlock]).await;
        }
        core.timers.sleep_until(now_ms() + 1).await;
    }
}

/// Whether any of `keys` is fenced on its core, asked within `txn`, which holds the
/// locks of `held` (a key of another core is not asked: waiting for a core this
/// transaction does not hold could deadlock). Free while no core holds a fence.
pub async fn any_fenced(core: &Rc<Core>, txn: u64, held: &[usize], keys: &[Bytes]) -> bool {
    if !any_active() || keys.is_empty() {
        return false;
    }
    let mut by_core: HashMap<usize, Vec<Bytes>> = HashMap::new();
    for k in keys {
        let c = core.router.core_of(k);
        if held.contains(&c) {
            by_core.entry(c).or_default().push(k.clone());
        }
    }
    for (c, keys) in by_core {
        let job = Job::OnCore(Box::new(move |on, now| {
            Out::Value(Box::new(keys.iter().any(|k| on.fence.holds(k, now))))
        }));
        let fenced = core
            .call(c, txn, vec![job])
            .await
            .pop()
            .and_then(Out::into_value::<bool>)
            .unwrap_or(false);
        if fenced {
            return true;
        }
    }
    false
}

/// The keys a command names (for [`lock_unfenced`]).
pub fn keys_of(spec: &CommandSpec, args: &[Bytes]) -> Vec<Bytes> {
    spec.keys_in(args)
        .into_iter()
        .filter_map(|i| args.get(i).cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_holds_its_key_until_lifted_or_its_deadline() {
        let f = Fence::default();
        let (a, b) = (Bytes::from("a"), Bytes::from("b"));
        assert!(!f.is_active());
        assert_eq!(f.add(&a, 7, 1_000, 0), Some(false));
        assert!(f.is_active() && f.holds(b"a", 999) && !f.holds(b"b", 0));
        assert!(!f.holds(b"a", 1_000), "not past its deadline");
        assert_eq!(f.add(&a, 8, 2_000, 10), None, "another MIGRATE's key");
        assert_eq!(
            f.add(&a, 8, 2_000, 1_000),
            Some(true),
            "an expired fence is taken over"
        );
        assert_eq!(f.add(&b, 8, 2_000, 1_000), Some(false));
        assert_eq!(f.remove(7, None, 1_000), 0, "not 7's any more");
        assert_eq!(f.remove(8, Some(std::slice::from_ref(&a)), 1_000), 1);
        assert!(f.holds(b"b", 1_500) && !f.holds(b"a", 1_500));
        assert_eq!(f.remove(9, None, 2_000), 1, "expired ones go too");
        assert!(!f.is_active());
    }

    #[test]
    fn a_slot_fence_holds_every_key_of_its_slots() {
        let f = Fence::default();
        let k = |slot: u16| {
            (0..)
                .map(|i| format!("k{i}"))
                .find(|k| baton_ring::slot(k.as_bytes()) == slot)
                .unwrap()
        };
        let (a, b, c) = (k(3), k(4), k(5));
        f.add_slots(Arc::new(SlotSet::of(&[3])), 7, 1_000);
        assert!(f.is_active() && f.holds(a.as_bytes(), 10) && !f.holds(b.as_bytes(), 10));
        f.add_slots(Arc::new(SlotSet::of(&[4])), 8, 500);
        assert!(f.holds(b.as_bytes(), 10) && !f.holds(c.as_bytes(), 10));
        f.add(&Bytes::from(c.clone()), 8, 1_000, 0);
        assert_eq!(
            f.remove(8, Some(&[]), 10),
            0,
            "a key list lifts no slot fence"
        );
        assert_eq!(f.remove(8, None, 10), 2, "job 8's key and slot fences");
        assert!(f.holds(a.as_bytes(), 10) && !f.holds(b.as_bytes(), 10));
        assert!(!f.holds(a.as_bytes(), 1_000), "not past its deadline");
        assert_eq!(f.remove(7, None, 10), 1);
        assert!(!f.is_active() && !f.holds(a.as_bytes(), 10));
    }

    #[test]
    fn a_command_is_blocked_by_any_of_its_keys() {
        let f = Fence::default();
        f.add(&Bytes::from("k2"), 1, 100, 0);
        let mget = crate::command::lookup(b"mget").unwrap();
        let get = crate::command::lookup(b"get").unwrap();
        assert!(f.blocks(mget, &crate::exec::args(&["MGET", "k1", "k2"]), 0));
        assert!(!f.blocks(get, &crate::exec::args(&["GET", "k1"]), 0));
        assert!(!f.blocks(mget, &crate::exec::args(&["MGET", "k2"]), 100));
    }
}
