#!/usr/bin/env bash
# Sluice against Miller and jq on the same job, side by side, on this machine.
#
#   tests/bench/run.sh [RECORDS] [BIG_RECORDS]     (defaults: 1000000 5000000)
#
# Job: read NDJSON (~200-byte order records), rename user -> user_id, drop
# text, add "source":"bench", keep records with a valid-looking email, a
# non-negative amount and a known country, write NDJSON. Every tool must
# output the same number of records. Also: generate -> map -> rules -> null
# (no I/O), and peak RSS of the file job at RECORDS and BIG_RECORDS records.
# Needs a release build (cmake --preset release && cmake --build --preset
# release) and mlr, jq and /usr/bin/time (packaging/install-deps.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
sluice=${SLUICE:-$root/build/release/bin/sluice}
n=${1:-1000000}
big=${2:-5000000}
work=${BENCH_DIR:-$(mktemp -d /tmp/sluice-bench-XXXXXX)}
trap '[ -z "${BENCH_DIR:-}" ] && rm -rf "$work"' EXIT
for tool in "$sluice" mlr jq /usr/bin/time; do
  command -v "$tool" > /dev/null || { echo "bench: $tool not found" >&2; exit 1; }
done
threads=$(nproc)

countries='["US","DE","FR","GB","NL","SE","JP","BR","IN","CA","ES","IT"]'
email_re='^[^@]+@[^@]+\\.[a-z]+$'

# generate COUNT FILE: the benchmark's input
. "$root/tests/bench/bench_input.sh"

middle_stages() { # the map and rules stages of every Sluice job here
  cat <<JSON
  {"id": "map", "kind": "transformer", "plugin": "map", "threads": $threads,
   "config": {"rename": {"user": "user_id"}, "drop": ["text"], "set": {"source": "bench"}}},
  {"id": "rules", "kind": "validator", "plugin": "rules", "threads": $threads,
   "config": {"rules": [{"field": "email", "required": true, "regex": "$email_re"},
                        {"field": "amount", "type": "number", "min": 0},
                        {"field": "country", "enum": $countries}]}},
JSON
}

job_manifest() { # INPUT OUTPUT-STAGE-JSON
  cat <<JSON
{"name": "bench", "stages": [
  {"id": "read", "kind": "extractor", "plugin": "file", "config": {"path": "$1", "source_attrs": true}},
$(middle_stages)
  $2]}
JSON
}

# Runs a command, prints "seconds peak_rss_kb".
measure() {
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > /dev/null 2>> "$work/log"
  cat "$work/time"
}

rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $($sluice --version); $(mlr --version); $(jq --version)"
echo "generating $n records ..."
generate "$n" "$work/input.ndjson"
echo "input: $(wc -l < "$work/input.ndjson") records, $(du -m "$work/input.ndjson" | cut -f1) MiB"

job_manifest "$work/input.ndjson" \
  "{\"id\": \"out\", \"kind\": \"loader\", \"plugin\": \"file\", \"config\": {\"path\": \"$work/sluice.ndjson\", \"fsync\": false}}" \
  > "$work/job.json"
read -r s_sec s_rss < <(measure "$sluice" run "$work/job.json")
s_out=$(wc -l < "$work/sluice.ndjson")

read -r m_sec m_rss < <(measure sh -c "mlr --ijsonl --ojsonl rename user,user_id then cut -x -f text \
  then put '\$source = \"bench\"' \
  then filter 'is_present(\$email) && \$email =~ \"^[^@]+@[^@]+\\.[a-z]+\$\" && \$amount >= 0 && \
               (\$country == \"US\" || \$country == \"DE\" || \$country == \"FR\" || \$country == \"GB\" || \
                \$country == \"NL\" || \$country == \"SE\" || \$country == \"JP\" || \$country == \"BR\" || \
                \$country == \"IN\" || \$country == \"CA\" || \$country == \"ES\" || \$country == \"IT\")' \
  '$work/input.ndjson' > '$work/mlr.ndjson'")
m_out=$(wc -l < "$work/mlr.ndjson")

read -r j_sec j_rss < <(measure sh -c "jq -c 'select((.email // \"\" | test(\"^[^@]+@[^@]+\\\\.[a-z]+\$\")) and .amount >= 0 \
  and (.country | IN(\"US\",\"DE\",\"FR\",\"GB\",\"NL\",\"SE\",\"JP\",\"BR\",\"IN\",\"CA\",\"ES\",\"IT\"))) \
  | .user_id = .user | del(.user, .text) | .source = \"bench\"' '$work/input.ndjson' > '$work/jq.ndjson'")
j_out=$(wc -l < "$work/jq.ndjson")

if [ "$s_out" != "$m_out" ] || [ "$s_out" != "$j_out" ]; then
  echo "bench: outputs differ: sluice $s_out, mlr $m_out, jq $j_out records" >&2
  exit 1
fi

s_rate=$(rate "$n" "$s_sec"); m_rate=$(rate "$n" "$m_sec"); j_rate=$(rate "$n" "$j_sec")
echo
echo "file -> map -> rules -> file, $n records in, $s_out out (threads per stage: $threads)"
printf "  %-8s %10s %12s %12s\n" tool seconds records/s "peak RSS MB"
printf "  %-8s %10s %12s %12d\n" sluice "$s_sec" "$s_rate" $((s_rss / 1024))
printf "  %-8s %10s %12s %12d\n" mlr "$m_sec" "$m_rate" $((m_rss / 1024))
printf "  %-8s %10s %12s %12d\n" jq "$j_sec" "$j_rate" $((j_rss / 1024))
echo "  sluice / mlr: $(ratio "$s_rate" "$m_rate")x    sluice / jq: $(ratio "$s_rate" "$j_rate")x"

# The same job with exactly-once delivery on: positions tracked and saved as
# acknowledgements move, the loader appending and fdatasync-ing every batch
# and its marker before acknowledging it.
delivery_manifest() { # INPUT OUTPUT STATE-DIR
  job_manifest "$1" "{\"id\": \"out\", \"kind\": \"loader\", \"plugin\": \"file\", \"config\": {\"path\": \"$2\", \"append\": true}}" |
    sed "s|{\"name\": \"bench\",|{\"name\": \"bench\", \"state_dir\": \"$3\",|"
}
delivery_manifest "$work/input.ndjson" "$work/acked.ndjson" "$work/state" > "$work/acked.json"
read -r a_sec a_rss < <(measure "$sluice" run "$work/acked.json")
a_out=$(wc -l < "$work/acked.ndjson")
[ "$a_out" = "$s_out" ] || { echo "bench: at-least-once run wrote $a_out records, not $s_out" >&2; exit 1; }
echo "  same job, exactly once (state_dir, append + fdatasync and a synced marker per batch): $a_sec s, $(rate "$n" "$a_sec") records/s" \
     "($(ratio "$(rate "$n" "$a_sec")" "$s_rate")x of the plain run), peak RSS $((a_rss / 1024)) MB"
rm -rf "$work/acked.ndjson" "$work/state"

# The same job with map and rules isolated ("isolation": "process": one
# worker process per thread, batches in shared memory), against the same job
# in process, three runs each, alternating; medians.
sed 's|"threads": '"$threads"',|"threads": '"$threads"', "isolation": "process",|' "$work/job.json" > "$work/isolated.json"
grep -q '"isolation"' "$work/isolated.json" || { echo "bench: could not isolate the job" >&2; exit 1; }
median() { sort -n | sed -n 2p; }
plain_runs=(); isolated_runs=()
for _ in 1 2 3; do
  read -r sec _rss < <(measure "$sluice" run "$work/job.json"); plain_runs+=("$sec")
  read -r sec i_rss < <(measure "$sluice" run "$work/isolated.json"); isolated_runs+=("$sec")
  i_out=$(wc -l < "$work/sluice.ndjson")
  [ "$i_out" = "$s_out" ] || { echo "bench: the isolated run wrote $i_out records, not $s_out" >&2; exit 1; }
done
p_sec=$(printf '%s\n' "${plain_runs[@]}" | median)
i_sec=$(printf '%s\n' "${isolated_runs[@]}" | median)
echo "  same job, map and rules isolated in $((2 * threads)) worker processes: $i_sec s, $(rate "$n" "$i_sec") records/s" \
     "($(ratio "$(rate "$n" "$i_sec")" "$(rate "$n" "$p_sec")")x of in process, $p_sec s; medians of 3), host peak RSS $((i_rss / 1024)) MB"

# The same job with the admin endpoint on and scraped ten times a second
# (/metrics and /status, 150 times as often as Prometheus' default; the job
# lasts well under a second), against the
# same job without it; three runs each, alternating; medians.
scrape_while_running() { # STDERR-FILE PID: scrapes until PID ends; prints the scrapes made
  local port="" scrapes=0
  while kill -0 "$2" 2> /dev/null; do
    [ -n "$port" ] || port=$(grep -o 'admin endpoint listening on http://127.0.0.1:[0-9]*' "$1" | grep -o '[0-9]*$' || true)
    if [ -n "$port" ]; then
      for path in /metrics /status; do
        if (exec 3<> "/dev/tcp/127.0.0.1/$port" && printf 'GET %s HTTP/1.0\r\n\r\n' "$path" >&3 && cat <&3 > /dev/null) 2> /dev/null; then
          scrapes=$((scrapes + 1))
        fi
      done
    fi
    sleep 0.1
  done
  echo "$scrapes"
}
plain_runs=(); scraped_runs=(); scrapes=0
for _ in 1 2 3; do
  read -r sec _rss < <(measure "$sluice" run "$work/job.json"); plain_runs+=("$sec")
  /usr/bin/time -f "%e %M" -o "$work/time" "$sluice" run "$work/job.json" --admin 127.0.0.1:0 > /dev/null 2> "$work/admin.err" &
  scrapes=$((scrapes + $(scrape_while_running "$work/admin.err" $!)))
  wait
  read -r sec _rss < "$work/time"; scraped_runs+=("$sec")
done
p_sec=$(printf '%s\n' "${plain_runs[@]}" | median)
m_sec=$(printf '%s\n' "${scraped_runs[@]}" | median)
echo "  same job, admin endpoint on and scraped ten times a second ($scrapes scrapes in 3 runs): $m_sec s," \
     "$(rate "$n" "$m_sec") records/s ($(ratio "$(rate "$n" "$m_sec")" "$(rate "$n" "$p_sec")")x of the same job without it, $p_sec s; medians of 3)"

# No I/O: the host and plugins alone.
cat > "$work/gen_null.json" <<JSON
{"name": "bench-null", "stages": [
  {"id": "gen", "kind": "extractor", "plugin": "generate", "config": {"count": $n, "invalid_every": 50}},
$(middle_stages)
  {"id": "out", "kind": "loader", "plugin": "null"}]}
JSON
read -r g_sec g_rss < <(measure "$sluice" run "$work/gen_null.json")
echo
echo "generate -> map -> rules -> null, $n records: $g_sec s, $(rate "$n" "$g_sec") records/s, peak RSS $((g_rss / 1024)) MB"

# Memory must not grow with the input: the same job on a bigger file.
rm -f "$work/sluice.ndjson" "$work/mlr.ndjson" "$work/jq.ndjson"
echo
echo "generating $big records ..."
generate "$big" "$work/big.ndjson"
job_manifest "$work/big.ndjson" \
  "{\"id\": \"out\", \"kind\": \"loader\", \"plugin\": \"file\", \"config\": {\"path\": \"$work/big.out.ndjson\", \"fsync\": false}}" \
  > "$work/big.json"
read -r b_sec b_rss < <(measure "$sluice" run "$work/big.json")
echo "peak RSS of the file job: $((s_rss / 1024)) MB at $n records, $((b_rss / 1024)) MB at $big records ($(rate "$big" "$b_sec") records/s)"
