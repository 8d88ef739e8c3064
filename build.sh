#!/usr/bin/env bash
# check_ephemeral_ports build entry point.
#   ./build.sh          restore, build and publish the native AOT binaries: dist/linux-x64/ and
#                       dist/linux-arm64/, and dist/check_ephemeral_ports for this machine
#   ./build.sh test     the above, then every test (unit, fixtures in-process and native, kernel oracle)
#   ./build.sh test quick
#                       only the quick tier: the tests that run in the test process alone (no root, no
#                       native binary, no other program) after a plain build; nothing published or
#                       installed (see the README, "Tests")
#   ./build.sh package  the above, then .deb (amd64, arm64) and .rpm (x86_64, aarch64) packages in dist/
#   ./build.sh release  the above, then apt and yum repositories of both architectures' packages and their
#                       SHA256SUMS in dist/repo/ (see the README, "Releasing")
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

# The architectures built: .NET runtime identifier and Debian architecture. Each binary is linked
# against a Debian 11 sysroot made by src/build/sysroot.sh (cached under /var/cache/check-ephemeral-ports/)
# with the shims of src/build/glibc-compat.c, so that it needs no glibc symbol newer than GLIBC_FLOOR.
TARGETS=("linux-x64 amd64" "linux-arm64 arm64")
GLIBC_FLOOR=2.17

host_rid() {
    case $(dpkg --print-architecture) in
        amd64) echo linux-x64 ;;
        arm64) echo linux-arm64 ;;
        *) echo "build.sh: no native build for $(dpkg --print-architecture)" >&2; exit 1 ;;
    esac
}

# The newest GLIBC_ symbol version a binary needs, e.g. 2.17.
glibc_needed() { objdump -T "$1" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1 | sed 's/^GLIBC_//'; }

# The BPF socket reader (src/native: the CO-RE program and its loader over libbpf), compiled
# against the sysroot, linked statically; prints the archives to link, ';'-separated.
# The BPF object is compiled once, by the build host's run (artifacts/native), and every
# architecture's loader embeds that same object: src/native/build.sh proves it is the same for
# every target architecture. The build host's architecture links the host's libbpf-dev, libelf-dev,
# zlib1g-dev and libzstd-dev; the other architecture the same Debian release's packages for it,
# unpacked by src/build/bpf-libs.sh, with its loader cross-compiled by clang.
bpf_archives() {
    local rid=$1 debarch=$2 sysroot=$3 out=$ROOT/artifacts/native include libs='' bpfinc=/usr/include/bpf
    if [ "$rid" != "$(host_rid)" ]; then
        out=$ROOT/artifacts/native/$rid
        libs=$(src/build/bpf-libs.sh "$debarch") || exit 1
        bpfinc=$libs/usr/include/bpf
    fi
    include=$out/include
    mkdir -p "$include"
    # libbpf's headers beside the sysroot's libc headers: the host's (libbpf-dev), or those of the
    # package whose libbpf.a is linked.
    ln -sfn "$bpfinc" "$include/bpf"
    if [ "$rid" = "$(host_rid)" ]; then
        CC=clang CEP_CFLAGS="--sysroot=$sysroot -I$include -DCEP_FCNTL64_SHIM" "$ROOT/src/native/build.sh" "$out"
    else
        CC=clang CEP_TARGET=$(multiarch "$debarch") CEP_LIBDIR=$libs/usr/lib/$(multiarch "$debarch") \
            CEP_BPF_DIR=$ROOT/artifacts/native CEP_CFLAGS="--sysroot=$sysroot -I$include -DCEP_FCNTL64_SHIM" \
            "$ROOT/src/native/build.sh" "$out"
    fi | sed -n 's/^link: //p' | tail -n 1 | tr ' ' ';'
}

multiarch() {
    case $1 in amd64) echo x86_64-linux-gnu ;; arm64) echo aarch64-linux-gnu ;; esac
}

# What the published binary must carry when it has the BPF reader, checked after the link: the
# loader's entry points (in the unstripped image ILCompiler keeps beside it), the build id and the
# very bytes of the one BPF object (artifacts/native/ports.bpf.o, whose hash the build id is). So
# both architectures' binaries embed the same program, and a binary that lost the reader fails
# the build instead of saying so at -v.
check_bpf_reader() {
    local bin=$1 dbg=$2 obj=$ROOT/artifacts/native/ports.bpf.o id sym syms
    id=$(sha256sum "$obj" | cut -c1-16)
    syms=$(llvm-nm --defined-only "$dbg")
    # The calls BpfNative.cs makes.
    for sym in cep_reader_open cep_reader_iter cep_reader_mode cep_reader_close cep_bpf_read cep_bpf_record_size cep_bpf_record_version; do
        grep -q " [Tt] $sym\$" <<<"$syms" ||
            { echo "build.sh: $dbg defines no $sym: the BPF reader is not linked in" >&2; exit 1; }
    done
    grep -qaF "$id" "$bin" || { echo "build.sh: $bin does not carry the BPF build id $id" >&2; exit 1; }
    # perl: Essential in Debian, so always there.
    perl -e 'local $/; open my $b, "<:raw", $ARGV[0] or die; open my $o, "<:raw", $ARGV[1] or die;
             exit(index(<$b>, <$o>) >= 0 ? 0 : 1)' "$bin" "$obj" ||
        { echo "build.sh: $bin does not embed $obj" >&2; exit 1; }
    log "$bin carries the BPF reader: cep_bpf_* linked, BPF object $id embedded"
}

publish_rid() {
    local rid=$1 debarch=$2 sysroot out needed archives=''
    sysroot=$(src/build/sysroot.sh "$debarch")
    out=$ROOT/artifacts/publish/$rid
    archives=$(bpf_archives "$rid" "$debarch" "$sysroot")
    [ -n "$archives" ] || { echo "build.sh: src/native/build.sh named no archives to link for $rid" >&2; exit 1; }
    log "publishing the native binary for $rid (sysroot $sysroot${archives:+, with the BPF reader})"
    # clang and lld link for any target with --target and --sysroot (gcc would take the host's
    # libc despite --sysroot); the link notices a changed sysroot itself (src/build/GlibcFloor.targets).
    dotnet publish src/check_ephemeral_ports/check_ephemeral_ports.csproj -c Release -r "$rid" \
        -p:SysRoot="$sysroot" -p:CppCompilerAndLinker=clang -p:LinkerFlavor=lld \
        -p:CepBpfArchives="${archives//;/%3B}" \
        -o "$out" --nologo -v quiet -clp:ErrorsOnly
    mkdir -p "$DIST/$rid"
    # Without the linkers' version strings (.comment), which the ILCompiler's strip leaves in.
    llvm-objcopy --remove-section=.comment "$out/check_ephemeral_ports" "$DIST/$rid/check_ephemeral_ports"
    needed=$(glibc_needed "$DIST/$rid/check_ephemeral_ports")
    if [ "$(printf '%s\n%s\n' "$needed" "$GLIBC_FLOOR" | sort -V | tail -n 1)" != "$GLIBC_FLOOR" ]; then
        echo "build.sh: $DIST/$rid/check_ephemeral_ports needs GLIBC_$needed, above the floor $GLIBC_FLOOR:" >&2
        objdump -T "$DIST/$rid/check_ephemeral_ports" | grep -F "GLIBC_$needed" >&2
        exit 1
    fi
    check_bpf_reader "$DIST/$rid/check_ephemeral_ports" "$out/check_ephemeral_ports.dbg"
    log "built $DIST/$rid/check_ephemeral_ports (needs GLIBC_$needed)"
}

publish() {
    require_dotnet
    # The cross-linking toolchain (llvm for llvm-objcopy, binutils for objdump) and debootstrap
    # for the sysroots.
    need_packages clang lld llvm binutils debootstrap
    local target
    for target in "${TARGETS[@]}"; do
        # shellcheck disable=SC2086  # "RID ARCH"
        publish_rid $target
    done
    cp "$DIST/$(host_rid)/check_ephemeral_ports" "$BIN"
    log "built $BIN (this machine's architecture)"
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
    need_packages python3 python3-nagiosplugin monitoring-plugins-basic iproute2 util-linux procps strace golang-go sudo \
        nftables iptables conntrack
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

# The quick tier (tests/EphemeralPorts.Tests/Support/Tier.cs; TierTests holds each test's mark to
# what it does): a JIT build of the tests and the plugin, no AOT publish, no apt. The native binary's
# path points nowhere, so that a test that would run it fails here instead of running a stale dist/.
run_quick_tests() {
    require_dotnet
    local results=$ROOT/artifacts/test-results/quick status=0
    rm -rf "$results"
    mkdir -p "$results"
    log "dotnet build (tests)"
    dotnet build tests/EphemeralPorts.Tests/EphemeralPorts.Tests.csproj -c Release --nologo -v quiet -clp:ErrorsOnly
    log "dotnet test (quick tier)"
    CHECK_EPHEMERAL_PORTS_BIN=/nonexistent/the-quick-tier-runs-no-native-binary \
        dotnet test tests/EphemeralPorts.Tests/EphemeralPorts.Tests.csproj -c Release --no-build --nologo \
        --filter "Tier!=full" --logger "trx;LogFileName=unit.trx" --results-directory "$results" 2>&1 |
        tee "$results/dotnet-test.log" || status=$?
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

# The packages: a .deb for amd64 and arm64 (Debian, Ubuntu) and an .rpm for x86_64 and aarch64 (RHEL
# and its rebuilds, Amazon Linux, SLES), each with the plugin where that family's Nagios, Icinga and
# NRPE look for plugins, the man page, the Icinga 2 CheckCommand where `include <plugins-contrib>`
# finds it, the NRPE and Zabbix agent snippets as configuration files and the rest of icinga/ as
# examples; dist/SHA256SUMS beside them. What goes in: src/packaging/manifest; how: src/packaging/make-packages.sh.
package() {
    publish
    need_packages dpkg-dev rpm python3
    src/packaging/make-packages.sh
}

# A release: the packages as above, then dist/repo/apt (a flat apt repository), dist/repo/yum (yum/dnf
# metadata) and dist/repo/SHA256SUMS, made by src/packaging/make-repos.sh from the packages of the
# version in Directory.Build.props (CHANGELOG.md must have that release: make-packages.sh checks it).
release() {
    package
    need_packages apt-utils createrepo-c
    src/packaging/make-repos.sh
    local version
    version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props)
    log "release $version in $DIST/repo; tag it with: git tag -a v$version -m 'check_ephemeral_ports $version'"
}

case "${1:-build}" in
    build) publish ;;
    test)
        case "${2:-}" in
            '') run_tests ;;
            quick) run_quick_tests ;;
            *) echo "usage: $0 test [quick]" >&2; exit 2 ;;
        esac
        ;;
    package) package ;;
    release) release ;;
    bench)
        need_packages python3 iproute2 util-linux time conntrack nftables
        publish
        # A private network namespace: the connections and the range setting go with it. Twice,
        # each in a private mount namespace: with a fresh bpffs on /sys/fs/bpf (the BPF reader pins
        # its iterators there and later runs open the pins) and with none (containers, hosts
        # without systemd: every run loads the reader). The host's /sys/fs/bpf is never touched.

        for bpffs in mounted absent; do
            log "bench: bpffs $bpffs"
            BENCH_BPFFS=$bpffs unshare -n -m --propagation private -- sh -c '
                umount /sys/fs/bpf 2>/dev/null || true
                if [ "$BENCH_BPFFS" = mounted ]; then mount -t bpf bpf /sys/fs/bpf || exit 1; fi
                exec python3 "$@"' sh tests/bench/bench.py "$BIN" "${@:2}"
        done
        ;;
    fuzz)
        need_packages afl++ python3
        require_dotnet
        bash tests/fuzz/run.sh "${@:2}"
        ;;
    *) echo "usage: $0 [build|test [quick]|package|release|bench [N...]|fuzz [SECONDS]]" >&2; exit 2 ;;
esac
