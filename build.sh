#!/usr/bin/env bash
# check_ephemeral_ports build entry point.
#   ./build.sh          restore, build and publish the native AOT binary to dist/check_ephemeral_ports
#   ./build.sh test     the above, then every test (unit, fixtures in-process and native, kernel oracle)
# On a fresh Debian machine it installs what it needs with apt-get when run as root.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
DIST=$ROOT/dist
BIN=$DIST/check_ephemeral_ports

log() { printf '==> %s\n' "$*"; }

# apt packages, installed only where missing; apt-get update runs at most once.
APT_UPDATED=
need_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        log "missing Debian packages (not root, not installing): ${missing[*]}"
        return 0
    fi
    if [ -z "$APT_UPDATED" ]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

require_dotnet() {
    command -v dotnet >/dev/null || { echo "build.sh: the .NET SDK (dotnet) is not on PATH" >&2; exit 1; }
}

publish() {
    require_dotnet
    # Native AOT links with the system C toolchain.
    need_packages gcc libc6-dev zlib1g-dev
    log "publishing the native binary"
    dotnet publish src/check_ephemeral_ports/check_ephemeral_ports.csproj -c Release -r linux-x64 \
        -o "$ROOT/artifacts/publish" --nologo -v quiet -clp:ErrorsOnly
    mkdir -p "$DIST"
    cp "$ROOT/artifacts/publish/check_ephemeral_ports" "$BIN"
    log "built $BIN"
}

run_tests() {
    # The tests compare range evaluation with independent implementations, make kernel-oracle
    # situations in network namespaces and run the real monitoring daemons.
    need_packages python3 python3-nagiosplugin monitoring-plugins-basic iproute2 util-linux procps
    publish
    local results=$ROOT/artifacts/test-results
    rm -rf "$results"
    mkdir -p "$results"
    log "dotnet test"
    local status=0
    CHECK_EPHEMERAL_PORTS_BIN=$BIN dotnet test tests/EphemeralPorts.Tests/EphemeralPorts.Tests.csproj -c Release --nologo \
        --logger "trx;LogFileName=unit.trx" --results-directory "$results" 2>&1 | tee "$results/dotnet-test.log" || status=$?
    summarize "$results"/*.trx
    return $status
}

# One plain closing line from the TRX files, because CI reads no runner summary of dotnet's.
summarize() {
    local passed=0 failed=0 skipped=0 f counters
    for f in "$@"; do
        [ -f "$f" ] || continue
        counters=$(grep -o '<Counters [^>]*>' "$f" | head -n 1)
        passed=$((passed + $(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")))
        failed=$((failed + $(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")))
        skipped=$((skipped + $(sed -n 's/.* notExecuted="\([0-9]*\)".*/\1/p' <<<"$counters")))
    done
    if [ $# -eq 0 ] || [ ! -f "$1" ]; then failed=$((failed + 1)); echo "no test results were written"; fi
    echo "$passed passed, $failed failed, $skipped skipped"
}

case "${1:-build}" in
    build) publish ;;
    test) run_tests ;;
    *) echo "usage: $0 [build|test]" >&2; exit 2 ;;
esac
