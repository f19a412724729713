//! Placeholder handlers, replaced by the real implementations.

use bytes::Bytes;

use crate::reply::Reply;
use crate::shard::Shard;

pub fn dbsize(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn flushall(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn flushdb(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
