#!/usr/bin/env bash
# Makes (once) and prints the path of a directory holding the BPF reader's static libraries for
# ARCH (amd64 or arm64) as Debian builds them: libbpf.a (with libbpf's headers), libelf.a, libz.a
# and libzstd.a from the build host's Debian release (the release whose libbpf-dev the host's own
# build uses), unpacked from the ARCH packages by src/build/fetch-deb.sh, never installed.
#
#   src/build/bpf-libs.sh arm64    /var/cache/check-ephemeral-ports/bpf-libs-bookworm-arm64-r1-<key>
#                                  with usr/lib/aarch64-linux-gnu/*.a and usr/include/bpf/
#
# For a cross build (./build.sh's arm64 binary on an amd64 host, or the other way round): the host's
# own libbpf-dev and friends are the host's architecture. The archives were compiled against the
# release's glibc, not the Debian 11 sysroot's: the few libc symbols above the glibc floor they
# refer to are bound down by src/build/glibc-compat.c and cep_bpf.c's CEP_FCNTL64_SHIM, and
# ./build.sh checks the linked binary. Cached like the sysroots: the key names the release, the
# architecture and the packages, so a change of any of them makes a new directory.
set -euo pipefail

PACKAGES=libbpf-dev,libelf-dev,zlib1g-dev,libzstd-dev
# Bumped when the recipe below changes in a way the names above do not show.
RECIPE=1

arch=${1:?usage: src/build/bpf-libs.sh amd64|arm64}
case $arch in amd64|arm64) ;; *) echo "bpf-libs.sh: unknown architecture $arch" >&2; exit 2 ;; esac
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$suite" ] || { echo "bpf-libs.sh: /etc/os-release names no Debian release (VERSION_CODENAME)" >&2; exit 1; }
cache=${CHECK_EPHEMERAL_PORTS_CACHE:-/var/cache/check-ephemeral-ports}
key=$suite-$arch-r$RECIPE-$(printf '%s' "$PACKAGES" | sha256sum | cut -c1-12)
dir=$cache/bpf-libs-$key

if [ -f "$dir/.complete" ]; then echo "$dir"; exit 0; fi
log() { printf '==> %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { echo "bpf-libs.sh: making $dir needs root (apt-get)" >&2; exit 1; }
mkdir -p "$cache"
# One maker at a time; the second waits, then finds it made.
exec 9>"$cache/.bpf-libs.lock"
flock 9
if [ -f "$dir/.complete" ]; then echo "$dir"; exit 0; fi
work=$dir.partial
rm -rf "$work"
mkdir -p "$work"
log "unpacking $suite's $PACKAGES for $arch into $work (once; cached as $dir)"
"$(dirname "$0")/fetch-deb.sh" "$suite" "$PACKAGES" "$arch" "$work"
multiarch=$(case $arch in amd64) echo x86_64-linux-gnu ;; arm64) echo aarch64-linux-gnu ;; esac)
for a in libbpf.a libelf.a libz.a libzstd.a; do
    [ -f "$work/usr/lib/$multiarch/$a" ] || { echo "bpf-libs.sh: the packages held no usr/lib/$multiarch/$a" >&2; exit 1; }
done
[ -f "$work/usr/include/bpf/libbpf.h" ] || { echo "bpf-libs.sh: libbpf-dev held no usr/include/bpf/libbpf.h" >&2; exit 1; }
while read -r line; do log "  $line"; done <"$work/.fetched-debs"
touch "$work/.complete"
rm -rf "$dir"
mv "$work" "$dir"
log "made $dir"
echo "$dir"
