#!/usr/bin/env bash
# The glibc floor: both native binaries need no GLIBC_ symbol version above 2.17, and the x86_64
# one does real checks inside a Debian 11 root (glibc 2.31, the sysroot ./build.sh linked against):
# chrooted there, with its own /proc mounted in a private mount namespace (gone with the
# process, nothing is left mounted), it reads the live kernel through netlink and /proc/net,
# checks every namespace (one more is made for it), and answers bad input with one UNKNOWN line.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
floor=2.17

setup_temp_dir
require_plugin_binary

# Each binary ./build.sh makes, whatever this machine's architecture.
for b in "$root"/dist/linux-*/check_ephemeral_ports; do
    needed=$(objdump -T "$b" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1)
    check "${b#"$root"/} needs at most GLIBC_$floor (newest: $needed)" \
        test "$(printf '%s\n%s\n' "${needed#GLIBC_}" "$floor" | sort -V | tail -n 1)" = "$floor"
done
x64=$root/dist/linux-x64/check_ephemeral_ports
[ "$(uname -m)" = x86_64 ] || { echo "# not an x86_64 machine: the Debian 11 root's checks need one"; [ "$failed" = 0 ]; exit; }
check "x86_64 binary $x64 exists" test -x "$x64" || exit 1

if ! oldroot=$("$root/src/build/sysroot.sh" amd64 2>"$T/sysroot.log"); then
    not_ok "the Debian 11 root: $(tail -n 3 "$T/sysroot.log")"; exit 1
fi
ok "Debian 11 root at $oldroot"
mkdir -p "$T/mnt"
install -m 755 "$x64" "$T/mnt/check_ephemeral_ports"
cp -r "$fixtures/error-tcp-not-hex" "$T/mnt/fixture"

# in_root CMD ARGS...: CMD chrooted into the Debian 11 root, with /proc mounted and $T/mnt on /mnt.
in_root() {
    unshare --mount --propagation private -- /bin/sh -c \
        'set -e; r=$1; m=$2; shift 2; mount -t proc proc "$r/proc"; mount --bind "$m" "$r/mnt"; exec chroot "$r" "$@"' \
        in_root "$oldroot" "$T/mnt" "$@"
}
plugin() { in_root /mnt/check_ephemeral_ports "$@"; }

libc=$(in_root /usr/bin/ldd --version 2>&1 | head -n 1)
check "the root's C library is glibc 2.31: $libc" grep -q ' 2\.31$' <<<"$libc"
deps=$(in_root /usr/bin/ldd /mnt/check_ephemeral_ports 2>&1)
check "ldd in the root finds every library the binary needs" test -z "$(grep 'not found' <<<"$deps")"
check "ldd in the root binds the root's libc" grep -q 'libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6' <<<"$deps"

# The default reading: netlink, the live kernel.
out=$(plugin -v 2>"$T/default.err"); code=$?
printf '%s\n' "$out" >"$T/default.out"
check "default reading in the Debian 11 root: a status line" grep -q '^EPHEMERAL PORTS \(OK\|WARNING\|CRITICAL\) - .* | .tcp_busiest_pct.=' <<<"$out"
check "default reading in the Debian 11 root: exit 0-2 ($code)" test "$code" -le 2
check "default reading in the Debian 11 root: nothing on stderr" test ! -s "$T/default.err"
check "default reading in the Debian 11 root: through netlink" grep -q 'sockets read through netlink sock_diag' <<<"$out"
out=$(plugin --source proc 2>"$T/proc.err"); code=$?
check "--source proc in the Debian 11 root: a status line" grep -q '^EPHEMERAL PORTS \(OK\|WARNING\|CRITICAL\) - ' <<<"$out"
check "--source proc in the Debian 11 root: exit 0-2 ($code), nothing on stderr" test "$code" -le 2 -a ! -s "$T/proc.err"

out=$(plugin --processes --format json 2>"$T/json.err"); code=$?
check "--processes --format json in the Debian 11 root: one JSON document, exit 0, nothing on stderr" \
    sh -c "printf '%s' \"\$1\" | python3 -c 'import json, sys; json.load(sys.stdin)' && test $code = 0 && test ! -s '$T/json.err'" _ "$out"

# --all-namespaces (root): one more namespace, held by a process of ours, must be among them.
start_daemon "$T/netns.log" unshare --net sleep 120
ns_pid=${pids[-1]}
for _ in $(seq 50); do [ "$(readlink "/proc/$ns_pid/ns/net" 2>/dev/null)" != "$(readlink /proc/self/ns/net)" ] && break; sleep 0.1; done
out=$(plugin --all-namespaces 2>"$T/all.err"); code=$?
printf '%s\n' "$out" >"$T/all.out"
count=$(grep -o "'namespaces'=[0-9]*" <<<"$out" | head -n 1 | cut -d= -f2)
# A machine may hold a process whose namespace even root may not look at (this CI's sandbox
# protects its PID 1): then the answer is UNKNOWN and says so, never OK by omission.
if grep -q '^EPHEMERAL PORTS UNKNOWN - .*NOT checked: the namespaces\? of [0-9]* process' <<<"$out"; then
    ok "--all-namespaces in the Debian 11 root: UNKNOWN, naming what it could not look at"
    check "--all-namespaces in the Debian 11 root: exit 3 with it ($code)" test "$code" -eq 3
else
    check "--all-namespaces in the Debian 11 root: a status line" grep -q '^EPHEMERAL PORTS \(OK\|WARNING\|CRITICAL\) - ' <<<"$out"
    check "--all-namespaces in the Debian 11 root: exit 0-2 ($code)" test "$code" -le 2
fi
check "--all-namespaces in the Debian 11 root: at least the host's and ours (${count:-none})" test "${count:-0}" -ge 2
check "--all-namespaces in the Debian 11 root: nothing on stderr" test ! -s "$T/all.err"
stop_all

# Bad input: exit 3 and exactly one UNKNOWN line, nothing on stderr.
one_unknown() {
    local what=$1 out code; shift
    out=$(plugin "$@" 2>"$T/bad.err"); code=$?
    if [ "$code" = 3 ] && [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] && grep -q '^EPHEMERAL PORTS UNKNOWN - ' <<<"$out" && [ ! -s "$T/bad.err" ]; then
        ok "$what in the Debian 11 root: exit 3, one UNKNOWN line"
    else
        not_ok "$what in the Debian 11 root: exit $code, output $(head -c 300 <<<"$out"), stderr $(head -c 300 "$T/bad.err")"
    fi
}
one_unknown "a threshold that is no range (-w foo)" -w foo
one_unknown "an unknown option" --no-such-option
one_unknown "a missing proc root" --proc-root /nonexistent
one_unknown "a malformed socket table (fixture error-tcp-not-hex)" --proc-root /mnt/fixture/proc
[ "$failed" = 0 ]
