//! Runs the built `baton-handoff` against a fake old server: a real Unix listener in a
//! temp dir that plays the server's side of the control protocol from a script per test.
//! The "new binary" is /bin/sh running a script that records its pid next to the socket
//! (proving it got `--takeover SOCKET`), so the tests can check and kill it.
//!
//! Every wait is bounded: the tool is killed after [`BOUND`], the fake's accept and reads
//! give up after [`BOUND`] too, and every new process is killed when its test ends.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const BOUND: Duration = Duration::from_secs(30);

/// The new process: writes its pid to `SOCKET.pid` (`$2`, after `--takeover`) and a line
/// to its log, then sleeps (as itself, so the pid is the process to kill).
const NEW_SLEEPS: &str =
    r#"echo $$ > "$2.tmp" && mv "$2.tmp" "$2.pid"; echo hello from the new process; exec sleep 20"#;

/// A temp dir of its own, removed at the end of the test.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("baton-handoff-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn socket(&self) -> PathBuf {
        self.0.join("old.handoff")
    }

    fn pid_file(&self) -> PathBuf {
        self.0.join("old.handoff.pid")
    }

    fn log(&self) -> PathBuf {
        self.0.join("old.handoff.log")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A new process started by the tool: killed when the test ends, whatever happened.
struct NewProcess(i32);

impl NewProcess {
    /// Waits for the new process to record its pid in `pid_file`.
    fn started(pid_file: &Path) -> NewProcess {
        let until = Instant::now() + BOUND;
        loop {
            if let Ok(text) = std::fs::read_to_string(pid_file) {
                return NewProcess(text.trim().parse().expect("a pid"));
            }
            assert!(Instant::now() < until, "the new process never started");
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn alive(&self) -> bool {
        // SAFETY: signal 0 only checks that the process exists.
        unsafe { libc::kill(self.0, 0) == 0 }
    }

    /// The session id, from /proc/PID/stat (fields after the command: state ppid pgrp sid).
    fn session(&self) -> i32 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.0)).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        after.split(' ').nth(3).unwrap().parse().unwrap()
    }
}

impl Drop for NewProcess {
    fn drop(&mut self) {
        // SAFETY: kill(2) on a pid this test's tool started.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

/// The fake server's end of the tool's connection.
struct Peer {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Peer {
    /// The next line, or `None` when the tool closed the connection.
    fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(line.trim_end_matches('\n').to_owned()),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => None,
            Err(e) => panic!("the fake server's read failed: {e}"),
        }
    }

    /// Everything the tool sends until it closes the connection.
    fn rest(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.line()).collect()
    }

    fn send(&mut self, lines: &[&str]) {
        for line in lines {
            self.writer
                .write_all(format!("{line}\n").as_bytes())
                .unwrap();
        }
    }
}

/// Listens on the dir's socket and runs `script` on the first connection, after checking
/// that it opens with the tool's default `HELLO 1 auto`.
fn fake<T: Send + 'static>(
    dir: &Dir,
    script: impl FnOnce(&mut Peer) -> T + Send + 'static,
) -> JoinHandle<T> {
    fake_hellos(dir, &["HELLO 1 auto"], script)
}

/// The next connection to `listener` (bounded by [`BOUND`]).
fn accept(listener: &UnixListener) -> Peer {
    let until = Instant::now() + BOUND;
    let stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < until => {
                thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("the tool never connected: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    Peer {
        reader: BufReader::new(stream.try_clone().unwrap()),
        writer: stream,
    }
}

/// [`fake`] for a tool that says `hellos` on one connection each: every one but the last
/// is refused as an older server refuses an unknown request; `script` runs on the last.
fn fake_hellos<T: Send + 'static>(
    dir: &Dir,
    hellos: &[&str],
    script: impl FnOnce(&mut Peer) -> T + Send + 'static,
) -> JoinHandle<T> {
    let listener = UnixListener::bind(dir.socket()).unwrap();
    listener.set_nonblocking(true).unwrap();
    let hellos: Vec<String> = hellos.iter().map(|h| h.to_string()).collect();
    thread::spawn(move || {
        let (last, refused) = hellos.split_last().expect("at least one HELLO");
        for hello in refused {
            let mut peer = accept(&listener);
            assert_eq!(peer.line().as_deref(), Some(hello.as_str()));
            peer.send(&["ERR unknown handoff request"]);
        }
        let mut peer = accept(&listener);
        assert_eq!(peer.line().as_deref(), Some(last.as_str()));
        script(&mut peer)
    })
}

const OK: &str = "OK 1 pid 4242 port 6379 cores 2 version 0.1.0";

/// Runs the tool with `args` (then `--` and `new`), killing it after [`BOUND`].
fn tool(dir: &Dir, args: &[&str], new: &[&str]) -> (Output, String, String) {
    let mut all: Vec<OsString> = vec!["--socket".into(), dir.socket().into()];
    all.extend(args.iter().map(OsString::from));
    all.push("--".into());
    all.extend(new.iter().map(OsString::from));
    run(&all)
}

fn run(args: &[OsString]) -> (Output, String, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_baton-handoff"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(child.wait_with_output()));
    let output = match rx.recv_timeout(BOUND) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            // SAFETY: kill(2) on the tool this test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("baton-handoff did not finish within {BOUND:?}");
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

fn sh(script: &str) -> Vec<&str> {
    vec!["/bin/sh", "-c", script, "sh"]
}

#[test]
fn a_successful_handoff_prints_a_summary_and_leaves_the_new_process_running() {
    let dir = Dir::new();
    let (socket, pid_file) = (dir.socket(), dir.pid_file());
    let server = fake(&dir, move |peer| {
        peer.send(&[OK]);
        let new = NewProcess::started(&pid_file);
        peer.send(&[
            "STEP copying shards",
            "COPY 0 10 2048 0",
            "COPY 0 100 4096 1",
            "COPY 1 50 1024 1",
            "SOMETHING a newer server says",
            "FREEZE 1500",
            "MOVED 0 3",
            "MOVED 1 1",
            "DONE 4 connections moved",
        ]);
        let rest = peer.rest();
        (new, rest)
    });
    let (output, stdout, stderr) = tool(&dir, &[], &sh(NEW_SLEEPS));
    let (new, rest) = server.join().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(rest.is_empty(), "the tool sent {rest:?}");
    for expected in [
        "old server: pid 4242, port 6379, 2 cores, version 0.1.0",
        &format!("new process: pid {}, log {}", new.0, dir.log().display()),
        "step: copying shards",
        "core 0: copied 100 keys (4.0 KiB)",
        "core 1: copied 50 keys (1.0 KiB)",
        "freeze: 1.500 ms",
        "core 0: 3 connections handed over",
        &format!("the new process (pid {}) serves now", new.0),
        "copied:      150 keys (5.0 KiB) from 2 cores",
        "connections: 4 moved",
        "old server:  4 connections moved",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
    // Detached: alive after the tool exited, in a session of its own, logging to the file.
    assert!(new.alive());
    assert_eq!(new.session(), new.0);
    let log = std::fs::read_to_string(dir.log()).unwrap();
    assert!(log.contains("hello from the new process"), "log: {log}");
    assert!(
        log.contains(&format!("--takeover {}", socket.display())),
        "log: {log}"
    );
}

#[test]
fn a_refusal_is_reported_and_nothing_starts() {
    let dir = Dir::new();
    let server = fake(&dir, |peer| {
        peer.send(&["ERR busy"]);
    });
    let (output, _, stderr) = tool(&dir, &[], &sh(NEW_SLEEPS));
    server.join().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("baton-handoff: the server refused: busy"),
        "{stderr}"
    );
    assert!(!dir.log().exists() && !dir.pid_file().exists());
}

/// `--one-freeze` and `--per-shard` ask for their path; a server from before the default
/// `auto` is asked again for one freeze.
#[test]
fn the_path_asked_for_and_an_older_servers_fallback() {
    for (flags, hellos) in [
        (&["--one-freeze"][..], &["HELLO 1"][..]),
        (&["--per-shard"][..], &["HELLO 1 per-shard"][..]),
        (&[][..], &["HELLO 1 auto", "HELLO 1"][..]),
    ] {
        let dir = Dir::new();
        let server = fake_hellos(&dir, hellos, |peer| {
            peer.send(&["ERR busy"]);
        });
        let (output, _, stderr) = tool(&dir, flags, &sh(NEW_SLEEPS));
        server.join().unwrap();
        assert_eq!(output.status.code(), Some(1), "{flags:?}");
        assert!(
            stderr.contains("baton-handoff: the server refused: busy"),
            "{flags:?}: {stderr}"
        );
        assert!(!dir.log().exists() && !dir.pid_file().exists());
    }
}

#[test]
fn a_missing_binary_is_reported_before_anything_happens() {
    let dir = Dir::new();
    let server = fake(&dir, |peer| {
        peer.send(&[OK]);
        peer.rest()
    });
    let missing = dir.0.join("no-such-baton");
    let (output, _, stderr) = tool(&dir, &[], &[missing.to_str().unwrap(), "--port", "1"]);
    let sent = server.join().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains(&format!(
            "cannot start the new process {}",
            missing.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("No such file or directory"), "{stderr}");
    assert!(sent.is_empty(), "the tool sent {sent:?}");
}

#[test]
fn a_new_process_that_exits_at_once_fails_the_handoff() {
    let dir = Dir::new();
    let server = fake(&dir, |peer| {
        peer.send(&[OK]);
        peer.rest()
    });
    let (output, _, stderr) = tool(&dir, &[], &["/bin/true"]);
    let sent = server.join().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("the new process exited (exit status: 0) before the handoff finished"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&dir.log().display().to_string()),
        "{stderr}"
    );
    assert!(sent.is_empty(), "the tool sent {sent:?}");
}

#[test]
fn the_old_servers_abort_after_the_new_process_died_is_shown() {
    let dir = Dir::new();
    let pid_file = dir.pid_file();
    let server = fake(&dir, move |peer| {
        peer.send(&[OK]);
        let new = NewProcess::started(&pid_file);
        // Gone (and reaped by the tool, so no zombie either): the tool noticed.
        let until = Instant::now() + BOUND;
        while new.alive() {
            assert!(
                Instant::now() < until,
                "the tool never reaped the new process"
            );
            thread::sleep(Duration::from_millis(10));
        }
        peer.send(&["ABORT the new process went away"]);
        peer.rest()
    });
    let script = r#"echo $$ > "$2.tmp" && mv "$2.tmp" "$2.pid"; exit 3"#;
    let (output, _, stderr) = tool(&dir, &[], &sh(script));
    server.join().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("the new process exited (exit status: 3)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("aborted: the new process went away; the old server keeps serving"),
        "{stderr}"
    );
}

#[test]
fn an_abort_from_the_old_server_fails_and_stops_the_new_process() {
    let dir = Dir::new();
    let pid_file = dir.pid_file();
    let server = fake(&dir, move |peer| {
        peer.send(&[OK]);
        let new = NewProcess::started(&pid_file);
        peer.send(&["STEP copying shards", "ABORT replication failed"]);
        (new, peer.rest())
    });
    let (output, stdout, stderr) = tool(&dir, &[], &sh(NEW_SLEEPS));
    let (new, sent) = server.join().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout.contains("step: copying shards"), "{stdout}");
    assert!(
        stderr.contains("baton-handoff: aborted: replication failed; the old server keeps serving"),
        "{stderr}"
    );
    assert!(sent.is_empty(), "the tool sent {sent:?}");
    assert!(!new.alive(), "the new process outlived the abort");
}

#[test]
fn a_timeout_sends_abort_and_kills_the_new_process() {
    let dir = Dir::new();
    let pid_file = dir.pid_file();
    let server = fake(&dir, move |peer| {
        peer.send(&[OK]);
        let new = NewProcess::started(&pid_file);
        peer.send(&["STEP copying shards", "COPY 0 1 1 0"]);
        let abort = peer.line();
        peer.send(&["ABORT aborted by the operator"]);
        (new, abort, peer.rest())
    });
    let (output, _, stderr) = tool(&dir, &["--timeout", "1"], &sh(NEW_SLEEPS));
    let (new, abort, rest) = server.join().unwrap();
    assert_eq!(abort.as_deref(), Some("ABORT"));
    assert!(rest.is_empty(), "the tool sent {rest:?}");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("timed out after 1 s"), "{stderr}");
    assert!(
        stderr.contains("aborted: aborted by the operator"),
        "{stderr}"
    );
    assert!(!new.alive(), "the new process outlived the timeout");
}

#[test]
fn a_timeout_past_the_commit_point_leaves_the_new_process_running() {
    let dir = Dir::new();
    let pid_file = dir.pid_file();
    let server = fake(&dir, move |peer| {
        peer.send(&[OK]);
        let new = NewProcess::started(&pid_file);
        let abort = peer.line();
        peer.send(&["ERR too late"]);
        (new, abort, peer.rest())
    });
    let (output, _, stderr) = tool(&dir, &["--timeout", "1"], &sh(NEW_SLEEPS));
    let (new, abort, _) = server.join().unwrap();
    assert_eq!(abort.as_deref(), Some("ABORT"));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("past the commit point"), "{stderr}");
    assert!(new.alive(), "the promoted new process was killed");
}

#[test]
fn the_old_server_going_away_leaves_the_new_process_running() {
    let dir = Dir::new();
    let pid_file = dir.pid_file();
    let server = fake(&dir, move |peer| {
        peer.send(&[OK, "STEP copying shards"]);
        // Returning drops the peer, which closes the connection.
        NewProcess::started(&pid_file)
    });
    let (output, _, stderr) = tool(&dir, &[], &sh(NEW_SLEEPS));
    let new = server.join().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("closed the control connection"), "{stderr}");
    assert!(new.alive(), "the new process was killed");
}

#[test]
fn no_server_names_the_socket() {
    let dir = Dir::new();
    let (output, _, stderr) = tool(&dir, &[], &sh(NEW_SLEEPS));
    assert_eq!(output.status.code(), Some(1));
    let expected = format!(
        "cannot reach the server's handoff socket {}: No such file or directory \
         (is baton running with --handoff-socket?)",
        dir.socket().display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(!dir.log().exists());
}

#[test]
fn a_malformed_answer_fails_clearly() {
    let dir = Dir::new();
    let server = fake(&dir, |peer| peer.send(&["OK 1 pid many"]));
    let (output, _, stderr) = tool(&dir, &[], &sh(NEW_SLEEPS));
    server.join().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("malformed line from the server"),
        "{stderr}"
    );
    assert!(!dir.log().exists());
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["--"][..],
        &["--socket", "a", "--port", "1", "--", "b"][..],
    ] {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let (output, _, stderr) = run(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    }
}

#[test]
fn help_explains_the_usage() {
    let (output, stdout, _) = run(&["--help".into()]);
    assert_eq!(output.status.code(), Some(0));
    for expected in [
        "--socket",
        "--port",
        "--timeout",
        "--log",
        "NEW_BINARY",
        "--takeover",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
}
