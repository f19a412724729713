#!/usr/bin/env bash
# Slot migration speed: Baton's CLUSTER MIGRATESLOTS (whole slot ranges streamed by the
# source) against redis-server's own `redis-cli --cluster reshard`, in the same run, and
# Baton under `redis-cli --cluster reshard` too for reference.
#
# Each measurement starts a fresh cluster of three nodes on loopback (three Baton
# `--cores 1`, or three `redis-server --cluster-enabled yes`), made by
# `redis-cli --cluster create`, writes the same KEYS keys `key:<i>` (64-byte values) to
# their owners, then moves the first SLOTS slots of node 0 (slots 0..SLOTS-1, which is
# what reshard picks from one source) to node 1, timed from the command to the end:
#   redis, baton-cli: `redis-cli --cluster reshard --cluster-from A --cluster-to B
#                      --cluster-slots SLOTS --cluster-yes` (returns once done)
#   baton-stream:     `CLUSTER MIGRATESLOTS SLOTSRANGE 0 SLOTS-1 NODE B` on node 0, then
#                      CLUSTER GETSLOTMIGRATIONS polled every millisecond until the job
#                      is `success`, then node 2's CLUSTER NODES until it names B as
#                      slot 0's owner (benches/load/slotmove_probe.py, which times it
#                      itself: a Python start-up on a busy machine is not the move)
# Keys moved = DBSIZE of node 1 after minus before. Prints keys/s and slots/s for each,
# and the ratios against redis.
#
# usage: benches/load/reshard.sh [--keys N] [--slots N] [--rounds N]
# env:   BATON (default target/release/baton)
set -euo pipefail
cd "$(dirname "$0")/../.."
source benches/load/lib.sh

keys=100000 slots=300 rounds=1
while [ $# -gt 0 ]; do
    case "$1" in
        --keys) keys=$2; shift 2 ;;
        --slots) slots=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[ "$keys" -le 200000 ] || { echo "at most 200000 keys (redis-server's memory)" >&2; exit 2; }
[ "$slots" -ge 1 ] && [ "$slots" -le 5461 ] || { echo "--slots must be 1..5461" >&2; exit 2; }
BATON=${BATON:-target/release/baton}
for tool in "$BATON" redis-server redis-cli python3; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done

dir=$(mktemp -d)
trap 'cleanup; rm -rf "$dir"' EXIT

# Writes `key:0 .. key:N-1` to their owners (from CLUSTER NODES), pipelined per node.
load() {
    python3 - "$1" "$2" <<'EOF'
import socket, subprocess, sys
ports = [int(p) for p in sys.argv[1].split(",")]
n = int(sys.argv[2])

def crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc

owner = [0] * 16384
nodes = subprocess.check_output(["redis-cli", "-p", str(ports[0]), "cluster", "nodes"]).decode()
for line in nodes.splitlines():
    f = line.split()
    port = int(f[1].split("@")[0].rsplit(":", 1)[1])
    for r in f[8:]:
        if r.startswith("["):
            continue
        a, _, b = r.partition("-")
        for s in range(int(a), int(b or a) + 1):
            owner[s] = port
value = b"v" * 64
out = {p: [] for p in ports}
for i in range(n):
    k = b"key:%d" % i
    out[owner[crc16(k) % 16384]].append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$64\r\n%s\r\n" % (len(k), k, value))
for p, cmds in out.items():
    s = socket.create_connection(("127.0.0.1", p))
    for i in range(0, len(cmds), 1000):
        batch = cmds[i:i + 1000]
        s.sendall(b"".join(batch))
        want, got = 5 * len(batch), 0
        while got < want:
            chunk = s.recv(1 << 16)
            if not chunk:
                sys.exit("connection closed while loading")
            got += len(chunk)
    s.close()
EOF
}

# A port below 55536 that is free, with its cluster bus port (+10000) free too.
cluster_port() {
    python3 -c '
import random, socket
for _ in range(1000):
    p = random.randint(20000, 30000)
    try:
        for q in (p, p + 10000):
            s = socket.socket(); s.bind(("127.0.0.1", q)); s.close()
    except OSError:
        continue
    print(p)
    break
'
}

# start_cluster baton|redis: three nodes made a cluster; sets `ports`.
start_cluster() {
    local kind=$1 p i
    ports=()
    for i in 0 1 2; do
        p=$(cluster_port)
        mkdir -p "$dir/$kind-$p"
        if [ "$kind" = baton ]; then
            "$BATON" --port "$p" --memcache-port 0 --cores 1 --cluster-enabled yes \
                --cluster-config-file "$dir/$kind-$p/nodes.conf" >"$dir/$kind-$p/log" 2>&1 &
        else
            (cd "$dir/$kind-$p" && exec redis-server --port "$p" --cluster-enabled yes \
                --cluster-config-file nodes.conf --save '' --appendonly no \
                >"$dir/$kind-$p/log" 2>&1) &
        fi
        pids+=($!)
        ports+=("$p")
    done
    for p in "${ports[@]}"; do wait_ready "$p"; done
    redis-cli --cluster create "${ports[@]/#/127.0.0.1:}" --cluster-yes >"$dir/create.log" 2>&1 \
        || { cat "$dir/create.log" >&2; exit 1; }
    for _ in $(seq 1 100); do
        redis-cli --cluster check "127.0.0.1:${ports[0]}" 2>/dev/null \
            | grep -q "All nodes agree" && break
        sleep 0.1
    done
}

stop_cluster() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
}

# measure redis|baton-cli|baton-stream: prints "keys secs".
measure() {
    local mode=$1 kind=baton a b before after t0 t1 secs
    [ "$mode" = redis ] && kind=redis
    start_cluster "$kind"
    load "$(IFS=,; echo "${ports[*]}")" "$keys"
    a=$(redis-cli -p "${ports[0]}" cluster myid)
    b=$(redis-cli -p "${ports[1]}" cluster myid)
    before=$(redis-cli -p "${ports[1]}" dbsize)
    if [ "$mode" = baton-stream ]; then
        secs=$(python3 benches/load/slotmove_probe.py "${ports[0]}" "${ports[2]}" "$b" "$slots") || exit 1
    else
        t0=$(date +%s.%N)
        redis-cli --cluster reshard "127.0.0.1:${ports[0]}" --cluster-from "$a" --cluster-to "$b" \
            --cluster-slots "$slots" --cluster-yes >"$dir/reshard.log" 2>&1 \
            || { tail -5 "$dir/reshard.log" >&2; exit 1; }
        t1=$(date +%s.%N)
        secs=$(python3 -c "print($t1 - $t0)")
    fi
    after=$(redis-cli -p "${ports[1]}" dbsize)
    stop_cluster
    echo "$((after - before)) $secs"
}

echo "keys=$keys slots=$slots rounds=$rounds baton=$BATON"
declare -A total_keys total_secs
for mode in redis baton-cli baton-stream; do total_keys[$mode]=0; total_secs[$mode]=0; done
for r in $(seq 1 "$rounds"); do
    for mode in redis baton-cli baton-stream; do
        # Not in a subshell: the EXIT trap must see the servers' pids.
        measure "$mode" >"$dir/result"
        read -r moved secs <"$dir/result"
        printf 'round %d %-13s keys_moved=%d secs=%.3f keys/s=%.0f slots/s=%.1f\n' \
            "$r" "$mode" "$moved" "$secs" "$(python3 -c "print($moved / $secs)")" \
            "$(python3 -c "print($slots / $secs)")"
        total_keys[$mode]=$((total_keys[$mode] + moved))
        total_secs[$mode]=$(python3 -c "print(${total_secs[$mode]} + $secs)")
    done
done
rate() { python3 -c "print(${total_keys[$1]} / ${total_secs[$1]})"; }
printf 'keys/s overall: redis=%.0f baton-cli=%.0f baton-stream=%.0f\n' "$(rate redis)" "$(rate baton-cli)" "$(rate baton-stream)"
printf 'ratio vs redis reshard: baton-stream=%.2fx baton-cli=%.2fx\n' \
    "$(python3 -c "print($(rate baton-stream) / $(rate redis))")" \
    "$(python3 -c "print($(rate baton-cli) / $(rate redis))")"
