#!/usr/bin/env bash
# The database loaders against the databases' own bulk loaders, side by side
# on one machine:
#   file -> map (rename, drop, add) -> postgres   vs  psql \copy of the same
#                                                     rows, already transformed
#   file -> map -> sqlite                         vs  sqlite3 .import of them
# The references do strictly less work (no parsing, no transformation). Each
# is run ROUNDS times, alternating; medians of wall time (GNU time) and the
# ratio reference / sluice (1.0: as fast as the bulk loader alone) are
# printed, for the default batch size (1024) and for 16384 (every stage:
# "defaults": {"batch_size": N}); for PostgreSQL also with durability
# relaxed, with copy_format csv (what binary COPY saves), with threads 2
# (two workers, each its connections) and with overlap_commits false (one
# connection, each window waiting for its own commit: what the overlap
# saves, also with windows of 1024 records, where commits are frequent); for
# SQLite also with durability full.
# A PostgreSQL server (Debian's postgresql) is started in a scratch directory
# with its defaults (fsync on), and stopped at the end.
# Usage: tests/bench/loaders.sh [RECORDS] [ROUNDS]      (default 1000000 3)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
sluice="${SLUICE:-$root/build/release/bin/sluice}"
records=${1:-1000000}
rounds=${2:-3}
work=$(mktemp -d /tmp/sluice-loaders-XXXXXX)
chmod 755 "$work"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  [ -f "$work/pg/postmaster.pid" ] && as_postgres "$pgbin/pg_ctl" -D "$work/pg" -m immediate -w stop > /dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
source "$root/tests/bench/bench_input.sh"

echo "== input: $records records"
generate "$records" "$work/in.ndjson"
echo "   $(du -h "$work/in.ndjson" | cut -f1), $(( $(stat -c %s "$work/in.ndjson") / records )) bytes per record"

columns='[{"name":"id","type":"bigint"},{"name":"ts","type":"text"},{"name":"customer","type":"text"},
          {"name":"email","type":"text"},{"name":"amount","type":"double precision"},{"name":"country","type":"text"},
          {"name":"text","type":"text"},{"name":"source","type":"text"}]'
map='{"id": "shape", "kind": "transformer", "plugin": "map",
      "config": {"rename": {"user": "customer", "timestamp": "ts"}, "drop": ["invalid"], "set": {"source": "bench"}}}'
names="id,ts,customer,email,amount,country,text,source"

# The rows the references load: the same records through the same map, as CSV.
cat > "$work/to_csv.json" <<JSON
{"name": "to-csv", "stages": [
  {"id": "in", "kind": "extractor", "plugin": "file", "config": {"path": "$work/in.ndjson"}},
  $map,
  {"id": "out", "kind": "loader", "plugin": "file",
   "config": {"path": "$work/rows.csv", "columns": ["id","ts","customer","email","amount","country","text","source"]}}]}
JSON
"$sluice" run "$work/to_csv.json" --quiet 2> /dev/null
echo "   $(( $(wc -l < "$work/rows.csv") - 1 )) transformed rows as CSV for the references"

# --- PostgreSQL ------------------------------------------------------------
mkdir -p "$work/pg" "$work/pgsock"
chown postgres "$work/pg" "$work/pgsock" 2> /dev/null || true
port=$(( 20000 + RANDOM % 20000 ))
as_postgres "$pgbin/initdb" -D "$work/pg" -U bench --auth=trust -E UTF8 --no-locale > /dev/null
as_postgres "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pgsock/server.log" -w -o "-p $port -k $work/pgsock -c listen_addresses=''" start > /dev/null
conninfo="host=$work/pgsock port=$port dbname=postgres user=bench"
export PGOPTIONS="-c client_min_messages=warning"
psql_() { psql -X -q -v ON_ERROR_STOP=1 "$conninfo" "$@"; }
psql_ -c "CREATE TABLE ref (id bigint, ts text, customer text, email text, amount double precision, country text, text text, source text)"
chmod 644 "$work/rows.csv"

pg_manifest() { # batch_size [durability] [copy_format] [threads] [window: extra loader keys] [overlap_commits]
  cat > "$work/pg.json" <<JSON
{"name": "to-postgres", "defaults": {"batch_size": $1}, "memory_limit_mb": 128, "stages": [
  {"id": "in", "kind": "extractor", "plugin": "file", "config": {"path": "$work/in.ndjson"}},
  $map,
  {"id": "db", "kind": "loader", "plugin": "postgres", "threads": ${4:-1}, ${5:-}
   "config": {"conninfo": "$conninfo", "table": "loaded", "create_table": true, "columns": $columns,
              "durability": "${2:-server}", "copy_format": "${3:-auto}", "overlap_commits": ${6:-true}}}]}
JSON
}

# --- SQLite -----------------------------------------------------------------
sqlite_schema="CREATE TABLE t (id INTEGER, ts TEXT, customer TEXT, email TEXT, amount REAL, country TEXT, text TEXT, source TEXT);"
sqlite_manifest() { # batch_size [durability]
  cat > "$work/sq.json" <<JSON
{"name": "to-sqlite", "defaults": {"batch_size": $1}, "stages": [
  {"id": "in", "kind": "extractor", "plugin": "file", "config": {"path": "$work/in.ndjson"}},
  $map,
  {"id": "db", "kind": "loader", "plugin": "sqlite",
   "config": {"path": "$work/sluice.db", "table": "t", "create_table": true, "columns": $columns,
              "durability": "${2:-normal}"}}]}
JSON
}

# One timed command: prints its wall seconds (GNU time), fails loudly.
# Peak RSS (KB) of every timed run, by label, the largest kept.
declare -A rss
timed() {
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > /dev/null 2> "$work/err" || { cat "$work/err"; exit 1; }
  cut -d' ' -f1 "$work/time"
}
keep_rss() { local kb; kb=$(cut -d' ' -f2 "$work/time"); [ "${rss[$1]:-0}" -ge "$kb" ] || rss[$1]=$kb; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
count_pg() { psql_ -At -c "SELECT count(*) FROM $1"; }

declare -A t
for round in $(seq "$rounds"); do
  psql_ -c "TRUNCATE ref"
  t[pg_ref]+="$(timed psql -X -q "$conninfo" -c "\\copy ref ($names) FROM '$work/rows.csv' WITH (FORMAT csv, HEADER true)") "
  for batch in 1024 16384; do
    psql_ -c "DROP TABLE IF EXISTS loaded"
    pg_manifest $batch
    t[pg_$batch]+="$(timed "$sluice" run "$work/pg.json" --quiet) "
    keep_rss pg_$batch
  done
  # Windows as large as the loader can be given: memory stays within the
  # budget (memory_limit_mb 128 in every manifest here).
  psql_ -c "DROP TABLE IF EXISTS loaded"
  pg_manifest 1024 server auto 1 '"commit_records": 16777216, "commit_bytes": 1073741824, "commit_interval_ms": 1000,'
  t[pg_huge]+="$(timed "$sluice" run "$work/pg.json" --quiet) "
  keep_rss pg_huge
  psql_ -c "DROP TABLE IF EXISTS loaded"
  pg_manifest 1024 relaxed
  t[pg_relaxed]+="$(timed "$sluice" run "$work/pg.json" --quiet) "
  psql_ -c "DROP TABLE IF EXISTS loaded"
  pg_manifest 1024 server csv
  t[pg_csv]+="$(timed "$sluice" run "$work/pg.json" --quiet) "
  psql_ -c "DROP TABLE IF EXISTS loaded"
  pg_manifest 1024 server auto 2
  t[pg_threads]+="$(timed "$sluice" run "$work/pg.json" --quiet) "
  psql_ -c "DROP TABLE IF EXISTS loaded"
  pg_manifest 1024 server auto 1 "" false
  t[pg_serial]+="$(timed "$sluice" run "$work/pg.json" --quiet) "
  for overlap in true false; do
    psql_ -c "DROP TABLE IF EXISTS loaded"
    pg_manifest 1024 server auto 1 '"commit_records": 1024,' $overlap
    t[pg_small_$overlap]+="$(timed "$sluice" run "$work/pg.json" --quiet) "
  done
  rm -f "$work/ref.db"*
  sqlite3 "$work/ref.db" "$sqlite_schema"
  t[sq_ref]+="$(timed sqlite3 "$work/ref.db" -cmd ".mode csv" ".import --skip 1 $work/rows.csv t") "
  for batch in 1024 16384; do
    rm -f "$work/sluice.db"*
    sqlite_manifest $batch
    t[sq_$batch]+="$(timed "$sluice" run "$work/sq.json" --quiet) "
  done
  rm -f "$work/sluice.db"*
  sqlite_manifest 1024 full
  t[sq_full]+="$(timed "$sluice" run "$work/sq.json" --quiet) "
done
# Everything loaded, by all of them.
[ "$(count_pg ref)" = "$(count_pg loaded)" ] || { echo "postgres: the reference and sluice loaded different counts"; exit 1; }
[ "$(sqlite3 "$work/ref.db" 'SELECT count(*) FROM t')" = "$(sqlite3 "$work/sluice.db" 'SELECT count(*) FROM t')" ] ||
  { echo "sqlite: the reference and sluice loaded different counts"; exit 1; }

m() { tr ' ' '\n' <<<"${t[$1]}" | grep . | median; }
ratio() { awk -v r="$1" -v s="$2" 'BEGIN {printf "%.2fx", r / s}'; }
echo
echo "| destination | sluice, batch 1024 | sluice, batch 16384 | bulk loader alone | ratio (1024 / 16384) |"
echo "|---|---|---|---|---|"
echo "| PostgreSQL $(basename "$(dirname "$pgbin")"), fsync on | $(m pg_1024) s | $(m pg_16384) s | psql \\copy csv: $(m pg_ref) s | $(ratio "$(m pg_ref)" "$(m pg_1024)") / $(ratio "$(m pg_ref)" "$(m pg_16384)") |"
echo "| PostgreSQL, durability relaxed | $(m pg_relaxed) s | | psql \\copy csv: $(m pg_ref) s | $(ratio "$(m pg_ref)" "$(m pg_relaxed)") |"
echo "| PostgreSQL, copy_format csv | $(m pg_csv) s | | psql \\copy csv: $(m pg_ref) s | $(ratio "$(m pg_ref)" "$(m pg_csv)") |"
echo "| PostgreSQL, overlap_commits false | $(m pg_serial) s | | psql \\copy csv: $(m pg_ref) s | $(ratio "$(m pg_ref)" "$(m pg_serial)") |"
echo "| PostgreSQL, commit_records 1024 | $(m pg_small_true) s | | psql \\copy csv: $(m pg_ref) s | $(ratio "$(m pg_ref)" "$(m pg_small_true)") |"
echo "| PostgreSQL, commit_records 1024, overlap_commits false | $(m pg_small_false) s | | psql \\copy csv: $(m pg_ref) s | $(ratio "$(m pg_ref)" "$(m pg_small_false)") |"
echo "| PostgreSQL, threads 2 | $(m pg_threads) s | | psql \\copy csv: $(m pg_ref) s | $(ratio "$(m pg_ref)" "$(m pg_threads)") |"
echo "| PostgreSQL, windows up to 16 M records / 1 GiB, 1 s | $(m pg_huge) s | | psql \\copy csv: $(m pg_ref) s | $(ratio "$(m pg_ref)" "$(m pg_huge)") |"
echo "| SQLite (WAL), durability normal | $(m sq_1024) s | $(m sq_16384) s | sqlite3 .import csv: $(m sq_ref) s | $(ratio "$(m sq_ref)" "$(m sq_1024)") / $(ratio "$(m sq_ref)" "$(m sq_16384)") |"
echo "| SQLite (WAL), durability full | $(m sq_full) s | | sqlite3 .import csv: $(m sq_ref) s | $(ratio "$(m sq_ref)" "$(m sq_full)") |"
echo "($records records, medians of $rounds rounds)"
echo "peak RSS of sluice (memory_limit_mb 128): batch 1024 $(( rss[pg_1024] / 1024 )) MB, batch 16384 $(( rss[pg_16384] / 1024 )) MB, windows up to 16 M records / 1 GiB $(( rss[pg_huge] / 1024 )) MB"
