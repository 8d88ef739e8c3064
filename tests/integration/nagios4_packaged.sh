#!/usr/bin/env bash
# Integration test: the .deb's /etc/nagios-plugins/config/check_ephemeral_ports.cfg, loaded the way
# Debian's nagios4 loads it (cfg_dir=/etc/nagios-plugins/config in /etc/nagios4/nagios.cfg), defines
# the command check_ephemeral_ports, and a real nagios4 (Debian 12 nagios4-core) runs the plugin at
# the path that file names, /usr/lib/nagios/plugins/check_ephemeral_ports, through a service
# written as the README says (check_ephemeral_ports!70!85). The file is a conffile of the .deb.
# The file comes from dist/'s .deb when one was built (./build.sh package), else from the source
# icinga/nagios/nagios-plugins.cfg. The plugin is put at /usr/lib/nagios/plugins only inside a
# private mount namespace (a bind mount of the temp dir): the host's directory is not touched.
# Runs as root; the daemon runs from a temp dir and is stopped on exit.
set -u
. "$(dirname "$0")/lib/common.sh"

setup_temp_dir
require_plugin_binary
install_without_daemon nagios4 nagios4-core
check "install dpkg-dev, util-linux" need_packages dpkg-dev util-linux

version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$root/Directory.Build.props")
deb=$root/dist/check-ephemeral-ports_${version}-1_$(dpkg --print-architecture).deb
cfg=$T/nagios-plugins-config/check_ephemeral_ports.cfg
mkdir -p "$T/nagios-plugins-config"
if [ -f "$deb" ]; then
    dpkg-deb -x "$deb" "$T/deb"
    check "the .deb has /etc/nagios-plugins/config/check_ephemeral_ports.cfg" \
        cp "$T/deb/etc/nagios-plugins/config/check_ephemeral_ports.cfg" "$cfg"
    check "it is a conffile (kept when edited)" \
        sh -c "dpkg-deb --ctrl-tarfile '$deb' | tar -xOf - ./conffiles | grep -qx /etc/nagios-plugins/config/check_ephemeral_ports.cfg"
    rpm_file=$(ls "$root"/dist/check-ephemeral-ports-"$version"-1.*.rpm 2>/dev/null | head -n 1)
    if [ -n "$rpm_file" ] && command -v rpm >/dev/null; then
        check "the .rpm has no /etc/nagios-plugins (no RPM family's nagios reads it)" \
            sh -c "! rpm -qlp '$rpm_file' 2>/dev/null | grep -q '^/etc/nagios-plugins'"
    fi
else
    echo "# no $deb: the source file is checked"
    cp "$root/icinga/nagios/nagios-plugins.cfg" "$cfg"
fi
check "the file names the plugin at /usr/lib/nagios/plugins/check_ephemeral_ports" \
    grep -q '^ *command_line *\/usr\/lib\/nagios\/plugins\/check_ephemeral_ports ' "$cfg"

# The plugin's directory: what nagios4 sees at /usr/lib/nagios/plugins in its mount namespace.
install_plugin_into "$T/plugins"
mkdir -p "$T"/{etc,var/checkresults}
chown -R nagios:nagios "$T/var"
chmod -R a+rX "$T/etc" "$T/nagios-plugins-config"

{ nagios_base_objects; cat <<'EOF'
define service {
    host_name               localhost
    service_description     Ephemeral ports
    check_command           check_ephemeral_ports!70!85
    check_period            24x7
    max_check_attempts      1
    check_interval          1
    retry_interval          1
    contacts                nobody
    notification_period     24x7
    notifications_enabled   0
}
define service {
    host_name               localhost
    service_description     Ephemeral ports forced critical
    check_command           check_ephemeral_ports!70!@0:100!--protocol tcp
    check_period            24x7
    max_check_attempts      1
    check_interval          1
    retry_interval          1
    contacts                nobody
    notification_period     24x7
    notifications_enabled   0
}
EOF
} >"$T/etc/objects.cfg"
# As Debian's nagios.cfg: the command definitions from cfg_dir, no resource.cfg needed by them.
cat >"$T/etc/nagios.cfg" <<EOF
cfg_dir=$T/nagios-plugins-config
cfg_file=$T/etc/objects.cfg
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
EOF
check "nagios4 -v accepts it (the command comes from the nagios-plugins file only)" \
    quiet "$T/verify.log" nagios4 -v "$T/etc/nagios.cfg"
check "Checked 2 services" grep -q 'Checked 2 services' "$T/verify.log"

# /usr/lib/nagios/plugins must exist to be mounted over: monitoring-plugins-basic makes it.
check "install monitoring-plugins-basic (for /usr/lib/nagios/plugins)" need_packages monitoring-plugins-basic
start_daemon "$T/daemon.log" unshare -m --propagation private \
    sh -c 'mount --bind "$1" /usr/lib/nagios/plugins && exec nagios4 "$2"' sh "$T/plugins" "$T/etc/nagios.cfg"

field() {
    awk -v s="$1" -v k="$2" '
        /^servicestatus \{/ { in_svc = 1; desc = ""; split("", f); next }
        in_svc && /^\t\}/ { if (desc == s) { print f[k]; exit } in_svc = 0; next }
        in_svc { sub(/^\t/, ""); key = substr($0, 1, index($0, "=") - 1); f[key] = substr($0, length(key) + 2)
                 if (key == "service_description") desc = f[key] }' "$T/var/status.dat" 2>/dev/null
}
ready() { [ "$(field "Ephemeral ports" has_been_checked)" = 1 ] && [ "$(field "Ephemeral ports forced critical" has_been_checked)" = 1 ]; }
start=$SECONDS
until ready || [ $((SECONDS - start)) -ge 60 ] || ! kill -0 "${pids[0]}" 2>/dev/null; do sleep 0.5; done
check "both services checked within 60 s ($((SECONDS - start)) s)" ready
svc="Ephemeral ports"
runuser -u nagios -- "$T/plugins/check_ephemeral_ports" -w 70 -c 85 >/dev/null 2>&1
direct_rc=$?
check "$svc: state $(field "$svc" current_state) = the plugin's own exit code $direct_rc" test "$(field "$svc" current_state)" = "$direct_rc"
check "$svc: the plugin's output ($(field "$svc" plugin_output | cut -c1-60)...)" \
    grep -q '^EPHEMERAL PORTS [A-Z]* - ' <<<"$(field "$svc" plugin_output)"
check "$svc: its perfdata" grep -q "tcp_busiest_pct'*=" <<<"$(field "$svc" performance_data)"
svc="Ephemeral ports forced critical"
forced() { [ "$(field "$svc" current_state)" = 2 ] && ! grep -q udp_used <<<"$(field "$svc" performance_data)"; }
check "$svc: \$ARG2\$ and \$ARG3\$ reach the plugin (CRITICAL, TCP only)" forced
check "no 'out of bounds' or 'not found' from nagios" sh -c "! grep -qiE 'out of bounds|not found|No such file' '$T/var/nagios.log'"
stop_all

exit $failed
