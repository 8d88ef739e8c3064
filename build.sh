#!/usr/bin/env bash
# check_ephemeral_ports build entry point.
#   ./build.sh          restore, build and publish the native AOT binary to dist/check_ephemeral_ports
#   ./build.sh test     the above, then every test (unit, fixtures in-process and native, kernel oracle)
#   ./build.sh package  the above, then a Debian package in dist/ (dpkg-deb)
#   ./build.sh bench    the binary against ss and cat /proc/net/tcp* at 10k..200k connections (root)
#   ./build.sh fuzz [S] each parser of outside input under afl-fuzz for S seconds (default 60; not CI)
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
    # One real check of this host by the binary just built: a crash (exit above 3) fails the build.
    local out code=0
    out=$("$BIN" 2>&1) || code=$?
    out=${out%%$'\n'*}
    log "it says: ${out%% | *} (exit $code)"
    [ "$code" -le 3 ] || { echo "build.sh: the native binary exited $code" >&2; exit 1; }
}

run_tests() {
    # The tests compare range evaluation with independent implementations, make kernel-oracle
    # situations in network namespaces and run the real monitoring daemons.
    need_packages python3 python3-nagiosplugin monitoring-plugins-basic iproute2 util-linux procps strace
    package
    local results=$ROOT/artifacts/test-results
    rm -rf "$results"
    mkdir -p "$results"
    log "dotnet test"
    local status=0
    CHECK_EPHEMERAL_PORTS_BIN=$BIN dotnet test tests/EphemeralPorts.Tests/EphemeralPorts.Tests.csproj -c Release --nologo \
        --logger "trx;LogFileName=unit.trx" --results-directory "$results" 2>&1 | tee "$results/dotnet-test.log" || status=$?
    # The real daemons (Icinga 2, Nagios 4, NRPE, Zabbix agents), the package, promtool: each
    # script prints TAP-like "ok -"/"not ok -" lines and installs the Debian packages it needs.
    local script
    for script in tests/integration/*.sh; do
        [ "$(basename "$script")" = run-all.sh ] && continue
        log "$script"
        local tap rc=0
        tap=$results/$(basename "$script" .sh).tap
        CHECK_EPHEMERAL_PORTS_BIN=$BIN bash "$script" 2>&1 | tee "$tap" || rc=$?
        if [ "$rc" -ne 0 ]; then
            status=1
            # A script that died before saying what failed still counts as a failure.
            grep -q '^not ok - ' "$tap" || echo "not ok - $script exited $rc" | tee -a "$tap"
        fi
    done
    summarize "$results"
    return $status
}

# One plain closing line from the TRX file and the TAP-like logs, because CI reads no runner
# summary of dotnet's.
summarize() {
    local results=$1 passed=0 failed=0 skipped=0 counters tap
    if [ -f "$results/unit.trx" ]; then
        counters=$(grep -o '<Counters [^>]*>' "$results/unit.trx" | head -n 1)
        passed=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")
        failed=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
        skipped=$(sed -n 's/.* notExecuted="\([0-9]*\)".*/\1/p' <<<"$counters")
    else
        echo "no unit test results were written"
        failed=1
    fi
    for tap in "$results"/*.tap; do
        [ -f "$tap" ] || continue
        passed=$((passed + $(grep -c '^ok - ' "$tap" || true)))
        failed=$((failed + $(grep -c '^not ok - ' "$tap" || true)))
    done
    echo "$passed passed, $failed failed, $skipped skipped"
}

# The version every artifact carries: Directory.Build.props is the one place it is written.
version() {
    sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$ROOT/Directory.Build.props"
}

# A .deb for Debian/Ubuntu: the plugin where Nagios, Icinga and NRPE look for plugins, the Icinga 2
# CheckCommand where `include <plugins-contrib>` finds it, the NRPE and Zabbix agent snippets as
# conffiles, and the rest of icinga/ as examples.
package() {
    publish
    need_packages dpkg-dev
    local ver arch stage deb
    ver=$(version)
    arch=$(dpkg --print-architecture)
    stage=$ROOT/artifacts/deb
    deb=$DIST/check-ephemeral-ports_${ver}-1_${arch}.deb
    rm -rf "$stage"
    install -D -m 0755 "$BIN" "$stage/usr/lib/nagios/plugins/check_ephemeral_ports"
    install -D -m 0644 icinga/icinga2/command-ephemeral_ports.conf \
        "$stage/usr/share/icinga2/include/plugins-contrib.d/ephemeral_ports.conf"
    install -D -m 0644 icinga/nrpe/check_ephemeral_ports.cfg "$stage/etc/nagios/nrpe.d/check_ephemeral_ports.cfg"
    # Debian's include directories: zabbix_agentd.conf.d for zabbix-agent, zabbix_agent2.d for agent 2.
    install -D -m 0644 icinga/zabbix/userparameter_ephemeral_ports.conf "$stage/etc/zabbix/zabbix_agentd.conf.d/ephemeral_ports.conf"
    install -D -m 0644 icinga/zabbix/userparameter_ephemeral_ports.conf "$stage/etc/zabbix/zabbix_agent2.d/ephemeral_ports.conf"
    mkdir -p "$stage/usr/share/doc/check-ephemeral-ports/examples"
    cp -r icinga/. "$stage/usr/share/doc/check-ephemeral-ports/examples/"
    install -m 0644 README.md "$stage/usr/share/doc/check-ephemeral-ports/README.md"
    printf 'check_ephemeral_ports %s\nCopyright: the check_ephemeral_ports authors.\n' "$ver" \
        > "$stage/usr/share/doc/check-ephemeral-ports/copyright"
    mkdir -p "$stage/DEBIAN"
    (cd "$stage" && find etc -type f | sed 's:^:/:' | sort) > "$stage/DEBIAN/conffiles"
    # The native binary links only against glibc (checked with ldd); 2.34 is its newest symbol version.
    cat > "$stage/DEBIAN/control" <<CONTROL
Package: check-ephemeral-ports
Version: ${ver}-1
Architecture: ${arch}
Maintainer: check_ephemeral_ports maintainers <maintainers@users.noreply.h-seed-136987fa.example>
Depends: libc6 (>= 2.34)
Suggests: icinga2 | nagios4 | nagios-nrpe-server | zabbix-agent
Section: net
Priority: optional
Installed-Size: $(du -sk "$stage" --exclude=DEBIAN | cut -f1)
Description: monitoring plugin for ephemeral port exhaustion
 check_ephemeral_ports warns before connect() fails with EADDRNOTAVAIL: it finds
 the busiest (source, destination, destination port) tuple and compares it with
 the ports that tuple can use (the local port range, less reserved ports and
 listeners inside it, with TIME_WAIT reuse accounted for), and watches UDP.
 Nagios plugin output with perfdata, JSON for Zabbix, Prometheus text format.
CONTROL
    dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
    log "built $deb"
}

case "${1:-build}" in
    build) publish ;;
    test) run_tests ;;
    package) package ;;
    bench)
        need_packages python3 iproute2 util-linux time
        publish
        # A private network namespace: the connections and the range setting go with it.
        unshare -n python3 tests/bench/bench.py "$BIN" "${@:2}"
        ;;
    fuzz)
        need_packages afl++ python3
        require_dotnet
        bash tests/fuzz/run.sh "${@:2}"
        ;;
    *) echo "usage: $0 [build|test|package|bench [N...]|fuzz [SECONDS]]" >&2; exit 2 ;;
esac
