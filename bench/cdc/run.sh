#!/usr/bin/env bash
# bench/cdc: change-capture lag from PostgreSQL at a steady write rate.
# Starts PostgreSQL (wal_level = logical) from Debian's packages in a temp
# folder, snapshots a table once, then has pgbench insert into it at RATE
# transactions a second for SECS seconds while Sluice captures it:
#   MODE=serve (default): `sluice serve` keeps the slot's stream open and
#                 runs the source as batches arrive (publish_every: 0s);
#   MODE=runs:    `sluice run` back to back, each a read of the slot's
#                 changes, a load and a publication.
# For every row it then computes, from Sluice's own records:
#   capture lag — the row's commit (clock_timestamp() at insert) to the end
#                 of the read that wrote it to the raw lake (fetch log:
#                 started_at + duration);
#   visible lag — the same commit to the publication that made it public
#                 (_sluice.publications.published_at of the version whose
#                 inputs name that raw object).
# and prints p50/p99/max. The peer, side by side on the same writes:
# PostgreSQL's own pg_recvlogical streaming the same changes from a slot of
# its own (test_decoding), each line stamped when it arrives — a direct
# logical-decoding reader, the floor any capture tool is measured against.
# A benchmark, not a test.
#
#   [MODE=serve|runs] bench/cdc/run.sh build/release/src/sluice [RATE] [SECS]   (default 1000 60)
set -euo pipefail
SLUICE=$(realpath "$1")
RATE=${2:-1000}
SECS=${3:-60}
export MODE=${MODE:-serve}
export WORK=$(mktemp -d /tmp/sluice-bench-cdc.XXXXXX)
LIB_DIR=$(dirname "$(realpath "$0")")/../../test
fail() { echo "FAIL: $*" >&2; exit 1; }
# shellcheck source=../../test/case_lib.sh
source "$LIB_DIR/case_lib.sh"
trap 'bash "$WORK/.stop" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
start_postgres logical
PGBENCH=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/pgbench
"${PSQL[@]}" -c "create table ev (id bigserial primary key, v int, note text,
  created_at timestamptz not null default clock_timestamp())"
mkdir -p "$WORK/p/sources"
cd "$WORK/p"
printf 'name: bench\nsecrets: [env]\n' >sluice.yaml
export BENCH_PG=$PG_URL
cat >sources/src.yaml <<'YAML'
database:
  url: "${secret:BENCH_PG}"
  cdc: {slot: bench_slot, publish_every: 0s}
tables:
  ev: {table: public.ev, key: [id]}
YAML
"$SLUICE" run >/dev/null
echo "insert into ev (v, note) values ((random() * 1000)::int, 'x');" >"$WORK/insert.sql"
RECV=$(dirname "$PGBENCH")/pg_recvlogical
"$RECV" -h 127.0.0.1 -p "$PG_PORT" -U sluice -d sluice --slot peer --create-slot -P test_decoding
"$RECV" -h 127.0.0.1 -p "$PG_PORT" -U sluice -d sluice --slot peer --start -f - 2>"$WORK/recv.err" |
  /usr/bin/python3 -c '
import sys, time
out = open(sys.argv[1], "w")
while True:
    line = sys.stdin.buffer.readline()
    if not line:
        break
    out.write("%d %s" % (time.time_ns() // 1000, line.decode()))
    out.flush()' "$WORK/peer.log" &
peer=$!
echo "writing $RATE transactions/s for $SECS s, capturing ($MODE)..."
"$PGBENCH" -h 127.0.0.1 -p "$PG_PORT" -U sluice -n -f "$WORK/insert.sql" -R "$RATE" -T "$SECS" \
  -c 4 -j 2 sluice >"$WORK/pgbench.log" 2>&1 &
writer=$!
runs=0
if [ "$MODE" = serve ]; then
  "$SLUICE" serve --listen off 2>"$WORK/serve.log" &
  serve=$!
  wait "$writer" || fail "pgbench failed: $(cat "$WORK/pgbench.log")"
  want=$("${PSQL[@]}" -At -c "select count(*) from ev")
  for _ in $(seq 300); do
    [ "$("$SLUICE" query "select count(*) from ev" --format csv | tail -1)" = "$want" ] && break
    sleep 0.1
  done
  kill -TERM "$serve"
  wait "$serve" || fail "serve failed: $(tail "$WORK/serve.log")"
  runs=$(sqlite3 "$WORK/p/.sluice/dev/metadata.sqlite" "select count(*) - 1 from runs")
else
  while kill -0 "$writer" 2>/dev/null; do
    "$SLUICE" run >/dev/null || echo "a run failed" >&2
    runs=$((runs + 1))
  done
  wait "$writer" || fail "pgbench failed: $(cat "$WORK/pgbench.log")"
  "$SLUICE" run >/dev/null
  runs=$((runs + 1))
fi
sleep 1
pkill -f "pg_recvlogical.*--slot peer" || true
wait "$peer" 2>/dev/null || true
rows=$("${PSQL[@]}" -At -c "select count(*) from ev")
got=$("$SLUICE" query "select count(*) from ev" --format csv | tail -1)
[ "$rows" = "$got" ] || fail "the warehouse has $got rows, the source $rows"
"$SLUICE" query "select inputs, epoch_us(published_at) from _sluice.publications where asset = 'ev'" \
  --format csv >"$WORK/pubs.csv"
/usr/bin/python3 - "$WORK/p/.sluice/dev" "$WORK/pubs.csv" "$RATE" "$SECS" "$runs" "$rows" \
  "$(grep -o 'tps = [0-9.]*' "$WORK/pgbench.log" | head -1)" "$WORK/peer.log" <<'PY'
import csv, datetime, json, os, re, sqlite3, sys
env, pubs_csv, rate, secs, runs, rows, tps, peer_log = sys.argv[1:9]
published = {}
for row in csv.DictReader(open(pubs_csv)):
    for sha in json.loads(row["inputs"]):
        published.setdefault(sha, int(row[list(row.keys())[1]]))
db = sqlite3.connect(os.path.join(env, "metadata.sqlite"))
capture, visible = [], []
for started, ms, path, sha in db.execute(
        "select started_at, duration_ms, object_path, sha256 from fetches "
        "where (url like '%changes of slot%' or url like '%stream of slot%') "
        "and error = '' and sha256 <> ''"):
    durable = started + ms * 1000
    pub = published.get(sha)
    with open(os.path.join(env, "lake", path)) as f:
        for r in csv.DictReader(f):
            t = datetime.datetime.fromisoformat(r["created_at"].replace("+00", "+00:00"))
            us = int(t.timestamp() * 1e6)
            capture.append((durable - us) / 1000)
            if pub is not None:
                visible.append((pub - us) / 1000)
def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")
print(f"rate asked: {rate} tx/s for {secs} s; pgbench: {tps}; rows: {rows}; sluice runs: {runs} ({os.environ.get('MODE', 'serve')})")
print(f"capture lag (commit -> raw), ms: p50 {pct(capture, .5):.0f}, p99 {pct(capture, .99):.0f}, max {max(capture):.0f} ({len(capture)} changes)")
print(f"visible lag (commit -> published), ms: p50 {pct(visible, .5):.0f}, p99 {pct(visible, .99):.0f}, max {max(visible):.0f} ({len(visible)} changes)")
peer = []
stamp = re.compile(r"created_at\[timestamp with time zone\]:'([^']+)'")
for line in open(peer_log):
    at, _, rest = line.partition(" ")
    m = stamp.search(rest)
    if not m:
        continue
    t = datetime.datetime.fromisoformat(m.group(1).replace("+00", "+00:00"))
    peer.append((int(at) - int(t.timestamp() * 1e6)) / 1000)
if peer:
    print(f"peer pg_recvlogical (commit -> line received), ms: p50 {pct(peer, .5):.1f}, p99 {pct(peer, .99):.1f}, max {max(peer):.1f} ({len(peer)} changes)")
    print(f"ratio p99 (peer / sluice capture; < 1: sluice slower): {pct(peer, .99) / pct(capture, .99):.3f}")
PY
