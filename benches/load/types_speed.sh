#!/usr/bin/env bash
# Throughput and server CPU per op of the data-type commands: Baton and redis-server in
# the same run, alternating per round (who goes first alternates too), one fresh server per
# measurement, each pinned to CPU 0 and the client to CPU 1 (when the machine has two).
#
# Workloads (each a write and a read, half and half; k random in 1..N):
#   hash   HSET h:<k> f <data> / HGET h:<k> f          100,000 small hashes (N = 100000)
#   list   LPUSH l:<k> <data> / RPOP l:<k>             1,000 short lists (N = 1000)
#   set    SADD s <k> / SISMEMBER s <k>                one set of up to 1,000 members
#   zset   ZADD z <k> m<k> / ZRANGE z 0 9              one sorted set of up to 1,000 members
# each at pipeline 1 and 32 with 50 connections. memtier_benchmark (with --command) when it
# is on PATH, else redis-benchmark with its __rand_int__ keys (-P for the pipeline).
# Prints per workload and pipeline: ops/s and server us/op for each server (medians over
# the rounds), and the medians of the paired ratios Baton/Redis. Targets (issue 14):
# ops/s >= 1.0x and CPU per op <= 0.9x Redis's.
#
# Usage: benches/load/types_speed.sh [--rounds N] [--secs S]
#        [--workloads "hash list set zset"] [--pipelines "1 32"] [--baton-bin PATH]
# Run it on a quiet machine (no build or test running).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rounds=3
secs=5
workloads="hash list set zset"
pipelines="1 32"
baton_bin=${CARGO_TARGET_DIR:-target}/release/baton
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --secs) secs=$2; shift 2 ;;
        --workloads) workloads=$2; shift 2 ;;
        --pipelines) pipelines=$2; shift 2 ;;
        --baton-bin) baton_bin=$2; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done
for tool in redis-server redis-cli python3 taskset; do
    command -v "$tool" >/dev/null || { echo "types_speed.sh: $tool not found (apt-get install -y redis-server redis-tools)" >&2; exit 1; }
done
[ -x "$baton_bin" ] || cargo build --release -q
srv_cpu=0; cli_cpu=0
[ "$(nproc)" -ge 2 ] && cli_cpu=1
memtier=$(command -v memtier_benchmark || true)
[ -n "$memtier" ] || echo "memtier_benchmark not on PATH: using redis-benchmark" >&2

# The two commands of a workload, in memtier's --command form.
commands() {
    case "$1" in
        hash) echo "HSET h:__key__ f __data__|HGET h:__key__ f" ;;
        list) echo "LPUSH l:__key__ __data__|RPOP l:__key__" ;;
        set) echo "SADD s __key__|SISMEMBER s __key__" ;;
        zset) echo "ZADD z __key__ m__key__|ZRANGE z 0 9" ;;
    esac
}

# load PORT WORKLOAD PIPELINE: runs the load; prints the ops the server counted.
load() {
    local port=$1 wl=$2 pipe=$3 write read keys=1000 prefix=memtier-
    [ "$wl" = hash ] && keys=100000
    # ZADD's score is the key number itself: memtier's default key prefix ("memtier-")
    # would make every ZADD "ERR value is not a valid float" and every ZRANGE read an
    # absent key (the case before session 11).
    [ "$wl" = zset ] && prefix=
    IFS='|' read -r write read <<<"$(commands "$wl")"
    if [ -n "$memtier" ]; then
        taskset -c $cli_cpu "$memtier" -s 127.0.0.1 -p "$port" -t 1 -c 50 --pipeline "$pipe" \
            --test-time "$secs" --key-prefix="$prefix" -d 32 --key-minimum 1 --key-maximum "$keys" --hide-histogram \
            --command "$write" --command-ratio 1 --command-key-pattern R \
            --command "$read" --command-ratio 1 --command-key-pattern R >/dev/null 2>&1
    else
        local n=$((secs * 20000)) w r
        w=${write//__key__/__rand_int__}; w=${w//__data__/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx}
        r=${read//__key__/__rand_int__}
        # shellcheck disable=SC2086
        taskset -c $cli_cpu redis-benchmark -p "$port" -c 50 -P "$pipe" -n "$n" -r "$keys" -q $w >/dev/null 2>&1
        # shellcheck disable=SC2086
        taskset -c $cli_cpu redis-benchmark -p "$port" -c 50 -P "$pipe" -n "$n" -r "$keys" -q $r >/dev/null 2>&1
    fi
}

# measure SERVER WORKLOAD PIPELINE: prints "ops_per_sec us_per_op".
measure() {
    local server=$1 wl=$2 pipe=$3 port pid
    port=$(free_port)
    if [ "$server" = baton ]; then
        taskset -c $srv_cpu "$baton_bin" --port "$port" --memcache-port 0 --cores 1 >/dev/null 2>&1 &
    else
        taskset -c $srv_cpu redis-server --port "$port" --save '' --appendonly no >/dev/null 2>&1 &
    fi
    pid=$!; pids+=("$pid")
    wait_ready "$port"
    local c0 c1 n0 n1 t0 t1
    c0=$(awk '{print $14+$15}' "/proc/$pid/stat")
    n0=$(redis-cli -p "$port" info stats | awk -F: '/^total_commands_processed/{print $2+0}')
    t0=$(date +%s.%N)
    load "$port" "$wl" "$pipe"
    t1=$(date +%s.%N)
    c1=$(awk '{print $14+$15}' "/proc/$pid/stat")
    n1=$(redis-cli -p "$port" info stats | awk -F: '/^total_commands_processed/{print $2+0}')
    kill "$pid"; wait "$pid" 2>/dev/null || true
    python3 -c "n=$n1-$n0-1; print('%.0f %.3f' % (n/($t1-$t0), ($c1-$c0)*10000.0/max(n,1)))"
}

median() { python3 -c 'import sys,statistics; print("%.3f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

printf '%-6s %4s | %12s %8s | %12s %8s | %8s %8s\n' workload pipe "baton ops/s" "us/op" "redis ops/s" "us/op" "ops x" "cpu x"
for wl in $workloads; do
    for pipe in $pipelines; do
        bo=(); bc=(); ro=(); rc=(); xo=(); xc=()
        for r in $(seq "$rounds"); do
            order="baton redis"; [ $((r % 2)) = 0 ] && order="redis baton"
            for s in $order; do
                read -r ops us <<<"$(measure "$s" "$wl" "$pipe")"
                if [ "$s" = baton ]; then bo+=("$ops"); bc+=("$us"); else ro+=("$ops"); rc+=("$us"); fi
            done
            xo+=("$(python3 -c "print(${bo[-1]}/${ro[-1]})")")
            xc+=("$(python3 -c "print(${bc[-1]}/${rc[-1]})")")
            echo "round $r $wl pipe $pipe: baton ${bo[-1]} ops/s ${bc[-1]} us/op, redis ${ro[-1]} ops/s ${rc[-1]} us/op" >&2
        done
        printf '%-6s %4s | %12.0f %8.3f | %12.0f %8.3f | %7.2fx %7.2fx\n' "$wl" "$pipe" \
            "$(median "${bo[@]}")" "$(median "${bc[@]}")" "$(median "${ro[@]}")" "$(median "${rc[@]}")" \
            "$(median "${xo[@]}")" "$(median "${xc[@]}")"
    done
done
