#!/usr/bin/env bash
# src/packaging/make-repos.sh [OUTDIR]: package repositories from the packages in dist/ (made by
# src/packaging/make-packages.sh), in OUTDIR (default dist/repo):
#   OUTDIR/apt/   a flat apt repository: both .deb, Packages, Packages.gz and Release (apt-ftparchive);
#                 apt reads it as   deb [trusted=yes] file:/PATH/apt ./   (or over http)
#   OUTDIR/yum/   a yum/dnf repository: both .rpm and repodata/ (createrepo_c, gzip metadata, which
#                 yum on RHEL 7 reads too); baseurl=file:///PATH/yum (or http), gpgcheck=0
#   OUTDIR/SHA256SUMS   every file of both repositories
# Neither repository is signed: the project has no signing key yet ([trusted=yes], gpgcheck=0).
# Run by `./build.sh release`, which installed apt-utils and createrepo-c.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DIST=$ROOT/dist
OUT=${1:-$DIST/repo}
case $OUT in /*) ;; *) OUT=$ROOT/$OUT ;; esac

log() { printf '==> %s\n' "$*"; }
die() { echo "make-repos.sh: $*" >&2; exit 1; }

version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props)
debs=("$DIST"/check-ephemeral-ports_"$version"-1_{amd64,arm64}.deb)
rpms=("$DIST"/check-ephemeral-ports-"$version"-1.{x86_64,aarch64}.rpm)
for f in "${debs[@]}" "${rpms[@]}"; do
    [ -f "$f" ] || die "no $f: run ./build.sh package (or src/packaging/make-packages.sh) first"
done
command -v apt-ftparchive >/dev/null || die "apt-ftparchive is missing (apt-utils)"
command -v createrepo_c >/dev/null || die "createrepo_c is missing (createrepo-c)"

rm -rf "$OUT"
mkdir -p "$OUT/apt" "$OUT/yum"
cp "${debs[@]}" "$OUT/apt/"
cp "${rpms[@]}" "$OUT/yum/"

# apt: the index of the directory itself ("./"), then its Release with the indexes' checksums.
(
    cd "$OUT/apt"
    apt-ftparchive packages . >Packages
    gzip -9n -c Packages >Packages.gz
    apt-ftparchive -o APT::FTPArchive::Release::Origin=check_ephemeral_ports \
        -o APT::FTPArchive::Release::Label=check_ephemeral_ports \
        -o APT::FTPArchive::Release::Architectures="amd64 arm64" release . >../Release.apt
)
# Written beside the directory first: apt-ftparchive would list a Release it is writing.
mv "$OUT/Release.apt" "$OUT/apt/Release"
log "apt repository $OUT/apt ($(grep -c '^Package:' "$OUT/apt/Packages") packages)"

# yum: gzip-compressed metadata, no sqlite databases (dnf and yum build their own caches).
createrepo_c --quiet --general-compress-type=gz --no-database "$OUT/yum" >/dev/null
log "yum repository $OUT/yum"

(cd "$OUT" && find apt yum -type f -print0 | sort -z | xargs -0 sha256sum >SHA256SUMS)
log "wrote $OUT/SHA256SUMS"
