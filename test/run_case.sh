#!/usr/bin/env bash
# Runs one data-driven case against the real binary.
#
#   run_case.sh SLUICE_BINARY CASE_DIR
#
# A case folder holds:
#   project/   a small Sluice project, copied to a fresh temp folder
#   steps      bash run in that copy, with the helpers of case_lib.sh
#   expected/  files the steps compare against (tables as CSV, error text, ...)
# The case passes when `steps` exits 0.
set -euo pipefail
export SLUICE_BIN=$(realpath "$1")
export CASE_DIR=$(realpath "$2")
LIB_DIR=$(dirname "$(realpath "$0")")
export WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-case.XXXXXX")
cleanup() {
  # Stop the servers a case started (each adds its stop command to .stop),
  # anything else it left running, then remove the copy.
  if [ -f "$WORK/.stop" ]; then bash "$WORK/.stop" >/dev/null 2>&1 || true; fi
  if [ -f "$WORK/.pids" ]; then xargs -r kill -9 <"$WORK/.pids" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/project"
if [ -d "$CASE_DIR/project" ]; then cp -a "$CASE_DIR/project/." "$WORK/project/"; fi
cd "$WORK/project"
# shellcheck source=case_lib.sh
source "$LIB_DIR/case_lib.sh"
source "$CASE_DIR/steps"
echo "case $(basename "$CASE_DIR"): ok"
