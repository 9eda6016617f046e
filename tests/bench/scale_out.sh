#!/usr/bin/env bash
# Scale-out on Redis Streams: records/s with 1, 2 and 3 worker processes
# sharing one stream through a consumer group, each worker a separate
# `sluice run` of the same manifest (redis extractor -> map -> null loader),
# and the cost of one acknowledgement round trip per batch (a batch-size
# sweep with one worker: t = N*c_record + N/batch*c_batch).
#
#   tests/bench/scale_out.sh [ENTRIES]          (default 1000000)
#
# Also reports the CPU the workers and redis-server used (this machine's
# cores are shared by all of them) and redis-benchmark's pipelined XADD rate
# on the same server, the broker's own ceiling for one connection.
# Needs a release build, redis-server, redis-cli, redis-benchmark and
# /usr/bin/time (packaging/install-deps.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
sluice=${SLUICE:-$root/build/release/bin/sluice}
n=${1:-1000000}
work=${BENCH_DIR:-$(mktemp -d /tmp/sluice-scale-XXXXXX)}
for tool in "$sluice" redis-server redis-cli redis-benchmark /usr/bin/time; do
  command -v "$tool" > /dev/null || { echo "bench: $tool not found" >&2; exit 1; }
done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
  --logfile "$work/redis.log" --daemonize yes --pidfile "$work/redis.pid"
cleanup() {
  [ -f "$work/redis.pid" ] && kill "$(cat "$work/redis.pid")" 2> /dev/null || true
  [ -z "${BENCH_DIR:-}" ] && rm -rf "$work"
}
trap cleanup EXIT
cli() { redis-cli -p "$port" "$@"; }
until cli ping > /dev/null 2>&1; do sleep 0.1; done
redis_pid=$(cat "$work/redis.pid")
redis_cpu() { awk '{ print $14 + $15 }' "/proc/$redis_pid/stat"; } # clock ticks
ticks=$(getconf CLK_TCK)

echo "machine: $(nproc) cores; $($sluice --version); $(redis-server --version | cut -d' ' -f1-3)"
echo "seeding $n entries (~110 bytes each) ..."
awk -v n="$n" 'BEGIN {
  for (i = 0; i < n; i++) {
    body = sprintf("{\"n\":%d,\"user\":\"u%d\",\"amount\":%d.5,\"country\":\"DE\",\"pad\":\"abcdefghijklmnopqrstuvwxyz\"}", i, i % 1000, i % 97)
    printf "*5\r\n$4\r\nXADD\r\n$1\r\ns\r\n$1\r\n*\r\n$4\r\nbody\r\n$%d\r\n%s\r\n", length(body), body
  }
}' | cli --pipe > /dev/null
echo "stream length: $(cli XLEN s)"

manifest() { # BATCH
  cat <<JSON
{"name": "scale", "stages": [
  {"id": "src", "kind": "extractor", "plugin": "redis", "batch_size": $1,
   "config": {"url": "redis://127.0.0.1:$port", "stream": "s", "group": "g", "consumer": "\${WORKER}",
              "claim_idle_ms": 0}},
  {"id": "map", "kind": "transformer", "plugin": "map", "config": {"rename": {"user": "user_id"}, "set": {"source": "bench"}}},
  {"id": "out", "kind": "loader", "plugin": "null", "config": {}}]}
JSON
}

# run WORKERS BATCH -> "seconds worker_cpu_seconds redis_cpu_seconds"
run() {
  local workers=$1 batch=$2
  manifest "$batch" > "$work/m.json"
  cli XGROUP DESTROY s g > /dev/null
  cli XGROUP CREATE s g 0 > /dev/null
  local r0; r0=$(redis_cpu)
  local t0; t0=$(date +%s.%N)
  local pids=()
  for w in $(seq 1 "$workers"); do
    WORKER="w$w" /usr/bin/time -f "%U %S" -o "$work/time.$w" "$sluice" run "$work/m.json" --quiet 2> "$work/log.$w" &
    pids+=($!)
  done
  while :; do
    read -r read pending < <(cli XINFO GROUPS s | awk '/^entries-read$/ { getline; r = $0 } /^pending$/ { getline; p = $0 } END { print r, p }')
    [ "$read" = "$n" ] && [ "$pending" = 0 ] && break
    sleep 0.02
  done
  local t1; t1=$(date +%s.%N)
  local r1; r1=$(redis_cpu)
  # The pids are GNU time's; the workers are their children.
  for p in "${pids[@]}"; do pkill -TERM -P "$p" 2> /dev/null || true; done
  wait "${pids[@]}" 2> /dev/null || true
  local cpu; cpu=$(cat "$work"/time.* | awk '{ s += $1 + $2 } END { print s }')
  rm -f "$work"/time.*
  awk -v a="$t0" -v b="$t1" -v c="$cpu" -v r0="$r0" -v r1="$r1" -v t="$ticks" \
    'BEGIN { printf "%.3f %.2f %.2f\n", b - a, c, (r1 - r0) / t }'
}

echo
echo "workers  seconds   records/s  vs 1 worker  worker CPU s  redis CPU s"
base=""
for w in 1 2 3; do
  read -r s cpu rcpu < <(run "$w" 500)
  rate=$(awk -v n="$n" -v s="$s" 'BEGIN { printf "%.0f", n / s }')
  [ -z "$base" ] && base=$rate
  printf "%7d  %7.2f  %10d  %11s  %12s  %11s\n" "$w" "$s" "$rate" \
    "$(awk -v a="$rate" -v b="$base" 'BEGIN { printf "%.2fx", a / b }')" "$cpu" "$rcpu"
done

echo
echo "one worker, batch-size sweep (one XREADGROUP and one XACK per batch, the XACK riding on the next read):"
echo "  batch  seconds  records/s"
declare -A secs
for b in 50 200 1000; do
  read -r s _ _ < <(run 1 "$b")
  secs[$b]=$s
  printf "  %5d  %7.2f  %9.0f\n" "$b" "$s" "$(awk -v n="$n" -v s="$s" 'BEGIN { print n / s }')"
done
# t(b) = n*c_rec + (n/b)*c_batch: two batch sizes give c_batch.
awk -v n="$n" -v s1="${secs[50]}" -v s2="${secs[1000]}" 'BEGIN {
  cb = (s1 - s2) / (n / 50 - n / 1000); cr = (s2 - (n / 1000) * cb) / n
  printf "  per batch: %.0f us (read + acknowledgement round trips and the pull), per record: %.2f us\n", cb * 1e6, cr * 1e6
}'

echo
echo "redis-benchmark, pipelined XADD (500 per round trip, one connection): the broker's own rate"
redis-benchmark -p "$port" -n "$n" -P 500 -q XADD bench '*' body '{"n":1,"user":"u1","amount":1.5,"country":"DE"}' 2>&1 | tr '\r' '\n' | grep -v '^$' | tail -1
