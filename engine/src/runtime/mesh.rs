//! The mesh between cores: one inbox per core, a doorbell per inbox, and the rule that
//! makes a doorbell ring at most once per sender per turn, and only for a sleeping core.
//!
//! ```text
//!  core A turn: jobs for B ─► outbox[B] ─┐ end of turn: one post per destination
//!                                        ▼
//!                      inbox[B] (mutex'd Vec) ── B asleep? ── write doorbell[B]
//!                                        │
//!  core B turn: drain inbox[B] ◄─────────┘ (every turn, no wake needed while running)
//! ```
//!
//! No wake-up is lost: a sender appends under the inbox's lock, then (after a full fence)
//! reads the receiver's `sleeping` flag; a receiver sets the flag, then (after a full
//! fence) looks at its inbox before it sleeps. Either the receiver sees the mail, or the
//! sender sees the flag and rings. The receiver's event loop keeps a read armed on its
//! doorbell eventfd, so a ring ends its sleep like any socket event.
//!
//! Lazy mail: a post may be marked lazy (the response to a batch whose commands all
//! answered their clients from the core that ran them). A core going to sleep says
//! whether it waits for lazy mail; if it does not, a lazy post leaves it asleep and the
//! mail is read at its next wake-up, whatever wakes it. Its event loop says it waits
//! whenever a connection with a lazily answered request has input or a hang-up buffered
//! (and during a handoff or a stop), so nothing that needs the mail sleeps through it;
//! otherwise the connection's next request, a socket event, wakes the core anyway.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

struct Inbox<M> {
    mail: Mutex<Vec<(usize, M)>>,
    /// Messages waiting, readable without the lock.
    waiting: AtomicUsize,
    sleeping: AtomicBool,
    /// Set with `sleeping`: the sleeper waits for no lazy mail, so a lazy post need not
    /// ring.
    lazy_ok: AtomicBool,
    doorbell: OwnedFd,
    /// Doorbell writes, for the statistics.
    rings: AtomicUsize,
}

/// Every core's inbox of messages `M`; shared by all cores.
pub struct Mesh<M> {
    inboxes: Vec<Inbox<M>>,
}

impl<M> Mesh<M> {
    pub fn new(cores: usize) -> io::Result<Mesh<M>> {
        let inboxes = (0..cores)
            .map(|_| {
                // SAFETY: eventfd returns a fresh descriptor (checked) that we then own.
                let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(Inbox {
                    mail: Mutex::new(Vec::new()),
                    waiting: AtomicUsize::new(0),
                    sleeping: AtomicBool::new(false),
                    lazy_ok: AtomicBool::new(false),
                    // SAFETY: `fd` is valid and owned by nobody else.
                    doorbell: unsafe { OwnedFd::from_raw_fd(fd) },
                    rings: AtomicUsize::new(0),
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Mesh { inboxes })
    }

    /// Appends `msgs` from core `from` to the inbox of `to`, and rings its doorbell if it
    /// sleeps.
    pub fn post(&self, from: usize, to: usize, msgs: impl IntoIterator<Item = M>) {
        self.post_with(from, to, msgs, false);
    }

    /// Like [`Mesh::post`]; a `lazy` post rings a sleeping core only if it said, going to
    /// sleep, that it waits for lazy mail ([`Mesh::may_sleep_with`]). Otherwise the mail
    /// waits for the core's next wake-up, whatever its cause.
    pub fn post_with(&self, from: usize, to: usize, msgs: impl IntoIterator<Item = M>, lazy: bool) {
        if self.post_owing(from, to, msgs, lazy) {
            self.ring_owed(to, lazy);
        }
    }

    /// Appends like [`Mesh::post_with`] but never rings: true when `to` slept, so that
    /// the sender owes it a ring ([`Mesh::ring_owed`]), which it must give before it
    /// sleeps itself.
    pub fn post_owing(
        &self,
        from: usize,
        to: usize,
        msgs: impl IntoIterator<Item = M>,
        lazy: bool,
    ) -> bool {
        let inbox = &self.inboxes[to];
        {
            let mut mail = inbox.mail.lock().unwrap_or_else(|e| e.into_inner());
            let before = mail.len();
            mail.extend(msgs.into_iter().map(|m| (from, m)));
            inbox
                .waiting
                .fetch_add(mail.len() - before, Ordering::Relaxed);
        }
        fence(Ordering::SeqCst);
        inbox.sleeping.load(Ordering::SeqCst) && !(lazy && inbox.lazy_ok.load(Ordering::SeqCst))
    }

    /// Rings `to` for mail posted earlier ([`Mesh::post_owing`]) if it sleeps now (and,
    /// for `lazy` mail only, waits for lazy mail). A core that woke meanwhile reads its
    /// inbox before it can sleep again (`may_sleep_with` looks), so it needs no ring.
    pub fn ring_owed(&self, to: usize, lazy: bool) {
        let inbox = &self.inboxes[to];
        fence(Ordering::SeqCst);
        if inbox.sleeping.load(Ordering::SeqCst) && !(lazy && inbox.lazy_ok.load(Ordering::SeqCst))
        {
            inbox.rings.fetch_add(1, Ordering::Relaxed);
            ring(inbox.doorbell.as_raw_fd());
        }
    }

    /// Takes everything in the inbox of `core` into `out` (which it leaves in arrival
    /// order).
    pub fn take(&self, core: usize, out: &mut Vec<(usize, M)>) {
        let inbox = &self.inboxes[core];
        if inbox.waiting.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut mail = inbox.mail.lock().unwrap_or_else(|e| e.into_inner());
        inbox.waiting.fetch_sub(mail.len(), Ordering::Relaxed);
        if out.is_empty() {
            std::mem::swap(out, &mut mail);
        } else {
            out.append(&mut mail);
        }
    }

    /// Announces that `core` is about to sleep; false (and the flag cleared again) when
    /// mail arrived meanwhile, so it must not.
    pub fn may_sleep(&self, core: usize) -> bool {
        self.may_sleep_with(core, false)
    }

    /// Like [`Mesh::may_sleep`]; with `lazy_ok`, lazy posts made while `core` sleeps do
    /// not wake it. (The flag is stored before `sleeping`, and both are read after the
    /// sender's fence: a sender that sees the core asleep sees the flag it slept with.)
    pub fn may_sleep_with(&self, core: usize, lazy_ok: bool) -> bool {
        let inbox = &self.inboxes[core];
        inbox.lazy_ok.store(lazy_ok, Ordering::SeqCst);
        inbox.sleeping.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if inbox.waiting.load(Ordering::Relaxed) > 0 {
            inbox.sleeping.store(false, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// `core` is awake again: senders need not ring.
    pub fn awake(&self, core: usize) {
        self.inboxes[core].sleeping.store(false, Ordering::Relaxed);
    }

    /// The eventfd that wakes `core`; anyone may write it (see [`ring`]).
    pub fn doorbell(&self, core: usize) -> RawFd {
        self.inboxes[core].doorbell.as_raw_fd()
    }

    /// How many times the doorbell of `core` was rung by a sender.
    pub fn rings(&self, core: usize) -> usize {
        self.inboxes[core].rings.load(Ordering::Relaxed)
    }
}

/// Adds one to an eventfd, so whoever waits on it wakes up.
pub fn ring(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64 to a descriptor the caller keeps open.
    let _ = unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::Reply;
    use crate::runtime::core::{Msg, Out};

    fn resp(id: u64) -> Msg {
        Msg::Resp {
            id,
            outs: vec![Out::Reply(Reply::Ok)],
        }
    }

    fn ids(mail: &[(usize, Msg)]) -> Vec<(usize, u64)> {
        mail.iter()
            .map(|(from, m)| match m {
                Msg::Resp { id, .. } | Msg::Req { id, .. } => (*from, *id),
            })
            .collect()
    }

    #[test]
    fn mail_arrives_in_order_and_is_taken_once() {
        let mesh = Mesh::new(3).unwrap();
        mesh.post(1, 0, [resp(1), resp(2)]);
        mesh.post(2, 0, [resp(3)]);
        let mut out = Vec::new();
        mesh.take(0, &mut out);
        assert_eq!(ids(&out), vec![(1, 1), (1, 2), (2, 3)]);
        let mut again = Vec::new();
        mesh.take(0, &mut again);
        assert!(again.is_empty());
    }

    #[test]
    fn a_ring_owed_is_given_only_to_a_core_still_asleep() {
        let mesh: Mesh<u32> = Mesh::new(3).unwrap();
        assert!(mesh.may_sleep(1));
        assert!(
            mesh.post_owing(0, 1, [7], false),
            "core 1 sleeps: a ring is owed"
        );
        assert_eq!(mesh.rings(1), 0, "owing is not ringing");
        mesh.ring_owed(1, false);
        assert_eq!(mesh.rings(1), 1, "the owed ring reaches the sleeper");
        // An awake core is owed nothing; one that woke before the ring is not rung.
        assert!(!mesh.post_owing(0, 2, [8], false));
        assert!(!mesh.may_sleep(2), "mail is waiting: core 2 must not sleep");
        assert!(!mesh.may_sleep(1), "core 1 has mail waiting");
        let mut out = Vec::new();
        mesh.take(1, &mut out);
        assert!(mesh.may_sleep(1));
        assert!(mesh.post_owing(0, 1, [9], false));
        mesh.awake(1);
        mesh.ring_owed(1, false);
        assert_eq!(
            mesh.rings(1),
            1,
            "core 1 woke on its own and reads its inbox"
        );
        // Lazy mail to a core that sleeps without waiting for it owes no ring.
        let mut out = Vec::new();
        mesh.take(1, &mut out);
        assert!(mesh.may_sleep_with(1, true));
        assert!(!mesh.post_owing(0, 1, [10], true));
    }

    #[test]
    fn a_sleeping_core_is_rung_and_an_awake_one_is_not() {
        let mesh = Mesh::new(2).unwrap();
        mesh.post(0, 1, [resp(1)]);
        assert_eq!(mesh.rings(1), 0, "an awake core is not rung");
        assert!(!mesh.may_sleep(1), "mail is waiting: no sleep");
        let mut out = Vec::new();
        mesh.take(1, &mut out);
        assert!(mesh.may_sleep(1));
        mesh.post(0, 1, [resp(2)]);
        assert_eq!(mesh.rings(1), 1, "a sleeping core is rung");
        let mut count = 0u64;
        // SAFETY: reads 8 bytes into a live u64 from the mesh's own eventfd.
        let n = unsafe { libc::read(mesh.doorbell(1), (&mut count as *mut u64).cast(), 8) };
        assert_eq!((n, count), (8, 1));
        mesh.awake(1);
        mesh.post(0, 1, [resp(3)]);
        assert_eq!(mesh.rings(1), 1);
    }

    #[test]
    fn a_lazy_post_rings_only_a_core_that_waits_for_lazy_mail() {
        let mesh = Mesh::new(2).unwrap();
        assert!(mesh.may_sleep_with(1, true));
        mesh.post_with(0, 1, [resp(1)], true);
        assert_eq!(
            mesh.rings(1),
            0,
            "lazy mail leaves a core that does not wait for it"
        );
        mesh.post_with(0, 1, [resp(2)], false);
        assert_eq!(mesh.rings(1), 1, "other mail rings");
        let mut out = Vec::new();
        mesh.take(1, &mut out);
        assert_eq!(ids(&out), vec![(0, 1), (0, 2)]);
        mesh.awake(1);
        assert!(mesh.may_sleep_with(1, false));
        mesh.post_with(0, 1, [resp(3)], true);
        assert_eq!(mesh.rings(1), 2, "a core that waits for lazy mail is rung");
        mesh.awake(1);
        assert!(!mesh.may_sleep_with(1, true), "mail is waiting: no sleep");
    }

    #[test]
    fn no_wakeup_is_lost_between_threads() {
        // A receiver that sleeps on its doorbell whenever its inbox is empty, and a sender
        // that posts in bursts: every message must arrive without the receiver hanging.
        let mesh = std::sync::Arc::new(Mesh::new(2).unwrap());
        const N: u64 = 20_000;
        let sender = {
            let mesh = mesh.clone();
            std::thread::spawn(move || {
                for id in 0..N {
                    mesh.post(0, 1, [resp(id)]);
                    if id % 64 == 0 {
                        std::thread::yield_now();
                    }
                }
            })
        };
        let mut got = 0u64;
        let mut out = Vec::new();
        while got < N {
            mesh.take(1, &mut out);
            got += out.len() as u64;
            out.clear();
            if got < N && mesh.may_sleep(1) {
                let mut pfd = libc::pollfd {
                    fd: mesh.doorbell(1),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one live pollfd; a 10 s bound turns a lost wake-up into a failure.
                let n = unsafe { libc::poll(&mut pfd, 1, 10_000) };
                assert_eq!(n, 1, "the receiver slept through mail: a lost wake-up");
                let mut count = 0u64;
                // SAFETY: reads 8 bytes into a live u64 from the doorbell.
                unsafe { libc::read(mesh.doorbell(1), (&mut count as *mut u64).cast(), 8) };
                mesh.awake(1);
            }
        }
        sender.join().unwrap();
        assert_eq!(got, N);
    }
}
