//! Database commands that run on every shard: DBSIZE, FLUSHDB, FLUSHALL. The server sums
//! DBSIZE over cores and answers OK for a flush once every core has flushed.

use bytes::Bytes;

use super::is_opt;
use crate::reply::{errors, Reply};
use crate::shard::Shard;

/// DBSIZE: keys held, expired-but-unreclaimed ones included, as Redis counts them.
pub fn dbsize(s: &mut Shard, _a: &[Bytes], _now: u64) -> Reply {
    Reply::Int(s.len() as i64)
}

/// FLUSHDB / FLUSHALL [ASYNC | SYNC]. Both flush synchronously: a shard's flush drops
/// its table in one go, which is what ASYNC would defer.
fn flush_generic(s: &mut Shard, a: &[Bytes]) -> Reply {
    match a.len() {
        1 => {}
        2 if is_opt(&a[1], "ASYNC") || is_opt(&a[1], "SYNC") => {}
        _ => return errors::SYNTAX,
    }
    s.flush();
    Reply::Ok
}

/// FLUSHDB [ASYNC | SYNC]
pub fn flushdb(s: &mut Shard, a: &[Bytes], _now: u64) -> Reply {
    flush_generic(s, a)
}

/// FLUSHALL [ASYNC | SYNC]
pub fn flushall(s: &mut Shard, a: &[Bytes], _now: u64) -> Reply {
    flush_generic(s, a)
}

#[cfg(test)]
mod tests {
    use crate::commands::{err, run};
    use crate::reply::Reply;
    use crate::Shard;

    #[test]
    fn dbsize_counts_keys() {
        let mut s = Shard::new(0);
        assert_eq!(run(&mut s, &["DBSIZE"], 1), Reply::Int(0));
        run(&mut s, &["MSET", "a", "1", "b", "2"], 1);
        run(&mut s, &["PEXPIRE", "b", "10"], 1);
        assert_eq!(run(&mut s, &["DBSIZE"], 1), Reply::Int(2));
        assert_eq!(
            run(&mut s, &["DBSIZE"], 20),
            Reply::Int(2),
            "unreclaimed keys count"
        );
        run(&mut s, &["GET", "b"], 20);
        assert_eq!(run(&mut s, &["DBSIZE"], 20), Reply::Int(1));
        assert_eq!(
            run(&mut s, &["DBSIZE", "x"], 20),
            err("ERR wrong number of arguments for 'dbsize' command")
        );
    }

    #[test]
    fn flush_variants() {
        for opt in [None, Some("ASYNC"), Some("sync"), Some("Async")] {
            for cmd in ["FLUSHDB", "FLUSHALL"] {
                let mut s = Shard::new(0);
                run(&mut s, &["MSET", "a", "1", "b", "2"], 1);
                run(&mut s, &["EXPIRE", "a", "10"], 1);
                let mut words = vec![cmd];
                words.extend(opt);
                assert_eq!(run(&mut s, &words, 1), Reply::Ok, "{words:?}");
                assert_eq!((s.len(), s.expires()), (0, 0));
                assert_eq!(run(&mut s, &["GET", "a"], 1), Reply::Nil);
            }
        }
    }

    #[test]
    fn flush_syntax_errors_keep_data() {
        let mut s = Shard::new(0);
        run(&mut s, &["SET", "a", "1"], 1);
        for words in [
            &["FLUSHDB", "NOW"][..],
            &["FLUSHALL", "ASYNC", "SYNC"],
            &["FLUSHDB", "SYNC", "x"],
        ] {
            assert_eq!(run(&mut s, words, 1), err("ERR syntax error"), "{words:?}");
        }
        assert_eq!(s.len(), 1);
    }
}
