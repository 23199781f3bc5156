#!/usr/bin/env bash
# Schemathesis (PyPI, tests/requirements.txt) against a throwaway bridge, from the bridge's own
# /v1/openapi.json: every operation, every check (exceptions in schemathesis.toml), bounded in
# examples and time. Fails on any 5xx and on any response that contradicts the document.
#
# The bridge runs on a free loopback port with a fresh SQLite file and known keys. Its first
# delivery attempt is scheduled a day ahead, so nothing registered during the run is ever
# contacted.
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=target/debug/wabridge
[ -x "$bin" ] || cargo build --quiet
command -v st >/dev/null || { echo "schemathesis is not installed (pip install -r tests/requirements.txt)" >&2; exit 1; }

dir=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export WABRIDGE_ST_ADMIN_KEY="st-admin-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
export WABRIDGE_ST_INGEST_KEY="st-ingest-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"

WABRIDGE_LISTEN="127.0.0.1:$port" \
WABRIDGE_DATABASE_URL="sqlite://$dir/wabridge.db" \
WABRIDGE_API_KEY="$WABRIDGE_ST_ADMIN_KEY" \
WABRIDGE_INGEST_KEY="$WABRIDGE_ST_INGEST_KEY" \
WABRIDGE_RETRY_SCHEDULE=24h \
WABRIDGE_LOG_FORMAT=json \
  "$bin" serve >"$dir/bridge.log" 2>&1 &
bridge=$!
stop() {
  kill "$bridge" 2>/dev/null || true
  wait "$bridge" 2>/dev/null || true
  rm -rf "$dir"
}
trap stop EXIT

base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "$base/readyz" >/dev/null || { echo "the bridge did not start:" >&2; cat "$dir/bridge.log" >&2; exit 1; }

status=0
config="$PWD/tests/schemathesis/schemathesis.toml"
# From the temporary directory, so that Schemathesis's own state stays out of the repository.
# One worker: with two, Hypothesis's cache of lambda sources is shared between threads, and a
# race in it once crashed the run inside the tool ("AST constructor recursion depth mismatch",
# reported as a FlakyFailure) with no response of the bridge involved.
(cd "$dir" && timeout --kill-after=10 "${WABRIDGE_ST_TIMEOUT:-420}" \
  st --config-file "$config" run "$base/v1/openapi.json" \
    --seed "${WABRIDGE_ST_SEED:-20261128}" --workers 1 --max-failures 50 \
    --no-color) || status=$?
if grep -q '"level":"ERROR"' "$dir/bridge.log"; then
  echo "the bridge logged errors during the run:" >&2
  grep '"level":"ERROR"' "$dir/bridge.log" >&2
  status=1
fi
exit "$status"
