#!/usr/bin/env bash
# End-to-end test: a real n8n with this package installed as a community node, and a real
# wabridge bridge, both on loopback.
#
#   bash n8n-node/e2e/run.sh                      # the current n8n (N8N_VERSION below)
#   N8N_VERSION=2.8.4 bash n8n-node/e2e/run.sh    # an older one (Node 20)
#
# What it does: builds and packs the node; installs a Node.js that fits the n8n version when the
# machine's is too old (the npm package node-linux-<arch>@<major>); installs n8n once per version
# into a cache outside the repository, from the lock file kept in n8n-node/e2e/n8n/<version>/
# when there is one; builds the bridge (cargo build) and starts it; starts n8n; sets up the
# owner, an API key, a wabridge credential and a workflow with the trigger; activates it; then
#   (1) the bridge holds a registration for n8n's production webhook URL (waiting for it: n8n
#       2.41 activates triggers asynchronously, through its publication outbox, after the
#       activate call has answered),
#   (2) each session event ingested into the bridge produces a successful n8n execution with
#       that event's data,
#   (3) a delivery with a bad signature posted straight to n8n is refused (401) and runs nothing,
#   (4) deactivating the workflow deletes the registration on the bridge,
#   (5) n8n's credential test passes with the right key and fails with a wrong one,
#   (6) the event picker offers exactly what the bridge can deliver (never a reserved event),
#   (7) activating a trigger for a reserved event, and (8) for an unknown name, fails with the
#       bridge's own messages where this n8n reports activation errors: the activate call's
#       answer (n8n 2.8) or the workflow's publication status (n8n 2.41: GET
#       /rest/workflows/<id>/publication-status, the trigger's errorMessage).
# It prints PASS/FAIL per check, "N passed, N failed", and exits non-zero on any failure or when
# n8n cannot be installed or started (never a skip).
#
# Environment (all optional):
#   N8N_VERSION           the n8n to test (default 2.41.1)
#   WABRIDGE_E2E_CACHE    cache folder for Node.js and n8n installs (default ~/.cache/wabridge-e2e)
#   WABRIDGE_BIN          a wabridge binary to use instead of building target/debug/wabridge
#   E2E_KEEP=1            keep the temporary folder (logs, databases) after the run
#   E2E_TIMEOUT           seconds to wait for each execution or activation (default 90)
#   E2E_UPDATE_LOCK=1     after installing without a kept lock file, store it in n8n-node/e2e/n8n/
#   E2E_SCREENSHOTS=DIR   also take screenshots of the editor into DIR with headless Chromium
#                         (/usr/bin/chromium, installed with apt-get if missing; playwright-core)
#
# Needs: npm, cargo, curl, jq; libsqlite3-dev and build tools (n8n's sqlite3 is compiled against
# the system library). A first install of n8n 2.41.1 takes about 8 minutes on 2 cores and
# ~2.9 GB; later runs reuse it and take a minute or two plus the bridge build.
set -euo pipefail

START_SECONDS=$SECONDS
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PKG_DIR="$(dirname "$HERE")"
REPO_DIR="$(dirname "$PKG_DIR")"
N8N_VERSION="${N8N_VERSION:-2.41.1}"
CACHE_DIR="${WABRIDGE_E2E_CACHE:-$HOME/.cache/wabridge-e2e}"
N8N_DIR="$CACHE_DIR/n8n-$N8N_VERSION"
LOCK_DIR="$HERE/n8n/$N8N_VERSION"
EXEC_TIMEOUT="${E2E_TIMEOUT:-90}"
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
need make && need g++ || apt_install build-essential python3

# retry N COMMAND...: runs COMMAND up to N times, waiting 10, 20, ... seconds in between (the
# registry or the network may fail for a moment; a deterministic failure fails every time).
retry() {
	local attempts=$1 n=1
	shift
	until "$@"; do
		[ "$n" -lt "$attempts" ] || return 1
		log "attempt $n of $attempts failed: $*; retrying in $((10 * n)) s"
		sleep $((10 * n))
		n=$((n + 1))
	done
}
# npm's own retries for each fetch, and no registry address in any lock file it writes.
export npm_config_fetch_retries=5 npm_config_fetch_retry_mintimeout=10000 \
	npm_config_fetch_retry_maxtimeout=120000 npm_config_omit_lockfile_registry_resolved=true \
	npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

# ---------------------------------------------------------------------------------------------
# 1. Build and pack the node package (with the machine's Node.js)
# ---------------------------------------------------------------------------------------------
log "building and packing n8n-nodes-wabridge"
(
	cd "$PKG_DIR"
	if [ ! -d node_modules/@n8n/node-cli ]; then retry 3 npm ci >"$WORK/node-npm-ci.log" 2>&1; fi
	npm run build >"$WORK/node-build.log" 2>&1
	npm pack --pack-destination "$WORK" >"$WORK/node-pack.log" 2>&1
) || die "building the node failed (see $WORK/node-*.log)"
TARBALL="$(ls "$WORK"/n8n-nodes-wabridge-*.tgz)"
log "packed $(basename "$TARBALL")"

# ---------------------------------------------------------------------------------------------
# 2. A Node.js that fits this n8n, then n8n itself (both cached per version)
# ---------------------------------------------------------------------------------------------
INSTALL_START=$SECONDS
# The Node.js major an n8n version needs: >= 2.36 wants 24, >= 2.10 wants 22, older runs on 20.
node_major_for() {
	local minor
	IFS=. read -r _ minor _ <<<"$1"
	if [ "${1%%.*}" -gt 2 ] || [ "$minor" -ge 36 ]; then echo 24
	elif [ "$minor" -ge 10 ]; then echo 22
	else echo 20; fi
}
WANT_NODE="$(node_major_for "$N8N_VERSION")"
HAVE_NODE="$(node -p 'process.versions.node.split(".")[0]')"
NODE_BIN_DIR="$(dirname "$(command -v node)")"
NODEDIR=/usr # headers of the machine's Node.js (Debian's nodejs package)
if [ "$HAVE_NODE" -lt "$WANT_NODE" ]; then
	case "$(uname -m)" in
	x86_64) node_arch=x64 ;;
	aarch64) node_arch=arm64 ;;
	*) die "no Node.js $WANT_NODE package for $(uname -m)" ;;
	esac
	NODE_HOME="$CACHE_DIR/node-$WANT_NODE/node_modules/node-linux-$node_arch"
	if [ ! -x "$NODE_HOME/bin/node" ]; then
		log "Node.js $HAVE_NODE is too old for n8n $N8N_VERSION: installing node-linux-$node_arch@$WANT_NODE"
		mkdir -p "$CACHE_DIR/node-$WANT_NODE"
		(cd "$CACHE_DIR/node-$WANT_NODE" &&
			retry 3 npm install --no-save --ignore-scripts --loglevel=warn "node-linux-$node_arch@$WANT_NODE") \
			>"$WORK/node-install.log" 2>&1 || die "installing Node.js $WANT_NODE failed (see $WORK/node-install.log)"
	fi
	NODE_BIN_DIR="$NODE_HOME/bin"
	NODEDIR="$NODE_HOME"
fi
# n8n and npm's builds for it run with this Node.js.
N8N_PATH="$NODE_BIN_DIR:$PATH"
log "Node.js $(PATH="$N8N_PATH" node --version) for n8n $N8N_VERSION"

N8N_BIN="$N8N_DIR/node_modules/.bin/n8n"
STAMP="$N8N_DIR/.wabridge-e2e-installed"
# What the install depends on: the version, the kept lock file, and the Node.js it was built for.
install_id() {
	{
		echo "n8n $N8N_VERSION node $(PATH="$N8N_PATH" node -p process.versions.modules)"
		if [ -f "$LOCK_DIR/package-lock.json" ]; then sha256sum "$LOCK_DIR/package-lock.json" | cut -d' ' -f1; fi
	} | sha256sum | cut -d' ' -f1
}
if [ -x "$N8N_BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$(install_id)" ]; then
	log "n8n $N8N_VERSION already installed in $N8N_DIR"
else
	log "installing n8n $N8N_VERSION into $N8N_DIR (slow: ~8 minutes the first time)"
	rm -rf "$N8N_DIR"
	mkdir -p "$N8N_DIR"
	if [ -f "$LOCK_DIR/package-lock.json" ]; then
		cp "$LOCK_DIR/package.json" "$LOCK_DIR/package-lock.json" "$N8N_DIR/"
		npm_command=(npm ci)
	else
		# xlsx: n8n pins a tarball on a host that is not reachable here; 0.18.5 is on the registry.
		jq -n --arg v "$N8N_VERSION" '{name: "wabridge-e2e-n8n", private: true,
			dependencies: {n8n: $v}, overrides: {xlsx: "0.18.5"}}' >"$N8N_DIR/package.json"
		npm_command=(npm install)
	fi
	# No install scripts: building every native module from source fails here (a Kafka client
	# downloads its sources); n8n needs only sqlite3, built below against the system library.
	(
		set -e
		cd "$N8N_DIR"
		export PATH="$N8N_PATH"
		retry 3 "${npm_command[@]}" --ignore-scripts --loglevel=warn
		npm_config_build_from_source=true npm_config_sqlite=/usr npm_config_nodedir="$NODEDIR" \
			npm rebuild sqlite3 --loglevel=warn
		node -e 'require("sqlite3")'
	) >"$WORK/n8n-install.log" 2>&1 || die "installing n8n $N8N_VERSION failed (see $WORK/n8n-install.log)"
	if [ ! -f "$LOCK_DIR/package-lock.json" ]; then
		if [ "${E2E_UPDATE_LOCK:-0}" = 1 ]; then
			mkdir -p "$LOCK_DIR"
			cp "$N8N_DIR/package.json" "$N8N_DIR/package-lock.json" "$LOCK_DIR/"
			log "kept the lock file in $LOCK_DIR"
		else
			log "no lock file kept for n8n $N8N_VERSION; E2E_UPDATE_LOCK=1 stores this one in $LOCK_DIR"
		fi
	fi
	install_id >"$STAMP"
fi
[ -x "$N8N_BIN" ] || die "n8n binary missing at $N8N_BIN"
installed_version() {
	PATH="$N8N_PATH" node -p "require('$N8N_DIR/node_modules/n8n/package.json').version" 2>/dev/null || true
}
[ "$(installed_version)" = "$N8N_VERSION" ] || die "installed n8n is $(installed_version), not $N8N_VERSION"
log "n8n $(installed_version) at $N8N_DIR (install step: $((SECONDS - INSTALL_START)) s)"

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
	log "building the bridge (cargo build)"
	(cd "$REPO_DIR" && cargo build --bin wabridge) >"$WORK/cargo.log" 2>&1 ||
		die "cargo build failed (see $WORK/cargo.log)"
	BRIDGE_BIN="$REPO_DIR/target/debug/wabridge"
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
	WABRIDGE_RETRY_SCHEDULE="0,1s,2s,4s,8s" \
	WABRIDGE_SOURCES="openwa@0.4.3" \
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
	PATH="$N8N_PATH" \
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

# publication_status WORKFLOW_ID: n8n 2.41's view of a publication, {status, triggers: [{nodeId,
# status, errorMessage}]} with status in_progress | published | partial | failed | not_published;
# "none" on an n8n without the publication service (2.8: activation is synchronous there).
publication_status() {
	local r
	r="$(rest GET "/rest/workflows/$1/publication-status")"
	if [ "$(status_of "$r")" = 200 ]; then body_of "$r" | jq -c '.data // .'; else echo none; fi
}
# wait_published WORKFLOW_ID: until the publication is no longer in progress; prints its status.
wait_published() {
	local st deadline=$((SECONDS + EXEC_TIMEOUT))
	while :; do
		st="$(publication_status "$1")"
		if [ "$st" = none ] || [ "$(jq -r '.status' <<<"$st")" != in_progress ] || [ $SECONDS -ge $deadline ]; then
			echo "$st"
			return
		fi
		sleep 1
	done
}

ACTIVATE_START=$SECONDS
r="$(api POST "/api/v1/workflows/$WORKFLOW_ID/activate")"
expect_status "$r" 200
log "workflow activated (HTTP 200 after $((SECONDS - ACTIVATE_START)) s); waiting for its triggers"
PUBLICATION="$(wait_published "$WORKFLOW_ID")"
log "publication status: $PUBLICATION"

PRODUCTION_URL="$N8N/webhook/$WEBHOOK_ID/webhook"

# ---------------------------------------------------------------------------------------------
# Check 1: the registration exists on the bridge with n8n's production URL
# ---------------------------------------------------------------------------------------------
REGISTRATION=""
deadline=$((SECONDS + EXEC_TIMEOUT))
while [ $SECONDS -lt $deadline ]; do
	r="$(bridge GET '/v1/webhooks?limit=50')"
	REGISTRATION="$(body_of "$r" | jq -c --arg url "$PRODUCTION_URL" '[.data[]? | select(.url == $url)] | first // empty')"
	[ -n "$REGISTRATION" ] && break
	sleep 1
done
REGISTRATION_ID=""
if [ -n "$REGISTRATION" ]; then REGISTRATION_ID="$(jq -r '.id' <<<"$REGISTRATION")"; fi
if [ -n "$REGISTRATION_ID" ]; then
	registered_events="$(jq -c '.events | sort' <<<"$REGISTRATION")"
	wanted_events="$(printf '%s\n' "${EVENTS[@]}" | jq -R . | jq -sc 'sort')"
	if [ "$registered_events" = "$wanted_events" ]; then
		pass "1 registration $REGISTRATION_ID for $PRODUCTION_URL with events $registered_events ($((SECONDS - ACTIVATE_START)) s after the activate call)"
	else
		fail "1 registration for $PRODUCTION_URL has events $registered_events, wanted $wanted_events"
	fi
else
	fail "1 no registration for $PRODUCTION_URL on the bridge within ${EXEC_TIMEOUT}s (publication: $PUBLICATION): $(body_of "$r" | head -c 600)"
fi

# n8n may answer the production URL a moment after the registration exists (2.41: the webhook
# row is stored before create() and served once the publication completes). Wait until it
# routes to the trigger: an unsigned POST is then answered 401 by the node, and runs nothing.
deadline=$((SECONDS + EXEC_TIMEOUT))
code=000
while [ $SECONDS -lt $deadline ]; do
	code="$(curl -sS -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data '{}' "$PRODUCTION_URL" || true)"
	[ "$code" = 401 ] && break
	sleep 1
done
log "production URL answers $code ($((SECONDS - ACTIVATE_START)) s after the activate call)"

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
	deadline=$((SECONDS + EXEC_TIMEOUT))
	while [ $SECONDS -lt $deadline ]; do
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
# Check 6 (extra): the event picker offers exactly what this bridge can deliver
# ---------------------------------------------------------------------------------------------
# Expected: "*", every available event, and "<family>.*" for each family with an available event
# that is not opt-in; never a reserved event.
r="$(rest POST /rest/dynamic-node-parameters/options "$(jq -nc --arg id "$CREDENTIAL_ID" '{
	nodeTypeAndVersion: {name: "n8n-nodes-wabridge.waBridgeTrigger", version: 1},
	methodName: "getEvents", path: "events",
	currentNodeParameters: {events: [], sessionId: "", options: {}},
	credentials: {waBridgeApi: {id: $id, name: "wabridge e2e"}}}')")"
offered="$(body_of "$r" | jq -c '[.data[]?.value] | sort' 2>/dev/null || echo '[]')"
CATALOG="$(body_of "$(bridge GET /v1/events)")"
expected="$(jq -c '
	[.events[] | select((.status // "available") == "available" and (.reservedReason // "") == "")] as $ok
	| ["*"] + [$ok[].name]
	  + ([$ok[] | select(.optIn != true) | (.family // (.name | split(".")[0])) + ".*"] | unique)
	| sort' <<<"$CATALOG")"
reserved="$(jq -c '[.events[] | select((.status // "available") != "available" or (.reservedReason // "") != "") | .name]' <<<"$CATALOG")"
labels="$(body_of "$r" | jq -c '[.data[]? | select(.value == "session.qr" or .value == "message.*") | .name]' 2>/dev/null)"
if [ "$(status_of "$r")" = 200 ] && [ "$offered" = "$expected" ]; then
	pass "6 event picker offers the $(jq length <<<"$expected") deliverable choices (e.g. $labels), none of the reserved $reserved"
else
	fail "6 event picker (HTTP $(status_of "$r")) offered $offered, wanted $expected: $(body_of "$r" | head -c 300)"
fi

# ---------------------------------------------------------------------------------------------
# Checks 7 and 8 (extra): activating a trigger for a reserved event or an unknown name fails,
# and n8n shows the bridge's own messages
# ---------------------------------------------------------------------------------------------
# refused_activation CHECK EVENT: creates a workflow whose trigger wants EVENT and activates it;
# passes when the error n8n reports carries every message of the bridge's refusal of the same
# registration (400 problem+json, errors[].message).
refused_activation() {
	local check=$1 event=$2 r wf_json wf_id message="" how="" st bridge_messages missing
	r="$(bridge POST /v1/webhooks "$(jq -nc --arg e "$event" '{url: "http://127.0.0.1:9/x", events: [$e]}')")"
	if [ "$(status_of "$r")" != 400 ]; then
		fail "$check the bridge itself did not refuse $event (HTTP $(status_of "$r")): $(body_of "$r" | head -c 300)"
		return
	fi
	bridge_messages="$(body_of "$r" | jq -c '[.errors[]?.message]')"
	wf_json="$(jq -c --arg e "$event" --arg w "$(uuid)" --arg n "$(uuid)" \
		'.nodes[0].parameters.events = [$e] | .nodes[0].webhookId = $w | .nodes[0].id = $n | .name = "wabridge e2e \($e)"' \
		<<<"$WORKFLOW_JSON")"
	r="$(api POST /api/v1/workflows "$wf_json")"
	wf_id="$(body_of "$r" | jq -r '.id // empty')"
	REFUSED_IDS+=("$wf_id")
	if [ -z "$wf_id" ]; then
		fail "$check could not create the workflow for $event: $(body_of "$r" | head -c 300)"
		return
	fi
	r="$(api POST "/api/v1/workflows/$wf_id/activate")"
	if [ "$(status_of "$r")" != 200 ]; then
		# n8n 2.8: activation runs create() at once and answers its error.
		message="$(body_of "$r" | jq -r '.message // empty' 2>/dev/null)"
		how="activate answered HTTP $(status_of "$r")"
	else
		# n8n 2.41: the activate call answers 200; the trigger's activation (create(), which n8n
		# tries up to 5 times) fails later and is reported in the publication status.
		st="$(wait_published "$wf_id")"
		message="$(jq -r '[.triggers[]? | select(.status == "failed") | .errorMessage] | join(" | ")' <<<"$st" 2>/dev/null || true)"
		how="activate answered 200, publication status $(jq -r '.status' <<<"$st" 2>/dev/null)"
	fi
	missing="$(jq -r --arg m "$message" '[.[] | select(. as $x | $m | contains($x) | not)] | join(" / ")' <<<"$bridge_messages")"
	if [ -n "$message" ] && [ -z "$missing" ] && [ "$bridge_messages" != "[]" ]; then
		pass "$check activation for $event refused ($how): $message"
	else
		fail "$check activation for $event ($how): message '$message' lacks the bridge's '$missing'"
	fi
}

REFUSED_IDS=()
RESERVED_EVENT="$(jq -r '[.events[] | select((.status // "available") != "available") | .name] | first // empty' <<<"$CATALOG")"
if [ -n "$RESERVED_EVENT" ]; then
	refused_activation 7 "$RESERVED_EVENT"
else
	fail "7 the bridge (WABRIDGE_SOURCES=openwa@0.4.3) lists no reserved event to try"
fi
refused_activation 8 session.connected

# ---------------------------------------------------------------------------------------------
# Optional: screenshots of the editor (E2E_SCREENSHOTS=DIR), with headless Chromium
# ---------------------------------------------------------------------------------------------
if [ -n "${E2E_SCREENSHOTS:-}" ]; then
	[ -x /usr/bin/chromium ] || apt_install chromium
	PW_DIR="$CACHE_DIR/playwright"
	if [ ! -d "$PW_DIR/node_modules/playwright-core" ]; then
		mkdir -p "$PW_DIR"
		# --ignore-scripts: it must not try to download a browser; /usr/bin/chromium is used.
		(cd "$PW_DIR" && retry 3 npm install --no-save --ignore-scripts --loglevel=warn playwright-core@1.65.1) \
			>"$WORK/playwright-install.log" 2>&1 || die "installing playwright-core failed (see $WORK/playwright-install.log)"
	fi
	mkdir -p "$E2E_SCREENSHOTS"
	auth_cookie="$(awk '$6 == "n8n-auth" {print $7}' "$COOKIES" | tail -n 1)"
	if N8N="$N8N" N8N_AUTH_COOKIE="$auth_cookie" BROWSER_ID="$BROWSER_ID" \
		WORKFLOW_ID="$WORKFLOW_ID" NODE_ID="$(jq -r '.nodes[0].id' <<<"$WORKFLOW_JSON")" \
		REFUSED_WORKFLOW_ID="${REFUSED_IDS[0]:-}" OUT_DIR="$(cd "$E2E_SCREENSHOTS" && pwd)" \
		PLAYWRIGHT="$PW_DIR/node_modules/playwright-core" CHROMIUM=/usr/bin/chromium \
		node "$HERE/screenshots.mjs" >"$WORK/screenshots.log" 2>&1; then
		pass "9 screenshots in $E2E_SCREENSHOTS: $(grep -c '^screenshot' "$WORK/screenshots.log")"
	else
		fail "9 screenshots: $(tail -n 5 "$WORK/screenshots.log" | tr '\n' ' ')"
	fi
fi

echo "$PASSED passed, $FAILED failed"
SUMMARY_PRINTED=yes
[ "$FAILED" -eq 0 ]
