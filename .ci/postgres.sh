#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on a loopback port (installing Debian's package if
# needed) and print its URL. Used by .ci/run; usable by hand for the PostgreSQL tests:
#   export MEGATRON_TEST_POSTGRES_URL=$(bash .ci/postgres.sh)
set -euo pipefail
PORT=${MEGATRON_PG_PORT:-54329}
DATA=${MEGATRON_PG_DATA:-/tmp/megatron-pg}

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
fi
BIN=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")

if ! su postgres -c "$BIN/pg_ctl -D $DATA status" >/dev/null 2>&1; then
  rm -rf "$DATA"
  mkdir -p "$DATA" && chown postgres:postgres "$DATA"
  su postgres -c "$BIN/initdb -D $DATA --auth=trust --username=postgres -E UTF8 --locale=C.UTF-8" >&2
  su postgres -c "$BIN/pg_ctl -D $DATA -l $DATA/server.log -w start -o '-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=300'" >&2
fi
echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
