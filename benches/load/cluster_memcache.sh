#!/usr/bin/env bash
# What forwarding costs on the memcached port of a Baton cluster: three nodes on loopback
# (made by redis-cli --cluster create), memtier_benchmark -P memcache_text against node 0
# only, once with keys whose slot node 0 owns (served locally) and once with keys owned by
# node 1 (every request forwarded to node 1 and answered back through node 0). Prints
# ops/s and latency for each, and the ratio.
#
# Keys of one run share a hash tag ({tag}...), so they fall in one slot of the wanted node
# (and, with the nodes' --cores 1, on its one core); both runs have that same shape.
#
# usage: benches/load/cluster_memcache.sh [--secs N] [--conns N] [--pipeline N] [--rounds N]
# env:   BATON (default target/release/baton)
set -euo pipefail
cd "$(dirname "$0")/../.."
source benches/load/lib.sh

secs=5 conns=10 pipeline=1 rounds=1
while [ $# -gt 0 ]; do
    case "$1" in
        --secs) secs=$2; shift 2 ;;
        --conns) conns=$2; shift 2 ;;
        --pipeline) pipeline=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
BATON=${BATON:-target/release/baton}
for tool in "$BATON" redis-cli memtier_benchmark; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done

dir=$(mktemp -d)
trap 'cleanup; rm -rf "$dir"' EXIT
ports=() mports=()
for i in 0 1 2; do
    p=$(free_port) mp=$(free_port)
    "$BATON" --port "$p" --memcache-port "$mp" --cores 1 --cluster-enabled yes \
        --cluster-config-file "$dir/n$i.conf" >"$dir/n$i.log" 2>&1 &
    pids+=($!)
    ports+=("$p") mports+=("$mp")
done
for i in 0 1 2; do wait_ready "${ports[$i]}"; wait_ready "${mports[$i]}" memcache; done
redis-cli --cluster create 127.0.0.1:"${ports[0]}" 127.0.0.1:"${ports[1]}" \
    127.0.0.1:"${ports[2]}" --cluster-yes >"$dir/create.log" 2>&1 ||
    { cat "$dir/create.log"; exit 1; }
# Wait until node 0's view names every slot's owner.
for _ in $(seq 1 100); do
    [ "$(redis-cli -p "${ports[0]}" cluster info | grep -c 'cluster_slots_assigned:16384')" = 1 ] &&
        [ "$(redis-cli -p "${ports[0]}" cluster nodes | wc -l)" = 3 ] && break
    sleep 0.1
done

# A hash tag whose slot node $1 (0, 1 or 2 of the create's even split) owns.
tag_on() {
    local lo hi t s
    case $1 in 0) lo=0 hi=5460 ;; 1) lo=5461 hi=10922 ;; *) lo=10923 hi=16383 ;; esac
    for t in $(seq 0 1000); do
        s=$(redis-cli -p "${ports[0]}" cluster keyslot "t$t")
        if [ "$s" -ge "$lo" ] && [ "$s" -le "$hi" ]; then echo "t$t"; return; fi
    done
}

# run LABEL TAG: memtier against node 0's memcached port; prints "ops/s avg p50 p99".
run() {
    local out
    out=$(memtier_benchmark -s 127.0.0.1 -p "${mports[0]}" -P memcache_text \
        --key-prefix "{$2}k:" --key-maximum 10000 --ratio 1:1 -d 32 \
        -t 1 -c "$conns" --pipeline "$pipeline" --test-time "$secs" \
        --hide-histogram 2>/dev/null | grep '^Totals')
    # Totals  ops/s  hits/s  misses/s  avg  p50  p99  p99.9  KB/s
    echo "$out" | awk '{print $2, $5, $6, $7}'
}

printf '%-10s %12s %10s %10s %10s\n' keys ops/s avg_ms p50_ms p99_ms
local_tag=$(tag_on 0) remote_tag=$(tag_on 1)
for r in $(seq 1 "$rounds"); do
    read -r lo la l50 l99 < <(run local "$local_tag")
    read -r fo fa f50 f99 < <(run forwarded "$remote_tag")
    printf '%-10s %12s %10s %10s %10s\n' local "$lo" "$la" "$l50" "$l99"
    printf '%-10s %12s %10s %10s %10s\n' forwarded "$fo" "$fa" "$f50" "$f99"
    python3 -c "print('round $r: forwarded/local ops/s %.2fx, avg latency %.2fx' % ($fo/$lo, $fa/$la))"
done
# Where the keys went: node 0 holds the local run's, node 1 the forwarded run's.
for i in 0 1 2; do echo "node $i dbsize $(redis-cli -p "${ports[$i]}" dbsize)"; done
