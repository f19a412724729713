//! LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]
//!
//! The longest common subsequence by the classic dynamic programme, with Redis 7's reply
//! shapes: the LCS string, its length (LEN), or a map of `matches` and `len` (IDX) whose
//! matches are listed from the end of the strings backwards, as Redis lists them.
//!
//! [`lcs_reply`] is pure so the server can run it over two values fetched from different
//! cores; the handler [`lcs`] runs it when both keys live on one shard.

use bytes::Bytes;

use super::{int_arg, is_opt};
use crate::reply::{errors, Reply};
use crate::shard::{Shard, DEFAULT_MAX_VALUE_LEN};

/// Parsed LCS options.
#[derive(Debug, Default, PartialEq, Eq)]
struct LcsOpts {
    idx: bool,
    len: bool,
    with_match_len: bool,
    min_match_len: u64,
}

fn parse_opts(opts: &[Bytes]) -> Result<LcsOpts, Reply> {
    let mut o = LcsOpts::default();
    let mut i = 0;
    while i < opts.len() {
        let opt = &opts[i];
        if is_opt(opt, "IDX") {
            o.idx = true;
        } else if is_opt(opt, "LEN") {
            o.len = true;
        } else if is_opt(opt, "WITHMATCHLEN") {
            o.with_match_len = true;
        } else if is_opt(opt, "MINMATCHLEN") && i + 1 < opts.len() {
            o.min_match_len = int_arg(&opts[i + 1])?.max(0) as u64;
            i += 1;
        } else {
            return Err(errors::SYNTAX);
        }
        i += 1;
    }
    if o.idx && o.len {
        return Err(Reply::err(
            "ERR If you want both the length and indexes, please just use IDX.",
        ));
    }
    Ok(o)
}

/// The LCS reply for two values (an absent key is an empty string), given the full
/// argument list `LCS key1 key2 [options]`, with Redis's default transient-memory limit.
pub fn lcs_reply(a: &[u8], b: &[u8], args: &[Bytes]) -> Reply {
    lcs_reply_with_limit(a, b, args, DEFAULT_MAX_VALUE_LEN)
}

/// [`lcs_reply`] with the shard's `proto-max-bulk-len` bounding the DP table's bytes.
pub fn lcs_reply_with_limit(a: &[u8], b: &[u8], args: &[Bytes], max_bytes: usize) -> Reply {
    let o = match parse_opts(&args[3.min(args.len())..]) {
        Ok(o) => o,
        Err(e) => return e,
    };
    if a.len() >= u32::MAX as usize - 1 || b.len() >= u32::MAX as usize - 1 {
        return Reply::err("ERR String too long for LCS");
    }
    let cells = (a.len() as u64 + 1) * (b.len() as u64 + 1);
    if cells.saturating_mul(4) > max_bytes as u64 {
        return Reply::err(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        );
    }
    let table = Table::build(a, b);
    let total = table.at(a.len(), b.len());
    if o.len {
        return Reply::Int(total as i64);
    }
    let (string, matches) = table.walk(a, b, &o);
    if !o.idx {
        return Reply::Bulk(Bytes::from(string));
    }
    Reply::Map(vec![
        (Reply::bulk("matches"), Reply::Array(matches)),
        (Reply::bulk("len"), Reply::Int(total as i64)),
    ])
}

/// `LCS(i, j)`: the LCS length of `a[..i]` and `b[..j]`, row-major over `i`.
struct Table {
    cells: Vec<u32>,
    cols: usize,
}

impl Table {
    fn build(a: &[u8], b: &[u8]) -> Table {
        let cols = b.len() + 1;
        let mut cells = vec![0u32; (a.len() + 1) * cols];
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                cells[i * cols + j] = if a[i - 1] == b[j - 1] {
                    cells[(i - 1) * cols + j - 1] + 1
                } else {
                    cells[(i - 1) * cols + j].max(cells[i * cols + j - 1])
                };
            }
        }
        Table { cells, cols }
    }

    fn at(&self, i: usize, j: usize) -> u32 {
        self.cells[i * self.cols + j]
    }

    /// Walks back from the end, collecting the LCS string and (for IDX) the matched
    /// ranges, in the same order and with the same tie-breaking as Redis.
    fn walk(&self, a: &[u8], b: &[u8], o: &LcsOpts) -> (Vec<u8>, Vec<Reply>) {
        let mut out = vec![0u8; self.at(a.len(), b.len()) as usize];
        let mut matches = Vec::new();
        let (mut i, mut j, mut k) = (a.len(), b.len(), out.len());
        // The open range: (a_start, a_end, b_start, b_end), inclusive.
        let mut range: Option<(usize, usize, usize, usize)> = None;
        while i > 0 && j > 0 {
            let mut emit = false;
            if a[i - 1] == b[j - 1] {
                out[k - 1] = a[i - 1];
                k -= 1;
                range = match range {
                    None => Some((i - 1, i - 1, j - 1, j - 1)),
                    // Still contiguous: extend backwards.
                    Some((as_, ae, bs, be)) if as_ == i && bs == j => Some((i - 1, ae, j - 1, be)),
                    Some(r) => {
                        emit = true;
                        Some(r)
                    }
                };
                if let Some((as_, _, bs, _)) = range {
                    emit |= as_ == 0 || bs == 0;
                }
                i -= 1;
                j -= 1;
            } else {
                if self.at(i - 1, j) > self.at(i, j - 1) {
                    i -= 1;
                } else {
                    j -= 1;
                }
                emit = range.is_some();
            }
            if emit {
                if let Some((as_, ae, bs, be)) = range.take() {
                    let len = (ae - as_ + 1) as u64;
                    if o.idx && len >= o.min_match_len {
                        let pair = |s: usize, e: usize| {
                            Reply::Array(vec![Reply::Int(s as i64), Reply::Int(e as i64)])
                        };
                        let mut m = vec![pair(as_, ae), pair(bs, be)];
                        if o.with_match_len {
                            m.push(Reply::Int(len as i64));
                        }
                        matches.push(Reply::Array(m));
                    }
                }
            }
        }
        (out, matches)
    }
}

/// Redis's LCS answer when a key holds another type.
pub const NOT_STRINGS: &str = "ERR The specified keys must contain string values";

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN min-match-len] [WITHMATCHLEN]
pub fn lcs(s: &mut Shard, a: &[Bytes], now: u64) -> Reply {
    let limit = s.max_value_len();
    let x = match s
        .lookup_read(&a[1], now)
        .map(|e| e.string().map(<[u8]>::to_vec))
    {
        Some(None) => return Reply::err(NOT_STRINGS),
        x => x.flatten().unwrap_or_default(),
    };
    let y = match s.lookup_read(&a[2], now).map(|e| e.string()) {
        Some(None) => return Reply::err(NOT_STRINGS),
        y => y.flatten().unwrap_or_default(),
    };
    lcs_reply_with_limit(&x, y, a, limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::{bulk, err, run};

    const NOW: u64 = 1_000_000;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    fn range(a: (i64, i64), b: (i64, i64), len: Option<i64>) -> Reply {
        let p = |(s, e)| Reply::Array(vec![Reply::Int(s), Reply::Int(e)]);
        let mut v = vec![p(a), p(b)];
        v.extend(len.map(Reply::Int));
        Reply::Array(v)
    }

    fn idx_map(matches: Vec<Reply>, len: i64) -> Reply {
        Reply::Map(vec![
            (bulk("matches"), Reply::Array(matches)),
            (bulk("len"), Reply::Int(len)),
        ])
    }

    #[test]
    fn redis_doc_examples() {
        let mut s = Shard::new(0);
        run(
            &mut s,
            &["MSET", "key1", "ohmytext", "key2", "mynewtext"],
            NOW,
        );
        assert_eq!(run(&mut s, &["LCS", "key1", "key2"], NOW), bulk("mytext"));
        assert_eq!(
            run(&mut s, &["LCS", "key1", "key2", "LEN"], NOW),
            Reply::Int(6)
        );
        assert_eq!(
            run(&mut s, &["LCS", "key1", "key2", "IDX"], NOW),
            idx_map(
                vec![range((4, 7), (5, 8), None), range((2, 3), (0, 1), None)],
                6
            )
        );
        assert_eq!(
            run(
                &mut s,
                &["LCS", "key1", "key2", "IDX", "MINMATCHLEN", "4"],
                NOW
            ),
            idx_map(vec![range((4, 7), (5, 8), None)], 6)
        );
        assert_eq!(
            run(
                &mut s,
                &[
                    "LCS",
                    "key1",
                    "key2",
                    "IDX",
                    "MINMATCHLEN",
                    "4",
                    "WITHMATCHLEN"
                ],
                NOW
            ),
            idx_map(vec![range((4, 7), (5, 8), Some(4))], 6)
        );
        assert_eq!(
            run(
                &mut s,
                &[
                    "LCS",
                    "key1",
                    "key2",
                    "idx",
                    "withmatchlen",
                    "minmatchlen",
                    "-3"
                ],
                NOW
            ),
            idx_map(
                vec![
                    range((4, 7), (5, 8), Some(4)),
                    range((2, 3), (0, 1), Some(2))
                ],
                6
            )
        );
    }

    #[test]
    fn empty_and_missing_keys() {
        let mut s = Shard::new(0);
        run(&mut s, &["SET", "a", "abc"], NOW);
        assert_eq!(run(&mut s, &["LCS", "a", "nope"], NOW), bulk(""));
        assert_eq!(
            run(&mut s, &["LCS", "nope", "a", "LEN"], NOW),
            Reply::Int(0)
        );
        assert_eq!(
            run(&mut s, &["LCS", "a", "nope", "IDX"], NOW),
            idx_map(vec![], 0)
        );
        assert_eq!(run(&mut s, &["LCS", "a", "a"], NOW), bulk("abc"));
        assert_eq!(
            lcs_reply(
                b"abc",
                b"xbz",
                &args(&["LCS", "k1", "k2", "IDX", "WITHMATCHLEN"])
            ),
            idx_map(vec![range((1, 1), (1, 1), Some(1))], 1)
        );
    }

    #[test]
    fn errors() {
        let mut s = Shard::new(0);
        run(&mut s, &["MSET", "a", "abc", "b", "abd"], NOW);
        assert_eq!(
            run(&mut s, &["LCS", "a", "b", "LEN", "IDX"], NOW),
            err("ERR If you want both the length and indexes, please just use IDX.")
        );
        assert_eq!(
            run(&mut s, &["LCS", "a", "b", "FOO"], NOW),
            err("ERR syntax error")
        );
        assert_eq!(
            run(&mut s, &["LCS", "a", "b", "MINMATCHLEN"], NOW),
            err("ERR syntax error")
        );
        assert_eq!(
            run(&mut s, &["LCS", "a", "b", "MINMATCHLEN", "x"], NOW),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(
            run(&mut s, &["LCS", "a"], NOW),
            err("ERR wrong number of arguments for 'lcs' command")
        );
        // (3 + 1) * (3 + 1) cells of 4 bytes.
        s.set_max_value_len(63);
        assert_eq!(
            run(&mut s, &["LCS", "a", "b"], NOW),
            err("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
        );
        s.set_max_value_len(64);
        assert_eq!(run(&mut s, &["LCS", "a", "b"], NOW), bulk("ab"));
    }

    /// Brute force over all subsequences of `a` for small inputs: the DP's length and
    /// the string it returns must be a common subsequence of maximal length.
    #[test]
    fn agrees_with_brute_force() {
        fn is_subseq(s: &[u8], t: &[u8]) -> bool {
            let mut it = t.iter();
            s.iter().all(|c| it.any(|d| d == c))
        }
        let mut seed = 0x1234_5678u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200 {
            let a: Vec<u8> = (0..next() % 9)
                .map(|_| b"abc"[(next() % 3) as usize])
                .collect();
            let b: Vec<u8> = (0..next() % 9)
                .map(|_| b"abc"[(next() % 3) as usize])
                .collect();
            let best = (0u32..1 << a.len())
                .map(|m| {
                    (0..a.len())
                        .filter(|i| m >> i & 1 == 1)
                        .map(|i| a[i])
                        .collect::<Vec<_>>()
                })
                .filter(|sub| is_subseq(sub, &b))
                .map(|sub| sub.len())
                .max()
                .unwrap();
            let Reply::Bulk(got) = lcs_reply(&a, &b, &args(&["LCS", "x", "y"])) else {
                panic!("bulk expected");
            };
            assert_eq!(got.len(), best, "{a:?} {b:?}");
            assert!(is_subseq(&got, &a) && is_subseq(&got, &b));
            // IDX ranges: equal substrings, walking backwards, lengths adding up to LEN.
            let r = lcs_reply(&a, &b, &args(&["LCS", "x", "y", "IDX", "WITHMATCHLEN"]));
            let Reply::Map(kv) = r else {
                panic!("map expected")
            };
            let Reply::Array(ms) = &kv[0].1 else {
                panic!("array expected")
            };
            assert_eq!(kv[1].1, Reply::Int(best as i64));
            let mut total = 0;
            let (mut last_a, mut last_b) = (usize::MAX, usize::MAX);
            for m in ms {
                let Reply::Array(m) = m else { panic!() };
                let n = |r: &Reply, i: usize| match r {
                    Reply::Array(p) => match p[i] {
                        Reply::Int(x) => x as usize,
                        _ => panic!(),
                    },
                    _ => panic!(),
                };
                let (as_, ae, bs, be) = (n(&m[0], 0), n(&m[0], 1), n(&m[1], 0), n(&m[1], 1));
                assert_eq!(a[as_..=ae], b[bs..=be]);
                assert_eq!(m[2], Reply::Int((ae - as_ + 1) as i64));
                assert!(ae < last_a && be < last_b, "ranges walk backwards");
                (last_a, last_b) = (as_, bs);
                total += ae - as_ + 1;
            }
            assert_eq!(total, best);
        }
    }
}
