//! The per-core io_uring that drives client sockets. One submission per loop turn carries
//! every accept, receive and send queued during that turn.
//!
//! Set up with SINGLE_ISSUER + DEFER_TASKRUN + TASKRUN_FLAG: completions are posted only
//! when this thread enters the ring with GETEVENTS, which it does once per turn. An
//! eventfd registered on the ring is signalled when work is queued for it; the loop
//! awaits that eventfd through glommio when it has nothing to do, so the executor keeps
//! running timers and cross-core messages meanwhile. (COOP_TASKRUN alone loses wakeups
//! here: its completions are not posted while the thread sleeps in glommio's ring.)
//!
//! All `unsafe` about buffers handed to the kernel is in this module and in the one place
//! that arms operations on a connection (`server.rs`), each with its `SAFETY:` comment.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use io_uring::{cqueue, squeue, IoUring};

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

pub struct Ring {
    ring: IoUring,
    eventfd: OwnedFd,
    /// Operations pushed but not yet submitted.
    queued: usize,
}

impl Ring {
    pub fn new(entries: u32) -> io::Result<Ring> {
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_taskrun_flag()
            .setup_cqsize(entries * 4)
            .build(entries)?;
        // SAFETY: eventfd returns a fresh descriptor (checked below) that we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a valid descriptor we just created and nobody else owns.
        let eventfd = unsafe { OwnedFd::from_raw_fd(fd) };
        ring.submitter().register_eventfd(eventfd.as_raw_fd())?;
        Ok(Ring {
            ring,
            eventfd,
            queued: 0,
        })
    }

    /// The eventfd the kernel signals when completions (or deferred work) are queued.
    pub fn eventfd(&self) -> RawFd {
        self.eventfd.as_raw_fd()
    }

    /// Queues one operation for the next [`Ring::enter`].
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

    /// Stops the kernel signalling the eventfd for completions and deferred work. The
    /// loop does this while it runs: it enters the ring every turn anyway, and each
    /// signal would otherwise cost a wakeup (and an eventfd read) later.
    pub fn quiet(&mut self) {
        self.ring.completion().disable_eventfd();
    }

    /// Turns the eventfd signal back on before the loop sleeps, and tells whether work
    /// arrived while it was off (that work raised no signal, so sleeping now could miss
    /// it): deferred completions to run, or completions to reap.
    pub fn arm_wakeup(&mut self) -> bool {
        self.ring.completion().enable_eventfd();
        // The kernel adds work, sets the TASKRUN flag and then reads the eventfd switch;
        // we write the switch and then read the flag. The fence orders our side.
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        self.ring.submission().taskrun() || !self.ring.completion().is_empty()
    }

    /// Submits what was queued and runs deferred completions (GETEVENTS), without waiting.
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
