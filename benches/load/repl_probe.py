#!/usr/bin/env python3
"""Probes for benches/load/replication.sh (Python 3 standard library only).

Every subcommand talks raw RESP over one blocking socket per server on 127.0.0.1 and
prints `name=value` lines on stdout for the script to read.

  gen KEYS VALUE_SIZE FILE
      Writes a RESP stream of KEYS `SET key:N <value>` commands (N = 1..KEYS, the keys
      memtier_benchmark --key-prefix key: draws), each value VALUE_SIZE printable bytes
      from a fixed-seed generator (random, so an RDB's LZF compression gains nothing).
  sync PRIMARY_PORT REPLICA_PORT KEYS [--at-least] [--timeout SECS]
      Sends `REPLICAOF 127.0.0.1 PRIMARY_PORT` to the (fresh, empty) replica and polls it
      every millisecond until INFO replication says master_link_status:up and
      master_sync_in_progress:0 and DBSIZE equals KEYS (with --at-least: is at least
      KEYS). Prints secs (from just before REPLICAOF to the first poll that saw all
      three) and ops/ops_per_sec, the primary's total_commands_processed from just before
      REPLICAOF to just after that poll (each read timed at its round trip's midpoint).
  window PORT SECS
      total_commands_processed of PORT over SECS seconds: prints ops and ops_per_sec.
  counter PORT
      Prints ops, PORT's total_commands_processed now.
  lag PRIMARY_PORT REPLICA_PORT SECS
      For SECS seconds: SET lag:probe to a unique value on the primary, then GET it on the
      replica in a tight loop until the replica returns that value. A sample is the time
      from just before the SET was sent to the GET that saw the value. Prints samples,
      p50_ms, p99_ms, max_ms and set_p50_ms (the SET's own round trip).
  settle PRIMARY_PORT REPLICA_PORT SECS KEYS
      Waits up to SECS for the two DBSIZEs to agree and for 2000 keys drawn from key:1..KEYS
      (and lag:probe) to hold the same values on both (MGET); prints primary_keys,
      replica_keys, differing (sampled keys whose values differ at the end) and equal (1 or 0).
"""

import base64
import random
import socket
import sys
import time


class Conn:
    """One RESP connection: commands out, replies parsed (errors are returned as
    RespError values, not raised)."""

    def __init__(self, port, timeout=30.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if not isinstance(a, bytes):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2 :]
                return line
            self._fill()

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2 :]
            return data
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise ValueError("unexpected reply line %r" % line)

    def call(self, *args):
        self.sock.sendall(self.encode(*args))
        return self.reply()

    def pipeline(self, *cmds):
        self.sock.sendall(b"".join(self.encode(*c) for c in cmds))
        return [self.reply() for _ in cmds]


class RespError(str):
    pass


def info_fields(raw):
    if not isinstance(raw, bytes):
        return {}
    out = {}
    for line in raw.decode(errors="replace").splitlines():
        k, sep, v = line.partition(":")
        if sep:
            out[k] = v
    return out


def processed(conn):
    return int(info_fields(conn.call("INFO", "stats")).get("total_commands_processed", 0))


def processed_at(conn):
    """(count, when): the server took the count somewhere between sending and the reply,
    which under load can be milliseconds apart; the midpoint is the estimate."""
    a = time.monotonic()
    n = processed(conn)
    return n, (a + time.monotonic()) / 2


def out(**kv):
    for k, v in kv.items():
        print("%s=%s" % (k, v))
    sys.stdout.flush()


def cmd_gen(keys, size, path):
    rng = random.Random(1)
    # base64 of size*3/4 random bytes is `size` printable bytes (rounded up to 4).
    raw = (size * 3 + 3) // 4
    with open(path, "wb") as f:
        batch = []
        for n in range(1, keys + 1):
            key = b"key:%d" % n
            val = base64.b64encode(rng.randbytes(raw))[:size]
            batch.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(val), val))
            if len(batch) >= 10000:
                f.write(b"".join(batch))
                batch = []
        f.write(b"".join(batch))
    out(keys=keys, value_size=size)


def cmd_sync(pport, rport, keys, at_least, timeout):
    p = Conn(pport)
    r = Conn(rport)
    c0, tc0 = processed_at(p)
    t0 = time.monotonic()
    ok = r.call("REPLICAOF", "127.0.0.1", pport)
    if isinstance(ok, RespError):
        raise SystemExit("REPLICAOF failed: %s" % ok)
    polls = 0
    last = {}
    while True:
        info, dbsize = r.pipeline(("INFO", "replication"), ("DBSIZE",))
        t1 = time.monotonic()
        polls += 1
        f = info_fields(info)
        size = dbsize if isinstance(dbsize, int) else -1  # -LOADING while Redis loads
        last = dict(link=f.get("master_link_status"), in_progress=f.get("master_sync_in_progress"), dbsize=size)
        done_keys = size >= keys if at_least else size == keys
        if f.get("master_link_status") == "up" and f.get("master_sync_in_progress") == "0" and done_keys:
            break
        if t1 - t0 > timeout:
            out(secs="timeout", **last)
            sys.exit(1)
        time.sleep(0.001)
    c1, tc1 = processed_at(p)
    secs = t1 - t0
    out(secs="%.4f" % secs, ops=c1 - c0, ops_per_sec="%.0f" % ((c1 - c0) / (tc1 - tc0)), polls=polls)


def cmd_window(port, secs):
    c = Conn(port)
    c0, t0 = processed_at(c)
    time.sleep(secs)
    c1, t1 = processed_at(c)
    out(ops=c1 - c0, ops_per_sec="%.0f" % ((c1 - c0) / (t1 - t0)))


def percentile(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, int(round(q * (len(sorted_vals) - 1)))))
    return sorted_vals[i]


def cmd_lag(pport, rport, secs):
    p = Conn(pport, 10.0)
    r = Conn(rport, 10.0)
    get = Conn.encode("GET", "lag:probe")
    lags, sets = [], []
    stale_after = 5.0  # one sample that never shows up within this is a failure
    end = time.monotonic() + secs
    n = 0
    while time.monotonic() < end:
        n += 1
        value = b"%d-%d" % (time.time_ns(), n)
        t0 = time.perf_counter()
        ok = p.call("SET", "lag:probe", value)
        t_set = time.perf_counter()
        if isinstance(ok, RespError):
            raise SystemExit("SET on the primary failed: %s" % ok)
        while True:
            r.sock.sendall(get)
            seen = r.reply()
            t1 = time.perf_counter()
            if seen == value:
                break
            if t1 - t0 > stale_after:
                out(samples=len(lags), error="replica did not show a write within %.0f s (it has %r)" % (stale_after, seen))
                sys.exit(1)
        lags.append((t1 - t0) * 1000)
        sets.append((t_set - t0) * 1000)
    lags.sort()
    sets.sort()
    out(
        samples=len(lags),
        p50_ms="%.3f" % percentile(lags, 0.5),
        p99_ms="%.3f" % percentile(lags, 0.99),
        max_ms="%.3f" % (lags[-1] if lags else float("nan")),
        set_p50_ms="%.3f" % percentile(sets, 0.5),
    )


def cmd_settle(pport, rport, secs, keys):
    p = Conn(pport)
    r = Conn(rport)
    rng = random.Random(2)
    sample = ["key:%d" % rng.randint(1, keys) for _ in range(2000)] + ["lag:probe"]
    end = time.monotonic() + secs
    while True:
        a, b = p.call("DBSIZE"), r.call("DBSIZE")
        differing = -1
        if a == b:
            va, vb = p.call("MGET", *sample), r.call("MGET", *sample)
            differing = sum(1 for x, y in zip(va, vb) if x != y) if isinstance(va, list) and isinstance(vb, list) else len(sample)
        if (a == b and differing == 0) or time.monotonic() > end:
            break
        time.sleep(0.05)
    out(primary_keys=a, replica_keys=b, differing=differing, equal=int(a == b and differing == 0))


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return
    cmd, args = argv[1], argv[2:]
    if cmd == "gen":
        cmd_gen(int(args[0]), int(args[1]), args[2])
    elif cmd == "sync":
        at_least = "--at-least" in args
        timeout = 600.0
        if "--timeout" in args:
            timeout = float(args[args.index("--timeout") + 1])
        cmd_sync(int(args[0]), int(args[1]), int(args[2]), at_least, timeout)
    elif cmd == "window":
        cmd_window(int(args[0]), float(args[1]))
    elif cmd == "counter":
        out(ops=processed(Conn(int(args[0]))))
    elif cmd == "lag":
        cmd_lag(int(args[0]), int(args[1]), float(args[2]))
    elif cmd == "settle":
        cmd_settle(int(args[0]), int(args[1]), float(args[2]), int(args[3]))
    else:
        raise SystemExit("unknown subcommand %r (see --help)" % cmd)


if __name__ == "__main__":
    main(sys.argv)
