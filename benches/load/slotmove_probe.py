#!/usr/bin/env python3
"""Times one CLUSTER MIGRATESLOTS for benches/load/reshard.sh.

usage: slotmove_probe.py SOURCE_PORT THIRD_PORT TARGET_ID SLOTS

Sends `CLUSTER MIGRATESLOTS SLOTSRANGE 0 SLOTS-1 NODE TARGET_ID` to the source, then, over
the same connection, CLUSTER GETSLOTMIGRATIONS every millisecond until the newest job is
no longer `running`; then the third node's CLUSTER NODES until it names the target as slot
0's owner (redis-cli reshard, too, ends only once every master was told). Exits non-zero
when the command or the job fails. Prints the seconds from sending the command to the
third node's view (timed here: a Python start-up on a busy machine is not the move).
"""
import re
import socket
import sys
import time


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def end_of(data, i):
    """Where the RESP2 reply starting at `i` ends; IndexError when incomplete."""
    end = data.find(b"\r\n", i)
    if end < 0:
        raise IndexError
    kind, body = data[i:i + 1], data[i + 1:end]
    if kind in (b"+", b"-", b":"):
        return end + 2
    if kind == b"$":
        n = int(body)
        if n < 0:
            return end + 2
        if len(data) < end + 4 + n:
            raise IndexError
        return end + 4 + n
    j = end + 2
    for _ in range(max(int(body), 0)):
        j = end_of(data, j)
    return j


def call(s, *args):
    s.sendall(encode(*args))
    data = b""
    while True:
        chunk = s.recv(1 << 16)
        if not chunk:
            sys.exit("connection closed")
        data += chunk
        try:
            if end_of(data, 0) == len(data):
                return data
        except IndexError:
            pass


def main():
    src, third, target, slots = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    s = socket.create_connection(("127.0.0.1", src), timeout=60)
    t = socket.create_connection(("127.0.0.1", third), timeout=60)
    t0 = time.time()
    r = call(s, "CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", "0", str(slots - 1), "NODE", target)
    if r != b"+OK\r\n":
        sys.exit("MIGRATESLOTS: %r" % r)
    state_re = re.compile(rb"\$5\r\nstate\r\n\$\d+\r\n(\w+)\r\n")
    while True:
        states = state_re.findall(call(s, "CLUSTER", "GETSLOTMIGRATIONS"))
        if states and states[-1] != b"running":
            break
        time.sleep(0.001)
    if states[-1] != b"success":
        sys.exit("the job ended %r" % states[-1])
    t1 = time.time()
    owner_re = re.compile(r" 0(-\d+)?( |$)")
    while True:
        nodes = call(t, "CLUSTER", "NODES").decode()
        line = next((l for l in nodes.splitlines() if l.startswith(target)), "")
        if owner_re.search(line):
            t2 = time.time()
            print("job %.3f s, third node told %.3f s later" % (t1 - t0, t2 - t1), file=sys.stderr)
            print("%.6f" % (t2 - t0))
            return
        time.sleep(0.001)


if __name__ == "__main__":
    main()
