#!/usr/bin/env bash
# Sluice against the limits of this machine: the bench job done by `cat`
# (no work at all), by one thread with a Boost.JSON DOM and by one thread
# editing text with simdjson On-Demand (tests/bench/floor_*.cpp), beside
# sluice, Miller and jq; every rate as a ratio of the text-edit floor.
#
#   tests/bench/limits.sh [RECORDS] [BIG_RECORDS]     (defaults: 1000000 10000000)
#
# Job: read NDJSON (~200-byte records), rename user -> user_id, drop text,
# add "source":"bench", write NDJSON; "+ rules" also checks three rules
# (email regex, amount >= 0, country in a list). Page-cached input; each
# program runs 3 times, alternating; medians of wall time (GNU time) and of
# CPU per record ((user + sys) / records). Then: heap allocations per record
# (a preloaded counter, the same job at RECORDS/10 and RECORDS: the
# difference per extra record, start-up excluded), the CPU each sluice stage
# costs per record (from its report), and sluice's peak RSS at RECORDS and
# BIG_RECORDS. Needs a release build and mlr, jq, /usr/bin/time
# (packaging/install-deps.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$root/build/release}
sluice=$build/bin/sluice
n=${1:-1000000}
big=${2:-10000000}
work=${BENCH_DIR:-$(mktemp -d /tmp/sluice-limits-XXXXXX)}
trap '[ -z "${BENCH_DIR:-}" ] && rm -rf "$work"' EXIT
for tool in "$sluice" "$build/bin/floor_dom" "$build/bin/floor_text_edit" "$build/lib/libmalloc_count.so" mlr jq /usr/bin/time; do
  [ -e "$tool" ] || command -v "$tool" > /dev/null || { echo "limits: $tool not found" >&2; exit 1; }
done
threads=$(nproc)

# generate COUNT FILE: the benchmark's input
. "$root/tests/bench/bench_input.sh"

# A sluice manifest for the job: INPUT OUTPUT [rules] [acked].
manifest() {
  local rules="" state="" append=false
  if [ "${3:-}" = rules ]; then
    rules='{"id": "rules", "kind": "validator", "plugin": "rules", "threads": '$threads',
     "config": {"rules": [{"field": "email", "required": true, "regex": "^[^@]+@[^@]+\\.[a-z]+$"},
                          {"field": "amount", "type": "number", "min": 0},
                          {"field": "country", "enum": ["US","DE","FR","GB","NL","SE","JP","BR","IN","CA","ES","IT"]}]}},'
  fi
  if [ "${4:-}" = acked ]; then state="\"state_dir\": \"$work/state\","; append=true; fi
  cat <<JSON
{"name": "bench", $state "stages": [
  {"id": "read", "kind": "extractor", "plugin": "file", "config": {"path": "$1"}},
  {"id": "map", "kind": "transformer", "plugin": "map", "threads": $threads,
   "config": {"rename": {"user": "user_id"}, "drop": ["text"], "set": {"source": "bench"}}},
  $rules
  {"id": "out", "kind": "loader", "plugin": "file", "config": {"path": "$2", "fsync": false, "append": $append}}]}
JSON
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $("$sluice" --version); $(mlr --version); $(jq --version)"
echo "generating $n records ..."
generate "$n" "$work/input.ndjson"
in="$work/input.ndjson"
echo "input: $(wc -l < "$in") records, $(du -m "$in" | cut -f1) MiB"
cat "$in" > /dev/null # in the page cache

manifest "$in" "$work/map.ndjson" > "$work/map.json"
manifest "$in" "$work/rules.ndjson" rules > "$work/rules.json"
manifest "$in" "$work/acked.ndjson" "" acked > "$work/acked.json"

# name|command; each writes its output to a file of its own.
programs=(
  "cat|cat '$in' > '$work/cat.out'"
  "floor: Boost.JSON DOM, 1 thread|'$build/bin/floor_dom' '$in' > '$work/dom.out'"
  "floor: simdjson text edit, 1 thread|'$build/bin/floor_text_edit' '$in' > '$work/text.out'"
  "sluice file -> map -> file|'$sluice' run '$work/map.json' 2> /dev/null"
  "sluice + rules (3 rules)|'$sluice' run '$work/rules.json' 2> /dev/null"
  "sluice at least once (state_dir, append)|rm -rf '$work/state' '$work/acked.ndjson'; '$sluice' run '$work/acked.json' 2> /dev/null"
  "Miller 6 (+ rules)|mlr --ijsonl --ojsonl rename user,user_id then cut -x -f text then put '\$source = \"bench\"' \
    then filter 'is_present(\$email) && \$email =~ \"^[^@]+@[^@]+\\.[a-z]+\$\" && \$amount >= 0' '$in' > '$work/mlr.out'"
  "jq 1.6 (+ rules)|jq -c 'select((.email // \"\" | test(\"^[^@]+@[^@]+\\\\.[a-z]+\$\")) and .amount >= 0) \
    | .user_id = .user | del(.user, .text) | .source = \"bench\"' '$in' > '$work/jq.out'"
)
runs=${RUNS:-3}
declare -A walls cpus rss
for ((round = 0; round < runs; round++)); do
  # No output of an earlier round to truncate (that costs kernel time).
  rm -f "$work"/*.out "$work/map.ndjson" "$work/rules.ndjson"
  for p in "${programs[@]}"; do
    name=${p%%|*}
    /usr/bin/time -f "%e %U %S %M" -o "$work/time" sh -c "${p#*|}" > /dev/null
    read -r wall user sys maxrss < "$work/time"
    walls[$name]+="$wall "
    cpus[$name]+="$(awk -v u="$user" -v s="$sys" -v n="$n" 'BEGIN { printf "%.4f", (u + s) * 1e6 / n }') "
    rss[$name]=$maxrss
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# The outputs agree: the floors and sluice write the same records.
[ "$(wc -l < "$work/text.out")" = "$n" ] || { echo "limits: the text-edit floor wrote $(wc -l < "$work/text.out") records" >&2; exit 1; }
cmp -s "$work/text.out" "$work/map.ndjson" || { echo "limits: sluice's map output differs from the text-edit floor's" >&2; exit 1; }
[ "$(wc -l < "$work/rules.ndjson")" = "$(wc -l < "$work/mlr.out")" ] || { echo "limits: sluice + rules and Miller disagree" >&2; exit 1; }
[ "$(wc -l < "$work/acked.ndjson")" = "$n" ] || { echo "limits: the at-least-once run wrote $(wc -l < "$work/acked.ndjson") records" >&2; exit 1; }

floor_name="floor: simdjson text edit, 1 thread"
floor_wall=$(echo "${walls[$floor_name]}" | median)
floor_rate=$(awk -v n="$n" -v s="$floor_wall" 'BEGIN { print n / s }')
echo
echo "the bench job, $n records, $threads threads per sluice stage; medians of $runs runs"
printf "  %-42s %8s %12s %12s %10s %9s\n" program "wall s" records/s "CPU us/rec" "x floor" "RSS MB"
declare -A rate_of
for p in "${programs[@]}"; do
  name=${p%%|*}
  wall=$(echo "${walls[$name]}" | median)
  cpu=$(echo "${cpus[$name]}" | median)
  rate=$(awk -v n="$n" -v s="$wall" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
  rate_of[$name]=$rate
  printf "  %-42s %8s %12s %12s %10s %9d\n" "$name" "$wall" "$rate" "$cpu" \
    "$(awk -v r="$rate" -v f="$floor_rate" 'BEGIN { printf "%.2fx", r / f }')" $((rss[$name] / 1024))
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
echo "  at least once vs plain: $(ratio "${rate_of[sluice at least once (state_dir, append)]}" "${rate_of[sluice file -> map -> file]}")x;" \
     "sluice / Miller: $(ratio "${rate_of[sluice + rules (3 rules)]}" "${rate_of[Miller 6 (+ rules)]}")x;" \
     "sluice / jq: $(ratio "${rate_of[sluice + rules (3 rules)]}" "${rate_of[jq 1.6 (+ rules)]}")x (both with rules)"

# Heap allocations per record: the same job at two sizes.
small=$((n / 10))
head -n "$small" "$in" > "$work/small.ndjson"
allocations() { # MANIFEST -> allocations
  rm -f "$work/count" "$work/state" -r
  LD_PRELOAD="$build/lib/libmalloc_count.so" MALLOC_COUNT_FILE="$work/count" "$sluice" run "$1" > /dev/null 2>&1
  cut -d' ' -f1 "$work/count"
}
echo
echo "heap allocations per record (whole process; ($n-record run - $small-record run) / $((n - small)))"
for job in map rules; do
  manifest "$work/small.ndjson" "$work/small.out" $([ $job = rules ] && echo rules) > "$work/small.json"
  a_small=$(allocations "$work/small.json")
  a_big=$(allocations "$work/$job.json")
  printf "  %-26s %8.3f   (%s at %s records, %s at %s)\n" "sluice $job" \
    "$(awk -v a="$a_big" -v b="$a_small" -v d="$((n - small))" 'BEGIN { print (a - b) / d }')" "$a_small" "$small" "$a_big" "$n"
done

# CPU per record per stage, from the report.
echo
echo "CPU per record by stage (sluice + rules; the report's cpu_us_per_record)"
"$sluice" run "$work/rules.json" --report "$work/report.json" > /dev/null 2>&1
jq -r '.stages[] | "  \(.id) (\(.plugin), \(.threads) threads): \(.cpu_us_per_record * 1000 | round / 1000) us"' "$work/report.json"

# Memory must not grow with the input.
rm -f "$work"/*.out "$work"/*.ndjson.out "$work/map.ndjson" "$work/rules.ndjson" "$work/acked.ndjson"
echo
echo "generating $big records ..."
generate "$big" "$work/big.ndjson"
manifest "$work/big.ndjson" "$work/big.out" > "$work/big.json"
/usr/bin/time -f "%e %M" -o "$work/time" "$sluice" run "$work/big.json" > /dev/null 2>&1
read -r b_wall b_rss < "$work/time"
echo "peak RSS of sluice file -> map -> file: $((rss[sluice file -> map -> file] / 1024)) MB at $n records," \
     "$((b_rss / 1024)) MB at $big records ($(awk -v n="$big" -v s="$b_wall" 'BEGIN { printf "%.0f", n / s }') records/s)"
