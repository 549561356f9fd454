#!/usr/bin/env bash
# Builds the web UI (web/) into OUT: `npm ci` from the pinned lockfile when
# web/node_modules does not match it yet, then esbuild (web/build.mjs).
# Called by CMake at build time; needs Node.js and npm (scripts/bootstrap.sh).
set -euo pipefail
out=${1:?usage: build_web.sh OUT_DIR}
web=$(cd "$(dirname "$0")/../web" && pwd)
command -v npm >/dev/null || { echo "build_web: npm is missing: run scripts/bootstrap.sh (or make setup)" >&2; exit 1; }
# One npm ci at a time (several build folders share web/node_modules).
exec 9>"$web/.npm.lock"
flock 9
stamp="$web/node_modules/.sluice-lock"
if ! cmp -s "$web/package-lock.json" "$stamp" 2>/dev/null; then
  echo "build_web: npm ci (web/package-lock.json)"
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$web/package-lock.json" "$stamp"
fi
flock -u 9
node "$web/build.mjs" "$out"
