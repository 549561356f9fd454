#!/usr/bin/env bash
# bench/ingest/http.sh: collection over loopback HTTP, two measurements.
#  1. The ~1 GB CSV of bench/ingest/run.sh served by a static HTTP server
#     (python3 -m http.server), `sluice run` on an http:// source (download
#     streamed to the lake while hashed, fetch log, DuckDB load, publish),
#     against DuckDB's own load of the same file from disk (duckdb_load).
#  2. A 10,000-page JSON API (the test suite's fixture_server, 10 records a
#     page): `sluice run` with paginate: {type: page} (each page fetched,
#     hashed, stored, logged; then one scan loads all pages), against a
#     Python loop that fetches the same pages and writes each durably to a file
#     named by its SHA-256 — the glue script it replaces.
# Prints times, pages/s and ratios. A benchmark, not a test.
#   bench/ingest/http.sh [SLUICE_BINARY] [SIZE_MB] [PAGES]
set -euo pipefail
SLUICE=$(realpath "${1:-build/release/src/sluice}")
SIZE_MB=${2:-1024}
PAGES=${3:-10000}
BUILD=$(dirname "$(dirname "$SLUICE")")
LOADER=$BUILD/bench/duckdb_load
FIXTURE=$BUILD/test/fixture_server
WORK=${BENCH_DIR:-$(pwd)/bench/data}
HERE=$(dirname "$(realpath "$0")")
mkdir -p "$WORK"
GENERATE_ONLY=1 BENCH_DIR=$WORK "$HERE/run.sh" "$SLUICE" "$SIZE_MB"
CSV=$WORK/events_${SIZE_MB}mb.csv
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
best() { printf '%s\n' "$@" | sort -g | head -1; }
timed() {
  local s e
  s=$(date +%s.%N)
  "$@" >/dev/null
  e=$(date +%s.%N)
  awk -v a="$s" -v b="$e" 'BEGIN { printf "%.3f\n", b - a }'
}

# ---- 1. the 1 GB CSV over HTTP ----------------------------------------------
# nginx when installed (Debian's nginx-light: sendfile, the way files are
# served in production), else python3 -m http.server.
port=$(free_port)
if command -v nginx >/dev/null; then
  SERVER=nginx
  mkdir -p "$WORK/nginx"
  cat >"$WORK/nginx/nginx.conf" <<EOT
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events {}
http {
  access_log off;
  sendfile on;
  client_body_temp_path $WORK/nginx;
  proxy_temp_path $WORK/nginx;
  fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx;
  scgi_temp_path $WORK/nginx;
  server { listen 127.0.0.1:$port; root $WORK; }
}
EOT
  nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
else
  SERVER="python3 -m http.server"
  python3 -m http.server "$port" --bind 127.0.0.1 --directory "$WORK" >/dev/null 2>&1 &
fi
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
run_duckdb() {
  rm -f "$WORK/peer.duckdb" "$WORK/peer.duckdb.wal"
  "$LOADER" "$CSV" "$WORK/peer.duckdb" 2GB | cut -d' ' -f1
}
run_sluice_http() {
  local proj=$WORK/http_project
  rm -rf "$proj" && mkdir -p "$proj/sources"
  printf 'name: bench\ndefaults: {memory_limit: 2GB}\n' >"$proj/sluice.yaml"
  printf 'fetch: {url: "http://127.0.0.1:%s/%s"}\nformat: csv\n' "$port" "$(basename "$CSV")" \
    >"$proj/sources/events.yaml"
  timed "$SLUICE" --project "$proj" run
}
echo "file: $CSV ($(($(stat -c %s "$CSV") / 1024 / 1024)) MiB), served by $SERVER"
echo "download alone (curl to /dev/null): $(timed curl -s -o /dev/null "http://127.0.0.1:$port/$(basename "$CSV")")s"
sync
d1=$(run_duckdb); s1=$(run_sluice_http)
d2=$(run_duckdb); s2=$(run_sluice_http)
d3=$(run_duckdb); s3=$(run_sluice_http)
d=$(best "$d1" "$d2" "$d3"); s=$(best "$s1" "$s2" "$s3")
echo "duckdb load of the local file (best of 3): ${d}s   runs: $d1 $d2 $d3"
echo "sluice run over HTTP          (best of 3): ${s}s   runs: $s1 $s2 $s3"
awk -v d="$d" -v s="$s" 'BEGIN { printf "ratio (duckdb/sluice): %.2fx\n", d / s }'
rm -rf "$WORK/http_project" "$WORK/peer.duckdb"

# ---- 2. a 10,000-page API ---------------------------------------------------
API=$WORK/api
mkdir -p "$API"
python3 - "$API/records.json" "$((PAGES * 10))" <<'PY'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
json.dump([{"id": i, "name": f"item {i}", "price": round(i * 0.37, 2), "tags": ["a", "b"]}
           for i in range(n)], open(path, "w"))
PY
rm -f "$WORK/api.port"
"$FIXTURE" --root "$API" --port-file "$WORK/api.port" >/dev/null &
pids+=($!)
for _ in $(seq 100); do [ -s "$WORK/api.port" ] && break; sleep 0.05; done
api="http://127.0.0.1:$(cat "$WORK/api.port")/pages/page/records.json"
curl -s -o /dev/null "$api?page=1&per_page=10"  # warm the server's parse cache
run_sluice_pages() {
  local proj=$WORK/pages_project
  rm -rf "$proj" && mkdir -p "$proj/sources"
  printf 'name: bench\ndefaults: {memory_limit: 2GB}\n' >"$proj/sluice.yaml"
  cat >"$proj/sources/items.yaml" <<EOT
fetch:
  url: "$api"
  paginate: {type: page, size_param: per_page, size: 10, max_pages: $((PAGES + 1))}
format: json
options: {records: data}
EOT
  timed "$SLUICE" --project "$proj" run
  [ "$("$SLUICE" --project "$proj" query "select count(*) from items" --format csv | tail -1)" = \
    "$((PAGES * 10))" ] || { echo "sluice loaded the wrong number of rows" >&2; exit 1; }
}
# $1 = "" (identity bodies, as a bare http.client script gets them) or "br":
# ask for brotli as Sluice does (libcurl accepts every encoding it decodes,
# and the fixture server then compresses each page with brotli, ~3 ms a
# page); the stdlib cannot decode brotli, so this variant
# stores the encoded body and stops after the known number of pages.
run_python_pages() {
  rm -rf "$WORK/pages_python" && mkdir -p "$WORK/pages_python"
  timed python3 - "$api" "$WORK/pages_python" "${1:-}" "$PAGES" <<'PY'
import hashlib, http.client, json, os, sys, urllib.parse
url, out, encoding, pages = urllib.parse.urlsplit(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
headers = {"Accept-Encoding": encoding} if encoding else {}
page = 1
while True:
    # A connection per page, as Sluice makes: cpp-httplib 0.11 answers a
    # kept-alive connection's next request ~26 ms late, a new one in ~0.2 ms.
    conn = http.client.HTTPConnection(url.hostname, url.port)
    conn.request("GET", f"{url.path}?page={page}&per_page=10", headers=headers)
    body = conn.getresponse().read()
    if (page > pages) if encoding else not json.loads(body)["data"]:
        break
    digest = hashlib.sha256(body).hexdigest()
    with open(os.path.join(out, digest + ".json"), "wb") as f:
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    page += 1
PY
}
p1=$(run_python_pages); b1=$(run_python_pages br); s1=$(run_sluice_pages)
p2=$(run_python_pages); b2=$(run_python_pages br); s2=$(run_sluice_pages)
p3=$(run_python_pages); b3=$(run_python_pages br); s3=$(run_sluice_pages)
p=$(best "$p1" "$p2" "$p3"); b=$(best "$b1" "$b2" "$b3"); s=$(best "$s1" "$s2" "$s3")
echo "pages: $PAGES of 10 records"
echo "python fetch+hash+fsync loop (best of 3): ${p}s = $(awk -v n="$PAGES" -v t="$p" 'BEGIN{printf "%.0f", n/t}') pages/s   runs: $p1 $p2 $p3"
echo "the same, asking for brotli  (best of 3): ${b}s = $(awk -v n="$PAGES" -v t="$b" 'BEGIN{printf "%.0f", n/t}') pages/s   runs: $b1 $b2 $b3"
echo "sluice run, fetch to load    (best of 3): ${s}s = $(awk -v n="$PAGES" -v t="$s" 'BEGIN{printf "%.0f", n/t}') pages/s   runs: $s1 $s2 $s3"
awk -v p="$p" -v s="$s" 'BEGIN { printf "ratio (python/sluice): %.2fx\n", p / s }'
awk -v p="$b" -v s="$s" 'BEGIN { printf "ratio (python asking for brotli/sluice): %.2fx\n", p / s }'
rm -rf "$WORK/pages_project" "$WORK/pages_python"
