#!/usr/bin/env bash
# The plugin under a seccomp filter that refuses openat2(), as systemd and container runtimes do:
#   EPERM   systemd before v248 implements RestrictSUIDSGID= (set in the shipped unit) with a
#           filter that answers every openat2 with EPERM, since it cannot look inside struct
#           open_how (Debian 11 has systemd 247); some container runtimes' profiles do the same.
#   ENOSYS  systemd v248 and later (systemd PR #18342), newer runtime profiles, kernels before 5.6.
# Either way the plugin must fall back to walking /proc by hand and give its normal answer (exit
# 0-2 and a status line), not "UNKNOWN - ... permission denied". A small launcher, compiled here
# from C with libseccomp, loads an allow-all filter with that one rule and execs the command; it
# first checks that the filter really answers openat2 that way. Run: the plugin with -v
# (--proc-root /proc, the default), with --source proc, and the systemd unit's own ExecStart line
# (textfile in a temp directory), under each errno.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"

setup_temp_dir
require_plugin_binary
check "install gcc, libseccomp-dev, python3" need_packages gcc libc6-dev libseccomp-dev python3 || exit 1
install_plugin_into "$T/bin"

cat >"$T/seccomp_errno.c" <<'EOF'
/* seccomp_errno SYSCALL ERRNO CMD [ARG...]: run CMD with SYSCALL answering -1/ERRNO (a number),
 * every other system call allowed. Exits 125 if the filter cannot be set up or does not work. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437 /* the same number on every architecture */
#endif

struct open_how_v0 { uint64_t flags, mode, resolve; };

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s SYSCALL ERRNO CMD [ARG...]\n", argv[0]);
        return 125;
    }
    int nr = seccomp_syscall_resolve_name(argv[1]);
    int err = atoi(argv[2]);
    if (nr == __NR_SCMP_ERROR || err <= 0) {
        fprintf(stderr, "seccomp_errno: unknown system call %s or bad errno %s\n", argv[1], argv[2]);
        return 125;
    }
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    int rc = ctx ? seccomp_rule_add(ctx, SCMP_ACT_ERRNO(err), nr, 0) : -ENOMEM;
    if (rc == 0)
        rc = seccomp_load(ctx); /* sets no_new_privs first, as systemd does */
    if (rc != 0) {
        fprintf(stderr, "seccomp_errno: loading the filter: %s\n", strerror(-rc));
        return 125;
    }
    seccomp_release(ctx);
    if (nr == SYS_openat2) {
        struct open_how_v0 how = { .flags = O_RDONLY | O_DIRECTORY };
        long fd = syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof how);
        if (fd >= 0 || errno != err) {
            fprintf(stderr, "seccomp_errno: openat2 gave %ld (errno %d), not errno %d\n", fd, errno, err);
            return 125;
        }
    }
    execvp(argv[3], argv + 3);
    fprintf(stderr, "seccomp_errno: %s: %s\n", argv[3], strerror(errno));
    return 127;
}
EOF
check "the seccomp launcher compiles (gcc, libseccomp)" \
    gcc -O2 -Wall -Werror -o "$T/seccomp_errno" "$T/seccomp_errno.c" -lseccomp 2>"$T/gcc.log" ||
    { sed 's/^/#   /' "$T/gcc.log"; exit 1; }

# Without a filter this kernel must have openat2 (5.6+), or the filter proves nothing.
/usr/bin/python3 - <<'EOF' >"$T/probe.log" 2>&1
import ctypes, os, struct
libc = ctypes.CDLL(None, use_errno=True)
how = struct.pack("QQQ", os.O_RDONLY | os.O_DIRECTORY, 0, 0)
fd = libc.syscall(437, -100, b"/", how, len(how))
raise SystemExit(0 if fd >= 0 else ctypes.get_errno())
EOF
check "this kernel ($(uname -r)) has openat2 without a filter" test $? = 0 || exit 1

service=$root/icinga/systemd/check-ephemeral-ports.service
exec_start=$(sed -n 's/^ExecStart=//p' "$service")
exec_start=${exec_start/\/usr\/lib\/nagios\/plugins\/check_ephemeral_ports/$T/bin/check_ephemeral_ports}
exec_start=${exec_start/\/var\/lib\/prometheus\/node-exporter/$T/textfile}
mkdir -p "$T/textfile"

for e in EPERM:1 ENOSYS:38; do
    name=${e%:*} num=${e#*:}
    for args in "-v" "-v --source proc"; do
        # shellcheck disable=SC2086  # $args is a list of options
        out=$("$T/seccomp_errno" openat2 "$num" "$T/bin/check_ephemeral_ports" $args 2>"$T/err"); code=$?
        line=$(head -n 1 <<<"$out")
        if [ "$code" -le 2 ] && grep -qE '^EPHEMERAL PORTS (OK|WARNING|CRITICAL) - ' <<<"$line" &&
            ! grep -qi 'permission denied\|not permitted' <<<"$out$(cat "$T/err")"; then
            ok "openat2 -> $name: check_ephemeral_ports $args gives its normal answer (exit $code)"
        else
            not_ok "openat2 -> $name: check_ephemeral_ports $args: exit $code: $line $(head -c 300 "$T/err")"
        fi
    done
    # The unit's own command line, as systemd 247 (EPERM) or 248+ (ENOSYS) would run it.
    rm -f "$T/textfile/ephemeral_ports.prom"
    "$T/seccomp_errno" openat2 "$num" sh -c "$exec_start" >"$T/unit.log" 2>&1; code=$?
    check "openat2 -> $name: the unit's ExecStart writes a textfile with ephemeral_ports_up 1 (exit $code)" \
        test "$code" = 0 -a "$(grep -cx 'ephemeral_ports_up 1' "$T/textfile/ephemeral_ports.prom" 2>/dev/null)" = 1 ||
        sed 's/^/#   /' "$T/unit.log" "$T/textfile/ephemeral_ports.prom" 2>/dev/null | head -n 5
done

[ "$failed" = 0 ]
