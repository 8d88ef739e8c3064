#!/usr/bin/env bash
# Every path the README names inside the packages' own directories (the plugin, the Icinga 2
# command, the NRPE and Zabbix snippets, the units, the documentation) is installed by the .deb or
# the .rpm built in dist/ (./build.sh test builds them first): a path renamed in the packages but
# not in the README, or the other way round, fails here.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
need_packages dpkg-dev rpm

deb=$(ls "$root"/dist/check-ephemeral-ports_*_amd64.deb 2>/dev/null | head -n 1)
rpm=$(ls "$root"/dist/check-ephemeral-ports-*.x86_64.rpm 2>/dev/null | head -n 1)
check "a .deb was built ($deb)" test -f "$deb" || exit 1
check "an .rpm was built ($rpm)" test -f "$rpm" || exit 1

# What each package installs: files, and the directories above them.
listing=$(mktemp)
trap 'rm -f "$listing"' EXIT
{
    dpkg-deb -c "$deb" | awk '{print $6}' | sed 's:^\./:/:'
    rpm -qlp "$rpm" 2>/dev/null
} | sed 's:/$::' | sort -u >"$listing"

# The directories the packages own or write into; a README path below one of them must exist.
roots='/usr/lib/nagios/plugins|/usr/lib64/nagios/plugins|/usr/share/icinga2/include|/etc/nagios/nrpe.d|/etc/nrpe.d|/etc/zabbix|/usr/share/doc/check-ephemeral-ports|/lib/systemd/system|/usr/lib/systemd/system|/etc/nagios-plugins/config'
paths=$(grep -oE "($roots)[A-Za-z0-9_./-]*" "$root/README.md" | sed 's:/$::' | sort -u)
[ -n "$paths" ] || not_ok "the README names no path of the packages (the pattern is out of date)"
for path in $paths; do
    if grep -qxF -- "$path" "$listing" || grep -q -- "^$path/" "$listing"; then
        ok "README's $path is in a package"
    else
        not_ok "README's $path is in neither package"
    fi
done
exit "$failed"
