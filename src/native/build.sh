#!/usr/bin/env bash
# Builds the native BPF socket reader: artifacts/native/libcep_bpf.a (loader + embedded CO-RE
# object) and artifacts/native/cep_bpf_dump (a test driver). Installs its Debian packages when run
# as root and they are missing. Fast when up to date (nothing is rebuilt unless a source changed).
#   src/native/build.sh [OUT_DIR]        default OUT_DIR: artifacts/native of the repository
# CC and CEP_CFLAGS (e.g. "--sysroot=... -DCEP_FCNTL64_SHIM" for an older glibc) reach the loader's
# compile; a change of either rebuilds it.
# Another architecture's loader (./build.sh's arm64 binary on an amd64 host): CEP_TARGET is its
# clang triple (aarch64-linux-gnu, x86_64-linux-gnu), CC must be clang and CEP_CFLAGS name that
# architecture's sysroot, CEP_LIBDIR holds its libbpf.a, libelf.a, libz.a and libzstd.a
# (src/build/bpf-libs.sh), and CEP_BPF_DIR is the host build's OUT_DIR: the BPF object is BPF
# bytecode, the same for every architecture (checked below), so it is compiled once, there, and
# every architecture's loader embeds that one object (and its build id).
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

CROSS=${CEP_TARGET:-}
if [ -n "$CROSS" ]; then
    [ -n "${CEP_LIBDIR:-}" ] || { echo "src/native/build.sh: CEP_TARGET=$CROSS needs CEP_LIBDIR (that architecture's static libraries)" >&2; exit 1; }
    LIBDIR=$CEP_LIBDIR
else
    LIBDIR=${CEP_LIBDIR:-/usr/lib/$(gcc -print-multiarch)}
fi
ARCHIVES=("$LIBDIR/libbpf.a" "$LIBDIR/libelf.a" "$LIBDIR/libz.a" "$LIBDIR/libzstd.a")
for a in "${ARCHIVES[@]}"; do
    [ -f "$a" ] || { echo "src/native/build.sh: $a is missing" >&2; exit 1; }
done
BPF_DIR=${CEP_BPF_DIR:-$OUT}
mkdir -p "$BPF_DIR"
BPF_DIR=$(cd "$BPF_DIR" && pwd)
BPFTOOL=$(command -v bpftool || echo /usr/sbin/bpftool)
case $(uname -m) in
    x86_64) TARGET_ARCH=x86 OTHER_ARCH=arm64 ;;
    aarch64) TARGET_ARCH=arm64 OTHER_ARCH=x86 ;;
    *) TARGET_ARCH=$(uname -m) OTHER_ARCH=x86 ;;
esac

# vmlinux.h: the build host's kernel types (CO-RE relocates the field offsets at load time, so
# any BTF kernel will do; /sys/kernel/btf/vmlinux is the running one's). Kept while the kernel's
# BTF is the same, so an up-to-date build does nothing.
# The numbers shared with C# are defined once, in cep_abi.h: the C# file made from it must be current.
"$HERE/abi_cs.sh" --check

BTF=/sys/kernel/btf/vmlinux
[ -r "$BTF" ] || { echo "src/native/build.sh: $BTF is missing: the build host's kernel has no BTF" >&2; exit 1; }
btf_id=$(uname -r)-$(stat -c %s "$BTF")
if [ ! -f "$BPF_DIR/vmlinux.h" ] || [ "$(cat "$BPF_DIR/vmlinux.h.id" 2>/dev/null)" != "$btf_id" ]; then
    log "vmlinux.h from $BTF"
    "$BPFTOOL" btf dump file "$BTF" format c > "$BPF_DIR/vmlinux.h.tmp"
    mv "$BPF_DIR/vmlinux.h.tmp" "$BPF_DIR/vmlinux.h"
    echo "$btf_id" > "$BPF_DIR/vmlinux.h.id"
fi

newer() { # target sources...: true when target is missing or older than any source
    local t=$1; shift
    [ -f "$t" ] || return 0
    local s
    for s in "$@"; do [ "$s" -nt "$t" ] && return 0; done
    return 1
}

if newer "$BPF_DIR/ports.bpf.o" "$HERE/ports.bpf.c" "$HERE/cep_record.h" "$HERE/cep_abi.h" "$BPF_DIR/vmlinux.h"; then
    log "clang -target bpf ports.bpf.c"
    clang -target bpf -g -O2 -D__TARGET_ARCH_"$TARGET_ARCH" -I"$BPF_DIR" -I"$HERE" \
        -c "$HERE/ports.bpf.c" -o "$BPF_DIR/ports.bpf.o.tmp"
    # BTF and CO-RE relocations stay (.BTF, .BTF.ext); the DWARF goes.
    llvm-strip -g "$BPF_DIR/ports.bpf.o.tmp"
    # One object for every architecture's loader: nothing in it may depend on the target
    # architecture (bpf_tracing.h's PT_REGS would; the iterators' context and every kernel struct
    # read through vmlinux.h are CO-RE-relocated at load time). Proved by compiling it for the
    # other architecture too: the two objects must be the same bytes.
    clang -target bpf -g -O2 -D__TARGET_ARCH_"$OTHER_ARCH" -I"$BPF_DIR" -I"$HERE" \
        -c "$HERE/ports.bpf.c" -o "$BPF_DIR/ports.bpf.o.other"
    llvm-strip -g "$BPF_DIR/ports.bpf.o.other"
    if ! cmp -s "$BPF_DIR/ports.bpf.o.tmp" "$BPF_DIR/ports.bpf.o.other"; then
        echo "src/native/build.sh: ports.bpf.o differs between __TARGET_ARCH_$TARGET_ARCH and __TARGET_ARCH_$OTHER_ARCH:" \
            "the BPF program uses something architecture-specific, so one object cannot serve every binary" >&2
        exit 1
    fi
    rm -f "$BPF_DIR/ports.bpf.o.other"
    mv "$BPF_DIR/ports.bpf.o.tmp" "$BPF_DIR/ports.bpf.o"
fi
if newer "$BPF_DIR/ports.skel.h" "$BPF_DIR/ports.bpf.o"; then
    "$BPFTOOL" gen skeleton "$BPF_DIR/ports.bpf.o" name cep_ports > "$BPF_DIR/ports.skel.h.tmp"
    mv "$BPF_DIR/ports.skel.h.tmp" "$BPF_DIR/ports.skel.h"
fi
build_id=$(sha256sum "$BPF_DIR/ports.bpf.o" | cut -c1-16)

CC=${CC:-gcc}
# shellcheck disable=SC2206  # CEP_CFLAGS is a list of flags
CFLAGS=(${CROSS:+--target=$CROSS} ${CEP_CFLAGS:-} -O2 -fPIC -Wall -Wextra -Werror -D_FORTIFY_SOURCE=2
        -I"$BPF_DIR" -I"$HERE" -DCEP_BPF_BUILD_ID="\"$build_id\"")
# The host's linker links the host's architecture only; clang's lld links any.
LDFLAGS=(${CROSS:+-fuse-ld=lld})
# the reasons are cut to the caller's buffer on purpose (gcc warns, clang has no such warning)
if "$CC" -Werror -Wno-format-truncation -E -x c /dev/null >/dev/null 2>&1; then
    CFLAGS+=(-Wno-format-truncation)
fi
# The record crosses from the BPF program (target bpf) to the loader's architecture as raw bytes:
# every field must sit where src/native/README.md says, for both compilers (cep_bpf.c asserts a
# few; this asserts all, for the target being built and for bpf, at every build: it is cheap).
layout_check() {
    cat <<'C'
#include "cep_record.h"
#define AT(f, o) _Static_assert(__builtin_offsetof(struct cep_record, f) == (o), "cep_record." #f " is not at " #o);
AT(family, 0) AT(state, 1) AT(protocol, 2) AT(flags, 3) AT(fastreuse, 4) AT(fastreuseport, 5)
AT(lport, 6) AT(rport, 8) AT(range_lo, 10) AT(range_hi, 12) AT(userlocks, 14) AT(reserved, 15)
AT(tw_age_ms, 16) AT(inode, 20) AT(uid, 24) AT(laddr, 28) AT(raddr, 44) AT(tw_ts_recent_stamp, 60)
AT(bound_dev_if, 64)
_Static_assert(sizeof(struct cep_record) == 68, "cep_record is not 68 bytes");
_Static_assert(sizeof(((struct cep_record *)0)->tw_age_ms) == 4 && sizeof(((struct cep_record *)0)->lport) == 2,
               "cep_record's field sizes");
C
}
layout_check | "$CC" "${CFLAGS[@]}" -fsyntax-only -x c - ||
    { echo "src/native/build.sh: struct cep_record has another layout for ${CROSS:-the host}" >&2; exit 1; }
layout_check | clang -target bpf -I"$HERE" -fsyntax-only -x c - ||
    { echo "src/native/build.sh: struct cep_record has another layout for the BPF target" >&2; exit 1; }
flags_id="$CC ${CFLAGS[*]}"
if newer "$OUT/libcep_bpf.a" "$HERE/cep_bpf.c" "$HERE/cep_bpf.h" "$HERE/cep_record.h" "$HERE/cep_abi.h" "$BPF_DIR/ports.skel.h" "$HERE/build.sh" \
        "$HERE/outline-atomics.c" ||
    [ "$(cat "$OUT/libcep_bpf.a.flags" 2>/dev/null)" != "$flags_id" ]; then
    log "cc cep_bpf.c (build id $build_id${CROSS:+, for $CROSS})"
    "$CC" "${CFLAGS[@]}" -c "$HERE/cep_bpf.c" -o "$OUT/cep_bpf.o"
    objects=("$OUT/cep_bpf.o")
    # AArch64: the libgcc helper Debian 12's libbpf.a calls that the sysroot's libgcc lacks.
    predefined=$("$CC" "${CFLAGS[@]}" -dM -E -x c /dev/null)
    if grep -q '^#define __aarch64__ ' <<<"$predefined"; then
        "$CC" "${CFLAGS[@]}" -mno-outline-atomics -c "$HERE/outline-atomics.c" -o "$OUT/outline-atomics.o"
        objects+=("$OUT/outline-atomics.o")
    fi
    rm -f "$OUT/libcep_bpf.a"
    llvm-ar rcs "$OUT/libcep_bpf.a" "${objects[@]}"
    echo "$flags_id" >"$OUT/libcep_bpf.a.flags"
fi
if newer "$OUT/cep_bpf_dump" "$HERE/cep_bpf_dump.c" "$OUT/libcep_bpf.a"; then
    "$CC" "${CFLAGS[@]}" "${LDFLAGS[@]}" "$HERE/cep_bpf_dump.c" -o "$OUT/cep_bpf_dump" "$OUT/libcep_bpf.a" \
        "${ARCHIVES[@]}" -lpthread
fi
echo "link: $OUT/libcep_bpf.a ${ARCHIVES[*]}"
