//! SLOWLOG: commands that ran for at least `slowlog-log-slower-than` microseconds.
//!
//! Each core logs the commands of its own connections (client address and name are at
//! hand there) in its [`SlowLog`] (a field of the core's `NetCore`) and keeps at most
//! `slowlog-max-len` entries. Entry ids come from one process-wide counter, so they are
//! unique and ordered across cores: SLOWLOG GET (in `crate::admin`) merges the cores' logs
//! newest first, and the log as a whole is the `slowlog-max-len` newest entries of all
//! cores. Arguments are stored as Redis stores them: at most 32 (the last
//! one then says how many more there were), each cut at 128 bytes, secrets redacted.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use baton_engine::reply::Reply;
use bytes::Bytes;

use crate::client::Client;
use crate::config::Shared;

/// Redis's SLOWLOG_ENTRY_MAX_ARGC and SLOWLOG_ENTRY_MAX_STRING.
const MAX_ARGS: usize = 32;
const MAX_ARG_BYTES: usize = 128;
/// SLOWLOG GET without a count.
pub const DEFAULT_COUNT: usize = 10;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// One logged command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: u64,
    /// Unix seconds when it was logged.
    pub time: u64,
    pub micros: u64,
    pub args: Vec<Bytes>,
    /// `ip:port` of the client.
    pub addr: String,
    pub name: Bytes,
}

impl Entry {
    pub fn reply(&self) -> Reply {
        Reply::Array(vec![
            Reply::Int(self.id as i64),
            Reply::Int(self.time as i64),
            Reply::Int(self.micros.min(i64::MAX as u64) as i64),
            Reply::Array(self.args.iter().cloned().map(Reply::Bulk).collect()),
            Reply::Bulk(Bytes::from(self.addr.clone())),
            Reply::Bulk(self.name.clone()),
        ])
    }
}

/// One core's slow log, newest entry first.
#[derive(Debug, Default)]
pub struct SlowLog {
    entries: RefCell<VecDeque<Entry>>,
}

impl SlowLog {
    /// Logs a command of `client` that ran for `micros`, keeping at most
    /// `slowlog-max-len` entries.
    #[cold]
    pub fn push(&self, shared: &Shared, client: &Client, args: &[Bytes], micros: u64) {
        let (addr, name) = {
            let st = client.borrow();
            (
                client.conn.peer.map(|a| a.to_string()).unwrap_or_default(),
                st.name.clone().unwrap_or_default(),
            )
        };
        let entry = Entry {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            micros,
            args: logged_args(args),
            addr,
            name,
        };
        let mut entries = self.entries.borrow_mut();
        entries.push_front(entry);
        entries.truncate(max_len(shared));
    }

    /// The newest `count` entries.
    pub fn newest(&self, count: usize) -> Vec<Entry> {
        self.entries.borrow().iter().take(count).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.borrow().is_empty()
    }

    pub fn clear(&self) {
        self.entries.borrow_mut().clear();
    }
}

/// `slowlog-max-len`.
pub fn max_len(shared: &Shared) -> usize {
    shared
        .settings
        .slowlog_max_len
        .load(Ordering::Relaxed)
        .min(usize::MAX as u64) as usize
}

/// The arguments as the log keeps them: redacted, at most 32, each cut at 128 bytes.
/// Copies, so an entry never pins a connection's read buffer.
pub fn logged_args(args: &[Bytes]) -> Vec<Bytes> {
    let redacted = redacted_positions(args);
    let kept = args.len().min(MAX_ARGS);
    let mut out = Vec::with_capacity(kept);
    for (i, a) in args.iter().take(kept).enumerate() {
        if kept < args.len() && i == kept - 1 {
            out.push(Bytes::from(format!(
                "... ({} more arguments)",
                args.len() - kept + 1
            )));
        } else if redacted.contains(&i) {
            out.push(Bytes::from_static(b"(redacted)"));
        } else if a.len() > MAX_ARG_BYTES {
            let mut s = a[..MAX_ARG_BYTES].to_vec();
            s.extend_from_slice(format!("... ({} more bytes)", a.len() - MAX_ARG_BYTES).as_bytes());
            out.push(Bytes::from(s));
        } else {
            out.push(Bytes::copy_from_slice(a));
        }
    }
    out
}

/// Arguments that must not reach the log, as Redis redacts them: passwords of AUTH and
/// HELLO ... AUTH, and values of sensitive CONFIG SET parameters.
fn redacted_positions(args: &[Bytes]) -> Vec<usize> {
    let is = |i: usize, s: &str| {
        args.get(i)
            .is_some_and(|a| a.eq_ignore_ascii_case(s.as_bytes()))
    };
    if is(0, "auth") {
        return (1..args.len()).collect();
    }
    if is(0, "hello") {
        let mut out = Vec::new();
        let mut i = 2;
        while i < args.len() {
            if is(i, "auth") && i + 2 < args.len() {
                out.extend([i + 1, i + 2]);
                i += 3;
            } else {
                i += 1;
            }
        }
        return out;
    }
    if is(0, "config") && is(1, "set") {
        return (2..args.len())
            .step_by(2)
            .filter(|&i| crate::config_command::is_sensitive(&args[i]))
            .map(|i| i + 1)
            .filter(|&i| i < args.len())
            .collect();
    }
    Vec::new()
}

/// SLOWLOG HELP
pub fn help() -> Reply {
    let lines = [
        "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN",
        "    Return the length of the slowlog.",
        "RESET",
        "    Reset the slowlog.",
        "HELP",
        "    Prints this help.",
    ];
    Reply::help_lines(&lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::from(s.to_string())
    }

    #[test]
    fn long_arguments_are_cut_like_redis() {
        let long = "x".repeat(200);
        let got = logged_args(&[b("set"), b("k"), b(&long)]);
        assert_eq!(got[..2], [b("set"), b("k")]);
        assert_eq!(
            got[2],
            b(&format!("{}... (72 more bytes)", "x".repeat(128)))
        );
        let exact = "y".repeat(128);
        assert_eq!(logged_args(&[b(&exact)]), vec![b(&exact)]);
    }

    #[test]
    fn many_arguments_end_with_a_count() {
        let args: Vec<Bytes> = (0..40).map(|i| b(&i.to_string())).collect();
        let got = logged_args(&args);
        assert_eq!(got.len(), 32);
        assert_eq!(got[30], b("30"));
        assert_eq!(got[31], b("... (9 more arguments)"));
        let args: Vec<Bytes> = (0..32).map(|i| b(&i.to_string())).collect();
        assert_eq!(logged_args(&args), args, "32 arguments fit");
        assert!(logged_args(&[]).is_empty());
    }

    #[test]
    fn secrets_are_redacted() {
        let r = |v: &[&str]| logged_args(&v.iter().map(|s| b(s)).collect::<Vec<_>>());
        assert_eq!(
            r(&["AUTH", "user", "pw"]),
            vec![b("AUTH"), b("(redacted)"), b("(redacted)")]
        );
        assert_eq!(
            r(&["hello", "3", "AUTH", "u", "p", "SETNAME", "n"]),
            vec![
                b("hello"),
                b("3"),
                b("AUTH"),
                b("(redacted)"),
                b("(redacted)"),
                b("SETNAME"),
                b("n")
            ]
        );
        assert_eq!(
            r(&["config", "set", "maxclients", "5", "requirepass", "pw"]),
            vec![
                b("config"),
                b("set"),
                b("maxclients"),
                b("5"),
                b("requirepass"),
                b("(redacted)")
            ]
        );
        assert_eq!(r(&["config", "set", "requirepass"]).len(), 3);
    }
}
