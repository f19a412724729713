//! The per-core io_uring that drives client sockets. One submission per loop turn carries
//! every accept, receive and send queued during that turn, and the loop sleeps in this ring
//! too: [`Uring::wait`] submits what is queued and blocks until a completion or a deadline,
//! in one syscall.
//!
//! Set up with SINGLE_ISSUER + COOP_TASKRUN + TASKRUN_FLAG. A socket event (data to read,
//! room to send, a connection to accept) queues task work on this thread; the kernel runs
//! it, posting the completion, at this thread's next syscall, or at once when the thread
//! sleeps in [`Uring::wait`] (the task work wakes it). The mesh doorbell (an eventfd that
//! other cores and the signal thread write) has a read armed in the ring, so it ends a
//! wait like any socket event.
//!
//! TASKRUN_FLAG tells the loop whether a turn needs to enter the ring at all: with
//! nothing to submit and no task work pending, the completions already posted are read
//! straight from the queue, and a turn costs no syscall.
//!
//! DEFER_TASKRUN was measured and rejected (Linux 6.18): it signals a registered eventfd
//! from an RCU callback, 6-25 ms after the work was queued, and the loop used to sleep on
//! such an eventfd through glommio, so every request on an idle core waited about 16 ms.
//!
//! The TASKRUN flag is a hint, never a reason to stay awake: the kernel queues task work
//! and only then sets the flag, so the loop can run the work (clearing the flag) before
//! the flag is set, which then stays set with nothing behind it until the next event. A
//! loop that took the flag for "work pending, do not sleep" spun without yielding and
//! starved the mesh tasks whose replies would have produced that next event: the
//! `--cores 2` livelock of issue 9, read off a hung process (`sq_flags` 0x4, no work, no
//! completion, no operation armed but the accept). A stale flag now costs one needless
//! enter, and the loop decides to sleep on its own state alone.
//!
//! All `unsafe` about buffers handed to the kernel is in this module and in the one place
//! that arms operations on a connection (`event_loop.rs`), each with its `SAFETY:` comment.

use std::io;
use std::time::Duration;

use io_uring::{cqueue, squeue, types, IoUring};

/// One completion, copied out of the ring.
#[derive(Debug, Clone, Copy)]
pub struct Completion {
    pub user_data: u64,
    pub result: i32,
    pub flags: u32,
}

impl Completion {
    /// Whether a multishot operation stays armed after this completion.
    pub fn more(&self) -> bool {
        cqueue::more(self.flags)
    }
}

pub struct Uring {
    ring: IoUring,
    /// Operations pushed but not yet submitted.
    queued: usize,
}

impl Uring {
    pub fn new(entries: u32) -> io::Result<Uring> {
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_coop_taskrun()
            .setup_taskrun_flag()
            .setup_cqsize(entries * 4)
            .build(entries)?;
        Ok(Uring { ring, queued: 0 })
    }

    /// Queues one operation for the next [`Uring::enter`].
    ///
    /// # Safety
    /// Every buffer and descriptor the entry refers to must stay valid until its
    /// completion has been reaped.
    pub unsafe fn push(&mut self, sqe: &squeue::Entry) {
        loop {
            // SAFETY: forwarded to the caller's contract.
            if unsafe { self.ring.submission().push(sqe) }.is_ok() {
                self.queued += 1;
                return;
            }
            // The submission queue is full: hand what we have to the kernel first.
            if let Err(e) = self.ring.submit() {
                tracing::warn!(error = %e, "io_uring submit failed while the queue was full");
            }
            self.queued = 0;
        }
    }

    pub fn has_queued(&self) -> bool {
        self.queued > 0
    }

    /// Whether the kernel holds task work for this thread (completions it will post once
    /// the thread enters the ring). Can be stale, never missing: the kernel sets it before
    /// it wakes the thread.
    pub fn task_work_pending(&mut self) -> bool {
        self.ring.submission().taskrun()
    }

    /// Whether [`Uring::enter`] has anything to do: operations to submit, or task work
    /// that the kernel may be holding for this thread (the flag can be stale; then the
    /// enter is merely needless).
    pub fn needs_enter(&mut self) -> bool {
        self.queued > 0 || self.task_work_pending()
    }

    /// Submits what was queued and sleeps until at least one completion is posted or
    /// `timeout` (if any) has passed. A signal or a full completion queue ends the wait
    /// early, which the loop treats as a turn with nothing new.
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let ts;
        let mut args = types::SubmitArgs::new();
        if let Some(t) = timeout {
            ts = types::Timespec::from(t);
            args = args.timespec(&ts);
        }
        match self.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => {
                self.queued = 0;
                Ok(())
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME)) => {
                self.queued = 0;
                Ok(())
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Submits what was queued and runs pending task work (GETEVENTS), without waiting.
    pub fn enter(&mut self) -> io::Result<()> {
        let len = self.ring.submission().len() as u32;
        // IORING_ENTER_GETEVENTS (the crate keeps its sys constants private).
        let flags = 1u32;
        // SAFETY: no extra argument is passed; to_submit is the queue's own length.
        match unsafe {
            self.ring
                .submitter()
                .enter::<libc::sigset_t>(len, 0, flags, None)
        } {
            Ok(_) => {
                self.queued = 0;
                Ok(())
            }
            Err(e)
                if e.raw_os_error() == Some(libc::EINTR)
                    || e.raw_os_error() == Some(libc::EBUSY) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Moves every available completion into `out`.
    pub fn reap(&mut self, out: &mut Vec<Completion>) {
        for cqe in self.ring.completion() {
            out.push(Completion {
                user_data: cqe.user_data(),
                result: cqe.result(),
                flags: cqe.flags(),
            });
        }
    }
}
