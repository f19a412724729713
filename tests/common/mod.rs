//! Test harness for the integration tests: starts the real `baton` binary on free ports,
//! waits for its ready line (never by sleeping), and hands out clients.
//!
//! * [`Server::start`] / [`Server::builder`] spawn `baton --port 0 --memcache-port 0 --cores N`
//!   and parse the ports from `Ready to accept connections: redis=127.0.0.1:<port> ...`.
//!   The guard sends SIGTERM on drop and reaps the child.
//! * [`Server::redis`] gives a `redis::Connection` with read/write timeouts;
//!   [`Server::raw`] a [`Raw`] socket for byte-level tests. Every read has a timeout, so no
//!   test can hang on a silent server.
//! * [`cores_tests!`] turns `fn name(cores: usize)` into one `#[test]` per core count.
//!
//! * [`Server::start_with_memcache`] / [`Builder::memcache`] also open the memcached
//!   listener (on a free port the harness picks, since `--memcache-port 0` turns it off);
//!   [`Server::memcache_port`] is its port and [`Server::memcache_raw`] a raw socket to it.
//!
//! Reference mode: with `BATON_ITEST_REFERENCE=redis-server` the same tests run against a
//! real `redis-server` (started with `--databases 1`) instead, which checks the tests'
//! expectations against Redis itself. Tests of Baton-only behaviour call
//! [`baton_only`] and are skipped there. Likewise `BATON_ITEST_REFERENCE=memcached` runs the
//! servers started with [`Builder::memcache`] as a real `memcached` (no Redis port); tests
//! check [`memcached_reference`] and skip what needs Redis or is Baton-only.

#![allow(dead_code)]

pub mod cluster;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub use redis::Value;

/// How long the server may take to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Read/write timeout of every client socket.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopped server may take to exit.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// One `#[test]` per core count for each `fn name(cores: usize)`:
/// `cores_tests!(set_get)` makes `set_get::cores_1` and `set_get::cores_2`.
#[macro_export]
macro_rules! cores_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn cores_1() {
                    super::$name(1)
                }
                #[test]
                fn cores_2() {
                    super::$name(2)
                }
            }
        )*
    };
}

/// Whether the tests run against `redis-server` instead of Baton (see the module doc).
pub fn reference_mode() -> bool {
    std::env::var("BATON_ITEST_REFERENCE").is_ok_and(|v| v == "redis-server")
}

/// True when the running test checks Baton-only behaviour and should go on; prints a note
/// and returns false in reference mode.
pub fn baton_only(what: &str) -> bool {
    if reference_mode() {
        eprintln!("reference mode: skipping Baton-only check: {what}");
        return false;
    }
    true
}

/// Whether memcached tests run against a real `memcached` instead of Baton (see the
/// module doc).
pub fn memcached_reference() -> bool {
    std::env::var("BATON_ITEST_REFERENCE").is_ok_and(|v| v == "memcached")
}

/// How many free ports [`Builder::start`] tries before giving up.
const PORT_TRIES: usize = 8;

/// A port that was free a moment ago: bind port 0, note the port, release it.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .unwrap()
        .port()
}

/// Options for one server.
#[derive(Debug, Clone)]
pub struct Builder {
    cores: usize,
    requirepass: Option<String>,
    extra: Vec<String>,
    memcache: bool,
}

impl Builder {
    pub fn requirepass(mut self, pass: &str) -> Self {
        self.requirepass = Some(pass.to_string());
        self
    }

    /// Extra command-line arguments, e.g. `["--proto-max-bulk-len", "1mb"]`.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.extra.extend(args.iter().map(|s| s.to_string()));
        self
    }

    /// Also open the memcached listener, on a free port picked by the harness (the server
    /// is restarted on another port, a bounded number of times, when that port was taken
    /// in the meantime).
    pub fn memcache(mut self) -> Self {
        self.memcache = true;
        self
    }

    pub fn start(self) -> Server {
        if self.memcache && memcached_reference() {
            return start_memcached_reference(&self);
        }
        if reference_mode() {
            return start_reference(&self);
        }
        if !self.memcache {
            // A port picked free can be taken by a parallel test before the server binds
            // it (cluster mode picks one whose bus port is free too): try again then.
            let mut failures = Vec::new();
            for _ in 0..PORT_TRIES {
                match self.spawn(0) {
                    Ok(server) => return server,
                    Err(e) if e.contains("in use") => failures.push(e),
                    Err(e) => panic!("{e}"),
                }
            }
            panic!("could not start baton:\n{}", failures.join("\n"));
        }
        let mut failures = Vec::new();
        for _ in 0..PORT_TRIES {
            let port = free_port();
            match self.spawn(port) {
                Ok(server) if server.owns_listeners_on(port) => return server,
                // Another process shares the port (SO_REUSEPORT lets a same-user listener
                // bind it too): connections would be split between the two.
                Ok(_) => failures.push(format!("port {port} is shared with another process")),
                Err(e) if e.contains("in use") => failures.push(e),
                Err(e) => panic!("{e}"),
            }
        }
        panic!(
            "could not start baton with a memcached port:\n{}",
            failures.join("\n")
        )
    }

    /// Spawns baton with `--memcache-port memcache_port` and waits for its ready line; an
    /// `Err` when it exits first (e.g. it could not bind), a panic when it hangs.
    fn spawn(&self, memcache_port: u16) -> Result<Server, String> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton"));
        cmd.args(["--port", "0", "--bind", "127.0.0.1"])
            .args(["--memcache-port", &memcache_port.to_string()])
            .args(["--cores", &self.cores.to_string()]);
        if let Some(p) = &self.requirepass {
            cmd.args(["--requirepass", p]);
        }
        cmd.args(&self.extra);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn baton");
        let stderr = drain(child.stderr.take().unwrap());
        let lines = lines(child.stdout.take().unwrap());
        let mut server = Server {
            child,
            port: 0,
            memcache_port: None,
            stderr,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some((redis, memcache)) = parse_ready_line(&line) {
                        server.port = redis;
                        server.memcache_port = memcache;
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!(
                        "baton printed no ready line within {READY_TIMEOUT:?}; stderr:\n{}",
                        server.stderr()
                    )
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = server.wait_exit(EXIT_TIMEOUT);
                    // The stderr pipe may still hold the last lines; wait for them briefly.
                    let stderr = server.stderr_after_exit();
                    return Err(format!(
                        "baton closed stdout without a ready line ({status:?}); stderr:\n{stderr}"
                    ));
                }
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        thread::spawn(move || while lines.recv().is_ok() {});
        Ok(server)
    }
}

/// `Ready to accept connections: redis=127.0.0.1:<port> memcache=127.0.0.1:<port>|off`
/// -> (redis port, memcache port).
pub fn parse_ready_line(line: &str) -> Option<(u16, Option<u16>)> {
    let rest = line
        .trim_end()
        .strip_prefix("Ready to accept connections: ")?;
    let mut redis = None;
    let mut memcache = None;
    for field in rest.split_whitespace() {
        let port = |addr: &str| addr.rsplit(':').next()?.parse::<u16>().ok();
        if let Some(addr) = field.strip_prefix("redis=") {
            redis = port(addr);
        } else if let Some(addr) = field.strip_prefix("memcache=") {
            memcache = port(addr);
        }
    }
    Some((redis?, memcache))
}

/// A running server. Dropping it sends SIGTERM and reaps the process.
pub struct Server {
    child: Child,
    pub port: u16,
    pub memcache_port: Option<u16>,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    pub fn builder(cores: usize) -> Builder {
        Builder {
            cores,
            requirepass: None,
            extra: Vec::new(),
            memcache: false,
        }
    }

    pub fn start(cores: usize) -> Server {
        Server::builder(cores).start()
    }

    /// A server with the memcached listener on (see [`Builder::memcache`]).
    pub fn start_with_memcache(cores: usize) -> Server {
        Server::builder(cores).memcache().start()
    }

    /// The memcached port; panics when the listener is off.
    #[track_caller]
    pub fn memcache_port(&self) -> u16 {
        self.memcache_port
            .expect("memcached listener is off (start with Server::start_with_memcache)")
    }

    pub fn memcache_addr(&self) -> String {
        format!("127.0.0.1:{}", self.memcache_port())
    }

    /// A raw socket to the memcached port, with read/write timeouts.
    pub fn memcache_raw(&self) -> Raw {
        Raw::connect(self.memcache_port())
    }

    /// Whether every TCP listener on 127.0.0.1:`port` belongs to this server (and there
    /// is at least one), from /proc/net/tcp and /proc/<pid>/fd.
    fn owns_listeners_on(&self, port: u16) -> bool {
        let ours: std::collections::HashSet<String> =
            match std::fs::read_dir(format!("/proc/{}/fd", self.pid())) {
                Ok(dir) => dir
                    .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                    .filter_map(|l| {
                        let l = l.to_string_lossy().into_owned();
                        Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
                    })
                    .collect(),
                Err(_) => return false,
            };
        let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        let local = format!("0100007F:{port:04X}");
        let inodes: Vec<String> = tcp
            .lines()
            .skip(1)
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                // local_address is field 1, st field 3 (0A = LISTEN), inode field 9.
                (f.len() > 9 && f[1] == local && f[3] == "0A").then(|| f[9].to_string())
            })
            .collect();
        !inodes.is_empty() && inodes.iter().all(|i| ours.contains(i))
    }

    /// The server's stderr once the process has exited: waits (bounded) until the drain
    /// thread has seen the pipe close, so the last lines are in.
    fn stderr_after_exit(&self) -> String {
        // The drain thread holds the only other reference and drops it at EOF.
        eventually(Duration::from_secs(2), || {
            Arc::strong_count(&self.stderr) == 1
        });
        self.stderr()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A connected `redis::Connection` with timeouts (the crate's handshake included).
    pub fn redis(&self) -> redis::Connection {
        self.connect_redis(format!("redis://{}/", self.addr()))
    }

    /// A `redis::Connection` that authenticates with `pass` during its handshake.
    pub fn redis_auth(&self, pass: &str) -> redis::Connection {
        self.connect_redis(format!("redis://:{pass}@{}/", self.addr()))
    }

    /// Connects with `url`, bounded in time as a whole: the redis crate times only the
    /// TCP connect, and a server that accepts but never answers would hang its handshake,
    /// so the connection is made on a thread of its own and abandoned past the timeout.
    fn connect_redis(&self, url: String) -> redis::Connection {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let con =
                redis::Client::open(url).and_then(|c| c.get_connection_with_timeout(IO_TIMEOUT));
            let _ = tx.send(con);
        });
        let con = match rx.recv_timeout(IO_TIMEOUT * 2) {
            Ok(Ok(con)) => con,
            Ok(Err(e)) => panic!(
                "connect to {}: {e}; stderr:\n{}",
                self.addr(),
                self.stderr()
            ),
            Err(_) => panic!(
                "connect to {}: no answer to the handshake; stderr:\n{}",
                self.addr(),
                self.stderr()
            ),
        };
        con.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        con.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        con
    }

    /// A raw socket with read/write timeouts.
    pub fn raw(&self) -> Raw {
        Raw::connect(self.port)
    }

    /// Sends `sig` to the server.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.pid());
    }

    /// Waits for the process to exit, up to `timeout`; `None` when it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            // SAFETY: as in `signal`; the child is not reaped yet.
            unsafe { libc::kill(self.pid(), libc::SIGTERM) };
            if self.wait_exit(EXIT_TIMEOUT).is_none() {
                eprintln!("server {} ignored SIGTERM; killing it", self.pid());
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        remove_stale_handoff_socket(self.port);
    }
}

/// Removes the handoff control socket that a server on `port` leaves at its default path
/// when it cannot clean up after itself (a test SIGKILLed it), unless a process still
/// listens there.
pub fn remove_stale_handoff_socket(port: u16) {
    let path = std::path::PathBuf::from(format!("/tmp/baton-{port}.handoff"));
    if path.exists() && std::os::unix::net::UnixStream::connect(&path).is_err() {
        let _ = std::fs::remove_file(&path);
    }
}

/// Reads `out` line by line on a thread; the receiver ends when the pipe closes.
fn lines(out: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            match line {
                Ok(l) => {
                    if tx.send(l).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    });
    rx
}

/// Collects `err` into a string on a thread.
fn drain(err: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let buf = Arc::new(Mutex::new(String::new()));
    let sink = buf.clone();
    thread::spawn(move || {
        let mut r = BufReader::new(err);
        let mut line = String::new();
        while matches!(r.read_line(&mut line), Ok(n) if n > 0) {
            sink.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    buf
}

fn start_reference(b: &Builder) -> Server {
    // A free port: bind, note it, release it (a small race, acceptable in this dev mode).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new("redis-server");
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--databases", "1"]);
    if let Some(p) = &b.requirepass {
        cmd.args(["--requirepass", p]);
    }
    cmd.args(&b.extra);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redis-server");
    let stderr = drain(child.stderr.take().unwrap());
    let server = Server {
        child,
        port,
        memcache_port: None,
        stderr,
    };
    let deadline = Instant::now() + READY_TIMEOUT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        thread::sleep(Duration::from_millis(5));
    }
    server
}

/// `BATON_ITEST_REFERENCE=memcached`: a real memcached on a free loopback port, with the
/// item size limit taken from a `--max-item-size` in the extra arguments.
fn start_memcached_reference(b: &Builder) -> Server {
    let port = free_port();
    let mut cmd = Command::new("memcached");
    // `-u root` matters only when run as root (memcached refuses to start otherwise).
    cmd.args([
        "-p",
        &port.to_string(),
        "-U",
        "0",
        "-l",
        "127.0.0.1",
        "-u",
        "root",
    ])
    .args(["-t", &b.cores.to_string()]);
    if let Some(i) = b.extra.iter().position(|a| a == "--max-item-size") {
        cmd.args(["-I", &b.extra[i + 1]]);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn memcached");
    let stderr = drain(child.stderr.take().unwrap());
    let server = Server {
        child,
        port: 0,
        memcache_port: Some(port),
        stderr,
    };
    let deadline = Instant::now() + READY_TIMEOUT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "memcached did not start; stderr:\n{}",
            server.stderr()
        );
        thread::sleep(Duration::from_millis(5));
    }
    server
}

// ---------------------------------------------------------------------------------------
// redis-crate helpers
// ---------------------------------------------------------------------------------------

/// Runs one command given as separate arguments and returns the raw reply (errors are
/// `Value::ServerError`, not `Err`). Panics on I/O errors.
pub fn run<A: redis::ToRedisArgs>(con: &mut redis::Connection, args: &[A]) -> Value {
    use redis::ConnectionLike;
    let mut c = redis::Cmd::new();
    for a in args {
        c.arg(a);
    }
    con.req_command(&c)
        .unwrap_or_else(|e| panic!("I/O error: {e}"))
}

/// Runs a whitespace-separated command line (no quoting; for arguments with spaces use
/// [`run`]).
pub fn q(con: &mut redis::Connection, line: &str) -> Value {
    let args: Vec<&str> = line.split_whitespace().collect();
    run(con, &args)
}

/// The full error text of an error reply (`ERR syntax error`), or a panic naming the
/// reply when it is not an error.
pub fn err_text(v: &Value) -> String {
    match v {
        Value::ServerError(e) => match e.details() {
            Some(d) => format!("{} {}", e.code(), d),
            None => e.code().to_string(),
        },
        other => panic!("expected an error reply, got {other:?}"),
    }
}

/// Asserts that `line` answers with exactly the error `text`.
#[track_caller]
pub fn assert_err(con: &mut redis::Connection, line: &str, text: &str) {
    let v = q(con, line);
    assert!(
        matches!(v, Value::ServerError(_)),
        "{line}: expected error {text:?}, got {v:?}"
    );
    assert_eq!(err_text(&v), text, "{line}");
}

/// Asserts that `line` answers with exactly `want`.
#[track_caller]
pub fn assert_reply(con: &mut redis::Connection, line: &str, want: Value) {
    assert_eq!(q(con, line), want, "{line}");
}

pub fn ok() -> Value {
    Value::Okay
}

pub fn bulk(s: impl AsRef<[u8]>) -> Value {
    Value::BulkString(s.as_ref().to_vec())
}

pub fn int(n: i64) -> Value {
    Value::Int(n)
}

pub fn nil() -> Value {
    Value::Nil
}

pub fn simple(s: &str) -> Value {
    Value::SimpleString(s.to_string())
}

pub fn arr(items: Vec<Value>) -> Value {
    Value::Array(items)
}

/// The integer of an `Int` reply.
#[track_caller]
pub fn as_int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

/// The text of a bulk or simple string reply.
#[track_caller]
pub fn as_str(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).expect("utf-8"),
        Value::SimpleString(s) => s.clone(),
        Value::Okay => "OK".to_string(),
        other => panic!("expected a string, got {other:?}"),
    }
}

/// The items of an array (or set) reply.
#[track_caller]
pub fn as_array(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) | Value::Set(items) => items.clone(),
        other => panic!("expected an array, got {other:?}"),
    }
}

/// The items of an array of strings, as strings.
#[track_caller]
pub fn as_strings(v: &Value) -> Vec<String> {
    as_array(v).iter().map(as_str).collect()
}

/// Key/value pairs of a RESP3 map or a RESP2 flat array of key, value, ...
#[track_caller]
pub fn as_pairs(v: &Value) -> Vec<(String, Value)> {
    match v {
        Value::Map(m) => m.iter().map(|(k, v)| (as_str(k), v.clone())).collect(),
        Value::Array(items) => {
            assert!(items.len() % 2 == 0, "odd flat map: {v:?}");
            items
                .chunks(2)
                .map(|kv| (as_str(&kv[0]), kv[1].clone()))
                .collect()
        }
        other => panic!("expected a map, got {other:?}"),
    }
}

/// The value under `key` in a map reply.
#[track_caller]
pub fn field(v: &Value, key: &str) -> Value {
    as_pairs(v)
        .into_iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("no field {key:?} in {v:?}"))
        .1
}

/// Polls `cond` every few milliseconds until it holds or `timeout` passes; returns whether
/// it held. A bounded retry, not a sleep used as synchronisation.
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Seconds since the Unix epoch.
pub fn unix_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// RESP2 multibulk encoding of one command.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// An error reply as the redis crate represents it, so raw and crate errors compare equal.
fn error_value(text: &str) -> Value {
    match redis::parse_redis_value(format!("-{text}\r\n").as_bytes()) {
        Ok(v @ Value::ServerError(_)) => v,
        other => panic!("error line {text:?} parsed as {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Raw sockets
// ---------------------------------------------------------------------------------------

/// A raw client socket for byte-level tests. Reads time out after [`IO_TIMEOUT`].
pub struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        Raw {
            writer: s.try_clone().unwrap(),
            reader: BufReader::new(s),
        }
    }

    pub fn stream(&self) -> &TcpStream {
        &self.writer
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    /// Sends one command as a RESP multibulk.
    pub fn send_command<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        self.send(&encode_command(args));
    }

    /// Reads exactly `want.len()` bytes and asserts they equal `want`.
    #[track_caller]
    pub fn expect(&mut self, want: &[u8]) {
        let mut got = vec![0u8; want.len()];
        if let Err(e) = self.reader.read_exact(&mut got) {
            panic!(
                "reading {:?}: {e}",
                String::from_utf8_lossy(want).to_string()
            );
        }
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(want),
            "raw reply"
        );
    }

    /// Reads exactly `n` bytes.
    pub fn read_n(&mut self, n: usize) -> Vec<u8> {
        let mut got = vec![0u8; n];
        self.reader.read_exact(&mut got).expect("read");
        got
    }

    /// Reads one line including its `\r\n`.
    pub fn read_line(&mut self) -> String {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line).expect("read line");
        String::from_utf8_lossy(&line).into_owned()
    }

    /// Reads one reply (RESP2 or RESP3), consuming exactly its bytes, so raw reads can
    /// follow. Errors become `Value::ServerError`, as the redis crate returns them.
    pub fn read_value(&mut self) -> Value {
        let line = self.read_line();
        assert!(line.ends_with("\r\n"), "truncated reply line {line:?}");
        let (kind, rest) = line.split_at(1);
        let rest = &rest[..rest.len() - 2];
        let num = |s: &str| -> i64 {
            s.parse()
                .unwrap_or_else(|_| panic!("bad length in {line:?}"))
        };
        match kind {
            "+" if rest == "OK" => Value::Okay,
            "+" => Value::SimpleString(rest.to_string()),
            "-" => error_value(rest),
            ":" => Value::Int(num(rest)),
            "_" => Value::Nil,
            "#" => Value::Boolean(rest == "t"),
            "," => Value::Double(
                rest.parse()
                    .unwrap_or_else(|_| panic!("bad double {line:?}")),
            ),
            "$" | "=" | "!" => {
                let n = num(rest);
                if n < 0 {
                    return Value::Nil;
                }
                let mut data = self.read_n(n as usize + 2);
                assert_eq!(&data[n as usize..], b"\r\n", "bulk not ended by CRLF");
                data.truncate(n as usize);
                match kind {
                    "$" => Value::BulkString(data),
                    "!" => error_value(&String::from_utf8_lossy(&data)),
                    _ => {
                        let text = String::from_utf8(data).expect("utf-8 verbatim");
                        let (format, text) = text.split_at(4);
                        assert!(format.ends_with(':'), "verbatim format {format:?}");
                        Value::VerbatimString {
                            format: redis::VerbatimFormat::Unknown(format[..3].to_string()),
                            text: text.to_string(),
                        }
                    }
                }
            }
            "*" | "~" | ">" => {
                let n = num(rest);
                if n < 0 {
                    return Value::Nil;
                }
                let items: Vec<Value> = (0..n).map(|_| self.read_value()).collect();
                match kind {
                    "*" => Value::Array(items),
                    "~" => Value::Set(items),
                    _ => Value::Push {
                        kind: redis::PushKind::Other("push".into()),
                        data: items,
                    },
                }
            }
            "%" => {
                let n = num(rest);
                Value::Map(
                    (0..n)
                        .map(|_| (self.read_value(), self.read_value()))
                        .collect(),
                )
            }
            _ => panic!("unknown reply type in {line:?}"),
        }
    }

    /// Sends a command and parses its reply.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Value {
        self.send_command(args);
        self.read_value()
    }

    /// Asserts that the server closes the connection: the next read returns 0 bytes
    /// (a reset counts as closed too) and no further data arrives first.
    #[track_caller]
    pub fn expect_closed(&mut self) {
        let mut buf = [0u8; 256];
        match self.reader.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!(
                "expected EOF, got {:?}",
                String::from_utf8_lossy(&buf[..n]).to_string()
            ),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("expected EOF, got error {e}"),
        }
    }

    pub fn shutdown_write(&self) {
        self.writer.shutdown(Shutdown::Write).unwrap();
    }
}

/// One numeric field of `INFO <section>` (`used_memory`, `evicted_keys`, ...).
#[track_caller]
pub fn info_number(c: &mut redis::Connection, section: &str, name: &str) -> i64 {
    let text: String = redis::cmd("INFO").arg(section).query(c).expect("INFO");
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no numeric {name} in INFO {section}:\n{text}"))
}

/// A small deterministic PRNG (xorshift64*), so randomised tests repeat exactly from their
/// seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
