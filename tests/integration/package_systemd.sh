#!/usr/bin/env bash
# The packages' systemd handling, for real, inside a Debian 12 root made by debootstrap (with
# systemd, init-system-helpers and rpm; cached under /var/cache/check-ephemeral-ports/, keyed by
# what it holds) and run on an overlay of it, so the cache is never written:
#   .deb: dpkg -i ships the timer disabled; systemctl enable (offline, as in any chroot); the
#     same package installed again and an upgrade to a newer version keep it enabled; dpkg -r
#     leaves it masked (the enablement is configuration, kept until purge); dpkg --purge leaves
#     no link under /etc/systemd/system and no deb-systemd-helper state; install, enable and
#     purge straight away likewise. These are the maintainer scripts' jobs (postinst, prerm,
#     postrm written in dh_installsystemd's style): a package without them leaves a dangling
#     timers.target.wants link behind.
#   .rpm: rpm -i with RHEL's preset policy (99-default-disable.preset) leaves the timer
#     disabled; enabled, rpm -U --replacepkgs keeps it enabled; rpm -e disables it and leaves no
#     link. rpm -qp --scripts shows the three scriptlets, and they call nothing systemd < 249
#     lacks (systemd-update-helper).
#   both: the unit names the family's node_exporter textfile directory, has no Condition that
#     would skip it silently, and systemd-analyze verify accepts the installed units.
# No systemd runs in the root (no /run/systemd/system): the scripts' daemon-reload and
# start/stop are skipped there, as in any chroot. Runs as root; the whole script runs in a
# private mount namespace, so its mounts go with it.
set -uo pipefail
if [ -z "${CEP_PACKAGE_SYSTEMD_UNSHARED:-}" ]; then
    CEP_PACKAGE_SYSTEMD_UNSHARED=1 exec unshare --mount --propagation private -- bash "$0" "$@"
fi
. "$(dirname "$0")/lib/common.sh"
version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$root/Directory.Build.props")
arch=$(dpkg --print-architecture)
case $arch in amd64) rpmarch=x86_64 ;; *) rpmarch=aarch64 ;; esac
deb=$root/dist/check-ephemeral-ports_${version}-1_${arch}.deb
rpmfile=$root/dist/check-ephemeral-ports-${version}-1.${rpmarch}.rpm
timer=check-ephemeral-ports.timer
link=/etc/systemd/system/timers.target.wants/$timer

setup_temp_dir
# The overlays and their /proc go before the temp dir does (cleanup's rm -rf must not walk
# into them), even though the mount namespace would drop them when the script ends.
mounts=()
unmount_all() { local n; for ((n = ${#mounts[@]} - 1; n >= 0; n--)); do umount "${mounts[n]}" 2>/dev/null || umount -l "${mounts[n]}"; done; mounts=(); }
trap 'unmount_all; cleanup' EXIT
check "dist/ has $(basename "$deb") and $(basename "$rpmfile") (./build.sh package)" test -f "$deb" -a -f "$rpmfile" || exit 1
check "install debootstrap, rpm, cpio" need_packages debootstrap rpm cpio || exit 1

# --- the cached root ----------------------------------------------------------------------------
. "$(dirname "$0")/lib/debian_root.sh"
need_debian_root
cache=$debian_root

# fresh_root NAME: a new overlay of the cached root at $T/NAME (sets R), /proc mounted, the
# packages under /tmp/pkg, and a policy-rc.d that forbids starting anything.
fresh_root() {
    R=$T/$1
    mkdir -p "$R" "$T/$1.upper" "$T/$1.work"
    mount -t overlay overlay -o "lowerdir=$cache,upperdir=$T/$1.upper,workdir=$T/$1.work" "$R" && mounts+=("$R") &&
        mount -t proc proc "$R/proc" && mounts+=("$R/proc") || return 1
    mkdir -p "$R/tmp/pkg" && cp "$deb" "$rpmfile" "$R/tmp/pkg/" &&
        printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d" && chmod 755 "$R/usr/sbin/policy-rc.d"
}
in_root() {
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive HOME=/root \
        chroot "$R" "$@"
}
enabled() { in_root systemctl is-enabled "$timer" 2>/dev/null; }
# Links under /etc/systemd/system whose target is missing, and anything of ours left there or
# in deb-systemd-helper's state.
# (Targets are looked up inside the root: absolute ones under $R, relative ones beside the link.)
dangling() {
    (cd "$R" && find etc/systemd/system -type l -printf '%p %l\n' 2>/dev/null | sort | while read -r l t; do
        case $t in /dev/null) continue ;; /*) p=$R$t ;; *) p=$R/$(dirname "$l")/$t ;; esac
        [ -e "$p" ] || echo "/$l -> $t"
    done)
}
leftovers() {
    find "$R/etc/systemd/system" "$R/var/lib/systemd/deb-systemd-helper-enabled" \
        "$R/var/lib/systemd/deb-systemd-helper-masked" -name '*check-ephemeral-ports*' 2>/dev/null | sed "s:^$R::"
}
dpkg_in() { local log=$1; shift; in_root dpkg "$@" >"$T/$log" 2>&1 || { sed 's/^/#   /' "$T/$log"; return 1; }; }

# --- the .deb ------------------------------------------------------------------------------------
fresh_root deb || { not_ok "overlay of the cached root"; exit 1; }
check "the root has deb-systemd-helper and systemctl ($(in_root systemctl --version | head -n 1))" \
    in_root sh -c 'command -v deb-systemd-helper && command -v systemctl' >/dev/null
before=$(dangling)
check "dpkg -i in the root" dpkg_in dpkg-i.log -i /tmp/pkg/"$(basename "$deb")"
check "the timer is shipped disabled (is-enabled: $(enabled))" test "$(enabled)" = disabled
verify_units() { in_root systemd-analyze verify "$@" >"$T/verify.log" 2>&1 && [ ! -s "$T/verify.log" ] || { sed 's/^/#   /' "$T/verify.log"; false; }; }
check "systemd-analyze verify in the root: the .deb's installed units, no warning" \
    verify_units /lib/systemd/system/check-ephemeral-ports.service /lib/systemd/system/$timer
check "postinst recorded the timer's links for purge (deb-systemd-helper update-state)" \
    grep -qsx "$link" "$R/var/lib/systemd/deb-systemd-helper-enabled/$timer.dsh-also"
in_root systemctl enable "$timer" >"$T/enable.log" 2>&1
check "systemctl enable $timer in the root: $link" test "$(enabled)" = enabled -a -L "$R$link"
reinstall() { dpkg_in reinstall.log -i /tmp/pkg/"$(basename "$deb")" && test "$(enabled)" = enabled; }
check "dpkg -i of the same package again (an upgrade, to dpkg) keeps it enabled" reinstall
# A newer version: the same package repacked as -2.
mkdir -p "$T/repack"
dpkg-deb -R "$deb" "$T/repack/x" && sed -i "s/^Version: .*/Version: $version-2/" "$T/repack/x/DEBIAN/control" &&
    dpkg-deb --root-owner-group -b "$T/repack/x" "$R/tmp/pkg/newer.deb" >/dev/null
upgrade() { dpkg_in upgrade.log -i /tmp/pkg/newer.deb && test "$(enabled)" = enabled; }
check "an upgrade to $version-2 keeps it enabled" upgrade
check "dpkg -r" dpkg_in remove.log -r check-ephemeral-ports
check "after dpkg -r the timer is masked, its enablement kept until purge (is-enabled: $(enabled))" \
    test "$(enabled)" = masked
check "dpkg --purge" dpkg_in purge.log --purge check-ephemeral-ports
check "after purge: no dangling link under /etc/systemd/system ($(dangling | tr '\n' ' '))" test "$(dangling)" = "$before"
check "after purge: no link, mask or deb-systemd-helper state of the timer left ($(leftovers | tr '\n' ' '))" test -z "$(leftovers)"
# Installed, enabled and purged straight away (no dpkg -r first).
install_enable_purge() {
    dpkg_in i2.log -i /tmp/pkg/"$(basename "$deb")" && in_root systemctl enable "$timer" >/dev/null 2>&1 &&
        test -L "$R$link" && dpkg_in purge2.log --purge check-ephemeral-ports
}
check "dpkg -i, systemctl enable, dpkg --purge" install_enable_purge
check "  then no dangling link and nothing of the timer left ($(leftovers | tr '\n' ' '))" \
    test -z "$(leftovers)" -a "$(dangling)" = "$before"
# The unit the .deb installs.
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./lib/systemd/system/check-ephemeral-ports.service >"$T/deb.service" 2>/dev/null ||
    dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/lib/systemd/system/check-ephemeral-ports.service >"$T/deb.service"
check "the .deb's unit writes into /var/lib/prometheus/node-exporter, with no Condition that skips it" \
    sh -c "grep -q '^ExecStart=.* --output /var/lib/prometheus/node-exporter/ephemeral_ports.prom$' '$T/deb.service' &&
           grep -qx 'ReadWritePaths=-/var/lib/prometheus/node-exporter' '$T/deb.service' && ! grep -q '^Condition' '$T/deb.service'"

# --- the .rpm ------------------------------------------------------------------------------------
rpm -qp --scripts "$rpmfile" >"$T/scripts" 2>/dev/null
check "rpm -qp --scripts: postinstall, preuninstall, postuninstall scriptlets" \
    test "$(grep -c -e '^postinstall scriptlet' -e '^preuninstall scriptlet' -e '^postuninstall scriptlet' "$T/scripts")" = 3
check "  preset on install, disable and stop on removal, try-restart on upgrade" \
    sh -c "grep -q 'systemctl --no-reload preset $timer' '$T/scripts' && grep -q 'systemctl --no-reload disable $timer' '$T/scripts' &&
           grep -q 'systemctl stop $timer' '$T/scripts' && grep -q 'systemctl try-restart $timer' '$T/scripts'"
check "  nothing systemd before 249 lacks (systemd-update-helper)" sh -c "! grep -q systemd-update-helper '$T/scripts'"
check "  Requires(post), (preun), (postun): systemd" \
    test "$(rpm -qp --qf '[%{REQUIRENAME} %{REQUIREFLAGS:deptype}\n]' "$rpmfile" 2>/dev/null | grep -c '^systemd ')" = 3
rpm2cpio "$rpmfile" | (cd "$T" && mkdir -p rpmx && cd rpmx && cpio -idm --quiet ./usr/lib/systemd/system/check-ephemeral-ports.service) 2>/dev/null
check "the .rpm's unit writes into /var/lib/node_exporter/textfile_collector, with no Condition that skips it" \
    sh -c "f='$T/rpmx/usr/lib/systemd/system/check-ephemeral-ports.service'
           grep -q '^ExecStart=/usr/lib[0-9]*/nagios/plugins/check_ephemeral_ports .* --output /var/lib/node_exporter/textfile_collector/ephemeral_ports.prom$' \"\$f\" &&
           grep -qx 'ReadWritePaths=-/var/lib/node_exporter/textfile_collector' \"\$f\" && ! grep -q '^Condition' \"\$f\" && ! grep -v '^#' \"\$f\" | grep -q prometheus/node-exporter"

fresh_root rpm || { not_ok "overlay of the cached root (rpm)"; exit 1; }
# RHEL's and Fedora's preset policy: what is not listed is disabled.
mkdir -p "$R/usr/lib/systemd/system-preset" && echo 'disable *' >"$R/usr/lib/systemd/system-preset/99-default-disable.preset"
rpm_in() { local log=$1; shift; in_root rpm "$@" >"$T/$log" 2>&1; grep -E 'error|scriptlet failed' "$T/$log" | sed 's/^/#   /'; ! grep -qE 'error|scriptlet failed' "$T/$log"; }
in_root rpm --initdb >/dev/null 2>&1
before=$(dangling)
check "rpm -i --nodeps in the root, scriptlets and all" rpm_in rpm-i.log -i --nodeps /tmp/pkg/"$(basename "$rpmfile")"
check "with RHEL's presets the timer is disabled (is-enabled: $(enabled))" test "$(enabled)" = disabled
check "systemd-analyze verify in the root: the .rpm's installed units (plugin in /usr/lib64), no warning" \
    verify_units /usr/lib/systemd/system/check-ephemeral-ports.service /usr/lib/systemd/system/$timer
in_root systemctl enable "$timer" >/dev/null 2>&1
check "systemctl enable $timer: $link" test "$(enabled)" = enabled -a -L "$R$link"
rpm_again() { rpm_in rpm-u.log -U --nodeps --replacepkgs /tmp/pkg/"$(basename "$rpmfile")" && test "$(enabled)" = enabled; }
check "rpm -U --replacepkgs keeps it enabled" rpm_again
check "rpm -e" rpm_in rpm-e.log -e --nodeps check-ephemeral-ports
check "after rpm -e: no dangling link, no link of the timer ($(leftovers | tr '\n' ' '))" \
    test -z "$(leftovers)" -a "$(dangling)" = "$before"

[ "$failed" = 0 ]
