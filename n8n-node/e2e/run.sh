#!/usr/bin/env bash
# End-to-end test: a real n8n 2.8.4 with this package installed as a community node, and a real
# wabridge bridge, both on loopback.
#
#   bash n8n-node/e2e/run.sh
#
# What it does: builds and packs the node; installs n8n once into a scratch folder (reused on
# later runs); builds the bridge (cargo build --release) and starts it; starts n8n; sets up the
# owner, an API key, a wabridge credential and a workflow with the trigger; activates it; then
#   (1) the bridge holds a registration for n8n's production webhook URL,
#   (2) each session event ingested into the bridge produces a successful n8n execution with
#       that event's data,
#   (3) a delivery with a bad signature posted straight to n8n is refused (401) and runs nothing,
#   (4) deactivating the workflow deletes the registration on the bridge.
# It prints PASS/FAIL per check, "N passed, N failed", and exits non-zero on any failure.
#
# Environment (all optional):
#   WABRIDGE_E2E_N8N_DIR  where n8n is installed   (default $HOME/.cache/wabridge-e2e/n8n)
#   WABRIDGE_BIN          a wabridge binary to use instead of building target/release/wabridge
#   E2E_KEEP=1            keep the temporary folder (logs, databases) after the run
#   E2E_TIMEOUT           seconds to wait for each execution (default 60)
#
# Needs: Node.js 20 + npm, cargo, curl, jq; libsqlite3-dev (installed with apt-get if missing,
# since n8n's sqlite3 is built from source here). The first run downloads and builds n8n
# (~8 minutes on 2 cores, ~2.3 GB); later runs take about a minute plus the bridge build.
set -euo pipefail

START_SECONDS=$SECONDS
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PKG_DIR="$(dirname "$HERE")"
REPO_DIR="$(dirname "$PKG_DIR")"
N8N_VERSION=2.8.4
N8N_DIR="${WABRIDGE_E2E_N8N_DIR:-$HOME/.cache/wabridge-e2e/n8n}"
EXEC_TIMEOUT="${E2E_TIMEOUT:-60}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/wabridge-e2e.XXXXXX")"
PIDS=()
PASSED=0
FAILED=0
SUMMARY_PRINTED=no

log() { printf '[e2e %4ds] %s\n' "$((SECONDS - START_SECONDS))" "$*" >&2; }
die() {
	log "ERROR: $*"
	fail "setup: $*"
	exit 2
}
pass() {
	PASSED=$((PASSED + 1))
	echo "PASS: $*"
}
fail() {
	FAILED=$((FAILED + 1))
	echo "FAIL: $*"
}

cleanup() {
	local status=$?
	set +e
	# Stop what this script started: each service runs in its own process group (setsid).
	for pid in "${PIDS[@]}"; do
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	if [ "$status" -ne 0 ] && [ "$FAILED" -eq 0 ]; then
		fail "aborted with status $status"
	fi
	if [ "$SUMMARY_PRINTED" = no ]; then echo "$PASSED passed, $FAILED failed"; fi
	if [ "$status" -ne 0 ] && [ "$PASSED" -eq 0 ]; then
		for f in "$WORK"/*.log; do
			[ -f "$f" ] || continue
			echo "---- last lines of $(basename "$f") ----" >&2
			tail -n 40 "$f" >&2
		done
	fi
	if [ "${E2E_KEEP:-0}" = 1 ]; then
		log "kept $WORK"
	else
		rm -rf "$WORK"
	fi
	echo "e2e run time: $((SECONDS - START_SECONDS)) s"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

random_hex() { node -e "console.log(require('crypto').randomBytes($1).toString('hex'))"; }

uuid() { node -e 'console.log(require("crypto").randomUUID())'; }

# wait_http URL SECONDS [PID]: until URL answers 2xx; gives up early if PID died.
wait_http() {
	local url=$1 limit=$2 pid=${3:-}
	local deadline=$((SECONDS + limit))
	while [ $SECONDS -lt $deadline ]; do
		if curl -fsS -o /dev/null --max-time 5 "$url" 2>/dev/null; then return 0; fi
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
		sleep 1
	done
	return 1
}

need() { command -v "$1" >/dev/null 2>&1; }

apt_install() {
	local runner=()
	if [ "$(id -u)" -ne 0 ]; then
		need sudo || die "$* is missing and I am not root: install it ($*) and run again"
		runner=(sudo)
	fi
	log "installing $* with apt-get"
	"${runner[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${runner[@]}" apt-get install -y -qq "$@" >/dev/null
}

# ---------------------------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------------------------
need node || die "node is required"
need npm || die "npm is required"
for tool in curl jq; do need "$tool" || apt_install "$tool"; done
if ! dpkg -s libsqlite3-dev >/dev/null 2>&1; then apt_install libsqlite3-dev; fi

# ---------------------------------------------------------------------------------------------
# 1. Build and pack the node package
# ---------------------------------------------------------------------------------------------
log "building and packing n8n-nodes-wabridge"
(
	cd "$PKG_DIR"
	if [ ! -d node_modules/@n8n/node-cli ]; then npm ci --no-audit --no-fund >"$WORK/node-npm-ci.log" 2>&1; fi
	npm run build >"$WORK/node-build.log" 2>&1
	npm pack --pack-destination "$WORK" >"$WORK/node-pack.log" 2>&1
) || die "building the node failed (see $WORK/node-*.log)"
TARBALL="$(ls "$WORK"/n8n-nodes-wabridge-*.tgz)"
log "packed $(basename "$TARBALL")"

# ---------------------------------------------------------------------------------------------
# 2. Install n8n (once)
# ---------------------------------------------------------------------------------------------
N8N_BIN="$N8N_DIR/node_modules/.bin/n8n"
installed_version() {
	node -p "require('$N8N_DIR/node_modules/n8n/package.json').version" 2>/dev/null || true
}
if [ ! -x "$N8N_BIN" ] || [ "$(installed_version)" != "$N8N_VERSION" ]; then
	log "installing n8n $N8N_VERSION into $N8N_DIR (slow: ~8 minutes the first time)"
	mkdir -p "$N8N_DIR"
	# xlsx: n8n pins a tarball on a host that is not reachable here; 0.18.5 is on the registry.
	cat >"$N8N_DIR/package.json" <<EOF
{
  "name": "wabridge-e2e-n8n",
  "private": true,
  "description": "Scratch install of n8n for the wabridge end-to-end test",
  "dependencies": { "n8n": "$N8N_VERSION" },
  "overrides": { "xlsx": "0.18.5" }
}
EOF
	# n8n needs its install scripts (sqlite3 is compiled against the system library because its
	# prebuilt binary cannot be downloaded here), so the package's ignore-scripts must not leak in.
	(
		cd "$N8N_DIR"
		env -u npm_config_ignore_scripts -u NPM_CONFIG_IGNORE_SCRIPTS \
			npm_config_build_from_source=true npm_config_sqlite=/usr npm_config_nodedir=/usr \
			npm install --no-audit --no-fund --ignore-scripts=false --loglevel=warn
	) >"$WORK/n8n-install.log" 2>&1 || die "installing n8n failed (see $WORK/n8n-install.log)"
fi
[ -x "$N8N_BIN" ] || die "n8n binary missing at $N8N_BIN"
log "n8n $(installed_version) at $N8N_DIR"

# ---------------------------------------------------------------------------------------------
# 3. The n8n user folder with the packed node installed as a package
# ---------------------------------------------------------------------------------------------
N8N_USER="$WORK/n8n-user"
NODES_DIR="$N8N_USER/.n8n/nodes"
mkdir -p "$NODES_DIR"
echo '{"name":"installed-nodes","private":true,"dependencies":{}}' >"$NODES_DIR/package.json"
(
	cd "$NODES_DIR"
	# No scripts, no peer installs: n8n itself provides n8n-workflow.
	npm install "$TARBALL" --ignore-scripts --legacy-peer-deps --no-audit --no-fund --loglevel=warn
) >"$WORK/nodes-install.log" 2>&1 || die "installing the packed node failed (see $WORK/nodes-install.log)"

# ---------------------------------------------------------------------------------------------
# 4. Build and start the bridge
# ---------------------------------------------------------------------------------------------
if [ -n "${WABRIDGE_BIN:-}" ]; then
	BRIDGE_BIN="$WABRIDGE_BIN"
else
	log "building the bridge (cargo build --release)"
	(cd "$REPO_DIR" && cargo build --release) >"$WORK/cargo.log" 2>&1 ||
		die "cargo build failed (see $WORK/cargo.log)"
	BRIDGE_BIN="$REPO_DIR/target/release/wabridge"
fi
[ -x "$BRIDGE_BIN" ] || die "no bridge binary at $BRIDGE_BIN"

BRIDGE_PORT="$(free_port)"
BRIDGE="http://127.0.0.1:$BRIDGE_PORT"
API_KEY="e2e-api-$(random_hex 16)"
INGEST_KEY="e2e-ingest-$(random_hex 16)"
log "starting the bridge on $BRIDGE"
setsid env \
	WABRIDGE_API_KEY="$API_KEY" \
	WABRIDGE_INGEST_KEY="$INGEST_KEY" \
	WABRIDGE_ALLOW_TARGETS="127.0.0.1/32,localhost" \
	WABRIDGE_RETRY_SCHEDULE="0,1s,2s" \
	"$BRIDGE_BIN" serve --listen "127.0.0.1:$BRIDGE_PORT" --database-url "sqlite://$WORK/e2e.db" \
	>"$WORK/bridge.log" 2>&1 &
BRIDGE_PID=$!
PIDS+=("$BRIDGE_PID")
wait_http "$BRIDGE/v1/events" 60 "$BRIDGE_PID" || die "the bridge did not come up (see $WORK/bridge.log)"

bridge() { # bridge METHOD PATH [JSON]: prints the body, then the status on the last line
	local method=$1 path=$2 data=${3:-}
	local args=(-sS -X "$method" -H "X-API-Key: $API_KEY" -H 'Accept: application/json' -w '\n%{http_code}')
	if [ -n "$data" ]; then args+=(-H 'Content-Type: application/json' --data "$data"); fi
	curl "${args[@]}" "$BRIDGE$path"
}

# ---------------------------------------------------------------------------------------------
# 5. Start n8n
# ---------------------------------------------------------------------------------------------
N8N_PORT="$(free_port)"
RUNNERS_PORT="$(free_port)"
while [ "$RUNNERS_PORT" = "$N8N_PORT" ]; do RUNNERS_PORT="$(free_port)"; done
N8N="http://127.0.0.1:$N8N_PORT"
log "starting n8n on $N8N"
setsid env \
	N8N_USER_FOLDER="$N8N_USER" \
	N8N_PORT="$N8N_PORT" \
	N8N_LISTEN_ADDRESS=127.0.0.1 \
	N8N_HOST=127.0.0.1 \
	WEBHOOK_URL="$N8N/" \
	N8N_RUNNERS_BROKER_PORT="$RUNNERS_PORT" \
	N8N_DIAGNOSTICS_ENABLED=false \
	N8N_PERSONALIZATION_ENABLED=false \
	N8N_VERSION_NOTIFICATIONS_ENABLED=false \
	N8N_TEMPLATES_ENABLED=false \
	N8N_SECURE_COOKIE=false \
	N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS=false \
	N8N_COMMUNITY_PACKAGES_ENABLED=true \
	EXECUTIONS_DATA_SAVE_ON_SUCCESS=all \
	EXECUTIONS_DATA_SAVE_ON_ERROR=all \
	N8N_LOG_LEVEL=info \
	"$N8N_BIN" start >"$WORK/n8n.log" 2>&1 &
N8N_PID=$!
PIDS+=("$N8N_PID")
# /healthz (and even /healthz/readiness) answer 200 while the database migrations still run,
# and until then every other route answers "n8n is starting up" (also 200) or 404. Wait for
# the REST API itself: /rest/settings answering JSON.
n8n_ready() { curl -fsS --max-time 5 "$N8N/rest/settings" 2>/dev/null | jq -e '.data' >/dev/null 2>&1; }
deadline=$((SECONDS + 300))
until n8n_ready; do
	kill -0 "$N8N_PID" 2>/dev/null || die "n8n exited during startup (see $WORK/n8n.log)"
	[ $SECONDS -lt $deadline ] || die "n8n did not come up within 300 s (see $WORK/n8n.log)"
	sleep 1
done
log "n8n is up"

COOKIES="$WORK/cookies.txt"
BROWSER_ID="wabridge-e2e-$(random_hex 4)"
rest() { # rest METHOD PATH [JSON]: n8n's internal API, as the logged-in owner
	local method=$1 path=$2 data=${3:-}
	local args=(-sS -X "$method" -b "$COOKIES" -c "$COOKIES" -H "browser-id: $BROWSER_ID" -w '\n%{http_code}')
	if [ -n "$data" ]; then args+=(-H 'Content-Type: application/json' --data "$data"); fi
	curl "${args[@]}" "$N8N$path"
}
N8N_API_KEY=""
api() { # api METHOD PATH [JSON]: n8n's public API
	local method=$1 path=$2 data=${3:-}
	local args=(-sS -X "$method" -H "X-N8N-API-KEY: $N8N_API_KEY" -H 'Accept: application/json' -w '\n%{http_code}')
	if [ -n "$data" ]; then args+=(-H 'Content-Type: application/json' --data "$data"); fi
	curl "${args[@]}" "$N8N$path"
}
body_of() { sed '$d' <<<"$1"; }
status_of() { tail -n 1 <<<"$1"; }
expect_status() { # expect_status RESPONSE CODE... : dies unless the status is one of CODE
	local response=$1
	shift
	local got
	got="$(status_of "$response")"
	for code in "$@"; do [ "$got" = "$code" ] && return 0; done
	die "unexpected HTTP $got: $(body_of "$response" | head -c 800)"
}

# ---------------------------------------------------------------------------------------------
# 6. Owner, API key, credential, workflow
# ---------------------------------------------------------------------------------------------
OWNER_PASSWORD="E2e-$(random_hex 8)-Pw1"
r="$(rest POST /rest/owner/setup "$(jq -nc --arg pw "$OWNER_PASSWORD" \
	'{email:"e2e@wabridge.test",firstName:"E2E",lastName:"Owner",password:$pw}')")"
expect_status "$r" 200
[ "$(body_of "$r" | jq -r '.data.isOwner // empty' 2>/dev/null)" = true ] ||
	die "owner setup did not answer with the owner: $(body_of "$r" | head -c 400)"
log "owner set up"

# n8n 2.x: {label, scopes, expiresAt (Unix seconds or null)}; the scopes a key may have are
# offered by GET /rest/api-keys/scopes.
r="$(rest GET /rest/api-keys/scopes)"
expect_status "$r" 200
SCOPES="$(body_of "$r" | jq -c '.data')"
r="$(rest POST /rest/api-keys "$(jq -nc --argjson scopes "$SCOPES" \
	'{label:"wabridge e2e",scopes:$scopes,expiresAt:null}')")"
expect_status "$r" 200 201
N8N_API_KEY="$(body_of "$r" | jq -r '.data.rawApiKey // .data.apiKey // empty')"
[ -n "$N8N_API_KEY" ] || die "no API key in $(body_of "$r" | head -c 400)"
log "API key created"

# n8n adds "Allowed HTTP Request Domains" to every credential type; its public API schema
# then wants the field (or the domain list) in the data.
r="$(api POST /api/v1/credentials "$(jq -nc --arg url "$BRIDGE" --arg key "$API_KEY" \
	'{name:"wabridge e2e",type:"waBridgeApi",data:{baseUrl:$url,apiKey:$key,allowedHttpRequestDomains:"all"}}')")"
expect_status "$r" 200 201
CREDENTIAL_ID="$(body_of "$r" | jq -r '.id')"
log "credential $CREDENTIAL_ID created"

EVENTS=(session.qr session.authenticated session.disconnected session.status)
WEBHOOK_ID="$(uuid)"
NODE_NAME="wabridge Trigger"
WORKFLOW_JSON="$(jq -nc \
	--arg webhookId "$WEBHOOK_ID" --arg nodeId "$(uuid)" --arg name "$NODE_NAME" \
	--arg credId "$CREDENTIAL_ID" --argjson events "$(printf '%s\n' "${EVENTS[@]}" | jq -R . | jq -sc .)" \
	'{
		name: "wabridge e2e",
		nodes: [{
			id: $nodeId, name: $name, type: "n8n-nodes-wabridge.waBridgeTrigger", typeVersion: 1,
			position: [0, 0], webhookId: $webhookId,
			parameters: {events: $events, sessionId: "", options: {dedupe: true}},
			credentials: {waBridgeApi: {id: $credId, name: "wabridge e2e"}}
		}],
		connections: {},
		settings: {executionOrder: "v1", saveDataSuccessExecution: "all", saveManualExecutions: true}
	}')"
r="$(api POST /api/v1/workflows "$WORKFLOW_JSON")"
expect_status "$r" 200 201
WORKFLOW_ID="$(body_of "$r" | jq -r '.id')"
log "workflow $WORKFLOW_ID created"

r="$(api POST "/api/v1/workflows/$WORKFLOW_ID/activate")"
expect_status "$r" 200
log "workflow activated"

PRODUCTION_URL="$N8N/webhook/$WEBHOOK_ID/webhook"

# ---------------------------------------------------------------------------------------------
# Check 1: the registration exists on the bridge with n8n's production URL
# ---------------------------------------------------------------------------------------------
r="$(bridge GET '/v1/webhooks?limit=50')"
REGISTRATION="$(body_of "$r" | jq -c --arg url "$PRODUCTION_URL" '[.data[]? | select(.url == $url)] | first // empty')"
REGISTRATION_ID=""
if [ -n "$REGISTRATION" ]; then REGISTRATION_ID="$(jq -r '.id' <<<"$REGISTRATION")"; fi
if [ "$(status_of "$r")" = 200 ] && [ -n "$REGISTRATION_ID" ]; then
	registered_events="$(jq -c '.events | sort' <<<"$REGISTRATION")"
	wanted_events="$(printf '%s\n' "${EVENTS[@]}" | jq -R . | jq -sc 'sort')"
	if [ "$registered_events" = "$wanted_events" ]; then
		pass "1 registration $REGISTRATION_ID for $PRODUCTION_URL with events $registered_events"
	else
		fail "1 registration for $PRODUCTION_URL has events $registered_events, wanted $wanted_events"
	fi
else
	fail "1 no registration for $PRODUCTION_URL on the bridge (HTTP $(status_of "$r")): $(body_of "$r" | head -c 600)"
fi

# ---------------------------------------------------------------------------------------------
# Check 2: ingested session events reach the workflow
# ---------------------------------------------------------------------------------------------
# Prints the envelope (first output item of the trigger) of the successful execution carrying
# EVENT with DATA, or nothing.
find_execution() {
	local event=$1 data=$2
	local r
	r="$(api GET "/api/v1/executions?workflowId=$WORKFLOW_ID&includeData=true&limit=100")"
	[ "$(status_of "$r")" = 200 ] || return 0
	body_of "$r" | jq -c --arg node "$NODE_NAME" --arg event "$event" --argjson data "$data" '
		[.data[]?
			| select(.status == "success" or .finished == true)
			| .data.resultData.runData[$node][0].data.main[0][0].json? // empty
			| select(.event == $event and .data == $data)]
		| first // empty'
}

count_executions() {
	local r
	r="$(api GET "/api/v1/executions?workflowId=$WORKFLOW_ID&limit=250")"
	body_of "$r" | jq '.data | length'
}

RUN_TAG="$(random_hex 4)"
SESSION="e2e-$RUN_TAG"
declare -A EVENT_DATA=(
	[session.qr]="$(jq -nc --arg s "$SESSION" --arg qr "2@e2e-qr-$RUN_TAG" '{sessionId:$s,qr:$qr}')"
	[session.authenticated]="$(jq -nc --arg s "$SESSION" --arg n "E2E $RUN_TAG" '{sessionId:$s,phone:"15550100",pushName:$n}')"
	[session.disconnected]="$(jq -nc --arg s "$SESSION" '{sessionId:$s,reason:"LOGOUT"}')"
	[session.status]="$(jq -nc --arg s "$SESSION" '{sessionId:$s,status:"ready"}')"
)
for event in "${EVENTS[@]}"; do
	data="${EVENT_DATA[$event]}"
	r="$(curl -sS -X POST -H "X-API-Key: $INGEST_KEY" -H 'Content-Type: application/json' -w '\n%{http_code}' \
		--data "$(jq -nc --arg e "$event" --arg s "$SESSION" --argjson d "$data" '{event:$e,sessionId:$s,data:$d}')" \
		"$BRIDGE/v1/ingest")"
	if [ "$(status_of "$r")" -lt 200 ] || [ "$(status_of "$r")" -ge 300 ]; then
		fail "2 $event: the bridge refused the ingest (HTTP $(status_of "$r")): $(body_of "$r" | head -c 600)"
		continue
	fi
	found=""
	deadline=$((SECONDS + EXEC_TIMEOUT))
	while [ $SECONDS -lt $deadline ]; do
		found="$(find_execution "$event" "$data")"
		[ -n "$found" ] && break
		sleep 1
	done
	if [ -n "$found" ]; then
		pass "2 $event reached n8n: $(jq -c '{event, sessionId, idempotencyKey, data}' <<<"$found")"
	else
		fail "2 $event: no successful execution with its data within ${EXEC_TIMEOUT}s"
	fi
done

# ---------------------------------------------------------------------------------------------
# Check 3: a delivery with a bad signature is refused and runs nothing
# ---------------------------------------------------------------------------------------------
before="$(count_executions)"
forged_key="forged-$RUN_TAG"
forged="$(jq -nc --arg s "$SESSION" --arg k "$forged_key" \
	'{event:"session.status",sessionId:$s,timestamp:"2026-01-01T00:00:00Z",idempotencyKey:$k,deliveryId:"dlv_forged",data:{sessionId:$s,status:"failed"}}')"
code="$(curl -sS -o "$WORK/forged-response.txt" -w '%{http_code}' -X POST \
	-H 'Content-Type: application/json' \
	-H "webhook-id: $forged_key" \
	-H "webhook-timestamp: $(date +%s)" \
	-H "webhook-signature: v1,$(head -c 32 /dev/urandom | base64)" \
	--data "$forged" "$PRODUCTION_URL")"
sleep 3
after="$(count_executions)"
if [ "$code" = 401 ] && [ "$before" = "$after" ]; then
	pass "3 forged delivery refused with 401, executions unchanged ($after)"
else
	fail "3 forged delivery: HTTP $code (want 401), executions $before -> $after: $(head -c 300 "$WORK/forged-response.txt")"
fi

# ---------------------------------------------------------------------------------------------
# Check 4: deactivation deletes the registration
# ---------------------------------------------------------------------------------------------
r="$(api POST "/api/v1/workflows/$WORKFLOW_ID/deactivate")"
if [ "$(status_of "$r")" != 200 ]; then
	fail "4 deactivating the workflow failed (HTTP $(status_of "$r")): $(body_of "$r" | head -c 400)"
elif [ -z "$REGISTRATION_ID" ]; then
	fail "4 no registration id from check 1 to look up"
else
	gone=""
	for _ in $(seq 1 20); do
		r="$(bridge GET "/v1/webhooks/$REGISTRATION_ID")"
		if [ "$(status_of "$r")" = 404 ]; then
			gone=yes
			break
		fi
		sleep 0.5
	done
	if [ -n "$gone" ]; then
		pass "4 deactivation deleted registration $REGISTRATION_ID (GET -> 404)"
	else
		fail "4 registration $REGISTRATION_ID still there after deactivation (HTTP $(status_of "$r"))"
	fi
fi

# ---------------------------------------------------------------------------------------------
# Check 5 (extra): n8n's credential test passes with the right key and fails with a wrong one
# ---------------------------------------------------------------------------------------------
credential_test() { # credential_test API_KEY: prints n8n's verdict ("OK" or "Error: message")
	local r
	r="$(rest POST /rest/credentials/test "$(jq -nc --arg id "$CREDENTIAL_ID" --arg url "$BRIDGE" --arg key "$1" \
		'{credentials:{id:$id,name:"wabridge e2e",type:"waBridgeApi",data:{baseUrl:$url,apiKey:$key}}}')")"
	body_of "$r" | jq -r '.data | if .status == "OK" then "OK" else "\(.status): \(.message)" end' 2>/dev/null ||
		echo "HTTP $(status_of "$r")"
}
good="$(credential_test "$API_KEY")"
bad="$(credential_test "wrong-$API_KEY")"
if [ "$good" = OK ] && [ "$bad" != OK ]; then
	pass "5 credential test: right key OK, wrong key refused ($bad)"
else
	fail "5 credential test: right key -> $good, wrong key -> $bad"
fi

# ---------------------------------------------------------------------------------------------
# Check 6 (extra): the trigger's event picker offers "*" and exactly the available events
# ---------------------------------------------------------------------------------------------
r="$(rest POST /rest/dynamic-node-parameters/options "$(jq -nc --arg id "$CREDENTIAL_ID" '{
	nodeTypeAndVersion: {name: "n8n-nodes-wabridge.waBridgeTrigger", version: 1},
	methodName: "getEvents", path: "events",
	currentNodeParameters: {events: [], sessionId: "", options: {}},
	credentials: {waBridgeApi: {id: $id, name: "wabridge e2e"}}}')")"
offered="$(body_of "$r" | jq -c '[.data[]?.value] | sort' 2>/dev/null || echo '[]')"
catalog="$(bridge GET /v1/events)"
available="$(body_of "$catalog" | jq -c '[.events[] | select(.status == "available") | .name] + ["*"] | sort')"
reserved="$(body_of "$catalog" | jq -c '[.events[] | select(.status != "available") | .name]')"
if [ "$(status_of "$r")" = 200 ] && [ "$offered" = "$available" ]; then
	pass "6 event picker offers * and the $(($(jq length <<<"$available") - 1)) available events, none of $reserved"
else
	fail "6 event picker (HTTP $(status_of "$r")) offered $offered, wanted $available: $(body_of "$r" | head -c 300)"
fi

# ---------------------------------------------------------------------------------------------
# Check 7 (extra): activating a trigger for a reserved event fails with the bridge's reason
# ---------------------------------------------------------------------------------------------
RESERVED_JSON="$(jq -c '.nodes[0].parameters.events = ["group.join"] | .nodes[0].webhookId = $w | .nodes[0].id = $n | .name = "wabridge e2e reserved"' \
	--arg w "$(uuid)" --arg n "$(uuid)" <<<"$WORKFLOW_JSON")"
r="$(api POST /api/v1/workflows "$RESERVED_JSON")"
RESERVED_ID="$(body_of "$r" | jq -r '.id // empty')"
if [ -z "$RESERVED_ID" ]; then
	fail "7 could not create the reserved-event workflow: $(body_of "$r" | head -c 300)"
else
	r="$(api POST "/api/v1/workflows/$RESERVED_ID/activate")"
	message="$(body_of "$r" | jq -r '.message // empty' 2>/dev/null)"
	if [ "$(status_of "$r")" != 200 ] && grep -q "would never fire" <<<"$message"; then
		pass "7 activation refused (HTTP $(status_of "$r")): $message"
	else
		fail "7 activation for group.join: HTTP $(status_of "$r"), message: $message"
	fi
fi

echo "$PASSED passed, $FAILED failed"
SUMMARY_PRINTED=yes
[ "$FAILED" -eq 0 ]
