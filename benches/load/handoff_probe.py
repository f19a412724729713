#!/usr/bin/env python3
"""Probes for benches/load/handoff.sh (Python 3 standard library only; RESP client from
repl_probe.py). Each prints `name=value` lines on stdout.

  sample PORT FIRST LAST N FILE
      Reads N keys key:K drawn (fixed seed) from FIRST..LAST with MGET and writes them
      with their values to FILE.
  compare PORT FILE
      Reads the keys of FILE again; prints sampled, missing, differing.
  hold PORT STOPFILE
      A long-lived client: one connection, CLIENT SETNAME bench-hold, CLIENT ID; then
      INCR hold:ctr (checking each reply) every 10 ms until STOPFILE exists; then CLIENT ID
      and CLIENT GETNAME again on the same socket. Prints rounds, errors, first_error,
      id_before, id_after, name_after, pid_before, pid_after, same_session (1 or 0).
  rss OLD_PID SOCKET STOPFILE
      Every 20 ms until STOPFILE exists: VmRSS of OLD_PID plus that of the process whose
      command line holds `--takeover SOCKET` (the new one, once it runs). Prints samples,
      peak_sum_kb, peak_old_kb, peak_new_kb, new_pid.
  memtier FILE SECS
      Per-second ops from a memtier --json-out-file, over its first SECS whole seconds (the
      series ends with a partial second): prints seconds, min_ops, median_ops,
      min_over_median, min_second, connection_errors, total_ops, per_second.
"""

import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from repl_probe import Conn, info_fields, out  # noqa: E402


def cmd_sample(port, first, last, n, path):
    rng = random.Random(7)
    keys = sorted(rng.sample(range(first, last + 1), min(n, last - first + 1)))
    c = Conn(port)
    names = [b"key:%d" % k for k in keys]
    vals = []
    for i in range(0, len(names), 500):
        vals.extend(c.call("MGET", *names[i : i + 500]))
    with open(path, "w") as f:
        json.dump([[k.decode(), None if v is None else v.decode()] for k, v in zip(names, vals)], f)
    out(sampled=len(names), missing=sum(v is None for v in vals))


def cmd_compare(port, path):
    with open(path) as f:
        want = json.load(f)
    c = Conn(port)
    got = []
    for i in range(0, len(want), 500):
        got.extend(c.call("MGET", *[k for k, _ in want[i : i + 500]]))
    missing = sum(g is None for g in got)
    differing = sum(1 for (k, v), g in zip(want, got) if g is not None and g.decode() != v)
    out(sampled=len(want), missing=missing, differing=differing)


def server_pid(c):
    return info_fields(c.call("INFO", "server")).get("process_id", "?")


def cmd_hold(port, stopfile):
    c = Conn(port, timeout=10.0)
    errors, first_error, rounds = 0, "", 0
    c.call("CLIENT", "SETNAME", "bench-hold")
    id_before = c.call("CLIENT", "ID")
    pid_before = server_pid(c)
    c.call("DEL", "hold:ctr")
    try:
        while not os.path.exists(stopfile):
            rounds += 1
            r = c.call("INCR", "hold:ctr")
            if r != rounds:
                errors += 1
                first_error = first_error or "INCR -> %r, want %d" % (r, rounds)
            time.sleep(0.01)
        id_after = c.call("CLIENT", "ID")
        name_after = c.call("CLIENT", "GETNAME")
        pid_after = server_pid(c)
    except (OSError, ConnectionError) as e:
        errors += 1
        first_error = first_error or "connection: %s" % e
        id_after, name_after, pid_after = None, None, None
    same = int(errors == 0 and id_after == id_before and name_after == b"bench-hold")
    out(rounds=rounds, errors=errors, first_error=repr(first_error), id_before=id_before,
        id_after=id_after, name_after=name_after.decode() if isinstance(name_after, bytes) else name_after,
        pid_before=pid_before, pid_after=pid_after, same_session=same)


def vmrss(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def find_takeover(socket_path):
    want = b"--takeover\0" + socket_path.encode() + b"\0"
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                if want in f.read() + b"\0":
                    return int(d)
        except OSError:
            pass
    return None


def cmd_rss(old_pid, socket_path, stopfile):
    samples, peak_sum, peak_old, peak_new = 0, 0, 0, 0
    new_pid, next_scan = None, 0.0
    while not os.path.exists(stopfile):
        now = time.monotonic()
        if new_pid is None and now >= next_scan:
            new_pid = find_takeover(socket_path)
            next_scan = now + 0.02
        o = vmrss(old_pid)
        n = vmrss(new_pid) if new_pid else 0
        samples += 1
        peak_old, peak_new, peak_sum = max(peak_old, o), max(peak_new, n), max(peak_sum, o + n)
        time.sleep(0.02)
    out(samples=samples, peak_sum_kb=peak_sum, peak_old_kb=peak_old, peak_new_kb=peak_new,
        new_pid=new_pid)


def cmd_memtier(path, secs):
    with open(path) as f:
        d = json.load(f)
    totals = d["ALL STATS"]["Totals"]
    series = totals.get("Time-Serie", {})
    per_sec = [(int(s), v.get("Count", 0)) for s, v in series.items() if int(s) < secs]
    per_sec.sort()
    counts = sorted(c for _, c in per_sec)
    if not counts:
        out(seconds=0)
        return
    median = counts[len(counts) // 2] if len(counts) % 2 else (counts[len(counts) // 2 - 1] + counts[len(counts) // 2]) / 2
    low_sec, low = min(per_sec, key=lambda sc: sc[1])
    out(seconds=len(counts), min_ops=low, median_ops=median,
        min_over_median="%.3f" % (low / median if median else 0), min_second=low_sec,
        connection_errors=totals.get("Connection Errors", 0), total_ops=totals.get("Count", 0),
        per_second=",".join(str(c) for _, c in per_sec))


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return
    cmd, a = argv[1], argv[2:]
    if cmd == "sample":
        cmd_sample(int(a[0]), int(a[1]), int(a[2]), int(a[3]), a[4])
    elif cmd == "compare":
        cmd_compare(int(a[0]), a[1])
    elif cmd == "hold":
        cmd_hold(int(a[0]), a[1])
    elif cmd == "rss":
        cmd_rss(int(a[0]), a[1], a[2])
    elif cmd == "memtier":
        cmd_memtier(a[0], int(a[1]))
    else:
        raise SystemExit("unknown subcommand %r (see --help)" % cmd)


if __name__ == "__main__":
    main(sys.argv)
