#!/usr/bin/env bash
# External load generator and receiver run (issue 15, "Also"): measures wabridge with tools
# nobody here wrote, beside the in-process harness (benches/delivery/):
#
#   wrk (load generator)  ->  wabridge /v1/ingest  ->  nginx (`return 204`, arrivals counted in
#   its access log)
#
# and the ceiling of the same pair without the bridge: wrk -> nginx directly, same connections,
# same length, a body of the same size. Every figure is a ratio to that ceiling, measured in the
# same run (once before and once after the bridge runs; the higher of the two is the ceiling).
#
#   scripts/bench-external.sh                              # SQLite, then PostgreSQL (throwaway cluster)
#   EXT_BACKENDS=sqlite scripts/bench-external.sh          # SQLite only, no PostgreSQL
#   WABRIDGE_PG_DURABLE=1 scripts/bench-external.sh       # PostgreSQL with fsync/synchronous_commit on
#
# Parameters (environment):
#   EXT_SECS=10             length of each wrk run (ceiling and ingest), seconds
#   EXT_CONNECTIONS=16      wrk connections (-c); EXT_THREADS=2 wrk threads (-t)
#   EXT_NGINX_WORKERS=auto  nginx worker_processes (auto = one per core)
#   EXT_BACKENDS=sqlite,postgres
#   EXT_DRAIN_SECS=300      longest wait for the bridge to deliver everything it accepted
#   WABRIDGE_BIN=target/release/wabridge   the bridge binary (build it with cargo build --release)
#   EXT_OUT=target/bench/external.md       the report (a Markdown table and the run's details)
#
# The bridge runs with its defaults (SQLite: WAL, synchronous=FULL; 256 deliveries in flight, 8 per
# registration), a fresh SQLite file in a temporary directory, or a fresh database in the
# PostgreSQL cluster that scripts/with-postgres.sh starts (this script re-runs itself under it when
# PostgreSQL is wanted and WABRIDGE_TEST_POSTGRES_URL is not set). One registration for
# message.received points at nginx. Each wrk request is one message.received event with its own
# data.id (wrk thread number and a per-thread counter), so each has its own idempotency key and
# each is stored and delivered once.
#
# Installs wrk and nginx (nginx-light, else nginx) from the distribution's packages if missing
# (needs root). Loopback only; everything shares this machine's cores.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

log() { echo "bench-external: $*" >&2; }
die() { log "error: $*"; exit 1; }

EXT_SECS=${EXT_SECS:-10}
EXT_CONNECTIONS=${EXT_CONNECTIONS:-16}
EXT_THREADS=${EXT_THREADS:-2}
EXT_NGINX_WORKERS=${EXT_NGINX_WORKERS:-auto}
EXT_BACKENDS=${EXT_BACKENDS:-sqlite,postgres}
EXT_DRAIN_SECS=${EXT_DRAIN_SECS:-300}
WABRIDGE_BIN=${WABRIDGE_BIN:-target/release/wabridge}
EXT_OUT=${EXT_OUT:-target/bench/external.md}

wants() { tr ',' '\n' <<<"$EXT_BACKENDS" | grep -qx "[[:space:]]*$1[[:space:]]*"; }

if wants postgres && [ -z "${WABRIDGE_TEST_POSTGRES_URL:-}" ]; then
    exec scripts/with-postgres.sh "$0" "$@"
fi

[ -x "$WABRIDGE_BIN" ] || die "$WABRIDGE_BIN is missing: cargo build --release (or set WABRIDGE_BIN)"

if ! command -v wrk >/dev/null 2>&1 || ! command -v nginx >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || die "wrk or nginx is missing and installing them needs root"
    log "installing wrk and nginx from the distribution's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq wrk nginx-light >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq wrk nginx-light >/dev/null 2>&1; } \
        || apt-get install -y -qq wrk nginx >/dev/null \
        || die "could not install wrk and nginx"
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/wabridge-ext.XXXXXX")
chmod 755 "$WORK"
NGINX_PID=
BRIDGE_PID=
cleanup() {
    local status=$?
    [ -n "$BRIDGE_PID" ] && kill "$BRIDGE_PID" 2>/dev/null && wait "$BRIDGE_PID" 2>/dev/null
    [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
    if [ "${EXT_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- nginx: the receiver --------------------------------------------------------------------
NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes $EXT_NGINX_WORKERS;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    log_format arrivals '\$msec \$status \$request_length';
    keepalive_requests 10000000;
    keepalive_timeout 75s;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location = /ceiling { access_log $WORK/nginx/ceiling.log arrivals; return 204; }
        location /hook { access_log $WORK/nginx/arrivals.log arrivals; return 204; }
    }
}
EOF
"$NGINX" -t -q -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" || die "nginx rejects the config"
"$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
NGINX_PID=$!
for _ in $(seq 100); do
    curl -s -o /dev/null -X POST "http://127.0.0.1:$NGINX_PORT/ceiling" && break
    sleep 0.05
done
curl -sf -o /dev/null -X POST "http://127.0.0.1:$NGINX_PORT/ceiling" || die "nginx did not start"

# --- wrk scripts -------------------------------------------------------------------------------
# One message.received event like the harness's (benches/delivery/bridge.rs, message_event);
# %s is replaced by a unique data.id.
EVENT_TEMPLATE='{"event":"message.received","sessionId":"default","data":{"id":"%s","from":"15551230001@c.us","to":"15559870000@c.us","chatId":"15551230001@c.us","body":"Hi, is my order ready? It was supposed to ship on Monday.","type":"text","timestamp":1794000000,"fromMe":false,"isGroup":false,"contact":{"id":"15551230001@c.us","name":"Dana Ortiz","pushName":"Dana","number":"15551230001"}}}'

# Counts answers by status in each thread and prints one parseable line at the end.
LUA_COMMON='
local threads = {}
local next_tid = 1
function setup(thread)
    thread:set("tid", next_tid)
    next_tid = next_tid + 1
    table.insert(threads, thread)
end
function response(status, headers, body)
    if status == want then ok = ok + 1 else other = other + 1 end
end
function done(summary, latency, requests)
    local a, o = 0, 0
    for _, t in ipairs(threads) do
        a = a + t:get("ok")
        o = o + t:get("other")
    end
    local e = summary.errors
    io.write(string.format(
        "EXT ok=%d other=%d duration_us=%d requests=%d connect=%d read=%d write=%d timeout=%d p50_ms=%.3f p99_ms=%.3f\n",
        a, o, summary.duration, summary.requests, e.connect, e.read, e.write, e.timeout,
        latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
'
template_lua=${EVENT_TEMPLATE//\"/\\\"}
cat >"$WORK/ceiling.lua" <<EOF
want = 204
ok = 0
other = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format("$template_lua", "true_15551230001@c.us_3EB0C0FFEE00000000")
$LUA_COMMON
EOF
cat >"$WORK/ingest.lua" <<EOF
want = 202
ok = 0
other = 0
local n = 0
local run = os.getenv("EXT_RUN_ID")
local hdrs = { ["Content-Type"] = "application/json", ["X-API-Key"] = os.getenv("EXT_INGEST_KEY") }
function request()
    n = n + 1
    local body = string.format("$template_lua", string.format("true_15551230001@c.us_%s_%d_%d", run, tid, n))
    return wrk.format("POST", "/v1/ingest", hdrs, body)
end
$LUA_COMMON
EOF

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p; s/^EXT $1=\([^ ]*\).*/\1/p" <<<"$2" | head -1; }

# Runs wrk; prints its EXT line. $1 = URL, $2 = Lua script, $3 = log file for wrk's own output.
run_wrk() {
    wrk -t"$EXT_THREADS" -c"$EXT_CONNECTIONS" -d"${EXT_SECS}s" --timeout 60s --latency \
        -s "$2" "$1" >"$3" 2>&1 || { cat "$3" >&2; die "wrk failed"; }
    grep '^EXT ' "$3" || { cat "$3" >&2; die "wrk printed no result"; }
}

CEILINGS=()
ceiling() {
    local tag=$1 out la0 la1 ok dur rate
    la0=$(loadavg)
    out=$(run_wrk "http://127.0.0.1:$NGINX_PORT/ceiling" "$WORK/ceiling.lua" "$WORK/wrk-ceiling-$tag.txt")
    la1=$(loadavg)
    ok=$(field ok "$out"); dur=$(field duration_us "$out")
    rate=$(python3 -c "print(round($ok / ($dur / 1e6)))")
    log "ceiling ($tag): $rate requests/s (wrk: $out; load $la0 -> $la1)"
    CEILINGS+=("$tag|$rate|$ok|$(field other "$out")|$la0|$la1")
}

ADMIN_KEY="ext-admin-key-0123456789abcdef0123"
INGEST_KEY="ext-ingest-key-0123456789abcdef0123"
export EXT_INGEST_KEY=$INGEST_KEY

ROWS=()
# $1 = label, $2 = database URL.
bridge_run() {
    local label=$1 db=$2 port base arrivals_log start out la0 la1 ok other dur pending stats last deadline
    port=$(free_port)
    base="http://127.0.0.1:$port"
    WABRIDGE_API_KEY=$ADMIN_KEY WABRIDGE_INGEST_KEY=$INGEST_KEY \
        WABRIDGE_LISTEN="127.0.0.1:$port" WABRIDGE_DATABASE_URL="$db" \
        WABRIDGE_ALLOW_TARGETS=127.0.0.1/32 WABRIDGE_LOG_FORMAT=json \
        "$WABRIDGE_BIN" serve >"$WORK/bridge-$label.log" 2>&1 &
    BRIDGE_PID=$!
    deadline=$(( $(date +%s) + 60 ))
    until curl -sf -o /dev/null "$base/readyz"; do
        [ "$(date +%s)" -lt "$deadline" ] || { tail -20 "$WORK/bridge-$label.log" >&2; die "bridge not ready"; }
        sleep 0.05
    done
    curl -sf -o /dev/null -X POST "$base/v1/webhooks" -H "X-API-Key: $ADMIN_KEY" \
        -H 'Content-Type: application/json' \
        -d "{\"url\":\"http://127.0.0.1:$NGINX_PORT/hook/$label\",\"events\":[\"message.received\"]}" \
        || die "registration refused"
    arrivals_log="$WORK/nginx/arrivals.log"
    : >"$arrivals_log"   # nginx appends (O_APPEND): truncating starts the count at 0
    export EXT_RUN_ID="$label-$$"
    la0=$(loadavg)
    start=$(date +%s.%N)
    out=$(run_wrk "$base/v1/ingest" "$WORK/ingest.lua" "$WORK/wrk-$label.txt")
    la1=$(loadavg)
    ok=$(field ok "$out"); other=$(field other "$out"); dur=$(field duration_us "$out")
    log "$label: wrk: $out; load $la0 -> $la1"
    # Drained: the bridge reports nothing pending or in flight, and nginx counted at least every
    # 202 (requests in flight when wrk stopped may be committed without wrk seeing the 202).
    # Without GET /v1/stats (an older binary): nginx's count unchanged for 5 s.
    deadline=$(( $(date +%s) + EXT_DRAIN_SECS ))
    local seen=-1 still=0 now
    while :; do
        stats=$(curl -sf "$base/v1/stats" -H "X-API-Key: $ADMIN_KEY" || echo '{}')
        pending=$(python3 -c 'import json,sys; s=json.loads(sys.argv[1] or "{}"); print(s.get("pending",-1))' "$stats")
        now=$(wc -l <"$arrivals_log")
        if [ "$now" = "$seen" ]; then still=$((still + 1)); else still=0; seen=$now; fi
        if [ "$now" -ge "$ok" ] && { [ "$pending" = 0 ] || { [ "$pending" = -1 ] && [ "$still" -ge 25 ]; }; }; then break; fi
        [ "$(date +%s)" -lt "$deadline" ] || { log "$label: not drained after ${EXT_DRAIN_SECS}s: $stats, $now arrivals"; break; }
        sleep 0.2
    done
    sleep 1   # nginx writes the log line after the answer
    stats=$(curl -sf "$base/v1/stats" -H "X-API-Key: $ADMIN_KEY" || echo '{}')
    log "$label: drained; /v1/stats $stats; nginx counted $(wc -l <"$arrivals_log") arrivals"
    kill "$BRIDGE_PID"; wait "$BRIDGE_PID" 2>/dev/null || true; BRIDGE_PID=
    ROWS+=("$(python3 - "$arrivals_log" "$start" "$ok" "$other" "$dur" "$label" "$la0" "$la1" "$stats" "$(field p50_ms "$out")" "$(field p99_ms "$out")" <<'PY'
import json, sys
log, start, ok, other, dur, label, la0, la1, stats, p50, p99 = sys.argv[1:]
start, ok, other, dur = float(start), int(ok), int(other), int(dur) / 1e6
t = sorted(float(l.split()[0]) for l in open(log) if l.strip())
statuses = {}
for l in open(log):
    if l.strip():
        s = l.split()[1]
        statuses[s] = statuses.get(s, 0) + 1
n = len(t)
during = sum(1 for x in t if x <= start + dur)
first, last = (t[0], t[-1]) if t else (start, start)
# The time by which as many deliveries had arrived as wrk saw 202s: the drain of what was
# accepted. Requests in flight when wrk stopped may still be committed (arrivals > 202s); they
# are counted, but their arrival times are reported apart.
k = min(ok, n)
t_k = t[k - 1] if k else start
print(json.dumps({
    "label": label, "accepted": ok, "refused": other, "wrk_secs": dur,
    "accepted_per_sec": ok / dur,
    "arrivals": n, "statuses": statuses,
    "delivered_during_load_per_sec": during / dur,
    "delivered_until_drained_per_sec": n / (last - start) if n else 0.0,
    "delivered_accepted_per_sec": k / (t_k - start) if k else 0.0,
    "accepted_drained_after_load_secs": max(0.0, t_k - (start + dur)),
    "late": n - k,
    "delivered_first_to_last_per_sec": n / (last - first) if n > 1 else 0.0,
    "drained_after_load_secs": max(0.0, last - (start + dur)),
    "p50_ms": float(p50), "p99_ms": float(p99), "load_before": la0, "load_after": la1,
    "stats": stats,
}))
PY
)")
}

log "wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'), $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), nginx worker_processes $EXT_NGINX_WORKERS, $(nproc) cores"
ceiling before
PG_SETTINGS=
if wants sqlite; then
    bridge_run sqlite "sqlite://$WORK/wabridge.db"
fi
if wants postgres; then
    admin=$WABRIDGE_TEST_POSTGRES_URL
    dbname="wabridge_ext_$$"
    psql -q -X "$admin" -c "CREATE DATABASE $dbname" >/dev/null || die "CREATE DATABASE failed"
    PG_SETTINGS=$(psql -X -At "$admin" -c "SELECT 'fsync=' || current_setting('fsync') || ', synchronous_commit=' || current_setting('synchronous_commit') || ', full_page_writes=' || current_setting('full_page_writes') || ', ' || version()")
    log "PostgreSQL: $PG_SETTINGS"
    bridge_run postgres "${admin%/*}/$dbname"
    psql -q -X "$admin" -c "DROP DATABASE $dbname" >/dev/null || true
fi
ceiling after

mkdir -p "$(dirname "$EXT_OUT")"
python3 - "$EXT_OUT" "$EXT_SECS" "$EXT_CONNECTIONS" "$EXT_THREADS" "$EXT_NGINX_WORKERS" \
    "$(wrk -v 2>&1 | head -1 | awk '{print $2}')" "$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')" \
    "$PG_SETTINGS" "$(git -C "$ROOT" rev-parse --short=9 HEAD)" "$(nproc)" \
    "$(printf '%s\n' "${CEILINGS[@]}")" "$(printf '%s\n' "${ROWS[@]}")" <<'PY'
import json, sys, datetime
out, secs, conns, threads, workers, wrk_v, nginx_v, pg, commit, cores, ceilings, rows = sys.argv[1:]
ceilings = [c.split("|") for c in ceilings.splitlines() if c]
rows = [json.loads(r) for r in rows.splitlines() if r]
ceiling = max(int(c[1]) for c in ceilings)
o = []
w = o.append
w(f"Run {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}, commit `{commit}`, {cores} cores; "
  f"wrk {wrk_v} (-t{threads} -c{conns} -d{secs}s), {nginx_v} (worker_processes {workers}).")
w("")
w("| ceiling run | requests/s | non-204 | load average before → after |")
w("|---|---|---|---|")
for tag, rate, ok, other, la0, la1 in ceilings:
    w(f"| wrk → nginx, {tag} the bridge runs | {int(rate):,} | {other} | {la0} → {la1} |")
w("")
w(f"Ceiling (the higher): **{ceiling:,} requests/s**.")
w("")
w("| bridge | accepted (202) | other answers | accepted/s | × ceiling | arrivals at nginx | delivered/s during the load | delivered/s, accepted count drained | × ceiling | accepted count drained after the load | last arrival after the load | ingest p50 / p99 (wrk) | load average before → after |")
w("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    name = {"sqlite": "wabridge, SQLite, synchronous=FULL (default)", "postgres": f"wabridge, PostgreSQL ({pg.split(', PostgreSQL')[0] if pg else ''})"}[r["label"]]
    w(f"| {name} | {r['accepted']:,} | {r['refused']} | {r['accepted_per_sec']:,.0f} | {r['accepted_per_sec']/ceiling:.4f} | "
      f"{r['arrivals']:,} | {r['delivered_during_load_per_sec']:,.0f} | {r['delivered_accepted_per_sec']:,.0f} | "
      f"{r['delivered_accepted_per_sec']/ceiling:.4f} | {r['accepted_drained_after_load_secs']:.1f} s | {r['drained_after_load_secs']:.1f} s ({r['late']} late) | {r['p50_ms']:.1f} / {r['p99_ms']:.1f} ms | {r['load_before']} → {r['load_after']} |")
w("")
w("accepted/s = 202s / wrk's duration. delivered/s during the load = arrivals stamped (nginx `$msec`) "
  "before wrk's end / wrk's duration. delivered/s, accepted count drained = the number of 202s / the "
  "time from wrk's start to the arrival that brought nginx's count to that number. *late* = arrivals "
  "beyond the number of 202s (requests in flight when wrk stopped, committed by the bridge but never "
  "answered to wrk), and when the last of them arrived.")
w("")
for r in rows:
    w(f"- {r['label']}: nginx statuses {r['statuses']}; bridge /v1/stats after the drain {r['stats']}.")
if pg:
    w(f"- PostgreSQL: {pg}.")
text = "\n".join(o) + "\n"
open(out, "w").write(text)
print(text)
PY
log "wrote $EXT_OUT"
