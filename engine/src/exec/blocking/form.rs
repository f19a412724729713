//! A blocking command read as its non-blocking form: BLPOP k.. t is LMPOP n k.. LEFT,
//! BLMOVE is LMOVE, BZPOPMIN is ZMPOP .. MIN, and so on. The form runs exactly as the
//! non-blocking command does (same routing, same cross-core transaction, same effects);
//! [`Shape`] turns its reply into the blocking command's.

use bytes::Bytes;

use super::registry::Want;
use crate::command::{lookup, CommandSpec};
use crate::reply::{errors, Reply};

/// How the non-blocking form's reply becomes the blocking command's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// BLPOP, BRPOP: LMPOP's `[key, [element]]` becomes `[key, element]`.
    ListOne,
    /// BZPOPMIN, BZPOPMAX: ZMPOP's `[key, [[member, score]]]` becomes `[key, member, score]`.
    ZsetOne,
    /// BLMPOP, BZMPOP: the same reply.
    Same,
    /// BLMOVE, BRPOPLPUSH: the element, or (inside MULTI) a null bulk.
    Move,
}

/// A parsed blocking command.
#[derive(Debug)]
pub struct Form {
    /// The non-blocking command and its arguments.
    pub spec: &'static CommandSpec,
    pub args: Vec<Bytes>,
    /// The keys it waits for, in argument order, without repeats.
    pub keys: Vec<Bytes>,
    pub want: Want,
    pub shape: Shape,
    /// Milliseconds to wait; 0 waits for ever.
    pub timeout_ms: u64,
}

impl Form {
    /// The blocking command's reply, from the non-blocking form's.
    pub fn reply(&self, r: Reply) -> Reply {
        match (self.shape, r) {
            (Shape::ListOne, Reply::Array(mut v)) if v.len() == 2 => match v.pop() {
                Some(Reply::Array(mut elems)) if !elems.is_empty() => {
                    let key = v.pop().unwrap_or(Reply::Nil);
                    Reply::Array(vec![key, elems.swap_remove(0)])
                }
                other => Reply::Array(v.into_iter().chain(other).collect()),
            },
            (Shape::ZsetOne, Reply::Array(mut v)) if v.len() == 2 => match v.pop() {
                Some(Reply::Array(mut pairs)) if !pairs.is_empty() => {
                    let key = v.pop().unwrap_or(Reply::Nil);
                    match pairs.swap_remove(0) {
                        Reply::Array(ms) => Reply::Array(std::iter::once(key).chain(ms).collect()),
                        other => Reply::Array(vec![key, other]),
                    }
                }
                other => Reply::Array(v.into_iter().chain(other).collect()),
            },
            (_, r) => r,
        }
    }

    /// The reply when nothing came in time: a null array, for every blocking command.
    pub fn timed_out(&self) -> Reply {
        Reply::NilArray
    }

    /// The reply of a blocking command that found nothing inside MULTI (where it does
    /// not block): the non-blocking form's null, as a null bulk for BLMOVE and BRPOPLPUSH.
    pub fn empty_in_multi(&self) -> Reply {
        match self.shape {
            Shape::Move => Reply::Nil,
            _ => Reply::NilArray,
        }
    }
}

/// Whether a reply means "nothing to pop".
pub fn is_empty(r: &Reply) -> bool {
    matches!(r, Reply::Nil | Reply::NilArray)
}

/// A blocking command's timeout in seconds (a double), as milliseconds (0 = for ever),
/// with Redis 7.0's errors. A value whose milliseconds do not fit a signed 64-bit integer
/// (`inf`, `1e20`) is "negative", as Redis 7.0 finds it after its conversion overflows.
pub fn parse_timeout(b: &[u8]) -> Result<u64, Reply> {
    const NOT_FLOAT: Reply = Reply::err("ERR timeout is not a float or out of range");
    const NEGATIVE: Reply = Reply::err("ERR timeout is negative");
    let s = std::str::from_utf8(b).map_err(|_| NOT_FLOAT)?;
    // strtold's syntax without its leading spaces (Redis refuses those): digits, a dot,
    // an exponent, inf/infinity. Rust's parser accepts the same, and "nan", refused below.
    if s.is_empty() || s.len() > 256 || s.bytes().any(|c| c.is_ascii_whitespace()) {
        return Err(NOT_FLOAT);
    }
    let v: f64 = s.parse().map_err(|_| NOT_FLOAT)?;
    if v.is_nan() {
        return Err(NOT_FLOAT);
    }
    let ms = (v * 1000.0).ceil();
    // NaN was refused above, so this catches +inf and everything from 2^63 up.
    if ms >= i64::MAX as f64 || ms < 0.0 {
        return Err(NEGATIVE);
    }
    Ok(ms as u64)
}

fn word(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

/// Whether `b` is LEFT or RIGHT.
fn is_side(b: &[u8]) -> bool {
    b.eq_ignore_ascii_case(b"left") || b.eq_ignore_ascii_case(b"right")
}

fn unique(keys: impl IntoIterator<Item = Bytes>) -> Vec<Bytes> {
    let mut out: Vec<Bytes> = Vec::new();
    for k in keys {
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

/// Whether `name` is one of the blocking commands this module serves.
pub fn is_blocking(name: &str) -> bool {
    matches!(
        name,
        "blpop" | "brpop" | "blmove" | "brpoplpush" | "blmpop" | "bzpopmin" | "bzpopmax" | "bzmpop"
    )
}

/// Reads a blocking command (arity checked by the table) as its non-blocking form.
/// Errors are Redis's, in Redis's order (BLMOVE's sides before the timeout; the rest of
/// BLMPOP's and BZMPOP's arguments are checked by LMPOP and ZMPOP when they run).
pub fn parse(args: &[Bytes]) -> Result<Form, Reply> {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let spec_of =
        |n: &str| lookup(n.as_bytes()).ok_or_else(|| errors::unknown_command(&args[0], &args[1..]));
    let last = args.len() - 1;
    let (spec, fargs, want, shape, timeout) = match name.as_str() {
        "blpop" | "brpop" | "bzpopmin" | "bzpopmax" => {
            let timeout = parse_timeout(&args[last])?;
            let keys = &args[1..last];
            let list = name.starts_with("bl") || name == "brpop";
            let mut f = Vec::with_capacity(keys.len() + 3);
            f.push(word(if list { "LMPOP" } else { "ZMPOP" }));
            f.push(Bytes::from(keys.len().to_string()));
            f.extend_from_slice(keys);
            f.push(word(match name.as_str() {
                "blpop" => "LEFT",
                "brpop" => "RIGHT",
                "bzpopmin" => "MIN",
                _ => "MAX",
            }));
            let (spec, want, shape) = if list {
                (spec_of("lmpop")?, Want::List, Shape::ListOne)
            } else {
                (spec_of("zmpop")?, Want::Zset, Shape::ZsetOne)
            };
            (spec, f, want, shape, timeout)
        }
        "blmove" => {
            if !is_side(&args[3]) || !is_side(&args[4]) {
                return Err(errors::SYNTAX);
            }
            let timeout = parse_timeout(&args[5])?;
            let f = vec![
                word("LMOVE"),
                args[1].clone(),
                args[2].clone(),
                args[3].clone(),
                args[4].clone(),
            ];
            (spec_of("lmove")?, f, Want::List, Shape::Move, timeout)
        }
        "brpoplpush" => {
            let timeout = parse_timeout(&args[3])?;
            let f = vec![word("RPOPLPUSH"), args[1].clone(), args[2].clone()];
            (spec_of("rpoplpush")?, f, Want::List, Shape::Move, timeout)
        }
        "blmpop" | "bzmpop" => {
            let timeout = parse_timeout(&args[1])?;
            let list = name == "blmpop";
            let mut f = Vec::with_capacity(args.len() - 1);
            f.push(word(if list { "LMPOP" } else { "ZMPOP" }));
            f.extend_from_slice(&args[2..]);
            let (spec, want) = if list {
                (spec_of("lmpop")?, Want::List)
            } else {
                (spec_of("zmpop")?, Want::Zset)
            };
            (spec, f, want, Shape::Same, timeout)
        }
        _ => return Err(errors::unknown_command(&args[0], &args[1..])),
    };
    // The keys it pops from (BLMOVE's destination is not waited for).
    let positions = spec.keys_in(&fargs);
    let waited = match shape {
        Shape::Move => positions.into_iter().take(1).collect::<Vec<_>>(),
        _ => positions,
    };
    let keys = unique(waited.into_iter().map(|i| fargs[i].clone()));
    Ok(Form {
        spec,
        args: fargs,
        keys,
        want,
        shape,
        timeout_ms: timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::args;

    fn err_text(r: Result<Form, Reply>) -> String {
        match r {
            Err(Reply::Error(e)) => String::from_utf8_lossy(&e).into_owned(),
            Err(other) => panic!("not an error: {other:?}"),
            Ok(f) => panic!("parsed: {f:?}"),
        }
    }

    #[test]
    fn timeouts_parse_as_redis_7_0() {
        assert_eq!(parse_timeout(b"0"), Ok(0));
        assert_eq!(parse_timeout(b"1"), Ok(1000));
        assert_eq!(parse_timeout(b"0.0001"), Ok(1));
        assert_eq!(parse_timeout(b"1.5"), Ok(1500));
        assert_eq!(parse_timeout(b"-0"), Ok(0));
        let nf = Reply::err("ERR timeout is not a float or out of range");
        let neg = Reply::err("ERR timeout is negative");
        for bad in ["abc", "", " 1", "1 ", "nan", "1e3x", "1,5"] {
            assert_eq!(parse_timeout(bad.as_bytes()), Err(nf.clone()), "{bad:?}");
        }
        for bad in ["-1", "-0.5", "inf", "-inf", "1e20"] {
            assert_eq!(parse_timeout(bad.as_bytes()), Err(neg.clone()), "{bad:?}");
        }
        assert_eq!(parse_timeout(&[0xff, 0xfe]), Err(nf));
    }

    #[test]
    fn forms_and_replies() {
        let f = parse(&args(&["BLPOP", "a", "b", "a", "1.5"])).unwrap();
        assert_eq!(f.spec.name, "lmpop");
        assert_eq!(f.args, args(&["LMPOP", "3", "a", "b", "a", "LEFT"]));
        assert_eq!(f.keys, args(&["a", "b"]));
        assert_eq!(f.timeout_ms, 1500);
        let lm = Reply::Array(vec![Reply::bulk("a"), Reply::Array(vec![Reply::bulk("x")])]);
        assert_eq!(
            f.reply(lm),
            Reply::Array(vec![Reply::bulk("a"), Reply::bulk("x")])
        );
        assert_eq!(f.empty_in_multi(), Reply::NilArray);

        let z = parse(&args(&["BZPOPMAX", "z", "0"])).unwrap();
        assert_eq!(z.args, args(&["ZMPOP", "1", "z", "MAX"]));
        assert_eq!(z.want, Want::Zset);
        let zm = Reply::Array(vec![
            Reply::bulk("z"),
            Reply::Array(vec![Reply::Array(vec![
                Reply::bulk("m"),
                Reply::Double(2.0),
            ])]),
        ]);
        assert_eq!(
            z.reply(zm),
            Reply::Array(vec![Reply::bulk("z"), Reply::bulk("m"), Reply::Double(2.0)])
        );

        let m = parse(&args(&["BLMOVE", "s", "d", "left", "RIGHT", "0"])).unwrap();
        assert_eq!(m.args, args(&["LMOVE", "s", "d", "left", "RIGHT"]));
        assert_eq!(m.keys, args(&["s"]), "the destination is not waited for");
        assert_eq!(m.empty_in_multi(), Reply::Nil);
        let b = parse(&args(&["BRPOPLPUSH", "s", "d", "0"])).unwrap();
        assert_eq!(b.args, args(&["RPOPLPUSH", "s", "d"]));

        let lmp = parse(&args(&[
            "BLMPOP", "0", "2", "a", "b", "RIGHT", "COUNT", "3",
        ]))
        .unwrap();
        assert_eq!(
            lmp.args,
            args(&["LMPOP", "2", "a", "b", "RIGHT", "COUNT", "3"])
        );
        assert_eq!(lmp.keys, args(&["a", "b"]));
        let zmp = parse(&args(&["BZMPOP", "0", "1", "z", "MIN"])).unwrap();
        assert_eq!(zmp.args, args(&["ZMPOP", "1", "z", "MIN"]));
        assert_eq!(zmp.keys, args(&["z"]));
    }

    #[test]
    fn errors_come_in_redis_order() {
        assert_eq!(
            err_text(parse(&args(&["BLMOVE", "a", "b", "LEFT", "x", "y"]))),
            "ERR syntax error"
        );
        assert_eq!(
            err_text(parse(&args(&["BLMOVE", "a", "b", "LEFT", "LEFT", "y"]))),
            "ERR timeout is not a float or out of range"
        );
        assert_eq!(
            err_text(parse(&args(&["BLMPOP", "x", "1", "a", "LEFT"]))),
            "ERR timeout is not a float or out of range"
        );
        assert_eq!(
            err_text(parse(&args(&["BLPOP", "k", "-1"]))),
            "ERR timeout is negative"
        );
        // A bad numkeys is LMPOP's to refuse: no keys to wait for.
        let f = parse(&args(&["BLMPOP", "0", "0", "a", "LEFT"])).unwrap();
        assert!(f.keys.is_empty());
    }

    quickcheck::quickcheck! {
        /// Any bytes are a timeout or one of Redis's two errors, never a panic; what
        /// parses is the milliseconds of a finite, non-negative number.
        fn any_timeout_bytes_parse_or_fail_cleanly(b: Vec<u8>) -> bool {
            match parse_timeout(&b) {
                Ok(ms) => std::str::from_utf8(&b)
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                    .is_some_and(|v| v.is_finite() && (v * 1000.0).ceil() == ms as f64),
                Err(Reply::Error(e)) => {
                    &e[..] == b"ERR timeout is not a float or out of range"
                        || &e[..] == b"ERR timeout is negative"
                }
                Err(_) => false,
            }
        }

        /// Any argument list of a blocking command parses or fails with an error reply.
        fn any_arguments_parse_or_fail_cleanly(name: u8, rest: Vec<Vec<u8>>) -> bool {
            let names = ["BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP"];
            let mut a = vec![Bytes::from_static(names[name as usize % names.len()].as_bytes())];
            a.extend(rest.into_iter().take(8).map(Bytes::from));
            if !lookup(&a[0]).is_some_and(|s| s.arity_ok(a.len())) {
                return true;
            }
            match parse(&a) {
                Ok(f) => f.keys.len() < a.len(),
                Err(r) => r.is_error(),
            }
        }
    }

    /// No input panics or allocates with its numbers: random argument lists.
    #[test]
    fn random_arguments_never_panic() {
        let words = [
            "BLPOP",
            "BRPOP",
            "BLMOVE",
            "BRPOPLPUSH",
            "BLMPOP",
            "BZPOPMIN",
            "BZPOPMAX",
            "BZMPOP",
            "0",
            "1",
            "-1",
            "99999999999999999999",
            "1e308",
            "nan",
            "inf",
            "LEFT",
            "RIGHT",
            "MIN",
            "MAX",
            "COUNT",
            "k",
            "",
            "\u{ff}",
            "2",
            "-0.0",
            "0x10",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let n = 2 + (next() % 7) as usize;
            let mut a: Vec<&str> = (0..n)
                .map(|_| words[(next() % words.len() as u64) as usize])
                .collect();
            a[0] = words[(next() % 8) as usize];
            let spec = lookup(a[0].as_bytes());
            if spec.is_some_and(|s| !s.arity_ok(a.len())) {
                continue;
            }
            if let Ok(f) = parse(&args(&a)) {
                assert!(f.keys.len() < a.len());
                let _ = f.spec.keys_in(&f.args);
            }
        }
    }
}
