#!/usr/bin/env bash
# bench/extract/chunks.sh: what chunk_rows costs. A PostgreSQL table of ROWS
# rows (bigint key, timestamptz, numeric(12,2), text) read whole by
# `sluice run` (read into the lake, load, publish: the whole run, best of 3,
# a fresh project each time) in one pass, and in chunks of 500,000 and
# 100,000 rows (key order, one query and one raw object a chunk). The peer
# is Sluice's own one-pass read. A benchmark, not a test.
#
#   bench/extract/chunks.sh build/release/src/sluice [ROWS]   (default 2000000)
set -euo pipefail
SLUICE=$(realpath "$1")
ROWS=${2:-2000000}
export WORK=$(mktemp -d /tmp/sluice-bench-chunks.XXXXXX)
LIB_DIR=$(dirname "$(realpath "$0")")/../../test
fail() { echo "FAIL: $*" >&2; exit 1; }
# shellcheck source=../../test/case_lib.sh
source "$LIB_DIR/case_lib.sh"
trap 'bash "$WORK/.stop" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
start_postgres
"${PSQL[@]}" -c "create table t (id bigint primary key, ts timestamptz, amount numeric(12,2), note text);
  insert into t select i, now() - i * interval '1 second', (i % 10000) / 100.0, md5(i::text)
  from generate_series(1, $ROWS) i; analyze t" >/dev/null
mkdir -p "$WORK/p/sources"
cd "$WORK/p"
printf 'name: b\nsecrets: [env]\n' >sluice.yaml
export B_PG=$PG_URL
one=0
for chunk in 0 500000 100000; do
  extra=""
  [ "$chunk" = 0 ] || extra="chunk_rows: $chunk"
  printf 'database: {url: "${secret:B_PG}", table: public.t}\nkey: [id]\n%s\n' "$extra" >sources/t.yaml
  best=999999999
  for _ in 1 2 3; do
    rm -rf .sluice
    s=$(date +%s%N)
    "$SLUICE" run >/dev/null
    e=$(date +%s%N)
    ms=$(((e - s) / 1000000))
    [ "$ms" -lt "$best" ] && best=$ms
  done
  rows=$("$SLUICE" query "select count(*) from t" --format csv | tail -1)
  [ "$rows" = "$ROWS" ] || fail "read $rows rows of $ROWS"
  [ "$chunk" = 0 ] && one=$best
  echo "chunk_rows=$chunk: $best ms (best of 3 runs, $rows rows); ratio one-pass/this: $(python3 -c "print(f'{$one / $best:.2f}')")"
done
