#!/usr/bin/env bash
# Integration test: NRPE (Debian 12 nagios-nrpe-server) runs check_ephemeral_ports as user
# nagios from our icinga/nrpe/check_ephemeral_ports.cfg; check_nrpe fetches the result.
# Runs as root; prints "ok - ..." / "not ok - ..." lines; exits 1 on any failure.
# The daemon listens on 127.0.0.1 only, runs from a temp dir (kept on failure or with
# KEEP_TMP=1) and is stopped by PID on exit.
set -u
here=$(cd "$(dirname "$0")" && pwd)
snippet=$(cd "$here/../../icinga/nrpe" && pwd)/check_ephemeral_ports.cfg
bin=${CHECK_EPHEMERAL_PORTS_BIN:-$here/../../dist/check_ephemeral_ports}
labels="tcp_busiest_pct tcp_busiest_used tcp_ports_in_use tcp_time_wait tcp_tuples udp_used_pct udp_used capacity"
check_nrpe=/usr/lib/nagios/plugins/check_nrpe

failed=0 pids=() policy_created=
ok() { echo "ok - $*"; }
nok() { echo "not ok - $*"; failed=1; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else nok "$what"; fi; }

descendants() { local c; for c in $(pgrep -P "$1"); do echo "$c"; descendants "$c"; done; }
stop_all() { # last started first: TERM it, KILL it and what it forked if still there after 30 s
    local n pid tree
    for ((n = ${#pids[@]} - 1; n >= 0; n--)); do
        pid=${pids[n]} tree="${pids[n]} $(descendants "${pids[n]}")"
        kill -TERM "$pid" 2>/dev/null  # only the parent: the daemons stop their own children
        for _ in $(seq 60); do kill -0 $tree 2>/dev/null || break; sleep 0.5; done
        kill -KILL $tree 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    pids=()
}
cleanup() {
    stop_all
    if [ -n "$policy_created" ]; then rm -f /usr/sbin/policy-rc.d; fi
    if [ "$failed" = 0 ] && [ -z "${KEEP_TMP:-}" ]; then rm -rf "$T"; else echo "# files kept in $T"; fi
}
T=$(mktemp -d) && chmod 755 "$T" || exit 1
trap cleanup EXIT

# Install missing packages; policy-rc.d stops the maintainer scripts from starting daemons.
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
    apt-get update -qq >"$T/apt.log" 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$T/apt.log" 2>&1
    local rc=$?
    if [ -n "$policy_created" ]; then rm -f /usr/sbin/policy-rc.d; policy_created=; fi
    return $rc
}
check "plugin binary $bin exists" test -x "$bin" || exit 1
before=$(pgrep -x nrpe)
check "install nagios-nrpe-server nagios-nrpe-plugin python3" need_packages nagios-nrpe-server nagios-nrpe-plugin python3
check "package install started no nrpe daemon" test -z "$(pgrep -x nrpe | grep -vxF "${before:-none}")"

# NRPE drops to user nagios: the plugin copy must be executable by it, var/ writable.
mkdir -p "$T"/{plugins,nrpe.d,var}
install -m 755 "$bin" "$T/plugins/check_ephemeral_ports"
chown nagios:nagios "$T/var"

# Our snippet as shipped, with only the plugin directory pointed at the temp copy.
sed "s|/usr/lib/nagios/plugins/|$T/plugins/|" "$snippet" >"$T/nrpe.d/check_ephemeral_ports.cfg"
check "snippet defines command[check_ephemeral_ports] with -w 70 -c 85" \
    grep -qxF "command[check_ephemeral_ports]=$T/plugins/check_ephemeral_ports -w 70 -c 85" "$T/nrpe.d/check_ephemeral_ports.cfg"

# A port the kernel just handed out and released: free, barring a race.
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$T/nrpe.cfg" <<EOF
log_file=$T/var/nrpe.log
debug=1
pid_file=$T/var/nrpe.pid
server_address=127.0.0.1
server_port=$port
nrpe_user=nagios
nrpe_group=nagios
allowed_hosts=127.0.0.1
dont_blame_nrpe=0
command_timeout=60
connection_timeout=300
include_dir=$T/nrpe.d
EOF

nrpe -c "$T/nrpe.cfg" -f >"$T/daemon.log" 2>&1 &
pids+=($!)
start=$SECONDS
until [ "$($check_nrpe -H 127.0.0.1 -p "$port" -t 2 2>&1)" = "NRPE v4.1.0" ] ||
    [ $((SECONDS - start)) -ge 60 ] || ! kill -0 "${pids[0]}" 2>/dev/null; do sleep 0.2; done
check "nrpe answers on 127.0.0.1:$port ($((SECONDS - start)) s)" \
    test "$($check_nrpe -H 127.0.0.1 -p "$port" -t 2 2>&1)" = "NRPE v4.1.0"

out=$($check_nrpe -H 127.0.0.1 -p "$port" -t 30 -c check_ephemeral_ports 2>&1)
rc=$?
direct=$(runuser -u nagios -- "$T/plugins/check_ephemeral_ports" -w 70 -c 85 2>&1)
direct_rc=$?
first=$(head -1 <<<"$out")
check "check_nrpe exit code $rc = the plugin's own exit code $direct_rc (as nagios)" test "$rc" = "$direct_rc"
check "check_nrpe exit code 0 on this idle machine" test "$rc" = 0
check "output starts with 'EPHEMERAL PORTS OK - '" grep -q '^EPHEMERAL PORTS OK - ' <<<"$first"
perf=${first#*|}
for label in $labels; do
    check "perfdata $label has a numeric value" grep -qE "(^| )'$label'=-?[0-9]+(\.[0-9]+)?(%|s|ms|us|B|KB|MB|TB|c)?(;|$| )" <<<"$perf"
done
# nrpe.log holds what the plugin printed (debug=1): check_nrpe must return all of it.
logged=$(awk '/Command completed with return code [0-9]+ and output: / { sub(/.*and output: /, ""); on = 1 }
    on && /^\[[0-9]+\] / { exit } on' "$T/var/nrpe.log")
check "check_nrpe returned the plugin's whole output ($(wc -l <<<"$out") lines)" test "$out" = "$logged"
echo "# output: ${#out} bytes via check_nrpe, ${#direct} bytes run directly (NRPE v2 packets carry 1023)"
check "nrpe ran the command line from the snippet" grep -qF "Running command: $T/plugins/check_ephemeral_ports -w 70 -c 85" "$T/var/nrpe.log"

# Debian's NRPE is built without command arguments: thresholds can only come from nrpe.cfg.
$check_nrpe -H 127.0.0.1 -p "$port" -t 10 -c check_ephemeral_ports -a 50 60 >/dev/null 2>&1
args_rc=$?
check "nrpe refuses arguments (check_nrpe -a exits $args_rc, UNKNOWN)" test "$args_rc" = 3
check "nrpe logged the refusal" grep -q 'Request contained command arguments' "$T/var/nrpe.log"

stop_all
check "nothing left running from $T" test -z "$(pgrep -f -- "$T")"
exit $failed
