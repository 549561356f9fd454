# Helpers for test/cases/*/steps. Each fails the case with a message that
# says what was expected and what came out.
# shellcheck shell=bash

sluice() { "$SLUICE_BIN" "$@"; }

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# expect_exit CODE CMD...: runs CMD, keeps its output in $OUT (stdout+stderr).
expect_exit() {
  local want=$1
  shift
  set +e
  OUT=$("$@" 2>&1)
  local got=$?
  set -e
  if [ "$got" != "$want" ]; then
    echo "$OUT" >&2
    fail "'$*' exited $got, expected $want"
  fi
}

# expect_contains TEXT: the last command's output contains TEXT.
expect_contains() {
  grep -qF -- "$1" <<<"$OUT" || {
    echo "$OUT" >&2
    fail "output lacks: $1"
  }
}

# expect_not_contains TEXT
expect_not_contains() {
  if grep -qF -- "$1" <<<"$OUT"; then
    echo "$OUT" >&2
    fail "output unexpectedly contains: $1"
  fi
}

# expect_output_file FILE: every non-empty line of FILE appears in the output.
expect_output_file() {
  while IFS= read -r line; do
    [ -z "$line" ] && continue
    expect_contains "$line"
  done <"$1"
}

# expect_table NAME CSV [ORDER]: `select * from NAME order by ORDER` equals the CSV (with header).
# UPDATE_EXPECTED=1 rewrites CSV with what came out (review the diff before committing).
expect_table() {
  local name=$1 csv=$2 order=${3:-all}
  local got
  got=$("$SLUICE_BIN" query "select * from $name order by $order" --format csv) ||
    fail "query of $name failed: $got"
  if [ -n "${UPDATE_EXPECTED:-}" ]; then printf '%s\n' "$got" >"$csv"; fi
  if ! diff <(printf '%s\n' "$got") "$csv" >/dev/null; then
    diff <(printf '%s\n' "$got") "$csv" >&2 || true
    fail "table $name differs from $csv (< got, > expected)"
  fi
}

# expect_query SQL TEXT: the CSV output of SQL (without header) equals TEXT.
expect_query() {
  local got
  got=$("$SLUICE_BIN" query "$1" --format csv | tail -n +2) || fail "query failed: $1"
  [ "$got" = "$2" ] || fail "query '$1' gave '$got', expected '$2'"
}

# bg CMD...: start CMD in the background; its pid is killed when the case ends.
bg() {
  # The binary itself, not the `sluice` function, so $BG_PID is its pid.
  if [ "$1" = sluice ]; then
    shift
    set -- "$SLUICE_BIN" "$@"
  fi
  "$@" &
  echo $! >>"$WORK/.pids"
  BG_PID=$!
}

# start_fixture_server ROOT [--token T] [--basic USER:PASSWORD] [--key K]:
# starts the fault-injecting HTTP test server (test/support/fixture_server.h)
# on a free 127.0.0.1 port, serving ROOT; sets FIXTURE_URL. It is stopped
# with the case.
start_fixture_server() {
  local root=$1
  shift
  [ -n "${FIXTURE_SERVER:-}" ] || fail "FIXTURE_SERVER is not set (run cases through ctest)"
  rm -f "$WORK/.fixture_port"
  "$FIXTURE_SERVER" --root "$root" --port-file "$WORK/.fixture_port" "$@" >"$WORK/.fixture_log" 2>&1 &
  echo $! >>"$WORK/.pids"
  disown $!  # the case's cleanup kills it; no job-control noise
  local _
  for _ in $(seq 200); do
    [ -s "$WORK/.fixture_port" ] && break
    sleep 0.05
  done
  [ -s "$WORK/.fixture_port" ] || fail "fixture_server did not start: $(cat "$WORK/.fixture_log")"
  FIXTURE_URL="http://127.0.0.1:$(cat "$WORK/.fixture_port")"
  export FIXTURE_URL
}

# tamper SQL: runs SQL on the dev warehouse directly (no owner may be running),
# as someone with DuckDB's own shell would.
tamper() {
  [ -n "${DUCKDB_EXEC:-}" ] || fail "DUCKDB_EXEC is not set (run cases through ctest)"
  "$DUCKDB_EXEC" "$WORK/project/.sluice/dev/warehouse.duckdb" "$1"
}

# fetch_log SQL: runs SQL against the environment's metadata (the fetch log).
fetch_log() { sqlite3 "$WORK/project/.sluice/dev/metadata.sqlite" "$1"; }

# check_invariants: what a crash or a failed write must never break, in the
# current project's dev environment: every public asset shows exactly the rows
# its latest publication recorded (a complete version), every raw object
# hashes to its name (complete or absent), and metadata agrees with the
# warehouse (the commit point) once an owner has reconciled it.
check_invariants() {
  local pubs
  pubs=$("$SLUICE_BIN" query "select asset, sum(rows) from (select asset, partition_key, rows
          from _sluice.publications qualify row_number() over (partition by asset,
          partition_key order by seq desc) = 1) group by asset" --format csv) ||
    fail "cannot read the publications: $pubs"
  while IFS=, read -r asset rows; do
    [ "$asset" = asset ] && continue
    local got
    got=$("$SLUICE_BIN" query "select count(*) from $asset" --format csv | tail -n +2) ||
      fail "public $asset cannot be read: $got"
    [ "$got" = "$rows" ] || fail "$asset shows $got rows but its publication recorded $rows"
  done <<<"$pubs"
  local f want got
  for f in .sluice/dev/lake/raw/*/objects/*; do
    [ -e "$f" ] || continue
    want=$(basename "$f")
    want=${want%%.*}
    got=$(sha256sum "$f" | cut -d' ' -f1)
    [ "$want" = "$got" ] || fail "raw object $f is damaged"
  done
  local wh md
  wh=$("$SLUICE_BIN" query "select asset || '=' || partition_key || '=' || version_id from
        _sluice.publications qualify row_number() over (partition by asset, partition_key
        order by seq desc) = 1 order by 1" --format csv | tail -n +2)
  md=$(sqlite3 .sluice/dev/metadata.sqlite \
    "select asset || '=' || partition || '=' || version_id from published order by 1")
  [ "$wh" = "$md" ] || fail "metadata not reconciled: warehouse [$wh] vs metadata [$md]"
  # The exports' current version is whole: every file as its package records.
  if [ -e .sluice/dev/publish/current ]; then
    check_publish_folder .sluice/dev/publish
  fi
}

# check_publish_folder DIR: DIR/current is a whole export version (every
# file exists with the size and hash datapackage.json records; CSV, JSON and
# GeoJSON parse with the rows it records).
check_publish_folder() {
  local out
  out=$(/usr/bin/python3 "$LIB_DIR/support/check_datapackage.py" "$1" 2>&1) ||
    fail "the publish folder $1 is not whole: $out"
}

# table_digests: "asset=md5 of its rows" for every published asset, sorted:
# two environments built from the same data must agree.
table_digests() {
  local assets asset
  assets=$("$SLUICE_BIN" query "select distinct asset from _sluice.publications order by 1" \
    --format csv | tail -n +2)
  for asset in $assets; do
    printf '%s=%s\n' "$asset" "$("$SLUICE_BIN" query "select md5(coalesce(string_agg(t::varchar,
      '|' order by t::varchar), '')) from $asset t" --format csv | tail -n +2)"
  done
}

# free_port: prints a TCP port free on 127.0.0.1 now.
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_postgres: a real PostgreSQL server (Debian's package) in $WORK/pg,
# listening on a free 127.0.0.1 port with password authentication; user
# sluice, password $PG_PASSWORD, database sluice. Sets PG_PORT, PG_URL and
# PSQL (a psql command line for it). Stopped with the case. As root, the
# server runs as the postgres user (it refuses root).
# start_postgres [logical]: "logical" sets wal_level = logical (change capture).
# PG_EXTRA: more server options (-c name=value ...).
start_postgres() {
  local bin dir=$WORK/pg extra="${PG_EXTRA:-}"
  [ "${1:-}" = logical ] && extra="$extra -c wal_level=logical -c max_replication_slots=8 -c max_wal_senders=8"
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -x "$bin/initdb" ] || fail "PostgreSQL's server is not installed (scripts/bootstrap.sh installs it)"
  PG_PASSWORD=${PG_PASSWORD:-pg-secret-$RANDOM$RANDOM}
  mkdir -p "$dir"
  printf '%s\n' "$PG_PASSWORD" >"$dir/pw"
  local as=()
  if [ "$(id -u)" = 0 ]; then
    chmod o+x "$WORK"
    chown -R postgres "$dir"
    as=(runuser -u postgres --)
  fi
  "${as[@]}" "$bin/initdb" -D "$dir/data" -U sluice --pwfile="$dir/pw" -A scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 ||
    fail "initdb failed: $(cat "$dir/initdb.log")"
  # A free port may be taken by another case before the server binds it:
  # then a fresh one.
  local attempt
  for attempt in 1 2 3; do
    PG_PORT=$(free_port)
    "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $PG_PORT -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off $extra" \
      start >/dev/null && break
    grep -q "could not bind" "$dir/server.log" && [ "$attempt" != 3 ] && continue
    fail "PostgreSQL did not start: $(cat "$dir/server.log")"
  done
  echo "${as[*]} $bin/pg_ctl -D $dir/data -m immediate stop" >>"$WORK/.stop"
  export PGPASSWORD=$PG_PASSWORD
  PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U sluice -d postgres)
  "${PSQL[@]}" -c "create database sluice" >/dev/null
  PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U sluice -d sluice)
  PG_URL="postgresql://sluice:$PG_PASSWORD@127.0.0.1:$PG_PORT/sluice"
  export PG_PORT PG_URL
}

# start_mariadb: a real MariaDB server (Debian's package) in $WORK/mysql on
# a free 127.0.0.1 port; user sluice, password $MARIADB_PASSWORD, database
# sluice. Sets MARIADB_PORT, MARIADB_URL and MYSQL (a client command line).
# MARIADB_EXTRA: more server options (--name=value ...).
start_mariadb() {
  local dir=$WORK/mysql
  command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] ||
    fail "MariaDB's server is not installed (scripts/bootstrap.sh installs it)"
  MARIADB_PASSWORD=${MARIADB_PASSWORD:-my-secret-$RANDOM$RANDOM}
  # A temp folder of its own: with the shared /tmp, two servers set up at
  # once have failed on each other's temporary tables (#sql-temptable-*).
  mkdir -p "$dir/tmp"
  local user
  user=$(id -un)
  mariadb-install-db --no-defaults --datadir="$dir/data" --user="$user" --tmpdir="$dir/tmp" \
    --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 ||
    fail "mariadb-install-db failed: $(cat "$dir/install.log")"
  MARIADB_PORT=$(free_port)
  /usr/sbin/mariadbd --no-defaults --datadir="$dir/data" --user="$user" --port="$MARIADB_PORT" \
    --tmpdir="$dir/tmp" --bind-address=127.0.0.1 --socket="$dir/sock" --pid-file="$dir/pid" --skip-log-bin \
    --innodb-flush-log-at-trx-commit=0 --innodb-buffer-pool-size=32M --log-error="$dir/error.log" \
    ${MARIADB_EXTRA:-} >"$dir/stdout.log" 2>&1 &
  echo $! >>"$WORK/.pids"
  disown $!
  local _
  for _ in $(seq 300); do
    mariadb --no-defaults -uroot --socket="$dir/sock" -e 'select 1' >/dev/null 2>&1 && break
    sleep 0.1
  done
  mariadb --no-defaults -uroot --socket="$dir/sock" -e "
    create database sluice character set utf8mb4;
    create user 'sluice'@'127.0.0.1' identified by '$MARIADB_PASSWORD';
    create user 'sluice'@'localhost' identified by '$MARIADB_PASSWORD';
    grant all on sluice.* to 'sluice'@'127.0.0.1';
    grant all on sluice.* to 'sluice'@'localhost';" ||
    fail "MariaDB did not start: $(tail -20 "$dir/error.log")"
  echo "mariadb-admin --no-defaults -uroot --socket=$dir/sock shutdown" >>"$WORK/.stop"
  MYSQL=(mariadb --no-defaults -usluice "-p$MARIADB_PASSWORD" -h 127.0.0.1 -P "$MARIADB_PORT" sluice)
  MARIADB_URL="mysql://sluice:$MARIADB_PASSWORD@127.0.0.1:$MARIADB_PORT/sluice"
  export MARIADB_PORT MARIADB_URL
}

# start_nats: nats-server with JetStream on a free port, a user and password;
# NATS_URL (with the password), NATS_PASSWORD.
start_nats() {
  command -v nats-server >/dev/null || fail "nats-server is not installed (scripts/bootstrap.sh installs it)"
  NATS_PASSWORD=${NATS_PASSWORD:-nats-secret-$RANDOM$RANDOM}
  NATS_PORT=$(free_port)
  mkdir -p "$WORK/nats"
  nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$WORK/nats/store" --user sluice \
    --pass "$NATS_PASSWORD" >"$WORK/nats/server.log" 2>&1 &
  echo "kill $! 2>/dev/null" >>"$WORK/.stop"
  local i
  for i in $(seq 1 100); do
    grep -q "Server is ready" "$WORK/nats/server.log" && break
    sleep 0.1
  done
  grep -q "Server is ready" "$WORK/nats/server.log" || fail "nats-server did not start: $(cat "$WORK/nats/server.log")"
  NATS_URL="nats://sluice:$NATS_PASSWORD@127.0.0.1:$NATS_PORT"
  export NATS_URL NATS_PASSWORD NATS_PORT
}

# serve_in_background [GLOBAL FLAGS...]: `sluice serve` on a free port in the
# current folder (e.g. `serve_in_background -v` logs at info); sets SERVE
# (its pid) and URL.
serve_in_background() {
  : >serve.log
  "$SLUICE_BIN" "$@" serve --listen 127.0.0.1:0 2>>serve.log &
  SERVE=$!
  echo "$SERVE" >>"$WORK/.pids"
  URL=
  local _
  for _ in $(seq 100); do
    URL=$(sed -n 's|.*HTTP API on \(http://[^ ]*\)/$|\1|p' serve.log | tail -1)
    [ -n "$URL" ] && break
    sleep 0.1
  done
  [ -n "$URL" ] || fail "serve did not start its API: $(cat serve.log)"
}
