#!/usr/bin/env bash
# Prepares (idempotently) the console's end-to-end browser tests (tests/console):
#   1. Debian's Chromium at /usr/bin/chromium (apt-get; `apt-get update` only when the install fails,
#      e.g. on a machine whose package lists are stale or missing);
#   2. tests/console/node_modules from package-lock.json (`npm ci`), only when it is missing or the
#      lock file changed since the last successful install (a stamp file holds its sha256).
# playwright-core drives that system Chromium: no browser is downloaded. Quiet unless something fails.
#
#   LOOKOUT_CHROMIUM   browser the tests use (default /usr/bin/chromium); when set and present,
#                      apt-get is skipped
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/tests/console"
LOCK="$DIR/package-lock.json"
STAMP="$DIR/node_modules/.lookout-package-lock.sha256"
CHROMIUM="${LOOKOUT_CHROMIUM:-/usr/bin/chromium}"

if [[ ! -x "$CHROMIUM" ]]; then
    if [[ "$CHROMIUM" != /usr/bin/chromium ]]; then
        echo "setup-browser.sh: LOOKOUT_CHROMIUM=$CHROMIUM is not an executable" >&2
        exit 1
    fi
    SUDO=()
    if [[ "$(id -u)" != 0 ]]; then SUDO=(sudo); fi
    log="$(mktemp)"
    export DEBIAN_FRONTEND=noninteractive
    if ! "${SUDO[@]}" apt-get install -y -q chromium >"$log" 2>&1; then
        # the package lists may be stale or absent: refresh them once and retry
        if ! { "${SUDO[@]}" apt-get update -q && "${SUDO[@]}" apt-get install -y -q chromium; } >"$log" 2>&1; then
            cat "$log" >&2; rm -f "$log"
            echo "setup-browser.sh: apt-get install chromium failed" >&2
            exit 1
        fi
    fi
    rm -f "$log"
    if [[ ! -x /usr/bin/chromium ]]; then
        echo "setup-browser.sh: chromium installed but /usr/bin/chromium is missing" >&2
        exit 1
    fi
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "setup-browser.sh: node and npm (Node 20 or later) are needed for tests/console" >&2
    exit 1
fi
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
    echo "setup-browser.sh: Node $(node --version) is too old; tests/console needs Node 20 or later" >&2
    exit 1
fi

want="$(sha256sum "$LOCK" | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [[ ! -d "$DIR/node_modules/playwright-core" || "$want" != "$have" ]]; then
    log="$(mktemp)"
    if ! (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
        cat "$log" >&2; rm -f "$log"
        echo "setup-browser.sh: npm ci in tests/console failed" >&2
        exit 1
    fi
    rm -f "$log"
    echo "$want" > "$STAMP"
fi
