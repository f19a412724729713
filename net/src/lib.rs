//! # baton-net
//!
//! Protocol codecs (pure functions over bytes: [`resp`], [`memcache`]) and the per-core
//! io_uring connection loop that reads, parses, routes, executes, encodes and writes.

pub mod memcache;
pub mod resp;
