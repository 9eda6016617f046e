# Sourced by the benchmark scripts (needs $sluice and $work):
#   generate COUNT FILE
# writes COUNT order records of about 200 bytes as NDJSON (the generate
# plugin, every 50th breaking the bench rules).
generate() {
  cat > "$work/gen.json" <<JSON
{"name": "bench-input", "stages": [
  {"id": "gen", "kind": "extractor", "plugin": "generate", "config": {"count": $1, "invalid_every": 50}},
  {"id": "out", "kind": "loader", "plugin": "file", "config": {"path": "$2", "fsync": false}}]}
JSON
  "$sluice" run "$work/gen.json" 2> /dev/null
}
