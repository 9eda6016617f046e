#!/usr/bin/env bash
# The config table of every bundled stage lives in its plugin's README between
#   <!-- config: KIND NAME -->  and  <!-- end config -->
# and is generated from the stage's declared config (`sluice plugins
# --markdown`), so the docs cannot drift from what the host checks.
#
#   tests/docs/plugin_readmes.sh SLUICE            check (ctest runs this)
#   tests/docs/plugin_readmes.sh SLUICE --update   rewrite the tables
set -euo pipefail
sluice=${1:?usage: plugin_readmes.sh SLUICE [--update]}
mode=${2:-check}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$sluice" plugins --markdown > "$work/tables"
status=0
for readme in "$root"/plugins/*/README.md; do
  # Prints the README with each marked table replaced by the generated one;
  # exits 2 on a marker no stage answers.
  if ! awk -v tables="$work/tables" '
      BEGIN {
        while ((getline line < tables) > 0) {
          if (line ~ /^<!-- config: /) { key = line; block[key] = "" }
          else if (line == "<!-- end config -->") key = ""
          else if (key != "") block[key] = block[key] line "\n"
        }
      }
      /^<!-- config: / {
        print
        if (!($0 in block)) { print FILENAME ": " $0 " names no stage that sluice plugins lists" > "/dev/stderr"; exit 2 }
        printf "%s", block[$0]; skipping = 1; next
      }
      /^<!-- end config -->$/ { skipping = 0 }
      !skipping { print }
    ' "$readme" > "$work/readme"; then
    status=1
    continue
  fi
  if ! cmp -s "$readme" "$work/readme"; then
    if [ "$mode" = --update ]; then
      cp "$work/readme" "$readme"
      echo "updated ${readme#$root/}"
    else
      echo "${readme#$root/}: its config table is not what 'sluice plugins --markdown' says;" \
           "run tests/docs/plugin_readmes.sh SLUICE --update" >&2
      diff "$readme" "$work/readme" | head -20 >&2 || true
      status=1
    fi
  fi
done

# Every bundled stage has its table in some README.
while read -r marker; do
  if ! grep -qxF -- "$marker" "$root"/plugins/*/README.md; then
    echo "no plugin README holds $marker" >&2
    status=1
  fi
done < <(grep '^<!-- config: ' "$work/tables")
exit $status
