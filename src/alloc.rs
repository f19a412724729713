//! The global allocator: mimalloc, asked for plain blocks wherever the alignment allows.
//!
//! The `mimalloc` crate asks for every block through `mi_malloc_aligned`, whose fast path
//! holds only while the size class's page has a free block at hand; otherwise it goes
//! through a generic path that ends in the plain allocation anyway (callgrind: about 130
//! instructions a call instead of about 20, once per HSET of the memtier load). mimalloc's
//! plain blocks are aligned to at least a word, so a layout aligned to 8 or less takes
//! `mi_malloc` (as Rust's System allocator takes `malloc` for small alignments); any other
//! goes through the crate as before. Every block, however obtained, is freed by `mi_free`.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use mimalloc::MiMalloc;

/// The alignment every plain mimalloc block has (a word).
const PLAIN_ALIGN: usize = 8;

extern "C" {
    fn mi_malloc(size: usize) -> *mut c_void;
    fn mi_zalloc(size: usize) -> *mut c_void;
    fn mi_realloc(p: *mut c_void, newsize: usize) -> *mut c_void;
}

pub struct Alloc;

// SAFETY: every path returns a mimalloc block of at least the layout's size and
// alignment (plain blocks only for alignments of a word or less, which they all have),
// or null; `dealloc` is `MiMalloc`'s own (`mi_free`, which takes any mimalloc block).
unsafe impl GlobalAlloc for Alloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            mi_malloc(layout.size()).cast()
        } else {
            MiMalloc.alloc(layout)
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            mi_zalloc(layout.size()).cast()
        } else {
            MiMalloc.alloc_zeroed(layout)
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        MiMalloc.dealloc(ptr, layout)
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            mi_realloc(ptr.cast(), new_size).cast()
        } else {
            MiMalloc.realloc(ptr, layout, new_size)
        }
    }
}
