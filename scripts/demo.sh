#!/usr/bin/env bash
# The example project end to end: scaffold it (first time), validate, plan,
# run, query. Run it again and the unchanged assets are skipped.
set -euo pipefail
SLUICE=$(realpath "${1:-build/release/src/sluice}")
DEMO_DIR=${DEMO_DIR:-build/demo/transit}

if [ ! -f "$DEMO_DIR/sluice.yaml" ]; then
  "$SLUICE" init "$DEMO_DIR" --example transit
fi
cd "$DEMO_DIR"
echo "== sluice validate"
"$SLUICE" validate
echo
echo "== sluice plan"
"$SLUICE" plan
echo
echo "== sluice run"
start=$(date +%s.%N)
"$SLUICE" run
end=$(date +%s.%N)
echo
echo "== sluice query: the busiest stops"
"$SLUICE" query "select stop_name, route_short_name, departures_per_day, departures_per_week
                 from stop_departures order by departures_per_week desc limit 5"
echo
echo "== summary"
"$SLUICE" query "select count(*) as assets, sum(rows) as rows
                 from (select asset, rows from _sluice.publications
                       qualify row_number() over (partition by asset order by seq desc) = 1)"
awk -v a="$start" -v b="$end" 'BEGIN { printf "sluice run took %.2fs\n", b - a }'
cat <<EOT

Try next (in $DEMO_DIR):
  $SLUICE run                       # again: unchanged assets are skipped
  $SLUICE lineage stop_departures   # what it reads, what reads it
  $SLUICE query "select * from route_service_span"
  $SLUICE runs                      # the run history
  edit models/route_service_span.sql, then: $SLUICE plan
EOT
