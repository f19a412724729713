#!/usr/bin/env bash
# End-to-end hit ratio under a memory limit: Baton (S3-FIFO) against redis-server
# (allkeys-lru) at the same maxmemory, same client and workload, in one run.
#
# Usage: benches/load/hitratio.sh [--maxmemory 8mb] [--warmup SECS] [--duration SECS]
#                                 [--baton-bin PATH]
#
# Workload (issue 3): memtier_benchmark --key-pattern Z:Z --key-zipf-exp 0.8
# --key-maximum 2000000 -d 256 --ratio 1:4 (one SET per four GETs). Each server is warmed
# up for --warmup seconds, its counters are reset (CONFIG RESETSTAT), and the GET hit ratio
# keyspace_hits / (keyspace_hits + keyspace_misses) is read from INFO after --duration
# more seconds. Without memtier_benchmark on PATH the script falls back to redis-benchmark,
# which only draws uniformly random keys: that run is labelled and its ratio says little
# about the policies (every policy hits about maxmemory/keyspace on uniform keys).
set -euo pipefail

MAXMEMORY=8mb
WARMUP=10
DURATION=20
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BATON_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/baton"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --maxmemory) MAXMEMORY=${2:?}; shift 2 ;;
        --warmup) WARMUP=${2:?}; shift 2 ;;
        --duration) DURATION=${2:?}; shift 2 ;;
        --baton-bin) BATON_BIN=${2:?}; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "hitratio.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
for tool in redis-server redis-cli; do
    command -v "$tool" >/dev/null || { echo "hitratio.sh: $tool not found (apt-get install -y redis-server redis-tools)" >&2; exit 2; }
done
[[ -x "$BATON_BIN" ]] || (cd "$ROOT" && cargo build --release)
MEMTIER=$(command -v memtier_benchmark || true)

source "$ROOT/benches/load/lib.sh"
info_field() { redis-cli -p "$1" info "$2" | tr -d '\r' | awk -F: -v k="$3" '$1 == k {print $2}'; }

load() { # port seconds
    if [[ -n "$MEMTIER" ]]; then
        taskset -c 1 "$MEMTIER" -s 127.0.0.1 -p "$1" -P redis -t 1 -c 20 --pipeline 8 \
            --key-pattern Z:Z --key-zipf-exp 0.8 --key-minimum 1 --key-maximum 2000000 \
            -d 256 --ratio 1:4 --test-time "$2" --hide-histogram >/dev/null 2>&1
    else
        local n=$(( $2 * 20000 ))
        taskset -c 1 redis-benchmark -p "$1" -q -P 8 -c 20 -r 2000000 -d 256 -n "$n" -t set >/dev/null
        taskset -c 1 redis-benchmark -p "$1" -q -P 8 -c 20 -r 2000000 -n $(( n * 4 )) -t get >/dev/null
    fi
}

measure() { # name command...
    local name=$1; shift
    local port; port=$(free_port)
    taskset -c 0 "${@//PORT/$port}" >/dev/null 2>&1 &
    local pid=$!; pids+=("$pid")
    wait_ready "$port"
    load "$port" "$WARMUP"
    redis-cli -p "$port" config resetstat >/dev/null
    load "$port" "$DURATION"
    local hits misses evicted used keys
    hits=$(info_field "$port" stats keyspace_hits)
    misses=$(info_field "$port" stats keyspace_misses)
    evicted=$(info_field "$port" stats evicted_keys)
    used=$(info_field "$port" memory used_memory)
    keys=$(redis-cli -p "$port" dbsize)
    local ratio; ratio=$(echo "scale=4; $hits / ($hits + $misses)" | bc)
    printf '%-28s %10s %10s %8s %10s %10s %10s\n' "$name" "$hits" "$misses" "$ratio" "$evicted" "$keys" "$used"
    echo "$ratio" >"$TMP/$name"
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

TMP=$(mktemp -d)
client=${MEMTIER:+memtier_benchmark Z:Z zipf 0.8}
echo "maxmemory $MAXMEMORY, warmup ${WARMUP}s, measured ${DURATION}s, client: ${client:-redis-benchmark (UNIFORM keys: fallback, not the zipf workload)}"
printf '%-28s %10s %10s %8s %10s %10s %10s\n' server hits misses ratio evicted keys used_memory
measure "baton allkeys-s3fifo" "$BATON_BIN" --cores 1 --port PORT --memcache-port 0 \
    --maxmemory "$MAXMEMORY" --maxmemory-policy allkeys-s3fifo
measure "redis-server allkeys-lru" redis-server --port PORT --save '' --appendonly no \
    --maxmemory "$MAXMEMORY" --maxmemory-policy allkeys-lru
b=$(cat "$TMP/baton allkeys-s3fifo"); r=$(cat "$TMP/redis-server allkeys-lru")
echo "baton/redis hit ratio: $(echo "scale=3; $b / $r" | bc)x"
rm -rf "$TMP"
