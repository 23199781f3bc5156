#!/usr/bin/env bash
# The operator page (/ui) in a real browser: Debian's Chromium, driven by playwright-core
# (pinned in package-lock.json), against the real bridge binary. Installs what it needs on a
# fresh machine (chromium and chromium-driver from Debian's packages, as root; the npm package);
# fails when it cannot. Screenshots go to a temporary directory, or to docs/img with
# UPDATE_SCREENSHOTS=1.
set -euo pipefail
cd "$(dirname "$0")/../.."

chromium=/usr/bin/chromium
if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "tests/ui: $chromium is missing; install Debian's chromium and chromium-driver (run as root to let this script do it)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
fi
[ -x "$chromium" ] || { echo "tests/ui: $chromium is still missing after the install" >&2; exit 1; }
"$chromium" --version

cargo build --quiet
(cd tests/ui && npm ci --no-audit --no-fund --silent)

if [ "${UPDATE_SCREENSHOTS:-0}" = 1 ]; then
  export SCREENSHOT_DIR="$PWD/docs/img"
else
  shots=$(mktemp -d)
  trap 'rm -rf "$shots"' EXIT
  export SCREENSHOT_DIR="$shots"
fi
CHROMIUM="$chromium" node tests/ui/operator.mjs
