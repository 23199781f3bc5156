#!/usr/bin/env bash
# The whole test suite: Rust (format, lints, unit and integration tests) and the n8n node
# (lint, build, type check, unit tests). Installs what the tests need; run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "test-only Python dependency (official Standard Webhooks verifier)"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r tests/requirements.txt

step "test-only Node packages (AsyncAPI parser, standardwebhooks for the documented receiver)"
(cd tests/asyncapi && npm ci --no-audit --no-fund --silent)
(cd tests/receivers && npm ci --no-audit --no-fund --silent)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

step "cargo test (SQLite, the embedded default)"
cargo test

step "Schemathesis against a throwaway bridge, from its /v1/openapi.json (tests/schemathesis/run.sh)"
tests/schemathesis/run.sh

step "benchmark smoke run: tiny counts, debug build; checks that the harness runs and reports (no speed check)"
smoke=target/bench/smoke.md
rm -f "$smoke"
BENCH_ONLY=ceiling,throughput,latency,retention BENCH_SCALE=0.01 BENCH_REGISTRATIONS=20 \
  BENCH_LATENCY_RATE=50 BENCH_LATENCY_SECS=1 BENCH_LIMIT_SECS=60 BENCH_PROFILE=0 BENCH_OUT="$smoke" \
  cargo bench --profile dev --bench delivery
for want in '^## Targets' '^| single, 1 subscriber |' '^| batch 100, 100 subscribers |' '^| 50/s |' '^## Retention: 10000 delivered events'; do
  grep -q -- "$want" "$smoke" || { echo "the benchmark smoke run's report lacks $want" >&2; exit 1; }
done

step "cargo test on PostgreSQL (installed and started for the run), multi-instance tests included"
log=$(mktemp)
scripts/with-postgres.sh cargo test -- --include-ignored 2>&1 | tee "$log"
for t in \
  multi_instance::two_instances_deliver_each_event_once_and_take_over_a_killed_ones_leases \
  multi_instance::the_same_key_or_status_into_two_instances_at_once_goes_out_once \
  multi_instance::a_rate_limited_attempt_that_outlives_its_lease_is_not_taken_over \
  multi_instance::instances_starting_together_on_a_fresh_database_store_one_key_per_role \
  faults::postgresql_restarted_under_load_loses_nothing_acknowledged; do
  grep -q "$t ... ok" "$log" || { echo "the PostgreSQL run did not pass $t" >&2; exit 1; }
done
rm -f "$log"

step "n8n node: npm ci && npm run ci"
(cd n8n-node && npm ci --no-audit --no-fund && npm run ci)

step "operator page in a real browser (tests/ui/run.sh: Debian chromium via playwright-core; installs chromium if missing, fails if it cannot)"
bash tests/ui/run.sh

step "fuzz targets, briefly each (fuzz/, cargo-fuzz on nightly; a crash fails the suite; see docs/reliability.md)"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
(
  cd fuzz
  cargo +nightly fuzz build -s none -a
  for target in $(cargo +nightly fuzz list); do
    work=$(mktemp -d)
    # New inputs go to a scratch directory; the committed seeds in corpus/ are only read.
    cargo +nightly fuzz run -s none -a "$target" "$work" "corpus/$target" -- \
      -max_total_time=10 -jobs=1 -workers=1 -print_final_stats=1
    rm -rf "$work"
  done
)

step "n8n node end to end on a real n8n (n8n-node/e2e/run.sh; installs and caches n8n, fails if it cannot)"
for version in ${WABRIDGE_E2E_N8N_VERSIONS:-2.41.1}; do
  N8N_VERSION="$version" bash n8n-node/e2e/run.sh
done
