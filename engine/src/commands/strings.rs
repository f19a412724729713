//! Placeholder handlers, replaced by the real implementations.

use bytes::Bytes;

use crate::reply::Reply;
use crate::shard::Shard;

pub fn append(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn decr(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn decrby(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn get(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn getdel(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn getex(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn getrange(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn getset(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn incr(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn incrby(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn incrbyfloat(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn lcs(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn mget(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn mset(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn msetnx(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn psetex(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn set(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn setex(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn setnx(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn setrange(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn strlen(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
