#!/usr/bin/env bash
# The release (`./build.sh release`, README "Releasing"):
#   - the version is written in one place, Directory.Build.props' <Version>: CHANGELOG.md's newest
#     release, both packages' versions and changelogs and the binary's --version follow it, and
#     src/packaging holds no copy of it; the maintainer is written once, in src/packaging/maintainer,
#     and both packages carry it;
#   - src/packaging/make-repos.sh makes an apt and a yum repository of both architectures' packages
#     with SHA256SUMS; a Debian 12 root (debootstrap, cached under /var/cache/check-ephemeral-ports/,
#     run on an overlay so the cache is never written) installs the package from the apt repository
#     with `apt-get install check-ephemeral-ports` and runs the plugin; the yum metadata
#     (repomd.xml, primary.xml.gz) lists both .rpm with their version, path and checksum.
# The packages are dist/'s (./build.sh test and package make them); without them this script
# makes them from dist/linux-x64/ and dist/linux-arm64/ with src/packaging/make-packages.sh.
# The repositories go into the temp dir. Runs as root in a private mount namespace.
set -uo pipefail
if [ -z "${CEP_RELEASE_UNSHARED:-}" ]; then
    CEP_RELEASE_UNSHARED=1 exec unshare --mount --propagation private -- bash "$0" "$@"
fi
. "$(dirname "$0")/lib/common.sh"
setup_temp_dir
mounts=()
unmount_all() { local n; for ((n = ${#mounts[@]} - 1; n >= 0; n--)); do umount "${mounts[n]}" 2>/dev/null || umount -l "${mounts[n]}"; done; mounts=(); }
trap 'unmount_all; cleanup' EXIT
check "install dpkg-dev, rpm, python3, apt-utils, createrepo-c, debootstrap" \
    need_packages dpkg-dev rpm python3 apt-utils createrepo-c debootstrap || exit 1

version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$root/Directory.Build.props")
check "Directory.Build.props has one <Version> ($version)" test "$(grep -c '<Version>' "$root/Directory.Build.props")" = 1 -a -n "$version" || exit 1
maintainer=$(grep -v -e '^#' -e '^[[:space:]]*$' "$root/src/packaging/maintainer")

# --- one place for the version and the maintainer --------------------------------------------------
check "CHANGELOG.md's newest release is $version, and it makes the packages' changelog" \
    quiet "$T/changelog.Debian" python3 "$root/src/packaging/changelog.py" "$root/CHANGELOG.md" "$version" "$maintainer"
python3 "$root/src/packaging/changelog.py" "$root/CHANGELOG.md" "$version" "$maintainer" >"$T/changelog.Debian" 2>/dev/null
check "... dated and signed: $(dpkg-parsechangelog -l "$T/changelog.Debian" -S Version 2>/dev/null), $(dpkg-parsechangelog -l "$T/changelog.Debian" -S Date 2>/dev/null)" \
    test "$(dpkg-parsechangelog -l "$T/changelog.Debian" -S Version 2>/dev/null)" = "$version-1" -a \
    "$(dpkg-parsechangelog -l "$T/changelog.Debian" -S Maintainer 2>/dev/null)" = "$maintainer"
check "another version than CHANGELOG.md's newest is refused" \
    sh -c "! python3 '$root/src/packaging/changelog.py' '$root/CHANGELOG.md' '$version.1' '$maintainer' >/dev/null 2>&1"
check "CHANGELOG.md keeps an [Unreleased] section above the releases" grep -q '^## \[Unreleased\]' "$root/CHANGELOG.md"
check "no copy of $version in src/packaging/ or build.sh" \
    sh -c "! grep -rnF -- '$version' '$root/src/packaging' '$root/build.sh'"
check "src/packaging/maintainer holds one line, 'Name <email>' ($maintainer)" \
    sh -c "[ \"\$(grep -v -e '^#' -e '^[[:space:]]*\$' '$root/src/packaging/maintainer' | wc -l)\" = 1 ] && printf '%s' '$maintainer' | grep -qE '^[^<>]+ <[^<>@ ]+@[^<> ]+>\$'"
email=$(sed 's/.*<\(.*\)>.*/\1/' <<<"$maintainer")
others=$(cd "$root" && git ls-files 2>/dev/null | grep -v '^src/packaging/maintainer$' | xargs -d '\n' grep -lF -- "$email" 2>/dev/null)
check "the maintainer's address is written nowhere else in the repository${others:+ (also in: $others)}" test -z "$others"
if [ -x "$bin" ]; then
    check "the binary says version $version ($("$bin" --version 2>&1 | head -n 1))" \
        sh -c "'$bin' --version 2>&1 | head -n 1 | grep -qx 'check_ephemeral_ports $version'"
fi

# --- the packages --------------------------------------------------------------------------------------
debs=("$root"/dist/check-ephemeral-ports_"$version"-1_{amd64,arm64}.deb)
rpms=("$root"/dist/check-ephemeral-ports-"$version"-1.{x86_64,aarch64}.rpm)
have_all() { local f; for f in "${debs[@]}" "${rpms[@]}"; do [ -f "$f" ] || return 1; done; }
if have_all; then
    echo "# the packages in dist/"
else
    check "dist/linux-x64 and dist/linux-arm64 binaries to package" \
        test -x "$root/dist/linux-x64/check_ephemeral_ports" -a -x "$root/dist/linux-arm64/check_ephemeral_ports" -a -x "$root/dist/check_ephemeral_ports" || exit 1
    check "src/packaging/make-packages.sh" quiet "$T/make-packages.log" "$root/src/packaging/make-packages.sh" || exit 1
fi
check "both architectures' .deb and .rpm of $version" have_all || exit 1
for f in "${debs[@]}"; do
    check "$(basename "$f"): Version $version-1, Maintainer from src/packaging/maintainer" \
        test "$(dpkg-deb -f "$f" Version)" = "$version-1" -a "$(dpkg-deb -f "$f" Maintainer)" = "$maintainer"
done
for f in "${rpms[@]}"; do
    check "$(basename "$f"): version $version-1, Packager from src/packaging/maintainer" \
        test "$(rpm -qp --qf '%{VERSION}-%{RELEASE}|%{PACKAGER}' "$f" 2>/dev/null)" = "$version-1|$maintainer"
done

# --- the repositories ------------------------------------------------------------------------------------
repo=$T/repo
check "src/packaging/make-repos.sh $repo" quiet "$T/make-repos.log" "$root/src/packaging/make-repos.sh" "$repo" ||
    { sed 's/^/#   /' "$T/make-repos.log"; exit 1; }
check "SHA256SUMS covers every file of both repositories and verifies" \
    sh -c "cd '$repo' && sha256sum --quiet -c SHA256SUMS && [ \"\$(find apt yum -type f | wc -l)\" = \"\$(wc -l <SHA256SUMS)\" ]"
check "the apt index lists amd64 and arm64, version $version-1" \
    sh -c "[ \"\$(grep -c '^Version: $version-1\$' '$repo/apt/Packages')\" = 2 ] && grep -qx 'Architecture: amd64' '$repo/apt/Packages' && grep -qx 'Architecture: arm64' '$repo/apt/Packages'"

# yum: repomd.xml names primary.xml.gz with its checksum; primary lists both packages with the
# version, the file and the file's checksum (what dnf/yum check before installing).
python3 - "$repo/yum" "$version" <<'EOF'
import gzip, hashlib, os, sys, xml.etree.ElementTree as ET
top, version = sys.argv[1:]
failed = False
def ok(cond, what):
    global failed
    print(("ok - " if cond else "not ok - ") + what)
    failed |= not cond
R = "{http://linux.duke.edu/metadata/repo}"
C = "{http://linux.duke.edu/metadata/common}"
repomd = ET.parse(os.path.join(top, "repodata/repomd.xml")).getroot()
data = {d.get("type"): d for d in repomd.findall(R + "data")}
ok({"primary", "filelists", "other"} <= set(data), "yum repomd.xml: primary, filelists, other (%s)" % " ".join(sorted(data)))
primary = data["primary"]
href = primary.find(R + "location").get("href")
path = os.path.join(top, href)
raw = open(path, "rb").read()
ck = primary.find(R + "checksum")
ok(ck.get("type") == "sha256" and hashlib.sha256(raw).hexdigest() == ck.text,
   "yum repomd.xml: %s has its sha256" % href)
ok(href.endswith(".xml.gz"), "yum primary metadata is gzip (RHEL 7's yum reads it)")
root = ET.fromstring(gzip.decompress(raw))
pkgs = {}
for p in root.findall(C + "package"):
    pkgs[(p.find(C + "name").text, p.find(C + "arch").text)] = p
for arch in ("x86_64", "aarch64"):
    p = pkgs.get(("check-ephemeral-ports", arch))
    ok(p is not None, "yum primary: check-ephemeral-ports.%s" % arch)
    if p is None:
        continue
    v = p.find(C + "version")
    ok(v.get("ver") == version and v.get("rel") == "1", "yum primary: %s version %s-%s" % (arch, v.get("ver"), v.get("rel")))
    loc = p.find(C + "location").get("href")
    f = os.path.join(top, loc)
    ok(os.path.isfile(f), "yum primary: %s location %s exists" % (arch, loc))
    pk = p.find(C + "checksum")
    ok(os.path.isfile(f) and pk.get("type") == "sha256" and hashlib.sha256(open(f, "rb").read()).hexdigest() == pk.text,
       "yum primary: %s checksum matches the file" % arch)
ok(int(root.get("packages", "0")) == 2, "yum primary: 2 packages in all")
sys.exit(1 if failed else 0)
EOF
[ $? = 0 ] || failed=1

# --- a Debian 12 root installs from the apt repository --------------------------------------------------
# The same cached root as package_systemd.sh (lib/debian_root.sh): made once by whichever runs first.
. "$(dirname "$0")/lib/debian_root.sh"
need_debian_root
cache=$debian_root
arch=$(dpkg --print-architecture)
R=$T/root
mkdir -p "$R" "$T/root.upper" "$T/root.work"
check "an overlay of the cached Debian 12 root" sh -c "
    mount -t overlay overlay -o 'lowerdir=$cache,upperdir=$T/root.upper,workdir=$T/root.work' '$R'" && mounts+=("$R") || exit 1
mount -t proc proc "$R/proc" && mounts+=("$R/proc")
mkdir -p "$R/srv/repo" && mount --bind "$repo" "$R/srv/repo" && mounts+=("$R/srv/repo")
printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d" && chmod 755 "$R/usr/sbin/policy-rc.d"
# Only the local repository: no network, nothing from the Debian mirror.
rm -f "$R"/etc/apt/sources.list.d/*
echo 'deb [trusted=yes] file:/srv/repo/apt ./' >"$R/etc/apt/sources.list"
in_root() {
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive HOME=/root \
        timeout 300 chroot "$R" "$@"
}
check "apt-get update reads the local repository" quiet "$T/apt-update.log" in_root apt-get update ||
    sed 's/^/#   /' "$T/apt-update.log"
check "apt-cache policy: check-ephemeral-ports $version-1 from file:/srv/repo/apt" \
    sh -c "env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot '$R' apt-cache policy check-ephemeral-ports | grep -q 'Candidate: $version-1'"
check "apt-get install check-ephemeral-ports" quiet "$T/apt-install.log" in_root apt-get install -y check-ephemeral-ports ||
    sed 's/^/#   /' "$T/apt-install.log"
check "installed: $(in_root dpkg-query -W -f '${Package} ${Version} ${Architecture}' check-ephemeral-ports 2>&1)" \
    test "$(in_root dpkg-query -W -f '${Version} ${Architecture}' check-ephemeral-ports 2>/dev/null)" = "$version-1 $arch"
check "the runbook and nagios4's command file are installed" \
    test -s "$R/usr/share/doc/check-ephemeral-ports/runbook.md" -a -s "$R/etc/nagios-plugins/config/check_ephemeral_ports.cfg"
out=$(in_root /usr/lib/nagios/plugins/check_ephemeral_ports 2>&1)
rc=$?
check "the installed plugin runs in the root: exit $rc, ${out%%$'\n'*}" \
    sh -c "[ $rc -le 3 ] && printf '%s\n' \"\$1\" | head -n 1 | grep -q '^EPHEMERAL PORTS [A-Z]* - '" sh "$out"
check "apt-get remove check-ephemeral-ports" quiet "$T/apt-remove.log" in_root apt-get remove -y check-ephemeral-ports
exit $failed
