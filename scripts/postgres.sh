#!/usr/bin/env bash
# A throw-away PostgreSQL server on loopback, for the review-store tests.
#
#   eval "$(bash scripts/postgres.sh)"        # start (or reuse) it; exports PRODCAT_TEST_POSTGRES_URL
#   bash scripts/postgres.sh --stop           # stop it and delete its data
#
# Installs Debian's `postgresql` package when no server binaries are found (needs root), initialises a
# cluster in $PRODCAT_PG_DIR (default /tmp/prodcat-pg) with trust authentication on 127.0.0.1 only, and
# starts it on a free port. Idempotent: a second call finds the running server and prints the same URL.
# Only the `export ...` line goes to stdout; progress goes to stderr.
set -euo pipefail

PG_DIR="${PRODCAT_PG_DIR:-/tmp/prodcat-pg}"
DATA="$PG_DIR/data"
DB_NAME=prodcat
DB_USER=prodcat

log() { echo "postgres.sh: $*" >&2; }

find_bindir() {
    local candidate
    candidate=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n "$candidate" && -x "$candidate/initdb" ]]; then
        echo "$candidate"
    elif command -v pg_config >/dev/null && [[ -x "$(pg_config --bindir)/initdb" ]]; then
        pg_config --bindir
    fi
}

# initdb and postgres refuse to run as root: run them as the `postgres` system user then.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

BINDIR=$(find_bindir)
if [[ -z "$BINDIR" ]]; then
    if [[ $(id -u) -ne 0 ]]; then
        log "PostgreSQL is not installed and installing it needs root: apt-get install -y postgresql"
        exit 1
    fi
    log "installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q postgresql >&2 || { apt-get update -q >&2 && apt-get install -y -q postgresql >&2; }
    BINDIR=$(find_bindir)
fi

if [[ "${1:-}" == "--stop" ]]; then
    if [[ -f "$DATA/postmaster.pid" ]]; then
        as_owner "$BINDIR/pg_ctl" -D "$DATA" -m fast -w stop >&2 || true
    fi
    rm -rf "$PG_DIR"
    log "stopped and removed $PG_DIR"
    exit 0
fi

running() { [[ -f "$PG_DIR/port" ]] && as_owner "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

if ! running; then
    mkdir -p "$PG_DIR"
    if [[ $(id -u) -eq 0 ]]; then chown postgres: "$PG_DIR"; fi
    if [[ ! -f "$DATA/PG_VERSION" ]]; then
        log "initialising a cluster in $DATA"
        as_owner "$BINDIR/initdb" -D "$DATA" -U "$DB_USER" --auth=trust --encoding=UTF8 --no-locale >&2
    fi
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo "$port" >"$PG_DIR/port"
    log "starting on 127.0.0.1:$port"
    as_owner "$BINDIR/pg_ctl" -D "$DATA" -l "$PG_DIR/server.log" -w -t 60 \
        -o "-h 127.0.0.1 -p $port -k $PG_DIR" start >&2
    if ! as_owner "$BINDIR/psql" -h 127.0.0.1 -p "$port" -U "$DB_USER" -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1; then
        as_owner "$BINDIR/createdb" -h 127.0.0.1 -p "$port" -U "$DB_USER" "$DB_NAME"
    fi
fi

port=$(cat "$PG_DIR/port")
echo "export PRODCAT_TEST_POSTGRES_URL=postgresql+psycopg://$DB_USER@127.0.0.1:$port/$DB_NAME"
