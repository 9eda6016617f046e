#!/usr/bin/env bash
# Takes the README's screenshots of the status page: each example runs with
# its admin endpoint kept up after the run (--admin-linger), and headless
# Chromium (Debian's `chromium`) photographs the page with the final report.
# Usage: packaging/screenshots/take.sh [build/release/bin/sluice]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
sluice="$(realpath "${1:-$root/build/release/bin/sluice}")"
out="$root/packaging/screenshots"
port=18421
sandbox=(); [ "$(id -u)" -eq 0 ] && sandbox=(--no-sandbox)  # Chromium's sandbox refuses root

shoot() { # manifest png height
  (cd "$root/pipelines" && exec "$sluice" run "$1" --quiet --admin "127.0.0.1:$port" --admin-linger 30) 2>/dev/null &
  local run=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/status" | grep -q '"status":"completed"' && break; sleep 0.1; done
  chromium --headless=new "${sandbox[@]}" --disable-gpu --hide-scrollbars --window-size="1280,$3" \
    --virtual-time-budget=3000 --screenshot="$out/$2" "http://127.0.0.1:$port/" 2>/dev/null
  kill -TERM "$run"; wait "$run" || true
}
shoot quickstart.json status-page-quickstart.png 860
shoot orders_graph.json status-page-orders-graph.png 1060
echo "wrote $out/status-page-quickstart.png and $out/status-page-orders-graph.png"
