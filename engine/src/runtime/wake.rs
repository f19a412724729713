//! What lets a core's event loop sleep in its own io_uring instead of parking glommio.
//!
//! Each core's event loop (net's connection loop) is the one task that sleeps: it blocks in
//! its own ring until a socket event, its mesh doorbell, or the next deadline of
//! [`Timers`]. glommio then only runs the other tasks (slow pipelines, cross-core
//! transactions, active expiry), and only when the loop yields to it. So the loop must
//! know when one of them is ready to run. Every wake-up of a task on this core goes
//! through this crate (the one-shot replies, the shard lock's waiters, [`Timers`],
//! [`spawn`] and [`yield_now`]) and is counted here; the loop yields to glommio while the
//! count moves, and sleeps only after a yield that woke nobody.
//!
//! glommio's own timers, channels and file I/O must not be used while a loop runs: their
//! completions land in glommio's rings, which nobody waits on, so they would not wake it.
//! Work of that kind (a file written for CONFIG REWRITE, a snapshot on disk) goes through
//! the loop's ring, or through a thread that rings the core's mesh doorbell when done.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

thread_local! {
    /// Wake-ups of tasks on this thread's core (see the module doc).
    static WAKES: Cell<u64> = const { Cell::new(0) };
}

/// Counts a wake-up of a task on this core.
pub fn note_wake() {
    WAKES.with(|w| w.set(w.get().wrapping_add(1)));
}

/// Wake-ups so far on this core; the loop compares two readings.
pub fn wakes() -> u64 {
    WAKES.with(|w| w.get())
}

/// Wakes `waker` and counts it.
pub fn wake(waker: Waker) {
    note_wake();
    waker.wake();
}

/// Spawns a task on this core's executor, counted as a wake-up (it is ready to run).
pub fn spawn<F: Future<Output = ()> + 'static>(future: F) {
    note_wake();
    glommio::spawn_local(future).detach();
}

/// Lets the loop and other tasks run, then resumes: a counted wake-up of the caller.
pub fn yield_now() -> impl Future<Output = ()> {
    struct Yield(bool);
    impl Future for Yield {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            wake(cx.waker().clone());
            Poll::Pending
        }
    }
    Yield(false)
}

/// One core's timers, driven by its event loop: the loop sleeps no later than
/// [`Timers::next`] and calls [`Timers::fire`] every turn.
#[derive(Default)]
pub struct Timers {
    /// (deadline in unix ms, waker); few entries, so a plain list.
    waiting: RefCell<Vec<(u64, Waker)>>,
}

impl Timers {
    /// The earliest deadline (unix ms), if any.
    pub fn next(&self) -> Option<u64> {
        self.waiting.borrow().iter().map(|&(at, _)| at).min()
    }

    /// Wakes every timer due at `now`; true if any was.
    pub fn fire(&self, now: u64) -> bool {
        let due: Vec<Waker> = {
            let mut waiting = self.waiting.borrow_mut();
            if !waiting.iter().any(|&(at, _)| at <= now) {
                return false;
            }
            let (due, rest): (Vec<_>, Vec<_>) = waiting.drain(..).partition(|&(at, _)| at <= now);
            *waiting = rest;
            due.into_iter().map(|(_, w)| w).collect()
        };
        for w in due {
            wake(w);
        }
        true
    }

    /// Resolves at `deadline` (unix ms), as this core's loop sees the clock.
    pub fn sleep_until(&self, deadline: u64) -> Sleep<'_> {
        Sleep {
            timers: self,
            deadline,
        }
    }
}

/// See [`Timers::sleep_until`].
pub struct Sleep<'a> {
    timers: &'a Timers,
    deadline: u64,
}

impl Future for Sleep<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if super::now_ms() >= self.deadline {
            return Poll::Ready(());
        }
        let mut waiting = self.timers.waiting.borrow_mut();
        match waiting.iter_mut().find(|(_, w)| w.will_wake(cx.waker())) {
            Some(entry) => entry.0 = self.deadline,
            None => waiting.push((self.deadline, cx.waker().clone())),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn timers_fire_when_due_and_count_the_wake() {
        let timers = Timers::default();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let far = super::super::now_ms() + 60_000;
        let mut sleep = Box::pin(timers.sleep_until(far));
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        assert_eq!(timers.next(), Some(far), "one entry per waker");
        assert_eq!(timers.waiting.borrow().len(), 1);
        let before = wakes();
        assert!(!timers.fire(far - 1));
        assert_eq!(count.0.load(Ordering::Relaxed), 0);
        assert!(timers.fire(far));
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        assert_eq!(wakes(), before + 1);
        assert_eq!(timers.next(), None);
    }
}
