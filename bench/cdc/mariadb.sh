#!/usr/bin/env bash
# bench/cdc/mariadb.sh: change-capture lag from MariaDB's binlog at a steady
# write rate — run.sh's measure, for the binlog reader. Starts MariaDB
# (log_bin, binlog_format = ROW, binlog_row_metadata = FULL) from Debian's
# packages in a temp folder, snapshots a table once, then inserts into it
# at RATE transactions a second for SECS seconds (one autocommit INSERT
# each, paced by a small Python loop feeding the mariadb client) while
# Sluice captures it: MODE=serve (default) — `sluice serve` keeps a binlog
# dump open and runs the source as batches arrive (publish_every: 0s);
# MODE=runs — `sluice run` back to back. For every row, from Sluice's own
# records:
#   capture lag — the row's commit (NOW(6) at insert) to the end of the
#                 read that wrote it to the raw lake (fetch log);
#   visible lag — the same commit to the publication that made it public.
# The peer, side by side on the same writes: MariaDB's own mariadb-binlog
# streaming the binlog from the server (--read-from-remote-server
# --stop-never, rows decoded), each row stamped when it arrives — a direct
# binlog reader. A benchmark, not a test.
#
#   [MODE=serve|runs] bench/cdc/mariadb.sh build/release/src/sluice [RATE] [SECS]   (default 1000 60)
set -euo pipefail
SLUICE=$(realpath "$1")
RATE=${2:-1000}
SECS=${3:-60}
export MODE=${MODE:-serve}
export WORK=$(mktemp -d /tmp/sluice-bench-cdc-my.XXXXXX)
LIB_DIR=$(dirname "$(realpath "$0")")/../../test
fail() { echo "FAIL: $*" >&2; exit 1; }
# shellcheck source=../../test/case_lib.sh
source "$LIB_DIR/case_lib.sh"
trap 'bash "$WORK/.stop" >/dev/null 2>&1 || true; xargs -r kill -9 <"$WORK/.pids" 2>/dev/null || true; rm -rf "$WORK"' EXIT
MARIADB_EXTRA="--log-bin=$WORK/mysql/binlog --binlog-format=ROW --binlog-row-metadata=FULL --server-id=7" \
  start_mariadb
ROOT=(mariadb --no-defaults -uroot --socket="$WORK/mysql/sock")
"${ROOT[@]}" -e "grant replication slave, binlog monitor on *.* to 'sluice'@'127.0.0.1';
  grant replication slave, binlog monitor on *.* to 'sluice'@'localhost'"
"${MYSQL[@]}" -e "create table ev (id bigint unsigned auto_increment primary key, v int, note text,
  created_at datetime(6) not null)"
mkdir -p "$WORK/p/sources"
cd "$WORK/p"
printf 'name: bench\nsecrets: [env]\n' >sluice.yaml
export BENCH_MY=$MARIADB_URL
cat >sources/src.yaml <<'YAML'
database:
  url: "${secret:BENCH_MY}"
  cdc: {slot: bench_slot, binlog: true, publish_every: 0s}
tables:
  ev: {table: ev, key: [id]}
YAML
"$SLUICE" run >/dev/null
# The peer: the server's binlog from its current position, rows decoded.
read -r file pos < <("${ROOT[@]}" -N -e "show master status" | cut -f1,2)
mariadb-binlog --no-defaults --read-from-remote-server --stop-never --host=127.0.0.1 \
  --port="$MARIADB_PORT" --user=sluice --password="$MARIADB_PASSWORD" --start-position="$pos" \
  --base64-output=decode-rows -v "$file" 2>"$WORK/peer.err" |
  /usr/bin/python3 -c '
import sys, time
out = open(sys.argv[1], "w")
while True:
    line = sys.stdin.buffer.readline()
    if not line:
        break
    if line.startswith(b"###   @4="):
        out.write("%d %s" % (time.time_ns() // 1000, line.decode()))
        out.flush()' "$WORK/peer.log" &
peer=$!
echo "writing $RATE transactions/s for $SECS s, capturing ($MODE)..."
/usr/bin/python3 -c '
import sys, time
rate, secs = int(sys.argv[1]), int(sys.argv[2])
start = time.monotonic()
n = 0
while True:
    now = time.monotonic() - start
    if now >= secs:
        break
    due = int(now * rate) + 1
    while n < due:
        sys.stdout.write("insert into ev (v, note, created_at) values (%d, \"x\", now(6));\n" % (n % 1000))
        n += 1
    sys.stdout.flush()
    time.sleep(0.001)
sys.stderr.write("%d inserts\n" % n)' "$RATE" "$SECS" 2>"$WORK/writer.log" |
  "${MYSQL[@]}" --init-command="set time_zone = '+00:00'" &
writer=$!
runs=0
if [ "$MODE" = serve ]; then
  "$SLUICE" serve --listen off 2>"$WORK/serve.log" &
  serve=$!
  wait "$writer" || fail "the writer failed: $(cat "$WORK/writer.log")"
  want=$("${MYSQL[@]}" -N -e "select count(*) from ev")
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
  wait "$writer" || fail "the writer failed: $(cat "$WORK/writer.log")"
  "$SLUICE" run >/dev/null
  runs=$((runs + 1))
fi
sleep 1
pkill -f "mariadb-binlog.*--stop-never" || true
wait "$peer" 2>/dev/null || true
rows=$("${MYSQL[@]}" -N -e "select count(*) from ev")
got=$("$SLUICE" query "select count(*) from ev" --format csv | tail -1)
[ "$rows" = "$got" ] || fail "the warehouse has $got rows, the source $rows"
"$SLUICE" query "select inputs, epoch_us(published_at) from _sluice.publications where asset = 'ev'" \
  --format csv >"$WORK/pubs.csv"
/usr/bin/python3 - "$WORK/p/.sluice/dev" "$WORK/pubs.csv" "$RATE" "$SECS" "$runs" "$rows" \
  "$(cat "$WORK/writer.log")" "$WORK/peer.log" <<'PY'
import csv, datetime, json, os, re, sqlite3, sys
env, pubs_csv, rate, secs, runs, rows, written, peer_log = sys.argv[1:9]
published = {}
for row in csv.DictReader(open(pubs_csv)):
    for sha in json.loads(row["inputs"]):
        published.setdefault(sha, int(row[list(row.keys())[1]]))
db = sqlite3.connect(os.path.join(env, "metadata.sqlite"))
def micros(text):
    t = datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp() * 1e6)
capture, visible = [], []
for started, ms, path, sha in db.execute(
        "select started_at, duration_ms, object_path, sha256 from fetches "
        "where (url like '%changes of slot%' or url like '%stream of slot%') "
        "and error = '' and sha256 <> ''"):
    durable = started + ms * 1000
    pub = published.get(sha)
    with open(os.path.join(env, "lake", path)) as f:
        for r in csv.DictReader(f):
            us = micros(r["created_at"])
            capture.append((durable - us) / 1000)
            if pub is not None:
                visible.append((pub - us) / 1000)
def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")
print(f"rate asked: {rate} tx/s for {secs} s; written: {written}; rows: {rows}; sluice runs: {runs} ({os.environ['MODE']})")
print(f"capture lag (commit -> raw), ms: p50 {pct(capture, .5):.0f}, p99 {pct(capture, .99):.0f}, max {max(capture):.0f} ({len(capture)} changes)")
print(f"visible lag (commit -> published), ms: p50 {pct(visible, .5):.0f}, p99 {pct(visible, .99):.0f}, max {max(visible):.0f} ({len(visible)} changes)")
peer = []
stamp = re.compile(r"@4='([0-9-]+ [0-9:.]+)'")
for line in open(peer_log):
    at, _, rest = line.partition(" ")
    m = stamp.search(rest)
    if m:
        peer.append((int(at) - micros(m.group(1))) / 1000)
if peer:
    print(f"peer mariadb-binlog (commit -> row received), ms: p50 {pct(peer, .5):.1f}, p99 {pct(peer, .99):.1f}, max {max(peer):.1f} ({len(peer)} changes)")
    print(f"ratio p99 (peer / sluice capture; < 1: sluice slower): {pct(peer, .99) / pct(capture, .99):.3f}")
PY
