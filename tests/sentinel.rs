//! Failover under unmodified redis-sentinel 7: a Baton primary and a Baton replica, three
//! real `redis-server --sentinel` processes watching them; the primary is SIGKILLed and
//! the sentinels must promote the replica, which keeps every write a `WAIT 1` acknowledged
//! and takes writes; the other replicas follow it. Also: `SENTINEL FAILOVER` on a live
//! primary, the old primary coming back on its port (the sentinels make it a replica of
//! the new one), and passwords everywhere with a `replica-priority 0` replica.
//!
//! What sentinel needs from Baton on the way (sentinel.c): INFO's `run_id` and
//! `# Replication` fields (`role`, `slaveN:ip=,port=,...`, `master_link_down_since_seconds`,
//! `slave_priority`, `slave_repl_offset`), PING, CLIENT SETNAME, PUBLISH/SUBSCRIBE on
//! `__sentinel__:hello` across cores, and the transactions it sends to reconfigure a node:
//! `MULTI; SLAVEOF NO ONE | SLAVEOF host port; CONFIG REWRITE; CLIENT KILL TYPE normal;
//! CLIENT KILL TYPE pubsub; EXEC` (so each node runs with a `--config` file).
//!
//! The tests without sentinels check, each against one thing sentinel relies on, what
//! Redis 7 does (checked against redis-server 7): CONFIG REWRITE persisting `replicaof`,
//! a demoted primary resuming partially, `slaveN:ip=` under `replica-announce-ip`, and
//! `CLIENT KILL TYPE normal` (in every sentinel reconfiguration) leaving the node's
//! replicas' control connections alone (their type is `replica`, as in Redis).
//!
//! Skipped, with a note, when `redis-server` is not installed. Every child (Baton and the
//! sentinels) is killed when the test ends, panics included.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// How long the sentinels may take to see the replica and each other.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the failover may take once the primary is dead.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the sentinels may take to turn the returning old primary into a replica
/// (sentinel waits 4 hello periods, 8 s, after it sees the wrong role, and refreshes a
/// replica's INFO every 10 s).
const CONVERT_TIMEOUT: Duration = Duration::from_secs(40);
const SENTINELS: usize = 3;
/// Sentinel's `down-after-milliseconds`: 2 s rather than 1 s, so that a loaded machine
/// (two cores, other builds) does not make a sentinel think a healthy new primary is down
/// right after a failover, which, with the other sentinels' votes from that failover
/// still held, starts a second one at once (seen with 1 s under three parallel runs).
const DOWN_AFTER_MS: u64 = 2000;
const MASTER: &str = "mymaster";

fn redis_server_installed() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A scratch directory for config files and logs; removed when the test passes, kept
/// (and named on stderr) when it fails.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("baton-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept the test's files in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// One `redis-server --sentinel`; SIGKILLed and reaped on drop.
struct Sentinel {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Sentinel {
    /// Starts sentinel `i` monitoring `127.0.0.1:primary_port` as [`MASTER`] with a quorum
    /// of 2, on a free port (another one, a few times, when it could not listen there).
    fn start(dir: &Scratch, i: usize, primary_port: u16) -> Sentinel {
        let auth = match password() {
            Some(pw) => format!("sentinel auth-pass {MASTER} {pw}\n"),
            None => String::new(),
        };
        let mut failures = Vec::new();
        for _ in 0..5 {
            let port = free_port();
            let conf = dir.file(&format!("sentinel-{i}.conf"));
            let log = dir.file(&format!("sentinel-{i}.log"));
            let _ = std::fs::remove_file(&log);
            std::fs::write(
                &conf,
                format!(
                    "port {port}\n\
                     bind 127.0.0.1\n\
                     dir {dir}\n\
                     logfile {log}\n\
                     sentinel monitor {MASTER} 127.0.0.1 {primary_port} 2\n\
                     sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n\
                     sentinel failover-timeout {MASTER} 5000\n\
                     sentinel parallel-syncs {MASTER} 1\n\
                     {auth}",
                    dir = dir.0.display(),
                    log = log.display(),
                ),
            )
            .unwrap();
            let child = Command::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server --sentinel");
            let mut s = Sentinel { child, port, log };
            let up = eventually(READY_TIMEOUT, || {
                matches!(s.child.try_wait(), Ok(Some(_)))
                    || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            });
            match s.child.try_wait() {
                Ok(None) if up => return s,
                _ => failures.push(format!("port {port}: {}", s.log_text())),
            }
        }
        panic!("sentinel {i} did not start:\n{}", failures.join("\n"))
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn con(&self) -> redis::Connection {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap();
        let con = client
            .get_connection_with_timeout(IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to sentinel {}: {e}", self.port));
        con.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        con.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        con
    }

    /// `SENTINEL <what> mymaster` as one field map per entry.
    fn entries(&self, what: &str) -> Vec<Vec<(String, Value)>> {
        let v = run(&mut self.con(), &["SENTINEL", what, MASTER]);
        as_array(&v).iter().map(as_pairs).collect()
    }

    /// The ports of the replicas this sentinel knows, and whether each is up (no
    /// `s_down`/`disconnected` flag).
    fn replicas(&self) -> Vec<(u16, bool)> {
        self.entries("REPLICAS")
            .iter()
            .map(|e| {
                let get = |k: &str| {
                    e.iter()
                        .find(|(name, _)| name == k)
                        .map(|(_, v)| as_str(v))
                        .unwrap_or_default()
                };
                let flags = get("flags");
                (
                    get("port").parse().unwrap_or(0),
                    !flags.contains("s_down") && !flags.contains("disconnected"),
                )
            })
            .collect()
    }

    /// Field `name` of this sentinel's entry for the replica on `port`.
    fn replica_field(&self, port: u16, name: &str) -> Option<String> {
        self.entries("REPLICAS").into_iter().find_map(|e| {
            let get = |k: &str| e.iter().find(|(n, _)| n == k).map(|(_, v)| as_str(v));
            (get("port")? == port.to_string()).then(|| get(name))?
        })
    }

    fn other_sentinels(&self) -> usize {
        self.entries("SENTINELS").len()
    }

    /// Whether this sentinel sees the master up as a master (flags exactly `master`), and
    /// holds no other sentinel's "master is down" vote from the last failover (a stale
    /// one, with one false `+sdown`, starts a second failover at once).
    fn settled(&self) -> bool {
        let master = as_pairs(&run(&mut self.con(), &["SENTINEL", "MASTER", MASTER]));
        let get = |k: &str| {
            master
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| as_str(v))
                .unwrap_or_default()
        };
        get("flags") == "master"
            && get("role-reported") == "master"
            && self.entries("SENTINELS").iter().all(|e| {
                e.iter()
                    .all(|(k, v)| k != "flags" || !as_str(v).contains("master_down"))
            })
    }

    /// `SENTINEL GET-MASTER-ADDR-BY-NAME mymaster` as (ip, port).
    fn master_addr(&self) -> Option<(String, u16)> {
        let v = run(
            &mut self.con(),
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER],
        );
        match v {
            Value::Array(items) if items.len() == 2 => {
                Some((as_str(&items[0]), as_str(&items[1]).parse().ok()?))
            }
            _ => None,
        }
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything the failure messages show: each sentinel's log and each Baton's stderr.
fn report(sentinels: &[Sentinel], servers: &[(&str, &Server)]) -> String {
    let mut out = String::new();
    for (i, s) in sentinels.iter().enumerate() {
        out.push_str(&format!(
            "\n--- sentinel {i} (port {}) log:\n{}",
            s.port,
            s.log_text()
        ));
    }
    for (name, s) in servers {
        out.push_str(&format!(
            "\n--- baton {name} (port {}) stderr:\n{}",
            s.port,
            s.stderr()
        ));
    }
    out
}

thread_local! {
    /// The password of the Batons of the running test (each test runs on its own
    /// thread), which every connection to them authenticates with.
    static PASSWORD: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

fn password() -> Option<String> {
    PASSWORD.with(|p| p.borrow().clone())
}

/// A connection to a Baton of this test, authenticated when the test set a password.
fn connect(server: &Server) -> redis::Connection {
    match password() {
        Some(pw) => server.redis_auth(&pw),
        None => server.redis(),
    }
}

/// `ROLE`'s first element.
fn role(server: &Server) -> String {
    let v = q(&mut connect(server), "ROLE");
    as_str(&as_array(&v)[0])
}

/// `ROLE` on a fresh connection, or `None` when the connection fails or is closed:
/// sentinel's `CLIENT KILL TYPE normal` may close any client of a node it reconfigures.
fn try_role(server: &Server) -> Option<Vec<Value>> {
    use redis::ConnectionLike;
    let url = match password() {
        Some(pw) => format!("redis://:{pw}@{}/", server.addr()),
        None => format!("redis://{}/", server.addr()),
    };
    let client = redis::Client::open(url).ok()?;
    let mut con = client.get_connection_with_timeout(IO_TIMEOUT).ok()?;
    con.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
    match con.req_command(&redis::cmd("ROLE")).ok()? {
        Value::Array(items) => Some(items),
        _ => None,
    }
}

/// A Baton on `cores` cores started with `--config <dir>/<name>.conf` (CONFIG REWRITE needs
/// one), plus `extra` flags.
fn baton(dir: &Scratch, name: &str, cores: usize, extra: &[&str]) -> (Server, PathBuf) {
    let conf = dir.file(&format!("{name}.conf"));
    if !conf.exists() {
        std::fs::write(&conf, format!("# baton {name}, for the sentinel test\n")).unwrap();
    }
    let mut args = vec!["--config", conf.to_str().unwrap()];
    args.extend_from_slice(extra);
    (Server::builder(cores).args(&args).start(), conf)
}

/// `ROLE` of a replica: whether it is connected to 127.0.0.1:`port`.
fn replicates(server: &Server, port: u16) -> bool {
    let Some(r) = try_role(server) else {
        return false;
    };
    r.len() == 5
        && as_str(&r[0]) == "slave"
        && as_str(&r[1]) == "127.0.0.1"
        && as_int(&r[2]) == port as i64
        && as_str(&r[3]) == "connected"
}

/// A primary, its replicas, the sentinels watching them, and the scratch directory.
/// Fields drop in this order: the sentinels stop first (so they do not react to the
/// servers going away), the directory with their files last.
struct Setup {
    sentinels: Vec<Sentinel>,
    primary: Server,
    replicas: Vec<Server>,
    dir: Scratch,
}

impl Setup {
    /// Starts a 2-core primary, one replica of it per entry of `replicas` (that many cores,
    /// those extra flags), and three sentinels, and waits until every sentinel sees every
    /// replica up and the two other sentinels. With a [`password`] set, every Baton
    /// requires it (replicas authenticate with `masterauth`) and the sentinels use it.
    fn start(name: &str, replicas: &[(usize, &[&str])]) -> Setup {
        let dir = Scratch::new(name);
        let pw = password();
        let auth: Vec<&str> = match &pw {
            Some(pw) => vec!["--requirepass", pw, "--masterauth", pw],
            None => Vec::new(),
        };
        let (primary, _) = baton(&dir, "primary", 2, &auth);
        let replicas: Vec<Server> = replicas
            .iter()
            .enumerate()
            .map(|(i, (cores, extra))| {
                let mut args = auth.clone();
                args.extend_from_slice(extra);
                baton(&dir, &format!("replica-{i}"), *cores, &args).0
            })
            .collect();
        for r in &replicas {
            let cmd = format!("REPLICAOF 127.0.0.1 {}", primary.port);
            assert_eq!(q(&mut connect(r), &cmd), ok());
        }
        let mut setup = Setup {
            sentinels: Vec::new(),
            primary,
            replicas,
            dir,
        };
        let linked = eventually(DISCOVERY_TIMEOUT, || {
            setup
                .replicas
                .iter()
                .all(|r| replicates(r, setup.primary.port))
        });
        assert!(linked, "the replicas did not connect{}", setup.report());

        setup.sentinels = (0..SENTINELS)
            .map(|i| Sentinel::start(&setup.dir, i, setup.primary.port))
            .collect();
        let mut want: Vec<(u16, bool)> = setup.replicas.iter().map(|r| (r.port, true)).collect();
        want.sort();
        let discovered = eventually(DISCOVERY_TIMEOUT, || {
            setup.sentinels.iter().all(|s| {
                let mut seen = s.replicas();
                seen.sort();
                seen == want && s.other_sentinels() == SENTINELS - 1
            })
        });
        assert!(
            discovered,
            "the sentinels did not all see the replicas {want:?} and each other within {DISCOVERY_TIMEOUT:?}: {:?}{}",
            setup
                .sentinels
                .iter()
                .map(|s| (s.replicas(), s.other_sentinels()))
                .collect::<Vec<_>>(),
            setup.report()
        );
        setup
    }

    /// Every sentinel's log and every Baton's stderr, for failure messages.
    fn report(&self) -> String {
        let mut servers = vec![("primary".to_string(), &self.primary)];
        for (i, r) in self.replicas.iter().enumerate() {
            servers.push((format!("replica-{i}"), r));
        }
        let servers: Vec<(&str, &Server)> = servers.iter().map(|(n, s)| (n.as_str(), *s)).collect();
        report(&self.sentinels, &servers)
    }

    /// Waits until every sentinel names the same master, one of the replicas, and
    /// returns its index.
    fn promoted(&self) -> usize {
        let mut found = None;
        let agreed = eventually(FAILOVER_TIMEOUT, || {
            let addrs: Vec<_> = self.sentinels.iter().map(Sentinel::master_addr).collect();
            found = self.replicas.iter().position(|r| {
                addrs
                    .iter()
                    .all(|a| a.as_ref() == Some(&("127.0.0.1".to_string(), r.port)))
            });
            found.is_some()
        });
        assert!(
            agreed,
            "the sentinels did not all name a replica as the master within {FAILOVER_TIMEOUT:?}: {:?}{}",
            self.sentinels
                .iter()
                .map(Sentinel::master_addr)
                .collect::<Vec<_>>(),
            self.report()
        );
        found.unwrap()
    }
}

/// Writes `n` keys on `server`, each acknowledged by `WAIT replicas` before the next (no
/// WAIT for 0).
fn write_acknowledged(
    server: &Server,
    prefix: &str,
    n: usize,
    replicas: i64,
) -> Vec<(String, String)> {
    let mut con = connect(server);
    (0..n)
        .map(|i| {
            let (k, v) = (format!("{prefix}:{i}"), format!("value-{prefix}-{i}"));
            assert_eq!(run(&mut con, &["SET", &k, &v]), ok());
            if replicas == 0 {
                return (k, v);
            }
            assert_eq!(
                q(&mut con, &format!("WAIT {replicas} 5000")),
                int(replicas),
                "WAIT after SET {k}{}",
                server.stderr()
            );
            (k, v)
        })
        .collect()
}

/// Asserts that `server`'s config file says it replicates 127.0.0.1:`port` (`None`: that
/// it is a primary), as sentinel's `CONFIG REWRITE` left it.
#[track_caller]
fn assert_config_replicaof(dir: &Scratch, name: &str, port: Option<u16>) {
    let text = std::fs::read_to_string(dir.file(&format!("{name}.conf"))).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("replicaof ") || l.starts_with("slaveof "))
        .collect();
    match port {
        Some(p) => assert_eq!(
            lines,
            vec![format!("replicaof 127.0.0.1 {p}")],
            "{name}.conf:\n{text}"
        ),
        None => assert!(lines.is_empty(), "{name}.conf:\n{text}"),
    }
}

/// Asserts that `server` holds every key of `keys` with its value.
#[track_caller]
fn assert_holds(server: &Server, keys: &[(String, String)], what: &str) {
    let mut con = connect(server);
    for (k, v) in keys {
        assert_eq!(run(&mut con, &["GET", k]), bulk(v), "key {k} on {what}");
    }
}

/// The sentinel tests run one at a time: their timing (a 2 s failure detection) should
/// not depend on how many other sentinels and servers share the two cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn sentinel_available() -> bool {
    if !redis_server_installed() {
        eprintln!("redis-server is not installed: skipping the sentinel test");
        return false;
    }
    baton_only("Baton under redis-sentinel")
}

/// The primary (2 cores) dies; of its two replicas the sentinels promote the one with the
/// better `replica-priority`, on 1 core, which holds every acknowledged write and takes
/// writes, and make the other, on 2 cores, its replica (a full sync: another shape).
#[test]
fn sentinel_promotes_a_replica_when_the_primary_dies() {
    if !sentinel_available() {
        return;
    }
    let _serial = serial();
    let mut s = Setup::start(
        "sentinel-failover",
        &[(2, &[]), (1, &["--replica-priority", "10"])],
    );
    let mut acked = write_acknowledged(&s.primary, "before", 100, 2);

    s.primary.signal(libc::SIGKILL);
    assert!(s.primary.wait_exit(EXIT_TIMEOUT).is_some());
    let new = s.promoted();
    assert_eq!(
        new,
        1,
        "the replica with priority 10 is preferred{}",
        s.report()
    );
    let (promoted, other) = (&s.replicas[new], &s.replicas[1 - new]);

    assert_eq!(role(promoted), "master", "{}", s.report());
    let info = as_str(&q(&mut connect(promoted), "INFO replication"));
    assert!(info.contains("role:master\r\n"), "{info}");
    assert_holds(promoted, &acked, "the promoted replica");
    assert_eq!(q(&mut connect(promoted), "SET after-failover yes"), ok());
    assert_eq!(q(&mut connect(promoted), "GET after-failover"), bulk("yes"));

    // The other replica follows the new primary (sentinel's SLAVEOF + CONFIG REWRITE).
    let follows = eventually(FAILOVER_TIMEOUT, || replicates(other, promoted.port));
    assert!(
        follows,
        "the other replica does not follow the new primary: ROLE {:?}{}",
        try_role(other),
        s.report()
    );
    acked.extend(write_acknowledged(promoted, "after", 20, 1));
    assert_holds(other, &acked, "the other replica");
    assert_config_replicaof(&s.dir, &format!("replica-{new}"), None);
    assert_config_replicaof(&s.dir, &format!("replica-{}", 1 - new), Some(promoted.port));
}

/// Passwords everywhere (`requirepass`, `masterauth`, sentinel's `auth-pass`) and one
/// replica at `replica-priority 0`, which sentinel reads from INFO and never promotes:
/// the primary dies, the other replica is promoted, and the priority-0 one follows it.
#[test]
fn sentinel_with_auth_never_promotes_a_priority_0_replica() {
    if !sentinel_available() {
        return;
    }
    let _serial = serial();
    PASSWORD.with(|p| *p.borrow_mut() = Some("sentinel-test-pw".into()));
    let mut s = Setup::start(
        "sentinel-auth",
        &[(2, &["--replica-priority", "0"]), (2, &[])],
    );
    let never = s.replicas[0].port;
    let seen = eventually(DISCOVERY_TIMEOUT, || {
        s.sentinels
            .iter()
            .all(|t| t.replica_field(never, "slave-priority").as_deref() == Some("0"))
    });
    assert!(
        seen,
        "the sentinels did not read slave_priority:0{}",
        s.report()
    );
    let acked = write_acknowledged(&s.primary, "before", 50, 2);

    s.primary.signal(libc::SIGKILL);
    assert!(s.primary.wait_exit(EXIT_TIMEOUT).is_some());
    assert_eq!(
        s.promoted(),
        1,
        "the priority-0 replica was promoted{}",
        s.report()
    );
    let (promoted, other) = (&s.replicas[1], &s.replicas[0]);
    assert_holds(promoted, &acked, "the promoted replica");
    let follows = eventually(FAILOVER_TIMEOUT, || replicates(other, promoted.port));
    assert!(
        follows,
        "the priority-0 replica does not follow the new primary: ROLE {:?}{}",
        try_role(other),
        s.report()
    );
    let more = write_acknowledged(promoted, "after", 20, 1);
    assert_holds(other, &more, "the priority-0 replica");
}

/// `SENTINEL FAILOVER` with the primary alive: the replica becomes the primary, the old
/// primary its replica, and no acknowledged write is lost on either.
#[test]
fn sentinel_failover_command_swaps_a_live_primary_and_its_replica() {
    if !sentinel_available() {
        return;
    }
    let _serial = serial();
    let s = Setup::start("sentinel-manual", &[(2, &[])]);
    let mut acked = write_acknowledged(&s.primary, "before", 50, 1);

    let reply = run(&mut s.sentinels[0].con(), &["SENTINEL", "FAILOVER", MASTER]);
    assert_eq!(reply, ok(), "{}", s.report());
    s.promoted();
    let replica = &s.replicas[0];
    assert_eq!(role(replica), "master");
    let follows = eventually(FAILOVER_TIMEOUT, || replicates(&s.primary, replica.port));
    assert!(
        follows,
        "the old primary does not follow the new one: ROLE {:?}{}",
        try_role(&s.primary),
        s.report()
    );
    acked.extend(write_acknowledged(replica, "after", 20, 1));
    assert_holds(replica, &acked, "the new primary");
    assert_holds(&s.primary, &acked, "the old primary");
    // The old primary resumed from its own history rather than syncing in full.
    assert_eq!(
        info_field(replica, "stats", "sync_full"),
        "0",
        "{}",
        s.report()
    );
    assert_config_replicaof(&s.dir, "replica-0", None);
    assert_config_replicaof(&s.dir, "primary", Some(replica.port));
    let refused = q(&mut connect(&s.primary), "SET x 1");
    assert_eq!(
        err_text(&refused),
        "READONLY You can't write against a read only replica."
    );
}

/// The old primary comes back on its port with its old config file, as an empty primary;
/// the sentinels, which list it as a replica of the new primary by now, make it one.
#[test]
fn sentinel_turns_the_returning_old_primary_into_a_replica() {
    if !sentinel_available() {
        return;
    }
    let _serial = serial();
    let mut s = Setup::start("sentinel-return", &[(2, &[])]);
    let old_port = s.primary.port.to_string();
    let mut acked = write_acknowledged(&s.primary, "before", 20, 1);

    s.primary.signal(libc::SIGKILL);
    assert!(s.primary.wait_exit(EXIT_TIMEOUT).is_some());
    s.promoted();
    // Restarted empty too early, while a sentinel still holds the other sentinels'
    // "down" votes, it could be promoted by a second failover (as with Redis).
    let settled = eventually(FAILOVER_TIMEOUT, || {
        s.sentinels.iter().all(Sentinel::settled)
    });
    assert!(settled, "the sentinels did not settle{}", s.report());
    let (old, _) = baton(&s.dir, "primary", 2, &["--port", &old_port]);
    s.primary = old;
    let new_port = s.replicas[0].port;
    let converted = eventually(CONVERT_TIMEOUT, || replicates(&s.primary, new_port));
    assert!(
        converted,
        "the sentinels did not make the old primary a replica of the new one within {CONVERT_TIMEOUT:?}: ROLE {:?}{}",
        try_role(&s.primary),
        s.report()
    );
    acked.extend(write_acknowledged(&s.replicas[0], "after", 20, 1));
    assert_holds(&s.primary, &acked, "the old primary");
    assert_config_replicaof(&s.dir, "primary", Some(new_port));
    let refused = q(&mut connect(&s.primary), "SET x 1");
    assert_eq!(
        err_text(&refused),
        "READONLY You can't write against a read only replica."
    );
    // Every sentinel lists it as the new primary's replica, up.
    let old_port = s.primary.port;
    let listed = eventually(CONVERT_TIMEOUT, || {
        s.sentinels
            .iter()
            .all(|t| t.replicas().contains(&(old_port, true)))
    });
    assert!(
        listed,
        "{:?}{}",
        s.sentinels
            .iter()
            .map(Sentinel::replicas)
            .collect::<Vec<_>>(),
        s.report()
    );
}

/// A partition, played with SIGSTOP: the primary stops answering, the sentinels promote
/// the replica; the old primary resumes and, still a primary, takes a write the new one
/// never saw. When the sentinels make it a replica, that divergent write is gone (its
/// flow cannot resume and syncs in full) and it holds exactly the new primary's data.
#[test]
fn sentinel_rejoins_a_paused_old_primary_and_drops_its_divergent_write() {
    if !sentinel_available() {
        return;
    }
    let _serial = serial();
    let s = Setup::start("sentinel-pause", &[(2, &[])]);
    let mut acked = write_acknowledged(&s.primary, "before", 30, 1);

    s.primary.signal(libc::SIGSTOP);
    let new = s.promoted();
    s.primary.signal(libc::SIGCONT);
    // The sentinels wait a few seconds before reconfiguring it: it is a primary still
    // (unless they were quicker, when the write is refused and nothing diverges).
    let zombie = q(&mut connect(&s.primary), "SET zombie lost");
    assert!(
        zombie == ok() || err_text(&zombie).starts_with("READONLY"),
        "{zombie:?}"
    );
    let promoted = &s.replicas[new];
    acked.extend(write_acknowledged(promoted, "after", 10, 0));
    let follows = eventually(CONVERT_TIMEOUT, || replicates(&s.primary, promoted.port));
    assert!(
        follows,
        "the old primary does not follow the new one: ROLE {:?}{}",
        try_role(&s.primary),
        s.report()
    );
    acked.extend(write_acknowledged(promoted, "synced", 10, 1));
    assert_holds(&s.primary, &acked, "the old primary");
    let mut old = connect(&s.primary);
    assert_eq!(q(&mut old, "GET zombie"), nil(), "{}", s.report());
    assert_eq!(
        q(&mut old, "DBSIZE"),
        q(&mut connect(promoted), "DBSIZE"),
        "{}",
        s.report()
    );
}

/// `CONFIG REWRITE` (which sentinel sends after `SLAVEOF host port`) persists the replica
/// role as `replicaof host port`, which the config file takes, so a node sentinel
/// reconfigured comes back as a replica after a restart (sentinel.c,
/// `sentinelSendSlaveOf`).
#[test]
fn config_rewrite_persists_replicaof_for_sentinel() {
    if !baton_only("Baton's config file") {
        return;
    }
    let dir = Scratch::new("sentinel-rewrite");
    let (primary, _) = baton(&dir, "primary", 2, &[]);
    let (replica, conf) = baton(&dir, "replica", 2, &[]);
    let mut con = connect(&replica);
    let reply = run(
        &mut con,
        &["SLAVEOF", "127.0.0.1", &primary.port.to_string()],
    );
    assert_eq!(reply, ok());
    assert_eq!(q(&mut con, "CONFIG REWRITE"), ok());
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(
        text.contains(&format!("\nreplicaof 127.0.0.1 {}\n", primary.port)),
        "{text}"
    );
    drop(con);
    drop(replica);
    let again = Server::builder(2)
        .args(&["--config", conf.to_str().unwrap()])
        .start();
    assert!(eventually(DISCOVERY_TIMEOUT, || replicates(
        &again,
        primary.port
    )));
}

/// A primary with one replica of it (both 2 cores), linked.
fn pair(dir: &Scratch, primary_extra: &[&str], replica_extra: &[&str]) -> (Server, Server) {
    let (primary, _) = baton(dir, "primary", 2, primary_extra);
    let (replica, _) = baton(dir, "replica", 2, replica_extra);
    let cmd = format!("REPLICAOF 127.0.0.1 {}", primary.port);
    assert_eq!(q(&mut connect(&replica), &cmd), ok());
    assert!(
        eventually(DISCOVERY_TIMEOUT, || replicates(&replica, primary.port)),
        "the replica did not connect:\n{}",
        replica.stderr()
    );
    (primary, replica)
}

/// An `INFO` field's value.
fn info_field(server: &Server, section: &str, name: &str) -> String {
    let text = as_str(&q(&mut connect(server), &format!("INFO {section}")));
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in INFO {section}: {text}"))
        .to_string()
}

/// Sentinel's promotion transaction ends with `CLIENT KILL TYPE normal`, and so does every
/// reconfiguration (`sentinelSendSlaveOf`). As in Redis (flags `S`, `getClientType` gives
/// `CLIENT_TYPE_SLAVE`), a replica's control connection is of type `replica`, so that kill
/// leaves the node's replicas linked.
#[test]
fn client_kill_type_normal_leaves_replica_links_alone() {
    if !baton_only("Baton's replication links") {
        return;
    }
    let dir = Scratch::new("sentinel-kill-type");
    let (primary, replica) = pair(&dir, &[], &[]);
    let mut con = connect(&primary);
    assert_eq!(
        q(&mut con, "CLIENT KILL TYPE normal"),
        int(0),
        "only this client is normal, and it is skipped"
    );
    assert!(
        replicates(&replica, primary.port),
        "the replica's link survived TYPE normal"
    );
    // Redis counts one connection per replica; Baton may count a replica's flows too.
    let killed = as_int(&q(&mut con, "CLIENT KILL TYPE replica"));
    assert!(killed >= 1, "CLIENT KILL TYPE replica killed {killed}");
    // The replica reconnects; then its own side of the link can be killed.
    assert!(
        eventually(DISCOVERY_TIMEOUT, || replicates(&replica, primary.port)),
        "the replica did not reconnect"
    );
    let mut con = connect(&replica);
    let killed = as_int(&q(&mut con, "CLIENT KILL TYPE master"));
    assert!(killed >= 1, "CLIENT KILL TYPE master killed {killed}");
}

/// When a primary becomes a replica (sentinel's `SLAVEOF host port` to a demoted primary,
/// `SENTINEL FAILOVER`) it resumes from its own history, as Redis does
/// (`replicationCacheMasterUsingMyself`): the promoted replica holds it as
/// `master_replid2`, so the sync is partial.
#[test]
fn a_demoted_primary_resumes_from_the_promoted_replica() {
    if !baton_only("Baton's replication") {
        return;
    }
    let dir = Scratch::new("sentinel-demote");
    let (primary, replica) = pair(&dir, &[], &[]);
    write_acknowledged(&primary, "k", 20, 1);
    assert_eq!(q(&mut connect(&replica), "REPLICAOF NO ONE"), ok());
    let cmd = format!("REPLICAOF 127.0.0.1 {}", replica.port);
    assert_eq!(q(&mut connect(&primary), &cmd), ok());
    assert!(eventually(DISCOVERY_TIMEOUT, || replicates(
        &primary,
        replica.port
    )));
    assert_eq!(info_field(&replica, "stats", "sync_full"), "0");
    assert_eq!(info_field(&replica, "stats", "sync_partial_ok"), "1");
}

/// The primary lists a replica under its `replica-announce-ip`/`-port`, which is where
/// sentinel looks for it (behind NAT, the peer address is unreachable), as Redis lists
/// `REPLCONF ip-address` in `slaveN:ip=` (`replicationGetSlaveName`).
#[test]
fn replica_announce_ip_is_what_the_primary_lists() {
    if !baton_only("Baton's replication") {
        return;
    }
    let dir = Scratch::new("sentinel-announce");
    let (primary, replica) = pair(
        &dir,
        &[],
        &[
            "--replica-announce-ip",
            "10.1.2.3",
            "--replica-announce-port",
            "7777",
        ],
    );
    let _ = replica;
    let mut listed = String::new();
    let seen = eventually(DISCOVERY_TIMEOUT, || {
        listed = info_field(&primary, "replication", "slave0");
        listed.starts_with("ip=10.1.2.3,port=7777,")
    });
    assert!(seen, "slave0:{listed}");
}
