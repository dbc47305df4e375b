#!/usr/bin/env bash
# Builds Fluent Bit from source for the heavy test tier (tests/compat/test_fluent_bit.py), and prints
# the path of the binary on its last line.
#
# Fluent Bit is not packaged by Debian bookworm and nothing is downloaded from GitHub here, so the
# source comes from the npm registry: the package `fluent-bit@0.0.3` carries Fluent Bit 1.8.15's
# whole source tree (its `cloudwatch_logs` output included). Build dependencies come from Debian
# (cmake, flex, bison, libsqlite3-dev, libssl-dev, libyaml-dev, libonig-dev). The package lacks
# the Onigmo regex library (a git submodule upstream), so Fluent Bit is pointed at Debian's
# Oniguruma instead (Onigmo is its fork, with the same C API). Only what the test uses is built:
# the `dummy`, `stdin` and `tail` inputs and the `cloudwatch_logs` and `stdout` outputs.
#
# The result is cached in .cache/fluent-bit (ignored by git); a second run only checks it is there.
# Takes ~5–10 minutes on 2 cores the first time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

version=0.0.3                       # npm package version; Fluent Bit 1.8.15 inside
cache="$PWD/.cache/fluent-bit"
bin="$cache/build/bin/fluent-bit"

if [[ -x "$bin" ]]; then
    echo "$bin"
    exit 0
fi

need=()
for tool in cmake flex bison make gcc; do command -v "$tool" >/dev/null || need+=("$tool"); done
for pkg in libsqlite3-dev libssl-dev libyaml-dev libonig-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [[ ${#need[@]} -gt 0 ]]; then
    echo "build-fluent-bit: installing ${need[*]} from Debian" >&2
    apt_get=(apt-get); [[ $(id -u) -eq 0 ]] || apt_get=(sudo apt-get)
    DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -q "${need[@]/gcc/build-essential}" >&2
fi

mkdir -p "$cache"
src="$cache/src"
if [[ ! -f "$src/CMakeLists.txt" ]]; then
    echo "build-fluent-bit: fetching the source (npm package fluent-bit@$version)" >&2
    tarball=$(cd "$cache" && npm pack --silent "fluent-bit@$version")
    rm -rf "$cache/package" "$src"
    tar -xzf "$cache/$tarball" -C "$cache"
    mv "$cache/package/src/fluent-bit" "$src"
    rm -rf "$cache/package" "$cache/$tarball"
fi

# Onigmo → Debian's Oniguruma: a one-line header and an imported library instead of the submodule.
mkdir -p "$cache/onigmo-shim"
printf '#include <oniguruma.h>\n' >"$cache/onigmo-shim/onigmo.h"
cat >"$src/cmake/onigmo.cmake" <<CMAKE
# Replaced by lookout's scripts/build-fluent-bit.sh: Debian's Oniguruma stands in for Onigmo.
find_library(ONIG_LIB onig REQUIRED)
add_library(libonigmo UNKNOWN IMPORTED GLOBAL)
set_target_properties(libonigmo PROPERTIES IMPORTED_LOCATION \${ONIG_LIB})
include_directories("$cache/onigmo-shim")
CMAKE

# Every input, filter and output off but the few the test uses; no Lua, no examples, no shared lib.
flags=()
while read -r opt; do flags+=("-D$opt=Off"); done < <(
    grep -oE '^option\(FLB_(IN|OUT|FILTER)_[A-Z0-9_]+' "$src/CMakeLists.txt" | sed 's/^option(//')
flags+=(-DFLB_IN_DUMMY=On -DFLB_IN_STDIN=On -DFLB_IN_TAIL=On -DFLB_IN_STORAGE_BACKLOG=On
        -DFLB_OUT_CLOUDWATCH_LOGS=On -DFLB_OUT_STDOUT=On
        -DFLB_EXAMPLES=Off -DFLB_SHARED_LIB=Off -DFLB_LUAJIT=Off -DFLB_DEBUG=Off -DFLB_RELEASE=On
        -DFLB_PROXY_GO=Off -DFLB_CUSTOM_CALYPTIA=Off -DFLB_STREAM_PROCESSOR=Off -DFLB_HTTP_SERVER=Off
        -DFLB_BACKTRACE=Off -DFLB_PREFER_SYSTEM_LIB_SQLITE=On -DFLB_USE_SIMDUTF=Off
        # gcc 12 is stricter than the compilers of 2022 this release was written for.
        "-DCMAKE_C_FLAGS=-fcommon -Wno-error -Wno-deprecated-declarations")

mkdir -p "$cache/build"
echo "build-fluent-bit: configuring" >&2
(cd "$cache/build" && cmake "${flags[@]}" "$src" >"$cache/cmake.log" 2>&1) || {
    tail -n 40 "$cache/cmake.log" >&2; echo "build-fluent-bit: cmake failed ($cache/cmake.log)" >&2; exit 1; }
echo "build-fluent-bit: compiling (log: $cache/make.log)" >&2
(cd "$cache/build" && make -j"$(nproc)" fluent-bit-bin >"$cache/make.log" 2>&1) || {
    tail -n 40 "$cache/make.log" >&2; echo "build-fluent-bit: make failed ($cache/make.log)" >&2; exit 1; }
[[ -x "$bin" ]] || { echo "build-fluent-bit: no binary at $bin" >&2; exit 1; }
echo "$bin"
