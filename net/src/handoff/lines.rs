//! The handoff's control lines, parsed: pure functions over text (fuzzed by the
//! `handoff_lines` target), so that the threads that speak the protocol only match.

/// What a peer of the old process's control socket asks first.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// `HELLO <proto> [per-shard|auto]`: the tool, watching, and which path it asks for.
    Hello { proto: u32, cutover: Cutover },
    /// `TAKEOVER <proto> pid <pid> cores <n> [sessions <lowest> <highest>] [cutover]`: a
    /// new process, the session formats it reads (`None`: it did not say, format 3
    /// only), and whether it takes the shards over one by one (the per-shard cutover).
    Takeover {
        proto: u32,
        pid: i32,
        cores: usize,
        sessions: Option<(u16, u16)>,
        cutover: bool,
    },
}

/// Which path a watching tool asks for (`HELLO <proto> [per-shard|auto]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cutover {
    /// `HELLO <proto>`: every shard goes over in one freeze.
    Never,
    /// `per-shard`: the per-shard cutover whenever the server can take it, even if the
    /// new process cannot take the requests on cut shards (they then wait).
    Always,
    /// `auto` (the tool's default): the per-shard cutover when the new process takes the
    /// requests on cut shards (it forwards), else one freeze. A server from before
    /// `auto` refuses it; the tool then asks again with plain `HELLO`.
    IfForwarded,
}

/// The old process's answer to TAKEOVER.
#[derive(Debug, PartialEq, Eq)]
pub struct TakeoverOk {
    pub proto: u32,
    pub port: u16,
    pub memcache_port: u16,
    pub cores: usize,
    pub host: String,
    pub next_client_id: u64,
    pub redis_listeners: usize,
    pub memcache_listeners: usize,
    /// The old process's `requirepass`, which the new one's copy AUTHs with (hex on the
    /// line, so any bytes travel; `-` for none).
    pub auth: Option<String>,
    /// `session <format>`: the session format the connections will come in (absent when
    /// the TAKEOVER named none, and from binaries before session format 4).
    pub session: Option<u16>,
    /// `cutover`: the shards are copied and cut over one by one (`SYNCED k`, `CUT k`);
    /// absent: all at once, in one freeze.
    pub cutover: bool,
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Result<String, String> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("the password is not hex".into());
    }
    let bytes: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("checked hex"))
        .collect();
    String::from_utf8(bytes).map_err(|_| "the password is not UTF-8".to_string())
}

/// The most cores either side may announce (sanity, not a limit of the server).
const MAX_CORES: usize = 4096;

fn num<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("{what} is not a valid number: {s:?}"))
}

fn cores(s: &str) -> Result<usize, String> {
    let n: usize = num(s, "the core count")?;
    if n == 0 || n > MAX_CORES {
        return Err(format!("a core count of {n} is out of range"));
    }
    Ok(n)
}

/// Parses the first line a peer sends the old process.
pub fn request(line: &str) -> Result<Request, String> {
    let w: Vec<&str> = line.split(' ').collect();
    match w.as_slice() {
        ["HELLO", v, rest @ ..] => Ok(Request::Hello {
            proto: num(v, "the protocol version")?,
            cutover: match rest {
                [] => Cutover::Never,
                ["per-shard"] => Cutover::Always,
                ["auto"] => Cutover::IfForwarded,
                _ => return Err("unknown handoff request".into()),
            },
        }),
        ["TAKEOVER", v, "pid", pid, "cores", n, rest @ ..] => {
            let pid: i32 = num(pid, "the pid")?;
            if pid <= 0 {
                return Err(format!("pid {pid} is out of range"));
            }
            let (rest, cutover) = match rest {
                [rest @ .., "cutover"] => (rest, true),
                rest => (rest, false),
            };
            let sessions = match rest {
                [] => None,
                ["sessions", lowest, highest] => Some((
                    num(lowest, "a session format")?,
                    num(highest, "a session format")?,
                )),
                _ => return Err("unknown handoff request".into()),
            };
            Ok(Request::Takeover {
                proto: num(v, "the protocol version")?,
                pid,
                cores: cores(n)?,
                sessions,
                cutover,
            })
        }
        _ => Err("unknown handoff request".into()),
    }
}

/// Formats [`TakeoverOk`] as the old process sends it.
pub fn takeover_ok(ok: &TakeoverOk) -> String {
    format!(
        "OK {} port {} memcache-port {} cores {} host {} next-client-id {} listeners {} {} auth {}",
        ok.proto,
        ok.port,
        ok.memcache_port,
        ok.cores,
        ok.host,
        ok.next_client_id,
        ok.redis_listeners,
        ok.memcache_listeners,
        ok.auth.as_deref().map_or_else(|| "-".to_string(), hex)
    ) + &ok
        .session
        .map_or_else(String::new, |v| format!(" session {v}"))
        + if ok.cutover { " cutover" } else { "" }
}

/// Parses the old process's answer to TAKEOVER (`ERR <reason>` gives the reason).
pub fn parse_takeover_ok(line: &str) -> Result<TakeoverOk, String> {
    if let Some(reason) = line.strip_prefix("ERR ") {
        return Err(format!("the old process refused the takeover: {reason}"));
    }
    let w: Vec<&str> = line.split(' ').collect();
    let ["OK", v, "port", port, "memcache-port", mport, "cores", n, "host", host, "next-client-id", next_id, "listeners", rn, mn, "auth", auth, rest @ ..] =
        w.as_slice()
    else {
        return Err(format!("unexpected answer to TAKEOVER: {line:?}"));
    };
    let (rest, cutover) = match rest {
        [rest @ .., "cutover"] => (rest, true),
        rest => (rest, false),
    };
    let session = match rest {
        [] => None,
        ["session", v] => Some(num(v, "the session format")?),
        _ => return Err(format!("unexpected answer to TAKEOVER: {line:?}")),
    };
    if host.is_empty() {
        return Err("the old process named no host".into());
    }
    let redis_listeners: usize = num(rn, "the listener count")?;
    let memcache_listeners: usize = num(mn, "the listener count")?;
    if redis_listeners == 0 || redis_listeners > MAX_CORES || memcache_listeners > MAX_CORES {
        return Err(format!(
            "listener counts {redis_listeners} and {memcache_listeners} are out of range"
        ));
    }
    Ok(TakeoverOk {
        proto: num(v, "the protocol version")?,
        port: num(port, "the port")?,
        memcache_port: num(mport, "the port")?,
        cores: cores(n)?,
        host: host.to_string(),
        next_client_id: num(next_id, "the next client id")?,
        redis_listeners,
        memcache_listeners,
        auth: match *auth {
            "-" => None,
            a => Some(unhex(a)?),
        },
        session,
        cutover,
    })
}

/// Parses `CONNS <m> runid <id>`: the connection socket count and the new process's run
/// id (40 hex characters).
pub fn parse_conns(line: &str) -> Result<(usize, String), String> {
    let w: Vec<&str> = line.split(' ').collect();
    let ["CONNS", m, "runid", id] = w.as_slice() else {
        return Err(format!("unexpected answer from the new process: {line:?}"));
    };
    if id.len() != 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("a run id must be 40 hex characters: {id:?}"));
    }
    Ok((cores(m)?, id.to_string()))
}

/// Parses `CATCHUP <offset>...`: one journal end per old shard.
pub fn parse_catchup(line: &str) -> Result<Vec<u64>, String> {
    let mut w = line.split(' ');
    if w.next() != Some("CATCHUP") {
        return Err(format!("not a CATCHUP line: {line:?}"));
    }
    let offsets: Vec<u64> = w.map(|t| num(t, "an offset")).collect::<Result<_, _>>()?;
    if offsets.is_empty() || offsets.len() > MAX_CORES {
        return Err(format!("CATCHUP names {} shards", offsets.len()));
    }
    Ok(offsets)
}

/// Parses `SYNCED <k>` (the per-shard cutover: flows 0..=k are copied) or `SYNCED`
/// (every flow is copied): `Some(k)` or `None`.
pub fn parse_synced(line: &str) -> Result<Option<usize>, String> {
    match line.split(' ').collect::<Vec<_>>().as_slice() {
        ["SYNCED"] => Ok(None),
        ["SYNCED", k] => Ok(Some(num(k, "a shard")?)),
        _ => Err(format!("unexpected line from the new process: {line:?}")),
    }
}

/// Parses `CUT <k>`: old shard k is cut over to the new process.
pub fn parse_cut(line: &str) -> Result<usize, String> {
    match line.split(' ').collect::<Vec<_>>().as_slice() {
        ["CUT", k] => num(k, "a shard"),
        _ => Err(format!("not a CUT line: {line:?}")),
    }
}

/// Parses `FOLLOW <host> <port>`.
pub fn parse_follow(line: &str) -> Result<(String, u16), String> {
    let w: Vec<&str> = line.split(' ').collect();
    let ["FOLLOW", host, port] = w.as_slice() else {
        return Err(format!("not a FOLLOW line: {line:?}"));
    };
    if host.is_empty() {
        return Err("FOLLOW names no host".into());
    }
    Ok((host.to_string(), num(port, "the port")?))
}

/// Parses `DONE <connections moved>`.
pub fn parse_done(line: &str) -> Result<u64, String> {
    let w: Vec<&str> = line.split(' ').collect();
    let ["DONE", n] = w.as_slice() else {
        return Err(format!("not a DONE line: {line:?}"));
    };
    num(n, "the connection count")
}

#[cfg(test)]
mod tests {
    use super::*;

    quickcheck::quickcheck! {
        /// No parser panics on any text, and a TAKEOVER answer that parses formats back
        /// to the same (the bounded in-tree run of the `handoff_lines` fuzz target).
        fn no_line_panics_and_answers_round_trip(words: Vec<String>, sep: bool) -> bool {
            let line = words.join(if sep { " " } else { "" });
            let _ = request(&line);
            let _ = parse_conns(&line);
            let _ = parse_catchup(&line);
            let _ = parse_follow(&line);
            let _ = parse_done(&line);
            let _ = parse_synced(&line);
            let _ = parse_cut(&line);
            match parse_takeover_ok(&line) {
                Ok(ok) => parse_takeover_ok(&takeover_ok(&ok)) == Ok(ok),
                Err(_) => true,
            }
        }
    }

    #[test]
    fn requests_parse_and_bad_ones_say_why() {
        for (line, cutover) in [
            ("HELLO 1", Cutover::Never),
            ("HELLO 1 per-shard", Cutover::Always),
            ("HELLO 1 auto", Cutover::IfForwarded),
        ] {
            assert_eq!(request(line), Ok(Request::Hello { proto: 1, cutover }));
        }
        assert!(request("HELLO 1 sometimes").is_err());
        assert!(request("HELLO 1 auto per-shard").is_err());
        assert_eq!(
            request("TAKEOVER 1 pid 42 cores 2"),
            Ok(Request::Takeover {
                proto: 1,
                pid: 42,
                cores: 2,
                sessions: None,
                cutover: false
            })
        );
        assert_eq!(
            request("TAKEOVER 1 pid 42 cores 2 sessions 3 4"),
            Ok(Request::Takeover {
                proto: 1,
                pid: 42,
                cores: 2,
                sessions: Some((3, 4)),
                cutover: false
            })
        );
        assert_eq!(
            request("TAKEOVER 1 pid 42 cores 2 sessions 3 4 cutover"),
            Ok(Request::Takeover {
                proto: 1,
                pid: 42,
                cores: 2,
                sessions: Some((3, 4)),
                cutover: true
            })
        );
        for bad in [
            "",
            "HELLO",
            "HELLO x",
            "HELLO 1 2",
            "HELLO 1 per-shard x",
            "HELLO 1 one-freeze",
            "TAKEOVER 1 pid 0 cores 2",
            "TAKEOVER 1 pid -3 cores 2",
            "TAKEOVER 1 pid 4 cores 0",
            "TAKEOVER 1 pid 4 cores 99999",
            "TAKEOVER 1 cores 2 pid 4",
            "takeover 1 pid 4 cores 2",
            "TAKEOVER 1 pid 4 cores 2 sessions 3",
            "TAKEOVER 1 pid 4 cores 2 sessions 3 x",
            "TAKEOVER 1 pid 4 cores 2 sessions 3 4 5",
            "TAKEOVER 1 pid 4 cores 2 formats 3 4",
            "TAKEOVER 1 pid 4 cores 2 cutover sessions 3 4",
        ] {
            assert!(request(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_takeover_answer_round_trips() {
        let ok = TakeoverOk {
            proto: 1,
            port: 6379,
            memcache_port: 0,
            cores: 2,
            host: "127.0.0.1".into(),
            next_client_id: 17,
            redis_listeners: 2,
            memcache_listeners: 0,
            auth: None,
            session: None,
            cutover: false,
        };
        assert_eq!(parse_takeover_ok(&takeover_ok(&ok)), Ok(ok));
        let cutover = TakeoverOk {
            session: Some(4),
            cutover: true,
            ..parse_takeover_ok(
                "OK 1 port 1 memcache-port 0 cores 2 host h next-client-id 1 listeners 2 0 auth -",
            )
            .unwrap()
        };
        assert!(takeover_ok(&cutover).ends_with(" session 4 cutover"));
        assert_eq!(parse_takeover_ok(&takeover_ok(&cutover)), Ok(cutover));
        let with_session = TakeoverOk {
            session: Some(4),
            ..parse_takeover_ok(
                "OK 1 port 1 memcache-port 0 cores 2 host h next-client-id 1 listeners 2 0 auth -",
            )
            .unwrap()
        };
        assert_eq!(
            parse_takeover_ok(&takeover_ok(&with_session)),
            Ok(with_session)
        );
        assert!(parse_takeover_ok(
            "OK 1 port 1 memcache-port 0 cores 2 host h next-client-id 1 listeners 2 0 auth - session"
        )
        .is_err());
        let with_auth = TakeoverOk {
            auth: Some("p w\n!".into()),
            ..parse_takeover_ok(
                "OK 1 port 1 memcache-port 0 cores 2 host h next-client-id 1 listeners 2 0 auth -",
            )
            .unwrap()
        };
        assert_eq!(parse_takeover_ok(&takeover_ok(&with_auth)), Ok(with_auth));
        assert!(parse_takeover_ok(
            "OK 1 port 1 memcache-port 0 cores 2 host h next-client-id 1 listeners 2 0 auth 7"
        )
        .is_err());
        assert!(parse_takeover_ok("ERR busy").unwrap_err().contains("busy"));
        assert!(parse_takeover_ok(
            "OK 1 port 70000 memcache-port 0 cores 2 host h next-client-id 1 listeners 2 0 auth -"
        )
        .is_err());
        assert!(parse_takeover_ok(
            "OK 1 port 1 memcache-port 0 cores 2 host h next-client-id 1 listeners 0 0 auth -"
        )
        .is_err());
        assert!(parse_takeover_ok("OK 1").is_err());
    }

    #[test]
    fn conns_catchup_and_follow_lines() {
        let id = "a".repeat(40);
        assert_eq!(
            parse_conns(&format!("CONNS 2 runid {id}")),
            Ok((2, id.clone()))
        );
        assert!(parse_conns("CONNS 2 runid xyz").is_err());
        assert!(parse_conns(&format!("CONNS 0 runid {id}")).is_err());
        assert_eq!(parse_catchup("CATCHUP 0 17"), Ok(vec![0, 17]));
        assert!(parse_catchup("CATCHUP").is_err());
        assert!(parse_catchup("CATCHUP 1 -2").is_err());
        assert_eq!(
            parse_follow("FOLLOW 10.0.0.1 6379"),
            Ok(("10.0.0.1".into(), 6379))
        );
        assert!(parse_follow("FOLLOW  6379").is_err());
        assert!(parse_follow("FOLLOW h 65536").is_err());
        assert_eq!(parse_done("DONE 3"), Ok(3));
        assert!(parse_done("DONE").is_err());
        assert!(parse_done("DONE -1").is_err());
        assert_eq!(parse_synced("SYNCED"), Ok(None));
        assert_eq!(parse_synced("SYNCED 1"), Ok(Some(1)));
        assert!(parse_synced("SYNCED x").is_err());
        assert!(parse_synced("CAUGHTUP").is_err());
        assert_eq!(parse_cut("CUT 0"), Ok(0));
        assert!(parse_cut("CUT").is_err());
        assert!(parse_cut("CUT -1").is_err());
    }
}
