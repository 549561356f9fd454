#!/usr/bin/env bash
# Idempotent set-up for a Debian 12 machine: Debian packages, then DuckDB's
# prebuilt C library fetched from the npm registry into a per-version prefix
# outside git. Safe to run again; does nothing that is already done.
#
#   scripts/bootstrap.sh            build + test dependencies
#   DUCKDB_PREFIX=/opt/duckdb ...   use an existing DuckDB (include/ + lib/)
set -euo pipefail

DUCKDB_VERSION=1.4.4
DUCKDB_BINDINGS=@duckdb/node-bindings-linux-x64@1.4.4-r.4
PREFIX_ROOT=${SLUICE_DEPS:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}
DUCKDB_PREFIX=${DUCKDB_PREFIX:-$PREFIX_ROOT/duckdb-$DUCKDB_VERSION}

PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  clang-format clang-tidy
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libfmt-dev
  libcurl4-openssl-dev libcpp-httplib-dev libsqlite3-dev libssl-dev
  libzip-dev libgumbo-dev libhowardhinnant-date-dev tzdata
  libgtest-dev libgmock-dev libbenchmark-dev
  libboost-dev libprotobuf-dev protobuf-compiler
  sqlite3 python3 procps openssl curl wrk
  chromium
  libpq-dev libmariadb-dev libnats-dev
  postgresql mariadb-server mariadb-client nats-server
)
# `bootstrap.sh fuzz`: also clang and its libFuzzer runtime (make fuzz, make reliability).
if [ "${1:-}" = fuzz ]; then PACKAGES+=(clang libclang-rt-14-dev); fi
# `bootstrap.sh bench`: also the peers of bench/scheduler (Celery on a local redis) and
# bench/api (wrk; FastAPI, uvicorn and redis; nginx).
if [ "${1:-}" = bench ]; then
  PACKAGES+=(redis-server python3-celery python3-redis make wrk python3-fastapi python3-uvicorn
    nginx-light)
fi

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# npm fetches DuckDB and the web UI's libraries (web/package-lock.json); a
# machine may already have it from another Node.js build. Chromium: the web
# UI's tests (headless, driven by playwright-core from web/node_modules).
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f "$DUCKDB_PREFIX/lib/libduckdb.so" ] || [ ! -f "$DUCKDB_PREFIX/include/duckdb.h" ]; then
  echo "bootstrap: fetching DuckDB $DUCKDB_VERSION into $DUCKDB_PREFIX"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "$DUCKDB_BINDINGS" "duckdb@$DUCKDB_VERSION" >/dev/null)
  mkdir -p "$work/lib" "$work/inc"
  tar -xzf "$work"/duckdb-node-bindings-linux-x64-*.tgz -C "$work/lib" package/libduckdb.so
  tar -xzf "$work/duckdb-$DUCKDB_VERSION.tgz" -C "$work/inc" package/src/duckdb/src/include/duckdb.h
  mkdir -p "$DUCKDB_PREFIX.tmp/lib" "$DUCKDB_PREFIX.tmp/include"
  cp "$work/lib/package/libduckdb.so" "$DUCKDB_PREFIX.tmp/lib/"
  cp "$work/inc/package/src/duckdb/src/include/duckdb.h" "$DUCKDB_PREFIX.tmp/include/"
  rm -rf "$DUCKDB_PREFIX"
  mv "$DUCKDB_PREFIX.tmp" "$DUCKDB_PREFIX"
fi
echo "$DUCKDB_PREFIX"
