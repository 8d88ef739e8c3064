#!/usr/bin/env bash
# ./build.sh fuzz [SECONDS [TARGET...]]: each fuzz target under afl-fuzz for SECONDS (default 60), one after
# the other (one afl-fuzz at a time), seeded from the fixtures. Findings go to
# artifacts/fuzz/findings/TARGET/default/{crashes,hangs}; replay one, with the stack trace, on
# the uninstrumented build (the instrumented one needs afl-fuzz's shared memory):
#   dotnet artifacts/fuzz/replay/EphemeralPorts.Fuzz.dll TARGET FILE
# Exits 1 when a target crashed. Not part of CI: it needs afl++ and minutes of CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SECONDS_EACH=${1:-60}
WORK=$ROOT/artifacts/fuzz
TARGETS=(socket-table sysctl sockstat netlink cgroup ctnetlink)
# ./build.sh fuzz SECONDS TARGET... runs only those.
[ $# -gt 1 ] && TARGETS=("${@:2}")
case "$SECONDS_EACH" in ''|*[!0-9]*) echo "fuzz: SECONDS must be a number" >&2; exit 2 ;; esac

log() { printf '==> %s\n' "$*"; }

rm -rf "$WORK/bin" "$WORK/replay" "$WORK/seeds"
mkdir -p "$WORK"
log "building the harness"
dotnet build tests/fuzz/EphemeralPorts.Fuzz/EphemeralPorts.Fuzz.csproj -c Release -o "$WORK/bin" --nologo -v quiet -clp:ErrorsOnly
cp -r "$WORK/bin" "$WORK/replay"
if [ ! -x "$WORK/tools/sharpfuzz" ]; then
    log "installing the sharpfuzz instrumenter"
    dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path "$WORK/tools" >/dev/null
fi
log "instrumenting EphemeralPorts.Core.dll"
"$WORK/tools/sharpfuzz" "$WORK/bin/EphemeralPorts.Core.dll"
python3 tests/fuzz/make_seeds.py "$WORK/seeds"

export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1
crashed=0
for target in "${TARGETS[@]}"; do
    findings=$WORK/findings/$target
    rm -rf "$findings"
    mkdir -p "$WORK/findings"
    log "afl-fuzz $target for $SECONDS_EACH s ($(ls "$WORK/seeds/$target" | wc -l) seeds)"
    dict=()
    [ -f "tests/fuzz/dictionaries/$target.dict" ] && dict=(-x "tests/fuzz/dictionaries/$target.dict")
    afl-fuzz -V "$SECONDS_EACH" -t 5000 -m none "${dict[@]}" -i "$WORK/seeds/$target" -o "$findings" -- \
        "$(command -v dotnet)" "$WORK/bin/EphemeralPorts.Fuzz.dll" "$target" >"$WORK/$target.log" 2>&1 || true
    stats=$findings/default/fuzzer_stats
    if [ ! -f "$stats" ]; then
        echo "not ok - $target: afl-fuzz did not start (see $WORK/$target.log)"
        crashed=1
        continue
    fi
    execs=$(sed -n 's/^execs_done *: *//p' "$stats")
    paths=$(sed -n 's/^corpus_count *: *//p' "$stats")
    crashes=$(find "$findings/default/crashes" -type f -name 'id:*' | wc -l)
    hangs=$(find "$findings/default/hangs" -type f -name 'id:*' | wc -l)
    line="$target: $execs executions, $paths inputs in the corpus, $crashes crashes, $hangs hangs"
    if [ "$crashes" -gt 0 ]; then
        echo "not ok - $line"
        crashed=1
        # What the first few threw, from the uninstrumented build.
        find "$findings/default/crashes" -type f -name 'id:*' | sort | head -n 3 | while read -r input; do
            echo "#   $input:"
            dotnet "$WORK/replay/EphemeralPorts.Fuzz.dll" "$target" "$input" 2>&1 | grep -m 3 -E 'Exception|   at ' | sed 's/^/#     /' || true
        done
    else
        echo "ok - $line"
    fi
done
exit $crashed
