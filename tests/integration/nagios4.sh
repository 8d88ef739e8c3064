#!/usr/bin/env bash
# Integration test: Nagios 4 (Debian 12 nagios4-core) validates icinga/nagios/*.cfg and runs
# check_ephemeral_ports as user nagios through the command check_ephemeral_ports.
# Runs as root; prints "ok - ..." / "not ok - ..." lines; exits 1 on any failure.
# The daemon runs from a temp dir (kept on failure or with KEEP_TMP=1) and is stopped by PID on exit.
set -u
. "$(dirname "$0")/lib/common.sh"
conf=$root/icinga/nagios

setup_temp_dir
require_plugin_binary
install_without_daemon nagios4 nagios4-core

# Nagios reads the config as root, then runs as nagios: it writes to var/ and runs the
# plugin copy in plugins/ (the temp dir itself is 755).
mkdir -p "$T"/{etc,var/checkresults}
install_plugin_into "$T/plugins"
chown -R nagios:nagios "$T/var"

# Nagios drops to user nagios before it reads object files: read ours from a copy it can reach
# (the clone may live below /root).
mkdir -p "$T/etc/ours"
cp "$conf"/commands.cfg "$conf"/services.cfg "$T/etc/ours/"
chmod -R a+rX "$T/etc"
conf=$T/etc/ours

# Our commands.cfg and services.cfg as they ship, plus what Debian's sample config would
# provide (generic-service, localhost) and two services that vary the arguments.
echo "\$USER1\$=$T/plugins" >"$T/etc/resource.cfg"
{ nagios_base_objects; cat <<'EOF'
# interval_length=1: intervals are in seconds. One attempt: the first result is HARD.
define service {
    name                    generic-service
    check_period            24x7
    max_check_attempts      1
    check_interval          1
    retry_interval          1
    contacts                nobody
    notification_period     24x7
    notifications_enabled   0
    process_perf_data       1
    register                0
}
define service {
    use                     generic-service
    host_name               localhost
    service_description     Forced critical
    check_command           check_ephemeral_ports!70!@0:100
}
define service {
    use                     generic-service
    host_name               localhost
    service_description     TCP only
    check_command           check_ephemeral_ports!70!85!--protocol tcp
}
EOF
} >"$T/etc/objects.cfg"

# Paths into the temp dir; Debian's illegal_macro_output_chars so macros are cleaned as
# on a stock install; every check scheduled at once and reaped every second.
cat >"$T/etc/nagios.cfg" <<EOF
cfg_file=$conf/commands.cfg
cfg_file=$conf/services.cfg
cfg_file=$T/etc/objects.cfg
resource_file=$T/etc/resource.cfg
log_file=$T/var/nagios.log
object_cache_file=$T/var/objects.cache
precached_object_file=$T/var/objects.precache
status_file=$T/var/status.dat
status_update_interval=1
lock_file=$T/var/nagios.pid
temp_file=$T/var/nagios.tmp
temp_path=$T/var
check_result_path=$T/var/checkresults
query_socket=$T/var/nagios.qh
nagios_user=nagios
nagios_group=nagios
check_external_commands=0
retain_state_information=0
use_syslog=0
check_for_updates=0
enable_notifications=0
interval_length=1
service_inter_check_delay_method=n
host_inter_check_delay_method=n
check_result_reaper_frequency=1
illegal_macro_output_chars=\`~\$&|'"<>
process_performance_data=1
service_perfdata_file=$T/var/service-perfdata
service_perfdata_file_mode=a
service_perfdata_file_template=\$SERVICEDESC\$\t\$SERVICESTATEID\$\t\$SERVICEOUTPUT\$\t\$SERVICEPERFDATA\$
EOF

check "nagios4 -v accepts the config" quiet "$T/verify.log" nagios4 -v "$T/etc/nagios.cfg"

# The NRPE example in services.cfg is commented out (it needs remote hosts): validate it
# uncommented, with a remote host and check_nrpe as in Debian's nagios-nrpe-plugin.
{
    sed -n '/^#define service/,/^#}/s/^#//p' "$conf/services.cfg"
    cat <<'EOF'
define command {
    command_name            check_nrpe
    command_line            /usr/lib/nagios/plugins/check_nrpe -H $HOSTADDRESS$ -c $ARG1$
}
define host {
    host_name               remote1
    alias                   remote1
    address                 192.0.2.1
    max_check_attempts      1
    check_period            24x7
    contacts                nobody
    notification_period     24x7
}
define hostgroup {
    hostgroup_name          linux-servers
    alias                   Linux servers
    members                 remote1
}
EOF
} >"$T/etc/nrpe-example.cfg"
{ cat "$T/etc/nagios.cfg"; echo "cfg_file=$T/etc/nrpe-example.cfg"; } >"$T/etc/nagios-nrpe.cfg"
check "nagios4 -v accepts the NRPE example of services.cfg" quiet "$T/verify-nrpe.log" nagios4 -v "$T/etc/nagios-nrpe.cfg"
check "the NRPE example adds a fourth service" grep -q 'Checked 4 services' "$T/verify-nrpe.log"

start_daemon "$T/daemon.log" nagios4 "$T/etc/nagios.cfg"

# Field $2 of service $1 in status.dat (long output and such have their newlines as "\n").
field() {
    awk -v s="$1" -v k="$2" '
        /^servicestatus \{/ { in_svc = 1; desc = ""; split("", f); next }
        in_svc && /^\t\}/ { if (desc == s) { print f[k]; exit } in_svc = 0; next }
        in_svc { sub(/^\t/, ""); key = substr($0, 1, index($0, "=") - 1); f[key] = substr($0, length(key) + 2)
                 if (key == "service_description") desc = f[key] }' "$status_dat" 2>/dev/null
}
status_dat=$T/var/status.dat
services=("Ephemeral ports" "Forced critical" "TCP only")
ready() { local s; for s in "${services[@]}"; do [ "$(field "$s" has_been_checked)" = 1 ] || return 1; done; }
start=$SECONDS
until ready || [ $((SECONDS - start)) -ge 60 ] || ! kill -0 "${pids[0]}" 2>/dev/null; do sleep 0.5; done
check "first results of all three services within 60 s ($((SECONDS - start)) s)" ready
cp "$status_dat" "$T/status.dat" && status_dat=$T/status.dat  # nagios4 deletes it on exit
stop_all

# Nagios runs "check_ephemeral_ports -w 70 -c 85" as nagios; do the same ourselves.
runuser -u nagios -- "$T/plugins/check_ephemeral_ports" -w 70 -c 85 >/dev/null 2>&1
direct_rc=$?
svc="Ephemeral ports"
state=$(field "$svc" current_state)
check "$svc: check_command is check_ephemeral_ports!70!85" test "$(field "$svc" check_command)" = 'check_ephemeral_ports!70!85'
check "$svc: state $state = the plugin's own exit code $direct_rc (as nagios)" test "$state" = "$direct_rc"
check "$svc: state 0 on this idle machine" test "$state" = 0
check "$svc: output starts with 'EPHEMERAL PORTS OK - '" grep -q '^EPHEMERAL PORTS OK - ' <<<"$(field "$svc" plugin_output)"
check "$svc: long output has the detail lines" grep -q '^range [0-9]*-[0-9]*: ' <<<"$(field "$svc" long_plugin_output)"
# Nagios keeps perfdata as text: check each label has a plain number and a valid UOM.
numeric() { perfdata_is_numeric "'?$1'?" "$2"; }
perf=$(field "$svc" performance_data)
for label in $perfdata_labels; do
    check "$svc: perfdata $label has a numeric value" numeric "$label" "$perf"
done
# The service perfdata file (what a graphing add-on reads): first line of the service.
IFS=$'\t' read -r _ p_state p_output p_perf < <(grep -m1 "^$svc"$'\t' "$T/var/service-perfdata" 2>/dev/null)
absent=""
for label in $perfdata_labels; do numeric "$label" "${p_perf:-}" || absent+=" $label"; done
check "$svc: service_perfdata_file has state ${p_state:-?}, the output and every label${absent:+ (missing:$absent)}" \
    test "${p_state:-}" = 0 -a -z "$absent" -a "${p_output:0:21}" = "EPHEMERAL PORTS OK - "

svc="Forced critical"
check "$svc: check_ephemeral_ports!70!@0:100 gives state 2" test "$(field "$svc" current_state)" = 2
check "$svc: output starts with 'EPHEMERAL PORTS CRITICAL - '" grep -q '^EPHEMERAL PORTS CRITICAL - ' <<<"$(field "$svc" plugin_output)"

svc="TCP only"
check "$svc: check_ephemeral_ports!70!85!--protocol tcp gives state 0" test "$(field "$svc" current_state)" = 0
perf=$(field "$svc" performance_data)
check "$svc: tcp perfdata, no udp perfdata" test -n "$(grep -E "'?tcp_busiest_pct'?=" <<<"$perf")" -a -z "$(grep udp_ <<<"$perf")"

check "nagios logged no plugin errors" test -z "$(grep -iE 'out of bounds|error|warning' "$T/var/nagios.log")"
check "nothing left running from $T" test -z "$(pgrep -f -- "$T")"
exit $failed
