#!/usr/bin/env bash
# Creates (idempotently) the Python virtualenv used by the compatibility suite (tests/compat)
# and by the benchmark peer (moto), including Apache Airflow's amazon provider (test_airflow_ecs.py),
# and fetches watchtower's source distribution for its own tests.
#
#   LOOKOUT_VENV         venv path            (default: <repo>/.venv)
#   LOOKOUT_PYTHON       interpreter to use   (default: python3.11, else python3 if it is 3.10+)
#   LOOKOUT_PY_CACHE     download cache dir   (default: <repo>/.cache/python)
#
# pip runs only when tests/compat/requirements.txt changed since the last successful install
# (a stamp file in the venv holds its sha256). Quiet unless something fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LOOKOUT_VENV:-$ROOT/.venv}"
REQ="$ROOT/tests/compat/requirements.txt"
CACHE="${LOOKOUT_PY_CACHE:-$ROOT/.cache/python}"
STAMP="$VENV/.lookout-requirements.sha256"

pick_python() {
    if [[ -n "${LOOKOUT_PYTHON:-}" ]]; then echo "$LOOKOUT_PYTHON"; return; fi
    if command -v python3.11 >/dev/null 2>&1 && python3.11 -c 'import venv' >/dev/null 2>&1; then
        echo python3.11; return
    fi
    # any python3 >= 3.10 works for the pinned packages (Airflow 3 needs 3.10); 3.11 is what CI uses
    if command -v python3 >/dev/null 2>&1 && python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
        echo python3; return
    fi
    echo "setup-python.sh: python3.11 (or python3 >= 3.10) not found (set LOOKOUT_PYTHON)" >&2
    exit 1
}

# (re)create it when missing, broken, or older than Python 3.10 (Airflow 3's floor)
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' >/dev/null 2>&1; then
    PY="$(pick_python)"
    rm -rf "$VENV"
    if ! "$PY" -m venv "$VENV" >/dev/null 2>&1; then
        # Debian's python3 without python3-venv: fall back to virtualenv from PyPI
        "$PY" -m pip install -q --user virtualenv >/dev/null
        "$PY" -m virtualenv -q "$VENV"
    fi
fi

want="$(sha256sum "$REQ" | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [[ "$want" != "$have" ]]; then
    log="$(mktemp)"
    if ! { "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip \
            && "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"; } >"$log" 2>&1; then
        cat "$log" >&2; rm -f "$log"
        echo "setup-python.sh: pip install failed" >&2
        exit 1
    fi
    rm -f "$log"
    echo "$want" > "$STAMP"
fi

# watchtower's own test suite ships only in its sdist (test/test.py).
WT_VER="$(sed -n 's/^watchtower==\([0-9.]*\).*/\1/p' "$REQ")"
WT_DIR="$CACHE/watchtower-$WT_VER"
if [[ ! -f "$WT_DIR/test/test.py" ]]; then
    mkdir -p "$CACHE/sdist"
    log="$(mktemp)"
    if ! "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps \
            --no-binary :all: -d "$CACHE/sdist" "watchtower==$WT_VER" >"$log" 2>&1; then
        cat "$log" >&2; rm -f "$log"
        echo "setup-python.sh: could not download watchtower's sdist" >&2
        exit 1
    fi
    rm -f "$log"
    tar -xzf "$CACHE/sdist/watchtower-$WT_VER.tar.gz" -C "$CACHE"
    test -f "$WT_DIR/test/test.py"
fi
