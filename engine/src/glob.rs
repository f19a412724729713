//! Redis's glob-style pattern matching (`stringmatchlen`), used by KEYS, SCAN MATCH and
//! CONFIG GET. Pure: bytes in, bool out.
//!
//! Syntax:
//! - `?` matches one byte, `*` any run of bytes (including none);
//! - `[abc]` one byte of the set, `[^abc]` one byte not in it, `[a-z]` a range (the
//!   ends may come in either order), `\x` inside a class is a literal `x`;
//! - `\x` outside a class is a literal `x`;
//! - an unterminated class (`[ab`) runs to the end of the pattern, as in Redis;
//! - as in Redis, an empty text matches only the empty pattern (not even `*`): callers
//!   treat a lone `*` as "everything" before matching.
//!
//! Bytes compare as unsigned values (Redis compares C `char`s, signed on x86, which only
//! differs for ranges with an end above 0x7f).

/// How deep `*` may recurse before a pattern is refused (Redis's guard against abusive
/// patterns such as `a*a*a*...`).
const MAX_NESTING: usize = 1000;

/// Whether `text` matches `pattern`, case-sensitively.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    Matcher { nocase: false }.matches(pattern, text)
}

/// Whether `text` matches `pattern`, ignoring ASCII case (CONFIG GET).
pub fn glob_match_nocase(pattern: &[u8], text: &[u8]) -> bool {
    Matcher { nocase: true }.matches(pattern, text)
}

struct Matcher {
    nocase: bool,
}

/// The outcome of matching a pattern suffix against a text suffix.
#[derive(PartialEq, Eq)]
enum Outcome {
    Match,
    NoMatch,
    /// No match, and no later start of the text can match either: a `*` further out
    /// need not try longer runs (Redis's `skipLongerMatches`).
    NoMatchAnywhere,
}

impl Matcher {
    fn fold(&self, c: u8) -> u8 {
        if self.nocase {
            c.to_ascii_lowercase()
        } else {
            c
        }
    }

    fn eq(&self, a: u8, b: u8) -> bool {
        self.fold(a) == self.fold(b)
    }

    fn matches(&self, pattern: &[u8], text: &[u8]) -> bool {
        self.match_from(pattern, text, 0) == Outcome::Match
    }

    fn match_from(&self, mut p: &[u8], mut t: &[u8], nesting: usize) -> Outcome {
        if nesting > MAX_NESTING {
            return Outcome::NoMatch;
        }
        while !p.is_empty() && !t.is_empty() {
            match p[0] {
                b'*' => {
                    while p.len() > 1 && p[1] == b'*' {
                        p = &p[1..];
                    }
                    if p.len() == 1 {
                        return Outcome::Match;
                    }
                    while !t.is_empty() {
                        match self.match_from(&p[1..], t, nesting + 1) {
                            Outcome::Match => return Outcome::Match,
                            Outcome::NoMatchAnywhere => return Outcome::NoMatchAnywhere,
                            Outcome::NoMatch => t = &t[1..],
                        }
                    }
                    // The rest of the pattern matched no suffix of the text: an earlier
                    // `*` taking more bytes cannot help either.
                    return Outcome::NoMatchAnywhere;
                }
                b'?' => t = &t[1..],
                b'[' => {
                    let (matched, last) = self.class(p, t[0]);
                    if !matched {
                        return Outcome::NoMatch;
                    }
                    t = &t[1..];
                    // The class's last byte is consumed by the step below.
                    p = &p[last..];
                }
                b'\\' if p.len() >= 2 => {
                    p = &p[1..];
                    if !self.eq(p[0], t[0]) {
                        return Outcome::NoMatch;
                    }
                    t = &t[1..];
                }
                c => {
                    if !self.eq(c, t[0]) {
                        return Outcome::NoMatch;
                    }
                    t = &t[1..];
                }
            }
            p = &p[1..];
            if t.is_empty() {
                while p.first() == Some(&b'*') {
                    p = &p[1..];
                }
                break;
            }
        }
        if p.is_empty() && t.is_empty() {
            Outcome::Match
        } else {
            Outcome::NoMatch
        }
    }

    /// Matches byte `c` against the class that `p` opens (`p[0]` is the `[`). Returns
    /// whether it matched and the index of the class's last byte in `p`: its `]`, or for
    /// an unterminated class the pattern's last byte, as Redis leaves it.
    fn class(&self, p: &[u8], c: u8) -> (bool, usize) {
        let n = p.len();
        let mut i = 1;
        let negate = p.get(i) == Some(&b'^');
        if negate {
            i += 1;
        }
        let mut matched = false;
        loop {
            if n - i >= 2 && p[i] == b'\\' {
                i += 1;
                matched |= p[i] == c;
            } else if i < n && p[i] == b']' {
                break;
            } else if i >= n {
                i -= 1;
                break;
            } else if n - i >= 3 && p[i + 1] == b'-' {
                // Ends are ordered on raw bytes, then folded, as Redis does.
                let (lo, hi) = (p[i].min(p[i + 2]), p[i].max(p[i + 2]));
                matched |= (self.fold(lo)..=self.fold(hi)).contains(&self.fold(c));
                i += 2;
            } else {
                matched |= self.eq(p[i], c);
            }
            i += 1;
        }
        (matched != negate, i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        glob_match(p.as_bytes(), t.as_bytes())
    }

    #[test]
    fn literals_and_wildcards() {
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("abc", "abc"));
        assert!(!m("abc", "abd"));
        assert!(!m("abc", "ab"));
        assert!(!m("ab", "abc"));
        // Redis quirk kept: an empty text matches only the empty pattern (KEYS and SCAN
        // treat a lone "*" as "everything" before matching).
        assert!(!m("*", ""));
        assert!(!m("**", ""));
        assert!(m("*", "anything"));
        assert!(m("a*", "a"));
        assert!(m("a*c", "abbbc"));
        assert!(m("a**c", "ac"));
        assert!(!m("a*c", "abbbd"));
        assert!(m("*a*b*", "xxaxxbxx"));
        assert!(!m("*a*b*", "xxbxxaxx"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(!m("a?", "a"));
        assert!(m("user:*:name", "user:1000:name"));
    }

    #[test]
    fn classes() {
        assert!(m("h[ae]llo", "hallo"));
        assert!(m("h[ae]llo", "hello"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(!m("h[a-b]llo", "hcllo"));
        assert!(m("h[b-a]llo", "hallo"), "reversed range");
        assert!(m("[a-z0-9]", "7"));
        assert!(m("[\\]]", "]"));
        assert!(m("[\\-]", "-"));
        assert!(!m("[^\\]]", "]"));
        // "a-]" reads as the range ']'..='a' and the class is left unterminated.
        assert!(!m("[a-]", "-"));
        assert!(m("[a-]", "_"));
        assert!(!m("[]", "]"), "an empty class matches nothing");
        assert!(!m("[]", "a"));
        assert!(m("[^]", "a"), "an empty negated class matches anything");
        assert!(
            !glob_match_nocase(b"[a-C]", b"b"),
            "swapped raw to C..a, folded to c..a"
        );
        assert!(
            !glob_match_nocase(b"[Z-a]", b"b"),
            "folded ends z..a match nothing"
        );
    }

    #[test]
    fn unterminated_class_runs_to_the_end() {
        // Redis: the class takes the rest of the pattern, then the pattern ends.
        assert!(m("[ab", "a"));
        assert!(m("[ab", "b"));
        assert!(!m("[ab", "c"));
        assert!(!m("[ab", "ab"));
        assert!(!m("x[", "x["), "a bare '[' at the end is an empty class");
        assert!(!m("x[", "xa"));
        assert!(
            m("[^", "z"),
            "an unterminated empty negated class matches anything"
        );
        assert!(m("[^a", "b"));
        assert!(!m("[^a", "a"));
    }

    #[test]
    fn escapes() {
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("a\\?b", "a?b"));
        assert!(!m("a\\?b", "axb"));
        assert!(m("\\[x]", "[x]"));
        assert!(m("a\\", "a\\"), "a trailing backslash is literal");
    }

    #[test]
    fn nocase() {
        assert!(glob_match_nocase(b"MaxMemory*", b"maxmemory-policy"));
        assert!(glob_match_nocase(b"[A-C]x", b"bX"));
        assert!(!glob_match(b"MaxMemory*", b"maxmemory-policy"));
    }

    #[test]
    fn binary_bytes() {
        assert!(glob_match(b"a\xff*", b"a\xff\x00z"));
        assert!(glob_match(b"[\x80-\xff]", b"\x90"));
        assert!(!glob_match(b"[\x80-\xff]", b"\x10"));
    }

    #[test]
    fn abusive_patterns_terminate() {
        let pattern = "a*".repeat(50) + "b";
        let text = "a".repeat(60);
        assert!(!m(&pattern, &text));
        let deep = "*a".repeat(1200);
        assert!(
            !m(&deep, &"a".repeat(1200)),
            "nesting beyond the guard refuses"
        );
        assert!(m(&"*a".repeat(100), &"a".repeat(100)));
    }

    /// A reference matcher by dynamic programming over (pattern, text) positions for
    /// the subset without classes and escapes; both must agree on random inputs.
    #[test]
    fn agrees_with_reference_on_wildcards() {
        fn reference(p: &[u8], t: &[u8]) -> bool {
            if t.is_empty() {
                return p.is_empty();
            }
            let mut dp = vec![vec![false; t.len() + 1]; p.len() + 1];
            dp[p.len()][t.len()] = true;
            for i in (0..p.len()).rev() {
                for j in (0..=t.len()).rev() {
                    dp[i][j] = match p[i] {
                        b'*' => dp[i + 1][j] || (j < t.len() && dp[i][j + 1]),
                        b'?' => j < t.len() && dp[i + 1][j + 1],
                        c => j < t.len() && t[j] == c && dp[i + 1][j + 1],
                    };
                }
            }
            dp[0][0]
        }
        let mut seed = 0x9E37_79B9u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..5000 {
            let p: Vec<u8> = (0..next() % 7)
                .map(|_| b"ab*?"[(next() % 4) as usize])
                .collect();
            let t: Vec<u8> = (0..next() % 7)
                .map(|_| b"ab"[(next() % 2) as usize])
                .collect();
            assert_eq!(
                glob_match(&p, &t),
                reference(&p, &t),
                "{:?} {:?}",
                String::from_utf8_lossy(&p),
                String::from_utf8_lossy(&t)
            );
        }
    }
}
