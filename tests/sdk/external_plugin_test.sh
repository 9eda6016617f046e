#!/usr/bin/env bash
# Installs the build tree into a temp prefix, builds a plugin against the
# installed SDK package (find_package(SluiceSDK 1.2) + sluice_add_plugin) and
# a C plugin with pkg-config alone, and runs both through the installed
# sluice; checks the package's version is the ABI's and the docs are there.
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

# The package's version is the plugin ABI's: 1.x from the header, and a
# request for ABI 2 is refused.
abi=$(sed -n 's/^#define SLUICE_ABI_MAJOR \([0-9]*\)$/\1/p' "$source_dir/sdk/include/sluice/plugin.h").$(sed -n 's/^#define SLUICE_ABI_MINOR \([0-9]*\)$/\1/p' "$source_dir/sdk/include/sluice/plugin.h")
mkdir -p "$work/v2"
cat > "$work/v2/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.25)
project(v2 NONE)
find_package(SluiceSDK 2 QUIET)
if(SluiceSDK_FOUND)
  message(FATAL_ERROR "SDK \${SluiceSDK_VERSION} accepted a request for ABI 2")
endif()
find_package(SluiceSDK $abi REQUIRED)
message(STATUS "SDK version \${SluiceSDK_VERSION}")
CMAKE
found=$(cmake -S "$work/v2" -B "$work/v2/build" -DCMAKE_PREFIX_PATH="$work/prefix" | sed -n 's/^-- SDK version //p')
[ "$found" = "$abi" ] || { echo "SDK package version $found, expected the ABI's $abi"; exit 1; }

# Without CMake: pkg-config gives the flags, the header is all a C plugin needs.
pc=$(dirname "$(find "$work/prefix" -name sluice-sdk.pc -print -quit)")
[ "$(PKG_CONFIG_PATH=$pc pkg-config --modversion sluice-sdk)" = "$abi" ] || { echo "pkg-config version is not $abi"; exit 1; }
mkdir -p "$work/c"
cc -std=c99 -Wall -Wextra -Werror -shared -fPIC -o "$work/c/c_tag.so" "$source_dir/tests/plugins/c_tag.c" \
  $(PKG_CONFIG_PATH=$pc pkg-config --cflags sluice-sdk)
cat > "$work/c.json" <<JSON
{"plugin_dirs": ["$work/c"], "stages": [
  {"id": "in", "kind": "extractor", "plugin": "generate", "config": {"count": 2}},
  {"id": "tag", "kind": "transformer", "plugin": "c_tag"},
  {"id": "out", "kind": "loader", "plugin": "file", "config": {"path": "c.ndjson"}}]}
JSON
"$work/prefix/bin/sluice" run "$work/c.json" 2> "$work/err" || { cat "$work/err"; exit 1; }
[ "$(grep -c '"tagged_by":"from-the-schema"}$' "$work/c.ndjson")" = 2 ] || { echo "the pkg-config C plugin did not run"; exit 1; }

# The C examples of sdk/examples, built out of tree against the package, in a
# pipeline: every record is banded, the gate splits them by their e-mail.
for ex in c_enricher c_validator; do
  cmake -S "$source_dir/sdk/examples/$ex" -B "$work/$ex" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" > /dev/null
  cmake --build "$work/$ex" > /dev/null
done
cat > "$work/ex.json" <<JSON
{"plugin_dirs": ["$work/c_enricher", "$work/c_validator"], "stages": [
  {"id": "in", "kind": "extractor", "plugin": "generate", "config": {"count": 1000, "invalid_every": 10}},
  {"id": "band", "kind": "enricher", "plugin": "amount_band", "config": {"threshold": 500}},
  {"id": "gate", "kind": "validator", "plugin": "email_gate"},
  {"id": "good", "kind": "loader", "plugin": "file", "inputs": ["gate.pass"], "config": {"path": "good.ndjson"}},
  {"id": "bad", "kind": "loader", "plugin": "file", "inputs": ["gate.fail"], "config": {"path": "bad.ndjson"}}]}
JSON
"$work/prefix/bin/sluice" run "$work/ex.json" --report "$work/ex-report.json" 2> "$work/err" || { cat "$work/err"; exit 1; }
good=$(wc -l < "$work/good.ndjson"); bad=$(wc -l < "$work/bad.ndjson")
banded=$(cat "$work/good.ndjson" "$work/bad.ndjson" | grep -c '"amount_band":"\(large\|small\)"}$' || true)
unbanded=$(jq '.stages[] | select(.id == "band") | .errors' "$work/ex-report.json")
rejected=$(jq '.stages[] | select(.id == "gate") | .rejected' "$work/ex-report.json")
if [ "$good" -lt 1 ] || [ "$bad" -lt 1 ] || [ "$banded" != $((good + bad)) ] || [ "$bad" != "$rejected" ] ||
   [ $((good + bad + unbanded)) != 1000 ]; then
  echo "C examples: $good passed, $bad rejected ($rejected in the report), $banded banded, $unbanded not banded"
  cat "$work/err"; exit 1
fi
echo "C examples ran: $good records passed the gate, $bad rejected, $unbanded without a number amount"

# The plugin author's documents are installed with the SDK.
for doc in plugin-guide.md plugin.h; do
  [ -s "$work/prefix/share/doc/sluice-sdk/$doc" ] || { echo "missing doc $doc"; exit 1; }
done
echo "SDK package $abi: find_package by ABI version, pkg-config C build and docs all fine"
