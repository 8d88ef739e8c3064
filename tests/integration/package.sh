#!/usr/bin/env bash
# The packages from `./build.sh package`: dist/SHA256SUMS; lintian and rpmlint; the .deb of this
# machine's architecture (metadata, contents, a real dpkg -i, the installed plugin run from
# /usr/lib/nagios/plugins, the Icinga 2 CheckCommand found through `include <plugins-contrib>`, a
# purge that leaves nothing behind); the man page (renders without warnings, is what the
# installed binary's --help makes of it, names every option); the .rpm of this architecture
# installed with rpm -i --nodeps --root into a private root and run from %{_libdir}/nagios/plugins,
# the other architecture's packages unpacked and checked, with their snippets' plugin paths.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$root/Directory.Build.props")
arch=$(dpkg --print-architecture)
deb=$root/dist/check-ephemeral-ports_${version}-1_${arch}.deb
case $arch in amd64) rpmarch=x86_64 other=arm64 otherrpm=aarch64 ;; *) rpmarch=aarch64 other=amd64 otherrpm=x86_64 ;; esac
rpmfile=$root/dist/check-ephemeral-ports-${version}-1.${rpmarch}.rpm
otherdeb=$root/dist/check-ephemeral-ports_${version}-1_${other}.deb
otherrpmfile=$root/dist/check-ephemeral-ports-${version}-1.${otherrpm}.rpm
floor=2.17

[ -f "$deb" ] || { not_ok "no $deb: run ./build.sh package"; exit 1; }
if dpkg-query -W check-ephemeral-ports >/dev/null 2>&1; then
    not_ok "check-ephemeral-ports is already installed here; refusing to touch it"; exit 1
fi
setup_temp_dir
# On top of the common cleanup: the package never stays installed, whatever happened.
trap 'dpkg --purge check-ephemeral-ports >/dev/null 2>&1; cleanup' EXIT
check "install lintian, rpm, rpmlint, cpio, mandoc, man-db, qemu-user-static" need_packages lintian rpm rpmlint cpio mandoc man-db qemu-user-static

for f in "$deb" "$otherdeb" "$rpmfile" "$otherrpmfile"; do check "dist/ has $(basename "$f")" test -f "$f"; done
check_silent "dist/SHA256SUMS lists the four packages and matches them" \
    sh -c "cd '$root/dist' && test \$(wc -l <SHA256SUMS) = 4 && sha256sum --strict -c SHA256SUMS"

# lintian: nothing above info (the package's own override says why its first changelog entry
# closes no ITP bug); rpmlint: no error but the missing signature, with the RPM family's policy.
lintian --pedantic "$deb" "$otherdeb" >"$T/lintian.log" 2>&1
check "lintian: no error or warning on either .deb" test -z "$(grep -E '^[EW]: ' "$T/lintian.log")" ||
    sed 's/^/#   /' "$T/lintian.log"
rpmlint -c "$root/src/packaging/rpmlint.toml" "$rpmfile" "$otherrpmfile" >"$T/rpmlint.log" 2>&1
check "rpmlint: no error but the missing signature on either .rpm" \
    test -z "$(grep -E '^[^ ]+: E: ' "$T/rpmlint.log" | grep -v ': E: no-signature$')" || sed 's/^/#   /' "$T/rpmlint.log"

info=$(dpkg-deb -I "$deb")
field() { dpkg-deb -f "$deb" "$1"; }
check "package name" test "$(field Package)" = check-ephemeral-ports
check "version matches Directory.Build.props" test "$(field Version)" = "$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$root/Directory.Build.props")-1"
check "architecture is the machine's" test "$(field Architecture)" = "$(dpkg --print-architecture)"
check "depends on glibc only, 2.17 or later" test "$(field Depends)" = "libc6 (>= $floor)"
check "has a description" grep -q 'Description: monitoring plugin for ephemeral port exhaustion' <<<"$info"
check "declares its conffiles" grep -q 'conffiles' <<<"$info"

contents=$(dpkg-deb -c "$deb")
for path in ./usr/lib/nagios/plugins/check_ephemeral_ports \
            ./usr/share/icinga2/include/plugins-contrib.d/ephemeral_ports.conf \
            ./etc/nagios/nrpe.d/check_ephemeral_ports.cfg \
            ./etc/zabbix/zabbix_agentd.conf.d/ephemeral_ports.conf \
            ./etc/zabbix/zabbix_agent2.d/ephemeral_ports.conf \
            ./usr/share/doc/check-ephemeral-ports/copyright \
            ./usr/share/doc/check-ephemeral-ports/changelog.Debian.gz \
            ./usr/share/man/man1/check_ephemeral_ports.1.gz; do
    check "contains $path" grep -q " $path\$" <<<"$contents"
done
check "plugin is executable, owned by root" grep -q '^-rwxr-xr-x root/root .* ./usr/lib/nagios/plugins/check_ephemeral_ports$' <<<"$contents"

dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/share/doc/check-ephemeral-ports/copyright >"$T/copyright"
check "copyright file is machine-readable (DEP-5)" grep -q '^Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/$' "$T/copyright"
check "copyright file says MIT" grep -q '^License: MIT$' "$T/copyright"
dpkg-deb -c "$otherdeb" >"$T/other-contents"
check "the $other .deb is for $other" test "$(dpkg-deb -f "$otherdeb" Architecture)" = "$other"
check "the $other .deb has the plugin" grep -q ' ./usr/lib/nagios/plugins/check_ephemeral_ports$' "$T/other-contents"

if dpkg -i "$deb" >"$T/dpkg.log" 2>&1; then ok "dpkg -i"; else not_ok "dpkg -i: $(cat "$T/dpkg.log")"; fi
check_silent "dpkg knows it as installed" sh -c "dpkg-query -W -f='\${Status}' check-ephemeral-ports | grep -q 'install ok installed'"
out=$(/usr/lib/nagios/plugins/check_ephemeral_ports 2>"$T/stderr"); code=$?
check "installed plugin prints a status line" grep -q '^EPHEMERAL PORTS \(OK\|WARNING\|CRITICAL\) - .* | .tcp_busiest_pct.=' <<<"$out"
check "installed plugin exits 0-2 on this host" test "$code" -le 2
check "installed plugin prints nothing on stderr" test ! -s "$T/stderr"
check_silent "installed plugin runs as the nagios-like user nobody" setpriv --reuid=nobody --init-groups /usr/lib/nagios/plugins/check_ephemeral_ports
check "the NRPE snippet runs the plugin from /usr/lib/nagios/plugins" grep -q '^command\[check_ephemeral_ports\]=/usr/lib/nagios/plugins/check_ephemeral_ports ' /etc/nagios/nrpe.d/check_ephemeral_ports.cfg
check "the Zabbix snippet runs the plugin from /usr/lib/nagios/plugins" grep -q '^UserParameter=ephemeral_ports.json,/usr/lib/nagios/plugins/check_ephemeral_ports ' /etc/zabbix/zabbix_agentd.conf.d/ephemeral_ports.conf

# The man page: man -l renders it without a warning, lexgrog finds its NAME, mandoc finds nothing
# to say, it is what the installed binary's --help makes of it, and every option of --help is in it.
page=/usr/share/man/man1/check_ephemeral_ports.1.gz
man --warnings -l "$page" >"$T/man.txt" 2>"$T/man.err"
check "man -l renders the page without warnings" test -s "$T/man.txt" -a ! -s "$T/man.err"
check "lexgrog finds the page's NAME" grep -q 'check_ephemeral_ports - monitoring plugin for ephemeral port exhaustion' <<<"$(lexgrog "$page")"
zcat "$page" >"$T/page.1"
check "mandoc -Tlint finds nothing" test -z "$(mandoc -Tlint "$T/page.1" 2>&1)"
python3 "$root/src/packaging/manpage.py" /usr/lib/nagios/plugins/check_ephemeral_ports --summary "monitoring plugin for ephemeral port exhaustion" \
    --date "$(sed -n 's/^\.TH [^ ]* 1 \([0-9-]*\) .*/\1/p' "$T/page.1")" --doc /usr/share/doc/check-ephemeral-ports/README.md >"$T/regenerated.1"
check "the page is what the installed binary's --help gives (no drift)" cmp -s "$T/page.1" "$T/regenerated.1"
/usr/lib/nagios/plugins/check_ephemeral_ports --help >"$T/help.txt"
missing=$(grep -oE '^  (-[a-zA-Z], )?--[a-z-]+' "$T/help.txt" | grep -oE -- '--[a-z-]+' | while read -r opt; do grep -qF -- "$opt" "$T/man.txt" || echo "$opt"; done)
check "every option of --help is in the rendered page ($(grep -cE '^  -' "$T/help.txt") options)" test -z "$missing"

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

# The .rpm of this architecture, installed into a private root (its dependencies are the RPM
# system's libc, not this one's: --nodeps), then run from there and removed. The root is empty,
# without a /bin/sh for the systemd scriptlets: --noscripts (tests/integration/package_systemd.sh
# runs them, in a Debian root with systemctl).
rpmneed=$(rpm -qpR "$rpmfile" 2>/dev/null | grep -oE 'GLIBC_[0-9.]+' | sort -uV | tail -n 1)
check "the $rpmarch .rpm needs no glibc symbol above $floor (newest: $rpmneed)" \
    test "$(printf '%s\n%s\n' "${rpmneed#GLIBC_}" "$floor" | sort -V | tail -n 1)" = "$floor"
check "both .rpm have a gzip payload and SHA-256 digests (what RHEL 7's rpm 4.11 reads)" \
    test "$(rpm -qp --qf '%{PAYLOADCOMPRESSOR} %{FILEDIGESTALGO}\n' "$rpmfile" "$otherrpmfile" 2>/dev/null | sort -u)" = "gzip 8"
check "the $rpmarch .rpm requires libc.so.6" grep -q '^libc.so.6' <<<"$(rpm -qpR "$rpmfile" 2>/dev/null)"
rroot=$T/rpmroot
mkdir -p "$rroot"
rpm --root "$rroot" --initdb >"$T/rpm.log" 2>&1
if rpm -i --nodeps --noscripts --root "$rroot" "$rpmfile" >>"$T/rpm.log" 2>&1; then ok "rpm -i --nodeps --root"; else not_ok "rpm -i --root: $(cat "$T/rpm.log")"; fi
check_silent "rpm -q in that root knows it" rpm --root "$rroot" -q check-ephemeral-ports
plugindir=$(rpm --target "$rpmarch-linux" --eval '%{_libdir}')/nagios/plugins
check "the rpm installs the plugin into %{_libdir}/nagios/plugins ($plugindir)" test -x "$rroot$plugindir/check_ephemeral_ports"
out=$("$rroot$plugindir/check_ephemeral_ports" 2>"$T/rpm-plugin.err"); code=$?
check "the rpm-installed plugin prints a status line" grep -q '^EPHEMERAL PORTS \(OK\|WARNING\|CRITICAL\) - .* | .tcp_busiest_pct.=' <<<"$out"
check "the rpm-installed plugin exits 0-2 ($code), nothing on stderr" test "$code" -le 2 -a ! -s "$T/rpm-plugin.err"
check "the rpm's NRPE snippet is in /etc/nrpe.d and runs $plugindir/check_ephemeral_ports" \
    grep -q "^command\[check_ephemeral_ports\]=$plugindir/check_ephemeral_ports " "$rroot/etc/nrpe.d/check_ephemeral_ports.cfg"
for d in zabbix_agentd.d zabbix_agent2.d; do
    check "the rpm's Zabbix snippet is in /etc/zabbix/$d and runs $plugindir/check_ephemeral_ports" \
        grep -q "^UserParameter=ephemeral_ports.json,$plugindir/check_ephemeral_ports " "$rroot/etc/zabbix/$d/ephemeral_ports.conf"
done
check "the rpm's example snippets run the plugin from $plugindir too" \
    test -z "$(grep -rn '/usr/lib/nagios/plugins' "$rroot/usr/share/doc/check-ephemeral-ports/examples" | grep -vE ':[0-9]+:[[:space:]]*(#|/\*|\*)')"
check "the rpm has the CheckCommand for include <plugins-contrib>" test -f "$rroot/usr/share/icinga2/include/plugins-contrib.d/ephemeral_ports.conf"
check "the rpm has the man page and the MIT licence" \
    sh -c "test -f '$rroot/usr/share/man/man1/check_ephemeral_ports.1.gz' && grep -q '^MIT License' '$rroot/usr/share/licenses/check-ephemeral-ports/LICENSE'"
check "the rpm's config files are %config(noreplace)" \
    test "$(rpm -qpc "$rpmfile" 2>/dev/null | sort | tr '\n' ' ')" = "/etc/nrpe.d/check_ephemeral_ports.cfg /etc/zabbix/zabbix_agent2.d/ephemeral_ports.conf /etc/zabbix/zabbix_agentd.d/ephemeral_ports.conf "
rpm -e --noscripts --root "$rroot" check-ephemeral-ports >>"$T/rpm.log" 2>&1 && ok "rpm -e --root" || not_ok "rpm -e --root: $(cat "$T/rpm.log")"
check "rpm -e leaves none of its files" test -z "$(find "$rroot" -type f -not -path '*/.rpmdb/*' -not -path '*/var/lib/rpm/*')"

# The other architecture's .rpm, unpacked (rpm2cpio | cpio): its binary, for that architecture.
mkdir -p "$T/other-rpm"
(cd "$T/other-rpm" && rpm2cpio "$otherrpmfile" | cpio -idm --quiet) 2>"$T/cpio.err"
otherbin=$T/other-rpm$(rpm --target "$otherrpm-linux" --eval '%{_libdir}')/nagios/plugins/check_ephemeral_ports
check "the $otherrpm .rpm unpacks its plugin into %{_libdir}/nagios/plugins" test -x "$otherbin"
if [ "$otherrpm" = aarch64 ]; then
    check "the aarch64 .rpm's plugin is an AArch64 binary" sh -c "readelf -h '$otherbin' | grep -q 'Machine:.*AArch64'"
    if armroot=$("$root/src/build/sysroot.sh" arm64 2>/dev/null); then
        out=$(qemu-aarch64-static -L "$(qemu_libs "$armroot" "$T/armlibs")" "$otherbin" --source proc 2>&1); code=$?
        check "the aarch64 .rpm's plugin runs under qemu ($code)" sh -c "test $code -le 2 && printf '%s' \"\$1\" | grep -q '^EPHEMERAL PORTS '" _ "$out"
    fi
fi
[ "$failed" = 0 ]
