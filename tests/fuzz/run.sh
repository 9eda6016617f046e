#!/usr/bin/env bash
# Builds the libFuzzer targets (the "fuzz" preset: clang, AddressSanitizer +
# UBSan) and runs each for FUZZ_SECONDS (default 30) from its seed corpus
# under tests/fuzz/corpus. Exits non-zero on any crash, leak, timeout or
# sanitizer report; the input that caused it is left in the work directory
# and named in the output.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-30}
cmake --preset fuzz > /dev/null
cmake --build --preset fuzz
work=$(mktemp -d /tmp/sluice-fuzz-XXXXXX)
status=0
for target in fuzz_manifest fuzz_json_schema fuzz_file_reader fuzz_ingest_body fuzz_rules fuzz_route fuzz_map fuzz_call_log; do
  corpus="$work/$target"
  mkdir -p "$corpus"
  cp tests/fuzz/corpus/$target/* "$corpus/"
  extra=()
  [ "$target" = fuzz_manifest ] && extra=(pipelines)
  echo "== $target: ${seconds}s"
  if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
       "build/fuzz/bin/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
       -artifact_prefix="$work/$target-" -print_final_stats=1 "$corpus" "${extra[@]}" > "$work/$target.log" 2>&1; then
    echo "fuzz: $target FAILED; the crashing input and the log are in $work:"
    tail -n 40 "$work/$target.log"
    status=1
  else
    grep -E "stat::number_of_executed_units|cov:" "$work/$target.log" | tail -n 2
  fi
done
[ $status -eq 0 ] && rm -rf "$work"
exit $status
