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
  --pipeline N ...         pipeline depths to run at 50 connections, one or more
                           (default: 1 32)
  --points C:P ...         load points as connections:pipeline, one or more (overrides
                           --pipeline), e.g. --points 1:1 50:32
  --sweep                  the concurrency sweep: --points 1:1 5:1 50:1 50:32, 3 rounds
                           unless --rounds says otherwise
  --rounds N               every point runs N times per server, alternating Baton and the
                           peer (who goes first alternates per round); the table shows
                           medians and the median of the per-round ratios (default 1)
  --cores N                server cores: baton --cores N, pinned to CPUs 0..N-1; the peer
                           is pinned to the same CPUs (memcached gets -t N) (default 1)
  --peer-baton-cores N     the peer is Baton itself with --cores N, pinned to CPUs
                           0..N-1 (what more cores cost per op); --proto picks the port
  --baton-bin PATH         baton binary (default: target/release/baton, or
                           $CARGO_TARGET_DIR/release/baton when that is set; built with
                           `cargo build --release` if the default is missing)
  --duration SECS          seconds per run (default 10; ignored by redis-benchmark)
  --requests N             total requests per run instead of a duration
  -h, --help               this text

Client: memtier_benchmark if it is on PATH (-t 1 -c C --ratio 1:10 -d 64
--key-maximum 100000 --key-pattern R:R --pipeline P), else redis-benchmark (-c C -d 64
-r 100000 -t set,get, -n --requests or 100000 per test). redis-benchmark cannot speak the
memcached protocol, so --proto memcache without memtier_benchmark is skipped (exit
status 3).

Columns: ops/s and p50/p99 latency (ms) as the client reports them; server CPU
microseconds per operation; client-reported errors; srv_cpu and cli_cpu, the server's and
the client's CPU use in percent of their CPUs over the client's run; on Baton rows,
Baton/peer ratios of ops/s (higher is better), of p50 and of CPU per op (lower is better).
With several rounds every figure is the median over the rounds (errors are summed), and
every ratio is the median of the per-round ratios. A note names the runs where the
client's CPU was saturated and the server's was not: there ops/s is the client's pace,
and cpu_us/op is the fair comparison of the servers.
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
POINTS=()
ROUNDS=""
CORES=1
PEER_CORES=""
DEFAULT_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/baton"
BATON_BIN=""
DURATION=10
REQUESTS=""

while [[ $# -gt 0 ]]; do
    case "$1" in
        --proto) PROTO=${2:?--proto needs a value}; shift 2 ;;
        --pipeline)
            shift
            [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]] || die "--pipeline needs at least one number"
            while [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; do PIPELINES+=("$1"); shift; done ;;
        --points)
            shift
            [[ $# -gt 0 && $1 =~ ^[0-9]+:[0-9]+$ ]] || die "--points needs at least one CONNS:PIPELINE"
            while [[ $# -gt 0 && $1 =~ ^[0-9]+:[0-9]+$ ]]; do POINTS+=("$1"); shift; done ;;
        --sweep) POINTS=(1:1 5:1 50:1 50:32); ROUNDS=${ROUNDS:-3}; shift ;;
        --rounds) ROUNDS=${2:?--rounds needs a value}; shift 2 ;;
        --cores) CORES=${2:?--cores needs a value}; shift 2 ;;
        --peer-baton-cores) PEER_CORES=${2:?--peer-baton-cores needs a value}; shift 2 ;;
        --baton-bin) BATON_BIN=${2:?--baton-bin needs a value}; shift 2 ;;
        --duration) DURATION=${2:?--duration needs a value}; shift 2 ;;
        --requests) REQUESTS=${2:?--requests needs a value}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
ROUNDS=${ROUNDS:-1}
[[ ${#PIPELINES[@]} -gt 0 ]] || PIPELINES=(1 32)
if [[ ${#POINTS[@]} -eq 0 ]]; then
    for p in "${PIPELINES[@]}"; do POINTS+=("50:$p"); done
fi
[[ $PROTO == redis || $PROTO == memcache ]] || die "--proto must be redis or memcache, not '$PROTO'"
[[ $CORES =~ ^[1-9][0-9]*$ ]] || die "--cores must be a positive integer"
[[ -z $PEER_CORES || $PEER_CORES =~ ^[1-9][0-9]*$ ]] || die "--peer-baton-cores must be a positive integer"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "--duration must be a positive integer"
[[ -z $REQUESTS || $REQUESTS =~ ^[1-9][0-9]*$ ]] || die "--requests must be a positive integer"
for pt in "${POINTS[@]}"; do
    [[ ${pt%%:*} -ge 1 && ${pt##*:} -ge 1 ]] || die "--points and --pipeline values must be >= 1"
done

# ---- tools -------------------------------------------------------------------------------

need taskset util-linux
need ss iproute2
need getconf libc-bin
if [[ -n $PEER_CORES ]]; then
    PEER="baton-cores$PEER_CORES"
elif [[ $PROTO == redis ]]; then
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
[[ -z $PEER_CORES || $PEER_CORES -le $NCPU ]] || die "--peer-baton-cores $PEER_CORES but only $NCPU CPUs online"
SERVER_CPUS=$(seq -s, 0 $((CORES - 1)))
PEER_CPUS=$(seq -s, 0 $((${PEER_CORES:-$CORES} - 1)))
WIDEST=$((CORES > ${PEER_CORES:-0} ? CORES : PEER_CORES))
if [[ $WIDEST -lt $NCPU ]]; then
    CLIENT_CPU=$WIDEST
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
if [[ -n $PEER_CORES ]]; then
    PEER_MC_PORT=$(free_port)
    start "$PEER" "$PEER_CPUS" "$BATON_BIN" --cores "$PEER_CORES" --bind 127.0.0.1 \
        --port "$PEER_PORT" --memcache-port "$PEER_MC_PORT"
    [[ $PROTO == memcache ]] && PEER_PORT=$PEER_MC_PORT
elif [[ $PROTO == redis ]]; then
    start "$PEER" "$PEER_CPUS" redis-server --bind 127.0.0.1 --port "$PEER_PORT" \
        --save '' --appendonly no --protected-mode yes
else
    # memcached refuses to run as root unless told which user to be.
    as_user=()
    [[ $(id -u) -eq 0 ]] && as_user=(-u root)
    start "$PEER" "$PEER_CPUS" memcached -l 127.0.0.1 -p "$PEER_PORT" -U 0 -t "$CORES" "${as_user[@]}"
fi
PEER_PID=$PID

wait_ready baton "$BATON_PID" "$BATON_TARGET"
wait_ready "$PEER" "$PEER_PID" "$PEER_PORT"
only_loopback baton "$BATON_PID"
only_loopback "$PEER" "$PEER_PID"

# ---- client runs -------------------------------------------------------------------------

# drive NAME PORT CONNS PIPELINE: runs the client; sets OPS_S, P50, P99, OPS (operations
# done), ERRORS.
drive() {
    local name=$1 port=$2 conns=$3 pipeline=$4 out="$WORK/$1-c$3-p$4-r$ROUND"
    if [[ $CLIENT == memtier ]]; then
        local args=(-s 127.0.0.1 -p "$port" -t 1 -c "$conns" --ratio 1:10 -d 64
            --key-maximum 100000 --key-pattern R:R --pipeline "$pipeline"
            --hide-histogram --print-percentiles 50,99 --json-out-file "$out.json")
        [[ $PROTO == memcache ]] && args+=(-P memcache_text)
        if [[ -n $REQUESTS ]]; then
            args+=(-n $(((REQUESTS + conns - 1) / conns)))
        else
            args+=(--test-time "$DURATION")
        fi
        run_client "$out" memtier_benchmark "${args[@]}" \
            || { tail -n 20 "$out.err" >&2; die "memtier_benchmark failed against $name"; }
        # Totals line: Type Ops/sec Hits/sec Misses/sec Avg.Latency p50 p99 KB/sec
        read -r OPS_S P50 P99 < <(awk '$1 == "Totals" {print $2, $6, $7}' "$out.out") || true
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
            -c "$conns" -d 64 -r 100000 -t set,get -n "$n" --csv \
            || { tail -n 20 "$out.err" >&2; die "redis-benchmark failed against $name"; }
        # Rows "SET","rps","avg","min","p50","p95","p99","max": two tests of n requests
        # each, run back to back; the worse percentile of the two.
        read -r OPS_S P50 P99 < <(tr -d '"' <"$out.out" | awk -F, -v n="$n" '
            $1 == "SET" || $1 == "GET" {secs += n / $2; if ($5 > p50) p50 = $5; if ($7 > p99) p99 = $7}
            END {if (secs > 0) printf "%.2f %s %s\n", 2 * n / secs, p50, p99}') || true
        OPS=$((2 * n))
        ERRORS=$(grep -ci 'error' "$out.err" || true)
    fi
    [[ -n $OPS_S && -n $P50 && -n $P99 && -n $OPS && $OPS -gt 0 ]] \
        || die "could not read the client's results for $name (see $out.*)"
    # The client's CPU use in percent of one CPU. Near 100, the client set the pace.
    # (It also counts the client's start-up, so it can read a little over 100.)
    CLIENT_BUSY=$(awk -v c="$CLIENT_CPU_SECS" -v t="$CLIENT_WALL_SECS" \
        'BEGIN {printf "%.0f", (t > 0 ? 100 * c / t : 0)}')
}

# One line per run: round point server ops/s p50 p99 cpu_us/op errors srv_cpu cli_cpu
RUNS="$WORK/runs"
: >"$RUNS"
CLIENT_BOUND=()
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
    # Who goes first alternates per round, so neither always runs on a warmer machine.
    order=(baton "$PEER")
    ((ROUND % 2 == 0)) && order=("$PEER" baton)
    for point in "${POINTS[@]}"; do
        conns=${point%%:*} pipeline=${point##*:}
        for server in "${order[@]}"; do
            if [[ $server == baton ]]; then
                pid=$BATON_PID port=$BATON_TARGET n=$CORES
            else
                pid=$PEER_PID port=$PEER_PORT n=${PEER_CORES:-$CORES}
            fi
            echo "round $ROUND/$ROUNDS: $server, $conns connections, pipeline $pipeline ($CLIENT)..." >&2
            before=$(cpu_ticks "$pid")
            drive "$server" "$port" "$conns" "$pipeline"
            after=$(cpu_ticks "$pid")
            kill -0 "$pid" 2>/dev/null || die "$server died during the run"
            cpu_op=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v ops="$OPS" \
                'BEGIN {printf "%.3f", t * 1e6 / hz / ops}')
            server_busy=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v w="$CLIENT_WALL_SECS" \
                -v n="$n" 'BEGIN {printf "%.0f", (w > 0 ? 100 * t / hz / w / n : 0)}')
            echo "$ROUND $point $server $OPS_S $P50 $P99 $cpu_op $ERRORS $server_busy $CLIENT_BUSY" >>"$RUNS"
            if [[ $CLIENT_BUSY -ge 90 && $server_busy -lt 90 ]]; then
                CLIENT_BOUND+=("$server/c$conns/p$pipeline/r$ROUND (client $CLIENT_BUSY%, server $server_busy%)")
            fi
        done
    done
done

echo
echo "proto=$PROTO client=$CLIENT cores=$CORES peer=$PEER server_cpus=$SERVER_CPUS" \
    "peer_cpus=$PEER_CPUS client_cpu=$CLIENT_CPU rounds=$ROUNDS" \
    "$([[ -n $REQUESTS ]] && echo "requests=$REQUESTS" || echo "duration=${DURATION}s")" \
    "baton=$BATON_BIN"
# Medians per point and server; on Baton rows, the medians of the per-round ratios.
awk -v peer="$PEER" -v rounds="$ROUNDS" '
    function median(list,    a, n, i, j, t) {
        n = split(list, a, " ")
        for (i = 2; i <= n; i++)
            for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function ratio(a, b) { return b > 0 ? a / b : 0 }
    {
        r = $1; pt = $2; s = $3
        if (!(pt in seen)) { seen[pt] = 1; points[++np] = pt }
        for (f = 4; f <= 10; f++) col[pt, s, f] = col[pt, s, f] " " $f
        for (f = 4; f <= 7; f++) val[r, pt, s, f] = $f
        rs[r] = 1
    }
    END {
        fmt = "%-15s %5s %4s %10s %7s %7s %9s %6s %7s %7s %7s %7s %7s\n"
        printf fmt, "server", "conns", "pipe", "ops/s", "p50_ms", "p99_ms", "cpu_us/op", "errors",
            "srv_cpu", "cli_cpu", "ops/s", "p50", "cpu/op"
        printf fmt, "", "", "", "", "", "", "", "", "", "", "vs peer", "vs peer", "vs peer"
        for (i = 1; i <= np; i++) {
            pt = points[i]; split(pt, cp, ":")
            for (k = 0; k < 2; k++) {
                s = k == 0 ? "baton" : peer
                ro = "-"; rp = "-"; rc = "-"
                if (s == "baton") {
                    lo = ""; lp = ""; lc = ""
                    for (r in rs) {
                        lo = lo " " ratio(val[r, pt, "baton", 4], val[r, pt, peer, 4])
                        lp = lp " " ratio(val[r, pt, "baton", 5], val[r, pt, peer, 5])
                        lc = lc " " ratio(val[r, pt, "baton", 7], val[r, pt, peer, 7])
                    }
                    ro = sprintf("%.2fx", median(lo)); rp = sprintf("%.2fx", median(lp)); rc = sprintf("%.2fx", median(lc))
                }
                errs = 0; n = split(col[pt, s, 8], e, " "); for (j = 1; j <= n; j++) errs += e[j]
                printf fmt, s, cp[1], cp[2], sprintf("%.0f", median(col[pt, s, 4])),
                    sprintf("%.3f", median(col[pt, s, 5])), sprintf("%.3f", median(col[pt, s, 6])),
                    sprintf("%.3f", median(col[pt, s, 7])), errs,
                    sprintf("%.0f%%", median(col[pt, s, 9])), sprintf("%.0f%%", median(col[pt, s, 10])), ro, rp, rc
            }
        }
        if (rounds > 1) print "\n(medians over " rounds " rounds; errors summed over them)"
    }' "$RUNS"
if [[ ${#CLIENT_BOUND[@]} -gt 0 ]]; then
    echo
    echo "client-bound: ${CLIENT_BOUND[*]}. The client's CPU was saturated and the server's" \
        "was not, so ops/s there is the client's pace; compare those servers by cpu_us/op."
fi
