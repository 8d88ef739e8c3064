#!/usr/bin/env bash
# Integration test: the packages deliver the Zabbix UserParameter to every agent layout, exactly once.
#   - Debian's packages: zabbix-agent includes /etc/zabbix/zabbix_agentd.conf.d/*.conf, zabbix-agent2
#     /etc/zabbix/zabbix_agent2.d/*.conf (and ./zabbix_agent2.d/plugins.d/*.conf);
#   - Zabbix's own packages (repo.zabbix.com, the usual way to a 7.0 agent, .deb and .rpm):
#     zabbix-agent includes /etc/zabbix/zabbix_agentd.d/*.conf, zabbix-agent2 the same two as Debian's.
# The real default configurations come from Debian 12's zabbix-agent and zabbix-agent2 (apt-get
# download, as their postinst and dpkg install them); Zabbix's layout is the same files with the
# agentd Include line Zabbix's packages have. For each package (dist/'s .deb and .rpm of this
# machine, unpacked with dpkg-deb -x and rpm2cpio) and each layout, an overlay in a private mount
# namespace puts the package's files over the layout's /etc/zabbix, and the plugin's directory over
# the real one, exactly where installing would put them; then Debian 12's real zabbix_agentd -t and
# zabbix_agent2 -t must run ephemeral_ports.json and return the plugin's JSON document. An agent that
# sees the key twice refuses to start (checked too), so a run that answers proves "exactly once".
# Needs dist/ from `./build.sh package` (or src/packaging/make-packages.sh). Runs as root; prints
# "ok - ..." / "not ok - ..." lines; exits 1 on any failure. Nothing is installed but the agents'
# Debian packages (no daemon started); every mount is in this script's own mount namespace.
set -u
if [ -z "${CEP_ZABBIX_PACKAGES_UNSHARED:-}" ]; then
    CEP_ZABBIX_PACKAGES_UNSHARED=1 exec unshare --mount --propagation private -- bash "$0" "$@"
fi
. "$(dirname "$0")/lib/common.sh"
version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$root/Directory.Build.props")
arch=$(dpkg --print-architecture)
case $arch in amd64) rpmarch=x86_64 ;; *) rpmarch=aarch64 ;; esac
deb=$root/dist/check-ephemeral-ports_${version}-1_${arch}.deb
rpmfile=$root/dist/check-ephemeral-ports-${version}-1.${rpmarch}.rpm
for f in "$deb" "$rpmfile"; do
    [ -f "$f" ] || { not_ok "no $f: run ./build.sh package"; exit 1; }
done
setup_temp_dir
mounts=()
teardown() {
    local n
    for ((n = ${#mounts[@]} - 1; n >= 0; n--)); do umount -l "${mounts[n]}" 2>/dev/null; done
    cleanup
}
trap teardown EXIT

install_without_daemon zabbix_agentd zabbix-agent zabbix-agent2 rpm cpio
check "no zabbix_agent2 daemon started either" test -z "$(pgrep -x zabbix_agent2)"

# --- the agents' own files, as their packages install them ----------------------------------------
( cd "$T" && apt-get download zabbix-agent zabbix-agent2 >"$T/download.log" 2>&1 )
for p in zabbix-agent zabbix-agent2; do
    f=$(find "$T" -maxdepth 1 -name "${p}_*.deb" | head -n 1)
    check "apt-get download $p ($(basename "${f:-none}"))" test -n "$f" || { tail -3 "$T/download.log"; exit 1; }
    dpkg-deb -x "$f" "$T/$p"
done
installed=$(dpkg-query -W -f '${Version}' zabbix-agent) got=$(dpkg-deb -f "$(find "$T" -maxdepth 1 -name 'zabbix-agent_*.deb')" Version)
check "the downloaded configurations are those of the installed agents ($installed)" test "$installed" = "$got"

# Debian's layout: zabbix-agent's postinst copies /usr/share/zabbix-agent/zabbix_agentd.conf to
# /etc/zabbix; the directories and zabbix-agent2's files are in the packages.
deb_layout=$T/layout-debian/etc/zabbix
mkdir -p "$deb_layout"
cp -a "$T/zabbix-agent/etc/zabbix/." "$T/zabbix-agent2/etc/zabbix/." "$deb_layout/"
cp "$T/zabbix-agent/usr/share/zabbix-agent/zabbix_agentd.conf" "$deb_layout/"
includes() { sed -n 's/^Include=//p' "$1" | tr '\n' ' '; }
check "Debian's zabbix_agentd.conf includes /etc/zabbix/zabbix_agentd.conf.d/*.conf only" \
    test "$(includes "$deb_layout/zabbix_agentd.conf")" = '/etc/zabbix/zabbix_agentd.conf.d/*.conf '
# Zabbix's own zabbix_agent2.conf has these two Include lines too.
check "Debian's zabbix_agent2.conf includes /etc/zabbix/zabbix_agent2.d/*.conf and ./zabbix_agent2.d/plugins.d/*.conf, as Zabbix's packages' does" \
    test "$(includes "$deb_layout/zabbix_agent2.conf")" = '/etc/zabbix/zabbix_agent2.d/*.conf ./zabbix_agent2.d/plugins.d/*.conf '
# Zabbix's layout: its zabbix-agent ships /etc/zabbix/zabbix_agentd.d/ and includes it instead.
zbx_layout=$T/layout-zabbix/etc/zabbix
mkdir -p "$zbx_layout/zabbix_agentd.d"
cp -a "$T/zabbix-agent2/etc/zabbix/." "$zbx_layout/"
sed 's#^Include=/etc/zabbix/zabbix_agentd\.conf\.d/\*\.conf$#Include=/etc/zabbix/zabbix_agentd.d/*.conf#' \
    "$deb_layout/zabbix_agentd.conf" >"$zbx_layout/zabbix_agentd.conf"
check "Zabbix's layout: zabbix_agentd.conf includes /etc/zabbix/zabbix_agentd.d/*.conf only" \
    test "$(includes "$zbx_layout/zabbix_agentd.conf")" = '/etc/zabbix/zabbix_agentd.d/*.conf '

# --- our packages, unpacked -------------------------------------------------------------------------
mkdir -p "$T/pkg-deb" "$T/pkg-rpm"
dpkg-deb -x "$deb" "$T/pkg-deb"
(cd "$T/pkg-rpm" && rpm2cpio "$rpmfile" | cpio -idm --quiet)
rpm_plugindir=$(rpm -qpl "$rpmfile" 2>/dev/null | sed -n 's:/check_ephemeral_ports$::p' | grep '/nagios/plugins$')
for p in deb rpm; do
    n=$(find "$T/pkg-$p/etc/zabbix" -type f | wc -l)
    echo "# the .$p puts the UserParameter into: $(cd "$T/pkg-$p" && find etc/zabbix -type f | sort | tr '\n' ' ')"
    check "the .$p's Zabbix files each define ephemeral_ports.json once" \
        test "$n" -ge 2 -a -z "$(find "$T/pkg-$p/etc/zabbix" -type f -exec sh -c \
            'test "$(grep -c "^UserParameter=ephemeral_ports\.json," "$1")" = 1 || echo "$1"' sh {} \;)"
done

# with_files PKG LAYOUT CMD...: CMD with /etc/zabbix = the package's files over the layout's, and
# the package's plugin directory over the machine's (read-only overlays, unmounted afterwards).
with_files() {
    local pkg=$1 layout=$2 libdir rc; shift 2
    libdir=/usr/lib; [ "$pkg" = rpm ] && libdir=${rpm_plugindir%/nagios/plugins}
    mount -t overlay overlay -o "lowerdir=$T/pkg-$pkg/etc/zabbix:$T/layout-$layout/etc/zabbix" /etc/zabbix || return 1
    mounts+=(/etc/zabbix)
    if [ -d "$libdir" ] && mount -t overlay overlay -o "lowerdir=$T/pkg-$pkg$libdir:$libdir" "$libdir"; then
        mounts+=("$libdir")
    fi
    "$@"; rc=$?
    # Lazily: umount itself runs with its libraries from the /usr/lib overlay.
    while [ ${#mounts[@]} -gt 0 ]; do umount -l "${mounts[-1]}"; unset 'mounts[-1]'; done
    return $rc
}

# agent_test AGENT: AGENT -t ephemeral_ports.json with its default configuration file.
agent_test() {
    local agent=$1 cfg=/etc/zabbix/zabbix_agentd.conf
    [ "$agent" = zabbix_agent2 ] && cfg=/etc/zabbix/zabbix_agent2.conf
    timeout 60 "$agent" -c "$cfg" -t ephemeral_ports.json
}

# answered RC OUT: the agent exited 0 with the plugin's JSON document as the value:
# "ephemeral_ports.json   [t|{...}]" (agent2: [s|...]).
answered() { [ "$1" = 0 ] && grep -qE '^ephemeral_ports\.json +\[[ts]\|\{"state":"(OK|WARNING|CRITICAL|UNKNOWN)","exitCode":[0-3],' "$2"; }

for case in "deb debian" "deb zabbix" "rpm zabbix"; do
    read -r pkg layout <<<"$case"
    for agent in zabbix_agentd zabbix_agent2; do
        out=$T/$pkg-$layout-$agent.out
        with_files "$pkg" "$layout" agent_test "$agent" >"$out" 2>&1
        rc=$?
        if [ "$pkg" = rpm ] && [ ! -d "${rpm_plugindir%/nagios/plugins}" ]; then
            # No /usr/lib64 here to lay the rpm's plugin over: the key must be found all the same.
            check "the .rpm on $layout's layout: $agent -t finds ephemeral_ports.json (no ${rpm_plugindir%/nagios/plugins} here to run it from)" \
                test $rc = 0 -a -z "$(grep -i 'unsupported item key\|already exists\|duplicate' "$out")"
        else
            check "the .$pkg on $layout's layout: $agent -c its default configuration -t ephemeral_ports.json runs the plugin once (exit $rc)" \
                answered "$rc" "$out"
        fi || sed 's/^/#   /' "$out" | head -c 1500
    done
done

# Why "exactly once" matters: an agent configuration including two directories that both hold the
# file defines the key twice, and the agent refuses it (the README says what to do then).
sed 's#^Include=/etc/zabbix/zabbix_agentd\.conf\.d/\*\.conf$#&\nInclude=/etc/zabbix/zabbix_agentd.d/*.conf#' \
    "$deb_layout/zabbix_agentd.conf" >"$T/both.conf"
mkdir -p "$T/layout-both/etc/zabbix" && cp -a "$deb_layout/." "$T/layout-both/etc/zabbix/" &&
    cp "$T/both.conf" "$T/layout-both/etc/zabbix/zabbix_agentd.conf" && mkdir -p "$T/layout-both/etc/zabbix/zabbix_agentd.d"
with_files deb both agent_test zabbix_agentd >"$T/both.out" 2>&1
check "a zabbix_agentd.conf including both agentd directories gets the key twice: the agent refuses it ($(grep -o 'key "[^"]*" already exists' "$T/both.out" | head -n 1))" \
    grep -q 'key "ephemeral_ports.json" already exists' "$T/both.out" || sed 's/^/#   /' "$T/both.out"

check "nothing left mounted on /etc/zabbix or the plugin directories" \
    test -z "$(grep -E ' (/etc/zabbix|/usr/lib|/usr/lib64) ' /proc/self/mounts)"

[ "$failed" = 0 ]
