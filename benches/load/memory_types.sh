#!/usr/bin/env bash
# Memory per element of Redis data types: RSS growth of Baton and redis-server after
# loading, in the same run, through redis-cli --pipe:
#   big-hash     one hash of N fields   (HSET bighash field:<i> value:<i>), N = 1,000,000
#   small-hashes M hashes of 10 fields  (HSET hash:<i> f0 value:<i> ... f9 value:<i>), M = 100,000
#   big-list     one list of N elements (RPUSH biglist value:<i>), N = 1,000,000
#   big-set      one set of S members   (SADD bigset member:<i>), S = 1,000,000
#   big-zset     one sorted set of N members (ZADD bigz <i> member:<i>), N = --fields
#   random-zset  the same members in shuffled order with random scores (not run by default)
# and prints bytes per field (RSS growth / fields) and the ratio Baton / Redis.
# redis-server runs with hash-max-listpack-entries 128 (redis.conf's value; Baton's
# default), so both keep the small hashes packed and the big one in a table.
#
# Usage: benches/load/memory_types.sh [--fields N] [--hashes M] [--members S] [--baton-bin PATH]
#          [--loads "big-hash small-hashes big-list big-set big-zset random-zset"]
# Needs redis-server and redis-cli (apt: redis-server redis-tools).
set -euo pipefail

fields=1000000
hashes=100000
members=1000000
baton_bin=${CARGO_TARGET_DIR:-target}/release/baton
loads="big-hash small-hashes big-list big-set big-zset"
while [ $# -gt 0 ]; do
    case "$1" in
        --fields) fields=$2; shift 2 ;;
        --hashes) hashes=$2; shift 2 ;;
        --members) members=$2; shift 2 ;;
        --loads) loads=$2; shift 2 ;;
        --baton-bin) baton_bin=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done
for tool in redis-server redis-cli python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }
done
[ -x "$baton_bin" ] || cargo build --release --bin baton

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

tmp=$(mktemp -d); trap 'cleanup; rm -rf "$tmp"' EXIT
# RESP for the two loads, written once (pipelined by redis-cli --pipe).
python3 - "$fields" "$hashes" "$tmp" "$members" <<'PY'
import sys
fields, hashes, tmp = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
members = int(sys.argv[4])
def cmd(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)
with open(f"{tmp}/big-hash", "wb") as f:
    for i in range(fields):
        f.write(cmd("HSET", "bighash", f"field:{i}", f"value:{i}"))
with open(f"{tmp}/small-hashes", "wb") as f:
    for i in range(hashes):
        args = ["HSET", f"hash:{i}"]
        for j in range(10):
            args += [f"f{j}", f"value:{i}"]
        f.write(cmd(*args))
with open(f"{tmp}/big-list", "wb") as f:
    for i in range(fields):
        f.write(cmd("RPUSH", "biglist", f"value:{i}"))
with open(f"{tmp}/big-set", "wb") as f:
    for i in range(members):
        f.write(cmd("SADD", "bigset", f"member:{i}"))
with open(f"{tmp}/big-zset", "wb") as f:
    for i in range(fields):
        f.write(cmd("ZADD", "bigz", str(i), f"member:{i}"))
import random
rng = random.Random(7)
order = list(range(fields))
rng.shuffle(order)
with open(f"{tmp}/random-zset", "wb") as f:
    for i in order:
        f.write(cmd("ZADD", "bigz", repr(rng.random()), f"member:{i}"))
PY

declare -A per
measure() { # name load elements start-command...
    local name=$1 load=$2 n=$3; shift 3
    local port; port=$(free_port)
    "${@//PORT/$port}" >/dev/null 2>&1 &
    local pid=$!; pids+=("$pid")
    wait_ready "$port" redis
    redis-cli -p "$port" config set hash-max-listpack-entries 128 >/dev/null
    redis-cli -p "$port" config set zset-max-listpack-entries 128 >/dev/null
    local before; before=$(rss_kb "$pid")
    redis-cli -p "$port" --pipe < "$tmp/$load" >/dev/null
    local after; after=$(rss_kb "$pid")
    local probe
    case "$load" in big-hash) probe=bighash ;; big-list) probe=biglist ;; big-set) probe=bigset ;; big-zset|random-zset) probe=bigz ;; *) probe=hash:0 ;; esac
    local enc; enc=$(redis-cli -p "$port" object encoding "$probe")
    local b; b=$(echo "($after - $before) * 1024 / $n" | bc -l)
    per[$name/$load]=$b
    printf '%-13s %-13s %-10s %10d %12d %12d %10.1f\n' "$name" "$load" "$enc" "$n" "$before" "$after" "$b"
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

printf '%-13s %-13s %-10s %10s %12s %12s %10s\n' server load encoding fields rss_before_kb rss_after_kb bytes/field
for load in $loads; do
    n=$fields; [ "$load" = small-hashes ] && n=$((hashes * 10)); [ "$load" = big-set ] && n=$members
    measure baton "$load" "$n" "$baton_bin" --cores 1 --bind 127.0.0.1 --port PORT --memcache-port 0
    measure redis-server "$load" "$n" redis-server --port PORT --bind 127.0.0.1 --save '' --appendonly no
done
for load in $loads; do
    printf 'ratio baton/redis %-13s %.2f\n' "$load" "$(echo "${per[baton/$load]} / ${per[redis-server/$load]}" | bc -l)"
done
