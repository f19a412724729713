//! The meta commands: `mg`, `ms`, `md`, `ma`, `me` (`mn` is a [`super::McConn`]).
//!
//! `<cm> <key> [<datalen>] <flag>*`: each flag is one character, optionally followed by a
//! token (`T30`, `Oabc`). Flags that act on the item become fields of the engine's op;
//! flags that only shape the reply (`k`, `O`, `q`, `b`, and the return flags `c f s t`)
//! stay here, in the [`MetaReply`], whose encoder walks them in the order the client sent
//! them, as memcached does.

use super::lex::{
    data_block, data_len, parse_i32, parse_u32, parse_u64, reject_block, split, Step, Tokens,
    BAD_DATA_CHUNK, BAD_FORMAT, TOO_LARGE,
};
use super::{base64, McLimits, McReply, McRequest, MAX_KEY_LEN};
use baton_engine::memcache::McOp;
use baton_engine::memcache::{MetaArith, MetaDelete, MetaGet, MetaSet, StoreMode};

/// memcached's `MFLAG_MAX_OPT_LENGTH`: at most this many tokens, counting the terminator.
const MAX_META_TOKENS: usize = 20;
/// memcached's `MFLAG_MAX_OPAQUE_LENGTH`, counting the `O`.
const MAX_OPAQUE_LEN: usize = 32;

const BAD_TOKEN: &str = "CLIENT_ERROR bad token in command line format";

/// Which meta command a reply belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaCmd {
    Get,
    Set,
    Delete,
    Arith,
    Debug,
}

/// How to encode a meta command's result: the flags as the client sent them, plus what
/// the encoder needs to echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaReply {
    pub(super) cmd: MetaCmd,
    /// `q`: leave out the nominal reply (`HD` and, for `mg`, `EN`).
    pub(super) quiet: bool,
    /// `b`: the key travels base64-encoded.
    pub(super) base64: bool,
    /// The key as sent, kept only when `k` asks for it back.
    pub(super) key: Vec<u8>,
    /// The flag tokens as sent (space-separated), walked again to write return flags.
    pub(super) flags: Vec<u8>,
}

impl MetaReply {
    pub fn cmd(&self) -> MetaCmd {
        self.cmd
    }

    /// The flag tokens, in request order.
    pub(super) fn flag_tokens(&self) -> impl Iterator<Item = &[u8]> {
        split(&self.flags)
    }
}

/// Every flag the command line carried, parsed.
#[derive(Default)]
struct Flags {
    base64: bool,
    quiet: bool,
    value: bool,
    key: bool,
    invalidate: bool,
    remove_value: bool,
    recache: Option<i64>,
    ttl: Option<i64>,
    vivify: Option<i64>,
    compare_cas: Option<u64>,
    new_cas: Option<u64>,
    client_flags: Option<u32>,
    mode: Option<u8>,
    delta: Option<u64>,
    initial: Option<u64>,
}

/// Reads the flag tokens as memcached's `_meta_flag_preparse` does: duplicates and unknown
/// flags are errors, every flag any meta command knows is accepted by all of them.
fn read_flags<'a>(tokens: impl Iterator<Item = &'a [u8]>) -> Result<Flags, &'static str> {
    let mut f = Flags::default();
    let mut seen = [false; 128];
    for tok in tokens {
        let (flag, arg) = (tok[0], &tok[1..]);
        if flag >= 128 {
            return Err("CLIENT_ERROR invalid flag");
        }
        if std::mem::replace(&mut seen[flag as usize], true) {
            return Err("CLIENT_ERROR duplicate flag");
        }
        match flag {
            b'b' => f.base64 = true,
            b'q' => f.quiet = true,
            b'v' => f.value = true,
            b'k' => f.key = true,
            b'I' => f.invalidate = true,
            b'x' => f.remove_value = true,
            b's' | b't' | b'c' | b'f' | b'h' | b'l' | b'u' | b'P' | b'L' => {}
            b'O' if tok.len() > MAX_OPAQUE_LEN => return Err("CLIENT_ERROR opaque token too long"),
            b'O' => {}
            b'T' => f.ttl = Some(parse_i32(arg).ok_or(BAD_TOKEN)?),
            b'N' => f.vivify = Some(parse_i32(arg).ok_or(BAD_TOKEN)?),
            b'R' => f.recache = Some(parse_i32(arg).ok_or(BAD_TOKEN)?),
            b'C' => f.compare_cas = Some(parse_u64(arg).ok_or(BAD_TOKEN)?),
            b'E' => f.new_cas = Some(parse_u64(arg).ok_or(BAD_TOKEN)?),
            b'F' => f.client_flags = Some(parse_u32(arg).ok_or(BAD_FORMAT)?),
            b'M' if arg.len() != 1 => return Err("CLIENT_ERROR incorrect length for M token"),
            b'M' => f.mode = Some(arg[0]),
            b'J' => {
                let initial = parse_u64(arg).ok_or("CLIENT_ERROR invalid numeric initial value")?;
                f.initial = Some(initial);
            }
            b'D' => {
                let delta = parse_u64(arg).ok_or("CLIENT_ERROR invalid numeric delta value")?;
                f.delta = Some(delta);
            }
            _ => return Err("CLIENT_ERROR invalid flag"),
        }
    }
    Ok(f)
}

/// Byte offset of `tok` (a sub-slice of `line`) within `line`.
fn offset_in(line: &[u8], tok: &[u8]) -> usize {
    tok.as_ptr() as usize - line.as_ptr() as usize
}

/// Parses `mg`, `ms`, `md`, `ma` and `me` lines (and, for `ms`, the data block after it).
pub(super) fn parse(
    line: &[u8],
    t: &Tokens,
    line_len: usize,
    rest: &[u8],
    limits: &McLimits,
) -> Step {
    let cmd = match t.get(0) {
        b"mg" => MetaCmd::Get,
        b"ms" => MetaCmd::Set,
        b"md" => MetaCmd::Delete,
        b"ma" => MetaCmd::Arith,
        _ => return debug(t, line_len),
    };
    let is_set = cmd == MetaCmd::Set;
    let first_flag = if is_set { 3 } else { 2 };
    if t.n < first_flag {
        return Step::error(line_len, BAD_FORMAT, false);
    }
    // `ms` knows its data block's size before anything else, so every later error can
    // skip the block and keep the stream in sync.
    let block = match is_set {
        true => match data_len(t.get(2)) {
            Some(len) => Some(len),
            None => return Step::error(line_len, BAD_FORMAT, false),
        },
        false => None,
    };
    // Until a storage-sized block is all here there is nothing to decide (and no reason
    // to parse the flags again on every read).
    if block.is_some_and(|len| len <= limits.max_item_size && rest.len() < len + 2) {
        return Step::NeedMore;
    }
    let fail = |text: &'static str| match block {
        Some(len) => reject_block(line_len, len + 2, text, false),
        None => Step::error(line_len, text, false),
    };
    let raw_key = t.get(1);
    if raw_key.len() > MAX_KEY_LEN {
        return fail(BAD_FORMAT);
    }
    if t.n + 1 > MAX_META_TOKENS {
        return fail("CLIENT_ERROR options flags are too long");
    }
    let flags_text = match t.n > first_flag {
        true => &line[offset_in(line, t.get(first_flag))..],
        false => &[][..],
    };
    let f = match read_flags(split(flags_text)) {
        Ok(f) => f,
        // memcached answers every `ma` flag error the same way.
        Err(_) if cmd == MetaCmd::Arith => return fail("CLIENT_ERROR invalid or duplicate flag"),
        Err(text) => return fail(text),
    };
    let key = if f.base64 {
        match base64::decode(raw_key) {
            Some(k) => k,
            None => return fail("CLIENT_ERROR error decoding key"),
        }
    } else {
        raw_key.to_vec()
    };
    let reply = MetaReply {
        cmd,
        quiet: f.quiet,
        base64: f.base64,
        key: if f.key { raw_key.to_vec() } else { Vec::new() },
        flags: flags_text.to_vec(),
    };
    if let Some(len) = block {
        return set(key, &f, reply, line_len, len, rest, limits);
    }
    let op = match cmd {
        MetaCmd::Delete => delete_op(key, &f),
        MetaCmd::Arith => arith_op(key, &f),
        _ => get_op(key, &f),
    };
    match op {
        Ok(op) => Step::line(
            line_len,
            McRequest::Single {
                op,
                reply: McReply::Meta(reply),
            },
        ),
        Err(text) => fail(text),
    }
}

/* mg <key> <flags>* */
fn get_op(key: Vec<u8>, f: &Flags) -> Result<McOp, &'static str> {
    Ok(McOp::MetaGet(MetaGet {
        key,
        value: f.value,
        touch: f.ttl,
        unless_cas: f.compare_cas,
        vivify: f.vivify,
        recache: f.recache,
    }))
}

/* md <key> <flags>* */
fn delete_op(key: Vec<u8>, f: &Flags) -> Result<McOp, &'static str> {
    Ok(McOp::MetaDelete(MetaDelete {
        invalidate: f.invalidate,
        key,
        compare_cas: f.compare_cas,
        new_cas: f.new_cas,
        remove_value: f.remove_value,
        flags: f.client_flags.unwrap_or(0),
        exptime: f.ttl.unwrap_or(0),
    }))
}

/* ma <key> <flags>* */
fn arith_op(key: Vec<u8>, f: &Flags) -> Result<McOp, &'static str> {
    let incr = match f.mode {
        None | Some(b'I' | b'+') => true,
        Some(b'D' | b'-') => false,
        Some(_) => return Err("CLIENT_ERROR invalid mode for ma M token"),
    };
    Ok(McOp::MetaArith(MetaArith {
        key,
        incr,
        delta: f.delta.unwrap_or(1),
        initial: f.initial.unwrap_or(0),
        vivify: f.vivify,
        touch: f.ttl,
        compare_cas: f.compare_cas,
        new_cas: f.new_cas,
        value: f.value,
    }))
}

/* ms <key> <datalen> <flags>*\r\n<data>\r\n */
fn set(
    key: Vec<u8>,
    f: &Flags,
    reply: MetaReply,
    line_len: usize,
    len: usize,
    rest: &[u8],
    limits: &McLimits,
) -> Step {
    let total = len + 2;
    let mode = match f.mode {
        None | Some(b'S') => StoreMode::Set,
        Some(b'E') => StoreMode::Add,
        Some(b'A') => StoreMode::Append,
        Some(b'P') => StoreMode::Prepend,
        Some(b'R') => StoreMode::Replace,
        Some(_) => {
            return reject_block(
                line_len,
                total,
                "CLIENT_ERROR invalid mode for ms M token",
                false,
            )
        }
    };
    if len > limits.max_item_size {
        return reject_block(line_len, total, TOO_LARGE, false);
    }
    let Some(data) = data_block(rest, len) else {
        return Step::NeedMore;
    };
    let Ok(data) = data else {
        return Step::error(line_len + total, BAD_DATA_CHUNK, false);
    };
    let appending = matches!(mode, StoreMode::Append | StoreMode::Prepend);
    let op = McOp::MetaSet(MetaSet {
        key,
        data: data.to_vec(),
        mode,
        flags: f.client_flags.unwrap_or(0),
        exptime: f.ttl.unwrap_or(0),
        compare_cas: f.compare_cas,
        new_cas: f.new_cas,
        vivify: f.vivify.filter(|_| appending),
        invalidate: f.invalidate,
    });
    Step::line(
        line_len + total,
        McRequest::Single {
            op,
            reply: McReply::Meta(reply),
        },
    )
}

/* me <key> [b] */
fn debug(t: &Tokens, line_len: usize) -> Step {
    let raw_key = t.get(1);
    if t.n < 2 || raw_key.len() > MAX_KEY_LEN {
        return Step::error(line_len, BAD_FORMAT, false);
    }
    let base64 = t.get(2) == b"b";
    let key = if base64 {
        match base64::decode(raw_key) {
            Some(k) => k,
            None => return Step::error(line_len, BAD_FORMAT, false),
        }
    } else {
        raw_key.to_vec()
    };
    let reply = MetaReply {
        cmd: MetaCmd::Debug,
        quiet: false,
        base64,
        key: Vec::new(),
        flags: Vec::new(),
    };
    Step::line(
        line_len,
        McRequest::Single {
            op: McOp::MetaDebug { key },
            reply: McReply::Meta(reply),
        },
    )
}
