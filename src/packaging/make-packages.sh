#!/usr/bin/env bash
# src/packaging/make-packages.sh: the .deb (amd64, arm64) and .rpm (x86_64, aarch64) packages from the
# binaries in dist/linux-x64/ and dist/linux-arm64/, and dist/SHA256SUMS. Run by `./build.sh package`
# after the build, which installed dpkg-dev, rpm and python3.
#
# What goes in is src/packaging/manifest (both families, one line a file); the paths that differ between
# the families are the variables of family_paths below; the configuration snippets from icinga/
# are copied with the plugin's paths adjusted to the family, the sources stay as they are.
# The version is Directory.Build.props' <Version>, the one place it is written; CHANGELOG.md must have
# it as its newest release, whose notes and date become both packages' changelogs (made by
# src/packaging/changelog.py), the page's date and the files' times. The maintainer is
# src/packaging/maintainer's line.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DIST=$ROOT/dist
WORK=$ROOT/artifacts/packages
NAME=check-ephemeral-ports
SUMMARY="monitoring plugin for ephemeral port exhaustion"
# The architectures: .NET runtime identifier, Debian architecture, RPM architecture.
ARCHES=("linux-x64 amd64 x86_64" "linux-arm64 arm64 aarch64")
GLIBC_FLOOR=2.17

log() { printf '==> %s\n' "$*"; }
die() { echo "make-packages.sh: $*" >&2; exit 1; }

version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props)
release=1
maintainer=$(grep -v -e '^#' -e '^[[:space:]]*$' src/packaging/maintainer)
[ "$(printf '%s\n' "$maintainer" | wc -l)" = 1 ] || die "src/packaging/maintainer must hold one line"
rm -rf "$WORK"
mkdir -p "$WORK"
changelog=$WORK/changelog.Debian
python3 src/packaging/changelog.py CHANGELOG.md "$version" "$maintainer" >"$changelog" ||
    die "CHANGELOG.md has no release section for $version (Directory.Build.props) at the top"
[ "$(dpkg-parsechangelog -l "$changelog" -S Version)" = "$version-$release" ] || die "$changelog is not for $version-$release"
export SOURCE_DATE_EPOCH
SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -l "$changelog" -S Timestamp)
date_iso=$(date -u -d "@$SOURCE_DATE_EPOCH" +%F)

# The long description, for both control file and spec (lines of at most 79 characters).
DESCRIPTION="check_ephemeral_ports warns before connect() fails with EADDRNOTAVAIL: it finds
the busiest (source, destination, destination port) tuple and compares it with
the ports that tuple can use (the local port range, less reserved ports and
listeners inside it, with TIME_WAIT reuse accounted for), and watches UDP.
Nagios plugin output with perfdata, JSON for Zabbix, Prometheus text format.
One native binary for glibc 2.17 and later, with an Icinga 2 CheckCommand
(include <plugins-contrib>), NRPE and Zabbix agent snippets."

# family_paths deb|rpm RPMARCH: sets the @NAME@ variables of src/packaging/manifest.
family_paths() {
    DOCDIR=/usr/share/doc/$NAME MANDIR=/usr/share/man
    ICINGA2_CONTRIB_DIR=/usr/share/icinga2/include/plugins-contrib.d ZABBIX_AGENT2_DIR=/etc/zabbix/zabbix_agent2.d
    # Zabbix's own agent packages (repo.zabbix.com, the usual way to a 7.0 agent, .deb and .rpm alike):
    # Include=/etc/zabbix/zabbix_agentd.d/*.conf; their agent2 includes ZABBIX_AGENT2_DIR as Debian's does.
    ZABBIX_AGENTD_ZABBIX_DIR=/etc/zabbix/zabbix_agentd.d
    if [ "$1" = deb ]; then
        # Debian's monitoring-plugins, nagios-nrpe-server (include_dir=/etc/nagios/nrpe.d/),
        # zabbix-agent (Include=/etc/zabbix/zabbix_agentd.conf.d/*.conf).
        PLUGINDIR=/usr/lib/nagios/plugins NRPEDIR=/etc/nagios/nrpe.d
        ZABBIX_AGENTD_DIR=/etc/zabbix/zabbix_agentd.conf.d UNITDIR=/lib/systemd/system
        # nagios4's command definitions (Debian's nagios.cfg: cfg_dir=/etc/nagios-plugins/config).
        NAGIOS_PLUGINS_CONFIG_DIR=/etc/nagios-plugins/config
    else
        # EPEL's nagios-plugins (%{_libdir}/nagios/plugins) and nrpe (include_dir=/etc/nrpe.d/),
        # Zabbix's own zabbix-agent packages only (the two agentd directories are one: stage() installs it once).
        PLUGINDIR=$(rpm --target "$2-linux" --eval '%{_libdir}')/nagios/plugins NRPEDIR=/etc/nrpe.d
        ZABBIX_AGENTD_DIR=$ZABBIX_AGENTD_ZABBIX_DIR UNITDIR=/usr/lib/systemd/system
        # EPEL's and SUSE's nagios read no such directory: not in the .rpm.
        NAGIOS_PLUGINS_CONFIG_DIR=-
    fi
    # node_exporter's textfile directory, for the systemd unit and the cron example: Debian's
    # prometheus-node-exporter reads /var/lib/prometheus/node-exporter by default; no RPM family's
    # node_exporter reads one by default, and node_exporter's own example for RPM systems (its
    # examples/systemd) uses /var/lib/node_exporter/textfile_collector, as the README says to.
    TEXTFILE_DIR=/var/lib/prometheus/node-exporter
    [ "$1" = deb ] || TEXTFILE_DIR=/var/lib/node_exporter/textfile_collector
}

# The snippets in icinga/ are written for Debian: on a configuration line (not a comment: the
# comments describe Debian), each Debian path becomes the family's. Zabbix's agent directories stay
# as they are: the packages fill each layout's, and the docs name them all.
adjust_paths() {
    sed -E "/^[[:space:]]*(#|\/\*|\*)/!{
        s:/var/lib/prometheus/node-exporter:$TEXTFILE_DIR:g
        s:/usr/lib/nagios/plugins:$PLUGINDIR:g
        s:/etc/nagios/nrpe\.d:$NRPEDIR:g
    }" "$1"
}

expand() {
    local s=$1 v
    for v in PLUGINDIR MANDIR NRPEDIR ZABBIX_AGENTD_DIR ZABBIX_AGENTD_ZABBIX_DIR ZABBIX_AGENT2_DIR ICINGA2_CONTRIB_DIR DOCDIR UNITDIR \
        NAGIOS_PLUGINS_CONFIG_DIR; do
        s=${s//@$v@/${!v}}
    done
    s=${s//@BIN@/$bin}
    s=${s//@MAN@/$man}
    case $s in *@*@*) die "src/packaging/manifest: unknown variable in $1" ;; esac
    printf '%s' "$s"
}

# stage STAGE: installs src/packaging/manifest into STAGE; prints "KIND PATH" for each file installed.
stage() {
    local stage=$1 kind src dest expanded f target
    local -A installed=()  # two lines naming the same path in a family (rpm: the agentd directories)
    while read -r kind src dest; do
        case $kind in ''|'#'*) continue ;; esac
        dest=$(expand "$dest")
        [ "${dest#-}" = "$dest" ] || continue
        expanded=$(expand "$src")
        # shellcheck disable=SC2206  # a glob in the manifest is meant to expand
        local matches=($expanded)
        [ -e "${matches[0]}" ] || die "src/packaging/manifest: nothing matches $src"
        for f in "${matches[@]}"; do
            target=$dest
            [ "${dest%/}" = "$dest" ] || target=$dest$(basename "$f")
            [ -z "${installed[$target]:-}" ] || continue
            installed[$target]=1
            case $kind in
                bin) install -D -m 0755 "$f" "$stage$target"; echo "bin $target" ;;
                man) install -D -m 0644 "$f" "$stage$target"; echo "man $target" ;;
                doc) install -D -m 0644 "$f" "$stage$target"; echo "doc $target" ;;
                config|data)
                    mkdir -p "$(dirname "$stage$target")"
                    adjust_paths "$f" >"$stage$target"; chmod 0644 "$stage$target"; echo "$kind $target" ;;
                examples)
                    local rel
                    while IFS= read -r -d '' rel; do
                        rel=${rel#"$f"/}
                        mkdir -p "$(dirname "$stage$target/$rel")"
                        adjust_paths "$f/$rel" >"$stage$target/$rel"; chmod 0644 "$stage$target/$rel"
                        echo "doc $target/$rel"
                    done < <(find "$f" -type f -print0 | sort -z)
                    ;;
                *) die "src/packaging/manifest: unknown kind $kind" ;;
            esac
        done
    done <src/packaging/manifest
}

# The man page, from the binary of this machine (the text is the same on every architecture).
make_manpage() {
    man=$WORK/check_ephemeral_ports.1.gz
    python3 src/packaging/manpage.py "$DIST/check_ephemeral_ports" --summary "$SUMMARY" --date "$date_iso" \
        --doc "/usr/share/doc/$NAME/README.md" >"$WORK/check_ephemeral_ports.1"
    gzip -9n -c "$WORK/check_ephemeral_ports.1" >"$man"
}

# The machine-readable copyright file (DEP-5) with the licence text of LICENSE.
deb_copyright() {
    cat <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: check_ephemeral_ports
Upstream-Contact: $maintainer
Comment: The binary is a .NET NativeAOT executable: it contains the .NET runtime and
 libraries (Copyright .NET Foundation and Contributors, MIT) and CommandLineParser
 (Copyright 2005 - 2015 Giacomo Stelluti Scala & Contributors, MIT).

Files: *
Copyright: 2026 the check_ephemeral_ports authors
License: MIT

License: MIT
EOF
    # The permission and warranty paragraphs of LICENSE, blank lines as " .".
    sed -n '/^Permission is hereby granted/,$p' LICENSE | sed 's/^$/./; s/^/ /'
}

build_deb() {
    local rid=$1 arch=$2 stage deb needed
    bin=$DIST/$rid/check_ephemeral_ports
    stage=$WORK/deb-$arch
    deb=$DIST/${NAME}_${version}-${release}_${arch}.deb
    rm -rf "$stage"
    family_paths deb
    stage "$stage" >"$WORK/deb-$arch.files"
    local doc=$stage/usr/share/doc/$NAME
    deb_copyright >"$doc/copyright"
    gzip -9n -c "$changelog" >"$doc/changelog.Debian.gz"
    # Not a package of the Debian archive: no ITP bug for its first changelog entry to close.
    # The plugin is one static binary by design (it runs on every glibc from 2.17, where no zlib of
    # a given version can be relied on): the BPF reader's libelf needs zlib, linked in.
    local zlib=''
    if strings "$bin" | grep 'inflate [0-9.]* Copyright' >/dev/null; then
        zlib="$NAME: embedded-library zlib [${PLUGINDIR#/}/check_ephemeral_ports]"
    fi
    install -D -m 0644 /dev/stdin "$stage/usr/share/lintian/overrides/$NAME" <<OVERRIDES
$NAME: initial-upload-closes-no-bugs [usr/share/doc/$NAME/changelog.Debian.gz:1]
${zlib}
OVERRIDES
    mkdir -p "$stage/DEBIAN"
    awk '$1 == "config" {print $2}' "$WORK/deb-$arch.files" >"$stage/DEBIAN/conffiles"
    # The maintainer scripts: the systemd timer enabled, disabled and forgotten as
    # dh_installsystemd's scripts do it (see each script).
    install -m 0755 src/packaging/deb/postinst src/packaging/deb/prerm src/packaging/deb/postrm "$stage/DEBIAN/"
    needed=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1 | sed 's/^GLIBC_//')
    [ "$(printf '%s\n%s\n' "$needed" "$GLIBC_FLOOR" | sort -V | tail -n 1)" = "$GLIBC_FLOOR" ] ||
        die "$bin needs GLIBC_$needed, above $GLIBC_FLOOR"
    cat >"$stage/DEBIAN/control" <<CONTROL
Package: $NAME
Version: $version-$release
Architecture: $arch
Maintainer: $maintainer
Depends: libc6 (>= $needed)
Suggests: icinga2 | nagios4 | nagios-nrpe-server | zabbix-agent
Section: net
Priority: optional
Installed-Size: $(du -sk --apparent-size "$stage" --exclude=DEBIAN | cut -f1)
Description: $SUMMARY
$(sed 's/^/ /' <<<"$DESCRIPTION")
CONTROL
    (cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
    find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
    log "built $deb"
}

build_rpm() {
    local rid=$1 arch=$2 top stage spec rpm
    bin=$DIST/$rid/check_ephemeral_ports
    top=$WORK/rpm-$arch
    stage=$top/stage
    rm -rf "$top"
    mkdir -p "$top"/{BUILD,RPMS,SPECS,SRPMS,BUILDROOT}
    family_paths rpm "$arch"
    stage "$stage" >"$top/files"
    install -D -m 0644 LICENSE "$stage/usr/share/licenses/$NAME/LICENSE"
    spec=$top/SPECS/$NAME.spec
    {
        cat <<SPEC
# Generated by src/packaging/make-packages.sh from src/packaging/manifest; a binary-only package of the
# prebuilt NativeAOT binary (no %prep or %build: ./build.sh built and checked it).
Name:           $NAME
Version:        $version
Release:        $release
Summary:        ${SUMMARY^}
License:        MIT
Group:          Applications/System
Packager:       $maintainer
# The binary is stripped and needs no brp-* post-processing (it would run the host's tools on
# another architecture's file); the automatic ELF dependencies (libc.so.6(GLIBC_2.17)...) stay.
%global debug_package %{nil}
%global __os_install_post %{nil}
%global _build_id_links none
# What RHEL 7's rpm 4.11 reads: a gzip payload (not zstd, newer rpms' default) and SHA-256 digests.
%global _binary_payload w9.gzdio
%global _binary_filedigest_algorithm 8

# The systemd scriptlets (post, preun and postun, below) need systemctl.
Requires(post): systemd
Requires(preun): systemd
Requires(postun): systemd

# systemd's own systemd_* scriptlet macros are neither on the build host (Debian's rpm has none) nor the
# same on every target: since systemd 249 they call systemd-update-helper, which RHEL 7 (systemd
# 219) and 8 (239) do not have, so a package built with them would skip enable, disable and
# restart there without a word. These are the same macros in the form systemd's shipped before
# (plain systemctl, every option of it known to 219), correct on every target: preset on first
# install (RHEL's and SUSE's presets leave an unlisted unit disabled, as the .deb ships it),
# disable and stop on removal, daemon-reload and a restart of what runs on upgrade.
%define systemd_post() \\
if [ \$1 -eq 1 ]; then\\
    systemctl --no-reload preset %{?*} >/dev/null 2>&1 || :\\
fi\\
%{nil}
%define systemd_preun() \\
if [ \$1 -eq 0 ]; then\\
    systemctl --no-reload disable %{?*} >/dev/null 2>&1 || :\\
    systemctl stop %{?*} >/dev/null 2>&1 || :\\
fi\\
%{nil}
%define systemd_postun_with_restart() \\
systemctl daemon-reload >/dev/null 2>&1 || :\\
if [ \$1 -ge 1 ]; then\\
    systemctl try-restart %{?*} >/dev/null 2>&1 || :\\
fi\\
%{nil}

%description
$DESCRIPTION

%install
cp -a "$stage/." "%{buildroot}/"

%post
%systemd_post check-ephemeral-ports.timer

%preun
%systemd_preun check-ephemeral-ports.timer check-ephemeral-ports.service

%postun
%systemd_postun_with_restart check-ephemeral-ports.timer

%files
%license /usr/share/licenses/$NAME/LICENSE
SPEC
        # Directories of the package's own (the plugin directory belongs to nagios-plugins).
        echo "%dir $DOCDIR"
        echo "%dir $DOCDIR/examples"
        (cd "$stage" && find ".$DOCDIR/examples" -mindepth 1 -type d | sed 's:^\.:%dir :' | sort)
        awk '$1 == "config" {print "%config(noreplace) " $2; next} $1 == "doc" || $1 == "man" {print "%doc " $2; next} {print $2}' "$top/files"
        echo
        echo "%changelog"
        echo "* $(date -u -d "@$SOURCE_DATE_EPOCH" '+%a %b %d %Y') $maintainer - $version-$release"
        dpkg-parsechangelog -l "$changelog" -S Changes | sed -n '/^  \*/,$p' | sed -e 's/^  \* /- /' -e 's/^    /  /' -e 's/%/%%/g'
    } >"$spec"
    find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    rpmbuild -bb --target "$arch-linux" --define "_topdir $top" --define "_buildhost reproducible" \
        --define "use_source_date_epoch_as_buildtime 1" --define "clamp_mtime_to_source_date_epoch 1" \
        "$spec" >"$top/rpmbuild.log" 2>&1 || { cat "$top/rpmbuild.log" >&2; die "rpmbuild failed for $arch"; }
    rpm=$(find "$top/RPMS" -name '*.rpm' | head -n 1)
    cp "$rpm" "$DIST/"
    log "built $DIST/$(basename "$rpm")"
}

rm -f "$DIST"/*.deb "$DIST"/*.rpm "$DIST/SHA256SUMS"
make_manpage
for a in "${ARCHES[@]}"; do
    read -r rid debarch rpmarch <<<"$a"
    [ -x "$DIST/$rid/check_ephemeral_ports" ] || die "no $DIST/$rid/check_ephemeral_ports: run ./build.sh first"
    build_deb "$rid" "$debarch"
    build_rpm "$rid" "$rpmarch"
done
(cd "$DIST" && sha256sum -- *.deb *.rpm >SHA256SUMS)
log "wrote $DIST/SHA256SUMS"
