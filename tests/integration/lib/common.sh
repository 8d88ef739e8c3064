# shellcheck shell=bash
# shellcheck disable=SC2034  # the paths and lists below are for the scripts that source this file
# Shared by the integration scripts in tests/integration/ (sourced, never run: build.sh runs
# every tests/integration/*.sh, so this file lives in lib/). Each script prints TAP-like
# "ok - ..." / "not ok - ..." lines and "# ..." comments and exits non-zero on any failure.

# Paths are absolute so that the daemons, which run from a temp dir, find the files under test.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)  # tests/integration
root=$(cd "$here/../.." && pwd)
fixtures=$root/tests/fixtures
# build.sh passes the binary it just built; run by hand, a script tests the last one in dist/.
bin=${CHECK_EPHEMERAL_PORTS_BIN:-$root/dist/check_ephemeral_ports}
# Every label of --format nagios perfdata: each daemon that parses perfdata must see all of them.
perfdata_labels="tcp_busiest_pct tcp_busiest_used tcp_ports_in_use tcp_time_wait tcp_tuples udp_used_pct udp_used capacity"
# And, in a namespace whose conntrack table holds entries (a rule there uses conntrack: NAT, a
# stateful firewall), a root run's table figures and its count of NAT tuples. A fresh namespace
# tracks nothing, so the tests' namespaces print only the labels above.
conntrack_labels="conntrack_pct conntrack_entries conntrack_insert_failed conntrack_drop conntrack_early_drop nat_tuples"

failed=0 pids=() policy_created='' apt_updated='' T=''

# --- reporting ------------------------------------------------------------------------------------
# A failure does not stop the script: every later check still reports, and the exit status says it.
# check returns the command's success, for the few checks nothing after them can do without
# (check ... || exit 1).
ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; failed=1; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; return 1; fi; }
# For commands whose own output would garble the TAP stream.
check_silent() { local what=$1; shift; check "$what" quiet /dev/null "$@"; }
# Keeps a command's output in a file of the temp dir, where it is left for a failure's post-mortem.
quiet() { local log=$1; shift; "$@" >"$log" 2>&1; }

# Nothing else can be tested without the plugin, so a missing binary ends the script.
require_plugin_binary() { check "plugin binary $bin exists" test -x "$bin" || exit 1; }

# A private copy: a rebuild of dist/ during the test does not matter, and the daemons' users
# (nagios, zabbix, prometheus) can run it from the 755 temp dir.
install_plugin_into() { mkdir -p "$1" && install -m 755 "$bin" "$1/check_ephemeral_ports"; }

# --- temp dir and cleanup -------------------------------------------------------------------------
# Everything a test writes goes into $T. It is 755 because the daemons run as their own users.
# On exit: daemons stopped, a policy-rc.d of ours removed even if apt-get died, and $T removed
# unless something failed or KEEP_TMP is set (then it is left for a look and its path printed).
setup_temp_dir() {
    T=$(mktemp -d) && chmod 755 "$T" || exit 1
    trap cleanup EXIT
}
cleanup() {
    stop_all
    if [ -n "$policy_created" ]; then rm -f /usr/sbin/policy-rc.d; fi
    if [ "$failed" = 0 ] && [ -z "${KEEP_TMP:-}" ]; then rm -rf "$T"; else echo "# files kept in $T"; fi
}

# --- packages -------------------------------------------------------------------------------------
# Installs what is missing. Debian's maintainer scripts would start (and enable) the daemons on
# install: a policy-rc.d that exits 101 forbids that, but only one we create ourselves, which we
# remove again; an existing policy-rc.d is never touched. apt-get update runs at most once; the
# lock timeout waits for another apt-get (another test, the build) instead of failing.
need_packages() {
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null | grep -q ' installed$' || missing+=("$p")
    done
    [ ${#missing[@]} = 0 ] && return 0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
        policy_created=1
    fi
    { [ -n "$apt_updated" ] || apt-get update -qq >>"$T/apt.log" 2>&1 && apt_updated=1; } &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            -o DPkg::Lock::Timeout=300 "${missing[@]}" >>"$T/apt.log" 2>&1
    local rc=$?
    if [ -n "$policy_created" ]; then rm -f /usr/sbin/policy-rc.d; policy_created=''; fi
    return $rc
}

# need_packages as a check, for a test that starts its own DAEMON (a process name): the install
# must not have started one too (policy-rc.d), which would run the system config beside ours.
install_without_daemon() {
    local daemon=$1 before; shift
    before=$(pgrep -x "$daemon")
    check "install $*" need_packages "$@"
    check "package install started no $daemon daemon" test -z "$(pgrep -x "$daemon" | grep -vxF "${before:-none}")"
}

# --- daemons --------------------------------------------------------------------------------------
# Starts a daemon in the background with its output in LOG and its PID recorded, so that it is
# stopped even when the script dies. The command must be a program, not a shell function: then
# the recorded PID is the daemon's own (a function would run in a subshell). Standard input is
# passed on explicitly, for a program read from a here-document: a background command would
# otherwise get /dev/null.
start_daemon() { local log=$1; shift; "$@" <&0 >"$log" 2>&1 & pids+=($!); }

# What a daemon forked, recursively: stop_all kills it too if the daemon does not stop in time.
descendants() { local c; for c in $(pgrep -P "$1"); do echo "$c"; descendants "$c"; done; }
# Last started first. Only the parent gets TERM (the daemons stop their own children); if it or
# anything it forked is still there after 30 s, all of it gets KILL.
stop_all() {
    local n pid tree
    for ((n = ${#pids[@]} - 1; n >= 0; n--)); do
        pid=${pids[n]}
        tree="$pid $(descendants "$pid")"
        kill -TERM "$pid" 2>/dev/null
        # shellcheck disable=SC2086  # $tree is a list of PIDs
        for _ in $(seq 60); do kill -0 $tree 2>/dev/null || break; sleep 0.5; done
        # shellcheck disable=SC2086
        kill -KILL $tree 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    pids=()
}

# PIDs whose name matches the pgrep pattern, without zombies: a daemon that has exited but that
# init has not reaped yet is gone as far as the tests care.
live_processes() { local p; for p in $(pgrep "$1"); do ps -o stat= -p "$p" | grep -qv '^Z' && echo "$p"; done; }

# A port on 127.0.0.1 that is free right now (barring a race): the kernel's pick, or with
# LOW HIGH a random free one in that range, for daemons that refuse ephemeral ports.
free_port() {
    /usr/bin/python3 - "$@" <<'EOF'
import random, socket, sys
ports = random.sample(range(int(sys.argv[1]), int(sys.argv[2]) + 1), 200) if len(sys.argv) > 2 else [0]
for port in ports:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        print(s.getsockname()[1])
        break
EOF
}

# --- checks on what the plugin printed ------------------------------------------------------------
# Perfdata item LABEL_RE=<number>[UOM] in PERFDATA, UOMs as the Nagios plugin guidelines allow.
# LABEL_RE is an extended regex: give the quotes the plugin prints, or '? where a daemon may
# have stripped them.
# --- Nagios 4 -------------------------------------------------------------------------------------
# What every test configuration of nagios4 needs before its services: the 24x7 period, a contact
# that notifies nobody, and the host localhost.
nagios_base_objects() {
    cat <<'EOF'
define timeperiod {
    timeperiod_name         24x7
    alias                   24x7
    sunday                  00:00-24:00
    monday                  00:00-24:00
    tuesday                 00:00-24:00
    wednesday               00:00-24:00
    thursday                00:00-24:00
    friday                  00:00-24:00
    saturday                00:00-24:00
}
define command {
    command_name            notify-nobody
    command_line            /bin/true
}
define contact {
    contact_name                    nobody
    service_notification_period     24x7
    host_notification_period        24x7
    service_notification_options    n
    host_notification_options       n
    service_notification_commands   notify-nobody
    host_notification_commands      notify-nobody
}
define host {
    host_name               localhost
    alias                   localhost
    address                 127.0.0.1
    max_check_attempts      1
    check_period            24x7
    contacts                nobody
    notification_period     24x7
    notifications_enabled   0
}
EOF
}

perfdata_is_numeric() { grep -qE "(^| )$1=-?[0-9]+(\.[0-9]+)?(%|s|ms|us|B|KB|MB|TB|c)?(;|$| )" <<<"$2"; }

# icinga2 options that keep its state, logs and run files under DIR (created here), away from
# an installed Icinga's /var; sets the array icinga2_dirs.
icinga2_private_dirs() {
    mkdir -p "$1"/{data,log,cache,spool,run}
    icinga2_dirs=(-DConfiguration.DataDir="$1/data" -DConfiguration.LogDir="$1/log" -DConfiguration.CacheDir="$1/cache"
        -DConfiguration.SpoolDir="$1/spool" -DConfiguration.InitRunDir="$1/run"
        -DConfiguration.RunAsUser=root -DConfiguration.RunAsGroup=root)
}

# qemu_libs ROOT DIR: a library prefix for qemu-user's -L holding only ROOT's lib and usr.
# qemu resolves every absolute path under -L first: with a whole root there, its empty /proc
# would stand in for the real one (the plugin opens /proc once and reads beneath it).
qemu_libs() {
    mkdir -p "$2"
    ln -sfn "$1/lib" "$2/lib"
    ln -sfn "$1/usr" "$2/usr"
    printf '%s\n' "$2"
}
