#!/usr/bin/env bash
# The arm64 binary's BPF reader on a real arm64 kernel (issue 19): Debian 12's own arm64 kernel
# (linux-image-arm64, Linux 6.1, BTF built in) booted under qemu-system-aarch64 (TCG: no KVM or
# arm64 host needed) from an initramfs of busybox, Debian 12's arm64 libc and python3.11, the
# arm64 plugin, the arm64 cep_bpf_dump and tests/oracle/. In the guest, as root, with a bpffs of
# its own on /sys/fs/bpf (the guest's, not the host's):
#   - the plugin's --source bpf -v, idle: the program loads (libbpf relocates the one BPF object
#     against this arm64 kernel's BTF, the verifier takes it) and is pinned, a second run opens
#     the pin;
#   - kernel-oracle scenarios of tests/oracle/oracle.py, each checkpoint read through bpf, netlink
#     and proc, checked here as EphemeralPorts.Tests/Oracle checks them on the host: the plugin
#     says 100% and CRITICAL exactly where the kernel refused;
#   - the BPF kernel facts of tests/oracle/bpf_facts.py that hold on 6.1, with the arm64 cep_bpf_dump.
# The guest prints its results on the serial console between markers; this script checks them.
# What the guest is made of is cached under /var/cache/check-ephemeral-ports/ (the kernel .deb
# alone is 60 MB). Needs root only for the cache and apt; the guest's namespaces are its own.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
arm=${CHECK_EPHEMERAL_PORTS_ARM64_BIN:-$root/dist/linux-arm64/check_ephemeral_ports}
dump=$root/artifacts/native/linux-arm64/cep_bpf_dump
SUITE=bookworm
# What the guest root is made of: busybox (shell, mount, ip, unshare), libc and Python for oracle.py.
GUEST_PACKAGES=busybox-static,libc6,python3.11-minimal,libpython3.11-minimal,libpython3.11-stdlib,zlib1g,libexpat1,libffi8
RECIPE=2
# oracle.py scenarios whose kernel behaviour is the same on 6.1 (the TIME_WAIT ones depend on
# tcp_tw_reuse_delay, 6.12+; own-port-range on IP_LOCAL_PORT_RANGE, 6.3+).
ORACLE_SCENARIOS="fill-one-tuple bind-before-connect-spread bind-address-no-port accepted-child-outlives-listener udp-until-refused"
# bpf_facts.py scenarios that hold on 6.1 (not: the TIME_WAIT ages from tw_entry_stamp and the
# connect-bind mark, 6.18; per-socket ranges, 6.3; differential, which needs ss).
FACTS_SCENARIOS="bind_before_connect_spread bind_address_no_port listener accepted_child bound_inactive udp v4_mapped_and_v6 ipv6_bind_before_connect_costs_v4 request_sock"

setup_temp_dir
check "arm64 binary $arm exists" test -x "$arm" || exit 1
if [ "$(id -u)" != 0 ]; then
    echo "# not root: making the guest (apt, the cache) needs root (skipped)"
    exit 0
fi
check "install qemu-system-arm cpio python3" need_packages qemu-system-arm cpio python3 || exit 1

# --- the guest: kernel and root, cached ----------------------------------------------------------
cache=${CHECK_EPHEMERAL_PORTS_CACHE:-/var/cache/check-ephemeral-ports}
key=$SUITE-arm64-r$RECIPE-$(printf '%s' "$GUEST_PACKAGES" | sha256sum | cut -c1-12)
guest=$cache/arm64-guest-$key
make_guest() {
    local work=$guest.partial kernel
    rm -rf "$work" && mkdir -p "$work/meta" "$work/kernel" "$work/root" || return 1
    # linux-image-arm64 is a metapackage: its Depends names this release's kernel package.
    "$root/src/build/fetch-deb.sh" "$SUITE" linux-image-arm64 arm64 "$work/meta" || return 1
    kernel=$(sed -n 's/^Depends: \(linux-image-[0-9][^ ,]*\).*/\1/p' "$work/meta/.fetched-control" | head -n 1)
    [ -n "$kernel" ] || { echo "linux-image-arm64 names no kernel package" >&2; return 1; }
    "$root/src/build/fetch-deb.sh" "$SUITE" "$kernel" arm64 "$work/kernel" || return 1
    mv "$work"/kernel/boot/vmlinuz-* "$work/Image" && mv "$work"/kernel/boot/config-* "$work/config" || return 1
    # sock_diag's inet families are modules in Debian's kernel (CONFIG_INET_DIAG=m), which a
    # host loads on demand; the guest has no module tree, so it loads these three itself.
    mkdir -p "$work/modules"
    for m in inet_diag tcp_diag udp_diag; do
        mv "$work"/kernel/lib/modules/*/kernel/net/ipv4/$m.ko "$work/modules/" || return 1
    done
    cp "$work/kernel/.fetched-debs" "$work/kernel.version"
    rm -rf "$work/kernel" "$work/meta"
    "$root/src/build/fetch-deb.sh" "$SUITE" "$GUEST_PACKAGES" arm64 "$work/root" || return 1
    rm -rf "$work"/root/usr/share/{doc,man,locale,lintian}
    ln -sfn python3.11 "$work/root/usr/bin/python3"
    mv "$work" "$guest"
}
if [ ! -f "$guest/Image" ]; then
    mkdir -p "$cache"
    exec 8>"$cache/.arm64-guest.lock"
    flock 8
    [ -f "$guest/Image" ] || make_guest >"$T/guest.log" 2>&1
    flock -u 8
fi
check "Debian's arm64 kernel and guest root at $guest ($(cat "$guest/kernel.version" 2>/dev/null))" test -f "$guest/Image" ||
    { sed 's/^/# /' "$T/guest.log" | tail -n 5; exit 1; }
check "the kernel has BTF and the BPF syscall (CONFIG_DEBUG_INFO_BTF, CONFIG_BPF_SYSCALL)" \
    sh -c "grep -qx 'CONFIG_DEBUG_INFO_BTF=y' '$guest/config' && grep -qx 'CONFIG_BPF_SYSCALL=y' '$guest/config'"

# --- the initramfs: the cached root, the binaries under test, the oracle, /init ------------------
rootfs=$T/rootfs
mkdir -p "$rootfs"/{bin,proc,sys,dev,tmp,oracle,modules}
cp -a "$guest"/root/. "$rootfs"/
cp "$guest"/modules/*.ko "$rootfs/modules/"
install -m 755 "$arm" "$rootfs/bin/check_ephemeral_ports"
have_dump=''
if [ -x "$dump" ] && readelf -h "$dump" 2>/dev/null | grep -q 'Machine:.*AArch64'; then
    install -m 755 "$dump" "$rootfs/bin/cep_bpf_dump" && have_dump=1
else
    echo "# no arm64 cep_bpf_dump at $dump (./build.sh makes it): the BPF facts are not run"
fi
cp "$root"/tests/oracle/oracle.py "$root"/tests/oracle/bpf_facts.py "$rootfs/oracle/"
cat >"$rootfs/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp
mount -t bpf bpf /sys/fs/bpf
for m in inet_diag tcp_diag udp_diag; do insmod /modules/\$m.ko || echo "@@MODULE \$m failed"; done
ip link set lo up
ulimit -n 65536
say() { echo "@@\$1 \$2"; }
say KERNEL "\$(uname -srm)"
for run in first second; do
    out=\$(/bin/check_ephemeral_ports --source bpf -v 2>&1); code=\$?
    say BPF_\$run "\$code \$(echo "\$out" | head -n 1)"
    echo "\$out" | grep -i 'read through\|bpf' | sed 's/^/@@BPFV_'\$run' /'
done
say PINS "\$(ls /sys/fs/bpf/check_ephemeral_ports 2>&1 | tr '\n' ' ')"
cd /oracle
for s in $ORACLE_SCENARIOS; do
    unshare -n python3 oracle.py \$s /bin/check_ephemeral_ports >/tmp/o.json 2>/tmp/o.err
    say ORACLE "\$(python3 -c 'import json, sys; print(json.dumps(json.load(open("/tmp/o.json"))))' 2>/dev/null || echo "{\"scenario\": \"\$s\", \"error\": \"\$(tail -c 300 /tmp/o.err | tr -d '\"\n')\"}")"
done
if [ -x /bin/cep_bpf_dump ]; then
    python3 bpf_facts.py /bin/cep_bpf_dump $FACTS_SCENARIOS 2>&1 | sed 's/^/@@FACT /'
fi
say DONE ok
poweroff -f
EOF
chmod 755 "$rootfs/init"
check "initramfs" sh -c "cd '$rootfs' && find . | cpio -o -H newc --quiet | gzip -1 >'$T/initrd.gz'"

# --- boot ----------------------------------------------------------------------------------------
# -nic none: the virt machine's default NIC wants an option ROM not installed; loopback is all
# the guest needs. TCG takes ~15 s to boot here and a few minutes for the oracle.
echo "# booting $(cat "$guest/kernel.version") under qemu-system-aarch64 (TCG)"
timeout 1200 qemu-system-aarch64 -M virt -cpu max -smp 2 -m 1536 -nographic -no-reboot -nic none \
    -kernel "$guest/Image" -initrd "$T/initrd.gz" -append "console=ttyAMA0 panic=-1 loglevel=1" \
    </dev/null >"$T/console.raw" 2>&1
tr -d '\r' <"$T/console.raw" >"$T/console.log"
said() { sed -n "s/^@@$1 //p" "$T/console.log"; }
check "the guest ran to its end (console in $T/console.log)" test "$(said DONE)" = ok || exit 1
kernel=$(said KERNEL)
check "the guest kernel is arm64 Linux ($kernel)" grep -q ' aarch64$' <<<"$kernel"
check "sock_diag's inet modules loaded in the guest ($(said MODULE | tr '\n' ' '))" test -z "$(said MODULE)"

# --- the plugin's own BPF reading -----------------------------------------------------------------
first=$(said BPF_first) second=$(said BPF_second)
echo "# --source bpf -v on $kernel, first run: $first"
check "--source bpf on the arm64 kernel: the first run loads the program and reads (exit 0, OK)" \
    grep -q '^0 EPHEMERAL PORTS OK - ' <<<"$first"
check "--source bpf on the arm64 kernel: the second run too" grep -q '^0 EPHEMERAL PORTS OK - ' <<<"$second"
said BPFV_first | sed 's/^/# -v: /'
check "the first root run pinned the iterators in the guest's bpffs (check_ephemeral_ports/<build id>)" \
    grep -Eq '^[0-9a-f]{16} ?$' <<<"$(said PINS)"

# --- the oracle: the same expectations as tests/EphemeralPorts.Tests/Oracle on the host ------------
said ORACLE >"$T/oracle.jsonl"
python3 - "$T/oracle.jsonl" <<'PY' | tee "$T/oracle.tap"
import json, re, sys

def perf(stdout):
    first = stdout.splitlines()[0] if stdout else ""
    data = first.split(" | ", 1)[1] if " | " in first else ""
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"'([^']+)'=([-0-9.]+)", data)}

def check(ok, text):
    print(("ok - " if ok else "not ok - ") + text)

def expect(scenario, reader, c, what, got, want):
    check(got == want, "%s on arm64, %s, %s: %s is %r (want %r)" % (scenario, reader, c["label"], what, got, want))

docs = {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    docs[d["scenario"]] = d
for name in ["fill-one-tuple", "bind-before-connect-spread", "bind-address-no-port", "accepted-child-outlives-listener", "udp-until-refused"]:
    d = docs.get(name)
    if d is None or "error" in d:
        check(False, "%s on arm64: no result (%s)" % (name, (d or {}).get("error", "not run")))
        continue
    cps = d["checkpoints"]
    def run(c, reader):
        r = c["runs"][reader]
        return r["exit"], r["stdout"], perf(r["stdout"]), r["stderr"]
    for c in cps:
        for reader in ("bpf", "netlink", "proc"):
            code, out, _, err = run(c, reader)
            if code == 3 or err:
                check(False, "%s on arm64, %s, %s: exit %d, stderr %r, %r" % (name, reader, c["label"], code, err[:200], out[:200]))
    last, k = cps[-1], cps[-1]["kernel"]
    if name == "fill-one-tuple":
        check(k.get("errno") == "EADDRNOTAVAIL" and k.get("connected") == 10, "fill-one-tuple on arm64: the kernel refused the 11th connect() (%r)" % k)
        for reader in ("bpf", "netlink", "proc"):
            for c in cps:
                n = c["kernel"]["connected"]
                expect(name, reader, c, "tcp_busiest_used", run(c, reader)[2].get("tcp_busiest_used"), n)
                expect(name, reader, c, "tcp_busiest_pct", run(c, reader)[2].get("tcp_busiest_pct"), n * 10)
            expect(name, reader, last, "exit", run(last, reader)[0], 2)
            check("127.0.0.1 -> 127.0.0.1:5000 uses 10 of 10 ports (100%), new connections to it fail now" in run(last, reader)[1],
                  "fill-one-tuple on arm64, %s: fails now at the refusal" % reader)
    elif name == "bind-before-connect-spread":
        check(k.get("made") == 10 and k.get("plain_errno") == "EADDRNOTAVAIL" and k.get("bind_errno") == "EADDRINUSE" and k.get("other_bind_errno") == "-",
              "bind-before-connect-spread on arm64: the kernel's refusals (%r)" % k)
        code, out, p, _ = run(last, "bpf")
        expect(name, "bpf", last, "exit", code, 2)
        check(out.startswith("EPHEMERAL PORTS CRITICAL - bind(127.0.0.1, 0) has 0 of 10 ports left: 10 connections took their port by bind() before connect()"),
              "bind-before-connect-spread on arm64, bpf: CRITICAL, bind(127.0.0.1, 0) has 0 of 10 ports left (%r)" % out[:160])
        expect(name, "bpf", last, "tcp_bind_busiest_pct", p.get("tcp_bind_busiest_pct"), 100)
        expect(name, "bpf", last, "capacity", p.get("capacity"), 0)
        for label, pct, code in (("after 5", 50, 0), ("after 8", 80, 1)):
            c = next(c for c in cps if c["label"].endswith(label))
            expect(name, "bpf", c, "tcp_bind_busiest_pct", run(c, "bpf")[2].get("tcp_bind_busiest_pct"), pct)
            expect(name, "bpf", c, "exit", run(c, "bpf")[0], code)
        for reader in ("netlink", "proc"):
            expect(name, reader, last, "tcp_busiest_pct (blind to bind())", run(last, reader)[2].get("tcp_busiest_pct"), 20)
    elif name == "bind-address-no-port":
        check(k.get("first") == 10 and k.get("second") == 10, "bind-address-no-port on arm64: 10 per tuple (%r)" % k)
        for reader in ("bpf", "netlink", "proc"):
            p = run(last, reader)[2]
            expect(name, reader, last, "capacity", p.get("capacity"), 10)
            expect(name, reader, last, "tcp_busiest_pct", p.get("tcp_busiest_pct"), 100)
        check("tcp_bind_busiest_pct" not in run(last, "bpf")[2], "bind-address-no-port on arm64, bpf: no bind(addr, 0) figure")
    elif name == "accepted-child-outlives-listener":
        check(k.get("connected") == 9 and k.get("errno") == "EADDRNOTAVAIL", "accepted-child-outlives-listener on arm64: 9 then refused (%r)" % k)
        code, out, p, _ = run(last, "bpf")
        expect(name, "bpf", last, "exit", code, 2)
        expect(name, "bpf", last, "capacity", p.get("capacity"), 9)
        expect(name, "bpf", last, "tcp_busiest_pct", p.get("tcp_busiest_pct"), 100)
        expect(name, "bpf", last, "tcp_bind_busiest_pct", p.get("tcp_bind_busiest_pct"), 10)
        expect(name, "netlink", last, "capacity (blind to the child)", run(last, "netlink")[2].get("capacity"), 10)
    elif name == "udp-until-refused":
        check(k.get("errno") == "EAGAIN" and k.get("sockets") == 10, "udp-until-refused on arm64: 10 then EAGAIN (%r)" % k)
        for reader in ("bpf", "netlink", "proc"):
            for c in cps:
                expect(name, reader, c, "udp_used", run(c, reader)[2].get("udp_used"), c["kernel"]["sockets"])
            expect(name, reader, last, "udp_used_pct", run(last, reader)[2].get("udp_used_pct"), 100)
            expect(name, reader, last, "exit", run(last, reader)[0], 2)
PY
grep -q '^not ok - ' "$T/oracle.tap" && failed=1
check "the oracle checks ran ($(grep -c '^ok - ' "$T/oracle.tap") ok)" test "$(grep -c '^ok - ' "$T/oracle.tap")" -gt 20

# --- the BPF kernel facts, with the arm64 cep_bpf_dump -------------------------------------------
if [ -n "$have_dump" ]; then
    said FACT >"$T/facts.tap"
    sed 's/^\(not \)\{0,1\}ok - /&on the arm64 kernel: /' "$T/facts.tap"
    grep -q '^not ok - ' "$T/facts.tap" && failed=1
    check "the BPF facts ran ($(grep -c '^ok - ' "$T/facts.tap") ok)" test "$(grep -c '^ok - ' "$T/facts.tap")" -gt 20
fi
[ "$failed" = 0 ]
