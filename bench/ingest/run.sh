#!/usr/bin/env bash
# bench/ingest: a ~1 GB local CSV through `sluice run` (copy + hash into the
# raw lake, then DuckDB's load, then publication) against DuckDB's own load of
# the same file through the same library. Prints both times and the ratio
# (engine time / sluice time; 1.0 = as fast as the engine alone).
#   bench/ingest/run.sh [SLUICE_BINARY] [SIZE_MB]
set -euo pipefail
SLUICE=$(realpath "${1:-build/release/src/sluice}")
SIZE_MB=${2:-1024}
BUILD=$(dirname "$(dirname "$SLUICE")")
LOADER=$BUILD/bench/duckdb_load
WORK=${BENCH_DIR:-$(pwd)/bench/data}
mkdir -p "$WORK"
CSV=$WORK/events_${SIZE_MB}mb.csv
if [ ! -f "$CSV" ]; then
  echo "generating $CSV ..." >&2
  rows=$((SIZE_MB * 1024 * 1024 / 73))
  # Deterministic, ~73 bytes a row, mixed types.
  python3 - "$CSV" "$rows" <<'PY'
import sys, random
path, rows = sys.argv[1], int(sys.argv[2])
random.seed(42)
cities = ["Hanford", "Lemoore", "Corcoran", "Avenal", "Visalia", "Armona", "Kettleman City"]
with open(path, "w") as f:
    f.write("id,ts,city,amount,quantity,flag,note\n")
    chunk = []
    for i in range(rows):
        chunk.append(f"{i},2026-{1 + i % 12:02d}-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:00,"
                     f"{cities[i % 7]},{(i * 7919) % 100000 / 100:.2f},{i % 97},{'true' if i % 3 else 'false'},"
                     f"note {i * 31 % 1000003} for row\n")
        if len(chunk) == 100000:
            f.write("".join(chunk)); chunk = []
    f.write("".join(chunk))
PY
fi
bytes=$(stat -c %s "$CSV")
[ -n "${GENERATE_ONLY:-}" ] && exit 0

run_duckdb() {
  rm -f "$WORK/peer.duckdb" "$WORK/peer.duckdb.wal"
  "$LOADER" "$CSV" "$WORK/peer.duckdb" 2GB | cut -d' ' -f1
}
run_sluice() {
  local proj=$WORK/project
  rm -rf "$proj" && mkdir -p "$proj/sources"
  printf 'name: bench\ndefaults: {memory_limit: 2GB}\n' >"$proj/sluice.yaml"
  printf 'fetch: {url: %s}\nformat: csv\n' "$CSV" >"$proj/sources/events.yaml"
  local s e
  s=$(date +%s.%N)
  "$SLUICE" --project "$proj" run >/dev/null
  e=$(date +%s.%N)
  awk -v a="$s" -v b="$e" 'BEGIN { printf "%.3f\n", b - a }'
}

echo "file: $CSV ($((bytes / 1024 / 1024)) MiB)"
sync
# Alternated, RUNS times each (default 5); the median and the best of each.
RUNS=${RUNS:-5}
ds=() ss=()
for _ in $(seq "$RUNS"); do
  ds+=("$(run_duckdb)")
  ss+=("$(run_sluice)")
done
best() { printf '%s\n' "$@" | sort -g | head -1; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
dm=$(median "${ds[@]}"); sm=$(median "${ss[@]}")
db=$(best "${ds[@]}"); sb=$(best "${ss[@]}")
echo "duckdb load: median ${dm}s, best ${db}s   runs: ${ds[*]}"
echo "sluice run:  median ${sm}s, best ${sb}s   runs: ${ss[*]}"
awk -v d="$dm" -v s="$sm" 'BEGIN { printf "ratio (duckdb/sluice), medians of '"$RUNS"': %.2fx of the engine speed\n", d / s }'
awk -v d="$db" -v s="$sb" 'BEGIN { printf "ratio (duckdb/sluice), bests: %.2fx\n", d / s }'
