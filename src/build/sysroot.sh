#!/usr/bin/env bash
# Makes (once) and prints the path of a Debian 11 (bullseye, glibc 2.31) root for ARCH (amd64 or
# arm64), used as the sysroot of the native link so that the binary needs nothing newer than the
# oldest glibc it supports (2.17, see src/build/glibc-compat.c). The roots are cached outside the
# repository, under /var/cache/check-ephemeral-ports/, by a key that names everything that goes
# into them: change SYSROOT_PACKAGES or the suite and the key changes, so a new root is made.
#
#   src/build/sysroot.sh amd64     a whole minbase root: also the Debian 11 system the tests chroot into
#   src/build/sysroot.sh arm64     a foreign root: its packages unpacked, never configured (nothing in it
#                               runs; the link needs only its headers, crt files and libraries)
#
# The link's static libraries and headers come from here: a library added to the link (the BPF
# reader's libbpf.a, libelf.a, libz.a) is one more package in SYSROOT_PACKAGES, or, for a newer
# release's library, one more entry in SYSROOT_EXTRA_DEBS (suite:package, comma-separated,
# unpacked on top by src/build/fetch-deb.sh), e.g. bookworm:libbpf-dev,bookworm:libelf-dev: bullseye's
# libbpf 0.3 cannot parse a 6.x kernel's BTF. Either changes the cache key, so a new root is made.
set -euo pipefail

SUITE=bullseye
# What the link needs from the target: the C library's headers, crt files and libc_nonshared.a,
# libgcc's crtbegin.o and libgcc.a, and zlib (the runtime's compression support links -lz).
SYSROOT_PACKAGES=libc6-dev,libgcc-10-dev,zlib1g-dev
SYSROOT_EXTRA_DEBS=
# Bumped when the recipe below changes in a way the names above do not show.
RECIPE=1

arch=${1:?usage: src/build/sysroot.sh amd64|arm64}
case $arch in amd64|arm64) ;; *) echo "sysroot.sh: unknown architecture $arch" >&2; exit 2 ;; esac
cache=${CHECK_EPHEMERAL_PORTS_CACHE:-/var/cache/check-ephemeral-ports}
key=$SUITE-$arch-r$RECIPE-$(printf '%s;%s' "$SYSROOT_PACKAGES" "$SYSROOT_EXTRA_DEBS" | sha256sum | cut -c1-12)
dir=$cache/sysroot-$key

# A root is complete once its stamp is there; anything else under that name is a broken attempt.
if [ -f "$dir/.complete" ]; then echo "$dir"; exit 0; fi

log() { printf '==> %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { echo "sysroot.sh: making $dir needs root (debootstrap)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "sysroot.sh: debootstrap is not installed" >&2; exit 1; }
mkdir -p "$cache"
# One maker at a time (two builds, or a build and a test): the second waits, then finds it made.
exec 9>"$cache/.sysroot.lock"
flock 9
if [ -f "$dir/.complete" ]; then echo "$dir"; exit 0; fi
work=$dir.partial
rm -rf "$work"
host=$(dpkg --print-architecture)
log "debootstrap $SUITE $arch into $work (once; cached as $dir)"
if [ "$arch" = "$host" ]; then
    debootstrap --variant=minbase --include="$SYSROOT_PACKAGES" "$SUITE" "$work" >"$work.log" 2>&1 ||
        { echo "sysroot.sh: debootstrap failed, see $work.log" >&2; exit 1; }
else
    # First stage only: it downloads every package the include list needs but unpacks only the
    # essential ones; the rest are unpacked here without their maintainer scripts.
    debootstrap --foreign --arch="$arch" --variant=minbase --include="$SYSROOT_PACKAGES" "$SUITE" "$work" \
        >"$work.log" 2>&1 || { echo "sysroot.sh: debootstrap failed, see $work.log" >&2; exit 1; }
    for deb in "$work"/var/cache/apt/archives/*.deb; do dpkg-deb -x "$deb" "$work"; done
fi
# Packages of a later release, unpacked over the root (static libraries the old one lacks).
for spec in ${SYSROOT_EXTRA_DEBS//,/ }; do
    log "unpacking $spec into the $arch root"
    "$(dirname "$0")/fetch-deb.sh" "${spec%%:*}" "${spec#*:}" "$arch" "$work"
done
rm -rf "$work"/var/cache/apt/archives/*.deb
# Absolute symlinks (libc.so's libm.so -> /lib/...) would point into the build host when the root
# is a sysroot: make each relative to where it stands.
find "$work" -type l -lname '/*' -print0 | while IFS= read -r -d '' link; do
    target=$(readlink "$link")
    ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$work$target")" "$link"
done
touch "$work/.complete"
rm -rf "$dir"
mv "$work" "$dir"
mv "$work.log" "$dir.log"
log "made $dir"
echo "$dir"
