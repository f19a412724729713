//! Server-wide settings and counters, shared by every core (`Arc<Shared>`).

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::resp::Limits;

/// What the binary's flags decide.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub bind: String,
    pub port: u16,
    /// 0 turns the memcached listener off.
    pub memcache_port: u16,
    pub requirepass: Option<String>,
    pub limits: Limits,
    pub cores: usize,
    /// memcached's item size limit (-I), in bytes.
    pub max_item_size: usize,
    pub maxmemory: u64,
    pub maxmemory_policy: String,
}

/// Settings plus the counters and signals every core shares.
pub struct Shared {
    pub config: ServerConfig,
    /// The ports actually bound (port 0 resolved).
    pub redis_port: u16,
    pub memcache_port: u16,
    pub started_ms: u64,
    pub stop: AtomicBool,
    /// Each core's ring eventfd: a write wakes that core's loop (used by signals).
    pub wakeups: Mutex<Vec<RawFd>>,
    pub total_connections: AtomicU64,
    pub connected_clients: AtomicU64,
    pub rejected_connections: AtomicU64,
}

impl Shared {
    pub fn new(
        config: ServerConfig,
        redis_port: u16,
        memcache_port: u16,
        started_ms: u64,
    ) -> Shared {
        Shared {
            config,
            redis_port,
            memcache_port,
            started_ms,
            stop: AtomicBool::new(false),
            wakeups: Mutex::new(Vec::new()),
            total_connections: AtomicU64::new(0),
            connected_clients: AtomicU64::new(0),
            rejected_connections: AtomicU64::new(0),
        }
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Asks every core to stop: no new connections, answer what was read, close.
    /// Async-signal-safe: an atomic store and write(2) on eventfds.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        if let Ok(fds) = self.wakeups.try_lock() {
            for &fd in fds.iter() {
                wake(fd);
            }
        }
    }
}

/// Bumps an eventfd so whoever awaits it wakes up.
pub fn wake(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64 to an eventfd; failure is harmless.
    unsafe { libc::write(fd, &one as *const u64 as *const libc::c_void, 8) };
}
