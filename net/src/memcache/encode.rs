//! Reply encoding: memcached's exact reply texts for every result, plus the meta return
//! flags in the order the client sent them.

use super::meta::{MetaCmd, MetaReply};
use super::{base64, McReply};
use baton_engine::memcache::{McDebug, McResult, MetaResult, MetaStatus};

const NON_NUMERIC: &[u8] = b"CLIENT_ERROR cannot increment or decrement non-numeric value";
const OUT_OF_MEMORY: &[u8] = b"SERVER_ERROR out of memory storing object";
/// A result that does not fit the request (a routing bug, never a client's fault). Written
/// rather than dropped, so the client's reply count stays right.
const MISMATCH: &[u8] = b"SERVER_ERROR unexpected result";

/// What a replica under `replica-read-only` answers a write on the memcached port (the
/// text Redis's `-READONLY` carries).
pub const READONLY: &str = "SERVER_ERROR READONLY You can't write against a read only replica.";
/// A memcached write while FAILOVER pauses writes.
pub const PAUSED: &str = "SERVER_ERROR writes are paused for a failover; retry";

/// Answers a request refused before it ran with `text`, a whole error line: nothing under
/// `noreply` (as memcached's errors on the text protocol), always for meta commands.
pub fn encode_refusal(reply: &McReply, text: &str, out: &mut Vec<u8>) {
    if *reply != (McReply::Text { noreply: true }) {
        line(out, text.as_bytes());
    }
}

fn line(out: &mut Vec<u8>, text: &[u8]) {
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

fn num(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends the reply to one op's result.
pub fn encode(reply: &McReply, result: &McResult, out: &mut Vec<u8>) {
    match reply {
        McReply::Get { cas } => {
            encode_item(*cas, result, out);
            encode_end(out);
        }
        McReply::Text { noreply: true } => {}
        McReply::Text { noreply: false } => text(result, out),
        McReply::Meta(m) => meta(m, result, out),
    }
}

/// Appends a whole multi-key retrieval reply: every hit, in order, then `END`.
pub fn encode_multi(cas: bool, results: &[McResult], out: &mut Vec<u8>) {
    for r in results {
        encode_item(cas, r, out);
    }
    encode_end(out);
}

/// Appends one retrieval result: `VALUE <key> <flags> <bytes> [<cas>]` and the data for a
/// hit, nothing for a miss. Finish the reply with [`encode_end`].
pub fn encode_item(cas: bool, result: &McResult, out: &mut Vec<u8>) {
    let McResult::Value(Some(item)) = result else {
        return;
    };
    encode_value(
        &item.key,
        item.flags,
        &item.value,
        cas.then_some(item.cas),
        out,
    );
}

/// Appends one hit: `VALUE <key> <flags> <bytes> [<cas>]` and the data.
pub fn encode_value(key: &[u8], flags: u32, value: &[u8], cas: Option<u64>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(key);
    out.push(b' ');
    num(out, flags);
    out.push(b' ');
    num(out, value.len());
    if let Some(cas) = cas {
        out.push(b' ');
        num(out, cas);
    }
    out.extend_from_slice(b"\r\n");
    line(out, value);
}

/// `END`, closing a retrieval reply.
pub fn encode_end(out: &mut Vec<u8>) {
    out.extend_from_slice(b"END\r\n");
}

/// A line the parser decided on ([`super::McRequest::Error`]).
pub fn encode_error(text: &str, out: &mut Vec<u8>) {
    line(out, text.as_bytes());
}

/// `OK` (verbosity, flush_all), unless `noreply`.
pub fn encode_ok(noreply: bool, out: &mut Vec<u8>) {
    if !noreply {
        out.extend_from_slice(b"OK\r\n");
    }
}

/// `VERSION <version>`.
pub fn encode_version(version: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"VERSION ");
    line(out, version.as_bytes());
}

/// `MN`, the meta no-op's reply.
pub fn encode_noop(out: &mut Vec<u8>) {
    out.extend_from_slice(b"MN\r\n");
}

/// `RESET`, after `stats reset`.
pub fn encode_reset(out: &mut Vec<u8>) {
    out.extend_from_slice(b"RESET\r\n");
}

fn text(result: &McResult, out: &mut Vec<u8>) {
    match result {
        McResult::Stored => line(out, b"STORED"),
        McResult::NotStored => line(out, b"NOT_STORED"),
        McResult::Exists => line(out, b"EXISTS"),
        McResult::NotFound => line(out, b"NOT_FOUND"),
        McResult::Deleted => line(out, b"DELETED"),
        McResult::Touched => line(out, b"TOUCHED"),
        McResult::Number(n) => {
            num(out, *n);
            out.extend_from_slice(b"\r\n");
        }
        McResult::NonNumeric => line(out, NON_NUMERIC),
        McResult::OutOfMemory => line(out, OUT_OF_MEMORY),
        McResult::Value(_) | McResult::Meta(_) | McResult::Debug(_) => line(out, MISMATCH),
    }
}

fn meta(m: &MetaReply, result: &McResult, out: &mut Vec<u8>) {
    match result {
        McResult::Meta(r) => meta_result(m, r, out),
        McResult::Debug(d) => debug(m, d.as_ref(), out),
        // Errors show whatever `q` says.
        McResult::NonNumeric => line(out, NON_NUMERIC),
        McResult::OutOfMemory => line(out, OUT_OF_MEMORY),
        _ => line(out, MISMATCH),
    }
}

fn meta_result(m: &MetaReply, r: &MetaResult, out: &mut Vec<u8>) {
    let ok = r.status == MetaStatus::Ok;
    // `q` mutes the nominal outcome: a miss for mg (a hit is what was asked for), a
    // success for the others.
    let nominal = match m.cmd {
        MetaCmd::Get => r.status == MetaStatus::Miss,
        _ => ok,
    };
    if m.quiet && nominal {
        return;
    }
    match (r.status, &r.value) {
        (MetaStatus::Ok, Some(v)) => {
            out.extend_from_slice(b"VA ");
            num(out, v.len());
        }
        (MetaStatus::Ok, None) => out.extend_from_slice(b"HD"),
        (MetaStatus::Miss, _) if m.cmd == MetaCmd::Get => out.extend_from_slice(b"EN"),
        (MetaStatus::Miss, _) => out.extend_from_slice(b"NF"),
        (MetaStatus::NotStored, _) => out.extend_from_slice(b"NS"),
        (MetaStatus::Exists, _) => out.extend_from_slice(b"EX"),
    }
    // The return flags each command writes, as memcached's do: mg and ma report item
    // fields only when they have an item; ms always reports c and s.
    let item_flags: &[u8] = match (m.cmd, ok) {
        (MetaCmd::Get, true) => b"stcfhl",
        (MetaCmd::Arith, true) => b"ct",
        (MetaCmd::Set, _) => b"cs",
        _ => b"",
    };
    let mut ttl_changed = false;
    for tok in m.flag_tokens() {
        match tok[0] {
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(tok);
            }
            b'k' => meta_key(m, out),
            b'T' => ttl_changed = true,
            b'N' => ttl_changed = true,
            f if item_flags.contains(&f) => {
                out.push(b' ');
                out.push(f);
                match f {
                    b's' => num(out, r.size),
                    b'c' => num(out, r.cas),
                    b'f' => num(out, r.flags),
                    b'h' => num(out, u8::from(r.hit_before)),
                    b'l' => num(out, r.last_access),
                    // memcached reports the TTL as it stands when it reaches the `t`.
                    _ => num(out, if ttl_changed { r.ttl } else { r.ttl_before }),
                }
            }
            _ => {}
        }
    }
    // The recache flags follow the requested ones, in memcached's order: Z (a win went to
    // an earlier request), X (stale), W (this request won).
    if m.cmd == MetaCmd::Get && ok {
        for (on, flag) in [(r.token_sent, &b" Z"[..]), (r.stale, b" X"), (r.won, b" W")] {
            if on {
                out.extend_from_slice(flag);
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    if let (true, Some(v)) = (ok, &r.value) {
        line(out, v);
    }
}

/// ` k<key>`, with ` b` after a base64 key.
fn meta_key(m: &MetaReply, out: &mut Vec<u8>) {
    out.extend_from_slice(b" k");
    out.extend_from_slice(&m.key);
    if m.base64 {
        out.extend_from_slice(b" b");
    }
}

/// `ME <key> exp=<ttl> la=<secs> cas=<cas> fetch=<yes|no> size=<bytes>`, or `EN`
/// (memcached also prints its slab class, `cls=`, which Baton does not have).
fn debug(m: &MetaReply, d: Option<&McDebug>, out: &mut Vec<u8>) {
    let Some(d) = d else {
        out.extend_from_slice(b"EN\r\n");
        return;
    };
    out.extend_from_slice(b"ME ");
    if m.base64 {
        base64::encode_into(&d.key, out);
    } else {
        out.extend_from_slice(&d.key);
    }
    out.extend_from_slice(b" exp=");
    num(out, d.ttl);
    out.extend_from_slice(b" la=");
    num(out, d.last_access);
    out.extend_from_slice(b" cas=");
    num(out, d.cas);
    out.extend_from_slice(if d.fetched {
        b" fetch=yes"
    } else {
        b" fetch=no"
    });
    out.extend_from_slice(b" size=");
    num(out, d.size);
    out.extend_from_slice(b"\r\n");
}
