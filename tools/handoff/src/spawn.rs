//! Starting the new binary detached: its own session, stdin from /dev/null, stdout and
//! stderr appended to a log file, so it outlives this tool and its terminal.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::Context;

/// The new binary, its own flags, and where it reports.
pub struct NewProcess<'a> {
    pub binary: &'a OsString,
    pub flags: &'a [OsString],
    /// Appended as `--takeover <socket>`.
    pub socket: &'a Path,
    pub log: &'a Path,
}

impl NewProcess<'_> {
    /// Starts the process. Fails, having started nothing, when the log cannot be
    /// opened or the binary cannot be executed (missing, not executable...).
    pub fn spawn(&self) -> anyhow::Result<Child> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(self.log)
            .with_context(|| format!("cannot open the log file {}", self.log.display()))?;
        // A header, so runs appended to the same log can be told apart.
        writeln!(log, "--- baton-handoff: starting {}", self.command_line())
            .with_context(|| format!("cannot write the log file {}", self.log.display()))?;
        let err_log = log
            .try_clone()
            .with_context(|| format!("cannot open the log file {}", self.log.display()))?;
        let mut command = Command::new(self.binary);
        command
            .args(self.flags)
            .arg("--takeover")
            .arg(self.socket)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log);
        // SAFETY: the closure runs in the forked child before exec and only calls
        // setsid(2), which is async-signal-safe and touches no memory of ours.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command.spawn().with_context(|| {
            format!(
                "cannot start the new process {}",
                Path::new(self.binary).display()
            )
        })
    }

    /// The whole command, for messages (lossy, space-separated).
    pub fn command_line(&self) -> String {
        let mut words = vec![self.binary.to_string_lossy().into_owned()];
        words.extend(self.flags.iter().map(|f| f.to_string_lossy().into_owned()));
        words.push("--takeover".into());
        words.push(self.socket.display().to_string());
        words.join(" ")
    }
}
