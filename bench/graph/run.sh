#!/usr/bin/env bash
# bench/graph: `sluice validate` and `sluice plan` on a generated project of
# 10,000 SQL models (each reads one or two earlier ones), cold (no parse
# cache) and warm. Prints best-of-3 wall times.
#   bench/graph/run.sh [SLUICE_BINARY] [MODELS]
set -euo pipefail
SLUICE=$(realpath "${1:-build/release/src/sluice}")
N=${2:-10000}
WORK=${BENCH_DIR:-$(pwd)/bench/data}/graph_$N
if [ ! -f "$WORK/sluice.yaml" ]; then
  rm -rf "$WORK" && mkdir -p "$WORK/models" "$WORK/seeds"
  printf 'name: graph_bench\n' >"$WORK/sluice.yaml"
  printf 'id,v\n1,a\n2,b\n' >"$WORK/seeds/base.csv"
  echo "select id, v from base" >"$WORK/models/m0.sql"
  for i in $(seq 1 $((N - 1))); do
    j=$((i - 1)); k=$((i / 2))
    printf 'with prev as (select * from m%d)\nselect p.id, p.v, q.v as w\nfrom prev p\njoin m%d q using (id)\nwhere p.id > 0\n' \
      "$j" "$k" >"$WORK/models/m$i.sql"
  done
fi
time_it() {
  local s e
  s=$(date +%s%N)
  "$@" >/dev/null
  e=$(date +%s%N)
  echo $(((e - s) / 1000000))
}
best() { printf '%s\n' "$@" | sort -n | head -1; }
cold_validate=(); warm_validate=(); cold_plan=(); warm_plan=()
for _ in 1 2 3; do
  rm -rf "$WORK/.sluice/dev/cache"
  cold_validate+=("$(time_it "$SLUICE" --project "$WORK" validate)")
  warm_validate+=("$(time_it "$SLUICE" --project "$WORK" validate)")
  rm -rf "$WORK/.sluice/dev/cache"
  cold_plan+=("$(time_it "$SLUICE" --project "$WORK" plan)")
  warm_plan+=("$(time_it "$SLUICE" --project "$WORK" plan)")
done
echo "models: $N"
echo "validate cold: $(best "${cold_validate[@]}") ms   (runs: ${cold_validate[*]})"
echo "validate warm: $(best "${warm_validate[@]}") ms   (runs: ${warm_validate[*]})"
echo "plan cold:     $(best "${cold_plan[@]}") ms   (runs: ${cold_plan[*]})"
echo "plan warm:     $(best "${warm_plan[@]}") ms   (runs: ${warm_plan[*]})"
