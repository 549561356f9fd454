#!/usr/bin/env bash
# Sluice against DuckDB's own default read_csv on a corpus of CSV files:
# for every file the engine reads with its defaults (CREATE TABLE AS SELECT *
# FROM read_csv(file)), Sluice must load at least as many rows, with the
# source's defaults (format: csv, nothing else set).
#
#   bench/csv_corpus/run.sh SLUICE_BINARY CORPUS_DIR [OUT_TSV]
#
# Each file becomes one source of one project (so one `sluice run` loads them
# all, failures isolated per source). Prints a line per file that Sluice
# loads fewer rows of (or fails on) while the engine reads it, then a summary.
set -euo pipefail
SLUICE=$(realpath "$1")
CORPUS=$(realpath "$2")
OUT=${3:-/dev/null}
BUILD=$(dirname "$(dirname "$SLUICE")")
LOADER=$BUILD/bench/duckdb_load
[ -x "$LOADER" ] || { echo "missing $LOADER (build the bench targets)" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-corpus.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

printf 'CREATE TABLE t AS SELECT * FROM read_csv(@FILE@)\n' >"$WORK/peer.sql"
mkdir -p "$WORK/project/sources"
printf 'name: corpus\ndefaults: {memory_limit: 1GB}\n' >"$WORK/project/sluice.yaml"
: >"$WORK/files.tsv"
n=0
while IFS= read -r -d '' file; do
  n=$((n + 1))
  name=$(printf 'f%04d' "$n")
  printf '%s\t%s\n' "$name" "${file#"$CORPUS"/}" >>"$WORK/files.tsv"
  printf 'fetch: {url: %s}\nformat: csv\n' "$(printf '%s' "$file" | sed 's/"/\\"/g; s/^/"/; s/$/"/')" \
    >"$WORK/project/sources/$name.yaml"
done < <(find "$CORPUS" -type f \( -iname '*.csv' -o -iname '*.tsv' -o -iname '*.txt' \) -print0 | sort -z)

"$SLUICE" --project "$WORK/project" --json run --threads 2 >"$WORK/run.json" 2>"$WORK/run.err" || true
python3 - "$WORK/run.json" "$WORK/files.tsv" "$LOADER" "$WORK" "$CORPUS" "$OUT" <<'PY'
import json, subprocess, sys
run_json, files_tsv, loader, work, corpus, out_path = sys.argv[1:]
try:
    report = json.load(open(run_json))
except Exception as e:
    sys.exit(f"sluice run printed no JSON report: {e}")
tasks = {t["asset"]: t for t in report.get("tasks", [])}
rows = []
for line in open(files_tsv):
    name, rel = line.rstrip("\n").split("\t", 1)
    p = subprocess.run([loader, f"{corpus}/{rel}", f"{work}/peer.duckdb", "1GB", f"{work}/peer.sql"],
                       capture_output=True, text=True)
    subprocess.run(["rm", "-f", f"{work}/peer.duckdb", f"{work}/peer.duckdb.wal"])
    engine = int(p.stdout.split()[1]) if p.returncode == 0 else None
    engine_err = "" if p.returncode == 0 else p.stderr.strip().splitlines()[0] if p.stderr.strip() else "failed"
    t = tasks.get(name, {})
    ok = t.get("status") == "success"
    sl = t.get("rows") if ok else None
    rows.append((rel, engine, engine_err, sl, t.get("status", "missing"), (t.get("error") or "").splitlines()[0] if t.get("error") else ""))
reads = [r for r in rows if r[1] is not None]
fewer = [r for r in reads if r[3] is None or r[3] < r[1]]
failed = [r for r in reads if r[3] is None]
more = [r for r in reads if r[3] is not None and r[3] > r[1]]
with open(out_path, "w") as out:
    out.write("file\tengine_rows\tengine_error\tsluice_rows\tsluice_status\tsluice_error\n")
    for r in rows:
        out.write("\t".join("" if v is None else str(v) for v in r) + "\n")
for r in fewer:
    print(f"FEWER {r[0]}: engine {r[1]}, sluice {r[3] if r[3] is not None else r[4]} {r[5][:160]}")
print(f"files: {len(rows)}; the engine reads {len(reads)} with its defaults")
print(f"sluice loads at least the engine's rows on {len(reads) - len(fewer)} of them, "
      f"fewer on {len(fewer)} ({len(failed)} of those fail); more on {len(more)}")
engine_failed = [r for r in rows if r[1] is None]
print(f"the engine fails on {len(engine_failed)}; sluice loads "
      f"{sum(1 for r in engine_failed if r[3] is not None)} of those")
PY
