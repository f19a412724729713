//! Giving a large freed block back to the operating system at once.
//!
//! The store's slab and index tables (and a big hash's or sorted set's index) grow by
//! allocating a larger array, copying and freeing the old one. An allocator such as
//! mimalloc keeps freed pages resident for a while and purges them only when the thread
//! next allocates past a delay; a shard that has just loaded a million keys and gone quiet
//! then holds every superseded array, 10-15 bytes per key. The binary, which owns the
//! global allocator, sets a hook that purges freed memory; the engine calls it after it
//! frees an array of at least [`MIN_BYTES`]. That happens a logarithmic number of times as
//! a table grows, so the purge's cost (a walk over the thread's heap pages) is paid about
//! as rarely as the rehash it follows.

use std::sync::OnceLock;

/// The smallest freed array worth a purge.
pub const MIN_BYTES: usize = 256 << 10;

static HOOK: OnceLock<fn()> = OnceLock::new();

/// Sets the function that returns freed memory to the OS (once per process; later calls
/// are ignored). Without one, freed arrays are left to the allocator.
pub fn set_release_hook(hook: fn()) {
    let _ = HOOK.set(hook);
}

/// Returns what this thread's allocator holds freed to the OS now (after a shard's data
/// was dropped as a whole).
pub fn release_now() {
    if let Some(hook) = HOOK.get() {
        hook();
    }
}

/// Called after an array of `bytes` was freed.
pub(crate) fn freed(bytes: usize) {
    if bytes >= MIN_BYTES {
        if let Some(hook) = HOOK.get() {
            hook();
        }
    }
}
