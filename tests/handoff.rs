//! Zero-downtime binary handoff (net/src/handoff, tools/handoff) against the real binaries:
//! an old `baton` started here with `--handoff-socket`, the operator tool `baton-handoff`
//! run here, and the new `baton` it starts detached with `--takeover <socket>`.
//!
//! Every test checks, on the same client sockets opened before the handoff, that no
//! reply was an error and no connection was lost, and that the data (values, TTLs,
//! memcached flags and CAS) is the same afterwards.
//!
//! Processes: the old server is a [`Server`] (reaped by its guard); the tool runs as a
//! [`Tool`] (killed on drop); the new servers are not our children, so every test holds a
//! [`Procs`] guard that, on drop (also on panic), SIGKILLs every process whose command
//! line holds `--takeover <the test's socket>` plus every pid it was told about. Each
//! test has its own socket path in a fresh temporary directory, so the guard never
//! touches anything it did not start.
//!
//! The tool's binary is `baton-handoff` next to the `baton` binary under test; when it is
//! missing, the first test to need it builds it once (`cargo build -p baton-handoff`).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::*;

/// `--timeout` given to the tool.
const TOOL_TIMEOUT_SECS: u64 = 60;
/// How long a test waits for the tool to exit (past its own timeout).
const TOOL_WAIT: Duration = Duration::from_secs(TOOL_TIMEOUT_SECS + 30);
/// How long the old process may take to exit after the tool reported success.
const OLD_EXIT: Duration = Duration::from_secs(20);
/// TTL of the loaded keys, in seconds.
const TTL: i64 = 1000;

// ---------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------

/// The tests of this file run one at a time: each runs two servers, the tool and client
/// threads under load, and the kill points are moments in a handoff, which a machine
/// busy with the other tests would stretch.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `baton-handoff` binary (built once when missing).
fn tool_bin() -> PathBuf {
    static TOOL: OnceLock<PathBuf> = OnceLock::new();
    TOOL.get_or_init(|| {
        let baton = Path::new(env!("CARGO_BIN_EXE_baton"));
        let tool = baton.with_file_name("baton-handoff");
        if tool.exists() {
            return tool;
        }
        // target/<profile>/baton
        let profile_dir = baton.parent().expect("profile dir");
        let target_dir = profile_dir.parent().expect("target dir");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-j", "1", "-p", "baton-handoff", "--target-dir"])
            .arg(target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        eprintln!(
            "\n*** handoff tests: {} is missing; building it once: {cmd:?}\n",
            tool.display()
        );
        let status = cmd.status().expect("run cargo build -p baton-handoff");
        assert!(
            status.success() && tool.exists(),
            "could not build baton-handoff ({status}); the handoff tests need it at {}",
            tool.display()
        );
        tool
    })
    .clone()
}

/// A fresh temporary directory per test, holding its control socket and logs.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "baton-ht-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            name
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // state is the first field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Pids of the processes whose command line holds `--takeover <socket>`.
fn takeover_pids(socket: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args
            .windows(2)
            .any(|w| w[0] == b"--takeover" && w[1] == socket.as_bytes())
            && alive(pid)
        {
            out.push(pid);
        }
    }
    out
}

/// Waits (bounded) for the new process of a handoff on `socket` to appear; its pid.
fn find_new_process(socket: &str, timeout: Duration) -> Option<i32> {
    let mut found = None;
    eventually(timeout, || {
        found = takeover_pids(socket).into_iter().next();
        found.is_some()
    });
    found
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a pid this test started (found by its unique socket path or
    // reported by its own server); a stale pid only makes the call fail.
    unsafe { libc::kill(pid, sig) };
}

/// Kills, on drop, every new server of the test's handoffs: the pids it was told about
/// and every process still holding `--takeover <socket>`.
struct Procs {
    socket: String,
    pids: Mutex<Vec<i32>>,
}

impl Procs {
    fn new(socket: &str) -> Procs {
        Procs {
            socket: socket.to_string(),
            pids: Mutex::new(Vec::new()),
        }
    }

    fn add(&self, pid: i32) {
        self.pids.lock().unwrap().push(pid);
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        let mut pids = self.pids.lock().unwrap_or_else(|e| e.into_inner()).clone();
        pids.extend(takeover_pids(&self.socket));
        for pid in pids {
            if alive(pid) {
                kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// One run of `baton-handoff`, killed on drop. Its stdout and stderr are collected line
/// by line into `log` and sent on `lines`.
struct Tool {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Arc<Mutex<String>>,
    status: Option<ExitStatus>,
}

impl Tool {
    /// `baton-handoff --socket S --timeout T --log L -- baton NEW_FLAGS...`.
    fn start(socket: &str, log: &str, new_flags: &[String]) -> Tool {
        Tool::start_with(socket, log, &[], new_flags)
    }

    /// [`Tool::start`] with more flags for the tool.
    fn start_with(socket: &str, log: &str, tool_flags: &[&str], new_flags: &[String]) -> Tool {
        let mut child = Command::new(tool_bin())
            .args(tool_flags)
            .args(["--socket", socket])
            .args(["--timeout", &TOOL_TIMEOUT_SECS.to_string()])
            .args(["--log", log])
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_baton"))
            .args(new_flags)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn baton-handoff");
        let (tx, lines) = mpsc::channel();
        let log = Arc::new(Mutex::new(String::new()));
        let out: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().unwrap());
        let err: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().unwrap());
        for (tag, pipe) in [("", out), ("[stderr] ", err)] {
            let tx = tx.clone();
            let log = log.clone();
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { return };
                    log.lock().unwrap().push_str(&format!("{tag}{line}\n"));
                    let _ = tx.send(line);
                }
            });
        }
        Tool {
            child,
            lines,
            log,
            status: None,
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits for a line of the tool's output that satisfies `pred`; false when the tool
    /// closed its output or `timeout` passed first.
    fn wait_line(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if pred(&line) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }

    /// Waits for the tool to exit (panics past [`TOOL_WAIT`], after killing it).
    fn wait(&mut self) -> ExitStatus {
        if let Some(s) = self.status {
            return s;
        }
        let deadline = Instant::now() + TOOL_WAIT;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait tool") {
                self.status = Some(s);
                // Let the reader threads take the last lines in (the detached new process
                // may hold the pipes open, so do not wait for their end).
                thread::sleep(Duration::from_millis(100));
                return s;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "baton-handoff did not exit within {TOOL_WAIT:?}; its output:\n{}",
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One handoff setup: the old server's flags, so the new one gets the same ones.
struct Setup {
    dir: TempDir,
    socket: String,
    procs: Procs,
}

impl Setup {
    fn new(name: &str) -> Setup {
        let dir = TempDir::new(name);
        let socket = dir.path("handoff.sock");
        let procs = Procs::new(&socket);
        Setup { dir, socket, procs }
    }

    /// The old server: `--cores cores --handoff-socket <socket>` (and a memcached port).
    fn start_old(&self, cores: usize, memcache: bool) -> Server {
        let mut b = Server::builder(cores).args(&["--handoff-socket", &self.socket]);
        if memcache {
            b = b.memcache();
        }
        b.start()
    }

    /// The new server's flags: the old one's ports, `cores`, the same control socket.
    fn new_flags(&self, old: &Server, cores: usize) -> Vec<String> {
        [
            "--bind",
            "127.0.0.1",
            "--port",
            &old.port.to_string(),
            "--memcache-port",
            &old.memcache_port.unwrap_or(0).to_string(),
            "--cores",
            &cores.to_string(),
            "--handoff-socket",
            &self.socket,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn start_tool(&self, old: &Server, cores: usize, run: &str) -> Tool {
        self.start_tool_with(old, cores, run, &[])
    }

    /// [`Setup::start_tool`] with more flags for the tool.
    fn start_tool_with(&self, old: &Server, cores: usize, run: &str, tool_flags: &[&str]) -> Tool {
        Tool::start_with(
            &self.socket,
            &self.dir.path(&format!("new-{run}.log")),
            tool_flags,
            &self.new_flags(old, cores),
        )
    }

    /// The new process's log (as the tool's `--log` wrote it), for failure messages.
    fn new_log(&self, run: &str) -> String {
        std::fs::read_to_string(self.dir.path(&format!("new-{run}.log")))
            .unwrap_or_else(|e| format!("(no log: {e})"))
    }

    /// Runs a whole handoff and asserts that the tool exits 0; the new server's pid (from
    /// `INFO server` on a fresh connection, which must differ from `old_pid`).
    fn handoff(&self, old: &Server, cores: usize, run: &str, old_pid: i32) -> i32 {
        self.finish(self.start_tool(old, cores, run), old, run, old_pid)
    }

    /// Waits for `tool` (started for run `run`, its log in `new-<run>.log`) to exit,
    /// records the new process for the cleanup, and asserts that the tool exited 0 (with
    /// its output, the new process's log and the old server's stderr otherwise); the new
    /// server's pid, as [`Setup::handoff`].
    #[track_caller]
    fn finish(&self, mut tool: Tool, old: &Server, run: &str, old_pid: i32) -> i32 {
        let status = tool.wait();
        if let Some(pid) = find_new_process(&self.socket, Duration::ZERO) {
            self.procs.add(pid);
        }
        assert!(
            status.success(),
            "handoff {run}: baton-handoff exited with {status}; its output:\n{}\n\
             new process log:\n{}\nold server stderr:\n{}",
            tool.log(),
            self.new_log(run),
            old.stderr()
        );
        eprintln!("handoff {run}: baton-handoff output:\n{}", tool.log());
        let mut c = connect(old.port);
        let pid = info_number(&mut c, "server", "process_id") as i32;
        self.procs.add(pid);
        assert_ne!(
            pid,
            old_pid,
            "handoff {run}: the tool exited 0 but the port is still served by the old \
             process; tool output:\n{}",
            tool.log()
        );
        pid
    }
}

/// Waits for the old server (our child) to exit by itself after a handoff; asserts exit 0.
#[track_caller]
fn assert_old_exits_0(old: &mut Server) {
    let status = old.wait_exit(OLD_EXIT);
    assert!(
        status.is_some_and(|s| s.success()),
        "the old process should exit 0 after the handoff, got {status:?}; stderr:\n{}",
        old.stderr()
    );
}

/// Waits for a detached old server (not our child) to go away after a handoff.
#[track_caller]
fn assert_gone(pid: i32) {
    assert!(
        eventually(OLD_EXIT, || !alive(pid)),
        "process {pid} still runs {OLD_EXIT:?} after handing off"
    );
}

// ---------------------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------------------

/// A redis connection to 127.0.0.1:`port` with timeouts (bounded in time as a whole).
fn connect(port: u16) -> redis::Connection {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let con = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .and_then(|c| c.get_connection_with_timeout(IO_TIMEOUT));
        let _ = tx.send(con);
    });
    let con = match rx.recv_timeout(IO_TIMEOUT * 2) {
        Ok(Ok(con)) => con,
        Ok(Err(e)) => panic!("connect to port {port}: {e}"),
        Err(_) => panic!("connect to port {port}: no answer to the handshake"),
    };
    con.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    con.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    con
}

fn key(prefix: &str, i: usize) -> String {
    format!("{prefix}:{i}")
}

fn value(i: usize, len: usize) -> String {
    let mut v = format!("v{i}-");
    while v.len() < len {
        v.push((b'a' + (i % 26) as u8) as char);
    }
    v
}

/// `SET <prefix>:i <value> EX 1000` for i in 0..n, pipelined.
fn load_keys(c: &mut redis::Connection, prefix: &str, n: usize, len: usize) {
    for start in (0..n).step_by(1000) {
        let mut p = redis::pipe();
        for i in start..(start + 1000).min(n) {
            p.cmd("SET")
                .arg(key(prefix, i))
                .arg(value(i, len))
                .arg("EX")
                .arg(TTL)
                .ignore();
        }
        p.query::<()>(c).expect("loading keys");
    }
}

/// Reads every key of [`load_keys`] back (GET and TTL, pipelined 1000 keys at a time)
/// and hands `each` its index, value and TTL replies.
#[track_caller]
fn read_keys(
    c: &mut redis::Connection,
    prefix: &str,
    n: usize,
    mut each: impl FnMut(usize, &Value, &Value),
) {
    for start in (0..n).step_by(1000) {
        let mut p = redis::pipe();
        let end = (start + 1000).min(n);
        for i in start..end {
            p.cmd("GET").arg(key(prefix, i));
            p.cmd("TTL").arg(key(prefix, i));
        }
        let replies: Vec<Value> = p.query(c).expect("reading keys back");
        for (j, pair) in replies.chunks(2).enumerate() {
            each(start + j, &pair[0], &pair[1]);
        }
    }
}

/// Checks that every key of [`load_keys`] has its value and a TTL in (TTL - 300, TTL]
/// (when `ttl`); panics listing the first differences.
#[track_caller]
fn check_keys(c: &mut redis::Connection, prefix: &str, n: usize, len: usize, ttl: bool) {
    let mut bad = Vec::new();
    let mut count = 0;
    read_keys(c, prefix, n, |i, got, t| {
        let got_ok = *got == Value::BulkString(value(i, len).into_bytes());
        let ttl_ok = !ttl || matches!(t, Value::Int(t) if *t > TTL - 300 && *t <= TTL);
        if !got_ok || !ttl_ok {
            count += 1;
            if bad.len() < 10 {
                bad.push(format!("{}: {got:?} ttl {t:?}", key(prefix, i)));
            }
        }
    });
    assert!(
        bad.is_empty(),
        "{count} of {n} keys {prefix}:* lost their value or TTL, e.g.:\n{}",
        bad.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Redis clients under load
// ---------------------------------------------------------------------------------------

/// What a load thread found; it hands its connection back so the caller can check that
/// the same socket still answers.
struct LoadResult {
    con: redis::Connection,
    index: usize,
    id: i64,
    ops: u64,
    errors: u64,
    first_errors: Vec<String>,
    broken: bool,
}

/// A client thread with ONE connection (never reconnecting) doing SET/GET/INCR on its own
/// keys and checking every reply.
struct Load {
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
    handle: JoinHandle<LoadResult>,
}

impl Load {
    fn start(port: u16, index: usize) -> Load {
        let mut con = connect(port);
        assert_eq!(
            q(&mut con, &format!("CLIENT SETNAME t{index}")),
            ok(),
            "SETNAME"
        );
        let id = as_int(&q(&mut con, "CLIENT ID"));
        let stop = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(AtomicU64::new(0));
        let (stop2, ops2) = (stop.clone(), ops.clone());
        let handle = thread::spawn(move || {
            let mut r = LoadResult {
                con,
                index,
                id,
                ops: 0,
                errors: 0,
                first_errors: Vec::new(),
                broken: false,
            };
            let ctr = format!("w{index}:ctr");
            let _ = run(&mut r.con, &["DEL", &ctr]);
            let mut n: u64 = 0;
            while !stop2.load(Ordering::Relaxed) {
                n += 1;
                let k = format!("w{index}:{}", n % 100);
                let v = n.to_string();
                let checks: [(Vec<String>, Value); 3] = [
                    (vec!["SET".into(), k.clone(), v.clone()], Value::Okay),
                    (vec!["GET".into(), k.clone()], bulk(&v)),
                    (vec!["INCR".into(), ctr.clone()], Value::Int(n as i64)),
                ];
                for (cmd, want) in checks {
                    use redis::ConnectionLike;
                    let mut c = redis::Cmd::new();
                    for a in &cmd {
                        c.arg(a);
                    }
                    match r.con.req_command(&c) {
                        Ok(got) if got == want => {}
                        Ok(got) => {
                            r.errors += 1;
                            if r.first_errors.len() < 5 {
                                r.first_errors
                                    .push(format!("t{index}: {cmd:?} -> {got:?}, want {want:?}"));
                            }
                        }
                        Err(e) => {
                            r.errors += 1;
                            r.broken = true;
                            r.first_errors
                                .push(format!("t{index}: {cmd:?} -> I/O error {e}"));
                            return r;
                        }
                    }
                }
                r.ops += 1;
                ops2.store(r.ops, Ordering::Relaxed);
            }
            r
        });
        Load { stop, ops, handle }
    }
}

/// Waits until every load thread has done `more` more rounds than now (so some ran after
/// the handoff), then stops them and returns their results.
fn finish_loads(loads: Vec<Load>, more: u64) -> Vec<LoadResult> {
    let marks: Vec<u64> = loads
        .iter()
        .map(|l| l.ops.load(Ordering::Relaxed))
        .collect();
    let progressed = eventually(Duration::from_secs(30), || {
        loads
            .iter()
            .zip(&marks)
            .all(|(l, m)| l.ops.load(Ordering::Relaxed) >= m + more || l.handle.is_finished())
    });
    let results = join_loads(loads);
    let errors: Vec<String> = results
        .iter()
        .flat_map(|r| r.first_errors.iter().cloned())
        .collect();
    assert!(
        errors.is_empty(),
        "client errors during the handoff ({} in all):\n{}",
        results.iter().map(|r| r.errors).sum::<u64>(),
        errors.join("\n")
    );
    assert!(
        progressed,
        "the load threads made no progress after the handoff: {:?}",
        results.iter().map(|r| r.ops).collect::<Vec<_>>()
    );
    results
}

/// On each load thread's own connection: CLIENT ID and CLIENT GETNAME unchanged, and
/// `INFO server` says it is served by `pid`.
#[track_caller]
fn check_same_sessions(results: &mut [LoadResult], pid: i32) {
    for r in results {
        let i = r.index;
        assert_eq!(
            as_int(&q(&mut r.con, "CLIENT ID")),
            r.id,
            "t{i}: CLIENT ID changed"
        );
        assert_eq!(
            q(&mut r.con, "CLIENT GETNAME"),
            bulk(format!("t{i}")),
            "t{i}: CLIENT GETNAME changed"
        );
        assert_eq!(
            info_number(&mut r.con, "server", "process_id") as i32,
            pid,
            "t{i}: the connection is not served by the new process"
        );
    }
}

fn start_loads(port: u16, n: usize) -> Vec<Load> {
    (0..n).map(|i| Load::start(port, i)).collect()
}

// ---------------------------------------------------------------------------------------
// memcached text protocol on one socket
// ---------------------------------------------------------------------------------------

struct Mc {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

/// One item as `gets` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    flags: u32,
    value: Vec<u8>,
    cas: u64,
}

type Io<T> = std::io::Result<T>;

fn io_err(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}

impl Mc {
    fn connect(port: u16) -> Mc {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect memcached port");
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        Mc {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        }
    }

    fn line(&mut self) -> Io<String> {
        let mut l = String::new();
        if self.r.read_line(&mut l)? == 0 {
            return Err(io_err("connection closed".into()));
        }
        Ok(l.trim_end_matches(['\r', '\n']).to_string())
    }

    fn send(&mut self, s: &str) -> Io<()> {
        self.w.write_all(s.as_bytes())
    }

    fn set_cmd(key: &str, flags: u32, exptime: i64, value: &str) -> String {
        format!("set {key} {flags} {exptime} {}\r\n{value}\r\n", value.len())
    }

    /// One command answered by one line.
    fn call(&mut self, cmd: &str) -> Io<String> {
        self.send(cmd)?;
        self.line()
    }

    /// `gets k1 k2 ...` -> the items found, by key.
    fn gets(&mut self, keys: &[String]) -> Io<Vec<(String, Item)>> {
        self.send(&format!("gets {}\r\n", keys.join(" ")))?;
        let mut out = Vec::new();
        loop {
            let l = self.line()?;
            if l == "END" {
                return Ok(out);
            }
            let f: Vec<&str> = l.split(' ').collect();
            if f.len() != 5 || f[0] != "VALUE" {
                return Err(io_err(format!("gets: unexpected line {l:?}")));
            }
            let len: usize = f[3].parse().map_err(|_| io_err(l.clone()))?;
            let mut data = vec![0u8; len + 2];
            std::io::Read::read_exact(&mut self.r, &mut data)?;
            data.truncate(len);
            out.push((
                f[1].to_string(),
                Item {
                    flags: f[2].parse().map_err(|_| io_err(l.clone()))?,
                    value: data,
                    cas: f[4].parse().map_err(|_| io_err(l.clone()))?,
                },
            ));
        }
    }
}

fn mc_flags(i: usize) -> u32 {
    (i as u32).wrapping_mul(2_654_435_761) % 65_536
}

/// `set <prefix>:i <flags> 1000 <value>` for i in 0..n, pipelined by 500.
fn mc_load(m: &mut Mc, prefix: &str, n: usize, len: usize) {
    for start in (0..n).step_by(500) {
        let end = (start + 500).min(n);
        let batch: String = (start..end)
            .map(|i| Mc::set_cmd(&key(prefix, i), mc_flags(i), TTL, &value(i, len)))
            .collect();
        m.send(&batch).expect("send sets");
        for i in start..end {
            let l = m.line().expect("set reply");
            assert_eq!(l, "STORED", "set {}", key(prefix, i));
        }
    }
}

/// Every item of [`mc_load`] by `gets`, in key order (panics on a miss).
fn mc_snapshot(m: &mut Mc, prefix: &str, n: usize) -> Vec<Item> {
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(100) {
        let keys: Vec<String> = (start..(start + 100).min(n))
            .map(|i| key(prefix, i))
            .collect();
        let mut got = m.gets(&keys).expect("gets");
        for k in &keys {
            let pos = got.iter().position(|(g, _)| g == k);
            let Some(pos) = pos else {
                panic!("gets: {k} is missing");
            };
            out.push(got.swap_remove(pos).1);
        }
    }
    out
}

struct McResult {
    mc: Mc,
    errors: Vec<String>,
    ops: u64,
}

/// A memcached client thread on ONE socket: set (with flags) / gets / incr, every reply
/// checked.
fn mc_load_thread(
    port: u16,
    index: usize,
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
) -> JoinHandle<McResult> {
    let mut mc = Mc::connect(port);
    thread::spawn(move || {
        let mut errors = Vec::new();
        let ctr = format!("mc{index}:ctr");
        if let Err(e) = mc
            .call(&Mc::set_cmd(&ctr, 0, 0, "0"))
            .and_then(|l| (l == "STORED").then_some(()).ok_or(io_err(l)))
        {
            errors.push(format!("m{index}: init: {e}"));
            return McResult { mc, errors, ops: 0 };
        }
        let mut n: u64 = 0;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let k = format!("m{index}:{}", n % 100);
            let v = n.to_string();
            let flags = (n % 65_536) as u32;
            let step = (|| -> Io<()> {
                let l = mc.call(&Mc::set_cmd(&k, flags, 0, &v))?;
                if l != "STORED" {
                    return Err(io_err(format!("set {k}: {l:?}")));
                }
                let got = mc.gets(std::slice::from_ref(&k))?;
                if got.len() != 1 || got[0].1.value != v.as_bytes() || got[0].1.flags != flags {
                    return Err(io_err(format!("gets {k}: {got:?}, want {v} flags {flags}")));
                }
                let l = mc.call(&format!("incr {ctr} 1\r\n"))?;
                if l != n.to_string() {
                    return Err(io_err(format!("incr {ctr}: {l:?}, want {n}")));
                }
                Ok(())
            })();
            if let Err(e) = step {
                errors.push(format!("m{index}: {e}"));
                return McResult { mc, errors, ops: n };
            }
            ops.store(n, Ordering::Relaxed);
        }
        McResult { mc, errors, ops: n }
    })
}

// ---------------------------------------------------------------------------------------
// 1. Redis clients under load
// ---------------------------------------------------------------------------------------

const KEYS: usize = 20_000;

#[test]
fn handoff_under_load_redis() {
    let _serial = serial();
    let s = Setup::new("redis");
    let mut old = s.start_old(2, false);
    let old_pid = old.pid();
    let mut c = old.redis();
    load_keys(&mut c, "k", KEYS, 32);
    let loads = start_loads(old.port, 4);

    let new_pid = s.handoff(&old, 2, "1", old_pid);
    assert_old_exits_0(&mut old);

    let mut results = finish_loads(loads, 200);
    check_same_sessions(&mut results, new_pid);
    // A connection opened before the handoff and idle during it.
    assert_eq!(
        info_number(&mut c, "server", "process_id") as i32,
        new_pid,
        "the idle connection moved"
    );
    check_keys(&mut c, "k", KEYS, 32, true);
    let mut fresh = connect(old.port);
    check_keys(&mut fresh, "k", KEYS, 32, true);
    assert_eq!(as_int(&q(&mut fresh, "DBSIZE")) as usize, KEYS + 4 * 101);
}

// ---------------------------------------------------------------------------------------
// 2. memcached clients under load
// ---------------------------------------------------------------------------------------

#[test]
fn handoff_under_load_memcached() {
    let _serial = serial();
    let s = Setup::new("memcached");
    let mut old = s.start_old(2, true);
    let old_pid = old.pid();
    let mport = old.memcache_port();
    let mut m = Mc::connect(mport);
    mc_load(&mut m, "mk", KEYS, 40);
    let before = mc_snapshot(&mut m, "mk", KEYS);
    for (i, item) in before.iter().enumerate() {
        assert_eq!(item.flags, mc_flags(i), "flags of mk:{i} as loaded");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let ops: Vec<Arc<AtomicU64>> = (0..4).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let threads: Vec<_> = (0..4)
        .map(|i| mc_load_thread(mport, i, stop.clone(), ops[i].clone()))
        .collect();

    let new_pid = s.handoff(&old, 2, "1", old_pid);
    assert_old_exits_0(&mut old);

    let marks: Vec<u64> = ops.iter().map(|o| o.load(Ordering::Relaxed)).collect();
    let progressed = eventually(Duration::from_secs(30), || {
        ops.iter()
            .zip(&marks)
            .zip(&threads)
            .all(|((o, m), t)| o.load(Ordering::Relaxed) >= m + 200 || t.is_finished())
    });
    stop.store(true, Ordering::Relaxed);
    let results: Vec<McResult> = threads
        .into_iter()
        .map(|t| t.join().expect("memcached load thread panicked"))
        .collect();
    let errors: Vec<&String> = results.iter().flat_map(|r| &r.errors).collect();
    assert!(errors.is_empty(), "memcached client errors: {errors:?}");
    assert!(
        progressed,
        "memcached load made no progress after the handoff: {:?}",
        results.iter().map(|r| r.ops).collect::<Vec<_>>()
    );
    // The same sockets still answer.
    for mut r in results {
        let v =
            r.mc.call("version\r\n")
                .expect("version on the same socket");
        assert!(v.starts_with("VERSION"), "version: {v:?}");
    }

    let mut fresh = connect(old.port);
    assert_eq!(
        info_number(&mut fresh, "server", "process_id") as i32,
        new_pid
    );
    // Values, flags and CAS unchanged, on the connection opened before the handoff.
    let after = mc_snapshot(&mut m, "mk", KEYS);
    let differ: Vec<String> = before
        .iter()
        .zip(&after)
        .enumerate()
        .filter(|(_, (b, a))| b != a)
        .take(10)
        .map(|(i, (b, a))| format!("mk:{i}: before {b:?} after {a:?}"))
        .collect();
    assert!(differ.is_empty(), "items changed:\n{}", differ.join("\n"));
    // TTLs (every 50th key).
    for i in (0..KEYS).step_by(50) {
        let l = m.call(&format!("mg {} t\r\n", key("mk", i))).expect("mg");
        let ttl: i64 = l
            .split(' ')
            .skip(1)
            .find_map(|t| t.strip_prefix('t'))
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("mg mk:{i} t: {l:?}"));
        assert!(ttl > TTL - 300 && ttl <= TTL, "mk:{i}: ttl {ttl}");
    }
    // cas with the CAS read before the handoff succeeds.
    let mut fresh_mc = Mc::connect(mport);
    for i in [0, KEYS / 2, KEYS - 1] {
        let k = key("mk", i);
        let cmd = format!("cas {k} 7 {TTL} 3 {}\r\nnew\r\n", before[i].cas);
        assert_eq!(
            fresh_mc.call(&cmd).unwrap(),
            "STORED",
            "cas {k} with the old CAS"
        );
        let got = fresh_mc.gets(std::slice::from_ref(&k)).unwrap();
        assert_eq!(got[0].1.value, b"new", "{k} after cas");
        assert_eq!(got[0].1.flags, 7, "{k} flags after cas");
    }
}

// ---------------------------------------------------------------------------------------
// 3. A different core count
// ---------------------------------------------------------------------------------------

#[test]
fn handoff_to_a_different_core_count() {
    let _serial = serial();
    let s = Setup::new("cores");
    let mut old = s.start_old(2, false);
    let old_pid = old.pid();
    let mut c = old.redis();
    load_keys(&mut c, "k", KEYS, 32);
    load_sets(&mut c);
    let loads = start_loads(old.port, 2);

    // 2 -> 1
    let pid1 = s.handoff(&old, 1, "to1", old_pid);
    assert_old_exits_0(&mut old);
    check_keys(&mut c, "k", KEYS, 32, true);
    check_sets(&mut c);

    // 1 -> 2: the new process is handed off in turn.
    let pid2 = s.handoff(&old, 2, "to2", pid1);
    assert_gone(pid1);
    let mut results = finish_loads(loads, 200);
    check_same_sessions(&mut results, pid2);
    check_keys(&mut c, "k", KEYS, 32, true);
    let mut fresh = connect(old.port);
    check_keys(&mut fresh, "k", KEYS, 32, true);
    check_sets(&mut fresh);
    assert_eq!(
        as_int(&q(&mut fresh, "DBSIZE")) as usize,
        KEYS + 2 * 101 + 3
    );
}

/// Sets (issue 14) in each form, which a handoff must carry whole.
fn load_sets(c: &mut redis::Connection) {
    run(c, &["SADD", "set:ints", "3", "1", "2"]);
    run(c, &["SADD", "set:small", "a", "b", "1"]);
    for i in 0..300 {
        run(c, &["SADD", "set:big", &format!("m{i}")]);
    }
}

fn check_sets(c: &mut redis::Connection) {
    assert_eq!(
        as_strings(&q(c, "SMEMBERS set:ints")),
        ["1", "2", "3"],
        "an intset lists its members in order"
    );
    assert_eq!(q(c, "OBJECT ENCODING set:ints"), bulk("intset"));
    let mut small = as_strings(&q(c, "SMEMBERS set:small"));
    small.sort();
    assert_eq!(small, ["1", "a", "b"]);
    assert_eq!(q(c, "SCARD set:big"), int(300));
    assert_eq!(q(c, "SISMEMBER set:big m299"), int(1));
}

// ---------------------------------------------------------------------------------------
// 4. The new process killed at each step
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// This long after the tool started (as soon as the new process exists, if later).
    After(u64),
    /// Right after the tool printed its first copy-progress line.
    FirstCopyLine,
    /// Right after the tool printed that the handoff passed its commit point (the
    /// per-shard cutover's first cut).
    CommitLine,
}

/// The tool's line for the commit point of the per-shard cutover.
fn is_commit_line(line: &str) -> bool {
    line.contains("step: commit point:")
}

/// A copy-progress line of the tool: its `core <n>: copying, <k> keys (...)` or
/// `core <n>: copied <k> keys (...)`, or a raw `COPY` event line.
fn is_copy_line(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    line.contains("COPY") || l.contains(": copying") || l.contains(": copied")
}

/// One test per kill point, each with its own old server: the new process is SIGKILLed
/// at `point`; the tool must exit non-zero, the old process serve on (the same
/// connections, all data, writes), and a handoff afterwards succeed.
mod new_process_killed {
    use super::*;

    #[test]
    fn at_start() {
        killed_at(KillPoint::After(0))
    }

    #[test]
    fn after_50ms() {
        killed_at(KillPoint::After(50))
    }

    #[test]
    fn after_200ms() {
        killed_at(KillPoint::After(200))
    }

    #[test]
    fn at_first_copy_line() {
        killed_at(KillPoint::FirstCopyLine)
    }

    #[test]
    fn right_after_the_commit_point() {
        killed_at(KillPoint::CommitLine)
    }
}

/// After a kill past the commit point: the keys of old shard 0 (cut over to the killed
/// process) may be gone, every other key has its value and TTL. Returns how many of
/// shard 0's keys are gone.
#[track_caller]
fn check_keys_but_shard_0(c: &mut redis::Connection, prefix: &str, n: usize, len: usize) -> usize {
    let mut gone = 0;
    read_keys(c, prefix, n, |i, got, t| {
        let k = key(prefix, i);
        if *got == Value::Nil && baton_ring::core_of(k.as_bytes(), 2) == 0 {
            gone += 1;
            return;
        }
        assert_eq!(
            *got,
            Value::BulkString(value(i, len).into_bytes()),
            "{k} (a key of old shard {}) after a kill past the commit point",
            baton_ring::core_of(k.as_bytes(), 2)
        );
        assert!(
            matches!(t, Value::Int(t) if *t > TTL - 300 && *t <= TTL),
            "{k}: TTL {t:?}"
        );
    });
    gone
}

/// Stops the load threads and collects what each saw.
fn join_loads(loads: Vec<Load>) -> Vec<LoadResult> {
    for l in &loads {
        l.stop.store(true, Ordering::Relaxed);
    }
    loads
        .into_iter()
        .map(|l| l.handle.join().expect("load thread panicked"))
        .collect()
}

/// Stops the load threads without judging their replies (past a commit point, the
/// writes on the lost shard are lost too); none may have lost its connection.
fn stop_loads(loads: Vec<Load>) -> Vec<LoadResult> {
    let results = join_loads(loads);
    for r in &results {
        assert!(!r.broken, "a load connection broke: {:?}", r.first_errors);
    }
    results
}

fn killed_at(point: KillPoint) {
    // The copy must outlast the kill point: 50k keys copied in 0.16 s on a quiet
    // machine, before the 200 ms point came.
    let n: usize = match point {
        KillPoint::After(ms) if ms >= 100 => 250_000,
        // The copy of the last shard must outlast the kill.
        KillPoint::CommitLine => 250_000,
        _ => 50_000,
    };
    const LEN: usize = 200;
    let _serial = serial();
    let s = Setup::new("kill");
    let mut old = s.start_old(2, false);
    let old_pid = old.pid();
    let mut c = old.redis();
    load_keys(&mut c, "k", n, LEN);
    let loads = start_loads(old.port, 2);

    // Kills at a time take the one-freeze path (every kill lands before its commit
    // point, PROMOTE); kills at a line take the per-shard cutover, whose commit point is
    // its first cut.
    let flags: &[&str] = match point {
        KillPoint::After(_) => &["--one-freeze"],
        KillPoint::FirstCopyLine | KillPoint::CommitLine => &["--per-shard"],
    };
    let mut tool = s.start_tool_with(&old, 2, "killed", flags);
    let started = Instant::now();
    if let KillPoint::FirstCopyLine = point {
        assert!(
            tool.wait_line(Duration::from_secs(30), is_copy_line),
            "{point:?}: the tool printed no copy-progress line; its output:\n{}",
            tool.log()
        );
    }
    if let KillPoint::CommitLine = point {
        assert!(
            tool.wait_line(Duration::from_secs(60), is_commit_line),
            "{point:?}: the tool printed no commit-point line; its output:\n{}",
            tool.log()
        );
    }
    let pid = find_new_process(&s.socket, Duration::from_secs(20)).unwrap_or_else(|| {
        panic!(
            "{point:?}: no process with --takeover {} appeared; tool output:\n{}",
            s.socket,
            tool.log()
        )
    });
    s.procs.add(pid);
    if let KillPoint::After(ms) = point {
        let at = started + Duration::from_millis(ms);
        // The kill moment is the test's input, not a synchronisation.
        thread::sleep(at.saturating_duration_since(Instant::now()));
    }
    kill(pid, libc::SIGKILL);
    let status = tool.wait();
    eprintln!(
        "{point:?}: tool exited {status} after the kill; output:\n{}",
        tool.log()
    );
    assert!(
        old.wait_exit(Duration::ZERO).is_none(),
        "{point:?}: the old process exited after its new process was killed; \
         tool output:\n{}\nold stderr:\n{}",
        tool.log(),
        old.stderr()
    );
    assert!(
        !status.success(),
        "{point:?}: the tool exited 0 although the new process was SIGKILLed \
         (did the handoff finish before the kill? then this kill point is too late \
         for this data size); tool output:\n{}",
        tool.log()
    );
    assert!(
        eventually(Duration::from_secs(5), || !alive(pid)),
        "the killed process {pid} still runs"
    );
    // Whether the kill came past the commit point (the per-shard cutover's first cut):
    // a time-based kill point may land on either side of it.
    let committed = tool.log().lines().any(is_commit_line);
    eprintln!(
        "{point:?}: the kill came {} the commit point",
        if committed { "after" } else { "before" }
    );
    if let KillPoint::CommitLine = point {
        assert!(committed, "{point:?}: not past the commit point");
    }
    // The old process serves on: the same connection, all data (past the commit point:
    // all but the shard cut over, as the tool says), writes.
    assert_eq!(
        info_number(&mut c, "server", "process_id") as i32,
        old_pid,
        "{point:?}: the port is not served by the old process after the abort"
    );
    let check = |c: &mut redis::Connection| {
        if committed {
            let gone = check_keys_but_shard_0(c, "k", n, LEN);
            eprintln!("{point:?}: {gone} keys of old shard 0 went with the killed process");
        } else {
            check_keys(c, "k", n, LEN, true);
        }
    };
    if committed {
        assert!(
            tool.log().contains("is lost"),
            "{point:?}: the tool did not say what was lost; its output:\n{}",
            tool.log()
        );
    }
    check(&mut c);
    assert_eq!(
        run(&mut c, &["SET", "after", "x"]),
        ok(),
        "{point:?}: a write after the abort"
    );
    assert_eq!(run(&mut c, &["GET", "after"]), bulk("x"));

    // A handoff afterwards succeeds, with everything. The old process may take a moment
    // to notice the abort: while it refuses with "already in progress" (nothing is
    // started then), retry for a bounded time.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut probe = s.start_tool(&old, 2, "probe");
        if probe.wait().success() {
            let mut c2 = connect(old.port);
            let pid = info_number(&mut c2, "server", "process_id") as i32;
            s.procs.add(pid);
            assert_ne!(pid, old_pid, "the tool exited 0 but the old process serves");
            break;
        }
        let log = probe.log();
        assert!(
            log.contains("already in progress") && Instant::now() < deadline,
            "{point:?}: the handoff after the abort failed (refused for 10 s, or failed \
             otherwise); its output:\n{log}\nnew process log:\n{}\nold stderr:\n{}",
            s.new_log("probe"),
            old.stderr()
        );
        thread::sleep(Duration::from_millis(200));
    }
    assert_old_exits_0(&mut old);
    let new_pid = info_number(&mut c, "server", "process_id") as i32;
    let mut results = if committed {
        stop_loads(loads)
    } else {
        finish_loads(loads, 200)
    };
    check_same_sessions(&mut results, new_pid);
    check(&mut c);
    assert_eq!(run(&mut c, &["GET", "after"]), bulk("x"));
}

/// The number in `name:<number>` of a `INFO commandstats` line `cmdstat_<cmd>:calls=..`,
/// or of a memcached `STAT <name> <number>` line.
fn calls_of(c: &mut redis::Connection, cmd: &str) -> u64 {
    let text: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(c)
        .expect("INFO");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:calls=")))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

fn mc_stat(m: &mut Mc, name: &str) -> u64 {
    m.send("stats\r\n").expect("stats");
    let mut found = None;
    loop {
        let l = m.line().expect("a stats line");
        if l == "END" {
            return found.unwrap_or_else(|| panic!("no STAT {name}"));
        }
        if let Some(v) = l.strip_prefix(&format!("STAT {name} ")) {
            found = v.parse().ok();
        }
    }
}

/// During the per-shard cutover (the default path), a request on a shard already cut
/// over is forwarded to the new process and answered there at once, not held until the
/// connections move: GET in RESP2, HGETALL in RESP3 (a map comes back, as the client
/// asked), memcached `get`. Each client cycles over 64 keys, about half of them on shard
/// 0 (cut first); it stops the moment the tool says the final freeze begins, before any
/// connection moves. So whatever the new process ran of those commands it ran for the
/// old one: without forwarding it could run at most the one request each client had
/// waiting, which moves with its connection.
#[test]
fn requests_on_a_cut_shard_are_forwarded_to_the_new_process() {
    const N: usize = 64;
    let _serial = serial();
    let s = Setup::new("forward");
    let mut old = s.start_old(2, true);
    let old_pid = old.pid();
    let mut c = old.redis();
    // Bulk, so that copying shard 1 takes a while: the stretch under test.
    load_keys(&mut c, "bulk", 100_000, 512);
    load_keys(&mut c, "k", N, 16);
    for i in 0..N {
        let _: i64 = redis::cmd("HSET")
            .arg(key("h", i))
            .arg("f")
            .arg(value(i, 8))
            .query(&mut c)
            .expect("HSET");
    }
    let mut m = Mc::connect(old.memcache_port());
    mc_load(&mut m, "m", N, 16);

    let stop = Arc::new(AtomicBool::new(false));
    let cut = Arc::new(AtomicBool::new(false));
    // Each thread: replies taken after shard 0 was cut, and any wrong answer.
    type Outcome = (u64, Vec<String>);
    let spawn = |body: Box<dyn FnMut(usize) -> Result<(), String> + Send>| {
        let (stop, cut) = (stop.clone(), cut.clone());
        let mut body = body;
        thread::spawn(move || -> Outcome {
            let (mut after_cut, mut wrong) = (0, Vec::new());
            let mut i = 0;
            while !stop.load(Ordering::Acquire) {
                let was_cut = cut.load(Ordering::Acquire);
                match body(i % N) {
                    Ok(()) if was_cut => after_cut += 1,
                    Ok(()) => {}
                    Err(e) => wrong.push(e),
                }
                i += 1;
            }
            (after_cut, wrong)
        })
    };
    let port = old.port;
    let mut r2 = Raw::connect(port);
    let resp2 = spawn(Box::new(move |i| match r2.call(&["GET", &key("k", i)]) {
        redis::Value::BulkString(v) if v == value(i, 16).as_bytes() => Ok(()),
        other => Err(format!("GET k:{i}: {other:?}")),
    }));
    let mut r3 = Raw::connect(port);
    assert!(matches!(r3.call(&["HELLO", "3"]), redis::Value::Map(_)));
    let resp3 = spawn(Box::new(move |i| {
        match r3.call(&["HGETALL", &key("h", i)]) {
            redis::Value::Map(pairs)
                if pairs
                    == vec![(
                        redis::Value::BulkString(b"f".to_vec()),
                        redis::Value::BulkString(value(i, 8).into_bytes()),
                    )] =>
            {
                Ok(())
            }
            other => Err(format!("HGETALL h:{i}: {other:?}")),
        }
    }));
    let mut mc = Mc::connect(old.memcache_port());
    let memcached = spawn(Box::new(move |i| {
        let k = key("m", i);
        match mc.gets(std::slice::from_ref(&k)) {
            Ok(items) if items.len() == 1 && items[0].1.value == value(i, 16).as_bytes() => Ok(()),
            other => Err(format!("gets {k}: {other:?}")),
        }
    }));

    let tool = s.start_tool(&old, 2, "1");
    let lines = [
        "step: path: per-shard cutover",
        "step: shard 0 cut over",
        "step: freezing",
    ];
    for (n, want) in lines.iter().enumerate() {
        assert!(
            tool.wait_line(Duration::from_secs(60), |l| l.starts_with(want)),
            "the tool printed no {want:?} line; its output:\n{}",
            tool.log()
        );
        if n == 1 {
            assert!(
                tool.log()
                    .contains("its requests are forwarded to the new process"),
                "shard 0's requests are not forwarded; tool output:\n{}",
                tool.log()
            );
            cut.store(true, Ordering::Release);
        }
    }
    stop.store(true, Ordering::Release);
    let outcomes: Vec<Outcome> = [resp2, resp3, memcached]
        .into_iter()
        .map(|t| t.join().expect("a client thread panicked"))
        .collect();
    let new_pid = s.finish(tool, &old, "1", old_pid);
    assert_old_exits_0(&mut old);

    for (name, (after_cut, wrong)) in ["GET", "HGETALL", "memcached gets"].iter().zip(&outcomes) {
        assert!(wrong.is_empty(), "{name}: wrong answers: {wrong:?}");
        assert!(
            *after_cut > 0,
            "{name}: no answer while shard 0 was cut over"
        );
    }
    // What the new process ran of them, it ran before the connections moved (the
    // clients had stopped), except the one request each may have had waiting.
    let mut fresh = connect(old.port);
    assert_eq!(
        info_number(&mut fresh, "server", "process_id") as i32,
        new_pid
    );
    let (gets, hgetalls) = (calls_of(&mut fresh, "get"), calls_of(&mut fresh, "hgetall"));
    let mut m = Mc::connect(old.memcache_port());
    let mc_gets = mc_stat(&mut m, "cmd_get");
    for (name, ran) in [
        ("GET", gets),
        ("HGETALL", hgetalls),
        ("memcached gets", mc_gets),
    ] {
        assert!(
            ran >= 8,
            "{name}: the new process ran {ran} of them; forwarded requests run there"
        );
    }
    // The data is whole: shard 0's keys answer from the new process as before.
    check_keys(&mut fresh, "k", N, 16, true);
}

// ---------------------------------------------------------------------------------------
// 5. A second handoff
// ---------------------------------------------------------------------------------------

#[test]
fn second_handoff() {
    let _serial = serial();
    let s = Setup::new("second");
    let mut old = s.start_old(2, false);
    let old_pid = old.pid();
    let mut c = old.redis();
    load_keys(&mut c, "k", KEYS, 32);
    let loads = start_loads(old.port, 4);

    // The first shard by shard (the default), the second in one freeze (as the
    // operator asks).
    let first = s.start_tool(&old, 2, "1");
    assert!(
        first.wait_line(Duration::from_secs(60), |l| l
            .starts_with("step: path: per-shard cutover")),
        "the first handoff did not take the per-shard cutover; tool output:\n{}",
        first.log()
    );
    let pid1 = s.finish(first, &old, "1", old_pid);
    assert_old_exits_0(&mut old);
    check_keys(&mut c, "k", KEYS, 32, true);

    let second = s.start_tool_with(&old, 2, "2", &["--one-freeze"]);
    assert!(
        second.wait_line(Duration::from_secs(60), |l| {
            l == "step: path: one freeze for all shards (baton-handoff asked for it)"
        }),
        "the second handoff did not take one freeze; tool output:\n{}",
        second.log()
    );
    let pid2 = s.finish(second, &old, "2", pid1);
    assert_ne!(pid2, old_pid);
    assert_gone(pid1);

    let mut results = finish_loads(loads, 200);
    check_same_sessions(&mut results, pid2);
    check_keys(&mut c, "k", KEYS, 32, true);
    assert_eq!(info_number(&mut c, "server", "process_id") as i32, pid2);
}

// ---------------------------------------------------------------------------------------
// 6. A subscriber gets each message exactly once
// ---------------------------------------------------------------------------------------

#[test]
fn subscriber_gets_each_message_once() {
    let _serial = serial();
    let s = Setup::new("pubsub");
    let mut old = s.start_old(2, false);
    let old_pid = old.pid();
    let mut c = old.redis();
    load_keys(&mut c, "k", KEYS, 32);

    let mut sub = old.raw();
    sub.send_command(&["SUBSCRIBE", "ch"]);
    assert_eq!(
        sub.read_value(),
        arr(vec![bulk("subscribe"), bulk("ch"), Value::Int(1)])
    );
    let reader = thread::spawn(move || {
        let mut got: Vec<String> = Vec::new();
        loop {
            let v = sub.read_value();
            let items = as_array(&v);
            assert_eq!(items.len(), 3, "not a message: {v:?}");
            assert_eq!(items[0], bulk("message"), "{v:?}");
            let payload = as_str(&items[2]);
            if payload == "end" {
                return (sub, got);
            }
            got.push(payload);
        }
    });

    let mut publ = connect(old.port);
    assert!(
        eventually(Duration::from_secs(5), || {
            run(&mut publ, &["PUBSUB", "NUMSUB", "ch"]) == arr(vec![bulk("ch"), Value::Int(1)])
        }),
        "the subscription is not registered"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let (stop2, sent2) = (stop.clone(), sent.clone());
    let publisher = thread::spawn(move || {
        let mut errors = Vec::new();
        let mut n: u64 = 0;
        while !stop2.load(Ordering::Relaxed) {
            use redis::ConnectionLike;
            let cmd = redis::cmd("PUBLISH").arg("ch").arg(n.to_string()).clone();
            match publ.req_command(&cmd) {
                Ok(Value::Int(1)) => {}
                Ok(other) => errors.push(format!("PUBLISH {n}: {other:?}")),
                Err(e) => {
                    errors.push(format!("PUBLISH {n}: I/O error {e}"));
                    n += 1;
                    break;
                }
            }
            n += 1;
            sent2.store(n, Ordering::Relaxed);
        }
        (publ, n, errors)
    });

    let new_pid = s.handoff(&old, 2, "1", old_pid);
    assert_old_exits_0(&mut old);
    let mark = sent.load(Ordering::Relaxed);
    let progressed = eventually(Duration::from_secs(30), || {
        sent.load(Ordering::Relaxed) >= mark + 200 || publisher.is_finished()
    });
    stop.store(true, Ordering::Relaxed);
    let (mut publ, n, errors) = publisher.join().expect("publisher panicked");
    assert!(errors.is_empty(), "publisher errors: {errors:?}");
    assert!(progressed, "no messages published after the handoff");
    assert_eq!(run(&mut publ, &["PUBLISH", "ch", "end"]), Value::Int(1));
    let (mut sub, got) = reader.join().expect("subscriber read failed");
    let want: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    if got != want {
        let first = got
            .iter()
            .zip(&want)
            .position(|(g, w)| g != w)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "the subscriber got {} messages for {} published; first difference at #{first}: \
             got {:?}, want {:?}",
            got.len(),
            want.len(),
            got.get(first..(first + 5).min(got.len())),
            want.get(first..(first + 5).min(want.len()))
        );
    }
    // Still subscribed on the same socket, now on the new process.
    sub.send_command(&["PING"]);
    assert_eq!(sub.read_value(), arr(vec![bulk("pong"), bulk("")]));
    assert_eq!(
        info_number(&mut publ, "server", "process_id") as i32,
        new_pid
    );
}

// ---------------------------------------------------------------------------------------
// 7. A second handoff while one is in progress is refused
// ---------------------------------------------------------------------------------------

/// The first handoff's new process is stopped (SIGSTOP) once it is copying, so that
/// handoff is in progress for as long as the test wants; a second tool run meanwhile must
/// fail without disturbing it, and the first completes once its new process runs again.
#[test]
fn concurrent_handoff_is_refused() {
    let _serial = serial();
    let s = Setup::new("concurrent");
    let mut old = s.start_old(2, false);
    let old_pid = old.pid();
    let mut c = old.redis();
    load_keys(&mut c, "k", 50_000, 200);

    let first = s.start_tool(&old, 2, "first");
    assert!(
        first.wait_line(Duration::from_secs(30), is_copy_line),
        "the tool printed no copy-progress line; its output:\n{}",
        first.log()
    );
    let pid1 = find_new_process(&s.socket, Duration::from_secs(5)).expect("first new process");
    s.procs.add(pid1);
    kill(pid1, libc::SIGSTOP);

    let mut second = s.start_tool(&old, 2, "second");
    let status = second.wait();
    eprintln!("the second tool exited {status}; output:\n{}", second.log());
    for pid in takeover_pids(&s.socket) {
        if pid != pid1 {
            s.procs.add(pid);
        }
    }
    kill(pid1, libc::SIGCONT);
    assert!(
        !status.success(),
        "a second handoff during one in progress exited 0; its output:\n{}",
        second.log()
    );
    assert!(
        old.wait_exit(Duration::ZERO).is_none(),
        "the old process exited during the refused handoff; stderr:\n{}",
        old.stderr()
    );

    // The first handoff completes after the refused one.
    let pid = s.finish(first, &old, "first", old_pid);
    assert_eq!(pid, pid1, "the first handoff's process serves");
    assert_old_exits_0(&mut old);
    assert_eq!(info_number(&mut c, "server", "process_id") as i32, pid1);
    check_keys(&mut c, "k", 50_000, 200, true);
}

// ---------------------------------------------------------------------------------------
// The old process dies mid-handoff
// ---------------------------------------------------------------------------------------

/// The old process is SIGKILLed while the new one copies: the new one promotes itself,
/// accepts on the listeners it was passed, and serves what it copied (logging the loss).
#[test]
fn old_process_killed_during_the_copy_leaves_the_new_one_serving() {
    const N: usize = 200_000;
    const LEN: usize = 200;
    let _serial = serial();
    let s = Setup::new("oldkill");
    let mut old = s.start_old(2, false);
    let old_pid = old.pid();
    let port = old.port;
    let mut c = old.redis();
    load_keys(&mut c, "k", N, LEN);
    let mut tool = s.start_tool(&old, 2, "oldkill");
    assert!(
        tool.wait_line(Duration::from_secs(30), is_copy_line),
        "the tool printed no copy-progress line; its output:\n{}",
        tool.log()
    );
    let new_pid = find_new_process(&s.socket, Duration::from_secs(5))
        .expect("the new process runs while it copies");
    s.procs.add(new_pid);
    old.signal(libc::SIGKILL);
    assert!(
        old.wait_exit(Duration::from_secs(10)).is_some(),
        "the old process is gone"
    );
    let status = tool.wait();
    assert!(
        !status.success(),
        "the tool exited 0 although the old process died mid-copy; output:\n{}",
        tool.log()
    );
    // The new process serves the port now, as a primary, with what it copied.
    let mut served = None;
    assert!(
        eventually(Duration::from_secs(10), || {
            let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else {
                return false;
            };
            let Ok(mut c) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
                return false;
            };
            let pid = info_number(&mut c, "server", "process_id") as i32;
            let ok = pid == new_pid;
            served = Some(c);
            ok
        }),
        "the new process does not serve the port after the old one died; its log:\n{}",
        s.new_log("oldkill")
    );
    let mut c = served.expect("connected");
    assert_ne!(new_pid, old_pid);
    let role = as_array(&run(&mut c, &["ROLE"]));
    assert_eq!(
        as_str(&role[0]),
        "master",
        "the new process promoted itself"
    );
    let keys = as_int(&run(&mut c, &["DBSIZE"])) as usize;
    assert!(keys <= N, "{keys} keys, more than were written");
    assert_eq!(run(&mut c, &["SET", "after", "x"]), ok());
    assert_eq!(run(&mut c, &["GET", "after"]), bulk("x"));
    let log = s.new_log("oldkill");
    assert!(
        log.contains("went away before the handoff finished"),
        "the new process does not say what happened; its log:\n{log}"
    );
    eprintln!("the new process kept {keys} of {N} keys");
}

// ---------------------------------------------------------------------------------------
// Replication links across a handoff
// ---------------------------------------------------------------------------------------

/// `INFO <section>`'s value of `name` as text.
fn info_text(c: &mut redis::Connection, section: &str, name: &str) -> String {
    let text: String = redis::cmd("INFO").arg(section).query(c).expect("INFO");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Waits until `replica` holds `key` with `value`.
#[track_caller]
fn wait_for(replica: u16, key: &str, value: &str) {
    assert!(
        eventually(Duration::from_secs(15), || {
            let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{replica}/")) else {
                return false;
            };
            let Ok(mut c) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
                return false;
            };
            redis::cmd("GET")
                .arg(key)
                .query::<Option<String>>(&mut c)
                .ok()
                .flatten()
                .as_deref()
                == Some(value)
        }),
        "the replica on port {replica} never got {key}={value}"
    );
}

/// A primary handed over: its replica reconnects to the new process and resumes by
/// partial resync (the new process keeps the old replication id as its second one).
#[test]
fn a_primary_handed_over_keeps_its_replica_on_a_partial_resync() {
    let _serial = serial();
    let s = Setup::new("replp");
    let mut old = s.start_old(2, false);
    let old_pid = old.pid();
    let replica = Server::builder(2).start();
    let mut c = old.redis();
    load_keys(&mut c, "k", 5_000, 100);
    let mut rc = replica.redis();
    assert_eq!(
        run(&mut rc, &["REPLICAOF", "127.0.0.1", &old.port.to_string()]),
        ok()
    );
    assert_eq!(run(&mut c, &["SET", "before", "1"]), ok());
    wait_for(replica.port, "before", "1");

    let new_pid = s.handoff(&old, 2, "replp", old_pid);
    assert_old_exits_0(&mut old);
    let mut nc = connect(old.port);
    assert_eq!(run(&mut nc, &["SET", "after", "2"]), ok());
    wait_for(replica.port, "after", "2");
    assert_eq!(
        info_text(&mut nc, "stats", "sync_partial_ok"),
        "1",
        "the replica did not resume by partial resync from the new process (pid {new_pid})"
    );
    assert_eq!(info_text(&mut nc, "stats", "sync_full"), "0");
    assert_eq!(info_text(&mut nc, "replication", "connected_slaves"), "1");
    check_keys(&mut rc, "k", 5_000, 100, false);
}

/// A replica handed over: the new process copies from it, then follows its primary from
/// the copied offsets (a partial resync on the primary), and stays a replica.
#[test]
fn a_replica_handed_over_follows_its_primary_on_a_partial_resync() {
    let _serial = serial();
    let primary = Server::builder(2).start();
    let s = Setup::new("replr");
    let mut old = s.start_old(2, false);
    let old_pid = old.pid();
    let mut pc = primary.redis();
    load_keys(&mut pc, "k", 5_000, 100);
    let mut oc = old.redis();
    assert_eq!(
        run(
            &mut oc,
            &["REPLICAOF", "127.0.0.1", &primary.port.to_string()]
        ),
        ok()
    );
    assert_eq!(run(&mut pc, &["SET", "before", "1"]), ok());
    wait_for(old.port, "before", "1");
    assert!(
        eventually(Duration::from_secs(10), || info_text(
            &mut oc,
            "replication",
            "master_link_status"
        ) == "up"),
        "the replica's link never came up"
    );
    let full_before = info_text(&mut pc, "stats", "sync_full");

    let mut flags = s.new_flags(&old, 2);
    flags.extend(["--replicaof".into(), format!("127.0.0.1 {}", primary.port)]);
    let tool = Tool::start(&s.socket, &s.dir.path("new-replr.log"), &flags);
    let new_pid = s.finish(tool, &old, "replr", old_pid);
    assert_old_exits_0(&mut old);
    let mut nc = connect(old.port);
    assert_eq!(info_number(&mut nc, "server", "process_id") as i32, new_pid);
    assert_eq!(info_text(&mut nc, "replication", "role"), "slave");
    assert_eq!(run(&mut pc, &["SET", "after", "2"]), ok());
    wait_for(old.port, "after", "2");
    if info_text(&mut pc, "stats", "sync_full") != full_before {
        let log = std::fs::read_to_string(s.dir.path("new-replr.log")).unwrap_or_default();
        eprintln!("the new process's log:\n{log}");
    }
    assert_eq!(
        info_text(&mut pc, "stats", "sync_full"),
        full_before,
        "the primary had to full-sync the new process"
    );
    assert_eq!(info_text(&mut pc, "stats", "sync_partial_ok"), "1");
    check_keys(&mut nc, "k", 5_000, 100, false);
}

// ---------------------------------------------------------------------------------------
// 8. A client blocked in WAIT, and the copy is not a replica to clients
// ---------------------------------------------------------------------------------------

/// A client blocked in `WAIT 1 0` (no replica: it would wait forever) does not hold the
/// freeze: it is answered with the count it has (0) and moves with its session. While the
/// new process copies the shards (as a replica would), the old one does not count or
/// list it as a replica: WAIT 1 returns 0 and INFO shows `connected_slaves:0`.
#[test]
fn a_blocked_wait_does_not_hold_the_handoff_and_the_copy_is_no_replica() {
    const N: usize = 250_000; // a copy long enough to look at the old process during it
    let _serial = serial();
    let s = Setup::new("wait");
    let mut old = s.start_old(2, false);
    let old_pid = old.pid();
    let mut c = old.redis();
    load_keys(&mut c, "k", N, 64);

    let mut blocked = connect(old.port);
    let blocked_id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut blocked).unwrap();
    let waiter = thread::spawn(move || {
        let n: redis::RedisResult<i64> = redis::cmd("WAIT").arg(1).arg(0).query(&mut blocked);
        (n, blocked)
    });
    assert!(
        eventually(Duration::from_secs(5), || {
            let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut c).unwrap();
            list.lines()
                .any(|l| l.starts_with(&format!("id={blocked_id} ")) && l.contains("cmd=wait"))
        }),
        "the WAIT client never showed up as running WAIT"
    );

    let tool = s.start_tool(&old, 2, "wait");
    assert!(
        tool.wait_line(Duration::from_secs(30), is_copy_line),
        "the tool printed no copy-progress line; its output:\n{}",
        tool.log()
    );
    // The copy runs: the old process has a replica-like flow to the new one.
    let mut probe = connect(old.port);
    let during: i64 = redis::cmd("WAIT").arg(1).arg(20).query(&mut probe).unwrap();
    let slaves = info_text(&mut probe, "replication", "connected_slaves");
    let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut probe).unwrap();
    // The handoff succeeds with a client blocked in WAIT 1 0.
    let new_pid = s.finish(tool, &old, "wait", old_pid);
    assert_eq!(during, 0, "WAIT counted the handoff's copy as a replica");
    assert_eq!(slaves, "0", "INFO listed the handoff's copy as a replica");
    assert!(
        matches!(role.get(2), Some(redis::Value::Array(a)) if a.is_empty()),
        "ROLE listed the handoff's copy as a replica: {role:?}"
    );

    let (n, mut blocked) = waiter.join().unwrap();
    assert_eq!(n.expect("the blocked WAIT's reply"), 0);
    // The same socket, now served by the new process, with the same client id.
    let pid = info_number(&mut blocked, "server", "process_id") as i32;
    assert_eq!(
        pid, new_pid,
        "the WAIT client is not served by the new process"
    );
    let id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut blocked).unwrap();
    assert_eq!(id, blocked_id);
    assert_old_exits_0(&mut old);
    check_keys(&mut c, "k", N, 64, true);
}

/// A client blocked in BLPOP when the handoff freezes its core is answered as timed out
/// (a null array: it popped nothing), and its connection moves with its session: it can
/// block again on the new process and is woken there.
#[test]
fn a_blocked_client_is_released_and_moves() {
    let _serial = serial();
    let s = Setup::new("blocked");
    let mut old = s.start_old(2, false);
    let old_pid = old.pid();
    let mut c = old.redis();
    let mut blocker = old.redis();
    let id = as_int(&q(&mut blocker, "CLIENT ID"));
    let waiting = thread::spawn(move || {
        let v = q(&mut blocker, "BLPOP blk 0");
        (v, blocker)
    });
    assert!(
        eventually(Duration::from_secs(20), || info_number(
            &mut c,
            "clients",
            "blocked_clients"
        ) == 1),
        "the client never blocked"
    );
    let pid = s.handoff(&old, 2, "blocked", old_pid);
    assert_old_exits_0(&mut old);
    let (v, mut blocker) = waiting.join().unwrap();
    assert_eq!(v, Value::Nil, "released as a timeout");
    assert_eq!(
        as_int(&q(&mut blocker, "CLIENT ID")),
        id,
        "the same session"
    );
    let again = thread::spawn(move || q(&mut blocker, "BLPOP blk 0"));
    assert!(
        eventually(Duration::from_secs(20), || info_number(
            &mut c,
            "clients",
            "blocked_clients"
        ) == 1),
        "the client never blocked on the new process"
    );
    assert_eq!(q(&mut c, "RPUSH blk after"), int(1));
    assert_eq!(again.join().unwrap(), arr(vec![bulk("blk"), bulk("after")]));
    assert_eq!(info_number(&mut c, "server", "process_id") as i32, pid);
}

// ---------------------------------------------------------------------------------------
// 9. CLIENT LIST's age= and idle= go on from the old process
// ---------------------------------------------------------------------------------------

/// `name=value` field `name` of a CLIENT LIST / CLIENT INFO line, as a number.
fn client_field(line: &str, name: &str) -> u64 {
    line.split(' ')
        .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{name}= is not a number in {line:?}"))
}

/// The CLIENT LIST line of client `id`, asked on `c`.
fn client_line(c: &mut redis::Connection, id: i64) -> String {
    let list = as_str(&q(c, "CLIENT LIST"));
    list.lines()
        .find(|l| l.starts_with(&format!("id={id} ")))
        .unwrap_or_else(|| panic!("client {id} is not in CLIENT LIST:\n{list}"))
        .to_string()
}

/// A connection moved by a handoff keeps its age (CLIENT INFO `age=`) and its idle time
/// (`idle=` of a connection that sent nothing meanwhile): neither starts again at 0 in
/// the new process.
#[test]
fn client_age_and_idle_survive_the_handoff() {
    let _serial = serial();
    let s = Setup::new("age");
    let mut old = s.start_old(2, false);
    let old_pid = old.pid();
    let mut long = old.redis();
    let mut quiet = old.redis();
    let quiet_id = as_int(&q(&mut quiet, "CLIENT ID"));
    // Let both connections age past 2 s (a wait for the clock, not a timing assertion).
    assert!(
        eventually(Duration::from_secs(20), || {
            client_field(&client_line(&mut long, quiet_id), "idle") >= 2
        }),
        "the quiet connection never reached idle=2"
    );
    let age_before = client_field(&as_str(&q(&mut long, "CLIENT INFO")), "age");
    let idle_before = client_field(&client_line(&mut long, quiet_id), "idle");
    assert!(age_before >= 2, "age={age_before} before the handoff");

    let new_pid = s.handoff(&old, 2, "age", old_pid);
    assert_old_exits_0(&mut old);
    assert_eq!(
        info_number(&mut long, "server", "process_id") as i32,
        new_pid,
        "the long-lived connection is served by the new process"
    );
    let info = as_str(&q(&mut long, "CLIENT INFO"));
    let age_after = client_field(&info, "age");
    assert!(
        age_after >= age_before,
        "CLIENT INFO age went back over the handoff: {age_before} before, {age_after} after ({info})"
    );
    let line = client_line(&mut long, quiet_id);
    let idle_after = client_field(&line, "idle");
    assert!(
        idle_after >= idle_before,
        "the quiet connection's idle went back over the handoff: {idle_before} before, \
         {idle_after} after ({line})"
    );
    // The quiet connection is the same session, and now it was used: idle=0.
    assert_eq!(as_int(&q(&mut quiet, "CLIENT ID")), quiet_id);
    assert_eq!(
        client_field(&client_line(&mut long, quiet_id), "idle"),
        0,
        "a command on the moved connection did not reset its idle time"
    );
}

// ---------------------------------------------------------------------------------------
// Peak memory of old + new (issue 12 item 5)
// ---------------------------------------------------------------------------------------

/// VmRSS of `pid` in KiB; `None` once it is gone.
fn vm_rss_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The old process's VmRSS once it holds still: two reads 200 ms apart within 1% of each
/// other (the allocator returns freed pages after a delay), or the last read after 10 s.
fn steady_rss_kib(pid: i32) -> u64 {
    let mut last = vm_rss_kib(pid).expect("the old server's VmRSS");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        thread::sleep(Duration::from_millis(200));
        let now = vm_rss_kib(pid).expect("the old server's VmRSS");
        if now.abs_diff(last) * 100 <= last || Instant::now() >= deadline {
            return now;
        }
        last = now;
    }
}

/// The highest VmRSS sum of the old process and the new one(s) of a handoff on `socket`,
/// sampled every 5 ms while a handoff runs.
struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<(u64, u64, u64, u64)>,
}

impl RssSampler {
    fn start(old_pid: i32, socket: &str) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let socket = socket.to_string();
        let handle = thread::spawn(move || {
            // (peak of old + new, old at that peak, new at that peak, samples)
            let (mut peak, mut peak_old, mut peak_new, mut samples) = (0, 0, 0, 0u64);
            let mut new_pid: Option<i32> = None;
            let mut last_scan = Instant::now() - Duration::from_secs(1);
            while !stop2.load(Ordering::Relaxed) {
                // Scanning /proc for the new process costs more than a sample: not too often.
                if new_pid.is_none() && last_scan.elapsed() >= Duration::from_millis(20) {
                    new_pid = takeover_pids(&socket).into_iter().next();
                    last_scan = Instant::now();
                }
                let old = vm_rss_kib(old_pid).unwrap_or(0);
                let new = new_pid.and_then(vm_rss_kib).unwrap_or(0);
                samples += 1;
                if old + new > peak {
                    (peak, peak_old, peak_new) = (old + new, old, new);
                }
                thread::sleep(Duration::from_millis(5));
            }
            (peak, peak_old, peak_new, samples)
        });
        RssSampler { stop, handle }
    }

    fn finish(self) -> (u64, u64, u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("RSS sampler panicked")
    }
}

/// Issue 12 item 5: the peak RSS of old + new during a handoff is at most
/// (1 + 1.5/cores) x the old process's steady RSS, here 200k keys of 1 KiB (about
/// 230 MB per copy) handed from `--cores 2` to `--cores 2` under a light load.
///
/// Run it with `cargo test --test handoff peak_rss -- --ignored --nocapture` (it prints
/// the figures either way).
#[test]
fn peak_rss_of_a_handoff_stays_within_the_bound() {
    const CORES: usize = 2;
    const N: usize = 200_000;
    const LEN: usize = 1024;
    let _serial = serial();
    let s = Setup::new("rss");
    let mut old = s.start_old(CORES, false);
    let old_pid = old.pid();
    let mut c = old.redis();
    load_keys(&mut c, "big", N, LEN);
    let steady = steady_rss_kib(old_pid);
    assert!(
        steady as usize > N * LEN / 1024,
        "the old server's steady VmRSS ({steady} KiB) is below the data it holds"
    );
    let loads = start_loads(old.port, 2);

    let sampler = RssSampler::start(old_pid, &s.socket);
    // The bound is the per-shard cutover's (the default, one freeze, peaks near 2x).
    let tool = s.start_tool_with(&old, CORES, "1", &["--per-shard"]);
    let new_pid = s.finish(tool, &old, "1", old_pid);
    assert_old_exits_0(&mut old);
    let (peak, peak_old, peak_new, samples) = sampler.finish();

    let ratio = peak as f64 / steady as f64;
    let bound = 1.0 + 1.5 / CORES as f64;
    eprintln!(
        "peak RSS old+new {peak} KiB (old {peak_old} + new {peak_new}) against the steady \
         {steady} KiB: {ratio:.3}x (bound {bound:.2}x; {samples} samples every 5 ms)"
    );
    finish_loads(loads, 100);
    let mut fresh = connect(old.port);
    assert_eq!(
        info_number(&mut fresh, "server", "process_id") as i32,
        new_pid
    );
    check_keys(&mut fresh, "big", N, LEN, true);

    assert!(
        ratio <= bound,
        "peak RSS of old + new is {ratio:.3}x the steady RSS ({peak} KiB: old {peak_old} + \
         new {peak_new}, steady {steady}); issue 12 allows {bound:.2}x"
    );
}
