#!/usr/bin/env bash
# Sets up (idempotently) a container engine for lookout's Docker runtime and its tests on a
# Debian host without Docker: Podman with runc, a tiny `localhost/busybox:latest` image (FROM
# scratch, a static busybox as its entrypoint: nothing is pulled), and Podman's Docker-compatible
# API service on a unix socket. Prints one line per thing it did, then the DOCKER_HOST to use.
# Fast when everything is already there.
#
#   LOOKOUT_PODMAN_SOCKET   the service's socket        (default: /run/podman/podman.sock)
#   LOOKOUT_BUSYBOX_IMAGE   the image to build          (default: localhost/busybox:latest)
#   LOOKOUT_CONTAINERS_CONF Podman's engine settings    (default: /etc/containers/containers.conf)
set -euo pipefail

SOCKET="${LOOKOUT_PODMAN_SOCKET:-/run/podman/podman.sock}"
IMAGE="${LOOKOUT_BUSYBOX_IMAGE:-localhost/busybox:latest}"
CONF="${LOOKOUT_CONTAINERS_CONF:-/etc/containers/containers.conf}"
SERVICE_LOG="/tmp/podman-service-$(basename "$SOCKET" .sock).log"

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "setup-podman.sh: not root and no sudo" >&2; exit 1; }
    SUDO=(sudo)
fi
run() { "${SUDO[@]}" "$@"; }
say() { echo "setup-podman.sh: $*"; }

is_static() {
    local out
    out="$(LC_ALL=C ldd "$1" 2>&1 || true)"
    [[ "$out" == *"not a dynamic executable"* || "$out" == *"statically linked"* ]]
}

static_busybox() {
    local candidate
    for candidate in /bin/busybox /usr/bin/busybox; do
        if [[ -x "$candidate" ]] && is_static "$candidate"; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

# 1. Packages: podman, runc (crun fails on these hosts), a static busybox for the image, curl.
missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
static_busybox >/dev/null || missing+=(busybox-static)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if ((${#missing[@]})); then
    if ! run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/tmp/setup-podman-apt.log 2>&1; then
        # The package lists may be missing or stale: refresh them once and try again.
        run env DEBIAN_FRONTEND=noninteractive apt-get update -qq >>/tmp/setup-podman-apt.log 2>&1
        if ! run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >>/tmp/setup-podman-apt.log 2>&1; then
            echo "setup-podman.sh: apt-get install ${missing[*]} failed; see /tmp/setup-podman-apt.log" >&2
            tail -n 20 /tmp/setup-podman-apt.log >&2
            exit 1
        fi
    fi
    say "installed ${missing[*]}"
fi

# 2. Engine settings: runc as the OCI runtime, and no default ulimits (which fail in sandboxes).
if ! { [[ -f "$CONF" ]] && grep -Eq '^[[:space:]]*runtime[[:space:]]*=[[:space:]]*"runc"' "$CONF"; }; then
    run mkdir -p "$(dirname "$CONF")"
    printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' | run tee "$CONF" >/dev/null
    say "wrote $CONF (runtime = \"runc\")"
    if curl -fsS --max-time 2 --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1; then
        say "note: the Podman service already running at $SOCKET keeps its old settings until restarted"
    fi
fi

# 3. The test image: FROM scratch, a static busybox as the entrypoint.
if ! run podman image exists "$IMAGE"; then
    busybox="$(static_busybox)" || { echo "setup-podman.sh: no static busybox found (busybox-static)" >&2; exit 1; }
    context="$(mktemp -d)"
    trap 'rm -rf "$context"' EXIT
    cp "$busybox" "$context/busybox"
    printf 'FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT ["/bin/busybox"]\n' >"$context/Containerfile"
    if ! run podman build --quiet -t "$IMAGE" -f "$context/Containerfile" "$context" >"$context/build.log" 2>&1; then
        echo "setup-podman.sh: podman build of $IMAGE failed:" >&2
        cat "$context/build.log" >&2
        exit 1
    fi
    say "built image $IMAGE from $busybox"
fi

# 4. The Docker-compatible API service.
ping() { [[ "$(curl -fsS --max-time 2 --unix-socket "$SOCKET" http://d/_ping 2>/dev/null || true)" == OK ]]; }
if ! ping; then
    run mkdir -p "$(dirname "$SOCKET")"
    # A socket file left by a service that died would make the new one fail to listen.
    if [[ -S "$SOCKET" ]]; then run rm -f "$SOCKET"; fi
    # setsid: the service outlives this script and the shell or CI step that ran it. From `/`:
    # the service's working directory becomes that of every container runc starts, and a clone
    # deleted under a running service made every start fail ("write child: broken pipe").
    pushd / >/dev/null
    nohup setsid "${SUDO[@]}" podman system service --time=0 "unix://$SOCKET" >"$SERVICE_LOG" 2>&1 </dev/null &
    service_pid=$!
    popd >/dev/null
    for _ in $(seq 1 100); do
        ping && break
        sleep 0.1
    done
    if ! ping; then
        echo "setup-podman.sh: podman system service did not answer at $SOCKET within 10 s; its log ($SERVICE_LOG):" >&2
        tail -n 20 "$SERVICE_LOG" >&2 || true
        exit 1
    fi
    say "started podman system service at unix://$SOCKET (pid $service_pid, log $SERVICE_LOG)"
fi

echo "export DOCKER_HOST=unix://$SOCKET"
