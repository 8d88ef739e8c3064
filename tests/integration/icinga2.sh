#!/usr/bin/env bash
# Integration test: Icinga 2 (Debian 12 packages) validates icinga/icinga2/*.conf and runs
# check_ephemeral_ports through the CheckCommand "ephemeral_ports" and its apply rule.
# Runs as root; prints "ok - ..." / "not ok - ..." lines; exits 1 on any failure.
# The daemon runs from a temp dir (kept on failure or with KEEP_TMP=1) and is stopped by PID on exit.
set -u
. "$(dirname "$0")/lib/common.sh"
conf=$root/icinga/icinga2

setup_temp_dir
require_plugin_binary
install_without_daemon icinga2 icinga2-bin icinga2-common python3

mkdir -p "$T/etc"
install_plugin_into "$T/plugins"
icinga2_private_dirs "$T"

# A Graphite "server" on 127.0.0.1: the GraphiteWriter sends one metric per parsed perfdata
# value, which shows how the daemon itself parsed the plugin's perfdata. (Icinga 2.13 often
# connects only on its 10 s reconnect timer: results take 2 to 12 s.)
start_daemon "$T/graphite.log" /usr/bin/python3 - "$T/graphite.port" "$T/graphite.txt" <<'EOF'
import os, socket, sys
server = socket.create_server(("127.0.0.1", 0))
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(server.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        conn, _ = server.accept()
        while data := conn.recv(65536):
            out.write(data)
EOF
for _ in $(seq 100); do [ -s "$T/graphite.port" ] && break; sleep 0.1; done
graphite_port=$(cat "$T/graphite.port" 2>/dev/null)

# Our three files as they ship, plus a host and two services that set custom vars.
# generic-service normally comes from conf.d/templates.conf; here it checks every second.
# NodeName "localhost": the local rule applies to the node's own Host object only.
cat >"$T/etc/icinga2.conf" <<EOF
const PluginContribDir = "$T/plugins"
const NodeName = "localhost"
include <itl>
include "$conf/command-ephemeral_ports.conf"
include "$conf/services-ephemeral_ports.conf"
include "$conf/agent-ephemeral_ports.conf"

template Service "generic-service" {
    max_check_attempts = 1
    check_interval = 1s
    retry_interval = 1s
}
object Host "localhost" {
    check_command = "dummy"
    vars.os = "Linux"
}
object Service "forced_critical" {
    import "generic-service"
    host_name = "localhost"
    check_command = "ephemeral_ports"
    vars.ephemeral_ports_critical = "@0:100"  // inside 0..100: always CRITICAL
    vars.ephemeral_ports_verbose = "-v"
}
object Service "tcp_only" {
    import "generic-service"
    host_name = "localhost"
    check_command = "ephemeral_ports"
    vars.ephemeral_ports_protocol = "tcp"
    vars.ephemeral_ports_verbose = "-vvv"
}

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
    // Output last: the plugin's long output continues on the following lines.
    service_format_template = "SERVICE::\$service.name\$\tSTATE::\$service.state_id\$\tPERFDATA::\$service.perfdata\$\tOUTPUT::\$service.output\$"
    rotation_interval = 1s
}
object GraphiteWriter "graphite" {
    host = "127.0.0.1"
    port = ${graphite_port:-2003}
}
EOF

# The agent variant needs zones; validate it in a second tree with an agent host.
cat >"$T/etc/agent.conf" <<EOF
const PluginContribDir = "$T/plugins"
const NodeName = "master1"
include <itl>
include "$conf/command-ephemeral_ports.conf"
include "$conf/services-ephemeral_ports.conf"
include "$conf/agent-ephemeral_ports.conf"
template Service "generic-service" { }
object Endpoint "master1" { }
object Zone "master" { endpoints = [ "master1" ] }
object Endpoint "agent1" { }
object Zone "agent1" { endpoints = [ "agent1" ]; parent = "master" }
object Host "master1" { check_command = "dummy"; vars.os = "Linux"; zone = "master" }
object Host "agent1" { check_command = "dummy"; vars.os = "Linux"; vars.agent_endpoint = "agent1"; zone = "master" }
object Host "nrpe1" { check_command = "dummy"; vars.os = "Linux"; zone = "master" }
EOF

check "icinga2 daemon -C accepts the agent variant" quiet "$T/validate-agent.log" icinga2 daemon -C -c "$T/etc/agent.conf" "${icinga2_dirs[@]}"
service() { icinga2 object list "${icinga2_dirs[@]}" --type Service --name "$1" 2>&1; }
check "agent rule: agent1!ephemeral_ports has command_endpoint agent1" \
    grep -q 'command_endpoint = "agent1"' <<<"$(service 'agent1!ephemeral_ports' | grep -A99 agent-ephemeral_ports.conf)"
check "local rule: master1!ephemeral_ports runs locally, agent1 only from the agent rule, nrpe1 (not the node) none" \
    test "$(service '*!ephemeral_ports' | grep -c "declared in '$conf/services-ephemeral_ports.conf'")" = 1
check "local rule: the one local service is master1's (host.name == NodeName)" \
    grep -q "^Object 'master1!ephemeral_ports' of type 'Service'" <<<"$(service 'master1!ephemeral_ports')"
check "no service for nrpe1 (a Linux host checked by NRPE or SSH would show the master's figures)" \
    test -z "$(service 'nrpe1!*' | grep "^Object '")"
check "the CheckCommand has no lambda (Icinga Director cannot import one)" \
    test -z "$(grep -n '{{' "$conf/command-ephemeral_ports.conf")"

check "icinga2 daemon -C accepts the config" quiet "$T/validate.log" icinga2 daemon -C -c "$T/etc/icinga2.conf" "${icinga2_dirs[@]}"

start_daemon "$T/log/daemon.log" icinga2 daemon -c "$T/etc/icinga2.conf" "${icinga2_dirs[@]}"

# First check result of service $1 as the PerfdataWriter wrote it (several lines).
record() { cat "$T"/spool/perfdata.done.* 2>/dev/null | awk -v s="SERVICE::$1"$'\t' 'index($0, "SERVICE::") == 1 { if (on) exit; on = index($0, s) == 1 } on'; }
metric() { grep -E "^icinga2\.localhost\.services\.$1\.ephemeral_ports\.perfdata\.$2\.value -?[0-9]+(\.[0-9]+)? [0-9]+$" "$T/graphite.txt" 2>/dev/null | head -1; }
ready() { local s; for s in ephemeral_ports forced_critical tcp_only; do [ -n "$(record $s)" ] && [ -n "$(metric $s capacity)" ] || return 1; done; }
start=$SECONDS
until ready || [ $((SECONDS - start)) -ge 60 ]; do sleep 0.5; done
check "first results of all three services within 60 s ($((SECONDS - start)) s)" ready
stop_all  # results are on disk; the rest needs no daemon

# The CheckCommand sets no defaults: with no var set, Icinga passes nothing after the plugin
# (the command is /usr/bin/env so that sudo can come first; see icinga2_sudo.sh).
"$T/plugins/check_ephemeral_ports" >/dev/null 2>&1
direct_rc=$?
logged="Running command '/usr/bin/env' '$T/plugins/check_ephemeral_ports':"
check "icinga ran the plugin with no arguments for the service that sets no var" grep -qF -- "$logged" "$T/log/notice.log"

rec=$(record ephemeral_ports)
first=$(head -1 <<<"$rec")
state=$(sed -n 's/.*\tSTATE::\([0-9]*\)\t.*/\1/p' <<<"$first")
check "ephemeral_ports: state $state = the plugin's own exit code $direct_rc" test "$state" = "$direct_rc"
check "ephemeral_ports: state 0 on this idle machine" test "$state" = 0
check "ephemeral_ports: output starts with 'EPHEMERAL PORTS OK - '" grep -q $'\tOUTPUT::EPHEMERAL PORTS OK - ' <<<"$first"
check "ephemeral_ports: no perfdata left in the output" test "$(grep -c '|' <<<"$rec")" = 0
for label in $perfdata_labels; do
    check "ephemeral_ports: icinga parsed $label as a number ($(metric ephemeral_ports "$label" | cut -d' ' -f2))" \
        test -n "$(metric ephemeral_ports "$label")"
done

rec=$(record forced_critical)
check "forced_critical: ephemeral_ports_critical=@0:100 records state 2" grep -q $'^SERVICE::forced_critical\tSTATE::2\t' <<<"$rec"
check "forced_critical: output starts with 'EPHEMERAL PORTS CRITICAL - '" grep -q $'\tOUTPUT::EPHEMERAL PORTS CRITICAL - ' <<<"$rec"
check "forced_critical: critical=@0:100 and verbose=\"-v\" passed as --critical @0:100 -v and nothing else" \
    grep -qF -- "Running command '/usr/bin/env' '$T/plugins/check_ephemeral_ports' '--critical' '@0:100' '-v':" "$T/log/notice.log"

rec=$(record tcp_only)
check "tcp_only: ephemeral_ports_protocol=tcp and verbose=\"-vvv\" passed as --protocol tcp -vvv" \
    grep -qF -- "Running command '/usr/bin/env' '$T/plugins/check_ephemeral_ports' '--protocol' 'tcp' '-vvv':" "$T/log/notice.log"
check "tcp_only: state 0" grep -q $'^SERVICE::tcp_only\tSTATE::0\t' <<<"$rec"
check "tcp_only: no udp perfdata" test -z "$(grep -oE '\budp_[a-z_]+=' <<<"$rec")$(metric tcp_only udp_used)$(metric tcp_only udp_used_pct)"
check "tcp_only: tcp_busiest_pct parsed" test -n "$(metric tcp_only tcp_busiest_pct)"

check "icinga logged no invalid perfdata" test -z "$(grep -i 'invalid perfdata' "$T/log/daemon.log")"
check "nothing left running from $T" test -z "$(pgrep -f -- "$T")"
exit $failed
