#!/usr/bin/env bash
# Installs the build tree into a temp prefix, builds a plugin against the
# installed SDK package (find_package(SluiceSDK) + sluice_add_plugin), and
# runs it through the installed sluice.
set -euo pipefail
build_dir=$1 source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" > /dev/null
cmake -S "$source_dir/tests/sdk/external_plugin" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" > /dev/null
cmake --build "$work/build" > /dev/null
cat > "$work/m.json" <<JSON
{"plugin_dirs": ["$work/build"], "stages": [
  {"id": "in", "kind": "extractor", "plugin": "generate", "config": {"count": 3}},
  {"id": "hi", "kind": "transformer", "plugin": "hello"},
  {"id": "out", "kind": "loader", "plugin": "file", "config": {"path": "out.ndjson"}}]}
JSON
"$work/prefix/bin/sluice" run "$work/m.json" 2> "$work/err" || { cat "$work/err"; exit 1; }
lines=$(grep -c '"hello":"world"}$' "$work/out.ndjson")
if [ "$lines" != 3 ]; then echo "expected 3 greeted records, got $lines"; cat "$work/out.ndjson"; exit 1; fi
echo "external plugin built against the installed SDK ran: $lines records"
