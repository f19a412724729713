#!/usr/bin/env bash
# Load comparison: Baton against redis-server (or memcached) in one run, same CPU pinning,
# same client, same workload. Prints one table with Baton/peer ratios.
#
# Usage: benches/load/run.sh [options]   (run with --help for the list)
#
# Each server is started pinned to the server CPUs (0..cores-1) and listens on 127.0.0.1
# only; the client runs pinned to the next CPU. Server CPU per operation comes from
# utime+stime in /proc/<pid>/stat, sampled right before and after each client run.
# Everything the script starts is killed on exit.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: benches/load/run.sh [options]

  --proto redis|memcache   protocol and peer server: redis-server or memcached (default redis)
  --pipeline N ...         pipeline depths to run, one or more (default: 1 32)
  --cores N                server cores: baton --cores N, pinned to CPUs 0..N-1; the peer
                           is pinned to the same CPUs (memcached gets -t N) (default 1)
  --baton-bin PATH         baton binary (default: target/release/baton, or
                           $CARGO_TARGET_DIR/release/baton when that is set; built with
                           `cargo build --release` if the default is missing)
  --duration SECS          seconds per run (default 10; ignored by redis-benchmark)
  --requests N             total requests per run instead of a duration
  -h, --help               this text

Client: memtier_benchmark if it is on PATH (-t 1 -c 50 --ratio 1:10 -d 64
--key-maximum 100000 --key-pattern R:R), else redis-benchmark (-c 50 -d 64 -r 100000
-t set,get, -n --requests or 100000 per test). redis-benchmark cannot speak the memcached
protocol, so --proto memcache without memtier_benchmark is skipped (exit status 3).

Columns: ops/s and p99 latency (ms) as the client reports them; server CPU microseconds
per operation; client-reported errors; srv_cpu and cli_cpu, the server's and the client's
CPU use in percent of their CPUs over the client's run; on Baton rows, Baton/peer ratios
of ops/s (higher is better) and of CPU per op (lower is better). A note names the runs
where the client's CPU was saturated and the server's was not: there ops/s is the
client's pace, and cpu_us/op is the fair comparison of the servers.
EOF
}

die() {
    echo "run.sh: $*" >&2
    exit 1
}

need() { # need COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 || die "$1 not found; install the '$2' package (apt-get install -y $2)"
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PROTO=redis
PIPELINES=()
CORES=1
DEFAULT_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/baton"
BATON_BIN=""
DURATION=10
REQUESTS=""
CONNS=50

while [[ $# -gt 0 ]]; do
    case "$1" in
        --proto) PROTO=${2:?--proto needs a value}; shift 2 ;;
        --pipeline)
            shift
            [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]] || die "--pipeline needs at least one number"
            while [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; do PIPELINES+=("$1"); shift; done ;;
        --cores) CORES=${2:?--cores needs a value}; shift 2 ;;
        --baton-bin) BATON_BIN=${2:?--baton-bin needs a value}; shift 2 ;;
        --duration) DURATION=${2:?--duration needs a value}; shift 2 ;;
        --requests) REQUESTS=${2:?--requests needs a value}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
[[ ${#PIPELINES[@]} -gt 0 ]] || PIPELINES=(1 32)
[[ $PROTO == redis || $PROTO == memcache ]] || die "--proto must be redis or memcache, not '$PROTO'"
[[ $CORES =~ ^[1-9][0-9]*$ ]] || die "--cores must be a positive integer"
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "--duration must be a positive integer"
[[ -z $REQUESTS || $REQUESTS =~ ^[1-9][0-9]*$ ]] || die "--requests must be a positive integer"
for p in "${PIPELINES[@]}"; do [[ $p -ge 1 ]] || die "--pipeline values must be >= 1"; done

# ---- tools -------------------------------------------------------------------------------

need taskset util-linux
need ss iproute2
need getconf libc-bin
if [[ $PROTO == redis ]]; then
    need redis-server redis-server
    PEER=redis-server
else
    need memcached memcached
    PEER=memcached
fi

if command -v memtier_benchmark >/dev/null 2>&1; then
    CLIENT=memtier
else
    if [[ $PROTO == memcache ]]; then
        echo "SKIPPED: memtier_benchmark is not on PATH, and redis-benchmark cannot speak the" \
            "memcached protocol. Install memtier_benchmark to compare against memcached." >&2
        exit 3
    fi
    need redis-benchmark redis-tools
    CLIENT=redis-benchmark
    echo "NOTE: memtier_benchmark is not on PATH; falling back to redis-benchmark" \
        "(SET and GET run back to back, no 1:10 ratio; combined ops/s, worse p99 of the two)." >&2
fi

NCPU=$(getconf _NPROCESSORS_ONLN)
CLK_TCK=$(getconf CLK_TCK)
[[ $CORES -le $NCPU ]] || die "--cores $CORES but only $NCPU CPUs online"
SERVER_CPUS=$(seq -s, 0 $((CORES - 1)))
if [[ $CORES -lt $NCPU ]]; then
    CLIENT_CPU=$CORES
else
    CLIENT_CPU=$((NCPU - 1))
    echo "WARNING: no spare CPU for the client; it shares CPU $CLIENT_CPU with the servers." >&2
fi

if [[ -z $BATON_BIN ]]; then
    BATON_BIN=$DEFAULT_BIN
    if [[ ! -x $BATON_BIN ]]; then
        echo "building baton: cargo build --release (in $ROOT)" >&2
        (cd "$ROOT" && cargo build --release --bin baton) || die "cargo build --release failed"
    fi
fi
[[ -x $BATON_BIN ]] || die "baton binary not found or not executable: $BATON_BIN"

# ---- process bookkeeping -----------------------------------------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/baton-load.XXXXXX")
STARTED=()

cleanup() {
    local pid deadline=$((SECONDS + 5))
    for pid in "${STARTED[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED[@]}"; do
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Ports that nothing listens on now, picked at random so parallel runs rarely collide.
# A server that still loses a race fails to bind and exits; wait_ready reports it.
USED_PORTS=" $(ss -Hltn | awk '{n = split($4, a, ":"); printf "%s ", a[n]}')"
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 12000)) # below the usual ephemeral range
        if [[ $USED_PORTS != *" $port "* ]]; then
            USED_PORTS+="$port "
            echo "$port"
            return
        fi
    done
}

# start NAME CPULIST COMMAND...: runs COMMAND pinned, logging to $WORK/NAME.log; sets PID.
# taskset execs COMMAND, so PID is the server's own pid.
start() {
    local name=$1 cpus=$2
    shift 2
    taskset -c "$cpus" "$@" >"$WORK/$name.log" 2>&1 &
    PID=$!
    STARTED+=("$PID")
}

# run_client OUT COMMAND...: runs the client pinned to CLIENT_CPU with stdout to OUT.out and
# stderr to OUT.err. It runs in the background and is waited for, so a signal to this script
# is handled at once and the cleanup kills the client too.
# Sets CLIENT_CPU_SECS (the client's user+sys time, all its threads) and CLIENT_WALL_SECS.
run_client() {
    local out=$1 pid status=0 cpu0 cpu1 t0 t1
    shift
    children_cpu; cpu0=$CHILDREN_CPU
    t0=$(date +%s.%N)
    taskset -c "$CLIENT_CPU" "$@" >"$out.out" 2>"$out.err" &
    pid=$!
    STARTED+=("$pid")
    wait "$pid" || status=$?
    t1=$(date +%s.%N)
    children_cpu; cpu1=$CHILDREN_CPU
    unset 'STARTED[-1]'
    CLIENT_CPU_SECS=$(awk -v c="$cpu1" -v c0="$cpu0" 'BEGIN {print c - c0}')
    CLIENT_WALL_SECS=$(awk -v t="$t1" -v t0="$t0" 'BEGIN {print t - t0}')
    return "$status"
}

# Sets CHILDREN_CPU: CPU seconds (user+sys) used by this shell's children that have been
# waited for, from the second line of bash's `times` ("0m1.250s 0m0.730s"). `times` runs
# in this shell, not in a pipeline or $(...), whose subshell has children of its own.
children_cpu() {
    times >"$WORK/times"
    CHILDREN_CPU=$(awk 'NR == 2 {
        n = split($1 " " $2, f, " "); s = 0
        for (i = 1; i <= n; i++) { split(f[i], ms, "m"); sub("s", "", ms[2]); s += ms[1] * 60 + ms[2] }
        print s }' "$WORK/times")
}

# wait_ready NAME PID PORT: retries a protocol-level ping until the server answers.
wait_ready() {
    local name=$1 pid=$2 port=$3 deadline=$((SECONDS + 20)) reply=""
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || {
            tail -n 20 "$WORK/$name.log" >&2
            die "$name exited during startup (log above)"
        }
        if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
            if [[ $PROTO == redis ]]; then
                printf 'PING\r\n' >&3
                IFS= read -r -t 2 reply <&3 || true
                exec 3>&-
                [[ $reply == "+PONG"* ]] && return 0
            else
                printf 'version\r\n' >&3
                IFS= read -r -t 2 reply <&3 || true
                exec 3>&-
                [[ $reply == "VERSION"* ]] && return 0
            fi
        fi
        sleep 0.05
    done
    die "$name did not answer on 127.0.0.1:$port within 20 s"
}

# only_loopback NAME PID: every listening socket of PID must be bound to 127.0.0.1.
only_loopback() {
    local name=$1 pid=$2 bad
    bad=$( { ss -Hltnp; ss -Hlunp; } | grep "pid=$pid," | awk '$4 !~ /^127\.0\.0\.1:/ {print $4}' || true)
    [[ -z $bad ]] || die "$name listens beyond 127.0.0.1: ${bad//$'\n'/ }"
}

cpu_ticks() { # utime + stime of PID (fields 14, 15; counted after the ")" ending comm)
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*") "}
    awk '{print $12 + $13}' <<<"$stat"
}

# ---- servers -----------------------------------------------------------------------------

BATON_PORT=$(free_port)
BATON_MC_PORT=$(free_port)
PEER_PORT=$(free_port)
if [[ $PROTO == redis ]]; then
    BATON_TARGET=$BATON_PORT
else
    BATON_TARGET=$BATON_MC_PORT
fi

start baton "$SERVER_CPUS" "$BATON_BIN" --cores "$CORES" --bind 127.0.0.1 \
    --port "$BATON_PORT" --memcache-port "$BATON_MC_PORT"
BATON_PID=$PID
if [[ $PROTO == redis ]]; then
    start "$PEER" "$SERVER_CPUS" redis-server --bind 127.0.0.1 --port "$PEER_PORT" \
        --save '' --appendonly no --protected-mode yes
else
    # memcached refuses to run as root unless told which user to be.
    as_user=()
    [[ $(id -u) -eq 0 ]] && as_user=(-u root)
    start "$PEER" "$SERVER_CPUS" memcached -l 127.0.0.1 -p "$PEER_PORT" -U 0 -t "$CORES" "${as_user[@]}"
fi
PEER_PID=$PID

wait_ready baton "$BATON_PID" "$BATON_TARGET"
wait_ready "$PEER" "$PEER_PID" "$PEER_PORT"
only_loopback baton "$BATON_PID"
only_loopback "$PEER" "$PEER_PID"

# ---- client runs -------------------------------------------------------------------------

# drive NAME PORT PIPELINE: runs the client; sets OPS_S, P99, OPS (operations done), ERRORS.
drive() {
    local name=$1 port=$2 pipeline=$3 out="$WORK/$1-p$3"
    if [[ $CLIENT == memtier ]]; then
        local args=(-s 127.0.0.1 -p "$port" -t 1 -c "$CONNS" --ratio 1:10 -d 64
            --key-maximum 100000 --key-pattern R:R --pipeline "$pipeline"
            --hide-histogram --print-percentiles 99 --json-out-file "$out.json")
        [[ $PROTO == memcache ]] && args+=(-P memcache_text)
        if [[ -n $REQUESTS ]]; then
            args+=(-n $(((REQUESTS + CONNS - 1) / CONNS)))
        else
            args+=(--test-time "$DURATION")
        fi
        run_client "$out" memtier_benchmark "${args[@]}" \
            || { tail -n 20 "$out.err" >&2; die "memtier_benchmark failed against $name"; }
        # Totals line: Type Ops/sec Hits/sec Misses/sec Avg.Latency p99 KB/sec
        read -r OPS_S P99 < <(awk '$1 == "Totals" {print $2, $6}' "$out.out") || true
        OPS=$(awk '/"Totals":/ {t = 1} t && /"Count":/ {gsub(/[^0-9]/, ""); print; exit}' "$out.json")
        local conn_errors
        conn_errors=$(awk '/"Totals":/ {t = 1} t && /"Connection Errors":/ {gsub(/[^0-9]/, ""); print; exit}' "$out.json")
        # Error replies and connection trouble are logged one per line on stderr.
        ERRORS=$(tr '\r' '\n' <"$out.err" | grep -ciE 'error|fail|dropped|timeout|exceeded' || true)
        ERRORS=$((ERRORS + ${conn_errors:-0}))
        # memtier's own measured span, without its start-up and connection set-up.
        local span_ms
        span_ms=$(awk '/"Total duration":/ {gsub(/[^0-9]/, ""); print; exit}' "$out.json")
        [[ -n $span_ms && $span_ms -gt 0 ]] && CLIENT_WALL_SECS=$(awk -v ms="$span_ms" 'BEGIN {print ms / 1000}')
    else
        local n=${REQUESTS:-100000}
        run_client "$out" redis-benchmark -h 127.0.0.1 -p "$port" -P "$pipeline" \
            -c "$CONNS" -d 64 -r 100000 -t set,get -n "$n" --csv \
            || { tail -n 20 "$out.err" >&2; die "redis-benchmark failed against $name"; }
        # Rows "SET","rps",...,"p99",...: two tests of n requests each, run back to back.
        read -r OPS_S P99 < <(tr -d '"' <"$out.out" | awk -F, -v n="$n" '
            $1 == "SET" || $1 == "GET" {secs += n / $2; if ($7 > p99) p99 = $7}
            END {if (secs > 0) printf "%.2f %s\n", 2 * n / secs, p99}') || true
        OPS=$((2 * n))
        ERRORS=$(grep -ci 'error' "$out.err" || true)
    fi
    [[ -n $OPS_S && -n $P99 && -n $OPS && $OPS -gt 0 ]] \
        || die "could not read the client's results for $name (see $out.*)"
    # The client's CPU use in percent of one CPU. Near 100, the client set the pace.
    # (It also counts the client's start-up, so it can read a little over 100.)
    CLIENT_BUSY=$(awk -v c="$CLIENT_CPU_SECS" -v t="$CLIENT_WALL_SECS" \
        'BEGIN {printf "%.0f", (t > 0 ? 100 * c / t : 0)}')
}

ROWS=()
CLIENT_BOUND=()
for pipeline in "${PIPELINES[@]}"; do
    declare -A ops_s=() cpu_op=()
    for server in baton "$PEER"; do
        if [[ $server == baton ]]; then pid=$BATON_PID port=$BATON_TARGET; else pid=$PEER_PID port=$PEER_PORT; fi
        echo "running $server, pipeline $pipeline ($CLIENT)..." >&2
        before=$(cpu_ticks "$pid")
        drive "$server" "$port" "$pipeline"
        after=$(cpu_ticks "$pid")
        kill -0 "$pid" 2>/dev/null || die "$server died during the run"
        ops_s[$server]=$OPS_S
        cpu_op[$server]=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v ops="$OPS" \
            'BEGIN {printf "%.3f", t * 1e6 / hz / ops}')
        server_busy=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v w="$CLIENT_WALL_SECS" \
            -v n="$CORES" 'BEGIN {printf "%.0f", (w > 0 ? 100 * t / hz / w / n : 0)}')
        ROWS+=("$server $pipeline $OPS_S $P99 ${cpu_op[$server]} $ERRORS $server_busy $CLIENT_BUSY")
        if [[ $CLIENT_BUSY -ge 90 && $server_busy -lt 90 ]]; then
            CLIENT_BOUND+=("$server/p$pipeline (client $CLIENT_BUSY%, server $server_busy%)")
        fi
    done
    # Ratios go on the Baton row of this pipeline depth.
    ratio=$(awk -v bo="${ops_s[baton]}" -v po="${ops_s[$PEER]}" \
        -v bc="${cpu_op[baton]}" -v pc="${cpu_op[$PEER]}" 'BEGIN {
            printf "%s %s", (po > 0 ? sprintf("%.2fx", bo / po) : "-"),
                            (pc > 0 ? sprintf("%.2fx", bc / pc) : "-") }')
    ROWS[${#ROWS[@]} - 2]+=" $ratio"
    unset ops_s cpu_op
done

echo
echo "proto=$PROTO client=$CLIENT cores=$CORES server_cpus=$SERVER_CPUS client_cpu=$CLIENT_CPU" \
    "$([[ -n $REQUESTS ]] && echo "requests=$REQUESTS" || echo "duration=${DURATION}s")" \
    "baton=$BATON_BIN"
FORMAT="%-13s %8s %12s %8s %10s %7s %7s %7s %14s %15s\n"
# shellcheck disable=SC2059 # the format is ours, shared by header and rows
printf "$FORMAT" server pipeline ops/s p99_ms cpu_us/op errors srv_cpu cli_cpu "ops/s vs peer" "cpu/op vs peer"
for row in "${ROWS[@]}"; do
    read -r -a f <<<"$row"
    # shellcheck disable=SC2059
    printf "$FORMAT" "${f[0]}" "${f[1]}" "${f[2]}" "${f[3]}" "${f[4]}" "${f[5]}" "${f[6]}%" "${f[7]}%" "${f[8]:--}" "${f[9]:--}"
done
if [[ ${#CLIENT_BOUND[@]} -gt 0 ]]; then
    echo
    echo "client-bound: ${CLIENT_BOUND[*]}. The client's CPU was saturated and the server's" \
        "was not, so ops/s there is the client's pace; compare those servers by cpu_us/op."
fi
