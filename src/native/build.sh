#!/usr/bin/env bash
# Builds the native BPF socket reader: artifacts/native/libcep_bpf.a (loader + embedded CO-RE
# object) and artifacts/native/cep_bpf_dump (a test driver). Installs its Debian packages when run
# as root and they are missing. Fast when up to date (nothing is rebuilt unless a source changed).
#   src/native/build.sh [OUT_DIR]        default OUT_DIR: artifacts/native of the repository
# CC and CEP_CFLAGS (e.g. "--sysroot=... -DCEP_FCNTL64_SHIM" for an older glibc) reach the loader's
# compile; a change of either rebuilds it.
# Prints the link inputs on its last line: "link: <libcep_bpf.a> <libbpf.a> <libelf.a> <libz.a> <libzstd.a>".
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:-$ROOT/artifacts/native}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

log() { printf '==> %s\n' "$*"; }

PACKAGES=(clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev libzstd-dev gcc libc6-dev)
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "src/native/build.sh: missing Debian packages (run as root to install): ${missing[*]}" >&2
        exit 1
    fi
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 \
        "${missing[@]}" >/dev/null || {
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 \
            "${missing[@]}" >/dev/null
    }
fi

LIBDIR=/usr/lib/$(gcc -print-multiarch)
ARCHIVES=("$LIBDIR/libbpf.a" "$LIBDIR/libelf.a" "$LIBDIR/libz.a" "$LIBDIR/libzstd.a")
for a in "${ARCHIVES[@]}"; do
    [ -f "$a" ] || { echo "src/native/build.sh: $a is missing" >&2; exit 1; }
done
BPFTOOL=$(command -v bpftool || echo /usr/sbin/bpftool)
case $(uname -m) in
    x86_64) TARGET_ARCH=x86 ;;
    aarch64) TARGET_ARCH=arm64 ;;
    *) TARGET_ARCH=$(uname -m) ;;
esac

# vmlinux.h: the build host's kernel types (CO-RE relocates the field offsets at load time, so
# any BTF kernel will do; /sys/kernel/btf/vmlinux is the running one's). Kept while the kernel's
# BTF is the same, so an up-to-date build does nothing.
BTF=/sys/kernel/btf/vmlinux
[ -r "$BTF" ] || { echo "src/native/build.sh: $BTF is missing: the build host's kernel has no BTF" >&2; exit 1; }
btf_id=$(uname -r)-$(stat -c %s "$BTF")
if [ ! -f "$OUT/vmlinux.h" ] || [ "$(cat "$OUT/vmlinux.h.id" 2>/dev/null)" != "$btf_id" ]; then
    log "vmlinux.h from $BTF"
    "$BPFTOOL" btf dump file "$BTF" format c > "$OUT/vmlinux.h.tmp"
    mv "$OUT/vmlinux.h.tmp" "$OUT/vmlinux.h"
    echo "$btf_id" > "$OUT/vmlinux.h.id"
fi

newer() { # target sources...: true when target is missing or older than any source
    local t=$1; shift
    [ -f "$t" ] || return 0
    local s
    for s in "$@"; do [ "$s" -nt "$t" ] && return 0; done
    return 1
}

if newer "$OUT/ports.bpf.o" "$HERE/ports.bpf.c" "$HERE/cep_record.h" "$OUT/vmlinux.h"; then
    log "clang -target bpf ports.bpf.c"
    clang -target bpf -g -O2 -D__TARGET_ARCH_$TARGET_ARCH -I"$OUT" -I"$HERE" \
        -c "$HERE/ports.bpf.c" -o "$OUT/ports.bpf.o.tmp"
    # BTF and CO-RE relocations stay (.BTF, .BTF.ext); the DWARF goes.
    llvm-strip -g "$OUT/ports.bpf.o.tmp"
    mv "$OUT/ports.bpf.o.tmp" "$OUT/ports.bpf.o"
fi
if newer "$OUT/ports.skel.h" "$OUT/ports.bpf.o"; then
    "$BPFTOOL" gen skeleton "$OUT/ports.bpf.o" name cep_ports > "$OUT/ports.skel.h.tmp"
    mv "$OUT/ports.skel.h.tmp" "$OUT/ports.skel.h"
fi
build_id=$(sha256sum "$OUT/ports.bpf.o" | cut -c1-16)

CC=${CC:-gcc}
# shellcheck disable=SC2206  # CEP_CFLAGS is a list of flags
CFLAGS=(${CEP_CFLAGS:-} -O2 -fPIC -Wall -Wextra -Werror -D_FORTIFY_SOURCE=2 -I"$OUT" -I"$HERE"
        -DCEP_BPF_BUILD_ID="\"$build_id\"")
# the reasons are cut to the caller's buffer on purpose (gcc warns, clang has no such warning)
if "$CC" -Werror -Wno-format-truncation -E -x c /dev/null >/dev/null 2>&1; then
    CFLAGS+=(-Wno-format-truncation)
fi
flags_id="$CC ${CFLAGS[*]}"
if newer "$OUT/libcep_bpf.a" "$HERE/cep_bpf.c" "$HERE/cep_bpf.h" "$HERE/cep_record.h" "$OUT/ports.skel.h" "$HERE/build.sh" ||
    [ "$(cat "$OUT/libcep_bpf.a.flags" 2>/dev/null)" != "$flags_id" ]; then
    log "cc cep_bpf.c (build id $build_id)"
    "$CC" "${CFLAGS[@]}" -c "$HERE/cep_bpf.c" -o "$OUT/cep_bpf.o"
    rm -f "$OUT/libcep_bpf.a"
    ar rcs "$OUT/libcep_bpf.a" "$OUT/cep_bpf.o"
    echo "$flags_id" >"$OUT/libcep_bpf.a.flags"
fi
if newer "$OUT/cep_bpf_dump" "$HERE/cep_bpf_dump.c" "$OUT/libcep_bpf.a"; then
    "$CC" "${CFLAGS[@]}" "$HERE/cep_bpf_dump.c" -o "$OUT/cep_bpf_dump" "$OUT/libcep_bpf.a" \
        "${ARCHIVES[@]}" -lpthread
fi
echo "link: $OUT/libcep_bpf.a ${ARCHIVES[*]}"
