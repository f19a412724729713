#!/usr/bin/env bash
# Memory per key: RSS growth of Baton, redis-server and memcached after loading N keys
# (memtier-style keys, 64-byte values) through memtier_benchmark, in one run.
#
# Usage: benches/load/memory.sh [--keys N ...] [--baton-bin PATH]
# Needs memtier_benchmark on PATH, redis-server and memcached (apt: redis-server memcached).
set -euo pipefail

keys=(10000 1000000)
baton_bin=${CARGO_TARGET_DIR:-target}/release/baton
while [ $# -gt 0 ]; do
    case "$1" in
        --keys) shift; keys=(); while [ $# -gt 0 ] && [[ "$1" != --* ]]; do keys+=("$1"); shift; done ;;
        --baton-bin) baton_bin=$2; shift 2 ;;
        -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done
for tool in memtier_benchmark redis-server memcached redis-cli; do
    command -v "$tool" >/dev/null || { echo "missing $tool (memtier_benchmark: build it yourself; others: apt-get install redis-server redis-tools memcached)" >&2; exit 2; }
done
[ -x "$baton_bin" ] || cargo build --release

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

measure() { # name proto n start-command...
    local name=$1 proto=$2 n=$3; shift 3
    local port; port=$(free_port)
    "${@//PORT/$port}" >/dev/null 2>&1 &
    local pid=$!; pids+=("$pid")
    wait_ready "$port" "$proto"
    local before; before=$(rss_kb "$pid")
    local p=redis; [ "$proto" = memcache ] && p=memcache_text
    memtier_benchmark -s 127.0.0.1 -p "$port" -P "$p" -t 1 -c 1 --ratio 1:0 -d 64 \
        --key-pattern P:P --key-minimum 1 --key-maximum "$n" -n allkeys --pipeline 32 --hide-histogram >/dev/null 2>&1
    local after; after=$(rss_kb "$pid")
    printf '%-14s %10d %12d %12d %10.1f\n' "$name" "$n" "$before" "$after" "$(echo "($after - $before) * 1024 / $n" | bc -l)"
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

as_root=(); [ "$(id -u)" = 0 ] && as_root=(-u root)  # memcached refuses root without -u
printf '%-14s %10s %12s %12s %10s\n' server keys rss_before_kb rss_after_kb bytes/key
for n in "${keys[@]}"; do
    measure baton redis "$n" "$baton_bin" --cores 1 --bind 127.0.0.1 --port PORT --memcache-port 0
    measure redis-server redis "$n" redis-server --port PORT --bind 127.0.0.1 --save '' --appendonly no
    measure memcached memcache "$n" memcached -t 1 -p PORT -U 0 -l 127.0.0.1 -m 4096 ${as_root[@]+"${as_root[@]}"}
done
