#!/usr/bin/env bash
# The .deb from `./build.sh package`: its metadata, its contents, a real dpkg -i, the installed
# plugin run from /usr/lib/nagios/plugins, the Icinga 2 CheckCommand found through
# `include <plugins-contrib>`, and a purge that leaves nothing behind.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
deb=$(ls "$root"/dist/check-ephemeral-ports_*.deb 2>/dev/null | tail -n 1)

[ -n "$deb" ] || { not_ok "no package in dist/: run ./build.sh package"; exit 1; }
if dpkg-query -W check-ephemeral-ports >/dev/null 2>&1; then
    not_ok "check-ephemeral-ports is already installed here; refusing to touch it"; exit 1
fi
setup_temp_dir
# On top of the common cleanup: the package never stays installed, whatever happened.
trap 'dpkg --purge check-ephemeral-ports >/dev/null 2>&1; cleanup' EXIT

info=$(dpkg-deb -I "$deb")
field() { dpkg-deb -f "$deb" "$1"; }
check "package name" test "$(field Package)" = check-ephemeral-ports
check "version matches Directory.Build.props" test "$(field Version)" = "$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$root/Directory.Build.props")-1"
check "architecture is the machine's" test "$(field Architecture)" = "$(dpkg --print-architecture)"
check "depends on glibc only" test "$(field Depends)" = "libc6 (>= 2.34)"
check "has a description" grep -q 'Description: monitoring plugin for ephemeral port exhaustion' <<<"$info"
check "declares its conffiles" grep -q 'conffiles' <<<"$info"

contents=$(dpkg-deb -c "$deb")
for path in ./usr/lib/nagios/plugins/check_ephemeral_ports \
            ./usr/share/icinga2/include/plugins-contrib.d/ephemeral_ports.conf \
            ./etc/nagios/nrpe.d/check_ephemeral_ports.cfg \
            ./etc/zabbix/zabbix_agentd.conf.d/ephemeral_ports.conf \
            ./etc/zabbix/zabbix_agent2.d/ephemeral_ports.conf \
            ./usr/share/doc/check-ephemeral-ports/copyright; do
    check "contains $path" grep -q " $path\$" <<<"$contents"
done
check "plugin is executable, owned by root" grep -q '^-rwxr-xr-x root/root .* ./usr/lib/nagios/plugins/check_ephemeral_ports$' <<<"$contents"

if dpkg -i "$deb" >"$T/dpkg.log" 2>&1; then ok "dpkg -i"; else not_ok "dpkg -i: $(cat "$T/dpkg.log")"; fi
check_silent "dpkg knows it as installed" sh -c "dpkg-query -W -f='\${Status}' check-ephemeral-ports | grep -q 'install ok installed'"
out=$(/usr/lib/nagios/plugins/check_ephemeral_ports 2>"$T/stderr"); code=$?
check "installed plugin prints a status line" grep -q '^EPHEMERAL PORTS \(OK\|WARNING\|CRITICAL\) - .* | .tcp_busiest_pct.=' <<<"$out"
check "installed plugin exits 0-2 on this host" test "$code" -le 2
check "installed plugin prints nothing on stderr" test ! -s "$T/stderr"
check_silent "installed plugin runs as the nagios-like user nobody" setpriv --reuid=nobody --init-groups /usr/lib/nagios/plugins/check_ephemeral_ports

# The Zabbix agent finds the UserParameter through Debian's own include directory.
if command -v zabbix_agentd >/dev/null; then
    check_silent "zabbix_agentd -t ephemeral_ports.json runs the installed plugin" \
        sh -c "zabbix_agentd -c /etc/zabbix/zabbix_agentd.conf -t ephemeral_ports.json | grep -q '\"state\":\"'"
fi

# Icinga 2 finds the CheckCommand through the ITL include the package drops it into.
if command -v icinga2 >/dev/null; then
    icinga2_private_dirs "$T"
    # Debian's /etc/icinga2/constants.conf would set these; this tree stands alone.
    cat >"$T/icinga2.conf" <<'CONF'
const PluginDir = "/usr/lib/nagios/plugins"
const PluginContribDir = "/usr/lib/nagios/plugins"
const ManubulonPluginDir = "/usr/lib/nagios/plugins"
include <itl>
include <plugins>
include <plugins-contrib>
object Host "localhost" { check_command = "dummy"; address = "127.0.0.1" }
object Service "ephemeral-ports" { host_name = "localhost"; check_command = "ephemeral_ports" }
CONF
    if icinga2 daemon -C -c "$T/icinga2.conf" "${icinga2_dirs[@]}" >"$T/icinga.log" 2>&1; then
        ok "icinga2 daemon -C finds CheckCommand ephemeral_ports through include <plugins-contrib>"
    else
        not_ok "icinga2 daemon -C with the installed CheckCommand: $(grep -i critical "$T/icinga.log" | head -3)"
    fi
else
    not_ok "icinga2 is not installed (tests/integration/icinga2.sh installs it)"
fi

dpkg --purge check-ephemeral-ports >"$T/purge.log" 2>&1 && ok "dpkg --purge" || not_ok "dpkg --purge: $(cat "$T/purge.log")"
check "purge removes the plugin" test ! -e /usr/lib/nagios/plugins/check_ephemeral_ports
check "purge removes the conffiles" test ! -e /etc/nagios/nrpe.d/check_ephemeral_ports.cfg -a ! -e /etc/zabbix/zabbix_agentd.conf.d/ephemeral_ports.conf
check "purge removes the CheckCommand" test ! -e /usr/share/icinga2/include/plugins-contrib.d/ephemeral_ports.conf
[ "$failed" = 0 ]
