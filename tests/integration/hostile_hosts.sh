#!/usr/bin/env bash
# Hostile and constrained hosts (issue 18, items 1, 2, 4 and the hidepid case): every run ends in
# one correct answer or one "EPHEMERAL PORTS UNKNOWN - ..." line naming what was refused, exit 0-3,
# within its timeout, with the process gone and stdout closed; never 134, 255, empty output or a
# .NET trace (lib/contract.sh).
#  - --output never replaces a device, FIFO, socket or a symlink to one (made in a private tmpfs in
#    a private mount namespace, so the host's /dev is never at stake); it writes the name given,
#    byte for byte; it needs no OpenSSL (libssl and libcrypto hidden by empty files bound over them
#    in a private mount namespace).
#  - stdout closed; address space, descriptor and thread limits (prlimit; the thread limit as a
#    throwaway user, since RLIMIT_NPROC does not bind root); DOTNET_GCRegionSize=1. The minimum each
#    resource needs is measured and printed as "# ..." lines for the README.
#  - a --proc-root whose reads never return (a FUSE tree, lib/blocking_proc_fs.py).
#  - names that are not UTF-8 or hold ESC and TAB (network namespaces, arguments) are listed and
#    escaped; a 100 kB threshold gives an UNKNOWN line within the 1 KB output bound.
#  - hidepid=2 (a proc mounted in a private mount namespace): --processes says processes were hidden.
# TCP ports used: 19000-19999 (listeners in namespaces of our own and on 127.0.0.1).
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/contract.sh"
lib=$(cd "$(dirname "$0")/lib" && pwd)

setup_temp_dir
require_plugin_binary
[ "$(id -u)" = 0 ] || { not_ok "runs as root (namespaces, mounts, users)"; exit 1; }
install_plugin_into "$T/bin"
plugin=$T/bin/check_ephemeral_ports
check "install python3, iproute2, util-linux, python3-fusepy, procps" \
    need_packages python3 iproute2 util-linux python3-fusepy procps passwd || exit 1
py=/usr/bin/python3

# What this script makes outside $T, removed on exit whatever happened.
user='' netns=() holders=() fuse_pidfile=$T/fuse.pid
hostile_cleanup() {
    local p n
    for p in "${holders[@]}"; do kill "$p" 2>/dev/null; done
    if [ -s "$fuse_pidfile" ]; then kill -KILL "$(cat "$fuse_pidfile")" 2>/dev/null; fi
    for n in "${netns[@]}"; do ip netns delete "$n" 2>/dev/null; done
    # Whatever the throwaway user still runs (a run the test gave up on) is ours: killed by PID.
    if [ -n "$user" ]; then
        for p in $(pgrep -u "$user"); do kill -KILL "$p" 2>/dev/null; done
        userdel "$user" 2>/dev/null
    fi
    cleanup
}
trap hostile_cleanup EXIT

# hold NAME HOST PORT N [NETNS_FILE]: N connections to a listener on HOST:PORT held ESTABLISHED
# for up to 120 s by lib/hold_connections.py (made inside NETNS_FILE's namespace, which the holder
# then leaves); sets $ready to its "ready K" line once they are up.
hold() {
    local name=$1 host=$2 port=$3 n=$4 nsfile=${5:-}
    "$py" "$lib/hold_connections.py" "$host" "$port" "$n" 120 ${nsfile:+"$nsfile"} >"$T/$name.ready" 2>"$T/$name.err" </dev/null &
    holders+=($!)
    for _ in $(seq 100); do [ -s "$T/$name.ready" ] && break; sleep 0.2; done
    ready=$(head -n 1 "$T/$name.ready")
}

# lacks FILE BYTES...: FILE holds none of the byte strings (compared as bytes, not characters).
lacks() { local f=$1 b; shift; for b in "$@"; do LC_ALL=C grep -qaF -- "$b" "$f" && return 1; done; return 0; }

# A throwaway unprivileged user (RLIMIT_NPROC, hidepid): no home, no shell, removed on exit.
user=cep-hostile-$$
check "create the throwaway user $user" useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user" || user=''

# ==================================================================================================
# --output and what it may replace (item 2)
echo "# --output: devices, FIFOs, sockets, symlinks to them; names byte for byte; no OpenSSL"
mkdir -p "$T/nodes" "$T/out"
# In a private mount namespace with a private tmpfs on $T/nodes: a null device (as /dev/null is),
# a FIFO, a unix socket and a symlink to the device; each node's type and inode before and after
# the run, the run's output in $T/out-KIND.{out,err} and its exit code in $T/out-KIND.rc.
cat >"$T/nodes.sh" <<'EOF'
set -u
T=$1 plugin=$2 py=$3
mount -t tmpfs -o mode=755 cep-nodes "$T/nodes" || exit 1
mknod -m 666 "$T/nodes/null" c 1 3
mkfifo -m 644 "$T/nodes/fifo"
"$py" -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/nodes/socket"
ln -s "$T/nodes/null" "$T/nodes/link-to-null"
for kind in null fifo socket link-to-null; do
    stat -c '%F %i %t:%T' "$T/nodes/$kind" >"$T/out-$kind.before"
    timeout -s KILL 12 "$plugin" -t 5 --output "$T/nodes/$kind" >"$T/out-$kind.out" 2>"$T/out-$kind.err" </dev/null
    echo $? >"$T/out-$kind.rc"
    stat -c '%F %i %t:%T' "$T/nodes/$kind" >"$T/out-$kind.after"
    # What a link points at must be untouched too.
    [ -L "$T/nodes/$kind" ] && stat -L -c '%F %i %t:%T' "$T/nodes/$kind" >>"$T/out-$kind.after" &&
        stat -L -c '%F %i %t:%T' "$T/nodes/$kind" >>"$T/out-$kind.before"
done
exit 0
EOF
if timeout -s KILL 120 unshare --mount --propagation private -- bash "$T/nodes.sh" "$T" "$plugin" "$py" >"$T/nodes.log" 2>&1; then
    for kind in null fifo socket link-to-null; do
        rc=$(cat "$T/out-$kind.rc")
        desc="--output at a $kind (root)"
        contract "$desc: the contract" "out-$kind" UNKNOWN
        check "$desc: exit 3 ($rc)" test "$rc" = 3
        # Naming the refusal: the option or the file, and what is wrong with it.
        check "$desc: the UNKNOWN line names --output or the file" grep -qE -- "--output|nodes/$kind" "$T/out-$kind.out"
        if cmp -s "$T/out-$kind.before" "$T/out-$kind.after"; then ok "$desc: the node is unchanged ($(head -n 1 "$T/out-$kind.after"))"
        else not_ok "$desc: the node was replaced: before [$(tr '\n' ' ' <"$T/out-$kind.before")] after [$(tr '\n' ' ' <"$T/out-$kind.after")]"; fi
    done
else
    not_ok "the private mount namespace with device nodes: $(tail -n 3 "$T/nodes.log")"
fi

# A regular file: written, and replaced when it is there already.
run_bin out-regular 15 "$plugin" --output "$T/out/metrics.txt"
check "--output into a regular file: exit 0-3, nothing on stdout, no trace ($(said out-regular))" \
    sh -c "test $rc -le 3 && test ! -s '$T/out-regular.out' && ! grep -qa 'Unhandled' '$T/out-regular.err'"
check "--output into a regular file: the file holds a status line" grep -qE '^EPHEMERAL PORTS (OK|WARNING|CRITICAL|UNKNOWN) - ' "$T/out/metrics.txt"
echo stale >"$T/out/metrics.prom"
run_bin out-replace 15 "$plugin" --format prometheus --output "$T/out/metrics.prom"
check "--output over an existing regular file: replaced by the metrics (exit $rc)" \
    sh -c "test $rc -le 3 && grep -q '^ephemeral_ports' '$T/out/metrics.prom' && ! grep -q stale '$T/out/metrics.prom'"

# A name that is not UTF-8: exactly that name, byte for byte (0xff), and nothing else created.
badname=$T/out/x$'\xff'.prom
run_bin out-bytes 15 "$plugin" --format prometheus --output "$badname"
check "--output with byte 0xff in the name: exit 0-3 ($(said out-bytes))" test "$rc" -le 3
check "--output with byte 0xff in the name: that name, byte for byte, holds the metrics" \
    sh -c "grep -q '^ephemeral_ports' \"\$1\"" _ "$badname"
names=$(cd "$T/out" && printf '%s\n' * | od -An -c | tr -s ' \n' ' ')
check "--output with byte 0xff in the name: no name with U+FFFD made instead (the directory holds:$names)" \
    sh -c "cd '$T/out' && ! ls | LC_ALL=C grep -qaF \"\$1\"" _ $'\xef\xbf\xbd'

# No OpenSSL: empty files bound over every libssl and libcrypto in a private mount namespace.
cat >"$T/nossl.sh" <<'EOF'
set -u
T=$1 plugin=$2
: >"$T/empty"
find /lib /lib64 /usr/lib /usr/lib64 /usr/local/lib -xdev \( -name 'libssl*.so*' -o -name 'libcrypto*.so*' \) \
    \( -type f -o -type l \) 2>/dev/null | while read -r f; do
    [ -e "$f" ] && mount --bind "$T/empty" "$(readlink -f "$f")"
done
timeout -s KILL 15 "$plugin" --format prometheus --output "$T/out/nossl.prom" >"$T/nossl.out" 2>"$T/nossl.err" </dev/null
echo $? >"$T/nossl.rc"
EOF
rm -f "$T/out/nossl.prom"
timeout -s KILL 60 unshare --mount --propagation private -- bash "$T/nossl.sh" "$T" "$plugin" >"$T/nossl.log" 2>&1
rc=$(cat "$T/nossl.rc" 2>/dev/null || echo none)
check "no OpenSSL on the host: --output exits 0 ($(said nossl))" test "$rc" = 0
check "no OpenSSL on the host: --output wrote the file" grep -q '^ephemeral_ports' "$T/out/nossl.prom"

# ==================================================================================================
# stdout closed (item 1)
echo "# stdout closed"
for args in "" "-v"; do
    # shellcheck disable=SC2086  # no argument or one
    timeout -s KILL 15 "$plugin" $args >&- 2>"$T/closed.err" </dev/null; rc=$?
    check "stdout closed (${args:-no option}): exit 0-3, no trace on stderr (exit $rc, stderr [$(head -c 200 "$T/closed.err" | tr '\n' ' ')])" \
        sh -c "test $rc -le 3 && ! grep -qaE 'Unhandled exception|   at ' '$T/closed.err'"
done

# ==================================================================================================
# Limits (item 1): what the runtime needs to start, measured; then the issue's values.
echo "# limits (prlimit)"
# Three floors per resource, each the smallest value at which 3 runs of --version (as PREFIX...)
# all pass (bisected: LOW..HIGH):
#  loads   the dynamic loader maps the libraries (not exit 127 "error while loading shared
#          libraries"): below it nothing of the binary runs at all;
#  runs    the .NET runtime starts and runs managed code: exit 0-3, or a managed exception's
#          "Unhandled exception" (not a silent 255 from the runtime's start, nor a signal before
#          any output). Below it no NativeAOT program starts: documented, not tested;
#  starts  --version prints its line and exits 3: today's floor of the plugin's simplest path.
floor_pass() {
    local kind=$1 opt=$2 value=$3 n out code; shift 3
    for n in 1 2 3; do
        out=$(timeout -s KILL 10 "$@" prlimit "--$opt=$value" "$plugin" --version 2>"$T/floor.err" </dev/null); code=$?
        case $kind in
            loads) grep -q 'error while loading shared libraries' "$T/floor.err" && return 1 ;;
            runs) [ "$code" -le 3 ] || grep -q 'Unhandled exception' "$T/floor.err" || return 1 ;;
            starts) [ "$code" = 3 ] && grep -q '^check_ephemeral_ports ' <<<"$out" || return 1 ;;
        esac
    done
    return 0
}
# floor KIND OPT LOW HIGH [PREFIX...]: bisected; HIGH+1 when even HIGH fails.
floor() {
    local kind=$1 opt=$2 lo=$3 hi=$4 mid; shift 4
    floor_pass "$kind" "$opt" "$hi" "$@" || { echo $((hi + 1)); return; }
    while [ "$lo" -lt "$hi" ]; do
        mid=$(((lo + hi) / 2))
        if floor_pass "$kind" "$opt" "$mid" "$@"; then hi=$mid; else lo=$((mid + 1)); fi
    done
    echo "$lo"
}
mb=$((1024 * 1024))
as_user_prefix=(setpriv --reuid="$user" --regid="$user" --clear-groups --inh-caps=-all --)
nofile_runs=0 nproc_runs=1
for kind in loads runs starts; do
    as=$(floor "$kind" as $((4 * mb)) $((512 * mb)))
    nofile=$(floor "$kind" nofile 0 64)
    nproc='?'
    [ -n "$user" ] && nproc=$(floor "$kind" nproc 1 64 "${as_user_prefix[@]}")
    if [ "$kind" = runs ]; then nofile_runs=$nofile; [ "$nproc" = '?' ] || nproc_runs=$nproc; fi
    echo "# measured floor ($kind): RLIMIT_AS $((as / mb)) MiB, RLIMIT_NOFILE $nofile, RLIMIT_NPROC $nproc (threads of a user with no other process)"
done

# limit_case NAME DESC CMD...: the contract for a full default check with -t 5 (killed at 6 s), 5 runs (the failures of the
# runtime's start under a tight address space come and go with the layout ASLR picks).
limit_case() {
    local name=$1 desc=$2 n bad=''; shift 2
    for n in 1 2 3 4 5; do
        run_bin "$name-$n" 6 "$@"  # -t 5, and 1 s of slack
        problem=$(contract_problem "$name-$n")
        if [ -n "$problem" ]; then bad="run $n of 5: $problem: $(said "$name-$n")"; break; fi
    done
    if [ -z "$bad" ]; then ok "$desc: the contract in 5 runs ($(head -n 1 "$T/$name-1.out" | cut -c 1-90))"
    else not_ok "$desc: $bad"; fi
}
# The issue's values and a few above them; a value below the runtime's floor is documented, not
# tested. The address space values are tested whatever the floor: the runtime starts well below
# them (a run at 150 MiB fails in the race of the GC's reservation with a new thread's malloc
# arena, which another layout wins), so a failure there is the plugin's to prevent.
for v in 150 175 200; do
    limit_case "as-$v" "RLIMIT_AS $v MiB (prlimit --as)" prlimit --as=$((v * mb)) "$plugin" -t 5
done
for v in 4 5 6 7 8 10 12 16; do
    if [ "$v" -lt "$nofile_runs" ]; then echo "# RLIMIT_NOFILE $v: below the runtime's floor ($nofile_runs), not tested"; continue; fi
    limit_case "nofile-$v" "RLIMIT_NOFILE $v (prlimit --nofile)" prlimit --nofile="$v" "$plugin" -t 5
done
if [ -n "$user" ]; then
    for v in 1 2 3 4; do
        if [ "$v" -lt "$nproc_runs" ]; then echo "# RLIMIT_NPROC $v: below the runtime's floor ($nproc_runs), not tested"; continue; fi
        limit_case "nproc-$v" "RLIMIT_NPROC $v as an unprivileged user (prlimit --nproc)" \
            "${as_user_prefix[@]}" prlimit --nproc="$v" "$plugin" -t 5
    done
fi
limit_case gcregion "DOTNET_GCRegionSize=1 in the environment" env DOTNET_GCRegionSize=1 "$plugin" -t 5

# ==================================================================================================
# A read that never returns (item 1): a FUSE --proc-root whose reads block forever.
echo "# a --proc-root whose reads never return (FUSE)"
mkdir -p "$T/fuse"
cat >"$T/fuse.sh" <<'EOF'
set -u
T=$1 plugin=$2 py=$3 lib=$4
"$py" "$lib/blocking_proc_fs.py" "$T/fuse" 2>"$T/fuse-daemon.log" &
echo $! >"$T/fuse.pid"
for _ in $(seq 100); do [ -e "$T/fuse/net/tcp" ] && break; sleep 0.1; done
[ -e "$T/fuse/net/tcp" ] || { echo "the FUSE tree did not come up: $(cat "$T/fuse-daemon.log")"; kill -KILL "$(cat "$T/fuse.pid")"; exit 1; }
# -t 2: the line by 2 s, the process gone and stdout closed by 3 s (1 s slack); watched for 6 s.
"$py" "$lib/watch_exit.py" 6 "$T/fuse-run.out" "$plugin" --proc-root "$T/fuse" -t 2 >"$T/fuse-watch.txt"
# The daemon dies: the stuck read fails, whatever the plugin left behind can end.
kill -KILL "$(cat "$T/fuse.pid")"; wait
umount -l "$T/fuse" 2>/dev/null
exit 0
EOF
if timeout -s KILL 60 unshare --mount --propagation private -- bash "$T/fuse.sh" "$T" "$plugin" "$py" "$lib" >"$T/fuse.log" 2>&1 &&
    [ -s "$T/fuse-watch.txt" ]; then
    read -r first eof ended brc <"$T/fuse-watch.txt"
    first=${first#first=} eof=${eof#eof=} ended=${ended#exit=} brc=${brc#rc=}
    echo "# FUSE run: line at ${first}s, stdout closed at ${eof}s, process reaped at ${ended}s, exit $brc"
    check "blocked reads, -t 2: the read did block in the FUSE daemon" grep -q 'blocks' "$T/fuse-daemon.log"
    check "blocked reads, -t 2: one UNKNOWN line ($(head -n 1 "$T/fuse-run.out" | cut -c 1-120))" \
        grep -q '^EPHEMERAL PORTS UNKNOWN - ' "$T/fuse-run.out"
    check "blocked reads, -t 2: the line by 3 s (at $first)" awk -v t="$first" 'BEGIN { exit !(t != "never" && t <= 3.0) }'
    check "blocked reads, -t 2: stdout closed by 3 s (at $eof)" awk -v t="$eof" 'BEGIN { exit !(t != "never" && t <= 3.0) }'
    check "blocked reads, -t 2: the process exited by 3 s (at $ended)" awk -v t="$ended" 'BEGIN { exit !(t != "never" && t <= 3.0) }'
    check "blocked reads, -t 2: exit code 3 ($brc)" test "$brc" = 3
else
    not_ok "the FUSE proc tree: $(tail -n 3 "$T/fuse.log")"
fi
if [ -s "$fuse_pidfile" ]; then kill -KILL "$(cat "$fuse_pidfile")" 2>/dev/null; fi

# ==================================================================================================
# Names (item 4): a namespace whose name is not UTF-8 with a full tuple; ESC and TAB in names and
# arguments; a 100 kB threshold.
echo "# names: not UTF-8, ESC, TAB; a 100 kB argument"
ff=cepH$$$'\xff'ns esc=cepE$$$'\x1b'ns tab=cepT$$$'\t'ns
for n in "$ff" "$esc" "$tab"; do
    if ip netns add "$n" 2>"$T/netns.err"; then netns+=("$n"); else not_ok "ip netns add $(printf %q "$n"): $(cat "$T/netns.err")"; fi
done
# The full tuple: a 10-port range inside the namespace, 10 connections to a listener there.
ready=''
if ip netns exec "$ff" sh -c 'ip link set lo up && sysctl -qw net.ipv4.ip_local_port_range="40000 40009"'; then
    # Made in there by a process that then leaves: only the name leads to the namespace.
    hold netns-hold 127.0.0.1 19417 10 "/run/netns/$ff"
fi
check "10 connections held in the namespace with the 0xff name ($ready)" test "$ready" = "ready 10"
run_bin names 30 "$plugin" --all-namespaces -v -t 20
contract "--all-namespaces -v with namespaces named with 0xff, ESC and TAB" names
# The listing line of the 0xff namespace: listed, escaped (no raw 0xff, no U+FFFD), CRITICAL.
line=$(grep -a "netns cepH$$" "$T/names.out" | head -n 1)
check "the namespace named with byte 0xff is listed ($(printf %q "$line"))" test -n "$line"
check "its name is escaped: no raw 0xff byte and no U+FFFD in the output" lacks "$T/names.out" $'\xff' $'\xef\xbf\xbd'
check "its name is printed with the byte escaped (\\xff)" grep -qaE "netns cepH$$"'(\\x[fF][fF]|\\377)ns' <<<"$line"
check "its full 10-port tuple makes it CRITICAL" grep -q 'CRITICAL' <<<"$line"
# (The first line's state is not checked: on a shared machine another namespace may be worse.)
check "ESC and TAB in namespace names: no raw 0x1b or 0x09 byte in the output" lacks "$T/names.out" $'\x1b' $'\t'
check "the namespace named with ESC is listed, escaped" grep -qaE "netns cepE$$"'(\\x1[bB]|\\e|\\033|\\u001[bB]|\^\[)ns' "$T/names.out"
check "the namespace named with TAB is listed, escaped" grep -qaE "netns cepT$$"'(\\t|\\x09|\\011|\\u0009|\^I)ns' "$T/names.out"
for n in "$ff" "$esc" "$tab"; do ip netns delete "$n"; done
netns=()
for p in "${holders[@]}"; do kill "$p" 2>/dev/null; done
holders=()

# Arguments echoed in an UNKNOWN line.
run_bin arg-esc 15 "$plugin" -w $'\x1b[31m70\t'
contract "-w with ESC and TAB" arg-esc UNKNOWN
check "-w with ESC and TAB: no raw 0x1b or 0x09 byte echoed" lacks "$T/arg-esc.out" $'\x1b' $'\t'
run_bin arg-ff 15 "$plugin" --netns "cep"$'\xff'"missing"
contract "--netns with byte 0xff, no such namespace" arg-ff UNKNOWN
check "--netns with byte 0xff: the name is escaped, no raw 0xff and no U+FFFD" lacks "$T/arg-ff.out" $'\xff' $'\xef\xbf\xbd'

# A 100 kB threshold: one UNKNOWN line within the default output bound (1 KB: README, -v lifts it).
big=$(head -c 100000 /dev/zero | tr '\0' 7)
run_bin arg-big 15 "$plugin" -w "$big"
contract "-w with a 100 kB value" arg-big UNKNOWN
size=$(wc -c <"$T/arg-big.out")
check "-w with a 100 kB value: the output is at most 1024 bytes ($size)" test "$size" -le 1024
check "-w with a 100 kB value: one line" test "$(wc -l <"$T/arg-big.out")" = 1

# ==================================================================================================
# hidepid=2 (item 6, in issue 18's list): --processes as an unprivileged user while root holds the
# busiest tuple. A proc of its own with hidepid=2 is mounted in a private mount namespace (a new
# proc superblock: the host's /proc and its options are never touched).
echo "# hidepid=2 and --processes"
if [ -n "$user" ]; then
    hold root-hold 127.0.0.1 19418 300
    check "root holds 300 connections to 127.0.0.1:19418 ($ready)" test "$ready" = "ready 300"
    cat >"$T/hidepid.sh" <<'EOF'
set -u
T=$1 plugin=$2 user=$3
mount -t proc -o hidepid=2 proc /proc || exit 1
grep -q hidepid=invisible /proc/self/mountinfo || grep -q hidepid=2 /proc/self/mountinfo || { echo "no hidepid in mountinfo"; exit 1; }
timeout -s KILL 25 setpriv --reuid="$user" --regid="$user" --clear-groups --inh-caps=-all -- \
    "$plugin" --processes -v -t 20 >"$T/hidepid.out" 2>"$T/hidepid.err" </dev/null
echo $? >"$T/hidepid.rc"
EOF
    if timeout -s KILL 60 unshare --mount --propagation private -- bash "$T/hidepid.sh" "$T" "$plugin" "$user" >"$T/hidepid.log" 2>&1; then
        rc=$(cat "$T/hidepid.rc")
        contract "hidepid=2, --processes as $user" hidepid
        check "hidepid=2: the busiest tuple is root's (127.0.0.1 -> 127.0.0.1:19418)" grep -q '127.0.0.1 -> 127.0.0.1:19418' "$T/hidepid.out"
        check "hidepid=2: the output says processes were hidden ($(grep -aiE 'process' "$T/hidepid.out" | head -n 2 | tr '\n' ' ' | cut -c 1-200))" \
            grep -qaiE 'hidden|hidepid' "$T/hidepid.out"
    else
        not_ok "the private proc with hidepid=2: $(tail -n 3 "$T/hidepid.log")"
    fi
    for p in "${holders[@]}"; do kill "$p" 2>/dev/null; done
    holders=()
fi

[ "$failed" = 0 ]
