//! The tool's side of the control-socket line protocol (see `baton_net::handoff`):
//! the `HELLO` answer, the event lines, and a line splitter. Pure: no socket here.

/// The protocol version this tool speaks (`HELLO 1`).
pub const PROTO: u32 = 1;

/// Longest line accepted from the server; a longer one is a broken peer, not a message.
pub const MAX_LINE: usize = 64 * 1024;

/// What the old server said about itself in its `OK` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub pid: u32,
    pub port: u16,
    pub cores: u32,
    pub version: String,
}

/// The old server's answer to `HELLO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Ok(Hello),
    /// `ERR <reason>`: the server will not talk to this tool.
    Refused(String),
}

/// One event line sent by the old server after `OK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `STEP <text>`: a step began or ended.
    Step(String),
    /// `COPY <core> <keys> <bytes> <done>`: copy progress of one old core (cumulative).
    Copy(CoreCopy),
    /// `FREEZE <micros>`: how long the old process started no command.
    Freeze { micros: u64 },
    /// `MOVED <core> <connections>`: an old core handed its connections over.
    Moved { core: u32, connections: u64 },
    /// `DONE <summary>`: success; the old process exits now.
    Done(String),
    /// `ABORT <reason>`: failure; the old process serves on.
    Abort(String),
    /// `ERR <reason>`: the answer to the tool's own `ABORT` after the commit point
    /// (`ERR too late`), or any other refusal.
    Err(String),
    /// A line this version does not know: ignored, so newer servers can add events.
    Unknown,
}

/// Copy progress of one old core, as last reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CoreCopy {
    pub core: u32,
    pub keys: u64,
    pub bytes: u64,
    pub done: bool,
}

/// A line that does not parse as what it claims to be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed line from the server ({why}): {line:?}")]
pub struct Malformed {
    pub line: String,
    pub why: &'static str,
}

fn malformed(line: &str, why: &'static str) -> Malformed {
    Malformed {
        line: line.to_owned(),
        why,
    }
}

/// Splits `NAME rest` at the first space; `rest` is empty when there is none.
fn split_name(line: &str) -> (&str, &str) {
    line.split_once(' ').unwrap_or((line, ""))
}

/// Parses the answer to `HELLO 1`:
/// `OK <proto> pid <pid> port <port> cores <n> version <v>` or `ERR <reason>`.
/// Key/value pairs may come in any order; unknown keys are ignored (a newer server may
/// add some), but all four known ones are required.
pub fn parse_answer(line: &str) -> Result<Answer, Malformed> {
    let (name, rest) = split_name(line);
    match name {
        "ERR" => return Ok(Answer::Refused(rest.to_owned())),
        "OK" => {}
        _ => return Err(malformed(line, "expected OK or ERR")),
    }
    let mut fields = rest.split(' ');
    let proto: u32 = number(fields.next(), line, "no protocol version")?;
    if proto != PROTO {
        return Err(malformed(
            line,
            "the server speaks another protocol version",
        ));
    }
    let (mut pid, mut port, mut cores, mut version) = (None, None, None, None);
    while let Some(key) = fields.next() {
        let value = fields
            .next()
            .ok_or_else(|| malformed(line, "a key without a value"))?;
        match key {
            "pid" => pid = Some(number(Some(value), line, "pid is not a number")?),
            "port" => port = Some(number(Some(value), line, "port is not a port number")?),
            "cores" => cores = Some(number(Some(value), line, "cores is not a number")?),
            "version" => version = Some(value.to_owned()),
            _ => {}
        }
    }
    match (pid, port, cores, version) {
        (Some(pid), Some(port), Some(cores), Some(version)) if !version.is_empty() => {
            Ok(Answer::Ok(Hello {
                pid,
                port,
                cores,
                version,
            }))
        }
        _ => Err(malformed(line, "pid, port, cores or version missing")),
    }
}

/// Parses one event line. Unknown event names are [`Event::Unknown`]; a known name
/// with bad fields is [`Malformed`].
pub fn parse_event(line: &str) -> Result<Event, Malformed> {
    let (name, rest) = split_name(line);
    let event = match name {
        "STEP" => Event::Step(rest.to_owned()),
        "DONE" => Event::Done(rest.to_owned()),
        "ABORT" => Event::Abort(rest.to_owned()),
        "ERR" => Event::Err(rest.to_owned()),
        "COPY" => {
            let [core, keys, bytes, done] = fields(rest, line)?;
            Event::Copy(CoreCopy {
                core: number(Some(core), line, "core is not a number")?,
                keys: number(Some(keys), line, "keys is not a number")?,
                bytes: number(Some(bytes), line, "bytes is not a number")?,
                done: match done {
                    "0" => false,
                    "1" => true,
                    _ => return Err(malformed(line, "done is neither 0 nor 1")),
                },
            })
        }
        "FREEZE" => {
            let [micros] = fields(rest, line)?;
            Event::Freeze {
                micros: number(Some(micros), line, "micros is not a number")?,
            }
        }
        "MOVED" => {
            let [core, connections] = fields(rest, line)?;
            Event::Moved {
                core: number(Some(core), line, "core is not a number")?,
                connections: number(Some(connections), line, "connections is not a number")?,
            }
        }
        _ => Event::Unknown,
    };
    Ok(event)
}

/// Exactly `N` space-separated fields.
fn fields<'a, const N: usize>(rest: &'a str, line: &str) -> Result<[&'a str; N], Malformed> {
    let mut out = [""; N];
    let mut it = rest.split(' ');
    for slot in &mut out {
        *slot = it.next().ok_or_else(|| malformed(line, "too few fields"))?;
    }
    if it.next().is_some() {
        return Err(malformed(line, "too many fields"));
    }
    Ok(out)
}

/// A decimal number with no sign; `None` or anything else is `why`.
fn number<T: std::str::FromStr>(
    field: Option<&str>,
    line: &str,
    why: &'static str,
) -> Result<T, Malformed> {
    field
        .filter(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| malformed(line, why))
}

/// Cuts a byte stream into lines ending in `\n` (a `\r` before it is dropped).
#[derive(Debug, Default)]
pub struct LineBuffer {
    pending: Vec<u8>,
}

impl LineBuffer {
    /// Appends bytes as read from the socket.
    pub fn push(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// The next complete line, if any. A line that is not UTF-8 is replaced lossily
    /// (it then fails to parse, which is reported); one longer than [`MAX_LINE`]
    /// without its end is an error.
    pub fn next_line(&mut self) -> Result<Option<String>, Malformed> {
        let Some(end) = self.pending.iter().position(|&b| b == b'\n') else {
            if self.pending.len() > MAX_LINE {
                let start = String::from_utf8_lossy(&self.pending[..80]).into_owned();
                return Err(malformed(&start, "a line longer than 64 KiB"));
            }
            return Ok(None);
        };
        let mut line: Vec<u8> = self.pending.drain(..=end).collect();
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(Some(String::from_utf8_lossy(&line).into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(line: &str) -> Result<Answer, Malformed> {
        parse_answer(line)
    }

    #[test]
    fn ok_line() {
        assert_eq!(
            hello("OK 1 pid 4242 port 6379 cores 8 version 0.1.0"),
            Ok(Answer::Ok(Hello {
                pid: 4242,
                port: 6379,
                cores: 8,
                version: "0.1.0".into()
            }))
        );
    }

    #[test]
    fn ok_line_in_another_order_with_an_unknown_key() {
        assert_eq!(
            hello("OK 1 version 0.2.0 cores 2 extra yes port 7000 pid 1"),
            Ok(Answer::Ok(Hello {
                pid: 1,
                port: 7000,
                cores: 2,
                version: "0.2.0".into()
            }))
        );
    }

    #[test]
    fn err_line_is_a_refusal() {
        assert_eq!(
            hello("ERR permission denied"),
            Ok(Answer::Refused("permission denied".into()))
        );
        assert_eq!(hello("ERR"), Ok(Answer::Refused(String::new())));
    }

    #[test]
    fn malformed_ok_lines() {
        for line in [
            "",
            "OK",
            "OK 2 pid 1 port 1 cores 1 version v",
            "OK x pid 1 port 1 cores 1 version v",
            "OK 1 pid 1 port 1 cores 1",
            "OK 1 pid 1 port 1 cores 1 version",
            "OK 1 pid -1 port 1 cores 1 version v",
            "OK 1 pid 1 port 70000 cores 1 version v",
            "OK 1 pid 1 port 1 cores many version v",
            "OK  1 pid 1 port 1 cores 1 version v",
            "ok 1 pid 1 port 1 cores 1 version v",
            "+OK",
            "HELLO 1",
        ] {
            assert!(hello(line).is_err(), "{line:?} parsed");
        }
    }

    #[test]
    fn events() {
        assert_eq!(
            parse_event("STEP copying shards"),
            Ok(Event::Step("copying shards".into()))
        );
        assert_eq!(
            parse_event("COPY 3 1000 65536 0"),
            Ok(Event::Copy(CoreCopy {
                core: 3,
                keys: 1000,
                bytes: 65536,
                done: false
            }))
        );
        assert_eq!(
            parse_event("COPY 0 0 0 1"),
            Ok(Event::Copy(CoreCopy {
                core: 0,
                keys: 0,
                bytes: 0,
                done: true
            }))
        );
        assert_eq!(
            parse_event("FREEZE 1234"),
            Ok(Event::Freeze { micros: 1234 })
        );
        assert_eq!(
            parse_event("MOVED 2 17"),
            Ok(Event::Moved {
                core: 2,
                connections: 17
            })
        );
        assert_eq!(
            parse_event("DONE 17 connections moved"),
            Ok(Event::Done("17 connections moved".into()))
        );
        assert_eq!(parse_event("DONE"), Ok(Event::Done(String::new())));
        assert_eq!(
            parse_event("ABORT the new process went away"),
            Ok(Event::Abort("the new process went away".into()))
        );
        assert_eq!(
            parse_event("ERR too late"),
            Ok(Event::Err("too late".into()))
        );
    }

    #[test]
    fn unknown_events_are_ignored() {
        for line in ["", "HELLO 1", "PROGRESS 1 2 3", "copy 1 2 3 0", " STEP x"] {
            assert_eq!(parse_event(line), Ok(Event::Unknown), "{line:?}");
        }
    }

    #[test]
    fn malformed_events() {
        for line in [
            "COPY",
            "COPY 1 2 3",
            "COPY 1 2 3 0 9",
            "COPY 1 2 3 2",
            "COPY 1 2 3 yes",
            "COPY a 2 3 0",
            "COPY 1 -2 3 0",
            "COPY 1 2 3.5 0",
            "COPY 1  2 3 0",
            "COPY 99999999999 2 3 0",
            "FREEZE",
            "FREEZE 1.5",
            "FREEZE 1 2",
            "MOVED 1",
            "MOVED x 1",
            "MOVED 1 +1",
        ] {
            assert!(parse_event(line).is_err(), "{line:?} parsed");
        }
    }

    #[test]
    fn line_buffer_splits_and_joins() {
        let mut buf = LineBuffer::default();
        assert_eq!(buf.next_line(), Ok(None));
        buf.push(b"STEP a\nSTEP");
        assert_eq!(buf.next_line(), Ok(Some("STEP a".into())));
        assert_eq!(buf.next_line(), Ok(None));
        buf.push(b" b\r\n\nDONE x\n");
        assert_eq!(buf.next_line(), Ok(Some("STEP b".into())));
        assert_eq!(buf.next_line(), Ok(Some(String::new())));
        assert_eq!(buf.next_line(), Ok(Some("DONE x".into())));
        assert_eq!(buf.next_line(), Ok(None));
    }

    #[test]
    fn line_buffer_refuses_an_endless_line() {
        let mut buf = LineBuffer::default();
        buf.push(&vec![b'x'; MAX_LINE + 1]);
        assert!(buf.next_line().is_err());
    }

    #[test]
    fn line_buffer_survives_bad_utf8() {
        let mut buf = LineBuffer::default();
        buf.push(b"STEP \xff\n");
        assert_eq!(buf.next_line(), Ok(Some("STEP \u{fffd}".into())));
    }
}
