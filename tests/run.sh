#!/usr/bin/env bash
# Builds and runs every test twice: optimised (release) and under
# AddressSanitizer + UBSan (asan). Run from anywhere; exits non-zero on any
# failure.
set -euo pipefail
cd "$(dirname "$0")/.."
for preset in release asan; do
  echo "== $preset: configure and build"
  cmake --preset "$preset" > /dev/null
  cmake --build --preset "$preset"
  echo "== $preset: tests"
  ctest --preset "$preset"
done
