//! The process: graceful shutdown on SIGTERM/SIGINT, refusing more cores than the machine
//! has, and talking to the server through redis-cli where it is installed.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

cores_tests!(
    sigterm_answers_what_was_read,
    sigint_exits_cleanly,
    redis_cli
);

/// A pipeline small enough to arrive in one read, sent right before the signal: the
/// client must get every reply, idle clients are closed, the process exits 0, and the
/// port refuses connections afterwards.
fn graceful_shutdown(cores: usize, sig: i32) {
    let mut s = Server::start(cores);
    let port = s.port;
    let mut idle = s.raw();
    assert_eq!(idle.call(&["PING"]), simple("PONG"));

    let mut r = s.raw();
    let mut bytes = Vec::new();
    let mut want = Vec::new();
    for i in 0..100 {
        match i % 4 {
            0 => {
                bytes.extend(encode_command(&["SET", &format!("gs:{i}"), "v"]));
                want.push(ok());
            }
            1 => {
                bytes.extend(encode_command(&["GET", &format!("gs:{}", i - 1)]));
                want.push(bulk("v"));
            }
            2 => {
                bytes.extend(encode_command(&["INCR", "gs:n"]));
                want.push(int(i / 4 + 1));
            }
            _ => {
                bytes.extend(encode_command(&["MGET", "gs:0", &format!("gs:{}", i - 3)]));
                want.push(arr(vec![bulk("v"), bulk("v")]));
            }
        }
    }
    assert!(bytes.len() < 4096, "pipeline of {} bytes", bytes.len());
    r.send(&bytes);
    // The first reply proves the server has read the pipeline; signal right away.
    assert_eq!(r.read_value(), want[0], "reply 0");
    s.signal(sig);
    for (i, w) in want.iter().enumerate().skip(1) {
        assert_eq!(&r.read_value(), w, "reply {i} after the signal");
    }
    r.expect_closed();
    idle.expect_closed();

    let status = s
        .wait_exit(EXIT_TIMEOUT)
        .unwrap_or_else(|| panic!("server still running {EXIT_TIMEOUT:?} after signal {sig}"));
    assert!(
        status.success(),
        "exit status {status:?} after signal {sig}; stderr:\n{}",
        s.stderr()
    );
    let again = TcpStream::connect(("127.0.0.1", port));
    assert!(
        again.is_err(),
        "port {port} still accepts connections after exit"
    );
}

fn sigterm_answers_what_was_read(cores: usize) {
    graceful_shutdown(cores, libc::SIGTERM);
}

fn sigint_exits_cleanly(cores: usize) {
    graceful_shutdown(cores, libc::SIGINT);
}

/// Runs a command to completion with a time limit.
fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = thread::spawn(move || {
        let mut v = Vec::new();
        stdout.read_to_end(&mut v).ok();
        v
    });
    let err = thread::spawn(move || {
        let mut v = Vec::new();
        stderr.read_to_end(&mut v).ok();
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

#[test]
fn too_many_cores_fails_fast() {
    if !baton_only("--cores") {
        return;
    }
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    assert!(online > 0);
    let out = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_baton")).args([
            "--port",
            "0",
            "--memcache-port",
            "0",
            "--bind",
            "127.0.0.1",
            "--cores",
            "99",
        ]),
        Duration::from_secs(20),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "--cores 99 exited with success");
    assert!(
        !stdout.contains("Ready to accept connections"),
        "--cores 99 got ready: {stdout}"
    );
    let text = format!("{stdout}{stderr}");
    let words: Vec<&str> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    assert!(
        words.contains(&"99"),
        "the error should name the requested 99 cores:\n{text}"
    );
    assert!(
        words.contains(&online.to_string().as_str()),
        "the error should name the {online} online CPUs:\n{text}"
    );
}

fn redis_cli(cores: usize) {
    let found = Command::new("sh")
        .args(["-c", "command -v redis-cli"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        eprintln!("redis-cli is not installed; skipping the redis-cli test");
        return;
    }
    let s = Server::start(cores);
    let port = s.port.to_string();
    let cli = |args: &[&str]| -> String {
        let out = run_with_timeout(
            Command::new("redis-cli")
                .args(["-h", "127.0.0.1", "-p", &port])
                .args(args),
            Duration::from_secs(10),
        );
        assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(cli(&["set", "k", "v"]), "OK\n");
    assert_eq!(cli(&["get", "k"]), "v\n");
    assert_eq!(cli(&["ping"]), "PONG\n");
    assert_eq!(cli(&["incrby", "n", "5"]), "5\n");
    assert_eq!(cli(&["set", "spaced", "a b"]), "OK\n");
    assert_eq!(cli(&["--no-raw", "get", "spaced"]), "\"a b\"\n");
    assert_eq!(cli(&["--no-raw", "get", "missing"]), "(nil)\n");
    assert_eq!(cli(&["dbsize"]), "3\n");
    let err = cli(&["--no-raw", "get"]);
    assert_eq!(
        err,
        "(error) ERR wrong number of arguments for 'get' command\n"
    );
    // RESP3 through redis-cli.
    assert_eq!(cli(&["-3", "--no-raw", "get", "missing"]), "(nil)\n");
    assert_eq!(cli(&["-3", "get", "k"]), "v\n");
    let mut c = s.redis();
    assert_reply(&mut c, "GET k", bulk("v"));
}
