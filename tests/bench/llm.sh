#!/usr/bin/env bash
# The llm enricher against tests/fake_openai answering after 50 ms, at
# 1, 8 and 64 requests in flight: records/s against the ideal
# (in flight / latency), as a ratio.
#
#   tests/bench/llm.sh [SECONDS_PER_RUN]     (default 4)
#
# Needs a release build with the tests (cmake --preset release && cmake
# --build --preset release).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
sluice=${SLUICE:-$root/build/release/bin/sluice}
fake=${FAKE_OPENAI:-$root/build/release/bin/fake_openai}
seconds=${1:-4}
latency_ms=50
work=$(mktemp -d /tmp/sluice-llm-bench-XXXXXX)
"$fake" --latency-ms "$latency_ms" > "$work/fake.out" 2> "$work/fake.err" &
fake_pid=$!
trap 'kill $fake_pid 2> /dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q "listening on" "$work/fake.out" 2> /dev/null && break; sleep 0.05; done
port=$(awk '/listening on/ {print $3}' "$work/fake.out")

echo "llm enricher vs a fake OpenAI-compatible server answering after $latency_ms ms (loopback, $(nproc) cores)"
printf "  %-10s %8s %10s %12s %8s\n" in-flight records records/s "ideal rec/s" ratio
for c in 1 8 64; do
  ideal=$(awk -v c="$c" -v l="$latency_ms" 'BEGIN { printf "%.0f", c * 1000 / l }')
  n=$(( ideal * seconds ))
  batch=$(( c * 4 > 64 ? c * 4 : 64 ))
  cat > "$work/m.json" <<JSON
{"name": "llm-bench", "stages": [
  {"id": "gen", "kind": "extractor", "plugin": "generate", "config": {"count": $n}},
  {"id": "ai", "kind": "enricher", "plugin": "llm", "threads": 2, "batch_size": $batch,
   "config": {"base_url": "http://127.0.0.1:$port", "model": "bench", "prompt": "Classify: {{text}}",
              "max_in_flight": $c,
              "response_schema": {"type": "object", "properties": {"category": {"type": "string"}}, "required": ["category"]}}},
  {"id": "out", "kind": "loader", "plugin": "null"}]}
JSON
  "$sluice" run "$work/m.json" --report "$work/r.json" 2> "$work/log"
  out=$(jq '.stages[] | select(.id == "ai") | .out' "$work/r.json")
  secs=$(jq '.stages[] | select(.id == "ai") | .seconds' "$work/r.json")
  [ "$out" = "$n" ] || { echo "llm bench: enriched $out of $n records" >&2; exit 1; }
  awk -v c="$c" -v n="$n" -v s="$secs" -v i="$ideal" \
    'BEGIN { r = n / s; printf "  %-10s %8d %10.0f %12.0f %8.2f\n", c, n, r, i, r / i }'
done
