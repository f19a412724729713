#!/usr/bin/env bash
# callgrind_op.sh BIN WORKLOAD PIPE N OUT: runs a Baton server (one core) under callgrind
# through memtier's hash, zset, list or set workload of types_speed.sh (N requests per connection, 50
# connections), counting from when the server is ready to the end of the load, and prints
# the user-space instructions (Ir) per op: a cost that does not depend on how busy the
# machine is (this VM exposes no hardware counters to perf). OUT.1 is the callgrind
# profile (callgrind_annotate OUT.1).
#
# BIN may be redis-server (any path ending in redis-server): it then runs with no
# persistence, so the same load is counted on Redis for comparison.
#
# Environment:
#   CONNS=C  connections (default 50). At pipeline 32 the load stalls under valgrind
#            with 50; CONNS=10 runs.
#   FILL=1   before counting, fill the zset or set workload's collection with all 1,000
#            members in a fixed random order, as a timed types_speed.sh run reaches within
#            its first second. memtier seeds every connection alike, so without it the
#            collection holds only the ~N/2 distinct members of one connection's sequence.
set -euo pipefail
extra=""
bin=$1 wl=$2 pipe=$3 n=$4 out=$5
conns=${CONNS:-50}
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
case "$wl" in
  hash) w="HSET h:__key__ f __data__"; r="HGET h:__key__ f"; keys=100000 ;;
  zset) w="ZADD z __key__ m__key__"; r="ZRANGE z 0 9"; keys=1000; extra="--key-prefix=" ;;
  list) w="LPUSH l:__key__ __data__"; r="RPOP l:__key__"; keys=1000 ;;
  set) w="SADD s __key__"; r="SISMEMBER s __key__"; keys=1000 ;;
  *) echo "callgrind_op.sh: workload is hash, zset, list or set" >&2; exit 2 ;;
esac
case "$bin" in
  *redis-server) args=(--port "$port" --save "" --appendonly no) ;;
  *) args=(--port "$port" --memcache-port 0 --cores 1) ;;
esac
valgrind --tool=callgrind ${CG_OPTS:-} --callgrind-out-file="$out" \
   "$bin" "${args[@]}" >"${TMPDIR:-/tmp}/callgrind_op.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for i in $(seq 600); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
if [ "${FILL:-0}" = 1 ]; then
  case "$wl" in
    zset) python3 -c 'import random; k=list(range(1,1001)); random.Random(1).shuffle(k); print("\n".join("ZADD z %d m%d" % (i, i) for i in k))' ;;
    set) python3 -c 'import random; k=list(range(1,1001)); random.Random(1).shuffle(k); print("\n".join("SADD s %d" % i for i in k))' ;;
  esac | redis-cli -p "$port" >/dev/null
fi
n0=$(redis-cli -p "$port" info stats | awk -F: '/^total_commands_processed/{print $2+0}')
callgrind_control -z "$pid" >/dev/null
memtier_benchmark -s 127.0.0.1 -p "$port" -t 1 -c "$conns" --pipeline "$pipe" \
  -n "$n" $extra -d 32 --key-minimum 1 --key-maximum "$keys" --hide-histogram \
  --command "$w" --command-ratio 1 --command-key-pattern R \
  --command "$r" --command-ratio 1 --command-key-pattern R >/dev/null 2>&1
callgrind_control -d "$pid" >/dev/null
n1=$(redis-cli -p "$port" info stats | awk -F: '/^total_commands_processed/{print $2+0}')
sleep 1
f=$(ls -t "$out"* | head -1)
ir=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}')
python3 -c "n=$n1-$n0-1; print('ops', n, 'Ir/op %.0f' % ($ir/n), 'file $f')"
kill -INT "$pid"
# valgrind may take its time to stop: 30 s, then it is killed.
(sleep 30; kill -9 "$pid" 2>/dev/null) &
wait "$pid" 2>/dev/null || true
