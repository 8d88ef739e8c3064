# shellcheck shell=bash
# The plugin's promise on a hostile host (issue 18), for hostile_hosts.sh and minimal_root.sh:
# sourced after common.sh. Whatever the host does to it, a run ends within its timeout with exit
# 0-3 and a first line "EPHEMERAL PORTS <STATE> - ", never 134 (abort), 255 or a signal, never
# empty, and no .NET stack trace on stdout or stderr.

# run_bin NAME SECONDS CMD ARGS...: runs CMD with stdout in $T/NAME.out and stderr in $T/NAME.err,
# killed after SECONDS; the exit code is left in $rc.
run_bin() {
    local name=$1 limit=$2; shift 2
    timeout -s KILL "$limit" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null
    rc=$?
}

# A .NET trace or abort message in FILE.
has_trace() { grep -qaE 'Unhandled exception|^ +at [A-Za-z_<>.`]+[.(]| ---> System\.|System\.[A-Za-z.]*Exception|No usable version of lib' "$1"; }

# What went wrong with run NAME (exit code $rc), for a "not ok" line: exit, first line, stderr head.
said() {
    printf 'exit %s, first line [%s], stderr [%s]' "$rc" \
        "$(head -n 1 "$T/$1.out" | head -c 200 | tr -d '\000' | cat -v)" \
        "$(head -c 200 "$T/$1.err" | tr '\n' ' ' | cat -v)"
}

# contract_problem NAME: empty when run NAME kept the contract, else what it broke.
contract_problem() {
    local name=$1 first
    first=$(head -n 1 "$T/$name.out")
    if [ "$rc" -gt 3 ]; then echo "exit $rc (not 0-3)"
    elif [ ! -s "$T/$name.out" ]; then echo "nothing on stdout"
    elif ! grep -qE '^EPHEMERAL PORTS (OK|WARNING|CRITICAL|UNKNOWN) - ' <<<"$first"; then echo "first line is not a status line"
    elif has_trace "$T/$name.out" || has_trace "$T/$name.err"; then echo "a .NET trace or abort message"
    fi
}

# contract WHAT NAME [STATE_RE]: one check line for run NAME; STATE_RE (e.g. UNKNOWN, or
# 'OK|WARNING|CRITICAL') narrows the states accepted.
contract() {
    local what=$1 name=$2 states=${3:-} problem
    problem=$(contract_problem "$name")
    if [ -z "$problem" ] && [ -n "$states" ] && ! head -n 1 "$T/$name.out" | grep -qE "^EPHEMERAL PORTS ($states) - "; then
        problem="state is not $states"
    fi
    if [ -z "$problem" ]; then ok "$what: $(head -n 1 "$T/$name.out" | cut -c 1-100)"
    else not_ok "$what: $problem: $(said "$name")"; fi
}
