//! Driving one handoff: the control connection, the new process and the deadline.
//!
//! ```text
//!  connect ─► HELLO 1 auto ─┬─ ERR ─► exit 1 (unknown request: HELLO 1 again)
//!                      └─ OK ─► spawn NEW --takeover SOCKET ─► watch the events:
//!       DONE                 print the summary, exit 0
//!       ABORT                stop the new process (3 s to exit, then SIGKILL), exit 1
//!       the new one exits    wait 3 s for the old server's ABORT, exit 1
//!       EOF                  exit 1; the new process runs on (the old one may have died)
//!       --timeout            send ABORT: on ABORT (or silence) kill the new process;
//!                            on `ERR too late` leave it serving; exit 1
//! ```
//! The socket is read with a short timeout so the new process and the deadline are
//! checked every [`POLL`] between events.

use std::ffi::OsString;
use std::io::{self, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

use crate::progress::{hello_line, Progress};
use crate::protocol::{parse_answer, parse_event, Answer, Event, LineBuffer, PROTO};
use crate::spawn::NewProcess;

/// How long one socket read waits before the new process and the deadline are checked.
pub const POLL: Duration = Duration::from_millis(50);

/// How long to wait for the old server's last word (its `ABORT` after the new process
/// died, its answer to our `ABORT`) and for the new process to exit after an abort.
pub const GRACE: Duration = Duration::from_secs(3);

/// What the operator asked for.
pub struct Options {
    pub socket: PathBuf,
    pub log: PathBuf,
    pub timeout: Duration,
    pub binary: OsString,
    pub flags: Vec<OsString>,
    /// The path to ask for.
    pub path: Cutover,
}

/// Which path the tool asks the old server for (`HELLO 1 [auto|per-shard]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cutover {
    /// The default (`HELLO 1 auto`): the per-shard cutover when the new process takes
    /// the requests on cut shards, else one freeze; a server from before `auto` is asked
    /// again with plain `HELLO 1` (one freeze).
    Auto,
    /// `--per-shard` (`HELLO 1 per-shard`): the per-shard cutover whenever the server can.
    PerShard,
    /// `--one-freeze` (`HELLO 1`): every shard in one freeze.
    OneFreeze,
}

impl Cutover {
    fn hello(self) -> String {
        match self {
            Cutover::Auto => format!("HELLO {PROTO} auto\n"),
            Cutover::PerShard => format!("HELLO {PROTO} per-shard\n"),
            Cutover::OneFreeze => format!("HELLO {PROTO}\n"),
        }
    }
}

/// The server's answer when it does not know the request: an older server, asked `auto`.
const UNKNOWN_REQUEST: &str = "unknown handoff request";

/// Runs the whole handoff; `Ok` only once the old server reported `DONE`.
pub fn run(options: &Options) -> anyhow::Result<()> {
    let start = Instant::now();
    let deadline = start + options.timeout;
    let (control, line) = match hello(options, options.path, deadline)? {
        (_, Answer::Refused(reason))
            if reason == UNKNOWN_REQUEST && options.path == Cutover::Auto =>
        {
            // A server from before `auto` closed the connection; it knows one freeze.
            hello(options, Cutover::OneFreeze, deadline)?
        }
        answered => answered,
    };
    match line {
        Answer::Refused(reason) => bail!("the server refused: {reason}"),
        Answer::Ok(hello) => println!("{}", hello_line(&hello)),
    }
    let new = NewProcess {
        binary: &options.binary,
        flags: &options.flags,
        socket: &options.socket,
        log: &options.log,
    };
    // On failure nothing was started: dropping `control` closes the connection, which
    // the old server sees as a watcher leaving. No ABORT: another tool may be driving a
    // handoff this one did not start.
    let child = new.spawn()?;
    println!(
        "new process: pid {}, log {}",
        child.id(),
        options.log.display()
    );
    Handoff {
        control,
        child,
        progress: Progress::default(),
        options,
        start,
    }
    .watch(deadline)
}

/// Connects and says HELLO, asking for `path`; the connection and the server's answer.
fn hello(options: &Options, path: Cutover, deadline: Instant) -> anyhow::Result<(Control, Answer)> {
    let mut control = Control::connect(&options.socket)?;
    control
        .send(&path.hello())
        .with_context(|| format!("cannot write to {}", options.socket.display()))?;
    let line = match control.poll_until(deadline)? {
        Some(Read::Line(line)) => line,
        Some(Read::Closed) => bail!("the server closed the control connection without answering"),
        Some(Read::Idle) | None => bail!(
            "the server did not answer HELLO within {} s",
            options.timeout.as_secs()
        ),
    };
    Ok((control, parse_answer(&line)?))
}

/// One read from the control connection.
enum Read {
    Line(String),
    /// Nothing complete arrived within [`POLL`].
    Idle,
    Closed,
}

/// The connection to the old server's control socket.
struct Control {
    stream: UnixStream,
    lines: LineBuffer,
}

impl Control {
    fn connect(path: &Path) -> anyhow::Result<Self> {
        let stream = UnixStream::connect(path).map_err(|e| {
            anyhow!(
                "cannot reach the server's handoff socket {}: {} (is baton running with --handoff-socket?)",
                path.display(),
                io_text(&e)
            )
        })?;
        stream.set_read_timeout(Some(POLL))?;
        // A server that stops reading must not hang the tool either.
        stream.set_write_timeout(Some(GRACE))?;
        Ok(Control {
            stream,
            lines: LineBuffer::default(),
        })
    }

    fn send(&mut self, line: &str) -> io::Result<()> {
        self.stream.write_all(line.as_bytes())
    }

    /// The next line, or `Idle` after at most [`POLL`].
    fn poll(&mut self) -> anyhow::Result<Read> {
        if let Some(line) = self.lines.next_line()? {
            return Ok(Read::Line(line));
        }
        let mut buf = [0u8; 4096];
        match self.stream.read(&mut buf) {
            Ok(0) => Ok(Read::Closed),
            Ok(n) => {
                self.lines.push(&buf[..n]);
                Ok(self.lines.next_line()?.map_or(Read::Idle, Read::Line))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(Read::Idle)
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(Read::Closed),
            Err(e) => Err(anyhow!(
                "cannot read the control connection: {}",
                io_text(&e)
            )),
        }
    }

    /// Polls until a line or the end of the connection, or `None` at `until`.
    fn poll_until(&mut self, until: Instant) -> anyhow::Result<Option<Read>> {
        loop {
            match self.poll()? {
                Read::Idle if Instant::now() >= until => return Ok(None),
                Read::Idle => {}
                read => return Ok(Some(read)),
            }
        }
    }
}

/// An event that ends the watch (or, for `Err`, may).
enum Last {
    Done(String),
    Abort(String),
    Err(String),
    Closed,
}

struct Handoff<'a> {
    control: Control,
    child: Child,
    progress: Progress,
    options: &'a Options,
    start: Instant,
}

impl Handoff<'_> {
    fn watch(mut self, deadline: Instant) -> anyhow::Result<()> {
        loop {
            match self.step()? {
                Some(Last::Done(summary)) => return self.done(&summary),
                Some(Last::Abort(reason)) => return self.aborted(&reason),
                Some(Last::Err(reason)) => {
                    eprintln!("baton-handoff: the server said: ERR {reason}")
                }
                Some(Last::Closed) => bail!(
                    "the old server closed the control connection before the handoff finished \
                     (it died or dropped this tool); the new process (pid {}) was left running, \
                     and serves on if the old one died: see {}",
                    self.child.id(),
                    self.options.log.display()
                ),
                None => {}
            }
            if let Some(status) = self.child.try_wait()? {
                return self.new_process_exited(status);
            }
            if Instant::now() >= deadline {
                return self.time_out();
            }
        }
    }

    /// Reads at most one line (waiting at most [`POLL`]) and shows it; returns the
    /// events that end the watch.
    fn step(&mut self) -> anyhow::Result<Option<Last>> {
        let line = match self.control.poll()? {
            Read::Idle => return Ok(None),
            Read::Closed => return Ok(Some(Last::Closed)),
            Read::Line(line) => line,
        };
        let event = match parse_event(&line) {
            Ok(event) => event,
            Err(e) => {
                eprintln!("baton-handoff: ignoring a {e}");
                return Ok(None);
            }
        };
        match event {
            Event::Step(text) => println!("step: {text}"),
            Event::Copy(copy) => {
                if let Some(line) = self.progress.copy(copy, Instant::now()) {
                    println!("{line}");
                }
            }
            Event::Freeze { micros } => println!("{}", self.progress.freeze(micros)),
            Event::Moved { core, connections } => {
                println!("{}", self.progress.moved(core, connections))
            }
            Event::Done(summary) => return Ok(Some(Last::Done(summary))),
            Event::Abort(reason) => return Ok(Some(Last::Abort(reason))),
            Event::Err(reason) => return Ok(Some(Last::Err(reason))),
            Event::Unknown => {}
        }
        Ok(None)
    }

    /// Shows events until one ends the watch, or `None` after `within`.
    fn last_word(&mut self, within: Duration) -> anyhow::Result<Option<Last>> {
        let until = Instant::now() + within;
        loop {
            if let Some(last) = self.step()? {
                return Ok(Some(last));
            }
            if Instant::now() >= until {
                return Ok(None);
            }
        }
    }

    fn done(&self, summary: &str) -> anyhow::Result<()> {
        let text = self
            .progress
            .summary(self.start.elapsed(), self.child.id(), summary);
        println!("{text}");
        Ok(())
    }

    /// The old server aborted: it serves on, and the new process has nothing to do.
    fn aborted(&mut self, reason: &str) -> anyhow::Result<()> {
        self.stop_new_process(GRACE);
        Err(abort_error(reason))
    }

    fn new_process_exited(&mut self, status: ExitStatus) -> anyhow::Result<()> {
        eprintln!(
            "baton-handoff: the new process exited ({status}) before the handoff finished; see {}",
            self.options.log.display()
        );
        match self.last_word(GRACE)? {
            Some(Last::Abort(reason)) => Err(abort_error(&reason)),
            Some(Last::Done(summary)) => Err(anyhow!(
                "the old server reported DONE ({summary}) but the new process has exited: \
                 nothing may be serving now"
            )),
            Some(Last::Err(reason)) => Err(anyhow!("the handoff failed; the server said ERR {reason}")),
            Some(Last::Closed) => Err(anyhow!(
                "the handoff failed, and the old server closed the control connection: check it still serves"
            )),
            None => Err(anyhow!(
                "the handoff failed; the old server did not confirm an abort within {} s",
                GRACE.as_secs()
            )),
        }
    }

    fn time_out(&mut self) -> anyhow::Result<()> {
        let secs = self.options.timeout.as_secs();
        eprintln!("baton-handoff: no DONE within {secs} s; asking the old server to abort");
        let last = match self.control.send("ABORT\n") {
            Ok(()) => self.last_word(GRACE)?,
            Err(_) => Some(Last::Closed),
        };
        match last {
            Some(Last::Done(summary)) => self.done(&summary),
            // `ERR too late`: past the commit point the new process is the server now;
            // killing it would take the service down.
            Some(Last::Err(reason)) => bail!(
                "timed out after {secs} s, past the commit point (the server said ERR {reason}): \
                 the handoff goes on without this tool; the new process (pid {}) keeps running, see {}",
                self.child.id(),
                self.options.log.display()
            ),
            Some(Last::Abort(reason)) => {
                self.stop_new_process(Duration::ZERO);
                bail!(
                    "timed out after {secs} s; {}",
                    abort_error(&reason)
                )
            }
            Some(Last::Closed) | None => {
                self.stop_new_process(Duration::ZERO);
                bail!("timed out after {secs} s; the old server did not confirm the abort")
            }
        }
    }

    /// Gives the new process `within` to exit by itself, then kills it (SIGKILL) and
    /// reaps it.
    fn stop_new_process(&mut self, within: Duration) {
        let until = Instant::now() + within;
        while Instant::now() < until {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(POLL),
            }
        }
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = self.child.id();
        match self.child.kill().and_then(|()| self.child.wait()) {
            Ok(_) => eprintln!("baton-handoff: killed the new process (pid {pid})"),
            Err(e) => eprintln!(
                "baton-handoff: cannot kill the new process (pid {pid}): {}",
                io_text(&e)
            ),
        }
    }
}

fn abort_error(reason: &str) -> anyhow::Error {
    let reason = if reason.is_empty() {
        "no reason given"
    } else {
        reason
    };
    anyhow!("aborted: {reason}; the old server keeps serving")
}

/// An I/O error without its `(os error N)` suffix, for messages to operators.
fn io_text(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}
