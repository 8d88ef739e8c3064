#!/usr/bin/env bash
# The native BPF socket reader (src/native): builds it, proves the kernel facts it reads
# (tests/oracle/bpf_facts.py, one private network namespace per scenario), and checks its
# fallbacks, its pins and concurrent readers. Root only (BPF, namespaces).
#
# Never depends on nor changes the host's /sys/fs/bpf: everything that may pin runs twice, each
# time in a private mount namespace of its own (gone with it, and the pins with it):
#   mounted  a fresh bpffs mounted on /sys/fs/bpf (what systemd hosts have): the first run pins,
#            later runs open the pins, and the pin directory holds only this build's pins after
#            any run, whatever killed earlier runs, with first runs racing each other;
#   absent   no bpffs on /sys/fs/bpf (a fresh machine, a container): every run loads for itself.
# Each way also has a fresh tmpfs on /run (so the load cache, /run/check_ephemeral_ports, starts
# empty and the host's is neither read nor changed): the first root run that loads through libbpf
# writes the cache, later runs without pins load from it (mode 4); what is wrong with it (damaged,
# another kernel or build, not root's, a symlink) is ignored and rewritten.
# BPF_NATIVE_BPFFS=mounted or =absent runs only that way (default: both).
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

pins=/sys/fs/bpf/check_ephemeral_ports
fs_type() { stat -f -c %T /sys/fs/bpf 2>/dev/null; }

# --- one way, in its private mount namespace (the script run again by the part below) -----------
if [ -n "${CEP_BPF_NATIVE_WAY:-}" ]; then
    way=$CEP_BPF_NATIVE_WAY T=$CEP_BPF_NATIVE_T
    ok() { echo "ok - [bpffs $way] $*"; }
    not_ok() { echo "not ok - [bpffs $way] $*"; failed=1; }
    trap stop_all EXIT
    trap 'exit 143' TERM
    dump=$T/native/cep_bpf_dump
    build_id=$(sha256sum "$T/native/ports.bpf.o" | cut -c1-16)
    if [ "$way" = mounted ]; then
        check "a fresh bpffs on /sys/fs/bpf in a private mount namespace" mount -t bpf bpf /sys/fs/bpf || exit 1
    else
        # the host's (if any) goes in this namespace only; bounded, in case of stacked mounts
        for _ in 1 2 3 4 5 6 7 8; do [ "$(fs_type)" = bpf_fs ] || break; umount /sys/fs/bpf || break; done
        check "no bpffs on /sys/fs/bpf in a private mount namespace" test "$(fs_type)" != bpf_fs || exit 1
    fi
    check "a fresh tmpfs on /run in the private mount namespace (no load cache yet)" \
        mount -t tmpfs -o mode=755 cep-run /run || exit 1
    cache=/run/check_ephemeral_ports
    cfile=$cache/$build_id.iter

    # A network namespace whose sockets are known, held by a process of its own: 20 connections
    # from ports in 40000-40099 (their accepted ends and the listener have port 5000, out of the
    # range) and 3 UDP sockets bound to port 0. The reader setns() into it after opening.
    start_daemon "$T/ns-$way.log" unshare -n python3 -c '
import socket, subprocess, sys, time
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
open("/proc/sys/net/ipv4/ip_local_port_range", "w").write("40000 40099")
l = socket.socket(); l.bind(("127.0.0.1", 5000)); l.listen(64)
keep = []
for _ in range(20):
    c = socket.create_connection(("127.0.0.1", 5000)); a, _ = l.accept(); keep += (c, a)
for _ in range(3):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0)); keep.append(u)
open(sys.argv[1], "w").close()
time.sleep(300)' "$T/ns-$way.ready"
    ns_pid=${pids[-1]}
    for _ in $(seq 100); do [ -e "$T/ns-$way.ready" ] && break; sleep 0.1; done
    check "a namespace with 20 TCP and 3 UDP sockets in its range" test -e "$T/ns-$way.ready" || exit 1
    ns=/proc/$ns_pid/ns/net
    figures=$'tcp 20\nudp 3'

    # --- fallbacks: a reason, nothing else on stderr ------------------------------------------------
    # the driver prints "cep_reader_open: -<errno> <reason>" on stderr; the library must add nothing.
    refusal() { # expected-errno reason-pattern command...
        local errno=$1 pattern=$2; shift 2
        local err rc=0
        err=$("$@" 2>&1 >/dev/null) || rc=$?
        [ "$rc" = 2 ] && [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] &&
            [[ $err == "cep_reader_open: $errno "* ]] && [[ $err == *$pattern* ]] || { echo "# got (exit $rc): $err"; return 1; }
    }
    as_nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
    check "as nobody: EPERM, 'needs root or CAP_BPF and CAP_PERFMON', one line" \
        refusal -1 "needs root or CAP_BPF and CAP_PERFMON" "${as_nobody[@]}" "$dump" --count
    check "CAP_BPF alone is not enough, and says so" \
        refusal -1 "has CAP_BPF only" "${as_nobody[@]}" --inh-caps=+bpf --ambient-caps=+bpf "$dump" --count
    check_silent "CAP_BPF + CAP_PERFMON as nobody reads" \
        "${as_nobody[@]}" --inh-caps=+bpf,+perfmon --ambient-caps=+bpf,+perfmon "$dump" --count --no-pin
    check "bpf() refused by fault injection (EPERM): the kernel refused bpf(), one line" \
        refusal -1 "the kernel refused bpf()" strace -f -o /dev/null -e inject=bpf:error=EPERM "$dump" --count --no-pin
    check "bpf() failing with EINVAL: the kernel cannot load the socket iterators" \
        refusal -22 "cannot load the socket iterators" strace -f -o /dev/null -e inject=bpf:error=EINVAL "$dump" --count --no-pin
    check "no BTF (/sys/kernel/btf hidden in a private mount namespace): ENOENT, 'has no BTF'" \
        refusal -2 "has no BTF" unshare -m sh -c 'mount -t tmpfs none /sys/kernel/btf && exec "$0" --count --no-pin' "$dump"

    # --- how a run opens ----------------------------------------------------------------------------
    # "open <ms> ms (mode N: <how>)" on stderr
    how() { "$dump" --count --time "$@" 2>&1 >/dev/null | sed -n 's/^open [0-9.]* ms (\(.*\))$/\1/p'; }
    mode() { how "$@" | sed -n 's/^mode \([0-9]\).*/\1/p'; }
    pin_dir_is_ours_alone() { [ "$(ls -A "$pins")" = "$build_id" ] || { echo "# $pins holds: $(ls -A "$pins" | tr '\n' ' ')"; return 1; }; }
    if [ "$way" = mounted ]; then
        check "first run loads and pins (mode 2), and caches the load" \
            test "$(how)" = "mode 2: BPF socket iterators loaded and pinned in $pins/$build_id; cached in $cache"
        check "pin directory holds tcp and udp, root's, 0600" \
            test "$(stat -c '%a %U' "$pins/$build_id/tcp" "$pins/$build_id/udp" | sort -u)" = "600 root"
        check "a later run opens the pins (mode 1)" test "$(mode)" = 1
        check "--no-pin loads for the run only, from the cache (mode 4)" test "$(mode --no-pin)" = 4
        check "--no-pin --no-cache loads for the run only through libbpf (mode 3)" test "$(mode --no-pin --no-cache)" = 3
        check "with the cache but no pins: loads from the cache and pins (mode 2)" \
            test "$(rm -r "$pins" && how)" = "mode 2: BPF socket iterators loaded from the cache in $cache and pinned in $pins/$build_id"
        check "and a later run opens those pins (mode 1)" test "$(mode)" = 1
        check "as nobody with the pins there: still EPERM, one line" \
            refusal -1 "needs root or CAP_BPF and CAP_PERFMON" "${as_nobody[@]}" "$dump" --count
        check "pins of another owner than root are not used (mode 2 after chown), and replaced" sh -c "
            chown nobody '$pins/$build_id/tcp' && test \"\$('$dump' --count --time 2>&1 >/dev/null | sed -n 's/^open .*(mode \([0-9]\).*/\1/p')\" = 2 &&
            test \"\$(stat -c %U '$pins/$build_id/tcp')\" = root"
    else
        check "every run loads for itself: the first through libbpf, and caches it (mode 3)" \
            test "$(how)" = "mode 3: BPF socket iterators loaded for this run (not pinned: no bpffs mounted on /sys/fs/bpf; cached in $cache)"
        check "the next run loads from the cache (mode 4)" \
            test "$(how)" = "mode 4: BPF socket iterators loaded for this run from the cache in $cache (not pinned: no bpffs mounted on /sys/fs/bpf)"
        check "nothing was created under /sys/fs/bpf" test ! -e "$pins"
    fi

    # --- the load cache (--no-pin: the same with or without bpffs) --------------------------------------
    # "cache in /run/... rewritten (<why>)" and the next run loads from it again (mode 4)
    rewritten() { # reason-pattern
        local got
        got=$(how --no-pin)
        [[ $got == "mode 3: "*"; cache in $cache rewritten ("*$1*")"* ]] || { echo "# got: $got"; return 1; }
        got=$(how --no-pin)
        [[ $got == "mode 4: "* ]] || { echo "# then: $got"; return 1; }
    }
    # the cache file with a field of its header changed (a kernel's or a build's), its checksum right
    forge() { # offset text
        python3 - "$cfile" "$1" "$2" <<'PY'
import struct, sys
path, off, text = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
b = bytearray(open(path, "rb").read())
b[off:off + len(text)] = text
b[568:576] = bytes(8)
h = 0xcbf29ce484222325
for c in b:
    h = ((h ^ c) * 0x100000001b3) & 0xffffffffffffffff
b[568:576] = struct.pack("<Q", h)
open(path, "wb").write(bytes(b))
PY
    }
    # what a run read of the kernel's BTF (strace): the cached load reads 2 KB of it (its identity)
    btf_bytes_read() {
        strace -f -y -e trace=read,pread64 -o "$T/btf-reads.log" "$dump" "$@" --count >/dev/null || return 1
        grep '</sys/kernel/btf/vmlinux>' "$T/btf-reads.log" | sed -n 's/.*= \([0-9]*\)$/\1/p' | awk '{s += $1} END {print s + 0}'
    }
    check "the cache: a directory 0700 and a file 0600, root's" \
        test "$(stat -c '%a %U' "$cache"):$(stat -c '%a %U' "$cfile")" = "700 root:600 root"
    check "a cached run reads 2 KB of the kernel's BTF (a libbpf load all 5 MB of it)" \
        test "$(btf_bytes_read --no-pin)" = 2048 -a "$(btf_bytes_read --no-pin --no-cache)" -gt 1000000
    check "--no-cache neither reads nor writes the cache (mode 3, and no cache made)" \
        test "$(rm -r "$cache" && mode --no-pin --no-cache)" = 3 -a ! -e "$cache"
    check "no cache: a run loads through libbpf and caches it (mode 3)" \
        test "$(how --no-pin)" = "mode 3: BPF socket iterators loaded for this run (not pinned: pinning not asked for; cached in $cache)"
    check "a later run loads from the cache (mode 4)" \
        test "$(how --no-pin)" = "mode 4: BPF socket iterators loaded for this run from the cache in $cache (not pinned: pinning not asked for)"
    check "the same records from the cache as through libbpf (the namespace's, as JSON)" \
        test "$("$dump" --no-pin --netns "$ns" --json | sort)" = "$("$dump" --no-pin --no-cache --netns "$ns" --json | sort)"
    check "a damaged cache (one byte of an instruction changed) is ignored and rewritten" \
        sh -c "printf '\\377' | dd of='$cfile' bs=1 seek=1000 conv=notrunc status=none" && rewritten "damaged"
    check "a cut cache is ignored and rewritten" sh -c "truncate -s 3000 '$cfile'" && rewritten "damaged"
    check "a cache of another kernel or boot (its identity changed, checksum right) is ignored and rewritten" \
        forge 64 "Linux 0.0.1" && rewritten "another kernel or boot"
    check "a cache of another build (build id in the file changed, checksum right) is ignored and rewritten" \
        forge 16 0123456789abcdef && rewritten "another program build"
    check "a cache file of another owner is ignored and rewritten, root's again" \
        chown nobody "$cfile" && rewritten "not root's alone" && test "$(stat -c %U "$cfile")" = root
    check "a group-writable cache file is ignored and rewritten, 0600 again" \
        chmod 620 "$cfile" && rewritten "not root's alone" && test "$(stat -c %a "$cfile")" = 600
    check "a symlink in the cache's place (to a good copy) is not followed, and is replaced" \
        sh -c "cp -p '$cfile' '$T/copy.iter' && ln -sf '$T/copy.iter' '$cfile'" && rewritten "cannot open" && test -f "$cfile" -a ! -L "$cfile"
    check "another build's cache file goes when the cache is written" sh -c "
        cp -p '$cfile' '$cache/0000000000000000.iter' && rm '$cfile' && '$dump' --no-pin --count >/dev/null &&
        test \"\$(ls '$cache')\" = '$build_id.iter'"
    check "a cache directory of another owner is neither used nor written (mode 3, says why)" \
        test "$(chown nobody "$cache" && how --no-pin)" = "mode 3: BPF socket iterators loaded for this run (not pinned: pinning not asked for; not cached in $cache: the directory is not root's alone)"
    check "a group-writable cache directory likewise" \
        test "$(chown root "$cache" && chmod 770 "$cache" && mode --no-pin)" = 3
    chmod 700 "$cache"
    check "root's alone again: loads from the cache (mode 4)" test "$(mode --no-pin)" = 4
    check "as nobody with the cache there: still EPERM, one line" \
        refusal -1 "needs root or CAP_BPF and CAP_PERFMON" "${as_nobody[@]}" "$dump" --count --no-pin
    check "bpf() refused (EPERM) with the cache there: the same one line" \
        refusal -1 "the kernel refused bpf()" strace -f -o /dev/null -e inject=bpf:error=EPERM "$dump" --count --no-pin
    check "bpf() failing with EINVAL with the cache there: the same one line" \
        refusal -22 "cannot load the socket iterators" strace -f -o /dev/null -e inject=bpf:error=EINVAL "$dump" --count --no-pin
    check "no BTF with the cache there: ENOENT, 'has no BTF'" \
        refusal -2 "has no BTF" unshare -m sh -c 'mount -t tmpfs none /sys/kernel/btf && exec "$0" --count --no-pin' "$dump"
    check "and the cache is still good after those (mode 4)" test "$(mode --no-pin)" = 4

    # --- the same records pinned (or loaded) and loaded, in parallel, per namespace -------------------
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
libbpf = records("--no-pin", "--no-cache")
procs = [subprocess.Popen([dump, "--count"], stdout=subprocess.PIPE, text=True) for _ in range(6)]
counts = [p.communicate()[0] for p in procs]
print("pinned", len(pinned), "loaded", len(loaded), "libbpf", len(libbpf), "same", pinned == loaded == libbpf)
print("parallel", " ".join(c.split()[1] for c in counts), "all", all(c == counts[0] for c in counts))
PY
    out=$(unshare -n python3 "$T/load.py" "$dump" 2>&1)
    echo "$out" | sed 's/^/# /'
    check "2000 connections: a default run, a --no-pin run and a --no-cache one give the same 2000 records" \
        grep -q "^pinned 2000 loaded 2000 libbpf 2000 same True" <<<"$out"
    check "six readers at once each read all 2000" grep -q "^parallel 2000 2000 2000 2000 2000 2000 all True" <<<"$out"
    check "an iterator made after setns reads that namespace" test "$("$dump" --netns "$ns" --count)" = "$figures"
    check "--no-pin: the same" test "$("$dump" --no-pin --netns "$ns" --count)" = "$figures"

    # --- what dead runs leave, and runs starting at once ----------------------------------------------
    # SIX runs at once (none pinned before when mounted): every one reads the figures above, exit 0.
    runs_at_once() {
        local i rc=0 race=()
        rm -f "$T"/race.*
        for i in 1 2 3 4 5 6; do timeout 60 "$dump" --netns "$ns" --count >"$T/race.$i" 2>"$T/race.$i.err" & race+=($!); done
        for i in "${race[@]}"; do wait "$i" || rc=1; done
        for i in 1 2 3 4 5 6; do
            [ "$(cat "$T/race.$i")" = "$figures" ] || { echo "# run $i: $(cat "$T/race.$i" "$T/race.$i.err" | tr '\n' ' ')"; rc=1; }
        done
        return "$rc"
    }
    if [ "$way" = absent ]; then
        check "six first runs at once, no cache yet: each loads, all read the same figures" \
            sh -c "rm -r '$cache'" && runs_at_once
        check "then a run loads from the cache they wrote (mode 4)" test "$(mode)" = 4
        check "six runs at once: each loads, all read the same figures" runs_at_once
        check "still nothing under /sys/fs/bpf" test ! -e "$pins"
    else
        # A run SIGKILLed between pinning its links into tmp-<id>-<pid> and renaming that into place
        # (strace kills it on rename): its directory, with live links pinned, is moved to DEST
        # (outside the pin directory, where no sweep sees it). Prints the directory's name.
        leftover() {
            "$dump" --unpin-all
            # (in a subshell, whose "Killed" goes to /dev/null with the rest)
            (strace -f -o /dev/null -e trace=/^rename -e inject=/^rename:signal=KILL "$dump" --count; :) >/dev/null 2>&1
            local t
            t=$(ls -d "$pins/tmp-$build_id-"* 2>/dev/null)
            [ -n "$t" ] && [ -e "$t/tcp" ] && [ -e "$t/udp" ] && mv "$t" "$1" && basename "$t"
        }
        # The leftovers a sweep must remove, in the pin directory beside this build's pins (if any):
        # a dead run's tmp-<id>-<pid>, another build's pins, and a dead run's tmp whose pid now is a
        # live process's (pid reuse). Remembers the links' ids in $T/stale-links.
        sleeper=''
        plant_leftovers() {
            local dead
            mkdir -p /sys/fs/bpf/keep && rm -rf /sys/fs/bpf/keep/* &&
                dead=$(leftover /sys/fs/bpf/keep/dead) && leftover /sys/fs/bpf/keep/other >/dev/null &&
                leftover /sys/fs/bpf/keep/reused >/dev/null || return 1
            [ -n "$sleeper" ] && kill -0 "$sleeper" 2>/dev/null || { sleep 300 & sleeper=$!; pids+=("$sleeper"); }
            [ -n "${1:-}" ] && { "$dump" --count >/dev/null || return 1; }  # this build's pins too
            mkdir -p "$pins" && mv /sys/fs/bpf/keep/dead "$pins/$dead" &&
                mv /sys/fs/bpf/keep/other "$pins/00000000deadbeef" &&
                mv /sys/fs/bpf/keep/reused "$pins/tmp-$build_id-$sleeper" && rmdir /sys/fs/bpf/keep || return 1
            ! kill -0 "${dead##*-}" 2>/dev/null || { echo "# pid ${dead##*-} lives"; return 1; }
            local f
            for f in "$pins"/tmp-* "$pins"/00000000deadbeef; do
                bpftool link show pinned "$f/tcp"; bpftool link show pinned "$f/udp"
            done | sed -n 's/^\([0-9]*\): iter .*/\1/p' >"$T/stale-links"
            [ "$(wc -l <"$T/stale-links")" = 6 ] || { echo "# links: $(tr '\n' ' ' <"$T/stale-links")"; return 1; }
            echo "# planted: $(ls -A "$pins" | tr '\n' ' ')"
        }
        # The kernel let go of the swept pins' links (they have no other holder), within 5 s.
        stale_links_gone() {
            local id
            for _ in $(seq 50); do
                for id in $(cat "$T/stale-links"); do bpftool link show id "$id" >/dev/null 2>&1 && break; id=''; done
                [ -z "$id" ] && return 0
                sleep 0.1
            done
            echo "# link $id still there"
            return 1
        }
        check "leftovers planted (a run killed on rename; 3 dirs, 6 live links) beside this build's pins" \
            plant_leftovers with-pins
        check "a run that opens the pins (mode 1) sweeps them" test "$(mode)" = 1
        check "only this build's pins remain" pin_dir_is_ours_alone
        check "and the kernel released their links" stale_links_gone
        check "leftovers planted, no pins of this build" plant_leftovers
        check "a run that loads (mode 2) sweeps them, the tmp of a live pid too (it holds no lock)" test "$(mode)" = 2
        check "only this build's pins remain" pin_dir_is_ours_alone
        check "and the kernel released their links" stale_links_gone
        for round in 1 2 3; do
            check "round $round: leftovers planted, no pins of this build" plant_leftovers
            check "round $round: six first runs at once all read the same figures" runs_at_once
            check "round $round: only this build's pins remain" pin_dir_is_ours_alone
            check "round $round: and the kernel released the leftovers' links" stale_links_gone
            check "round $round: a later run opens the pins (mode 1)" test "$(mode)" = 1
        done
        check "--unpin-all removes everything, the cache too" sh -c "'$dump' --unpin-all && test ! -e '$pins' -a ! -e '$cache'"
    fi
    exit "$failed"
fi

# --- the two ways, and what does not depend on bpffs ----------------------------------------------
setup_temp_dir
if [ "$(id -u)" != 0 ]; then
    echo "ok - # SKIP the BPF reader tests need root"
    exit 0
fi
need_packages util-linux strace python3 iproute2 || { not_ok "install util-linux strace python3 iproute2"; exit 1; }
host_bpffs=$(fs_type)
host_pins=$(ls -A "$pins" 2>/dev/null | tr '\n' ' ')
host_cache=$(ls -lA /run/check_ephemeral_ports 2>&1)
echo "# the host's /sys/fs/bpf: $host_bpffs${host_pins:+, $pins holds: $host_pins}"
check "src/native/build.sh builds the reader" quiet "$T/native-build.log" "$root/src/native/build.sh" "$T/native" || exit 1
chmod 755 "$T/native" "$T/native/cep_bpf_dump"

# The kernel facts: every run there is --no-pin (neither reads nor makes pins), so once is enough;
# with a private /run (the load cache: the first run writes it, the others load from it).
rc=0
unshare -m --propagation private sh -c 'mount -t tmpfs -o mode=755 cep-run /run && exec "$@"' sh \
    python3 "$root/tests/oracle/bpf_facts.py" "$T/native/cep_bpf_dump" --json "$T/bpf-facts.json" || rc=$?
[ "$rc" = 0 ] || failed=1

for way in ${BPF_NATIVE_BPFFS:-mounted absent}; do
    case $way in
        mounted | absent) ;;
        *) not_ok "BPF_NATIVE_BPFFS=$way: mounted or absent"; continue ;;
    esac
    echo "# bpffs $way, in a private mount namespace"
    rc=0
    CEP_BPF_NATIVE_WAY=$way CEP_BPF_NATIVE_T=$T timeout 900 unshare -m --propagation private bash "$0" \
        >"$T/way-$way.tap" 2>&1 || rc=$?
    cat "$T/way-$way.tap"
    if [ "$rc" != 0 ]; then
        failed=1
        grep -q '^not ok - ' "$T/way-$way.tap" || not_ok "[bpffs $way] exited $rc"
    fi
done
check "the host's /sys/fs/bpf is as it was ($host_bpffs)" \
    test "$(fs_type)" = "$host_bpffs" -a "$(ls -A "$pins" 2>/dev/null | tr '\n' ' ')" = "$host_pins"
check "the host's load cache (/run/check_ephemeral_ports) is as it was" \
    test "$(ls -lA /run/check_ephemeral_ports 2>&1)" = "$host_cache"
exit $failed
