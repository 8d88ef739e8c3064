#!/usr/bin/env bash
# The arm64 binary (dist/linux-arm64/check_ephemeral_ports) under qemu-user (Debian's
# qemu-user-static), with the Debian 11 arm64 root it was linked against as its library root:
# every fixture with --source proc gives the fixture's expected output and exit code, the live
# /proc is read, and netlink, which qemu-user refuses (NETLINK_SOCK_DIAG sockets give
# EPROTONOSUPPORT), falls back to /proc/net under --source auto and says what was refused.
# Also: the binary is an aarch64 executable needing no glibc symbol above 2.17.
# The BPF reader (issue 19): the arm64 binary embeds the very BPF object the x86_64 binary does
# (same bytes, same build id, CO-RE relocations for both iterators), and as root under qemu it
# gets as far as qemu lets it: qemu-user has no bpf(2) (linux-user forwards no unknown syscall,
# it answers ENOSYS itself, seen with its own -strace), so the load is refused there and the
# plugin must name that refusal, at --source bpf and at -v; the kernel is never asked.
# CHECK_EPHEMERAL_PORTS_ARM64_BIN tests another arm64 binary (its ../linux-x64/ beside it is the
# x86_64 one compared with it).
set -uo pipefail
# In a private mount namespace with no bpffs on /sys/fs/bpf: the pins a root run of the x86_64
# binary leaves there hold the same program (one BPF object for both architectures), and opening a
# pin needs no bpf(2), so the arm64 binary under qemu would read through them. What is tested here
# is the load path, which qemu refuses. The host's mounts are not touched.
if [ -z "${CEP_ARM64_UNSHARED:-}" ] && [ "$(id -u)" = 0 ]; then
    CEP_ARM64_UNSHARED=1 exec unshare --mount --propagation private -- bash "$0" "$@"
fi
if [ -n "${CEP_ARM64_UNSHARED:-}" ]; then
    for _ in 1 2 3 4; do umount /sys/fs/bpf 2>/dev/null || break; done
fi
. "$(dirname "$0")/lib/common.sh"
arm=${CHECK_EPHEMERAL_PORTS_ARM64_BIN:-$root/dist/linux-arm64/check_ephemeral_ports}
x64=$(dirname "$arm")/../linux-x64/check_ephemeral_ports
floor=2.17

setup_temp_dir
check "arm64 binary $arm exists" test -x "$arm" || exit 1
check "install qemu-user-static python3 bpftool llvm" need_packages qemu-user-static python3 bpftool llvm || exit 1
qemu=/usr/bin/qemu-aarch64-static
# The root the binary was linked against: made by ./build.sh, found again through the cache key.
if ! armroot=$("$root/src/build/sysroot.sh" arm64 2>"$T/sysroot.log"); then
    not_ok "the arm64 Debian 11 root: $(tail -n 3 "$T/sysroot.log")"; exit 1
fi
ok "arm64 Debian 11 root at $armroot"
armlibs=$(qemu_libs "$armroot" "$T/armlibs")
run_arm() { "$qemu" -L "$armlibs" "$arm" "$@"; }

check "it is an aarch64 ELF executable" sh -c "readelf -h '$arm' | grep -q 'Machine:.*AArch64'"
needed=$(objdump -T "$arm" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1)
check "needs at most GLIBC_$floor (newest: $needed)" test "$(printf '%s\n%s\n' "${needed#GLIBC_}" "$floor" | sort -V | tail -n 1)" = "$floor"
check "it runs under qemu with the Debian 11 arm64 libraries" sh -c "'$qemu' -L '$armlibs' '$arm' --version | grep -q '^check_ephemeral_ports '"

# The fixtures, as tests/EphemeralPorts.Tests/Cli/FixtureTests.cs runs them (cwd = the scenario,
# --proc-root proc, then args), with --source proc said explicitly.
for dir in "$fixtures"/*/; do
    scenario=$(basename "$dir")
    [ -f "$dir/args" ] || continue
    mapfile -t args < <(grep -v '^$' "$dir/args")
    out=$(cd "$dir" && run_arm --proc-root proc --source proc "${args[@]}" 2>"$T/$scenario.err"); code=$?
    if [ "$out"$'\n' = "$(cat "$dir/expected_stdout")"$'\n' ] && [ "$code" = "$(tr -d '[:space:]' <"$dir/expected_exit")" ] && [ ! -s "$T/$scenario.err" ]; then
        ok "fixture $scenario under qemu: expected output and exit $code"
    else
        printf '%s\n' "$out" >"$T/$scenario.out"
        not_ok "fixture $scenario under qemu: exit $code (expected $(cat "$dir/expected_exit")), output in $T/$scenario.out, stderr $(head -c 300 "$T/$scenario.err")"
    fi
done

# The live /proc through the tables.
out=$(run_arm --source proc 2>"$T/live.err"); code=$?
check "live /proc --source proc: a status line" grep -q '^EPHEMERAL PORTS \(OK\|WARNING\|CRITICAL\) - .* | .tcp_busiest_pct.=' <<<"$out"
check "live /proc --source proc: exit 0-2 ($code)" test "$code" -le 2
check "live /proc --source proc: nothing on stderr" test ! -s "$T/live.err"

# qemu-user has no NETLINK_SOCK_DIAG: the default reading falls back to /proc/net and says so.
out=$(run_arm -v 2>"$T/auto.err"); code=$?
printf '%s\n' "$out" >"$T/auto.out"
check "default reading under qemu: a status line" grep -q '^EPHEMERAL PORTS \(OK\|WARNING\|CRITICAL\) - ' <<<"$out"
check "default reading under qemu: exit 0-2 ($code)" test "$code" -le 2
check "default reading under qemu: nothing on stderr" test ! -s "$T/auto.err"
fallback=$(grep -m 1 'sockets read from /proc/net instead' <<<"$out")
check "-v says the sockets were read from /proc/net instead of netlink" test -n "$fallback"
check "-v names the refused call: socket(AF_NETLINK, NETLINK_SOCK_DIAG) failed: EPROTONOSUPPORT" \
    grep -qF 'socket(AF_NETLINK, NETLINK_SOCK_DIAG) failed: EPROTONOSUPPORT' <<<"$fallback"
# The refusal is qemu's, not the kernel's: a reason guessed about the kernel would be untrue here.
check "the note guesses no cause" test -z "$(grep -i 'in this kernel' <<<"$fallback")"
out=$(run_arm --source netlink 2>"$T/netlink.err"); code=$?
check "--source netlink under qemu: exit 3" test "$code" = 3
check "--source netlink under qemu: one UNKNOWN line naming the refused call" \
    sh -c "test \"\$(printf '%s\n' \"\$1\" | wc -l)\" = 1 && printf '%s' \"\$1\" | grep -q '^EPHEMERAL PORTS UNKNOWN - .*socket(AF_NETLINK, NETLINK_SOCK_DIAG) failed: EPROTONOSUPPORT'" _ "$out"
check "--source netlink under qemu: nothing on stderr" test ! -s "$T/netlink.err"

# --- the BPF reader ---------------------------------------------------------------------------
# The BPF object embedded in a binary (bpftool's skeleton keeps it as one blob): the ELF image
# whose machine is EM_BPF (247), cut at the end of its section headers.
bpf_object() {
    python3 - "$1" "$2" <<'PY'
import struct, sys
image = open(sys.argv[1], 'rb').read()
found = []
at = image.find(b'\x7fELF')
while at >= 0:
    if image[at + 4] == 2 and image[at + 5] == 1 and struct.unpack_from('<H', image, at + 18)[0] == 247:
        shoff, = struct.unpack_from('<Q', image, at + 0x28)
        shentsize, shnum = struct.unpack_from('<HH', image, at + 0x3a)
        found.append(image[at:at + shoff + shentsize * shnum])
    at = image.find(b'\x7fELF', at + 1)
if len(found) != 1:
    sys.exit(f'{len(found)} BPF objects in {sys.argv[1]}')
open(sys.argv[2], 'wb').write(found[0])
PY
}
# The CO-RE relocations of each program section, from .BTF.ext (its header, then per section:
# name offset into .BTF's strings, count, records): "SECTION COUNT" lines.
core_relocations() {
    python3 - "$1" <<'PY'
import struct, sys
elf = open(sys.argv[1], 'rb').read()
shoff, = struct.unpack_from('<Q', elf, 0x28)
shentsize, shnum, shstrndx = struct.unpack_from('<HHH', elf, 0x3a)
headers = [struct.unpack_from('<IIQQQQIIQQ', elf, shoff + i * shentsize) for i in range(shnum)]
names = headers[shstrndx]
def name_at(table, off):
    return table[off:table.index(b'\0', off)].decode()
shstr = elf[names[4]:names[4] + names[5]]
sections = {name_at(shstr, h[0]): elf[h[4]:h[4] + h[5]] for h in headers}
btf, ext = sections['.BTF'], sections['.BTF.ext']
hdr_len, = struct.unpack_from('<I', btf, 4)
str_off, = struct.unpack_from('<I', btf, 16)
strings = btf[hdr_len + str_off:]
ext_hdr, = struct.unpack_from('<I', ext, 4)
if ext_hdr < 32:
    sys.exit('.BTF.ext has no CO-RE relocations')
core_off, core_len = struct.unpack_from('<II', ext, 24)
data = ext[ext_hdr + core_off:ext_hdr + core_off + core_len]
rec_size, = struct.unpack_from('<I', data)
at = 4
while at < len(data):
    name_off, count = struct.unpack_from('<II', data, at)
    print(name_at(strings, name_off), count)
    at += 8 + count * rec_size
PY
}

if bpf_object "$arm" "$T/arm64.bpf.o" 2>"$T/arm64.bpf.err"; then
    ok "the arm64 binary embeds one BPF object ($(stat -c %s "$T/arm64.bpf.o") bytes)"
    armid=$(sha256sum "$T/arm64.bpf.o" | cut -c1-16)
    check "the arm64 binary carries that object's build id $armid (pins are named by it)" grep -qaF "$armid" "$arm"
    if [ -x "$x64" ] && bpf_object "$x64" "$T/x64.bpf.o" 2>/dev/null; then
        check "it is the x86_64 binary's object, byte for byte (build id $(sha256sum "$T/x64.bpf.o" | cut -c1-16))" \
            cmp -s "$T/arm64.bpf.o" "$T/x64.bpf.o"
    else
        not_ok "no x86_64 binary with a BPF object at $x64 to compare with"
    fi
    check "bpftool reads its BTF: both iterator programs (cep_tcp, cep_udp) and their contexts" sh -c \
        "bpftool btf dump file '$T/arm64.bpf.o' >'$T/btf.txt' && grep -q \"FUNC 'cep_tcp'\" '$T/btf.txt' && grep -q \"FUNC 'cep_udp'\" '$T/btf.txt' && grep -q \"STRUCT 'bpf_iter__tcp'\" '$T/btf.txt'"
    if core_relocations "$T/arm64.bpf.o" >"$T/relocs.txt" 2>"$T/relocs.err"; then
        # Every kernel field the programs read is relocated by libbpf against the running kernel's
        # BTF: none is compiled in at the build host's (x86_64) offsets.
        # shellcheck disable=SC2016  # awk programs
        check "CO-RE relocations for iter/tcp ($(awk '$1 == "iter/tcp" {print $2}' "$T/relocs.txt"))" \
            awk '$1 == "iter/tcp" && $2 > 0 {f = 1} END {exit !f}' "$T/relocs.txt"
        # shellcheck disable=SC2016  # awk program
        check "CO-RE relocations for iter/udp ($(awk '$1 == "iter/udp" {print $2}' "$T/relocs.txt"))" \
            awk '$1 == "iter/udp" && $2 > 0 {f = 1} END {exit !f}' "$T/relocs.txt"
    else
        not_ok "the CO-RE relocations of the embedded object: $(head -c 300 "$T/relocs.err")"
    fi
else
    not_ok "the arm64 binary embeds one BPF object: $(head -c 300 "$T/arm64.bpf.err")"
fi

if [ "$(id -u)" = 0 ]; then
    # As root the reader gets past the capability check and the record check (a record of
    # another layout would say so), opens the embedded object (ELF and BTF parsed by the aarch64
    # libbpf) and asks to load it: bpf(BPF_PROG_LOAD), which qemu answers ENOSYS.
    out=$(run_arm --source bpf -v 2>"$T/bpf.err"); code=$?
    printf '%s\n' "$out" >"$T/bpf.out"
    echo "# --source bpf -v under qemu: $out"
    check "--source bpf under qemu: exit 3" test "$code" = 3
    check "--source bpf under qemu: one UNKNOWN line naming the refused load: Function not implemented (ENOSYS)" \
        sh -c "test \"\$(printf '%s\n' \"\$1\" | wc -l)\" = 1 && printf '%s' \"\$1\" | grep -q '^EPHEMERAL PORTS UNKNOWN - --source bpf: loading the BPF socket iterators failed: Function not implemented'" _ "$out"
    check "--source bpf under qemu: nothing on stderr" test ! -s "$T/bpf.err"
    # qemu's own log of the guest's syscalls: the refusal is qemu's (no bpf(2) in linux-user).
    # -D: into a file, which the plugin process forked by the supervisor logs into too (its
    # stderr is the supervisor's pipe).
    rm -f "$T/qemu-strace.log"
    "$qemu" -strace -D "$T/qemu-strace.log" -L "$armlibs" "$arm" --source bpf >/dev/null 2>&1
    grep '^[0-9]* bpf(' "$T/qemu-strace.log" >"$T/bpf-calls"
    echo "# qemu -strace: bpf() commands asked: $(sed 's/^[0-9]* bpf(\([0-9]*\),.*/\1/' "$T/bpf-calls" | tr '\n' ' ')(5 is BPF_PROG_LOAD)"
    check "qemu -strace: the reader asked for bpf() ($(wc -l <"$T/bpf-calls") calls)" test -s "$T/bpf-calls"
    check "qemu -strace: qemu answered every bpf() call ENOSYS (errno 38) itself" \
        sh -c "test -s '$T/bpf-calls' && ! grep -qv 'errno=38 (Function not implemented)' '$T/bpf-calls'"
    check "qemu -strace: before that, the reader checked the kernel's BTF (/sys/kernel/btf/vmlinux)" \
        sh -c "sed '/^[0-9]* bpf(/q' '$T/qemu-strace.log' | grep -q '\"/sys/kernel/btf/vmlinux\"'"
    out=$(run_arm -v 2>/dev/null)
    check "-v under qemu says bpf was refused and why: Function not implemented" \
        grep -q '^bpf unavailable (loading the BPF socket iterators failed: Function not implemented' <<<"$out"
else
    echo "# not root: the BPF reader under qemu needs root (skipped)"
fi
[ "$failed" = 0 ]
