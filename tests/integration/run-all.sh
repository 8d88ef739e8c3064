#!/usr/bin/env bash
# Runs the integration tests one after the other (they share apt and the nagios user) and
# sums up their "ok" / "not ok" lines. Run as root; exits 1 if anything failed.
# CHECK_EPHEMERAL_PORTS_BIN selects the binary (default: dist/check_ephemeral_ports).
set -u
here=$(cd "$(dirname "$0")" && pwd)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
scripts_failed=0
for script in icinga2.sh nagios4.sh nrpe.sh; do
    echo "# $script"
    start=$SECONDS
    "$here/$script" 2>&1 | tee -a "$log"
    rc=${PIPESTATUS[0]}
    echo "# $script: exit $rc after $((SECONDS - start)) s"
    [ "$rc" = 0 ] || scripts_failed=$((scripts_failed + 1))
done
passed=$(grep -c '^ok - ' "$log")
failed=$(grep -c '^not ok - ' "$log")
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$scripts_failed" = 0 ]
