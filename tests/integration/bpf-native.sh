#!/usr/bin/env bash
# The native BPF socket reader (src/native): builds it, proves the kernel facts it reads
# (tests/oracle/bpf_facts.py, one private network namespace per scenario), and checks its
# fallbacks, its pins and concurrent readers. Root only (BPF, namespaces). Pins of this build
# that were not there before are removed at exit.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
setup_temp_dir

if [ "$(id -u)" != 0 ]; then
    echo "ok - # SKIP the BPF reader tests need root"
    exit 0
fi
check "src/native/build.sh builds the reader" quiet "$T/native-build.log" "$root/src/native/build.sh" "$T/native" || exit 1
dump=$T/native/cep_bpf_dump
chmod 755 "$T/native" "$dump"
pins=/sys/fs/bpf/check_ephemeral_ports
build_id=$(sha256sum "$T/native/ports.bpf.o" | cut -c1-16)
had_pin=''
[ -e "$pins/$build_id" ] && had_pin=1
remove_our_pin() {
    if [ -z "$had_pin" ]; then
        rm -f "$pins/$build_id"/tcp "$pins/$build_id"/udp 2>/dev/null
        rmdir "$pins/$build_id" 2>/dev/null
        rmdir "$pins" 2>/dev/null
    fi
    true
}
trap 'remove_our_pin; cleanup' EXIT

# --- the kernel facts -----------------------------------------------------------------------------
rc=0
python3 "$root/tests/oracle/bpf_facts.py" "$dump" --json "$T/bpf-facts.json" || rc=$?
[ "$rc" = 0 ] || failed=1

# --- fallbacks: a reason, nothing else on stderr --------------------------------------------------
# the driver prints "cep_bpf_open: <errno> <reason>" on stderr; the library must add nothing.
refusal() { # expected-errno reason-pattern command...
    local errno=$1 pattern=$2; shift 2
    local err rc=0
    err=$("$@" 2>&1 >/dev/null) || rc=$?
    [ "$rc" = 2 ] && [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] &&
        [[ $err == "cep_bpf_open: $errno "* ]] && [[ $err == *$pattern* ]] || { echo "# got (exit $rc): $err"; return 1; }
}
check "as nobody: EPERM, 'needs root or CAP_BPF and CAP_PERFMON', one line" \
    refusal -1 "needs root or CAP_BPF and CAP_PERFMON" setpriv --reuid=nobody --regid=nogroup --clear-groups "$dump" --count
check "CAP_BPF alone is not enough, and says so" \
    refusal -1 "has CAP_BPF only" setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=+bpf --ambient-caps=+bpf "$dump" --count
check_silent "CAP_BPF + CAP_PERFMON as nobody reads" \
    setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=+bpf,+perfmon --ambient-caps=+bpf,+perfmon "$dump" --count --no-pin
check "bpf() refused by fault injection (EPERM): the kernel refused bpf(), one line" \
    refusal -1 "the kernel refused bpf()" strace -f -o /dev/null -e inject=bpf:error=EPERM "$dump" --count --no-pin
check "bpf() failing with EINVAL: the kernel cannot load the socket iterators" \
    refusal -22 "cannot load the socket iterators" strace -f -o /dev/null -e inject=bpf:error=EINVAL "$dump" --count --no-pin
check "no BTF (/sys/kernel/btf hidden in a private mount namespace): ENOENT, 'has no BTF'" \
    refusal -2 "has no BTF" unshare -m sh -c 'mount -t tmpfs none /sys/kernel/btf && exec "$0" --count --no-pin' "$dump"

# --- pins -----------------------------------------------------------------------------------------
mode() { "$dump" --count --time "$@" 2>&1 >/dev/null | sed -n 's/^open .*(mode \([0-9]\).*/\1/p'; }
"$dump" --unpin-all
check "first run loads and pins (mode 2)" test "$(mode)" = 2
check "pin directory holds tcp and udp, root's, 0600" \
    test "$(stat -c '%a %U' "$pins/$build_id/tcp" "$pins/$build_id/udp" | sort -u)" = "600 root"
check "a later run opens the pins (mode 1)" test "$(mode)" = 1
check "--no-pin loads for the run only (mode 3)" test "$(mode --no-pin)" = 3
check "a pin of another build is removed when this build pins" sh -c "
    mkdir '$pins/0000000000000000' && '$dump' --unpin-all && mkdir -p '$pins/0000000000000000' &&
    '$dump' --count >/dev/null && test ! -e '$pins/0000000000000000' && test -e '$pins/$build_id/tcp'"
check "pins of another owner than root are not used (mode 2 after chown)" sh -c "
    chown nobody '$pins/$build_id/tcp' && test \"\$('$dump' --count --time 2>&1 >/dev/null | sed -n 's/^open .*(mode \([0-9]\).*/\1/p')\" != 1;
    rc=\$?; chown root '$pins/$build_id/tcp'; exit \$rc"

# --- the same records loaded or pinned, in parallel, per namespace --------------------------------
cat >"$T/load.py" <<'PY'
import os, socket, subprocess, sys
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
open("/proc/sys/net/ipv4/ip_local_port_range", "w").write("20000 60000")
l = socket.socket(); l.bind(("127.0.0.1", 5000)); l.listen(4096)
keep = []
for i in range(2000):
    c = socket.create_connection(("127.0.0.1", 5000)); a, _ = l.accept(); keep += (c, a)
dump = sys.argv[1]
def records(*a):
    return sorted(subprocess.run([dump, "--json"] + list(a), capture_output=True, text=True, check=True).stdout.splitlines())
pinned = records()
loaded = records("--no-pin")
procs = [subprocess.Popen([dump, "--count"], stdout=subprocess.PIPE, text=True) for _ in range(6)]
counts = [p.communicate()[0] for p in procs]
print("pinned", len(pinned), "loaded", len(loaded), "same", pinned == loaded)
print("parallel", " ".join(c.split()[1] for c in counts), "all", all(c == counts[0] for c in counts))
PY
out=$(unshare -n python3 "$T/load.py" "$dump" 2>&1)
echo "$out" | sed 's/^/# /'
check "2000 connections: pinned and loaded readings give the same 2000 records" grep -q "^pinned 2000 loaded 2000 same True" <<<"$out"
check "six readers at once each read all 2000" grep -q "^parallel 2000 2000 2000 2000 2000 2000 all True" <<<"$out"
"$dump" --unpin-all
first_runs_at_once() {
    local i
    for i in 1 2 3 4 5 6; do "$dump" --count >"$T/race.$i" 2>&1 & done
    wait
    [ "$(cat "$T"/race.* | grep -c '^tcp ')" = 6 ] && [ -e "$pins/$build_id/tcp" ] &&
        [ -z "$(ls "$pins" | grep -vx "$build_id")" ]
}
check "six first runs at once: all read, one pin directory, no temporary one left" first_runs_at_once
# A namespace with one in-range listener, held by a process of its own; the reader starts in
# the host's namespace and setns() into it after opening (pinned and loaded alike).
unshare -n sh -c 'ip link set lo up && echo 40000 40009 >/proc/sys/net/ipv4/ip_local_port_range &&
    exec python3 -c "import socket, time; l = socket.socket(); l.bind((\"127.0.0.1\", 40004)); l.listen(); open(\"$0\", \"w\").close(); time.sleep(30)"' "$T/ns-ready" &
ns_pid=$!
for _ in $(seq 50); do [ -e "$T/ns-ready" ] && break; sleep 0.1; done
check "pinned: an iterator made after setns reads that namespace (1 listener)" \
    test "$("$dump" --netns "/proc/$ns_pid/ns/net" --count tcp)" = "tcp 1"
check "loaded: the same" test "$("$dump" --no-pin --netns "/proc/$ns_pid/ns/net" --count tcp)" = "tcp 1"
kill "$ns_pid"; wait "$ns_pid" 2>/dev/null

exit $failed
