#!/usr/bin/env bash
# bench/extract: a PostgreSQL table read into the raw lake by Sluice, beside
# `psql \copy (…) to FILE csv` of the same table — the peer every tool is
# measured against — and the same for MariaDB beside `mariadb --quick`.
# Starts both servers from Debian's packages in a temp folder on free ports
# (the test harness's helpers), fills a table of ROWS rows (id, a timestamp,
# a numeric(12,2), text, a boolean, a jsonb in PostgreSQL), then runs each
# side 3 times and prints the best times and ratios. A benchmark, not a test.
#
#   bench/extract/run.sh build/release/src/sluice [ROWS]   (default 10000000)
set -euo pipefail
SLUICE=$(realpath "$1")
ROWS=${2:-10000000}
export WORK=$(mktemp -d /tmp/sluice-bench-extract.XXXXXX)
LIB_DIR=$(dirname "$(realpath "$0")")/../../test
fail() { echo "FAIL: $*" >&2; exit 1; }
# shellcheck source=../../test/case_lib.sh
source "$LIB_DIR/case_lib.sh"
trap 'bash "$WORK/.stop" >/dev/null 2>&1 || true; xargs -r kill -9 <"$WORK/.pids" 2>/dev/null || true; rm -rf "$WORK"' EXIT
start_postgres
start_mariadb
echo "filling $ROWS rows in PostgreSQL and MariaDB..."
"${PSQL[@]}" -c "create table t as select g as id, timestamptz '2024-01-01' + g * interval '1 second' as at,
  ((g % 100000) / 100.0)::numeric(12,2) as amount, 'item ' || g as name, g % 2 = 0 as flag,
  jsonb_build_object('g', g) as doc from generate_series(1, $ROWS) g" >/dev/null
"${PSQL[@]}" -c "vacuum analyze t" >/dev/null
mariadb --no-defaults -uroot --socket="$WORK/mysql/sock" sluice -e "
  create table t (id bigint primary key, at datetime, amount decimal(12,2), name varchar(40), flag boolean);
  insert into t select seq, '2024-01-01' + interval seq second, (seq % 100000) / 100.0,
    concat('item ', seq), seq % 2 = 0 from seq_1_to_$ROWS;"
mkdir -p "$WORK/p/sources"
cd "$WORK/p"
printf 'name: bench\nsecrets: [env]\n' >sluice.yaml
export BENCH_PG=$PG_URL BENCH_MY=$MARIADB_URL
printf 'database: {url: "${secret:BENCH_PG}", table: public.t}\n' >sources/pg_t.yaml
printf 'database: {url: "${secret:BENCH_MY}", table: t}\n' >sources/my_t.yaml

best() { sort -n | head -1; }
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }
# Sluice's read into the lake: the task's "fetch" phase (connect, COPY,
# write + SHA-256, fsync, rename, fetch log), from the run's own timings.
fetch_ms() {
  "$SLUICE" --json run "$1" --full-refresh |
    /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin); t=[x for x in r["tasks"] if x["asset"]==sys.argv[1]][0]; print(dict(t["timings"])["fetch"] if isinstance(t["timings"], list) else t["timings"]["fetch"])' "$1"
}
pg_peer=() my_peer=() pg_sl=() my_sl=() pg_total=() my_total=()
for i in 1 2 3; do
  rm -f "$WORK/peer.csv"
  pg_peer+=("$(secs "${PSQL[@]}" -c "\\copy (select * from t) to '$WORK/peer.csv' csv header")")
  rm -f "$WORK/peer.csv"
  my_peer+=("$(secs bash -c "mariadb --no-defaults -usluice -p$MARIADB_PASSWORD -h 127.0.0.1 -P $MARIADB_PORT --quick --batch sluice -e 'select * from t' >'$WORK/peer.tsv'")")
  rm -f "$WORK/peer.tsv"
  rm -rf .sluice/dev/lake/raw
  pg_total+=("$(secs "$SLUICE" run pg_t --full-refresh)")
  rm -rf .sluice/dev/lake/raw
  pg_sl+=("$(fetch_ms pg_t)")
  rm -rf .sluice/dev/lake/raw
  my_sl+=("$(fetch_ms my_t)")
done
P=$(printf '%s\n' "${pg_peer[@]}" | best)
S=$(printf '%s\n' "${pg_sl[@]}" | best)
M=$(printf '%s\n' "${my_peer[@]}" | best)
MS=$(printf '%s\n' "${my_sl[@]}" | best)
T=$(printf '%s\n' "${pg_total[@]}" | best)
echo "rows: $ROWS"
echo "postgres: psql \\copy to a file: runs ${pg_peer[*]} s; best $P s"
echo "postgres: sluice read into the lake (fetch phase): runs ${pg_sl[*]} ms; best $S ms"
echo "postgres: sluice run (read + load + publish): runs ${pg_total[*]} s; best $T s"
echo "postgres: ratio (peer time / sluice time, >= 1 is as fast or faster): $(echo "scale=2; $P * 1000 / $S" | bc)"
echo "mariadb: mariadb --quick to a file: runs ${my_peer[*]} s; best $M s"
echo "mariadb: sluice read into the lake (fetch phase): runs ${my_sl[*]} ms; best $MS ms"
echo "mariadb: ratio: $(echo "scale=2; $M * 1000 / $MS" | bc)"
