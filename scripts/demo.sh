#!/usr/bin/env bash
# The example projects end to end: scaffold each (first time), validate, plan,
# run, query. Run it again and the unchanged assets are skipped.
#   transit   KART's GTFS feed from local files
#   business  a Census-style API, a web-page table and a paginated API, served
#             from the example's serve/ folder on a loopback port started here
set -euo pipefail
SLUICE=$(realpath "${1:-build/release/src/sluice}")
FIXTURE_SERVER=$(realpath "$(dirname "$SLUICE")/../test/fixture_server")
DEMO_ROOT=$(realpath -m "${DEMO_ROOT:-build/demo}")

seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fs", b - a }'; }

# ---- transit ---------------------------------------------------------------
TRANSIT=$DEMO_ROOT/transit
[ -f "$TRANSIT/sluice.yaml" ] || "$SLUICE" init "$TRANSIT" --example transit
cd "$TRANSIT"
echo "== transit: sluice validate"
"$SLUICE" validate
echo
echo "== transit: sluice plan"
"$SLUICE" plan
echo
echo "== transit: sluice run"
start=$(date +%s.%N)
"$SLUICE" run
end=$(date +%s.%N)
echo
echo "== transit: the busiest stops"
"$SLUICE" query "select stop_name, route_short_name, departures_per_day, departures_per_week
                 from stop_departures order by departures_per_week desc limit 5"
echo "transit: sluice run took $(seconds "$start" "$end")"

# ---- business --------------------------------------------------------------
BUSINESS=$DEMO_ROOT/business
[ -f "$BUSINESS/sluice.yaml" ] || "$SLUICE" init "$BUSINESS" --example business
cd "$BUSINESS"
rm -f .fixture_port
"$FIXTURE_SERVER" --root "$BUSINESS/serve" --port-file .fixture_port --key demo-census-key >/dev/null &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s .fixture_port ] && break; sleep 0.05; done
port=$(cat .fixture_port)
# Point the project at the APIs served on this run's port.
sed -i "s|^  api_base: .*|  api_base: http://127.0.0.1:$port|" sluice.yaml
export CENSUS_API_KEY=demo-census-key
echo
echo "== business: APIs served from $BUSINESS/serve on http://127.0.0.1:$port"
echo "== business: sluice plan (downloads nothing)"
"$SLUICE" plan
echo
echo "== business: sluice run"
start=$(date +%s.%N)
"$SLUICE" run
end=$(date +%s.%N)
echo
echo "== business: states with stores, by people per store"
"$SLUICE" query "select usps, name, region, population, stores, people_per_store
                 from mart_state_market where stores > 0 order by people_per_store limit 5"
echo "business: sluice run took $(seconds "$start" "$end")"
echo
echo "== the fetch log: every request, the API key redacted"
sqlite3 .sluice/dev/metadata.sqlite \
  "select source, status, url from fetches where source = 'census_population' order by id desc limit 2" 2>/dev/null ||
  true

echo
echo "== summary"
for project in "$TRANSIT" "$BUSINESS"; do
  "$SLUICE" --project "$project" query "select '$(basename "$project")' as project, count(*) as assets,
      sum(rows) as rows from (select asset, rows from _sluice.publications
      qualify row_number() over (partition by asset, partition_key order by seq desc) = 1)"
done
# ---- the web UI --------------------------------------------------------------
# `sluice serve` on the transit project: its schedules, the HTTP API and the
# web UI, one process. Interactive: until Ctrl-C. Otherwise it keeps running
# in the background (stopped by the next demo, or by the kill printed below).
PIDFILE=$DEMO_ROOT/serve.pid
if [ -f "$PIDFILE" ]; then
  kill "$(cat "$PIDFILE")" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break; sleep 0.1; done
  rm -f "$PIDFILE"
fi
LOG=$DEMO_ROOT/serve.log
start_serve() {
  : >"$LOG"
  (cd "$TRANSIT" && exec setsid "$SLUICE" serve --listen "127.0.0.1:$1" </dev/null >>"$LOG" 2>&1) &
  SERVE_PID=$!
  UI_URL=
  for _ in $(seq 100); do
    UI_URL=$(sed -n 's|.*HTTP API on \(http://[^ ]*\)/$|\1|p' "$LOG" | tail -1)
    [ -n "$UI_URL" ] && return 0
    kill -0 "$SERVE_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# Port 8080 (DEMO_PORT), or any free one when it is taken.
start_serve "${DEMO_PORT:-8080}" || start_serve 0 || { cat "$LOG"; exit 1; }
echo "$SERVE_PID" >"$PIDFILE"
curl -sf -o /dev/null "$UI_URL/" || { echo "the web UI did not answer at $UI_URL/" >&2; exit 1; }

cat <<EOT

Try next:
  cd $TRANSIT && $SLUICE run          # again: unchanged assets are skipped
  $SLUICE --project $TRANSIT lineage stop_departures
  $SLUICE --project $BUSINESS runs
  edit $TRANSIT/models/route_service_span.sql, then: $SLUICE --project $TRANSIT plan

== the web UI of the transit project: $UI_URL/
   (its log: $LOG)
EOT
if [ -t 0 ] && [ -t 1 ]; then
  echo "   Ctrl-C stops it."
  trap 'kill "$SERVE_PID" 2>/dev/null; rm -f "$PIDFILE"; exit 0' INT TERM
  wait "$SERVE_PID" || true
else
  echo "   It runs in the background; stop it with: kill $SERVE_PID"
fi
