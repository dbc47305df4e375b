#!/usr/bin/env bash
# The whole test suite of lookout, as CI runs it (.ci/run calls exactly this):
#   0. A container engine: Podman + runc, a busybox image built FROM scratch, and Podman's
#      Docker-compatible API socket (scripts/setup-podman.sh). Container tests are then required,
#      not skipped (LOOKOUT_REQUIRE_CONTAINERS=1).
#   1. Rust: formatting, clippy (-D warnings), unit + integration tests (release profile, so the
#      binary the compatibility tests drive is built once).
#   2. Python: a venv with the real clients (boto3, AWS CLI v1, watchtower, Apache Airflow's amazon
#      provider, moto as a peer).
#   3. The benchmark harnesses in quick mode (print figures, assert nothing about speed).
#   4. The web console end to end: headless Debian Chromium driven by playwright-core (npm) against
#      the real binary (scripts/setup-browser.sh installs both).
#   5. Black-box compatibility tests: the real `lookout` binary driven by those clients.
# Opt-in heavy tier: LOOKOUT_HEAVY=1 runs the full-size benchmarks, the 50-kill crash campaign, a
# 10-minute soak, and builds Fluent Bit from source for tests/compat/test_fluent_bit.py.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n=== %s\n' "$*"; }

step "container engine: Podman's Docker-compatible API"
scripts/setup-podman.sh
export DOCKER_HOST="${DOCKER_HOST:-unix:///run/podman/podman.sock}"
export LOOKOUT_REQUIRE_CONTAINERS=1

step "rust: format and lint"
cargo fmt --all -- --check
cargo clippy --release --workspace --all-targets --locked -- -D warnings

step "rust: build and unit/integration tests"
cargo build --release --locked --workspace
cargo test --release --workspace --locked

step "python: clients in a venv"
scripts/setup-python.sh
PY="${LOOKOUT_VENV:-$PWD/.venv}/bin/python"
export LOOKOUT_BIN="$CARGO_TARGET_DIR/release/lookout"

step "benchmark harness (quick mode; figures only)"
"$PY" bench/logs_bench.py --quick
"$PY" bench/suite.py --quick
"$PY" bench/tasks_bench.py --quick
cargo run --release --locked -q -p lookout-event-pattern --example bench -- --quick
"$PY" bench/console_bench.py --quick
"$PY" bench/crash_campaign.py --quick   # 10 kill -9 under mixed load; fails if anything acknowledged is lost
if [[ "${LOOKOUT_HEAVY:-0}" == "1" ]]; then
    step "heavy tier: full-size benchmarks (W1 1M events, W3 ~10 GB)"
    "$PY" bench/logs_bench.py
    "$PY" bench/suite.py
    "$PY" bench/tasks_bench.py
    cargo run --release --locked -q -p lookout-event-pattern --example bench
    "$PY" bench/console_bench.py
    "$PY" bench/crash_campaign.py   # 50 kills
    "$PY" bench/soak.py --minutes 10   # memory over time under steady mixed load
    step "heavy tier: Fluent Bit built from source (tests/compat/test_fluent_bit.py runs it)"
    LOOKOUT_FLUENT_BIT="$(scripts/build-fluent-bit.sh | tail -n 1)"
    export LOOKOUT_FLUENT_BIT
fi

step "web console: end-to-end in headless Chromium"
scripts/setup-browser.sh
console_rc=0
node --test tests/console/ || console_rc=$?

step "compatibility: real clients against the real binary (its summary is the last line)"
"$PY" -m pytest tests/compat -q -p no:cacheprovider
if [[ $console_rc -ne 0 ]]; then
    echo "the web console's end-to-end tests failed (above, before the compatibility tests)" >&2
    exit "$console_rc"
fi

