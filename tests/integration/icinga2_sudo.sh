#!/usr/bin/env bash
# Integration test: a real Icinga 2 daemon running as user nagios runs check_ephemeral_ports as root
# through the shipped CheckCommand's switch vars.ephemeral_ports_sudo and the shipped sudoers rule
# (icinga/sudoers/check_ephemeral_ports, installed into /etc/sudoers.d for the test), with
# --all-namespaces, with --processes and with both, and gets the plugin's own answer; a command line
# the rule does not list is refused by sudo -n.
# Proof that the plugin ran as root: a network namespace made here (10 ports, 9 held: CRITICAL)
# that only root can enter is named in the output, and a process of root's holding many
# connections in this namespace is named by --processes.
# Runs as root; prints "ok - ..." / "not ok - ..." lines; exits 1 on any failure. The plugin is
# installed at the path the rule names, /usr/lib/nagios/plugins/check_ephemeral_ports (a file
# already there is put back at exit), the rule as /etc/sudoers.d/check_ephemeral_ports_icinga2_test
# (removed at exit).
# shellcheck disable=SC2317  # the functions below run through check, which shellcheck does not follow
set -u
. "$(dirname "$0")/lib/common.sh"
conf=$root/icinga/icinga2
rule=$root/icinga/sudoers/check_ephemeral_ports
plugin=/usr/lib/nagios/plugins/check_ephemeral_ports
sudoers_file=/etc/sudoers.d/check_ephemeral_ports_icinga2_test
ns=ept-icinga-sudo-$$

setup_temp_dir
require_plugin_binary
install_without_daemon icinga2 icinga2-bin icinga2-common sudo iproute2 python3 util-linux
check "user nagios exists (made by icinga2-common)" id nagios >/dev/null || exit 1

# Everything this script changes outside $T, undone on exit whatever happens.
plugin_backup='' plugin_installed='' rule_installed='' ns_made=''
undo() {
    stop_all
    if [ -n "$rule_installed" ]; then rm -f "$sudoers_file"; rule_installed=''; fi
    if [ -n "$plugin_installed" ]; then
        if [ -n "$plugin_backup" ]; then mv -f "$plugin_backup" "$plugin"; else rm -f "$plugin"; fi
        plugin_installed=''
    fi
    if [ -n "$ns_made" ]; then ip netns delete "$ns"; ns_made=''; fi
}
trap 'undo; cleanup' EXIT

# --- the rule ---------------------------------------------------------------------------------------
check "visudo -cf accepts the shipped rule" quiet "$T/visudo.log" visudo -cf "$rule"
check "the shipped rule has no wildcard" test -z "$(grep -v '^#' "$rule" | grep -F '*')"
if [ -e "$sudoers_file" ]; then not_ok "$sudoers_file exists already (left by another run?)"; exit 1; fi
install -m 0440 "$rule" "$sudoers_file" && rule_installed=1
check "sudo accepts /etc/sudoers with the rule included" quiet "$T/visudo-all.log" visudo -c

mkdir -p "$(dirname "$plugin")"
if [ -e "$plugin" ] || [ -L "$plugin" ]; then
    plugin_backup=$(dirname "$plugin")/.check_ephemeral_ports.icinga2_sudo.$$
    mv "$plugin" "$plugin_backup" || exit 1
fi
install -m 0755 "$bin" "$plugin" && plugin_installed=1

# --- what only root can see -------------------------------------------------------------------------
# A namespace with 10 ports and 9 connections to a listener in it: 90%, CRITICAL. The nagios user
# cannot enter it (setns needs CAP_SYS_ADMIN).
ip netns add "$ns" && ns_made=1
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" sysctl -q -w net.ipv4.ip_local_port_range="40000 40009"
holder() {  # PORT COUNT READYFILE: a listener on PORT and COUNT connections to it, held
    cat <<'EOF'
import os, socket, sys, time
port, count, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
server = socket.create_server(("127.0.0.1", port), backlog=count)
clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
accepted = [server.accept() for _ in range(count)]
open(ready, "w").close()
while True:
    time.sleep(60)
EOF
}
ns_port=15500  # nothing else listens in a namespace made a moment ago
start_daemon "$T/ns-holder.log" ip netns exec "$ns" /usr/bin/python3 - "$ns_port" 9 "$T/ns-holder.ready" < <(holder)
# In the test's own namespace, 300 connections from a root process: the busiest tuple here, whose holder
# only root can name (its /proc/PID/fd is closed to nagios).
host_port=$(free_port 15000 15999)
start_daemon "$T/host-holder.log" /usr/bin/python3 - "$host_port" 300 "$T/host-holder.ready" < <(holder)
host_holder=${pids[-1]}
for _ in $(seq 100); do [ -e "$T/ns-holder.ready" ] && [ -e "$T/host-holder.ready" ] && break; sleep 0.1; done
check "connections held: 9 in namespace $ns (port $ns_port), 300 here (port $host_port)" \
    test -e "$T/ns-holder.ready" -a -e "$T/host-holder.ready" || exit 1

# --- sudo as nagios, directly -------------------------------------------------------------------------
as_nagios() { runuser -u nagios -- "$@"; }
as_nagios sudo -n "$plugin" --all-namespaces >"$T/direct.out" 2>"$T/direct.err"
rc=$?
# CRITICAL for the full namespace; UNKNOWN is the plugin's too where it could not enter some other
# namespace of the machine (a container's, another test's), which it then names as NOT checked.
critical() {  # STATE OUTPUT
    [ "$1" = 2 ] || { [ "$1" = 3 ] && grep -q 'NOT checked' <<<"$2"; }
}
check "nagios: sudo -n $plugin --all-namespaces runs the plugin (exit $rc: CRITICAL for the full namespace)" \
    critical "$rc" "$(cat "$T/direct.out")"
# Other namespaces of the machine may be worse: ours is in the list, whatever its place.
listed() { grep -qxF "  netns $ns: CRITICAL 90%"; }
check "nagios: ... and the plugin checked namespace $ns as root" listed <"$T/direct.out"
refused() {  # ARGS...: sudo -n refuses this argument list for nagios, and nothing ran
    as_nagios sudo -n "$plugin" "$@" >"$T/refused.out" 2>"$T/refused.err"
    local rc=$?
    [ "$rc" = 1 ] && grep -q 'a password is required' "$T/refused.err" && [ ! -s "$T/refused.out" ]
}
for args in "--all-namespaces --output $T/written-as-root" "--all-namespaces --proc-root /tmp" "--netns /run/netns/$ns" \
    "--processes --pid 1" "--all-namespaces -v" "--processes --all-namespaces" "--all-namespaces -w 99 -c 99" \
    "-v" "--output $T/written-as-root" "--format json -v"; do
    # shellcheck disable=SC2086  # the argument list is meant to be split
    check "nagios: sudo -n refuses '${args:-no arguments}' (not in the rule)" refused $args
done
check "nothing was written through the refused --output" test ! -e "$T/written-as-root"

# --- Icinga 2 as nagios -------------------------------------------------------------------------------
mkdir -p "$T/etc" "$T"/{data,log,cache,spool,run}
cp "$conf/command-ephemeral_ports.conf" "$T/etc/"
chown -R nagios:nagios "$T"/{data,log,cache,spool,run}
dirs=(-DConfiguration.DataDir="$T/data" -DConfiguration.LogDir="$T/log" -DConfiguration.CacheDir="$T/cache"
    -DConfiguration.SpoolDir="$T/spool" -DConfiguration.InitRunDir="$T/run"
    -DConfiguration.RunAsUser=nagios -DConfiguration.RunAsGroup=nagios)
svc() {  # NAME VARS...
    local name=$1 v; shift
    printf 'object Service "%s" {\n    import "generic-service"\n    host_name = "localhost"\n    check_command = "ephemeral_ports"\n' "$name"
    for v in "$@"; do printf '    vars.ephemeral_ports_%s\n' "$v"; done
    printf '}\n'
}
{
    cat <<EOF
const PluginContribDir = "$(dirname "$plugin")"
include <itl>
include "command-ephemeral_ports.conf"
template Service "generic-service" {
    max_check_attempts = 1
    check_interval = 2s
    retry_interval = 2s
}
object Host "localhost" { check_command = "dummy" }
object CheckerComponent "checker" { }
object FileLogger "commands" {
    path = "$T/log/notice.log"  // notice level logs each plugin command line
    severity = "notice"
}
object PerfdataWriter "perfdata" {
    service_temp_path = "$T/spool/perfdata.tmp"
    service_perfdata_path = "$T/spool/perfdata.done"
    host_temp_path = "$T/spool/host.tmp"
    host_perfdata_path = "$T/spool/host.done"
    service_format_template = "SERVICE::\$service.name\$\tSTATE::\$service.state_id\$\tOUTPUT::\$service.output\$"
    rotation_interval = 1s
}
EOF
    svc sudo_plain 'sudo = true'
    svc sudo_all 'sudo = true' 'all_namespaces = true'
    svc sudo_processes 'sudo = true' 'processes = true'
    svc sudo_both 'sudo = true' 'all_namespaces = true' 'processes = true'
    svc plain_all 'all_namespaces = true'
    svc sudo_output 'sudo = true' 'all_namespaces = true' "output = \"$T/written-by-icinga\""
} >"$T/etc/icinga2.conf"
services="sudo_plain sudo_all sudo_processes sudo_both plain_all sudo_output"

check "icinga2 daemon -C accepts the config" quiet "$T/validate.log" icinga2 daemon -C -c "$T/etc/icinga2.conf" "${dirs[@]}"
start_daemon "$T/log/daemon.log" icinga2 daemon -c "$T/etc/icinga2.conf" "${dirs[@]}"

# First check result of service $1 as the PerfdataWriter wrote it (several lines).
record() { cat "$T"/spool/perfdata.done.* 2>/dev/null | awk -v s="SERVICE::$1"$'\t' 'index($0, "SERVICE::") == 1 { if (on) exit; on = index($0, s) == 1 } on'; }
ready() { local s; for s in $services; do [ -n "$(record "$s")" ] || return 1; done; }
start=$SECONDS
until ready || [ $((SECONDS - start)) -ge 90 ]; do sleep 0.5; done
check "first results of all services within 90 s ($((SECONDS - start)) s)" ready
check "the checks ran as nagios (the daemon's user)" \
    test "$(ps -o user= -p "$(pgrep -x icinga2 -P "${pids[-1]}" | head -1)" 2>/dev/null | tr -d ' ')" = nagios
stop_all  # the results are on disk; the rest needs neither the daemon nor the connections

ran() { grep -qF -- "Running command '/usr/bin/env' '/usr/bin/sudo' '-n' '$plugin'$(printf " '%s'" "$@"):" "$T/log/notice.log"; }
check "sudo_all: Icinga ran exactly: sudo -n $plugin --all-namespaces" ran --all-namespaces
check "sudo_processes: Icinga ran exactly: sudo -n $plugin --processes" ran --processes
check "sudo_both: Icinga ran exactly: sudo -n $plugin --all-namespaces --processes" ran --all-namespaces --processes

# Only sudo set: no argument at all, the line "" of the rule (as root the plugin reads source NAT).
ran_plain() { grep -qF -- "Running command '/usr/bin/env' '/usr/bin/sudo' '-n' '$plugin':" "$T/log/notice.log"; }
check "sudo_plain: Icinga ran exactly: sudo -n $plugin (no argument)" ran_plain
rec=$(record sudo_plain)
check "sudo_plain: the plugin's answer, not sudo's ($(head -c 100 <<<"$rec" | tr '\t\n' '  '))" grep -q $'\tOUTPUT::EPHEMERAL PORTS ' <<<"$rec"
check "sudo_plain: as root, nothing left unread for want of CAP_NET_ADMIN" test -z "$(grep -F 'needs CAP_NET_ADMIN' <<<"$rec")"

rec=$(record sudo_all)
check "sudo_all: the plugin's answer, not sudo's ($(head -c 100 <<<"$rec" | tr '\t\n' '  '))" grep -q $'\tOUTPUT::EPHEMERAL PORTS ' <<<"$rec"
state() { sed -n '1s/^SERVICE::[^\t]*\tSTATE::\([0-9]*\)\t.*/\1/p' <<<"$1"; }
check "sudo_all: CRITICAL (state $(state "$rec"))" critical "$(state "$rec")" "$rec"
check "sudo_all: namespace $ns, which only root can enter, checked: CRITICAL 90%" listed <<<"$rec"
check "sudo_all: no 'needs root' in the output" test -z "$(grep -i 'needs root' <<<"$rec")"

rec=$(record sudo_processes)
check "sudo_processes: the plugin's answer, not sudo's" grep -q $'\tOUTPUT::EPHEMERAL PORTS ' <<<"$rec"
holder_named() { grep -A1 -F "  127.0.0.1 -> 127.0.0.1:$host_port " <<<"$rec" | grep -qxF "    held by pid $host_holder (python3) 300"; }
check "sudo_processes: names root's process $host_holder holding 127.0.0.1:$host_port" holder_named

rec=$(record sudo_both)
check "sudo_both: CRITICAL (state $(state "$rec"))" critical "$(state "$rec")" "$rec"
check "sudo_both: namespace $ns checked: CRITICAL 90%" listed <<<"$rec"
# (With --all-namespaces the processes are in the detail lines that need -v, which the rule does
# not allow; sudo_processes shows that they are named.)

# Without sudo, the same check as nagios cannot enter the namespace: the difference is sudo's.
rec=$(record plain_all)
check "plain_all (no sudo): the plugin's answer" grep -q $'\tOUTPUT::EPHEMERAL PORTS ' <<<"$rec"
check "plain_all (no sudo): as nagios it could not check $ns" test -z "$(grep -F "  netns $ns: " <<<"$rec")"

# A var the rule does not allow: sudo -n refuses, Icinga shows sudo's WARNING, nothing written.
rec=$(record sudo_output)
check "sudo_output: Icinga ran sudo -n ... --all-namespaces --output FILE" ran --all-namespaces --output "$T/written-by-icinga"
check "sudo_output: sudo refused it: WARNING 'sudo: a password is required'" \
    grep -qx $'SERVICE::sudo_output\tSTATE::1\tOUTPUT::sudo: a password is required' <<<"$rec"
check "sudo_output: nothing written" test ! -e "$T/written-by-icinga"

undo
check "the rule and the namespace are removed again" test ! -e "$sudoers_file" -a ! -e "/run/netns/$ns"
if [ -n "$plugin_backup" ]; then check "the file that was at $plugin is back" test -e "$plugin"; else check "$plugin removed" test ! -e "$plugin"; fi
check "nothing left running from $T" test -z "$(pgrep -f -- "$T")"
exit $failed
