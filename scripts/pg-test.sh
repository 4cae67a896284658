#!/usr/bin/env bash
# pg-test.sh: a throwaway Postgres server for the store tests, on loopback,
# in a temporary data directory, run as the user postgres (never as root).
#
#   scripts/pg-test.sh run CMD...   start a server, run CMD with
#                                   CHAPERONE_TEST_POSTGRES set, stop it
#   scripts/pg-test.sh start DIR    start a server in the empty directory DIR
#                                   (DIR/dsn holds its DSN, DIR/log its log)
#   scripts/pg-test.sh stop DIR     stop it and remove DIR
#
# The tests create a schema per test in the database DIR/dsn names and drop it
# afterwards. PG_TEST_PORT picks the first port to try (default 55432).
set -euo pipefail

die() { echo "pg-test: $*" >&2; exit 1; }

# bindir: the newest Debian postgresql's binaries, else whatever is on PATH.
bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  command -v initdb >/dev/null 2>&1 || die "initdb not found: install Debian's postgresql (apt-get install postgresql)"
  dirname "$(command -v initdb)"
}

# as_pg CMD...: runs CMD as the user postgres when we are root, else as ourselves.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
  local dir=$1 bin port pw t0
  t0=$(date +%s)
  [ -d "$dir" ] || mkdir -p "$dir"
  bin=$(bindir)
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "no user postgres: install Debian's postgresql"
    chown postgres: "$dir"
  fi
  chmod 700 "$dir"
  pw=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }

  port=${PG_TEST_PORT:-55432}
  local tries=0
  while :; do
    while ! port_free "$port"; do port=$((port + 1)); done
    # Only loopback TCP and a socket in the private directory; durability
    # off: this server holds test data only.
    if as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      start >/dev/null; then
      break
    fi
    tries=$((tries + 1))
    [ $tries -lt 5 ] || { cat "$dir/log" >&2; die "could not start postgres"; }
    port=$((port + 1))
  done

  psql_pg() { as_pg "$bin/psql" -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres "$@" >/dev/null; }
  psql_pg <<SQL
CREATE ROLE chaperone LOGIN PASSWORD '$pw';
SQL
  # The test database sorts text as English does (ICU en-US, Postgres 15+),
  # not bytewise, so the tests show that the store does not lean on the
  # database's collation; an older server gets the default one.
  psql_pg 2>/dev/null <<SQL || psql_pg <<SQL2
CREATE DATABASE chaperone_test OWNER chaperone TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8';
SQL
CREATE DATABASE chaperone_test OWNER chaperone;
SQL2
  printf 'postgres://chaperone:%s@127.0.0.1:%s/chaperone_test?sslmode=disable\n' "$pw" "$port" >"$dir/dsn"
  chmod 600 "$dir/dsn"
  echo "pg-test: postgres $("$bin/postgres" -V | awk '{print $3}') on 127.0.0.1:$port, data in $dir (started in $(($(date +%s) - t0)) s)" >&2
}

stop() {
  local dir=$1
  [ -d "$dir" ] || return 0
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_pg "$(bindir)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

case ${1:-} in
start)
  [ $# -eq 2 ] || die "usage: $0 start DIR"
  start "$2"
  ;;
stop)
  [ $# -eq 2 ] || die "usage: $0 stop DIR"
  stop "$2"
  ;;
run)
  shift
  [ $# -gt 0 ] || die "usage: $0 run CMD..."
  dir=$(mktemp -d /tmp/chaperone-pg.XXXXXX)
  trap 'stop "$dir"' EXIT
  start "$dir"
  CHAPERONE_TEST_POSTGRES=$(cat "$dir/dsn") CHAPERONE_REQUIRE_POSTGRES=1 "$@"
  ;;
*)
  die "usage: $0 run CMD... | start DIR | stop DIR"
  ;;
esac
