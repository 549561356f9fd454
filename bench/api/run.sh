#!/usr/bin/env bash
# bench/api: the dataset API under wrk, beside the reference stack and the
# box's ceiling, on the same 100,000-row table:
#   sluice     `sluice serve` answering GET /api/v1/data/trips (its response
#              cache keyed on publications);
#   reference  FastAPI + uvicorn (2 workers) over SQLite (the filtered
#              column indexed) with a Redis TTL cache (reference_app.py);
#   nginx      the same response bytes as a static file: the ceiling.
# Two loads, each DURATION seconds (default 10) with 32 connections:
#   cached     one filtered query repeated;
#   uncached   a new filter value every request (paths.lua), so no answer
#              is ever served from a cache: on `stop`, which Sluice declares
#              a lookup (server: {lookups:}) as the reference indexes it,
#              then on `id` (no lookup: each read goes to the warehouse; the
#              reference's primary key).
# wrk runs pinned to CPU 1 (taskset -c 1) and every server to CPU 0, so the
# load generator never competes with what it measures. Prints requests/s
# and p99 for each, and the ratios.
#   bench/api/run.sh [SLUICE_BINARY]
# Needs wrk, redis-server, python3-fastapi, python3-uvicorn, python3-redis,
# nginx-light (scripts/bootstrap.sh bench).
set -euo pipefail
SLUICE=$(realpath "${1:-build/release/src/sluice}")
HERE=$(cd "$(dirname "$0")" && pwd)
DURATION=${DURATION:-10}
DATA=${BENCH_DIR:-$(pwd)/bench/data}/api
ROWS=100000
mkdir -p "$DATA"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {  # URL: waits until it answers 200
  for _ in $(seq 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ] && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2
  return 1
}

# The table: id, route, stop (a distinct value per row, shuffled), value, day.
if [ ! -f "$DATA/trips.csv" ]; then
  /usr/bin/python3 - "$DATA/trips.csv" "$ROWS" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    f.write("id,route,stop,value,day\n")
    for i in range(n):
        f.write(f"{i},R{i % 40},{(i * 7919) % n},{(i * 37 % 1000) / 10},2026-{1 + i % 12:02d}-{1 + i % 28:02d}\n")
PY
fi
rm -f "$DATA/trips.sqlite"
/usr/bin/python3 - "$DATA/trips.csv" "$DATA/trips.sqlite" <<'PY'
import csv, sqlite3, sys
conn = sqlite3.connect(sys.argv[2])
conn.execute("CREATE TABLE trips (id INTEGER PRIMARY KEY, route TEXT, stop INTEGER, value REAL, day TEXT)")
with open(sys.argv[1]) as f:
    rows = csv.reader(f)
    next(rows)
    conn.executemany("INSERT INTO trips VALUES (?, ?, ?, ?, ?)", rows)
conn.execute("CREATE INDEX trips_route ON trips (route)")
conn.execute("CREATE INDEX trips_stop ON trips (stop)")
conn.commit()
PY

# Sluice: the table as a seed with its key, served by `sluice serve`.
PROJECT="$DATA/project"
rm -rf "$PROJECT" && mkdir -p "$PROJECT/seeds"
SLUICE_PORT=$(free_port)
# `stop` declared a lookup (as the reference indexes it); `id` not, so its
# reads go to the warehouse.
printf 'name: api_bench\nserver: {listen: "127.0.0.1:%s", lookups: {trips: [stop]}}\n' \
  "$SLUICE_PORT" >"$PROJECT/sluice.yaml"
cp "$DATA/trips.csv" "$PROJECT/seeds/trips.csv"
printf 'key: [id]\n' >"$PROJECT/seeds/trips.yaml"
(cd "$PROJECT" && "$SLUICE" run >/dev/null)
(cd "$PROJECT" && exec taskset -c 0 "$SLUICE" serve >"$DATA/sluice.log" 2>&1) &
PIDS+=($!)
wait_http "http://127.0.0.1:$SLUICE_PORT/healthz"

# The reference: redis + uvicorn with 2 workers.
REDIS_PORT=$(free_port)
taskset -c 0 redis-server --port "$REDIS_PORT" --save '' --appendonly no >"$DATA/redis.log" 2>&1 &
PIDS+=($!)
REF_PORT=$(free_port)
(cd "$HERE" && BENCH_SQLITE="$DATA/trips.sqlite" BENCH_REDIS_PORT="$REDIS_PORT" \
  exec taskset -c 0 /usr/bin/python3 -m uvicorn reference_app:app --workers 2 \
  --host 127.0.0.1 --port "$REF_PORT" --log-level warning >"$DATA/uvicorn.log" 2>&1) &
PIDS+=($!)
wait_http "http://127.0.0.1:$REF_PORT/data/trips?_limit=1"

# nginx: Sluice's cached answer as a static file.
CACHED_PATH="/api/v1/data/trips?route=R7&_limit=100"
mkdir -p "$DATA/nginx/root"
curl -s "http://127.0.0.1:$SLUICE_PORT$CACHED_PATH" >"$DATA/nginx/root/answer.json"
NGINX_PORT=$(free_port)
cat >"$DATA/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $DATA/nginx/nginx.pid;
error_log $DATA/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $DATA/nginx/root;
    location / { default_type application/json; try_files /answer.json =404; }
  }
}
CONF
taskset -c 0 nginx -c "$DATA/nginx/nginx.conf" -p "$DATA/nginx" &
PIDS+=($!)
wait_http "http://127.0.0.1:$NGINX_PORT/x"

load() {  # URL [lua] -> "req/s p99_ms"
  local url=$1 script=${2:-}
  local args=(-t1 -c32 -d"${DURATION}s" --latency)
  [ -n "$script" ] && args+=(-s "$script")
  local out
  out=$(taskset -c 1 wrk "${args[@]}" "$url")
  local rps p99 errors
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' <<<"$out")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
  [ -z "$errors" ] || echo "  ($url: $errors)" >&2
  echo "$rps $p99"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

echo "warming up" >&2
curl -s "http://127.0.0.1:$REF_PORT/data/trips?route=R7&_limit=100" >/dev/null
read -r S_C S_C99 < <(load "http://127.0.0.1:$SLUICE_PORT$CACHED_PATH")
read -r R_C R_C99 < <(load "http://127.0.0.1:$REF_PORT/data/trips?route=R7&_limit=100")
read -r N_C N_C99 < <(load "http://127.0.0.1:$NGINX_PORT/answer.json")
read -r S_U S_U99 < <(BENCH_PATH="/api/v1/data/trips?stop=%d&_limit=100" load \
  "http://127.0.0.1:$SLUICE_PORT/" "$HERE/paths.lua")
read -r R_U R_U99 < <(BENCH_PATH="/data/trips?stop=%d&_limit=100" load \
  "http://127.0.0.1:$REF_PORT/" "$HERE/paths.lua")
read -r S_W S_W99 < <(BENCH_PATH="/api/v1/data/trips?id=%d&_limit=100" load \
  "http://127.0.0.1:$SLUICE_PORT/" "$HERE/paths.lua")
read -r R_W R_W99 < <(BENCH_PATH="/data/trips?id=%d&_limit=100" load \
  "http://127.0.0.1:$REF_PORT/" "$HERE/paths.lua")

echo
echo "| load | sluice req/s | p99 ms | reference req/s | p99 ms | nginx req/s | p99 ms | sluice / reference | sluice / nginx |"
echo "|---|---|---|---|---|---|---|---|---|"
echo "| cached (one query repeated) | $S_C | $S_C99 | $R_C | $R_C99 | $N_C | $N_C99 | $(ratio "$S_C" "$R_C")× | $(ratio "$S_C" "$N_C")× |"
echo "| uncached (a new value each request) | $S_U | $S_U99 | $R_U | $R_U99 | – | – | $(ratio "$S_U" "$R_U")× | – |"
echo "| uncached, no lookup (id=, a warehouse read) | $S_W | $S_W99 | $R_W | $R_W99 | – | – | $(ratio "$S_W" "$R_W")× | – |"
echo
echo "wrk -t1 -c32 -d${DURATION}s pinned to CPU 1; servers pinned to CPU 0; $ROWS rows."
