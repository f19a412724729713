#!/usr/bin/env bash
# Replication benchmarks: Baton against redis-server 7 in one run, alternating the two
# (who goes first alternates per round), medians over the rounds.
#
# Run on a quiet machine (the figures for benches/RESULTS.md):
#   benches/load/replication.sh --rounds 5
# Quick end-to-end check (small, numbers meaningless):
#   benches/load/replication.sh --keys 20000 --rounds 1 --duration 4
#
#   1. FULLSYNC: time from `REPLICAOF 127.0.0.1 <primary>` sent to a fresh, empty replica
#      until the replica shows master_link_status:up, master_sync_in_progress:0 and a
#      DBSIZE equal to --keys (polled every millisecond), for Baton with each --cores value
#      (the replica with the same cores as its primary) and Redis pinned to the same CPUs.
#      Targets: redis/baton > 1 with --cores 1, >= 1.6 with --cores 2.
#   2. THROUGHPUT: the primary's ops/s (its total_commands_processed over the span) while a
#      replica full-syncs under load (the load starts 1 s before REPLICAOF and stops when the
#      sync is done), and over the middle --duration - 2 s of the same load with no replica.
#   3. LAG: while the load runs on a primary with a synced replica, SET a unique value on
#      the primary and GET it on the replica in a tight loop until it shows (one connection
#      each, raw RESP); p50/p99 of the time from sending the SET until the replica showed it.
#   4. CPU/OP: the primary's utime+stime (/proc/PID/stat) over a --duration load divided by
#      the commands it processed, with one synced replica attached vs none (target <= 1.15).
#   Parts 2-4 run with --load-cores (default 1) and share one primary per server.
#
# Data: --keys `SET key:N <value>` (N = 1..keys, random printable --value-size byte values
# from a fixed seed), the same RESP stream for both servers, loaded with `redis-cli --pipe`.
# Load: memtier_benchmark if it is on PATH (-t 1 -c 50 --pipeline 1 --ratio 1:1 -d 64
# --key-prefix key: over the loaded keys, so DBSIZE stays --keys), else two redis-benchmarks
# (-t set and -t get, 25 connections each, -P 1, -r keys; their keys are key:%012d, so they
# add keys). Ops come from the primary's own counter, so both clients are read the same way.
#
# Redis: --save '' --appendonly no --repl-diskless-sync yes --repl-diskless-sync-delay 0,
# and on the replica --repl-diskless-load on-empty-db (its fastest full sync; change it with
# --redis-diskless-load). CPUs: primary 0..c-1, replica c..2c-1, client and probe on the
# next CPUs; where the machine has too few, they share (and the script says so): keeping
# them all apart takes 2 * cores + 2 CPUs (6 for --cores 2).
# Everything started is killed on exit. Needs redis-server, redis-cli, python3, taskset, ss.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; cat <<'EOF'
Options:
  --keys K                  keys to sync (default 1000000)
  --value-size B            value bytes (default 64)
  --rounds N                rounds per measurement (default 3)
  --cores "C ..."           Baton core counts for part 1 (default "1 2")
  --load-cores C            Baton core count for parts 2-4 (default 1)
  --duration SECS           seconds per load run in parts 2-4 (default 10, at least 3)
  --parts LIST              which parts to run, e.g. 1 or 234 (default 1234)
  --redis-diskless-load V   the Redis replica's repl-diskless-load (default on-empty-db)
  --sync-timeout SECS       give up on a full sync after this long (default 600)
  --baton-bin PATH          baton binary (default target/release/baton, built if missing)
  --keep                    keep the work directory (server logs) after the run
EOF
}

die() { echo "replication.sh: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found; install the '$2' package (apt-get install -y $2)"; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PROBE="$ROOT/benches/load/repl_probe.py"
KEYS=1000000
VALUE_SIZE=64
ROUNDS=3
CORES_LIST="1 2"
LOAD_CORES=1
DURATION=10
PARTS=1234
REDIS_DISKLESS_LOAD=on-empty-db
SYNC_TIMEOUT=600
BATON_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/baton"
KEEP=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --keys) KEYS=${2:?}; shift 2 ;;
        --value-size) VALUE_SIZE=${2:?}; shift 2 ;;
        --rounds) ROUNDS=${2:?}; shift 2 ;;
        --cores) CORES_LIST=${2:?}; shift 2 ;;
        --load-cores) LOAD_CORES=${2:?}; shift 2 ;;
        --duration) DURATION=${2:?}; shift 2 ;;
        --parts) PARTS=${2:?}; shift 2 ;;
        --redis-diskless-load) REDIS_DISKLESS_LOAD=${2:?}; shift 2 ;;
        --sync-timeout) SYNC_TIMEOUT=${2:?}; shift 2 ;;
        --baton-bin) BATON_BIN=${2:?}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
for v in KEYS VALUE_SIZE ROUNDS LOAD_CORES DURATION SYNC_TIMEOUT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--$(tr 'A-Z_' 'a-z-' <<<"$v") must be a positive integer"
done
for c in $CORES_LIST; do [[ $c =~ ^[1-9][0-9]*$ ]] || die "--cores takes positive integers"; done
[[ $DURATION -ge 3 ]] || die "--duration must be at least 3 (1 s lead-in and out around the measured span)"
[[ $PARTS =~ ^[1-4]+$ ]] || die "--parts takes digits 1-4"
part() { [[ $PARTS == *"$1"* ]]; }

need redis-server redis-server
need redis-cli redis-tools
need python3 python3
need taskset util-linux
need ss iproute2
redis-server --version | grep -q 'v=7\.' || echo "WARNING: $(redis-server --version | cut -d' ' -f3) is not Redis 7" >&2
if command -v memtier_benchmark >/dev/null 2>&1; then
    CLIENT=memtier
else
    need redis-benchmark redis-tools
    CLIENT=redis-benchmark
    echo "NOTE: memtier_benchmark is not on PATH; the load is two redis-benchmarks (SET and GET," \
        "25 connections each), whose keys key:%012d are not the synced ones." >&2
fi
if [[ ! -x $BATON_BIN ]]; then
    echo "building baton: cargo build --release (in $ROOT)" >&2
    (cd "$ROOT" && cargo build --release --bin baton) || die "cargo build --release failed"
fi
[[ -x $BATON_BIN ]] || die "baton binary not found: $BATON_BIN"
NCPU=$(getconf _NPROCESSORS_ONLN)
CLK_TCK=$(getconf CLK_TCK)

# ---- processes -----------------------------------------------------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/baton-repl.XXXXXX")
STARTED=()
stop_pid() { # stop_pid PID: TERM, up to 5 s, then KILL
    local pid=$1 deadline=$((SECONDS + 5))
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local pid
    for pid in "${STARTED[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${STARTED[@]}"; do stop_pid "$pid"; done
    rm -f "$WORK/data.resp"
    if [[ $KEEP == 1 ]]; then echo "work directory (logs): $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

USED_PORTS=" $(ss -Hltn | awk '{n = split($4, a, ":"); printf "%s ", a[n]}')"
free_port() { # sets PORT: one nothing listens on, below the usual ephemeral range
    while :; do
        PORT=$((20000 + RANDOM % 12000))
        [[ $USED_PORTS == *" $PORT "* ]] || { USED_PORTS+="$PORT "; return; }
    done
}

# start NAME CPUS COMMAND...: runs COMMAND pinned (taskset execs it, so PID is the server's).
start() {
    local name=$1 cpus=$2
    shift 2
    taskset -c "$cpus" "$@" >"$WORK/$name.log" 2>&1 &
    PID=$!
    STARTED+=("$PID")
}
forget() { # forget PID: stop it and drop it from STARTED
    local pid=$1 i
    stop_pid "$pid"
    for i in "${!STARTED[@]}"; do [[ ${STARTED[$i]} == "$pid" ]] && unset 'STARTED[i]'; done
    STARTED=("${STARTED[@]}")
}

wait_ready() { # wait_ready NAME PID PORT
    local name=$1 pid=$2 port=$3 deadline=$((SECONDS + 20)) reply=""
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$WORK/$name.log" >&2; die "$name exited during startup (log above)"; }
        if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
            printf 'PING\r\n' >&3
            IFS= read -r -t 2 reply <&3 || true
            exec 3>&-
            [[ $reply == "+PONG"* ]] && return 0
        fi
        sleep 0.05
    done
    die "$name did not answer on 127.0.0.1:$port within 20 s"
}

# start_server KIND CORES CPUS NAME: KIND baton or redis; sets PID and SPORT.
start_server() {
    local kind=$1 cores=$2 cpus=$3 name=$4
    free_port
    SPORT=$PORT
    if [[ $kind == baton ]]; then
        start "$name" "$cpus" "$BATON_BIN" --cores "$cores" --bind 127.0.0.1 --port "$SPORT" \
            --memcache-port 0
    else
        mkdir -p "$WORK/$name.dir"
        start "$name" "$cpus" redis-server --bind 127.0.0.1 --port "$SPORT" --protected-mode yes \
            --save '' --appendonly no --dir "$WORK/$name.dir" \
            --repl-diskless-sync yes --repl-diskless-sync-delay 0 \
            --repl-diskless-load "$REDIS_DISKLESS_LOAD"
    fi
    wait_ready "$name" "$PID" "$SPORT"
}

# cpu_layout CORES [load]: sets P_CPUS (primary), R_CPUS (replica), C_CPU (load client), X_CPU (probe).
cpu_layout() {
    local c=$1 next
    [[ $c -le $NCPU ]] || die "--cores $c but only $NCPU CPUs online"
    P_CPUS=$(seq -s, 0 $((c - 1)))
    if ((2 * c <= NCPU)); then
        R_CPUS=$(seq -s, "$c" $((2 * c - 1)))
        next=$((2 * c))
    else
        R_CPUS=$P_CPUS
        next=$c
        echo "NOTE: $NCPU CPUs: the replica shares CPUs $P_CPUS with its primary (cores=$c)." >&2
    fi
    if ((next < NCPU)); then C_CPU=$next; else C_CPU=$((NCPU - 1)); fi
    if ((next + 1 < NCPU)); then X_CPU=$((next + 1)); else X_CPU=$C_CPU; fi
    if ((next >= NCPU)) && [[ ${2:-} == load ]]; then
        echo "NOTE: no spare CPU for the load client; it shares CPU $C_CPU with the servers." >&2
    fi
}

probe() { taskset -c "${X_CPU:-0-$((NCPU - 1))}" python3 "$PROBE" "$@"; } # prints name=value lines
field() { awk -F= -v k="$1" '$1 == k {print $2}'; } # field NAME < probe output
info_field() { redis-cli -p "$1" info "$2" | tr -d '\r' | awk -F: -v k="$3" '$1 == k {print $2}'; }
cpu_ticks() { local s; s=$(<"/proc/$1/stat"); s=${s##*") "}; awk '{print $12 + $13}' <<<"$s"; }

load_data() { # load_data NAME PORT
    local out
    out=$(taskset -c "$C_CPU" redis-cli -p "$2" --pipe <"$WORK/data.resp" 2>&1) || die "redis-cli --pipe into $1 failed: $out"
    grep -q "errors: 0, replies: $KEYS" <<<"$out" || die "loading $1: $(tail -n1 <<<"$out")"
    [[ $(redis-cli -p "$2" dbsize) == "$KEYS" ]] || die "$1 holds $(redis-cli -p "$2" dbsize) keys after loading $KEYS"
}

# no_replicas NAME PORT: after its replica exited, a primary should list none within 10 s.
no_replicas() {
    local n deadline=$((SECONDS + 10))
    while :; do
        n=$(info_field "$2" replication connected_slaves)
        [[ $n == 0 ]] && return 0
        ((SECONDS < deadline)) || break
        sleep 0.05
    done
    echo "MISBEHAVIOUR: $1 still lists connected_slaves:$n 10 s after its replica exited" | tee -a "$WORK/notes"
}

# settle NAME PPORT RPORT: after a load, the replica should reach the primary's DBSIZE and
# hold the same values (a sample of 2000 keys) within 10 s.
settle() {
    local out
    out=$(probe settle "$2" "$3" 10 "$KEYS")
    [[ $(field equal <<<"$out") == 1 ]] || echo "MISBEHAVIOUR: $1: 10 s after the load the primary has" \
        "$(field primary_keys <<<"$out") keys and its replica $(field replica_keys <<<"$out");" \
        "$(field differing <<<"$out") of 2001 sampled keys differ (-1: not compared)" | tee -a "$WORK/notes"
}

# load_start PORT SECS: the load in the background on C_CPU; load_wait waits for it.
LOAD_PIDS=()
load_start() {
    local port=$1 secs=$2
    LOAD_PIDS=()
    if [[ $CLIENT == memtier ]]; then
        taskset -c "$C_CPU" memtier_benchmark -s 127.0.0.1 -p "$port" -P redis -t 1 -c 50 \
            --pipeline 1 --ratio 1:1 -d "$VALUE_SIZE" --key-prefix key: --key-minimum 1 \
            --key-maximum "$KEYS" --key-pattern R:R --test-time "$secs" \
            --hide-histogram >"$WORK/load.out" 2>"$WORK/load.err" &
        LOAD_PIDS+=($!)
    else
        local t
        for t in set get; do
            timeout -s INT "$secs" taskset -c "$C_CPU" redis-benchmark -h 127.0.0.1 -p "$port" \
                -c 25 -P 1 -d "$VALUE_SIZE" -r "$KEYS" -n 2000000000 -t "$t" -q \
                >"$WORK/load-$t.out" 2>"$WORK/load-$t.err" &
            LOAD_PIDS+=($!)
        done
    fi
    STARTED+=("${LOAD_PIDS[@]}")
}
load_wait() {
    local pid status
    for pid in "${LOAD_PIDS[@]}"; do
        status=0
        wait "$pid" || status=$?
        # timeout(1) ends each redis-benchmark on purpose (124, or the benchmark's own INT exit).
        if [[ $CLIENT == memtier && $status != 0 ]] || [[ $CLIENT != memtier && $status != 0 && $status != 124 && $status != 130 ]]; then
            cat "$WORK"/load*.err >&2 || true
            die "the load client failed (exit $status)"
        fi
        forget "$pid"
    done
}

load_stop() { # stops the load early; its own figures are not used
    local pid
    for pid in "${LOAD_PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
    for pid in "${LOAD_PIDS[@]}"; do forget "$pid"; done
}

# Results: rec NAME VALUE appends; med NAME prints the median.
mkdir -p "$WORK/m"
: >"$WORK/notes"
declare -A LAST # LAST[NAME]: this round's value of NAME, for the paired ratios
rec() { echo "$2" >>"$WORK/m/$1"; LAST[$1]=$2; }
pair() { # pair NAME A B: records A/B of this round's values, if both were taken
    local a=${LAST[$2]:-} b=${LAST[$3]:-}
    [[ -n $a && -n $b ]] && rec "$1" "$(div "$a" "$b" %.4f)"
    return 0
}
med() {
    [[ -s $WORK/m/$1 ]] || { echo "-"; return; }
    sort -g "$WORK/m/$1" | awk '{a[NR] = $1} END {print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'
}
medf() { # medf NAME FORMAT: the median, formatted ("-" when there is none)
    local m; m=$(med "$1")
    if [[ $m == - ]]; then echo -; else awk -v m="$m" -v f="$2" 'BEGIN {printf f "\n", m}'; fi
}
div() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN {if (b > 0) printf f "\n", a / b; else print "-"}'; }
order_for() { # order_for ROUND: who goes first alternates per round
    if (($1 % 2)); then ORDER=(baton redis); else ORDER=(redis baton); fi
}

echo "generating $KEYS keys with $VALUE_SIZE-byte values..." >&2
probe gen "$KEYS" "$VALUE_SIZE" "$WORK/data.resp" >/dev/null
echo "keys=$KEYS value_size=$VALUE_SIZE rounds=$ROUNDS client=$CLIENT cpus=$NCPU" \
    "redis=$(redis-server --version | cut -d' ' -f3) redis_replica_diskless_load=$REDIS_DISKLESS_LOAD baton=$BATON_BIN"

# ---- 1. full sync time ---------------------------------------------------------------------

if part 1; then
    for c in $CORES_LIST; do
        cpu_layout "$c"
        echo
        echo "== 1. full sync of $KEYS keys, cores=$c (primary CPUs $P_CPUS, replica CPUs $R_CPUS) =="
        start_server baton "$c" "$P_CPUS" "baton-primary-c$c"; BP_PID=$PID BP_PORT=$SPORT
        start_server redis "$c" "$P_CPUS" "redis-primary-c$c"; RP_PID=$PID RP_PORT=$SPORT
        for s in baton redis; do
            t0=$(date +%s.%N)
            if [[ $s == baton ]]; then load_data "$s" "$BP_PORT"; else load_data "$s" "$RP_PORT"; fi
            echo "loaded $s primary in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}') s" >&2
        done
        for ((round = 1; round <= ROUNDS; round++)); do
            order_for "$round"
            for s in "${ORDER[@]}"; do
                if [[ $s == baton ]]; then pport=$BP_PORT; else pport=$RP_PORT; fi
                name="$s-replica-c$c-r$round"
                echo "round $round/$ROUNDS: $s full sync, cores=$c..." >&2
                start_server "$s" "$c" "$R_CPUS" "$name"; rpid=$PID rport=$SPORT
                out=$(probe sync "$pport" "$rport" "$KEYS" --timeout "$SYNC_TIMEOUT") || {
                    echo "$out" >&2; tail -n 20 "$WORK/$name.log" >&2
                    die "$s full sync did not finish (cores=$c round $round)"
                }
                secs=$(field secs <<<"$out")
                settle "$s (cores=$c, after its full sync)" "$pport" "$rport"
                rec "sync-$s-c$c" "$secs"
                eval "secs_$s=$secs"
                forget "$rpid"
                no_replicas "$s primary (cores=$c)" "$pport"
            done
            # shellcheck disable=SC2154 # set by eval above
            ratio=$(div "$secs_redis" "$secs_baton")
            rec "sync-ratio-c$c" "$ratio"
            printf 'fullsync cores=%s round=%s baton=%.3fs redis=%.3fs redis/baton=%sx\n' \
                "$c" "$round" "$secs_baton" "$secs_redis" "$ratio"
        done
        forget "$BP_PID"
        forget "$RP_PID"
    done
fi

# ---- 2-4. the primary under load -------------------------------------------------------------

if part 2 || part 3 || part 4; then
    c=$LOAD_CORES
    cpu_layout "$c" load
    measured=$((DURATION - 2))
    echo
    echo "== 2-4. primary under load: $CLIENT, 50 connections, pipeline 1, SET:GET 1:1," \
        "${DURATION}s per run, cores=$c (primary CPUs $P_CPUS, replica CPUs $R_CPUS, client CPU $C_CPU, probe CPU $X_CPU) =="
    start_server baton "$c" "$P_CPUS" baton-primary-load; BP_PID=$PID BP_PORT=$SPORT
    start_server redis "$c" "$P_CPUS" redis-primary-load; RP_PID=$PID RP_PORT=$SPORT
    load_data baton "$BP_PORT"
    load_data redis "$RP_PORT"
    for ((round = 1; round <= ROUNDS; round++)); do
        order_for "$round"
        LAST=()
        for s in "${ORDER[@]}"; do
            if [[ $s == baton ]]; then ppid=$BP_PID pport=$BP_PORT; else ppid=$RP_PID pport=$RP_PORT; fi
            pre="round $round/$ROUNDS: $s"

            # a) no replica: ops/s over the middle of the run, CPU per op over all of it.
            if part 2 || part 4; then
                echo "$pre: load, no replica..." >&2
                ops0=$(probe counter "$pport" | field ops); t0=$(cpu_ticks "$ppid")
                load_start "$pport" "$DURATION"
                sleep 1
                none_ops_s=$(probe window "$pport" "$measured" | field ops_per_sec)
                load_wait
                ops1=$(probe counter "$pport" | field ops); t1=$(cpu_ticks "$ppid")
                cpu_none=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n=$((ops1 - ops0)) 'BEGIN {printf "%.3f", t * 1e6 / hz / n}')
            fi

            # b) a fresh replica full-syncs, under load when part 2 runs.
            name="$s-replica-load-r$round"
            start_server "$s" "$c" "$R_CPUS" "$name"; rpid=$PID rport=$SPORT
            if part 2; then
                echo "$pre: load, replica full-syncing..." >&2
                # The load runs until the sync is done (then it is stopped), so the whole
                # span is under load however long the sync takes.
                load_start "$pport" $((SYNC_TIMEOUT + 10))
                sleep 1
                out=$(probe sync "$pport" "$rport" "$KEYS" --at-least --timeout "$SYNC_TIMEOUT") || {
                    echo "$out" >&2; tail -n 20 "$WORK/$name.log" >&2
                    die "$s full sync under load did not finish (round $round)"
                }
                load_stop
                sync_secs=$(field secs <<<"$out")
                sync_ops_s=$(field ops_per_sec <<<"$out")
                awk -v s="$sync_secs" 'BEGIN {exit !(s < 0.5)}' \
                    && echo "NOTE: $s round $round: the sync under load took ${sync_secs}s; ops/s over so short a span is noisy (use more --keys)." \
                    | tee -a "$WORK/notes"
                ratio=$(div "$sync_ops_s" "$none_ops_s")
                rec "tput-none-$s" "$none_ops_s"; rec "tput-sync-$s" "$sync_ops_s"
                rec "tput-ratio-$s" "$ratio"; rec "tput-synctime-$s" "$sync_secs"
                printf 'throughput %s round=%s no_sync=%s ops/s during_sync=%s ops/s during/none=%sx sync_under_load=%.3fs\n' \
                    "$s" "$round" "$none_ops_s" "$sync_ops_s" "$ratio" "$sync_secs"
            else
                probe sync "$pport" "$rport" "$KEYS" --at-least --timeout "$SYNC_TIMEOUT" >/dev/null \
                    || die "$s full sync did not finish (round $round)"
            fi
            settle "$s (after the sync)" "$pport" "$rport"

            # c) one synced replica attached: CPU per op.
            if part 4; then
                echo "$pre: load, replica attached..." >&2
                ops0=$(probe counter "$pport" | field ops); t0=$(cpu_ticks "$ppid")
                load_start "$pport" "$DURATION"
                load_wait
                ops1=$(probe counter "$pport" | field ops); t1=$(cpu_ticks "$ppid")
                cpu_repl=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n=$((ops1 - ops0)) 'BEGIN {printf "%.3f", t * 1e6 / hz / n}')
                ratio=$(div "$cpu_repl" "$cpu_none" %.3f)
                rec "cpu-none-$s" "$cpu_none"; rec "cpu-repl-$s" "$cpu_repl"; rec "cpu-ratio-$s" "$ratio"
                printf 'cpu_per_op %s round=%s none=%sus with_replica=%sus replica/none=%sx\n' \
                    "$s" "$round" "$cpu_none" "$cpu_repl" "$ratio"
                settle "$s (after the attached load)" "$pport" "$rport"
            fi

            # d) lag under load.
            if part 3; then
                echo "$pre: load, lag probe..." >&2
                load_start "$pport" "$DURATION"
                sleep 1
                out=$(taskset -c "$X_CPU" python3 "$PROBE" lag "$pport" "$rport" "$measured") || {
                    echo "$out" >&2
                    echo "MISBEHAVIOUR: $s round $round: the lag probe failed: $(field error <<<"$out")" | tee -a "$WORK/notes"
                }
                load_wait
                if [[ -n $(field p50_ms <<<"$out") ]]; then
                    rec "lag-p50-$s" "$(field p50_ms <<<"$out")"; rec "lag-p99-$s" "$(field p99_ms <<<"$out")"
                    printf 'lag %s round=%s samples=%s p50=%sms p99=%sms max=%sms set_p50=%sms\n' "$s" "$round" \
                        "$(field samples <<<"$out")" "$(field p50_ms <<<"$out")" "$(field p99_ms <<<"$out")" \
                        "$(field max_ms <<<"$out")" "$(field set_p50_ms <<<"$out")"
                fi
                settle "$s (after the lag load)" "$pport" "$rport"
            fi

            forget "$rpid"
            no_replicas "$s primary" "$pport"
        done
        pair tput-sync-pair tput-sync-baton tput-sync-redis
        pair lag-p50-pair lag-p50-redis lag-p50-baton
        pair lag-p99-pair lag-p99-redis lag-p99-baton
        pair cpu-repl-pair cpu-repl-baton cpu-repl-redis
    done
fi

# ---- summary ---------------------------------------------------------------------------------

echo
echo "== summary: medians over $ROUNDS round(s); ratios are medians of per-round ratios =="
if part 1; then
    for c in $CORES_LIST; do
        target=1.0; [[ $c -ge 2 ]] && target=1.6
        r=$(medf "sync-ratio-c$c" %.2f)
        verdict=$(awk -v r="$r" -v t="$target" 'BEGIN {print (r + 0 > t + 0 || (t > 1 && r + 0 >= t + 0)) ? "meets" : "MISSES"}')
        printf 'FULLSYNC   cores=%s keys=%s  baton %s s  redis %s s  redis/baton %sx  (target %s %sx: %s)\n' \
            "$c" "$KEYS" "$(medf "sync-baton-c$c" %.3f)" "$(medf "sync-redis-c$c" %.3f)" "$r" \
            "$([[ $target == 1.0 ]] && echo '>' || echo '>=')" "$target" "$verdict"
    done
fi
if part 2; then
    for s in baton redis; do
        printf 'THROUGHPUT %-6s no sync %s ops/s  during sync %s ops/s  during/none %sx  (sync under load %s s)\n' \
            "$s" "$(medf "tput-none-$s" %.0f)" "$(medf "tput-sync-$s" %.0f)" "$(medf "tput-ratio-$s" %.2f)" \
            "$(medf "tput-synctime-$s" %.3f)"
    done
    printf 'THROUGHPUT baton/redis during sync %sx\n' "$(medf tput-sync-pair %.2f)"
fi
if part 3; then
    for s in baton redis; do
        printf 'LAG        %-6s p50 %s ms  p99 %s ms\n' "$s" "$(medf "lag-p50-$s" %.3f)" "$(medf "lag-p99-$s" %.3f)"
    done
    printf 'LAG        redis/baton p50 %sx  p99 %sx\n' "$(medf lag-p50-pair %.2f)" "$(medf lag-p99-pair %.2f)"
fi
if part 4; then
    for s in baton redis; do
        r=$(medf "cpu-ratio-$s" %.3f)
        extra=""
        [[ $s == baton ]] && extra="  (target <= 1.15: $(awk -v r="$r" 'BEGIN {print (r + 0 <= 1.15) ? "meets" : "MISSES"}'))"
        printf 'CPU/OP     %-6s none %s us  with replica %s us  replica/none %sx%s\n' \
            "$s" "$(medf "cpu-none-$s" %.3f)" "$(medf "cpu-repl-$s" %.3f)" "$r" "$extra"
    done
    printf 'CPU/OP     baton/redis with a replica %sx\n' "$(medf cpu-repl-pair %.2f)"
fi
if [[ -s $WORK/notes ]]; then
    echo
    echo "notes:"
    sort -u "$WORK/notes"
fi
