#!/usr/bin/env bash
# Reproduces docs/benchmarks.md: builds the release binary and the harness, measures the loopback
# ceiling, end-to-end delivery, latency, validation and memory, and writes the report.
#
#   scripts/bench.sh                         # the default run (about 10 minutes on 2 cores)
#   BENCH_BACKLOG=200000 scripts/bench.sh    # a smaller backlog
#   BENCH_ONLY=throughput,latency scripts/bench.sh   # some parts only (report: target/bench/)
#
# Parameters are environment variables, listed in docs/benchmarks.md. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench delivery "$@"
