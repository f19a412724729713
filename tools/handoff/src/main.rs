//! `baton-handoff`: replaces a running Baton with a new binary without dropping a
//! connection. It asks the old server (on its control socket) to report, starts the new
//! binary detached with `--takeover SOCKET`, and shows each step until the old server
//! says `DONE` or `ABORT`. The protocol is documented in `baton_net::handoff`.
//!
//! - [`protocol`]: parsing the server's lines (pure, unit-tested).
//! - [`progress`]: the tally and the text shown (pure, unit-tested).
//! - [`spawn`]: starting the new process detached.
//! - [`handoff`]: the control connection, the watch loop, the deadline.

mod handoff;
mod progress;
mod protocol;
mod spawn;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// The port whose socket is used when neither --socket nor --port is given.
const DEFAULT_PORT: u16 = 6379;

/// The old server's default control socket for a port (its `--handoff-socket` default).
fn default_socket(port: u16) -> PathBuf {
    PathBuf::from(format!("/tmp/baton-{port}.handoff"))
}

/// Hand a running Baton over to a new binary with no downtime.
#[derive(Parser, Debug)]
#[command(
    name = "baton-handoff",
    version,
    after_help = "\
Steps: connects to the old server's control socket, starts NEW_BINARY with its flags
plus `--takeover SOCKET` in its own session (stdin /dev/null, output appended to the
log), and shows the old server's progress: copy per core, the freeze, the connections
moved. The new process outlives this tool.

Exit status: 0 when the new process serves; 1 when the handoff failed or was aborted
(the old server keeps serving unless a message says otherwise); 2 on a usage error.

Example: baton-handoff --port 6379 -- /usr/local/bin/baton-new --port 6379 --cores 8"
)]
struct Args {
    /// The old server's control socket (its --handoff-socket)
    /// [default: /tmp/baton-6379.handoff]
    #[arg(long, value_name = "PATH", conflicts_with = "port")]
    socket: Option<PathBuf>,

    /// Use the old server's default socket for this port, /tmp/baton-PORT.handoff
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,

    /// Give up after SECS seconds without DONE: ask the old server to abort and kill
    /// the new process
    #[arg(long, value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,

    /// Hand the shards over one by one (the per-shard cutover) even if the new process
    /// cannot take the requests on the shards cut over to it (they then wait until the
    /// connections move). By default the cutover is taken when the new process takes
    /// them (it forwards them), else one freeze
    #[arg(long, conflicts_with = "one_freeze")]
    per_shard: bool,

    /// Hand every shard over in one short freeze: old + new peak near twice the data,
    /// and the commit point is just before the connections move. By default the shards
    /// go one by one (old + new near (1 + 1/cores) x the data; the commit point is the
    /// first cut), requests on a shard already cut over being forwarded to the new
    /// process
    #[arg(long)]
    one_freeze: bool,

    /// Append the new process's stdout and stderr to this file [default: SOCKET.log]
    #[arg(long, value_name = "PATH")]
    log: Option<PathBuf>,

    /// The new binary and its flags, after `--`; `--takeover SOCKET` is appended
    #[arg(last = true, required = true, value_name = "NEW_BINARY [NEW FLAGS]")]
    command: Vec<OsString>,
}

impl Args {
    fn options(self) -> handoff::Options {
        let socket = self
            .socket
            .unwrap_or_else(|| default_socket(self.port.unwrap_or(DEFAULT_PORT)));
        let log = self.log.unwrap_or_else(|| {
            let mut log = socket.clone().into_os_string();
            log.push(".log");
            log.into()
        });
        let mut command = self.command.into_iter();
        handoff::Options {
            socket,
            log,
            timeout: Duration::from_secs(self.timeout),
            binary: command.next().expect("clap requires NEW_BINARY"),
            flags: command.collect(),
            path: match (self.per_shard, self.one_freeze) {
                (true, _) => handoff::Cutover::PerShard,
                (_, true) => handoff::Cutover::OneFreeze,
                _ => handoff::Cutover::Auto,
            },
        }
    }
}

fn main() -> ExitCode {
    let options = Args::parse().options();
    match handoff::run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("baton-handoff: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<handoff::Options, clap::Error> {
        Args::try_parse_from(std::iter::once("baton-handoff").chain(args.iter().copied()))
            .map(Args::options)
    }

    #[test]
    fn defaults() {
        let o = parse(&["--", "/bin/baton", "--port", "6379"]).unwrap();
        assert_eq!(o.socket, PathBuf::from("/tmp/baton-6379.handoff"));
        assert_eq!(o.log, PathBuf::from("/tmp/baton-6379.handoff.log"));
        assert_eq!(o.timeout, Duration::from_secs(60));
        assert_eq!(o.binary, "/bin/baton");
        assert_eq!(o.flags, ["--port", "6379"]);
        assert_eq!(o.path, handoff::Cutover::Auto);
        let path = |flag: &str| parse(&[flag, "--", "b"]).unwrap().path;
        assert_eq!(path("--per-shard"), handoff::Cutover::PerShard);
        assert_eq!(path("--one-freeze"), handoff::Cutover::OneFreeze);
        assert!(parse(&["--per-shard", "--one-freeze", "--", "b"]).is_err());
    }

    #[test]
    fn port_and_socket() {
        let o = parse(&["--port", "7000", "--", "b"]).unwrap();
        assert_eq!(o.socket, PathBuf::from("/tmp/baton-7000.handoff"));
        let o = parse(&[
            "--socket",
            "/run/x.sock",
            "--log",
            "/l",
            "--timeout",
            "5",
            "--",
            "b",
        ])
        .unwrap();
        assert_eq!(o.socket, PathBuf::from("/run/x.sock"));
        assert_eq!(o.log, PathBuf::from("/l"));
        assert_eq!(o.timeout, Duration::from_secs(5));
        assert!(o.flags.is_empty());
    }

    #[test]
    fn usage_errors() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--"]).is_err());
        assert!(parse(&["b"]).is_err());
        assert!(parse(&["--socket", "s", "--port", "1", "--", "b"]).is_err());
        assert!(parse(&["--timeout", "0", "--", "b"]).is_err());
        assert!(parse(&["--port", "70000", "--", "b"]).is_err());
    }

    #[test]
    fn clap_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
