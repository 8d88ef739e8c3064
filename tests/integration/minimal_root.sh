#!/usr/bin/env bash
# The binary needs nothing at run time but glibc (issue 18, item 3): a root that holds only the
# binary, the glibc libraries its ELF header names (DT_NEEDED and the interpreter: no libssl, no
# libgcc_s, no ICU, no /etc, /usr/share or /sys), an empty /out for --output and /proc (mounted in a
# private mount namespace, with the host's /run/netns bound in for --netns NAME), and every option
# run chrooted there: each one meets the contract of lib/contract.sh (one status line, exit 0-3, no
# .NET trace), a real answer where the root has what it reads, and --output writes its file.
# For arm64 the same root with Debian 11's arm64 glibc (src/build/sysroot.sh arm64, the root the
# binary was linked against) and qemu-user-static's static qemu-aarch64 copied in as the CPU.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/contract.sh"

setup_temp_dir
require_plugin_binary
[ "$(id -u)" = 0 ] || { not_ok "runs as root (chroot, mounts, namespaces)"; exit 1; }
check "install binutils, iproute2, util-linux, python3" need_packages binutils iproute2 util-linux python3 || exit 1
# Beside the binary under test (dist/ or /work/bin), else the build's own.
arm=${CHECK_EPHEMERAL_PORTS_ARM64_BIN:-$(dirname "$bin")/linux-arm64/check_ephemeral_ports}
[ -x "$arm" ] || arm=$root/dist/linux-arm64/check_ephemeral_ports

ns=cepmin-$$
netns_made=''
minimal_cleanup() { if [ -n "$netns_made" ]; then ip netns delete "$ns" 2>/dev/null; fi; cleanup; }
trap minimal_cleanup EXIT
check "ip netns add $ns (for --netns NAME)" ip netns add "$ns" && netns_made=1

# make_root DIR BINARY LIBROOT: DIR holds BINARY as /check_ephemeral_ports and, at the paths where
# the interpreter looks, the interpreter and each DT_NEEDED library taken from LIBROOT (/ for this
# machine's glibc, or an arm64 root), as files (links resolved); plus the empty /proc, /out and
# /run/netns to mount on and write into. Prints what it copied.
make_root() {
    local dir=$1 binary=$2 libroot=$3 interp lib libdir found d
    mkdir -p "$dir/proc" "$dir/out" "$dir/run/netns"
    install -m 755 "$binary" "$dir/check_ephemeral_ports"
    interp=$(readelf -l "$binary" | sed -n 's/.*Requesting program interpreter: \([^]]*\)].*/\1/p')
    [ -n "$interp" ] || { echo "no interpreter in $binary"; return 1; }
    mkdir -p "$dir$(dirname "$interp")"
    cp -L "$libroot$interp" "$dir$interp" || return 1
    echo "$interp"
    # The library directory: where the interpreter itself resolves to in LIBROOT (multiarch).
    libdir=$(dirname "$(realpath -m "$libroot$interp")"); libdir=${libdir#"${libroot%/}"}
    for lib in $(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        found=''
        for d in "$libdir" /lib/"$(basename "$libdir")" /usr/lib/"$(basename "$libdir")" /lib64 /lib; do
            if [ -e "$libroot$d/$lib" ]; then
                mkdir -p "$dir$d"; cp -L "$libroot$d/$lib" "$dir$d/$lib" || return 1
                echo "$d/$lib"; found=1; break
            fi
        done
        [ -n "$found" ] || { echo "$lib not found under $libroot"; return 1; }
    done
}

# "${in_root[@]}" DIR CMD ARGS...: CMD chrooted into DIR with /proc mounted and /run/netns bound in,
# in a private mount namespace (gone with the process: nothing is left mounted). An array, not a
# function, so that timeout can run it.
# shellcheck disable=SC2016  # the script is for sh, its $1 and $@ are its own
in_root=(unshare --mount --propagation private -- /bin/sh -c
    'set -e; r=$1; shift; mount -t proc proc "$r/proc"; mount --rbind /run/netns "$r/run/netns"; exec chroot "$r" "$@"' in_root)

# every_option LABEL DIR PREFIX...: each option chrooted into DIR through PREFIX (empty, or the
# root's qemu); UNKNOWN is accepted only where the root lacks what the option reads (--source bpf:
# no /sys; under qemu --source netlink, which qemu-user refuses).
every_option() {
    local label=$1 dir=$2 name what states; shift 2
    local -a prefix=("$@") cases=(
        "default|"
        "-v|-v"
        "-vv|-vv"
        "-vvv|-vvv"
        "--processes|--processes"
        "--all-namespaces|--all-namespaces"
        "--netns NAME|--netns $ns"
        "--pid PID|--pid $$"
        "thresholds, --top, -t STATE|-w 0.001 -c 99 --top 0 -t 20:critical"
        "--source proc|--source proc"
        "--source netlink|--source netlink"
        "--source bpf|--source bpf"
        "--protocol udp|--protocol udp"
        "--processes --all-namespaces -v|--processes --all-namespaces -v"
    )
    local c args
    for c in "${cases[@]}"; do
        what=${c%%|*} args=${c#*|}
        name=$label-$(tr -c 'a-z0-9' '_' <<<"$what")
        states='OK|WARNING|CRITICAL'
        case $what in
            --source\ bpf) states='' ;;
            # A namespace of the host it cannot read (another tool's stale /run/netns entry, a
            # sandboxed process) makes it UNKNOWN by design; an answer is still required.
            *--all-namespaces*) states='OK|WARNING|CRITICAL|UNKNOWN - .*namespaces checked.*' ;;
        esac
        if [ "$label" = arm64 ] && [ "$what" = "--source netlink" ]; then states=''; fi
        # shellcheck disable=SC2086  # args are words
        run_bin "$name" 40 "${in_root[@]}" "$dir" "${prefix[@]}" /check_ephemeral_ports -t 20 $args
        contract "$label minimal root: $what" "$name" "$states"
    done
    # JSON: one document; Prometheus: the metrics; both exit 0 once written.
    run_bin "$label-json" 40 "${in_root[@]}" "$dir" "${prefix[@]}" /check_ephemeral_ports -t 20 --format json
    check "$label minimal root: --format json: exit 0, one JSON document, no trace ($(said "$label-json"))" \
        sh -c "test $rc = 0 && /usr/bin/python3 -c 'import json, sys; json.load(open(sys.argv[1]))' '$T/$label-json.out' && ! grep -qa Unhandled '$T/$label-json.err'"
    run_bin "$label-prom" 40 "${in_root[@]}" "$dir" "${prefix[@]}" /check_ephemeral_ports -t 20 --format prometheus
    check "$label minimal root: --format prometheus: exit 0, the metrics, no trace ($(said "$label-prom"))" \
        sh -c "test $rc = 0 && grep -q '^ephemeral_ports' '$T/$label-prom.out' && ! grep -qa Unhandled '$T/$label-prom.err'"
    # --output: the temporary name, the rename, and no libssl anywhere to load.
    rm -f "$dir/out/"*
    run_bin "$label-output" 40 "${in_root[@]}" "$dir" "${prefix[@]}" /check_ephemeral_ports -t 20 --output /out/check.txt
    check "$label minimal root: --output FILE: exit 0-2, nothing on stdout, no trace ($(said "$label-output"))" \
        sh -c "test $rc -le 2 && test ! -s '$T/$label-output.out' && ! grep -qaE 'Unhandled|libssl' '$T/$label-output.err'"
    check "$label minimal root: --output FILE wrote a status line into the file" \
        grep -qE '^EPHEMERAL PORTS (OK|WARNING|CRITICAL) - ' "$dir/out/check.txt"
    run_bin "$label-output-prom" 40 "${in_root[@]}" "$dir" "${prefix[@]}" /check_ephemeral_ports -t 20 --format prometheus --output /out/check.prom
    check "$label minimal root: --format prometheus --output FILE: exit 0 and the file written ($(said "$label-output-prom"))" \
        sh -c "test $rc = 0 && grep -q '^ephemeral_ports' '$dir/out/check.prom'"
    run_bin "$label-output-json" 40 "${in_root[@]}" "$dir" "${prefix[@]}" /check_ephemeral_ports -t 20 --format json --all-namespaces --processes --output /out/check.json
    check "$label minimal root: --format json --all-namespaces --processes --output FILE: exit 0, one JSON document in the file ($(said "$label-output-json"))" \
        sh -c "test $rc = 0 && /usr/bin/python3 -c 'import json, sys; json.load(open(sys.argv[1]))' '$dir/out/check.json'"
    check "$label minimal root: --output left no temporary file ($(find "$dir/out" -mindepth 1 -printf '%f '))" \
        test "$(find "$dir/out" -mindepth 1 ! -name check.txt ! -name check.prom ! -name check.json | wc -l)" = 0
}

# --- x86_64 (or this machine's architecture): this machine's glibc ----------------------------------
echo "# the host architecture's binary with this machine's glibc only"
if make_root "$T/root" "$bin" / >"$T/root.list" 2>&1; then
    ok "minimal root: $(tr '\n' ' ' <"$T/root.list")"
    check "minimal root: no libssl, libcrypto, libgcc_s, libstdc++ or ICU in it" \
        test -z "$(find "$T/root" -name 'libssl*' -o -name 'libcrypto*' -o -name 'libgcc_s*' -o -name 'libstdc++*' -o -name 'libicu*')"
    every_option host "$T/root"
else
    not_ok "the minimal root: $(tail -n 3 "$T/root.list")"
fi

# --- arm64 under qemu-user ----------------------------------------------------------------------------
echo "# the arm64 binary with Debian 11's arm64 glibc only, under qemu-user"
if [ ! -x "$arm" ]; then
    not_ok "arm64 binary $arm exists"
elif ! check "install qemu-user-static and debootstrap" need_packages qemu-user-static debootstrap; then
    :
elif ! armroot=$("$root/src/build/sysroot.sh" arm64 2>"$T/sysroot.log"); then
    not_ok "the arm64 Debian 11 root: $(tail -n 3 "$T/sysroot.log")"
elif make_root "$T/armroot" "$arm" "$armroot" >"$T/armroot.list" 2>&1; then
    ok "arm64 minimal root: $(tr '\n' ' ' <"$T/armroot.list")"
    # The CPU: qemu-aarch64-static, a static executable, runs the binary from inside the root, where
    # the interpreter's path is the arm64 one (no -L: the root's own /proc is the real one).
    install -m 755 /usr/bin/qemu-aarch64-static "$T/armroot/qemu-aarch64"
    run_bin arm64-version 60 "${in_root[@]}" "$T/armroot" /qemu-aarch64 /check_ephemeral_ports --version
    check "the arm64 root runs the binary: --version ($(said arm64-version))" grep -q '^check_ephemeral_ports ' "$T/arm64-version.out"
    every_option arm64 "$T/armroot" /qemu-aarch64
else
    not_ok "the arm64 minimal root: $(tail -n 3 "$T/armroot.list")"
fi

[ "$failed" = 0 ]
