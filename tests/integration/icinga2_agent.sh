#!/usr/bin/env bash
# Integration test: a real Icinga 2 master and a real Icinga 2 agent (two `icinga2 daemon`
# processes, certificates made here), set up as the README says: the package's CheckCommand file
# installed where `include <plugins-contrib>` finds it on both nodes (no copy in a global zone),
# the shipped apply rules in the master's zones.d. The master schedules the check on the agent
# through command_endpoint and receives the agent's result; the master-local rule applies to the
# master's own host only, not to a Linux host without an agent.
# The agent runs in a network namespace made here (10 ephemeral ports, 8 held: WARNING 80%), so
# its figures cannot be mistaken for the master's; a socat relay on 127.0.0.1 carries the master's
# connection to the agent's ApiListener on the namespace's loopback.
# Runs as root; prints "ok - ..." / "not ok - ..." lines; exits 1 on any failure. The package's
# path /usr/share/icinga2/include/plugins-contrib.d/ephemeral_ports.conf is used for the test (a
# file already there is put back at exit).
# shellcheck disable=SC2317  # the functions below run through check, which shellcheck does not follow
set -u
. "$(dirname "$0")/lib/common.sh"
conf=$root/icinga/icinga2
contrib=/usr/share/icinga2/include/plugins-contrib.d/ephemeral_ports.conf
ns=ept-icinga-agent-$$

setup_temp_dir
require_plugin_binary
install_without_daemon icinga2 icinga2-bin icinga2-common iproute2 python3 openssl curl socat

contrib_backup='' contrib_installed='' ns_made=''
undo() {
    stop_all
    if [ -n "$contrib_installed" ]; then
        if [ -n "$contrib_backup" ]; then mv -f "$contrib_backup" "$contrib"; else rm -f "$contrib"; fi
        contrib_installed=''
    fi
    if [ -n "$ns_made" ]; then ip netns delete "$ns"; ns_made=''; fi
}
trap 'undo; cleanup' EXIT

# --- the package's files on both nodes ---------------------------------------------------------------
# Both daemons run on this machine, so one file serves both; the binary is a private copy, found
# through each node's PluginContribDir.
if [ -e "$contrib" ]; then
    contrib_backup=$T/ephemeral_ports.conf.backup
    cp -a "$contrib" "$contrib_backup" || exit 1
fi
install -D -m 0644 "$conf/command-ephemeral_ports.conf" "$contrib" && contrib_installed=1
install_plugin_into "$T/plugins"

# --- certificates: one CA, a certificate per node with its name as CN ---------------------------------
pki() {
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Test CA $$" \
        -keyout "$T/ca.key" -out "$T/ca.crt" &&
        for node in master agent; do
            mkdir -p "$T/$node/data/certs" &&
                openssl req -newkey rsa:2048 -nodes -subj "/CN=$node" \
                    -keyout "$T/$node/data/certs/$node.key" -out "$T/$node.csr" &&
                openssl x509 -req -in "$T/$node.csr" -CA "$T/ca.crt" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
                    -out "$T/$node/data/certs/$node.crt" &&
                cp "$T/ca.crt" "$T/$node/data/certs/ca.crt" || return 1
        done
}
check "certificates for master and agent, signed by a CA made here" quiet "$T/pki.log" pki || exit 1

master_port=$(free_port 15000 15999)
agent_port=15400  # on the namespace's own loopback, where nothing else listens
relay_port=$(free_port 15000 15999)
while [ "$relay_port" = "$master_port" ]; do relay_port=$(free_port 15000 15999); done

# dirs NODE: the node's private state, log, run dirs and its zones.d.
dirs() {
    mkdir -p "$T/$1"/{data,log,cache,spool,run,zones.d}
    printf '%s\n' -DConfiguration.DataDir="$T/$1/data" -DConfiguration.LogDir="$T/$1/log" \
        -DConfiguration.CacheDir="$T/$1/cache" -DConfiguration.SpoolDir="$T/$1/spool" \
        -DConfiguration.InitRunDir="$T/$1/run" -DConfiguration.ZonesDir="$T/$1/zones.d" \
        -DConfiguration.RunAsUser=root -DConfiguration.RunAsGroup=root
}
mapfile -t master_dirs < <(dirs master)
mapfile -t agent_dirs < <(dirs agent)

# What both nodes' icinga2.conf have, as Debian's does: the ITL and plugins-contrib.
common() {
    cat <<EOF
const PluginDir = "/usr/lib/nagios/plugins"  // <plugins> holds templates <plugins-contrib> imports
const PluginContribDir = "$T/plugins"
const NodeName = "$1"
const ZoneName = "$1"
include <itl>
include <plugins>
include <plugins-contrib>
object CheckerComponent "checker" { }
object FileLogger "commands" {
    path = "$T/$1/log/notice.log"  // notice level logs each plugin command line
    severity = "notice"
}
EOF
}

# The master: zones.conf, an ApiListener for the REST API, and in zones.d/master the hosts and the
# shipped apply rules. "nrpe-host" is a Linux host without an agent (checked by NRPE or SSH).
{
    common master
    cat <<EOF
object Endpoint "master" { }
object Zone "master" { endpoints = [ "master" ] }
object Endpoint "agent" {
    host = "127.0.0.1"
    port = "$relay_port"  // the relay into the agent's namespace
}
object Zone "agent" { endpoints = [ "agent" ]; parent = "master" }
object ApiListener "api" {
    bind_host = "127.0.0.1"
    bind_port = $master_port
}
object ApiUser "test" {
    password = "test-$$"
    permissions = [ "*" ]
}
EOF
} >"$T/master/icinga2.conf"
mkdir -p "$T/master/zones.d/master"
cp "$conf/services-ephemeral_ports.conf" "$conf/agent-ephemeral_ports.conf" "$T/master/zones.d/master/"
cat >"$T/master/zones.d/master/hosts.conf" <<'EOF'
template Service "generic-service" {
    max_check_attempts = 1
    check_interval = 2s
    retry_interval = 2s
}
object Host NodeName { check_command = "dummy"; vars.os = "Linux" }
object Host "agent" { check_command = "dummy"; vars.os = "Linux"; vars.agent_endpoint = "agent" }
object Host "nrpe-host" { check_command = "dummy"; vars.os = "Linux" }
EOF

# The agent: accepts commands from its parent, no config; the master connects to it.
{
    common agent
    cat <<EOF
object Endpoint "master" { }
object Zone "master" { endpoints = [ "master" ] }
object Endpoint "agent" { }
object Zone "agent" { endpoints = [ "agent" ]; parent = "master" }
object ApiListener "api" {
    bind_host = "127.0.0.1"
    bind_port = $agent_port
    accept_commands = true
    accept_config = false
}
EOF
} >"$T/agent/icinga2.conf"

# --- validation ---------------------------------------------------------------------------------------
check "icinga2 daemon -C accepts the master's config with the package's CheckCommand" \
    quiet "$T/validate-master.log" icinga2 daemon -C -c "$T/master/icinga2.conf" "${master_dirs[@]}" || exit 1
check "icinga2 daemon -C accepts the agent's config with the package's CheckCommand" \
    quiet "$T/validate-agent.log" icinga2 daemon -C -c "$T/agent/icinga2.conf" "${agent_dirs[@]}" || exit 1
services=$(icinga2 object list "${master_dirs[@]}" --type Service --name '*!ephemeral_ports' 2>&1 | sed -n "s/^Object '\(.*\)' of type 'Service':$/\1/p" | sort | tr '\n' ' ')
check "the apply rules make master!ephemeral_ports and agent!ephemeral_ports, none for nrpe-host ($services)" \
    test "$services" = "agent!ephemeral_ports master!ephemeral_ports "

# Why the README says not to copy the CheckCommand into a global zone as well: with the package
# installed, the node defines it twice.
mkdir -p "$T/global/zones.d/global-templates"
cp "$conf/command-ephemeral_ports.conf" "$T/global/zones.d/global-templates/"
{ cat "$T/master/icinga2.conf"; echo 'object Zone "global-templates" { global = true }'; } >"$T/global/icinga2.conf"
mapfile -t global_dirs < <(dirs global)
icinga2 daemon -C -c "$T/global/icinga2.conf" "${global_dirs[@]}" >"$T/validate-global.log" 2>&1
check "(a global-zone copy beside the package's: icinga2 daemon -C refuses it as re-defined)" \
    grep -q "Object 'ephemeral_ports' of type 'CheckCommand' re-defined" "$T/validate-global.log"

# --- the agent's namespace ----------------------------------------------------------------------------
ip netns add "$ns" && ns_made=1
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" sysctl -q -w net.ipv4.ip_local_port_range="41000 41009"
start_daemon "$T/holder.log" ip netns exec "$ns" /usr/bin/python3 - "$T/holder.ready" <<'EOF'
import socket, sys, time
server = socket.create_server(("127.0.0.1", 15401))
clients = [socket.create_connection(("127.0.0.1", 15401)) for _ in range(8)]
accepted = [server.accept() for _ in range(8)]
open(sys.argv[1], "w").close()
while True:
    time.sleep(60)
EOF
for _ in $(seq 100); do [ -e "$T/holder.ready" ] && break; sleep 0.1; done
check "8 connections held in namespace $ns (10 ports)" test -e "$T/holder.ready" || exit 1

# --- the daemons --------------------------------------------------------------------------------------
start_daemon "$T/agent/daemon.log" ip netns exec "$ns" icinga2 daemon -c "$T/agent/icinga2.conf" "${agent_dirs[@]}"
start_daemon "$T/relay.log" socat TCP-LISTEN:"$relay_port",bind=127.0.0.1,reuseaddr,fork \
    EXEC:"ip netns exec $ns socat STDIO TCP\:127.0.0.1\:$agent_port"
start_daemon "$T/master/daemon.log" icinga2 daemon -c "$T/master/icinga2.conf" "${master_dirs[@]}"

# api PATH: a GET on the master's REST API.
api() { curl -sS --max-time 10 --cacert "$T/ca.crt" --resolve "master:$master_port:127.0.0.1" -u "test:test-$$" -H 'Accept: application/json' "https://master:$master_port/v1/$1"; }
# result HOST: "exit_status<TAB>check_source<TAB>output" of HOST!ephemeral_ports, once it has one.
cat >"$T/result.py" <<'EOF'
import json, sys
try:
    r = json.load(sys.stdin)["results"][0]["attrs"]["last_check_result"]
    print("%d\t%s\t%s" % (r["exit_status"], r["check_source"], r["output"]))
except (ValueError, LookupError, TypeError):
    pass
EOF
result() { api "objects/services/$1!ephemeral_ports?attrs=last_check_result" 2>/dev/null | python3 "$T/result.py"; }
start=$SECONDS
until [ -n "$(result agent)" ] && [ -n "$(result master)" ] || [ $((SECONDS - start)) -ge 120 ]; do sleep 1; done
check "the master has results for agent!ephemeral_ports and master!ephemeral_ports within 120 s ($((SECONDS - start)) s)" \
    test -n "$(result agent)" -a -n "$(result master)"

agent_result=$(result agent)
IFS=$'\t' read -r state source output <<<"$agent_result"
echo "# agent!ephemeral_ports: state $state, check_source $source: ${output%%$'\n'*}"
check "agent!ephemeral_ports: check_source is the agent's endpoint" test "$source" = agent
check "agent!ephemeral_ports: the plugin's answer from the agent's namespace (8 of 10 ports, WARNING)" \
    grep -q '^EPHEMERAL PORTS WARNING - busiest TCP tuple 127.0.0.1 -> 127.0.0.1:15401 uses 8 of 10 ports (80%)' <<<"$output"
check "agent!ephemeral_ports: state 1 (WARNING)" test "$state" = 1
check "the agent ran the plugin (its log)" \
    grep -qF "Running command '/usr/bin/env' '$T/plugins/check_ephemeral_ports':" "$T/agent/log/notice.log"

IFS=$'\t' read -r state source output <<<"$(result master)"
echo "# master!ephemeral_ports: state $state, check_source $source: ${output%%$'\n'*}"
check "master!ephemeral_ports: check_source is the master" test "$source" = master
not_agents() { grep -q '^EPHEMERAL PORTS ' <<<"$output" && ! grep -q ' of 10 ports ' <<<"$output"; }
check "master!ephemeral_ports: the plugin's answer from the master's namespace, not the agent's" not_agents

nrpe=$(api 'objects/services?filter=host.name==%22nrpe-host%22' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["results"]))' 2>&1)
check "the master-local rule made no service for nrpe-host (REST API: $nrpe services)" test "$nrpe" = 0

stop_all
undo
if [ -n "$contrib_backup" ]; then check "the file that was at $contrib is back" test -e "$contrib"
else check "$contrib removed" test ! -e "$contrib"; fi
check "namespace $ns removed" test ! -e "/run/netns/$ns"
check "nothing left running from $T" test -z "$(pgrep -f -- "$T")"
exit $failed
