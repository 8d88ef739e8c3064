#!/usr/bin/env bash
# Integration test: NRPE (Debian 12 nagios-nrpe-server) runs check_ephemeral_ports as user
# nagios from our icinga/nrpe/check_ephemeral_ports.cfg; check_nrpe fetches the result.
# Runs as root; prints "ok - ..." / "not ok - ..." lines; exits 1 on any failure.
# The daemon listens on 127.0.0.1 only, runs from a temp dir (kept on failure or with
# KEEP_TMP=1) and is stopped by PID on exit.
set -u
. "$(dirname "$0")/lib/common.sh"
snippet=$root/icinga/nrpe/check_ephemeral_ports.cfg
check_nrpe=/usr/lib/nagios/plugins/check_nrpe

setup_temp_dir
require_plugin_binary
install_without_daemon nrpe nagios-nrpe-server nagios-nrpe-plugin python3

# NRPE drops to user nagios: the plugin copy must be executable by it, var/ writable.
mkdir -p "$T"/{nrpe.d,var}
install_plugin_into "$T/plugins"
chown nagios:nagios "$T/var"

# Our snippet as shipped, with only the plugin directory pointed at the temp copy.
sed "s|/usr/lib/nagios/plugins/|$T/plugins/|" "$snippet" >"$T/nrpe.d/check_ephemeral_ports.cfg"
check "snippet defines command[check_ephemeral_ports] with -w 70 -c 85" \
    grep -qxF "command[check_ephemeral_ports]=$T/plugins/check_ephemeral_ports -w 70 -c 85" "$T/nrpe.d/check_ephemeral_ports.cfg"

port=$(free_port)
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

start_daemon "$T/daemon.log" nrpe -c "$T/nrpe.cfg" -f
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
for label in $perfdata_labels; do
    check "perfdata $label has a numeric value" perfdata_is_numeric "'$label'" "$perf"
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
