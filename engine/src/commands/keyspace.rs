//! Placeholder handlers, replaced by the real implementations.

use bytes::Bytes;

use crate::reply::Reply;
use crate::shard::Shard;

pub fn copy(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn del(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn exists(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn expire(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn expireat(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn expiretime(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn keys(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn pexpire(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn pexpireat(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn pexpiretime(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn persist(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn pttl(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn randomkey(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn rename(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn renamenx(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn scan(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn touch(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn ttl(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
pub fn type_(_s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::err("ERR not yet implemented")
}
