#!/usr/bin/env bash
# The arm64 binary (dist/linux-arm64/check_ephemeral_ports) under qemu-user (Debian's
# qemu-user-static), with the Debian 11 arm64 root it was linked against as its library root:
# every fixture with --source proc gives the fixture's expected output and exit code, the live
# /proc is read, and netlink, which qemu-user refuses (NETLINK_SOCK_DIAG sockets give
# EPROTONOSUPPORT), falls back to /proc/net under --source auto and says what was refused.
# Also: the binary is an aarch64 executable needing no glibc symbol above 2.17.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
arm=$root/dist/linux-arm64/check_ephemeral_ports
floor=2.17

setup_temp_dir
check "arm64 binary $arm exists" test -x "$arm" || exit 1
check "install qemu-user-static" need_packages qemu-user-static || exit 1
qemu=/usr/bin/qemu-aarch64-static
# The root the binary was linked against: made by ./build.sh, found again through the cache key.
if ! armroot=$("$root/src/build/sysroot.sh" arm64 2>"$T/sysroot.log"); then
    not_ok "the arm64 Debian 11 root: $(tail -n 3 "$T/sysroot.log")"; exit 1
fi
ok "arm64 Debian 11 root at $armroot"
armlibs=$(qemu_libs "$armroot" "$T/armlibs")
run_arm() { "$qemu" -L "$armlibs" "$arm" "$@"; }

check "it is an aarch64 ELF executable" sh -c "readelf -h '$arm' | grep -q 'Machine:.*AArch64'"
needed=$(objdump -T "$arm" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1)
check "needs at most GLIBC_$floor (newest: $needed)" test "$(printf '%s\n%s\n' "${needed#GLIBC_}" "$floor" | sort -V | tail -n 1)" = "$floor"
check "it runs under qemu with the Debian 11 arm64 libraries" sh -c "'$qemu' -L '$armlibs' '$arm' --version | grep -q '^check_ephemeral_ports '"

# The fixtures, as tests/EphemeralPorts.Tests/Cli/FixtureTests.cs runs them (cwd = the scenario,
# --proc-root proc, then args), with --source proc said explicitly.
for dir in "$fixtures"/*/; do
    scenario=$(basename "$dir")
    [ -f "$dir/args" ] || continue
    mapfile -t args < <(grep -v '^$' "$dir/args")
    out=$(cd "$dir" && run_arm --proc-root proc --source proc "${args[@]}" 2>"$T/$scenario.err"); code=$?
    if [ "$out"$'\n' = "$(cat "$dir/expected_stdout")"$'\n' ] && [ "$code" = "$(tr -d '[:space:]' <"$dir/expected_exit")" ] && [ ! -s "$T/$scenario.err" ]; then
        ok "fixture $scenario under qemu: expected output and exit $code"
    else
        printf '%s\n' "$out" >"$T/$scenario.out"
        not_ok "fixture $scenario under qemu: exit $code (expected $(cat "$dir/expected_exit")), output in $T/$scenario.out, stderr $(head -c 300 "$T/$scenario.err")"
    fi
done

# The live /proc through the tables.
out=$(run_arm --source proc 2>"$T/live.err"); code=$?
check "live /proc --source proc: a status line" grep -q '^EPHEMERAL PORTS \(OK\|WARNING\|CRITICAL\) - .* | .tcp_busiest_pct.=' <<<"$out"
check "live /proc --source proc: exit 0-2 ($code)" test "$code" -le 2
check "live /proc --source proc: nothing on stderr" test ! -s "$T/live.err"

# qemu-user has no NETLINK_SOCK_DIAG: the default reading falls back to /proc/net and says so.
out=$(run_arm -v 2>"$T/auto.err"); code=$?
printf '%s\n' "$out" >"$T/auto.out"
check "default reading under qemu: a status line" grep -q '^EPHEMERAL PORTS \(OK\|WARNING\|CRITICAL\) - ' <<<"$out"
check "default reading under qemu: exit 0-2 ($code)" test "$code" -le 2
check "default reading under qemu: nothing on stderr" test ! -s "$T/auto.err"
fallback=$(grep -m 1 'sockets read from /proc/net instead' <<<"$out")
check "-v says the sockets were read from /proc/net instead of netlink" test -n "$fallback"
check "-v names the refused call: socket(AF_NETLINK, NETLINK_SOCK_DIAG) failed: EPROTONOSUPPORT" \
    grep -qF 'socket(AF_NETLINK, NETLINK_SOCK_DIAG) failed: EPROTONOSUPPORT' <<<"$fallback"
# The refusal is qemu's, not the kernel's: a reason guessed about the kernel would be untrue here.
check "the note guesses no cause" test -z "$(grep -i 'in this kernel' <<<"$fallback")"
out=$(run_arm --source netlink 2>"$T/netlink.err"); code=$?
check "--source netlink under qemu: exit 3" test "$code" = 3
check "--source netlink under qemu: one UNKNOWN line naming the refused call" \
    sh -c "test \"\$(printf '%s\n' \"\$1\" | wc -l)\" = 1 && printf '%s' \"\$1\" | grep -q '^EPHEMERAL PORTS UNKNOWN - .*socket(AF_NETLINK, NETLINK_SOCK_DIAG) failed: EPROTONOSUPPORT'" _ "$out"
check "--source netlink under qemu: nothing on stderr" test ! -s "$T/netlink.err"
[ "$failed" = 0 ]
