#!/usr/bin/env bash
# Runs an example's pipeline tests: sluice test MANIFEST TESTS, with the fake
# OpenAI-compatible server standing in for the model (LLM_BASE_URL), so that
# the LLM example is tested offline like the others.
# usage: pipeline_tests.sh SLUICE FAKE_OPENAI MANIFEST TESTS
set -euo pipefail
sluice=$1 fake=$2 manifest=$3 tests=$4
ready=$(mktemp)
"$fake" --port 0 >"$ready" 2>/dev/null &
fake_pid=$!
trap 'kill $fake_pid 2>/dev/null; rm -f "$ready"' EXIT
for _ in $(seq 100); do
  grep -q "listening on" "$ready" && break
  sleep 0.05
done
port=$(sed -n 's/.*listening on \([0-9]*\).*/\1/p' "$ready")
[ -n "$port" ] || { echo "pipeline_tests.sh: the fake model server did not start" >&2; exit 1; }
LLM_BASE_URL="http://127.0.0.1:$port" "$sluice" test "$manifest" "$tests"
