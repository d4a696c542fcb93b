#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the tests (Debian's postgresql package).
#   scripts/postgres.sh start   # prints the URL to use as RAAS_TEST_POSTGRES_URL
#   scripts/postgres.sh stop
#   scripts/postgres.sh restart  # pg_ctl restart -m fast: every connection cut
# Data lives in /tmp/raas-pg-$PORT; trust auth on 127.0.0.1 only.
set -euo pipefail
PORT="${RAAS_PG_PORT:-55432}"
DIR="/tmp/raas-pg-$PORT"
BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$BIN/pg_ctl" ] || { echo "postgresql is not installed (scripts/setup.sh installs it)" >&2; exit 1; }
# PostgreSQL refuses to run as root: use the package's postgres user then.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "${1:-start}" in
  start)
    if [ ! -f "$DIR/PG_VERSION" ]; then
      mkdir -p "$DIR"
      [ "$(id -u)" = 0 ] && chown postgres: "$DIR"
      as_pg "$BIN/initdb" -D "$DIR" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    if ! as_pg "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
      as_pg "$BIN/pg_ctl" -D "$DIR" -w -l "$DIR/log" \
        -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" start >/dev/null
    fi
    echo "postgres://postgres@127.0.0.1:$PORT/postgres"
    ;;
  stop)
    as_pg "$BIN/pg_ctl" -D "$DIR" -m fast stop >/dev/null 2>&1 || true
    ;;
  restart)
    # Every connection is cut (the fault matrix's "restarted mid-sweep").
    as_pg "$BIN/pg_ctl" -D "$DIR" -w -m fast restart >/dev/null
    ;;
  *) echo "usage: $0 start|stop|restart" >&2; exit 2 ;;
esac
