#!/usr/bin/env bash
# bench/scheduler: the executor's overhead per task, beside two peers.
# For each size N, a generated project of N trivial models (each a table of
# a few rows selected from one seed) is
#   built from nothing        (`sluice run`: ms per model, end to end),
#   re-run with nothing to do (`sluice run` again: total ms),
#   planned warm              (`sluice plan`: total ms),
# beside `make -j2` running N no-op targets, Celery (Debian's
# python3-celery, a local redis-server as broker and result backend, a
# worker of 2 processes) dispatching N no-op tasks and collecting their
# results, and the engine's own floor (bench/duckdb_models.cpp: only the
# statements a build cannot do without, straight on DuckDB, 4 threads, one
# commit a model as Sluice's models make).
# Each figure is the median of RUNS runs (default 3). BLOCK_SIZE=16KB (or
# 32KB ... 256KB) builds the projects with `defaults: {block_size: ...}` and
# the floor with the same block size (DuckDB's default: 256KB);
# QUERY_THREADS=1 builds them with `defaults: {query_threads: 1}` and the
# floor with DuckDB's `threads` as that (DuckDB's default: one per CPU).
#   [BLOCK_SIZE=16KB] [QUERY_THREADS=1] bench/scheduler/run.sh [SLUICE_BINARY] [SIZES...]
# Needs redis-server and python3-celery (scripts/bootstrap.sh bench).
set -euo pipefail
SLUICE=$(realpath "${1:-build/release/src/sluice}")
shift || true
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1000 2000 5000 10000)
RUNS=${RUNS:-3}
BLOCK_SIZE=${BLOCK_SIZE:-}
BLOCK_BYTES=0
if [ -n "$BLOCK_SIZE" ]; then
  BLOCK_BYTES=$(($(echo "$BLOCK_SIZE" | tr -dc '0-9') * 1024))
fi
QUERY_THREADS=${QUERY_THREADS:-}
FLOOR=${FLOOR_BINARY:-$(dirname "$SLUICE")/../bench/duckdb_models}
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${BENCH_DIR:-$(pwd)/bench/data}/scheduler
mkdir -p "$DATA"

ms_of() {  # runs "$@" quietly; prints its wall time in ms
  local s e
  s=$(date +%s%N)
  "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; return 1; }
  e=$(date +%s%N)
  echo $(((e - s) / 1000000))
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
per() { awk -v t="$1" -v n="$2" 'BEGIN {printf "%.2f", t / n}'; }

make_project() {  # N -> the project folder
  local n=$1 dir="$DATA/models_$1${BLOCK_SIZE:+_$BLOCK_SIZE}${QUERY_THREADS:+_qt$QUERY_THREADS}"
  if [ ! -f "$dir/sluice.yaml" ]; then
    rm -rf "$dir" && mkdir -p "$dir/models" "$dir/seeds"
    printf 'name: scheduler_bench\n' >"$dir/sluice.yaml"
    local defaults=()
    [ -z "$BLOCK_SIZE" ] || defaults+=("block_size: $BLOCK_SIZE")
    [ -z "$QUERY_THREADS" ] || defaults+=("query_threads: $QUERY_THREADS")
    if [ ${#defaults[@]} -gt 0 ]; then
      (IFS=,; printf 'defaults: {%s}\n' "${defaults[*]}") >>"$dir/sluice.yaml"
    fi
    printf 'id,v\n1,a\n2,b\n3,c\n' >"$dir/seeds/base.csv"
    for i in $(seq 1 "$n"); do
      echo "select id, v from base where id <= $((i % 3 + 1))" >"$dir/models/m$i.sql"
    done
  fi
  echo "$dir"
}

make_makefile() {  # N -> a Makefile of N phony no-op targets
  local n=$1 file="$DATA/make_$1.mk"
  if [ ! -f "$file" ]; then
    {
      printf '.PHONY: all'
      for i in $(seq 1 "$n"); do printf ' t%d' "$i"; done
      printf '\nall:'
      for i in $(seq 1 "$n"); do printf ' t%d' "$i"; done
      printf '\n'
      for i in $(seq 1 "$n"); do printf 't%d:\n\t@:\n' "$i"; done
    } >"$file"
  fi
  echo "$file"
}

# The Celery peer: a private redis-server and one worker for all sizes.
# Debian's python3 (with Debian's python3-celery), not one earlier on PATH.
PY=${BENCH_PYTHON:-/usr/bin/python3}
REDIS_PORT=${BENCH_REDIS_PORT:-6390}
CELERY_OK=0
if command -v redis-server >/dev/null && "$PY" -c 'import celery, redis' 2>/dev/null; then
  CELERY_OK=1
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no >"$DATA/redis.log" 2>&1 &
  REDIS_PID=$!
  (cd "$HERE" && BENCH_REDIS_PORT=$REDIS_PORT exec "$PY" -m celery -A celery_peer worker \
    --concurrency=2 --pool=prefork --loglevel=WARNING --without-gossip --without-mingle \
    --without-heartbeat) >"$DATA/celery.log" 2>&1 &
  WORKER_PID=$!
  trap 'kill $WORKER_PID $REDIS_PID 2>/dev/null; wait 2>/dev/null' EXIT
else
  echo "celery: skipped (apt-get install redis-server python3-celery python3-redis)" >&2
fi

printf '%-7s %12s %12s %12s %12s %14s %12s %10s %14s\n' models 'run ms/model' 'run total s' \
  'no-op run ms' 'plan ms' 'make -j2 ms/t' 'celery ms/t' 'ratio' 'floor ms/model'
for n in "${SIZES[@]}"; do
  dir=$(make_project "$n")
  mk=$(make_makefile "$n")
  builds=(); noops=(); plans=(); makes=(); celerys=(); floors=()
  for _ in $(seq 1 "$RUNS"); do
    rm -rf "$dir/.sluice"
    builds+=("$(ms_of "$SLUICE" --project "$dir" run)")
    wh_mb=$(($(stat -c %s "$dir/.sluice/dev/warehouse.duckdb") / 1048576))
    noops+=("$(ms_of "$SLUICE" --project "$dir" run)")
    plans+=("$(ms_of "$SLUICE" --project "$dir" plan)")
    makes+=("$(ms_of make -j2 -s -f "$mk" all)")
    if [ -x "$FLOOR" ]; then
      floors+=("$("$FLOOR" "$n" "$DATA/floor.duckdb" 4 one "$BLOCK_BYTES" ${QUERY_THREADS:+"$QUERY_THREADS"})")
      rm -f "$DATA/floor.duckdb" "$DATA/floor.duckdb.wal"
    fi
    if [ "$CELERY_OK" = 1 ]; then
      celerys+=("$(cd "$HERE" && BENCH_REDIS_PORT=$REDIS_PORT "$PY" celery_peer.py "$n")")
    fi
  done
  b=$(median "${builds[@]}")
  m=$(median "${makes[@]}")
  c="-"; ratio="-"
  if [ "$CELERY_OK" = 1 ]; then
    c=$(per "$(median "${celerys[@]}")" "$n")
    ratio=$(awk -v c="$c" -v s="$(per "$b" "$n")" 'BEGIN {printf "%.1fx", c / s}')
  fi
  f="-"
  [ ${#floors[@]} -gt 0 ] && f=$(median "${floors[@]}")
  printf '%-7s %12s %12s %12s %12s %14s %12s %10s %14s\n' "$n" "$(per "$b" "$n")" \
    "$(per "$b" 1000)" "$(median "${noops[@]}")" "$(median "${plans[@]}")" \
    "$(per "$m" "$n")" "$c" "$ratio" "$f"
  echo "  warehouse ${wh_mb} MB${BLOCK_SIZE:+ (block_size $BLOCK_SIZE)}${QUERY_THREADS:+ (query_threads $QUERY_THREADS)}; runs (ms): build ${builds[*]} | no-op ${noops[*]} | plan ${plans[*]} | make ${makes[*]}${celerys:+ | celery ${celerys[*]}}${floors:+ | floor ms/model ${floors[*]}}"
done
echo "ratio: Celery's ms per task / Sluice's ms per model (above 1: Sluice is faster)"
