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
cat <<EOT

Try next:
  cd $TRANSIT && $SLUICE run          # again: unchanged assets are skipped
  $SLUICE --project $TRANSIT lineage stop_departures
  $SLUICE --project $BUSINESS runs
  edit $TRANSIT/models/route_service_span.sql, then: $SLUICE --project $TRANSIT plan
EOT
