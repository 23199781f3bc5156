#!/usr/bin/env bash
# Reproduces docs/benchmarks.md: builds the release binary and the harness, measures the loopback
# ceiling, end-to-end delivery on SQLite and on PostgreSQL (one and two instances), latency,
# validation and memory, and writes the report.
#
#   scripts/bench.sh                         # the default run (about 10 minutes on 2 cores)
#   BENCH_BACKLOG=200000 scripts/bench.sh    # a smaller backlog
#   BENCH_ONLY=throughput,latency scripts/bench.sh   # some parts only (report: target/bench/)
#   WABRIDGE_PG_DURABLE=0 scripts/bench.sh   # the PostgreSQL part without disk flushes
#                                            # (fsync=off, synchronous_commit=off)
#   scripts/bench-external.sh                # wrk -> wabridge -> nginx (docs/benchmarks-external.md)
#
# Parameters are environment variables, listed in docs/benchmarks.md. Loopback only.
#
# The PostgreSQL part runs on a throwaway cluster started by scripts/with-postgres.sh (which
# installs PostgreSQL if it is missing), unless WABRIDGE_BENCH_POSTGRES_URL names one already, or
# BENCH_ONLY leaves the part out. A PostgreSQL that cannot be had is an error, never a skip. The
# cluster is durable (fsync=on, synchronous_commit=on: the setting of issue 15's PostgreSQL
# target) unless WABRIDGE_PG_DURABLE=0; the harness reads the settings back and reports them.
set -euo pipefail
cd "$(dirname "$0")/.."

wants_postgres=1
if [ -n "${BENCH_ONLY:-}" ] && ! tr ',' '\n' <<<"$BENCH_ONLY" | grep -qx '[[:space:]]*postgres[[:space:]]*'; then
    wants_postgres=0
fi

if [ "$wants_postgres" = 1 ]; then
    export BENCH_REQUIRE_POSTGRES=1
    if [ -z "${WABRIDGE_BENCH_POSTGRES_URL:-}" ]; then
        export WABRIDGE_PG_DURABLE="${WABRIDGE_PG_DURABLE:-1}"
        exec scripts/with-postgres.sh cargo bench --bench delivery "$@"
    fi
fi
exec cargo bench --bench delivery "$@"
