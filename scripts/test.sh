#!/usr/bin/env bash
# The whole test suite: Rust (format, lints, unit and integration tests) and the n8n node
# (lint, build, type check, unit tests). Installs what the tests need; run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "test-only Python dependency (official Standard Webhooks verifier)"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r tests/requirements.txt

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

step "cargo test (SQLite, the embedded default)"
cargo test

step "n8n node: npm ci && npm run ci"
(cd n8n-node && npm ci --no-audit --no-fund && npm run ci)
