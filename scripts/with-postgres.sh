#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL cluster on loopback, e.g.
#
#     scripts/with-postgres.sh cargo test -- --include-ignored
#
# - Installs PostgreSQL from the distribution's packages if it is missing (Debian/Ubuntu:
#   apt-get install postgresql; needs root). A PostgreSQL that cannot be found or installed is an
#   error, never a silent skip.
# - initdb's a new cluster in a temporary directory (as the `postgres` OS user when run as root:
#   initdb refuses root), starts it on 127.0.0.1 on a free port, trust authentication, no fsync
#   (nothing here outlives the run; the tests kill wabridge, never PostgreSQL).
# - WABRIDGE_PG_DURABLE=1 starts it durable instead: fsync=on, synchronous_commit=on,
#   full_page_writes=on (PostgreSQL's defaults), for benchmarks of the durable setting
#   (scripts/bench.sh sets it unless told WABRIDGE_PG_DURABLE=0). The settings the
#   server runs with are read back with SHOW and printed; a mismatch is an error.
# - Exports WABRIDGE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/postgres, which makes
#   the test suite run on PostgreSQL (each test creates its own database in the cluster), and
#   WABRIDGE_TEST_POSTGRES_BIN=<PostgreSQL's bin directory> (the PostgreSQL-restart fault test
#   initdb's and restarts a cluster of its own with it).
# - Runs the command, stops the cluster and removes the directory on exit, and exits with the
#   command's status.
set -euo pipefail

log() { echo "with-postgres: $*" >&2; }
die() { log "error: $*"; exit 1; }

[ $# -gt 0 ] || die "usage: $0 COMMAND [ARG...]"

find_bindir() {
    local dir
    if command -v pg_config >/dev/null 2>&1; then
        dir=$(pg_config --bindir 2>/dev/null || true)
        if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; return 0; fi
    fi
    # Debian/Ubuntu: /usr/lib/postgresql/<major>/bin; take the newest major.
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return 0; fi
    done
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"; return 0
    fi
    return 1
}

if ! BINDIR=$(find_bindir); then
    log "PostgreSQL is not installed; installing it from the distribution's packages"
    [ "$(id -u)" -eq 0 ] || die "PostgreSQL is missing and installing it needs root (apt-get install postgresql)"
    command -v apt-get >/dev/null 2>&1 || die "PostgreSQL is missing and this system has no apt-get; install PostgreSQL (initdb, pg_ctl) and retry"
    started=$(date +%s)
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq postgresql >/dev/null || die "apt-get install postgresql failed"
    log "installed PostgreSQL in $(( $(date +%s) - started ))s"
    BINDIR=$(find_bindir) || die "PostgreSQL was installed but initdb/pg_ctl are not under /usr/lib/postgresql/*/bin"
fi
log "using $("$BINDIR/postgres" --version) from $BINDIR"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/wabridge-pg.XXXXXX")
DATA="$WORK/data"
PORT=$(free_port)

# initdb and the server refuse to run as root: use the postgres OS user then.
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
    chown postgres: "$WORK"
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi

cleanup() {
    local status=$?
    if [ -f "$DATA/postmaster.pid" ]; then
        as_pg "$BINDIR/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

as_pg "$BINDIR/initdb" -D "$DATA" --username=postgres --auth=trust --encoding=UTF8 \
    --locale=C.UTF-8 >"$WORK/initdb.log" 2>&1 \
    || { cat "$WORK/initdb.log" >&2; die "initdb failed"; }
if [ "${WABRIDGE_PG_DURABLE:-0}" = 1 ]; then
    DURABILITY="-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
    WANT_SETTINGS="on on on"
else
    DURABILITY="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    WANT_SETTINGS="off off off"
fi
as_pg "$BINDIR/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w -t 60 start -o \
    "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$WORK \
     -c max_connections=400 $DURABILITY" \
    >/dev/null || { cat "$WORK/server.log" >&2; die "PostgreSQL did not start"; }
as_pg "$BINDIR/pg_isready" -h 127.0.0.1 -p "$PORT" -q || die "PostgreSQL is not accepting connections"
SETTINGS=$(as_pg "$BINDIR/psql" -X -At -h 127.0.0.1 -p "$PORT" -U postgres -d postgres \
    -c "SHOW fsync" -c "SHOW synchronous_commit" -c "SHOW full_page_writes" | tr '\n' ' ' | sed 's/ $//') \
    || die "could not read the server's settings"
log "fsync, synchronous_commit, full_page_writes: $SETTINGS"
[ "$SETTINGS" = "$WANT_SETTINGS" ] || die "the server runs with $SETTINGS, expected $WANT_SETTINGS"

export WABRIDGE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PORT/postgres"
# The fault test that restarts PostgreSQL runs a cluster of its own from these binaries (restarting
# this shared one would break the tests running beside it).
export WABRIDGE_TEST_POSTGRES_BIN="$BINDIR"
log "PostgreSQL on 127.0.0.1:$PORT; WABRIDGE_TEST_POSTGRES_URL=$WABRIDGE_TEST_POSTGRES_URL"

set +e
"$@"
status=$?
set -e
log "command exited with $status; stopping PostgreSQL"
exit "$status"
