#!/usr/bin/env bash
# Builds and runs every test twice: optimised (release) and under
# AddressSanitizer + UBSan (asan); then the runtime, queue, acknowledgement
# and delivery tests under ThreadSanitizer (tsan), and every libFuzzer target
# for FUZZ_SECONDS (default 30; tests/fuzz/run.sh). Run from anywhere; exits
# non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
for preset in release asan; do
  echo "== $preset: configure and build"
  cmake --preset "$preset" > /dev/null
  cmake --build --preset "$preset"
  echo "== $preset: tests"
  ctest --preset "$preset"
done
echo "== tsan: configure, build and test"
cmake --preset tsan > /dev/null
cmake --build --preset tsan
ctest --preset tsan
echo "== fuzz"
bash tests/fuzz/run.sh
