#!/usr/bin/env bash
# Zero-downtime handoff under load (issue 12's targets): one run, release build.
#
#   benches/load/handoff.sh                       # 1M keys, --cores 2, 10 s of load
#   CORES=1 benches/load/handoff.sh --new-cores 2 # hand off to another core count
#   benches/load/handoff.sh --keys 100000 --duration 6 --handoff-at 2   # quick check
#
#   1. Starts target/release/baton (--cores $CORES, default 2; built if missing) with a
#      private --handoff-socket, loads --keys `SET key:N <value-size random bytes>` with
#      `redis-cli --pipe` (the stream repl_probe.py gen writes), and notes its VmRSS.
#   2. Starts the load: memtier_benchmark if on PATH (-t 1 -c 50 --pipeline 1 --ratio 1:1
#      -d 64 --key-prefix key: over key:1..90% of --keys, --json-out-file), plus one on the
#      memcached port (-c 10, memcache_text) unless --no-memcache; else redis-benchmark
#      (-c 50 SET/GET, no per-second series). Also one long-lived client (handoff_probe.py
#      hold: CLIENT SETNAME, CLIENT ID, an INCR every 10 ms on the same socket).
#   3. --handoff-at seconds (default 3) into the load, runs target/release/baton-handoff
#      (built if missing) and times it, while VmRSS of the old and the new process is
#      sampled every 20 ms.
#   4. Reports: handoff wall time and the tool's exit status, the freeze time(s) the tool
#      printed, the old process's exit status, peak RSS old+new against the steady RSS
#      (target <= 1 + 1.5/cores), memtier's per-second ops (min second / median, target
#      >= 0.25) and errors, whether the long-lived client kept its session, and whether
#      2000 keys outside memtier's range (90%..100% of --keys) kept their values.
# Everything started is killed on exit (the new process too, found by its --takeover).
# Needs redis-cli (redis-tools) and python3; memtier_benchmark is used only if on PATH.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/benches/load"
# shellcheck source=lib.sh
source "$HERE/lib.sh" # pids + cleanup trap, free_port, wait_ready

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; cat <<'EOT'
Options:
  --keys K          keys to load (default 1000000)
  --value-size B    value bytes (default 64)
  --new-cores C     the new process's --cores (default: $CORES)
  --duration SECS   load duration (default 10)
  --handoff-at SECS start the handoff this long into the load (default 3)
  --no-memcache     no memtier on the memcached port
  --one-freeze      pass --one-freeze to baton-handoff (every shard in one freeze; the
                    default is the per-shard cutover, forwarding requests on cut shards)
  --per-shard       pass --per-shard to baton-handoff (the cutover even without forwarding)
  --baton-bin PATH  default target/release/baton
  --tool-bin PATH   default target/release/baton-handoff
  --keep            keep the work directory (logs)
EOT
}
die() { echo "handoff.sh: $*" >&2; exit 1; }

CORES=${CORES:-2}
KEYS=1000000
VALUE_SIZE=64
TOOL_PATH=""
NEW_CORES=
DURATION=10
HANDOFF_AT=3
MEMCACHE=1
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BATON_BIN="$TARGET/release/baton"
TOOL_BIN="$TARGET/release/baton-handoff"
KEEP=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --keys) KEYS=${2:?}; shift 2 ;;
        --value-size) VALUE_SIZE=${2:?}; shift 2 ;;
        --new-cores) NEW_CORES=${2:?}; shift 2 ;;
        --duration) DURATION=${2:?}; shift 2 ;;
        --handoff-at) HANDOFF_AT=${2:?}; shift 2 ;;
        --per-shard) TOOL_PATH=--per-shard; shift ;;
        --one-freeze) TOOL_PATH=--one-freeze; shift ;;
        --no-memcache) MEMCACHE=0; shift ;;
        --baton-bin) BATON_BIN=${2:?}; shift 2 ;;
        --tool-bin) TOOL_BIN=${2:?}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
NEW_CORES=${NEW_CORES:-$CORES}
for v in CORES NEW_CORES KEYS VALUE_SIZE DURATION HANDOFF_AT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
((HANDOFF_AT < DURATION)) || die "--handoff-at must be less than --duration"
((KEYS >= 20)) || die "--keys must be at least 20"
command -v redis-cli >/dev/null || die "redis-cli not found (apt-get install -y redis-tools)"
command -v python3 >/dev/null || die "python3 not found"
if command -v memtier_benchmark >/dev/null 2>&1; then
    CLIENT=memtier
else
    command -v redis-benchmark >/dev/null || die "neither memtier_benchmark nor redis-benchmark on PATH"
    CLIENT=redis-benchmark
    MEMCACHE=0
    echo "NOTE: memtier_benchmark is not on PATH: the load is redis-benchmark, with no per-second series." >&2
fi
if [[ ! -x $BATON_BIN ]]; then
    echo "building baton: cargo build --release --bin baton" >&2
    (cd "$ROOT" && cargo build --release --bin baton) || die "cargo build --release failed"
fi
if [[ ! -x $TOOL_BIN ]]; then
    echo "building baton-handoff: cargo build --release -p baton-handoff" >&2
    (cd "$ROOT" && cargo build --release -p baton-handoff) || die "cargo build -p baton-handoff failed"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/baton-handoff.XXXXXX")
SOCK="$WORK/handoff.sock"
probe() { python3 "$HERE/handoff_probe.py" "$@"; }
field() { awk -F= -v k="$1" '$1 == k {sub(/^[^=]*=/, ""); print}'; }
takeover_pids() { pgrep -f -- "--takeover $SOCK" || true; }
handoff_cleanup() {
    local p
    touch "$WORK/stop" 2>/dev/null || true
    for p in $(takeover_pids); do pids+=("$p"); done
    cleanup # lib.sh: kills every pid in pids
    for p in $(takeover_pids); do kill -KILL "$p" 2>/dev/null || true; done
    if [[ $KEEP == 1 ]]; then echo "work directory (logs): $WORK" >&2; else rm -rf "$WORK"; fi
}
trap handoff_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT=$(free_port)
MPORT=$(free_port)
[[ $MPORT != "$PORT" ]] || MPORT=$(free_port)
server_flags() { # server_flags CORES
    echo --bind 127.0.0.1 --port "$PORT" --memcache-port "$MPORT" --cores "$1" --handoff-socket "$SOCK"
}
# shellcheck disable=SC2046
"$BATON_BIN" $(server_flags "$CORES") >"$WORK/old.log" 2>&1 &
OLD=$!
pids+=("$OLD")
wait_ready "$PORT"
wait_ready "$MPORT" memcache

echo "loading $KEYS keys of $VALUE_SIZE bytes..." >&2
python3 "$HERE/repl_probe.py" gen "$KEYS" "$VALUE_SIZE" "$WORK/data.resp" >/dev/null
out=$(redis-cli -p "$PORT" --pipe <"$WORK/data.resp" 2>&1) || die "redis-cli --pipe failed: $out"
grep -q "errors: 0, replies: $KEYS" <<<"$out" || die "loading: $(tail -n1 <<<"$out")"
rm -f "$WORK/data.resp"
[[ $(redis-cli -p "$PORT" dbsize) == "$KEYS" ]] || die "DBSIZE is not $KEYS after loading"
LOAD_MAX=$((KEYS * 9 / 10))
probe sample "$PORT" $((LOAD_MAX + 1)) "$KEYS" 2000 "$WORK/sample.json" >"$WORK/sample.out"
vmrss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
STEADY_KB=$(vmrss "$OLD")

# ---- load + handoff ------------------------------------------------------------------------
probe hold "$PORT" "$WORK/stop" >"$WORK/hold.out" 2>&1 &
HOLD=$!
pids+=("$HOLD")
probe rss "$OLD" "$SOCK" "$WORK/stop" >"$WORK/rss.out" 2>&1 &
RSS=$!
pids+=("$RSS")
LOADS=()
if [[ $CLIENT == memtier ]]; then
    memtier_benchmark -s 127.0.0.1 -p "$PORT" -P redis -t 1 -c 50 --pipeline 1 --ratio 1:1 \
        -d "$VALUE_SIZE" --key-prefix key: --key-minimum 1 --key-maximum "$LOAD_MAX" \
        --key-pattern R:R --test-time "$DURATION" --hide-histogram \
        --json-out-file "$WORK/memtier.json" >"$WORK/memtier.out" 2>"$WORK/memtier.err" &
    LOADS+=($!)
    if [[ $MEMCACHE == 1 ]]; then
        memtier_benchmark -s 127.0.0.1 -p "$MPORT" -P memcache_text -t 1 -c 10 --pipeline 1 \
            --ratio 1:1 -d "$VALUE_SIZE" --key-prefix mc: --key-maximum 100000 --key-pattern R:R \
            --test-time "$DURATION" --hide-histogram --json-out-file "$WORK/memtier-mc.json" \
            >"$WORK/memtier-mc.out" 2>"$WORK/memtier-mc.err" &
        LOADS+=($!)
    fi
else
    timeout -s INT "$DURATION" redis-benchmark -h 127.0.0.1 -p "$PORT" -c 50 -P 1 -d "$VALUE_SIZE" \
        -r "$LOAD_MAX" -n 2000000000 -t set,get -q >"$WORK/rb.out" 2>"$WORK/rb.err" &
    LOADS+=($!)
fi
pids+=("${LOADS[@]}")

sleep "$HANDOFF_AT" # the schedule of the measurement, not a synchronisation
echo "handing off (new --cores $NEW_CORES)..." >&2
T0=$(date +%s%N)
TOOL_RC=0
# shellcheck disable=SC2046
"$TOOL_BIN" --socket "$SOCK" --timeout 60 --log "$WORK/new.log" $TOOL_PATH -- \
    "$BATON_BIN" $(server_flags "$NEW_CORES") >"$WORK/tool.out" 2>&1 || TOOL_RC=$?
T1=$(date +%s%N)
for p in $(takeover_pids); do pids+=("$p"); done
HANDOFF_MS=$(((T1 - T0) / 1000000))

LOAD_RC=0
for p in "${LOADS[@]}"; do
    rc=0
    wait "$p" || rc=$?
    [[ $CLIENT != memtier && ($rc == 124 || $rc == 130) ]] && rc=0
    ((rc == 0)) || LOAD_RC=$rc
done
# The old process should have exited 0 by now (bounded wait).
OLD_RC=running
for _ in $(seq 1 200); do
    kill -0 "$OLD" 2>/dev/null || break
    sleep 0.05
done
if ! kill -0 "$OLD" 2>/dev/null; then OLD_RC=0; wait "$OLD" || OLD_RC=$?; fi
touch "$WORK/stop"
wait "$HOLD" || true
wait "$RSS" || true

NEW_PID=$(redis-cli -p "$PORT" info server 2>/dev/null | tr -d '\r' | awk -F: '$1 == "process_id" {print $2}')
probe compare "$PORT" "$WORK/sample.json" >"$WORK/compare.out" || echo "differing=? (compare failed)" >"$WORK/compare.out"
DBSIZE=$(redis-cli -p "$PORT" dbsize 2>/dev/null || echo '?')

# ---- report --------------------------------------------------------------------------------
PEAK_KB=$(field peak_sum_kb <"$WORK/rss.out")
PEAK_KB=${PEAK_KB:-0}
PEAK_OLD=$(field peak_old_kb <"$WORK/rss.out")
PEAK_NEW=$(field peak_new_kb <"$WORK/rss.out")
PEAK_OLD=${PEAK_OLD:-0}
PEAK_NEW=${PEAK_NEW:-0}
RSS_RATIO=$(python3 -c "print('%.2f' % ($PEAK_KB / max(1, $STEADY_KB)))")
RSS_TARGET=$(python3 -c "print('%.2f' % (1 + 1.5 / $CORES))")
FREEZE=$(grep -m1 -E "^freeze|FREEZE" "$WORK/tool.out" || true)
row() { printf '  %-34s %s\n' "$1" "$2"; }
echo
echo "== handoff: $KEYS keys x $VALUE_SIZE B, --cores $CORES -> $NEW_CORES, load $CLIENT for ${DURATION}s, handoff at ${HANDOFF_AT}s"
row "tool exit status" "$TOOL_RC (0 = success)"
row "handoff wall time" "${HANDOFF_MS} ms (target < 2000)"
row "freeze (as the tool printed it)" "${FREEZE:-none printed}"
row "old process ($OLD) exit status" "$OLD_RC"
row "new process" "pid ${NEW_PID:-?}, serving: $([[ -n $NEW_PID && $NEW_PID != "$OLD" ]] && echo yes || echo NO)"
row "steady RSS (old, loaded)" "$((STEADY_KB / 1024)) MiB"
row "peak RSS old+new" "$((PEAK_KB / 1024)) MiB = ${RSS_RATIO} x steady (target <= $RSS_TARGET; old $((PEAK_OLD / 1024)) MiB, new $((PEAK_NEW / 1024)) MiB, $(field samples <"$WORK/rss.out") samples)"
if [[ $CLIENT == memtier ]]; then
    for j in memtier memtier-mc; do
        [[ -f $WORK/$j.json ]] || continue
        probe memtier "$WORK/$j.json" "$DURATION" >"$WORK/$j.stats"
        s=$WORK/$j.stats
        row "$j per-second ops" "min $(field min_ops <"$s") (second $(field min_second <"$s")) / median $(field median_ops <"$s") = $(field min_over_median <"$s") (target >= 0.25)"
        row "$j connection errors" "$(field connection_errors <"$s"), exit status of the runs: $LOAD_RC"
        row "$j per second" "$(field per_second <"$s")"
    done
    ERRS=$(cat "$WORK"/memtier*.err 2>/dev/null | grep -ci error || true)
    row "memtier error lines (stderr)" "$ERRS"
else
    row "redis-benchmark" "exit status $LOAD_RC; $(tr '\r' '\n' <"$WORK/rb.out" | grep -E 'requests per second' | tr '\n' ' ')"
fi
row "long-lived client" "same_session=$(field same_session <"$WORK/hold.out") errors=$(field errors <"$WORK/hold.out") id $(field id_before <"$WORK/hold.out")->$(field id_after <"$WORK/hold.out") name=$(field name_after <"$WORK/hold.out") pid $(field pid_before <"$WORK/hold.out")->$(field pid_after <"$WORK/hold.out") $(field first_error <"$WORK/hold.out")"
row "sampled keys (outside the load)" "$(field sampled <"$WORK/compare.out") sampled, $(field missing <"$WORK/compare.out") missing, $(field differing <"$WORK/compare.out") differing"
row "DBSIZE after" "$DBSIZE (loaded $KEYS; the memcached load adds up to 100000 mc:* keys)"
echo
echo "tool output:"
sed 's/^/  | /' "$WORK/tool.out"
[[ $TOOL_RC == 0 ]] || { echo "new process log:"; sed 's/^/  | /' "$WORK/new.log" 2>/dev/null | tail -n 30; }
