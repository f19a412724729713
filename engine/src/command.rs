//! The command table: one place that names every command with its arity, flags, key
//! positions, how it is routed across cores and which shard handler runs it. Arity checks,
//! routing and `COMMAND` output all read this table, as Redis's do.

use bytes::Bytes;

use crate::reply::Reply;
use crate::shard::{Shard, OOM_ERROR};

/// A shard-side command handler. `args[0]` is the command name; the arity was checked
/// before the call, so a handler trusts `args.len()` to be within the table's arity.
pub type Handler = fn(&mut Shard, &[Bytes], u64) -> Reply;

/// Command flags, as a bit set. Names follow Redis's `COMMAND INFO` flags.
pub mod flags {
    pub const WRITE: u16 = 1 << 0;
    pub const READONLY: u16 = 1 << 1;
    pub const DENYOOM: u16 = 1 << 2;
    pub const ADMIN: u16 = 1 << 3;
    pub const NOSCRIPT: u16 = 1 << 4;
    pub const LOADING: u16 = 1 << 5;
    pub const STALE: u16 = 1 << 6;
    pub const FAST: u16 = 1 << 7;
    pub const NO_AUTH: u16 = 1 << 8;
    pub const ALLOW_BUSY: u16 = 1 << 9;
    pub const PUBSUB: u16 = 1 << 10;
    /// Runs as if ASKING came before it (RESTORE-ASKING, which MIGRATE sends).
    pub const ASKING: u16 = 1 << 11;
    /// The keys are counted by a `numkeys` argument at `first_key`, and follow it
    /// (SINTERCARD, LMPOP): [`super::CommandSpec::keys_in`] reads it. Redis's `movablekeys`;
    /// COMMAND INFO shows such a command's key range as 0 0 0, as Redis does.
    pub const NUMKEYS: u16 = 1 << 12;

    /// Flag names in `COMMAND INFO` order.
    pub const NAMES: [(u16, &str); 13] = [
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (NOSCRIPT, "noscript"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (ALLOW_BUSY, "allow_busy"),
        (PUBSUB, "pubsub"),
        (ASKING, "asking"),
        (NUMKEYS, "movablekeys"),
    ];
}

/// How replies from several cores are merged into one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// Arrays concatenated in key order (MGET).
    Array,
    /// Integers added (DEL, EXISTS, TOUCH, UNLINK, DBSIZE).
    Sum,
    /// `+OK` when every part said OK (MSET, FLUSHDB).
    Ok,
    /// Arrays concatenated in core order (KEYS).
    Concat,
    /// A key from a random non-empty core (RANDOMKEY).
    Random,
    /// The cursor walks the cores one after another (SCAN).
    Scan,
}

/// A command the connection answers itself, some of them by asking every core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conn {
    Auth,
    /// BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP: the
    /// connection waits ([`crate::exec::blocking`]) and runs their non-blocking forms.
    Blocking,
    Client,
    Command,
    Config,
    Discard,
    Echo,
    Exec,
    Hello,
    Info,
    Multi,
    Ping,
    /// PUBLISH channel message: every core's subscribers ([`Route::Connection`] because
    /// subscribers are connections, not keys).
    Publish,
    Pubsub,
    Psubscribe,
    Punsubscribe,
    Quit,
    /// SHUTDOWN: the server stops as on SIGTERM.
    Shutdown,
    /// REPLICAOF and SLAVEOF.
    Replicaof,
    Replconf,
    /// A replica's flow connection names its primary shard (Baton's own).
    Flowsync,
    Role,
    Wait,
    Failover,
    /// PSYNC and SYNC: a Redis replica's handshake, which Baton does not serve.
    Psync,
    Reset,
    /// CLUSTER and its subcommands (cluster mode; an error otherwise).
    Cluster,
    /// ASKING: the next command may touch a slot being imported here.
    Asking,
    /// MIGRATE: keys to another server (a thread talks to it).
    Migrate,
    /// READONLY and READWRITE: a cluster client's read-from-replica flag.
    Readonly,
    Readwrite,
    Select,
    Slowlog,
    Subscribe,
    Time,
    Unsubscribe,
    Unwatch,
    Watch,
}

/// A multi-key command that is made atomic across cores when its keys live on several.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Txn {
    Copy,
    Lcs,
    /// LMOVE and RPOPLPUSH.
    Lmove,
    Lmpop,
    MsetNx,
    Rename,
    RenameNx,
    /// SINTER, SUNION, SDIFF, their STORE forms and SINTERCARD.
    SetAlgebra,
    /// SMOVE.
    Smove,
    /// ZRANGESTORE: the destination's core stores what the source's core selects.
    ZrangeStore,
    /// ZUNION, ZINTER, ZDIFF, their STORE forms, ZINTERCARD and ZMPOP: the command runs on
    /// copies of its keys, and the keys it changed are written back.
    ZsetKeys,
}

/// Where a command runs: the command's kind, which decides who executes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Answered by the connection itself (PING, HELLO, CLIENT, ...).
    Connection(Conn),
    /// Runs on the core that owns its first key.
    Key,
    /// Keys are split by core, each core runs the command on its own keys, replies merge.
    MultiKey(Merge),
    /// Every core runs it; replies merge.
    AllCores(Merge),
    /// Touches several keys atomically (MSETNX, RENAME, COPY, LCS): on one core when every
    /// key lives there, else a cross-core transaction over the cores involved.
    Atomic(Txn),
}

/// One row of the command table.
#[derive(Debug)]
pub struct CommandSpec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity: positive means exactly that many arguments (name included), negative
    /// means at least `-arity`.
    pub arity: i32,
    pub flags: u16,
    /// Key positions as in `COMMAND INFO`: first, last (negative counts from the end), step.
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub route: Route,
    /// The shard handler; `None` for commands the connection answers.
    pub handler: Option<Handler>,
    /// For `COMMAND DOCS`.
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
}

impl CommandSpec {
    /// Whether `argc` arguments (name included) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        if self.arity >= 0 {
            argc == self.arity as usize
        } else {
            argc >= (-self.arity) as usize
        }
    }

    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }

    /// The positions of the key arguments in `args` (name at 0), for routing, cluster
    /// checks and COMMAND GETKEYS: the table's (first, last, step); for a
    /// [`flags::NUMKEYS`] command the `numkeys` arguments after its count (none when the
    /// count is not a positive number that fits; the handler then answers the error); and
    /// for the sorted-set commands with a destination before their `numkeys` (ZUNIONSTORE
    /// and friends) or their own layouts (ZUNION, ZMPOP, ...), what
    /// [`crate::commands::zsets::numkeys_positions`] finds.
    pub fn keys_in(&self, args: &[Bytes]) -> Vec<usize> {
        if let Some(positions) = crate::commands::zsets::numkeys_positions(self.name, args) {
            return positions;
        }
        if !self.has(flags::NUMKEYS) {
            return self.key_positions(args.len()).collect();
        }
        let at = self.first_key.max(0) as usize;
        let n = args
            .get(at)
            .and_then(|n| crate::commands::parse_i64(n))
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n > 0 && at + n < args.len());
        n.map_or_else(Vec::new, |n| (at + 1..at + 1 + n).collect())
    }

    /// The positions of the key arguments in `args` (name at 0).
    pub fn key_positions(&self, argc: usize) -> std::iter::StepBy<std::ops::Range<usize>> {
        let (first, step) = (self.first_key, self.step.max(1) as usize);
        let last = if self.last_key < 0 {
            argc as i64 + self.last_key as i64
        } else {
            (self.last_key as i64).min(argc as i64 - 1)
        };
        let range = if first <= 0 || last < first as i64 {
            0..0
        } else {
            first as usize..(last as usize + 1)
        };
        range.step_by(step)
    }
}

macro_rules! spec {
    ($name:literal, $arity:expr, $flags:expr, ($f:expr, $l:expr, $s:expr), $route:expr, $handler:expr, $group:literal, $since:literal, $summary:literal) => {
        CommandSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $f,
            last_key: $l,
            step: $s,
            route: $route,
            handler: $handler,
            group: $group,
            since: $since,
            summary: $summary,
        }
    };
}

use crate::commands::zsets as zs;
use crate::commands::{
    db, dump as du, hashes as hs, introspect as is, keyspace as ks, lists as ls, strings as st,
};
// Sets (issue 14).
use crate::commands::sets as se;
use flags::*;
use Merge as M;
use Route::*;

const W: u16 = WRITE | DENYOOM;
const WF: u16 = WRITE | DENYOOM | FAST;
const RF: u16 = READONLY | FAST;
const CONN: u16 = NOSCRIPT | LOADING | STALE | FAST;

/// Every command Baton knows, sorted by name.
pub static COMMANDS: &[CommandSpec] = &[
    spec!("append", 3, WF, (1, 1, 1), Key, Some(st::append), "string", "2.0.0", "Appends a string to the value of a key. Creates the key if it doesn't exist."),
    spec!("asking", 1, CONN, (0, 0, 0), Connection(Conn::Asking), None, "cluster", "3.0.0", "Signals that a cluster client is following an -ASK redirect."),
    spec!("auth", -2, CONN | NO_AUTH | ALLOW_BUSY, (0, 0, 0), Connection(Conn::Auth), None, "connection", "1.0.0", "Authenticates the connection."),
    spec!("blmove", 6, WRITE | DENYOOM | NOSCRIPT, (1, 2, 1), Connection(Conn::Blocking), None, "list", "6.2.0", "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved."),
    spec!("blmpop", -5, WRITE | NOSCRIPT | NUMKEYS, (2, 2, 1), Connection(Conn::Blocking), None, "list", "7.0.0", "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped."),
    spec!("blpop", -3, WRITE | NOSCRIPT, (1, -2, 1), Connection(Conn::Blocking), None, "list", "2.0.0", "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped."),
    spec!("brpop", -3, WRITE | NOSCRIPT, (1, -2, 1), Connection(Conn::Blocking), None, "list", "2.0.0", "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped."),
    spec!("brpoplpush", 4, WRITE | DENYOOM | NOSCRIPT, (1, 2, 1), Connection(Conn::Blocking), None, "list", "2.2.0", "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped."),
    spec!("bzmpop", -5, WRITE | NOSCRIPT | NUMKEYS, (2, 2, 1), Connection(Conn::Blocking), None, "sorted-set", "7.0.0", "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped."),
    spec!("bzpopmax", -3, WRITE | NOSCRIPT | FAST, (1, -2, 1), Connection(Conn::Blocking), None, "sorted-set", "5.0.0", "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise. Deletes the sorted set if the last element was popped."),
    spec!("bzpopmin", -3, WRITE | NOSCRIPT | FAST, (1, -2, 1), Connection(Conn::Blocking), None, "sorted-set", "5.0.0", "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped."),
    spec!("client", -2, NOSCRIPT | LOADING | STALE, (0, 0, 0), Connection(Conn::Client), None, "connection", "2.4.0", "A container for client connection commands."),
    spec!("cluster", -2, 0, (0, 0, 0), Connection(Conn::Cluster), None, "cluster", "3.0.0", "A container for Redis Cluster commands."),
    spec!("command", -1, LOADING | STALE, (0, 0, 0), Connection(Conn::Command), None, "server", "2.8.13", "Returns detailed information about all commands."),
    spec!("config", -2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), Connection(Conn::Config), None, "server", "2.0.0", "A container for server configuration commands."),
    spec!("copy", -3, W, (1, 2, 1), Atomic(Txn::Copy), Some(ks::copy), "generic", "6.2.0", "Copies the value of a key to a new key."),
    spec!("dbsize", 1, RF, (0, 0, 0), AllCores(M::Sum), Some(db::dbsize), "server", "1.0.0", "Returns the number of keys in the database."),
    spec!("decr", 2, WF, (1, 1, 1), Key, Some(st::decr), "string", "1.0.0", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist."),
    spec!("decrby", 3, WF, (1, 1, 1), Key, Some(st::decrby), "string", "1.0.0", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist."),
    spec!("del", -2, WRITE, (1, -1, 1), MultiKey(M::Sum), Some(ks::del), "generic", "1.0.0", "Deletes one or more keys."),
    spec!("discard", 1, CONN | ALLOW_BUSY, (0, 0, 0), Connection(Conn::Discard), None, "transactions", "2.0.0", "Discards a transaction."),
    spec!("dump", 2, READONLY, (1, 1, 1), Key, Some(du::dump), "generic", "2.6.0", "Returns a serialized representation of the value stored at a key."),
    spec!("echo", 2, CONN, (0, 0, 0), Connection(Conn::Echo), None, "connection", "1.0.0", "Returns the given string."),
    spec!("exec", 1, NOSCRIPT | LOADING | STALE, (0, 0, 0), Connection(Conn::Exec), None, "transactions", "1.2.0", "Executes all commands in a transaction."),
    spec!("exists", -2, RF, (1, -1, 1), MultiKey(M::Sum), Some(ks::exists), "generic", "1.0.0", "Determines whether one or more keys exist."),
    spec!("expire", -3, WRITE | FAST, (1, 1, 1), Key, Some(ks::expire), "generic", "1.0.0", "Sets the expiration time of a key in seconds."),
    spec!("expireat", -3, WRITE | FAST, (1, 1, 1), Key, Some(ks::expireat), "generic", "1.2.0", "Sets the expiration time of a key to a Unix timestamp."),
    spec!("expiretime", 2, RF, (1, 1, 1), Key, Some(ks::expiretime), "generic", "7.0.0", "Returns the expiration time of a key as a Unix timestamp."),
    spec!("failover", -1, ADMIN | NOSCRIPT | STALE, (0, 0, 0), Connection(Conn::Failover), None, "server", "6.2.0", "Starts a coordinated failover from a server to one of its replicas."),
    spec!("flowsync", -6, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), Connection(Conn::Flowsync), None, "server", "1.0.0", "Turns the connection into a replication flow of one primary shard (Baton replicas send it)."),
    spec!("flushall", -1, WRITE, (0, 0, 0), AllCores(M::Ok), Some(db::flushall), "server", "1.0.0", "Removes all keys from all databases."),
    spec!("flushdb", -1, WRITE, (0, 0, 0), AllCores(M::Ok), Some(db::flushdb), "server", "1.0.0", "Remove all keys from the current database."),
    spec!("get", 2, RF, (1, 1, 1), Key, Some(st::get), "string", "1.0.0", "Returns the string value of a key."),
    spec!("getdel", 2, WRITE | FAST, (1, 1, 1), Key, Some(st::getdel), "string", "6.2.0", "Returns the string value of a key after deleting the key."),
    spec!("getex", -2, WRITE | FAST, (1, 1, 1), Key, Some(st::getex), "string", "6.2.0", "Returns the string value of a key after setting its expiration time."),
    spec!("getrange", 4, READONLY, (1, 1, 1), Key, Some(st::getrange), "string", "2.4.0", "Returns a substring of the string stored at a key."),
    spec!("getset", 3, WF, (1, 1, 1), Key, Some(st::getset), "string", "1.0.0", "Returns the previous string value of a key after setting it to a new value."),
    spec!("hdel", -3, WRITE | FAST, (1, 1, 1), Key, Some(hs::hdel), "hash", "2.0.0", "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain."),
    spec!("hello", -1, CONN | NO_AUTH | ALLOW_BUSY, (0, 0, 0), Connection(Conn::Hello), None, "connection", "6.0.0", "Handshakes with the Redis server."),
    spec!("hexists", 3, RF, (1, 1, 1), Key, Some(hs::hexists), "hash", "2.0.0", "Determines whether a field exists in a hash."),
    spec!("hget", 3, RF, (1, 1, 1), Key, Some(hs::hget), "hash", "2.0.0", "Returns the value of a field in a hash."),
    spec!("hgetall", 2, READONLY, (1, 1, 1), Key, Some(hs::hgetall), "hash", "2.0.0", "Returns all fields and values in a hash."),
    spec!("hincrby", 4, WF, (1, 1, 1), Key, Some(hs::hincrby), "hash", "2.0.0", "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist."),
    spec!("hincrbyfloat", 4, WF, (1, 1, 1), Key, Some(hs::hincrbyfloat), "hash", "2.6.0", "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist."),
    spec!("hkeys", 2, READONLY, (1, 1, 1), Key, Some(hs::hkeys), "hash", "2.0.0", "Returns all fields in a hash."),
    spec!("hlen", 2, RF, (1, 1, 1), Key, Some(hs::hlen), "hash", "2.0.0", "Returns the number of fields in a hash."),
    spec!("hmget", -3, RF, (1, 1, 1), Key, Some(hs::hmget), "hash", "2.0.0", "Returns the values of all fields in a hash."),
    spec!("hmset", -4, WF, (1, 1, 1), Key, Some(hs::hmset), "hash", "2.0.0", "Sets the values of multiple fields."),
    spec!("hrandfield", -2, READONLY, (1, 1, 1), Key, Some(hs::hrandfield), "hash", "6.2.0", "Returns one or more random fields from a hash."),
    spec!("hscan", -3, READONLY, (1, 1, 1), Key, Some(hs::hscan), "hash", "2.8.0", "Iterates over fields and values of a hash."),
    spec!("hset", -4, WF, (1, 1, 1), Key, Some(hs::hset), "hash", "2.0.0", "Creates or modifies the value of a field in a hash."),
    spec!("hsetnx", 4, WF, (1, 1, 1), Key, Some(hs::hsetnx), "hash", "2.0.0", "Sets the value of a field in a hash only when the field doesn't exist."),
    spec!("hstrlen", 3, RF, (1, 1, 1), Key, Some(hs::hstrlen), "hash", "3.2.0", "Returns the length of the value of a field."),
    spec!("hvals", 2, READONLY, (1, 1, 1), Key, Some(hs::hvals), "hash", "2.0.0", "Returns all values in a hash."),
    spec!("incr", 2, WF, (1, 1, 1), Key, Some(st::incr), "string", "1.0.0", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist."),
    spec!("incrby", 3, WF, (1, 1, 1), Key, Some(st::incrby), "string", "1.0.0", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist."),
    spec!("incrbyfloat", 3, WF, (1, 1, 1), Key, Some(st::incrbyfloat), "string", "2.6.0", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist."),
    spec!("info", -1, LOADING | STALE, (0, 0, 0), Connection(Conn::Info), None, "server", "1.0.0", "Returns information and statistics about the server."),
    spec!("keys", 2, READONLY, (0, 0, 0), AllCores(M::Concat), Some(ks::keys), "generic", "1.0.0", "Returns all key names that match a pattern."),
    spec!("lcs", -3, READONLY, (1, 2, 1), Atomic(Txn::Lcs), Some(st::lcs), "string", "7.0.0", "Finds the longest common substring."),
    spec!("lindex", 3, READONLY, (1, 1, 1), Key, Some(ls::lindex), "list", "1.0.0", "Returns an element from a list by its index."),
    spec!("linsert", 5, W, (1, 1, 1), Key, Some(ls::linsert), "list", "2.2.0", "Inserts an element before or after another element in a list."),
    spec!("llen", 2, RF, (1, 1, 1), Key, Some(ls::llen), "list", "1.0.0", "Returns the length of a list."),
    spec!("lmove", 5, W, (1, 2, 1), Atomic(Txn::Lmove), Some(ls::lmove), "list", "6.2.0", "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved."),
    spec!("lmpop", -4, WRITE | NUMKEYS, (1, 1, 1), Atomic(Txn::Lmpop), Some(ls::lmpop), "list", "7.0.0", "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped."),
    spec!("lpop", -2, WRITE | FAST, (1, 1, 1), Key, Some(ls::lpop), "list", "1.0.0", "Returns the first elements in a list after removing it. Deletes the list if the last element was popped."),
    spec!("lpos", -3, READONLY, (1, 1, 1), Key, Some(ls::lpos), "list", "6.0.6", "Returns the index of matching elements in a list."),
    spec!("lpush", -3, WF, (1, 1, 1), Key, Some(ls::lpush), "list", "1.0.0", "Prepends one or more elements to a list. Creates the key if it doesn't exist."),
    spec!("lpushx", -3, WF, (1, 1, 1), Key, Some(ls::lpushx), "list", "2.2.0", "Prepends one or more elements to a list only when the list exists."),
    spec!("lrange", 4, READONLY, (1, 1, 1), Key, Some(ls::lrange), "list", "1.0.0", "Returns a range of elements from a list."),
    spec!("lrem", 4, WRITE, (1, 1, 1), Key, Some(ls::lrem), "list", "1.0.0", "Removes elements from a list. Deletes the list if the last element was removed."),
    spec!("lset", 4, W, (1, 1, 1), Key, Some(ls::lset), "list", "1.0.0", "Sets the value of an element in a list by its index."),
    spec!("ltrim", 4, WRITE, (1, 1, 1), Key, Some(ls::ltrim), "list", "1.0.0", "Removes elements from both ends a list. Deletes the list if all elements were trimmed."),
    spec!("memory", -2, READONLY, (2, 2, 1), Key, Some(is::memory), "server", "4.0.0", "A container for memory diagnostics commands."),
    spec!("mget", -2, RF, (1, -1, 1), MultiKey(M::Array), Some(st::mget), "string", "1.0.0", "Atomically returns the string values of one or more keys."),
    spec!("migrate", -6, WRITE, (3, 3, 1), Connection(Conn::Migrate), None, "generic", "2.6.0", "Atomically transfers a key from one Redis instance to another."),
    spec!("mset", -3, W, (1, -1, 2), MultiKey(M::Ok), Some(st::mset), "string", "1.0.1", "Atomically creates or modifies the string values of one or more keys."),
    spec!("msetnx", -3, W, (1, -1, 2), Atomic(Txn::MsetNx), Some(st::msetnx), "string", "1.0.1", "Atomically modifies the string values of one or more keys only when all keys don't exist."),
    spec!("multi", 1, CONN | ALLOW_BUSY, (0, 0, 0), Connection(Conn::Multi), None, "transactions", "1.2.0", "Starts a transaction."),
    spec!("object", -2, READONLY, (2, 2, 1), Key, Some(is::object), "generic", "2.2.3", "A container for object introspection commands."),
    spec!("persist", 2, WRITE | FAST, (1, 1, 1), Key, Some(ks::persist), "generic", "2.2.0", "Removes the expiration time of a key."),
    spec!("pexpire", -3, WRITE | FAST, (1, 1, 1), Key, Some(ks::pexpire), "generic", "2.6.0", "Sets the expiration time of a key in milliseconds."),
    spec!("pexpireat", -3, WRITE | FAST, (1, 1, 1), Key, Some(ks::pexpireat), "generic", "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp."),
    spec!("pexpiretime", 2, RF, (1, 1, 1), Key, Some(ks::pexpiretime), "generic", "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp."),
    spec!("ping", -1, CONN, (0, 0, 0), Connection(Conn::Ping), None, "connection", "1.0.0", "Returns the server's liveliness response."),
    spec!("psetex", 4, W, (1, 1, 1), Key, Some(st::psetex), "string", "2.6.0", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist."),
    spec!("psubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, (0, 0, 0), Connection(Conn::Psubscribe), None, "pubsub", "2.0.0", "Listens for messages published to channels that match one or more patterns."),
    spec!("psync", -3, ADMIN | NOSCRIPT | STALE, (0, 0, 0), Connection(Conn::Psync), None, "server", "2.8.0", "An internal command used in replication (a Redis replica's; Baton's replicas use flows)."),
    spec!("pttl", 2, RF, (1, 1, 1), Key, Some(ks::pttl), "generic", "2.6.0", "Returns the expiration time in milliseconds of a key."),
    spec!("publish", 3, PUBSUB | LOADING | STALE | FAST, (0, 0, 0), Connection(Conn::Publish), None, "pubsub", "2.0.0", "Posts a message to a channel."),
    spec!("pubsub", -2, 0, (0, 0, 0), Connection(Conn::Pubsub), None, "pubsub", "2.8.0", "A container for Pub/Sub commands."),
    spec!("punsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, (0, 0, 0), Connection(Conn::Punsubscribe), None, "pubsub", "2.0.0", "Stops listening to messages published to channels that match one or more patterns."),
    spec!("quit", -1, CONN | NO_AUTH | ALLOW_BUSY, (0, 0, 0), Connection(Conn::Quit), None, "connection", "1.0.0", "Closes the connection."),
    spec!("randomkey", 1, READONLY, (0, 0, 0), AllCores(M::Random), Some(ks::randomkey), "generic", "1.0.0", "Returns a random key name from the database."),
    spec!("readonly", 1, CONN, (0, 0, 0), Connection(Conn::Readonly), None, "cluster", "3.0.0", "Enables read-only queries for a connection to a Redis Cluster replica node."),
    spec!("readwrite", 1, CONN, (0, 0, 0), Connection(Conn::Readwrite), None, "cluster", "3.0.0", "Enables read-write queries for a connection to a Redis Cluster replica node."),
    spec!("rename", 3, WRITE, (1, 2, 1), Atomic(Txn::Rename), Some(ks::rename), "generic", "1.0.0", "Renames a key and overwrites the destination."),
    spec!("renamenx", 3, WRITE | FAST, (1, 2, 1), Atomic(Txn::RenameNx), Some(ks::renamenx), "generic", "1.0.0", "Renames a key only when the target key name doesn't exist."),
    spec!("replconf", -1, ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY, (0, 0, 0), Connection(Conn::Replconf), None, "server", "3.0.0", "An internal command for configuring the replication stream."),
    spec!("replicaof", 3, ADMIN | NOSCRIPT | STALE, (0, 0, 0), Connection(Conn::Replicaof), None, "server", "5.0.0", "Configures a server as replica of another, or promotes it to a master."),
    spec!("reset", 1, CONN | NO_AUTH | ALLOW_BUSY, (0, 0, 0), Connection(Conn::Reset), None, "connection", "6.2.0", "Resets the connection."),
    spec!("restore", -4, W, (1, 1, 1), Key, Some(du::restore), "generic", "2.6.0", "Creates a key from the serialized representation of a value."),
    spec!("restore-asking", -4, W | ASKING, (1, 1, 1), Key, Some(du::restore), "server", "3.0.0", "An internal command for migrating keys in a cluster."),
    spec!("role", 1, NOSCRIPT | LOADING | STALE | FAST, (0, 0, 0), Connection(Conn::Role), None, "server", "2.8.12", "Returns the replication role."),
    spec!("rpop", -2, WRITE | FAST, (1, 1, 1), Key, Some(ls::rpop), "list", "1.0.0", "Returns and removes the last elements of a list. Deletes the list if the last element was popped."),
    spec!("rpoplpush", 3, W, (1, 2, 1), Atomic(Txn::Lmove), Some(ls::rpoplpush), "list", "1.2.0", "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped."),
    spec!("rpush", -3, WF, (1, 1, 1), Key, Some(ls::rpush), "list", "1.0.0", "Appends one or more elements to a list. Creates the key if it doesn't exist."),
    spec!("rpushx", -3, WF, (1, 1, 1), Key, Some(ls::rpushx), "list", "2.2.0", "Appends an element to a list only when the list exists."),
    spec!("sadd", -3, WF, (1, 1, 1), Key, Some(se::sadd), "set", "1.0.0", "Adds one or more members to a set. Creates the key if it doesn't exist."),
    spec!("scan", -2, READONLY, (0, 0, 0), AllCores(M::Scan), Some(ks::scan), "generic", "2.8.0", "Iterates over the key names in the database."),
    spec!("scard", 2, RF, (1, 1, 1), Key, Some(se::scard), "set", "1.0.0", "Returns the number of members in a set."),
    spec!("sdiff", -2, READONLY, (1, -1, 1), Atomic(Txn::SetAlgebra), Some(se::algebra), "set", "1.0.0", "Returns the difference of multiple sets."),
    spec!("sdiffstore", -3, W, (1, -1, 1), Atomic(Txn::SetAlgebra), Some(se::algebra), "set", "1.0.0", "Stores the difference of multiple sets in a key."),
    spec!("select", 2, CONN, (0, 0, 0), Connection(Conn::Select), None, "connection", "1.0.0", "Changes the selected database."),
    spec!("set", -3, W, (1, 1, 1), Key, Some(st::set), "string", "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist."),
    spec!("setex", 4, W, (1, 1, 1), Key, Some(st::setex), "string", "2.0.0", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist."),
    spec!("setnx", 3, WF, (1, 1, 1), Key, Some(st::setnx), "string", "1.0.0", "Set the string value of a key only when the key doesn't exist."),
    spec!("setrange", 4, W, (1, 1, 1), Key, Some(st::setrange), "string", "2.2.0", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist."),
    spec!("shutdown", -1, ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY, (0, 0, 0), Connection(Conn::Shutdown), None, "server", "1.0.0", "Synchronously saves the database(s) to disk and shuts down the Redis server."),
    spec!("sinter", -2, READONLY, (1, -1, 1), Atomic(Txn::SetAlgebra), Some(se::algebra), "set", "1.0.0", "Returns the intersect of multiple sets."),
    spec!("sintercard", -3, READONLY | NUMKEYS, (1, 1, 1), Atomic(Txn::SetAlgebra), Some(se::algebra), "set", "7.0.0", "Returns the number of members of the intersect of multiple sets."),
    spec!("sinterstore", -3, W, (1, -1, 1), Atomic(Txn::SetAlgebra), Some(se::algebra), "set", "1.0.0", "Stores the intersect of multiple sets in a key."),
    spec!("sismember", 3, RF, (1, 1, 1), Key, Some(se::sismember), "set", "1.0.0", "Determines whether a member belongs to a set."),
    spec!("slaveof", 3, ADMIN | NOSCRIPT | STALE, (0, 0, 0), Connection(Conn::Replicaof), None, "server", "1.0.0", "Sets a Redis server as a replica of another, or promotes it to being a master."),
    spec!("slowlog", -2, ADMIN | LOADING | STALE, (0, 0, 0), Connection(Conn::Slowlog), None, "server", "2.2.12", "A container for slow log commands."),
    spec!("smembers", 2, READONLY, (1, 1, 1), Key, Some(se::smembers), "set", "1.0.0", "Returns all members of a set."),
    spec!("smismember", -3, RF, (1, 1, 1), Key, Some(se::smismember), "set", "6.2.0", "Determines whether multiple members belong to a set."),
    spec!("smove", 4, WRITE | FAST, (1, 2, 1), Atomic(Txn::Smove), Some(se::smove), "set", "1.0.0", "Moves a member from one set to another."),
    spec!("spop", -2, WRITE | FAST, (1, 1, 1), Key, Some(se::spop), "set", "1.0.0", "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped."),
    spec!("srandmember", -2, READONLY, (1, 1, 1), Key, Some(se::srandmember), "set", "1.0.0", "Get one or multiple random members from a set"),
    spec!("srem", -3, WRITE | FAST, (1, 1, 1), Key, Some(se::srem), "set", "1.0.0", "Removes one or more members from a set. Deletes the set if the last member was removed."),
    spec!("sscan", -3, READONLY, (1, 1, 1), Key, Some(se::sscan), "set", "2.8.0", "Iterates over members of a set."),
    spec!("strlen", 2, RF, (1, 1, 1), Key, Some(st::strlen), "string", "2.2.0", "Returns the length of a string value."),
    spec!("subscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE, (0, 0, 0), Connection(Conn::Subscribe), None, "pubsub", "2.0.0", "Listens for messages published to channels."),
    spec!("substr", 4, READONLY, (1, 1, 1), Key, Some(st::getrange), "string", "1.0.0", "Returns a substring from a string value."),
    spec!("sunion", -2, READONLY, (1, -1, 1), Atomic(Txn::SetAlgebra), Some(se::algebra), "set", "1.0.0", "Returns the union of multiple sets."),
    spec!("sunionstore", -3, W, (1, -1, 1), Atomic(Txn::SetAlgebra), Some(se::algebra), "set", "1.0.0", "Stores the union of multiple sets in a key."),
    spec!("sync", 1, ADMIN | NOSCRIPT | STALE, (0, 0, 0), Connection(Conn::Psync), None, "server", "1.0.0", "An internal command used in replication (a Redis replica's; Baton's replicas use flows)."),
    spec!("time", 1, LOADING | STALE | FAST, (0, 0, 0), Connection(Conn::Time), None, "server", "2.6.0", "Returns the server time."),
    spec!("touch", -2, RF, (1, -1, 1), MultiKey(M::Sum), Some(ks::touch), "generic", "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed."),
    spec!("ttl", 2, RF, (1, 1, 1), Key, Some(ks::ttl), "generic", "1.0.0", "Returns the expiration time in seconds of a key."),
    spec!("type", 2, RF, (1, 1, 1), Key, Some(ks::type_), "generic", "1.0.0", "Determines the type of value stored at a key."),
    spec!("unlink", -2, WRITE | FAST, (1, -1, 1), MultiKey(M::Sum), Some(ks::del), "generic", "4.0.0", "Asynchronously deletes one or more keys."),
    spec!("unsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE, (0, 0, 0), Connection(Conn::Unsubscribe), None, "pubsub", "2.0.0", "Stops listening to messages posted to channels."),
    spec!("unwatch", 1, CONN | ALLOW_BUSY, (0, 0, 0), Connection(Conn::Unwatch), None, "transactions", "2.2.0", "Forgets about watched keys of a transaction."),
    spec!("wait", 3, NOSCRIPT, (0, 0, 0), Connection(Conn::Wait), None, "generic", "3.0.0", "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed."),
    spec!("watch", -2, CONN | ALLOW_BUSY, (1, -1, 1), Connection(Conn::Watch), None, "transactions", "2.2.0", "Monitors changes to keys to determine the execution of a transaction."),
    spec!("zadd", -4, WF, (1, 1, 1), Key, Some(zs::zadd), "sorted-set", "1.2.0", "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist."),
    spec!("zcard", 2, RF, (1, 1, 1), Key, Some(zs::zcard), "sorted-set", "1.2.0", "Returns the number of members in a sorted set."),
    spec!("zcount", 4, RF, (1, 1, 1), Key, Some(zs::zcount), "sorted-set", "2.0.0", "Returns the count of members in a sorted set that have scores within a range."),
    spec!("zdiff", -3, READONLY, (0, 0, 0), Atomic(Txn::ZsetKeys), Some(zs::zdiff), "sorted-set", "6.2.0", "Returns the difference between multiple sorted sets."),
    spec!("zdiffstore", -4, W, (1, 1, 1), Atomic(Txn::ZsetKeys), Some(zs::zdiffstore), "sorted-set", "6.2.0", "Stores the difference of multiple sorted sets in a key."),
    spec!("zincrby", 4, WF, (1, 1, 1), Key, Some(zs::zincrby), "sorted-set", "1.2.0", "Increments the score of a member in a sorted set."),
    spec!("zinter", -3, READONLY, (0, 0, 0), Atomic(Txn::ZsetKeys), Some(zs::zinter), "sorted-set", "6.2.0", "Returns the intersect of multiple sorted sets."),
    spec!("zintercard", -3, READONLY, (0, 0, 0), Atomic(Txn::ZsetKeys), Some(zs::zintercard), "sorted-set", "7.0.0", "Returns the number of members of the intersect of multiple sorted sets."),
    spec!("zinterstore", -4, W, (1, 1, 1), Atomic(Txn::ZsetKeys), Some(zs::zinterstore), "sorted-set", "2.0.0", "Stores the intersect of multiple sorted sets in a key."),
    spec!("zlexcount", 4, RF, (1, 1, 1), Key, Some(zs::zlexcount), "sorted-set", "2.8.9", "Returns the number of members in a sorted set within a lexicographical range."),
    spec!("zmpop", -4, WRITE, (0, 0, 0), Atomic(Txn::ZsetKeys), Some(zs::zmpop), "sorted-set", "7.0.0", "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped."),
    spec!("zmscore", -3, RF, (1, 1, 1), Key, Some(zs::zmscore), "sorted-set", "6.2.0", "Returns the score of one or more members in a sorted set."),
    spec!("zpopmax", -2, WRITE | FAST, (1, 1, 1), Key, Some(zs::zpopmax), "sorted-set", "5.0.0", "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped."),
    spec!("zpopmin", -2, WRITE | FAST, (1, 1, 1), Key, Some(zs::zpopmin), "sorted-set", "5.0.0", "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped."),
    spec!("zrandmember", -2, READONLY, (1, 1, 1), Key, Some(zs::zrandmember), "sorted-set", "6.2.0", "Returns one or more random members from a sorted set."),
    spec!("zrange", -4, READONLY, (1, 1, 1), Key, Some(zs::zrange), "sorted-set", "1.2.0", "Returns members in a sorted set within a range of indexes."),
    spec!("zrangebylex", -4, READONLY, (1, 1, 1), Key, Some(zs::zrangebylex), "sorted-set", "2.8.9", "Returns members in a sorted set within a lexicographical range."),
    spec!("zrangebyscore", -4, READONLY, (1, 1, 1), Key, Some(zs::zrangebyscore), "sorted-set", "1.0.5", "Returns members in a sorted set within a range of scores."),
    spec!("zrangestore", -5, W, (1, 2, 1), Atomic(Txn::ZrangeStore), Some(zs::zrangestore), "sorted-set", "6.2.0", "Stores a range of members from sorted set in a key."),
    spec!("zrank", 3, RF, (1, 1, 1), Key, Some(zs::zrank), "sorted-set", "2.0.0", "Returns the index of a member in a sorted set ordered by ascending scores."),
    spec!("zrem", -3, WRITE | FAST, (1, 1, 1), Key, Some(zs::zrem), "sorted-set", "1.2.0", "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed."),
    spec!("zremrangebylex", 4, WRITE, (1, 1, 1), Key, Some(zs::zremrangebylex), "sorted-set", "2.8.9", "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed."),
    spec!("zremrangebyrank", 4, WRITE, (1, 1, 1), Key, Some(zs::zremrangebyrank), "sorted-set", "2.0.0", "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed."),
    spec!("zremrangebyscore", 4, WRITE, (1, 1, 1), Key, Some(zs::zremrangebyscore), "sorted-set", "1.2.0", "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed."),
    spec!("zrevrange", -4, READONLY, (1, 1, 1), Key, Some(zs::zrevrange), "sorted-set", "1.2.0", "Returns members in a sorted set within a range of indexes in reverse order."),
    spec!("zrevrangebylex", -4, READONLY, (1, 1, 1), Key, Some(zs::zrevrangebylex), "sorted-set", "2.8.9", "Returns members in a sorted set within a lexicographical range in reverse order."),
    spec!("zrevrangebyscore", -4, READONLY, (1, 1, 1), Key, Some(zs::zrevrangebyscore), "sorted-set", "2.2.0", "Returns members in a sorted set within a range of scores in reverse order."),
    spec!("zrevrank", 3, RF, (1, 1, 1), Key, Some(zs::zrevrank), "sorted-set", "2.0.0", "Returns the index of a member in a sorted set ordered by descending scores."),
    spec!("zscan", -3, READONLY, (1, 1, 1), Key, Some(zs::zscan), "sorted-set", "2.8.0", "Iterates over members and scores of a sorted set."),
    spec!("zscore", 3, RF, (1, 1, 1), Key, Some(zs::zscore), "sorted-set", "1.2.0", "Returns the score of a member in a sorted set."),
    spec!("zunion", -3, READONLY, (0, 0, 0), Atomic(Txn::ZsetKeys), Some(zs::zunion), "sorted-set", "6.2.0", "Returns the union of multiple sorted sets."),
    spec!("zunionstore", -4, W, (1, 1, 1), Atomic(Txn::ZsetKeys), Some(zs::zunionstore), "sorted-set", "2.0.0", "Stores the union of multiple sorted sets in a key."),
];

/// A subcommand of a container command (`CLIENT LIST`), with its own arity, as Redis 7
/// has them: checked centrally like a command's, and counted apart in INFO commandstats.
#[derive(Debug)]
pub struct SubcommandSpec {
    /// `container|sub`, lower case, as Redis names it (`client|list`).
    pub name: &'static str,
    /// Arity of the whole call, container name included (`CLIENT SETNAME x` is 3).
    pub arity: i32,
}

impl SubcommandSpec {
    pub fn arity_ok(&self, argc: usize) -> bool {
        if self.arity >= 0 {
            argc == self.arity as usize
        } else {
            argc >= (-self.arity) as usize
        }
    }

    /// The part after the `|`.
    pub fn short_name(&self) -> &'static str {
        self.name.split_once('|').map_or(self.name, |(_, s)| s)
    }
}

macro_rules! subs {
    ($($name:literal $arity:expr),* $(,)?) => {
        &[$(SubcommandSpec { name: $name, arity: $arity }),*]
    };
}

/// The subcommands of each container command, with Redis 7's arities.
pub static SUBCOMMANDS: &[(&str, &[SubcommandSpec])] = &[
    (
        "client",
        subs!(
            "client|getname" 2, "client|help" 2, "client|id" 2, "client|info" 2,
            "client|kill" -3, "client|list" -2, "client|no-evict" 3, "client|no-touch" 3,
            "client|setinfo" 4, "client|setname" 3, "client|unblock" -3,
        ),
    ),
    (
        "cluster",
        subs!(
            "cluster|addslots" -3, "cluster|addslotsrange" -4, "cluster|baton-mc" 4, "cluster|baton-view" -3,
            "cluster|bumpepoch" 2, "cluster|countkeysinslot" 3, "cluster|delslots" -3,
            "cluster|delslotsrange" -4, "cluster|forget" 3, "cluster|getkeysinslot" 4,
            "cluster|help" 2, "cluster|info" 2, "cluster|keyslot" 3, "cluster|meet" -4,
            "cluster|myid" 2, "cluster|nodes" 2, "cluster|reset" -2,
            "cluster|set-config-epoch" 3, "cluster|setslot" -4, "cluster|shards" 2,
            "cluster|slots" 2,
            "cluster|replicate" 3, "cluster|failover" -2, "cluster|replicas" 3,
            "cluster|slaves" 3, "cluster|baton-mfstart" 4,
            "cluster|migrateslots" -7, "cluster|getslotmigrations" 2,
            "cluster|cancelslotmigrations" 2,
            "cluster|baton-slots" -6, "cluster|baton-slotjob" -9,
        ),
    ),
    (
        "command",
        subs!(
            "command|count" 2, "command|docs" -2, "command|getkeys" -3, "command|help" 2,
            "command|info" -2,
            "command|list" -2,
        ),
    ),
    (
        "config",
        subs!(
            "config|get" -3, "config|help" 2, "config|resetstat" 2, "config|rewrite" 2,
            "config|set" -4,
        ),
    ),
    (
        "pubsub",
        subs!(
            "pubsub|channels" -2, "pubsub|help" 2, "pubsub|numpat" 2, "pubsub|numsub" -2,
            "pubsub|shardchannels" -2, "pubsub|shardnumsub" -2,
        ),
    ),
    (
        "slowlog",
        subs!(
            "slowlog|get" -2, "slowlog|help" 2, "slowlog|len" 2, "slowlog|reset" 2,
        ),
    ),
];

/// The position of `spec` in [`COMMANDS`]; `usize::MAX` (no row) for a spec from
/// elsewhere.
#[inline]
pub fn command_index(spec: &CommandSpec) -> usize {
    let offset = (spec as *const CommandSpec as usize).wrapping_sub(COMMANDS.as_ptr() as usize);
    let i = offset / std::mem::size_of::<CommandSpec>();
    if i < COMMANDS.len() {
        i
    } else {
        usize::MAX
    }
}

/// Number of commands plus subcommands: the size of a table with one row for each (a
/// [`CommandSpec`] has row [`command_index`], a subcommand the row [`subcommand`] gives).
pub fn command_and_subcommand_count() -> usize {
    COMMANDS.len() + SUBCOMMANDS.iter().map(|(_, s)| s.len()).sum::<usize>()
}

/// The subcommand `sub` of container `spec` with its row (see
/// [`command_and_subcommand_count`]); `None` for other commands and unknown subcommands.
pub fn subcommand(spec: &CommandSpec, sub: &[u8]) -> Option<(usize, &'static SubcommandSpec)> {
    let mut row = COMMANDS.len();
    for (container, subs) in SUBCOMMANDS {
        if *container == spec.name {
            return subs
                .iter()
                .position(|s| s.short_name().as_bytes().eq_ignore_ascii_case(sub))
                .map(|i| (row + i, &subs[i]));
        }
        row += subs.len();
    }
    None
}

/// The name of table row `row` (see [`command_and_subcommand_count`]).
pub fn row_name(row: usize) -> Option<&'static str> {
    if let Some(c) = COMMANDS.get(row) {
        return Some(c.name);
    }
    SUBCOMMANDS
        .iter()
        .flat_map(|(_, subs)| subs.iter())
        .nth(row - COMMANDS.len())
        .map(|s| s.name)
}

/// A command name as one number: its bytes lowercased, big-endian. `None` for a name that
/// no command has (empty, longer than 16 bytes, or with a NUL, which would read as a
/// shorter name). Never 0, which marks an empty slot of the index.
#[inline]
fn pack(name: &[u8]) -> Option<u128> {
    if name.is_empty() || name.len() > 16 {
        return None;
    }
    let mut v: u128 = 0;
    for &b in name {
        if b == 0 {
            return None;
        }
        v = (v << 8) | u128::from(b.to_ascii_lowercase());
    }
    Some(v)
}

/// Slots of the command index: a power of two, at least twice the table (checked when it
/// is built), so that a probe mostly ends at its first slot.
const INDEX_SLOTS: usize = 1024;

/// The first slot a packed name probes.
#[inline]
fn index_slot(key: u128) -> usize {
    let folded = (key as u64) ^ ((key >> 64) as u64).rotate_left(23);
    (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize & (INDEX_SLOTS - 1)
}

/// The table's packed names in an open-addressed hash table (linear probing; 0 is an
/// empty slot), with each row's index: one or two comparisons per lookup, where a binary
/// search over the sorted names took eight.
fn index() -> &'static [(u128, u16)] {
    static INDEX: std::sync::OnceLock<Vec<(u128, u16)>> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        assert!(
            COMMANDS.len() * 2 <= INDEX_SLOTS,
            "the command index is too small"
        );
        let mut slots = vec![(0u128, 0u16); INDEX_SLOTS];
        for (i, c) in COMMANDS.iter().enumerate() {
            let key = pack(c.name.as_bytes()).expect("command names are short");
            let mut at = index_slot(key);
            while slots[at].0 != 0 {
                at = (at + 1) & (INDEX_SLOTS - 1);
            }
            slots[at] = (key, i as u16);
        }
        slots
    })
}

/// Looks a command up by name, case-insensitively, without allocating.
#[inline]
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    lookup_row(name).map(|row| &COMMANDS[row])
}

#[inline]
fn lookup_row(name: &[u8]) -> Option<usize> {
    let key = pack(name)?;
    let index = index();
    let mut at = index_slot(key);
    loop {
        let (k, row) = index[at];
        if k == key {
            return Some(row as usize);
        }
        if k == 0 {
            return None;
        }
        at = (at + 1) & (INDEX_SLOTS - 1);
    }
}

/// A `'static` copy of `name` when it is a command's name spelled all in lower or all in
/// upper case (as clients send them): the same bytes, but a `Bytes` made from it costs no
/// reference count on the read buffer to make, clone or drop, where a slice of the
/// buffer costs an atomic increment and decrement per command.
///
/// Names of up to 8 bytes (GET, SET, HSET, ...) are found in a small per-thread cache of
/// the names seen last, by one word compare, before the command table is asked.
pub fn static_name(name: &[u8]) -> Option<&'static [u8]> {
    if name.is_empty() || name.len() > 8 {
        return static_name_uncached(name).map(|(n, _)| n);
    }
    let mut word = [0u8; 8];
    word[..name.len()].copy_from_slice(name);
    let word = u64::from_le_bytes(word);
    let slot = (word.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 62) as usize;
    let hit = NAME_CACHE.with(|cache| match cache[slot].get() {
        (w, Some(found), row) if w == word && found.len() == name.len() => Some((found, row)),
        _ => None,
    });
    if let Some((found, row)) = hit {
        LAST_STATIC.set((found, row));
        return Some(found);
    }
    let (found, row) = static_name_uncached(name)?;
    NAME_CACHE.with(|cache| cache[slot].set((word, Some(found), row)));
    Some(found)
}

fn static_name_uncached(name: &[u8]) -> Option<(&'static [u8], usize)> {
    static UPPER: std::sync::OnceLock<Vec<&'static [u8]>> = std::sync::OnceLock::new();
    // Which cases of letters the name has; it matched its row case-insensitively, so with
    // no upper-case letter it is the row's name itself, and with no lower-case letter
    // that name in upper case.
    let (mut upper, mut lower) = (false, false);
    for &b in name {
        upper |= b.is_ascii_uppercase();
        lower |= b.is_ascii_lowercase();
    }
    if upper && lower {
        return None;
    }
    let row = lookup_row(name)?;
    let name = if upper {
        UPPER.get_or_init(|| {
            COMMANDS
                .iter()
                .map(|c| &*Box::leak(c.name.to_ascii_uppercase().into_bytes().into_boxed_slice()))
                .collect()
        })[row]
    } else {
        COMMANDS[row].name.as_bytes()
    };
    LAST_STATIC.set((name, row));
    Some((name, row))
}

/// One entry of `NAME_CACHE`: a short name's bytes as a word, its static copy and its row.
type CachedName = (u64, Option<&'static [u8]>, usize);

thread_local! {
    /// The last name [`static_name`] gave on this thread and its row: the command that
    /// name begins is then looked up by one compare ([`lookup_arg`]).
    static LAST_STATIC: std::cell::Cell<(&'static [u8], usize)> =
        const { std::cell::Cell::new((&[], 0)) };
    /// Short names [`static_name`] found lately: the name's bytes as a word, the static
    /// copy and the row.
    static NAME_CACHE: [std::cell::Cell<CachedName>; 4] =
        const { [const { std::cell::Cell::new((0, None, 0)) }; 4] };
}

/// [`lookup`] for a request's first argument: one compare when it is the name
/// [`static_name`] gave last on this thread. Static names are never freed or changed, so
/// the same address and length are the same bytes (also when the compiler lets another
/// constant share them), which [`lookup`] would find in the same row.
#[inline]
pub fn lookup_arg(name: &[u8]) -> Option<&'static CommandSpec> {
    let (last, row) = LAST_STATIC.get();
    if std::ptr::eq(name, last) && !last.is_empty() {
        return Some(&COMMANDS[row]);
    }
    lookup(name)
}

impl Shard {
    /// Runs one command whose arity was already checked. `args[0]` is the name.
    ///
    /// Defined here, with the table, so that the shard does not depend on the command
    /// layer that is built on it.
    pub fn execute(&mut self, spec: &CommandSpec, args: &[Bytes], now: u64) -> Reply {
        self.stats.commands_processed += 1;
        self.now = now;
        if spec.flags & flags::DENYOOM != 0 && !self.admit_write() {
            return Reply::err(OOM_ERROR);
        }
        match spec.handler {
            Some(h) => h(self, args, now),
            None => Reply::error(format!("ERR '{}' cannot run on a shard", spec.name)),
        }
    }

    /// [`Shard::execute`] for `GET key`, giving the value where it lies instead of a copy
    /// in a [`Reply`]: the caller writes it to the client's output while the shard is
    /// still borrowed, which saves GET an allocation, a copy and a free. `Ok(None)` is a
    /// missing key; `Err` is WRONGTYPE.
    pub fn execute_get(&mut self, key: &[u8], now: u64) -> Result<Option<&[u8]>, Reply> {
        self.stats.commands_processed += 1;
        self.now = now;
        crate::commands::strings::get_value(self, key, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for w in COMMANDS.windows(2) {
            assert!(w[0].name < w[1].name, "{} !< {}", w[0].name, w[1].name);
        }
    }

    #[test]
    fn static_names_are_the_same_bytes() {
        assert_eq!(static_name(b"get"), Some(&b"get"[..]));
        assert_eq!(static_name(b"GET"), Some(&b"GET"[..]));
        assert_eq!(static_name(b"GeT"), None);
        // Again, from the cache, and with names that may share its slots.
        for _ in 0..2 {
            for name in [
                &b"get"[..],
                b"GET",
                b"set",
                b"SET",
                b"hget",
                b"HGET",
                b"getex",
                b"GETDEL",
                b"incrbyfloat",
            ] {
                assert_eq!(static_name(name), Some(name));
                assert_eq!(
                    lookup_arg(static_name(name).unwrap()).unwrap().name,
                    std::str::from_utf8(name).unwrap().to_ascii_lowercase()
                );
            }
        }
        assert_eq!(static_name(b"nope"), None);
        assert_eq!(static_name(b""), None);
        let name = static_name(b"SET").unwrap();
        assert_eq!(lookup_arg(name).unwrap().name, "set");
        assert_eq!(lookup_arg(b"SET").unwrap().name, "set");
        assert_eq!(lookup_arg(b"GETSET").unwrap().name, "getset");
        for c in COMMANDS {
            let upper = c.name.to_ascii_uppercase();
            assert_eq!(static_name(upper.as_bytes()), Some(upper.as_bytes()));
            assert_eq!(static_name(c.name.as_bytes()), Some(c.name.as_bytes()));
        }
    }

    #[test]
    fn lookup_is_case_insensitive() {
        assert_eq!(lookup(b"GeT").unwrap().name, "get");
        assert!(lookup(b"nope").is_none());
        assert!(lookup(&[b'a'; 40]).is_none());
        assert!(lookup(b"").is_none());
        assert!(lookup(b"ge").is_none());
        assert!(lookup(b"gett").is_none());
        assert!(lookup(b"\0get").is_none());
        assert!(lookup(b"g\0et").is_none());
        for c in COMMANDS {
            assert_eq!(
                lookup(c.name.to_ascii_uppercase().as_bytes()).unwrap().name,
                c.name
            );
        }
    }

    #[test]
    fn shard_commands_have_handlers() {
        for c in COMMANDS {
            assert_eq!(
                matches!(c.route, Route::Connection(_)),
                c.handler.is_none(),
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn subcommands_have_rows_and_names() {
        let client = lookup(b"client").unwrap();
        let (row, list) = subcommand(client, b"LIST").unwrap();
        assert_eq!(list.name, "client|list");
        assert_eq!(row_name(row), Some("client|list"));
        assert!(subcommand(client, b"nope").is_none());
        assert!(subcommand(lookup(b"get").unwrap(), b"list").is_none());
        let get = lookup(b"get").unwrap();
        assert_eq!(row_name(command_index(get)), Some("get"));
        let stray = spec!(
            "stray",
            1,
            0,
            (0, 0, 0),
            Connection(Conn::Ping),
            None,
            "x",
            "0",
            "x"
        );
        assert_eq!(command_index(&stray), usize::MAX);
        assert_eq!(row_name(usize::MAX), None);
        let mut seen = std::collections::HashSet::new();
        for row in 0..command_and_subcommand_count() {
            assert!(seen.insert(row_name(row).unwrap()), "row {row}");
        }
        assert_eq!(row_name(command_and_subcommand_count()), None);
        for (container, subs) in SUBCOMMANDS {
            let spec = lookup(container.as_bytes()).unwrap();
            assert!(matches!(spec.route, Route::Connection(_)), "{container}");
            for s in subs.iter() {
                assert!(s.name.starts_with(&format!("{container}|")), "{}", s.name);
                assert!(s.arity.abs() >= 2, "{}", s.name);
            }
        }
    }

    #[test]
    fn key_positions() {
        let mset = lookup(b"mset").unwrap();
        assert_eq!(mset.key_positions(5).collect::<Vec<_>>(), vec![1, 3]);
        let del = lookup(b"del").unwrap();
        assert_eq!(del.key_positions(4).collect::<Vec<_>>(), vec![1, 2, 3]);
        let get = lookup(b"get").unwrap();
        assert_eq!(get.key_positions(2).collect::<Vec<_>>(), vec![1]);
        let ping = lookup(b"ping").unwrap();
        assert_eq!(ping.key_positions(1).count(), 0);
    }
}
