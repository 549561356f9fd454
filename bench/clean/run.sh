#!/usr/bin/env bash
# bench/clean: column phases on a 4M-row, 20-column text CSV (`sluice run` on
# a source with columns:, which loads it as text, generates the phase SQL,
# converts every value, writes the issue log and publishes) against the same
# conversions written by hand in one DuckDB query over the same file
# (duckdb_load with a SQL file: read_csv all as text, TRY_CAST and
# try_strptime per column), through the same library and memory limit.
# Prints both times and the ratio. A benchmark, not a test.
#   bench/clean/run.sh [SLUICE_BINARY] [ROWS]
set -euo pipefail
SLUICE=$(realpath "${1:-build/release/src/sluice}")
ROWS=${2:-4000000}
BUILD=$(dirname "$(dirname "$SLUICE")")
LOADER=$BUILD/bench/duckdb_load
WORK=${BENCH_DIR:-$(pwd)/bench/data}
mkdir -p "$WORK"
CSV=$WORK/clean_${ROWS}.csv
if [ ! -f "$CSV" ]; then
  echo "generating $CSV ..." >&2
  # 20 text columns: integers with thousands separators (some "TBC", ">1"),
  # decimals, dd/mm/yyyy dates, yes/no booleans, categories in mixed case,
  # URIs, free text with stray spaces; about 1% bad values.
  python3 - "$CSV" "$ROWS" <<'PY'
import sys
path, rows = sys.argv[1], int(sys.argv[2])
cats = ["Open", "closed", "PLANNED", "open "]
with open(path, "w") as f:
    f.write(",".join([f"int{i}" for i in range(5)] + [f"dec{i}" for i in range(4)] +
                     [f"date{i}" for i in range(3)] + ["flag0", "flag1", "cat0", "cat1",
                      "uri0", "uri1", "text0", "text1"]) + "\n")
    chunk = []
    for r in range(rows):
        bad = r % 97 == 0
        ints = [f'"{(r * 7 + i * 1013) % 5000000:,}"' if (r + i) % 3 == 0 else str((r * 7 + i) % 100000)
                for i in range(5)]
        if bad: ints[0] = "TBC"
        decs = [f"{(r % 10007) / 7 + i:.3f}" for i in range(4)]
        dates = [f"{1 + (r + i) % 28:02d}/{1 + (r // 28 + i) % 12:02d}/{2000 + r % 25}" for i in range(3)]
        if bad: dates[1] = "31/13/2020"
        flags = ["yes" if r % 2 else "No", "Y" if r % 3 else "n"]
        c = [cats[r % 4], cats[(r + 1) % 4]]
        uris = [f"http://example.org/site/{r}", f"https://data.example.org/x/{r % 1000}"]
        texts = [f"  site {r} ", f"note {r % 777}"]
        chunk.append(",".join(ints + decs + dates + flags + c + uris + texts) + "\n")
        if len(chunk) == 100000:
            f.write("".join(chunk)); chunk = []
    f.write("".join(chunk))
PY
fi
echo "file: $CSV ($(($(stat -c %s "$CSV") / 1024 / 1024)) MiB, $ROWS rows)"

columns() {
  for i in 0 1 2 3 4; do echo "  int$i: {type: integer}"; done
  for i in 0 1 2 3; do echo "  dec$i: {type: decimal}"; done
  for i in 0 1 2; do echo "  date$i: {type: date, formats: [\"%d/%m/%Y\"]}"; done
  for i in 0 1; do echo "  flag$i: {type: boolean}"; done
  for i in 0 1; do echo "  cat$i: {type: category, values: [open, closed, planned]}"; done
  for i in 0 1; do echo "  uri$i: {type: uri}"; done
  for i in 0 1; do echo "  text$i: {type: text}"; done
}
# The same conversions by hand: what a data engineer writes in one query.
HAND=$WORK/clean_hand.sql
{
  echo "CREATE TABLE t AS SELECT"
  for i in 0 1 2 3 4; do echo "  TRY_CAST(replace(trim(int$i), ',', '') AS INTEGER) AS int$i,"; done
  for i in 0 1 2 3; do echo "  TRY_CAST(replace(trim(dec$i), ',', '') AS DECIMAL(38, 10)) AS dec$i,"; done
  for i in 0 1 2; do echo "  CAST(try_strptime(trim(date$i), '%d/%m/%Y') AS DATE) AS date$i,"; done
  for i in 0 1; do echo "  CASE WHEN lower(trim(flag$i)) IN ('yes','y','true','t','1') THEN true WHEN lower(trim(flag$i)) IN ('no','n','false','f','0') THEN false END AS flag$i,"; done
  for i in 0 1; do echo "  CASE lower(trim(cat$i)) WHEN 'open' THEN 'open' WHEN 'closed' THEN 'closed' WHEN 'planned' THEN 'planned' END AS cat$i,"; done
  for i in 0 1; do echo "  CASE WHEN regexp_full_match(trim(uri$i), '[A-Za-z][A-Za-z0-9+.-]*://\\S+') THEN trim(uri$i) END AS uri$i,"; done
  echo "  trim(text0) AS text0, trim(text1) AS text1"
  echo "FROM read_csv(@FILE@, header=true, all_varchar=true)"
} >"$HAND"

run_hand() {
  rm -f "$WORK/clean_peer.duckdb" "$WORK/clean_peer.duckdb.wal"
  "$LOADER" "$CSV" "$WORK/clean_peer.duckdb" 2GB "$HAND" | cut -d' ' -f1
}
run_sluice() {
  local proj=$WORK/clean_project
  rm -rf "$proj" && mkdir -p "$proj/sources"
  printf 'name: bench\ndefaults: {memory_limit: 2GB}\n' >"$proj/sluice.yaml"
  { printf 'fetch: {url: %s}\nformat: csv\ncolumns:\n' "$CSV"; columns; } >"$proj/sources/sites.yaml"
  local s e
  s=$(date +%s.%N)
  "$SLUICE" --project "$proj" run >/dev/null
  e=$(date +%s.%N)
  awk -v a="$s" -v b="$e" 'BEGIN { printf "%.3f\n", b - a }'
}
best() { printf '%s\n' "$@" | sort -g | head -1; }
sync
h1=$(run_hand); s1=$(run_sluice)
h2=$(run_hand); s2=$(run_sluice)
h3=$(run_hand); s3=$(run_sluice)
h=$(best "$h1" "$h2" "$h3"); s=$(best "$s1" "$s2" "$s3")
echo "hand-written casts, one query (best of 3): ${h}s   runs: $h1 $h2 $h3"
echo "sluice run, column phases     (best of 3): ${s}s   runs: $s1 $s2 $s3"
awk -v h="$h" -v s="$s" 'BEGIN { printf "ratio (hand/sluice): %.2fx\n", h / s }'
"$SLUICE" --project "$WORK/clean_project" query \
  "select issue_type, field, count(*) as logged from _sluice.issues group by all order by 1, 2"
rm -rf "$WORK/clean_project" "$WORK/clean_peer.duckdb"
