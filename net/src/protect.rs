//! Client protections, as Redis has them: `maxclients` (admission at accept time), the
//! idle `timeout`, and the output buffer limit for normal clients. The decisions are pure
//! functions here; the connection loop ([`crate::event_loop`]) applies them:
//!
//! ```text
//!  accept ──► admit? ── no ──► write the rejection line, close, count it
//!  output appended / drained ──► output_breach? ── yes ──► log, count, close now
//!  once a second (per core) ──► idle_expired? / output_breach? ──► close now
//! ```
//!
//! Closing "now" drops the unsent output, as Redis's freeClient does.

use std::io;
use std::sync::atomic::Ordering;

use crate::config::{OutputLimit, Shared};
use crate::session::Protocol;

/// What a connection beyond `maxclients` is told before it is closed: Redis's text, and
/// memcached's for connections on the memcached port.
pub fn rejection(protocol: Protocol) -> &'static [u8] {
    match protocol {
        Protocol::Redis => b"-ERR max number of clients reached\r\n",
        Protocol::Memcache => b"ERROR Too many open connections\r\n",
    }
}

/// Counts a new connection against `maxclients` (over every core and both protocols).
/// `true`: admitted, and counted in `connected_clients`. `false`: over the limit, counted
/// in `rejected_connections`; the caller tells the client and closes it.
pub fn admit(shared: &Shared) -> bool {
    let max = shared.settings.maxclients.load(Ordering::Relaxed);
    // Take the place first, then check: two cores accepting at once cannot both get the
    // last place.
    let before = shared.connected_clients.fetch_add(1, Ordering::Relaxed);
    if before < max {
        return true;
    }
    shared.connected_clients.fetch_sub(1, Ordering::Relaxed);
    shared.rejected_connections.fetch_add(1, Ordering::Relaxed);
    false
}

/// Whether a client whose last interaction (read or write) was at `last_ms` has been idle
/// for more than `timeout_secs` (0 = never), as Redis's clientsCronHandleTimeout decides.
pub fn idle_expired(last_ms: u64, now_ms: u64, timeout_secs: u64) -> bool {
    timeout_secs > 0 && now_ms.saturating_sub(last_ms) > timeout_secs.saturating_mul(1000)
}

/// Which output limit a client broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breach {
    Hard,
    Soft,
}

impl Breach {
    pub fn name(self) -> &'static str {
        match self {
            Breach::Hard => "hard",
            Breach::Soft => "soft",
        }
    }
}

/// Redis's checkClientOutputBufferLimits for `pending` unsent bytes: the hard limit breaks
/// at once; the soft limit once the output has stayed at or above it for more than
/// `soft_secs`. `soft_since_ms` is the connection's memory of when it first went above
/// the soft limit (0 = it is below), updated here.
pub fn output_breach(
    pending: u64,
    limit: OutputLimit,
    soft_since_ms: &mut u64,
    now_ms: u64,
) -> Option<Breach> {
    if limit.hard > 0 && pending >= limit.hard {
        return Some(Breach::Hard);
    }
    if limit.soft == 0 || pending < limit.soft {
        *soft_since_ms = 0;
        return None;
    }
    if *soft_since_ms == 0 {
        *soft_since_ms = now_ms.max(1);
        return None;
    }
    let above_ms = now_ms.saturating_sub(*soft_since_ms);
    (above_ms > limit.soft_secs.saturating_mul(1000)).then_some(Breach::Soft)
}

/// Whether `pending` unsent bytes already pass the hard limit, for code that builds a
/// reply and can stop early instead of growing it further.
pub fn over_hard_limit(shared: &Shared, pending: usize) -> bool {
    let hard = shared.settings.output_hard.load(Ordering::Relaxed);
    hard > 0 && pending as u64 >= hard
}

/// File descriptors the server needs besides its clients: per core, its io_uring rings,
/// eventfds and listeners; plus standard streams and logging. Redis reserves 32 in all.
pub fn reserved_fds(cores: usize) -> u64 {
    32 + 16 * cores as u64
}

/// How the open-files limit was brought in line with `maxclients` at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft RLIMIT_NOFILE before and after.
    pub before: u64,
    pub after: u64,
    /// The error that stopped a higher limit, if any.
    pub error: Option<String>,
}

/// Raises this process's RLIMIT_NOFILE towards `wanted` (as Redis's adjustOpenFilesLimit
/// does): the soft limit up to the hard one, and the hard one too where permitted. Never
/// lowers it.
pub fn raise_open_files_limit(wanted: u64) -> io::Result<FdLimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `lim`, which outlives the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let before = lim.rlim_cur;
    if before >= wanted {
        return Ok(FdLimit {
            before,
            after: before,
            error: None,
        });
    }
    let mut error = None;
    // Raising the hard limit needs privileges; try it, then settle for the hard limit.
    for (cur, max) in [
        (wanted, wanted.max(lim.rlim_max)),
        (wanted.min(lim.rlim_max), lim.rlim_max),
    ] {
        let new = libc::rlimit {
            rlim_cur: cur,
            rlim_max: max,
        };
        // SAFETY: setrlimit reads one rlimit from `new`, which outlives the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } == 0 {
            return Ok(FdLimit {
                before,
                after: cur.max(before),
                error,
            });
        }
        error.get_or_insert_with(|| io::Error::last_os_error().to_string());
    }
    Ok(FdLimit {
        before,
        after: before,
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ServerConfig, SettingsInit};

    fn shared(maxclients: u64) -> Shared {
        let config = ServerConfig {
            settings: SettingsInit {
                maxclients,
                ..Default::default()
            },
            ..Default::default()
        };
        Shared::new(config, 0, 0, 0)
    }

    #[test]
    fn admit_counts_up_to_maxclients_then_rejects() {
        let s = shared(2);
        assert!(admit(&s));
        assert!(admit(&s));
        assert!(!admit(&s));
        assert!(!admit(&s));
        assert_eq!(s.connected_clients.load(Ordering::Relaxed), 2);
        assert_eq!(s.rejected_connections.load(Ordering::Relaxed), 2);
        // A place freed is a place taken again; a raised limit applies at once.
        s.connected_clients.fetch_sub(1, Ordering::Relaxed);
        assert!(admit(&s));
        s.settings.maxclients.store(3, Ordering::Relaxed);
        assert!(admit(&s));
        assert_eq!(s.connected_clients.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn rejection_texts() {
        assert_eq!(
            rejection(Protocol::Redis),
            b"-ERR max number of clients reached\r\n"
        );
        assert_eq!(
            rejection(Protocol::Memcache),
            b"ERROR Too many open connections\r\n"
        );
    }

    #[test]
    fn idle_timeout() {
        assert!(!idle_expired(1_000, 1_000_000, 0), "0 never expires");
        assert!(
            !idle_expired(10_000, 11_000, 1),
            "exactly the timeout is not over it"
        );
        assert!(idle_expired(10_000, 11_001, 1));
        assert!(
            !idle_expired(10_000, 9_000, 1),
            "a clock step back is not idleness"
        );
        assert!(!idle_expired(0, u64::MAX, u64::MAX));
    }

    fn limit(hard: u64, soft: u64, soft_secs: u64) -> OutputLimit {
        OutputLimit {
            hard,
            soft,
            soft_secs,
        }
    }

    #[test]
    fn hard_limit_breaks_at_once() {
        let mut since = 0;
        let l = limit(1000, 0, 0);
        assert_eq!(output_breach(999, l, &mut since, 5), None);
        assert_eq!(output_breach(1000, l, &mut since, 5), Some(Breach::Hard));
        assert_eq!(
            output_breach(u64::MAX, l, &mut since, 5),
            Some(Breach::Hard)
        );
        assert_eq!(output_breach(u64::MAX, limit(0, 0, 0), &mut since, 5), None);
    }

    #[test]
    fn soft_limit_needs_to_hold_for_soft_secs() {
        let l = limit(0, 100, 2);
        let mut since = 0;
        assert_eq!(output_breach(100, l, &mut since, 10_000), None);
        assert_eq!(since, 10_000);
        assert_eq!(output_breach(150, l, &mut since, 12_000), None);
        assert_eq!(
            output_breach(150, l, &mut since, 12_001),
            Some(Breach::Soft)
        );
        // Dropping below the soft limit starts the clock over.
        let mut since = 0;
        assert_eq!(output_breach(100, l, &mut since, 10_000), None);
        assert_eq!(output_breach(99, l, &mut since, 11_000), None);
        assert_eq!(since, 0);
        assert_eq!(output_breach(100, l, &mut since, 12_500), None);
        assert_eq!(output_breach(100, l, &mut since, 14_000), None);
        assert_eq!(
            output_breach(100, l, &mut since, 14_501),
            Some(Breach::Soft)
        );
    }

    #[test]
    fn soft_limit_with_zero_seconds_breaks_on_the_next_check() {
        let l = limit(0, 100, 0);
        let mut since = 0;
        assert_eq!(output_breach(500, l, &mut since, 7), None);
        assert_eq!(output_breach(500, l, &mut since, 7), None);
        assert_eq!(output_breach(500, l, &mut since, 8), Some(Breach::Soft));
    }

    #[test]
    fn hard_wins_over_soft() {
        let mut since = 0;
        assert_eq!(
            output_breach(2000, limit(1000, 100, 60), &mut since, 1),
            Some(Breach::Hard)
        );
    }

    #[test]
    fn open_files_limit_is_never_lowered() {
        let got = raise_open_files_limit(1).unwrap();
        assert_eq!(got.before, got.after);
        assert!(got.after >= 1);
    }
}
