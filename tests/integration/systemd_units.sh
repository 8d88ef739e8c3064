#!/usr/bin/env bash
# Integration test: icinga/systemd/check-ephemeral-ports.{service,timer} and the cron line.
#   - systemd-analyze verify accepts both units without a single warning. It runs with --root on
#     a copy of this host's unit directory and the plugin at its installed path, so it needs no
#     systemd as PID 1 and no installed package; a deliberately broken copy shows that it would
#     complain.
#   - the unit's own ExecStart command line runs for real, in a private mount namespace that
#     copies the sandbox as far as plain tools can: / read-only (ProtectSystem=strict) but the
#     textfile directory (ReadWritePaths=, here a temp directory bind-mounted over Debian's
#     /var/lib/prometheus/node-exporter, so the host's directory is never written), the capability
#     bounding set of CapabilityBoundingSet=, and no_new_privs (NoNewPrivileges=). The file must
#     appear whole, 0644, and pass promtool; with --all-namespaces (the root features) too.
#     Seccomp-based directives (SystemCallFilter=, RestrictAddressFamilies=, RestrictNamespaces=)
#     need systemd itself and are not exercised here; tests/integration/seccomp_openat2.sh runs
#     the ExecStart line under the openat2 answers of RestrictSUIDSGID= (EPERM before v248).
#   - why the unit runs as root: user prometheus cannot write Debian's textfile directory.
#   - a missing textfile directory fails the unit (the plugin's UNKNOWN), no Condition skips it.
# Runs as root; prints "ok - ..." / "not ok - ..." lines; exits 1 on any failure.
set -u
. "$(dirname "$0")/lib/common.sh"
units=$root/icinga/systemd
service=$units/check-ephemeral-ports.service
timer=$units/check-ephemeral-ports.timer
textfile_dir=/var/lib/prometheus/node-exporter

setup_temp_dir
require_plugin_binary
check "install systemd prometheus prometheus-node-exporter util-linux" \
    need_packages systemd prometheus prometheus-node-exporter util-linux || exit 1

# --- systemd-analyze verify ---------------------------------------------------------------------
# A root with the host's units (for sysinit.target, timers.target, ...) and ours, and the plugin
# where ExecStart expects it.
vroot=$T/vroot
mkdir -p "$vroot/lib/systemd/system" "$vroot/usr/lib/nagios/plugins"
cp -a /lib/systemd/system/. "$vroot/lib/systemd/system/"
install -m 0644 "$service" "$timer" "$vroot/lib/systemd/system/"
install -m 0755 "$bin" "$vroot/usr/lib/nagios/plugins/check_ephemeral_ports"
verify() { # UNIT...: exit 0 and nothing printed
    (cd "$vroot" && systemd-analyze verify --root="$vroot" "$@") >"$T/verify.log" 2>&1 && [ ! -s "$T/verify.log" ]
}
check "systemd-analyze verify: service and timer, no warning" \
    verify lib/systemd/system/check-ephemeral-ports.service lib/systemd/system/check-ephemeral-ports.timer ||
    sed 's/^/#   /' "$T/verify.log"
sed -e 's/^ProtectSystem=strict$/ProtectSystem=strictly/' -e 's/^UMask=.*/&\nNoSuchDirective=1/' "$service" \
    >"$vroot/lib/systemd/system/check-ephemeral-ports-broken.service"
verify lib/systemd/system/check-ephemeral-ports-broken.service
check "systemd-analyze verify: complains about a broken copy ($(grep -c . "$T/verify.log") lines)" \
    test "$(grep -c -e 'protect system' -e 'NoSuchDirective' "$T/verify.log")" = 2
check "service: Type=oneshot, ExecStart writes --format prometheus --output into $textfile_dir" \
    grep -qx "ExecStart=/usr/lib/nagios/plugins/check_ephemeral_ports --format prometheus --output $textfile_dir/ephemeral_ports.prom" "$service"
grep -qx 'Type=oneshot' "$service" || not_ok "service is not Type=oneshot"
check "service: ReadWritePaths is the textfile directory, ProtectSystem=strict, NoNewPrivileges, PrivateTmp" \
    test "$(grep -cx -e "ReadWritePaths=-$textfile_dir" -e 'ProtectSystem=strict' -e 'NoNewPrivileges=yes' -e 'PrivateTmp=yes' "$service")" = 4
# A missing textfile directory must show as a failed unit, never as a skipped one: no Condition*=
# (a failed condition only skips the start, quietly), and the plugin itself names the directory.
check "service: no Condition that would skip it quietly" test "$(grep -c '^Condition' "$service")" = 0
check "service: no PrivateNetwork/PrivateUsers (they would hide the host's namespace)" \
    test "$(grep -c -e '^PrivateNetwork' -e '^PrivateUsers' "$service")" = 0
check "timer: every minute, WantedBy=timers.target" \
    test "$(grep -cx -e 'OnCalendar=minutely' -e 'WantedBy=timers.target' "$timer")" = 2
check "cron line runs the same command as the service" \
    test "$(sed -n 's/^\* \* \* \* \* root //p' "$root/icinga/cron/check_ephemeral_ports")" = "$(sed -n 's/^ExecStart=//p' "$service")"

# --- the ExecStart line, for real, in the sandbox's image ---------------------------------------
exec_start=$(sed -n 's/^ExecStart=//p' "$service")
exec_start=${exec_start/\/usr\/lib\/nagios\/plugins\/check_ephemeral_ports/$T/bin/check_ephemeral_ports}
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$service" | tr 'A-Z ' 'a-z\n' | sed -n 's/^cap_/+/p' | paste -sd, -)
install_plugin_into "$T/bin"
mkdir -p "$T/textfile"
missing_cmd=${exec_start//$textfile_dir/$T/no-such-textfile-dir}
sh -c "$missing_cmd" >"$T/missing.log" 2>&1
rc=$?
check "ExecStart with the textfile directory missing: the unit fails (exit $rc, UNKNOWN naming the directory)" \
    sh -c "test $rc = 3 && grep -q 'UNKNOWN .*no such directory $T/no-such-textfile-dir' '$T/missing.log'" ||
    sed 's/^/#   /' "$T/missing.log"
if [ -d "$textfile_dir" ]; then
    host_before=$(ls -A "$textfile_dir")
    # ARGS... after the command line: extra plugin options (inserted before --format).
    sandboxed() {
        local cmd=$exec_start
        [ $# = 0 ] || cmd=${cmd/ --format/ $* --format}
        unshare --mount --propagation private -- sh -c '
            set -e
            # (a bind mount keeps its source mount'"'"'s flags: the textfile one comes first; the
            # remount changes this mount namespace'"'"'s copy of / only)
            mount --bind "$1" "$2"
            mount -o remount,bind,ro /
            if touch /etc/.check-ephemeral-ports-rw-test 2>/dev/null; then echo "/ is writable"; exit 99; fi
            shift 2
            umask 0022
            exec setpriv --no-new-privs --bounding-set=-all,"$1" -- sh -c "$2"' \
            - "$T/textfile" "$textfile_dir" "$caps" "$cmd"
    }
    sandboxed >"$T/run1.log" 2>&1
    check "ExecStart in the sandbox (/ read-only, bounding set $caps, no_new_privs): exit 0, silent" \
        test $? = 0 -a ! -s "$T/run1.log" || sed 's/^/#   /' "$T/run1.log"
    f=$T/textfile/ephemeral_ports.prom
    check "the file was written whole: ephemeral_ports_up 1, mode $(stat -c %a "$f" 2>/dev/null), nothing else in the directory" \
        test "$(grep -cx 'ephemeral_ports_up 1' "$f" 2>/dev/null)" = 1 -a "$(stat -c %a "$f" 2>/dev/null)" = 644 -a "$(ls -A "$T/textfile")" = ephemeral_ports.prom
    check_silent "promtool check metrics accepts the file" sh -c "promtool check metrics <'$f'"
    # The root features under the bounding set: setns into a namespace of ours (CAP_SYS_ADMIN),
    # and --all-namespaces skipping no more namespaces than unconfined root does (some may be
    # out of reach even for root here, e.g. in another user namespace).
    ns=cep-sd-$$
    trap 'ip netns del "$ns" 2>/dev/null; cleanup' EXIT
    ip netns add "$ns" && ip -n "$ns" link set lo up
    sandboxed --netns "$ns" >"$T/run2.log" 2>&1
    check "ExecStart with --netns $ns in the sandbox (setns): exit 0, up 1" \
        test $? = 0 -a "$(grep -cx 'ephemeral_ports_up 1' "$f")" = 1 || sed 's/^/#   /' "$T/run2.log"
    "$T/bin/check_ephemeral_ports" --all-namespaces --format prometheus >"$T/unconfined.prom"
    unconfined_skipped=$(sed -n 's/^ephemeral_ports_namespaces_skipped //p' "$T/unconfined.prom")
    sandboxed --all-namespaces >"$T/run3.log" 2>&1
    rc=$?
    skipped=$(sed -n 's/^ephemeral_ports_namespaces_skipped //p' "$f")
    check "ExecStart with --all-namespaces in the sandbox: exit 0, up 1, $(sed -n 's/^ephemeral_ports_namespaces //p' "$f") namespaces, $skipped skipped (unconfined root: $unconfined_skipped)" \
        test $rc = 0 -a "$(grep -cx 'ephemeral_ports_up 1' "$f")" = 1 -a "${skipped:-x}" -le "${unconfined_skipped:-0}" ||
        sed 's/^/#   /' "$T/run3.log"
    ip netns del "$ns"
    check "the host's $textfile_dir was not touched" test "$(ls -A "$textfile_dir")" = "$host_before"
    # Why root: Debian ships the directory root:root 0755.
    owner=$(stat -c '%U:%G %a' "$textfile_dir")
    setpriv --reuid=prometheus --regid=prometheus --init-groups -- \
        "$T/bin/check_ephemeral_ports" --format prometheus --output "$textfile_dir/ephemeral_ports_as_prometheus.prom" >"$T/asprom.log" 2>&1
    rc=$?
    check "as user prometheus the plugin cannot write $textfile_dir ($owner): exit $rc, UNKNOWN" \
        test "$rc" = 3 -a ! -e "$textfile_dir/ephemeral_ports_as_prometheus.prom"
    rm -f "$textfile_dir/ephemeral_ports_as_prometheus.prom"
else
    not_ok "$textfile_dir missing after installing prometheus-node-exporter"
fi

[ "$failed" = 0 ]
